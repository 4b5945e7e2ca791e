//! Optionally makes sure `Sidecar` is in the KubeVirt CR's feature gates: KubeVirt ignores the
//! hook-sidecar annotation without it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::http::Health;
use crate::resources::KubeVirt;
use crate::Result;

pub const SIDECAR_GATE: &str = "Sidecar";

/// The feature gates with `Sidecar` appended, or `None` when it is already there.
pub fn with_sidecar_gate(gates: &[Value]) -> Option<Vec<Value>> {
    if gates.iter().any(|gate| gate.as_str() == Some(SIDECAR_GATE)) {
        return None;
    }
    let mut gates = gates.to_vec();
    gates.push(Value::from(SIDECAR_GATE));
    Some(gates)
}

/// Adds the gate once. Returns whether it was added. The patch carries the resourceVersion that
/// was read, so a concurrent change of the CR makes it fail (409) rather than drop a gate that
/// someone else added meanwhile; the caller retries.
pub async fn ensure(api: &Api<KubeVirt>, name: &str) -> Result<bool> {
    let kubevirt = api.get(name).await?;
    let Some(gates) = with_sidecar_gate(kubevirt.feature_gates()) else {
        return Ok(false);
    };
    let patch = json!({
        "metadata": { "resourceVersion": kubevirt.metadata.resource_version },
        "spec": { "configuration": { "developerConfiguration": { "featureGates": gates } } },
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

/// Retries [`ensure`] with backoff until it succeeds or the job stops.
pub async fn run(
    client: Client,
    namespace: String,
    name: String,
    health: std::sync::Arc<Health>,
    stop: CancellationToken,
) {
    let api = Api::<KubeVirt>::namespaced(client, &namespace);
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(60))
        .without_max_times()
        .build();
    loop {
        match ensure(&api, &name).await {
            Ok(added) => {
                info!(kubevirt = %format!("{namespace}/{name}"), added, "the Sidecar feature gate is on");
                health.metrics.feature_gate_ensured.set(1);
                return;
            }
            Err(error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(60));
                warn!(kubevirt = %format!("{namespace}/{name}"), %error, retry_in = ?delay, "cannot ensure the Sidecar feature gate");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
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
}
