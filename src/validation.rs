//! The request path of `validate`: the payload decoded ([`crate::payload`]), the request sent to
//! the extractor of its kind's family, the rules built for the request, each sidecar judged, and
//! the verdict.
//!
//! ```text
//! payload::read ─┬─ launcher_pod::extract ─┐
//!                └─ vm_carriers::extract ──┴─ request_rules ── judge ── verdict
//! ```

use serde_json::value::RawValue;

use crate::annotation_maps::ProfileAnnotations;
use crate::host::{Host, HostCalls, PolicyServer};
use crate::judge::Judge;
use crate::payload::{self, Objects, Payload};
use crate::request_rules::RequestRules;
use crate::settings::{self, Settings};
use crate::sidecar::{Extraction, Site};
use crate::verdict::{SiteFindings, Verdict};
use crate::{launcher_pod, vm_carriers};

/// Evaluates the raw `validate` payload; a Setting named by `harvesterSetting` is read from
/// policy-server.
pub fn validate_payload(payload: &[u8]) -> Verdict {
    validate_payload_with(payload, &PolicyServer)
}

/// Evaluates the raw `validate` payload, asking `host` what the request needs of the cluster.
pub fn validate_payload_with(payload: &[u8], host: &dyn Host) -> Verdict {
    validate_read(payload::read(payload), host)
}

/// Evaluates the payload as read (in one pass, or from raw JSON).
pub(crate) fn validate_read(
    payload: Result<Payload, serde_json::Error>,
    host: &dyn Host,
) -> Verdict {
    let payload = match payload {
        Ok(payload) => payload,
        Err(e) => return Verdict::rejection(format!("cannot read the validation request: {e}")),
    };
    if !matches!(payload.operation.as_str(), "CREATE" | "UPDATE") {
        return Verdict::default();
    }
    let operation = &payload.operation;
    let extraction: Result<Option<Box<dyn Extraction>>, String> = match payload.objects {
        Objects::Pod { object, old_object } => launcher_pod::extract(operation, object, old_object)
            .map(|pod| pod.map(|pod| Box::new(pod) as Box<dyn Extraction>)),
        Objects::Carrier {
            locations,
            object,
            old_object,
        } => vm_carriers::extract(&payload.kind.kind, operation, object, old_object, locations)
            .map(|carriers| Some(Box::new(carriers) as Box<dyn Extraction>)),
        Objects::Other => return Verdict::default(),
    };
    match extraction {
        Ok(Some(found)) => judge_request(&*found, payload.settings, host, &payload.namespace),
        Ok(None) => Verdict::default(),
        Err(reason) => Verdict::rejection(reason),
    }
}

