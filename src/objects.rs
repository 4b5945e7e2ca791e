//! Where each KubeVirt kind carries annotations that end up on a VMI, and how to read them.
//!
//! The object is read from the raw JSON of the request along a fixed path, one level at a time,
//! without building a `serde_json::Value` of the whole object: the request is parsed once,
//! and only the few fields on the path are looked at again.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::annotation::HOOK_SIDECARS_ANNOTATION;

/// `kind` of an AdmissionRequest.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// A place in an object where the hook-sidecar annotation may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnotationLocation {
    /// Path to the annotations map, from the object's root.
    pub path: &'static [&'static str],
    /// False where KubeVirt never reads it (a VM's own metadata): checked, with a warning.
    pub effective: bool,
}

impl fmt::Display for AnnotationLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{HOOK_SIDECARS_ANNOTATION:?}]", self.path.join("."))
    }
}

const fn effective(path: &'static [&'static str]) -> AnnotationLocation {
    AnnotationLocation {
        path,
        effective: true,
    }
}

const VMI: &[AnnotationLocation] = &[effective(&["metadata", "annotations"])];
const VM: &[AnnotationLocation] = &[
    effective(&["spec", "template", "metadata", "annotations"]),
    AnnotationLocation {
        path: &["metadata", "annotations"],
        effective: false,
    },
];
const REPLICA_SET: &[AnnotationLocation] =
    &[effective(&["spec", "template", "metadata", "annotations"])];
const POOL: &[AnnotationLocation] = &[effective(&[
    "spec",
    "virtualMachineTemplate",
    "spec",
    "template",
    "metadata",
    "annotations",
])];
const INSTANCETYPE: &[AnnotationLocation] = &[effective(&["spec", "annotations"])];

/// The locations to check for a kind, or `None` for kinds that cannot bring a hook sidecar.
pub fn annotation_locations(kind: &GroupVersionKind) -> Option<&'static [AnnotationLocation]> {
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("kubevirt.io", "VirtualMachineInstance") => Some(VMI),
        ("kubevirt.io", "VirtualMachine") => Some(VM),
        ("kubevirt.io", "VirtualMachineInstanceReplicaSet") => Some(REPLICA_SET),
        ("pool.kubevirt.io", "VirtualMachinePool") => Some(POOL),
        (
            "instancetype.kubevirt.io",
            "VirtualMachineInstancetype"
            | "VirtualMachineClusterInstancetype"
            | "VirtualMachinePreference"
            | "VirtualMachineClusterPreference",
        ) => Some(INSTANCETYPE),
        _ => None,
    }
}

/// Reads the annotation's value at `location` of `object`. Missing or `null` maps on the way mean
/// no annotation; anything that is not what Kubernetes would serialize there is an error, since a
/// sidecar request could hide in what the policy cannot read.
///
/// One pass over the object: keys off the path are skipped without being decoded.
pub fn read_annotation(
    object: &RawValue,
    location: &AnnotationLocation,
) -> Result<Option<String>, String> {
    let reached = Cell::new(0);
    let seed = PathSeed {
        path: location.path,
        depth: 0,
        reached: &reached,
    };
    let mut deserializer = serde_json::Deserializer::from_str(object.get());
    seed.deserialize(&mut deserializer).map_err(|e| {
        let depth = reached.get();
        let place = if depth == 0 {
            "the object".to_owned()
        } else {
            location.path[..depth].join(".")
        };
        format!("cannot read {place}: {e}")
    })
}

