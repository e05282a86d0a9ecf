//! Shared helpers of the gateway tests: real tonic upstream servers on `127.0.0.1:0`, a gateway
//! on `127.0.0.1:0`, and raw MessagePack gRPC clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::{Grpc, NamedService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_msgpack::MsgPackCodec;

pub use super::{LIMIT, RunningGateway, start_gateway as gateway};
use tonic_msgpack_gateway::{CallKind, Route, RouteTable};

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;
pub type MessageStream = Pin<Box<dyn futures_core::Stream<Item = Result<String, Status>> + Send>>;
type Codec = MsgPackCodec<String, String>;

/// Test service `ID`: 0 is `test.Alpha`, 1 is `test.Beta`. Each reply names the service.
#[derive(Clone, Copy)]
pub struct TestService<const ID: u8>;

impl NamedService for TestService<0> {
    const NAME: &'static str = "test.Alpha";
}

impl NamedService for TestService<1> {
    const NAME: &'static str = "test.Beta";
}

pub const METHODS: [(&str, CallKind); 9] = [
    ("Unary", CallKind::Unary),
    ("ServerStream", CallKind::ServerStreaming),
    ("ClientStream", CallKind::ClientStreaming),
    ("Bidi", CallKind::Bidirectional),
    ("Deadline", CallKind::Unary),
    ("Sleep", CallKind::Unary),
    ("Big", CallKind::Unary),
    ("Ticks", CallKind::ServerStreaming),
    ("StreamFail", CallKind::ServerStreaming),
];

pub fn routes() -> RouteTable {
    let mut routes = Vec::new();
    for service in ["test.Alpha", "test.Beta"] {
        for (method, kind) in METHODS {
            routes.push(Route::new(service, method, kind));
        }
    }
    RouteTable::from_routes(routes)
}

impl<const ID: u8, B> tower::Service<http::Request<B>> for TestService<ID>
where
    TestService<ID>: NamedService,
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
        let name = <Self as NamedService>::NAME;
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Box::pin(async move {
            let mut grpc = Grpc::new(Codec::default());
            let response = match method.as_str() {
                "Unary" => {
                    let svc = tower::service_fn(move |req: Request<String>| async move {
                        let mut response = Response::new(format!("{name}:{}", req.get_ref()));
                        if let Some(value) = req.metadata().get("x-req") {
                            response.metadata_mut().insert("x-resp", value.clone());
                        }
                        Ok::<_, Status>(response)
                    });
                    grpc.unary(svc, req).await
                }
                "Deadline" => {
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        let seen = req
                            .metadata()
                            .get("grpc-timeout")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("none")
                            .to_owned();
                        Ok::<_, Status>(Response::new(seen))
                    });
                    grpc.unary(svc, req).await
                }
                "Sleep" => {
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        let millis: u64 = req.get_ref().parse().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(millis)).await;
                        Ok::<_, Status>(Response::new("slept".to_owned()))
                    });
                    grpc.unary(svc, req).await
                }
                "Big" => {
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        let size: usize = req.get_ref().parse().unwrap_or(0);
                        Ok::<_, Status>(Response::new("x".repeat(size)))
                    });
                    grpc.unary(svc, req).await
                }
                "ServerStream" => {
                    let svc = tower::service_fn(move |req: Request<String>| async move {
                        let message = req.into_inner();
                        let stream: MessageStream = Box::pin(tokio_stream::iter(
                            (0..5).map(move |i| Ok(format!("{name}:{message}:{i}"))),
                        ));
                        Ok::<_, Status>(Response::new(stream))
                    });
                    grpc.server_streaming(svc, req).await
                }
                "StreamFail" => {
                    // Two messages, then an error whose metadata travels in the trailers.
                    let svc = tower::service_fn(|_req: Request<String>| async move {
                        let mut metadata = tonic::metadata::MetadataMap::new();
                        metadata.insert(
                            "x-why",
                            "because".parse().map_err(|_| Status::internal("value"))?,
                        );
                        let failure = Status::with_metadata(
                            tonic::Code::FailedPrecondition,
                            "stopped on purpose",
                            metadata,
                        );
                        let stream: MessageStream = Box::pin(tokio_stream::iter(vec![
                            Ok("first".to_owned()),
                            Ok("second".to_owned()),
                            Err(failure),
                        ]));
                        Ok::<_, Status>(Response::new(stream))
                    });
                    grpc.server_streaming(svc, req).await
                }
                "Ticks" => {
                    // One message every 50 ms, `n` of them: long enough to kill the upstream mid-call.
                    let svc = tower::service_fn(|req: Request<String>| async move {
                        let n: u64 = req.get_ref().parse().unwrap_or(0);
                        let stream: MessageStream =
                            Box::pin(futures_util::stream::unfold(0u64, move |i| async move {
                                if i == n {
                                    return None;
                                }
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Some((Ok(format!("tick {i}")), i + 1))
                            }));
                        Ok::<_, Status>(Response::new(stream))
                    });
                    grpc.server_streaming(svc, req).await
                }
                "ClientStream" => {
                    let svc = tower::service_fn(
                        move |req: Request<tonic::Streaming<String>>| async move {
                            let mut stream = req.into_inner();
                            let mut parts = Vec::new();
                            while let Some(message) = stream.message().await? {
                                parts.push(message);
                            }
                            let mut response = Response::new(format!("{name}:{}", parts.join(",")));
                            response.metadata_mut().insert(
                                "x-count",
                                parts
                                    .len()
                                    .to_string()
                                    .parse()
                                    .map_err(|_| Status::internal("count"))?,
                            );
                            Ok::<_, Status>(response)
                        },
                    );
                    grpc.client_streaming(svc, req).await
                }
                "Bidi" => {
                    let svc = tower::service_fn(
                        move |req: Request<tonic::Streaming<String>>| async move {
                            let stream = req.into_inner();
                            let out: MessageStream = Box::pin(stream.map(move |message| {
                                message.map(|m| format!("{name}:{}", m.to_uppercase()))
                            }));
                            Ok::<_, Status>(Response::new(out))
                        },
                    );
                    grpc.streaming(svc, req).await
                }
                _ => Status::unimplemented(format!("{name} has no method {method}")).into_http(),
            };
            Ok(response)
        })
    }
}

