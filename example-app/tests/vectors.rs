//! Rust-produced bytes for other languages: every Calculator method's request (its argument
//! tuple: nil, the bare value or an array) and response, and the Greeter's messages, as the
//! Rust side writes them, pinned in `interop/vectors/calculator.json`. The generated Python
//! (`interop/python/generated_roundtrip.py`) and TypeScript code decode each vector to the
//! values built here and encode them back to the same bytes.
//!
//! The test fails when the Rust encoding differs from the committed file; after a deliberate
//! wire change, `TONIC_MSGPACK_REGENERATE=1 cargo test -p example-app --test vectors` rewrites
//! it.

use std::path::PathBuf;

use example_app::calculator::__calculator_msgpack::{
    __AddRequest, __AddResponse, __CountdownRequest, __CountdownResponse, __PingRequest,
    __PingResponse, __RunningTotalRequest, __RunningTotalResponse, __SumRequest, __SumResponse,
};
use example_app::proto::{HelloReply, HelloRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic_msgpack::wkt::Timestamp;

/// Whether bytes read back to a vector's value.
type Decodes = Box<dyn Fn(&[u8]) -> bool>;

/// One vector: its name (what the other languages look up), the gRPC method and side, and how
/// to check that the committed bytes read back to the value.
struct Vector {
    name: &'static str,
    what: &'static str,
    bytes: Vec<u8>,
    decodes: Decodes,
}

fn vector<T>(name: &'static str, what: &'static str, value: T) -> Vector
where
    T: Serialize + DeserializeOwned + PartialEq + 'static,
{
    let bytes = tonic_msgpack::to_vec(&value).expect("encode");
    Vector {
        name,
        what,
        bytes,
        decodes: Box::new(move |bytes| {
            tonic_msgpack::decode_frame::<T>(bytes).is_ok_and(|v| v == value)
        }),
    }
}

fn vectors() -> Vec<Vector> {
    let add: [(&str, __AddRequest); 3] = [
        ("add_request", (40, 2)),
        ("add_request_negative", (-1, -300)),
        ("add_request_extremes", (i64::MIN, i64::MAX)),
    ];
    let mut out: Vec<Vector> = add
        .into_iter()
        .map(|(name, args)| vector(name, "/demo.v1.Calculator/Add request", args))
        .collect();
    let responses: [(&str, __AddResponse); 2] =
        [("add_response", 42), ("add_response_min", i64::MIN)];
    out.extend(
        responses
            .into_iter()
            .map(|(name, sum)| vector(name, "/demo.v1.Calculator/Add response", sum)),
    );
    for (name, value) in [
        ("sum_request_1", 1),
        ("sum_request_negative", -129),
        ("sum_request_max", i64::MAX),
    ] {
        let value: __SumRequest = value;
        out.push(vector(
            name,
            "/demo.v1.Calculator/Sum request message",
            value,
        ));
    }
    let sum: __SumResponse = 1 << 40;
    out.push(vector(
        "sum_response",
        "/demo.v1.Calculator/Sum response",
        sum,
    ));
    for (name, value) in [
        ("countdown_request", 3),
        ("countdown_request_max", u32::MAX),
    ] {
        let value: __CountdownRequest = value;
        out.push(vector(name, "/demo.v1.Calculator/Countdown request", value));
    }
    for (name, value) in [("countdown_response_0", 0), ("countdown_response_200", 200)] {
        let value: __CountdownResponse = value;
        out.push(vector(
            name,
            "/demo.v1.Calculator/Countdown response message",
            value,
        ));
    }
    for (name, value) in [
        ("running_total_request", -7),
        ("running_total_request_big", 1 << 35),
    ] {
        let value: __RunningTotalRequest = value;
        out.push(vector(
            name,
            "/demo.v1.Calculator/RunningTotal request message",
            value,
        ));
    }
    let total: __RunningTotalResponse = 65_536;
    out.push(vector(
        "running_total_response",
        "/demo.v1.Calculator/RunningTotal response message",
        total,
    ));
    let ping: __PingRequest = ();
    out.push(vector(
        "ping_request",
        "/demo.v1.Calculator/Ping request",
        ping,
    ));
    let pong: __PingResponse = ();
    out.push(vector(
        "ping_response",
        "/demo.v1.Calculator/Ping response",
        pong,
    ));

    out.push(vector(
        "hello_request",
        "demo.v1.HelloRequest",
        HelloRequest {
            name: "Ada".into(),
            count: 3,
        },
    ));
    out.push(vector(
        "hello_request_default",
        "demo.v1.HelloRequest",
        HelloRequest::default(),
    ));
    out.push(vector(
        "hello_reply",
        "demo.v1.HelloReply",
        HelloReply {
            message: "Hello, Ada!".into(),
            index: 2,
            at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 500_000_000,
            }),
        },
    ));
    out.push(vector(
        "hello_reply_unset_at",
        "demo.v1.HelloReply",
        HelloReply {
            message: "Hello, Bo!".into(),
            index: 0,
            at: None,
        },
    ));
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/vectors/calculator.json")
}

fn render(vectors: &[Vector]) -> String {
    let lines: Vec<String> = vectors
        .iter()
        .map(|v| {
            format!(
                "    {{\"name\": \"{}\", \"type\": \"{}\", \"hex\": \"{}\"}}",
                v.name,
                v.what,
                hex(&v.bytes)
            )
        })
        .collect();
    format!(
        "{{\n  \"about\": \"demo.v1.Calculator's arguments and results and demo.v1.Greeter's messages as the Rust side writes them; values in example-app/tests/vectors.rs\",\n  \"vectors\": [\n{}\n  ]\n}}\n",
        lines.join(",\n")
    )
}

#[test]
fn calculator_vectors_match_the_committed_file() {
    let text = render(&vectors());
    let path = path();
    if std::env::var_os("TONIC_MSGPACK_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &text).expect("write vectors");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} differs from what the Rust side writes now; if the wire change is deliberate, rerun \
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
    let committed = committed["vectors"].as_array().expect("vectors");
    let vectors = vectors();
    assert_eq!(committed.len(), vectors.len());
    for (entry, vector) in committed.iter().zip(&vectors) {
        assert_eq!(entry["name"], vector.name);
        let text = entry["hex"].as_str().expect("hex");
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex byte"))
            .collect();
        assert!(
            (vector.decodes)(&bytes),
            "{}: does not decode to its value",
            vector.name
        );
    }
}
