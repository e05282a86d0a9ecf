//! Fair shares of a busy gateway among its clients.
//!
//! Every client shares the gateway's event loop (one per core), and tokio runs what is ready
//! first come, first served: a client that opens thousands of streams at once, or connections,
//! makes every other client's calls wait behind that work. Limits bound how much a client may
//! hold; this bounds how much of a busy gateway's time it may take while others wait.
//!
//! The gateway is *busy* when work waits `busy_lag` for a core (a call or connection whose task
//! first runs that long after it came in, or the monitor's probe, a yield every [`WINDOW`],
//! coming back that late) or when its event loops have not rested lately ([`Saturation`]: a
//! client whose every request is a long piece of work keeps the queue short). What each client
//! makes the gateway do is counted in units (a read, plus one a KiB; [`CALL_UNITS`] a call;
//! [`CONNECTION_UNITS`] a connection), over all its connections. A client is *throttled* when the gateway is busy and it either did more than
//! [`BURST_UNITS`] in the current window while other clients are connected (a burst, caught by
//! its own calls at once) or more than 1.5 times the mean of the active clients recently (the
//! monitor). A throttled client's calls wait before any of their work is done, its connections
//! are not read and its new connections not served, except as a releaser task lets them go:
//! [`RELEASE`] at a time, each time it comes round the event loop again. So its work runs only
//! in between everyone else's, as fast as the gateway is otherwise free: a light client's call
//! waits at most for one batch, and the heavy client loses nothing the others do not need. A
//! client stops being throttled once none of its work waits and the gateway is not busy (or it
//! is no longer heavy), [`THROTTLE_HOLD`] after its throttle was last needed.
//!
//! A lone client is never throttled, nor is anyone while the gateway keeps up. Behind a proxy
//! that hides client addresses every call is one client's, and nothing changes.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::clients::{Client, Clients};
use crate::metrics::ListenerMetrics;

/// How often the monitor probes the event loop and weighs the clients.
const WINDOW: Duration = Duration::from_millis(10);
/// What one read costs, besides one unit a KiB read.
const READ_UNITS: u64 = 1;
/// What a call costs (once HPACK has indexed its headers they take a few bytes of a read, but
/// the call is most of the gateway's work).
pub(super) const CALL_UNITS: u64 = 4;
/// What a new connection costs (accepting it, its handshakes).
pub(super) const CONNECTION_UNITS: u64 = 8;
/// A client with fewer recent units is never heavy (the decayed sum of about eight windows).
const MIN_HEAVY: u64 = 64;
/// Units in one window past which a client is throttled at once when the gateway turns out
/// busy (64 calls in 10 ms) and other clients are connected.
const BURST_UNITS: u64 = 256;
/// How long the gateway counts as busy after work was last seen waiting.
const BUSY_FOR: Duration = Duration::from_millis(50);
/// How long a throttle is kept after it was last needed (the client heavy, or bursting, on a
/// busy gateway). Lifted as soon as the gateway was not busy for a moment, a throttle went on
/// and off dozens of times in 10 s under a client keeping the gateway 80-90% busy (deep-query),
/// each lift letting its waiting work go at once.
const THROTTLE_HOLD: Duration = Duration::from_secs(1);
/// What a throttled client may do (calls, reads, connections) each time the releaser comes
/// round the event loop.
const RELEASE: u64 = 4;
/// The most a throttled client's connection reads at a time.
const THROTTLED_READ: usize = 1024;
/// How long the releaser sleeps when no throttled client has work waiting.
const IDLE_RELEASER: Duration = Duration::from_millis(1);

/// One client's work, shared by its connections.
#[derive(Debug, Default)]
pub(super) struct Share {
    /// Units spent in this window.
    spent: AtomicU64,
    /// Decayed sum of the units of past windows (monitor-owned).
    recent: AtomicU64,
    /// Whether its work waits for the releaser.
    throttled: AtomicBool,
    /// Until when a throttle is kept even if no longer needed, in [`Pressure`]'s milliseconds.
    held_until_ms: AtomicU64,
    /// Work the releaser let go that has not started yet.
    grants: AtomicU64,
    /// Calls, reads and connections waiting for the releaser, in order.
    waiting: Mutex<VecDeque<Waker>>,
}

