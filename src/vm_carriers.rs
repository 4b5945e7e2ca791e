//! The KubeVirt objects that carry the `hooks.kubevirt.io/hookSidecars` annotation to a VM (VMs,
//! VMIs, their replica sets and pools, instancetypes and preferences): where each kind carries
//! it, and the sidecars of each location, decoded as virt-controller decodes them.
//!
//! Each location is a [`Site`]: an UPDATE that leaves a location's annotation, and the annotations
//! its profiles read beside it, as they were is not rejected for it.

use std::cell::OnceCell;

use crate::annotation::{self, HOOK_SIDECARS_ANNOTATION};
use crate::annotation_maps::{AnnotationLocation, ObjectMaps, ProfileAnnotations};
use crate::sidecar::{Extraction, Found, ImageOrigin, Site};

const fn effective(path: &'static [&'static str]) -> AnnotationLocation {
    AnnotationLocation {
        path,
        effective: true,
    }
}

pub const VMI: &[AnnotationLocation] = &[effective(&["metadata", "annotations"])];
pub const VM: &[AnnotationLocation] = &[
    effective(&["spec", "template", "metadata", "annotations"]),
    AnnotationLocation {
        path: &["metadata", "annotations"],
        effective: false,
    },
];
pub const REPLICA_SET: &[AnnotationLocation] =
    &[effective(&["spec", "template", "metadata", "annotations"])];
pub const POOL: &[AnnotationLocation] = &[effective(&[
    "spec",
    "virtualMachineTemplate",
    "spec",
    "template",
    "metadata",
    "annotations",
])];
pub const INSTANCETYPE: &[AnnotationLocation] = &[effective(&["spec", "annotations"])];

/// A request's object, read at its kind's locations.
pub struct Carriers<'p> {
    object: ObjectMaps<'p>,
    /// The object before an UPDATE.
    old_object: Option<ObjectMaps<'p>>,
    locations: &'static [AnnotationLocation],
    /// The annotation's value at each location.
    values: Vec<Option<String>>,
    sites: Vec<Site>,
    /// What the old object has at each location, read when an UPDATE first needs it; `None`
    /// when it cannot be read.
    old: OnceCell<Option<(Vec<Option<String>>, ProfileAnnotations)>>,
}

/// Reads the annotation at every location of `object` (of a `kind` carried at `locations`) and
/// decodes it. The error rejects the request.
pub fn extract<'p>(
    kind: &str,
    operation: &str,
    object: Option<ObjectMaps<'p>>,
    old_object: Option<ObjectMaps<'p>>,
    locations: &'static [AnnotationLocation],
) -> Result<Carriers<'p>, String> {
    let Some(object) = object else {
        return Err(format!("the {operation} request has no object to check"));
    };
    let values = object.values(locations, &[HOOK_SIDECARS_ANNOTATION])?;
    let sites = locations
        .iter()
        .zip(&values)
        .enumerate()
        .filter_map(|(index, (location, value))| {
            Some(site(kind, index, location, value.as_deref()?))
        })
        .collect();
    Ok(Carriers {
        object,
        old_object: old_object.filter(|_| operation == "UPDATE"),
        locations,
        values,
        sites,
        old: OnceCell::new(),
    })
}

/// The sidecars of the annotation `value` at `location`.
fn site(kind: &str, index: usize, location: &AnnotationLocation, value: &str) -> Site {
    let sidecars = annotation::decode(value).map(|sidecars| {
        (sidecars.into_iter().enumerate())
            .map(|(entry, sidecar)| Found {
                entry: Some(entry),
                sidecar,
                origin: ImageOrigin::Annotation,
                problems: Vec::new(),
            })
            .collect()
    });
    let warnings = if location.effective {
        Vec::new()
    } else {
        vec![format!(
            "{location} has no effect on a {kind}: KubeVirt reads hook sidecars from \
             spec.template.metadata.annotations"
        )]
    };
    Site {
        place: location.to_string(),
        annotation_map: index,
        sidecars,
        warnings,
    }
}

impl Extraction for Carriers<'_> {
    fn sites(&self) -> &[Site] {
        &self.sites
    }

    fn profile_annotations(&self, keys: &[&str]) -> Result<ProfileAnnotations, String> {
        ProfileAnnotations::read(&self.object, self.locations, keys)
    }

    fn is_unchanged(&self, site: usize, keys: &[&str], now: &ProfileAnnotations) -> bool {
        let Some(old_object) = &self.old_object else {
            return false;
        };
        let old = self.old.get_or_init(|| {
            let values = (old_object.values(self.locations, &[HOOK_SIDECARS_ANNOTATION])).ok()?;
            let read = ProfileAnnotations::read(old_object, self.locations, &now.keys()).ok()?;
            Some((values, read))
        });
        let Some((old_values, old_read)) = old else {
            return false;
        };
        let location = self.sites[site].annotation_map;
        let new = LocationFingerprint::of(&self.values, now, keys, location);
        LocationFingerprint::of(old_values, old_read, keys, location).is_unchanged_by(&new)
    }
}

/// What an UPDATE compares at one annotation location to tell whether it changed the sidecars
/// there. Anything that can change which containers KubeVirt runs from this location, or what
/// they are allowed, belongs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFingerprint<'a> {
    /// The hook-sidecar annotation's value, as written (`None` when absent).
    pub sidecars: Option<&'a str>,
    /// Every annotation that a profile governing these sidecars constrains, with its value
    /// beside the sidecar annotation (`None` when absent): the sidecar reads it again at the next
    /// start or migration.
    pub constrained: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> LocationFingerprint<'a> {
    fn of(
        values: &'a [Option<String>],
        read: &'a ProfileAnnotations,
        keys: &[&'a str],
        location: usize,
    ) -> Self {
        Self {
            sidecars: values.get(location).and_then(Option::as_deref),
            constrained: keys
                .iter()
                .map(|key| (*key, read.get(location, key)))
                .collect(),
        }
    }

    /// A location is unchanged when everything in its fingerprint is. A value moved from one
    /// location to another changes both, so the location it moved to is checked.
    pub fn is_unchanged_by(&self, new: &Self) -> bool {
        self == new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::HOOK_SIDECARS_ANNOTATION;
    use crate::annotation_maps::MAX_LOCATIONS;
    use crate::test_support::*;
    use crate::verdict::{Verdict, Violation};
    use rstest::rstest;
    use serde_json::{Value, json};

    #[test]
    fn no_kind_has_more_locations_than_one_pass_reads() {
        for locations in [VMI, VM, REPLICA_SET, POOL, INSTANCETYPE] {
            assert!(locations.len() <= MAX_LOCATIONS);
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

    #[test]
    fn more_entries_than_kubevirt_should_run_are_rejected() {
        let sidecars = format!(
            "[{}]",
            vec![format!("{{\"image\":\"{GPU_HOOK}\"}}"); 33].join(",")
        );
        let message = message_of(&sidecars, &gpu_settings());
        assert!(message.contains("more than 32 entries"), "{message}");
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
