//! Strict decoding of the `hooks.kubevirt.io/hookSidecars` annotation.
//!
//! virt-controller decodes the annotation with Go's `encoding/json`, which matches keys
//! case-insensitively (folding `ſ` onto `s` and the Kelvin sign onto `k` as well), lets the last of
//! duplicate keys win and ignores unknown keys. A lenient decoder here could then check one image
//! while KubeVirt runs another (`{"image":"ok","Image":"evil"}`). So this decoder accepts only the
//! subset on which both agree: exact keys, each at most once, with the types Go expects.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The annotation's key, as virt-controller reads it.
pub const HOOK_SIDECARS_ANNOTATION: &str = "hooks.kubevirt.io/hookSidecars";

/// The keys of a sidecar entry, the only ones KubeVirt reads, in the order `visit_map` matches.
pub const SIDECAR_KEYS: [&str; 6] = [
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "configMap",
    "pvc",
];

const PULL_POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];

/// One decoded sidecar entry. Empty values mean what they mean to KubeVirt: no image is the
/// sidecar-shim, an empty `command`, `configMap` or `pvc` is not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookSidecar {
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub config_map: Option<ConfigMapSource>,
    pub pvc: Option<PvcSource>,
}

impl HookSidecar {
    /// The image as written, or `None` when KubeVirt substitutes its sidecar-shim.
    pub fn explicit_image(&self) -> Option<&str> {
        self.image.as_deref().filter(|image| !image.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMapSource {
    pub name: String,
    pub key: String,
    pub hook_path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PvcSource {
    pub name: String,
    pub volume_path: String,
    pub shared_compute_path: String,
}

/// Decodes the annotation's value. `[]` and `null` mean no sidecars.
pub fn decode(value: &str) -> Result<Vec<HookSidecar>, String> {
    if value.trim().is_empty() {
        return Err("the value is empty; KubeVirt cannot decode it".to_owned());
    }
    let mut deserializer = serde_json::Deserializer::from_str(value);
    let sidecars = SidecarList
        .deserialize(&mut deserializer)
        .and_then(|list| deserializer.end().map(|()| list))
        .map_err(|e| format!("not a valid hook sidecar list: {e}"))?;
    Ok(sidecars)
}

/// Go's `encoding/json` key folding, for the keys of this annotation (all ASCII).
fn go_folds_onto(key: &str, known: &str) -> bool {
    let folded = key.chars().map(|c| match c {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    folded.eq(known.chars().map(|c| c.to_ascii_lowercase()))
}

/// Reads the keys of one JSON object strictly: each key must be exactly one of `known`, once.
/// `on_field` decodes the value of the known key with the given index.
fn read_strict_object<'de, A, F>(
    mut map: A,
    object: &str,
    known: &[&'static str],
    mut on_field: F,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(usize, &mut A) -> Result<(), A::Error>,
{
    let mut seen = vec![false; known.len()];
    while let Some(key) = map.next_key::<String>()? {
        let Some(index) = known.iter().position(|k| *k == key) else {
            return Err(de::Error::custom(unknown_key_message(object, &key, known)));
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(de::Error::custom(format!(
                "{object} has the key {key:?} twice (KubeVirt would use the last one)"
            )));
        }
        on_field(index, &mut map)?;
    }
    Ok(())
}

fn unknown_key_message(object: &str, key: &str, known: &[&str]) -> String {
    match known.iter().find(|k| go_folds_onto(key, k)) {
        Some(target) => format!(
            "{object} has the key {key:?}, which KubeVirt's decoder reads as {target:?}; \
             write it exactly as {target:?}"
        ),
        None => format!(
            "{object} has the unknown key {key:?} (known keys: {})",
            known.join(", ")
        ),
    }
}

/// The top level: `null` or an array whose items are objects or `null`.
struct SidecarList;

impl<'de> DeserializeSeed<'de> for SidecarList {
    type Value = Vec<HookSidecar>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SidecarList {
    type Value = Vec<HookSidecar>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of hook sidecar objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut sidecars = Vec::new();
        loop {
            let index = sidecars.len();
            match seq.next_element_seed(EntrySeed { index })? {
                Some(sidecar) => sidecars.push(sidecar),
                None => return Ok(sidecars),
            }
        }
    }
}

/// One array item: an object, or `null` (an empty entry, which means the sidecar-shim).
struct EntrySeed {
    index: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = HookSidecar;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = HookSidecar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "entry {} to be a hook sidecar object", self.index)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(HookSidecar::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let object = format!("entry {}", self.index);
        let mut sidecar = HookSidecar::default();
        read_strict_object(map, &object, &SIDECAR_KEYS, |field, map| {
            match field {
                0 => sidecar.image = map.next_value()?,
                1 => sidecar.image_pull_policy = read_pull_policy(map, &object)?,
                2 => sidecar.command = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default(),
                3 => sidecar.args = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default(),
                4 => {
                    let object = format!("{object}.configMap");
                    sidecar.config_map = map.next_value_seed(NestedSeed::new(object))?;
                }
                _ => {
                    let object = format!("{object}.pvc");
                    sidecar.pvc = map.next_value_seed(NestedSeed::new(object))?;
                }
            }
            Ok(())
        })?;
        Ok(sidecar)
    }
}

fn read_pull_policy<'de, A: MapAccess<'de>>(
    map: &mut A,
    object: &str,
) -> Result<Option<String>, A::Error> {
    let policy: Option<String> = map.next_value()?;
    match policy {
        Some(p) if !PULL_POLICIES.contains(&p.as_str()) => Err(de::Error::custom(format!(
            "{object} has imagePullPolicy {p:?}; it must be one of {}",
            PULL_POLICIES.join(", ")
        ))),
        policy => Ok(policy),
    }
}

/// Reads a string field the way Go does for a `string`: `null` leaves it empty.
fn read_string<'de, A: MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
    Ok(map.next_value::<Option<String>>()?.unwrap_or_default())
}

/// The nested objects of an entry (`configMap`, `pvc`): three string fields each.
trait StringFields: Default + PartialEq {
    const KEYS: [&'static str; 3];
    fn set(&mut self, field: usize, value: String);
}

impl StringFields for ConfigMapSource {
    const KEYS: [&'static str; 3] = ["name", "key", "hookPath"];

    fn set(&mut self, field: usize, value: String) {
        match field {
            0 => self.name = value,
            1 => self.key = value,
            _ => self.hook_path = value,
        }
    }
}

impl StringFields for PvcSource {
    const KEYS: [&'static str; 3] = ["name", "volumePath", "sharedComputePath"];

    fn set(&mut self, field: usize, value: String) {
        match field {
            0 => self.name = value,
            1 => self.volume_path = value,
            _ => self.shared_compute_path = value,
        }
    }
}

/// Reads `null` or a strict object of `T`'s keys; an all-empty object counts as absent.
struct NestedSeed<T> {
    object: String,
    _fields: PhantomData<T>,
}

impl<T> NestedSeed<T> {
    fn new(object: String) -> Self {
        Self {
            object,
            _fields: PhantomData,
        }
    }
}

impl<'de, T: StringFields> DeserializeSeed<'de> for NestedSeed<T> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: StringFields> Visitor<'de> for NestedSeed<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} to be an object", self.object)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut source = T::default();
        read_strict_object(map, &self.object, &T::KEYS, |field, map| {
            source.set(field, read_string(map)?);
            Ok(())
        })?;
        Ok((source != T::default()).then_some(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn image_of(value: &str) -> Option<String> {
        let sidecars = decode(value).expect("decodes");
        assert_eq!(sidecars.len(), 1);
        sidecars[0].image.clone()
    }

    #[rstest]
    #[case("[]", 0)]
    #[case("null", 0)]
    #[case(" \n[ ]\t", 0)]
    #[case("[null]", 1)]
    #[case("[{}, {\"image\": \"a\"}]", 2)]
    fn accepts_lists(#[case] value: &str, #[case] len: usize) {
        assert_eq!(decode(value).expect("decodes").len(), len);
    }

    #[test]
    fn decodes_every_field() {
        let value = r#"[{"image":"registry:5000/hook:v1","imagePullPolicy":"IfNotPresent",
            "command":["/hook"],"args":["--version","v1alpha2"],
            "configMap":{"name":"cm","key":"k","hookPath":"/usr/bin/onDefineDomain"},
            "pvc":{"name":"data","volumePath":"/data","sharedComputePath":"/shared"}}]"#;
        let sidecar = &decode(value).expect("decodes")[0];
        assert_eq!(sidecar.explicit_image(), Some("registry:5000/hook:v1"));
        assert_eq!(sidecar.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(sidecar.command, ["/hook"]);
        assert_eq!(sidecar.args, ["--version", "v1alpha2"]);
        let cm = sidecar.config_map.as_ref().expect("configMap");
        assert_eq!(
            (cm.name.as_str(), cm.key.as_str(), cm.hook_path.as_str()),
            ("cm", "k", "/usr/bin/onDefineDomain")
        );
        let pvc = sidecar.pvc.as_ref().expect("pvc");
        assert_eq!(pvc.shared_compute_path, "/shared");
    }

    #[rstest]
    #[case(r#"[{"image":null}]"#)]
    #[case(r#"[{"image":""}]"#)]
    #[case(r#"[{}]"#)]
    #[case(r#"[null]"#)]
    fn missing_image_means_the_shim(#[case] value: &str) {
        let sidecars = decode(value).expect("decodes");
        assert_eq!(sidecars[0].explicit_image(), None);
    }

    #[rstest]
    #[case(r#"[{"command":null,"configMap":null,"pvc":null}]"#)]
    #[case(r#"[{"command":[],"configMap":{},"pvc":{}}]"#)]
    #[case(r#"[{"configMap":{"name":""},"pvc":{"sharedComputePath":null}}]"#)]
    fn empty_fields_count_as_absent(#[case] value: &str) {
        let sidecar = &decode(value).expect("decodes")[0];
        assert!(
            sidecar.command.is_empty() && sidecar.config_map.is_none() && sidecar.pvc.is_none()
        );
    }

    #[test]
    fn escaped_keys_are_the_keys_they_spell() {
        // Go unescapes before matching too: this is `image`.
        assert_eq!(image_of(r#"[{"\u0069mage":"a"}]"#).as_deref(), Some("a"));
        assert!(decode(r#"[{"image":"ok","\u0069mage":"evil"}]"#).is_err());
    }

    #[rstest]
    #[case("", "empty")]
    #[case("   ", "empty")]
    #[case("[", "not a valid hook sidecar list")]
    #[case("{}", "expected a JSON array")]
    #[case(r#""[]""#, "expected a JSON array")]
    #[case("5", "expected a JSON array")]
    #[case(r#"["img"]"#, "entry 0 to be a hook sidecar object")]
    #[case(r#"[{}, 5]"#, "entry 1 to be a hook sidecar object")]
    #[case(r#"[[]]"#, "entry 0 to be a hook sidecar object")]
    #[case(r#"[] []"#, "trailing characters")]
    #[case(r#"[{"image":5}]"#, "invalid type: integer")]
    #[case(r#"[{"args":"x"}]"#, "invalid type: string")]
    #[case(r#"[{"args":[null]}]"#, "invalid type: null")]
    #[case(r#"[{"command":"/bin/sh"}]"#, "invalid type: string")]
    #[case(r#"[{"configMap":"cm"}]"#, "entry 0.configMap to be an object")]
    #[case(r#"[{"pvc":[]}]"#, "entry 0.pvc to be an object")]
    #[case(r#"[{"image":"a","image":"b"}]"#, "has the key \"image\" twice")]
    #[case(r#"[{"image":"ok","Image":"evil"}]"#, "reads as \"image\"")]
    #[case(r#"[{"IMAGE":"evil"}]"#, "reads as \"image\"")]
    #[case("[{\"imagePullPoliſy\":\"Always\"}]", "unknown key")]
    #[case("[{\"ima\u{212A}e\":\"x\"}]", "unknown key")]
    #[case("[{\"argſ\":[]}]", "reads as \"args\"")]
    #[case("[{\"pvc\":{\"\u{212A}ey\":\"x\"}}]", "unknown key")]
    #[case("[{\"configMap\":{\"\u{212A}ey\":\"x\"}}]", "reads as \"key\"")]
    #[case(r#"[{"configMap":{"hookpath":"/x"}}]"#, "reads as \"hookPath\"")]
    #[case(
        r#"[{"pvc":{"SharedComputePath":"/x"}}]"#,
        "reads as \"sharedComputePath\""
    )]
    #[case(r#"[{"downwardAPI":["pod-info"]}]"#, "unknown key \"downwardAPI\"")]
    #[case(
        r#"[{"imagePullPolicy":"Sometimes"}]"#,
        "must be one of Always, IfNotPresent, Never"
    )]
    #[case(r#"[{"imagePullPolicy":""}]"#, "must be one of")]
    #[case(r#"[{"imagePullPolicy":"always"}]"#, "must be one of")]
    #[case(
        r#"[{"pvc":{"name":"a","name":"b"}}]"#,
        "entry 0.pvc has the key \"name\" twice"
    )]
    fn rejects(#[case] value: &str, #[case] message: &str) {
        let error = decode(value).expect_err("must be rejected");
        assert!(error.contains(message), "{value}: {error}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let value = format!(
            r#"[{{"x":{}{}}}]"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(decode(&value).is_err());
    }

    #[test]
    fn go_folding_matches_the_two_special_runes() {
        assert!(go_folds_onto("ſ", "s"));
        assert!(go_folds_onto("\u{212A}", "k"));
        assert!(go_folds_onto("IMAGEPULLPOLICY", "imagePullPolicy"));
        assert!(!go_folds_onto("images", "image"));
    }
}
