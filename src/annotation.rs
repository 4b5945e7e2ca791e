//! Strict decoding of the `hooks.kubevirt.io/hookSidecars` annotation.
//!
//! virt-controller decodes the annotation with Go's `encoding/json`, which matches keys
//! case-insensitively (folding `ſ` onto `s` and the Kelvin sign onto `k` as well), lets the last of
//! duplicate keys win and ignores unknown keys. A lenient decoder here could then check one image
//! while KubeVirt runs another (`{"image":"ok","Image":"evil"}`). So this decoder accepts only the
//! subset on which both agree: exact keys, each at most once, with the types Go expects.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::sidecar::{ConfigMapSource, HookSidecar, PvcSource};
use crate::text;

/// The annotation's key, as virt-controller reads it.
pub const HOOK_SIDECARS_ANNOTATION: &str = "hooks.kubevirt.io/hookSidecars";

/// The keys of one JSON object this decoder reads, as an enum: every key is matched exhaustively,
/// so a key added to KubeVirt's API has to be added here, with its own arm, before it decodes.
trait ObjectKey: Copy + PartialEq + 'static {
    /// Every key, each with the exact spelling KubeVirt's JSON tags give it.
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
}

/// The keys of a sidecar entry: the only ones KubeVirt reads (`HookSidecar` in pkg/hooks/hooks.go,
/// v1.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarKey {
    Image,
    ImagePullPolicy,
    Command,
    Args,
    ConfigMap,
    Pvc,
}

impl ObjectKey for SidecarKey {
    const ALL: &'static [Self] = &[
        Self::Image,
        Self::ImagePullPolicy,
        Self::Command,
        Self::Args,
        Self::ConfigMap,
        Self::Pvc,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::ImagePullPolicy => "imagePullPolicy",
            Self::Command => "command",
            Self::Args => "args",
            Self::ConfigMap => "configMap",
            Self::Pvc => "pvc",
        }
    }
}

impl SidecarKey {
    /// The JSON names of every sidecar key, for tests and generators.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|key| key.name())
    }
}

/// The keys of `configMap` (`ConfigMap` in pkg/hooks/hooks.go, v1.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigMapKey {
    Name,
    Key,
    HookPath,
}

impl ObjectKey for ConfigMapKey {
    const ALL: &'static [Self] = &[Self::Name, Self::Key, Self::HookPath];

    fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Key => "key",
            Self::HookPath => "hookPath",
        }
    }
}

/// The keys of `pvc` (`PVC` in pkg/hooks/hooks.go, v1.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PvcKey {
    Name,
    VolumePath,
    SharedComputePath,
}

impl ObjectKey for PvcKey {
    const ALL: &'static [Self] = &[Self::Name, Self::VolumePath, Self::SharedComputePath];

    fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::VolumePath => "volumePath",
            Self::SharedComputePath => "sharedComputePath",
        }
    }
}

const PULL_POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];

/// The most entries the decoder reads; a longer list is rejected at the entry after this one,
/// before anything is allocated for it.
///
/// KubeVirt renders one container per entry into the VM's launcher pod, each pulled, started and
/// given its own socket before the VM boots; the hooks people run come one to three per VM.
/// 32 is ten times that. Without a bound, the cost of a request would grow with the annotation,
/// and a VM's `spec.template` is not held to the 256 KiB annotation limit (it preserves unknown
/// fields): a 3 MiB request of `{}` entries cost seconds and a gigabyte of module memory.
pub const MAX_SIDECARS: usize = 32;

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

