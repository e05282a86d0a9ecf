//! JSON → a message by its descriptor (proto JSON, as the typed transcoders read it): keys are
//! the proto field name or its JSON name, 64-bit integers come as strings or numbers, enums by
//! name or number, bytes as base64, `Timestamp` as RFC 3339 text, `Duration` as `"1.5s"`,
//! wrappers as their value, and `null` leaves a field unset.

use bytes::Bytes;
use heck::{ToShoutySnakeCase as _, ToUpperCamelCase as _};
use prost_reflect::{
    DynamicMessage, EnumDescriptor, EnumValueDescriptor, FieldDescriptor, Kind, MapKey,
    MessageDescriptor, Value,
};
use serde_json::Value as Json;
use tonic_msgpack::wkt;

use super::{Fault, WellKnown, is_trait_arguments};
use crate::UnknownFields;

/// A field path as the typed transcoders spell it: `inner.name`, `items[2]`, `counts.k`.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Builds `descriptor` from `json`; `path` is where it sits in the request.
pub(super) fn message(
    descriptor: &MessageDescriptor,
    json: &Json,
    unknown: UnknownFields,
    path: &str,
) -> Result<DynamicMessage, Fault> {
    let mut message = DynamicMessage::new(descriptor.clone());
    match WellKnown::of(descriptor) {
        Some(WellKnown::Timestamp) => {
            let Json::String(text) = json else {
                return Err(Fault::at(
                    path,
                    format!(
                        "expected an RFC 3339 timestamp string, got {}",
                        kind_of(json)
                    ),
                ));
            };
            let timestamp = wkt::Timestamp::parse_rfc3339(text).ok_or_else(|| {
                Fault::at(
                    path,
                    format!(
                        "\"{text}\" is not an RFC 3339 timestamp such as \"2024-05-01T12:00:00Z\""
                    ),
                )
            })?;
            message.set_field_by_number(1, Value::I64(timestamp.seconds));
            message.set_field_by_number(2, Value::I32(timestamp.nanos));
            return Ok(message);
        }
        Some(WellKnown::Duration) => {
            let duration: wkt::Duration = match json {
                Json::String(_) => serde_json::from_value(json.clone())
                    .map_err(|err| Fault::at(path, format!("invalid duration: {err}")))?,
                other => {
                    return Err(Fault::at(
                        path,
                        format!(
                            "expected a duration such as \"1.5s\", got {}",
                            kind_of(other)
                        ),
                    ));
                }
            };
            message.set_field_by_number(1, Value::I64(duration.seconds));
            message.set_field_by_number(2, Value::I32(duration.nanos));
            return Ok(message);
        }
        Some(WellKnown::Wrapper) => {
            if let Some(field) = descriptor.get_field(1)
                && !json.is_null()
            {
                let value = single(&field, json, unknown, path)?;
                message.set_field(&field, value);
            }
            return Ok(message);
        }
        Some(WellKnown::Empty) | None => {}
    }
    let object = match json {
        Json::Object(object) => object,
        Json::Null if WellKnown::of(descriptor) == Some(WellKnown::Empty) => return Ok(message),
        other => {
            return Err(Fault::at(
                path,
                format!(
                    "expected a JSON object for {}, got {}",
                    descriptor.full_name(),
                    kind_of(other)
                ),
            ));
        }
    };
    for (key, value) in object {
        let Some(field) = descriptor
            .get_field_by_name(key)
            .or_else(|| descriptor.get_field_by_json_name(key))
        else {
            if unknown == UnknownFields::Reject {
                let field = join(path, key);
                return Err(Fault {
                    message: format!("unknown field \"{field}\""),
                    field: Some(field),
                });
            }
            continue;
        };
        if value.is_null() && !is_null_value(&field) {
            continue;
        }
        let field_path = join(path, key);
        let value = if field.is_map() {
            map(&field, value, unknown, &field_path)?
        } else if field.is_list() {
            let Json::Array(items) = value else {
                return Err(Fault::at(
                    &field_path,
                    format!("expected an array, got {}", kind_of(value)),
                ));
            };
            let mut list = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                list.push(single(
                    &field,
                    item,
                    unknown,
                    &format!("{field_path}[{index}]"),
                )?);
            }
            Value::List(list)
        } else {
            single(&field, value, unknown, &field_path)?
        };
        if let Some(oneof) = field.containing_oneof()
            && !oneof.is_synthetic()
            && oneof.fields().any(|other| message.has_field(&other))
        {
            return Err(Fault::at(
                &field_path,
                format!("more than one field of oneof `{}` is set", oneof.name()),
            ));
        }
        message.set_field(&field, value);
    }
    // The typed transcoders of trait methods need every argument but the optional ones.
    if is_trait_arguments(descriptor) {
        for field in descriptor.fields() {
            let optional = field.containing_oneof().is_some();
            let given = object.contains_key(field.name()) || object.contains_key(field.json_name());
            if !optional && !given {
                return Err(Fault::at(path, format!("missing field `{}`", field.name())));
            }
        }
    }
    Ok(message)
}

/// `google.protobuf.NullValue` is the one kind whose `null` is a value.
fn is_null_value(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue")
}

