//! The request of a REST call: the JSON body, the query parameters and the path variables merged
//! into one JSON object, transcoded to MessagePack by the route's typed [`Transcoder`], framed as
//! one gRPC message with its metadata and deadline.
//!
//! Path and query values are text. Each one is put into the JSON as a number or boolean when
//! it reads as one and as a string otherwise; when the typed deserialization then fails on
//! exactly that field, it is retried as the original string (so `/v1/users/007` still fills a
//! string field with `"007"`).
//!
//! Everything a client sends is bounded before anything is built from it: the query's length
//! and parameter count, and the nesting of the message (`rest.max_json_depth`), checked on the
//! dotted keys and on the body's bytes. serde_json's parser caps a body at 128 levels, but a
//! value built by hand has no limit, and dropping a deeply nested value recurses: a few thousand
//! levels overflow a worker's stack. So nothing deeper than the limit is ever built.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tonic::Code;
use tonic_msgpack_core::is_field_path;

use super::error::RestError;
use super::matching::BodyTarget;
use crate::config::{Limits, RestConfig};
use crate::pool::Upstream;
use crate::proxy::LimitedBody;
use crate::transcode::{Transcoder, UnknownFields};
use crate::wire::{
    ClientAddr, GRPC_TIMEOUT, grpc_timeout_value, parse_grpc_timeout, percent_decode,
};

/// Bodies at least this large are parsed on a blocking thread, holding one of
/// `rest.parse_concurrency` permits: parsing megabytes of JSON takes a worker long enough to
/// stall every other connection it serves.
pub(super) const BLOCKING_THRESHOLD: usize = 64 * 1024;

/// The same for query strings, lower: each parameter is a map entry and a JSON value or two,
/// several allocations for a few bytes (only reached with `rest.max_query_bytes` raised).
const BLOCKING_QUERY_THRESHOLD: usize = 8 * 1024;

/// The longest key or value quoted in an error message.
const SHOWN_MAX: usize = 48;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// What a request message is built from, owned so the work can move to a blocking thread.
#[derive(Debug)]
pub(super) struct MessageInput {
    /// The route's gRPC path, for error messages.
    pub(super) route: String,
    /// The request body (empty when the binding takes none).
    pub(super) body: Bytes,
    /// Where the body goes.
    pub(super) target: BodyTarget,
    /// The query string, unless the body is the whole message (then it is not read).
    pub(super) query: Option<String>,
    /// The path variables: (field path, text).
    pub(super) vars: Vec<(String, String)>,
}

impl MessageInput {
    /// Whether building the message from `body` is heavy enough for a blocking thread.
    pub(super) fn is_heavy(&self, body: &RequestBody) -> bool {
        body.len >= BLOCKING_THRESHOLD
            || self
                .query
                .as_ref()
                .is_some_and(|query| query.len() > BLOCKING_QUERY_THRESHOLD)
    }
}

/// Path and query variables as coerced: (field, the value as read, the value as text), so a
/// failing field can go back to text.
type Coerced = Vec<(String, Value, Value)>;

/// 414 when the query string is longer than `rest.max_query_bytes`.
pub(super) fn check_query_length(query: Option<&str>, rest: &RestConfig) -> Result<(), RestError> {
    match query {
        Some(query) if query.len() > rest.max_query_bytes => Err(RestError {
            status: Some(StatusCode::URI_TOO_LONG),
            ..RestError::bad_request(format!(
                "query string of {} bytes is longer than the gateway's limit of {} bytes (rest.max_query_bytes)",
                query.len(),
                rest.max_query_bytes
            ))
        }),
        _ => Ok(()),
    }
}

/// A request body as read: its chunks, joined only when the message is built, so that for a
/// large body the copy (and the page faults of its new memory) happens on the blocking thread
/// that parses it, not on the event loop.
#[derive(Debug, Default)]
pub(super) struct RequestBody {
    chunks: Vec<Bytes>,
    /// Small chunks copied together, so that a body sent a byte per chunk (HTTP/1.1 chunked
    /// encoding allows it) is not a list of millions of 32-byte handles.
    small: BytesMut,
    len: usize,
}

