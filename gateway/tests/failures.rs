//! Dead upstreams, deadlines, message size limits and graceful shutdown.

mod support;

use std::time::{Duration, Instant};

use support::grpc::*;
use tonic::{Code, Request};

#[tokio::test]
async fn upstream_killed_mid_call_then_restarted() {
    let mut upstream = Upstream::start().await;
    let gw = gateway(
        &two_services(
            &upstream.uri(),
            "connect_timeout = \"500ms\"\nmax_reconnect_backoff = \"200ms\"",
        ),
        routes(),
    )
    .await;
    let channel = channel(&gw.uri()).await;

    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.expect("ready");
    let mut ticks = tokio::time::timeout(
        LIMIT,
        client.server_streaming(
            Request::new("100".to_owned()),
            path("/test.Alpha/Ticks"),
            tonic_msgpack::MsgPackCodec::<String, String>::default(),
        ),
    )
    .await
    .expect("in time")
    .expect("stream starts")
    .into_inner();
    for i in 0..2 {
        let tick = tokio::time::timeout(LIMIT, ticks.message())
            .await
            .expect("in time");
        assert_eq!(
            tick.expect("tick").as_deref(),
            Some(format!("tick {i}").as_str())
        );
    }
    upstream.kill();
    let err = tokio::time::timeout(LIMIT, async {
        loop {
            match ticks.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("stream ended cleanly after the upstream died"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("the stream fails in time");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    // While it is down: UNAVAILABLE within the connect timeout, no hang.
    let started = Instant::now();
    let err = unary(&channel, "/test.Alpha/Unary", Request::new("x".into()))
        .await
        .expect_err("down");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    upstream.restart().await;
    // The slot reconnects in the background (backoff at most 200 ms here); until then calls
    // fail at once.
    let back = tokio::time::timeout(LIMIT, async {
        loop {
            match unary(&channel, "/test.Alpha/Unary", Request::new("back".into())).await {
                Ok(response) => break response,
                Err(err) => assert_eq!(err.code(), Code::Unavailable, "{err:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("succeeds once the upstream is back");
    assert_eq!(back.get_ref(), "test.Alpha:back");
    let messages = server_streaming(
        &channel,
        "/test.Beta/ServerStream",
        Request::new("b".into()),
    )
    .await
    .expect("streams work again");
    assert_eq!(messages.len(), 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_down_at_start_is_unavailable_and_not_ready() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let gw = gateway(
        &two_services(
            &format!("http://127.0.0.1:{port}"),
            "connect_timeout = \"300ms\"",
        ),
        routes(),
    )
    .await;
    let (status, body) = http_get(gw.admin(), "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("test.Alpha"), "{body}");
    let channel = channel(&gw.uri()).await;
    for _ in 0..3 {
        let started = Instant::now();
        let err = unary(&channel, "/test.Alpha/Unary", Request::new("x".into()))
            .await
            .expect_err("down");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn deadlines_propagate() {
    let upstream = Upstream::start().await;
    let alpha = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\"]\n",
        upstream.uri()
    );
    let beta = format!(
        "[upstreams.\"test.Beta\"]\nendpoints = [\"{}\"]\ndefault_timeout = \"300ms\"\n",
        upstream.uri()
    );
    let gw = gateway(&format!("{alpha}{beta}"), routes()).await;
    let channel = channel(&gw.uri()).await;

    // The client's deadline reaches the upstream.
    let mut request = Request::new("x".to_owned());
    request.set_timeout(Duration::from_secs(7));
    let seen = unary(&channel, "/test.Alpha/Deadline", request)
        .await
        .expect("deadline call");
    assert_ne!(seen.get_ref(), "none");
    // No client deadline: the gateway's default for a unary call (limits.default_timeout,
    // 30 s), or the upstream's own default.
    let seen = unary(&channel, "/test.Alpha/Deadline", Request::new("x".into()))
        .await
        .expect("call");
    assert_eq!(seen.get_ref(), "30000m");
    let seen = unary(&channel, "/test.Beta/Deadline", Request::new("x".into()))
        .await
        .expect("call");
    assert_eq!(seen.get_ref(), "300m");
    // The default deadline is enforced.
    let started = Instant::now();
    let err = unary(&channel, "/test.Beta/Sleep", Request::new("3000".into()))
        .await
        .expect_err("too slow");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted() {
    let upstream = Upstream::start().await;
    let gw = gateway(
        &two_services(&upstream.uri(), "max_message_size = 1024"),
        routes(),
    )
    .await;
    let channel = channel(&gw.uri()).await;
    let err = unary(
        &channel,
        "/test.Alpha/Unary",
        Request::new("x".repeat(4000)),
    )
    .await
    .expect_err("big request");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let err = unary(&channel, "/test.Alpha/Big", Request::new("4000".into()))
        .await
        .expect_err("big response");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let ok = unary(&channel, "/test.Alpha/Big", Request::new("1000".into()))
        .await
        .expect("under the limit");
    assert_eq!(ok.get_ref().len(), 1000);
    let (_, metrics) = http_get(gw.admin(), "/metrics").await;
    assert!(
        metrics.contains("route=\"/test.Alpha/Big\",code=\"RESOURCE_EXHAUSTED\"} 1"),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish() {
    let upstream = Upstream::start().await;
    let gw = gateway(&two_services(&upstream.uri(), ""), routes()).await;
    let addr = gw.addr;
    let channel = channel(&gw.uri()).await;
    let call = tokio::spawn({
        let channel = channel.clone();
        async move { unary(&channel, "/test.Alpha/Sleep", Request::new("500".into())).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    gw.shutdown().await;
    let response = call.await.expect("task").expect("in-flight call finished");
    assert_eq!(response.get_ref(), "slept");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped accepting"
    );
}
