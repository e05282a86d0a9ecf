//! Raw gRPC passthrough: requests and responses stream through without being decoded.
//!
//! The only thing read from the bytes are the 5-byte gRPC frame headers, to enforce the
//! maximum message size. Every failure becomes a gRPC status (a trailers-only response, or
//! trailers after a started response), never a transport error. The request headers are
//! cleaned before they go upstream ([`upstream_headers`], [`set_forwarded`]); what a client
//! learns of an upstream failure is generic, the details go to the log.

use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tonic::{Code, Status};

use super::GatewayState;
use super::access_log::{AccessLog, Entry, Protocol};
use super::body::GatewayBody;
use super::config::Limits;
use super::metrics::{RouteMetrics, UpstreamMetrics};
use super::pool::{Answered, BodyError, SendError, SendOptions, Upstream, UpstreamBody};
use super::routes::CallKind;
use super::tls::ClientCert;
use super::trace::{AttemptSpan, CallTrace};
use super::wire::{
    ClientAddr, FrameScanner, GRPC_STATUS, GRPC_TIMEOUT, HOP_BY_HOP, grpc_timeout_value,
    parse_grpc_timeout,
};

/// What a client hears when its upstream cannot be reached or fails (details are logged).
const UPSTREAM_UNAVAILABLE: &str = "upstream unavailable";

/// The `grpc-*` headers a client may send; the others are reserved (`grpc-status`,
/// `grpc-message`...) and dropped.
const CLIENT_GRPC_HEADERS: [HeaderName; 3] = [
    GRPC_TIMEOUT,
    HeaderName::from_static("grpc-encoding"),
    HeaderName::from_static("grpc-accept-encoding"),
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A request body on its way upstream: straight from the client connection, or built by the
/// gateway (REST) or translated (gRPC-Web).
pub(crate) enum RequestBody {
    /// A gRPC client's body.
    Incoming(Incoming),
    /// Any other body.
    Boxed(tonic::body::Body),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestBody::Incoming(_) => "RequestBody::Incoming",
            RequestBody::Boxed(_) => "RequestBody::Boxed",
        })
    }
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

/// Cleans a passthrough call's request headers for the upstream and returns the call's
/// deadline:
///
/// - hop-by-hop headers and every header the client's `Connection` names are removed (they
///   belong to the client's connection, RFC 9110 §7.6.1); `te: trailers` is set;
/// - reserved `grpc-*` headers are removed, except `grpc-timeout`, `grpc-encoding` and
///   `grpc-accept-encoding`;
/// - `grpc-timeout` above `limits.max_timeout` is lowered to it, and an unreadable one removed;
///   without one, the upstream's `default_timeout` applies, else `limits.default_timeout` for
///   the call kinds that end with one response (unary, client streaming). A path the route
///   table does not know (prefix routes) may be a long-lived stream: it gets no default.
pub(crate) fn upstream_headers(
    headers: &mut HeaderMap,
    upstream_default: Option<Duration>,
    kind: Option<CallKind>,
    limits: &Limits,
) -> Option<Duration> {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    // One pass over the few headers a call has (a `remove` per listed name hashed each name:
    // about 2,000 instructions a call), then removals only for what is there.
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            HOP_BY_HOP.contains(name)
                || named.contains(name)
                || (name.as_str().starts_with("grpc-") && !CLIENT_GRPC_HEADERS.contains(name))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    let asked = headers.get(GRPC_TIMEOUT).map(parse_grpc_timeout);
    let timeout = match asked {
        Some(Some(asked)) => Some(asked.min(limits.max_timeout)),
        _ => upstream_default.or_else(|| {
            kind.filter(|kind| !kind.server_streaming())
                .map(|_| limits.default_timeout)
        }),
    };
    match timeout {
        Some(timeout) if asked != Some(Some(timeout)) => {
            headers.insert(GRPC_TIMEOUT, grpc_timeout_value(timeout));
        }
        Some(_) => {}
        None => {
            headers.remove(GRPC_TIMEOUT);
        }
    }
    timeout
}

