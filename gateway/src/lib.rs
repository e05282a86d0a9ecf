#![doc = include_str!("docs/gateway.md")]

mod access_log;
mod admin;
mod auth;
mod body;
mod bridge;
mod config;
mod discovery;
pub mod dynamic;
mod gate;
mod health;
mod metrics;
mod openapi;
mod outbox;
mod pool;
mod proxy;
mod reload;
mod rest;
mod retry;
mod routes;
mod runtime;
mod server;
mod text;
mod tls;
mod trace;
mod transcode;
mod web;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use auth::{
    Access, AccessRule, ApiKey, AuthConfig, DefaultPolicy, JwtConfig, RateLimit, RateLimitConfig,
};
pub use bridge::{DescriptorError, layout};
pub use config::BridgeConfig;
pub use config::TracingConfig;
pub use config::{
    AccessLogConfig, Balance, ClientAuth, Config, ConfigError, CorsConfig, DnsConfig,
    HealthCheckConfig, Limits, OutlierConfig, RestConfig, RetryConfig, TlsConfig, UpstreamConfig,
};
pub use openapi::openapi_document;
pub use rest::BindingError;
pub use routes::{CallKind, Format, HttpBinding, Route, RouteTable};
#[cfg(feature = "jemalloc")]
pub use runtime::Jemalloc;
pub use runtime::{return_memory_in_background, runtime};
pub use transcode::{Transcode, TranscodeError, Transcoder, UnknownFields};

use metrics::{ListenerMetrics, RouteMetrics};

/// A future that completes on Ctrl-C or SIGTERM, for [`Gateway::serve_on`].
///
/// # Errors
///
/// The signal handler cannot be installed.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, GatewayError> {
    server::shutdown_signal().map_err(GatewayError::Signal)
}
use pool::Upstream;

