//! The gateway's configuration: the public types and their defaults here, the TOML file format
//! in `toml.rs`. Configs built in code and configs read from TOML go through the same
//! [`Config::validate`], so both fail the same way on the same mistake.
//!
//! Every key is documented in the [crate docs](crate); each limit below says what a client sees
//! when it hits it.

mod toml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::transcode::UnknownFields;
use crate::auth::{AuthConfig, RateLimitConfig};

/// A configuration that could not be loaded. Every message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read gateway config {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key or a value of the wrong type (the message names the key).
    #[error("invalid gateway config{}: {message}", in_file(.path))]
    Parse {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// toml's message, with the key path and the line.
        message: String,
    },
    /// A value that parsed but makes no sense.
    #[error("invalid gateway config{}: `{key}`: {message}", in_file(.path))]
    Invalid {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// The dotted key, e.g. `upstreams."demo.v1.Greeter".endpoints[0]`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn in_file(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" {}", path.display()),
        None => String::new(),
    }
}

/// How calls are spread over an upstream's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each call goes to the next connection in turn. The default.
    #[default]
    RoundRobin,
    /// Each call goes to the endpoint with the fewest calls in flight.
    LeastLoaded,
}

/// The whole gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on (HTTP/1.1 and h2c on one port).
    pub listen: SocketAddr,
    /// Where the admin endpoints (`/healthz`, `/readyz`, `/metrics`, `/routes`) answer: a
    /// listener of their own, loopback by default, so the route table and upstream names are
    /// not on the public port. `None` serves them nowhere. Default `127.0.0.1:9901`.
    pub admin_listen: Option<SocketAddr>,
    /// Admin paths also answered on the public port, e.g. `["/healthz", "/readyz"]` for a load
    /// balancer's probes. Default: none.
    pub public_admin: Vec<String>,
    /// How long in-flight calls may run after a shutdown signal.
    pub grace_period: Duration,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Path prefix → upstream name; the longest matching prefix wins over a route's default.
    pub route_prefixes: BTreeMap<String, String>,
    /// What one client may ask of the gateway (`[limits]`).
    pub limits: Limits,
    /// REST/JSON transcoding (`[rest]`).
    pub rest: RestConfig,
    /// CORS for REST and gRPC-Web (`[cors]`); none by default (no CORS headers, preflight
    /// requests are not answered).
    pub cors: Option<CorsConfig>,
    /// Authentication and authorization (`[auth]`). Without it, calls are forwarded as routes
    /// and prefixes say, as before; with it, every call is checked before it is forwarded.
    pub auth: Option<AuthConfig>,
    /// Token buckets per caller and route (`[rate_limits]`); none by default.
    pub rate_limits: RateLimitConfig,
    /// TLS on the public port (`[tls]`); none by default (cleartext HTTP/1.1 and h2c).
    pub tls: Option<TlsConfig>,
    /// Encoded `FileDescriptorSet` files describing the routed services (`tonic-msgpack
    /// schema`, or a build's `services.binpb`), for the protobuf bridge and server reflection.
    /// Default: none.
    pub descriptors: Vec<PathBuf>,
    /// Directories of `.proto` files compiled when the gateway starts (and on each reload),
    /// used as `descriptors` are: every `.proto` under each, with the directory as the include
    /// path (`google/api/annotations.proto` and `tonic_msgpack/options.proto` built in).
    /// Default: none.
    pub protos: Vec<PathBuf>,
    /// gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) from the descriptors, on the
    /// main port and the bridge listener. Default: off.
    pub reflection: bool,
    /// The protobuf bridge (`[protobuf_bridge]`), where stock protobuf clients call the
    /// MessagePack services; none by default.
    pub protobuf_bridge: Option<BridgeConfig>,
    /// Where the admin listener serves the OpenAPI 3.1 document of the REST bindings in the
    /// descriptors (e.g. `/openapi.json`); none by default.
    pub openapi_path: Option<String>,
    /// The resolver of `dns://` endpoints (`[dns]`).
    pub dns: DnsConfig,
    /// One JSON line per call (`[access_log]`); off by default.
    pub access_log: AccessLogConfig,
    /// Distributed tracing exported over OTLP (`[tracing]`); off by default.
    pub tracing: TracingConfig,
}