/// Replaces whatever the client claimed about forwarding (`x-forwarded-*`, `forwarded`,
/// `x-real-ip`) with the gateway's own knowledge: `x-forwarded-for: <peer ip>` and
/// `forwarded: for=<peer ip>`, from the listener's [`ClientAddr`]; without it, nothing.
pub(crate) fn set_forwarded(headers: &mut HeaderMap, client: Option<ClientAddr>) {
    let claimed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            name.as_str().starts_with("x-forwarded-")
                || *name == header::FORWARDED
                || *name == X_REAL_IP
        })
        .cloned()
        .collect();
    for name in claimed {
        headers.remove(name);
    }
    let Some(ClientAddr(addr)) = client else {
        return;
    };
    if let Some((ip, node)) = forwarded_values(addr.ip().to_canonical()) {
        headers.insert(X_FORWARDED_FOR, ip);
        headers.insert(header::FORWARDED, node);
    }
}

/// `x-forwarded-for` and `forwarded` for a client at `ip`. A client's calls come from one
/// address, often on one connection: the last pair is kept (writing them anew cost a call
/// three allocations).
fn forwarded_values(ip: IpAddr) -> Option<(HeaderValue, HeaderValue)> {
    thread_local! {
        static LAST: RefCell<Option<(IpAddr, (HeaderValue, HeaderValue))>> =
            const { RefCell::new(None) };
    }
    crate::wire::kept_for_last(&LAST, ip, write_forwarded)
}

fn write_forwarded(ip: IpAddr) -> Option<(HeaderValue, HeaderValue)> {
    let mut text = Vec::with_capacity(48);
    crate::text::push_ip(&mut text, ip);
    let mut node = Vec::with_capacity(text.len() + 8);
    node.extend_from_slice(b"for=");
    if ip.is_ipv6() {
        // RFC 7239: an IPv6 node is bracketed and quoted.
        node.extend_from_slice(b"\"[");
        node.extend_from_slice(&text);
        node.extend_from_slice(b"]\"");
    } else {
        node.extend_from_slice(&text);
    }
    let for_value = HeaderValue::from_maybe_shared(Bytes::from(text)).ok()?;
    let node_value = HeaderValue::from_maybe_shared(Bytes::from(node)).ok()?;
    Some((for_value, node_value))
}

