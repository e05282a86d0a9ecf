//! A bounded queue that calls fill and one background consumer empties in batches: the access
//! log's lines and the exported spans go through one.
//!
//! A call pays one uncontended lock and a push; it never wakes the consumer except when the
//! queue reaches its wake mark, so a busy gateway does not pay a thread wake-up per call (that
//! was most of the access log's cost with a channel). The consumer drains on its own timer, or
//! when woken, by swapping the whole batch out.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How many waiting items wake the consumer. Small batches stay in the CPU's caches between
/// the calls that write them and the consumer that reads them: woken at half of a 16,384-span
/// queue, the exporter read megabytes of cold records per batch and the gateway's CPU time per
/// traced call rose by far more than its instruction count did. The capacity above it only
/// absorbs a consumer that is behind (a slow collector or disk).
pub(crate) const BATCH: usize = 512;

/// What [`Outbox::push`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; the consumer will find it on its next round.
    Queued,
    /// Queued, and the queue just reached its wake mark: wake the consumer now.
    Wake,
    /// The queue was full: dropped and counted.
    Dropped,
}

/// A bounded batch queue (see the module docs).
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    items: Mutex<Vec<T>>,
    capacity: usize,
    wake_at: usize,
    dropped: AtomicU64,
}

impl<T> Outbox<T> {
    /// A queue of at most `capacity` items whose consumer is woken when [`BATCH`] of them (or
    /// half the capacity, if less) are waiting.
    pub(crate) fn new(capacity: usize) -> Outbox<T> {
        let capacity = capacity.max(1);
        Outbox {
            items: Mutex::new(Vec::new()),
            capacity,
            wake_at: capacity.div_ceil(2).min(BATCH),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `item`, or drops it when the queue is full.
    pub(crate) fn push(&self, item: T) -> Pushed {
        let mut items = self.lock();
        if items.len() >= self.capacity {
            drop(items);
            self.dropped.fetch_add(1, Relaxed);
            return Pushed::Dropped;
        }
        items.push(item);
        if items.len() == self.wake_at {
            Pushed::Wake
        } else {
            Pushed::Queued
        }
    }

    /// Moves everything queued into `batch` (which should be empty: its allocation is reused
    /// by the queue, so a steady load allocates no new batches).
    pub(crate) fn drain_into(&self, batch: &mut Vec<T>) {
        std::mem::swap(&mut *self.lock(), batch);
    }

    /// Items dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // A push or a swap cannot leave the vector half-changed: a poisoned lock is still sound.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::{BATCH, Outbox, Pushed};

    #[test]
    fn a_large_queue_wakes_its_consumer_every_batch_not_at_half() {
        let outbox = Outbox::new(16_384);
        let pushed: Vec<Pushed> = (0..BATCH).map(|item| outbox.push(item)).collect();
        assert_eq!(pushed[BATCH - 1], Pushed::Wake);
        assert!(pushed[..BATCH - 1].iter().all(|&p| p == Pushed::Queued));
    }

    #[test]
    fn wakes_at_half_drops_when_full_and_drains_everything() {
        let outbox = Outbox::new(4);
        assert_eq!(outbox.push(1), Pushed::Queued);
        assert_eq!(outbox.push(2), Pushed::Wake);
        assert_eq!(outbox.push(3), Pushed::Queued);
        assert_eq!(outbox.push(4), Pushed::Queued);
        assert_eq!(outbox.push(5), Pushed::Dropped);
        assert_eq!(outbox.dropped(), 1);
        let mut batch = Vec::new();
        outbox.drain_into(&mut batch);
        assert_eq!(batch, [1, 2, 3, 4]);
        batch.clear();
        outbox.drain_into(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(outbox.push(6), Pushed::Queued);
    }
}
