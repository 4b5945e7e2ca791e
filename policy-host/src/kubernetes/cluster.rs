//! The client of a real API server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use tokio::runtime::Runtime;

use super::GetResourceRequest;

/// A resource kind found by discovery.
#[derive(Clone)]
struct KubeResource {
    resource: ApiResource,
    namespaced: bool,
}

type CacheKey = (String, String, String, Option<String>);

pub struct ClusterClient {
    runtime: Runtime,
    client: Client,
    cache_time: Duration,
    /// Whole objects: policy-evaluator caches the object and applies each request's masks to it.
    cache: Mutex<HashMap<CacheKey, (Instant, serde_json::Value)>>,
    kinds: Mutex<HashMap<(String, String), KubeResource>>,
}

impl ClusterClient {
    /// A client from the kubeconfig (`KUBECONFIG`, `~/.kube/config`, or in-cluster), like kwctl's.
    pub fn infer(cache_time: Duration) -> Result<Self> {
        let runtime = runtime()?;
        let client = runtime
            .block_on(Client::try_default())
            .context("connecting to Kubernetes (KUBECONFIG, ~/.kube/config or in-cluster)")?;
        Ok(Self::new(runtime, client, cache_time))
    }

    /// A client from a kubeconfig file.
    pub fn from_kubeconfig(path: &std::path::Path, cache_time: Duration) -> Result<Self> {
        let runtime = runtime()?;
        let client = runtime.block_on(async {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
            let options = kube::config::KubeConfigOptions::default();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
            anyhow::Ok(Client::try_from(config)?)
        })?;
        Ok(Self::new(runtime, client, cache_time))
    }

    fn new(runtime: Runtime, client: Client, cache_time: Duration) -> Self {
        Self {
            runtime,
            client,
            cache_time,
            cache: Mutex::new(HashMap::new()),
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// The object as JSON, from the cache when an answer younger than the cache time exists.
    /// Failures are not cached, as in policy-server.
    pub fn get_resource(&self, request: &GetResourceRequest) -> Result<Vec<u8>> {
        let key = (
            request.api_version.clone(),
            request.kind.clone(),
            request.name.clone(),
            request.namespace.clone(),
        );
        if !request.disable_cache {
            let cache = self.cache.lock().expect("cache lock");
            if let Some((fetched, object)) = cache.get(&key)
                && fetched.elapsed() < self.cache_time
            {
                return masked(object.clone(), request);
            }
        }
        let object = self.runtime.block_on(self.fetch(request))?;
        let object = serde_json::to_value(&object)
            .map_err(|e| anyhow!("error serializing payload: {e:?}"))?;
        if !request.disable_cache {
            let mut cache = self.cache.lock().expect("cache lock");
            cache.insert(key, (Instant::now(), object.clone()));
        }
        masked(object, request)
    }

    async fn fetch(&self, request: &GetResourceRequest) -> Result<DynamicObject> {
        let GetResourceRequest {
            api_version,
            kind,
            name,
            namespace,
            ..
        } = request;
        let kube_resource = self.kube_resource(api_version, kind).await?;
        let api: Api<DynamicObject> = if kube_resource.namespaced {
            let namespace = namespace.as_deref().ok_or_else(|| {
                anyhow!(
                    "Resource {api_version}/{kind} is namespaced, but no namespace was provided"
                )
            })?;
            Api::namespaced_with(self.client.clone(), namespace, &kube_resource.resource)
        } else {
            Api::all_with(self.client.clone(), &kube_resource.resource)
        };
        api.get_opt(name).await?.ok_or_else(|| {
            // policy-evaluator's words: policies (this one included) recognize a missing object
            // by them.
            anyhow!(
                "Cannot find {api_version}/{kind} named '{name}' inside of namespace '{:?}'",
                namespace.as_deref()
            )
        })
    }

    /// The resource of a kind, found once by discovery of its apiVersion and then remembered.
    async fn kube_resource(&self, api_version: &str, kind: &str) -> Result<KubeResource> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(found) = self.kinds.lock().expect("kinds lock").get(&key) {
            return Ok(found.clone());
        }
        let list = if api_version == "v1" {
            self.client.list_core_api_resources(api_version).await?
        } else {
            self.client
                .list_api_group_resources(api_version)
                .await
                .map_err(|e| anyhow!("error finding resource {api_version} / {kind}: {e}"))?
        };
        let found = list
            .resources
            .iter()
            .find(|r| r.kind == kind)
            .ok_or_else(|| anyhow!("Cannot find resource {api_version}/{kind}"))?;
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let resource = KubeResource {
            resource: ApiResource {
                group: group.to_owned(),
                version: version.to_owned(),
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                plural: found.name.clone(),
            },
            namespaced: found.namespaced,
        };
        self.kinds
            .lock()
            .expect("kinds lock")
            .insert(key, resource.clone());
        Ok(resource)
    }
}

/// The answer to `request`: the object with its field masks applied, as JSON.
fn masked(mut object: serde_json::Value, request: &GetResourceRequest) -> Result<Vec<u8>> {
    if let Some(masks) = &request.field_masks {
        super::apply_field_masks(&mut object, masks);
    }
    serde_json::to_vec(&object).map_err(|e| anyhow!("error serializing payload: {e:?}"))
}

/// The host callback is synchronous (called from inside the guest); the client's futures run on
/// a runtime of the host's own, never on the caller's.
fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the Kubernetes client's runtime")
}
