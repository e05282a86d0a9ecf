//! Upstream pools: per upstream, a fixed set of HTTP/2 connections per endpoint, created at
//! start and shared by every call (many clients, few upstream connections).
//!
//! Each connection is a hyper HTTP/2 client connection (what a `tonic::transport::Channel`
//! wraps, without its request buffer and worker task in the call path): requests go straight
//! into the multiplexed connection. A connection that died is replaced on the next call that
//! picks it; connecting is bounded by the connect timeout, so a dead upstream answers
//! `UNAVAILABLE` instead of hanging.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::{Balance, UpstreamConfig};
use super::metrics::UpstreamMetrics;
use super::proxy::LimitedBody;
use super::wire::grpc_timeout_value;

/// Why a call could not be sent upstream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection within the connect timeout.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: Uri,
        /// Refused, timed out, ...
        reason: String,
    },
    /// The connection failed while sending the request.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// One upstream: its endpoints, their connections and its settings.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) name: String,
    pub(crate) max_message_size: usize,
    pub(crate) default_timeout: Option<HeaderValue>,
    pub(crate) metrics: Arc<UpstreamMetrics>,
    balance: Balance,
    endpoints: Vec<EndpointPool>,
    connections_per_endpoint: usize,
    next: AtomicUsize,
}

#[derive(Debug)]
struct EndpointPool {
    connections: Vec<Arc<Connection>>,
    in_flight: Arc<AtomicUsize>,
    next: AtomicUsize,
}

