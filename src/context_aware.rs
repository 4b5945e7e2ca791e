//! Context-aware mode: the entries of a Harvester Setting join `allowedImages` at admission.
//!
//! The Setting is read through policy-server's `kubernetes/get_resource` host capability (answered
//! from policy-server's cache), only for requests that carry hook sidecars, once per request. Its
//! `default` and `value` become a list with [`crate::harvester_setting`], the code the sync job
//! uses, and each entry is parsed as an `allowedImages` entry.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::allowlist::AllowedImage;
use crate::harvester_setting::{ListMode, setting_entries};
use crate::settings::{self, HarvesterSettingRef, Settings, SidecarRules};

/// The Setting's API (`policy-metadata.yml` declares it in `contextAwareResources`).
pub const SETTING_API_VERSION: &str = "harvesterhci.io/v1beta1";
pub const SETTING_KIND: &str = "Setting";

/// The fields of a Setting the policy reads: Harvester keeps them at the top level, beside
/// `metadata`, not under a `spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SettingObject {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// Where the Setting comes from. `Ok(None)`: there is no Setting of that name.
pub trait SettingSource {
    fn get_setting(&self, name: &str) -> Result<Option<SettingObject>, String>;
}

/// The Kubernetes host capability of policy-server (or of `kwctl run --allow-context-aware`).
pub struct PolicyServer;

#[cfg(target_arch = "wasm32")]
impl SettingSource for PolicyServer {
    fn get_setting(&self, name: &str) -> Result<Option<SettingObject>, String> {
        use kubewarden_policy_sdk::host_capabilities::kubernetes::{
            GetResourceRequest, get_resource,
        };
        let request = GetResourceRequest {
            api_version: SETTING_API_VERSION.to_owned(),
            kind: SETTING_KIND.to_owned(),
            name: name.to_owned(),
            namespace: None,
            // policy-server's cache (5 s) is what keeps the API server out of the admission path.
            disable_cache: false,
            field_masks: None,
        };
        match get_resource::<SettingObject>(&request) {
            Ok(setting) => Ok(Some(setting)),
            Err(e) => {
                let message = e.to_string();
                if is_not_found(&message, name) {
                    Ok(None)
                } else {
                    Err(message)
                }
            }
        }
    }
}

/// Natively (unit tests, the sync job, the fuzzers) there is no host to ask: fail closed.
#[cfg(not(target_arch = "wasm32"))]
impl SettingSource for PolicyServer {
    fn get_setting(&self, _name: &str) -> Result<Option<SettingObject>, String> {
        Err("the kubernetes host capability exists only in the wasm module".to_owned())
    }
}

/// policy-server answers a missing object with an error, not with an empty answer, and the waPC
/// contract carries only text: policy-evaluator's message (`get_resource` in its Kubernetes
/// client) is the one way to tell "no such Setting" from a failed lookup, which must fail closed.
pub fn is_not_found(message: &str, name: &str) -> bool {
    message.contains(&format!(
        "Cannot find {SETTING_API_VERSION}/{SETTING_KIND} named '{name}'"
    ))
}

/// What reading the Setting did to a request's rules.
#[derive(Debug, Default)]
pub struct SettingOutcome {
    /// A missing Setting, entries that allow nothing.
    pub warnings: Vec<String>,
    /// Why the Setting could not be read: every sidecar of the request is rejected with it.
    pub failure: Option<String>,
}

/// Calls `judge` with the rules of one request and what reading the Setting gave: the rules of
/// the settings and, in context-aware mode, the entries of the Setting, read now, once. Call it only for a request with sidecars, or with
/// `settings: None`. The error says why the settings are invalid.
pub fn with_request_rules<R>(
    settings: Option<&RawValue>,
    source: &dyn SettingSource,
    judge: impl FnOnce(&SidecarRules, SettingOutcome) -> R,
) -> Result<R, String> {
    let settings = match settings {
        Some(text) => settings::decode_slice(text.get().as_bytes())?,
        None => Settings::default(),
    };
    let policy = settings.request_rules()?;
    let lookup = (settings.harvester_setting.as_ref())
        .map(|reference| (reference, source.get_setting(&reference.name)));
    let mut rules = SidecarRules::new(&policy);
    let outcome = match &lookup {
        Some((reference, result)) => apply_setting(&mut rules, reference, result),
        None => SettingOutcome::default(),
    };
    Ok(judge(&rules, outcome))
}

/// Adds the entries of the Setting that was looked up to the allow-list. A missing Setting adds
/// none; a failed lookup is a failure (the policy cannot tell what is allowed); invalid entries
/// allow nothing and are named in warnings.
fn apply_setting<'s>(
    rules: &mut SidecarRules<'s, '_>,
    reference: &'s HarvesterSettingRef,
    lookup: &'s Result<Option<SettingObject>, String>,
) -> SettingOutcome {
    let name = reference.name.as_str();
    let (entries, outcome) = match lookup {
        Ok(Some(setting)) => {
            let entries = setting_allow_list(name, setting, reference.list_mode);
            let outcome = SettingOutcome {
                warnings: entries.warnings,
                failure: None,
            };
            (entries.allowed, outcome)
        }
        Ok(None) => {
            let outcome = SettingOutcome {
                warnings: vec![format!(
                    "Setting {name:?} ({SETTING_API_VERSION}) does not exist: it adds no entries"
                )],
                failure: None,
            };
            (Vec::new(), outcome)
        }
        Err(e) => {
            let outcome = SettingOutcome {
                warnings: Vec::new(),
                failure: Some(format!(
                    "cannot read Setting {name:?} ({SETTING_API_VERSION}), so the policy cannot \
                     tell which sidecars it allows: {e}"
                )),
            };
            (Vec::new(), outcome)
        }
    };
    // Named in rejections whatever the lookup gave.
    rules.setting = Some((name, entries));
    outcome
}

