//! OTLP/gRPC export of [`SpanRecord`]s: `opentelemetry.proto.collector.trace.v1.TraceService/
//! Export`, with the request written by prost's field encoders straight from the records (no
//! intermediate message structs: the attribute strings are written once, never allocated).
//! The tests decode what this writes with the `opentelemetry-proto` crate's types.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prost::encoding::{WireType, encoded_len_varint};
use tokio::sync::oneshot;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tower::{Service, ServiceExt};

use super::otel::{AttemptOutcome, Recorder, SpanKind, SpanRecord};
use crate::config::TracingConfig;
use crate::text::Memo;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The instrumentation scope the gateway's spans are recorded under.
const SCOPE_NAME: &str = "tonic-msgpack-gateway";

/// Sends encoded export requests to the collector.
#[derive(Debug, Clone)]
pub(super) struct Exporter {
    channel: Channel,
    timeout: Duration,
    /// The `service.name` resource attribute.
    service_name: Arc<str>,
}

impl Exporter {
    /// A lazily connecting client of `config`'s collector (must run inside a tokio runtime).
    pub(super) fn new(config: &TracingConfig) -> Result<Exporter, String> {
        let mut endpoint = Endpoint::from_shared(config.otlp_endpoint.clone())
            .map_err(|err| format!("`{}` is not a URI: {err}", config.otlp_endpoint))?
            .connect_timeout(config.export_timeout)
            .timeout(config.export_timeout);
        if endpoint.uri().scheme_str() == Some("https") {
            // A collector with a certificate of a public CA (the Mozilla roots of webpki-roots).
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|err| format!("cannot set up TLS to the collector: {err}"))?;
        }
        Ok(Exporter {
            channel: endpoint.connect_lazy(),
            timeout: config.export_timeout,
            service_name: Arc::from(config.service_name.as_str()),
        })
    }

    /// Sends `spans` in one request; a failure loses them (and is logged at debug level: an
    /// unreachable collector must not flood the gateway's own log).
    pub(super) async fn export(&self, spans: &[SpanRecord], repeated: &mut Repeated) {
        if spans.is_empty() {
            return;
        }
        let frame = encode_frame(&self.service_name, spans, repeated);
        match tokio::time::timeout(self.timeout, self.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                tracing::debug!("trace export of {} spans failed: {reason}", spans.len())
            }
            Err(_) => tracing::debug!("trace export of {} spans timed out", spans.len()),
        }
    }

    /// One `Export` call of an encoded gRPC frame. The frame goes to the connection as it is:
    /// tonic's client would copy it into a buffer of its own first (callgrind: about 650
    /// instructions per traced call).
    async fn send(&self, frame: Bytes) -> Result<(), String> {
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(EXPORT_PATH)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(tonic::body::Body::new(Full::new(frame)))
            .map_err(|err| err.to_string())?;
        let mut channel = self.channel.clone();
        let response = channel
            .ready()
            .await
            .map_err(|err| crate::text::error_chain(&err))?
            .call(request)
            .await
            .map_err(|err| crate::text::error_chain(&err))?;
        if response.status() != http::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status()));
        }
        // A trailers-only answer has grpc-status in its headers; otherwise the trailers do.
        let status = match tonic::Status::from_header_map(response.headers()) {
            Some(status) => status,
            None => {
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|err| err.to_string())?;
                body.trailers()
                    .and_then(tonic::Status::from_header_map)
                    .ok_or("the collector's answer has no grpc-status")?
            }
        };
        match status.code() {
            tonic::Code::Ok => Ok(()),
            code => Err(format!("{code:?}: {}", status.message())),
        }
    }
}

/// Exports what the recorder queued every `interval`, or sooner when 512 spans are waiting,
/// until `stop` fires (then once more, for what is left).
pub(super) async fn export_loop(
    exporter: Exporter,
    recorder: Arc<Recorder>,
    interval: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::new();
    let mut repeated = Repeated::default();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last_round = tokio::select! {
            _ = ticks.tick() => false,
            () = recorder.ready.notified() => false,
            _ = &mut stop => true,
        };
        recorder.outbox.drain_into(&mut batch);
        exporter.export(&batch, &mut repeated).await;
        batch.clear();
        if last_round {
            return;
        }
    }
}

