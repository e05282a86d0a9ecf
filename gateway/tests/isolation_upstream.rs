//! Issue 11, the upstream side: what one client (or one upstream) does to the shared upstream
//! connections must not reach other clients. Each test runs a fault against a real gateway and
//! real tonic upstreams — a client that never reads its streams, a black-holed endpoint, an
//! upstream connection going away, an upstream that never answers, a full concurrency limit,
//! forged headers — while a well-behaved client's unary calls and a long-lived stream keep
//! succeeding, and checks the gateway is alive after.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::grpc::{
    MessageStream, TestService, Upstream, channel, http_get, path, routes, two_services, unary,
};
use support::{LIMIT, RunningGateway, start_gateway};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::{Grpc, NamedService};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_msgpack::MsgPackCodec;
use tonic_msgpack_gateway::{CallKind, Route, RouteTable};

type Codec = MsgPackCodec<String, String>;
type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

// ---------------------------------------------------------------------------------------------
// The `test.Flood` upstream: a stream that sends as fast as flow control lets it, a unary
// echo, a slow stream, and a method that answers with the headers it received.
// ---------------------------------------------------------------------------------------------

/// One `Flood` message: 16 KiB.
const CHUNK: usize = 16 * 1024;

#[derive(Clone)]
struct Flood {
    /// `Flood` streams that ended: they never end by themselves, so each one was reset.
    ended: Arc<AtomicUsize>,
}

impl NamedService for Flood {
    const NAME: &'static str = "test.Flood";
}

/// Counts a `Flood` stream's end when the upstream drops it.
struct Ended(Arc<AtomicUsize>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl<B> tower::Service<http::Request<B>> for Flood
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let ended = self.ended.clone();
        Box::pin(async move {
            let mut grpc = Grpc::new(Codec::default());
            let response = match method.as_str() {
                "Flood" => {
                    let svc = tower::service_fn(move |_req: Request<String>| {
                        let guard = Ended(ended.clone());
                        async move {
                            let chunk = "x".repeat(CHUNK);
                            let stream: MessageStream =
                                Box::pin(futures_util::stream::repeat_with(move || {
                                    let _alive = &guard;
                                    Ok(chunk.clone())
                                }));
                            Ok::<_, Status>(Response::new(stream))
                        }
                    });
                    grpc.server_streaming(svc, req).await
                }
                "Unary" => {
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        Ok::<_, Status>(Response::new(format!("flood:{}", req.get_ref())))
                    });
                    grpc.unary(svc, req).await
                }
                "Ticks" => {
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        let n: u64 = req.get_ref().parse().unwrap_or(0);
                        let stream: MessageStream =
                            Box::pin(futures_util::stream::unfold(0u64, move |i| async move {
                                if i == n {
                                    return None;
                                }
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Some((Ok(format!("tick {i}")), i + 1))
                            }));
                        Ok::<_, Status>(Response::new(stream))
                    });
                    grpc.server_streaming(svc, req).await
                }
                "Headers" => {
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        let headers = req.metadata().clone().into_headers();
                        let mut lines: Vec<String> = headers
                            .iter()
                            .map(|(name, value)| {
                                format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
                            })
                            .collect();
                        lines.sort();
                        Ok::<_, Status>(Response::new(lines.join("\n")))
                    });
                    grpc.unary(svc, req).await
                }
                _ => Status::unimplemented(format!("no method {method}")).into_http(),
            };
            Ok(response)
        })
    }
}

fn flood_routes() -> RouteTable {
    RouteTable::from_routes([
        Route::new("test.Flood", "Flood", CallKind::ServerStreaming),
        Route::new("test.Flood", "Unary", CallKind::Unary),
        Route::new("test.Flood", "Ticks", CallKind::ServerStreaming),
        Route::new("test.Flood", "Headers", CallKind::Unary),
    ])
}

/// Starts `test.Flood` on `127.0.0.1:0`: its address and its count of ended `Flood` streams.
async fn start_flood() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let ended = Arc::new(AtomicUsize::new(0));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Flood {
                ended: ended.clone(),
            })
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, ended)
}

// ---------------------------------------------------------------------------------------------
// An upstream whose connections the test controls (`test.Alpha`, support's TestService).
// ---------------------------------------------------------------------------------------------

/// Serves `test.Alpha` on a listener with a backlog of 1. The test can stop accepting (the
/// backlog then fills and new connections hang: a black hole), close every open connection,
/// or make them go away gracefully (GOAWAY).
struct Controlled {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    accepting: watch::Sender<bool>,
    /// Bumped to send GOAWAY on every open connection.
    goaway: watch::Sender<u32>,
    /// Bumped to close every open connection at once.
    close: watch::Sender<u32>,
    /// Connections that fill the backlog while black-holed.
    fillers: Vec<TcpStream>,
    task: JoinHandle<()>,
}

