//! Size and depth limits: the largest annotations Kubernetes lets through (a VM template's is held
//! only to the 3 MiB request limit), many entries, deep nesting. Each gets a verdict with a clear,
//! bounded message; the times are printed (natively, debug or release as built), not asserted: the
//! wasm times and memory of 3 MiB requests are measured by `make bench`.

use std::time::Instant;

use hook_sidecar_policy::MAX_SIDECARS;
use hook_sidecar_policy::{Verdict, validate_payload};
use rstest::rstest;
use serde_json::{Value, json};

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

fn message(verdict: Verdict) -> String {
    verdict.into_response().message.unwrap_or_default()
}

#[test]
fn the_most_entries_read_fill_the_256_kib_annotation_limit_and_are_accepted() {
    // 32 allowed entries (MAX_SIDECARS), their args making up the Kubernetes limit.
    let pad = "x".repeat(256 * 1024 / MAX_SIDECARS - 200);
    let entry = json!({"image": ALLOWED, "args": ["--version", pad]}).to_string();
    let text = format!("[{}]", vec![entry; MAX_SIDECARS].join(","));
    assert!(text.len() <= 256 * 1024);
    let verdict = evaluate("32 allowed entries, 256 KiB", with_annotation(text));
    assert_eq!(verdict, Verdict::default());
}

#[rstest]
#[case::empty_entries_at_the_annotation_limit("{}", 256 * 1024 / 3)]
#[case::unlisted_entries(r#"{"image":"evil:1"}"#, 10_000)]
#[case::an_annotation_of_2_9_mib("{}", 970_000)]
fn a_long_list_is_rejected_at_the_entry_after_the_bound(#[case] entry: &str, #[case] count: usize) {
    let text = format!("[{}]", vec![entry; count].join(","));
    let verdict = evaluate(&format!("{count} x {entry}"), with_annotation(text));
    assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
    let message = message(verdict);
    assert!(
        message.contains("more than 32 entries; KubeVirt would add a container"),
        "{message}"
    );
    assert!(message.len() < 512, "{} bytes", message.len());
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
            verdict.violations[0]
                .reason
                .contains("entry 0 to be a hook sidecar object"),
            "{:?}",
            verdict
        );
        let inside = format!("[{{\"args\": {}{}}}]", "[".repeat(depth), "]".repeat(depth));
        let verdict = evaluate(
            &format!("args nested {depth} deep"),
            with_annotation(inside),
        );
        assert!(
            verdict.violations[0]
                .reason
                .contains("invalid type: sequence, expected a string"),
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
        verdict.violations.len() == 1 && verdict.violations[0].reason.contains("image \"evil:1\""),
        "{verdict:?}"
    );
    let payload = payload_with_deep_value(request, "\"other\":{}");
    let verdict = validate_payload(&payload);
    assert!(
        verdict.violations.len() == 1 && verdict.violations[0].reason.contains("image \"evil:1\""),
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
            .reason
            .contains("cannot read metadata: invalid type: sequence, expected a JSON object"),
        "{verdict:?}"
    );
}
