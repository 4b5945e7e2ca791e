//! The sync loop: two watches (the Setting and the ClusterAdmissionPolicy, each by name), one
//! reconciliation after any change of either, retries with backoff after a failed one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{stream, Stream, StreamExt};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Args;
use crate::http::Health;
use crate::metrics::Outcome;
use crate::policy::{plan, Plan, ALLOWED_IMAGES};
use crate::resources::{ClusterAdmissionPolicy, Setting};
use crate::setting::allowed_images;
use crate::{Error, Result};
use hook_sidecar_policy::harvester_setting::ListMode;

/// Kubernetes caps an event's note at 1 kB.
const MAX_EVENT_NOTE: usize = 1024;

pub struct Context {
    pub args: Args,
    pub health: Arc<Health>,
    recorder: Recorder,
    settings: Api<Setting>,
    policies: Api<ClusterAdmissionPolicy>,
}

impl Context {
    pub fn new(client: Client, args: Args, health: Arc<Health>) -> Self {
        let reporter = Reporter {
            controller: args.field_manager.clone(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            settings: Api::all(client.clone()),
            policies: Api::all(client),
            args,
            health,
            recorder,
        }
    }
}

/// What the loop remembers between reconciliations.
#[derive(Default)]
struct State {
    /// The last list reported as refused, so that one bad edit gives one Event, not one per
    /// unrelated change of the policy.
    refused: Option<Vec<String>>,
    policy_missing_reported: bool,
}

#[derive(Clone, Copy, Debug)]
enum Watched {
    Setting,
    Policy,
}

/// What a watch event means for the loop.
enum Change {
    /// Part of a (re)list, which the store applies at once when it is done.
    Listing,
    /// A (re)list is done: the store holds the watched object, or knows it is missing.
    Listed,
    /// The object was changed or deleted.
    Changed,
}

impl Change {
    fn of<K>(event: &watcher::Event<K>) -> Self {
        match event {
            watcher::Event::Init | watcher::Event::InitApply(_) => Self::Listing,
            watcher::Event::InitDone => Self::Listed,
            watcher::Event::Apply(_) | watcher::Event::Delete(_) => Self::Changed,
        }
    }
}

/// Runs until `stop` is cancelled.
pub async fn run(ctx: Context, stop: CancellationToken) -> Result<()> {
    let (settings, setting_events) = watch_by_name(&ctx.settings, &ctx.args.setting_name);
    let (policies, policy_events) = watch_by_name(&ctx.policies, &ctx.args.policy_name);
    let setting_events = setting_events.map(|change| (Watched::Setting, change));
    let policy_events = policy_events.map(|change| (Watched::Policy, change));
    let mut events = std::pin::pin!(stream::select(setting_events, policy_events));

    let mut state = State::default();
    let (mut setting_listed, mut policy_listed) = (false, false);
    let mut retry_at: Option<tokio::time::Instant> = None;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times();
    let mut delays = backoff.build();

    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            event = events.next() => match event {
                None => return Err(Error::WatchEnded("the Setting or the ClusterAdmissionPolicy")),
                Some((watched, Err(error))) => {
                    ctx.health.metrics.watch_errors.inc();
                    warn!(?watched, %error, "watch failed; reconnecting with backoff");
                    continue;
                }
                // The objects of a (re)list are seen at once, when it is done.
                Some((_, Ok(Change::Listing))) => continue,
                Some((Watched::Setting, Ok(Change::Listed))) => setting_listed = true,
                Some((Watched::Policy, Ok(Change::Listed))) => policy_listed = true,
                Some((_, Ok(Change::Changed))) => {}
            },
            () = retry => retry_at = None,
        }
        // Until both stores hold a full list, a missing object may only not be listed yet.
        if !(setting_listed && policy_listed) {
            continue;
        }
        match reconcile_and_observe(&ctx, &mut state, &settings, &policies).await {
            Ok(()) => {
                retry_at = None;
                delays = backoff.build();
            }
            Err(error) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                warn!(%error, retry_in = ?delay, "reconciliation failed");
                retry_at = Some(tokio::time::Instant::now() + delay);
            }
        }
        ctx.health.ready.store(true, Ordering::Relaxed);
    }
}

/// A store of the one object named `name`, and the changes of its watch (which
/// reconnects with kube-rs's default backoff and lists again after a reconnection).
fn watch_by_name<K>(
    api: &Api<K>,
    name: &str,
) -> (Store<K>, impl Stream<Item = Result<Change, watcher::Error>>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let changes = reflector::reflector(writer, watcher(api.clone(), config))
        .default_backoff()
        .map(|event| event.map(|event| Change::of(&event)));
    (store, changes)
}

async fn reconcile_and_observe(
    ctx: &Context,
    state: &mut State,
    settings: &Store<Setting>,
    policies: &Store<ClusterAdmissionPolicy>,
) -> Result<()> {
    let started = Instant::now();
    let result = reconcile(ctx, state, settings, policies).await;
    let outcome = match &result {
        Ok(outcome) => *outcome,
        Err(_) => Outcome::Error,
    };
    ctx.health
        .metrics
        .observe_reconciliation(outcome, started.elapsed().as_secs_f64());
    result.map(|_| ())
}

