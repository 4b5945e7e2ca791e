//! `signatures`: images that may run as hook sidecars only when their signatures are verified,
//! in the shape of Kubewarden's verify-image-signatures settings. Each requirement names the
//! images it governs (an `allowedImages` entry) and one way to trust them; the verification is
//! the host's (`oci/v2/verify`, [`crate::host::Host::verify_signature`]), asked by the judge
//! ([`crate::judge::Judge::host_violations`]) for every sidecar whose image a requirement governs,
//! at the VM and again at the launcher Pod.
//!
//! A requirement is validated where it stands in the settings' JSON and kept as that JSON: the
//! host's request is made from it ([`SignatureRequirement::host_request`]). Typed copies, and the
//! SDK's typed calls, would cost the module some 25 KB of its budget.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::allowlist::AllowedImage;
use crate::reference::ImageReference;

/// One entry of `signatures`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureRequirement {
    /// The images it governs, as an `allowedImages` entry ([`SignatureRequirement::governs`]).
    pub image: String,
    /// How to trust them: the one key of [`TRUST_KEYS`] it has.
    pub trust: &'static str,
    fields: Map<String, Value>,
}

/// The keys that say how to trust, with the `type` of their `oci/v2/verify` request (the SDK's
/// `SigstoreVerificationInputV2`); a requirement has exactly one.
const TRUST_KEYS: [(&str, &str); 5] = [
    ("pubKeys", "SigstorePubKeyVerify"),
    ("keyless", "SigstoreKeylessVerify"),
    ("keylessPrefix", "SigstoreKeylessPrefixVerify"),
    ("githubActions", "SigstoreGithubActionsVerify"),
    ("certificates", "SigstoreCertificateVerify"),
];

const OTHER_KEYS: [&str; 4] = [
    "image",
    "annotations",
    "certificateChain",
    "requireRekorBundle",
];

impl SignatureRequirement {
    /// Entry `index` of `signatures`, or why it is refused, naming the field and the value.
    pub fn parse(index: usize, raw: &RawValue) -> Result<Self, String> {
        let field = |name: &str| format!("signatures[{index}].{name}");
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(raw.get()) else {
            return Err(format!("signatures[{index}]: expected an object"));
        };
        let trust_keys = TRUST_KEYS.map(|(key, _)| key);
        if let Some(unknown) = (fields.keys())
            .find(|key| !trust_keys.contains(&key.as_str()) && !OTHER_KEYS.contains(&key.as_str()))
        {
            return Err(format!(
                "signatures[{index}]: unknown field {unknown:?}, expected `image`, \
                 `annotations`, one of `{}`, or `certificateChain` and `requireRekorBundle` \
                 beside `certificates`",
                trust_keys.join("`, `")
            ));
        }
        let image = match fields.get("image") {
            Some(Value::String(image)) => image.clone(),
            Some(other) => return Err(format!("{}: {other}: expected a string", field("image"))),
            None => return Err(format!("signatures[{index}]: missing field `image`")),
        };
        if let Err(e) = AllowedImage::parse(&image) {
            return Err(format!("{} {image:?}: {e}", field("image")));
        }
        let given: Vec<&str> = (trust_keys.into_iter())
            .filter(|key| fields.contains_key(*key))
            .collect();
        let [trust] = given[..] else {
            let given = match given.is_empty() {
                true => "none".to_owned(),
                false => format!("`{}`", given.join("`, `")),
            };
            return Err(format!(
                "signatures[{index}] (image {image:?}): needs exactly one of `{}`, has {given}",
                trust_keys.join("`, `"),
            ));
        };
        for extra in ["certificateChain", "requireRekorBundle"] {
            if trust != "certificates" && fields.contains_key(extra) {
                return Err(format!(
                    "{}: only with `certificates`, not with `{trust}`",
                    field(extra)
                ));
            }
        }
        let value = &fields[trust];
        match trust {
            "pubKeys" => check_pem_list(value, &field(trust), "PUBLIC KEY")?,
            "keyless" => check_identities(value, &field(trust), "subject")?,
            "keylessPrefix" => check_identities(value, &field(trust), "urlPrefix")?,
            "githubActions" => check_strings(value, &field(trust), &["owner"], &["repo"])?,
            _ => {
                check_pem_list(value, &field(trust), "CERTIFICATE")?;
                match fields.get("certificateChain") {
                    None | Some(Value::Null) => {}
                    Some(chain) => {
                        check_pem_list(chain, &field("certificateChain"), "CERTIFICATE")?
                    }
                }
                if let Some(other) = fields.get("requireRekorBundle").filter(|v| !v.is_boolean()) {
                    return Err(format!(
                        "{}: {other}: expected true or false",
                        field("requireRekorBundle")
                    ));
                }
            }
        }
        match fields.get("annotations") {
            None | Some(Value::Null) => {}
            Some(map) => check_strings(map, &field("annotations"), &[], &[])?,
        }
        Ok(Self {
            image,
            trust,
            fields,
        })
    }

