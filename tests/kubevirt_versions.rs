//! The launcher-Pod check on every KubeVirt release the policy supports (tests/kubevirt-render/
//! versions.json: one per minor that Harvester ships or will ship), on Pods rendered by that
//! release's own template service (tests/kubevirt-render, built from the Go module proxy by
//! hack/build-kubevirt-render.sh):
//!
//! - `<release>::fixtures`: the launcher Pods of test_data/kubevirt/<release>/ (written by
//!   test_data/generate.py with the same renderer), each accepted under the settings that allow
//!   what it runs and rejected, for the right reason, under settings that withdraw one part; each
//!   `hook-sidecar-*` container read back as the annotation entry it was rendered from; from
//!   v1.9, the Pods with a Plugin's container beside a hook sidecar, judged on the hook sidecar
//!   alone, and containers dressed as the other kind refused.
//! - `<release>::differential::gates-off|gates-on`: for 300 generated sidecar lists, annotations
//!   and settings (profiles included), the VMI's annotation and the Pod the release renders from it
//!   get the same verdict, with as many reasons; once with the rendering feature gates off, once
//!   with them on.
//! - `compatibility_table`: docs/compatibility.md is the table of what the trials above covered
//!   (`UPDATE_DOCS=1` rewrites it).
//!
//! Everything runs first, once, so that the table is made of what ran; each trial then reports
//! its part.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hook_sidecar_policy::{HOOK_SIDECARS_ANNOTATION, HookSidecar, decode_annotation};
use hook_sidecar_policy::{Verdict, read_launcher_sidecars, summary, validate_payload};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

