//! Rust-produced bytes for other languages: every field kind of `everything.proto`, encoded by
//! the generated types, pinned in `interop/vectors/everything.json`. The generated Python
//! (`interop/python/generated_roundtrip.py`) and TypeScript code decode each vector to the
//! values built here and encode them back to the same bytes.
//!
//! The test fails when the Rust encoding differs from the committed file; after a deliberate
//! wire change, `TONIC_MSGPACK_REGENERATE=1 cargo test -p proto-e2e --test vectors` rewrites it.
//! Maps hold one entry each: a map's order is the `HashMap`'s, so more would not be stable.

use std::path::PathBuf;

use proto_e2e::common::v1::Money;
use proto_e2e::demo::v1::{Color, Everything, Inner, Tree, everything::Choice, inner::Deep};
use tonic_msgpack::wkt::{Duration, Timestamp};

/// (name, value): the names are what the other languages' tests look up.
fn cases() -> Vec<(&'static str, Everything)> {
    let with = |choice| Everything {
        choice: Some(choice),
        ..Everything::default()
    };
    let at = |seconds, nanos| Everything {
        at: Some(Timestamp { seconds, nanos }),
        ..Everything::default()
    };
    vec![
        ("everything_default", Everything::default()),
        ("everything_full", full()),
        ("everything_extremes", extremes()),
        (
            "everything_choice_text",
            with(Choice::ChoiceText("t".into())),
        ),
        ("everything_choice_number", with(Choice::ChoiceNumber(-4))),
        ("everything_choice_data", with(Choice::ChoiceData(vec![7]))),
        (
            "everything_choice_inner",
            with(Choice::ChoiceInner(Inner::default())),
        ),
        // The timestamp extension's three sizes: 32-bit seconds, 64-bit, 96-bit (before 1970).
        ("everything_at_timestamp32", at(1_700_000_000, 0)),
        ("everything_at_timestamp64", at(1_700_000_000, 500_000_000)),
        ("everything_at_timestamp96", at(-1, 999_999_900)),
    ]
}

/// Every field set (the `Empty` one aside: set or not, it is nil on the wire and reads unset).
fn full() -> Everything {
    Everything {
        i32: -5,
        i64: 1 << 40,
        u32: 200,
        u64: 123_456_789,
        s32: -300,
        s64: -(1 << 33),
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
        choice: Some(Choice::ChoiceInner(Inner {
            name: "c".into(),
            value: 1,
        })),
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
        colors: vec![Color::Red as i32, Color::Unspecified as i32],
        inner_map: [("m".to_owned(), Inner::default())].into(),
        nothing: None,
        shared: bytes::Bytes::from_static(b"shared"),
        maybe_int: Some(-9),
        wrapped_bytes: Some(vec![1]),
    }
}

/// The limits of each integer kind and the wider MessagePack forms (str8/16, bin16, array16).
fn extremes() -> Everything {
    Everything {
        i32: i32::MIN,
        i64: i64::MAX,
        u32: u32::MAX,
        u64: u64::MAX,
        s32: i32::MAX,
        s64: i64::MIN,
        fx32: u32::MAX,
        fx64: u64::MAX,
        sfx32: i32::MIN,
        sfx64: i64::MAX,
        fl: f32::MAX,
        db: f64::MIN_POSITIVE,
        text: "ü".repeat(150),
        data: (0..=255).chain(0..=255).collect(),
        color: 7, // an enum value this contract does not know travels as its number
        numbers: (-8..12).collect(),
        names: vec!["x".repeat(40)],
        maybe_int: Some(i32::MIN),
        wrapped_int: Some(i32::MAX),
        ..Everything::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/vectors/everything.json")
}

fn render(vectors: &[(&str, String)]) -> String {
    let lines: Vec<String> = vectors
        .iter()
        .map(|(name, hex)| {
            format!(
                "    {{\"name\": \"{name}\", \"type\": \"demo.v1.Everything\", \"hex\": \"{hex}\"}}"
            )
        })
        .collect();
    format!(
        "{{\n  \"about\": \"demo.v1.Everything (tests/proto-e2e/proto/demo/everything.proto) as the generated Rust types write it; values in tests/proto-e2e/tests/vectors.rs\",\n  \"vectors\": [\n{}\n  ]\n}}\n",
        lines.join(",\n")
    )
}

#[test]
fn everything_vectors_match_the_committed_file() {
    let cases = cases();
    let vectors: Vec<(&str, String)> = cases
        .iter()
        .map(|(name, value)| (*name, hex(&tonic_msgpack::to_vec(value).expect("encode"))))
        .collect();
    let text = render(&vectors);
    let path = path();
    if std::env::var_os("TONIC_MSGPACK_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &text).expect("write vectors");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} differs from what the Rust types write now; if the wire change is deliberate, rerun \
         with TONIC_MSGPACK_REGENERATE=1 and review the diff.\nnow:\n{text}",
        path.display()
    );
    committed_bytes_decode_to_the_values();
}

/// The committed bytes read back to the values they were written from.
fn committed_bytes_decode_to_the_values() {
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path()).expect("read vectors"))
            .expect("JSON");
    let vectors = committed["vectors"].as_array().expect("vectors");
    let cases = cases();
    assert_eq!(vectors.len(), cases.len());
    for (vector, (name, value)) in vectors.iter().zip(cases) {
        assert_eq!(vector["name"], name);
        let text = vector["hex"].as_str().expect("hex");
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex byte"))
            .collect();
        let decoded: Everything = tonic_msgpack::decode_frame(&bytes).expect(name);
        assert_eq!(decoded, value, "{name}");
    }
}
