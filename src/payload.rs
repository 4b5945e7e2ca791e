//! The waPC `validate` payload, read in one pass: the request's kind first, then each object read
//! where the kind's family looks (a carrier's annotation maps, a Pod's labels) as the pass goes
//! through it, everything else skipped without being built, by the skimming deserializer of
//! [`crate::skim`] (skipping is most of what the pass does). policy-server writes the request's
//! keys in order (`kind` before `object` and `oldObject`), so the objects are not read twice.
//!
//! The pass reads only what is as the API server writes it. Anything else (a key twice, an
//! annotation that is not a string, more annotations than it reads in one go, an object before
//! the kind, anything the skimmer does not read) fails it, and the payload is read again, by
//! serde_json, the way that names the problem: each object kept as raw JSON, for its family's
//! extractor to read ([`read_raw`]). Both ways give the same
//! request; `tests::both_readings_agree` holds them to it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::annotation_maps::{AnnotationLocation, CowStr, MapsSeed, ObjectMaps};
use crate::launcher_pod::{PodHead, PodObject};
use crate::{skim, vm_carriers};

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

/// Whether the request is about a core/v1 Pod: a virt-launcher Pod brings the sidecars KubeVirt
/// rendered.
pub fn is_pod(kind: &GroupVersionKind) -> bool {
    kind.group.is_empty() && kind.kind == "Pod"
}

/// Where a kind carries the annotation, or `None` for kinds that cannot bring a hook sidecar.
pub fn annotation_locations(kind: &GroupVersionKind) -> Option<&'static [AnnotationLocation]> {
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("kubevirt.io", "VirtualMachineInstance") => Some(vm_carriers::VMI),
        ("kubevirt.io", "VirtualMachine") => Some(vm_carriers::VM),
        ("kubevirt.io", "VirtualMachineInstanceReplicaSet") => Some(vm_carriers::REPLICA_SET),
        ("pool.kubevirt.io", "VirtualMachinePool") => Some(vm_carriers::POOL),
        (
            "instancetype.kubevirt.io",
            "VirtualMachineInstancetype"
            | "VirtualMachineClusterInstancetype"
            | "VirtualMachinePreference"
            | "VirtualMachineClusterPreference",
        ) => Some(vm_carriers::INSTANCETYPE),
        _ => None,
    }
}

/// The payload, as far as the policy reads it.
#[derive(Debug)]
pub struct Payload<'a> {
    pub kind: GroupVersionKind,
    pub operation: String,
    /// Where the objects that the request's sidecars name (a ConfigMap) are.
    pub namespace: Cow<'a, str>,
    pub objects: Objects<'a>,
    /// The settings, as raw JSON: decoded only when the request has sidecars.
    pub settings: Option<&'a RawValue>,
}

/// The request's object and, on UPDATE, the object before it, as the kind's family reads them.
#[derive(Debug)]
pub enum Objects<'a> {
    Carrier {
        locations: &'static [AnnotationLocation],
        object: Option<ObjectMaps<'a>>,
        old_object: Option<ObjectMaps<'a>>,
    },
    Pod {
        object: Option<PodObject<'a>>,
        old_object: Option<PodObject<'a>>,
    },
    /// A kind that cannot bring a hook sidecar: its objects are not read.
    Other,
}

/// Reads the payload in one pass, or, when that pass fails, from raw JSON; the error is that of
/// the raw reading.
pub fn read(payload: &[u8]) -> Result<Payload<'_>, serde_json::Error> {
    read_in_one_pass(payload).or_else(|_| read_raw(payload))
}

