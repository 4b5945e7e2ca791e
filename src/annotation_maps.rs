//! The annotation maps of an object, read from the raw JSON of the request.
//!
//! Each map is found along a fixed path, one level at a time, without building a
//! `serde_json::Value` of the whole object: the request is parsed once, and only the few fields on
//! the paths are looked at again. One pass reads every map a kind has (a VM's template and its own
//! metadata).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::annotation::HOOK_SIDECARS_ANNOTATION;
use crate::profiles::AnnotationLookup;

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

/// The most locations any kind has (a VirtualMachine: its template and its own metadata).
pub const MAX_LOCATIONS: usize = 2;

/// Which of a kind's locations (by index) a part of the object concerns.
type LocationSet = [bool; MAX_LOCATIONS];

const NO_LOCATION: LocationSet = [false; MAX_LOCATIONS];

/// The annotation's value at each location (`None` where absent), in the order of `locations`.
pub type AnnotationValues = Result<Vec<Option<String>>, String>;

/// Reads the annotation's value at every location of `object` in one pass: keys off the paths
/// are skipped without being decoded. Missing or `null` maps on the way mean no annotation;
/// anything that is not what Kubernetes would serialize there is an error naming the place, since
/// a sidecar request could hide in what the policy cannot read.
#[cfg(test)]
pub fn read_annotations(object: &RawValue, locations: &[AnnotationLocation]) -> AnnotationValues {
    read_annotation_keys(object, locations, &[HOOK_SIDECARS_ANNOTATION])
}

/// The values of `keys` in the annotations map at every location, in one pass like
/// [`read_annotations`]: for location `l` and key `k`, the value is at `l * keys.len() + k`.
/// What the sidecars of a location read beside their annotation (see `crate::profiles`).
pub fn read_annotation_keys(
    object: &RawValue,
    locations: &[AnnotationLocation],
    keys: &[&str],
) -> AnnotationValues {
    if locations.len() > MAX_LOCATIONS {
        return Err(format!(
            "{} annotation locations; at most {MAX_LOCATIONS} can be read in one pass",
            locations.len()
        ));
    }
    let mut values = vec![None; locations.len() * keys.len()];
    let reached = Cell::new((0, 0));
    let mut active = NO_LOCATION;
    active[..locations.len()].fill(true);
    let seed = PathsSeed {
        locations,
        keys,
        active,
        depth: 0,
        values: &mut values,
        reached: &reached,
    };
    let mut deserializer = serde_json::Deserializer::from_str(object.get());
    match seed.deserialize(&mut deserializer) {
        Ok(()) => Ok(values),
        Err(e) => {
            let (location, depth) = reached.get();
            let place = match depth {
                0 => "the object".to_owned(),
                depth => locations[location].path[..depth].join("."),
            };
            Err(format!("cannot read {place}: {e}"))
        }
    }
}

/// Where an object's annotation maps are read from: the object's raw JSON, read at the
/// locations when asked, or the maps themselves, read in full in the payload's one pass
/// ([`crate::payload`]), one for each location.
#[derive(Debug, Clone)]
pub enum ObjectMaps<'a> {
    Raw(&'a RawValue),
    Read(Vec<Option<RawAnnotations<'a>>>),
}

impl ObjectMaps<'_> {
    /// The values of `keys` at `locations` (those the maps were read at), as
    /// [`read_annotation_keys`] gives them.
    pub fn values(&self, locations: &[AnnotationLocation], keys: &[&str]) -> AnnotationValues {
        match self {
            Self::Raw(object) => read_annotation_keys(object, locations, keys),
            Self::Read(maps) if maps.len() == locations.len() => Ok(maps
                .iter()
                .flat_map(|map| keys.iter().map(move |key| map.as_ref()?.get(key)))
                .collect()),
            Self::Read(maps) => Err(format!(
                "{} annotation maps were read for {} locations",
                maps.len(),
                locations.len()
            )),
        }
    }
}

/// The values of some annotation keys (those the profiles governing a request's sidecars read)
/// in each annotation map that the sidecars read, by index of the map.
#[derive(Debug, Default)]
pub struct ProfileAnnotations {
    keys: Vec<String>,
    /// `values[map * keys.len() + key]`, as [`read_annotation_keys`] gives them.
    values: Vec<Option<String>>,
}

impl ProfileAnnotations {
    /// The values of `keys` (sorted, without duplicates) at `maps` of `object`, read only when
    /// a profile reads any (from raw JSON, in one more pass over it).
    pub fn read(
        object: &ObjectMaps,
        maps: &[AnnotationLocation],
        keys: &[&str],
    ) -> Result<Self, String> {
        if keys.is_empty() {
            return Ok(Self::default());
        }
        let values = object.values(maps, keys)?;
        let keys = keys.iter().map(|key| (*key).to_owned()).collect();
        Ok(Self { keys, values })
    }

