//! The API objects the job touches, reduced to the fields it reads.
//!
//! Each is a plain struct with the real group, version, kind and scope; unknown fields are ignored
//! on read, and writes never send a whole object back (server-side apply or a merge patch of the
//! one field), so nothing the job does not model can be lost.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::TypeMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! api_resource {
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal, $scope:ty) => {
        impl k8s_openapi::Resource for $type {
            const API_VERSION: &'static str = concat!($group, "/", $version);
            const GROUP: &'static str = $group;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = $scope;
        }

        impl k8s_openapi::Metadata for $type {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A Harvester `Setting`: `default` and `value` are top-level strings, not under `spec`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Setting {
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub types: Option<TypeMeta>,
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Not a subresource in Harvester's CRD: written with the object itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SettingStatus>,
}
api_resource!(
    Setting,
    "harvesterhci.io",
    "v1beta1",
    "Setting",
    "settings",
    k8s_openapi::ClusterResourceScope
);

impl Setting {
    /// A new Setting with `default` set, as Harvester creates its settings, and `value` when
    /// given (an empty `value` is left out).
    pub fn new(name: &str, default: &str, value: &str) -> Self {
        Self {
            types: Some(TypeMeta::resource::<Self>()),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            default: Some(default.to_owned()),
            value: (!value.is_empty()).then(|| value.to_owned()),
            status: None,
        }
    }

    /// The conditions of `status`, as JSON: those of other writers are kept as they are.
    pub fn conditions(&self) -> &[Value] {
        self.status
            .as_ref()
            .map_or(&[], |status| status.conditions.as_slice())
    }
}

/// Harvester's `SettingStatus`: wrangler conditions (`type`, `status`, `reason`, `message`,
/// `lastUpdateTime`, `lastTransitionTime`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SettingStatus {
    #[serde(default)]
    pub conditions: Vec<Value>,
}

/// A Kubewarden `ClusterAdmissionPolicy`; only `spec.settings` is read.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClusterAdmissionPolicy {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PolicySpec,
    /// Written by the Kubewarden controller; the feature gate waits for `policyStatus: active`.
    #[serde(default)]
    pub status: Option<PolicyStatus>,
}
api_resource!(
    ClusterAdmissionPolicy,
    "policies.kubewarden.io",
    "v1",
    "ClusterAdmissionPolicy",
    "clusteradmissionpolicies",
    k8s_openapi::ClusterResourceScope
);

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Free-form in the CRD (`x-kubernetes-preserve-unknown-fields`); `null` when absent.
    #[serde(default)]
    pub settings: Value,
    /// `protect` or `monitor`; the CRD defaults it to `protect`, so the API server always
    /// returns one.
    #[serde(default)]
    pub mode: Option<String>,
    /// The PolicyServer that serves the policy: its ConfigMap holds the settings of every policy
    /// bound to it (the size bound, `policy_server_config`).
    #[serde(default)]
    pub policy_server: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// `unscheduled`, `scheduled`, `pending` or `active`.
    #[serde(default)]
    pub policy_status: Option<String>,
    /// The mode the controller wrote into the PolicyServer's configuration for this policy
    /// (`protect`, `monitor` or `unknown`): `setPolicyModeStatus` in kubewarden-controller's
    /// internal/controller/policy_subreconciler.go (v1.35.0) copies it from the policies
    /// ConfigMap, so it says what policy-server is configured to do, not only what was asked.
    #[serde(default)]
    pub mode: Option<String>,
}

/// Rancher's `ManagedChart` (`harvester` in `fleet-local` renders Harvester's KubeVirt CR);
/// `spec` is kept as JSON, only `spec.values` is read.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ManagedChart {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
}
api_resource!(
    ManagedChart,
    "management.cattle.io",
    "v3",
    "ManagedChart",
    "managedcharts",
    k8s_openapi::NamespaceResourceScope
);

/// KubeVirt's `KubeVirt` CR; `spec` is kept as JSON, only the feature gates are read.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct KubeVirt {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
}
api_resource!(
    KubeVirt,
    "kubevirt.io",
    "v1",
    "KubeVirt",
    "kubevirts",
    k8s_openapi::NamespaceResourceScope
);

impl KubeVirt {
    /// `spec.configuration.developerConfiguration.featureGates`; entries that are not strings are
    /// kept as they are by the patch (see `feature_gate`), so they are returned as JSON.
    pub fn feature_gates(&self) -> &[Value] {
        self.spec
            .pointer("/configuration/developerConfiguration/featureGates")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
}
