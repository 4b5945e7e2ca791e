//! Host capabilities offered to the guest: logging, `kubernetes/get_resource` for the kinds the
//! policy was granted (`--allow-context-aware`), answered from a real API server or replayed from
//! a kwctl session file, and `oci/v2/verify` (Sigstore signatures, with the `sigstore` feature).
//! Any other call is refused, loudly.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::kubernetes::GetResourceRequest;
#[cfg(feature = "cluster")]
use crate::kubernetes::{ClusterClient, POLICY_SERVER_CACHE_TIME};
use crate::metadata::{self, ContextAwareResource};
use crate::replay::Session;

type CallbackResult = Result<Vec<u8>, Box<dyn Error + Send + Sync>>;

/// Where `kubernetes` answers come from.
pub enum KubernetesBackend {
    /// No cluster: every lookup fails (what policy-server does without a client).
    None,
    #[cfg(feature = "cluster")]
    Cluster(Box<ClusterClient>),
    Replay(Session),
}

pub struct HostCapabilities {
    /// The kinds the policy may read (its `contextAwareResources`, when granted).
    pub allowed_resources: BTreeSet<ContextAwareResource>,
    pub kubernetes: KubernetesBackend,
    /// `oci/v2/verify`: like policy-server, every module may ask (no grant in the metadata).
    #[cfg(feature = "sigstore")]
    pub sigstore: Option<crate::sigstore::SigstoreVerifier>,
}

impl Default for HostCapabilities {
    fn default() -> Self {
        Self {
            allowed_resources: BTreeSet::new(),
            kubernetes: KubernetesBackend::None,
            #[cfg(feature = "sigstore")]
            sigstore: None,
        }
    }
}

/// kwctl's flags for context-aware policies.
#[derive(Args, Debug, Default)]
pub struct ContextAwareArgs {
    /// Grant access to the Kubernetes resources the module's metadata declares in
    /// `contextAwareResources` (an annotated module; see `annotate`).
    #[arg(long)]
    pub allow_context_aware: bool,
    /// Answer host capability calls from this session file (kwctl's format) instead of a cluster.
    #[arg(long, value_name = "FILE")]
    pub replay_host_capabilities_interactions: Option<PathBuf>,
    /// kwctl's sources file: `insecure_sources`, the registries `oci/v2/verify` reaches over
    /// plain HTTP.
    #[arg(long, value_name = "FILE")]
    pub sources_path: Option<PathBuf>,
}

impl HostCapabilities {
    /// What kwctl offers a module: with `--allow-context-aware`, the kinds its metadata declares,
    /// answered from the replayed session or else from the cluster of the kubeconfig.
    pub fn for_module(module: &Path, args: &ContextAwareArgs) -> Result<Self> {
        let bytes =
            std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
        let declared = metadata::context_aware_resources(&bytes)?;
        let allowed_resources = match (args.allow_context_aware, declared) {
            (true, Some(declared)) => declared,
            (true, None) => {
                eprintln!("Policy is not annotated, access to Kubernetes resources is not allowed");
                BTreeSet::new()
            }
            (false, Some(declared)) if !declared.is_empty() => {
                eprintln!(
                    "Policy requires access to Kubernetes resources at evaluation time. During \
                     this execution the access to Kubernetes resources is denied. Run it with \
                     --allow-context-aware to grant {declared:?}."
                );
                BTreeSet::new()
            }
            (false, _) => BTreeSet::new(),
        };
        let kubernetes = match &args.replay_host_capabilities_interactions {
            Some(session) => KubernetesBackend::Replay(Session::load(session)?),
            None if allowed_resources.is_empty() => KubernetesBackend::None,
            None => cluster_backend()?,
        };
        Ok(Self {
            allowed_resources,
            kubernetes,
            #[cfg(feature = "sigstore")]
            sigstore: Some(sigstore_verifier(args.sources_path.as_deref())?),
        })
    }

    /// The waPC host callback: `kubewarden` / `tracing` / `log` goes to stderr,
    /// `kubewarden` / `kubernetes` / `get_resource` as policy-server answers it, the rest is
    /// refused.
    pub fn call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> CallbackResult {
        match (binding, namespace, operation) {
            ("kubewarden", "tracing", "log") => {
                eprintln!("[policy log] {}", String::from_utf8_lossy(payload));
                Ok(Vec::new())
            }
            ("kubewarden", "kubernetes", "get_resource") => self.get_resource(payload),
            ("kubewarden", "oci", "v2/verify") => self.verify(payload),
            _ => Err(format!(
                "host capability {binding}/{namespace}/{operation} is not offered by this host \
                 (it offers kubewarden/tracing/log, kubewarden/kubernetes/get_resource and \
                 kubewarden/oci/v2/verify)"
            )
            .into()),
        }
    }