    /// Whether the requirement governs the (normalized) requested image: every image its entry
    /// could be. Its repositories as `allowedImages` matches them; of an entry with a tag, the
    /// images of that tag and any digest (a digest may be the tag's content, so pinning one
    /// does not escape the requirement); of an entry with a digest, any image of its repository.
    pub fn governs(&self, image: &ImageReference) -> bool {
        match AllowedImage::parse(&self.image) {
            Ok(entry) => {
                entry.covers_repository(image)
                    && match &entry {
                        AllowedImage::Exact(exact) => {
                            exact.digest.is_some()
                                || image.digest.is_some()
                                || exact.tag == image.tag
                        }
                        _ => true,
                    }
            }
            // Validated when the settings were loaded; a requirement that cannot be read governs
            // everything, so that its images are rejected rather than run unverified.
            Err(_) => true,
        }
    }

    /// How many host calls verify an image: one, or one per certificate (each is verified on its
    /// own, as verify-image-signatures does; the host requires every key of `pubKeys` at once).
    pub fn checks(&self) -> usize {
        match &self.fields[self.trust] {
            Value::Array(certificates) if self.trust == "certificates" => certificates.len(),
            _ => 1,
        }
    }

    /// The `oci/v2/verify` request of check `check` for `image`: the SDK's
    /// `SigstoreVerificationInputV2` as it serializes (snake_case fields, the certificates as
    /// the bytes of their PEM text).
    pub fn host_request(&self, image: &str, check: usize) -> Value {
        let get = |key: &str| self.fields.get(key).cloned().unwrap_or(Value::Null);
        let kind = (TRUST_KEYS.iter())
            .find(|(key, _)| *key == self.trust)
            .map_or("", |(_, kind)| kind);
        let mut request = Map::new();
        request.insert("type".into(), kind.into());
        request.insert("image".into(), image.into());
        let value = get(self.trust);
        match self.trust {
            "pubKeys" => {
                request.insert("pub_keys".into(), value);
            }
            "keyless" => {
                request.insert("keyless".into(), value);
            }
            "keylessPrefix" => {
                let renamed = (value.as_array().into_iter().flatten())
                    .map(|identity| {
                        let mut renamed = Map::new();
                        renamed.insert("issuer".into(), identity["issuer"].clone());
                        renamed.insert("url_prefix".into(), identity["urlPrefix"].clone());
                        Value::Object(renamed)
                    })
                    .collect();
                request.insert("keyless_prefix".into(), Value::Array(renamed));
            }
            "githubActions" => {
                request.insert("owner".into(), value["owner"].clone());
                request.insert("repo".into(), value["repo"].clone());
            }
            _ => {
                request.insert("certificate".into(), pem_bytes(&value[check]));
                let chain = get("certificateChain");
                let chain = match chain.as_array() {
                    Some(chain) => chain.iter().map(pem_bytes).collect(),
                    None => Value::Null,
                };
                request.insert("certificate_chain".into(), chain);
                let rekor = get("requireRekorBundle").as_bool().unwrap_or(false);
                request.insert("require_rekor_bundle".into(), rekor.into());
            }
        }
        request.insert("annotations".into(), get("annotations"));
        Value::Object(request)
    }
}

/// A PEM text as the SDK sends it: a `Vec<u8>`, a list of numbers.
fn pem_bytes(pem: &Value) -> Value {
    let text = pem.as_str().unwrap_or_default();
    Value::Array(text.bytes().map(Value::from).collect())
}

/// A non-empty list of PEM blocks of `label`, each as the host's parser reads it (one block of
/// base64 DER, a SEQUENCE): a malformed key is refused with the settings, not at each request.
fn check_pem_list(value: &Value, field: &str, label: &str) -> Result<(), String> {
    let Value::Array(items) = value else {
        return Err(format!("{field}: expected a list of PEM strings"));
    };
    if items.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(pem) if is_pem(pem, label) => {}
            Value::String(pem) => {
                return Err(format!(
                    "{field}[{i}] {:?}: not a PEM {label} (-----BEGIN {label}----- ...)",
                    abbreviated(pem)
                ));
            }
            other => return Err(format!("{field}[{i}]: {other}: expected a string")),
        }
    }
    Ok(())
}

