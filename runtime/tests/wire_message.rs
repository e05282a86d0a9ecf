//! Golden byte vectors for `#[derive(Message)]` on hand-written types and for the well-known
//! types (wire format v1, rules 3, 4, 5 and 7).

mod support;

use std::collections::BTreeMap;

use support::hex;
use tonic_msgpack::wkt::{Duration, Timestamp};
use tonic_msgpack::{Message, decode_frame, to_vec};

#[derive(Debug, Default, Clone, PartialEq, Message)]
struct Point {
    #[msgpack(key = 0)]
    x: i32,
    // key 1 is a gap
    #[msgpack(key = 2)]
    label: String,
    #[msgpack(key = 3)]
    data: Vec<u8>,
    #[msgpack(skip)]
    cache: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Message)]
#[msgpack(key_case = "PascalCase")]
struct NamedPoint {
    #[msgpack(key = 0)]
    x_pos: i32,
    #[msgpack(key = 1)]
    raw: bytes::Bytes,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Message)]
enum Level {
    #[default]
    Low = 0,
    High = 7,
}

#[derive(Debug, Default, Clone, PartialEq, Message)]
struct Holder {
    #[msgpack(key = 0)]
    level: Level,
    #[msgpack(key = 1)]
    when: Option<Timestamp>,
    #[msgpack(key = 2)]
    took: Option<Duration>,
    #[msgpack(key = 3)]
    tags: BTreeMap<String, u8>,
    #[msgpack(key = 4)]
    nested: Option<Box<Holder>>,
}

fn point() -> Point {
    Point {
        x: 1,
        label: "a".into(),
        data: vec![1, 2],
        cache: 99,
    }
}

#[test]
fn rule3_array_by_field_number_with_nil_gaps_and_bin() {
    let bytes = to_vec(&point()).unwrap();
    // [1, nil, "a", bin(01 02)]
    assert_eq!(hex(&bytes), "9401c0a161c4020102");
}

#[test]
fn rule3_tolerant_decode() {
    let expect = Point {
        cache: 0,
        ..point()
    };
    // Longer: extra elements (even nested ones) are ignored.
    let longer = [
        0x96, 0x01, 0xc0, 0xa1, 0x61, 0xc4, 0x02, 0x01, 0x02, 0x92, 0x01, 0x02, 0xa1, 0x7a,
    ];
    assert_eq!(decode_frame::<Point>(&longer).unwrap(), expect);
    // Shorter: missing fields are defaults.
    let shorter = [0x91, 0x01];
    assert_eq!(
        decode_frame::<Point>(&shorter).unwrap(),
        Point {
            x: 1,
            ..Point::default()
        }
    );
    // nil for any field is the default; nil for the whole message is the default message.
    let nils = [0x94, 0xc0, 0xc0, 0xc0, 0xc0];
    assert_eq!(decode_frame::<Point>(&nils).unwrap(), Point::default());
    assert_eq!(decode_frame::<Point>(&[0xc0]).unwrap(), Point::default());
    // An empty array is the default message.
    assert_eq!(decode_frame::<Point>(&[0x90]).unwrap(), Point::default());
}

#[test]
fn rule3_maps_by_name_or_number_also_decode() {
    // {"x": 5, "3": bin(07)} and {1: 5}
    let by_name = [0x82, 0xa1, 0x78, 0x05, 0xa1, 0x34, 0xc4, 0x01, 0x07];
    assert_eq!(
        decode_frame::<Point>(&by_name).unwrap(),
        Point {
            x: 5,
            data: vec![7],
            ..Point::default()
        }
    );
    let by_number = [0x81, 0x01, 0x05];
    assert_eq!(decode_frame::<Point>(&by_number).unwrap().x, 5);
}

#[test]
fn errors_name_the_message_and_field() {
    // x is a string
    let bad = [0x91, 0xa1, 0x61];
    let err = decode_frame::<Point>(&bad).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("Point.x: wrong msgpack marker FixStr(1)"),
        "{}",
        err.message()
    );
}

