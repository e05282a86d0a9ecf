//! Well-known protobuf types with their MessagePack form (wire format v1, rule 5).
//!
//! `.proto` builds map the `google.protobuf` types to Rust like this:
//!
//! | proto type | Rust type | MessagePack | JSON |
//! |---|---|---|---|
//! | `Timestamp` | [`Timestamp`] | ext −1 (the MessagePack timestamp, 32/64/96-bit) | RFC 3339 string |
//! | `Duration` | [`Duration`] | `[seconds, nanos]` | `"1.5s"` |
//! | `StringValue`, `Int32Value`, … (wrappers) | `Option<String>`, `Option<i32>`, … | the value, or `nil` | the value or `null` |
//! | `BytesValue` | `Option<Vec<u8>>` | bin or `nil` | base64 or `null` |
//! | `Empty` | `()` | `nil` | `null` |
//! | `Any` | [`Any`] | `[type_url, value]` (value: the packed message's own bytes, bin) | `{"typeUrl", "value"}` |
//!
//! `google.protobuf.Struct`, `Value` and `ListValue` have no MessagePack mapping in wire format
//! v1: a message that uses them does not compile (its field type has no serde impls). Use
//! `bytes` holding a MessagePack value, or a `map<string, string>`, instead.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// The MessagePack extension type of timestamps.
pub const TIMESTAMP_EXT: i8 = -1;

const NANOS_PER_SECOND: i32 = 1_000_000_000;

