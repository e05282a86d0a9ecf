//! Messages by descriptor ⇄ MessagePack, in exactly the bytes the generated Rust types write
//! (wire format v1): encoding goes through rmp-serde like the codec, so integers take their
//! smallest form and floats keep their width; the runtime's `wkt` types encode `Timestamp`
//! and `Duration`.
//!
//! The layout of a message comes from its options (`tonic_msgpack/options.proto`): compact
//! (the default: an array by field number, `nil` in gaps), named (a map by field name, cased
//! by `key_case`), the arguments of a trait method (`nil`, the one value, or an array in
//! order) or a trait method's result (the value itself). Decoding is as tolerant as the
//! generated types: shorter or longer arrays, `nil` for any field, map keys in any spelling
//! or by field number.

use heck::ToUpperCamelCase;
use prost_reflect::prost::Message as _;
use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage as _, Value,
};
use rmpv::Value as Mp;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use tonic_msgpack::wkt;

/// A message that does not fit its descriptor or its layout. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LayoutError {
    /// The field, e.g. `demo.v1.HelloRequest.name`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl LayoutError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        LayoutError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// The MessagePack shape of a message (the `tonic_msgpack.layout` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Compact,
    Named(Case),
    Arguments,
    Value,
}

/// The key spelling of the named layout (the `tonic_msgpack.key_case` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    AsWritten,
    Camel,
    Pascal,
}

/// The `google.protobuf` messages with a shape of their own (wire rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    Empty,
    Timestamp,
    Duration,
    /// `StringValue` and the like: the value itself, or nil.
    Wrapper,
}

fn special(message: &MessageDescriptor) -> Option<Special> {
    let name = message.full_name();
    let short = name.strip_prefix("google.protobuf.")?;
    Some(match short {
        "Empty" => Special::Empty,
        "Timestamp" => Special::Timestamp,
        "Duration" => Special::Duration,
        "DoubleValue" | "FloatValue" | "Int64Value" | "UInt64Value" | "Int32Value"
        | "UInt32Value" | "BoolValue" | "StringValue" | "BytesValue" => Special::Wrapper,
        _ => return None,
    })
}

fn option_number(options: &DynamicMessage, extension: Option<ExtensionDescriptor>) -> i32 {
    extension
        .filter(|extension| options.has_extension(extension))
        .and_then(|extension| options.get_extension(&extension).as_enum_number())
        .unwrap_or(0)
}

/// The `tonic_msgpack.layout` option of a message (0 compact, 1 named, 2 a trait method's
/// arguments, 3 a trait method's result).
pub(crate) fn layout_number(message: &MessageDescriptor) -> i32 {
    let extension = message
        .parent_pool()
        .get_extension_by_name("tonic_msgpack.layout");
    option_number(&message.options(), extension)
}

fn layout(message: &MessageDescriptor) -> Layout {
    let pool = message.parent_pool();
    let options = message.options();
    match layout_number(message) {
        1 => Layout::Named(
            match option_number(
                &options,
                pool.get_extension_by_name("tonic_msgpack.key_case"),
            ) {
                1 => Case::Camel,
                2 => Case::Pascal,
                _ => Case::AsWritten,
            },
        ),
        2 => Layout::Arguments,
        3 => Layout::Value,
        _ => Layout::Compact,
    }
}

/// The fields of a trait message in argument order.
fn by_number(message: &MessageDescriptor) -> Vec<FieldDescriptor> {
    let mut fields: Vec<_> = message.fields().collect();
    fields.sort_by_key(FieldDescriptor::number);
    fields
}

fn cased(field: &FieldDescriptor, case: Case) -> String {
    match case {
        Case::AsWritten => field.name().to_owned(),
        Case::Camel => field.json_name().to_owned(),
        Case::Pascal => field.name().to_upper_camel_case(),
    }
}

/// Whether a field is a member of a real `oneof` (proto3 `optional` is a plain field).
fn in_real_oneof(field: &FieldDescriptor) -> bool {
    field
        .containing_oneof()
        .is_some_and(|oneof| !oneof.is_synthetic())
}

