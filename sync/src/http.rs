//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What the job reports about itself over HTTP (its metrics, and readiness for `/readyz`),
/// written by the sync loop and the feature-gate task, read by the endpoints.
#[derive(Default)]
pub struct Monitoring {
    pub metrics: Metrics,
    /// Set once both watches have listed their object and a reconciliation has succeeded.
    pub ready: AtomicBool,
}

pub fn router(monitoring: Arc<Monitoring>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(monitoring)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    monitoring: Arc<Monitoring>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(monitoring))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(monitoring): State<Arc<Monitoring>>) -> impl IntoResponse {
    if monitoring.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first reconciliation",
        )
    }
}

async fn metrics(State(monitoring): State<Arc<Monitoring>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        monitoring.metrics.encode(),
    )
}
