//! Context-aware mode natively, with a Setting given by the test: when the Setting is read, what
//! its entries allow, and how a missing Setting, invalid entries and a failed lookup are answered.
//! The same behaviour through the wasm module and the host's `get_resource`, against a real
//! kube-apiserver, is in policy-host/tests/context_aware.rs.

use std::cell::Cell;

use hook_sidecar_policy::{ConfigMapKey, Host, SettingObject};
use hook_sidecar_policy::{Verdict, summary, validate_payload_with};
use rstest::rstest;
use serde_json::{Value, json};

const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const OTHER_HOOK: &str = "registry.example.com/kubevirt-hooks/other:v1";

/// A Setting source that answers from the test and counts the lookups.
struct FakeCluster {
    answer: Result<Option<SettingObject>, String>,
    lookups: Cell<usize>,
}

impl FakeCluster {
    fn with(default: &str, value: &str) -> Self {
        Self::answering(Ok(Some(SettingObject {
            default: Some(default.to_owned()),
            value: Some(value.to_owned()),
        })))
    }

    fn answering(answer: Result<Option<SettingObject>, String>) -> Self {
        Self {
            answer,
            lookups: Cell::new(0),
        }
    }
}

impl Host for FakeCluster {
    fn get_setting(&self, name: &str) -> Result<Option<SettingObject>, String> {
        assert_eq!(name, "whitelisted-sidecars");
        self.lookups.set(self.lookups.get() + 1);
        self.answer.clone()
    }