/// Why the gateway could not start or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the config.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The admin address (`admin_listen`) could not be bound.
    #[error("cannot listen on {addr} (`admin_listen`): {source}")]
    AdminBind {
        /// The address from the config.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A route's HTTP binding cannot be served (its path template is invalid).
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// Waiting for a shutdown signal failed.
    #[error("cannot install the shutdown signal handler: {0}")]
    Signal(std::io::Error),
    /// A descriptor set (`descriptors`, [`GatewayBuilder::descriptor_set`]) cannot be read or
    /// used.
    #[error(transparent)]
    Descriptors(#[from] DescriptorError),
    /// The protobuf bridge's address (`protobuf_bridge.listen`) could not be bound.
    #[error("cannot listen on {addr} (`protobuf_bridge.listen`): {source}")]
    BridgeBind {
        /// The address from the config.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where one route (or prefix override) sends calls, and its metrics.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) upstream: Option<usize>,
    pub(crate) metrics: Arc<RouteMetrics>,
    /// The route's call kind (whether a call may go again); unknown under a prefix.
    pub(crate) kind: Option<CallKind>,
}

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct GatewayState {
    pub(crate) routes: RouteTable,
    /// One per route, same order.
    pub(crate) targets: Vec<Target>,
    /// Prefix overrides, longest first, for paths not in the table.
    pub(crate) prefix_targets: Vec<(String, Target)>,
    /// Shared with the next state for upstreams a reload leaves unchanged.
    pub(crate) upstreams: Vec<Arc<Upstream>>,
    pub(crate) unmatched: RouteMetrics,
    /// The per-call JSON log (`[access_log]`), kept across reloads that leave it unchanged.
    pub(crate) access_log: Option<Arc<access_log::AccessLog>>,
    /// Span export (`[tracing]`), kept across reloads that leave it unchanged; `None` when off.
    pub(crate) tracing: Option<Arc<trace::Tracing>>,
    /// Connections and calls of the public listener (the same through every reload).
    pub(crate) listener: Arc<ListenerMetrics>,
    pub(crate) config: Config,
    /// The REST bindings of the routes.
    pub(crate) rest: rest::RestRoutes,
    /// CORS for REST and gRPC-Web, when configured.
    pub(crate) cors: Option<tower_http::cors::CorsLayer>,
    /// Authentication, authorization and rate limits.
    pub(crate) gate: gate::Gate,
    /// TLS on the public port (`[tls]`).
    pub(crate) tls: Option<tls::ServerTls>,
    /// The protobuf bridge and reflection, when descriptors are given.
    pub(crate) bridge: Option<Arc<bridge::Bridge>>,
}

impl GatewayState {
    /// The upkeep: files changed on disk are read again (blocking work).
    pub(crate) fn reload(&self) {
        self.gate.upkeep();
        if let Some(tls) = &self.tls {
            tls.refresh();
        }
    }

    /// The target of a gRPC path: its route, else the longest prefix override.
    pub(crate) fn target(&self, path: &str) -> Option<&Target> {
        match self.routes.index_of(path) {
            Some(index) => self.targets.get(index),
            None => self
                .prefix_targets
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                .map(|(_, target)| target),
        }
    }
}

/// A gateway ready to serve. Build one with [`Gateway::builder`].
///
/// Its state (routes, upstream pools, limits, CORS, auth) sits behind one swappable pointer:
/// [`Gateway::reload`] or a [`Reloader`] replaces it while the gateway serves.
#[derive(Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    /// The admin listener, once bound (by [`Gateway::bind`] or [`Gateway::bind_admin`]).
    admin: std::sync::Mutex<Option<(SocketAddr, tokio::net::TcpListener)>>,
    /// The protobuf bridge's listener, once bound (see [`Gateway::bind_bridge`]).
    bridge: std::sync::Mutex<Option<(SocketAddr, tokio::net::TcpListener)>>,
}

/// What a reload keeps from the builder: the route table as given (each reload resolves its
/// upstreams again), the user's HTTP router and how paths find upstreams.
#[derive(Debug)]
struct Blueprint {
    routes: RouteTable,
    router: Option<axum::Router>,
    route_by_upstream_name: bool,
    /// Encoded descriptor sets given in code (by name, for errors).
    descriptors: Vec<(String, Vec<u8>)>,
}

/// The live gateway: the current state and what rebuilding it needs.
#[derive(Debug)]
struct Shared {
    live: Arc<server::Live>,
    blueprint: Blueprint,
    /// The public listener's counters outlive every state (connections span reloads).
    listener: Arc<ListenerMetrics>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// Builds a [`Gateway`] from a [`Config`] and a [`RouteTable`].
#[derive(Debug, Default)]
pub struct GatewayBuilder {
    config: Option<Config>,
    routes: RouteTable,
    router: Option<axum::Router>,
    route_by_upstream_name: bool,
    descriptors: Vec<(String, Vec<u8>)>,
}

impl GatewayBuilder {
    /// An encoded `FileDescriptorSet` of routed services (a build's `services.binpb`, or
    /// `tonic-msgpack schema`), added to the config's `descriptors` files: the protobuf bridge
    /// and server reflection work from them. Calling it again adds another set.
    pub fn descriptor_set(mut self, encoded: impl Into<Vec<u8>>) -> Self {
        let name = format!("descriptor set #{} (in code)", self.descriptors.len() + 1);
        self.descriptors.push((name, encoded.into()));
        self
    }

    /// The configuration (default: [`Config::default`], no upstreams).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The routes, usually generated (`routes::table()`). Calling it again merges tables.
    pub fn routes(mut self, routes: RouteTable) -> Self {
        self.routes = std::mem::take(&mut self.routes).merge(routes);
        self
    }

    /// Extra HTTP (non-gRPC) routes on the public port, merged with the admin paths listed in
    /// `public_admin` (the admin endpoints themselves answer on `admin_listen`). Without a
    /// router, unmatched HTTP requests get a 404 JSON error.
    pub fn http_router(mut self, router: axum::Router) -> Self {
        self.router = Some(router);
        self
    }

    /// Also route `/{name}/…` to the upstream called `name` (an upstream named
    /// `demo.v1.Calculator` then serves every method of that service) for paths in no route and
    /// no `[route_prefixes]` entry. This is how the stand-alone binary, which has no generated
    /// route table, finds its services. Default: false (only routes and prefixes forward).
    pub fn route_by_upstream_name(mut self, yes: bool) -> Self {
        self.route_by_upstream_name = yes;
        self
    }

    /// Creates the upstream pools, trying to connect each connection now (bounded by each
    /// upstream's connect timeout); connections that fail connect again on their first call.
    pub async fn build(self) -> Result<Gateway, GatewayError> {
        let config = self.config.unwrap_or_default();
        let blueprint = Blueprint {
            routes: self.routes,
            router: self.router,
            route_by_upstream_name: self.route_by_upstream_name,
            descriptors: self.descriptors,
        };
        let listener = Arc::new(ListenerMetrics::default());
        let (state, _) = build_state(config, &blueprint, listener.clone(), None).await?;
        let serving = serving(state, &blueprint);
        Ok(Gateway {
            shared: Arc::new(Shared {
                live: Arc::new(server::Live::new(Arc::new(serving))),
                blueprint,
                listener,
                reloading: tokio::sync::Mutex::new(()),
            }),
            admin: std::sync::Mutex::new(None),
            bridge: std::sync::Mutex::new(None),
        })
    }

    /// Builds the gateway and serves it until Ctrl-C or SIGTERM.
    pub async fn serve(self) -> Result<(), GatewayError> {
        self.build().await?.serve().await
    }

    /// Builds the gateway and serves it until `signal` completes.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        self.build().await?.serve_with_shutdown(signal).await
    }
}

/// Whether an upstream's pool can serve `new` as it is: same settings, and the same resolver
/// when it resolves `dns://` names. Compared through `Debug` because every field is plain data
/// and a field added later is then compared without anyone remembering to.
fn same_upstream(old: (&UpstreamConfig, &Config), new: (&UpstreamConfig, &Config)) -> bool {
    let resolves = new
        .0
        .endpoints
        .iter()
        .any(|endpoint| endpoint.scheme_str() == Some("dns"));
    format!("{:?}", old.0) == format!("{:?}", new.0)
        && (!resolves || format!("{:?}", old.1.dns) == format!("{:?}", new.1.dns))
}

/// Builds a state from `config`. With a `previous` state (a reload), upstreams whose settings
/// did not change keep their pools (no reconnect) and routes keep their counters; the names of
/// the upstreams kept are returned.
async fn build_state(
    config: Config,
    blueprint: &Blueprint,
    listener: Arc<ListenerMetrics>,
    previous: Option<&GatewayState>,
) -> Result<(GatewayState, Vec<String>), GatewayError> {
    config.validate()?;
    let invalid = |(key, message): (String, String)| ConfigError::Invalid {
        path: None,
        key,
        message,
    };
    // Certificate files are read now: a missing or bad one is a startup (or reload) error.
    let server_tls = config
        .tls
        .as_ref()
        .map(tls::ServerTls::new)
        .transpose()
        .map_err(invalid)?;
    let mut routes = blueprint.routes.clone();
    let mut upstreams: Vec<Arc<Upstream>> = Vec::with_capacity(config.upstreams.len());
    let mut kept = Vec::new();
    for (name, upstream) in &config.upstreams {
        let unchanged = previous.and_then(|previous| {
            let old = previous.config.upstreams.get(name)?;
            if !same_upstream((old, &previous.config), (upstream, &config)) {
                return None;
            }
            previous.upstreams.iter().find(|old| old.name == *name)
        });
        if let Some(pool) = unchanged {
            kept.push(name.clone());
            upstreams.push(pool.clone());
            continue;
        }
        let prefix = format!("upstreams.{}", config::quote_key(name));
        let client_tls = tls::UpstreamTls::new(upstream, &prefix).map_err(invalid)?;
        let pool = Upstream::connect(name, upstream, client_tls, &config.dns)
            .await
            .map_err(|message| invalid(("dns".into(), message)))?;
        upstreams.push(Arc::new(pool));
    }
    // A route keeps its counters across reloads (found by label), so `/metrics` stays monotonic.
    let mut previous_metrics: std::collections::HashMap<String, Arc<RouteMetrics>> =
        std::collections::HashMap::new();
    if let Some(previous) = previous {
        for (route, target) in previous.routes.routes().iter().zip(&previous.targets) {
            previous_metrics.insert(route.path.clone(), target.metrics.clone());
        }
        for (prefix, target) in &previous.prefix_targets {
            previous_metrics.insert(format!("{prefix}*"), target.metrics.clone());
        }
    }
    let metrics = |label: String| match previous_metrics.get(&label) {
        Some(metrics) => metrics.clone(),
        None => Arc::new(RouteMetrics::new(label)),
    };
    let bridge = bridge_of(&config, &blueprint.descriptors)?;
    if let Some(bridge) = &bridge {
        descriptor_routes(&mut routes, &bridge.pool, &config, &upstreams);
    }
    let index_of = |name: &str| upstreams.iter().position(|u| u.name == name);
    let mut targets = Vec::with_capacity(routes.len());
    for route in routes.routes_mut() {
        let upstream_name = config.upstream_for(&route.path, &route.upstream).to_owned();
        let upstream = index_of(&upstream_name);
        if upstream.is_none() {
            tracing::warn!(
                route = %route.path,
                "no upstream `{upstream_name}` in the config: calls answer UNAVAILABLE"
            );
        }
        route.upstream = upstream_name;
        targets.push(Target {
            upstream,
            metrics: metrics(route.path.clone()),
            kind: Some(route.kind),
        });
    }
    let mut prefix_targets: Vec<(String, Target)> = config
        .route_prefixes
        .iter()
        .map(|(prefix, upstream)| {
            (
                prefix.clone(),
                Target {
                    upstream: index_of(upstream),
                    metrics: metrics(format!("{prefix}*")),
                    kind: None,
                },
            )
        })
        .collect();
    if blueprint.route_by_upstream_name {
        for (index, upstream) in upstreams.iter().enumerate() {
            let prefix = format!("/{}/", upstream.name);
            if !prefix_targets.iter().any(|(known, _)| *known == prefix) {
                let metrics = metrics(format!("{prefix}*"));
                let upstream = Some(index);
                let target = Target {
                    upstream,
                    metrics,
                    kind: None,
                };
                prefix_targets.push((prefix, target));
            }
        }
    }
    prefix_targets.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    let rest = rest::RestRoutes::new(&routes)?;
    let cors = match &config.cors {
        Some(cors) => Some(web::cors_layer(cors)?),
        None => None,
    };
    let gate =
        gate::Gate::new(config.auth.as_ref(), &config.rate_limits).map_err(|(key, message)| {
            ConfigError::Invalid {
                path: None,
                key,
                message,
            }
        })?;
    let access_log = match previous
        .and_then(|previous| previous.access_log.clone())
        .filter(|log| *log.config() == config.access_log)
    {
        Some(log) => Some(log),
        None if config.access_log.enabled => Some(
            access_log::AccessLog::start(&config.access_log)
                .map_err(|message| invalid(("access_log.path".into(), message)))?,
        ),
        None => None,
    };
    let tracing = match previous
        .and_then(|previous| previous.tracing.clone())
        .filter(|tracing| *tracing.config() == config.tracing)
    {
        Some(tracing) => Some(tracing),
        None if config.tracing.enabled => Some(Arc::new(
            trace::Tracing::start(&config.tracing)
                .map_err(|message| invalid(("tracing.enabled".into(), message)))?,
        )),
        None => None,
    };
    let state = GatewayState {
        tracing,
        access_log,
        bridge,
        gate,
        tls: server_tls,
        rest,
        cors,
        routes,
        targets,
        prefix_targets,
        upstreams,
        unmatched: RouteMetrics::new("unmatched".into()),
        listener,
        config,
    };
    Ok((state, kept))
}

/// REST by descriptor: every method of the descriptor sets becomes a route with a
/// [`dynamic::DescriptorTranscoder`] and its `google.api.http` binding, unless the route table
/// already has a typed transcoder for it. A method joins only when its upstream (the
/// service's full name, or a `[route_prefixes]` entry) is configured, so passthrough calls
/// still go where they went.
fn descriptor_routes(
    routes: &mut RouteTable,
    pool: &prost_reflect::DescriptorPool,
    config: &Config,
    upstreams: &[Arc<Upstream>],
) {
    for route in dynamic::routes(pool) {
        match routes.get(&route.path) {
            Some(known) if known.transcoder.is_some() => {}
            Some(known) => {
                let mut known = known.clone();
                known.http = known.http.or(route.http);
                known.transcoder = route.transcoder;
                routes.insert(known);
            }
            None => {
                let upstream = config.upstream_for(&route.path, &route.upstream);
                if upstreams.iter().any(|known| known.name == upstream) {
                    routes.insert(route);
                }
            }
        }
    }
}

/// The protobuf bridge over the config's `descriptors` files and the builder's sets: `None`
/// without any; an error when `reflection` or `[protobuf_bridge]` asks for one without any.
fn bridge_of(
    config: &Config,
    given: &[(String, Vec<u8>)],
) -> Result<Option<Arc<bridge::Bridge>>, GatewayError> {
    let mut sets = given.to_vec();
    for path in &config.descriptors {
        let bytes = std::fs::read(path).map_err(|err| DescriptorError {
            source_name: path.display().to_string(),
            message: err.to_string(),
        })?;
        sets.push((path.display().to_string(), bytes));
    }
    for dir in &config.protos {
        sets.push((
            format!("protos: {}", dir.display()),
            dynamic::protos::compile(dir)?,
        ));
    }
    if sets.is_empty() {
        if config.reflection || config.protobuf_bridge.is_some() || config.openapi_path.is_some() {
            let key = if config.openapi_path.is_some() {
                "openapi_path"
            } else if config.reflection {
                "reflection"
            } else {
                "protobuf_bridge"
            };
            return Err(ConfigError::Invalid {
                path: None,
                key: key.into(),
                message: "needs descriptors: set `descriptors = [\"services.binpb\"]` (written by `tonic-msgpack schema` or a build's `.descriptor_set(true)`) or `protos = [\"proto/\"]`".into(),
            }
            .into());
        }
        return Ok(None);
    }
    Ok(Some(Arc::new(bridge::Bridge::new(
        &sets,
        config.reflection,
    )?)))
}

/// The state with the routers built over it: what one swap replaces.
fn serving(state: GatewayState, blueprint: &Blueprint) -> server::Serving {
    let state = Arc::new(state);
    let public = admin::router(state.clone(), &state.config.public_admin);
    let router = match &blueprint.router {
        Some(user) => public.merge(user.clone()),
        None => public.fallback(admin::not_found),
    };
    let mut admin_router =
        admin::router(state.clone(), &config::ADMIN_PATHS).fallback(admin::not_found);
    if let (Some(path), Some(bridge)) = (&state.config.openapi_path, &state.bridge) {
        // Built once per state: the descriptors do not change while it serves.
        let document = openapi_document(&bridge.pool, "tonic-msgpack gateway").to_string();
        admin_router = admin_router.route(
            path,
            axum::routing::get(move || {
                let document = document.clone();
                async move { ([(http::header::CONTENT_TYPE, "application/json")], document) }
            }),
        );
    }
    server::Serving::new(state, router, admin_router)
}

/// What a reload did with the upstream pools, for log lines and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// Upstreams whose settings did not change: their pools (and connections) were kept.
    pub kept: Vec<String>,
    /// Upstreams new or changed: a new pool was connected.
    pub connected: Vec<String>,
    /// Upstreams no longer in the config: their pools close once their calls in flight end.
    pub removed: Vec<String>,
}

