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
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::Semaphore;
use tonic::Code;

use crate::GatewayState;
use crate::access_log::{Attempt, Entry, LoggedBody, Outcome, Protocol};
use crate::metrics::RouteMetrics;
use crate::pool::{Answered, SendOptions};
use crate::tls::ClientCert;
use crate::trace::CallTrace;
use crate::wire::ClientAddr;
use error::RestError;
pub use matching::BindingError;
use matching::BodyTarget;
pub(crate) use matching::{Matched, RestRoutes};
use request::{
    MessageInput, RequestBody, check_query_length, deadline, metadata, read_body, request_message,
    upstream_request,
};
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
    let mut req = req;
    let client = req.extensions().get::<ClientAddr>().copied();
    // A traced call's span is named after the RPC it became.
    if let Some(trace) = req.extensions_mut().remove::<CallTrace>() {
        req.extensions_mut()
            .insert(trace.rpc(metrics.shared_label()));
    }
    // The access log's entry, when there is a log, the call is sampled and its route logged.
    let mut entry = state.access_log.as_ref().and_then(|log| {
        let entry = log.begin(
            Protocol::Rest,
            client.map(|ClientAddr(addr)| addr),
            req.headers(),
            req.extensions().get::<CallTrace>(),
        );
        log.route(entry, &metrics)
    });
    if let Some(entry) = entry.as_mut() {
        entry.upstream = target
            .upstream
            .and_then(|index| state.upstreams.get(index))
            .map(|upstream| upstream.metrics.clone());
    }
    // What the body is said to be (read whole later): the request bytes of `/metrics` and the log.
    let request_bytes = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    if let Some(route) = state.routes.routes().get(matched.route) {
        let certificate = req.extensions().get::<ClientCert>().cloned();
        let checked = state.gate.check(
            &route.path,
            req.headers_mut(),
            client.map(|ClientAddr(addr)| addr.ip()),
            certificate
                .as_ref()
                .map(|ClientCert(subject)| subject.as_str()),
        );
        match checked {
            Ok(identity) => {
                if let Some(entry) = entry.as_mut() {
                    entry.identity = identity;
                }
            }
            Err(refused) => {
                metrics.record(refused.code() as u16, start.elapsed());
                let mut response =
                    RestError::new(refused.code(), refused.status().message()).into_response();
                response.headers_mut().extend(refused.http_headers());
                return observed(&state, response, metrics, entry, start, (0, refused.code()));
            }
        }
    }
    match call(&state, matched, req, start).await {
        Ok(response) => observed(
            &state,
            response,
            metrics,
            entry,
            start,
            (request_bytes, Code::Ok),
        ),
        Err(err) => {
            let code = err.code;
            metrics.record(code as u16, start.elapsed());
            let response = err.into_response();
            observed(
                &state,
                response,
                metrics,
                entry,
                start,
                (request_bytes, code),
            )
        }
    }
}

