//! All four call kinds to two services through one gateway port; metadata, trailers, unknown
//! routes and the admin endpoints.

mod support;

use support::grpc::*;
use tonic::{Code, Request};

#[tokio::test]
async fn four_call_kinds_two_services_metadata_and_admin() {
    let upstream = Upstream::start().await;
    let gw = gateway(&two_services(&upstream.uri(), ""), routes()).await;
    let channel = channel(&gw.uri()).await;

    // Unary, both services, request and response metadata.
    let mut request = Request::new("hi".to_owned());
    request
        .metadata_mut()
        .insert("x-req", "abc".parse().expect("value"));
    let response = unary(&channel, "/test.Alpha/Unary", request)
        .await
        .expect("alpha unary");
    assert_eq!(response.get_ref(), "test.Alpha:hi");
    assert_eq!(
        response.metadata().get("x-resp").map(|v| v.to_str().ok()),
        Some(Some("abc"))
    );
    let response = unary(&channel, "/test.Beta/Unary", Request::new("yo".into()))
        .await
        .expect("beta unary");
    assert_eq!(response.get_ref(), "test.Beta:yo");

    // Server streaming.
    let messages = server_streaming(
        &channel,
        "/test.Beta/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("server streaming");
    assert_eq!(
        messages,
        (0..5)
            .map(|i| format!("test.Beta:s:{i}"))
            .collect::<Vec<_>>()
    );

    // Trailers after messages: status, message and custom metadata pass through.
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.expect("ready");
    let mut stream = tokio::time::timeout(
        LIMIT,
        client.server_streaming(
            Request::new("x".to_owned()),
            path("/test.Alpha/StreamFail"),
            tonic_msgpack::MsgPackCodec::<String, String>::default(),
        ),
    )
    .await
    .expect("in time")
    .expect("stream starts")
    .into_inner();
    for expected in ["first", "second"] {
        let message = tokio::time::timeout(LIMIT, stream.message())
            .await
            .expect("in time");
        assert_eq!(message.expect("message").as_deref(), Some(expected));
    }
    let status = tokio::time::timeout(LIMIT, stream.message())
        .await
        .expect("in time")
        .expect_err("ends with the upstream's error");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "stopped on purpose");
    assert_eq!(
        status.metadata().get("x-why").map(|v| v.to_str().ok()),
        Some(Some("because"))
    );

    // Client streaming.
    let response = client_streaming(&channel, "/test.Alpha/ClientStream", &["a", "b", "c"])
        .await
        .expect("client streaming");
    assert_eq!(response.get_ref(), "test.Alpha:a,b,c");
    assert_eq!(
        response.metadata().get("x-count").map(|v| v.to_str().ok()),
        Some(Some("3"))
    );

    // Bidirectional: answers arrive while the client is still sending.
    let (tx, mut responses) = bidi(&channel, "/test.Beta/Bidi").await;
    for word in ["one", "two", "three"] {
        tx.send(word.to_owned()).await.expect("send");
        let answer = tokio::time::timeout(LIMIT, responses.message())
            .await
            .expect("in time")
            .expect("message")
            .expect("not the end");
        assert_eq!(answer, format!("test.Beta:{}", word.to_uppercase()));
    }
    drop(tx);
    let end = tokio::time::timeout(LIMIT, responses.message())
        .await
        .expect("in time")
        .expect("ok end");
    assert!(end.is_none());

    // Unknown routes: a path in no table, and an upstream error status passes through.
    let err = unary(&channel, "/test.Gamma/Unary", Request::new("x".into()))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    let err = unary(&channel, "/test.Alpha/Nope", Request::new("x".into()))
        .await
        .expect_err("unknown method");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");

    // Admin, on its own port.
    assert_eq!(http_get(gw.admin(), "/healthz").await.0, 200);
    let (status, body) = http_get(gw.admin(), "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(gw.admin(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("gateway_calls_total{route=\"/test.Alpha/Unary\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("gateway_call_errors_total{route=\"unmatched\",code=\"UNIMPLEMENTED\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("gateway_call_duration_seconds_count{route=\"/test.Beta/ServerStream\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("gateway_upstream_connections{upstream=\"test.Alpha\"} 1"),
        "{body}"
    );
    let (status, body) = http_get(gw.admin(), "/routes").await;
    assert_eq!(status, 200);
    let routes: serde_json::Value = serde_json::from_str(&body).expect("json");
    let bidi = routes["routes"]
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["path"] == "/test.Beta/Bidi")
        .expect("bidi route");
    assert_eq!(bidi["kind"], "bidi_streaming");
    assert_eq!(bidi["upstream"], "test.Beta");
    let (status, body) = http_get(gw.addr, "/nothing/here").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":404"), "{body}");

    gw.shutdown().await;
}

#[tokio::test]
async fn prefix_override_and_missing_upstream() {
    let upstream = Upstream::start().await;
    // Only an upstream named "both", reached through a prefix override; test.Beta has none.
    let config = format!(
        "[upstreams.both]\nendpoints = [\"{}\"]\n[route_prefixes]\n\"/test.Alpha/\" = \"both\"\n",
        upstream.uri()
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let response = unary(&channel, "/test.Alpha/Unary", Request::new("p".into()))
        .await
        .expect("override");
    assert_eq!(response.get_ref(), "test.Alpha:p");
    // Not in the table but under the prefix: forwarded, the upstream decides.
    let err = unary(&channel, "/test.Alpha/NotInTable", Request::new("p".into()))
        .await
        .expect_err("upstream says no");
    assert_eq!(err.code(), Code::Unimplemented);
    let err = unary(&channel, "/test.Beta/Unary", Request::new("p".into()))
        .await
        .expect_err("no upstream");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    gw.shutdown().await;
}
