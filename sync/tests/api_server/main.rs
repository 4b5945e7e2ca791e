//! The job against a real kube-apiserver and etcd (see the `test-support` crate), as its ServiceAccount with
//! exactly the RBAC the chart renders. One server for all tests, run one after the other; each
//! test starts from no Setting, no policy, no KubeVirt CR and no ManagedChart.

mod chart;
mod feature_gate;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Result, ensure};
use kube::Client;
use kube::api::{Patch, PatchParams};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};
use test_support::*;

const PROPAGATION: Duration = Duration::from_secs(20);

type Scenario =
    for<'a> fn(&'a Cluster, &'a Client) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

macro_rules! trials {
    ($cluster:expr, $($name:path),+ $(,)?) => {
        vec![$({
            let cluster = Arc::clone(&$cluster);
            let scenario: Scenario = |cluster, client| Box::pin($name(cluster, client));
            Trial::test(stringify!($name), move || run_scenario(&cluster, scenario))
        }),+]
    };
}

fn main() {
    let mut args = Arguments::from_args();
    // One API server, shared: the tests change the same objects and one restarts the server.
    args.test_threads = Some(1);
    let cluster: Arc<OnceLock<Result<Cluster, String>>> = Arc::new(OnceLock::new());
    let trials = trials!(
        cluster,
        creates_the_missing_setting_with_the_default_list,
        never_overwrites_an_existing_setting,
        applies_the_union_of_default_and_value,
        applies_the_effective_value_with_list_mode_effective,
        propagates_every_change,
        keeps_a_refused_list_out_and_recovers,
        gives_each_distinct_refused_list_its_own_event,
        blames_the_policys_other_settings_when_they_are_invalid,
        preserves_the_other_settings_and_fields,
        writes_nothing_when_nothing_changed,
        waits_for_a_missing_policy,
        mirrors_into_every_named_policy,
        only_keeps_the_setting_without_mirroring,
        recreates_a_deleted_setting_after_a_grace_period_with_the_last_list,
        applies_a_large_setting_while_the_health_endpoints_answer,
        refuses_a_list_over_the_size_bound_once,
        refuses_a_list_the_policy_servers_configmap_cannot_hold,
        counts_both_copies_of_the_list,
        the_configmap_bound_is_the_api_servers,
        renders_the_configmap_as_kubewarden_controller_does,
        coalesces_a_burst_of_changes,
        survives_an_api_server_restart,
        converges_after_an_api_server_crash,
        rbac_grants_what_the_job_needs_and_no_more,
        feature_gate::kubevirt_target_follows_the_policy_status,
        feature_gate::kubevirt_target_waits_for_a_cr_created_later,
        feature_gate::managedchart_target_patches_the_chart_values,
        feature_gate::managedchart_target_refuses_a_malformed_gate_list,
        feature_gate::auto_target_prefers_the_managed_chart,
        feature_gate::no_gate_without_an_active_policy,
        feature_gate::monitor_and_active_gets_no_gate,
        feature_gate::launcher_pod_policy_in_monitor_gets_no_gate,
        feature_gate::stops_re_adding_the_gate_when_a_policy_stops_protecting,
        feature_gate::feature_gate_rbac_per_target,
        chart::chart_is_accepted_by_the_api_server,
        chart::chart_policy_matches_the_metadata,
        chart::addon_example_is_accepted,
        chart::unknown_values_are_refused,
        chart::the_kubewarden_namespace_is_a_value,
        chart::context_aware_install_checks_where_policy_server_runs,
        chart::gpu_example_values_are_valid,
        chart::runs_as_the_chart_deploys,
    );
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop kube-apiserver and etcd before exiting (exit skips destructors).
    drop(
        Arc::try_unwrap(cluster)
            .ok()
            .and_then(|cell| cell.into_inner()),
    );
    conclusion.exit();
}

fn run_scenario(
    cluster: &OnceLock<Result<Cluster, String>>,
    scenario: Scenario,
) -> Result<(), Failed> {
    let cluster = cluster
        .get_or_init(|| {
            Cluster::start_for_job(env!("CARGO_BIN_EXE_hook-sidecar-sync"))
                .map_err(|error| format!("{error:#}"))
        })
        .as_ref()
        .map_err(|error| Failed::from(format!("cannot start the test cluster: {error}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            let client = cluster.client().await?;
            reset(&client).await?;
            // What some scenarios add beside the harness's objects.
            for name in [LAUNCHER_POLICY, UNRELATED_POLICY] {
                let _ = policies_api(&client)
                    .delete(name, &Default::default())
                    .await;
            }
            let _ = policy_servers_api(&client)
                .delete("default", &Default::default())
                .await;
            scenario(cluster, &client).await
        })
        .map_err(|error| Failed::from(format!("{error:#}\n{}", cluster.job_logs_tail())))
}

fn list(items: &[&str]) -> Value {
    json!(items)
}

async fn wait_for_list(client: &Client, expected: Value) -> Result<()> {
    wait_until(&format!("allowedImages == {expected}"), PROPAGATION, || {
        let expected = expected.clone();
        async move { Ok((allowed_images(client).await? == expected).then_some(())) }
    })
    .await
}

async fn wait_for_metric(job: &Job, sample: &str, at_least: f64) -> Result<f64> {
    wait_until(
        &format!("{sample} >= {at_least}"),
        PROPAGATION,
        || async move { Ok(job.metric(sample).ok().filter(|value| *value >= at_least)) },
    )
    .await
}

fn reconciliations(outcome: &str) -> String {
    format!("hook_sidecar_sync_reconciliations_total{{outcome=\"{outcome}\"}}")
}

async fn wait_ready(job: &Job) -> Result<()> {
    wait_until("/readyz to answer 200", PROPAGATION, || async move {
        Ok(job
            .http_get("/readyz")
            .ok()
            .filter(|(status, _)| *status == 200)
            .map(|_| ()))
    })
    .await
}

fn accepted(policy: &str) -> String {
    format!("hook_sidecar_sync_list_accepted{{policy=\"{policy}\"}}")
}

/// Waits for the job's `configured` condition on the Setting to have `status`.
async fn wait_for_condition(client: &Client, status: &str) -> Result<Value> {
    wait_until(
        &format!("the Setting's condition {status}"),
        PROPAGATION,
        || async move {
            Ok(setting_condition(client)
                .await?
                .filter(|condition| condition["status"] == status))
        },
    )
    .await
}

/// Waits for at least `count` Events on the Setting.
async fn wait_for_events(client: &Client, count: usize) -> Result<Vec<Value>> {
    wait_until(
        &format!("{count} Events on the Setting"),
        PROPAGATION,
        || async move {
            let events = setting_events(client).await?;
            Ok((events.len() >= count).then_some(events))
        },
    )
    .await
}

const LAUNCHER_POLICY: &str = "hook-sidecars-launchers";

/// What an operator adds to the job's RBAC for another `--policy-name`.
fn grant_policy(cluster: &Cluster, name: &str) -> Result<()> {
    let manifest = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: hook-sidecar-sync-{name}\n\
         rules:\n- apiGroups: [policies.kubewarden.io]\n  resources: [clusteradmissionpolicies]\n  resourceNames: [{name}]\n  verbs: [get, list, watch, patch]\n\
         ---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: hook-sidecar-sync-{name}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: hook-sidecar-sync-{name}}}\n\
         subjects:\n- {{kind: ServiceAccount, name: {SERVICE_ACCOUNT}, namespace: {JOB_NAMESPACE}}}\n"
    );
    let path = std::env::temp_dir().join(format!("grant-{name}-{}.yaml", std::process::id()));
    std::fs::write(&path, manifest)?;
    cluster.kubectl(&["apply", "-f", &path.display().to_string()])?;
    std::fs::remove_file(&path)?;
    Ok(())
}

