//! Issue 11, the listener's side: attacks on the gateway's public port (oversized headers, slow
//! and silent clients, connection and call floods, reset storms, look-alike content types) are
//! stopped at ingress, while a well-behaved client — unary calls on one connection, a
//! long-lived bidirectional stream on another — keeps succeeding, and the gateway is alive
//! after.

mod support;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::grpc::{Upstream, channel, http_get, path, routes, two_services, unary};
use support::{LIMIT, RunningGateway, start_gateway};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_msgpack::MsgPackCodec;

type Codec = MsgPackCodec<String, String>;

/// The well-behaved client: unary calls in a loop on one connection, and a bidirectional
/// stream exchanging a message every 25 ms on another, both checked reply by reply.
struct Steady {
    stop: Arc<AtomicBool>,
    unary: Option<JoinHandle<Result<usize, String>>>,
    bidi: JoinHandle<Result<usize, String>>,
}

impl Steady {
    /// Starts both, and returns once the stream has answered its first message.
    async fn start(gw: &RunningGateway) -> Steady {
        let mut steady = Steady::stream_only(gw).await;
        let unary_channel = channel(&gw.uri()).await;
        steady.unary = Some(tokio::spawn(unary_loop(unary_channel, steady.stop.clone())));
        steady
    }

    /// Only the stream (which holds one call in flight throughout).
    async fn stream_only(gw: &RunningGateway) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let bidi_channel = channel(&gw.uri()).await;
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let bidi = tokio::spawn(bidi_loop(bidi_channel, stop.clone(), started_tx));
        tokio::time::timeout(LIMIT, started)
            .await
            .expect("the stream starts within the limit")
            .expect("the stream started");
        Steady {
            stop,
            unary: None,
            bidi,
        }
    }

    /// Stops both and asserts that every call and every message of the stream succeeded.
    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let unary = match self.unary {
            Some(unary) => tokio::time::timeout(LIMIT, unary)
                .await
                .expect("unary loop ends")
                .expect("unary task"),
            None => Ok(1),
        };
        let bidi = tokio::time::timeout(LIMIT, self.bidi)
            .await
            .expect("stream ends")
            .expect("stream task");
        let unary = unary.unwrap_or_else(|err| panic!("the well-behaved unary calls: {err}"));
        let bidi = bidi.unwrap_or_else(|err| panic!("the well-behaved stream: {err}"));
        assert!(unary > 0 && bidi > 0, "unary {unary}, stream {bidi}");
        (unary, bidi)
    }
}

async fn unary_loop(channel: Channel, stop: Arc<AtomicBool>) -> Result<usize, String> {
    let mut ok = 0;
    while !stop.load(Ordering::SeqCst) {
        let message = format!("u{ok}");
        let reply = unary(&channel, "/test.Alpha/Unary", Request::new(message.clone()))
            .await
            .map_err(|status| format!("call {ok}: {status:?}"))?;
        if reply.get_ref() != &format!("test.Alpha:{message}") {
            return Err(format!("call {ok}: wrong reply {:?}", reply.get_ref()));
        }
        ok += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(ok)
}

async fn bidi_loop(
    channel: Channel,
    stop: Arc<AtomicBool>,
    started: tokio::sync::oneshot::Sender<()>,
) -> Result<usize, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let send = |i: usize| {
        let tx = tx.clone();
        async move {
            tx.send(format!("m{i}"))
                .await
                .map_err(|_| "request stream".to_owned())
        }
    };
    send(0).await?;
    let mut client = tonic::client::Grpc::new(channel);
    let response = tokio::time::timeout(LIMIT, async {
        client
            .ready()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        client
            .streaming(
                Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
                path("/test.Alpha/Bidi"),
                Codec::default(),
            )
            .await
    })
    .await
    .map_err(|_| "stream headers timed out".to_owned())?
    .map_err(|status| format!("stream start: {status:?}"))?;
    let mut inbound = response.into_inner();
    let mut started = Some(started);
    let mut i = 0;
    loop {
        let reply = tokio::time::timeout(LIMIT, inbound.message())
            .await
            .map_err(|_| format!("message {i} timed out"))?
            .map_err(|status| format!("message {i}: {status:?}"))?
            .ok_or_else(|| format!("stream ended before message {i}"))?;
        if reply != format!("test.Alpha:M{i}") {
            return Err(format!("message {i}: wrong reply {reply:?}"));
        }
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        i += 1;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        send(i).await?;
    }
    drop(tx);
    let end = tokio::time::timeout(LIMIT, inbound.message())
        .await
        .map_err(|_| "stream end timed out".to_owned())?
        .map_err(|status| format!("stream end: {status:?}"))?;
    if end.is_some() {
        return Err("a message after the end".into());
    }
    Ok(i)
}

/// The gateway is alive: its task runs, a new client's call works, the admin port answers.
async fn assert_alive(gw: &RunningGateway) {
    assert!(
        gw.task.as_ref().is_some_and(|task| !task.is_finished()),
        "the gateway task ended"
    );
    let fresh = channel(&gw.uri()).await;
    let reply = unary(&fresh, "/test.Beta/Unary", Request::new("alive".into()))
        .await
        .expect("a new client's call");
    assert_eq!(reply.get_ref(), "test.Beta:alive");
    assert_eq!(http_get(gw.admin(), "/healthz").await.0, 200);
}

