//! REST/JSON by descriptor against the typed transcoders: for the same JSON, the gateway's
//! descriptor transcoder (`tonic_msgpack_gateway::dynamic`, what the stand-alone binary serves
//! from `descriptors = [...]`) writes byte for byte the MessagePack of the typed transcoder
//! and the generated types, over every field kind of `everything.proto` and the named layout
//! of `named.proto`; and it writes the same JSON back.

use prost_reflect::DescriptorPool;
use proto_e2e::demo::v1::{Color, Everything, Inner, Tree, everything::Choice, inner::Deep};
use proto_e2e::named::v1::{Profile, profile::Avatar};
use serde_json::{Value, json};
use tonic_msgpack::wkt::{Duration, Timestamp};
use tonic_msgpack_build::{Format, KeyCase};
use tonic_msgpack_gateway::{Transcoder, UnknownFields, dynamic};

fn pool(protos: &[&str], format: Format, case: KeyCase) -> DescriptorPool {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let set = tonic_msgpack_build::load::descriptor_set(
        protos,
        &[root.join("proto"), root.join("proto-common")],
        &[] as &[&str],
        format,
        case,
    )
    .expect("descriptor set");
    DescriptorPool::decode(set.as_slice()).expect("decodes")
}

/// The typed and the descriptor transcoders agree on `value`: the same MessagePack (the
/// generated type's) from the same JSON, the same JSON from the same MessagePack. Returns the
/// JSON.
fn agree<T>(pool: &DescriptorPool, name: &str, typed: &Transcoder, value: &T) -> Value
where
    T: serde::Serialize,
{
    let descriptor = pool.get_message_by_name(name).expect("message");
    let msgpack = tonic_msgpack::to_vec(value).expect("encode");
    let typed_json: Value =
        serde_json::from_slice(&typed.response_to_json(&msgpack).expect("typed JSON"))
            .expect("JSON");
    let dynamic_json = dynamic::msgpack_to_json(&descriptor, &msgpack).expect("dynamic JSON");
    assert_eq!(dynamic_json, typed_json, "{name}: the JSON differs");
    let from_typed = typed
        .request_value_to_msgpack(&typed_json, UnknownFields::Reject)
        .expect("typed MessagePack");
    let from_dynamic = dynamic::json_to_msgpack(&descriptor, &typed_json, UnknownFields::Reject)
        .expect("dynamic MessagePack");
    assert_eq!(from_typed, msgpack, "{name}: typed MessagePack differs");
    assert_eq!(
        from_dynamic, msgpack,
        "{name}: the descriptor transcoder's MessagePack differs"
    );
    typed_json
}

/// The same JSON in both transcoders gives the same bytes (or both refuse it).
fn same_bytes(pool: &DescriptorPool, name: &str, typed: &Transcoder, json: &Value) -> Vec<u8> {
    let descriptor = pool.get_message_by_name(name).expect("message");
    let from_typed = typed.request_value_to_msgpack(json, UnknownFields::Ignore);
    let from_dynamic = dynamic::json_to_msgpack(&descriptor, json, UnknownFields::Ignore);
    match (from_typed, from_dynamic) {
        (Ok(typed), Ok(dynamic)) => {
            assert_eq!(typed, dynamic, "{name}: {json}");
            typed
        }
        (typed, dynamic) => panic!("{name}: {json}: typed {typed:?}, descriptor {dynamic:?}"),
    }
}

fn everything() -> Everything {
    Everything {
        i32: -5,
        i64: i64::MIN,
        u32: u32::MAX,
        u64: u64::MAX,
        s32: -300,
        s64: 1 << 40,
        fx32: 7,
        fx64: 1 << 50,
        sfx32: -1,
        sfx64: -(1 << 33),
        fl: 1.5,
        db: -2.25,
        flag: true,
        text: "héllo".into(),
        data: vec![0, 1, 255],
        color: Color::Green as i32,
        numbers: vec![1, -2, 300],
        names: vec!["a".into(), String::new()],
        blobs: vec![vec![9], vec![]],
        // One entry each: a map's order is the HashMap's, on both sides.
        counts: [("k".to_owned(), -7)].into(),
        blob_map: [(3, vec![4, 5])].into(),
        inner: Some(Inner {
            name: "in".into(),
            value: 2,
        }),
        inners: vec![
            Inner::default(),
            Inner {
                name: "x".into(),
                value: -1,
            },
        ],
        maybe: Some(String::new()),
        at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        took: Some(Duration {
            seconds: 3,
            nanos: 500,
        }),
        wrapped_text: Some("w".into()),
        wrapped_int: Some(0),
        price: Some(proto_e2e::common::v1::Money {
            currency: "EUR".into(),
            units: 12,
            nanos: 340_000_000,
        }),
        tree: Some(Tree {
            label: "root".into(),
            children: vec![Tree {
                label: "leaf".into(),
                ..Tree::default()
            }],
            parent: Some(Box::new(Tree::default())),
        }),
        deep: Some(Deep { ok: true }),
        colors: vec![Color::Red as i32, Color::Unspecified as i32],
        inner_map: [("m".to_owned(), Inner::default())].into(),
        nothing: Some(()),
        shared: bytes::Bytes::from_static(b"shared"),
        maybe_int: Some(-9),
        wrapped_bytes: Some(vec![1]),
        choice: Some(Choice::ChoiceInner(Inner {
            name: "c".into(),
            value: 1,
        })),
    }
}

