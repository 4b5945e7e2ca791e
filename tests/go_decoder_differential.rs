//! The policy's annotation decoder against Go's real `encoding/json` (tests/go-decoder, decoding
//! into KubeVirt's HookSidecarList shape): for generated hostile annotations, whenever the policy
//! accepts, Go decodes the same entries, with the same image, command, configMap and pvc.
//! The policy may refuse what Go accepts (that is its point); never the other way round.
//!
//! And the other direction: what KubeVirt's own Go code writes (`json.Marshal` of generated
//! `HookSidecarList` values, with its `"imagePullPolicy":""`, its `null`s and its HTML escapes) is
//! accepted whenever its images and switches are allowed, and rejected when any one is not.

use std::process::Command;

use hook_sidecar_policy::{HOOK_SIDECARS_ANNOTATION, HookSidecar, decode_annotation as decode};
use hook_sidecar_policy::{summary, validate_payload};
use serde_json::{Value, json};

mod common;
#[path = "common/go_oracle.rs"]
mod go_oracle;
#[path = "common/hostile_annotations.rs"]
mod hostile_annotations;
use common::Rng;
use hostile_annotations::{annotation, build_go_decoder};

/// What the policy checks of one entry, in Go's zero-value terms.
fn checked_fields(sidecar: &HookSidecar) -> Value {
    serde_json::json!({
        "image": sidecar.image.clone().unwrap_or_default(),
        "imagePullPolicy": sidecar.image_pull_policy.clone().unwrap_or_default(),
        "command": sidecar.command,
        "args": sidecar.args,
        "configMap": sidecar.config_map.as_ref().map(|c| [&c.name, &c.key, &c.hook_path]),
        "pvc": sidecar.pvc.as_ref().map(|p| [&p.name, &p.volume_path, &p.shared_compute_path]),
    })
}

/// The same fields of Go's entry; a configMap or pvc object is present whenever Go decoded one
/// (a non-nil pointer, even from `{}`), as for the policy.
fn go_fields(entry: &Value) -> Value {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default()
    };
    let triple = |v: &Value, keys: [&str; 3]| -> Option<[String; 3]> {
        let t = keys.map(|k| text(&v[k]));
        v.is_object().then_some(t)
    };
    serde_json::json!({
        "image": text(&entry["image"]),
        "imagePullPolicy": text(&entry["imagePullPolicy"]),
        "command": list(&entry["command"]),
        "args": list(&entry["args"]),
        "configMap": triple(&entry["configMap"], ["name", "key", "hookPath"]),
        "pvc": triple(&entry["pvc"], ["name", "volumePath", "sharedComputePath"]),
    })
}

