//! JSON ⇄ MessagePack for `tonic-msgpack call`, schema-less or by a proto descriptor
//! (wire format v1).
//!
//! - Schema-less: JSON objects ⇄ maps, arrays ⇄ arrays; bin → base64 string, ext −1 → RFC 3339
//!   timestamp string, other ext → `{"$ext": type, "base64": data}`.
//! - By descriptor: the compact layout (an array by field number, `nil` gaps) or the named one
//!   (a map by field name); rule 5 types (Timestamp as ext −1, Duration as `[seconds, nanos]`,
//!   wrappers as value or nil, Empty as nil). JSON keys are the proto field name or its JSON
//!   name; replies use JSON names, enums by name, bytes as base64.

use std::fmt::Write as _;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Number, Value};

/// One MessagePack value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mp {
    Nil,
    Bool(bool),
    /// A negative integer (non-negative ones are `UInt`).
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

impl Mp {
    fn int(value: i64) -> Mp {
        u64::try_from(value).map_or(Mp::Int(value), Mp::UInt)
    }

    fn describe(&self) -> &'static str {
        match self {
            Mp::Nil => "nil",
            Mp::Bool(_) => "a bool",
            Mp::Int(_) | Mp::UInt(_) => "an integer",
            Mp::F32(_) | Mp::F64(_) => "a float",
            Mp::Str(_) => "a string",
            Mp::Bin(_) => "bin",
            Mp::Array(_) => "an array",
            Mp::Map(_) => "a map",
            Mp::Ext(..) => "an ext",
        }
    }

    /// The MessagePack encoding (smallest int and length forms).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        use rmp::encode;
        // Writing to a Vec cannot fail: the results are ignored on purpose.
        match self {
            Mp::Nil => {
                let _ = encode::write_nil(out);
            }
            Mp::Bool(value) => {
                let _ = encode::write_bool(out, *value);
            }
            Mp::Int(value) => {
                let _ = encode::write_sint(out, *value);
            }
            Mp::UInt(value) => {
                let _ = encode::write_uint(out, *value);
            }
            Mp::F32(value) => {
                let _ = encode::write_f32(out, *value);
            }
            Mp::F64(value) => {
                let _ = encode::write_f64(out, *value);
            }
            Mp::Str(value) => {
                let _ = encode::write_str(out, value);
            }
            Mp::Bin(value) => {
                let _ = encode::write_bin(out, value);
            }
            Mp::Array(items) => {
                let _ = encode::write_array_len(out, len32(items.len()));
                for item in items {
                    item.write(out);
                }
            }
            Mp::Map(entries) => {
                let _ = encode::write_map_len(out, len32(entries.len()));
                for (key, value) in entries {
                    key.write(out);
                    value.write(out);
                }
            }
            Mp::Ext(kind, data) => {
                let _ = encode::write_ext_meta(out, len32(data.len()), *kind);
                out.extend_from_slice(data);
            }
        }
    }

    /// Decodes exactly one value from `bytes` (trailing bytes are an error, as in rule 2).
    pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Mp> {
        let mut reader = Reader { bytes, pos: 0 };
        let value = reader.value(0)?;
        if reader.pos != bytes.len() {
            bail!(
                "{} trailing bytes after the MessagePack value",
                bytes.len() - reader.pos
            );
        }
        Ok(value)
    }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A MessagePack reader over one frame.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> anyhow::Result<&[u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| anyhow!("truncated MessagePack value at byte {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, len: usize) -> anyhow::Result<u64> {
        Ok(self
            .take(len)?
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
    }

    fn sint(&mut self, len: usize) -> anyhow::Result<i64> {
        let raw = self.uint(len)?;
        let shift = 64 - 8 * len as u32;
        Ok(((raw << shift) as i64) >> shift)
    }

    fn len(&mut self, bytes: usize) -> anyhow::Result<usize> {
        usize::try_from(self.uint(bytes)?).context("MessagePack length too large")
    }

    fn value(&mut self, depth: usize) -> anyhow::Result<Mp> {
        if depth > 128 {
            bail!("MessagePack value nested over 128 levels");
        }
        let at = self.pos;
        let marker = self.take(1)?[0];
        let value = match marker {
            0x00..=0x7f => Mp::UInt(u64::from(marker)),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => self.str(usize::from(marker & 0x1f))?,
            0xc0 => Mp::Nil,
            0xc2 => Mp::Bool(false),
            0xc3 => Mp::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (marker - 0xc4))?;
                Mp::Bin(self.take(len)?.to_vec())
            }
            0xc7..=0xc9 => {
                let len = self.len(1 << (marker - 0xc7))?;
                let kind = self.sint(1)? as i8;
                Mp::Ext(kind, self.take(len)?.to_vec())
            }
            0xca => Mp::F32(f32::from_bits(self.uint(4)? as u32)),
            0xcb => Mp::F64(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Mp::UInt(self.uint(1 << (marker - 0xcc))?),
            0xd0..=0xd3 => Mp::int(self.sint(1 << (marker - 0xd0))?),
            0xd4..=0xd8 => {
                let kind = self.sint(1)? as i8;
                Mp::Ext(kind, self.take(1 << (marker - 0xd4))?.to_vec())
            }
            0xd9..=0xdb => {
                let len = self.len(1 << (marker - 0xd9))?;
                self.str(len)?
            }
            0xdc | 0xdd => {
                let len = self.len(if marker == 0xdc { 2 } else { 4 })?;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.len(if marker == 0xde { 2 } else { 4 })?;
                self.map(len, depth)?
            }
            0xe0..=0xff => Mp::Int(i64::from(marker as i8)),
            0xc1 => bail!("invalid MessagePack marker 0xc1 at byte {at}"),
        };
        Ok(value)
    }

    fn str(&mut self, len: usize) -> anyhow::Result<Mp> {
        let at = self.pos;
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes)
            .with_context(|| format!("MessagePack string at byte {at} is not UTF-8"))?;
        Ok(Mp::Str(text.to_owned()))
    }

    fn array(&mut self, len: usize, depth: usize) -> anyhow::Result<Mp> {
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Mp::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> anyhow::Result<Mp> {
        let mut entries = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(Mp::Map(entries))
    }
}

