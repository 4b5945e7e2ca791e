//! Kubernetes names, as apimachinery's `validation` package checks them (`IsDNS1123Subdomain`,
//! `IsQualifiedName`): what the API server would accept, so that the policy and the sync job
//! refuse a name before an object with it is looked for in vain.

/// The longest DNS subdomain: an object name, or the prefix of a qualified name.
pub const SUBDOMAIN_MAX: usize = 253;
/// The longest name part of a qualified name.
const QUALIFIED_NAME_MAX: usize = 63;

/// An RFC 1123 subdomain (`IsDNS1123Subdomain`): the name of most objects (a Setting, a
/// ClusterAdmissionPolicy) and the prefix of an annotation key. Lower-case letters, digits, `-`
/// and `.`, each dot-separated label beginning and ending with a letter or digit, at most
/// [`SUBDOMAIN_MAX`] characters.
pub fn is_dns_subdomain(name: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= SUBDOMAIN_MAX
        && name.split('.').all(|label| {
            label.starts_with(alphanumeric)
                && label.ends_with(alphanumeric)
                && label.chars().all(|c| alphanumeric(c) || c == '-')
        })
}

/// A qualified name (`[prefix/]name`, `IsQualifiedName`): the form of annotation keys.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "the prefix {prefix:?} must be a lowercase DNS subdomain of at most \
                 {SUBDOMAIN_MAX} characters"
        ));
    }
    let bytes = name.as_bytes();
    let inner_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let valid = !bytes.is_empty()
        && bytes.len() <= QUALIFIED_NAME_MAX
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(inner_ok);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the name {name:?} must be 1 to {QUALIFIED_NAME_MAX} characters of letters, digits, \
             '-', '_' and '.', beginning and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("whitelisted-sidecars", true)]
    #[case("my.sidecars-2", true)]
    #[case("a", true)]
    #[case("0", true)]
    #[case(&"a".repeat(SUBDOMAIN_MAX), true)]
    #[case(&"a".repeat(SUBDOMAIN_MAX + 1), false)]
    #[case("", false)]
    #[case("Whitelisted", false)]
    #[case("a..b", false)]
    #[case(".a", false)]
    #[case("a.", false)]
    #[case("-a", false)]
    #[case("a-", false)]
    #[case("a_b", false)]
    #[case("a b", false)]
    #[case("é", false)]
    fn dns_subdomains(#[case] name: &str, #[case] valid: bool) {
        assert_eq!(is_dns_subdomain(name), valid, "{name:?}");
    }

    #[rstest]
    #[case("qemu-commandline.hooks.example.com/args", true)]
    #[case("smbios.vm.kubevirt.io/baseBoardManufacturer", true)]
    #[case("plain", true)]
    #[case("a.b_c-d", true)]
    #[case(&"x".repeat(63), true)]
    #[case(&"x".repeat(64), false)]
    #[case(&format!("{}/x", "a".repeat(SUBDOMAIN_MAX)), true)]
    #[case(&format!("{}/x", "a".repeat(SUBDOMAIN_MAX + 1)), false)]
    #[case("", false)]
    #[case("/x", false)]
    #[case("x/", false)]
    #[case("-x", false)]
    #[case("x.", false)]
    #[case("a b", false)]
    #[case("a..b/x", false)]
    #[case("UPPER.com/x", false)]
    fn qualified_names(#[case] key: &str, #[case] valid: bool) {
        assert_eq!(check_qualified_name(key).is_ok(), valid, "{key}");
    }
}
