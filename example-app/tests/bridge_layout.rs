//! The protobuf bridge's transcoder gives exactly the MessagePack bytes the generated Rust types
//! give, over the example's proto messages and the Calculator's synthesized ones; and the
//! protobuf it gives back is what prost writes for the same value.

use example_app::calculator::__calculator_msgpack as calc;
use example_app::proto::{HelloReply, HelloRequest};
use prost::Message as _;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use tonic_msgpack::wkt::Timestamp;
use tonic_msgpack_gateway::layout;

fn message(name: &str) -> MessageDescriptor {
    DescriptorPool::decode(example_app::DESCRIPTORS)
        .expect("the embedded descriptors decode")
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} in the embedded descriptors"))
}

/// protobuf → MessagePack equals the generated type's MessagePack, and back.
fn same_bytes(name: &str, protobuf: &[u8], msgpack: &[u8]) {
    let descriptor = message(name);
    let mut out = Vec::new();
    layout::protobuf_to_msgpack(&descriptor, protobuf, &mut out).expect("transcodes");
    assert_eq!(
        out, msgpack,
        "{name}: MessagePack differs from the generated type's"
    );
    let mut back = Vec::new();
    layout::msgpack_to_protobuf(&descriptor, msgpack, &mut back).expect("transcodes back");
    assert_eq!(back, protobuf, "{name}: protobuf differs from prost's");
}

#[test]
fn greeter_messages_match_the_generated_types() {
    let requests = [
        HelloRequest::default(),
        HelloRequest {
            name: "Ada".into(),
            count: 3,
        },
        HelloRequest {
            name: "é".repeat(40),
            count: u32::MAX,
        },
    ];
    for request in requests {
        let msgpack = tonic_msgpack::to_vec(&request).expect("encode");
        same_bytes("demo.v1.HelloRequest", &request.encode_to_vec(), &msgpack);
    }
    let replies = [
        HelloReply::default(),
        HelloReply {
            message: "Hello, Ada!".into(),
            index: 7,
            at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
        },
        HelloReply {
            message: String::new(),
            index: 0,
            at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
        },
        HelloReply {
            message: "x".into(),
            index: 1,
            // Before 1970 and past 2106: the 96-bit timestamp extension.
            at: Some(Timestamp {
                seconds: -5_000_000_000,
                nanos: 5,
            }),
        },
    ];
    for reply in replies {
        let msgpack = tonic_msgpack::to_vec(&reply).expect("encode");
        same_bytes("demo.v1.HelloReply", &reply.encode_to_vec(), &msgpack);
    }
}

/// Protobuf for a synthesized message: fields by number, as any protobuf client writes them.
fn varint_fields(fields: &[(u32, i64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(number, value) in fields {
        if value == 0 {
            continue;
        }
        prost::encoding::encode_key(number, prost::encoding::WireType::Varint, &mut out);
        prost::encoding::encode_varint(value as u64, &mut out);
    }
    out
}

#[test]
fn calculator_messages_match_the_trait_types() {
    // Add(a, b): the arguments as an array; its result the value itself.
    for (a, b) in [(40i64, 2i64), (0, 0), (-1, i64::MAX), (i64::MIN, 300)] {
        let request: calc::__AddRequest = (a, b);
        let msgpack = tonic_msgpack::to_vec(&request).expect("encode");
        same_bytes(
            "demo.v1.AddRequest",
            &varint_fields(&[(1, a), (2, b)]),
            &msgpack,
        );
        let response: calc::__AddResponse = a.wrapping_add(b);
        let msgpack = tonic_msgpack::to_vec(&response).expect("encode");
        same_bytes(
            "demo.v1.AddResponse",
            &varint_fields(&[(1, response)]),
            &msgpack,
        );
    }
    // Countdown(from): one argument travels as the value itself.
    for from in [0u32, 3, 70_000, u32::MAX] {
        let request: calc::__CountdownRequest = from;
        let msgpack = tonic_msgpack::to_vec(&request).expect("encode");
        same_bytes(
            "demo.v1.CountdownRequest",
            &varint_fields(&[(1, i64::from(from))]),
            &msgpack,
        );
    }
    // Sum: one stream element per message.
    let element: calc::__SumRequest = -42;
    let msgpack = tonic_msgpack::to_vec(&element).expect("encode");
    same_bytes("demo.v1.SumRequest", &varint_fields(&[(1, -42)]), &msgpack);
    // Ping: no arguments and a `()` result are google.protobuf.Empty, nil on the wire.
    let unit: calc::__PingRequest = ();
    let msgpack = tonic_msgpack::to_vec(&unit).expect("encode");
    same_bytes("google.protobuf.Empty", &[], &msgpack);
}

#[test]
fn bad_messages_name_the_field() {
    let descriptor = message("demo.v1.HelloRequest");
    // `name` (slot 1) is an integer instead of a string.
    let msgpack = tonic_msgpack::to_vec(&(7u8, 1u8)).expect("encode");
    let error = layout::msgpack_to_protobuf(&descriptor, &msgpack, &mut Vec::new())
        .expect_err("not a string");
    assert_eq!(
        error.to_string(),
        "demo.v1.HelloRequest.name: expected a UTF-8 string, got an integer"
    );
    let error = layout::protobuf_to_msgpack(&descriptor, &[0x0a, 0x05, b'a'], &mut Vec::new())
        .expect_err("truncated protobuf");
    assert!(
        error
            .to_string()
            .starts_with("demo.v1.HelloRequest: invalid protobuf"),
        "{error}"
    );
    let mut trailing = tonic_msgpack::to_vec(&HelloRequest::default()).expect("encode");
    trailing.push(0xc0);
    let error = layout::msgpack_to_protobuf(&descriptor, &trailing, &mut Vec::new())
        .expect_err("trailing bytes");
    assert_eq!(
        error.to_string(),
        "demo.v1.HelloRequest: 1 bytes after the MessagePack value"
    );
}
