//! What to write into the ClusterAdmissionPolicy, decided without touching the API.

use hook_sidecar_policy::parse_and_validate;
use serde_json::{Map, Value};

/// The key of the policy's settings that the job owns.
pub const ALLOWED_IMAGES: &str = "allowedImages";

/// The decision for one desired list against the policy's current `spec.settings`.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// `allowedImages` already holds the list: no write.
    Unchanged,
    /// Apply the list: the settings that result pass the policy's own validation.
    Apply,
    /// The list is not written; the policy keeps its current one.
    Refused(Refusal),
}

/// Why a list is not written, in words that name the culprit.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// The policy's own message (it names the offending entry or key), or the size.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// An entry of the list is refused by the policy's validation.
    InvalidList,
    /// The settings with the list would be larger than `--max-settings-bytes`.
    TooLarge,
    /// The list is valid, but the policy's other settings are not: the policy-server would
    /// refuse the settings whatever the list.
    InvalidPolicySettings,
    /// The PolicyServer's policies ConfigMap, with the list in every kept policy bound to it,
    /// would be over Kubernetes' 1 MiB (`policy_server_config`).
    PolicyServerConfigTooLarge,
    /// The policies bound to the PolicyServer cannot be read (the job's RBAC), so the size of its
    /// ConfigMap cannot be bounded: nothing is written.
    PolicyServerConfigUnknown,
}

impl RefusalKind {
    /// The `reason` of the Event and of the Setting's condition (CamelCase, as Kubernetes wants).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidList => "InvalidSidecarList",
            Self::TooLarge => "SidecarListTooLarge",
            Self::InvalidPolicySettings => "InvalidPolicySettings",
            Self::PolicyServerConfigTooLarge => "PolicyServerConfigTooLarge",
            Self::PolicyServerConfigUnknown => "PolicyServerConfigUnknown",
        }
    }

    /// Whether the refusal depends on other objects than the Setting and the policy (the other
    /// policies of the PolicyServer, the job's RBAC): it is looked at again after a while.
    pub fn depends_on_other_policies(self) -> bool {
        matches!(
            self,
            Self::PolicyServerConfigTooLarge | Self::PolicyServerConfigUnknown
        )
    }
}

/// The policy's `spec.settings` with `allowedImages` set to `desired`, or `None` when the current
/// settings are not an object (the plan refuses them).
pub fn settings_with(current_settings: &Value, desired: &[String]) -> Option<Value> {
    let mut settings = match current_settings {
        Value::Null => Map::new(),
        Value::Object(settings) => settings.clone(),
        _ => return None,
    };
    settings.insert(ALLOWED_IMAGES.to_owned(), Value::from(desired.to_vec()));
    Some(Value::Object(settings))
}

/// Compares `desired` with the policy's current settings and validates the settings that
/// writing it would produce, with the code the policy's `validate_settings` runs. The other keys
/// take part in the validation (`sidecarShimImage`, `allowPVC`, ...), since the policy-server
/// would refuse the settings as a whole; when they are what is wrong, the refusal says so rather
/// than blame a valid list. Settings over `max_bytes` of JSON are refused before anything else:
/// the API server would accept the Setting but etcd would refuse the policy.
pub fn plan(current_settings: &Value, desired: &[String], max_bytes: usize) -> Plan {
    let mut settings = match current_settings {
        Value::Null => Map::new(),
        Value::Object(settings) => settings.clone(),
        other => {
            return Plan::Refused(Refusal {
                kind: RefusalKind::InvalidPolicySettings,
                reason: format!("spec.settings is {}, not an object", json_type_name(other)),
            });
        }
    };
    let desired_json = Value::from(desired.to_vec());
    if settings.get(ALLOWED_IMAGES) == Some(&desired_json) {
        return Plan::Unchanged;
    }
    settings.insert(ALLOWED_IMAGES.to_owned(), desired_json);
    let settings = Value::Object(settings);
    let size = json_size(&settings);
    if size > max_bytes {
        return Plan::Refused(Refusal {
            kind: RefusalKind::TooLarge,
            reason: format!(
                "spec.settings would be {size} bytes of JSON with these {} entries, over the \
                 bound of {max_bytes} bytes (--max-settings-bytes)",
                desired.len()
            ),
        });
    }
    match parse_and_validate(&settings) {
        Ok(_) => Plan::Apply,
        Err(reason) => Plan::Refused(blame(settings, reason)),
    }
}

