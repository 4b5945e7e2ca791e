//! docs/runbook.md, run from its own text against a real kube-apiserver and etcd (test-support):
//! each step's commands run with `bash`, the real `kubectl` and `helm`, the chart pulled from a
//! loopback OCI registry at the version the commands name, the real sync job (the Deployment's
//! arguments, its ServiceAccount's token), and the policy module as a validating webhook of that
//! kube-apiserver, so the refusals are real admission refusals. What cannot run here is done by
//! the emulator (`emulator.rs`, each part named) or named in `STEPS` as not run.

mod doc;
mod emulator;
mod webhook;

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use kube::Client;
use kube::api::{DynamicObject, PostParams};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};
use test_support::*;

use doc::Step;
use emulator::{Emulator, Moment, POLICY_SERVER_DEPLOYMENT};
use webhook::Webhook;

/// How each step of the runbook is taken by this test.
#[derive(Clone, Copy, Debug)]
enum Taken {
    /// Run as written (with the chart reference pointed at the loopback registry).
    Run,
    /// Not run, and why.
    NotRun(&'static str),
}

/// Every step of docs/runbook.md; a step there that is not here (or the reverse) fails the test.
const STEPS: &[(&str, Taken)] = &[
    (
        "kubewarden-install",
        Taken::NotRun(
            "Kubewarden's charts come from charts.kubewarden.io, which this machine cannot reach: the test installs their CRDs (sync/tests/crds) and plays kubewarden-controller (emulator.rs)",
        ),
    ),
    ("policy-server-ready", Taken::Run),
    ("which-path", Taken::Run),
    ("a-install", Taken::Run),
    ("a-wait-active", Taken::Run),
    ("a-gate", Taken::Run),
    ("a-gate-in-kubevirt", Taken::Run),
    ("a-allow", Taken::Run),
    ("prove-refusal", Taken::Run),
    ("which-path-b", Taken::Run),
    ("b-inventory", Taken::Run),
    ("b-install", Taken::Run),
    ("b-allow", Taken::Run),
    ("b-audit-run", Taken::Run),
    ("b-audit-read", Taken::Run),
    (
        "b-audit-read-policyreports",
        Taken::NotRun(
            "the PolicyReport CRDs (wgpolicyk8s.io) are not installed: Kubewarden 1.35 writes OpenReports by default, which b-audit-read reads",
        ),
    ),
    ("b-fix", Taken::Run),
    ("b-protect", Taken::Run),
    ("b-gate", Taken::Run),
    ("launcher-pods", Taken::Run),
    ("example-values", Taken::Run),
    ("example-vm", Taken::Run),
    ("example-vm-refused", Taken::Run),
    (
        "example-in-guest",
        Taken::NotRun("no VM runs here (no KubeVirt, no nodes): dmidecode runs inside the guest"),
    ),
    ("example-new-tag", Taken::Run),
    ("rollback", Taken::Run),
];

const CHART_REFERENCE: &str =
    "oci://ghcr.io/kubewarden-contrib/policies/charts/hook-sidecar-policy";
const HARVESTER_GATES: [&str; 5] = [
    "CPUManager",
    "DeclarativeHotplugVolumes",
    "ExpandDisks",
    "EnableVirtioFsConfigVolumes",
    "HostDevices",
];

struct Env {
    cluster: Arc<Cluster>,
    runtime: tokio::runtime::Runtime,
    admin: Client,
    webhook: Arc<Webhook>,
    emulator: Arc<Emulator>,
    registry: Registry,
    steps: Vec<Step>,
    /// kubectl and helm, as `PATH` finds them.
    bin: PathBuf,
    helm_home: PathBuf,
}

/// A loopback OCI registry (go-containerregistry's `crane registry serve`) holding the chart.
struct Registry {
    process: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn runbook() -> Result<Vec<Step>> {
    let text = std::fs::read_to_string(repo_root().join("docs/runbook.md"))?;
    doc::parse(&text)
}

impl Env {
    fn start() -> Result<Self> {
        let module = common::build_module(&repo_root())?;
        let job_binary = build_job(&repo_root())?;
        let cluster = Arc::new(Cluster::start()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let admin = runtime.block_on(cluster.client())?;
        let webhook = Arc::new(Webhook::start(&runtime, &module, cluster.dir())?);
        let emulator = Emulator::new(
            Arc::clone(&cluster),
            admin.clone(),
            Arc::clone(&webhook),
            job_binary,
        );
        runtime.spawn(Arc::clone(&emulator).run());

        // The harness installs the job's RBAC for the other tests: here the chart installs it.
        cluster.kubectl(&[
            "delete",
            "clusterrole,clusterrolebinding",
            SERVICE_ACCOUNT,
            "--ignore-not-found",
        ])?;
        cluster.kubectl(&[
            "delete",
            "serviceaccount",
            SERVICE_ACCOUNT,
            "-n",
            JOB_NAMESPACE,
            "--ignore-not-found",
        ])?;

        let (kubectl, helm) = cluster.tools();
        let bin = cluster.dir().join("runbook-bin");
        std::fs::create_dir_all(&bin)?;
        std::os::unix::fs::symlink(&kubectl, bin.join("kubectl"))?;
        std::os::unix::fs::symlink(&helm, bin.join("helm"))?;
        let helm_home = cluster.dir().join("helm-home");
        std::fs::create_dir_all(&helm_home)?;
        let registry = start_registry(&helm, &helm_home, cluster.dir())?;
        Ok(Self {
            cluster,
            runtime,
            admin,
            webhook,
            emulator,
            registry,
            steps: runbook()?,
            bin,
            helm_home,
        })
    }

    fn step(&self, name: &str) -> Result<&Step> {
        self.steps
            .iter()
            .find(|step| step.name == name)
            .ok_or_else(|| anyhow!("docs/runbook.md has no step {name}"))
    }

    /// The step's commands as the runbook writes them, the chart pulled from the loopback
    /// registry; each must print what the runbook shows (and fail when it shows an error).
    fn run_step(&self, name: &str) -> Result<()> {
        let taken = STEPS
            .iter()
            .find(|(step, _)| *step == name)
            .map(|(_, taken)| *taken);
        ensure!(
            matches!(taken, Some(Taken::Run)),
            "step {name} is not a Run step: {taken:?}"
        );
        let chart = format!(
            "oci://127.0.0.1:{}/charts/hook-sidecar-policy --plain-http",
            self.registry.port
        );
        for command in &self.step(name)?.commands {
            let script = command.script.replace(CHART_REFERENCE, &chart);
            let (success, output) = self.bash(&script, Duration::from_secs(300))?;
            self.emulator.settle();
            let context = || {
                format!(
                    "step {name} (docs/runbook.md line {}):\n$ {script}\n--- printed:\n{output}--- expected:\n{}\n--- job log:\n{}",
                    command.line,
                    command.expected.join("\n"),
                    self.emulator.job_log()
                )
            };
            if command.fails() {
                ensure!(
                    !success,
                    "the command succeeded, the runbook shows it failing: {}",
                    context()
                );
            } else {
                ensure!(success, "the command failed: {}", context());
            }
            ensure!(
                doc::matches(&command.expected, &output),
                "the output is not the runbook's: {}",
                context()
            );
        }
        Ok(())
    }

    /// `script` with bash, stderr into stdout, as a person's terminal shows them.
    fn bash(&self, script: &str, timeout: Duration) -> Result<(bool, String)> {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("exec 2>&1\n{script}"))
            .env("PATH", path)
            .env("KUBECONFIG", &self.cluster.admin_kubeconfig)
            .env("HELM_CACHE_HOME", self.helm_home.join("cache"))
            .env("HELM_CONFIG_HOME", self.helm_home.join("config"))
            .env("HELM_DATA_HOME", self.helm_home.join("data"))
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdout = child.stdout.take().context("stdout")?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("timed out after {timeout:?}: {script}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = reader.join().map_err(|_| anyhow!("reader panicked"))?;
        Ok((status.success(), output))
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.runtime.block_on(future)
    }

    /// Back to a Harvester cluster with Kubewarden and nothing of this chart; `gate_on` says
    /// whether someone turned the Sidecar gate on by hand (path B), with VMs using sidecars.
    fn reset_world(&self, gate_on: bool) -> Result<()> {
        self.emulator
            .paused
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.bash(
            "helm uninstall hook-sidecar-policy --namespace kubewarden --wait",
            Duration::from_secs(120),
        );
        self.emulator.reset();
        for (kind, namespace) in [
            ("clusteradmissionpolicies.policies.kubewarden.io", None),
            ("validatingwebhookconfigurations", None),
            ("settings.harvesterhci.io", None),
            ("virtualmachines.kubevirt.io", Some("default")),
            ("reports.openreports.io", Some("default")),
            (
                "jobs.batch,cronjobs.batch,deployments.apps",
                Some(JOB_NAMESPACE),
            ),
            ("kubevirts.kubevirt.io", Some(KUBEVIRT_NAMESPACE)),
            (
                "managedcharts.management.cattle.io",
                Some(MANAGED_CHART_NAMESPACE),
            ),
            ("policyservers.policies.kubewarden.io", None),
        ] {
            let mut args = vec!["delete", kind, "--all", "--wait"];
            if let Some(namespace) = namespace {
                args.extend(["-n", namespace]);
            }
            self.cluster.kubectl(&args)?;
        }
        self.block_on(reset_events(&self.admin))?;
        self.webhook.state.answers.lock().expect("lock").clear();
        self.install_harvester_and_kubewarden(gate_on)?;
        self.emulator
            .paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// What Harvester and Kubewarden's charts leave in a cluster, reduced to what the runbook
    /// touches: the KubeVirt CR and the ManagedChart that renders it, the PolicyServer `default`
    /// and its Deployment (kubewarden-defaults, two replicas), the audit scanner's CronJob
    /// (kubewarden-controller), and virt-api's VM webhook (emulated: the gate check only).
    fn install_harvester_and_kubewarden(&self, gate_on: bool) -> Result<()> {
        let mut gates: Vec<&str> = HARVESTER_GATES.to_vec();
        if gate_on {
            gates.push("Sidecar");
        }
        // Harvester's ManagedChart names no gates (its chart's defaults apply); someone who turned
        // the gate on did it in the chart's values.
        let chart_values = if gate_on {
            json!({ "kubevirt": { "spec": { "configuration": { "developerConfiguration": { "featureGates": gates } } } } })
        } else {
            json!({ "kubevirt": { "spec": { "configuration": { "vmStateStorageClass": "vmstate-persistence" } } } })
        };
        let objects = vec![
            json!({
                "apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                "metadata": { "name": KUBEVIRT, "namespace": KUBEVIRT_NAMESPACE },
                "spec": { "configuration": { "developerConfiguration": { "featureGates": gates } } },
            }),
            json!({
                "apiVersion": "management.cattle.io/v3", "kind": "ManagedChart",
                "metadata": { "name": MANAGED_CHART, "namespace": MANAGED_CHART_NAMESPACE },
                "spec": { "chart": "harvester", "releaseName": "harvester", "version": "1.7.0",
                          "defaultNamespace": "harvester-system", "repoName": "harvester-charts",
                          "values": chart_values, "targets": [{ "clusterName": "local" }] },
            }),
            json!({
                "apiVersion": "policies.kubewarden.io/v1", "kind": "PolicyServer",
                "metadata": { "name": "default" },
                "spec": { "image": "ghcr.io/kubewarden/policy-server:v1.35.0", "replicas": 2,
                          "minAvailable": 1, "serviceAccountName": "policy-server" },
            }),
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": "policy-server", "namespace": JOB_NAMESPACE },
            }),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": POLICY_SERVER_DEPLOYMENT, "namespace": JOB_NAMESPACE,
                              "labels": { "app.kubernetes.io/instance": POLICY_SERVER_DEPLOYMENT } },
                "spec": {
                    "replicas": 2,
                    "selector": { "matchLabels": { "app": "kubewarden-policy-server-default" } },
                    "template": {
                        "metadata": { "labels": { "app": "kubewarden-policy-server-default" } },
                        "spec": { "serviceAccountName": "policy-server", "containers": [{
                            "name": "policy-server", "image": "ghcr.io/kubewarden/policy-server:v1.35.0" }] },
                    },
                },
            }),
            json!({
                "apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": { "name": "audit-scanner", "namespace": JOB_NAMESPACE },
                "spec": { "schedule": "*/60 * * * *", "jobTemplate": { "spec": { "template": { "spec": {
                    "serviceAccountName": "audit-scanner", "restartPolicy": "Never",
                    "containers": [{ "name": "audit-scanner", "image": "ghcr.io/kubewarden/audit-scanner:v1.35.0" }] } } } } },
            }),
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": { "name": "virt-api-validator" },
                "webhooks": [{
                    "name": "virtualmachine-validator.kubevirt.io",
                    "clientConfig": { "url": self.webhook.url("/kubevirt/validate-vm"),
                                      "caBundle": base64(&self.webhook.ca_bundle) },
                    "rules": [{ "apiGroups": ["kubevirt.io"], "apiVersions": ["v1", "v1alpha3"],
                                "resources": ["virtualmachines"], "operations": ["CREATE", "UPDATE"] }],
                    "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                }],
            }),
        ];
        let file = self
            .cluster
            .manifest_file("harvester-and-kubewarden.json", &objects)?;
        self.cluster
            .kubectl(&["apply", "-f", &file.display().to_string()])?;
        // What virt-api reads from the CR (the emulator keeps it in step from now on).
        self.webhook
            .state
            .sidecar_gate
            .store(gate_on, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// VMs that exist before the policy: created by their owners while the gate was on.
    fn create_vms(&self, vms: &[(&str, &str)]) -> Result<()> {
        let api = kube::Api::<DynamicObject>::namespaced_with(
            self.admin.clone(),
            "default",
            &resource("kubevirt.io", "v1", "VirtualMachine", "virtualmachines"),
        );
        for (name, sidecars) in vms {
            let vm: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "metadata": { "name": name, "namespace": "default" },
                "spec": { "runStrategy": "Halted", "template": {
                    "metadata": { "annotations": { "hooks.kubevirt.io/hookSidecars": sidecars } },
                    "spec": { "domain": { "devices": {}, "memory": { "guest": "1Gi" } } } } },
            }))?;
            self.block_on(async { Ok(api.create(&PostParams::default(), &vm).await?) })?;
        }
        Ok(())
    }

    /// The admission answers of the policy's webhook for VMs named `name`.
    fn policy_answers(&self, name: &str) -> Vec<webhook::Answer> {
        self.webhook
            .answers()
            .into_iter()
            .filter(|answer| {
                answer
                    .webhook
                    .starts_with("/validate/clusterwide-hook-sidecars")
                    && answer.name == name
            })
            .collect()
    }
}

