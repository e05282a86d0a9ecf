//! Schema-less conversion: any JSON value ⇄ any MessagePack value, structure for structure.
//!
//! This is how trait methods are called without a `.proto`: `[a, b]` for several arguments,
//! the bare value for one, `null` for none.

use serde_json::{Map, Value};
use tonic_msgpack::wkt::TIMESTAMP_EXT;

use super::common::{base64_encode, float_json, timestamp_from_ext};
use super::value::Mp;

// JSON → MessagePack

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

// MessagePack → JSON

/// Any MessagePack value as JSON: bin → base64 string, a valid ext −1 → RFC 3339 timestamp
/// string, any other ext → `{"$ext": type, "base64": data}`.
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
        Mp::Ext(TIMESTAMP_EXT, data) => match timestamp_from_ext(data) {
            Ok(timestamp) => Value::String(timestamp.to_string()),
            // Not a valid timestamp: show the raw bytes rather than fail the whole reply.
            Err(_) => ext_json(TIMESTAMP_EXT, data),
        },
        Mp::Ext(kind, data) => ext_json(*kind, data),
    }
}

/// A JSON object key for a MessagePack map key: strings as they are, others as JSON text.
pub(super) fn map_key(key: &Mp) -> String {
    match key {
        Mp::Str(text) => text.clone(),
        other => mp_to_json(other).to_string(),
    }
}

fn ext_json(kind: i8, data: &[u8]) -> Value {
    let mut object = Map::new();
    object.insert("$ext".into(), Value::from(kind));
    object.insert("base64".into(), Value::String(base64_encode(data)));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_msgpack_structure_for_structure() {
        let json: Value =
            serde_json::from_str(r#"[1, -2, 1.5, "a", null, true, {"k": [2]}]"#).expect("json");
        let value = json_to_mp(&json);
        assert_eq!(
            value,
            Mp::Array(vec![
                Mp::UInt(1),
                Mp::Int(-2),
                Mp::F64(1.5),
                Mp::Str("a".into()),
                Mp::Nil,
                Mp::Bool(true),
                Mp::Map(vec![(Mp::Str("k".into()), Mp::Array(vec![Mp::UInt(2)]))]),
            ])
        );
        assert_eq!(mp_to_json(&value), json);
    }

    #[test]
    fn msgpack_only_values_have_json_spellings() {
        let value = Mp::Map(vec![
            (Mp::UInt(7), Mp::Bin(vec![1, 2])),
            (Mp::Str("at".into()), Mp::Ext(-1, vec![0, 0, 0, 0])),
            (Mp::Str("bad".into()), Mp::Ext(-1, vec![1])),
            (Mp::Str("ext".into()), Mp::Ext(5, vec![9])),
            (Mp::Str("nan".into()), Mp::F32(f32::NAN)),
        ]);
        assert_eq!(
            mp_to_json(&value),
            serde_json::json!({
                "7": "AQI=",
                "at": "1970-01-01T00:00:00Z",
                "bad": {"$ext": -1, "base64": "AQ=="},
                "ext": {"$ext": 5, "base64": "CQ=="},
                "nan": "NaN",
            })
        );
    }
}
