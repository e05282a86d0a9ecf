//! What the listener knows about one client connection: its calls in flight (for the idle
//! timeout and the global in-flight limit), the calls its client cancelled (for the reset-storm
//! limit), and whether it is closing.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;

use super::super::GatewayState;
use super::super::body::{BoxError, GatewayBody};
use super::Live;
use super::clients::{Client, WindowCount};
use super::fairness::Turn;

/// One client connection's shared state, between its requests and its task.
#[derive(Debug)]
pub(super) struct ConnState {
    /// The gateway's current state, read per use: a connection must not keep a replaced state
    /// (and its upstream pools) alive, and its calls follow reloaded limits.
    live: Arc<Live>,
    opened: Instant,
    /// Calls of this connection whose response has not ended.
    in_flight: AtomicUsize,
    /// Its client's calls, over all the client's connections.
    client: Arc<Client>,
    /// When the last call ended, in milliseconds since `opened`.
    last_call_ended_ms: AtomicU64,
    /// Calls of this connection its client cancelled.
    resets: WindowCount,
    /// Set once the connection is asked to close: new requests on it are refused.
    closing: AtomicBool,
    /// Wakes the connection task to start a graceful shutdown.
    close: Notify,
}

impl ConnState {
    pub(super) fn new(live: Arc<Live>, client: Arc<Client>) -> Self {
        let now = Instant::now();
        ConnState {
            live,
            opened: now,
            in_flight: AtomicUsize::new(0),
            client,
            last_call_ended_ms: AtomicU64::new(0),
            resets: WindowCount::new(now),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        }
    }

    /// The client this connection belongs to.
    pub(super) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// When the connection has been idle for `idle`: `None` while a call is in flight.
    fn state(&self) -> Arc<GatewayState> {
        self.live.get().state.clone()
    }

    pub(super) fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Relaxed) > 0 {
            return None;
        }
        let ended = Duration::from_millis(self.last_call_ended_ms.load(Relaxed));
        Some(self.opened + ended + idle)
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Relaxed)
    }

    /// Completes when the connection should close (its client cancelled too many calls).
    pub(super) async fn closed(&self) {
        self.close.notified().await;
    }

    /// Counts one call the client cancelled; past `max_client_resets` in `reset_window` the
    /// connection closes.
    fn cancelled(&self) {
        let state = self.state();
        let limits = &state.config.limits;
        let now = Instant::now();
        let over = self.resets.add(now, limits.reset_window) > limits.max_client_resets;
        if self
            .client
            .cancelled(now, limits.max_address_resets, limits.reset_window)
        {
            state.listener.address_penalties.fetch_add(1, Relaxed);
            tracing::warn!(
                "refusing new connections from a client address for {:?}: more than {} calls cancelled within it",
                limits.reset_window,
                limits.max_address_resets
            );
        }
        if over && !self.closing.swap(true, Relaxed) {
            state.listener.reset_closed.fetch_add(1, Relaxed);
            tracing::info!(
                "closing a client connection: more than {} calls cancelled within {:?}",
                limits.max_client_resets,
                limits.reset_window
            );
            self.close.notify_one();
        }
    }
}

/// One call, from its request until its response body ends. Dropped earlier, the client
/// cancelled it (HTTP/2 `RST_STREAM`, or the connection went away).
#[derive(Debug)]
pub(super) struct InFlight {
    conn: Arc<ConnState>,
    /// Whether it holds a place in the global in-flight count.
    counted: bool,
    finished: bool,
}

impl InFlight {
    /// A call on `conn`, taking a place in the global in-flight count, or `None` when
    /// `max_in_flight` calls are in flight already, or all but the reserved places and the
    /// client of `conn` is busy itself (see [`Limits::light_client_calls`]).
    ///
    /// [`Limits::light_client_calls`]: crate::Limits::light_client_calls
    pub(super) fn admit(conn: &Arc<ConnState>) -> Option<InFlight> {
        let state = conn.state();
        let listener = &state.listener;
        let limits = &state.config.limits;
        let mut max = limits.max_in_flight;
        if conn.client.in_flight.load(Relaxed) >= limits.light_client_calls() {
            max -= limits.reserved_in_flight();
        }
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        // Not an add-then-undo: a burst of refused calls must not crowd out admissible ones.
        let admitted = listener
            .in_flight
            .fetch_update(Relaxed, Relaxed, |now| (now < max).then_some(now + 1));
        if admitted.is_err() {
            listener.shed.fetch_add(1, Relaxed);
            return None;
        }
        Some(InFlight::new(conn, true))
    }

