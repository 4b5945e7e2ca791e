//! The `oci/v2/verify` host capability as policy-server answers it (kubewarden-controller
//! v1.35.0: policy-evaluator's `callback_handler/sigstore_verification.rs` and policy-fetcher's
//! `verify`), on the crates it uses: sigstore 0.13's cosign client over oci-client. The request
//! is the SDK's `SigstoreVerificationInputV2`; the image's signatures are fetched from its
//! registry (`sha256-<digest>.sig`), each layer verified, and the request's constraints must all
//! be satisfied: every public key (with the annotations), or the certificate (with its chain).
//! The answer, the SDK's `VerificationResponse`, carries the manifest digest that was verified.
//! Successful answers are cached for 60 s, as policy-server caches them; failures are not.
//!
//! Keyless requests need a Sigstore trust root (Fulcio's certificates, Rekor's key), which this
//! host does not have: like policy-server started without one, it fails them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kubewarden_policy_sdk::host_capabilities::SigstoreVerificationInputV2;
use kubewarden_policy_sdk::host_capabilities::verification::VerificationResponse;
use serde::Deserialize;
use sigstore::cosign::verification_constraint::{
    AnnotationVerifier, CertificateVerifier, PublicKeyVerifier, VerificationConstraint,
    VerificationConstraintVec,
};
use sigstore::cosign::{self, ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::registry::{
    Auth, Certificate, CertificateEncoding, ClientConfig, ClientProtocol, OciReference,
};
use tokio::runtime::Runtime;

/// policy-server's cache time for verifications (`#[cached(time = 60)]`).
pub const CACHE_TIME: Duration = Duration::from_secs(60);

/// kwctl's and policy-server's sources file (`--sources-path`): the registries reached over plain
/// HTTP. Other keys (`source_authorities`) are refused rather than ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default)]
    pub insecure_sources: Vec<String>,
}

impl Sources {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_yaml::from_str(&text)
            .with_context(|| format!("{}: not a sources file", path.display()))
    }
}

/// Answers by request: when each was verified, and the answer.
type Cache = HashMap<Vec<u8>, (Instant, Vec<u8>)>;

pub struct SigstoreVerifier {
    runtime: Runtime,
    /// How long a successful answer is kept ([`CACHE_TIME`]; the benchmark of a first
    /// verification sets zero).
    cache_time: Duration,
    /// The cosign client is used across await points (`&mut` for each fetch).
    client: tokio::sync::Mutex<cosign::Client>,
    cache: Mutex<Cache>,
}

