//! Raw gRPC passthrough: requests and responses stream through without being decoded.
//!
//! The only thing read from the bytes are the 5-byte gRPC frame headers, to enforce the
//! maximum message size. Every failure becomes a gRPC status (a trailers-only response, or
//! trailers after a started response), never a transport error.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tonic::{Code, Status};

use super::GatewayState;
use super::body::GatewayBody;
use super::metrics::RouteMetrics;
use super::pool::{CallGuard, SendError, Upstream, parse_grpc_timeout};

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
];

/// A request body on its way upstream: straight from the client connection, or built by the
/// gateway (REST) or translated (gRPC-Web).
pub(crate) enum RequestBody {
    /// A gRPC client's body.
    Incoming(Incoming),
    /// Any other body.
    Boxed(tonic::body::Body),
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            RequestBody::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            RequestBody::Boxed(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Incoming(body) => body.is_end_stream(),
            RequestBody::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Incoming(body) => body.size_hint(),
            // tonic-web passes the client's size on while `-text` decoding shrinks the body,
            // and hyper would send that as `content-length`: no hint for built bodies.
            RequestBody::Boxed(_) => SizeHint::default(),
        }
    }
}

/// Forwards one gRPC call to its upstream.
pub(crate) async fn forward(
    state: Arc<GatewayState>,
    mut req: Request<RequestBody>,
) -> Response<GatewayBody> {
    let start = Instant::now();
    let Some(target) = state.target(req.uri().path()) else {
        let status =
            Status::unimplemented(format!("no route for {} on this gateway", req.uri().path()));
        state
            .unmatched
            .record(Code::Unimplemented as u16, start.elapsed());
        return status.into_http();
    };
    let metrics = target.metrics.clone();
    let Some(upstream) = target.upstream.and_then(|index| state.upstreams.get(index)) else {
        metrics.record(Code::Unavailable as u16, start.elapsed());
        return Status::unavailable(format!("no upstream configured for {}", req.uri().path()))
            .into_http();
    };

    let headers = req.headers_mut();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(te) = headers.get(header::TE)
        && te.as_bytes() != b"trailers"
    {
        headers.insert(header::TE, http::HeaderValue::from_static("trailers"));
    }
    if let Some(default) = &upstream.default_timeout
        && !headers.contains_key(GRPC_TIMEOUT)
    {
        headers.insert(GRPC_TIMEOUT, default.clone());
    }

    let deadline = headers.get(GRPC_TIMEOUT).and_then(parse_grpc_timeout);
    // gRPC-Web may arrive over HTTP/1.1; upstream is always HTTP/2.
    *req.version_mut() = http::Version::HTTP_2;

    let oversized = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| LimitedBody {
        inner: body,
        scanner: FrameScanner::default(),
        max: upstream.max_message_size,
        oversized: oversized.clone(),
    });
    let sent = match deadline {
        Some(deadline) => match tokio::time::timeout(deadline, upstream.send(req)).await {
            Ok(sent) => sent,
            Err(_) => {
                let status = Status::deadline_exceeded(format!(
                    "upstream `{}` did not answer before the deadline",
                    upstream.name
                ));
                metrics.record(status.code() as u16, start.elapsed());
                return status.into_http();
            }
        },
        None => upstream.send(req).await,
    };
    match sent {
        Ok((response, guard)) => {
            let header_code = response
                .headers()
                .get(GRPC_STATUS)
                .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
                .and_then(|value| value.parse::<u16>().ok());
            response.map(|body| {
                GatewayBody::Proxy(ProxyBody {
                    inner: Some(body),
                    scanner: FrameScanner::default(),
                    max: upstream.max_message_size,
                    oversized,
                    pending: None,
                    code: header_code,
                    call: Some(CallRecord {
                        metrics,
                        start,
                        _guard: guard,
                    }),
                })
            })
        }
        Err(err) => {
            let status = if oversized.load(Relaxed) {
                too_large(upstream)
            } else {
                upstream_error(upstream, &err)
            };
            metrics.record(status.code() as u16, start.elapsed());
            status.into_http()
        }
    }
}

fn too_large(upstream: &Upstream) -> Status {
    Status::resource_exhausted(format!(
        "message larger than the gateway's limit of {} bytes for upstream `{}`",
        upstream.max_message_size, upstream.name
    ))
}

fn upstream_error(upstream: &Upstream, err: &SendError) -> Status {
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(err) = source {
        detail.push_str(": ");
        detail.push_str(&err.to_string());
        source = err.source();
    }
    Status::unavailable(format!(
        "upstream `{}` unavailable: {detail}",
        upstream.name
    ))
}

