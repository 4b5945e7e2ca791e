//! The job against a real kube-apiserver and etcd (see `support`), as its ServiceAccount with
//! exactly the RBAC the chart renders. One server for all tests, run one after the other; each
//! test starts from no Setting, no policy, no KubeVirt CR and no ManagedChart.

#[path = "api_server/chart.rs"]
mod chart;
#[path = "api_server/feature_gate.rs"]
mod feature_gate;
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{ensure, Result};
use kube::api::{Patch, PatchParams};
use kube::Client;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{json, Value};
use support::*;

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
        propagates_every_change,
        keeps_a_refused_list_out_and_recovers,
        preserves_the_other_settings_and_fields,
        writes_nothing_when_nothing_changed,
        waits_for_a_missing_policy,
        survives_an_api_server_restart,
        rbac_grants_what_the_job_needs_and_no_more,
        feature_gate::kubevirt_target_follows_the_policy_status,
        feature_gate::kubevirt_target_waits_for_a_cr_created_later,
        feature_gate::managedchart_target_patches_the_chart_values,
        feature_gate::managedchart_target_refuses_a_malformed_gate_list,
        feature_gate::auto_target_prefers_the_managed_chart,
        feature_gate::no_gate_without_an_active_policy,
        feature_gate::feature_gate_rbac_per_target,
        chart::chart_is_accepted_by_the_api_server,
        chart::chart_policy_matches_the_metadata,
        chart::addon_example_is_accepted,
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
        .get_or_init(|| Cluster::start().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| Failed::from(format!("cannot start the test cluster: {error}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            let client = cluster.client().await?;
            reset(&client).await?;
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
    job.stop()
}

async fn never_overwrites_an_existing_setting(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    let before = put_setting(client, "", "registry.example.com/hooks/mine:1").await?;
    let job = cluster.start_job(&["--default-sidecars", "registry.example.com/hooks/other:9"])?;
    wait_for_list(client, list(&["registry.example.com/hooks/mine:1"])).await?;

    let after = settings_api(client).get(SETTING).await?;
    ensure!(
        resource_version(&after) == resource_version(&before),
        "the Setting was written: {}",
        after.data
    );
    ensure!(
        after.data["default"] == "" && after.data["value"] == "registry.example.com/hooks/mine:1"
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

async fn propagates_every_change(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "registry.example.com/base:1", "").await?;
    let job = cluster.start_job(&["--default-sidecars", "registry.example.com/recreated:1"])?;
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

    // A deleted Setting is created again with the job's default, and the policy follows it.
    settings_api(client)
        .delete(SETTING, &Default::default())
        .await?;
    wait_for_list(client, list(&["registry.example.com/recreated:1"])).await?;
    ensure!(
        settings_api(client).get(SETTING).await?.data["default"]
            == "registry.example.com/recreated:1"
    );
    job.stop()
}

async fn keeps_a_refused_list_out_and_recovers(cluster: &Cluster, client: &Client) -> Result<()> {
    create_policy(client, json!({})).await?;
    put_setting(client, "", "registry.example.com/good:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_list(client, list(&["registry.example.com/good:1"])).await?;
    let before = policies_api(client).get(POLICY).await?;

    // Upper case in a repository: Docker and the policy refuse it.
    set_value(
        client,
        "registry.example.com/good:1, registry.example.com/Bad:1",
    )
    .await?;
    let events = wait_until(
        "a Warning Event on the Setting",
        PROPAGATION,
        || async move {
            let events = setting_events(client).await?;
            Ok((!events.is_empty()).then_some(events))
        },
    )
    .await?;
    let event = &events[0];
    let note = event["note"].as_str().unwrap_or_default();
    ensure!(
        event["type"] == "Warning" && event["reason"] == "InvalidSidecarList",
        "{event}"
    );
    for named in [
        "whitelisted-sidecars",
        "value",
        "allowedImages[1] \"registry.example.com/Bad:1\"",
        "hook-sidecars keeps its current allowedImages",
    ] {
        ensure!(
            note.contains(named),
            "the Event does not name {named:?}: {note}"
        );
    }
    let after = policies_api(client).get(POLICY).await?;
    ensure!(
        resource_version(&after) == resource_version(&before),
        "the policy was written"
    );
    ensure!(
        after.data["spec"]["settings"]["allowedImages"] == list(&["registry.example.com/good:1"])
    );
    ensure!(job.metric("hook_sidecar_sync_refused_lists_total")? == 1.0);
    ensure!(job.metric("hook_sidecar_sync_list_accepted")? == 0.0);
    ensure!(
        job.log().contains("list refused, not applied"),
        "no log line"
    );

    // Another change that leaves the list as it is: no second report.
    let label = json!({ "metadata": { "labels": { "touched": "yes" } } });
    settings_api(client)
        .patch(SETTING, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    wait_for_metric(&job, &reconciliations("Refused"), 2.0).await?;
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
    ensure!(job.metric("hook_sidecar_sync_list_accepted")? == 1.0);
    job.stop()
}

async fn preserves_the_other_settings_and_fields(cluster: &Cluster, client: &Client) -> Result<()> {
    let created = create_policy(
        client,
        json!({
            "allowedImages": ["registry.example.com/old:1"],
            "sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.4.0",
            "allowCommand": true,
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
            && settings["allowCommand"] == true,
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
            && settings["allowedImages"] == list(&["registry.example.com/new:1"]),
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

    // A change of the Setting that leaves the list as it is.
    let label = json!({ "metadata": { "labels": { "touched": "yes" } } });
    settings_api(client)
        .patch(SETTING, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    wait_for_metric(&job, &reconciliations("Unchanged"), 2.0).await?;
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
    job.stop()
}

async fn waits_for_a_missing_policy(cluster: &Cluster, client: &Client) -> Result<()> {
    put_setting(client, "", "registry.example.com/later:1").await?;
    let job = cluster.start_job(&[])?;
    wait_for_metric(&job, &reconciliations("PolicyMissing"), 1.0).await?;
    wait_ready(&job).await?;
    ensure!(job.http_get("/healthz")? == (200, "ok".to_owned()));
    ensure!(
        policies_api(client).get_opt(POLICY).await?.is_none(),
        "the job created the policy"
    );

    create_policy(client, json!({})).await?;
    wait_for_list(client, list(&["registry.example.com/later:1"])).await?;
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
        (
            true,
            vec!["create", "events.events.k8s.io", "-n", "default"],
        ),
        (false, vec!["update", setting.as_str()]),
        (false, vec!["patch", setting.as_str()]),
        (false, vec!["delete", setting.as_str()]),
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
