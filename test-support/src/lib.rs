//! A real kube-apiserver and etcd on loopback, the CRDs the job reads, the job's RBAC as the chart
//! (`charts/hook-sidecar-policy`) renders it, and the job itself run as a process with its
//! ServiceAccount's token.
//!
//! kube-apiserver and kubectl come from `hack/build-kube-apiserver.sh` (built from the Go module
//! proxy once, then cached), or from `KUBE_BIN_DIR`; helm from `hack/go-tool.sh`; etcd from `PATH`
//! (Debian's `etcd-server`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::Deserialize as _;
use serde_json::{Value, json};

pub const SETTING: &str = "whitelisted-sidecars";
pub const POLICY: &str = "hook-sidecars";
pub const KUBEVIRT: &str = "kubevirt";
pub const KUBEVIRT_NAMESPACE: &str = "harvester-system";
pub const MANAGED_CHART: &str = "harvester";
pub const MANAGED_CHART_NAMESPACE: &str = "fleet-local";
/// Where Kubewarden runs and the chart is installed: Kubewarden's documentation installs into
/// `kubewarden` (Rancher's Apps use `cattle-kubewarden-system`).
pub const JOB_NAMESPACE: &str = "kubewarden";
/// The Helm release the tests render the chart as; the job's ServiceAccount is `<release>-sync`.
pub const RELEASE: &str = "hook-sidecar-policy";
pub const SERVICE_ACCOUNT: &str = "hook-sidecar-policy-sync";

const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// The repository's root: this crate is one of its top-level folders.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Cluster {
    dir: PathBuf,
    kubectl: PathBuf,
    helm: PathBuf,
    etcd: Mutex<Child>,
    apiserver: Mutex<Child>,
    apiserver_command: Vec<String>,
    pub port: u16,
    pub admin_kubeconfig: PathBuf,
    /// The job's kubeconfig: the token of its ServiceAccount, bound by the chart's RBAC only.
    pub job_kubeconfig: PathBuf,
    job_logs: Mutex<Vec<PathBuf>>,
    /// The job's binary for [`Cluster::start_job`] (`CARGO_BIN_EXE_hook-sidecar-sync` exists only
    /// where the sync crate's tests and benches are compiled, not in this library).
    job_binary: Option<PathBuf>,
}

impl Cluster {
    /// The cluster, with `binary` as the job that [`Cluster::start_job`] starts.
    pub fn start_for_job(binary: &str) -> Result<Self> {
        let mut cluster = Self::start()?;
        cluster.job_binary = Some(PathBuf::from(binary));
        Ok(cluster)
    }

