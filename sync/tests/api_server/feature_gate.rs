//! `--ensure-sidecar-feature-gate`: each target, only while every policy is active in protect
//! mode, re-added after a removal, never again once a policy stops protecting (and said so on the
//! Setting, in an Event, the metrics and the log), and the RBAC the chart grants for each target.

use std::time::Duration;

use anyhow::{Result, ensure};
use kube::Client;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{LAUNCHER_POLICY, PROPAGATION, grant_policy, resource_version, wait_for_metric};
use test_support::*;

/// Harvester's default gates (deploy/charts/harvester/values.yaml): what its chart renders into the
/// KubeVirt CR when the ManagedChart's values name none.
const HARVESTER_GATES: [&str; 5] = [
    "CPUManager",
    "DeclarativeHotplugVolumes",
    "ExpandDisks",
    "EnableVirtioFsConfigVolumes",
    "HostDevices",
];

const ADDITIONS: &str = "hook_sidecar_sync_feature_gate_additions_total";

fn gate_values(target: &str) -> Vec<String> {
    vec![
        "sync.featureGate.enabled=true".to_owned(),
        format!("sync.featureGate.target={target}"),
    ]
}

fn install_gate_rbac(cluster: &Cluster, target: &str) -> Result<()> {
    let values = gate_values(target);
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    cluster.install_job_rbac(&values)
}

pub async fn kubevirt_target_follows_the_policy_status(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "kubevirt")?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "pending").await?;
    put_setting(client, "", "").await?;
    create_kubevirt(
        client,
        json!({ "developerConfiguration": { "featureGates": ["LiveMigration", "HostDevices"] } }),
    )
    .await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=kubevirt"])?;

    // Not active: the job saw it and left the CR alone.
    wait_for_log(&job, "status=pending").await?;
    let untouched = kubevirts_api(client).get(KUBEVIRT).await?;
    ensure!(
        feature_gates(&untouched) == json!(["LiveMigration", "HostDevices"]),
        "gate added while the policy is pending: {}",
        untouched.data
    );

    // Active: the gate is added, the other gates kept.
    set_policy_status(client, "active").await?;
    wait_for_gates(
        client,
        Target::KubeVirt,
        json!(["LiveMigration", "HostDevices", "Sidecar"]),
    )
    .await?;
    ensure!(job.metric(ADDITIONS)? == 1.0);

    // Removed by someone while the policy is active: added again by the watch.
    let removed = json!({ "spec": { "configuration": { "developerConfiguration": {
        "featureGates": ["LiveMigration", "HostDevices"] } } } });
    kubevirts_api(client)
        .patch(KUBEVIRT, &PatchParams::default(), &Patch::Merge(&removed))
        .await?;
    wait_for_gates(
        client,
        Target::KubeVirt,
        json!(["LiveMigration", "HostDevices", "Sidecar"]),
    )
    .await?;
    wait_for_metric(&job, ADDITIONS, 2.0).await?;
    job.stop()?;

    // A restarted job finds it there and writes nothing.
    let before = kubevirts_api(client).get(KUBEVIRT).await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=kubevirt"])?;
    wait_for_metric(&job, "hook_sidecar_sync_feature_gate_ensured", 1.0).await?;
    ensure!(job.metric(ADDITIONS)? == 0.0);
    ensure!(
        resource_version(&kubevirts_api(client).get(KUBEVIRT).await?) == resource_version(&before)
    );
    job.stop()
}

pub async fn kubevirt_target_waits_for_a_cr_created_later(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "kubevirt")?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "active").await?;
    put_setting(client, "", "").await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=kubevirt"])?;
    wait_for_log(&job, "cannot ensure the Sidecar feature gate").await?;
    // A CR without developerConfiguration.
    create_kubevirt(client, json!({ "imagePullPolicy": "IfNotPresent" })).await?;
    wait_for_gates(client, Target::KubeVirt, json!(["Sidecar"])).await?;
    let kubevirt = kubevirts_api(client).get(KUBEVIRT).await?;
    ensure!(
        kubevirt.data["spec"]["configuration"]["imagePullPolicy"] == "IfNotPresent",
        "{}",
        kubevirt.data
    );
    job.stop()
}

