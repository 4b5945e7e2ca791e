//! The one judge of a hook sidecar, whatever it was read from: an entry of the
//! `hooks.kubevirt.io/hookSidecars` annotation, or a container of the virt-launcher Pod KubeVirt
//! renders from it. Both families hand it the same [`HookSidecar`], so they apply the same rules.
//!
//! The image must be in `allowedImages` (or the Setting of context-aware mode); `configMap`,
//! `pvc` and `sharedComputePath` need their switch; a `command` needs `allowCommand` or a
//! governing profile whose `command` lists it. When profiles govern the image, the sidecar must
//! satisfy them as `Profiles::governance` combines them (one of those of its tag; by digest,
//! those of every tag it may be), and a rejection says why each failed. With `allowedScripts`
//! (and without `allowConfigMap`), a `configMap` is allowed by the script it holds, read through
//! the host ([`Judge::host_violations`], [`crate::scripts`]); an image that a `signatures`
//! requirement governs, by its signatures, which the host verifies ([`crate::signatures`]).

use crate::host::HostCalls;
use crate::profiles::{AnnotationLookup, Governance};
use crate::reference::{ImageReference, names_registry};
use crate::request_rules::RequestRules;
use crate::scripts::script_violation;
use crate::sidecar::{ConfigMapSource, HookSidecar, ImageOrigin};
use crate::signatures::SignatureRequirement;

/// What judging one request's sidecars takes: the rules built for the request, and what the
/// checks that need the host read (see [`Judge::violations`]).
pub struct Judge<'r> {
    /// The namespace of the request: where the objects a sidecar names (its ConfigMap) are.
    namespace: &'r str,
    /// The host, each question asked once per request.
    host: HostCalls<'r>,
    rules: RequestRules<'r>,
}

