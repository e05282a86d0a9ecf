//! The gateway's protobuf bridge transcodes by descriptor into exactly the MessagePack the
//! generated types write, over every field kind of `everything.proto` (compact) and the named
//! layout of `named.proto`, and back into the same protobuf message.

use prost::Message as _;
use prost_reflect::DescriptorPool;
use proto_e2e::demo::v1::{Color, Everything, Inner, Tree, everything::Choice, inner::Deep};
use proto_e2e::named::v1::{Profile, profile::Avatar};
use tonic_msgpack::wkt::{Duration, Timestamp};
use tonic_msgpack_build::{Format, KeyCase};
use tonic_msgpack_gateway::layout;

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

/// Asserts protobuf → MessagePack gives the generated type's bytes; returns the protobuf the
/// bridge writes back from them.
fn same_bytes(pool: &DescriptorPool, name: &str, protobuf: &[u8], msgpack: &[u8]) -> Vec<u8> {
    let descriptor = pool.get_message_by_name(name).expect("message");
    let mut out = Vec::new();
    layout::protobuf_to_msgpack(&descriptor, protobuf, &mut out).expect("to MessagePack");
    assert_eq!(
        out, msgpack,
        "{name}: MessagePack differs from the generated type's"
    );
    let mut back = Vec::new();
    layout::msgpack_to_protobuf(&descriptor, msgpack, &mut back).expect("to protobuf");
    back
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
fn every_field_kind_matches_the_generated_type() {
    let pool = pool(
        &["demo/everything.proto"],
        Format::Compact,
        KeyCase::AsWritten,
    );
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
    for case in cases {
        let msgpack = tonic_msgpack::to_vec(&case).expect("encode");
        let back = same_bytes(&pool, "demo.v1.Everything", &case.encode_to_vec(), &msgpack);
        // The same message back, though not always prost's bytes: a map value that is a
        // default message is written out, and a set `Empty` is nil in MessagePack like an
        // unset one (wire rule 5), so it comes back unset.
        let back = Everything::decode(back.as_slice()).expect("valid protobuf");
        assert_eq!(
            back,
            Everything {
                nothing: None,
                ..case
            }
        );
    }
}

#[test]
fn the_named_layout_matches_the_generated_type() {
    let pool = pool(&["named.proto"], Format::Named, KeyCase::Camel);
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
        let msgpack = tonic_msgpack::to_vec(&profile).expect("encode");
        let back = same_bytes(
            &pool,
            "named.v1.Profile",
            &profile.encode_to_vec(),
            &msgpack,
        );
        assert_eq!(
            back,
            profile.encode_to_vec(),
            "protobuf differs from prost's"
        );
    }
}