/// Replaces a serving gateway's configuration (see [`Gateway::reloader`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader(Arc<Shared>);

impl Reloader {
    /// Builds a new state from `config` and swaps it in: calls that start afterwards follow the
    /// new routes, upstreams, limits, CORS and auth rules; calls in flight finish on the state
    /// they started with, whose pools close after the last of them. Upstreams whose settings
    /// did not change keep their pools. Client connections stay open.
    ///
    /// `listen` and `admin_listen` cannot move while serving: a new value is ignored with a
    /// warning (restart to move them). Connection settings (`[limits]` on HTTP/2 windows,
    /// timeouts and keepalive, `[tls]`) apply to connections accepted after the reload.
    ///
    /// # Errors
    ///
    /// The new configuration is invalid (the error names the key) or a resource it names
    /// cannot be loaded (a certificate, a key file); the running state stays as it was.
    pub async fn reload(&self, mut config: Config) -> Result<Reloaded, GatewayError> {
        let shared = &self.0;
        let _one_at_a_time = shared.reloading.lock().await;
        let current = shared.live.get();
        let old = &current.state;
        if config.listen != old.config.listen {
            tracing::warn!(
                "reload: `listen` changed to {}; moving the listener needs a restart, it stays on {}",
                config.listen,
                old.config.listen
            );
            config.listen = old.config.listen;
        }
        if config.admin_listen != old.config.admin_listen {
            tracing::warn!(
                "reload: `admin_listen` changed; moving the admin listener needs a restart, it stays as it was"
            );
            config.admin_listen = old.config.admin_listen;
        }
        let (state, kept) = build_state(
            config,
            &shared.blueprint,
            shared.listener.clone(),
            Some(old),
        )
        .await?;
        let summary = Reloaded {
            connected: state
                .upstreams
                .iter()
                .map(|upstream| upstream.name.clone())
                .filter(|name| !kept.contains(name))
                .collect(),
            removed: old
                .upstreams
                .iter()
                .map(|upstream| upstream.name.clone())
                .filter(|name| !state.config.upstreams.contains_key(name))
                .collect(),
            kept,
        };
        shared
            .live
            .replace(Arc::new(serving(state, &shared.blueprint)));
        Ok(summary)
    }
}