/// Chunks shorter than this are copied into [`RequestBody::small`].
const SMALL_CHUNK: usize = 4096;
/// [`RequestBody::small`] becomes a chunk of its own at this size: the copies on the event loop
/// stay small (a buffer that grew to the whole body would be the large copy again).
const SMALL_RUN: usize = 64 * 1024;

impl RequestBody {
    fn push(&mut self, data: Bytes) {
        self.len += data.len();
        if data.len() < SMALL_CHUNK {
            if self.small.capacity() == 0 {
                self.small.reserve(SMALL_RUN);
            }
            self.small.extend_from_slice(&data);
            if self.small.len() >= SMALL_RUN {
                self.flush_small();
            }
            return;
        }
        self.flush_small();
        self.chunks.push(data);
    }

    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            self.chunks.push(self.small.split().freeze());
        }
    }

    /// The body in one piece (no copy for a body that came in one chunk).
    pub(super) fn join(mut self) -> Bytes {
        self.flush_small();
        if self.chunks.len() <= 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        let mut joined = BytesMut::with_capacity(self.len);
        for chunk in &self.chunks {
            joined.extend_from_slice(chunk);
        }
        joined.freeze()
    }
}

/// Reads the request body, up to `rest.max_body_bytes` (413 past it).
pub(super) async fn read_body(body: Incoming, rest: &RestConfig) -> Result<RequestBody, RestError> {
    let mut body = std::pin::pin!(Limited::new(body, rest.max_body_bytes));
    let mut read = RequestBody::default();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    read.push(data);
                }
            }
            Err(err) => return Err(body_error(&*err, rest)),
        }
    }
    Ok(read)
}

