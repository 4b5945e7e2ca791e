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