impl Controlled {
    /// `max_streams`: the SETTINGS_MAX_CONCURRENT_STREAMS each connection announces.
    async fn start(max_streams: Option<u32>) -> Controlled {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let listener = socket.listen(1).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (accepting, mut accepting_rx) = watch::channel(true);
        let (goaway, goaway_rx) = watch::channel(0u32);
        let (close, close_rx) = watch::channel(0u32);
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                if !*accepting_rx.borrow_and_update() {
                    if accepting_rx.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        counter.fetch_add(1, SeqCst);
                        tokio::spawn(serve(stream, max_streams, goaway_rx.clone(), close_rx.clone()));
                    }
                    changed = accepting_rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Controlled {
            addr,
            accepted,
            accepting,
            goaway,
            close,
            fillers: Vec::new(),
            task,
        }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, fills the backlog so that new connections hang in their handshake,
    /// and closes every open connection.
    async fn black_hole(&mut self) {
        self.accepting.send_replace(false);
        while self.fillers.len() < 16 {
            match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(self.addr))
                .await
            {
                Ok(Ok(stream)) => self.fillers.push(stream),
                Ok(Err(err)) => panic!("filling the backlog: {err}"),
                // A connection hangs: the backlog is full.
                Err(_) => break,
            }
        }
        assert!(self.fillers.len() < 16, "the backlog never filled");
        self.close.send_modify(|n| *n += 1);
    }

    /// Accepts again (the connections queued meanwhile included).
    fn open(&mut self) {
        self.fillers.clear();
        self.accepting.send_replace(true);
    }

    /// Sends GOAWAY on every open connection; they finish the calls they took.
    fn go_away(&self) {
        self.goaway.send_modify(|n| *n += 1);
    }
}

