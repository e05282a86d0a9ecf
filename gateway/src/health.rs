//! Endpoint health: active checks with `grpc.health.v1.Health/Check` and passive outlier
//! detection. Either one takes an endpoint out of rotation (no new calls; calls in flight go
//! on); pool.rs reads [`EndpointHealth::eligible`] when it picks a connection.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::config::{HealthCheckConfig, OutlierConfig};
use crate::metrics::UpstreamMetrics;
use crate::pool::{EndpointPool, now_ms};

/// What the gateway knows of one endpoint's health.
#[derive(Debug)]
pub(crate) struct EndpointHealth {
    /// Connected at least once: a newly discovered address takes calls only from then on
    /// (configured `http://` endpoints are admitted from the start).
    admitted: AtomicBool,
    /// The active checks' verdict (true without checks).
    checked_healthy: AtomicBool,
    /// Failures in a row (passive detection).
    failures: AtomicU32,
    /// Until when (`now_ms`) the endpoint is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    /// Ejections since the last successful call: the next one lasts 2^this times longer.
    ejections: AtomicU32,
    outlier: OutlierConfig,
    metrics: Arc<UpstreamMetrics>,
}

/// An endpoint's state, as `/metrics` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointState {
    /// Takes calls.
    Healthy,
    /// Discovered, not connected yet: takes no calls.
    Connecting,
    /// Failed its active health checks: takes no new calls.
    Unhealthy,
    /// Ejected by outlier detection: takes no new calls until the ejection ends.
    Ejected,
}

impl EndpointState {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EndpointState::Healthy => "healthy",
            EndpointState::Connecting => "connecting",
            EndpointState::Unhealthy => "unhealthy",
            EndpointState::Ejected => "ejected",
        }
    }
}

impl EndpointHealth {
    pub(crate) fn new(
        admitted: bool,
        outlier: &OutlierConfig,
        metrics: Arc<UpstreamMetrics>,
    ) -> Self {
        EndpointHealth {
            admitted: AtomicBool::new(admitted),
            checked_healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            outlier: outlier.clone(),
            metrics,
        }
    }

    pub(crate) fn state(&self, now: u64) -> EndpointState {
        if !self.admitted.load(Relaxed) {
            EndpointState::Connecting
        } else if !self.checked_healthy.load(Relaxed) {
            EndpointState::Unhealthy
        } else if self.ejected_until.load(Relaxed) > now {
            EndpointState::Ejected
        } else {
            EndpointState::Healthy
        }
    }

    /// Whether the endpoint may take new calls.
    pub(crate) fn eligible(&self, now: u64) -> bool {
        self.state(now) == EndpointState::Healthy
    }

    pub(crate) fn is_admitted(&self) -> bool {
        self.admitted.load(Relaxed)
    }

    /// A connection to the endpoint is up.
    pub(crate) fn admit(&self) {
        self.admitted.store(true, Relaxed);
    }

    /// A call reached the application (any answer but `UNAVAILABLE`).
    pub(crate) fn success(&self) {
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
        if self.ejections.load(Relaxed) != 0 && self.ejected_until.load(Relaxed) <= now_ms() {
            self.ejections.store(0, Relaxed);
        }
    }

    /// A connection failure or an `UNAVAILABLE` answer: ejects the endpoint after
    /// `consecutive_failures` in a row.
    pub(crate) fn failure(&self, endpoint: &http::Uri) {
        let limit = self.outlier.consecutive_failures;
        if limit == 0 || self.failures.fetch_add(1, Relaxed) + 1 < limit {
            return;
        }
        self.failures.store(0, Relaxed);
        let now = now_ms();
        if self.ejected_until.load(Relaxed) > now {
            return;
        }
        let ejections = self.ejections.fetch_add(1, Relaxed).min(16);
        let length = self
            .outlier
            .base_ejection_time
            .saturating_mul(1 << ejections)
            .min(self.outlier.max_ejection_time);
        self.ejected_until
            .store(now + crate::pool::millis(length), Relaxed);
        self.metrics.protection.ejections.fetch_add(1, Relaxed);
        tracing::warn!(%endpoint, "{limit} failures in a row: endpoint ejected for {length:?}");
    }

    fn set_checked(&self, healthy: bool, endpoint: &http::Uri) {
        if self.checked_healthy.swap(healthy, Relaxed) != healthy {
            if healthy {
                tracing::info!(%endpoint, "health checks pass again: endpoint back in rotation");
            } else {
                tracing::warn!(%endpoint, "health checks fail: endpoint out of rotation");
            }
        }
    }
}

/// Checks one endpoint every `interval` until it is gone (removed from DNS or the upstream
/// dropped). The checks go over the endpoint's own pooled connections, so they also see what
/// calls would see.
pub(crate) async fn check_loop(endpoint: Weak<EndpointPool>, config: HealthCheckConfig) {
    let (mut passes, mut fails) = (0u32, 0u32);
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pool) = endpoint.upgrade() else {
            return;
        };
        let verdict = check(&pool, &config).await;
        if let Err(reason) = &verdict {
            tracing::debug!(endpoint = %pool.uri, "health check failed: {reason}");
        }
        if verdict.is_ok() {
            (passes, fails) = (passes.saturating_add(1), 0);
            if passes >= config.healthy_threshold {
                pool.health.set_checked(true, &pool.uri);
            }
        } else {
            (passes, fails) = (0, fails.saturating_add(1));
            if fails >= config.unhealthy_threshold {
                pool.health.set_checked(false, &pool.uri);
            }
        }
    }
}

/// One `Health/Check` call: `Ok` for `SERVING`, else what was wrong.
async fn check(pool: &EndpointPool, config: &HealthCheckConfig) -> Result<(), String> {
    let Some(connection) = pool.checker() else {
        return Err("no connection up".into());
    };
    let mut client = HealthClient::new(connection);
    let request = HealthCheckRequest {
        service: config.service.clone(),
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(config.timeout);
    match tokio::time::timeout(config.timeout, client.check(request)).await {
        Err(_) => Err(format!("no answer within {:?}", config.timeout)),
        Ok(Err(status)) => Err(format!("{status}")),
        Ok(Ok(response)) => match response.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(format!("status {}", other.as_str_name())),
        },
    }
}