fn base64(text: &str) -> String {
    // The same encoder as the emulator's; one line of glue is not worth a dependency.
    use std::fmt::Write as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The sync job's binary (debug), built in this build's target directory.
fn build_job(root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("the test binary is not in a cargo target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "hook-sidecar-sync",
            "--bin",
            "hook-sidecar-sync",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root)
        .status()?;
    ensure!(status.success(), "building the sync job failed ({status})");
    Ok(target.join("debug/hook-sidecar-sync"))
}

/// `crane registry serve` on a free port, and the chart packaged from this repository pushed to
/// it under `charts/` (what `make release` pushes to `oci://<registry>/charts`).
fn start_registry(helm: &Path, helm_home: &Path, dir: &Path) -> Result<Registry> {
    let crane = go_tool("crane")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.join("registry.log"))?;
    let process = Command::new(crane)
        .args([
            "registry",
            "serve",
            "--address",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let registry = Registry { process, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(Instant::now() < deadline, "the registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let packaged = dir.join("chart");
    let helm_run = |args: &[&str]| -> Result<()> {
        let output = Command::new(helm)
            .args(args)
            .env("HELM_CACHE_HOME", helm_home.join("cache"))
            .env("HELM_CONFIG_HOME", helm_home.join("config"))
            .env("HELM_DATA_HOME", helm_home.join("data"))
            .current_dir(repo_root())
            .output()?;
        ensure!(
            output.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let packaged_dir = packaged.display().to_string();
    helm_run(&["package", "charts/hook-sidecar-policy", "-d", &packaged_dir])?;
    let version = env!("CARGO_PKG_VERSION");
    let archive = packaged
        .join(format!("hook-sidecar-policy-{version}.tgz"))
        .display()
        .to_string();
    helm_run(&[
        "push",
        &archive,
        &format!("oci://127.0.0.1:{port}/charts"),
        "--plain-http",
    ])?;
    Ok(registry)
}

// ---- scenarios

type Scenario = fn(&Env) -> Result<()>;

/// The steps each scenario runs, in order, with the checks between them.
const SCENARIOS: &[(&str, Scenario, &[&str])] = &[
    (
        "path_a_gate_off_protect_then_the_job_adds_the_gate",
        path_a,
        &[
            "policy-server-ready",
            "which-path",
            "a-install",
            "a-wait-active",
            "a-gate",
            "a-gate-in-kubevirt",
            "a-allow",
            "prove-refusal",
            "launcher-pods",
            "example-values",
            "example-vm",
            "example-vm-refused",
            "example-new-tag",
            "rollback",
        ],
    ),
    (
        "path_b_gate_on_monitor_audit_fix_protect_then_the_gate",
        path_b,
        &[
            "which-path-b",
            "b-inventory",
            "b-install",
            "b-allow",
            "b-audit-run",
            "b-audit-read",
            "b-fix",
            "b-protect",
            "b-gate",
            "prove-refusal",
        ],
    ),
];

fn path_a(env: &Env) -> Result<()> {
    env.reset_world(false)?;
    env.run_step("policy-server-ready")?;
    env.run_step("which-path")?;
    // Before anything: KubeVirt refuses a sidecar while the gate is off (the false premise was
    // that it ignores it), so no VM can carry one now.
    let (refused, output) = env.bash(VM_WITH_ALLOWED_SIDECAR, Duration::from_secs(60))?;
    ensure!(
        !refused && output.contains("admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: sidecar feature gate is not enabled in kubevirt-config"),
        "{output}"
    );
    env.run_step("a-install")?;
    env.run_step("a-wait-active")?;
    env.run_step("a-gate")?;
    env.run_step("a-gate-in-kubevirt")?;
    // Never a moment unchecked: the gate came on only after the policy was served in protect.
    no_moment_unchecked(env)?;
    env.run_step("a-allow")?;
    env.run_step("prove-refusal")?;
    // The refusal is the policy's webhook answer to the API server's CREATE of that VM.
    let answers = env.policy_answers("hook-sidecar-policy-check");
    ensure!(
        answers.iter().any(|answer| !answer.allowed
            && answer.operation == "CREATE"
            && answer.kind == "VirtualMachine"
            && answer
                .message
                .as_deref()
                .is_some_and(|m| m.contains("is not in allowedImages"))),
        "the refusal was not the policy's webhook: {answers:?}"
    );
    env.run_step("launcher-pods")?;
    env.run_step("example-values")?;
    env.run_step("example-vm")?;
    env.run_step("example-vm-refused")?;
    // The tag moves: the profile (any tag) keeps governing the new one.
    env.run_step("example-new-tag")?;
    let (accepted, output) = env.bash(
        &VM_WITH_ALLOWED_SIDECAR.replace("v1.7.4", "v1.8.4"),
        Duration::from_secs(60),
    )?;
    ensure!(
        accepted && output.contains("created (server dry run)"),
        "{output}"
    );
    let (accepted, output) = env.bash(
        &VM_WITH_ALLOWED_SIDECAR.replace("v1.7.4", "v1.9.0"),
        Duration::from_secs(60),
    )?;
    ensure!(
        !accepted && output.contains("is not in allowedImages"),
        "a tag the Setting does not list: {output}"
    );
    env.run_step("rollback")?;
    // The job never removed the gate; the administrator did, after uninstalling nothing else.
    no_moment_unchecked(env)
}

fn path_b(env: &Env) -> Result<()> {
    env.reset_world(true)?;
    // VMs their owners created while the gate was on, before any policy.
    env.create_vms(&[
        ("smbios-vm", r#"[{"image": "quay.io/kubevirt/example-hook-sidecar:v1.7.4", "args": ["--version", "v1alpha2"]}]"#),
        ("old-hook-vm", r#"[{"image": "registry.example.com/unreviewed/qemu-hook:latest"}]"#),
    ])?;
    env.run_step("which-path-b")?;
    env.run_step("b-inventory")?;
    env.run_step("b-install")?;
    env.run_step("b-allow")?;
    // monitor: the unreviewed sidecar is reported, not refused.
    let (accepted, output) = env.bash(
        &VM_WITH_ALLOWED_SIDECAR.replace(
            "quay.io/kubevirt/example-hook-sidecar:v1.7.4",
            "registry.example.com/unreviewed/qemu-hook:latest",
        ),
        Duration::from_secs(60),
    )?;
    ensure!(accepted, "monitor mode refused: {output}");
    env.run_step("b-audit-run")?;
    env.run_step("b-audit-read")?;
    env.run_step("b-fix")?;
    env.run_step("b-protect")?;
    env.run_step("b-gate")?;
    env.run_step("prove-refusal")?;
    // The job found the gate on and keeps it: the condition says so, and nothing was written.
    let job_log = env.emulator.job_log();
    ensure!(
        !job_log.contains("added the Sidecar feature gate"),
        "the job added a gate that was on:\n{job_log}"
    );
    Ok(())
}

/// In the emulator's timeline, the gate is never on while `clusterwide-hook-sidecars` is not
/// served in protect mode.
fn no_moment_unchecked(env: &Env) -> Result<()> {
    let timeline = env.emulator.timeline.lock().expect("lock").clone();
    let mut protect = false;
    for (_, moment) in &timeline {
        match moment {
            Moment::Served(policy, mode) if policy == "clusterwide-hook-sidecars" => {
                protect = mode == "protect"
            }
            Moment::Gate(true) => ensure!(
                protect,
                "the gate came on while the policy did not protect: {timeline:?}"
            ),
            _ => {}
        }
    }
    ensure!(
        timeline.iter().any(|(_, m)| *m == Moment::Gate(true)),
        "the gate never came on: {timeline:?}"
    );
    Ok(())
}

/// A VM with the worked example's sidecar, through every admission webhook, stored nowhere.
const VM_WITH_ALLOWED_SIDECAR: &str = r#"kubectl apply --dry-run=server -f - <<'EOF'
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: test-vm
  namespace: default
spec:
  runStrategy: Halted
  template:
    metadata:
      annotations:
        hooks.kubevirt.io/hookSidecars: '[{"image": "quay.io/kubevirt/example-hook-sidecar:v1.7.4", "args": ["--version", "v1alpha2"]}]'
        smbios.vm.kubevirt.io/baseBoardManufacturer: Example Corp
    spec:
      domain:
        devices: {}
        memory:
          guest: 1Gi
EOF"#;

/// Every step of the runbook is in STEPS, every Run step is run by a scenario, and the parser
/// and matcher work as documented.
fn every_step_is_run_or_named_not_run() -> Result<()> {
    doc::self_test()?;
    let documented: BTreeSet<String> = runbook()?.into_iter().map(|step| step.name).collect();
    let listed: BTreeSet<String> = STEPS.iter().map(|(name, _)| (*name).to_owned()).collect();
    ensure!(
        documented == listed,
        "docs/runbook.md's steps and this test's STEPS differ: only in the runbook {:?}, only here {:?}",
        documented.difference(&listed).collect::<Vec<_>>(),
        listed.difference(&documented).collect::<Vec<_>>()
    );
    let run: BTreeSet<&str> = SCENARIOS
        .iter()
        .flat_map(|(_, _, steps)| steps.iter().copied())
        .collect();
    for (name, taken) in STEPS {
        match taken {
            Taken::Run => ensure!(
                run.contains(name),
                "step {name} is Run but no scenario runs it"
            ),
            Taken::NotRun(why) => {
                ensure!(
                    !run.contains(name),
                    "step {name} is NotRun but a scenario runs it"
                );
                eprintln!("not run: {name}: {why}");
            }
        }
    }
    Ok(())
}

/// The Addon's values are path A's: the chart rendered from examples/harvester/addon.yaml's
/// valuesContent is the chart rendered with the a-install command's flags.
fn the_addon_is_path_a(env: &Env) -> Result<()> {
    let addon: Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo_root().join("examples/harvester/addon.yaml"),
    )?)?;
    ensure!(addon["metadata"]["namespace"] == JOB_NAMESPACE, "{addon}");
    let values = env.cluster.dir().join("addon-values.yaml");
    std::fs::write(
        &values,
        addon["spec"]["valuesContent"]
            .as_str()
            .context("valuesContent")?,
    )?;
    let from_addon = env
        .cluster
        .render_chart_with(&["-f", &values.display().to_string()])?;
    let install = &env.step("a-install")?.commands[0].script;
    let words: Vec<&str> = install.split_whitespace().collect();
    let flags: Vec<&str> = words
        .windows(2)
        .filter(|pair| pair[0] == "--set")
        .map(|pair| pair[1])
        .collect();
    ensure!(!flags.is_empty(), "{install}");
    let from_helm = env.cluster.render_chart(&flags)?;
    ensure!(
        from_addon == from_helm,
        "the Addon's valuesContent does not render what a-install installs"
    );
    Ok(())
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let env: Arc<OnceLock<Result<Env, String>>> = Arc::new(OnceLock::new());
    let mut trials = vec![Trial::test("every_step_is_run_or_named_not_run", || {
        every_step_is_run_or_named_not_run().map_err(|error| Failed::from(format!("{error:#}")))
    })];
    let with_env = |name: &'static str, scenario: Scenario| {
        let env = Arc::clone(&env);
        Trial::test(name, move || {
            let env = env
                .get_or_init(|| Env::start().map_err(|error| format!("{error:#}")))
                .as_ref()
                .map_err(|error| {
                    Failed::from(format!("cannot start the test environment: {error}"))
                })?;
            scenario(env).map_err(|error| {
                Failed::from(format!("{error:#}\n{}", env.cluster.job_logs_tail()))
            })
        })
    };
    for (name, scenario, _) in SCENARIOS {
        trials.push(with_env(name, *scenario));
    }
    trials.push(with_env("the_addon_is_path_a", the_addon_is_path_a));
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(Ok(env)) = Arc::try_unwrap(env).ok().and_then(OnceLock::into_inner) {
        env.emulator
            .paused
            .store(true, std::sync::atomic::Ordering::SeqCst);
        env.emulator.reset();
        drop(env);
    }
    conclusion.exit();
}
