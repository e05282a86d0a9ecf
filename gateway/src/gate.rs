//! The gate every call passes before anything is forwarded, the same for gRPC, gRPC-Web and
//! REST (REST by its route's gRPC path): authentication and authorization (`[auth]`), then the
//! caller's token buckets (`[rate_limits]`). Identity metadata the gateway forwards
//! (`x-auth-sub`, …) is always removed from what the client sent first, so it cannot be forged.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};
use tonic::{Code, Status};

use crate::auth::{self, Auth, Denied, RateLimiter};

/// The gate of one gateway: built from the config once.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    auth: Option<Auth>,
    limiter: Option<RateLimiter>,
    /// Header names the gateway sets from a verified identity.
    identity_headers: Vec<HeaderName>,
    pub(crate) unauthenticated: AtomicU64,
    pub(crate) permission_denied: AtomicU64,
}

/// Why the gate refused a call. The messages are deliberately the same whatever check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Unauthenticated,
    PermissionDenied,
    RateLimited { retry_after: Duration },
}

impl Refused {
    /// The gRPC status (the same for gRPC-Web).
    pub(crate) fn status(self) -> Status {
        match self {
            Refused::Unauthenticated => Status::unauthenticated("authentication required"),
            Refused::PermissionDenied => Status::permission_denied("permission denied"),
            Refused::RateLimited { retry_after } => Status::resource_exhausted(format!(
                "rate limit exceeded; retry in {} s",
                retry_seconds(retry_after)
            )),
        }
    }

    /// The gRPC code.
    pub(crate) fn code(self) -> Code {
        self.status().code()
    }

    /// The headers of a REST answer: `www-authenticate` with 401, `retry-after` with 429.
    pub(crate) fn http_headers(self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            Refused::Unauthenticated => vec![(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gateway\""),
            )],
            Refused::PermissionDenied => Vec::new(),
            Refused::RateLimited { retry_after } => vec![(
                header::RETRY_AFTER,
                HeaderValue::from(retry_seconds(retry_after)),
            )],
        }
    }
}

/// Whole seconds, rounded up, at least 1 (what `retry-after` carries).
fn retry_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl Gate {
    /// The gate for `[auth]` and `[rate_limits]`; `Err((key, message))` names a bad key file.
    pub(crate) fn new(
        auth: Option<&auth::AuthConfig>,
        limits: &auth::RateLimitConfig,
    ) -> Result<Self, (String, String)> {
        let identity_headers = auth
            .and_then(|auth| auth.jwt.as_ref())
            .map(|jwt| {
                jwt.forward_claims
                    .values()
                    .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Gate {
            auth: auth.map(Auth::new).transpose()?,
            limiter: RateLimiter::new(limits),
            identity_headers,
            unauthenticated: AtomicU64::new(0),
            permission_denied: AtomicU64::new(0),
        })
    }

    /// Whether the gate checks anything (no `[auth]`, no `[rate_limits]`: calls go straight on).
    pub(crate) fn is_open(&self) -> bool {
        self.auth.is_none() && self.limiter.is_none()
    }

    /// Checks a call to `path`; on success `headers` carry the verified identity's metadata,
    /// and the identity's id (`jwt:SUB`, `key:ID`, `cert:SUBJECT`) is returned for the access log.
    pub(crate) fn check(
        &self,
        path: &str,
        headers: &mut HeaderMap,
        peer: Option<IpAddr>,
        certificate: Option<&str>,
    ) -> Result<Option<Arc<str>>, Refused> {
        if self.is_open() {
            return Ok(None);
        }
        for name in &self.identity_headers {
            headers.remove(name);
        }
        let identity = match &self.auth {
            Some(auth) => {
                auth.check(path, headers, certificate)
                    .map_err(|denied| match denied {
                        Denied::Unauthenticated => {
                            self.unauthenticated.fetch_add(1, Relaxed);
                            Refused::Unauthenticated
                        }
                        Denied::PermissionDenied => {
                            self.permission_denied.fetch_add(1, Relaxed);
                            Refused::PermissionDenied
                        }
                    })?
            }
            None => None,
        };
        if let Some(limiter) = &self.limiter {
            let caller = auth::caller(identity.as_ref(), peer);
            limiter
                .check(&caller, path)
                .map_err(|retry_after| Refused::RateLimited { retry_after })?;
        }
        Ok(identity.map(|identity| {
            for (name, value) in identity.forward {
                headers.insert(name, value);
            }
            identity.id
        }))
    }

    /// Periodic upkeep: reload changed key files, forget idle rate-limit buckets.
    pub(crate) fn upkeep(&self) {
        if let Some(auth) = &self.auth {
            auth.refresh();
        }
        if let Some(limiter) = &self.limiter {
            limiter.forget_idle();
        }
    }

    /// `(name, value)` counters for `/metrics`.
    pub(crate) fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut counters = vec![
            (
                "gateway_auth_unauthenticated_total",
                self.unauthenticated.load(Relaxed),
            ),
            (
                "gateway_auth_permission_denied_total",
                self.permission_denied.load(Relaxed),
            ),
        ];
        if let Some(limiter) = &self.limiter {
            counters.push((
                "gateway_rate_limit_allowed_total",
                limiter.allowed.load(Relaxed),
            ));
            counters.push((
                "gateway_rate_limit_rejected_total",
                limiter.rejected.load(Relaxed),
            ));
        }
        counters
    }

    /// The access rules as `(pattern, access)`, for `/routes`.
    pub(crate) fn rules(&self) -> Vec<(String, String)> {
        self.auth
            .as_ref()
            .map(Auth::describe_rules)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_seconds(Duration::from_millis(10)), 1);
        assert_eq!(retry_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(retry_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn forged_identity_headers_are_removed() {
        let jwt = auth::JwtConfig {
            hs256_secret_env: Some("GATE_TEST_UNSET_SECRET".into()),
            ..auth::JwtConfig::default()
        };
        // No secret in the environment: the verifier cannot be built, which is a config error.
        let config = auth::AuthConfig {
            jwt: Some(jwt),
            default_policy: auth::DefaultPolicy::Allow,
            ..auth::AuthConfig::default()
        };
        assert!(Gate::new(Some(&config), &auth::RateLimitConfig::default()).is_err());
        let open = auth::AuthConfig {
            default_policy: auth::DefaultPolicy::Allow,
            ..auth::AuthConfig::default()
        };
        let mut gate = Gate::new(Some(&open), &auth::RateLimitConfig::default()).expect("gate");
        gate.identity_headers = vec![HeaderName::from_static("x-auth-sub")];
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-sub", HeaderValue::from_static("admin"));
        assert_eq!(gate.check("/a.B/C", &mut headers, None, None), Ok(None));
        assert!(headers.get("x-auth-sub").is_none());
    }
}
