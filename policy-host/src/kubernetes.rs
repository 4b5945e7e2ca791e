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

/// Applies `field_masks` to an object's JSON as policy-evaluator 1.35 does
/// (`callback_handler/kubernetes/field_mask.rs`, applied to `DynamicObject::data`): `apiVersion`,
/// `kind` and `metadata` are always kept; of the rest, only the dot-separated paths the masks
/// name (a path through an array applies to every item; a mask ends where a value is not an
/// object). No masks, or none at all, leave the object whole.
pub fn apply_field_masks(
    object: &mut serde_json::Value,
    masks: &std::collections::BTreeSet<String>,
) {
    #[derive(Default)]
    struct Node(std::collections::BTreeMap<String, Node>);
    fn prune(value: &mut serde_json::Value, node: &Node) {
        if node.0.is_empty() {
            return;
        }
        match value {
            serde_json::Value::Object(map) => map.retain(|key, value| match node.0.get(key) {
                Some(child) => {
                    prune(value, child);
                    true
                }
                None => false,
            }),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|item| prune(item, node)),
            _ => {}
        }
    }
    let mut root = Node::default();
    for mask in masks {
        let mut node = &mut root;
        for part in mask.split('.') {
            node = node.0.entry(part.to_owned()).or_default();
        }
    }
    if root.0.is_empty() {
        return;
    }
    // DynamicObject keeps its type and metadata beside the pruned data.
    for kept in ["apiVersion", "kind", "metadata"] {
        root.0.entry(kept.to_owned()).or_default();
    }
    prune(object, &root);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masked(mut object: serde_json::Value, masks: &[&str]) -> serde_json::Value {
        let masks = masks.iter().map(|m| (*m).to_owned()).collect();
        apply_field_masks(&mut object, &masks);
        object
    }

    #[test]
    fn masks_keep_what_they_name_and_the_metadata() {
        let config_map = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "annotations": {"a": "b"}},
            "immutable": true,
            "data": {"hook": "x", "other": "y", "hook.sh": "z"},
        });
        assert_eq!(
            masked(
                config_map.clone(),
                &["immutable", "data.hook", "binaryData.hook"]
            ),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "annotations": {"a": "b"}}, "immutable": true, "data": {"hook": "x"}})
        );
        // A dot splits the path: `data.hook.sh` names `data` → `hook` → `sh`, and since
        // `data.hook` is a string the mask ends there: it keeps the key `hook`, not `hook.sh`
        // (why the policy asks for whole maps for a dotted key).
        assert_eq!(
            masked(config_map.clone(), &["data.hook.sh"])["data"],
            json!({"hook": "x"})
        );
        assert_eq!(masked(config_map.clone(), &[]), config_map);
        assert_eq!(
            masked(
                json!({"spec": {"containers": [{"image": "a", "name": "b"}]}}),
                &["spec.containers.image"]
            ),
            json!({"spec": {"containers": [{"image": "a"}]}})
        );
    }
}
