//! Policy settings and their validation.
//!
//! The sync job links this module natively and validates every list it would write with
//! [`parse_and_validate`], so it never pushes settings that `validate_settings` would refuse.

use std::borrow::Cow;
use std::fmt;

use kubewarden_policy_sdk::settings::Validatable;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::allowlist::{LazyAllowList, check_allow_list};
use crate::annotation_maps::{AnnotationLocation, CowStr, read_annotation_keys};
use crate::harvester_setting::ListMode;
use crate::kubernetes_names::is_dns_subdomain;
use crate::profiles::{Profiles, VALUE_MAX_BYTES_DEFAULT, VALUE_MAX_BYTES_LIMIT};
use crate::reference::ImageReference;
use crate::signatures::SignatureRequirement;

/// The settings, in the camelCase of Kubernetes APIs. Unknown keys are refused: a misspelt
/// `allowComand: false` must not silently leave a restriction at its default.
///
/// The `allowedImages` entries are borrowed from the JSON text they are read from (issue 27:
/// every request with sidecars decodes the settings, and a list of 50 copied strings was a sixth
/// of a VM CREATE's instructions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings<'a> {
    /// Images allowed to run as hook sidecars; empty rejects every sidecar.
    #[serde(default, borrow, deserialize_with = "borrowed_strings")]
    pub allowed_images: Vec<Cow<'a, str>>,
    /// The image KubeVirt runs for an entry without image (its sidecar-shim); unset rejects them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_shim_image: Option<String>,
    #[serde(default)]
    pub allow_command: bool,
    #[serde(default)]
    pub allow_config_map: bool,
    /// The scripts a `configMap` entry may mount without `allowConfigMap`: `{sha256,
    /// description}` each, the SHA-256 of their bytes as the kubelet mounts them
    /// ([`crate::scripts`]). Kept as JSON text, like `sidecarProfiles`, and read by
    /// [`AllowedScript::parse`]: a decoder of their own would cost the module some 4 KB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_scripts: Vec<Box<RawValue>>,
    #[serde(default, rename = "allowPVC")]
    pub allow_pvc: bool,
    #[serde(default)]
    pub allow_shared_compute_path: bool,
    /// Requested images must name their registry: on CRI-O, a short name is resolved through
    /// `unqualified-search-registries`, not necessarily from Docker Hub.
    #[serde(default)]
    pub require_registry: bool,
    /// What governed images may be given (`crate::profiles::SidecarProfile` each). Kept as JSON
    /// text until a request has a sidecar to check: most requests have none.
    #[serde(default)]
    pub sidecar_profiles: Vec<Box<RawValue>>,
    /// Reject an allowed image that no profile governs.
    #[serde(default)]
    pub profiles_required: bool,
    /// The longest value (an annotation, an `args` or `command` element) that a profile's
    /// pattern is matched against, in bytes; a longer one fails the profile, with its length.
    /// Unset: [`VALUE_MAX_BYTES_DEFAULT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_value_max_bytes: Option<usize>,
    /// Context-aware mode: also allow the entries of this Harvester Setting, read at admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harvester_setting: Option<HarvesterSettingRef>,
    /// Images that run only when the host verifies their signatures
    /// ([`SignatureRequirement`] each). Kept as JSON text, like `allowedScripts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Box<RawValue>>,
}

/// Which Harvester Setting (`harvesterhci.io/v1beta1`, cluster-scoped) adds entries to
/// `allowedImages`, and how its `default` and `value` combine. The name is required: a form that
/// writes only `listMode` must not turn the mode on for a Setting nobody named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HarvesterSettingRef {
    pub name: String,
    #[serde(default)]
    pub list_mode: ListMode,
}

/// A reviewed script: the SHA-256 of its bytes, in lower-case hex as `sha256sum` prints it, and
/// what the administrator says of it (what it does, who reviewed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedScript {
    pub sha256: String,
    pub description: String,
}

