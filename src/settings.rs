//! Policy settings and their validation.
//!
//! The sync job links this module natively and validates every list it would write with
//! [`parse_and_validate`], so it never pushes settings that `validate_settings` would refuse.

use kubewarden_policy_sdk::settings::Validatable;
use serde::{Deserialize, Serialize};

use crate::allowlist::AllowList;
use crate::harvester_setting::ListMode;
use crate::reference::ImageReference;

/// The settings, in the camelCase of Kubernetes APIs. Unknown keys are refused: a misspelt
/// `allowComand: false` must not silently leave a restriction at its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Images allowed to run as hook sidecars; empty rejects every sidecar.
    #[serde(default)]
    pub allowed_images: Vec<String>,
    /// The image KubeVirt runs for an entry without image (its sidecar-shim); unset rejects them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_shim_image: Option<String>,
    #[serde(default)]
    pub allow_command: bool,
    #[serde(default)]
    pub allow_config_map: bool,
    #[serde(default, rename = "allowPVC")]
    pub allow_pvc: bool,
    #[serde(default)]
    pub allow_shared_compute_path: bool,
    /// Context-aware mode: also allow the entries of this Harvester Setting, read at admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harvester_setting: Option<HarvesterSettingRef>,
}

/// Which Harvester Setting (`harvesterhci.io/v1beta1`, cluster-scoped) adds entries to
/// `allowedImages`, and how its `default` and `value` combine. The name is required: a form that
/// writes only `listMode` must not turn the mode on for a Setting nobody named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HarvesterSettingRef {
    pub name: String,
    #[serde(default)]
    pub list_mode: ListMode,
}

/// A Kubernetes object name (RFC 1123 subdomain): what the API server accepts for a Setting.
fn is_object_name(name: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.split('.').all(|label| {
            label.starts_with(alphanumeric)
                && label.ends_with(alphanumeric)
                && label.chars().all(|c| alphanumeric(c) || c == '-')
        })
}

/// The settings in the form the checks use.
#[derive(Debug, Clone)]
pub struct SidecarRules<'a> {
    pub allowed_images: AllowList<'a>,
    pub sidecar_shim_image: Option<ImageReference<'a>>,
    pub allow_command: bool,
    pub allow_config_map: bool,
    pub allow_pvc: bool,
    pub allow_shared_compute_path: bool,
    /// The Harvester Setting whose entries were added to `allowed_images` (context-aware mode).
    pub setting_name: Option<&'a str>,
}

impl Settings {
    /// Parses the settings into rules, naming every culprit when they are invalid.
    pub fn rules(&self) -> Result<SidecarRules<'_>, String> {
        let mut problems = Vec::new();
        let allowed_images = AllowList::parse(&self.allowed_images)
            .map_err(|e| problems.push(e.to_string()))
            .unwrap_or_default();
        let sidecar_shim_image = match self.sidecar_shim_image.as_deref() {
            None => None,
            Some(image) if image.contains('*') => {
                problems.push(format!(
                    "sidecarShimImage {image:?}: must name one image, without wildcard"
                ));
                None
            }
            Some(image) => ImageReference::parse_normalized(image)
                .map_err(|e| {
                    problems.push(format!(
                        "sidecarShimImage {image:?}: not a valid image reference: {e}"
                    ))
                })
                .ok(),
        };
        if let Some(setting) = &self.harvester_setting {
            if !is_object_name(&setting.name) {
                problems.push(format!(
                    "harvesterSetting.name {:?}: not a Kubernetes object name \
                     (lower-case letters, digits, '-' and '.', at most 253 characters)",
                    setting.name
                ));
            }
        }
        if self.allow_shared_compute_path && !self.allow_pvc {
            problems.push("allowSharedComputePath: true needs allowPVC: true".to_owned());
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(SidecarRules {
            allowed_images,
            sidecar_shim_image,
            allow_command: self.allow_command,
            allow_config_map: self.allow_config_map,
            allow_pvc: self.allow_pvc,
            allow_shared_compute_path: self.allow_shared_compute_path,
            setting_name: None,
        })
    }
}

impl Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        self.rules().map(|_| ())
    }
}

/// Decodes settings exactly as the policy's `validate_settings` does and validates them.
/// The error is the message `validate_settings` returns.
pub fn parse_and_validate(json: &serde_json::Value) -> Result<Settings, String> {
    let settings = Settings::deserialize(json).map_err(|e| format!("invalid settings: {e}"))?;
    settings.validate()?;
    Ok(settings)
}

