//! A small MessagePack echo service for gateway benchmarks (`bench/gateway.sh`).
//!
//! `cargo run --release -p tonic-msgpack-gateway --example echo_upstream -- 127.0.0.1:50051 [THREADS]`
//!
//! - `/echo.Echo/UnaryEcho`: a string in, the same string out.
//! - `/echo.Echo/StreamEcho`: a string in, the same string 10 times out (server streaming).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status};
use tonic_msgpack::MsgPackCodec;

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;
type MessageStream = Pin<Box<dyn futures_core::Stream<Item = Result<String, Status>> + Send>>;

/// The echo service, written the way tonic-build would generate it.
#[derive(Clone, Copy)]
struct Echo;

impl NamedService for Echo {
    const NAME: &'static str = "echo.Echo";
}

impl<B> tower::Service<http::Request<B>> for Echo
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            "/echo.Echo/UnaryEcho" => Box::pin(async move {
                let method = tower::service_fn(|req: Request<String>| async move {
                    Ok::<_, Status>(Response::new(req.into_inner()))
                });
                let mut grpc = Grpc::new(MsgPackCodec::<String, String>::default());
                Ok(grpc.unary(method, req).await)
            }),
            "/echo.Echo/StreamEcho" => Box::pin(async move {
                let method = tower::service_fn(|req: Request<String>| async move {
                    let message = req.into_inner();
                    let stream: MessageStream =
                        Box::pin(tokio_stream::iter(std::iter::repeat_n(message, 10).map(Ok)));
                    Ok::<_, Status>(Response::new(stream))
                });
                let mut grpc = Grpc::new(MsgPackCodec::<String, String>::default());
                Ok(grpc.server_streaming(method, req).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:50051".into())
        .parse()?;
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        eprintln!("echo_upstream listening on {addr} with {threads} worker thread(s)");
        tonic::transport::Server::builder()
            .add_service(Echo)
            .serve(addr)
            .await
    })?;
    Ok(())
}
