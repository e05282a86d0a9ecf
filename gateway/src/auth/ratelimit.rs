//! Token buckets (governor) per caller and per route: a caller is its identity when
//! authenticated, else its IP address. Streams count once, when they start.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// One token bucket: `requests` calls per `per`, with bursts of up to `burst` (default: `requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per period.
    pub requests: u32,
    /// The period.
    pub per: Duration,
    /// Calls allowed at once after a quiet time (default: `requests`).
    pub burst: Option<u32>,
}

impl RateLimit {
    fn quota(&self) -> Option<Quota> {
        let requests = NonZeroU32::new(self.requests)?;
        let interval = self.per.checked_div(requests.get())?;
        let burst = NonZeroU32::new(self.burst.unwrap_or(self.requests))?;
        Some(Quota::with_period(interval)?.allow_burst(burst))
    }

    /// `Err(message)` for a bucket that would never allow a call.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.quota().is_none() {
            return Err("`requests` and `burst` must be at least 1 and `per` longer than 0".into());
        }
        Ok(())
    }
}

/// `[rate_limits]`: buckets per caller, and per caller on given routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Every caller's bucket for all its calls; none by default.
    pub per_caller: Option<RateLimit>,
    /// Buckets per caller on one route, prefix or service (the rule target syntax of
    /// [`AccessRule`](crate::AccessRule)), checked as well as `per_caller`.
    pub routes: Vec<(String, RateLimit)>,
}

/// Who a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// An authenticated identity (`jwt:sub`, `key:id`, `cert:subject`).
    Identity(Arc<str>),
    /// An anonymous caller, by address.
    Address(IpAddr),
}

type Limiter = DefaultKeyedRateLimiter<Caller>;

/// The buckets, with counters for `/metrics`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_caller: Option<Limiter>,
    routes: Vec<(String, Limiter)>,
    pub(crate) allowed: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

impl RateLimiter {
    pub(crate) fn new(config: &RateLimitConfig) -> Option<Self> {
        let per_caller = config
            .per_caller
            .and_then(|limit| limit.quota())
            .map(Limiter::keyed);
        let routes: Vec<(String, Limiter)> = config
            .routes
            .iter()
            .filter_map(|(target, limit)| {
                let prefix = if target.starts_with('/') {
                    target.clone()
                } else {
                    format!("/{target}/")
                };
                Some((prefix, Limiter::keyed(limit.quota()?)))
            })
            .collect();
        if per_caller.is_none() && routes.is_empty() {
            return None;
        }
        Some(RateLimiter {
            per_caller,
            routes,
            allowed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    /// Takes a token for `caller` calling `path`; `Err(wait)` when a bucket is empty, with how
    /// long until it has one (for `retry-after`).
    pub(crate) fn check(&self, caller: &Caller, path: &str) -> Result<(), Duration> {
        let clock = DefaultClock::default();
        // Route buckets first: they are the narrower ones, so a call they refuse does not
        // also spend a token of the caller's general bucket.
        let buckets = self
            .routes
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, limiter)| limiter)
            .chain(self.per_caller.iter());
        for limiter in buckets {
            if let Err(not_until) = limiter.check_key(caller) {
                self.rejected.fetch_add(1, Relaxed);
                return Err(not_until.wait_time_from(clock.now()));
            }
        }
        self.allowed.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Forgets callers whose buckets are full again, so the key store does not grow with every
    /// address ever seen.
    pub(crate) fn forget_idle(&self) {
        for limiter in self
            .per_caller
            .iter()
            .chain(self.routes.iter().map(|(_, l)| l))
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_empties_per_caller() {
        let config = RateLimitConfig {
            per_caller: Some(RateLimit {
                requests: 3,
                per: Duration::from_secs(60),
                burst: None,
            }),
            routes: vec![(
                "/demo.v1.Calculator/Add".into(),
                RateLimit {
                    requests: 1,
                    per: Duration::from_secs(60),
                    burst: None,
                },
            )],
        };
        let limiter = RateLimiter::new(&config).expect("limits");
        let ann = Caller::Identity("jwt:ann".into());
        let bob = Caller::Address("127.0.0.2".parse().expect("ip"));
        assert!(limiter.check(&ann, "/demo.v1.Calculator/Add").is_ok());
        let wait = limiter
            .check(&ann, "/demo.v1.Calculator/Add")
            .expect_err("route bucket empty");
        assert!(wait > Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(&ann, "/demo.v1.Greeter/SayHello").is_ok());
        assert!(limiter.check(&bob, "/demo.v1.Calculator/Add").is_ok());
        // The refused call spent none of ann's three: two are used, one is left.
        assert!(limiter.check(&ann, "/demo.v1.Greeter/SayHello").is_ok());
        assert!(limiter.check(&ann, "/demo.v1.Greeter/SayHello").is_err());
        assert_eq!(limiter.rejected.load(Relaxed), 2);
        assert!(
            RateLimit {
                requests: 0,
                per: Duration::from_secs(1),
                burst: None
            }
            .check()
            .is_err()
        );
    }
}