/// Descends `path` from `depth`; at the end of the path, reads the annotation from the map.
/// `reached` records the level being read, so that an error can name it.
struct PathSeed<'r> {
    path: &'static [&'static str],
    depth: usize,
    reached: &'r Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.reached.set(self.depth);
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let at_annotations = self.depth == self.path.len();
        let wanted = self
            .path
            .get(self.depth)
            .copied()
            .unwrap_or(HOOK_SIDECARS_ANNOTATION);
        let mut found = None;
        while let Some(is_wanted) = map.next_key_seed(KeyIs(wanted))? {
            if !is_wanted {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if found.is_some() {
                return Err(de::Error::custom(format!(
                    "the key {wanted:?} appears twice"
                )));
            }
            let value = if at_annotations {
                Some(map.next_value_seed(AnnotationValue)?)
            } else {
                map.next_value_seed(PathSeed {
                    depth: self.depth + 1,
                    ..self
                })?
            };
            self.reached.set(self.depth);
            found = Some(value);
        }
        Ok(found.flatten())
    }
}

/// The annotation's value, which Kubernetes always serializes as a string.
struct AnnotationValue;

impl<'de> DeserializeSeed<'de> for AnnotationValue {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(value) => Ok(value),
            other => Err(de::Error::custom(format!(
                "{HOOK_SIDECARS_ANNOTATION:?} is {other}, not a string"
            ))),
        }
    }
}

/// Compares a map key with the wanted one without allocating it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("valid JSON")
    }

    const TEMPLATE: AnnotationLocation = VM[0];

    #[rstest]
    #[case(r#"{"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"[]"}}}}}"#, Some("[]"))]
    #[case(
        r#"{"spec":{"template":{"metadata":{"annotations":{"other":"x"}}}}}"#,
        None
    )]
    #[case(r#"{"spec":{"template":{"metadata":{}}}}"#, None)]
    #[case(r#"{"spec":{"template":{"metadata":null}}}"#, None)]
    #[case(r#"{"spec":null}"#, None)]
    #[case(r#"{}"#, None)]
    #[case(r#"{"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"[{\"image\":\"a\"}]"}}}}}"#, Some(r#"[{"image":"a"}]"#))]
    fn reads_the_template_annotation(#[case] object: &str, #[case] expected: Option<&str>) {
        let value = read_annotation(&raw(object), &TEMPLATE).expect("readable");
        assert_eq!(value.as_deref(), expected);
    }

    #[rstest]
    #[case(r#"[]"#, "cannot read the object")]
    #[case(r#"{"spec":"x"}"#, "cannot read spec")]
    #[case(r#"{"spec":{"template":[]}}"#, "cannot read spec.template")]
    #[case(
        r#"{"spec":{"template":{"metadata":{"annotations":5}}}}"#,
        "cannot read spec.template.metadata.annotations"
    )]
    #[case(r#"{"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":["x"]}}}}}"#, "not a string")]
    #[case(r#"{"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":null}}}}}"#, "not a string")]
    #[case(r#"{"spec":{"template":{},"template":{}}}"#, "appears twice")]
    #[case(r#"{"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"[]","hooks.kubevirt.io/hookSidecars":"[{}]"}}}}}"#, "appears twice")]
    fn unreadable_objects_are_errors(#[case] object: &str, #[case] message: &str) {
        let error = read_annotation(&raw(object), &TEMPLATE).expect_err("unreadable");
        assert!(error.contains(message), "{object}: {error}");
    }

    #[rstest]
    #[case("kubevirt.io", "VirtualMachineInstance", Some(1))]
    #[case("kubevirt.io", "VirtualMachine", Some(2))]
    #[case("kubevirt.io", "VirtualMachineInstanceReplicaSet", Some(1))]
    #[case("pool.kubevirt.io", "VirtualMachinePool", Some(1))]
    #[case("instancetype.kubevirt.io", "VirtualMachineClusterPreference", Some(1))]
    #[case("instancetype.kubevirt.io", "VirtualMachineInstancetype", Some(1))]
    #[case("", "Pod", None)]
    #[case("kubevirt.io", "KubeVirt", None)]
    #[case("example.com", "VirtualMachine", None)]
    fn kinds(#[case] group: &str, #[case] kind: &str, #[case] locations: Option<usize>) {
        let gvk = GroupVersionKind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
        };
        assert_eq!(annotation_locations(&gvk).map(<[_]>::len), locations);
    }
}
