//! Context-aware mode end to end: the wasm module, run by the in-repo host the way policy-server
//! runs it, reads the Setting through `kubernetes/get_resource` from a real kube-apiserver (the
//! sync job's test harness), as policy-server's ServiceAccount with only the RBAC the chart renders
//! for context-aware mode. One server, scenarios one after the other. Approved scripts
//! (`allowedScripts`) the same way: the ConfigMaps a sidecar names, read with field masks and
//! without cache, as the chart's RBAC for them lets policy-server.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use kube::Client;
use kube::api::DeleteParams;
use libtest_mimic::{Arguments, Failed, Trial};
use policy_host::admission::AdmissionResponse;
use policy_host::callbacks::{HostCapabilities, KubernetesBackend};
use policy_host::host::{CodeCache, PolicyHost};
use policy_host::kubernetes::ClusterClient;
use policy_host::metadata::ContextAwareResource;
use serde_json::{Value, json};
use test_support::*;

const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const OTHER_HOOK: &str = "registry.example.com/kubevirt-hooks/other:v1";
/// Where Kubewarden runs policy-server (the chart's `kubewarden.namespace`).
const POLICY_SERVER_NAMESPACE: &str = JOB_NAMESPACE;
const POLICY_SERVER_ACCOUNT: &str = "policy-server";
/// The host's cache time in these tests (policy-server's is 5 s): short, to keep them quick.
const CACHE_TIME: Duration = Duration::from_secs(1);

/// The shared cluster, the admin client, and policy-server's kubeconfig.
struct Context {
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    admin: Client,
    policy_server_kubeconfig: PathBuf,
    module: PathBuf,
}

impl Context {
    fn start() -> Result<Self> {
        let module = common::build_module(&repo_root())?;
        let cluster = Cluster::start()?;
        cluster.kubectl(&[
            "create",
            "serviceaccount",
            POLICY_SERVER_ACCOUNT,
            "-n",
            POLICY_SERVER_NAMESPACE,
        ])?;
        let account =
            format!("policy.contextAware.policyServerServiceAccount.name={POLICY_SERVER_ACCOUNT}");
        let namespace = format!("kubewarden.namespace={POLICY_SERVER_NAMESPACE}");
        let scripts = format!(
            "policy.settings.allowedScripts=[{{\"sha256\":\"{}\"}}]",
            sha256(SCRIPT)
        );
        let rbac: Vec<_> = cluster
            .render_chart_with(&[
                "--set",
                "policy.contextAware.enabled=true",
                "--set",
                &account,
                "--set",
                &namespace,
                "--set-json",
                &scripts,
            ])?
            .into_iter()
            .filter(|object| {
                matches!(
                    object["kind"].as_str(),
                    Some("ClusterRole" | "ClusterRoleBinding")
                ) && object["metadata"]["name"].as_str().is_some_and(|name| {
                    name.ends_with("-policy-server-settings")
                        || name.ends_with("-policy-server-configmaps")
                })
            })
            .collect();
        assert_eq!(rbac.len(), 4, "the chart's policy-server RBAC: {rbac:?}");
        let file = cluster.manifest_file("policy-server-rbac.json", &rbac)?;
        cluster.kubectl(&["apply", "-f", &file.display().to_string()])?;
        let token = cluster.kubectl(&[
            "create",
            "token",
            POLICY_SERVER_ACCOUNT,
            "-n",
            POLICY_SERVER_NAMESPACE,
            "--duration=24h",
        ])?;
        let policy_server_kubeconfig = std::env::temp_dir().join(format!(
            "context-aware-policy-server-{}.kubeconfig",
            std::process::id()
        ));
        std::fs::write(
            &policy_server_kubeconfig,
            kubeconfig(cluster.port, token.trim()),
        )?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let admin = runtime.block_on(cluster.client())?;
        Ok(Self {
            cluster,
            runtime,
            admin,
            policy_server_kubeconfig,
            module,
        })
    }

    /// The module run with the Setting granted, answered by the cluster as policy-server's
    /// ServiceAccount, with `cache_time`.
    fn host(&self, cache_time: Duration) -> Result<PolicyHost> {
        let client = ClusterClient::from_kubeconfig(&self.policy_server_kubeconfig, cache_time)?;
        self.host_with(KubernetesBackend::Cluster(Box::new(client)), true)
    }

