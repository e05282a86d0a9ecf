//! The recording side of [`super`]: W3C trace context in and out, and the spans of one call,
//! handed as plain records to an [`Outbox`] that [`super::otlp`] exports in batches.
//!
//! This is not the OpenTelemetry SDK, by measurement: with the SDK's tracer, a batch processor
//! and the OTLP exporter, tracing every call (two spans each) cost the gateway 30–45% of its
//! throughput, in per-span objects, attribute strings and a channel send per span. A span here
//! is one record of what the call already knows (ids, times, status, byte counts); its
//! attributes are written once, straight into the OTLP protobuf, on the exporter's task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue};
use tokio::sync::{Notify, oneshot};

use super::otlp::{self, Exporter};
use crate::access_log::Protocol;
use crate::config::TracingConfig;
use crate::outbox::{Outbox, Pushed};
use crate::text::EndpointName;
use crate::trace::{TRACEPARENT, TRACESTATE};

/// The gateway's tracer: one per `[tracing]` config, kept across reloads that leave it alone.
#[derive(Debug)]
pub(crate) struct Tracing {
    config: TracingConfig,
    recorder: Arc<Recorder>,
    exporter: Exporter,
    /// Tells the export task to send what is left and end (on drop).
    stop: Option<oneshot::Sender<()>>,
}

/// What the spans of calls go to: shared by the tracer and every open span.
#[derive(Debug)]
pub(super) struct Recorder {
    pub(super) outbox: Outbox<SpanRecord>,
    /// Wakes the export task when a batch (512 spans) is waiting.
    pub(super) ready: Notify,
    /// New traces are sampled when the low 63 bits of their id fall under this bound.
    sample_below: u64,
}

impl Recorder {
    fn record(&self, span: SpanRecord) {
        if self.outbox.push(span) == Pushed::Wake {
            self.ready.notify_one();
        }
    }
}

impl Tracing {
    /// Starts the export task of `config` (it connects lazily: an unreachable collector only
    /// loses spans). Must run inside the tokio runtime, which carries the exports.
    pub(crate) fn start(config: &TracingConfig) -> Result<Tracing, String> {
        let exporter = Exporter::new(config)?;
        let ratio = config.sampling_ratio.clamp(0.0, 1.0);
        let recorder = Arc::new(Recorder {
            outbox: Outbox::new(config.max_queue),
            ready: Notify::new(),
            // As OpenTelemetry's TraceIdRatioBased sampler: 63 bits of the id against the ratio.
            sample_below: (ratio * (1u64 << 63) as f64) as u64,
        });
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(otlp::export_loop(
            exporter.clone(),
            recorder.clone(),
            config.export_interval,
            stopped,
        ));
        Ok(Tracing {
            config: config.clone(),
            recorder,
            exporter,
            stop: Some(stop),
        })
    }

    /// The config this tracer was started with.
    pub(crate) fn config(&self) -> &TracingConfig {
        &self.config
    }

    /// Finished spans dropped because the export queue was full.
    pub(crate) fn dropped_spans(&self) -> u64 {
        self.recorder.outbox.dropped()
    }

    /// Exports the spans still waiting (bounded by the export timeout).
    pub(crate) async fn flush(&self) {
        let mut batch = Vec::new();
        self.recorder.outbox.drain_into(&mut batch);
        self.exporter
            .export(&batch, &mut otlp::Repeated::default())
            .await;
    }

