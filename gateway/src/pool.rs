//! Upstream pools: per upstream, a fixed set of HTTP/2 connections per endpoint, shared by every
//! call (many clients, few upstream connections).
//!
//! Each connection slot holds a hyper HTTP/2 client connection (what a
//! `tonic::transport::Channel` wraps, without its request buffer and worker task in the call
//! path). Because every client shares it, nothing one client does may break it for the others:
//!
//! - **Connecting happens in the background**, one attempt at a time per slot. After a
//!   connection is lost, calls wait for the first attempt (at most the connect timeout); once an
//!   attempt failed, calls fail at once with `UNAVAILABLE` (or use another live connection of the
//!   upstream) while the slot tries again with exponential backoff, up to
//!   `max_reconnect_backoff`.
//! - **Windows**: each stream may hold `stream_window` bytes of the connection's
//!   `connection_window`. A response body whose client has not taken the data handed to it for
//!   `slow_consumer_timeout` is dropped, which resets its upstream stream and gives its window
//!   back; when the stalled responses of one connection could hold half its window, the
//!   longest-stalled are dropped sooner (see [`Connection::sweep`]).
//! - **Refused calls are sent again**: a call the upstream did not process (its connection went
//!   away before it took the call: GOAWAY, `REFUSED_STREAM`, or the request never left) is sent
//!   once more on a fresh connection, with the request bytes kept for that (up to
//!   [`REPLAY_MAX`]).
//! - **Bounded queue**: a call waiting for a slot under `concurrency_limit` waits at most
//!   `queue_timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::config::{
    Balance, DnsConfig, HealthCheckConfig, OutlierConfig, RetryConfig, UpstreamConfig,
};
use super::discovery::{Resolver, Source, resolve_loop};
use super::health::{self, EndpointHealth};
use super::metrics::UpstreamMetrics;
use super::proxy::LimitedBody;
use super::retry::RetryBudget;
use super::routes::CallKind;
use super::runtime::{BoxedSpawn, lock};
use super::text::EndpointName;
use super::tls::{ClientStream, UpstreamTls};

/// Locally reset streams an upstream connection remembers (to ignore their late frames).
const UPSTREAM_MAX_PENDING_RESETS: usize = 10_000;

/// The first wait between connection attempts to an endpoint that is down; it doubles after
/// each failed attempt, up to `max_reconnect_backoff`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// A connection lost sooner than this after it connected is replaced only after
/// [`INITIAL_BACKOFF`], so an upstream that accepts and drops connections is not hammered.
const STABLE: Duration = Duration::from_secs(1);

/// Request bytes kept per call until the upstream answers, so that a call it refused can be
/// sent again. A larger request (a long client stream) is not retried.
pub(crate) const REPLAY_MAX: usize = 64 * 1024;

/// How long a response must have waited for its client before it counts as stalled for the
/// window budget of its connection (see [`Connection::sweep`]).
const PRESSURE_STALL: Duration = Duration::from_millis(500);

/// A connection that once had this many responses open at the same time is replaced once
/// fewer than [`RECYCLE_QUIET`] are open. h2 keeps what a connection's streams took at its peak
/// until the connection closes: its stream table (about 700 bytes a stream) and the slab of
/// received frames waiting to be read. 256 streams whose client did not read left 0.9 MB
/// allocated (3.5 KB a stream), 9,000 held streams 6.6 MB. A new connection takes new calls;
/// the old one ends with its last stream.
const RECYCLE_PEAK: usize = 128;

/// A connection that had this many responses cut off before their end since it was last
/// replaced (each leaves h2 a reset stream to remember for a while) is replaced too, once
/// fewer than [`RECYCLE_QUIET`] responses are open.
const RECYCLE_CUTS: usize = 1024;

/// See [`RECYCLE_PEAK`]: nearly idle, so that a busy connection is not replaced under load.
const RECYCLE_QUIET: usize = 8;

/// Why a call could not be sent upstream. The messages are for the log: clients get a generic
/// status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection to the endpoint: the attempt failed or timed out, or the endpoint is down
    /// and waiting for its next attempt.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: Uri,
        /// Refused, timed out, ...
        reason: String,
    },
    /// No free slot under `concurrency_limit` within `queue_timeout`.
    #[error("no free call slot (concurrency_limit) within the queue timeout of {0:?}")]
    Queue(Duration),
    /// A `dns://` upstream whose names resolved to no address.
    #[error("no address resolved for upstream `{0}`")]
    NoEndpoint(String),
    /// The connection failed while sending the request.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// One upstream: its name and limits, and its endpoints (shared with the tasks that resolve
/// and check them, which end when the upstream is dropped).
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) name: String,
    pub(crate) max_message_size: usize,
    /// The deadline of calls whose client sets none, for every call kind (`default_timeout`).
    pub(crate) default_deadline: Option<Duration>,
    pub(crate) metrics: Arc<UpstreamMetrics>,
    /// Whether `/readyz` waits for this upstream to have a healthy endpoint.
    pub(crate) required_for_ready: bool,
    shared: Arc<Shared>,
}

/// What an upstream's calls and its background tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    name: Arc<str>,
    balance: Balance,
    queue_timeout: Duration,
    connections_per_endpoint: usize,
    pub(crate) settings: Arc<Settings>,
    metrics: Arc<UpstreamMetrics>,
    /// The endpoints of `http(s)://` URIs, in config order.
    fixed: Vec<Arc<EndpointPool>>,
    /// The `dns://` endpoints and their resolver.
    sources: Vec<Source>,
    resolver: Option<Resolver>,
    /// The pools of each source's addresses (same order as `sources`).
    resolved: tokio::sync::Mutex<Vec<Vec<Arc<EndpointPool>>>>,
    /// Every endpoint that may take calls: `fixed`, then the resolved ones. Replaced whole.
    endpoints: RwLock<Arc<[Arc<EndpointPool>]>>,
    /// Endpoints no longer resolved whose calls are still in flight (for `/metrics`).
    draining: Mutex<Vec<(Uri, Vec<Weak<Connection>>)>>,
    next: AtomicUsize,
    retries: RetryConfig,
    budget: RetryBudget,
    /// Calls waiting for a connection to come up (bounded by `retries.max_held`).
    held: AtomicUsize,
    health_check: Option<HealthCheckConfig>,
    outlier: OutlierConfig,
}

/// One endpoint (address): its connections and its health.
#[derive(Debug)]
pub(crate) struct EndpointPool {
    pub(crate) uri: Uri,
    connections: Vec<Arc<Connection>>,
    in_flight: Arc<AtomicUsize>,
    next: AtomicUsize,
    pub(crate) health: Arc<EndpointHealth>,
}

impl EndpointPool {
    fn any_up(&self) -> bool {
        self.connections.iter().any(|connection| connection.is_up())
    }

    /// A connection for a health check: an up one, else the first (which waits for its
    /// attempt or fails at once).
    pub(crate) fn checker(&self) -> Option<Direct> {
        self.connections
            .iter()
            .find(|connection| connection.is_up())
            .or_else(|| self.connections.first())
            .map(|connection| Direct(connection.clone()))
    }
}

/// Counts a call in flight on one endpoint until dropped (least-loaded balancing).
#[derive(Debug)]
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Relaxed);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Counts a held call until dropped.
struct HeldCall<'a>(&'a AtomicUsize);

impl Drop for HeldCall<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// What `/metrics` shows of one endpoint.
#[derive(Debug)]
pub(crate) struct EndpointStatus {
    pub(crate) endpoint: String,
    pub(crate) state: &'static str,
    pub(crate) connections_up: usize,
}

