//! Issue 21's red-team cases, through the whole `validate` payload: no allowed spelling of an
//! image escapes the profile that governs it (VM, VMI, launcher Pod, and an image allowed by the
//! Harvester Setting), no value a VM owner writes is matched past its bound, and a pattern that
//! does not compile alone matches nothing, even in settings that skipped `validate_settings`.
//! (The cost of each is measured by `make bench`; e2e-tests/ repeats them through the module.)

use hook_sidecar_policy::{AllowedImage, ConfigMapKey, Host, ImageReference, SettingObject};
use hook_sidecar_policy::{Verdict, summary, validate_payload, validate_payload_with};
use rstest::rstest;
use serde_json::{Value, json};

const REPO: &str = "registry.example.com/kubevirt-hooks/qemu-commandline";
const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";
const MMIO: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+";
const APERTURE: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536";
const EXTRA_DRIVE: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1 -drive file=/dev/sda";
const HOOKS: &str = "hooks.kubevirt.io/hookSidecars";

fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn payload(request: &Value, settings: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"request": request, "settings": settings})).expect("JSON")
}

fn evaluate(request: &Value, settings: &Value) -> Verdict {
    validate_payload(&payload(request, settings))
}

/// The README's profile: the hook's args pinned, its QEMU arguments limited to the aperture.
fn mmio_profile() -> Value {
    json!({"image": GPU_HOOK, "args": [["--version", "v1alpha3"]], "annotations": {ARGS_KEY: MMIO}})
}

fn settings(allowed: &[&str]) -> Value {
    json!({"allowedImages": allowed, "sidecarProfiles": [mmio_profile()]})
}

fn sidecars(image: &str, args: &[&str]) -> String {
    json!([{"image": image, "args": args}]).to_string()
}

/// A VM, VMI or launcher Pod request with the sidecar `image` given `args`, the QEMU-arguments
/// annotation set to `annotation` where the sidecar reads it.
fn request(kind: &str, image: &str, args: &[&str], annotation: &str) -> Value {
    match kind {
        "vm" => {
            let mut request = fixture("vm-create");
            let map = &mut request["object"]["spec"]["template"]["metadata"]["annotations"];
            map[HOOKS] = json!(sidecars(image, args));
            map[ARGS_KEY] = json!(annotation);
            request
        }
        "vmi" => {
            let mut request = fixture("vmi-create");
            let map = &mut request["object"]["metadata"]["annotations"];
            map[HOOKS] = json!(sidecars(image, args));
            map[ARGS_KEY] = json!(annotation);
            request
        }
        "pod" => {
            let mut request = fixture("launcher-pod-create-gpu-hook");
            let object = &mut request["object"];
            object["metadata"]["annotations"][HOOKS] = json!(sidecars(image, args));
            object["metadata"]["annotations"][ARGS_KEY] = json!(annotation);
            let containers = object["spec"]["containers"]
                .as_array_mut()
                .expect("containers");
            let sidecar = containers
                .iter_mut()
                .find(|c| c["name"] == "hook-sidecar-0")
                .expect("the sidecar container");
            sidecar["image"] = json!(image);
            sidecar["args"] = json!(args);
            request
        }
        other => panic!("no request kind {other}"),
    }
}

fn rejected_with(verdict: &Verdict, fragments: &[&str]) -> Result<(), String> {
    if verdict.violations.is_empty() {
        return Err(format!("accepted: {verdict:?}"));
    }
    let message = summary(&verdict.violations);
    match fragments.iter().find(|f| !message.contains(**f)) {
        Some(missing) => Err(format!("{missing:?} not in: {message}")),
        None => Ok(()),
    }
}

/// The allow-list forms the red team used beside a tag profile, and every spelling of the
/// profile's repository a VM owner can write: whenever the entry allows the spelling, the
/// profile governs it, in the VM, the VMI and the launcher Pod.
#[rstest]
fn no_allowed_spelling_escapes_a_tag_profile(
    #[values("vm", "vmi", "pod")] kind: &str,
    #[values(
        "registry.example.com/kubevirt-hooks/*",
        "registry.example.com/*",
        "registry.example.com/kubevirt-hooks/qemu-commandline:*",
        "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0@DIGEST",
        "registry.example.com/kubevirt-hooks/qemu-commandline@DIGEST"
    )]
    entry: &str,
    #[values(
        "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0",
        "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0@DIGEST",
        "registry.example.com/kubevirt-hooks/qemu-commandline@DIGEST",
        "registry.example.com/kubevirt-hooks/qemu-commandline:v9.9.9@DIGEST",
        "registry.example.com:443/kubevirt-hooks/qemu-commandline@DIGEST"
    )]
    image: &str,
) {
    let (entry, image) = (
        entry.replace("DIGEST", DIGEST),
        image.replace("DIGEST", DIGEST),
    );
    let allowed = AllowedImage::parse(&entry)
        .expect("entry")
        .allows(&ImageReference::parse(&image).expect("image"));
    let settings = settings(&[&entry]);
    // Free args and a second QEMU option: what the profile is there to stop.
    let verdict = evaluate(&request(kind, &image, &["--free"], EXTRA_DRIVE), &settings);
    let expected: &[&str] = if allowed {
        &[
            "sidecarProfiles[0]",
            "args [\"--free\"]",
            "-drive file=/dev/sda",
        ]
    } else {
        &["is not in allowedImages"]
    };
    rejected_with(&verdict, expected).unwrap_or_else(|e| panic!("{kind} {entry} {image}: {e}"));
    // What the profile allows passes in every allowed spelling.
    let good = evaluate(
        &request(kind, &image, &["--version", "v1alpha3"], APERTURE),
        &settings,
    );
    assert_eq!(
        good.violations.is_empty(),
        allowed,
        "{kind} {entry} {image}: {good:?}"
    );
}

