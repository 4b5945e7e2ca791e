//! The admission decision for one request.

use kubewarden_policy_sdk::response::ValidationResponse;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::annotation::{self, HookSidecar};
use crate::objects::{annotation_locations, read_annotation, AnnotationLocation, GroupVersionKind};
use crate::reference::ImageReference;
use crate::settings::{Settings, SidecarRules};

/// What the policy reads of the waPC `validate` payload. Only the request fields it needs are
/// decoded; the objects stay raw JSON until a kind that carries the annotation asks for them.
#[derive(Deserialize)]
struct ValidationPayload<'a> {
    #[serde(borrow)]
    request: AdmissionRequest<'a>,
    #[serde(default)]
    settings: Settings,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionRequest<'a> {
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
}

/// The outcome before it becomes a waPC response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
}

impl Verdict {
    fn rejection(reason: String) -> Self {
        Self {
            violations: vec![reason],
            warnings: Vec::new(),
        }
    }

    pub fn into_response(self) -> ValidationResponse {
        let accepted = self.violations.is_empty();
        ValidationResponse {
            accepted,
            message: (!accepted)
                .then(|| format!("hook sidecars rejected: {}", self.violations.join("; "))),
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: (!self.warnings.is_empty()).then_some(self.warnings),
        }
    }
}

/// Evaluates the raw `validate` payload.
pub fn validate_payload(payload: &[u8]) -> Verdict {
    let payload: ValidationPayload = match serde_json::from_slice(payload) {
        Ok(payload) => payload,
        Err(e) => return Verdict::rejection(format!("cannot read the validation request: {e}")),
    };
    let request = payload.request;
    let Some(locations) = annotation_locations(&request.kind) else {
        return Verdict::default();
    };
    if !matches!(request.operation.as_str(), "CREATE" | "UPDATE") {
        return Verdict::default();
    }
    let rules = match payload.settings.rules() {
        Ok(rules) => rules,
        Err(e) => return Verdict::rejection(format!("invalid policy settings: {e}")),
    };
    let Some(object) = request.object else {
        return Verdict::rejection(format!(
            "the {} request has no object to check",
            request.operation
        ));
    };
    let kind = request.kind.kind.as_str();
    let new_values = read_all(object, locations);
    let mut verdict = check(&rules, kind, locations, &new_values);
    if request.operation == "UPDATE" && !verdict.violations.is_empty() {
        if let Some(old) = request.old_object {
            if read_all(old, locations).iter().eq(new_values.iter()) && all_readable(&new_values) {
                // Unchanged sidecars stay: a VM whose sidecar left the list can still be stopped,
                // edited or deleted. Changing them is checked like a creation.
                let reasons = std::mem::take(&mut verdict.violations).join("; ");
                verdict.warnings.push(format!(
                    "hook sidecars are unchanged by this update, so it is accepted, \
                     but they would be rejected now: {reasons}"
                ));
            }
        }
    }
    verdict
}

type AnnotationValue = Result<Option<String>, String>;

fn read_all(object: &RawValue, locations: &[AnnotationLocation]) -> Vec<AnnotationValue> {
    locations
        .iter()
        .map(|location| read_annotation(object, location))
        .collect()
}

fn all_readable(values: &[AnnotationValue]) -> bool {
    values.iter().all(Result::is_ok)
}

fn check(
    rules: &SidecarRules,
    kind: &str,
    locations: &[AnnotationLocation],
    values: &[AnnotationValue],
) -> Verdict {
    let mut verdict = Verdict::default();
    for (location, value) in locations.iter().zip(values) {
        let value = match value {
            Ok(Some(value)) => value,
            Ok(None) => continue,
            Err(e) => {
                verdict.violations.push(e.clone());
                continue;
            }
        };
        if !location.effective {
            verdict.warnings.push(format!(
                "{location} has no effect on a {kind}: KubeVirt reads hook sidecars from \
                 spec.template.metadata.annotations"
            ));
        }
        match annotation::decode(value) {
            Ok(sidecars) => {
                for (index, sidecar) in sidecars.iter().enumerate() {
                    for reason in sidecar_violations(rules, sidecar) {
                        verdict.violations.push(format!("{location}[{index}]: {reason}"));
                    }
                }
            }
            Err(e) => verdict.violations.push(format!("{location}: {e}")),
        }
    }
    verdict
}

/// Every reason why one sidecar entry is not allowed.
fn sidecar_violations(rules: &SidecarRules, sidecar: &HookSidecar) -> Vec<String> {
    let mut reasons = Vec::new();
    match image_check(rules, sidecar) {
        Ok(()) => {}
        Err(reason) => reasons.push(reason),
    }
    if !sidecar.command.is_empty() && !rules.allow_command {
        reasons.push(format!(
            "command {:?} replaces the image's entrypoint, and allowCommand is false",
            sidecar.command
        ));
    }
    if let Some(config_map) = &sidecar.config_map {
        if !rules.allow_config_map {
            reasons.push(format!(
                "configMap {:?} mounts a user script at {:?}, and allowConfigMap is false",
                config_map.name, config_map.hook_path
            ));
        }
    }
    if let Some(pvc) = &sidecar.pvc {
        if !rules.allow_pvc {
            reasons.push(format!(
                "pvc {:?} mounts user data in the sidecar, and allowPVC is false",
                pvc.name
            ));
        }
        if !pvc.shared_compute_path.is_empty() && !rules.allow_shared_compute_path {
            reasons.push(format!(
                "pvc.sharedComputePath {:?} mounts user data in the compute container, \
                 and allowSharedComputePath is false",
                pvc.shared_compute_path
            ));
        }
    }
    reasons
}

fn image_check(rules: &SidecarRules, sidecar: &HookSidecar) -> Result<(), String> {
    let (written, image) = match sidecar.explicit_image() {
        Some(written) => {
            let image = ImageReference::parse_normalized(written)
                .map_err(|e| format!("image {written:?} is not a valid image reference: {e}"))?;
            (format!("image {written:?}"), image)
        }
        None => match &rules.sidecar_shim_image {
            Some(shim) => ("no image (KubeVirt's sidecar-shim)".to_owned(), shim.clone()),
            None => {
                return Err("no image: KubeVirt would run its sidecar-shim, and \
                            sidecarShimImage is not set, so the policy cannot tell which \
                            image that is"
                    .to_owned())
            }
        },
    };
    if rules.allowed_images.find(&image).is_some() {
        Ok(())
    } else {
        Err(format!("{written} ({image}) is not in allowedImages"))
    }
}