/// Tracks gRPC frame boundaries (1 flag byte + 4 length bytes + payload) across chunks.
#[derive(Debug, Default)]
struct FrameScanner {
    header: [u8; 5],
    header_len: usize,
    remaining: usize,
}

impl FrameScanner {
    /// Scans `data`; on a frame longer than `max`, the offset in `data` where its header starts.
    fn scan(&mut self, data: &[u8], max: usize) -> Result<(), usize> {
        let mut pos = 0;
        while pos < data.len() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() - pos);
                self.remaining -= take;
                pos += take;
                continue;
            }
            let frame_start = pos.saturating_sub(self.header_len);
            let take = (5 - self.header_len).min(data.len() - pos);
            self.header[self.header_len..self.header_len + take]
                .copy_from_slice(&data[pos..pos + take]);
            self.header_len += take;
            pos += take;
            if self.header_len == 5 {
                self.header_len = 0;
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                if len > max {
                    return Err(frame_start);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

/// The client's request body on its way upstream, failing on an oversized message.
pub(crate) struct LimitedBody {
    inner: RequestBody,
    scanner: FrameScanner,
    max: usize,
    oversized: Arc<AtomicBool>,
}

impl LimitedBody {
    /// A body the gateway built itself (its size is already checked).
    pub(crate) fn built(body: tonic::body::Body) -> Self {
        LimitedBody {
            inner: RequestBody::Boxed(body),
            scanner: FrameScanner::default(),
            max: usize::MAX,
            oversized: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && this.scanner.scan(data, this.max).is_err()
                {
                    this.oversized.store(true, Relaxed);
                    return Poll::Ready(Some(Err(Status::resource_exhausted(
                        "request message too large",
                    ))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => Poll::Ready(Some(Err(Status::cancelled(format!(
                "client request body failed: {err}"
            ))))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Records a call's status and latency once, when its response ends or is dropped.
struct CallRecord {
    metrics: Arc<RouteMetrics>,
    start: Instant,
    _guard: CallGuard,
}

/// The upstream's response body on its way to the client.
pub(crate) struct ProxyBody {
    inner: Option<Incoming>,
    scanner: FrameScanner,
    max: usize,
    oversized: Arc<AtomicBool>,
    /// Trailers to send after the data already returned (synthesized status).
    pending: Option<HeaderMap>,
    /// The status seen so far (trailers-only header, trailers, or synthesized).
    code: Option<u16>,
    call: Option<CallRecord>,
}

impl ProxyBody {
    fn finish(&mut self, code: u16) {
        if let Some(call) = self.call.take() {
            call.metrics.record(code, call.start.elapsed());
        }
    }

    fn fail(&mut self, status: &Status) -> HeaderMap {
        self.inner = None;
        let mut trailers = HeaderMap::new();
        // Our own statuses always encode.
        let _ = status.add_header(&mut trailers);
        self.finish(status.code() as u16);
        trailers
    }

    fn max_error(&self) -> Status {
        Status::resource_exhausted(format!(
            "message larger than the gateway's limit of {} bytes",
            self.max
        ))
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // The client went away before the end of the response.
        self.finish(Code::Cancelled as u16);
    }
}

impl HttpBody for ProxyBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(trailers) = this.pending.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(offset) = this.scanner.scan(data, this.max) {
                        let status = this.max_error();
                        let trailers = this.fail(&status);
                        if offset == 0 {
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        this.pending = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(data.slice(..offset)))));
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get(GRPC_STATUS)
                        .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
                        .and_then(|value| value.parse::<u16>().ok());
                    this.code = code.or(this.code);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                let status = if this.oversized.load(Relaxed) {
                    Status::resource_exhausted("request message larger than the gateway's limit")
                } else {
                    Status::unavailable(format!("upstream stream failed: {err}"))
                };
                let trailers = this.fail(&status);
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            None => {
                this.inner = None;
                let code = this.code.unwrap_or(Code::Unknown as u16);
                this.finish(code);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) if self.pending.is_none() => inner.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FrameScanner;

    fn frame(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    #[test]
    fn scanner_follows_frames_across_chunks() {
        let mut data = frame(3);
        data.extend(frame(10));
        data.extend(frame(2));
        for split in 0..data.len() {
            let mut scanner = FrameScanner::default();
            assert_eq!(scanner.scan(&data[..split], 10), Ok(()));
            assert_eq!(scanner.scan(&data[split..], 10), Ok(()));
        }
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.scan(&data, 9), Err(8));
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.scan(&data[..10], 9), Ok(()));
        assert_eq!(scanner.scan(&data[10..], 9), Err(0));
    }
}