// Field numbers of opentelemetry/proto/{collector/trace,trace,common,resource}/v1/*.proto.
mod field {
    pub(super) const REQUEST_RESOURCE_SPANS: u32 = 1;
    pub(super) const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub(super) const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub(super) const RESOURCE_ATTRIBUTES: u32 = 1;
    pub(super) const SCOPE_SPANS_SCOPE: u32 = 1;
    pub(super) const SCOPE_SPANS_SPANS: u32 = 2;
    pub(super) const SCOPE_NAME: u32 = 1;
    pub(super) const SPAN_TRACE_ID: u32 = 1;
    pub(super) const SPAN_SPAN_ID: u32 = 2;
    pub(super) const SPAN_TRACE_STATE: u32 = 3;
    pub(super) const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub(super) const SPAN_NAME: u32 = 5;
    pub(super) const SPAN_KIND: u32 = 6;
    pub(super) const SPAN_START: u32 = 7;
    pub(super) const SPAN_END: u32 = 8;
    pub(super) const SPAN_ATTRIBUTES: u32 = 9;
    pub(super) const SPAN_STATUS: u32 = 15;
    pub(super) const SPAN_FLAGS: u32 = 16;
    pub(super) const STATUS_MESSAGE: u32 = 2;
    pub(super) const STATUS_CODE: u32 = 3;
    pub(super) const KEY_VALUE_KEY: u32 = 1;
    pub(super) const KEY_VALUE_VALUE: u32 = 2;
    pub(super) const ANY_VALUE_STRING: u32 = 1;
    pub(super) const ANY_VALUE_INT: u32 = 3;
}

const SPAN_KIND_SERVER: u64 = 2;
const SPAN_KIND_CLIENT: u64 = 3;
const STATUS_CODE_ERROR: u64 = 2;
/// `SPAN_FLAGS_TRACE_FLAGS_MASK`'s sampled bit.
const FLAG_SAMPLED: u32 = 1;

/// gRPC's message prefix: the compression flag and the big-endian length.
const FRAME_HEADER: usize = 5;

/// An `ExportTraceServiceRequest` of `spans`, all under one resource and scope, as one gRPC
/// message frame.
///
/// Everything is written once, into one buffer: the spans in place, and what goes in front of
/// them (whose lengths are known once the spans are written) into room kept for it. The
/// frame is a slice of that buffer.
pub(super) fn encode_frame(
    service_name: &str,
    spans: &[SpanRecord],
    repeated: &mut Repeated,
) -> Bytes {
    let mut scope = Vec::new();
    string(&mut scope, field::SCOPE_NAME, SCOPE_NAME);
    let mut resource = Vec::new();
    attribute_str(
        &mut resource,
        field::RESOURCE_ATTRIBUTES,
        key!("service.name"),
        service_name,
    );
    // The frame header; the request's and the resource spans' keys and lengths (at most 11
    // bytes each); the resource and the scope.
    let room = FRAME_HEADER + 2 * 11 + delimited_len(resource.len()) + delimited_len(scope.len());
    let mut out = Vec::with_capacity(room + spans.len() * SPAN_SIZE_GUESS);
    out.resize(room, 0);
    let mut text = Vec::new();
    for record in spans {
        nested_in_place(&mut out, field::SCOPE_SPANS_SPANS, |out| {
            encode_span(record, out, &mut text, repeated)
        });
    }
    let scope_spans = delimited_len(scope.len()) + (out.len() - room);
    let resource_spans = delimited_len(resource.len()) + delimited_len(scope_spans);
    let message = delimited_len(resource_spans);
    let mut head = Vec::with_capacity(room);
    head.push(0);
    // A batch is at most `max_queue` spans of a few hundred bytes.
    head.extend_from_slice(&u32::try_from(message).unwrap_or(u32::MAX).to_be_bytes());
    put_key(
        &mut head,
        field::REQUEST_RESOURCE_SPANS,
        WireType::LengthDelimited,
    );
    put_varint(&mut head, resource_spans as u64);
    bytes_field(&mut head, field::RESOURCE_SPANS_RESOURCE, &resource);
    put_key(
        &mut head,
        field::RESOURCE_SPANS_SCOPE_SPANS,
        WireType::LengthDelimited,
    );
    put_varint(&mut head, scope_spans as u64);
    bytes_field(&mut head, field::SCOPE_SPANS_SCOPE, &scope);
    let start = room - head.len();
    out[start..room].copy_from_slice(&head);
    Bytes::from(out).slice(start..)
}

