//! The virt-launcher Pod: the hook sidecars KubeVirt actually rendered, judged by the same rules
//! as the annotation they came from.
//!
//! The annotation check cannot see a sidecar whose image was revoked after its VM started (a live
//! migration renders the target Pod from the VMI's annotation without admitting the VMI), an
//! image swapped by a Pod UPDATE, or the sidecar-shim's real image name. The launcher Pod shows
//! all of them. What KubeVirt renders for each sidecar (`TemplateService.renderLaunchManifest` in
//! pkg/virt-controller/services/template.go, unchanged in substance from v1.4.1 to v1.8.4; the
//! names below are of v1.7.4):
//!
//! - one container per sidecar, named `hook-sidecar-<i>` (`sidecarContainerName`), in the order
//!   of the sidecar creators: the annotation's entries, then the network-binding plugins'
//!   (`renderLaunchManifest`'s loop over `t.sidecarCreators`, registered in that order by
//!   `VirtControllerApp.initCommon` in pkg/virt-controller/watch/application.go);
//! - its image, the sidecar-shim from virt-controller's `SIDECAR_SHIM_IMAGE` when empty, its
//!   `args`, and its `command` when set (`newSidecarContainerRenderer`);
//! - a mount of the `hook-sidecar-sockets` emptyDir (`sidecarVolumeMount`; the volume from
//!   `withSidecarVolumes` in rendervolumes.go), and for a network-binding plugin that asks for
//!   device info a mount of the `network-info-annotation` downward API volume
//!   (`newSidecarContainerRenderer`);
//! - for `configMap`, a volume named after the ConfigMap (mode 0755) mounted at `hookPath` with
//!   `SubPath` = key (`renderLaunchManifest`, `configMapVolumeMount`);
//! - for `pvc`, a volume named after the claim mounted at `volumePath` (`renderLaunchManifest`,
//!   `pvcVolumeMount`), and for `sharedComputePath` a mount of the same volume in the `compute`
//!   container, `containers[0]`.
//!
//! So each `hook-sidecar-*` container is turned back into the annotation entry it was rendered
//! from, a [`HookSidecar`], which the judge ([`crate::judge`]) judges as it judges the annotation's
//! entries. Each container is a [`Site`]: an UPDATE that leaves a container as it was is not
//! rejected for it. The Pod is read lazily: its labels first; the containers only for a launcher
//! Pod; the volumes only when it has sidecars.
//!
//! Every KubeVirt release from v1.4 to v1.9 renders these the same way (tests/kubevirt_versions.rs
//! renders them with each, docs/compatibility.md), but for two things the check accepts in both
//! forms: the socket mount has no `SubPath` in v1.4 and v1.5 (the sockets then sat directly in the
//! directory), and from v1.9 network-binding sidecars get a `NETWORK_BINDING_PLUGIN_NAME`
//! variable (environment variables are not read). The policy is not told the release: a cluster
//! being upgraded runs launcher Pods of two, and what differs brings no code into a sidecar.
//!
//! KubeVirt v1.9's Plugins (`Plugins` gate) add the `kubevirt-plugin-sockets` volume, mounted in
//! `compute`, and whatever containers the administrator's admission policy injects for a Plugin
//! (mounting that volume with a `SubPath`). Those containers are not hook sidecars and are not
//! judged here; what this check refuses is a container dressed as the other kind: a
//! `hook-sidecar-*` container that mounts the plugin socket volume, and a container of another name
//! (but `compute`) that mounts the hook socket volume, which virt-launcher would take for a hook
//! sidecar.

use std::cell::OnceCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::annotation_maps::{AnnotationLocation, ObjectMaps, ProfileAnnotations, RawAnnotations};
use crate::sidecar::{
    ConfigMapSource, Extraction, Found, HookSidecar, ImageOrigin, PvcSource, Site,
};

/// The label virt-controller puts on every launcher Pod, after copying the VMI's labels, so a VMI
/// cannot override it (`podLabels` in template.go, v1.7.4).
pub const LAUNCHER_LABEL_KEY: &str = "kubevirt.io";
pub const LAUNCHER_LABEL_VALUE: &str = "virt-launcher";
/// The name prefix of the containers KubeVirt renders for hook sidecars.
pub const SIDECAR_CONTAINER_PREFIX: &str = "hook-sidecar-";
/// Where virt-controller copies the VMI's annotations (all but `kubectl.kubernetes.io/*` and the
/// observed API versions; `generatePodAnnotations` in template.go, v1.7.4): what the profiles
/// governing a sidecar read, when they read annotations.
const POD_ANNOTATIONS: AnnotationLocation = AnnotationLocation {
    path: &["metadata", "annotations"],
    effective: true,
};
/// The launcher's own container, the only other one a sidecar's volume is mounted in.
const COMPUTE_CONTAINER: &str = "compute";
/// The emptyDir in which sidecars and the launcher exchange their sockets, and where sidecars
/// mount it (`HookSocketsSharedDirectory` in pkg/hooks/hooks.go, v1.7.4).
const SOCKETS_VOLUME: &str = "hook-sidecar-sockets";
const SOCKETS_PATH: &str = "/var/run/kubevirt-hooks";
/// The emptyDir of Plugin sockets, rendered when the `Plugins` gate is on (template.go v1.9.0,
/// `pluginSocketsVolumeName`, 77; mounted in `compute` at /var/run/kubevirt-plugin,
/// rendervolumes.go `withPluginSocketVolume`, 480-489).
const PLUGIN_SOCKETS_VOLUME: &str = "kubevirt-plugin-sockets";
/// The downward API volume of network-binding plugins that ask for device info, and where it is
/// mounted (`NetworkInfoVolumeName`, `MountPath` in pkg/network/downwardapi/networkinfo.go,
/// v1.7.4).
const NETWORK_INFO_VOLUME: &str = "network-info-annotation";
const NETWORK_INFO_PATH: &str = "/etc/podinfo";

