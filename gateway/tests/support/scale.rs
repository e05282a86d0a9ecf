//! Helpers of the scale-out tests (discovery, health, retries): replicas of the test services
//! that count their calls and serve `grpc.health.v1`, bound on any loopback address, and a
//! small DNS server on 127.0.0.1 whose A records a test changes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use tokio::net::{TcpListener, UdpSocket};
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::LIMIT;
use super::grpc::TestService;

/// Counts the test-service calls (health checks excluded) a server receives.
#[derive(Clone)]
struct Count<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S, B> tower::Service<http::Request<B>> for Count<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> S::Future {
        if !req.uri().path().starts_with("/grpc.health.") {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.call(req)
    }
}

/// A replica of `test.Alpha` and `test.Beta` with the health service, in its own runtime (so
/// killing it drops every connection at once). Its health starts `SERVING`.
pub struct Replica {
    pub addr: SocketAddr,
    /// Test-service calls received (health checks excluded).
    pub calls: Arc<AtomicUsize>,
    health: HealthReporter,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    /// A replica on `addr` (port 0 for any).
    pub async fn start(addr: SocketAddr) -> Replica {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("replica runtime");
        let listener = {
            let _guard = runtime.enter();
            let listener = std::net::TcpListener::bind(addr).expect("bind replica");
            listener.set_nonblocking(true).expect("nonblocking");
            TcpListener::from_std(listener).expect("tokio listener")
        };
        let addr = listener.local_addr().expect("replica addr");
        let calls = Arc::new(AtomicUsize::new(0));
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status("", ServingStatus::Serving).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counted = calls.clone();
        runtime.spawn(
            tonic::transport::Server::builder()
                .layer(tower::layer::layer_fn(move |inner| Count {
                    inner,
                    calls: counted.clone(),
                }))
                .add_service(health_service)
                .add_service(TestService::<0>)
                .add_service(TestService::<1>)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                    let _ = stopped.await;
                }),
        );
        Replica {
            addr,
            calls,
            health,
            stop: Some(stop),
            runtime: Some(runtime),
        }
    }

    /// Calls received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Sets what the health service answers for the whole server (`""`).
    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.health.set_service_status("", status).await;
    }

    /// Stops gracefully: no new connections, GOAWAY to open ones, calls in flight finish.
    pub fn stop_gracefully(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Kills the server: its listener and every connection close at once.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free port on every loopback address the tests use: bound on 127.0.0.2, then checked on
/// the others (Linux routes all of 127.0.0.0/8 to `lo`).
pub fn shared_port(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind((ips[0], 0)).expect("bind a probe");
        let port = probe.local_addr().expect("probe addr").port();
        drop(probe);
        let free = ips
            .iter()
            .all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no port free on every test address");
}

/// A DNS server on 127.0.0.1 (UDP) answering A queries for one name from a set the test
/// changes; every other query gets an empty answer. TTL 0.
pub struct TestDns {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Ipv4Addr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    pub async fn start(name: &str, records: &[Ipv4Addr]) -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind dns");
        let addr = socket.local_addr().expect("dns addr");
        let records = Arc::new(Mutex::new(records.to_vec()));
        let served = records.clone();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let mut answer = Message::new();
                answer
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_authoritative(true)
                    .set_recursion_desired(query.recursion_desired())
                    .set_recursion_available(true)
                    .set_response_code(ResponseCode::NoError);
                for question in query.queries() {
                    answer.add_query(question.clone());
                    let asked = question.name().to_ascii().to_ascii_lowercase();
                    if asked.trim_end_matches('.') != name || question.query_type() != RecordType::A
                    {
                        continue;
                    }
                    let ips = served.lock().map(|ips| ips.clone()).unwrap_or_default();
                    for ip in ips {
                        answer.add_answer(Record::from_rdata(
                            question.name().clone(),
                            0,
                            RData::A(A(ip)),
                        ));
                    }
                }
                if let Ok(bytes) = answer.to_bytes() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        TestDns {
            addr,
            records,
            task,
        }
    }

    /// Replaces the A records.
    pub fn set(&self, records: &[Ipv4Addr]) {
        *self.records.lock().expect("records") = records.to_vec();
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of `name{labels}` in a Prometheus text, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Waits (polling every 50 ms, at most [`LIMIT`]) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < LIMIT, "never happened: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The loopback address `127.0.0.n`.
pub fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// `ip:port` as a socket address.
pub fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// The state of `endpoint` (`http://ip:port/`) in a `/metrics` text: the
/// `gateway_upstream_endpoint_state` series of it whose value is 1.
pub fn endpoint_state(text: &str, endpoint: &str) -> Option<String> {
    let needle = format!("endpoint=\"{endpoint}\",state=\"");
    text.lines()
        .filter(|line| {
            line.starts_with("gateway_upstream_endpoint_state{") && line.ends_with("} 1")
        })
        .find_map(|line| {
            let rest = &line[line.find(&needle)? + needle.len()..];
            Some(rest[..rest.find('"')?].to_owned())
        })
}
