//! Many clients share the configured number of upstream connections.

mod support;

use support::grpc::*;
use tonic::Request;

#[tokio::test]
async fn two_hundred_clients_share_the_configured_pool() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\"]\nconnections = 3\n",
        upstream.uri()
    );
    let gw = gateway(&config, routes()).await;
    let uri = gw.uri();
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..200 {
        let uri = uri.clone();
        clients.spawn(async move {
            // Each client has its own HTTP/2 connection to the gateway.
            let channel = channel(&uri).await;
            for call in 0..5 {
                let response = unary(
                    &channel,
                    "/test.Alpha/Unary",
                    Request::new(format!("{client}-{call}")),
                )
                .await
                .expect("call through the pool");
                assert_eq!(response.get_ref(), &format!("test.Alpha:{client}-{call}"));
            }
        });
    }
    while let Some(result) = clients.join_next().await {
        result.expect("client task");
    }
    assert_eq!(
        upstream.accepted.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    let (_, metrics) = http_get(gw.admin(), "/metrics").await;
    assert!(
        metrics.contains("gateway_calls_total{route=\"/test.Alpha/Unary\"} 1000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_upstream_connections{upstream=\"test.Alpha\"} 3"),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn calls_are_balanced_over_endpoints() {
    for balance in ["round_robin", "least_loaded"] {
        let first = Upstream::start().await;
        let second = Upstream::start().await;
        let config = format!(
            "[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\", \"{}\"]\nconnections = 2\nbalance = \"{balance}\"\n",
            first.uri(),
            second.uri()
        );
        let gw = gateway(&config, routes()).await;
        let channel = channel(&gw.uri()).await;
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40 {
            let channel = channel.clone();
            calls.spawn(async move {
                unary(&channel, "/test.Alpha/Sleep", Request::new("20".into()))
                    .await
                    .map(|_| i)
            });
        }
        while let Some(result) = calls.join_next().await {
            result.expect("task").expect("call");
        }
        use std::sync::atomic::Ordering::SeqCst;
        assert_eq!(first.accepted.load(SeqCst), 2, "{balance}");
        assert_eq!(second.accepted.load(SeqCst), 2, "{balance}");
        gw.shutdown().await;
    }
}
