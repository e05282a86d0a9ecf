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

use bytes::{Bytes, BytesMut};
use http::header;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tonic::{Code, Status};

use super::GatewayState;
use super::body::GatewayBody;
use super::metrics::RouteMetrics;
use super::pool::{CallGuard, SendError, Upstream};
use super::wire::{FrameScanner, GRPC_STATUS, GRPC_TIMEOUT, HOP_BY_HOP, parse_grpc_timeout};

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

/// The upstream's response body on its way to the client (`B`: only tests use another body).
pub(crate) struct ProxyBody<B = Incoming> {
    inner: Option<B>,
    scanner: FrameScanner,
    max: usize,
    oversized: Arc<AtomicBool>,
    /// Trailers to send after the data already returned (synthesized status).
    pending: Option<HeaderMap>,
    /// The status seen so far (trailers-only header, trailers, or synthesized).
    code: Option<u16>,
    call: Option<CallRecord>,
}

impl<B> ProxyBody<B> {
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

impl<B> Drop for ProxyBody<B> {
    fn drop(&mut self) {
        // The client went away before the end of the response.
        self.finish(Code::Cancelled as u16);
    }
}

/// What one upstream frame means for the client.
enum Event {
    /// Data to forward (possibly cut before an oversized message, with the failure pending).
    Data(Bytes),
    /// Trailers to send now (the upstream's, or a failure).
    Trailers(HeaderMap),
    /// The upstream response ended without trailers.
    End,
}

/// Data frames already received from the upstream are joined until the frame reaches this
/// size. h2 copies smaller frames into its write buffer, to go out with the connection's other
/// frames in one write (see `server::Gathered`); a larger frame is written and flushed on its
/// own anyway, so joining further saves no write.
const COALESCE_MAX: usize = 1024;

impl<B> ProxyBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    /// Checks one upstream frame: message sizes, status, failures.
    fn event(&mut self, frame: Option<Result<Frame<Bytes>, B::Error>>) -> Event {
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if let Err(offset) = self.scanner.scan(&data, self.max) {
                        let status = self.max_error();
                        let trailers = self.fail(&status);
                        if offset == 0 {
                            return Event::Trailers(trailers);
                        }
                        self.pending = Some(trailers);
                        return Event::Data(data.slice(..offset));
                    }
                    Event::Data(data)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        let code = trailers
                            .get(GRPC_STATUS)
                            .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
                            .and_then(|value| value.parse::<u16>().ok());
                        self.code = code.or(self.code);
                        // The response ends here: hyper drops the body after the trailers
                        // without polling it again, which would count as CANCELLED.
                        self.finish(self.code.unwrap_or(Code::Unknown as u16));
                        Event::Trailers(trailers)
                    }
                    // Neither data nor trailers: nothing to forward.
                    Err(_) => Event::Data(Bytes::new()),
                },
            },
            Some(Err(err)) => {
                let status = if self.oversized.load(Relaxed) {
                    Status::resource_exhausted("request message larger than the gateway's limit")
                } else {
                    Status::unavailable(format!("upstream stream failed: {err}"))
                };
                Event::Trailers(self.fail(&status))
            }
            None => {
                self.inner = None;
                let code = self.code.unwrap_or(Code::Unknown as u16);
                self.finish(code);
                Event::End
            }
        }
    }

    /// Appends the data frames the upstream has already delivered to `first`, so the client
    /// gets one DATA frame (and one `send_data`) instead of one per upstream frame. Stops as
    /// soon as the upstream has nothing ready (no waiting: a lone message goes out at once),
    /// at trailers, at the end, or at `COALESCE_MAX`; trailers and failures seen on the way
    /// are kept in `pending`, to follow the data.
    fn coalesce(&mut self, first: Bytes, cx: &mut Context<'_>) -> Bytes {
        let mut joined = BytesMut::new();
        while self.pending.is_none() {
            let len = if joined.is_empty() {
                first.len()
            } else {
                joined.len()
            };
            if len >= COALESCE_MAX {
                break;
            }
            let Some(inner) = self.inner.as_mut() else {
                break;
            };
            let Poll::Ready(frame) = Pin::new(inner).poll_frame(cx) else {
                break;
            };
            match self.event(frame) {
                Event::Data(more) => {
                    if joined.is_empty() {
                        joined.reserve(first.len() + more.len());
                        joined.extend_from_slice(&first);
                    }
                    joined.extend_from_slice(&more);
                }
                Event::Trailers(trailers) => self.pending = Some(trailers),
                Event::End => break,
            }
        }
        if joined.is_empty() {
            first
        } else {
            joined.freeze()
        }
    }
}

