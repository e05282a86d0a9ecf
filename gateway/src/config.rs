//! The gateway's TOML configuration (see the [gateway module docs](super) for every key).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::transcode::UnknownFields;

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
    /// How long in-flight calls may run after a shutdown signal.
    pub grace_period: Duration,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Path prefix → upstream name; the longest matching prefix wins over a route's default.
    pub route_prefixes: BTreeMap<String, String>,
    /// REST/JSON transcoding (`[rest]`).
    pub rest: RestConfig,
    /// CORS for REST and gRPC-Web (`[cors]`); none by default (no CORS headers, preflight
    /// requests are not answered).
    pub cors: Option<CorsConfig>,
}

/// REST/JSON settings (`[rest]`).
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// JSON fields the request type does not have: ignored (default) or rejected with 400.
    pub unknown_fields: UnknownFields,
    /// Largest REST request body; larger ones answer 413 (default 4 MiB).
    pub max_body_bytes: usize,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            unknown_fields: UnknownFields::Ignore,
            max_body_bytes: 4 * 1024 * 1024,
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
    /// Endpoint URIs, `http://host:port`.
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
    /// Largest gRPC message in either direction; larger ones end the call with
    /// `RESOURCE_EXHAUSTED`.
    pub max_message_size: usize,
    /// The deadline sent upstream when a client sets no `grpc-timeout`.
    pub default_timeout: Option<Duration>,
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
            max_message_size: 4 * 1024 * 1024,
            default_timeout: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grace_period: Duration::from_secs(10),
            upstreams: BTreeMap::new(),
            route_prefixes: BTreeMap::new(),
            rest: RestConfig::default(),
            cors: None,
        }
    }
}

impl Config {
    /// Adds (or replaces) the upstream `name`.
    pub fn upstream(mut self, name: &str, upstream: UpstreamConfig) -> Self {
        self.upstreams.insert(name.to_owned(), upstream);
        self
    }

    /// Loads a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        parse(&text, Some(path))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        parse(text, None)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    grace_period: Option<RawDuration>,
    #[serde(default)]
    defaults: RawUpstream,
    #[serde(default)]
    upstreams: BTreeMap<String, RawUpstream>,
    #[serde(default)]
    route_prefixes: BTreeMap<String, String>,
    rest: Option<RawRest>,
    cors: Option<RawCors>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRest {
    unknown_fields: Option<UnknownFields>,
    max_body_bytes: Option<usize>,
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
    max_message_size: Option<usize>,
    default_timeout: Option<RawDuration>,
}

/// A duration written as `"250ms"`, `"5s"`, `"2m"` or `"1h"`.
#[derive(Clone, Copy)]
struct RawDuration(Duration);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(RawDuration)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration; write a number and a unit: \"250ms\", \"5s\", \"2m\", \"1h\""
                ))
            })
    }
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

fn parse(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.map(Path::to_owned),
        message: err.to_string(),
    })?;
    let invalid = |key: String, message: String| ConfigError::Invalid {
        path: path.map(Path::to_owned),
        key,
        message,
    };
    let defaults = Config::default();
    let listen = match raw.listen {
        Some(listen) => listen.parse().map_err(|err| {
            invalid(
                "listen".into(),
                format!("`{listen}` is not an address like \"0.0.0.0:8080\": {err}"),
            )
        })?,
        None => defaults.listen,
    };
    let mut upstreams = BTreeMap::new();
    for (name, upstream) in raw.upstreams {
        let key = |field: &str| format!("upstreams.{}.{field}", quote_key(&name));
        let merged = merge(&upstream, &raw.defaults);
        let base = UpstreamConfig::default();
        let endpoints = merged.endpoints.unwrap_or_default();
        if endpoints.is_empty() {
            return Err(invalid(
                key("endpoints"),
                "an upstream needs at least one endpoint, e.g. endpoints = [\"http://127.0.0.1:50051\"]".into(),
            ));
        }
        let mut uris = Vec::with_capacity(endpoints.len());
        for (index, endpoint) in endpoints.iter().enumerate() {
            let uri: http::Uri = endpoint.parse().map_err(|err| {
                invalid(
                    format!("{}[{index}]", key("endpoints")),
                    format!("`{endpoint}` is not a URI: {err}"),
                )
            })?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(invalid(
                    format!("{}[{index}]", key("endpoints")),
                    format!("`{endpoint}` must look like \"http://host:port\""),
                ));
            }
            uris.push(uri);
        }
        let connections = merged.connections.unwrap_or(base.connections);
        if connections == 0 {
            return Err(invalid(key("connections"), "must be at least 1".into()));
        }
        if merged.concurrency_limit == Some(0) {
            return Err(invalid(
                key("concurrency_limit"),
                "must be at least 1 (omit it for no limit)".into(),
            ));
        }
        let max_message_size = merged.max_message_size.unwrap_or(base.max_message_size);
        if max_message_size == 0 {
            return Err(invalid(
                key("max_message_size"),
                "must be at least 1 byte".into(),
            ));
        }
        upstreams.insert(
            name.clone(),
            UpstreamConfig {
                endpoints: uris,
                connections,
                balance: merged.balance.unwrap_or(base.balance),
                connect_timeout: merged.connect_timeout.map_or(base.connect_timeout, |d| d.0),
                keepalive_interval: merged.keepalive_interval.map(|d| d.0),
                keepalive_timeout: merged.keepalive_timeout.map(|d| d.0),
                concurrency_limit: merged.concurrency_limit,
                max_message_size,
                default_timeout: merged.default_timeout.map(|d| d.0),
            },
        );
    }
    for (prefix, upstream) in &raw.route_prefixes {
        let key = format!("route_prefixes.{}", quote_key(prefix));
        if !prefix.starts_with('/') {
            return Err(invalid(
                key,
                "a route prefix is a gRPC path prefix and starts with `/`, e.g. \"/demo.v1.\""
                    .into(),
            ));
        }
        if !upstreams.contains_key(upstream) {
            return Err(invalid(
                key,
                format!(
                    "no upstream named `{upstream}`; add [upstreams.{}]",
                    quote_key(upstream)
                ),
            ));
        }
    }
    let mut rest = RestConfig::default();
    if let Some(raw_rest) = raw.rest {
        rest.unknown_fields = raw_rest.unknown_fields.unwrap_or(rest.unknown_fields);
        if let Some(max) = raw_rest.max_body_bytes {
            if max == 0 {
                return Err(invalid(
                    "rest.max_body_bytes".into(),
                    "must be at least 1 byte".into(),
                ));
            }
            rest.max_body_bytes = max;
        }
    }
    let cors = match raw.cors {
        None => None,
        Some(raw_cors) => {
            Some(parse_cors(raw_cors).map_err(|(key, message)| invalid(key, message))?)
        }
    };
    Ok(Config {
        listen,
        grace_period: raw.grace_period.map_or(defaults.grace_period, |d| d.0),
        upstreams,
        route_prefixes: raw.route_prefixes,
        rest,
        cors,
    })
}

fn parse_cors(raw: RawCors) -> Result<CorsConfig, (String, String)> {
    let cors = CorsConfig {
        allowed_origins: raw.allowed_origins,
        allowed_headers: raw.allowed_headers,
        exposed_headers: raw.exposed_headers,
        max_age: raw.max_age.map_or(Duration::from_secs(600), |d| d.0),
        allow_credentials: raw.allow_credentials,
    };
    cors.check()?;
    Ok(cors)
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
        max_message_size: u.max_message_size.or(d.max_message_size),
        default_timeout: u.default_timeout.or(d.default_timeout),
    }
}

fn quote_key(key: &str) -> String {
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
}