/// A real tonic server for `test.Alpha` and `test.Beta` in its own runtime, so killing it
/// drops every connection at once. Counts accepted TCP connections.
pub struct Upstream {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::start_at(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::new(AtomicUsize::new(0)),
        )
        .await
    }

    async fn start_at(addr: SocketAddr, accepted: Arc<AtomicUsize>) -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("upstream runtime");
        let listener = {
            let _guard = runtime.enter();
            let std_listener = bind_retrying(addr).await;
            TcpListener::from_std(std_listener).expect("tokio listener")
        };
        let addr = listener.local_addr().expect("local addr");
        let counter = accepted.clone();
        let incoming = TcpListenerStream::new(listener).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(TestService::<0>)
                .add_service(TestService::<1>)
                .serve_with_incoming(incoming),
        );
        Upstream {
            addr,
            accepted,
            runtime: Some(runtime),
        }
    }

    /// Kills the server: its listener and every connection close at once.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        let again = Upstream::start_at(self.addr, self.accepted.clone()).await;
        *self = again;
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn bind_retrying(addr: SocketAddr) -> std::net::TcpListener {
    for _ in 0..100 {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                listener.set_nonblocking(true).expect("nonblocking");
                return listener;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("cannot bind {addr} again");
}

/// A config with the two test services on `upstream`.
pub fn two_services(upstream: &str, extra: &str) -> String {
    format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"{upstream}\"]\n{extra}\n[upstreams.\"test.Beta\"]\nendpoints = [\"{upstream}\"]\n{extra}\n"
    )
}

pub async fn channel(uri: &str) -> Channel {
    tokio::time::timeout(
        LIMIT,
        Endpoint::from_shared(uri.to_owned())
            .expect("uri")
            .connect(),
    )
    .await
    .expect("connect within the limit")
    .expect("connect")
}

pub fn path(path: &str) -> PathAndQuery {
    PathAndQuery::try_from(path).expect("path")
}

pub async fn unary(
    channel: &Channel,
    method: &str,
    request: Request<String>,
) -> Result<Response<String>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(LIMIT, async {
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        client.unary(request, path(method), Codec::default()).await
    })
    .await
    .expect("call ends within the limit")
}

pub async fn server_streaming(
    channel: &Channel,
    method: &str,
    request: Request<String>,
) -> Result<Vec<String>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(LIMIT, async {
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut stream = client
            .server_streaming(request, path(method), Codec::default())
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(message) = stream.message().await? {
            out.push(message);
        }
        Ok(out)
    })
    .await
    .expect("call ends within the limit")
}

/// A raw HTTP/1.1 GET; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(LIMIT, async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .expect("http request within the limit")
}

/// A client-streaming call sending `items`.
pub async fn client_streaming(
    channel: &Channel,
    method: &str,
    items: &[&str],
) -> Result<Response<String>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let requests = tokio_stream::iter(
        items
            .iter()
            .map(|item| (*item).to_owned())
            .collect::<Vec<_>>(),
    );
    tokio::time::timeout(
        LIMIT,
        client.client_streaming(Request::new(requests), path(method), Codec::default()),
    )
    .await
    .expect("call ends within the limit")
}

/// Opens a bidi call: a sender for requests and the response stream.
pub async fn bidi(
    channel: &Channel,
    method: &str,
) -> (tokio::sync::mpsc::Sender<String>, tonic::Streaming<String>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.expect("ready");
    let responses = tokio::time::timeout(
        LIMIT,
        client.streaming(
            Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
            path(method),
            Codec::default(),
        ),
    )
    .await
    .expect("in time")
    .expect("bidi")
    .into_inner();
    (tx, responses)
}