async fn reconcile(
    ctx: &Context,
    state: &mut State,
    settings: &Store<Setting>,
    policies: &Store<ClusterAdmissionPolicy>,
) -> Result<Outcome> {
    let Some(setting) = settings.get(&ObjectRef::new(&ctx.args.setting_name)) else {
        create_setting(ctx).await?;
        return Ok(Outcome::SettingCreated);
    };
    let desired = allowed_images(&setting, ListMode::Union);
    let Some(policy) = policies.get(&ObjectRef::new(&ctx.args.policy_name)) else {
        if !state.policy_missing_reported {
            warn!(policy = %ctx.args.policy_name, "ClusterAdmissionPolicy not found; waiting for it");
            state.policy_missing_reported = true;
        }
        return Ok(Outcome::PolicyMissing);
    };
    state.policy_missing_reported = false;

    match plan(&policy.spec.settings, &desired) {
        Plan::Unchanged => {
            debug!(policy = %ctx.args.policy_name, entries = desired.len(), "allowedImages already up to date");
            accepted(ctx, state, &desired);
            Ok(Outcome::Unchanged)
        }
        Plan::Apply => {
            apply(ctx, &desired).await?;
            info!(
                policy = %ctx.args.policy_name,
                setting = %ctx.args.setting_name,
                entries = desired.len(),
                "allowedImages updated"
            );
            accepted(ctx, state, &desired);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            ctx.health
                .metrics
                .last_applied_timestamp
                .set(now.as_secs_f64());
            Ok(Outcome::Applied)
        }
        Plan::Refused(reason) => {
            refused(ctx, state, &setting, desired, &reason).await;
            Ok(Outcome::Refused)
        }
    }
}

fn accepted(ctx: &Context, state: &mut State, desired: &[String]) {
    state.refused = None;
    ctx.health.metrics.list_accepted.set(1);
    ctx.health
        .metrics
        .allowed_images
        .set(i64::try_from(desired.len()).unwrap_or(i64::MAX));
}

/// Creates the Setting with the default list. An existing Setting is never overwritten: a
/// conflict means it appeared meanwhile, and its watch event brings the next reconciliation.
async fn create_setting(ctx: &Context) -> Result<()> {
    let setting = Setting::with_default(&ctx.args.setting_name, &ctx.args.default_sidecars);
    match ctx
        .settings
        .create(
            &PostParams {
                field_manager: Some(ctx.args.field_manager.clone()),
                ..PostParams::default()
            },
            &setting,
        )
        .await
    {
        Ok(_) => {
            info!(setting = %ctx.args.setting_name, default = %ctx.args.default_sidecars, "Setting was missing; created it with the default list");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Server-side apply of `spec.settings.allowedImages` alone: the other settings keys and spec
/// fields belong to other managers and are left as they are. Forced, because the Setting is the
/// source of truth for this one field.
async fn apply(ctx: &Context, desired: &[String]) -> Result<()> {
    let patch = json!({
        "apiVersion": ClusterAdmissionPolicy::api_version(&()),
        "kind": ClusterAdmissionPolicy::kind(&()),
        "metadata": { "name": ctx.args.policy_name },
        "spec": { "settings": { ALLOWED_IMAGES: desired } },
    });
    let params = PatchParams::apply(&ctx.args.field_manager).force();
    ctx.policies
        .patch(&ctx.args.policy_name, &params, &Patch::Apply(&patch))
        .await?;
    Ok(())
}

/// Reports a list the policy would refuse, once per distinct list: a log line, the metrics and a
/// Warning Event on the Setting. The policy keeps its current list.
async fn refused(
    ctx: &Context,
    state: &mut State,
    setting: &Setting,
    desired: Vec<String>,
    reason: &str,
) {
    ctx.health.metrics.list_accepted.set(0);
    if state.refused.as_ref() == Some(&desired) {
        return;
    }
    ctx.health.metrics.refused_lists.inc();
    let note = format!(
        "Setting {name}: the list from default {default:?} and value {value:?} is refused by the policy ({reason}); \
         ClusterAdmissionPolicy {policy} keeps its current allowedImages",
        name = ctx.args.setting_name,
        default = setting.default.as_deref().unwrap_or(""),
        value = setting.value.as_deref().unwrap_or(""),
        policy = ctx.args.policy_name,
    );
    warn!(setting = %ctx.args.setting_name, policy = %ctx.args.policy_name, %reason, "list refused, not applied");
    let event = KubeEvent {
        type_: EventType::Warning,
        reason: "InvalidSidecarList".into(),
        note: Some(truncate(note, MAX_EVENT_NOTE)),
        action: "SyncAllowedImages".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &setting.object_ref(&())).await {
        warn!(%error, "cannot publish the Event for the refused list");
    }
    state.refused = Some(desired);
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_a_char_boundary() {
        assert_eq!(truncate("short".into(), 1024), "short");
        let long = "é".repeat(600); // 1200 bytes
        let cut = truncate(long, 1024);
        assert!(
            cut.len() <= 1024 && cut.ends_with('…'),
            "{} bytes",
            cut.len()
        );
    }
}
