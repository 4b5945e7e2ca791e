//! Optionally keeps `Sidecar` among KubeVirt's feature gates, and only while every
//! ClusterAdmissionPolicy the job keeps is `active` **in protect mode**: with the gate on, KubeVirt
//! runs whatever the hook-sidecar annotation asks for, and only a policy that rejects (protect)
//! stands in the way; a policy in monitor mode only reports.
//!
//! Without the gate, KubeVirt does not ignore the annotation: it refuses it. virt-api's VMI
//! admitter rejects a VMI (and a VM, through its template) whose `hooks.kubevirt.io/hookSidecars`
//! is not empty with "sidecar feature gate is not enabled in kubevirt-config"
//! (pkg/virt-api/webhooks/validating-webhook/admitters/vmi-create-admitter.go, lines 1235-1240 at
//! v1.7.0; vms-admitter.go line 220 for the VM's template). So while the gate is off no VM can
//! carry a sidecar, and turning the gate off again leaves the VMs that carry the annotation unable
//! to start (docs/runbook.md, Rollback).
//!
//! "Protect" is read twice: `spec.mode` (what is asked) and `status.mode`, which
//! kubewarden-controller writes from the PolicyServer's policies ConfigMap (`setPolicyModeStatus`,
//! internal/controller/policy_subreconciler.go, v1.35.0): the mode policy-server is configured
//! with, `unknown` until the policy is in that ConfigMap. Both must say `protect`, with
//! `status.policyStatus: active`.
//!
//! The gate lives in one of two places:
//! - `managedchart`: on Harvester the KubeVirt CR is rendered by the `harvester` ManagedChart
//!   (`fleet-local`), from `spec.values.kubevirt.spec.configuration.developerConfiguration.featureGates`.
//!   A patch of the CR itself would drift from the chart and block Harvester's upgrades.
//! - `kubevirt`: the KubeVirt CR, on a plain KubeVirt install.
//!
//! `auto` picks the ManagedChart when it exists, else the CR, at every reconciliation.
//!
//! Watches of the policies, of the target(s) and of the Setting re-add the gate when an upgrade or
//! a person removes it while the policies protect. When one stops protecting (deleted, recreated
//! in monitor, not active), the job stops re-adding the gate and says so at once: the Setting's
//! `sidecarFeatureGate` condition, a Warning Event on the Setting, the metrics and a log line. The
//! gate is never removed by the job: switching it off is the administrator's decision (it stops
//! the VMs that carry sidecars from starting).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use clap::ValueEnum;
use futures::{Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::events::{EventPublisher, GateEvent};
use crate::http::Monitoring;
use crate::resources::{ClusterAdmissionPolicy, KubeVirt, ManagedChart, Setting};
use crate::status::{self, Condition, GATE_CONDITION_TYPE};
use crate::{Error, Result};

pub const SIDECAR_GATE: &str = "Sidecar";

/// The policy status Kubewarden reports once policy-server serves the policy.
pub const POLICY_ACTIVE: &str = "active";

/// The mode in which the policy rejects what it does not allow.
pub const PROTECT: &str = "protect";

/// Where the job adds the gate (`--ensure-sidecar-feature-gate=<target>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GateTarget {
    /// The ManagedChart when it exists, else the KubeVirt CR.
    #[default]
    Auto,
    /// The `harvester` ManagedChart's values (Harvester).
    #[value(name = "managedchart")]
    ManagedChart,
    /// The KubeVirt CR (plain KubeVirt).
    #[value(name = "kubevirt")]
    KubeVirt,
}

/// A namespaced object's coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectName {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug)]
pub struct GateConfig {
    pub target: GateTarget,
    /// Every policy the job keeps: the gate waits until all of them are active in protect mode.
    pub policy_names: Vec<String>,
    pub kubevirt: ObjectName,
    pub managed_chart: ObjectName,
    /// The Setting that carries the `sidecarFeatureGate` condition and the Events.
    pub setting_name: String,
    pub field_manager: String,
}

/// The chart value holding KubeVirt's feature gates, as a JSON pointer into `spec.values`.
const CHART_GATES: &str = "/kubevirt/spec/configuration/developerConfiguration/featureGates";

/// The feature gates with `Sidecar` appended, or `None` when it is already there.
pub fn with_sidecar_gate(gates: &[Value]) -> Option<Vec<Value>> {
    if gates.iter().any(|gate| gate.as_str() == Some(SIDECAR_GATE)) {
        return None;
    }
    let mut gates = gates.to_vec();
    gates.push(Value::from(SIDECAR_GATE));
    Some(gates)
}