// ---------------------------------------------------------------- encoding

/// The MessagePack bytes of `message`, as its generated Rust type writes them.
///
/// # Errors
///
/// Only for values MessagePack cannot hold (none in practice); the message names the type.
pub fn to_msgpack(message: &DynamicMessage) -> Result<Vec<u8>, LayoutError> {
    let mut out = Vec::with_capacity(64);
    encode_into(message, &mut out)?;
    Ok(out)
}

fn encode_into(message: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), LayoutError> {
    MessageOut(message)
        .serialize(&mut rmp_serde::Serializer::new(out))
        .map_err(|err| LayoutError::new(message.descriptor().full_name(), err.to_string()))
}

/// The protobuf bytes `protobuf` of a `message`, as MessagePack (the bridge's request way).
///
/// # Errors
///
/// Not valid protobuf for `message`.
pub fn protobuf_to_msgpack(
    message: &MessageDescriptor,
    protobuf: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), LayoutError> {
    let decoded = DynamicMessage::decode(message.clone(), protobuf)
        .map_err(|err| LayoutError::new(message.full_name(), format!("invalid protobuf: {err}")))?;
    encode_into(&decoded, out)
}

/// The MessagePack bytes `msgpack` of a `message`, as protobuf (the bridge's reply way).
///
/// # Errors
///
/// Not one MessagePack value, or a value that does not fit `message`.
pub fn msgpack_to_protobuf(
    message: &MessageDescriptor,
    msgpack: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), LayoutError> {
    let decoded = from_msgpack(message, msgpack)?;
    decoded
        .encode(out)
        .map_err(|err| LayoutError::new(message.full_name(), err.to_string()))
}

struct MessageOut<'a>(&'a DynamicMessage);

impl Serialize for MessageOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.0;
        let descriptor = message.descriptor();
        let int = |number: u32| message.get_field_by_number(number).map(|v| v.into_owned());
        match special(&descriptor) {
            Some(Special::Empty) => return serializer.serialize_unit(),
            Some(Special::Timestamp) => {
                let timestamp = wkt::Timestamp {
                    seconds: int(1).and_then(|v| v.as_i64()).unwrap_or_default(),
                    nanos: int(2).and_then(|v| v.as_i32()).unwrap_or_default(),
                };
                return timestamp.serialize(serializer);
            }
            Some(Special::Duration) => {
                let duration = wkt::Duration {
                    seconds: int(1).and_then(|v| v.as_i64()).unwrap_or_default(),
                    nanos: int(2).and_then(|v| v.as_i32()).unwrap_or_default(),
                };
                return duration.serialize(serializer);
            }
            Some(Special::Wrapper) => {
                return match descriptor.get_field(1) {
                    Some(field) => SlotOut(message, &field).serialize(serializer),
                    None => serializer.serialize_unit(),
                };
            }
            None => {}
        }
        match layout(&descriptor) {
            Layout::Compact => {
                let max = descriptor.fields().map(|f| f.number()).max().unwrap_or(0);
                let mut seq = serializer.serialize_seq(Some(max as usize))?;
                for number in 1..=max {
                    match descriptor.get_field(number) {
                        Some(field) => seq.serialize_element(&SlotOut(message, &field))?,
                        None => seq.serialize_element(&())?,
                    }
                }
                seq.end()
            }
            Layout::Named(case) => {
                // The generated struct: plain fields in declaration order, then each oneof
                // (only its set member), as prost-build lays the struct out.
                let plain: Vec<_> = descriptor
                    .fields()
                    .filter(|field| !in_real_oneof(field))
                    .collect();
                let set_oneofs: Vec<_> = descriptor
                    .oneofs()
                    .filter(|oneof| !oneof.is_synthetic())
                    .filter_map(|oneof| oneof.fields().find(|field| message.has_field(field)))
                    .collect();
                let mut map = serializer.serialize_map(Some(plain.len() + set_oneofs.len()))?;
                for field in plain.iter().chain(&set_oneofs) {
                    map.serialize_entry(&cased(field, case), &SlotOut(message, field))?;
                }
                map.end()
            }
            Layout::Arguments => {
                let fields = by_number(&descriptor);
                match fields.as_slice() {
                    [] => serializer.serialize_unit(),
                    [field] => SlotOut(message, field).serialize(serializer),
                    fields => {
                        let mut seq = serializer.serialize_seq(Some(fields.len()))?;
                        for field in fields {
                            seq.serialize_element(&SlotOut(message, field))?;
                        }
                        seq.end()
                    }
                }
            }
            Layout::Value => match by_number(&descriptor).first() {
                Some(field) => SlotOut(message, field).serialize(serializer),
                None => serializer.serialize_unit(),
            },
        }
    }
}

