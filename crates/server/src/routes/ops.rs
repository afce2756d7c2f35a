//! Operations: liveness, readiness (the store answers) and Prometheus metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the store (and Redis, when configured) answer within two seconds.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let checks = async { tokio::try_join!(state.store.ping(), state.replay.ping()).map(|_| ()) };
    match tokio::time::timeout(Duration::from_secs(2), checks).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store or replay cache unavailable\n",
            )
                .into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store timed out\n").into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.audit.counts()),
    )
        .into_response()
}
