//! The example's two services through REST by descriptor (what the stand-alone gateway serves
//! from `descriptors = [...]`) against the typed transcoders of the generated route stubs: the
//! same JSON gives byte for byte the same MessagePack, and the same MessagePack the same JSON,
//! for the proto-defined Greeter and the trait-defined Calculator (whose messages are
//! synthesized from the trait).

use prost_reflect::DescriptorPool;
use serde_json::{Value, json};
use tonic_msgpack::wkt::Timestamp;
use tonic_msgpack_gateway::dynamic::DescriptorTranscoder;
use tonic_msgpack_gateway::{Transcoder, UnknownFields};

/// (typed, by descriptor) for `path`.
fn both(path: &str) -> (Transcoder, Transcoder) {
    let table = example_app::routes::table();
    let typed = table
        .get(path)
        .and_then(|route| route.transcoder.clone())
        .unwrap_or_else(|| panic!("{path} has a typed transcoder"));
    let pool = DescriptorPool::decode(example_app::DESCRIPTORS).expect("descriptors decode");
    let (service, method) = path[1..].split_once('/').expect("a gRPC path");
    let method = pool
        .get_service_by_name(service)
        .and_then(|service| service.methods().find(|m| m.name() == method))
        .unwrap_or_else(|| panic!("{path} is in the descriptors"));
    (typed, Transcoder::new(DescriptorTranscoder::new(&method)))
}

/// Both give the same bytes for `request` and the same JSON for `reply`; returns that JSON.
fn agree(path: &str, request: Value, reply: &[u8]) -> Value {
    let (typed, dynamic) = both(path);
    let from_typed = typed
        .request_value_to_msgpack(&request, UnknownFields::Reject)
        .unwrap_or_else(|err| panic!("{path} typed: {request}: {err}"));
    let from_dynamic = dynamic
        .request_value_to_msgpack(&request, UnknownFields::Reject)
        .unwrap_or_else(|err| panic!("{path} by descriptor: {request}: {err}"));
    assert_eq!(from_typed, from_dynamic, "{path}: {request}");
    let typed_json: Value =
        serde_json::from_slice(&typed.response_to_json(reply).expect("typed reply")).expect("JSON");
    let dynamic_json: Value = serde_json::from_slice(
        &dynamic
            .response_to_json(reply)
            .expect("reply by descriptor"),
    )
    .expect("JSON");
    assert_eq!(typed_json, dynamic_json, "{path}: reply {reply:?}");
    typed_json
}

#[test]
fn the_calculator_trait_gives_the_same_bytes_and_json() {
    let add = "/demo.v1.Calculator/Add";
    // 64-bit integers: numbers or strings in, strings out (proto JSON).
    assert_eq!(agree(add, json!({"a": 40, "b": 2}), &[0x2a]), json!("42"));
    let max = tonic_msgpack::to_vec(&i64::MAX).expect("encode");
    assert_eq!(
        agree(add, json!({"a": "9223372036854775807", "b": "-1"}), &max),
        json!("9223372036854775807")
    );
    assert_eq!(
        agree(add, json!({"a": -1, "b": i64::MIN}), &[0xff]),
        json!("-1")
    );
    assert_eq!(
        agree("/demo.v1.Calculator/Countdown", json!({"from": 3}), &[0x03]),
        json!(3)
    );
    assert_eq!(
        agree("/demo.v1.Calculator/Ping", json!({}), &[0xc0]),
        json!(null)
    );

    // Both refuse the same bad input, naming the argument.
    let (typed, dynamic) = both(add);
    for bad in [
        json!({"a": 1}),
        json!({"a": "x", "b": 1}),
        json!({"a": 1.5, "b": 1}),
    ] {
        let typed_error = typed
            .request_value_to_msgpack(&bad, UnknownFields::Ignore)
            .expect_err("typed refuses");
        let dynamic_error = dynamic
            .request_value_to_msgpack(&bad, UnknownFields::Ignore)
            .expect_err("refused by descriptor");
        assert_eq!(typed_error.field(), dynamic_error.field(), "{bad}");
    }
    let missing = dynamic
        .request_value_to_msgpack(&json!({"a": 1}), UnknownFields::Ignore)
        .expect_err("b is missing");
    assert!(missing.message().contains("missing field `b`"), "{missing}");
}

#[test]
fn the_greeter_proto_gives_the_same_bytes_and_json() {
    let reply = example_app::proto::HelloReply {
        message: "Hello, Ada!".into(),
        index: 1,
        at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 5_000,
        }),
    };
    let reply = tonic_msgpack::to_vec(&reply).expect("encode");
    for path in [
        "/demo.v1.Greeter/SayHello",
        "/demo.v1.Greeter/StreamGreetings",
    ] {
        let json = agree(path, json!({"name": "Ada", "count": 2}), &reply);
        assert_eq!(json["at"], json!("2023-11-14T22:13:20.000005Z"), "{json}");
        agree(path, json!({"name": "Ada"}), &reply);
        agree(
            path,
            json!({}),
            &tonic_msgpack::to_vec(&example_app::proto::HelloReply::default()).expect("encode"),
        );
    }
}