    /// The keys read.
    pub fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }

    /// The value of `key` in the map `map`, if it was read and is there.
    pub fn get(&self, map: usize, key: &str) -> Option<&str> {
        let column = self.keys.iter().position(|k| k == key)?;
        self.values.get(map * self.keys.len() + column)?.as_deref()
    }

    /// The map `map`, as the profiles look annotations up.
    pub fn at(&self, map: usize) -> MapAnnotations<'_> {
        MapAnnotations { read: self, map }
    }
}

/// One annotation map of [`ProfileAnnotations`].
pub struct MapAnnotations<'a> {
    read: &'a ProfileAnnotations,
    map: usize,
}

impl AnnotationLookup for MapAnnotations<'_> {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.read.get(self.map, key)
    }
}

/// Reads the map at `depth` on the paths of the `active` locations.
/// `reached` records the level being read, so that an error can name it.
struct PathsSeed<'l, 'v> {
    locations: &'l [AnnotationLocation],
    /// The annotation keys to read in the locations' maps.
    keys: &'l [&'l str],
    active: LocationSet,
    depth: usize,
    values: &'v mut [Option<String>],
    reached: &'v Cell<(usize, usize)>,
}

impl PathsSeed<'_, '_> {
    fn active(&self) -> impl Iterator<Item = (usize, &AnnotationLocation)> + '_ {
        self.locations
            .iter()
            .enumerate()
            .filter(|(index, _)| self.active[*index])
    }

    fn mark_reached(&self) {
        if let Some((index, _)) = self.active().next() {
            self.reached.set((index, self.depth));
        }
    }

    /// The locations for which `key` at this level matters: those whose annotations map this is
    /// (when `key` is the annotation) and those whose path goes on through `key`.
    fn interested_in(&self, key: &str) -> (LocationSet, LocationSet) {
        let (mut here, mut deeper) = (NO_LOCATION, NO_LOCATION);
        for (index, location) in self.active() {
            match location.path.get(self.depth) {
                None if self.keys.contains(&key) => here[index] = true,
                Some(segment) if *segment == key => deeper[index] = true,
                _ => {}
            }
        }
        (here, deeper)
    }
}

impl<'de> DeserializeSeed<'de> for PathsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.mark_reached();
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key_seed(ClassifyKey(&self))? {
            let Some((key, here, deeper)) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if seen.contains(&key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice")));
            }
            if here != NO_LOCATION {
                let value = map.next_value_seed(AnnotationValue(&key))?;
                let column = self.keys.iter().position(|k| *k == key).unwrap_or(0);
                let rows = self.values.chunks_mut(self.keys.len().max(1));
                for (row, _) in rows.zip(here).filter(|(_, here)| *here) {
                    row[column] = Some(value.clone());
                }
            } else {
                map.next_value_seed(PathsSeed {
                    locations: self.locations,
                    keys: self.keys,
                    active: deeper,
                    depth: self.depth + 1,
                    values: &mut *self.values,
                    reached: self.reached,
                })?;
                self.mark_reached();
            }
            seen.push(key);
        }
        Ok(())
    }
}

/// Looks at a map key without allocating it, unless some location needs the key's value:
/// then it is returned with the locations interested in it (see `PathsSeed::interested_in`).
struct ClassifyKey<'s, 'l, 'v>(&'s PathsSeed<'l, 'v>);

impl<'de> DeserializeSeed<'de> for ClassifyKey<'_, '_, '_> {
    type Value = Option<(String, LocationSet, LocationSet)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ClassifyKey<'_, '_, '_> {
    type Value = Option<(String, LocationSet, LocationSet)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let (here, deeper) = self.0.interested_in(key);
        Ok((here != NO_LOCATION || deeper != NO_LOCATION).then(|| (key.to_owned(), here, deeper)))
    }
}

/// An annotation's value (of the key given), which Kubernetes always serializes as a string.
struct AnnotationValue<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for AnnotationValue<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(value) => Ok(value),
            other => Err(de::Error::custom(format!(
                "{:?} is {other}, not a string",
                self.0
            ))),
        }
    }
}

/// An annotations map read in full in the payload's pass: each key, and its value as raw JSON,
/// unescaped only when it is looked up. A map is read so only when it is as Kubernetes writes
/// annotations: at most [`RAW_ANNOTATIONS_MAX`] keys, each once, every value a string that
/// decodes. Anything else fails the pass, and the request is read again from its raw JSON
/// ([`read_annotation_keys`]), which says what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct RawAnnotations<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// More keys than this, and the map is read the slow way: no linear lookups over a map built to
/// be large (an annotations map of 219 000 keys fits in a request).
pub const RAW_ANNOTATIONS_MAX: usize = 64;

