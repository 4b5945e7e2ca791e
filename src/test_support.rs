//! What the tests of the request path share: the fixtures of `test_data/`, and a request
//! evaluated through the whole `validate` payload.

use serde_json::{Value, json};

use crate::annotation::HOOK_SIDECARS_ANNOTATION;
use crate::payload::{GroupVersionKind, annotation_locations};
use crate::settings::Settings;
use crate::validation::validate_payload;
use crate::verdict::{Verdict, summary};

/// A bare AdmissionRequest of `test_data/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The verdict on `request` under `settings`, through the whole `validate` payload.
pub fn evaluate(request: &Value, settings: &Value) -> Verdict {
    let payload = json!({ "request": request, "settings": settings });
    validate_payload(&serde_json::to_vec(&payload).expect("serializable"))
}

/// A rejection whose message holds every fragment.
pub fn assert_rejected(verdict: &Verdict, fragments: &[&str]) {
    assert!(
        !verdict.violations.is_empty(),
        "expected a rejection, got {verdict:?}"
    );
    let message = summary(&verdict.violations);
    for fragment in fragments {
        assert!(message.contains(fragment), "{fragment:?} not in: {message}");
    }
}

pub const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";

pub const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.4.0";

pub fn gpu_settings() -> Value {
    json!({ "allowedImages": [GPU_HOOK] })
}

/// Puts `value` as the annotation at the kind's first (effective) location.
pub fn with_annotation(mut request: Value, value: &str) -> Value {
    let kind: GroupVersionKind = serde_json::from_value(request["kind"].clone()).expect("kind");
    let location = annotation_locations(&kind).expect("a checked kind")[0];
    let pointer = format!("/object/{}", location.path.join("/"));
    let annotations = request.pointer_mut(&pointer).expect("annotations map");
    annotations[HOOK_SIDECARS_ANNOTATION] = Value::String(value.to_owned());
    request
}

pub fn vm_with(value: &str) -> Value {
    with_annotation(fixture("vm-create"), value)
}

pub const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";

pub const MMIO: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+";

pub const APERTURE: &str = "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536";

/// The README's profile: the hook's args pinned, its QEMU arguments limited to the aperture.
pub fn mmio_profile() -> Value {
    json!({"image": GPU_HOOK, "args": [["--version", "v1alpha3"]], "annotations": {ARGS_KEY: MMIO}})
}

pub fn profile_settings(profiles: Value, extra: Value) -> Value {
    let mut settings = json!({"allowedImages": [GPU_HOOK, SHIM], "sidecarShimImage": SHIM, "sidecarProfiles": profiles});
    if let Value::Object(extra) = extra {
        settings.as_object_mut().expect("object").extend(extra);
    }
    settings
}

/// Sets (or, with `None`, removes) annotations beside the sidecar annotation.
pub fn set_annotations(mut request: Value, annotations: &[(&str, Option<&str>)]) -> Value {
    let kind: GroupVersionKind = serde_json::from_value(request["kind"].clone()).expect("kind");
    let location = annotation_locations(&kind).expect("a checked kind")[0];
    let pointer = format!("/object/{}", location.path.join("/"));
    let map = request
        .pointer_mut(&pointer)
        .and_then(Value::as_object_mut)
        .expect("annotations map");
    for (key, value) in annotations {
        match value {
            Some(value) => map.insert((*key).to_owned(), json!(value)),
            None => map.remove(*key),
        };
    }
    request
}

pub fn gpu_vm(sidecars: Value, aperture: Option<&str>) -> Value {
    set_annotations(vm_with(&sidecars.to_string()), &[(ARGS_KEY, aperture)])
}

pub fn gpu_sidecar() -> Value {
    json!([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}])
}

/// The message rejecting a VM whose template annotation is `sidecars`.
pub fn message_of(sidecars: &str, settings: &Value) -> String {
    let verdict = evaluate(&vm_with(sidecars), settings);
    verdict.into_response().message.expect("rejected")
}

/// `settings` decoded as the request path decodes them. [`Settings`] borrows its entries from the
/// text it is read from; a test's text is kept for the rest of the test process.
pub fn decoded_settings(settings: &Value) -> Settings<'static> {
    let text: &'static str = Box::leak(settings.to_string().into_boxed_str());
    crate::settings::decode_slice(text.as_bytes()).expect("settings")
}