/// The policy's `status.policyStatus`, if any.
pub fn policy_status(policy: &ClusterAdmissionPolicy) -> Option<&str> {
    policy
        .status
        .as_ref()
        .and_then(|status| status.policy_status.as_deref())
}

/// Why a policy does not let the gate be on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// The policy does not exist.
    Missing,
    /// Not `active`: the status the controller reported, if any.
    NotActive(Option<String>),
    /// Active, but not protecting: `spec.mode` and `status.mode`.
    NotProtecting {
        spec: Option<String>,
        status: Option<String>,
    },
}

/// The policy's blocker, or `None` when it is active and in protect mode, asked (`spec.mode`) and
/// configured (`status.mode`).
pub fn blocker(policy: Option<&ClusterAdmissionPolicy>) -> Option<Blocker> {
    let Some(policy) = policy else {
        return Some(Blocker::Missing);
    };
    let status = policy_status(policy);
    if status != Some(POLICY_ACTIVE) {
        return Some(Blocker::NotActive(status.map(str::to_owned)));
    }
    let spec = policy.spec.mode.as_deref();
    let configured = policy.status.as_ref().and_then(|s| s.mode.as_deref());
    if spec != Some(PROTECT) || configured != Some(PROTECT) {
        return Some(Blocker::NotProtecting {
            spec: spec.map(str::to_owned),
            status: configured.map(str::to_owned),
        });
    }
    None
}

/// The first policy, in `--policy-name` order, that does not let the gate be on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub policy: String,
    pub blocker: Blocker,
}

impl Hold {
    /// The reason of the condition and of the Event.
    pub fn reason(&self) -> &'static str {
        match self.blocker {
            Blocker::Missing => "PolicyNotFound",
            Blocker::NotActive(_) => "PolicyNotActive",
            Blocker::NotProtecting { .. } => "PolicyNotInProtectMode",
        }
    }

    /// What is wrong with the policy, naming it, its fields and their values.
    pub fn describe(&self) -> String {
        let policy = &self.policy;
        let or_unset = |value: &Option<String>| value.clone().unwrap_or_else(|| "unset".into());
        match &self.blocker {
            Blocker::Missing => format!("ClusterAdmissionPolicy {policy} does not exist"),
            Blocker::NotActive(status) => format!(
                "ClusterAdmissionPolicy {policy} has status.policyStatus {}, not active",
                or_unset(status)
            ),
            Blocker::NotProtecting { spec, status } => format!(
                "ClusterAdmissionPolicy {policy} is active with spec.mode {} and status.mode {}, \
                 not protect: it reports sidecars it does not allow but does not reject them",
                or_unset(spec),
                or_unset(status)
            ),
        }
    }

    /// `status.policyStatus` as logged (`<missing>` for a missing policy).
    fn status_field(&self) -> &str {
        match &self.blocker {
            Blocker::Missing => "<missing>",
            Blocker::NotActive(status) => status.as_deref().unwrap_or("<none>"),
            Blocker::NotProtecting { .. } => POLICY_ACTIVE,
        }
    }
}

/// What one reconciliation found or did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A policy is missing, not active or not in protect mode: the gate was left alone (neither
    /// added nor removed). `all_active` says whether every policy is at least active; `gate_on`
    /// where the gate is on meanwhile (`None` when it is off, or could not be read).
    NotProtected {
        hold: Hold,
        all_active: bool,
        gate_on: Option<Place>,
    },
    /// The gate was already there.
    AlreadyOn(Place),
    /// The gate was added.
    Added(Place),
}

/// Where the gate was found or added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    ManagedChart,
    KubeVirt,
}

pub struct FeatureGate {
    config: GateConfig,
    policies: Api<ClusterAdmissionPolicy>,
    kubevirts: Api<KubeVirt>,
    managed_charts: Api<ManagedChart>,
    settings: Api<Setting>,
}

impl FeatureGate {
    pub fn new(client: Client, config: GateConfig) -> Self {
        Self {
            policies: Api::all(client.clone()),
            kubevirts: Api::namespaced(client.clone(), &config.kubevirt.namespace),
            managed_charts: Api::namespaced(client.clone(), &config.managed_chart.namespace),
            settings: Api::all(client),
            config,
        }
    }

