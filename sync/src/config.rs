//! Command-line flags.

use std::net::SocketAddr;

use clap::Parser;
use hook_sidecar_policy::settings::parse_and_validate;
use serde_json::json;

use crate::feature_gate::{GateConfig, GateTarget, ObjectName};
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

    /// Keep the `Sidecar` feature gate on while the policy reports `active`, in the
    /// `managedchart`'s values (Harvester), the `kubevirt` CR (plain KubeVirt), or `auto`: the
    /// ManagedChart when it exists, else the CR. Off when the flag is absent.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "auto")]
    pub ensure_sidecar_feature_gate: Option<GateTarget>,

    /// The KubeVirt CR for --ensure-sidecar-feature-gate.
    #[arg(long, default_value = "kubevirt")]
    pub kubevirt_name: String,

    #[arg(long, default_value = "harvester-system")]
    pub kubevirt_namespace: String,

    /// The ManagedChart that renders the KubeVirt CR, for --ensure-sidecar-feature-gate.
    #[arg(long, default_value = "harvester")]
    pub managedchart_name: String,

    #[arg(long, default_value = "fleet-local")]
    pub managedchart_namespace: String,

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

    /// What --ensure-sidecar-feature-gate needs, or `None` when it is off.
    pub fn feature_gate(&self) -> Option<GateConfig> {
        Some(GateConfig {
            target: self.ensure_sidecar_feature_gate?,
            policy_name: self.policy_name.clone(),
            kubevirt: ObjectName {
                namespace: self.kubevirt_namespace.clone(),
                name: self.kubevirt_name.clone(),
            },
            managed_chart: ObjectName {
                namespace: self.managedchart_namespace.clone(),
                name: self.managedchart_name.clone(),
            },
        })
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
        assert!(args.feature_gate().is_none(), "the gate is off by default");
        assert!(args.validate().is_ok(), "the empty default list is valid");
    }

    #[rstest::rstest]
    #[case::bare_flag_is_auto(&["--ensure-sidecar-feature-gate"], GateTarget::Auto)]
    #[case::managedchart(&["--ensure-sidecar-feature-gate=managedchart"], GateTarget::ManagedChart)]
    #[case::kubevirt(&["--ensure-sidecar-feature-gate=kubevirt"], GateTarget::KubeVirt)]
    fn feature_gate_targets(#[case] flags: &[&str], #[case] target: GateTarget) {
        let gate = args(flags).feature_gate().expect("the gate is on");
        assert_eq!(gate.target, target);
        assert_eq!(gate.managed_chart.to_string(), "fleet-local/harvester");
        assert_eq!(gate.kubevirt.to_string(), "harvester-system/kubevirt");
    }

    #[test]
    fn unknown_feature_gate_target_is_refused() {
        let error =
            Args::try_parse_from(["hook-sidecar-sync", "--ensure-sidecar-feature-gate=fleet"])
                .expect_err("unknown target");
        assert!(error.to_string().contains("fleet"), "{error}");
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