/// Counts a call in flight on one endpoint until dropped (least-loaded balancing).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// What a call holds until its response ends: the load counter and the concurrency permit.
#[derive(Debug)]
pub(crate) struct CallGuard {
    _in_flight: Option<InFlight>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Upstream {
    /// Creates every connection of `config` and tries to connect them now (bounded by the
    /// connect timeout); a connection that fails connects again on its first call.
    pub(crate) async fn connect(name: &str, config: &UpstreamConfig) -> Upstream {
        let metrics = Arc::new(UpstreamMetrics::new(name.to_owned()));
        let settings = Arc::new(Settings::new(config));
        let endpoints: Vec<EndpointPool> = config
            .endpoints
            .iter()
            .map(|uri| EndpointPool {
                connections: (0..config.connections)
                    .map(|_| Arc::new(Connection::new(uri, settings.clone(), metrics.clone())))
                    .collect(),
                in_flight: Arc::new(AtomicUsize::new(0)),
                next: AtomicUsize::new(0),
            })
            .collect();
        let mut attempts = tokio::task::JoinSet::new();
        for connection in endpoints.iter().flat_map(|e| &e.connections) {
            let connection = connection.clone();
            attempts.spawn(async move {
                if let Err(err) = connection.sender().await {
                    tracing::warn!("{err}; will connect again on the next call");
                }
            });
        }
        while attempts.join_next().await.is_some() {}
        Upstream {
            name: name.to_owned(),
            max_message_size: config.max_message_size,
            default_timeout: config.default_timeout.map(grpc_timeout_value),
            metrics,
            balance: config.balance,
            endpoints,
            connections_per_endpoint: config.connections,
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `req` on the next connection; the guard must live until the response ends.
    pub(crate) async fn send(
        &self,
        req: http::Request<LimitedBody>,
    ) -> Result<(http::Response<hyper::body::Incoming>, CallGuard), SendError> {
        let (connection, in_flight) = self.pick();
        let permit = match &connection.permits {
            Some(permits) => permits.clone().acquire_owned().await.ok(),
            None => None,
        };
        let guard = CallGuard {
            _in_flight: in_flight,
            _permit: permit,
        };
        let mut sender = connection.sender().await?;
        let req = connection.rewrite(req);
        let response = sender.send_request(req).await;
        if response.is_err() {
            connection.forget_if_closed();
        }
        Ok((response?, guard))
    }

    fn pick(&self) -> (&Connection, Option<InFlight>) {
        match self.balance {
            Balance::RoundRobin => {
                let index = self.next.fetch_add(1, Relaxed);
                let per = self.connections_per_endpoint;
                let endpoint = &self.endpoints[(index / per) % self.endpoints.len()];
                (&endpoint.connections[index % per], None)
            }
            Balance::LeastLoaded => {
                let start = self.next.fetch_add(1, Relaxed);
                let count = self.endpoints.len();
                let endpoint = (0..count)
                    .map(|offset| &self.endpoints[(start + offset) % count])
                    .min_by_key(|endpoint| endpoint.in_flight.load(Relaxed))
                    .unwrap_or(&self.endpoints[0]);
                endpoint.in_flight.fetch_add(1, Relaxed);
                let index = endpoint.next.fetch_add(1, Relaxed) % endpoint.connections.len();
                (
                    &endpoint.connections[index],
                    Some(InFlight(endpoint.in_flight.clone())),
                )
            }
        }
    }
}

/// Connection settings shared by an upstream's connections.
#[derive(Debug)]
struct Settings {
    connect_timeout: Duration,
    keepalive_interval: Option<Duration>,
    keepalive_timeout: Option<Duration>,
    limit: Option<usize>,
}

impl Settings {
    fn new(config: &UpstreamConfig) -> Self {
        Settings {
            connect_timeout: config.connect_timeout,
            keepalive_interval: config.keepalive_interval,
            keepalive_timeout: config.keepalive_timeout,
            limit: config.concurrency_limit,
        }
    }
}

/// One upstream HTTP/2 connection slot: reconnects when the connection has died.
#[derive(Debug)]
struct Connection {
    endpoint: Uri,
    scheme: Scheme,
    authority: Authority,
    settings: Arc<Settings>,
    metrics: Arc<UpstreamMetrics>,
    current: RwLock<Option<SendRequest<LimitedBody>>>,
    connecting: tokio::sync::Mutex<()>,
    /// In-flight calls allowed on this connection (`concurrency_limit`).
    permits: Option<Arc<Semaphore>>,
}

impl Connection {
    fn new(endpoint: &Uri, settings: Arc<Settings>, metrics: Arc<UpstreamMetrics>) -> Self {
        Connection {
            endpoint: endpoint.clone(),
            scheme: endpoint.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: endpoint
                .authority()
                .cloned()
                .unwrap_or_else(|| Authority::from_static("localhost")),
            permits: settings.limit.map(|limit| Arc::new(Semaphore::new(limit))),
            settings,
            metrics,
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    fn live(&self) -> Option<SendRequest<LimitedBody>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        current
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    fn forget_if_closed(&self) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if current.as_ref().is_some_and(SendRequest::is_closed) {
            *current = None;
        }
    }

    /// The live connection, connecting first when there is none (one attempt at a time).
    async fn sender(&self) -> Result<SendRequest<LimitedBody>, SendError> {
        match self.live() {
            Some(sender) => Ok(sender),
            // Boxed: keeps the rarely used connect state out of every call's future.
            None => Box::pin(self.reconnect()).await,
        }
    }

    async fn reconnect(&self) -> Result<SendRequest<LimitedBody>, SendError> {
        let _connecting = self.connecting.lock().await;
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let connect_error = |reason: String| SendError::Connect {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let sender =
            match tokio::time::timeout(self.settings.connect_timeout, self.handshake()).await {
                Ok(Ok(sender)) => sender,
                Ok(Err(err)) => {
                    self.metrics.connect_errors.fetch_add(1, Relaxed);
                    return Err(connect_error(err.to_string()));
                }
                Err(_) => {
                    self.metrics.connect_errors.fetch_add(1, Relaxed);
                    return Err(connect_error(format!(
                        "timed out after {:?}",
                        self.settings.connect_timeout
                    )));
                }
            };
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    async fn handshake(&self) -> io::Result<SendRequest<LimitedBody>> {
        let host = self.authority.host().trim_matches(['[', ']']);
        let port = self.authority.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        self.metrics.connects.fetch_add(1, Relaxed);
        self.metrics.open.fetch_add(1, Relaxed);
        self.metrics.has_connected.store(true, Relaxed);
        let io = TokioIo::new(CountedStream {
            stream,
            metrics: self.metrics.clone(),
        });
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        if let Some(interval) = self.settings.keepalive_interval {
            builder.keep_alive_interval(interval);
            builder.keep_alive_while_idle(true);
        }
        if let Some(timeout) = self.settings.keepalive_timeout {
            builder.keep_alive_timeout(timeout);
        }
        let (sender, connection) = builder.handshake(io).await.map_err(io::Error::other)?;
        let endpoint = self.endpoint.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%endpoint, "upstream connection ended: {err}");
            }
        });
        Ok(sender)
    }

    /// Points the request at this endpoint (scheme and authority), keeping path and query.
    fn rewrite(&self, mut req: http::Request<LimitedBody>) -> http::Request<LimitedBody> {
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
}

/// `grpc-timeout` header value for `timeout` (milliseconds, at most 8 digits).
/// A TCP stream that decrements the open-connections gauge when closed.
#[derive(Debug)]
pub(crate) struct CountedStream {
    stream: TcpStream,
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
