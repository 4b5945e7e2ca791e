//! The decision for one sidecar, over a description that does not depend on where it was read:
//! an entry of the `hooks.kubevirt.io/hookSidecars` annotation, or a container of the
//! virt-launcher Pod KubeVirt renders from it. Both paths call [`sidecar_violations`], so they
//! apply the same rules.

use crate::annotation::HookSidecar;
use crate::profiles::{AnnotationLookup, Governance, Profile};
use crate::reference::{ImageReference, ReferenceError, names_registry};
use crate::settings::SidecarRules;

/// The image a sidecar runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SidecarImage<'a> {
    /// An image named by the request: as written, and parsed (normalized) or why it is not a
    /// reference.
    Named {
        written: &'a str,
        reference: Result<ImageReference<'a>, ReferenceError>,
    },
    /// No image: KubeVirt runs its sidecar-shim (`sidecarShimImage`).
    Shim,
}

impl<'a> SidecarImage<'a> {
    /// The image as written in a request: absent or empty means the sidecar-shim.
    pub fn from_written(written: Option<&'a str>) -> Self {
        match written.filter(|image| !image.is_empty()) {
            Some(written) => Self::Named {
                written,
                reference: ImageReference::parse(written),
            },
            None => Self::Shim,
        }
    }
}

/// A user ConfigMap mounted in the sidecar, whose script KubeVirt runs as the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigMapMount<'a> {
    pub name: &'a str,
    pub hook_path: &'a str,
}

/// A user PVC mounted in the sidecar and, with `shared_compute_path`, in the compute container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvcMount<'a> {
    pub name: &'a str,
    pub shared_compute_path: Option<&'a str>,
}

/// What the rules look at of one sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar<'a> {
    pub image: SidecarImage<'a>,
    /// Empty: the image's own entrypoint.
    pub command: &'a [String],
    pub args: &'a [String],
    pub config_map: Option<ConfigMapMount<'a>>,
    pub pvc: Option<PvcMount<'a>>,
}

impl<'a> From<&'a HookSidecar> for Sidecar<'a> {
    fn from(entry: &'a HookSidecar) -> Self {
        Self {
            image: SidecarImage::from_written(entry.image.as_deref()),
            command: &entry.command,
            args: &entry.args,
            config_map: entry.config_map.as_ref().map(|c| ConfigMapMount {
                name: &c.name,
                hook_path: &c.hook_path,
            }),
            pvc: entry.pvc.as_ref().map(|p| PvcMount {
                name: &p.name,
                shared_compute_path: Some(p.shared_compute_path.as_str())
                    .filter(|path| !path.is_empty()),
            }),
        }
    }
}

/// Every reason why `sidecar` is not allowed; empty when it is. `annotations` are those the
/// sidecar reads (the map that carries the sidecar annotation; on a VMI, its own).
///
/// The image must be in `allowedImages`; `configMap`, `pvc` and `sharedComputePath` need their
/// switch; a `command` needs `allowCommand` or a governing profile whose `command` lists it.
/// When profiles govern the image, the sidecar must satisfy them as `Profiles::governance`
/// combines them (one of those of its tag; by digest, those of every tag it may be), and a
/// rejection says why each failed.
pub fn sidecar_violations(
    rules: &SidecarRules,
    sidecar: &Sidecar,
    annotations: &dyn AnnotationLookup,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let image = resolve_image(rules, &sidecar.image);
    let image = match image {
        Ok((written, image)) => {
            match rules.allows(&image) {
                Ok(true) => {}
                Ok(false) => reasons.push(match rules.setting_name() {
                    Some(setting) => format!(
                        "{written} ({image}) is not in allowedImages nor in Setting {setting:?}"
                    ),
                    None => format!("{written} ({image}) is not in allowedImages"),
                }),
                Err(e) => reasons.push(format!("invalid policy settings: {e}")),
            }
            Some((written, image))
        }
        Err(reason) => {
            reasons.push(reason);
            None
        }
    };
    let governance = match &image {
        Some((_, image)) => rules.policy.profiles.governance(image),
        None => Governance::default(),
    };
    if let (Some((written, image)), true) = (&image, governance.is_empty())
        && rules.policy.profiles_required
        && reasons.is_empty()
    {
        reasons.push(format!(
            "{written} ({image}) is allowed, but no sidecarProfiles entry governs it, \
                 and profilesRequired is true"
        ));
    }
    reasons.extend(escape_hatch_violations(rules, sidecar));
    if governance.is_empty() {
        reasons.extend(command_violation(rules, sidecar));
    } else {
        reasons.extend(profile_violations(rules, sidecar, &governance, annotations));
    }
    reasons
}

