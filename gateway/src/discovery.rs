//! `dns://name:port` endpoints: the name is resolved (A and AAAA) at start, every
//! `resolve_interval`, and soon after a connection to one of its addresses fails; pool.rs
//! gives each address its own connections and drains the ones that disappear.
//!
//! The resolver is hickory-resolver rather than the C library's `getaddrinfo` (what
//! `tokio::net::lookup_host` calls): it asks the servers of `[dns]` directly, so a test (or a
//! sidecar) can answer on 127.0.0.1 with any port, it does not block a thread per lookup, and
//! it keeps no cache between resolutions, so a changed record is seen at the next one.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;

use crate::config::DnsConfig;
use crate::pool::Shared;

/// The quickest a failed connection triggers another resolution after the last one.
const MIN_RESOLVE_GAP: Duration = Duration::from_millis(500);

/// A resolver built from `[dns]`.
#[derive(Debug, Clone)]
pub(crate) struct Resolver(Arc<TokioResolver>);

/// Why a name could not be resolved. An answer with no address is not an error: it is an
/// empty set of addresses.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve `{name}`: {reason}")]
pub(crate) struct ResolveError {
    name: String,
    reason: String,
}

impl Resolver {
    /// The resolver of `config`: its servers, else the system's (`/etc/resolv.conf`).
    pub(crate) fn new(config: &DnsConfig) -> Result<Self, String> {
        let provider = TokioConnectionProvider::default();
        let mut builder = if config.servers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|err| format!("cannot read the system's DNS configuration: {err}"))?
        } else {
            let mut servers = NameServerConfigGroup::new();
            for server in &config.servers {
                servers.merge(NameServerConfigGroup::from_ips_clear(
                    &[server.ip()],
                    server.port(),
                    true,
                ));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], servers),
                provider,
            )
        };
        let options: &mut ResolverOpts = builder.options_mut();
        // Each resolution asks again: the interval, not record TTLs, says how stale a set is.
        options.cache_size = 0;
        options.timeout = Duration::from_secs(2);
        options.attempts = 2;
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        Ok(Resolver(Arc::new(builder.build())))
    }

    /// The addresses of `host` (sorted, without duplicates), each with `port`.
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        // A literal address needs no server.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        // A trailing dot: the name is absolute, no search domains.
        match self.0.lookup_ip(host).await {
            Ok(lookup) => {
                let mut addrs: Vec<SocketAddr> =
                    lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                addrs.sort_unstable();
                addrs.dedup();
                Ok(addrs)
            }
            Err(err) if err.is_no_records_found() => Ok(Vec::new()),
            Err(err) => Err(ResolveError {
                name: host.to_owned(),
                reason: err.to_string(),
            }),
        }
    }
}

/// One `dns://` endpoint of an upstream.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// Resolves an upstream's `dns://` endpoints every `interval`, and when a connection failed
/// (at most every [`MIN_RESOLVE_GAP`]), until the upstream is dropped.
pub(crate) async fn resolve_loop(upstream: Weak<Shared>, interval: Duration) {
    let mut last = tokio::time::Instant::now();
    loop {
        let Some(shared) = upstream.upgrade() else {
            return;
        };
        let failed = shared.settings.resolve_now.clone();
        drop(shared);
        tokio::select! {
            () = tokio::time::sleep_until(last + interval) => {}
            () = failed.notified() => {
                tokio::time::sleep_until(last + MIN_RESOLVE_GAP).await;
            }
        }
        last = tokio::time::Instant::now();
        let Some(shared) = upstream.upgrade() else {
            return;
        };
        shared.resolve_all().await;
    }
}
