//! Distributed tracing for tonic servers (cargo feature `trace`): the service half of a trace
//! that starts at a client and goes through the gateway.
//!
//! [`TraceLayer`] continues the W3C trace context of each call (`traceparent`, `tracestate`:
//! what the gateway forwards, or a client calling directly) and records one OpenTelemetry
//! server span per call, from its request headers to the end of its response, with the
//! call's `rpc.*` attributes and its `rpc.grpc.status_code`. Without a `traceparent` the call
//! starts a trace of its own. One line on the server builder turns it on:
//!
//! ```no_run
//! # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//! tonic::transport::Server::builder()
//!     .layer(tonic_msgpack::trace::TraceLayer::new())
//!     .add_routes(routes)
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The spans go to the global tracer provider ([`opentelemetry::global::set_tracer_provider`],
//! e.g. an `opentelemetry_sdk` provider with an OTLP exporter), or to the tracer given to
//! [`TraceLayer::with_tracer`]. While a handler runs, its span's context is the current one
//! ([`opentelemetry::Context::current`]) and is in the request's extensions, so a handler
//! can open child spans or pass the context on to the services it calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http_body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::context::FutureExt as _;
use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The name of the instrumentation scope of the spans [`TraceLayer::new`] records.
pub const SCOPE: &str = "tonic-msgpack";

/// A tower layer for a tonic server that records one server span per call, in the trace its
/// `traceparent` names. See the [module docs](self).
#[derive(Clone)]
pub struct TraceLayer {
    tracer: Arc<BoxedTracer>,
}

impl std::fmt::Debug for TraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceLayer").finish_non_exhaustive()
    }
}

impl Default for TraceLayer {
    fn default() -> Self {
        TraceLayer::new()
    }
}

impl TraceLayer {
    /// Spans go to the global tracer provider (set it before serving: a tracer taken from
    /// the default provider records nothing).
    pub fn new() -> Self {
        TraceLayer {
            tracer: Arc::new(opentelemetry::global::tracer(SCOPE)),
        }
    }

    /// Spans go to `tracer`, e.g. `provider.tracer("my-service")` of an
    /// `opentelemetry_sdk::trace::SdkTracerProvider`.
    pub fn with_tracer<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        TraceLayer {
            tracer: Arc::new(BoxedTracer::new(Box::new(tracer))),
        }
    }
}

impl<S> tower_layer::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

/// The service [`TraceLayer`] wraps around a server's routes.
#[derive(Clone)]
pub struct TraceService<S> {
    inner: S,
    tracer: Arc<BoxedTracer>,
}

impl<S> std::fmt::Debug for TraceService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceService").finish_non_exhaustive()
    }
}

/// The future of a traced call.
pub type TraceFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for TraceService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
    R: HttpBody + Unpin,
{
    type Response = http::Response<TracedBody<R>>;
    type Error = S::Error;
    type Future = TraceFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
        let path = req.uri().path();
        let name = path.strip_prefix('/').unwrap_or(path).to_owned();
        let (service, method) = name.split_once('/').unwrap_or((name.as_str(), ""));
        let attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
        ];
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&*self.tracer, &parent);
        let cx = parent.with_span(span);
        req.extensions_mut().insert(cx.clone());
        let call = self.inner.call(req).with_context(cx.clone());
        Box::pin(async move {
            match call.await {
                Ok(response) => {
                    // A trailers-only response (an error, usually) has its status here.
                    let code = grpc_status(response.headers());
                    Ok(response.map(|body| TracedBody {
                        inner: body,
                        span: Some(cx),
                        code,
                    }))
                }
                Err(err) => {
                    let span = cx.span();
                    span.set_status(Status::error(err.to_string()));
                    span.end();
                    Err(err)
                }
            }
        })
    }
}

/// A traced call's response body: the span ends with the body (at its trailers, its end, or
/// when it is dropped: a cancelled call).
#[derive(Debug)]
pub struct TracedBody<B> {
    inner: B,
    span: Option<Context>,
    code: Option<i64>,
}

impl<B> TracedBody<B> {
    fn end(&mut self) {
        if let Some(cx) = self.span.take() {
            let span = cx.span();
            match self.code {
                Some(code) => {
                    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
                    if code != 0 {
                        span.set_status(Status::error(format!("grpc-status {code}")));
                    }
                }
                None => span.set_status(Status::error("the response ended without a status")),
            }
            span.end();
        }
    }
}

impl<B> Drop for TracedBody<B> {
    fn drop(&mut self) {
        if self.span.is_some() && self.code.is_none() {
            // The client went away before the end.
            self.code = Some(1);
        }
        self.end();
    }
}

impl<B: HttpBody + Unpin> HttpBody for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.code = grpc_status(trailers).or(this.code);
                    this.end();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.code = this.code.or(Some(2));
                this.end();
            }
            Poll::Ready(None) => this.end(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i64> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// Reads the W3C headers of a request.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
