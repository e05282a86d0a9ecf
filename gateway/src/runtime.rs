//! What a gateway process should run on: its tokio runtime and its allocator.

use std::io;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

/// jemalloc, the allocator of the gateway's binaries (feature `jemalloc`, on by default):
/// `#[global_allocator] static ALLOCATOR: Jemalloc = Jemalloc;`, then call
/// [`return_memory_in_background`].
#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;

/// Has jemalloc give unused memory back to the system from a background thread, about a
/// second after it was freed (jemalloc's own default is ten seconds and lazy `MADV_FREE`, which
/// RSS goes on counting): the memory of a burst of connections or of an attack goes back soon
/// after. Without the background thread only threads that go on allocating purge, so an idle
/// gateway would keep the peak of its last burst; glibc's malloc keeps most of it too. From
/// then on, a worker of [`runtime`] that runs out of work also hands its thread cache back, at
/// most once a second. Call it once at start in a binary whose global allocator is
/// [`Jemalloc`]; without the `jemalloc` feature it does nothing.
pub fn return_memory_in_background() {
    #[cfg(feature = "jemalloc")]
    {
        if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(
                "jemalloc's background thread is off ({err}): memory is returned lazily"
            );
        }
        set_decay(RETURN_AFTER_MS);
        RETURNING.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Set by [`return_memory_in_background`]: jemalloc is this process's allocator, so the
/// runtime's idle workers may hand their thread caches back ([`on_worker_park`]).
#[cfg(feature = "jemalloc")]
static RETURNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How often at most a worker going idle hands its jemalloc thread cache back.
#[cfg(feature = "jemalloc")]
const FLUSH_CACHE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Run by each runtime worker when it runs out of work: at most once a [`FLUSH_CACHE_EVERY`],
/// its jemalloc thread cache goes back to the arenas (turned off and on again). A cache keeps
/// freed objects of up to 4 KiB for the thread's next allocations, and each of them keeps its
/// whole slab (pages) resident: after a flood of 10,000 connections, about half of what the
/// gateway still held over its start was slabs kept by the few cached objects in each (RSS
/// 12.5 MB from 9.5 with the cache, 11.2 MB without one). A worker that never runs out of work
/// never pays for it; one that does refills its cache from the arenas at the next calls.
#[cfg(feature = "jemalloc")]
fn on_worker_park() {
    use std::cell::Cell;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Instant;
    use tikv_jemalloc_ctl::{Access, AsName};
    thread_local!(static FLUSHED: Cell<Option<Instant>> = const { Cell::new(None) });
    if !RETURNING.load(Relaxed) {
        return;
    }
    let now = Instant::now();
    if FLUSHED
        .get()
        .is_some_and(|flushed| now.duration_since(flushed) < FLUSH_CACHE_EVERY)
    {
        return;
    }
    FLUSHED.set(Some(now));
    let enabled = b"thread.tcache.enabled\0".name();
    if let Err(err) = enabled.write(false).and_then(|()| enabled.write(true)) {
        tracing::debug!("jemalloc thread.tcache.enabled: {err}");
    }
}

/// How long freed pages stay with jemalloc (`dirty_decay_ms`) before they are returned.
#[cfg(feature = "jemalloc")]
const RETURN_AFTER_MS: isize = 1_000;

/// Sets `dirty_decay_ms` to `ms` and `muzzy_decay_ms` to 0 (returned pages are unmapped from
/// the process at once rather than left for the kernel to take): for the arenas that exist and
/// those created later.
#[cfg(feature = "jemalloc")]
fn set_decay(ms: isize) {
    use tikv_jemalloc_ctl::{Access, AsName};
    let arenas = tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0);
    let scopes = std::iter::once("arenas".to_owned())
        .chain((0..arenas).map(|arena| format!("arena.{arena}")));
    for scope in scopes {
        for (setting, value) in [("dirty_decay_ms", ms), ("muzzy_decay_ms", 0)] {
            // Both are `ssize_t` settings (`isize`); names are NUL-terminated.
            let name = format!("{scope}.{setting}\0");
            if let Err(err) = name.as_bytes().name().write(value) {
                // An arena index that was never initialised has no settings to change.
                tracing::debug!("jemalloc {scope}.{setting}: {err}");
            }
        }
    }
}