/// What a span usually takes encoded (a server span with a route and a client address is
/// about 400 bytes), so that a batch's buffer rarely grows.
const SPAN_SIZE_GUESS: usize = 512;

/// The attributes that are the same for every span of a route (server spans) or of an
/// upstream endpoint (client spans), encoded once and copied after: written attribute by
/// attribute they were about 600 instructions of each span (callgrind), a lookup and a copy
/// about 150. Kept by the export task across batches.
#[derive(Debug, Default)]
pub(super) struct Repeated {
    /// Encoded runs, by the parts they are made of (see [`Repeated::append`]).
    runs: HashMap<Vec<u8>, Vec<u8>, foldhash::fast::RandomState>,
    /// The key being looked up, its buffer reused.
    key: Vec<u8>,
    /// The last key and run of each kind of span ([`RunKind`]): consecutive spans of a kind
    /// mostly share their run, found then without hashing the key.
    last: [(Vec<u8>, Vec<u8>); 2],
    /// The text of the last client address (`client.address`).
    client_address: Memo<IpAddr>,
}

/// Which spans a run of attributes belongs to.
#[derive(Debug, Clone, Copy)]
enum RunKind {
    Server = 0,
    Client = 1,
}

impl Repeated {
    /// Span names come from clients' paths (under a prefix route, any method name): the
    /// table is emptied when it reaches this many runs, and runs of longer names are not
    /// kept, so no client can grow it past about a megabyte.
    const MAX_RUNS: usize = 1024;
    const MAX_KEY: usize = 256;

    /// Appends the run of attributes that `parts` identify (joined with 0xff, a byte no UTF-8
    /// text contains), encoding it with `write` the first time.
    fn append(
        &mut self,
        out: &mut Vec<u8>,
        kind: RunKind,
        parts: &[&[u8]],
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        if parts.iter().map(|part| part.len() + 1).sum::<usize>() > Self::MAX_KEY {
            write(out);
            return;
        }
        self.key.clear();
        for part in parts {
            self.key.extend_from_slice(part);
            self.key.push(0xff);
        }
        let (last_key, last_run) = &mut self.last[kind as usize];
        if *last_key == self.key {
            out.extend_from_slice(last_run);
            return;
        }
        let start = out.len();
        match self.runs.get(&self.key[..]) {
            Some(run) => out.extend_from_slice(run),
            None => {
                write(out);
                if self.runs.len() >= Self::MAX_RUNS {
                    self.runs.clear();
                }
                self.runs.insert(self.key.clone(), out[start..].to_vec());
            }
        }
        last_key.clone_from(&self.key);
        last_run.clear();
        last_run.extend_from_slice(&out[start..]);
    }
}