impl RawAnnotations<'_> {
    /// The value of `key`, unescaped.
    pub fn get(&self, key: &str) -> Option<String> {
        let (_, raw) = self.entries.iter().find(|(k, _)| k == key)?;
        // Checked when the map was read: every value is a JSON string that decodes.
        serde_json::from_str(raw.get()).ok()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawAnnotations<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawAnnotationsVisitor)
    }
}

struct RawAnnotationsVisitor;

impl<'de> Visitor<'de> for RawAnnotationsVisitor {
    type Value = RawAnnotations<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an annotations map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        while let Some(key) = map.next_key_seed(CowStr)? {
            if entries.len() == RAW_ANNOTATIONS_MAX {
                return Err(de::Error::custom(
                    "too many annotations to read in one pass",
                ));
            }
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice")));
            }
            let value: &'de RawValue = map.next_value()?;
            let text = value.get();
            // A string whose `\u` escapes serde_json reads only when it decodes it (a lone
            // surrogate does not decode): decoded now, so that a lookup cannot fail.
            if !text.starts_with('"')
                || (has_unicode_escape(text) && serde_json::from_str::<String>(text).is_err())
            {
                return Err(de::Error::custom(format!(
                    "the value of {key:?} is not a string"
                )));
            }
            entries.push((key, value));
        }
        Ok(RawAnnotations { entries })
    }
}

/// Whether the text of a JSON string has a `\u` escape (an escaped backslash followed by `u` is
/// not one).
fn has_unicode_escape(text: &str) -> bool {
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'\\' && bytes.next() == Some(b'u') {
            return true;
        }
    }
    false
}

/// A string (a map key, an `allowedImages` entry), borrowed from the input when it has no
/// escape.
pub struct CowStr;

impl<'de> DeserializeSeed<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

/// Reads the annotations maps at `locations` of an object in full, in the pass over the payload
/// (the deserializer must lend its input, as serde_json's do from a slice or a `str`). Keys off
/// the paths are skipped; a missing or `null` map on the way is no map. Anything the raw reading
/// would refuse, and anything [`RawAnnotations`] does not read, is an error (which sends the
/// request to the raw reading).
pub struct MapsSeed<'l>(pub &'l [AnnotationLocation]);

impl<'de> DeserializeSeed<'de> for MapsSeed<'_> {
    type Value = Vec<Option<RawAnnotations<'de>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let locations = self.0;
        if locations.len() > MAX_LOCATIONS {
            return Err(de::Error::custom("too many annotation locations"));
        }
        let mut maps = vec![None; locations.len()];
        let mut active = NO_LOCATION;
        active[..locations.len()].fill(true);
        MapsLevel {
            locations,
            active,
            depth: 0,
            maps: &mut maps,
        }
        .deserialize(deserializer)?;
        Ok(maps)
    }
}

/// The map at `depth` on the paths of the `active` locations, none of whose paths ends here.
struct MapsLevel<'l, 'm, 'de> {
    locations: &'l [AnnotationLocation],
    active: LocationSet,
    depth: usize,
    maps: &'m mut [Option<RawAnnotations<'de>>],
}

impl<'de> DeserializeSeed<'de> for MapsLevel<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MapsLevel<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(segment) = map.next_key_seed(PathSegment(&self))? {
            let Some((segment, deeper)) = segment else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if seen.contains(&segment) {
                return Err(de::Error::custom(format!(
                    "the key {segment:?} appears twice"
                )));
            }
            seen.push(segment);
            let ending: LocationSet = std::array::from_fn(|index| {
                deeper[index] && self.locations[index].path.len() == self.depth + 1
            });
            if ending == NO_LOCATION {
                map.next_value_seed(MapsLevel {
                    locations: self.locations,
                    active: deeper,
                    depth: self.depth + 1,
                    maps: &mut *self.maps,
                })?;
            } else if ending == deeper {
                let read: Option<RawAnnotations<'de>> = map.next_value()?;
                for (slot, _) in self.maps.iter_mut().zip(ending).filter(|(_, ends)| *ends) {
                    slot.clone_from(&read);
                }
            } else {
                return Err(de::Error::custom(
                    "an annotations map on the path of another",
                ));
            }
        }
        Ok(())
    }
}

/// A key of the map at a level: the path segment it is (as the location spells it) and the
/// locations whose path goes on through it, or `None` for a key off every path.
struct PathSegment<'s, 'l, 'm, 'de>(&'s MapsLevel<'l, 'm, 'de>);