mod common;
#[path = "common/hostile_annotations.rs"]
mod hostile_annotations;
use common::Rng;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const OTHER: &str = "docker.io/attacker/qemu-hook:latest";
/// The network-binding plugin's sidecar of the fixtures (test_data/generate.py).
const BINDING: &str = "registry.example.com/network/device-info-binding:v1.0.0";
const CASES: usize = 300;
/// An annotation a profile may read beside the sidecars (KubeVirt copies it onto the Pod).
const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";
const ARGS_VALUES: &[&str] = &[
    "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536",
    "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -S",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Releases {
    releases: Vec<Release>,
    gates_off: Vec<String>,
    rendering_gates: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Release {
    version: String,
    harvester: Option<String>,
    harvester_ships: Option<String>,
    why: Option<String>,
}

impl Release {
    /// virt-controller's SIDECAR_SHIM_IMAGE for the renderer, and sidecarShimImage for the
    /// annotation (test_data/generate.py, `shim_of`).
    fn shim(&self) -> String {
        format!("quay.io/kubevirt/sidecar-shim:{}", self.version)
    }

    fn minor(&self) -> &str {
        self.version
            .trim_start_matches('v')
            .rsplit_once('.')
            .map_or(&self.version, |(minor, _)| minor)
    }
}

fn releases() -> Releases {
    let path = Path::new(ROOT).join("tests/kubevirt-render/versions.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The release's renderer, built once and cached by the repo's script.
fn renderer(release: &Release) -> Result<PathBuf, String> {
    let script = Path::new(ROOT).join("hack/build-kubevirt-render.sh");
    let output = Command::new(script)
        .arg(&release.version)
        .output()
        .map_err(|e| format!("this test needs Go on PATH to build tests/kubevirt-render: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "hack/build-kubevirt-render.sh {} failed: {}",
            release.version,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

fn render_all(renderer: &Path, shim: &str, inputs: &[Value]) -> Result<Vec<Value>, String> {
    ask(
        Command::new(renderer).env("SIDECAR_SHIM_IMAGE", shim),
        inputs,
    )
}

/// Sends each input to `command` as a JSON line and reads one JSON line back for each.
fn ask(command: &mut Command, inputs: &[Value]) -> Result<Vec<Value>, String> {
    let renderer = command.get_program().to_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {renderer:?}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let lines: String = inputs.iter().map(|i| format!("{i}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let results: Vec<Value> = BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .lines()
        .map(|line| {
            let line = line.map_err(|e| e.to_string())?;
            serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))
        })
        .collect::<Result<_, String>>()?;
    writer
        .join()
        .map_err(|_| "the writer panicked")?
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() || results.len() != inputs.len() {
        return Err(format!(
            "{renderer:?} exited with {status} after {} of {} answers",
            results.len(),
            inputs.len()
        ));
    }
    Ok(results)
}

fn evaluate(request: &Value, settings: &Value) -> Verdict {
    let payload = json!({"request": request, "settings": settings});
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
}

/// Fails unless `verdict` accepts.
fn expect_accepted(what: &str, settings: &Value, verdict: &Verdict) -> Result<(), String> {
    if verdict.violations.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} under {settings}: rejected: {}",
            summary(&verdict.violations)
        ))
    }
}

/// Fails unless `verdict` rejects with `count` violations whose message holds every fragment.
fn expect_rejected(
    what: &str,
    settings: &Value,
    verdict: &Verdict,
    count: usize,
    fragments: &[&str],
) -> Result<(), String> {
    let message = summary(&verdict.violations);
    if verdict.violations.len() != count {
        return Err(format!(
            "{what} under {settings}: {} violations, expected {count}: {message}",
            verdict.violations.len()
        ));
    }
    for fragment in fragments {
        if !message.contains(fragment) {
            return Err(format!(
                "{what} under {settings}: {fragment:?} not in: {message}"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fixtures of test_data/kubevirt/<release>/.

/// What one release's fixtures covered.
#[derive(Default)]
struct FixtureCoverage {
    /// File stems, e.g. `launcher-pod-create-gpu-hook-gates-on`.
    pods: Vec<String>,
    verdicts: usize,
    /// Launcher Pods with a Plugin's container.
    plugin_pods: usize,
    /// Containers dressed as the other kind, each refused.
    dressed_up_refused: usize,
    /// The hook-sidecar containers of the gates-off Pods (the image aside), by Pod and name.
    sidecar_containers: BTreeMap<String, Value>,
    /// What each rendering gate changes in the gpu-hook Pod (gates.json).
    gates: BTreeMap<String, Vec<String>>,
}

/// Settings that allow what the Pod of `case` runs, and settings that each withdraw one part,
/// with the number of violations and fragments of the rejection.
type Expectations = (Value, Vec<(Value, usize, Vec<String>)>);

fn expectations(case: &str, shim: &str) -> Option<Expectations> {
    let gpu = json!({"allowedImages": [GPU_HOOK]});
    let not_listed = |image: &str, container: &str| {
        vec![
            format!("\"{container}\": image \"{image}\""),
            "is not in allowedImages".to_owned(),
        ]
    };
    Some(match case {
        "no-sidecar" | "plugin-sidecar" => (json!({}), vec![]),
        "gpu-hook" | "plugin-sidecar-and-gpu-hook" => (
            gpu,
            vec![(json!({}), 1, not_listed(GPU_HOOK, "hook-sidecar-0"))],
        ),
        "shim-configmap" => (
            json!({"allowedImages": [shim], "allowConfigMap": true}),
            vec![
                (
                    json!({"allowedImages": [shim]}),
                    1,
                    vec!["configMap \"gpu-vm-hooks\" mounts a user script at \"/usr/bin/onDefineDomain\", and allowConfigMap is false".into()],
                ),
                (
                    json!({"allowedImages": [GPU_HOOK], "allowConfigMap": true}),
                    1,
                    not_listed(shim, "hook-sidecar-0"),
                ),
            ],
        ),
        "command" => (
            json!({"allowedImages": [GPU_HOOK], "allowCommand": true}),
            vec![(
                gpu,
                1,
                vec!["command [\"/usr/bin/qemu-commandline-hook\", \"--debug\"] replaces the image's entrypoint".into()],
            )],
        ),
        "pvc-shared" => (
            json!({"allowedImages": [GPU_HOOK], "allowPVC": true, "allowSharedComputePath": true}),
            vec![(
                json!({"allowedImages": [GPU_HOOK], "allowPVC": true}),
                1,
                vec!["pvc.sharedComputePath \"/var/run/kubevirt-private/efivars\" mounts user data in the compute container".into()],
            )],
        ),
        "network-binding" => (
            json!({"allowedImages": [GPU_HOOK, BINDING]}),
            vec![(gpu, 1, not_listed(BINDING, "hook-sidecar-1"))],
        ),
        _ => return None,
    })
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path:?}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path:?}: {e}"))
}

fn containers_mut(request: &mut Value) -> &mut Vec<Value> {
    request["object"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
}

fn check_fixtures(release: &Release) -> Result<FixtureCoverage, String> {
    let directory = Path::new(ROOT)
        .join("test_data/kubevirt")
        .join(&release.version);
    let shim = release.shim();
    let mut coverage = FixtureCoverage {
        gates: serde_json::from_value(read_json(&directory.join("gates.json"))?)
            .map_err(|e| format!("gates.json: {e}"))?,
        ..FixtureCoverage::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .map_err(|e| format!("{directory:?}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("launcher-pod-create-"))
        })
        .collect();
    files.sort();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("file name")?
            .to_owned();
        let case = stem.trim_start_matches("launcher-pod-create-");
        let (case, gates_on) = match case.strip_suffix("-gates-on") {
            Some(case) => (case, true),
            None => (case, false),
        };
        let (allowed, rejected) =
            expectations(case, &shim).ok_or_else(|| format!("{path:?}: no expectations"))?;
        let request = read_json(&path)?;
        let what = format!("{}/{stem}", release.version);
        expect_accepted(&what, &allowed, &evaluate(&request, &allowed))?;
        for (settings, count, fragments) in &rejected {
            let fragments: Vec<&str> = fragments.iter().map(String::as_str).collect();
            expect_rejected(
                &what,
                settings,
                &evaluate(&request, settings),
                *count,
                &fragments,
            )?;
        }
        coverage.verdicts += 1 + rejected.len();
        let sidecars = check_entries(&what, &request, &shim)?;
        if !gates_on && !case.starts_with("plugin-") {
            for (name, container) in sidecars {
                coverage
                    .sidecar_containers
                    .insert(format!("{case}/{name}"), container);
            }
        }
        if case.starts_with("plugin-") {
            coverage.plugin_pods += 1;
            coverage.dressed_up_refused += check_dressed_up(&what, &request)?;
        }
        coverage.pods.push(stem);
    }
    if coverage.pods.is_empty() {
        return Err(format!("no launcher Pods in {directory:?}"));
    }
    if !coverage.gates.get("Plugins").is_none_or(Vec::is_empty) && coverage.plugin_pods == 0 {
        return Err(format!(
            "{}: the Plugins gate changes the rendering, but there is no Pod with a Plugin",
            release.version
        ));
    }
    Ok(coverage)
}

/// Each `hook-sidecar-*` container is the annotation entry it was rendered from (which KubeVirt
/// copies onto the Pod), the image aside where KubeVirt put in the shim, and the network-binding
/// sidecars after them; no container mounts what KubeVirt never renders. Returns the containers
/// by name, without their images.
fn check_entries(what: &str, request: &Value, shim: &str) -> Result<Vec<(String, Value)>, String> {
    let raw = RawValue::from_string(request["object"].to_string()).map_err(|e| e.to_string())?;
    let rendered = read_launcher_sidecars(&raw)?.ok_or(format!("{what}: not a launcher Pod"))?;
    let entries =
        match request["object"]["metadata"]["annotations"][HOOK_SIDECARS_ANNOTATION].as_str() {
            Some(value) => decode_annotation(value)?,
            None => Vec::new(),
        };
    if rendered.len() < entries.len() {
        return Err(format!(
            "{what}: {} containers for {} entries",
            rendered.len(),
            entries.len()
        ));
    }
    for (index, rendered) in rendered.iter().enumerate() {
        if rendered.container != format!("hook-sidecar-{index}")
            || !rendered.foreign_mounts.is_empty()
        {
            return Err(format!("{what}: {rendered:?}"));
        }
        if let Some(entry) = entries.get(index) {
            let expected = HookSidecar {
                image: Some(entry.explicit_image().unwrap_or(shim).to_owned()),
                image_pull_policy: None,
                ..entry.clone()
            };
            if rendered.sidecar != expected {
                return Err(format!(
                    "{what}: {:?} is not the entry {expected:?}",
                    rendered.sidecar
                ));
            }
        }
    }
    Ok(request["object"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|container| {
            let name = container["name"].as_str()?;
            name.starts_with("hook-sidecar-").then(|| {
                // Its own name as `hook-sidecar-<i>` (in CONTAINER_NAME, the socket subPath), so
                // that the containers of one release compare as one shape.
                let text = container
                    .to_string()
                    .replace(&format!("\"{name}\""), "\"hook-sidecar-<i>\"");
                let mut container: Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(fields) = container.as_object_mut() {
                    fields.remove("image");
                }
                (name.to_owned(), container)
            })
        })
        .collect())
}

/// A launcher Pod with a Plugin's container: the container renamed `hook-sidecar-*`, the container
/// mounting the hook socket volume instead, and the hook sidecar mounting the plugin socket volume
/// are each refused, whatever images are allowed.
fn check_dressed_up(what: &str, request: &Value) -> Result<usize, String> {
    // Everything allowed but what the dressing is about.
    let settings = json!({"allowedImages": [GPU_HOOK, OTHER, "registry.example.com/kubevirt-plugins/smbios-domain-hook:v1.0.0"], "allowCommand": true});
    let plugin_index = request["object"]["spec"]["containers"]
        .as_array()
        .and_then(|c| {
            c.iter().position(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("plugin-sidecar-"))
            })
        })
        .ok_or(format!("{what}: no Plugin container"))?;
    let has_hook_sidecar = request["object"]["spec"]["containers"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["name"] == "hook-sidecar-0"));
    let mut refused = 0;

    let mut renamed = request.clone();
    containers_mut(&mut renamed)[plugin_index]["name"] = json!("hook-sidecar-9");
    expect_rejected(
        what,
        &settings,
        &evaluate(&renamed, &settings),
        1,
        &[
            "\"hook-sidecar-9\": mounts the volume \"kubevirt-plugin-sockets\" (the Plugin socket directory)",
        ],
    )?;
    refused += 1;

    if has_hook_sidecar {
        // Only a Pod with hook sidecars has the hook socket volume, and virt-launcher waits for
        // sockets there only when it has them.
        let mut impostor = request.clone();
        containers_mut(&mut impostor)[plugin_index]["volumeMounts"][0] = json!(
            {"name": "hook-sidecar-sockets", "mountPath": "/var/run/kubevirt-hooks", "subPath": "smbios"}
        );
        expect_rejected(
            what,
            &settings,
            &evaluate(&impostor, &settings),
            1,
            &[
                "mounts the hook socket volume \"hook-sidecar-sockets\" but is not named hook-sidecar-<i>",
            ],
        )?;
        refused += 1;

        let mut mounting = request.clone();
        let mount =
            request["object"]["spec"]["containers"][plugin_index]["volumeMounts"][0].clone();
        let sidecar = containers_mut(&mut mounting)
            .iter_mut()
            .find(|c| c["name"] == "hook-sidecar-0")
            .ok_or("hook-sidecar-0")?;
        sidecar["volumeMounts"]
            .as_array_mut()
            .ok_or("mounts")?
            .push(mount);
        expect_rejected(
            what,
            &settings,
            &evaluate(&mounting, &settings),
            1,
            &[
                "\"hook-sidecar-0\": mounts the volume \"kubevirt-plugin-sockets\" (the Plugin socket directory)",
            ],
        )?;
        refused += 1;
    }
    Ok(refused)
}

// ---------------------------------------------------------------------------------------------
// The decoder: tests/go-decoder's copy of KubeVirt's types against the release's own.

/// Fields of KubeVirt's `HookSidecar` that JSON never sets (`json:"-"`: `DownwardAPI` in every
/// release, `NetworkBindingPluginName` from v1.9), spelled as an annotation could.
const UNREADABLE_KEYS: &[&str] = &[
    "downwardAPI",
    "DownwardAPI",
    "networkBindingPluginName",
    "NetworkBindingPluginName",
    "NETWORK_BINDING_PLUGIN_NAME",
];

/// The hostile annotations of tests/go_decoder_differential.rs (its seed and count), and keys
/// naming the fields JSON never sets: the release's own `hooks.UnmarshalHookSidecarList` decodes
/// every one as tests/go-decoder does (what it runs, or that it fails), so the differential of the
/// policy against tests/go-decoder holds for the release. Returns how many were compared.
fn decoder(renderer: &Path, copy: &Path) -> Result<usize, String> {
    let mut rng = Rng(0xD1FF_0000_0000_0001);
    let mut annotations: Vec<Value> = (0..20_000)
        .map(|_| Value::String(hostile_annotations::annotation(&mut rng)))
        .collect();
    for key in UNREADABLE_KEYS {
        for value in ["\"x\"", "\"pod-info\"", "5", "[\"pod-info\"]"] {
            annotations.push(Value::String(format!(
                "[{{\"image\": \"ok:1\", \"{key}\": {value}}}]"
            )));
        }
    }
    let theirs = ask(Command::new(renderer).arg("decode"), &annotations)?;
    let copied = ask(&mut Command::new(copy), &annotations)?;
    let sidecars = |answer: &Value| match &answer["sidecars"] {
        Value::Null => json!([]),
        list => list.clone(),
    };
    for ((annotation, theirs), copied) in annotations.iter().zip(&theirs).zip(&copied) {
        // Error texts may differ (a type's name); whether it fails may not.
        let same = theirs.get("error").is_some() == copied.get("error").is_some()
            && (theirs.get("error").is_some() || sidecars(theirs) == sidecars(copied));
        if !same {
            return Err(format!(
                "{annotation}: KubeVirt decodes {theirs}, tests/go-decoder {copied}"
            ));
        }
    }
    Ok(annotations.len())
}

// ---------------------------------------------------------------------------------------------
// The differential: annotation check against Pod check.

fn chance(rng: &mut Rng, percent: u64) -> bool {
    rng.next() % 100 < percent
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

fn settings(rng: &mut Rng, shim: &str) -> Value {
    let images: Vec<&str> = [GPU_HOOK, OTHER, shim]
        .into_iter()
        .filter(|_| chance(rng, 60))
        .collect();
    let allow_pvc = chance(rng, 50);
    let mut profiles = Vec::new();
    for image in [GPU_HOOK, shim] {
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
    let mut annotations = json!({HOOK_SIDECARS_ANNOTATION: sidecars.to_string()});
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

/// What one differential run covered.
struct DifferentialCoverage {
    accepted: usize,
    rejected: usize,
}

fn differential(
    renderer: &Path,
    release: &Release,
    (feature_gates, disabled_gates): (&[String], &[String]),
) -> Result<DifferentialCoverage, String> {
    let shim = release.shim();
    // The same corpus for every release and gate setting (the seed of tests/pod_differential.rs
    // when it knew one release).
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases: Vec<(Value, Value, Option<&str>)> = (0..CASES)
        .map(|_| {
            let sidecars: Vec<Value> = (0..1 + rng.below(3))
                .map(|i| sidecar(&mut rng, i))
                .collect();
            let args = chance(&mut rng, 75).then(|| rng.pick(ARGS_VALUES));
            (Value::Array(sidecars), settings(&mut rng, &shim), args)
        })
        .collect();
    let configuration = json!({"developerConfiguration": {
        "featureGates": feature_gates, "disabledFeatureGates": disabled_gates}});
    let inputs: Vec<Value> = cases
        .iter()
        .map(|(sidecars, _, args)| {
            let config_maps: Vec<&Value> = sidecars
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("configMap").map(|c| &c["name"]))
                .collect();
            json!({"vmi": vmi(sidecars, *args), "kubevirtConfiguration": configuration, "configMaps": config_maps})
        })
        .collect();
    let rendered = render_all(renderer, &shim, &inputs)?;

    let (mut accepted, mut rejected) = (0, 0);
    for ((sidecars, settings, _), (input, result)) in cases.iter().zip(inputs.iter().zip(&rendered))
    {
        let pod = result
            .get("pod")
            .ok_or_else(|| format!("KubeVirt did not render {sidecars}: {result}"))?;
        let mut annotation_settings = settings.clone();
        annotation_settings["sidecarShimImage"] = json!(shim);
        let by_annotation = evaluate(
            &create("kubevirt.io", "VirtualMachineInstance", &input["vmi"]),
            &annotation_settings,
        );
        let by_pod = evaluate(&create("", "Pod", pod), settings);
        if (
            by_annotation.violations.is_empty(),
            by_annotation.violations.len(),
        ) != (by_pod.violations.is_empty(), by_pod.violations.len())
        {
            return Err(format!(
                "sidecars {sidecars}, settings {settings}:\n annotation: {by_annotation:?}\n pod: {by_pod:?}"
            ));
        }
        if by_pod.violations.is_empty() {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    // Both outcomes must be well represented, or the comparison says little.
    if accepted < CASES / 10 || rejected < CASES / 10 {
        return Err(format!("{accepted} accepted, {rejected} rejected"));
    }
    Ok(DifferentialCoverage { accepted, rejected })
}

// ---------------------------------------------------------------------------------------------
// The compatibility table.

/// Where two JSON values differ; list items with a `name` are matched by it.
fn changed_paths(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for key in keys {
                match (b.get(key), a.get(key)) {
                    (Some(x), Some(y)) => changed_paths(x, y, &format!("{path}.{key}"), out),
                    (None, Some(y)) => out.push(format!("`{path}.{key}` added ({y})")),
                    (Some(_), None) => out.push(format!("`{path}.{key}` removed")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a))
            if b.iter()
                .chain(a)
                .all(|i| i.get("name").is_some_and(Value::is_string)) =>
        {
            let named = |items: &Vec<Value>| -> BTreeMap<String, Value> {
                items
                    .iter()
                    .map(|i| (i["name"].as_str().unwrap_or_default().to_owned(), i.clone()))
                    .collect()
            };
            let (b, a) = (named(b), named(a));
            let names: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for name in names {
                match (b.get(name), a.get(name)) {
                    (Some(x), Some(y)) => changed_paths(x, y, &format!("{path}[{name}]"), out),
                    (None, Some(y)) => out.push(format!("`{path}[{name}]` added ({y})")),
                    (Some(_), None) => out.push(format!("`{path}[{name}]` removed")),
                    (None, None) => {}
                }
            }
        }
        _ if before == after => {}
        _ => out.push(format!("`{path}`: {before} → {after}")),
    }
}

struct Covered {
    release: Release,
    fixtures: Result<FixtureCoverage, String>,
    /// Annotations decoded alike by the release and tests/go-decoder.
    decoder: Result<usize, String>,
    /// Gates off, gates on.
    differentials: [Result<DifferentialCoverage, String>; 2],
}

const DIFFERENTIALS: [&str; 2] = ["gates-off", "gates-on"];

fn table(covered: &[Covered], releases: &Releases) -> String {
    let mut doc = String::new();
    let _ = writeln!(
        doc,
        "# KubeVirt releases the launcher-Pod check is tested on\n\n\
         Generated by `tests/kubevirt_versions.rs` from what its trials ran (`UPDATE_DOCS=1 cargo \
         test --test kubevirt_versions` rewrites it; the test fails when this file is not what it \
         would write). One release per KubeVirt minor that Harvester ships or will ship \
         (`tests/kubevirt-render/versions.json`); each renders the launcher Pods with its own \
         template service (`tests/kubevirt-render`), with the feature gates {} on and {} disabled \
         (\"gates off\": a Beta gate is on unless disabled), and with all of them on \
         (\"gates on\").\n",
        code_list(&releases.gates_off),
        code_list(&releases.rendering_gates),
    );
    doc.push_str(
        "| KubeVirt | Harvester | rendered by | trials | launcher Pods (`test_data/kubevirt/<release>/`) | 300 generated VMIs, annotation vs Pod: same verdict (accepted / rejected), gates off · on | annotations its own decoder decodes as `tests/go-decoder` |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in covered {
        let r = &c.release;
        let harvester = match (&r.harvester, &r.harvester_ships) {
            (Some(h), Some(ships)) => format!("{h} (ships {ships})"),
            _ => "none yet".to_owned(),
        };
        let rendered_by = if r.why.is_some() {
            format!("{} ¹", r.version)
        } else {
            r.version.clone()
        };
        let trials = [
            format!("`{}::fixtures`", r.version),
            format!("`{}::decoder`", r.version),
        ]
        .into_iter()
        .chain(
            DIFFERENTIALS
                .iter()
                .map(|d| format!("`{}::differential::{d}`", r.version)),
        )
        .collect::<Vec<_>>()
        .join(", ");
        let pods = match &c.fixtures {
            Ok(f) => {
                let mut text = format!("{} Pods, {} verdicts", f.pods.len(), f.verdicts);
                if f.plugin_pods > 0 {
                    let _ = write!(
                        text,
                        "; {} with a Plugin's container beside them, {} containers dressed as the other kind refused",
                        f.plugin_pods, f.dressed_up_refused
                    );
                }
                text
            }
            Err(_) => "FAILED".to_owned(),
        };
        let differentials = c
            .differentials
            .iter()
            .map(|d| match d {
                Ok(d) => format!("{} / {}", d.accepted, d.rejected),
                Err(_) => "FAILED".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" · ");
        let decoded = match &c.decoder {
            Ok(count) => count.to_string(),
            Err(_) => "FAILED".to_owned(),
        };
        let _ = writeln!(
            doc,
            "| {} | {harvester} | {rendered_by} | {trials} | {pods} | {differentials} | {decoded} |",
            r.minor()
        );
    }
    doc.push('\n');
    for c in covered.iter().filter(|c| c.release.why.is_some()) {
        let _ = writeln!(
            doc,
            "¹ {}: {}.\n",
            c.release.version,
            c.release.why.as_deref().unwrap_or_default()
        );
    }

    doc.push_str(
        "## What the releases render differently\n\n\
         The `hook-sidecar-*` containers of each release's gates-off Pods (their images aside), \
         compared with the release before:\n\n",
    );
    let mut previous: Option<&Covered> = None;
    for c in covered {
        let Ok(fixtures) = &c.fixtures else { continue };
        let changes = match previous.and_then(|p| p.fixtures.as_ref().ok()) {
            None => "the first release tested".to_owned(),
            Some(before) => {
                // One line per change of the containers, not per container that has it.
                let mut lines = Vec::new();
                for (key, after) in &fixtures.sidecar_containers {
                    match before.sidecar_containers.get(key) {
                        Some(before) => {
                            changed_paths(before, after, "hook-sidecar-<i>", &mut lines)
                        }
                        None => lines.push(format!("`{key}` added")),
                    }
                }
                for key in before.sidecar_containers.keys() {
                    if !fixtures.sidecar_containers.contains_key(key) {
                        lines.push(format!("`{key}` removed"));
                    }
                }
                lines.sort();
                lines.dedup();
                if lines.is_empty() {
                    "the same".to_owned()
                } else {
                    lines.join("; ")
                }
            }
        };
        let _ = writeln!(doc, "- {}: {changes}", c.release.version);
        previous = Some(c);
    }
    doc.push_str(
        "\nWhat each rendering gate changes in the gpu-hook Pod (`test_data/kubevirt/<release>/gates.json`):\n\n",
    );
    for c in covered {
        let Ok(fixtures) = &c.fixtures else { continue };
        let effects: Vec<String> = fixtures
            .gates
            .iter()
            .filter(|(_, paths)| !paths.is_empty())
            .map(|(gate, paths)| format!("`{gate}`: {}", paths.join(", ")))
            .collect();
        let effects = if effects.is_empty() {
            "none".to_owned()
        } else {
            effects.join("; ")
        };
        let _ = writeln!(doc, "- {}: {effects}", c.release.version);
    }
    doc.push_str(
        "\nNone of these reaches what the check reads of a `hook-sidecar-*` container (image, \
         command, args, mounts); the check accepts both forms of the socket mount and reads no \
         environment variable (`src/pod.rs`). The Plugin migration of \
         [kubevirt-plugins.md](kubevirt-plugins.md) is tested against KubeVirt v1.9.0's CRDs and \
         admission policies on a real API server by `policy-host/tests/kubevirt_plugins.rs`.\n",
    );
    doc
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn compare_table(expected: &str) -> Result<(), String> {
    let path = Path::new(ROOT).join("docs/compatibility.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        return std::fs::write(&path, expected).map_err(|e| format!("{path:?}: {e}"));
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    if actual == expected {
        return Ok(());
    }
    let line = actual
        .lines()
        .zip(expected.lines())
        .position(|(a, e)| a != e)
        .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
    Err(format!(
        "docs/compatibility.md is not what the trials covered (first difference at line {}); \
         rerun with UPDATE_DOCS=1. Expected:\n{expected}",
        line + 1
    ))
}

fn main() {
    let args = Arguments::from_args();
    let releases = releases();
    let go_decoder = std::env::temp_dir().join(format!("kubevirt-versions-{}", std::process::id()));
    let covered: Vec<Covered> = if args.list {
        Vec::new()
    } else {
        let _ = std::fs::create_dir_all(&go_decoder);
        let copy = hostile_annotations::build_go_decoder(&go_decoder);
        releases
            .releases
            .iter()
            .map(|release| {
                let renderer = renderer(release);
                let gates_on: Vec<String> = releases
                    .gates_off
                    .iter()
                    .chain(&releases.rendering_gates)
                    .cloned()
                    .collect();
                let run = |gates: (&[String], &[String])| {
                    renderer
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|r| differential(r, release, gates))
                };
                Covered {
                    release: release.clone(),
                    fixtures: check_fixtures(release),
                    decoder: renderer
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(|r| decoder(r, &copy)),
                    // Gates off: the rendering gates disabled too (a Beta gate is on unless
                    // disabled).
                    differentials: [
                        run((&releases.gates_off, &releases.rendering_gates)),
                        run((&gates_on, &[])),
                    ],
                }
            })
            .collect()
    };
    let _ = std::fs::remove_dir_all(&go_decoder);
    let document = table(&covered, &releases);
    let mut trials = Vec::new();
    for release in &releases.releases {
        let outcome = covered
            .iter()
            .find(|c| c.release.version == release.version);
        let fixtures = outcome.map(|c| c.fixtures.as_ref().map(|_| ()).map_err(Clone::clone));
        trials.push(Trial::test(
            format!("{}::fixtures", release.version),
            move || fixtures.unwrap_or(Ok(())).map_err(Failed::from),
        ));
        let decoded = outcome.map(|c| c.decoder.clone());
        trials.push(Trial::test(
            format!("{}::decoder", release.version),
            move || decoded.unwrap_or(Ok(0)).map(drop).map_err(Failed::from),
        ));
        for (index, name) in DIFFERENTIALS.iter().enumerate() {
            let result = outcome.map(|c| {
                c.differentials[index]
                    .as_ref()
                    .map(|d| (d.accepted, d.rejected))
                    .map_err(Clone::clone)
            });
            trials.push(Trial::test(
                format!("{}::differential::{name}", release.version),
                move || match result {
                    Some(Ok((accepted, rejected))) => {
                        println!("{CASES} cases: {accepted} accepted by both, {rejected} rejected by both");
                        Ok(())
                    }
                    Some(Err(e)) => Err(Failed::from(e)),
                    None => Ok(()),
                },
            ));
        }
    }
    let all_passed = covered.iter().all(|c| {
        c.fixtures.is_ok() && c.decoder.is_ok() && c.differentials.iter().all(Result::is_ok)
    });
    trials.push(Trial::test("compatibility_table", move || {
        if !all_passed {
            return Err("a trial failed: the table would list it as failed".into());
        }
        compare_table(&document).map_err(Failed::from)
    }));
    libtest_mimic::run(&args, trials).exit();
}