/// Distributed tracing (`[tracing]`): spans of every call (server) and of every upstream
/// attempt (client), in the trace the client's W3C `traceparent` names (else a new one),
/// exported over OTLP/gRPC. Needs the gateway's `otel` cargo feature (on by default).
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// Whether spans are recorded and exported at all; `false` by default (then a call pays
    /// one test, and the client's `traceparent` goes upstream untouched).
    pub enabled: bool,
    /// The OTLP/gRPC collector, e.g. `http://127.0.0.1:4317` (the default).
    pub otlp_endpoint: String,
    /// The share of new traces recorded, from 0.0 to 1.0 (the default). A client's sampled
    /// flag in `traceparent` decides for the traces it continues.
    pub sampling_ratio: f64,
    /// The `service.name` of the gateway's spans; `tonic-msgpack-gateway` by default.
    pub service_name: String,
    /// How often finished spans are sent to the collector; 5 s by default.
    pub export_interval: Duration,
    /// How long one export may take; 10 s by default.
    pub export_timeout: Duration,
    /// Finished spans waiting for export at most; more are dropped. 16384 by default (about
    /// 3 MB at most; at 2048, 15–30% of the spans were dropped at 40k traced calls a second).
    pub max_queue: usize,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            enabled: false,
            otlp_endpoint: "http://127.0.0.1:4317".into(),
            sampling_ratio: 1.0,
            service_name: "tonic-msgpack-gateway".into(),
            export_interval: Duration::from_secs(5),
            export_timeout: Duration::from_secs(10),
            max_queue: 16384,
        }
    }
}

/// Where the per-call access log goes (`[access_log]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogConfig {
    /// Whether calls are logged at all; `false` by default.
    pub enabled: bool,
    /// A file to append to, or `None` for standard output (`path = "stdout"`, the default).
    pub path: Option<PathBuf>,
    /// The share of calls logged, from 0.0 to 1.0 (the default).
    pub sample: f64,
    /// Routes never logged, by path (`/pkg.Service/Method`) or prefix label (`/pkg.Service/*`).
    pub off_routes: Vec<String>,
    /// Lines waiting for the writer at most; more are dropped and counted
    /// (`gateway_access_log_dropped_total`). 4096 by default.
    pub buffer: usize,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: false,
            path: None,
            sample: 1.0,
            off_routes: Vec::new(),
            buffer: 4096,
        }
    }
}

/// The resolver of `dns://name:port` endpoints (`[dns]`). The gateway asks these servers
/// itself (hickory-resolver) rather than through the C library, so a test or a sidecar can
/// answer on any address and port, and each answer is fresh (no cache between resolutions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DnsConfig {
    /// DNS servers (UDP, then TCP for truncated answers), e.g. `["127.0.0.1:5353"]`; empty
    /// (the default) reads the system's `/etc/resolv.conf` (its servers, search domains and
    /// `ndots`).
    pub servers: Vec<SocketAddr>,
}

/// Active health checks of an upstream's endpoints with `grpc.health.v1.Health/Check`
/// (`[upstreams.X.health_check]`), sent on the endpoint's own pooled connections.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    /// The service name asked about; `""` (the default) asks about the whole server.
    pub service: String,
    /// Time between two checks of one endpoint (default 5 s).
    pub interval: Duration,
    /// How long a check may take; a slower answer counts as a failure (default 1 s).
    pub timeout: Duration,
    /// Failed checks in a row (not `SERVING`, an error or a timeout) that make a healthy
    /// endpoint unhealthy: it then gets no new calls (default 3).
    pub unhealthy_threshold: u32,
    /// `SERVING` answers in a row that make an unhealthy endpoint healthy again (default 2).
    pub healthy_threshold: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            service: String::new(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }
    }
}

/// Passive outlier detection (`[upstreams.X.outlier_detection]`): an endpoint whose calls
/// fail in a row is ejected (no new calls) for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    /// Connection failures (refused, timed out, lost before the call was taken) or
    /// `UNAVAILABLE` answers in a row that eject an endpoint; 0 turns detection off
    /// (default 5).
    pub consecutive_failures: u32,
    /// The first ejection's length; it doubles with each ejection that follows without a
    /// successful call in between (default 1 s).
    pub base_ejection_time: Duration,
    /// The longest ejection (default 30 s).
    pub max_ejection_time: Duration,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(1),
            max_ejection_time: Duration::from_secs(30),
        }
    }
}

/// Retries of calls the upstream provably did not process (`[upstreams.X.retries]`): the
/// connection was refused, or it went away (GOAWAY) or refused the stream (`REFUSED_STREAM`)
/// before the upstream took the call. Such a call goes to another endpoint, or waits (held)
/// until one of the upstream's connections is up again, always within its deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Attempts per call, the first included; 1 turns retries and holding off (default 3).
    pub max_attempts: u32,
    /// Retries allowed, as a percentage of the calls of the last 10 seconds, on top of
    /// `min_retries_per_second` (default 20).
    pub budget_percent: u32,
    /// Retries always allowed per second, whatever the traffic (default 10).
    pub min_retries_per_second: u32,
    /// Calls that may wait at once for a connection of this upstream to come up; more fail
    /// at once with `UNAVAILABLE` (default 1,000).
    pub max_held: usize,
    /// The longest a call waits for a connection when its deadline is further away or it has
    /// none (default 3 s: about what a proxy's connect retries take, `3 × 1 s`); `0s` turns
    /// holding off (calls fail at once with `UNAVAILABLE` while no connection is up).
    pub hold_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            budget_percent: 20,
            min_retries_per_second: 10,
            max_held: 1000,
            hold_timeout: Duration::from_secs(3),
        }
    }
}