/// One sidecar prepared for judging: the image it runs, resolved once, and the profiles that
/// govern that image (`Profiles::governance`: by what runs, so a digest is governed by the
/// profiles of every tag it may be). What the profiles read beside the sidecar is looked up from here before it
/// is judged.
pub struct Prepared<'j> {
    sidecar: &'j HookSidecar,
    image: Image<'j>,
    governance: Governance<'j>,
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
        let governance = match &image {
            Image::Resolved(_, image) => self.rules.policy.profiles.governance(image),
            Image::Unresolved(_) | Image::Missing => Governance::default(),
        };
        Prepared {
            sidecar,
            image,
            governance,
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
                if prepared.governance.is_empty() && policy.profiles_required && reasons.is_empty()
                {
                    reasons.push(format!(
                        "{written} ({image}) is allowed, but no sidecarProfiles entry governs \
                         it, and profilesRequired is true"
                    ));
                }
            }
        }
        reasons.extend(self.escape_hatch_violations(sidecar));
        if prepared.governance.is_empty() {
            reasons.extend(self.command_violation(sidecar));
        } else {
            reasons.extend(self.profile_violations(prepared, annotations));
        }
        // The checks that need the host are `host_violations`: the caller skips them for a site
        // that an UPDATE leaves as it was, so that such an update asks the host nothing.
        reasons
    }

    /// The ConfigMap whose script the host must be asked about, if the sidecar has one to judge
    /// that way: with `allowedScripts` and without `allowConfigMap` (which allows any script).
    pub fn script_to_check<'j>(&self, prepared: &Prepared<'j>) -> Option<&'j ConfigMapSource> {
        let policy = &self.rules.policy;
        let config_map = prepared.sidecar.config_map.as_ref()?;
        let checked = !policy.allow_config_map
            && !policy.allowed_scripts.is_empty()
            && !config_map.name.is_empty()
            && !matches!(prepared.image, Image::Missing);
        checked.then_some(config_map)
    }

    /// Whether the sidecar has a check that needs the host: a script to approve, or an image that
    /// a `signatures` requirement governs.
    pub fn needs_host(&self, prepared: &Prepared) -> bool {
        self.script_to_check(prepared).is_some()
            || !self.signature_requirements(prepared).is_empty()
    }

    /// The reasons of the checks that need the host, after [`Judge::violations`]: whether the
    /// sidecar's ConfigMap holds an approved script ([`script_violation`]), and whether its image
    /// is signed as every `signatures` requirement that governs it says.
    pub fn host_violations(&self, prepared: &Prepared) -> Vec<String> {
        let mut reasons: Vec<String> = self.script_violation(prepared).into_iter().collect();
        reasons.extend(self.signature_violations(prepared));
        reasons
    }

    fn script_violation(&self, prepared: &Prepared) -> Option<String> {
        let config_map = self.script_to_check(prepared)?;
        if self.namespace.is_empty() {
            // A cluster-scoped carrier (a cluster instancetype or preference): its VMs, in any
            // namespace, would each read a ConfigMap of that name in their own.
            return Some(format!(
                "configMap {:?}: the object has no namespace, so the ConfigMap whose script \
                 allowedScripts must list cannot be read (each VM reads one in its own \
                 namespace): put the hook sidecar on the VM",
                config_map.name
            ));
        }
        let answer = self
            .host
            .config_map(self.namespace, &config_map.name, &config_map.key);
        script_violation(
            self.namespace,
            config_map,
            &answer,
            &self.rules.policy.allowed_scripts,
        )
    }

    /// The `signatures` requirements that govern the sidecar's image, with their index.
    fn signature_requirements(&self, prepared: &Prepared) -> Vec<(usize, &SignatureRequirement)> {
        let Image::Resolved(_, image) = &prepared.image else {
            return Vec::new();
        };
        (self.rules.policy.signatures.iter().enumerate())
            .filter(|(_, requirement)| requirement.governs(image))
            .collect()
    }

    /// For each governing requirement whose verification failed, what the host said. The image
    /// verified is the normalized reference (`docker.io/library/busybox:latest`): what the
    /// runtime pulls, whatever the request wrote.
    fn signature_violations(&self, prepared: &Prepared) -> Vec<String> {
        let Image::Resolved(written, image) = &prepared.image else {
            return Vec::new();
        };
        let requirements = self.signature_requirements(prepared);
        if requirements.is_empty() {
            return Vec::new();
        }
        let normalized = image.to_string();
        let mut reasons = Vec::new();
        for (index, requirement) in requirements {
            let checks = requirement.checks();
            for check in 0..checks {
                let what = match requirement.trust {
                    "certificates" => format!("certificates[{check}]"),
                    trust => trust.to_owned(),
                };
                match &*(self.host).signature(&normalized, (index, requirement), check) {
                    Ok(verified) if verified.trusted => {}
                    Ok(_) => reasons.push(format!(
                        "{written} ({image}): signatures[{index}] ({what}): the host does not \
                         trust its signatures"
                    )),
                    Err(e) => reasons.push(format!(
                        "{written} ({image}): signatures[{index}] ({what}): not verified: {e}"
                    )),
                }
            }
        }
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
            // With allowedScripts, the script decides (`host_violations`).
            if !policy.allow_config_map && policy.allowed_scripts.is_empty() {
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

    /// Nothing when the sidecar satisfies the profiles that govern it (`Governance::judge`);
    /// else, for each that fails, why.
    fn profile_violations(
        &self,
        prepared: &Prepared,
        annotations: &dyn AnnotationLookup,
    ) -> Vec<String> {
        let sidecar = prepared.sidecar;
        prepared.governance.judge(|profile| {
            let mut failed = profile.mismatches(
                &sidecar.command,
                &sidecar.args,
                annotations,
                &self.rules.matching,
            );
            // A profile with `command` alternatives already judged the command; without, the
            // profile leaves it to `allowCommand`.
            if !profile.constrains_command() {
                failed.extend(self.command_violation(sidecar));
            }
            failed
        })
    }
}

impl<'j> Prepared<'j> {
    /// The annotations the profiles governing the sidecar read (sorted, without duplicates):
    /// what must be looked up beside it, and what must not change for an update to leave it as
    /// it was.
    pub fn annotation_keys(&self) -> Vec<&'j str> {
        let mut keys: Vec<&str> = (self.governance.profiles().into_iter())
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
    use crate::annotation::HOOK_SIDECARS_ANNOTATION;
    use crate::host::PolicyServer;
    use crate::settings::Settings;
    use crate::sidecar::{ConfigMapSource, PvcSource};
    use crate::test_support::*;
    use crate::verdict::Verdict;
    use rstest::rstest;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    const HOOK: &str = "registry.example.com/hooks/smbios:v1";
    const KEY: &str = "smbios.vm.kubevirt.io/baseBoardManufacturer";

    fn settings(extra: serde_json::Value) -> Settings<'static> {
        let mut settings = json!({
            "allowedImages": [HOOK],
            "sidecarProfiles": [{"image": HOOK, "args": [["--version", "v1alpha3"]], "annotations": {KEY: "[A-Za-z ]{1,32}"}}],
        });
        if let serde_json::Value::Object(extra) = extra {
            settings.as_object_mut().expect("object").extend(extra);
        }
        crate::test_support::decoded_settings(&settings)
    }

    fn judge<'s>(settings: &'s Settings) -> Judge<'s> {
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
    #[case::pinned(json!([mmio_profile()]), gpu_sidecar(), Some(APERTURE))]
    #[case::annotation_absent(json!([mmio_profile()]), gpu_sidecar(), None)]
    // A profile of another tag does not govern (one that names this tag with a digest does:
    // tests/profiles_red_team.rs).
    #[case::other_tag_does_not_govern(
        json!([{"image": "registry.example.com/kubevirt-hooks/qemu-commandline:v1.3.0", "args": [[]]}]),
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
}