/// The reading that keeps each object as raw JSON, for its family's extractor to read.
pub fn read_raw(payload: &[u8]) -> Result<Payload<'_>, serde_json::Error> {
    let raw: RawPayload = serde_json::from_slice(payload)?;
    let request = raw.request;
    let objects = match (annotation_locations(&request.kind), is_pod(&request.kind)) {
        (Some(locations), _) => Objects::Carrier {
            locations,
            object: request.object.map(ObjectMaps::Raw),
            old_object: request.old_object.map(ObjectMaps::Raw),
        },
        (None, true) => Objects::Pod {
            object: request.object.map(PodObject::Raw),
            old_object: request.old_object.map(PodObject::Raw),
        },
        (None, false) => Objects::Other,
    };
    Ok(Payload {
        kind: request.kind,
        operation: request.operation,
        namespace: request.namespace,
        objects,
        settings: raw.settings,
    })
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    #[serde(borrow)]
    request: RawRequest<'a>,
    #[serde(borrow, default)]
    settings: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest<'a> {
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    #[serde(borrow, default)]
    namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
}

/// The one-pass reading, with the skimming reader ([`crate::skim`]); an error only means that
/// the payload must be read from raw JSON.
pub fn read_in_one_pass(payload: &[u8]) -> Result<Payload<'_>, skim::Unread> {
    let mut deserializer = skim::Deserializer::from_slice(payload)?;
    let payload = PayloadVisitor.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(payload)
}

