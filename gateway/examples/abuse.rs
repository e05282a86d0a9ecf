//! The attack set of `bench/abuse.sh` and the well-behaved client that measures a gateway
//! while it is under attack, in one binary. Loopback only: every subcommand that connects
//! refuses an address that is not `127.0.0.1`/`::1`, and every one is bounded by `--duration`.
//! Attacks connect from `127.0.0.2`, the steady client from `127.0.0.1`.
//!
//! ```text
//! abuse upstream [--listen 127.0.0.1:0]          # abuse.Echo; prints `listening on ADDR`
//! abuse rest-gateway --config gateway.toml       # a gateway with typed REST routes for it
//! abuse steady --addr ADDR --duration 10 [--rest]  # the well-behaved client; one result line
//! abuse <attack> --addr ADDR --duration 10       # one attack; one summary line
//! ```
//!
//! Attacks: `deep-query`, `header-flood`, `reset-storm`, `vanish`, `no-read`, `slowloris`,
//! `held-streams`, `conn-flood`, `heavy-rest` (see each subcommand's `--help`).
//!
//! The upstream serves `abuse.Echo`: `Echo` (unary), `Ticks` (a slow server stream, for the
//! long-lived stream of the steady client and for held streams), `Big` (large messages, for
//! clients that never read) and `Chat` (bidirectional echo).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::Status;
use tonic::transport::Endpoint;
use tonic_msgpack::{ServerStream, Streaming, msgpack_service};
use tonic_msgpack_gateway::{
    CallKind, Config, Gateway, HttpBinding, Route, RouteTable, Transcoder,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the attacks and the steady client call.
#[msgpack_service(package = "abuse")]
pub trait Echo {
    /// The message back.
    async fn echo(&self, message: String) -> Result<String, Status>;
    /// `n` ticks, one every `every_ms` milliseconds (the first after `every_ms`).
    async fn ticks(&self, n: u32, every_ms: u32) -> Result<ServerStream<u32>, Status>;
    /// `n` messages of `size` bytes, as fast as the reader takes them.
    async fn big(&self, n: u32, size: u32) -> Result<ServerStream<String>, Status>;
    /// Each message back as it comes.
    async fn chat(&self, messages: Streaming<String>) -> Result<ServerStream<String>, Status>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, message: String) -> Result<String, Status> {
        Ok(message)
    }

    async fn ticks(&self, n: u32, every_ms: u32) -> Result<ServerStream<u32>, Status> {
        let every = Duration::from_millis(every_ms.into());
        Ok(Box::pin(futures_util::stream::unfold(
            0u32,
            move |i| async move {
                if i >= n {
                    return None;
                }
                tokio::time::sleep(every).await;
                Some((Ok(i), i + 1))
            },
        )))
    }

    async fn big(&self, n: u32, size: u32) -> Result<ServerStream<String>, Status> {
        // Below the default 4 MiB message limit of the gateway and the clients.
        let message = "x".repeat(size.min(1 << 20) as usize);
        Ok(Box::pin(futures_util::stream::iter(
            (0..n).map(move |_| Ok(message.clone())),
        )))
    }

    async fn chat(&self, messages: Streaming<String>) -> Result<ServerStream<String>, Status> {
        Ok(Box::pin(messages))
    }
}

/// The REST gateway's routes: `GET /v1/echo/{message}` (query parameters fill the request
/// message, which is what `deep-query` aims at) and the default `POST /abuse.Echo/Echo` with a
/// JSON body (`heavy-rest`); the streaming methods pass through as gRPC.
fn rest_routes() -> RouteTable {
    let route = |method: &str, kind| Route::new("abuse.Echo", method, kind);
    RouteTable::from_routes([
        route("Echo", CallKind::Unary)
            .transcoder(Transcoder::typed::<__echo_msgpack::__EchoJson, String>())
            .http(HttpBinding::new("GET", "/v1/echo/{message}", None)),
        route("Ticks", CallKind::ServerStreaming),
        route("Big", CallKind::ServerStreaming),
        route("Chat", CallKind::Bidirectional),
    ])
}

#[derive(Parser)]
#[command(
    name = "abuse",
    about = "Attacks on a gateway, and a well-behaved client measuring it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The gateway under attack and how long to go on.
