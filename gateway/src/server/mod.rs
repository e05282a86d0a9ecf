//! The listeners: the public port (HTTP/1.1 and h2c, split per request by content type) and the
//! admin port, with the `[limits]` every client connection lives under; graceful shutdown.
//!
//! Per connection: the protocol sniff is bounded by `sniff_timeout`, HTTP/1.1 header reads by
//! `header_read_timeout`, a connection without calls closes after `idle_timeout`, HTTP/2
//! clients are pinged (`keepalive_*`). Per request, before anything is forwarded: the header
//! list size, the global in-flight count, and whether the connection is closing. A client
//! that cancels calls faster than `max_client_resets` per `reset_window` is disconnected.

mod admission;
mod clients;
mod connection;
mod fairness;
mod io;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::{Layer, Service, ServiceExt};

use super::GatewayState;
use super::body::GatewayBody;
use super::config::{Limits, RestConfig};
use super::metrics::ListenerMetrics;
use super::proxy::RequestBody;
use super::reload::Swap;
use super::runtime::BoxedSpawn;
use super::tls::{ClientCert, ClientStream};
use super::wire::ClientAddr;
use super::{rest, web};
use admission::{Kind, Refusal, header_list_size};
use connection::{Answering, ConnState, InFlight, ResponseFuture, TrackedBody};

type TrackedFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub(crate) fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// HTTP/2 streams a client may reset before the gateway has accepted them, past which hyper
/// closes its connection (hyper's own default, set here so it stays put): such streams never
/// reach a handler, so nothing of them goes upstream.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// The largest HTTP/2 header block hyper reads at all: the configured limit is checked by the
/// gateway (so a gRPC client gets `RESOURCE_EXHAUSTED`, not a bare HTTP 431), up to this;
/// larger blocks are refused by hyper and h2 themselves.
fn header_block_cap(limit: usize) -> usize {
    limit.saturating_mul(4).max(256 * 1024)
}

/// The largest HTTP/1.1 request head hyper reads (and its read buffer): the headers up to the
/// configured limit, the longest query the REST routes take and 8 KiB for the request line's
/// path and the rest. A longer head could only be refused, and reading it to its end was the
/// cost: a client sending 60 KB URIs two at a time had hyper scan, validate and parse each
/// whole (and buffers grown to 64 KiB for it) before the 414, and took the well-behaved
/// client's p99 from 0.6 to 2.6 ms at 40% CPU (deep-query, bench/abuse.sh); refused once 32
/// KiB are in: 0.8-0.9 ms. Past it hyper answers 431 and closes the connection.
fn http1_head_cap(limits: &Limits, rest: &RestConfig) -> usize {
    limits
        .max_header_list_bytes
        .saturating_add(rest.max_query_bytes)
        .saturating_add(8 * 1024)
        // hyper's own floor.
        .max(8 * 1024)
}

/// hyper's settings for client connections, from `[limits]` and `[rest]`.
fn builder(limits: &Limits, rest: &RestConfig) -> auto::Builder<BoxedSpawn> {
    let cap = header_block_cap(limits.max_header_list_bytes);
    let mut builder = auto::Builder::new(BoxedSpawn);
    builder
        .http1()
        // Without a timer hyper silently ignores the header read timeout.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(http1_head_cap(limits, rest));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cap).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    builder
}

async fn http(
    router: axum::Router,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let response = router.oneshot(req).await?;
    Ok(response.map(GatewayBody::Http))
}

/// Everything that is not plain gRPC: gRPC-Web, REST bindings, then the HTTP router.
#[derive(Clone)]
struct HttpSide {
    state: Arc<GatewayState>,
    router: axum::Router,
}