    fn host_with(&self, kubernetes: KubernetesBackend, granted: bool) -> Result<PolicyHost> {
        let kinds: &[(&str, &str)] = if granted {
            &[("harvesterhci.io/v1beta1", "Setting"), ("v1", "ConfigMap")]
        } else {
            &[]
        };
        self.host_granting(kubernetes, kinds)
    }

    /// The module run with `kinds` granted (its contextAwareResources as deployed).
    fn host_granting(
        &self,
        kubernetes: KubernetesBackend,
        kinds: &[(&str, &str)],
    ) -> Result<PolicyHost> {
        let allowed_resources = (kinds.iter())
            .map(|(api_version, kind)| ContextAwareResource {
                api_version: (*api_version).into(),
                kind: (*kind).into(),
            })
            .collect();
        Ok(
            PolicyHost::load(&self.module, Duration::from_secs(2), CodeCache::Disabled)?
                .with_capabilities(HostCapabilities {
                    allowed_resources,
                    kubernetes,
                    ..HostCapabilities::default()
                }),
        )
    }

    fn put_setting(&self, default: &str, value: &str) -> Result<()> {
        self.runtime
            .block_on(put_setting(&self.admin, default, value))
            .map(drop)
    }

    fn delete_setting(&self) -> Result<()> {
        self.runtime.block_on(async {
            settings_api(&self.admin)
                .delete(SETTING, &DeleteParams::default())
                .await?;
            anyhow::Ok(())
        })
    }

    fn reset(&self) -> Result<()> {
        self.runtime.block_on(reset(&self.admin))
    }
}

