//! The event loop: one watch of the Setting and one of each policy (each by name), and a
//! reconciliation once a burst of their changes has settled.
//!
//! Not a kube-rs `Controller`: a controller reconciles objects that exist, and this job must act
//! when the watched Setting does not (it creates it), and on the changes of two kinds of object
//! that have no owner relation. One loop over merged watches is what that takes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::ExponentialBuilder;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, ExponentialBackoff};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::reconcile::{Context, State, Stores, reconcile};
use crate::resources::{ClusterAdmissionPolicy, Setting};
use crate::schedule::Schedule;
use crate::{Error, Result};

/// Which watch an event comes from: the Setting, or the policy at this index of `--policy-name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    Setting,
    Policy(usize),
}

/// What a watch event means for the loop.
enum Change {
    /// A (re)list is about to be requested (kube-rs's watcher says so before each attempt, even
    /// one that then fails).
    ListStarting,
    /// Part of a (re)list, which the store applies at once when it is done.
    Listing,
    /// A (re)list is done: the store holds the watched object, or knows it is missing.
    Listed,
    /// The object was created or changed; its resourceVersion.
    Applied(Option<String>),
    Deleted,
}

impl Change {
    fn of<K: Resource>(event: &watcher::Event<K>) -> Self {
        match event {
            watcher::Event::Init => Self::ListStarting,
            watcher::Event::InitApply(_) => Self::Listing,
            watcher::Event::InitDone => Self::Listed,
            watcher::Event::Apply(object) => Self::Applied(object.meta().resource_version.clone()),
            watcher::Event::Delete(_) => Self::Deleted,
        }
    }
}

/// Runs until `stop` is cancelled.
pub async fn run(ctx: Context, stop: CancellationToken) -> Result<()> {
    let (setting, setting_events) =
        watch_by_name::<Setting>(&Api::all(ctx.client()), &ctx.args.setting_name);
    let mut watches: Vec<BoxStream<'static, (Watched, Result<Change, watcher::Error>)>> = vec![
        setting_events
            .map(|change| (Watched::Setting, change))
            .boxed(),
    ];
    let mut policies = Vec::new();
    if ctx.args.mirror_allowed_images {
        for (index, name) in ctx.args.policy_names.iter().enumerate() {
            let (store, events) =
                watch_by_name::<ClusterAdmissionPolicy>(&Api::all(ctx.client()), name);
            watches.push(
                events
                    .map(move |change| (Watched::Policy(index), change))
                    .boxed(),
            );
            policies.push((name.clone(), store));
        }
    }
    let stores = Stores {
        setting: &setting,
        policies: &policies,
    };
    let mut events = stream::select_all(watches);
    let mut listed = vec![false; 1 + policies.len()];
    let mut watch_errors = vec![0_u32; 1 + policies.len()];
    let mut state = State::default();
    let mut schedule = Schedule::default();

    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(()),
            event = events.next() => {
                let Some((watched, change)) = event else {
                    return Err(Error::WatchEnded("the Setting or a ClusterAdmissionPolicy"));
                };
                let index = match watched {
                    Watched::Setting => 0,
                    Watched::Policy(index) => index + 1,
                };
                let change = match change {
                    Ok(Change::ListStarting) => continue,
                    Ok(change) => {
                        watch_recovered(watched, &mut watch_errors[index]);
                        change
                    }
                    Err(error) => {
                        ctx.monitoring.metrics.watch_errors.inc();
                        watch_failed(watched, &error, &mut watch_errors[index]);
                        continue;
                    }
                };
                let policy = match watched {
                    Watched::Policy(index) => Some(policies[index].0.as_str()),
                    Watched::Setting => None,
                };
                match change {
                    Change::ListStarting | Change::Listing => continue,
                    Change::Listed => {
                        listed[index] = true;
                        if let Some(policy) = policy {
                            state.policy_relisted(policy);
                        }
                    }
                    // The job's own writes coming back change nothing it has not accounted for.
                    Change::Applied(version) => {
                        let own_write = match policy {
                            Some(policy) => state.policy_seen(policy, version.as_deref()),
                            None => state.own_setting_write(version.as_deref()),
                        };
                        if own_write {
                            continue;
                        }
                    }
                    Change::Deleted => {
                        if let Some(policy) = policy {
                            state.policy_relisted(policy);
                        }
                    }
                }
                schedule.changed(tokio::time::Instant::now());
            },
            () = schedule.wait() => {
                // Until every store holds a full list, a missing object may only not be listed yet.
                if !listed.iter().all(|listed| *listed) {
                    schedule.clear();
                    continue;
                }
                match reconcile(&ctx, &mut state, &stores).await {
                    Ok(wake_at) => {
                        schedule.succeeded(tokio::time::Instant::now(), wake_at);
                        ctx.monitoring.ready.store(true, Ordering::Relaxed);
                    }
                    Err(error) => {
                        let delay = schedule.failed(tokio::time::Instant::now());
                        warn!(%error, retry_in = ?delay, "reconciliation failed");
                    }
                }
            }
        }
    }
}

/// The first failure of a watch after it worked is a warning; the next ones, while the API
/// server stays away, are counted in the metrics and logged at debug level.
fn watch_failed(watched: Watched, error: &watcher::Error, errors_in_a_row: &mut u32) {
    if *errors_in_a_row == 0 {
        if is_forbidden(error) {
            warn!(?watched, %error, "watch forbidden; right after an API server (re)start this is its authorizer before it has loaded the RBAC objects, and passes; if it lasts, the job's RBAC is missing a rule; reconnecting");
        } else {
            warn!(?watched, %error, "watch failed; reconnecting");
        }
    } else {
        debug!(?watched, %error, errors_in_a_row = *errors_in_a_row, "watch failed again; reconnecting");
    }
    *errors_in_a_row += 1;
}

fn watch_recovered(watched: Watched, errors_in_a_row: &mut u32) {
    if *errors_in_a_row > 0 {
        info!(
            ?watched,
            failed_attempts = *errors_in_a_row,
            "watch reconnected"
        );
        *errors_in_a_row = 0;
    }
}

fn is_forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 403,
        watcher::Error::WatchError(status) => status.code == 403,
        _ => false,
    }
}

/// Reconnection delays of the watches: from 250 ms, doubling to 1 s (each with up to as much
/// again of jitter), reset by any event (kube-rs's watcher sends one before each list attempt, so
/// while the API server refuses connections the delay stays at 250-500 ms). kube-rs's default
/// grows to 30 s and resets only after two minutes, which left the job up to a minute behind a
/// restarted API server; two watches retrying a few times a second are no load for one.
fn watch_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(1))
        .with_jitter()
        .without_max_times()
        .into()
}

/// A store of the one object named `name`, and the changes of its watch (which reconnects with
/// [`watch_backoff`] and lists again after a reconnection).
fn watch_by_name<K>(
    api: &Api<K>,
    name: &str,
) -> (
    Store<K>,
    impl Stream<Item = Result<Change, watcher::Error>> + Send + 'static + use<K>,
)
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
    let changes = reflector::reflector(writer, watcher::watcher(api.clone(), config))
        .backoff(watch_backoff())
        .map(|event| event.map(|event| Change::of(&event)));
    (store, changes)
}
