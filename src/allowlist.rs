//! The allow-list of sidecar images (`allowedImages`): its entry forms and the matching rules.
//!
//! Everything is compared on parsed, normalized components, never on string prefixes, so
//! `ghcr.io/org/*` does not allow `ghcr.io/organisation/x` and `busybox` means the same as
//! `docker.io/library/busybox:latest`.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use crate::reference::{
    ImageReference, LOCALHOST, ReferenceError, checked_path, checked_registry, folded_registry,
    is_valid_name, looks_like_registry, split_reference,
};
use crate::swar::{HIGH, ONES, equal_bytes, first_flagged};

/// One parsed `allowedImages` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedImage<'a> {
    /// `repo[:tag]`, `repo@digest` or `repo:tag@digest`.
    Exact(ImageReference<'a>),
    /// `repo:*`: any tag or digest of one repository.
    AnyTag {
        registry: &'a str,
        repository: Cow<'a, str>,
    },
    /// `registry/path/*`: any repository under `path` (the whole registry when `path` is empty).
    Under { registry: &'a str, path: &'a str },
}

/// Why an `allowedImages` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    Reference(ReferenceError),
    /// A `*` anywhere but in the two wildcard forms.
    MisplacedWildcard,
    /// `repo:tag:*` or `repo@digest:*`.
    WildcardWithTagOrDigest,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reference(e) => write!(f, "not a valid image reference: {e}"),
            Self::MisplacedWildcard => f.write_str(
                "a wildcard is allowed only as `repo:*` (any tag of one repository) \
                 or `registry/path/*` (any repository under a path)",
            ),
            Self::WildcardWithTagOrDigest => {
                f.write_str("`repo:*` takes a repository without tag or digest before `:*`")
            }
        }
    }
}

impl<'a> AllowedImage<'a> {
    pub fn parse(entry: &'a str) -> Result<Self, EntryError> {
        if let Some(repository) = entry.strip_suffix(":*") {
            return parse_any_tag(repository);
        }
        if let Some(path) = entry.strip_suffix("/*") {
            return parse_under(path);
        }
        if entry.contains('*') {
            return Err(EntryError::MisplacedWildcard);
        }
        ImageReference::parse(entry)
            .map(Self::Exact)
            .map_err(EntryError::Reference)
    }

    /// The registry of the images this entry can allow.
    pub fn registry(&self) -> &'a str {
        match self {
            Self::Exact(reference) => reference.registry,
            Self::AnyTag { registry, .. } | Self::Under { registry, .. } => registry,
        }
    }

    /// Whether this entry allows the (normalized) requested image.
    pub fn allows(&self, image: &ImageReference) -> bool {
        match self {
            // A digest is what gets pulled: only a digest entry allows a digest request, and a
            // digest entry allows nothing but that digest.
            Self::Exact(entry) => {
                self.covers_repository(image)
                    && match (&entry.digest, &image.digest) {
                        (Some(allowed), Some(requested)) => allowed == requested,
                        (None, None) => entry.tag == image.tag,
                        _ => false,
                    }
            }
            Self::AnyTag { .. } | Self::Under { .. } => self.covers_repository(image),
        }
    }

    /// Whether the entry names the requested image's repository, or a path above it, whatever
    /// tag or digest either names: what a sidecar profile of this form is about.
    pub fn covers_repository(&self, image: &ImageReference) -> bool {
        match self {
            Self::Exact(entry) => {
                entry.registry == image.registry && entry.repository == image.repository
            }
            Self::AnyTag {
                registry,
                repository,
            } => *registry == image.registry && *repository == image.repository,
            Self::Under { registry, path } => {
                *registry == image.registry
                    && (path.is_empty()
                        || image
                            .repository
                            .strip_prefix(*path)
                            .is_some_and(|rest| rest.starts_with('/')))
            }
        }
    }
}

impl fmt::Display for AllowedImage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(reference) => write!(f, "{reference}"),
            Self::AnyTag {
                registry,
                repository,
            } => write!(f, "{registry}/{repository}:*"),
            Self::Under { registry, path: "" } => write!(f, "{registry}/*"),
            Self::Under { registry, path } => write!(f, "{registry}/{path}/*"),
        }
    }
}