/// The root of an `allowedScripts` entry, read as a map of strings.
const ENTRY: [AnnotationLocation; 1] = [AnnotationLocation {
    path: &[],
    effective: true,
}];

impl AllowedScript {
    /// Entry `index` of `allowedScripts`: an object of strings, `sha256` required, and no other
    /// key than `description`.
    pub fn parse(index: usize, raw: &RawValue) -> Result<Self, String> {
        // A misspelt key is refused, not ignored (settings are decoded with deny_unknown_fields).
        // The keys are read as a JSON value, a decoder the module already has.
        if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(raw.get())
            && let Some(unknown) = fields
                .keys()
                .find(|key| !matches!(key.as_str(), "sha256" | "description"))
        {
            return Err(format!(
                "allowedScripts[{index}]: unknown field {unknown:?}, expected `sha256` or \
                 `description`"
            ));
        }
        let values = read_annotation_keys(raw, &ENTRY, &["sha256", "description"]);
        let mut values = values
            .map_err(|e| format!("allowedScripts[{index}]: {e}"))?
            .into_iter();
        let (Some(sha256), description) = (values.next().flatten(), values.next().flatten()) else {
            return Err(format!("allowedScripts[{index}]: missing field `sha256`"));
        };
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "allowedScripts[{index}].sha256 {sha256:?}: not a SHA-256 digest (64 lower-case \
                 hex digits, as sha256sum prints them)"
            ));
        }
        Ok(Self {
            sha256,
            description: description.unwrap_or_default(),
        })
    }
}

/// The rules the settings define, in the form the checks use, built for each request: their
/// entries are parsed, and their profiles' patterns compiled, only when the request needs them.
#[derive(Debug)]
pub struct PolicyRules<'a> {
    pub allowed_images: LazyAllowList<'a>,
    pub sidecar_shim_image: Option<ImageReference<'a>>,
    pub allow_command: bool,
    pub allow_config_map: bool,
    /// `allowedScripts`, validated: digests of 64 lower-case hex digits, none twice.
    pub allowed_scripts: Vec<AllowedScript>,
    pub allow_pvc: bool,
    pub allow_shared_compute_path: bool,
    pub require_registry: bool,
    pub profiles: Profiles,
    pub profiles_required: bool,
    pub profile_value_max_bytes: usize,
    /// `signatures`, validated.
    pub signatures: Vec<SignatureRequirement>,
}

/// A list of strings, each borrowed from the input when it has no escape. Its errors are those
/// of a `Vec<String>` ("expected a sequence", "expected a string").
fn borrowed_strings<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Cow<'a, str>>, D::Error> {
    struct Strings;

    impl<'de> Visitor<'de> for Strings {
        type Value = Vec<Cow<'de, str>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut strings = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(string) = seq.next_element_seed(CowStr)? {
                strings.push(string);
            }
            Ok(strings)
        }
    }

    deserializer.deserialize_seq(Strings)
}

