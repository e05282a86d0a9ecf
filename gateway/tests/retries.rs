//! Calls the upstream provably did not process go again: an endpoint that goes away or sends
//! GOAWAY(0) mid-load fails no call while another is healthy; calls wait for the only
//! upstream's restart within their deadline; a streaming call that sent a message is not sent
//! again; the retry budget caps the retries.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tonic::{Code, Request};

use support::grpc::*;
use support::scale::*;

/// When the raw HTTP/2 server below answers a stream with GOAWAY(last stream 0).
#[derive(Clone, Copy, PartialEq)]
enum GoAwayOn {
    /// At the stream's HEADERS.
    Headers,
    /// At its first DATA frame: a message went out.
    Data,
}

/// A minimal HTTP/2 server that takes no stream: it answers the connection preface with its
/// SETTINGS, then refuses every stream with GOAWAY(0, NO_ERROR) (the stream provably not
/// processed), and closes. Counts the streams (HEADERS frames) it saw.
struct GoAwayServer {
    addr: SocketAddr,
    streams: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl GoAwayServer {
    async fn start(on: GoAwayOn) -> GoAwayServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let streams = Arc::new(AtomicUsize::new(0));
        let counted = streams.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(refuse(socket, on, counted.clone()));
            }
        });
        GoAwayServer {
            addr,
            streams,
            task,
        }
    }

    fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
}

impl Drop for GoAwayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One frame header: payload length, type, flags, stream id.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

async fn refuse(mut socket: TcpStream, on: GoAwayOn, streams: Arc<AtomicUsize>) {
    const SETTINGS: u8 = 4;
    const GOAWAY: u8 = 7;
    let mut preface = [0u8; 24];
    if socket.read_exact(&mut preface).await.is_err() {
        return;
    }
    let _ = socket.write_all(&frame(SETTINGS, 0, 0, &[])).await;
    loop {
        let mut header = [0u8; 9];
        if socket.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        if socket.read_exact(&mut payload).await.is_err() {
            return;
        }
        let (kind, flags) = (header[3], header[4]);
        let refuse = match kind {
            0 => on == GoAwayOn::Data,
            1 => {
                streams.fetch_add(1, Ordering::SeqCst);
                on == GoAwayOn::Headers
            }
            SETTINGS if flags & 1 == 0 => {
                let _ = socket.write_all(&frame(SETTINGS, 1, 0, &[])).await;
                false
            }
            _ => false,
        };
        if refuse {
            // Last stream id 0, NO_ERROR: no stream of this connection was processed.
            let _ = socket.write_all(&frame(GOAWAY, 0, 0, &[0; 8])).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    }
}

/// `workers` clients calling unary in a loop for `length`; `during` runs meanwhile. Returns
/// (calls, failures with their codes).
async fn load<F: std::future::Future<Output = ()>>(
    channel: &tonic::transport::Channel,
    workers: usize,
    length: Duration,
    during: F,
) -> (usize, Vec<Code>) {
    let end = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let channel = channel.clone();
        tasks.spawn(async move {
            let (mut calls, mut failed) = (0, Vec::new());
            while Instant::now() < end {
                let mut request = Request::new(format!("{worker}-{calls}"));
                request.set_timeout(Duration::from_secs(2));
                calls += 1;
                if let Err(status) = unary(&channel, "/test.Alpha/Unary", request).await {
                    failed.push(status.code());
                }
            }
            (calls, failed)
        });
    }
    during.await;
    let (mut calls, mut failed) = (0, Vec::new());
    while let Some(result) = tasks.join_next().await {
        let (c, f) = result.expect("worker");
        calls += c;
        failed.extend(f);
    }
    (calls, failed)
}

async fn metrics(gw: &RunningGateway) -> String {
    http_get(gw.admin(), "/metrics").await.1
}

#[tokio::test]
async fn an_endpoint_going_away_mid_load_fails_no_call() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let staying = Replica::start(any).await;
    let mut leaving = Replica::start(any).await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{}\", \"http://{}\"]\nconnections = 2\n",
        staying.addr, leaving.addr
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let (calls, failed) = load(&channel, 8, Duration::from_millis(1500), async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // GOAWAY to its connections, then every new connection is refused.
        leaving.stop_gracefully();
    })
    .await;
    println!("{calls} calls, failed: {failed:?}");
    assert!(calls > 100, "{calls}");
    assert!(
        failed.is_empty(),
        "{} of {calls} failed: {failed:?}",
        failed.len()
    );
    assert!(leaving.calls() > 0 && staying.calls() > leaving.calls());
    gw.shutdown().await;
}

