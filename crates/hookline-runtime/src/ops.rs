//! `/healthz`, `/readyz` and `/metrics`, merged into each service's router.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Readiness;

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    readiness: Readiness,
}

/// The operational routes; services merge their own routes into it.
pub fn router(registry: Registry, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(OpsState {
            registry,
            readiness,
        })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let checks = state.readiness.snapshot();
    let ready = state.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "checks": checks })),
    )
        .into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::encode(&state.registry),
    )
        .into_response()
}

/// Serves `router` until `token` is cancelled, then stops accepting and lets
/// open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    token: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { token.cancelled().await })
    .await
}

/// Binds a listen address, naming the config key when it fails.
pub async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{key}: cannot listen on {addr}: {e}"))
}
