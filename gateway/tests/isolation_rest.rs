//! Issue 11, REST side: what one REST client sends cannot crash the gateway or slow down other
//! clients. Each test attacks a real gateway in front of real upstreams while a well-behaved
//! client keeps calling (gRPC unary and REST) and holds a long-lived server stream; the attacks
//! get their 4xx, the bystander's calls all succeed in bounded time, the gateway stays up.
//!
//! The gateway runs on a two-worker runtime, like a small deployment: work that blocks a worker
//! shows up as bystander latency.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use support::grpc;
use support::rest::*;
use tokio::task::JoinHandle;

/// The longest a bystander's call may take while the gateway is under attack: generous (an
/// idle call takes about a millisecond), not a benchmark.
const BYSTANDER_MAX: Duration = Duration::from_secs(1);

/// Ticks of the bystander's server stream, 50 ms apart: it outlives the attacks.
const TICKS: usize = 40;

/// A well-behaved client: gRPC and REST calls in a loop, and a long-lived server stream.
struct Bystander {
    stop: Arc<AtomicBool>,
    calls: JoinHandle<(usize, Duration)>,
    stream: JoinHandle<Result<Vec<String>, tonic::Status>>,
}

impl Bystander {
    async fn start(gw: &RunningGateway) -> Bystander {
        let channel = grpc::channel(&gw.uri()).await;
        let stream_channel = channel.clone();
        let stream = tokio::spawn(async move {
            grpc::server_streaming(
                &stream_channel,
                "/test.Alpha/Ticks",
                tonic::Request::new(TICKS.to_string()),
            )
            .await
        });
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let addr = gw.addr;
        let calls = tokio::spawn(async move {
            let (mut calls, mut slowest) = (0, Duration::ZERO);
            while !stopped.load(Ordering::Relaxed) {
                let start = Instant::now();
                let reply = grpc::unary(
                    &channel,
                    "/test.Alpha/Unary",
                    tonic::Request::new("ping".to_owned()),
                )
                .await
                .expect("the bystander's gRPC call succeeds");
                assert_eq!(reply.get_ref(), "test.Alpha:ping");
                slowest = slowest.max(start.elapsed());
                let start = Instant::now();
                let (status, body) =
                    json_call(addr, "GET", "/v1/shelves/calm/items/3", &[], "").await;
                assert_eq!(status, 200, "the bystander's REST call succeeds: {body}");
                assert_eq!(body["shelf"], "calm");
                slowest = slowest.max(start.elapsed());
                calls += 2;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (calls, slowest)
        });
        // The stream is open and the calls are going before the attack starts.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Bystander {
            stop,
            calls,
            stream,
        }
    }

    /// Stops the calls and checks what the bystander saw.
    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (calls, slowest) = tokio::time::timeout(LIMIT, self.calls)
            .await
            .expect("the bystander stops")
            .expect("every bystander call succeeded");
        assert!(calls >= 2, "the bystander made calls during the attack");
        assert!(
            slowest < BYSTANDER_MAX,
            "the bystander's slowest call took {slowest:?}"
        );
        let ticks = tokio::time::timeout(LIMIT, self.stream)
            .await
            .expect("the stream ends")
            .expect("stream task")
            .expect("the long-lived stream succeeds");
        assert_eq!(ticks.len(), TICKS, "{ticks:?}");
        eprintln!("bystander: {calls} calls, slowest {slowest:?}, stream of {TICKS} ticks intact");
    }
}

fn assert_alive(gw: &RunningGateway) {
    let task = gw.task.as_ref().expect("gateway task");
    assert!(!task.is_finished(), "the gateway stopped");
}