impl tower::Service<Request<Incoming>> for HttpSide {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Incoming>) -> ResponseFuture {
        // Refused by the listener: answered here, inside CORS, so browsers can read it.
        if let Some(refusal) = req.extensions_mut().remove::<Refusal>() {
            let response = refusal.answer(Kind::of(&req), &req);
            return Box::pin(std::future::ready(Ok(response)));
        }
        let state = self.state.clone();
        if web::is_grpc_web(&req) {
            return Box::pin(async move { Ok(web::call(state, req).await) });
        }
        if let Some(matched) = state
            .rest
            .find(&state.routes, req.method(), req.uri().path())
        {
            // The REST call's server span, when tracing is on.
            let traced = crate::trace::start_rest(&state, &mut req);
            return Box::pin(async move {
                let response = rest::serve(state, matched, req).await;
                Ok(crate::trace::end_rest(response, traced).map(GatewayBody::Http))
            });
        }
        Box::pin(http(self.router.clone(), req))
    }
}

/// The HTTP side, behind CORS when configured.
#[derive(Clone)]
enum HttpService {
    Plain(HttpSide),
    Cors(Box<tower_http::cors::Cors<HttpSide>>),
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HttpService::Plain(_) => "HttpService::Plain",
            HttpService::Cors(_) => "HttpService::Cors",
        })
    }
}

impl HttpService {
    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        match self {
            HttpService::Plain(side) => side.clone().call(req),
            HttpService::Cors(cors) => Box::pin((**cors).clone().call(req)),
        }
    }
}

/// The state and what is built over it: what a config reload replaces as one.
#[derive(Debug)]
pub(crate) struct Serving {
    pub(crate) state: Arc<GatewayState>,
    /// The public port's HTTP side.
    http: HttpService,
    /// The admin port's router.
    admin: axum::Router,
    /// hyper's settings for new client connections (from `[limits]`).
    builder: Arc<auto::Builder<BoxedSpawn>>,
}

impl Serving {
    /// The public port's HTTP side (`router` behind CORS when configured) and the admin port's
    /// `admin` router, over `state`.
    pub(crate) fn new(state: Arc<GatewayState>, router: axum::Router, admin: axum::Router) -> Self {
        let side = HttpSide {
            state: state.clone(),
            router,
        };
        let http = match &state.cors {
            Some(cors) => HttpService::Cors(Box::new(cors.layer(side))),
            None => HttpService::Plain(side),
        };
        Serving {
            builder: Arc::new(builder(&state.config.limits, &state.config.rest)),
            state,
            http,
            admin,
        }
    }
}

/// The gateway's one swappable pointer: connections read it per request, so a reload reaches
/// calls on connections that were already open.
pub(crate) type Live = Swap<Serving>;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// Calls, REST, gRPC-Web, and the admin paths of `public_admin`.
    Public,
    /// The admin endpoints only.
    Admin,
    /// The protobuf bridge (`[protobuf_bridge]`): every call is protobuf.
    Bridge,
}

/// What every connection of one listener shares.
struct Ingress {
    port: Port,
    /// The current state; each request reads it.
    live: Arc<Live>,
    /// The public listener's counters (the same in every state).
    listener: Arc<ListenerMetrics>,
    /// Open connections of the admin port (the public port's are in the metrics).
    admin_open: AtomicI64,
    /// Calls in flight per client address (shared by the public and bridge listeners).
    clients: Arc<clients::Clients>,
    /// Whether the gateway is busy (see `fairness`).
    pressure: Arc<fairness::Pressure>,
}

/// Takes one connection off its listener's count when it ends.
struct Open(Arc<Ingress>);

/// How many connections the accept loop takes before it lets the rest of the event loop run
/// (HAProxy's `tune.maxaccept` and nginx's `multi_accept off` bound the same). Each new
/// connection is a task, and over HTTP/2 a handshake, queued ahead of the next turn of work on
/// the connections already open: left to tokio's budget, a flood of 5,000 connections was
/// taken 128 at a time, and an established client's calls waited behind each batch.
const ACCEPTS_PER_TURN: usize = 16;

/// A connection just accepted, for its task.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    /// When it was accepted: a task that starts long after says the gateway is busy.
    at: Instant,
    open: Open,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open().fetch_sub(1, Relaxed);
    }
}

/// Waits until the shutdown signal was given (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

impl Ingress {
    fn open(&self) -> &AtomicI64 {
        match self.port {
            Port::Public | Port::Bridge => &self.listener.open,
            Port::Admin => &self.admin_open,
        }
    }

