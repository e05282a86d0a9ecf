//! One listener for HTTP/1.1 and h2c, split per request by content type; graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{Request, Response, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::{Layer, Service, ServiceExt};

use super::GatewayState;
use super::body::GatewayBody;
use super::proxy::RequestBody;
use super::{rest, web};

type ResponseFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, Infallible>> + Send>>;

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub(crate) fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Whether a request is gRPC (not gRPC-Web, which goes through the HTTP side).
fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(b"application/grpc") && !value.starts_with(b"application/grpc-web")
        })
}

/// A client connection's socket that reports no vectored writes and gathers writes until a
/// flush, so a connection's ready frames leave in one system call.
///
/// With vectored writes, h2 keeps each DATA frame of 256 bytes or more as a separate buffer
/// and flushes it before queueing the next frame: one `writev` per response message (a
/// streamed gRPC response: one per message). Without, it copies frames under 1 KiB into its
/// write buffer, so the headers, data and trailers of all the streams ready on the
/// connection go out together. Larger frames still come as their own writes, followed by a
/// flush; gathering them here (copied up to `GATHER_MAX`, larger ones sent with `writev`
/// next to what is gathered) keeps those at one system call per flush, as before.
/// Nothing waits: everything gathered is written at the next flush, which h2 and hyper do
/// whenever they have written what is ready.
struct Gathered<I> {
    io: I,
    gathered: BytesMut,
}

/// Writes up to this size are copied; larger ones go straight to the socket.
const GATHER_MAX: usize = 16 * 1024;

impl<I> Gathered<I> {
    fn new(io: I) -> Self {
        Gathered {
            io,
            gathered: BytesMut::new(),
        }
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for Gathered<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for Gathered<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.len() < GATHER_MAX && this.gathered.len() < GATHER_MAX {
            this.gathered.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        loop {
            if this.gathered.is_empty() {
                return Pin::new(&mut this.io).poll_write(cx, buf);
            }
            let bufs = [IoSlice::new(&this.gathered), IoSlice::new(buf)];
            let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, &bufs))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let gathered = this.gathered.len();
            if written > gathered {
                this.gathered.clear();
                return Poll::Ready(Ok(written - gathered));
            }
            this.gathered.advance(written);
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while !this.gathered.is_empty() {
            let written = ready!(Pin::new(&mut this.io).poll_write(cx, &this.gathered))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.gathered.advance(written);
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

async fn http(
    router: axum::Router,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let response = router.oneshot(req).await?;
    Ok(response.map(GatewayBody::Http))
}

async fn grpc(
    state: Arc<GatewayState>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    Ok(super::proxy::forward(state, req.map(RequestBody::Incoming)).await)
}

/// Everything that is not plain gRPC: gRPC-Web, REST bindings, then the HTTP router.
#[derive(Clone)]
struct HttpSide {
    state: Arc<GatewayState>,
    router: axum::Router,
}

impl tower::Service<Request<Incoming>> for HttpSide {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> ResponseFuture {
        let state = self.state.clone();
        if web::is_grpc_web(&req) {
            return Box::pin(async move { Ok(web::call(state, req).await) });
        }
        if let Some(matched) = state
            .rest
            .find(&state.routes, req.method(), req.uri().path())
        {
            return Box::pin(async move {
                Ok(rest::serve(state, matched, req)
                    .await
                    .map(GatewayBody::Http))
            });
        }
        Box::pin(http(self.router.clone(), req))
    }
}

/// The HTTP side, behind CORS when configured.
#[derive(Clone)]
enum HttpService {
    Plain(HttpSide),
    Cors(Box<tower_http::cors::Cors<HttpSide>>),
}

impl HttpService {
    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        match self {
            HttpService::Plain(side) => side.clone().call(req),
            HttpService::Cors(cors) => Box::pin((**cors).clone().call(req)),
        }
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<GatewayState>,
    router: axum::Router,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let side = HttpSide {
        state: state.clone(),
        router,
    };
    let http_service = match &state.cors {
        Some(cors) => HttpService::Cors(Box::new(cors.layer(side))),
        None => HttpService::Plain(side),
    };
    let signal = std::pin::pin!(signal);
    let mut signal = signal;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let http_service = http_service.clone();
                // Boxed: hyper spawns one task per HTTP/2 stream, and a small future is
                // cheaper to move into it than the whole call state.
                let service = service_fn(move |req: Request<Incoming>| -> ResponseFuture {
                    if is_grpc(&req) {
                        Box::pin(grpc(state.clone(), req))
                    } else {
                        http_service.call(req)
                    }
                });
                let connection = builder
                    .serve_connection(Gathered::new(TokioIo::new(stream)), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                connections.spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!("connection ended: {err}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut signal => break,
        }
    }
    drop(listener);
    tracing::info!(
        "shutting down: no new connections, waiting up to {grace:?} for in-flight calls"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing the remaining connections");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use hyper::rt::Write;

    use super::{GATHER_MAX, Gathered};

    /// A socket that records its write calls and takes at most `limit` bytes per call.
    struct Recorder {
        calls: Vec<Vec<u8>>,
        limit: usize,
    }

    impl Write for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.calls.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|buf| buf.iter().copied()).collect();
            let n = all.len().min(self.limit);
            self.calls.push(all[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn gathered(limit: usize) -> Gathered<Recorder> {
        Gathered::new(Recorder {
            calls: Vec::new(),
            limit,
        })
    }

    /// Writes all of `buf` as a caller would (again after a partial write).
    fn write_all(io: &mut Gathered<Recorder>, mut buf: &[u8]) {
        let mut cx = Context::from_waker(Waker::noop());
        while !buf.is_empty() {
            match Pin::new(&mut *io).poll_write(&mut cx, buf) {
                Poll::Ready(Ok(n)) if n > 0 => buf = &buf[n..],
                other => panic!("write: {other:?}"),
            }
        }
    }

    fn flush(io: &mut Gathered<Recorder>) {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            Pin::new(&mut *io).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }

    #[test]
    fn small_writes_leave_together_at_the_flush() {
        let mut io = gathered(usize::MAX);
        write_all(&mut io, &[1; 100]);
        write_all(&mut io, &[2; 300]);
        assert!(io.io.calls.is_empty());
        flush(&mut io);
        assert_eq!(io.io.calls, [[[1; 100].as_slice(), &[2; 300]].concat()]);
        flush(&mut io);
        assert_eq!(io.io.calls.len(), 1);
    }

    #[test]
    fn a_large_write_goes_out_with_what_is_gathered_in_one_call() {
        let mut io = gathered(usize::MAX);
        write_all(&mut io, &[1; 100]);
        let large = vec![2; GATHER_MAX];
        write_all(&mut io, &large);
        assert_eq!(io.io.calls, [[[1; 100].as_slice(), &large].concat()]);
        flush(&mut io);
        assert_eq!(io.io.calls.len(), 1);
    }

    #[test]
    fn partial_writes_keep_the_bytes_in_order() {
        let mut io = gathered(70);
        write_all(&mut io, &[1; 100]);
        write_all(&mut io, &vec![2; GATHER_MAX]);
        write_all(&mut io, &[3; 50]);
        flush(&mut io);
        let sent: Vec<u8> = io.io.calls.concat();
        let expected = [[1; 100].as_slice(), &vec![2; GATHER_MAX], &[3; 50]].concat();
        assert_eq!(sent, expected);
        assert!(io.io.calls.iter().all(|call| call.len() <= 70));
    }
}