#[test]
fn rule4_named_layout() {
    let value = NamedPoint {
        x_pos: 3,
        raw: bytes::Bytes::from_static(b"z"),
    };
    let bytes = to_vec(&value).unwrap();
    // {"XPos": 3, "Raw": bin("z")}
    assert_eq!(hex(&bytes), "82a458506f7303a3526177c4017a");
    assert_eq!(decode_frame::<NamedPoint>(&bytes).unwrap(), value);
    // Unknown keys are ignored, missing keys default; any spelling of a name is accepted.
    let other = [
        0x82, 0xa5, 0x78, 0x5f, 0x70, 0x6f, 0x73, 0x04, 0xa3, 0x6e, 0x65, 0x77, 0x01,
    ];
    assert_eq!(
        decode_frame::<NamedPoint>(&other).unwrap(),
        NamedPoint {
            x_pos: 4,
            raw: bytes::Bytes::new()
        }
    );
}

#[test]
fn rule5_types() {
    let holder = Holder {
        level: Level::High,
        when: Some(Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        took: Some(Duration {
            seconds: 2,
            nanos: 5,
        }),
        tags: BTreeMap::from([("k".to_owned(), 1)]),
        nested: Some(Box::new(Holder::default())),
    };
    let bytes = to_vec(&holder).unwrap();
    // [7, ext32(-1, 1), [2, 5], {"k": 1}, [0, nil, nil, {}, nil]]
    assert_eq!(hex(&bytes), "9507d6ff0000000192020581a16b019500c0c080c0");
    assert_eq!(decode_frame::<Holder>(&bytes).unwrap(), holder);
    // Enums are ints; an unknown value is an error naming the enum.
    let err = decode_frame::<Level>(&[0x03]).unwrap_err();
    assert!(
        err.message().contains("Level: unknown enum value 3"),
        "{}",
        err.message()
    );
}

#[test]
fn rule5_timestamp_uses_the_smallest_of_three_forms() {
    let ts32 = Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };
    assert_eq!(hex(&to_vec(&ts32).unwrap()), "d6ff6553f100");
    let ts64 = Timestamp {
        seconds: 1_700_000_000,
        nanos: 500,
    };
    assert_eq!(hex(&to_vec(&ts64).unwrap()), "d7ff000007d06553f100");
    let ts96 = Timestamp {
        seconds: -1,
        nanos: 0,
    };
    assert_eq!(
        hex(&to_vec(&ts96).unwrap()),
        "c70cff00000000ffffffffffffffff"
    );
    for ts in [ts32, ts64, ts96] {
        let bytes = to_vec(&ts).unwrap();
        assert_eq!(decode_frame::<Timestamp>(&bytes).unwrap(), ts);
    }
    // Beyond 2^34 seconds: 96-bit.
    let far = Timestamp {
        seconds: 1 << 35,
        nanos: 1,
    };
    assert_eq!(to_vec(&far).unwrap().len(), 15);
    assert_eq!(
        decode_frame::<Timestamp>(&to_vec(&far).unwrap()).unwrap(),
        far
    );
    // Another extension type is an error.
    assert!(decode_frame::<Timestamp>(&[0xd6, 0x01, 0, 0, 0, 1]).is_err());
}

#[test]
fn rule7_json_uses_field_names() {
    let json = serde_json::to_string(&point()).unwrap();
    assert_eq!(json, r#"{"x":1,"label":"a","data":"AQI="}"#);
    let back: Point =
        serde_json::from_str(r#"{"x":1,"label":"a","data":"AQI=","unknown":true}"#).unwrap();
    assert_eq!(
        back,
        Point {
            cache: 0,
            ..point()
        }
    );
    let holder = Holder {
        level: Level::High,
        when: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 500_000_000,
        }),
        took: Some(Duration {
            seconds: 1,
            nanos: 500_000_000,
        }),
        ..Holder::default()
    };
    let json = serde_json::to_string(&holder).unwrap();
    assert_eq!(
        json,
        r#"{"level":"High","when":"2023-11-14T22:13:20.500Z","took":"1.500s","tags":{},"nested":null}"#
    );
    assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), holder);
}

