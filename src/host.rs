//! What the policy asks of its host (policy-server, `kwctl run`, the in-repo waPC host): one
//! method of [`Host`] per question, and [`HostCalls`], which asks each question at most once per
//! request.
//!
//! The questions: the Harvester Setting of context-aware mode, and the ConfigMap of a sidecar whose
//! script must be approved (`allowedScripts`), both read through the `kubernetes/get_resource`
//! capability; and whether an image is signed as a `signatures` requirement says, through
//! `oci/v2/verify`. A check that needs
//! the host adds a method to [`Host`] (the wasm implementation calls the SDK, the native one fails
//! closed, tests answer with a fake), a memoised method to [`HostCalls`], and calls it where the
//! judge says the checks that need the host go ([`crate::judge::Judge::violations`]).

use std::cell::RefCell;
use std::rc::Rc;

use crate::harvester_setting::SettingObject;
use crate::scripts::ConfigMapKey;
use crate::signatures::SignatureRequirement;

/// The host's answer to a signature verification: whether it trusts the image, and the digest
/// of the manifest it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub trusted: bool,
    pub digest: String,
}

/// The questions the policy asks its host. An `Err` is a failed question: the policy cannot tell
/// what is allowed, and rejects what depended on the answer, saying why.
pub trait Host {
    /// The Harvester Setting named `name`; `Ok(None)` when there is no Setting of that name.
    fn get_setting(&self, name: &str) -> Result<Option<SettingObject>, String>;

    /// `immutable` and the value of `key` of the ConfigMap `name` in `namespace`; `Ok(None)`
    /// when there is no ConfigMap of that name.
    fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<ConfigMapKey>, String>;

    /// The answer to an `oci/v2/verify` request
    /// ([`crate::signatures::SignatureRequirement::host_request`]). A host that cannot verify
    /// signatures fails closed: policy-server's (and `kwctl run`'s) can.
    fn verify_signature(&self, request: &serde_json::Value) -> Result<Verified, String> {
        let _ = request;
        Err("this host cannot verify signatures (oci/v2/verify)".to_owned())
    }
}

/// The host capabilities of policy-server (or of `kwctl run --allow-context-aware`).
pub struct PolicyServer;

#[cfg(target_arch = "wasm32")]
impl Host for PolicyServer {
    fn get_setting(&self, name: &str) -> Result<Option<SettingObject>, String> {
        use crate::harvester_setting::{SETTING_API_VERSION, SETTING_KIND};
        let answer = kubernetes::get_resource(&kubernetes::GetResourceRequest {
            api_version: SETTING_API_VERSION,
            kind: SETTING_KIND,
            name,
            namespace: None,
            disable_cache: false,
            field_masks: None,
        })?;
        answer
            .map(|json| {
                serde_json::from_slice(&json)
                    .map_err(|e| format!("error deserializing get resource response: {e}"))
            })
            .transpose()
    }

    fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<ConfigMapKey>, String> {
        use crate::scripts::{CONFIG_MAP_API_VERSION, CONFIG_MAP_KIND, field_masks};
        let masks = field_masks(key);
        let masks = [masks[0].as_str(), masks[1].as_str(), masks[2].as_str()];
        let answer = kubernetes::get_resource(&kubernetes::GetResourceRequest {
            api_version: CONFIG_MAP_API_VERSION,
            kind: CONFIG_MAP_KIND,
            name,
            namespace: Some(namespace),
            // Read afresh, not from policy-server's 5-second cache: a ConfigMap deleted and
            // re-created with another script must be seen at the next launcher Pod. Such
            // lookups are rare: a VM created or changed, a launcher Pod created, never an
            // UPDATE that leaves the sidecars as they were.
            disable_cache: true,
            field_masks: Some(&masks),
        })?;
        answer
            .map(|json| crate::scripts::read_config_map(&json, key))
            .transpose()
    }

    /// `oci/v2/verify`, as the SDK's `verify_*` calls make it; policy-server caches the answer
    /// for 60 s.
    fn verify_signature(&self, request: &serde_json::Value) -> Result<Verified, String> {
        let message = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let answer = wapc_guest::host_call("kubewarden", "oci", "v2/verify", &message)
            .map_err(|e| format!("error invoking host capability oci.verify: {e}"))?;
        read_verification(&answer)
    }
}

/// Natively (unit tests, the sync job, the fuzzers) there is no host to ask: fail closed.
#[cfg(not(target_arch = "wasm32"))]
impl Host for PolicyServer {
    fn get_setting(&self, _name: &str) -> Result<Option<SettingObject>, String> {
        Err(NO_HOST.to_owned())
    }

    fn get_config_map(&self, _: &str, _: &str, _: &str) -> Result<Option<ConfigMapKey>, String> {
        Err(NO_HOST.to_owned())
    }
}