    /// Adds the gate if every policy is active in protect mode and the gate is missing.
    pub async fn reconcile(&self) -> Result<Outcome> {
        let mut first = None;
        let mut all_active = true;
        for name in &self.config.policy_names {
            let policy = self.policies.get_opt(name).await?;
            if let Some(blocker) = blocker(policy.as_ref()) {
                all_active &= matches!(blocker, Blocker::NotProtecting { .. });
                first.get_or_insert(Hold {
                    policy: name.clone(),
                    blocker,
                });
            }
        }
        if let Some(hold) = first {
            // Only read: is the gate on while nothing protects? (Then the job says so loudly.)
            let gate_on = self.gate_on().await.unwrap_or_else(|error| {
                debug!(%error, "cannot tell whether the Sidecar feature gate is on");
                None
            });
            return Ok(Outcome::NotProtected {
                hold,
                all_active,
                gate_on,
            });
        }
        match self.config.target {
            GateTarget::KubeVirt => self.ensure_on_kubevirt().await,
            GateTarget::ManagedChart => self.ensure_on_managed_chart(None).await,
            GateTarget::Auto => {
                match self
                    .managed_charts
                    .get_opt(&self.config.managed_chart.name)
                    .await?
                {
                    Some(chart) => self.ensure_on_managed_chart(Some(chart)).await,
                    None => self.ensure_on_kubevirt().await,
                }
            }
        }
    }

    /// Where the gate is on, if anywhere the target looks: the ManagedChart's values (or, when
    /// they name no gates, the CR the chart rendered) or the CR.
    async fn gate_on(&self) -> Result<Option<Place>> {
        let chart = match self.config.target {
            GateTarget::KubeVirt => None,
            GateTarget::ManagedChart | GateTarget::Auto => {
                self.managed_charts
                    .get_opt(&self.config.managed_chart.name)
                    .await?
            }
        };
        if let Some(chart) = chart
            && let Some(Value::Array(gates)) = chart.spec.pointer(&format!("/values{CHART_GATES}"))
        {
            let on = with_sidecar_gate(gates).is_none();
            return Ok(on.then_some(Place::ManagedChart));
        }
        let on = match self.kubevirts.get_opt(&self.config.kubevirt.name).await? {
            Some(kubevirt) => with_sidecar_gate(kubevirt.feature_gates()).is_none(),
            None => false,
        };
        Ok(on.then_some(Place::KubeVirt))
    }

    /// A merge patch of the CR's gates, conditional on the resourceVersion read: a concurrent
    /// change makes it fail (409) rather than drop a gate someone else added; the caller retries.
    async fn ensure_on_kubevirt(&self) -> Result<Outcome> {
        let kubevirt = self.kubevirts.get(&self.config.kubevirt.name).await?;
        let Some(gates) = with_sidecar_gate(kubevirt.feature_gates()) else {
            return Ok(Outcome::AlreadyOn(Place::KubeVirt));
        };
        let patch = json!({
            "metadata": { "resourceVersion": kubevirt.metadata.resource_version },
            "spec": { "configuration": { "developerConfiguration": { "featureGates": gates } } },
        });
        self.kubevirts
            .patch(
                &self.config.kubevirt.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(Outcome::Added(Place::KubeVirt))
    }

    /// A merge patch of the chart's gates value (every other value stays: a merge patch merges
    /// maps), conditional on the resourceVersion read. When the values hold no gate list, the
    /// chart's defaults apply; a list with only `Sidecar` would replace them (Helm replaces lists),
    /// so the new list starts from the gates the chart rendered into the KubeVirt CR.
    async fn ensure_on_managed_chart(&self, chart: Option<ManagedChart>) -> Result<Outcome> {
        let chart = match chart {
            Some(chart) => chart,
            None => {
                self.managed_charts
                    .get(&self.config.managed_chart.name)
                    .await?
            }
        };
        let current = match chart.spec.pointer(&format!("/values{CHART_GATES}")) {
            Some(Value::Array(gates)) => gates.clone(),
            None | Some(Value::Null) => {
                let kubevirt = self.kubevirts.get(&self.config.kubevirt.name).await?;
                kubevirt.feature_gates().to_vec()
            }
            Some(other) => {
                return Err(Error::UnexpectedFeatureGates {
                    object: format!("ManagedChart {}", self.config.managed_chart),
                    field: format!("spec.values{}", CHART_GATES.replace('/', ".")),
                    value: other.to_string(),
                });
            }
        };
        let Some(gates) = with_sidecar_gate(&current) else {
            return Ok(Outcome::AlreadyOn(Place::ManagedChart));
        };
        let patch = json!({
            "metadata": { "resourceVersion": chart.metadata.resource_version },
            "spec": { "values": { "kubevirt": { "spec": { "configuration": {
                "developerConfiguration": { "featureGates": gates } } } } } },
        });
        self.managed_charts
            .patch(
                &self.config.managed_chart.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(Outcome::Added(Place::ManagedChart))
    }

    fn place_name(&self, place: Place) -> String {
        match place {
            Place::ManagedChart => format!("ManagedChart {}", self.config.managed_chart),
            Place::KubeVirt => format!("KubeVirt {}", self.config.kubevirt),
        }
    }

    fn target_name(&self) -> String {
        match self.config.target {
            GateTarget::ManagedChart => self.place_name(Place::ManagedChart),
            GateTarget::KubeVirt => self.place_name(Place::KubeVirt),
            GateTarget::Auto => format!(
                "{} (or KubeVirt {} without it)",
                self.place_name(Place::ManagedChart),
                self.config.kubevirt
            ),
        }
    }
}

/// A change notice from a watch of one named object; the objects themselves are read again
/// by [`FeatureGate::reconcile`], which is cheap at this rate and never acts on a stale copy.
fn changes<K>(api: Api<K>, name: &str) -> impl Stream<Item = Result<(), watcher::Error>> + use<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Ok(_) => Some(Ok(())),
                Err(error) => Some(Err(error)),
            }
        })
}

