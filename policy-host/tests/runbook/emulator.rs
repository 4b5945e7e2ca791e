//! What the test does in place of the components that cannot run here, each as that component
//! does it, and nothing more:
//!
//! - **kubewarden-controller**: for each ClusterAdmissionPolicy, the policy-server Deployment's
//!   rollout when its spec changes (the `kubewarden/config-version` annotation of the pod
//!   template, as `reconcilePolicyServerDeployment` stamps it), then the policy served with its
//!   mode and settings (the webhook's configuration), its ValidatingWebhookConfiguration
//!   (`reconcileValidatingWebhookConfiguration`: name, rules, selectors, failure policy, pointing
//!   at the webhook instead of policy-server's Service) and its status (`policyStatus` pending,
//!   then active; `mode` from the configuration).
//! - **kube-controller-manager's Deployment controller**: the rollout's status (what `kubectl
//!   rollout status` reads).
//! - **the kubelet, for the sync job's Deployment**: the job run as a process with the
//!   Deployment's arguments and its ServiceAccount's token, restarted when the Deployment changes.
//! - **Fleet**: the `harvester` ManagedChart's feature gates rendered into the KubeVirt CR.
//! - **Kubewarden's audit scanner**, for each Job created from its CronJob: every VM evaluated by
//!   the served policies with `backgroundAudit`, one OpenReports `Report` per VM, the Job complete.
//!
//! Each tick also records when a policy is served in protect mode and when the gate is on, so the
//! test can tell whether the gate was ever on while a kept policy did not protect.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use test_support::{Cluster, JOB_NAMESPACE, Job, resource};

use crate::webhook::{Served, Webhook};

/// How long a policy-server rollout takes here.
const ROLLOUT: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(100);
pub const POLICY_SERVER_DEPLOYMENT: &str = "policy-server-default";
pub const SYNC_DEPLOYMENT: &str = "hook-sidecar-policy-sync";

/// A moment the test looks at afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moment {
    /// The policy (unique name) served in this mode.
    Served(String, String),
    /// KubeVirt's CR has the Sidecar gate (true) or not.
    Gate(bool),
}

#[derive(Default)]
struct Controller {
    /// Per policy name: the generation rolled out, and a rollout in progress (its generation and
    /// when it is done).
    rolled_out: HashMap<String, i64>,
    rolling: HashMap<String, (i64, Instant)>,
    config_version: u64,
    job: Option<(i64, Job)>,
    audited: HashSet<String>,
}

pub struct Emulator {
    cluster: Arc<Cluster>,
    client: Client,
    webhook: Arc<Webhook>,
    job_binary: PathBuf,
    state: Mutex<Controller>,
    pub timeline: Mutex<Vec<(Instant, Moment)>>,
    /// Set to stop the ticks (between scenarios the world is reset).
    pub paused: std::sync::atomic::AtomicBool,
    /// Ticks begun so far (see [`Emulator::settle`]).
    ticks: std::sync::atomic::AtomicU64,
}

fn api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &resource(group, version, kind, plural))
}

fn namespaced(
    client: &Client,
    namespace: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &resource(group, version, kind, plural),
    )
}

