//! What an extractor hands to the judge: each hook sidecar of a request, where it was found, and
//! how to tell whether an update left that place as it was.
//!
//! Two families of objects bring sidecars: the KubeVirt objects that carry the
//! `hooks.kubevirt.io/hookSidecars` annotation ([`crate::vm_carriers`]) and the virt-launcher Pods
//! that KubeVirt renders from it ([`crate::launcher_pod`]). Each turns what it reads into the
//! [`HookSidecar`]s below, grouped by [`Site`], so that one judge ([`crate::judge`]) and one verdict
//! ([`crate::verdict`]) serve both.

use crate::annotation_maps::ProfileAnnotations;

/// One hook sidecar, as KubeVirt runs it: no image (absent, `null` or `""` in the annotation) is
/// the sidecar-shim; an empty `command` is not set; `configMap` and `pvc` are set whenever the
/// object is there, even `{}` (Go decodes it to a non-nil pointer, and KubeVirt then uses it).
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

/// A user ConfigMap mounted in the sidecar, whose script KubeVirt runs as the hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMapSource {
    pub name: String,
    pub key: String,
    pub hook_path: String,
}

/// A user PVC mounted in the sidecar and, with `shared_compute_path`, in the compute container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PvcSource {
    pub name: String,
    pub volume_path: String,
    pub shared_compute_path: String,
}

impl PvcSource {
    /// Where the claim is mounted in the compute container too, if it is.
    pub fn shared_compute_path(&self) -> Option<&str> {
        Some(self.shared_compute_path.as_str()).filter(|path| !path.is_empty())
    }
}

/// What an absent image means where the sidecar was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOrigin {
    /// An entry of the annotation: no image is KubeVirt's sidecar-shim (`sidecarShimImage`).
    Annotation,
    /// A container KubeVirt rendered: the shim appears under its real name, so no image is a
    /// container without image, which nothing allows.
    Container,
}

/// One sidecar found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its index in the annotation's list; `None` for a container (its [`Site`] names it).
    pub entry: Option<usize>,
    pub sidecar: HookSidecar,
    pub origin: ImageOrigin,
    /// Reasons to reject it that the extractor saw, whatever the rules: mounts that KubeVirt
    /// never renders in a sidecar.
    pub problems: Vec<String>,
}

/// A place of the object that brings sidecars: an annotation location, a launcher-Pod container.
/// It is the unit of the update exemption: an UPDATE that leaves a site as it was is not rejected
/// for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// How messages name the place.
    pub place: String,
    /// Which annotation map of the object the sidecars read (an index into the family's maps,
    /// see [`Extraction::profile_annotations`]).
    pub annotation_map: usize,
    /// The sidecars found there, or why what is there cannot be read as sidecars.
    pub sidecars: Result<Vec<Found>, String>,
    /// What is worth saying about the place itself (a location KubeVirt never reads).
    pub warnings: Vec<String>,
}

impl Site {
    pub fn has_sidecars(&self) -> bool {
        self.sidecars.as_ref().is_ok_and(|found| !found.is_empty())
    }
}

/// What an extractor found in one request, and what it reads of the object once the rules are
/// known.
pub trait Extraction {
    fn sites(&self) -> &[Site];

    /// The values of `keys` in each of the object's annotation maps that sidecars read (those
    /// the profiles governing them constrain).
    fn profile_annotations(&self, keys: &[&str]) -> Result<ProfileAnnotations, String>;

    /// Whether the request is an UPDATE that leaves `site` as the old object had it: the same
    /// sidecars, and the same values of the annotations `keys` (those the site's profiles read;
    /// `now` holds their new values). An old object that cannot be read changed everything.
    fn is_unchanged(&self, site: usize, keys: &[&str], now: &ProfileAnnotations) -> bool;
}
