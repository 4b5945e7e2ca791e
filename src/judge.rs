//! The one judge of a hook sidecar, whatever it was read from: an entry of the
//! `hooks.kubevirt.io/hookSidecars` annotation, or a container of the virt-launcher Pod KubeVirt
//! renders from it. Both families hand it the same [`HookSidecar`], so they apply the same rules.
//!
//! The image must be in `allowedImages` (or the Setting of context-aware mode); `configMap`,
//! `pvc` and `sharedComputePath` need their switch; a `command` needs `allowCommand` or a
//! governing profile whose `command` lists it. When profiles govern the image, the sidecar must
//! satisfy at least one of them, and a rejection says why each failed.

use crate::host::HostCalls;
use crate::profiles::{AnnotationLookup, Profile};
use crate::reference::{ImageReference, names_registry};
use crate::request_rules::RequestRules;
use crate::sidecar::{HookSidecar, ImageOrigin};

/// What judging one request's sidecars takes: the rules built for the request, and what the
/// checks that need the host read (see [`Judge::violations`]).
pub struct Judge<'r> {
    /// The namespace of the request: where the objects a sidecar names (its ConfigMap) are.
    #[expect(
        dead_code,
        reason = "the seam for the checks that need the host (issues 23 and 24)"
    )]
    namespace: &'r str,
    /// The host, each question asked once per request.
    #[expect(
        dead_code,
        reason = "the seam for the checks that need the host (issues 23 and 24)"
    )]
    host: HostCalls<'r>,
    rules: RequestRules<'r>,
}

/// One sidecar prepared for judging: the image it runs, resolved once, and the profiles that
/// govern that image. What the profiles read beside the sidecar is looked up from here before it
/// is judged.
pub struct Prepared<'j> {
    sidecar: &'j HookSidecar,
    image: Image<'j>,
    governing: Vec<&'j Profile>,
}

/// The image a sidecar runs, as the rules see it.
enum Image<'j> {
    /// As rejections name it (`image "busybox"`, `no image (KubeVirt's sidecar-shim)`), and
    /// parsed (normalized) for matching.
    Resolved(ImageName<'j>, ImageReference<'j>),
    /// Why there is no image to match: the sidecar is rejected, its other fields still judged.
    Unresolved(String),
    /// A rendered container without image: nothing allows it, and nothing else is judged.
    Missing,
}

/// How rejections name an image (`image "busybox"`, `no image (KubeVirt's sidecar-shim)`):
/// written out only when one does.
enum ImageName<'j> {
    Written(&'j str),
    Shim,
}

impl std::fmt::Display for ImageName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Written(written) => write!(f, "image {written:?}"),
            Self::Shim => f.write_str("no image (KubeVirt's sidecar-shim)"),
        }
    }
}

impl<'r> Judge<'r> {
    pub fn new(namespace: &'r str, host: HostCalls<'r>, rules: RequestRules<'r>) -> Self {
        Self {
            namespace,
            host,
            rules,
        }
    }

    /// `sidecar` with its image resolved and the profiles that govern it found.
    pub fn prepare<'j>(&'j self, sidecar: &'j HookSidecar, origin: ImageOrigin) -> Prepared<'j> {
        let image = self.resolve_image(sidecar, origin);
        let governing = match &image {
            Image::Resolved(_, image) => self.rules.policy.profiles.governing(image),
            Image::Unresolved(_) | Image::Missing => Vec::new(),
        };
        Prepared {
            sidecar,
            image,
            governing,
        }
    }

