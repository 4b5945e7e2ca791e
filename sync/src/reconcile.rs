//! One reconciliation: the Setting's list into each policy, and what came of it reported on the
//! Setting (its `configured` condition), in Events, in the metrics and in the logs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hook_sidecar_policy::cut;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Result;
use crate::config::Args;
use crate::events::{EventPublisher, RefusalReport, list_digest};
use crate::http::Monitoring;
use crate::metrics::Outcome;
use crate::policy::{ALLOWED_IMAGES, Plan, Refusal, plan, settings_with};
use crate::resources::{ClusterAdmissionPolicy, Setting};
use crate::setting::allowed_images;
use crate::size_bound::{self, Write};
use crate::status::{self, Condition, Report};

/// The longest policy message a log line carries (it quotes the offending entry, which the
/// Setting does not bound).
const MAX_REASON_IN_LOG: usize = 512;

pub struct Context {
    pub args: Args,
    pub monitoring: Arc<Monitoring>,
    client: Client,
    events: EventPublisher,
    settings: Api<Setting>,
    policies: Api<ClusterAdmissionPolicy>,
}

impl Context {
    pub fn new(client: Client, args: Args, monitoring: Arc<Monitoring>) -> Self {
        let events = EventPublisher::new(
            client.clone(),
            &args.field_manager,
            std::env::var("POD_NAME").ok(),
        );
        Self {
            settings: Api::all(client.clone()),
            policies: Api::all(client.clone()),
            client,
            args,
            monitoring,
            events,
        }
    }
}

impl Context {
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// The watched objects, as the watches last delivered them.
pub struct Stores<'a> {
    pub setting: &'a Store<Setting>,
    /// By policy name, in the order of `--policy-name`.
    pub policies: &'a [(String, Store<ClusterAdmissionPolicy>)],
}

/// What the job remembers between reconciliations.
#[derive(Default)]
pub struct State {
    /// The list of the Setting's `default` and `value` last read: computed once per change.
    list: Option<SettingList>,
    /// The Event last published per policy: one per distinct refusal.
    reported: HashMap<String, String>,
    /// The job's writes of a policy that its watch has not delivered yet: the store is older
    /// than the API server until then, and planning against it would write again.
    own_writes: HashMap<String, Arc<ClusterAdmissionPolicy>>,
    /// Policies reported missing, so that the log says it once.
    missing_policies: HashSet<String>,
    /// The Setting's resourceVersion after the job's last write of its condition.
    own_setting_version: Option<String>,
    /// The last condition write met a conflict: the next change of the Setting is reconciled,
    /// even the job's own write coming back (its feature-gate condition, an earlier condition).
    condition_unwritten: bool,
    setting_seen: bool,
    setting_gone_since: Option<Instant>,
    /// The list every policy held after the last reconciliation that got that far (in
    /// `--mirror-allowed-images=false` mode: the Setting's list): what a re-created Setting keeps.
    last_enforced: Option<Arc<Vec<String>>>,
}

struct SettingList {
    default: Option<String>,
    value: Option<String>,
    entries: Arc<Vec<String>>,
}

impl State {
    /// The watch delivered `policy` at `resource_version`: the store has caught up with the
    /// job's write when that is the version the write returned. Returns whether it was that
    /// write coming back, which needs no reconciliation.
    pub fn policy_seen(&mut self, policy: &str, resource_version: Option<&str>) -> bool {
        let own_write = self.own_writes.get(policy).is_some_and(|written| {
            written.metadata.resource_version.as_deref() == resource_version
        });
        if own_write {
            self.own_writes.remove(policy);
        }
        own_write
    }

    /// Whether the Setting's watch delivered the version the job's own condition write made:
    /// nothing but the condition changed, which needs no reconciliation.
    pub fn own_setting_write(&mut self, resource_version: Option<&str>) -> bool {
        let own_write = !self.condition_unwritten
            && resource_version.is_some()
            && self.own_setting_version.as_deref() == resource_version;
        if own_write {
            self.own_setting_version = None;
        }
        own_write
    }

    /// The policy's store was listed anew, or the policy deleted: the store is the truth again.
    pub fn policy_relisted(&mut self, policy: &str) {
        self.own_writes.remove(policy);
    }

