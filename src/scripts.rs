//! Approved hook scripts (`allowedScripts`): a `configMap` entry is allowed, without
//! `allowConfigMap`, when the ConfigMap it names is immutable and holds under its key exactly a
//! script whose SHA-256 the administrator listed.
//!
//! The digest is of the bytes the kubelet writes into the volume, so of what the sidecar-shim runs:
//! a `data` value as its UTF-8 bytes, a `binaryData` value base64-decoded (the API server's
//! encoding of `[]byte`). Nothing is normalized: a script that differs by one byte (CRLF line
//! ends, a trailing newline) is another script.
//!
//! The ConfigMap is read through the host ([`crate::host::Host::get_config_map`]) in the request's
//! namespace; only what the check reads is decoded ([`read_config_map`]), not k8s-openapi's
//! ConfigMap, which would bring its whole decoder into the module.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::annotation_maps::{AnnotationLocation, read_annotation_keys};
use crate::settings::AllowedScript;
use crate::sidecar::ConfigMapSource;

pub const CONFIG_MAP_API_VERSION: &str = "v1";
pub const CONFIG_MAP_KIND: &str = "ConfigMap";

/// A ConfigMap holds at most 1 MiB (the API server's limit): a longer value is no answer of the
/// API server, and is refused before it is decoded or hashed.
const SCRIPT_MAX_BYTES: usize = 1 << 20;

/// What the check reads of a ConfigMap for one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMapKey {
    /// `immutable: true`; absent or `null` is false.
    pub immutable: bool,
    /// `data[key]`, if there.
    pub data: Option<String>,
    /// `binaryData[key]` as the API server writes it (base64), if there.
    pub binary_data: Option<String>,
}

/// The fields asked of policy-server (`field_masks`, policy-evaluator 1.33+), sorted as the
/// SDK's `BTreeSet` would send them: only these reach the policy (policy-evaluator keeps
/// `metadata` whatever the mask). A mask is a dot-separated path without escaping, so a key with
/// a dot (`hook.sh`) cannot be named: then both maps come whole.
#[cfg(any(target_arch = "wasm32", test))]
pub fn field_masks(key: &str) -> [String; 3] {
    let (binary_data, data) = if key.contains('.') || key.is_empty() {
        ("binaryData".to_owned(), "data".to_owned())
    } else {
        (format!("binaryData.{key}"), format!("data.{key}"))
    };
    [binary_data, data, "immutable".to_owned()]
}

/// Where the values of a ConfigMap are.
const MAPS: [AnnotationLocation; 2] = [
    AnnotationLocation {
        path: &["data"],
        effective: true,
    },
    AnnotationLocation {
        path: &["binaryData"],
        effective: true,
    },
];

/// Reads `key` of the ConfigMap policy-server answered with (its JSON), with the reader of
/// annotation maps (`data` and `binaryData` are maps of strings too), and `immutable`. Anything
/// but the ConfigMap's shape (a value that is not a string, a key twice) is an error: the check
/// fails closed.
pub fn read_config_map(json: &[u8], key: &str) -> Result<ConfigMapKey, String> {
    /// The one other field read.
    #[derive(Deserialize)]
    struct Immutable {
        #[serde(default)]
        immutable: Option<bool>,
    }
    let read = || {
        let Immutable { immutable } = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let object: &RawValue = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let mut values = read_annotation_keys(object, &MAPS, &[key])?;
        Ok(ConfigMapKey {
            immutable: immutable.unwrap_or(false),
            binary_data: values.pop().flatten(),
            data: values.pop().flatten(),
        })
    };
    read().map_err(|e: String| format!("cannot read the ConfigMap: {e}"))
}

/// Why the script `source` names is not allowed, given what the lookup answered; `None` when it
/// is an approved script in an immutable ConfigMap. Every reason names the namespace, the
/// ConfigMap, the key and, once there are bytes, their digest.
pub fn script_violation(
    namespace: &str,
    source: &ConfigMapSource,
    answer: &Result<Option<ConfigMapKey>, String>,
    allowed: &[AllowedScript],
) -> Option<String> {
    let ConfigMapSource { name, key, .. } = source;
    let reason = script_reason(answer, allowed).err()?;
    Some(format!(
        "configMap {name:?} (namespace {namespace:?}), key {key:?}: {reason}"
    ))
}

/// [`script_violation`]'s reason, without the ConfigMap's name.
fn script_reason(
    answer: &Result<Option<ConfigMapKey>, String>,
    allowed: &[AllowedScript],
) -> Result<(), String> {
    let found = match answer {
        Err(e) => {
            return Err(format!(
                "cannot read the ConfigMap, so cannot tell whether it holds a script of \
                 allowedScripts: {e}"
            ));
        }
        Ok(None) => return Err("the ConfigMap does not exist".to_owned()),
        Ok(Some(found)) => found,
    };
    let decoded;
    let (field, bytes) = match (&found.data, &found.binary_data) {
        (Some(text), None) => ("data", text.as_bytes()),
        (None, Some(encoded)) => {
            decoded = decode_base64(encoded)
                .ok_or_else(|| format!("binaryData is not base64 {encoded:.40?}"))?;
            ("binaryData", decoded.as_slice())
        }
        (None, None) => return Err("no such key in data or binaryData".to_owned()),
        (Some(_), Some(_)) => return Err("the key is in both data and binaryData".to_owned()),
    };
    if bytes.len() > SCRIPT_MAX_BYTES {
        return Err(format!(
            "{field} holds {} bytes, more than a ConfigMap can hold ({SCRIPT_MAX_BYTES}): too \
             large to be a script",
            bytes.len()
        ));
    }
    let digest = sha256_hex(bytes);
    let listed = allowed.iter().any(|script| script.sha256 == digest);
    if listed && found.immutable {
        return Ok(());
    }
    let why = match (listed, found.immutable) {
        (true, _) => {
            "is in allowedScripts, but the ConfigMap is not immutable, so it could change under \
             a running VM: set immutable: true"
        }
        (false, true) => "is not in allowedScripts",
        (false, false) => "is not in allowedScripts, and the ConfigMap is not immutable",
    };
    Err(format!("the script in {field} (sha256 {digest}) {why}"))
}

