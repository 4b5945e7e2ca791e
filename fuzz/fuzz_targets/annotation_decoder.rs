//! The strict annotation decoder on arbitrary text: never panics, and what it accepts is a JSON
//! array (or null) with one decoded entry per item, each key spelt exactly once.
#![no_main]

use hook_sidecar_policy::decode_annotation as decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(sidecars) = decode(text) else {
        return;
    };
    let value: serde_json::Value = serde_json::from_str(text).expect("accepted text is JSON");
    match value {
        serde_json::Value::Null => assert!(sidecars.is_empty()),
        serde_json::Value::Array(items) => {
            assert_eq!(items.len(), sidecars.len());
            for (item, sidecar) in items.iter().zip(&sidecars) {
                if let Some(image) = item.get("image").and_then(|i| i.as_str()) {
                    assert_eq!(sidecar.image.as_deref(), Some(image));
                }
            }
        }
        other => panic!("accepted a non-array: {other}"),
    }
});