type Scenario = fn(&Context) -> Result<()>;

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let context: Arc<OnceLock<Result<Context, String>>> = Arc::new(OnceLock::new());
    let scenarios: &[(&str, Scenario)] = &[
        (
            "the_verdict_follows_the_setting_within_the_cache_time",
            the_verdict_follows_the_setting_within_the_cache_time,
        ),
        ("both_list_modes", both_list_modes),
        (
            "invalid_entries_allow_nothing_and_are_named",
            invalid_entries_allow_nothing_and_are_named,
        ),
        (
            "a_missing_setting_adds_no_entries",
            a_missing_setting_adds_no_entries,
        ),
        (
            "a_failed_host_call_rejects_with_the_reason",
            a_failed_host_call_rejects_with_the_reason,
        ),
        (
            "requests_without_sidecars_make_no_host_call",
            requests_without_sidecars_make_no_host_call,
        ),
        (
            "the_update_rules_are_unchanged",
            the_update_rules_are_unchanged,
        ),
        (
            "a_digest_the_setting_allows_is_governed_by_the_profiles",
            a_digest_the_setting_allows_is_governed_by_the_profiles,
        ),
        (
            "an_approved_script_is_allowed_at_the_vm_and_its_launcher_pod",
            an_approved_script_is_allowed_at_the_vm_and_its_launcher_pod,
        ),
        (
            "a_script_that_differs_by_one_byte_is_refused_at_the_vm_and_its_pod",
            a_script_that_differs_by_one_byte_is_refused_at_the_vm_and_its_pod,
        ),
        (
            "a_config_map_recreated_after_the_vm_is_caught_at_the_pod",
            a_config_map_recreated_after_the_vm_is_caught_at_the_pod,
        ),
        (
            "script_lookups_fail_closed_with_the_reason",
            script_lookups_fail_closed_with_the_reason,
        ),
        (
            "an_unchanged_update_reads_no_config_map",
            an_unchanged_update_reads_no_config_map,
        ),
    ];
    let trials = scenarios
        .iter()
        .map(|&(name, scenario)| {
            let context = Arc::clone(&context);
            Trial::test(name, move || run_scenario(&context, scenario))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop kube-apiserver and etcd before exiting (exit skips destructors).
    if let Some(Ok(context)) = Arc::try_unwrap(context).ok().and_then(OnceLock::into_inner) {
        let _ = std::fs::remove_file(&context.policy_server_kubeconfig);
        drop(context.cluster);
    }
    conclusion.exit();
}

fn run_scenario(
    context: &OnceLock<Result<Context, String>>,
    scenario: Scenario,
) -> Result<(), Failed> {
    let context = context
        .get_or_init(|| Context::start().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| Failed::from(format!("cannot start the test cluster: {error}")))?;
    context.reset()?;
    scenario(context).map_err(|error| Failed::from(format!("{error:#}")))
}

// ---- the scenarios

fn the_verdict_follows_the_setting_within_the_cache_time(context: &Context) -> Result<()> {
    let host = context.host(CACHE_TIME)?;
    let request = fixture("vm-create")?;
    let settings = context_aware("union");
    let rejected = host.validate(&request, &settings);
    expect_rejected(
        &rejected,
        "is not in allowedImages nor in Setting \"whitelisted-sidecars\"",
    )?;

    // Created: a missing Setting is not cached (policy-server caches answers, not errors).
    context.put_setting("", GPU_HOOK)?;
    let waited = wait_for_verdict(&host, &request, &settings, true)?;
    println!("created: allowed after {waited:?}");

    // Changed: the cached answer may serve for up to the cache time.
    context.put_setting("", OTHER_HOOK)?;
    let waited = wait_for_verdict(&host, &request, &settings, false)?;
    println!("changed: rejected after {waited:?}");

    context.put_setting(GPU_HOOK, "")?;
    wait_for_verdict(&host, &request, &settings, true)?;
    context.delete_setting()?;
    let waited = wait_for_verdict(&host, &request, &settings, false)?;
    println!("deleted: rejected after {waited:?}");
    Ok(())
}

fn both_list_modes(context: &Context) -> Result<()> {
    let host = context.host(Duration::ZERO)?;
    let request = fixture("vm-create")?;
    context.put_setting(GPU_HOOK, OTHER_HOOK)?;
    expect_allowed(&host.validate(&request, &context_aware("union")))?;
    expect_rejected(
        &host.validate(&request, &context_aware("effective")),
        "nor in Setting",
    )?;
    // Harvester's effective value: the default while value is empty.
    context.put_setting(GPU_HOOK, "")?;
    expect_allowed(&host.validate(&request, &context_aware("effective")))?;
    Ok(())
}

fn invalid_entries_allow_nothing_and_are_named(context: &Context) -> Result<()> {
    let host = context.host(Duration::ZERO)?;
    let request = fixture("vm-create")?;
    let warning = "Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1), field value: \
                   entry \"Bad/Entry\" allows nothing";
    context.put_setting("", &format!("Bad/Entry, {GPU_HOOK}"))?;
    let response = host.validate(&request, &context_aware("union"));
    expect_allowed(&response)?;
    expect_warning(&response, warning)?;
    context.put_setting("", &format!("Bad/Entry, {OTHER_HOOK}"))?;
    let response = host.validate(&request, &context_aware("union"));
    expect_rejected(&response, "nor in Setting")?;
    expect_warning(&response, warning)
}

fn a_missing_setting_adds_no_entries(context: &Context) -> Result<()> {
    let host = context.host(CACHE_TIME)?;
    let request = fixture("vm-create")?;
    let response = host.validate(&request, &context_aware("union"));
    expect_rejected(&response, "nor in Setting")?;
    expect_warning(
        &response,
        "Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1) does not exist",
    )?;
    let mut settings = context_aware("union");
    settings["allowedImages"] = json!([GPU_HOOK]);
    expect_allowed(&host.validate(&request, &settings))
}

fn a_failed_host_call_rejects_with_the_reason(context: &Context) -> Result<()> {
    context.put_setting("", GPU_HOOK)?;
    let request = fixture("vm-create")?;
    let mut settings = context_aware("union");
    // Allowed by allowedImages too: a lookup that fails still rejects (fail closed).
    settings["allowedImages"] = json!([GPU_HOOK]);

    // The policy deployed without contextAwareResources: policy-server refuses the lookup.
    let host = context.host_with(
        KubernetesBackend::Cluster(Box::new(ClusterClient::from_kubeconfig(
            &context.policy_server_kubeconfig,
            CACHE_TIME,
        )?)),
        false,
    )?;
    expect_rejected(
        &host.validate(&request, &settings),
        "cannot read Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1), so the policy \
         cannot tell which sidecars it allows: error invoking host capability \
         kubernetes.get_resource: Host error: Policy has not been granted access to Kubernetes \
         harvesterhci.io/v1beta1/Setting resources",
    )?;

    // RBAC: policy-server may read the one Setting the RBAC names, not another.
    let host = context.host(CACHE_TIME)?;
    let mut other = settings.clone();
    other["harvesterSetting"]["name"] = json!("other-setting");
    expect_rejected(
        &host.validate(&request, &other),
        "cannot read Setting \"other-setting\"",
    )?;
    expect_rejected(&host.validate(&request, &other), "forbidden")?;

    // The API server unreachable (a closed port).
    let unreachable =
        std::env::temp_dir().join(format!("unreachable-{}.kubeconfig", std::process::id()));
    std::fs::write(&unreachable, kubeconfig(closed_port()?, "token"))?;
    let client = ClusterClient::from_kubeconfig(&unreachable, CACHE_TIME);
    let _ = std::fs::remove_file(&unreachable);
    let host = context.host_with(KubernetesBackend::Cluster(Box::new(client?)), true)?;
    expect_rejected(
        &host.validate(&request, &settings),
        "Callback evaluation failure",
    )?;
    Ok(())
}

fn requests_without_sidecars_make_no_host_call(context: &Context) -> Result<()> {
    // Every lookup would fail, and a failed lookup rejects: acceptance means no lookup was made.
    let host = context.host_with(KubernetesBackend::None, true)?;
    for name in ["vm-create-no-sidecar", "vm-delete", "pod-create"] {
        expect_allowed(&host.validate(&fixture(name)?, &context_aware("union")))
            .with_context(|| name.to_owned())?;
    }
    expect_rejected(
        &host.validate(&fixture("vm-create")?, &context_aware("union")),
        "kube::Client was not initialized properly",
    )
}

fn the_update_rules_are_unchanged(context: &Context) -> Result<()> {
    let host = context.host(Duration::ZERO)?;
    context.put_setting("", OTHER_HOOK)?;
    // The sidecar left the list (or was never on it): an update that keeps it passes, warned.
    let response = host.validate(&fixture("vm-update-unchanged")?, &context_aware("union"));
    expect_allowed(&response)?;
    expect_warning(&response, "unchanged by this update")?;
    expect_rejected(
        &host.validate(&fixture("vm-update-adds-sidecar")?, &context_aware("union")),
        "nor in Setting",
    )?;
    context.put_setting("", GPU_HOOK)?;
    expect_allowed(&host.validate(&fixture("vm-update-adds-sidecar")?, &context_aware("union")))
}

/// Issue 21's bypass: the Setting allows the repository by path, the policy's profile names the
/// image by tag, and the VM owner asks for it by digest, with free args and a second QEMU option.
fn a_digest_the_setting_allows_is_governed_by_the_profiles(context: &Context) -> Result<()> {
    const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let host = context.host(Duration::ZERO)?;
    context.put_setting("", "registry.example.com/kubevirt-hooks/*")?;
    let mut settings = context_aware("union");
    settings["sidecarProfiles"] = json!([{
        "image": GPU_HOOK,
        "args": [["--version", "v1alpha3"]],
        "annotations": {ARGS_KEY: "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"},
    }]);
    let vm = |args: &[&str], qemu_args: &str| -> Result<Value> {
        let mut request = fixture("vm-create")?;
        let annotations = &mut request["object"]["spec"]["template"]["metadata"]["annotations"];
        let sidecars = json!([{"image": format!("{GPU_HOOK}@{DIGEST}"), "args": args}]);
        annotations["hooks.kubevirt.io/hookSidecars"] = json!(sidecars.to_string());
        annotations[ARGS_KEY] = json!(qemu_args);
        Ok(request)
    };
    let bypass = vm(
        &["--free"],
        "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1 -drive file=/dev/sda",
    )?;
    expect_rejected(
        &host.validate(&bypass, &settings),
        "sidecarProfiles[0] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\")",
    )?;
    let pinned = vm(
        &["--version", "v1alpha3"],
        "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536",
    )?;
    expect_allowed(&host.validate(&pinned, &settings))
}

// ---- approved scripts

/// The KubeVirt user guide's kind of hook: a short script for the sidecar-shim, here the GPU
/// MMIO aperture.
const SCRIPT: &str = "#!/bin/sh\n# onDefineDomain: widen the 64-bit MMIO aperture\nexec sed 's|</devices>|</devices><qemu:commandline><qemu:arg value=\"-fw_cfg\"/><qemu:arg value=\"name=opt/ovmf/X-PciMmio64Mb,string=65536\"/></qemu:commandline>|' \"$4\"\n";
/// What KubeVirt renders for the shim in the launcher-Pod fixtures (test_data/generate.py).
const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.7.0";
/// The ConfigMap and key of the fixtures' shim sidecar (launcher-pod-create-shim-configmap).
const CONFIG_MAP: &str = "gpu-vm-hooks";
const KEY: &str = "onDefineDomain";

/// As `sha256sum` prints it.
fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    (sha2::Sha256::digest(text.as_bytes()).iter())
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn script_settings() -> Value {
    json!({
        "allowedImages": [SHIM],
        "sidecarShimImage": SHIM,
        "allowedScripts": [{"sha256": sha256(SCRIPT), "description": "GPU MMIO aperture"}],
    })
}

/// A VM whose template carries the fixtures' shim sidecar with its ConfigMap `key`.
fn script_vm(key: &str) -> Result<Value> {
    let mut request = fixture("vm-create")?;
    let sidecars = json!([{"args": ["--version", "v1alpha3"], "configMap": {"name": CONFIG_MAP, "key": key, "hookPath": "/usr/bin/onDefineDomain"}}]);
    request["object"]["spec"]["template"]["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"] =
        json!(sidecars.to_string());
    Ok(request)
}

/// The launcher Pod KubeVirt rendered for that VM (the ConfigMap volume, subPath = key).
fn script_pod() -> Result<Value> {
    fixture("launcher-pod-create-shim-configmap")
}

impl Context {
    /// (Re)creates the ConfigMap with `data` or `binaryData` (`binary`) `{key: script}`.
    fn put_config_map(
        &self,
        key: &str,
        script: &[u8],
        binary: bool,
        immutable: bool,
    ) -> Result<()> {
        self.delete_config_map()?;
        let data = if binary {
            let encoded = base64_encode(script);
            json!({"binaryData": {key: encoded}})
        } else {
            json!({"data": {key: String::from_utf8(script.to_vec())?}})
        };
        let mut object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "namespace": "default"},
            "immutable": immutable,
        });
        object
            .as_object_mut()
            .context("object")?
            .extend(data.as_object().context("object")?.clone());
        let file = self.cluster.manifest_file("config-map.json", &[object])?;
        self.cluster
            .kubectl(&["create", "-f", &file.display().to_string()])?;
        Ok(())
    }

    fn delete_config_map(&self) -> Result<()> {
        self.cluster.kubectl(&[
            "delete",
            "configmap",
            CONFIG_MAP,
            "-n",
            "default",
            "--ignore-not-found",
            "--wait",
        ])?;
        Ok(())
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .fold(0u32, |group, byte| group << 8 | u32::from(*byte))
            << (8 * (3 - chunk.len()));
        for index in 0..4 {
            encoded.push(if index <= chunk.len() {
                char::from(ALPHABET[(group >> (18 - 6 * index) & 63) as usize])
            } else {
                '='
            });
        }
    }
    encoded
}