/// Decides whether the list or the policy's other settings made the validation fail: the other
/// settings are validated again with an empty list.
fn blame(mut settings: Value, reason: String) -> Refusal {
    settings[ALLOWED_IMAGES] = Value::Array(Vec::new());
    match parse_and_validate(&settings) {
        Ok(_) => Refusal {
            kind: RefusalKind::InvalidList,
            reason,
        },
        Err(other) => Refusal {
            kind: RefusalKind::InvalidPolicySettings,
            reason: other,
        },
    }
}

/// The length of `value` serialized as compact JSON, without keeping the bytes.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing a Value into a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[rstest]
    #[case::no_settings_yet(json!(null), &["a/b:1"], Plan::Apply)]
    #[case::empty_settings(json!({}), &["a/b:1"], Plan::Apply)]
    #[case::same_list(json!({"allowedImages": ["a/b:1", "c/*"]}), &["a/b:1", "c/*"], Plan::Unchanged)]
    #[case::same_empty_list(json!({"allowedImages": []}), &[], Plan::Unchanged)]
    #[case::order_matters(json!({"allowedImages": ["c/*", "a/b:1"]}), &["a/b:1", "c/*"], Plan::Apply)]
    #[case::emptied(json!({"allowedImages": ["a/b:1"]}), &[], Plan::Apply)]
    #[case::other_keys_valid(json!({"allowPVC": true, "allowSharedComputePath": true}), &["a/b:1"], Plan::Apply)]
    fn plans(#[case] current: Value, #[case] desired: &[&str], #[case] expected: Plan) {
        assert_eq!(plan(&current, &list(desired), MAX), expected);
    }

    const MAX: usize = crate::config::DEFAULT_MAX_SETTINGS_BYTES;

    #[rstest]
    #[case::invalid_entry(json!({}), &["a/b:1", "registry.example.com/*/x"], RefusalKind::InvalidList, "allowedImages[1] \"registry.example.com/*/x\"")]
    #[case::uppercase_repository(json!({}), &["Registry/Image:1"], RefusalKind::InvalidList, "allowedImages[0] \"Registry/Image:1\"")]
    // Valid on its own, refused with the other keys: the policy would refuse the whole settings,
    // and the refusal says that the other keys are at fault.
    #[case::other_keys_invalid(json!({"allowSharedComputePath": true}), &["a/b:1"], RefusalKind::InvalidPolicySettings, "allowSharedComputePath: true needs allowPVC: true")]
    #[case::unknown_key(json!({"allowComand": true}), &["a/b:1"], RefusalKind::InvalidPolicySettings, "allowComand")]
    // Both wrong: the other settings are named (fixing the list alone would not help).
    #[case::both_invalid(json!({"allowComand": true}), &["Bad/Image"], RefusalKind::InvalidPolicySettings, "allowComand")]
    #[case::not_an_object(json!("allowedImages: [a]"), &["a/b:1"], RefusalKind::InvalidPolicySettings, "spec.settings is a string, not an object")]
    fn refusals(
        #[case] current: Value,
        #[case] desired: &[&str],
        #[case] kind: RefusalKind,
        #[case] named: &str,
    ) {
        match plan(&current, &list(desired), MAX) {
            Plan::Refused(refusal) => {
                assert_eq!(refusal.kind, kind, "{refusal:?}");
                assert!(
                    refusal.reason.contains(named),
                    "{refusal:?} does not name {named:?}"
                );
            }
            other => panic!("expected a refusal naming {named:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_size_bound_counts_the_whole_settings() {
        let written = r#"{"allowPVC":true,"allowedImages":["a/b:1"]}"#;
        let current = json!({ "allowPVC": true });
        assert_eq!(
            json_size(&serde_json::from_str(written).expect("JSON")),
            written.len()
        );
        assert_eq!(plan(&current, &list(&["a/b:1"]), 43), Plan::Apply);
        match plan(&current, &list(&["a/b:1"]), 42) {
            Plan::Refused(refusal) => {
                assert_eq!(refusal.kind, RefusalKind::TooLarge);
                assert!(refusal.reason.contains("43 bytes"), "{refusal:?}");
                assert!(refusal.reason.contains("bound of 42 bytes"), "{refusal:?}");
            }
            other => panic!("{other:?}"),
        }
        // The same list already there is not a write, whatever its size.
        let held = json!({ "allowedImages": ["a/b:1"] });
        assert_eq!(plan(&held, &list(&["a/b:1"]), 1), Plan::Unchanged);
    }
}