/// What was found in the request, judged by the rules of its settings. A request without
/// sidecars reads no setting, looks no Setting up and compiles nothing.
fn judge_request(
    found: &dyn Extraction,
    settings: Option<&RawValue>,
    host: &dyn Host,
    namespace: &str,
) -> Verdict {
    let sites = found.sites();
    let settings = settings.filter(|_| sites.iter().any(Site::has_sidecars));
    let settings = match settings.map(|text| settings::decode_slice(text.get().as_bytes())) {
        None => Settings::default(),
        Some(Ok(settings)) => settings,
        Some(Err(e)) => return invalid_settings(&e),
    };
    let policy = match settings.request_rules() {
        Ok(policy) => policy,
        Err(e) => return invalid_settings(&e),
    };
    let host = HostCalls::new(host);
    let lookup = (settings.harvester_setting.as_ref())
        .map(|reference| (reference, host.setting(&reference.name)));
    let (rules, outcome) = RequestRules::new(
        policy,
        lookup
            .as_ref()
            .map(|(reference, answer)| (*reference, &**answer)),
    );
    let judge = Judge::new(namespace, host, rules);

    // Each sidecar's image resolved and its governing profiles found, once; then what those
    // profiles read beside it, for each site.
    let prepared: Vec<Vec<_>> = (sites.iter())
        .map(|site| match &site.sidecars {
            Ok(found) => (found.iter())
                .map(|found| judge.prepare(&found.sidecar, found.origin))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();
    let keys: Vec<Vec<&str>> = (prepared.iter())
        .map(|sidecars| sorted_unique(sidecars.iter().flat_map(|p| p.annotation_keys())))
        .collect();
    let annotations = match sorted_unique(keys.iter().flatten().copied()) {
        union if union.is_empty() => ProfileAnnotations::default(),
        union => match found.read_annotations(&union) {
            Ok(annotations) => annotations,
            Err(e) => return Verdict::rejection(e),
        },
    };

    let mut verdict = Verdict::with_warnings(outcome.warnings);
    for (index, site) in sites.iter().enumerate() {
        let lookup = annotations.at(site.annotations);
        let reasons = match &site.sidecars {
            Ok(found) => (found.iter().zip(&prepared[index]))
                .flat_map(|(found, prepared)| {
                    let reasons = judge.violations(prepared, &lookup);
                    (reasons.into_iter().chain(found.problems.iter().cloned()))
                        .map(|reason| (found.entry, reason))
                })
                .collect(),
            Err(reason) => vec![(None, reason.clone())],
        };
        let findings = SiteFindings {
            place: site.place.clone(),
            has_sidecars: site.has_sidecars(),
            reasons,
            warnings: site.warnings.clone(),
        };
        verdict.add_site(findings, outcome.failure.as_deref(), || {
            found.is_unchanged(index, &keys[index], &annotations)
        });
    }
    verdict
}

fn invalid_settings(reason: &str) -> Verdict {
    Verdict::rejection(format!("invalid policy settings: {reason}"))
}

fn sorted_unique<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<&'k str> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::HOOK_SIDECARS_ANNOTATION;
    use crate::payload::{GroupVersionKind, annotation_locations};
    use crate::test_support::{assert_rejected, evaluate, fixture};
    use crate::verdict::Violation;
    use crate::vm_carriers::LocationFingerprint;
    use rstest::rstest;
    use serde_json::{Value, json};

    const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
    const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.4.0";

    fn gpu_settings() -> Value {
        json!({ "allowedImages": [GPU_HOOK] })
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
    #[case::empty_pvc_needs_its_switch(json!([{"image": GPU_HOOK, "pvc": {}}]), json!({}), &["pvc \"\" mounts user data in the sidecar, and allowPVC is false"])]
    #[case::empty_config_map_needs_its_switch(json!([{"image": GPU_HOOK, "configMap": {}}]), json!({}), &["allowConfigMap is false"])]
    #[case::config_map_without_name(json!([{"image": GPU_HOOK, "configMap": {"key": "k", "hookPath": "/h"}}]), json!({"allowConfigMap": true}), &["[0]: configMap has no name: KubeVirt would look up a ConfigMap named \"\", so the VM could not start"])]
    #[case::pvc_without_name(json!([{"image": GPU_HOOK, "pvc": {"name": "", "volumePath": "/d"}}]), json!({"allowPVC": true}), &["[0]: pvc has no name: KubeVirt would mount a claim named \"\", so the VM could not start"])]
    #[case::uppercase_host(json!([{"image": "REGISTRY.example.com/kubevirt-hooks/qemu-commandline:v1.2.0"}]), json!({}), &["image \"REGISTRY.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\" is not a valid image reference: registry host must be lowercase"])]
    #[case::uppercase_docker_hub(json!([{"image": "INDEX.DOCKER.IO/library/busybox"}]), json!({"allowedImages": ["busybox"]}), &["registry host must be lowercase"])]
    #[case::short_name_with_require_registry(json!([{"image": "acme/hook:v1"}]), json!({"allowedImages": ["acme/hook:v1"], "requireRegistry": true}), &["image \"acme/hook:v1\" does not name its registry, and requireRegistry is true"])]
    #[case::ipv6_other_port(json!([{"image": "[fd00::10]:5001/hooks/gpu:v1"}]), json!({"allowedImages": ["[fd00::10]:5000/hooks/*"]}), &["([fd00::10]:5001/hooks/gpu:v1) is not in allowedImages"])]
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
    #[case(json!([{"image": GPU_HOOK, "command": [], "configMap": null, "pvc": null}]), json!({}))]
    #[case(json!([{"image": "docker.io/acme/hook:v1"}, {"image": GPU_HOOK}]), json!({"allowedImages": ["acme/hook:v1", GPU_HOOK], "requireRegistry": true}))]
    #[case(json!([{"image": "index.docker.io/library/busybox"}]), json!({"allowedImages": ["busybox"]}))]
    #[case(json!([{"image": "[fd00::10]:5000/hooks/gpu:v1"}]), json!({"allowedImages": ["[fd00::10]:5000/hooks/*"], "requireRegistry": true}))]
    #[case(json!([{"image": GPU_HOOK, "imagePullPolicy": "", "command": null, "args": null, "configMap": null, "pvc": null}]), json!({}))]
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

    fn message_of(sidecars: &str, settings: &Value) -> String {
        let verdict = evaluate(&vm_with(sidecars), settings);
        verdict.into_response().message.expect("rejected")
    }

    #[test]
    fn identical_reasons_are_collapsed_onto_their_entries() {
        let sidecars = format!("[{}]", vec!["{}"; 32].join(","));
        let message = message_of(&sidecars, &gpu_settings());
        assert_eq!(
            message.matches("sidecarShimImage is not set").count(),
            1,
            "{message}"
        );
        assert!(
            message.contains("hookSidecars\"][0], [1], [2] and 29 more entries: no image"),
            "{message}"
        );
    }

    #[test]
    fn distinct_reasons_are_listed_up_to_a_bound() {
        let sidecars: Vec<Value> = (0..20)
            .map(|i| json!({"image": format!("evil:{i}")}))
            .collect();
        let message = message_of(&Value::from(sidecars).to_string(), &gpu_settings());
        assert_eq!(message.matches("is not in allowedImages").count(), 6);
        assert!(message.ends_with("; and 14 more reasons"), "{message}");
    }

    #[test]
    fn more_entries_than_kubevirt_should_run_are_rejected() {
        let sidecars = format!(
            "[{}]",
            vec![format!("{{\"image\":\"{GPU_HOOK}\"}}"); 33].join(",")
        );
        let message = message_of(&sidecars, &gpu_settings());
        assert!(message.contains("more than 32 entries"), "{message}");
    }

    /// Whatever the VM owner writes, the message stays within a few KiB.
    #[rstest]
    #[case::long_invalid_images((0..32).map(|i| json!({"image": format!("{i}{}", "X".repeat(100_000))})).collect())]
    #[case::long_unlisted_images((0..32).map(|i| json!({"image": format!("a{i}/{}:v1", "b".repeat(250))})).collect())]
    #[case::long_commands((0..32).map(|i| json!({"image": GPU_HOOK, "command": [format!("{i}{}", "c".repeat(100_000))]})).collect())]
    #[case::long_names((0..32).map(|i| json!({"configMap": {"name": format!("{i}{}", "n".repeat(100_000)), "hookPath": "h".repeat(100_000)}, "pvc": {"name": "p".repeat(100_000), "sharedComputePath": "s".repeat(100_000)}})).collect())]
    fn a_rejection_message_is_bounded(#[case] sidecars: Vec<Value>) {
        let message = message_of(&Value::from(sidecars).to_string(), &gpu_settings());
        assert!(message.len() <= 4096, "{} bytes: {message}", message.len());
    }

    #[test]
    fn a_long_key_or_value_in_a_decoding_error_is_cut() {
        let sidecars = format!(r#"[{{"configMap": "{}"}}]"#, "x".repeat(1_000_000));
        let message = message_of(&sidecars, &gpu_settings());
        assert!(
            message.len() <= 1024 && message.contains("xxx… (") && message.ends_with(" bytes)"),
            "{message}"
        );
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

    const VM_METADATA: &str = "/object/metadata/annotations";
    const VM_TEMPLATE: &str = "/object/spec/template/metadata/annotations";

    /// An UPDATE of the VM fixture with the given annotation values, old and new, at its own
    /// metadata and at its template (`None`: absent).
    fn vm_update(old: [Option<&str>; 2], new: [Option<&str>; 2]) -> Value {
        let mut request = fixture("vm-update-unchanged");
        for (side, values) in [("object", new), ("oldObject", old)] {
            for (pointer, value) in [VM_METADATA, VM_TEMPLATE].iter().zip(values) {
                let pointer = pointer.replacen("/object", &format!("/{side}"), 1);
                let map = request.pointer_mut(&pointer).expect("annotations");
                let map = map.as_object_mut().expect("map");
                match value {
                    Some(value) => map.insert(HOOK_SIDECARS_ANNOTATION.into(), json!(value)),
                    None => map.remove(HOOK_SIDECARS_ANNOTATION),
                };
            }
        }
        request
    }

    const EVIL: &str = r#"[{"image":"evil:1"}]"#;
    const GOOD: &str =
        r#"[{"image":"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0"}]"#;
    const OTHER_EVIL: &str = r#"[{"image":"evil:2"}]"#;

    #[rstest]
    // An unchanged, disallowed copy in the VM's own metadata (never read by KubeVirt) does not
    // block an edit of the template, not even the one that removes the sidecar.
    #[case::remove_template_sidecar([Some(EVIL), Some(EVIL)], [Some(EVIL), None], &["metadata.annotations[", "unchanged"])]
    #[case::allowed_template_edit([Some(EVIL), None], [Some(EVIL), Some(GOOD)], &["metadata.annotations[", "unchanged"])]
    // The unchanged template keeps its warning while the VM's own copy is removed.
    #[case::remove_metadata_copy([Some(EVIL), Some(EVIL)], [None, Some(EVIL)], &["spec.template.metadata.annotations[", "unchanged"])]
    fn an_unchanged_location_keeps_its_warning(
        #[case] old: [Option<&str>; 2],
        #[case] new: [Option<&str>; 2],
        #[case] warning: &[&str],
    ) {
        let verdict = evaluate(&vm_update(old, new), &gpu_settings());
        assert!(verdict.violations.is_empty(), "{verdict:?}");
        let unchanged: Vec<_> = verdict
            .warnings
            .iter()
            .filter(|w| w.contains("unchanged"))
            .collect();
        assert_eq!(unchanged.len(), 1, "{verdict:?}");
        for fragment in warning {
            assert!(
                unchanged[0].contains(fragment),
                "{fragment:?} not in {unchanged:?}"
            );
        }
    }

    #[rstest]
    #[case::template_changes_to_disallowed([Some(EVIL), Some(GOOD)], [Some(EVIL), Some(OTHER_EVIL)], "spec.template.metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: image \"evil:2\"")]
    #[case::template_added([Some(EVIL), None], [Some(EVIL), Some(OTHER_EVIL)], "spec.template.metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: image \"evil:2\"")]
    // A value moved from the VM's own metadata (no effect) to the template (where KubeVirt reads
    // it) changes the target location: it is checked.
    #[case::moved_into_the_template([Some(EVIL), None], [None, Some(EVIL)], "spec.template.metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: image \"evil:1\"")]
    #[case::swapped([Some(EVIL), Some(GOOD)], [Some(GOOD), Some(EVIL)], "spec.template.metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: image \"evil:1\"")]
    fn a_changed_location_is_checked_as_on_create(
        #[case] old: [Option<&str>; 2],
        #[case] new: [Option<&str>; 2],
        #[case] violation: &str,
    ) {
        let verdict = evaluate(&vm_update(old, new), &gpu_settings());
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
        assert!(
            verdict.violations[0].to_string().starts_with(violation),
            "{verdict:?}"
        );
    }

    #[test]
    fn an_unreadable_old_object_counts_as_changed() {
        let mut request = vm_update([Some(EVIL), None], [Some(EVIL), None]);
        request["oldObject"]["spec"] = json!("not an object");
        assert_rejected(&evaluate(&request, &gpu_settings()), &["image \"evil:1\""]);
    }

    #[test]
    fn fingerprints_compare_every_field() {
        let a = LocationFingerprint {
            sidecars: Some("[]"),
            constrained: vec![("k", Some("1"))],
        };
        let with = |sidecars, constrained| LocationFingerprint {
            sidecars,
            constrained,
        };
        assert!(a.is_unchanged_by(&a.clone()));
        assert!(!a.is_unchanged_by(&with(None, vec![("k", Some("1"))])));
        assert!(!a.is_unchanged_by(&with(Some("[ ]"), vec![("k", Some("1"))])));
        assert!(!a.is_unchanged_by(&with(Some("[]"), vec![("k", Some("2"))])));
        assert!(!a.is_unchanged_by(&with(Some("[]"), vec![("k", None)])));
    }

    #[test]
    fn a_vmi_whose_annotation_changes_is_checked() {
        let mut request = fixture("vmi-create");
        request["operation"] = json!("UPDATE");
        request["oldObject"] = request["object"].clone();
        assert_eq!(
            evaluate(&request, &json!({})).violations,
            Vec::<Violation>::new()
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

    /// Every way settings can be invalid takes one path to one message.
    #[rstest]
    #[case(json!({"allowedImage": []}), "invalid policy settings: unknown field `allowedImage`")]
    #[case(json!({"allowCommand": "yes"}), "invalid policy settings: invalid type: string \"yes\", expected a boolean")]
    #[case(json!(5), "invalid policy settings: invalid type: integer `5`")]
    fn invalid_settings_reject_requests(#[case] settings: Value, #[case] message: &str) {
        let verdict = evaluate(&fixture("vm-create"), &settings);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
        assert!(
            verdict.violations[0].to_string().starts_with(message),
            "{verdict:?}"
        );
        // Kinds the policy does not check are not judged, whatever the settings.
        assert_eq!(
            evaluate(&fixture("pod-create"), &settings),
            Verdict::default()
        );
    }

    /// A request parses the `allowedImages` entries of its images' registries only (all were
    /// checked by `validate_settings`): an invalid one among them rejects the sidecar, naming it.
    #[test]
    fn an_invalid_entry_met_by_a_request_rejects_its_sidecar() {
        let settings = json!({"allowedImages": ["registry.example.com/*/x", GPU_HOOK]});
        let verdict = evaluate(&fixture("vm-create"), &settings);
        assert_rejected(
            &verdict,
            &[
                "[0]: invalid policy settings: allowedImages[0] \"registry.example.com/*/x\": a wildcard is allowed only as",
            ],
        );
        // The same entry beside an image of another registry is not looked at.
        let settings = json!({"allowedImages": ["other.example.com/*/x", GPU_HOOK]});
        assert_eq!(
            evaluate(&fixture("vm-create"), &settings),
            Verdict::default()
        );
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

    const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";
    const MMIO: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+";
    const APERTURE: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536";

    /// The README's profile: the hook's args pinned, its QEMU arguments limited to the aperture.
    fn mmio_profile() -> Value {
        json!({"image": GPU_HOOK, "args": [["--version", "v1alpha3"]], "annotations": {ARGS_KEY: MMIO}})
    }

    fn profile_settings(profiles: Value, extra: Value) -> Value {
        let mut settings = json!({"allowedImages": [GPU_HOOK, SHIM], "sidecarShimImage": SHIM, "sidecarProfiles": profiles});
        if let Value::Object(extra) = extra {
            settings.as_object_mut().expect("object").extend(extra);
        }
        settings
    }

    /// Sets (or, with `None`, removes) annotations beside the sidecar annotation.
    fn set_annotations(mut request: Value, annotations: &[(&str, Option<&str>)]) -> Value {
        let kind: GroupVersionKind = serde_json::from_value(request["kind"].clone()).expect("kind");
        let location = annotation_locations(&kind).expect("a checked kind")[0];
        let pointer = format!("/object/{}", location.path.join("/"));
        let map = request
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
            .expect("annotations map");
        for (key, value) in annotations {
            match value {
                Some(value) => map.insert((*key).to_owned(), json!(value)),
                None => map.remove(*key),
            };
        }
        request
    }

    fn gpu_vm(sidecars: Value, aperture: Option<&str>) -> Value {
        set_annotations(vm_with(&sidecars.to_string()), &[(ARGS_KEY, aperture)])
    }

    fn gpu_sidecar() -> Value {
        json!([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}])
    }

    #[rstest]
    #[case::pinned(json!([mmio_profile()]), gpu_sidecar(), Some(APERTURE))]
    #[case::annotation_absent(json!([mmio_profile()]), gpu_sidecar(), None)]
    #[case::other_image_form_does_not_govern(
        json!([{"image": format!("{GPU_HOOK}@sha256:{}", "a".repeat(64)), "args": [[]]}]),
        json!([{"image": GPU_HOOK, "args": ["anything"]}]),
        Some("anything")
    )]
    fn profiles_accept(
        #[case] profiles: Value,
        #[case] sidecars: Value,
        #[case] aperture: Option<&str>,
    ) {
        let verdict = evaluate(
            &gpu_vm(sidecars, aperture),
            &profile_settings(profiles, json!({})),
        );
        assert_eq!(verdict, Verdict::default());
    }

    #[rstest]
    #[case::appended_option(gpu_sidecar(), Some("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -device vfio-pci,host=01:00.0".into()), &[
        "spec.template.metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: sidecarProfiles[0] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\"): annotation \"qemu-commandline.hooks.example.com/args\" \"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -device vfio-pci,host=01:00.0\" does not match \"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+\"",
    ])]
    #[case::other_args(json!([{"image": GPU_HOOK, "args": ["--version", "v1alpha2"]}]), Some(APERTURE.into()), &["sidecarProfiles[0] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\"): args[1] \"v1alpha2\" does not match \"v1alpha3\""])]
    #[case::no_args(json!([{"image": GPU_HOOK}]), Some(APERTURE.into()), &["args [] has 0 elements, not the 2 of [\"--version\", \"v1alpha3\"]"])]
    #[case::command_not_granted(json!([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"], "command": ["/bin/sh"]}]), Some(APERTURE.into()), &["sidecarProfiles[0] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\"): command [\"/bin/sh\"] replaces the image's entrypoint, and allowCommand is false"])]
    #[case::long_value_shortened(gpu_sidecar(), Some("-fw_cfg x".repeat(40)), &["… (360 bytes) does not match"])]
    fn profiles_reject(
        #[case] sidecars: Value,
        #[case] aperture: Option<String>,
        #[case] fragments: &[&str],
    ) {
        let settings = profile_settings(json!([mmio_profile()]), json!({}));
        let verdict = evaluate(&gpu_vm(sidecars, aperture.as_deref()), &settings);
        assert_rejected(&verdict, fragments);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
    }

    #[test]
    fn a_profile_never_allows_an_image_by_itself() {
        let settings = json!({"sidecarProfiles": [mmio_profile()]});
        assert_rejected(
            &evaluate(&gpu_vm(gpu_sidecar(), Some(APERTURE)), &settings),
            &["is not in allowedImages"],
        );
    }

    #[test]
    fn one_satisfied_profile_of_several_is_enough_and_each_failure_is_named() {
        let profiles = json!([
            mmio_profile(),
            {"image": "registry.example.com/kubevirt-hooks/qemu-commandline:*", "args": [["--version", "v1alpha2"]]},
            {"image": "registry.example.com/other:1"},
        ]);
        let settings = profile_settings(profiles, json!({}));
        let v1alpha2 = json!([{"image": GPU_HOOK, "args": ["--version", "v1alpha2"]}]);
        assert_eq!(
            evaluate(&gpu_vm(v1alpha2, Some(APERTURE)), &settings),
            Verdict::default()
        );
        let neither = json!([{"image": GPU_HOOK, "args": ["--version", "v1"]}]);
        let verdict = evaluate(&gpu_vm(neither, Some(APERTURE)), &settings);
        assert_rejected(
            &verdict,
            &[
                "sidecarProfiles[0] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\"): args[1] \"v1\" does not match \"v1alpha3\"",
                "sidecarProfiles[1] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:*\"): args[1] \"v1\" does not match \"v1alpha2\"",
            ],
        );
        assert_eq!(verdict.violations.len(), 2, "{verdict:?}");
    }

    #[rstest]
    #[case::granted(&["/hook", "--fast"], json!({}), true)]
    #[case::not_listed(&["/bin/sh", "-c", "x"], json!({}), false)]
    #[case::not_listed_even_with_allow_command(&["/bin/sh"], json!({"allowCommand": true}), false)]
    fn a_profile_command_grants_only_what_it_lists(
        #[case] command: &[&str],
        #[case] extra: Value,
        #[case] accepted: bool,
    ) {
        let profiles = json!([{"image": GPU_HOOK, "command": [["/hook", "--fast|--slow"]]}]);
        let sidecars = json!([{"image": GPU_HOOK, "command": command}]);
        let verdict = evaluate(&gpu_vm(sidecars, None), &profile_settings(profiles, extra));
        assert_eq!(verdict.violations.is_empty(), accepted, "{verdict:?}");
        if !accepted {
            assert_rejected(&verdict, &["sidecarProfiles[0] (image", "): command ["]);
        }
    }

    #[rstest]
    #[case::shim_governed(json!([{"image": SHIM, "args": [["--version", "v1alpha3"]]}]), json!([{"args": ["--version", "v1alpha3"]}]), None)]
    #[case::shim_pinned(json!([{"image": "quay.io/kubevirt/sidecar-shim:*", "args": [[]]}]), json!([{"args": ["x"]}]), Some("sidecarProfiles[0] (image \"quay.io/kubevirt/sidecar-shim:*\"): args [\"x\"] has 1 elements, not the 0 of []"))]
    #[case::shim_not_governed_by_other_images(json!([{"image": GPU_HOOK, "args": [[]]}]), json!([null]), None)]
    fn entries_without_image_are_governed_through_the_shim(
        #[case] profiles: Value,
        #[case] sidecars: Value,
        #[case] rejection: Option<&str>,
    ) {
        let verdict = evaluate(
            &vm_with(&sidecars.to_string()),
            &profile_settings(profiles, json!({})),
        );
        match rejection {
            None => assert_eq!(verdict, Verdict::default()),
            Some(fragment) => assert_rejected(&verdict, &[fragment]),
        }
    }

    #[rstest]
    #[case::ungoverned(json!([{"image": "registry.example.com/other:1"}]), Some("image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\" (registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0) is allowed, but no sidecarProfiles entry governs it, and profilesRequired is true"))]
    #[case::governed(json!([mmio_profile()]), None)]
    fn profiles_required(#[case] profiles: Value, #[case] rejection: Option<&str>) {
        let settings = profile_settings(profiles, json!({"profilesRequired": true}));
        let verdict = evaluate(&gpu_vm(gpu_sidecar(), Some(APERTURE)), &settings);
        match rejection {
            None => assert_eq!(verdict, Verdict::default()),
            Some(fragment) => assert_rejected(&verdict, &[fragment]),
        }
    }

    #[test]
    fn profiles_required_does_not_hide_an_unlisted_image() {
        let settings = profile_settings(json!([]), json!({"profilesRequired": true}));
        let verdict = evaluate(
            &vm_with(&json!([{"image": "evil:1"}]).to_string()),
            &settings,
        );
        let violations: Vec<String> = verdict.violations.iter().map(ToString::to_string).collect();
        assert_eq!(
            violations,
            [format!(
                "spec.template.metadata.annotations[{HOOK_SIDECARS_ANNOTATION:?}][0]: image \"evil:1\" (docker.io/library/evil:1) is not in allowedImages"
            )]
        );
    }

    #[test]
    fn required_annotations_must_be_beside_the_sidecar_annotation() {
        let mut profile = mmio_profile();
        profile["requiredAnnotations"] = json!([ARGS_KEY]);
        let settings = profile_settings(json!([profile]), json!({}));
        assert_eq!(
            evaluate(&gpu_vm(gpu_sidecar(), Some(APERTURE)), &settings),
            Verdict::default()
        );
        assert_rejected(
            &evaluate(&gpu_vm(gpu_sidecar(), None), &settings),
            &[&format!("annotation {ARGS_KEY:?} is required and absent")],
        );
        // On the VM's own metadata, the annotation is not where the sidecar reads it.
        let mut request = gpu_vm(gpu_sidecar(), None);
        request["object"]["metadata"]["annotations"][ARGS_KEY] = json!(APERTURE);
        assert_rejected(&evaluate(&request, &settings), &["is required and absent"]);
    }

    /// Every kind is checked where its sidecar annotation is: a VMI's own metadata, an
    /// instancetype's `spec.annotations`, a template's metadata.
    #[rstest]
    #[case("vmi-create")]
    #[case("vmirs-create")]
    #[case("vmpool-v1beta1-create")]
    #[case("instancetype-create")]
    #[case("clusterpreference-create")]
    fn constrained_annotations_are_read_beside_the_sidecar_annotation(#[case] name: &str) {
        let settings = profile_settings(json!([mmio_profile()]), json!({}));
        let good = set_annotations(fixture(name), &[(ARGS_KEY, Some(APERTURE))]);
        assert_eq!(evaluate(&good, &settings), Verdict::default());
        let bad = set_annotations(fixture(name), &[(ARGS_KEY, Some("-kernel /tmp/x"))]);
        assert_rejected(
            &evaluate(&bad, &settings),
            &[
                "annotation \"qemu-commandline.hooks.example.com/args\" \"-kernel /tmp/x\" does not match",
            ],
        );
    }

    #[test]
    fn a_constrained_annotation_that_is_no_string_is_rejected() {
        let mut request = gpu_vm(gpu_sidecar(), None);
        request["object"]["spec"]["template"]["metadata"]["annotations"][ARGS_KEY] = json!(5);
        let settings = profile_settings(json!([mmio_profile()]), json!({}));
        assert_rejected(
            &evaluate(&request, &settings),
            &["\"qemu-commandline.hooks.example.com/args\" is 5, not a string"],
        );
    }

    #[rstest]
    #[case(json!({"sidecarProfiles": [{"image": "*"}]}), "invalid policy settings: sidecarProfiles[0].image \"*\"")]
    #[case(json!({"sidecarProfiles": [{"image": GPU_HOOK, "arg": []}]}), "invalid policy settings: sidecarProfiles[0]: unknown field `arg`")]
    // A pattern that does not compile matches nothing: the profile fails, the sidecar is rejected.
    #[case(json!({"allowedImages": [GPU_HOOK], "sidecarProfiles": [{"image": GPU_HOOK, "args": [["(", "v1alpha3"]]}]}), "sidecarProfiles[0] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\"): args[0] \"--version\" does not match \"(\"")]
    fn invalid_profiles_reject_requests_with_sidecars(
        #[case] settings: Value,
        #[case] fragment: &str,
    ) {
        assert_rejected(&evaluate(&fixture("vm-create"), &settings), &[fragment]);
    }

    #[test]
    fn requests_without_sidecars_read_no_profile() {
        // Not even a profile that is no object: requests without sidecars never read one.
        let settings = json!({"sidecarProfiles": [5, {"image": "*"}]});
        assert_eq!(
            evaluate(&fixture("vm-create-no-sidecar"), &settings),
            Verdict::default()
        );
        assert_eq!(evaluate(&vm_with("[]"), &settings), Verdict::default());
    }

    /// An UPDATE of the VM fixture whose constrained annotation goes from `old` to `new`, the
    /// sidecar annotation unchanged.
    fn vm_update_aperture(old: Option<&str>, new: Option<&str>) -> Value {
        let mut request = fixture("vm-update-unchanged");
        for (side, value) in [("oldObject", old), ("object", new)] {
            let map = request[side]["spec"]["template"]["metadata"]["annotations"]
                .as_object_mut()
                .expect("annotations");
            match value {
                Some(value) => map.insert(ARGS_KEY.to_owned(), json!(value)),
                None => map.remove(ARGS_KEY),
            };
        }
        request
    }

    const EXTRA_OPTION: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1 -drive file=/dev/sda";

    /// Rule 5: a location is unchanged only if its sidecar annotation and every annotation a
    /// governing profile constrains are.
    #[rstest]
    #[case::both_unchanged_and_allowed(Some(APERTURE), Some(APERTURE), json!([mmio_profile()]), None)]
    #[case::constrained_annotation_changed_to_a_bad_value(Some(APERTURE), Some(EXTRA_OPTION), json!([mmio_profile()]), Some("does not match"))]
    #[case::constrained_annotation_added(None, Some(EXTRA_OPTION), json!([mmio_profile()]), Some("does not match"))]
    #[case::constrained_annotation_changed_to_a_good_value(Some(APERTURE), Some("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=131072"), json!([mmio_profile()]), None)]
    // The profile pins another version, so a check would reject; the annotation it does not
    // constrain changed, so the location is unchanged and only warned about.
    #[case::unconstrained_annotation_changed(Some(APERTURE), Some(EXTRA_OPTION), json!([{"image": GPU_HOOK, "args": [["--version", "v1alpha2"]]}]), None)]
    fn updates_compare_the_constrained_annotations(
        #[case] old: Option<&str>,
        #[case] new: Option<&str>,
        #[case] profiles: Value,
        #[case] rejection: Option<&str>,
    ) {
        let verdict = evaluate(
            &vm_update_aperture(old, new),
            &profile_settings(profiles, json!({})),
        );
        match rejection {
            None => assert!(verdict.violations.is_empty(), "{verdict:?}"),
            Some(fragment) => assert_rejected(&verdict, &[fragment]),
        }
    }

    #[test]
    fn an_unchanged_location_whose_profile_now_fails_keeps_its_warning() {
        // The sidecar and its annotation were there before the profile pinned another version.
        let mut profile = mmio_profile();
        profile["args"] = json!([["--version", "v1alpha2"]]);
        let request = vm_update_aperture(Some(EXTRA_OPTION), Some(EXTRA_OPTION));
        let verdict = evaluate(&request, &profile_settings(json!([profile]), json!({})));
        assert!(verdict.violations.is_empty(), "{verdict:?}");
        assert_eq!(verdict.warnings.len(), 1, "{verdict:?}");
        assert!(
            verdict.warnings[0].contains("is unchanged by this update")
                && verdict.warnings[0].contains("args[1] \"v1alpha3\" does not match \"v1alpha2\"")
                && verdict.warnings[0].contains("does not match \"-fw_cfg"),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_running_vmi_whose_constrained_annotation_changes_is_checked() {
        let settings = profile_settings(json!([mmio_profile()]), json!({}));
        let mut request = set_annotations(fixture("vmi-create"), &[(ARGS_KEY, Some(APERTURE))]);
        request["operation"] = json!("UPDATE");
        request["oldObject"] = request["object"].clone();
        assert_eq!(evaluate(&request, &settings), Verdict::default());
        request["object"]["metadata"]["annotations"][ARGS_KEY] = json!(EXTRA_OPTION);
        assert_rejected(
            &evaluate(&request, &settings),
            &[
                "metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"][0]: sidecarProfiles[0]",
                "does not match",
            ],
        );
    }
}