fn encode_span(
    record: &SpanRecord,
    out: &mut Vec<u8>,
    text: &mut Vec<u8>,
    repeated: &mut Repeated,
) {
    id_field(out, field::SPAN_TRACE_ID, &record.trace_id);
    id_field(out, field::SPAN_SPAN_ID, &record.span_id);
    if let Some(state) = &record.trace_state {
        bytes_field(out, field::SPAN_TRACE_STATE, state.as_bytes());
    }
    if let Some(parent) = &record.parent_span_id {
        id_field(out, field::SPAN_PARENT_SPAN_ID, parent);
    }
    string(out, field::SPAN_NAME, &record.name);
    let kind = match record.kind {
        SpanKind::Server { .. } => SPAN_KIND_SERVER,
        SpanKind::Client { .. } => SPAN_KIND_CLIENT,
    };
    varint(out, field::SPAN_KIND, kind);
    fixed64(out, field::SPAN_START, unix_nanos(record.start));
    fixed64(out, field::SPAN_END, unix_nanos(record.end));
    let attr = field::SPAN_ATTRIBUTES;
    let error: Option<&[u8]> = match &record.kind {
        SpanKind::Server {
            protocol,
            peer,
            route,
            code,
            http_status,
            bytes_in,
            bytes_out,
        } => {
            let route = route.as_deref();
            let parts = [
                protocol.name().as_bytes(),
                record.name.as_bytes(),
                // No route: a byte no route (UTF-8) has, so it differs from every route.
                route.map_or(&[0xfe][..], str::as_bytes),
            ];
            repeated.append(out, RunKind::Server, &parts, |out| {
                let (service, method) = service_and_method(&record.name);
                attribute_str(out, attr, key!("rpc.system"), "grpc");
                attribute_str(out, attr, key!("rpc.service"), service);
                attribute_str(out, attr, key!("rpc.method"), method);
                attribute_str(out, attr, key!("gateway.protocol"), protocol.name());
                if let Some(route) = route {
                    attribute_str(out, attr, key!("gateway.route"), route);
                }
            });
            if let Some(peer) = peer {
                let address = repeated
                    .client_address
                    .text(peer.ip(), crate::text::push_ip);
                attribute_bytes(out, attr, key!("client.address"), address);
                attribute_int(out, attr, key!("client.port"), i64::from(peer.port()));
            }
            if let Some(code) = code {
                attribute_int(out, attr, key!("rpc.grpc.status_code"), i64::from(*code));
            }
            if let Some(status) = http_status {
                attribute_int(
                    out,
                    attr,
                    key!("http.response.status_code"),
                    i64::from(*status),
                );
            }
            attribute_int(out, attr, key!("http.request.body.size"), *bytes_in as i64);
            attribute_int(
                out,
                attr,
                key!("http.response.body.size"),
                *bytes_out as i64,
            );
            status_error(*code, *http_status, text).then_some(&text[..])
        }
        SpanKind::Client {
            upstream,
            endpoint,
            attempt,
            outcome,
        } => {
            let parts = [upstream.as_bytes(), endpoint.as_str().as_bytes()];
            repeated.append(out, RunKind::Client, &parts, |out| {
                attribute_str(out, attr, key!("rpc.system"), "grpc");
                attribute_str(out, attr, key!("gateway.upstream"), upstream);
                attribute_str(out, attr, key!("gateway.endpoint"), endpoint.as_str());
                if let Some(host) = endpoint.host() {
                    attribute_str(out, attr, key!("server.address"), host);
                }
                if let Some(port) = endpoint.port() {
                    attribute_int(out, attr, key!("server.port"), i64::from(port));
                }
            });
            if *attempt > 1 {
                attribute_int(
                    out,
                    attr,
                    key!("http.request.resend_count"),
                    i64::from(attempt - 1),
                );
            }
            match outcome {
                AttemptOutcome::Answered {
                    code,
                    http_status,
                    bytes_out,
                } => {
                    if let Some(code) = code {
                        attribute_int(out, attr, key!("rpc.grpc.status_code"), i64::from(*code));
                    }
                    attribute_int(
                        out,
                        attr,
                        key!("http.response.body.size"),
                        *bytes_out as i64,
                    );
                    status_error(*code, *http_status, text).then_some(&text[..])
                }
                AttemptOutcome::Failed(message) => {
                    attribute_str(out, attr, key!("error.type"), message);
                    Some(message.as_bytes())
                }
                AttemptOutcome::Unfinished => None,
            }
        }
    };
    if let Some(message) = error {
        nested_in_place(out, field::SPAN_STATUS, |status| {
            bytes_field(status, field::STATUS_MESSAGE, message);
            varint(status, field::STATUS_CODE, STATUS_CODE_ERROR);
        });
    }
    // Only sampled spans are recorded.
    put_key(out, field::SPAN_FLAGS, WireType::ThirtyTwoBit);
    out.extend_from_slice(&FLAG_SAMPLED.to_le_bytes());
}