impl Settings<'_> {
    /// Parses the settings into rules, naming every culprit when they are invalid. Patterns are
    /// not compiled: [`Settings::validate`] compiles them all, a request only those it needs.
    pub fn rules(&self) -> Result<PolicyRules<'_>, String> {
        self.build_rules(EntryCheck::All)
    }

    /// The rules requests are judged by: as [`Settings::rules`], but an `allowedImages` entry is
    /// parsed only when an image of a request could match it (an invalid one met then rejects
    /// the sidecar). `validate_settings` checked them all when the policy was loaded.
    pub fn request_rules(&self) -> Result<PolicyRules<'_>, String> {
        self.build_rules(EntryCheck::WhenNeeded)
    }

    fn build_rules(&self, entries: EntryCheck) -> Result<PolicyRules<'_>, String> {
        let mut problems = Vec::new();
        if entries == EntryCheck::All
            && let Err(e) = check_allow_list(&self.allowed_images)
        {
            problems.push(e.to_string());
        }
        let allowed_images = LazyAllowList::new(&self.allowed_images);
        let sidecar_shim_image = match self.sidecar_shim_image.as_deref() {
            None => None,
            Some(image) if image.contains('*') => {
                problems.push(format!(
                    "sidecarShimImage {image:?}: must name one image, without wildcard"
                ));
                None
            }
            Some(image) => ImageReference::parse(image)
                .map_err(|e| {
                    problems.push(format!(
                        "sidecarShimImage {image:?}: not a valid image reference: {e}"
                    ))
                })
                .ok(),
        };
        if let Some(setting) = &self.harvester_setting
            && !is_dns_subdomain(&setting.name)
        {
            problems.push(format!(
                "harvesterSetting.name {:?}: not a Kubernetes object name \
                     (lower-case letters, digits, '-' and '.', at most 253 characters)",
                setting.name
            ));
        }
        let allowed_scripts = check_scripts(self, &mut problems);
        if self.allow_shared_compute_path && !self.allow_pvc {
            problems.push("allowSharedComputePath: true needs allowPVC: true".to_owned());
        }
        let profile_value_max_bytes = self
            .profile_value_max_bytes
            .unwrap_or(VALUE_MAX_BYTES_DEFAULT);
        if !(1..=VALUE_MAX_BYTES_LIMIT).contains(&profile_value_max_bytes) {
            problems.push(format!(
                "profileValueMaxBytes {profile_value_max_bytes}: must be 1 to \
                 {VALUE_MAX_BYTES_LIMIT} (the API server's limit on all of an object's \
                 annotations)"
            ));
        }
        let signatures = (self.signatures.iter().enumerate())
            .filter_map(|(index, raw)| {
                SignatureRequirement::parse(index, raw)
                    .map_err(|e| problems.push(e))
                    .ok()
            })
            .collect();
        let profiles = Profiles::parse(&self.sidecar_profiles)
            .map_err(|mut e| problems.append(&mut e))
            .unwrap_or_default();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(PolicyRules {
            allowed_images,
            sidecar_shim_image,
            allow_command: self.allow_command,
            allow_config_map: self.allow_config_map,
            allowed_scripts,
            allow_pvc: self.allow_pvc,
            allow_shared_compute_path: self.allow_shared_compute_path,
            require_registry: self.require_registry,
            profiles,
            profiles_required: self.profiles_required,
            profile_value_max_bytes,
            signatures,
        })
    }
}

/// `allowedScripts`: each digest as `sha256sum` prints it, none twice, and not beside
/// `allowConfigMap: true`, which already allows any script: with both, which one the administrator
/// meant cannot be told, so the settings are refused rather than one silently ignored.
fn check_scripts(settings: &Settings, problems: &mut Vec<String>) -> Vec<AllowedScript> {
    let raw = &settings.allowed_scripts;
    if settings.allow_config_map && !raw.is_empty() {
        problems.push(format!(
            "allowedScripts lists {} scripts, but allowConfigMap: true allows any script: set \
             allowConfigMap to false to allow only the listed scripts, or remove allowedScripts",
            raw.len()
        ));
    }
    let mut scripts: Vec<AllowedScript> = Vec::with_capacity(raw.len());
    for (index, raw) in raw.iter().enumerate() {
        match AllowedScript::parse(index, raw) {
            Ok(script) => {
                if let Some(first) = scripts.iter().position(|s| s.sha256 == script.sha256) {
                    problems.push(format!(
                        "allowedScripts[{index}].sha256 {:?}: already allowedScripts[{first}]",
                        script.sha256
                    ));
                }
                scripts.push(script);
            }
            Err(e) => problems.push(e),
        }
    }
    scripts
}

/// When `allowedImages` entries are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryCheck {
    All,
    WhenNeeded,
}

impl Validatable for Settings<'_> {
    fn validate(&self) -> Result<(), String> {
        let rules = self.rules()?;
        (rules.profiles)
            .compile_all(rules.profile_value_max_bytes)
            .map_err(|e| e.join("; "))
    }
}