/// The allocator's gauges for `/metrics`: `(name, help, value)`; none without jemalloc.
pub(crate) fn allocator_gauges() -> Vec<(&'static str, &'static str, u64)> {
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are a snapshot taken at the last epoch.
        if epoch::advance().is_ok()
            && let (Ok(allocated), Ok(resident)) =
                (stats::allocated::read(), stats::resident::read())
        {
            return vec![
                (
                    "gateway_allocator_allocated_bytes",
                    "Bytes in live allocations of jemalloc (what the gateway holds).",
                    allocated as u64,
                ),
                (
                    "gateway_allocator_resident_bytes",
                    "Bytes of memory jemalloc keeps mapped and resident (what it has not yet returned).",
                    resident as u64,
                ),
            ];
        }
    }
    Vec::new()
}

/// hyper's executor for the gateway's connections: spawns each task hyper hands it (a stream
/// of a client connection; the body pump and response of an upstream call) on the current
/// tokio runtime, boxed first.
///
/// hyper's futures are large enums (its HTTP/2 client's is 1,464 bytes, the size of the
/// connection driver it can also hold), and `tokio::spawn` moves a future by value through
/// several calls into a task cell of its size: about six copies of the whole value per spawn,
/// two spawns per proxied call, then a cold 1.5 KB cell. Boxed, the value is copied once and
/// every later move is a pointer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BoxedSpawn;

impl<F> hyper::rt::Executor<F> for BoxedSpawn
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Box::pin(future));
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
    #[cfg(feature = "jemalloc")]
    builder.on_thread_park(on_worker_park);
    builder.enable_all().build()
}

/// Puts the calling thread under Linux's `SCHED_IDLE` policy, once per thread, for work that
/// should take only what the event loops leave: a 4 MiB REST body parsed on a blocking thread
/// at the event loop's priority took half the core in scheduler slices of milliseconds, and
/// every other client's calls waited them out. At nice 19 a woken event loop still waited up to
/// a slice (4 ms) for the parse to yield; a `SCHED_IDLE` thread yields to it at once. Lasting (an
/// unprivileged thread cannot leave `SCHED_IDLE` again), so only for threads that do such work:
/// tokio's blocking threads, which the gateway uses for nothing urgent. Linux only; elsewhere it
/// does nothing.
pub(crate) fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        use std::cell::Cell;
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        thread_local!(static LOWERED: Cell<bool> = const { Cell::new(false) });
        if !LOWERED.replace(true)
            && let Err(err) = set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            )
        {
            tracing::debug!("cannot lower a blocking thread's priority: {err:?}");
        }
    }
}

/// Locks `mutex`, ignoring poisoning: for state whose every critical section leaves it
/// consistent (a panic elsewhere cannot leave it half-changed).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::runtime;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_lowered_thread_runs_under_sched_idle_and_others_do_not() {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_native_id,
            thread_schedule_policy_param,
        };
        let policy = || {
            thread_schedule_policy_param(thread_native_id())
                .expect("policy")
                .0
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        assert_ne!(policy(), idle);
        let lowered = std::thread::spawn(move || {
            super::lower_thread_priority();
            super::lower_thread_priority();
            policy()
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, idle);
        assert_ne!(policy(), idle, "only the calling thread");
    }

    #[cfg(feature = "jemalloc")]
    #[test]
    fn freed_memory_goes_back_after_a_second() {
        use tikv_jemalloc_ctl::{Access, AsName};
        super::return_memory_in_background();
        let read = |name: &[u8]| -> Option<isize> { name.name().read().ok() };
        assert_eq!(read(b"arenas.dirty_decay_ms\0"), Some(1_000));
        assert_eq!(read(b"arenas.muzzy_decay_ms\0"), Some(0));
        assert_eq!(read(b"arena.0.dirty_decay_ms\0"), Some(1_000));
    }

    /// The workspace builds jemalloc with thread caches of at most 4 KiB objects
    /// (`.cargo/config.toml`), unless `_RJEM_MALLOC_CONF` says otherwise at run time.
    #[cfg(feature = "jemalloc")]
    #[test]
    fn thread_caches_keep_small_objects_only() {
        use tikv_jemalloc_ctl::{Access, AsName};
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            return;
        }
        let tcache_max: usize = b"arenas.tcache_max\0".name().read().expect("tcache_max");
        assert_eq!(tcache_max, 4096);
    }

    #[test]
    fn hyper_tasks_run_boxed_on_the_current_runtime() {
        use hyper::rt::Executor;
        let runtime = runtime(Some(1)).expect("runtime");
        let (done, ran) = tokio::sync::oneshot::channel();
        runtime.block_on(async {
            super::BoxedSpawn.execute(async move {
                let _ = done.send(std::thread::current().id());
            });
            assert_eq!(ran.await.ok(), Some(std::thread::current().id()));
        });
    }

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
