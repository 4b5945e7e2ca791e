//! Command-line flags.

use std::net::SocketAddr;

use clap::Parser;
use hook_sidecar_policy::is_dns_subdomain;
use hook_sidecar_policy::parse_and_validate;
use hook_sidecar_policy::{ListMode, unique_items};
use serde_json::json;

use crate::feature_gate::{GateConfig, GateTarget, ObjectName};
use crate::telemetry::LogFormat;
use crate::{Error, Result};

/// 1.25 MiB: a quarter MiB under etcd's default request limit (1.5 MiB) for the rest of the
/// ClusterAdmissionPolicy (metadata, managed fields, the other spec fields).
pub const DEFAULT_MAX_SETTINGS_BYTES: usize = 1_310_720;

#[derive(Clone, Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// The Harvester Setting holding the allow-list (cluster-scoped).
    #[arg(long, default_value = "whitelisted-sidecars")]
    pub setting_name: String,

    /// A ClusterAdmissionPolicy whose `allowedImages` the job keeps equal to the Setting's list.
    /// Repeat the flag (or separate names with commas) for several policies, e.g. the one for
    /// VMs and the one for launcher Pods; each is validated and written on its own.
    #[arg(
        long = "policy-name",
        default_value = "hook-sidecars",
        value_delimiter = ','
    )]
    pub policy_names: Vec<String>,

    /// How the Setting's `default` and `value` make the list: `union` (the proposal: `value`
    /// adds sidecars to `default`) or `effective` (Harvester's own settings: `value` when it is
    /// not empty, else `default`).
    #[arg(long, default_value_t = ListMode::Union)]
    pub list_mode: ListMode,

    /// Write the Setting's list into the policies' `allowedImages`. `false` when the policy reads
    /// the Setting itself at admission (context-aware mode): the job then only keeps the Setting
    /// in existence (and, separately, the feature gate).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub mirror_allowed_images: bool,

    /// After the Setting is deleted, wait this many seconds before creating it again, so that an
    /// administrator's `kubectl delete` + `create` (or `replace --force`) is not beaten to it. The
    /// re-created Setting keeps the last list the policies enforced.
    #[arg(long, default_value_t = 30)]
    pub recreate_grace_seconds: u64,

    /// Refuse a list when the policy's `spec.settings` with it would exceed this many bytes of
    /// JSON: etcd refuses requests over 1.5 MiB (its `--max-request-bytes`), and the rest of the
    /// policy object needs room.
    #[arg(long, default_value_t = DEFAULT_MAX_SETTINGS_BYTES)]
    pub max_settings_bytes: usize,

    /// The `default` of the Setting when the job has to create it: comma-separated image entries,
    /// as in the Setting. Empty allows no sidecar.
    #[arg(long, default_value = "")]
    pub default_sidecars: String,

    /// Keep the `Sidecar` feature gate on while every policy is `active` in protect mode, in the
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

    /// The server-side apply field manager of `spec.settings.allowedImages` (and the writer of
    /// the Setting's condition and the Events' reporting controller).
    #[arg(long, default_value = "hook-sidecar-sync")]
    pub field_manager: String,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
}

impl Args {
    /// Refuses a Setting name that the API server (and the policy's `harvesterSetting.name`)
    /// would refuse, and a default list that the policy would refuse: the job would otherwise
    /// watch for a Setting that cannot exist, or create one it can never apply.
    pub fn validate(&self) -> Result<()> {
        if !is_dns_subdomain(&self.setting_name) {
            return Err(Error::InvalidSettingName(self.setting_name.clone()));
        }
        if self.policy_names.iter().any(String::is_empty) {
            return Err(Error::EmptyPolicyName);
        }
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
            policy_names: self.policy_names.clone(),
            kubevirt: ObjectName {
                namespace: self.kubevirt_namespace.clone(),
                name: self.kubevirt_name.clone(),
            },
            managed_chart: ObjectName {
                namespace: self.managedchart_namespace.clone(),
                name: self.managedchart_name.clone(),
            },
            setting_name: self.setting_name.clone(),
            field_manager: self.field_manager.clone(),
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
        assert_eq!(args.policy_names, ["hook-sidecars"]);
        assert_eq!(args.list_mode, ListMode::Union);
        assert!(args.mirror_allowed_images);
        assert_eq!(args.recreate_grace_seconds, 30);
        assert_eq!(args.max_settings_bytes, DEFAULT_MAX_SETTINGS_BYTES);
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
    fn several_policies_list_mode_and_no_mirroring() {
        let args = args(&[
            "--policy-name=vms",
            "--policy-name",
            "launchers,third",
            "--list-mode=effective",
            "--mirror-allowed-images=false",
        ]);
        assert_eq!(args.policy_names, ["vms", "launchers", "third"]);
        assert_eq!(args.list_mode, ListMode::Effective);
        assert!(!args.mirror_allowed_images);
    }

    #[test]
    fn an_empty_policy_name_is_refused() {
        let error = args(&["--policy-name=hook-sidecars,"])
            .validate()
            .expect_err("empty name refused");
        assert_eq!(error.to_string(), "--policy-name: a policy name is empty");
    }

    #[rstest::rstest]
    #[case::upper_case("Whitelisted-Sidecars")]
    #[case::empty("")]
    #[case::underscore("whitelisted_sidecars")]
    fn a_setting_name_no_object_can_have_is_refused(#[case] name: &str) {
        let error = args(&[&format!("--setting-name={name}")])
            .validate()
            .expect_err("invalid name refused");
        assert!(
            error.to_string().starts_with(&format!(
                "--setting-name {name:?}: not a Kubernetes object name"
            )),
            "{error}"
        );
    }

    #[test]
    fn unknown_list_mode_is_refused() {
        let error = Args::try_parse_from(["hook-sidecar-sync", "--list-mode=intersection"])
            .expect_err("refused");
        assert!(error.to_string().contains("intersection"), "{error}");
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
