//! `dns://` endpoints against a DNS server started here: calls follow the A records as they
//! change, removed addresses drain without failing their calls in flight, and an address that
//! stops resolving stops getting calls.

mod support;

use std::time::Duration;

use support::grpc::*;
use support::scale::*;
use tonic::Request;

const NAME: &str = "replicas.test";

fn config(dns: std::net::SocketAddr, port: u16) -> String {
    format!(
        r#"
        [dns]
        servers = ["{dns}"]
        [upstreams."test.Alpha"]
        endpoints = ["dns://{NAME}:{port}"]
        resolve_interval = "200ms"
        connections = 2
        "#
    )
}

/// `count` unary calls, all of which must succeed.
async fn calls(channel: &tonic::transport::Channel, count: usize) {
    for i in 0..count {
        let reply = unary(channel, "/test.Alpha/Unary", Request::new(format!("{i}")))
            .await
            .expect("call through the resolved endpoints");
        assert_eq!(reply.get_ref(), &format!("test.Alpha:{i}"));
    }
}

#[tokio::test]
async fn calls_follow_the_records_and_removed_addresses_drain() {
    let ips = [loopback(2), loopback(3), loopback(4)];
    let port = shared_port(&ips);
    let first = Replica::start(at(ips[0], port)).await;
    let second = Replica::start(at(ips[1], port)).await;
    let third = Replica::start(at(ips[2], port)).await;
    let dns = TestDns::start(NAME, &ips[..2]).await;
    let gw = gateway(&config(dns.addr, port), routes()).await;
    let channel = channel(&gw.uri()).await;

    // Both resolved addresses take calls.
    calls(&channel, 40).await;
    assert!(
        first.calls() > 0 && second.calls() > 0,
        "{} {}",
        first.calls(),
        second.calls()
    );
    assert_eq!(third.calls(), 0, "not resolved yet");

    // Slow calls in flight on both, then the records change from {2, 3} to {3, 4}.
    let mut slow = tokio::task::JoinSet::new();
    let before = (first.calls(), second.calls());
    for _ in 0..4 {
        let channel = channel.clone();
        slow.spawn(async move {
            unary(&channel, "/test.Alpha/Sleep", Request::new("1500".into())).await
        });
    }
    eventually("slow calls reached both replicas", || async {
        first.calls() > before.0 && second.calls() > before.1
    })
    .await;
    dns.set(&ips[1..]);
    eventually("the new address is connected", || async {
        let (_, text) = http_get(gw.admin(), "/metrics").await;
        endpoint_state(&text, &format!("http://{}:{port}/", ips[2])).as_deref() == Some("healthy")
    })
    .await;
    let before = (first.calls(), second.calls(), third.calls());
    calls(&channel, 40).await;
    assert_eq!(
        first.calls(),
        before.0,
        "the removed address takes no new calls"
    );
    assert!(
        second.calls() > before.1,
        "the kept address still takes calls"
    );
    assert!(third.calls() > before.2, "the new address takes calls");
    // The calls in flight on the removed address finish normally.
    while let Some(result) = tokio::time::timeout(LIMIT, slow.join_next())
        .await
        .expect("slow calls end")
    {
        let reply = result
            .expect("task")
            .expect("a draining call still succeeds");
        assert_eq!(reply.get_ref(), "slept");
    }
    // Then its connections close: only the two resolved addresses keep theirs.
    let drained = tokio::time::timeout(LIMIT, async {
        loop {
            let (_, text) = http_get(gw.admin(), "/metrics").await;
            let open = metric(
                &text,
                "gateway_upstream_connections{upstream=\"test.Alpha\"}",
            );
            let draining = text
                .lines()
                .any(|line| line.contains("state=\"draining\"") && line.ends_with("} 1"));
            if open == Some(4.0) && !draining {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if drained.is_err() {
        let (_, text) = http_get(gw.admin(), "/metrics").await;
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("gateway_upstream"))
            .collect();
        panic!(
            "the drained connections never closed:\n{}",
            lines.join("\n")
        );
    }

    // An address that stops resolving stops getting calls.
    dns.set(&ips[2..]);
    eventually("the removed address leaves the endpoint list", || async {
        let (_, text) = http_get(gw.admin(), "/metrics").await;
        endpoint_state(&text, &format!("http://{}:{port}/", ips[1])).is_none()
    })
    .await;
    let before = (second.calls(), third.calls());
    calls(&channel, 20).await;
    assert_eq!(second.calls(), before.0);
    assert_eq!(third.calls(), before.1 + 20);
    let (_, text) = http_get(gw.admin(), "/metrics").await;
    assert!(
        metric(
            &text,
            "gateway_upstream_resolutions_total{upstream=\"test.Alpha\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "{text}"
    );
    drop(dns);
    tokio::time::sleep(Duration::from_millis(10)).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_failed_connection_triggers_a_resolution() {
    let ips = [loopback(5), loopback(6)];
    let port = shared_port(&ips);
    let mut old = Replica::start(at(ips[0], port)).await;
    let new = Replica::start(at(ips[1], port)).await;
    let dns = TestDns::start(NAME, &ips[..1]).await;
    // Resolved every minute only: the failure must trigger the next resolution.
    let config = config(dns.addr, port).replace("\"200ms\"", "\"60s\"");
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    calls(&channel, 5).await;
    assert_eq!(old.calls(), 5);
    // The replica moves: the old address is gone, the name now points at the new one.
    dns.set(&ips[1..]);
    old.kill();
    eventually("calls reach the new address", || async {
        unary(&channel, "/test.Alpha/Unary", Request::new("x".into()))
            .await
            .is_ok()
            && new.calls() > 0
    })
    .await;
    gw.shutdown().await;
}
