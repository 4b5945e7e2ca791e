//! The Pod check against the annotation check, on launcher Pods rendered by KubeVirt's own
//! template service (tests/kubevirt-render, built from the Go module proxy by
//! hack/build-kubevirt-render.sh): for generated sidecar lists, annotations and settings (profiles
//! included), the VMI's annotation and the Pod KubeVirt renders from it get the same verdict, with
//! as many reasons.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hook_sidecar_policy::{Verdict, validate_payload};
use serde_json::{Value, json};

mod common;
use common::Rng;

const HOOKS: &str = "hooks.kubevirt.io/hookSidecars";
const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const OTHER: &str = "docker.io/attacker/qemu-hook:latest";
/// virt-controller's SIDECAR_SHIM_IMAGE for the renderer, and sidecarShimImage for the annotation.
const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.7.0";
const CASES: usize = 300;
/// An annotation a profile may read beside the sidecars (KubeVirt copies it onto the Pod).
const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";
const ARGS_VALUES: &[&str] = &[
    "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536",
    "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -S",
];

fn chance(rng: &mut Rng, percent: u64) -> bool {
    rng.next() % 100 < percent
}

/// The renderer, built once and cached by the repo's script.
fn renderer() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/build-kubevirt-render.sh");
    let output = Command::new(script)
        .output()
        .expect("this test needs Go on PATH to build tests/kubevirt-render");
    assert!(
        output.status.success(),
        "hack/build-kubevirt-render.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).expect("a path").trim())
}

fn render_all(inputs: &[Value]) -> Vec<Value> {
    let mut child = Command::new(renderer())
        .env("SIDECAR_SHIM_IMAGE", SHIM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the renderer");
    let mut stdin = child.stdin.take().expect("stdin");
    let lines: String = inputs.iter().map(|i| format!("{i}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()).expect("write"));
    let results: Vec<Value> = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map(|line| serde_json::from_str(&line.expect("line")).expect("JSON line"))
        .collect();
    writer.join().expect("writer");
    assert!(child.wait().expect("wait").success());
    assert_eq!(results.len(), inputs.len());
    results
}

fn sidecar(rng: &mut Rng, index: usize) -> Value {
    let mut entry = serde_json::Map::new();
    match rng.below(3) {
        0 => entry.insert("image".into(), json!(GPU_HOOK)),
        1 => entry.insert("image".into(), json!(OTHER)),
        _ => None, // the shim
    };
    if chance(rng, 25) {
        entry.insert("command".into(), json!(["/bin/sh", "-c", "exec /hook"]));
    }
    if chance(rng, 50) {
        entry.insert("args".into(), json!(["--version", "v1alpha3"]));
    }
    if chance(rng, 30) {
        entry.insert(
            "configMap".into(),
            json!({"name": format!("hooks-{index}"), "key": "onDefineDomain", "hookPath": "/usr/bin/onDefineDomain"}),
        );
    }
    if chance(rng, 30) {
        let mut pvc = json!({"name": format!("data-{index}"), "volumePath": "/data"});
        if chance(rng, 50) {
            pvc["sharedComputePath"] = json!(format!("/var/run/shared-{index}"));
        }
        entry.insert("pvc".into(), pvc);
    }
    Value::Object(entry)
}

fn settings(rng: &mut Rng) -> Value {
    let images: Vec<&str> = [GPU_HOOK, OTHER, SHIM]
        .into_iter()
        .filter(|_| chance(rng, 60))
        .collect();
    let allow_pvc = chance(rng, 50);
    let mut profiles = Vec::new();
    for image in [GPU_HOOK, SHIM] {
        if chance(rng, 40) {
            profiles.push(profile(rng, image));
        }
    }
    json!({
        "allowedImages": images,
        "allowCommand": chance(rng, 50),
        "allowConfigMap": chance(rng, 50),
        "allowPVC": allow_pvc,
        "allowSharedComputePath": allow_pvc && chance(rng, 50),
        "sidecarProfiles": profiles,
        "profilesRequired": chance(rng, 20),
    })
}

/// A sidecar profile for `image`: some of args, command and an annotation pinned.
fn profile(rng: &mut Rng, image: &str) -> Value {
    let mut profile = json!({"image": image});
    if chance(rng, 60) {
        profile["args"] = json!([["--version", "v1alpha[23]"], []]);
    }
    if chance(rng, 40) {
        profile["command"] = json!([["/bin/sh", "-c", "exec /hook"]]);
    }
    if chance(rng, 60) {
        profile["annotations"] =
            json!({ARGS_KEY: "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"});
    }
    if chance(rng, 30) {
        profile["requiredAnnotations"] = json!([ARGS_KEY]);
    }
    profile
}

fn vmi(sidecars: &Value, args: Option<&str>) -> Value {
    let mut annotations = json!({HOOKS: sidecars.to_string()});
    if let Some(args) = args {
        annotations[ARGS_KEY] = json!(args);
    }
    json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": "vm", "namespace": "default", "uid": "8f3e2a1c-0000-4000-8000-000000000001",
            "annotations": annotations,
        },
        "spec": {"domain": {"devices": {}, "resources": {"requests": {"memory": "1Gi"}}}},
    })
}

fn create(group: &str, kind: &str, object: &Value) -> Value {
    json!({
        "uid": "1", "operation": "CREATE",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "object": object,
    })
}

fn evaluate(request: &Value, settings: &Value) -> Verdict {
    let payload = json!({"request": request, "settings": settings});
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
}

#[test]
fn the_pod_gets_the_annotations_verdict() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases: Vec<(Value, Value, Option<&str>)> = (0..CASES)
        .map(|_| {
            let sidecars: Vec<Value> = (0..1 + rng.below(3))
                .map(|i| sidecar(&mut rng, i))
                .collect();
            let args = chance(&mut rng, 75).then(|| rng.pick(ARGS_VALUES));
            (Value::Array(sidecars), settings(&mut rng), args)
        })
        .collect();
    let inputs: Vec<Value> = cases
        .iter()
        .map(|(sidecars, _, args)| {
            let config_maps: Vec<&Value> = sidecars
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("configMap").map(|c| &c["name"]))
                .collect();
            json!({"vmi": vmi(sidecars, *args), "kubevirtConfiguration": {}, "configMaps": config_maps})
        })
        .collect();
    let rendered = render_all(&inputs);

    let (mut accepted, mut rejected) = (0, 0);
    for ((sidecars, settings, _), (input, result)) in cases.iter().zip(inputs.iter().zip(&rendered))
    {
        let pod = result
            .get("pod")
            .unwrap_or_else(|| panic!("KubeVirt did not render {sidecars}: {result}"));
        let mut annotation_settings = settings.clone();
        annotation_settings["sidecarShimImage"] = json!(SHIM);
        let by_annotation = evaluate(
            &create("kubevirt.io", "VirtualMachineInstance", &input["vmi"]),
            &annotation_settings,
        );
        let by_pod = evaluate(&create("", "Pod", pod), settings);
        assert_eq!(
            (
                by_annotation.violations.is_empty(),
                by_annotation.violations.len()
            ),
            (by_pod.violations.is_empty(), by_pod.violations.len()),
            "sidecars {sidecars}, settings {settings}:\n annotation: {by_annotation:?}\n pod: {by_pod:?}"
        );
        if by_pod.violations.is_empty() {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    // Both outcomes must be well represented, or the comparison says little.
    assert!(
        accepted >= CASES / 10 && rejected >= CASES / 10,
        "{accepted} accepted, {rejected} rejected"
    );
    println!("{CASES} cases: {accepted} accepted by both, {rejected} rejected by both");
}