fn map(
    field: &FieldDescriptor,
    json: &Json,
    unknown: UnknownFields,
    path: &str,
) -> Result<Value, Fault> {
    let Json::Object(object) = json else {
        return Err(Fault::at(
            path,
            format!("expected a JSON object for a map, got {}", kind_of(json)),
        ));
    };
    let Kind::Message(entry) = field.kind() else {
        return Err(Fault::at(path, "map without an entry message"));
    };
    let key_field = entry.map_entry_key_field();
    let value_field = entry.map_entry_value_field();
    let mut out = std::collections::HashMap::with_capacity(object.len());
    for (key, value) in object {
        let item_path = join(path, key);
        let bad_key = || Fault::at(&item_path, format!("invalid map key \"{key}\""));
        let key = match key_field.kind() {
            Kind::String => MapKey::String(key.clone()),
            Kind::Bool => MapKey::Bool(key.parse().map_err(|_| bad_key())?),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                MapKey::I32(key.parse().map_err(|_| bad_key())?)
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                MapKey::I64(key.parse().map_err(|_| bad_key())?)
            }
            Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad_key())?),
            Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad_key())?),
            _ => return Err(bad_key()),
        };
        out.insert(key, single(&value_field, value, unknown, &item_path)?);
    }
    Ok(Value::Map(out))
}

/// One value (not a list or map) of `field`'s kind.
fn single(
    field: &FieldDescriptor,
    json: &Json,
    unknown: UnknownFields,
    path: &str,
) -> Result<Value, Fault> {
    let expected = |what: &str| Fault::at(path, format!("expected {what}, got {}", kind_of(json)));
    Ok(match field.kind() {
        Kind::Double => Value::F64(float(json).ok_or_else(|| expected("a number"))?),
        Kind::Float => Value::F32(float(json).ok_or_else(|| expected("a number"))? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(integer(json, path, "a 32-bit integer")?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(integer(json, path, "a 64-bit integer")?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(integer(json, path, "an unsigned 32-bit integer")?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(integer(json, path, "an unsigned 64-bit integer")?)
        }
        Kind::Bool => match json {
            Json::Bool(flag) => Value::Bool(*flag),
            _ => return Err(expected("true or false")),
        },
        Kind::String => match json {
            Json::String(text) => Value::String(text.clone()),
            _ => return Err(expected("a string")),
        },
        Kind::Bytes => match json {
            Json::String(text) => Value::Bytes(Bytes::from(
                tonic_msgpack::codegen::base64_decode(text)
                    .ok_or_else(|| Fault::at(path, "invalid base64 for a bytes field"))?,
            )),
            _ => return Err(expected("base64 text")),
        },
        Kind::Enum(descriptor) => Value::EnumNumber(enumeration(&descriptor, json, path)?),
        Kind::Message(descriptor) => Value::Message(message(&descriptor, json, unknown, path)?),
    })
}

fn float(json: &Json) -> Option<f64> {
    match json {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            text => text.parse().ok(),
        },
        _ => None,
    }
}

/// An integer from a JSON number or, as proto JSON writes 64-bit integers, a string.
fn integer<T>(json: &Json, path: &str, what: &str) -> Result<T, Fault>
where
    T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    let wrong = || Fault::at(path, format!("expected {what}, got {}", kind_of(json)));
    let out_of_range = || Fault::at(path, format!("{json} is out of range for {what}"));
    match json {
        Json::Number(number) => {
            if let Some(value) = number.as_u64() {
                T::try_from(value).map_err(|_| out_of_range())
            } else if let Some(value) = number.as_i64() {
                T::try_from(value).map_err(|_| out_of_range())
            } else {
                // A float: accepted when it is a whole number, as proto JSON parsers do.
                let value = number.as_f64().unwrap_or(f64::NAN);
                if value.fract() == 0.0 && value.abs() < 9.0e18 {
                    T::try_from(value as i64).map_err(|_| out_of_range())
                } else {
                    Err(wrong())
                }
            }
        }
        Json::String(text) => text.trim().parse().map_err(|_| {
            Fault::at(
                path,
                format!("expected {what}, got the string \"{}\"", shown(text)),
            )
        }),
        _ => Err(wrong()),
    }
}

fn enumeration(descriptor: &EnumDescriptor, json: &Json, path: &str) -> Result<i32, Fault> {
    match json {
        Json::String(name) => descriptor
            .get_value_by_name(name)
            .or_else(|| rust_spelling(descriptor, name))
            .map(|value| value.number())
            .ok_or_else(|| {
                let names: Vec<String> = descriptor.values().map(|v| v.name().to_owned()).collect();
                Fault::at(
                    path,
                    format!(
                        "unknown {} value \"{}\" (values: {})",
                        descriptor.full_name(),
                        shown(name),
                        names.join(", ")
                    ),
                )
            }),
        Json::Number(_) => integer(json, path, "an enum number"),
        Json::Null => Ok(0),
        other => Err(Fault::at(
            path,
            format!(
                "expected a {} name or number, got {}",
                descriptor.full_name(),
                kind_of(other)
            ),
        )),
    }
}

/// The value `name` spells as the generated Rust enum does (what the typed transcoders also
/// accept): prost strips the enum's name from its values, `COLOR_GREEN` → `Green` or `GREEN`.
fn rust_spelling(descriptor: &EnumDescriptor, name: &str) -> Option<EnumValueDescriptor> {
    let prefix = format!("{}_", descriptor.name().to_shouty_snake_case());
    descriptor.values().find(|value| {
        let stripped = value.name().strip_prefix(&prefix).unwrap_or(value.name());
        stripped == name || stripped.to_upper_camel_case() == name
    })
}

/// At most 64 characters of client text in a message.
fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

pub(super) fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
