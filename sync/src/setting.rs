//! Harvester's `whitelisted-sidecars` Setting, read with the policy's own implementation
//! ([`hook_sidecar_policy::setting_entries`]), so that the job and the policy's context-aware
//! mode cannot drift.

use hook_sidecar_policy::{ListMode, setting_entries};

use crate::resources::Setting;

/// The entries of the Setting under `mode` (see [`setting_entries`]), owned.
pub fn allowed_images(setting: &Setting, mode: ListMode) -> Vec<String> {
    setting_entries(setting.default.as_deref(), setting.value.as_deref(), mode)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::union(ListMode::Union, &["a/b:1", "c/d:2"])]
    #[case::effective(ListMode::Effective, &["c/d:2", "a/b:1"])]
    fn reads_both_fields(#[case] mode: ListMode, #[case] expected: &[&str]) {
        let setting = Setting {
            default: Some("a/b:1".to_owned()),
            value: Some(" c/d:2, a/b:1".to_owned()),
            ..Setting::default()
        };
        assert_eq!(allowed_images(&setting, mode), expected);
    }
}