    /// Every reason why the sidecar is not allowed; empty when it is. `annotations` are those the
    /// sidecar reads (the map that carries the sidecar annotation; on a VMI, its own; on a
    /// launcher Pod, the VMI's, which KubeVirt copies onto it).
    pub fn violations(
        &self,
        prepared: &Prepared,
        annotations: &dyn AnnotationLookup,
    ) -> Vec<String> {
        let policy = &self.rules.policy;
        let sidecar = prepared.sidecar;
        let mut reasons = Vec::new();
        match &prepared.image {
            Image::Missing => return vec!["the container has no image".to_owned()],
            Image::Unresolved(reason) => reasons.push(reason.clone()),
            Image::Resolved(written, image) => {
                match self.rules.allows(image) {
                    Ok(true) => {}
                    Ok(false) => reasons.push(match self.rules.setting_name() {
                        Some(setting) => format!(
                            "{written} ({image}) is not in allowedImages nor in Setting \
                             {setting:?}"
                        ),
                        None => format!("{written} ({image}) is not in allowedImages"),
                    }),
                    Err(e) => reasons.push(format!("invalid policy settings: {e}")),
                }
                if prepared.governing.is_empty() && policy.profiles_required && reasons.is_empty() {
                    reasons.push(format!(
                        "{written} ({image}) is allowed, but no sidecarProfiles entry governs \
                         it, and profilesRequired is true"
                    ));
                }
            }
        }
        reasons.extend(self.escape_hatch_violations(sidecar));
        if prepared.governing.is_empty() {
            reasons.extend(self.command_violation(sidecar));
        } else {
            reasons.extend(self.profile_violations(prepared, annotations));
        }
        // Checks that need the host go here, after the rules that need nothing but the request:
        // they ask `self.host` (each question once per request) about what the sidecar names, in
        // `self.namespace`, and add their reasons.
        reasons
    }

    /// The image as the rejection names it, and as matched; or why there is none to match.
    fn resolve_image<'j>(&'j self, sidecar: &'j HookSidecar, origin: ImageOrigin) -> Image<'j> {
        let policy = &self.rules.policy;
        match (sidecar.explicit_image(), origin) {
            (Some(written), _) => match ImageReference::parse(written) {
                Ok(_) if policy.require_registry && !names_registry(written) => {
                    Image::Unresolved(format!(
                        "image {written:?} does not name its registry, and requireRegistry is \
                         true (a runtime may look a short name up in any of its search \
                         registries)"
                    ))
                }
                Ok(reference) => Image::Resolved(ImageName::Written(written), reference),
                Err(e) => Image::Unresolved(format!(
                    "image {written:?} is not a valid image reference: {e}"
                )),
            },
            (None, ImageOrigin::Container) => Image::Missing,
            (None, ImageOrigin::Annotation) => match &policy.sidecar_shim_image {
                Some(shim) => Image::Resolved(ImageName::Shim, shim.clone()),
                None => Image::Unresolved(
                    "no image: KubeVirt would run its sidecar-shim, and sidecarShimImage is not \
                     set, so the policy cannot tell which image that is"
                        .to_owned(),
                ),
            },
        }
    }

    /// `configMap`, `pvc` and `sharedComputePath`: each behind its own switch, whatever the
    /// profiles.
    fn escape_hatch_violations(&self, sidecar: &HookSidecar) -> Vec<String> {
        let policy = &self.rules.policy;
        let mut reasons = Vec::new();
        if let Some(config_map) = &sidecar.config_map {
            if config_map.name.is_empty() {
                reasons.push(
                    "configMap has no name: KubeVirt would look up a ConfigMap named \"\", \
                     so the VM could not start"
                        .to_owned(),
                );
            }
            if !policy.allow_config_map {
                reasons.push(format!(
                    "configMap {:?} mounts a user script at {:?}, and allowConfigMap is false",
                    config_map.name, config_map.hook_path
                ));
            }
        }
        if let Some(pvc) = &sidecar.pvc {
            if pvc.name.is_empty() {
                reasons.push(
                    "pvc has no name: KubeVirt would mount a claim named \"\", \
                     so the VM could not start"
                        .to_owned(),
                );
            }
            if !policy.allow_pvc {
                reasons.push(format!(
                    "pvc {:?} mounts user data in the sidecar, and allowPVC is false",
                    pvc.name
                ));
            }
            if let (Some(path), false) =
                (pvc.shared_compute_path(), policy.allow_shared_compute_path)
            {
                reasons.push(format!(
                    "pvc.sharedComputePath {path:?} mounts user data in the compute container, \
                     and allowSharedComputePath is false"
                ));
            }
        }
        reasons
    }