fn body_error(
    err: &(dyn std::error::Error + Send + Sync + 'static),
    rest: &RestConfig,
) -> RestError {
    match err {
        err if err.is::<http_body_util::LengthLimitError>() => RestError {
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            ..RestError::bad_request(format!(
                "request body larger than the gateway's limit of {} bytes (rest.max_body_bytes)",
                rest.max_body_bytes
            ))
        },
        err => RestError::bad_request(format!("cannot read the request body: {err}")),
    }
}

/// The request message in MessagePack: built, checked against the limits, transcoded.
pub(super) fn request_message(
    input: &MessageInput,
    rest: &RestConfig,
    transcoder: &Transcoder,
) -> Result<Vec<u8>, RestError> {
    let (message, coerced) = build_message(input, rest)?;
    transcode_request(transcoder, message, &coerced, rest.unknown_fields)
}

/// The request message as JSON: the body, the query and the path variables.
fn build_message(
    input: &MessageInput,
    rest: &RestConfig,
) -> Result<(Map<String, Value>, Coerced), RestError> {
    let limit = rest.max_json_depth;
    let mut message = Map::new();
    if input.target != BodyTarget::None && !input.body.iter().all(u8::is_ascii_whitespace) {
        let field_depth = match &input.target {
            BodyTarget::Field(field) => path_depth(field),
            _ => 0,
        };
        if field_depth + json_depth(&input.body, limit) > limit {
            return Err(RestError::bad_request(format!(
                "the request body is nested deeper than the gateway's limit of {limit} levels (rest.max_json_depth)"
            )));
        }
        let json: Value = serde_json::from_slice(&input.body).map_err(|err| {
            RestError::bad_request(format!("invalid JSON for {}: {err}", input.route))
        })?;
        match &input.target {
            BodyTarget::Whole => match json {
                Value::Object(object) => message = object,
                other => {
                    return Err(RestError::bad_request(format!(
                        "the body of {} must be a JSON object, not {}",
                        input.route,
                        kind_of(&other)
                    )));
                }
            },
            BodyTarget::Field(field) => {
                set_path(&mut message, field, json).map_err(RestError::bad_request)?;
            }
            BodyTarget::None => {}
        }
    }
    let mut coerced: Coerced = Vec::new();
    if let Some(query) = &input.query {
        for (key, values) in query_params(query, rest.max_query_params)? {
            // A repeated key is an array: one level more.
            let depth = path_depth(&key) + usize::from(values.len() > 1);
            if depth > limit {
                return Err(RestError::bad_request(format!(
                    "query parameter `{}` is nested deeper than the gateway's limit of {limit} levels (rest.max_json_depth)",
                    shown(&key)
                )));
            }
            if !is_field_path(&key) {
                return Err(RestError::bad_request(format!(
                    "query parameter `{}` is not a field name",
                    shown(&key)
                )));
            }
            let (value, text) = match <[String; 1]>::try_from(values) {
                Ok([value]) => (guess(&value), Value::String(value)),
                Err(values) => (
                    Value::Array(values.iter().map(|v| guess(v)).collect()),
                    Value::from(values),
                ),
            };
            set_path(&mut message, &key, value.clone()).map_err(RestError::bad_request)?;
            coerced.push((key, value, text));
        }
    }
    for (field, text) in &input.vars {
        // Templates come from code; checked anyway, it costs nothing.
        if path_depth(field) > limit {
            return Err(RestError::bad_request(format!(
                "path variable `{}` is nested deeper than the gateway's limit of {limit} levels (rest.max_json_depth)",
                shown(field)
            )));
        }
        let value = guess(text);
        set_path(&mut message, field, value.clone()).map_err(RestError::bad_request)?;
        coerced.push((field.clone(), value, Value::from(text.clone())));
    }
    Ok((message, coerced))
}

/// The query's parameters, percent-decoded and grouped by key (sorted, so a key and its
/// sub-keys are set in the same order whatever order the client wrote them in); 400 past
/// `max` parameters.
///
/// Not `form_urlencoded::parse`: it replaces invalid UTF-8 silently, where a client should
/// learn that its value did not arrive as sent.
fn query_params(query: &str, max: usize) -> Result<BTreeMap<String, Vec<String>>, RestError> {
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (count, pair) in query.split('&').filter(|pair| !pair.is_empty()).enumerate() {
        if count == max {
            return Err(RestError::bad_request(format!(
                "more than the gateway's limit of {max} query parameters (rest.max_query_params)"
            )));
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(key), Some(value)) = (percent_decode(key, true), percent_decode(value, true))
        else {
            return Err(RestError::bad_request(format!(
                "query parameter `{}` is not valid percent-encoded UTF-8",
                shown(pair)
            )));
        };
        grouped.entry(key).or_default().push(value);
    }
    Ok(grouped)
}

/// The objects a dotted field path nests a value in: `a` → 1, `a.b` → 2.
fn path_depth(path: &str) -> usize {
    path.bytes().filter(|&b| b == b'.').count() + 1
}

/// How deep the JSON text in `bytes` nests objects and arrays, counted without parsing; stops
/// as soon as it passes `stop_above`. For invalid JSON the count means nothing, but the parser
/// rejects that anyway.
fn json_depth(bytes: &[u8], stop_above: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > stop_above {
                    break;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// `text` for an error message: whole when short, else its start and its length.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_MAX) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
    }
}

/// A path or query value as JSON: a number or boolean when it reads as one, else a string.
fn guess(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(n) = text.parse::<u64>() {
        return Value::from(n);
    }
    if text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && let Ok(n) = text.parse::<f64>()
        && let Some(number) = serde_json::Number::from_f64(n)
    {
        return Value::Number(number);
    }
    Value::String(text.to_owned())
}

/// Sets `path` (dotted) in `object` to `value`, creating nested objects. Iterative; the caller
/// has checked the depth.
fn set_path(object: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), String> {
    let mut current = object;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return Ok(());
        }
        let next = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        current = match next {
            Value::Object(map) => map,
            _ => {
                return Err(format!(
                    "field \"{}\": `{}` is not an object",
                    shown(path),
                    shown(part)
                ));
            }
        };
    }
    Ok(())
}

fn get_path_mut<'a>(object: &'a mut Map<String, Value>, path: &str) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut current = object.get_mut(first)?;
    for part in parts {
        current = current.as_object_mut()?.get_mut(part)?;
    }
    Some(current)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Transcodes, retrying a path/query field as text when its number/boolean reading fails.
