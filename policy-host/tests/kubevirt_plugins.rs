//! KubeVirt 1.9's Plugins beside hook sidecars, and the migration of docs/kubevirt-plugins.md,
//! on a real kube-apiserver (the sync job's harness, with MutatingAdmissionPolicy on) holding what
//! virt-operator v1.9.0 installs for Plugins, printed by KubeVirt's own code
//! (`kubevirt-render manifests`: the Plugin, VirtualMachine and VirtualMachineInstance CRDs and
//! the four ValidatingAdmissionPolicies of the Plugins gate). The policy is the wasm module, run
//! by the in-repo host as policy-server runs it; the launcher Pods are the ones KubeVirt v1.9.0
//! renders (test_data/kubevirt/v1.9.0/, test_data/generate.py), after the API server's admission;
//! the Plugin's domain hook is applied by virt-launcher v1.9.0's own pipeline
//! (`kubevirt-render domain-hooks`). One server, scenarios one after the other.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use libtest_mimic::{Arguments, Failed, Trial};
use policy_host::admission::AdmissionResponse;
use policy_host::host::{CodeCache, PolicyHost};
use serde_json::{Value, json};
use test_support::{Cluster, repo_root};

const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const PLUGIN_IMAGE: &str = "registry.example.com/kubevirt-plugins/smbios-domain-hook:v1.0.0";
const RELEASE: &str = "v1.9.0";
const OPT_IN: &str = "ovmf.hooks.example.com/mmio64-mb";

struct Context {
    cluster: Cluster,
    host: PolicyHost,
    renderer: PathBuf,
}

impl Context {
    fn start() -> Result<Self> {
        let module = common::build_module(&repo_root())?;
        let renderer = renderer()?;
        let cluster = Cluster::start_with(&[
            // Beta and off by default in Kubernetes 1.34 (v1 from 1.36).
            "--feature-gates=MutatingAdmissionPolicy=true",
            "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
        ])?;
        let manifests = run(Command::new(&renderer).arg("manifests"), None)?;
        let file = std::env::temp_dir().join(format!(
            "kubevirt-{RELEASE}-plugins-{}.json",
            std::process::id()
        ));
        std::fs::write(&file, manifests)?;
        cluster.kubectl(&["apply", "--server-side", "-f", &file.display().to_string()])?;
        let _ = std::fs::remove_file(&file);
        cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/plugins.plugin.kubevirt.io",
            "crd/virtualmachines.kubevirt.io",
            "crd/virtualmachineinstances.kubevirt.io",
            "--timeout=60s",
        ])?;
        // The ServiceAccount admission plugin wants the Pods' ServiceAccount to exist (no
        // controller-manager makes it here).
        cluster.kubectl(&["create", "serviceaccount", "default", "-n", "default"])?;
        let host = PolicyHost::load(&module, Duration::from_secs(2), CodeCache::Disabled)?;
        Ok(Self {
            cluster,
            host,
            renderer,
        })
    }

    fn apply_example(&self, name: &str) -> Result<()> {
        let path = repo_root().join("examples/plugins").join(name);
        self.cluster
            .kubectl(&["apply", "-f", &path.display().to_string()])
            .map(drop)
    }

    /// `kubectl create --dry-run=server` of `object`: what the API server's admission (mutating,
    /// then validating policies) makes of it, or its refusal.
    fn dry_run_create(&self, object: &Value) -> Result<Value> {
        let file = std::env::temp_dir().join(format!(
            "kubevirt-plugins-object-{}.json",
            std::process::id()
        ));
        std::fs::write(&file, serde_json::to_vec(object)?)?;
        let result = self.cluster.kubectl(&[
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            &file.display().to_string(),
        ]);
        let _ = std::fs::remove_file(&file);
        Ok(serde_json::from_str(&result?)?)
    }

    /// The verdict of the policy module on a CREATE of `object`.
    fn judge(&self, object: &Value, settings: &Value) -> AdmissionResponse {
        let kind = object["kind"].as_str().unwrap_or_default();
        let (group, version) = match object["apiVersion"].as_str().unwrap_or_default() {
            "v1" => ("", "v1"),
            other => other.split_once('/').unwrap_or(("", other)),
        };
        let request = json!({
            "uid": "3c1e6a52-0d6b-4b59-9b7e-3f2a1c7d9e01",
            "kind": {"group": group, "version": version, "kind": kind},
            "operation": "CREATE",
            "namespace": "default",
            "userInfo": {"username": "system:serviceaccount:kubevirt:kubevirt-controller"},
            "object": object,
        });
        self.host.validate(&request, settings)
    }

    /// virt-launcher's domain hooks of `plugins` on an empty domain, for `vmi`.
    fn domain_hooks(&self, plugins: &[Value], vmi: &Value) -> Result<String> {
        let input = json!({
            "plugins": plugins,
            "vmi": vmi,
            "domain": "<domain type=\"kvm\"><name>default_gpu-vm</name></domain>",
        });
        let output: Value = serde_json::from_str(&run(
            Command::new(&self.renderer).arg("domain-hooks"),
            Some(&input.to_string()),
        )?)?;
        match (output["domain"].as_str(), output["error"].as_str()) {
            (Some(domain), _) => Ok(domain.to_owned()),
            (_, Some(error)) => bail!("{error}"),
            _ => bail!("no domain: {output}"),
        }
    }
}

