//! The job's state on the Setting, the way Harvester's own controllers report on their settings:
//! wrangler conditions in `status.conditions`. Type `configured`: `True` when every policy holds
//! the list, `False` with the policy's reason when one does not. Type `sidecarFeatureGate` (with
//! `--ensure-sidecar-feature-gate`): `True` while the job keeps the `Sidecar` gate on, `False`
//! with the reason it does not (a policy missing, not active, or not in protect mode).
//!
//! Harvester's Setting has no status subresource: the condition is written with a merge patch of
//! the object, conditional on the resourceVersion read, and only when it changes, so that the
//! job's own write does not make it write again. The other writers' conditions are kept.

use hook_sidecar_policy::cut;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::resources::Setting;
use crate::{Error, Result};

/// Harvester's `SettingConfigured`.
pub const CONDITION_TYPE: &str = "configured";
/// Whether the job keeps the `Sidecar` feature gate on (`feature_gate`).
pub const GATE_CONDITION_TYPE: &str = "sidecarFeatureGate";
const MAX_MESSAGE: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Condition {
    /// A `configured` condition.
    pub fn new(ok: bool, reason: &str, message: &str) -> Self {
        Self::of_type(CONDITION_TYPE, ok, reason, message)
    }

    pub fn of_type(type_: &'static str, ok: bool, reason: &str, message: &str) -> Self {
        Self {
            type_,
            ok,
            reason: reason.to_owned(),
            message: cut(message, MAX_MESSAGE).into_owned(),
        }
    }

    fn status(&self) -> &'static str {
        if self.ok { "True" } else { "False" }
    }

    /// `conditions` with this one in place of the job's previous one, or `None` when they
    /// already say the same. `lastTransitionTime` moves only when the status does.
    pub fn merged_into(&self, conditions: &[Value], now: &Time) -> Option<Vec<Value>> {
        let now = serde_json::to_value(now).unwrap_or(Value::Null);
        let previous = conditions
            .iter()
            .position(|condition| condition["type"] == self.type_);
        let mut transition = now.clone();
        if let Some(index) = previous {
            let old = &conditions[index];
            if old["status"] == self.status()
                && old["reason"] == self.reason.as_str()
                && old["message"] == self.message.as_str()
            {
                return None;
            }
            if old["status"] == self.status() {
                transition = old["lastTransitionTime"].clone();
            }
        }
        let condition = json!({
            "type": self.type_,
            "status": self.status(),
            "reason": self.reason,
            "message": self.message,
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
        });
        let mut merged = conditions.to_vec();
        match previous {
            Some(index) => merged[index] = condition,
            None => merged.push(condition),
        }
        Some(merged)
    }
}

/// What [`report`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// Written: the Setting's new resourceVersion.
    Written(String),
    /// The Setting says it already.
    Unchanged,
    /// The Setting changed since it was read (another writer, or the watch is behind): the next
    /// reconciliation writes it, whatever brings it.
    Conflict,
}

/// Writes `condition` on the Setting when it differs from what the Setting says.
pub async fn report(
    api: &Api<Setting>,
    setting: &Setting,
    condition: &Condition,
    field_manager: &str,
) -> Result<Report> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let Some(conditions) = condition.merged_into(setting.conditions(), &now) else {
        return Ok(Report::Unchanged);
    };
    let name = setting.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({
        "metadata": { "resourceVersion": setting.metadata.resource_version },
        "status": { "conditions": conditions },
    });
    let params = PatchParams {
        field_manager: Some(field_manager.to_owned()),
        ..PatchParams::default()
    };
    match api.patch(name, &params, &Patch::Merge(&patch)).await {
        Ok(written) => Ok(written
            .metadata
            .resource_version
            .map_or(Report::Conflict, Report::Written)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Report::Conflict),
        Err(error) => Err(error.into()),
    }
}

/// Writes `condition` on the Setting `name`, read afresh: for a writer that does not watch the
/// Setting (the feature-gate task). A conflict (another writer, the sync loop's `configured`
/// condition) is retried with the Setting read again. Returns false when the Setting does not
/// exist (nothing to write on; the caller tries again at the next change).
pub async fn report_fresh(
    api: &Api<Setting>,
    name: &str,
    condition: &Condition,
    field_manager: &str,
) -> Result<bool> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let Some(setting) = api.get_opt(name).await? else {
            return Ok(false);
        };
        match report(api, &setting, condition, field_manager).await {
            Ok(Report::Written(_) | Report::Unchanged) => return Ok(true),
            Ok(Report::Conflict) => continue,
            // Deleted between the read and the write.
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 404 => return Ok(false),
            Err(error) => return Err(error),
        }
    }
    // Five conflicts in a row: the Setting is being written as fast as it is read; the next
    // change brings another attempt.
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid"))
    }

    #[test]
    fn added_then_kept_then_changed() {
        let harvesters = json!({ "type": "other", "status": "True" });
        let applied = Condition::new(true, "Applied", "3 entries");
        let first = applied
            .merged_into(std::slice::from_ref(&harvesters), &at(100))
            .expect("added");
        assert_eq!(first[0], harvesters, "other conditions kept");
        assert_eq!(first[1]["type"], "configured");
        assert_eq!(first[1]["status"], "True");
        assert_eq!(first[1]["lastTransitionTime"], "1970-01-01T00:01:40Z");
        assert_eq!(
            applied.merged_into(&first, &at(200)),
            None,
            "no write when nothing changed"
        );

        let more = Condition::new(true, "Applied", "4 entries");
        let second = more.merged_into(&first, &at(200)).expect("message changed");
        assert_eq!(second.len(), 2);
        assert_eq!(second[1]["lastUpdateTime"], "1970-01-01T00:03:20Z");
        assert_eq!(
            second[1]["lastTransitionTime"], "1970-01-01T00:01:40Z",
            "same status"
        );

        let refused = Condition::new(false, "InvalidSidecarList", "allowedImages[1] \"Bad\"");
        let third = refused
            .merged_into(&second, &at(300))
            .expect("status changed");
        assert_eq!(third[1]["status"], "False");
        assert_eq!(third[1]["reason"], "InvalidSidecarList");
        assert_eq!(third[1]["lastTransitionTime"], "1970-01-01T00:05:00Z");
    }

    #[test]
    fn each_type_replaces_only_its_own_condition() {
        let configured = Condition::new(true, "Applied", "3 entries");
        let conditions = configured.merged_into(&[], &at(100)).expect("added");
        let gate = Condition::of_type(GATE_CONDITION_TYPE, false, "PolicyNotInProtectMode", "m");
        let both = gate.merged_into(&conditions, &at(200)).expect("added");
        assert_eq!(both.len(), 2);
        assert_eq!(both[0], conditions[0], "the configured condition is kept");
        assert_eq!(both[1]["type"], GATE_CONDITION_TYPE);
        assert_eq!(both[1]["status"], "False");
        assert_eq!(gate.merged_into(&both, &at(300)), None);
        assert_eq!(configured.merged_into(&both, &at(300)), None);
    }

    #[test]
    fn long_messages_are_cut() {
        let condition = Condition::new(false, "InvalidSidecarList", &"x".repeat(5000));
        assert!(condition.message.len() <= MAX_MESSAGE);
    }
}
