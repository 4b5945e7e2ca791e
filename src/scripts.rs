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

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::launcher_pod::KeyIs;
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

/// The fields asked of policy-server (`field_masks`, policy-evaluator 1.33+): only these reach
/// the policy (policy-evaluator keeps `metadata` whatever the mask). A mask is a dot-separated
/// path without escaping, so a key with a dot (`hook.sh`) cannot be named: then both maps come
/// whole.
#[cfg(any(target_arch = "wasm32", test))]
pub fn field_masks(key: &str) -> std::collections::BTreeSet<String> {
    let (data, binary_data) = if key.contains('.') || key.is_empty() {
        ("data".to_owned(), "binaryData".to_owned())
    } else {
        (format!("data.{key}"), format!("binaryData.{key}"))
    };
    ["immutable".to_owned(), data, binary_data].into()
}

/// Reads `key` of the ConfigMap policy-server answered with (its JSON). Anything but the
/// ConfigMap's shape (a value that is not a string, a key twice) is an error: the check fails
/// closed.
pub fn read_config_map(json: &[u8], key: &str) -> Result<ConfigMapKey, String> {
    let text = std::str::from_utf8(json).map_err(|e| e.to_string())?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let found = ObjectSeed(key)
        .deserialize(&mut deserializer)
        .and_then(|found| deserializer.end().map(|()| found));
    found.map_err(|e| format!("cannot read the ConfigMap: {e}"))
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
    let object = format!("configMap {name:?} (namespace {namespace:?}), key {key:?}");
    let found = match answer {
        Err(e) => {
            return Some(format!(
                "{object}: cannot read the ConfigMap, so cannot tell whether it holds a script \
                 of allowedScripts: {e}"
            ));
        }
        Ok(None) => return Some(format!("{object}: the ConfigMap does not exist")),
        Ok(Some(found)) => found,
    };
    let (field, bytes) = match (&found.data, &found.binary_data) {
        (Some(text), None) => ("data", Cow::Borrowed(text.as_bytes())),
        (None, Some(encoded)) if encoded.len() / 4 * 3 > SCRIPT_MAX_BYTES => {
            return Some(too_large(&object, "binaryData", encoded.len() / 4 * 3));
        }
        (None, Some(encoded)) => {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Ok(bytes) => ("binaryData", Cow::Owned(bytes)),
                Err(e) => return Some(format!("{object}: binaryData is not base64: {e}")),
            }
        }
        (None, None) => return Some(format!("{object}: no such key in data or binaryData")),
        (Some(_), Some(_)) => {
            return Some(format!("{object}: the key is in both data and binaryData"));
        }
    };
    if bytes.len() > SCRIPT_MAX_BYTES {
        return Some(too_large(&object, field, bytes.len()));
    }
    let digest = sha256_hex(&bytes);
    let listed = allowed.iter().any(|script| script.sha256 == digest);
    match (listed, found.immutable) {
        (true, true) => None,
        (true, false) => Some(format!(
            "{object}: the script in {field} (sha256 {digest}) is in allowedScripts, but the \
             ConfigMap is not immutable, so it could change under a running VM: set \
             immutable: true"
        )),
        (false, immutable) => Some(format!(
            "{object}: the script in {field} (sha256 {digest}) is not in allowedScripts{}",
            if immutable {
                ""
            } else {
                ", and the ConfigMap is not immutable"
            }
        )),
    }
}

fn too_large(object: &str, field: &str, bytes: usize) -> String {
    format!(
        "{object}: {field} holds {bytes} bytes, more than a ConfigMap can hold \
         ({SCRIPT_MAX_BYTES}): too large to be a script"
    )
}

/// The SHA-256 of `bytes` in lower-case hex, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// The fields of a ConfigMap the check reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Field {
    Immutable,
    Data,
    BinaryData,
    #[serde(other)]
    Other,
}

/// Reads a ConfigMap object, keeping only `immutable` and the value of one key.
struct ObjectSeed<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ConfigMapKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ConfigMapKey, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ConfigMapKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a ConfigMap")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConfigMapKey, A::Error> {
        let mut found = ConfigMapKey::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Immutable => {
                    found.immutable = map.next_value::<Option<bool>>()?.unwrap_or(false);
                }
                Field::Data => found.data = map.next_value_seed(ValueOf(self.0))?,
                Field::BinaryData => found.binary_data = map.next_value_seed(ValueOf(self.0))?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// The string value of one key of a map (`data`, `binaryData`), which may be `null`.
struct ValueOf<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for ValueOf<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ValueOf<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut value = None;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.0))? {
            if !is_key {
                map.next_value::<IgnoredAny>()?;
            } else if value.is_some() {
                return Err(de::Error::custom(format!("the key {:?} twice", self.0)));
            } else {
                value = Some(map.next_value::<String>()?);
            }
        }
        Ok(value)
    }
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
        let found: Vec<String> = field_masks(key).into_iter().collect();
        assert_eq!(found, masks);
    }

    #[rstest]
    #[case::data(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "annotations": {"k": "v"}}, "immutable": true, "data": {"other": "o", "k": "v"}}), Ok(ConfigMapKey { immutable: true, data: Some("v".into()), binary_data: None }))]
    #[case::binary(json!({"immutable": false, "binaryData": {"k": "AAE="}}), Ok(ConfigMapKey { immutable: false, data: None, binary_data: Some("AAE=".into()) }))]
    #[case::nulls(json!({"immutable": null, "data": null, "binaryData": {}}), Ok(ConfigMapKey::default()))]
    #[case::escaped_key(serde_json::from_str(r#"{"data": {"\u006b": "v"}}"#).expect("JSON"), Ok(ConfigMapKey { immutable: false, data: Some("v".into()), binary_data: None }))]
    #[case::not_a_string(json!({"data": {"k": 5}}), Err("invalid type: integer `5`, expected a string"))]
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
        assert!(error.contains("the key \"k\" twice"), "{error}");
    }
}
