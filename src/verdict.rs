//! The verdict on a request: what was found at each site of the object, turned into the
//! violations and warnings of the answer, with the rules that apply to every family alike, once:
//! a Setting that could not be read rejects every sidecar; an UPDATE is not rejected for a site it
//! leaves as it was; the message stays within a few KiB whatever the request.

use std::fmt;

use kubewarden_policy_sdk::response::ValidationResponse;

use crate::text;

/// The outcome before it becomes a waPC response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub warnings: Vec<String>,
}

/// One reason to reject, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The site (empty for a problem of the whole request).
    pub location: String,
    /// The entry of the annotation's list the reason is about, if it is about one.
    pub entry: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.location.is_empty(), self.entry) {
            (true, _) => f.write_str(&self.reason),
            (false, None) => write!(f, "{}: {}", self.location, self.reason),
            (false, Some(entry)) => write!(f, "{}[{entry}]: {}", self.location, self.reason),
        }
    }
}

/// What the judge found at one site ([`crate::sidecar::Site`]).
#[derive(Debug, Default)]
pub struct SiteFindings {
    /// How messages name the site.
    pub place: String,
    /// Whether the site brings any sidecar (a Setting failure is about sidecars).
    pub has_sidecars: bool,
    /// Reasons to reject, each with the entry it is about, if any.
    pub reasons: Vec<(Option<usize>, String)>,
    pub warnings: Vec<String>,
}

/// A rejection lists at most this many distinct reasons, then counts the others.
const LISTED_REASONS_MAX: usize = 6;
/// One reason names at most this many entries, then counts the others.
const LISTED_ENTRIES_MAX: usize = 3;
/// Reasons quote what the VM owner wrote; a longer one is cut to this many bytes.
const REASON_BYTES_MAX: usize = 400;

impl Verdict {
    /// A rejection of the whole request.
    pub fn rejection(reason: String) -> Self {
        Self {
            violations: vec![Violation {
                location: String::new(),
                entry: None,
                reason,
            }],
            warnings: Vec::new(),
        }
    }

    /// No violation yet, and warnings about the whole request.
    pub fn with_warnings(warnings: Vec<String>) -> Self {
        Self {
            violations: Vec::new(),
            warnings,
        }
    }

    /// Adds what was found at one site. A Setting that could not be read (`setting_failure`)
    /// leaves every sidecar undecided, so a site with sidecars is rejected with it first. A site
    /// with reasons to reject that `is_unchanged` (asked only then) says the update leaves as it
    /// was is accepted with a warning instead: a VM whose sidecar left the list can still be
    /// stopped, edited or deleted, and a disallowed copy at one site does not block edits of
    /// another.
    pub fn add_site(
        &mut self,
        site: SiteFindings,
        setting_failure: Option<&str>,
        is_unchanged: impl FnOnce() -> bool,
    ) {
        let failure = setting_failure.filter(|_| site.has_sidecars);
        let reasons = failure.map(|reason| (None, reason.to_owned()));
        let mut violations: Vec<Violation> = (reasons.into_iter().chain(site.reasons))
            .map(|(entry, reason)| Violation {
                location: site.place.clone(),
                entry,
                reason,
            })
            .collect();
        self.warnings.extend(site.warnings);
        if violations.is_empty() {
            return;
        }
        if is_unchanged() {
            // The site is named once, before the reasons.
            for violation in &mut violations {
                violation.location.clear();
            }
            self.warnings.push(format!(
                "{} is unchanged by this update, so it is accepted, but it would be rejected \
                 now: {}",
                site.place,
                summary(&violations)
            ));
        } else {
            self.violations.append(&mut violations);
        }
    }

    pub fn into_response(self) -> ValidationResponse {
        let accepted = self.violations.is_empty();
        ValidationResponse {
            accepted,
            message: (!accepted)
                .then(|| format!("hook sidecars rejected: {}", summary(&self.violations))),
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: (!self.warnings.is_empty()).then_some(self.warnings),
        }
    }
}

