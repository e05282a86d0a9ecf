//! Authentication, authorization and rate limits, checked before anything is forwarded and the
//! same for gRPC, gRPC-Web and REST (REST is checked against its route's gRPC path).
//!
//! - Who is calling: a JWT bearer token (`jwt.rs`), an API key (`x-api-key: KEY` or
//!   `authorization: ApiKey KEY`, stored as SHA-256 hashes), or a verified client certificate
//!   (mTLS). Invalid credentials are refused even where a rule is `public`.
//! - What they may call: per method, prefix or service rules, and a default policy (`rules.rs`).
//! - How often: token buckets per caller and route (`ratelimit.rs`).
//!
//! Refusals say nothing of which check failed: `UNAUTHENTICATED` (REST 401 with
//! `www-authenticate`) without a valid identity, `PERMISSION_DENIED` (403) with one.

mod jwt;
mod ratelimit;
mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

pub use jwt::JwtConfig;
pub use ratelimit::{RateLimit, RateLimitConfig};
pub use rules::{Access, AccessRule, DefaultPolicy};

pub(crate) use ratelimit::{Caller, RateLimiter};

/// An API key: its id (used in logs, metrics and rate limits), the SHA-256 of the key, and the
/// scopes it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// A name for the key, e.g. `partner-a`.
    pub id: String,
    /// SHA-256 of the key (`printf %s KEY | sha256sum`), so the config holds no secret.
    pub sha256: [u8; 32],
    /// Scopes the key grants.
    pub scopes: BTreeSet<String>,
}

/// `[auth]`: with it, every call is checked; without it, the gateway forwards as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Calls no rule names: `deny` (default) or `allow` (public).
    pub default_policy: DefaultPolicy,
    /// Bearer tokens.
    pub jwt: Option<JwtConfig>,
    /// API keys.
    pub api_keys: Vec<ApiKey>,
    /// Scopes of verified client certificates, by subject (`CN=…`); a certificate with no entry
    /// is authenticated with no scopes.
    pub certificate_scopes: BTreeMap<String, BTreeSet<String>>,
    /// The rules, most specific first whatever their order here.
    pub rules: Vec<AccessRule>,
}