fn resource_version(object: &kube::api::DynamicObject) -> String {
    object.metadata.resource_version.clone().unwrap_or_default()
}

// ---- scenarios

async fn creates_the_missing_setting_with_the_default_list(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    create_policy(client, json!({})).await?;
    let default = " registry.example.com/hooks/a:1 , registry.example.com/tools/*";
    let job = cluster.start_job(&["--default-sidecars", default])?;

    let setting = wait_until(
        "the job to create the Setting",
        PROPAGATION,
        || async move { Ok(settings_api(client).get_opt(SETTING).await?) },
    )
    .await?;
    ensure!(
        setting.data["default"] == default,
        "default written verbatim: {}",
        setting.data
    );
    ensure!(
        setting.data.get("value").is_none(),
        "no value: {}",
        setting.data
    );
    wait_for_list(
        client,
        list(&[
            "registry.example.com/hooks/a:1",
            "registry.example.com/tools/*",
        ]),
    )
    .await?;
    ensure!(job.metric(&reconciliations("SettingCreated"))? == 1.0);
    let condition = wait_for_condition(client, "True").await?;
    ensure!(condition["reason"] == "Applied", "{condition}");
    let message = condition["message"].as_str().unwrap_or_default();
    ensure!(
        message.starts_with("2 entries (union of default and value, list ")
            && message.ends_with("in allowedImages of ClusterAdmissionPolicy hook-sidecars"),
        "{condition}"
    );
    job.stop()
}

async fn never_overwrites_an_existing_setting(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    let before = put_setting(client, "", "registry.example.com/hooks/mine:1").await?;
    let job = cluster.start_job(&["--default-sidecars", "registry.example.com/hooks/other:9"])?;
    wait_for_list(client, list(&["registry.example.com/hooks/mine:1"])).await?;

    wait_for_condition(client, "True").await?;
    let after = settings_api(client).get(SETTING).await?;
    ensure!(
        after.data["default"] == "" && after.data["value"] == "registry.example.com/hooks/mine:1",
        "{}",
        after.data
    );
    ensure!(
        after.metadata.creation_timestamp == before.metadata.creation_timestamp,
        "the Setting was replaced"
    );
    // The job's only write is its condition in status.
    let managed = after.metadata.managed_fields.unwrap_or_default();
    let job_fields: Vec<_> = managed
        .iter()
        .filter(|entry| entry.manager.as_deref() == Some("hook-sidecar-sync"))
        .collect();
    ensure!(job_fields.len() == 1, "{job_fields:?}");
    let owned = serde_json::to_value(&job_fields[0].fields_v1)?;
    ensure!(
        owned == json!({ "f:status": { ".": {}, "f:conditions": {} } }),
        "the job wrote more than its condition: {owned}"
    );
    ensure!(
        job.metric(&reconciliations("SettingCreated"))
            .unwrap_or(0.0)
            == 0.0
    );
    job.stop()
}

async fn applies_the_union_of_default_and_value(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(
        client,
        "a.example.com/x:1, b.example.com/y:*",
        "b.example.com/y:*, ,c.example.com/z/*,a.example.com/x:1,",
    )
    .await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(
        client,
        list(&[
            "a.example.com/x:1",
            "b.example.com/y:*",
            "c.example.com/z/*",
        ]),
    )
    .await?;
    job.stop()
}

async fn applies_the_effective_value_with_list_mode_effective(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(
        client,
        "a.example.com/x:1, b.example.com/y:*",
        "c.example.com/z/*, c.example.com/z/*",
    )
    .await?;
    let job = cluster.start_job(&["--list-mode=effective"])?;
    // `value` replaces `default` while it is not empty, as in Harvester's own settings.
    wait_for_list(client, list(&["c.example.com/z/*"])).await?;
    set_value(client, "").await?;
    wait_for_list(client, list(&["a.example.com/x:1", "b.example.com/y:*"])).await?;
    wait_until(
        "the condition to count 2 entries",
        PROPAGATION,
        || async move {
            Ok(setting_condition(client).await?.filter(|condition| {
                condition["status"] == "True"
                    && condition["message"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("2 entries (effective of default and value")
            }))
        },
    )
    .await?;
    job.stop()
}

async fn propagates_every_change(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "registry.example.com/base:1", "").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/base:1"])).await?;

    for (value, expected) in [
        (
            "registry.example.com/a:2",
            vec!["registry.example.com/base:1", "registry.example.com/a:2"],
        ),
        (
            "registry.example.com/a:2,registry.example.com/b:*",
            vec![
                "registry.example.com/base:1",
                "registry.example.com/a:2",
                "registry.example.com/b:*",
            ],
        ),
        ("", vec!["registry.example.com/base:1"]),
        (
            "registry.example.com/c/*",
            vec!["registry.example.com/base:1", "registry.example.com/c/*"],
        ),
    ] {
        set_value(client, value).await?;
        wait_for_list(client, list(&expected)).await?;
    }
    job.stop()
}