/// One field of a message: nil when it has presence and is unset.
struct SlotOut<'a>(&'a DynamicMessage, &'a FieldDescriptor);

impl Serialize for SlotOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let SlotOut(message, field) = *self;
        if field.supports_presence() && !message.has_field(field) {
            return serializer.serialize_unit();
        }
        let value = message.get_field(field);
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return Err(S::Error::custom("map field without an entry type"));
            };
            let value_kind = entry.map_entry_value_field().kind();
            let Some(entries) = value.as_map() else {
                return serializer.serialize_unit();
            };
            let mut map = serializer.serialize_map(Some(entries.len()))?;
            for (key, value) in entries {
                map.serialize_entry(&KeyOut(key), &ValueOut(value, &value_kind))?;
            }
            return map.end();
        }
        if field.is_list() {
            let kind = field.kind();
            let items = value.as_list().unwrap_or_default();
            let mut seq = serializer.serialize_seq(Some(items.len()))?;
            for item in items {
                seq.serialize_element(&ValueOut(item, &kind))?;
            }
            return seq.end();
        }
        ValueOut(&value, &field.kind()).serialize(serializer)
    }
}

struct KeyOut<'a>(&'a MapKey);

impl Serialize for KeyOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            MapKey::Bool(v) => serializer.serialize_bool(*v),
            MapKey::I32(v) => serializer.serialize_i32(*v),
            MapKey::I64(v) => serializer.serialize_i64(*v),
            MapKey::U32(v) => serializer.serialize_u32(*v),
            MapKey::U64(v) => serializer.serialize_u64(*v),
            MapKey::String(v) => serializer.serialize_str(v),
        }
    }
}

struct ValueOut<'a>(&'a Value, &'a Kind);

impl Serialize for ValueOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Bool(v) => serializer.serialize_bool(*v),
            Value::I32(v) => serializer.serialize_i32(*v),
            Value::I64(v) => serializer.serialize_i64(*v),
            Value::U32(v) => serializer.serialize_u32(*v),
            Value::U64(v) => serializer.serialize_u64(*v),
            Value::F32(v) => serializer.serialize_f32(*v),
            Value::F64(v) => serializer.serialize_f64(*v),
            Value::String(v) => serializer.serialize_str(v),
            Value::Bytes(v) => serializer.serialize_bytes(v),
            Value::EnumNumber(v) => serializer.serialize_i32(*v),
            Value::Message(v) => MessageOut(v).serialize(serializer),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&ValueOut(item, self.1))?;
                }
                seq.end()
            }
            Value::Map(_) => Err(S::Error::custom("nested map value")),
        }
    }
}

// ---------------------------------------------------------------- decoding

/// A `message` from its MessagePack bytes, in the layout its options say.
///
/// # Errors
///
/// Not exactly one MessagePack value, or a value that does not fit `message`; the message
/// names the field.
pub fn from_msgpack(
    message: &MessageDescriptor,
    msgpack: &[u8],
) -> Result<DynamicMessage, LayoutError> {
    let mut reader = msgpack;
    let value = rmpv::decode::read_value(&mut reader).map_err(|err| {
        LayoutError::new(message.full_name(), format!("invalid MessagePack: {err}"))
    })?;
    if !reader.is_empty() {
        return Err(LayoutError::new(
            message.full_name(),
            format!("{} bytes after the MessagePack value", reader.len()),
        ));
    }
    message_in(message, &value, message.full_name())
}

