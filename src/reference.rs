//! Container image references, parsed without regular expressions.
//!
//! The grammar is the one of the distribution project (`reference.go`), as implemented by
//! `oci_spec::distribution::Reference`. oci-spec compiles a large regex the first time it parses,
//! and policy-server gives every request a fresh wasm instance, so every request would pay for
//! that compilation (about 35 ms). This hand-written parser accepts the same strings and yields
//! the same components; `tests/reference_differential.rs` holds it to oci-spec on a generated
//! corpus. The one deliberate difference: tags are ASCII only, as in the distribution grammar
//! (Go's `\w`), where oci-spec's Rust regex lets any Unicode word character through.

use std::borrow::Cow;
use std::fmt;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceError {
    Empty,
    InvalidFormat,
    NameContainsUppercase,
    NameTooLong,
    InvalidTag,
    InvalidDigest,
    UnsupportedDigest,
    InvalidDigestLength,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty image reference",
            Self::InvalidFormat => "invalid image reference format",
            Self::NameContainsUppercase => "repository name must be lowercase",
            Self::NameTooLong => "repository name longer than 255 characters",
            Self::InvalidTag => "invalid tag format",
            Self::InvalidDigest => "invalid digest format",
            Self::UnsupportedDigest => "unsupported digest algorithm (sha256, sha384, sha512)",
            Self::InvalidDigestLength => "digest has the wrong length for its algorithm",
        })
    }
}

impl std::error::Error for ReferenceError {}

/// A parsed image reference, with the components oci-spec's `Reference` gives:
/// the registry as written (but `index.docker.io` folded onto `docker.io`), the repository with
/// Docker Hub's `library/` prefix, the tag (`latest` when neither tag nor digest is written)
/// and the digest.
///
/// The components borrow from the parsed text where they can: settings arrive with every
/// request, so every allow-list entry is parsed on every request, and most need no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference<'a> {
    pub registry: Cow<'a, str>,
    pub repository: Cow<'a, str>,
    pub tag: Option<Cow<'a, str>>,
    pub digest: Option<Cow<'a, str>>,
}

impl<'a> ImageReference<'a> {
    /// Parses `input` as Docker does (`docker.io` default registry, `library/` for one-part names).
    pub fn parse(input: &'a str) -> Result<Self, ReferenceError> {
        Self::parse_with(input, |registry| registry)
    }

    /// The form used for comparisons: registry hosts are case-insensitive, so the registry is
    /// lower-cased, and Docker Hub's spellings are folded onto `docker.io/library/...`.
    pub fn normalized(self) -> Self {
        let registry = normalize_registry(self.registry);
        let repository = with_official_prefix(&registry, self.repository);
        Self {
            registry,
            repository,
            ..self
        }
    }

    /// Parses and normalizes in one step.
    pub fn parse_normalized(input: &'a str) -> Result<Self, ReferenceError> {
        Self::parse_with(input, normalize_registry)
    }

    /// The same reference, owning its components.
    pub fn into_owned(self) -> ImageReference<'static> {
        ImageReference {
            registry: Cow::Owned(self.registry.into_owned()),
            repository: Cow::Owned(self.repository.into_owned()),
            tag: self.tag.map(|tag| Cow::Owned(tag.into_owned())),
            digest: self.digest.map(|digest| Cow::Owned(digest.into_owned())),
        }
    }

    fn parse_with(
        input: &'a str,
        registry_of: fn(Cow<'a, str>) -> Cow<'a, str>,
    ) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let parts = split_reference(input)?;
        let (domain, remainder) = split_domain(parts.name);
        if remainder.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::NameContainsUppercase);
        }
        let registry = registry_of(Cow::Borrowed(domain));
        let repository = with_official_prefix(&registry, Cow::Borrowed(remainder));
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(digest) = parts.digest {
            check_digest_algorithm(digest)?;
        }
        let tag = match (parts.tag, parts.digest) {
            (None, None) => Some(Cow::Borrowed(DEFAULT_TAG)),
            (tag, _) => tag.map(Cow::Borrowed),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest: parts.digest.map(Cow::Borrowed),
        })
    }
}

/// Docker Hub's one-part names are official images under `library/`.
fn with_official_prefix<'a>(registry: &str, repository: Cow<'a, str>) -> Cow<'a, str> {
    if registry == DOCKER_HUB && !repository.contains('/') {
        Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{repository}"))
    } else {
        repository
    }
}

