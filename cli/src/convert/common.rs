//! What the schema-less and the by-descriptor conversions share: the JSON form of floats and
//! bytes, and the well-known types `Timestamp` and `Duration`.
//!
//! Timestamps and durations go through `tonic_msgpack::wkt` (its parsing, formatting and
//! serde impls), so this tool reads and writes them exactly as services do.

use anyhow::{Context, anyhow};
use base64::Engine as _;
use serde_json::{Number, Value};
use tonic_msgpack::wkt::{Duration, TIMESTAMP_EXT, Timestamp};

use super::value::Mp;

/// A float as JSON; proto JSON spells the values JSON lacks as strings.
pub(super) fn float_json(value: f64) -> Value {
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

/// Bytes as JSON text: standard base64 with padding.
pub(super) fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An RFC 3339 timestamp (`2024-05-01T12:00:00.5Z`, `…+02:00`).
pub(super) fn parse_timestamp(text: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        anyhow!("\"{text}\" is not an RFC 3339 timestamp such as \"2024-05-01T12:00:00Z\"")
    })
}

/// A timestamp as the MessagePack timestamp (ext −1) in its smallest form.
pub(super) fn timestamp_to_mp(timestamp: Timestamp) -> anyhow::Result<Mp> {
    let bytes = rmp_serde::to_vec(&timestamp).context("cannot encode the timestamp")?;
    Mp::decode(&bytes)
}

/// The timestamp in an ext −1 payload (4, 8 or 12 bytes).
pub(super) fn timestamp_from_ext(data: &[u8]) -> anyhow::Result<Timestamp> {
    let bytes = Mp::Ext(TIMESTAMP_EXT, data.to_vec()).encode();
    rmp_serde::from_slice(&bytes).context("invalid timestamp ext")
}

/// A proto JSON duration, `"1.5s"` or `"-0.25s"`.
pub(super) fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    // wkt::Duration reads this text in its human-readable serde form.
    serde_json::from_value(Value::String(text.to_owned())).map_err(|error| anyhow!("{error}"))
}

/// A duration as MessagePack, `[seconds, nanos]`.
pub(super) fn duration_to_mp(duration: Duration) -> anyhow::Result<Mp> {
    let bytes = rmp_serde::to_vec(&duration).context("cannot encode the duration")?;
    Mp::decode(&bytes)
}

/// The duration in a MessagePack `[seconds, nanos]` (missing or nil parts are 0).
pub(super) fn duration_from_mp(value: &Mp) -> anyhow::Result<Duration> {
    rmp_serde::from_slice(&value.encode()).map_err(|error| anyhow!("{error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_the_wkt_forms() {
        let timestamp = parse_timestamp("2024-05-01T12:00:00.5+02:00").expect("parse");
        assert_eq!(timestamp.to_string(), "2024-05-01T10:00:00.500Z");
        let Mp::Ext(TIMESTAMP_EXT, data) = timestamp_to_mp(timestamp).expect("encode") else {
            panic!("a timestamp is ext -1");
        };
        assert_eq!(data.len(), 8);
        assert_eq!(timestamp_from_ext(&data).expect("decode"), timestamp);

        // Whole seconds in 0..2³² take the 32-bit form; before 1970 the 96-bit one.
        let epoch = timestamp_to_mp(Timestamp::new(0, 0)).expect("encode");
        assert_eq!(epoch, Mp::Ext(TIMESTAMP_EXT, vec![0, 0, 0, 0]));
        let before = Timestamp::new(-5, 7);
        let Mp::Ext(_, data) = timestamp_to_mp(before).expect("encode") else {
            panic!("a timestamp is ext -1");
        };
        assert_eq!(data.len(), 12);
        assert_eq!(timestamp_from_ext(&data).expect("decode"), before);
        assert!(timestamp_from_ext(&[1, 2, 3]).is_err());
    }

    #[test]
    fn out_of_range_timestamps_are_rejected() {
        let error = parse_timestamp("2024-01-01T00:00:99Z").expect_err("second 99");
        assert!(
            error
                .to_string()
                .contains("\"2024-01-01T00:00:99Z\" is not an RFC 3339 timestamp"),
            "{error}"
        );
        assert!(parse_timestamp("yesterday").is_err());
        // Nanoseconds of 10⁹ or more in the 64-bit form.
        let packed = (1_000_000_000u64 << 34).to_be_bytes();
        assert!(timestamp_from_ext(&packed).is_err());
    }

    #[test]
    fn durations_use_the_wkt_forms() {
        let duration = parse_duration("1.5s").expect("parse");
        assert_eq!((duration.seconds, duration.nanos), (1, 500_000_000));
        assert_eq!(
            duration_to_mp(duration).expect("encode"),
            Mp::Array(vec![Mp::UInt(1), Mp::UInt(500_000_000)])
        );
        let negative = Mp::Array(vec![Mp::Int(-1), Mp::Int(-500_000_000)]);
        assert_eq!(
            duration_from_mp(&negative).expect("decode").to_string(),
            "-1.500s"
        );
        let short = Mp::Array(vec![Mp::UInt(2)]);
        assert_eq!(duration_from_mp(&short).expect("decode").to_string(), "2s");
        assert!(parse_duration("1.5").is_err());
        assert!(duration_from_mp(&Mp::Array(vec![Mp::Bool(true)])).is_err());
    }
}
