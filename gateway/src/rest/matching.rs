//! Which route a REST request is for: every explicit HTTP binding (a
//! [`PathTemplate`] per route) indexed by method and segment
//! count, then the default `POST /{package}.{Service}/{Method}`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use http::Method;
use tokio::sync::Semaphore;
use tonic_msgpack_core::{PathTemplate, Segment};

use crate::routes::{HttpBinding, RouteTable};
use crate::wire::percent_decode;

/// An HTTP binding that cannot be served (a bad path template).
#[derive(Debug, thiserror::Error)]
#[error("route {route}: HTTP binding `{method} {template}`: {message}")]
pub struct BindingError {
    route: String,
    method: String,
    template: String,
    message: String,
}

/// Where the request body goes in the request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyTarget {
    /// `body: "*"`: the whole message.
    Whole,
    /// `body: "field"`: that field.
    Field(String),
    /// No body (GET, or a binding without `body`).
    None,
}

#[derive(Debug)]
struct Binding {
    route: usize,
    segments: Vec<Segment>,
    body: BodyTarget,
}

/// Every explicit HTTP binding, indexed by method and segment count, and the permits for
/// parsing large bodies (`rest.parse_concurrency`).
#[derive(Debug, Default)]
pub(crate) struct RestRoutes {
    exact: HashMap<(Method, usize), Vec<Binding>>,
    /// Bindings ending in `{field=**}`, by method.
    tails: HashMap<Method, Vec<Binding>>,
    /// Created on first use, from the config the gateway serves with.
    parse_permits: OnceLock<Arc<Semaphore>>,
}

/// A REST request matched to a route.
#[derive(Debug)]
pub(crate) struct Matched {
    /// The route's index in the table.
    pub(super) route: usize,
    /// The path variables, percent-decoded: (field path, text).
    pub(super) vars: Vec<(String, String)>,
    /// Where the body goes.
    pub(super) body: BodyTarget,
}

impl RestRoutes {
    /// Parses every route's HTTP binding.
    pub(crate) fn new(routes: &RouteTable) -> Result<RestRoutes, BindingError> {
        let mut table = RestRoutes::default();
        for (index, route) in routes.routes().iter().enumerate() {
            let Some(binding) = &route.http else { continue };
            let error = |message: String| BindingError {
                route: route.path.clone(),
                method: binding.method.clone(),
                template: binding.path.clone(),
                message,
            };
            let method = Method::from_bytes(binding.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| error("not an HTTP method".into()))?;
            let segments = PathTemplate::parse(&binding.path)
                .map_err(|err| error(err.to_string()))?
                .segments()
                .to_vec();
            let body = body_target(binding, &method);
            let compiled = Binding {
                route: index,
                segments,
                body,
            };
            if matches!(compiled.segments.last(), Some(Segment::Tail(_))) {
                table.tails.entry(method).or_default().push(compiled);
            } else {
                table
                    .exact
                    .entry((method, compiled.segments.len()))
                    .or_default()
                    .push(compiled);
            }
        }
        Ok(table)
    }

    /// The permits for parsing large bodies: `count` of them, shared by every REST call.
    pub(super) fn parse_permits(&self, count: usize) -> Arc<Semaphore> {
        self.parse_permits
            .get_or_init(|| Arc::new(Semaphore::new(count)))
            .clone()
    }

    /// The binding `method path` matches: a route's explicit binding, else its default
    /// `POST /{package}.{Service}/{Method}`.
    pub(crate) fn find(&self, routes: &RouteTable, method: &Method, path: &str) -> Option<Matched> {
        let segments: Vec<&str> = match path.strip_prefix('/') {
            Some(rest) => rest.split('/').collect(),
            None => return None,
        };
        if let Some(bindings) = self.exact.get(&(method.clone(), segments.len())) {
            for binding in bindings {
                if let Some(vars) = binding.matches(&segments) {
                    return Some(binding.matched(vars));
                }
            }
        }
        if let Some(bindings) = self.tails.get(method) {
            for binding in bindings {
                if let Some(vars) = binding.matches(&segments) {
                    return Some(binding.matched(vars));
                }
            }
        }
        if method == Method::POST
            && let Some(route) = routes.index_of(path)
        {
            return Some(Matched {
                route,
                vars: Vec::new(),
                body: BodyTarget::Whole,
            });
        }
        None
    }
}

impl Binding {
    fn matched(&self, vars: Vec<(String, String)>) -> Matched {
        Matched {
            route: self.route,
            vars,
            body: self.body.clone(),
        }
    }

    fn matches(&self, path: &[&str]) -> Option<Vec<(String, String)>> {
        let mut vars = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => {
                    if path.get(index).copied()? != text {
                        return None;
                    }
                }
                Segment::Any => {
                    if path.get(index)?.is_empty() {
                        return None;
                    }
                }
                Segment::Field(field) => {
                    let value = path.get(index)?;
                    if value.is_empty() {
                        return None;
                    }
                    vars.push((field.clone(), percent_decode(value, false)?));
                }
                Segment::Tail(field) => {
                    let rest = path.get(index..)?;
                    if rest.is_empty() || rest.iter().any(|s| s.is_empty()) {
                        return None;
                    }
                    vars.push((field.clone(), percent_decode(&rest.join("/"), false)?));
                }
            }
        }
        Some(vars)
    }
}

fn body_target(binding: &HttpBinding, method: &Method) -> BodyTarget {
    match binding.body.as_deref() {
        _ if method == Method::GET || method == Method::HEAD => BodyTarget::None,
        Some("*") => BodyTarget::Whole,
        Some("") | None => BodyTarget::None,
        Some(field) => BodyTarget::Field(field.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match() {
        let parse_template =
            |text: &str| PathTemplate::parse(text).map(|template| template.segments().to_vec());
        let segments = parse_template("/v1/sum/{a}/{b=*}").expect("valid");
        assert_eq!(segments.len(), 4);
        let binding = Binding {
            route: 0,
            segments,
            body: BodyTarget::None,
        };
        let vars = binding
            .matches(&["v1", "sum", "1", "x%20y"])
            .expect("match");
        assert_eq!(vars, [("a".into(), "1".into()), ("b".into(), "x y".into())]);
        assert!(binding.matches(&["v1", "sum", "1"]).is_none());
        assert!(binding.matches(&["v1", "add", "1", "2"]).is_none());
        let tail = Binding {
            route: 0,
            segments: parse_template("/files/{path=**}").expect("valid"),
            body: BodyTarget::None,
        };
        let vars = tail.matches(&["files", "a", "b.txt"]).expect("match");
        assert_eq!(vars, [("path".into(), "a/b.txt".into())]);
        assert!(tail.matches(&["files"]).is_none());
        for bad in [
            "v1/x",
            "/v1/{a",
            "/v1/{a=**}/x",
            "/v1/{a=b/*}",
            "/v1//x",
            "/v1/{}",
        ] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }
}