    /// Opens the server span of a call: a child of the client's `traceparent` when it sent a
    /// valid one, else the root of a new trace.
    pub(crate) fn server(
        &self,
        headers: &HeaderMap,
        protocol: Protocol,
        path: &str,
        peer: Option<SocketAddr>,
    ) -> CallTrace {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|value| parse_traceparent(value.as_bytes()));
        let (trace_id, parent_span_id, sampled) = match parent {
            Some(parent) => (parent.trace_id, Some(parent.span_id), parent.sampled),
            None => {
                let trace_id = new_trace_id();
                let low = u64::from_be_bytes(trace_id[8..].try_into().unwrap_or_default());
                (trace_id, None, (low >> 1) < self.recorder.sample_below)
            }
        };
        // A `tracestate` only means something next to the `traceparent` it came with.
        let trace_state = parent
            .and_then(|_| headers.get(TRACESTATE))
            .filter(|value| !value.is_empty())
            .cloned();
        CallTrace(Arc::new(ServerSpan {
            recorder: self.recorder.clone(),
            context: SpanContext {
                trace_id,
                span_id: new_span_id(),
                sampled,
            },
            parent_span_id,
            trace_state,
            start: SystemTime::now(),
            protocol,
            peer,
            state: Mutex::new(ServerState {
                name: Arc::from(span_name(path)),
                route: None,
                ended: false,
            }),
        }))
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The ids a `traceparent` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpanContext {
    pub(super) trace_id: [u8; 16],
    pub(super) span_id: [u8; 8],
    pub(super) sampled: bool,
}

/// A W3C `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>` (a later version may add fields after
/// another dash). Ids of all zeros, upper-case hex and version `ff` are invalid.
fn parse_traceparent(value: &[u8]) -> Option<SpanContext> {
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let version = hex_byte(&value[0..2])?;
    let length_fits = match version {
        0 => value.len() == 55,
        0xff => false,
        _ => value.len() == 55 || value[55] == b'-',
    };
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    for (byte, pair) in trace_id.iter_mut().zip(value[3..35].chunks_exact(2)) {
        *byte = hex_byte(pair)?;
    }
    for (byte, pair) in span_id.iter_mut().zip(value[36..52].chunks_exact(2)) {
        *byte = hex_byte(pair)?;
    }
    let flags = hex_byte(&value[53..55])?;
    (length_fits && trace_id != [0; 16] && span_id != [0; 8]).then_some(SpanContext {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(pair[0])? << 4 | digit(pair[1])?)
}

/// Writes `bytes` as lower-case hex into `out` (twice as long).
fn write_hex(bytes: &[u8], out: &mut [u8]) {
    // Both digits of a byte in one lookup (two per byte was about 300 instructions a call).
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0u8; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
            byte += 1;
        }
        pairs
    };
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair.copy_from_slice(&PAIRS[usize::from(*byte)]);
    }
}

/// The `traceparent` that names `context` (version 00); `index`: whether HPACK may keep it in
/// the connection's table.
fn traceparent(context: &SpanContext, index: bool) -> HeaderValue {
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    write_hex(&context.trace_id, &mut text[3..35]);
    write_hex(&context.span_id, &mut text[36..52]);
    text[54] = if context.sampled { b'1' } else { b'0' };
    let mut value = HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
    // A new value on every call: HPACK must not index it, or each call evicts entries of the
    // upstream connection's table that the next calls would reuse (callgrind: ~4,700
    // instructions a call spent re-indexing). The pool has the first of each upstream
    // connection indexed, so that later ones refer to its name (`pool::TraceparentIndexing`).
    value.set_sensitive(!index);
    value
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..).to_be_bytes();
        if id != [0; 16] {
            return id;
        }
    }
}

fn new_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..).to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

/// One finished span, as the exporter writes it.
#[derive(Debug)]
pub(super) struct SpanRecord {
    pub(super) trace_id: [u8; 16],
    pub(super) span_id: [u8; 8],
    pub(super) parent_span_id: Option<[u8; 8]>,
    pub(super) trace_state: Option<HeaderValue>,
    pub(super) name: Arc<str>,
    pub(super) start: SystemTime,
    pub(super) end: SystemTime,
    pub(super) kind: SpanKind,
}

/// What a span says besides its ids and times.
#[derive(Debug)]
pub(super) enum SpanKind {
    /// The gateway's span of a client's call.
    Server {
        protocol: Protocol,
        peer: Option<SocketAddr>,
        route: Option<Arc<str>>,
        code: Option<u16>,
        http_status: Option<u16>,
        bytes_in: u64,
        bytes_out: u64,
    },
    /// One upstream attempt of a call.
    Client {
        upstream: Arc<str>,
        endpoint: Arc<EndpointName>,
        attempt: u32,
        /// The upstream's answer, or why the attempt failed.
        outcome: AttemptOutcome,
    },
}

