//! Upstream pools: per upstream, a fixed set of pre-created `tonic::transport::Channel`s per
//! endpoint, shared by every call (many clients, few upstream HTTP/2 connections).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use super::config::{Balance, UpstreamConfig};
use super::metrics::UpstreamMetrics;

/// One upstream: its endpoints, their channels and its settings.
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
    channels: Vec<Channel>,
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

impl Upstream {
    /// Creates every channel of `config`, trying to connect each one now (bounded by the
    /// connect timeout); a channel that cannot connect yet connects on its first call.
    pub(crate) async fn connect(name: &str, config: &UpstreamConfig) -> Upstream {
        let metrics = Arc::new(UpstreamMetrics::new(name.to_owned()));
        let mut attempts = Vec::new();
        for uri in &config.endpoints {
            let endpoint = endpoint(uri, config);
            for _ in 0..config.connections {
                let connector = CountingConnector {
                    metrics: metrics.clone(),
                };
                let endpoint = endpoint.clone();
                attempts.push(tokio::spawn(async move {
                    match endpoint.connect_with_connector(connector.clone()).await {
                        Ok(channel) => channel,
                        Err(err) => {
                            tracing::warn!(
                                upstream = %endpoint.uri(),
                                "cannot connect yet ({err}); will connect on first call"
                            );
                            endpoint.connect_with_connector_lazy(connector)
                        }
                    }
                }));
            }
        }
        let mut channels = Vec::with_capacity(attempts.len());
        for (index, attempt) in attempts.into_iter().enumerate() {
            let channel = match attempt.await {
                Ok(channel) => channel,
                // The attempt task cannot panic; fall back to a lazy channel anyway.
                Err(_) => {
                    let uri = &config.endpoints[index / config.connections];
                    endpoint(uri, config).connect_with_connector_lazy(CountingConnector {
                        metrics: metrics.clone(),
                    })
                }
            };
            channels.push(channel);
        }
        let mut endpoints = Vec::with_capacity(config.endpoints.len());
        let mut channels = channels.into_iter();
        for _ in &config.endpoints {
            endpoints.push(EndpointPool {
                channels: channels.by_ref().take(config.connections).collect(),
                in_flight: Arc::new(AtomicUsize::new(0)),
                next: AtomicUsize::new(0),
            });
        }
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

    /// The channel for the next call, and its in-flight guard when balancing by load.
    pub(crate) fn pick(&self) -> (&Channel, Option<InFlight>) {
        match self.balance {
            Balance::RoundRobin => {
                let index = self.next.fetch_add(1, Relaxed);
                let per = self.connections_per_endpoint;
                let endpoint = &self.endpoints[(index / per) % self.endpoints.len()];
                (&endpoint.channels[index % per], None)
            }
            Balance::LeastLoaded => {
                let start = self.next.fetch_add(1, Relaxed);
                let count = self.endpoints.len();
                let endpoint = (0..count)
                    .map(|offset| &self.endpoints[(start + offset) % count])
                    .min_by_key(|endpoint| endpoint.in_flight.load(Relaxed))
                    .unwrap_or(&self.endpoints[0]);
                endpoint.in_flight.fetch_add(1, Relaxed);
                let channel = endpoint.next.fetch_add(1, Relaxed) % endpoint.channels.len();
                (
                    &endpoint.channels[channel],
                    Some(InFlight(endpoint.in_flight.clone())),
                )
            }
        }
    }
}

fn endpoint(uri: &Uri, config: &UpstreamConfig) -> Endpoint {
    let mut endpoint = Endpoint::from(uri.clone())
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true);
    if let Some(interval) = config.keepalive_interval {
        endpoint = endpoint.http2_keep_alive_interval(interval);
    }
    if let Some(timeout) = config.keepalive_timeout {
        endpoint = endpoint.keep_alive_timeout(timeout);
    }
    if let Some(limit) = config.concurrency_limit {
        endpoint = endpoint.concurrency_limit(limit);
    }
    endpoint
}

/// `grpc-timeout` header value for `timeout` (milliseconds, at most 8 digits).
fn grpc_timeout_value(timeout: std::time::Duration) -> HeaderValue {
    let millis = timeout.as_millis().min(99_999_999);
    HeaderValue::from_str(&format!("{millis}m")).unwrap_or(HeaderValue::from_static("99999999m"))
}

/// Opens TCP connections for a channel and keeps the upstream's connection counters.
#[derive(Debug, Clone)]
struct CountingConnector {
    metrics: Arc<UpstreamMetrics>,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TokioIo<CountedStream>>> + Send>>;

impl tower::Service<Uri> for CountingConnector {
    type Response = TokioIo<CountedStream>;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or("localhost").trim_matches(['[', ']']);
            let port = uri.port_u16().unwrap_or(80);
            match TcpStream::connect((host, port)).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    metrics.connects.fetch_add(1, Relaxed);
                    metrics.open.fetch_add(1, Relaxed);
                    metrics.has_connected.store(true, Relaxed);
                    Ok(TokioIo::new(CountedStream { stream, metrics }))
                }
                Err(err) => {
                    metrics.connect_errors.fetch_add(1, Relaxed);
                    Err(err)
                }
            }
        })
    }
}

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
