//! Property test: generated types survive MessagePack (compact and named) and JSON.

use std::collections::HashMap;

use proptest::prelude::*;
use proto_e2e::demo::v1::{Everything, Inner, Tree, everything, inner};
use tonic_msgpack::wkt::{Duration, Timestamp};
use tonic_msgpack::{decode_frame, to_vec, to_vec_named};

fn inner_strategy() -> impl Strategy<Value = Inner> {
    (".{0,8}", any::<i32>()).prop_map(|(name, value)| Inner { name, value })
}

fn choice_strategy() -> impl Strategy<Value = Option<everything::Choice>> {
    prop_oneof![
        Just(None),
        ".{0,8}".prop_map(|s| Some(everything::Choice::ChoiceText(s))),
        any::<i64>().prop_map(|n| Some(everything::Choice::ChoiceNumber(n))),
        inner_strategy().prop_map(|i| Some(everything::Choice::ChoiceInner(i))),
        proptest::collection::vec(any::<u8>(), 0..8)
            .prop_map(|b| Some(everything::Choice::ChoiceData(b))),
    ]
}

fn tree_strategy() -> impl Strategy<Value = Tree> {
    let leaf = ".{0,4}".prop_map(|label| Tree {
        label,
        ..Tree::default()
    });
    leaf.prop_recursive(3, 12, 3, |inner| {
        (
            ".{0,4}",
            proptest::collection::vec(inner.clone(), 0..3),
            proptest::option::of(inner),
        )
            .prop_map(|(label, children, parent)| Tree {
                label,
                children,
                parent: parent.map(Box::new),
            })
    })
}

prop_compose! {
    fn everything_strategy()(
        ints in (any::<i32>(), any::<i64>(), any::<u32>(), any::<u64>(), any::<i32>(), any::<i64>()),
        floats in (any::<f32>().prop_filter("no NaN", |f| !f.is_nan()),
                   any::<f64>().prop_filter("no NaN", |f| !f.is_nan())),
        flag in any::<bool>(),
        text in ".{0,16}",
        data in proptest::collection::vec(any::<u8>(), 0..40),
        color in -2i32..5,
        numbers in proptest::collection::vec(any::<i32>(), 0..5),
        counts in proptest::collection::hash_map(".{0,4}", any::<i64>(), 0..4),
        blob_map in proptest::collection::hash_map(any::<i32>(), proptest::collection::vec(any::<u8>(), 0..4), 0..3),
        inner in proptest::option::of(inner_strategy()),
        maybe in proptest::option::of(".{0,4}"),
        choice in choice_strategy(),
        at in proptest::option::of((any::<i64>(), 0i32..1_000_000_000)),
        took in proptest::option::of((any::<i64>(), any::<i32>())),
        wrapped_int in proptest::option::of(any::<i32>()),
        tree in proptest::option::of(tree_strategy()),
        deep in proptest::option::of(any::<bool>()),
        shared in proptest::collection::vec(any::<u8>(), 0..8),
    ) -> Everything {
        Everything {
            i32: ints.0, i64: ints.1, u32: ints.2, u64: ints.3, s32: ints.4, s64: ints.5,
            fl: floats.0, db: floats.1, flag, text, data, color,
            numbers, counts, blob_map: blob_map.into_iter().collect::<HashMap<_, _>>(), inner, maybe, choice,
            at: at.map(|(seconds, nanos)| Timestamp { seconds, nanos }),
            took: took.map(|(seconds, nanos)| Duration { seconds, nanos }),
            wrapped_int, tree,
            deep: deep.map(|ok| inner::Deep { ok }),
            shared: shared.into(),
            ..Everything::default()
        }
    }
}

proptest! {
    #[test]
    fn compact_roundtrip(value in everything_strategy()) {
        let bytes = to_vec(&value).unwrap();
        prop_assert_eq!(decode_frame::<Everything>(&bytes).unwrap(), value);
    }

    #[test]
    fn named_codec_roundtrip(value in everything_strategy()) {
        let bytes = to_vec_named(&value).unwrap();
        prop_assert_eq!(decode_frame::<Everything>(&bytes).unwrap(), value);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_frame::<Everything>(&bytes);
    }
}