fn is_pem(text: &str, label: &str) -> bool {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(body) = (text.trim())
        .strip_prefix(begin.as_str())
        .and_then(|rest| rest.strip_suffix(end.as_str()))
    else {
        return false;
    };
    let base64: String = body.split_ascii_whitespace().collect();
    crate::scripts::decode_base64(&base64).is_some_and(|der| der.first() == Some(&0x30))
}

/// A value as a rejection quotes it: a PEM is long, its first line says what it is.
fn abbreviated(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// `keyless` (`issuer` and `subject`) or `keylessPrefix` (`issuer` and `urlPrefix`): a non-empty
/// list of identities.
fn check_identities(value: &Value, field: &str, second: &str) -> Result<(), String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "{field}: expected a list of {{issuer, {second}}} objects"
        ));
    };
    if items.is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    for (i, item) in items.iter().enumerate() {
        let field = format!("{field}[{i}]");
        check_strings(item, &field, &["issuer", second], &[])?;
        if let Some(prefix) = item.get("urlPrefix").and_then(Value::as_str)
            && !is_url(prefix)
        {
            return Err(format!(
                "{field}.urlPrefix {prefix:?}: not an http(s) URL (the host parses it as one)"
            ));
        }
    }
    Ok(())
}

/// An object of strings with the `required` keys and the `optional` ones, each non-empty; no
/// key list: any keys (annotations), values still strings.
fn check_strings(
    value: &Value,
    field: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<(), String> {
    let Value::Object(map) = value else {
        return Err(format!("{field}: {value}: expected a map of strings"));
    };
    let listed = !required.is_empty();
    for (key, value) in map {
        if listed && !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            let expected = [required, optional].concat().join("` or `");
            return Err(format!(
                "{field}: unknown field {key:?}, expected `{expected}`"
            ));
        }
        match value {
            Value::String(text) if listed && text.is_empty() => {
                return Err(format!("{field}.{key}: must not be empty"));
            }
            Value::String(_) => {}
            other => return Err(format!("{field}.{key}: {other}: expected a string")),
        }
    }
    match required.iter().find(|key| !map.contains_key(**key)) {
        Some(missing) => Err(format!("{field}: missing field `{missing}`")),
        None => Ok(()),
    }
}