/// The same, from the bytes `validate_settings` receives.
pub fn parse_and_validate_slice(payload: &[u8]) -> Result<Settings, String> {
    let settings: Settings =
        serde_json::from_slice(payload).map_err(|e| format!("invalid settings: {e}"))?;
    settings.validate()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!({}))]
    #[case(json!({"allowedImages": []}))]
    #[case(json!({"allowedImages": ["registry:5000/kubevirt/example-hook-sidecar:devel", "ghcr.io/org/*", "busybox:*"]}))]
    #[case(json!({"sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.4.0", "allowConfigMap": true}))]
    #[case(json!({"allowPVC": true, "allowSharedComputePath": true, "allowCommand": true}))]
    #[case(json!({"harvesterSetting": {"name": "whitelisted-sidecars", "listMode": "effective"}}))]
    #[case(json!({"harvesterSetting": {"name": "my.sidecars-2", "listMode": "union"}}))]
    fn accepts(#[case] settings: serde_json::Value) {
        parse_and_validate(&settings).expect("valid settings");
    }

    #[rstest]
    #[case(json!({"allowedImage": ["a"]}), "unknown field `allowedImage`")]
    #[case(json!({"allowComand": false}), "unknown field `allowComand`")]
    #[case(json!({"allowPvc": true}), "unknown field `allowPvc`")]
    #[case(json!({"allowedImages": "busybox"}), "invalid type")]
    #[case(json!({"allowCommand": "yes"}), "invalid type")]
    #[case(json!({"allowedImages": ["ok:1", "Not/Valid"]}), "allowedImages[1] \"Not/Valid\"")]
    #[case(json!({"allowedImages": ["ghcr.io/*/x"]}), "allowedImages[0] \"ghcr.io/*/x\": a wildcard is allowed only")]
    #[case(json!({"sidecarShimImage": "quay.io/kubevirt/*"}), "sidecarShimImage \"quay.io/kubevirt/*\": must name one image")]
    #[case(json!({"sidecarShimImage": "quay.io/kubevirt/sidecar-shim:*"}), "without wildcard")]
    #[case(json!({"sidecarShimImage": "UPPER"}), "sidecarShimImage \"UPPER\": not a valid image reference")]
    #[case(json!({"allowSharedComputePath": true}), "allowSharedComputePath: true needs allowPVC: true")]
    #[case(json!({"harvesterSetting": {"name": "s", "listMode": "Union"}}), "unknown variant `Union`")]
    #[case(json!({"harvesterSetting": {"listMode": "union"}}), "missing field `name`")]
    #[case(json!({"harvesterSetting": {"nam": "x"}}), "unknown field `nam`")]
    #[case(json!({"harvesterSetting": "whitelisted-sidecars"}), "invalid type")]
    #[case(json!({"harvesterSetting": {"name": ""}}), "harvesterSetting.name \"\": not a Kubernetes object name")]
    #[case(json!({"harvesterSetting": {"name": "Whitelisted"}}), "harvesterSetting.name \"Whitelisted\"")]
    #[case(json!({"harvesterSetting": {"name": "a..b"}}), "harvesterSetting.name \"a..b\"")]
    #[case(json!({"harvesterSetting": {"name": "-a"}}), "harvesterSetting.name \"-a\"")]
    fn refuses(#[case] settings: serde_json::Value, #[case] message: &str) {
        let error = parse_and_validate(&settings).expect_err("invalid settings");
        assert!(error.contains(message), "{settings}: {error}");
    }

    #[test]
    fn list_mode_defaults_to_union() {
        let settings =
            parse_and_validate(&json!({"harvesterSetting": {"name": "whitelisted-sidecars"}}))
                .expect("valid");
        assert_eq!(
            settings.harvester_setting,
            Some(HarvesterSettingRef {
                name: "whitelisted-sidecars".into(),
                list_mode: ListMode::Union,
            })
        );
        assert_eq!(
            parse_and_validate(&json!({}))
                .expect("valid")
                .harvester_setting,
            None
        );
    }

    #[test]
    fn names_every_problem_at_once() {
        let settings = json!({"allowedImages": ["*", "a b"], "allowSharedComputePath": true});
        let error = parse_and_validate(&settings).expect_err("invalid settings");
        for culprit in [
            "allowedImages[0]",
            "allowedImages[1]",
            "allowSharedComputePath",
        ] {
            assert!(error.contains(culprit), "{error}");
        }
    }
}