impl SigstoreVerifier {
    pub fn new(sources: &Sources) -> Result<Self> {
        let protocol = match sources.insecure_sources.as_slice() {
            [] => ClientProtocol::Https,
            insecure => ClientProtocol::HttpsExcept(insecure.to_vec()),
        };
        let config = ClientConfig {
            protocol,
            ..ClientConfig::default()
        };
        let client = ClientBuilder::default()
            .with_oci_client_config(config)
            .build()
            .map_err(|e| anyhow!("building the cosign client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the sigstore client's runtime")?;
        Ok(Self {
            runtime,
            cache_time: CACHE_TIME,
            client: tokio::sync::Mutex::new(client),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The same, keeping answers for `cache_time` instead of policy-server's [`CACHE_TIME`].
    pub fn with_cache_time(mut self, cache_time: Duration) -> Self {
        self.cache_time = cache_time;
        self
    }

    /// The answer to one `oci/v2/verify` call: the SDK's `VerificationResponse` as JSON, or the
    /// reason verification failed.
    pub fn verify(&self, payload: &[u8]) -> Result<Vec<u8>> {
        if let Some((at, answer)) = self.cache.lock().expect("cache lock").get(payload)
            && at.elapsed() < self.cache_time
        {
            return Ok(answer.clone());
        }
        let request: SigstoreVerificationInputV2 =
            serde_json::from_slice(payload).context("not an oci/v2/verify request")?;
        let digest = self.runtime.block_on(self.verify_request(request))?;
        let answer = serde_json::to_vec(&VerificationResponse {
            is_trusted: true,
            digest,
        })?;
        (self.cache.lock().expect("cache lock"))
            .insert(payload.to_vec(), (Instant::now(), answer.clone()));
        Ok(answer)
    }

    async fn verify_request(&self, request: SigstoreVerificationInputV2) -> Result<String> {
        match request {
            SigstoreVerificationInputV2::SigstorePubKeyVerify {
                image,
                pub_keys,
                annotations,
            } => {
                if pub_keys.is_empty() {
                    bail!("Must provide at least one pub key");
                }
                let (digest, layers) = self.signature_layers(&image).await?;
                // Every key must have signed (policy-fetcher's `all_of`), each with the
                // annotations.
                let mut unsatisfied = Vec::new();
                for key in &pub_keys {
                    let mut constraints: VerificationConstraintVec =
                        vec![Box::new(PublicKeyVerifier::try_from(key.as_bytes())?)];
                    constraints.extend(annotation_constraint(&annotations));
                    if !satisfied_by_one_layer(&layers, &constraints) {
                        unsatisfied.push(key.trim().lines().nth(1).unwrap_or_default().to_owned());
                    }
                }
                if !unsatisfied.is_empty() {
                    bail!(
                        "Image verification failed: missing signatures: no signature of {image} \
                         by the keys {unsatisfied:?}{}",
                        annotations
                            .map(|a| format!(" with the annotations {a:?}"))
                            .unwrap_or_default()
                    );
                }
                Ok(digest)
            }
            SigstoreVerificationInputV2::SigstoreCertificateVerify {
                image,
                certificate,
                certificate_chain,
                require_rekor_bundle,
                annotations,
            } => {
                let (digest, layers) = self.signature_layers(&image).await?;
                let chain: Option<Vec<Certificate>> = certificate_chain.map(|chain| {
                    (chain.into_iter())
                        .map(|data| Certificate {
                            data,
                            encoding: CertificateEncoding::Pem,
                        })
                        .collect()
                });
                let verifier = CertificateVerifier::from_pem(
                    &certificate,
                    require_rekor_bundle,
                    chain.as_deref(),
                )
                .map_err(|e| anyhow!("{e}"))?;
                let mut constraints: VerificationConstraintVec = vec![Box::new(verifier)];
                constraints.extend(annotation_constraint(&annotations));
                cosign::verify_constraints(&layers, constraints.iter())
                    .map_err(|e| anyhow!("verification failed: {e}"))?;
                Ok(digest)
            }
            SigstoreVerificationInputV2::SigstoreKeylessVerify { .. }
            | SigstoreVerificationInputV2::SigstoreKeylessPrefixVerify { .. }
            | SigstoreVerificationInputV2::SigstoreGithubActionsVerify { .. } => bail!(
                "keyless signatures cannot be verified: this host has no Sigstore trust root \
                 (Fulcio, Rekor), as policy-server started without one"
            ),
        }
    }

    /// The image's manifest digest and its verified signature layers (policy-fetcher's
    /// `fetch_sigstore_remote_data`), anonymously.
    async fn signature_layers(&self, image: &str) -> Result<(String, Vec<SignatureLayer>)> {
        let reference = OciReference::from_str(image)
            .map_err(|e| anyhow!("{image:?} is not an image reference: {e}"))?;
        let mut client = self.client.lock().await;
        let (signature_image, digest) = client
            .triangulate(&reference, &Auth::Anonymous)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let layers = client
            .trusted_signature_layers(&Auth::Anonymous, &digest, &signature_image)
            .await
            .map_err(|e| match e {
                sigstore::errors::SigstoreError::RegistryPullManifestError { .. } => {
                    anyhow!("no signatures found for image: {image} ")
                }
                e => anyhow!("{e}"),
            })?;
        Ok((digest, layers))
    }
}

fn annotation_constraint(
    annotations: &Option<BTreeMap<String, String>>,
) -> Option<Box<dyn VerificationConstraint>> {
    let annotations = annotations.clone()?;
    Some(Box::new(AnnotationVerifier { annotations }))
}

/// Whether one layer satisfies every constraint (a key and its annotations must be on the same
/// signature, as policy-fetcher's `PublicKeyAndAnnotationsVerifier` requires).
fn satisfied_by_one_layer(
    layers: &[SignatureLayer],
    constraints: &VerificationConstraintVec,
) -> bool {
    layers.iter().any(|layer| {
        constraints
            .iter()
            .all(|constraint| constraint.verify(layer).unwrap_or(false))
    })
}