/// The protobuf bridge (`[protobuf_bridge]`): a listener of its own where plain
/// `application/grpc` means protobuf, transcoded to and from MessagePack by the descriptors
/// (on the main port it means MessagePack, and only `application/grpc+proto` is bridged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The bridge listener's address.
    pub listen: SocketAddr,
}

/// Whether a client must present a certificate when `client_ca_file` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A client without a verified certificate is refused at the handshake. The default.
    #[default]
    Required,
    /// A client may connect without a certificate; one it presents must verify.
    Optional,
}

/// TLS on the public port (`[tls]`): ALPN `h2` and `http/1.1`, so gRPC, gRPC-Web and REST
/// share the port. The certificate and key files are read again when they change (every few
/// seconds and on SIGHUP); open connections keep the certificate they started with.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1: RSA, ECDSA or Ed25519).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; sets mTLS on.
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: whether a certificate is required (default) or optional.
    pub client_auth: ClientAuth,
    /// The header that carries the verified client certificate's subject (e.g. `CN=…`)
    /// upstream; any value a client sent in it is removed. Default `x-client-cert-subject`.
    pub identity_header: String,
}

impl TlsConfig {
    /// TLS with `cert_file` and `key_file`, no client certificates.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file: None,
            client_auth: ClientAuth::Required,
            identity_header: "x-client-cert-subject".into(),
        }
    }

    fn check(&self) -> Result<(), (String, String)> {
        if http::HeaderName::from_bytes(self.identity_header.as_bytes()).is_err()
            || self.identity_header.starts_with("grpc-")
            || self.identity_header.starts_with(':')
        {
            return Err((
                "tls.identity_header".into(),
                format!(
                    "`{}` is not a lower-case header name outside `grpc-*`",
                    self.identity_header
                ),
            ));
        }
        Ok(())
    }
}

/// Bounds on what clients may ask (`[limits]`): every client shares the upstream connections,
/// so one client must not be able to hold or break them. Each field says what a client sees
/// when it hits the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request header list (names + values + 32 bytes each, as HTTP/2 counts it).
    /// Larger: HTTP 431 for HTTP/1.1, `RESOURCE_EXHAUSTED` for gRPC; nothing is forwarded.
    /// Default 16 KiB.
    pub max_header_list_bytes: usize,
    /// How long a client may take to send a request's headers (HTTP/1.1); the connection is
    /// closed after it. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a new connection may take to send its first bytes (which say HTTP/1.1 or
    /// HTTP/2); the connection is closed after it. Default 10 s.
    pub sniff_timeout: Duration,
    /// A client connection with no request in flight for this long is closed (HTTP/2 with a
    /// GOAWAY). Default 2 minutes.
    pub idle_timeout: Duration,
    /// HTTP/2 PING to clients after this much silence; `None` turns pings off. Default 30 s.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed. Default 20 s.
    pub keepalive_timeout: Duration,
    /// Client connections open at once; more are closed as soon as they are accepted.
    /// Default 10,000.
    pub max_connections: usize,
    /// Concurrent streams per client HTTP/2 connection (the SETTINGS value the gateway
    /// announces); HTTP/2 clients queue above it. Default 256.
    pub max_concurrent_streams: u32,
    /// Streams a client connection may cancel (RST_STREAM) within [`Limits::reset_window`];
    /// past it the gateway closes that connection (GOAWAY), so the resets never reach the
    /// shared upstream connections. Default 200.
    pub max_client_resets: u32,
    /// The window of [`Limits::max_client_resets`] and [`Limits::max_address_resets`].
    /// Default 10 s.
    pub reset_window: Duration,
    /// Calls one client address (an IPv4 address or an IPv6 /64, over all its connections) may
    /// cancel within [`Limits::reset_window`]; past it, new connections from that address are
    /// closed at once for `reset_window` (its open connections go on, each under
    /// [`Limits::max_client_resets`]), so a client that reconnects to storm again, or vanishes
    /// mid-call over thousands of connections, is kept out. Behind a proxy that hides client
    /// addresses every client shares one address: set `0` (off) there. Default 2,000.
    pub max_address_resets: u32,
    /// Calls in flight across all clients; past it new calls are shed at once with
    /// `RESOURCE_EXHAUSTED` (REST: 429 with `retry-after`). Default 10,000.
    pub max_in_flight: usize,
    /// The last this-many places of [`Limits::max_in_flight`] go only to clients with fewer
    /// calls in flight than [`Limits::light_client_calls`], so clients holding many streams
    /// cannot take every place: an ordinary client still gets in while they are refused. A
    /// client is an IPv4 address or an IPv6 /64, over all its connections (behind a proxy that
    /// hides client addresses every call comes from one client: turn this off there). Default
    /// (`None`): a tenth of `max_in_flight`; `Some(0)` turns it off.
    pub reserved_in_flight: Option<usize>,
    /// The deadline given to unary and client-streaming calls that carry no `grpc-timeout`,
    /// so an upstream that never answers cannot hold a call forever. Server- and
    /// bidi-streaming calls get none (they may legitimately live long), nor do paths the route
    /// table does not know (prefix routes: their kind is unknown); an upstream's own
    /// `default_timeout` wins. Default 30 s.
    pub default_timeout: Duration,
    /// Client `grpc-timeout` values above this are lowered to it. Default 1 hour.
    pub max_timeout: Duration,
    /// How long a call without a deadline (server- and bidi-streaming calls, paths of unknown
    /// kind such as prefix routes and the stand-alone binary's name routing) waits for the
    /// upstream's response headers before it ends with `DEADLINE_EXCEEDED`, so an upstream that
    /// accepts calls and never answers cannot hold them forever. A stream that has its headers
    /// may then run as long as it likes. `0` turns this off (for upstreams whose streams send
    /// nothing, headers included, for longer). Default 30 s.
    pub response_header_timeout: Duration,
    /// How long a call its client cancelled before the upstream's response headers arrived
    /// goes on waiting for them before its upstream stream is reset. Servers close a whole
    /// connection (HTTP/2 GOAWAY) over a burst of streams reset before they were accepted, so
    /// the gateway lets them be accepted first; the call keeps its place in `max_in_flight`
    /// meanwhile. `0` resets at once. Default 1 s, at most 60 s. A client gone in the middle
    /// of its request has its upstream stream reset after the upstream answered, or after at
    /// most this or 100 ms, whichever is shorter.
    pub cancel_linger: Duration,
    /// When work waits this long for the gateway's event loop (a call's task first runs this
    /// long after the call was admitted, or a probe every 10 ms comes back this late), the
    /// gateway is busy, and a client making it work more than its share (a burst of more than
    /// 64 calls in 10 ms while other clients are connected, or more than 1.5 times the mean of
    /// the active clients) is throttled: its calls, reads and new connections wait, and are let
    /// go a few at a time, each time round the event loop, in between the other clients' work.
    /// Counted per client address as for [`Limits::reserved_in_flight`]; a lone client is never
    /// throttled. `0` turns this off. Default 2 ms.
    pub busy_lag: Duration,
}

