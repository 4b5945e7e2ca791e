//! The job's state on the Setting, the way Harvester's own controllers report on their settings:
//! a wrangler condition of type `configured` in `status.conditions` (`True` when every policy
//! holds the list; `False` with the policy's reason when one does not).
//!
//! Harvester's Setting has no status subresource: the condition is written with a merge patch of
//! the object, conditional on the resourceVersion read, and only when it changes, so that the
//! job's own write does not make it write again. The other writers' conditions are kept.

use hook_sidecar_policy::cut;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::Result;
use crate::resources::Setting;

/// Harvester's `SettingConfigured`.
pub const CONDITION_TYPE: &str = "configured";
const MAX_MESSAGE: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn new(ok: bool, reason: &str, message: &str) -> Self {
        Self {
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
            .position(|condition| condition["type"] == CONDITION_TYPE);
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
            "type": CONDITION_TYPE,
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

/// Writes `condition` on the Setting when it differs from what the Setting says, and returns the
/// Setting's new resourceVersion when it did. A conflict (the Setting changed since it was read)
/// is left to the reconciliation its watch event brings.
pub async fn report(
    api: &Api<Setting>,
    setting: &Setting,
    condition: &Condition,
    field_manager: &str,
) -> Result<Option<String>> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let Some(conditions) = condition.merged_into(setting.conditions(), &now) else {
        return Ok(None);
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
        Ok(written) => Ok(written.metadata.resource_version),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(error) => Err(error.into()),
    }
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
    fn long_messages_are_cut() {
        let condition = Condition::new(false, "InvalidSidecarList", &"x".repeat(5000));
        assert!(condition.message.len() <= MAX_MESSAGE);
    }
}