impl Upstream {
    /// Creates every connection of `config` and waits for each one's first attempt (bounded by
    /// the connect timeout); a connection that fails keeps trying in the background. `dns://`
    /// endpoints are resolved first, with the resolver of `dns`. `tls` is the TLS client of
    /// its `https://` endpoints.
    ///
    /// # Errors
    ///
    /// The resolver cannot be built (the system's DNS configuration is unreadable).
    pub(crate) async fn connect(
        name: &str,
        config: &UpstreamConfig,
        tls: Option<UpstreamTls>,
        dns: &DnsConfig,
    ) -> Result<Upstream, String> {
        let metrics = Arc::new(UpstreamMetrics::new(name.to_owned()));
        let settings = Arc::new(Settings::new(config, tls));
        let mut sources = Vec::new();
        let mut fixed = Vec::new();
        for uri in &config.endpoints {
            if uri.scheme_str() == Some(DNS_SCHEME) {
                let host = uri.host().unwrap_or_default().to_owned();
                let port = uri.port_u16().unwrap_or(80);
                sources.push(Source { host, port });
                continue;
            }
            fixed.push(new_pool(uri.clone(), true, &settings, &metrics, config));
        }
        let resolver = if sources.is_empty() {
            None
        } else {
            Some(Resolver::new(dns)?)
        };
        let shared = Arc::new(Shared {
            name: Arc::from(name),
            balance: config.balance,
            queue_timeout: config.queue_timeout,
            connections_per_endpoint: config.connections,
            settings,
            metrics: metrics.clone(),
            endpoints: RwLock::new(fixed.clone().into()),
            resolved: tokio::sync::Mutex::new(vec![Vec::new(); sources.len()]),
            fixed,
            sources,
            resolver,
            draining: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            budget: RetryBudget::new(&config.retries),
            retries: config.retries.clone(),
            held: AtomicUsize::new(0),
            health_check: config.health_check.clone(),
            outlier: config.outlier_detection.clone(),
        });
        for pool in &shared.fixed {
            shared.start(pool);
        }
        shared.resolve_all().await;
        let all: Vec<Arc<Connection>> = shared
            .snapshot()
            .iter()
            .flat_map(|endpoint| endpoint.connections.iter().cloned())
            .collect();
        let mut first = tokio::task::JoinSet::new();
        for connection in all {
            first.spawn(async move {
                if let Err(err) = connection.sender().await {
                    tracing::warn!("{err}; connecting again in the background");
                }
            });
        }
        while first.join_next().await.is_some() {}
        if !shared.sources.is_empty() {
            tokio::spawn(resolve_loop(
                Arc::downgrade(&shared),
                config.resolve_interval,
            ));
        }
        Ok(Upstream {
            name: name.to_owned(),
            max_message_size: config.max_message_size,
            default_deadline: config.default_timeout,
            metrics,
            required_for_ready: config.required_for_ready,
            shared,
        })
    }

    /// Whether some endpoint is healthy and connected (what `/readyz` asks).
    pub(crate) fn has_healthy_endpoint(&self) -> bool {
        let now = now_ms();
        self.shared
            .snapshot()
            .iter()
            .any(|endpoint| endpoint.health.eligible(now) && endpoint.any_up())
    }

    /// Every endpoint's state, the draining ones included.
    pub(crate) fn endpoint_states(&self) -> Vec<EndpointStatus> {
        let now = now_ms();
        let mut states: Vec<EndpointStatus> = self
            .shared
            .snapshot()
            .iter()
            .map(|endpoint| EndpointStatus {
                endpoint: endpoint.uri.to_string(),
                state: endpoint.health.state(now).as_str(),
                connections_up: endpoint.connections.iter().filter(|c| c.is_up()).count(),
            })
            .collect();
        let mut draining = lock(&self.shared.draining);
        draining.retain(|(_, connections)| connections.iter().any(|c| c.strong_count() > 0));
        for (uri, connections) in draining.iter() {
            states.push(EndpointStatus {
                endpoint: uri.to_string(),
                state: "draining",
                connections_up: connections
                    .iter()
                    .filter_map(Weak::upgrade)
                    .filter(|c| c.is_up())
                    .count(),
            });
        }
        states
    }

    /// Sends `req` on the next connection. The response body holds the call's slot
    /// (`concurrency_limit`) until it ends, fails or is dropped.
    ///
    /// A call the upstream provably did not process goes again (`retries`): on another
    /// connection, or once one of the upstream's connections is up again (the call is held
    /// meanwhile); the caller bounds it all by the call's deadline.
    pub(crate) async fn send(
        &self,
        req: Request<LimitedBody>,
        call: SendOptions,
    ) -> Result<Answered, SendError> {
        let shared = &*self.shared;
        shared.budget.record_call();
        let (parts, body) = req.into_parts();
        let SendOptions {
            kind,
            logged,
            trace,
        } = call;
        let streaming = kind.map(CallKind::client_streaming);
        // What a second attempt needs besides the body (the first one consumes the request).
        let head = (
            parts.method.clone(),
            parts.uri.clone(),
            parts.version,
            parts.headers.clone(),
        );
        let (replay, body) = Replay::start(body);
        let mut pending = Request::from_parts(parts, body);
        let max_attempts = shared.retries.max_attempts;
        let mut attempt = 1;
        // One hold budget per call, however often it waits.
        let mut hold_until = None;
        loop {
            let Some(connection) = shared.pick() else {
                let failed = SendError::NoEndpoint(shared.name.to_string());
                if max_attempts <= 1 {
                    return Err(failed);
                }
                shared.hold(failed, &mut hold_until).await?;
                continue;
            };
            let in_flight = (shared.balance == Balance::LeastLoaded)
                .then(|| InFlight::start(&connection.endpoint_load));
            let permit = connection.permit(shared.queue_timeout).await?;
            let (mut sender, generation) = match connection.sender().await {
                Ok(ready) => ready,
                // Nothing was sent: wait for a connection of this upstream to come up.
                Err(failed @ SendError::Connect { .. }) if max_attempts > 1 => {
                    shared.hold(failed, &mut hold_until).await?;
                    continue;
                }
                Err(failed) => return Err(failed),
            };
            let mut req = connection.rewrite(pending);
            let span = trace.as_ref().map(|trace| {
                let index = connection.traceparent_indexing.next(generation);
                trace.attempt(
                    req.headers_mut(),
                    &shared.name,
                    &connection.name,
                    attempt,
                    index,
                )
            });
            // A stream that ends without an answer (dropped with its call, or reset) is a
            // cut-off stream for h2 to remember like any other.
            let unanswered = Unanswered(Some(connection.clone()));
            let mut failed = match sender.try_send_request(req).await {
                Ok(response) => {
                    unanswered.answered();
                    replay.settle();
                    // Passive detection: a trailers-only UNAVAILABLE counts against the
                    // endpoint, any other answer for it.
                    if response.headers().get("grpc-status").map(|v| v.as_bytes()) == Some(b"14") {
                        connection.health.failure(&connection.endpoint);
                    } else {
                        connection.health.success();
                    }
                    return Ok(Answered {
                        response: connection.watch(response, permit, in_flight),
                        attempt: logged.then(|| crate::access_log::Attempt {
                            endpoint: connection.name.clone(),
                            retries: attempt - 1,
                        }),
                        span,
                    });
                }
                Err(failed) => failed,
            };
            let returned = failed.take_message();
            if returned.is_some() {
                // It never left: no stream.
                unanswered.answered();
            } else {
                drop(unanswered);
            }
            let error = failed.into_error();
            if let Some(span) = span {
                span.failed(&error);
            }
            let refusal = match returned {
                // hyper gives the request back when it never left.
                Some(_) => Some(Refusal::Connection),
                None => refusal(&error),
            };
            if refusal == Some(Refusal::Connection) || sender.is_closed() {
                connection.lost(generation);
                connection.health.failure(&connection.endpoint);
            }
            let Some(_) = refusal.filter(|_| attempt < max_attempts) else {
                return Err(error.into());
            };
            pending = match returned {
                Some(req) => req,
                None => match replay.again(streaming) {
                    Some(body) => {
                        let (method, uri, version, headers) = head.clone();
                        let mut req = Request::new(body);
                        *req.method_mut() = method;
                        *req.uri_mut() = uri;
                        *req.version_mut() = version;
                        *req.headers_mut() = headers;
                        req
                    }
                    None => return Err(error.into()),
                },
            };
            if !shared.budget.try_retry() {
                shared
                    .metrics
                    .protection
                    .retry_budget_exhausted
                    .fetch_add(1, Relaxed);
                tracing::debug!(upstream = %shared.name, "retry budget exhausted: {error}");
                return Err(error.into());
            }
            tracing::debug!(
                upstream = %shared.name,
                "the upstream did not take a call ({error}); sending it again"
            );
            shared.metrics.protection.retries.fetch_add(1, Relaxed);
            attempt += 1;
        }
    }
}