/// Forwards one gRPC call to its upstream.
pub(crate) async fn forward(
    state: Arc<GatewayState>,
    mut req: Request<RequestBody>,
) -> Response<GatewayBody> {
    let start = Instant::now();
    // Who may call comes before whether the path exists: refusals reveal no routes.
    let client = req.extensions().get::<ClientAddr>().copied();
    let certificate = req.extensions().get::<ClientCert>().cloned();
    // A clone shares the request's bytes (a count, not a copy of the path).
    let uri = req.uri().clone();
    let path = uri.path();
    // The call's server span when tracing is on (off, this test is all it costs).
    let trace = state.tracing.as_ref().map(|tracing| {
        let protocol = req.extensions().get::<Protocol>().copied();
        let peer = client.map(|ClientAddr(addr)| addr);
        tracing.server(
            req.headers(),
            protocol.unwrap_or(Protocol::Grpc),
            path,
            peer,
        )
    });
    // The access log's entry, when there is a log and this call is sampled.
    let mut entry = state.access_log.as_ref().and_then(|log| {
        let protocol = req.extensions().get::<Protocol>().copied();
        let peer = client.map(|ClientAddr(addr)| addr);
        log.begin(
            protocol.unwrap_or(Protocol::Grpc),
            peer,
            req.headers(),
            trace.as_ref(),
        )
    });
    match state.gate.check(
        path,
        req.headers_mut(),
        client.map(|ClientAddr(addr)| addr.ip()),
        certificate
            .as_ref()
            .map(|ClientCert(subject)| subject.as_str()),
    ) {
        Ok(identity) => {
            if let Some(entry) = entry.as_mut() {
                entry.identity = identity;
            }
        }
        Err(refused) => {
            let code = refused.code() as u16;
            state.unmatched.record(code, start.elapsed());
            log_now(&state, entry, code, start);
            end_trace(trace, code, 0);
            return refused.status().into_http();
        }
    }
    let Some(target) = state.target(path) else {
        let status = Status::unimplemented(format!("no route for {path} on this gateway"));
        state
            .unmatched
            .record(Code::Unimplemented as u16, start.elapsed());
        log_now(&state, entry, Code::Unimplemented as u16, start);
        end_trace(trace, Code::Unimplemented as u16, 0);
        return status.into_http();
    };
    let metrics = target.metrics.clone();
    if let Some(trace) = &trace {
        trace.route(metrics.shared_label());
    }
    if let Some(log) = &state.access_log {
        entry = log.route(entry, &metrics);
    }
    let Some(upstream) = target.upstream.and_then(|index| state.upstreams.get(index)) else {
        tracing::warn!(path, "no upstream configured for this path");
        metrics.record(Code::Unavailable as u16, start.elapsed());
        log_now(&state, entry, Code::Unavailable as u16, start);
        end_trace(trace, Code::Unavailable as u16, 0);
        return Status::unavailable(UPSTREAM_UNAVAILABLE).into_http();
    };
    if let Some(entry) = entry.as_mut() {
        entry.upstream = Some(upstream.metrics.clone());
    }

    let kind = target.kind;
    let headers = req.headers_mut();
    let timeout = upstream_headers(
        headers,
        upstream.default_deadline,
        kind,
        &state.config.limits,
    );
    set_forwarded(headers, client);
    let options = SendOptions {
        kind,
        logged: entry.is_some(),
        // The pool opens a client span per attempt under the server span.
        trace: trace.clone(),
    };
    // gRPC-Web may arrive over HTTP/1.1; upstream is always HTTP/2.
    *req.version_mut() = http::Version::HTTP_2;

    let fault = Arc::new(ClientFault::default());
    // Dropped once the upstream answered or the call is over (see `LimitedBody::answered`).
    let (answered, answered_body) = oneshot::channel::<()>();
    let req = req.map(|body| LimitedBody {
        inner: body,
        scanner: FrameScanner::default(),
        max: upstream.max_message_size,
        fault: fault.clone(),
        answered: Some(answered_body),
        reset_hold: state.config.limits.cancel_linger.min(MAX_RESET_HOLD),
        failed: None,
    });
    // Too far away to represent: no local deadline (the upstream still gets the header).
    let deadline =
        timeout.and_then(|timeout| tokio::time::Instant::from_std(start).checked_add(timeout));
    let sent_at = Instant::now();
    // A call without a deadline (a stream, or a path of unknown kind) still gets its response
    // headers within `response_header_timeout`: an upstream that accepts and never answers
    // cannot hold it forever.
    let headers_by = deadline.or_else(|| {
        let wait = state.config.limits.response_header_wait()?;
        Some(tokio::time::Instant::now() + wait)
    });
    // One timer for the call: it bounds the wait for response headers, then (when it is the
    // call's deadline) the response body.
    let mut expiry = headers_by.map(|at| Box::pin(tokio::time::sleep_until(at)));
    let sent = match expiry.as_mut() {
        // The send is polled first, as `tokio::time::timeout` does.
        Some(expiry) => match tokio::select! {
            biased;
            sent = upstream.send(req, options) => Some(sent),
            () = expiry.as_mut() => None,
        } {
            Some(sent) => sent,
            None => {
                let status = Status::deadline_exceeded(if deadline.is_some() {
                    "deadline exceeded"
                } else {
                    "the upstream sent no response headers in time"
                });
                let code = status.code() as u16;
                metrics.record(code, start.elapsed());
                upstream.metrics.record(code, sent_at.elapsed());
                metrics.add_bytes(fault.bytes_in(), 0);
                log_now(&state, entry, code, start);
                end_trace(trace, code, fault.bytes_in());
                return status.into_http();
            }
        },
        None => upstream.send(req, options).await,
    };
    drop(answered);
    match sent {
        Ok(Answered {
            response,
            attempt,
            span,
        }) => {
            let trace = trace.map(|trace| (trace, span));
            if let Some(entry) = entry.as_mut() {
                entry.attempt = attempt;
            }
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
                    fault,
                    deadline: deadline.and(expiry),
                    pending: None,
                    code: header_code,
                    call: Some(CallRecord {
                        metrics,
                        start,
                        upstream: upstream.metrics.clone(),
                        sent_at,
                        bytes_out: 0,
                        log: state.access_log.clone().zip(entry),
                        trace,
                    }),
                })
            })
        }
        Err(err) => {
            let status = fault
                .status()
                .unwrap_or_else(|| upstream_error(upstream, &err));
            let code = status.code() as u16;
            metrics.record(code, start.elapsed());
            upstream.metrics.record(code, sent_at.elapsed());
            metrics.add_bytes(fault.bytes_in(), 0);
            log_now(&state, entry, code, start);
            end_trace(trace, code, fault.bytes_in());
            status.into_http()
        }
    }
}

/// Hands the entry of a call that ends before a response body exists to the access log.
fn log_now(state: &GatewayState, entry: Option<Box<Entry>>, code: u16, start: Instant) {
    if let (Some(log), Some(entry)) = (&state.access_log, entry) {
        log.finish(entry, Some(code), start.elapsed(), (0, 0));
    }
}