impl Limits {
    /// How long a call without a deadline waits for its response headers: `None` when
    /// [`Limits::response_header_timeout`] is `0` (off).
    pub fn response_header_wait(&self) -> Option<Duration> {
        (!self.response_header_timeout.is_zero()).then_some(self.response_header_timeout)
    }

    /// How late the event loop must run for clients to be held to fair shares: `None` when
    /// [`Limits::busy_lag`] is `0` (off).
    pub fn fairness_lag(&self) -> Option<Duration> {
        (!self.busy_lag.is_zero()).then_some(self.busy_lag)
    }

    /// The places of `max_in_flight` kept for connections with few calls in flight.
    pub fn reserved_in_flight(&self) -> usize {
        self.reserved_in_flight
            .unwrap_or(self.max_in_flight / 10)
            .min(self.max_in_flight.saturating_sub(1))
    }

    /// Below how many calls in flight a client may take the reserved places: a quarter of
    /// them, at least 32. Not lower: an ordinary client's calls pile up while an attack slows
    /// the gateway down, and it must still count as ordinary then.
    pub fn light_client_calls(&self) -> usize {
        (self.reserved_in_flight() / 4).max(32)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_list_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            sniff_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
            max_connections: 10_000,
            max_concurrent_streams: 256,
            max_client_resets: 200,
            reset_window: Duration::from_secs(10),
            max_address_resets: 2_000,
            max_in_flight: 10_000,
            reserved_in_flight: None,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(3600),
            response_header_timeout: Duration::from_secs(30),
            cancel_linger: Duration::from_secs(1),
            busy_lag: Duration::from_millis(2),
        }
    }
}

