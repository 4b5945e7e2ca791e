//! Context-aware mode end to end: the wasm module, run by the in-repo host the way policy-server
//! runs it, reads the Setting through `kubernetes/get_resource` from a real kube-apiserver (the
//! sync job's test harness), as policy-server's ServiceAccount with only the RBAC the chart renders
//! for context-aware mode. One server, scenarios one after the other.

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
        let rbac: Vec<_> = cluster
            .render_chart(&["policy.contextAware.enabled=true", &account, &namespace])?
            .into_iter()
            .filter(|object| {
                matches!(
                    object["kind"].as_str(),
                    Some("ClusterRole" | "ClusterRoleBinding")
                ) && object["metadata"]["name"]
                    .as_str()
                    .is_some_and(|name| name.ends_with("-policy-server-settings"))
            })
            .collect();
        assert_eq!(rbac.len(), 2, "the chart's policy-server RBAC: {rbac:?}");
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
        let allowed_resources = if granted {
            [ContextAwareResource {
                api_version: "harvesterhci.io/v1beta1".into(),
                kind: "Setting".into(),
            }]
            .into()
        } else {
            Default::default()
        };
        Ok(
            PolicyHost::load(&self.module, Duration::from_secs(2), CodeCache::Disabled)?
                .with_capabilities(HostCapabilities {
                    allowed_resources,
                    kubernetes,
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