/// Ends the server span of a call that ends before a response body exists.
fn end_trace(trace: Option<CallTrace>, code: u16, bytes_in: u64) {
    if let Some(trace) = trace {
        trace.finish(Some(code), None, (bytes_in, 0), None);
    }
}

/// The client's status for a call that could not be sent; the details go to the log.
fn upstream_error(upstream: &Upstream, err: &SendError) -> Status {
    let detail = crate::text::error_chain(err);
    match err {
        SendError::Queue(_) => {
            tracing::debug!(upstream = %upstream.name, "call refused: {detail}");
            Status::resource_exhausted("upstream busy: no call slot free in time")
        }
        // Connection failures are logged when they happen, once per attempt.
        SendError::Connect { .. } | SendError::NoEndpoint(_) => {
            tracing::debug!(upstream = %upstream.name, "call failed: {detail}");
            Status::unavailable(UPSTREAM_UNAVAILABLE)
        }
        SendError::Http(_) => {
            tracing::warn!(upstream = %upstream.name, "call failed: {detail}");
            Status::unavailable(UPSTREAM_UNAVAILABLE)
        }
    }
}

/// A failure on the client's side of a call (its request body), which the client must hear
/// as such rather than as an upstream failure. The first one recorded wins.
/// Also counts the request bytes that went through, for `/metrics` and the access log.
#[derive(Debug, Default)]
pub(crate) struct ClientFault(OnceLock<Status>, AtomicU64);

impl ClientFault {
    /// Records `status` (unless a fault was recorded already) and returns it.
    fn set(&self, status: Status) -> Status {
        let _ = self.0.set(status.clone());
        status
    }

    fn status(&self) -> Option<Status> {
        self.0.get().cloned()
    }

    fn bytes_in(&self) -> u64 {
        self.1.load(Relaxed)
    }
}

/// The client's request body on its way upstream, failing on an oversized message.
#[derive(Debug)]
pub(crate) struct LimitedBody {
    inner: RequestBody,
    scanner: FrameScanner,
    max: usize,
    fault: Arc<ClientFault>,
    /// Resolves (sent or dropped) once the call has the upstream's response headers, or is
    /// over. Until then, for at most `reset_hold`, the error of a client that went away
    /// mid-request is held back: hyper resets the upstream stream as soon as the request body
    /// fails, and more than 20 streams reset before the server accepted them (h2's
    /// `max_pending_accept_reset_streams` in hyper's servers, so tonic's) make it close the
    /// whole shared connection (GOAWAY `too_many_resets`). Measured: an h2load run ending with
    /// 500 calls in flight left about 60 requests half-sent, and one run in ten took the
    /// upstream connection down with 150-250 other calls on it. A server accepts a stream
    /// within its next turn; it may answer a half-sent unary call never, hence the bound.
    answered: Option<oneshot::Receiver<()>>,
    /// How long a client's failure may be held back (`min(cancel_linger, 100 ms)`).
    reset_hold: Duration,
    /// The client's failure, held back until `answered` or the end of its hold.
    failed: Option<(Status, Pin<Box<tokio::time::Sleep>>)>,
}

/// The longest a request body's failure is held back (see [`LimitedBody::answered`]).
const MAX_RESET_HOLD: Duration = Duration::from_millis(100);

