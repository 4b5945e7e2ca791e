//! The KubeVirt objects that carry the `hooks.kubevirt.io/hookSidecars` annotation to a VM (VMs,
//! VMIs, their replica sets and pools, instancetypes and preferences): where each kind carries
//! it, and the sidecars of each location, decoded as virt-controller decodes them.
//!
//! Each location is a [`Site`]: an UPDATE that leaves a location's annotation, and the annotations
//! its profiles read beside it, as they were is not rejected for it.

use std::cell::OnceCell;

use crate::annotation::{self, HOOK_SIDECARS_ANNOTATION};
use crate::annotation_maps::{AnnotationLocation, ObjectMaps, ProfileAnnotations};
use crate::sidecar::{Extraction, Found, ImageOrigin, Site};

const fn effective(path: &'static [&'static str]) -> AnnotationLocation {
    AnnotationLocation {
        path,
        effective: true,
    }
}

pub const VMI: &[AnnotationLocation] = &[effective(&["metadata", "annotations"])];
pub const VM: &[AnnotationLocation] = &[
    effective(&["spec", "template", "metadata", "annotations"]),
    AnnotationLocation {
        path: &["metadata", "annotations"],
        effective: false,
    },
];
pub const REPLICA_SET: &[AnnotationLocation] =
    &[effective(&["spec", "template", "metadata", "annotations"])];
pub const POOL: &[AnnotationLocation] = &[effective(&[
    "spec",
    "virtualMachineTemplate",
    "spec",
    "template",
    "metadata",
    "annotations",
])];
pub const INSTANCETYPE: &[AnnotationLocation] = &[effective(&["spec", "annotations"])];

/// A request's object, read at its kind's locations.
pub struct Carriers<'p> {
    object: ObjectMaps<'p>,
    /// The object before an UPDATE.
    old_object: Option<ObjectMaps<'p>>,
    locations: &'static [AnnotationLocation],
    /// The annotation's value at each location.
    values: Vec<Option<String>>,
    sites: Vec<Site>,
    /// What the old object has at each location, read when an UPDATE first needs it; `None`
    /// when it cannot be read.
    old: OnceCell<Option<(Vec<Option<String>>, ProfileAnnotations)>>,
}

/// Reads the annotation at every location of `object` (of a `kind` carried at `locations`) and
/// decodes it. The error rejects the request.
pub fn extract<'p>(
    kind: &str,
    operation: &str,
    object: Option<ObjectMaps<'p>>,
    old_object: Option<ObjectMaps<'p>>,
    locations: &'static [AnnotationLocation],
) -> Result<Carriers<'p>, String> {
    let Some(object) = object else {
        return Err(format!("the {operation} request has no object to check"));
    };
    let values = object.values(locations, &[HOOK_SIDECARS_ANNOTATION])?;
    let sites = locations
        .iter()
        .zip(&values)
        .enumerate()
        .filter_map(|(index, (location, value))| {
            Some(site(kind, index, location, value.as_deref()?))
        })
        .collect();
    Ok(Carriers {
        object,
        old_object: old_object.filter(|_| operation == "UPDATE"),
        locations,
        values,
        sites,
        old: OnceCell::new(),
    })
}

/// The sidecars of the annotation `value` at `location`.
fn site(kind: &str, index: usize, location: &AnnotationLocation, value: &str) -> Site {
    let sidecars = annotation::decode(value).map(|sidecars| {
        (sidecars.into_iter().enumerate())
            .map(|(entry, sidecar)| Found {
                entry: Some(entry),
                sidecar,
                origin: ImageOrigin::Annotation,
                problems: Vec::new(),
            })
            .collect()
    });
    let warnings = if location.effective {
        Vec::new()
    } else {
        vec![format!(
            "{location} has no effect on a {kind}: KubeVirt reads hook sidecars from \
             spec.template.metadata.annotations"
        )]
    };
    Site {
        place: location.to_string(),
        annotations: index,
        sidecars,
        warnings,
    }
}

impl Extraction for Carriers<'_> {
    fn sites(&self) -> &[Site] {
        &self.sites
    }

    fn read_annotations(&self, keys: &[&str]) -> Result<ProfileAnnotations, String> {
        ProfileAnnotations::read(&self.object, self.locations, keys)
    }

    fn is_unchanged(&self, site: usize, keys: &[&str], now: &ProfileAnnotations) -> bool {
        let Some(old_object) = &self.old_object else {
            return false;
        };
        let old = self.old.get_or_init(|| {
            let values = (old_object.values(self.locations, &[HOOK_SIDECARS_ANNOTATION])).ok()?;
            let read = ProfileAnnotations::read(old_object, self.locations, &now.keys()).ok()?;
            Some((values, read))
        });
        let Some((old_values, old_read)) = old else {
            return false;
        };
        let location = self.sites[site].annotations;
        let new = LocationFingerprint::of(&self.values, now, keys, location);
        LocationFingerprint::of(old_values, old_read, keys, location).is_unchanged_by(&new)
    }
}

/// What an UPDATE compares at one annotation location to tell whether it changed the sidecars
/// there. Anything that can change which containers KubeVirt runs from this location, or what
/// they are allowed, belongs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFingerprint<'a> {
    /// The hook-sidecar annotation's value, as written (`None` when absent).
    pub sidecars: Option<&'a str>,
    /// Every annotation that a profile governing these sidecars constrains, with its value
    /// beside the sidecar annotation (`None` when absent): the sidecar reads it again at the next
    /// start or migration.
    pub constrained: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> LocationFingerprint<'a> {
    fn of(
        values: &'a [Option<String>],
        read: &'a ProfileAnnotations,
        keys: &[&'a str],
        location: usize,
    ) -> Self {
        Self {
            sidecars: values.get(location).and_then(Option::as_deref),
            constrained: keys
                .iter()
                .map(|key| (*key, read.get(location, key)))
                .collect(),
        }
    }

    /// A location is unchanged when everything in its fingerprint is. A value moved from one
    /// location to another changes both, so the location it moved to is checked.
    pub fn is_unchanged_by(&self, new: &Self) -> bool {
        self == new
    }
}
