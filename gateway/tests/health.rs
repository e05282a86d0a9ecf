//! Active health checks (`grpc.health.v1.Health/Check`) and passive outlier detection: an
//! endpoint that fails them gets no new calls, `/readyz` and `/metrics` follow.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::grpc::*;
use support::scale::*;
use tonic::Request;

async fn calls(channel: &tonic::transport::Channel, count: usize) {
    for i in 0..count {
        unary(channel, "/test.Alpha/Unary", Request::new(format!("{i}")))
            .await
            .expect("call to a healthy endpoint");
    }
}

async fn metrics(gw: &RunningGateway) -> String {
    http_get(gw.admin(), "/metrics").await.1
}

/// Whether `addr`'s endpoint is in `state` now.
async fn is(gw: &RunningGateway, addr: SocketAddr, state: &str) -> bool {
    endpoint_state(&metrics(gw).await, &format!("http://{addr}/")).as_deref() == Some(state)
}

#[tokio::test]
async fn a_not_serving_endpoint_gets_no_calls_and_readyz_follows() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let first = Replica::start(any).await;
    let second = Replica::start(any).await;
    let config = format!(
        r#"
        [upstreams."test.Alpha"]
        endpoints = ["http://{}", "http://{}"]
        health_check = {{ interval = "100ms", timeout = "500ms", unhealthy_threshold = 2, healthy_threshold = 2 }}
        "#,
        first.addr, second.addr
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    calls(&channel, 20).await;
    assert!(first.calls() > 0 && second.calls() > 0);
    assert_eq!(http_get(gw.admin(), "/readyz").await.0, 200);

    // NOT_SERVING: out of rotation after two failed checks (~200 ms); allow a few intervals.
    second.set_serving(false).await;
    let flipped = tokio::time::Instant::now();
    eventually("the endpoint is marked unhealthy", || async {
        is(&gw, second.addr, "unhealthy").await
    })
    .await;
    assert!(
        flipped.elapsed() < Duration::from_millis(1500),
        "within the thresholds: {:?}",
        flipped.elapsed()
    );
    let before = second.calls();
    calls(&channel, 20).await;
    assert_eq!(
        second.calls(),
        before,
        "an unhealthy endpoint takes no calls"
    );
    assert_eq!(
        http_get(gw.admin(), "/readyz").await.0,
        200,
        "one is healthy"
    );

    // No healthy endpoint left: /readyz answers 503 and names the upstream.
    first.set_serving(false).await;
    eventually("readyz answers 503", || async {
        let (status, body) = http_get(gw.admin(), "/readyz").await;
        status == 503 && body.contains("test.Alpha (no healthy endpoint)")
    })
    .await;

    // Back to SERVING: back in rotation after two passing checks.
    second.set_serving(true).await;
    eventually("readyz answers 200 again", || async {
        http_get(gw.admin(), "/readyz").await.0 == 200
    })
    .await;
    let before = (first.calls(), second.calls());
    calls(&channel, 10).await;
    assert_eq!(first.calls(), before.0, "still unhealthy");
    assert_eq!(second.calls(), before.1 + 10);
    gw.shutdown().await;
}

#[tokio::test]
async fn readyz_can_ignore_an_upstream() {
    let replica = Replica::start(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let config = format!(
        r#"
        [upstreams."test.Alpha"]
        endpoints = ["http://{}"]
        required_for_ready = false
        health_check = {{ interval = "100ms", unhealthy_threshold = 1 }}
        "#,
        replica.addr
    );
    let gw = gateway(&config, routes()).await;
    replica.set_serving(false).await;
    eventually("the endpoint is marked unhealthy", || async {
        is(&gw, replica.addr, "unhealthy").await
    })
    .await;
    assert_eq!(http_get(gw.admin(), "/readyz").await.0, 200);
    // With no healthy endpoint left, calls still go to the unhealthy one rather than failing.
    let channel = channel(&gw.uri()).await;
    calls(&channel, 3).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn consecutive_failures_eject_an_endpoint() {
    let replica = Replica::start(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let mut doomed = Replica::start(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let config = format!(
        r#"
        [upstreams."test.Alpha"]
        endpoints = ["http://{}", "http://{}"]
        max_reconnect_backoff = "100ms"
        outlier_detection = {{ consecutive_failures = 3, base_ejection_time = "30s" }}
        "#,
        replica.addr, doomed.addr
    );
    let gw = gateway(&config, routes()).await;
    doomed.kill();
    // Its reconnection attempts are refused: three in a row eject it.
    eventually("the endpoint is ejected", || async {
        is(&gw, doomed.addr, "ejected").await
    })
    .await;
    let text = metrics(&gw).await;
    assert!(
        metric(
            &text,
            "gateway_upstream_ejections_total{upstream=\"test.Alpha\"}"
        ) >= Some(1.0),
        "{text}"
    );
    let channel = channel(&gw.uri()).await;
    calls(&channel, 10).await;
    gw.shutdown().await;
}
