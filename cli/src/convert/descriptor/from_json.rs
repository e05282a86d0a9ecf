//! JSON → MessagePack by descriptor: a request message in the compact or the named layout.

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::Value;
use tonic_msgpack::wkt;

use super::{WellKnown, wrapper_value};
use crate::convert::common::{duration_to_mp, parse_duration, parse_timestamp, timestamp_to_mp};
use crate::convert::value::Mp;

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
    match WellKnown::of(message) {
        Some(WellKnown::Empty) => {
            return match json {
                Value::Null => Ok(Mp::Nil),
                Value::Object(fields) if fields.is_empty() => Ok(Mp::Nil),
                other => bail!("{path}: expected {{}} for google.protobuf.Empty, got {other}"),
            };
        }
        Some(WellKnown::Timestamp) => {
            let Value::String(text) = json else {
                bail!("{path}: expected an RFC 3339 timestamp string, got {json}");
            };
            let timestamp =
                parse_timestamp(text).with_context(|| format!("{path}: invalid timestamp"))?;
            return timestamp_to_mp(timestamp);
        }
        Some(WellKnown::Duration) => {
            let duration = match json {
                Value::String(text) => {
                    parse_duration(text).with_context(|| format!("{path}: invalid duration"))?
                }
                // A number of seconds: accepted for convenience, beyond proto JSON.
                Value::Number(number) => {
                    let total = number.as_f64().unwrap_or_default();
                    wkt::Duration {
                        seconds: total.trunc() as i64,
                        nanos: (total.fract() * 1e9).round() as i32,
                    }
                }
                other => bail!("{path}: expected a duration such as \"1.5s\", got {other}"),
            };
            return duration_to_mp(duration);
        }
        Some(WellKnown::Wrapper) => {
            if json.is_null() {
                return Ok(Mp::Nil);
            }
            return single_from_json(&wrapper_value(message, path)?, json, named, path);
        }
        None => {}
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
            // Proto JSON allows either base64 alphabet.
            Value::String(text) => Mp::Bin(
                STANDARD
                    .decode(text)
                    .or_else(|_| URL_SAFE.decode(text))
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
