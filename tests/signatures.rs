//! `signatures` natively, through the whole `validate` payload, with a fake host that records
//! every `oci/v2/verify` request and answers from a table: which requests verify (the image as
//! the policy normalized it, each requirement's request as the SDK makes it), how often (once per
//! image and check in a request; never without sidecars, for an image no requirement governs, or
//! for an UPDATE that leaves the sidecars as they were), and what the rejection says. At the VM
//! and again at its launcher Pod. Real signatures in a real registry, through the wasm module and
//! the in-repo host's `oci/v2/verify`: policy-host/tests/signatures.rs.

use std::cell::RefCell;

use hook_sidecar_policy::{ConfigMapKey, Host, SettingObject, Verified};
use hook_sidecar_policy::{Verdict, summary, validate_payload_with};
use rstest::rstest;
use serde_json::{Value, json};

const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
const SIDECARS: &str = "hooks.kubevirt.io/hookSidecars";
const KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
    MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU3tq7eCgHmlKG1aoyPoSXcR3RmUj\n\
    hn2SBz7nHgy7zKzRrOiH3Z/+g5YjpAWOPJYCxVD4XJ1b5rnlMAJA7o/9WA==\n\
    -----END PUBLIC KEY-----\n";

/// Answers every verification with `answer`, and records the requests.
struct Registry {
    answer: Result<Verified, String>,
    requests: RefCell<Vec<Value>>,
}

impl Host for Registry {
    fn get_setting(&self, _: &str) -> Result<Option<SettingObject>, String> {
        Err("no Setting in these tests".to_owned())
    }

    fn get_config_map(&self, _: &str, _: &str, _: &str) -> Result<Option<ConfigMapKey>, String> {
        Err("no ConfigMap in these tests".to_owned())
    }

    fn verify_signature(&self, request: &Value) -> Result<Verified, String> {
        self.requests.borrow_mut().push(request.clone());
        self.answer.clone()
    }
}

fn trusted() -> Registry {
    registry(Ok(Verified {
        trusted: true,
        digest: format!("sha256:{}", "a".repeat(64)),
    }))
}

fn registry(answer: Result<Verified, String>) -> Registry {
    Registry {
        answer,
        requests: RefCell::new(Vec::new()),
    }
}

fn settings(signatures: Value) -> Value {
    json!({
        "allowedImages": [GPU_HOOK, "registry.example.com/unsigned/*"],
        "signatures": signatures,
    })
}

