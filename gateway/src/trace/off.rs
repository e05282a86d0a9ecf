//! A build without the `otel` feature: the tracing types exist (so calls read the same) but
//! none can be made, and a config that turns tracing on is refused.

use std::net::SocketAddr;

use http::HeaderMap;

use crate::access_log::Protocol;
use crate::config::TracingConfig;
use crate::text::EndpointName;

/// Never constructed in this build.
#[derive(Debug)]
pub(crate) enum Tracing {}

impl Tracing {
    /// Refuses: this build has no exporter.
    pub(crate) fn start(_config: &TracingConfig) -> Result<Tracing, String> {
        Err("this gateway was built without tracing (the `otel` cargo feature)".into())
    }

    pub(crate) fn config(&self) -> &TracingConfig {
        match *self {}
    }

    pub(crate) fn dropped_spans(&self) -> u64 {
        match *self {}
    }

    pub(crate) async fn flush(&self) {
        match *self {}
    }

    pub(crate) fn server(
        &self,
        _headers: &HeaderMap,
        _protocol: Protocol,
        _path: &str,
        _peer: Option<SocketAddr>,
    ) -> CallTrace {
        match *self {}
    }
}

/// Never constructed in this build.
#[derive(Debug, Clone)]
pub(crate) enum CallTrace {}

impl CallTrace {
    pub(crate) fn trace_id_hex(&self) -> [u8; 32] {
        match *self {}
    }

    pub(crate) fn route(&self, _route: &std::sync::Arc<str>) {
        match *self {}
    }

    pub(crate) fn rpc(self, _path: &std::sync::Arc<str>) -> CallTrace {
        match self {}
    }

    pub(crate) fn attempt(
        &self,
        _headers: &mut HeaderMap,
        _upstream: &std::sync::Arc<str>,
        _endpoint: &std::sync::Arc<EndpointName>,
        _attempt: u32,
        _index_header: bool,
    ) -> AttemptSpan {
        match *self {}
    }

    pub(crate) fn finish(
        self,
        _code: Option<u16>,
        _http_status: Option<u16>,
        _bytes: (u64, u64),
        _attempt: Option<AttemptSpan>,
    ) {
        match self {}
    }
}

/// Never constructed in this build.
#[derive(Debug, Clone)]
pub(crate) enum AttemptSpan {}

impl AttemptSpan {
    pub(crate) fn failed(self, _error: &dyn std::fmt::Display) {
        match self {}
    }
}