/// What a Setting adds to the allow-list, and a warning for each entry that allows nothing.
#[derive(Debug, Default)]
pub struct SettingEntries<'s> {
    pub allowed: Vec<AllowedImage<'s>>,
    pub warnings: Vec<String>,
}

/// Parses the Setting's entries under `mode` as `allowedImages` entries. An invalid entry allows
/// nothing and is named, with its field, in a warning; the valid ones still apply.
pub fn setting_allow_list<'s>(
    name: &str,
    setting: &'s SettingObject,
    mode: ListMode,
) -> SettingEntries<'s> {
    let default = setting.default.as_deref();
    let mut entries = SettingEntries::default();
    for entry in setting_entries(default, setting.value.as_deref(), mode) {
        match AllowedImage::parse(entry) {
            Ok(image) => entries.allowed.push(image),
            Err(e) => entries.warnings.push(format!(
                "Setting {name:?} ({SETTING_API_VERSION}), field {}: entry {entry:?} allows \
                 nothing: {e}",
                field_of(entry, default)
            )),
        }
    }
    entries
}

/// The field an entry was cut from: entries are slices of `default` or `value`, so the address
/// tells, even when the same text appears in both.
fn field_of(entry: &str, default: Option<&str>) -> &'static str {
    let in_default = default.is_some_and(|default| {
        default
            .as_bytes()
            .as_ptr_range()
            .contains(&entry.as_bytes().as_ptr())
    });
    if in_default { "default" } else { "value" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn setting(default: Option<&str>, value: Option<&str>) -> SettingObject {
        SettingObject {
            default: default.map(str::to_owned),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn reads_the_top_level_fields_of_a_setting() {
        let object = serde_json::json!({
            "apiVersion": "harvesterhci.io/v1beta1",
            "kind": "Setting",
            "metadata": {"name": "whitelisted-sidecars", "resourceVersion": "7"},
            "default": "a/b:1",
            "value": "c/d:2",
            "status": {}
        });
        let decoded: SettingObject = serde_json::from_value(object).expect("a Setting");
        assert_eq!(decoded, setting(Some("a/b:1"), Some("c/d:2")));
        let bare: SettingObject =
            serde_json::from_value(serde_json::json!({"metadata": {}})).expect("a Setting");
        assert_eq!(bare, SettingObject::default());
    }

    #[rstest]
    #[case::union(ListMode::Union, &["docker.io/a/b:1", "ghcr.io/org/*"])]
    #[case::effective(ListMode::Effective, &["ghcr.io/org/*"])]
    fn valid_entries_follow_the_list_mode(#[case] mode: ListMode, #[case] expected: &[&str]) {
        let object = setting(Some("a/b:1"), Some(" ghcr.io/org/* "));
        let entries = setting_allow_list("whitelisted-sidecars", &object, mode);
        let allowed: Vec<String> = entries.allowed.iter().map(ToString::to_string).collect();
        assert_eq!(allowed, expected);
        assert!(entries.warnings.is_empty(), "{:?}", entries.warnings);
    }

    #[rstest]
    #[case::in_default(Some("Bad/Name,a/b:1"), None, "field default: entry \"Bad/Name\"")]
    #[case::in_value(
        Some("a/b:1"),
        Some("*"),
        "field value: entry \"*\" allows nothing: a wildcard"
    )]
    #[case::same_text_in_both(Some("a/b:1"), Some("a/b:1,x y"), "field value: entry \"x y\"")]
    fn an_invalid_entry_allows_nothing_and_is_named(
        #[case] default: Option<&str>,
        #[case] value: Option<&str>,
        #[case] fragment: &str,
    ) {
        let object = setting(default, value);
        let entries = setting_allow_list("my-list", &object, ListMode::Union);
        assert_eq!(entries.warnings.len(), 1, "{:?}", entries.warnings);
        let warning = &entries.warnings[0];
        assert!(
            warning.starts_with("Setting \"my-list\" (harvesterhci.io/v1beta1), "),
            "{warning}"
        );
        assert!(warning.contains(fragment), "{fragment:?} not in {warning}");
        assert_eq!(entries.allowed.len(), 1, "the valid entry still applies");
    }

    #[rstest]
    // policy-evaluator's text, as policy-server and `kwctl run` return it to the guest.
    #[case(
        "error invoking host capability kubernetes.get_resource: Host error: Callback evaluation failure: Cannot find harvesterhci.io/v1beta1/Setting named 'whitelisted-sidecars' inside of namespace 'None'",
        true
    )]
    #[case(
        "Cannot find harvesterhci.io/v1beta1/Setting named 'other' inside of namespace 'None'",
        false
    )]
    // The CRD itself is missing: a failure, not a missing Setting.
    #[case(
        "Callback evaluation failure: Cannot find resource harvesterhci.io/v1beta1/Setting",
        false
    )]
    #[case(
        "Policy has not been granted access to Kubernetes harvesterhci.io/v1beta1/Setting resources. The violation has been reported.",
        false
    )]
    fn only_policy_servers_not_found_means_missing(#[case] message: &str, #[case] missing: bool) {
        assert_eq!(is_not_found(message, "whitelisted-sidecars"), missing);
    }

    #[test]
    fn natively_the_lookup_fails_closed() {
        assert!(PolicyServer.get_setting("whitelisted-sidecars").is_err());
    }
}