    /// A call outside the global count (admin endpoints).
    pub(super) fn uncounted(conn: &Arc<ConnState>) -> InFlight {
        InFlight::new(conn, false)
    }

    fn new(conn: &Arc<ConnState>, counted: bool) -> InFlight {
        conn.in_flight.fetch_add(1, Relaxed);
        conn.client.in_flight.fetch_add(1, Relaxed);
        conn.client.share.spend(super::fairness::CALL_UNITS);
        InFlight {
            conn: conn.clone(),
            counted,
            finished: false,
        }
    }
}

impl InFlight {
    /// Counts the call as cancelled by its client now (it may still be winding down).
    fn cancel(&mut self) {
        if !self.finished {
            self.finished = true;
            self.conn.cancelled();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.conn;
        if self.counted {
            conn.state().listener.in_flight.fetch_sub(1, Relaxed);
        }
        let ended = u64::try_from(conn.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        conn.last_call_ended_ms.store(ended, Relaxed);
        conn.in_flight.fetch_sub(1, Relaxed);
        conn.client.in_flight.fetch_sub(1, Relaxed);
        if !self.finished {
            conn.cancelled();
        }
    }
}

/// The future of a call's response (which the gateway's handlers resolve with the upstream's
/// response headers).
pub(super) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, Infallible>> + Send>>;

/// A call until its response headers, then its response with a [`TrackedBody`].
///
/// Dropped before (its client cancelled), the call is counted as cancelled at once but goes
/// on in the background until the headers arrive, for at most `limits.cancel_linger`, and only
/// then is dropped (which resets its upstream stream). A server answers with headers only
/// once it has accepted the stream, and HTTP/2 servers (hyper's, so tonic's) close the whole
/// connection (GOAWAY `too_many_resets`) when more than a few streams are reset before they
/// were accepted: a client resetting calls in bursts would otherwise take down the upstream
/// connection every other client shares.
///
/// With a [`Turn`], nothing of the call is done until its client's turn came (see `fairness`);
/// a call cancelled before then is dropped as it is: nothing of it went upstream.
pub(super) struct Answering {
    inner: Option<ResponseFuture>,
    call: Option<InFlight>,
    linger: Duration,
    turn: Option<Turn>,
}

impl Answering {
    /// `linger`: how long the call may go on once its client cancelled it.
    pub(super) fn new(
        inner: ResponseFuture,
        call: Option<InFlight>,
        linger: Duration,
        turn: Option<Turn>,
    ) -> Self {
        Answering {
            inner: Some(inner),
            call,
            linger,
            turn,
        }
    }
}

impl Future for Answering {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Pending;
        };
        if let Some(turn) = this.turn.as_mut() {
            ready!(turn.poll(cx));
            this.turn = None;
        }
        let response = ready!(inner.as_mut().poll(cx))?;
        this.inner = None;
        let response = match this.call.take() {
            Some(call) => response.map(|body| TrackedBody::new(body, call)),
            None => response.map(TrackedBody::untracked),
        };
        Poll::Ready(Ok(response))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let call = self.call.take().map(|mut call| {
            call.cancel();
            call
        });
        if self.turn.is_some() {
            // Never started: nothing to wind down upstream.
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let linger = self.linger;
        runtime.spawn(async move {
            // The response (if any) is dropped here: the upstream stream is reset now.
            let _ = tokio::time::timeout(linger, inner).await;
            // The call keeps its place in the in-flight count until then.
            drop(call);
        });
    }
}

/// A response body that keeps its call [`InFlight`] until it ends.
pub(crate) struct TrackedBody {
    inner: GatewayBody,
    call: Option<InFlight>,
}

impl TrackedBody {
    pub(super) fn new(inner: GatewayBody, call: InFlight) -> Self {
        TrackedBody {
            inner,
            call: Some(call),
        }
    }

    /// A body no call waits on (refusals).
    pub(super) fn untracked(inner: GatewayBody) -> Self {
        TrackedBody { inner, call: None }
    }

