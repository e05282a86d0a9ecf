//! The OpenTelemetry side of [`super`]: the SDK's tracer provider with a batch OTLP/gRPC
//! exporter, the W3C propagator, and the spans of one call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};

use crate::access_log::Protocol;
use crate::config::TracingConfig;

/// How long shutting down waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// The gateway's tracer: one per `[tracing]` config, kept across reloads that leave it alone.
pub(crate) struct Tracing {
    config: TracingConfig,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tracing {
    /// Starts the exporter of `config` (it connects lazily: an unreachable collector only
    /// loses spans). Must run inside the tokio runtime, which carries the exporter's calls.
    pub(crate) fn start(config: &TracingConfig) -> Result<Tracing, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .with_timeout(config.export_timeout)
            .build()
            .map_err(|err| format!("cannot set up the OTLP exporter: {err}"))?;
        let batch = BatchConfigBuilder::default()
            .with_scheduled_delay(config.export_interval)
            .with_max_queue_size(config.max_queue)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        // A client's sampling decision (the `traceparent` flag) stands; new traces are sampled
        // by the ratio.
        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("tonic-msgpack-gateway");
        Ok(Tracing {
            config: config.clone(),
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// The config this tracer was started with.
    pub(crate) fn config(&self) -> &TracingConfig {
        &self.config
    }

    /// Exports the spans still waiting (blocking: call it off the runtime's threads).
    pub(crate) fn flush(&self) {
        if let Err(err) = self.provider.force_flush() {
            tracing::debug!("trace export at shutdown failed: {err}");
        }
    }

    /// Opens the server span of a call: a child of the client's `traceparent` when it sent a
    /// valid one, else the root of a new trace.
    pub(crate) fn server(
        &self,
        headers: &HeaderMap,
        protocol: Protocol,
        path: &str,
        peer: Option<SocketAddr>,
    ) -> CallTrace {
        let parent = self.propagator.extract(&Headers(headers));
        let (service, method) = service_and_method(path);
        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new("rpc.system", "grpc"));
        attributes.push(KeyValue::new("rpc.service", service.to_owned()));
        attributes.push(KeyValue::new("rpc.method", method.to_owned()));
        attributes.push(KeyValue::new("gateway.protocol", protocol_name(protocol)));
        if let Some(peer) = peer {
            attributes.push(KeyValue::new("client.address", peer.ip().to_string()));
            attributes.push(KeyValue::new("client.port", i64::from(peer.port())));
        }
        let name: Arc<str> = Arc::from(span_name(path));
        let span = self
            .tracer
            .span_builder(name.to_string())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        CallTrace {
            cx: parent.with_span(span),
            name,
            tracer: self.tracer.clone(),
            propagator: self.propagator.clone(),
        }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        // Shutting down blocks until the exporter is done, and the exporter's calls run on the
        // runtime this is likely dropped on: shut down on a thread of its own.
        let provider = self.provider.clone();
        let spawned = std::thread::Builder::new()
            .name("trace-shutdown".into())
            .spawn(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
        if let Err(err) = spawned {
            tracing::debug!("cannot shut the trace exporter down: {err}");
        }
    }
}

/// The server span of one call, carried in the request's extensions to the pool (which opens
/// a client span per attempt under it) and to the end of the response.
#[derive(Clone)]
pub(crate) struct CallTrace {
    cx: Context,
    /// The RPC's span name, which the client spans share.
    name: Arc<str>,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl std::fmt::Debug for CallTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTrace")
            .field("span", self.cx.span().span_context())
            .finish()
    }
}

impl CallTrace {
    /// The trace's id as 32 lowercase hex digits, as the access log writes it.
    pub(crate) fn trace_id_hex(&self) -> [u8; 32] {
        let text = format!("{:032x}", self.cx.span().span_context().trace_id());
        let mut hex = [b'0'; 32];
        hex.copy_from_slice(&text.as_bytes()[..32]);
        hex
    }

    /// Names the route the call matched (`gateway.route`, the label of `/metrics`).
    pub(crate) fn route(&self, route: &str) {
        self.cx
            .span()
            .set_attribute(KeyValue::new("gateway.route", route.to_owned()));
    }

    /// Names the RPC a REST call became (its route's gRPC path): the span's name and `rpc.*`
    /// attributes, and the name of its client spans.
    pub(crate) fn rpc(self, path: &str) -> CallTrace {
        let (service, method) = service_and_method(path);
        self.cx.span().update_name(span_name(path).to_owned());
        self.cx.span().set_attributes([
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("gateway.route", path.to_owned()),
        ]);
        CallTrace {
            name: Arc::from(span_name(path)),
            ..self
        }
    }

    /// Opens the client span of one upstream attempt (`attempt` counts from 1) and puts its
    /// context in the request's `traceparent` (and the client's `tracestate`).
    pub(crate) fn attempt(
        &self,
        headers: &mut HeaderMap,
        upstream: &str,
        endpoint: &Uri,
        attempt: u32,
    ) -> AttemptSpan {
        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new("rpc.system", "grpc"));
        attributes.push(KeyValue::new("gateway.upstream", upstream.to_owned()));
        attributes.push(KeyValue::new("gateway.endpoint", endpoint.to_string()));
        if let Some(host) = endpoint.host() {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = endpoint.port_u16() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        if attempt > 1 {
            attributes.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(attempt - 1),
            ));
        }
        let client = self
            .tracer
            .span_builder(self.name.to_string())
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &self.cx);
        let cx = self.cx.with_span(client);
        self.propagator
            .inject_context(&cx, &mut HeadersMut(headers));
        AttemptSpan { cx }
    }

    /// Ends the call's spans: the last attempt's (when one was answered) and the server span,
    /// with the call's grpc-status (`None`: not known, e.g. a REST call's HTTP status only),
    /// its HTTP status and its bytes in and out.
    pub(crate) fn finish(
        self,
        code: Option<u16>,
        http_status: Option<u16>,
        (bytes_in, bytes_out): (u64, u64),
        attempt: Option<AttemptSpan>,
    ) {
        if let Some(attempt) = attempt {
            let span = attempt.cx.span();
            if let Some(code) = code {
                span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
            }
            span.set_attribute(KeyValue::new("http.response.body.size", bytes_out as i64));
            span.set_status(status_of(code, http_status));
            span.end();
        }
        let span = self.cx.span();
        let mut attributes = Vec::with_capacity(4);
        if let Some(code) = code {
            attributes.push(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
        }
        if let Some(status) = http_status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        attributes.push(KeyValue::new("http.request.body.size", bytes_in as i64));
        attributes.push(KeyValue::new("http.response.body.size", bytes_out as i64));
        span.set_attributes(attributes);
        span.set_status(status_of(code, http_status));
        span.end();
    }
}