/// The SHA-256 of `bytes` in lower-case hex, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(bytes);
    let hex: Vec<u8> = (digest.iter())
        .flat_map(|byte| [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]])
        .collect();
    String::from_utf8(hex).unwrap_or_default()
}

/// Decodes standard base64 with padding, as the API server writes `[]byte` (Go's
/// `base64.StdEncoding`); `None` for anything else. By hand: the `base64` crate's engine costs the
/// module some 4 KB, this a few hundred bytes (tests check it against the crate).
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(byte: u8) -> Option<u32> {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(value))
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut decoded = Vec::with_capacity(bytes.len() / 4 * 3);
    let last = bytes.len() / 4;
    for (index, quad) in bytes.chunks_exact(4).enumerate() {
        let padding = match quad {
            [_, _, b'=', b'='] if index + 1 == last => 2,
            [_, _, _, b'='] if index + 1 == last => 1,
            _ => 0,
        };
        let mut group = 0;
        for &byte in &quad[..4 - padding] {
            group = group << 6 | sextet(byte)?;
        }
        group <<= 6 * padding;
        // The bits beyond the last byte must be zero, as the crate (and Go's strict mode) wants.
        if group & ((1 << (8 * padding)) - 1) != 0 {
            return None;
        }
        decoded.extend_from_slice(&group.to_be_bytes()[1..4 - padding]);
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[test]
    fn digests_are_those_of_sha256sum() {
        // `printf '' | sha256sum` and `printf 'abc' | sha256sum`.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[rstest]
    #[case::plain("hook", &["binaryData.hook", "data.hook", "immutable"])]
    #[case::dotted("hook.sh", &["binaryData", "data", "immutable"])]
    #[case::empty("", &["binaryData", "data", "immutable"])]
    fn masks_name_the_key_when_they_can(#[case] key: &str, #[case] masks: &[&str]) {
        let found = field_masks(key);
        assert_eq!(found, masks);
        assert!(found.is_sorted(), "as a BTreeSet sends them");
    }

    #[rstest]
    #[case::data(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "annotations": {"k": "v"}}, "immutable": true, "data": {"other": "o", "k": "v"}}), Ok(ConfigMapKey { immutable: true, data: Some("v".into()), binary_data: None }))]
    #[case::binary(json!({"immutable": false, "binaryData": {"k": "AAE="}}), Ok(ConfigMapKey { immutable: false, data: None, binary_data: Some("AAE=".into()) }))]
    #[case::nulls(json!({"immutable": null, "data": null, "binaryData": {}}), Ok(ConfigMapKey::default()))]
    #[case::escaped_key(serde_json::from_str(r#"{"data": {"\u006b": "v"}}"#).expect("JSON"), Ok(ConfigMapKey { immutable: false, data: Some("v".into()), binary_data: None }))]
    #[case::not_a_string(json!({"data": {"k": 5}}), Err("cannot read data: \"k\" is 5, not a string"))]
    #[case::not_a_bool(json!({"immutable": "yes"}), Err("invalid type: string \"yes\", expected a boolean"))]
    fn reads_only_the_key(
        #[case] object: serde_json::Value,
        #[case] expected: Result<ConfigMapKey, &str>,
    ) {
        let text = serde_json::to_vec(&object).expect("JSON");
        match (read_config_map(&text, "k"), expected) {
            (Ok(found), Ok(expected)) => assert_eq!(found, expected),
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{fragment:?} not in {e}"),
            (found, expected) => panic!("{found:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn a_key_twice_is_refused() {
        let error = read_config_map(br#"{"data": {"k": "a", "k": "b"}}"#, "k").expect_err("twice");
        assert!(error.contains("appears twice"), "{error}");
    }

    proptest::proptest! {
        /// The hand-written decoder agrees with the `base64` crate on its encodings, and on
        /// whatever text: what one refuses, the other does.
        #[test]
        fn base64_as_the_crate_decodes_it(bytes: Vec<u8>, text in "[A-Za-z0-9+/=]{0,12}") {
            use base64::Engine as _;
            let engine = base64::engine::general_purpose::STANDARD;
            proptest::prop_assert_eq!(decode_base64(&engine.encode(&bytes)), Some(bytes));
            proptest::prop_assert_eq!(decode_base64(&text), engine.decode(&text).ok());
        }
    }
}