async fn keeps_a_refused_list_out_and_recovers(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/good:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/good:1"])).await?;
    wait_for_condition(client, "True").await?;
    let before = policies_api(client).get(POLICY).await?;

    // Upper case in a repository: Docker and the policy refuse it.
    set_value(
        client,
        "registry.example.com/good:1, registry.example.com/Bad:1",
    )
    .await?;
    let events = wait_for_events(client, 1).await?;
    let event = &events[0];
    let note = event["note"].as_str().unwrap_or_default();
    ensure!(
        event["type"] == "Warning" && event["reason"] == "InvalidSidecarList",
        "{event}"
    );
    // The reason and the culprit first; the list by its digest and size, never in full.
    ensure!(
        note.starts_with("allowedImages[1] \"registry.example.com/Bad:1\""),
        "{note}"
    );
    for named in [
        "Not applied: ClusterAdmissionPolicy hook-sidecars keeps its current allowedImages",
        "(2 entries) of Setting whitelisted-sidecars",
    ] {
        ensure!(
            note.contains(named),
            "the Event does not say {named:?}: {note}"
        );
    }
    let condition = wait_for_condition(client, "False").await?;
    ensure!(
        condition["reason"] == "InvalidSidecarList"
            && condition["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("ClusterAdmissionPolicy hook-sidecars: allowedImages[1] \"registry.example.com/Bad:1\""),
        "{condition}"
    );
    let after = policies_api(client).get(POLICY).await?;
    ensure!(
        resource_version(&after) == resource_version(&before),
        "the policy was written"
    );
    ensure!(
        after.data["spec"]["settings"]["allowedImages"] == list(&["registry.example.com/good:1"])
    );
    ensure!(job.metric("hook_sidecar_sync_refused_lists_total")? == 1.0);
    ensure!(job.metric(&accepted(POLICY))? == 0.0);
    ensure!(
        job.metric("hook_sidecar_sync_allowed_images{policy=\"hook-sidecars\"}")? == 1.0,
        "the policy still holds its one entry"
    );
    ensure!(
        job.log().contains("list refused, not applied"),
        "no log line"
    );

    // Another change that leaves the list as it is: no second report.
    let refused = job.metric(&reconciliations("Refused"))?;
    let label = json!({ "metadata": { "labels": { "touched": "yes" } } });
    settings_api(client)
        .patch(SETTING, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    wait_for_metric(&job, &reconciliations("Refused"), refused + 1.0).await?;
    ensure!(
        setting_events(client).await?.len() == 1,
        "the same list was reported twice"
    );
    ensure!(job.metric("hook_sidecar_sync_refused_lists_total")? == 1.0);

    // The next valid list is applied.
    set_value(
        client,
        "registry.example.com/good:1, registry.example.com/fixed:1",
    )
    .await?;
    wait_for_list(
        client,
        list(&[
            "registry.example.com/good:1",
            "registry.example.com/fixed:1",
        ]),
    )
    .await?;
    wait_for_condition(client, "True").await?;
    ensure!(job.metric(&accepted(POLICY))? == 1.0);
    job.stop()
}

async fn gives_each_distinct_refused_list_its_own_event(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/good:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/good:1"])).await?;

    // Two different refused lists in a row: kube-rs's Recorder would fold the second into the
    // first Event's series, and its note would keep naming the first culprit.
    set_value(client, "registry.example.com/First:1").await?;
    wait_for_events(client, 1).await?;
    set_value(client, "registry.example.com/Second:1").await?;
    let events = wait_for_events(client, 2).await?;
    for culprit in ["First", "Second"] {
        ensure!(
            events.iter().any(
                |event| event["note"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(&format!(
                        "allowedImages[0] \"registry.example.com/{culprit}:1\""
                    ))
            ),
            "no Event names {culprit}: {events:?}"
        );
    }

    // An administrator deletes the Events; the next refused list is reported all the same.
    reset_events(client).await?;
    set_value(client, "registry.example.com/Third:1").await?;
    let events = wait_for_events(client, 1).await?;
    ensure!(
        events[0]["note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("allowedImages[0] \"registry.example.com/Third:1\""),
        "{events:?}"
    );
    ensure!(job.metric("hook_sidecar_sync_refused_lists_total")? == 3.0);
    ensure!(allowed_images(client).await? == list(&["registry.example.com/good:1"]));
    job.stop()
}

async fn blames_the_policys_other_settings_when_they_are_invalid(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    // allowSharedComputePath without allowPVC: the policy-server would refuse these settings
    // whatever the list.
    create_policy(client, json!({ "allowSharedComputePath": true })).await?;
    put_setting(client, "", "registry.example.com/valid:1").await?;
    let job = cluster.start_job(&[])?;
    let events = wait_for_events(client, 1).await?;
    let note = events[0]["note"].as_str().unwrap_or_default();
    ensure!(
        events[0]["reason"] == "InvalidPolicySettings",
        "{}",
        events[0]
    );
    ensure!(
        note.starts_with("allowSharedComputePath: true needs allowPVC: true: the other settings of ClusterAdmissionPolicy hook-sidecars are invalid"),
        "{note}"
    );
    ensure!(note.ends_with("is valid"), "{note}");
    let condition = wait_for_condition(client, "False").await?;
    ensure!(
        condition["reason"] == "InvalidPolicySettings",
        "{condition}"
    );

    // Fixed by the administrator: the list goes in.
    let patch = json!({ "spec": { "settings": { "allowPVC": true } } });
    policies_api(client)
        .patch(POLICY, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_for_list(client, list(&["registry.example.com/valid:1"])).await?;
    wait_for_condition(client, "True").await?;
    job.stop()
}

async fn preserves_the_other_settings_and_fields(cluster: &Cluster, client: &Client) -> Result<()> {
    // sidecarProfiles: a list of objects with nested lists, which the job must carry untouched.
    let profiles = json!([{
        "image": "registry.example.com/hooks/qemu:v1",
        "args": [["--version", "v1alpha3"]],
        "annotations": {
            "qemu.example.com/args": "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"
        },
    }]);
    let created = create_policy(
        client,
        json!({
            "allowedImages": ["registry.example.com/old:1"],
            "sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.4.0",
            "allowCommand": true,
            "sidecarProfiles": profiles,
        }),
    )
    .await?;
    put_setting(client, "", "registry.example.com/new:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/new:1"])).await?;

    let policy = policies_api(client).get(POLICY).await?;
    let settings = &policy.data["spec"]["settings"];
    ensure!(
        settings["sidecarShimImage"] == "quay.io/kubevirt/sidecar-shim:v1.4.0"
            && settings["allowCommand"] == true
            && settings["sidecarProfiles"] == profiles,
        "{settings}"
    );
    for field in ["module", "mode", "mutating", "backgroundAudit", "rules"] {
        ensure!(
            policy.data["spec"][field] == created.data["spec"][field],
            "spec.{field} changed"
        );
    }
    // The job owns allowedImages and nothing else.
    let managed = policy.metadata.managed_fields.unwrap_or_default();
    let job_fields: Vec<_> = managed
        .iter()
        .filter(|entry| entry.manager.as_deref() == Some("hook-sidecar-sync"))
        .collect();
    ensure!(
        job_fields.len() == 1 && job_fields[0].operation.as_deref() == Some("Apply"),
        "{job_fields:?}"
    );
    let owned = serde_json::to_value(&job_fields[0].fields_v1)?;
    ensure!(
        owned == json!({ "f:spec": { "f:settings": { "f:allowedImages": {} } } }),
        "owned fields: {owned}"
    );

    // An administrator's change of another key stays.
    let unreconciled = job.metric(&reconciliations("Unchanged")).unwrap_or(0.0);
    let patch = json!({ "spec": { "settings": { "allowCommand": false } } });
    policies_api(client)
        .patch(POLICY, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    wait_for_metric(&job, &reconciliations("Unchanged"), unreconciled + 1.0).await?;
    let settings = policy_settings(client).await?;
    ensure!(
        settings["allowCommand"] == false
            && settings["allowedImages"] == list(&["registry.example.com/new:1"])
            && settings["sidecarProfiles"] == profiles,
        "{settings}"
    );
    job.stop()
}

async fn writes_nothing_when_nothing_changed(cluster: &Cluster, client: &Client) -> Result<()> {
    let created = create_policy(
        client,
        json!({ "allowedImages": ["registry.example.com/same:1"] }),
    )
    .await?;
    put_setting(client, "registry.example.com/same:1", "").await?;
    let job = cluster.start_job(&[])?;
    wait_for_metric(&job, &reconciliations("Unchanged"), 1.0).await?;
    wait_for_condition(client, "True").await?;

    // A change of the Setting that leaves the list as it is.
    let unchanged = job.metric(&reconciliations("Unchanged"))?;
    let label = json!({ "metadata": { "labels": { "touched": "yes" } } });
    settings_api(client)
        .patch(SETTING, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    wait_for_metric(&job, &reconciliations("Unchanged"), unchanged + 1.0).await?;
    job.stop()?;
    // A restarted job.
    let job = cluster.start_job(&[])?;
    wait_for_metric(&job, &reconciliations("Unchanged"), 1.0).await?;

    let policy = policies_api(client).get(POLICY).await?;
    ensure!(
        resource_version(&policy) == resource_version(&created),
        "the policy was written"
    );
    ensure!(job.metric(&reconciliations("Applied")).unwrap_or(0.0) == 0.0);
    ensure!(job.metric("hook_sidecar_sync_apply_requests_total")? == 0.0);
    job.stop()
}

async fn waits_for_a_missing_policy(cluster: &Cluster, client: &Client) -> Result<()> {
    put_setting(client, "", "registry.example.com/later:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_metric(&job, &reconciliations("PolicyMissing"), 1.0).await?;
    wait_ready(&job).await?;
    let condition = wait_for_condition(client, "False").await?;
    ensure!(
        condition["reason"] == "PolicyNotFound"
            && condition["message"] == "ClusterAdmissionPolicy hook-sidecars not found",
        "{condition}"
    );
    ensure!(job.metric(&accepted(POLICY))? == 0.0);
    ensure!(job.metric("hook_sidecar_sync_allowed_images{policy=\"hook-sidecars\"}")? == 0.0);
    ensure!(job.http_get("/healthz")? == (200, "ok".to_owned()));
    ensure!(
        policies_api(client).get_opt(POLICY).await?.is_none(),
        "the job created the policy"
    );

    create_policy(client, json!({})).await?;
    wait_for_list(client, list(&["registry.example.com/later:1"])).await?;
    job.stop()
}

async fn mirrors_into_every_named_policy(cluster: &Cluster, client: &Client) -> Result<()> {
    // The second policy's name is the operator's choice: RBAC must name it too.
    grant_policy(cluster, LAUNCHER_POLICY)?;
    create_policy(client, json!({})).await?;
    create_named_policy(
        client,
        LAUNCHER_POLICY,
        json!({ "allowSharedComputePath": true }),
    )
    .await?;
    put_setting(client, "", "registry.example.com/both:1").await?;
    let job = cluster.start_job(&[
        "--policy-name",
        POLICY,
        &format!("--policy-name={LAUNCHER_POLICY}"),
    ])?;
    wait_for_list(client, list(&["registry.example.com/both:1"])).await?;
    // The second policy's own settings are invalid: it keeps its list, and the condition and an
    // Event name it; the first policy is not held back by it.
    let condition = wait_for_condition(client, "False").await?;
    ensure!(
        condition["reason"] == "InvalidPolicySettings"
            && condition["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!(
                    "ClusterAdmissionPolicy {LAUNCHER_POLICY}: allowSharedComputePath"
                )),
        "{condition}"
    );
    ensure!(job.metric(&accepted(POLICY))? == 1.0);
    ensure!(job.metric(&accepted(LAUNCHER_POLICY))? == 0.0);

    let patch = json!({ "spec": { "settings": { "allowPVC": true } } });
    policies_api(client)
        .patch(
            LAUNCHER_POLICY,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    wait_until("both policies hold the list", PROPAGATION, || async move {
        let launcher = policies_api(client).get(LAUNCHER_POLICY).await?;
        Ok((launcher.data["spec"]["settings"]["allowedImages"]
            == list(&["registry.example.com/both:1"]))
        .then_some(()))
    })
    .await?;
    let condition = wait_for_condition(client, "True").await?;
    ensure!(
        condition["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(
                "ClusterAdmissionPolicy {POLICY}, {LAUNCHER_POLICY}"
            )),
        "{condition}"
    );
    set_value(client, "registry.example.com/next:2").await?;
    wait_for_list(client, list(&["registry.example.com/next:2"])).await?;
    wait_until("the second policy follows", PROPAGATION, || async move {
        let launcher = policies_api(client).get(LAUNCHER_POLICY).await?;
        Ok((launcher.data["spec"]["settings"]["allowedImages"]
            == list(&["registry.example.com/next:2"]))
        .then_some(()))
    })
    .await?;
    job.stop()?;
    policies_api(client)
        .delete(LAUNCHER_POLICY, &Default::default())
        .await?;
    Ok(())
}

async fn only_keeps_the_setting_without_mirroring(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    let created = create_policy(
        client,
        json!({ "allowedImages": ["registry.example.com/own:1"] }),
    )
    .await?;
    let job = cluster.start_job(&[
        "--mirror-allowed-images=false",
        "--default-sidecars=registry.example.com/default:1",
        "--recreate-grace-seconds=1",
    ])?;
    let setting = wait_until("the Setting created", PROPAGATION, || async move {
        Ok(settings_api(client).get_opt(SETTING).await?)
    })
    .await?;
    ensure!(
        setting.data["default"] == "registry.example.com/default:1",
        "{}",
        setting.data
    );
    wait_ready(&job).await?;
    set_value(client, "registry.example.com/read-at-admission:1").await?;
    // Nothing to observe in this mode but the re-created Setting: give the job time to read it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Deleted: created again after the grace period, with the list it had.
    settings_api(client)
        .delete(SETTING, &Default::default())
        .await?;
    let recreated = wait_until("the Setting created again", PROPAGATION, || async move {
        Ok(settings_api(client).get_opt(SETTING).await?)
    })
    .await?;
    ensure!(
        recreated.data["value"]
            == "registry.example.com/default:1,registry.example.com/read-at-admission:1",
        "{}",
        recreated.data
    );
    // Nothing written into the policy, no condition (the policy reads the Setting itself).
    let policy = policies_api(client).get(POLICY).await?;
    ensure!(
        resource_version(&policy) == resource_version(&created),
        "the policy was written"
    );
    ensure!(setting_condition(client).await?.is_none());
    ensure!(job.metric("hook_sidecar_sync_apply_requests_total")? == 0.0);
    job.stop()
}

async fn recreates_a_deleted_setting_after_a_grace_period_with_the_last_list(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(
        client,
        "registry.example.com/base:1",
        "registry.example.com/added:1",
    )
    .await?;
    let job = cluster.start_job(&[
        "--default-sidecars=registry.example.com/base:1",
        "--recreate-grace-seconds=3",
    ])?;
    let enforced = list(&[
        "registry.example.com/base:1",
        "registry.example.com/added:1",
    ]);
    wait_for_list(client, enforced.clone()).await?;
    wait_for_condition(client, "True").await?;

    // `kubectl replace --force`: delete, then create at once. The job does not race the
    // administrator (no AlreadyExists), and the administrator's list is applied.
    settings_api(client)
        .delete(SETTING, &Default::default())
        .await?;
    put_setting(
        client,
        "registry.example.com/base:1",
        "registry.example.com/replaced:1",
    )
    .await?;
    let replaced = list(&[
        "registry.example.com/base:1",
        "registry.example.com/replaced:1",
    ]);
    wait_for_list(client, replaced.clone()).await?;
    wait_for_condition(client, "True").await?;

    // Deleted for good: nothing happens during the grace period, the policy keeps its list...
    let before = policies_api(client).get(POLICY).await?;
    settings_api(client)
        .delete(SETTING, &Default::default())
        .await?;
    let deleted_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        settings_api(client).get_opt(SETTING).await?.is_none(),
        "re-created during the grace period"
    );
    ensure!(job.metric(&reconciliations("SettingMissing"))? >= 1.0);
    // ...then the Setting is created again with the list the policy enforces, and the policy is
    // not written.
    let recreated = wait_until("the Setting created again", PROPAGATION, || async move {
        Ok(settings_api(client).get_opt(SETTING).await?)
    })
    .await?;
    let waited = deleted_at.elapsed();
    ensure!(
        waited >= Duration::from_secs(3),
        "re-created after {waited:?}"
    );
    ensure!(
        recreated.data["default"] == "registry.example.com/base:1"
            && recreated.data["value"]
                == "registry.example.com/base:1,registry.example.com/replaced:1",
        "{}",
        recreated.data
    );
    wait_for_condition(client, "True").await?;
    let after = policies_api(client).get(POLICY).await?;
    ensure!(
        after.data["spec"]["settings"]["allowedImages"] == replaced,
        "{}",
        after.data
    );
    ensure!(
        resource_version(&after) == resource_version(&before),
        "the policy was written"
    );
    ensure!(job.metric(&reconciliations("SettingCreated"))? == 1.0);
    job.stop()
}

/// A Setting of `bytes` bytes of short distinct entries in `value`.
fn large_value(bytes: usize, tag: &str) -> (String, usize) {
    let mut value = String::with_capacity(bytes + 64);
    let mut entries = 0;
    while value.len() < bytes {
        value.push_str(&format!("registry.example.com/{tag}{entries}:1,"));
        entries += 1;
    }
    (value, entries)
}

/// The largest Setting the PolicyServer's ConfigMap can hold with nothing else on it: 1 MiB of
/// ConfigMap is about 0.93 MiB of such entries (each is quoted in the JSON).
const LARGE_SETTING: usize = 950_000;

async fn applies_a_large_setting_while_the_health_endpoints_answer(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/small:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/small:1"])).await?;

    let (value, entries) = large_value(LARGE_SETTING, "i");
    let stop_probing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop_probing);
        let port = job.metrics_port;
        std::thread::spawn(move || -> Result<(usize, Duration)> {
            let mut answered = 0;
            let mut slowest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                let (status, _) = test_support::http_get(port, "/healthz", Duration::from_secs(2))?;
                ensure!(status == 200, "/healthz answered {status}");
                slowest = slowest.max(started.elapsed());
                answered += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok((answered, slowest))
        })
    };
    set_value(client, &value).await?;
    wait_until("the large list applied", PROPAGATION, || async move {
        let images = allowed_images(client).await?;
        Ok((images.as_array().map_or(0, Vec::len) == entries).then_some(()))
    })
    .await?;
    stop_probing.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, slowest) = prober
        .join()
        .map_err(|_| anyhow::anyhow!("the prober panicked"))??;
    ensure!(answered > 0, "no /healthz answer");
    eprintln!(
        "{LARGE_SETTING}-byte Setting ({entries} entries) applied; /healthz answered {answered} times, slowest {slowest:?}"
    );
    ensure!(job.metric(&accepted(POLICY))? == 1.0);
    job.stop()
}

