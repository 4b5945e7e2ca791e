//! Mirrors Harvester's `whitelisted-sidecars` Setting into the `allowedImages` of the
//! ClusterAdmissionPolicy that runs the hook-sidecar policy.

pub mod config;
pub mod error;
pub mod feature_gate;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod resources;
pub mod setting;
pub mod sync;
pub mod telemetry;

use std::sync::Arc;

use kube::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::Args;
pub use error::{Error, Result};

/// Runs the job until `stop` is cancelled (SIGTERM in `main`).
pub async fn run(args: Args, stop: CancellationToken) -> Result<()> {
    args.validate()?;
    let client = Client::try_default().await?;
    let health = Arc::new(http::Health::default());

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Listen {
            address: args.listen,
            source,
        })?;
    info!(address = %args.listen, "serving /healthz, /readyz and /metrics");
    let server = tokio::spawn(http::serve(
        listener,
        health.clone(),
        stop.clone().cancelled_owned(),
    ));

    if let Some(gate) = args.feature_gate() {
        tokio::spawn(feature_gate::run(
            client.clone(),
            gate,
            health.clone(),
            stop.clone(),
        ));
    }

    let result = sync::run(sync::Context::new(client, args, health), stop.clone()).await;
    stop.cancel();
    if let Ok(Err(error)) = server.await {
        tracing::warn!(%error, "the health and metrics server failed");
    }
    result
}