// ---------------------------------------------------------------------------------------------
// Schema-less

/// Any JSON value as MessagePack: objects → maps, arrays → arrays, integers → ints.
pub(crate) fn json_to_mp(json: &Value) -> Mp {
    match json {
        Value::Null => Mp::Nil,
        Value::Bool(value) => Mp::Bool(*value),
        Value::Number(number) => {
            if let Some(value) = number.as_u64() {
                Mp::UInt(value)
            } else if let Some(value) = number.as_i64() {
                Mp::Int(value)
            } else {
                Mp::F64(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(text) => Mp::Str(text.clone()),
        Value::Array(items) => Mp::Array(items.iter().map(json_to_mp).collect()),
        Value::Object(fields) => Mp::Map(
            fields
                .iter()
                .map(|(key, value)| (Mp::Str(key.clone()), json_to_mp(value)))
                .collect(),
        ),
    }
}

/// Any MessagePack value as JSON (see the module docs for bin and ext).
pub(crate) fn mp_to_json(value: &Mp) -> Value {
    match value {
        Mp::Nil => Value::Null,
        Mp::Bool(value) => Value::Bool(*value),
        Mp::Int(value) => Value::from(*value),
        Mp::UInt(value) => Value::from(*value),
        Mp::F32(value) => float_json(f64::from(*value)),
        Mp::F64(value) => float_json(*value),
        Mp::Str(text) => Value::String(text.clone()),
        Mp::Bin(bytes) => Value::String(base64_encode(bytes)),
        Mp::Array(items) => Value::Array(items.iter().map(mp_to_json).collect()),
        Mp::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (map_key(key), mp_to_json(value)))
                .collect(),
        ),
        Mp::Ext(-1, data) => match timestamp_from_ext(data) {
            Some((seconds, nanos)) => Value::String(format_timestamp(seconds, nanos)),
            None => ext_json(-1, data),
        },
        Mp::Ext(kind, data) => ext_json(*kind, data),
    }
}

fn ext_json(kind: i8, data: &[u8]) -> Value {
    let mut object = Map::new();
    object.insert("$ext".into(), Value::from(kind));
    object.insert("base64".into(), Value::String(base64_encode(data)));
    Value::Object(object)
}

/// A JSON object key for a MessagePack map key: strings as they are, others as JSON text.
fn map_key(key: &Mp) -> String {
    match key {
        Mp::Str(text) => text.clone(),
        other => mp_to_json(other).to_string(),
    }
}

fn float_json(value: f64) -> Value {
    Number::from_f64(value).map_or_else(
        || {
            Value::String(
                if value.is_nan() {
                    "NaN"
                } else if value > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        },
        Value::Number,
    )
}

fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// By descriptor: JSON → MessagePack

/// A request message from JSON by its descriptor; `named` selects the map layout.
pub(crate) fn message_from_json(
    message: &MessageDescriptor,
    json: &Value,
    named: bool,
) -> anyhow::Result<Mp> {
    from_json(message, json, named, message.full_name())
}

fn from_json(
    message: &MessageDescriptor,
    json: &Value,
    named: bool,
    path: &str,
) -> anyhow::Result<Mp> {
    match message.full_name() {
        "google.protobuf.Empty" => {
            return match json {
                Value::Null => Ok(Mp::Nil),
                Value::Object(fields) if fields.is_empty() => Ok(Mp::Nil),
                other => bail!("{path}: expected {{}} for google.protobuf.Empty, got {other}"),
            };
        }
        "google.protobuf.Timestamp" => {
            let Value::String(text) = json else {
                bail!("{path}: expected an RFC 3339 timestamp string, got {json}");
            };
            let (seconds, nanos) =
                parse_timestamp(text).with_context(|| format!("{path}: invalid timestamp"))?;
            return Ok(Mp::Ext(-1, timestamp_to_ext(seconds, nanos)));
        }
        "google.protobuf.Duration" => {
            let (seconds, nanos) = match json {
                Value::String(text) => {
                    parse_duration(text).with_context(|| format!("{path}: invalid duration"))?
                }
                Value::Number(number) => {
                    let total = number.as_f64().unwrap_or_default();
                    (total.trunc() as i64, (total.fract() * 1e9).round() as i32)
                }
                other => bail!("{path}: expected a duration such as \"1.5s\", got {other}"),
            };
            return Ok(Mp::Array(vec![Mp::int(seconds), Mp::int(i64::from(nanos))]));
        }
        name if is_wrapper(name) => {
            if json.is_null() {
                return Ok(Mp::Nil);
            }
            let field = message
                .get_field_by_name("value")
                .ok_or_else(|| anyhow!("{path}: wrapper without a value field"))?;
            return single_from_json(&field, json, named, path);
        }
        _ => {}
    }
    let Value::Object(object) = json else {
        if json.is_null() {
            return Ok(Mp::Nil);
        }
        bail!(
            "{path}: expected a JSON object for message {}, got {json}",
            message.full_name()
        );
    };
    let mut values: Vec<(FieldDescriptor, Mp)> = Vec::new();
    for (key, value) in object {
        let field = message
            .get_field_by_name(key)
            .or_else(|| message.get_field_by_json_name(key))
            .ok_or_else(|| {
                let names: Vec<String> = message.fields().map(|f| f.json_name().into()).collect();
                anyhow!(
                    "{path}: unknown field \"{key}\" (fields: {})",
                    names.join(", ")
                )
            })?;
        if value.is_null() {
            continue;
        }
        let field_path = format!("{path}.{}", field.name());
        let converted = field_from_json(&field, value, named, &field_path)?;
        values.push((field, converted));
    }
    if named {
        values.sort_by_key(|(field, _)| field.number());
        return Ok(Mp::Map(
            values
                .into_iter()
                .map(|(field, value)| (Mp::Str(field.name().to_owned()), value))
                .collect(),
        ));
    }
    let slots = message.fields().map(|f| f.number()).max().unwrap_or(0);
    let mut array = vec![Mp::Nil; usize::try_from(slots).unwrap_or(0)];
    for (field, value) in values {
        if let Some(slot) = usize::try_from(field.number() - 1)
            .ok()
            .and_then(|index| array.get_mut(index))
        {
            *slot = value;
        }
    }
    Ok(Mp::Array(array))
}

fn is_wrapper(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

fn field_from_json(
    field: &FieldDescriptor,
    json: &Value,
    named: bool,
    path: &str,
) -> anyhow::Result<Mp> {
    if field.is_map() {
        let Value::Object(object) = json else {
            bail!("{path}: expected a JSON object for a map, got {json}");
        };
        let Kind::Message(entry) = field.kind() else {
            bail!("{path}: map without an entry message");
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        let mut entries = Vec::with_capacity(object.len());
        for (key, value) in object {
            let item_path = format!("{path}[{key:?}]");
            let key = map_key_from_json(&key_field, key, &item_path)?;
            entries.push((
                key,
                single_from_json(&value_field, value, named, &item_path)?,
            ));
        }
        return Ok(Mp::Map(entries));
    }
    if field.is_list() {
        let Value::Array(items) = json else {
            bail!("{path}: expected a JSON array for a repeated field, got {json}");
        };
        return items
            .iter()
            .enumerate()
            .map(|(index, item)| single_from_json(field, item, named, &format!("{path}[{index}]")))
            .collect::<anyhow::Result<_>>()
            .map(Mp::Array);
    }
    single_from_json(field, json, named, path)
}

fn map_key_from_json(field: &FieldDescriptor, key: &str, path: &str) -> anyhow::Result<Mp> {
    let json = match field.kind() {
        Kind::String => Value::String(key.to_owned()),
        Kind::Bool => Value::Bool(
            key.parse()
                .with_context(|| format!("{path}: expected a bool key"))?,
        ),
        _ => Value::String(key.to_owned()),
    };
    single_from_json(field, &json, false, path)
}

/// One value (not repeated) of `field`'s type.
fn single_from_json(
    field: &FieldDescriptor,
    json: &Value,
    named: bool,
    path: &str,
) -> anyhow::Result<Mp> {
    let kind = field.kind();
    let value = match kind {
        Kind::Double | Kind::Float => {
            let value = match json {
                Value::Number(number) => number.as_f64().unwrap_or_default(),
                Value::String(text) => match text.as_str() {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    text => text
                        .parse()
                        .with_context(|| format!("{path}: expected a number, got {json}"))?,
                },
                other => bail!("{path}: expected a number, got {other}"),
            };
            if kind == Kind::Float {
                Mp::F32(value as f32)
            } else {
                Mp::F64(value)
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let value = integer::<i64>(json, path)?;
            i32::try_from(value).with_context(|| format!("{path}: {value} is out of range"))?;
            Mp::int(value)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Mp::int(integer::<i64>(json, path)?),
        Kind::Uint32 | Kind::Fixed32 => {
            let value = integer::<u64>(json, path)?;
            u32::try_from(value).with_context(|| format!("{path}: {value} is out of range"))?;
            Mp::UInt(value)
        }
        Kind::Uint64 | Kind::Fixed64 => Mp::UInt(integer::<u64>(json, path)?),
        Kind::Bool => match json {
            Value::Bool(value) => Mp::Bool(*value),
            other => bail!("{path}: expected true or false, got {other}"),
        },
        Kind::String => match json {
            Value::String(text) => Mp::Str(text.clone()),
            other => bail!("{path}: expected a string, got {other}"),
        },
        Kind::Bytes => match json {
            Value::String(text) => Mp::Bin(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                    .with_context(|| format!("{path}: expected base64 bytes"))?,
            ),
            other => bail!("{path}: expected base64 bytes as a string, got {other}"),
        },
        Kind::Enum(descriptor) => Mp::int(i64::from(enum_from_json(&descriptor, json, path)?)),
        Kind::Message(message) => from_json(&message, json, named, path)?,
    };
    Ok(value)
}

fn integer<T: std::str::FromStr + TryFrom<i64> + TryFrom<u64>>(
    json: &Value,
    path: &str,
) -> anyhow::Result<T> {
    let out_of_range = || anyhow!("{path}: {json} is out of range");
    match json {
        Value::Number(number) => {
            if let Some(value) = number.as_u64() {
                T::try_from(value).map_err(|_| out_of_range())
            } else if let Some(value) = number.as_i64() {
                T::try_from(value).map_err(|_| out_of_range())
            } else {
                bail!("{path}: expected an integer, got {json}")
            }
        }
        // Proto JSON writes 64-bit integers as strings.
        Value::String(text) => text
            .parse()
            .map_err(|_| anyhow!("{path}: expected an integer, got {json}")),
        other => bail!("{path}: expected an integer, got {other}"),
    }
}

fn enum_from_json(descriptor: &EnumDescriptor, json: &Value, path: &str) -> anyhow::Result<i32> {
    match json {
        Value::String(name) => descriptor
            .get_value_by_name(name)
            .map(|value| value.number())
            .ok_or_else(|| {
                let names: Vec<String> = descriptor.values().map(|v| v.name().into()).collect();
                anyhow!(
                    "{path}: unknown {} value \"{name}\" (values: {})",
                    descriptor.full_name(),
                    names.join(", ")
                )
            }),
        Value::Number(_) => integer::<i32>(json, path),
        other => bail!(
            "{path}: expected a {} name or number, got {other}",
            descriptor.full_name()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// By descriptor: MessagePack → JSON

/// A reply message as JSON (proto JSON names), from either layout.
pub(crate) fn message_to_json(message: &MessageDescriptor, value: &Mp) -> anyhow::Result<Value> {
    to_json(message, value, message.full_name())
}

fn to_json(message: &MessageDescriptor, value: &Mp, path: &str) -> anyhow::Result<Value> {
    match message.full_name() {
        "google.protobuf.Empty" => return Ok(Value::Object(Map::new())),
        "google.protobuf.Timestamp" => {
            return match value {
                Mp::Nil => Ok(Value::Null),
                Mp::Ext(-1, data) => {
                    let (seconds, nanos) = timestamp_from_ext(data)
                        .ok_or_else(|| anyhow!("{path}: invalid timestamp ext"))?;
                    Ok(Value::String(format_timestamp(seconds, nanos)))
                }
                other => bail!(
                    "{path}: expected a timestamp (ext -1), got {}",
                    other.describe()
                ),
            };
        }
        "google.protobuf.Duration" => {
            return match value {
                Mp::Nil => Ok(Value::Null),
                Mp::Array(parts) => {
                    let number = |index: usize| match parts.get(index) {
                        Some(Mp::Int(value)) => Some(*value),
                        Some(Mp::UInt(value)) => i64::try_from(*value).ok(),
                        Some(Mp::Nil) | None => Some(0),
                        Some(_) => None,
                    };
                    match (number(0), number(1)) {
                        (Some(seconds), Some(nanos)) => {
                            Ok(Value::String(format_duration(seconds, nanos)))
                        }
                        _ => bail!("{path}: expected a duration [seconds, nanos]"),
                    }
                }
                other => bail!(
                    "{path}: expected a duration [seconds, nanos], got {}",
                    other.describe()
                ),
            };
        }
        name if is_wrapper(name) => {
            if *value == Mp::Nil {
                return Ok(Value::Null);
            }
            let field = message
                .get_field_by_name("value")
                .ok_or_else(|| anyhow!("{path}: wrapper without a value field"))?;
            return single_to_json(&field, value, path);
        }
        _ => {}
    }
    let mut present: Vec<(FieldDescriptor, &Mp)> = Vec::new();
    match value {
        Mp::Nil => return Ok(Value::Null),
        Mp::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
                if let Some(field) = message.get_field(number) {
                    present.push((field, item));
                }
            }
        }
        Mp::Map(entries) => {
            for (key, item) in entries {
                let Mp::Str(key) = key else { continue };
                let field = message.fields().find(|field| {
                    field.name() == key
                        || field.json_name() == key
                        || field.json_name().eq_ignore_ascii_case(key)
                });
                if let Some(field) = field {
                    present.push((field, item));
                }
            }
        }
        other => bail!(
            "{path}: expected message {} (an array or a map), got {}",
            message.full_name(),
            other.describe()
        ),
    }
    present.sort_by_key(|(field, _)| field.number());
    let mut object = Map::new();
    for (field, item) in present {
        if *item == Mp::Nil {
            continue;
        }
        let field_path = format!("{path}.{}", field.name());
        object.insert(
            field.json_name().to_owned(),
            field_to_json(&field, item, &field_path)?,
        );
    }
    Ok(Value::Object(object))
}

fn field_to_json(field: &FieldDescriptor, value: &Mp, path: &str) -> anyhow::Result<Value> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            bail!("{path}: map without an entry message");
        };
        let value_field = entry.map_entry_value_field();
        let Mp::Map(entries) = value else {
            bail!("{path}: expected a map, got {}", value.describe());
        };
        let mut object = Map::new();
        for (key, item) in entries {
            let key = map_key(key);
            let item_path = format!("{path}[{key:?}]");
            object.insert(key, single_to_json(&value_field, item, &item_path)?);
        }
        return Ok(Value::Object(object));
    }
    if field.is_list() {
        let Mp::Array(items) = value else {
            bail!("{path}: expected an array, got {}", value.describe());
        };
        return items
            .iter()
            .enumerate()
            .map(|(index, item)| single_to_json(field, item, &format!("{path}[{index}]")))
            .collect::<anyhow::Result<_>>()
            .map(Value::Array);
    }
    single_to_json(field, value, path)
}

fn single_to_json(field: &FieldDescriptor, value: &Mp, path: &str) -> anyhow::Result<Value> {
    let mismatch =
        |expected: &str| anyhow!("{path}: expected {expected}, got {}", value.describe());
    Ok(match field.kind() {
        Kind::Message(message) => to_json(&message, value, path)?,
        Kind::Enum(descriptor) => match value {
            Mp::Int(_) | Mp::UInt(_) => {
                let number = match value {
                    Mp::Int(v) => i32::try_from(*v).ok(),
                    Mp::UInt(v) => i32::try_from(*v).ok(),
                    _ => None,
                }
                .ok_or_else(|| mismatch("an enum number"))?;
                descriptor
                    .get_value(number)
                    .map_or(Value::from(number), |v| Value::String(v.name().to_owned()))
            }
            _ => return Err(mismatch("an enum number")),
        },
        Kind::Bytes => match value {
            Mp::Bin(bytes) => Value::String(base64_encode(bytes)),
            Mp::Str(text) => Value::String(base64_encode(text.as_bytes())),
            _ => return Err(mismatch("bin")),
        },
        Kind::String => match value {
            Mp::Str(text) => Value::String(text.clone()),
            _ => return Err(mismatch("a string")),
        },
        Kind::Bool => match value {
            Mp::Bool(flag) => Value::Bool(*flag),
            _ => return Err(mismatch("a bool")),
        },
        Kind::Double | Kind::Float => match value {
            Mp::F32(v) => float_json(f64::from(*v)),
            Mp::F64(v) => float_json(*v),
            Mp::Int(v) => Value::from(*v),
            Mp::UInt(v) => Value::from(*v),
            _ => return Err(mismatch("a number")),
        },
        _ => match value {
            Mp::Int(v) => Value::from(*v),
            Mp::UInt(v) => Value::from(*v),
            _ => return Err(mismatch("an integer")),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Timestamps and durations

/// The MessagePack timestamp (ext −1) in its smallest form.
fn timestamp_to_ext(seconds: i64, nanos: u32) -> Vec<u8> {
    if nanos == 0
        && let Ok(seconds) = u32::try_from(seconds)
    {
        return seconds.to_be_bytes().to_vec();
    }
    if (0..1 << 34).contains(&seconds) {
        let packed = (u64::from(nanos) << 34) | seconds as u64;
        return packed.to_be_bytes().to_vec();
    }
    let mut out = nanos.to_be_bytes().to_vec();
    out.extend_from_slice(&seconds.to_be_bytes());
    out
}

fn timestamp_from_ext(data: &[u8]) -> Option<(i64, u32)> {
    match data.len() {
        4 => Some((i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0)),
        8 => {
            let packed = u64::from_be_bytes(data.try_into().ok()?);
            Some(((packed & 0x3_ffff_ffff) as i64, (packed >> 34) as u32))
        }
        12 => Some((
            i64::from_be_bytes(data[4..].try_into().ok()?),
            u32::from_be_bytes(data[..4].try_into().ok()?),
        )),
        _ => None,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 in UTC, with 0, 3, 6 or 9 fraction digits (proto JSON style).
fn format_timestamp(seconds: i64, nanos: u32) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    push_fraction(&mut out, nanos);
    out.push('Z');
    out
}

fn push_fraction(out: &mut String, nanos: u32) {
    if nanos == 0 {
    } else if nanos.is_multiple_of(1_000_000) {
        let _ = write!(out, ".{:03}", nanos / 1_000_000);
    } else if nanos.is_multiple_of(1_000) {
        let _ = write!(out, ".{:06}", nanos / 1_000);
    } else {
        let _ = write!(out, ".{nanos:09}");
    }
}

/// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.5+02:00`.
fn parse_timestamp(text: &str) -> anyhow::Result<(i64, u32)> {
    let invalid = || anyhow!("expected RFC 3339 such as \"2024-05-01T12:00:00Z\", got \"{text}\"");
    let number = |range: std::ops::Range<usize>| -> anyhow::Result<i64> {
        text.get(range)
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(invalid)
    };
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(invalid());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(invalid());
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(invalid());
        }
        let scale = 10u32.pow(9 - digits as u32);
        nanos = fraction[..digits].parse::<u32>().map_err(|_| invalid())? * scale;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(invalid()),
            };
            let hours: i64 = rest[1..3].parse().map_err(|_| invalid())?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| invalid())?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(invalid()),
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Ok((seconds, nanos))
}

/// `1.5s` → (1, 500000000); `-0.25s` → (0, -250000000).
fn parse_duration(text: &str) -> anyhow::Result<(i64, i32)> {
    let invalid = || anyhow!("expected a duration such as \"1.5s\", got \"{text}\"");
    let body = text.strip_suffix('s').ok_or_else(invalid)?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return Err(invalid());
    }
    let seconds: i64 = whole.parse().map_err(|_| invalid())?;
    let nanos: i32 = if fraction.is_empty() {
        0
    } else {
        let scaled: i32 = fraction.parse().map_err(|_| invalid())?;
        scaled * 10i32.pow(9 - fraction.len() as u32)
    };
    Ok(if negative {
        (-seconds, -nanos)
    } else {
        (seconds, nanos)
    })
}

fn format_duration(seconds: i64, nanos: i64) -> String {
    let negative = seconds < 0 || nanos < 0;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let _ = write!(out, "{}", seconds.unsigned_abs());
    push_fraction(&mut out, u32::try_from(nanos.unsigned_abs()).unwrap_or(0));
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values() {
        let value = Mp::Array(vec![
            Mp::UInt(1),
            Mp::Int(-300),
            Mp::Str("héllo".into()),
            Mp::Bin(vec![1, 2, 3]),
            Mp::Map(vec![(Mp::Str("k".into()), Mp::F64(1.5))]),
            Mp::Ext(-1, vec![0, 0, 0, 1]),
            Mp::Nil,
            Mp::Bool(true),
        ]);
        assert_eq!(Mp::decode(&value.encode()).expect("decode"), value);
        assert_eq!(
            Mp::Array(vec![Mp::UInt(1), Mp::UInt(2)]).encode(),
            [0x92, 1, 2]
        );
        assert!(Mp::decode(&[0x01, 0x02]).is_err());
        assert!(Mp::decode(&[0x92, 0x01]).is_err());
    }

    #[test]
    fn timestamps_and_durations() {
        let (seconds, nanos) = parse_timestamp("2024-05-01T12:00:00.5+02:00").expect("parse");
        assert_eq!(format_timestamp(seconds, nanos), "2024-05-01T10:00:00.500Z");
        assert_eq!(
            timestamp_from_ext(&timestamp_to_ext(seconds, nanos)),
            Some((seconds, nanos))
        );
        assert_eq!(format_timestamp(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp_from_ext(&timestamp_to_ext(-5, 7)), Some((-5, 7)));
        assert_eq!(parse_duration("1.5s").expect("parse"), (1, 500_000_000));
        assert_eq!(format_duration(-1, -500_000_000), "-1.500s");
        assert!(parse_timestamp("yesterday").is_err());
    }
}
