//! REST/JSON transcoding: an HTTP binding's path, query and JSON body become one request
//! message (through the route's typed [`Transcoder`]), which goes upstream as a MessagePack
//! gRPC call on the same pool as the passthrough; the reply comes back as JSON, or as NDJSON
//! (one object per line, written as each message arrives) for server streaming.
//!
//! Path and query values are text. Each one is put into the JSON as a number or boolean when
//! it reads as one and as a string otherwise; when the typed deserialization then fails on
//! exactly that field, it is retried as the original string (so `/v1/users/007` still fills a
//! string field with `"007"`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tonic::Code;

use super::GatewayState;
use super::metrics::RouteMetrics;
use super::pool::{CallGuard, Upstream};
use super::proxy::LimitedBody;
use super::routes::{HttpBinding, RouteTable};
use super::transcode::{Transcoder, UnknownFields};
use super::wire::{
    FrameReader, GRPC_TIMEOUT, grpc_status, http_status, parse_grpc_timeout, percent_decode,
};
use tonic_msgpack_core::{PathTemplate, Segment, is_field_path};

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const NDJSON: HeaderValue = HeaderValue::from_static("application/x-ndjson");

/// An HTTP binding that cannot be served (a bad path template).
#[derive(Debug, thiserror::Error)]
#[error("route {route}: HTTP binding `{method} {template}`: {message}")]
pub struct BindingError {
    route: String,
    method: String,
    template: String,
    message: String,
}

/// Where the request body goes in the request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyTarget {
    /// `body: "*"`: the whole message.
    Whole,
    /// `body: "field"`: that field.
    Field(String),
    /// No body (GET, or a binding without `body`).
    None,
}

#[derive(Debug)]
struct Binding {
    route: usize,
    segments: Vec<Segment>,
    body: BodyTarget,
}

/// Every explicit HTTP binding, indexed by method and segment count.
#[derive(Debug, Default)]
pub(crate) struct RestRoutes {
    exact: HashMap<(Method, usize), Vec<Binding>>,
    /// Bindings ending in `{field=**}`, by method.
    tails: HashMap<Method, Vec<Binding>>,
}

/// A REST request matched to a route.
#[derive(Debug)]
pub(crate) struct Matched {
    route: usize,
    vars: Vec<(String, String)>,
    body: BodyTarget,
}

impl RestRoutes {
    /// Parses every route's HTTP binding.
    pub(crate) fn new(routes: &RouteTable) -> Result<RestRoutes, BindingError> {
        let mut table = RestRoutes::default();
        for (index, route) in routes.routes().iter().enumerate() {
            let Some(binding) = &route.http else { continue };
            let error = |message: String| BindingError {
                route: route.path.clone(),
                method: binding.method.clone(),
                template: binding.path.clone(),
                message,
            };
            let method = Method::from_bytes(binding.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| error("not an HTTP method".into()))?;
            let segments = PathTemplate::parse(&binding.path)
                .map_err(|err| error(err.to_string()))?
                .segments()
                .to_vec();
            let body = body_target(binding, &method);
            let compiled = Binding {
                route: index,
                segments,
                body,
            };
            if matches!(compiled.segments.last(), Some(Segment::Tail(_))) {
                table.tails.entry(method).or_default().push(compiled);
            } else {
                table
                    .exact
                    .entry((method, compiled.segments.len()))
                    .or_default()
                    .push(compiled);
            }
        }
        Ok(table)
    }

    /// The binding `method path` matches: a route's explicit binding, else its default
    /// `POST /{package}.{Service}/{Method}`.
    pub(crate) fn find(&self, routes: &RouteTable, method: &Method, path: &str) -> Option<Matched> {
        let segments: Vec<&str> = match path.strip_prefix('/') {
            Some(rest) => rest.split('/').collect(),
            None => return None,
        };
        if let Some(bindings) = self.exact.get(&(method.clone(), segments.len())) {
            for binding in bindings {
                if let Some(vars) = binding.matches(&segments) {
                    return Some(binding.matched(vars));
                }
            }
        }
        if let Some(bindings) = self.tails.get(method) {
            for binding in bindings {
                if let Some(vars) = binding.matches(&segments) {
                    return Some(binding.matched(vars));
                }
            }
        }
        if method == Method::POST
            && let Some(route) = routes.index_of(path)
        {
            return Some(Matched {
                route,
                vars: Vec::new(),
                body: BodyTarget::Whole,
            });
        }
        None
    }
}

