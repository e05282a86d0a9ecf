//! The retry budget of an upstream: retries allowed as a share of its recent calls, so that a
//! failing cluster gets at most that much extra load from the gateway (the budget of Linkerd
//! and Envoy's `retry_budget`, over a sliding window of one-second buckets).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::config::RetryConfig;

/// The window the budget looks back over, in seconds.
const WINDOW_SECS: u64 = 10;

/// One second of calls and retries.
#[derive(Debug, Default)]
struct Bucket {
    /// The second (since the process's first call) the counts belong to.
    second: AtomicU64,
    calls: AtomicU64,
    retries: AtomicU64,
}

/// Calls and retries of the last [`WINDOW_SECS`] seconds. The counts are approximate under
/// races at a bucket's turn of second, which a budget can afford.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    percent: u64,
    min_per_second: u64,
    buckets: [Bucket; WINDOW_SECS as usize],
}

fn now_secs() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 1
}

impl RetryBudget {
    pub(crate) fn new(config: &RetryConfig) -> Self {
        RetryBudget {
            percent: u64::from(config.budget_percent),
            min_per_second: u64::from(config.min_retries_per_second),
            buckets: Default::default(),
        }
    }

    /// The bucket of `second`, emptied first if it still holds an older second.
    fn bucket(&self, second: u64) -> &Bucket {
        let bucket = &self.buckets[(second % WINDOW_SECS) as usize];
        let seen = bucket.second.load(Relaxed);
        if seen != second
            && bucket
                .second
                .compare_exchange(seen, second, Relaxed, Relaxed)
                .is_ok()
        {
            bucket.calls.store(0, Relaxed);
            bucket.retries.store(0, Relaxed);
        }
        bucket
    }

    /// Counts one call (its first attempt).
    pub(crate) fn record_call(&self) {
        self.bucket(now_secs()).calls.fetch_add(1, Relaxed);
    }

    /// Takes one retry from the budget: `false` when the window's retries already reach
    /// `budget_percent` of its calls plus `min_retries_per_second`.
    pub(crate) fn try_retry(&self) -> bool {
        let now = now_secs();
        let current = self.bucket(now);
        let (mut calls, mut retries) = (0, 0);
        for bucket in &self.buckets {
            if bucket.second.load(Relaxed) + WINDOW_SECS > now {
                calls += bucket.calls.load(Relaxed);
                retries += bucket.retries.load(Relaxed);
            }
        }
        let allowed = calls * self.percent / 100 + self.min_per_second * WINDOW_SECS;
        if retries >= allowed {
            return false;
        }
        current.retries.fetch_add(1, Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::RetryBudget;
    use crate::config::RetryConfig;

    #[test]
    fn retries_are_a_share_of_recent_calls() {
        let budget = RetryBudget::new(&RetryConfig {
            budget_percent: 20,
            min_retries_per_second: 0,
            ..RetryConfig::default()
        });
        for _ in 0..50 {
            budget.record_call();
        }
        let allowed = (0..100).filter(|_| budget.try_retry()).count();
        assert_eq!(allowed, 10, "20% of 50 calls");
        let floor = RetryBudget::new(&RetryConfig {
            budget_percent: 0,
            min_retries_per_second: 1,
            ..RetryConfig::default()
        });
        assert_eq!((0..100).filter(|_| floor.try_retry()).count(), 10);
    }
}