/// Whether a span is an error, with its message in `text`: any grpc-status but OK, or an HTTP
/// status of 500 and above (OpenTelemetry's rule for server spans); unset otherwise.
fn status_error(code: Option<u16>, http_status: Option<u16>, text: &mut Vec<u8>) -> bool {
    text.clear();
    let (prefix, number) = match (code, http_status) {
        (Some(0), _) => return false,
        (Some(code), _) => (&b"grpc-status "[..], code),
        (None, Some(status)) if status >= 500 => (&b"HTTP "[..], status),
        _ => return false,
    };
    text.extend_from_slice(prefix);
    crate::text::push_u64(text, u64::from(number));
    true
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// The RPC's service and method from a span name (`pkg.Service/Method`), for attributes; the
/// whole name when it has no such shape.
fn service_and_method(name: &str) -> (&str, &str) {
    // A byte search: `split_once('/')`'s char searcher was about 170 instructions a span.
    match name.bytes().position(|byte| byte == b'/') {
        Some(at) => (&name[..at], &name[at + 1..]),
        None => (name, ""),
    }
}

/// Field `tag` of the message `write` appends, written in place. Two bytes are kept for its
/// length, which is what any length from 128 bytes to 16 KiB takes (nearly every span and
/// none of the rest); a length outside that moves the message once.
fn nested_in_place(out: &mut Vec<u8>, tag: u32, write: impl FnOnce(&mut Vec<u8>)) {
    put_key(out, tag, WireType::LengthDelimited);
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    write(out);
    let len = out.len() - at - 2;
    if (0x80..0x4000).contains(&len) {
        out[at] = (len & 0x7f) as u8 | 0x80;
        out[at + 1] = (len >> 7) as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        out.splice(at..at + 2, prefix);
    }
}

fn bytes_field(out: &mut Vec<u8>, tag: u32, payload: &[u8]) {
    put_key(out, tag, WireType::LengthDelimited);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// [`bytes_field`] of an id: its size known, the copy is a move or two instead of a call.
#[inline]
fn id_field<const N: usize>(out: &mut Vec<u8>, tag: u32, id: &[u8; N]) {
    put_key(out, tag, WireType::LengthDelimited);
    put_varint(out, N as u64);
    out.extend_from_slice(id);
}

fn string(out: &mut Vec<u8>, tag: u32, text: &str) {
    bytes_field(out, tag, text.as_bytes());
}

fn varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    put_key(out, tag, WireType::Varint);
    put_varint(out, value);
}

fn fixed64(out: &mut Vec<u8>, tag: u32, value: u64) {
    put_key(out, tag, WireType::SixtyFourBit);
    out.extend_from_slice(&value.to_le_bytes());
}

/// prost's `encode_varint`, for a `Vec` (prost's goes through `BufMut::put_u8`, which was
/// about 900 instructions of every span, callgrind): most values here take one byte.
#[inline]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field's key: its tag and wire type.
#[inline]
fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    put_varint(out, u64::from(tag << 3 | wire_type as u32));
}

/// The encoded length of a length-delimited field's key, length and payload (tags below 16).
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// An attribute's key as its `KeyValue` starts: the `key` field and the `value` field's key,
/// made at compile time by [`key!`]. Written field by field per attribute, it was about 250
/// instructions of each attribute's encoding (callgrind).
struct Key {
    bytes: [u8; Key::MAX],
    len: usize,
}

impl Key {
    const MAX: usize = 48;

    const fn new(name: &str) -> Key {
        let name = name.as_bytes();
        // Keys are short names: one length byte, and they fit the array.
        assert!(name.len() < 128 && name.len() + 3 <= Key::MAX);
        let mut bytes = [0u8; Key::MAX];
        bytes[0] = (field::KEY_VALUE_KEY << 3 | WireType::LengthDelimited as u32) as u8;
        bytes[1] = name.len() as u8;
        let mut index = 0;
        while index < name.len() {
            bytes[2 + index] = name[index];
            index += 1;
        }
        bytes[2 + name.len()] =
            (field::KEY_VALUE_VALUE << 3 | WireType::LengthDelimited as u32) as u8;
        Key {
            bytes,
            len: name.len() + 3,
        }
    }
}