fn an_approved_script_is_allowed_at_the_vm_and_its_launcher_pod(context: &Context) -> Result<()> {
    let host = context.host(CACHE_TIME)?;
    let settings = script_settings();
    for binary in [false, true] {
        context.put_config_map(KEY, SCRIPT.as_bytes(), binary, true)?;
        expect_allowed(&host.validate(&script_vm(KEY)?, &settings))?;
        expect_allowed(&host.validate(&script_pod()?, &settings))?;
    }
    // A key with a dot cannot be named by a field mask: both maps come whole, and are read.
    context.put_config_map("hook.sh", SCRIPT.as_bytes(), false, true)?;
    expect_allowed(&host.validate(&script_vm("hook.sh")?, &settings))?;

    // Listed, but the ConfigMap could change under a running VM.
    context.put_config_map(KEY, SCRIPT.as_bytes(), false, false)?;
    let object = format!("configMap \"{CONFIG_MAP}\" (namespace \"default\"), key \"{KEY}\": ");
    for request in [script_vm(KEY)?, script_pod()?] {
        expect_rejected(
            &host.validate(&request, &settings),
            &format!(
                "{object}the script in data (sha256 {}) is in allowedScripts, but the ConfigMap is not immutable",
                sha256(SCRIPT)
            ),
        )?;
    }
    // The key is not there.
    context.put_config_map("other", SCRIPT.as_bytes(), false, true)?;
    expect_rejected(
        &host.validate(&script_vm(KEY)?, &settings),
        &format!("{object}no such key in data or binaryData"),
    )?;
    // allowConfigMap: true keeps meaning any script, and no ConfigMap is read.
    let none = context.host_with(KubernetesBackend::None, true)?;
    let any = json!({"allowedImages": [SHIM], "sidecarShimImage": SHIM, "allowConfigMap": true});
    expect_allowed(&none.validate(&script_vm(KEY)?, &any))?;
    context.delete_config_map()
}

