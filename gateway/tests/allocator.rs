//! The gateway runtime with jemalloc as the process's allocator, as in the shipped binary: an
//! idle worker hands its thread cache back (so a surge's freed objects do not keep their pages
//! resident), and keeps caching afterwards.
#![cfg(feature = "jemalloc")]

use std::time::Duration;

use tikv_jemalloc_ctl::{Access, AsName, epoch};

#[global_allocator]
static ALLOCATOR: tonic_msgpack_gateway::Jemalloc = tonic_msgpack_gateway::Jemalloc;

/// Bytes held in every thread's cache (all arenas), as of now.
fn cached_bytes() -> usize {
    epoch::advance().expect("epoch");
    b"stats.arenas.4096.tcache_bytes\0"
        .name()
        .read()
        .expect("tcache_bytes")
}

#[test]
fn an_idle_worker_hands_its_thread_cache_back_and_goes_on_caching() {
    tonic_msgpack_gateway::return_memory_in_background();
    let runtime = tonic_msgpack_gateway::runtime(Some(1)).expect("runtime");
    let start = cached_bytes();
    // Freed on this thread, the runtime's worker: they stay in its cache (jemalloc keeps ten
    // or more of a size there).
    let surge: Vec<Box<[u8; 512]>> = (0..64).map(|_| Box::new([7u8; 512])).collect();
    drop(surge);
    let cached = cached_bytes();
    assert!(
        cached >= start + 8 * 512,
        "freed objects are cached: {start} -> {cached} bytes"
    );
    // The worker runs out of work (parks) while it sleeps.
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    let after = cached_bytes();
    assert!(
        after + 8 * 512 <= cached,
        "an idle worker's cache goes back: {cached} -> {after} bytes"
    );
    let enabled: bool = b"thread.tcache.enabled\0"
        .name()
        .read()
        .expect("tcache.enabled");
    assert!(enabled, "the worker goes on caching");
}