impl Emulator {
    pub fn new(
        cluster: Arc<Cluster>,
        client: Client,
        webhook: Arc<Webhook>,
        job_binary: PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            cluster,
            client,
            webhook,
            job_binary,
            state: Mutex::new(Controller::default()),
            timeline: Mutex::new(Vec::new()),
            paused: std::sync::atomic::AtomicBool::new(true),
            ticks: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Returns once a whole tick has run after the call: the emulated controllers have seen
    /// what the last command changed. A real controller reacts to a watch event within
    /// milliseconds; the emulator polls every TICK, so without this a command that follows a
    /// change at once (`kubectl rollout status` after `helm upgrade`) could look before the
    /// emulated kubewarden-controller has begun the rollout, and pass on the old one.
    pub fn settle(&self) {
        if self.paused.load(Ordering::SeqCst) {
            return;
        }
        // `ticks` is odd during a tick. One under way may have read the cluster before the
        // change: then wait for the end of the one after it.
        let now = self.ticks.load(Ordering::SeqCst);
        let target = now + if now % 2 == 1 { 3 } else { 2 };
        let deadline = Instant::now() + 50 * TICK;
        while self.ticks.load(Ordering::SeqCst) < target && Instant::now() < deadline {
            std::thread::sleep(TICK / 10);
        }
    }

    /// Ticks until the runtime ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TICK).await;
            if self.paused.load(Ordering::SeqCst) {
                continue;
            }
            self.ticks.fetch_add(1, Ordering::SeqCst);
            let result = self.tick().await;
            self.ticks.fetch_add(1, Ordering::SeqCst);
            if let Err(error) = result
                && !self.paused.load(Ordering::SeqCst)
            {
                eprintln!("emulator: {error:#}");
            }
        }
    }

    /// Forgets everything (the world was reset) and stops the job.
    pub fn reset(&self) {
        let mut state = self.state.lock().expect("lock");
        if let Some((_, job)) = state.job.take() {
            let _ = job.stop();
        }
        *state = Controller::default();
        self.webhook.state.served.lock().expect("lock").clear();
        self.webhook
            .state
            .sidecar_gate
            .store(false, Ordering::SeqCst);
        self.timeline.lock().expect("lock").clear();
    }

    /// The job's log, if it runs.
    pub fn job_log(&self) -> String {
        self.state
            .lock()
            .expect("lock")
            .job
            .as_ref()
            .map(|(_, job)| job.log())
            .unwrap_or_default()
    }

    fn moment(&self, moment: Moment) {
        let mut timeline = self.timeline.lock().expect("lock");
        let last = timeline.iter().rev().find(|(_, m)| {
            std::mem::discriminant(m) == std::mem::discriminant(&moment) && same_subject(m, &moment)
        });
        if last.map(|(_, m)| m) != Some(&moment) {
            timeline.push((Instant::now(), moment));
        }
    }

    async fn tick(&self) -> Result<()> {
        self.kubewarden_controller().await?;
        self.fleet().await?;
        self.kubelet().await?;
        self.audit_scanner().await?;
        Ok(())
    }

    async fn kubewarden_controller(&self) -> Result<()> {
        let policies = api(
            &self.client,
            "policies.kubewarden.io",
            "v1",
            "ClusterAdmissionPolicy",
            "clusteradmissionpolicies",
        )
        .list(&Default::default())
        .await?;
        let deployments: Api<DynamicObject> = namespaced(
            &self.client,
            JOB_NAMESPACE,
            "apps",
            "v1",
            "Deployment",
            "deployments",
        );
        let now = Instant::now();
        let mut present = HashSet::new();
        let mut start_rollout = false;
        let mut finished = Vec::new();
        {
            let mut state = self.state.lock().expect("lock");
            for policy in &policies.items {
                let name = policy.metadata.name.clone().unwrap_or_default();
                let generation = policy.metadata.generation.unwrap_or(0);
                present.insert(name.clone());
                if state.rolled_out.get(&name) == Some(&generation) {
                    continue;
                }
                match state.rolling.get(&name) {
                    Some((rolling, done)) if *rolling == generation => {
                        if *done <= now {
                            finished.push(policy.clone());
                        }
                    }
                    _ => {
                        state
                            .rolling
                            .insert(name.clone(), (generation, now + ROLLOUT));
                        start_rollout = true;
                    }
                }
            }
            if start_rollout {
                state.config_version += 1;
            }
        }
        let policies_api = api(
            &self.client,
            "policies.kubewarden.io",
            "v1",
            "ClusterAdmissionPolicy",
            "clusteradmissionpolicies",
        );
        if start_rollout {
            let version = self.state.lock().expect("lock").config_version;
            let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
                "kubewarden/config-version": version.to_string() } } } } });
            deployments
                .patch(
                    POLICY_SERVER_DEPLOYMENT,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            for policy in &policies.items {
                let name = policy.metadata.name.clone().unwrap_or_default();
                if policy.data["status"]["policyStatus"].is_null() {
                    let status = json!({ "status": { "policyStatus": "pending" } });
                    policies_api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await?;
                }
            }
        }
        for policy in finished {
            let name = policy.metadata.name.clone().unwrap_or_default();
            let unique = format!("clusterwide-{name}");
            let spec = &policy.data["spec"];
            let mode = spec["mode"].as_str().unwrap_or("protect").to_owned();
            self.webhook.state.served.lock().expect("lock").insert(
                unique.clone(),
                Served {
                    mode: mode.clone(),
                    settings: spec["settings"].clone(),
                },
            );
            self.moment(Moment::Served(unique.clone(), mode.clone()));
            self.webhook_configuration(&unique, spec).await?;
            let status = json!({ "status": {
                "policyStatus": "active",
                "mode": mode,
                "conditions": [{
                    "type": "PolicyActive", "status": "True", "reason": "PolicyActive",
                    "message": "The policy webhook has been created",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }],
            } });
            policies_api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
            let generation = policy.metadata.generation.unwrap_or(0);
            let mut state = self.state.lock().expect("lock");
            state.rolled_out.insert(name.clone(), generation);
            state.rolling.remove(&name);
        }
        // The Deployment controller: rolled out once no policy is rolling.
        let rolling = !self.state.lock().expect("lock").rolling.is_empty();
        if !rolling && let Some(deployment) = deployments.get_opt(POLICY_SERVER_DEPLOYMENT).await? {
            let generation = deployment.metadata.generation.unwrap_or(0);
            if deployment.data["status"]["observedGeneration"] != generation {
                let replicas = deployment.data["spec"]["replicas"].as_i64().unwrap_or(1);
                let status = json!({ "status": {
                    "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                    "readyReplicas": replicas, "availableReplicas": replicas,
                    "conditions": [
                        { "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable" },
                        { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" },
                    ],
                } });
                deployments
                    .patch_status(
                        POLICY_SERVER_DEPLOYMENT,
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await?;
            }
        }
        // Deleted policies: no longer served, their webhook configuration deleted.
        let gone: Vec<String> = {
            let state = self.state.lock().expect("lock");
            state
                .rolled_out
                .keys()
                .filter(|name| !present.contains(*name))
                .cloned()
                .collect()
        };
        let configurations = api(
            &self.client,
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        );
        for name in gone {
            let unique = format!("clusterwide-{name}");
            self.webhook
                .state
                .served
                .lock()
                .expect("lock")
                .remove(&unique);
            let _ = configurations
                .delete(&unique, &DeleteParams::default())
                .await;
            let mut state = self.state.lock().expect("lock");
            state.rolled_out.remove(&name);
            state.rolling.remove(&name);
        }
        Ok(())
    }

    async fn webhook_configuration(&self, unique: &str, spec: &Value) -> Result<()> {
        let configurations = api(
            &self.client,
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        );
        let mut webhook = json!({
            "name": format!("{unique}.kubewarden.admission"),
            "clientConfig": {
                "url": self.webhook.url(&format!("/validate/{unique}")),
                "caBundle": base64(&self.webhook.ca_bundle),
            },
            "rules": spec["rules"],
            "failurePolicy": spec["failurePolicy"].as_str().unwrap_or("Fail"),
            "matchPolicy": spec["matchPolicy"].as_str().unwrap_or("Equivalent"),
            // Cluster-wide policies skip Kubewarden's own namespace.
            "namespaceSelector": { "matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [JOB_NAMESPACE] }] },
            "sideEffects": "None",
            "timeoutSeconds": spec["timeoutSeconds"].as_i64().unwrap_or(10),
            "admissionReviewVersions": ["v1"],
        });
        if !spec["objectSelector"].is_null() {
            webhook["objectSelector"] = spec["objectSelector"].clone();
        }
        let configuration: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": { "name": unique, "labels": { "app.kubernetes.io/part-of": "kubewarden" } },
            "webhooks": [webhook],
        }))?;
        let params = PatchParams::apply("kubewarden-controller").force();
        configurations
            .patch(unique, &params, &Patch::Apply(&configuration))
            .await?;
        Ok(())
    }

    async fn fleet(&self) -> Result<()> {
        let charts = namespaced(
            &self.client,
            "fleet-local",
            "management.cattle.io",
            "v3",
            "ManagedChart",
            "managedcharts",
        );
        let kubevirts = namespaced(
            &self.client,
            "harvester-system",
            "kubevirt.io",
            "v1",
            "KubeVirt",
            "kubevirts",
        );
        let Some(kubevirt) = kubevirts.get_opt("kubevirt").await? else {
            return Ok(());
        };
        let mut gates =
            kubevirt.data["spec"]["configuration"]["developerConfiguration"]["featureGates"]
                .clone();
        if let Some(chart) = charts.get_opt("harvester").await? {
            let rendered = &chart.data["spec"]["values"]["kubevirt"]["spec"]["configuration"]["developerConfiguration"]
                ["featureGates"];
            if rendered.is_array() && *rendered != gates {
                let patch = json!({ "spec": { "configuration": { "developerConfiguration": { "featureGates": rendered } } } });
                kubevirts
                    .patch("kubevirt", &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                gates = rendered.clone();
            }
        }
        let on = gates
            .as_array()
            .is_some_and(|gates| gates.iter().any(|gate| gate == "Sidecar"));
        self.webhook.state.sidecar_gate.store(on, Ordering::SeqCst);
        self.moment(Moment::Gate(on));
        Ok(())
    }

    async fn kubelet(&self) -> Result<()> {
        let deployments: Api<DynamicObject> = namespaced(
            &self.client,
            JOB_NAMESPACE,
            "apps",
            "v1",
            "Deployment",
            "deployments",
        );
        let deployment = deployments.get_opt(SYNC_DEPLOYMENT).await?;
        let generation = deployment.as_ref().and_then(|d| d.metadata.generation);
        let running = self
            .state
            .lock()
            .expect("lock")
            .job
            .as_ref()
            .map(|(generation, _)| *generation);
        if generation == running {
            return Ok(());
        }
        if let Some((_, job)) = self.state.lock().expect("lock").job.take() {
            job.stop()?;
        }
        let (Some(deployment), Some(generation)) = (deployment, generation) else {
            return Ok(());
        };
        let container = &deployment.data["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<String> = serde_json::from_value(container["args"].clone())?;
        let account = deployment.data["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let token = self.cluster.kubectl(&[
            "create",
            "token",
            &account,
            "-n",
            JOB_NAMESPACE,
            "--duration=2h",
        ])?;
        let kubeconfig = self
            .cluster
            .dir()
            .join(format!("{account}-{generation}.kubeconfig"));
        std::fs::write(
            &kubeconfig,
            test_support::kubeconfig(self.cluster.port, token.trim()),
        )?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let job = self
            .cluster
            .start_job_as(&self.job_binary, &kubeconfig, &args)?;
        self.state.lock().expect("lock").job = Some((generation, job));
        Ok(())
    }

    async fn audit_scanner(&self) -> Result<()> {
        let jobs: Api<DynamicObject> =
            namespaced(&self.client, JOB_NAMESPACE, "batch", "v1", "Job", "jobs");
        for job in jobs.list(&Default::default()).await?.items {
            let name = job.metadata.name.clone().unwrap_or_default();
            let from_scanner = job
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|owner| owner.kind == "CronJob" && owner.name == "audit-scanner");
            if !from_scanner || self.state.lock().expect("lock").audited.contains(&name) {
                continue;
            }
            self.audit().await?;
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let status = json!({ "status": {
                "startTime": now, "completionTime": now, "succeeded": 1, "ready": 0,
                "conditions": [
                    { "type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now },
                    { "type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now },
                ],
            } });
            jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
            self.state.lock().expect("lock").audited.insert(name);
        }
        Ok(())
    }

    /// The audit scanner's run: each VM against each served policy with backgroundAudit that
    /// selects VMs, as a CREATE of the object; one Report per VM.
    async fn audit(&self) -> Result<()> {
        let policies = api(
            &self.client,
            "policies.kubewarden.io",
            "v1",
            "ClusterAdmissionPolicy",
            "clusteradmissionpolicies",
        )
        .list(&Default::default())
        .await?;
        let vms = api(
            &self.client,
            "kubevirt.io",
            "v1",
            "VirtualMachine",
            "virtualmachines",
        )
        .list(&Default::default())
        .await?;
        let served = self.webhook.state.served.lock().expect("lock").clone();
        for vm in vms.items {
            let namespace = vm.metadata.namespace.clone().unwrap_or_default();
            let name = vm.metadata.name.clone().unwrap_or_default();
            let uid = vm.metadata.uid.clone().unwrap_or_default();
            let object = serde_json::to_value(&vm)?;
            let request = json!({
                "uid": format!("audit-{uid}"),
                "kind": { "group": "kubevirt.io", "version": "v1", "kind": "VirtualMachine" },
                "resource": { "group": "kubevirt.io", "version": "v1", "resource": "virtualmachines" },
                "requestKind": { "group": "kubevirt.io", "version": "v1", "kind": "VirtualMachine" },
                "requestResource": { "group": "kubevirt.io", "version": "v1", "resource": "virtualmachines" },
                "name": name, "namespace": namespace, "operation": "CREATE",
                "userInfo": { "username": format!("system:serviceaccount:{JOB_NAMESPACE}:audit-scanner") },
                "object": object, "dryRun": true,
            });
            let mut results = Vec::new();
            let (mut pass, mut fail) = (0, 0);
            for policy in &policies.items {
                let spec = &policy.data["spec"];
                let selects_vms = spec["rules"].as_array().is_some_and(|rules| {
                    rules.iter().any(|rule| {
                        rule["resources"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|r| r == "virtualmachines"))
                    })
                });
                let unique = format!(
                    "clusterwide-{}",
                    policy.metadata.name.clone().unwrap_or_default()
                );
                let Some(config) = served.get(&unique) else {
                    continue;
                };
                if spec["backgroundAudit"] != true || !selects_vms {
                    continue;
                }
                let response = self.webhook.state.evaluate(&request, &config.settings)?;
                let allowed = response["allowed"] == true;
                if allowed {
                    pass += 1
                } else {
                    fail += 1
                }
                let seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_secs();
                results.push(json!({
                    "source": "kubewarden", "policy": unique,
                    "result": if allowed { "pass" } else { "fail" },
                    "message": response["status"]["message"].as_str().unwrap_or_default(),
                    "scored": true, "timestamp": { "seconds": seconds, "nanos": 0 },
                    "severity": if config.mode == "monitor" { "info" } else { "" },
                }));
            }
            let report: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "openreports.io/v1alpha1",
                "kind": "Report",
                "metadata": { "name": uid, "namespace": namespace, "labels": { "app.kubernetes.io/managed-by": "kubewarden" } },
                "scope": { "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": name, "namespace": namespace, "uid": uid },
                "summary": { "pass": pass, "fail": fail, "warn": 0, "error": 0, "skip": 0 },
                "results": results,
            }))?;
            let reports = namespaced(
                &self.client,
                &namespace,
                "openreports.io",
                "v1alpha1",
                "Report",
                "reports",
            );
            let _ = reports.delete(&uid, &DeleteParams::default()).await;
            reports.create(&PostParams::default(), &report).await?;
        }
        Ok(())
    }
}

fn same_subject(a: &Moment, b: &Moment) -> bool {
    match (a, b) {
        (Moment::Served(x, _), Moment::Served(y, _)) => x == y,
        (Moment::Gate(_), Moment::Gate(_)) => true,
        _ => false,
    }
}

fn base64(text: &str) -> String {
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
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