impl fmt::Display for ImageReference<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A reference split into its textual parts, each already checked against the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReferenceParts<'a> {
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Splits `name[:tag][@digest]` and checks each part's grammar (not the digest algorithm).
pub(crate) fn split_reference(input: &str) -> Result<ReferenceParts<'_>, ReferenceError> {
    let bytes = input.as_bytes();
    let name_and_tag_end = memchr(b'@', bytes).unwrap_or(bytes.len());
    // A colon after the last slash starts the tag; any other colon is a registry port.
    let mut tag_colon = None;
    for (i, &b) in bytes[..name_and_tag_end].iter().enumerate() {
        match b {
            b'/' => tag_colon = None,
            b':' => tag_colon = Some(i),
            _ => {}
        }
    }
    let name_end = tag_colon.unwrap_or(name_and_tag_end);
    let name = &input[..name_end];
    let tag = tag_colon.map(|colon| &input[colon + 1..name_and_tag_end]);
    let digest = (name_and_tag_end < bytes.len()).then(|| &input[name_and_tag_end + 1..]);
    if !is_valid_name(name) {
        return Err(ReferenceError::InvalidFormat);
    }
    if tag.is_some_and(|tag| !is_valid_tag(tag)) {
        return Err(ReferenceError::InvalidTag);
    }
    if digest.is_some_and(|digest| !is_valid_digest_syntax(digest)) {
        return Err(ReferenceError::InvalidDigest);
    }
    Ok(ReferenceParts { name, tag, digest })
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// `[domain/]path-component(/path-component)*`
pub(crate) fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let first_end = memchr(b'/', bytes).unwrap_or(bytes.len());
    let (first, rest) = bytes.split_at(first_end);
    let rest_valid = rest.is_empty() || rest[1..].split(|&b| b == b'/').all(is_path_component);
    rest_valid && (is_path_component(first) || (!rest.is_empty() && is_domain(first)))
}