impl Shared {
    /// The endpoints taking calls now.
    fn snapshot(&self) -> Arc<[Arc<EndpointPool>]> {
        self.endpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts a new endpoint's connection attempts and health checks.
    fn start(&self, pool: &Arc<EndpointPool>) {
        for connection in &pool.connections {
            connection.spawn_reconnect(Duration::ZERO);
        }
        let every = (PRESSURE_STALL.min(self.settings.slow_consumer_timeout) / 4)
            .max(Duration::from_millis(10));
        let connections = pool.connections.iter().map(Arc::downgrade).collect();
        tokio::spawn(sweep(connections, every));
        if let Some(check) = &self.health_check {
            tokio::spawn(health::check_loop(Arc::downgrade(pool), check.clone()));
        }
    }

    /// Resolves every `dns://` endpoint and updates the pools: new addresses get connections
    /// (they take calls once connected), gone ones drain. A failed resolution keeps the
    /// previous addresses.
    pub(crate) async fn resolve_all(&self) {
        let Some(resolver) = &self.resolver else {
            return;
        };
        // One resolution at a time: the lock is held across the lookups.
        let mut resolved = self.resolved.lock().await;
        let mut changed = false;
        for (index, source) in self.sources.iter().enumerate() {
            self.metrics.protection.resolutions.fetch_add(1, Relaxed);
            let addrs = match resolver.resolve(&source.host, source.port).await {
                Ok(addrs) => addrs,
                Err(err) => {
                    self.metrics.protection.resolve_errors.fetch_add(1, Relaxed);
                    tracing::warn!(upstream = %self.name, "{err}; keeping the last addresses");
                    continue;
                }
            };
            let uris: Vec<Uri> = addrs
                .iter()
                .filter_map(|addr| format!("http://{addr}").parse().ok())
                .collect();
            let pools = &mut resolved[index];
            let before = pools.len();
            let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(pools)
                .into_iter()
                .partition(|pool| uris.contains(&pool.uri));
            for pool in gone {
                tracing::info!(upstream = %self.name, endpoint = %pool.uri, "no longer resolved: draining");
                let connections = pool.connections.iter().map(Arc::downgrade).collect();
                lock(&self.draining).push((pool.uri.clone(), connections));
                changed = true;
            }
            *pools = kept;
            for uri in uris {
                if pools.iter().any(|pool| pool.uri == uri) {
                    continue;
                }
                tracing::info!(upstream = %self.name, endpoint = %uri, "resolved a new address");
                let pool = new_pool_from(uri, false, self);
                self.start(&pool);
                pools.push(pool);
                changed = true;
            }
            changed |= pools.len() != before;
        }
        if changed {
            let all: Vec<Arc<EndpointPool>> = self
                .fixed
                .iter()
                .chain(resolved.iter().flatten())
                .cloned()
                .collect();
            *self
                .endpoints
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = all.into();
            self.settings.any_up.notify_waiters();
        }
    }

    /// Waits (held) until one of the upstream's connections is up, until `until` (set to
    /// `hold_timeout` from now at a call's first wait), asking down connections to try again
    /// meanwhile; `failed` is the error when the wait ends without one, or when `max_held`
    /// calls wait already.
    async fn hold(
        &self,
        failed: SendError,
        until: &mut Option<tokio::time::Instant>,
    ) -> Result<(), SendError> {
        if self.retries.hold_timeout.is_zero() {
            return Err(failed);
        }
        if self.held.fetch_add(1, Relaxed) >= self.retries.max_held {
            self.held.fetch_sub(1, Relaxed);
            return Err(failed);
        }
        let _held = HeldCall(&self.held);
        self.metrics.protection.held.fetch_add(1, Relaxed);
        let deadline =
            *until.get_or_insert_with(|| tokio::time::Instant::now() + self.retries.hold_timeout);
        loop {
            let mut changed = pin!(self.settings.any_up.notified());
            changed.as_mut().enable();
            let endpoints = self.snapshot();
            if endpoints.iter().any(|endpoint| endpoint.any_up()) {
                return Ok(());
            }
            for connection in endpoints.iter().flat_map(|endpoint| &endpoint.connections) {
                connection.kick.notify_one();
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(failed);
            }
            let _ = tokio::time::timeout_at(deadline.min(now + INITIAL_BACKOFF), changed).await;
        }
    }

    /// The connection for the next call, among the healthy endpoints (else the connected
    /// ones, else all: a call then waits for a connection rather than failing for want of a
    /// healthy endpoint): the balancing policy's choice when it is connected, else another
    /// connected one, else the choice (which waits for its connection attempt or fails at
    /// once). `None` when the upstream has no endpoint at all (nothing resolved).
    fn pick(&self) -> Option<Arc<Connection>> {
        let endpoints = self.snapshot();
        let now = now_ms();
        let tiers: [&dyn Fn(&EndpointPool) -> bool; 3] = [
            &|endpoint| endpoint.health.eligible(now),
            &|endpoint| endpoint.health.is_admitted(),
            &|_| true,
        ];
        let (tier, count) = tiers.iter().find_map(|tier| {
            let count = endpoints.iter().filter(|endpoint| tier(endpoint)).count();
            (count > 0).then_some((tier, count))
        })?;
        let candidates = || endpoints.iter().filter(|endpoint| tier(endpoint));
        let start = self.next.fetch_add(1, Relaxed);
        let per = self.connections_per_endpoint;
        let (endpoint, index) = match self.balance {
            Balance::RoundRobin => ((start / per) % count, start % per),
            Balance::LeastLoaded => {
                // The least loaded, ties going to the first after a rotating start.
                let offset = start % count;
                let (endpoint, pool) =
                    candidates().enumerate().min_by_key(|(index, endpoint)| {
                        let rotated = (index + count - offset) % count;
                        (
                            !endpoint.any_up(),
                            endpoint.in_flight.load(Relaxed),
                            rotated,
                        )
                    })?;
                (endpoint, pool.next.fetch_add(1, Relaxed) % per)
            }
        };
        let pool = candidates().nth(endpoint)?;
        let chosen = pool.connections.get(index % pool.connections.len())?;
        if chosen.is_up() {
            return Some(chosen.clone());
        }
        let total = count * per;
        let flat = endpoint * per + index;
        let flattened: Vec<&Arc<Connection>> = candidates()
            .flat_map(|endpoint| endpoint.connections.iter())
            .collect();
        Some(
            (1..total)
                .map(|offset| flattened[(flat + offset) % total])
                .find(|connection| connection.is_up())
                .unwrap_or(chosen)
                .clone(),
        )
    }
}

/// A new endpoint's pool (not started).
fn new_pool(
    uri: Uri,
    admitted: bool,
    settings: &Arc<Settings>,
    metrics: &Arc<UpstreamMetrics>,
    config: &UpstreamConfig,
) -> Arc<EndpointPool> {
    build_pool(
        uri,
        admitted,
        settings,
        metrics,
        config.connections,
        &config.outlier_detection,
    )
}

fn new_pool_from(uri: Uri, admitted: bool, shared: &Shared) -> Arc<EndpointPool> {
    build_pool(
        uri,
        admitted,
        &shared.settings,
        &shared.metrics,
        shared.connections_per_endpoint,
        &shared.outlier,
    )
}

fn build_pool(
    uri: Uri,
    admitted: bool,
    settings: &Arc<Settings>,
    metrics: &Arc<UpstreamMetrics>,
    connections: usize,
    outlier: &OutlierConfig,
) -> Arc<EndpointPool> {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let health = Arc::new(EndpointHealth::new(admitted, outlier, metrics.clone()));
    Arc::new(EndpointPool {
        connections: (0..connections)
            .map(|_| {
                Arc::new(Connection::new(
                    &uri,
                    settings.clone(),
                    metrics.clone(),
                    in_flight.clone(),
                    health.clone(),
                ))
            })
            .collect(),
        uri,
        in_flight,
        next: AtomicUsize::new(0),
        health,
    })
}

/// The scheme of endpoints resolved through DNS.
const DNS_SCHEME: &str = "dns";

/// A connection as a tower service, for tonic clients of the gateway's own (health checks).
#[derive(Debug, Clone)]
pub(crate) struct Direct(Arc<Connection>);

impl tower::Service<Request<tonic::body::Body>> for Direct {
    type Response = Response<Incoming>;
    type Error = SendError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, SendError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        let connection = self.0.clone();
        Box::pin(async move {
            let (mut sender, _) = connection.sender().await?;
            let mut req =
                connection.rewrite(req.map(|body| Replay::start(LimitedBody::built(body)).1));
            *req.version_mut() = http::Version::HTTP_2;
            Ok(sender.send_request(req).await?)
        })
    }
}

