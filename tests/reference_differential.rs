//! The regex-free reference parser against oci-spec's `Reference` (the reference implementation)
//! on a large generated corpus of valid and nearly valid references.
//!
//! Two deliberate differences are allowed, both where oci-spec accepts what Docker refuses:
//! oci-spec's Rust regex reads `\w` in the tag grammar as any Unicode word character, where the
//! distribution grammar (Go's regexp) means ASCII only; and oci-spec accepts an upper-case
//! repository (`Foo/bar` as `docker.io/Foo/bar`), which Docker's `ParseNormalizedNamed` refuses.

use std::str::FromStr;

use hook_sidecar_policy::reference::{ImageReference, ReferenceError};
use oci_spec::distribution::Reference;

mod common;
use common::Rng;

const DOMAINS: &[&str] = &[
    "localhost",
    "localhost:5000",
    "example.com",
    "Example.COM",
    "a-b.c",
    "127.0.0.1:5000",
    "index.docker.io",
    "docker.io",
    "DOCKER.IO",
    "INDEX.DOCKER.IO",
    "xn--80ak6aa92e.com",
    "registry:5000",
    "Registry:5000",
    "ghcr.io",
    "quay.io",
    "r.e.g.i.s.t.r.y",
    "Foo",
    "foo",
    "a_b.c",
];
const BAD_DOMAINS: &[&str] = &[
    "-a.com",
    "a-.com",
    "a.com:",
    "a.com:12ab",
    "a..b",
    "localhost:",
    ":5000",
    "a:1:2",
    "",
];
const COMPONENTS: &[&str] = &[
    "a",
    "busybox",
    "library",
    "kubevirt",
    "sidecar-shim",
    "a.b",
    "a_b",
    "a__b",
    "a-b",
    "a--b",
    "0",
    "a.b-c_d",
    "example-hook-sidecar",
    "9z",
];
const BAD_COMPONENTS: &[&str] = &[
    "a___b", "a-", "-a", "A", "aB", "", "a..b", "ab.", ".ab", "é", "ſ", "a b", "x_", "_x", "a._b",
    "a-.b", "UPPER",
];
const TAGS: &[&str] = &["latest", "v1.2.3", "V1", "_x", "devel", "1.36", "a-b_c.d"];
const BAD_TAGS: &[&str] = &[
    "", "-x", ".x", "tägé", "t:t", "x y", "中文", "*", "v1@", "ab/cd",
];
const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn digest(rng: &mut Rng) -> String {
    let algorithms = [
        "sha256",
        "sha384",
        "sha512",
        "md5",
        "SHA256",
        "sha256+b64",
        "1sha",
        "sha-256",
        "",
        "sha256_x.y",
    ];
    let lengths = [64, 64, 96, 128, 63, 65, 32, 31, 0];
    let algorithm = rng.piece(&algorithms[..3], &algorithms[3..]);
    let mut hex = HEX[..lengths[rng.below(lengths.len())]].to_owned();
    if rng.chance(10) {
        hex = hex.to_ascii_uppercase();
    }
    if rng.chance(5) {
        hex.push('g');
    }
    format!("{algorithm}:{hex}")
}

fn reference(rng: &mut Rng) -> String {
    let mut text = String::new();
    if rng.chance(60) {
        text.push_str(rng.piece(DOMAINS, BAD_DOMAINS));
        text.push('/');
    }
    let components = 1 + rng.below(3);
    for i in 0..components {
        if i > 0 {
            text.push('/');
        }
        text.push_str(rng.piece(COMPONENTS, BAD_COMPONENTS));
    }
    if rng.chance(50) {
        text.push(':');
        text.push_str(rng.piece(TAGS, BAD_TAGS));
    }
    if rng.chance(25) {
        text.push('@');
        text.push_str(&digest(rng));
    }
    if rng.chance(15) {
        mutate(rng, &mut text);
    }
    text
}