pub async fn managedchart_target_patches_the_chart_values(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "managedchart")?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "active").await?;
    put_setting(client, "", "").await?;
    // What Harvester's chart rendered: its default gates, which the chart's values do not name.
    create_kubevirt(
        client,
        json!({ "developerConfiguration": { "featureGates": HARVESTER_GATES } }),
    )
    .await?;
    let values = json!({
        "kubevirt": { "spec": { "configuration": { "vmStateStorageClass": "vmstate-persistence" } } },
        "harvester-network-controller": { "enabled": true },
    });
    create_managed_chart(client, values.clone()).await?;
    let kubevirt_before = kubevirts_api(client).get(KUBEVIRT).await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=managedchart"])?;

    // The chart's gates start from what it rendered, plus Sidecar; every other value stays.
    let expected: Vec<&str> = HARVESTER_GATES.iter().copied().chain(["Sidecar"]).collect();
    wait_for_gates(client, Target::ManagedChart, json!(expected)).await?;
    let chart = managed_charts_api(client).get(MANAGED_CHART).await?;
    let chart_values = &chart.data["spec"]["values"];
    ensure!(
        chart_values["kubevirt"]["spec"]["configuration"]["vmStateStorageClass"]
            == "vmstate-persistence"
            && chart_values["harvester-network-controller"]
                == values["harvester-network-controller"],
        "other values lost: {chart_values}"
    );
    ensure!(chart.data["spec"]["chart"] == "harvester", "{}", chart.data);
    // The CR is the chart's to render: the job did not touch it.
    ensure!(
        resource_version(&kubevirts_api(client).get(KUBEVIRT).await?)
            == resource_version(&kubevirt_before),
        "the KubeVirt CR was written"
    );

    // An upgrade rewrites the chart's values without Sidecar: added again, their gates kept.
    let upgraded = json!({ "spec": { "values": { "kubevirt": { "spec": { "configuration": {
        "developerConfiguration": { "featureGates": ["CPUManager", "NewGateOfTheRelease"] } } } } } } });
    managed_charts_api(client)
        .patch(
            MANAGED_CHART,
            &PatchParams::default(),
            &Patch::Merge(&upgraded),
        )
        .await?;
    wait_for_gates(
        client,
        Target::ManagedChart,
        json!(["CPUManager", "NewGateOfTheRelease", "Sidecar"]),
    )
    .await?;
    wait_for_metric(&job, ADDITIONS, 2.0).await?;
    job.stop()
}

pub async fn managedchart_target_refuses_a_malformed_gate_list(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "managedchart")?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "active").await?;
    put_setting(client, "", "").await?;
    create_managed_chart(
        client,
        json!({ "kubevirt": { "spec": { "configuration": { "developerConfiguration": {
            "featureGates": "CPUManager,HostDevices" } } } } }),
    )
    .await?;
    let before = managed_charts_api(client).get(MANAGED_CHART).await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=managedchart"])?;
    wait_for_log(
        &job,
        "spec.values.kubevirt.spec.configuration.developerConfiguration.featureGates is \"CPUManager,HostDevices\", not a list",
    )
    .await?;
    ensure!(
        resource_version(&managed_charts_api(client).get(MANAGED_CHART).await?)
            == resource_version(&before),
        "the ManagedChart was written"
    );
    job.stop()
}

pub async fn auto_target_prefers_the_managed_chart(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "auto")?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "active").await?;
    put_setting(client, "", "").await?;
    create_kubevirt(
        client,
        json!({ "developerConfiguration": { "featureGates": ["HostDevices"] } }),
    )
    .await?;

    // Plain KubeVirt: no ManagedChart, the CR gets the gate.
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate"])?;
    wait_for_gates(client, Target::KubeVirt, json!(["HostDevices", "Sidecar"])).await?;
    job.stop()?;

    // Harvester: the ManagedChart exists and gets the gate, the CR is left to it.
    let reset = json!({ "spec": { "configuration": { "developerConfiguration": {
        "featureGates": ["HostDevices"] } } } });
    kubevirts_api(client)
        .patch(KUBEVIRT, &PatchParams::default(), &Patch::Merge(&reset))
        .await?;
    create_managed_chart(
        client,
        json!({ "kubevirt": { "spec": { "configuration": { "developerConfiguration": {
            "featureGates": ["HostDevices"] } } } } }),
    )
    .await?;
    let kubevirt_before = kubevirts_api(client).get(KUBEVIRT).await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=auto"])?;
    wait_for_gates(
        client,
        Target::ManagedChart,
        json!(["HostDevices", "Sidecar"]),
    )
    .await?;
    ensure!(
        resource_version(&kubevirts_api(client).get(KUBEVIRT).await?)
            == resource_version(&kubevirt_before),
        "the KubeVirt CR was written although the ManagedChart exists"
    );
    job.stop()
}