/// How the upstream turned down a call it did not process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The connection is going away: the call goes again on a fresh one.
    Connection,
    /// Only the stream was refused (`REFUSED_STREAM`): the connection stays.
    Stream,
}

/// Whether hyper's error says the upstream did not process the request:
///
/// - the upstream refused the stream: `REFUSED_STREAM`;
/// - its connection is going away: h2 gives a remote GOAWAY error only to streams above the
///   GOAWAY's last stream id and to streams opened after it (streams the upstream took and then
///   lost end with other errors);
/// - or hyper dropped the request before it reached the wire: its dispatch task ended (the
///   connection went away) with the request still queued behind the upstream's stream limit.
///   For an HTTP/2 request this "dispatch gone" error is the only user error a response can end
///   with (the others are about HTTP/1 or CONNECT requests).
fn refusal(error: &hyper::Error) -> Option<Refusal> {
    if error.is_user() {
        return Some(Refusal::Connection);
    }
    let mut source = std::error::Error::source(error);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            if !h2.is_remote() {
                return None;
            }
            if h2.is_go_away() {
                return Some(Refusal::Connection);
            }
            return (h2.reason() == Some(h2::Reason::REFUSED_STREAM)).then_some(Refusal::Stream);
        }
        source = err.source();
    }
    None
}

/// Connection settings shared by an upstream's connections, and its wake-ups.
#[derive(Debug)]
pub(crate) struct Settings {
    connect_timeout: Duration,
    keepalive_interval: Option<Duration>,
    keepalive_timeout: Option<Duration>,
    limit: Option<usize>,
    stream_window: u32,
    connection_window: u32,
    slow_consumer_timeout: Duration,
    max_backoff: Duration,
    /// The TLS client of `https://` endpoints.
    tls: Option<UpstreamTls>,
    /// Woken when a connection of the upstream comes up, or its endpoints change (held calls
    /// wait for it).
    any_up: Notify,
    /// Woken when a connection attempt failed: `dns://` names are resolved again.
    pub(crate) resolve_now: Arc<Notify>,
}

impl Settings {
    fn new(config: &UpstreamConfig, tls: Option<UpstreamTls>) -> Self {
        Settings {
            connect_timeout: config.connect_timeout,
            keepalive_interval: config.keepalive_interval,
            keepalive_timeout: config.keepalive_timeout,
            limit: config.concurrency_limit,
            stream_window: config.stream_window,
            connection_window: config.connection_window,
            slow_consumer_timeout: config.slow_consumer_timeout,
            max_backoff: config.max_reconnect_backoff.max(INITIAL_BACKOFF),
            tls,
            any_up: Notify::new(),
            resolve_now: Arc::new(Notify::new()),
        }
    }
}

/// The state of a connection slot.
#[derive(Debug)]
enum Link {
    /// Connected: calls go to `sender`. The generation tells a stale loss report from one
    /// about the current connection.
    Up {
        sender: SendRequest<ReplayBody>,
        generation: u64,
        since: Instant,
    },
    /// The first attempt after start or after losing the connection is running: calls wait
    /// for it (at most the connect timeout).
    Connecting,
    /// The last attempt failed; the next one runs after a backoff. Calls fail at once.
    Down { reason: Arc<str> },
}

/// [`Link`] without the sender, for balancing without taking the lock.
const UP: u8 = 0;
const CONNECTING: u8 = 1;
const DOWN: u8 = 2;

/// What a call finds in a slot.
enum Current {
    Ready(SendRequest<ReplayBody>, u64),
    /// Up, but hyper says the connection is closed: report it lost.
    Closed(u64),
    Wait,
    Down(Arc<str>),
}

/// One upstream HTTP/2 connection slot.
#[derive(Debug)]
struct Connection {
    endpoint: Uri,
    /// The endpoint as the access log and spans name it.
    name: Arc<EndpointName>,
    scheme: Scheme,
    authority: Authority,
    settings: Arc<Settings>,
    metrics: Arc<UpstreamMetrics>,
    link: Mutex<Link>,
    /// The [`Link`] kind, readable without the lock.
    state: AtomicU8,
    /// Woken whenever the link changes.
    changed: Notify,
    generation: AtomicU64,
    /// The calls in flight on this connection's endpoint (least-loaded balancing).
    endpoint_load: Arc<AtomicUsize>,
    /// The endpoint's health, which calls and attempts on this connection report to.
    health: Arc<EndpointHealth>,
    /// Asks the reconnection task for an attempt now (calls are held for this connection).
    kick: Arc<Notify>,
    /// In-flight calls allowed on this connection (`concurrency_limit`).
    permits: Option<Arc<Semaphore>>,
    /// The response bodies of this connection, for the slow-consumer sweep.
    streams: Mutex<HashMap<u64, Arc<Watch>, foldhash::fast::RandomState>>,
    next_stream: AtomicU64,
    /// The most responses open at once since the connection was last replaced.
    peak_streams: AtomicUsize,
    /// Responses cut off before their end since the connection was last replaced.
    cut_streams: AtomicUsize,
    /// When the `traceparent` of a traced call may enter this connection's HPACK table.
    traceparent_indexing: TraceparentIndexing,
}

/// Which traced call of a connection sends a `traceparent` HPACK may index: the first on each
/// new link (whose table starts empty). Every other call sends its new value never-indexed, for
/// which h2 still refers to a name already in the table by index: the name is then not
/// Huffman-coded by the gateway, nor decoded and allocated again by the upstream, on every call
/// (callgrind, both sides together: about 1,000 instructions a call). Only one: h2 looks up a
/// never-indexed value among the table's entries of its name, so each indexed one more makes
/// every later call compare one more value (indexing one in 64 cost more than it saved). When
/// other headers churn the entry out of the table, calls send the name literally, as before.
#[derive(Debug)]
struct TraceparentIndexing {
    /// The link generation whose first traced call went.
    link: AtomicU64,
}

