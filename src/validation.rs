//! The request path of `validate`: the payload decoded ([`crate::payload`]), the request sent to
//! the extractor of its kind's family, the rules built for the request, each sidecar judged, and
//! the verdict.
//!
//! ```text
//! payload::read ─┬─ launcher_pod::extract ─┐
//!                └─ vm_carriers::extract ──┴─ request_rules ── judge ── verdict
//! ```

use std::cell::OnceCell;

use serde_json::value::RawValue;

use crate::annotation_maps::ProfileAnnotations;
use crate::host::{Host, HostCalls, PolicyServer};
use crate::judge::{Judge, Prepared};
use crate::payload::{self, Objects, Payload};
use crate::request_rules::RequestRules;
use crate::settings::{self, Settings};
use crate::sidecar::{Extraction, Site};
use crate::verdict::{SiteFindings, Verdict};
use crate::{launcher_pod, vm_carriers};

/// Evaluates the raw `validate` payload; a Setting named by `harvesterSetting` is read from
/// policy-server.
pub fn validate_payload(payload: &[u8]) -> Verdict {
    validate_payload_with(payload, &PolicyServer)
}

/// Evaluates the raw `validate` payload, asking `host` what the request needs of the cluster.
pub fn validate_payload_with(payload: &[u8], host: &dyn Host) -> Verdict {
    validate_read(payload::read(payload), host)
}

/// Evaluates the payload as read (in one pass, or from raw JSON).
pub(crate) fn validate_read(
    payload: Result<Payload, serde_json::Error>,
    host: &dyn Host,
) -> Verdict {
    let payload = match payload {
        Ok(payload) => payload,
        Err(e) => return Verdict::rejection(format!("cannot read the validation request: {e}")),
    };
    if !matches!(payload.operation.as_str(), "CREATE" | "UPDATE") {
        return Verdict::default();
    }
    let operation = &payload.operation;
    let judge =
        |found: &dyn Extraction| judge_request(found, payload.settings, host, &payload.namespace);
    match payload.objects {
        Objects::Pod { object, old_object } => {
            match launcher_pod::extract(operation, object, old_object) {
                Ok(Some(pod)) => judge(&pod),
                Ok(None) => Verdict::default(),
                Err(reason) => Verdict::rejection(reason),
            }
        }
        Objects::Carrier {
            locations,
            object,
            old_object,
        } => {
            match vm_carriers::extract(&payload.kind.kind, operation, object, old_object, locations)
            {
                Ok(carriers) => judge(&carriers),
                Err(reason) => Verdict::rejection(reason),
            }
        }
        Objects::Other => Verdict::default(),
    }
}