/// Approved scripts (`allowedScripts`): the judge asks a fake host for the ConfigMap.
#[cfg(test)]
mod script_tests {
    use super::*;
    use crate::host::Host;
    use crate::scripts::{ConfigMapKey, sha256_hex};
    use crate::settings::Settings;
    use rstest::rstest;
    use serde_json::json;
    use std::cell::Cell;
    use std::collections::BTreeMap;

    const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.7.0";
    const SCRIPT: &str = "#!/bin/sh\nexec /usr/bin/mmio-aperture \"$@\"\n";

    /// One ConfigMap `gpu-hooks` in namespace `vms`, or a failed lookup; counts the lookups.
    struct Cluster {
        answer: Result<Option<ConfigMapKey>, String>,
        lookups: Cell<usize>,
    }

    impl Host for Cluster {
        fn get_setting(&self, _: &str) -> Result<Option<crate::SettingObject>, String> {
            Err("no Setting in these tests".to_owned())
        }

        fn get_config_map(
            &self,
            namespace: &str,
            name: &str,
            key: &str,
        ) -> Result<Option<ConfigMapKey>, String> {
            assert_eq!(
                (namespace, name, key),
                ("vms", "gpu-hooks", "onDefineDomain")
            );
            self.lookups.set(self.lookups.get() + 1);
            self.answer.clone()
        }
    }

    fn data(immutable: bool, script: &str) -> Result<Option<ConfigMapKey>, String> {
        Ok(Some(ConfigMapKey {
            immutable,
            data: Some(script.to_owned()),
            binary_data: None,
        }))
    }

    fn binary(immutable: bool, base64: &str) -> Result<Option<ConfigMapKey>, String> {
        Ok(Some(ConfigMapKey {
            immutable,
            data: None,
            binary_data: Some(base64.to_owned()),
        }))
    }

