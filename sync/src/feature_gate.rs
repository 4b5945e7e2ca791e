//! Optionally keeps `Sidecar` among KubeVirt's feature gates (KubeVirt ignores the hook-sidecar
//! annotation without it), and only while the ClusterAdmissionPolicy that checks sidecars reports
//! `status.policyStatus: active`: before that, turning the gate on would let any sidecar run.
//!
//! The gate lives in one of two places:
//! - `managedchart`: on Harvester the KubeVirt CR is rendered by the `harvester` ManagedChart
//!   (`fleet-local`), from `spec.values.kubevirt.spec.configuration.developerConfiguration.featureGates`.
//!   A patch of the CR itself would drift from the chart and block Harvester's upgrades.
//! - `kubevirt`: the KubeVirt CR, on a plain KubeVirt install.
//!
//! `auto` picks the ManagedChart when it exists, else the CR, at every reconciliation.
//!
//! Watches of the policy and of the target(s) re-add the gate when an upgrade or a person removes
//! it while the policy is active. The gate is never removed by the job: switching it off is the
//! administrator's first step of a rollback (README).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use clap::ValueEnum;
use futures::{Stream, StreamExt, stream};
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::http::Monitoring;
use crate::resources::{ClusterAdmissionPolicy, KubeVirt, ManagedChart};
use crate::{Error, Result};

pub const SIDECAR_GATE: &str = "Sidecar";

/// The policy status Kubewarden reports once policy-server serves the policy.
pub const POLICY_ACTIVE: &str = "active";

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
    /// Every policy the job keeps: the gate waits until all of them are active.
    pub policy_names: Vec<String>,
    pub kubevirt: ObjectName,
    pub managed_chart: ObjectName,
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

/// What one reconciliation found or did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A policy is missing or not active: the gate was left alone. The policy and its status.
    PolicyNotActive(String, Option<String>),
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
}

impl FeatureGate {
    pub fn new(client: Client, config: GateConfig) -> Self {
        Self {
            policies: Api::all(client.clone()),
            kubevirts: Api::namespaced(client.clone(), &config.kubevirt.namespace),
            managed_charts: Api::namespaced(client, &config.managed_chart.namespace),
            config,
        }
    }

    /// Adds the gate if every policy is active and the gate is missing.
    pub async fn reconcile(&self) -> Result<Outcome> {
        for name in &self.config.policy_names {
            let policy = self.policies.get_opt(name).await?;
            let status = policy.as_ref().and_then(policy_status);
            if status != Some(POLICY_ACTIVE) {
                return Ok(Outcome::PolicyNotActive(
                    name.clone(),
                    status.map(str::to_owned),
                ));
            }
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

/// Watches the policy and the target(s), reconciling after every change, with backoff after a
/// failure, until `stop` is cancelled.
pub async fn run(
    client: Client,
    config: GateConfig,
    monitoring: std::sync::Arc<Monitoring>,
    stop: CancellationToken,
) {
    let gate = FeatureGate::new(client, config.clone());
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
    let mut events = stream::select_all(watches);

    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(60))
        .without_max_times();
    let mut delays = backoff.build();
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut last_waiting: Option<(String, Option<String>)> = None;
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
                observe(&monitoring, &config, &outcome, &mut last_waiting);
            }
            Err(error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(60));
                warn!(target_kind = ?config.target, %error, retry_in = ?delay, "cannot ensure the Sidecar feature gate");
                retry_at = Some(tokio::time::Instant::now() + delay);
            }
        }
    }
}

fn observe(
    monitoring: &Monitoring,
    config: &GateConfig,
    outcome: &Outcome,
    last_waiting: &mut Option<(String, Option<String>)>,
) {
    let metrics = &monitoring.metrics;
    match outcome {
        Outcome::PolicyNotActive(policy, status) => {
            metrics.feature_gate_policy_active.set(0);
            // One line per status change, not one per event.
            let waiting = (policy.clone(), status.clone());
            if last_waiting.as_ref() != Some(&waiting) {
                info!(
                    %policy,
                    status = %status.as_deref().unwrap_or("<missing>"),
                    "the policy is not active: the Sidecar feature gate is left alone"
                );
                *last_waiting = Some(waiting);
            }
        }
        Outcome::AlreadyOn(place) => {
            metrics.feature_gate_policy_active.set(1);
            metrics.feature_gate_ensured.set(1);
            *last_waiting = None;
            debug!(?place, "the Sidecar feature gate is on");
        }
        Outcome::Added(place) => {
            metrics.feature_gate_policy_active.set(1);
            metrics.feature_gate_ensured.set(1);
            metrics.feature_gate_additions.inc();
            *last_waiting = None;
            let object = match place {
                Place::ManagedChart => format!("ManagedChart {}", config.managed_chart),
                Place::KubeVirt => format!("KubeVirt {}", config.kubevirt),
            };
            info!(%object, "the policy is active: added the Sidecar feature gate");
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

    #[test]
    fn only_an_active_status_counts() {
        let policy = |status: Value| -> ClusterAdmissionPolicy {
            serde_json::from_value(json!({ "metadata": {}, "status": status })).expect("policy")
        };
        assert_eq!(
            policy_status(&policy(json!({ "policyStatus": "active" }))),
            Some(POLICY_ACTIVE)
        );
        assert_eq!(
            policy_status(&policy(json!({ "policyStatus": "pending" }))),
            Some("pending")
        );
        assert_eq!(policy_status(&policy(json!({}))), None);
        assert_eq!(policy_status(&policy(Value::Null)), None);
    }
}
