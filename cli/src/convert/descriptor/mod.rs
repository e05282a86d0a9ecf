//! Conversion by a proto descriptor (prost-reflect), as wire format v1 lays messages out.
//!
//! - Requests ([`message_from_json`]): JSON keys are the proto field name or its JSON name;
//!   the message becomes the compact layout (an array by field number, `nil` gaps) or the
//!   named one (a map by field name).
//! - Replies ([`message_to_json`]): either layout is read; JSON uses the JSON names, enums by
//!   name, bytes as base64.
//!
//! Both directions give the well-known types their rule 5 forms: Timestamp as ext −1,
//! Duration as `[seconds, nanos]`, wrappers as the value or nil, Empty as nil.

mod from_json;
mod to_json;

pub(crate) use from_json::message_from_json;
pub(crate) use to_json::message_to_json;

use anyhow::anyhow;
use prost_reflect::{FieldDescriptor, MessageDescriptor};

/// The `google.protobuf` messages that do not use the message layout (wire rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WellKnown {
    /// `Empty`: nil.
    Empty,
    /// `Timestamp`: ext −1.
    Timestamp,
    /// `Duration`: `[seconds, nanos]`.
    Duration,
    /// `DoubleValue`, `StringValue`, …: the value itself, or nil.
    Wrapper,
}

impl WellKnown {
    fn of(message: &MessageDescriptor) -> Option<WellKnown> {
        Some(match message.full_name() {
            "google.protobuf.Empty" => WellKnown::Empty,
            "google.protobuf.Timestamp" => WellKnown::Timestamp,
            "google.protobuf.Duration" => WellKnown::Duration,
            "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue" => WellKnown::Wrapper,
            _ => return None,
        })
    }
}

/// The `value` field of a wrapper message.
fn wrapper_value(message: &MessageDescriptor, path: &str) -> anyhow::Result<FieldDescriptor> {
    message
        .get_field_by_name("value")
        .ok_or_else(|| anyhow!("{path}: wrapper without a value field"))
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;
    use serde_json::{Value, json};

    use super::*;
    use crate::convert::Mp;

    /// `calltest.v1.Note`: a gap at field 4, an enum, a Timestamp and bytes.
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
        }
    "#;

    fn note() -> MessageDescriptor {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("note.proto"), NOTE_PROTO).expect("write proto");
        let set = tonic_msgpack_build::load::file_descriptor_set(&["note.proto"], &[dir.path()])
            .expect("proto compiles");
        DescriptorPool::from_file_descriptor_set(set)
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
        })
    }

    #[test]
    fn compact_layout_is_an_array_by_field_number() {
        let value = message_from_json(&note(), &note_json(), false).expect("convert");
        let Mp::Array(slots) = &value else {
            panic!("compact is an array: {value:?}");
        };
        assert_eq!(slots.len(), 7);
        assert_eq!(slots[0], Mp::Str("a".into()));
        assert_eq!(slots[3], Mp::Nil, "field number 4 is a gap");
        assert_eq!(slots[4], Mp::UInt(1));
        assert!(matches!(slots[5], Mp::Ext(-1, _)), "{:?}", slots[5]);
        assert_eq!(slots[6], Mp::Bin(vec![1, 2]));
        assert_eq!(message_to_json(&note(), &value).expect("back"), note_json());
    }

    #[test]
    fn named_layout_is_a_map_by_field_name() {
        let value = message_from_json(&note(), &note_json(), true).expect("convert");
        let Mp::Map(entries) = &value else {
            panic!("named is a map: {value:?}");
        };
        assert_eq!(entries[0], (Mp::Str("title".into()), Mp::Str("a".into())));
        assert_eq!(message_to_json(&note(), &value).expect("back"), note_json());
    }

    #[test]
    fn bad_requests_and_replies_name_the_field() {
        let bad_second = json!({"at": "2024-01-01T00:00:99Z"});
        let error = message_from_json(&note(), &bad_second, false).expect_err("second 99");
        let message = format!("{error:#}");
        assert!(
            message.starts_with("calltest.v1.Note.at: invalid timestamp: ")
                && message.contains("\"2024-01-01T00:00:99Z\" is not an RFC 3339 timestamp"),
            "{message}"
        );
        let error = message_from_json(&note(), &json!({"mood": "SAD"}), false)
            .expect_err("unknown enum value");
        assert!(
            error
                .to_string()
                .contains("unknown calltest.v1.Mood value \"SAD\""),
            "{error}"
        );
        let reply = Mp::Array(vec![Mp::UInt(1)]);
        let error = message_to_json(&note(), &reply).expect_err("title is a string");
        assert!(
            error
                .to_string()
                .starts_with("calltest.v1.Note.title: expected a string"),
            "{error}"
        );
    }
}