/// The profiles that govern the sidecar's image (none when it has no image to match).
pub fn governing_profiles<'r>(rules: &'r SidecarRules, sidecar: &Sidecar) -> Vec<&'r Profile> {
    match resolve_image(rules, &sidecar.image) {
        Ok((_, image)) => rules.policy.profiles.governance(&image).profiles(),
        Err(_) => Vec::new(),
    }
}

/// The annotations the profiles governing the sidecar read: what must be looked up beside it,
/// and what must not change for an update to leave it as it was.
pub fn annotations_read<'r>(rules: &'r SidecarRules, sidecar: &Sidecar) -> Vec<&'r str> {
    let mut keys: Vec<&str> = governing_profiles(rules, sidecar)
        .into_iter()
        .flat_map(Profile::annotation_keys)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The image as the rejection names it, and as matched; or why there is none to match.
fn resolve_image<'a>(
    rules: &'a SidecarRules<'_, '_>,
    image: &'a SidecarImage<'_>,
) -> Result<(String, ImageReference<'a>), String> {
    match image {
        SidecarImage::Named {
            written,
            reference: Ok(_),
        } if rules.policy.require_registry && !names_registry(written) => Err(format!(
            "image {written:?} does not name its registry, and requireRegistry is true \
             (a runtime may look a short name up in any of its search registries)"
        )),
        SidecarImage::Named {
            written,
            reference: Ok(reference),
        } => Ok((format!("image {written:?}"), reference.clone())),
        SidecarImage::Named {
            written,
            reference: Err(e),
        } => Err(format!(
            "image {written:?} is not a valid image reference: {e}"
        )),
        SidecarImage::Shim => match &rules.policy.sidecar_shim_image {
            Some(shim) => Ok((
                "no image (KubeVirt's sidecar-shim)".to_owned(),
                shim.clone(),
            )),
            None => Err("no image: KubeVirt would run its sidecar-shim, and \
                         sidecarShimImage is not set, so the policy cannot tell which \
                         image that is"
                .to_owned()),
        },
    }
}

/// `configMap`, `pvc` and `sharedComputePath`: each behind its own switch, whatever the profiles.
fn escape_hatch_violations(rules: &SidecarRules, sidecar: &Sidecar) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(config_map) = &sidecar.config_map {
        if config_map.name.is_empty() {
            reasons.push(
                "configMap has no name: KubeVirt would look up a ConfigMap named \"\", \
                 so the VM could not start"
                    .to_owned(),
            );
        }
        if !rules.policy.allow_config_map {
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
        if !rules.policy.allow_pvc {
            reasons.push(format!(
                "pvc {:?} mounts user data in the sidecar, and allowPVC is false",
                pvc.name
            ));
        }
        if let (Some(path), false) = (
            pvc.shared_compute_path,
            rules.policy.allow_shared_compute_path,
        ) {
            reasons.push(format!(
                "pvc.sharedComputePath {path:?} mounts user data in the compute container, \
                 and allowSharedComputePath is false"
            ));
        }
    }
    reasons
}

fn command_violation(rules: &SidecarRules, sidecar: &Sidecar) -> Option<String> {
    (!sidecar.command.is_empty() && !rules.policy.allow_command).then(|| {
        format!(
            "command {:?} replaces the image's entrypoint, and allowCommand is false",
            sidecar.command
        )
    })
}