/// Watches the policies, the target(s) and the Setting, reconciling after every change, with
/// backoff after a failure, until `stop` is cancelled.
pub async fn run(
    client: Client,
    config: GateConfig,
    monitoring: std::sync::Arc<Monitoring>,
    stop: CancellationToken,
) {
    let gate = FeatureGate::new(client.clone(), config.clone());
    let mut reporter = Reporter::new(client, &config);
    let mut watches: Vec<_> = config
        .policy_names
        .iter()
        .map(|name| changes(gate.policies.clone(), name).boxed())
        .collect();
    if config.target != GateTarget::ManagedChart {
        watches.push(changes(gate.kubevirts.clone(), &config.kubevirt.name).boxed());
    }
    if config.target != GateTarget::KubeVirt {
        watches.push(changes(gate.managed_charts.clone(), &config.managed_chart.name).boxed());
    }
    // The condition is written on the Setting: a Setting created after the job started (by the
    // sync loop) gets it then.
    watches.push(changes(gate.settings.clone(), &config.setting_name).boxed());
    let mut events = stream::select_all(watches);

    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(60))
        .without_max_times();
    let mut delays = backoff.build();
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            event = events.next() => match event {
                None => {
                    warn!("the feature gate's watches ended");
                    return;
                }
                Some(Err(error)) => {
                    monitoring.metrics.watch_errors.inc();
                    warn!(%error, "feature gate watch failed; reconnecting with backoff");
                    continue;
                }
                Some(Ok(())) => {}
            },
            // A retry is due: reconcile below, which sets the next retry if it fails again.
            () = retry => {}
        }
        match gate.reconcile().await {
            Ok(outcome) => {
                retry_at = None;
                delays = backoff.build();
                reporter.outcome(&gate, &monitoring, &outcome).await;
            }
            Err(error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(60));
                warn!(target_kind = ?config.target, %error, retry_in = ?delay, "cannot ensure the Sidecar feature gate");
                retry_at = Some(tokio::time::Instant::now() + delay);
                reporter.failed(&gate, &error).await;
            }
        }
    }
}

/// What the job last did with the gate, to report each change once.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kept {
    Yes,
    No(Hold, Option<Place>),
}

/// Reports what the job does with the gate: the metrics and a log line at once, and on the
/// Setting the `sidecarFeatureGate` condition (written when it changes) and an Event when the job
/// stops keeping the gate on or adds it.
struct Reporter {
    settings: Api<Setting>,
    events: EventPublisher,
    setting_name: String,
    field_manager: String,
    last: Option<Kept>,
    /// The condition last written on the Setting.
    written: Option<Condition>,
}

impl Reporter {
    fn new(client: Client, config: &GateConfig) -> Self {
        Self {
            settings: Api::all(client.clone()),
            events: EventPublisher::new(
                client,
                &config.field_manager,
                std::env::var("POD_NAME").ok(),
            ),
            setting_name: config.setting_name.clone(),
            field_manager: config.field_manager.clone(),
            last: None,
            written: None,
        }
    }