#[test]
fn timestamp_conversions() {
    let now = std::time::SystemTime::now();
    let ts = Timestamp::from(now);
    assert_eq!(std::time::SystemTime::from(ts), now);
    let before = std::time::UNIX_EPOCH - std::time::Duration::from_millis(1500);
    let ts = Timestamp::from(before);
    assert_eq!((ts.seconds, ts.nanos), (-2, 500_000_000));
    assert_eq!(std::time::SystemTime::from(ts), before);
    assert_eq!(ts.to_string(), "1969-12-31T23:59:58.500Z");
    assert_eq!(Timestamp::parse_rfc3339("1969-12-31T23:59:58.5Z"), Some(ts));
    assert_eq!(
        Timestamp::parse_rfc3339("2024-02-29T01:00:00+01:00").map(|t| t.to_string()),
        Some("2024-02-29T00:00:00Z".to_owned())
    );
    assert_eq!(Timestamp::parse_rfc3339("2024-13-01T00:00:00Z"), None);
}

#[test]
fn bytes_are_bin_not_arrays_of_ints() {
    let value = Point {
        data: vec![0; 300],
        ..Point::default()
    };
    let bytes = to_vec(&value).unwrap();
    // bin16 header, not an array
    assert_eq!(&bytes[..7], &[0x94, 0x00, 0xc0, 0xa0, 0xc5, 0x01, 0x2c]);
    // Decoders also accept an array of ints for bytes (and base64 in JSON).
    let json: Point = serde_json::from_str(r#"{"data": [1, 2]}"#).unwrap();
    assert_eq!(json.data, vec![1, 2]);
    let ints = [0x94, 0x00, 0xc0, 0xa0, 0x92, 0x01, 0x02];
    assert_eq!(decode_frame::<Point>(&ints).unwrap().data, vec![1, 2]);
}

#[derive(Debug, Clone, PartialEq, Message)]
enum Shape {
    #[msgpack(key = 1)]
    Circle(f64),
    #[msgpack(key = 2)]
    Label(String),
}

#[derive(Debug, Default, Clone, PartialEq, Message)]
struct Drawing {
    #[msgpack(key = 0)]
    id: u32,
    #[msgpack(oneof = "1, 2")]
    shape: Option<Shape>,
}

#[test]
fn rule3_hand_written_oneof_members_in_their_own_slots() {
    let drawing = Drawing {
        id: 1,
        shape: Some(Shape::Label("x".into())),
    };
    let bytes = to_vec(&drawing).unwrap();
    assert_eq!(hex(&bytes), "9301c0a178");
    assert_eq!(decode_frame::<Drawing>(&bytes).unwrap(), drawing);
    let circle = Drawing {
        id: 2,
        shape: Some(Shape::Circle(0.5)),
    };
    let bytes = to_vec(&circle).unwrap();
    assert_eq!(hex(&bytes), "9302cb3fe0000000000000c0");
    assert_eq!(decode_frame::<Drawing>(&bytes).unwrap(), circle);
    assert_eq!(
        serde_json::to_string(&drawing).unwrap(),
        r#"{"id":1,"label":"x"}"#
    );
    assert_eq!(
        serde_json::from_str::<Drawing>(r#"{"id":1,"label":"x"}"#).unwrap(),
        drawing
    );
}

#[test]
fn force_all_bytes_mode_does_not_turn_messages_into_bin() {
    #[derive(Debug, Default, PartialEq, Message)]
    struct Small {
        #[msgpack(key = 0)]
        a: u8,
        #[msgpack(key = 1)]
        b: u8,
    }
    let mut out = Vec::new();
    let mut ser =
        rmp_serde::Serializer::new(&mut out).with_bytes(rmp_serde::config::BytesMode::ForceAll);
    serde::Serialize::serialize(&Small { a: 1, b: 2 }, &mut ser).unwrap();
    assert_eq!(hex(&out), "920102");
}