impl Drop for Controlled {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    stream: TcpStream,
    max_streams: Option<u32>,
    mut goaway: watch::Receiver<u32>,
    mut close: watch::Receiver<u32>,
) {
    let service = hyper::service::service_fn(|req: http::Request<Incoming>| {
        let mut svc = TestService::<0>;
        async move { tower::Service::call(&mut svc, req).await }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.max_concurrent_streams(max_streams);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = pin!(connection);
    goaway.mark_unchanged();
    close.mark_unchanged();
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = close.changed() => return,
        _ = goaway.changed() => connection.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = close.changed() => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Clients and probes.
// ---------------------------------------------------------------------------------------------

/// A MessagePack string.
fn msgpack_str(text: &str) -> Vec<u8> {
    let len = text.len();
    let mut out = match len {
        0..=31 => vec![0xa0 | len as u8],
        32..=255 => vec![0xd9, len as u8],
        256..=65535 => vec![0xda, (len >> 8) as u8, len as u8],
        _ => {
            let mut head = vec![0xdb];
            head.extend_from_slice(&(len as u32).to_be_bytes());
            head
        }
    };
    out.extend_from_slice(text.as_bytes());
    out
}

/// Reads a MessagePack string.
fn read_msgpack_str(bytes: &[u8]) -> String {
    let (len, start) = match bytes[0] {
        byte @ 0xa0..=0xbf => (usize::from(byte & 0x1f), 1),
        0xd9 => (usize::from(bytes[1]), 2),
        0xda => (usize::from(u16::from_be_bytes([bytes[1], bytes[2]])), 3),
        0xdb => (
            u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize,
            5,
        ),
        other => panic!("not a MessagePack string: {other:#x}"),
    };
    String::from_utf8(bytes[start..start + len].to_vec()).expect("utf-8")
}

/// A gRPC frame of a MessagePack string.
fn grpc_frame(text: &str) -> Bytes {
    let payload = msgpack_str(text);
    let mut frame = vec![0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}

/// A raw HTTP/2 client with the default (64 KiB) windows, which it never opens further by
/// itself: data it does not read stays unacknowledged.
async fn raw_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let io = tokio::time::timeout(LIMIT, TcpStream::connect(addr))
        .await
        .expect("connect within the limit")
        .expect("connect");
    let (send, connection) = tokio::time::timeout(LIMIT, h2::client::handshake(io))
        .await
        .expect("handshake within the limit")
        .expect("handshake");
    tokio::spawn(connection);
    send
}

/// Starts a call on a raw client: the request message is sent, nothing is read.
async fn raw_call(
    client: &mut h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    method: &str,
    message: &str,
) -> h2::client::ResponseFuture {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let ready = tokio::time::timeout(LIMIT, client.clone().ready())
        .await
        .expect("ready within the limit")
        .expect("ready");
    *client = ready;
    let (response, mut body) = client.send_request(request, false).expect("send");
    body.send_data(grpc_frame(message), true).expect("data");
    response
}

/// The value of one metric line (`name{labels} value`) on the admin port.
async fn metric(gw: &RunningGateway, series: &str) -> f64 {
    let (_, text) = http_get(gw.admin(), "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Polls `metric` until it reaches `at_least`, up to `within`; returns the last value.
async fn metric_at_least(
    gw: &RunningGateway,
    series: &str,
    at_least: f64,
    within: Duration,
) -> f64 {
    let start = Instant::now();
    loop {
        let value = metric(gw, series).await;
        if value >= at_least || start.elapsed() > within {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A long-lived server stream of `n` ticks (one per 50 ms) on `method`, read message by
/// message: the number received, or the first failure.
fn ticks(channel: Channel, method: &'static str, n: u32) -> JoinHandle<Result<u32, String>> {
    tokio::spawn(async move {
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.map_err(|err| err.to_string())?;
        let mut stream = tokio::time::timeout(
            LIMIT,
            client.server_streaming(Request::new(n.to_string()), path(method), Codec::default()),
        )
        .await
        .map_err(|_| "stream start timed out".to_owned())?
        .map_err(|status| format!("stream start: {status:?}"))?
        .into_inner();
        let mut received = 0;
        loop {
            match tokio::time::timeout(LIMIT, stream.message()).await {
                Err(_) => return Err(format!("tick {received} timed out")),
                Ok(Err(status)) => return Err(format!("tick {received}: {status:?}")),
                Ok(Ok(None)) => return Ok(received),
                Ok(Ok(Some(tick))) => {
                    if tick != format!("tick {received}") {
                        return Err(format!("tick {received}: got {tick:?}"));
                    }
                    received += 1;
                }
            }
        }
    })
}

/// Waits for a [`ticks`] stream and checks it received all `n` ticks.
async fn all_ticks(stream: JoinHandle<Result<u32, String>>, n: u32) {
    let received = tokio::time::timeout(LIMIT, stream)
        .await
        .expect("the stream ends within the limit")
        .expect("stream task")
        .unwrap_or_else(|err| panic!("the well-behaved stream: {err}"));
    assert_eq!(received, n, "the well-behaved stream's ticks");
}

/// A well-behaved unary call that must succeed; returns its latency.
async fn timed_unary(channel: &Channel, method: &str, message: &str, expect: &str) -> Duration {
    let start = Instant::now();
    let reply = unary(channel, method, Request::new(message.to_owned()))
        .await
        .unwrap_or_else(|status| panic!("well-behaved call {method}: {status:?}"));
    assert_eq!(reply.get_ref(), expect);
    start.elapsed()
}

/// The gateway is alive: its task runs and a new client's call works.
async fn assert_alive(gw: &RunningGateway, method: &str, expect: &str) {
    assert!(
        gw.task.as_ref().is_some_and(|task| !task.is_finished()),
        "the gateway task ended"
    );
    let fresh = channel(&gw.uri()).await;
    timed_unary(&fresh, method, "alive", expect).await;
    assert_eq!(http_get(gw.admin(), "/healthz").await.0, 200);
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[index]
}

// ---------------------------------------------------------------------------------------------
// 1. Flow control: a client that never reads.
// ---------------------------------------------------------------------------------------------

/// 32 server streams that the client never reads would pin 32 × 128 KiB of the upstream
/// connection's 1 MiB window (and, before the fix, hyper's default 2 MiB stream windows pinned
/// its 5 MiB connection window with three). The gateway resets the longest-stalled ones as
/// soon as they could hold more than half the window, so the well-behaved client's unary calls
/// and its stream on the same upstream connection go on.
#[tokio::test]
async fn streams_a_client_never_reads_cannot_starve_the_shared_connection() {
    let (upstream, ended) = start_flood().await;
    let config = format!(
        "[upstreams.\"test.Flood\"]\nendpoints = [\"http://{upstream}\"]\nstream_window = 131072\nconnection_window = 1048576\n"
    );
    let gw = start_gateway(&config, flood_routes()).await;
    let good = channel(&gw.uri()).await;
    let stream = ticks(good.clone(), "/test.Flood/Ticks", 60);
    timed_unary(&good, "/test.Flood/Unary", "warm", "flood:warm").await;

    // The attack: 32 streams of 16 KiB messages, never read.
    let mut attacker = raw_client(gw.addr).await;
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(raw_call(&mut attacker, gw.addr, "/test.Flood/Flood", "go").await);
    }

    let mut latencies = Vec::new();
    let attack = Instant::now();
    while attack.elapsed() < Duration::from_millis(2500) {
        let message = format!("u{}", latencies.len());
        let latency = timed_unary(
            &good,
            "/test.Flood/Unary",
            &message,
            &format!("flood:{message}"),
        )
        .await;
        assert!(
            latency < Duration::from_secs(2),
            "a well-behaved call took {latency:?}"
        );
        latencies.push(latency);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = latencies.len();
    let p50 = percentile(&mut latencies, 0.5);
    let p99 = percentile(&mut latencies, 0.99);
    let max = percentile(&mut latencies, 1.0);
    println!(
        "well-behaved unary during the attack: {calls} calls, p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );

    // At most 4 stalled streams (half the window at 128 KiB each) stay; the others were reset,
    // and the upstream saw them end.
    let resets = metric_at_least(
        &gw,
        "gateway_upstream_slow_consumer_resets_total{upstream=\"test.Flood\"}",
        28.0,
        Duration::from_secs(5),
    )
    .await;
    assert!(resets >= 28.0, "{resets} resets");
    assert!(ended.load(SeqCst) >= 28, "{} ended", ended.load(SeqCst));
    all_ticks(stream, 60).await;

    drop(held);
    drop(attacker);
    assert_alive(&gw, "/test.Flood/Unary", "flood:alive").await;
}

/// One stream its client stopped reading is reset after `slow_consumer_timeout`, although it
/// alone cannot pin the connection; the client then gets `RESOURCE_EXHAUSTED` after the data it
/// had been sent, and the call's slot under `concurrency_limit` is free again.
#[tokio::test]
async fn a_response_not_read_for_the_slow_consumer_timeout_is_reset() {
    let (upstream, ended) = start_flood().await;
    let config = format!(
        "[upstreams.\"test.Flood\"]\nendpoints = [\"http://{upstream}\"]\nslow_consumer_timeout = \"500ms\"\nconcurrency_limit = 2\nqueue_timeout = \"5s\"\n"
    );
    let gw = start_gateway(&config, flood_routes()).await;
    let good = channel(&gw.uri()).await;
    let stream = ticks(good.clone(), "/test.Flood/Ticks", 30);

    let mut attacker = raw_client(gw.addr).await;
    let response = raw_call(&mut attacker, gw.addr, "/test.Flood/Flood", "go").await;
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("headers within the limit")
        .expect("response");
    assert_eq!(response.status(), 200);
    // The stream and the flood hold both slots: this call waits until the flood is reset.
    let waited = timed_unary(&good, "/test.Flood/Unary", "queued", "flood:queued").await;
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    let resets = metric_at_least(
        &gw,
        "gateway_upstream_slow_consumer_resets_total{upstream=\"test.Flood\"}",
        1.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(resets, 1.0);
    assert_eq!(ended.load(SeqCst), 1, "the upstream saw its stream reset");

    // The client reads again: what it was sent, then the gateway's status.
    let mut body = response.into_body();
    let mut received = 0;
    while let Some(data) = tokio::time::timeout(LIMIT, body.data())
        .await
        .expect("data in time")
    {
        let data = data.expect("data");
        received += data.len();
        let _ = body.flow_control().release_capacity(data.len());
    }
    let trailers = tokio::time::timeout(LIMIT, body.trailers())
        .await
        .expect("trailers in time")
        .expect("trailers")
        .expect("some trailers");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"8"[..])
    );
    assert!(received > 0);
    all_ticks(stream, 30).await;
    assert_alive(&gw, "/test.Flood/Unary", "flood:alive").await;
}

/// A client that cancels its stream gets it reset upstream at once (its window is not held
/// until the upstream ends it), and an upstream that then dies with the stream's remains in
/// its connection does not hang the gateway. The gateway runs on a runtime of its own, so that
/// a hung gateway fails the test's calls instead of hanging the test.
#[tokio::test]
async fn a_cancelled_stream_is_reset_upstream_and_its_connection_may_die() {
    let (flood, ended) = start_flood().await;
    let mut mortal = Upstream::start().await;
    let config = format!(
        "[upstreams.\"test.Flood\"]\nendpoints = [\"http://{flood}\"]\n[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\"]\n",
        mortal.uri()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("gateway runtime");
    let gw = runtime
        .spawn(async move { start_gateway(&config, flood_routes().merge(routes())).await })
        .await
        .expect("gateway starts");
    let good = channel(&gw.uri()).await;

    for _ in 0..3 {
        let mut client = tonic::client::Grpc::new(good.clone());
        client.ready().await.expect("ready");
        let mut stream = tokio::time::timeout(
            LIMIT,
            client.server_streaming(
                Request::new("go".to_owned()),
                path("/test.Flood/Flood"),
                Codec::default(),
            ),
        )
        .await
        .expect("in time")
        .expect("stream starts")
        .into_inner();
        let first = tokio::time::timeout(LIMIT, stream.message())
            .await
            .expect("in time")
            .expect("message");
        assert_eq!(first.map(|m| m.len()), Some(CHUNK));
        drop(stream);
    }
    let reset = Instant::now();
    while ended.load(SeqCst) < 3 {
        assert!(
            reset.elapsed() < Duration::from_secs(5),
            "{} reset",
            ended.load(SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The same on a connection that then dies.
    let mut client = tonic::client::Grpc::new(good.clone());
    client.ready().await.expect("ready");
    let mut ticks = tokio::time::timeout(
        LIMIT,
        client.server_streaming(
            Request::new("100".to_owned()),
            path("/test.Alpha/Ticks"),
            Codec::default(),
        ),
    )
    .await
    .expect("in time")
    .expect("stream starts")
    .into_inner();
    tokio::time::timeout(LIMIT, ticks.message())
        .await
        .expect("in time")
        .expect("tick");
    drop(ticks);
    mortal.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_alive(&gw, "/test.Flood/Unary", "flood:alive").await;
    drop(gw);
    runtime.shutdown_background();
}

// ---------------------------------------------------------------------------------------------
// 2. Reconnecting: in the background, one attempt at a time, failing fast while down.
// ---------------------------------------------------------------------------------------------

/// Runs `count` concurrent unary calls to `method`; returns each one's (latency, code).
async fn concurrent_calls(
    channel: &Channel,
    method: &'static str,
    count: usize,
) -> Vec<(Duration, Code)> {
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..count {
        let channel = channel.clone();
        calls.spawn(async move {
            let start = Instant::now();
            let code = match unary(&channel, method, Request::new(format!("c{i}"))).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            (start.elapsed(), code)
        });
    }
    let mut out = Vec::new();
    while let Some(result) = calls.join_next().await {
        out.push(result.expect("call task"));
    }
    out.sort_by_key(|(latency, _)| *latency);
    out
}

/// The upstream's listener stops accepting and its connection closes: new TCP connections
/// hang. Eight concurrent calls share the one connection attempt and all fail within about
/// the connect timeout (before: one attempt per call under a lock, 1 s, 2 s, … 8 s); once that
/// attempt failed, calls fail at once. Another upstream's client is untouched, and the slot
/// reconnects by itself when the endpoint is back.
#[tokio::test]
async fn a_black_holed_endpoint_fails_calls_together_and_fast() {
    let mut dark = Controlled::start(None).await;
    let healthy = Upstream::start().await;
    let config = format!(
        // Fail-fast mode: calls are not held while the endpoint is down (the default holds
        // them up to `retries.hold_timeout`, see tests/retries.rs).
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\"]\nconnect_timeout = \"1s\"\nmax_reconnect_backoff = \"400ms\"\nretries = {{ hold_timeout = \"0s\" }}\n[upstreams.\"test.Beta\"]\nendpoints = [\"{}\"]\n",
        dark.uri(),
        healthy.uri()
    );
    let gw = start_gateway(&config, routes()).await;
    let good = channel(&gw.uri()).await;
    let stream = ticks(good.clone(), "/test.Beta/Ticks", 60);
    timed_unary(&good, "/test.Alpha/Unary", "before", "test.Alpha:before").await;

    dark.black_hole().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let results = concurrent_calls(&good, "/test.Alpha/Unary", 8).await;
    let all = started.elapsed();
    println!("8 calls to a black-holed endpoint: {results:?}, all done in {all:?}");
    for (latency, code) in &results {
        assert_eq!(*code, Code::Unavailable);
        assert!(*latency < Duration::from_millis(1800), "{latency:?}");
    }
    assert!(all < Duration::from_millis(2000), "{all:?}");

    // The endpoint is known to be down now: calls fail at once, without waiting for the
    // background attempts, while the other upstream serves normally.
    for i in 0..5 {
        let started = Instant::now();
        let err = unary(&good, "/test.Alpha/Unary", Request::new("down".into()))
            .await
            .expect_err("down");
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(err.message(), "upstream unavailable", "no upstream detail");
        let latency = started.elapsed();
        assert!(
            latency < Duration::from_millis(300),
            "fail-fast {latency:?}"
        );
        let message = format!("b{i}");
        let latency = timed_unary(
            &good,
            "/test.Beta/Unary",
            &message,
            &format!("test.Beta:{message}"),
        )
        .await;
        assert!(latency < Duration::from_millis(500), "{latency:?}");
    }
    assert!(
        metric(
            &gw,
            "gateway_upstream_failed_fast_total{upstream=\"test.Alpha\"}"
        )
        .await
            >= 5.0
    );

    // Back: the slot reconnects in the background (backoff at most 400 ms).
    dark.open();
    let back = Instant::now();
    loop {
        match unary(&good, "/test.Alpha/Unary", Request::new("back".into())).await {
            Ok(reply) => {
                assert_eq!(reply.get_ref(), "test.Alpha:back");
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::Unavailable),
        }
        assert!(back.elapsed() < Duration::from_secs(5), "never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    all_ticks(stream, 60).await;
    assert_alive(&gw, "/test.Beta/Unary", "test.Beta:alive").await;
}

// ---------------------------------------------------------------------------------------------
// 3. GOAWAY: calls the upstream did not take are sent again.
// ---------------------------------------------------------------------------------------------

/// The upstream takes two streams at a time per connection, so the gateway's client queues
/// the other calls locally; the upstream then goes away (GOAWAY) keeping the two it took. The
/// queued calls were never processed: the gateway sends them again on a fresh connection
/// instead of failing them (before: `UNAVAILABLE`). The long-lived stream on the old connection
/// finishes there.
#[tokio::test]
async fn calls_refused_by_a_goaway_are_sent_again() {
    let upstream = Controlled::start(Some(2)).await;
    let healthy = Upstream::start().await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\"]\n[upstreams.\"test.Beta\"]\nendpoints = [\"{}\"]\n",
        upstream.uri(),
        healthy.uri()
    );
    let gw = start_gateway(&config, routes()).await;
    let good = channel(&gw.uri()).await;
    // Stream 1 of the upstream connection: lives through the GOAWAY.
    let stream = ticks(good.clone(), "/test.Alpha/Ticks", 30);
    tokio::time::sleep(Duration::from_millis(100)).await;

    for round in 0..3 {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..8 {
            let channel = good.clone();
            calls.spawn(async move {
                unary(&channel, "/test.Alpha/Sleep", Request::new("300".into()))
                    .await
                    .map_err(|status| format!("round {round} call {i}: {status:?}"))
            });
        }
        // One call runs upstream next to the stream (round 0), the others are queued.
        tokio::time::sleep(Duration::from_millis(100)).await;
        upstream.go_away();
        while let Some(result) = calls.join_next().await {
            let reply = result.expect("task").unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(reply.get_ref(), "slept");
        }
    }
    let retries = metric(
        &gw,
        "gateway_upstream_retries_total{upstream=\"test.Alpha\"}",
    )
    .await;
    println!("calls sent again after GOAWAY: {retries}");
    assert!(retries >= 6.0, "{retries} retries");
    assert!(upstream.accepted.load(SeqCst) >= 2);
    all_ticks(stream, 30).await;
    assert_alive(&gw, "/test.Alpha/Unary", "test.Alpha:alive").await;
}

// ---------------------------------------------------------------------------------------------
// 4. Deadlines: a default for calls that end with one response, a cap for all.
// ---------------------------------------------------------------------------------------------

/// A gateway with `limits` under `[limits]` whose route table knows only test.Alpha: test.Beta
/// is reached by a route prefix, so the gateway does not know its calls' kinds.
async fn gateway_with_beta_by_prefix(limits: &str) -> (Upstream, RunningGateway) {
    let upstream = Upstream::start().await;
    let config = format!(
        "[limits]\n{limits}\n[route_prefixes]\n\"/test.Beta/\" = \"test.Beta\"\n{}",
        two_services(&upstream.uri(), "")
    );
    let alpha = RouteTable::from_routes(
        routes()
            .routes()
            .iter()
            .filter(|route| route.service == "test.Alpha")
            .cloned(),
    );
    let gw = start_gateway(&config, alpha).await;
    (upstream, gw)
}

/// An upstream that takes a unary call and never answers: without a client deadline the call
/// ends with `DEADLINE_EXCEEDED` after `limits.default_timeout`; a client's `99999999H` reaches
/// the upstream as `limits.max_timeout`; server streams and prefix-routed paths get no default.
#[tokio::test]
async fn calls_without_a_deadline_get_the_default_and_long_ones_are_capped() {
    let (_upstream, gw) =
        gateway_with_beta_by_prefix("default_timeout = \"300ms\"\nmax_timeout = \"2s\"").await;
    let good = channel(&gw.uri()).await;
    // 40 ticks take 2 s, far over the default: a server stream gets none.
    let stream = ticks(good.clone(), "/test.Alpha/Ticks", 40);

    let started = Instant::now();
    let err = unary(&good, "/test.Alpha/Sleep", Request::new("600000".into()))
        .await
        .expect_err("the upstream never answers");
    let took = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    println!("a call the upstream never answers ended after {took:?}");

    let seen = |reply: Response<String>| reply.into_inner();
    let default = unary(&good, "/test.Alpha/Deadline", Request::new("x".into()))
        .await
        .expect("call");
    assert_eq!(seen(default), "300m");
    let mut forever = Request::new("x".to_owned());
    forever
        .metadata_mut()
        .insert("grpc-timeout", "99999999H".parse().expect("value"));
    let capped = unary(&good, "/test.Alpha/Deadline", forever)
        .await
        .expect("call");
    assert_eq!(seen(capped), "2000m");
    let mut short = Request::new("x".to_owned());
    short.set_timeout(Duration::from_millis(1500));
    let kept = unary(&good, "/test.Alpha/Deadline", short)
        .await
        .expect("call");
    assert_ne!(
        seen(kept),
        "2000m",
        "a deadline under the cap passes as sent"
    );
    let prefix = unary(&good, "/test.Beta/Deadline", Request::new("x".into()))
        .await
        .expect("call");
    assert_eq!(seen(prefix), "none");

    all_ticks(stream, 40).await;
    assert_alive(&gw, "/test.Alpha/Unary", "test.Alpha:alive").await;
}

/// A path of unknown kind gets no deadline, but an upstream that takes it and never sends
/// response headers is cut off after `limits.response_header_timeout` (`DEADLINE_EXCEEDED`),
/// while a stream that has its headers runs on well past that time.
#[tokio::test]
async fn calls_without_a_deadline_still_get_response_headers_in_time() {
    let (_upstream, gw) = gateway_with_beta_by_prefix("response_header_timeout = \"400ms\"").await;
    let good = channel(&gw.uri()).await;
    // 40 ticks take 2 s, five times the header timeout: its headers came at once.
    let stream = ticks(good.clone(), "/test.Alpha/Ticks", 40);

    let started = Instant::now();
    let err = unary(&good, "/test.Beta/Sleep", Request::new("600000".into()))
        .await
        .expect_err("the upstream never answers");
    let took = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        !err.message().contains("127.0.0.1"),
        "no upstream address in {err:?}"
    );
    println!("a prefix-routed call the upstream never answers ended after {took:?}");

    all_ticks(stream, 40).await;
    assert_alive(&gw, "/test.Alpha/Unary", "test.Alpha:alive").await;
}

/// `gateway_upstream_connects_total` of test.Alpha.
const ALPHA_CONNECTS: &str = "gateway_upstream_connects_total{upstream=\"test.Alpha\"}";

/// A gateway in front of both test services, with test.Alpha's connection up.
async fn warm_gateway() -> (Upstream, RunningGateway, Channel) {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&two_services(&upstream.uri(), ""), routes()).await;
    let good = channel(&gw.uri()).await;
    timed_unary(&good, "/test.Alpha/Unary", "warm", "test.Alpha:warm").await;
    (upstream, gw, good)
}

/// test.Alpha's connection was replaced once (by the pool's choice: not lost) since `before`
/// connects.
async fn assert_replaced_once(gw: &RunningGateway, before: f64) {
    let after = metric_at_least(gw, ALPHA_CONNECTS, before + 1.0, Duration::from_secs(5)).await;
    assert_eq!(after, before + 1.0, "one new connection");
    let replaced = "gateway_upstream_connections_replaced_total{upstream=\"test.Alpha\"}";
    assert_eq!(metric(gw, replaced).await, 1.0, "replaced, not lost");
}

/// After a surge of streams (over 128 open at once on the one upstream connection) has
/// drained, the pool replaces that connection, since h2 never shrinks what a connection's
/// streams took (256 unread streams left 0.9 MB allocated, 9,000 held streams 6.6 MB), without
/// breaking a stream that stays open across the change.
#[tokio::test]
async fn a_connection_is_replaced_after_a_surge_of_streams() {
    let (_upstream, gw, good) = warm_gateway().await;
    let before = metric(&gw, ALPHA_CONNECTS).await;
    // 80 ticks: 4 s, longer than the surge.
    let long = ticks(good.clone(), "/test.Alpha/Ticks", 80);

    // 200 streams of 1.5 s on another client connection (256 streams at most).
    let client = channel(&gw.uri()).await;
    let surge: Vec<_> = (0..200)
        .map(|_| ticks(client.clone(), "/test.Alpha/Ticks", 30))
        .collect();
    for stream in surge {
        all_ticks(stream, 30).await;
    }
    assert_replaced_once(&gw, before).await;

    all_ticks(long, 80).await;
    // Calls that end normally, however many, replace nothing.
    for n in 0..1100 {
        let message = format!("after{n}");
        timed_unary(
            &good,
            "/test.Alpha/Unary",
            &message,
            &format!("test.Alpha:{message}"),
        )
        .await;
    }
    assert_eq!(metric(&gw, ALPHA_CONNECTS).await, before + 1.0);
    assert_alive(&gw, "/test.Alpha/Unary", "test.Alpha:alive").await;
}

/// Streams cut off before their end leave h2 reset streams to remember, which grow the
/// connection's stream table just as open ones do: after 1,200 cancelled streams (never more
/// than 100 open at once) the connection is replaced too, and calls go on.
#[tokio::test]
async fn a_connection_is_replaced_after_many_cancelled_streams() {
    let (_upstream, gw, good) = warm_gateway().await;
    let before = metric(&gw, ALPHA_CONNECTS).await;
    let mut cancelled = 0;
    for _ in 0..12 {
        // A client connection of its own per batch: 100 resets stay under max_client_resets.
        let client = channel(&gw.uri()).await;
        let batch: Vec<_> = (0..100)
            .map(|_| ticks(client.clone(), "/test.Alpha/Ticks", 40))
            .collect();
        // Two ticks in: every stream is open and has its headers.
        tokio::time::sleep(Duration::from_millis(120)).await;
        for stream in batch {
            stream.abort();
            cancelled += 1;
        }
    }
    assert_eq!(cancelled, 1200);
    assert_replaced_once(&gw, before).await;
    timed_unary(&good, "/test.Alpha/Unary", "after", "test.Alpha:after").await;
    assert_alive(&gw, "/test.Alpha/Unary", "test.Alpha:alive").await;
}

// ---------------------------------------------------------------------------------------------
// 5. The queue behind `concurrency_limit` is bounded in time.
// ---------------------------------------------------------------------------------------------

/// One call holds the only slot of `test.Alpha`'s connection: others wait `queue_timeout`,
/// then get `RESOURCE_EXHAUSTED` (before: they waited for as long as the slot was held). The
/// other upstream is untouched, and the slot serves again once free.
#[tokio::test]
async fn calls_queued_behind_the_concurrency_limit_give_up_after_the_queue_timeout() {
    let upstream = Upstream::start().await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{0}\"]\nconcurrency_limit = 1\nqueue_timeout = \"200ms\"\n[upstreams.\"test.Beta\"]\nendpoints = [\"{0}\"]\n",
        upstream.uri()
    );
    let gw = start_gateway(&config, routes()).await;
    let good = channel(&gw.uri()).await;
    let stream = ticks(good.clone(), "/test.Beta/Ticks", 30);

    let holder = {
        let channel = good.clone();
        tokio::spawn(async move {
            unary(&channel, "/test.Alpha/Sleep", Request::new("1500".into())).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let results = concurrent_calls(&good, "/test.Alpha/Unary", 3).await;
    for (latency, code) in &results {
        assert_eq!(*code, Code::ResourceExhausted);
        assert!(*latency < Duration::from_secs(1), "{latency:?}");
    }
    let latency = timed_unary(&good, "/test.Beta/Unary", "free", "test.Beta:free").await;
    assert!(latency < Duration::from_millis(500), "{latency:?}");
    let held = tokio::time::timeout(LIMIT, holder)
        .await
        .expect("in time")
        .expect("task")
        .expect("the slot holder's call");
    assert_eq!(held.get_ref(), "slept");
    timed_unary(&good, "/test.Alpha/Unary", "again", "test.Alpha:again").await;
    assert_eq!(
        metric(
            &gw,
            "gateway_upstream_queue_timeouts_total{upstream=\"test.Alpha\"}"
        )
        .await,
        3.0
    );
    all_ticks(stream, 30).await;
    assert_alive(&gw, "/test.Alpha/Unary", "test.Alpha:alive").await;
}

// ---------------------------------------------------------------------------------------------
// 6. Hygiene: what goes upstream, and what clients learn of failures.
// ---------------------------------------------------------------------------------------------

/// The headers the `Headers` method saw, as `name: value` lines.
fn header_lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Sends one gRPC-Web call over HTTP/1.1; returns the gRPC status and the response message.
async fn grpc_web_call(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (String, Option<String>) {
    use http_body_util::{BodyExt, Full};
    tokio::time::timeout(LIMIT, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http/1.1 handshake");
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", "gateway.test")
            .header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(body)).expect("request"))
            .await
            .expect("response");
        let header_status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let mut message = None;
        let mut status = header_status;
        let mut data = &bytes[..];
        while data.len() >= 5 {
            let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
            let payload = &data[5..5 + len];
            if data[0] & 0x80 == 0 {
                message = Some(read_msgpack_str(payload));
            } else {
                let trailers = String::from_utf8_lossy(payload).to_string();
                status = trailers
                    .lines()
                    .find_map(|line| line.strip_prefix("grpc-status:"))
                    .map(|code| code.trim().to_owned())
                    .or(status);
            }
            data = &data[5 + len..];
        }
        (status.expect("a grpc-status"), message)
    })
    .await
    .expect("gRPC-Web call within the limit")
}

/// Forwarding claims are the gateway's own, reserved `grpc-*` headers and headers named in
/// `Connection` stay behind, a client's bad body is its own fault, and an upstream failure
/// tells the client nothing about the upstream.
#[tokio::test]
async fn forwarded_headers_are_the_gateways_own_and_failures_stay_generic() {
    let (upstream, _) = start_flood().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port");
    let config = format!(
        "[limits]\nmax_timeout = \"5s\"\n[upstreams.\"test.Flood\"]\nendpoints = [\"http://{upstream}\"]\n[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{dead}\"]\nconnect_timeout = \"200ms\"\n"
    );
    let table = flood_routes().merge(routes());
    let gw = start_gateway(&config, table).await;
    let good = channel(&gw.uri()).await;
    let stream = ticks(good.clone(), "/test.Flood/Ticks", 20);

    // gRPC over HTTP/2: forged forwarding headers, an endless deadline.
    let mut forged = Request::new("x".to_owned());
    for (name, value) in [
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-host", "evil.example"),
        ("grpc-timeout", "99999999H"),
        ("x-keep", "yes"),
    ] {
        forged
            .metadata_mut()
            .insert(name, value.parse().expect("value"));
    }
    let seen = unary(&good, "/test.Flood/Headers", forged)
        .await
        .expect("call")
        .into_inner();
    let lines = header_lines(&seen);
    for expected in [
        "x-forwarded-for: 127.0.0.1",
        "forwarded: for=127.0.0.1",
        "grpc-timeout: 5000m",
        "x-keep: yes",
    ] {
        assert!(lines.contains(&expected), "{expected:?} not in {lines:?}");
    }
    for forged in ["x-real-ip", "x-forwarded-host", "6.6.6.6"] {
        assert!(
            !seen.contains(forged),
            "{forged:?} reached the upstream: {lines:?}"
        );
    }

    // gRPC-Web over HTTP/1.1: headers named in `Connection`, reserved grpc-* headers.
    let (status, message) = grpc_web_call(
        gw.addr,
        "/test.Flood/Headers",
        "application/grpc-web+proto",
        &[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("grpc-status", "0"),
            ("grpc-message", "forged"),
            ("grpc-foo", "1"),
            ("grpc-accept-encoding", "identity"),
        ],
        grpc_frame("x"),
    )
    .await;
    assert_eq!(status, "0");
    let seen = message.expect("a reply");
    let lines = header_lines(&seen);
    assert!(
        lines.contains(&"grpc-accept-encoding: identity"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"grpc-timeout: 30000m"),
        "the default deadline: {lines:?}"
    );
    for name in [
        "x-secret",
        "grpc-status",
        "grpc-message",
        "grpc-foo",
        "connection",
    ] {
        assert!(
            !lines
                .iter()
                .any(|line| line.starts_with(&format!("{name}:"))),
            "{name} reached the upstream: {lines:?}"
        );
    }

    // A gRPC-Web-text body that is not base64: the client's fault.
    let (status, _) = grpc_web_call(
        gw.addr,
        "/test.Flood/Unary",
        "application/grpc-web-text",
        &[],
        Bytes::from_static(b"!!!!!!!!"),
    )
    .await;
    assert_eq!(status, "3", "INVALID_ARGUMENT, not UNAVAILABLE");

    // An upstream that is down: a generic message, no address.
    let err = unary(&good, "/test.Alpha/Unary", Request::new("x".into()))
        .await
        .expect_err("down");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "upstream unavailable");

    all_ticks(stream, 20).await;
    assert_alive(&gw, "/test.Flood/Unary", "flood:alive").await;
}