async fn refuses_a_list_over_the_size_bound_once(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/small:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/small:1"])).await?;
    let before = policies_api(client).get(POLICY).await?;

    // 1.3 MB: the API server stores the Setting, but the policy with it would be over the bound
    // (and etcd would refuse the policy: "request is too large").
    let (value, entries) = large_value(1_300_000, "i");
    set_value(client, &value).await?;
    let events = wait_for_events(client, 1).await?;
    let note = events[0]["note"].as_str().unwrap_or_default();
    ensure!(
        events[0]["reason"] == "SidecarListTooLarge",
        "{}",
        events[0]
    );
    ensure!(
        note.starts_with("spec.settings would be ")
            && note.contains(&format!(
                "with these {entries} entries, over the bound of 1310720 bytes"
            )),
        "{note}"
    );
    wait_for_condition(client, "False").await?;
    // No retry loop: no failed reconciliation, no apply request, and nothing more after a while.
    let requests = job.metric("hook_sidecar_sync_apply_requests_total")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(job.metric("hook_sidecar_sync_apply_requests_total")? == requests);
    ensure!(job.metric(&reconciliations("Error")).unwrap_or(0.0) == 0.0);
    ensure!(job.metric("hook_sidecar_sync_refused_lists_total")? == 1.0);
    let after = policies_api(client).get(POLICY).await?;
    ensure!(
        resource_version(&after) == resource_version(&before),
        "the policy was written"
    );
    // No log line carries the list.
    let longest = job.log().lines().map(str::len).max().unwrap_or(0);
    ensure!(longest < 4096, "a log line of {longest} bytes");
    job.stop()
}

