//! The admission decision for one request.

use kubewarden_policy_sdk::response::ValidationResponse;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::annotation::{self, HookSidecar};
use crate::context_aware::{self, PolicyServer, SettingSource, SETTING_API_VERSION};
use crate::objects::{
    annotation_locations, read_annotations, AnnotationLocation, AnnotationValues, GroupVersionKind,
};
use crate::reference::ImageReference;
use crate::settings::{HarvesterSettingRef, Settings, SidecarRules};

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

/// Evaluates the raw `validate` payload; a Setting named by `harvesterSetting` is read from
/// policy-server.
pub fn validate_payload(payload: &[u8]) -> Verdict {
    validate_payload_with(payload, &PolicyServer)
}

/// Evaluates the raw `validate` payload, reading a Setting named by `harvesterSetting` from
/// `setting_source`.
pub fn validate_payload_with(payload: &[u8], setting_source: &dyn SettingSource) -> Verdict {
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
    let mut rules = match payload.settings.rules() {
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
    let new_values = read_annotations(object, locations);
    // Context-aware mode: the Setting is read only for a request that carries sidecars.
    let setting = payload
        .settings
        .harvester_setting
        .as_ref()
        .filter(|_| carries_annotation(&new_values))
        .map(|reference| (reference, setting_source.get_setting(&reference.name)));
    let mut setting_verdict = Verdict::default();
    if let Some((reference, lookup)) = &setting {
        setting_verdict = add_setting_entries(&mut rules, reference, lookup);
    }
    let mut verdict = check(&rules, kind, locations, &new_values);
    verdict.violations.splice(0..0, setting_verdict.violations);
    verdict.warnings.splice(0..0, setting_verdict.warnings);
    if request.operation == "UPDATE" {
        keep_unchanged_sidecars(&mut verdict, request.old_object, locations, &new_values);
    }
    verdict
}

/// Whether any location carries the annotation: only such requests need the Setting.
fn carries_annotation(values: &AnnotationValues) -> bool {
    match values {
        Ok(values) => values.iter().any(Option::is_some),
        // The object cannot be read: the request is rejected without looking at any list.
        Err(_) => false,
    }
}

/// Adds the entries of the Setting that was looked up to the allow-list. A missing Setting adds
/// none; a failed lookup rejects (the policy cannot tell what is allowed); invalid entries allow
/// nothing and are named in warnings.
fn add_setting_entries<'s>(
    rules: &mut SidecarRules<'s>,
    reference: &'s HarvesterSettingRef,
    lookup: &'s Result<Option<context_aware::SettingObject>, String>,
) -> Verdict {
    let name = reference.name.as_str();
    rules.setting_name = Some(name);
    match lookup {
        Ok(Some(setting)) => {
            let entries = context_aware::setting_allow_list(name, setting, reference.list_mode);
            rules.allowed_images.extend(entries.allowed);
            Verdict {
                violations: Vec::new(),
                warnings: entries.warnings,
            }
        }
        Ok(None) => Verdict {
            violations: Vec::new(),
            warnings: vec![format!(
                "Setting {name:?} ({SETTING_API_VERSION}) does not exist: it adds no entries"
            )],
        },
        Err(e) => Verdict::rejection(format!(
            "cannot read Setting {name:?} ({SETTING_API_VERSION}), so the policy cannot tell \
             which sidecars it allows: {e}"
        )),
    }
}

/// On UPDATE, sidecars that `oldObject` already had at every location are accepted, with the
/// violations turned into a warning: a VM whose sidecar left the list can still be stopped, edited
/// or deleted. Any change, or an object that cannot be read, is checked like a creation.
fn keep_unchanged_sidecars(
    verdict: &mut Verdict,
    old_object: Option<&RawValue>,
    locations: &[AnnotationLocation],
    new_values: &AnnotationValues,
) {
    let (Some(old_object), Ok(new_values)) = (old_object, new_values) else {
        return;
    };
    if verdict.violations.is_empty()
        || read_annotations(old_object, locations).as_ref() != Ok(new_values)
    {
        return;
    }
    let reasons = std::mem::take(&mut verdict.violations).join("; ");
    verdict.warnings.push(format!(
        "hook sidecars are unchanged by this update, so it is accepted, \
         but they would be rejected now: {reasons}"
    ));
}

