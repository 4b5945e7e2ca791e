//! The `kubernetes/get_resource` host capability answered from a real API server, as
//! policy-server's callback handler does (policy-evaluator, `callback_handler/kubernetes`): the
//! resource found by discovery of its apiVersion, a missing object answered with an error, and
//! successful answers cached for a few seconds. Here: the request, and the client with the
//! `cluster` feature.

use std::time::Duration;

use serde::{Deserialize, Serialize};

// The client of a real API server (kube-rs), behind the `cluster` feature: `make run` and the
// bats suite answer from sessions and need not compile it (CONTRIBUTING.md, build times).
#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "cluster")]
pub use cluster::ClusterClient;

/// policy-server's cache time for `get_resource` (`#[cached(time = 5)]` in policy-evaluator).
pub const POLICY_SERVER_CACHE_TIME: Duration = Duration::from_secs(5);

/// The guest's request, as the SDK serializes it (`GetResourceRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GetResourceRequest {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub disable_cache: bool,
    #[serde(default)]
    pub field_masks: Option<std::collections::BTreeSet<String>>,
}