    fn settings(extra: serde_json::Value) -> Settings<'static> {
        let mut settings = json!({
            "allowedImages": [SHIM],
            "sidecarShimImage": SHIM,
            "allowedScripts": [{"sha256": sha256_hex(SCRIPT.as_bytes()), "description": "MMIO"}],
        });
        if let serde_json::Value::Object(extra) = extra {
            settings.as_object_mut().expect("object").extend(extra);
        }
        crate::test_support::decoded_settings(&settings)
    }

    fn shim_with_script(key: &str) -> HookSidecar {
        HookSidecar {
            args: vec!["--version".into(), "v1alpha3".into()],
            config_map: Some(ConfigMapSource {
                name: "gpu-hooks".into(),
                key: key.into(),
                hook_path: "/usr/bin/onDefineDomain".into(),
            }),
            ..HookSidecar::default()
        }
    }

    /// Every reason, the judge's and the host's, for an annotation entry and for the container
    /// rendered from it (the shim by its real name), which must agree.
    fn reasons(settings: &Settings, namespace: &str, cluster: &Cluster) -> Vec<String> {
        let mut each = Vec::new();
        for (origin, image) in [
            (ImageOrigin::Annotation, None),
            (ImageOrigin::Container, Some(SHIM.to_owned())),
        ] {
            let rules = RequestRules::new(settings.rules().expect("valid"), None).0;
            let judge = Judge::new(namespace, HostCalls::new(cluster), rules);
            let sidecar = HookSidecar {
                image,
                ..shim_with_script("onDefineDomain")
            };
            let prepared = judge.prepare(&sidecar, origin);
            let mut reasons = judge.violations(&prepared, &BTreeMap::new());
            reasons.extend(judge.host_violations(&prepared));
            each.push(reasons);
        }
        assert_eq!(each[0], each[1], "the annotation and the Pod agree");
        each.swap_remove(0)
    }

    const OBJECT: &str = "configMap \"gpu-hooks\" (namespace \"vms\"), key \"onDefineDomain\": ";

    #[rstest]
    #[case::listed_and_immutable(data(true, SCRIPT), None)]
    #[case::binary_data(
        binary(true, "IyEvYmluL3NoCmV4ZWMgL3Vzci9iaW4vbW1pby1hcGVydHVyZSAiJEAiCg=="),
        None
    )]
    #[case::mutable(data(false, SCRIPT), Some(format!("the script in data (sha256 {}) is in allowedScripts, but the ConfigMap is not immutable, so it could change under a running VM: set immutable: true", sha256_hex(SCRIPT.as_bytes()))))]
    #[case::not_listed(data(true, "#!/bin/sh\nexec /bin/sh\n"), Some(format!("the script in data (sha256 {}) is not in allowedScripts", sha256_hex(b"#!/bin/sh\nexec /bin/sh\n"))))]
    #[case::not_listed_nor_immutable(data(false, "x"), Some(format!("the script in data (sha256 {}) is not in allowedScripts, and the ConfigMap is not immutable", sha256_hex(b"x"))))]
    // Digests are of bytes: the same text with CRLF line ends, or without its last newline, is
    // another script.
    #[case::crlf(data(true, &SCRIPT.replace('\n', "\r\n")), Some(format!("(sha256 {}) is not in allowedScripts", sha256_hex(SCRIPT.replace('\n', "\r\n").as_bytes()))))]
    #[case::no_trailing_newline(data(true, SCRIPT.trim_end()), Some(format!("(sha256 {}) is not in allowedScripts", sha256_hex(SCRIPT.trim_end().as_bytes()))))]
    #[case::binary_one_byte_off(binary(true, "IyEvYmluL3NoCmV4ZWMgL3Vzci9iaW4vbW1pby1hcGVydHVyZSAiJEAiCgo="), Some(format!("the script in binaryData (sha256 {}) is not in allowedScripts", sha256_hex(format!("{SCRIPT}\n").as_bytes()))))]
    #[case::not_base64(binary(true, "not base64!"), Some("binaryData is not base64 \"not base64!\"".to_owned()))]
    #[case::key_missing(Ok(Some(ConfigMapKey { immutable: true, data: None, binary_data: None })), Some("no such key in data or binaryData".to_owned()))]
    #[case::in_both(Ok(Some(ConfigMapKey { immutable: true, data: Some(SCRIPT.into()), binary_data: Some(String::new()) })), Some("the key is in both data and binaryData".to_owned()))]
    #[case::too_large(data(true, &"x".repeat((1 << 20) + 1)), Some("data holds 1048577 bytes, more than a ConfigMap can hold (1048576): too large to be a script".to_owned()))]
    #[case::binary_too_large(binary(true, &"A".repeat(1_400_000)), Some("binaryData holds 1050000 bytes".to_owned()))]
    #[case::missing(Ok(None), Some("the ConfigMap does not exist".to_owned()))]
    #[case::lookup_error(Err("error invoking host capability kubernetes.get_resource: Host error: Callback evaluation failure: the server is unreachable".into()), Some("cannot read the ConfigMap, so cannot tell whether it holds a script of allowedScripts: error invoking host capability kubernetes.get_resource: Host error: Callback evaluation failure: the server is unreachable".to_owned()))]
    #[case::not_granted(Err("error invoking host capability kubernetes.get_resource: Host error: Policy has not been granted access to Kubernetes v1/ConfigMap resources. The violation has been reported.".into()), Some("cannot read the ConfigMap, so cannot tell whether it holds a script of allowedScripts: error invoking host capability kubernetes.get_resource: Host error: Policy has not been granted access to Kubernetes v1/ConfigMap resources".to_owned()))]
    fn a_config_map_is_allowed_by_its_script(
        #[case] answer: Result<Option<ConfigMapKey>, String>,
        #[case] rejection: Option<String>,
    ) {
        let cluster = Cluster {
            answer,
            lookups: Cell::new(0),
        };
        let reasons = reasons(&settings(json!({})), "vms", &cluster);
        match rejection {
            None => assert!(reasons.is_empty(), "{reasons:?}"),
            Some(fragment) => {
                assert_eq!(reasons.len(), 1, "{reasons:?}");
                assert!(reasons[0].starts_with(OBJECT), "{reasons:?}");
                assert!(
                    reasons[0].contains(&fragment),
                    "{fragment:?} not in {reasons:?}"
                );
            }
        }
        assert_eq!(cluster.lookups.get(), 2, "one lookup per request");
    }

    /// Without `allowedScripts`, or with `allowConfigMap: true` (any script), nothing is asked.
    #[rstest]
    #[case::no_scripts(json!({"allowedScripts": []}), &["configMap \"gpu-hooks\" mounts a user script at \"/usr/bin/onDefineDomain\", and allowConfigMap is false"])]
    #[case::any_script(json!({"allowedScripts": [], "allowConfigMap": true}), &[])]
    fn the_host_is_asked_only_for_allowed_scripts(
        #[case] extra: serde_json::Value,
        #[case] expected: &[&str],
    ) {
        let cluster = Cluster {
            answer: Err("not asked".into()),
            lookups: Cell::new(0),
        };
        assert_eq!(reasons(&settings(extra), "vms", &cluster), expected);
        assert_eq!(cluster.lookups.get(), 0);
    }

    #[test]
    fn a_cluster_scoped_carrier_cannot_name_a_config_map() {
        let cluster = Cluster {
            answer: data(true, SCRIPT),
            lookups: Cell::new(0),
        };
        let reasons = reasons(&settings(json!({})), "", &cluster);
        assert_eq!(
            reasons,
            [
                "configMap \"gpu-hooks\": the object has no namespace, so the ConfigMap whose script allowedScripts must list cannot be read (each VM reads one in its own namespace): put the hook sidecar on the VM"
            ]
        );
        assert_eq!(cluster.lookups.get(), 0);
    }

    /// Profiles still govern the shim's args; the script check comes beside them.
    #[test]
    fn profiles_keep_governing_the_args() {
        let settings = settings(
            json!({"sidecarProfiles": [{"image": SHIM, "args": [["--version", "v1alpha2"]]}]}),
        );
        let cluster = Cluster {
            answer: data(true, SCRIPT),
            lookups: Cell::new(0),
        };
        let reasons = reasons(&settings, "vms", &cluster);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].contains("args[1] \"v1alpha3\" does not match \"v1alpha2\""),
            "{reasons:?}"
        );
    }
}
