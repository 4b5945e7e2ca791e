//! Sidecar profiles (`sidecarProfiles`): what an allowed image may be given, not only which image.
//!
//! A profile governs the requested images its `image` form allows (the forms and rules of
//! `allowedImages`) and pins the entry's `args`, optionally grants a `command`, and constrains the
//! VM annotations the sidecar reads. A profile never allows an image by itself.
//!
//! Settings arrive with every request and most requests carry no sidecar, so nothing here is done
//! before it is needed: a profile is read from its JSON only for a request with sidecars, and its
//! patterns are compiled only when it governs one of the request's images.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::allowlist::AllowedImage;
use crate::kubernetes_names::check_qualified_name;
use crate::reference::ImageReference;
use crate::text;

/// One profile, as the administrator writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarProfile {
    /// The requested images it governs, in any `allowedImages` form.
    pub image: String,
    /// Alternatives for the entry's `args`, one pattern per element; absent: any args.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Vec<String>>>,
    /// Alternatives for the entry's `command`, which the profile then grants; absent:
    /// `allowCommand` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<Vec<String>>>,
    /// The VM annotations the sidecar reads: each must be absent or match its pattern.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Annotations that must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_annotations: Vec<String>,
}

/// What a check reads of the annotations map that carries the sidecar annotation (on a VMI, its
/// own `metadata.annotations`), or of whatever else a sidecar reads its annotations from.
pub trait AnnotationLookup {
    fn annotation(&self, key: &str) -> Option<&str>;
}

impl AnnotationLookup for BTreeMap<String, String> {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl AnnotationLookup for std::collections::HashMap<String, String> {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Pairs of key and value, as read from an object.
impl AnnotationLookup for [(String, String)] {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.as_str())
    }
}

/// A regular expression (RE2 syntax) matched against the whole value.
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// No metacharacter: the pattern matches exactly its own text, so nothing is compiled
    /// (`--version`, `v1alpha3`: most `args` patterns).
    Literal,
    /// `^(?:source)$`, compiled when a value is first matched against it: a profile's pattern for
    /// an annotation the request does not carry is never compiled. `None` if it does not compile,
    /// which matches nothing (`validate_settings` refuses such settings before any request).
    Whole(OnceCell<Option<Regex>>),
}

/// How much checking a compilation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compile {
    /// What `validate_settings` does: every pattern compiled now, and also on its own, so that
    /// the compiler's message is about what the administrator wrote, and so that a pattern such
    /// as `a)|(b`, which compiles only once wrapped, is refused rather than escaping the anchors.
    Checked,
    /// What a request does with settings that `validate_settings` accepted: one compilation, of
    /// the patterns a value is matched against, when it first is.
    Deferred,
}

/// The characters that make a pattern more than its literal text.
const METACHARACTERS: &[char] = &[
    '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
];

fn anchored(source: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{source})$")).map_err(|e| e.to_string())
}

impl Pattern {
    fn compile(source: &str, mode: Compile) -> Result<Self, String> {
        let matcher = if !source.contains(METACHARACTERS) {
            Matcher::Literal
        } else if mode == Compile::Checked {
            Regex::new(source).map_err(|e| e.to_string())?;
            Matcher::Whole(OnceCell::from(Some(anchored(source)?)))
        } else {
            Matcher::Whole(OnceCell::new())
        };
        Ok(Self {
            source: source.to_owned(),
            matcher,
        })
    }

    fn matches(&self, value: &str) -> bool {
        match &self.matcher {
            Matcher::Literal => value == self.source,
            Matcher::Whole(regex) => regex
                .get_or_init(|| anchored(&self.source).ok())
                .as_ref()
                .is_some_and(|regex| regex.is_match(value)),
        }
    }
}

type Alternatives = Vec<Vec<Pattern>>;

/// A profile's compiled patterns, in the order of its fields.
#[derive(Debug, Clone)]
struct Patterns {
    args: Option<Alternatives>,
    command: Option<Alternatives>,
    annotations: Vec<(String, Pattern)>,
}