#[derive(Args, Clone, Copy)]
struct Target {
    /// The gateway's address (loopback only).
    #[arg(long)]
    addr: SocketAddr,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

impl Target {
    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs_f64(self.duration.max(0.0))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serves `abuse.Echo`; prints `listening on ADDR`.
    Upstream {
        /// Where to listen (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// A gateway with typed REST routes for `abuse.Echo` (the stand-alone binary has none);
    /// prints `listening on ADDR`. Same runtime as the stand-alone binary.
    RestGateway {
        /// The gateway config (TOML); `listen` may use port 0.
        #[arg(long)]
        config: PathBuf,
    },
    /// The well-behaved client: paced unary calls, a server stream and a bidi stream each on
    /// a connection of its own (with `--rest`, also REST calls over HTTP/1.1 keep-alive).
    /// Prints one line: `steady ok=… fail=… success_pct=… p50_ms=… p99_ms=… …`.
    Steady {
        #[command(flatten)]
        target: Target,
        /// Unary gRPC calls per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Also call `GET /v1/echo/steady` (REST gateway only).
        #[arg(long)]
        rest: bool,
        /// A call slower than this counts as failed (`timeout`).
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// Also list on stderr every call slower than this (`steady slow: at_ms=… took_ms=…`,
        /// from the start of the run), to see whether a p99 is one stall or a spread.
        #[arg(long)]
        slow_ms: Option<f64>,
    },
    /// REST GETs with a dotted query key of thousands of levels (`?z.z.z…=1`), HTTP/1.1.
    DeepQuery {
        #[command(flatten)]
        target: Target,
        /// Comma-separated levels of the dotted key, used in turn: one under the default 8 KiB
        /// query limit (for the depth check) and one near the 64 KiB URI limit of `http`.
        #[arg(long, default_value = "4000,30000")]
        levels: String,
        /// Requests in flight.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
    },
    /// Calls carrying one huge `x-flood` header: gRPC over HTTP/1.1 (`h1-grpc`), gRPC-Web
    /// (`grpc-web`), gRPC over HTTP/2 (`h2-grpc`) and REST (`rest`, REST gateway only).
    HeaderFlood {
        #[command(flatten)]
        target: Target,
        /// Comma-separated kinds.
        #[arg(long, default_value = "h1-grpc,grpc-web,h2-grpc")]
        kinds: String,
        /// Comma-separated header sizes in KiB, used in turn.
        #[arg(long, default_value = "24,64,128")]
        sizes_kib: String,
        /// Workers per kind.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
    },
    /// Raw HTTP/2: open a batch of long server streams, then reset them all at once; again.
    ResetStorm {
        #[command(flatten)]
        target: Target,
        /// Connections, each storming.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Streams opened per batch before the resets.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Pause between batches, milliseconds.
        #[arg(long, default_value_t = 2)]
        pause_ms: u64,
    },
    /// Raw HTTP/2: send the headers of a batch of unary calls but never their message, then
    /// close the connection (as clients that crash or lose their network do); again, on a new
    /// connection.
    Vanish {
        #[command(flatten)]
        target: Target,
        /// Workers, each on one connection at a time.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Calls half-sent per connection.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Raw HTTP/2: open server streams of large messages with a tiny window; never read.
    NoRead {
        #[command(flatten)]
        target: Target,
        /// Connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Streams per connection.
        #[arg(long, default_value_t = 64)]
        streams: usize,
        /// The stream window announced to the gateway, bytes.
        #[arg(long, default_value_t = 16)]
        window: u32,
    },
    /// Connections sending a byte a second: half an HTTP/1.1 header that never ends, half
    /// the HTTP/2 preface.
    Slowloris {
        #[command(flatten)]
        target: Target,
        /// Connections.
        #[arg(long, default_value_t = 500)]
        connections: usize,
    },
    /// Many open HTTP/2 streams (silent server streams) across connections, held, then closed.
    HeldStreams {
        #[command(flatten)]
        target: Target,
        /// Streams in all.
        #[arg(long, default_value_t = 10_000)]
        streams: usize,
        /// Streams per connection.
        #[arg(long, default_value_t = 100)]
        per_connection: usize,
    },
    /// Connections opened as fast as possible and held (half send the HTTP/2 preface, half
    /// nothing); a connection the gateway closes is opened again.
    ConnFlood {
        #[command(flatten)]
        target: Target,
        /// Connections at once (capped by the open-files limit).
        #[arg(long, default_value_t = 5_000)]
        connections: usize,
    },
    /// Concurrent REST POSTs of large JSON bodies (many small values) to `/abuse.Echo/Echo`.
    HeavyRest {
        #[command(flatten)]
        target: Target,
        /// Requests in flight.
        #[arg(long, default_value_t = 12)]
        concurrency: usize,
        /// Body size in bytes (default just under the 4 MiB REST body limit).
        #[arg(long, default_value_t = 4 * 1024 * 1024 - 4096)]
        body_bytes: usize,
    },
}

// `rest-gateway` stands for the shipped gateway binary: its allocator and its runtime.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tonic_msgpack_gateway::Jemalloc = tonic_msgpack_gateway::Jemalloc;

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Command::RestGateway { .. } => {
            tonic_msgpack_gateway::return_memory_in_background();
            tonic_msgpack_gateway::runtime(None)?
        }
        command => {
            let threads = match command {
                Command::Upstream { threads, .. } => (*threads).max(1),
                _ => 2,
            };
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?
        }
    };
    let result = runtime.block_on(run(cli.command));
    // Attack tasks still parked on sockets are dropped, not awaited.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Upstream { listen, .. } => upstream(listen).await,
        Command::RestGateway { config } => rest_gateway(config).await,
        Command::Steady {
            target,
            rate,
            rest,
            timeout_ms,
            slow_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms);
            steady(target, rate, rest, timeout, slow_ms).await
        }
        Command::DeepQuery {
            target,
            levels,
            concurrency,
        } => deep_query(target, &levels, concurrency).await,
        Command::HeaderFlood {
            target,
            kinds,
            sizes_kib,
            concurrency,
        } => header_flood(target, &kinds, &sizes_kib, concurrency).await,
        Command::ResetStorm {
            target,
            connections,
            batch,
            pause_ms,
        } => reset_storm(target, connections, batch, pause_ms).await,
        Command::NoRead {
            target,
            connections,
            streams,
            window,
        } => no_read(target, connections, streams, window).await,
        Command::Slowloris {
            target,
            connections,
        } => slowloris(target, connections).await,
        Command::Vanish {
            target,
            connections,
            batch,
        } => vanish(target, connections, batch).await,
        Command::HeldStreams {
            target,
            streams,
            per_connection,
        } => held_streams(target, streams, per_connection).await,
        Command::ConnFlood {
            target,
            connections,
        } => conn_flood(target, connections).await,
        Command::HeavyRest {
            target,
            concurrency,
            body_bytes,
        } => heavy_rest(target, concurrency, body_bytes).await,
    }
}

/// Attackers connect from `127.0.0.2` (to an IPv4 loopback target), the well-behaved client
/// from `127.0.0.1`: on a real network they come from different addresses too, which the
/// gateway's per-client accounting (`reserved_in_flight`) relies on.
const ATTACKER_SOURCE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 2);

