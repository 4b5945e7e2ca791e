//! Host capabilities offered to the guest: only logging. Policy-server offers more (OCI, DNS,
//! Kubernetes lookups); this policy uses none, so any other call is refused, loudly.

use std::error::Error;

type CallbackResult = Result<Vec<u8>, Box<dyn Error + Send + Sync>>;

/// The waPC host callback: `kubewarden` / `tracing` / `log` goes to stderr, the rest is refused.
pub fn host_callback(
    _id: u64,
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
        _ => Err(format!(
            "host capability {binding}/{namespace}/{operation} is not offered by this host \
             (it offers only kubewarden/tracing/log)"
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_accepted() {
        assert_eq!(
            host_callback(0, "kubewarden", "tracing", "log", b"{}").ok(),
            Some(Vec::new())
        );
    }

    #[test]
    fn other_capabilities_are_refused_by_name() {
        let error = host_callback(0, "kubewarden", "oci", "v1/verify", b"{}").expect_err("refused");
        assert!(error
            .to_string()
            .contains("kubewarden/oci/v1/verify is not offered"));
    }
}