/// Before: a profile that names a digest governed only that digest, so the tag it names ran
/// free. A tag profile beside a digest profile of another tag: a digest must satisfy both.
#[rstest]
#[case::digest_profile_governs_its_tag(
    json!([{"image": format!("{GPU_HOOK}@{DIGEST}"), "args": [["--version", "v1alpha3"]]}]),
    GPU_HOOK.to_owned(),
    &["sidecarProfiles[0]", "args[1] \"v1alpha2\" does not match \"v1alpha3\""]
)]
#[case::digest_of_unknown_tag_is_judged_as_every_tag(
    json!([{"image": format!("{REPO}:v1"), "args": [["--version", "v1alpha2"]]}, {"image": format!("{REPO}:v2"), "args": [["--version", "v1alpha3"]]}]),
    format!("{REPO}:v1@{DIGEST}"),
    &["so as tag \"v2\" too: sidecarProfiles[1]"]
)]
#[case::a_digest_pinned_to_a_tag_is_that_tag(
    json!([{"image": format!("{REPO}:v1@{DIGEST}"), "args": [["--version", "v1alpha3"]]}, {"image": format!("{REPO}:v2"), "args": [["--version", "v1alpha2"]]}]),
    format!("{REPO}:v2@{DIGEST}"),
    &["by the digest a profile names for tag \"v1\", so as that tag: sidecarProfiles[0]"]
)]
fn digests_are_judged_by_the_content_they_may_be(
    #[case] profiles: Value,
    #[case] image: String,
    #[case] fragments: &[&str],
) {
    let settings = json!({"allowedImages": [format!("{REPO}:*")], "sidecarProfiles": profiles});
    let verdict = evaluate(
        &request("vm", &image, &["--version", "v1alpha2"], APERTURE),
        &settings,
    );
    rejected_with(&verdict, fragments).unwrap_or_else(|e| panic!("{image}: {e}"));
}

