//! Distributed tracing (`[tracing]`): the gateway continues the W3C trace context a client
//! sends (`traceparent`, `tracestate`: gRPC metadata, gRPC-Web and REST headers are all HTTP
//! headers) or starts a trace, records a server span per call and a client span per upstream
//! attempt (a retry is a span of its own), sends the attempt's context upstream in
//! `traceparent`, and exports the spans over OTLP/gRPC.
//!
//! Off (the default, or a build without the `otel` feature), the state holds no [`Tracing`]: a
//! call pays one `Option` test, and no span or context exists. The types keep the same names
//! in a build without the feature, where they cannot be constructed.

#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "otel")]
mod otlp;
#[cfg(feature = "otel")]
pub(crate) use otel::{AttemptSpan, CallTrace, Tracing};

#[cfg(not(feature = "otel"))]
mod off;
#[cfg(not(feature = "otel"))]
pub(crate) use off::{AttemptSpan, CallTrace, Tracing};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::GatewayState;
use crate::access_log::Protocol;
use crate::wire::ClientAddr;

/// The W3C trace context headers (names made once: `HeaderMap::get("…")` parses a name per call).
pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// See [`TRACEPARENT`].
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Tracing's counters for `/metrics`: `(name, help, value)`; zeros without tracing.
pub(crate) fn counters(tracing: Option<&Tracing>) -> [(&'static str, &'static str, u64); 1] {
    [(
        "gateway_trace_spans_dropped_total",
        "Finished spans dropped because the export queue (tracing.max_queue) was full.",
        tracing.map_or(0, Tracing::dropped_spans),
    )]
}

/// Opens the server span of a REST call (named by its HTTP path until [`CallTrace::rpc`]
/// names the RPC) and puts it in the request's extensions for the REST handler and the pool.
// Without `otel` no span exists: what follows the first line cannot run.
#[cfg_attr(not(feature = "otel"), allow(unreachable_code, unused_variables))]
pub(crate) fn start_rest<B>(state: &GatewayState, req: &mut Request<B>) -> Option<TracedCall> {
    let tracing = state.tracing.as_ref()?;
    let peer = req
        .extensions()
        .get::<ClientAddr>()
        .map(|ClientAddr(addr)| *addr);
    let trace = tracing.server(req.headers(), Protocol::Rest, req.uri().path(), peer);
    req.extensions_mut().insert(trace.clone());
    // The request body's size as sent (REST bodies are read whole later).
    let bytes_in = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    Some(TracedCall { trace, bytes_in })
}

/// A REST call's server span between [`start_rest`] and [`end_rest`].
#[derive(Debug)]
pub(crate) struct TracedCall {
    trace: CallTrace,
    bytes_in: u64,
}

/// Ends a REST call's spans with its response: at once for a response without a body, else
/// when its body ends or is dropped.
pub(crate) fn end_rest(
    mut response: Response<axum::body::Body>,
    call: Option<TracedCall>,
) -> Response<axum::body::Body> {
    let Some(TracedCall { trace, bytes_in }) = call else {
        return response;
    };
    let attempt = response.extensions_mut().remove::<AttemptSpan>();
    let status = response.status().as_u16();
    response.map(|inner| {
        axum::body::Body::new(TracedBody {
            inner,
            bytes_out: 0,
            end: Some((trace, attempt, status, bytes_in)),
        })
    })
}

/// A traced REST response body: counts the bytes out and ends the spans with it.
struct TracedBody {
    inner: axum::body::Body,
    bytes_out: u64,
    end: Option<(CallTrace, Option<AttemptSpan>, u16, u64)>,
}

impl TracedBody {
    fn end(&mut self) {
        if let Some((trace, attempt, status, bytes_in)) = self.end.take() {
            trace.finish(None, Some(status), (bytes_in, self.bytes_out), attempt);
        }
    }
}

impl Drop for TracedBody {
    fn drop(&mut self) {
        self.end();
    }
}

impl HttpBody for TracedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes_out += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_)) | None) => this.end(),
            Poll::Pending => {}
        }
        if this.inner.is_end_stream() {
            this.end();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