    pub fn start() -> Result<Self> {
        let bin = kube_binaries()?;
        let dir =
            std::env::temp_dir().join(format!("hook-sidecar-sync-tests-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let (etcd_port, peer_port, port) = (free_port()?, free_port()?, free_port()?);

        let etcd = spawn_logged(
            Command::new("etcd").args([
                "--name=test",
                &format!("--data-dir={}", dir.join("etcd").display()),
                &format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                &format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                &format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                &format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"),
                "--logger=zap",
                "--log-level=warn",
            ]),
            &dir.join("etcd.log"),
        )
        .context("etcd not found: install Debian's etcd-server (make system-packages does)")?;

        let key = dir.join("service-account.key");
        run(Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048"))?;
        let tokens = dir.join("tokens.csv");
        fs::write(
            &tokens,
            format!("{ADMIN_TOKEN},admin,admin,\"system:masters\"\n"),
        )?;
        let apiserver_command = vec![
            bin.join("kube-apiserver").display().to_string(),
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.join("certs").display()),
            format!("--token-auth-file={}", tokens.display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", key.display()),
            format!("--service-account-signing-key-file={}", key.display()),
            "--authorization-mode=RBAC".into(),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            "--enable-priority-and-fairness=false".into(),
            // The loopback address cannot be published as the endpoint of the `kubernetes` Service,
            // and retrying that at shutdown delays SIGTERM by minutes.
            "--endpoint-reconciler-type=none".into(),
            // Close open watches at SIGTERM instead of waiting up to a minute for them to end.
            "--shutdown-watch-termination-grace-period=2s".into(),
        ];
        let apiserver = spawn_apiserver(&apiserver_command, &dir)?;

        let admin_kubeconfig = dir.join("admin.kubeconfig");
        fs::write(&admin_kubeconfig, kubeconfig(port, ADMIN_TOKEN))?;
        let cluster = Self {
            kubectl: bin.join("kubectl"),
            helm: go_tool("helm")?,
            etcd: Mutex::new(etcd),
            apiserver: Mutex::new(apiserver),
            apiserver_command,
            port,
            job_kubeconfig: dir.join("job.kubeconfig"),
            admin_kubeconfig,
            job_logs: Mutex::new(Vec::new()),
            job_binary: None,
            dir,
        };
        cluster.wait_ready(Duration::from_secs(90))?;
        cluster.install()?;
        Ok(cluster)
    }

    /// CRDs, namespaces, the job's RBAC as the chart renders it by default (no feature gate), and
    /// a token for its ServiceAccount.
    fn install(&self) -> Result<()> {
        let crds = repo_root().join("sync/tests/crds");
        self.kubectl(&["apply", "--server-side", "-f", &crds.display().to_string()])?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ])?;
        for namespace in [JOB_NAMESPACE, KUBEVIRT_NAMESPACE, MANAGED_CHART_NAMESPACE] {
            self.kubectl(&["create", "namespace", namespace])?;
        }
        self.install_job_rbac(&[])?;
        let token = self.kubectl(&[
            "create",
            "token",
            SERVICE_ACCOUNT,
            "-n",
            JOB_NAMESPACE,
            "--duration=24h",
        ])?;
        fs::write(&self.job_kubeconfig, kubeconfig(self.port, token.trim()))?;
        Ok(())
    }

    /// `helm template` of the chart, as release `RELEASE` in `JOB_NAMESPACE`, with `--set` values.
    pub fn render_chart(&self, values: &[&str]) -> Result<Vec<Value>> {
        let args: Vec<String> = values
            .iter()
            .flat_map(|value| ["--set".to_owned(), (*value).to_owned()])
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.render_chart_with(&args)
    }

    /// `helm template` of the chart, as release `RELEASE` in `JOB_NAMESPACE`, with helm's own
    /// arguments (`-f <file>`, `--set ...`).
    pub fn render_chart_with(&self, args: &[&str]) -> Result<Vec<Value>> {
        let mut command = Command::new(&self.helm);
        command
            .args(["template", RELEASE])
            .arg(repo_root().join("charts/hook-sidecar-policy"))
            .args(["--namespace", JOB_NAMESPACE])
            .args(args)
            .current_dir(repo_root());
        let rendered = run(&mut command)?;
        let mut objects = Vec::new();
        for document in serde_yaml::Deserializer::from_str(&rendered) {
            let object = Value::deserialize(document)?;
            if !object.is_null() {
                objects.push(object);
            }
        }
        Ok(objects)
    }

    /// Writes `objects` as a file in the cluster's directory, for `kubectl apply -f`.
    pub fn manifest_file(&self, name: &str, objects: &[Value]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        let list = json!({ "apiVersion": "v1", "kind": "List", "items": objects });
        fs::write(&path, serde_json::to_vec(&list)?)?;
        Ok(path)
    }

    /// The job's ServiceAccount and RBAC exactly as the chart renders them with `values`; the
    /// feature-gate Roles of an earlier rendering are deleted first, so the job holds what these
    /// values grant and nothing else.
    pub fn install_job_rbac(&self, values: &[&str]) -> Result<()> {
        const RBAC: [&str; 5] = [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ];
        let rbac: Vec<Value> = self
            .render_chart(values)?
            .into_iter()
            .filter(|object| RBAC.iter().any(|kind| object["kind"] == *kind))
            .collect();
        self.kubectl(&[
            "delete",
            "roles,rolebindings",
            "--all-namespaces",
            "--selector=app.kubernetes.io/component=feature-gate",
        ])?;
        let file = self.manifest_file("rbac.json", &rbac)?;
        self.kubectl(&["apply", "-f", &file.display().to_string()])?;
        Ok(())
    }

    /// helm against the cluster, as its administrator.
    pub fn helm(&self, args: &[&str]) -> Result<String> {
        run(Command::new(&self.helm)
            .env("KUBECONFIG", &self.admin_kubeconfig)
            .args(args)
            .current_dir(repo_root()))
    }

    /// The paths of the kube binaries (kubectl, kube-apiserver) and of helm, for tests that run
    /// commands as a person types them.
    pub fn tools(&self) -> (PathBuf, PathBuf) {
        (self.kubectl.clone(), self.helm.clone())
    }

    /// The directory of the cluster's files (kubeconfigs, logs, manifests).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        run(Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.admin_kubeconfig.display()))
            .args(args))
    }

    /// `kubectl auth can-i` as the job's ServiceAccount.
    pub fn job_can(&self, args: &[&str]) -> Result<bool> {
        let output = Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.job_kubeconfig.display()))
            .args(["auth", "can-i"])
            .args(args)
            .output()?;
        match String::from_utf8_lossy(&output.stdout).trim() {
            "yes" => Ok(true),
            "no" => Ok(false),
            other => bail!(
                "kubectl auth can-i {args:?}: {other:?} {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.kubectl(&["get", "--raw", "/readyz"]).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.apiserver.lock().expect("lock").try_wait()? {
                bail!(
                    "kube-apiserver exited with {status}; see {}",
                    self.dir.join("apiserver.log").display()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "kube-apiserver not ready after {timeout:?}; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops kube-apiserver (SIGTERM, as at an upgrade or a node restart), keeps it down for
    /// `down`, and starts it again with the same flags, port and etcd.
    pub fn restart_apiserver(&self, down: Duration) -> Result<()> {
        {
            let mut apiserver = self.apiserver.lock().expect("lock");
            terminate(&mut apiserver, Duration::from_secs(30))?;
            std::thread::sleep(down);
            *apiserver = spawn_apiserver(&self.apiserver_command, &self.dir)?;
        }
        self.wait_ready(Duration::from_secs(90))
    }

    /// Kills kube-apiserver with SIGKILL (a crash, or a node losing power), keeps it down for
    /// `down`, starts it again with the same flags, port and etcd, and returns when it is ready.
    pub fn crash_apiserver(&self, down: Duration) -> Result<()> {
        {
            let mut apiserver = self.apiserver.lock().expect("lock");
            apiserver.kill()?;
            apiserver.wait()?;
            std::thread::sleep(down);
            *apiserver = spawn_apiserver(&self.apiserver_command, &self.dir)?;
        }
        self.wait_ready(Duration::from_secs(90))
    }

    pub async fn client(&self) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.admin_kubeconfig)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// Starts the job with its ServiceAccount's kubeconfig and `args`.
    pub fn start_job(&self, args: &[&str]) -> Result<Job> {
        let binary = self.job_binary.clone().ok_or_else(|| {
            anyhow!("no job binary: start the cluster with Cluster::start_for_job")
        })?;
        self.start_job_binary(&binary, args)
    }

    /// Starts `binary` (the job from elsewhere, e.g. its image) as the job.
    pub fn start_job_binary(&self, binary: &Path, args: &[&str]) -> Result<Job> {
        self.start_job_as(binary, &self.job_kubeconfig, args)
    }

    /// Starts `binary` as the job with `kubeconfig` (another ServiceAccount's token).
    pub fn start_job_as(&self, binary: &Path, kubeconfig: &Path, args: &[&str]) -> Result<Job> {
        let metrics_port = free_port()?;
        let n = self.job_logs.lock().expect("lock").len();
        let log = self.dir.join(format!("job-{n}.log"));
        self.job_logs.lock().expect("lock").push(log.clone());
        let child = spawn_logged(
            Command::new(binary)
                .env("KUBECONFIG", kubeconfig)
                .env("RUST_LOG", "info,hook_sidecar_sync=debug")
                .arg(format!("--listen=127.0.0.1:{metrics_port}"))
                .args(args),
            &log,
        )?;
        Ok(Job {
            child,
            metrics_port,
            log,
        })
    }

    /// The end of the logs of the jobs started so far, for a failure report.
    pub fn job_logs_tail(&self) -> String {
        let logs = self.job_logs.lock().expect("lock");
        logs.iter()
            .map(|log| format!("--- {}\n{}", log.display(), tail(log, 30)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in [&self.apiserver, &self.etcd] {
            if let Ok(mut child) = process.lock() {
                let _ = terminate(&mut child, Duration::from_secs(10));
            }
        }
        if !std::thread::panicking() && std::env::var_os("KEEP_TEST_CLUSTER").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The job as a process; killed if dropped without `stop`.
pub struct Job {
    child: Child,
    pub metrics_port: u16,
    log: PathBuf,
}

impl Job {
    /// SIGTERM, as the kubelet sends; the job must exit 0 within 10 s.
    pub fn stop(mut self) -> Result<()> {
        let status = terminate(&mut self.child, Duration::from_secs(10))?;
        ensure!(
            status.success(),
            "the job exited with {status} on SIGTERM:\n{}",
            tail(&self.log, 30)
        );
        Ok(())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on the job's health and metrics server: (status, body).
    pub fn http_get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.metrics_port, path, Duration::from_secs(30))
    }

    /// The value of one sample of `/metrics`, e.g. `hook_sidecar_sync_refused_lists_total`.
    pub fn metric(&self, sample: &str) -> Result<f64> {
        let (_, text) = self.http_get("/metrics")?;
        let value = text
            .lines()
            .find_map(|line| {
                line.strip_prefix(sample)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .ok_or_else(|| anyhow!("no sample {sample} in /metrics"))?;
        Ok(value.trim().parse()?)
    }

    /// Resident memory now and at its peak, in KiB, from /proc.
    pub fn memory_kib(&self) -> Result<(u64, u64)> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .ok_or_else(|| anyhow!("no {name}"))?;
            Ok(line
                .split_whitespace()
                .nth(1)
                .ok_or_else(|| anyhow!("bad {name}"))?
                .parse()?)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// GET on a job's health and metrics server at `port`: (status, body), within `timeout`.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()?;
    Ok((
        response.status().as_u16(),
        response.body_mut().read_to_string()?,
    ))
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the objects, through the admin client

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn settings_api(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource("harvesterhci.io", "v1beta1", "Setting", "settings"),
    )
}

pub fn policies_api(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource(
            "policies.kubewarden.io",
            "v1",
            "ClusterAdmissionPolicy",
            "clusteradmissionpolicies",
        ),
    )
}

pub fn managed_charts_api(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        MANAGED_CHART_NAMESPACE,
        &resource(
            "management.cattle.io",
            "v3",
            "ManagedChart",
            "managedcharts",
        ),
    )
}

/// Sets the policy's `status.policyStatus`, and `status.mode` to its `spec.mode`, as the
/// Kubewarden controller does once the policy is in the PolicyServer's configuration.
pub async fn set_policy_status(client: &Client, status: &str) -> Result<()> {
    set_named_policy_status(client, POLICY, status).await
}

pub async fn set_named_policy_status(client: &Client, name: &str, status: &str) -> Result<()> {
    let api = policies_api(client);
    let mode = api.get(name).await?.data["spec"]["mode"].clone();
    let patch = json!({ "status": { "policyStatus": status, "mode": mode } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

pub fn kubevirts_api(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        KUBEVIRT_NAMESPACE,
        &resource("kubevirt.io", "v1", "KubeVirt", "kubevirts"),
    )
}

/// A ClusterAdmissionPolicy as an administrator writes it (kubectl's field manager), in protect
/// mode (the chart's default).
pub async fn create_policy(client: &Client, settings: Value) -> Result<DynamicObject> {
    create_named_policy(client, POLICY, settings).await
}

pub async fn create_named_policy(
    client: &Client,
    name: &str,
    settings: Value,
) -> Result<DynamicObject> {
    create_policy_in_mode(client, name, "protect", settings).await
}

pub async fn create_policy_in_mode(
    client: &Client,
    name: &str,
    mode: &str,
    settings: Value,
) -> Result<DynamicObject> {
    let policy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policies.kubewarden.io/v1",
        "kind": "ClusterAdmissionPolicy",
        "metadata": { "name": name },
        "spec": {
            "module": "registry://ghcr.io/kubewarden-contrib/policies/hook-sidecar-policy:v0.1.0",
            "mode": mode,
            "mutating": false,
            "backgroundAudit": false,
            "rules": [{
                "apiGroups": ["kubevirt.io"], "apiVersions": ["v1"],
                "resources": ["virtualmachines", "virtualmachineinstances"],
                "operations": ["CREATE", "UPDATE"],
            }],
            "settings": settings,
        },
    }))?;
    let params = PostParams {
        field_manager: Some("kubectl-create".into()),
        ..PostParams::default()
    };
    Ok(policies_api(client).create(&params, &policy).await?)
}

/// Creates the Setting, or changes `default` and `value` of the existing one, as Harvester's UI does.
pub async fn put_setting(client: &Client, default: &str, value: &str) -> Result<DynamicObject> {
    let api = settings_api(client);
    if api.get_opt(SETTING).await?.is_some() {
        let patch = json!({ "default": default, "value": value });
        return Ok(api
            .patch(SETTING, &PatchParams::default(), &Patch::Merge(&patch))
            .await?);
    }
    let setting: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "harvesterhci.io/v1beta1",
        "kind": "Setting",
        "metadata": { "name": SETTING },
        "default": default,
        "value": value,
    }))?;
    Ok(api.create(&PostParams::default(), &setting).await?)
}