/// How an upstream attempt ended.
#[derive(Debug)]
pub(super) enum AttemptOutcome {
    /// Answered: the call's grpc-status and HTTP status, and the response's bytes.
    Answered {
        code: Option<u16>,
        http_status: Option<u16>,
        bytes_out: u64,
    },
    /// No response (refused, connection lost).
    Failed(String),
    /// Dropped before the call ended (the client went away).
    Unfinished,
}

/// The server span of one call, carried in the request's extensions to the pool (which opens
/// a client span per attempt under it) and to the end of the response. Clones share the span;
/// the first [`CallTrace::finish`] ends it (or the last drop, unfinished).
#[derive(Debug, Clone)]
pub(crate) struct CallTrace(Arc<ServerSpan>);

#[derive(Debug)]
struct ServerSpan {
    recorder: Arc<Recorder>,
    context: SpanContext,
    parent_span_id: Option<[u8; 8]>,
    trace_state: Option<HeaderValue>,
    start: SystemTime,
    protocol: Protocol,
    peer: Option<SocketAddr>,
    state: Mutex<ServerState>,
}

/// What changes while a call runs: a REST call is renamed to its RPC once routed.
#[derive(Debug)]
struct ServerState {
    name: Arc<str>,
    route: Option<Arc<str>>,
    ended: bool,
}

impl ServerSpan {
    fn state(&self) -> std::sync::MutexGuard<'_, ServerState> {
        // Each change is one assignment: a poisoned lock holds a whole state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the span, ended at `end`, unless it already ended (or its trace is not sampled).
    fn end(&self, code: Option<u16>, http_status: Option<u16>, bytes: (u64, u64), end: SystemTime) {
        let (name, route) = {
            let mut state = self.state();
            if std::mem::replace(&mut state.ended, true) || !self.context.sampled {
                return;
            }
            (state.name.clone(), state.route.take())
        };
        self.recorder.record(SpanRecord {
            trace_id: self.context.trace_id,
            span_id: self.context.span_id,
            parent_span_id: self.parent_span_id,
            trace_state: self.trace_state.clone(),
            name,
            start: self.start,
            end,
            kind: SpanKind::Server {
                protocol: self.protocol,
                peer: self.peer,
                route,
                code,
                http_status,
                bytes_in: bytes.0,
                bytes_out: bytes.1,
            },
        });
    }
}

impl Drop for ServerSpan {
    fn drop(&mut self) {
        // A call dropped before it finished (the client went away) still shows up. The clock
        // is read only then: a finished span's drop is every call's.
        if !self.state().ended {
            self.end(None, None, (0, 0), SystemTime::now());
        }
    }
}

impl CallTrace {
    /// The trace's id as 32 lowercase hex digits, as the access log writes it.
    pub(crate) fn trace_id_hex(&self) -> [u8; 32] {
        let mut hex = [b'0'; 32];
        write_hex(&self.0.context.trace_id, &mut hex);
        hex
    }

    /// Names the route the call matched (`gateway.route`, the label of `/metrics`).
    pub(crate) fn route(&self, route: &Arc<str>) {
        self.0.state().route = Some(route.clone());
    }

    /// Names the RPC a REST call became (its route's gRPC path): the span's name, `rpc.*`
    /// attributes and `gateway.route`, and the name of its client spans.
    pub(crate) fn rpc(self, path: &Arc<str>) -> CallTrace {
        {
            let mut state = self.0.state();
            state.name = Arc::from(span_name(path));
            state.route = Some(path.clone());
        }
        self
    }