#[tokio::test]
async fn a_goaway_0_endpoint_fails_no_call() {
    let healthy = Replica::start(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let refusing = GoAwayServer::start(GoAwayOn::Headers).await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{}\", \"http://{}\"]\n",
        healthy.addr, refusing.addr
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let (calls, failed) = load(&channel, 8, Duration::from_millis(1500), async {}).await;
    println!(
        "{calls} calls, {} streams refused, failed: {failed:?}",
        refusing.streams()
    );
    assert!(refusing.streams() > 0, "the GOAWAY endpoint was tried");
    assert!(
        failed.is_empty(),
        "{} of {calls} failed: {failed:?}",
        failed.len()
    );
    assert_eq!(
        healthy.calls(),
        calls,
        "every call ended on the healthy endpoint"
    );
    let text = metrics(&gw).await;
    assert!(
        metric(
            &text,
            "gateway_upstream_retries_total{upstream=\"test.Alpha\"}"
        ) >= Some(1.0),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_streaming_call_that_sent_a_message_is_not_retried() {
    let refusing = GoAwayServer::start(GoAwayOn::Data).await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{}\"]\nmax_reconnect_backoff = \"100ms\"\n",
        refusing.addr
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let err = client_streaming(&channel, "/test.Alpha/ClientStream", &["one", "two"])
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(
        refusing.streams(),
        1,
        "a client stream that sent a message goes once"
    );
    // A unary call refused the same way is sent again (up to retries.max_attempts = 3).
    let err = unary(&channel, "/test.Alpha/Unary", Request::new("x".into()))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(refusing.streams(), 1 + 3, "three attempts");
    gw.shutdown().await;
}

#[tokio::test]
async fn the_budget_caps_retries() {
    let refusing = GoAwayServer::start(GoAwayOn::Headers).await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{}\"]\nmax_reconnect_backoff = \"100ms\"\nretries = {{ budget_percent = 0, min_retries_per_second = 1 }}\n",
        refusing.addr
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let calls = 20;
    for i in 0..calls {
        let err = unary(&channel, "/test.Alpha/Unary", Request::new(format!("{i}")))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::Unavailable);
    }
    let text = metrics(&gw).await;
    let retries = metric(
        &text,
        "gateway_upstream_retries_total{upstream=\"test.Alpha\"}",
    );
    let exhausted = metric(
        &text,
        "gateway_upstream_retry_budget_exhausted_total{upstream=\"test.Alpha\"}",
    );
    println!("retries {retries:?}, budget exhausted {exhausted:?}");
    // The window allows min_retries_per_second × 10 s = 10 retries and no share of the calls.
    assert_eq!(retries, Some(10.0), "{text}");
    assert_eq!(exhausted, Some(f64::from(calls - 5)), "{text}");
    assert_eq!(refusing.streams(), calls as usize + 10);
    gw.shutdown().await;
}

#[tokio::test]
async fn calls_are_held_while_the_only_upstream_restarts() {
    let mut upstream = Upstream::start().await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{}\"]\n",
        upstream.uri()
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let workers = 4;
    let (calls, failed) = load(&channel, workers, Duration::from_millis(2500), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        upstream.kill();
        // Down for 700 ms: well within the calls' 2 s deadlines.
        tokio::time::sleep(Duration::from_millis(700)).await;
        upstream.restart().await;
    })
    .await;
    let text = metrics(&gw).await;
    let held = metric(
        &text,
        "gateway_upstream_held_total{upstream=\"test.Alpha\"}",
    );
    println!("{calls} calls, held {held:?}, failed: {failed:?}");
    // Only calls in flight when the upstream died may fail (it may have processed them).
    assert!(
        failed.len() <= workers,
        "{} of {calls} failed: {failed:?}",
        failed.len()
    );
    assert!(
        held >= Some(1.0),
        "calls were held during the outage: {text}"
    );
    gw.shutdown().await;
}