impl Binding {
    fn matched(&self, vars: Vec<(String, String)>) -> Matched {
        Matched {
            route: self.route,
            vars,
            body: self.body.clone(),
        }
    }

    fn matches(&self, path: &[&str]) -> Option<Vec<(String, String)>> {
        let mut vars = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => {
                    if path.get(index).copied()? != text {
                        return None;
                    }
                }
                Segment::Any => {
                    if path.get(index)?.is_empty() {
                        return None;
                    }
                }
                Segment::Field(field) => {
                    let value = path.get(index)?;
                    if value.is_empty() {
                        return None;
                    }
                    vars.push((field.clone(), percent_decode(value, false)?));
                }
                Segment::Tail(field) => {
                    let rest = path.get(index..)?;
                    if rest.is_empty() || rest.iter().any(|s| s.is_empty()) {
                        return None;
                    }
                    vars.push((field.clone(), percent_decode(&rest.join("/"), false)?));
                }
            }
        }
        Some(vars)
    }
}

fn body_target(binding: &HttpBinding, method: &Method) -> BodyTarget {
    match binding.body.as_deref() {
        _ if method == Method::GET || method == Method::HEAD => BodyTarget::None,
        Some("*") => BodyTarget::Whole,
        Some("") | None => BodyTarget::None,
        Some(field) => BodyTarget::Field(field.to_owned()),
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

/// Sets `path` (dotted) in `object` to `value`, creating nested objects.
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
            _ => return Err(format!("field \"{path}\": `{part}` is not an object")),
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

/// A REST error: gRPC code, HTTP status from it, public message, maybe the field.
#[derive(Debug)]
pub(crate) struct RestError {
    code: Code,
    status: Option<StatusCode>,
    message: String,
    field: Option<String>,
}

impl RestError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        RestError {
            code,
            status: None,
            message: message.into(),
            field: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        RestError::new(Code::InvalidArgument, message)
    }

    fn into_response(self) -> Response<Body> {
        let status = self.status.unwrap_or_else(|| http_status(self.code as i32));
        let mut body = serde_json::json!({ "code": self.code as i32, "message": self.message });
        if let (Some(field), Some(object)) = (self.field, body.as_object_mut()) {
            object.insert("field".into(), Value::String(field));
        }
        json_response(status, body.to_string().into_bytes())
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// The HTTP status for a gRPC code (grpc-gateway's mapping).
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
    match call(&state, matched, req, start).await {
        Ok(response) => response,
        Err(err) => {
            metrics.record(err.code as u16, start.elapsed());
            err.into_response()
        }
    }
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
    let mut message = Map::new();
    match &matched.body {
        BodyTarget::None => {}
        target => {
            let bytes = match Limited::new(body, rest.max_body_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    return Err(RestError {
                        status: Some(StatusCode::PAYLOAD_TOO_LARGE),
                        ..RestError::bad_request(format!(
                            "request body larger than the gateway's limit of {} bytes (rest.max_body_bytes)",
                            rest.max_body_bytes
                        ))
                    });
                }
                Err(err) => {
                    return Err(RestError::bad_request(format!(
                        "cannot read the request body: {err}"
                    )));
                }
            };
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let json: Value = serde_json::from_slice(&bytes).map_err(|err| {
                    RestError::bad_request(format!("invalid JSON for {}: {err}", route.path))
                })?;
                match target {
                    BodyTarget::Whole => match json {
                        Value::Object(object) => message = object,
                        other => {
                            return Err(RestError::bad_request(format!(
                                "the body of {} must be a JSON object, not {}",
                                route.path,
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
        }
    }
    // Path and query variables, coerced; remembered so a failing field can go back to text.
    // (field, the value as read, the value as text)
    let mut coerced: Vec<(String, Value, Value)> = Vec::new();
    if matched.body != BodyTarget::Whole
        && let Some(query) = parts.uri.query()
    {
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (Some(key), Some(value)) = (percent_decode(key, true), percent_decode(value, true))
            else {
                return Err(RestError::bad_request(format!(
                    "query parameter `{pair}` is not valid percent-encoded UTF-8"
                )));
            };
            match grouped.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => grouped.push((key, vec![value])),
            }
        }
        for (key, values) in grouped {
            if !is_field_path(&key) {
                return Err(RestError::bad_request(format!(
                    "query parameter `{key}` is not a field name"
                )));
            }
            let (value, text) = if values.len() == 1 {
                (guess(&values[0]), Value::from(values[0].clone()))
            } else {
                (
                    Value::Array(values.iter().map(|v| guess(v)).collect()),
                    Value::from(values),
                )
            };
            set_path(&mut message, &key, value.clone()).map_err(RestError::bad_request)?;
            coerced.push((key, value, text));
        }
    }
    for (field, text) in &matched.vars {
        let value = guess(text);
        set_path(&mut message, field, value.clone()).map_err(RestError::bad_request)?;
        coerced.push((field.clone(), value, Value::from(text.clone())));
    }
    let msgpack = transcode_request(&transcoder, message, &coerced, rest.unknown_fields)?;

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
    let (request, deadline) = upstream_request(&route.path, &parts.headers, upstream, msgpack)?;
    let call = async {
        let (response, guard) = upstream.send(request).await.map_err(|err| {
            RestError::new(
                Code::Unavailable,
                format!("upstream `{}` unavailable: {err}", upstream.name),
            )
        })?;
        if route.kind.server_streaming() {
            Ok(stream_response(
                response,
                guard,
                transcoder.clone(),
                upstream,
                target.metrics.clone(),
                start,
            ))
        } else {
            let response = unary_response(response, &transcoder, upstream).await?;
            drop(guard);
            target.metrics.record(0, start.elapsed());
            Ok(response)
        }
    };
    match deadline {
        Some(deadline) => tokio::time::timeout(deadline, call)
            .await
            .unwrap_or_else(|_| {
                Err(RestError::new(
                    Code::DeadlineExceeded,
                    format!(
                        "upstream `{}` did not answer before the deadline",
                        upstream.name
                    ),
                ))
            }),
        None => call.await,
    }
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

/// The upstream gRPC request: one framed message, `authorization` and `x-*` headers as
/// metadata, and the deadline (`grpc-timeout`, else the upstream's default).
fn upstream_request(
    path: &str,
    headers: &HeaderMap,
    upstream: &Upstream,
    msgpack: Vec<u8>,
) -> Result<(Request<LimitedBody>, Option<std::time::Duration>), RestError> {
    let mut framed = BytesMut::with_capacity(msgpack.len() + 5);
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(
        &u32::try_from(msgpack.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(&msgpack);
    let body = LimitedBody::built(tonic::body::Body::new(Full::new(framed.freeze())));
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.version_mut() = http::Version::HTTP_2;
    *request.uri_mut() = http::Uri::try_from(path)
        .map_err(|_| RestError::new(Code::Internal, format!("route path {path} is not a URI")))?;
    let out = request.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    out.insert(header::TE, HeaderValue::from_static("trailers"));
    for (name, value) in headers {
        if name == header::AUTHORIZATION || name.as_str().starts_with("x-") {
            out.append(name.clone(), value.clone());
        }
    }
    let timeout = headers
        .get(GRPC_TIMEOUT)
        .filter(|value| parse_grpc_timeout(value).is_some())
        .or(upstream.default_timeout.as_ref());
    let deadline = timeout.and_then(parse_grpc_timeout);
    if let Some(timeout) = timeout {
        out.insert(GRPC_TIMEOUT, timeout.clone());
    }
    Ok((request, deadline))
}

fn status_error(code: i32, message: String) -> RestError {
    RestError::new(Code::from_i32(code), message)
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

async fn unary_response(
    response: Response<Incoming>,
    transcoder: &Transcoder,
    upstream: &Upstream,
) -> Result<Response<Body>, RestError> {
    let (parts, body) = response.into_parts();
    if let Some((code, message)) = grpc_status(&parts.headers)
        && code != 0
    {
        return Err(status_error(code, message));
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
            RestError::new(Code::Unavailable, format!("upstream stream failed: {err}"))
        }
    })?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let (code, message) = grpc_status(&trailers)
        .or_else(|| grpc_status(&parts.headers))
        .unwrap_or((Code::Unknown as i32, "upstream sent no grpc-status".into()));
    if code != 0 {
        return Err(status_error(code, message));
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
    let json = transcoder
        .response_to_json(&first)
        .map_err(|err| RestError::new(Code::Internal, err.message()))?;
    let mut out = json_response(StatusCode::OK, json);
    copy_metadata(&parts.headers, "grpc-metadata-", out.headers_mut());
    copy_metadata(&trailers, "grpc-trailer-", out.headers_mut());
    Ok(out)
}

fn stream_response(
    response: Response<Incoming>,
    guard: CallGuard,
    transcoder: Transcoder,
    upstream: &Upstream,
    metrics: Arc<RouteMetrics>,
    start: Instant,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    if let Some((code, message)) = grpc_status(&parts.headers)
        && code != 0
    {
        metrics.record(code as u16, start.elapsed());
        return status_error(code, message).into_response();
    }
    let ndjson = NdjsonBody {
        inner: Some(body),
        frames: FrameReader::default(),
        transcoder,
        max: upstream.max_message_size,
        record: Some((metrics, start, guard)),
    };
    let mut out = Response::new(Body::new(ndjson));
    out.headers_mut().insert(header::CONTENT_TYPE, NDJSON);
    copy_metadata(&parts.headers, "grpc-metadata-", out.headers_mut());
    out
}

/// A server-streaming reply as NDJSON: each upstream message is one line, written as soon as
/// it arrives; an error after the first byte is a last line `{"error": {"code", "message"}}`.
struct NdjsonBody {
    inner: Option<Incoming>,
    frames: FrameReader,
    transcoder: Transcoder,
    max: usize,
    record: Option<(Arc<RouteMetrics>, Instant, CallGuard)>,
}

impl NdjsonBody {
    fn finish(&mut self, code: i32) {
        self.inner = None;
        self.frames.buf.clear();
        if let Some((metrics, start, _guard)) = self.record.take() {
            metrics.record(code as u16, start.elapsed());
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
                    let message = format!("upstream stream failed: {err}");
                    return Poll::Ready(Some(Ok(
                        this.error_line(Code::Unavailable as i32, &message)
                    )));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match() {
        let parse_template =
            |text: &str| PathTemplate::parse(text).map(|template| template.segments().to_vec());
        let segments = parse_template("/v1/sum/{a}/{b=*}").expect("valid");
        assert_eq!(segments.len(), 4);
        let binding = Binding {
            route: 0,
            segments,
            body: BodyTarget::None,
        };
        let vars = binding
            .matches(&["v1", "sum", "1", "x%20y"])
            .expect("match");
        assert_eq!(vars, [("a".into(), "1".into()), ("b".into(), "x y".into())]);
        assert!(binding.matches(&["v1", "sum", "1"]).is_none());
        assert!(binding.matches(&["v1", "add", "1", "2"]).is_none());
        let tail = Binding {
            route: 0,
            segments: parse_template("/files/{path=**}").expect("valid"),
            body: BodyTarget::None,
        };
        let vars = tail.matches(&["files", "a", "b.txt"]).expect("match");
        assert_eq!(vars, [("path".into(), "a/b.txt".into())]);
        assert!(tail.matches(&["files"]).is_none());
        for bad in [
            "v1/x",
            "/v1/{a",
            "/v1/{a=**}/x",
            "/v1/{a=b/*}",
            "/v1//x",
            "/v1/{}",
        ] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
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
    fn grpc_gateway_status_mapping() {
        let expected = [
            200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
        ];
        for (code, status) in expected.iter().enumerate() {
            assert_eq!(http_status(code as i32).as_u16(), *status, "code {code}");
        }
    }
}
