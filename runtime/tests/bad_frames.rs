//! A raw client sends malformed, truncated, empty and trailing-byte frames: the server answers
//! `INVALID_ARGUMENT` naming the type and the problem, and keeps serving on the same connection.

mod support;

use support::raw::{RawClient, frame};
use support::serve;

const ADD: &str = "/demo.v1.Calculator/Add";
const SUM: &str = "/demo.v1.Calculator/Sum";
const INVALID_ARGUMENT: i32 = 3;

fn add_request(a: i64, b: i64) -> Vec<u8> {
    tonic_msgpack::to_vec(&(a, b)).expect("encode")
}

#[tokio::test]
async fn bad_unary_frames_are_invalid_argument_and_the_connection_survives() {
    let mut client = RawClient::connect(&serve().await).await;
    let good = add_request(2, 3);
    let mut trailing = good.clone();
    trailing.push(0xc0);

    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("empty frame", frame(&[]), "empty message"),
        (
            "truncated",
            frame(&good[..good.len() - 1]),
            "invalid MessagePack",
        ),
        ("trailing bytes", frame(&trailing), "trailing bytes"),
        (
            "reserved marker 0xc1",
            frame(&[0xc1]),
            "invalid MessagePack",
        ),
        (
            "wrong shape",
            frame(&tonic_msgpack::to_vec("two").expect("encode")),
            "invalid MessagePack",
        ),
        (
            "one argument short",
            frame(&tonic_msgpack::to_vec(&(1i64,)).expect("encode")),
            "invalid MessagePack",
        ),
    ];
    for (name, body, expected) in cases {
        let response = client.call(ADD, body, &[]).await;
        assert_eq!(
            response.grpc_status,
            Some(INVALID_ARGUMENT),
            "{name}: {response:?}"
        );
        assert!(
            response.grpc_message.contains(expected) && response.grpc_message.contains("i64"),
            "{name}: message {:?} should contain {expected:?} and name the type",
            response.grpc_message
        );
        // The same connection still serves a good call.
        let response = client.call(ADD, frame(&good), &[]).await;
        assert_eq!(response.grpc_status, Some(0), "{name}: {response:?}");
        assert_eq!(
            response.messages,
            vec![tonic_msgpack::to_vec(&5i64).expect("encode")]
        );
    }
}

#[tokio::test]
async fn a_bad_frame_ends_a_client_stream_with_invalid_argument() {
    let mut client = RawClient::connect(&serve().await).await;
    let mut body = frame(&tonic_msgpack::to_vec(&1i64).expect("encode"));
    body.extend(frame(&[0x92, 0x01])); // an array missing its second element
    body.extend(frame(&tonic_msgpack::to_vec(&2i64).expect("encode")));
    let response = client.call(SUM, body, &[]).await;
    assert_eq!(response.grpc_status, Some(INVALID_ARGUMENT), "{response:?}");

    let mut body = frame(&tonic_msgpack::to_vec(&1i64).expect("encode"));
    body.extend(frame(&tonic_msgpack::to_vec(&2i64).expect("encode")));
    let response = client.call(SUM, body, &[]).await;
    assert_eq!(response.grpc_status, Some(0), "{response:?}");
    assert_eq!(
        response.messages,
        vec![tonic_msgpack::to_vec(&3i64).expect("encode")]
    );
}

#[tokio::test]
async fn the_server_enforces_grpc_timeout() {
    let mut client = RawClient::connect(&serve().await).await;
    let started = std::time::Instant::now();
    let body = frame(&tonic_msgpack::to_vec(&5_000u64).expect("encode"));
    let response = client
        .call(
            "/demo.v1.Calculator/Sleep",
            body,
            &[("grpc-timeout", "50m")],
        )
        .await;
    // tonic 0.14 reports its own server-side timeout as CANCELLED ("Timeout expired") where
    // the gRPC spec says DEADLINE_EXCEEDED; either way the call ends at the deadline.
    assert!(
        matches!(response.grpc_status, Some(1 | 4)),
        "CANCELLED or DEADLINE_EXCEEDED: {response:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[tokio::test]
async fn oversized_messages_are_refused_before_decoding() {
    let mut client = RawClient::connect(&serve().await).await;
    let big = tonic_msgpack::to_vec(&"x".repeat(5 * 1024 * 1024)).expect("encode");
    let response = client.call(ADD, frame(&big), &[]).await;
    // tonic 0.14 answers a frame over its 4 MiB default with OUT_OF_RANGE (the gateway
    // answers RESOURCE_EXHAUSTED itself); the codec never sees the frame.
    assert_eq!(response.grpc_status, Some(11), "OUT_OF_RANGE: {response:?}");
    assert!(response.grpc_message.contains("too large"), "{response:?}");
    let response = client.call(ADD, frame(&add_request(1, 2)), &[]).await;
    assert_eq!(response.grpc_status, Some(0), "{response:?}");
}