fn policy_servers_api(client: &Client) -> kube::Api<kube::api::DynamicObject> {
    kube::Api::all_with(
        client.clone(),
        &resource(
            "policies.kubewarden.io",
            "v1",
            "PolicyServer",
            "policyservers",
        ),
    )
}

/// Someone else's policy on the same PolicyServer, with `bytes` of settings.
async fn create_unrelated_policy(client: &Client, policy_server: &str, bytes: usize) -> Result<()> {
    let _ = policies_api(client)
        .delete(UNRELATED_POLICY, &Default::default())
        .await;
    wait_until("the unrelated policy gone", PROPAGATION, || async move {
        Ok(policies_api(client)
            .get_opt(UNRELATED_POLICY)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    let policy: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policies.kubewarden.io/v1",
        "kind": "ClusterAdmissionPolicy",
        "metadata": { "name": UNRELATED_POLICY },
        "spec": {
            "module": "registry://ghcr.io/kubewarden/policies/safe-labels:v1.0.0",
            "policyServer": policy_server,
            "mutating": false,
            "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"] }],
            "settings": { "mandatory_labels": ["x".repeat(bytes)] },
        },
    }))?;
    policies_api(client)
        .create(&Default::default(), &policy)
        .await?;
    Ok(())
}

const UNRELATED_POLICY: &str = "another-teams-policy";