#[test]
fn every_field_kind_gives_the_same_bytes_and_json() {
    let pool = pool(
        &["demo/everything.proto"],
        Format::Compact,
        KeyCase::AsWritten,
    );
    let typed = Transcoder::typed::<Everything, Everything>();
    let mut cases = vec![Everything::default(), everything()];
    for choice in [
        Choice::ChoiceText("t".into()),
        Choice::ChoiceNumber(-4),
        Choice::ChoiceData(vec![7]),
    ] {
        cases.push(Everything {
            choice: Some(choice),
            ..Everything::default()
        });
    }
    for case in &cases {
        agree(&pool, "demo.v1.Everything", &typed, case);
    }
    let json = agree(&pool, "demo.v1.Everything", &typed, &everything());
    // Proto JSON: 64-bit integers are strings.
    assert_eq!(json["i64"], json!(i64::MIN.to_string()), "{json}");
    assert_eq!(json["u64"], json!(u64::MAX.to_string()), "{json}");
    assert_eq!(json["u32"], json!(u32::MAX), "{json}");
}

#[test]
fn proto_json_spellings_give_the_same_bytes() {
    let pool = pool(
        &["demo/everything.proto"],
        Format::Compact,
        KeyCase::AsWritten,
    );
    let typed = Transcoder::typed::<Everything, Everything>();
    let name = "demo.v1.Everything";
    // 64-bit integers as numbers or strings, enums by name, partial messages.
    let as_numbers = same_bytes(&pool, name, &typed, &json!({"i64": -5, "u64": 7, "s64": 1}));
    let as_strings = same_bytes(
        &pool,
        name,
        &typed,
        &json!({"i64": "-5", "u64": "7", "s64": "1"}),
    );
    assert_eq!(as_numbers, as_strings);
    same_bytes(
        &pool,
        name,
        &typed,
        &json!({"color": "GREEN", "colors": ["RED"]}),
    );
    same_bytes(
        &pool,
        name,
        &typed,
        &json!({"at": "2024-05-01T10:00:00.500Z", "took": "1.5s"}),
    );
    same_bytes(
        &pool,
        name,
        &typed,
        &json!({"wrappedInt": null, "maybe": "m", "data": "AAH/"}),
    );
    same_bytes(
        &pool,
        name,
        &typed,
        &json!({"inner": {"name": "n"}, "counts": {"a": 1}}),
    );
    same_bytes(&pool, name, &typed, &json!({}));
}

#[test]
fn bad_input_names_the_field_in_both() {
    let pool = pool(
        &["demo/everything.proto"],
        Format::Compact,
        KeyCase::AsWritten,
    );
    let typed = Transcoder::typed::<Everything, Everything>();
    let descriptor = pool
        .get_message_by_name("demo.v1.Everything")
        .expect("message");
    for (json, field) in [
        (json!({"text": 5}), "text"),
        (json!({"i32": "seven"}), "i32"),
        (json!({"u64": "-1"}), "u64"),
        (json!({"inner": {"value": []}}), "inner.value"),
        (json!({"numbers": [1, "x"]}), "numbers[1]"),
    ] {
        let typed_error = typed
            .request_value_to_msgpack(&json, UnknownFields::Ignore)
            .expect_err("typed refuses");
        let dynamic_error = dynamic::json_to_msgpack(&descriptor, &json, UnknownFields::Ignore)
            .expect_err("descriptor transcoder refuses");
        assert_eq!(typed_error.field(), Some(field), "{json}: {typed_error}");
        assert_eq!(
            dynamic_error.field(),
            Some(field),
            "{json}: {dynamic_error}"
        );
        assert!(
            dynamic_error
                .message()
                .starts_with("invalid JSON for demo.v1.Everything: field"),
            "{dynamic_error}"
        );
    }
    let unknown = json!({"text": "a", "nmae": 1});
    let error = dynamic::json_to_msgpack(&descriptor, &unknown, UnknownFields::Reject)
        .expect_err("unknown field");
    assert_eq!(error.field(), Some("nmae"));
    assert!(
        error.message().contains("unknown field \"nmae\""),
        "{error}"
    );
}

#[test]
fn the_named_layout_gives_the_same_bytes_and_json() {
    let pool = pool(&["named.proto"], Format::Named, KeyCase::Camel);
    let typed = Transcoder::typed_named::<Profile, Profile>();
    for profile in [
        Profile::default(),
        Profile {
            display_name: "Ada".into(),
            login_count: 3,
            avatar: Some(Avatar::AvatarPng(vec![1, 2])),
            far_away: -1,
        },
        Profile {
            avatar: Some(Avatar::AvatarUrl("u".into())),
            ..Profile::default()
        },
    ] {
        agree(&pool, "named.v1.Profile", &typed, &profile);
    }
}
