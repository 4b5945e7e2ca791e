//! The bound Kubewarden can store: before writing a list, the job renders the ConfigMap that
//! kubewarden-controller would write for each PolicyServer the list goes to
//! ([`crate::policy_server_config`]) with the list in every kept policy bound to it, and refuses
//! the list for those policies when that ConfigMap would be over Kubernetes' 1 MiB.
//!
//! What it reads: the PolicyServer (`get`, for its sources and `namespacedPoliciesCapabilities`)
//! and every ClusterAdmissionPolicy, AdmissionPolicy, AdmissionPolicyGroup and
//! ClusterAdmissionPolicyGroup (`list`, cluster-wide: the policies of other people on the same
//! PolicyServer count). A kind whose CRD is not installed has no policies.

use std::collections::{BTreeMap, HashMap};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use serde_json::Value;

use crate::Result;
use crate::policy::{Refusal, RefusalKind};
use crate::policy_server_config::{CONFIGMAP_MAX_BYTES, PolicyKind, render};

const GROUP: &str = "policies.kubewarden.io";
const VERSION: &str = "v1";

/// A policy the job is about to write: its name, its PolicyServer and the settings it would hold.
pub struct Write<'a> {
    pub policy: &'a str,
    pub policy_server: Option<&'a str>,
    pub settings: Value,
}

/// Checks the writes of one reconciliation; returns the refusals, by policy name.
pub async fn check(
    client: &Client,
    writes: &[Write<'_>],
    entries: usize,
) -> Result<HashMap<String, Refusal>> {
    let mut by_server: BTreeMap<&str, Vec<&Write<'_>>> = BTreeMap::new();
    for write in writes {
        // A policy without a PolicyServer is in no ConfigMap (Kubewarden reports it unscheduled).
        if let Some(server) = write.policy_server.filter(|server| !server.is_empty()) {
            by_server.entry(server).or_default().push(write);
        }
    }
    let mut refusals = HashMap::new();
    if by_server.is_empty() {
        return Ok(refusals);
    }
    let policies = match list_policies(client).await {
        Ok(policies) => policies,
        Err(kube::Error::Api(status)) if status.code == 403 => {
            let reason = format!(
                "cannot list the Kubewarden policies to bound the size of the PolicyServer's \
                 ConfigMap ({}): the job's ClusterRole needs `list` of clusteradmissionpolicies, \
                 admissionpolicies, admissionpolicygroups and clusteradmissionpolicygroups",
                status.message
            );
            for write in writes {
                refusals.insert(write.policy.to_owned(), unknown(&reason));
            }
            return Ok(refusals);
        }
        Err(error) => return Err(error.into()),
    };
    for (server, writes) in by_server {
        let policy_server = match policy_server(client, server).await {
            Ok(object) => object,
            Err(kube::Error::Api(status)) if status.code == 403 => {
                let reason = format!(
                    "cannot read PolicyServer {server} to bound the size of its ConfigMap ({}): \
                     the job's ClusterRole needs `get` of policyservers/{server}",
                    status.message
                );
                for write in writes {
                    refusals.insert(write.policy.to_owned(), unknown(&reason));
                }
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let written = |kind: PolicyKind, policy: &Value| {
            kind == PolicyKind::ClusterAdmissionPolicy
                && writes
                    .iter()
                    .any(|write| policy["metadata"]["name"] == write.policy)
        };
        let bound: Vec<(PolicyKind, Value)> = policies
            .iter()
            .filter(|(_, policy)| policy["spec"]["policyServer"] == server)
            .map(|(kind, policy)| {
                let mut policy = policy.clone();
                if *kind == PolicyKind::ClusterAdmissionPolicy
                    && let Some(write) = writes
                        .iter()
                        .find(|write| policy["metadata"]["name"] == write.policy)
                {
                    policy["spec"]["settings"] = write.settings.clone();
                }
                (*kind, policy)
            })
            .collect();
        let all: Vec<(PolicyKind, &Value)> =
            bound.iter().map(|(kind, policy)| (*kind, policy)).collect();
        let data = render(policy_server.as_ref(), &all);
        if data.size() <= CONFIGMAP_MAX_BYTES {
            continue;
        }
        let others: Vec<(PolicyKind, &Value)> = all
            .iter()
            .copied()
            .filter(|(kind, policy)| !written(*kind, policy))
            .collect();
        let rest = render(policy_server.as_ref(), &others).size();
        let names: Vec<&str> = writes.iter().map(|write| write.policy).collect();
        let reason = format!(
            "the policies ConfigMap of PolicyServer {server} would be {} bytes (policies.yml {}, \
             sources.yml {}) with these {entries} entries in ClusterAdmissionPolicy {}, over \
             Kubernetes' limit of {CONFIGMAP_MAX_BYTES} bytes for a ConfigMap; the other {} \
             policies on it and its sources take {rest} bytes. kubewarden-controller could not \
             write it, and policy-server would keep serving its last configuration",
            data.size(),
            data.policies.len(),
            data.sources.len(),
            names.join(" and "),
            others.len(),
        );
        for write in writes {
            refusals.insert(
                write.policy.to_owned(),
                Refusal {
                    kind: RefusalKind::PolicyServerConfigTooLarge,
                    reason: reason.clone(),
                },
            );
        }
    }
    Ok(refusals)
}

fn unknown(reason: &str) -> Refusal {
    Refusal {
        kind: RefusalKind::PolicyServerConfigUnknown,
        reason: reason.to_owned(),
    }
}

fn api_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

/// Every policy of every kind, as JSON; a kind whose CRD is missing (404) has none.
async fn list_policies(client: &Client) -> Result<Vec<(PolicyKind, Value)>, kube::Error> {
    let mut all = Vec::new();
    for kind in PolicyKind::ALL {
        let api: Api<DynamicObject> =
            Api::all_with(client.clone(), &api_resource(kind.kind(), kind.plural()));
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(error) => return Err(error),
        };
        for object in list.items {
            let mut value = object.data;
            value["metadata"] = serde_json::to_value(&object.metadata).unwrap_or(Value::Null);
            all.push((kind, value));
        }
    }
    Ok(all)
}

async fn policy_server(client: &Client, name: &str) -> Result<Option<Value>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &api_resource("PolicyServer", "policyservers"),
    );
    Ok(api.get_opt(name).await?.map(|object| object.data))
}