/// One `hook-sidecar-*` container, as the annotation entry it was rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedSidecar {
    /// Its index in `spec.containers`.
    pub index: usize,
    pub container: String,
    pub sidecar: HookSidecar,
    /// Mounts KubeVirt never renders in a sidecar (with why), each a reason to reject.
    pub foreign_mounts: Vec<String>,
}

impl fmt::Display for RenderedSidecar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spec.containers[{}] {:?}", self.index, self.container)
    }
}

/// The hook sidecars of a launcher Pod, or `None` for a Pod without the launcher label.
pub type LauncherSidecars = Result<Option<Vec<RenderedSidecar>>, String>;

impl From<RenderedSidecar> for Site {
    fn from(rendered: RenderedSidecar) -> Self {
        let place = rendered.to_string();
        let found = Found {
            entry: None,
            sidecar: rendered.sidecar,
            origin: ImageOrigin::Container,
            problems: rendered.foreign_mounts,
        };
        Site {
            place,
            annotation_map: 0,
            sidecars: Ok(vec![found]),
            warnings: Vec::new(),
        }
    }
}

/// A launcher Pod with hook sidecars.
pub struct LauncherPod<'p> {
    object: PodObject<'p>,
    /// The Pod before an UPDATE.
    old_object: Option<PodObject<'p>>,
    /// One for each `hook-sidecar-*` container.
    sites: Vec<Site>,
    /// The containers the old Pod had, read when an UPDATE first needs them; none when it
    /// cannot be read.
    old: OnceCell<Vec<Site>>,
}

/// Reads a Pod request's Pod (`object`) and, for a launcher Pod with sidecars, turns its
/// containers into sites; `None` when there is nothing to judge. Any other Pod costs the reading
/// of its labels. The error rejects the request.
pub fn extract<'p>(
    operation: &str,
    object: Option<PodObject<'p>>,
    old_object: Option<PodObject<'p>>,
) -> Result<Option<LauncherPod<'p>>, String> {
    let Some(object) = object else {
        return Err(format!("the {operation} request has no Pod to check"));
    };
    let rendered = object
        .launcher_sidecars()
        .map_err(|e| format!("cannot read the Pod: {e}"))?;
    // An UPDATE is sent when the old or the new Pod matches the objectSelector. The old one is
    // read only when it matters: a label removed, or a sidecar that would be rejected now.
    let old_object = old_object.filter(|_| operation == "UPDATE");
    match rendered {
        Some(rendered) if rendered.is_empty() => Ok(None),
        Some(rendered) => Ok(Some(LauncherPod {
            object,
            old_object,
            sites: rendered.into_iter().map(Site::from).collect(),
            old: OnceCell::new(),
        })),
        None => {
            let old = old_object.map_or(Ok(None), |old| old.launcher_sidecars());
            check_label_kept(old).map(|()| None)
        }
    }
}

impl Extraction for LauncherPod<'_> {
    fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// KubeVirt copies the VMI's annotations onto the launcher Pod: every container reads them.
    fn profile_annotations(&self, keys: &[&str]) -> Result<ProfileAnnotations, String> {
        ProfileAnnotations::read(&self.object.annotation_maps(), &[POD_ANNOTATIONS], keys)
            .map_err(|e| format!("cannot read the Pod: {e}"))
    }

    /// A container is unchanged when the old Pod has the same container at the same place,
    /// mounts included.
    fn is_unchanged(&self, site: usize, _keys: &[&str], _now: &ProfileAnnotations) -> bool {
        let old = self.old.get_or_init(|| {
            let old = self.old_object.as_ref().map(PodObject::launcher_sidecars);
            let old = old.and_then(Result::ok).flatten().unwrap_or_default();
            old.into_iter().map(Site::from).collect()
        });
        old.contains(&self.sites[site])
    }
}

