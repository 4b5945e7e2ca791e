//! Sidecar profiles (`sidecarProfiles`): what an allowed image may be given, not only which image.
//!
//! A profile pins the entry's `args`, optionally grants a `command`, and constrains the VM
//! annotations the sidecar reads. It never allows an image by itself. Which requests a profile
//! governs is decided by what runs, not by how the request spells it ([`Profiles::governance`],
//! docs/settings-profiles.md): a profile that names a tag governs that tag whatever digest the
//! request adds, and a request by digest, which may be any tag's content, is governed by every
//! profile of its repository.
//!
//! Settings arrive with every request and most requests carry no sidecar, so nothing here is done
//! before it is needed: a profile is read from its JSON only for a request with sidecars, and its
//! patterns are compiled only when it governs one of the request's images. A request's values are
//! matched within bounds ([`Matching`]): each no longer than `profileValueMaxBytes`, each
//! constrained annotation judged once per profile, the whole within a budget of work.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::allowlist::AllowedImage;
use crate::kubernetes_names::check_qualified_name;
use crate::pattern::{self, Regexp};
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

/// The default of `profileValueMaxBytes`: the longest value a profile's pattern is matched
/// against. Longer ones are refused with their length, unread.
pub const VALUE_MAX_BYTES_DEFAULT: usize = 4096;
/// The largest `profileValueMaxBytes`: the API server's limit on all of an object's annotations.
pub const VALUE_MAX_BYTES_LIMIT: usize = 256 * 1024;
/// The most matching one request may do, in steps (one pattern state at one character of a
/// value, [`crate::pattern::Regexp::cost`]). Every pattern must fit it with a value of
/// `profileValueMaxBytes` (`validate_settings` refuses one that does not), so a single value
/// is always matched; a request with many long values fails closed past it. Its measured time
/// in the wasm module, at its worst: docs/matching.md.
pub const MATCH_WORK_MAX: u64 = 500_000;

/// How one request's values are matched: no value longer than `profileValueMaxBytes`, each
/// constrained annotation judged once per profile and key (32 entries under one profile read
/// its annotations once), all of it within [`MATCH_WORK_MAX`]. A fresh one for every request.
#[derive(Debug)]
pub struct Matching {
    value_max_bytes: usize,
    judged: RefCell<Vec<JudgedAnnotation>>,
    work_left: Cell<u64>,
}

/// A constrained annotation's value, and why it does not satisfy a profile's pattern.
#[derive(Debug)]
struct JudgedAnnotation {
    profile: usize,
    key: usize,
    value: Box<str>,
    mismatch: Option<String>,
}

impl Matching {
    pub fn new(value_max_bytes: usize) -> Self {
        Self {
            value_max_bytes,
            judged: RefCell::new(Vec::new()),
            work_left: Cell::new(MATCH_WORK_MAX),
        }
    }

    /// What was judged of `value` for the profile's annotation `key`, or `judge`'s answer,
    /// kept for the next entry that asks (a value longer than the bound is judged by its
    /// length, which needs no keeping).
    fn annotation(
        &self,
        profile: usize,
        key: usize,
        value: &str,
        judge: impl FnOnce() -> Option<String>,
    ) -> Option<String> {
        if value.len() > self.value_max_bytes {
            return judge();
        }
        let known = self.judged.borrow().iter().find_map(|judged| {
            (judged.profile == profile && judged.key == key && *judged.value == *value)
                .then(|| judged.mismatch.clone())
        });
        if let Some(mismatch) = known {
            return mismatch;
        }
        let mismatch = judge();
        self.judged.borrow_mut().push(JudgedAnnotation {
            profile,
            key,
            value: value.into(),
            mismatch: mismatch.clone(),
        });
        mismatch
    }