/// REST/JSON settings (`[rest]`).
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// JSON fields the request type does not have: ignored (default) or rejected with 400.
    pub unknown_fields: UnknownFields,
    /// Largest REST request body; larger ones answer 413 (default 4 MiB).
    pub max_body_bytes: usize,
    /// Longest query string; longer ones answer 414 (default 8 KiB).
    pub max_query_bytes: usize,
    /// Most query parameters; more answer 400 (default 128).
    pub max_query_params: usize,
    /// Deepest nesting of a JSON request (objects and arrays, also from dotted query keys such
    /// as `a.b.c=1`); deeper ones answer 400 (default 64).
    pub max_json_depth: usize,
    /// Request bodies parsed at once; others wait their turn, so large bodies cannot take
    /// every worker thread from other calls (default: the number of CPUs).
    pub parse_concurrency: usize,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            unknown_fields: UnknownFields::Ignore,
            max_body_bytes: 4 * 1024 * 1024,
            max_query_bytes: 8 * 1024,
            max_query_params: 128,
            max_json_depth: 64,
            parse_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// CORS settings for browsers (`[cors]`), applied to REST and gRPC-Web.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Origins allowed to call, e.g. `https://app.example`; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Request headers allowed besides the defaults (`content-type`, `x-grpc-web`,
    /// `x-user-agent`, `grpc-timeout`, `authorization`).
    pub allowed_headers: Vec<String>,
    /// Response headers exposed besides the defaults (`grpc-status`, `grpc-message`,
    /// `grpc-status-details-bin`).
    pub exposed_headers: Vec<String>,
    /// How long browsers may cache a preflight answer (default 10 minutes).
    pub max_age: Duration,
    /// Whether to send `access-control-allow-credentials: true` (not with `*` origins).
    pub allow_credentials: bool,
}

impl CorsConfig {
    /// CORS for `origins` (`["*"]` for any), with the default headers.
    pub fn new(origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        CorsConfig {
            allowed_origins: origins.into_iter().map(Into::into).collect(),
            allowed_headers: Vec::new(),
            exposed_headers: Vec::new(),
            max_age: Duration::from_secs(600),
            allow_credentials: false,
        }
    }
}

/// Where one service runs and how to talk to it.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Endpoint URIs: `http://host:port`, `https://host:port`, or `dns://name:port`: every
    /// address the name resolves to (A and AAAA records), each with its own connections,
    /// resolved again every `resolve_interval`.
    pub endpoints: Vec<http::Uri>,
    /// HTTP/2 connections per endpoint, created at start and reused by every call.
    pub connections: usize,
    /// How calls are spread over the endpoints.
    pub balance: Balance,
    /// How long to wait for a TCP connection before answering `UNAVAILABLE`.
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive ping interval (none by default).
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for a keepalive ping's answer.
    pub keepalive_timeout: Option<Duration>,
    /// In-flight calls per connection (unlimited by default).
    pub concurrency_limit: Option<usize>,
    /// How long a call may wait behind `concurrency_limit` before it fails with
    /// `RESOURCE_EXHAUSTED` (default 5 s).
    pub queue_timeout: Duration,
    /// Largest gRPC message in either direction; larger ones end the call with
    /// `RESOURCE_EXHAUSTED`.
    pub max_message_size: usize,
    /// The deadline sent upstream when a client sets no `grpc-timeout`, for every call kind
    /// (default: none, [`Limits::default_timeout`] applies to unary and client-streaming calls).
    pub default_timeout: Option<Duration>,
    /// HTTP/2 receive window of each stream on an upstream connection. Much smaller than the
    /// connection window, so a client that stops reading holds at most this much of it: one
    /// client connection's `max_concurrent_streams` streams hold a quarter of it at most with
    /// the defaults (default 64 KiB; raise it for upstreams a long round trip away, since a
    /// stream moves at most one window per round trip).
    pub stream_window: u32,
    /// HTTP/2 receive window of each upstream connection, which also bounds the response
    /// bytes buffered for it (default 64 MiB).
    pub connection_window: u32,
    /// A response the client has not read for this long is reset, so its stream's window is
    /// given back to the shared connection; the client then gets `RESOURCE_EXHAUSTED`. When
    /// the stalled responses of one connection could hold half its window, the longest-stalled
    /// are reset sooner (default 30 s).
    pub slow_consumer_timeout: Duration,
    /// The longest wait between reconnection attempts to an endpoint that is down; attempts
    /// start at 100 ms and double up to this (default 5 s).
    pub max_reconnect_backoff: Duration,
    /// CA certificates (PEM) that `https://` endpoints must chain to; default: the Mozilla
    /// roots of the `webpki-roots` crate (built in, no system store needed).
    pub ca_file: Option<PathBuf>,
    /// The gateway's client certificate chain (PEM) for `https://` endpoints that ask for one.
    pub client_cert_file: Option<PathBuf>,
    /// The key of `client_cert_file` (PEM).
    pub client_key_file: Option<PathBuf>,
    /// How often `dns://` endpoints are resolved again (default 5 s); they are also resolved
    /// when a connection to one of their addresses fails.
    pub resolve_interval: Duration,
    /// Active health checks (`grpc.health.v1`); none by default.
    pub health_check: Option<HealthCheckConfig>,
    /// Passive outlier detection (on by default).
    pub outlier_detection: OutlierConfig,
    /// Retries and holding of calls the upstream did not process.
    pub retries: RetryConfig,
    /// Whether `/readyz` answers 503 while this upstream has no healthy endpoint (default
    /// true).
    pub required_for_ready: bool,
}