/// A Pod without the launcher label is accepted, unless the request takes the label away from a
/// launcher Pod with sidecars: its later updates would no longer match the objectSelector. The
/// error rejects the request.
fn check_label_kept(old_sidecars: LauncherSidecars) -> Result<(), String> {
    match old_sidecars {
        Ok(Some(old)) if !old.is_empty() => Err(format!(
            "the update removes the label {LAUNCHER_LABEL_KEY}={LAUNCHER_LABEL_VALUE} from a \
             launcher Pod with hook sidecars ({}): later updates of the Pod would no longer be \
             checked",
            old.iter()
                .map(|s| s.container.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot read the Pod before the update, so cannot tell whether the update removes \
             the label {LAUNCHER_LABEL_KEY}={LAUNCHER_LABEL_VALUE} from a launcher Pod: {e}"
        )),
    }
}

/// A Pod of the request: its raw JSON, or its head read in the payload's pass
/// ([`crate::payload`]).
#[derive(Debug)]
pub enum PodObject<'a> {
    Raw(&'a RawValue),
    Read(PodHead<'a>),
}

impl<'a> PodObject<'a> {
    /// The labels; for a launcher Pod, its hook-sidecar containers.
    fn launcher_sidecars(&self) -> LauncherSidecars {
        match self {
            Self::Raw(object) => read_launcher_sidecars(object),
            Self::Read(head) => {
                let metadata = head.metadata.as_ref();
                sidecars_of(metadata.is_some_and(|m| m.labels.0), head.spec)
            }
        }
    }

    /// Where the Pod's annotations are read from, as the map of [`POD_ANNOTATIONS`].
    fn annotation_maps(&self) -> ObjectMaps<'a> {
        match self {
            Self::Raw(object) => ObjectMaps::Raw(object),
            Self::Read(head) => ObjectMaps::Read(vec![
                head.metadata.as_ref().and_then(|m| m.annotations.clone()),
            ]),
        }
    }
}

/// Reads the labels of `object`; for a launcher Pod, its hook-sidecar containers.
pub fn read_launcher_sidecars(object: &RawValue) -> LauncherSidecars {
    let head: RawPodHead = serde_json::from_str(object.get()).map_err(|e| e.to_string())?;
    sidecars_of(head.metadata.is_some_and(|m| m.labels.0), head.spec)
}

/// The hook-sidecar containers of a Pod whose `spec` is given, if it is a launcher.
fn sidecars_of(is_launcher: bool, spec: Option<&RawValue>) -> LauncherSidecars {
    if !is_launcher {
        return Ok(None);
    }
    let Some(spec) = spec else {
        return Ok(Some(Vec::new()));
    };
    let spec: PodSpec =
        serde_json::from_str(spec.get()).map_err(|e| format!("cannot read spec: {e}"))?;
    let containers = spec.containers.unwrap_or_default();
    if !containers
        .iter()
        .any(|c| c.name.starts_with(SIDECAR_CONTAINER_PREFIX))
    {
        return Ok(Some(Vec::new()));
    }
    let volumes: Vec<Volume> = match spec.volumes {
        Some(volumes) => serde_json::from_str::<Option<Vec<Volume>>>(volumes.get())
            .map_err(|e| format!("cannot read spec.volumes: {e}"))?
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let compute = containers.iter().find(|c| c.name == COMPUTE_CONTAINER);
    Ok(Some(
        containers
            .iter()
            .enumerate()
            .filter_map(|(index, container)| {
                let role = ContainerRole::of(container);
                (role != ContainerRole::Other).then(|| {
                    let mut rendered = rebuild(index, container, &volumes, compute);
                    if role == ContainerRole::Impostor {
                        rendered.foreign_mounts.insert(0, impostor_reason());
                    }
                    rendered
                })
            })
            .collect(),
    ))
}

/// What a container of a launcher Pod is to this check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerRole {
    /// Named `hook-sidecar-*`: judged as the annotation entry it was rendered from.
    HookSidecar,
    /// Another container (but `compute`) that mounts the hook socket volume: virt-launcher takes
    /// whatever serves a socket there for a hook sidecar, and KubeVirt renders no such container.
    Impostor,
    /// `compute`, and what KubeVirt or the administrator's admission policies add (container
    /// disks, virtiofs, a Plugin's containers, ...): not a hook sidecar.
    Other,
}

impl ContainerRole {
    fn of(container: &Container) -> Self {
        if container.name.starts_with(SIDECAR_CONTAINER_PREFIX) {
            Self::HookSidecar
        } else if container.name != COMPUTE_CONTAINER
            && container
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == SOCKETS_VOLUME)
        {
            Self::Impostor
        } else {
            Self::Other
        }
    }
}

fn impostor_reason() -> String {
    format!(
        "mounts the hook socket volume {SOCKETS_VOLUME:?} but is not named \
         {SIDECAR_CONTAINER_PREFIX}<i>: virt-launcher would take it for a hook sidecar, and \
         KubeVirt mounts that volume only in {COMPUTE_CONTAINER:?} and its \
         {SIDECAR_CONTAINER_PREFIX}* containers"
    )
}

