//! Golden byte vectors for wire format v1 rules 2 and 6, and a fuzz test of the decoder.

mod support;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use support::hex;
use tonic::Code;
use tonic_msgpack::{decode_frame, to_vec, to_vec_named};

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

// Rule 6: zero arguments travel as nil, one as the value itself, several as an array in
// order (MagicOnion's DynamicArgumentTuple); a `()` result is nil.
#[test]
fn rule6_arguments() {
    assert_eq!(hex(&to_vec(&()).expect("encode")), "c0");
    assert_eq!(hex(&to_vec(&7i64).expect("encode")), "07");
    assert_eq!(hex(&to_vec(&(1i64, 2i64)).expect("encode")), "920102");
    assert_eq!(
        hex(&to_vec(&("ab".to_owned(), 300u32, true)).expect("encode")),
        "93a26162cd012cc3"
    );
    // A single tuple argument is the value itself, so it is its own array.
    assert_eq!(hex(&to_vec(&(5u8,)).expect("encode")), "9105");

    assert_eq!(decode_frame::<()>(&unhex("c0")).expect("nil"), ());
    assert_eq!(
        decode_frame::<(i64, i64)>(&unhex("920102")).expect("pair"),
        (1, 2)
    );
    assert_eq!(decode_frame::<i64>(&unhex("d0ff")).expect("int8 -1"), -1);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    customer: String,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

// Rule 6, user types: plain serde structs are arrays (compact) or maps (named).
#[test]
fn rule6_user_types() {
    let order = Order {
        id: 1,
        customer: "ann".into(),
        blob: vec![0xff],
    };
    assert_eq!(hex(&to_vec(&order).expect("encode")), "9301a3616e6ec401ff");
    assert_eq!(
        hex(&to_vec_named(&order).expect("encode")),
        "83a2696401a8637573746f6d6572a3616e6ea4626c6f62c401ff"
    );
    // Decoders accept either layout.
    assert_eq!(
        decode_frame::<Order>(&unhex("9301a3616e6ec401ff")).expect("array"),
        order
    );
    assert_eq!(
        decode_frame::<Order>(&unhex(
            "83a2696401a8637573746f6d6572a3616e6ea4626c6f62c401ff"
        ))
        .expect("map"),
        order
    );
}

// Rule 2: exactly one value per message.
#[test]
fn rule2_exactly_one_value() {
    let cases: [(&str, &str); 5] = [
        ("", "empty message"),
        ("0102", "trailing bytes"),
        ("92", "invalid MessagePack"),
        ("c1", "invalid MessagePack"),
        ("a3616263", "invalid MessagePack"),
    ];
    for (bytes, expected) in cases {
        let error = decode_frame::<i64>(&unhex(bytes)).expect_err(bytes);
        assert_eq!(error.code(), Code::InvalidArgument, "{bytes}");
        assert!(
            error.message().contains(expected) && error.message().contains("i64"),
            "{bytes}: {:?}",
            error.message()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any byte sequence decodes or fails with INVALID_ARGUMENT; it never panics or hangs.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for result in [
            decode_frame::<Order>(&bytes).map(drop),
            decode_frame::<(i64, String, Vec<u32>)>(&bytes).map(drop),
            decode_frame::<serde_json::Value>(&bytes).map(drop),
            decode_frame::<Option<std::collections::HashMap<String, f64>>>(&bytes).map(drop),
        ] {
            if let Err(status) = result {
                prop_assert_eq!(status.code(), Code::InvalidArgument);
            }
        }
    }

    /// Whatever we encode decodes to the same value, and one byte more is always refused.
    #[test]
    fn roundtrip_and_trailing_byte(id in any::<u32>(), customer in ".*", blob in proptest::collection::vec(any::<u8>(), 0..64), extra in any::<u8>()) {
        let order = Order { id, customer, blob };
        let mut bytes = to_vec(&order).expect("encode");
        prop_assert_eq!(&decode_frame::<Order>(&bytes).expect("decode"), &order);
        bytes.push(extra);
        prop_assert_eq!(decode_frame::<Order>(&bytes).expect_err("trailing").code(), Code::InvalidArgument);
    }
}

/// Huge length prefixes inside a small frame must not allocate or hang.
#[test]
fn huge_declared_lengths_fail_fast() {
    for bytes in [
        "dbffffffff",
        "ddffffffff",
        "dfffffffff",
        "c6ffffffff",
        "9fffff",
    ] {
        let started = std::time::Instant::now();
        let error = decode_frame::<serde_json::Value>(&unhex(bytes)).expect_err(bytes);
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{bytes}"
        );
    }
}

/// Every possible single trailing byte is refused, including headers of containers whose
/// elements are missing (a probe that read the elements would mistake them for the end).
#[test]
fn every_trailing_byte_is_refused() {
    for extra in 0..=255u8 {
        let mut bytes = to_vec(&7i64).expect("encode");
        bytes.push(extra);
        let error = decode_frame::<i64>(&bytes).expect_err("trailing byte");
        assert!(
            error.message().contains("trailing bytes"),
            "{extra:#04x}: {error:?}"
        );
    }
}
