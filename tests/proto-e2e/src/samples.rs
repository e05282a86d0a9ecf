//! The messages measured by `benches/messages.rs` and `examples/instructions.rs`.

use std::collections::HashMap;

use tonic_msgpack::wkt::Timestamp;

use crate::demo::v1::{Color, Everything, Inner, Tree, everything};
use crate::hello::v1::HelloRequest;

/// A two-field request.
pub fn small() -> HelloRequest {
    HelloRequest {
        name: "Ann Example".into(),
        count: 42,
    }
}

/// A mid-size message using most field kinds.
pub fn medium() -> Everything {
    Everything {
        i32: -5,
        i64: 1 << 40,
        u32: 7,
        u64: 123_456_789,
        fl: 1.5,
        db: 2.25,
        flag: true,
        text: "the quick brown fox jumps over the lazy dog".into(),
        data: vec![7; 64],
        color: Color::Green as i32,
        numbers: (0..32).collect(),
        names: vec!["alpha".into(), "beta".into(), "gamma".into()],
        counts: HashMap::from([("a".into(), 1), ("b".into(), 2)]),
        inner: Some(Inner {
            name: "inner".into(),
            value: 9,
        }),
        inners: (0..8)
            .map(|i| Inner {
                name: format!("item-{i}"),
                value: i,
            })
            .collect(),
        choice: Some(everything::Choice::ChoiceText("chosen".into())),
        at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_000_000,
        }),
        wrapped_text: Some("wrapped".into()),
        ..Everything::default()
    }
}

/// A recursive tree of 341 nodes.
pub fn large() -> Tree {
    fn tree(depth: u32) -> Tree {
        Tree {
            label: format!("node at depth {depth}"),
            children: if depth == 0 {
                Vec::new()
            } else {
                (0..4).map(|_| tree(depth - 1)).collect()
            },
            parent: None,
        }
    }
    tree(4)
}