fn transcode_request(
    transcoder: &Transcoder,
    message: Map<String, Value>,
    coerced: &[(String, Value, Value)],
    unknown: UnknownFields,
) -> Result<Vec<u8>, RestError> {
    let mut json = Value::Object(message);
    let mut reverted: Vec<&str> = Vec::new();
    loop {
        let err = match transcoder.request_value_to_msgpack(&json, unknown) {
            Ok(bytes) => return Ok(bytes),
            Err(err) => err,
        };
        let retry = err.field().and_then(|field| {
            coerced.iter().find(|(path, value, text)| {
                !reverted.contains(&path.as_str())
                    && value != text
                    && (field == path
                        || field
                            .strip_prefix(path.as_str())
                            .is_some_and(|rest| rest.starts_with('[')))
            })
        });
        match (retry, json.as_object_mut()) {
            (Some((path, _, text)), Some(object)) => {
                if let Some(slot) = get_path_mut(object, path) {
                    *slot = text.clone();
                }
                reverted.push(path);
            }
            _ => {
                return Err(RestError {
                    field: err.field().map(str::to_owned),
                    ..RestError::bad_request(err.message())
                });
            }
        }
    }
}

/// The client headers a REST call forwards as gRPC metadata: `authorization` and `x-*`, but not
/// those the client's `Connection` header names (they are for the gateway alone), nor its
/// `x-forwarded-for`, which the gateway sets from the connection's address. 431 when they add up
/// to more than `limits.max_header_list_bytes` (counted as HTTP/2 does: name, value, 32).
pub(super) fn metadata(
    headers: &HeaderMap,
    client: Option<&ClientAddr>,
    limits: &Limits,
) -> Result<HeaderMap, RestError> {
    let connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::new();
    let mut size = 0usize;
    for (name, value) in headers {
        let forwarded = (name == header::AUTHORIZATION || name.as_str().starts_with("x-"))
            && name != X_FORWARDED_FOR
            && !connection.iter().any(|listed| listed == name.as_str());
        if !forwarded {
            continue;
        }
        size += name.as_str().len() + value.len() + 32;
        if size > limits.max_header_list_bytes {
            return Err(RestError {
                status: Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
                ..RestError::new(
                    Code::ResourceExhausted,
                    format!(
                        "the headers forwarded as metadata are larger than the gateway's limit of {} bytes (limits.max_header_list_bytes)",
                        limits.max_header_list_bytes
                    ),
                )
            });
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(ClientAddr(addr)) = client
        && let Ok(value) = HeaderValue::from_str(&addr.ip().to_string())
    {
        out.insert(X_FORWARDED_FOR, value);
    }
    Ok(out)
}

/// The call's deadline: the client's `grpc-timeout` lowered to `limits.max_timeout`, else the
/// upstream's `default_timeout`, else `limits.default_timeout` for a unary call (a server stream
/// may legitimately live long and gets none).
pub(super) fn deadline(
    headers: &HeaderMap,
    upstream: &Upstream,
    limits: &Limits,
    streaming: bool,
) -> Option<Duration> {
    if let Some(client) = headers.get(GRPC_TIMEOUT).and_then(parse_grpc_timeout) {
        return Some(client.min(limits.max_timeout));
    }
    upstream
        .default_deadline
        .or((!streaming).then_some(limits.default_timeout))
}

/// The upstream gRPC request: one framed message, the metadata, the deadline as
/// `grpc-timeout`.
pub(super) fn upstream_request(
    path: &str,
    metadata: HeaderMap,
    deadline: Option<Duration>,
    msgpack: &[u8],
) -> Result<Request<LimitedBody>, RestError> {
    let mut framed = BytesMut::with_capacity(msgpack.len() + 5);
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(
        &u32::try_from(msgpack.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(msgpack);
    let body = LimitedBody::built(tonic::body::Body::new(Full::new(framed.freeze())));
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.version_mut() = http::Version::HTTP_2;
    *request.uri_mut() = http::Uri::try_from(path)
        .map_err(|_| RestError::new(Code::Internal, format!("route path {path} is not a URI")))?;
    let out = request.headers_mut();
    *out = metadata;
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    out.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(deadline) = deadline {
        out.insert(GRPC_TIMEOUT, grpc_timeout_value(deadline));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_joined_in_order_and_one_large_chunk_is_not_copied() {
        let body = |chunks: Vec<Bytes>| {
            let mut body = RequestBody::default();
            chunks.into_iter().for_each(|chunk| body.push(chunk));
            body
        };
        assert_eq!(body(vec![]).join(), Bytes::new());
        let small = |text: &'static str| Bytes::from_static(text.as_bytes());
        let large = Bytes::from(vec![b'x'; SMALL_CHUNK]);
        let joined = body(vec![small("{\"a\":\""), large.clone(), small("\"}")]).join();
        assert_eq!(joined.len(), SMALL_CHUNK + 8);
        assert!(joined.starts_with(b"{\"a\":\"x") && joined.ends_with(b"x\"}"));
        let alone = body(vec![large.clone()]).join();
        assert_eq!(alone.as_ptr(), large.as_ptr(), "the chunk itself");
    }

    #[test]
    fn a_body_sent_a_byte_at_a_time_is_not_a_chunk_per_byte() {
        let mut body = RequestBody::default();
        for _ in 0..100_000 {
            body.push(Bytes::from_static(b"7"));
        }
        // A chunk per 64 KiB run, not per byte.
        assert_eq!(body.chunks.len(), 100_000 / SMALL_RUN);
        assert_eq!(body.join(), vec![b'7'; 100_000]);
    }

    #[test]
    fn values_and_decoding() {
        assert_eq!(guess("12"), Value::from(12));
        assert_eq!(guess("-1.5"), serde_json::json!(-1.5));
        assert_eq!(guess("true"), Value::Bool(true));
        assert_eq!(guess("ann"), Value::from("ann"));
        assert_eq!(guess("inf"), Value::from("inf"));
        assert_eq!(percent_decode("a+b%2Fc", true).as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("100%", false).as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz", false).as_deref(), Some("%zz"));
        assert!(percent_decode("%ff", false).is_none());
        let mut object = Map::new();
        set_path(&mut object, "a.b", Value::from(1)).expect("set");
        assert_eq!(
            Value::Object(object.clone()),
            serde_json::json!({"a": {"b": 1}})
        );
        assert!(set_path(&mut object, "a.b.c", Value::from(1)).is_err());
    }

    #[test]
    fn depth_is_counted_without_parsing() {
        assert_eq!(json_depth(b"1", 64), 0);
        assert_eq!(json_depth(b"{}", 64), 1);
        assert_eq!(json_depth(br#"{"a": [1, {"b": []}], "c": {}}"#, 64), 4);
        // Brackets in strings, escaped quotes.
        assert_eq!(json_depth(br#"{"a": "[[[{\"{{"}"#, 64), 1);
        // Stops early.
        assert_eq!(json_depth(&b"[".repeat(1_000_000), 3), 4);
        assert_eq!(path_depth("a"), 1);
        assert_eq!(path_depth("a.b.c"), 3);
        assert_eq!(shown("short"), "short");
        let long = "z.".repeat(100);
        assert_eq!(shown(&long), format!("{}… (200 bytes)", &long[..SHOWN_MAX]));
    }

    /// A message type with a nested, recursive field, so deep bodies can be valid.
    #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Req {
        a: i64,
        b: String,
        tags: Vec<String>,
        inner: Option<Box<Req>>,
    }

    /// What `serve` passes: no query when the body is the whole message.
    fn input(body: &[u8], target: BodyTarget, query: Option<&str>) -> MessageInput {
        MessageInput {
            route: "/t.S/M".into(),
            body: Bytes::copy_from_slice(body),
            query: query
                .filter(|_| target != BodyTarget::Whole)
                .map(str::to_owned),
            target,
            vars: vec![("b".into(), "007".into())],
        }
    }

    #[test]
    fn the_attack_is_refused_before_anything_is_built() {
        let rest = RestConfig::default();
        let transcoder = Transcoder::typed::<Req, Req>();
        for levels in [65, 3_000, 100_000] {
            let key = vec!["z"; levels].join(".");
            let query = format!("{key}=1");
            let err = request_message(
                &input(b"", BodyTarget::None, Some(&query)),
                &rest,
                &transcoder,
            )
            .expect_err("too deep");
            assert!(
                err.message.contains("rest.max_json_depth"),
                "{}",
                err.message
            );
            assert!(err.message.len() < 300, "{}", err.message);
        }
        let ok = vec!["inner"; 63].join(".") + ".a=1";
        request_message(&input(b"", BodyTarget::None, Some(&ok)), &rest, &transcoder)
            .expect("64 levels are allowed");
        for body in [
            "[".repeat(1_000_000),
            format!(
                "{}{}",
                "{\"inner\":".repeat(64),
                "{}".to_owned() + &"}".repeat(64)
            ),
        ] {
            let err = request_message(
                &input(body.as_bytes(), BodyTarget::Whole, None),
                &rest,
                &transcoder,
            )
            .expect_err("too deep");
            assert!(
                err.message.contains("rest.max_json_depth"),
                "{}",
                err.message
            );
        }
        let many: String = (0..129).map(|i| format!("k{i}=1&")).collect();
        let err = request_message(
            &input(b"", BodyTarget::None, Some(&many)),
            &rest,
            &transcoder,
        )
        .expect_err("too many");
        assert!(
            err.message.contains("rest.max_query_params"),
            "{}",
            err.message
        );
    }

    /// Random JSON text, up to 80 levels deep.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[a-z\"\\\\{}\\[\\] ]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        ];
        leaf.prop_recursive(80, 400, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec(("(a|b|tags|inner|x)", inner), 0..4).prop_map(|fields| {
                    let fields: Vec<String> = fields
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    /// Random query strings: field-like keys of random depth (sometimes far over the limit),
    /// random values, random percent-escapes, or any text at all.
    fn query_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            8 => proptest::collection::vec(
                proptest::sample::select(&["a", "b", "tags", "inner", "z"][..]),
                1..80
            ).prop_map(|parts| parts.join(".")),
            1 => (1usize..3_000).prop_map(|n| vec!["inner"; n].join(".")),
            2 => "[^&=]{0,12}",
        ];
        let value = prop_oneof![
            "[0-9]{0,20}",
            "(true|false|-1.5e3|inf)",
            "[^&]{0,12}",
            "(%[0-9a-fA-F]{2}){1,4}"
        ];
        prop_oneof![
            proptest::collection::vec((key, value), 0..160).prop_map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            }),
            ".{0,64}",
        ]
    }

    fn target() -> impl proptest::strategy::Strategy<Value = BodyTarget> {
        use proptest::prelude::*;
        prop_oneof![
            Just(BodyTarget::None),
            Just(BodyTarget::Whole),
            Just(BodyTarget::Field("inner".into())),
            Just(BodyTarget::Field("inner.inner".into())),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// The builder never panics, refuses whatever nests deeper than the limit, and builds a
        /// message no larger than what it was given (plus the fields' fixed overhead).
        #[test]
        fn builder_never_panics_and_stays_bounded(
            body in proptest::prop_oneof![json_text(), ".{0,32}"],
            query in query_text(),
            target in target(),
            depth in 1usize..100,
        ) {
            let rest = RestConfig { max_json_depth: depth, ..RestConfig::default() };
            let transcoder = Transcoder::typed::<Req, Req>();
            let given = input(body.as_bytes(), target, Some(&query));
            let read_query = given.query.clone().unwrap_or_default();
            let deepest_key = read_query
                .split('&')
                .filter_map(|pair| pair.split('=').next())
                .map(path_depth)
                .max()
                .unwrap_or(0);
            match request_message(&given, &rest, &transcoder) {
                Ok(msgpack) => {
                    proptest::prop_assert!(deepest_key <= depth);
                    proptest::prop_assert!(
                        msgpack.len() <= 64 + 2 * (body.len() + query.len()),
                        "{} bytes from {} + {}", msgpack.len(), body.len(), query.len()
                    );
                }
                Err(err) => proptest::prop_assert!(!err.message.is_empty()),
            }
        }
    }
}