/// `google.protobuf.Timestamp`: a point in time, seconds and nanoseconds since the Unix epoch.
///
/// MessagePack: the timestamp extension (ext −1) in its smallest form, as MessagePack-CSharp
/// writes `DateTime`: 32-bit (whole seconds in `0..2³²`), 64-bit (seconds in `0..2³⁴`) or
/// 96-bit. All three decode. JSON: an RFC 3339 string (`"2024-05-01T12:00:00.5Z"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
#[prost(skip_debug)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Non-negative fractions of a second, `0..1_000_000_000`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// A timestamp from seconds and nanoseconds, normalising nanos into `0..1e9`.
    pub fn new(seconds: i64, nanos: i32) -> Self {
        let seconds = seconds.saturating_add(i64::from(nanos.div_euclid(NANOS_PER_SECOND)));
        Timestamp {
            seconds,
            nanos: nanos.rem_euclid(NANOS_PER_SECOND),
        }
    }

    /// The current time.
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// The ext −1 payload: 4, 8 or 12 bytes.
    pub(crate) fn to_ext(self) -> ([u8; 12], usize) {
        let mut out = [0u8; 12];
        let normal = Timestamp::new(self.seconds, self.nanos);
        let nanos = normal.nanos as u32;
        if normal.seconds >= 0 && normal.seconds >> 34 == 0 {
            let seconds = normal.seconds as u64;
            if nanos == 0 && seconds >> 32 == 0 {
                out[..4].copy_from_slice(&(seconds as u32).to_be_bytes());
                return (out, 4);
            }
            let packed = (u64::from(nanos) << 34) | seconds;
            out[..8].copy_from_slice(&packed.to_be_bytes());
            return (out, 8);
        }
        out[..4].copy_from_slice(&nanos.to_be_bytes());
        out[4..].copy_from_slice(&normal.seconds.to_be_bytes());
        (out, 12)
    }

    /// Decodes an ext −1 payload of 4, 8 or 12 bytes.
    pub(crate) fn from_ext(data: &[u8]) -> Result<Self, String> {
        match *data {
            [a, b, c, d] => Ok(Timestamp {
                seconds: i64::from(u32::from_be_bytes([a, b, c, d])),
                nanos: 0,
            }),
            [a, b, c, d, e, f, g, h] => {
                let packed = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                let nanos = (packed >> 34) as i32;
                if nanos >= NANOS_PER_SECOND {
                    return Err(format!("timestamp nanoseconds {nanos} out of range"));
                }
                Ok(Timestamp {
                    seconds: (packed & ((1 << 34) - 1)) as i64,
                    nanos,
                })
            }
            [a, b, c, d, ref rest @ ..] if rest.len() == 8 => {
                let nanos = u32::from_be_bytes([a, b, c, d]);
                let mut seconds = [0u8; 8];
                seconds.copy_from_slice(rest);
                if nanos >= NANOS_PER_SECOND as u32 {
                    return Err(format!("timestamp nanoseconds {nanos} out of range"));
                }
                Ok(Timestamp {
                    seconds: i64::from_be_bytes(seconds),
                    nanos: nanos as i32,
                })
            }
            _ => Err(format!(
                "a timestamp extension has 4, 8 or 12 bytes, not {}",
                data.len()
            )),
        }
    }

    /// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00.5Z`, `…+02:00`).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = text.get(range)?;
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
            return None;
        }
        if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut pos = 19;
        let mut nanos = 0i64;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            let digits = pos - start;
            if digits == 0 || digits > 9 {
                return None;
            }
            nanos = num(start..pos)? * 10i64.pow((9 - digits) as u32);
        }
        let offset = match bytes.get(pos)? {
            b'Z' | b'z' if pos + 1 == bytes.len() => 0,
            sign @ (b'+' | b'-') if pos + 6 == bytes.len() && bytes[pos + 3] == b':' => {
                let minutes = num(pos + 1..pos + 3)? * 60 + num(pos + 4..pos + 6)?;
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
        Some(Timestamp {
            seconds,
            nanos: nanos as i32,
        })
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// RFC 3339 in UTC with as many fraction digits as needed (0, 3, 6 or 9), like proto JSON.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let normal = Timestamp::new(self.seconds, self.nanos);
        let days = normal.seconds.div_euclid(86_400);
        let secs = normal.seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        let nanos = normal.nanos;
        if nanos != 0 {
            if nanos % 1_000_000 == 0 {
                write!(f, ".{:03}", nanos / 1_000_000)?;
            } else if nanos % 1_000 == 0 {
                write!(f, ".{:06}", nanos / 1_000)?;
            } else {
                write!(f, ".{nanos:09}")?;
            }
        }
        f.write_str("Z")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp::new(after.as_secs() as i64, after.subsec_nanos() as i32),
            Err(before) => {
                let before = before.duration();
                Timestamp::new(-(before.as_secs() as i64), -(before.subsec_nanos() as i32))
            }
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(ts: Timestamp) -> Self {
        let ts = Timestamp::new(ts.seconds, ts.nanos);
        let nanos = std::time::Duration::from_nanos(ts.nanos as u64);
        if ts.seconds >= 0 {
            UNIX_EPOCH + std::time::Duration::from_secs(ts.seconds as u64) + nanos
        } else {
            UNIX_EPOCH - std::time::Duration::from_secs(ts.seconds.unsigned_abs()) + nanos
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.collect_str(self);
        }
        let (data, len) = self.to_ext();
        serializer.serialize_newtype_struct(
            rmp_serde::MSGPACK_EXT_STRUCT_NAME,
            &(TIMESTAMP_EXT, serde_bytes::Bytes::new(&data[..len])),
        )
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl<'de> Visitor<'de> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp (MessagePack ext -1 or an RFC 3339 string)")
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Timestamp, D::Error> {
                let (tag, data) = <(i8, serde_bytes::ByteBuf)>::deserialize(d)?;
                if tag != TIMESTAMP_EXT {
                    return Err(de::Error::custom(format_args!(
                        "expected a timestamp (ext -1), got ext {tag}"
                    )));
                }
                Timestamp::from_ext(&data).map_err(de::Error::custom)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(text)
                    .ok_or_else(|| E::custom(format_args!("{text:?} is not an RFC 3339 timestamp")))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Timestamp, A::Error> {
                let seconds = seq.next_element::<Option<i64>>()?.flatten().unwrap_or(0);
                let nanos = seq.next_element::<Option<i32>>()?.flatten().unwrap_or(0);
                crate::codegen::drain_seq(&mut seq)?;
                Ok(Timestamp::new(seconds, nanos))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(TimestampVisitor)
        } else {
            deserializer
                .deserialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, TimestampVisitor)
        }
    }
}

/// `google.protobuf.Duration`: a signed span of time.
///
/// MessagePack: `[seconds, nanos]` (nanos carry the sign of seconds). JSON: `"1.500s"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Duration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Fractions of a second, `-999_999_999..=999_999_999`, same sign as `seconds`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.seconds < 0 || self.nanos < 0;
        let sign = if negative { "-" } else { "" };
        let (seconds, nanos) = (self.seconds.unsigned_abs(), self.nanos.unsigned_abs());
        if nanos == 0 {
            write!(f, "{sign}{seconds}s")
        } else if nanos % 1_000_000 == 0 {
            write!(f, "{sign}{seconds}.{:03}s", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            write!(f, "{sign}{seconds}.{:06}s", nanos / 1_000)
        } else {
            write!(f, "{sign}{seconds}.{nanos:09}s")
        }
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
}

impl TryFrom<Duration> for std::time::Duration {
    type Error = Duration;

    /// Fails (returning the input) for negative durations.
    fn try_from(d: Duration) -> Result<Self, Duration> {
        if d.seconds < 0 || d.nanos < 0 {
            return Err(d);
        }
        Ok(std::time::Duration::new(d.seconds as u64, d.nanos as u32))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.collect_str(self);
        }
        let mut seq = serializer.serialize_seq(Some(2))?;
        seq.serialize_element(&self.seconds)?;
        seq.serialize_element(&self.nanos)?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl<'de> Visitor<'de> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration ([seconds, nanos] or a string like \"1.5s\")")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Duration, A::Error> {
                let seconds = seq.next_element::<Option<i64>>()?.flatten().unwrap_or(0);
                let nanos = seq.next_element::<Option<i32>>()?.flatten().unwrap_or(0);
                crate::codegen::drain_seq(&mut seq)?;
                Ok(Duration { seconds, nanos })
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                parse_duration(text).ok_or_else(|| {
                    E::custom(format_args!("{text:?} is not a duration like \"1.5s\""))
                })
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let body = text.strip_suffix('s')?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let nanos: i32 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i32>().ok()? * 10i32.pow(9 - fraction.len() as u32)
    };
    Some(if negative {
        Duration {
            seconds: -seconds,
            nanos: -nanos,
        }
    } else {
        Duration { seconds, nanos }
    })
}

/// `google.protobuf.Any`: a message of another type, as its type URL and encoded bytes.
///
/// MessagePack: `[type_url, value]` with `value` as bin. What `value` holds is up to the
/// sender; tonic-msgpack services put the packed message's MessagePack encoding there.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message, crate::Message)]
pub struct Any {
    /// `type.googleapis.com/demo.v1.HelloRequest`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The packed message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}