    /// Whether `value` matches `pattern`; `Err` when it is not matched, and why.
    fn matches(&self, pattern: &Pattern, value: &str) -> Result<bool, String> {
        if value.len() > self.value_max_bytes {
            return Err(format!(
                "is {} bytes, more than profileValueMaxBytes ({}), so it is not matched",
                value.len(),
                self.value_max_bytes
            ));
        }
        let regexp = match &pattern.matcher {
            Matcher::Literal => return Ok(value == pattern.source),
            Matcher::Compiled(regexp) => {
                regexp.get_or_init(|| pattern::compile(&pattern.source).ok())
            }
        };
        // A pattern that does not compile alone matches nothing.
        let Some(regexp) = regexp else {
            return Ok(false);
        };
        let cost = regexp.cost(value.len());
        let left = self.work_left.get();
        if cost > left {
            return Err(format!(
                "is not matched: this request's values would take more matching than the \
                 policy does for one request ({MATCH_WORK_MAX} steps)"
            ));
        }
        self.work_left.set(left - cost);
        Ok(regexp.is_match(value))
    }
}

/// A regular expression (RE2's syntax and meaning, `crate::pattern`) matched against the whole
/// value.
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
    /// Compiled by `crate::pattern::compile` when a value is first matched against it (a
    /// profile's pattern for an annotation the request does not carry is never compiled), or
    /// at once by `validate_settings`. `None` if it does not compile: it matches nothing (a
    /// pattern over the budget compiles, and a long value fails against it by the budget).
    Compiled(OnceCell<Option<Regexp>>),
}

/// How much checking a compilation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compile {
    /// What `validate_settings` does: every pattern compiled now, its error named, and its cost
    /// on a value of `value_max_bytes` within a request's budget.
    Checked { value_max_bytes: usize },
    /// What a request does with settings that `validate_settings` accepted: each pattern
    /// compiled when a value is first matched against it, by the same function.
    Deferred,
}

/// The characters that make a pattern more than its literal text in RE2's syntax.
const METACHARACTERS: &[char] = &[
    '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
];

impl Pattern {
    fn compile(source: &str, mode: Compile) -> Result<Self, String> {
        let matcher = if !source.contains(METACHARACTERS) {
            Matcher::Literal
        } else if let Compile::Checked { value_max_bytes } = mode {
            let regexp = pattern::compile(source).map_err(|e| e.to_string())?;
            let cost = regexp.cost(value_max_bytes);
            if cost > MATCH_WORK_MAX {
                return Err(format!(
                    "matching a value of profileValueMaxBytes ({value_max_bytes}) would take up to \
                     {cost} steps ({} instructions, each stepped through once per character), more \
                     than the {MATCH_WORK_MAX} a request may take: simplify the pattern, bound its \
                     repetitions, or lower profileValueMaxBytes",
                    regexp.program_size()
                ));
            }
            Matcher::Compiled(OnceCell::from(Some(regexp)))
        } else {
            Matcher::Compiled(OnceCell::new())
        };
        Ok(Self {
            source: source.to_owned(),
            matcher,
        })
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

/// What of a repository's images a profile governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'p> {
    /// Every image of the repository: `repo:*`, `registry/path/*`, or a digest without tag.
    Repository,
    /// One tag, whatever digest a request adds; `digest`, if the profile names one too, says
    /// which content that tag is.
    Tag {
        tag: &'p str,
        digest: Option<&'p str>,
    },
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

    /// What this profile governs of the requested image's repository; `None` when it names
    /// another repository. The form is parsed again for an image of its registry rather than
    /// kept (it borrows from the profile): that costs no allocation for most forms.
    fn scope(&self, image: &ImageReference) -> Option<Scope<'_>> {
        if self.registry != image.registry {
            return None;
        }
        let form = AllowedImage::parse(&self.spec.image).ok()?;
        if !form.covers_repository(image) {
            return None;
        }
        Some(match form {
            AllowedImage::Exact(ImageReference {
                tag: Some(tag),
                digest,
                ..
            }) => Scope::Tag { tag, digest },
            _ => Scope::Repository,
        })
    }