impl TraceparentIndexing {
    fn new() -> TraceparentIndexing {
        TraceparentIndexing {
            link: AtomicU64::new(u64::MAX),
        }
    }

    /// Whether the next traced call on link `generation` may have its `traceparent` indexed.
    fn next(&self, generation: u64) -> bool {
        // A lost race only means one more indexed value.
        self.link.load(Relaxed) != generation && self.link.swap(generation, Relaxed) != generation
    }
}

impl Connection {
    fn new(
        endpoint: &Uri,
        settings: Arc<Settings>,
        metrics: Arc<UpstreamMetrics>,
        endpoint_load: Arc<AtomicUsize>,
        health: Arc<EndpointHealth>,
    ) -> Self {
        Connection {
            endpoint: endpoint.clone(),
            name: EndpointName::new(endpoint),
            scheme: endpoint.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: endpoint
                .authority()
                .cloned()
                .unwrap_or_else(|| Authority::from_static("localhost")),
            permits: settings.limit.map(|limit| Arc::new(Semaphore::new(limit))),
            settings,
            metrics,
            link: Mutex::new(Link::Connecting),
            state: AtomicU8::new(CONNECTING),
            changed: Notify::new(),
            generation: AtomicU64::new(0),
            endpoint_load,
            health,
            kick: Arc::new(Notify::new()),
            streams: Mutex::new(HashMap::default()),
            next_stream: AtomicU64::new(0),
            peak_streams: AtomicUsize::new(0),
            cut_streams: AtomicUsize::new(0),
            traceparent_indexing: TraceparentIndexing::new(),
        }
    }

    fn is_up(&self) -> bool {
        self.state.load(Relaxed) == UP
    }

    fn set(&self, link: Link) {
        let health = match link {
            Link::Up { .. } => UP,
            Link::Connecting => CONNECTING,
            Link::Down { .. } => DOWN,
        };
        *lock(&self.link) = link;
        self.state.store(health, Relaxed);
        self.changed.notify_waiters();
        if health == UP {
            self.health.admit();
            self.settings.any_up.notify_waiters();
        }
    }

    fn current(&self) -> Current {
        match &*lock(&self.link) {
            Link::Up {
                sender, generation, ..
            } => {
                if sender.is_closed() {
                    Current::Closed(*generation)
                } else {
                    Current::Ready(sender.clone(), *generation)
                }
            }
            Link::Connecting => Current::Wait,
            Link::Down { reason } => Current::Down(reason.clone()),
        }
    }

    /// A slot under `concurrency_limit`, waiting at most `wait` for one.
    async fn permit(&self, wait: Duration) -> Result<Option<OwnedSemaphorePermit>, SendError> {
        let Some(permits) = &self.permits else {
            return Ok(None);
        };
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        match tokio::time::timeout(wait, permits.clone().acquire_owned()).await {
            Ok(permit) => Ok(permit.ok()),
            Err(_) => {
                self.metrics.protection.queue_timeouts.fetch_add(1, Relaxed);
                Err(SendError::Queue(wait))
            }
        }
    }

    /// The live connection; while the slot connects, waits for that attempt (at most the
    /// connect timeout); fails at once when the endpoint is down.
    async fn sender(self: &Arc<Self>) -> Result<(SendRequest<ReplayBody>, u64), SendError> {
        match self.current() {
            Current::Ready(sender, generation) => Ok((sender, generation)),
            // Boxed: keeps the rarely used wait out of every call's future.
            _ => Box::pin(self.wait_for_link()).await,
        }
    }

    async fn wait_for_link(self: &Arc<Self>) -> Result<(SendRequest<ReplayBody>, u64), SendError> {
        let deadline = tokio::time::Instant::now() + self.settings.connect_timeout;
        loop {
            // Registered before looking, so a change in between is not missed.
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            match self.current() {
                Current::Ready(sender, generation) => return Ok((sender, generation)),
                Current::Closed(generation) => {
                    self.lost(generation);
                    continue;
                }
                Current::Down(reason) => {
                    self.metrics.protection.failed_fast.fetch_add(1, Relaxed);
                    return Err(SendError::Connect {
                        endpoint: self.endpoint.clone(),
                        reason: format!("endpoint down ({reason})"),
                    });
                }
                Current::Wait => {}
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(SendError::Connect {
                    endpoint: self.endpoint.clone(),
                    reason: format!(
                        "no connection within the connect timeout of {:?}",
                        self.settings.connect_timeout
                    ),
                });
            }
        }
    }

    /// The connection of `generation` is gone (closed, or going away): connect again in the
    /// background, unless that already happened.
    fn lost(self: &Arc<Self>, generation: u64) {
        let delay = {
            let mut link = lock(&self.link);
            let Link::Up {
                generation: current,
                since,
                ..
            } = &*link
            else {
                return;
            };
            if *current != generation {
                return;
            }
            let delay = if since.elapsed() < STABLE {
                INITIAL_BACKOFF
            } else {
                Duration::ZERO
            };
            *link = Link::Connecting;
            delay
        };
        self.state.store(CONNECTING, Relaxed);
        self.changed.notify_waiters();
        self.spawn_reconnect(delay);
    }

    /// Starts the slot's reconnection task: attempts until one succeeds, with backoff.
    fn spawn_reconnect(self: &Arc<Self>, delay: Duration) {
        tokio::spawn(reconnect(Arc::downgrade(self), delay));
    }