/// The gate is a switch that lets any sidecar run: never on without an active policy.
pub async fn no_gate_without_an_active_policy(cluster: &Cluster, client: &Client) -> Result<()> {
    install_gate_rbac(cluster, "auto")?;
    put_setting(client, "", "").await?;
    create_kubevirt(client, json!({})).await?;
    create_managed_chart(client, json!({})).await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate"])?;

    // No policy at all, then a policy without status, then each status short of active.
    wait_for_log(&job, "status=<missing>").await?;
    create_policy(client, json!({})).await?;
    for status in ["unscheduled", "scheduled", "pending"] {
        set_policy_status(client, status).await?;
        wait_for_log(&job, &format!("status={status}")).await?;
    }
    // Give a wrong implementation time to act, then check nothing was written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(gates(client, Target::ManagedChart).await? == Value::Null);
    ensure!(gates(client, Target::KubeVirt).await? == Value::Null);
    ensure!(job.metric(ADDITIONS)? == 0.0);
    ensure!(job.metric("hook_sidecar_sync_feature_gate_policy_active")? == 0.0);

    // Active, then not any more (policy-server lost it): a removed gate is not re-added.
    set_policy_status(client, "active").await?;
    wait_for_gates(client, Target::ManagedChart, json!(["Sidecar"])).await?;
    set_policy_status(client, "pending").await?;
    let job_ref = &job;
    wait_until(
        "the job to see the policy pending again",
        PROPAGATION,
        || async move {
            Ok(
                (job_ref.metric("hook_sidecar_sync_feature_gate_policy_active")? == 0.0)
                    .then_some(()),
            )
        },
    )
    .await?;
    let removed = json!({ "spec": { "values": { "kubevirt": { "spec": { "configuration": {
        "developerConfiguration": { "featureGates": [] } } } } } } });
    managed_charts_api(client)
        .patch(
            MANAGED_CHART,
            &PatchParams::default(),
            &Patch::Merge(&removed),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(gates(client, Target::ManagedChart).await? == json!([]));
    ensure!(job.metric(ADDITIONS)? == 1.0);
    job.stop()
}

const PROTECTING: &str = "hook_sidecar_sync_feature_gate_protecting";
const LOSSES: &str = "hook_sidecar_sync_feature_gate_protection_losses_total";

/// The Setting's `sidecarFeatureGate` condition, once it has `status` and `reason`.
async fn wait_for_gate_condition(client: &Client, status: &str, reason: &str) -> Result<Value> {
    wait_until(
        &format!("the Setting's sidecarFeatureGate condition {status} {reason}"),
        PROPAGATION,
        || async move {
            let setting = settings_api(client).get_opt(SETTING).await?;
            Ok(setting.and_then(|setting| {
                setting.data["status"]["conditions"]
                    .as_array()
                    .and_then(|conditions| {
                        conditions
                            .iter()
                            .find(|c| c["type"] == "sidecarFeatureGate")
                            .cloned()
                    })
                    .filter(|c| c["status"] == status && c["reason"] == reason)
            }))
        },
    )
    .await
}

/// A policy in monitor mode reports and rejects nothing: active is not enough for the gate.
pub async fn monitor_and_active_gets_no_gate(cluster: &Cluster, client: &Client) -> Result<()> {
    install_gate_rbac(cluster, "managedchart")?;
    put_setting(client, "", "").await?;
    create_kubevirt(
        client,
        json!({ "developerConfiguration": { "featureGates": HARVESTER_GATES } }),
    )
    .await?;
    create_managed_chart(client, json!({})).await?;
    create_policy_in_mode(client, POLICY, "monitor", json!({})).await?;
    set_policy_status(client, "active").await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=managedchart"])?;

    let condition = wait_for_gate_condition(client, "False", "PolicyNotInProtectMode").await?;
    let message = condition["message"].as_str().unwrap_or_default();
    ensure!(
        message.starts_with(
            "ClusterAdmissionPolicy hook-sidecars is active with spec.mode monitor and status.mode monitor, not protect"
        ) && message.contains("the job does not add the Sidecar feature gate to ManagedChart fleet-local/harvester"),
        "{condition}"
    );
    wait_for_log(&job, "reason=\"PolicyNotInProtectMode\"").await?;
    // Give a wrong implementation time to act.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        gates(client, Target::ManagedChart).await? == Value::Null,
        "gate added in monitor mode"
    );
    ensure!(job.metric(ADDITIONS)? == 0.0);
    ensure!(job.metric(PROTECTING)? == 0.0);
    ensure!(job.metric("hook_sidecar_sync_feature_gate_policy_active")? == 1.0);

    // protect (a new policy: Kubewarden refuses protect -> monitor, not the way up): the gate.
    policies_api(client)
        .delete(POLICY, &Default::default())
        .await?;
    wait_until("the policy gone", PROPAGATION, || async move {
        Ok(policies_api(client)
            .get_opt(POLICY)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    create_policy_in_mode(client, POLICY, "protect", json!({})).await?;
    // Active, but the controller has not written protect into the PolicyServer's ConfigMap yet.
    let patch = json!({ "status": { "policyStatus": "active", "mode": "unknown" } });
    policies_api(client)
        .patch_status(POLICY, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_for_gate_condition(client, "False", "PolicyNotInProtectMode").await?;
    wait_for_log(&job, "status.mode unknown").await?;
    ensure!(
        gates(client, Target::ManagedChart).await? == Value::Null,
        "gate added before status.mode said protect"
    );
    set_policy_status(client, "active").await?;
    let expected: Vec<&str> = HARVESTER_GATES.iter().copied().chain(["Sidecar"]).collect();
    wait_for_gates(client, Target::ManagedChart, json!(expected)).await?;
    let condition = wait_for_gate_condition(client, "True", "FeatureGateKept").await?;
    ensure!(
        condition["message"]
            == "every ClusterAdmissionPolicy the job keeps (hook-sidecars) is active in protect mode: the job keeps the Sidecar feature gate on in ManagedChart fleet-local/harvester",
        "{condition}"
    );
    ensure!(job.metric(PROTECTING)? == 1.0);
    let added = gate_events(client).await?;
    ensure!(
        added
            .iter()
            .any(|event| event["type"] == "Normal" && event["reason"] == "SidecarFeatureGateAdded"),
        "{added:?}"
    );
    job.stop()
}

/// The launcher-Pod policy in monitor holds the gate back, even with the VM policy in protect.
pub async fn launcher_pod_policy_in_monitor_gets_no_gate(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "kubevirt")?;
    grant_policy(cluster, LAUNCHER_POLICY)?;
    put_setting(client, "", "").await?;
    create_kubevirt(
        client,
        json!({ "developerConfiguration": { "featureGates": ["HostDevices"] } }),
    )
    .await?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "active").await?;
    let _ = policies_api(client)
        .delete(LAUNCHER_POLICY, &Default::default())
        .await;
    create_policy_in_mode(client, LAUNCHER_POLICY, "monitor", json!({})).await?;
    set_named_policy_status(client, LAUNCHER_POLICY, "active").await?;
    let launcher = format!("--policy-name={LAUNCHER_POLICY}");
    let args = [
        "--ensure-sidecar-feature-gate=kubevirt",
        "--policy-name=hook-sidecars",
        launcher.as_str(),
    ];
    let job = cluster.start_job(&args)?;
    let condition = wait_for_gate_condition(client, "False", "PolicyNotInProtectMode").await?;
    ensure!(
        condition["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!(
                "ClusterAdmissionPolicy {LAUNCHER_POLICY} is active with spec.mode monitor"
            )),
        "{condition}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        gates(client, Target::KubeVirt).await? == json!(["HostDevices"]),
        "gate added with the launcher-Pod policy in monitor"
    );
    ensure!(job.metric(ADDITIONS)? == 0.0);
    job.stop()?;
    policies_api(client)
        .delete(LAUNCHER_POLICY, &Default::default())
        .await?;
    Ok(())
}

/// protect, then a policy in monitor again (deleted and created in monitor, what Kubewarden
/// allows): the gate is not removed, it is not added back after a removal, and the job says so
/// at once on the Setting, in a Warning Event, the metrics and a log line.
pub async fn stops_re_adding_the_gate_when_a_policy_stops_protecting(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    install_gate_rbac(cluster, "kubevirt")?;
    put_setting(client, "", "").await?;
    create_kubevirt(
        client,
        json!({ "developerConfiguration": { "featureGates": ["HostDevices"] } }),
    )
    .await?;
    create_policy(client, json!({})).await?;
    set_policy_status(client, "active").await?;
    let job = cluster.start_job(&["--ensure-sidecar-feature-gate=kubevirt"])?;
    wait_for_gates(client, Target::KubeVirt, json!(["HostDevices", "Sidecar"])).await?;
    wait_for_gate_condition(client, "True", "FeatureGateKept").await?;
    ensure!(job.metric(LOSSES)? == 0.0);

    policies_api(client)
        .delete(POLICY, &Default::default())
        .await?;
    wait_until("the policy gone", PROPAGATION, || async move {
        Ok(policies_api(client)
            .get_opt(POLICY)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    create_policy_in_mode(client, POLICY, "monitor", json!({})).await?;
    set_policy_status(client, "active").await?;

    let condition = wait_for_gate_condition(client, "False", "PolicyNotInProtectMode").await?;
    ensure!(
        condition["message"].as_str().unwrap_or_default().contains(
            "the job does not add the Sidecar feature gate to KubeVirt harvester-system/kubevirt, and does not add it again if it is removed; it never removes it"
        ),
        "{condition}"
    );
    let events = wait_until("the Warning Event", PROPAGATION, || async move {
        let events = gate_events(client).await?;
        Ok(events
            .iter()
            .find(|event| event["type"] == "Warning" && event["reason"] == "PolicyNotInProtectMode")
            .cloned())
    })
    .await?;
    ensure!(
        events["note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("ClusterAdmissionPolicy hook-sidecars is active with spec.mode monitor"),
        "{events}"
    );
    ensure!(
        events["regarding"]["kind"] == "Setting" && events["regarding"]["name"] == SETTING,
        "{events}"
    );
    wait_for_metric(&job, LOSSES, 1.0).await?;
    ensure!(job.metric(PROTECTING)? == 0.0);
    ensure!(job.metric("hook_sidecar_sync_feature_gate_ensured")? == 0.0);
    ensure!(
        job.log()
            .lines()
            .any(|line| line.contains("WARN") && line.contains("PolicyNotInProtectMode")),
        "no warning line:\n{}",
        job.log()
    );
    // The job never removes the gate...
    ensure!(gates(client, Target::KubeVirt).await? == json!(["HostDevices", "Sidecar"]));
    // ...and no longer adds it back.
    let removed = json!({ "spec": { "configuration": { "developerConfiguration": {
        "featureGates": ["HostDevices"] } } } });
    kubevirts_api(client)
        .patch(KUBEVIRT, &PatchParams::default(), &Patch::Merge(&removed))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        gates(client, Target::KubeVirt).await? == json!(["HostDevices"]),
        "gate added back in monitor mode"
    );
    ensure!(job.metric(ADDITIONS)? == 1.0);
    job.stop()
}

/// The Events the job published about the feature gate (on the Setting).
async fn gate_events(client: &Client) -> Result<Vec<Value>> {
    Ok(setting_events(client)
        .await?
        .into_iter()
        .filter(|event| event["action"] == "EnsureSidecarFeatureGate")
        .collect())
}

/// What the chart grants the job's ServiceAccount for each target, and nothing beyond it.
pub async fn feature_gate_rbac_per_target(cluster: &Cluster, _client: &Client) -> Result<()> {
    let chart = format!("managedcharts.management.cattle.io/{MANAGED_CHART}");
    let kubevirt = format!("kubevirts.kubevirt.io/{KUBEVIRT}");
    let in_fleet = ["-n", MANAGED_CHART_NAMESPACE];
    let in_harvester = ["-n", KUBEVIRT_NAMESPACE];
    // (verb, object, namespace) -> allowed for managedchart, kubevirt, auto, gate off.
    let matrix: Vec<(&str, &str, [&str; 2], [bool; 4])> = vec![
        (
            "patch",
            chart.as_str(),
            in_fleet,
            [true, false, true, false],
        ),
        (
            "watch",
            chart.as_str(),
            in_fleet,
            [true, false, true, false],
        ),
        (
            "get",
            kubevirt.as_str(),
            in_harvester,
            [true, true, true, false],
        ),
        (
            "patch",
            kubevirt.as_str(),
            in_harvester,
            [false, true, true, false],
        ),
        (
            "watch",
            kubevirt.as_str(),
            in_harvester,
            [false, true, true, false],
        ),
        // Never: other objects, other verbs, other namespaces.
        ("delete", chart.as_str(), in_fleet, [false; 4]),
        ("update", chart.as_str(), in_fleet, [false; 4]),
        (
            "patch",
            "managedcharts.management.cattle.io/rancher-monitoring",
            in_fleet,
            [false; 4],
        ),
        (
            "create",
            "managedcharts.management.cattle.io",
            in_fleet,
            [false; 4],
        ),
        ("patch", chart.as_str(), ["-n", "default"], [false; 4]),
        ("delete", kubevirt.as_str(), in_harvester, [false; 4]),
        (
            "patch",
            "kubevirts.kubevirt.io/another",
            in_harvester,
            [false; 4],
        ),
        ("patch", kubevirt.as_str(), ["-n", "default"], [false; 4]),
        ("get", "secrets", in_fleet, [false; 4]),
    ];
    for (column, target) in ["managedchart", "kubevirt", "auto", "off"]
        .iter()
        .enumerate()
    {
        if *target == "off" {
            cluster.install_job_rbac(&[])?;
        } else {
            install_gate_rbac(cluster, target)?;
        }
        for (verb, object, namespace, allowed) in &matrix {
            let request = [*verb, *object, namespace[0], namespace[1]];
            let can = cluster.job_can(&request)?;
            ensure!(
                can == allowed[column],
                "target {target}: the job's ServiceAccount can{} {request:?}",
                if allowed[column] { "not" } else { "" }
            );
        }
    }
    cluster.install_job_rbac(&[])
}

// ---- helpers

#[derive(Clone, Copy, Debug)]
enum Target {
    ManagedChart,
    KubeVirt,
}

async fn gates(client: &Client, target: Target) -> Result<Value> {
    Ok(match target {
        Target::ManagedChart => {
            managed_charts_api(client).get(MANAGED_CHART).await?.data["spec"]["values"]["kubevirt"]
                ["spec"]["configuration"]["developerConfiguration"]["featureGates"]
                .clone()
        }
        Target::KubeVirt => feature_gates(&kubevirts_api(client).get(KUBEVIRT).await?),
    })
}

async fn wait_for_gates(client: &Client, target: Target, expected: Value) -> Result<()> {
    wait_until(
        &format!("the gates of the {target:?} == {expected}"),
        PROPAGATION,
        || {
            let expected = expected.clone();
            async move { Ok((gates(client, target).await? == expected).then_some(())) }
        },
    )
    .await
}

async fn wait_for_log(job: &Job, text: &str) -> Result<()> {
    wait_until(
        &format!("{text:?} in the job's log"),
        PROPAGATION,
        || async move { Ok(job.log().contains(text).then_some(())) },
    )
    .await
}

pub async fn create_kubevirt(client: &Client, configuration: Value) -> Result<()> {
    let kubevirt = serde_json::from_value(json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": { "name": KUBEVIRT, "namespace": KUBEVIRT_NAMESPACE },
        "spec": { "configuration": configuration },
    }))?;
    kubevirts_api(client)
        .create(&PostParams::default(), &kubevirt)
        .await?;
    Ok(())
}

/// The `harvester` ManagedChart as Harvester's installer writes it, with `values`.
async fn create_managed_chart(client: &Client, values: Value) -> Result<()> {
    let chart: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "management.cattle.io/v3",
        "kind": "ManagedChart",
        "metadata": { "name": MANAGED_CHART, "namespace": MANAGED_CHART_NAMESPACE },
        "spec": {
            "chart": "harvester",
            "releaseName": "harvester",
            "version": "1.7.0",
            "defaultNamespace": "harvester-system",
            "repoName": "harvester-charts",
            "values": values,
            "targets": [{ "clusterName": "local" }],
        },
    }))?;
    managed_charts_api(client)
        .create(&PostParams::default(), &chart)
        .await?;
    Ok(())
}

pub fn feature_gates(kubevirt: &DynamicObject) -> Value {
    kubevirt.data["spec"]["configuration"]["developerConfiguration"]["featureGates"].clone()
}