/// `[a-z0-9]+` runs joined by one separator each: `.`, `_`, `__` or any run of `-`.
fn is_path_component(component: &[u8]) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let len = component.len();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < len && alnum(component[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == len {
            return true;
        }
        match component[i] {
            b'.' => i += 1,
            b'_' => {
                i += if component.get(i + 1) == Some(&b'_') {
                    2
                } else {
                    1
                }
            }
            b'-' => {
                while i < len && component[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `label(.label)*(:port)?` where a label is alphanumeric with inner hyphens.
fn is_domain(domain: &[u8]) -> bool {
    let host_end = memchr(b':', domain).unwrap_or(domain.len());
    let (host, port) = domain.split_at(host_end);
    let port_valid =
        port.is_empty() || (port.len() > 1 && port[1..].iter().all(u8::is_ascii_digit));
    port_valid && host.split(|&b| b == b'.').all(is_domain_label)
}

fn is_domain_label(label: &[u8]) -> bool {
    match (label.first(), label.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}` with ASCII `\w`.
fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            word(*first)
                && bytes.len() <= TAG_LENGTH_MAX
                && rest.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
        }
        None => false,
    }
}

/// `algorithm:hex` with `algorithm = [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*` and
/// at least 32 hex digits.
fn is_valid_digest_syntax(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_valid = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_valid && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_digest_algorithm(digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(ReferenceError::InvalidDigest)?;
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::UnsupportedDigest),
    };
    if hex.len() == expected_len {
        Ok(())
    } else {
        Err(ReferenceError::InvalidDigestLength)
    }
}

/// Docker's `splitDomain`: the first component is a registry only when it looks like a host
/// (a dot or a port) or is `localhost`. Returns the registry as written, with `index.docker.io`
/// folded onto `docker.io`, and the rest of the name (without Docker Hub's `library/`).
pub(crate) fn split_domain(name: &str) -> (&str, &str) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest)) if looks_like_registry(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    (canonical_registry(domain), remainder)
}

pub(crate) fn looks_like_registry(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// A registry host lower-cased, with Docker Hub's legacy name folded onto `docker.io`.
pub(crate) fn normalize_registry(registry: Cow<'_, str>) -> Cow<'_, str> {
    if registry.eq_ignore_ascii_case(DOCKER_HUB_LEGACY) {
        Cow::Borrowed(DOCKER_HUB)
    } else if registry.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(registry.to_ascii_lowercase())
    } else {
        registry
    }
}

/// Folds the spellings of Docker Hub onto one name (case-sensitively, as Docker does).
pub(crate) fn canonical_registry(registry: &str) -> &str {
    if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[rstest]
    #[case("busybox", "docker.io", "library/busybox", Some("latest"), None)]
    #[case(
        "library/busybox:1.36",
        "docker.io",
        "library/busybox",
        Some("1.36"),
        None
    )]
    #[case(
        "index.docker.io/busybox",
        "docker.io",
        "library/busybox",
        Some("latest"),
        None
    )]
    #[case("test.com:5000", "docker.io", "library/test.com", Some("5000"), None)]
    #[case("localhost/hook", "localhost", "hook", Some("latest"), None)]
    #[case("localhost:5000/a/b:v1", "localhost:5000", "a/b", Some("v1"), None)]
    #[case(
        "registry:5000/kubevirt/example-hook-sidecar:devel",
        "registry:5000",
        "kubevirt/example-hook-sidecar",
        Some("devel"),
        None
    )]
    #[case("quay.io/kubevirt/sidecar-shim@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "quay.io", "kubevirt/sidecar-shim", None, Some(SHA))]
    #[case(
        "Quay.IO/a__b/c---d.e_f:T_1.x-y",
        "Quay.IO",
        "a__b/c---d.e_f",
        Some("T_1.x-y"),
        None
    )]
    #[case("a_b.c/d", "a_b.c", "d", Some("latest"), None)]
    fn parses_like_docker(
        #[case] input: &str,
        #[case] registry: &str,
        #[case] repository: &str,
        #[case] tag: Option<&str>,
        #[case] digest: Option<&str>,
    ) {
        let parsed = ImageReference::parse(input).expect("valid reference");
        assert_eq!(parsed.registry, registry);
        assert_eq!(parsed.repository, repository);
        assert_eq!(parsed.tag.as_deref(), tag);
        assert_eq!(parsed.digest.as_deref(), digest);
    }

    #[rstest]
    #[case("", ReferenceError::Empty)]
    #[case("Busybox", ReferenceError::InvalidFormat)]
    #[case("busybox:", ReferenceError::InvalidTag)]
    #[case("busybox:-x", ReferenceError::InvalidTag)]
    #[case("busybox:tägé", ReferenceError::InvalidTag)]
    #[case("a/b:c/d", ReferenceError::InvalidFormat)]
    #[case("a..b/c", ReferenceError::InvalidFormat)]
    #[case("a-/b", ReferenceError::InvalidFormat)]
    #[case("a___b", ReferenceError::InvalidFormat)]
    #[case("localhost:/a", ReferenceError::InvalidFormat)]
    #[case("-a.com/b", ReferenceError::InvalidFormat)]
    #[case("a.com/", ReferenceError::InvalidFormat)]
    #[case("busybox@sha256:abc", ReferenceError::InvalidDigest)]
    #[case(
        "busybox@md5:0123456789abcdef0123456789abcdef",
        ReferenceError::UnsupportedDigest
    )]
    #[case(
        "busybox@sha256:0123456789abcdef0123456789abcdef",
        ReferenceError::InvalidDigestLength
    )]
    #[case(
        "busybox@@sha256:0123456789abcdef0123456789abcdef",
        ReferenceError::InvalidDigest
    )]
    #[case("image:*", ReferenceError::InvalidTag)]
    #[case("a b", ReferenceError::InvalidFormat)]
    // Found by fuzzing: an upper-case first component that is no registry.
    #[case("Regstr/by", ReferenceError::NameContainsUppercase)]
    #[case("Foo/bar:v1", ReferenceError::NameContainsUppercase)]
    #[case("localhost:5000/Foo", ReferenceError::InvalidFormat)]
    fn rejects_invalid(#[case] input: &str, #[case] error: ReferenceError) {
        assert_eq!(ImageReference::parse(input), Err(error));
    }

    #[test]
    fn rejects_long_tag_and_name() {
        let tag = "t".repeat(129);
        assert_eq!(
            ImageReference::parse(&format!("a:{tag}")),
            Err(ReferenceError::InvalidTag)
        );
        // The 255 limit counts the `library/` prefix Docker Hub names get.
        let name = "n".repeat(250);
        assert_eq!(
            ImageReference::parse(&name),
            Err(ReferenceError::NameTooLong)
        );
    }

    #[rstest]
    #[case("busybox")]
    #[case("docker.io/library/busybox:latest")]
    #[case("index.docker.io/library/busybox")]
    #[case("DOCKER.IO/busybox")]
    #[case("Index.Docker.Io/busybox:latest")]
    fn normalizes_docker_hub_spellings(#[case] input: &str) {
        let normalized = ImageReference::parse_normalized(input).expect("valid reference");
        assert_eq!(normalized.to_string(), "docker.io/library/busybox:latest");
    }

    #[test]
    fn registry_port_is_significant() {
        let a = ImageReference::parse_normalized("registry:5000/a").expect("valid");
        let b = ImageReference::parse_normalized("registry:5001/a").expect("valid");
        assert_ne!(a, b);
    }
}