fn parse_any_tag(repository: &str) -> Result<AllowedImage<'_>, EntryError> {
    if repository.contains('*') {
        return Err(EntryError::MisplacedWildcard);
    }
    let parts = split_reference(repository).map_err(EntryError::Reference)?;
    if parts.tag.is_some() || parts.digest.is_some() {
        return Err(EntryError::WildcardWithTagOrDigest);
    }
    let reference = ImageReference::parse(repository).map_err(EntryError::Reference)?;
    Ok(AllowedImage::AnyTag {
        registry: reference.registry,
        repository: reference.repository,
    })
}

/// `registry/path/*`, `registry/*` or, on Docker Hub, `path/*`.
fn parse_under(prefix: &str) -> Result<AllowedImage<'_>, EntryError> {
    let (first, rest) = match prefix.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (prefix, None),
    };
    // A colon may only be the registry's port (or inside its IPv6 address): `repo:tag/*` is no
    // prefix of repositories.
    if prefix.contains('*') || rest.is_some_and(|rest| rest.contains(':')) {
        return Err(EntryError::MisplacedWildcard);
    }
    let (registry, path) = if looks_like_registry(first) {
        (first, rest.unwrap_or(""))
    } else {
        ("docker.io", prefix)
    };
    // The prefix is valid exactly when a repository below it would be.
    let probe = if path.is_empty() {
        format!("{first}/x")
    } else {
        format!("{prefix}/x")
    };
    if !is_valid_name(&probe) {
        return Err(EntryError::Reference(ReferenceError::InvalidFormat));
    }
    let registry = checked_registry(registry).map_err(EntryError::Reference)?;
    let path = checked_path(path).map_err(EntryError::Reference)?;
    Ok(AllowedImage::Under { registry, path })
}

/// The entries of an `allowedImages` list that are refused, each with its index and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowListError {
    pub invalid: Vec<(usize, String, EntryError)>,
}

impl fmt::Display for AllowListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (index, entry, error)) in self.invalid.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "allowedImages[{index}] {entry:?}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AllowListError {}

/// Parses every entry of an `allowedImages` list, as `validate_settings` does, reporting all the
/// invalid ones at once. Requests parse only the entries they need ([`LazyAllowList`]).
pub fn check_allow_list<S: AsRef<str>>(entries: &[S]) -> Result<(), AllowListError> {
    let invalid: Vec<_> = (entries.iter().enumerate())
        .filter_map(|(index, entry)| {
            let entry = entry.as_ref();
            let error = AllowedImage::parse(entry).err()?;
            Some((index, entry.to_owned(), error))
        })
        .collect();
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(AllowListError { invalid })
    }
}

/// `allowedImages`, parsed only as far as requests need: an entry is parsed (once, then kept
/// with the rules) only when it could allow an image of a request, that is when it names the
/// image's registry. `validate_settings` has already checked every entry.
#[derive(Debug, Default)]
pub struct LazyAllowList<'a> {
    entries: &'a [Cow<'a, str>],
    /// The registry each entry names, read at the first look for an image.
    registries: OnceCell<Vec<Option<&'a str>>>,
    parsed: Vec<OnceCell<Result<AllowedImage<'a>, EntryError>>>,
}

impl<'a> LazyAllowList<'a> {
    pub fn new(entries: &'a [Cow<'a, str>]) -> Self {
        Self {
            entries,
            registries: OnceCell::new(),
            parsed: entries.iter().map(|_| OnceCell::new()).collect(),
        }
    }

    /// The first entry that allows the image; or, failing closed, the first invalid entry met
    /// on the way (the entries of other registries are not looked at).
    pub fn find(&self, image: &ImageReference) -> Result<Option<&AllowedImage<'a>>, String> {
        let registries = (self.registries)
            .get_or_init(|| self.entries.iter().map(|e| entry_registry(e)).collect());
        let entries = self.entries.iter().zip(registries).zip(&self.parsed);
        for (index, ((entry, registry), parsed)) in entries.enumerate() {
            if registry.is_some_and(|registry| registry != image.registry) {
                continue;
            }
            match parsed.get_or_init(|| AllowedImage::parse(entry)) {
                Ok(allowed) if allowed.allows(image) => return Ok(Some(allowed)),
                Ok(_) => {}
                Err(error) => return Err(format!("allowedImages[{index}] {entry:?}: {error}")),
            }
        }
        Ok(None)
    }
}