    async fn outcome(&mut self, gate: &FeatureGate, monitoring: &Monitoring, outcome: &Outcome) {
        let metrics = &monitoring.metrics;
        let (kept, condition) = match outcome {
            Outcome::NotProtected {
                hold,
                all_active,
                gate_on,
            } => {
                metrics
                    .feature_gate_policy_active
                    .set(i64::from(*all_active));
                metrics.feature_gate_protecting.set(0);
                metrics.feature_gate_ensured.set(0);
                let mut message = format!(
                    "{}: the job does not add the Sidecar feature gate to {}, and does not add it \
                     again if it is removed; it never removes it",
                    hold.describe(),
                    gate.target_name()
                );
                if let Some(place) = gate_on {
                    message = format!(
                        "{message}. The gate is on in {}: VM owners can run hook sidecars that \
                         this policy does not reject (turn it off by hand if it must be off: \
                         docs/runbook.md, Rollback)",
                        gate.place_name(*place)
                    );
                }
                let kept = Kept::No(hold.clone(), *gate_on);
                if self.last.as_ref() != Some(&kept) {
                    if self.last == Some(Kept::Yes) {
                        metrics.feature_gate_protection_losses.inc();
                    }
                    // Said loudly whenever the gate is on behind a policy that does not protect:
                    // the job stopped keeping it, or found it so.
                    if gate_on.is_some() {
                        warn!(
                            policy = %hold.policy,
                            status = %hold.status_field(),
                            reason = hold.reason(),
                            "{message}"
                        );
                        self.event(true, hold.reason(), &message).await;
                    } else {
                        info!(
                            policy = %hold.policy,
                            status = %hold.status_field(),
                            reason = hold.reason(),
                            "{message}"
                        );
                    }
                }
                let condition =
                    Condition::of_type(GATE_CONDITION_TYPE, false, hold.reason(), &message);
                (kept, condition)
            }
            Outcome::AlreadyOn(place) | Outcome::Added(place) => {
                metrics.feature_gate_policy_active.set(1);
                metrics.feature_gate_protecting.set(1);
                metrics.feature_gate_ensured.set(1);
                let object = gate.place_name(*place);
                let message = format!(
                    "every ClusterAdmissionPolicy the job keeps ({}) is active in protect mode: \
                     the job keeps the Sidecar feature gate on in {object}",
                    gate.config.policy_names.join(", ")
                );
                if matches!(outcome, Outcome::Added(_)) {
                    metrics.feature_gate_additions.inc();
                    info!(%object, "every policy is active in protect mode: added the Sidecar feature gate");
                    let note = format!("{message}: added it");
                    self.event(false, "SidecarFeatureGateAdded", &note).await;
                } else {
                    debug!(%object, "the Sidecar feature gate is on");
                }
                let condition =
                    Condition::of_type(GATE_CONDITION_TYPE, true, "FeatureGateKept", &message);
                (Kept::Yes, condition)
            }
        };
        self.last = Some(kept);
        self.condition(condition).await;
    }

    async fn failed(&mut self, gate: &FeatureGate, error: &Error) {
        let message = format!(
            "cannot ensure the Sidecar feature gate in {}: {error}",
            gate.target_name()
        );
        let condition = Condition::of_type(
            GATE_CONDITION_TYPE,
            false,
            "FeatureGateNotEnsured",
            &message,
        );
        self.condition(condition).await;
    }

    async fn condition(&mut self, condition: Condition) {
        if self.written.as_ref() == Some(&condition) {
            return;
        }
        match status::report_fresh(
            &self.settings,
            &self.setting_name,
            &condition,
            &self.field_manager,
        )
        .await
        {
            Ok(true) => self.written = Some(condition),
            Ok(false) => {
                debug!(setting = %self.setting_name, "no Setting to write the feature gate's condition on yet");
                self.written = None;
            }
            Err(error) => {
                warn!(%error, setting = %self.setting_name, "cannot write the feature gate's condition on the Setting");
                self.written = None;
            }
        }
    }