impl<'de> DeserializeSeed<'de> for PathSegment<'_, '_, '_, '_> {
    type Value = Option<(&'static str, LocationSet)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for PathSegment<'_, '_, '_, '_> {
    type Value = Option<(&'static str, LocationSet)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let level = self.0;
        let mut deeper = NO_LOCATION;
        let mut segment = None;
        for (index, location) in level.locations.iter().enumerate() {
            if !level.active[index] {
                continue;
            }
            if let Some(&name) = location.path.get(level.depth).filter(|name| **name == key) {
                deeper[index] = true;
                segment = Some(name);
            }
        }
        Ok(segment.map(|segment| (segment, deeper)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A VirtualMachine's locations: its template, and its own metadata.
    const TEMPLATE: AnnotationLocation = AnnotationLocation {
        path: &["spec", "template", "metadata", "annotations"],
        effective: true,
    };
    const METADATA: AnnotationLocation = AnnotationLocation {
        path: &["metadata", "annotations"],
        effective: false,
    };
    const VM: &[AnnotationLocation] = &[TEMPLATE, METADATA];

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("valid JSON")
    }

    fn read_template(object: &str) -> Result<Option<String>, String> {
        read_annotations(&raw(object), &[TEMPLATE]).map(|values| values[0].clone())
    }

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
        let value = read_template(object).expect("readable");
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
        let error = read_template(object).expect_err("unreadable");
        assert!(error.contains(message), "{object}: {error}");
    }

    #[rstest]
    #[case(r#"{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"a"}},"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"b"}}}}}"#, [Some("b"), Some("a")])]
    #[case(r#"{"spec":{"template":{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"b"}}}},"metadata":{}}"#, [Some("b"), None])]
    #[case(r#"{"metadata":{"annotations":{"x":"y","hooks.kubevirt.io/hookSidecars":"a"}},"spec":{}}"#, [None, Some("a")])]
    #[case(r#"{"kind":"VirtualMachine","spec":{"running":false}}"#, [None, None])]
    fn reads_every_location_in_one_pass(#[case] object: &str, #[case] expected: [Option<&str>; 2]) {
        let values = read_annotations(&raw(object), VM).expect("readable");
        assert_eq!(
            values.iter().map(Option::as_deref).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn any_number_of_locations_is_answered_without_panic() {
        let object = raw(r#"{"metadata":{"annotations":{"hooks.kubevirt.io/hookSidecars":"[]"}}}"#);
        assert_eq!(read_annotations(&object, &[]), Ok(vec![]));
        let same_twice = vec![METADATA; MAX_LOCATIONS];
        assert_eq!(
            read_annotations(&object, &same_twice),
            Ok(vec![Some("[]".to_owned()); MAX_LOCATIONS])
        );
        let too_many = vec![METADATA; MAX_LOCATIONS + 1];
        assert!(read_annotations(&object, &too_many).is_err());
    }

    #[test]
    fn an_error_names_the_location_it_is_in() {
        let object = r#"{"metadata":{"annotations":[]},"spec":{"template":{}}}"#;
        let error = read_annotations(&raw(object), VM).expect_err("unreadable");
        assert!(
            error.starts_with("cannot read metadata.annotations: "),
            "{error}"
        );
    }

    #[test]
    fn profile_annotations_are_read_by_map_and_key() {
        let object = r#"{"metadata":{"annotations":{"a/b":"1","c/d":"2"}},"spec":{"template":{"metadata":{"annotations":{"a/b":"3"}}}}}"#;
        let read = ProfileAnnotations::read(&ObjectMaps::Raw(&raw(object)), VM, &["a/b", "c/d"])
            .expect("readable");
        assert_eq!(read.keys(), ["a/b", "c/d"]);
        assert_eq!(read.at(0).annotation("a/b"), Some("3"));
        assert_eq!(read.at(0).annotation("c/d"), None);
        assert_eq!(read.at(1).annotation("a/b"), Some("1"));
        assert_eq!(read.at(1).annotation("c/d"), Some("2"));
        assert_eq!(read.get(1, "e/f"), None, "a key not read");
        // Without keys, the object is not read again: not even an unreadable one.
        let nothing =
            ProfileAnnotations::read(&ObjectMaps::Raw(&raw("[]")), VM, &[]).expect("not read");
        assert!(nothing.keys().is_empty());
    }

    #[rstest]
    #[case(r#""abc""#, false)]
    #[case(r#""\u003c""#, true)]
    #[case(r#""\\u003c""#, false)]
    #[case(r#""\\\u003c""#, true)]
    #[case(r#""\"u""#, false)]
    fn unicode_escapes_are_told_from_escaped_backslashes(#[case] text: &str, #[case] escape: bool) {
        assert_eq!(has_unicode_escape(text), escape, "{text}");
    }
}
