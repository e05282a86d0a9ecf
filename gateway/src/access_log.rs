//! The access log (`[access_log]`): one JSON line per call, written by a thread of its own.
//!
//! A call only fills an [`Entry`] (copies of what it already has: no formatting, no I/O) and
//! puts it in a bounded [`Outbox`]; the writer thread wakes every [`WRITE_INTERVAL`] (or when
//! 512 entries are waiting), formats and writes the lines. When the outbox is full the entry is
//! dropped and counted (`gateway_access_log_dropped_total`), so a slow disk never slows calls.
//! Header values are never copied into an entry, except the trace id parsed out of
//! `traceparent`: no credentials, cookies or bodies can reach the log.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime};

use super::config::AccessLogConfig;
use super::metrics::{CODE_NAMES, RouteMetrics, UpstreamMetrics};
use super::outbox::{Outbox, Pushed};
use super::text::{self, EndpointName};
use super::trace::{CallTrace, TRACEPARENT};
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// How a client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// gRPC over HTTP/2 (MessagePack, or protobuf through the bridge).
    Grpc,
    /// gRPC-Web (binary or text), translated by the gateway.
    GrpcWeb,
    /// REST/JSON bindings.
    Rest,
}

impl Protocol {
    /// The name the access log and spans give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::Rest => "rest",
        }
    }
}

/// Which endpoint of the upstream answered, and how many times the call was sent again: returned
/// by the pool beside the upstream's response ([`crate::pool::Answered`]), read when the call
/// ends.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) endpoint: Arc<EndpointName>,
    pub(crate) retries: u32,
}

/// One call, as its log line will show it. Filled while the call runs, formatted by the writer.
#[derive(Debug)]
pub(crate) struct Entry {
    time: SystemTime,
    peer: Option<SocketAddr>,
    protocol: Protocol,
    /// The call's trace id (32 lowercase hex digits): the one the gateway's tracing put it in,
    /// else that of the client's `traceparent`.
    trace_id: Option<[u8; 32]>,
    route: Option<Arc<RouteMetrics>>,
    pub(crate) identity: Option<Arc<str>>,
    pub(crate) upstream: Option<Arc<UpstreamMetrics>>,
    pub(crate) attempt: Option<Attempt>,
    pub(crate) http_status: u16,
    code: Option<u16>,
    duration: Duration,
    request_bytes: u64,
    response_bytes: u64,
}