/// kubewarden-controller writes every policy of a PolicyServer into one ConfigMap, at most 1 MiB:
/// a list that fits in the policy (under --max-settings-bytes) but not in that ConfigMap beside
/// another team's policy on the same PolicyServer is refused before anything is written.
async fn refuses_a_list_the_policy_servers_configmap_cannot_hold(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    create_policy(client, json!({})).await?;
    // The PolicyServer as kubewarden-defaults creates it, with a source authority (in sources.yml).
    let _ = policy_servers_api(client)
        .delete("default", &Default::default())
        .await;
    let server: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policies.kubewarden.io/v1",
        "kind": "PolicyServer",
        "metadata": { "name": "default" },
        "spec": {
            "image": "ghcr.io/kubewarden/policy-server:v1.35.0",
            "replicas": 2,
            "serviceAccountName": "policy-server",
            "sourceAuthorities": { "registry.example.com": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"] },
        },
    }))?;
    policy_servers_api(client)
        .create(&Default::default(), &server)
        .await?;
    create_unrelated_policy(client, "default", 400_000).await?;
    put_setting(client, "", "registry.example.com/small:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/small:1"])).await?;
    let before = policies_api(client).get(POLICY).await?;

    // 700 kB of list: well under --max-settings-bytes, but with the other policy's 400 kB the
    // ConfigMap would be over 1 MiB.
    let (value, entries) = large_value(700_000, "c");
    set_value(client, &value).await?;
    let events = wait_for_events(client, 1).await?;
    let event = &events[0];
    ensure!(event["reason"] == "PolicyServerConfigTooLarge", "{event}");
    let note = event["note"].as_str().unwrap_or_default();
    ensure!(
        note.starts_with("the policies ConfigMap of PolicyServer default would be ")
            && note.contains(&format!(
                "with these {entries} entries in ClusterAdmissionPolicy hook-sidecars, over Kubernetes' limit of 1048576 bytes for a ConfigMap; the other 1 policies on it and its sources take "
            ))
            && note.contains("Not applied: ClusterAdmissionPolicy hook-sidecars keeps its current allowedImages"),
        "{note}"
    );
    let condition = wait_for_condition(client, "False").await?;
    ensure!(
        condition["reason"] == "PolicyServerConfigTooLarge",
        "{condition}"
    );
    let after = policies_api(client).get(POLICY).await?;
    ensure!(
        resource_version(&after) == resource_version(&before),
        "the policy was written"
    );
    ensure!(job.metric(&accepted(POLICY))? == 0.0);

    // The other policy moves to another PolicyServer: the same list now fits (looked at again at
    // the next change of the policy, or after a minute).
    let moved = json!({ "spec": { "policyServer": "other" } });
    policies_api(client)
        .patch(
            UNRELATED_POLICY,
            &PatchParams::default(),
            &Patch::Merge(&moved),
        )
        .await?;
    let touched = json!({ "metadata": { "annotations": { "example.com/touched": "1" } } });
    policies_api(client)
        .patch(POLICY, &PatchParams::default(), &Patch::Merge(&touched))
        .await?;
    wait_until("the list applied", PROPAGATION, || async move {
        let images = allowed_images(client).await?;
        Ok((images.as_array().map_or(0, Vec::len) == entries).then_some(()))
    })
    .await?;
    wait_for_condition(client, "True").await?;
    job.stop()?;
    policies_api(client)
        .delete(UNRELATED_POLICY, &Default::default())
        .await?;
    policy_servers_api(client)
        .delete("default", &Default::default())
        .await?;
    Ok(())
}

/// With the launcher-Pod policy kept, the list is in the ConfigMap twice.
async fn counts_both_copies_of_the_list(cluster: &Cluster, client: &Client) -> Result<()> {
    grant_policy(cluster, LAUNCHER_POLICY)?;
    create_policy(client, json!({})).await?;
    let _ = policies_api(client)
        .delete(LAUNCHER_POLICY, &Default::default())
        .await;
    wait_until("the launcher policy gone", PROPAGATION, || async move {
        Ok(policies_api(client)
            .get_opt(LAUNCHER_POLICY)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    create_named_policy(client, LAUNCHER_POLICY, json!({})).await?;
    put_setting(client, "", "registry.example.com/small:1").await?;
    let (value, entries) = large_value(600_000, "d");
    // One copy fits.
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/small:1"])).await?;
    set_value(client, &value).await?;
    wait_until("one copy applied", PROPAGATION, || async move {
        let images = allowed_images(client).await?;
        Ok((images.as_array().map_or(0, Vec::len) == entries).then_some(()))
    })
    .await?;
    job.stop()?;
    // Two copies do not: refused for both, neither written.
    let (value, entries) = large_value(600_000, "e");
    set_value(client, &value).await?;
    let launcher_before = policies_api(client).get(LAUNCHER_POLICY).await?;
    let both = format!("--policy-name={POLICY},{LAUNCHER_POLICY}");
    let job = cluster.start_job(&[both.as_str()])?;
    let events = wait_until("an Event for each policy", PROPAGATION, || async move {
        let events = setting_events(client).await?;
        let too_large: Vec<Value> = events
            .into_iter()
            .filter(|event| event["reason"] == "PolicyServerConfigTooLarge")
            .collect();
        Ok((too_large.len() >= 2).then_some(too_large))
    })
    .await?;
    for event in &events {
        let note = event["note"].as_str().unwrap_or_default();
        ensure!(
            note.contains(&format!(
                "with these {entries} entries in ClusterAdmissionPolicy {POLICY} and {LAUNCHER_POLICY}, over Kubernetes' limit"
            )),
            "{note}"
        );
    }
    ensure!(
        resource_version(&policies_api(client).get(LAUNCHER_POLICY).await?)
            == resource_version(&launcher_before),
        "the launcher-Pod policy was written"
    );
    // The VM policy keeps the list it had (the first, of "d" entries).
    ensure!(
        allowed_images(client).await?[0] == "registry.example.com/d0:1",
        "the VM policy was written"
    );
    job.stop()?;
    policies_api(client)
        .delete(LAUNCHER_POLICY, &Default::default())
        .await?;
    Ok(())
}

/// The bound is the API server's: a ConfigMap with what the job renders is stored up to 1 MiB of
/// values (the keys do not count), and refused one byte beyond.
async fn the_configmap_bound_is_the_api_servers(cluster: &Cluster, client: &Client) -> Result<()> {
    use hook_sidecar_sync::policy_server_config::{
        CONFIGMAP_MAX_BYTES, POLICIES_KEY, PolicyKind, SOURCES_KEY, render,
    };
    let _ = cluster;
    let policy = |padding: usize| {
        json!({
            "metadata": { "name": POLICY },
            "spec": {
                "module": "registry://ghcr.io/kubewarden-contrib/policies/hook-sidecar-policy:v0.1.0",
                "mode": "protect",
                "policyServer": "default",
                "settings": { "allowedImages": ["a".repeat(padding)] },
            },
        })
    };
    let empty = render(None, &[(PolicyKind::ClusterAdmissionPolicy, &policy(0))]).size();
    let configmaps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), JOB_NAMESPACE);
    for (padding, stored) in [
        (CONFIGMAP_MAX_BYTES - empty, true),
        (CONFIGMAP_MAX_BYTES - empty + 1, false),
    ] {
        let data = render(
            None,
            &[(PolicyKind::ClusterAdmissionPolicy, &policy(padding))],
        );
        let configmap: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
            "metadata": { "name": "policy-server-default" },
            "data": { POLICIES_KEY: data.policies, SOURCES_KEY: data.sources },
        }))?;
        let size = data.policies.len() + data.sources.len();
        let result = configmaps
            .create(
                &kube::api::PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &configmap,
            )
            .await;
        match (stored, result) {
            (true, Ok(_)) => ensure!(size == CONFIGMAP_MAX_BYTES, "{size}"),
            (false, Err(kube::Error::Api(status))) => ensure!(
                status.code == 422 && status.message.contains("1048576"),
                "{status:?}"
            ),
            (stored, result) => {
                anyhow::bail!("{size} bytes: expected stored={stored}, got {result:?}")
            }
        }
    }
    Ok(())
}