    fn command_violation(&self, sidecar: &HookSidecar) -> Option<String> {
        (!sidecar.command.is_empty() && !self.rules.policy.allow_command).then(|| {
            format!(
                "command {:?} replaces the image's entrypoint, and allowCommand is false",
                sidecar.command
            )
        })
    }

    /// Nothing when the sidecar satisfies one governing profile; else, for each, why not.
    fn profile_violations(
        &self,
        prepared: &Prepared,
        annotations: &dyn AnnotationLookup,
    ) -> Vec<String> {
        let sidecar = prepared.sidecar;
        let mut reasons = Vec::new();
        for profile in &prepared.governing {
            let mut failed = profile.mismatches(&sidecar.command, &sidecar.args, annotations);
            // A profile with `command` alternatives already judged the command; without, the
            // profile leaves it to `allowCommand`.
            if !profile.constrains_command() {
                failed.extend(self.command_violation(sidecar));
            }
            if failed.is_empty() {
                return Vec::new();
            }
            reasons.extend(
                failed
                    .into_iter()
                    .map(|reason| format!("{profile}: {reason}")),
            );
        }
        reasons
    }
}

impl Prepared<'_> {
    /// The annotations the profiles governing the sidecar read (sorted, without duplicates):
    /// what must be looked up beside it, and what must not change for an update to leave it as
    /// it was.
    pub fn annotation_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = (self.governing.iter())
            .flat_map(|profile| profile.annotation_keys())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::PolicyServer;
    use crate::settings::Settings;
    use crate::sidecar::{ConfigMapSource, PvcSource};
    use rstest::rstest;
    use serde_json::json;
    use std::collections::BTreeMap;

    const HOOK: &str = "registry.example.com/hooks/smbios:v1";
    const KEY: &str = "smbios.vm.kubevirt.io/baseBoardManufacturer";

    fn settings(extra: serde_json::Value) -> Settings {
        let mut settings = json!({
            "allowedImages": [HOOK],
            "sidecarProfiles": [{"image": HOOK, "args": [["--version", "v1alpha3"]], "annotations": {KEY: "[A-Za-z ]{1,32}"}}],
        });
        if let serde_json::Value::Object(extra) = extra {
            settings.as_object_mut().expect("object").extend(extra);
        }
        serde_json::from_value(settings).expect("settings")
    }

    fn judge(settings: &Settings) -> Judge<'_> {
        let policy = settings.rules().expect("valid");
        let (rules, _) = RequestRules::new(policy, None);
        Judge::new("default", HostCalls::new(&PolicyServer), rules)
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    /// A sidecar built as the launcher-Pod reader builds one from a container and its mounts,
    /// judged beside the VMI's annotations: the same decision as for an annotation entry.
    #[rstest]
    #[case::pinned(HOOK, &[], &["--version", "v1alpha3"], None, None, "Acme", &[])]
    #[case::other_args(HOOK, &[], &["--version", "v1alpha2"], None, None, "Acme", &["args[1] \"v1alpha2\" does not match \"v1alpha3\""])]
    #[case::annotation(HOOK, &[], &["--version", "v1alpha3"], None, None, "Acme; rm -rf /", &["annotation \"smbios.vm.kubevirt.io/baseBoardManufacturer\" \"Acme; rm -rf /\" does not match"])]
    #[case::command(HOOK, &["/bin/sh"], &["--version", "v1alpha3"], None, None, "Acme", &["command [\"/bin/sh\"] replaces the image's entrypoint, and allowCommand is false"])]
    #[case::config_map(HOOK, &[], &["--version", "v1alpha3"], Some(("cm", "/hook")), None, "Acme", &["configMap \"cm\" mounts a user script at \"/hook\", and allowConfigMap is false"])]
    #[case::shared_compute_path(HOOK, &[], &["--version", "v1alpha3"], None, Some(("d", "/s")), "Acme", &["pvc \"d\" mounts user data", "pvc.sharedComputePath \"/s\""])]
    #[case::unlisted("evil:1", &[], &[], None, None, "", &["image \"evil:1\" (docker.io/library/evil:1) is not in allowedImages"])]
    #[case::invalid("Evil", &[], &[], None, None, "", &["image \"Evil\" is not a valid image reference"])]
    fn one_decision_for_any_source(
        #[case] image: &str,
        #[case] command: &[&str],
        #[case] args: &[&str],
        #[case] config_map: Option<(&str, &str)>,
        #[case] pvc: Option<(&str, &str)>,
        #[case] manufacturer: &str,
        #[case] expected: &[&str],
    ) {
        let settings = settings(json!({}));
        let judge = judge(&settings);
        let sidecar = HookSidecar {
            image: Some(image.to_owned()),
            image_pull_policy: None,
            command: strings(command),
            args: strings(args),
            config_map: config_map.map(|(name, hook_path)| ConfigMapSource {
                name: name.to_owned(),
                key: String::new(),
                hook_path: hook_path.to_owned(),
            }),
            pvc: pvc.map(|(name, shared_compute_path)| PvcSource {
                name: name.to_owned(),
                volume_path: String::new(),
                shared_compute_path: shared_compute_path.to_owned(),
            }),
        };
        let annotations = BTreeMap::from([(KEY.to_owned(), manufacturer.to_owned())]);
        for origin in [ImageOrigin::Annotation, ImageOrigin::Container] {
            let reasons = judge.violations(&judge.prepare(&sidecar, origin), &annotations);
            assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
            for (reason, fragment) in reasons.iter().zip(expected) {
                assert!(reason.contains(fragment), "{fragment:?} not in {reason:?}");
            }
        }
    }

    /// Without image, an annotation entry is KubeVirt's sidecar-shim; a rendered container is a
    /// container without image, and nothing else of it matters.
    #[rstest]
    #[case::entry(ImageOrigin::Annotation, &["no image: KubeVirt would run its sidecar-shim", "configMap has no name", "allowConfigMap is false"])]
    #[case::container(ImageOrigin::Container, &["the container has no image"])]
    fn no_image_depends_on_where_it_was_read(
        #[case] origin: ImageOrigin,
        #[case] expected: &[&str],
    ) {
        let settings = settings(json!({}));
        let judge = judge(&settings);
        let sidecar = HookSidecar {
            image: Some(String::new()),
            config_map: Some(ConfigMapSource::default()),
            ..HookSidecar::default()
        };
        let reasons = judge.violations(&judge.prepare(&sidecar, origin), &BTreeMap::new());
        assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
        for (reason, fragment) in reasons.iter().zip(expected) {
            assert!(reason.contains(fragment), "{fragment:?} not in {reason:?}");
        }
    }

    #[test]
    fn the_annotations_read_are_those_of_the_governing_profiles() {
        let settings = settings(json!({"sidecarProfiles": [
            {"image": HOOK, "annotations": {KEY: ".*"}, "requiredAnnotations": ["a/b", KEY]},
            {"image": "other:1", "annotations": {"c/d": ".*"}},
        ]}));
        let judge = judge(&settings);
        let sidecar = HookSidecar {
            image: Some(HOOK.to_owned()),
            ..HookSidecar::default()
        };
        let prepared = judge.prepare(&sidecar, ImageOrigin::Annotation);
        assert_eq!(prepared.annotation_keys(), ["a/b", KEY]);
        let shim = HookSidecar::default();
        let prepared = judge.prepare(&shim, ImageOrigin::Annotation);
        assert!(prepared.annotation_keys().is_empty());
    }
}
