//! Container image references, parsed without regular expressions, as the container runtime
//! reads them.
//!
//! The kubelet and containerd parse references with Go's `distribution/reference` (v0.6,
//! `ParseDockerRef`). This hand-written parser accepts the same grammar, bracketed IPv6 hosts
//! included, and yields the same components; `tests/reference_differential.rs` holds it to
//! `distribution/reference` itself (through a small Go program) and to oci-spec's `Reference` on
//! a generated corpus. It exists because oci-spec compiles a large regex the first time it parses,
//! and policy-server gives every request a fresh wasm instance, so every request would pay for that
//! compilation (about 35 ms).
//!
//! Where the policy is stricter than the runtime, on purpose:
//! - a registry host with upper-case letters is refused. The runtime keeps the host as written
//!   and containerd finds a registry's mirror and rewrite configuration (RKE2's `registries.yaml`,
//!   `hosts.toml`) by its exact name, so `QUAY.IO/...` would bypass a `quay.io` mirror, and
//!   `INDEX.DOCKER.IO/library/x` is not Docker Hub to the runtime. Only lower-case
//!   `index.docker.io` is Docker Hub, as for the runtime;
//! - a first component that looks like a host (a dot or a port) but is not a valid one, as in
//!   `a_b.c/d`, is refused: distribution/reference reads it as a repository path on no registry,
//!   while containerd's resolver dials it as the host, so the policy could not tell what is pulled;
//! - digests in upper-case hex are refused, as go-digest refuses them (oci-spec accepts them);
//! - tags are ASCII only, as in the distribution grammar (Go's `\w`), where oci-spec's Rust regex
//!   lets any Unicode word character through.

use std::borrow::Cow;
use std::fmt;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub(crate) const LOCALHOST: &str = "localhost";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceError {
    Empty,
    InvalidFormat,
    NameContainsUppercase,
    RegistryContainsUppercase,
    NotAHost,
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
            Self::RegistryContainsUppercase => {
                "registry host must be lowercase (the runtime finds a registry's mirror \
                 configuration by its exact host name)"
            }
            Self::NotAHost => {
                "the first component looks like a registry host (a dot or a port) but is not one"
            }
            Self::NameTooLong => "repository name longer than 255 characters",
            Self::InvalidTag => "invalid tag format",
            Self::InvalidDigest => "invalid digest format",
            Self::UnsupportedDigest => "unsupported digest algorithm (sha256, sha384, sha512)",
            Self::InvalidDigestLength => "digest has the wrong length for its algorithm",
        })
    }
}

impl std::error::Error for ReferenceError {}

/// A parsed image reference, in the form the policy compares: the registry as written (but
/// `index.docker.io` folded onto `docker.io`), the repository with Docker Hub's `library/` prefix,
/// the tag (`latest` when neither tag nor digest is written) and the digest.
///
/// The components borrow from the parsed text where they can: settings arrive with every
/// request, so every allow-list entry is parsed on every request, and most need no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference<'a> {
    pub registry: &'a str,
    pub repository: Cow<'a, str>,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> ImageReference<'a> {
    /// Parses `input` as the runtime does: `docker.io` is the default registry and one-part names
    /// on it get `library/`.
    pub fn parse(input: &'a str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        // distribution/reference refuses a name that is a 64-hex identifier: it would be taken
        // for an image ID.
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ReferenceError::InvalidFormat);
        }
        let parts = split_reference(input)?;
        let (registry, remainder) = split_domain(parts.name)?;
        let repository = with_official_prefix(registry, remainder);
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(digest) = parts.digest {
            check_digest_algorithm(digest)?;
        }
        let tag = match (parts.tag, parts.digest) {
            (None, None) => Some(DEFAULT_TAG),
            (tag, _) => tag,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest: parts.digest,
        })
    }
}