    /// Opens the client span of one upstream attempt (`attempt` counts from 1) and puts its
    /// context in the request's `traceparent` (and the client's `tracestate`); `index_header`:
    /// whether HPACK may index that `traceparent` (the pool asks for it now and then).
    pub(crate) fn attempt(
        &self,
        headers: &mut HeaderMap,
        upstream: &Arc<str>,
        endpoint: &Arc<EndpointName>,
        attempt: u32,
        index_header: bool,
    ) -> AttemptSpan {
        let server = &self.0;
        let context = SpanContext {
            span_id: new_span_id(),
            ..server.context
        };
        headers.insert(TRACEPARENT, traceparent(&context, index_header));
        match &server.trace_state {
            Some(state) => headers.insert(TRACESTATE, state.clone()),
            None => headers.remove(TRACESTATE),
        };
        AttemptSpan(Arc::new(ClientSpan {
            recorder: server.recorder.clone(),
            context,
            parent_span_id: server.context.span_id,
            trace_state: server.trace_state.clone(),
            name: server.state().name.clone(),
            start: SystemTime::now(),
            upstream: upstream.clone(),
            endpoint: endpoint.clone(),
            attempt,
            ended: AtomicBool::new(false),
        }))
    }

    /// Ends the call's spans: the last attempt's (when one was answered) and the server span,
    /// with the call's grpc-status (`None`: not known, e.g. a REST call's HTTP status only),
    /// its HTTP status and its bytes in and out.
    pub(crate) fn finish(
        self,
        code: Option<u16>,
        http_status: Option<u16>,
        bytes: (u64, u64),
        attempt: Option<AttemptSpan>,
    ) {
        // Both end now: one reading of the clock.
        let now = SystemTime::now();
        if let Some(attempt) = attempt {
            attempt.0.end(
                AttemptOutcome::Answered {
                    code,
                    http_status,
                    bytes_out: bytes.1,
                },
                now,
            );
        }
        self.0.end(code, http_status, bytes, now);
    }
}

/// The client span of one upstream attempt. Clones share the span; the first end counts.
#[derive(Debug, Clone)]
pub(crate) struct AttemptSpan(Arc<ClientSpan>);

#[derive(Debug)]
struct ClientSpan {
    recorder: Arc<Recorder>,
    context: SpanContext,
    parent_span_id: [u8; 8],
    trace_state: Option<HeaderValue>,
    name: Arc<str>,
    start: SystemTime,
    upstream: Arc<str>,
    endpoint: Arc<EndpointName>,
    attempt: u32,
    ended: AtomicBool,
}

impl ClientSpan {
    fn end(&self, outcome: AttemptOutcome, end: SystemTime) {
        if self.ended.swap(true, Relaxed) || !self.context.sampled {
            return;
        }
        self.recorder.record(SpanRecord {
            trace_id: self.context.trace_id,
            span_id: self.context.span_id,
            parent_span_id: Some(self.parent_span_id),
            trace_state: self.trace_state.clone(),
            name: self.name.clone(),
            start: self.start,
            end,
            kind: SpanKind::Client {
                upstream: self.upstream.clone(),
                endpoint: self.endpoint.clone(),
                attempt: self.attempt,
                outcome,
            },
        });
    }
}

impl Drop for ClientSpan {
    fn drop(&mut self) {
        // The clock is read only for an attempt that did not end: every call drops one that did.
        if !self.ended.load(Relaxed) {
            self.end(AttemptOutcome::Unfinished, SystemTime::now());
        }
    }
}

impl AttemptSpan {
    /// Ends an attempt that got no response (refused, connection lost: the call may go again).
    pub(crate) fn failed(self, error: &dyn std::fmt::Display) {
        self.0
            .end(AttemptOutcome::Failed(error.to_string()), SystemTime::now());
    }
}

/// `pkg.Service/Method`, the name OpenTelemetry gives an RPC's spans.
fn span_name(path: &str) -> &str {
    path.strip_prefix('/').unwrap_or(path)
}

