//! Admin endpoints on the HTTP side: `/healthz`, `/readyz`, `/metrics`, `/routes`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::GatewayState;

/// The admin router.
pub(crate) fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/routes", get(routes))
        .with_state(state)
}

/// A JSON error body for HTTP requests nothing answers.
pub(crate) async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    let body = serde_json::json!({
        "error": { "code": 404, "message": format!("no route for {}", uri.path()) }
    });
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "ok\n",
    )
}

async fn readyz(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    let waiting: Vec<&str> = state
        .upstreams
        .iter()
        .filter(|upstream| {
            !upstream
                .metrics
                .has_connected
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .map(|upstream| upstream.name.as_str())
        .collect();
    if waiting.is_empty() {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            "ready\n".to_owned(),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("not connected yet: {}\n", waiting.join(", ")),
        )
    }
}

async fn metrics(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    let routes = state
        .targets
        .iter()
        .map(|target| &*target.metrics)
        .chain(
            state
                .prefix_targets
                .iter()
                .map(|(_, target)| &*target.metrics),
        )
        .chain(std::iter::once(&state.unmatched));
    let upstreams = state.upstreams.iter().map(|upstream| &*upstream.metrics);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::metrics::render(routes, upstreams),
    )
}

async fn routes(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    let routes: Vec<serde_json::Value> = state
        .routes
        .routes()
        .iter()
        .zip(&state.targets)
        .map(|(route, target)| {
            serde_json::json!({
                "path": route.path,
                "service": route.service,
                "method": route.method,
                "kind": route.kind.as_str(),
                "upstream": target.upstream.map(|index| state.upstreams[index].name.as_str()),
                "http": route.http.as_ref().map(|http| serde_json::json!({
                    "method": http.method,
                    "path": http.path,
                    "body": http.body,
                })),
                "format": route.format.as_str(),
                "transcoder": route.transcoder.is_some(),
            })
        })
        .collect();
    let prefixes: Vec<serde_json::Value> = state
        .prefix_targets
        .iter()
        .map(|(prefix, target)| {
            serde_json::json!({
                "prefix": prefix,
                "upstream": target.upstream.map(|index| state.upstreams[index].name.as_str()),
            })
        })
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "routes": routes, "prefixes": prefixes }).to_string(),
    )
}