impl LimitedBody {
    /// A body the gateway built itself (its size is already checked).
    pub(crate) fn built(body: tonic::body::Body) -> Self {
        LimitedBody {
            inner: RequestBody::Boxed(body),
            scanner: FrameScanner::default(),
            max: usize::MAX,
            fault: Arc::new(ClientFault::default()),
            answered: None,
            reset_hold: Duration::ZERO,
            failed: None,
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
        if let Some((status, mut hold)) = this.failed.take() {
            let answered = this
                .answered
                .as_mut()
                .is_none_or(|answered| Pin::new(answered).poll(cx).is_ready());
            if !answered && hold.as_mut().poll(cx).is_pending() {
                this.failed = Some((status, hold));
                return Poll::Pending;
            }
            return Poll::Ready(Some(Err(status)));
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && this.scanner.scan(data, this.max).is_err()
                {
                    let status = Status::resource_exhausted(format!(
                        "request message larger than the gateway's limit of {} bytes",
                        this.max
                    ));
                    return Poll::Ready(Some(Err(this.fault.set(status))));
                }
                if let Some(data) = frame.data_ref() {
                    this.fault.1.fetch_add(data.len() as u64, Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                let status = match this.inner {
                    // The client reset its stream or lost its connection.
                    RequestBody::Incoming(_) => {
                        let status = this
                            .fault
                            .set(Status::cancelled("the client stopped sending its request"));
                        let hold = Box::pin(tokio::time::sleep(this.reset_hold));
                        this.failed = Some((status, hold));
                        // The error goes out once the upstream answered or the hold is over.
                        return self.poll_frame(cx);
                    }
                    // gRPC-Web: the client's body could not be decoded (bad base64...).
                    RequestBody::Boxed(_) => Status::invalid_argument(format!(
                        "the request body could not be read: {err}"
                    )),
                };
                Poll::Ready(Some(Err(this.fault.set(status))))
            }
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

/// Records a call's status, latency and bytes once, when its response ends or is dropped.
struct CallRecord {
    metrics: Arc<RouteMetrics>,
    start: Instant,
    upstream: Arc<UpstreamMetrics>,
    /// When the call went to the upstream (the upstream's latency starts here).
    sent_at: Instant,
    bytes_out: u64,
    /// The access log and this call's entry, when the call is logged.
    log: Option<(Arc<AccessLog>, Box<Entry>)>,
    /// The call's server span and its answered attempt's client span, when traced.
    trace: Option<(CallTrace, Option<AttemptSpan>)>,
}

/// How a response body's failure reads for the client.
pub(crate) trait BodyFailure: std::fmt::Display {
    /// The status of a failure the gateway itself decided (a slow consumer), if it is one.
    fn own_status(&self) -> Option<Status>;
}

impl BodyFailure for BodyError {
    fn own_status(&self) -> Option<Status> {
        BodyError::own_status(self)
    }
}

/// The upstream's response body on its way to the client (`B`: only tests use another body).
pub(crate) struct ProxyBody<B = UpstreamBody> {
    inner: Option<B>,
    scanner: FrameScanner,
    max: usize,
    fault: Arc<ClientFault>,
    /// The call's deadline, while the response is still coming.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Trailers to send after the data already returned (synthesized status).
    pending: Option<HeaderMap>,
    /// The status seen so far (trailers-only header, trailers, or synthesized).
    code: Option<u16>,
    call: Option<CallRecord>,
}

impl<B> ProxyBody<B> {
    fn finish(&mut self, code: u16) {
        if let Some(call) = self.call.take() {
            // One reading of the clock for both.
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(call.start);
            call.metrics.record(code, elapsed);
            call.upstream
                .record(code, now.saturating_duration_since(call.sent_at));
            let bytes = (self.fault.bytes_in(), call.bytes_out);
            call.metrics.add_bytes(bytes.0, bytes.1);
            if let Some((log, entry)) = call.log {
                log.finish(entry, Some(code), elapsed, bytes);
            }
            if let Some((trace, attempt)) = call.trace {
                trace.finish(Some(code), None, bytes, attempt);
            }
        }
    }

    fn count_out(&mut self, bytes: usize) {
        if let Some(call) = self.call.as_mut() {
            call.bytes_out += bytes as u64;
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
    B::Error: BodyFailure,
{
    /// Checks one upstream frame: message sizes, status, failures.
    fn event(&mut self, frame: Option<Result<Frame<Bytes>, B::Error>>) -> Event {
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if let Err(offset) = self.scanner.scan(&data, self.max) {
                        self.count_out(offset);
                        let status = self.max_error();
                        let trailers = self.fail(&status);
                        if offset == 0 {
                            return Event::Trailers(trailers);
                        }
                        self.pending = Some(trailers);
                        return Event::Data(data.slice(..offset));
                    }
                    self.count_out(data.len());
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
                let status = self
                    .fault
                    .status()
                    .or_else(|| err.own_status())
                    .unwrap_or_else(|| {
                        tracing::warn!("upstream stream failed: {err}");
                        Status::unavailable("upstream stream failed")
                    });
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
    B::Error: BodyFailure,
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
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    // Dropping the upstream body resets its stream.
                    this.deadline = None;
                    let status = Status::deadline_exceeded("deadline exceeded");
                    return Poll::Ready(Some(Ok(Frame::trailers(this.fail(&status)))));
                }
                return Poll::Pending;
            }
        };
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
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue};
    use http_body::{Body as HttpBody, Frame};

    use super::{BodyFailure, ProxyBody};
    use crate::wire::{FrameScanner, GRPC_STATUS};

    fn frame(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    /// One step of a scripted upstream body: a frame, an error, the end, or `Pending`.
    type Step = Poll<Option<Result<Frame<Bytes>, String>>>;

    impl BodyFailure for String {
        fn own_status(&self) -> Option<tonic::Status> {
            None
        }
    }

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
            fault: Arc::new(super::ClientFault::default()),
            deadline: None,
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

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn connection_and_reserved_headers_stay_behind() {
        let limits = crate::config::Limits::default();
        let mut sent = headers(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "x-other"),
            ("keep-alive", "5"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("host", "gateway"),
            ("te", "gzip"),
            ("grpc-status", "0"),
            ("grpc-message", "forged"),
            ("grpc-previous-rpc-attempts", "3"),
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "identity"),
            ("x-kept", "yes"),
        ]);
        let deadline = super::upstream_headers(&mut sent, None, None, &limits);
        assert_eq!(deadline, None, "a prefix route without grpc-timeout");
        let mut names: Vec<&str> = sent.keys().map(|name| name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["grpc-accept-encoding", "grpc-encoding", "te", "x-kept"]
        );
        assert_eq!(sent["te"], "trailers");
    }

    #[test]
    fn deadlines_are_defaulted_by_kind_and_capped() {
        use crate::routes::CallKind;
        use std::time::Duration;
        let limits = crate::config::Limits {
            default_timeout: Duration::from_secs(3),
            max_timeout: Duration::from_secs(60),
            ..crate::config::Limits::default()
        };
        let run = |pairs: &[(&'static str, &'static str)],
                   upstream: Option<Duration>,
                   kind: Option<CallKind>| {
            let mut sent = headers(pairs);
            let deadline = super::upstream_headers(&mut sent, upstream, kind, &limits);
            let header = sent
                .get("grpc-timeout")
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            (deadline, header)
        };
        let secs = |n| Some(Duration::from_secs(n));
        let unary = Some(CallKind::Unary);
        assert_eq!(run(&[], None, unary), (secs(3), Some("3000m".into())));
        assert_eq!(
            run(&[], None, Some(CallKind::ClientStreaming)),
            (secs(3), Some("3000m".into()))
        );
        assert_eq!(
            run(&[], None, Some(CallKind::ServerStreaming)),
            (None, None)
        );
        assert_eq!(run(&[], None, Some(CallKind::Bidirectional)), (None, None));
        assert_eq!(
            run(&[], secs(7), Some(CallKind::Bidirectional)),
            (secs(7), Some("7000m".into()))
        );
        assert_eq!(
            run(&[("grpc-timeout", "99999999H")], None, unary),
            (secs(60), Some("60000m".into()))
        );
        assert_eq!(
            run(&[("grpc-timeout", "2S")], secs(7), unary),
            (secs(2), Some("2S".into())),
            "a client deadline under the cap passes as sent"
        );
        assert_eq!(
            run(&[("grpc-timeout", "soon")], None, None),
            (None, None),
            "an unreadable value is dropped"
        );
    }

    #[test]
    fn forwarding_claims_are_replaced_by_the_peer() {
        use crate::wire::ClientAddr;
        let forged = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-kept", "yes"),
        ];
        let mut sent = headers(&forged);
        let v4 = ClientAddr("10.1.2.3:5000".parse().expect("addr"));
        super::set_forwarded(&mut sent, Some(v4));
        assert_eq!(sent.len(), 3);
        assert_eq!(sent["x-forwarded-for"], "10.1.2.3");
        assert_eq!(sent["forwarded"], "for=10.1.2.3");
        let mut sent = headers(&forged);
        let v6 = ClientAddr("[2001:db8::1]:5000".parse().expect("addr"));
        super::set_forwarded(&mut sent, Some(v6));
        assert_eq!(sent["x-forwarded-for"], "2001:db8::1");
        assert_eq!(sent["forwarded"], "for=\"[2001:db8::1]\"");
        // Back to the first client (its values were kept for the last one only).
        let mut sent = headers(&forged);
        super::set_forwarded(&mut sent, Some(v4));
        assert_eq!(sent["x-forwarded-for"], "10.1.2.3");
        assert_eq!(sent["forwarded"], "for=10.1.2.3");
        let mut sent = headers(&forged);
        super::set_forwarded(&mut sent, None);
        assert_eq!(sent.keys().collect::<Vec<_>>(), ["x-kept"]);
    }
}