/// Reads the keys of one JSON object strictly: each key must be exactly one of `K`'s, once.
/// `on_field` decodes the value of each key.
fn read_strict_object<'de, K, A, F>(
    mut map: A,
    object: &str,
    mut on_field: F,
) -> Result<(), A::Error>
where
    K: ObjectKey,
    A: MapAccess<'de>,
    F: FnMut(K, &mut A) -> Result<(), A::Error>,
{
    let mut seen: Vec<K> = Vec::with_capacity(K::ALL.len());
    while let Some(key) = map.next_key::<String>()? {
        let Some(known) = K::ALL.iter().copied().find(|k| k.name() == key) else {
            return Err(de::Error::custom(unknown_key_message::<K>(object, &key)));
        };
        if seen.contains(&known) {
            return Err(de::Error::custom(format!(
                "{object} has the key {key:?} twice (KubeVirt would use the last one)"
            )));
        }
        seen.push(known);
        on_field(known, &mut map)?;
    }
    Ok(())
}

fn unknown_key_message<K: ObjectKey>(object: &str, key: &str) -> String {
    let quoted = text::quoted(key, QUOTED_MAX);
    match K::ALL.iter().find(|k| go_folds_onto(key, k.name())) {
        Some(target) => format!(
            "{object} has the key {quoted}, which KubeVirt's decoder reads as {:?}; \
             write it exactly as {:?}",
            target.name(),
            target.name()
        ),
        None => {
            let known: Vec<&str> = K::ALL.iter().map(|k| k.name()).collect();
            format!(
                "{object} has the unknown key {quoted} (known keys: {})",
                known.join(", ")
            )
        }
    }
}

/// The most bytes of a key or value that a decoding error quotes: enough to recognize it, and
/// the error stays readable.
const QUOTED_MAX: usize = 64;

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
        while sidecars.len() < MAX_SIDECARS {
            let index = sidecars.len();
            match seq.next_element_seed(EntrySeed { index })? {
                Some(sidecar) => sidecars.push(sidecar),
                None => return Ok(sidecars),
            }
        }
        // One more entry is skipped, not decoded, to tell a full list from a longer one.
        match seq.next_element::<IgnoredAny>()? {
            None => Ok(sidecars),
            Some(IgnoredAny) => Err(de::Error::custom(format!(
                "more than {MAX_SIDECARS} entries; KubeVirt would add a container to the VM's \
                 pod for each, and the policy reads at most {MAX_SIDECARS}"
            ))),
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
        read_strict_object(map, &object, |key, map| {
            match key {
                SidecarKey::Image => sidecar.image = map.next_value()?,
                SidecarKey::ImagePullPolicy => {
                    sidecar.image_pull_policy = read_pull_policy(map, &object)?;
                }
                SidecarKey::Command => sidecar.command = read_strings(map)?,
                SidecarKey::Args => sidecar.args = read_strings(map)?,
                SidecarKey::ConfigMap => {
                    let object = format!("{object}.configMap");
                    sidecar.config_map = map.next_value_seed(NestedSeed::new(object))?;
                }
                SidecarKey::Pvc => {
                    let object = format!("{object}.pvc");
                    sidecar.pvc = map.next_value_seed(NestedSeed::new(object))?;
                }
            }
            Ok(())
        })?;
        Ok(sidecar)
    }
}

/// `imagePullPolicy`: one of Kubernetes' three values, or unset. Go's `json.Marshal` of KubeVirt's
/// own `HookSidecar` writes `""` (the field has no `omitempty`), and the API server defaults it,
/// so `""` and `null` are unset.
fn read_pull_policy<'de, A: MapAccess<'de>>(
    map: &mut A,
    object: &str,
) -> Result<Option<String>, A::Error> {
    let policy: Option<String> = map.next_value()?;
    match policy {
        None => Ok(None),
        Some(p) if p.is_empty() => Ok(None),
        Some(p) if PULL_POLICIES.contains(&p.as_str()) => Ok(Some(p)),
        Some(p) => Err(de::Error::custom(format!(
            "{object} has imagePullPolicy {}; it must be one of {} (or empty)",
            text::quoted(&p, QUOTED_MAX),
            PULL_POLICIES.join(", ")
        ))),
    }
}

/// A `[]string` the way Go reads it: `null` is empty.
fn read_strings<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Vec<String>, A::Error> {
    Ok(map.next_value::<Option<Vec<String>>>()?.unwrap_or_default())
}

