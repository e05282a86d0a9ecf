//! What a gateway process should run on: its tokio runtime and its allocator.

use std::io;
use std::num::NonZeroUsize;

/// jemalloc, the allocator of the gateway's binaries (feature `jemalloc`, on by default):
/// `#[global_allocator] static ALLOCATOR: Jemalloc = Jemalloc;`, then call
/// [`return_memory_in_background`].
#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;

/// Has jemalloc give unused memory back to the system from a background thread, about ten
/// seconds after it was freed. Without it only threads that go on allocating purge, so an idle
/// gateway would keep the peak of its last burst of connections; glibc's malloc keeps most of
/// it too. Call it once at start in a binary whose global allocator is [`Jemalloc`]; without the
/// `jemalloc` feature it does nothing.
pub fn return_memory_in_background() {
    #[cfg(feature = "jemalloc")]
    if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!("jemalloc's background thread is off ({err}): memory is returned lazily");
    }
}

/// A runtime for a gateway process: `worker_threads` workers, by default one per CPU this
/// process may use (its affinity mask and cgroup quota, as `std::thread::available_parallelism`
/// reads them). With one, the runtime is a current-thread one: a single event loop, like nginx's
/// worker or HAProxy with `nbthread 1`, with no work stealing or cross-thread wake-ups; on one
/// CPU it halves the gateway's tail latency against a one-worker multi-thread runtime.
pub fn runtime(worker_threads: Option<usize>) -> io::Result<tokio::runtime::Runtime> {
    let threads = worker_threads
        .filter(|&threads| threads > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::runtime;

    #[test]
    fn one_worker_is_a_current_thread_runtime() {
        let one = runtime(Some(1)).expect("runtime");
        assert_eq!(
            one.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let two = runtime(Some(2)).expect("runtime");
        assert_eq!(
            two.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
        assert_eq!(two.metrics().num_workers(), 2);
    }
}