impl UpstreamConfig {
    /// One connection to each of `endpoints`, with the default settings.
    pub fn new(endpoints: impl IntoIterator<Item = http::Uri>) -> Self {
        UpstreamConfig {
            endpoints: endpoints.into_iter().collect(),
            ..UpstreamConfig::default()
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            endpoints: Vec::new(),
            connections: 1,
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: None,
            keepalive_timeout: None,
            concurrency_limit: None,
            queue_timeout: Duration::from_secs(5),
            max_message_size: 4 * 1024 * 1024,
            default_timeout: None,
            stream_window: 64 * 1024,
            connection_window: 64 * 1024 * 1024,
            slow_consumer_timeout: Duration::from_secs(30),
            max_reconnect_backoff: Duration::from_secs(5),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            resolve_interval: Duration::from_secs(5),
            health_check: None,
            outlier_detection: OutlierConfig::default(),
            retries: RetryConfig::default(),
            required_for_ready: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9901))),
            public_admin: Vec::new(),
            grace_period: Duration::from_secs(10),
            upstreams: BTreeMap::new(),
            route_prefixes: BTreeMap::new(),
            limits: Limits::default(),
            rest: RestConfig::default(),
            cors: None,
            auth: None,
            rate_limits: RateLimitConfig::default(),
            tls: None,
            descriptors: Vec::new(),
            protos: Vec::new(),
            reflection: false,
            protobuf_bridge: None,
            openapi_path: None,
            dns: DnsConfig::default(),
            access_log: AccessLogConfig::default(),
            tracing: TracingConfig::default(),
        }
    }
}

/// The admin paths, for [`Config::public_admin`].
pub(crate) const ADMIN_PATHS: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/routes"];

impl Config {
    /// Adds (or replaces) the upstream `name`.
    pub fn upstream(mut self, name: &str, upstream: UpstreamConfig) -> Self {
        self.upstreams.insert(name.to_owned(), upstream);
        self
    }

    /// Loads a TOML file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        toml::parse(&text, Some(path))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::parse(text, None)
    }

    /// Checks every value: what [`Config::from_file`] checks, for configs built in code.
    /// [`GatewayBuilder::build`](crate::GatewayBuilder::build) calls it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|(key, message)| ConfigError::Invalid {
            path: None,
            key,
            message,
        })
    }

    /// `Err((key, message))` for the first bad value.
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        for (name, upstream) in &self.upstreams {
            upstream.check(&format!("upstreams.{}", quote_key(name)))?;
        }
        for (prefix, upstream) in &self.route_prefixes {
            let key = format!("route_prefixes.{}", quote_key(prefix));
            if !prefix.starts_with('/') {
                return Err((
                    key,
                    "a route prefix is a gRPC path prefix and starts with `/`, e.g. \"/demo.v1.\""
                        .into(),
                ));
            }
            if !self.upstreams.contains_key(upstream) {
                return Err((
                    key,
                    format!(
                        "no upstream named `{upstream}`; add [upstreams.{}]",
                        quote_key(upstream)
                    ),
                ));
            }
        }
        for (index, path) in self.public_admin.iter().enumerate() {
            if !ADMIN_PATHS.contains(&path.as_str()) {
                return Err((
                    format!("public_admin[{index}]"),
                    format!(
                        "`{path}` is not an admin path: use {}",
                        ADMIN_PATHS.join(", ")
                    ),
                ));
            }
        }
        if self.admin_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err((
                "admin_listen".into(),
                "must differ from `listen`; to answer probes on the public port, list them in `public_admin`".into(),
            ));
        }
        self.limits.check()?;
        if let Some(auth) = &self.auth {
            auth.check()?;
        }
        if let Some(limit) = &self.rate_limits.per_caller {
            limit
                .check()
                .map_err(|message| ("rate_limits.per_caller".to_owned(), message))?;
        }
        for (index, (target, limit)) in self.rate_limits.routes.iter().enumerate() {
            let key = |field: &str| format!("rate_limits.routes[{index}].{field}");
            crate::auth::AccessRule::new(target.clone(), crate::auth::Access::Public)
                .check()
                .map_err(|message| (key("target"), message))?;
            limit
                .check()
                .map_err(|message| (key("requests"), message))?;
        }
        self.rest.check()?;
        if let Some(cors) = &self.cors {
            cors.check()?;
        }
        if let Some(tls) = &self.tls {
            tls.check()?;
        }
        Ok(())
    }

    /// The upstream for a route: the longest matching prefix override, else `default`.
    pub(crate) fn upstream_for<'a>(&'a self, path: &str, default: &'a str) -> &'a str {
        self.route_prefixes
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(default, |(_, upstream)| upstream.as_str())
    }
}

/// `Err((key, "must be at least 1 …"))` when `value` is zero.
fn at_least_one(key: String, value: u64, unit: &str) -> Result<(), (String, String)> {
    if value == 0 {
        return Err((key, format!("must be at least 1{unit}")));
    }
    Ok(())
}