/// One parsed profile: its fields read and its image form checked, its patterns compiled on
/// first use.
#[derive(Debug)]
pub struct Profile {
    index: usize,
    spec: SidecarProfile,
    /// The registry of `spec.image`: a profile of another registry governs no image of this one,
    /// which spares parsing its image form for every sidecar.
    registry: String,
    patterns: OnceCell<Result<Patterns, String>>,
}

impl Profile {
    fn parse(index: usize, raw: &RawValue) -> Result<Self, Vec<String>> {
        let spec: SidecarProfile = serde_json::from_str(raw.get())
            .map_err(|e| vec![format!("sidecarProfiles[{index}]: {e}")])?;
        let mut problems = Vec::new();
        let registry = match AllowedImage::parse(&spec.image) {
            Ok(form) => form.registry().to_owned(),
            Err(e) => {
                problems.push(format!(
                    "sidecarProfiles[{index}].image {:?}: {e}",
                    spec.image
                ));
                String::new()
            }
        };
        for (field, alternatives) in [("args", &spec.args), ("command", &spec.command)] {
            if alternatives.as_ref().is_some_and(Vec::is_empty) {
                problems.push(format!(
                    "sidecarProfiles[{index}].{field}: an empty list of alternatives allows \
                     nothing; write [[]] for no {field}, or leave {field} out"
                ));
            }
        }
        let keys = spec
            .annotations
            .keys()
            .map(|key| (format!("annotations key {key:?}"), key))
            .chain(
                spec.required_annotations
                    .iter()
                    .enumerate()
                    .map(|(n, key)| (format!("requiredAnnotations[{n}] {key:?}"), key)),
            );
        for (field, key) in keys {
            if let Err(e) = check_qualified_name(key) {
                problems.push(format!(
                    "sidecarProfiles[{index}].{field}: not a valid annotation key: {e}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self {
                index,
                spec,
                registry,
                patterns: OnceCell::new(),
            })
        } else {
            Err(problems)
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn spec(&self) -> &SidecarProfile {
        &self.spec
    }

    /// Whether this profile governs the requested image. The form is parsed again for an image
    /// of its registry rather than kept (it borrows from the profile): that costs no allocation
    /// for most forms.
    pub fn governs(&self, image: &ImageReference) -> bool {
        self.registry == image.registry
            && AllowedImage::parse(&self.spec.image).is_ok_and(|form| form.allows(image))
    }

    /// Whether its `command` alternatives grant `command` (an entry's non-empty command).
    pub fn grants_command(&self, command: &[String]) -> Result<bool, String> {
        let patterns = self.patterns()?;
        Ok(patterns.command.as_ref().is_some_and(|alternatives| {
            matching_alternative("command", alternatives, command).is_ok()
        }))
    }

    /// Whether the profile has `command` alternatives.
    pub fn constrains_command(&self) -> bool {
        self.spec.command.is_some()
    }

    /// The annotation keys this profile reads, constrained or required.
    pub fn annotation_keys(&self) -> impl Iterator<Item = &str> {
        self.spec
            .annotations
            .keys()
            .chain(&self.spec.required_annotations)
            .map(String::as_str)
    }

    /// Every reason why an entry with this `command` and `args`, beside these annotations,
    /// does not satisfy the profile; empty when it does. The `command` reasons are about the
    /// profile's alternatives only: whether `allowCommand` allows a command is the caller's.
    pub fn mismatches(
        &self,
        command: &[String],
        args: &[String],
        annotations: &dyn AnnotationLookup,
    ) -> Vec<String> {
        let patterns = match self.patterns() {
            Ok(patterns) => patterns,
            Err(e) => return vec![format!("invalid policy settings: {e}")],
        };
        let mut reasons = Vec::new();
        if let Some(alternatives) = &patterns.args
            && let Err(reason) = matching_alternative("args", alternatives, args)
        {
            reasons.push(reason);
        }
        if let (Some(alternatives), false) = (&patterns.command, command.is_empty())
            && let Err(reason) = matching_alternative("command", alternatives, command)
        {
            reasons.push(reason);
        }
        for (key, pattern) in &patterns.annotations {
            if let Some(value) = annotations.annotation(key)
                && !pattern.matches(value)
            {
                reasons.push(format!(
                    "annotation {key:?} {} does not match {:?}",
                    shorten(value),
                    pattern.source
                ));
            }
        }
        for key in &self.spec.required_annotations {
            if annotations.annotation(key).is_none() {
                reasons.push(format!("annotation {key:?} is required and absent"));
            }
        }
        reasons
    }

    fn patterns(&self) -> Result<&Patterns, String> {
        self.patterns
            .get_or_init(|| compile_patterns(self.index, &self.spec, Compile::Deferred))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sidecarProfiles[{}] (image {:?})",
            self.index, self.spec.image
        )
    }
}

/// Compiles every pattern of a profile, naming each one that does not compile.
fn compile_patterns(
    index: usize,
    spec: &SidecarProfile,
    mode: Compile,
) -> Result<Patterns, String> {
    let mut problems = Vec::new();
    let mut compile = |field: String, source: &str| {
        Pattern::compile(source, mode)
            .map_err(|e| problems.push(format!("sidecarProfiles[{index}].{field} {source:?}: {e}")))
            .ok()
    };
    let mut alternatives = |field: &str, lists: &Option<Vec<Vec<String>>>| {
        lists.as_ref().map(|lists| {
            let mut compiled = Vec::with_capacity(lists.len());
            for (a, list) in lists.iter().enumerate() {
                let mut patterns = Vec::with_capacity(list.len());
                for (n, source) in list.iter().enumerate() {
                    patterns.extend(compile(format!("{field}[{a}][{n}]"), source));
                }
                compiled.push(patterns);
            }
            compiled
        })
    };
    let args = alternatives("args", &spec.args);
    let command = alternatives("command", &spec.command);
    let annotations = spec
        .annotations
        .iter()
        .filter_map(|(key, source)| {
            compile(format!("annotations[{key:?}]"), source).map(|p| (key.clone(), p))
        })
        .collect();
    if problems.is_empty() {
        Ok(Patterns {
            args,
            command,
            annotations,
        })
    } else {
        Err(problems.join("; "))
    }
}

/// `Ok` when `values` matches one alternative, else why it matches none.
fn matching_alternative(
    field: &str,
    alternatives: &[Vec<Pattern>],
    values: &[String],
) -> Result<(), String> {
    let mut reasons = Vec::with_capacity(alternatives.len());
    for patterns in alternatives {
        match mismatch(field, patterns, values) {
            None => return Ok(()),
            Some(reason) => reasons.push(reason),
        }
    }
    Err(match reasons.as_slice() {
        [only] => only.clone(),
        _ => format!(
            "{field} {} matches none of the {} alternatives: {}",
            shorten_list(values),
            reasons.len(),
            reasons
                .iter()
                .enumerate()
                .map(|(a, reason)| format!("[{a}] {reason}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Why `values` does not match one alternative (same length, each element its pattern).
fn mismatch(field: &str, patterns: &[Pattern], values: &[String]) -> Option<String> {
    if patterns.len() != values.len() {
        return Some(format!(
            "{field} {} has {} elements, not the {} of {:?}",
            shorten_list(values),
            values.len(),
            patterns.len(),
            patterns.iter().map(|p| &p.source).collect::<Vec<_>>()
        ));
    }
    patterns
        .iter()
        .zip(values)
        .enumerate()
        .find(|(_, (pattern, value))| !pattern.matches(value))
        .map(|(n, (pattern, value))| {
            format!(
                "{field}[{n}] {} does not match {:?}",
                shorten(value),
                pattern.source
            )
        })
}

/// The most bytes of a value that a rejection quotes; a longer one is cut, with its length.
const SHOWN_BYTES: usize = 100;

/// The value quoted as written, or its beginning and its length when it is long.
fn shorten(value: &str) -> String {
    text::quoted(value, SHOWN_BYTES)
}

fn shorten_list(values: &[String]) -> String {
    let shown: Vec<String> = values.iter().map(|v| shorten(v)).collect();
    format!("[{}]", shown.join(", "))
}

/// The parsed `sidecarProfiles`, patterns not compiled yet.
#[derive(Debug, Default)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Profiles {
    /// Reads every profile and its image form, naming every problem at once. Patterns are not
    /// compiled here: see [`Profiles::compile_all`].
    pub fn parse(raw: &[Box<RawValue>]) -> Result<Self, Vec<String>> {
        let mut profiles = Vec::with_capacity(raw.len());
        let mut problems = Vec::new();
        for (index, raw) in raw.iter().enumerate() {
            match Profile::parse(index, raw) {
                Ok(profile) => profiles.push(profile),
                Err(mut reasons) => problems.append(&mut reasons),
            }
        }
        if problems.is_empty() {
            Ok(Self { profiles })
        } else {
            Err(problems)
        }
    }

    /// Compiles every pattern (what `validate_settings` does), naming every one that fails.
    pub fn compile_all(&self) -> Result<(), Vec<String>> {
        let problems: Vec<String> = self
            .profiles
            .iter()
            .filter_map(|profile| {
                compile_patterns(profile.index, &profile.spec, Compile::Checked).err()
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The profiles that govern the (normalized) requested image, in the order written.
    pub fn governing(&self, image: &ImageReference) -> Vec<&Profile> {
        self.profiles
            .iter()
            .filter(|profile| profile.governs(image))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).expect("JSON")
    }

    fn profile(value: serde_json::Value) -> Profile {
        Profile::parse(0, &raw(value)).expect("valid profile")
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    const MMIO: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+";
    const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";

    fn mmio_profile() -> Profile {
        profile(json!({
            "image": "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0",
            "args": [["--version", "v1alpha3"]],
            "annotations": {ARGS_KEY: MMIO},
        }))
    }

    #[rstest]
    #[case::pinned(&["--version", "v1alpha3"], "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536", &[])]
    #[case::annotation_absent(&["--version", "v1alpha3"], "", &[])]
    #[case::other_args(&["--version", "v1alpha2"], "", &["args[1] \"v1alpha2\" does not match \"v1alpha3\""])]
    #[case::no_args(&[], "", &["args [] has 0 elements, not the 2 of [\"--version\", \"v1alpha3\"]"])]
    #[case::appended_option(&["--version", "v1alpha3"], "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -device vfio-pci,host=01:00.0", &["annotation \"qemu-commandline.hooks.example.com/args\" \"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -device vfio-pci,host=01:00.0\" does not match \"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+\""])]
    #[case::prefix_is_not_enough(&["--version", "v1alpha3"], "x-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1", &["annotation \"qemu-commandline.hooks.example.com/args\" \"x-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1\" does not match \"-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+\""])]
    fn the_mmio_profile(
        #[case] args: &[&str],
        #[case] annotation: &str,
        #[case] expected: &[&str],
    ) {
        let mut annotations = BTreeMap::new();
        if !annotation.is_empty() {
            annotations.insert(ARGS_KEY.to_owned(), annotation.to_owned());
        }
        let reasons = mmio_profile().mismatches(&[], &strings(args), &annotations);
        assert_eq!(reasons, strings(expected));
    }

    #[rstest]
    #[case::no_args_only(json!([[]]), &[], true)]
    #[case::no_args_only_refuses(json!([[]]), &["x"], false)]
    #[case::either(json!([["a"], ["b", "c"]]), &["b", "c"], true)]
    #[case::neither(json!([["a"], ["b", "c"]]), &["b"], false)]
    #[case::pattern(json!([["--size=[0-9]{1,5}"]]), &["--size=65536"], true)]
    #[case::anchored(json!([["--size=[0-9]{1,5}"]]), &["--size=65536;x"], false)]
    #[case::alternation_is_anchored_too(json!([["a|b"]]), &["ab"], false)]
    fn args_alternatives(
        #[case] args: serde_json::Value,
        #[case] values: &[&str],
        #[case] satisfied: bool,
    ) {
        let profile = profile(json!({"image": "hook:1", "args": args}));
        let reasons = profile.mismatches(&[], &strings(values), &BTreeMap::new());
        assert_eq!(reasons.is_empty(), satisfied, "{reasons:?}");
    }

    #[test]
    fn several_alternatives_each_say_why() {
        let profile = profile(json!({"image": "hook:1", "args": [["a"], ["b", "c"]]}));
        let reasons = profile.mismatches(&[], &strings(&["b", "x"]), &BTreeMap::new());
        assert_eq!(
            reasons,
            [
                "args [\"b\", \"x\"] matches none of the 2 alternatives: [0] args [\"b\", \"x\"] \
              has 2 elements, not the 1 of [\"a\"], [1] args[1] \"x\" does not match \"c\""
            ]
        );
    }

    #[rstest]
    #[case(&[], None, true)]
    #[case(&["/hook"], Some(true), true)]
    #[case(&["/bin/sh", "-c"], Some(false), false)]
    fn command_alternatives(
        #[case] command: &[&str],
        #[case] granted: Option<bool>,
        #[case] satisfied: bool,
    ) {
        let profile = profile(json!({"image": "hook:1", "command": [["/hook"]]}));
        let command = strings(command);
        if let Some(granted) = granted {
            assert_eq!(profile.grants_command(&command), Ok(granted));
        }
        let reasons = profile.mismatches(&command, &[], &BTreeMap::new());
        assert_eq!(reasons.is_empty(), satisfied, "{reasons:?}");
    }

    #[test]
    fn required_annotations_must_be_present() {
        let profile = profile(json!({"image": "hook:1", "requiredAnnotations": [ARGS_KEY]}));
        assert_eq!(
            profile.mismatches(&[], &[], &BTreeMap::new()),
            [format!("annotation {ARGS_KEY:?} is required and absent")]
        );
        let present = BTreeMap::from([(ARGS_KEY.to_owned(), String::new())]);
        assert!(profile.mismatches(&[], &[], &present).is_empty());
    }

    #[rstest]
    #[case("v1alpha3", "v1alpha3", true)]
    #[case("v1alpha3", "v1alpha30", false)]
    #[case("--version", "--version", true)]
    #[case("a b/c=d,e:f", "a b/c=d,e:f", true)]
    #[case("a.c", "abc", true)]
    #[case("a\\.c", "abc", false)]
    #[case("", "", true)]
    #[case("", "x", false)]
    #[case("é", "é", true)]
    fn literal_and_compiled_patterns_agree(
        #[case] source: &str,
        #[case] value: &str,
        #[case] expected: bool,
    ) {
        let pattern = Pattern::compile(source, Compile::Deferred).expect("compiles");
        assert_eq!(pattern.matches(value), expected);
        // The same answer from the compiled form, which a literal skips.
        let whole = Regex::new(&format!("^(?:{source})$")).expect("compiles");
        assert_eq!(whole.is_match(value), expected);
    }

    #[test]
    fn a_request_compiles_once_and_validate_settings_refuses_what_escapes_the_anchors() {
        assert!(Pattern::compile("a)|(b", Compile::Checked).is_err());
        let profiles =
            Profiles::parse(&[raw(json!({"image": "a", "args": [["a)|(b"]]}))]).expect("read");
        assert!(profiles.compile_all().is_err());
    }

    #[test]
    fn long_values_are_shortened() {
        let value = "x".repeat(300);
        let shown = shorten(&value);
        assert!(
            shown.ends_with("… (300 bytes)") && shown.len() < 120,
            "{shown}"
        );
        assert_eq!(shorten("é"), "\"é\"");
    }

    #[test]
    fn a_pattern_is_compiled_only_when_a_value_is_matched_against_it() {
        let profile = mmio_profile();
        let compiled =
            |profile: &Profile| match &profile.patterns().expect("read").annotations[0].1.matcher {
                Matcher::Whole(regex) => regex.get().is_some(),
                Matcher::Literal => panic!("the MMIO pattern is a regular expression"),
            };
        let args = strings(&["--version", "v1alpha3"]);
        assert!(profile.mismatches(&[], &args, &BTreeMap::new()).is_empty());
        assert!(!compiled(&profile), "compiled for an absent annotation");
        let present = BTreeMap::from([(
            ARGS_KEY.to_owned(),
            "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1".to_owned(),
        )]);
        assert!(profile.mismatches(&[], &args, &present).is_empty());
        assert!(compiled(&profile));
    }

    /// A profile governs exactly the images its form allows as an `allowedImages` entry: reading
    /// its registry first (to skip the others) changes nothing, whatever the spelling.
    #[rstest]
    #[case("busybox:*", "index.docker.io/library/busybox:1.36")]
    #[case("docker.io/library/busybox:*", "busybox")]
    #[case("registry.example.com/*", "registry.example.com/a/b:1")]
    #[case("registry.example.com/hooks/*", "registry.example.com:5000/hooks/x:1")]
    #[case("registry.example.com/hooks/*", "other.example.com/hooks/x:1")]
    #[case("[fd00::10]:5000/hooks/gpu:v1", "[fd00::10]:5000/hooks/gpu:v1")]
    #[case("[fd00::10]:5000/hooks/gpu:v1", "[fd00::10]/hooks/gpu:v1")]
    #[case("localhost/hook:1", "localhost/hook:1")]
    #[case("hook:1", "localhost/hook:1")]
    fn a_profile_governs_what_its_form_allows(#[case] form: &str, #[case] image: &str) {
        let reference = ImageReference::parse(image).expect("image");
        let allowed = AllowedImage::parse(form).expect("form").allows(&reference);
        assert_eq!(profile(json!({"image": form})).governs(&reference), allowed);
    }

    #[test]
    fn patterns_are_compiled_on_first_use_only() {
        let profiles = Profiles::parse(&[
            raw(json!({"image": "hook:1", "args": [["a"]]})),
            raw(json!({"image": "other:1", "args": [["b"]]})),
        ])
        .expect("valid");
        let image = ImageReference::parse("hook:1").expect("image");
        let governing = profiles.governing(&image);
        assert_eq!(governing.len(), 1);
        assert!(
            governing[0]
                .mismatches(&[], &strings(&["a"]), &BTreeMap::new())
                .is_empty()
        );
        assert!(profiles.profiles[0].patterns.get().is_some());
        assert!(profiles.profiles[1].patterns.get().is_none());
    }

    #[rstest]
    #[case(json!({"image": "*"}), "sidecarProfiles[0].image \"*\": a wildcard is allowed only")]
    #[case(json!({"image": "Not/Valid"}), "sidecarProfiles[0].image \"Not/Valid\": not a valid image reference")]
    #[case(json!({"args": [[]]}), "sidecarProfiles[0]: missing field `image`")]
    #[case(json!({"image": "a", "arg": [[]]}), "sidecarProfiles[0]: unknown field `arg`")]
    #[case(json!({"image": "a", "args": []}), "sidecarProfiles[0].args: an empty list of alternatives allows nothing")]
    #[case(json!({"image": "a", "command": []}), "sidecarProfiles[0].command: an empty list of alternatives")]
    #[case(json!({"image": "a", "args": "x"}), "sidecarProfiles[0]: invalid type: string")]
    #[case(json!({"image": "a", "annotations": {"Bad Key": "x"}}), "sidecarProfiles[0].annotations key \"Bad Key\": not a valid annotation key")]
    #[case(json!({"image": "a", "annotations": {"Example.com/x": "x"}}), "the prefix \"Example.com\" must be a lowercase DNS subdomain")]
    #[case(json!({"image": "a", "requiredAnnotations": ["a/b/c"]}), "sidecarProfiles[0].requiredAnnotations[0] \"a/b/c\": not a valid annotation key")]
    #[case(json!({"image": "a", "annotations": {"x": "("}}), "sidecarProfiles[0].annotations[\"x\"] \"(\": ")]
    #[case(json!({"image": "a", "args": [["ok", "[z-a]"]]}), "sidecarProfiles[0].args[0][1] \"[z-a]\": ")]
    #[case(json!({"image": "a", "command": [["a)|(b"]]}), "sidecarProfiles[0].command[0][0] \"a)|(b\": ")]
    #[case(json!(5), "sidecarProfiles[0]: invalid type: integer")]
    fn refusals(#[case] value: serde_json::Value, #[case] message: &str) {
        let problems = match Profiles::parse(&[raw(value.clone())]) {
            Err(problems) => problems,
            Ok(profiles) => profiles.compile_all().expect_err("refused"),
        };
        let joined = problems.join("; ");
        assert!(joined.contains(message), "{value}: {joined}");
    }
}