/// The annotation entry KubeVirt would have rendered `container` from.
fn rebuild(
    index: usize,
    container: &Container,
    volumes: &[Volume],
    compute: Option<&Container>,
) -> RenderedSidecar {
    let mut sidecar = HookSidecar {
        image: Some(container.image.clone().unwrap_or_default()),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        ..HookSidecar::default()
    };
    let mut foreign_mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else {
            foreign_mounts.push(format!(
                "mounts the volume {:?}, which the Pod does not define",
                mount.name
            ));
            continue;
        };
        match volume.source() {
            VolumeSource::Sockets if mount.mount_path == SOCKETS_PATH => {}
            VolumeSource::NetworkInfo if mount.mount_path == NETWORK_INFO_PATH => {}
            VolumeSource::ConfigMap(name) if sidecar.config_map.is_none() => {
                let key = mount.sub_path.clone().unwrap_or_default();
                // With `items`, the file at `subPath` holds whichever key is mapped to that path,
                // so the script judged (by key) need not be the one mounted.
                if volume
                    .config_map
                    .as_ref()
                    .is_some_and(|c| c.items.is_some())
                {
                    foreign_mounts.push(format!(
                        "mounts the ConfigMap volume {:?}, which maps keys to other paths \
                         (items): KubeVirt renders none, and the file at subPath {key:?} need \
                         not be that key",
                        mount.name
                    ));
                }
                sidecar.config_map = Some(ConfigMapSource {
                    name: name.to_owned(),
                    key,
                    hook_path: mount.mount_path.clone(),
                });
            }
            VolumeSource::Pvc(claim) if sidecar.pvc.is_none() => {
                let shared_compute_path = compute
                    .and_then(|c| {
                        c.volume_mounts
                            .iter()
                            .flatten()
                            .find(|m| m.name == volume.name)
                    })
                    .map(|m| m.mount_path.clone())
                    .unwrap_or_default();
                sidecar.pvc = Some(PvcSource {
                    name: claim.to_owned(),
                    volume_path: mount.mount_path.clone(),
                    shared_compute_path,
                });
            }
            VolumeSource::PluginSockets => foreign_mounts.push(format!(
                "mounts the volume {:?} (the Plugin socket directory) at {:?}: KubeVirt mounts it \
                 only in {COMPUTE_CONTAINER:?}, and a Plugin's containers must not be named \
                 {SIDECAR_CONTAINER_PREFIX}*",
                mount.name, mount.mount_path
            )),
            source => foreign_mounts.push(format!(
                "mounts the volume {:?} ({source}) at {:?}: KubeVirt renders no such mount in a \
                 hook sidecar",
                mount.name, mount.mount_path
            )),
        }
    }
    RenderedSidecar {
        index,
        container: container.name.clone(),
        sidecar,
        foreign_mounts,
    }
}

/// What the policy reads of a Pod before it knows whether the Pod is a launcher: the labels, and
/// `spec` kept as raw JSON. Other keys are skipped without being decoded.
#[derive(Deserialize)]
struct RawPodHead<'a> {
    #[serde(default)]
    metadata: Option<MetadataHead>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetadataHead {
    #[serde(default)]
    labels: LauncherLabel,
}

/// What the payload's pass reads of a Pod: what [`RawPodHead`] reads, and the annotations map in
/// full (see [`RawAnnotations`]), which the profiles may read once the rules are known.
#[derive(Debug, Deserialize)]
pub struct PodHead<'a> {
    #[serde(borrow, default)]
    metadata: Option<PodMetadata<'a>>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct PodMetadata<'a> {
    #[serde(default)]
    labels: LauncherLabel,
    #[serde(borrow, default)]
    annotations: Option<RawAnnotations<'a>>,
}

/// Whether the labels hold `kubevirt.io: virt-launcher`; no other label is allocated.
#[derive(Debug, Default)]
struct LauncherLabel(bool);

impl<'de> Deserialize<'de> for LauncherLabel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(LauncherLabelVisitor)
    }
}

struct LauncherLabelVisitor;

impl<'de> Visitor<'de> for LauncherLabelVisitor {
    type Value = LauncherLabel;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of labels")
    }

    fn visit_none<E: de::Error>(self) -> Result<LauncherLabel, E> {
        Ok(LauncherLabel(false))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<LauncherLabel, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LauncherLabel, A::Error> {
        let mut value = None;
        while let Some(is_launcher_key) = map.next_key_seed(KeyIs(LAUNCHER_LABEL_KEY))? {
            if !is_launcher_key {
                map.next_value::<IgnoredAny>()?;
            } else if value.is_some() {
                return Err(de::Error::custom(format!(
                    "metadata.labels has the key {LAUNCHER_LABEL_KEY:?} twice"
                )));
            } else {
                value = Some(map.next_value::<String>()?);
            }
        }
        Ok(LauncherLabel(
            value.as_deref() == Some(LAUNCHER_LABEL_VALUE),
        ))
    }
}

/// Compares a map key with one string without allocating it.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The part of a launcher Pod's spec that is read; volumes only when there are sidecars.
#[derive(Deserialize)]
struct PodSpec<'a> {
    #[serde(default)]
    containers: Option<Vec<Container>>,
    #[serde(borrow, default)]
    volumes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    volume_mounts: Option<Vec<VolumeMount>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
    #[serde(default)]
    sub_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    #[serde(default)]
    config_map: Option<ConfigMapVolume>,
    #[serde(default)]
    persistent_volume_claim: Option<PvcVolume>,
    #[serde(default)]
    empty_dir: Option<IgnoredAny>,
    #[serde(default, rename = "downwardAPI")]
    downward_api: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ConfigMapVolume {
    #[serde(default)]
    name: String,
    #[serde(default)]
    items: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PvcVolume {
    #[serde(default)]
    claim_name: String,
}

/// The kinds of volume a hook-sidecar container can mount.
enum VolumeSource<'v> {
    /// The socket directory shared with the launcher.
    Sockets,
    /// The socket directory of Plugins (v1.9).
    PluginSockets,
    /// Pod metadata, for network-binding plugins that ask for device info.
    NetworkInfo,
    DownwardApi,
    ConfigMap(&'v str),
    Pvc(&'v str),
    EmptyDir,
    Other,
}

impl fmt::Display for VolumeSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sockets => f.write_str("the hook socket directory"),
            Self::PluginSockets => f.write_str("the Plugin socket directory"),
            Self::NetworkInfo => f.write_str("the network-info downward API volume"),
            Self::DownwardApi => f.write_str("a downward API volume"),
            Self::ConfigMap(name) => write!(f, "a second ConfigMap volume, of {name:?}"),
            Self::Pvc(claim) => write!(f, "a second PVC volume, of {claim:?}"),
            Self::EmptyDir => f.write_str("an emptyDir volume"),
            Self::Other => f.write_str("neither a ConfigMap nor a PVC volume"),
        }
    }
}