/// Inserts, removes or doubles one character somewhere.
fn mutate(rng: &mut Rng, text: &mut String) {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let at = boundaries[rng.below(boundaries.len())];
    match rng.below(3) {
        0 => text.insert(
            at,
            [':', '/', '@', '.', '_', '-', 'A', '*', 'é', ' '][rng.below(10)],
        ),
        1 if at < text.len() => {
            text.remove(at);
        }
        _ => {
            if let Some(c) = text[at..].chars().next() {
                text.insert(at, c);
            }
        }
    }
}

/// The first allowed divergence: oci-spec accepts a tag with non-ASCII word characters.
fn is_unicode_tag_case(input: &str, theirs: &Reference) -> bool {
    theirs.tag().is_some_and(|tag| !tag.is_ascii()) && !input.is_ascii()
}

/// The second: oci-spec accepts an upper-case repository, which the policy refuses as Docker does.
fn is_uppercase_repository_case(
    ours: &Result<ImageReference, ReferenceError>,
    theirs: &Reference,
) -> bool {
    theirs.repository().bytes().any(|b| b.is_ascii_uppercase())
        && *ours == Err(ReferenceError::NameContainsUppercase)
}

#[test]
fn parses_exactly_like_oci_spec() {
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let (mut accepted, mut refused, mut unicode_tags, mut uppercase) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    for _ in 0..200_000 {
        let input = reference(&mut rng);
        let ours = ImageReference::parse(&input);
        let theirs = Reference::from_str(&input);
        match (&ours, &theirs) {
            (Ok(ours), Ok(theirs)) => {
                accepted += 1;
                let same = ours.registry == theirs.registry()
                    && ours.repository == theirs.repository()
                    && ours.tag.as_deref() == theirs.tag()
                    && ours.digest.as_deref() == theirs.digest();
                if !same {
                    mismatches.push(format!("{input:?}: ours {ours:?}, oci-spec {theirs:?}"));
                }
            }
            (Err(_), Err(_)) => refused += 1,
            (Err(_), Ok(theirs)) if is_unicode_tag_case(&input, theirs) => unicode_tags += 1,
            (Err(_), Ok(theirs)) if is_uppercase_repository_case(&ours, theirs) => uppercase += 1,
            _ => mismatches.push(format!("{input:?}: ours {ours:?}, oci-spec {theirs:?}")),
        }
    }
    println!(
        "accepted by both: {accepted}, refused by both: {refused}, unicode tags: {unicode_tags}, \
         upper-case repositories: {uppercase}"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    // The corpus must exercise both sides, or the comparison would prove little.
    assert!(
        accepted > 40_000 && refused > 40_000,
        "accepted {accepted}, refused {refused}"
    );
    assert!(
        unicode_tags > 0 && uppercase > 0,
        "the corpus should reach both documented divergences"
    );
}

#[test]
fn known_edge_cases_agree() {
    for input in [
        "busybox",
        "test.com:tag",
        "test.com:5000",
        "test.com/repo:tag",
        "test:5000/repo",
        "test:5000/repo:tag",
        "lowercase:Uppercase",
        "sub-dom1.foo.com/bar/baz/quux",
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "xn--n3h.com/myimage:xn--n3h.com",
        "Foo/bar",
        "localhost:5000/Foo",
        "a_b.c/d",
        "index.docker.io/busybox",
        "INDEX.DOCKER.IO/busybox",
        "docker.io/busybox",
        "DOCKER.IO/busybox",
        &"a".repeat(247),
        &"a".repeat(248),
        &format!("example.com/{}", "a".repeat(255)),
        &format!("example.com/{}", "a".repeat(256)),
    ] {
        let ours = ImageReference::parse(input);
        let theirs = Reference::from_str(input);
        match (&ours, &theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(
                    (
                        ours.registry.as_ref(),
                        ours.repository.as_ref(),
                        ours.tag.as_deref(),
                        ours.digest.as_deref()
                    ),
                    (
                        theirs.registry(),
                        theirs.repository(),
                        theirs.tag(),
                        theirs.digest()
                    ),
                    "{input}"
                );
            }
            (Err(_), Err(_)) => {}
            (Err(_), Ok(theirs)) if is_uppercase_repository_case(&ours, theirs) => {}
            _ => panic!("{input:?}: ours {ours:?}, oci-spec {theirs:?}"),
        }
    }
}