#[cfg(not(target_arch = "wasm32"))]
const NO_HOST: &str = "the kubernetes host capability exists only in the wasm module";

/// policy-server's `kubernetes/get_resource`, for any object the policy reads.
#[cfg(target_arch = "wasm32")]
mod kubernetes {
    /// The SDK's `GetResourceRequest` as it serializes, borrowed: no copies, and no `BTreeSet`
    /// to build for the masks.
    #[derive(serde::Serialize)]
    pub struct GetResourceRequest<'a> {
        pub api_version: &'a str,
        pub kind: &'a str,
        pub name: &'a str,
        pub namespace: Option<&'a str>,
        /// Without it, policy-server's cache (5 s) answers, which keeps the API server out of
        /// the admission path.
        pub disable_cache: bool,
        /// Only these fields (and `metadata`) of the object reach the policy (policy-evaluator
        /// 1.33+).
        pub field_masks: Option<&'a [&'a str]>,
    }

    /// The JSON of the object asked for; `Ok(None)` when there is none. The caller decodes it:
    /// one non-generic call for every kind (the SDK's `get_resource` is generic over the decoded
    /// type), and the ConfigMap's decoder keeps one key only.
    pub fn get_resource(request: &GetResourceRequest) -> Result<Option<Vec<u8>>, String> {
        let message = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        match wapc_guest::host_call("kubewarden", "kubernetes", "get_resource", &message) {
            Ok(json) => Ok(Some(json)),
            Err(e) => {
                // The SDK's words for a failed host call.
                let message =
                    format!("error invoking host capability kubernetes.get_resource: {e}");
                let GetResourceRequest {
                    api_version,
                    kind,
                    name,
                    ..
                } = request;
                if super::is_not_found(&message, api_version, kind, name) {
                    Ok(None)
                } else {
                    Err(message)
                }
            }
        }
    }
}

/// The SDK's `VerificationResponse`: `{"is_trusted": bool, "digest": string}`.
#[cfg(any(target_arch = "wasm32", test))]
fn read_verification(answer: &[u8]) -> Result<Verified, String> {
    let answer: serde_json::Value = serde_json::from_slice(answer)
        .map_err(|e| format!("cannot read the host's oci/v2/verify answer: {e}"))?;
    match (answer.get("is_trusted"), answer.get("digest")) {
        (Some(serde_json::Value::Bool(trusted)), Some(serde_json::Value::String(digest))) => {
            Ok(Verified {
                trusted: *trusted,
                digest: digest.clone(),
            })
        }
        _ => Err(format!(
            "cannot read the host's oci/v2/verify answer: {answer}: expected is_trusted and digest"
        )),
    }
}

/// policy-server answers a missing object with an error, not with an empty answer, and the waPC
/// contract carries only text: policy-evaluator's message (`get_resource` in its Kubernetes
/// client) is the one way to tell "no such object" from a failed lookup, which must fail closed.
#[cfg(any(target_arch = "wasm32", test))]
fn is_not_found(message: &str, api_version: &str, kind: &str, name: &str) -> bool {
    message.contains(&format!("Cannot find {api_version}/{kind} named '{name}'"))
}

/// The host of one request: each question asked once, its answer kept for the rest of the
/// request, however many sidecars need it. Nothing is kept beyond the request: the cluster may
/// change.
pub struct HostCalls<'h> {
    host: &'h dyn Host,
    settings: Memo<String, Result<Option<SettingObject>, String>>,
    /// By ConfigMap name and key (the namespace is the request's).
    config_maps: Memo<(String, String), Result<Option<ConfigMapKey>, String>>,
    /// By image, requirement (its index in `signatures`) and certificate (its index, or 0).
    signatures: Memo<(String, usize, usize), Result<Verified, String>>,
}

impl<'h> HostCalls<'h> {
    pub fn new(host: &'h dyn Host) -> Self {
        Self {
            host,
            settings: Memo::default(),
            config_maps: Memo::default(),
            signatures: Memo::default(),
        }
    }

    /// [`Host::get_setting`], asked once per name.
    pub fn setting(&self, name: &str) -> Rc<Result<Option<SettingObject>, String>> {
        self.settings
            .get_or_ask(name, |name| self.host.get_setting(name))
    }

    /// [`Host::get_config_map`], asked once per name and key.
    pub fn config_map(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Rc<Result<Option<ConfigMapKey>, String>> {
        let question = (name.to_owned(), key.to_owned());
        self.config_maps.get_or_ask(&question, |(name, key)| {
            self.host.get_config_map(namespace, name, key)
        })
    }
}

impl HostCalls<'_> {
    /// [`Host::verify_signature`] of `image` by check `check` of requirement `index`, asked
    /// once per request: a VM with the same image twice, or at two sites, is verified once.
    pub fn signature(
        &self,
        image: &str,
        (index, requirement): (usize, &SignatureRequirement),
        check: usize,
    ) -> Rc<Result<Verified, String>> {
        let key = (image.to_owned(), index, check);
        (self.signatures).get_or_ask(&key, |(image, ..)| {
            self.host
                .verify_signature(&requirement.host_request(image, check))
        })
    }
}

