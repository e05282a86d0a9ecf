//! REST/JSON by descriptor: JSON ⇄ MessagePack for any message of a descriptor set, with no
//! generated types. The stand-alone gateway serves REST this way from `descriptors = [...]`,
//! and `tonic-msgpack call` converts its JSON with the same functions.
//!
//! JSON is proto JSON as the typed transcoders read and write it (field names or JSON names
//! in, every field out, 64-bit integers as strings, enums by name); a message then goes through
//! the protobuf bridge's [`layout`], which writes exactly the generated types' MessagePack in
//! the layout the `tonic_msgpack/options.proto` options say (compact, named, a trait method's
//! arguments or result). Trait methods keep their REST form: a request is a
//! JSON object keyed by argument name, a reply is the returned value itself.

mod from_json;
pub(crate) mod protos;
mod to_json;

pub use to_json::float_json;

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

fn is_trait_arguments(message: &MessageDescriptor) -> bool {
    layout::layout_number(message) == 2
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
    if layout::layout_number(&descriptor) == 3 {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost_reflect::DescriptorPool;
    use serde_json::{Value as Json, json};

    use super::*;

    /// A message with every kind of field, a oneof, a map, a recursive message and the
    /// well-known types; compiled from source with protox.
    const KINDS: &str = r#"
        syntax = "proto3";
        package t;
        import "google/protobuf/timestamp.proto";
        import "google/protobuf/duration.proto";
        import "google/protobuf/wrappers.proto";
        enum E { E_ZERO = 0; E_ONE = 1; }
        message M {
          int32 a = 1; int64 b = 2; uint32 c = 3; uint64 d = 4; sint64 e = 5; fixed64 f = 6;
          float g = 7; double h = 8; bool i = 9; string j = 10; bytes k = 11; E l = 12;
          repeated int64 m = 13; map<string, M> n = 14; M o = 15; optional string p = 16;
          oneof q { string r = 17; int64 s = 18; }
          google.protobuf.Timestamp t = 19; google.protobuf.Duration u = 20;
          google.protobuf.Int64Value v = 21; map<int64, string> w = 22;
        }
    "#;

    struct Source;

    impl protox::file::FileResolver for Source {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            match name {
                "kinds.proto" => protox::file::File::from_source(name, KINDS),
                _ => Err(protox::Error::file_not_found(name)),
            }
        }
    }

    fn message() -> MessageDescriptor {
        let mut resolver = protox::file::ChainFileResolver::new();
        resolver.add(Source);
        resolver.add(protox::file::GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler.open_file("kinds.proto").expect("compiles");
        DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice())
            .expect("decodes")
            .get_message_by_name("t.M")
            .expect("t.M")
    }

    /// JSON out, then in again, gives the same bytes: what the gateway writes it reads back.
    #[test]
    fn json_round_trips_through_msgpack() {
        let message = message();
        let json = json!({
            "a": -1, "b": "-9007199254740993", "c": 7, "d": "18446744073709551615", "e": -2,
            "f": 3, "g": 1.5, "h": "NaN", "i": true, "j": "x", "k": "AAE=", "l": "E_ONE",
            "m": [1, "2"], "n": {"k": {"j": "inner"}}, "o": {"a": 5}, "p": "", "s": "4",
            "t": "2024-05-01T10:00:00.5Z", "u": "1.5s", "v": "-3", "w": {"-1": "minus"}
        });
        let bytes = json_to_msgpack(&message, &json, UnknownFields::Reject).expect("encodes");
        let back = msgpack_to_json(&message, &bytes).expect("decodes");
        assert_eq!(back["b"], json!("-9007199254740993"));
        assert_eq!(back["d"], json!("18446744073709551615"));
        assert_eq!(back["m"], json!(["1", "2"]));
        assert_eq!(back["l"], json!("E_ONE"));
        assert_eq!(back["s"], json!("4"));
        assert!(
            back.get("r").is_none(),
            "an unset oneof member is left out: {back}"
        );
        assert_eq!(back["t"], json!("2024-05-01T10:00:00.500Z"));
        let again = json_to_msgpack(&message, &back, UnknownFields::Reject).expect("encodes");
        assert_eq!(again, bytes);

        let error = json_to_msgpack(&message, &json!({"r": "a", "s": 1}), UnknownFields::Ignore)
            .expect_err("two members of a oneof");
        assert_eq!(error.field(), Some("s"), "{error}");
        let error = json_to_msgpack(
            &message,
            &json!({"n": {"k": {"m": [1, {}]}}}),
            UnknownFields::Ignore,
        )
        .expect_err("deep wrong type");
        assert_eq!(error.field(), Some("n.k.m[1]"), "{error}");
    }

    /// Random JSON up to 30 levels deep, keys from the message's own names.
    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            any::<u64>().prop_map(Json::from),
            any::<f64>()
                .prop_map(|n| serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)),
            "[a-zA-Z0-9_=:.+-]{0,12}".prop_map(Json::String),
            proptest::sample::select(&["E_ONE", "1.5s", "2024-05-01T10:00:00Z", "-9", "NaN"][..])
                .prop_map(|s| Json::String(s.to_owned())),
        ];
        leaf.prop_recursive(30, 200, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                proptest::collection::vec(
                    (
                        proptest::sample::select(
                            &[
                                "a", "b", "d", "k", "l", "m", "n", "o", "r", "s", "t", "u", "v",
                                "w", "-1", "zz"
                            ][..]
                        ),
                        inner
                    ),
                    0..5
                )
                .prop_map(|fields| Json::Object(
                    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        /// No JSON makes the transcoder panic, and whatever it accepts comes back as JSON that
        /// encodes to the same bytes.
        #[test]
        fn random_json_never_panics_and_round_trips(json in json_value()) {
            let message = message();
            if let Ok(bytes) = json_to_msgpack(&message, &json, UnknownFields::Ignore) {
                let back = msgpack_to_json(&message, &bytes).expect("what was written reads back");
                let again = json_to_msgpack(&message, &back, UnknownFields::Reject)
                    .expect("what was read encodes");
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