    /// One connection attempt, bounded by the connect timeout.
    async fn attempt(self: &Arc<Self>) -> Result<(), String> {
        let timeout = self.settings.connect_timeout;
        let (sender, connection) = match tokio::time::timeout(timeout, self.handshake()).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(err)) => {
                self.metrics.connect_errors.fetch_add(1, Relaxed);
                return Err(err.to_string());
            }
            Err(_) => {
                self.metrics.connect_errors.fetch_add(1, Relaxed);
                return Err(format!("timed out after {timeout:?}"));
            }
        };
        let generation = self.generation.fetch_add(1, Relaxed) + 1;
        self.set(Link::Up {
            sender,
            generation,
            since: Instant::now(),
        });
        self.drive(connection, generation);
        Ok(())
    }

    /// Runs a connection until it ends, then reports generation `generation` lost.
    fn drive(
        self: &Arc<Self>,
        connection: http2::Connection<TokioIo<CountedStream>, ReplayBody, BoxedSpawn>,
        generation: u64,
    ) {
        let slot = Arc::downgrade(self);
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                let detail = crate::text::error_chain(&err);
                tracing::debug!(%endpoint, "upstream connection ended: {detail}");
            }
            if let Some(slot) = slot.upgrade() {
                slot.lost(generation);
            }
        });
    }

    /// A response of this connection ended (`cut`: before its end), leaving `open` open: after
    /// a surge of streams or of cut-off ones (see [`RECYCLE_PEAK`], [`RECYCLE_CUTS`]) the
    /// connection is replaced, once per surge.
    fn stream_ended(self: &Arc<Self>, open: usize, cut: bool) {
        let cuts = if cut {
            self.cut_streams.fetch_add(1, Relaxed) + 1
        } else {
            self.cut_streams.load(Relaxed)
        };
        if open >= RECYCLE_QUIET
            || (self.peak_streams.load(Relaxed) < RECYCLE_PEAK && cuts < RECYCLE_CUTS)
        {
            return;
        }
        // One replacement per surge: whoever resets both counts replaces the connection.
        let peak = self.peak_streams.swap(open, Relaxed);
        let cuts = self.cut_streams.swap(0, Relaxed);
        if peak < RECYCLE_PEAK && cuts < RECYCLE_CUTS {
            return;
        }
        lock(&self.streams).shrink_to_fit();
        let Link::Up { generation, .. } = &*lock(&self.link) else {
            return;
        };
        let generation = *generation;
        // Bodies are dropped on the runtime, except at shutdown, when there is nothing to do.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let slot = self.clone();
            runtime.spawn(async move { slot.replace(generation).await });
        }
    }

    /// Make-before-break: connects anew and, if generation `old` is still the slot's link,
    /// puts the new connection in its place. The old one serves its open streams to their end
    /// and closes once the last of them and of its senders is gone. A failed attempt keeps the
    /// old connection.
    async fn replace(self: Arc<Self>, old: u64) {
        let timeout = self.settings.connect_timeout;
        let (sender, connection) = match tokio::time::timeout(timeout, self.handshake()).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(err)) => {
                tracing::debug!(endpoint = %self.endpoint, "replacing a connection: {err}");
                return;
            }
            Err(_) => return,
        };
        let generation = self.generation.fetch_add(1, Relaxed) + 1;
        {
            let mut link = lock(&self.link);
            match &*link {
                Link::Up {
                    generation: current,
                    ..
                } if *current == old => {}
                // Lost or replaced meanwhile: this connection is not needed.
                _ => return,
            }
            *link = Link::Up {
                sender,
                generation,
                since: Instant::now(),
            };
        }
        self.drive(connection, generation);
        self.metrics.replaced.fetch_add(1, Relaxed);
        tracing::debug!(endpoint = %self.endpoint, "connection replaced after a surge of streams");
    }

    async fn handshake(
        &self,
    ) -> io::Result<(
        SendRequest<ReplayBody>,
        http2::Connection<TokioIo<CountedStream>, ReplayBody, BoxedSpawn>,
    )> {
        let host = self.authority.host().trim_matches(['[', ']']);
        let https = self.scheme == Scheme::HTTPS;
        let port = self
            .authority
            .port_u16()
            .unwrap_or(if https { 443 } else { 80 });
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        // An https endpoint is only ever spoken to through TLS: no cleartext fallback.
        let stream = match (&self.settings.tls, https) {
            (Some(tls), true) => tls.connect(host, stream).await?,
            (None, true) => {
                return Err(io::Error::other("no TLS client for an https endpoint"));
            }
            (_, false) => ClientStream::Plain(stream),
        };
        self.metrics.connects.fetch_add(1, Relaxed);
        self.metrics.open.fetch_add(1, Relaxed);
        self.metrics.has_connected.store(true, Relaxed);
        let io = TokioIo::new(CountedStream {
            stream,
            metrics: self.metrics.clone(),
        });
        let mut builder = http2::Builder::new(BoxedSpawn);
        builder.timer(TokioTimer::new());
        // Fixed windows (no BDP growth): a stream never holds more than `stream_window` of
        // the connection's `connection_window`.
        builder
            .adaptive_window(false)
            .initial_stream_window_size(self.settings.stream_window)
            .initial_connection_window_size(self.settings.connection_window)
            // Resets here are our clients' cancellations passed on, not an attack by the
            // upstream: h2's defaults (GOAWAY after 1,024 error resets, 10 pending local
            // resets) would let one client's reset storm close the connection every
            // other client shares. Client-side reset storms are capped at ingress instead
            // (`max_client_resets`).
            .max_concurrent_reset_streams(UPSTREAM_MAX_PENDING_RESETS)
            .max_local_error_reset_streams(None);
        if let Some(interval) = self.settings.keepalive_interval {
            builder.keep_alive_interval(interval);
            builder.keep_alive_while_idle(true);
        }
        if let Some(timeout) = self.settings.keepalive_timeout {
            builder.keep_alive_timeout(timeout);
        }
        builder.handshake(io).await.map_err(io::Error::other)
    }

    /// Points the request at this endpoint (scheme and authority), keeping path and query.
    fn rewrite(&self, mut req: Request<ReplayBody>) -> Request<ReplayBody> {
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        req
    }

    /// Wraps a response body for the slow-consumer sweep; the call's slot and load count go
    /// with it.
    fn watch(
        self: &Arc<Self>,
        response: Response<Incoming>,
        permit: Option<OwnedSemaphorePermit>,
        in_flight: Option<InFlight>,
    ) -> Response<UpstreamBody> {
        response.map(|body| {
            let watch = Arc::new(Watch {
                held: Mutex::new(Held {
                    body: Some(body),
                    _permit: permit,
                    _in_flight: in_flight,
                }),
                // The client's turn: a body nobody asks for (its client's window is full)
                // stalls from the start.
                handed: AtomicU64::new(now_ms()),
                consumer: Mutex::new(None),
                expired: AtomicBool::new(false),
            });
            let id = self.next_stream.fetch_add(1, Relaxed);
            let open = {
                let mut streams = lock(&self.streams);
                streams.insert(id, watch.clone());
                streams.len()
            };
            self.peak_streams.fetch_max(open, Relaxed);
            UpstreamBody {
                watch,
                connection: self.clone(),
                id,
                reported: false,
            }
        })
    }

    /// Drops the response bodies whose clients stopped taking data, and returns how many:
    ///
    /// - every body stalled for `slow_consumer_timeout`;
    /// - and, longest-stalled first, bodies stalled for [`PRESSURE_STALL`] while more of them
    ///   than fit in half the connection window (counting a full `stream_window` each) are
    ///   stalled: a stalled stream holds up to its window of the shared connection window, and
    ///   the other half must stay free for everyone else.
    fn sweep(&self) -> usize {
        let now = now_ms();
        let timeout = millis(self.settings.slow_consumer_timeout);
        let pressure = millis(PRESSURE_STALL.min(self.settings.slow_consumer_timeout));
        let mut stalled: Vec<(u64, Arc<Watch>)> = lock(&self.streams)
            .values()
            .filter_map(|watch| {
                let waited = watch.waited(now)?;
                (waited >= pressure).then(|| (waited, watch.clone()))
            })
            .collect();
        if stalled.is_empty() {
            return 0;
        }
        stalled.sort_unstable_by_key(|(waited, _)| std::cmp::Reverse(*waited));
        let fit = (self.settings.connection_window / 2 / self.settings.stream_window).max(1);
        let over = stalled.len().saturating_sub(fit as usize);
        let mut dropped = 0;
        for (index, (waited, watch)) in stalled.iter().enumerate() {
            let limit = if index < over { pressure } else { timeout };
            if *waited >= limit && watch.expire(now, limit) {
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::info!(
                endpoint = %self.endpoint,
                "reset {dropped} upstream responses their clients stopped reading"
            );
        }
        dropped
    }
}

/// Attempts to connect a slot until one succeeds, waiting `delay` first and then a doubling
/// backoff between attempts; calls held for the slot cut a wait short (no sooner than
/// [`INITIAL_BACKOFF`] after the last attempt). Ends when the slot is gone (the gateway was
/// dropped, or the endpoint is no longer resolved).
async fn reconnect(slot: Weak<Connection>, mut delay: Duration) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if !delay.is_zero() {
            let Some(connection) = slot.upgrade() else {
                return;
            };
            // The last attempt ended now; the wait holds no strong reference to the slot.
            let since = tokio::time::Instant::now();
            let kick = connection.kick.clone();
            drop(connection);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = kick.notified() => {
                    tokio::time::sleep_until(since + INITIAL_BACKOFF.min(delay)).await;
                }
            }
        }
        let Some(connection) = slot.upgrade() else {
            return;
        };
        let Err(reason) = connection.attempt().await else {
            return;
        };
        tracing::warn!(
            endpoint = %connection.endpoint,
            "cannot connect to the upstream: {reason}; next attempt in {backoff:?}"
        );
        connection.health.failure(&connection.endpoint);
        connection.settings.resolve_now.notify_one();
        connection.set(Link::Down {
            reason: reason.into(),
        });
        delay = backoff;
        backoff = (backoff * 2).min(connection.settings.max_backoff);
    }
}