fn message(body: &serde_json::Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// Finding 1: one JSON object per dot of a query key, with no depth limit; dropping thousands of
/// levels overflowed a worker's stack and aborted the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_dotted_query_key_is_a_400_and_hurts_no_one() {
    let (shop, _gate) = start_shop().await;
    let upstream = grpc::Upstream::start().await;
    let gw = shop_and_grpc_gateway(shop, &upstream.uri(), "").await;
    let bystander = Bystander::start(&gw).await;

    // The exact attack, 3,000 levels (6 KB, within rest.max_query_bytes), from 16 clients.
    let key = vec!["z"; 3000].join(".");
    let path = format!("/v1/shelves/a/items/1?{key}=1");
    let attacks = (0..16).map(|_| json_call(gw.addr, "GET", &path, &[], ""));
    for (status, body) in join_all(attacks).await {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], 3, "{body}");
        assert!(
            message(&body).contains("nested deeper than the gateway's limit of 64 levels")
                && message(&body).contains("rest.max_json_depth")
                && message(&body).contains("z.z.z"),
            "{body}"
        );
        assert!(message(&body).len() < 300, "the key is not echoed whole");
    }
    // One level more than the limit (a repeated key adds the array's level) is refused,
    // the limit itself is not.
    let at_limit = vec!["z"; 64].join(".");
    let (status, body) = json_call(
        gw.addr,
        "GET",
        &format!("/v1/shelves/a/items/1?{at_limit}=1"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = json_call(
        gw.addr,
        "GET",
        &format!("/v1/shelves/a/items/1?{at_limit}=1&{at_limit}=2"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Over HTTP/1.1 with a 60 KB URI: longer than rest.max_query_bytes, 414 before anything is
    // parsed (431 if the header cap at ingress sees it first).
    let long = vec!["z"; 30_000].join(".");
    let (status, body) = grpc::http_get(gw.addr, &format!("/v1/shelves/a/items/1?{long}=1")).await;
    assert!(matches!(status, 414 | 431), "{status}: {body}");

    // JSON bodies: nested deeper than the limit, as the whole message or as a field.
    let deep = format!("{}1{}", "{\"a\":".repeat(65), "}".repeat(65));
    let (status, body) = json_call(gw.addr, "POST", "/rest.v1.Shop/GetItem", &[], &deep).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("rest.max_json_depth"), "{body}");
    let deep_field = format!("{}1{}", "{\"a\":".repeat(64), "}".repeat(64));
    let (status, body) = json_call(gw.addr, "PUT", "/v1/items/9", &[], &deep_field).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("rest.max_json_depth"), "{body}");
    // A million levels (1 MB): refused before parsing, in bounded time.
    let start = Instant::now();
    let (status, body) = json_call(
        gw.addr,
        "POST",
        "/rest.v1.Shop/GetItem",
        &[],
        &"[".repeat(1_000_000),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    bystander.finish().await;
    assert_alive(&gw);
}

/// Finding 1 with the size cap out of the way: the depth limit alone refuses a 60 KB key of
/// 30,000 levels sent over HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_depth_limit_holds_without_the_size_limit() {
    let (shop, _gate) = start_shop().await;
    let upstream = grpc::Upstream::start().await;
    let gw = shop_and_grpc_gateway(
        shop,
        &upstream.uri(),
        "[rest]\nmax_query_bytes = 1048576\n[limits]\nmax_header_list_bytes = 1048576\n",
    )
    .await;
    let bystander = Bystander::start(&gw).await;
    let long = vec!["z"; 30_000].join(".");
    for _ in 0..8 {
        let (status, body) =
            grpc::http_get(gw.addr, &format!("/v1/shelves/a/items/1?{long}=1")).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("rest.max_json_depth"), "{body}");
    }
    bystander.finish().await;
    assert_alive(&gw);
}

/// `k0=1&k1=1&…`: 62 KB, 8,000 distinct keys.
fn many_keys() -> String {
    let mut query = String::new();
    let mut i = 0;
    while query.len() < 62 * 1024 {
        query.push_str(&format!("k{i}=1&"));
        i += 1;
    }
    query
}

/// Finding 7: query parameters were grouped by linear search, so a 62 KB query of distinct keys
/// took 0.63 s of a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_query_with_thousands_of_keys_is_rejected_quickly() {
    let (shop, _gate) = start_shop().await;
    let upstream = grpc::Upstream::start().await;
    let gw = shop_and_grpc_gateway(shop, &upstream.uri(), "").await;
    let bystander = Bystander::start(&gw).await;
    let query = many_keys();

    // The defaults: longer than rest.max_query_bytes → 414 at once (431 if the header cap at
    // ingress sees it first).
    let start = Instant::now();
    let path = format!("/v1/shelves/a/items/1?{query}");
    let attacks = (0..8).map(|_| send(gw.addr, "GET", &path, &[], ""));
    for response in join_all(attacks).await {
        assert!(
            matches!(response.status().as_u16(), 414 | 431),
            "{}",
            response.status()
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Within the length, more than rest.max_query_params → 400.
    let params: String = (0..129).map(|i| format!("p{i}=1&")).collect();
    let (status, body) = json_call(
        gw.addr,
        "GET",
        &format!("/v1/shelves/a/items/1?{params}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("rest.max_query_params"), "{body}");
    bystander.finish().await;
    assert_alive(&gw);

    // With both limits raised, the query is served, and in linear time: eight at once do not
    // slow the bystander down.
    let open = shop_and_grpc_gateway(
        shop,
        &upstream.uri(),
        "[rest]\nmax_query_bytes = 65536\nmax_query_params = 100000\n[limits]\nmax_header_list_bytes = 1048576\n",
    )
    .await;
    let bystander = Bystander::start(&open).await;
    let start = Instant::now();
    let attacks = (0..8).map(|_| json_call(open.addr, "GET", &path, &[], ""));
    for (status, body) in join_all(attacks).await {
        assert_eq!(status, 200, "unknown fields are ignored: {body}");
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    eprintln!("8 queries of 62 KB, 8,000 keys each: {took:?}");
    bystander.finish().await;
    assert_alive(&open);
}

/// Finding 7: 4 MiB REST bodies were parsed into JSON values on the workers; 12 at once took
/// 288 MB and added 1.7 s to unrelated calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_parsed_off_the_workers() {
    let (shop, _gate) = start_shop().await;
    let upstream = grpc::Upstream::start().await;
    let gw = shop_and_grpc_gateway(shop, &upstream.uri(), "[rest]\nparse_concurrency = 2\n").await;
    // Just under rest.max_body_bytes (4 MiB): 600,000 strings in a field the message type does
    // not have (ignored), each one a JSON value to build.
    let mut body = String::from(r#"{"shelf": "big", "junk": ["#);
    while body.len() < 4 * 1024 * 1024 - 32 {
        body.push_str("\"abcd\",");
    }
    body.push_str("\"ab\"]}");
    let bystander = Bystander::start(&gw).await;
    let start = Instant::now();
    let attacks = (0..12).map(|_| json_call(gw.addr, "POST", "/rest.v1.Shop/GetItem", &[], &body));
    for (status, reply) in join_all(attacks).await {
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["shelf"], "big");
    }
    eprintln!("12 bodies of 4 MiB: {:?}", start.elapsed());
    bystander.finish().await;
    assert_alive(&gw);
}