/// An entry without image runs the shim: a shim given by digest is governed by its tag's profile.
#[test]
fn the_shim_by_digest_is_governed_by_its_tag_profile() {
    let shim = "quay.io/kubevirt/sidecar-shim:v1.4.0";
    let settings = json!({
        "allowedImages": ["quay.io/kubevirt/*"],
        "sidecarShimImage": format!("{shim}@{DIGEST}"),
        "sidecarProfiles": [{"image": shim, "args": [[]]}],
    });
    let mut request = fixture("vm-create");
    request["object"]["spec"]["template"]["metadata"]["annotations"][HOOKS] =
        json!(json!([{"args": ["--anything"]}]).to_string());
    let verdict = evaluate(&request, &settings);
    rejected_with(
        &verdict,
        &["sidecarProfiles[0] (image \"quay.io/kubevirt/sidecar-shim:v1.4.0\"): args [\"--anything\"] has 1 elements, not the 0 of []"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The Setting allows the repository by path (Harvester's usual form); the profile is the
/// policy's. Reproduced by the red team in context-aware mode.
struct Setting(&'static str);

impl Host for Setting {
    fn get_setting(&self, _name: &str) -> Result<Option<SettingObject>, String> {
        Ok(Some(SettingObject {
            default: None,
            value: Some(self.0.to_owned()),
        }))
    }

    fn get_config_map(&self, _: &str, _: &str, _: &str) -> Result<Option<ConfigMapKey>, String> {
        Err("this test reads no ConfigMap".to_owned())
    }
}

#[rstest]
#[case(format!("{GPU_HOOK}@{DIGEST}"))]
#[case(format!("{REPO}@{DIGEST}"))]
#[case(format!("{REPO}:latest@{DIGEST}"))]
fn a_digest_allowed_by_the_setting_is_governed_by_the_profile(#[case] image: String) {
    let settings = json!({
        "harvesterSetting": {"name": "whitelisted-sidecars"},
        "sidecarProfiles": [mmio_profile()],
    });
    let setting = Setting("registry.example.com/kubevirt-hooks/*");
    for kind in ["vm", "vmi", "pod"] {
        let bad = request(kind, &image, &["--free"], EXTRA_DRIVE);
        let verdict = validate_payload_with(&payload(&bad, &settings), &setting);
        rejected_with(&verdict, &["sidecarProfiles[0]", "-drive file=/dev/sda"])
            .unwrap_or_else(|e| panic!("{kind} {image}: {e}"));
        let good = request(kind, &image, &["--version", "v1alpha3"], APERTURE);
        let verdict = validate_payload_with(&payload(&good, &settings), &setting);
        assert!(verdict.violations.is_empty(), "{kind} {image}: {verdict:?}");
    }
}

fn vmi_status_update_with(value: &str, entries: usize) -> Value {
    let mut request = fixture("vmi-create");
    let map = &mut request["object"]["metadata"]["annotations"];
    map[HOOKS] = json!(
        serde_json::to_string(&vec![
            json!({"image": GPU_HOOK, "args": ["--version", "v1alpha3"]});
            entries
        ])
        .expect("JSON")
    );
    map[ARGS_KEY] = json!(value);
    request["operation"] = json!("UPDATE");
    request["oldObject"] = request["object"].clone();
    request["object"]["status"] = json!({"phase": "Running"});
    request
}

/// The denial-of-service cases: each value longer than `profileValueMaxBytes` is refused with
/// its length, unread (their cost: `make bench`).
#[test]
fn long_values_are_refused_by_their_length() {
    let settings = settings(&[GPU_HOOK]);
    // A running VMI's status write, 32 entries, a 250 KB value: unchanged, so accepted, and the
    // warning says why it would be refused now.
    let value = format!("{APERTURE}{}", "0".repeat(250_000));
    let verdict = evaluate(&vmi_status_update_with(&value, 32), &settings);
    assert!(verdict.violations.is_empty(), "{verdict:?}");
    assert_eq!(verdict.warnings.len(), 1, "{verdict:?}");
    let warning = &verdict.warnings[0];
    assert!(
        warning.contains("[0], [1], [2] and 29 more entries")
            && warning.contains(&format!(
                "annotation {ARGS_KEY:?} is {} bytes, more than profileValueMaxBytes (4096), so \
                 it is not matched",
                value.len()
            )),
        "{warning}"
    );
    // A VM CREATE with a 2.9 MB value.
    let huge = format!("{APERTURE}{}", "0".repeat(2_900_000));
    let verdict = evaluate(
        &request("vm", GPU_HOOK, &["--version", "v1alpha3"], &huge),
        &settings,
    );
    rejected_with(
        &verdict,
        &[&format!(
            "is {} bytes, more than profileValueMaxBytes (4096)",
            huge.len()
        )],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // An ordinary list pattern against 243 KB.
    let list = json!({"allowedImages": [GPU_HOOK], "sidecarProfiles": [
        {"image": GPU_HOOK, "annotations": {ARGS_KEY: "(?:[A-Za-z0-9_.=/-]+,?)*"}}
    ]});
    let items = "a=b,".repeat(243_000 / 4);
    let verdict = evaluate(&request("vm", GPU_HOOK, &[], &items), &list);
    rejected_with(
        &verdict,
        &["is 243000 bytes, more than profileValueMaxBytes (4096)"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Within a raised bound (64 KiB: the list pattern, 6 instructions, then fits the request's
    // budget), a 60 KB list is matched, and allowed.
    let mut raised = list.clone();
    raised["profileValueMaxBytes"] = json!(65_536);
    let shorter = "a=b,".repeat(60_000 / 4);
    assert_eq!(
        evaluate(&request("vm", GPU_HOOK, &[], &shorter), &raised),
        Verdict::default()
    );
    // A bound the pattern does not fit is refused with the settings.
    raised["profileValueMaxBytes"] = json!(262_144);
    let error = hook_sidecar_policy::parse_and_validate(&raised).expect_err("refused");
    assert!(error.contains("lower profileValueMaxBytes"), "{error}");
}

/// Issue 21, item 5: settings that skipped `validate_settings` (a host that does not call it).
#[rstest]
#[case::escapes_the_anchors_once_wrapped("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+)|(x")]
#[case::over_re2s_repeat_limit("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]{1,1001}")]
fn a_pattern_that_does_not_compile_alone_matches_nothing(#[case] pattern: &str) {
    let settings = json!({"allowedImages": [GPU_HOOK], "sidecarProfiles": [
        {"image": GPU_HOOK, "annotations": {ARGS_KEY: pattern}}
    ]});
    let verdict = evaluate(
        &request("vm", GPU_HOOK, &["--version", "v1alpha3"], EXTRA_DRIVE),
        &settings,
    );
    rejected_with(&verdict, &["-drive file=/dev/sda\" does not match"])
        .unwrap_or_else(|e| panic!("{e}"));
    // Nor what the pattern would match once repaired.
    let verdict = evaluate(
        &request("vm", GPU_HOOK, &["--version", "v1alpha3"], APERTURE),
        &settings,
    );
    rejected_with(&verdict, &["does not match"]).unwrap_or_else(|e| panic!("{e}"));
}
