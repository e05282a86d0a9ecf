//! REST/JSON by descriptor: JSON ⇄ MessagePack for any message of a descriptor set, with no
//! generated types. The stand-alone gateway serves REST this way from `descriptors = [...]`,
//! and `tonic-msgpack call` converts its JSON with the same functions.
//!
//! JSON is proto JSON as the typed transcoders read and write it (field names or JSON names
//! in, every field out, 64-bit integers as strings, enums by name); a message then goes through
//! the protobuf bridge's [`layout`](crate::layout), which writes exactly the generated types'
//! MessagePack in the layout the `tonic_msgpack/options.proto` options say (compact, named,
//! a trait method's arguments or result). Trait methods keep their REST form: a request is a
//! JSON object keyed by argument name, a reply is the returned value itself.

mod from_json;
pub(crate) mod protos;
mod to_json;

use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor, ReflectMessage as _};
use serde_json::Value as Json;

use crate::bridge::layout;
use crate::routes::{CallKind, HttpBinding, Route};
use crate::transcode::{Transcode, TranscodeError, Transcoder, UnknownFields};

/// The `google.protobuf` messages with a JSON form of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WellKnown {
    Empty,
    Timestamp,
    Duration,
    /// `StringValue` and the like: the value itself, or `null`.
    Wrapper,
}

impl WellKnown {
    fn of(message: &MessageDescriptor) -> Option<WellKnown> {
        Some(
            match message.full_name().strip_prefix("google.protobuf.")? {
                "Empty" => WellKnown::Empty,
                "Timestamp" => WellKnown::Timestamp,
                "Duration" => WellKnown::Duration,
                "DoubleValue" | "FloatValue" | "Int64Value" | "UInt64Value" | "Int32Value"
                | "UInt32Value" | "BoolValue" | "StringValue" | "BytesValue" => WellKnown::Wrapper,
                _ => return None,
            },
        )
    }
}

/// What went wrong in a request, and where (`None`: the message as a whole).
#[derive(Debug)]
struct Fault {
    message: String,
    field: Option<String>,
}

impl Fault {
    fn at(path: &str, message: impl Into<String>) -> Self {
        Fault {
            message: message.into(),
            field: (!path.is_empty()).then(|| path.to_owned()),
        }
    }
}

/// The `tonic_msgpack.layout` option of a message (0 compact, 1 named, 2 a trait method's
/// arguments, 3 a trait method's result).
fn layout_option(message: &MessageDescriptor) -> i32 {
    let Some(extension) = message
        .parent_pool()
        .get_extension_by_name("tonic_msgpack.layout")
    else {
        return 0;
    };
    let options = message.options();
    if !options.has_extension(&extension) {
        return 0;
    }
    options
        .get_extension(&extension)
        .as_enum_number()
        .unwrap_or(0)
}

fn is_trait_arguments(message: &MessageDescriptor) -> bool {
    layout_option(message) == 2
}

/// Whether `message` was synthesized from a `#[msgpack_service]` trait (`tonic-msgpack
/// schema`): its structs are plain serde types, whose JSON keys are the field names as written.
fn is_synthesized(message: &MessageDescriptor) -> bool {
    message.parent_file().name().ends_with(".msgpack.proto")
}

/// A JSON request (an object, or for a trait method an object keyed by argument name) → one
/// MessagePack message of `message`, byte for byte what its generated type writes.
///
/// # Errors
///
/// JSON that does not fit `message`: the error names the field (a dotted path, `inner.name`,
/// `items[2]`) and says what was expected; with [`UnknownFields::Reject`], the first unknown
/// field.
pub fn json_to_msgpack(
    message: &MessageDescriptor,
    json: &Json,
    unknown: UnknownFields,
) -> Result<Vec<u8>, TranscodeError> {
    let built = from_json::message(message, json, unknown, "").map_err(|fault| {
        let text = match &fault.field {
            Some(field) if !fault.message.starts_with("unknown field") => {
                format!(
                    "invalid JSON for {}: field \"{field}\": {}",
                    message.full_name(),
                    fault.message
                )
            }
            _ => format!(
                "invalid JSON for {}: {}",
                message.full_name(),
                fault.message
            ),
        };
        let error = TranscodeError::new(text);
        match fault.field {
            Some(field) => error.with_field(field),
            None => error,
        }
    })?;
    layout::to_msgpack(&built).map_err(|err| TranscodeError::new(err.to_string()))
}

/// One MessagePack message of `message` → JSON: a trait method's result is the value itself,
/// any other message a JSON object with every field (`google.protobuf.Empty` is `{}`; a trait
/// method's `()` result is `null`, which [`DescriptorTranscoder`] knows by its method).
///
/// # Errors
///
/// Bytes that are not one MessagePack value fitting `message`; the error names the field.
pub fn msgpack_to_json(
    message: &MessageDescriptor,
    msgpack: &[u8],
) -> Result<Json, TranscodeError> {
    let decoded = layout::from_msgpack(message, msgpack)
        .map_err(|err| TranscodeError::new(err.to_string()))?;
    Ok(message_json(&decoded))
}