/// The violations as one bounded text: identical reasons at one location collapsed onto the
/// entries they concern, at most `LISTED_REASONS_MAX` reasons, each at most `REASON_BYTES_MAX`
/// bytes. With 32 entries at most per location, this stays within a few KiB whatever the
/// request (the message goes back to the API server and into events and audit logs).
pub fn summary(violations: &[Violation]) -> String {
    let mut groups: Vec<(&str, &str, Vec<Option<usize>>)> = Vec::new();
    for violation in violations {
        let key = (violation.location.as_str(), violation.reason.as_str());
        match groups.iter_mut().find(|(l, r, _)| (*l, *r) == key) {
            Some((_, _, entries)) => entries.push(violation.entry),
            None => groups.push((key.0, key.1, vec![violation.entry])),
        }
    }
    let mut parts: Vec<String> = groups
        .iter()
        .take(LISTED_REASONS_MAX)
        .map(|(location, reason, entries)| {
            let place = match entries.as_slice() {
                [None, ..] if location.is_empty() => String::new(),
                [None, ..] => format!("{location}: "),
                _ => format!("{location}{}: ", entry_list(entries)),
            };
            format!("{place}{}", text::cut(reason, REASON_BYTES_MAX))
        })
        .collect();
    if groups.len() > LISTED_REASONS_MAX {
        parts.push(format!(
            "and {} more reasons",
            groups.len() - LISTED_REASONS_MAX
        ));
    }
    parts.join("; ")
}

/// `[0]`, `[0], [3]`, `[0], [1], [2] and 29 more entries`.
fn entry_list(entries: &[Option<usize>]) -> String {
    let listed: Vec<String> = entries
        .iter()
        .flatten()
        .take(LISTED_ENTRIES_MAX)
        .map(|entry| format!("[{entry}]"))
        .collect();
    let more = entries.len().saturating_sub(LISTED_ENTRIES_MAX);
    match more {
        0 => listed.join(", "),
        more => format!("{} and {more} more entries", listed.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use rstest::rstest;
    use serde_json::{Value, json};
    use std::cell::Cell;

    const FAILURE: &str = "cannot read Setting \"s\"";

    fn site(has_sidecars: bool, reasons: &[(Option<usize>, &str)]) -> SiteFindings {
        SiteFindings {
            place: "here".to_owned(),
            has_sidecars,
            reasons: (reasons.iter())
                .map(|(entry, reason)| (*entry, (*reason).to_owned()))
                .collect(),
            warnings: vec!["about the place".to_owned()],
        }
    }

    /// The rules that apply to every family, at one site: the Setting failure first, and only
    /// where there are sidecars; the exemption asked only when there is something to exempt.
    #[rstest]
    #[case::accepted(site(true, &[]), None, false, &[], &[])]
    #[case::rejected(site(true, &[(Some(0), "a"), (None, "b")]), None, false, &["here[0]: a", "here: b"], &[])]
    #[case::setting_failure_first(site(true, &[(Some(1), "a")]), Some(FAILURE), false, &["here: cannot read Setting \"s\"", "here[1]: a"], &[])]
    #[case::setting_failure_only_with_sidecars(site(false, &[(None, "undecodable")]), Some(FAILURE), false, &["here: undecodable"], &[])]
    #[case::unchanged(site(true, &[(Some(0), "a"), (Some(2), "a"), (None, "b")]), None, true, &[], &["here is unchanged by this update, so it is accepted, but it would be rejected now: [0], [2]: a; b"])]
    #[case::unchanged_with_the_setting_failure(site(true, &[]), Some(FAILURE), true, &[], &["here is unchanged by this update, so it is accepted, but it would be rejected now: cannot read Setting \"s\""])]
    fn a_site_is_judged_once_for_every_family(
        #[case] findings: SiteFindings,
        #[case] setting_failure: Option<&str>,
        #[case] unchanged: bool,
        #[case] violations: &[&str],
        #[case] exemptions: &[&str],
    ) {
        let asked = Cell::new(false);
        let mut verdict = Verdict::with_warnings(vec!["about the request".to_owned()]);
        verdict.add_site(findings, setting_failure, || {
            asked.set(true);
            unchanged
        });
        let found: Vec<String> = verdict.violations.iter().map(ToString::to_string).collect();
        assert_eq!(found, violations);
        let mut warnings = vec!["about the request", "about the place"];
        warnings.extend(exemptions);
        assert_eq!(verdict.warnings, warnings);
        let something_to_exempt = !violations.is_empty() || !exemptions.is_empty();
        assert_eq!(asked.get(), something_to_exempt, "asked whether unchanged");
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
        assert_eq!(
            message.matches("is not in allowedImages").count(),
            LISTED_REASONS_MAX
        );
        assert!(message.ends_with("; and 14 more reasons"), "{message}");
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
    fn response_carries_message_and_warnings() {
        let response = evaluate(&fixture("vm-update-unchanged"), &json!({})).into_response();
        assert!(response.accepted && response.message.is_none());
        assert_eq!(response.warnings.map(|w| w.len()), Some(1));
    }
}
