//! The operations listener: Prometheus metrics and health probes.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::router::OpsState;

pub const SIGNING_KEYS: &str = "rsp_signing_keys";

pub fn routes() -> Router<OpsState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let now = state.auth.now();
    if let Ok((active, retired)) = state.auth.store().count_published_keys(now).await {
        #[expect(clippy::cast_precision_loss, reason = "key counts are far below 2^52")]
        {
            metrics::gauge!(SIGNING_KEYS, "status" => "active").set(active as f64);
            metrics::gauge!(SIGNING_KEYS, "status" => "retired").set(retired as f64);
        }
    }
    let cache = state.policy.cache_stats();
    metrics::counter!(crate::metrics::DECISION_CACHE_HITS).absolute(cache.hits);
    metrics::counter!(crate::metrics::DECISION_CACHE_MISSES).absolute(cache.misses);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], (state.render_metrics)())
}

/// Ready when not draining and the database answers.
async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    if state.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    match state.auth.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