impl Gateway {
    /// A builder.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// A handle that reloads this gateway's configuration while it serves (the binary calls it
    /// on SIGHUP). See [`Reloader::reload`].
    pub fn reloader(&self) -> Reloader {
        Reloader(self.shared.clone())
    }

    /// Replaces the configuration now; see [`Reloader::reload`].
    ///
    /// # Errors
    ///
    /// The new configuration is invalid; the current one stays.
    pub async fn reload(&self, config: Config) -> Result<Reloaded, GatewayError> {
        self.reloader().reload(config).await
    }

    /// The current state.
    fn state(&self) -> Arc<GatewayState> {
        self.shared.live.get().state.clone()
    }

    /// The route table, with each route's upstream resolved against the current config.
    pub fn routes(&self) -> RouteTable {
        self.state().routes.clone()
    }

    /// What `/readyz` answers: every upstream has connected at least once, and each one that is
    /// `required_for_ready` has a healthy, connected endpoint.
    pub fn is_ready(&self) -> bool {
        admin::not_ready(&self.state()).is_empty()
    }

    /// Binds the configured `listen` address, and `admin_listen` (kept until
    /// [`Gateway::serve_on`]; see [`Gateway::admin_addr`]).
    pub async fn bind(&self) -> Result<tokio::net::TcpListener, GatewayError> {
        self.bind_admin()?;
        let addr = self.state().config.listen;
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| GatewayError::Bind { addr, source })
    }

    /// Binds `admin_listen` now, if configured and not bound yet, and returns its address
    /// (the port chosen for `:0`). [`Gateway::serve_on`] binds it otherwise.
    pub fn bind_admin(&self) -> Result<Option<SocketAddr>, GatewayError> {
        let Some(addr) = self.state().config.admin_listen else {
            return Ok(None);
        };
        let mut admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((bound, _)) = &*admin {
            return Ok(Some(*bound));
        }
        let error = |source| GatewayError::AdminBind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        let bound = listener.local_addr().map_err(error)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(error)?;
        *admin = Some((bound, listener));
        Ok(Some(bound))
    }

    /// Where the admin endpoints answer, once bound: `None` before [`Gateway::bind`] or
    /// [`Gateway::bind_admin`], and when `admin_listen` is off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(addr, _)| *addr)
    }

    /// Binds `protobuf_bridge.listen` now, if configured and not bound yet, and returns its
    /// address (the port chosen for `:0`). [`Gateway::serve_on`] binds it otherwise.
    pub fn bind_bridge(&self) -> Result<Option<SocketAddr>, GatewayError> {
        let Some(addr) = self
            .state()
            .config
            .protobuf_bridge
            .as_ref()
            .map(|b| b.listen)
        else {
            return Ok(None);
        };
        let mut bridge = self
            .bridge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((bound, _)) = &*bridge {
            return Ok(Some(*bound));
        }
        let error = |source| GatewayError::BridgeBind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        let bound = listener.local_addr().map_err(error)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(error)?;
        *bridge = Some((bound, listener));
        Ok(Some(bound))
    }

    /// Serves on the configured address until Ctrl-C or SIGTERM.
    pub async fn serve(self) -> Result<(), GatewayError> {
        let signal = server::shutdown_signal().map_err(GatewayError::Signal)?;
        self.serve_with_shutdown(signal).await
    }

    /// Serves on the configured address until `signal` completes.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let listener = self.bind().await?;
        self.serve_on(listener, signal).await
    }

    /// Serves on `listener` (e.g. bound to `127.0.0.1:0` in tests), and the admin endpoints on
    /// `admin_listen`, until `signal` completes, then stops accepting and lets in-flight calls
    /// finish for up to the grace period.
    ///
    /// # Errors
    ///
    /// [`GatewayError::AdminBind`] when `admin_listen` cannot be bound.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        self.bind_admin()?;
        self.bind_bridge()?;
        let admin = self
            .admin
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|(_, listener)| listener);
        let bridge = self
            .bridge
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|(_, listener)| listener);
        let upkeep = tokio::spawn(upkeep(self.shared.live.clone()));
        server::serve(
            listener,
            admin,
            bridge,
            self.shared.live.clone(),
            self.shared.listener.clone(),
            signal,
        )
        .await;
        upkeep.abort();
        // The spans of the last calls go out before the process ends (bounded by the
        // exporter's timeout).
        if let Some(tracing) = self.shared.live.get().state.tracing.clone() {
            tracing.flush().await;
        }
        Ok(())
    }
}

