//! The whole `validate` on arbitrary payloads, and on a VM request whose annotation is the input.
//! Never panics; an accepted annotation is one the decoder accepts and whose images are allowed.
#![no_main]

use hook_sidecar_policy::annotation::decode;
use hook_sidecar_policy::validation::validate_payload;
use libfuzzer_sys::fuzz_target;

const ALLOWED: &str = "registry.example.com/hooks/gpu:v1";

fuzz_target!(|data: &[u8]| {
    let _ = validate_payload(data);
    let Ok(annotation) = std::str::from_utf8(data) else {
        return;
    };
    let payload = serde_json::json!({
        "request": {
            "uid": "fuzz",
            "kind": {"group": "kubevirt.io", "version": "v1", "kind": "VirtualMachineInstance"},
            "operation": "CREATE",
            "object": {"metadata": {"annotations": {"hooks.kubevirt.io/hookSidecars": annotation}}},
        },
        "settings": {"allowedImages": [ALLOWED]},
    });
    let verdict = validate_payload(&serde_json::to_vec(&payload).expect("serializable"));
    if verdict.violations.is_empty() {
        let sidecars = decode(annotation).expect("an accepted annotation decodes");
        for sidecar in sidecars {
            assert!(sidecar.command.is_empty() && sidecar.config_map.is_none() && sidecar.pvc.is_none());
            let image = sidecar.explicit_image().expect("no sidecar-shim without sidecarShimImage");
            let image = hook_sidecar_policy::reference::ImageReference::parse(image).expect("valid");
            assert_eq!(image.to_string(), "registry.example.com/hooks/gpu:v1");
        }
    }
});