    /// The entries of `setting`, computed off the async thread when `default` or `value` changed
    /// (a Setting of a megabyte takes tens of milliseconds; the health endpoints keep answering).
    async fn entries(&mut self, setting: &Setting, args: &Args) -> Result<Arc<Vec<String>>> {
        if let Some(list) = &self.list
            && list.default == setting.default
            && list.value == setting.value
        {
            return Ok(list.entries.clone());
        }
        let (default, value, mode) = (
            setting.default.clone(),
            setting.value.clone(),
            args.list_mode,
        );
        let (default, value, entries) = tokio::task::spawn_blocking(move || {
            let setting = Setting {
                default,
                value,
                ..Setting::default()
            };
            let entries = Arc::new(allowed_images(&setting, mode));
            (setting.default, setting.value, entries)
        })
        .await?;
        self.list = Some(SettingList {
            default,
            value,
            entries: entries.clone(),
        });
        Ok(entries)
    }
}

/// What one policy holds after a reconciliation.
enum PolicyResult {
    Holds,
    Refused(Refusal),
    Missing,
}

/// Reconciles once. Returns when to run again without a change (the end of the grace period of
/// a deleted Setting), if ever.
pub async fn reconcile(
    ctx: &Context,
    state: &mut State,
    stores: &Stores<'_>,
) -> Result<Option<Instant>> {
    let Some(setting) = stores.setting.get(&ObjectRef::new(&ctx.args.setting_name)) else {
        return setting_missing(ctx, state, stores).await;
    };
    state.setting_seen = true;
    state.setting_gone_since = None;
    let entries = state.entries(&setting, &ctx.args).await?;
    if !ctx.args.mirror_allowed_images {
        state.last_enforced = Some(entries);
        return Ok(None);
    }

    // Each policy's plan first, then the size of the PolicyServers' ConfigMaps with every write
    // planned, then the writes: a list is refused for all the policies whose PolicyServer could
    // not store it.
    let mut steps = Vec::with_capacity(stores.policies.len());
    let mut first_error = None;
    for (name, store) in stores.policies {
        let started = std::time::Instant::now();
        match plan_policy(ctx, state, &entries, name, store).await {
            Ok(step) => steps.push((name.as_str(), started, step)),
            Err(error) => {
                ctx.monitoring
                    .metrics
                    .observe_reconciliation(Outcome::Error, started.elapsed().as_secs_f64());
                warn!(policy = %name, %error, "cannot reconcile the policy");
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let writes: Vec<Write<'_>> = steps
        .iter()
        .filter_map(|(name, _, step)| match step {
            Step::Planned(policy, Plan::Apply) => Some(Write {
                policy: name,
                policy_server: policy.spec.policy_server.as_deref(),
                settings: settings_with(&policy.spec.settings, &entries)?,
            }),
            _ => None,
        })
        .collect();
    let over_bound = if writes.is_empty() {
        HashMap::new()
    } else {
        size_bound::check(&ctx.client, &writes, entries.len()).await?
    };
    drop(writes);

    let mut results = Vec::with_capacity(steps.len());
    let mut wake_at = None;
    for (name, started, step) in steps {
        let over = over_bound.get(name);
        if over.is_some_and(|refusal| refusal.kind.depends_on_other_policies()) {
            // Another policy of the PolicyServer may shrink, or the RBAC be fixed: look again.
            wake_at = Some(Instant::now() + RECHECK_SHARED_BOUND);
        }
        let result = finish_policy(ctx, state, &setting, &entries, name, step, over).await;
        let outcome = match &result {
            Ok((_, outcome)) => *outcome,
            Err(_) => Outcome::Error,
        };
        ctx.monitoring
            .metrics
            .observe_reconciliation(outcome, started.elapsed().as_secs_f64());
        match result {
            Ok((held, _)) => results.push((name, held)),
            Err(error) => {
                warn!(policy = %name, %error, "cannot reconcile the policy");
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    if results
        .iter()
        .all(|(_, held)| matches!(held, PolicyResult::Holds))
    {
        state.last_enforced = Some(entries.clone());
    }
    let condition = condition(&ctx.args, &entries, &results);
    match status::report(&ctx.settings, &setting, &condition, &ctx.args.field_manager).await? {
        Report::Written(version) => {
            state.own_setting_version = Some(version);
            state.condition_unwritten = false;
        }
        Report::Unchanged => state.condition_unwritten = false,
        Report::Conflict => state.condition_unwritten = true,
    }
    Ok(wake_at)
}

/// How long a list refused for the PolicyServer's ConfigMap waits before it is looked at again
/// without a change of the Setting or of the policy: the other policies on the PolicyServer are
/// not watched.
const RECHECK_SHARED_BOUND: Duration = Duration::from_secs(60);

/// One policy after planning: missing, or its current object and the plan against it.
enum Step {
    Missing,
    Planned(Arc<ClusterAdmissionPolicy>, Plan),
}

async fn plan_policy(
    ctx: &Context,
    state: &mut State,
    entries: &Arc<Vec<String>>,
    name: &str,
    store: &Store<ClusterAdmissionPolicy>,
) -> Result<Step> {
    let known = state.own_writes.get(name).cloned();
    let Some(policy) = known.or_else(|| store.get(&ObjectRef::new(name))) else {
        return Ok(Step::Missing);
    };
    let (current, desired, max_bytes) =
        (policy.clone(), entries.clone(), ctx.args.max_settings_bytes);
    let decision =
        tokio::task::spawn_blocking(move || plan(&current.spec.settings, &desired, max_bytes))
            .await?;
    Ok(Step::Planned(policy, decision))
}

async fn finish_policy(
    ctx: &Context,
    state: &mut State,
    setting: &Setting,
    entries: &Arc<Vec<String>>,
    name: &str,
    step: Step,
    over_bound: Option<&Refusal>,
) -> Result<(PolicyResult, Outcome)> {
    let metrics = &ctx.monitoring.metrics;
    let (policy, decision) = match step {
        Step::Missing => {
            if state.missing_policies.insert(name.to_owned()) {
                warn!(policy = %name, "ClusterAdmissionPolicy not found; waiting for it");
            }
            metrics.policy_state(name, false, 0);
            return Ok((PolicyResult::Missing, Outcome::PolicyMissing));
        }
        Step::Planned(policy, decision) => (policy, decision),
    };
    state.missing_policies.remove(name);
    let decision = match (decision, over_bound) {
        (Plan::Apply, Some(refusal)) => Plan::Refused(Refusal {
            kind: refusal.kind,
            reason: refusal.reason.clone(),
        }),
        (decision, _) => decision,
    };
    let outcome = match decision {
        Plan::Unchanged => {
            debug!(policy = %name, entries = entries.len(), "allowedImages already up to date");
            Outcome::Unchanged
        }
        Plan::Apply => {
            let written = apply(ctx, name, entries).await?;
            if written.metadata.resource_version == policy.metadata.resource_version {
                debug!(policy = %name, "apply was a no-op: the policy held the list already");
                Outcome::Unchanged
            } else {
                info!(policy = %name, setting = %ctx.args.setting_name, entries = entries.len(), list = %list_digest(entries), "allowedImages updated");
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                metrics.last_applied_timestamp.set(now.as_secs_f64());
                state.own_writes.insert(name.to_owned(), Arc::new(written));
                Outcome::Applied
            }
        }
        Plan::Refused(refusal) => {
            refused(ctx, state, setting, name, &refusal, entries).await;
            let held = policy.spec.settings[ALLOWED_IMAGES]
                .as_array()
                .map_or(0, Vec::len);
            metrics.policy_state(name, false, held);
            return Ok((PolicyResult::Refused(refusal), Outcome::Refused));
        }
    };
    state.reported.remove(name);
    metrics.policy_state(name, true, entries.len());
    Ok((PolicyResult::Holds, outcome))
}

/// Server-side apply of `spec.settings.allowedImages` alone: the other settings keys and spec
/// fields belong to other managers and are left as they are. Forced, because the Setting is the
/// source of truth for this one field. Returns the policy as written.
async fn apply(ctx: &Context, name: &str, entries: &[String]) -> Result<ClusterAdmissionPolicy> {
    let patch = json!({
        "apiVersion": ClusterAdmissionPolicy::api_version(&()),
        "kind": ClusterAdmissionPolicy::kind(&()),
        "metadata": { "name": name },
        "spec": { "settings": { ALLOWED_IMAGES: entries } },
    });
    let params = PatchParams::apply(&ctx.args.field_manager).force();
    ctx.monitoring.metrics.apply_requests.inc();
    Ok(ctx
        .policies
        .patch(name, &params, &Patch::Apply(&patch))
        .await?)
}

/// Reports a refusal once per distinct list and reason: a log line, the metrics and a Warning
/// Event on the Setting. The policy keeps its current list.
async fn refused(
    ctx: &Context,
    state: &mut State,
    setting: &Setting,
    policy: &str,
    refusal: &Refusal,
    entries: &[String],
) {
    let report = RefusalReport {
        setting: &ctx.args.setting_name,
        policy,
        refusal,
        list: entries,
    };
    let event_name = report.event_name();
    if state.reported.get(policy) == Some(&event_name) {
        return;
    }
    ctx.monitoring.metrics.refused_lists.inc();
    warn!(
        setting = %ctx.args.setting_name,
        %policy,
        reason = refusal.kind.as_str(),
        message = %cut(&refusal.reason, MAX_REASON_IN_LOG),
        list = %list_digest(entries),
        entries = entries.len(),
        "list refused, not applied"
    );
    match ctx.events.refused(setting.object_ref(&()), &report).await {
        Ok(true) => {}
        Ok(false) => debug!(event = %event_name, "this refusal was reported before"),
        Err(error) => warn!(%error, "cannot publish the Event for the refused list"),
    }
    state.reported.insert(policy.to_owned(), event_name);
}

/// The Setting's `configured` condition for the policies' results.
fn condition(args: &Args, entries: &[String], results: &[(&str, PolicyResult)]) -> Condition {
    let mut problems = results.iter().filter_map(|(policy, result)| match result {
        PolicyResult::Holds => None,
        PolicyResult::Missing => Some((
            "PolicyNotFound",
            format!("ClusterAdmissionPolicy {policy} not found"),
        )),
        PolicyResult::Refused(refusal) => Some((
            refusal.kind.as_str(),
            format!("ClusterAdmissionPolicy {policy}: {}", refusal.reason),
        )),
    });
    match problems.next() {
        None => {
            let policies: Vec<&str> = results.iter().map(|(policy, _)| *policy).collect();
            Condition::new(
                true,
                "Applied",
                &format!(
                    "{} entries ({} of default and value, list {}) in allowedImages of ClusterAdmissionPolicy {}",
                    entries.len(),
                    args.list_mode,
                    list_digest(entries),
                    policies.join(", ")
                ),
            )
        }
        Some((reason, first)) => {
            let message = std::iter::once(first)
                .chain(problems.map(|(_, message)| message))
                .collect::<Vec<_>>()
                .join("; ");
            Condition::new(false, reason, &message)
        }
    }
}

/// The Setting is not there. At start it is created at once; after the job saw it deleted, only
/// once the grace period is over, so that an administrator re-creating it is not beaten to it.
/// The new Setting has `--default-sidecars` as `default` and the list the policies last held as
/// `value`: deleting the Setting does not take sidecars away from running VMs.
async fn setting_missing(
    ctx: &Context,
    state: &mut State,
    stores: &Stores<'_>,
) -> Result<Option<Instant>> {
    if state.setting_seen {
        let now = Instant::now();
        let grace = Duration::from_secs(ctx.args.recreate_grace_seconds);
        let gone = *state.setting_gone_since.get_or_insert_with(|| {
            info!(setting = %ctx.args.setting_name, grace_seconds = grace.as_secs(), "Setting deleted; the policies keep their list, and the Setting is created again with it after the grace period unless someone creates it first");
            now
        });
        if now < gone + grace {
            ctx.monitoring
                .metrics
                .observe_reconciliation(Outcome::SettingMissing, 0.0);
            return Ok(Some(gone + grace));
        }
    }
    let kept = state
        .last_enforced
        .clone()
        .or_else(|| held_by_policies(stores));
    let value = kept
        .as_deref()
        .map(|entries| entries.join(","))
        .unwrap_or_default();
    let setting = Setting::new(&ctx.args.setting_name, &ctx.args.default_sidecars, &value);
    let params = PostParams {
        field_manager: Some(ctx.args.field_manager.clone()),
        ..PostParams::default()
    };
    match ctx.settings.create(&params, &setting).await {
        Ok(_) => {
            info!(
                setting = %ctx.args.setting_name,
                default_entries = ctx.args.default_sidecars.split(',').filter(|item| !item.trim().is_empty()).count(),
                value_entries = kept.as_deref().map_or(0, Vec::len),
                "Setting was missing; created it"
            );
            ctx.monitoring
                .metrics
                .observe_reconciliation(Outcome::SettingCreated, 0.0);
            Ok(None)
        }
        // It appeared meanwhile; its watch event brings the next reconciliation.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(error) => {
            ctx.monitoring
                .metrics
                .observe_reconciliation(Outcome::Error, 0.0);
            Err(error.into())
        }
    }
}

/// The list of the first policy that has one (a job started while the Setting was missing).
fn held_by_policies(stores: &Stores<'_>) -> Option<Arc<Vec<String>>> {
    stores.policies.iter().find_map(|(name, store)| {
        let policy = store.get(&ObjectRef::new(name))?;
        let list = policy.spec.settings.get(ALLOWED_IMAGES)?.as_array()?;
        let entries: Vec<String> = list
            .iter()
            .filter_map(|entry| entry.as_str().map(str::to_owned))
            .collect();
        (!entries.is_empty()).then(|| Arc::new(entries))
    })
}
