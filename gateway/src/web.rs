//! gRPC-Web (tonic-web) in front of the passthrough, and CORS (tower-http) for browsers.

use std::convert::Infallible;
use std::sync::Arc;

use http::{HeaderName, HeaderValue, Method, Request, Response, header};
use hyper::body::Incoming;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::GatewayState;
use super::body::GatewayBody;
use super::config::{ConfigError, CorsConfig};
use super::proxy::{RequestBody, forward};

/// Request headers a gRPC-Web or REST client sends besides CORS-safelisted ones.
const ALLOWED_HEADERS: [&str; 5] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
];

/// Response headers a browser may read: the gRPC status.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Whether a request is gRPC-Web (`application/grpc-web`, `+proto`, `-text`...).
pub(crate) fn is_grpc_web<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"))
}

/// Translates a gRPC-Web call to gRPC, forwards it and translates the answer back.
pub(crate) async fn call(
    state: Arc<GatewayState>,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let inner = tower::service_fn(move |req: Request<tonic::body::Body>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(forward(state, req.map(RequestBody::Boxed)).await) }
    });
    match tonic_web::GrpcWebLayer::new()
        .layer(inner)
        .oneshot(req)
        .await
    {
        Ok(response) => response.map(|body| GatewayBody::Http(axum::body::Body::new(body))),
        Err(never) => match never {},
    }
}

/// The CORS layer of a [`CorsConfig`]; the config is checked first (a builder-made config
/// skips the TOML checks).
pub(crate) fn cors_layer(config: &CorsConfig) -> Result<CorsLayer, ConfigError> {
    config
        .check()
        .map_err(|(key, message)| ConfigError::Invalid {
            path: None,
            key,
            message,
        })?;
    let origin = if config.allowed_origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    let names = |defaults: &[&str], extra: &[String]| -> Vec<HeaderName> {
        defaults
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect()
    };
    Ok(CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(names(&ALLOWED_HEADERS, &config.allowed_headers))
        .expose_headers(names(&EXPOSED_HEADERS, &config.exposed_headers))
        .max_age(config.max_age)
        .allow_credentials(config.allow_credentials))
}