/// The value of one metric line (`name{labels} value`) on the admin port.
async fn metric(gw: &RunningGateway, series: &str) -> f64 {
    let (_, text) = http_get(gw.admin(), "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Polls `metric` until `accept` holds, up to `within`; returns the last value.
async fn metric_until(
    gw: &RunningGateway,
    series: &str,
    within: Duration,
    accept: impl Fn(f64) -> bool,
) -> f64 {
    let start = Instant::now();
    loop {
        let value = metric(gw, series).await;
        if accept(value) || start.elapsed() > within {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The upstream `test.Alpha`'s connection was never lost: every connect after the first is
/// one the pool chose, replacing a connection after a surge of open or cut-off streams (h2
/// remembers each, and never shrinks a connection's stream table).
async fn assert_no_upstream_connection_lost(gw: &RunningGateway) {
    let connects = metric(
        gw,
        "gateway_upstream_connects_total{upstream=\"test.Alpha\"}",
    )
    .await;
    let replaced = metric(
        gw,
        "gateway_upstream_connections_replaced_total{upstream=\"test.Alpha\"}",
    )
    .await;
    assert_eq!(connects, 1.0 + replaced, "no connection lost");
}

/// A gateway in front of a fresh upstream, with `limits` as the `[limits]` section.
async fn gateway(limits: &str) -> (Upstream, RunningGateway) {
    let upstream = Upstream::start().await;
    let toml = format!("[limits]\n{limits}\n{}", two_services(&upstream.uri(), ""));
    let gw = start_gateway(&toml, routes()).await;
    (upstream, gw)
}

/// One MessagePack string as a gRPC frame (short strings only).
fn grpc_frame(text: &str) -> Bytes {
    assert!(text.len() < 32, "a fixstr");
    let mut frame = vec![0, 0, 0, 0, text.len() as u8 + 1, 0xa0 | text.len() as u8];
    frame.extend_from_slice(text.as_bytes());
    Bytes::from(frame)
}

fn grpc_request(addr: SocketAddr, method: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request")
}

/// A raw HTTP/2 client on a new connection; the task ends when the connection does.
async fn h2_client<T>(
    io: T,
) -> (
    h2::client::SendRequest<Bytes>,
    JoinHandle<Result<(), h2::Error>>,
)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = tokio::time::timeout(LIMIT, h2::client::handshake(io))
        .await
        .expect("handshake within the limit")
        .expect("handshake");
    (send, tokio::spawn(connection))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(LIMIT, TcpStream::connect(addr))
        .await
        .expect("connect within the limit")
        .expect("connect")
}

/// Reads until the peer closes the connection (or resets it); returns how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn oversized_headers_are_refused_before_anything_is_forwarded() {
    let (_upstream, gw) = gateway("max_header_list_bytes = 16384").await;
    let steady = Steady::start(&gw).await;
    let attacker = channel(&gw.uri()).await;
    // gRPC over HTTP/2: 20 KiB, 64 KiB and 200 KiB headers: RESOURCE_EXHAUSTED, not forwarded.
    for size in [20 << 10, 64 << 10, 200 << 10] {
        let mut request = Request::new("big".to_owned());
        let value = "v".repeat(size).parse().expect("ascii value");
        request.metadata_mut().insert("x-big", value);
        let status = unary(&attacker, "/test.Beta/Unary", request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
        assert!(status.message().contains("16384"), "{status:?}");
    }
    // Far over hyper's own cap (4 × the limit, at least 256 KiB): the HTTP/2 layer refuses it,
    // on the attacker's connection only.
    let mut request = Request::new("huge".to_owned());
    let value = "v".repeat(1 << 20).parse().expect("ascii value");
    request.metadata_mut().insert("x-huge", value);
    let huge = channel(&gw.uri()).await;
    let status = unary(&huge, "/test.Beta/Unary", request)
        .await
        .expect_err("refused");
    assert_ne!(status.code(), Code::Ok);
    // Under the limit: served.
    let mut request = Request::new("fine".to_owned());
    let value = "v".repeat(8 << 10).parse().expect("ascii value");
    request.metadata_mut().insert("x-fine", value);
    unary(&attacker, "/test.Beta/Unary", request)
        .await
        .expect("8 KiB of headers are fine");

    // REST and the HTTP router over HTTP/1.1: 431 with a JSON error; gRPC-Web:
    // RESOURCE_EXHAUSTED in the headers. Past hyper's cap of an HTTP/1.1 head (the limit +
    // rest.max_query_bytes + 8 KiB: 32 KiB), hyper's own 431, the head not read to its end.
    let big = "v".repeat(20 << 10);
    let huge = "v".repeat(64 << 10);
    for (value, json) in [(&big, true), (&huge, false)] {
        let response = support::rest::send(
            gw.addr,
            "POST",
            "/test.Beta/Unary",
            &[("content-type", "application/json"), ("x-big", value)],
            "{}",
        )
        .await;
        assert_eq!(response.status(), 431);
        let body = support::rest::body_bytes(response).await;
        if json {
            let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(body["code"], 8, "{body}");
        }
    }
    let response = support::rest::send(
        gw.addr,
        "POST",
        "/test.Beta/Unary",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-big", &big),
        ],
        support::rest::frame(0, b"\xa3web"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "8");

    // Only the 8 KiB call reached the upstream, and the refusals are counted.
    assert_eq!(
        metric(&gw, "gateway_calls_total{route=\"/test.Beta/Unary\"}").await,
        1.0
    );
    assert_eq!(metric(&gw, "gateway_oversized_headers_total").await, 5.0);
    steady.finish().await;
    assert_alive(&gw).await;
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed_within_the_timeouts() {
    let (_upstream, gw) = gateway(
        "sniff_timeout = \"300ms\"\nheader_read_timeout = \"500ms\"\nidle_timeout = \"1s\"\nkeepalive_interval = \"300ms\"\nkeepalive_timeout = \"500ms\"",
    )
    .await;
    let steady = Steady::start(&gw).await;
    let limit = Duration::from_secs(4);

    // Silent: connects and sends nothing.
    let silent: Vec<_> = futures_util::future::join_all((0..20).map(|_| connect(gw.addr))).await;
    // Slow preface: HTTP/2's preface a byte at a time.
    let slow_preface = tokio::spawn(trickle(
        gw.addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        limit,
    ));
    // Slowloris over HTTP/1.1: a request head a byte at a time.
    let slow_head = tokio::spawn(trickle(
        gw.addr,
        b"GET /test.Alpha/Unary HTTP/1.1\r\nhost: gw\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".to_vec(),
        limit,
    ));
    // HTTP/2 that sends its preface and settings, then a header block a byte at a time.
    let mut slow_h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    slow_h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let slow_h2_prefix = slow_h2.len();
    slow_h2.extend_from_slice(&[0, 0, 40, 1, 4, 0, 0, 0, 1]);
    slow_h2.extend(std::iter::repeat_n(0x82, 40));
    let slow_h2 = tokio::spawn(trickle_after(gw.addr, slow_h2, slow_h2_prefix, limit));

    for (index, mut stream) in silent.into_iter().enumerate() {
        let took = closed_within(&mut stream, limit)
            .await
            .unwrap_or_else(|| panic!("silent connection {index} still open after {limit:?}"));
        assert!(took < Duration::from_secs(2), "silent {index}: {took:?}");
    }
    for (what, task) in [
        ("slow preface", slow_preface),
        ("slow HTTP/1.1 head", slow_head),
        ("slow HTTP/2 headers", slow_h2),
    ] {
        let took = task
            .await
            .expect("task")
            .unwrap_or_else(|| panic!("{what}: still open"));
        assert!(
            took < Duration::from_secs(3),
            "{what}: closed after {took:?}"
        );
    }
    assert!(
        metric(
            &gw,
            "gateway_client_connections_closed_total{reason=\"sniff_timeout\"}"
        )
        .await
            >= 21.0
    );

    // An HTTP/1.1 keep-alive connection after its request: closed too.
    let mut keep_alive = connect(gw.addr).await;
    keep_alive
        .write_all(b"GET /nothing HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .expect("write");
    let took = closed_within(&mut keep_alive, limit).await.expect("closed");
    assert!(took < Duration::from_secs(2), "keep-alive: {took:?}");

    // An HTTP/2 client that answers pings but makes no call after its first: a GOAWAY after
    // the idle timeout, and the connection ends.
    let (client, connection) = h2_client(connect(gw.addr).await).await;
    let mut client = tokio::time::timeout(LIMIT, client.ready())
        .await
        .expect("ready")
        .expect("ready");
    let (response, mut body) = client
        .send_request(grpc_request(gw.addr, "/test.Alpha/Unary"), false)
        .expect("send");
    body.send_data(grpc_frame("idle"), true).expect("data");
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("headers")
        .expect("response");
    assert_eq!(response.status(), 200);
    let start = Instant::now();
    tokio::time::timeout(limit, connection)
        .await
        .expect("the idle connection ends")
        .expect("task")
        .expect("a graceful end");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "idle: {took:?}"
    );
    assert_eq!(
        metric(
            &gw,
            "gateway_client_connections_closed_total{reason=\"idle_timeout\"}"
        )
        .await,
        1.0
    );

    // An HTTP/2 client that stops answering with a stream open: keepalive PINGs go
    // unanswered and the connection closes (the idle timeout does not apply: a call is open).
    let open_before = metric(&gw, "gateway_client_connections").await;
    let frozen = Arc::new(AtomicBool::new(false));
    let io = Freezable {
        io: connect(gw.addr).await,
        frozen: frozen.clone(),
    };
    let (client, _connection) = h2_client(io).await;
    let mut client = tokio::time::timeout(LIMIT, client.ready())
        .await
        .expect("ready")
        .expect("ready");
    let (response, mut body) = client
        .send_request(grpc_request(gw.addr, "/test.Alpha/Ticks"), false)
        .expect("send");
    body.send_data(grpc_frame("1000"), true).expect("data");
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("headers")
        .expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(
        metric(&gw, "gateway_client_connections").await,
        open_before + 1.0
    );
    frozen.store(true, Ordering::SeqCst);
    let open = metric_until(
        &gw,
        "gateway_client_connections",
        Duration::from_secs(5),
        |open| open <= open_before,
    )
    .await;
    assert_eq!(
        open, open_before,
        "the frozen client's connection is closed"
    );

    steady.finish().await;
    assert_alive(&gw).await;
}

/// Sends `bytes` one every 100 ms; returns how long until the gateway closed the connection.
async fn trickle(addr: SocketAddr, bytes: Vec<u8>, limit: Duration) -> Option<Duration> {
    trickle_after(addr, bytes, 0, limit).await
}

/// Sends `bytes[..at]` at once, then the rest one every 100 ms; returns how long (from the
/// start) until the gateway closed the connection.
async fn trickle_after(
    addr: SocketAddr,
    bytes: Vec<u8>,
    at: usize,
    limit: Duration,
) -> Option<Duration> {
    let stream = connect(addr).await;
    let start = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&bytes[..at]).await;
        for byte in &bytes[at..] {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Then nothing more, but keep the socket open.
        tokio::time::sleep(limit).await;
    });
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout_at((start + limit).into(), read.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0) | Err(_)) => break Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    };
    writer.abort();
    closed
}

/// A socket that stops reading and writing when told: a client that has gone silent
/// without closing its connection.
struct Freezable {
    io: TcpStream,
    frozen: Arc<AtomicBool>,
}

impl AsyncRead for Freezable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Freezable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Opens a long server stream (`Ticks`, 1000 × 50 ms) on a raw HTTP/2 client and waits for
/// its response headers; returns them with the stream, to be reset by dropping or
/// `send_reset`.
async fn open_ticks(
    client: &mut h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
) -> (http::Response<h2::RecvStream>, h2::SendStream<Bytes>) {
    let mut ready = tokio::time::timeout(LIMIT, client.clone().ready())
        .await
        .expect("ready within the limit")
        .expect("ready");
    let (response, mut body) = ready
        .send_request(grpc_request(addr, "/test.Alpha/Ticks"), false)
        .expect("send");
    body.send_data(grpc_frame("1000"), true).expect("data");
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("headers within the limit")
        .expect("response");
    (response, body)
}

#[tokio::test]
async fn excess_connections_are_closed_at_once() {
    let (_upstream, gw) = gateway("max_connections = 12\nmax_concurrent_streams = 7").await;
    let steady = Steady::start(&gw).await;
    assert_eq!(metric(&gw, "gateway_client_connections").await, 2.0);

    // The SETTINGS a client sees.
    let (client, _connection) = h2_client(connect(gw.addr).await).await;
    let mut client = open_ticks(&mut client.clone(), gw.addr).await.1;
    client.send_reset(h2::Reason::CANCEL);
    drop(client);

    // Nine more make twelve: every one after is closed as soon as it is accepted.
    let mut holders = Vec::new();
    for _ in 0..9 {
        holders.push(connect(gw.addr).await);
    }
    let open = metric_until(&gw, "gateway_client_connections", LIMIT, |open| {
        open >= 12.0
    })
    .await;
    assert_eq!(open, 12.0);
    for _ in 0..5 {
        let mut excess = connect(gw.addr).await;
        let took = closed_within(&mut excess, Duration::from_secs(2))
            .await
            .expect("an excess connection is closed");
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    assert_eq!(
        metric(&gw, "gateway_client_connections_rejected_total").await,
        5.0
    );
    // The admin port has connections of its own.
    assert_eq!(http_get(gw.admin(), "/healthz").await.0, 200);
    drop(holders);
    metric_until(&gw, "gateway_client_connections", LIMIT, |open| open <= 3.0).await;
    steady.finish().await;
    assert_alive(&gw).await;
}

#[tokio::test]
async fn streams_per_connection_are_announced_in_settings() {
    let (_upstream, gw) = gateway("max_concurrent_streams = 7").await;
    let (client, _connection) = h2_client(connect(gw.addr).await).await;
    let mut ready = client.clone();
    let (_response, mut body) = open_ticks(&mut ready, gw.addr).await;
    assert_eq!(client.current_max_send_streams(), 7);
    body.send_reset(h2::Reason::CANCEL);
}

#[tokio::test]
async fn calls_over_the_in_flight_limit_are_shed_at_once() {
    let (_upstream, gw) = gateway("max_in_flight = 6").await;
    // The stream holds one of the six throughout.
    let steady = Steady::stream_only(&gw).await;
    let (mut attacker, _connection) = h2_client(connect(gw.addr).await).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(open_ticks(&mut attacker, gw.addr).await);
    }
    assert_eq!(metric(&gw, "gateway_in_flight_calls").await, 6.0);
    // The next call of any kind is answered at once.
    let (response, _body) = open_ticks(&mut attacker, gw.addr).await;
    assert_eq!(response.headers()["grpc-status"], "8");
    let probe = channel(&gw.uri()).await;
    let start = Instant::now();
    let status = unary(&probe, "/test.Beta/Unary", Request::new("x".into()))
        .await
        .expect_err("shed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
    let response = support::rest::send(
        gw.addr,
        "POST",
        "/test.Beta/Unary",
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let response = support::rest::send(
        gw.addr,
        "POST",
        "/test.Beta/Unary",
        &[("content-type", "application/grpc-web+proto")],
        support::rest::frame(0, b"\xa3web"),
    )
    .await;
    assert_eq!(response.headers()["grpc-status"], "8");
    assert_eq!(metric(&gw, "gateway_calls_shed_total").await, 4.0);

    // A call counts until its response ends: reading a held stream to its end, or cancelling
    // it, gives its place back.
    for (_, mut body) in held.drain(..) {
        body.send_reset(h2::Reason::CANCEL);
    }
    let in_flight = metric_until(&gw, "gateway_in_flight_calls", LIMIT, |calls| calls <= 1.0).await;
    assert_eq!(in_flight, 1.0);
    let replies = support::grpc::server_streaming(
        &probe,
        "/test.Beta/ServerStream",
        Request::new("s".into()),
    )
    .await
    .expect("room again");
    assert_eq!(replies.len(), 5);
    assert_eq!(metric(&gw, "gateway_in_flight_calls").await, 1.0);
    steady.finish().await;
    assert_alive(&gw).await;
}

#[tokio::test]
async fn a_client_spreading_streams_over_connections_leaves_the_reserve_to_others() {
    let (_upstream, gw) = gateway("max_in_flight = 40\nreserved_in_flight = 8").await;
    // The attacker comes from its own loopback address and opens five streams per connection,
    // so each new connection of its starts out with few calls.
    let mut attacker = Vec::new();
    let (mut held, mut refused) = (Vec::new(), 0);
    for _ in 0..10 {
        let (mut client, connection) = h2_client(connect_from_attacker(gw.addr).await).await;
        for _ in 0..5 {
            let (response, body) = open_ticks(&mut client, gw.addr).await;
            match response.headers().get("grpc-status") {
                Some(status) => {
                    assert_eq!(status, "8", "refused as RESOURCE_EXHAUSTED");
                    refused += 1;
                }
                None => held.push((response, body)),
            }
        }
        attacker.push((client, connection));
    }
    assert_eq!(
        held.len(),
        32,
        "light until 32 calls, then kept out of the reserve"
    );
    assert_eq!(refused, 18);
    assert_eq!(metric(&gw, "gateway_in_flight_calls").await, 32.0);

    // Another client (127.0.0.1) gets the eight reserved places.
    let probe = channel(&gw.uri()).await;
    let mut streams = Vec::new();
    for _ in 0..8 {
        let mut grpc = tonic::client::Grpc::new(probe.clone());
        grpc.ready().await.expect("ready");
        let stream = tokio::time::timeout(
            LIMIT,
            grpc.server_streaming(
                Request::new("1000".to_owned()),
                path("/test.Alpha/Ticks"),
                Codec::default(),
            ),
        )
        .await
        .expect("within the limit")
        .expect("admitted from the reserve");
        streams.push(stream);
    }
    assert_eq!(metric(&gw, "gateway_in_flight_calls").await, 40.0);
    let status = unary(&probe, "/test.Beta/Unary", Request::new("x".into()))
        .await
        .expect_err("max_in_flight still holds");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    for (_, mut body) in held {
        body.send_reset(h2::Reason::CANCEL);
    }
    drop((streams, attacker));
    assert_alive(&gw).await;
}

#[tokio::test]
async fn look_alike_content_types_are_not_grpc() {
    let (_upstream, gw) = gateway("").await;
    let response = support::rest::send(
        gw.addr,
        "POST",
        "/test.Alpha/Unary",
        &[("content-type", "application/grpcX")],
        support::rest::frame(0, b"\xa1x"),
    )
    .await;
    // Not passed through: answered as REST, which this route cannot serve (no transcoder).
    assert!(response.headers().get("grpc-status").is_none());
    assert_eq!(response.status(), 501);
    // The real thing, over HTTP/1.1 too, is gRPC.
    let (client, _connection) = h2_client(connect(gw.addr).await).await;
    let mut ready = tokio::time::timeout(LIMIT, client.ready())
        .await
        .expect("ready")
        .expect("ready");
    let mut request = grpc_request(gw.addr, "/test.Alpha/Unary");
    request.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc+msgpack"),
    );
    let (response, mut body) = ready.send_request(request, false).expect("send");
    body.send_data(grpc_frame("x"), true).expect("data");
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("headers")
        .expect("response");
    let mut body = response.into_body();
    while tokio::time::timeout(LIMIT, body.data())
        .await
        .expect("data")
        .is_some()
    {}
    let trailers = tokio::time::timeout(LIMIT, body.trailers())
        .await
        .expect("trailers")
        .expect("trailers")
        .expect("some trailers");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn admin_endpoints_answer_on_their_own_port_only() {
    let (_upstream, gw) = gateway("").await;
    for path in ["/healthz", "/readyz", "/metrics", "/routes"] {
        assert_eq!(http_get(gw.admin(), path).await.0, 200, "{path}");
        assert_eq!(
            http_get(gw.addr, path).await.0,
            404,
            "{path} on the public port"
        );
    }
    drop(gw);

    // Probes for a load balancer on the public port.
    let upstream = Upstream::start().await;
    let toml = format!(
        "public_admin = [\"/healthz\", \"/readyz\"]\n{}",
        two_services(&upstream.uri(), "")
    );
    let gw = start_gateway(&toml, routes()).await;
    assert_eq!(http_get(gw.addr, "/healthz").await.0, 200);
    assert_eq!(http_get(gw.addr, "/readyz").await.0, 200);
    assert_eq!(http_get(gw.addr, "/metrics").await.0, 404);
    assert_eq!(http_get(gw.addr, "/routes").await.0, 404);
    assert_eq!(http_get(gw.admin(), "/routes").await.0, 200);

    // An admin address that cannot be bound is a startup error naming the key.
    let taken = gw.admin();
    let mut config = tonic_msgpack_gateway::Config::from_toml(&two_services(&upstream.uri(), ""))
        .expect("config");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin_listen = Some(taken);
    let gateway = tonic_msgpack_gateway::Gateway::builder()
        .config(config)
        .routes(routes())
        .build()
        .await
        .expect("builds");
    let err = gateway.bind().await.expect_err("admin port taken");
    assert!(err.to_string().contains("admin_listen"), "{err}");
    assert!(err.to_string().contains(&taken.to_string()), "{err}");
}

#[tokio::test]
async fn a_client_cancelling_too_many_calls_is_disconnected() {
    let (_upstream, gw) = gateway("max_client_resets = 5\nreset_window = \"10s\"").await;
    let steady = Steady::start(&gw).await;
    // Calls that end normally never count, whatever their kind: twenty HTTP/1.1 requests
    // (REST, gRPC-Web, the router) on one connection.
    let stream = connect(gw.addr).await;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http/1.1 handshake");
    let http1 = tokio::spawn(connection);
    for i in 0..20 {
        let (content_type, body) = match i % 3 {
            0 => ("application/json", Bytes::from_static(b"{}")),
            1 => (
                "application/grpc-web+proto",
                Bytes::from(support::rest::frame(0, b"\xa3web")),
            ),
            _ => ("text/plain", Bytes::new()),
        };
        let request = http::Request::builder()
            .method("POST")
            .uri(if i % 3 == 2 {
                "/nothing"
            } else {
                "/test.Beta/Unary"
            })
            .header("host", "gw.test")
            .header("content-type", content_type)
            .body(http_body_util::Full::new(body))
            .expect("request");
        let response = tokio::time::timeout(LIMIT, sender.send_request(request))
            .await
            .expect("answer within the limit")
            .expect("answer");
        let body = tokio::time::timeout(
            LIMIT,
            http_body_util::BodyExt::collect(response.into_body()),
        )
        .await
        .expect("body within the limit")
        .expect("body");
        drop(body);
    }
    assert!(!http1.is_finished(), "the HTTP/1.1 connection stays open");
    let (mut client, connection) = h2_client(connect(gw.addr).await).await;
    // Each call reaches the upstream (its response headers came back) before it is cancelled.
    for _ in 0..5 {
        let (_response, mut body) = open_ticks(&mut client, gw.addr).await;
        body.send_reset(h2::Reason::CANCEL);
    }
    assert!(!connection.is_finished(), "five cancellations are allowed");
    let (_response, mut body) = open_ticks(&mut client, gw.addr).await;
    body.send_reset(h2::Reason::CANCEL);
    // The sixth: a GOAWAY, and the connection ends; its client sees a clean close.
    let ended = tokio::time::timeout(LIMIT, connection)
        .await
        .expect("the connection is closed")
        .expect("task");
    assert!(ended.is_ok(), "a graceful GOAWAY: {ended:?}");
    assert_eq!(
        metric(
            &gw,
            "gateway_client_connections_closed_total{reason=\"client_resets\"}"
        )
        .await,
        1.0
    );
    // Other clients, and a new connection of the same client, are not affected.
    let (mut again, _connection) = h2_client(connect(gw.addr).await).await;
    let (response, mut body) = open_ticks(&mut again, gw.addr).await;
    assert_eq!(response.status(), 200);
    body.send_reset(h2::Reason::CANCEL);
    steady.finish().await;
    assert_alive(&gw).await;
}

/// Runs `attack` on four tasks, each given the same deadline two seconds from now, and returns
/// what each reports.
async fn four_attackers<T, Attack>(attack: impl Fn(Instant) -> Attack) -> Vec<T>
where
    Attack: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    let attackers: Vec<_> = (0..4).map(|_| tokio::spawn(attack(deadline))).collect();
    let mut reports = Vec::new();
    for attacker in attackers {
        let report = tokio::time::timeout(LIMIT, attacker)
            .await
            .expect("the attack ends")
            .expect("attacker");
        reports.push(report);
    }
    reports
}

/// Finding 3's storm: raw HTTP/2 clients open long server streams in batches of 64 and reset
/// each batch a millisecond later, reconnecting whenever the gateway closes them, for two
/// seconds. Before, the upstream closed the shared connection (GOAWAY `too_many_resets`)
/// many times a second and the well-behaved client's calls failed with UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_storm_never_reaches_the_shared_upstream_connection() {
    // The attackers share the well-behaved client's address: what is under test here is each
    // connection's limit, without the address's (which would keep them out after a moment).
    let (_upstream, gw) = gateway("max_address_resets = 0").await;
    let steady = Steady::start(&gw).await;
    let addr = gw.addr;
    let reports = four_attackers(move |deadline| async move {
        let (mut connections, mut closed_by_gateway, mut resets) = (0, 0, 0);
        while Instant::now() < deadline {
            let (client, connection) = h2_client(connect(addr).await).await;
            connections += 1;
            'connection: while Instant::now() < deadline && !connection.is_finished() {
                let mut batch = Vec::new();
                for _ in 0..64 {
                    let ready =
                        tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await;
                    let Ok(Ok(mut ready)) = ready else {
                        break 'connection;
                    };
                    let Ok((response, mut body)) =
                        ready.send_request(grpc_request(addr, "/test.Alpha/Ticks"), false)
                    else {
                        break 'connection;
                    };
                    let _ = body.send_data(grpc_frame("1000"), true);
                    batch.push((response, body));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                resets += batch.len();
                for (_response, mut body) in batch {
                    body.send_reset(h2::Reason::CANCEL);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if let Ok(Ok(Err(err))) = tokio::time::timeout(Duration::from_secs(2), connection).await
                && err.is_go_away()
                && err.is_remote()
            {
                closed_by_gateway += 1;
            }
        }
        (connections, closed_by_gateway, resets)
    })
    .await;
    let (mut connections, mut closed_by_gateway, mut resets) = (0, 0, 0);
    for (c, g, r) in reports {
        connections += c;
        closed_by_gateway += g;
        resets += r;
    }
    println!(
        "reset storm: {resets} streams opened and reset on {connections} connections, {closed_by_gateway} closed by the gateway with GOAWAY"
    );
    assert!(resets > 1000, "a storm: {resets} resets");
    assert!(
        closed_by_gateway > 0,
        "the gateway closed storming connections"
    );
    // The well-behaved client's calls and stream all succeeded, and the shared upstream
    // connection was never lost.
    steady.finish().await;
    assert_no_upstream_connection_lost(&gw).await;
    assert_alive(&gw).await;
}

/// Clients that vanish mid-request: raw HTTP/2 connections each send the headers of 32 unary
/// calls without their message and 32 client streams with one message and no end, then close,
/// for two seconds. hyper resets an upstream stream as soon as its request body fails, and the
/// upstream's HTTP/2 server closed the shared connection (GOAWAY `too_many_resets`) once more
/// than 20 streams were reset before it had accepted them: found at the end of every h2load
/// run (about 60 half-sent requests among 500 in flight took the connection down about one run
/// in ten). The gateway now holds such a reset back until the upstream answered (at most
/// `min(cancel_linger, 100 ms)`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_vanishing_mid_request_never_reach_the_shared_upstream_connection() {
    // As for the reset storm: what happens to the calls, not the address's limit.
    let (_upstream, gw) = gateway("max_address_resets = 0").await;
    let steady = Steady::start(&gw).await;
    let addr = gw.addr;
    let reports = four_attackers(move |deadline| async move {
        let mut half_sent = 0;
        while Instant::now() < deadline {
            let (client, connection) = h2_client(connect(addr).await).await;
            let mut open = Vec::new();
            for i in 0..64 {
                let ready =
                    tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await;
                let Ok(Ok(mut ready)) = ready else {
                    break;
                };
                // Unary calls: the headers go out, the message never does. Client streams:
                // one message, never the end.
                let method = ["/test.Alpha/Unary", "/test.Alpha/ClientStream"][i % 2];
                let Ok((response, mut body)) =
                    ready.send_request(grpc_request(addr, method), false)
                else {
                    break;
                };
                if i % 2 == 1 {
                    let _ = body.send_data(grpc_frame("x"), false);
                }
                open.push((response, body));
            }
            half_sent += open.len();
            // Let the headers reach the gateway, then close the connection.
            tokio::time::sleep(Duration::from_millis(5)).await;
            connection.abort();
            drop((client, open));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        half_sent
    })
    .await;
    let half_sent: usize = reports.into_iter().sum();
    println!("{half_sent} half-sent calls on connections that closed");
    assert!(half_sent > 1000, "an attack: {half_sent} half-sent calls");
    // The well-behaved client's calls and stream all succeeded, and the shared upstream
    // connection was never lost.
    steady.finish().await;
    assert_no_upstream_connection_lost(&gw).await;
    let replaced = metric(
        &gw,
        "gateway_upstream_connections_replaced_total{upstream=\"test.Alpha\"}",
    )
    .await;
    // The calls' upstream streams ended unanswered, and h2 keeps its stream table at its peak:
    // the pool replaced the connection after 1,024 of them, rather than keep that memory.
    assert!(
        replaced >= 1.0,
        "{half_sent} streams cut off: the connection was replaced ({replaced})"
    );
    assert_alive(&gw).await;
}

/// An address that goes on cancelling calls over new connections (a storm that reconnects
/// whenever the gateway closes it, clients vanishing mid-call over many connections, none of
/// which reaches `max_client_resets`) has its new connections closed at once; its connection
/// opened before goes on, and so do other addresses' calls, old connections and new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_cancelling_too_many_calls_is_refused_new_connections() {
    let (_upstream, gw) =
        gateway("max_client_resets = 10\nmax_address_resets = 30\nreset_window = \"60s\"").await;
    let steady = Steady::start(&gw).await;
    let (mut held, _held_connection) = attacker_client(gw.addr).await;
    // Four connections from 127.0.0.2 cancelling ten calls each: no connection is over its
    // limit, the address is.
    for _ in 0..4 {
        let (mut client, connection) = attacker_client(gw.addr).await;
        for _ in 0..10 {
            let (_response, mut body) = open_ticks(&mut client, gw.addr).await;
            body.send_reset(h2::Reason::CANCEL);
        }
        drop(client);
        connection.abort();
    }
    let penalties = metric_until(&gw, "gateway_client_address_penalties_total", LIMIT, |n| {
        n >= 1.0
    })
    .await;
    assert_eq!(penalties, 1.0);
    // A new connection from it is closed before anything is read from it.
    let mut refused = connect_from_attacker(gw.addr).await;
    assert!(
        closed_within(&mut refused, Duration::from_secs(2))
            .await
            .is_some(),
        "a new connection of the address is closed at once"
    );
    assert_eq!(
        metric(&gw, "gateway_client_connections_penalized_total").await,
        1.0
    );
    // Its connection from before the storm, and a new one from another address, still work.
    let (response, mut body) = open_ticks(&mut held, gw.addr).await;
    assert_eq!(response.status(), 200);
    body.send_reset(h2::Reason::CANCEL);
    let (mut other, _other_connection) = h2_client(connect(gw.addr).await).await;
    let (response, mut body) = open_ticks(&mut other, gw.addr).await;
    assert_eq!(response.status(), 200);
    body.send_reset(h2::Reason::CANCEL);
    steady.finish().await;
    assert_alive(&gw).await;
}

/// The configuration sample in the crate docs parses, and its `[limits]` are the defaults.
#[test]
fn the_documented_limits_are_the_defaults() {
    let docs = include_str!("../src/docs/gateway.md");
    let (_, configuration) = docs
        .split_once("\n# Configuration\n")
        .expect("a Configuration section");
    let sample = configuration
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(sample, _)| sample)
        .expect("a TOML sample");
    let config = tonic_msgpack_gateway::Config::from_toml(sample).expect("the sample parses");
    assert_eq!(config.limits, tonic_msgpack_gateway::Limits::default());
    assert_eq!(
        config.admin_listen,
        Some("127.0.0.1:9901".parse().expect("addr"))
    );
}

/// A raw HTTP/2 call's `grpc-status` (from its trailers), its body read to the end.
async fn grpc_status_of(response: h2::client::ResponseFuture) -> Option<String> {
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("answered within the limit")
        .expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let data = data.expect("data");
        let _ = body.flow_control().release_capacity(data.len());
    }
    let trailers = body.trailers().await.expect("trailers")?;
    let status = trailers.get("grpc-status")?.to_str().ok()?;
    Some(status.to_owned())
}