/// `scheme://host[:port][/path]` with an http(s) scheme, a host of letters, digits, `.` and `-`,
/// and no whitespace or control character: what policy-server's URL parser accepts (it panics on
/// a prefix it cannot parse, so a bad one must not reach it).
fn is_url(text: &str) -> bool {
    let Some(rest) = (text.strip_prefix("https://")).or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    !host.is_empty()
        && (host.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port_ok
        && !rest
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    /// A P-256 public key as `cosign generate-key-pair` writes it.
    pub const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU3tq7eCgHmlKG1aoyPoSXcR3RmUj\n\
        hn2SBz7nHgy7zKzRrOiH3Z/+g5YjpAWOPJYCxVD4XJ1b5rnlMAJA7o/9WA==\n\
        -----END PUBLIC KEY-----\n";

    fn parse(value: serde_json::Value) -> Result<SignatureRequirement, String> {
        let raw = RawValue::from_string(value.to_string()).expect("JSON");
        SignatureRequirement::parse(0, &raw)
    }

    #[test]
    fn each_kind_of_trust_is_the_sdks_request() {
        let request = |requirement: serde_json::Value, check| {
            parse(requirement)
                .expect("valid")
                .host_request("r.example.com/h:v1", check)
        };
        assert_eq!(
            request(
                json!({"image": "r.example.com/hooks/*", "pubKeys": [PUBLIC_KEY],
                "annotations": {"env": "prod"}}),
                0
            ),
            json!({"type": "SigstorePubKeyVerify", "image": "r.example.com/h:v1",
                "pub_keys": [PUBLIC_KEY], "annotations": {"env": "prod"}})
        );
        let keyless = json!([{"issuer": "https://token.actions.githubusercontent.com",
            "subject": "me@example.com"}]);
        assert_eq!(
            request(
                json!({"image": "r.example.com/h:v1", "keyless": keyless}),
                0
            ),
            json!({"type": "SigstoreKeylessVerify", "image": "r.example.com/h:v1",
                "keyless": keyless, "annotations": null})
        );
        assert_eq!(
            request(
                json!({"image": "r.example.com/h:*", "keylessPrefix": [
                {"issuer": "https://issuer.example.com", "urlPrefix": "https://github.com/org/"}]}),
                0
            ),
            json!({"type": "SigstoreKeylessPrefixVerify", "image": "r.example.com/h:v1",
                "keyless_prefix": [{"issuer": "https://issuer.example.com",
                    "url_prefix": "https://github.com/org/"}], "annotations": null})
        );
        assert_eq!(
            request(
                json!({"image": "r.example.com/h:*", "githubActions": {"owner": "kubevirt"}}),
                0
            ),
            json!({"type": "SigstoreGithubActionsVerify", "image": "r.example.com/h:v1",
                "owner": "kubevirt", "repo": null, "annotations": null})
        );
        let certificate = PUBLIC_KEY.replace("PUBLIC KEY", "CERTIFICATE");
        let other = certificate.replace("MFkw", "MFkx");
        assert_eq!(
            request(
                json!({"image": "r.example.com/h:*", "certificates": [certificate, other],
                "certificateChain": [certificate], "requireRekorBundle": true}),
                1
            ),
            json!({"type": "SigstoreCertificateVerify", "image": "r.example.com/h:v1",
                "certificate": other.as_bytes(), "certificate_chain": [certificate.as_bytes()],
                "require_rekor_bundle": true, "annotations": null})
        );
    }

    /// The SDK's own serialization of the same request: what policy-server decodes.
    #[test]
    fn requests_decode_as_the_sdks_type() {
        use kubewarden_policy_sdk::host_capabilities::SigstoreVerificationInputV2;
        let certificate = PUBLIC_KEY.replace("PUBLIC KEY", "CERTIFICATE");
        for requirement in [
            json!({"image": "r.example.com/h:*", "pubKeys": [PUBLIC_KEY], "annotations": {"a": "b"}}),
            json!({"image": "r.example.com/h:*", "keyless": [{"issuer": "i", "subject": "s"}]}),
            json!({"image": "r.example.com/h:*", "keylessPrefix": [{"issuer": "i", "urlPrefix": "https://p/"}]}),
            json!({"image": "r.example.com/h:*", "githubActions": {"owner": "o", "repo": "r"}}),
            json!({"image": "r.example.com/h:*", "certificates": [certificate], "requireRekorBundle": false}),
        ] {
            let request = parse(requirement)
                .expect("valid")
                .host_request("r.example.com/h:v1", 0);
            let typed: SigstoreVerificationInputV2 =
                serde_json::from_value(request.clone()).expect("the SDK's request");
            assert_eq!(serde_json::to_value(&typed).expect("serializable"), request);
        }
    }

    #[rstest]
    #[case::not_an_object(json!(["x"]), "signatures[0]: expected an object")]
    #[case::no_image(json!({"pubKeys": [PUBLIC_KEY]}), "signatures[0]: missing field `image`")]
    #[case::bad_image(json!({"image": "Registry/x", "pubKeys": [PUBLIC_KEY]}), "signatures[0].image \"Registry/x\": not a valid image reference")]
    #[case::unknown_key(json!({"image": "r.example.com/x", "pubkeys": [PUBLIC_KEY]}), "signatures[0]: unknown field \"pubkeys\"")]
    #[case::no_trust(json!({"image": "r.example.com/x"}), "signatures[0] (image \"r.example.com/x\"): needs exactly one of `pubKeys`, `keyless`, `keylessPrefix`, `githubActions`, `certificates`, has none")]
    #[case::two_trusts(json!({"image": "r.example.com/x", "pubKeys": [PUBLIC_KEY], "githubActions": {"owner": "o"}}), "has `pubKeys`, `githubActions`")]
    #[case::empty_keys(json!({"image": "r.example.com/x", "pubKeys": []}), "signatures[0].pubKeys: must not be empty")]
    #[case::not_pem(json!({"image": "r.example.com/x", "pubKeys": ["ssh-ed25519 AAAA"]}), "signatures[0].pubKeys[0] \"ssh-ed25519 AAAA\": not a PEM PUBLIC KEY")]
    #[case::bad_base64(json!({"image": "r.example.com/x", "pubKeys": ["-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----"]}), "signatures[0].pubKeys[0] \"-----BEGIN PUBLIC KEY-----\\nnot base64!\\n-...\": not a PEM PUBLIC KEY")]
    #[case::a_certificate_as_key(json!({"image": "r.example.com/x", "pubKeys": [PUBLIC_KEY.replace("PUBLIC KEY", "CERTIFICATE")]}), "not a PEM PUBLIC KEY")]
    #[case::key_as_certificate(json!({"image": "r.example.com/x", "certificates": [PUBLIC_KEY]}), "signatures[0].certificates[0] \"-----BEGIN PUBLIC KEY-----")]
    #[case::chain_without_certificates(json!({"image": "r.example.com/x", "pubKeys": [PUBLIC_KEY], "certificateChain": []}), "signatures[0].certificateChain: only with `certificates`, not with `pubKeys`")]
    #[case::rekor_not_bool(json!({"image": "r.example.com/x", "certificates": [PUBLIC_KEY.replace("PUBLIC KEY", "CERTIFICATE")], "requireRekorBundle": "yes"}), "signatures[0].requireRekorBundle: \"yes\": expected true or false")]
    #[case::empty_subject(json!({"image": "r.example.com/x", "keyless": [{"issuer": "https://i", "subject": ""}]}), "signatures[0].keyless[0].subject: must not be empty")]
    #[case::no_issuer(json!({"image": "r.example.com/x", "keyless": [{"subject": "s"}]}), "signatures[0].keyless[0]: missing field `issuer`")]
    #[case::prefix_not_url(json!({"image": "r.example.com/x", "keylessPrefix": [{"issuer": "https://i", "urlPrefix": "github.com/org"}]}), "signatures[0].keylessPrefix[0].urlPrefix \"github.com/org\": not an http(s) URL")]
    #[case::prefix_with_space(json!({"image": "r.example.com/x", "keylessPrefix": [{"issuer": "https://i", "urlPrefix": "https://git hub.com/"}]}), "not an http(s) URL")]
    #[case::prefix_bad_port(json!({"image": "r.example.com/x", "keylessPrefix": [{"issuer": "https://i", "urlPrefix": "https://h:port/"}]}), "not an http(s) URL")]
    #[case::owner_missing(json!({"image": "r.example.com/x", "githubActions": {"repo": "r"}}), "signatures[0].githubActions: missing field `owner`")]
    #[case::owner_typo(json!({"image": "r.example.com/x", "githubActions": {"ownr": "o"}}), "signatures[0].githubActions: unknown field \"ownr\"")]
    #[case::annotation_not_string(json!({"image": "r.example.com/x", "pubKeys": [PUBLIC_KEY], "annotations": {"n": 1}}), "signatures[0].annotations.n: 1: expected a string")]
    fn refuses_malformed_requirements(#[case] value: serde_json::Value, #[case] error: &str) {
        let refused = parse(value).expect_err("refused");
        assert!(refused.contains(error), "{refused:?} lacks {error:?}");
    }

    #[rstest]
    #[case::same_tag("r.example.com/h:v1", "r.example.com/h:v1", true)]
    #[case::other_tag("r.example.com/h:v1", "r.example.com/h:v2", false)]
    #[case::digest_of_a_tag(
        "r.example.com/h:v1",
        "r.example.com/h@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        true
    )]
    #[case::tag_of_a_digest(
        "r.example.com/h@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "r.example.com/h:v9",
        true
    )]
    #[case::other_repository("r.example.com/h:v1", "r.example.com/other:v1", false)]
    #[case::any_tag(
        "r.example.com/h:*",
        "r.example.com/h@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        true
    )]
    #[case::under("r.example.com/hooks/*", "r.example.com/hooks/a/b:v1", true)]
    #[case::not_under("r.example.com/hooks/*", "r.example.com/hooksx:v1", false)]
    #[case::docker_hub("busybox", "docker.io/library/busybox:latest", true)]
    fn governs_every_image_its_entry_could_be(
        #[case] entry: &str,
        #[case] image: &str,
        #[case] governed: bool,
    ) {
        let requirement = parse(json!({"image": entry, "pubKeys": [PUBLIC_KEY]})).expect("valid");
        let image = ImageReference::parse(image).expect("reference");
        assert_eq!(requirement.governs(&image), governed);
    }

    #[test]
    fn each_certificate_is_one_check() {
        let certificate = PUBLIC_KEY.replace("PUBLIC KEY", "CERTIFICATE");
        let requirement = parse(json!({"image": "r.example.com/x",
            "certificates": [certificate, certificate], "requireRekorBundle": true}))
        .expect("valid");
        assert_eq!(requirement.checks(), 2);
        let keys = parse(json!({"image": "r.example.com/x", "pubKeys": [PUBLIC_KEY, PUBLIC_KEY]}))
            .expect("valid");
        assert_eq!(keys.checks(), 1, "the host requires every key at once");
    }
}
