//! A small OTLP/gRPC trace receiver (`opentelemetry.proto.collector.trace.v1.TraceService`):
//! the collector of `bench/gateway.sh`'s tracing scenario (it counts spans and drops them) and
//! of the interop trace check (`--print`: one line per span).
//!
//! ```text
//! cargo run -p tonic-msgpack-gateway --example otlp_sink -- --listen 127.0.0.1:4317 [--print]
//! ```
//!
//! With `--print`, each span is a line `trace_id span_id parent_span_id kind service name`
//! (hex ids, `-` for a root's parent) on standard output, flushed at once. It prints the
//! total number of spans received when it gets SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

#[derive(Clone, Default)]
struct Sink {
    spans: Arc<AtomicU64>,
    print: bool,
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut lines = String::new();
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
                .unwrap_or_else(|| "-".into());
            for span in resource
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                self.spans.fetch_add(1, Ordering::Relaxed);
                if self.print {
                    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
                    lines.push_str(&format!(
                        "{} {} {} {} {service} {}\n",
                        hex(&span.trace_id),
                        hex(&span.span_id),
                        hex(&span.parent_span_id),
                        kind.as_str_name(),
                        span.name
                    ));
                }
            }
        }
        if !lines.is_empty() {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(lines.as_bytes());
            let _ = out.flush();
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:4317".parse()?;
    let mut sink = Sink::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--print" => sink.print = true,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("otlp_sink: listening on {}", listener.local_addr()?);
    let spans = sink.spans.clone();
    let stop = tonic_msgpack_gateway::shutdown_signal()?;
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop,
        )
        .await?;
    eprintln!(
        "otlp_sink: {} spans received",
        spans.load(Ordering::Relaxed)
    );
    Ok(())
}
