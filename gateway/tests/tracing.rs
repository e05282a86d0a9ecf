//! Distributed tracing end to end: an OTLP trace receiver (a tonic server implementing
//! `opentelemetry.proto.collector.trace.v1.TraceService`) collects the spans of the real
//! gateway (`[tracing]`) and of a real tonic service behind it with the runtime's
//! `TraceLayer`. A call with a known `traceparent` gives the gateway's server span (child of
//! the client's span), one client span per upstream attempt (a refused attempt and its retry
//! are two) and the service's span under the attempt that reached it, all in the client's
//! trace; with `[tracing]` off the gateway sends nothing and passes `traceparent` on untouched.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Request;

use support::grpc::*;

/// A span as received, with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn int(&self, key: &str) -> Option<i64> {
        self.attribute(key).and_then(|value| match value {
            Value::IntValue(value) => Some(*value),
            _ => None,
        })
    }

    fn string(&self, key: &str) -> Option<&str> {
        self.attribute(key).and_then(|value| match value {
            Value::StringValue(value) => Some(value.as_str()),
            _ => None,
        })
    }

    fn attribute(&self, key: &str) -> Option<&Value> {
        self.span
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
    }

    fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    fn is_error(&self) -> bool {
        // STATUS_CODE_ERROR
        self.span
            .status
            .as_ref()
            .is_some_and(|status| status.code == 2)
    }
}