/// Docker Hub's one-part names are official images under `library/`.
fn with_official_prefix<'a>(registry: &str, repository: &'a str) -> Cow<'a, str> {
    if registry == DOCKER_HUB && !repository.contains('/') {
        Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{repository}"))
    } else {
        Cow::Borrowed(repository)
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
    let name_and_tag_end = input.bytes().position(|b| b == b'@').unwrap_or(input.len());
    // A colon after the last slash starts the tag; any other colon belongs to the registry host.
    let mut tag_colon = None;
    for (i, b) in input.bytes().take(name_and_tag_end).enumerate() {
        match b {
            b'/' => tag_colon = None,
            b':' => tag_colon = Some(i),
            _ => {}
        }
    }
    let name_end = tag_colon.unwrap_or(name_and_tag_end);
    let name = &input[..name_end];
    let tag = tag_colon.map(|colon| &input[colon + 1..name_and_tag_end]);
    let digest = (name_and_tag_end < input.len()).then(|| &input[name_and_tag_end + 1..]);
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

/// The text before the first `b` and after it, or `None` without one. The grammar's functions
/// below split and scan bytes: every request parses its images and the entries of their
/// registries, and `str`'s pattern searchers cost more than these short strings (issue 27).
fn split_once_byte(text: &[u8], b: u8) -> Option<(&[u8], &[u8])> {
    let at = text.iter().position(|&byte| byte == b)?;
    Some((&text[..at], &text[at + 1..]))
}

/// `[domain/]path-component(/path-component)*`
pub(crate) fn is_valid_name(name: &str) -> bool {
    let name = name.as_bytes();
    match split_once_byte(name, b'/') {
        None => is_path_component(name),
        Some((first, rest)) => {
            rest.split(|&b| b == b'/').all(is_path_component)
                && (is_path_component(first) || is_domain(first))
        }
    }
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

/// `host(:port)?`, the host a domain name (`label(.label)*`, a label alphanumeric with inner
/// hyphens) or a bracketed IPv6 address (`[` hex digits and colons `]`).
fn is_domain(domain: &[u8]) -> bool {
    let (host_valid, port) = match domain.strip_prefix(b"[") {
        Some(bracketed) => match split_once_byte(bracketed, b']') {
            Some((address, port)) => (is_ipv6_address(address), port),
            None => return false,
        },
        None => {
            let colon = domain.iter().position(|&b| b == b':');
            let (host, port) = domain.split_at(colon.unwrap_or(domain.len()));
            (host.split(|&b| b == b'.').all(is_domain_label), port)
        }
    };
    host_valid && is_optional_port(port)
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

/// distribution/reference's `ipv6address`: what is between the brackets, loosely.
fn is_ipv6_address(address: &[u8]) -> bool {
    !address.is_empty() && address.iter().all(|b| b.is_ascii_hexdigit() || *b == b':')
}

/// Empty, or `:` and one or more digits.
fn is_optional_port(port: &[u8]) -> bool {
    match port.strip_prefix(b":") {
        Some(digits) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        None => port.is_empty(),
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
    if hex.len() != expected_len {
        Err(ReferenceError::InvalidDigestLength)
    } else if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        // go-digest, which the runtime validates with, takes lower-case hex only.
        Err(ReferenceError::InvalidDigest)
    } else {
        Ok(())
    }
}

/// distribution/reference's `splitDockerDomain`: the registry (`docker.io` when the name has
/// none, `index.docker.io` folded onto it) and the rest of the name, without Docker Hub's
/// `library/`. Refuses upper case in either (see the module's documentation for the host).
pub(crate) fn split_domain(name: &str) -> Result<(&str, &str), ReferenceError> {
    let slash = name.bytes().position(|b| b == b'/');
    let (registry, remainder) = match slash.map(|at| (&name[..at], &name[at + 1..])) {
        Some((first, rest)) if looks_like_registry(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    if !is_domain(registry.as_bytes()) {
        return Err(ReferenceError::NotAHost);
    }
    Ok((checked_registry(registry)?, checked_path(remainder)?))
}

/// Whether the first component of a name is a registry host, as the runtime decides: it has a
/// dot or a port, is `localhost`, or has upper-case letters (which no repository may have).
pub(crate) fn looks_like_registry(component: &str) -> bool {
    component
        .bytes()
        .any(|b| matches!(b, b'.' | b':' | b'A'..=b'Z'))
        || component == LOCALHOST
}

/// Whether `image` names its registry rather than leaving it to the runtime's default.
pub fn names_registry(image: &str) -> bool {
    image
        .split_once('/')
        .is_some_and(|(first, _)| looks_like_registry(first))
}

/// A registry host in the form compared: lower-case only, Docker Hub's legacy name folded.
pub(crate) fn checked_registry(registry: &str) -> Result<&str, ReferenceError> {
    if registry.bytes().any(|b| b.is_ascii_uppercase()) {
        Err(ReferenceError::RegistryContainsUppercase)
    } else {
        Ok(folded_registry(registry))
    }
}

/// A lower-case registry host with Docker Hub's legacy name folded.
pub(crate) fn folded_registry(registry: &str) -> &str {
    if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        registry
    }
}

/// A repository path: lower-case only.
pub(crate) fn checked_path(path: &str) -> Result<&str, ReferenceError> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        Err(ReferenceError::NameContainsUppercase)
    } else {
        Ok(path)
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
    #[case(
        "quay.io/kubevirt/sidecar-shim@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "quay.io",
        "kubevirt/sidecar-shim",
        None,
        Some(SHA)
    )]
    #[case(
        "quay.io/a__b/c---d.e_f:T_1.x-y",
        "quay.io",
        "a__b/c---d.e_f",
        Some("T_1.x-y"),
        None
    )]
    #[case(
        "[fd00::10]:5000/hooks/gpu:v1",
        "[fd00::10]:5000",
        "hooks/gpu",
        Some("v1"),
        None
    )]
    #[case("[::1]/hook", "[::1]", "hook", Some("latest"), None)]
    #[case("127.0.0.1:5000/hook", "127.0.0.1:5000", "hook", Some("latest"), None)]
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
        assert_eq!(parsed.tag, tag);
        assert_eq!(parsed.digest, digest);
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
    #[case(
        "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        ReferenceError::InvalidDigest
    )]
    #[case("image:*", ReferenceError::InvalidTag)]
    #[case("a b", ReferenceError::InvalidFormat)]
    // Found by fuzzing: an upper-case first component. The runtime takes it for a registry host.
    #[case("Regstr/by", ReferenceError::RegistryContainsUppercase)]
    #[case("Foo/bar:v1", ReferenceError::RegistryContainsUppercase)]
    #[case("localhost:5000/Foo", ReferenceError::InvalidFormat)]
    // Hosts as the runtime keeps them: upper case would miss the mirror configured for the host.
    #[case("QUAY.IO/acme/hook:v1", ReferenceError::RegistryContainsUppercase)]
    #[case("Quay.io/acme/hook", ReferenceError::RegistryContainsUppercase)]
    #[case(
        "INDEX.DOCKER.IO/library/busybox",
        ReferenceError::RegistryContainsUppercase
    )]
    #[case("Docker.io/busybox", ReferenceError::RegistryContainsUppercase)]
    #[case("[FD00::10]:5000/hook", ReferenceError::RegistryContainsUppercase)]
    // IPv6 only in brackets, the port only after them.
    #[case("fd00::10/hook", ReferenceError::InvalidFormat)]
    #[case("[fd00::10/hook", ReferenceError::InvalidFormat)]
    #[case("[]:5000/hook", ReferenceError::InvalidFormat)]
    #[case("[fd00::g]/hook", ReferenceError::InvalidFormat)]
    #[case("[fd00::10]:/hook", ReferenceError::InvalidFormat)]
    #[case("[fd00::10]x/hook", ReferenceError::InvalidFormat)]
    #[case("[fd00::10]:5000", ReferenceError::InvalidFormat)]
    // A host or a path? The runtime's parser and its resolver disagree.
    #[case("a_b.c/d", ReferenceError::NotAHost)]
    #[case("registry_1.example.com/hooks/gpu:v1", ReferenceError::NotAHost)]
    // An image ID, not a name.
    #[case(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ReferenceError::InvalidFormat
    )]
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
    #[case("index.docker.io/busybox:latest")]
    #[case("library/busybox")]
    fn folds_docker_hub_spellings(#[case] input: &str) {
        let parsed = ImageReference::parse(input).expect("valid reference");
        assert_eq!(parsed.to_string(), "docker.io/library/busybox:latest");
    }

    #[rstest]
    #[case("acme/hook:v1", false)]
    #[case("busybox", false)]
    #[case("docker.io/acme/hook", true)]
    #[case("registry:5000/hook", true)]
    #[case("localhost/hook", true)]
    #[case("[fd00::10]/hook", true)]
    #[case("registry.example.com/hooks/gpu", true)]
    fn names_its_registry(#[case] image: &str, #[case] expected: bool) {
        assert_eq!(names_registry(image), expected);
    }

    #[rstest]
    #[case("registry:5000/a", "registry:5001/a")]
    #[case("[fd00::10]:5000/a", "[fd00::10]:5001/a")]
    #[case("[fd00::10]:5000/a", "[fd00::10]/a")]
    #[case("[fd00::10]/a", "[fd00:0::10]/a")]
    fn registry_host_and_port_are_compared_as_written(#[case] a: &str, #[case] b: &str) {
        let a = ImageReference::parse(a).expect("valid");
        let b = ImageReference::parse(b).expect("valid");
        assert_ne!(a, b);
    }
}