impl Limits {
    fn check(&self) -> Result<(), (String, String)> {
        let key = |name: &str| format!("limits.{name}");
        at_least_one(
            key("max_header_list_bytes"),
            self.max_header_list_bytes as u64,
            " byte",
        )?;
        at_least_one(key("max_connections"), self.max_connections as u64, "")?;
        at_least_one(
            key("max_concurrent_streams"),
            u64::from(self.max_concurrent_streams),
            "",
        )?;
        at_least_one(
            key("max_client_resets"),
            u64::from(self.max_client_resets),
            "",
        )?;
        at_least_one(key("max_in_flight"), self.max_in_flight as u64, "")?;
        if self
            .reserved_in_flight
            .is_some_and(|reserved| reserved >= self.max_in_flight)
        {
            return Err((
                key("reserved_in_flight"),
                format!(
                    "must be below `max_in_flight` ({}): no place would be left for busy connections",
                    self.max_in_flight
                ),
            ));
        }
        for (name, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("sniff_timeout", self.sniff_timeout),
            ("idle_timeout", self.idle_timeout),
            ("keepalive_timeout", self.keepalive_timeout),
            ("reset_window", self.reset_window),
            ("default_timeout", self.default_timeout),
            ("max_timeout", self.max_timeout),
        ] {
            if value.is_zero() {
                return Err((key(name), "must be longer than 0".into()));
            }
        }
        if self.cancel_linger > Duration::from_secs(60) {
            return Err((
                key("cancel_linger"),
                "must be at most 60s: a cancelled call keeps its place in `max_in_flight` until then"
                    .into(),
            ));
        }
        if self.keepalive_interval.is_some_and(|d| d.is_zero()) {
            return Err((
                key("keepalive_interval"),
                "must be longer than 0 (omit it to turn pings off)".into(),
            ));
        }
        Ok(())
    }
}

impl RestConfig {
    fn check(&self) -> Result<(), (String, String)> {
        let key = |name: &str| format!("rest.{name}");
        at_least_one(key("max_body_bytes"), self.max_body_bytes as u64, " byte")?;
        at_least_one(key("max_query_bytes"), self.max_query_bytes as u64, " byte")?;
        at_least_one(key("max_query_params"), self.max_query_params as u64, "")?;
        at_least_one(key("max_json_depth"), self.max_json_depth as u64, "")?;
        at_least_one(key("parse_concurrency"), self.parse_concurrency as u64, "")?;
        Ok(())
    }
}

impl UpstreamConfig {
    fn check(&self, prefix: &str) -> Result<(), (String, String)> {
        let key = |field: &str| format!("{prefix}.{field}");
        if self.endpoints.is_empty() {
            return Err((
                key("endpoints"),
                "an upstream needs at least one endpoint, e.g. endpoints = [\"http://127.0.0.1:50051\"]".into(),
            ));
        }
        for (index, uri) in self.endpoints.iter().enumerate() {
            let endpoint_key = || format!("{}[{index}]", key("endpoints"));
            if uri.scheme_str() == Some("dns") {
                let path = uri.path_and_query().map_or("", |path| path.as_str());
                if uri
                    .authority()
                    .and_then(|authority| authority.port_u16())
                    .is_none()
                    || !matches!(path, "" | "/")
                {
                    return Err((
                        endpoint_key(),
                        format!(
                            "`{uri}` must look like \"dns://name:port\" (the port is required)"
                        ),
                    ));
                }
                continue;
            }
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
                return Err((
                    endpoint_key(),
                    format!(
                        "`{uri}` must look like \"http://host:port\", \"https://host:port\" or \"dns://name:port\""
                    ),
                ));
            }
        }
        if self.resolve_interval.is_zero() {
            return Err((key("resolve_interval"), "must be longer than 0".into()));
        }
        if let Some(health) = &self.health_check {
            let key = |field: &str| key(&format!("health_check.{field}"));
            for (name, value) in [("interval", health.interval), ("timeout", health.timeout)] {
                if value.is_zero() {
                    return Err((key(name), "must be longer than 0".into()));
                }
            }
            at_least_one(
                key("unhealthy_threshold"),
                u64::from(health.unhealthy_threshold),
                "",
            )?;
            at_least_one(
                key("healthy_threshold"),
                u64::from(health.healthy_threshold),
                "",
            )?;
        }
        let outlier = &self.outlier_detection;
        if outlier.consecutive_failures > 0 {
            let key = |field: &str| key(&format!("outlier_detection.{field}"));
            if outlier.base_ejection_time.is_zero() {
                return Err((key("base_ejection_time"), "must be longer than 0".into()));
            }
            if outlier.max_ejection_time < outlier.base_ejection_time {
                return Err((
                    key("max_ejection_time"),
                    "must be at least `base_ejection_time`".into(),
                ));
            }
        }
        let retries = &self.retries;
        at_least_one(
            key("retries.max_attempts"),
            u64::from(retries.max_attempts),
            "",
        )?;
        if retries.max_attempts > 10 {
            return Err((key("retries.max_attempts"), "must be at most 10".into()));
        }
        if retries.budget_percent > 100 {
            return Err((
                key("retries.budget_percent"),
                format!(
                    "{} is not a percentage between 0 and 100",
                    retries.budget_percent
                ),
            ));
        }