fn a_script_that_differs_by_one_byte_is_refused_at_the_vm_and_its_pod(
    context: &Context,
) -> Result<()> {
    let host = context.host(CACHE_TIME)?;
    let settings = script_settings();
    // The same text after normalisation: CRLF line ends; one newline less.
    for script in [SCRIPT.replace('\n', "\r\n"), SCRIPT.trim_end().to_owned()] {
        for binary in [false, true] {
            context.put_config_map(KEY, script.as_bytes(), binary, true)?;
            let field = if binary { "binaryData" } else { "data" };
            let reason = format!(
                "key \"{KEY}\": the script in {field} (sha256 {}) is not in allowedScripts",
                sha256(&script)
            );
            expect_rejected(&host.validate(&script_vm(KEY)?, &settings), &reason)?;
            expect_rejected(&host.validate(&script_pod()?, &settings), &reason)?;
        }
    }
    context.delete_config_map()
}

fn a_config_map_recreated_after_the_vm_is_caught_at_the_pod(context: &Context) -> Result<()> {
    let host = context.host(CACHE_TIME)?;
    let settings = script_settings();
    context.put_config_map(KEY, SCRIPT.as_bytes(), false, true)?;
    expect_allowed(&host.validate(&script_vm(KEY)?, &settings))?;
    // Deleted and re-created, immutable, with another script under the same name: read afresh
    // (no cache), the next launcher Pod is refused at once.
    let evil = "#!/bin/sh\ncp /bin/sh /var/run/kubevirt-hooks/qemu-kvm\n";
    context.put_config_map(KEY, evil.as_bytes(), false, true)?;
    expect_rejected(
        &host.validate(&script_pod()?, &settings),
        &format!("(sha256 {}) is not in allowedScripts", sha256(evil)),
    )?;
    context.delete_config_map()?;
    expect_rejected(
        &host.validate(&script_pod()?, &settings),
        "the ConfigMap does not exist",
    )
}