fn by_key() -> Value {
    json!([{"image": "registry.example.com/kubevirt-hooks/*", "pubKeys": [KEY]}])
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

fn evaluate(request: &Value, settings: &Value, host: &Registry) -> Verdict {
    let payload = json!({"request": request, "settings": settings});
    validate_payload_with(&serde_json::to_vec(&payload).expect("JSON"), host)
}

fn vm_with_images(images: &[&str]) -> Value {
    let entries: Vec<Value> = (images.iter())
        .map(|image| json!({"image": image, "args": ["--version", "v1alpha3"]}))
        .collect();
    let mut vm = fixture("vm-create");
    vm["object"]["spec"]["template"]["metadata"]["annotations"][SIDECARS] =
        json!(json!(entries).to_string());
    vm
}

#[rstest]
#[case::vm(vm_with_images(&[GPU_HOOK]))]
#[case::launcher_pod(fixture("launcher-pod-create-gpu-hook"))]
fn a_governed_image_is_verified_once_as_the_sdk_asks(#[case] request: Value) {
    let host = trusted();
    assert_eq!(
        evaluate(&request, &settings(by_key()), &host),
        Verdict::default()
    );
    assert_eq!(
        *host.requests.borrow(),
        [
            json!({"type": "SigstorePubKeyVerify", "image": GPU_HOOK, "pub_keys": [KEY],
            "annotations": null})
        ]
    );
}

#[rstest]
#[case::not_trusted(Ok(Verified { trusted: false, digest: String::new() }), "signatures[0] (pubKeys): the host does not trust its signatures")]
#[case::host_error(Err("error invoking host capability oci.verify: no signatures found".into()), "signatures[0] (pubKeys): not verified: error invoking host capability oci.verify: no signatures found")]
fn an_image_not_verified_is_refused_at_the_vm_and_its_pod(
    #[case] answer: Result<Verified, String>,
    #[case] reason: &str,
) {
    for request in [
        vm_with_images(&[GPU_HOOK]),
        fixture("launcher-pod-create-gpu-hook"),
    ] {
        let host = registry(answer.clone());
        let verdict = evaluate(&request, &settings(by_key()), &host);
        let message = summary(&verdict.violations);
        let expected = format!("image \"{GPU_HOOK}\" ({GPU_HOOK}): {reason}");
        assert!(message.contains(&expected), "{expected:?} not in {message}");
        assert_eq!(host.requests.borrow().len(), 1);
    }
}

#[test]
fn only_governed_images_are_verified() {
    // The unsigned repository is allowed, and no requirement governs it: no host call.
    let host = trusted();
    let vm = vm_with_images(&["registry.example.com/unsigned/hook:v1"]);
    assert_eq!(
        evaluate(&vm, &settings(by_key()), &host),
        Verdict::default()
    );
    assert!(host.requests.borrow().is_empty());
    // Without sidecars, nothing is verified either.
    let none = fixture("vm-create-no-sidecar");
    assert_eq!(
        evaluate(&none, &settings(by_key()), &host),
        Verdict::default()
    );
    assert!(host.requests.borrow().is_empty());
}

#[test]
fn one_image_twice_is_verified_once_and_a_digest_does_not_escape() {
    let digest = format!(
        "registry.example.com/kubevirt-hooks/qemu-commandline@sha256:{}",
        "b".repeat(64)
    );
    let host = trusted();
    let mut allowed = settings(json!([{"image": GPU_HOOK, "pubKeys": [KEY]}]));
    allowed["allowedImages"] = json!(["registry.example.com/kubevirt-hooks/*"]);
    let vm = vm_with_images(&[GPU_HOOK, GPU_HOOK, &digest]);
    assert_eq!(evaluate(&vm, &allowed, &host), Verdict::default());
    let images: Vec<Value> = (host.requests.borrow().iter())
        .map(|request| request["image"].clone())
        .collect();
    // The requirement names a tag; a digest of that repository may be that tag's content.
    assert_eq!(images, [json!(GPU_HOOK), json!(digest)]);
}

#[test]
fn every_governing_requirement_and_certificate_is_asked() {
    let certificate = KEY.replace("PUBLIC KEY", "CERTIFICATE");
    let requirements = json!([
        {"image": "registry.example.com/kubevirt-hooks/*", "pubKeys": [KEY]},
        {"image": GPU_HOOK, "certificates": [certificate, certificate], "requireRekorBundle": true},
        {"image": "registry.example.com/other/*", "pubKeys": [KEY]},
    ]);
    let host = registry(Err("unreachable".into()));
    let verdict = evaluate(&vm_with_images(&[GPU_HOOK]), &settings(requirements), &host);
    let message = summary(&verdict.violations);
    for reason in [
        "signatures[0] (pubKeys): not verified: unreachable",
        "signatures[1] (certificates[0]): not verified: unreachable",
        "signatures[1] (certificates[1]): not verified: unreachable",
    ] {
        assert!(message.contains(reason), "{reason:?} not in {message}");
    }
    assert!(!message.contains("signatures[2]"), "{message}");
    let kinds: Vec<Value> = (host.requests.borrow().iter())
        .map(|request| request["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "SigstorePubKeyVerify",
            "SigstoreCertificateVerify",
            "SigstoreCertificateVerify"
        ]
    );
}

/// The shim (an entry without image) is verified as the image KubeVirt runs for it.
#[test]
fn the_shim_is_verified_as_its_image() {
    let shim = "quay.io/kubevirt/sidecar-shim:v1.7.0";
    let host = registry(Err("no signatures found".into()));
    let settings = json!({
        "allowedImages": [shim],
        "sidecarShimImage": shim,
        "allowConfigMap": true,
        "signatures": [{"image": "quay.io/kubevirt/sidecar-shim:*", "pubKeys": [KEY]}],
    });
    let mut vm = fixture("vm-create");
    vm["object"]["spec"]["template"]["metadata"]["annotations"][SIDECARS] = json!(
        json!([{"args": ["--version", "v1alpha3"],
            "configMap": {"name": "hooks", "key": "k", "hookPath": "/usr/bin/onDefineDomain"}}])
        .to_string()
    );
    let verdict = evaluate(&vm, &settings, &host);
    assert!(
        summary(&verdict.violations).contains(&format!(
            "no image (KubeVirt's sidecar-shim) ({shim}): signatures[0] (pubKeys): not verified"
        )),
        "{verdict:?}"
    );
    assert_eq!(host.requests.borrow()[0]["image"], json!(shim));
}

/// An UPDATE that leaves the sidecars as they were verifies nothing (a VMI's status update):
/// the host here would refuse, and is not asked.
#[rstest]
#[case::vm("vm-update-unchanged")]
#[case::launcher_pod("launcher-pod-update-unchanged")]
fn an_unchanged_update_verifies_nothing(#[case] name: &str) {
    let mut update = fixture(name);
    if name == "vm-update-unchanged" {
        let sidecars =
            vm_with_images(&[GPU_HOOK])["object"]["spec"]["template"]["metadata"]["annotations"]
                [SIDECARS]
                .clone();
        for object in ["object", "oldObject"] {
            update[object]["spec"]["template"]["metadata"]["annotations"][SIDECARS] =
                sidecars.clone();
        }
    }
    let host = registry(Err("would refuse".into()));
    assert_eq!(
        evaluate(&update, &settings(by_key()), &host),
        Verdict::default()
    );
    assert!(host.requests.borrow().is_empty());
}

#[test]
fn malformed_requirements_are_refused_with_the_settings() {
    let refused = hook_sidecar_policy::parse_and_validate(&settings(json!([
        {"image": GPU_HOOK, "pubKeys": ["not a key"]},
        {"image": GPU_HOOK},
    ])))
    .expect_err("refused");
    assert!(
        refused.contains("signatures[0].pubKeys[0] \"not a key\": not a PEM PUBLIC KEY"),
        "{refused}"
    );
    assert!(
        refused.contains("signatures[1] (image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\"): needs exactly one of"),
        "{refused}"
    );
}