    fn get_config_map(&self, _: &str, _: &str, _: &str) -> Result<Option<ConfigMapKey>, String> {
        self.lookups.set(self.lookups.get() + 1);
        Err("these tests read no ConfigMap".to_owned())
    }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn context_aware(list_mode: &str) -> Value {
    json!({"harvesterSetting": {"name": "whitelisted-sidecars", "listMode": list_mode}})
}

fn evaluate(request: &Value, settings: &Value, cluster: &FakeCluster) -> Verdict {
    let payload = json!({"request": request, "settings": settings});
    validate_payload_with(&serde_json::to_vec(&payload).expect("JSON"), cluster)
}

fn message(verdict: &Verdict) -> String {
    summary(&verdict.violations)
}

#[rstest]
#[case::no_annotation("vm-create-no-sidecar")]
#[case::delete("vm-delete")]
#[case::other_kind("pod-create")]
fn requests_without_sidecars_do_not_read_the_setting(#[case] name: &str) {
    let cluster = FakeCluster::answering(Err("must not be called".into()));
    let verdict = evaluate(&fixture(name), &context_aware("union"), &cluster);
    assert_eq!(verdict, Verdict::default());
    assert_eq!(cluster.lookups.get(), 0);
}

#[test]
fn without_harvester_setting_nothing_is_read() {
    let cluster = FakeCluster::answering(Err("must not be called".into()));
    let verdict = evaluate(&fixture("vm-create"), &json!({}), &cluster);
    assert!(
        message(&verdict).ends_with("is not in allowedImages"),
        "{verdict:?}"
    );
    assert_eq!(cluster.lookups.get(), 0);
}

#[rstest]
#[case::union_default("union", GPU_HOOK, "", true)]
#[case::union_value("union", OTHER_HOOK, GPU_HOOK, true)]
#[case::union_neither("union", OTHER_HOOK, "", false)]
#[case::effective_value("effective", "", GPU_HOOK, true)]
#[case::effective_default_when_value_empty("effective", GPU_HOOK, "", true)]
#[case::effective_value_replaces_default("effective", GPU_HOOK, OTHER_HOOK, false)]
#[case::wildcard("union", "registry.example.com/kubevirt-hooks/*", "", true)]
fn the_setting_extends_allowed_images(
    #[case] list_mode: &str,
    #[case] default: &str,
    #[case] value: &str,
    #[case] allowed: bool,
) {
    let cluster = FakeCluster::with(default, value);
    let verdict = evaluate(&fixture("vm-create"), &context_aware(list_mode), &cluster);
    assert_eq!(verdict.violations.is_empty(), allowed, "{verdict:?}");
    if !allowed {
        assert!(
            message(&verdict).contains(&format!(
                "({GPU_HOOK}) is not in allowedImages nor in Setting \"whitelisted-sidecars\""
            )),
            "{verdict:?}"
        );
    }
    assert_eq!(cluster.lookups.get(), 1, "one lookup per request");
}

#[test]
fn allowed_images_still_apply() {
    let cluster = FakeCluster::with("", "");
    let mut settings = context_aware("union");
    settings["allowedImages"] = json!([GPU_HOOK]);
    assert_eq!(
        evaluate(&fixture("vm-create"), &settings, &cluster),
        Verdict::default()
    );
}

#[test]
fn a_missing_setting_adds_no_entries() {
    let cluster = FakeCluster::answering(Ok(None));
    let verdict = evaluate(&fixture("vm-create"), &context_aware("union"), &cluster);
    assert!(message(&verdict).contains("nor in Setting"), "{verdict:?}");
    assert_eq!(
        verdict.warnings,
        [
            "Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1) does not exist: it adds no entries"
        ]
    );
    let mut settings = context_aware("union");
    settings["allowedImages"] = json!([GPU_HOOK]);
    let verdict = evaluate(&fixture("vm-create"), &settings, &cluster);
    assert!(verdict.violations.is_empty(), "{verdict:?}");
}

#[rstest]
#[case::accepted(GPU_HOOK, true)]
#[case::rejected(OTHER_HOOK, false)]
fn invalid_entries_allow_nothing_and_every_response_names_them(
    #[case] valid_entry: &str,
    #[case] allowed: bool,
) {
    let cluster = FakeCluster::with(&format!("Bad/Entry,{valid_entry}"), "ghcr.io/*/x");
    let verdict = evaluate(&fixture("vm-create"), &context_aware("union"), &cluster);
    assert_eq!(verdict.violations.is_empty(), allowed, "{verdict:?}");
    assert_eq!(verdict.warnings.len(), 2, "{verdict:?}");
    assert!(verdict.warnings[0].starts_with(
        "Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1), field default: entry \"Bad/Entry\" allows nothing: not a valid image reference"
    ), "{verdict:?}");
    assert!(verdict.warnings[1].starts_with(
        "Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1), field value: entry \"ghcr.io/*/x\" allows nothing: a wildcard"
    ), "{verdict:?}");
}

#[test]
fn a_failed_lookup_rejects_with_the_reason() {
    let cluster = FakeCluster::answering(Err("connection refused".into()));
    let mut settings = context_aware("union");
    // Even an image allowed by allowedImages: the policy cannot tell what the Setting says.
    settings["allowedImages"] = json!([GPU_HOOK]);
    let verdict = evaluate(&fixture("vm-create"), &settings, &cluster);
    assert_eq!(
        message(&verdict),
        "spec.template.metadata.annotations[\"hooks.kubevirt.io/hookSidecars\"]: cannot read Setting \"whitelisted-sidecars\" (harvesterhci.io/v1beta1), so the policy cannot tell which sidecars it allows: connection refused"
    );
}

#[test]
fn invalid_settings_are_rejected_before_any_lookup() {
    let cluster = FakeCluster::answering(Err("must not be called".into()));
    let settings = json!({"harvesterSetting": {"name": "Bad Name"}});
    let verdict = evaluate(&fixture("vm-create"), &settings, &cluster);
    assert!(
        message(&verdict).contains("invalid policy settings: harvesterSetting.name \"Bad Name\""),
        "{verdict:?}"
    );
    assert_eq!(cluster.lookups.get(), 0);
}

/// The UPDATE rule is the same in context-aware mode: unchanged sidecars pass with a warning,
/// whatever the Setting says now (or whether it can be read); changed ones are checked.
#[rstest]
#[case::left_the_setting(FakeCluster::with("", ""), "is not in allowedImages nor in Setting")]
#[case::setting_missing(FakeCluster::answering(Ok(None)), "nor in Setting")]
#[case::lookup_failed(FakeCluster::answering(Err("timeout".into())), "cannot read Setting")]
fn unchanged_sidecars_pass_updates(#[case] cluster: FakeCluster, #[case] reason: &str) {
    let verdict = evaluate(
        &fixture("vm-update-unchanged"),
        &context_aware("union"),
        &cluster,
    );
    assert!(verdict.violations.is_empty(), "{verdict:?}");
    let warnings = verdict.warnings.join("; ");
    assert!(
        warnings.contains("unchanged by this update") && warnings.contains(reason),
        "{verdict:?}"
    );

    let verdict = evaluate(
        &fixture("vm-update-adds-sidecar"),
        &context_aware("union"),
        &cluster,
    );
    assert!(message(&verdict).contains(reason), "{verdict:?}");
}

#[test]
fn changed_sidecars_in_the_setting_pass_updates() {
    let cluster = FakeCluster::with(GPU_HOOK, "");
    let verdict = evaluate(
        &fixture("vm-update-adds-sidecar"),
        &context_aware("union"),
        &cluster,
    );
    assert_eq!(verdict, Verdict::default());
    assert_eq!(cluster.lookups.get(), 1);
}
