//! A stand-in for `kwctl run` and for policy-server's way of running a policy, for machines where
//! neither can be installed: it runs a Kubewarden waPC module on wasmtime with policy-server's
//! calling convention and lifecycle (one compiled module, a fresh instance per evaluation, an
//! epoch deadline), offers the `kubernetes/get_resource` host capability (a real API server, or a
//! kwctl session replayed) and `oci/v2/verify` (feature `sigstore`), and prints what `kwctl run`
//! prints.

pub mod admission;
pub mod bench;
pub mod callbacks;
pub mod host;
pub mod kubernetes;
pub mod metadata;
pub mod probe;
pub mod replay;
#[cfg(feature = "sigstore")]
pub mod sigstore;