fn script_lookups_fail_closed_with_the_reason(context: &Context) -> Result<()> {
    let settings = script_settings();
    context.put_config_map(KEY, SCRIPT.as_bytes(), false, true)?;
    let client = || ClusterClient::from_kubeconfig(&context.policy_server_kubeconfig, CACHE_TIME);
    // Deployed without v1/ConfigMap in contextAwareResources.
    let host = context.host_granting(
        KubernetesBackend::Cluster(Box::new(client()?)),
        &[("harvesterhci.io/v1beta1", "Setting")],
    )?;
    expect_rejected(
        &host.validate(&script_vm(KEY)?, &settings),
        &format!(
            "configMap \"{CONFIG_MAP}\" (namespace \"default\"), key \"{KEY}\": cannot read the ConfigMap, so cannot tell whether it holds a script of allowedScripts: error invoking host capability kubernetes.get_resource: Host error: Policy has not been granted access to Kubernetes v1/ConfigMap resources"
        ),
    )?;
    // The API server unreachable.
    let unreachable =
        std::env::temp_dir().join(format!("unreachable-cm-{}.kubeconfig", std::process::id()));
    std::fs::write(&unreachable, kubeconfig(closed_port()?, "token"))?;
    let broken = ClusterClient::from_kubeconfig(&unreachable, CACHE_TIME);
    let _ = std::fs::remove_file(&unreachable);
    let host = context.host_with(KubernetesBackend::Cluster(Box::new(broken?)), true)?;
    expect_rejected(
        &host.validate(&script_pod()?, &settings),
        "cannot read the ConfigMap, so cannot tell whether it holds a script of allowedScripts: error invoking host capability kubernetes.get_resource: Host error: Callback evaluation failure",
    )?;
    context.delete_config_map()
}