/// Counts the response's bytes for `/metrics` and logs the call once its body is done. A
/// unary reply or an error is complete with `code`; a stream's status comes at its end
/// ([`Outcome`]).
fn observed(
    state: &GatewayState,
    response: Response<Body>,
    metrics: Arc<RouteMetrics>,
    mut entry: Option<Box<Entry>>,
    start: Instant,
    (request_bytes, code): (u64, Code),
) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let outcome = parts.extensions.remove::<Arc<Outcome>>();
    let attempt = parts.extensions.remove::<Attempt>();
    if let Some(entry) = entry.as_mut() {
        entry.http_status = parts.status.as_u16();
        entry.attempt = attempt;
    }
    let code = outcome.is_none().then_some(code as u16);
    let log = state.access_log.clone().zip(entry);
    let body = LoggedBody::new(body, metrics, log, start, request_bytes, code, outcome);
    Response::from_parts(parts, Body::new(body))
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
    let rest = &state.config.rest;
    let query = parts.uri.query();
    check_query_length(query, rest)?;
    let mut metadata = metadata(
        &parts.headers,
        parts.extensions.get::<ClientAddr>(),
        &state.config.limits,
    )?;
    // The listener removed any client-sent value; the verified subject goes upstream even when
    // the identity header is not an `x-*` one.
    if let (Some(tls), Some(ClientCert(subject))) = (&state.tls, parts.extensions.get())
        && let Ok(value) = http::HeaderValue::from_str(subject)
    {
        metadata.insert(tls.identity_header.clone(), value);
    }
    let body = match matched.body {
        BodyTarget::None => RequestBody::default(),
        _ => read_body(body, rest).await?,
    };
    let mut input = MessageInput {
        route: route.path.clone(),
        body: Bytes::new(),
        query: query
            .filter(|_| matched.body != BodyTarget::Whole)
            .map(str::to_owned),
        target: matched.body,
        vars: matched.vars,
    };
    let msgpack = if !input.is_heavy(&body) {
        input.body = body.join();
        request_message(&input, rest, &transcoder)?
    } else {
        let permits = state.rest.parse_permits(rest.parse_concurrency);
        let work_state = state.clone();
        let work_transcoder = transcoder.clone();
        offload(permits, move || {
            input.body = body.join();
            request_message(&input, &work_state.config.rest, &work_transcoder)
        })
        .await?
    };

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
    let deadline = deadline(
        &parts.headers,
        upstream,
        &state.config.limits,
        route.kind.server_streaming(),
    );
    let request = upstream_request(&route.path, metadata, deadline, &msgpack)?;
    let options = SendOptions {
        kind: None,
        logged: state.access_log.is_some(),
        // The pool opens the attempts' client spans under the call's server span.
        trace: parts.extensions.get::<CallTrace>().cloned(),
    };
    drop(msgpack);
    // The upstream's latency (`gateway_upstream_call_duration_seconds`) starts here.
    let sent_at = Instant::now();
    let call = async {
        let answered = upstream.send(request, options).await.map_err(|err| {
            upstream
                .metrics
                .record(Code::Unavailable as u16, sent_at.elapsed());
            // The details (addresses, h2 errors) are for the operator, not the client.
            tracing::warn!(upstream = %upstream.name, route = %route.path, "REST call failed: {err}");
            RestError::new(
                Code::Unavailable,
                format!("upstream `{}` unavailable", upstream.name),
            )
        })?;
        // For the access log: the endpoint that answered, carried to `observed`.
        let Answered {
            response,
            attempt,
            span: attempt_span,
        } = answered;
        let mut response = if route.kind.server_streaming() {
            stream_response(
                response,
                transcoder.clone(),
                upstream,
                target.metrics.clone(),
                (start, sent_at),
            )
        } else {
            let permits = state.rest.parse_permits(rest.parse_concurrency);
            let result = unary_response(response, &transcoder, upstream, permits).await;
            let code = result.as_ref().map_or_else(|err| err.code as u16, |_| 0);
            upstream.metrics.record(code, sent_at.elapsed());
            let response = result?;
            target.metrics.record(0, start.elapsed());
            response
        };
        if let Some(attempt) = attempt {
            response.extensions_mut().insert(attempt);
        }
        if let Some(span) = attempt_span {
            response.extensions_mut().insert(span);
        }
        Ok(response)
    };
    // A stream without a deadline still gets its response headers within
    // `response_header_timeout` (see `Limits`).
    let wait = deadline.or(state.config.limits.response_header_wait());
    match wait {
        Some(wait) => tokio::time::timeout(wait, call).await.unwrap_or_else(|_| {
            upstream
                .metrics
                .record(Code::DeadlineExceeded as u16, sent_at.elapsed());
            let missed = if deadline.is_some() {
                "did not answer before the deadline"
            } else {
                "sent no response headers in time"
            };
            Err(RestError::new(
                Code::DeadlineExceeded,
                format!("upstream `{}` {missed}", upstream.name),
            ))
        }),
        None => call.await,
    }
}

/// Runs heavy JSON work on a blocking thread once a parse permit is free. The permit goes with
/// the work, so a client that gives up does not free it before the work is done.
async fn offload<T: Send + 'static>(
    permits: Arc<Semaphore>,
    work: impl FnOnce() -> Result<T, RestError> + Send + 'static,
) -> Result<T, RestError> {
    let permit = permits
        .acquire_owned()
        .await
        .map_err(|_| RestError::new(Code::Internal, "the gateway is shutting down"))?;
    tokio::task::spawn_blocking(move || {
        crate::runtime::lower_thread_priority();
        let result = work();
        drop(permit);
        result
    })
    .await
    .unwrap_or_else(|err| {
        tracing::error!("REST transcoding task failed: {err}");
        Err(RestError::new(Code::Internal, "transcoding failed"))
    })
}
