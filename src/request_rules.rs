//! The rules one request is judged by: the policy's, built from the settings that came with the
//! request, and in context-aware mode the entries of a Harvester Setting, read for this request.
//!
//! Policy-server gives every request a fresh instance and the settings with it, so the rules live
//! as long as the request: nothing is kept for the next one, and the Setting (which may change)
//! is read again. Its `default` and `value` become a list with [`crate::harvester_setting`], the
//! code the sync job uses, and each entry is parsed as an `allowedImages` entry.

use crate::allowlist::AllowedImage;
use crate::harvester_setting::{SETTING_API_VERSION, SettingObject, setting_entries};
use crate::profiles::Matching;
use crate::reference::ImageReference;
use crate::settings::{HarvesterSettingRef, PolicyRules};

/// The rules of one request.
#[derive(Debug)]
pub struct RequestRules<'s> {
    pub policy: PolicyRules<'s>,
    /// The Harvester Setting whose entries join `allowedImages`, and those entries.
    setting: Option<(&'s str, Vec<AllowedImage<'s>>)>,
    /// The request's pattern matching: its bounds, and the annotations judged so far.
    pub matching: Matching,
}

/// What reading the Setting did to a request's rules.
#[derive(Debug, Default)]
pub struct SettingOutcome {
    /// A missing Setting, entries that allow nothing.
    pub warnings: Vec<String>,
    /// Why the Setting could not be read: every sidecar of the request is rejected with it.
    pub failure: Option<String>,
}

/// The Setting that the settings name (`harvesterSetting`), and what looking it up gave.
pub type SettingLookup<'s> = (
    &'s HarvesterSettingRef,
    &'s Result<Option<SettingObject>, String>,
);

impl<'s> RequestRules<'s> {
    /// The policy's rules, with the entries of the Setting that was looked up, if any.
    pub fn new(
        policy: PolicyRules<'s>,
        lookup: Option<SettingLookup<'s>>,
    ) -> (Self, SettingOutcome) {
        let matching = Matching::new(policy.profile_value_max_bytes);
        let Some((reference, answer)) = lookup else {
            let rules = Self {
                policy,
                setting: None,
                matching,
            };
            return (rules, SettingOutcome::default());
        };
        let (entries, outcome) = apply_setting(reference, answer);
        let rules = Self {
            policy,
            // Named in rejections whatever the lookup gave.
            setting: Some((reference.name.as_str(), entries)),
            matching,
        };
        (rules, outcome)
    }

    /// Whether an `allowedImages` entry, or an entry of the Setting, allows the image; or,
    /// failing closed, the first invalid `allowedImages` entry met on the way.
    pub fn allows(&self, image: &ImageReference) -> Result<bool, String> {
        if self.policy.allowed_images.find(image)?.is_some() {
            return Ok(true);
        }
        Ok(self
            .setting
            .iter()
            .flat_map(|(_, entries)| entries)
            .any(|entry| entry.allows(image)))
    }

    /// The Setting named in rejections, in context-aware mode.
    pub fn setting_name(&self) -> Option<&str> {
        self.setting.as_ref().map(|(name, _)| *name)
    }
}

/// The entries of the Setting that was looked up. A missing Setting adds none; a failed lookup
/// is a failure (the policy cannot tell what is allowed); invalid entries allow nothing and are
/// named in warnings.
fn apply_setting<'s>(
    reference: &'s HarvesterSettingRef,
    answer: &'s Result<Option<SettingObject>, String>,
) -> (Vec<AllowedImage<'s>>, SettingOutcome) {
    let name = reference.name.as_str();
    match answer {
        Ok(Some(setting)) => {
            let entries = setting_allow_list(name, setting, reference);
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
    }
}

/// What a Setting adds to the allow-list, and a warning for each entry that allows nothing.
#[derive(Debug, Default)]
struct SettingEntries<'s> {
    allowed: Vec<AllowedImage<'s>>,
    warnings: Vec<String>,
}

/// Parses the Setting's entries under the reference's list mode as `allowedImages` entries. An
/// invalid entry allows nothing and is named, with its field, in a warning; the valid ones still
/// apply.
fn setting_allow_list<'s>(
    name: &str,
    setting: &'s SettingObject,
    reference: &HarvesterSettingRef,
) -> SettingEntries<'s> {
    let default = setting.default.as_deref();
    let mut entries = SettingEntries::default();
    for entry in setting_entries(default, setting.value.as_deref(), reference.list_mode) {
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
    use crate::harvester_setting::ListMode;
    use rstest::rstest;

    fn setting(default: Option<&str>, value: Option<&str>) -> SettingObject {
        SettingObject {
            default: default.map(str::to_owned),
            value: value.map(str::to_owned),
        }
    }

    fn reference(name: &str, list_mode: ListMode) -> HarvesterSettingRef {
        HarvesterSettingRef {
            name: name.to_owned(),
            list_mode,
        }
    }

    #[rstest]
    #[case::union(ListMode::Union, &["docker.io/a/b:1", "ghcr.io/org/*"])]
    #[case::effective(ListMode::Effective, &["ghcr.io/org/*"])]
    fn valid_entries_follow_the_list_mode(#[case] mode: ListMode, #[case] expected: &[&str]) {
        let object = setting(Some("a/b:1"), Some(" ghcr.io/org/* "));
        let reference = reference("whitelisted-sidecars", mode);
        let entries = setting_allow_list("whitelisted-sidecars", &object, &reference);
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
        let reference = reference("my-list", ListMode::Union);
        let entries = setting_allow_list("my-list", &object, &reference);
        assert_eq!(entries.warnings.len(), 1, "{:?}", entries.warnings);
        let warning = &entries.warnings[0];
        assert!(
            warning.starts_with("Setting \"my-list\" (harvesterhci.io/v1beta1), "),
            "{warning}"
        );
        assert!(warning.contains(fragment), "{fragment:?} not in {warning}");
        assert_eq!(entries.allowed.len(), 1, "the valid entry still applies");
    }
}
