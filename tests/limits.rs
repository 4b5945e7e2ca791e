//! Size and depth limits: the largest annotations Kubernetes lets through, many entries, deep
//! nesting. Each gets a verdict with a clear message; the times are printed (natively, debug or
//! release as built), not asserted: the wasm timings under the deadline are in e2e-tests/host.bats.

use std::time::Instant;

use hook_sidecar_policy::validation::{validate_payload, Verdict};
use serde_json::{json, Value};

const ALLOWED: &str = "registry.example.com/hooks/gpu:v1";

fn vmi_request(annotations: Value) -> Value {
    json!({
        "uid": "limits",
        "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
        "operation": "CREATE",
        "object": {"metadata": {"name": "vmi", "annotations": annotations}},
    })
}

fn evaluate(name: &str, request: Value) -> Verdict {
    let payload =
        serde_json::to_vec(&json!({"request": request, "settings": {"allowedImages": [ALLOWED]}}))
            .expect("serializable");
    let start = Instant::now();
    let verdict = validate_payload(&payload);
    println!(
        "{name}: {} KiB payload, {:?}, {} violations",
        payload.len() / 1024,
        start.elapsed(),
        verdict.violations.len()
    );
    verdict
}

fn with_annotation(text: String) -> Value {
    vmi_request(json!({"hooks.kubevirt.io/hookSidecars": text}))
}

#[test]
fn a_256_kib_annotation_of_allowed_entries_is_accepted() {
    let entry = json!({"image": ALLOWED, "args": ["--version", "v1alpha2"]}).to_string();
    let count = 256 * 1024 / (entry.len() + 1);
    let text = format!("[{}]", vec![entry; count].join(","));
    assert!(text.len() <= 256 * 1024);
    let verdict = evaluate("256 KiB of allowed entries", with_annotation(text));
    assert_eq!(verdict, Verdict::default());
}

#[test]
fn ten_thousand_rejected_entries_are_all_listed() {
    let text = format!("[{}]", vec![r#"{"image":"evil:1"}"#; 10_000].join(","));
    let verdict = evaluate("10 000 unlisted entries", with_annotation(text));
    assert_eq!(verdict.violations.len(), 10_000);
    assert!(
        verdict.violations[9_999].contains("[9999]: image \"evil:1\""),
        "{}",
        verdict.violations[9_999]
    );
}

#[test]
fn deeply_nested_arrays_in_the_annotation_are_rejected_clearly() {
    for depth in [10, 1_000, 100_000] {
        let text = format!("[{}{}]", "[".repeat(depth), "]".repeat(depth));
        let verdict = evaluate(
            &format!("annotation nested {depth} deep"),
            with_annotation(text),
        );
        assert_eq!(verdict.violations.len(), 1);
        assert!(
            verdict.violations[0].contains("entry 0 to be a hook sidecar object"),
            "{:?}",
            verdict
        );
        let inside = format!("[{{\"args\": {}{}}}]", "[".repeat(depth), "]".repeat(depth));
        let verdict = evaluate(
            &format!("args nested {depth} deep"),
            with_annotation(inside),
        );
        assert!(
            verdict.violations[0].contains("invalid type: sequence, expected a string"),
            "{:?}",
            verdict
        );
    }
}

/// A request with `deep` (100 000 nested arrays) spliced in at the JSON text `at`.
fn payload_with_deep_value(request: Value, at: &str) -> Vec<u8> {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let text = serde_json::to_string(&request)
        .expect("serializable")
        .replacen(at, &at.replace("{}", &deep), 1);
    format!(r#"{{"request": {text}, "settings": {{"allowedImages": ["{ALLOWED}"]}}}}"#).into_bytes()
}

#[test]
fn deep_nesting_off_the_path_neither_crashes_nor_hides_the_annotation() {
    // Skipped fields are skipped iteratively (no recursion), and the annotation is still found.
    let mut request = vmi_request(
        json!({"other": {}, "hooks.kubevirt.io/hookSidecars": "[{\"image\":\"evil:1\"}]"}),
    );
    request["object"]["spec"] = json!({});
    let payload = payload_with_deep_value(request.clone(), "\"spec\":{}");
    let start = Instant::now();
    let verdict = validate_payload(&payload);
    println!(
        "spec nested 100 000 deep: {} KiB, {:?}",
        payload.len() / 1024,
        start.elapsed()
    );
    assert!(
        verdict.violations.len() == 1 && verdict.violations[0].contains("image \"evil:1\""),
        "{verdict:?}"
    );
    let payload = payload_with_deep_value(request, "\"other\":{}");
    let verdict = validate_payload(&payload);
    assert!(
        verdict.violations.len() == 1 && verdict.violations[0].contains("image \"evil:1\""),
        "{verdict:?}"
    );
}

#[test]
fn deep_nesting_on_the_path_is_rejected_clearly() {
    let mut request = vmi_request(json!({}));
    request["object"]["metadata"] = json!({});
    let payload = payload_with_deep_value(request, "\"metadata\":{}");
    let verdict = validate_payload(&payload);
    assert_eq!(verdict.violations.len(), 1);
    assert!(
        verdict.violations[0]
            .contains("cannot read metadata: invalid type: sequence, expected a JSON object"),
        "{verdict:?}"
    );
}