/// The spoofing the strict decoder exists for: for some entry, Go runs a non-empty image other
/// than the one a reader of the exact key `image` would check (serde_json's `Value`, escapes
/// decoded, the last of duplicate exact keys).
fn runs_another_image(text: &str, go: &Value) -> bool {
    let Ok(Value::Array(entries)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let go_entries = go["sidecars"].as_array().cloned().unwrap_or_default();
    entries.iter().zip(&go_entries).any(|(exact, go)| {
        let go_image = go["image"].as_str().unwrap_or_default();
        !go_image.is_empty() && exact.get("image").and_then(Value::as_str) != Some(go_image)
    })
}

#[test]
fn whenever_the_policy_accepts_go_decodes_the_same_sidecars() {
    let dir = std::env::temp_dir().join(format!("go-decoder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = build_go_decoder(&dir);
    let mut rng = Rng(0xD1FF_0000_0000_0001);
    let annotations: Vec<String> = (0..20_000).map(|_| annotation(&mut rng)).collect();
    let go = go_oracle::answer_all(&binary, &annotations);

    let (mut both, mut only_go, mut neither) = (0, 0, 0);
    let mut go_runs_another_image = 0;
    for (text, go) in annotations.iter().zip(&go) {
        let go_ok = go.get("error").is_none();
        match decode(text) {
            Ok(sidecars) => {
                both += 1;
                assert!(go_ok, "policy accepted what Go refuses: {text} -> {go}");
                let go_entries = go["sidecars"].as_array().cloned().unwrap_or_default();
                assert_eq!(sidecars.len(), go_entries.len(), "{text}");
                for (ours, theirs) in sidecars.iter().zip(&go_entries) {
                    assert_eq!(checked_fields(ours), go_fields(theirs), "{text}");
                }
            }
            Err(_) if go_ok => {
                only_go += 1;
                if runs_another_image(text, go) {
                    go_runs_another_image += 1;
                }
            }
            Err(_) => neither += 1,
        }
    }
    println!(
        "accepted by both: {both}, refused only by the policy: {only_go} (of which Go would run \
         another image than the key \"image\" names: {go_runs_another_image}), \
         refused by both: {neither}"
    );
    assert!(
        both > 1_000,
        "too few accepted annotations ({both}) for the comparison to mean much"
    );
    assert!(
        go_runs_another_image > 100,
        "the corpus should contain image spoofing that Go falls for"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.4.0";

/// One line of `godecoder -generate`: a marshalled list and what it needs from the settings.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Marshalled {
    annotation: String,
    images: Vec<String>,
    command: bool,
    config_map: bool,
    pvc: bool,
    shared_compute_path: bool,
}

impl Marshalled {
    /// Settings that allow exactly what the list uses ("" is the sidecar-shim).
    fn settings(&self) -> Value {
        let mut allowed: Vec<&str> = self
            .images
            .iter()
            .map(|image| if image.is_empty() { SHIM } else { image })
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        json!({
            "allowedImages": allowed,
            "sidecarShimImage": SHIM,
            "allowCommand": self.command,
            "allowConfigMap": self.config_map,
            "allowPVC": self.pvc,
            "allowSharedComputePath": self.shared_compute_path,
        })
    }

    fn verdict(&self, settings: &Value) -> Result<(), String> {
        let payload = json!({
            "request": {
                "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachine"},
                "operation": "CREATE",
                "object": {"spec": {"template": {"metadata": {"annotations": {
                    HOOK_SIDECARS_ANNOTATION: self.annotation,
                }}}}},
            },
            "settings": settings,
        });
        let verdict = validate_payload(&serde_json::to_vec(&payload).expect("serializable"));
        match verdict.violations.is_empty() {
            true => Ok(()),
            false => Err(summary(&verdict.violations)),
        }
    }
}

fn go_generate(binary: &std::path::Path, count: usize, seed: u64) -> Vec<Marshalled> {
    let output = Command::new(binary)
        .args(["-generate", &count.to_string(), "-seed", &seed.to_string()])
        .output()
        .expect("run the Go generator");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).expect("generator line"))
        .collect()
}

#[test]
fn what_kubevirts_go_code_writes_is_accepted_when_allowed() {
    let dir = std::env::temp_dir().join(format!("go-generator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = build_go_decoder(&dir);
    let lists = go_generate(&binary, 5_000, 0x5EED);
    assert_eq!(lists.len(), 5_000);

    let (mut with_sidecars, mut with_empty_pull_policy, mut denials) = (0, 0, 0);
    for list in &lists {
        let text = &list.annotation;
        let settings = list.settings();
        if let Err(reason) = list.verdict(&settings) {
            panic!("{text} rejected with {settings}: {reason}");
        }
        with_sidecars += usize::from(!list.images.is_empty());
        with_empty_pull_policy += usize::from(text.contains("\"imagePullPolicy\":\"\""));
        // Fail closed: withdrawing any one thing the list needs turns it into a rejection.
        let switches = [
            (list.command, "allowCommand", "allowCommand is false"),
            (list.config_map, "allowConfigMap", "allowConfigMap is false"),
            (
                list.shared_compute_path,
                "allowSharedComputePath",
                "allowSharedComputePath is false",
            ),
        ];
        for (needed, switch, reason) in switches {
            if needed {
                let mut without = settings.clone();
                without[switch] = json!(false);
                expect_rejection(list, &without, reason);
                denials += 1;
            }
        }
        if list.pvc {
            let mut without = settings.clone();
            without["allowPVC"] = json!(false);
            without["allowSharedComputePath"] = json!(false);
            expect_rejection(list, &without, "allowPVC is false");
            denials += 1;
        }
        let allowed = settings["allowedImages"].as_array().expect("list").clone();
        for image in &allowed {
            let mut without = settings.clone();
            without["allowedImages"] =
                json!(allowed.iter().filter(|i| *i != image).collect::<Vec<_>>());
            expect_rejection(list, &without, "is not in allowedImages");
            denials += 1;
        }
    }
    println!(
        "{} marshalled lists accepted ({with_sidecars} with sidecars, {with_empty_pull_policy} with \
         \"imagePullPolicy\":\"\"); {denials} single withdrawals of an image or switch, each rejected",
        lists.len()
    );
    assert!(with_sidecars > 3_000 && with_empty_pull_policy > 1_000);
    let _ = std::fs::remove_dir_all(&dir);
}

fn expect_rejection(list: &Marshalled, settings: &Value, reason: &str) {
    match list.verdict(settings) {
        Ok(()) => panic!("{} accepted with {settings}", list.annotation),
        Err(message) => assert!(message.contains(reason), "{}: {message}", list.annotation),
    }
}