/// A TCP connection from the attacker's own loopback address, 127.0.0.2.
async fn connect_from_attacker(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    tokio::time::timeout(LIMIT, socket.connect(addr))
        .await
        .expect("connect within the limit")
        .expect("connect")
}

/// An HTTP/2 client on a connection from the attacker's own loopback address, 127.0.0.2,
/// with room for many small responses at once (h2 ends a connection with more small DATA frames
/// buffered than a share of its window).
async fn attacker_client(
    addr: SocketAddr,
) -> (
    h2::client::SendRequest<Bytes>,
    JoinHandle<Result<(), h2::Error>>,
) {
    let stream = connect_from_attacker(addr).await;
    let (send, connection) = tokio::time::timeout(
        LIMIT,
        h2::client::Builder::new()
            .initial_connection_window_size(16 << 20)
            .handshake(stream),
    )
    .await
    .expect("handshake within the limit")
    .expect("handshake");
    (send, tokio::spawn(connection))
}

/// 200 unary calls opened at once on one new connection from 127.0.0.2, tagged `tag`; every
/// one must succeed. Returns how many did.
async fn flood_from_attacker(addr: SocketAddr, tag: usize) -> usize {
    let (client, driver) = attacker_client(addr).await;
    let mut calls = Vec::new();
    for i in 0..200 {
        let mut ready = tokio::time::timeout(LIMIT, client.clone().ready())
            .await
            .expect("ready within the limit")
            .expect("ready");
        let (response, mut body) = ready
            .send_request(grpc_request(addr, "/test.Beta/Unary"), false)
            .expect("send");
        body.send_data(grpc_frame(&format!("c{tag}-{i}")), true)
            .expect("message");
        calls.push(response);
    }
    // Every response read as it comes (h2 ends a connection whose client leaves many small
    // DATA frames unread).
    let mut reading = tokio::task::JoinSet::new();
    for response in calls {
        reading.spawn(grpc_status_of(response));
    }
    let mut ok = 0;
    while let Some(status) = reading.join_next().await {
        assert_eq!(
            status.expect("reader").as_deref(),
            Some("0"),
            "every call of the flooding client succeeds"
        );
        ok += 1;
    }
    driver.abort();
    ok
}