/// Answers by question, kept for one request.
struct Memo<K, V> {
    answers: RefCell<Vec<(K, Rc<V>)>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            answers: RefCell::new(Vec::new()),
        }
    }
}

impl<K, V> Memo<K, V> {
    /// The answer to `key`, from `ask` the first time. A request asks few questions (one per
    /// image or ConfigMap at most, of 32 sidecars at most), so a list is enough.
    fn get_or_ask<Q>(&self, key: &Q, ask: impl FnOnce(&Q) -> V) -> Rc<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some((_, answer)) = self
            .answers
            .borrow()
            .iter()
            .find(|(k, _)| k.borrow() == key)
        {
            return Rc::clone(answer);
        }
        let answer = Rc::new(ask(key));
        self.answers
            .borrow_mut()
            .push((key.to_owned(), Rc::clone(&answer)));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::cell::Cell;

    #[rstest]
    // policy-evaluator's text, as policy-server and `kwctl run` return it to the guest.
    #[case(
        "error invoking host capability kubernetes.get_resource: Host error: Callback evaluation failure: Cannot find harvesterhci.io/v1beta1/Setting named 'whitelisted-sidecars' inside of namespace 'None'",
        true
    )]
    #[case(
        "Cannot find harvesterhci.io/v1beta1/Setting named 'other' inside of namespace 'None'",
        false
    )]
    // The CRD itself is missing: a failure, not a missing Setting.
    #[case(
        "Callback evaluation failure: Cannot find resource harvesterhci.io/v1beta1/Setting",
        false
    )]
    #[case(
        "Policy has not been granted access to Kubernetes harvesterhci.io/v1beta1/Setting resources. The violation has been reported.",
        false
    )]
    fn only_policy_servers_not_found_means_missing(#[case] message: &str, #[case] missing: bool) {
        let found = is_not_found(
            message,
            "harvesterhci.io/v1beta1",
            "Setting",
            "whitelisted-sidecars",
        );
        assert_eq!(found, missing);
    }

    #[rstest]
    #[case::trusted(br#"{"is_trusted":true,"digest":"sha256:ab"}"#, Ok(Verified { trusted: true, digest: "sha256:ab".into() }))]
    #[case::not_json(b"nope", Err("cannot read the host's oci/v2/verify answer: expected ident at line 1 column 2".into()))]
    #[case::no_digest(br#"{"is_trusted":true}"#, Err("cannot read the host's oci/v2/verify answer: {\"is_trusted\":true}: expected is_trusted and digest".into()))]
    fn reads_the_sdks_verification_response(
        #[case] answer: &[u8],
        #[case] read: Result<Verified, String>,
    ) {
        assert_eq!(read_verification(answer), read);
    }

    #[test]
    fn natively_the_lookup_fails_closed() {
        assert_eq!(
            PolicyServer.get_setting("whitelisted-sidecars"),
            Err(NO_HOST.to_owned())
        );
        assert_eq!(
            PolicyServer.get_config_map("default", "cm", "k"),
            Err(NO_HOST.to_owned())
        );
    }

    /// A host that answers every Setting as missing and counts the questions.
    struct Counting(Cell<usize>);

    impl Host for Counting {
        fn get_setting(&self, name: &str) -> Result<Option<SettingObject>, String> {
            self.0.set(self.0.get() + 1);
            Err(format!("no {name}"))
        }

        fn get_config_map(
            &self,
            namespace: &str,
            name: &str,
            key: &str,
        ) -> Result<Option<ConfigMapKey>, String> {
            self.0.set(self.0.get() + 1);
            Err(format!("no {namespace}/{name}/{key}"))
        }
    }

    #[test]
    fn each_question_is_asked_once_per_request() {
        let host = Counting(Cell::new(0));
        let calls = HostCalls::new(&host);
        assert_eq!(*calls.setting("a"), Err("no a".to_owned()));
        assert_eq!(*calls.setting("a"), Err("no a".to_owned()));
        assert_eq!(*calls.setting("b"), Err("no b".to_owned()));
        assert_eq!(host.0.get(), 2);
        // Another request asks again.
        let next = HostCalls::new(&host);
        next.setting("a");
        assert_eq!(host.0.get(), 3);
        // A ConfigMap once per name and key.
        assert_eq!(
            *next.config_map("ns", "cm", "k"),
            Err("no ns/cm/k".to_owned())
        );
        next.config_map("ns", "cm", "k");
        next.config_map("ns", "cm", "other");
        assert_eq!(host.0.get(), 5);
    }
}