impl Share {
    /// Counts `units` of work done for this client.
    pub(super) fn spend(&self, units: u64) {
        self.spent.fetch_add(units, Relaxed);
    }

    /// `Ready` when this client's work may go on now; otherwise the task is woken when the
    /// releaser lets it.
    pub(super) fn poll_turn(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.may_go() {
            return Poll::Ready(());
        }
        let mut waiting = self.lock_waiting();
        // A task polled again before it was woken (by something else) is already in line.
        if !waiting
            .back()
            .is_some_and(|last| last.will_wake(cx.waker()))
        {
            waiting.push_back(cx.waker().clone());
        }
        // The releaser may have granted (or the monitor lifted the throttle) between the look
        // above and the push, and woken the queue without this waker: look again now that it is
        // in. A waker left behind only wakes its task once more.
        if self.may_go() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Waits for this client's turn.
    pub(super) async fn turn(&self) {
        std::future::poll_fn(|cx| self.poll_turn(cx)).await;
    }

    fn may_go(&self) -> bool {
        !self.throttled.load(Relaxed)
            || self
                .grants
                .fetch_update(Relaxed, Relaxed, |grants| grants.checked_sub(1))
                .is_ok()
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<Waker>> {
        // A poisoned lock only means a waker panicked; the queue is intact.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets [`RELEASE`] waiting pieces of work go; whether any were waiting.
    fn release(&self) -> bool {
        let woken: Vec<Waker> = {
            let mut waiting = self.lock_waiting();
            if waiting.is_empty() {
                return false;
            }
            let room = usize::try_from(RELEASE).unwrap_or(1).min(waiting.len());
            // Granted under the lock, so a task woken below finds its grant.
            self.grants.store(RELEASE, Relaxed);
            waiting.drain(..room).collect()
        };
        woken.into_iter().for_each(Waker::wake);
        true
    }

    fn has_waiting(&self) -> bool {
        !self.lock_waiting().is_empty()
    }

    /// Ends the throttle and wakes everything that waited.
    fn lift(&self) {
        self.throttled.store(false, Relaxed);
        let woken: Vec<Waker> = self.lock_waiting().drain(..).collect();
        woken.into_iter().for_each(Waker::wake);
    }

    /// Closes the window: folds its units into `recent` and returns that.
    fn close_window(&self) -> u64 {
        let spent = self.spent.swap(0, Relaxed);
        let recent = self.recent.load(Relaxed);
        let recent = recent - recent / 8 + spent;
        self.recent.store(recent, Relaxed);
        recent
    }
}

/// Whether a client with `recent` units is heavy among `active` clients with `total` units.
fn is_heavy(recent: u64, total: u64, active: u64) -> bool {
    active >= 2
        && recent >= MIN_HEAVY
        && u128::from(recent) * 2 * u128::from(active) > u128::from(total) * 3
}

/// Whether the gateway is busy, and who of its clients is throttled.
#[derive(Debug)]
pub(super) struct Pressure {
    clients: Arc<Clients>,
    origin: Instant,
    /// Until when it is busy, in milliseconds since `origin`.
    busy_until_ms: AtomicU64,
    throttled: Mutex<Vec<Arc<Client>>>,
    /// Wakes the releaser when a client is throttled.
    throttling: Notify,
    metrics: Arc<ListenerMetrics>,
}

impl Pressure {
    /// Not busy, none of `clients` throttled; counted in `metrics`.
    pub(super) fn new(clients: Arc<Clients>, metrics: Arc<ListenerMetrics>) -> Self {
        Pressure {
            clients,
            origin: Instant::now(),
            busy_until_ms: AtomicU64::new(0),
            throttled: Mutex::new(Vec::new()),
            throttling: Notify::new(),
            metrics,
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    fn mark_busy(&self, now: Instant) {
        self.busy_until_ms
            .fetch_max(self.millis(now + BUSY_FOR), Relaxed);
    }

    fn is_busy(&self, now: Instant) -> bool {
        self.busy_until_ms.load(Relaxed) > self.millis(now)
    }

    fn lock_throttled(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Client>>> {
        self.throttled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Looks at work of `client` that came in at `admitted` and runs now: the gateway is busy if
    /// it waited `lag` or longer, and a client bursting on a busy gateway is throttled at once.
    pub(super) fn look(&self, client: &Arc<Client>, admitted: Instant, lag: Duration) {
        let now = Instant::now();
        if now.saturating_duration_since(admitted) >= lag {
            self.mark_busy(now);
        }
        if self.is_busy(now)
            && client.share.spent.load(Relaxed) > BURST_UNITS
            && self.clients.count() >= 2
        {
            self.throttle(client, now);
        }
    }

    /// Throttles `client` (again: its throttle is held [`THROTTLE_HOLD`] from `now`).
    fn throttle(&self, client: &Arc<Client>, now: Instant) {
        client
            .share
            .held_until_ms
            .fetch_max(self.millis(now + THROTTLE_HOLD), Relaxed);
        if !client.share.throttled.swap(true, Relaxed) {
            client.share.grants.store(0, Relaxed);
            self.lock_throttled().push(client.clone());
            self.metrics.throttles.fetch_add(1, Relaxed);
            self.throttling.notify_one();
        }
    }

    /// Whether a throttled client stays so: while its work still waits (lifting would let it
    /// all go at once), while it is heavy on a busy gateway, and for [`THROTTLE_HOLD`] after
    /// either; not once its last connection is gone (only the throttled list holds it then).
    fn keeps_throttled(
        &self,
        client: &Arc<Client>,
        busy: bool,
        total: u64,
        active: u64,
        now: Instant,
    ) -> bool {
        let connected = Arc::strong_count(client) > 1;
        connected
            && (client.share.has_waiting()
                || (busy && is_heavy(client.share.recent.load(Relaxed), total, active))
                || client.share.held_until_ms.load(Relaxed) > self.millis(now))
    }
}

/// A call's wait for its client's turn, before any of its work is done.
#[derive(Debug)]
pub(super) struct Turn {
    client: Arc<Client>,
    pressure: Arc<Pressure>,
    admitted: Instant,
    lag: Duration,
    looked: bool,
}

impl Turn {
    /// The turn of a call of `client` admitted now; the gateway is busy when the call's task
    /// first runs `lag` or later.
    pub(super) fn new(client: Arc<Client>, pressure: Arc<Pressure>, lag: Duration) -> Self {
        Turn {
            client,
            pressure,
            admitted: Instant::now(),
            lag,
            looked: false,
        }
    }

    /// `Ready` once the call may go on.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.looked {
            self.looked = true;
            self.pressure.look(&self.client, self.admitted, self.lag);
        }
        self.client.share.poll_turn(cx)
    }
}

/// How much of the time the event loops ran tasks, over the last [`SATURATION_WINDOWS`]
/// windows. Work that waits for a core is not the only sign of a busy gateway: a client whose
/// every request is a long piece of work (a 128 KiB header block to parse) keeps the queue short
/// while the loops never rest, and the other clients' calls each wait behind one such piece
/// twice, on the way in and on the way out.
struct Saturation {
    metrics: tokio::runtime::RuntimeMetrics,
    /// (when, the workers' busy time then), oldest first.
    samples: VecDeque<(Instant, Duration)>,
}

/// Windows over which [`Saturation`] is measured: tokio adds a worker's busy time in batches
/// (when it parks, or every few dozen tasks), so one window alone is too jittery.
const SATURATION_WINDOWS: usize = 5;

impl Saturation {
    fn new() -> Self {
        Saturation {
            metrics: tokio::runtime::Handle::current().metrics(),
            samples: VecDeque::with_capacity(SATURATION_WINDOWS + 1),
        }
    }

    /// Whether every worker was busy at least nine tenths of the time lately.
    fn saturated(&mut self, now: Instant) -> bool {
        let workers = self.metrics.num_workers();
        let busy: Duration = (0..workers)
            .map(|worker| self.metrics.worker_total_busy_duration(worker))
            .sum();
        self.samples.push_back((now, busy));
        if self.samples.len() <= SATURATION_WINDOWS {
            return false;
        }
        let Some((then, busy_then)) = self.samples.pop_front() else {
            return false;
        };
        let spent = busy.saturating_sub(busy_then);
        let room = now.saturating_duration_since(then) * u32::try_from(workers).unwrap_or(1);
        !room.is_zero() && spent * 10 >= room * 9
    }
}

/// How long work waits for a core now: a yield's round trip through the event loop.
async fn probe() -> Duration {
    let start = Instant::now();
    tokio::task::yield_now().await;
    start.elapsed()
}

/// Weighs the clients every [`WINDOW`] (throttling heavy ones while the gateway is busy,
/// lifting throttles no longer needed) until dropped. `lag` is read each window (a reload may
/// change it): `None` turns throttling off.
pub(super) async fn monitor(pressure: Arc<Pressure>, lag: impl Fn() -> Option<Duration>) {
    let metrics = pressure.metrics.clone();
    let mut ticks = tokio::time::interval(WINDOW);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut live: Vec<Arc<Client>> = Vec::new();
    let mut saturation = Saturation::new();
    loop {
        ticks.tick().await;
        let Some(lag) = lag() else {
            lift_all(&pressure);
            metrics.throttled_clients.store(0, Relaxed);
            continue;
        };
        let waited = probe().await;
        let now = Instant::now();
        if waited >= lag || saturation.saturated(now) {
            pressure.mark_busy(now);
        }
        let busy = pressure.is_busy(now);
        if busy {
            metrics.busy_windows.fetch_add(1, Relaxed);
        }
        let any_throttled = !pressure.lock_throttled().is_empty();
        if !busy && !any_throttled {
            // Units pile up until the next busy window weighs them: shares stay comparable.
            continue;
        }
        pressure.clients.collect(&mut live);
        let recent: Vec<u64> = live
            .iter()
            .map(|client| client.share.close_window())
            .collect();
        let active = recent.iter().filter(|units| **units > 0).count() as u64;
        let total: u64 = recent.iter().sum();
        for (client, recent) in live.iter().zip(recent) {
            let heavy = is_heavy(recent, total, active);
            if busy && heavy {
                pressure.throttle(client, now);
            }
        }
        live.clear();
        let mut throttled = pressure.lock_throttled();
        throttled.retain(|client| {
            let keep = pressure.keeps_throttled(client, busy, total, active, now);
            if !keep {
                client.share.lift();
            }
            keep
        });
        metrics
            .throttled_clients
            .store(i64::try_from(throttled.len()).unwrap_or(i64::MAX), Relaxed);
    }
}

fn lift_all(pressure: &Pressure) {
    for client in pressure.lock_throttled().drain(..) {
        client.share.lift();
    }
}

/// Lets the work of throttled clients go, [`RELEASE`] pieces per client each time round the
/// event loop, until dropped.
pub(super) async fn releaser(pressure: Arc<Pressure>) {
    let mut throttled: Vec<Arc<Client>> = Vec::new();
    loop {
        throttled.clear();
        throttled.extend(pressure.lock_throttled().iter().cloned());
        if throttled.is_empty() {
            pressure.throttling.notified().await;
            continue;
        }
        // Back of the queue: everything that was ready runs before the next batch.
        tokio::task::yield_now().await;
        let mut released = false;
        for client in &throttled {
            released |= client.share.release();
        }
        if !released {
            tokio::time::sleep(IDLE_RELEASER).await;
        }
    }
}

/// A client connection's socket whose reads wait for the client's turn ([`Share::poll_turn`])
/// and are counted to it; without a client (the admin port), a plain socket.
pub(super) struct Fair<S> {
    io: S,
    client: Option<Arc<Client>>,
}

impl<S> Fair<S> {
    /// `io`, read on `client`'s turns.
    pub(super) fn new(io: S, client: Option<Arc<Client>>) -> Self {
        Fair { io, client }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Fair<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(client) = &this.client else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        let share = &client.share;
        std::task::ready!(share.poll_turn(cx));
        if share.throttled.load(Relaxed) && buf.remaining() > THROTTLED_READ {
            // A small read, so the work it brings (a few KiB of HTTP/2 frames can open
            // hundreds of streams) is a small piece in between other clients' work.
            let mut small = [0; THROTTLED_READ];
            let mut small = ReadBuf::new(&mut small);
            let read = Pin::new(&mut this.io).poll_read(cx, &mut small);
            buf.put_slice(small.filled());
            if !small.filled().is_empty() {
                share.spend(READ_UNITS + 1);
            }
            return read;
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        let bytes = buf.filled().len() - before;
        if bytes > 0 {
            share.spend(READ_UNITS + u64::try_from(bytes >> 10).unwrap_or(u64::MAX));
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Fair<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    /// A waker of its own (`Waker::noop()` wakers all look alike to `will_wake`).
    struct Nothing;

    impl std::task::Wake for Nothing {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn only_a_heavy_client_of_several_is_heavy() {
        assert!(!is_heavy(10_000, 10_000, 1), "a lone client is the mean");
        assert!(is_heavy(9_000, 10_000, 2));
        assert!(!is_heavy(1_000, 10_000, 2));
        assert!(!is_heavy(60, 70, 2), "too little to matter");
        // Three equal clients: none above 1.5 times the mean.
        assert!(!is_heavy(3_000, 9_000, 3));
    }

    #[test]
    fn a_throttled_client_goes_on_as_released_and_all_at_once_when_lifted() {
        let clients = Arc::new(Clients::default());
        let client = clients.client("127.0.0.2".parse().expect("ip"));
        let pressure = Pressure::new(clients.clone(), Arc::default());
        let share = &client.share;
        let mut cx = Context::from_waker(Waker::noop());
        assert!(share.poll_turn(&mut cx).is_ready(), "not throttled");
        pressure.throttle(&client, Instant::now());
        let wakers: Vec<Waker> = (0..6).map(|_| Arc::new(Nothing).into()).collect();
        for waker in &wakers {
            assert!(
                share
                    .poll_turn(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        assert!(
            share
                .poll_turn(&mut Context::from_waker(&wakers[5]))
                .is_pending(),
            "polled again before it was woken"
        );
        assert_eq!(share.lock_waiting().len(), 6, "in line once");
        assert!(share.release(), "work was waiting");
        assert_eq!(share.lock_waiting().len(), 6 - RELEASE as usize);
        for _ in 0..RELEASE {
            assert!(share.poll_turn(&mut cx).is_ready(), "released");
        }
        assert!(share.poll_turn(&mut cx).is_pending(), "no grant left");
        share.lift();
        assert!(share.lock_waiting().is_empty(), "all woken when lifted");
        assert!(share.poll_turn(&mut cx).is_ready());
        assert!(!share.release(), "nothing waits");
    }

    #[tokio::test]
    async fn reads_of_a_throttled_client_wait_for_the_releaser_and_are_counted() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let clients = Arc::new(Clients::default());
        let client = clients.client("127.0.0.2".parse().expect("ip"));
        let pressure = Arc::new(Pressure::new(clients.clone(), Arc::default()));
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let mut fair = Fair::new(near, Some(client.clone()));
        far.write_all(&[7; 3 * 1024]).await.expect("write");
        let mut buf = vec![0; 8 * 1024];
        let read = fair.read(&mut buf).await.expect("read");
        assert_eq!(read, 3 * 1024);
        assert_eq!(client.share.spent.load(Relaxed), READ_UNITS + 3);

        pressure.throttle(&client, Instant::now());
        far.write_all(b"more").await.expect("write");
        let waiting = tokio::time::timeout(Duration::from_millis(50), fair.read(&mut buf)).await;
        assert!(waiting.is_err(), "throttled: not read until released");
        let releaser = tokio::spawn(releaser(pressure.clone()));
        let read = tokio::time::timeout(Duration::from_secs(5), fair.read(&mut buf))
            .await
            .expect("read once released")
            .expect("read");
        assert_eq!(&buf[..read], b"more");
        far.write_all(&[8; 3 * 1024]).await.expect("write");
        let read = tokio::time::timeout(Duration::from_secs(5), fair.read(&mut buf))
            .await
            .expect("read once released")
            .expect("read");
        assert_eq!(read, THROTTLED_READ, "a throttled client's reads are small");
        assert!(buf[..read].iter().all(|byte| *byte == 8));
        releaser.abort();
    }

    #[test]
    fn a_throttle_is_held_a_while_after_it_was_last_needed() {
        let clients = Arc::new(Clients::default());
        let client = clients.client("127.0.0.2".parse().expect("ip"));
        let pressure = Pressure::new(clients.clone(), Arc::default());
        let start = Instant::now();
        pressure.throttle(&client, start);
        // Not busy, nothing waiting, not heavy: held all the same.
        let keeps = |at: Instant| pressure.keeps_throttled(&client, false, 0, 0, at);
        assert!(keeps(start));
        assert!(keeps(start + THROTTLE_HOLD / 2));
        assert!(
            !keeps(start + THROTTLE_HOLD + WINDOW),
            "let go after the hold"
        );
        // Needed again (heavy on a busy gateway): held from then on.
        let again = start + THROTTLE_HOLD / 2;
        pressure.throttle(&client, again);
        assert!(keeps(again + THROTTLE_HOLD - WINDOW));
        assert!(!keeps(again + THROTTLE_HOLD + WINDOW));
        // A client whose connections are all gone (only the throttled list holds it) is let
        // go at once, hold or not.
        let gone = clients.client("127.0.0.3".parse().expect("ip"));
        pressure.throttle(&gone, start);
        drop(gone);
        let throttled = pressure.lock_throttled();
        assert_eq!(throttled.len(), 2);
        assert!(!pressure.keeps_throttled(&throttled[1], false, 0, 0, start));
        assert!(pressure.keeps_throttled(&throttled[0], false, 0, 0, again));
    }

    #[tokio::test]
    async fn a_burst_while_busy_is_throttled_at_once() {
        let clients = Arc::new(Clients::default());
        let heavy = clients.client("127.0.0.2".parse().expect("ip"));
        let light = clients.client("127.0.0.3".parse().expect("ip"));
        let pressure = Arc::new(Pressure::new(clients.clone(), Arc::default()));
        let mut cx = Context::from_waker(Waker::noop());
        heavy.share.spend(BURST_UNITS + 1);
        light.share.spend(4);
        let turn = |client: &Arc<Client>| {
            Turn::new(client.clone(), pressure.clone(), Duration::from_millis(2))
        };
        let mut early = turn(&heavy);
        assert!(
            early.poll(&mut cx).is_ready(),
            "not busy: every call goes on"
        );
        let mut late = turn(&heavy);
        let mut light_late = turn(&light);
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            light_late.poll(&mut cx).is_ready(),
            "a light client goes on while busy"
        );
        assert!(late.poll(&mut cx).is_pending(), "the burst waits");
        assert_eq!(pressure.lock_throttled().len(), 1);
        assert!(heavy.share.release());
        assert!(late.poll(&mut cx).is_ready(), "released");
    }

    #[test]
    fn an_event_loop_that_never_rests_is_saturated() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut saturation = Saturation::new();
            for _ in 0..=SATURATION_WINDOWS {
                tokio::time::sleep(Duration::from_millis(5)).await;
                assert!(!saturation.saturated(Instant::now()), "idle in between");
            }
            // Work that holds the loop (as a long parse does), with a yield between pieces.
            let mut saturated = Vec::new();
            for _ in 0..=2 * SATURATION_WINDOWS {
                std::thread::sleep(Duration::from_millis(5));
                tokio::task::yield_now().await;
                saturated.push(saturation.saturated(Instant::now()));
            }
            assert!(
                saturated.ends_with(&[true, true, true]),
                "a loop busy all the time is saturated: {saturated:?}"
            );
        });
    }
}