fn check(
    rules: &SidecarRules,
    kind: &str,
    locations: &[AnnotationLocation],
    values: &AnnotationValues,
) -> Verdict {
    let values = match values {
        Ok(values) => values,
        Err(e) => return Verdict::rejection(e.clone()),
    };
    let mut verdict = Verdict::default();
    for (location, value) in locations.iter().zip(values) {
        let Some(value) = value else {
            continue;
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
                        verdict
                            .violations
                            .push(format!("{location}[{index}]: {reason}"));
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
            Some(shim) => (
                "no image (KubeVirt's sidecar-shim)".to_owned(),
                shim.clone(),
            ),
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
    } else if let Some(setting) = rules.setting_name {
        Err(format!(
            "{written} ({image}) is not in allowedImages nor in Setting {setting:?}"
        ))
    } else {
        Err(format!("{written} ({image}) is not in allowedImages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::HOOK_SIDECARS_ANNOTATION;
    use rstest::rstest;
    use serde_json::{json, Value};

    const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
    const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.4.0";

    fn fixture(name: &str) -> Value {
        let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn gpu_settings() -> Value {
        json!({ "allowedImages": [GPU_HOOK] })
    }

    fn evaluate(request: &Value, settings: &Value) -> Verdict {
        let payload = json!({ "request": request, "settings": settings });
        validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
    }

    /// Puts `value` as the annotation at the kind's first (effective) location.
    fn with_annotation(mut request: Value, value: &str) -> Value {
        let kind: GroupVersionKind = serde_json::from_value(request["kind"].clone()).expect("kind");
        let location = annotation_locations(&kind).expect("a checked kind")[0];
        let pointer = format!("/object/{}", location.path.join("/"));
        let annotations = request.pointer_mut(&pointer).expect("annotations map");
        annotations[HOOK_SIDECARS_ANNOTATION] = Value::String(value.to_owned());
        request
    }

    fn vm_with(value: &str) -> Value {
        with_annotation(fixture("vm-create"), value)
    }

    fn assert_rejected(verdict: &Verdict, fragments: &[&str]) {
        assert!(
            !verdict.violations.is_empty(),
            "expected a rejection, got {verdict:?}"
        );
        let message = verdict.violations.join("; ");
        for fragment in fragments {
            assert!(message.contains(fragment), "{fragment:?} not in: {message}");
        }
    }

    #[rstest]
    #[case("vm-create", "spec.template.metadata.annotations")]
    #[case("vmi-create", "metadata.annotations")]
    #[case("vmirs-create", "spec.template.metadata.annotations")]
    #[case(
        "vmpool-v1alpha1-create",
        "spec.virtualMachineTemplate.spec.template.metadata.annotations"
    )]
    #[case(
        "vmpool-v1beta1-create",
        "spec.virtualMachineTemplate.spec.template.metadata.annotations"
    )]
    #[case("instancetype-create", "spec.annotations")]
    #[case("clusterinstancetype-create", "spec.annotations")]
    #[case("preference-create", "spec.annotations")]
    #[case("clusterpreference-create", "spec.annotations")]
    fn every_kind_is_checked_at_its_location(#[case] name: &str, #[case] path: &str) {
        let request = fixture(name);
        assert_eq!(evaluate(&request, &gpu_settings()), Verdict::default());
        let verdict = evaluate(&request, &json!({}));
        let expected = format!("{path}[\"{HOOK_SIDECARS_ANNOTATION}\"][0]: image \"{GPU_HOOK}\"");
        assert_rejected(&verdict, &[&expected, "is not in allowedImages"]);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
    }

    #[rstest]
    #[case("vm-delete")]
    #[case("pod-create")]
    #[case("vm-create-no-sidecar")]
    fn accepted_without_looking_at_sidecars(#[case] name: &str) {
        assert_eq!(evaluate(&fixture(name), &json!({})), Verdict::default());
    }

    #[rstest]
    #[case(json!([]))]
    #[case(Value::Null)]
    #[case(json!([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}, {"image": GPU_HOOK}]))]
    #[case(json!([{"image": "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0", "imagePullPolicy": "Always"}]))]
    #[case(json!([{"image": "REGISTRY.example.com/kubevirt-hooks/qemu-commandline:v1.2.0"}]))]
    fn allowed_annotations(#[case] sidecars: Value) {
        let verdict = evaluate(&vm_with(&sidecars.to_string()), &gpu_settings());
        assert_eq!(verdict, Verdict::default());
    }

    #[rstest]
    #[case::other_image(json!([{"image": "evil:1"}]), json!({}), &["[0]: image \"evil:1\" (docker.io/library/evil:1) is not in allowedImages"])]
    #[case::other_tag(json!([{"image": "registry.example.com/kubevirt-hooks/qemu-commandline:v1.3.0"}]), json!({}), &["qemu-commandline:v1.3.0) is not in allowedImages"])]
    #[case::digest_against_tag(json!([{"image": format!("{GPU_HOOK}@sha256:{}", "a".repeat(64))}]), json!({}), &["is not in allowedImages"])]
    #[case::invalid_image(json!([{"image": "Not A Reference"}]), json!({}), &["image \"Not A Reference\" is not a valid image reference"])]
    #[case::shim_without_setting(json!([{"configMap": {"name": "cm", "key": "k", "hookPath": "/usr/bin/onDefineDomain"}}]), json!({"allowConfigMap": true}), &["[0]: no image: KubeVirt would run its sidecar-shim, and sidecarShimImage is not set"])]
    #[case::shim_not_allowed(json!([null]), json!({"sidecarShimImage": SHIM}), &["no image (KubeVirt's sidecar-shim) (quay.io/kubevirt/sidecar-shim:v1.4.0) is not in allowedImages"])]
    #[case::ctf_route(json!([{"command": ["/bin/bash"], "configMap": {"name": "cm", "key": "k", "hookPath": "/hook.sh"}}]), json!({}), &["no image: KubeVirt would run its sidecar-shim", "allowCommand is false", "allowConfigMap is false"])]
    #[case::command(json!([{"image": GPU_HOOK, "command": ["/bin/bash", "-c", "x"]}]), json!({}), &["command [\"/bin/bash\", \"-c\", \"x\"] replaces the image's entrypoint, and allowCommand is false"])]
    #[case::config_map(json!([{"image": GPU_HOOK, "configMap": {"name": "cm", "key": "k", "hookPath": "/hook"}}]), json!({}), &["configMap \"cm\" mounts a user script at \"/hook\", and allowConfigMap is false"])]
    #[case::pvc(json!([{"image": GPU_HOOK, "pvc": {"name": "data", "volumePath": "/data"}}]), json!({}), &["pvc \"data\" mounts user data in the sidecar, and allowPVC is false"])]
    #[case::shared_compute_path(json!([{"image": GPU_HOOK, "pvc": {"name": "data", "volumePath": "/data", "sharedComputePath": "/var/run/kubevirt-hooks"}}]), json!({"allowPVC": true}), &["pvc.sharedComputePath \"/var/run/kubevirt-hooks\" mounts user data in the compute container"])]
    #[case::spoofed_key(json!([{"image": GPU_HOOK}]).to_string().replace('}', ",\"Image\":\"evil:1\"}"), json!({}), &["has the key \"Image\", which KubeVirt's decoder reads as \"image\""])]
    #[case::kelvin_key(json!([{"image": GPU_HOOK, "imagePullPolicy": "Always"}]).to_string().replace("Pull", "Pul\u{212A}"), json!({}), &["unknown key"])]
    #[case::not_json(Value::String("[{image: x}]".into()), json!({}), &["not a valid hook sidecar list"])]
    #[case::empty(Value::String(String::new()), json!({}), &["the value is empty"])]
    #[case::object(json!({"image": GPU_HOOK}), json!({}), &["expected a JSON array"])]
    #[case::bad_pull_policy(json!([{"image": GPU_HOOK, "imagePullPolicy": "Sometimes"}]), json!({}), &["imagePullPolicy \"Sometimes\""])]
    fn rejected_annotations(
        #[case] sidecars: impl Into<AnnotationText>,
        #[case] extra: Value,
        #[case] fragments: &[&str],
    ) {
        let mut settings = gpu_settings();
        if let Value::Object(extra) = extra {
            settings.as_object_mut().expect("object").extend(extra);
        }
        let verdict = evaluate(&vm_with(&sidecars.into().0), &settings);
        assert_rejected(&verdict, fragments);
    }

    /// The annotation text: a JSON value is written out, a JSON string is taken as the text.
    struct AnnotationText(String);

    impl From<Value> for AnnotationText {
        fn from(value: Value) -> Self {
            match value {
                Value::String(text) => Self(text),
                other => Self(other.to_string()),
            }
        }
    }

    impl From<String> for AnnotationText {
        fn from(text: String) -> Self {
            Self(text)
        }
    }

    #[rstest]
    #[case(json!([{"image": GPU_HOOK, "command": ["/hook"]}]), json!({"allowCommand": true}))]
    #[case(json!([{"configMap": {"name": "cm", "key": "k", "hookPath": "/usr/bin/onDefineDomain"}}]), json!({"allowConfigMap": true, "sidecarShimImage": SHIM, "allowedImages": [SHIM]}))]
    #[case(json!([{"image": GPU_HOOK, "pvc": {"name": "d", "volumePath": "/d", "sharedComputePath": "/s"}}]), json!({"allowPVC": true, "allowSharedComputePath": true}))]
    #[case(json!([{"image": GPU_HOOK, "command": [], "configMap": null, "pvc": {}}]), json!({}))]
    fn switches_allow_what_they_name(#[case] sidecars: Value, #[case] extra: Value) {
        let mut settings = gpu_settings();
        if let Value::Object(extra) = extra {
            for (key, value) in extra {
                settings[key] = value;
            }
        }
        let verdict = evaluate(&vm_with(&sidecars.to_string()), &settings);
        assert_eq!(verdict, Verdict::default());
    }

    #[test]
    fn one_rejection_lists_every_violation() {
        let sidecars = json!([
            {"image": GPU_HOOK},
            {"image": "evil:1", "command": ["/bin/sh"]},
            {"pvc": {"name": "d", "sharedComputePath": "/s"}},
        ]);
        let verdict = evaluate(&vm_with(&sidecars.to_string()), &gpu_settings());
        assert_eq!(verdict.violations.len(), 5, "{verdict:?}");
        assert_rejected(
            &verdict,
            &[
                "][1]: image \"evil:1\"",
                "][1]: command",
                "][2]: no image",
                "][2]: pvc \"d\"",
                "][2]: pvc.sharedComputePath",
            ],
        );
        let message = verdict.into_response().message.expect("message");
        assert!(message.starts_with("hook sidecars rejected: "), "{message}");
    }

    #[test]
    fn annotation_on_vm_metadata_is_checked_and_warned_about() {
        let request = fixture("vm-create-annotation-on-vm-metadata");
        let verdict = evaluate(&request, &gpu_settings());
        assert!(verdict.violations.is_empty(), "{verdict:?}");
        assert_eq!(verdict.warnings.len(), 1);
        assert!(verdict.warnings[0].starts_with("metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"] has no effect on a VirtualMachine"));
        assert_rejected(
            &evaluate(&request, &json!({})),
            &["metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: image"],
        );
    }

    #[test]
    fn unchanged_sidecars_pass_updates_with_a_warning() {
        let request = fixture("vm-update-unchanged");
        assert_eq!(evaluate(&request, &gpu_settings()), Verdict::default());
        let verdict = evaluate(&request, &json!({}));
        assert!(verdict.violations.is_empty(), "{verdict:?}");
        assert_eq!(verdict.warnings.len(), 1);
        assert!(
            verdict.warnings[0].contains("unchanged by this update")
                && verdict.warnings[0].contains("is not in allowedImages")
        );
    }

    #[test]
    fn changed_sidecars_are_checked_on_update() {
        assert_rejected(
            &evaluate(&fixture("vm-update-adds-sidecar"), &json!({})),
            &["is not in allowedImages"],
        );
        // Only the VM's own (ineffective) annotation changes: still a change, still checked.
        let mut request = fixture("vm-update-unchanged");
        request["object"]["metadata"]["annotations"][HOOK_SIDECARS_ANNOTATION] =
            json!("[{\"image\":\"evil\"}]");
        assert_rejected(
            &evaluate(&request, &gpu_settings()),
            &["metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: image \"evil\""],
        );
    }

    #[test]
    fn a_vmi_whose_annotation_changes_is_checked() {
        let mut request = fixture("vmi-create");
        request["operation"] = json!("UPDATE");
        request["oldObject"] = request["object"].clone();
        assert_eq!(
            evaluate(&request, &json!({})).violations,
            Vec::<String>::new()
        );
        request["object"]["metadata"]["annotations"][HOOK_SIDECARS_ANNOTATION] =
            json!("[{\"image\":\"evil\"}]");
        assert_rejected(&evaluate(&request, &gpu_settings()), &["image \"evil\""]);
    }

    #[rstest]
    #[case::object_not_a_map(json!("x"), &["cannot read the object"])]
    #[case::template_not_a_map(json!({"spec": {"template": 5}}), &["cannot read spec.template"])]
    #[case::annotation_not_a_string(json!({"spec": {"template": {"metadata": {"annotations": {HOOK_SIDECARS_ANNOTATION: 1}}}}}), &["not a string"])]
    fn unreadable_objects_are_rejected(#[case] object: Value, #[case] fragments: &[&str]) {
        let mut request = fixture("vm-create");
        request["object"] = object;
        assert_rejected(&evaluate(&request, &gpu_settings()), fragments);
    }

    #[test]
    fn unreadable_objects_are_rejected_on_update_even_if_unchanged() {
        let mut request = fixture("vm-update-unchanged");
        request["object"]["spec"]["template"] = json!([]);
        request["oldObject"]["spec"]["template"] = json!([]);
        assert_rejected(
            &evaluate(&request, &gpu_settings()),
            &["cannot read spec.template"],
        );
    }

    #[test]
    fn missing_object_is_rejected() {
        let mut request = fixture("vm-create");
        request["object"] = Value::Null;
        assert_rejected(&evaluate(&request, &gpu_settings()), &["has no object"]);
    }

    #[rstest]
    #[case(json!({"allowedImages": ["*"]}), "invalid policy settings: allowedImages[0] \"*\"")]
    #[case(json!({"allowedImage": []}), "unknown field `allowedImage`")]
    fn invalid_settings_reject_requests(#[case] settings: Value, #[case] fragment: &str) {
        assert_rejected(&evaluate(&fixture("vm-create"), &settings), &[fragment]);
    }

    #[rstest]
    #[case(b"".as_slice())]
    #[case(b"{".as_slice())]
    #[case(b"[]".as_slice())]
    #[case(b"{\"request\": 5}".as_slice())]
    fn unreadable_payloads_are_rejected(#[case] payload: &[u8]) {
        assert_rejected(
            &validate_payload(payload),
            &["cannot read the validation request"],
        );
    }

    #[test]
    fn response_carries_message_and_warnings() {
        let response = evaluate(&fixture("vm-update-unchanged"), &json!({})).into_response();
        assert!(response.accepted && response.message.is_none());
        assert_eq!(response.warnings.map(|w| w.len()), Some(1));
    }
}