/// Sweeps an upstream's connections for slow consumers every `every`, until they are gone.
async fn sweep(connections: Vec<Weak<Connection>>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut alive = false;
        for connection in connections.iter().filter_map(Weak::upgrade) {
            alive = true;
            let dropped = connection.sweep();
            if dropped > 0 {
                connection
                    .metrics
                    .protection
                    .slow_consumer_resets
                    .fetch_add(dropped as u64, Relaxed);
            }
        }
        if !alive {
            return;
        }
    }
}

/// Milliseconds since the first call (never 0, which means "not waiting" in [`Watch`]).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    millis(EPOCH.get_or_init(Instant::now).elapsed()) + 1
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What a response body holds of the shared connection, released when it ends or expires.
#[derive(Debug, Default)]
struct Held {
    body: Option<Incoming>,
    _permit: Option<OwnedSemaphorePermit>,
    _in_flight: Option<InFlight>,
}

/// A response body as the sweep sees it.
#[derive(Debug)]
struct Watch {
    held: Mutex<Held>,
    /// Since when the body has had something for its client that the client has not asked
    /// for ([`now_ms`]): since it was created, handed out data, or was woken by the upstream
    /// (data, trailers) after waiting; 0 while the client waits for the upstream, or once the
    /// body has ended.
    handed: AtomicU64,
    /// The task of the body's consumer, woken through [`Watch`]'s own waker.
    consumer: Mutex<Option<Waker>>,
    /// Dropped by the sweep: the client gets an error when it asks again.
    expired: AtomicBool,
}

/// The waker the upstream body gets: when the upstream has something new, the client's turn
/// starts (a consumer that does not come to take it is stalled), then the consumer is woken.
impl Wake for Watch {
    fn wake(self: Arc<Self>) {
        // h2 wakes (and drops) its wakers with its stream lock held, so this may drop the last
        // reference to the watch: harmless, as the watch no longer holds the upstream body
        // once its `UpstreamBody` is gone (dropping the body takes that lock).
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.handed.compare_exchange(0, now_ms(), Relaxed, Relaxed);
        let consumer = lock(&self.consumer).clone();
        if let Some(consumer) = consumer {
            consumer.wake();
        }
    }
}

impl Watch {
    /// How long the body has waited for its client to take more, if it is waiting.
    fn waited(&self, now: u64) -> Option<u64> {
        match self.handed.load(Relaxed) {
            0 => None,
            at => Some(now.saturating_sub(at)),
        }
    }

    /// Drops the upstream body if it still has waited at least `limit` ms: h2 then resets the
    /// stream and gives its window back to the connection.
    fn expire(&self, now: u64, limit: u64) -> bool {
        let mut held = lock(&self.held);
        if held.body.is_none() || self.waited(now).is_none_or(|waited| waited < limit) {
            return false;
        }
        self.expired.store(true, Relaxed);
        self.handed.store(0, Relaxed);
        let released = std::mem::take(&mut *held);
        drop(held);
        drop(released);
        true
    }
}

/// Why an upstream response body failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// The client did not take the data handed to it in time; the gateway reset the stream.
    #[error("the client did not read the response in time; the gateway reset it")]
    SlowConsumer,
    /// The upstream stream failed.
    #[error("{0}")]
    Upstream(#[from] hyper::Error),
}

impl BodyError {
    /// The status a client gets for this failure when the gateway caused it.
    pub(crate) fn own_status(&self) -> Option<Status> {
        match self {
            BodyError::SlowConsumer => Some(Status::resource_exhausted(
                "the response was not read within the gateway's slow_consumer_timeout",
            )),
            BodyError::Upstream(_) => None,
        }
    }
}

/// A request sent upstream whose response has not come yet: dropped so (its call was dropped,
/// or its stream reset), it counts as a cut-off stream of its connection, towards the
/// connection's replacement (see [`RECYCLE_CUTS`]).
struct Unanswered(Option<Arc<Connection>>);

impl Unanswered {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            let open = lock(&connection.streams).len();
            connection.stream_ended(open, true);
        }
    }
}

/// What [`Upstream::send`] needs to know of a call besides its request. Passed beside the
/// request rather than in its extensions: each extension is a boxed insert into a map, and
/// taking it out again (callgrind: about 250 instructions a call with both the access log and
/// tracing on).
#[derive(Debug, Default)]
pub(crate) struct SendOptions {
    /// The call's kind, when its route knows it: a call whose client streams its request never
    /// goes again once a message went out. Unknown (prefix routes): only when the whole request
    /// went out.
    pub(crate) kind: Option<CallKind>,
    /// The access log asks which endpoint answered ([`Answered::attempt`]).
    pub(crate) logged: bool,
    /// The call's server span: each attempt gets a client span (and sends its context
    /// upstream).
    pub(crate) trace: Option<crate::trace::CallTrace>,
}

/// An upstream's response, and what the attempt that got it knows. Beside the response rather
/// than in its extensions: the first extension of a response allocates its map (callgrind:
/// about 600 instructions a call with the access log or tracing on).
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) response: Response<UpstreamBody>,
    /// Which endpoint answered and how often the call went again, when the access log asked
    /// ([`SendOptions::logged`]).
    pub(crate) attempt: Option<crate::access_log::Attempt>,
    /// The answered attempt's client span, when the call is traced.
    pub(crate) span: Option<crate::trace::AttemptSpan>,
}

/// An upstream's response body, watched for clients that stop reading it. Dropping it (or its
/// end) releases the call's slot under `concurrency_limit`.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    watch: Arc<Watch>,
    connection: Arc<Connection>,
    id: u64,
    /// Whether the expiry error was returned already.
    reported: bool,
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        let open = {
            let mut streams = lock(&self.connection.streams);
            streams.remove(&self.id);
            streams.len()
        };
        // The upstream body goes now, in its consumer's context. Left in the watch, it would
        // live on in the stream's own waker (a cycle), and go when h2 drops that waker: with
        // h2's lock held, which dropping the body takes again (a deadlock).
        let released = std::mem::take(&mut *lock(&self.watch.held));
        let cut = released
            .body
            .as_ref()
            .is_some_and(|body| !body.is_end_stream());
        drop(released);
        self.connection.stream_ended(open, cut);
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let mut held = lock(&this.watch.held);
        let Some(body) = held.body.as_mut() else {
            if this.watch.expired.load(Relaxed) && !this.reported {
                this.reported = true;
                return Poll::Ready(Some(Err(BodyError::SlowConsumer)));
            }
            return Poll::Ready(None);
        };
        // The consumer asks: it is the upstream's turn until the upstream wakes the body.
        // The consumer's waker is stored first, so a wake during the poll is not lost.
        {
            let mut consumer = lock(&this.watch.consumer);
            if !consumer
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                *consumer = Some(cx.waker().clone());
            }
        }
        this.watch.handed.store(0, Relaxed);
        let waker = Waker::from(this.watch.clone());
        let polled = Pin::new(body).poll_frame(&mut Context::from_waker(&waker));
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
                this.watch.handed.store(now_ms(), Relaxed);
            }
            // Trailers, the end or a failure: the stream is over, and so is the call's hold.
            Poll::Ready(_) => {
                this.watch.handed.store(0, Relaxed);
                *held = Held::default();
            }
        }
        polled.map_err(BodyError::Upstream)
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.watch.held)
            .body
            .as_ref()
            .is_none_or(HttpBody::is_end_stream)
            && (self.reported || !self.watch.expired.load(Relaxed))
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.watch.held)
            .body
            .as_ref()
            .map_or_else(SizeHint::default, HttpBody::size_hint)
    }
}