    /// Whether its `command` alternatives grant `command` (an entry's non-empty command).
    pub fn grants_command(&self, command: &[String], matching: &Matching) -> Result<bool, String> {
        let patterns = self.patterns()?;
        Ok(patterns.command.as_ref().is_some_and(|alternatives| {
            matching_alternative("command", alternatives, command, matching).is_ok()
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
        matching: &Matching,
    ) -> Vec<String> {
        let patterns = match self.patterns() {
            Ok(patterns) => patterns,
            Err(e) => return vec![format!("invalid policy settings: {e}")],
        };
        let mut reasons = Vec::new();
        if let Some(alternatives) = &patterns.args
            && let Err(reason) = matching_alternative("args", alternatives, args, matching)
        {
            reasons.push(reason);
        }
        if let (Some(alternatives), false) = (&patterns.command, command.is_empty())
            && let Err(reason) = matching_alternative("command", alternatives, command, matching)
        {
            reasons.push(reason);
        }
        for (n, (key, pattern)) in patterns.annotations.iter().enumerate() {
            let Some(value) = annotations.annotation(key) else {
                continue;
            };
            let mismatch = matching.annotation(self.index, n, value, || {
                match matching.matches(pattern, value) {
                    Ok(true) => None,
                    Ok(false) => Some(format!(
                        "annotation {key:?} {} does not match {:?}",
                        shorten(value),
                        pattern.source
                    )),
                    Err(why) => Some(format!("annotation {key:?} {why}")),
                }
            });
            reasons.extend(mismatch);
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
    matching: &Matching,
) -> Result<(), String> {
    let mut reasons = Vec::with_capacity(alternatives.len());
    for patterns in alternatives {
        match mismatch(field, patterns, values, matching) {
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
fn mismatch(
    field: &str,
    patterns: &[Pattern],
    values: &[String],
    matching: &Matching,
) -> Option<String> {
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
        .find_map(
            |(n, (pattern, value))| match matching.matches(pattern, value) {
                Ok(true) => None,
                Ok(false) => Some(format!(
                    "{field}[{n}] {} does not match {:?}",
                    shorten(value),
                    pattern.source
                )),
                Err(why) => Some(format!("{field}[{n}] {why}")),
            },
        )
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

    /// Compiles every pattern (what `validate_settings` does), naming every one that fails or
    /// that would cost more than a request's budget on a value of `value_max_bytes`.
    pub fn compile_all(&self, value_max_bytes: usize) -> Result<(), Vec<String>> {
        let mode = Compile::Checked { value_max_bytes };
        let problems: Vec<String> = self
            .profiles
            .iter()
            .filter_map(|profile| compile_patterns(profile.index, &profile.spec, mode).err())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The profiles that govern the (normalized) requested image, and how they combine.
    ///
    /// What runs is the digest when the request names one (the runtime drops a tag written
    /// beside a digest: `distribution/reference.ParseDockerRef`), else the tag. So:
    /// - a request by tag is governed by the profiles of its repository that name that tag or no
    ///   tag (`repo:*`, `registry/path/*`, `repo@digest`); it must satisfy one of them;
    /// - a request by digest (with or without a tag) may be any tag's content. When profiles
    ///   name its digest beside a tag (`repo:tag@digest`), it is judged as a request for that
    ///   tag. Otherwise it must satisfy one profile that names no tag, when there is one (such a
    ///   profile governs every tag), else, for every tag the repository's profiles name, one
    ///   profile of that tag.
    pub fn governance(&self, image: &ImageReference) -> Governance<'_> {
        let scoped: Vec<(&Profile, Scope)> = self
            .profiles
            .iter()
            .filter_map(|profile| Some((profile, profile.scope(image)?)))
            .collect();
        let of_tag = |tag: &str| -> Vec<&Profile> {
            scoped
                .iter()
                .filter(|(_, scope)| match scope {
                    Scope::Repository => true,
                    Scope::Tag { tag: named, .. } => *named == tag,
                })
                .map(|(profile, _)| *profile)
                .collect()
        };
        let groups = match image.digest {
            // `ImageReference::parse` gives a reference without digest its tag (`latest`).
            None => vec![(As::Written, of_tag(image.tag.unwrap_or("latest")))],
            Some(digest) => {
                let pinned = distinct(scoped.iter().filter_map(|(_, scope)| match scope {
                    Scope::Tag {
                        tag,
                        digest: Some(named),
                    } if *named == digest => Some(*tag),
                    _ => None,
                }));
                let any_tag: Vec<&Profile> = scoped
                    .iter()
                    .filter(|(_, scope)| *scope == Scope::Repository)
                    .map(|(profile, _)| *profile)
                    .collect();
                if !pinned.is_empty() {
                    pinned
                        .into_iter()
                        .map(|tag| (As::PinnedTag(tag), of_tag(tag)))
                        .collect()
                } else if !any_tag.is_empty() {
                    vec![(As::Written, any_tag)]
                } else {
                    let named = distinct(scoped.iter().filter_map(|(_, scope)| match scope {
                        Scope::Tag { tag, .. } => Some(*tag),
                        Scope::Repository => None,
                    }));
                    named
                        .into_iter()
                        .map(|tag| (As::NamedTag(tag), of_tag(tag)))
                        .collect()
                }
            }
        };
        Governance {
            groups: groups
                .into_iter()
                .filter(|(_, profiles)| !profiles.is_empty())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// The distinct items, in the order first met.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// How a group of profiles judges a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As<'p> {
    /// As the request is written: by its tag, or (by digest) by the profiles of every tag.
    Written,
    /// By digest, as a request for a tag the repository's profiles name.
    NamedTag(&'p str),
    /// By digest, as a request for the tag a profile names beside this digest.
    PinnedTag(&'p str),
}

/// The profiles that govern one requested image: every group must have a profile the sidecar
/// satisfies. No group: no profile governs the image.
#[derive(Debug, Default)]
pub struct Governance<'p> {
    groups: Vec<(As<'p>, Vec<&'p Profile>)>,
}

impl<'p> Governance<'p> {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every governing profile, once.
    pub fn profiles(&self) -> Vec<&'p Profile> {
        let mut profiles: Vec<&Profile> = Vec::new();
        for profile in self.groups.iter().flat_map(|(_, group)| group) {
            if !profiles.iter().any(|known| known.index == profile.index) {
                profiles.push(profile);
            }
        }
        profiles
    }

    /// Nothing when every group has a profile whose `failures` are none; else, for each group
    /// that has none, every profile's failures, named. A profile is judged once.
    pub fn judge(&self, mut failures: impl FnMut(&Profile) -> Vec<String>) -> Vec<String> {
        let mut judged: Vec<(usize, Vec<String>)> = Vec::new();
        let mut reasons = Vec::new();
        for (how, profiles) in &self.groups {
            let mut group = Vec::new();
            let mut satisfied = false;
            for profile in profiles {
                let known = judged.iter().position(|(index, _)| *index == profile.index);
                let index = match known {
                    Some(index) => index,
                    None => {
                        judged.push((profile.index, failures(profile)));
                        judged.len() - 1
                    }
                };
                let failed = &judged[index].1;
                if failed.is_empty() {
                    satisfied = true;
                    break;
                }
                let prefix = match how {
                    As::Written => String::new(),
                    As::NamedTag(tag) => format!(
                        "by digest, which may be any tag's content, so as tag {tag:?} too: "
                    ),
                    As::PinnedTag(tag) => {
                        format!("by the digest a profile names for tag {tag:?}, so as that tag: ")
                    }
                };
                group.extend(
                    failed
                        .iter()
                        .map(|reason| format!("{prefix}{profile}: {reason}")),
                );
            }
            if !satisfied {
                reasons.append(&mut group);
            }
        }
        reasons
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

    const CHECKED: Compile = Compile::Checked {
        value_max_bytes: VALUE_MAX_BYTES_DEFAULT,
    };

    fn matching() -> Matching {
        Matching::new(VALUE_MAX_BYTES_DEFAULT)
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
        let reasons = mmio_profile().mismatches(&[], &strings(args), &annotations, &matching());
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
        let reasons = profile.mismatches(&[], &strings(values), &BTreeMap::new(), &matching());
        assert_eq!(reasons.is_empty(), satisfied, "{reasons:?}");
    }

    #[test]
    fn several_alternatives_each_say_why() {
        let profile = profile(json!({"image": "hook:1", "args": [["a"], ["b", "c"]]}));
        let reasons = profile.mismatches(&[], &strings(&["b", "x"]), &BTreeMap::new(), &matching());
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
            assert_eq!(profile.grants_command(&command, &matching()), Ok(granted));
        }
        let reasons = profile.mismatches(&command, &[], &BTreeMap::new(), &matching());
        assert_eq!(reasons.is_empty(), satisfied, "{reasons:?}");
    }

    #[test]
    fn required_annotations_must_be_present() {
        let profile = profile(json!({"image": "hook:1", "requiredAnnotations": [ARGS_KEY]}));
        assert_eq!(
            profile.mismatches(&[], &[], &BTreeMap::new(), &matching()),
            [format!("annotation {ARGS_KEY:?} is required and absent")]
        );
        let present = BTreeMap::from([(ARGS_KEY.to_owned(), String::new())]);
        assert!(
            profile
                .mismatches(&[], &[], &present, &matching())
                .is_empty()
        );
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
        assert_eq!(matching().matches(&pattern, value), Ok(expected));
        // The same answer from the compiled form, which a literal skips.
        let whole = pattern::compile(source).expect("compiles");
        assert_eq!(whole.is_match(value), expected);
    }

    #[test]
    fn a_request_compiles_once_and_validate_settings_refuses_what_escapes_the_anchors() {
        assert!(Pattern::compile("a)|(b", CHECKED).is_err());
        let profiles =
            Profiles::parse(&[raw(json!({"image": "a", "args": [["a)|(b"]]}))]).expect("read");
        assert!(profiles.compile_all(VALUE_MAX_BYTES_DEFAULT).is_err());
    }

    /// Settings that skipped `validate_settings` (issue 21): the pattern is compiled alone at
    /// request time too, so what escapes the anchors once wrapped matches nothing.
    #[rstest]
    #[case("a)|(b", "a")]
    #[case("a)|(b", "axxx")]
    #[case(
        "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+)|(x",
        "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1 -drive file=/dev/sda"
    )]
    #[case("(", "(")]
    #[case("x{1001}", "x")]
    fn a_pattern_that_does_not_compile_alone_matches_nothing_at_request_time(
        #[case] source: &str,
        #[case] value: &str,
    ) {
        let pattern = Pattern::compile(source, Compile::Deferred).expect("deferred");
        assert_eq!(matching().matches(&pattern, value), Ok(false));
        assert!(Pattern::compile(source, CHECKED).is_err());
    }

    #[test]
    fn a_value_longer_than_the_bound_is_refused_with_its_length_unmatched() {
        let mmio = mmio_profile();
        let long = format!(
            "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string={}",
            "1".repeat(5000)
        );
        let annotations = BTreeMap::from([(ARGS_KEY.to_owned(), long.clone())]);
        let matching = matching();
        let args = strings(&["--version", "v1alpha3"]);
        let reasons = mmio.mismatches(&[], &args, &annotations, &matching);
        assert_eq!(
            reasons,
            [format!(
                "annotation {ARGS_KEY:?} is {} bytes, more than profileValueMaxBytes (4096), so it \
                 is not matched",
                long.len()
            )]
        );
        assert_eq!(
            matching.work_left.get(),
            MATCH_WORK_MAX,
            "a long value was matched"
        );
        // The same bound for args, and a larger bound lets it through.
        let pinned = profile(json!({"image": "hook:1", "args": [["[0-9]+"]]}));
        let args = strings(&[&"1".repeat(5000)]);
        assert_eq!(
            pinned.mismatches(&[], &args, &BTreeMap::new(), &matching),
            ["args[0] is 5000 bytes, more than profileValueMaxBytes (4096), so it is not matched"]
        );
        assert!(
            pinned
                .mismatches(&[], &args, &BTreeMap::new(), &Matching::new(8192))
                .is_empty()
        );
    }

    #[test]
    fn an_annotation_is_judged_once_per_profile_and_key_whatever_the_entries() {
        let profile = mmio_profile();
        let value = format!(
            "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string={}",
            "1".repeat(4000)
        );
        let annotations = BTreeMap::from([(ARGS_KEY.to_owned(), value)]);
        let args = strings(&["--version", "v1alpha3"]);
        let matching = matching();
        assert!(
            profile
                .mismatches(&[], &args, &annotations, &matching)
                .is_empty()
        );
        let after_one = matching.work_left.get();
        assert!(after_one < MATCH_WORK_MAX);
        for _ in 0..31 {
            assert!(
                profile
                    .mismatches(&[], &args, &annotations, &matching)
                    .is_empty()
            );
        }
        assert_eq!(
            matching.work_left.get(),
            after_one,
            "matched again for another entry"
        );
        assert_eq!(matching.judged.borrow().len(), 1);
        // Another value for the same key is judged on its own.
        let other = BTreeMap::from([(ARGS_KEY.to_owned(), "-kernel /x".to_owned())]);
        assert_eq!(profile.mismatches(&[], &args, &other, &matching).len(), 1);
        assert_eq!(matching.judged.borrow().len(), 2);
    }

    #[test]
    fn matching_past_the_request_budget_fails_closed() {
        let pinned = profile(json!({"image": "hook:1", "args": [["[0-9]+"]]}));
        let args = strings(&[&"1".repeat(4000)]);
        // `[0-9]+` is 2 instructions, unbounded: each match of 4000 bytes costs 8002. Two fit.
        let matching = matching();
        matching.work_left.set(2 * 8002 + 1);
        for _ in 0..2 {
            assert!(
                pinned
                    .mismatches(&[], &args, &BTreeMap::new(), &matching)
                    .is_empty()
            );
        }
        assert_eq!(
            pinned.mismatches(&[], &args, &BTreeMap::new(), &matching),
            [format!(
                "args[0] is not matched: this request's values would take more matching than the \
                 policy does for one request ({MATCH_WORK_MAX} steps)"
            )]
        );
        assert_eq!(
            matching.work_left.get(),
            1,
            "nothing is spent on a refused match"
        );
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
                Matcher::Compiled(regex) => regex.get().is_some(),
                Matcher::Literal => panic!("the MMIO pattern is a regular expression"),
            };
        let args = strings(&["--version", "v1alpha3"]);
        assert!(
            profile
                .mismatches(&[], &args, &BTreeMap::new(), &matching())
                .is_empty()
        );
        assert!(!compiled(&profile), "compiled for an absent annotation");
        let present = BTreeMap::from([(
            ARGS_KEY.to_owned(),
            "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1".to_owned(),
        )]);
        assert!(
            profile
                .mismatches(&[], &args, &present, &matching())
                .is_empty()
        );
        assert!(compiled(&profile));
    }

    const R: &str = "registry.example.com/hooks/qemu";
    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    /// The groups of a governance, as `how [profile indices]` joined by `; `.
    fn described(governance: &Governance) -> String {
        let groups: Vec<String> = governance
            .groups
            .iter()
            .map(|(how, profiles)| {
                let how = match how {
                    As::Written => "as written".to_owned(),
                    As::NamedTag(tag) => format!("as {tag}"),
                    As::PinnedTag(tag) => format!("pinned to {tag}"),
                };
                let indices: Vec<String> = profiles.iter().map(|p| p.index.to_string()).collect();
                format!("{how} [{}]", indices.join(","))
            })
            .collect();
        groups.join("; ")
    }

    /// What governs a request is what it runs: its digest when it names one (the runtime drops a
    /// tag written beside it), else its tag. No spelling of an allowed image escapes a profile.
    #[rstest]
    // A tag profile governs its tag, whatever digest the request adds or however it is spelt.
    #[case::tag(&[":v1.2.0"], ":v1.2.0", "as written [0]")]
    #[case::tag_and_digest(&[":v1.2.0"], ":v1.2.0@D1", "as v1.2.0 [0]")]
    #[case::digest_alone(&[":v1.2.0"], "@D1", "as v1.2.0 [0]")]
    #[case::digest_with_another_tag(&[":v1.2.0"], ":v9@D1", "as v1.2.0 [0]")]
    #[case::other_tag(&[":v1.2.0"], ":v9", "")]
    #[case::no_tag_is_latest(&[":v1.2.0"], "", "")]
    // A digest may be any tag's content: judged as each tag the repository's profiles name.
    #[case::two_tags(&[":v1", ":v2"], "@D1", "as v1 [0]; as v2 [1]")]
    #[case::two_tags_by_tag(&[":v1", ":v2"], ":v2", "as written [1]")]
    // A profile that names a digest beside its tag says which tag that digest is.
    #[case::pinned(&[":v1@D1", ":v2"], "@D1", "pinned to v1 [0]")]
    #[case::pinned_whatever_the_tag_written(&[":v1@D1", ":v2"], ":v2@D1", "pinned to v1 [0]")]
    #[case::not_pinned(&[":v1@D1", ":v2"], "@D2", "as v1 [0]; as v2 [1]")]
    #[case::pinned_profile_governs_its_tag(&[":v1@D1", ":v2"], ":v1", "as written [0]")]
    #[case::pinned_profile_governs_its_tag_with_other_digests(&[":v1@D1"], ":v1@D2", "as v1 [0]")]
    // A profile that names no tag governs every tag, so a digest must satisfy one of those.
    #[case::any_tag_and_a_tag(&[":*", ":v1"], ":v1", "as written [0,1]")]
    #[case::any_tag_for_a_digest(&[":*", ":v1"], "@D1", "as written [0]")]
    #[case::any_tag_other_tag(&[":*", ":v1"], ":v9", "as written [0]")]
    #[case::digest_profile_governs_the_repository(&["@D1"], ":v1", "as written [0]")]
    #[case::digest_profile_and_other_digest(&["@D1"], "@D2", "as written [0]")]
    fn governance_by_what_runs(
        #[case] forms: &[&str],
        #[case] request: &str,
        #[case] expected: &str,
    ) {
        let raw: Vec<Box<RawValue>> = forms
            .iter()
            .map(|form| {
                let form = form.replace("D1", D1).replace("D2", D2);
                raw(json!({"image": format!("{R}{form}")}))
            })
            .collect();
        let profiles = Profiles::parse(&raw).expect("valid profiles");
        let request = format!("{R}{}", request.replace("D1", D1).replace("D2", D2));
        let image = ImageReference::parse(&request).expect("image");
        assert_eq!(
            described(&profiles.governance(&image)),
            expected,
            "{request}"
        );
    }

    /// Paths, registries and Docker Hub's spellings, as the allow-list reads them.
    #[rstest]
    #[case("registry.example.com/hooks/*", &format!("{R}@{D1}"), "as written [0]")]
    #[case(
        "registry.example.com/hooks/*",
        "registry.example.com/hooks/team/x:1",
        "as written [0]"
    )]
    #[case("registry.example.com/hooks/*", "registry.example.com/other/x:1", "")]
    #[case(
        "registry.example.com/hooks/*",
        "registry.example.com:5000/hooks/x:1",
        ""
    )]
    #[case("busybox:1.36", &format!("index.docker.io/library/busybox@{D1}"), "as 1.36 [0]")]
    #[case("docker.io/library/busybox:1.36", &format!("busybox:1.37@{D1}"), "as 1.36 [0]")]
    #[case("busybox:*", "docker.io/library/busybox", "as written [0]")]
    #[case("busybox:1.36", &format!("other@{D1}"), "")]
    #[case("[fd00::10]:5000/hooks/gpu:v1", &format!("[fd00::10]:5000/hooks/gpu@{D1}"), "as v1 [0]")]
    #[case("[fd00::10]:5000/hooks/gpu:v1", &format!("[fd00::10]/hooks/gpu@{D1}"), "")]
    #[case("hook:1", "localhost/hook:1", "")]
    fn governance_across_spellings(
        #[case] form: &str,
        #[case] request: &str,
        #[case] expected: &str,
    ) {
        let profiles = Profiles::parse(&[raw(json!({"image": form}))]).expect("valid");
        let image = ImageReference::parse(request).expect("image");
        assert_eq!(
            described(&profiles.governance(&image)),
            expected,
            "{form} vs {request}"
        );
    }

    #[test]
    fn every_group_needs_a_satisfied_profile_and_each_profile_is_judged_once() {
        let profiles = Profiles::parse(&[
            raw(json!({"image": format!("{R}:v1")})),
            raw(json!({"image": format!("{R}:v2")})),
            raw(json!({"image": format!("{R}:*")})),
        ])
        .expect("valid");
        // By tag v1: profiles 0 and 2; one satisfied is enough.
        let by_tag = format!("{R}:v1");
        let by_tag = ImageReference::parse(&by_tag).expect("image");
        let mut judged = Vec::new();
        let reasons = profiles.governance(&by_tag).judge(|profile| {
            judged.push(profile.index);
            if profile.index == 2 {
                Vec::new()
            } else {
                vec!["no".to_owned()]
            }
        });
        assert!(reasons.is_empty(), "{reasons:?}");
        assert_eq!(judged, [0, 2]);
        // By digest with tag profiles only: each tag's group must hold.
        let two = Profiles::parse(&[
            raw(json!({"image": format!("{R}:v1")})),
            raw(json!({"image": format!("{R}:v2")})),
        ])
        .expect("valid");
        let by_digest = format!("{R}@{D1}");
        let by_digest = ImageReference::parse(&by_digest).expect("image");
        let reasons = two.governance(&by_digest).judge(|profile| {
            if profile.index == 0 {
                Vec::new()
            } else {
                vec!["args differ".to_owned()]
            }
        });
        assert_eq!(
            reasons,
            [format!(
                "by digest, which may be any tag's content, so as tag \"v2\" too: \
                 sidecarProfiles[1] (image \"{R}:v2\"): args differ"
            )]
        );
    }

    #[test]
    fn patterns_are_compiled_on_first_use_only() {
        let profiles = Profiles::parse(&[
            raw(json!({"image": "hook:1", "args": [["a"]]})),
            raw(json!({"image": "other:1", "args": [["b"]]})),
        ])
        .expect("valid");
        let image = ImageReference::parse("hook:1").expect("image");
        let governing = profiles.governance(&image).profiles();
        assert_eq!(governing.len(), 1);
        assert!(
            governing[0]
                .mismatches(&[], &strings(&["a"]), &BTreeMap::new(), &matching())
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
            Ok(profiles) => profiles
                .compile_all(VALUE_MAX_BYTES_DEFAULT)
                .expect_err("refused"),
        };
        let joined = problems.join("; ");
        assert!(joined.contains(message), "{value}: {joined}");
    }
}
