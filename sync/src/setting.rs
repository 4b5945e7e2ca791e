//! Harvester's `whitelisted-sidecars` format: comma-separated image entries in `default` and
//! `value`, and the allowed list is their union (the proposal, "Whitelisted Sidecars Setting").

use crate::resources::Setting;

/// The union of the comma-separated `default` and `value` of the Setting: items trimmed, empty
/// items dropped, duplicates removed, in the order they first appear (`default` first).
///
/// The entries are not interpreted here: whether they are valid is decided by the policy's own
/// settings validation, which the caller runs on the result.
pub fn allowed_images(setting: &Setting) -> Vec<String> {
    union_of_lists([setting.default.as_deref(), setting.value.as_deref()])
}

/// The union of comma-separated lists, as [`allowed_images`] describes it.
pub fn union_of_lists<'a>(lists: impl IntoIterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut union: Vec<String> = Vec::new();
    for item in lists.into_iter().flatten().flat_map(|list| list.split(',')) {
        let item = item.trim();
        if !item.is_empty() && !union.iter().any(|seen| seen == item) {
            union.push(item.to_owned());
        }
    }
    union
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::both_absent(None, None, &[])]
    #[case::both_empty(Some(""), Some(""), &[])]
    #[case::only_default(Some("a/b:1"), None, &["a/b:1"])]
    #[case::only_value(None, Some("a/b:1"), &["a/b:1"])]
    #[case::default_first(Some("a/b:1"), Some("c/d:2"), &["a/b:1", "c/d:2"])]
    #[case::trimmed(Some("  a/b:1 ,\tc/d:2\n"), None, &["a/b:1", "c/d:2"])]
    #[case::empty_items_dropped(Some(",a/b:1,, ,"), Some(","), &["a/b:1"])]
    #[case::duplicates_across_fields(Some("a/b:1,c/d:2"), Some("c/d:2, a/b:1 ,e/f:3"), &["a/b:1", "c/d:2", "e/f:3"])]
    #[case::duplicates_within_a_field(None, Some("e/f:3,e/f:3"), &["e/f:3"])]
    // Spellings are compared as written: the policy normalizes, the Setting is mirrored verbatim.
    #[case::different_spellings_kept(Some("nginx"), Some("docker.io/library/nginx"), &["nginx", "docker.io/library/nginx"])]
    fn union(
        #[case] default: Option<&str>,
        #[case] value: Option<&str>,
        #[case] expected: &[&str],
    ) {
        let setting = Setting {
            default: default.map(str::to_owned),
            value: value.map(str::to_owned),
            ..Setting::default()
        };
        assert_eq!(allowed_images(&setting), expected);
    }
}