    /// policy-evaluator's answer to `oci/v2/verify`: a failure comes back as "Callback
    /// evaluation failure: ...".
    #[cfg(feature = "sigstore")]
    fn verify(&self, payload: &[u8]) -> CallbackResult {
        let verifier = (self.sigstore.as_ref())
            .ok_or_else(|| "Callback evaluation failure: no sigstore client".to_owned())?;
        verifier
            .verify(payload)
            .map_err(|e| format!("Callback evaluation failure: {e:#}").into())
    }

    #[cfg(not(feature = "sigstore"))]
    fn verify(&self, _: &[u8]) -> CallbackResult {
        Err(
            "kubewarden/oci/v2/verify needs a policy-host built with the `sigstore` feature \
             (cargo build -p policy-host --features sigstore)"
                .into(),
        )
    }

    /// policy-evaluator's `host_callback` for `get_resource`: the grant is checked first, then
    /// the answer's failure comes back as "Callback evaluation failure: ...".
    fn get_resource(&self, payload: &[u8]) -> CallbackResult {
        let request: GetResourceRequest = serde_json::from_slice(payload)?;
        let requested = ContextAwareResource {
            api_version: request.api_version.clone(),
            kind: request.kind.clone(),
        };
        if !self.allowed_resources.contains(&requested) {
            return Err(format!(
                "Policy has not been granted access to Kubernetes {}/{} resources. \
                 The violation has been reported.",
                request.api_version, request.kind
            )
            .into());
        }
        let answer = match &self.kubernetes {
            KubernetesBackend::None => {
                Err(anyhow::anyhow!("kube::Client was not initialized properly"))
            }
            #[cfg(feature = "cluster")]
            KubernetesBackend::Cluster(client) => client.get_resource(&request),
            KubernetesBackend::Replay(session) => session.answer(request.into()),
        };
        // policy-server writes the error with `{:?}`, which adds a backtrace when
        // RUST_BACKTRACE is set; `{:#}` is the same message and causes without it.
        answer.map_err(|e| format!("Callback evaluation failure: {e:#}").into())
    }
}

#[cfg(feature = "sigstore")]
pub fn sigstore_verifier(sources: Option<&Path>) -> Result<crate::sigstore::SigstoreVerifier> {
    let sources = match sources {
        Some(path) => crate::sigstore::Sources::load(path)?,
        None => crate::sigstore::Sources::default(),
    };
    crate::sigstore::SigstoreVerifier::new(&sources)
}

/// The cluster of the kubeconfig, as kwctl reads it.
#[cfg(feature = "cluster")]
fn cluster_backend() -> Result<KubernetesBackend> {
    let client = ClusterClient::infer(POLICY_SERVER_CACHE_TIME)?;
    Ok(KubernetesBackend::Cluster(Box::new(client)))
}

#[cfg(not(feature = "cluster"))]
fn cluster_backend() -> Result<KubernetesBackend> {
    anyhow::bail!(
        "this policy-host was built without a Kubernetes client: answer the module's lookups \
         from a session (--replay-host-capabilities-interactions), or build the host with \
         `cargo build -p policy-host --features cluster`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting() -> ContextAwareResource {
        ContextAwareResource {
            api_version: "harvesterhci.io/v1beta1".into(),
            kind: "Setting".into(),
        }
    }

    const SETTING_REQUEST: &[u8] = br#"{"api_version":"harvesterhci.io/v1beta1","kind":"Setting","name":"whitelisted-sidecars","namespace":null,"disable_cache":false,"field_masks":null}"#;

    #[test]
    fn logs_are_accepted() {
        let host = HostCapabilities::default();
        assert_eq!(
            host.call("kubewarden", "tracing", "log", b"{}").ok(),
            Some(Vec::new())
        );
    }

    #[test]
    fn other_capabilities_are_refused_by_name() {
        let error = HostCapabilities::default()
            .call("kubewarden", "oci", "v1/verify", b"{}")
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("kubewarden/oci/v1/verify is not offered")
        );
        // v2/verify is offered, and fails closed without a client.
        let error = HostCapabilities::default()
            .call("kubewarden", "oci", "v2/verify", b"{}")
            .expect_err("no client");
        assert!(error.to_string().contains("sigstore"), "{error}");
    }

    #[test]
    fn a_kind_not_granted_is_refused_as_policy_server_does() {
        let error = HostCapabilities::default()
            .call("kubewarden", "kubernetes", "get_resource", SETTING_REQUEST)
            .expect_err("not granted");
        assert_eq!(
            error.to_string(),
            "Policy has not been granted access to Kubernetes harvesterhci.io/v1beta1/Setting \
             resources. The violation has been reported."
        );
    }

    #[test]
    fn without_a_cluster_a_granted_lookup_fails() {
        let host = HostCapabilities {
            allowed_resources: [setting()].into(),
            kubernetes: KubernetesBackend::None,
            ..HostCapabilities::default()
        };
        let error = host
            .call("kubewarden", "kubernetes", "get_resource", SETTING_REQUEST)
            .expect_err("no client");
        assert_eq!(
            error.to_string(),
            "Callback evaluation failure: kube::Client was not initialized properly"
        );
    }
}