impl<B> HttpBody for ProxyBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
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
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        match this.event(frame) {
            Event::Data(data) => {
                let data = this.coalesce(data, cx);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Event::Trailers(trailers) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Event::End => Poll::Ready(None),
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
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue};
    use http_body::{Body as HttpBody, Frame};

    use super::ProxyBody;
    use crate::wire::{FrameScanner, GRPC_STATUS};

    fn frame(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    /// One step of a scripted upstream body: a frame, an error, the end, or `Pending`.
    type Step = Poll<Option<Result<Frame<Bytes>, String>>>;

    /// An upstream body that plays a script.
    struct Script(VecDeque<Step>);

    impl HttpBody for Script {
        type Data = Bytes;
        type Error = String;

        fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Step {
            self.0.pop_front().unwrap_or(Poll::Ready(None))
        }
    }

    fn data(bytes: &[u8]) -> Step {
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(bytes)))))
    }

    fn trailers(code: &'static str) -> HeaderMap {
        let mut trailers = HeaderMap::new();
        trailers.insert(GRPC_STATUS, HeaderValue::from_static(code));
        trailers
    }

    fn proxy(steps: Vec<Step>, max: usize) -> ProxyBody<Script> {
        ProxyBody {
            inner: Some(Script(steps.into())),
            scanner: FrameScanner::default(),
            max,
            oversized: Arc::new(AtomicBool::new(false)),
            pending: None,
            code: None,
            call: None,
        }
    }

    /// What the client gets, polling until the end: data, trailers (by grpc-status) or a pause.
    #[derive(Debug, PartialEq)]
    enum Out {
        Data(Vec<u8>),
        Trailers(String),
        Pending,
    }

    fn drain(body: &mut ProxyBody<Script>) -> Vec<Out> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut *body).poll_frame(&mut cx) {
                Poll::Pending => out.push(Out::Pending),
                Poll::Ready(None) => return out,
                Poll::Ready(Some(Err(status))) => panic!("error frame: {status:?}"),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => out.push(Out::Data(data.to_vec())),
                    Err(frame) => {
                        let trailers = frame.into_trailers().expect("data or trailers");
                        let code = trailers.get(GRPC_STATUS).expect("grpc-status");
                        out.push(Out::Trailers(code.to_str().unwrap().to_owned()));
                    }
                },
            }
        }
    }

    #[test]
    fn ready_data_frames_go_out_as_one_frame_then_trailers() {
        let (a, b, c) = (frame(3), frame(4), frame(5));
        let mut body = proxy(
            vec![
                data(&a),
                data(&b),
                data(&c),
                Poll::Ready(Some(Ok(Frame::trailers(trailers("0"))))),
            ],
            100,
        );
        let joined = [a, b, c].concat();
        assert_eq!(
            drain(&mut body),
            [Out::Data(joined), Out::Trailers("0".into())]
        );
        assert_eq!(body.code, Some(0));
    }

    #[test]
    fn data_before_a_pause_is_forwarded_at_once() {
        let (a, b, c) = (frame(3), frame(4), frame(5));
        let mut body = proxy(
            vec![
                data(&a),
                Poll::Pending,
                data(&b),
                data(&c),
                Poll::Pending,
                Poll::Pending,
                Poll::Ready(Some(Ok(Frame::trailers(trailers("0"))))),
            ],
            100,
        );
        // The upstream's first pause ends the first frame (no waiting for more); the second
        // ends the next one; the third is the client's wait for the trailers.
        assert_eq!(
            drain(&mut body),
            [
                Out::Data(a),
                Out::Data([b, c].concat()),
                Out::Pending,
                Out::Trailers("0".into()),
            ]
        );
    }

    #[test]
    fn coalescing_stops_at_the_size_cap_and_at_the_end() {
        let big = vec![1u8; super::COALESCE_MAX];
        let small = frame(2);
        let mut body = proxy(vec![data(&big), data(&small), data(&small)], usize::MAX);
        assert_eq!(
            drain(&mut body),
            [Out::Data(big), Out::Data([small.clone(), small].concat())]
        );
        assert!(body.inner.is_none());
    }

    #[test]
    fn oversize_is_detected_across_coalesced_frames() {
        let (ok, small, too_big) = (frame(3), frame(1), frame(20));
        let mut body = proxy(
            vec![
                data(&ok),
                data(&[small.as_slice(), &too_big[..7]].concat()),
                data(&too_big[7..]),
                Poll::Ready(Some(Ok(Frame::trailers(trailers("0"))))),
            ],
            10,
        );
        // The allowed messages go out in one frame, the oversized one not at all, then
        // RESOURCE_EXHAUSTED instead of the upstream's trailers.
        assert_eq!(
            drain(&mut body),
            [Out::Data([ok, small].concat()), Out::Trailers("8".into())]
        );
        // Oversized right at the start: trailers only.
        let mut body = proxy(vec![data(&too_big), data(&frame(1))], 10);
        assert_eq!(drain(&mut body), [Out::Trailers("8".into())]);
    }

    #[test]
    fn upstream_failure_while_coalescing_follows_the_data() {
        let a = frame(3);
        let mut body = proxy(
            vec![
                data(&a),
                Poll::Ready(Some(Err("connection reset".to_owned()))),
            ],
            100,
        );
        assert_eq!(drain(&mut body), [Out::Data(a), Out::Trailers("14".into())]);
    }
}