/// The client span of one upstream attempt.
#[derive(Clone)]
pub(crate) struct AttemptSpan {
    cx: Context,
}

impl std::fmt::Debug for AttemptSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptSpan")
            .field("span", self.cx.span().span_context())
            .finish()
    }
}

impl AttemptSpan {
    /// Ends an attempt that got no response (refused, connection lost: the call may go again).
    pub(crate) fn failed(self, error: &dyn std::fmt::Display) {
        let span = self.cx.span();
        let message = error.to_string();
        span.set_attribute(KeyValue::new("error.type", message.clone()));
        span.set_status(Status::error(message));
        span.end();
    }
}

/// A span's status: an error for any grpc-status but OK, or an HTTP status of 500 and above
/// (OpenTelemetry's rule for server spans); unset otherwise.
fn status_of(code: Option<u16>, http_status: Option<u16>) -> Status {
    match (code, http_status) {
        (Some(0), _) => Status::Unset,
        (Some(code), _) => Status::error(format!("grpc-status {code}")),
        (None, Some(status)) if status >= 500 => Status::error(format!("HTTP {status}")),
        _ => Status::Unset,
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc => "grpc",
        Protocol::GrpcWeb => "grpc-web",
        Protocol::Rest => "rest",
    }
}

/// `pkg.Service/Method`, the name OpenTelemetry gives an RPC's spans.
fn span_name(path: &str) -> &str {
    path.strip_prefix('/').unwrap_or(path)
}

/// Reads W3C headers from a request.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes W3C headers into an upstream request.
struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The RPC's service and method from a gRPC path (`/pkg.Service/Method`), for attributes; the
/// whole path when it has no such shape.
fn service_and_method(path: &str) -> (&str, &str) {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or((path, ""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            super::service_and_method("/test.Alpha/Echo"),
            ("test.Alpha", "Echo")
        );
        assert_eq!(super::service_and_method("odd"), ("odd", ""));
        assert_eq!(super::span_name("/test.Alpha/Echo"), "test.Alpha/Echo");
    }
}