fn message_in(
    descriptor: &MessageDescriptor,
    value: &Mp,
    path: &str,
) -> Result<DynamicMessage, LayoutError> {
    let mut message = DynamicMessage::new(descriptor.clone());
    match special(descriptor) {
        Some(Special::Empty) => return Ok(message),
        Some(Special::Timestamp | Special::Duration) => {
            if value.is_nil() {
                return Ok(message);
            }
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, value)
                .map_err(|err| LayoutError::new(path, err.to_string()))?;
            let (seconds, nanos) = if special(descriptor) == Some(Special::Timestamp) {
                let ts: wkt::Timestamp = rmp_serde::from_slice(&bytes)
                    .map_err(|err| LayoutError::new(path, format!("invalid timestamp: {err}")))?;
                (ts.seconds, ts.nanos)
            } else {
                let d: wkt::Duration = rmp_serde::from_slice(&bytes)
                    .map_err(|err| LayoutError::new(path, format!("invalid duration: {err}")))?;
                (d.seconds, d.nanos)
            };
            message.set_field_by_number(1, Value::I64(seconds));
            message.set_field_by_number(2, Value::I32(nanos));
            return Ok(message);
        }
        Some(Special::Wrapper) => {
            if let Some(field) = descriptor.get_field(1) {
                set(&mut message, &field, value, path)?;
            }
            return Ok(message);
        }
        None => {}
    }
    match (layout(descriptor), value) {
        (_, Mp::Nil) => {}
        (Layout::Arguments, value) => {
            let fields = by_number(descriptor);
            match (fields.as_slice(), value) {
                ([], _) => {}
                ([field], value) => set(&mut message, field, value, path)?,
                (fields, Mp::Array(items)) => {
                    for (field, item) in fields.iter().zip(items) {
                        set(&mut message, field, item, path)?;
                    }
                }
                (_, other) => {
                    return Err(LayoutError::new(
                        path,
                        format!(
                            "expected an array of the arguments, got {}",
                            describe(other)
                        ),
                    ));
                }
            }
        }
        (Layout::Value, value) => {
            if let Some(field) = by_number(descriptor).first() {
                set(&mut message, field, value, path)?;
            }
        }
        (_, Mp::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let Ok(number) = u32::try_from(index + 1) else {
                    break;
                };
                if let Some(field) = descriptor.get_field(number) {
                    set(&mut message, &field, item, path)?;
                }
            }
        }
        (_, Mp::Map(entries)) => {
            for (key, item) in entries {
                let field = match key {
                    Mp::String(name) => {
                        name.as_str().and_then(|name| field_named(descriptor, name))
                    }
                    Mp::Integer(number) => number
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .and_then(|n| descriptor.get_field(n)),
                    _ => None,
                };
                if let Some(field) = field {
                    set(&mut message, &field, item, path)?;
                }
            }
        }
        (_, other) => {
            return Err(LayoutError::new(
                path,
                format!(
                    "expected an array or a map for message {}, got {}",
                    descriptor.full_name(),
                    describe(other)
                ),
            ));
        }
    }
    Ok(message)
}

/// A field by any spelling the generated decoders accept.
fn field_named(descriptor: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    descriptor
        .get_field_by_name(key)
        .or_else(|| descriptor.get_field_by_json_name(key))
        .or_else(|| {
            descriptor
                .fields()
                .find(|field| field.name().to_upper_camel_case() == key)
        })
}

