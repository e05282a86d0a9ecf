//! Golden byte vectors for proto-generated types (wire format v1, rules 3, 4, 5 and 7).

use std::collections::HashMap;

use proto_e2e::demo::v1::{Color, Everything, Inner, Tree, everything, inner};
use proto_e2e::hello::v1::HelloRequest;
use proto_e2e::named::v1::{Profile, profile};
use tonic_msgpack::wkt::{Duration, Timestamp};
use tonic_msgpack::{decode_frame, to_vec};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn rule3_small_message() {
    let req = HelloRequest {
        name: "a".into(),
        count: 2,
    };
    assert_eq!(hex(&to_vec(&req).unwrap()), "92 a1 61 02");
    assert_eq!(
        decode_frame::<HelloRequest>(&[0x92, 0xa1, 0x61, 0x02]).unwrap(),
        req
    );
}

#[test]
fn rule3_default_everything_is_42_slots() {
    let bytes = to_vec(&Everything::default()).unwrap();
    let expected = [
        "dc 00 2a",                      // array16 of 42
        "00 00 00 00 00 00 00 00 00 00", // 1-10 integers
        "ca 00 00 00 00",                // 11 float
        "cb 00 00 00 00 00 00 00 00",    // 12 double
        "c2 a0 c4 00 00",                // 13 bool, 14 string, 15 bytes, 16 enum
        "90 90 90 80 80",                // 17-21 repeated and maps
        "c0 90 c0",                      // 22 message, 23 repeated message, 24 optional
        "c0 c0 c0 c0",                   // 25-28 oneof slots
        "c0 c0 c0 c0 c0 c0",             // 29-34 wkt, wrappers, cross-package, recursive
        "c0",                            // 35 reserved: a gap
        "c0 90 80 c0 c4 00 c0 c0",       // 36-42
    ]
    .join(" ");
    assert_eq!(hex(&bytes), expected);
    assert_eq!(
        decode_frame::<Everything>(&bytes).unwrap(),
        Everything::default()
    );
}

fn sample() -> Everything {
    Everything {
        i32: -1,
        i64: 1 << 40,
        u32: 200,
        u64: u64::MAX,
        s32: -70000,
        fl: 1.5,
        db: -2.25,
        flag: true,
        text: "héllo".into(),
        data: vec![0, 1, 2],
        color: Color::Green as i32,
        numbers: vec![1, -1, 300],
        names: vec!["x".into()],
        blobs: vec![vec![9]],
        counts: HashMap::from([("k".into(), 7)]),
        blob_map: HashMap::from([(1, vec![8])]),
        inner: Some(Inner {
            name: "in".into(),
            value: 3,
        }),
        inners: vec![Inner::default()],
        maybe: Some(String::new()),
        choice: Some(everything::Choice::ChoiceData(vec![5])),
        at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 1,
        }),
        took: Some(Duration {
            seconds: -1,
            nanos: -5,
        }),
        wrapped_text: Some("w".into()),
        wrapped_int: None,
        price: Some(proto_e2e::common::v1::Money {
            currency: "EUR".into(),
            units: 3,
            nanos: 0,
        }),
        tree: Some(Tree {
            label: "root".into(),
            children: vec![Tree {
                label: "leaf".into(),
                ..Tree::default()
            }],
            parent: Some(Box::new(Tree::default())),
        }),
        deep: Some(inner::Deep { ok: true }),
        colors: vec![Color::Red as i32, 99],
        inner_map: HashMap::from([("m".into(), Inner::default())]),
        nothing: None,
        shared: bytes::Bytes::from_static(b"sh"),
        maybe_int: Some(0),
        wrapped_bytes: Some(vec![1]),
        ..Everything::default()
    }
}

/// Decodes a MessagePack array into its elements' raw bytes, to check single slots.
fn slots(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut rd = bytes;
    let len = rmp::decode::read_array_len(&mut rd).unwrap() as usize;
    let mut out = Vec::new();
    for _ in 0..len {
        let before = rd;
        let mut de = rmp_serde::Deserializer::new(&mut rd);
        serde::de::IgnoredAny::deserialize(&mut de).unwrap();
        drop(de);
        let used = before.len() - rd.len();
        out.push(before[..used].to_vec());
    }
    out
}

use serde::Deserialize;