type Scenario = fn(&Context) -> Result<()>;

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let context: Arc<OnceLock<Result<Context, String>>> = Arc::new(OnceLock::new());
    let scenarios: &[(&str, Scenario)] = &[
        (
            "kubevirts_plugin_policies_are_active",
            kubevirts_plugin_policies_are_active,
        ),
        (
            "the_worked_example_as_a_plugin",
            the_worked_example_as_a_plugin,
        ),
        (
            "the_migration_leaves_no_hook_sidecar",
            the_migration_leaves_no_hook_sidecar,
        ),
        (
            "a_plugins_sidecar_beside_a_hook_sidecar",
            a_plugins_sidecar_beside_a_hook_sidecar,
        ),
        (
            "containers_dressed_as_the_other_kind",
            containers_dressed_as_the_other_kind,
        ),
    ];
    let trials = scenarios
        .iter()
        .map(|&(name, scenario)| {
            let context = Arc::clone(&context);
            Trial::test(name, move || {
                let context = context
                    .get_or_init(|| Context::start().map_err(|error| format!("{error:#}")))
                    .as_ref()
                    .map_err(|error| {
                        Failed::from(format!("cannot start the test cluster: {error}"))
                    })?;
                scenario(context).map_err(|error| Failed::from(format!("{error:#}")))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop kube-apiserver and etcd before exiting (exit skips destructors).
    if let Some(Ok(context)) = Arc::try_unwrap(context).ok().and_then(OnceLock::into_inner) {
        drop(context.cluster);
    }
    conclusion.exit();
}

// ---- the scenarios

/// What virt-operator installs with the Plugins gate is there and enforced: KubeVirt's own
/// policies refuse a Plugin whose hook is both CEL and a sidecar, and a socket outside the
/// Plugin's directory.
fn kubevirts_plugin_policies_are_active(context: &Context) -> Result<()> {
    let plugin = |name: &str, hook: Value| {
        json!({"apiVersion": "plugin.kubevirt.io/v1alpha1", "kind": "Plugin",
               "metadata": {"name": name}, "spec": {"domainHooks": [hook]}})
    };
    let both = plugin(
        "both",
        json!({"cel": {"expression": "Domain{}"}, "sidecar": {"socketPath": "/var/run/kubevirt-plugin/both/hook.sock"}}),
    );
    expect_refused(
        context.dry_run_create(&both),
        "exactly one of cel or sidecar must be specified for each domain hook",
    )?;
    let elsewhere = plugin(
        "elsewhere",
        json!({"sidecar": {"socketPath": "/var/run/kubevirt-hooks/hook.sock"}}),
    );
    expect_refused(
        context.dry_run_create(&elsewhere),
        "sidecar socketPath must start with /var/run/kubevirt-plugin/<plugin-name>/",
    )?;
    context
        .dry_run_create(&plugin(
            "fine",
            json!({"sidecar": {"socketPath": "/var/run/kubevirt-plugin/fine/hook.sock"}}),
        ))
        .context("a valid Plugin")?;
    Ok(())
}

/// The worked example's profile as a Plugin (examples/plugins/ovmf-mmio64-aperture.yaml): the VM
/// owner's value is checked when the VM is written, and virt-launcher's pipeline adds exactly the
/// QEMU arguments the hook sidecar added, only for a value the profile allowed.
fn the_worked_example_as_a_plugin(context: &Context) -> Result<()> {
    context.apply_example("ovmf-mmio64-aperture.yaml")?;
    let plugin: Value = serde_json::from_str(&context.cluster.kubectl(&[
        "get",
        "plugins.plugin.kubevirt.io",
        "ovmf-mmio64-aperture",
        "-o",
        "json",
    ])?)?;
    // The binding is enforced within a second or so of its creation.
    wait_until_refused(context, &vm(Some("64G")), "must be the aperture in MiB")?;
    context
        .dry_run_create(&vm(Some("65536")))
        .context("a VM within the profile")?;
    context
        .dry_run_create(&vm(None))
        .context("a VM without the opt-in")?;
    expect_refused(
        context.dry_run_create(&vmi(Some("65536 -S"))),
        "ovmf.hooks.example.com/mmio64-mb must be the aperture in MiB",
    )?;

    let args = |value: Option<&str>| -> Result<Vec<String>> {
        let domain = context.domain_hooks(std::slice::from_ref(&plugin), &vmi(value))?;
        Ok(qemu_args(&domain))
    };
    let added = args(Some("65536"))?;
    ensure!(
        added == ["-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=65536"],
        "for 65536 the hook added the QEMU arguments {added:?}"
    );
    // What the VM policy refuses is not applied by the hook either (a VMI whose annotation was
    // changed while it ran, a VMI created where the policy is not bound).
    for value in [None, Some("65536 -S"), Some("-1"), Some("")] {
        let added = args(value)?;
        ensure!(
            added.is_empty(),
            "for {value:?} the hook added the QEMU arguments {added:?}"
        );
    }
    Ok(())
}

/// The runbook's last step: with every VM moved to the Plugin, `allowedImages: []` refuses the
/// legacy annotation on new VMs and the hook sidecar in new launcher Pods (a live migration's
/// target included), and accepts the migrated VM and its launcher Pod.
fn the_migration_leaves_no_hook_sidecar(context: &Context) -> Result<()> {
    let settings = json!({"allowedImages": []});
    let legacy = fixture("vm-create")?["object"].clone();
    expect_rejected(
        &context.judge(&legacy, &settings),
        "is not in allowedImages",
    )?;
    expect_allowed(&context.judge(&vm(Some("65536")), &settings))?;
    let launcher = |name: &str| -> Result<Value> {
        Ok(fixture(&format!("kubevirt/{RELEASE}/launcher-pod-create-{name}"))?["object"].clone())
    };
    expect_rejected(
        &context.judge(&launcher("gpu-hook-gates-on")?, &settings),
        "\"hook-sidecar-0\": image",
    )?;
    expect_allowed(&context.judge(&launcher("no-sidecar-gates-on")?, &settings))?;
    Ok(())
}

/// The launcher Pods KubeVirt v1.9.0 renders with the Plugins gate, after the Plugin's
/// MutatingAdmissionPolicy (examples/plugins/smbios-sidecar.yaml) and KubeVirt's own policies:
/// the injected container is the one of test_data/kubevirt/v1.9.0/launcher-pod-create-plugin-*;
/// the module judges the hook sidecar alone, and never names the Plugin's container.
fn a_plugins_sidecar_beside_a_hook_sidecar(context: &Context) -> Result<()> {
    context.apply_example("smbios-sidecar.yaml")?;
    for (rendered, with_plugin) in [
        ("no-sidecar-gates-on", "plugin-sidecar"),
        ("gpu-hook-gates-on", "plugin-sidecar-and-gpu-hook"),
    ] {
        let pod = fixture(&format!(
            "kubevirt/{RELEASE}/launcher-pod-create-{rendered}"
        ))?["object"]
            .clone();
        let admitted = wait_for_injection(context, &pod)?;
        let expected = fixture(&format!(
            "kubevirt/{RELEASE}/launcher-pod-create-{with_plugin}"
        ))?["object"]
            .clone();
        let names = |pod: &Value| -> Vec<String> {
            pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        };
        ensure!(
            names(&admitted) == names(&expected),
            "{rendered}: containers {:?}, the fixture has {:?}",
            names(&admitted),
            names(&expected)
        );
        for (admitted, expected) in admitted["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(
                expected["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
        {
            // The API server adds defaults (terminationMessagePath, ...); what the fixture says
            // is there as it says.
            ensure!(
                contains(admitted, expected),
                "{rendered}: the API server made {admitted} of the fixture's {expected}"
            );
        }

        let allowed = json!({"allowedImages": [GPU_HOOK]});
        expect_allowed(&context.judge(&admitted, &allowed))?;
        let response = context.judge(&admitted, &json!({}));
        if rendered.starts_with("gpu-hook") {
            expect_rejected(&response, "spec.containers[1] \"hook-sidecar-0\": image")?;
            let message = message(&response);
            ensure!(
                message.matches("is not in allowedImages").count() == 1
                    && !message.contains("plugin-sidecar"),
                "{message}"
            );
        } else {
            expect_allowed(&response)?;
        }
    }
    Ok(())
}

/// Containers dressed as the other kind: KubeVirt's subPath policy accepts a Plugin container
/// named `hook-sidecar-*` (it has its subPath), the module refuses it; a container mounting the
/// plugin socket volume without a subPath is KubeVirt's to refuse, and it does.
fn containers_dressed_as_the_other_kind(context: &Context) -> Result<()> {
    let pod = fixture(&format!(
        "kubevirt/{RELEASE}/launcher-pod-create-gpu-hook-gates-on"
    ))?["object"]
        .clone();
    let with_container = |container: Value| {
        let mut pod = pod.clone();
        if let Some(containers) = pod["spec"]["containers"].as_array_mut() {
            containers.push(container);
        }
        pod
    };
    let mount = |sub_path: Option<&str>| {
        let mut mount =
            json!({"name": "kubevirt-plugin-sockets", "mountPath": "/var/run/kubevirt-plugin/x/"});
        if let Some(sub_path) = sub_path {
            mount["subPath"] = json!(sub_path);
        }
        mount
    };
    let settings = json!({"allowedImages": [GPU_HOOK, PLUGIN_IMAGE]});

    let named_like_a_hook = with_container(
        json!({"name": "hook-sidecar-9", "image": PLUGIN_IMAGE, "volumeMounts": [mount(Some("x"))]}),
    );
    let admitted = context
        .dry_run_create(&named_like_a_hook)
        .context("KubeVirt's policies accept a Plugin container with its subPath")?;
    expect_rejected(
        &context.judge(&admitted, &settings),
        "\"hook-sidecar-9\": mounts the volume \"kubevirt-plugin-sockets\" (the Plugin socket directory)",
    )?;

    let impostor = with_container(json!({"name": "plugin-sidecar-x", "image": PLUGIN_IMAGE,
        "volumeMounts": [{"name": "hook-sidecar-sockets", "mountPath": "/var/run/kubevirt-hooks", "subPath": "x"}]}));
    let admitted = context.dry_run_create(&impostor)?;
    expect_rejected(
        &context.judge(&admitted, &settings),
        "\"plugin-sidecar-x\": mounts the hook socket volume \"hook-sidecar-sockets\" but is not named hook-sidecar-<i>",
    )?;

    let without_sub_path = with_container(
        json!({"name": "plugin-sidecar-x", "image": PLUGIN_IMAGE, "volumeMounts": [mount(None)]}),
    );
    expect_refused(
        context.dry_run_create(&without_sub_path),
        "sidecar containers must use subPath when mounting the plugin socket volume",
    )?;
    Ok(())
}

// ---- helpers

fn renderer() -> Result<PathBuf> {
    let script = repo_root().join("hack/build-kubevirt-render.sh");
    let path = run(Command::new(script).arg(RELEASE), None)?;
    Ok(PathBuf::from(path.trim()))
}

fn run(command: &mut Command, stdin: Option<&str>) -> Result<String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{command:?}"))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(input.as_bytes())?;
    }
    drop(child.stdin.take());
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

fn fixture(name: &str) -> Result<Value> {
    let path = repo_root().join(format!("test_data/{name}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

/// A VM of the migrated kind: the opt-in annotation, no hook sidecar.
fn vm(opt_in: Option<&str>) -> Value {
    let mut vm = fixture("vm-create-no-sidecar").expect("fixture")["object"].clone();
    let annotations = &mut vm["spec"]["template"]["metadata"]["annotations"];
    *annotations = json!({});
    if let Some(value) = opt_in {
        annotations[OPT_IN] = json!(value);
    }
    strip_server_fields(&mut vm);
    vm
}

fn vmi(opt_in: Option<&str>) -> Value {
    let mut vmi = fixture("vmi-create").expect("fixture")["object"].clone();
    vmi["metadata"]["annotations"] = match opt_in {
        Some(value) => json!({OPT_IN: value}),
        None => json!({}),
    };
    strip_server_fields(&mut vmi);
    vmi
}

/// What a client does not send on create.
fn strip_server_fields(object: &mut Value) {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for key in ["resourceVersion", "uid", "creationTimestamp", "generation"] {
            metadata.remove(key);
        }
    }
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
}

/// The values of the domain's `<qemu:commandline>` arguments, in order.
fn qemu_args(domain: &str) -> Vec<String> {
    let Some(start) = domain.find("commandline") else {
        return Vec::new();
    };
    domain[start..]
        .split("<arg ")
        .skip(1)
        .filter_map(|arg| {
            let value = arg.split_once("value=\"")?.1;
            Some(value.split_once('"')?.0.to_owned())
        })
        .collect()
}

/// Whether `actual` has everything `expected` has (objects key by key, lists item by item).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(key, value)| a.get(key).is_some_and(|actual| contains(actual, value))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(a, e)| contains(a, e))
        }
        _ => actual == expected,
    }
}

/// Dry-runs `pod` until the Plugin's MutatingAdmissionPolicy, created just before, has added its
/// container (the API server loads a new policy within a second or so).
fn wait_for_injection(context: &Context, pod: &Value) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let admitted = context.dry_run_create(pod)?;
        let injected = admitted["spec"]["containers"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "plugin-sidecar-smbios"));
        if injected {
            return Ok(admitted);
        }
        ensure!(
            Instant::now() < deadline,
            "the MutatingAdmissionPolicy added no container after 30 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_until_refused(context: &Context, object: &Value, fragment: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match context.dry_run_create(object) {
            Err(error) if format!("{error:#}").contains(fragment) => return Ok(()),
            outcome => ensure!(
                Instant::now() < deadline,
                "not refused with {fragment:?} after 30 s: {outcome:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn expect_refused(outcome: Result<Value>, fragment: &str) -> Result<()> {
    match outcome {
        Ok(object) => bail!("the API server accepted {object}"),
        Err(error) => {
            let error = format!("{error:#}");
            ensure!(error.contains(fragment), "{fragment:?} not in {error}");
            Ok(())
        }
    }
}

fn message(response: &AdmissionResponse) -> String {
    response
        .status
        .as_ref()
        .and_then(|status| status.message.clone())
        .unwrap_or_default()
}

fn expect_allowed(response: &AdmissionResponse) -> Result<()> {
    ensure!(response.allowed, "rejected: {response:?}");
    Ok(())
}

fn expect_rejected(response: &AdmissionResponse, fragment: &str) -> Result<()> {
    ensure!(!response.allowed, "allowed: {response:?}");
    let message = message(response);
    ensure!(
        message.contains(fragment),
        "{fragment:?} not in {message:?}"
    );
    Ok(())
}