pub async fn set_value(client: &Client, value: &str) -> Result<DynamicObject> {
    let patch = json!({ "value": value });
    Ok(settings_api(client)
        .patch(SETTING, &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}

/// The policy's `spec.settings`.
pub async fn policy_settings(client: &Client) -> Result<Value> {
    Ok(policies_api(client).get(POLICY).await?.data["spec"]["settings"].clone())
}

pub async fn allowed_images(client: &Client) -> Result<Value> {
    Ok(policy_settings(client).await?["allowedImages"].clone())
}

/// Deletes what a previous test left: the Setting, the policy, the KubeVirt CR, the
/// ManagedChart, the events.
pub async fn reset(client: &Client) -> Result<()> {
    for (api, name) in [
        (settings_api(client), SETTING),
        (policies_api(client), POLICY),
        (kubevirts_api(client), KUBEVIRT),
        (managed_charts_api(client), MANAGED_CHART),
    ] {
        let _ = api.delete(name, &DeleteParams::default()).await;
        wait_until("the object to be deleted", Duration::from_secs(30), || {
            let api = api.clone();
            async move { Ok(api.get_opt(name).await?.is_none().then_some(())) }
        })
        .await?;
    }
    reset_events(client).await
}

/// Deletes every Event in `default`, where those of the Setting are.
pub async fn reset_events(client: &Client) -> Result<()> {
    let events: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &resource("events.k8s.io", "v1", "Event", "events"),
    );
    events
        .delete_collection(&DeleteParams::default(), &Default::default())
        .await?;
    Ok(())
}

/// The Warning events the job published about the Setting.
pub async fn setting_events(client: &Client) -> Result<Vec<Value>> {
    let events: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &resource("events.k8s.io", "v1", "Event", "events"),
    );
    Ok(events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|event| event.data)
        .filter(|event| {
            event["regarding"]["kind"] == "Setting" && event["regarding"]["name"] == SETTING
        })
        .collect())
}