    async fn event(&self, warning: bool, reason: &str, note: &str) {
        let regarding = ObjectReference {
            api_version: Some(Setting::api_version(&()).into_owned()),
            kind: Some(Setting::kind(&()).into_owned()),
            name: Some(self.setting_name.clone()),
            ..ObjectReference::default()
        };
        let event = GateEvent {
            warning,
            reason,
            note,
        };
        if let Err(error) = self.events.gate(regarding, &event).await {
            warn!(%error, reason, "cannot publish the feature gate's Event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_once_and_keeps_the_other_gates() {
        let gates = vec![json!("LiveMigration"), json!("HostDevices")];
        let added = with_sidecar_gate(&gates).expect("gate missing");
        assert_eq!(
            added,
            vec![
                json!("LiveMigration"),
                json!("HostDevices"),
                json!("Sidecar")
            ]
        );
        assert_eq!(with_sidecar_gate(&added), None);
    }

    #[test]
    fn no_gates_yet() {
        assert_eq!(with_sidecar_gate(&[]), Some(vec![json!("Sidecar")]));
    }

    #[test]
    fn gate_names_are_case_sensitive() {
        // KubeVirt compares gate names exactly: "sidecar" does not enable the feature.
        assert_eq!(
            with_sidecar_gate(&[json!("sidecar")]),
            Some(vec![json!("sidecar"), json!("Sidecar")])
        );
    }

    fn policy(spec: Value, status: Value) -> ClusterAdmissionPolicy {
        serde_json::from_value(json!({ "metadata": {}, "spec": spec, "status": status }))
            .expect("policy")
    }

    #[test]
    fn only_an_active_status_counts() {
        assert_eq!(
            policy_status(&policy(json!({}), json!({ "policyStatus": "active" }))),
            Some(POLICY_ACTIVE)
        );
        assert_eq!(
            policy_status(&policy(json!({}), json!({ "policyStatus": "pending" }))),
            Some("pending")
        );
        assert_eq!(policy_status(&policy(json!({}), json!({}))), None);
        assert_eq!(policy_status(&policy(json!({}), Value::Null)), None);
    }

    #[rstest::rstest]
    #[case::active_in_protect("protect", json!({"policyStatus": "active", "mode": "protect"}), None)]
    #[case::active_in_monitor("monitor", json!({"policyStatus": "active", "mode": "monitor"}),
        Some(Blocker::NotProtecting { spec: Some("monitor".into()), status: Some("monitor".into()) }))]
    // protect asked, not yet in the PolicyServer's configuration.
    #[case::protect_not_yet_configured("protect", json!({"policyStatus": "active", "mode": "unknown"}),
        Some(Blocker::NotProtecting { spec: Some("protect".into()), status: Some("unknown".into()) }))]
    #[case::protect_without_status_mode("protect", json!({"policyStatus": "active"}),
        Some(Blocker::NotProtecting { spec: Some("protect".into()), status: None }))]
    #[case::pending_in_protect("protect", json!({"policyStatus": "pending", "mode": "protect"}),
        Some(Blocker::NotActive(Some("pending".into()))))]
    #[case::no_status("protect", Value::Null, Some(Blocker::NotActive(None)))]
    fn the_gate_needs_active_and_protect(
        #[case] mode: &str,
        #[case] status: Value,
        #[case] expected: Option<Blocker>,
    ) {
        let policy = policy(json!({ "mode": mode }), status);
        assert_eq!(blocker(Some(&policy)), expected);
    }

    #[test]
    fn a_missing_policy_blocks() {
        assert_eq!(blocker(None), Some(Blocker::Missing));
    }

    #[test]
    fn holds_name_the_policy_the_field_and_the_value() {
        let hold = |blocker| Hold {
            policy: "hook-sidecars".into(),
            blocker,
        };
        let monitor = hold(Blocker::NotProtecting {
            spec: Some("monitor".into()),
            status: Some("monitor".into()),
        });
        assert_eq!(monitor.reason(), "PolicyNotInProtectMode");
        assert!(
            monitor.describe().starts_with(
                "ClusterAdmissionPolicy hook-sidecars is active with spec.mode monitor and status.mode monitor, not protect"
            ),
            "{}",
            monitor.describe()
        );
        let pending = hold(Blocker::NotActive(Some("pending".into())));
        assert_eq!(pending.reason(), "PolicyNotActive");
        assert_eq!(
            pending.describe(),
            "ClusterAdmissionPolicy hook-sidecars has status.policyStatus pending, not active"
        );
        assert_eq!(hold(Blocker::Missing).reason(), "PolicyNotFound");
        assert_eq!(hold(Blocker::Missing).status_field(), "<missing>");
    }
}
