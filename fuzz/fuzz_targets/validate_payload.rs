//! The whole `validate` on arbitrary payloads, arbitrary bytes as settings, and VMI requests whose
//! annotations are the input, without and with a sidecar profile. Never panics; an accepted
//! annotation is one the decoder accepts, whose images are allowed and whose profile holds.
#![no_main]

use hook_sidecar_policy::ImageReference;
use hook_sidecar_policy::decode_annotation as decode;
use hook_sidecar_policy::parse_and_validate_slice;
use hook_sidecar_policy::validate_payload;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const ALLOWED: &str = "registry.example.com/hooks/gpu:v1";
const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";

fn vmi_request(annotations: Value, settings: Value) -> Vec<u8> {
    let payload = json!({
        "request": {
            "uid": "fuzz",
            "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
            "operation": "CREATE",
            "object": {"metadata": {"annotations": annotations}},
        },
        "settings": settings,
    });
    serde_json::to_vec(&payload).expect("serializable")
}

/// An accepted annotation: decodes, and runs only the allowed image, without escape hatch.
fn assert_only_allowed(annotation: &str) -> Vec<hook_sidecar_policy::HookSidecar> {
    let sidecars = decode(annotation).expect("an accepted annotation decodes");
    for sidecar in &sidecars {
        assert!(
            sidecar.command.is_empty() && sidecar.config_map.is_none() && sidecar.pvc.is_none()
        );
        let image = sidecar
            .explicit_image()
            .expect("no sidecar-shim without sidecarShimImage");
        let image = ImageReference::parse(image).expect("valid");
        assert_eq!(image.to_string(), ALLOWED);
    }
    sidecars
}

fuzz_target!(|data: &[u8]| {
    let _ = validate_payload(data);
    // Settings as validate_settings receives them: profiles of any shape are refused or read.
    let _ = parse_and_validate_slice(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let plain = json!({"allowedImages": [ALLOWED]});
    let annotations = json!({"hooks.kubevirt.io/hookSidecars": text});
    if validate_payload(&vmi_request(annotations, plain))
        .violations
        .is_empty()
    {
        assert_only_allowed(text);
    }

    // With a profile: the input up to the first newline is the sidecar annotation, the rest the
    // annotation the profile constrains.
    let (annotation, constrained) = text.split_once('\n').unwrap_or((text, ""));
    let settings = json!({
        "allowedImages": [ALLOWED],
        "sidecarProfiles": [{
            "image": ALLOWED,
            "args": [["--version", "v1alpha3"], []],
            "annotations": {ARGS_KEY: "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"},
        }],
    });
    let annotations = json!({"hooks.kubevirt.io/hookSidecars": annotation, ARGS_KEY: constrained});
    if validate_payload(&vmi_request(annotations, settings))
        .violations
        .is_empty()
    {
        let sidecars = assert_only_allowed(annotation);
        for sidecar in &sidecars {
            assert!(sidecar.args.is_empty() || sidecar.args == ["--version", "v1alpha3"]);
        }
        if !sidecars.is_empty() {
            let value = constrained
                .strip_prefix("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=")
                .expect("the constrained annotation matches its pattern");
            assert!(!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()));
        }
    }
});