/// The registry an entry names, read without parsing the entry; `None` when that cannot be told
/// so cheaply (the entry is then parsed). A tag or digest has no `/`, so the first component of
/// the entry is that of its name, and `split_domain` decides the registry from it.
///
/// Every entry is read so for every request with sidecars, so in one scan of the bytes up to
/// the first `/`, eight at a time ([`chunk_classes`]): the first component looks like a registry
/// (`looks_like_registry`) when it has a `.`, a `:` or an upper-case letter, or is `localhost`;
/// an upper-case one is not a valid registry (`checked_registry`).
fn entry_registry(entry: &str) -> Option<&str> {
    let mut seen = 0;
    for (index, chunk) in entry.as_bytes().chunks(8).enumerate() {
        // The last chunk padded with zero bytes, which no class has.
        let word = <[u8; 8]>::try_from(chunk).map_or_else(
            |_| (chunk.iter().rev()).fold(0, |word, &byte| word << 8 | u64::from(byte)),
            u64::from_le_bytes,
        );
        let (slash, classes) = chunk_classes(word);
        seen |= classes;
        if let Some(offset) = slash {
            return registry_of(&entry[..index * 8 + offset], seen);
        }
    }
    Some("docker.io")
}

/// The registry named by `first`, an entry's first component, whose bytes have the classes
/// `seen`.
fn registry_of(first: &str, seen: u8) -> Option<&str> {
    if seen & UPPER != 0 {
        None
    } else if seen & HOST != 0 || first == LOCALHOST {
        Some(folded_registry(first))
    } else {
        Some("docker.io")
    }
}

/// The offset of the first `/` of eight bytes (the first in memory the lowest), if any, and the
/// classes of the bytes before it: [`HOST`] for `.`, `:` and `A` to `Z`, [`UPPER`] for these.
/// The tests of [`crate::swar`]: the first slash is exact, and so is whether any byte before it
/// is flagged; the range test has no carry across bytes.
fn chunk_classes(chunk: u64) -> (Option<usize>, u8) {
    let offset = first_flagged(equal_bytes(chunk, b'/'));
    let before = offset.map_or(u64::MAX, |offset| (1u64 << (offset * 8)) - 1);
    // `A` to `Z`: the seven low bits less than `Z` + 1 and at least `A`, the high bit clear.
    let low = chunk & (ONES * 127);
    let below_z = (ONES * (127 + u64::from(b'Z') + 1)).wrapping_sub(low);
    let from_a = low + ONES * (127 - u64::from(b'A') + 1);
    let upper = below_z & from_a & !chunk & HIGH & before;
    let host = (equal_bytes(chunk, b'.') | equal_bytes(chunk, b':')) & before;
    let mut classes = 0;
    if upper != 0 {
        classes |= HOST | UPPER;
    }
    if host != 0 {
        classes |= HOST;
    }
    (offset, classes)
}