/// How long a span lasted, for tests.
#[cfg(test)]
pub(super) fn duration(span: &SpanRecord) -> std::time::Duration {
    span.end.duration_since(span.start).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_and_print_per_w3c() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse_traceparent(text.as_bytes()).expect("valid");
        assert!(context.sampled);
        assert_eq!(context.span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
        assert_eq!(traceparent(&context, false).as_bytes(), text.as_bytes());
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(
            !parse_traceparent(unsampled.as_bytes())
                .expect("valid")
                .sampled
        );
        // A later version may carry more fields; version 00 may not.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert!(parse_traceparent(later.as_bytes()).is_some());
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
    }

    fn tracer(sampling_ratio: f64) -> Tracing {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _entered = runtime.enter();
        Tracing::start(&TracingConfig {
            enabled: true,
            sampling_ratio,
            ..TracingConfig::default()
        })
        .expect("tracer")
    }

    fn recorded(tracing: &Tracing) -> Vec<SpanRecord> {
        let mut batch = Vec::new();
        tracing.recorder.outbox.drain_into(&mut batch);
        batch
    }

    #[test]
    fn a_call_records_its_server_and_attempt_spans_under_the_clients_parent() {
        let tracing = tracer(0.0);
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
        let call = tracing.server(&headers, Protocol::Rest, "/v1/items/7", None);
        assert_eq!(&call.trace_id_hex(), b"4bf92f3577b34da6a3ce929d0e0e4736");
        let call = call.rpc(&Arc::from("/shop.Shop/GetItem"));
        let mut upstream = HeaderMap::new();
        let endpoint = EndpointName::new(&"http://127.0.0.1:9".parse().expect("uri"));
        let shop: Arc<str> = Arc::from("shop");
        let first = call.attempt(&mut upstream, &shop, &endpoint, 1, false);
        first.failed(&"refused");
        let second = call.attempt(&mut upstream, &shop, &endpoint, 2, true);
        // The pool asked for this one to be indexed (HPACK keeps the name for the next ones).
        assert!(!upstream["traceparent"].is_sensitive());
        let sent = parse_traceparent(upstream["traceparent"].as_bytes()).expect("sent");
        assert_eq!(sent.trace_id, call.0.context.trace_id);
        assert_eq!(sent.span_id, second.0.context.span_id);
        assert_eq!(upstream["tracestate"], "vendor=1");
        // A clone of the attempt ended twice still makes one span.
        second
            .clone()
            .0
            .end(AttemptOutcome::Unfinished, SystemTime::now());
        call.finish(Some(0), Some(200), (3, 5), Some(second));
        let spans = recorded(&tracing);
        assert_eq!(spans.len(), 3, "{spans:#?}");
        let server = spans.last().expect("server span");
        assert_eq!(&*server.name, "shop.Shop/GetItem");
        assert_eq!(
            server.parent_span_id,
            Some(0x00f067aa0ba902b7u64.to_be_bytes())
        );
        for client in &spans[..2] {
            assert_eq!(client.parent_span_id, Some(server.span_id));
            assert_eq!(&*client.name, "shop.Shop/GetItem");
        }
        assert!(duration(server) >= duration(&spans[0]));
    }

    #[test]
    fn new_traces_follow_the_ratio_and_unsampled_ones_record_nothing() {
        let never = tracer(0.0);
        let call = never.server(&HeaderMap::new(), Protocol::Grpc, "/a.B/C", None);
        let mut upstream = HeaderMap::new();
        let endpoint = EndpointName::new(&"http://127.0.0.1:9".parse().expect("uri"));
        let attempt = call.attempt(&mut upstream, &Arc::from("a"), &endpoint, 1, false);
        assert!(upstream["traceparent"].as_bytes().ends_with(b"-00"));
        // Not asked to be indexed: never-indexed in HPACK.
        assert!(upstream["traceparent"].is_sensitive());
        call.finish(Some(0), None, (0, 0), Some(attempt));
        assert!(recorded(&never).is_empty());

        let always = tracer(1.0);
        let call = always.server(&HeaderMap::new(), Protocol::Grpc, "/a.B/C", None);
        drop(call);
        let spans = recorded(&always);
        assert_eq!(spans.len(), 1, "a dropped call still ends its span");
        assert_eq!(spans[0].parent_span_id, None);
    }
}