/// Nothing when the sidecar satisfies the profiles that govern it (`Governance::judge`); else,
/// for each that fails, why.
fn profile_violations(
    rules: &SidecarRules,
    sidecar: &Sidecar,
    governance: &Governance,
    annotations: &dyn AnnotationLookup,
) -> Vec<String> {
    governance.judge(|profile| {
        let mut failed =
            profile.mismatches(sidecar.command, sidecar.args, annotations, &rules.matching);
        // A profile with `command` alternatives already judged the command; without, the
        // profile leaves it to `allowCommand`.
        if !profile.constrains_command() {
            failed.extend(command_violation(rules, sidecar));
        }
        failed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
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

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    /// A sidecar as the virt-launcher Pod shows it: a container, its mounts, and the VMI's
    /// annotations; no `HookSidecar` involved.
    #[rstest]
    #[case::pinned(HOOK, &[], &["--version", "v1alpha3"], None, None, "Acme", &[])]
    #[case::other_args(HOOK, &[], &["--version", "v1alpha2"], None, None, "Acme", &["args[1] \"v1alpha2\" does not match \"v1alpha3\""])]
    #[case::annotation(HOOK, &[], &["--version", "v1alpha3"], None, None, "Acme; rm -rf /", &["annotation \"smbios.vm.kubevirt.io/baseBoardManufacturer\" \"Acme; rm -rf /\" does not match"])]
    #[case::command(HOOK, &["/bin/sh"], &["--version", "v1alpha3"], None, None, "Acme", &["command [\"/bin/sh\"] replaces the image's entrypoint, and allowCommand is false"])]
    #[case::config_map(HOOK, &[], &["--version", "v1alpha3"], Some(("cm", "/hook")), None, "Acme", &["configMap \"cm\" mounts a user script at \"/hook\", and allowConfigMap is false"])]
    #[case::shared_compute_path(HOOK, &[], &["--version", "v1alpha3"], None, Some(("d", Some("/s"))), "Acme", &["pvc \"d\" mounts user data", "pvc.sharedComputePath \"/s\""])]
    #[case::unlisted("evil:1", &[], &[], None, None, "", &["image \"evil:1\" (docker.io/library/evil:1) is not in allowedImages"])]
    #[case::invalid("Evil", &[], &[], None, None, "", &["image \"Evil\" is not a valid image reference"])]
    fn one_decision_for_any_source(
        #[case] image: &str,
        #[case] command: &[&str],
        #[case] args: &[&str],
        #[case] config_map: Option<(&str, &str)>,
        #[case] pvc: Option<(&str, Option<&str>)>,
        #[case] manufacturer: &str,
        #[case] expected: &[&str],
    ) {
        let settings = settings(json!({}));
        let policy = settings.rules().expect("valid");
        let rules = SidecarRules::new(&policy);
        let (command, args) = (strings(command), strings(args));
        let sidecar = Sidecar {
            image: SidecarImage::from_written(Some(image)),
            command: &command,
            args: &args,
            config_map: config_map.map(|(name, hook_path)| ConfigMapMount { name, hook_path }),
            pvc: pvc.map(|(name, shared_compute_path)| PvcMount {
                name,
                shared_compute_path,
            }),
        };
        let annotations = BTreeMap::from([(KEY.to_owned(), manufacturer.to_owned())]);
        let reasons = sidecar_violations(&rules, &sidecar, &annotations);
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
        let policy = settings.rules().expect("valid");
        let rules = SidecarRules::new(&policy);
        let sidecar = Sidecar {
            image: SidecarImage::from_written(Some(HOOK)),
            command: &[],
            args: &[],
            config_map: None,
            pvc: None,
        };
        assert_eq!(annotations_read(&rules, &sidecar), ["a/b", KEY]);
        let shim = Sidecar {
            image: SidecarImage::Shim,
            ..sidecar
        };
        assert!(annotations_read(&rules, &shim).is_empty());
    }
}