/// What [`entry_registry`] looks for in the bytes before the first `/`.
const HOST: u8 = 1;
const UPPER: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn allows(entry: &str, image: &str) -> bool {
        let entry = AllowedImage::parse(entry).expect("valid entry");
        let image = ImageReference::parse(image).expect("valid image");
        entry.allows(&image)
    }

    #[rstest]
    // exact tags, with Docker Hub's spellings
    #[case("busybox:1.36", "busybox:1.36", true)]
    #[case("busybox:1.36", "docker.io/library/busybox:1.36", true)]
    #[case("busybox:1.36", "index.docker.io/library/busybox:1.36", true)]
    #[case("docker.io/library/busybox:1.36", "busybox:1.36", true)]
    #[case("busybox:1.36", "busybox:1.37", false)]
    #[case("busybox", "busybox:latest", true)]
    #[case("busybox", "busybox", true)]
    #[case("busybox:1.36", "busybox", false)]
    #[case("busybox:1.36", "myorg/busybox:1.36", false)]
    // hosts and ports are compared as written (upper-case hosts are refused)
    #[case("[fd00::10]:5000/hooks/gpu:v1", "[fd00::10]:5000/hooks/gpu:v1", true)]
    #[case("[fd00::10]:5000/hooks/*", "[fd00::10]:5000/hooks/gpu:v1", true)]
    #[case("[fd00::10]:5000/*", "[fd00::10]:5000/hooks/gpu:v1", true)]
    #[case("[fd00::10]:5000/hooks/gpu:*", "[fd00::10]:5000/hooks/gpu:v2", true)]
    #[case("[fd00::10]:5000/hooks/*", "[fd00::10]:5001/hooks/gpu:v1", false)]
    #[case("[fd00::10]:5000/hooks/*", "[fd00::10]/hooks/gpu:v1", false)]
    #[case("[fd00::10]/hooks/*", "[fd00::11]/hooks/gpu:v1", false)]
    #[case(
        "registry.example.com:5000/hooks/gpu:v1",
        "registry.example.com/hooks/gpu:v1",
        false
    )]
    #[case(
        "registry.example.com/hooks/gpu:v1",
        "registry.example.com:443/hooks/gpu:v1",
        false
    )]
    // digests
    #[case("busybox:1.36", &format!("busybox:1.36@{D1}"), false)]
    #[case(&format!("busybox@{D1}"), &format!("busybox@{D1}"), true)]
    #[case(&format!("busybox@{D1}"), &format!("busybox:1.36@{D1}"), true)]
    #[case(&format!("busybox:1.36@{D1}"), &format!("busybox@{D1}"), true)]
    #[case(&format!("busybox:1.36@{D1}"), &format!("busybox@{D2}"), false)]
    #[case(&format!("busybox:1.36@{D1}"), "busybox:1.36", false)]
    #[case(&format!("busybox@{D1}"), &format!("other@{D1}"), false)]
    // repo:*
    #[case("ghcr.io/org/hook:*", "ghcr.io/org/hook:v2", true)]
    #[case("ghcr.io/org/hook:*", &format!("ghcr.io/org/hook@{D2}"), true)]
    #[case("ghcr.io/org/hook:*", "ghcr.io/org/hook", true)]
    #[case("ghcr.io/org/hook:*", "ghcr.io/org/hook2:v2", false)]
    #[case("ghcr.io/org/hook:*", "ghcr.io/org/hook/sub:v2", false)]
    #[case("busybox:*", "docker.io/library/busybox:x", true)]
    // registry/path/*
    #[case("ghcr.io/org/*", "ghcr.io/org/hook:v1", true)]
    #[case("ghcr.io/org/*", "ghcr.io/org/team/hook:v1", true)]
    #[case("ghcr.io/org/*", &format!("ghcr.io/org/hook@{D1}"), true)]
    #[case("ghcr.io/org/*", "ghcr.io/organisation/hook:v1", false)]
    #[case("ghcr.io/org/*", "ghcr.io/org:v1", false)]
    #[case("ghcr.io/org/*", "quay.io/org/hook:v1", false)]
    #[case("ghcr.io/*", "ghcr.io/anything/at/all:v1", true)]
    #[case(
        "registry:5000/kubevirt/*",
        "registry:5000/kubevirt/example-hook-sidecar:devel",
        true
    )]
    #[case(
        "registry:5000/kubevirt/*",
        "registry/kubevirt/example-hook-sidecar:devel",
        false
    )]
    #[case("myorg/*", "docker.io/myorg/hook:1", true)]
    #[case("myorg/*", "myorg:1", false)]
    #[case("library/*", "busybox", true)]
    #[case("docker.io/*", "busybox", true)]
    #[case("index.docker.io/*", "someone/thing:1", true)]
    fn matching(#[case] entry: &str, #[case] image: &str, #[case] expected: bool) {
        assert_eq!(allows(entry, image), expected, "{entry} vs {image}");
    }

    #[rstest]
    #[case("*")]
    #[case("**")]
    #[case("ghcr.io/*/hook")]
    #[case("ghcr.io/org/hook*")]
    #[case("ghcr.io/org/hook:v*")]
    #[case("ghcr.io/org/hook:v1:*")]
    #[case("ghcr.io/org/*/*")]
    #[case("ghcr.io/org/hook:v1/*")]
    #[case("*/hook")]
    #[case("ghcr.io/Org/*")]
    #[case("Foo/*")]
    #[case("Foo/bar:*")]
    #[case("")]
    #[case("Busybox")]
    #[case("busybox@sha256:abc")]
    #[case("GHCR.io/*")]
    #[case("QUAY.IO/acme/hook:v1")]
    #[case("Quay.io/acme/hook:*")]
    #[case("INDEX.DOCKER.IO/library/busybox")]
    #[case("[FD00::10]:5000/hooks/*")]
    #[case("[fd00::10]:5000/hooks:v1/*")]
    #[case("fd00::10/hooks/*")]
    fn refuses_invalid_entries(#[case] entry: &str) {
        assert!(
            AllowedImage::parse(entry).is_err(),
            "{entry:?} must be refused"
        );
    }

    #[test]
    fn wildcard_with_tag_is_named() {
        assert_eq!(
            AllowedImage::parse("busybox:1:*"),
            Err(EntryError::WildcardWithTagOrDigest)
        );
        assert_eq!(
            AllowedImage::parse(&format!("busybox@{D1}:*")),
            Err(EntryError::WildcardWithTagOrDigest)
        );
    }

    #[test]
    fn list_error_names_every_bad_entry() {
        let error = check_allow_list(&["busybox", "not a ref", "ok:1", "*"]).expect_err("invalid");
        let message = error.to_string();
        assert!(
            message.contains("allowedImages[1] \"not a ref\""),
            "{message}"
        );
        assert!(message.contains("allowedImages[3] \"*\""), "{message}");
        assert_eq!(error.invalid.len(), 2);
    }

    #[rstest]
    #[case("busybox:1.36", Some("docker.io"))]
    #[case("library/*", Some("docker.io"))]
    #[case("myorg/*", Some("docker.io"))]
    #[case("ghcr.io/org/hook:*", Some("ghcr.io"))]
    #[case("index.docker.io/*", Some("docker.io"))]
    #[case("registry:5000/kubevirt/*", Some("registry:5000"))]
    #[case("localhost/hook:1", Some("localhost"))]
    #[case("[fd00::10]:5000/hooks/*", Some("[fd00::10]:5000"))]
    #[case("GHCR.io/org/hook", None)]
    // The eight-byte scan: a first component across chunks, the slash last in a chunk, and bytes
    // whose low seven bits are `A` to `Z` but whose high bit is set (not upper-case letters).
    #[case("registry.example.com/team/hook:v1", Some("registry.example.com"))]
    #[case("abcdefg/hook:v1", Some("docker.io"))]
    #[case("abcdefghijklmno/hook:v1", Some("docker.io"))]
    #[case("abcdefgHijklmno/hook:v1", None)]
    #[case("abcdefghijklmn:/hook", Some("abcdefghijklmn:"))]
    #[case("\u{a1}\u{a1}/]a:", Some("docker.io"))]
    #[case("a/B.c:D", Some("docker.io"))]
    fn the_registry_of_an_entry_is_read_without_parsing_it(
        #[case] entry: &str,
        #[case] registry: Option<&str>,
    ) {
        assert_eq!(entry_registry(entry), registry);
        if let (Some(registry), Ok(parsed)) = (registry, AllowedImage::parse(entry)) {
            let named = match parsed {
                AllowedImage::Exact(reference) => reference.registry,
                AllowedImage::AnyTag { registry, .. } | AllowedImage::Under { registry, .. } => {
                    registry
                }
            };
            assert_eq!(named, registry, "{entry}");
        }
    }

    #[test]
    fn a_lazy_list_parses_only_the_entries_of_the_image_registry() {
        let entries = ["quay.io/Not/Valid", "ghcr.io/org/*", "quay.io/hooks/a:1"].map(Cow::from);
        let list = LazyAllowList::new(&entries);
        let image = ImageReference::parse("ghcr.io/org/hook:v1").expect("image");
        assert!(matches!(list.find(&image), Ok(Some(_))));
        assert!(list.parsed[0].get().is_none() && list.parsed[2].get().is_none());
        // An invalid entry on the way fails closed, naming it.
        let quay = ImageReference::parse("quay.io/hooks/a:1").expect("image");
        assert_eq!(
            list.find(&quay).map(|found| found.is_some()),
            Err(
                "allowedImages[0] \"quay.io/Not/Valid\": not a valid image reference: \
                 invalid image reference format"
                    .to_owned()
            )
        );
        let other = ImageReference::parse("docker.io/library/busybox").expect("image");
        assert_eq!(list.find(&other), Ok(None));
    }

    proptest::proptest! {
        /// The one scan reads the registry that splitting the entry at its first `/` reads.
        #[test]
        fn entry_registry_is_that_of_the_first_component(entry in proptest::prop_oneof![
            "[a-zA-Z0-9.:/_@\\[\\]-]{0,24}",
            // Eight-byte chunks with every byte there is, and the slash anywhere in them.
            "[\\x00-\\x7f\\u{80}-\\u{10ffff}]{0,20}/?[a-zA-Z.:@{|}~\\[\\]`-]{0,20}",
            "(localhost|localhosts|LocalHost|index.docker.io|docker.io)(/[a-z]{0,3}){0,2}",
        ]) {
            let expected = match entry.split_once('/') {
                Some((first, _)) if looks_like_registry(first) => checked_registry(first).ok(),
                _ => Some("docker.io"),
            };
            proptest::prop_assert_eq!(entry_registry(&entry), expected);
        }
    }
}