async fn attacker_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    if !addr.is_ipv4() {
        return TcpStream::connect(addr).await;
    }
    let socket = tokio::net::TcpSocket::new_v4()?;
    // `bind` takes its ephemeral port out of the pool of every address on this machine, and a
    // closed socket keeps it for a minute in TIME_WAIT: tens of thousands of attack connections
    // would leave the well-behaved client (and the gateway's upstream connections) no port to
    // connect from, which an attacker on another machine cannot do. Closing with a reset frees
    // the port at once.
    socket.set_zero_linger()?;
    socket.bind(SocketAddr::from((ATTACKER_SOURCE, 0)))?;
    socket.connect(addr).await
}

fn loopback_only(addr: SocketAddr) -> Result<(), BoxError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!("{addr} is not a loopback address; the attacks run on loopback only").into())
    }
}

// ------------------------------------------------------------------------------ servers

async fn upstream(listen: SocketAddr) -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // The script reads this line to find a `:0` port.
    println!("listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(EchoServer::new(EchoImpl))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

async fn rest_gateway(config: PathBuf) -> Result<(), BoxError> {
    let config = Config::from_file(&config)?;
    let gateway = Gateway::builder()
        .config(config)
        .routes(rest_routes())
        .build()
        .await?;
    let listener = gateway.bind().await?;
    println!("listening on {}", listener.local_addr()?);
    gateway
        .serve_on(listener, tonic_msgpack_gateway::shutdown_signal()?)
        .await?;
    Ok(())
}

// ------------------------------------------------------------------------------ helpers

/// Counts of what happened, by label; printed sorted as `label=count`.
#[derive(Clone, Default)]
struct Tally(Arc<Mutex<BTreeMap<String, u64>>>);

impl Tally {
    fn add(&self, label: impl Into<String>) {
        self.add_n(label, 1);
    }

    fn add_n(&self, label: impl Into<String>, n: u64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *map.entry(label.into()).or_default() += n;
    }

    fn get(&self, label: &str) -> u64 {
        let map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(label).copied().unwrap_or(0)
    }

    fn line(&self) -> String {
        let map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.is_empty() {
            return "nothing=0".into();
        }
        map.iter()
            .map(|(label, n)| format!("{label}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Waits for every worker, but not past `limit` (an attack must end on time).
async fn join_until(mut set: JoinSet<()>, limit: Instant) {
    while let Ok(Some(_)) = tokio::time::timeout_at(limit, set.join_next()).await {}
    set.abort_all();
}

/// One gRPC message frame: uncompressed flag, big-endian length, the bytes.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    frame.extend_from_slice(message);
    Bytes::from(frame)
}

/// The frame of a request message (`T` as the service's compact MessagePack).
fn request_frame<T: serde::Serialize>(value: &T) -> Result<Bytes, BoxError> {
    Ok(grpc_frame(&tonic_msgpack::to_vec(value)?))
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The HTTP/2 preface and an empty SETTINGS frame: a client that then says nothing.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

type H1Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn h1_connect(addr: SocketAddr) -> Result<H1Sender, BoxError> {
    let stream = attacker_connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// What came back: the HTTP status, the gRPC status (from the headers, the trailers or, for
/// gRPC-Web, the trailer frame in the body) and the body.
struct Answer {
    status: u16,
    grpc_status: Option<String>,
    body: Bytes,
}

impl Answer {
    fn label(&self) -> String {
        match &self.grpc_status {
            Some(grpc) => format!("http{}/grpc{grpc}", self.status),
            None => format!("http{}", self.status),
        }
    }
}

fn header_text(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// `grpc-status: N` inside a gRPC-Web body's trailer frame.
fn grpc_web_status(body: &[u8]) -> Option<String> {
    let needle = b"grpc-status:";
    let at = body.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits: String = body[at..]
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .map(|b| char::from(*b))
        .collect();
    (!digits.is_empty()).then_some(digits)
}

async fn h1_send(
    sender: &mut H1Sender,
    request: http::Request<Full<Bytes>>,
) -> Result<Answer, BoxError> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let in_headers = header_text(response.headers(), "grpc-status");
    let collected = response.into_body().collect().await?;
    let in_trailers = collected
        .trailers()
        .and_then(|trailers| header_text(trailers, "grpc-status"));
    let body = collected.to_bytes();
    let grpc_status = in_headers
        .or(in_trailers)
        .or_else(|| grpc_web_status(&body));
    Ok(Answer {
        status,
        grpc_status,
        body,
    })
}

fn h1_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, BoxError> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(request.body(Full::new(body))?)
}

type H2Sender = h2::client::SendRequest<Bytes>;

async fn h2_connect(addr: SocketAddr, builder: &h2::client::Builder) -> Result<H2Sender, BoxError> {
    let stream = attacker_connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = builder.handshake::<_, Bytes>(stream).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn h2_grpc_request(addr: SocketAddr, path: &str) -> Result<http::Request<()>, BoxError> {
    Ok(http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?)
}

/// Why an HTTP/2 operation failed, as a short label.
fn h2_label(err: &h2::Error) -> String {
    if let Some(reason) = err.reason() {
        let scope = if err.is_go_away() { "goaway" } else { "rst" };
        format!("{scope}_{}", format!("{reason:?}").to_lowercase())
    } else if err.is_io() {
        "io".into()
    } else {
        "h2_user".into()
    }
}

/// A whole gRPC call over an existing HTTP/2 connection, the response read to the end.
async fn h2_call(
    sender: &H2Sender,
    request: http::Request<()>,
    body: Bytes,
) -> Result<Answer, h2::Error> {
    let mut ready = sender.clone().ready().await?;
    let (response, mut send) = ready.send_request(request, false)?;
    send.send_data(body, true)?;
    let response = response.await?;
    let status = response.status().as_u16();
    let in_headers = header_text(response.headers(), "grpc-status");
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let in_trailers = body
        .trailers()
        .await?
        .and_then(|trailers| header_text(&trailers, "grpc-status"));
    Ok(Answer {
        status,
        grpc_status: in_headers.or(in_trailers),
        body: Bytes::from(bytes),
    })
}

/// The soft open-files limit of this process (`/proc/self/limits`), 1024 if unknown.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(1024)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ------------------------------------------------------------------------------ steady

/// One call of the steady client.
struct Outcome {
    /// `ok`, or why it failed (a gRPC code, `timeout`, `rest_http503`…).
    label: String,
    started: Instant,
    elapsed: Duration,
}

/// How a long-lived stream of the steady client fared.
#[derive(Default)]
struct StreamReport {
    /// Why it broke, if it did.
    broken: Option<String>,
    messages: u64,
    /// Longest wait for a message (ticks) or an echo (chat).
    worst: Duration,
}

impl StreamReport {
    fn ok(&self, worst_allowed: Duration) -> bool {
        self.broken.is_none() && self.messages > 0 && self.worst <= worst_allowed
    }

    fn status(&self, worst_allowed: Duration) -> String {
        match &self.broken {
            Some(why) => format!("broken:{why}"),
            None if self.messages == 0 => "broken:no_messages".into(),
            None if self.worst > worst_allowed => "stalled".into(),
            None => "ok".into(),
        }
    }
}

async fn steady(
    target: Target,
    rate: u32,
    rest: bool,
    timeout: Duration,
    slow_ms: Option<f64>,
) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    let endpoint = Endpoint::from_shared(format!("http://{}", target.addr))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    // Each lazy channel is a connection of its own: the streams do not share the unary calls'.
    let unary = EchoClient::new(endpoint.connect_lazy());
    let ticks_client = EchoClient::new(endpoint.connect_lazy());
    let chat_client = EchoClient::new(endpoint.connect_lazy());
    // Connect before the clock starts; a gateway that is down fails the calls below.
    let _ = tokio::time::timeout(timeout, unary.clone().echo("warm-up".into())).await;

    let clock_start = Instant::now();
    let deadline = target.deadline();
    let ticks = tokio::spawn(watch_ticks(ticks_client, deadline, timeout));
    let chat = tokio::spawn(watch_chat(chat_client, deadline, timeout));
    let rest_calls = rest.then(|| tokio::spawn(rest_loop(target.addr, deadline, timeout)));

    let mut calls = JoinSet::new();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        pace.tick().await;
        let mut client = unary.clone();
        calls.spawn(async move {
            let start = Instant::now();
            let label = match tokio::time::timeout(timeout, client.echo("steady".into())).await {
                Ok(Ok(answer)) if answer == "steady" => "ok".to_owned(),
                Ok(Ok(_)) => "wrong_answer".to_owned(),
                Ok(Err(status)) => {
                    // Which limit or failure it was, for the .err log.
                    eprintln!("steady unary: {:?}: {}", status.code(), status.message());
                    format!("{:?}", status.code())
                }
                Err(_) => "timeout".to_owned(),
            };
            Outcome {
                label,
                started: start,
                elapsed: start.elapsed(),
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = calls.join_next().await {
        outcomes.push(outcome?);
    }
    if let Some(rest_calls) = rest_calls {
        outcomes.extend(rest_calls.await?);
    }
    let ticks = ticks.await?;
    let chat = chat.await?;
    if let Some(slow_ms) = slow_ms {
        outcomes.sort_by_key(|o| o.started);
        for outcome in outcomes.iter().filter(|o| millis(o.elapsed) > slow_ms) {
            eprintln!(
                "steady slow: at_ms={:.1} took_ms={:.2} {}",
                millis(outcome.started.saturating_duration_since(clock_start)),
                millis(outcome.elapsed),
                outcome.label
            );
        }
    }

    let ok = outcomes.iter().filter(|o| o.label == "ok").count();
    let fail = outcomes.len() - ok;
    let mut codes = BTreeMap::<&str, u64>::new();
    for outcome in outcomes.iter().filter(|o| o.label != "ok") {
        *codes.entry(&outcome.label).or_default() += 1;
    }
    let codes = if codes.is_empty() {
        "-".to_owned()
    } else {
        codes
            .iter()
            .map(|(code, n)| format!("{code}:{n}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // Failed calls count with the time they took: a call that hung until `timeout` is slow.
    let mut latencies: Vec<f64> = outcomes.iter().map(|o| millis(o.elapsed)).collect();
    latencies.sort_by(f64::total_cmp);
    let success = if outcomes.is_empty() {
        0.0
    } else {
        100.0 * ok as f64 / outcomes.len() as f64
    };
    // A stream that waited more than 2 s for a message it should get every 100-200 ms stalled.
    let allowed = Duration::from_secs(2);
    let streams_ok = ticks.ok(allowed) && chat.ok(allowed);
    println!(
        "steady ok={ok} fail={fail} success_pct={success:.2} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} codes={codes} streams={} ticks={} ticks_n={} ticks_gap_ms={:.0} chat={} chat_n={} chat_rtt_ms={:.0}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        if streams_ok { "ok" } else { "broken" },
        ticks.status(allowed),
        ticks.messages,
        millis(ticks.worst),
        chat.status(allowed),
        chat.messages,
        millis(chat.worst),
    );
    Ok(())
}

/// A server stream of a tick every 100 ms, read until `deadline`.
async fn watch_ticks(mut client: EchoClient, deadline: Instant, timeout: Duration) -> StreamReport {
    let mut report = StreamReport::default();
    let left = deadline.saturating_duration_since(Instant::now());
    let n = u32::try_from(left.as_millis() / 100 + 50).unwrap_or(u32::MAX);
    let mut stream = match tokio::time::timeout(timeout, client.ticks(n, 100)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(status)) => {
            report.broken = Some(format!("{:?}", status.code()));
            return report;
        }
        Err(_) => {
            report.broken = Some("timeout".into());
            return report;
        }
    };
    let mut last = Instant::now();
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => break,
            Ok(Ok(Some(_))) => {
                report.worst = report.worst.max(last.elapsed());
                last = Instant::now();
                report.messages += 1;
            }
            Ok(Ok(None)) => {
                report.broken = Some("ended_early".into());
                break;
            }
            Ok(Err(status)) => {
                report.broken = Some(format!("{:?}", status.code()));
                break;
            }
        }
    }
    // A stream silent until the deadline stalled for that long.
    report.worst = report
        .worst
        .max(Instant::now().min(deadline).saturating_duration_since(last));
    report
}

/// A bidirectional stream: a message every 200 ms, each echo awaited, until `deadline`.
async fn watch_chat(mut client: EchoClient, deadline: Instant, timeout: Duration) -> StreamReport {
    let mut report = StreamReport::default();
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(4);
    // The first message goes before the call, so a gateway that waits for one still answers.
    if sender.send("chat 0".into()).await.is_err() {
        report.broken = Some("local".into());
        return report;
    }
    let outbound = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let mut inbound = match tokio::time::timeout(timeout, client.chat(outbound)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(status)) => {
            report.broken = Some(format!("{:?}", status.code()));
            return report;
        }
        Err(_) => {
            report.broken = Some("timeout".into());
            return report;
        }
    };
    let mut i = 0u64;
    let mut sent_at = Instant::now();
    loop {
        let wait = tokio::time::timeout(timeout, inbound.message()).await;
        match wait {
            Ok(Ok(Some(echo))) if echo == format!("chat {i}") => {
                report.worst = report.worst.max(sent_at.elapsed());
                report.messages += 1;
            }
            Ok(Ok(Some(_))) => {
                report.broken = Some("wrong_answer".into());
                break;
            }
            Ok(Ok(None)) => {
                report.broken = Some("ended_early".into());
                break;
            }
            Ok(Err(status)) => {
                report.broken = Some(format!("{:?}", status.code()));
                break;
            }
            Err(_) => {
                report.broken = Some("timeout".into());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if Instant::now() >= deadline {
            break;
        }
        i += 1;
        sent_at = Instant::now();
        if sender.send(format!("chat {i}")).await.is_err() {
            // The call ended and dropped our side: its status says why.
            report.broken = Some(
                match tokio::time::timeout(timeout, inbound.message()).await {
                    Ok(Err(status)) => format!("{:?}", status.code()),
                    _ => "ended_early".into(),
                },
            );
            break;
        }
    }
    report
}

/// REST calls one after another on an HTTP/1.1 keep-alive connection (reopened after an
/// error), every 20 ms until `deadline`.
async fn rest_loop(addr: SocketAddr, deadline: Instant, timeout: Duration) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut connection: Option<H1Sender> = None;
    while Instant::now() < deadline {
        let start = Instant::now();
        let call = async {
            let mut sender = match connection.take() {
                Some(sender) => sender,
                None => h1_connect(addr).await?,
            };
            let request = h1_request("GET", "/v1/echo/steady", &[], Bytes::new())?;
            let answer = h1_send(&mut sender, request).await?;
            connection = Some(sender);
            Ok::<_, BoxError>(answer)
        };
        let label = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(answer)) if answer.status == 200 && answer.body.as_ref() == b"\"steady\"" => {
                "ok".to_owned()
            }
            Ok(Ok(answer)) => format!("rest_{}", answer.label()),
            Ok(Err(_)) => "rest_io".to_owned(),
            Err(_) => "rest_timeout".to_owned(),
        };
        outcomes.push(Outcome {
            label,
            started: start,
            elapsed: start.elapsed(),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes
}

// ------------------------------------------------------------------------------ attacks

async fn deep_query(target: Target, levels: &str, concurrency: usize) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    let paths: Arc<Vec<(usize, String)>> = Arc::new(
        levels
            .split(',')
            .map(|n| {
                let n: usize = n.trim().parse()?;
                Ok((n, format!("/v1/echo/hi?{}z=1", "z.".repeat(n))))
            })
            .collect::<Result<_, BoxError>>()?,
    );
    if paths.is_empty() {
        return Err("--levels is empty".into());
    }
    let tally = Tally::default();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let (paths, tally, addr) = (paths.clone(), tally.clone(), target.addr);
        workers.spawn(async move {
            let mut turn = worker;
            while Instant::now() < deadline {
                let (levels, path) = &paths[turn % paths.len()];
                turn += 1;
                let call = async {
                    let mut sender = h1_connect(addr).await?;
                    h1_send(&mut sender, h1_request("GET", path, &[], Bytes::new())?).await
                };
                match tokio::time::timeout(Duration::from_secs(5), call).await {
                    Ok(Ok(answer)) => tally.add(format!("levels{levels}:{}", answer.label())),
                    Ok(Err(_)) => {
                        tally.add(format!("levels{levels}:conn_error"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => tally.add(format!("levels{levels}:timeout")),
                }
            }
        });
    }
    join_until(workers, deadline + Duration::from_secs(6)).await;
    println!("attack deep-query {}", tally.line());
    Ok(())
}

async fn header_flood(
    target: Target,
    kinds: &str,
    sizes_kib: &str,
    concurrency: usize,
) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    let sizes = sizes_kib
        .split(',')
        .map(|size| size.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()?;
    if sizes.is_empty() {
        return Err("--sizes-kib is empty".into());
    }
    let echo = request_frame(&"flood")?;
    let tally = Tally::default();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for kind in kinds.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if !matches!(kind, "h1-grpc" | "grpc-web" | "h2-grpc" | "rest") {
            return Err(format!("unknown kind `{kind}`").into());
        }
        for worker in 0..concurrency.max(1) {
            let (kind, sizes, echo, tally, addr) = (
                kind.to_owned(),
                sizes.clone(),
                echo.clone(),
                tally.clone(),
                target.addr,
            );
            workers.spawn(async move {
                let mut h2: Option<H2Sender> = None;
                let mut turn = worker;
                while Instant::now() < deadline {
                    let kib = sizes[turn % sizes.len()];
                    turn += 1;
                    let flood = "f".repeat(kib * 1024);
                    let call = async {
                        match kind.as_str() {
                            "h2-grpc" => {
                                let sender = match h2.take() {
                                    Some(sender) => sender,
                                    None => h2_connect(addr, &h2::client::Builder::new()).await?,
                                };
                                let mut request = h2_grpc_request(addr, "/abuse.Echo/Echo")?;
                                request.headers_mut().insert("x-flood", flood.parse()?);
                                match h2_call(&sender, request, echo.clone()).await {
                                    Ok(answer) => {
                                        h2 = Some(sender);
                                        Ok(answer.label())
                                    }
                                    // The connection may live on after a stream error.
                                    Err(err) if !err.is_go_away() && !err.is_io() => {
                                        h2 = Some(sender);
                                        Ok(h2_label(&err))
                                    }
                                    Err(err) => Ok(h2_label(&err)),
                                }
                            }
                            h1 => {
                                let (method, path, content_type, body) = match h1 {
                                    "h1-grpc" => (
                                        "POST",
                                        "/abuse.Echo/Echo",
                                        "application/grpc",
                                        echo.clone(),
                                    ),
                                    "grpc-web" => (
                                        "POST",
                                        "/abuse.Echo/Echo",
                                        "application/grpc-web",
                                        echo.clone(),
                                    ),
                                    _ => {
                                        ("GET", "/v1/echo/flood", "application/json", Bytes::new())
                                    }
                                };
                                let request = h1_request(
                                    method,
                                    path,
                                    &[
                                        ("content-type", content_type),
                                        ("te", "trailers"),
                                        ("x-flood", &flood),
                                    ],
                                    body,
                                )?;
                                let mut sender = h1_connect(addr).await?;
                                Ok::<_, BoxError>(h1_send(&mut sender, request).await?.label())
                            }
                        }
                    };
                    match tokio::time::timeout(Duration::from_secs(5), call).await {
                        Ok(Ok(label)) => tally.add(format!("{kind}:{kib}K:{label}")),
                        Ok(Err(_)) => {
                            tally.add(format!("{kind}:{kib}K:conn_error"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(_) => tally.add(format!("{kind}:{kib}K:timeout")),
                    }
                }
            });
        }
    }
    join_until(workers, deadline + Duration::from_secs(6)).await;
    println!("attack header-flood {}", tally.line());
    Ok(())
}

async fn reset_storm(
    target: Target,
    connections: usize,
    batch: usize,
    pause_ms: u64,
) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    // Long server streams: each is still open upstream when its reset arrives.
    let ticks = request_frame(&(1000u32, 1000u32))?;
    let tally = Tally::default();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for _ in 0..connections.max(1) {
        let (ticks, tally, addr) = (ticks.clone(), tally.clone(), target.addr);
        workers.spawn(async move {
            let mut sender: Option<H2Sender> = None;
            while Instant::now() < deadline {
                let client = match sender.take() {
                    Some(client) => client,
                    None => match tokio::time::timeout(
                        Duration::from_secs(2),
                        h2_connect(addr, &h2::client::Builder::new()),
                    )
                    .await
                    {
                        Ok(Ok(client)) => {
                            tally.add("connections");
                            client
                        }
                        _ => {
                            tally.add("connect_error");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let mut open = Vec::with_capacity(batch);
                let mut closed = None;
                for _ in 0..batch.max(1) {
                    let ready =
                        tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await;
                    let mut ready = match ready {
                        Ok(Ok(ready)) => ready,
                        Ok(Err(err)) => {
                            closed = Some(h2_label(&err));
                            break;
                        }
                        Err(_) => {
                            closed = Some("ready_timeout".into());
                            break;
                        }
                    };
                    let Ok(request) = h2_grpc_request(addr, "/abuse.Echo/Ticks") else {
                        break;
                    };
                    match ready.send_request(request, false) {
                        Ok((response, mut send)) => {
                            let _ = send.send_data(ticks.clone(), true);
                            open.push((response, send));
                        }
                        Err(err) => {
                            closed = Some(h2_label(&err));
                            break;
                        }
                    }
                }
                // Let the gateway pass the calls upstream, then cancel every one at once.
                tokio::time::sleep(Duration::from_millis(1)).await;
                tally.add_n("opened", open.len() as u64);
                for (_response, mut send) in open {
                    send.send_reset(h2::Reason::CANCEL);
                }
                match closed {
                    Some(why) => tally.add(format!("conn_closed_{why}")),
                    None => sender = Some(client),
                }
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            }
        });
    }
    join_until(workers, deadline + Duration::from_secs(3)).await;
    let opened = tally.get("opened");
    println!(
        "attack reset-storm resets_per_s={:.0} {}",
        opened as f64 / target.duration.max(0.001),
        tally.line()
    );
    Ok(())
}

async fn vanish(target: Target, connections: usize, batch: usize) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    let tally = Tally::default();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for _ in 0..connections.max(1) {
        let (tally, addr) = (tally.clone(), target.addr);
        workers.spawn(async move {
            while Instant::now() < deadline {
                let handshake = async {
                    let stream = attacker_connect(addr).await?;
                    stream.set_nodelay(true)?;
                    let handshake = h2::client::Builder::new().handshake::<_, Bytes>(stream);
                    Ok::<_, BoxError>(handshake.await?)
                };
                let Ok(Ok((client, connection))) =
                    tokio::time::timeout(Duration::from_secs(2), handshake).await
                else {
                    tally.add("connect_error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let connection = tokio::spawn(async move {
                    let _ = connection.await;
                });
                let mut open = Vec::with_capacity(batch);
                for _ in 0..batch.max(1) {
                    let ready =
                        tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await;
                    let Ok(Ok(mut ready)) = ready else {
                        break;
                    };
                    let Ok(request) = h2_grpc_request(addr, "/abuse.Echo/Echo") else {
                        break;
                    };
                    // The headers go out; the message never does.
                    match ready.send_request(request, false) {
                        Ok(call) => open.push(call),
                        Err(_) => break,
                    }
                }
                // Let the headers reach the gateway (and go upstream), then drop the connection.
                tokio::time::sleep(Duration::from_millis(5)).await;
                tally.add_n("half_sent", open.len() as u64);
                tally.add("connections");
                connection.abort();
                drop((client, open));
            }
        });
    }
    join_until(workers, deadline + Duration::from_secs(3)).await;
    println!(
        "attack vanish half_sent_per_s={:.0} {}",
        tally.get("half_sent") as f64 / target.duration.max(0.001),
        tally.line()
    );
    Ok(())
}

async fn no_read(
    target: Target,
    connections: usize,
    streams: usize,
    window: u32,
) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    // 64 KiB messages without end: the upstream sends as fast as windows allow.
    let big = request_frame(&(u32::MAX, 64u32 * 1024))?;
    let tally = Tally::default();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for _ in 0..connections.max(1) {
        let (big, tally, addr) = (big.clone(), tally.clone(), target.addr);
        workers.spawn(async move {
            let mut builder = h2::client::Builder::new();
            builder.initial_window_size(window);
            let Ok(Ok(client)) =
                tokio::time::timeout(Duration::from_secs(2), h2_connect(addr, &builder)).await
            else {
                tally.add("connect_error");
                return;
            };
            let mut pending = Vec::new();
            for _ in 0..streams {
                let Ok(Ok(mut ready)) =
                    tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await
                else {
                    tally.add("not_ready");
                    break;
                };
                let Ok(request) = h2_grpc_request(addr, "/abuse.Echo/Big") else {
                    break;
                };
                match ready.send_request(request, false) {
                    Ok((response, mut send)) => {
                        let _ = send.send_data(big.clone(), true);
                        pending.push((response, send));
                    }
                    Err(err) => {
                        tally.add(format!("open_{}", h2_label(&err)));
                        break;
                    }
                }
            }
            tally.add_n("opened", pending.len() as u64);
            // The response heads arrive; the bodies are never read, so the window stays shut.
            let heads_by = (Instant::now() + Duration::from_secs(5)).min(deadline);
            let mut held = Vec::new();
            for (response, send) in pending {
                match tokio::time::timeout_at(heads_by, response).await {
                    Ok(Ok(response)) => {
                        tally.add(format!("head_http{}", response.status().as_u16()));
                        held.push((response, send));
                    }
                    Ok(Err(err)) => tally.add(format!("head_{}", h2_label(&err))),
                    Err(_) => tally.add("head_timeout"),
                }
            }
            tokio::time::sleep_until(deadline).await;
            drop(held);
            drop(client);
        });
    }
    join_until(workers, deadline + Duration::from_secs(3)).await;
    println!("attack no-read window={window} {}", tally.line());
    Ok(())
}

async fn slowloris(target: Target, connections: usize) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    let tally = Tally::default();
    let closes: Arc<Mutex<Vec<f64>>> = Arc::default();
    let start = Instant::now();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for i in 0..connections {
        let (tally, closes, addr) = (tally.clone(), closes.clone(), target.addr);
        workers.spawn(async move {
            let (flavor, script): (&str, &[u8]) = if i % 2 == 0 {
                (
                    "h1",
                    b"POST /abuse.Echo/Echo HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ",
                )
            } else {
                ("h2", H2_PREFACE)
            };
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(Duration::from_secs(5), attacker_connect(addr)).await
            else {
                tally.add(format!("{flavor}_connect_error"));
                return;
            };
            tally.add(format!("{flavor}_opened"));
            let mut buf = [0u8; 1024];
            let mut next = Instant::now();
            let mut position = 0;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(next) => {
                        if Instant::now() >= deadline {
                            tally.add(format!("{flavor}_open_at_end"));
                            return;
                        }
                        // After the script: an endless header value (or garbage for HTTP/2).
                        let byte = script.get(position).copied().unwrap_or(b'a');
                        position += 1;
                        if stream.write_all(&[byte]).await.is_err() {
                            break;
                        }
                        next += Duration::from_secs(1);
                    }
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        // An answer (408, 400, GOAWAY…): the close usually follows.
                        Ok(_) => tally.add(format!("{flavor}_answered")),
                    },
                }
            }
            tally.add(format!("{flavor}_closed_by_gateway"));
            closes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(start.elapsed().as_secs_f64());
        });
    }
    join_until(workers, deadline + Duration::from_secs(3)).await;
    let mut closes = closes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    closes.sort_by(f64::total_cmp);
    println!(
        "attack slowloris connections={connections} first_close_s={:.1} median_close_s={:.1} {}",
        closes.first().copied().unwrap_or(-1.0),
        percentile(&closes, 0.5),
        tally.line()
    );
    Ok(())
}

async fn held_streams(
    target: Target,
    streams: usize,
    per_connection: usize,
) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    let per_connection = per_connection.max(1);
    // One tick after 10 minutes: a stream that stays open and silent.
    let silent = request_frame(&(1u32, 600_000u32))?;
    let tally = Tally::default();
    let held_now = Arc::new(AtomicUsize::new(0));
    let held_peak = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    let mut left = streams;
    while left > 0 {
        let count = left.min(per_connection);
        left -= count;
        let (silent, tally, addr) = (silent.clone(), tally.clone(), target.addr);
        let (held_now, held_peak) = (held_now.clone(), held_peak.clone());
        workers.spawn(async move {
            let Ok(Ok(client)) = tokio::time::timeout(
                Duration::from_secs(5),
                h2_connect(addr, &h2::client::Builder::new()),
            )
            .await
            else {
                tally.add("connect_error");
                return;
            };
            let mut pending = Vec::with_capacity(count);
            for _ in 0..count {
                let Ok(Ok(mut ready)) =
                    tokio::time::timeout_at(deadline, client.clone().ready()).await
                else {
                    tally.add("not_ready");
                    break;
                };
                let Ok(request) = h2_grpc_request(addr, "/abuse.Echo/Ticks") else {
                    break;
                };
                match ready.send_request(request, false) {
                    Ok((response, mut send)) => {
                        let _ = send.send_data(silent.clone(), true);
                        pending.push((response, send));
                    }
                    Err(err) => {
                        tally.add(format!("open_{}", h2_label(&err)));
                        break;
                    }
                }
            }
            tally.add_n("opened", pending.len() as u64);
            let heads_by = (Instant::now() + Duration::from_secs(10)).min(deadline);
            let mut held = Vec::with_capacity(pending.len());
            for (response, send) in pending {
                match tokio::time::timeout_at(heads_by, response).await {
                    Ok(Ok(response)) => {
                        let status = response.status().as_u16();
                        match header_text(response.headers(), "grpc-status") {
                            // A status in the head: the call ended at once (shed, refused…).
                            Some(grpc) => tally.add(format!("ended_http{status}/grpc{grpc}")),
                            None => {
                                tally.add(format!("held_http{status}"));
                                let now = held_now.fetch_add(1, Ordering::Relaxed) + 1;
                                held_peak.fetch_max(now, Ordering::Relaxed);
                                held.push((response, send));
                            }
                        }
                    }
                    Ok(Err(err)) => tally.add(format!("head_{}", h2_label(&err))),
                    Err(_) => tally.add("head_timeout"),
                }
            }
            tokio::time::sleep_until(deadline).await;
            held_now.fetch_sub(held.len(), Ordering::Relaxed);
            drop(held);
            drop(client);
        });
    }
    join_until(workers, deadline + Duration::from_secs(3)).await;
    println!(
        "attack held-streams target={streams} held_peak={} elapsed_s={:.1} {}",
        held_peak.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        tally.line()
    );
    Ok(())
}

async fn conn_flood(target: Target, connections: usize) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    // Leave descriptors for the runtime and the odd reconnect.
    let limit = open_files_limit().saturating_sub(256);
    let slots = connections.min(limit);
    let tally = Tally::default();
    let open_now = Arc::new(AtomicUsize::new(0));
    let open_peak = Arc::new(AtomicUsize::new(0));
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for slot in 0..slots {
        let (tally, addr) = (tally.clone(), target.addr);
        let (open_now, open_peak) = (open_now.clone(), open_peak.clone());
        workers.spawn(async move {
            while Instant::now() < deadline {
                let connect = tokio::time::timeout_at(deadline, attacker_connect(addr)).await;
                let mut stream = match connect {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(_)) => {
                        tally.add("connect_error");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(_) => break,
                };
                tally.add("opened");
                let now = open_now.fetch_add(1, Ordering::Relaxed) + 1;
                open_peak.fetch_max(now, Ordering::Relaxed);
                if slot % 2 == 0 {
                    let _ = stream.write_all(H2_HELLO).await;
                }
                let mut buf = [0u8; 512];
                let closed = loop {
                    match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                        Err(_) => break false,
                        Ok(Ok(0) | Err(_)) => break true,
                        Ok(Ok(_)) => {}
                    }
                };
                open_now.fetch_sub(1, Ordering::Relaxed);
                if closed {
                    tally.add("closed_by_gateway");
                }
            }
        });
    }
    join_until(workers, deadline + Duration::from_secs(3)).await;
    println!(
        "attack conn-flood slots={slots} open_peak={} {}",
        open_peak.load(Ordering::Relaxed),
        tally.line()
    );
    Ok(())
}

async fn heavy_rest(target: Target, concurrency: usize, body_bytes: usize) -> Result<(), BoxError> {
    loopback_only(target.addr)?;
    // Many small JSON values in a field the request type does not have: cheap to send,
    // expensive to parse into a tree.
    let head = br#"{"message":"hi","pad":["#;
    let zeros = body_bytes.saturating_sub(head.len() + 3) / 2;
    let mut body = Vec::with_capacity(body_bytes);
    body.extend_from_slice(head);
    for _ in 0..zeros {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]}");
    let body = Bytes::from(body);
    let tally = Tally::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let deadline = target.deadline();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (body, tally, latencies, addr) =
            (body.clone(), tally.clone(), latencies.clone(), target.addr);
        workers.spawn(async move {
            let mut connection: Option<H1Sender> = None;
            while Instant::now() < deadline {
                let start = Instant::now();
                let call = async {
                    let mut sender = match connection.take() {
                        Some(sender) => sender,
                        None => h1_connect(addr).await?,
                    };
                    let request = h1_request(
                        "POST",
                        "/abuse.Echo/Echo",
                        &[("content-type", "application/json")],
                        body.clone(),
                    )?;
                    let answer = h1_send(&mut sender, request).await?;
                    connection = Some(sender);
                    Ok::<_, BoxError>(answer)
                };
                match tokio::time::timeout(Duration::from_secs(10), call).await {
                    Ok(Ok(answer)) => {
                        tally.add(answer.label());
                        latencies
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(millis(start.elapsed()));
                    }
                    Ok(Err(_)) => {
                        tally.add("conn_error");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(_) => tally.add("timeout"),
                }
            }
        });
    }
    join_until(workers, deadline + Duration::from_secs(11)).await;
    let mut latencies = latencies
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    latencies.sort_by(f64::total_cmp);
    println!(
        "attack heavy-rest body_bytes={} p50_ms={:.0} max_ms={:.0} {}",
        body.len(),
        percentile(&latencies, 0.5),
        latencies.last().copied().unwrap_or(0.0),
        tally.line()
    );
    Ok(())
}
