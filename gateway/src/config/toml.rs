//! The TOML file format: raw types that mirror the file (every key optional, unknown keys
//! rejected), merged over the defaults, then checked by [`Config::check`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    Balance, ClientAuth, Config, ConfigError, CorsConfig, HealthCheckConfig, TlsConfig,
    UpstreamConfig, quote_key,
};
use crate::auth::{
    Access, AccessRule, ApiKey, AuthConfig, DefaultPolicy, JwtConfig, RateLimit, RateLimitConfig,
};
use crate::transcode::UnknownFields;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBridge {
    listen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    /// `"off"` or an address.
    admin_listen: Option<String>,
    public_admin: Option<Vec<String>>,
    grace_period: Option<RawDuration>,
    #[serde(default)]
    defaults: RawUpstream,
    #[serde(default)]
    upstreams: BTreeMap<String, RawUpstream>,
    #[serde(default)]
    route_prefixes: BTreeMap<String, String>,
    #[serde(default)]
    limits: RawLimits,
    rest: Option<RawRest>,
    cors: Option<RawCors>,
    auth: Option<RawAuth>,
    #[serde(default)]
    rate_limits: RawRateLimits,
    tls: Option<RawTls>,
    descriptors: Option<Vec<PathBuf>>,
    protos: Option<Vec<PathBuf>>,
    reflection: Option<bool>,
    protobuf_bridge: Option<RawBridge>,
    openapi_path: Option<String>,
    dns: Option<RawDns>,
    access_log: Option<RawAccessLog>,
    tracing: Option<RawTracing>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracing {
    enabled: Option<bool>,
    otlp_endpoint: Option<String>,
    sampling_ratio: Option<f64>,
    service_name: Option<String>,
    export_interval: Option<RawDuration>,
    export_timeout: Option<RawDuration>,
    max_queue: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    enabled: Option<bool>,
    /// `"stdout"` or a file path.
    path: Option<String>,
    sample: Option<f64>,
    off_routes: Option<Vec<String>>,
    buffer: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    servers: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawHealthCheck {
    service: Option<String>,
    interval: Option<RawDuration>,
    timeout: Option<RawDuration>,
    unhealthy_threshold: Option<u32>,
    healthy_threshold: Option<u32>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawOutlier {
    consecutive_failures: Option<u32>,
    base_ejection_time: Option<RawDuration>,
    max_ejection_time: Option<RawDuration>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawRetries {
    max_attempts: Option<u32>,
    budget_percent: Option<u32>,
    min_retries_per_second: Option<u32>,
    max_held: Option<usize>,
    hold_timeout: Option<RawDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
    identity_header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    default_policy: Option<DefaultPolicy>,
    jwt: Option<RawJwt>,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    #[serde(default)]
    certificate_scopes: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    hs256_secret_file: Option<PathBuf>,
    hs256_secret_env: Option<String>,
    jwks_file: Option<PathBuf>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Option<RawDuration>,
    scopes_claim: Option<String>,
    forward_claims: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    id: String,
    sha256: String,
    #[serde(default)]
    scopes: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    target: String,
    /// `"public"` or `"authenticated"`; or give `scopes`.
    access: Option<String>,
    scopes: Option<BTreeSet<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimits {
    per_caller: Option<RawRateLimit>,
    #[serde(default)]
    routes: Vec<RawRouteLimit>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests: u32,
    per: RawDuration,
    burst: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteLimit {
    target: String,
    requests: u32,
    per: RawDuration,
    burst: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_header_list_bytes: Option<usize>,
    header_read_timeout: Option<RawDuration>,
    sniff_timeout: Option<RawDuration>,
    idle_timeout: Option<RawDuration>,
    /// `"off"` or a duration.
    keepalive_interval: Option<String>,
    keepalive_timeout: Option<RawDuration>,
    max_connections: Option<usize>,
    max_concurrent_streams: Option<u32>,
    max_client_resets: Option<u32>,
    reset_window: Option<RawDuration>,
    max_address_resets: Option<u32>,
    max_in_flight: Option<usize>,
    reserved_in_flight: Option<usize>,
    default_timeout: Option<RawDuration>,
    max_timeout: Option<RawDuration>,
    response_header_timeout: Option<RawDuration>,
    cancel_linger: Option<RawDuration>,
    busy_lag: Option<RawDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRest {
    unknown_fields: Option<UnknownFields>,
    max_body_bytes: Option<usize>,
    max_query_bytes: Option<usize>,
    max_query_params: Option<usize>,
    max_json_depth: Option<usize>,
    parse_concurrency: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    allowed_origins: Vec<String>,
    #[serde(default)]
    allowed_headers: Vec<String>,
    #[serde(default)]
    exposed_headers: Vec<String>,
    max_age: Option<RawDuration>,
    #[serde(default)]
    allow_credentials: bool,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    endpoints: Option<Vec<String>>,
    connections: Option<usize>,
    balance: Option<Balance>,
    connect_timeout: Option<RawDuration>,
    keepalive_interval: Option<RawDuration>,
    keepalive_timeout: Option<RawDuration>,
    concurrency_limit: Option<usize>,
    queue_timeout: Option<RawDuration>,
    max_message_size: Option<usize>,
    default_timeout: Option<RawDuration>,
    stream_window: Option<u32>,
    connection_window: Option<u32>,
    slow_consumer_timeout: Option<RawDuration>,
    max_reconnect_backoff: Option<RawDuration>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    resolve_interval: Option<RawDuration>,
    health_check: Option<RawHealthCheck>,
    outlier_detection: Option<RawOutlier>,
    retries: Option<RawRetries>,
    required_for_ready: Option<bool>,
}

/// A duration written as `"250ms"`, `"5s"`, `"2m"` or `"1h"`.
#[derive(Clone, Copy)]
struct RawDuration(Duration);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(RawDuration)
            .ok_or_else(|| serde::de::Error::custom(not_a_duration(&text)))
    }
}

fn not_a_duration(text: &str) -> String {
    format!(
        "`{text}` is not a duration; write a number and a unit: \"250ms\", \"5s\", \"2m\", \"1h\""
    )
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Parses a config file's text; `path` only names the file in errors.
pub(super) fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let raw: RawConfig = ::toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.map(Path::to_owned),
        message: err.to_string(),
    })?;
    let invalid = |(key, message): (String, String)| ConfigError::Invalid {
        path: path.map(Path::to_owned),
        key,
        message,
    };
    let config = build(raw).map_err(invalid)?;
    config.check().map_err(invalid)?;
    Ok(config)
}

/// The raw file over the defaults; `Err((key, message))` for values that do not convert.
fn build(raw: RawConfig) -> Result<Config, (String, String)> {
    let mut config = Config::default();
    if let Some(listen) = raw.listen {
        config.listen = address("listen", &listen)?;
    }
    if let Some(admin) = raw.admin_listen {
        config.admin_listen = match admin.as_str() {
            "off" => None,
            _ => Some(address("admin_listen", &admin)?),
        };
    }
    if let Some(public) = raw.public_admin {
        config.public_admin = public;
    }
    if let Some(grace) = raw.grace_period {
        config.grace_period = grace.0;
    }
    for (name, upstream) in &raw.upstreams {
        let built = upstream_config(name, &merge(upstream, &raw.defaults))?;
        config.upstreams.insert(name.clone(), built);
    }
    config.route_prefixes = raw.route_prefixes;
    limits(&mut config.limits, raw.limits)?;
    if let Some(rest) = raw.rest {
        let target = &mut config.rest;
        set(&mut target.unknown_fields, rest.unknown_fields);
        set(&mut target.max_body_bytes, rest.max_body_bytes);
        set(&mut target.max_query_bytes, rest.max_query_bytes);
        set(&mut target.max_query_params, rest.max_query_params);
        set(&mut target.max_json_depth, rest.max_json_depth);
        set(&mut target.parse_concurrency, rest.parse_concurrency);
    }
    config.auth = raw.auth.map(auth).transpose()?;
    let limit = |requests, per: RawDuration, burst| RateLimit {
        requests,
        per: per.0,
        burst,
    };
    config.rate_limits = RateLimitConfig {
        per_caller: raw
            .rate_limits
            .per_caller
            .map(|raw| limit(raw.requests, raw.per, raw.burst)),
        routes: raw
            .rate_limits
            .routes
            .into_iter()
            .map(|raw| (raw.target, limit(raw.requests, raw.per, raw.burst)))
            .collect(),
    };
    config.descriptors = raw.descriptors.unwrap_or_default();
    config.protos = raw.protos.unwrap_or_default();
    set(&mut config.reflection, raw.reflection);
    if let Some(path) = raw.openapi_path {
        if !path.starts_with('/') || super::ADMIN_PATHS.contains(&path.as_str()) {
            return Err((
                "openapi_path".into(),
                format!("`{path}` must be a path starting with `/` other than the admin paths"),
            ));
        }
        config.openapi_path = Some(path);
    }
    if let Some(bridge) = raw.protobuf_bridge {
        config.protobuf_bridge = Some(super::BridgeConfig {
            listen: address("protobuf_bridge.listen", &bridge.listen)?,
        });
    }
    if let Some(tls) = raw.tls {
        if tls.client_auth.is_some() && tls.client_ca_file.is_none() {
            return Err((
                "tls.client_auth".into(),
                "needs `client_ca_file`, the CAs client certificates are checked against".into(),
            ));
        }
        let mut target = TlsConfig::new(tls.cert_file, tls.key_file);
        target.client_ca_file = tls.client_ca_file;
        set(&mut target.client_auth, tls.client_auth);
        set(&mut target.identity_header, tls.identity_header);
        config.tls = Some(target);
    }
    if let Some(dns) = raw.dns {
        for (index, server) in dns.servers.iter().flatten().enumerate() {
            let key = format!("dns.servers[{index}]");
            config.dns.servers.push(server.parse().map_err(|err| {
                (
                    key,
                    format!("`{server}` is not an address like \"127.0.0.1:53\": {err}"),
                )
            })?);
        }
    }
    if let Some(log) = raw.access_log {
        let target = &mut config.access_log;
        set(&mut target.enabled, log.enabled);
        target.path = log.path.filter(|path| path != "stdout").map(PathBuf::from);
        if let Some(sample) = log.sample {
            if !(0.0..=1.0).contains(&sample) {
                return Err((
                    "access_log.sample".into(),
                    format!("{sample} is not a share of calls between 0.0 and 1.0"),
                ));
            }
            target.sample = sample;
        }
        set(&mut target.off_routes, log.off_routes);
        if let Some(buffer) = log.buffer {
            if buffer == 0 {
                return Err(("access_log.buffer".into(), "must be at least 1".into()));
            }
            target.buffer = buffer;
        }
    }
    if let Some(raw) = raw.tracing {
        tracing_config(&mut config.tracing, raw)?;
    }
    config.cors = raw.cors.map(|cors| CorsConfig {
        allowed_origins: cors.allowed_origins,
        allowed_headers: cors.allowed_headers,
        exposed_headers: cors.exposed_headers,
        max_age: cors.max_age.map_or(Duration::from_secs(600), |d| d.0),
        allow_credentials: cors.allow_credentials,
    });
    Ok(config)
}

fn auth(raw: RawAuth) -> Result<AuthConfig, (String, String)> {
    let mut config = AuthConfig {
        default_policy: raw.default_policy.unwrap_or_default(),
        certificate_scopes: raw.certificate_scopes,
        ..AuthConfig::default()
    };
    if let Some(jwt) = raw.jwt {
        let mut target = JwtConfig {
            hs256_secret_file: jwt.hs256_secret_file,
            hs256_secret_env: jwt.hs256_secret_env,
            jwks_file: jwt.jwks_file,
            issuer: jwt.issuer,
            audience: jwt.audience,
            ..JwtConfig::default()
        };
        set_duration(&mut target.leeway, jwt.leeway);
        set(&mut target.scopes_claim, jwt.scopes_claim);
        set(&mut target.forward_claims, jwt.forward_claims);
        config.jwt = Some(target);
    }
    for (index, key) in raw.api_keys.into_iter().enumerate() {
        let sha256 = crate::auth::parse_sha256(&key.sha256).ok_or_else(|| {
            (
                format!("auth.api_keys[{index}].sha256"),
                "not a SHA-256 in hex (64 digits): `printf %s KEY | sha256sum`".to_owned(),
            )
        })?;
        config.api_keys.push(ApiKey {
            id: key.id,
            sha256,
            scopes: key.scopes,
        });
    }
    for (index, rule) in raw.rules.into_iter().enumerate() {
        let key = |field: &str| format!("auth.rules[{index}].{field}");
        let access = match (rule.access.as_deref(), rule.scopes) {
            (Some("public"), None) => Access::Public,
            (Some("authenticated"), None) => Access::Authenticated,
            (None, Some(scopes)) if !scopes.is_empty() => Access::Scopes(scopes),
            (Some(other), None) => {
                return Err((
                    key("access"),
                    format!(
                        "`{other}`: expected \"public\" or \"authenticated\" (or give `scopes`)"
                    ),
                ));
            }
            _ => {
                return Err((
                    key("access"),
                    "give `access = \"public\" | \"authenticated\"` or a non-empty `scopes` list, not both".to_owned(),
                ));
            }
        };
        config.rules.push(AccessRule::new(rule.target, access));
    }
    Ok(config)
}

/// `[tracing]` over its defaults.
fn tracing_config(
    target: &mut super::TracingConfig,
    raw: RawTracing,
) -> Result<(), (String, String)> {
    set(&mut target.enabled, raw.enabled);
    if target.enabled && cfg!(not(feature = "otel")) {
        return Err((
            "tracing.enabled".into(),
            "this gateway was built without tracing (the `otel` cargo feature)".into(),
        ));
    }
    if let Some(endpoint) = raw.otlp_endpoint {
        let uri: Option<http::Uri> = endpoint.parse().ok();
        let usable = uri.as_ref().is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        });
        if !usable {
            return Err((
                "tracing.otlp_endpoint".into(),
                format!(
                    "`{endpoint}` is not an OTLP/gRPC collector address like \"http://127.0.0.1:4317\""
                ),
            ));
        }
        target.otlp_endpoint = endpoint;
    }
    if let Some(ratio) = raw.sampling_ratio {
        if !(0.0..=1.0).contains(&ratio) {
            return Err((
                "tracing.sampling_ratio".into(),
                format!("{ratio} is not a share of traces between 0.0 and 1.0"),
            ));
        }
        target.sampling_ratio = ratio;
    }
    if let Some(name) = raw.service_name {
        if name.trim().is_empty() {
            return Err(("tracing.service_name".into(), "must not be empty".into()));
        }
        target.service_name = name;
    }
    for (key, value, slot) in [
        (
            "tracing.export_interval",
            raw.export_interval,
            &mut target.export_interval,
        ),
        (
            "tracing.export_timeout",
            raw.export_timeout,
            &mut target.export_timeout,
        ),
    ] {
        if let Some(RawDuration(duration)) = value {
            if duration.is_zero() {
                return Err((key.into(), "must be longer than 0".into()));
            }
            *slot = duration;
        }
    }
    if let Some(queue) = raw.max_queue {
        if queue == 0 {
            return Err(("tracing.max_queue".into(), "must be at least 1".into()));
        }
        target.max_queue = queue;
    }
    Ok(())
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

fn set_duration(target: &mut Duration, value: Option<RawDuration>) {
    set(target, value.map(|d| d.0));
}

fn address(key: &str, text: &str) -> Result<SocketAddr, (String, String)> {
    text.parse().map_err(|err| {
        (
            key.to_owned(),
            format!("`{text}` is not an address like \"0.0.0.0:8080\": {err}"),
        )
    })
}

fn limits(target: &mut super::Limits, raw: RawLimits) -> Result<(), (String, String)> {
    set(&mut target.max_header_list_bytes, raw.max_header_list_bytes);
    set_duration(&mut target.header_read_timeout, raw.header_read_timeout);
    set_duration(&mut target.sniff_timeout, raw.sniff_timeout);
    set_duration(&mut target.idle_timeout, raw.idle_timeout);
    if let Some(keepalive) = raw.keepalive_interval {
        target.keepalive_interval = match keepalive.as_str() {
            "off" => None,
            text => Some(parse_duration(text).ok_or_else(|| {
                (
                    "limits.keepalive_interval".to_owned(),
                    format!("{} (or \"off\")", not_a_duration(text)),
                )
            })?),
        };
    }
    set_duration(&mut target.keepalive_timeout, raw.keepalive_timeout);
    set(&mut target.max_connections, raw.max_connections);
    set(
        &mut target.max_concurrent_streams,
        raw.max_concurrent_streams,
    );
    set(&mut target.max_client_resets, raw.max_client_resets);
    set_duration(&mut target.reset_window, raw.reset_window);
    set(&mut target.max_address_resets, raw.max_address_resets);
    set(&mut target.max_in_flight, raw.max_in_flight);
    if raw.reserved_in_flight.is_some() {
        target.reserved_in_flight = raw.reserved_in_flight;
    }
    set_duration(&mut target.default_timeout, raw.default_timeout);
    set_duration(&mut target.max_timeout, raw.max_timeout);
    set_duration(
        &mut target.response_header_timeout,
        raw.response_header_timeout,
    );
    set_duration(&mut target.cancel_linger, raw.cancel_linger);
    set_duration(&mut target.busy_lag, raw.busy_lag);
    Ok(())
}

fn upstream_config(name: &str, raw: &RawUpstream) -> Result<UpstreamConfig, (String, String)> {
    let key = |field: &str| format!("upstreams.{}.{field}", quote_key(name));
    let mut config = UpstreamConfig::default();
    for (index, endpoint) in raw.endpoints.iter().flatten().enumerate() {
        let uri: http::Uri = endpoint.parse().map_err(|err| {
            (
                format!("{}[{index}]", key("endpoints")),
                format!("`{endpoint}` is not a URI: {err}"),
            )
        })?;
        config.endpoints.push(uri);
    }
    set(&mut config.connections, raw.connections);
    set(&mut config.balance, raw.balance);
    set_duration(&mut config.connect_timeout, raw.connect_timeout);
    config.keepalive_interval = raw.keepalive_interval.map(|d| d.0);
    config.keepalive_timeout = raw.keepalive_timeout.map(|d| d.0);
    config.concurrency_limit = raw.concurrency_limit;
    set_duration(&mut config.queue_timeout, raw.queue_timeout);
    set(&mut config.max_message_size, raw.max_message_size);
    config.default_timeout = raw.default_timeout.map(|d| d.0);
    set(&mut config.stream_window, raw.stream_window);
    set(&mut config.connection_window, raw.connection_window);
    set_duration(&mut config.slow_consumer_timeout, raw.slow_consumer_timeout);
    set_duration(&mut config.max_reconnect_backoff, raw.max_reconnect_backoff);
    config.ca_file.clone_from(&raw.ca_file);
    config.client_cert_file.clone_from(&raw.client_cert_file);
    config.client_key_file.clone_from(&raw.client_key_file);
    set_duration(&mut config.resolve_interval, raw.resolve_interval);
    config.health_check = raw.health_check.as_ref().map(|raw| {
        let mut health = HealthCheckConfig::default();
        set(&mut health.service, raw.service.clone());
        set_duration(&mut health.interval, raw.interval);
        set_duration(&mut health.timeout, raw.timeout);
        set(&mut health.unhealthy_threshold, raw.unhealthy_threshold);
        set(&mut health.healthy_threshold, raw.healthy_threshold);
        health
    });
    if let Some(raw) = &raw.outlier_detection {
        let outlier = &mut config.outlier_detection;
        set(&mut outlier.consecutive_failures, raw.consecutive_failures);
        set_duration(&mut outlier.base_ejection_time, raw.base_ejection_time);
        set_duration(&mut outlier.max_ejection_time, raw.max_ejection_time);
    }
    if let Some(raw) = &raw.retries {
        let retries = &mut config.retries;
        set(&mut retries.max_attempts, raw.max_attempts);
        set(&mut retries.budget_percent, raw.budget_percent);
        set(
            &mut retries.min_retries_per_second,
            raw.min_retries_per_second,
        );
        set(&mut retries.max_held, raw.max_held);
        set_duration(&mut retries.hold_timeout, raw.hold_timeout);
    }
    set(&mut config.required_for_ready, raw.required_for_ready);
    Ok(config)
}

/// `[upstreams.X]` over `[defaults]`, key by key.
fn merge(upstream: &RawUpstream, defaults: &RawUpstream) -> RawUpstream {
    let d = defaults.clone();
    let u = upstream.clone();
    RawUpstream {
        endpoints: u.endpoints.or(d.endpoints),
        connections: u.connections.or(d.connections),
        balance: u.balance.or(d.balance),
        connect_timeout: u.connect_timeout.or(d.connect_timeout),
        keepalive_interval: u.keepalive_interval.or(d.keepalive_interval),
        keepalive_timeout: u.keepalive_timeout.or(d.keepalive_timeout),
        concurrency_limit: u.concurrency_limit.or(d.concurrency_limit),
        queue_timeout: u.queue_timeout.or(d.queue_timeout),
        max_message_size: u.max_message_size.or(d.max_message_size),
        default_timeout: u.default_timeout.or(d.default_timeout),
        stream_window: u.stream_window.or(d.stream_window),
        connection_window: u.connection_window.or(d.connection_window),
        slow_consumer_timeout: u.slow_consumer_timeout.or(d.slow_consumer_timeout),
        max_reconnect_backoff: u.max_reconnect_backoff.or(d.max_reconnect_backoff),
        ca_file: u.ca_file.or(d.ca_file),
        client_cert_file: u.client_cert_file.or(d.client_cert_file),
        client_key_file: u.client_key_file.or(d.client_key_file),
        resolve_interval: u.resolve_interval.or(d.resolve_interval),
        health_check: u.health_check.or(d.health_check),
        outlier_detection: u.outlier_detection.or(d.outlier_detection),
        retries: u.retries.or(d.retries),
        required_for_ready: u.required_for_ready.or(d.required_for_ready),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_with_defaults() {
        let config = Config::from_toml(
            r#"
            listen = "127.0.0.1:9000"
            grace_period = "2s"
            [defaults]
            connect_timeout = "250ms"
            [upstreams."demo.v1.Greeter"]
            endpoints = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
            connections = 3
            balance = "least_loaded"
            [upstreams.other]
            endpoints = ["http://localhost:3"]
            connect_timeout = "2s"
            [route_prefixes]
            "/demo.v1.Other/" = "other"
            "/demo." = "demo.v1.Greeter"
            "#,
        )
        .expect("valid");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.grace_period, Duration::from_secs(2));
        let greeter = &config.upstreams["demo.v1.Greeter"];
        assert_eq!(greeter.connections, 3);
        assert_eq!(greeter.balance, Balance::LeastLoaded);
        assert_eq!(greeter.connect_timeout, Duration::from_millis(250));
        assert_eq!(
            config.upstreams["other"].connect_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(config.upstream_for("/demo.v1.Other/X", "d"), "other");
        assert_eq!(config.upstream_for("/demo.v2.Y/X", "d"), "demo.v1.Greeter");
        assert_eq!(config.upstream_for("/x.Y/Z", "d"), "d");
    }

    #[test]
    fn errors_name_the_key() {
        let err = |text: &str| Config::from_toml(text).expect_err("invalid").to_string();
        let e = err("[upstreams.a]\nendpoints = [\"http://x:1\"]\nconections = 2\n");
        assert!(e.contains("conections"), "{e}");
        let e =
            err("[upstreams.a]\nendpoints = [\"http://x:1\"]\nconnect_timeout = \"5 parsecs\"\n");
        assert!(
            e.contains("connect_timeout") && e.contains("duration"),
            "{e}"
        );
        let e = err("[upstreams.a]\nendpoints = [\"x:1\"]\n");
        assert!(e.contains("upstreams.a.endpoints[0]"), "{e}");
        let e = err("[upstreams.a]\nendpoints = []\n");
        assert!(e.contains("upstreams.a.endpoints"), "{e}");
        let e = err("listen = \"nowhere\"\n");
        assert!(e.contains("`listen`"), "{e}");
        let e = err("[rest]\nunknown_fields = \"drop\"\n");
        assert!(e.contains("unknown_fields"), "{e}");
        let e = err("[rest]\nmax_body = 3\n");
        assert!(e.contains("max_body"), "{e}");
        let e = err("[cors]\nallowed_origins = [\"app.example\"]\n");
        assert!(e.contains("cors.allowed_origins[0]"), "{e}");
        let e = err("[cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n");
        assert!(e.contains("cors.allow_credentials"), "{e}");
        let e = err("admin_listen = \"127.0.0.1:8080\"\nlisten = \"127.0.0.1:8080\"\n");
        assert!(e.contains("`admin_listen`"), "{e}");
        let e = err("[limits]\nkeepalive_interval = \"sometimes\"\n");
        assert!(e.contains("limits.keepalive_interval"), "{e}");
        let e = err("[limits]\nmax_connections = 0\n");
        assert!(e.contains("limits.max_connections"), "{e}");
        let config = Config::from_toml(
            "admin_listen = \"off\"\n[limits]\nkeepalive_interval = \"off\"\nmax_in_flight = 7\n",
        )
        .expect("valid");
        assert_eq!(config.admin_listen, None);
        assert_eq!(config.limits.keepalive_interval, None);
        assert_eq!(config.limits.max_in_flight, 7);
        assert_eq!(config.limits.cancel_linger, Duration::from_secs(1));
        let config = Config::from_toml("[limits]\ncancel_linger = \"0s\"\n").expect("valid");
        assert_eq!(config.limits.cancel_linger, Duration::ZERO);
        assert_eq!(config.limits.fairness_lag(), Some(Duration::from_millis(2)));
        let config = Config::from_toml("[limits]\nbusy_lag = \"0s\"\n").expect("valid");
        assert_eq!(
            config.limits.fairness_lag(),
            None,
            "0 turns fair shares off"
        );
        let config = Config::from_toml("[limits]\nbusy_lag = \"5ms\"\n").expect("valid");
        assert_eq!(config.limits.busy_lag, Duration::from_millis(5));
        let e = err("[limits]\ncancel_linger = \"2m\"\n");
        assert!(
            e.contains("limits.cancel_linger") && e.contains("60s"),
            "{e}"
        );
        let config = Config::from_toml(
            "[rest]\nunknown_fields = \"reject\"\nmax_body_bytes = 10\n[cors]\nallowed_origins = [\"https://a.example\"]\nmax_age = \"1m\"\n",
        )
        .expect("valid");
        assert_eq!(config.rest.unknown_fields, UnknownFields::Reject);
        assert_eq!(config.rest.max_body_bytes, 10);
        let cors = config.cors.expect("cors");
        assert_eq!(cors.max_age, Duration::from_secs(60));
        let e = err("[route_prefixes]\n\"/a.\" = \"missing\"\n");
        assert!(e.contains("route_prefixes") && e.contains("missing"), "{e}");
        let e = err("[upstreams.a]\nendpoints = [\"http://x:1\"]\nconnections = 0\n");
        assert!(e.contains("upstreams.a.connections"), "{e}");
    }

    #[test]
    fn discovery_health_and_retries() {
        let config = Config::from_toml(
            r#"
            [dns]
            servers = ["127.0.0.1:5353"]
            [defaults]
            resolve_interval = "2s"
            [upstreams.a]
            endpoints = ["dns://greeter.default.svc:50051", "http://127.0.0.1:1"]
            required_for_ready = false
            health_check = { service = "demo.v1.Greeter", interval = "500ms", unhealthy_threshold = 2 }
            outlier_detection = { consecutive_failures = 3 }
            retries = { budget_percent = 50, max_held = 10 }
            "#,
        )
        .expect("valid");
        assert_eq!(
            config.dns.servers,
            ["127.0.0.1:5353".parse().expect("addr")]
        );
        let a = &config.upstreams["a"];
        assert_eq!(a.resolve_interval, Duration::from_secs(2));
        assert!(!a.required_for_ready);
        let health = a.health_check.as_ref().expect("health check");
        assert_eq!(health.service, "demo.v1.Greeter");
        assert_eq!(health.interval, Duration::from_millis(500));
        assert_eq!(
            (health.unhealthy_threshold, health.healthy_threshold),
            (2, 2)
        );
        assert_eq!(a.outlier_detection.consecutive_failures, 3);
        assert_eq!((a.retries.budget_percent, a.retries.max_held), (50, 10));
        let err = |text: &str| Config::from_toml(text).expect_err("invalid").to_string();
        let e = err("[upstreams.a]\nendpoints = [\"dns://greeter\"]\n");
        assert!(
            e.contains("upstreams.a.endpoints[0]") && e.contains("port"),
            "{e}"
        );
        let e = err("[dns]\nservers = [\"localhost\"]\n");
        assert!(e.contains("dns.servers[0]"), "{e}");
        let e = err(
            "[upstreams.a]\nendpoints = [\"http://x:1\"]\nhealth_check = { healthy_threshold = 0 }\n",
        );
        assert!(
            e.contains("upstreams.a.health_check.healthy_threshold"),
            "{e}"
        );
        let e = err(
            "[upstreams.a]\nendpoints = [\"http://x:1\"]\nhealth_check = { intervall = \"1s\" }\n",
        );
        assert!(e.contains("intervall"), "{e}");
        let e = err(
            "[upstreams.a]\nendpoints = [\"http://x:1\"]\nretries = { budget_percent = 200 }\n",
        );
        assert!(e.contains("upstreams.a.retries.budget_percent"), "{e}");
        let e = err("[upstreams.a]\nendpoints = [\"http://x:1\"]\nresolve_interval = \"0s\"\n");
        assert!(e.contains("upstreams.a.resolve_interval"), "{e}");
    }

    #[test]
    fn auth_and_rate_limits() {
        let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let config = Config::from_toml(&format!(
            r#"
            [auth]
            default_policy = "allow"
            [[auth.api_keys]]
            id = "partner"
            sha256 = "{digest}"
            scopes = ["read"]
            [[auth.rules]]
            target = "/demo.v1.Calculator/"
            access = "authenticated"
            [[auth.rules]]
            target = "demo.v1.Admin"
            scopes = ["admin"]
            [rate_limits]
            per_caller = {{ requests = 10, per = "1s" }}
            [[rate_limits.routes]]
            target = "/demo.v1.Calculator/Add"
            requests = 2
            per = "1m"
            burst = 1
            "#
        ))
        .expect("valid");
        let auth = config.auth.expect("auth");
        assert_eq!(auth.default_policy, DefaultPolicy::Allow);
        assert_eq!(auth.api_keys[0].id, "partner");
        assert_eq!(auth.rules.len(), 2);
        assert_eq!(config.rate_limits.routes[0].1.burst, Some(1));
        let err = |text: &str| Config::from_toml(text).expect_err("invalid").to_string();
        let e = err("[[auth.api_keys]]\nid = \"a\"\nsha256 = \"xyz\"\n");
        assert!(e.contains("auth.api_keys[0].sha256"), "{e}");
        let e = err("[[auth.rules]]\ntarget = \"/a.B/\"\naccess = \"everyone\"\n");
        assert!(e.contains("auth.rules[0].access"), "{e}");
        let e = err("[[auth.rules]]\ntarget = \"a/b\"\naccess = \"public\"\n");
        assert!(e.contains("auth.rules[0].target"), "{e}");
        let e = err("[rate_limits]\nper_caller = { requests = 0, per = \"1s\" }\n");
        assert!(e.contains("rate_limits.per_caller"), "{e}");
    }
}