/// The job's rendering of the policies ConfigMap is kubewarden-controller's, byte for byte: the
/// objects as this API server serves them, rendered by the job's code and by the controller's
/// own Go code (sync/tests/go-configmap, copied from v1.35.0), with settings that exercise Go's
/// encoding (HTML escaping, U+2028, control characters, floats, key order), every policy kind, a
/// namespaced policy with the PolicyServer's capabilities, and sources.
async fn renders_the_configmap_as_kubewarden_controller_does(
    cluster: &Cluster,
    client: &Client,
) -> Result<()> {
    use hook_sidecar_sync::policy_server_config::{PolicyKind, render};
    let oracle = build_go_configmap(cluster.dir())?;
    let tricky = json!({
        "z": "<b>&amp;</b> \u{2028}\u{2029} \u{1}\u{8}\u{c}\t\n \"quoted\" \\ é ✓",
        "a": [1, -2, 1.5, 100.0, 1e21, 1.5e-7, 0.000001, 123456789.25, 9007199254740993_u64, true, null],
        "M": { "y": {}, "b": [] },
        "allowedImages": ["registry.example.com/a:1", "registry.example.com/b/*"],
    });
    let objects = vec![
        json!({ "apiVersion": "policies.kubewarden.io/v1", "kind": "ClusterAdmissionPolicy",
            "metadata": { "name": POLICY },
            "spec": { "module": "registry://ghcr.io/x/hook-sidecar-policy:v0.1.0", "mode": "protect",
                      "mutating": false, "policyServer": "default", "timeoutEvalSeconds": 3,
                      "message": "no <sidecar>", "settings": tricky,
                      "contextAwareResources": [{ "apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting" }],
                      "rules": [{ "apiGroups": ["kubevirt.io"], "apiVersions": ["v1"], "resources": ["virtualmachines"], "operations": ["CREATE"] }] } }),
        json!({ "apiVersion": "policies.kubewarden.io/v1", "kind": "ClusterAdmissionPolicy",
            "metadata": { "name": UNRELATED_POLICY },
            "spec": { "module": "registry://ghcr.io/kubewarden/policies/safe-labels:v1.0.0",
                      "mutating": true, "policyServer": "default",
                      "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "operations": ["CREATE"] }] } }),
        json!({ "apiVersion": "policies.kubewarden.io/v1", "kind": "AdmissionPolicy",
            "metadata": { "name": "team-policy", "namespace": "default" },
            "spec": { "module": "registry://ghcr.io/kubewarden/policies/pod-privileged:v1.0.0",
                      "mutating": false, "policyServer": "default", "mode": "monitor", "settings": {},
                      "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"] }] } }),
        json!({ "apiVersion": "policies.kubewarden.io/v1", "kind": "ClusterAdmissionPolicyGroup",
            "metadata": { "name": "group" },
            "spec": { "policyServer": "default", "expression": "a() && !b()", "message": "refused <by> the group",
                      "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"] }],
                      "policies": {
                          "b": { "module": "registry://b:1", "timeoutEvalSeconds": 2, "settings": { "k": "v<>" },
                                 "contextAwareResources": [{ "apiVersion": "v1", "kind": "Pod" }] },
                          "a": { "module": "registry://a:1" } } } }),
        json!({ "apiVersion": "policies.kubewarden.io/v1", "kind": "AdmissionPolicyGroup",
            "metadata": { "name": "ns-group", "namespace": "default" },
            "spec": { "policyServer": "default", "expression": "a()", "message": "m",
                      "rules": [{ "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"] }],
                      "policies": { "a": { "module": "registry://a:1", "settings": { "x": 1 } } } } }),
        json!({ "apiVersion": "policies.kubewarden.io/v1", "kind": "PolicyServer",
            "metadata": { "name": "default" },
            "spec": { "image": "ghcr.io/kubewarden/policy-server:v1.35.0", "replicas": 1,
                      "insecureSources": ["registry.local:5000"],
                      "sourceAuthorities": { "z.example": ["PEM<2>"], "a.example": ["PEM1", "PEM3"] },
                      "namespacedPoliciesCapabilities": ["oci/v1/verify", "kubernetes/*"] } }),
    ];
    let file = cluster.manifest_file("configmap-oracle.json", &objects)?;
    cluster.kubectl(&["apply", "-f", &file.display().to_string()])?;
    // Each object as the API server writes it (`--raw`: not kubectl's re-encoding, and not
    // re-serialized here: the controller's RawExtension keeps the API server's bytes), parsed for
    // the job as kube-rs parses it.
    let served = |path: &str| -> Result<Vec<(String, Value)>> {
        let list: Value = serde_json::from_str(&cluster.kubectl(&["get", "--raw", path])?)?;
        let mut objects = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            let object_path = match item["metadata"]["namespace"].as_str() {
                Some(namespace) => {
                    path.replacen("/v1/", &format!("/v1/namespaces/{namespace}/"), 1)
                }
                None => path.to_owned(),
            };
            let raw = cluster.kubectl(&["get", "--raw", &format!("{object_path}/{name}")])?;
            let parsed = serde_json::from_str(&raw)?;
            objects.push((raw.trim().to_owned(), parsed));
        }
        Ok(objects)
    };
    let mut policies = Vec::new();
    let mut raw_policies = Vec::new();
    for (kind, plural) in [
        (
            PolicyKind::ClusterAdmissionPolicy,
            "clusteradmissionpolicies",
        ),
        (PolicyKind::AdmissionPolicy, "admissionpolicies"),
        (PolicyKind::AdmissionPolicyGroup, "admissionpolicygroups"),
        (
            PolicyKind::ClusterAdmissionPolicyGroup,
            "clusteradmissionpolicygroups",
        ),
    ] {
        for (raw, policy) in served(&format!("/apis/policies.kubewarden.io/v1/{plural}"))? {
            raw_policies.push(raw);
            policies.push((kind, policy));
        }
    }
    ensure!(policies.len() == 5, "{policies:?}");
    let (raw_server, server) = served("/apis/policies.kubewarden.io/v1/policyservers")?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no PolicyServer"))?;
    // Go's number format, as the API server writes it (serde_json would write 1e-6).
    ensure!(
        raw_policies.iter().any(|raw| raw.contains("0.000001,")),
        "the API server's JSON: {raw_policies:?}"
    );
    let input = format!(
        r#"{{"policyServer": {raw_server}, "policies": [{}]}}"#,
        raw_policies.join(",")
    );
    let expected: Value = serde_json::from_str(&run_with_stdin(&oracle, &input)?)?;
    let server = Some(server);
    let borrowed: Vec<(PolicyKind, &Value)> = policies.iter().map(|(kind, p)| (*kind, p)).collect();
    let data = render(server.as_ref(), &borrowed);
    ensure!(
        data.policies == expected["policies.yml"],
        "policies.yml differs:\n  job:        {}\n  controller: {}",
        data.policies,
        expected["policies.yml"]
    );
    ensure!(
        data.sources == expected["sources.yml"],
        "sources.yml differs: {} vs {}",
        data.sources,
        expected["sources.yml"]
    );
    cluster.kubectl(&["delete", "-f", &file.display().to_string()])?;
    let _ = client;
    Ok(())
}

/// Builds sync/tests/go-configmap (Go's standard library only) into `dir`.
fn build_go_configmap(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let binary = dir.join("go-configmap");
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go-configmap"))
        .env("GOFLAGS", "-mod=mod")
        .status()?;
    ensure!(
        status.success(),
        "go build of sync/tests/go-configmap failed"
    );
    Ok(binary)
}