/// Reloads changed key files and TLS certificates and forgets idle rate-limit buckets: every
/// few seconds, and at once on SIGHUP. Always on the current state (reloads replace it).
async fn upkeep(live: Arc<server::Live>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hung_up = {
            let hangup = async {
                match hangup.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(EVERY) => false,
                () = hangup => true,
            }
        };
        #[cfg(not(unix))]
        let hung_up = {
            tokio::time::sleep(EVERY).await;
            false
        };
        let state = live.get().state.clone();
        if state.gate.is_open() && state.tls.is_none() {
            continue;
        }
        if hung_up {
            tracing::info!("SIGHUP: reloading key files and certificates");
        }
        // Reading files is blocking work.
        let _ = tokio::task::spawn_blocking(move || state.reload()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_upstreams(a: &str, b: &str) -> Config {
        Config::from_toml(&format!(
            "[upstreams.a]\nendpoints = [\"{a}\"]\n[upstreams.b]\nendpoints = [\"{b}\"]\n"
        ))
        .expect("config")
    }

    fn pool(state: &GatewayState, name: &str) -> Arc<Upstream> {
        state
            .upstreams
            .iter()
            .find(|upstream| upstream.name == name)
            .cloned()
            .expect("pool")
    }

    #[tokio::test]
    async fn a_reload_keeps_unchanged_pools_and_drops_replaced_ones_after_their_last_call() {
        // Nothing listens there: the pools exist, their connections retry in the background.
        let gateway = Gateway::builder()
            .config(two_upstreams("http://127.0.0.1:1", "http://127.0.0.1:2"))
            .build()
            .await
            .expect("gateway");
        // What a call in flight holds: the state it started with.
        let in_flight = gateway.state();
        let kept = pool(&in_flight, "a");
        let replaced = Arc::downgrade(&pool(&in_flight, "b"));

        let done = gateway
            .reload(two_upstreams("http://127.0.0.1:1", "http://127.0.0.1:3"))
            .await
            .expect("reload");
        assert_eq!(
            (done.kept, done.connected),
            (vec!["a".into()], vec!["b".into()])
        );
        assert!(done.removed.is_empty());
        let current = gateway.state();
        assert!(Arc::ptr_eq(&pool(&current, "a"), &kept), "the same pool");
        assert!(replaced.upgrade().is_some(), "alive while a call holds it");
        drop(in_flight);
        assert!(replaced.upgrade().is_none(), "dropped with the last call");

        // An invalid config is refused and changes nothing.
        let mut broken = two_upstreams("http://127.0.0.1:1", "http://127.0.0.1:3");
        if let Some(upstream) = broken.upstreams.get_mut("a") {
            upstream.connections = 0;
        }
        let err = gateway.reload(broken).await.expect_err("refused");
        assert!(err.to_string().contains("upstreams.a.connections"), "{err}");
        assert!(Arc::ptr_eq(&gateway.state(), &current));

        // An upstream left out is reported removed.
        let mut fewer = two_upstreams("http://127.0.0.1:1", "http://127.0.0.1:3");
        fewer.upstreams.remove("b");
        let done = gateway.reload(fewer).await.expect("reload");
        assert_eq!(done.removed, ["b"]);
        assert_eq!(gateway.state().upstreams.len(), 1);
    }
}
