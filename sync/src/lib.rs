//! Mirrors Harvester's `whitelisted-sidecars` Setting into the `allowedImages` of the
//! ClusterAdmissionPolicy that runs the hook-sidecar policy.

// Private modules: the crate is a binary's library, and rustc reports what nothing uses.
mod config;
mod error;
mod event_loop;
mod events;
mod feature_gate;
mod http;
mod metrics;
mod policy;
// Public for the API-server tests, which store what it renders in a real ConfigMap.
pub mod policy_server_config;
mod reconcile;
mod resources;
mod schedule;
mod setting;
mod size_bound;
mod status;
mod telemetry;

use std::sync::Arc;

use kube::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::Args;
pub use error::{Error, Result};
pub use telemetry::{LogFormat, init as init_logging};

/// Runs the job until `stop` is cancelled (SIGTERM in `main`).
pub async fn run(args: Args, stop: CancellationToken) -> Result<()> {
    args.validate()?;
    let client = Client::try_default().await?;
    let monitoring = Arc::new(http::Monitoring::default());

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Listen {
            address: args.listen,
            source,
        })?;
    info!(address = %args.listen, "serving /healthz, /readyz and /metrics");
    let server = tokio::spawn(http::serve(
        listener,
        monitoring.clone(),
        stop.clone().cancelled_owned(),
    ));

    let feature_gate = args.feature_gate().map(|gate| {
        tokio::spawn(feature_gate::run(
            client.clone(),
            gate,
            monitoring.clone(),
            stop.clone(),
        ))
    });

    let event_loop = event_loop::run(
        reconcile::Context::new(client, args, monitoring),
        stop.clone(),
    );
    let result = tokio::select! {
        result = event_loop => result,
        error = panicked(feature_gate) => Err(error.into()),
    };
    stop.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "the health and metrics server failed"),
        Err(error) => tracing::error!(%error, "the health and metrics server panicked"),
    }
    result
}

/// Completes only if the task panics (or is aborted): a task that ends normally is done.
async fn panicked(task: Option<tokio::task::JoinHandle<()>>) -> tokio::task::JoinError {
    if let Some(task) = task
        && let Err(error) = task.await
    {
        return error;
    }
    std::future::pending().await
}
