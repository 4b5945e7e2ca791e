//! What to write into the ClusterAdmissionPolicy, decided without touching the API.

use hook_sidecar_policy::settings::parse_and_validate;
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
    /// The settings that would result are refused by the policy; the reason is its message.
    Refused(String),
}

/// Compares `desired` with the policy's current settings and validates the settings that
/// writing it would produce, with the code the policy's `validate_settings` runs. The other keys
/// take part in the validation (`sidecarShimImage`, `allowPVC`, ...), since the policy-server
/// would refuse the settings as a whole.
pub fn plan(current_settings: &Value, desired: &[String]) -> Plan {
    let mut settings = match current_settings {
        Value::Null => Map::new(),
        Value::Object(settings) => settings.clone(),
        other => {
            return Plan::Refused(format!(
                "spec.settings is {}, not an object",
                json_type_name(other)
            ))
        }
    };
    let desired_json = Value::from(desired.to_vec());
    if settings.get(ALLOWED_IMAGES) == Some(&desired_json) {
        return Plan::Unchanged;
    }
    settings.insert(ALLOWED_IMAGES.to_owned(), desired_json);
    match parse_and_validate(&Value::Object(settings)) {
        Ok(_) => Plan::Apply,
        Err(reason) => Plan::Refused(reason),
    }
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
        assert_eq!(plan(&current, &list(desired)), expected);
    }

    #[rstest]
    #[case::invalid_entry(json!({}), &["a/b:1", "registry.example.com/*/x"], "allowedImages[1] \"registry.example.com/*/x\"")]
    #[case::uppercase_repository(json!({}), &["Registry/Image:1"], "allowedImages[0] \"Registry/Image:1\"")]
    // Valid on its own, refused with the other keys: the policy would refuse the whole settings.
    #[case::other_keys_invalid(json!({"allowSharedComputePath": true}), &["a/b:1"], "allowSharedComputePath: true needs allowPVC: true")]
    #[case::unknown_key(json!({"allowComand": true}), &["a/b:1"], "allowComand")]
    #[case::not_an_object(json!("allowedImages: [a]"), &["a/b:1"], "spec.settings is a string, not an object")]
    fn refusals(#[case] current: Value, #[case] desired: &[&str], #[case] named: &str) {
        match plan(&current, &list(desired)) {
            Plan::Refused(reason) => {
                assert!(reason.contains(named), "{reason:?} does not name {named:?}")
            }
            other => panic!("expected a refusal naming {named:?}, got {other:?}"),
        }
    }
}
