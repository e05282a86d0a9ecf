//! Distributed tracing (`[tracing]`): the gateway continues the W3C trace context a client
//! sends (`traceparent`, `tracestate`: gRPC metadata, gRPC-Web and REST headers are all HTTP
//! headers) or starts a trace, records a server span per call and a client span per upstream
//! attempt (a retry is a span of its own), sends the attempt's context upstream in
//! `traceparent`, and exports the spans over OTLP/gRPC.
//!
//! Off (the default, or a build without the `otel` feature), the state holds no [`Tracing`]: a
//! call pays one `Option` test, and no span or context exists. The types keep the same names
//! in a build without the feature, where they cannot be constructed.

#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "otel")]
pub(crate) use otel::{AttemptSpan, CallTrace, Tracing};

#[cfg(not(feature = "otel"))]
mod off;
#[cfg(not(feature = "otel"))]
pub(crate) use off::{AttemptSpan, CallTrace, Tracing};
