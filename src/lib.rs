//! Kubewarden policy: KubeVirt hook sidecars only from an administrator's allow-list.
//!
//! This file holds only the waPC entry points; each concern has its own module.

pub mod allowlist;
pub mod annotation;
pub mod context_aware;
pub mod harvester_setting;
pub mod objects;
pub mod pattern;
pub mod pod;
pub mod profiles;
pub mod reference;
pub mod rules;
pub mod rules_cache;
pub mod settings;
pub mod validation;

use kubewarden_policy_sdk::{protocol_version_guest, settings::SettingsValidationResponse};
use wapc_guest::{CallResult, register_function};

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
}

fn validate(payload: &[u8]) -> CallResult {
    let response = validation::validate_payload(payload).into_response();
    Ok(serde_json::to_vec(&response)?)
}

/// Unlike the SDK's helper, a settings object that does not decode (an unknown key, a wrong
/// type) is answered as invalid settings with the reason, not as a guest error.
fn validate_settings(payload: &[u8]) -> CallResult {
    let response = match settings::parse_and_validate_slice(payload) {
        Ok(_) => SettingsValidationResponse {
            valid: true,
            message: None,
        },
        Err(message) => SettingsValidationResponse {
            valid: false,
            message: Some(message),
        },
    };
    Ok(serde_json::to_vec(&response)?)
}
