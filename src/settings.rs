//! Policy settings and their validation (placeholder, replaced by the real implementation).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub allowed_images: Vec<String>,
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
}

/// Decodes settings exactly as the policy's `validate_settings` does and validates them.
/// The error is the message `validate_settings` would return.
pub fn parse_and_validate(json: &serde_json::Value) -> Result<Settings, String> {
    let settings: Settings = Settings::deserialize(json).map_err(|e| format!("invalid settings: {e}"))?;
    Ok(settings)
}
