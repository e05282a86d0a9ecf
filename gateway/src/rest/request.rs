//! The request message of a REST call: the JSON body, the query parameters and the path
//! variables merged into one JSON object, transcoded to MessagePack by the route's typed
//! [`Transcoder`], framed as one gRPC message with its metadata.
//!
//! Path and query values are text. Each one is put into the JSON as a number or boolean when
//! it reads as one and as a string otherwise; when the typed deserialization then fails on
//! exactly that field, it is retried as the original string (so `/v1/users/007` still fills a
//! string field with `"007"`).

use bytes::BytesMut;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tonic::Code;
use tonic_msgpack_core::is_field_path;

use super::error::RestError;
use super::matching::{BodyTarget, Matched};
use crate::config::RestConfig;
use crate::pool::Upstream;
use crate::proxy::LimitedBody;
use crate::transcode::{Transcoder, UnknownFields};
use crate::wire::{GRPC_TIMEOUT, parse_grpc_timeout, percent_decode};

/// Path and query variables as coerced: (field, the value as read, the value as text), so a
/// failing field can go back to text.
pub(super) type Coerced = Vec<(String, Value, Value)>;

/// The request message as JSON: the body (read here), the query and the path variables.
pub(super) async fn build_message(
    rest: &RestConfig,
    route_path: &str,
    matched: &Matched,
    query: Option<&str>,
    body: Incoming,
) -> Result<(Map<String, Value>, Coerced), RestError> {
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
                    RestError::bad_request(format!("invalid JSON for {route_path}: {err}"))
                })?;
                match target {
                    BodyTarget::Whole => match json {
                        Value::Object(object) => message = object,
                        other => {
                            return Err(RestError::bad_request(format!(
                                "the body of {route_path} must be a JSON object, not {}",
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
    let mut coerced: Coerced = Vec::new();
    if matched.body != BodyTarget::Whole
        && let Some(query) = query
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
    Ok((message, coerced))
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
pub(super) fn transcode_request(
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
pub(super) fn upstream_request(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
