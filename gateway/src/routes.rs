//! The route table: which gRPC paths exist, their call kinds, HTTP bindings and transcoders.
//!
//! Route tables are generated code (`tonic_msgpack_build` from `build.rs`, or the
//! `tonic-msgpack routes` CLI); where each service runs comes from the [config](super::Config).

use std::collections::HashMap;
use std::fmt;

pub use tonic_msgpack_core::{CallKind, Format, HttpBinding};

use super::transcode::Transcoder;

/// One method the gateway can route.
#[derive(Clone)]
pub struct Route {
    /// The gRPC path, `/demo.v1.Greeter/SayHello`.
    pub path: String,
    /// The service's full name, `demo.v1.Greeter`.
    pub service: String,
    /// The method's wire name, `SayHello`.
    pub method: String,
    /// Unary or streaming.
    pub kind: CallKind,
    /// The upstream this route goes to (defaults to the service's full name; a config prefix
    /// override wins).
    pub upstream: String,
    /// The REST binding, when the method has one.
    pub http: Option<HttpBinding>,
    /// The service's message layout.
    pub format: Format,
    /// Typed JSON ⇄ MessagePack transcoding (REST), filled by `build.rs`-generated stubs.
    pub transcoder: Option<Transcoder>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("upstream", &self.upstream)
            .field("http", &self.http)
            .field("format", &self.format)
            .field("transcoder", &self.transcoder.is_some())
            .finish()
    }
}

impl Route {
    /// A route for `service`/`method` (wire names); the path is `/{service}/{method}` and the
    /// upstream is the service's full name.
    pub fn new(service: &str, method: &str, kind: CallKind) -> Self {
        Route {
            path: format!("/{service}/{method}"),
            service: service.to_owned(),
            method: method.to_owned(),
            kind,
            upstream: service.to_owned(),
            http: None,
            format: Format::Compact,
            transcoder: None,
        }
    }

    /// Sets the REST binding.
    pub fn http(mut self, binding: HttpBinding) -> Self {
        self.http = Some(binding);
        self
    }

    /// Sets the message layout (default: compact).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Sets the upstream name (default: the service's full name).
    pub fn upstream(mut self, upstream: &str) -> Self {
        self.upstream = upstream.to_owned();
        self
    }

    /// Sets the typed transcoder used for REST.
    pub fn transcoder(mut self, transcoder: Transcoder) -> Self {
        self.transcoder = Some(transcoder);
        self
    }
}

/// All routes of a gateway, looked up by exact gRPC path.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Looked up on every call; filled from the config, never from requests.
    by_path: HashMap<String, usize, foldhash::fast::RandomState>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        RouteTable::default()
    }

    /// A table of `routes`; a later route with the same path replaces an earlier one.
    pub fn from_routes(routes: impl IntoIterator<Item = Route>) -> Self {
        let mut table = RouteTable::new();
        for route in routes {
            table.insert(route);
        }
        table
    }

    /// Adds `route`, replacing any route with the same path.
    pub fn insert(&mut self, route: Route) {
        match self.by_path.get(&route.path) {
            Some(&index) => self.routes[index] = route,
            None => {
                self.by_path.insert(route.path.clone(), self.routes.len());
                self.routes.push(route);
            }
        }
    }

    /// Adds every route of `other` (for gateways fronting services from several crates).
    pub fn merge(mut self, other: RouteTable) -> Self {
        for route in other.routes {
            self.insert(route);
        }
        self
    }

    /// The route at `path`.
    pub fn get(&self, path: &str) -> Option<&Route> {
        self.index_of(path).map(|index| &self.routes[index])
    }

    pub(crate) fn index_of(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// Every route, in insertion order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub(crate) fn routes_mut(&mut self) -> &mut [Route] {
        &mut self.routes
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_exact_path_and_replace() {
        let table = RouteTable::from_routes([
            Route::new("demo.v1.Greeter", "SayHello", CallKind::Unary),
            Route::new("demo.v1.Greeter", "Chat", CallKind::Bidirectional),
            Route::new("demo.v1.Greeter", "SayHello", CallKind::ServerStreaming),
        ]);
        assert_eq!(table.len(), 2);
        let route = table.get("/demo.v1.Greeter/SayHello").expect("route");
        assert_eq!(route.kind, CallKind::ServerStreaming);
        assert_eq!(route.upstream, "demo.v1.Greeter");
        assert!(table.get("/demo.v1.Greeter/sayhello").is_none());
    }
}
