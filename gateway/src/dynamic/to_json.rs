//! A message → JSON (proto JSON, as the typed transcoders write it): every field, defaults
//! included; 64-bit integers as strings; enums by name; bytes as base64; `Timestamp` and
//! `Duration` as text; an unset message, optional or wrapper as `null`.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage as _, Value};
use serde_json::{Map, Number, Value as Json};
use tonic_msgpack::wkt;

use super::WellKnown;

/// The JSON of `message`.
pub(super) fn message(message: &DynamicMessage) -> Json {
    let descriptor = message.descriptor();
    let int = |number: u32| message.get_field_by_number(number).map(|v| v.into_owned());
    match WellKnown::of(&descriptor) {
        Some(WellKnown::Empty) => return Json::Object(Map::new()),
        Some(WellKnown::Timestamp) => {
            let timestamp = wkt::Timestamp {
                seconds: int(1).and_then(|v| v.as_i64()).unwrap_or_default(),
                nanos: int(2).and_then(|v| v.as_i32()).unwrap_or_default(),
            };
            return Json::String(timestamp.to_string());
        }
        Some(WellKnown::Duration) => {
            let duration = wkt::Duration {
                seconds: int(1).and_then(|v| v.as_i64()).unwrap_or_default(),
                nanos: int(2).and_then(|v| v.as_i32()).unwrap_or_default(),
            };
            return Json::String(duration.to_string());
        }
        Some(WellKnown::Wrapper) => {
            return match descriptor.get_field(1) {
                Some(field) => single(&field, &message.get_field(&field)),
                None => Json::Null,
            };
        }
        None => {}
    }
    // Trait structs are plain serde types, keyed by field name as written.
    let as_written = super::is_synthesized(&descriptor);
    let mut object = Map::new();
    for field in descriptor.fields() {
        let in_oneof = field
            .containing_oneof()
            .is_some_and(|oneof| !oneof.is_synthetic());
        let present = message.has_field(&field);
        if in_oneof && !present {
            continue;
        }
        let key = if as_written {
            field.name().to_owned()
        } else {
            field.json_name().to_owned()
        };
        object.insert(key, field_value(message, &field, present));
    }
    Json::Object(object)
}

/// The JSON of one field of `message`; `present` says whether it is set.
pub(super) fn field_value(
    message: &DynamicMessage,
    field: &FieldDescriptor,
    present: bool,
) -> Json {
    let value = message.get_field(field);
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Json::Null;
        };
        let value_field = entry.map_entry_value_field();
        let Some(entries) = value.as_map() else {
            return Json::Object(Map::new());
        };
        let mut keyed: Vec<(String, Json)> = entries
            .iter()
            .map(|(key, item)| (map_key(key), single(&value_field, item)))
            .collect();
        // A HashMap's order is random; JSON readers do not care, people reading it do.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        return Json::Object(keyed.into_iter().collect());
    }
    if field.is_list() {
        return Json::Array(
            value
                .as_list()
                .unwrap_or_default()
                .iter()
                .map(|item| single(field, item))
                .collect(),
        );
    }
    // Unset messages and proto3 `optional` fields are absent: `null`, as the typed types write
    // `None`.
    if !present && (field.supports_presence() || matches!(field.kind(), Kind::Message(_))) {
        return Json::Null;
    }
    single(field, &value)
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(v) => v.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(v) => v.clone(),
    }
}

/// A float as proto JSON writes it: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"` for the
/// values JSON has no number for.
pub fn float_json(value: f64) -> Json {
    Number::from_f64(value).map_or_else(
        || {
            Json::String(
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
        Json::Number,
    )
}

/// One value of `field`'s kind.
fn single(field: &FieldDescriptor, value: &Value) -> Json {
    match value {
        Value::Bool(v) => Json::Bool(*v),
        Value::I32(v) => Json::from(*v),
        Value::U32(v) => Json::from(*v),
        // Proto JSON: 64-bit integers are strings (JavaScript numbers lose precision above 2⁵³).
        Value::I64(v) => Json::String(v.to_string()),
        Value::U64(v) => Json::String(v.to_string()),
        Value::F32(v) => float_json(f64::from(*v)),
        Value::F64(v) => float_json(*v),
        Value::String(v) => Json::String(v.clone()),
        Value::Bytes(v) => Json::String(tonic_msgpack::codegen::base64_encode(v)),
        Value::EnumNumber(number) => match field.kind() {
            Kind::Enum(descriptor) => descriptor
                .get_value(*number)
                .map_or(Json::from(*number), |v| Json::String(v.name().to_owned())),
            _ => Json::from(*number),
        },
        Value::Message(message) => self::message(message),
        Value::List(items) => Json::Array(items.iter().map(|item| single(field, item)).collect()),
        Value::Map(_) => Json::Null,
    }
}