/// Decodes settings exactly as the policy's `validate_settings` does and validates them.
/// The error is the message `validate_settings` returns.
pub fn parse_and_validate(json: &serde_json::Value) -> Result<Settings<'_>, String> {
    let settings = Settings::deserialize(json).map_err(|e| format!("invalid settings: {e}"))?;
    settings.validate()?;
    Ok(settings)
}

/// The same, from the bytes `validate_settings` receives.
pub fn parse_and_validate_slice(payload: &[u8]) -> Result<Settings<'_>, String> {
    let settings = decode_slice(payload).map_err(|e| format!("invalid settings: {e}"))?;
    settings.validate()?;
    Ok(settings)
}

/// Decodes settings from the JSON text `validate_settings` and `validate` receive; the error is
/// serde's (an unknown key, a wrong type).
pub fn decode_slice(payload: &[u8]) -> Result<Settings<'_>, String> {
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!({}))]
    #[case(json!({"allowedImages": []}))]
    #[case(json!({"allowedImages": ["registry:5000/kubevirt/example-hook-sidecar:devel", "ghcr.io/org/*", "busybox:*"]}))]
    #[case(json!({"sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.4.0", "allowConfigMap": true}))]
    #[case(json!({"allowPVC": true, "allowSharedComputePath": true, "allowCommand": true}))]
    #[case(json!({"requireRegistry": true, "allowedImages": ["busybox:1.36", "[fd00::10]:5000/hooks/*"]}))]
    #[case(json!({"sidecarProfiles": [], "profilesRequired": true}))]
    #[case(json!({"sidecarProfiles": [{"image": "ghcr.io/org/*", "args": [[], ["--version", "v1alpha[23]"]], "command": [["/hook"]], "annotations": {"smbios.vm.kubevirt.io/baseBoardManufacturer": "[A-Za-z ]{1,32}"}, "requiredAnnotations": ["smbios.vm.kubevirt.io/baseBoardManufacturer"]}]}))]
    #[case(json!({"harvesterSetting": {"name": "whitelisted-sidecars", "listMode": "effective"}}))]
    #[case(json!({"harvesterSetting": {"name": "my.sidecars-2", "listMode": "union"}}))]
    #[case(json!({"profileValueMaxBytes": 1}))]
    #[case(json!({"allowedScripts": [{"sha256": DIGEST, "description": "GPU MMIO aperture"}, {"sha256": DIGEST.replace('0', "1")}]}))]
    #[case(json!({"allowedScripts": [], "allowConfigMap": true}))]
    #[case(json!({"profileValueMaxBytes": 262144}))]
    // RE2 accepts these, and the policy matches them as RE2 does (issue 21).
    #[case(profile_annotation(r"\Qa.b\E"))]
    #[case(profile_annotation("[[:alpha:][]"))]
    #[case(profile_annotation("x{,3}"))]
    #[case(profile_annotation(r"\101"))]
    #[case(profile_annotation(r"[\d-z]"))]
    #[case(profile_annotation("[a&&b]"))]
    #[case(profile_annotation("[a~~b]"))]
    #[case(profile_annotation(r"\<a\>"))]
    #[case(profile_annotation("(?i)[a-z]{1,200}"))]
    #[case(json!({"profileValueMaxBytes": 128, "sidecarProfiles": [{"image": "a:1", "annotations": {"a.example.com/x": "(?:(?:[a-z]{0,9},?){0,9} ?){0,9}"}}]}))]
    #[case(profile_annotation("[A-Za-z0-9 .,-]{1,64}"))]
    fn accepts(#[case] settings: serde_json::Value) {
        parse_and_validate(&settings).expect("valid settings");
    }

    #[rstest]
    #[case(json!({"allowedImage": ["a"]}), "unknown field `allowedImage`")]
    #[case(json!({"allowComand": false}), "unknown field `allowComand`")]
    #[case(json!({"allowPvc": true}), "unknown field `allowPvc`")]
    #[case(json!({"allowedImages": "busybox"}), "invalid type")]
    #[case(json!({"allowCommand": "yes"}), "invalid type")]
    #[case(json!({"allowedImages": ["ok:1", "Not/Valid"]}), "allowedImages[1] \"Not/Valid\"")]
    #[case(json!({"allowedImages": ["ghcr.io/*/x"]}), "allowedImages[0] \"ghcr.io/*/x\": a wildcard is allowed only")]
    #[case(json!({"sidecarShimImage": "quay.io/kubevirt/*"}), "sidecarShimImage \"quay.io/kubevirt/*\": must name one image")]
    #[case(json!({"sidecarShimImage": "quay.io/kubevirt/sidecar-shim:*"}), "without wildcard")]
    #[case(json!({"sidecarShimImage": "UPPER"}), "sidecarShimImage \"UPPER\": not a valid image reference")]
    #[case(json!({"allowSharedComputePath": true}), "allowSharedComputePath: true needs allowPVC: true")]
    #[case(json!({"requireRegistry": "yes"}), "invalid type")]
    #[case(json!({"allowedImages": ["QUAY.IO/acme/hook:v1"]}), "allowedImages[0] \"QUAY.IO/acme/hook:v1\": not a valid image reference: registry host must be lowercase")]
    #[case(json!({"sidecarProfiles": {"image": "a"}}), "invalid type: map, expected a sequence")]
    #[case(json!({"profilesRequired": "yes"}), "invalid type")]
    #[case(json!({"sidecarProfiles": [{"image": "a"}, {"image": "b", "args": [["(x"]]}]}), "sidecarProfiles[1].args[0][0] \"(x\": ")]
    #[case(json!({"sidecarProfiles": [{"image": "a", "annotations": {"a b": ".*"}}]}), "sidecarProfiles[0].annotations key \"a b\": not a valid annotation key")]
    #[case(json!({"sidecarProfiles": [{"image": "a", "Args": [[]]}]}), "sidecarProfiles[0]: unknown field `Args`")]
    #[case(json!({"sidecarProfiles": [{"image": "a", "command": []}]}), "sidecarProfiles[0].command: an empty list of alternatives")]
    #[case(json!({"sidecarProfiles": [{"image": "a:1:*"}]}), "sidecarProfiles[0].image \"a:1:*\": `repo:*` takes a repository")]
    #[case(json!({"harvesterSetting": {"name": "s", "listMode": "Union"}}), "unknown variant `Union`")]
    #[case(json!({"harvesterSetting": {"listMode": "union"}}), "missing field `name`")]
    #[case(json!({"harvesterSetting": {"name": "s", "nam": "x"}}), "unknown field `nam`")]
    #[case(json!({"harvesterSetting": "whitelisted-sidecars"}), "invalid type")]
    #[case(json!({"harvesterSetting": {"name": ""}}), "harvesterSetting.name \"\": not a Kubernetes object name")]
    #[case(json!({"harvesterSetting": {"name": "Whitelisted"}}), "harvesterSetting.name \"Whitelisted\"")]
    #[case(json!({"harvesterSetting": {"name": "a..b"}}), "harvesterSetting.name \"a..b\"")]
    #[case(json!({"harvesterSetting": {"name": "-a"}}), "harvesterSetting.name \"-a\"")]
    #[case(json!({"profileValueMaxBytes": 0}), "profileValueMaxBytes 0: must be 1 to 262144")]
    #[case(json!({"allowedScripts": [{"sha256": DIGEST}], "allowConfigMap": true}), "allowedScripts lists 1 scripts, but allowConfigMap: true allows any script")]
    #[case(json!({"allowedScripts": [{"sha256": DIGEST.to_uppercase()}]}), "allowedScripts[0].sha256 \"1FF0")]
    #[case(json!({"allowedScripts": [{"sha256": "sha256:1ff0"}]}), "allowedScripts[0].sha256 \"sha256:1ff0\": not a SHA-256 digest")]
    #[case(json!({"allowedScripts": [{"sha256": DIGEST}, {"sha256": DIGEST}]}), "allowedScripts[1].sha256 \"1ff0")]
    #[case(json!({"allowedScripts": [{"sha256 ": DIGEST}]}), "allowedScripts[0]: unknown field \"sha256 \", expected `sha256` or `description`")]
    #[case(json!({"allowedScripts": [{"sha256": DIGEST, "descripton": "x"}]}), "allowedScripts[0]: unknown field \"descripton\"")]
    #[case(json!({"allowedScripts": [{"description": "x"}]}), "allowedScripts[0]: missing field `sha256`")]
    #[case(json!({"allowedScripts": [{"sha256": 5}]}), "allowedScripts[0]: cannot read the object: \"sha256\" is 5, not a string")]
    #[case(json!({"allowedScripts": [DIGEST]}), "allowedScripts[0]: cannot read the object: invalid type: string")]
    #[case(json!({"allowedScripts": {"sha256": DIGEST}}), "invalid type: map, expected a sequence")]
    #[case(json!({"profileValueMaxBytes": 262145}), "profileValueMaxBytes 262145: must be 1 to 262144")]
    #[case(json!({"profileValueMaxBytes": -1}), "invalid value: integer `-1`")]
    #[case(json!({"profileValueMaxBytes": "4KiB"}), "invalid type")]
    // What Go's regexp.Compile refuses, with its message (issue 21).
    #[case(
        profile_annotation("[a-z]{1,1001}"),
        "sidecarProfiles[0].annotations[\"a.example.com/x\"] \"[a-z]{1,1001}\": invalid repeat count: `{1,1001}`, as RE2 refuses it"
    )]
    #[case(
        profile_annotation("(?:(?:[a-z]{0,30},?){0,30} ?){0,30}"),
        "invalid repeat count: `{0,30}` (nested repetitions would repeat their innermost part more than 1000 times), as RE2 refuses it"
    )]
    #[case(profile_annotation("a**"), "invalid nested repetition operator: `**`")]
    #[case(profile_annotation(r"\Z"), "invalid escape sequence: `\\Z`")]
    #[case(
        profile_annotation("(?=a)"),
        "invalid or unsupported Perl syntax: `(?=`"
    )]
    #[case(profile_annotation("...[0-9]+)|(x"), "unexpected ): `...[0-9]+)|(x`")]
    // What RE2 accepts but the policy does not match as RE2 does, or past its limits.
    #[case(
        profile_annotation(r"\p{Greek}"),
        "`\\p{Greek}`: Unicode classes (\\p, \\P) are not supported"
    )]
    #[case(profile_annotation(r"\x{D800}"), "`\\x{D800}`: a surrogate code point")]
    #[case(
        profile_annotation("[a-z]{1000}[a-z]{1000}x"),
        "the pattern compiles to some 2001 instructions, more than the 2000"
    )]
    // Past the request's matching budget on a value of profileValueMaxBytes.
    #[case(
        profile_annotation("(?:(?:[a-z]{0,9},?){0,9} ?){0,9}"),
        "matching a value of profileValueMaxBytes (4096) would take up to 1416960 steps (1728 instructions"
    )]
    #[case(profile_annotation("[a-z]{1,1000}"), "lower profileValueMaxBytes")]
    fn refuses(#[case] settings: serde_json::Value, #[case] message: &str) {
        let error = parse_and_validate(&settings).expect_err("invalid settings");
        assert!(error.contains(message), "{settings}: {error}");
    }

    const DIGEST: &str = "1ff0a3e9f5cb0e2e3c4e1b2f5e8d9c0a7b6f5e4d3c2b1a09f8e7d6c5b4a39281";

    /// Settings with one profile whose annotation `a.example.com/x` has `pattern`.
    fn profile_annotation(pattern: &str) -> serde_json::Value {
        json!({"sidecarProfiles": [{"image": "a:1", "annotations": {"a.example.com/x": pattern}}]})
    }

    /// `allowedImages` is read as `Vec<String>` would be, its errors included, but each entry
    /// without an escape borrows from the text; an escaped one is decoded.
    #[rstest]
    #[case(
        r#"{"allowedImages": "busybox"}"#,
        "invalid type: string \"busybox\", expected a sequence"
    )]
    #[case(
        r#"{"allowedImages": [5]}"#,
        "invalid type: integer `5`, expected a string"
    )]
    #[case(
        r#"{"allowedImages": [["a"]]}"#,
        "invalid type: sequence, expected a string"
    )]
    #[case(
        r#"{"allowedImages": {"a": 1}}"#,
        "invalid type: map, expected a sequence"
    )]
    fn allowed_images_errors_are_those_of_a_list_of_strings(
        #[case] text: &str,
        #[case] message: &str,
    ) {
        let ours = decode_slice(text.as_bytes()).expect_err("refused");
        let strings = serde_json::from_str::<StringList>(text).expect_err("refused");
        assert!(ours.starts_with(message), "{ours}");
        assert_eq!(ours, strings.to_string());
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct StringList {
        allowed_images: Vec<String>,
    }

    #[test]
    fn allowed_images_are_borrowed_unless_escaped() {
        let text = r#"{"allowedImages": ["ghcr.io/org/*", "ghcr.io\/other\/*", "a:1"]}"#;
        let settings = decode_slice(text.as_bytes()).expect("valid");
        let entries = &settings.allowed_images;
        assert!(matches!(&entries[0], Cow::Borrowed("ghcr.io/org/*")));
        assert!(matches!(&entries[1], Cow::Owned(entry) if entry == "ghcr.io/other/*"));
        assert!(matches!(&entries[2], Cow::Borrowed("a:1")));
        // From a `Value` (the sync job), every entry borrows from the value's strings.
        let value: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let from_value = parse_and_validate(&value).expect("valid");
        assert_eq!(from_value.allowed_images, settings.allowed_images);
        assert!(
            (from_value.allowed_images.iter()).all(|entry| matches!(entry, Cow::Borrowed(_))),
            "{from_value:?}"
        );
    }

    #[test]
    fn list_mode_defaults_to_union() {
        let json = json!({"harvesterSetting": {"name": "whitelisted-sidecars"}});
        let settings = parse_and_validate(&json).expect("valid");
        assert_eq!(
            settings.harvester_setting,
            Some(HarvesterSettingRef {
                name: "whitelisted-sidecars".into(),
                list_mode: ListMode::Union,
            })
        );
        assert_eq!(
            parse_and_validate(&json!({}))
                .expect("valid")
                .harvester_setting,
            None
        );
    }

    #[test]
    fn names_every_problem_at_once() {
        let settings = json!({"allowedImages": ["*", "a b"], "allowSharedComputePath": true});
        let error = parse_and_validate(&settings).expect_err("invalid settings");
        for culprit in [
            "allowedImages[0]",
            "allowedImages[1]",
            "allowSharedComputePath",
        ] {
            assert!(error.contains(culprit), "{error}");
        }
        let settings = json!({"allowedImages": ["*"], "sidecarProfiles": [{"image": "*"}, {"image": "a", "args": []}]});
        let error = parse_and_validate(&settings).expect_err("invalid settings");
        for culprit in [
            "allowedImages[0]",
            "sidecarProfiles[0].image",
            "sidecarProfiles[1].args",
        ] {
            assert!(error.contains(culprit), "{error}");
        }
    }

    #[test]
    fn every_pattern_that_does_not_compile_is_named() {
        let settings = json!({"sidecarProfiles": [
            {"image": "a", "args": [["ok", "("]]},
            {"image": "b", "annotations": {"x": "[", "y": "fine"}},
        ]});
        let error = parse_and_validate(&settings).expect_err("invalid settings");
        assert!(
            error.contains("sidecarProfiles[0].args[0][1] \"(\""),
            "{error}"
        );
        assert!(
            error.contains("sidecarProfiles[1].annotations[\"x\"] \"[\""),
            "{error}"
        );
        assert!(!error.contains("\"fine\""), "{error}");
    }
}
