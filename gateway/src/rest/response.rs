//! The upstream's answer as the REST client sees it: unary → one JSON object; server streaming
//! → NDJSON, one object per line written as each message arrives; response metadata as
//! `grpc-metadata-*` headers (trailers as `grpc-trailer-*`, unary only).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::{BodyExt, Limited};
use tokio::sync::Semaphore;
use tonic::Code;

use super::error::RestError;
use super::offload;
use super::request::BLOCKING_THRESHOLD;
use crate::access_log::Outcome;
use crate::metrics::{RouteMetrics, UpstreamMetrics};
use crate::pool::{Upstream, UpstreamBody};
use crate::transcode::Transcoder;
use crate::wire::{FrameReader, grpc_status};

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const NDJSON: HeaderValue = HeaderValue::from_static("application/x-ndjson");

/// A response with a JSON body.
pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// Upstream response headers that are metadata, as `grpc-metadata-{name}`.
fn copy_metadata(from: &HeaderMap, prefix: &str, to: &mut HeaderMap) {
    for (name, value) in from {
        let name = name.as_str();
        if name.starts_with("grpc-")
            || matches!(
                name,
                "content-type" | "content-length" | "date" | "server" | "te" | "trailer"
            )
        {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(format!("{prefix}{name}").as_bytes()) {
            to.append(name, value.clone());
        }
    }
}

/// A unary answer as JSON; a large message is transcoded on a blocking thread (see
/// [`offload`]).
pub(super) async fn unary_response(
    response: Response<UpstreamBody>,
    transcoder: &Transcoder,
    upstream: &Upstream,
    permits: Arc<Semaphore>,
) -> Result<Response<Body>, RestError> {
    let (parts, body) = response.into_parts();
    if let Some((code, message)) = grpc_status(&parts.headers)
        && code != 0
    {
        return Err(RestError::status(code, message));
    }
    let limit = upstream.max_message_size.saturating_add(5);
    let collected = Limited::new(body, limit).collect().await.map_err(|err| {
        if err.is::<http_body_util::LengthLimitError>() {
            RestError::new(
                Code::ResourceExhausted,
                format!(
                    "response larger than the gateway's limit of {} bytes",
                    upstream.max_message_size
                ),
            )
        } else {
            tracing::warn!(upstream = %upstream.name, "REST response failed: {err}");
            RestError::new(
                Code::Unavailable,
                format!("upstream `{}` failed during the call", upstream.name),
            )
        }
    })?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let (code, message) = grpc_status(&trailers)
        .or_else(|| grpc_status(&parts.headers))
        .unwrap_or((Code::Unknown as i32, "upstream sent no grpc-status".into()));
    if code != 0 {
        return Err(RestError::status(code, message));
    }
    let mut frames = FrameReader::default();
    frames.buf.extend_from_slice(&collected.to_bytes());
    let first = frames
        .next(upstream.max_message_size)
        .map_err(|e| RestError::new(Code::Internal, e.to_string()))?;
    let Some(first) = first else {
        return Err(RestError::new(
            Code::Internal,
            "upstream answered no message to a unary call",
        ));
    };
    if !frames.buf.is_empty() {
        return Err(RestError::new(
            Code::Internal,
            "upstream answered more than one message to a unary call",
        ));
    }
    let to_json = |transcoder: &Transcoder, message: &[u8]| {
        transcoder
            .response_to_json(message)
            .map_err(|err| RestError::new(Code::Internal, err.message()))
    };
    let json = if first.len() < BLOCKING_THRESHOLD {
        to_json(transcoder, &first)?
    } else {
        let transcoder = transcoder.clone();
        offload(permits, move || to_json(&transcoder, &first)).await?
    };
    let mut out = json_response(StatusCode::OK, json);
    copy_metadata(&parts.headers, "grpc-metadata-", out.headers_mut());
    copy_metadata(&trailers, "grpc-trailer-", out.headers_mut());
    Ok(out)
}

pub(super) fn stream_response(
    response: Response<UpstreamBody>,
    transcoder: Transcoder,
    upstream: &Upstream,
    metrics: Arc<RouteMetrics>,
    (start, sent_at): (Instant, Instant),
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    if let Some((code, message)) = grpc_status(&parts.headers)
        && code != 0
    {
        metrics.record(code as u16, start.elapsed());
        upstream.metrics.record(code as u16, sent_at.elapsed());
        return RestError::status(code, message).into_response();
    }
    let outcome = Arc::new(Outcome::default());
    let ndjson = NdjsonBody {
        inner: Some(body),
        frames: FrameReader::default(),
        transcoder,
        max: upstream.max_message_size,
        record: Some((metrics, start)),
        upstream: (upstream.metrics.clone(), sent_at),
        outcome: outcome.clone(),
    };
    let mut out = Response::new(Body::new(ndjson));
    // For the access log: how the stream ended.
    out.extensions_mut().insert(outcome);
    out.headers_mut().insert(header::CONTENT_TYPE, NDJSON);
    copy_metadata(&parts.headers, "grpc-metadata-", out.headers_mut());
    out
}

/// A server-streaming reply as NDJSON: each upstream message is one line, written as soon as
/// it arrives; an error after the first byte is a last line `{"error": {"code", "message"}}`.
struct NdjsonBody {
    inner: Option<UpstreamBody>,
    frames: FrameReader,
    transcoder: Transcoder,
    max: usize,
    record: Option<(Arc<RouteMetrics>, Instant)>,
    /// The upstream's metrics and when the call was sent to it.
    upstream: (Arc<UpstreamMetrics>, Instant),
    outcome: Arc<Outcome>,
}

impl NdjsonBody {
    fn finish(&mut self, code: i32) {
        self.inner = None;
        self.frames.buf.clear();
        if let Some((metrics, start)) = self.record.take() {
            metrics.record(code as u16, start.elapsed());
            let (upstream, sent_at) = &self.upstream;
            upstream.record(code as u16, sent_at.elapsed());
            self.outcome.set(code as u16);
        }
    }

    fn error_line(&mut self, code: i32, message: &str) -> Frame<Bytes> {
        self.finish(code);
        let mut line = serde_json::json!({ "error": { "code": code, "message": message } })
            .to_string()
            .into_bytes();
        line.push(b'\n');
        Frame::data(Bytes::from(line))
    }
}

impl Drop for NdjsonBody {
    fn drop(&mut self) {
        self.finish(Code::Cancelled as i32);
    }
}

impl HttpBody for NdjsonBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match this.frames.next(this.max) {
                Ok(Some(message)) => {
                    return Poll::Ready(Some(Ok(
                        match this.transcoder.response_to_json(&message) {
                            Ok(mut json) => {
                                json.push(b'\n');
                                Frame::data(Bytes::from(json))
                            }
                            Err(err) => this.error_line(Code::Internal as i32, err.message()),
                        },
                    )));
                }
                Ok(None) => {}
                Err(message) => {
                    return Poll::Ready(Some(Ok(
                        this.error_line(Code::Internal as i32, &message.to_string())
                    )));
                }
            }
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(Pin::new(inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.frames.buf.extend_from_slice(&data),
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        match grpc_status(&trailers) {
                            Some((0, _)) if this.frames.buf.is_empty() => {
                                this.finish(0);
                                return Poll::Ready(None);
                            }
                            Some((0, _)) => {
                                return Poll::Ready(Some(Ok(this.error_line(
                                    Code::Internal as i32,
                                    "upstream stream ended inside a message",
                                ))));
                            }
                            Some((code, message)) => {
                                return Poll::Ready(Some(Ok(this.error_line(code, &message))));
                            }
                            None => {
                                return Poll::Ready(Some(Ok(this.error_line(
                                    Code::Unknown as i32,
                                    "upstream sent no grpc-status",
                                ))));
                            }
                        }
                    }
                },
                Some(Err(err)) => {
                    tracing::warn!("REST stream failed: {err}");
                    return Poll::Ready(Some(Ok(this.error_line(
                        Code::Unavailable as i32,
                        "upstream failed during the call",
                    ))));
                }
                None => {
                    return Poll::Ready(Some(Ok(this.error_line(
                        Code::Unknown as i32,
                        "upstream stream ended without a grpc-status",
                    ))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none() && self.frames.buf.is_empty()
    }
}