/// The JSON of a decoded reply (see [`msgpack_to_json`]).
fn message_json(message: &prost_reflect::DynamicMessage) -> Json {
    let descriptor = message.descriptor();
    if layout_option(&descriptor) == 3 {
        return match descriptor.get_field(1) {
            Some(field) => {
                let present = message.has_field(&field);
                to_json::field_value(message, &field, present)
            }
            None => Json::Null,
        };
    }
    to_json::message(message)
}

/// A [`Transcode`] by descriptor: REST for a method with no generated types.
#[derive(Debug, Clone)]
pub struct DescriptorTranscoder {
    input: MessageDescriptor,
    output: MessageDescriptor,
    /// The method is a trait method's (its `()` result is `null`, not `{}`).
    trait_method: bool,
}

impl DescriptorTranscoder {
    /// The transcoder of `method`'s request and reply messages.
    pub fn new(method: &MethodDescriptor) -> Self {
        DescriptorTranscoder {
            input: method.input(),
            output: method.output(),
            trait_method: method.parent_file().name().ends_with(".msgpack.proto"),
        }
    }
}

impl Transcode for DescriptorTranscoder {
    fn request_to_msgpack(&self, json: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let value: Json = serde_json::from_slice(json).map_err(|err| {
            TranscodeError::new(format!(
                "invalid JSON for {}: {err}",
                self.input.full_name()
            ))
        })?;
        json_to_msgpack(&self.input, &value, UnknownFields::Ignore)
    }

    fn response_to_json(&self, msgpack: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let json = if self.trait_method && WellKnown::of(&self.output) == Some(WellKnown::Empty) {
            layout::from_msgpack(&self.output, msgpack)
                .map_err(|err| TranscodeError::new(err.to_string()))?;
            Json::Null
        } else {
            msgpack_to_json(&self.output, msgpack)?
        };
        serde_json::to_vec(&json).map_err(|err| {
            TranscodeError::new(format!(
                "cannot encode {} as JSON: {err}",
                self.output.full_name()
            ))
        })
    }

    fn request_value_to_msgpack(
        &self,
        json: &Json,
        unknown: UnknownFields,
    ) -> Result<Vec<u8>, TranscodeError> {
        json_to_msgpack(&self.input, json, unknown)
    }
}

/// The call kind of `method`.
fn kind(method: &MethodDescriptor) -> CallKind {
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => CallKind::Unary,
        (false, true) => CallKind::ServerStreaming,
        (true, false) => CallKind::ClientStreaming,
        (true, true) => CallKind::Bidirectional,
    }
}

/// The `google.api.http` binding of `method`, when it has one (`None`: the default
/// `POST /{package}.{Service}/{Method}` with the whole message as the body).
fn http_binding(method: &MethodDescriptor) -> Option<HttpBinding> {
    let extension = method
        .parent_pool()
        .get_extension_by_name("google.api.http")?;
    let options = method.options();
    if !options.has_extension(&extension) {
        return None;
    }
    let rule = options.get_extension(&extension);
    let rule = rule.as_message()?;
    let text = |message: &prost_reflect::DynamicMessage, name: &str| {
        message
            .get_field_by_name(name)
            .and_then(|value| value.as_str().map(str::to_owned))
            .filter(|value| !value.is_empty())
    };
    let body = text(rule, "body");
    for verb in ["get", "put", "post", "delete", "patch"] {
        if let Some(path) = text(rule, verb) {
            return Some(HttpBinding::new(
                &verb.to_ascii_uppercase(),
                &path,
                body.as_deref(),
            ));
        }
    }
    let custom = rule.get_field_by_name("custom")?;
    let custom = custom.as_message()?;
    let (kind, path) = (text(custom, "kind")?, text(custom, "path")?);
    Some(HttpBinding::new(
        &kind.to_ascii_uppercase(),
        &path,
        body.as_deref(),
    ))
}

/// A route with a [`DescriptorTranscoder`] and its `google.api.http` binding for every method
/// in `pool` (reflection services excluded).
pub(crate) fn routes(pool: &DescriptorPool) -> Vec<Route> {
    let mut routes = Vec::new();
    for service in pool.services() {
        if service.full_name().starts_with("grpc.reflection.") {
            continue;
        }
        for method in service.methods() {
            let mut route = Route::new(service.full_name(), method.name(), kind(&method))
                .transcoder(Transcoder::new(DescriptorTranscoder::new(&method)));
            if let Some(binding) = http_binding(&method) {
                route = route.http(binding);
            }
            routes.push(route);
        }
    }
    routes
}