/// `busy_lag`: a client that opens 800 calls at once from its own address, while another
/// client is connected, makes the gateway busy and is throttled: its calls wait and are let go
/// in between the other client's. Nothing of either client is refused or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_a_busy_gateway_is_throttled_and_loses_nothing() {
    let (_upstream, gw) = gateway("").await;
    let steady = Steady::start(&gw).await;
    let attackers: Vec<_> = (0..4)
        .map(|tag| tokio::spawn(flood_from_attacker(gw.addr, tag)))
        .collect();
    for attacker in attackers {
        let ok = tokio::time::timeout(LIMIT, attacker)
            .await
            .expect("the attacker's calls end")
            .expect("attacker");
        assert_eq!(ok, 200);
    }
    let throttles = metric(&gw, "gateway_client_throttles_total").await;
    assert!(throttles >= 1.0, "the flood was throttled: {throttles}");
    assert!(metric(&gw, "gateway_busy_windows_total").await >= 1.0);
    // Once nothing of it waits and the gateway is idle again, the throttle ends.
    let throttled = metric_until(&gw, "gateway_throttled_clients", LIMIT, |n| n == 0.0).await;
    assert_eq!(throttled, 0.0);
    steady.finish().await;
    assert_alive(&gw).await;
}

/// `busy_lag`, for connections: a client opening 300 connections at once from its own
/// address, while another client is connected, makes the gateway late to start them and is
/// throttled before their handshakes; each still gets its HTTP/2 handshake, in between the other
/// client's calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_opening_connections_in_a_burst_is_throttled_and_served() {
    let (_upstream, gw) = gateway("").await;
    let steady = Steady::start(&gw).await;
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let addr = gw.addr;
        opening.spawn(async move {
            let mut stream = connect_from_attacker(addr).await;
            stream
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                .await
                .expect("preface");
            // The gateway's SETTINGS: a frame header of type 4 on stream 0.
            let mut head = [0u8; 9];
            tokio::time::timeout(LIMIT, stream.read_exact(&mut head))
                .await
                .expect("the gateway's SETTINGS within the limit")
                .expect("read");
            assert_eq!(head[3], 4, "a SETTINGS frame first: {head:?}");
            stream
        });
    }
    // Every connection served: they are held until the end.
    let mut held = Vec::new();
    while let Some(client) = opening.join_next().await {
        held.push(client.expect("connection"));
    }
    assert_eq!(held.len(), 300);
    let throttles = metric(&gw, "gateway_client_throttles_total").await;
    assert!(throttles >= 1.0, "the burst was throttled: {throttles}");
    drop(held);
    let throttled = metric_until(&gw, "gateway_throttled_clients", LIMIT, |n| n == 0.0).await;
    assert_eq!(throttled, 0.0);
    steady.finish().await;
    assert_alive(&gw).await;
}

/// The same flood with `busy_lag = "0s"`: nobody is throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_lag_zero_turns_throttling_off() {
    let (_upstream, gw) = gateway("busy_lag = \"0s\"").await;
    let steady = Steady::start(&gw).await;
    assert_eq!(flood_from_attacker(gw.addr, 0).await, 200);
    assert_eq!(metric(&gw, "gateway_client_throttles_total").await, 0.0);
    assert_eq!(metric(&gw, "gateway_busy_windows_total").await, 0.0);
    steady.finish().await;
    assert_alive(&gw).await;
}
