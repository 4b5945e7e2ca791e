//! Prometheus metrics, served on `/metrics` in the OpenMetrics text format.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// How one reconciliation ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    /// The list was written into the policy (the policy's resourceVersion moved).
    Applied,
    /// The policy already held the list (no request, or an apply the API server found a no-op).
    Unchanged,
    /// The policy would refuse the resulting settings; its current list was kept.
    Refused,
    /// The Setting was missing and has been created.
    SettingCreated,
    /// The Setting was deleted; the job waits for the grace period before creating it again.
    SettingMissing,
    /// The ClusterAdmissionPolicy does not exist (yet); the job waits for it.
    PolicyMissing,
    /// An API request failed; retried with backoff.
    Error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

pub struct Metrics {
    registry: Registry,
    reconciliations: Family<OutcomeLabels, Counter>,
    reconcile_duration: Histogram,
    pub refused_lists: Counter,
    pub apply_requests: Counter,
    list_accepted: Family<PolicyLabels, Gauge>,
    allowed_images: Family<PolicyLabels, Gauge>,
    pub last_applied_timestamp: Gauge<f64, AtomicU64>,
    pub watch_errors: Counter,
    pub feature_gate_ensured: Gauge,
    pub feature_gate_policy_active: Gauge,
    pub feature_gate_protecting: Gauge,
    pub feature_gate_protection_losses: Counter,
    pub feature_gate_additions: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Self {
            registry: Registry::with_prefix("hook_sidecar_sync"),
            reconciliations: Family::default(),
            // 1 ms to about 4 s: a reconciliation is one apply request at most.
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            refused_lists: Counter::default(),
            apply_requests: Counter::default(),
            list_accepted: Family::default(),
            allowed_images: Family::default(),
            last_applied_timestamp: Gauge::default(),
            watch_errors: Counter::default(),
            feature_gate_ensured: Gauge::default(),
            feature_gate_policy_active: Gauge::default(),
            feature_gate_protecting: Gauge::default(),
            feature_gate_protection_losses: Counter::default(),
            feature_gate_additions: Counter::default(),
        };
        metrics.registered()
    }

    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            "reconciliations",
            "Reconciliations, by outcome",
            self.reconciliations.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent reconciling, API requests included",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "refused_lists",
            "Distinct Setting lists the policy would refuse, never applied",
            self.refused_lists.clone(),
        );
        registry.register(
            "apply_requests",
            "Apply requests sent to a policy, including those the API server found to be no-ops",
            self.apply_requests.clone(),
        );
        registry.register(
            "list_accepted",
            "1 when the policy holds the Setting's current list, 0 when the list is refused or the policy is missing",
            self.list_accepted.clone(),
        );
        registry.register(
            "allowed_images",
            "Entries in the policy's allowedImages as last applied or found; 0 while the policy is missing",
            self.allowed_images.clone(),
        );
        registry.register(
            "last_applied_timestamp_seconds",
            "Unix time of the last write into the policy",
            self.last_applied_timestamp.clone(),
        );
        registry.register(
            "watch_errors",
            "Watch failures (each retried with backoff)",
            self.watch_errors.clone(),
        );
        registry.register(
            "feature_gate_ensured",
            "1 while the job keeps the Sidecar feature gate on (ManagedChart values or KubeVirt CR); 0 while a policy is missing, not active or not in protect mode",
            self.feature_gate_ensured.clone(),
        );
        registry.register(
            "feature_gate_policy_active",
            "1 when every ClusterAdmissionPolicy was last seen active, whatever its mode, else 0",
            self.feature_gate_policy_active.clone(),
        );
        registry.register(
            "feature_gate_protecting",
            "1 when every ClusterAdmissionPolicy was last seen active in protect mode (the gate may be on), else 0",
            self.feature_gate_protecting.clone(),
        );
        registry.register(
            "feature_gate_protection_losses",
            "Times a policy stopped being active in protect mode while the job kept the gate on: from then on the job does not add the gate again",
            self.feature_gate_protection_losses.clone(),
        );
        registry.register(
            "feature_gate_additions",
            "Times the job added the Sidecar feature gate (again after a removal)",
            self.feature_gate_additions.clone(),
        );
        self
    }

    pub fn observe_reconciliation(&self, outcome: Outcome, seconds: f64) {
        self.reconciliations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    /// What the job knows of `policy`: whether it holds the Setting's list, and how many entries
    /// its allowedImages has.
    pub fn policy_state(&self, policy: &str, accepted: bool, entries: usize) {
        let labels = PolicyLabels {
            policy: policy.to_owned(),
        };
        self.list_accepted
            .get_or_create(&labels)
            .set(i64::from(accepted));
        self.allowed_images
            .get_or_create(&labels)
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_outcomes_with_prefix() {
        let metrics = Metrics::new();
        metrics.observe_reconciliation(Outcome::Applied, 0.002);
        metrics.observe_reconciliation(Outcome::Applied, 0.003);
        metrics.observe_reconciliation(Outcome::Refused, 0.001);
        metrics.refused_lists.inc();
        metrics.policy_state("hook-sidecars", true, 3);
        metrics.policy_state("launchers", false, 0);
        let text = metrics.encode();
        assert!(
            text.contains("hook_sidecar_sync_allowed_images{policy=\"hook-sidecars\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("hook_sidecar_sync_list_accepted{policy=\"launchers\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("hook_sidecar_sync_reconciliations_total{outcome=\"Applied\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hook_sidecar_sync_reconciliations_total{outcome=\"Refused\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hook_sidecar_sync_refused_lists_total 1"),
            "{text}"
        );
        assert!(
            text.contains("hook_sidecar_sync_reconcile_duration_seconds_count 3"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