/// Reads a string field the way Go does for a `string`: `null` leaves it empty.
fn read_string<'de, A: MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
    Ok(map.next_value::<Option<String>>()?.unwrap_or_default())
}

/// The nested objects of an entry (`configMap`, `pvc`): string fields named by their own keys.
trait StringFields: Default {
    type Key: ObjectKey;
    fn set(&mut self, key: Self::Key, value: String);
}

impl StringFields for ConfigMapSource {
    type Key = ConfigMapKey;

    fn set(&mut self, key: ConfigMapKey, value: String) {
        match key {
            ConfigMapKey::Name => self.name = value,
            ConfigMapKey::Key => self.key = value,
            ConfigMapKey::HookPath => self.hook_path = value,
        }
    }
}

impl StringFields for PvcSource {
    type Key = PvcKey;

    fn set(&mut self, key: PvcKey, value: String) {
        match key {
            PvcKey::Name => self.name = value,
            PvcKey::VolumePath => self.volume_path = value,
            PvcKey::SharedComputePath => self.shared_compute_path = value,
        }
    }
}

/// Reads `null` (absent) or a strict object of `T`'s keys (present, even when empty: Go decodes
/// `{}` to a non-nil pointer and KubeVirt uses it).
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
        read_strict_object(map, &self.object, |key, map| {
            source.set(key, read_string(map)?);
            Ok(())
        })?;
        Ok(Some(source))
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

    #[test]
    fn null_fields_are_unset() {
        let value = r#"[{"image":null,"imagePullPolicy":null,"command":null,"args":null,"configMap":null,"pvc":null}]"#;
        assert_eq!(decode(value).expect("decodes"), [HookSidecar::default()]);
    }

    #[rstest]
    #[case(r#"[{"imagePullPolicy":""}]"#, None)]
    #[case(r#"[{"imagePullPolicy":null}]"#, None)]
    #[case(r#"[{"imagePullPolicy":"Never"}]"#, Some("Never"))]
    fn an_empty_pull_policy_is_unset(#[case] value: &str, #[case] expected: Option<&str>) {
        let sidecar = &decode(value).expect("decodes")[0];
        assert_eq!(sidecar.image_pull_policy.as_deref(), expected);
    }

    #[rstest]
    #[case(
        r#"[{"configMap":{},"pvc":{}}]"#,
        ConfigMapSource::default(),
        PvcSource::default()
    )]
    #[case(
        r#"[{"configMap":{"name":""},"pvc":{"sharedComputePath":null}}]"#,
        ConfigMapSource::default(),
        PvcSource::default()
    )]
    #[case(
        r#"[{"configMap":{"key":"k"},"pvc":{"volumePath":"/d"}}]"#,
        ConfigMapSource { key: "k".into(), ..Default::default() },
        PvcSource { volume_path: "/d".into(), ..Default::default() }
    )]
    fn empty_objects_are_present(
        #[case] value: &str,
        #[case] config_map: ConfigMapSource,
        #[case] pvc: PvcSource,
    ) {
        let sidecar = &decode(value).expect("decodes")[0];
        assert_eq!(sidecar.config_map.as_ref(), Some(&config_map));
        assert_eq!(sidecar.pvc.as_ref(), Some(&pvc));
    }

    #[test]
    fn every_key_decodes_into_its_own_field() {
        // One distinct value per key: a key decoded into another key's field would show here.
        let value = r#"[{"pvc":{"sharedComputePath":"/s","volumePath":"/v","name":"p"},
            "configMap":{"hookPath":"/h","key":"k","name":"c"},"args":["a"],"command":["c"],
            "imagePullPolicy":"Never","image":"i"}]"#;
        let expected = HookSidecar {
            image: Some("i".into()),
            image_pull_policy: Some("Never".into()),
            command: vec!["c".into()],
            args: vec!["a".into()],
            config_map: Some(ConfigMapSource {
                name: "c".into(),
                key: "k".into(),
                hook_path: "/h".into(),
            }),
            pvc: Some(PvcSource {
                name: "p".into(),
                volume_path: "/v".into(),
                shared_compute_path: "/s".into(),
            }),
        };
        assert_eq!(decode(value).expect("decodes"), [expected]);
        assert_eq!(
            SidecarKey::names().collect::<Vec<_>>(),
            [
                "image",
                "imagePullPolicy",
                "command",
                "args",
                "configMap",
                "pvc"
            ]
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
        "must be one of Always, IfNotPresent, Never (or empty)"
    )]
    #[case(r#"[{"imagePullPolicy":"always"}]"#, "must be one of")]
    #[case(
        r#"[{"pvc":{"name":"a","name":"b"}}]"#,
        "entry 0.pvc has the key \"name\" twice"
    )]
    fn rejects(#[case] value: &str, #[case] message: &str) {
        let error = decode(value).expect_err("must be rejected");
        assert!(error.contains(message), "{value}: {error}");
    }

    /// The decoder descends only where KubeVirt's types do (list, entry, `configMap`/`pvc`,
    /// string lists) and never skips a value, so nesting is refused at the first level where an
    /// array or object is not the expected type: the error names that place, and nothing recurses.
    #[rstest]
    #[case("", "", "entry 0 to be a hook sidecar object")]
    #[case(r#"[{"configMap":"#, "}]", "entry 0.configMap to be an object")]
    #[case(r#"[{"pvc":"#, "}]", "entry 0.pvc to be an object")]
    #[case(r#"[{"args":"#, "}]", "invalid type: sequence, expected a string")]
    #[case(r#"[{"image":"#, "}]", "invalid type: sequence, expected a string")]
    #[case(
        r#"[{"pvc":{"name":"#,
        "}}]",
        "invalid type: sequence, expected a string"
    )]
    fn deep_nesting_is_an_error_not_a_crash(
        #[case] before: &str,
        #[case] after: &str,
        #[case] message: &str,
    ) {
        const DEPTH: usize = 100_000;
        let value = format!(
            "{before}[{}{}]{after}",
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        );
        let error = decode(&value).expect_err("must be rejected");
        assert!(error.contains(message), "{before}...{after}: {error}");
    }

    #[rstest]
    #[case(MAX_SIDECARS, true)]
    #[case(MAX_SIDECARS + 1, false)]
    #[case(970_000, false)]
    fn at_most_max_sidecars_entries_are_read(#[case] entries: usize, #[case] accepted: bool) {
        let value = format!("[{}]", vec!["{}"; entries].join(","));
        match decode(&value) {
            Ok(sidecars) => assert!(accepted && sidecars.len() == entries),
            Err(e) => {
                assert!(!accepted, "{e}");
                assert!(e.contains("more than 32 entries"), "{e}");
            }
        }
    }

    #[test]
    fn the_entry_after_the_bound_is_not_decoded() {
        // Entry 32 is invalid in a way the decoder would name; the bound is what is reported.
        let value = format!("[{},{{\"Image\":5}}]", vec!["null"; MAX_SIDECARS].join(","));
        let error = decode(&value).expect_err("too long");
        assert!(error.contains("more than 32 entries"), "{error}");
    }

    #[test]
    fn quoted_keys_are_shortened() {
        let key = "k".repeat(100_000);
        let error = decode(&format!("[{{\"{key}\":1}}]")).expect_err("unknown key");
        assert!(error.len() < 300, "{} bytes", error.len());
    }

    #[test]
    fn go_folding_matches_the_two_special_runes() {
        assert!(go_folds_onto("ſ", "s"));
        assert!(go_folds_onto("\u{212A}", "k"));
        assert!(go_folds_onto("IMAGEPULLPOLICY", "imagePullPolicy"));
        assert!(!go_folds_onto("images", "image"));
    }
}