impl AuthConfig {
    /// `Err((key, message))` for the first bad value.
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        for (index, rule) in self.rules.iter().enumerate() {
            rule.check()
                .map_err(|message| (format!("auth.rules[{index}].target"), message))?;
        }
        let mut ids = BTreeSet::new();
        for (index, key) in self.api_keys.iter().enumerate() {
            if !ids.insert(key.id.as_str()) {
                return Err((
                    format!("auth.api_keys[{index}].id"),
                    format!("`{}` is used twice", key.id),
                ));
            }
        }
        if let Some(jwt) = &self.jwt {
            for (index, header) in jwt.forward_claims.values().enumerate() {
                if HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err((
                        format!("auth.jwt.forward_claims[{index}]"),
                        format!("`{header}` is not a header name"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A caller the gateway has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// `jwt:SUB`, `key:ID` or `cert:SUBJECT`: logs and rate-limit buckets.
    pub(crate) id: Arc<str>,
    pub(crate) scopes: BTreeSet<String>,
    /// Metadata forwarded upstream (JWT claims).
    pub(crate) forward: Vec<(HeaderName, HeaderValue)>,
}

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No valid identity where one is needed, or invalid credentials.
    Unauthenticated,
    /// A valid identity without the scopes the rule needs.
    PermissionDenied,
}

/// The checks of one gateway, built from `[auth]`.
#[derive(Debug)]
pub(crate) struct Auth {
    default_policy: DefaultPolicy,
    jwt: Option<jwt::JwtVerifier>,
    api_keys: Vec<ApiKey>,
    certificate_scopes: BTreeMap<String, BTreeSet<String>>,
    rules: rules::Rules,
}

const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

impl Auth {
    /// Loads the keys; `Err((key, message))` names the config key of a file that fails.
    pub(crate) fn new(config: &AuthConfig) -> Result<Self, (String, String)> {
        config.check()?;
        Ok(Auth {
            default_policy: config.default_policy,
            jwt: config.jwt.as_ref().map(jwt::JwtVerifier::new).transpose()?,
            api_keys: config.api_keys.clone(),
            certificate_scopes: config.certificate_scopes.clone(),
            rules: rules::Rules::new(&config.rules),
        })
    }

    /// Reloads key files that changed (JWKS).
    pub(crate) fn refresh(&self) {
        if let Some(jwt) = &self.jwt {
            jwt.refresh();
        }
    }

    /// The rules, for `/routes`.
    pub(crate) fn describe_rules(&self) -> Vec<(String, String)> {
        self.rules.describe()
    }

    /// Decides a call to `path`: the caller's identity (`None`: anonymous, allowed by a public
    /// rule) or why it is refused. `certificate` is the verified client certificate's subject.
    pub(crate) fn check(
        &self,
        path: &str,
        headers: &HeaderMap,
        certificate: Option<&str>,
    ) -> Result<Option<Identity>, Denied> {
        let identity = self.identify(headers, certificate)?;
        let access = match self.rules.access(path) {
            Some(access) => access,
            None => match self.default_policy {
                DefaultPolicy::Allow => &Access::Public,
                DefaultPolicy::Deny => {
                    return Err(match identity {
                        Some(_) => Denied::PermissionDenied,
                        None => Denied::Unauthenticated,
                    });
                }
            },
        };
        match (access, &identity) {
            (Access::Public, _) => Ok(identity),
            (_, None) => Err(Denied::Unauthenticated),
            (Access::Authenticated, Some(_)) => Ok(identity),
            (Access::Scopes(needed), Some(who)) => {
                if needed.is_subset(&who.scopes) {
                    Ok(identity)
                } else {
                    Err(Denied::PermissionDenied)
                }
            }
        }
    }

    /// The identity the request's credentials prove, `None` without credentials.
    fn identify(
        &self,
        headers: &HeaderMap,
        certificate: Option<&str>,
    ) -> Result<Option<Identity>, Denied> {
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .map(|value| value.to_str().map_err(|_| Denied::Unauthenticated))
            .transpose()?;
        let (scheme, credential) = match authorization {
            Some(value) => value
                .split_once(' ')
                .map(|(scheme, rest)| (Some(scheme), Some(rest.trim())))
                .ok_or(Denied::Unauthenticated)?,
            None => (None, None),
        };
        if let (Some(scheme), Some(token)) = (scheme, credential)
            && scheme.eq_ignore_ascii_case("bearer")
        {
            let jwt = self.jwt.as_ref().ok_or(Denied::Unauthenticated)?;
            let verified = jwt.verify(token).map_err(|reason| {
                tracing::info!("refused a bearer token: {reason}");
                Denied::Unauthenticated
            })?;
            let forward = verified
                .forward
                .into_iter()
                .filter_map(|(name, value)| {
                    Some((
                        HeaderName::from_bytes(name.as_bytes()).ok()?,
                        HeaderValue::from_str(&value).ok()?,
                    ))
                })
                .collect();
            return Ok(Some(Identity {
                id: format!("jwt:{}", verified.subject).into(),
                scopes: verified.scopes,
                forward,
            }));
        }
        let key = match (scheme, credential) {
            (Some(scheme), Some(key)) if scheme.eq_ignore_ascii_case("apikey") => Some(key),
            (Some(_), _) => return Err(Denied::Unauthenticated),
            (None, _) => headers
                .get(API_KEY)
                .map(|value| value.to_str().map_err(|_| Denied::Unauthenticated))
                .transpose()?,
        };
        if let Some(key) = key {
            let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            let found = self
                .api_keys
                .iter()
                .find(|entry| constant_time_eq(&entry.sha256, &digest));
            return match found {
                Some(entry) => Ok(Some(Identity {
                    id: format!("key:{}", entry.id).into(),
                    scopes: entry.scopes.clone(),
                    forward: Vec::new(),
                })),
                None => {
                    tracing::info!("refused an unknown API key");
                    Err(Denied::Unauthenticated)
                }
            };
        }
        Ok(certificate.map(|subject| Identity {
            id: format!("cert:{subject}").into(),
            scopes: self
                .certificate_scopes
                .get(subject)
                .cloned()
                .unwrap_or_default(),
            forward: Vec::new(),
        }))
    }
}

/// Compares digests without an early exit, so timing says nothing of how much matched.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bucket key of a caller: its identity, else its address.
pub(crate) fn caller(identity: Option<&Identity>, address: Option<IpAddr>) -> Caller {
    match (identity, address) {
        (Some(identity), _) => Caller::Identity(identity.id.clone()),
        (None, Some(address)) => Caller::Address(address),
        (None, None) => Caller::Identity("anonymous".into()),
    }
}

/// Parses a hex SHA-256 (64 hex digits) from the config.
pub(crate) fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, chunk) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).ok()?;
        out[index] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str, scopes: &[&str]) -> ApiKey {
        ApiKey {
            id: id.into(),
            sha256: Sha256::digest(secret.as_bytes()).into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_str(value).expect("value"),
                )
            })
            .collect()
    }

    fn auth() -> Auth {
        Auth::new(&AuthConfig {
            default_policy: DefaultPolicy::Deny,
            api_keys: vec![
                key("reader", "k-read", &["read"]),
                key("admin", "k-admin", &["read", "admin"]),
            ],
            certificate_scopes: BTreeMap::from([(
                "CN=partner".to_owned(),
                BTreeSet::from(["read".to_owned()]),
            )]),
            rules: vec![
                AccessRule::new("demo.v1.Greeter", Access::Public),
                AccessRule::new("/demo.v1.Calculator/", Access::Authenticated),
                AccessRule::new(
                    "/demo.v1.Calculator/Reset",
                    Access::Scopes(BTreeSet::from(["admin".to_owned()])),
                ),
            ],
            ..AuthConfig::default()
        })
        .expect("valid")
    }

    #[test]
    fn identities_and_rules() {
        let auth = auth();
        let none = HeaderMap::new();
        let reader = headers(&[("x-api-key", "k-read")]);
        let admin = headers(&[("authorization", "ApiKey k-admin")]);
        let wrong = headers(&[("x-api-key", "guess")]);
        let bearer = headers(&[("authorization", "Bearer abc")]);

        assert_eq!(
            auth.check("/demo.v1.Greeter/SayHello", &none, None),
            Ok(None)
        );
        assert_eq!(
            auth.check("/demo.v1.Greeter/SayHello", &wrong, None),
            Err(Denied::Unauthenticated),
            "invalid credentials are refused even on public methods"
        );
        assert_eq!(
            auth.check("/demo.v1.Calculator/Add", &none, None),
            Err(Denied::Unauthenticated)
        );
        let who = auth
            .check("/demo.v1.Calculator/Add", &reader, None)
            .expect("allowed")
            .expect("identified");
        assert_eq!(&*who.id, "key:reader");
        assert_eq!(
            auth.check("/demo.v1.Calculator/Reset", &reader, None),
            Err(Denied::PermissionDenied)
        );
        assert!(
            auth.check("/demo.v1.Calculator/Reset", &admin, None)
                .is_ok()
        );
        assert_eq!(
            auth.check("/demo.v1.Calculator/Add", &bearer, None),
            Err(Denied::Unauthenticated),
            "no JWT configured"
        );
        // Default deny: a method in no rule.
        assert_eq!(
            auth.check("/other.v1.Svc/X", &none, None),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            auth.check("/other.v1.Svc/X", &admin, None),
            Err(Denied::PermissionDenied)
        );
        let cert = auth
            .check("/demo.v1.Calculator/Add", &none, Some("CN=partner"))
            .expect("allowed")
            .expect("identified");
        assert_eq!(&*cert.id, "cert:CN=partner");
        assert!(cert.scopes.contains("read"));
    }

    #[test]
    fn hashes_parse() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_sha256(&hex), Some(digest));
        assert_eq!(parse_sha256("abc"), None);
        assert_eq!(parse_sha256(&"zz".repeat(32)), None);
    }
}
