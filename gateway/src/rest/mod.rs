//! REST/JSON transcoding: an HTTP binding's path, query and JSON body become one request
//! message (through the route's typed [`Transcoder`](crate::Transcoder)), which goes upstream
//! as a MessagePack gRPC call on the same pool as the passthrough; the reply comes back as
//! JSON, or as NDJSON (one object per line, written as each message arrives) for server
//! streaming.
//!
//! By concern: [`matching`] finds the route, [`request`] builds the request message,
//! [`response`] writes the answer, [`error`] is what a failure looks like.

mod error;
mod matching;
mod request;
mod response;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use tonic::Code;

use crate::GatewayState;
use error::RestError;
pub use matching::BindingError;
pub(crate) use matching::{Matched, RestRoutes};
use request::{build_message, transcode_request, upstream_request};
use response::{stream_response, unary_response};

/// Serves one matched REST request. Every failure is a JSON error response.
pub(crate) async fn serve(
    state: Arc<GatewayState>,
    matched: Matched,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let Some(target) = state.targets.get(matched.route) else {
        return RestError::new(Code::Internal, "route index out of range").into_response();
    };
    let metrics = target.metrics.clone();
    match call(&state, matched, req, start).await {
        Ok(response) => response,
        Err(err) => {
            metrics.record(err.code as u16, start.elapsed());
            err.into_response()
        }
    }
}

async fn call(
    state: &Arc<GatewayState>,
    matched: Matched,
    req: Request<Incoming>,
    start: Instant,
) -> Result<Response<Body>, RestError> {
    let route = state
        .routes
        .routes()
        .get(matched.route)
        .ok_or_else(|| RestError::new(Code::Internal, "route index out of range"))?;
    if route.kind.client_streaming() {
        return Err(RestError::new(
            Code::Unimplemented,
            format!(
                "{} is a {} method; REST/JSON serves only unary and server-streaming methods (use gRPC or gRPC-Web)",
                route.path,
                route.kind.as_str().replace('_', "-")
            ),
        ));
    }
    let Some(transcoder) = route.transcoder.clone() else {
        return Err(RestError::new(
            Code::Unimplemented,
            format!(
                "route {} has no REST transcoder; generate the routes with typed transcoders to call it as REST/JSON",
                route.path
            ),
        ));
    };
    let (parts, body) = req.into_parts();
    let (message, coerced) = build_message(
        &state.config.rest,
        &route.path,
        &matched,
        parts.uri.query(),
        body,
    )
    .await?;
    let msgpack = transcode_request(
        &transcoder,
        message,
        &coerced,
        state.config.rest.unknown_fields,
    )?;

    let target = state
        .targets
        .get(matched.route)
        .ok_or_else(|| RestError::new(Code::Internal, "route index out of range"))?;
    let Some(upstream) = target.upstream.and_then(|index| state.upstreams.get(index)) else {
        return Err(RestError::new(
            Code::Unavailable,
            format!("no upstream configured for {}", route.path),
        ));
    };
    if msgpack.len() > upstream.max_message_size {
        return Err(RestError::new(
            Code::ResourceExhausted,
            format!(
                "request message larger than the gateway's limit of {} bytes for upstream `{}`",
                upstream.max_message_size, upstream.name
            ),
        ));
    }
    let (request, deadline) = upstream_request(&route.path, &parts.headers, upstream, msgpack)?;
    let call = async {
        let (response, guard) = upstream.send(request).await.map_err(|err| {
            RestError::new(
                Code::Unavailable,
                format!("upstream `{}` unavailable: {err}", upstream.name),
            )
        })?;
        if route.kind.server_streaming() {
            Ok(stream_response(
                response,
                guard,
                transcoder.clone(),
                upstream,
                target.metrics.clone(),
                start,
            ))
        } else {
            let response = unary_response(response, &transcoder, upstream).await?;
            drop(guard);
            target.metrics.record(0, start.elapsed());
            Ok(response)
        }
    };
    match deadline {
        Some(deadline) => tokio::time::timeout(deadline, call)
            .await
            .unwrap_or_else(|_| {
                Err(RestError::new(
                    Code::DeadlineExceeded,
                    format!(
                        "upstream `{}` did not answer before the deadline",
                        upstream.name
                    ),
                ))
            }),
        None => call.await,
    }
}