/// The [`Key`] of an attribute name, made at compile time.
macro_rules! key {
    ($name:literal) => {
        const { &Key::new($name) }
    };
}
use key;

/// A `KeyValue` with a string `AnyValue`, as field `tag` (`attributes`) of the message in `out`.
fn attribute_str(out: &mut Vec<u8>, tag: u32, key: &Key, value: &str) {
    attribute_bytes(out, tag, key, value.as_bytes());
}

/// [`attribute_str`] of a value already in UTF-8 bytes.
fn attribute_bytes(out: &mut Vec<u8>, tag: u32, key: &Key, value: &[u8]) {
    key_value(out, tag, key, delimited_len(value.len()));
    bytes_field(out, field::ANY_VALUE_STRING, value);
}

/// A `KeyValue` with an int `AnyValue`, as field `tag` of the message in `out`.
fn attribute_int(out: &mut Vec<u8>, tag: u32, key: &Key, value: i64) {
    key_value(out, tag, key, 1 + encoded_len_varint(value as u64));
    varint(out, field::ANY_VALUE_INT, value as u64);
}

/// The start of a `KeyValue` whose `AnyValue` has `any_value` encoded bytes (written next).
#[inline]
fn key_value(out: &mut Vec<u8>, tag: u32, key: &Key, any_value: usize) {
    let key_value = key.len + encoded_len_varint(any_value as u64) + any_value;
    put_key(out, tag, WireType::LengthDelimited);
    put_varint(out, key_value as u64);
    // The whole array, then the length back to the key's: a copy of a known size is a few
    // moves, where one of the key's own length was a call into `memcpy`.
    let at = out.len();
    out.extend_from_slice(&key.bytes);
    out.truncate(at + key.len);
    put_varint(out, any_value as u64);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoKind;
    use prost::Message;

    use super::*;
    use crate::access_log::Protocol;

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
    }

    /// The message of a gRPC frame, its header checked.
    fn message(frame: Bytes) -> Bytes {
        assert_eq!(frame[0], 0, "uncompressed");
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        assert_eq!(len as usize, frame.len() - FRAME_HEADER);
        frame.slice(FRAME_HEADER..)
    }

    fn string_of<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
        match attribute(span, key)? {
            Value::StringValue(text) => Some(text),
            _ => None,
        }
    }

    fn int_of(span: &Span, key: &str) -> Option<i64> {
        match attribute(span, key)? {
            Value::IntValue(value) => Some(*value),
            _ => None,
        }
    }

    #[test]
    fn the_request_decodes_with_opentelemetry_protos_own_types() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001);
        let end = start + Duration::from_micros(1500);
        let peer: SocketAddr = "[::1]:40000".parse().expect("addr");
        let records = [
            SpanRecord {
                trace_id: [7; 16],
                span_id: [1; 8],
                parent_span_id: Some([9; 8]),
                trace_state: Some(http::HeaderValue::from_static("a=b")),
                name: Arc::from("shop.Shop/GetItem"),
                start,
                end,
                kind: SpanKind::Server {
                    protocol: Protocol::Rest,
                    peer: Some(peer),
                    route: Some("/shop.Shop/GetItem".into()),
                    code: Some(5),
                    http_status: Some(404),
                    bytes_in: 12,
                    bytes_out: 3_000_000_000,
                },
            },
            SpanRecord {
                trace_id: [7; 16],
                span_id: [2; 8],
                parent_span_id: Some([1; 8]),
                trace_state: None,
                name: Arc::from("shop.Shop/GetItem"),
                start,
                end,
                kind: SpanKind::Client {
                    upstream: "shop".into(),
                    endpoint: crate::text::EndpointName::new(
                        &"http://127.0.0.1:5000".parse().expect("uri"),
                    ),
                    attempt: 2,
                    outcome: AttemptOutcome::Failed("connection refused".into()),
                },
            },
        ];
        let mut repeated = Repeated::default();
        let first = encode_frame("edge", &records, &mut repeated);
        // The second batch copies the attribute runs the first one encoded: the same bytes.
        assert_eq!(repeated.runs.len(), 2);
        assert_eq!(encode_frame("edge", &records, &mut repeated), first);
        let encoded = message(first);
        let request = ExportTraceServiceRequest::decode(encoded).expect("valid protobuf");
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let resource = resource_spans.resource.as_ref().expect("resource");
        assert_eq!(resource.attributes[0].key, "service.name");
        let scope_spans = &resource_spans.scope_spans[0];
        assert_eq!(
            scope_spans.scope.as_ref().map(|scope| &*scope.name),
            Some(SCOPE_NAME)
        );
        let [server, client] = &scope_spans.spans[..] else {
            panic!("two spans: {scope_spans:#?}");
        };
        assert_eq!(server.trace_id, [7; 16]);
        assert_eq!(server.span_id, [1; 8]);
        assert_eq!(server.parent_span_id, [9; 8]);
        assert_eq!(server.trace_state, "a=b");
        assert_eq!(server.name, "shop.Shop/GetItem");
        assert_eq!(server.kind(), ProtoKind::Server);
        assert_eq!(server.start_time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(server.end_time_unix_nano, 1_700_000_000_001_500_001);
        assert_eq!(server.flags, 1);
        assert_eq!(string_of(server, "rpc.service"), Some("shop.Shop"));
        assert_eq!(string_of(server, "rpc.method"), Some("GetItem"));
        assert_eq!(string_of(server, "gateway.protocol"), Some("rest"));
        assert_eq!(string_of(server, "client.address"), Some("::1"));
        assert_eq!(int_of(server, "client.port"), Some(40000));
        assert_eq!(
            string_of(server, "gateway.route"),
            Some("/shop.Shop/GetItem")
        );
        assert_eq!(int_of(server, "rpc.grpc.status_code"), Some(5));
        assert_eq!(int_of(server, "http.response.status_code"), Some(404));
        assert_eq!(
            int_of(server, "http.response.body.size"),
            Some(3_000_000_000)
        );
        let status = server.status.as_ref().expect("status");
        assert_eq!((status.code, &*status.message), (2, "grpc-status 5"));

        assert_eq!(client.kind(), ProtoKind::Client);
        assert_eq!(client.parent_span_id, [1; 8]);
        assert_eq!(string_of(client, "gateway.upstream"), Some("shop"));
        assert_eq!(
            string_of(client, "gateway.endpoint"),
            Some("http://127.0.0.1:5000/")
        );
        assert_eq!(string_of(client, "server.address"), Some("127.0.0.1"));
        assert_eq!(int_of(client, "server.port"), Some(5000));
        assert_eq!(int_of(client, "http.request.resend_count"), Some(1));
        assert_eq!(string_of(client, "error.type"), Some("connection refused"));
        let status = client.status.as_ref().expect("status");
        assert_eq!((status.code, &*status.message), (2, "connection refused"));
    }

    #[test]
    fn collectors_are_reached_over_http_or_tls() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _entered = runtime.enter();
        for endpoint in ["http://127.0.0.1:4317", "https://otel.example:4317"] {
            let config = TracingConfig {
                otlp_endpoint: endpoint.into(),
                ..TracingConfig::default()
            };
            assert!(Exporter::new(&config).is_ok(), "{endpoint}");
        }
    }

    #[test]
    fn successful_spans_have_no_status_and_roots_no_parent() {
        let now = SystemTime::now();
        let record = SpanRecord {
            trace_id: [3; 16],
            span_id: [4; 8],
            parent_span_id: None,
            trace_state: None,
            name: Arc::from("odd"),
            start: now,
            end: now,
            kind: SpanKind::Server {
                protocol: Protocol::Grpc,
                peer: None,
                route: None,
                code: Some(0),
                http_status: None,
                bytes_in: 0,
                bytes_out: 0,
            },
        };
        let encoded = message(encode_frame(
            "edge",
            std::slice::from_ref(&record),
            &mut Repeated::default(),
        ));
        let request = ExportTraceServiceRequest::decode(encoded).expect("valid protobuf");
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert!(span.parent_span_id.is_empty());
        assert!(span.status.is_none());
        assert_eq!(string_of(span, "rpc.service"), Some("odd"));
        assert_eq!(string_of(span, "rpc.method"), Some(""));
        assert_eq!(string_of(span, "client.address"), None);
    }

    #[test]
    fn lengths_outside_two_bytes_are_written_too() {
        let now = SystemTime::now();
        let long = "x".repeat(20_000);
        let record = |outcome| SpanRecord {
            trace_id: [5; 16],
            span_id: [6; 8],
            parent_span_id: None,
            trace_state: None,
            name: Arc::from("a/b"),
            start: now,
            end: now,
            kind: SpanKind::Client {
                upstream: "u".into(),
                endpoint: crate::text::EndpointName::new(&"http://h:1".parse().expect("uri")),
                attempt: 1,
                outcome,
            },
        };
        let records = [
            record(AttemptOutcome::Failed(long)),
            record(AttemptOutcome::Unfinished),
            record(AttemptOutcome::Failed("short".into())),
        ];
        let request = ExportTraceServiceRequest::decode(message(encode_frame(
            "edge",
            &records,
            &mut Repeated::default(),
        )))
        .expect("valid protobuf");
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 3);
        let messages: Vec<_> = spans
            .iter()
            .map(|span| span.status.as_ref().map(|status| status.message.len()))
            .collect();
        assert_eq!(messages, [Some(20_000), None, Some(5)]);
        assert_eq!(
            string_of(&spans[0], "error.type").map(str::len),
            Some(20_000)
        );
    }

    #[test]
    fn repeated_runs_stay_bounded_and_tell_routes_apart() {
        let now = SystemTime::now();
        let server = |name: &str, route: Option<&str>| SpanRecord {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            trace_state: None,
            name: Arc::from(name),
            start: now,
            end: now,
            kind: SpanKind::Server {
                protocol: Protocol::Grpc,
                peer: None,
                route: route.map(Arc::from),
                code: Some(0),
                http_status: None,
                bytes_in: 0,
                bytes_out: 0,
            },
        };
        let mut repeated = Repeated::default();
        // Unrouted paths a client makes up: the table is emptied before it outgrows its bound.
        for n in 0..Repeated::MAX_RUNS + 10 {
            encode_frame("edge", &[server(&format!("x/{n}"), None)], &mut repeated);
            assert!(repeated.runs.len() <= Repeated::MAX_RUNS);
        }
        // A long name is encoded, never kept.
        let runs = repeated.runs.len();
        let long = format!("x/{}", "y".repeat(Repeated::MAX_KEY));
        let request = ExportTraceServiceRequest::decode(message(encode_frame(
            "edge",
            &[server(&long, None)],
            &mut repeated,
        )))
        .expect("valid protobuf");
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            string_of(span, "rpc.method").map(str::len),
            Some(Repeated::MAX_KEY)
        );
        assert_eq!(repeated.runs.len(), runs);
        // The same name with and without a route are two runs, each with what it says, whether
        // found as the last run or in the table.
        let routed = || server("a.A/B", Some("a.A/B"));
        let unrouted = || server("a.A/B", None);
        let records = [
            routed(),
            unrouted(),
            unrouted(),
            routed(),
            routed(),
            unrouted(),
        ];
        for _ in 0..2 {
            let request = ExportTraceServiceRequest::decode(message(encode_frame(
                "edge",
                &records,
                &mut repeated,
            )))
            .expect("valid protobuf");
            let spans = &request.resource_spans[0].scope_spans[0].spans;
            let routes: Vec<_> = spans
                .iter()
                .map(|span| string_of(span, "gateway.route"))
                .collect();
            let a = Some("a.A/B");
            assert_eq!(routes, [a, None, None, a, a, None]);
            assert!(
                spans
                    .iter()
                    .all(|span| string_of(span, "rpc.method") == Some("B"))
            );
        }
    }
}