/// One frame of a request body, as kept for a second attempt.
#[derive(Debug, Clone)]
enum Kept {
    Data(Bytes),
    Trailers(HeaderMap),
}

/// A call's request body, shared by its attempts.
#[derive(Debug)]
struct ReplayState {
    inner: LimitedBody,
    /// The frames taken so far, while a second attempt is possible.
    kept: Vec<Kept>,
    kept_bytes: usize,
    replayable: bool,
    /// Whether a message went out (a data frame was taken from the client).
    sent_data: bool,
    /// Whether the whole request was taken.
    ended: bool,
    /// The attempt allowed to read; earlier ones end.
    attempt: u8,
}

/// The call's handle on its request body: settles it once the upstream answered, or starts a
/// second attempt.
#[derive(Debug)]
struct Replay(Arc<Mutex<ReplayState>>);

impl Replay {
    fn start(inner: LimitedBody) -> (Replay, ReplayBody) {
        let shared = Arc::new(Mutex::new(ReplayState {
            inner,
            kept: Vec::new(),
            kept_bytes: 0,
            replayable: true,
            sent_data: false,
            ended: false,
            attempt: 0,
        }));
        let body = ReplayBody {
            shared: shared.clone(),
            attempt: 0,
            next: 0,
        };
        (Replay(shared), body)
    }

    /// The upstream answered: nothing will be sent again, so nothing more is kept.
    fn settle(&self) {
        let mut state = lock(&self.0);
        state.replayable = false;
        state.kept = Vec::new();
    }

    /// A body for a second attempt (the frames taken so far, then the rest), unless too much
    /// was taken to keep, or the call streams its request (`streaming`: `Some(true)`) and a
    /// message went out already. When the kind is unknown (`None`), a message that went out
    /// must have been the whole request.
    fn again(&self, streaming: Option<bool>) -> Option<ReplayBody> {
        let mut state = lock(&self.0);
        let partial = state.sent_data && !state.ended;
        let allowed = match streaming {
            Some(true) => !state.sent_data,
            Some(false) => true,
            None => !partial,
        };
        if !state.replayable || !allowed {
            return None;
        }
        state.attempt += 1;
        Some(ReplayBody {
            shared: self.0.clone(),
            attempt: state.attempt,
            next: 0,
        })
    }
}

/// The request body one attempt sends upstream.
#[derive(Debug)]
pub(crate) struct ReplayBody {
    shared: Arc<Mutex<ReplayState>>,
    attempt: u8,
    /// The next kept frame to send.
    next: usize,
}

impl HttpBody for ReplayBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let mut state = lock(&this.shared);
        if state.attempt != this.attempt {
            // An abandoned attempt: its stream is gone anyway.
            return Poll::Ready(None);
        }
        if let Some(kept) = state.kept.get(this.next) {
            this.next += 1;
            return Poll::Ready(Some(Ok(match kept.clone() {
                Kept::Data(data) => Frame::data(data),
                Kept::Trailers(trailers) => Frame::trailers(trailers),
            })));
        }
        let polled = ready!(Pin::new(&mut state.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                state.sent_data |= frame.is_data();
                state.ended |= frame.is_trailers() || state.inner.is_end_stream();
            }
            None => state.ended = true,
            Some(Err(_)) => {}
        }
        if state.replayable
            && let Some(Ok(frame)) = &polled
        {
            let kept = match frame.data_ref() {
                Some(data) => {
                    state.kept_bytes += data.len();
                    Kept::Data(data.clone())
                }
                None => Kept::Trailers(frame.trailers_ref().cloned().unwrap_or_default()),
            };
            if state.kept_bytes > REPLAY_MAX {
                state.replayable = false;
                state.kept = Vec::new();
            } else {
                state.kept.push(kept);
            }
            this.next = state.kept.len();
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        let state = lock(&self.shared);
        state.attempt != self.attempt
            || (self.next >= state.kept.len() && state.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // The bytes are the client's; any length it announced travels in its headers.
        SizeHint::default()
    }
}

/// A TCP stream (in TLS for https) that decrements the open-connections gauge when closed.
#[derive(Debug)]
pub(crate) struct CountedStream {
    stream: ClientStream,
    metrics: Arc<UpstreamMetrics>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.metrics.open.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use http_body::{Body as HttpBody, Frame};

    use super::{REPLAY_MAX, Replay, ReplayBody, TraceparentIndexing};
    use crate::proxy::LimitedBody;

    /// A request body of `chunks`, as a client would stream it.
    fn client_body(chunks: Vec<Vec<u8>>) -> LimitedBody {
        let frames = chunks
            .into_iter()
            .map(|chunk| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(chunk))));
        let stream = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        LimitedBody::built(tonic::body::Body::new(stream))
    }

    /// Polls up to `count` frames (`None` at the end).
    fn take(body: &mut ReplayBody, count: usize) -> Vec<Option<Vec<u8>>> {
        let mut cx = Context::from_waker(Waker::noop());
        (0..count)
            .map(|_| match Pin::new(&mut *body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => Some(frame.into_data().expect("data").to_vec()),
                Poll::Ready(None) => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_traceparent_is_indexed_once_per_link() {
        let indexing = TraceparentIndexing::new();
        let first_link: Vec<bool> = (0..100).map(|_| indexing.next(1)).collect();
        assert!(first_link[0]);
        assert!(!first_link[1..].contains(&true));
        // A new link's table is empty: its first call indexes again.
        assert!(indexing.next(2));
        assert!(!indexing.next(2));
    }

    #[test]
    fn a_second_attempt_sends_what_the_first_took_then_the_rest() {
        let (replay, mut first) = Replay::start(client_body(vec![vec![1], vec![2], vec![3]]));
        assert_eq!(take(&mut first, 2), [Some(vec![1]), Some(vec![2])]);
        // A call whose request is one message (unary, server streaming) may go again.
        let mut second = replay.again(Some(false)).expect("replayable");
        // The abandoned attempt ends; the new one starts over and goes on.
        assert_eq!(take(&mut first, 1), [None]);
        assert_eq!(
            take(&mut second, 4),
            [Some(vec![1]), Some(vec![2]), Some(vec![3]), None]
        );
        // Once the upstream answered, nothing is kept.
        replay.settle();
        assert!(replay.again(Some(false)).is_none());
    }

    #[test]
    fn a_streaming_request_goes_again_only_before_its_first_message() {
        let (replay, mut first) = Replay::start(client_body(vec![vec![1], vec![2]]));
        assert!(replay.again(Some(true)).is_some(), "nothing went out yet");
        let mut second = replay.again(Some(true)).expect("nothing went out yet");
        let _ = &mut first;
        assert_eq!(take(&mut second, 1), [Some(vec![1])]);
        assert!(replay.again(Some(true)).is_none(), "a message went out");
        // A request of unknown kind that is not complete is not sent again either; a unary
        // one is.
        assert!(replay.again(None).is_none(), "half of the request went out");
        assert!(replay.again(Some(false)).is_some());
    }

    #[test]
    fn a_large_request_is_not_kept() {
        let (replay, mut first) = Replay::start(client_body(vec![vec![0; REPLAY_MAX], vec![0; 2]]));
        assert_eq!(take(&mut first, 2).len(), 2);
        assert!(replay.again(Some(false)).is_none(), "over REPLAY_MAX");
    }
}