fn an_unchanged_update_reads_no_config_map(context: &Context) -> Result<()> {
    // Every lookup would fail, and a failed lookup rejects: acceptance means none was made.
    let host = context.host_with(KubernetesBackend::None, true)?;
    let settings = script_settings();
    let mut update = fixture("vm-update-unchanged")?;
    let sidecars = script_vm(KEY)?["object"]["spec"]["template"]["metadata"]["annotations"]
        ["hooks.kubevirt.io/hookSidecars"]
        .clone();
    for object in ["object", "oldObject"] {
        update[object]["spec"]["template"]["metadata"]["annotations"]["hooks.kubevirt.io/hookSidecars"] =
            sidecars.clone();
    }
    let response = host.validate(&update, &settings);
    expect_allowed(&response)?;
    ensure!(response.warnings.is_none(), "{response:?}");
    // The same sidecar added by the update is read, and the failure named.
    update["oldObject"]["spec"]["template"]["metadata"]["annotations"]
        .as_object_mut()
        .context("annotations")?
        .remove("hooks.kubevirt.io/hookSidecars");
    expect_rejected(
        &host.validate(&update, &settings),
        "cannot read the ConfigMap, so cannot tell whether it holds a script of allowedScripts",
    )
}

// ---- helpers

fn context_aware(list_mode: &str) -> Value {
    json!({"harvesterSetting": {"name": SETTING, "listMode": list_mode}})
}

fn fixture(name: &str) -> Result<Value> {
    let path = repo_root().join(format!("test_data/{name}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

/// Evaluates until the verdict is `allowed`; fails after the cache time and a margin.
fn wait_for_verdict(
    host: &PolicyHost,
    request: &Value,
    settings: &Value,
    allowed: bool,
) -> Result<Duration> {
    let start = Instant::now();
    let limit = CACHE_TIME + Duration::from_secs(2);
    loop {
        let response = host.validate(request, settings);
        if response.allowed == allowed {
            return Ok(start.elapsed());
        }
        ensure!(
            start.elapsed() < limit,
            "still {} after {limit:?}: {response:?}",
            if allowed { "rejected" } else { "allowed" }
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expect_allowed(response: &AdmissionResponse) -> Result<()> {
    ensure!(response.allowed, "rejected: {response:?}");
    Ok(())
}

fn expect_rejected(response: &AdmissionResponse, fragment: &str) -> Result<()> {
    ensure!(!response.allowed, "allowed: {response:?}");
    let message = response
        .status
        .as_ref()
        .and_then(|status| status.message.as_deref())
        .unwrap_or_default();
    ensure!(
        message.contains(fragment),
        "{fragment:?} not in {message:?}"
    );
    Ok(())
}

fn expect_warning(response: &AdmissionResponse, fragment: &str) -> Result<()> {
    let warnings = response.warnings.as_deref().unwrap_or_default();
    ensure!(
        warnings.iter().any(|w| w.contains(fragment)),
        "no warning with {fragment:?} in {warnings:?}"
    );
    Ok(())
}

fn closed_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