fn set(
    message: &mut DynamicMessage,
    field: &FieldDescriptor,
    value: &Mp,
    path: &str,
) -> Result<(), LayoutError> {
    if value.is_nil() {
        return Ok(());
    }
    let path = format!("{path}.{}", field.name());
    let decoded = if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(LayoutError::new(&path, "map field without an entry type"));
        };
        let Mp::Map(entries) = value else {
            return Err(LayoutError::new(
                &path,
                format!("expected a map, got {}", describe(value)),
            ));
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let mut map = std::collections::HashMap::with_capacity(entries.len());
        for (key, item) in entries {
            let key = match scalar(&key_kind, key, &path)? {
                Value::Bool(v) => MapKey::Bool(v),
                Value::I32(v) => MapKey::I32(v),
                Value::I64(v) => MapKey::I64(v),
                Value::U32(v) => MapKey::U32(v),
                Value::U64(v) => MapKey::U64(v),
                Value::String(v) => MapKey::String(v),
                _ => return Err(LayoutError::new(&path, "unsupported map key type")),
            };
            let item = if item.is_nil() {
                Value::default_value(&value_kind)
            } else {
                scalar(&value_kind, item, &path)?
            };
            map.insert(key, item);
        }
        Value::Map(map)
    } else if field.is_list() {
        let Mp::Array(items) = value else {
            return Err(LayoutError::new(
                &path,
                format!("expected an array, got {}", describe(value)),
            ));
        };
        let kind = field.kind();
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            list.push(if item.is_nil() {
                Value::default_value(&kind)
            } else {
                scalar(&kind, item, &path)?
            });
        }
        Value::List(list)
    } else {
        scalar(&field.kind(), value, &path)?
    };
    message.set_field(field, decoded);
    Ok(())
}

fn scalar(kind: &Kind, value: &Mp, path: &str) -> Result<Value, LayoutError> {
    let wrong = |expected: &str| {
        LayoutError::new(
            path,
            format!("expected {expected}, got {}", describe(value)),
        )
    };
    let int = || match value {
        Mp::Integer(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    };
    let ranged = |expected: &str| int().ok_or_else(|| wrong(expected));
    let out_of_range = || LayoutError::new(path, format!("{} is out of range", describe(value)));
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(i32::try_from(ranged("an integer")?).map_err(|_| out_of_range())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(i64::try_from(ranged("an integer")?).map_err(|_| out_of_range())?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(u32::try_from(ranged("an unsigned integer")?).map_err(|_| out_of_range())?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(u64::try_from(ranged("an unsigned integer")?).map_err(|_| out_of_range())?)
        }
        Kind::Float => match value {
            Mp::F32(v) => Value::F32(*v),
            Mp::F64(v) => Value::F32(*v as f32),
            _ => Value::F32(ranged("a float")? as f32),
        },
        Kind::Double => match value {
            Mp::F64(v) => Value::F64(*v),
            Mp::F32(v) => Value::F64(f64::from(*v)),
            _ => Value::F64(ranged("a float")? as f64),
        },
        Kind::Bool => Value::Bool(value.as_bool().ok_or_else(|| wrong("a boolean"))?),
        Kind::String => Value::String(
            value
                .as_str()
                .ok_or_else(|| wrong("a UTF-8 string"))?
                .to_owned(),
        ),
        Kind::Bytes => Value::Bytes(
            value
                .as_slice()
                .ok_or_else(|| wrong("binary data"))?
                .to_vec()
                .into(),
        ),
        Kind::Enum(_) => {
            Value::EnumNumber(i32::try_from(ranged("an enum number")?).map_err(|_| out_of_range())?)
        }
        Kind::Message(message) => Value::Message(message_in(message, value, path)?),
    })
}

fn describe(value: &Mp) -> &'static str {
    match value {
        Mp::Nil => "nil",
        Mp::Boolean(_) => "a boolean",
        Mp::Integer(_) => "an integer",
        Mp::F32(_) | Mp::F64(_) => "a float",
        Mp::String(_) => "a string",
        Mp::Binary(_) => "binary data",
        Mp::Array(_) => "an array",
        Mp::Map(_) => "a map",
        Mp::Ext(..) => "an extension value",
    }
}