/// An object as the one pass read it.
enum Read<'a> {
    /// Met before the kind: kept raw.
    Raw(&'a RawValue),
    Maps(ObjectMaps<'a>),
    Pod(PodObject<'a>),
    /// Of a kind that brings no sidecar.
    Skipped,
}

struct PayloadVisitor;

impl<'de> DeserializeSeed<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the validate payload")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request: Option<Payload<'de>> = None;
        let mut settings: Option<Option<&'de RawValue>> = None;
        while let Some(key) = map.next_key_seed(CowStr)? {
            match &*key {
                "request" if request.is_none() => request = Some(map.next_value_seed(RequestSeed)?),
                "settings" if settings.is_none() => settings = Some(map.next_value()?),
                "request" | "settings" => {
                    return Err(de::Error::custom(format!("duplicate field `{key}`")));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut payload = request.ok_or_else(|| de::Error::missing_field("request"))?;
        payload.settings = settings.flatten();
        Ok(payload)
    }
}

struct RequestSeed;

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = Payload<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kind: Option<GroupVersionKind> = None;
        let mut operation: Option<String> = None;
        let mut namespace: Option<Cow<'de, str>> = None;
        let mut object: Option<Option<Read<'de>>> = None;
        let mut old_object: Option<Option<Read<'de>>> = None;
        while let Some(key) = map.next_key_seed(CowStr)? {
            let duplicate = match &*key {
                "kind" => kind.is_some(),
                "operation" => operation.is_some(),
                "namespace" => namespace.is_some(),
                "object" => object.is_some(),
                "oldObject" => old_object.is_some(),
                _ => false,
            };
            if duplicate {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            match &*key {
                "kind" => kind = Some(map.next_value()?),
                "operation" => operation = Some(map.next_value()?),
                "namespace" => namespace = Some(map.next_value_seed(CowStr)?),
                "object" => object = Some(map.next_value_seed(ObjectSeed(kind.as_ref()))?),
                "oldObject" => old_object = Some(map.next_value_seed(ObjectSeed(kind.as_ref()))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.unwrap_or_default();
        let (object, old_object) = (object.flatten(), old_object.flatten());
        let objects = match (annotation_locations(&kind), is_pod(&kind)) {
            (Some(locations), _) => Objects::Carrier {
                locations,
                object: object.map(|read| read.into_maps()).transpose()?,
                old_object: old_object.map(|read| read.into_maps()).transpose()?,
            },
            (None, true) => Objects::Pod {
                object: object.map(|read| read.into_pod()).transpose()?,
                old_object: old_object.map(|read| read.into_pod()).transpose()?,
            },
            (None, false) => Objects::Other,
        };
        Ok(Payload {
            kind,
            operation: operation.unwrap_or_default(),
            namespace: namespace.unwrap_or_default(),
            objects,
            settings: None,
        })
    }
}

impl<'a> Read<'a> {
    fn into_maps<E: de::Error>(self) -> Result<ObjectMaps<'a>, E> {
        match self {
            Self::Raw(raw) => Ok(ObjectMaps::Raw(raw)),
            Self::Maps(maps) => Ok(maps),
            Self::Pod(_) | Self::Skipped => Err(E::custom("the object was read for another kind")),
        }
    }

    fn into_pod<E: de::Error>(self) -> Result<PodObject<'a>, E> {
        match self {
            Self::Raw(raw) => Ok(PodObject::Raw(raw)),
            Self::Pod(pod) => Ok(pod),
            Self::Maps(_) | Self::Skipped => Err(E::custom("the object was read for another kind")),
        }
    }
}

/// An object, read as the family of `kind` reads it (`null` is no object); kept raw when the
/// kind is not known yet.
struct ObjectSeed<'k>(Option<&'k GroupVersionKind>);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Option<Read<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = Option<Read<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let Some(kind) = self.0 else {
            return <&RawValue>::deserialize(deserializer).map(|raw| Some(Read::Raw(raw)));
        };
        let read = match (annotation_locations(kind), is_pod(kind)) {
            (Some(locations), _) => Read::Maps(ObjectMaps::Read(
                MapsSeed(locations).deserialize(deserializer)?,
            )),
            (None, true) => Read::Pod(PodObject::Read(PodHead::deserialize(deserializer)?)),
            (None, false) => {
                IgnoredAny::deserialize(deserializer)?;
                Read::Skipped
            }
        };
        Ok(Some(read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::PolicyServer;
    use crate::validation::validate_read;
    use crate::verdict::Verdict;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";

    /// The verdict on `payload` read in one pass (or from raw JSON where that pass fails), and
    /// read from raw JSON only.
    fn both_verdicts(payload: &[u8]) -> (Verdict, Verdict) {
        (
            validate_read(read(payload), &PolicyServer),
            validate_read(read_raw(payload), &PolicyServer),
        )
    }

    fn files(dir: &str) -> Vec<Value> {
        let dir = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("readable");
                serde_json::from_str(&text).expect("JSON")
            })
            .collect()
    }

    /// A profile that reads an annotation of the fixtures' VMs and Pods, so that the maps read in
    /// the pass are looked up once the rules are known.
    fn settings_cases() -> Vec<Value> {
        let read = |path: &str| -> Value {
            let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON")
        };
        vec![
            json!({}),
            json!({"allowedImages": [GPU_HOOK]}),
            json!({"allowedImages": [GPU_HOOK], "sidecarProfiles": [{"image": GPU_HOOK,
                "annotations": {"kubevirt.io/latest-observed-api-version": "v1",
                                "smbios.vm.kubevirt.io/baseBoardManufacturer": "[A-Z]+"}}]}),
            read("examples/settings.json"),
            read("e2e-tests/bench/settings-50.json"),
            read("e2e-tests/bench/settings-50-profiles-5.json"),
        ]
    }

    #[test]
    fn both_readings_agree_on_every_fixture() {
        let mut requests = files("test_data");
        requests.extend(
            files("e2e-tests/bench")
                .into_iter()
                .filter(|r| r.get("uid").is_some()),
        );
        requests.extend(
            files("examples")
                .into_iter()
                .filter(|r| r.get("uid").is_some()),
        );
        assert!(requests.len() > 30, "{} requests", requests.len());
        for request in &requests {
            for settings in settings_cases() {
                let payload =
                    serde_json::to_vec(&json!({"request": request, "settings": settings}))
                        .expect("serializable");
                // As the API server and policy-server write them, every fixture is read in one
                // pass: the comparison is not with the raw reading against itself.
                assert!(
                    read_in_one_pass(&payload).is_ok(),
                    "{}: {:?}",
                    request["uid"],
                    read_in_one_pass(&payload).err()
                );
                let (one_pass, raw) = both_verdicts(&payload);
                assert_eq!(one_pass, raw, "{} under {settings}", request["uid"]);
            }
        }
    }

    /// An annotations map as JSON text, as anyone could write it: keys twice, values of any type,
    /// escapes, surrogates that do not decode, more keys than the pass reads.
    fn annotations_map() -> impl Strategy<Value = String> {
        let sidecars = json!([{"image": GPU_HOOK}]).to_string();
        let other = json!([{"image": "evil.example.com/x:1"}]).to_string();
        let key = prop_oneof![
            Just(r#""hooks.kubevirt.io/hookSidecars""#.to_owned()),
            Just(r#""hooks.kubevirt.io\/hookSidecars""#.to_owned()),
            Just(r#""smbios.vm.kubevirt.io/baseBoardManufacturer""#.to_owned()),
            Just(r#""kubevirt.io/latest-observed-api-version""#.to_owned()),
            Just(r#""a\u0062c""#.to_owned()),
            "[a-z]{1,3}".prop_map(|key| format!("{key:?}")),
        ];
        let value = prop_oneof![
            Just(Value::String(sidecars).to_string()),
            Just(Value::String(other).to_string()),
            Just(r#""[]""#.to_owned()),
            Just(r#""v1""#.to_owned()),
            Just(r#""ACME""#.to_owned()),
            Just(r#""\u003c""#.to_owned()),
            Just(r#""\ud800""#.to_owned()),
            Just("5".to_owned()),
            Just("null".to_owned()),
            Just("{}".to_owned()),
        ];
        let entries = prop::collection::vec((key, value), 0..6);
        let many = (60usize..70).prop_map(|n| {
            let entries: Vec<String> = (0..n).map(|i| format!(r#""k{i}":"v""#)).collect();
            format!("{{{}}}", entries.join(","))
        });
        prop_oneof![
            8 => entries.prop_map(|entries| {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", entries.join(","))
            }),
            1 => many,
            1 => prop_oneof![Just("null".to_owned()), Just("5".to_owned()), Just("[]".to_owned())],
        ]
    }

    /// A VM, a VMI or a launcher Pod around the maps, in one of the orders its keys can come.
    fn object(maps: (String, String), kind: &str, reversed: bool) -> String {
        let (first, second) = maps;
        let containers = r#"[{"name":"compute","image":"virt-launcher"},
            {"name":"hook-sidecar-0","image":"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0",
             "volumeMounts":[{"name":"hook-sidecar-sockets","mountPath":"/var/run/kubevirt-hooks"}]}]"#;
        let (metadata, spec) = match kind {
            "VirtualMachine" => (
                format!(r#""metadata":{{"name":"vm","annotations":{first}}}"#),
                format!(
                    r#""spec":{{"running":true,"template":{{"metadata":{{"annotations":{second}}},"spec":{{}}}}}}"#
                ),
            ),
            "VirtualMachineInstance" => (
                format!(r#""metadata":{{"annotations":{first},"name":"vmi"}}"#),
                format!(r#""spec":{{"domain":{{}}}},"status":{{"phase":"Running","x":{second}}}"#),
            ),
            _ => (
                format!(
                    r#""metadata":{{"labels":{{"kubevirt.io":"virt-launcher"}},"annotations":{first}}}"#
                ),
                format!(
                    r#""spec":{{"containers":{containers},"volumes":[{{"name":"hook-sidecar-sockets","emptyDir":{{}}}}]}}"#
                ),
            ),
        };
        if reversed {
            format!("{{{spec},{metadata}}}")
        } else {
            format!("{{{metadata},{spec}}}")
        }
    }

    fn gvk(kind: &str) -> String {
        let group = if kind == "Pod" { "" } else { "kubevirt.io" };
        json!({"group": group, "version": "v1", "kind": kind}).to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the maps hold, the order of the keys or the operation, reading in one pass
        /// gives the verdict that reading from raw JSON gives.
        #[test]
        fn both_readings_agree(
            kind in prop_oneof![Just("VirtualMachine"), Just("VirtualMachineInstance"), Just("Pod")],
            new_maps in (annotations_map(), annotations_map()),
            old_maps in (annotations_map(), annotations_map()),
            operation in prop_oneof![Just("CREATE"), Just("UPDATE"), Just("DELETE")],
            kind_first in any::<bool>(),
            reversed in any::<bool>(),
            with_old in any::<bool>(),
            settings in prop::sample::select(settings_cases()),
        ) {
            let object = object(new_maps, kind, reversed);
            let old = object_or_null(with_old, || object_text(old_maps, kind, reversed));
            let fields = [
                format!(r#""kind":{}"#, gvk(kind)),
                format!(r#""object":{object}"#),
                format!(r#""oldObject":{old}"#),
                format!(r#""operation":"{operation}""#),
                r#""uid":"u""#.to_owned(),
            ];
            let order: Vec<&String> = if kind_first {
                fields.iter().collect()
            } else {
                fields.iter().rev().collect()
            };
            let request = order.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(",");
            let payload = format!(r#"{{"request":{{{request}}},"settings":{settings}}}"#);
            let (one_pass, raw) = both_verdicts(payload.as_bytes());
            prop_assert_eq!(one_pass, raw, "{}", payload);
        }
    }

    /// The pass reads what the API server writes, and leaves anything else to the raw reading.
    #[rstest::rstest]
    #[case::clean(r#"{"a":"b","hooks.kubevirt.io/hookSidecars":"[]"}"#, true)]
    #[case::no_map(r#"null"#, true)]
    #[case::escaped_key(r#"{"a\u0062":"b"}"#, true)]
    #[case::escaped_value(r#"{"a":"\u003c"}"#, true)]
    #[case::key_twice(r#"{"a":"b","a":"c"}"#, false)]
    #[case::spelt_twice(r#"{"a/b":"x","a\/b":"y"}"#, false)]
    #[case::not_a_string(r#"{"a":5}"#, false)]
    #[case::null_value(r#"{"a":null}"#, false)]
    #[case::lone_surrogate(r#"{"a":"\ud800"}"#, false)]
    #[case::not_a_map(r#"[]"#, false)]
    fn what_the_pass_reads(#[case] annotations: &str, #[case] in_one_pass: bool) {
        let object = object(
            (annotations.to_owned(), "{}".to_owned()),
            "VirtualMachine",
            false,
        );
        let payload = format!(
            r#"{{"request":{{"kind":{},"object":{object},"operation":"CREATE"}},"settings":{{}}}}"#,
            gvk("VirtualMachine")
        );
        assert_eq!(
            read_in_one_pass(payload.as_bytes()).is_ok(),
            in_one_pass,
            "{payload}"
        );
        let (one_pass, raw) = both_verdicts(payload.as_bytes());
        assert_eq!(one_pass, raw);
    }

    #[test]
    fn an_object_before_its_kind_is_read_raw() {
        let payload = format!(
            r#"{{"request":{{"object":{{}},"kind":{},"operation":"CREATE"}}}}"#,
            gvk("VirtualMachine")
        );
        let read = read_in_one_pass(payload.as_bytes()).expect("read in one pass");
        assert!(matches!(
            read.objects,
            Objects::Carrier {
                object: Some(ObjectMaps::Raw(_)),
                ..
            }
        ));
    }

    fn object_text(maps: (String, String), kind: &str, reversed: bool) -> String {
        object(maps, kind, reversed)
    }

    fn object_or_null(with: bool, object: impl FnOnce() -> String) -> String {
        if with { object() } else { "null".to_owned() }
    }
}
