//! Harvester's `whitelisted-sidecars` Setting: comma-separated image entries in its top-level
//! `default` and `value` fields.
//!
//! One implementation for both readers: the sync job mirrors the entries into `allowedImages`,
//! and the policy's context-aware mode reads them at admission ([`crate::request_rules`]). The entries are not interpreted
//! here; whether each is a valid allow-list entry is decided by [`crate::allowlist`].

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

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

/// How `default` and `value` combine into one list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListMode {
    /// The proposal: `value` adds sidecars to `default`; the list is the union of both.
    #[default]
    Union,
    /// Harvester's own settings (`Setting.EffectiveValue()`): `value` when it is not the empty
    /// string, else `default`.
    Effective,
}

impl ListMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Union => "union",
            Self::Effective => "effective",
        }
    }
}

impl std::fmt::Display for ListMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ListMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "union" => Ok(Self::Union),
            "effective" => Ok(Self::Effective),
            other => Err(format!(
                "list mode {other:?}: must be \"union\" or \"effective\""
            )),
        }
    }
}

/// The entries of a Setting whose `default` and `value` are given, under `mode`: items trimmed,
/// empty items dropped, duplicates removed, in the order they first appear (`default` first).
///
/// Linear in the size of the Setting: a set of the entries seen sits beside the ordered list.
pub fn setting_entries<'a>(
    default: Option<&'a str>,
    value: Option<&'a str>,
    mode: ListMode,
) -> Vec<&'a str> {
    let lists = match mode {
        ListMode::Union => [default, value],
        ListMode::Effective => match value {
            Some(value) if !value.is_empty() => [Some(value), None],
            _ => [default, None],
        },
    };
    unique_items(lists.into_iter().flatten())
}

/// The trimmed, non-empty, first-seen items of comma-separated lists.
pub fn unique_items<'a>(lists: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    lists
        .into_iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty() && seen.insert(*item))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

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
        let expected = SettingObject {
            default: Some("a/b:1".to_owned()),
            value: Some("c/d:2".to_owned()),
        };
        assert_eq!(decoded, expected);
        let bare: SettingObject =
            serde_json::from_value(serde_json::json!({"metadata": {}})).expect("a Setting");
        assert_eq!(bare, SettingObject::default());
    }

    #[rstest]
    #[case::both_absent(None, None, &[], &[])]
    #[case::both_empty(Some(""), Some(""), &[], &[])]
    #[case::only_default(Some("a/b:1"), None, &["a/b:1"], &["a/b:1"])]
    #[case::only_value(None, Some("a/b:1"), &["a/b:1"], &["a/b:1"])]
    #[case::default_first(Some("a/b:1"), Some("c/d:2"), &["a/b:1", "c/d:2"], &["c/d:2"])]
    #[case::trimmed(Some("  a/b:1 ,\tc/d:2\n"), None, &["a/b:1", "c/d:2"], &["a/b:1", "c/d:2"])]
    #[case::empty_items_dropped(Some(",a/b:1,, ,"), Some(","), &["a/b:1"], &[])]
    #[case::duplicates_across_fields(Some("a/b:1,c/d:2"), Some("c/d:2, a/b:1 ,e/f:3"), &["a/b:1", "c/d:2", "e/f:3"], &["c/d:2", "a/b:1", "e/f:3"])]
    #[case::duplicates_within_a_field(None, Some("e/f:3,e/f:3"), &["e/f:3"], &["e/f:3"])]
    // Harvester's EffectiveValue compares with "": a value of spaces is a value (with no items).
    #[case::blank_value_is_a_value(Some("a/b:1"), Some(" "), &["a/b:1"], &[])]
    // Spellings are compared as written: the policy normalizes, the Setting is read verbatim.
    #[case::different_spellings_kept(Some("nginx"), Some("docker.io/library/nginx"), &["nginx", "docker.io/library/nginx"], &["docker.io/library/nginx"])]
    fn entries(
        #[case] default: Option<&str>,
        #[case] value: Option<&str>,
        #[case] union: &[&str],
        #[case] effective: &[&str],
    ) {
        assert_eq!(setting_entries(default, value, ListMode::Union), union);
        assert_eq!(
            setting_entries(default, value, ListMode::Effective),
            effective
        );
    }

    #[rstest]
    #[case("union", Ok(ListMode::Union))]
    #[case("effective", Ok(ListMode::Effective))]
    #[case("Union", Err(()))]
    #[case("", Err(()))]
    fn list_mode_from_str(#[case] text: &str, #[case] expected: Result<ListMode, ()>) {
        assert_eq!(text.parse::<ListMode>().map_err(|_| ()), expected);
    }

    #[test]
    fn list_mode_serde_is_camel_case() {
        assert_eq!(
            serde_json::to_string(&ListMode::Effective).expect("serializes"),
            "\"effective\""
        );
        assert_eq!(
            serde_json::from_str::<ListMode>("\"union\"").expect("decodes"),
            ListMode::Union
        );
    }

    #[test]
    fn a_large_setting_is_linear() {
        // 200 000 distinct entries and as many duplicates: quadratic dedup would take minutes.
        let value: String = (0..200_000).map(|i| format!("r.io/i{i}:1,")).collect();
        let entries = setting_entries(Some(&value), Some(&value), ListMode::Union);
        assert_eq!(entries.len(), 200_000);
        assert_eq!(entries[199_999], "r.io/i199999:1");
    }
}