impl Entry {
    /// Appends the entry's JSON line (without its newline). Written field by field: through
    /// `serde_json::to_string` of a struct with `String`s, a line cost about 13,000
    /// instructions, most of them `core::fmt` formatting the time and addresses.
    fn write_json(&self, out: &mut Vec<u8>, memos: &mut LineMemos) {
        out.extend_from_slice(b"{\"time\":\"");
        text::push_rfc3339(out, self.time, &mut memos.seconds);
        out.extend_from_slice(b"\",\"peer\":");
        match self.peer {
            Some(peer) => {
                out.push(b'"');
                text::push_socket_addr(out, peer, &mut memos.ips);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"identity\":");
        json_str(out, self.identity.as_deref());
        out.extend_from_slice(b",\"protocol\":\"");
        out.extend_from_slice(self.protocol.name().as_bytes());
        out.extend_from_slice(b"\",\"route\":");
        json_raw(out, self.route.as_ref().map(|route| route.label_json()));
        out.extend_from_slice(b",\"upstream\":");
        json_raw(
            out,
            self.upstream.as_ref().map(|upstream| &*upstream.name_json),
        );
        out.extend_from_slice(b",\"endpoint\":");
        json_raw(
            out,
            self.attempt
                .as_ref()
                .map(|attempt| attempt.endpoint.as_json()),
        );
        out.extend_from_slice(b",\"http_status\":");
        text::push_u64(out, u64::from(self.http_status));
        out.extend_from_slice(b",\"grpc_status\":");
        match self.code {
            Some(code) => {
                out.push(b'"');
                out.extend_from_slice(CODE_NAMES[usize::from(code).min(16)].as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"duration_seconds\":");
        push_seconds(out, self.duration);
        out.extend_from_slice(b",\"request_bytes\":");
        text::push_u64(out, self.request_bytes);
        out.extend_from_slice(b",\"response_bytes\":");
        text::push_u64(out, self.response_bytes);
        out.extend_from_slice(b",\"retries\":");
        text::push_u64(
            out,
            u64::from(self.attempt.as_ref().map_or(0, |attempt| attempt.retries)),
        );
        out.extend_from_slice(b",\"trace_id\":");
        match &self.trace_id {
            Some(id) => {
                out.push(b'"');
                out.extend_from_slice(id);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
}

/// What consecutive lines mostly repeat, kept by the writer.
#[derive(Debug, Default)]
struct LineMemos {
    seconds: text::Memo<u64>,
    ips: text::Memo<IpAddr>,
}

/// Appends `value` as a JSON string (escaped), or `null`.
fn json_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        // Writing a string into a Vec cannot fail.
        Some(value) => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `json` (a JSON string made once, see [`text::json_string`]), or `null`.
fn json_raw(out: &mut Vec<u8>, json: Option<&str>) {
    out.extend_from_slice(json.unwrap_or("null").as_bytes());
}

/// Appends `duration` in seconds as an exact decimal (nanoseconds, trailing zeros dropped:
/// `0.0015`, `2.0`), not through an `f64`'s shortest form.
fn push_seconds(out: &mut Vec<u8>, duration: Duration) {
    text::push_u64(out, duration.as_secs());
    let mut nanos = duration.subsec_nanos();
    if nanos == 0 {
        out.extend_from_slice(b".0");
        return;
    }
    let mut fraction = *b".000000000";
    let mut len = fraction.len();
    while nanos.is_multiple_of(10) {
        nanos /= 10;
        len -= 1;
    }
    for digit in fraction[1..len].iter_mut().rev() {
        *digit = b'0' + (nanos % 10) as u8;
        nanos /= 10;
    }
    out.extend_from_slice(&fraction[..len]);
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well formed.
fn trace_id(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(TRACEPARENT)?.as_bytes();
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' {
        return None;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&value[3..35]);
    let hex = id
        .iter()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte));
    (hex && id.iter().any(|&byte| byte != b'0')).then_some(id)
}

/// The access log of one gateway: the channel to the writer, sampling and the routes left out.
#[derive(Debug)]
pub(crate) struct AccessLog {
    config: AccessLogConfig,
    outbox: Arc<Outbox<Box<Entry>>>,
    /// Calls seen, for sampling.
    seen: AtomicU64,
    written: Arc<AtomicU64>,
    write_errors: Arc<AtomicU64>,
    writer: Option<Writer>,
}

/// How often the writer thread writes what calls queued (sooner when 512 are waiting).
const WRITE_INTERVAL: Duration = Duration::from_millis(100);
/// How much the writer gathers before it writes.
const WRITE_SIZE: usize = 64 * 1024;

/// The writer thread, and how to tell it the log is closing.
#[derive(Debug)]
struct Writer {
    thread: Thread,
    closing: Arc<AtomicBool>,
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // The writer writes what is left, then ends.
        if let Some(writer) = &self.writer {
            writer.closing.store(true, Release);
            writer.thread.unpark();
        }
    }
}

/// Sampling by the golden-ratio sequence: `frac(n·φ)` is spread evenly over [0, 1), so a share
/// `s` logs `s` of any run of calls without a random number generator.
const PHI_FRACTION: f64 = 0.618_033_988_749_894_9;

impl AccessLog {
    /// Opens the log's file (or standard output) and starts its writer thread.
    pub(crate) fn start(config: &AccessLogConfig) -> Result<Arc<AccessLog>, String> {
        let out: Box<dyn Write + Send> = match &config.path {
            Some(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|err| format!("cannot open `{}`: {err}", path.display()))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let outbox = Arc::new(Outbox::<Box<Entry>>::new(config.buffer));
        let written = Arc::new(AtomicU64::new(0));
        let write_errors = Arc::new(AtomicU64::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let (queued, written_by_writer, errors_by_writer, closed) = (
            outbox.clone(),
            written.clone(),
            write_errors.clone(),
            closing.clone(),
        );
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                // Lines are written into one buffer and it goes out per 64 KiB (and at the end
                // of each batch): at 40,000 logged calls a second, 0.006 system calls a call, and
                // no line copied twice.
                let mut out = out;
                let mut pending = Vec::with_capacity(WRITE_SIZE + 1024);
                let mut batch = Vec::new();
                let mut memos = LineMemos::default();
                let mut write = |pending: &mut Vec<u8>| {
                    if out.write_all(pending).and_then(|()| out.flush()).is_err() {
                        errors_by_writer.fetch_add(1, Relaxed);
                    }
                    pending.clear();
                };
                loop {
                    // Read before draining: what was queued before the close is written.
                    let last_round = closed.load(Acquire);
                    queued.drain_into(&mut batch);
                    if !batch.is_empty() {
                        for entry in batch.drain(..) {
                            entry.write_json(&mut pending, &mut memos);
                            pending.push(b'\n');
                            written_by_writer.fetch_add(1, Relaxed);
                            if pending.len() >= WRITE_SIZE {
                                write(&mut pending);
                            }
                        }
                        write(&mut pending);
                    }
                    if last_round {
                        break;
                    }
                    std::thread::park_timeout(WRITE_INTERVAL);
                }
            })
            .map_err(|err| format!("cannot start the access log's writer: {err}"))?;
        Ok(Arc::new(AccessLog {
            config: config.clone(),
            outbox,
            seen: AtomicU64::new(0),
            written,
            write_errors,
            writer: Some(Writer {
                thread: writer.thread().clone(),
                closing,
            }),
        }))
    }

    /// The configuration this log was started with (a reload keeps the log if it is unchanged).
    pub(crate) fn config(&self) -> &AccessLogConfig {
        &self.config
    }

    /// Starts the entry of a call, if this call is sampled.
    pub(crate) fn begin(
        &self,
        protocol: Protocol,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        trace: Option<&CallTrace>,
    ) -> Option<Box<Entry>> {
        if self.config.sample < 1.0 {
            let n = self.seen.fetch_add(1, Relaxed);
            if (n as f64 * PHI_FRACTION).fract() >= self.config.sample {
                return None;
            }
        }
        Some(Box::new(Entry {
            time: SystemTime::now(),
            peer,
            protocol,
            // The trace the gateway's tracing put the call in (which may have started it), else
            // the client's: `traceparent` is read once either way.
            trace_id: trace.map_or_else(|| trace_id(headers), |trace| Some(trace.trace_id_hex())),
            route: None,
            identity: None,
            upstream: None,
            attempt: None,
            http_status: 200,
            code: None,
            duration: Duration::ZERO,
            request_bytes: 0,
            response_bytes: 0,
        }))
    }

    /// Sets the entry's route, or drops the entry if that route is not logged.
    pub(crate) fn route(
        &self,
        entry: Option<Box<Entry>>,
        route: &Arc<RouteMetrics>,
    ) -> Option<Box<Entry>> {
        let mut entry = entry?;
        if self
            .config
            .off_routes
            .iter()
            .any(|off| off == route.label())
        {
            return None;
        }
        entry.route = Some(route.clone());
        Some(entry)
    }

    /// Hands a finished call's entry to the writer; drops and counts it if the writer is behind.
    pub(crate) fn finish(
        &self,
        mut entry: Box<Entry>,
        code: Option<u16>,
        duration: Duration,
        bytes: (u64, u64),
    ) {
        entry.code = code;
        entry.duration = duration;
        (entry.request_bytes, entry.response_bytes) = bytes;
        if let (Pushed::Wake, Some(writer)) = (self.outbox.push(entry), &self.writer) {
            writer.thread.unpark();
        }
    }
}

/// The status a REST stream ended with, set by the stream's body when it writes its last line.
#[derive(Debug, Default)]
pub(crate) struct Outcome(OnceLock<u16>);

impl Outcome {
    /// Records the code (the first one wins).
    pub(crate) fn set(&self, code: u16) {
        let _ = self.0.set(code);
    }
}

/// A REST response body that counts the route's bytes and hands the call's entry to the log
/// when it is done (ended or dropped).
pub(crate) struct LoggedBody<B: HttpBody> {
    inner: B,
    route: Arc<RouteMetrics>,
    log: Option<(Arc<AccessLog>, Box<Entry>)>,
    start: Instant,
    request_bytes: u64,
    response_bytes: u64,
    /// Known when the response was built (errors, unary replies); else read from the stream's
    /// [`Outcome`].
    code: Option<u16>,
    outcome: Option<Arc<Outcome>>,
    ended: bool,
}

impl<B: HttpBody> LoggedBody<B> {
    /// Wraps `inner`; `log`'s entry is logged with `code`, or else the stream's outcome.
    pub(crate) fn new(
        inner: B,
        route: Arc<RouteMetrics>,
        log: Option<(Arc<AccessLog>, Box<Entry>)>,
        start: Instant,
        request_bytes: u64,
        code: Option<u16>,
        outcome: Option<Arc<Outcome>>,
    ) -> Self {
        LoggedBody {
            inner,
            route,
            log,
            start,
            request_bytes,
            response_bytes: 0,
            code,
            outcome,
            ended: false,
        }
    }
}

impl<B: HttpBody> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        self.route
            .add_bytes(self.request_bytes, self.response_bytes);
        let Some((log, entry)) = self.log.take() else {
            return;
        };
        let ended = self.ended || self.inner.is_end_stream();
        let code = self
            .code
            .or_else(|| {
                self.outcome
                    .as_ref()
                    .and_then(|outcome| outcome.0.get().copied())
            })
            .or(if ended { None } else { Some(1) });
        let bytes = (self.request_bytes, self.response_bytes);
        log.finish(entry, code, self.start.elapsed(), bytes);
    }
}

impl<B> HttpBody for LoggedBody<B>
where
    B: HttpBody<Data = bytes::Bytes> + Unpin,
{
    type Data = bytes::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, B::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.response_bytes += data.len() as u64;
                }
            }
            Some(Err(_)) => {}
            None => this.ended = true,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The access log's counters for `/metrics`: `(name, help, value)`; zeros without a log.