#[test]
fn rule5_every_type_in_its_slot() {
    let value = sample();
    let bytes = to_vec(&value).unwrap();
    let slots = slots(&bytes);
    assert_eq!(slots.len(), 42);
    let slot = |n: usize| hex(&slots[n - 1]);
    assert_eq!(slot(1), "ff"); // -1: negative fixint
    assert_eq!(slot(2), "cf 00 00 01 00 00 00 00 00"); // smallest int: uint64 here
    assert_eq!(slot(3), "cc c8");
    assert_eq!(slot(4), "cf ff ff ff ff ff ff ff ff");
    assert_eq!(slot(5), "d2 ff fe ee 90");
    assert_eq!(slot(11), "ca 3f c0 00 00"); // float32
    assert_eq!(slot(12), "cb c0 02 00 00 00 00 00 00"); // float64
    assert_eq!(slot(13), "c3");
    assert_eq!(slot(14), "a6 68 c3 a9 6c 6c 6f");
    assert_eq!(slot(15), "c4 03 00 01 02"); // bytes → bin
    assert_eq!(slot(16), "02"); // enum → int
    assert_eq!(slot(17), "93 01 ff cd 01 2c");
    assert_eq!(slot(19), "91 c4 01 09"); // repeated bytes → array of bin
    assert_eq!(slot(20), "81 a1 6b 07");
    assert_eq!(slot(21), "81 01 c4 01 08"); // map<int32, bytes> → bin values
    assert_eq!(slot(22), "92 a2 69 6e 03");
    assert_eq!(slot(24), "a0"); // optional set to the default is still sent
    // oneof: only its member's own slot is non-nil
    assert_eq!([slot(25), slot(26), slot(27)], ["c0", "c0", "c0"]);
    assert_eq!(slot(28), "c4 01 05");
    assert_eq!(slot(29), "d7 ff 00 00 00 04 65 53 f1 00"); // timestamp ext -1 (64-bit)
    assert_eq!(slot(30), "92 ff fb"); // duration [seconds, nanos]
    assert_eq!(slot(31), "a1 77"); // wrapper → value
    assert_eq!(slot(32), "c0"); // wrapper → nil
    assert_eq!(slot(33), "93 a3 45 55 52 03 00"); // cross-package message
    assert_eq!(slot(35), "c0"); // reserved number: a gap
    assert_eq!(slot(36), "91 c3");
    assert_eq!(slot(37), "92 01 63"); // unknown enum values stay ints
    assert_eq!(slot(39), "c0"); // Empty → nil
    assert_eq!(slot(40), "c4 02 73 68"); // bytes::Bytes → bin
    assert_eq!(slot(41), "00");
    assert_eq!(slot(42), "c4 01 01"); // BytesValue wrapper → bin
    assert_eq!(decode_frame::<Everything>(&bytes).unwrap(), value);
    // and prost still works on the same struct
    let proto = prost::Message::encode_to_vec(&value);
    assert_eq!(
        <Everything as prost::Message>::decode(&proto[..]).unwrap(),
        value
    );
}

#[test]
fn rule3_oneof_members_in_their_own_slots() {
    for (choice, n) in [
        (everything::Choice::ChoiceText("t".into()), 25),
        (everything::Choice::ChoiceNumber(300), 26),
        (everything::Choice::ChoiceInner(Inner::default()), 27),
        (everything::Choice::ChoiceData(vec![]), 28),
    ] {
        let value = Everything {
            choice: Some(choice),
            ..Everything::default()
        };
        let bytes = to_vec(&value).unwrap();
        let slots = slots(&bytes);
        for (i, slot) in slots.iter().enumerate().take(28).skip(24) {
            assert_eq!(slot == &[0xc0], i + 1 != n, "slot {}", i + 1);
        }
        assert_eq!(decode_frame::<Everything>(&bytes).unwrap(), value);
    }
}

#[test]
fn rule3_tolerant_decode_of_generated_types() {
    // shorter
    let req = decode_frame::<HelloRequest>(&[0x91, 0xa1, 0x62]).unwrap();
    assert_eq!(req.name, "b");
    assert_eq!(req.count, 0);
    // longer, with nils
    let req = decode_frame::<HelloRequest>(&[0x94, 0xc0, 0x05, 0xc0, 0x81, 0x01, 0x02]).unwrap();
    assert_eq!((req.name.as_str(), req.count), ("", 5));
    // a map by name, JSON name or field number
    let req =
        decode_frame::<HelloRequest>(&[0x82, 0xa4, b'n', b'a', b'm', b'e', 0xa1, 0x63, 0x02, 0x09])
            .unwrap();
    assert_eq!((req.name.as_str(), req.count), ("c", 9));
}