/// What was found in the request, judged by the rules of its settings. A request without
/// sidecars reads no setting, looks no Setting up and compiles nothing.
fn judge_request(
    found: &dyn Extraction,
    settings: Option<&RawValue>,
    host: &dyn Host,
    namespace: &str,
) -> Verdict {
    let sites = found.sites();
    let settings = settings.filter(|_| sites.iter().any(Site::has_sidecars));
    let settings = match settings.map(|text| settings::decode_slice(text.get().as_bytes())) {
        None => Settings::default(),
        Some(Ok(settings)) => settings,
        Some(Err(e)) => return invalid_settings(&e),
    };
    let policy = match settings.request_rules() {
        Ok(policy) => policy,
        Err(e) => return invalid_settings(&e),
    };
    let host = HostCalls::new(host);
    let lookup = (settings.harvester_setting.as_ref())
        .map(|reference| (reference, host.setting(&reference.name)));
    let (rules, outcome) = RequestRules::new(
        policy,
        lookup
            .as_ref()
            .map(|(reference, answer)| (*reference, &**answer)),
    );
    let judge = Judge::new(namespace, host, rules);

    // Each sidecar's image resolved and its governing profiles found, once; then what those
    // profiles read beside the sidecars of each site, in one more pass over the object.
    let prepared: Vec<Vec<Prepared>> = (sites.iter())
        .map(|site| match &site.sidecars {
            Ok(found) => (found.iter())
                .map(|found| judge.prepare(&found.sidecar, found.origin))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();
    let keys: Vec<Vec<&str>> = (prepared.iter())
        .map(|sidecars| sorted_unique(sidecars.iter().flat_map(Prepared::annotation_keys)))
        .collect();
    let annotations =
        match found.profile_annotations(&sorted_unique(keys.iter().flatten().copied())) {
            Ok(annotations) => annotations,
            Err(e) => return Verdict::rejection(e),
        };

    let mut verdict = Verdict::with_warnings(outcome.warnings);
    for (index, site) in sites.iter().enumerate() {
        // Asked at most once per site, and only when needed: by the checks that need the host,
        // or by the verdict when there is something to exempt.
        let unchanged = OnceCell::new();
        let is_unchanged =
            || *unchanged.get_or_init(|| found.is_unchanged(index, &keys[index], &annotations));
        let findings = SiteFindings {
            place: site.place.clone(),
            has_sidecars: site.has_sidecars(),
            reasons: site_reasons(&judge, site, &prepared[index], &annotations, &is_unchanged),
            warnings: site.warnings.clone(),
        };
        verdict.add_site(findings, outcome.failure.as_deref(), is_unchanged);
    }
    verdict
}

/// Every reason to reject a sidecar of `site`, with the entry it is about: the judge's, then what
/// the extractor saw; or why the site cannot be read as sidecars. The checks that need the host
/// are skipped at a site that `is_unchanged` (asked only when one would be made): an UPDATE that
/// leaves the sidecars as they were changes nothing that runs (a VMI's status update asks nothing;
/// the next launcher Pod is checked when it is created).
fn site_reasons(
    judge: &Judge,
    site: &Site,
    prepared: &[Prepared],
    annotations: &ProfileAnnotations,
    is_unchanged: &dyn Fn() -> bool,
) -> Vec<(Option<usize>, String)> {
    let found = match &site.sidecars {
        Ok(found) => found,
        Err(reason) => return vec![(None, reason.clone())],
    };
    let lookup = annotations.at(site.annotation_map);
    let ask_host = prepared.iter().any(|p| judge.needs_host(p)) && !is_unchanged();
    (found.iter().zip(prepared))
        .flat_map(|(found, prepared)| {
            let mut reasons = judge.violations(prepared, &lookup);
            if ask_host {
                reasons.extend(judge.host_violations(prepared));
            }
            (reasons.into_iter().chain(found.problems.iter().cloned()))
                .map(|reason| (found.entry, reason))
        })
        .collect()
}

fn invalid_settings(reason: &str) -> Verdict {
    Verdict::rejection(format!("invalid policy settings: {reason}"))
}

fn sorted_unique<'k>(keys: impl Iterator<Item = &'k str>) -> Vec<&'k str> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{GroupVersionKind, annotation_locations, is_pod};
    use crate::test_support::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    #[rstest]
    #[case("kubevirt.io", "VirtualMachineInstance", Some(1))]
    #[case("kubevirt.io", "VirtualMachine", Some(2))]
    #[case("kubevirt.io", "VirtualMachineInstanceReplicaSet", Some(1))]
    #[case("pool.kubevirt.io", "VirtualMachinePool", Some(1))]
    #[case("instancetype.kubevirt.io", "VirtualMachineClusterPreference", Some(1))]
    #[case("instancetype.kubevirt.io", "VirtualMachineInstancetype", Some(1))]
    #[case("", "Pod", None)]
    #[case("kubevirt.io", "KubeVirt", None)]
    #[case("example.com", "VirtualMachine", None)]
    fn kinds(#[case] group: &str, #[case] kind: &str, #[case] locations: Option<usize>) {
        let gvk = GroupVersionKind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
        };
        assert_eq!(annotation_locations(&gvk).map(<[_]>::len), locations);
        assert_eq!(is_pod(&gvk), kind == "Pod");
    }

    #[rstest]
    #[case("vm-delete")]
    #[case("pod-create")]
    #[case("vm-create-no-sidecar")]
    fn accepted_without_looking_at_sidecars(#[case] name: &str) {
        assert_eq!(evaluate(&fixture(name), &json!({})), Verdict::default());
    }

    /// Every way settings can be invalid takes one path to one message.
    #[rstest]
    #[case(json!({"allowedImage": []}), "invalid policy settings: unknown field `allowedImage`")]
    #[case(json!({"allowCommand": "yes"}), "invalid policy settings: invalid type: string \"yes\", expected a boolean")]
    #[case(json!(5), "invalid policy settings: invalid type: integer `5`")]
    fn invalid_settings_reject_requests(#[case] settings: Value, #[case] message: &str) {
        let verdict = evaluate(&fixture("vm-create"), &settings);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
        assert!(
            verdict.violations[0].to_string().starts_with(message),
            "{verdict:?}"
        );
        // Kinds the policy does not check are not judged, whatever the settings.
        assert_eq!(
            evaluate(&fixture("pod-create"), &settings),
            Verdict::default()
        );
    }

    #[rstest]
    #[case(b"".as_slice())]
    #[case(b"{".as_slice())]
    #[case(b"[]".as_slice())]
    #[case(b"{\"request\": 5}".as_slice())]
    fn unreadable_payloads_are_rejected(#[case] payload: &[u8]) {
        assert_rejected(
            &validate_payload(payload),
            &["cannot read the validation request"],
        );
    }

    #[test]
    fn requests_without_sidecars_read_no_profile() {
        // Not even a profile that is no object: requests without sidecars never read one.
        let settings = json!({"sidecarProfiles": [5, {"image": "*"}]});
        assert_eq!(
            evaluate(&fixture("vm-create-no-sidecar"), &settings),
            Verdict::default()
        );
        assert_eq!(evaluate(&vm_with("[]"), &settings), Verdict::default());
    }
}
