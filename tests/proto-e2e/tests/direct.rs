//! The direct MessagePack of the generated types (`tonic_msgpack::direct`, what `MessageCodec`
//! and so every `.proto` service uses) against their serde impls through rmp-serde: the same
//! bytes, the same decoded values, and `bytes::Bytes` fields that share the received frame.

use bytes::Bytes;
use proptest::prelude::*;
use proto_e2e::common::v1::Money;
use proto_e2e::demo::v1::{Color, Everything, Inner, Tree, everything::Choice, inner::Deep};
use proto_e2e::hello::v1::HelloRequest;
use proto_e2e::samples;
use tonic_msgpack::direct::{MsgPackDecode, MsgPackEncode, Reader, decode_bytes, encode_to_vec};
use tonic_msgpack::wkt::{Duration, Timestamp};
use tonic_msgpack::{decode_frame, to_vec, to_vec_named};

/// Every field set.
fn full() -> Everything {
    Everything {
        s32: -300,
        s64: -(1 << 33),
        fx32: 7,
        fx64: 1 << 50,
        sfx32: -1,
        sfx64: -(1 << 33),
        blobs: vec![vec![9], vec![], vec![1; 300]],
        blob_map: [(3, vec![4, 5])].into(),
        maybe: Some(String::new()),
        took: Some(Duration {
            seconds: -3,
            nanos: -500,
        }),
        wrapped_int: Some(0),
        price: Some(Money {
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
        colors: vec![Color::Red as i32, 7],
        inner_map: [("m".to_owned(), Inner::default())].into(),
        shared: Bytes::from_static(b"shared"),
        maybe_int: Some(i32::MIN),
        wrapped_bytes: Some(vec![1]),
        ..samples::medium()
    }
}

/// The wider forms: str8/16, bin16, array16, the integer limits, 96-bit timestamps.
fn wide() -> Everything {
    Everything {
        i32: i32::MIN,
        i64: i64::MAX,
        u32: u32::MAX,
        u64: u64::MAX,
        s64: i64::MIN,
        fl: f32::MAX,
        db: f64::MIN_POSITIVE,
        text: "ü".repeat(150),
        data: vec![3; 70_000],
        numbers: (-40_000..-39_980)
            .chain([-129, -33, 127, 128, 255, 256, 65_536])
            .collect(),
        names: vec!["x".repeat(40), "y".repeat(300)],
        choice: Some(Choice::ChoiceData(vec![7; 3])),
        at: Some(Timestamp {
            seconds: -1,
            nanos: 999_999_900,
        }),
        inners: (0..20)
            .map(|value| Inner {
                name: String::new(),
                value,
            })
            .collect(),
        ..Everything::default()
    }
}

/// Decodes with the direct decoder alone (no serde fallback): it must accept the whole frame.
fn strict<T: MsgPackDecode>(frame: &Bytes) -> T {
    let mut reader = Reader::new(frame);
    let value = T::decode_msgpack(&mut reader).expect("the direct decoder declined");
    assert!(reader.at_end(), "the direct decoder left bytes");
    value
}

fn assert_same<T>(value: &T)
where
    T: MsgPackEncode + MsgPackDecode + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let serde = to_vec(value).expect("serde encode");
    let direct = encode_to_vec(value).expect("direct encode");
    assert_eq!(direct, serde, "{value:?}");
    assert_eq!(&strict::<T>(&Bytes::from(direct)), value);
}

#[test]
fn every_field_kind_is_the_serde_bytes() {
    assert_same(&Everything::default());
    assert_same(&full());
    assert_same(&wide());
    assert_same(&samples::small());
    assert_same(&samples::medium());
    assert_same(&samples::large());
    for at in [
        (1_700_000_000, 0),
        (1_700_000_000, 5),
        (1 << 33, 1),
        (-5, 0),
    ] {
        assert_same(&Everything {
            at: Some(Timestamp {
                seconds: at.0,
                nanos: at.1,
            }),
            ..Everything::default()
        });
    }
    for choice in [
        Choice::ChoiceText("t".into()),
        Choice::ChoiceNumber(-4),
        Choice::ChoiceInner(Inner::default()),
    ] {
        assert_same(&Everything {
            choice: Some(choice),
            ..Everything::default()
        });
    }
}

#[test]
fn bytes_fields_share_the_frame() {
    let value = full();
    let frame = Bytes::from(encode_to_vec(&value).expect("encode"));
    let decoded: Everything = decode_bytes(&frame).expect("decode");
    assert_eq!(decoded, value);
    let range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
    assert!(
        range.contains(&(decoded.shared.as_ptr() as usize)),
        "the Bytes field was copied out of the frame"
    );
}

#[test]
fn other_forms_are_left_to_serde() {
    let value = full();
    // The named layout, nil for a message, a shorter and a longer array.
    let named = Bytes::from(to_vec_named(&value).expect("encode"));
    assert_eq!(decode_bytes::<Everything>(&named).expect("named"), value);
    assert_eq!(
        decode_bytes::<Everything>(&Bytes::from_static(&[0xc0])).expect("nil"),
        Everything::default()
    );
    let request = HelloRequest {
        name: "a".into(),
        count: 0,
    };
    assert_eq!(
        strict::<HelloRequest>(&Bytes::from_static(&[0x91, 0xa1, b'a'])),
        request
    );
    assert_eq!(
        strict::<HelloRequest>(&Bytes::from_static(&[
            0x94, 0xa1, b'a', 0x00, 0x93, 0x01, 0xc0, 0xa0, 0xc3
        ])),
        request
    );
    // A str for a bytes field: serde accepts it, the direct decoder declines.
    let text_for_bytes = Bytes::from_static(&[
        0x9f, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0,
        0xa2, b'h', b'i',
    ]);
    assert_eq!(
        decode_bytes::<Everything>(&text_for_bytes)
            .expect("str as bytes")
            .data,
        b"hi".to_vec()
    );
    // Errors are serde's, word for word.
    for bad in [
        &[][..],
        &[0x92, 0xa1, b'a', 0x01, 0x01][..],
        &[0x92, 0xc3][..],
    ] {
        let frame = Bytes::copy_from_slice(bad);
        assert_eq!(
            decode_bytes::<HelloRequest>(&frame)
                .expect_err("invalid")
                .message(),
            decode_frame::<HelloRequest>(bad)
                .expect_err("invalid")
                .message()
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // 300 nested trees: deeper than both decoders allow.
    let mut frame = Vec::new();
    for _ in 0..300 {
        frame.extend_from_slice(&[0x93, 0xa0, 0x90]);
    }
    frame.push(0xc0);
    let frame = Bytes::from(frame);
    let err = decode_bytes::<Tree>(&frame).expect_err("too deep");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

fn inner_strategy() -> impl Strategy<Value = Inner> {
    (".{0,8}", any::<i32>()).prop_map(|(name, value)| Inner { name, value })
}

prop_compose! {
    fn everything_strategy()(
        ints in (any::<i32>(), any::<i64>(), any::<u32>(), any::<u64>(), any::<i32>(), any::<i64>()),
        fixed in (any::<u32>(), any::<u64>(), any::<i32>(), any::<i64>()),
        floats in (any::<f32>().prop_filter("no NaN", |f| !f.is_nan()),
                   any::<f64>().prop_filter("no NaN", |f| !f.is_nan())),
        text in ".{0,40}",
        data in proptest::collection::vec(any::<u8>(), 0..300),
        numbers in proptest::collection::vec(any::<i64>().prop_map(|n| (n >> (n & 63)) as i32), 0..20),
        names in proptest::collection::vec(".{0,4}", 0..3),
        counts in proptest::collection::hash_map(".{0,4}", any::<i64>(), 0..2),
        inners in proptest::collection::vec(inner_strategy(), 0..18),
        at in proptest::option::of((any::<i64>(), 0i32..1_000_000_000)),
        took in proptest::option::of((any::<i64>(), any::<i32>())),
        maybe in proptest::option::of(".{0,4}"),
        wrapped_int in proptest::option::of(any::<i32>()),
        shared in proptest::collection::vec(any::<u8>(), 0..8),
    ) -> Everything {
        Everything {
            i32: ints.0, i64: ints.1, u32: ints.2, u64: ints.3, s32: ints.4, s64: ints.5,
            fx32: fixed.0, fx64: fixed.1, sfx32: fixed.2, sfx64: fixed.3,
            fl: floats.0, db: floats.1, text, data, numbers, names, counts, inners, maybe,
            at: at.map(|(seconds, nanos)| Timestamp { seconds, nanos }),
            took: took.map(|(seconds, nanos)| Duration { seconds, nanos }),
            wrapped_int,
            shared: shared.into(),
            ..Everything::default()
        }
    }
}

proptest! {
    #[test]
    fn direct_is_serde(value in everything_strategy()) {
        let serde = to_vec(&value).unwrap();
        let direct = encode_to_vec(&value).unwrap();
        prop_assert_eq!(&direct, &serde);
        prop_assert_eq!(strict::<Everything>(&Bytes::from(direct)), value);
    }

    /// A damaged frame: whatever the direct decoder accepts, serde reads the same way.
    #[test]
    fn damaged_frames_decode_as_serde_does(
        value in everything_strategy(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = to_vec(&value).unwrap();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let frame = Bytes::from(bytes);
        let mut reader = Reader::new(&frame);
        if let Ok(direct) = Everything::decode_msgpack(&mut reader)
            && reader.at_end()
        {
            let serde = decode_frame::<Everything>(&frame);
            prop_assert!(serde.is_ok(), "direct accepted what serde refused: {:?}", serde);
            let serde = serde.unwrap();
            if !(direct.fl.is_nan() || direct.db.is_nan()) {
                prop_assert_eq!(direct, serde);
            }
        }
    }
}
