//! Warning Events on the Setting, one for each distinct refused list.
//!
//! kube-rs's `Recorder` folds Events by reason and object: a second, different refused list would
//! only bump the first Event's `series.count` while its note kept naming the first list, and a
//! deleted Event would make publishing fail until the recorder's cache expires. So the Events are
//! created here, each named after what it reports (the policy, the reason and the list's digest):
//! a new refused list always gives a new Event, and the same refusal created twice (a restarted
//! job) is an AlreadyExists, not a duplicate.

use hook_sidecar_policy::cut;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::policy::{Refusal, RefusalKind};

/// Kubernetes caps an Event's note at 1 kB.
pub const MAX_NOTE: usize = 1024;
/// The share of the note given to the policy's message, so that the rest always fits.
const MAX_REASON_IN_NOTE: usize = 600;

/// Events of cluster-scoped objects go to `default`, as kubectl and kube-rs put them.
const EVENT_NAMESPACE: &str = "default";

pub struct EventPublisher {
    events: Api<Event>,
    controller: String,
    instance: String,
}

/// One refusal of one list for one policy, as reported.
pub struct RefusalReport<'a> {
    pub setting: &'a str,
    pub policy: &'a str,
    pub refusal: &'a Refusal,
    pub list: &'a [String],
}

impl EventPublisher {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            events: Api::namespaced(client, EVENT_NAMESPACE),
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
        }
    }

    /// Creates the Event of `report` on the Setting `regarding`. Returns false when it exists
    /// already (the same refusal was reported before, by this job or an earlier run).
    pub async fn refused(
        &self,
        regarding: ObjectReference,
        report: &RefusalReport<'_>,
    ) -> Result<bool> {
        let event = Event {
            metadata: ObjectMeta {
                name: Some(report.event_name()),
                namespace: Some(EVENT_NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            type_: Some("Warning".to_owned()),
            reason: Some(report.refusal.kind.as_str().to_owned()),
            action: Some("SyncAllowedImages".to_owned()),
            note: Some(report.note()),
            regarding: Some(regarding),
            event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        match self.events.create(&PostParams::default(), &event).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

/// An Event about the feature gate, on the Setting: one per change of what the job does with the
/// gate (it stopped keeping it on, it added it), each a new Event (`generateName`).
pub struct GateEvent<'a> {
    /// `Warning` when the job stopped keeping the gate on, `Normal` when it added it.
    pub warning: bool,
    pub reason: &'a str,
    pub note: &'a str,
}

impl EventPublisher {
    pub async fn gate(&self, regarding: ObjectReference, event: &GateEvent<'_>) -> Result<()> {
        let name_prefix = format!("{}.gate-", regarding.name.as_deref().unwrap_or("setting"));
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(name_prefix),
                namespace: Some(EVENT_NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            type_: Some(if event.warning { "Warning" } else { "Normal" }.to_owned()),
            reason: Some(event.reason.to_owned()),
            action: Some("EnsureSidecarFeatureGate".to_owned()),
            note: Some(cut(event.note, MAX_NOTE).into_owned()),
            regarding: Some(regarding),
            event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        self.events.create(&PostParams::default(), &event).await?;
        Ok(())
    }
}

impl RefusalReport<'_> {
    /// `<setting>.<16 hex digits>`: the digest of the policy, the reason and the list.
    pub fn event_name(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.policy,
            self.refusal.kind.as_str(),
            self.refusal.reason.as_str(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0_u8]);
        }
        hasher.update(list_digest(self.list).as_bytes());
        format!("{}.{}", self.setting, hex(&hasher.finalize()[..8]))
    }

    /// The reason first (it names the offending entry or key), then what the job did and which
    /// list it was, never the list itself.
    pub fn note(&self) -> String {
        let reason = cut(&self.refusal.reason, MAX_REASON_IN_NOTE);
        let list = format!(
            "list {} ({} entries) of Setting {}",
            list_digest(self.list),
            self.list.len(),
            self.setting
        );
        let note = match self.refusal.kind {
            RefusalKind::InvalidList
            | RefusalKind::TooLarge
            | RefusalKind::PolicyServerConfigTooLarge
            | RefusalKind::PolicyServerConfigUnknown => format!(
                "{reason}. Not applied: ClusterAdmissionPolicy {} keeps its current allowedImages; {list}",
                self.policy
            ),
            RefusalKind::InvalidPolicySettings => format!(
                "{reason}: the other settings of ClusterAdmissionPolicy {} are invalid, so it keeps \
                 its current allowedImages until they are fixed; the {list} is valid",
                self.policy
            ),
        };
        cut(&note, MAX_NOTE).into_owned()
    }
}

/// The first 16 hex digits of the SHA-256 of the entries, one a line: names a list in Events,
/// logs and the Setting's condition without repeating it.
pub fn list_digest(list: &[String]) -> String {
    let mut hasher = Sha256::new();
    for entry in list {
        hasher.update(entry.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize()[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    fn refusal(kind: RefusalKind, reason: &str) -> Refusal {
        Refusal {
            kind,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn the_note_starts_with_the_reason_and_never_holds_the_list() {
        let entries: Vec<String> = (0..10_000)
            .map(|i| format!("registry.example.com/i{i}:1"))
            .collect();
        let refusal = refusal(
            RefusalKind::InvalidList,
            "allowedImages[9999] \"registry.example.com/Bad:1\": not a valid image reference",
        );
        let report = RefusalReport {
            setting: "whitelisted-sidecars",
            policy: "hook-sidecars",
            refusal: &refusal,
            list: &entries,
        };
        let note = report.note();
        assert!(
            note.starts_with("allowedImages[9999] \"registry.example.com/Bad:1\""),
            "{note}"
        );
        assert!(
            note.contains("ClusterAdmissionPolicy hook-sidecars keeps its current allowedImages"),
            "{note}"
        );
        assert!(
            note.contains(&format!("list {} (10000 entries)", list_digest(&entries))),
            "{note}"
        );
        assert!(!note.contains("registry.example.com/i1:1"), "{note}");
        assert!(note.len() <= MAX_NOTE);
    }

    #[test]
    fn a_huge_reason_is_cut_and_the_rest_still_fits() {
        let refusal = refusal(
            RefusalKind::InvalidList,
            &format!("allowedImages[0] \"{}\"", "a".repeat(5000)),
        );
        let entries = list(&["x"]);
        let report = RefusalReport {
            setting: "whitelisted-sidecars",
            policy: "hook-sidecars",
            refusal: &refusal,
            list: &entries,
        };
        let note = report.note();
        assert!(note.len() <= MAX_NOTE, "{}", note.len());
        assert!(note.contains("keeps its current allowedImages"), "{note}");
    }

    #[test]
    fn other_settings_are_blamed_as_such() {
        let refusal = refusal(
            RefusalKind::InvalidPolicySettings,
            "allowSharedComputePath: true needs allowPVC: true",
        );
        let entries = list(&["registry.example.com/good:1"]);
        let note = RefusalReport {
            setting: "whitelisted-sidecars",
            policy: "hook-sidecars",
            refusal: &refusal,
            list: &entries,
        }
        .note();
        assert!(note.starts_with("allowSharedComputePath: true needs allowPVC: true: the other settings of ClusterAdmissionPolicy hook-sidecars are invalid"), "{note}");
        assert!(note.ends_with("is valid"), "{note}");
    }

    #[test]
    fn one_event_name_per_distinct_refusal() {
        let bad = refusal(RefusalKind::InvalidList, "allowedImages[1] \"B\"");
        let name = |policy: &str, entries: &[&str]| {
            RefusalReport {
                setting: "whitelisted-sidecars",
                policy,
                refusal: &bad,
                list: &list(entries),
            }
            .event_name()
        };
        let first = name("hook-sidecars", &["a", "B"]);
        assert!(first.starts_with("whitelisted-sidecars."), "{first}");
        assert_eq!(first.len(), "whitelisted-sidecars.".len() + 16);
        assert_eq!(first, name("hook-sidecars", &["a", "B"]), "stable");
        assert_ne!(first, name("hook-sidecars", &["c", "B"]), "another list");
        assert_ne!(first, name("launchers", &["a", "B"]), "another policy");
        // Entries are delimited: ["ab"] and ["a", "b"] are different lists.
        assert_ne!(list_digest(&list(&["ab"])), list_digest(&list(&["a", "b"])));
    }
}