        let tls = self
            .endpoints
            .iter()
            .any(|uri| uri.scheme_str() == Some("https"));
        for (name, set) in [
            ("ca_file", self.ca_file.is_some()),
            ("client_cert_file", self.client_cert_file.is_some()),
            ("client_key_file", self.client_key_file.is_some()),
        ] {
            if set && !tls {
                return Err((
                    key(name),
                    "only used with \"https://\" endpoints; this upstream has none".into(),
                ));
            }
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err((
                key("client_cert_file"),
                "give both `client_cert_file` and `client_key_file`, or neither".into(),
            ));
        }
        at_least_one(key("connections"), self.connections as u64, "")?;
        if self.concurrency_limit == Some(0) {
            return Err((
                key("concurrency_limit"),
                "must be at least 1 (omit it for no limit)".into(),
            ));
        }
        at_least_one(
            key("max_message_size"),
            self.max_message_size as u64,
            " byte",
        )?;
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("queue_timeout", self.queue_timeout),
            ("slow_consumer_timeout", self.slow_consumer_timeout),
            ("max_reconnect_backoff", self.max_reconnect_backoff),
        ] {
            if value.is_zero() {
                return Err((key(name), "must be longer than 0".into()));
            }
        }
        // h2's limits for a window size (RFC 9113 §6.9.2): at least the default 65,535.
        for (name, value) in [
            ("stream_window", self.stream_window),
            ("connection_window", self.connection_window),
        ] {
            if !(65_535..=0x7fff_ffff).contains(&value) {
                return Err((
                    key(name),
                    format!("{value} is not between 65535 and 2147483647 bytes"),
                ));
            }
        }
        if self.stream_window > self.connection_window {
            return Err((
                key("stream_window"),
                "must not exceed `connection_window`: one stream could then hold the whole connection".into(),
            ));
        }
        Ok(())
    }
}

impl CorsConfig {
    /// Checks the origins and header names: `Err((key, message))`.
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        if self.allowed_origins.is_empty() {
            return Err((
                "cors.allowed_origins".into(),
                "list at least one origin, e.g. [\"https://app.example\"], or [\"*\"] for any"
                    .into(),
            ));
        }
        let any = self.allowed_origins.iter().any(|origin| origin == "*");
        for (index, origin) in self.allowed_origins.iter().enumerate() {
            if origin == "*" {
                if self.allowed_origins.len() > 1 {
                    return Err((
                        format!("cors.allowed_origins[{index}]"),
                        "`*` allows any origin and cannot be mixed with others".into(),
                    ));
                }
                continue;
            }
            let valid = http::HeaderValue::from_str(origin).is_ok()
                && (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/');
            if !valid {
                return Err((
                    format!("cors.allowed_origins[{index}]"),
                    format!(
                        "`{origin}` is not an origin like \"https://app.example\" (scheme and host, no path)"
                    ),
                ));
            }
        }
        for (key, names) in [
            ("cors.allowed_headers", &self.allowed_headers),
            ("cors.exposed_headers", &self.exposed_headers),
        ] {
            for (index, name) in names.iter().enumerate() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err((
                        format!("{key}[{index}]"),
                        format!("`{name}` is not a header name"),
                    ));
                }
            }
        }
        if any && self.allow_credentials {
            return Err((
                "cors.allow_credentials".into(),
                "browsers refuse credentials with `*` origins; list the origins instead".into(),
            ));
        }
        Ok(())
    }
}

/// A TOML key as written in a dotted path: bare when it can be, quoted otherwise.
pub(crate) fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_configs_are_checked_like_toml_ones() {
        let base = || Config::default();
        let err = |config: Config| config.validate().expect_err("invalid").to_string();
        let no_endpoints = base().upstream("a", UpstreamConfig::default());
        assert!(err(no_endpoints).contains("upstreams.a.endpoints"));
        let https = base().upstream(
            "a",
            UpstreamConfig::new(["ftp://x:1".parse().expect("uri")]),
        );
        assert!(err(https).contains("upstreams.a.endpoints[0]"));
        let mut window = UpstreamConfig::new(["http://x:1".parse().expect("uri")]);
        window.stream_window = window.connection_window + 1;
        assert!(err(base().upstream("a", window)).contains("upstreams.a.stream_window"));
        let mut limits = base();
        limits.limits.max_in_flight = 0;
        assert!(err(limits).contains("limits.max_in_flight"));
        let mut public = base();
        public.public_admin = vec!["/secret".into()];
        assert!(err(public).contains("public_admin[0]"));
        base().validate().expect("the defaults are valid");
    }
}