/// The OTLP/gRPC receiver: keeps every span of every export request.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut spans = self.spans.lock().expect("receiver lock");
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(
                    |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                        Value::StringValue(name) => Some(name.clone()),
                        _ => None,
                    },
                )
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let receiver = Receiver::default();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (receiver, addr)
    }

    /// The spans of `trace_id` received so far.
    fn trace(&self, trace_id: &[u8]) -> Vec<Received> {
        let spans = self.spans.lock().expect("receiver lock");
        spans
            .iter()
            .filter(|received| received.span.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `trace_id` has at least `count` spans.
    async fn wait_for(&self, trace_id: &[u8], count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.trace(trace_id);
            if spans.len() >= count || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The test services (`test.Alpha`, `test.Beta`) behind the runtime's trace layer, exporting
/// to `receiver` as `test-service`. Returns the address and the provider (kept alive).
async fn traced_service(receiver: SocketAddr) -> (SocketAddr, SdkTracerProvider) {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{receiver}"))
        .build()
        .expect("exporter");
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(100))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name("test-service")
                .build(),
        )
        .build();
    let layer = tonic_msgpack::trace::TraceLayer::with_tracer(provider.tracer("test-service"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(TestService::<0>)
            .add_service(TestService::<1>)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, provider)
}

fn tracing_config(receiver: SocketAddr, enabled: bool) -> String {
    format!(
        "[tracing]\nenabled = {enabled}\notlp_endpoint = \"http://{receiver}\"\nservice_name = \"test-gateway\"\nexport_interval = \"100ms\"\n"
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

/// A unary call to `test.Alpha/Unary` carrying `traceparent: 00-{trace}-{parent}-01`.
async fn traced_call(
    channel: &tonic::transport::Channel,
    trace: &str,
    parent: &str,
) -> Result<String, tonic::Status> {
    let mut request = Request::new("hi".to_owned());
    let traceparent = format!("00-{trace}-{parent}-01");
    request.metadata_mut().insert(
        "traceparent",
        traceparent.parse().expect("traceparent value"),
    );
    request
        .metadata_mut()
        .insert("tracestate", "vendor=kept".parse().expect("tracestate"));
    unary(channel, "/test.Alpha/Unary", request)
        .await
        .map(tonic::Response::into_inner)
}

fn one<'a>(spans: &'a [Received], what: &str, pick: impl Fn(&Received) -> bool) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|span| pick(span)).collect();
    assert_eq!(found.len(), 1, "one {what} span in {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_one_trace_from_client_through_gateway_to_service() {
    let (receiver, receiver_addr) = Receiver::start().await;
    let (service, _provider) = traced_service(receiver_addr).await;
    let log = std::env::temp_dir().join(format!("gateway-trace-log-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let config = format!(
        "{}{}[access_log]\nenabled = true\npath = \"{}\"\n",
        two_services(&format!("http://{service}"), ""),
        tracing_config(receiver_addr, true),
        log.display()
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let reply = traced_call(&channel, trace, parent).await.expect("call");
    assert_eq!(reply, "test.Alpha:hi");

    let spans = receiver.wait_for(&unhex(trace), 3).await;
    let server = one(&spans, "gateway server", |span| {
        span.service == "test-gateway" && span.kind() == SpanKind::Server
    });
    let client = one(&spans, "gateway client", |span| {
        span.service == "test-gateway" && span.kind() == SpanKind::Client
    });
    let upstream = one(&spans, "service", |span| span.service == "test-service");
    // Parented: client's span → gateway server → gateway client (the attempt) → service.
    assert_eq!(hex(&server.span.parent_span_id), parent);
    assert_eq!(client.span.parent_span_id, server.span.span_id);
    assert_eq!(upstream.span.parent_span_id, client.span.span_id);
    assert_eq!(upstream.kind(), SpanKind::Server);
    // What each span tells.
    assert_eq!(server.span.name, "test.Alpha/Unary");
    assert_eq!(server.string("gateway.route"), Some("/test.Alpha/Unary"));
    assert_eq!(server.string("gateway.protocol"), Some("grpc"));
    assert_eq!(server.string("rpc.service"), Some("test.Alpha"));
    assert_eq!(server.string("rpc.method"), Some("Unary"));
    assert_eq!(server.int("rpc.grpc.status_code"), Some(0));
    assert!(
        server.int("http.request.body.size") > Some(0),
        "{server:#?}"
    );
    assert!(
        server.int("http.response.body.size") > Some(0),
        "{server:#?}"
    );
    assert_eq!(client.span.name, "test.Alpha/Unary");
    assert_eq!(client.int("server.port"), Some(i64::from(service.port())));
    assert_eq!(client.string("server.address"), Some("127.0.0.1"));
    assert_eq!(client.string("gateway.upstream"), Some("test.Alpha"));
    assert_eq!(client.int("rpc.grpc.status_code"), Some(0));
    assert_eq!(client.int("http.request.resend_count"), None);
    assert_eq!(upstream.int("rpc.grpc.status_code"), Some(0));
    assert!(!server.is_error() && !client.is_error() && !upstream.is_error());
    // The client's tracestate went on to the service.
    assert_eq!(
        upstream.span.trace_state, "vendor=kept",
        "tracestate forwarded"
    );

    // A call without traceparent starts a trace at the gateway: its server span is a root.
    let started_before = receiver.spans.lock().expect("lock").len();
    unary(&channel, "/test.Beta/Unary", Request::new("x".to_owned()))
        .await
        .expect("untraced call");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let root = loop {
        let spans = receiver.spans.lock().expect("lock").clone();
        let root = spans[started_before..]
            .iter()
            .find(|span| {
                span.service == "test-gateway"
                    && span.span.name == "test.Beta/Unary"
                    && span.kind() == SpanKind::Server
            })
            .cloned();
        if let Some(root) = root {
            break root;
        }
        assert!(tokio::time::Instant::now() < deadline, "{spans:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(root.span.parent_span_id.is_empty(), "{root:#?}");
    let spans = receiver.wait_for(&root.span.trace_id, 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    // The access log names the trace the gateway started, so a line leads to its spans.
    let started = hex(&root.span.trace_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let logged_ids = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let ids: Vec<String> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|line| line["trace_id"].as_str().map(str::to_owned))
            .collect();
        if ids.len() >= 2 || tokio::time::Instant::now() >= deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = std::fs::remove_file(&log);
    assert_eq!(
        logged_ids,
        [trace.to_owned(), started],
        "trace ids in the access log"
    );
    gw.shutdown().await;
}

/// A raw HTTP/2 server that refuses every stream with GOAWAY(last stream 0, NO_ERROR): the
/// stream provably not processed, so the gateway sends the call again. Counts the streams.
async fn refusing_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let streams = Arc::new(AtomicUsize::new(0));
    let counted = streams.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(refuse(socket, counted.clone()));
        }
    });
    (addr, streams)
}

fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(0u32.to_be_bytes());
    out.extend(payload);
    out
}

async fn refuse(mut socket: TcpStream, streams: Arc<AtomicUsize>) {
    const HEADERS: u8 = 1;
    const SETTINGS: u8 = 4;
    const GOAWAY: u8 = 7;
    let mut preface = [0u8; 24];
    if socket.read_exact(&mut preface).await.is_err() {
        return;
    }
    let _ = socket.write_all(&frame(SETTINGS, 0, &[])).await;
    loop {
        let mut header = [0u8; 9];
        if socket.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        if socket.read_exact(&mut payload).await.is_err() {
            return;
        }
        match (header[3], header[4] & 1) {
            (HEADERS, _) => {
                streams.fetch_add(1, Ordering::SeqCst);
                let _ = socket.write_all(&frame(GOAWAY, 0, &[0; 8])).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            (SETTINGS, 0) => {
                let _ = socket.write_all(&frame(SETTINGS, 1, &[])).await;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_shows_a_client_span_per_attempt() {
    let (receiver, receiver_addr) = Receiver::start().await;
    let (service, _provider) = traced_service(receiver_addr).await;
    let (refusing, streams) = refusing_server().await;
    let config = format!(
        "[upstreams.\"test.Alpha\"]\nendpoints = [\"http://{refusing}\", \"http://{service}\"]\n{}",
        tracing_config(receiver_addr, true)
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    // Round robin: some call's first attempt goes to the refusing endpoint.
    let mut retried = None;
    for call in 0..8u32 {
        let trace = format!("{:032x}", 0xabc0_0000 + call);
        let before = streams.load(Ordering::SeqCst);
        let reply = traced_call(&channel, &trace, "1111111111111111")
            .await
            .expect("the call succeeds on its retry");
        assert_eq!(reply, "test.Alpha:hi");
        if streams.load(Ordering::SeqCst) > before {
            retried = Some(trace);
            break;
        }
    }
    let trace = retried.expect("a call was refused by the GOAWAY endpoint");
    let spans = receiver.wait_for(&unhex(&trace), 4).await;
    let server = one(&spans, "gateway server", |span| {
        span.service == "test-gateway" && span.kind() == SpanKind::Server
    });
    let mut attempts: Vec<&Received> = spans
        .iter()
        .filter(|span| span.service == "test-gateway" && span.kind() == SpanKind::Client)
        .collect();
    assert_eq!(attempts.len(), 2, "two attempts: {spans:#?}");
    attempts.sort_by_key(|span| span.span.start_time_unix_nano);
    let (refused, answered) = (attempts[0], attempts[1]);
    for attempt in [refused, answered] {
        assert_eq!(attempt.span.parent_span_id, server.span.span_id);
    }
    assert_eq!(refused.int("server.port"), Some(i64::from(refusing.port())));
    assert!(refused.is_error(), "{refused:#?}");
    assert_eq!(answered.int("server.port"), Some(i64::from(service.port())));
    assert_eq!(answered.int("http.request.resend_count"), Some(1));
    assert_eq!(answered.int("rpc.grpc.status_code"), Some(0));
    assert!(!answered.is_error(), "{answered:#?}");
    // The service saw the context of the attempt that reached it.
    let upstream = one(&spans, "service", |span| span.service == "test-service");
    assert_eq!(upstream.span.parent_span_id, answered.span.span_id);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_off_nothing_is_sent_and_traceparent_passes_untouched() {
    // The gateway's collector (it must hear nothing) and the service's.
    let (gateway_receiver, gateway_receiver_addr) = Receiver::start().await;
    let (service_receiver, service_receiver_addr) = Receiver::start().await;
    let (service, _provider) = traced_service(service_receiver_addr).await;
    let config = format!(
        "{}{}",
        two_services(&format!("http://{service}"), ""),
        tracing_config(gateway_receiver_addr, false)
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let parent = "b7ad6b7169203331";
    traced_call(&channel, trace, parent).await.expect("call");
    let spans = service_receiver.wait_for(&unhex(trace), 1).await;
    let upstream = one(&spans, "service", |span| span.service == "test-service");
    // No gateway span in between: the service continues the client's span itself.
    assert_eq!(hex(&upstream.span.parent_span_id), parent);
    // Longer than the gateway's export interval (100ms) several times over.
    tokio::time::sleep(Duration::from_millis(600)).await;
    gw.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gateway_receiver.requests.load(Ordering::SeqCst), 0);
    assert!(gateway_receiver.spans.lock().expect("lock").is_empty());
}

/// The export task is woken every 512 spans (or at the interval): spans still queued for it go
/// out when the gateway shuts down, before the process ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_queued_are_sent_at_shutdown() {
    let (receiver, receiver_addr) = Receiver::start().await;
    let (service, _provider) = traced_service(receiver_addr).await;
    let config = format!(
        "{}[tracing]\nenabled = true\notlp_endpoint = \"http://{receiver_addr}\"\nservice_name = \"test-gateway\"\nexport_interval = \"1h\"\n",
        two_services(&format!("http://{service}"), ""),
    );
    let gw = gateway(&config, routes()).await;
    let channel = channel(&gw.uri()).await;
    // 40 calls, 80 spans: fewer than the 512 that wake the export task.
    let calls = 40;
    for n in 1..=calls {
        let trace = format!("{n:032x}");
        traced_call(&channel, &trace, "00f067aa0ba902b7")
            .await
            .expect("call");
    }
    let from_gateway = |receiver: &Receiver| {
        let spans = receiver.spans.lock().expect("receiver lock");
        spans
            .iter()
            .filter(|received| received.service == "test-gateway")
            .count()
    };
    // Nothing sent yet: no batch is full and the interval is an hour.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(from_gateway(&receiver), 0);
    gw.shutdown().await;
    assert_eq!(from_gateway(&receiver), 2 * calls);
}

#[test]
fn tracing_config_errors_name_the_key() {
    use tonic_msgpack_gateway::Config;
    let err = |text: &str| Config::from_toml(text).expect_err("invalid").to_string();
    for (text, key) in [
        (
            "[tracing]\nsampling_ratio = 1.5\n",
            "tracing.sampling_ratio",
        ),
        (
            "[tracing]\notlp_endpoint = \"collector:4317\"\n",
            "tracing.otlp_endpoint",
        ),
        ("[tracing]\nservice_name = \" \"\n", "tracing.service_name"),
        (
            "[tracing]\nexport_interval = \"0s\"\n",
            "tracing.export_interval",
        ),
        ("[tracing]\nexport_timeout = \"soon\"\n", "export_timeout"),
        ("[tracing]\nmax_queue = 0\n", "tracing.max_queue"),
        ("[tracing]\nsample = 0.5\n", "sample"),
    ] {
        let e = err(text);
        assert!(e.contains(key), "{text}: {e}");
    }
    let config = Config::from_toml(
        "[tracing]\nenabled = true\notlp_endpoint = \"https://otel.example:4317\"\nsampling_ratio = 0.25\nservice_name = \"edge\"\nexport_interval = \"2s\"\nexport_timeout = \"3s\"\nmax_queue = 10\n",
    )
    .expect("valid");
    let tracing = config.tracing;
    assert!(tracing.enabled);
    assert_eq!(tracing.otlp_endpoint, "https://otel.example:4317");
    assert_eq!(tracing.sampling_ratio, 0.25);
    assert_eq!(tracing.service_name, "edge");
    assert_eq!(tracing.export_interval, Duration::from_secs(2));
    assert_eq!(tracing.export_timeout, Duration::from_secs(3));
    assert_eq!(tracing.max_queue, 10);
    let off = Config::from_toml("").expect("valid").tracing;
    assert!(!off.enabled, "off by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_web_calls_continue_the_trace_of_their_headers() {
    use support::rest::{json_call, send, shop_and_grpc_gateway, start_shop};
    let (receiver, receiver_addr) = Receiver::start().await;
    let (service, _provider) = traced_service(receiver_addr).await;
    let (shop, _gate) = start_shop().await;
    let gw = shop_and_grpc_gateway(
        shop,
        &format!("http://{service}"),
        &tracing_config(receiver_addr, true),
    )
    .await;

    // REST: the traceparent header; the span is named after the RPC the call became.
    let trace = "11112222333344445555666677778888";
    let parent = "2222222222222222";
    let traceparent = format!("00-{trace}-{parent}-01");
    let (status, _) = json_call(
        gw.addr,
        "GET",
        "/v1/shelves/3/items/4",
        &[("traceparent", traceparent.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let spans = receiver.wait_for(&unhex(trace), 2).await;
    let server = one(&spans, "REST server", |span| {
        span.kind() == SpanKind::Server
    });
    let client = one(&spans, "REST client", |span| {
        span.kind() == SpanKind::Client
    });
    assert_eq!(hex(&server.span.parent_span_id), parent);
    assert_eq!(server.span.name, "rest.v1.Shop/GetItem");
    assert_eq!(server.string("gateway.protocol"), Some("rest"));
    assert_eq!(
        server.string("gateway.route"),
        Some("/rest.v1.Shop/GetItem")
    );
    assert_eq!(server.int("http.response.status_code"), Some(200));
    assert!(
        server.int("http.response.body.size") > Some(0),
        "{server:#?}"
    );
    assert_eq!(client.span.parent_span_id, server.span.span_id);
    assert_eq!(client.span.name, "rest.v1.Shop/GetItem");
    assert_eq!(client.int("server.port"), Some(i64::from(shop.port())));

    // gRPC-Web: the same header, through to the traced service.
    let trace = "9999aaaabbbbccccddddeeeeffff0000";
    let traceparent = format!("00-{trace}-{parent}-01");
    let response = send(
        gw.addr,
        "POST",
        "/test.Alpha/Unary",
        &[
            ("content-type", "application/grpc-web"),
            ("x-grpc-web", "1"),
            ("traceparent", traceparent.as_str()),
        ],
        support::rest::frame(0, &[0xa2, b'h', b'i']),
    )
    .await;
    assert_eq!(response.status(), 200);
    support::rest::body_bytes(response).await;
    let spans = receiver.wait_for(&unhex(trace), 3).await;
    let server = one(&spans, "gRPC-Web server", |span| {
        span.service == "test-gateway" && span.kind() == SpanKind::Server
    });
    let client = one(&spans, "gRPC-Web client", |span| {
        span.service == "test-gateway" && span.kind() == SpanKind::Client
    });
    let upstream = one(&spans, "service", |span| span.service == "test-service");
    assert_eq!(server.string("gateway.protocol"), Some("grpc-web"));
    assert_eq!(hex(&server.span.parent_span_id), parent);
    assert_eq!(client.span.parent_span_id, server.span.span_id);
    assert_eq!(upstream.span.parent_span_id, client.span.span_id);
    assert_eq!(server.int("rpc.grpc.status_code"), Some(0));
    gw.shutdown().await;
}
