//! Command-line flags.

use std::net::SocketAddr;

use clap::Parser;
use hook_sidecar_policy::settings::parse_and_validate;
use serde_json::json;

use crate::telemetry::LogFormat;
use crate::{Error, Result};
use hook_sidecar_policy::harvester_setting::unique_items;

#[derive(Clone, Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// The Harvester Setting holding the allow-list (cluster-scoped).
    #[arg(long, default_value = "whitelisted-sidecars")]
    pub setting_name: String,

    /// The ClusterAdmissionPolicy running the hook-sidecar policy.
    #[arg(long, default_value = "hook-sidecars")]
    pub policy_name: String,

    /// The `default` of the Setting when the job has to create it: comma-separated image entries,
    /// as in the Setting. Empty allows no sidecar.
    #[arg(long, default_value = "")]
    pub default_sidecars: String,

    /// Add the `Sidecar` feature gate to the KubeVirt CR if it is not there.
    #[arg(long)]
    pub ensure_sidecar_feature_gate: bool,

    /// The KubeVirt CR for --ensure-sidecar-feature-gate.
    #[arg(long, default_value = "kubevirt")]
    pub kubevirt_name: String,

    #[arg(long, default_value = "harvester-system")]
    pub kubevirt_namespace: String,

    /// The server-side apply field manager of `spec.settings.allowedImages`.
    #[arg(long, default_value = "hook-sidecar-sync")]
    pub field_manager: String,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

impl Args {
    /// Refuses a default list that the policy would refuse: the job would otherwise create a
    /// Setting it can never apply.
    pub fn validate(&self) -> Result<()> {
        let list = unique_items([self.default_sidecars.as_str()]);
        parse_and_validate(&json!({ "allowedImages": list })).map_err(|reason| {
            Error::InvalidDefaultList {
                list: self.default_sidecars.clone(),
                reason,
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("hook-sidecar-sync").chain(flags.iter().copied()))
            .expect("flags parse")
    }

    #[test]
    fn defaults_are_harvesters_names() {
        let args = args(&[]);
        assert_eq!(args.setting_name, "whitelisted-sidecars");
        assert_eq!(args.policy_name, "hook-sidecars");
        assert_eq!(
            (
                args.kubevirt_namespace.as_str(),
                args.kubevirt_name.as_str()
            ),
            ("harvester-system", "kubevirt")
        );
        assert!(!args.ensure_sidecar_feature_gate);
        assert!(args.validate().is_ok(), "the empty default list is valid");
    }

    #[test]
    fn invalid_default_list_names_the_flag_and_the_entry() {
        let error = args(&[
            "--default-sidecars",
            "registry.example.com/hooks/a:1, Bad/Image",
        ])
        .validate()
        .expect_err("upper-case repository refused");
        let message = error.to_string();
        assert!(message.starts_with("--default-sidecars"), "{message}");
        assert!(
            message.contains("allowedImages[1] \"Bad/Image\""),
            "{message}"
        );
    }
}
