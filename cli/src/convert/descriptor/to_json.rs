//! MessagePack → JSON by descriptor: a reply message, from the compact or the named layout.

use anyhow::{Context, anyhow, bail};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};
use tonic_msgpack::wkt::TIMESTAMP_EXT;

use super::{WellKnown, wrapper_value};
use crate::convert::common::{base64_encode, duration_from_mp, float_json, timestamp_from_ext};
use crate::convert::schemaless::map_key;
use crate::convert::value::Mp;

/// A reply message as JSON (proto JSON names), from either layout.
pub(crate) fn message_to_json(message: &MessageDescriptor, value: &Mp) -> anyhow::Result<Value> {
    to_json(message, value, message.full_name())
}

fn to_json(message: &MessageDescriptor, value: &Mp, path: &str) -> anyhow::Result<Value> {
    match WellKnown::of(message) {
        Some(WellKnown::Empty) => return Ok(Value::Object(Map::new())),
        Some(WellKnown::Timestamp) => {
            return match value {
                Mp::Nil => Ok(Value::Null),
                Mp::Ext(TIMESTAMP_EXT, data) => {
                    let timestamp = timestamp_from_ext(data).with_context(|| path.to_owned())?;
                    Ok(Value::String(timestamp.to_string()))
                }
                other => bail!(
                    "{path}: expected a timestamp (ext -1), got {}",
                    other.describe()
                ),
            };
        }
        Some(WellKnown::Duration) => {
            return match value {
                Mp::Nil => Ok(Value::Null),
                Mp::Array(_) => {
                    let duration = duration_from_mp(value)
                        .with_context(|| format!("{path}: expected a duration [seconds, nanos]"))?;
                    Ok(Value::String(duration.to_string()))
                }
                other => bail!(
                    "{path}: expected a duration [seconds, nanos], got {}",
                    other.describe()
                ),
            };
        }
        Some(WellKnown::Wrapper) => {
            if *value == Mp::Nil {
                return Ok(Value::Null);
            }
            return single_to_json(&wrapper_value(message, path)?, value, path);
        }
        None => {}
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