impl Volume {
    fn source(&self) -> VolumeSource<'_> {
        match self {
            Volume {
                config_map: Some(config_map),
                ..
            } => VolumeSource::ConfigMap(&config_map.name),
            Volume {
                persistent_volume_claim: Some(pvc),
                ..
            } => VolumeSource::Pvc(&pvc.claim_name),
            Volume {
                empty_dir: Some(_), ..
            } if self.name == SOCKETS_VOLUME => VolumeSource::Sockets,
            Volume {
                empty_dir: Some(_), ..
            } if self.name == PLUGIN_SOCKETS_VOLUME => VolumeSource::PluginSockets,
            Volume {
                empty_dir: Some(_), ..
            } => VolumeSource::EmptyDir,
            Volume {
                downward_api: Some(_),
                ..
            } if self.name == NETWORK_INFO_VOLUME => VolumeSource::NetworkInfo,
            Volume {
                downward_api: Some(_),
                ..
            } => VolumeSource::DownwardApi,
            _ => VolumeSource::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{self, HOOK_SIDECARS_ANNOTATION};
    use crate::test_support::{assert_rejected, evaluate, fixture};
    use crate::verdict::Verdict;
    use rstest::rstest;
    use serde_json::{Value, json};

    const GPU_HOOK: &str = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0";
    /// What test_data/generate.py gives the renderer as SIDECAR_SHIM_IMAGE.
    const SHIM: &str = "quay.io/kubevirt/sidecar-shim:v1.7.0";
    const BINDING: &str = "registry.example.com/network/device-info-binding:v1.0.0";
    const ATTACKER: &str = "docker.io/attacker/qemu-hook:latest";

    fn container_mut<'a>(request: &'a mut Value, name: &str) -> &'a mut Value {
        request["object"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .iter_mut()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    fn sidecars_of(request: &Value) -> Vec<RenderedSidecar> {
        let object = serde_json::to_string(&request["object"]).expect("serializable");
        let raw = RawValue::from_string(object).expect("JSON");
        read_launcher_sidecars(&raw)
            .expect("readable")
            .expect("a launcher Pod")
    }

    #[rstest]
    #[case::gpu_hook("gpu-hook", json!({"allowedImages": [GPU_HOOK]}))]
    #[case::shim_by_its_real_name("shim-configmap", json!({"allowedImages": [SHIM], "allowConfigMap": true}))]
    #[case::command("command", json!({"allowedImages": [GPU_HOOK], "allowCommand": true}))]
    #[case::pvc_shared("pvc-shared", json!({"allowedImages": [GPU_HOOK], "allowPVC": true, "allowSharedComputePath": true}))]
    #[case::network_binding("network-binding", json!({"allowedImages": [GPU_HOOK, BINDING]}))]
    #[case::no_sidecar("no-sidecar", json!({}))]
    fn rendered_pods_allowed(#[case] name: &str, #[case] settings: Value) {
        let request = fixture(&format!("launcher-pod-create-{name}"));
        assert_eq!(evaluate(&request, &settings), Verdict::default());
    }

    #[rstest]
    #[case::image("gpu-hook", json!({}), &["spec.containers[1] \"hook-sidecar-0\": image \"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0\" (registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0) is not in allowedImages"])]
    #[case::shim_not_listed("shim-configmap", json!({"allowedImages": [GPU_HOOK], "allowConfigMap": true}), &["image \"quay.io/kubevirt/sidecar-shim:v1.7.0\" (quay.io/kubevirt/sidecar-shim:v1.7.0) is not in allowedImages"])]
    #[case::shim_setting_plays_no_part("shim-configmap", json!({"sidecarShimImage": SHIM, "allowConfigMap": true}), &["is not in allowedImages"])]
    #[case::config_map("shim-configmap", json!({"allowedImages": [SHIM]}), &["configMap \"gpu-vm-hooks\" mounts a user script at \"/usr/bin/onDefineDomain\", and allowConfigMap is false"])]
    #[case::command("command", json!({"allowedImages": [GPU_HOOK]}), &["command [\"/usr/bin/qemu-commandline-hook\", \"--debug\"] replaces the image's entrypoint, and allowCommand is false"])]
    #[case::pvc("pvc-shared", json!({"allowedImages": [GPU_HOOK]}), &["pvc \"gpu-vm-efivars\" mounts user data in the sidecar, and allowPVC is false", "allowSharedComputePath is false"])]
    #[case::compute_mount("pvc-shared", json!({"allowedImages": [GPU_HOOK], "allowPVC": true}), &["pvc.sharedComputePath \"/var/run/kubevirt-private/efivars\" mounts user data in the compute container, and allowSharedComputePath is false"])]
    #[case::network_binding("network-binding", json!({"allowedImages": [GPU_HOOK]}), &["\"hook-sidecar-1\": image \"registry.example.com/network/device-info-binding:v1.0.0\""])]
    fn rendered_pods_rejected(
        #[case] name: &str,
        #[case] settings: Value,
        #[case] fragments: &[&str],
    ) {
        let request = fixture(&format!("launcher-pod-create-{name}"));
        let verdict = evaluate(&request, &settings);
        assert_rejected(&verdict, fragments);
        assert!(verdict.warnings.is_empty(), "{verdict:?}");
    }

    const ARGS_KEY: &str = "qemu-commandline.hooks.example.com/args";

    /// Profiles apply to Pods as to annotations, reading the annotations KubeVirt copied from the
    /// VMI onto the Pod.
    #[rstest]
    #[case::satisfied(json!([["--version", "v1alpha3"]]), "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+", None)]
    #[case::args(json!([["--version", "v1alpha2"]]), ".*", Some("args[1] \"v1alpha3\" does not match \"v1alpha2\""))]
    #[case::annotation(json!([["--version", "v1alpha3"]]), "-S", Some("annotation \"qemu-commandline.hooks.example.com/args\""))]
    fn profiles_apply_to_pods(
        #[case] args: Value,
        #[case] pattern: &str,
        #[case] rejection: Option<&str>,
    ) {
        let settings = json!({
            "allowedImages": [GPU_HOOK],
            "sidecarProfiles": [{"image": GPU_HOOK, "args": args, "annotations": {ARGS_KEY: pattern}}],
        });
        let verdict = evaluate(&fixture("launcher-pod-create-gpu-hook"), &settings);
        match rejection {
            None => assert_eq!(verdict, Verdict::default()),
            Some(fragment) => assert_rejected(
                &verdict,
                &["\"hook-sidecar-0\": sidecarProfiles[0]", fragment],
            ),
        }
    }

    /// Each rendered container turns back into the entry of the annotation it was rendered from
    /// (which KubeVirt copies onto the Pod), the image aside where KubeVirt put in the shim.
    #[rstest]
    #[case("gpu-hook")]
    #[case("shim-configmap")]
    #[case("command")]
    #[case("pvc-shared")]
    #[case("network-binding")]
    fn containers_are_the_annotation_entries(#[case] name: &str) {
        let request = fixture(&format!("launcher-pod-create-{name}"));
        let value = request["object"]["metadata"]["annotations"][HOOK_SIDECARS_ANNOTATION]
            .as_str()
            .expect("KubeVirt copies the VMI's annotations onto the Pod");
        let entries = annotation::decode(value).expect("decodable");
        let rendered = sidecars_of(&request);
        assert!(rendered.len() >= entries.len());
        for (index, (entry, rendered)) in entries.iter().zip(&rendered).enumerate() {
            assert_eq!(rendered.container, format!("hook-sidecar-{index}"));
            assert!(rendered.foreign_mounts.is_empty(), "{rendered:?}");
            let expected = HookSidecar {
                image: Some(entry.explicit_image().unwrap_or(SHIM).to_owned()),
                image_pull_policy: None,
                ..entry.clone()
            };
            assert_eq!(rendered.sidecar, expected);
        }
    }

    #[rstest]
    #[case::no_labels(fixture("pod-create"))]
    #[case::other_labels({
        let mut request = fixture("launcher-pod-create-gpu-hook");
        request["object"]["metadata"]["labels"] = json!({"kubevirt.io": "virt-handler", "app": "x"});
        request
    })]
    #[case::null_labels({
        let mut request = fixture("launcher-pod-create-gpu-hook");
        request["object"]["metadata"]["labels"] = Value::Null;
        request
    })]
    // The spec of a Pod that is not a launcher is not decoded at all.
    #[case::unreadable_spec_of_another_pod({
        let mut request = fixture("pod-create");
        request["object"]["spec"] = json!({"containers": 5});
        request
    })]
    fn other_pods_accepted(#[case] request: Value) {
        assert_eq!(evaluate(&request, &json!({})), Verdict::default());
    }

    #[rstest]
    #[case::containers_not_a_list(json!({"containers": 5}), "cannot read the Pod: cannot read spec")]
    #[case::volumes_not_a_list(json!({"containers": [{"name": "hook-sidecar-0", "image": GPU_HOOK}], "volumes": {}}), "cannot read spec.volumes")]
    #[case::nameless_container(json!({"containers": [{"image": GPU_HOOK}]}), "missing field `name`")]
    fn unreadable_launcher_pods_rejected(#[case] spec: Value, #[case] fragment: &str) {
        let mut request = fixture("launcher-pod-create-gpu-hook");
        request["object"]["spec"] = spec;
        assert_rejected(
            &evaluate(&request, &json!({"allowedImages": [GPU_HOOK]})),
            &[fragment],
        );
    }

    #[rstest]
    #[case::host_path(json!({"name": "host", "hostPath": {"path": "/"}}), "/host", "mounts the volume \"host\" (neither a ConfigMap nor a PVC volume) at \"/host\": KubeVirt renders no such mount")]
    #[case::empty_dir(json!({"name": "scratch", "emptyDir": {}}), "/usr/bin", "(an emptyDir volume) at \"/usr/bin\"")]
    #[case::sockets_elsewhere(json!(null), "/usr/bin", "mounts the volume \"hook-sidecar-sockets\" (the hook socket directory) at \"/usr/bin\"")]
    #[case::undefined(json!({"name": "elsewhere"}), "/x", "")]
    fn mounts_kubevirt_never_renders_rejected(
        #[case] volume: Value,
        #[case] path: &str,
        #[case] fragment: &str,
    ) {
        let mut request = fixture("launcher-pod-create-gpu-hook");
        let name = volume["name"]
            .as_str()
            .unwrap_or("hook-sidecar-sockets")
            .to_owned();
        if volume["name"] == "elsewhere" {
            // A mount of a volume the Pod does not define.
        } else if !volume.is_null() {
            request["object"]["spec"]["volumes"]
                .as_array_mut()
                .expect("volumes")
                .push(volume);
        }
        container_mut(&mut request, "hook-sidecar-0")["volumeMounts"]
            .as_array_mut()
            .expect("mounts")
            .push(json!({"name": name, "mountPath": path}));
        let fragment = if fragment.is_empty() {
            "mounts the volume \"elsewhere\", which the Pod does not define"
        } else {
            fragment
        };
        assert_rejected(
            &evaluate(&request, &json!({"allowedImages": [GPU_HOOK]})),
            &[fragment],
        );
    }

    /// KubeVirt v1.9's Plugins: the plugin socket volume mounted in `compute`, and a container
    /// the administrator's admission policy adds for a Plugin (test_data/generate.py,
    /// `plugin_container`).
    fn with_plugin(mut request: Value, container: Value) -> Value {
        request["object"]["spec"]["volumes"]
            .as_array_mut()
            .expect("volumes")
            .push(json!({"name": "kubevirt-plugin-sockets", "emptyDir": {}}));
        container_mut(&mut request, "compute")["volumeMounts"]
            .as_array_mut()
            .expect("mounts")
            .push(
                json!({"name": "kubevirt-plugin-sockets", "mountPath": "/var/run/kubevirt-plugin"}),
            );
        request["object"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(container);
        request
    }

    /// A container mounting `volume` where its kind of sidecar would: the plugin socket volume
    /// at the Plugin's directory, the hook socket volume at virt-launcher's.
    fn plugin_container(name: &str, volume: &str) -> Value {
        let path = match volume {
            "hook-sidecar-sockets" => "/var/run/kubevirt-hooks",
            _ => "/var/run/kubevirt-plugin/smbios/",
        };
        json!({"name": name, "image": ATTACKER, "volumeMounts": [
            {"name": volume, "mountPath": path, "subPath": "smbios"}]})
    }

    #[test]
    fn a_plugins_container_is_not_a_hook_sidecar() {
        let request = with_plugin(
            fixture("launcher-pod-create-gpu-hook"),
            plugin_container("plugin-sidecar-smbios", "kubevirt-plugin-sockets"),
        );
        let verdict = evaluate(&request, &json!({"allowedImages": [GPU_HOOK]}));
        assert_eq!(verdict, Verdict::default());
        let rendered = sidecars_of(&request);
        assert_eq!(rendered.len(), 1, "{rendered:?}");
        assert_eq!(rendered[0].container, "hook-sidecar-0");
        // Judged on the hook sidecar alone.
        let verdict = evaluate(&request, &json!({}));
        assert_rejected(&verdict, &["\"hook-sidecar-0\": image"]);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
    }

    #[rstest]
    // A Plugin's container named like a hook sidecar.
    #[case::named_hook_sidecar(
        plugin_container("hook-sidecar-9", "kubevirt-plugin-sockets"),
        "spec.containers[2] \"hook-sidecar-9\": mounts the volume \"kubevirt-plugin-sockets\" (the Plugin socket directory) at \"/var/run/kubevirt-plugin/smbios/\": KubeVirt mounts it only in \"compute\", and a Plugin's containers must not be named hook-sidecar-*"
    )]
    // A container of another name serving a socket where virt-launcher looks for hook sidecars.
    #[case::mounting_the_hook_sockets(
        plugin_container("plugin-sidecar-smbios", "hook-sidecar-sockets"),
        "spec.containers[2] \"plugin-sidecar-smbios\": mounts the hook socket volume \"hook-sidecar-sockets\" but is not named hook-sidecar-<i>: virt-launcher would take it for a hook sidecar"
    )]
    fn containers_dressed_as_the_other_kind_are_refused(
        #[case] container: Value,
        #[case] fragment: &str,
    ) {
        let request = with_plugin(fixture("launcher-pod-create-gpu-hook"), container);
        // Whatever the image: the image of the impostor is allowed too.
        let verdict = evaluate(&request, &json!({"allowedImages": [GPU_HOOK, ATTACKER]}));
        assert_rejected(&verdict, &[fragment]);
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
    }

    #[test]
    fn a_hook_sidecar_mounting_the_plugin_sockets_is_refused() {
        let mut request = with_plugin(
            fixture("launcher-pod-create-gpu-hook"),
            plugin_container("plugin-sidecar-smbios", "kubevirt-plugin-sockets"),
        );
        container_mut(&mut request, "hook-sidecar-0")["volumeMounts"]
            .as_array_mut()
            .expect("mounts")
            .push(json!({"name": "kubevirt-plugin-sockets", "mountPath": "/var/run/kubevirt-plugin/smbios/", "subPath": "smbios"}));
        assert_rejected(
            &evaluate(&request, &json!({"allowedImages": [GPU_HOOK]})),
            &[
                "\"hook-sidecar-0\": mounts the volume \"kubevirt-plugin-sockets\" (the Plugin socket directory)",
            ],
        );
    }

    #[test]
    fn a_second_config_map_is_not_what_kubevirt_renders() {
        let mut request = fixture("launcher-pod-create-shim-configmap");
        request["object"]["spec"]["volumes"]
            .as_array_mut()
            .expect("volumes")
            .push(json!({"name": "more", "configMap": {"name": "more"}}));
        container_mut(&mut request, "hook-sidecar-0")["volumeMounts"]
            .as_array_mut()
            .expect("mounts")
            .push(json!({"name": "more", "mountPath": "/usr/bin/preCloudInitIso", "subPath": "x"}));
        let settings = json!({"allowedImages": [SHIM], "allowConfigMap": true});
        assert_rejected(
            &evaluate(&request, &settings),
            &["a second ConfigMap volume, of \"more\""],
        );
    }

    #[rstest]
    #[case::image_swapped("launcher-pod-update-image-swap", json!({"allowedImages": [GPU_HOOK]}), Err(format!("\"hook-sidecar-0\": image \"{ATTACKER}\" ({ATTACKER}) is not in allowedImages")))]
    #[case::image_swapped_to_an_allowed_one("launcher-pod-update-image-swap", json!({"allowedImages": [GPU_HOOK, ATTACKER]}), Ok(0))]
    #[case::unchanged_and_allowed("launcher-pod-update-unchanged", json!({"allowedImages": [GPU_HOOK]}), Ok(0))]
    #[case::unchanged_but_revoked("launcher-pod-update-unchanged", json!({}), Ok(1))]
    #[case::label_removed("launcher-pod-update-removes-label", json!({"allowedImages": [GPU_HOOK]}), Err("removes the label kubevirt.io=virt-launcher from a launcher Pod with hook sidecars (hook-sidecar-0)".to_owned()))]
    fn updates(
        #[case] name: &str,
        #[case] settings: Value,
        #[case] expected: Result<usize, String>,
    ) {
        let verdict = evaluate(&fixture(name), &settings);
        match expected {
            Ok(warnings) => {
                assert!(verdict.violations.is_empty(), "{verdict:?}");
                assert_eq!(verdict.warnings.len(), warnings, "{verdict:?}");
                if warnings > 0 {
                    assert!(
                        verdict.warnings[0]
                            .contains("\"hook-sidecar-0\" is unchanged by this update")
                    );
                    assert!(verdict.warnings[0].contains("is not in allowedImages"));
                }
            }
            Err(fragment) => assert_rejected(&verdict, &[&fragment]),
        }
    }

    /// The unchanged-container exemption is per container: an UPDATE that changes one sidecar
    /// and leaves a revoked one alone is judged on the change.
    #[test]
    fn only_unchanged_containers_are_exempt() {
        let mut request = fixture("launcher-pod-update-unchanged");
        request["oldObject"] = fixture("launcher-pod-create-network-binding")["object"].clone();
        request["object"] = request["oldObject"].clone();
        container_mut(&mut request, "hook-sidecar-1")["image"] = json!(ATTACKER);
        let verdict = evaluate(&request, &json!({"allowedImages": [BINDING]}));
        assert_rejected(
            &verdict,
            &["\"hook-sidecar-1\": image \"docker.io/attacker/qemu-hook:latest\""],
        );
        assert_eq!(verdict.violations.len(), 1, "{verdict:?}");
        assert_eq!(verdict.warnings.len(), 1, "{verdict:?}");
        assert!(verdict.warnings[0].contains("\"hook-sidecar-0\" is unchanged"));
    }

    #[test]
    fn a_launcher_without_sidecars_may_lose_its_label() {
        let mut request = fixture("launcher-pod-update-removes-label");
        let old = fixture("launcher-pod-create-no-sidecar")["object"].clone();
        let mut new = old.clone();
        new["metadata"]["labels"]
            .as_object_mut()
            .expect("labels")
            .remove(LAUNCHER_LABEL_KEY);
        (request["oldObject"], request["object"]) = (old, new);
        assert_eq!(evaluate(&request, &json!({})), Verdict::default());
    }

    #[rstest]
    #[case::unknown_key(json!({"allowedImage": [GPU_HOOK]}), "unknown field `allowedImage`")]
    #[case::bad_shim(json!({"allowedImages": [GPU_HOOK], "sidecarShimImage": "shim:*"}), "sidecarShimImage")]
    // As for the annotation, an entry is parsed only when a sidecar's image could match it.
    #[case::entry_of_the_sidecars_registry(
        json!({"allowedImages": ["registry.example.com/*/x", GPU_HOOK]}),
        "allowedImages[0] \"registry.example.com/*/x\""
    )]
    fn invalid_settings_reject_only_launcher_pods_with_sidecars(
        #[case] settings: Value,
        #[case] culprit: &str,
    ) {
        assert_rejected(
            &evaluate(&fixture("launcher-pod-create-gpu-hook"), &settings),
            &["invalid policy settings", culprit],
        );
        assert_eq!(
            evaluate(&fixture("pod-create"), &settings),
            Verdict::default()
        );
    }

    #[test]
    fn a_duplicated_launcher_label_is_rejected() {
        let text = r#"{"metadata":{"labels":{"kubevirt.io":"virt-launcher","kubevirt.io":"x"}}}"#;
        let raw = RawValue::from_string(text.to_owned()).expect("JSON");
        let error = read_launcher_sidecars(&raw).expect_err("ambiguous");
        assert!(error.contains("twice"), "{error}");
    }
}
