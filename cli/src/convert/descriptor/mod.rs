//! Conversion by a proto descriptor: the gateway's REST transcoder by descriptor
//! (`tonic_msgpack_gateway::dynamic`), so `call --proto` reads and writes exactly the JSON the
//! gateway's REST/JSON does, and encodes exactly the generated types' MessagePack.
//!
//! - Requests ([`message_from_json`]): JSON keys are the proto field name or its JSON name;
//!   64-bit integers strings or numbers; the message is laid out as its descriptor's options
//!   say (compact by default, named with `--named`). Unknown fields are refused.
//! - Replies ([`message_to_json`]): proto JSON with every field, 64-bit integers as strings,
//!   enums by name, bytes as base64; the well-known types in their proto JSON forms.

use anyhow::anyhow;
use prost_reflect::MessageDescriptor;
use serde_json::Value;
use tonic_msgpack_gateway::{UnknownFields, dynamic};

use crate::convert::Mp;

/// A request message from JSON by its descriptor.
pub(crate) fn message_from_json(message: &MessageDescriptor, json: &Value) -> anyhow::Result<Mp> {
    let bytes = dynamic::json_to_msgpack(message, json, UnknownFields::Reject)
        .map_err(|err| anyhow!("{err}"))?;
    Mp::decode(&bytes)
}

/// A reply message as JSON.
pub(crate) fn message_to_json(message: &MessageDescriptor, value: &Mp) -> anyhow::Result<Value> {
    dynamic::msgpack_to_json(message, &value.encode()).map_err(|err| anyhow!("{err}"))
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;
    use serde_json::{Value, json};

    use super::*;
    use tonic_msgpack_build::{Format, KeyCase};

    /// `calltest.v1.Note`: a gap at field 4, an enum, a Timestamp, bytes and an int64.
    const NOTE_PROTO: &str = r#"
        syntax = "proto3";
        package calltest.v1;
        import "google/protobuf/timestamp.proto";
        enum Mood { MOOD_UNSPECIFIED = 0; HAPPY = 1; }
        message Note {
          string title = 1;
          uint32 count = 2;
          repeated string tags = 3;
          Mood mood = 5;
          google.protobuf.Timestamp at = 6;
          bytes data = 7;
          int64 big = 8;
        }
    "#;

    fn note(format: Format) -> MessageDescriptor {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("note.proto"), NOTE_PROTO).expect("write proto");
        let set = tonic_msgpack_build::load::descriptor_set(
            &["note.proto"],
            &[dir.path()],
            &[] as &[&str],
            format,
            KeyCase::AsWritten,
        )
        .expect("proto compiles");
        DescriptorPool::decode(set.as_slice())
            .expect("descriptor pool")
            .get_message_by_name("calltest.v1.Note")
            .expect("calltest.v1.Note")
    }

    fn note_json() -> Value {
        json!({
            "title": "a",
            "count": 2,
            "tags": ["x"],
            "mood": "HAPPY",
            "at": "2024-05-01T10:00:00.500Z",
            "data": "AQI=",
            "big": "-9007199254740993",
        })
    }

    #[test]
    fn compact_layout_is_an_array_by_field_number() {
        let note = note(Format::Compact);
        let value = message_from_json(&note, &note_json()).expect("convert");
        let Mp::Array(slots) = &value else {
            panic!("compact is an array: {value:?}");
        };
        assert_eq!(slots.len(), 8);
        assert_eq!(slots[0], Mp::Str("a".into()));
        assert_eq!(slots[3], Mp::Nil, "field number 4 is a gap");
        assert_eq!(slots[4], Mp::UInt(1));
        assert!(matches!(slots[5], Mp::Ext(-1, _)), "{:?}", slots[5]);
        assert_eq!(slots[6], Mp::Bin(vec![1, 2]));
        assert_eq!(slots[7], Mp::Int(-9_007_199_254_740_993));
        assert_eq!(message_to_json(&note, &value).expect("back"), note_json());
        // A 64-bit integer may also be a number.
        let mut as_number = note_json();
        as_number["big"] = json!(-9_007_199_254_740_993i64);
        assert_eq!(
            message_from_json(&note, &as_number).expect("convert"),
            value
        );
    }

    #[test]
    fn named_layout_is_a_map_by_field_name() {
        let note = note(Format::Named);
        let value = message_from_json(&note, &note_json()).expect("convert");
        let Mp::Map(entries) = &value else {
            panic!("named is a map: {value:?}");
        };
        assert_eq!(entries[0], (Mp::Str("title".into()), Mp::Str("a".into())));
        assert_eq!(message_to_json(&note, &value).expect("back"), note_json());
    }

    #[test]
    fn bad_requests_and_replies_name_the_field() {
        let note = note(Format::Compact);
        let bad_second = json!({"at": "2024-01-01T00:00:99Z"});
        let message = message_from_json(&note, &bad_second)
            .expect_err("second 99")
            .to_string();
        assert!(
            message.starts_with("invalid JSON for calltest.v1.Note: field \"at\": ")
                && message.contains("\"2024-01-01T00:00:99Z\" is not an RFC 3339 timestamp"),
            "{message}"
        );
        let error = message_from_json(&note, &json!({"mood": "SAD"})).expect_err("unknown value");
        assert!(
            error
                .to_string()
                .contains("unknown calltest.v1.Mood value \"SAD\""),
            "{error}"
        );
        let error = message_from_json(&note, &json!({"nope": 1})).expect_err("unknown field");
        assert!(
            error.to_string().contains("unknown field \"nope\""),
            "{error}"
        );
        let reply = Mp::Array(vec![Mp::UInt(1)]);
        let error = message_to_json(&note, &reply).expect_err("title is a string");
        assert!(
            error.to_string().contains("calltest.v1.Note.title"),
            "{error}"
        );
    }
}