#[test]
fn errors_name_the_proto_message_and_field() {
    let err = decode_frame::<HelloRequest>(&[0x92, 0xa1, 0x61, 0xa1, 0x62]).unwrap_err();
    assert!(
        err.message().contains("hello.v1.HelloRequest.count: "),
        "{}",
        err.message()
    );
    // {"inner": [true]}
    let err = decode_frame::<Everything>(&[0x81, 0xa5, b'i', b'n', b'n', b'e', b'r', 0x91, 0xc3])
        .unwrap_err();
    assert!(
        err.message()
            .contains("demo.v1.Everything.inner: demo.v1.Inner.name: "),
        "{}",
        err.message()
    );
}

#[test]
fn rule4_named_build() {
    let value = Profile {
        display_name: "Ann".into(),
        login_count: 2,
        avatar: Some(profile::Avatar::AvatarPng(vec![1])),
        far_away: 3,
    };
    let bytes = to_vec(&value).unwrap();
    // {"displayName": "Ann", "loginCount": 2, "farAway": 3, "avatarPng": bin(01)}
    assert_eq!(
        hex(&bytes),
        "84 ab 64 69 73 70 6c 61 79 4e 61 6d 65 a3 41 6e 6e aa 6c 6f 67 69 6e 43 6f 75 6e 74 02 \
         a7 66 61 72 41 77 61 79 03 a9 61 76 61 74 61 72 50 6e 67 c4 01 01"
    );
    assert_eq!(decode_frame::<Profile>(&bytes).unwrap(), value);
}

#[test]
fn rule7_json_sees_proto_json_names() {
    let value = Everything {
        blob_map: HashMap::from([(1, vec![8])]),
        choice: Some(everything::Choice::ChoiceText("t".into())),
        wrapped_text: Some("w".into()),
        at: Some(Timestamp {
            seconds: 0,
            nanos: 0,
        }),
        colors: vec![Color::Red as i32, 99],
        ..Everything::default()
    };
    let json: serde_json::Value = serde_json::to_value(&value).unwrap();
    assert_eq!(json["blobMap"], serde_json::json!({"1": "CA=="})); // bytes: base64
    assert_eq!(json["choiceText"], "t");
    assert_eq!(json["wrappedText"], "w");
    assert_eq!(json["at"], "1970-01-01T00:00:00Z");
    assert_eq!(json["maybeInt"], serde_json::Value::Null);
    assert_eq!(json["color"], "COLOR_UNSPECIFIED"); // enums by proto name
    assert_eq!(json["colors"], serde_json::json!(["COLOR_RED", 99])); // unknown: int
    let back: Everything = serde_json::from_value(json).unwrap();
    assert_eq!(back, value);
    // snake_case names are accepted too
    let back: Everything = serde_json::from_str(
        r#"{"choice_number": 4, "i32": 1, "color": "COLOR_GREEN", "colors": [1, "Green"]}"#,
    )
    .unwrap();
    assert_eq!(back.choice, Some(everything::Choice::ChoiceNumber(4)));
    assert_eq!(back.i32, 1);
    assert_eq!(back.color, Color::Green as i32);
    assert_eq!(back.colors, [1, 2]);
    let err = serde_json::from_str::<Everything>(r#"{"color": "PURPLE"}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("demo.v1.Everything.color: unknown enum name \"PURPLE\""),
        "{err}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // Tree { parent: Tree { parent: ... } } nested far deeper than any real message.
    for depth in [100usize, 300, 2000, 100_000] {
        let mut bytes = Vec::new();
        for _ in 0..depth {
            bytes.extend_from_slice(&[0x93, 0xa0, 0x90]);
        }
        bytes.push(0xc0);
        let result = decode_frame::<Tree>(&bytes);
        if depth <= 100 {
            assert!(result.is_ok());
        } else {
            let err = result.unwrap_err();
            assert!(
                err.message().contains("depth limit exceeded"),
                "{}",
                err.message()
            );
        }
    }
}