pub(crate) fn counters(log: Option<&AccessLog>) -> [(&'static str, &'static str, u64); 3] {
    let load = |counter: Option<&AtomicU64>| counter.map_or(0, |counter| counter.load(Relaxed));
    [
        (
            "gateway_access_log_lines_total",
            "Access log lines written.",
            load(log.map(|log| &*log.written)),
        ),
        (
            "gateway_access_log_dropped_total",
            "Access log lines dropped because the writer was behind (calls never wait for it).",
            log.map_or(0, |log| log.outbox.dropped()),
        ),
        (
            "gateway_access_log_write_errors_total",
            "Failed writes to the access log's file or standard output.",
            load(log.map(|log| &*log.write_errors)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trace_ids_from_traceparent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        assert_eq!(
            trace_id(&headers).as_ref().map(|id| &id[..]),
            Some(&b"4bf92f3577b34da6a3ce929d0e0e4736"[..])
        );
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static("00-XYZ-00f067aa0ba902b7-01"),
        );
        assert_eq!(trace_id(&headers), None);
    }

    #[test]
    fn durations_are_exact_decimal_seconds() {
        let seconds = |duration| {
            let mut out = Vec::new();
            push_seconds(&mut out, duration);
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(seconds(Duration::ZERO), "0.0");
        assert_eq!(seconds(Duration::from_secs(2)), "2.0");
        assert_eq!(seconds(Duration::from_micros(1_500)), "0.0015");
        assert_eq!(seconds(Duration::from_nanos(1)), "0.000000001");
        assert_eq!(seconds(Duration::new(61, 123_456_789)), "61.123456789");
        assert_eq!(
            seconds(Duration::new(u64::MAX, 100)),
            "18446744073709551615.0000001"
        );
    }

    #[test]
    fn a_line_is_json_with_every_field_and_escapes_what_it_quotes() {
        let full = Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            peer: Some("[2001:db8::1]:40000".parse().expect("addr")),
            protocol: Protocol::GrpcWeb,
            trace_id: Some(*b"4bf92f3577b34da6a3ce929d0e0e4736"),
            route: Some(Arc::new(RouteMetrics::new("/shop.Shop/Get".into()))),
            identity: Some(Arc::from("team \"a\"\\ops\n")),
            // Names from the config are escaped once, when they are made.
            upstream: Some(Arc::new(UpstreamMetrics::new("shop \"eu\"".into()))),
            attempt: Some(Attempt {
                endpoint: EndpointName::new(&"http://10.0.0.5:50051".parse().expect("uri")),
                retries: 2,
            }),
            http_status: 200,
            code: Some(5),
            duration: Duration::from_micros(1_500),
            request_bytes: 12,
            response_bytes: u64::MAX,
        };
        let mut line = Vec::new();
        full.write_json(&mut line, &mut LineMemos::default());
        let json: serde_json::Value = serde_json::from_slice(&line).expect("one JSON object");
        assert_eq!(
            json,
            serde_json::json!({
                "time": "2023-11-14T22:13:20.123456Z",
                "peer": "[2001:db8::1]:40000",
                "identity": "team \"a\"\\ops\n",
                "protocol": "grpc-web",
                "route": "/shop.Shop/Get",
                "upstream": "shop \"eu\"",
                "endpoint": "http://10.0.0.5:50051/",
                "http_status": 200,
                "grpc_status": "NOT_FOUND",
                "duration_seconds": 0.0015,
                "request_bytes": 12,
                "response_bytes": u64::MAX,
                "retries": 2,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            })
        );

        let bare = Entry {
            peer: None,
            trace_id: None,
            route: None,
            identity: None,
            upstream: None,
            attempt: None,
            code: None,
            ..full
        };
        line.clear();
        bare.write_json(&mut line, &mut LineMemos::default());
        let json: serde_json::Value = serde_json::from_slice(&line).expect("one JSON object");
        for field in [
            "peer",
            "identity",
            "route",
            "upstream",
            "endpoint",
            "grpc_status",
            "trace_id",
        ] {
            assert_eq!(json[field], serde_json::Value::Null, "{field}");
        }
        assert_eq!(json["retries"], 0);
    }

    #[test]
    fn a_full_outbox_drops_and_counts_instead_of_waiting() {
        // No writer drains this outbox: the second entry finds it full.
        let log = AccessLog {
            config: AccessLogConfig::default(),
            outbox: Arc::new(Outbox::new(1)),
            seen: AtomicU64::new(0),
            written: Arc::default(),
            write_errors: Arc::default(),
            writer: None,
        };
        let headers = HeaderMap::new();
        for _ in 0..3 {
            let entry = log
                .begin(Protocol::Grpc, None, &headers, None)
                .expect("sampled");
            log.finish(entry, Some(0), Duration::from_millis(1), (0, 0));
        }
        let dropped = counters(Some(&log))[1];
        assert_eq!(dropped.0, "gateway_access_log_dropped_total");
        assert_eq!(dropped.2, 2);
    }

    #[test]
    fn samples_the_configured_share() {
        let config = AccessLogConfig {
            sample: 0.25,
            ..AccessLogConfig::default()
        };
        let log = AccessLog {
            config,
            outbox: Arc::new(Outbox::new(1)),
            seen: AtomicU64::new(0),
            written: Arc::default(),
            write_errors: Arc::default(),
            writer: None,
        };
        let headers = HeaderMap::new();
        let kept = (0..1000)
            .filter(|_| log.begin(Protocol::Grpc, None, &headers, None).is_some())
            .count();
        assert!((240..=260).contains(&kept), "{kept}");
    }
}