    /// Accepts connections until the stop signal, then waits up to `grace` for them to end.
    async fn run(self: Arc<Self>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        let metrics = self.listener.clone();
        let mut connections = JoinSet::new();
        let spawn_stop = stop.clone();
        let mut accepted_in_turn = 0;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!("accept failed: {err}");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    // Refused connections count too: a flood past `max_connections` is accepted
                    // (and closed) at the same pace.
                    accepted_in_turn += 1;
                    if accepted_in_turn == ACCEPTS_PER_TURN {
                        // Back of the queue, after the event loop looks for ready sockets again.
                        accepted_in_turn = 0;
                        tokio::task::yield_now().await;
                    }
                    if self.port == Port::Public {
                        metrics.accepted.fetch_add(1, Relaxed);
                    }
                    let max_connections = self.live.get().state.config.limits.max_connections;
                    if self.open().load(Relaxed) >= max_connections as i64 {
                        // Closed at once: the client sees the connection end before any answer.
                        if self.port == Port::Public {
                            metrics.rejected.fetch_add(1, Relaxed);
                        }
                        drop(stream);
                        continue;
                    }
                    // An address that cancelled too many calls: closed before any work is done
                    // for it (the admin port is the operator's).
                    if self.port != Port::Admin && self.clients.refuses(peer.ip()) {
                        metrics.penalized.fetch_add(1, Relaxed);
                        drop(stream);
                        continue;
                    }
                    self.open().fetch_add(1, Relaxed);
                    let open = Open(self.clone());
                    let _ = stream.set_nodelay(true);
                    let accepted = Accepted { stream, peer, at: Instant::now(), open };
                    connections.spawn(self.clone().connection(accepted, spawn_stop.clone()));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = stopped(&mut stop) => break,
            }
        }
        drop(listener);
        let grace = self.live.get().state.config.grace_period;
        if self.port == Port::Public {
            tracing::info!(
                "shutting down: no new connections, waiting up to {grace:?} for in-flight calls"
            );
        }
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("grace period over; closing the remaining connections");
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }

    /// Serves one connection until it ends, closing it on the limits' terms.
    async fn connection(self: Arc<Self>, accepted: Accepted, mut stop: watch::Receiver<bool>) {
        // `_open` counts the connection as open until this returns.
        let Accepted {
            stream,
            peer,
            at,
            open: _open,
        } = accepted;
        // The connection keeps the settings of the state it was accepted under, but not that
        // state past its handshake: a state holds upstream pools, which a reload must be able to
        // close once their calls end, however long this connection lives.
        let serving = self.live.get();
        let limits = &serving.state.config.limits.clone();
        let builder = serving.builder.clone();
        let metrics = &self.listener;
        // A client making a busy gateway work more than its share waits its turn for new
        // connections too, before any handshake is done for it. The admin port is the
        // operator's: never throttled.
        let client = self.clients.client(peer.ip());
        let fair = (self.port != Port::Admin).then(|| client.clone());
        if let Some(client) = &fair {
            // A connection whose task starts late says the gateway is busy, as a call's does;
            // a client opening connections in a burst then is throttled before their handshakes.
            if let Some(lag) = limits.fairness_lag() {
                self.pressure.look(client, at, lag);
            }
            let turn = tokio::select! {
                turn = tokio::time::timeout(limits.sniff_timeout, client.share.turn()) => turn,
                () = stopped(&mut stop) => return,
            };
            if turn.is_err() {
                metrics.sniff_timeouts.fetch_add(1, Relaxed);
                return;
            }
            client.share.spend(fairness::CONNECTION_UNITS);
        }
        // TLS first (public port with `[tls]`), bounded like the protocol sniff.
        let (stream, cert) = match (&serving.state.tls, self.port) {
            (Some(tls), Port::Public | Port::Bridge) => {
                let accepted = tokio::select! {
                    accepted = tokio::time::timeout(limits.sniff_timeout, tls.accept(stream)) => accepted,
                    () = stopped(&mut stop) => return,
                };
                match accepted {
                    Ok(Ok(accepted)) => accepted,
                    Ok(Err(err)) => {
                        metrics.tls_handshake_failures.fetch_add(1, Relaxed);
                        tracing::debug!(%peer, "TLS handshake failed: {err}");
                        return;
                    }
                    Err(_) => {
                        metrics.sniff_timeouts.fetch_add(1, Relaxed);
                        tracing::debug!(%peer, "no TLS handshake within {:?}", limits.sniff_timeout);
                        return;
                    }
                }
            }
            _ => (ClientStream::Plain(stream), None),
        };
        let mut stream = fairness::Fair::new(stream, fair);
        let sniffed = tokio::select! {
            sniffed = tokio::time::timeout(limits.sniff_timeout, io::sniff(&mut stream)) => sniffed,
            () = stopped(&mut stop) => return,
        };
        let sniffed = match sniffed {
            Ok(Ok(sniffed)) if !sniffed.is_empty() => sniffed,
            // Closed before a byte, or failed: nothing to serve.
            Ok(_) => return,
            Err(_) => {
                metrics.sniff_timeouts.fetch_add(1, Relaxed);
                tracing::debug!(%peer, "no protocol preface within {:?}", limits.sniff_timeout);
                return;
            }
        };
        drop(serving);
        let conn = Arc::new(ConnState::new(self.live.clone(), client));
        let service = ConnService {
            ingress: self.clone(),
            conn: conn.clone(),
            peer,
            cert,
        };
        let io = io::Gathered::new(TokioIo::new(stream), sniffed);
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        // When a graceful shutdown started: the connection is dropped if it is still open,
        // without calls, `keepalive_timeout` later (a client that never answers the GOAWAY's
        // PING would otherwise keep it).
        let mut closing: Option<Instant> = None;
        loop {
            let wake = match closing {
                None => conn
                    .idle_deadline(limits.idle_timeout)
                    .unwrap_or_else(|| Instant::now() + limits.idle_timeout),
                Some(since) => since + limits.keepalive_timeout,
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, "connection ended: {err}");
                    }
                    break;
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    let idle = conn
                        .idle_deadline(limits.idle_timeout)
                        .is_some_and(|deadline| deadline <= Instant::now());
                    match closing {
                        None if idle => {
                            metrics.idle_closed.fetch_add(1, Relaxed);
                            tracing::debug!(%peer, "closing a connection idle for {:?}", limits.idle_timeout);
                            closing = Some(Instant::now());
                            connection.as_mut().graceful_shutdown();
                        }
                        Some(since) if since.elapsed() >= limits.keepalive_timeout
                            && conn.idle_deadline(limits.idle_timeout).is_some() => break,
                        Some(_) => closing = Some(Instant::now()),
                        None => {}
                    }
                }
                () = conn.closed(), if closing.is_none() => {
                    closing = Some(Instant::now());
                    connection.as_mut().graceful_shutdown();
                }
                () = stopped(&mut stop), if closing.is_none() => {
                    closing = Some(Instant::now());
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The service of one client connection.
struct ConnService {
    ingress: Arc<Ingress>,
    conn: Arc<ConnState>,
    peer: SocketAddr,
    /// The verified client certificate's subject (mTLS).
    cert: Option<ClientCert>,
}

impl ConnService {
    /// Whether a public request may go on: `Ok(None)` for the admin paths of `public_admin`
    /// (outside the in-flight count), `Ok(Some(call))` for a call in the count.
    fn admit<B>(
        &self,
        state: &GatewayState,
        req: &Request<B>,
        kind: Kind,
    ) -> Result<Option<InFlight>, Refusal> {
        if self.conn.is_closing() {
            return Err(Refusal::Closing);
        }
        let max = state.config.limits.max_header_list_bytes;
        if header_list_size(req, kind != Kind::Http) > max {
            state.listener.oversized_headers.fetch_add(1, Relaxed);
            return Err(Refusal::HeadersTooLarge { max });
        }
        if kind == Kind::Http
            && state
                .config
                .public_admin
                .iter()
                .any(|path| path == req.uri().path())
        {
            return Ok(None);
        }
        InFlight::admit(&self.conn)
            .map(Some)
            .ok_or(Refusal::Overloaded)
    }

    fn public(&self, mut req: Request<Incoming>) -> TrackedFuture {
        // The state as of this request: a reload reaches new calls on open connections.
        let serving = self.ingress.live.get();
        // The bridge listener answers gRPC only (anything else hears so from the bridge).
        let kind = match self.ingress.port {
            Port::Bridge => Kind::Grpc,
            _ => Kind::of(&req),
        };
        let admitted = self.admit(&serving.state, &req, kind);
        req.extensions_mut().insert(ClientAddr(self.peer));
        if let Some(tls) = &serving.state.tls {
            // Only the handshake says who the client is: a client-sent value never passes.
            let headers = req.headers_mut();
            headers.remove(&tls.identity_header);
            if let Some(cert) = &self.cert {
                if let Ok(value) = http::HeaderValue::from_str(&cert.0) {
                    headers.insert(tls.identity_header.clone(), value);
                }
                req.extensions_mut().insert(cert.clone());
            }
        }
        let call = match admitted {
            Ok(call) => call,
            Err(refusal) if kind == Kind::Grpc => {
                let response = refusal.grpc().map(TrackedBody::untracked);
                return Box::pin(std::future::ready(Ok(response)));
            }
            Err(refusal) => {
                req.extensions_mut().insert(refusal);
                None
            }
        };
        let response: ResponseFuture = if kind == Kind::Grpc
            && (self.ingress.port == Port::Bridge || super::bridge::wants(&serving.state, &req))
        {
            let state = serving.state.clone();
            Box::pin(async move { Ok(super::bridge::call(state, req).await) })
        } else if kind == Kind::Grpc {
            let state = serving.state.clone();
            Box::pin(async move {
                Ok(super::proxy::forward(state, req.map(RequestBody::Incoming)).await)
            })
        } else {
            serving.http.call(req)
        };
        let limits = &serving.state.config.limits;
        let turn = match (&call, limits.fairness_lag()) {
            (Some(_), Some(lag)) => Some(fairness::Turn::new(
                self.conn.client().clone(),
                self.ingress.pressure.clone(),
                lag,
            )),
            _ => None,
        };
        Box::pin(Answering::new(response, call, limits.cancel_linger, turn))
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, req: Request<Incoming>) -> TrackedFuture {
        match self.ingress.port {
            Port::Public | Port::Bridge => self.public(req),
            Port::Admin => {
                let call = InFlight::uncounted(&self.conn);
                let response = http(self.ingress.live.get().admin.clone(), req);
                Box::pin(async move {
                    let response = response.await?;
                    Ok(response.map(|body| TrackedBody::new(body, call)))
                })
            }
        }
    }
}

/// Makes room for `connections` more sockets at start. The soft open-files limit is raised to
/// what they need if it is lower (up to the hard limit, as Go's runtime does for every program):
/// the usual soft limit of 1,024 would refuse clients long before the default `max_connections`.
/// And the descriptor table is grown now, so that accepting them never has to: Linux grows it
/// by doubling as descriptors are taken, and in a process of several threads each growth waits
/// for an RCU grace period inside `accept`, with the event loop that called it. A flood of
/// 5,000 connections stalled every open connection's calls 10-35 ms at a time in its first
/// 130 ms, about once per doubling; a second flood on the same process, or a first one with the
/// table grown, not at all (`bench/abuse.sh`, conn-flood). The table never shrinks; each slot
/// is 8 bytes of the kernel's memory (128 KiB for the default `max_connections`).
#[cfg(target_os = "linux")]
fn reserve_descriptors(listener: &TcpListener, connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // Room for the upstream connections, the admin port and files besides the clients.
    let highest = u64::try_from(connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    let limits = getrlimit(Resource::Nofile);
    let mut soft = limits.current.unwrap_or(u64::MAX);
    if soft <= highest {
        let raised = (highest + 1).min(limits.maximum.unwrap_or(u64::MAX));
        let new = Rlimit {
            current: Some(raised),
            maximum: limits.maximum,
        };
        if raised > soft && setrlimit(Resource::Nofile, new).is_ok() {
            soft = raised;
        }
        if soft <= highest {
            tracing::warn!(
                "the open-files limit ({soft}) is under limits.max_connections + 256: \
                 connections past it are refused (raise the hard limit, `ulimit -Hn`)"
            );
        }
    }
    let Ok(highest) = i32::try_from(highest.min(soft.saturating_sub(1))) else {
        return;
    };
    // A copy of the listener at the highest slot, closed at once: the table keeps its size.
    if let Err(err) = rustix::io::fcntl_dupfd_cloexec(listener, highest) {
        tracing::debug!("cannot grow the descriptor table to {highest}: {err}");
    }
}

/// Serves the public listener (and the admin one, when given) until `signal` completes, then
/// stops accepting and lets in-flight calls finish for up to the grace period. Every request
/// reads `live`, so a reload (a swap) reaches new calls at once.
pub(crate) async fn serve(
    public: TcpListener,
    admin: Option<TcpListener>,
    bridge: Option<TcpListener>,
    live: Arc<Live>,
    listener: Arc<ListenerMetrics>,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    #[cfg(target_os = "linux")]
    reserve_descriptors(&public, live.get().state.config.limits.max_connections);
    let clients = Arc::new(clients::Clients::default());
    let pressure = Arc::new(fairness::Pressure::new(clients.clone(), listener.clone()));
    let fair_live = live.clone();
    let monitor = tokio::spawn(fairness::monitor(pressure.clone(), move || {
        fair_live.get().state.config.limits.fairness_lag()
    }));
    let releaser = tokio::spawn(fairness::releaser(pressure.clone()));
    let ingress = |port| {
        Arc::new(Ingress {
            port,
            live: live.clone(),
            listener: listener.clone(),
            admin_open: AtomicI64::new(0),
            clients: clients.clone(),
            pressure: pressure.clone(),
        })
    };
    let (stop_tx, stop) = watch::channel(false);
    let admin =
        admin.map(|listener| tokio::spawn(ingress(Port::Admin).run(listener, stop.clone())));
    let bridge =
        bridge.map(|listener| tokio::spawn(ingress(Port::Bridge).run(listener, stop.clone())));
    let public = ingress(Port::Public).run(public, stop);
    let signal = async move {
        signal.await;
        let _ = stop_tx.send(true);
        // Kept until the listeners are done: a dropped sender would also read as "stop".
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = public => {}
        () = signal => {}
    }
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    if let Some(bridge) = bridge {
        let _ = bridge.await;
    }
    monitor.abort();
    releaser.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of this process's descriptor table (`FDSize` of /proc/self/status).
    #[cfg(target_os = "linux")]
    fn descriptor_table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("FDSize:"))
            .and_then(|size| size.trim().parse().ok())
            .expect("FDSize")
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_descriptor_table_is_grown_at_start_for_the_connections_allowed() {
        use rustix::process::{Resource, getrlimit};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        let before = descriptor_table_size();
        // Twice what the table holds now, within the open-files limit.
        let connections = before * 2;
        let highest = (connections + 256).min(limit - 1);
        assert!(
            highest >= before,
            "the open-files limit leaves no room to test"
        );
        reserve_descriptors(&listener, usize::try_from(connections).expect("usize"));
        let after = descriptor_table_size();
        assert!(after > highest, "table of {after} slots, {highest} wanted");
        // The copy of the listener is closed again: nothing leaked.
        let copy = std::path::PathBuf::from(format!("/proc/self/fd/{highest}"));
        assert!(!copy.exists(), "descriptor {highest} is still open");
    }

    #[test]
    fn an_http1_head_may_hold_the_largest_headers_and_query_taken_and_no_more() {
        let (limits, rest) = (Limits::default(), RestConfig::default());
        assert_eq!(http1_head_cap(&limits, &rest), 32 * 1024);
        let small = Limits {
            max_header_list_bytes: 0,
            ..Limits::default()
        };
        let no_query = RestConfig {
            max_query_bytes: 0,
            ..RestConfig::default()
        };
        // hyper refuses (panics on) a buffer under 8 KiB.
        assert_eq!(http1_head_cap(&small, &no_query), 8 * 1024);
        let huge = Limits {
            max_header_list_bytes: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(http1_head_cap(&huge, &rest), usize::MAX);
    }
}
