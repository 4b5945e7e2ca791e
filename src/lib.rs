//! Kubewarden policy: KubeVirt hook sidecars only from an administrator's allow-list.
//!
//! This file holds the waPC entry points. A request takes one path through the modules:
//! `validation` decodes it (`payload`) and dispatches it by kind to the extractor of its family
//! (`vm_carriers`, `launcher_pod`), which yields each sidecar with where it came from
//! (`sidecar`); `request_rules` builds the rules for the request (from `settings`, and the
//! Setting of context-aware mode asked of the `host`); `judge` judges each sidecar (a ConfigMap's
//! script with `scripts`); `verdict`
//! turns what it found into the answer.
//!
//! The modules are private; what the sync job, the fuzzers, the tests and the host use is
//! re-exported below.

mod allowlist;
mod annotation;
mod annotation_maps;
mod harvester_setting;
mod host;
mod judge;
mod kubernetes_names;
mod launcher_pod;
mod payload;
// Public: tests/pattern_differential.rs drives the pattern engine itself against Go's regexp.
pub mod pattern;
mod profiles;
mod reference;
mod request_rules;
mod scripts;
mod settings;
mod sidecar;
mod signatures;
mod skim;
mod swar;
#[cfg(test)]
mod test_support;
mod text;
mod validation;
mod verdict;
mod vm_carriers;

pub use allowlist::AllowedImage;
pub use annotation::{
    HOOK_SIDECARS_ANNOTATION, MAX_SIDECARS, SidecarKey, decode as decode_annotation,
};
pub use harvester_setting::{
    ListMode, SETTING_API_VERSION, SETTING_KIND, SettingObject, setting_entries, unique_items,
};
pub use host::{Host, Verified};
pub use kubernetes_names::is_dns_subdomain;
// tests/kubevirt_versions.rs compares what it reads in each release's launcher Pods with the
// annotation's entries.
pub use launcher_pod::{RenderedSidecar, read_launcher_sidecars};
pub use payload::{GroupVersionKind, annotation_locations, is_pod};
pub use profiles::SidecarProfile;
pub use reference::{ImageReference, ReferenceError};
pub use scripts::{
    CONFIG_MAP_API_VERSION, CONFIG_MAP_KIND, ConfigMapKey, read_config_map, sha256_hex,
};
pub use settings::{
    AllowedScript, HarvesterSettingRef, Settings, parse_and_validate, parse_and_validate_slice,
};
pub use sidecar::HookSidecar;
pub use text::cut;
pub use validation::{validate_payload, validate_payload_with};
pub use verdict::{Verdict, Violation, summary};

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
