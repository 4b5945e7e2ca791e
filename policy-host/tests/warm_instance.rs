//! One instance called again and again (`kwctl bench`, any host that reuses instances) must
//! answer every request exactly as a fresh instance does, whatever requests and settings came
//! before: nothing a request builds may leak into the next. Here every fixture and example,
//! under settings that differ (valid, invalid, with profiles, none), interleaved in one instance,
//! against a fresh instance for each.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use policy_host::host::{CodeCache, PolicyHost, validate_payload};
use serde_json::{Value, json};
use wapc::WapcHost;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Every AdmissionRequest the repository keeps: fixtures, examples, benchmark inputs.
fn requests(root: &Path) -> Result<Vec<(String, Value)>> {
    let mut requests = Vec::new();
    for dir in ["test_data", "examples", "e2e-tests/bench"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.extension().is_some_and(|e| e == "json") && !name.starts_with("settings") {
                requests.push((format!("{dir}/{name}"), read_json(&path)?));
            }
        }
    }
    Ok(requests)
}

fn settings_variants(root: &Path) -> Result<Vec<(&'static str, Value)>> {
    const HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
    Ok(vec![
        ("examples", read_json(&root.join("examples/settings.json"))?),
        ("none", json!({})),
        (
            "50 entries, 5 profiles",
            read_json(&root.join("e2e-tests/bench/settings-50-profiles-5.json"))?,
        ),
        (
            "permissive",
            json!({
                "allowedImages": ["registry.example.com/*", "quay.io/kubevirt/sidecar-shim:*"],
                "sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.7.0",
                "allowCommand": true, "allowConfigMap": true, "allowPVC": true,
            }),
        ),
        // Invalid, as only a request meets it: an entry of the hook's registry.
        (
            "invalid entry",
            json!({"allowedImages": ["registry.example.com/*/x", HOOK]}),
        ),
        ("unknown key", json!({"allowedImage": [HOOK]})),
    ])
}

/// The module's whole answer to `validate`, as JSON.
fn answer(instance: &WapcHost, payload: &[u8]) -> Result<Value> {
    Ok(serde_json::from_slice(
        &instance.call("validate", payload)?,
    )?)
}

#[test]
fn a_warm_instance_answers_as_fresh_instances_do() -> Result<()> {
    let root = repo_root();
    let module = common::build_module(&root)?;
    let host = PolicyHost::load(&module, Duration::from_secs(5), CodeCache::Enabled)?;
    let requests = requests(&root)?;
    let settings = settings_variants(&root)?;
    assert!(
        requests.len() >= 30,
        "only {} requests found",
        requests.len()
    );

    let mut cases = Vec::new();
    for (request_name, request) in &requests {
        for (settings_name, settings) in &settings {
            let payload = validate_payload(request, settings)?;
            let fresh = answer(&host.instance()?, &payload)?;
            cases.push((request_name, settings_name, payload, fresh));
        }
    }
    let accepted = cases.iter().filter(|c| c.3["accepted"] == true).count();
    assert!(
        accepted > 0 && accepted < cases.len(),
        "the cases should mix verdicts: {accepted} of {} accepted",
        cases.len()
    );

    // Settings change on every call (requests outer, settings inner), then repeat in another
    // order (settings outer), so that each is judged both after other settings and after its own.
    let warm = host.instance()?;
    let by_settings = settings.len();
    let orders = [
        (0..cases.len()).collect::<Vec<_>>(),
        (0..by_settings)
            .flat_map(|s| (0..requests.len()).map(move |r| r * by_settings + s))
            .collect(),
    ];
    for index in orders.iter().flatten() {
        let (request_name, settings_name, payload, fresh) = &cases[*index];
        assert_eq!(
            &answer(&warm, payload)?,
            fresh,
            "{request_name} with settings {settings_name:?}: the warm instance answered otherwise"
        );
    }
    Ok(())
}
