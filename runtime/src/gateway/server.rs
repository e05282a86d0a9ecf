//! One listener for HTTP/1.1 and h2c, split per request by content type; graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::task::{Context, Poll};
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
                    .serve_connection(TokioIo::new(stream), service)
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