    fn finish(&mut self) {
        if let Some(mut call) = self.call.take() {
            call.finished = true;
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        // hyper does not poll a body that says it has ended.
        if self.inner.is_end_stream() {
            self.finish();
        }
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        // The end, trailers (hyper polls no further) or a failure of our own making: the
        // call is over either way, and no client cancelled it.
        let ended = match &frame {
            Some(Ok(frame)) => frame.is_trailers() || self.inner.is_end_stream(),
            Some(Err(_)) | None => true,
        };
        if ended {
            self.finish();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use super::super::clients::Clients;
    use super::{ConnState, InFlight, TrackedBody};
    use crate::body::GatewayBody;
    use crate::{Config, Gateway};

    async fn conn(config: Config) -> Arc<ConnState> {
        let gateway = Gateway::builder()
            .config(config)
            .build()
            .await
            .expect("gateway");
        let clients = Arc::new(Clients::default());
        Arc::new(ConnState::new(
            gateway.shared.live.clone(),
            clients.client("127.0.0.1".parse().expect("ip")),
        ))
    }

    #[tokio::test]
    async fn calls_dropped_before_their_end_count_as_resets() {
        let mut config = Config::default();
        config.limits.max_client_resets = 3;
        let conn = conn(config).await;
        // Finished calls never count.
        for _ in 0..10 {
            let call = InFlight::admit(&conn).expect("admitted");
            drop(TrackedBody::new(GatewayBody::Empty, call));
        }
        assert!(!conn.is_closing());
        for _ in 0..3 {
            drop(InFlight::admit(&conn).expect("admitted"));
        }
        assert!(!conn.is_closing(), "three resets are allowed");
        let call = InFlight::admit(&conn).expect("admitted");
        let body = axum::body::Body::from("not read");
        drop(TrackedBody::new(GatewayBody::Http(body), call));
        assert!(conn.is_closing(), "the fourth closes the connection");
        assert_eq!(conn.state().listener.reset_closed.load(Relaxed), 1);
        assert_eq!(conn.state().listener.in_flight.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn in_flight_calls_are_capped_and_delay_the_idle_deadline() {
        let mut config = Config::default();
        config.limits.max_in_flight = 2;
        let conn = conn(config).await;
        let idle = Duration::from_secs(60);
        assert!(conn.idle_deadline(idle).is_some());
        let first = InFlight::admit(&conn).expect("first");
        let second = InFlight::admit(&conn).expect("second");
        assert!(InFlight::admit(&conn).is_none(), "third is shed");
        assert_eq!(conn.state().listener.shed.load(Relaxed), 1);
        assert!(conn.idle_deadline(idle).is_none(), "busy");
        drop(TrackedBody::new(GatewayBody::Empty, first));
        drop(TrackedBody::new(GatewayBody::Empty, second));
        assert!(conn.idle_deadline(idle).is_some());
        assert!(InFlight::admit(&conn).is_some(), "room again");
    }

    #[test]
    fn a_client_is_light_below_a_quarter_of_the_reserve_and_at_least_32_calls() {
        let mut limits = crate::Limits::default();
        assert_eq!(limits.light_client_calls(), 250);
        limits.max_in_flight = 100;
        assert_eq!(limits.light_client_calls(), 32);
    }

    #[tokio::test]
    async fn reserved_places_go_to_light_clients_only() {
        let mut config = Config::default();
        config.limits.max_in_flight = 100;
        config.limits.reserved_in_flight = Some(10);
        let live = conn(config).await.live.clone();
        let clients = Arc::new(Clients::default());
        let busy = Arc::new(ConnState::new(
            live.clone(),
            clients.client("127.0.0.2".parse().expect("ip")),
        ));
        let held: Vec<_> = std::iter::from_fn(|| InFlight::admit(&busy)).collect();
        assert_eq!(
            held.len(),
            90,
            "a busy client stops at max minus the reserve"
        );
        // Another connection of the busy client is busy too, however few calls it has.
        let second = Arc::new(ConnState::new(
            live.clone(),
            clients.client("127.0.0.2".parse().expect("ip")),
        ));
        assert!(
            InFlight::admit(&second).is_none(),
            "a busy client's new connection gets no reserved place"
        );
        let light = Arc::new(ConnState::new(
            live,
            clients.client("127.0.0.1".parse().expect("ip")),
        ));
        let reserved: Vec<_> = std::iter::from_fn(|| InFlight::admit(&light)).collect();
        assert_eq!(
            reserved.len(),
            10,
            "a light client gets the reserved places"
        );
        assert!(
            InFlight::admit(&light).is_none(),
            "max_in_flight still holds"
        );
    }
}
