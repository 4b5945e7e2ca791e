//! The manifests in `examples/harvester/` that the runbook (docs/runbook.md) applies: the VM
//! used to prove a refusal must be refused by the policy with the settings of
//! `examples/settings.json`, for the reason the docs show, and accepted once its image is allowed.

use hook_sidecar_policy::validate_payload;
use serde_json::{Value, json};

fn example(path: &str) -> Value {
    let path = format!("{}/examples/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    if path.ends_with(".json") {
        serde_json::from_str(&text).expect("JSON")
    } else {
        serde_yaml::from_str(&text).expect("YAML")
    }
}

/// The AdmissionRequest the API server sends for `kubectl apply --dry-run=server` of `vm`.
fn create_request(vm: &Value) -> Value {
    json!({
        "uid": "dry-run",
        "kind": { "group": "kubevirt.io", "version": "v1", "kind": "VirtualMachine" },
        "resource": { "group": "kubevirt.io", "version": "v1", "resource": "virtualmachines" },
        "name": vm["metadata"]["name"],
        "namespace": vm["metadata"]["namespace"],
        "operation": "CREATE",
        "dryRun": true,
        "userInfo": { "username": "admin", "groups": ["system:authenticated"] },
        "object": vm,
    })
}

fn violations(vm: &Value, settings: &Value) -> Vec<String> {
    let payload = json!({ "request": create_request(vm), "settings": settings });
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
        .violations
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_refusal_example_is_refused_for_its_image() {
    let vm = example("harvester/vm-unlisted-sidecar.yaml");
    let violations = violations(&vm, &example("settings.json"));
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("\"docker.io/attacker/qemu-hook:latest\"")
            && violations[0].contains("is not in allowedImages"),
        "{violations:?}"
    );
}

#[test]
fn the_refusal_example_passes_once_its_image_is_allowed() {
    let vm = example("harvester/vm-unlisted-sidecar.yaml");
    let settings = json!({ "allowedImages": ["docker.io/attacker/qemu-hook:latest"] });
    assert_eq!(violations(&vm, &settings), Vec::<String>::new());
}