fn run_with_stdin(binary: &std::path::Path, input: &str) -> Result<String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new(binary)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("stdin"))?
        .write_all(input.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "{}: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

async fn coalesces_a_burst_of_changes(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/burst:start").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/burst:start"])).await?;
    wait_for_condition(client, "True").await?;
    let requests = job.metric("hook_sidecar_sync_apply_requests_total")?;
    let applied = job.metric(&reconciliations("Applied"))?;
    let written = policies_api(client).get(POLICY).await?;

    const CHANGES: usize = 500;
    for change in 0..CHANGES {
        set_value(client, &format!("registry.example.com/burst:{change}")).await?;
    }
    wait_for_list(
        client,
        list(&[&format!("registry.example.com/burst:{}", CHANGES - 1)]),
    )
    .await?;
    // Settled: the job's own write came back, and nothing more is sent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = job.metric("hook_sidecar_sync_apply_requests_total")? - requests;
    let writes = job.metric(&reconciliations("Applied"))? - applied;
    eprintln!("{CHANGES} changes: {sent} apply requests, {writes} writes of the policy");
    ensure!(sent <= 20.0, "{sent} apply requests for {CHANGES} changes");
    ensure!(
        writes == sent,
        "{writes} writes counted for {sent} requests: no-ops counted as writes"
    );
    let generation = |policy: &kube::api::DynamicObject| policy.metadata.generation.unwrap_or(0);
    let after = policies_api(client).get(POLICY).await?;
    ensure!(
        (generation(&after) - generation(&written)) as f64 == writes,
        "policy generation moved by {} for {writes} counted writes",
        generation(&after) - generation(&written)
    );
    job.stop()
}

async fn survives_an_api_server_restart(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/before:1").await?;
    let mut job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/before:1"])).await?;

    // Blocking is fine here: the job is another process, and this runtime has nothing else to run.
    cluster.restart_apiserver(Duration::from_secs(3))?;
    ensure!(
        job.is_running(),
        "the job exited while the API server was away"
    );

    let client = cluster.client().await?;
    set_value(&client, "registry.example.com/after:1").await?;
    wait_until(
        "the change after the restart",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            async move {
                Ok(
                    (allowed_images(&client).await? == list(&["registry.example.com/after:1"]))
                        .then_some(()),
                )
            }
        },
    )
    .await?;
    job.stop()
}

async fn converges_after_an_api_server_crash(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/before:1").await?;
    let mut job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/before:1"])).await?;

    // SIGKILL: no watch is closed cleanly, and the restarted server answers 403 for a moment.
    cluster.crash_apiserver(Duration::from_secs(5))?;
    let ready = std::time::Instant::now();
    ensure!(
        job.is_running(),
        "the job exited while the API server was away"
    );
    let client = cluster.client().await?;
    set_value(&client, "registry.example.com/after:1").await?;
    wait_until(
        "the change after the crash",
        Duration::from_secs(60),
        || {
            let client = client.clone();
            async move {
                Ok(
                    (allowed_images(&client).await? == list(&["registry.example.com/after:1"]))
                        .then_some(()),
                )
            }
        },
    )
    .await?;
    let converged = ready.elapsed();
    eprintln!("converged {converged:?} after the API server was ready (5 s outage, SIGKILL)");
    ensure!(
        converged < Duration::from_secs(15),
        "converged only after {converged:?}"
    );
    // One warning per watch for the outage, not one per attempt.
    let warnings = job
        .log()
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("hook_sidecar_sync::sync: watch"))
        .count();
    ensure!(warnings <= 4, "{warnings} watch warnings:\n{}", job.log());
    job.stop()
}

async fn rbac_grants_what_the_job_needs_and_no_more(
    cluster: &Cluster,
    _client: &Client,
) -> Result<()> {
    // Every other test runs the job with this ServiceAccount: that is the proof it is enough.
    // Here: that it is no more than that.
    let setting = format!("settings.harvesterhci.io/{SETTING}");
    let policy = format!("clusteradmissionpolicies.policies.kubewarden.io/{POLICY}");
    let kubevirt = format!("kubevirts.kubevirt.io/{KUBEVIRT}");
    let managed_chart = format!("managedcharts.management.cattle.io/{MANAGED_CHART}");
    for (allowed, request) in [
        (true, vec!["watch", setting.as_str()]),
        (true, vec!["create", "settings.harvesterhci.io"]),
        (true, vec!["patch", policy.as_str()]),
        // Its condition: Harvester's Setting has no status subresource.
        (true, vec!["patch", setting.as_str()]),
        (
            true,
            vec!["create", "events.events.k8s.io", "-n", "default"],
        ),
        (false, vec!["update", setting.as_str()]),
        (false, vec!["delete", setting.as_str()]),
        (
            false,
            vec!["patch", "settings.harvesterhci.io/ssl-certificates"],
        ),
        (
            false,
            vec!["patch", "events.events.k8s.io", "-n", "default"],
        ),
        (
            false,
            vec!["get", "settings.harvesterhci.io/ssl-certificates"],
        ),
        (false, vec!["list", "settings.harvesterhci.io"]),
        (
            false,
            vec![
                "patch",
                "clusteradmissionpolicies.policies.kubewarden.io/another-policy",
            ],
        ),
        (false, vec!["delete", policy.as_str()]),
        (
            false,
            vec!["create", "clusteradmissionpolicies.policies.kubewarden.io"],
        ),
        (false, vec!["patch", kubevirt.as_str(), "-n", "default"]),
        // The feature gate is off in the chart's defaults: no access to its targets.
        (
            false,
            vec!["patch", kubevirt.as_str(), "-n", KUBEVIRT_NAMESPACE],
        ),
        (
            false,
            vec!["get", managed_chart.as_str(), "-n", MANAGED_CHART_NAMESPACE],
        ),
        (false, vec!["get", "secrets", "-n", JOB_NAMESPACE]),
        (false, vec!["create", "pods", "-n", KUBEVIRT_NAMESPACE]),
        // The size bound of the PolicyServer's ConfigMap: every policy of every kind, listed...
        (
            true,
            vec!["list", "clusteradmissionpolicies.policies.kubewarden.io"],
        ),
        (
            true,
            vec!["list", "admissionpolicies.policies.kubewarden.io", "-A"],
        ),
        (
            true,
            vec![
                "list",
                "clusteradmissionpolicygroups.policies.kubewarden.io",
            ],
        ),
        (
            true,
            vec!["list", "admissionpolicygroups.policies.kubewarden.io", "-A"],
        ),
        (
            true,
            vec!["get", "policyservers.policies.kubewarden.io/default"],
        ),
        // ...and nothing more of them.
        (
            false,
            vec![
                "get",
                "admissionpolicies.policies.kubewarden.io",
                "-n",
                "default",
            ],
        ),
        (
            false,
            vec!["watch", "clusteradmissionpolicies.policies.kubewarden.io"],
        ),
        (
            false,
            vec![
                "patch",
                "admissionpolicies.policies.kubewarden.io",
                "-n",
                "default",
            ],
        ),
        (
            false,
            vec!["get", "policyservers.policies.kubewarden.io/other"],
        ),
        (
            false,
            vec!["patch", "policyservers.policies.kubewarden.io/default"],
        ),
        (false, vec!["get", "configmaps", "-n", JOB_NAMESPACE]),
    ] {
        let can = cluster.job_can(&request)?;
        ensure!(
            can == allowed,
            "the job's ServiceAccount can {}{request:?}",
            if allowed { "not " } else { "" }
        );
    }
    Ok(())
}
