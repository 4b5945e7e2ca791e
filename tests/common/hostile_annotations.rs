//! Hostile hook-sidecar annotations (every key spelling Go's decoder folds, duplicates, nulls,
//! wrong types), and tests/go-decoder, which decodes them into KubeVirt's HookSidecarList shape:
//! shared by tests/go_decoder_differential.rs (the policy against Go) and
//! tests/kubevirt_versions.rs (tests/go-decoder against each KubeVirt release's own decoder).

use std::process::Command;

use crate::common::Rng;

const ENTRY_KEYS: &[&str] = &[
    "image",
    "image",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "configMap",
    "pvc",
    "Image",
    "IMAGE",
    "imagepullpolicy",
    "Command",
    "ARGS",
    "argſ",
    "configmap",
    "PVC",
    "\\u0069mage",
    "\\u0049mage",
    "downwardAPI",
    "foo",
    "ima\u{212A}e",
    "imaſe",
];
const NESTED_KEYS: &[&str] = &[
    "name",
    "key",
    "hookPath",
    "volumePath",
    "sharedComputePath",
    "Name",
    "\u{212A}ey",
    "hookpath",
    "SHAREDCOMPUTEPATH",
    "sharedComputePatħ",
    "\\u006bey",
];
const IMAGES: &[&str] = &[
    "\"ok:1\"",
    "\"evil:1\"",
    "\"\"",
    "null",
    "5",
    "true",
    "[\"x\"]",
    "\"ok\\u003a1\"",
];

fn string_list(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => "null".into(),
        1 => "[]".into(),
        2 => "[\"/bin/sh\", \"-c\"]".into(),
        3 => "[\"--version\", \"v1alpha2\"]".into(),
        4 => "[null]".into(),
        _ => "\"/bin/sh\"".into(),
    }
}

fn nested(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => return "null".into(),
        1 => return "\"cm\"".into(),
        _ => {}
    }
    let fields: Vec<String> = (0..rng.below(4))
        .map(|_| {
            let value = ["\"x\"", "\"/var/run/kubevirt-hooks\"", "\"\"", "null", "1"][rng.below(5)];
            format!("\"{}\": {value}", rng.pick(NESTED_KEYS))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn entry(rng: &mut Rng) -> String {
    if rng.below(10) == 0 {
        return ["null", "\"ok:1\"", "[]", "5"][rng.below(4)].into();
    }
    let fields: Vec<String> = (0..rng.below(5))
        .map(|_| {
            let key = rng.pick(ENTRY_KEYS);
            let folded = key
                .to_ascii_lowercase()
                .replace("\\u0069", "i")
                .replace("\\u0049", "i");
            let value = match folded.as_str() {
                k if k.starts_with("ima") && !k.contains("pull") => rng.pick(IMAGES).to_owned(),
                "imagepullpolicy" => [
                    "\"Always\"",
                    "\"IfNotPresent\"",
                    "\"Never\"",
                    "\"always\"",
                    "null",
                    "\"\"",
                ][rng.below(6)]
                .into(),
                "command" | "args" | "argſ" => string_list(rng),
                "configmap" | "pvc" => nested(rng),
                _ => rng.pick(IMAGES).to_owned(),
            };
            format!("\"{key}\": {value}")
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

pub fn annotation(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => return "null".into(),
        1 => return " [ ] ".into(),
        2 => return "{\"image\": \"ok:1\"}".into(),
        _ => {}
    }
    let entries: Vec<String> = (0..1 + rng.below(3)).map(|_| entry(rng)).collect();
    format!("[{}]", entries.join(", "))
}

/// Builds tests/go-decoder and returns the path of the binary.
pub fn build_go_decoder(dir: &std::path::Path) -> std::path::PathBuf {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go-decoder");
    let binary = dir.join("godecoder");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(source)
        .env("GOFLAGS", "-mod=mod")
        .status()
        .expect("this test needs Go (the machine toolchain) on PATH to build tests/go-decoder");
    assert!(status.success(), "go build of tests/go-decoder failed");
    binary
}