/// The Setting's `configured` condition, the job's report on it.
pub async fn setting_condition(client: &Client) -> Result<Option<Value>> {
    let Some(setting) = settings_api(client).get_opt(SETTING).await? else {
        return Ok(None);
    };
    Ok(setting.data["status"]["conditions"]
        .as_array()
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition["type"] == "configured")
                .cloned()
        }))
}

/// Polls `check` every 10 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- processes

fn kube_binaries() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KUBE_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let script = repo_root().join("hack/build-kube-apiserver.sh");
    let output = Command::new(&script).stderr(Stdio::inherit()).output()?;
    ensure!(output.status.success(), "{} failed", script.display());
    let dir = String::from_utf8(output.stdout)?;
    Ok(PathBuf::from(dir.lines().last().ok_or_else(|| {
        anyhow!("no output from {}", script.display())
    })?))
}

/// A tool built by `hack/go-tool.sh` (helm, crane, actionlint), or the one named by `<NAME>_BIN`.
pub fn go_tool(name: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(format!("{}_BIN", name.to_uppercase())) {
        return Ok(PathBuf::from(path));
    }
    let script = repo_root().join("hack/go-tool.sh");
    let output = Command::new(&script)
        .arg(name)
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(
        output.status.success(),
        "{} {name} failed",
        script.display()
    );
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

fn spawn_apiserver(command: &[String], dir: &Path) -> Result<Child> {
    spawn_logged(
        Command::new(&command[0]).args(&command[1..]),
        &dir.join("apiserver.log"),
    )
}

fn spawn_logged(command: &mut Command, log: &Path) -> Result<Child> {
    let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    Ok(command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?)
}

fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

fn terminate(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    bail!(
        "process {} did not stop within {timeout:?} of SIGTERM",
        child.id()
    )
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn kubeconfig(port: u16, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: user\n  user:\n    token: {token}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: user\n\
         current-context: test\n"
    )
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = fs::File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
