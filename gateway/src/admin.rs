//! Admin endpoints: `/healthz`, `/readyz`, `/metrics`, `/routes`, served on `admin_listen`
//! (and those listed in `public_admin` on the public port too).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::GatewayState;

/// A router with the admin endpoints among `paths` (unknown paths are skipped: the config
/// checks them).
pub(crate) fn router(state: Arc<GatewayState>, paths: &[impl AsRef<str>]) -> Router {
    let mut router = Router::new();
    for path in paths {
        let path = path.as_ref();
        router = match path {
            "/healthz" => router.route(path, get(healthz)),
            "/readyz" => router.route(path, get(readyz)),
            "/metrics" => router.route(path, get(metrics)),
            "/routes" => router.route(path, get(routes)),
            _ => router,
        };
    }
    router.with_state(state)
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

/// The upstreams that keep the gateway from being ready, each with why: not connected yet, or
/// (when `required_for_ready`) no healthy, connected endpoint. Empty when ready.
pub(crate) fn not_ready(state: &GatewayState) -> Vec<String> {
    let mut waiting = Vec::new();
    for upstream in &state.upstreams {
        if !upstream
            .metrics
            .has_connected
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            waiting.push(format!("{} (not connected yet)", upstream.name));
        } else if upstream.required_for_ready && !upstream.has_healthy_endpoint() {
            waiting.push(format!("{} (no healthy endpoint)", upstream.name));
        }
    }
    waiting
}

/// 200 when [`not_ready`] finds nothing; else 503 naming the upstreams and why.
async fn readyz(State(state): State<Arc<GatewayState>>) -> impl IntoResponse {
    let waiting = not_ready(&state);
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
            format!("not ready: {}\n", waiting.join(", ")),
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
        {
            let mut text = super::metrics::render(routes, upstreams, &state.listener);
            super::metrics::render_endpoints(
                &mut text,
                state.upstreams.iter().flat_map(|upstream| {
                    upstream.endpoint_states().into_iter().map(|status| {
                        let name = upstream.name.as_str();
                        (name, status.endpoint, status.state, status.connections_up)
                    })
                }),
            );
            super::metrics::render_counters(
                &mut text,
                state
                    .gate
                    .counters()
                    .into_iter()
                    .map(|(name, value)| (name, super::metrics::gate_help(name), value)),
            );
            super::metrics::render_counters(
                &mut text,
                super::access_log::counters(state.access_log.as_deref()),
            );
            super::metrics::render_counters(
                &mut text,
                super::trace::counters(state.tracing.as_deref()),
            );
            super::metrics::render_gauges(&mut text, super::runtime::allocator_gauges());
            text
        },
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
        {
            let rules: Vec<serde_json::Value> = state
                .gate
                .rules()
                .into_iter()
                .map(|(target, access)| serde_json::json!({ "target": target, "access": access }))
                .collect();
            serde_json::json!({ "routes": routes, "prefixes": prefixes, "auth_rules": rules })
                .to_string()
        },
    )
}
