//! HTTP bindings of methods (`google.api.http`, `#[rpc(http = "GET /v1/x/{a}")]`) and their
//! path templates.

use std::fmt;

/// The REST binding of a method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpBinding {
    /// Upper-case HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// Path template, e.g. `/v1/sum/{a}/{b}`.
    pub path: String,
    /// Which request field the body maps to: `Some("*")` for the whole message, `None` for none.
    pub body: Option<String>,
}

impl HttpBinding {
    /// A binding of `method` at `path` with the body mapped to `body`.
    pub fn new(method: &str, path: &str, body: Option<&str>) -> Self {
        HttpBinding {
            method: method.to_owned(),
            path: path.to_owned(),
            body: body.map(str::to_owned),
        }
    }

    /// Parses the trait attribute form `"GET /v1/sum/{a}/{b}"`. Methods that carry a body
    /// (POST, PUT, PATCH) take the whole request (`*`); GET and DELETE take none. The path must
    /// be a valid [`PathTemplate`].
    pub fn parse(spec: &str) -> Result<HttpBinding, String> {
        let mut parts = spec.split_whitespace();
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "invalid HTTP binding `{spec}`: expected `METHOD /path`, e.g. `GET /v1/sum/{{a}}/{{b}}`"
            ));
        };
        let method = method.to_ascii_uppercase();
        let body = match method.as_str() {
            "GET" | "DELETE" => None,
            "POST" | "PUT" | "PATCH" => Some("*".to_owned()),
            _ => {
                return Err(format!(
                    "invalid HTTP binding `{spec}`: unsupported method `{method}` (use GET, POST, PUT, PATCH or DELETE)"
                ));
            }
        };
        if !path.starts_with('/') {
            return Err(format!(
                "invalid HTTP binding `{spec}`: the path must start with `/`"
            ));
        }
        PathTemplate::parse(path).map_err(|err| format!("invalid HTTP binding `{spec}`: {err}"))?;
        Ok(HttpBinding {
            method,
            path: path.to_owned(),
            body,
        })
    }
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Must equal this text.
    Literal(String),
    /// `*`: any one segment, not captured.
    Any,
    /// `{field}` or `{field=*}`: one segment into `field` (a dotted path for nested fields).
    Field(String),
    /// `{field=**}`: the rest of the path (at least one segment) into `field`.
    Tail(String),
}

/// A parsed path template: `/v1/sum/{a}/{b}`, `/v1/{name=**}`, `/v1/*/x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

/// Why a path template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl PathTemplate {
    /// Parses a template.
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let fail = |message: String| Err(TemplateError(message));
        let Some(rest) = template.strip_prefix('/') else {
            return fail("a path template starts with `/`".into());
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let last = index + 1 == parts.len();
            if let Some(inner) = part.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return fail(format!("segment `{part}` opens `{{` without closing it"));
                };
                let (field, pattern) = match inner.split_once('=') {
                    Some((field, pattern)) => (field, Some(pattern)),
                    None => (inner, None),
                };
                if !is_field_path(field) {
                    return fail(format!(
                        "`{field}` is not a field name (letters, digits, `_`, `.`)"
                    ));
                }
                match pattern {
                    None | Some("*") => segments.push(Segment::Field(field.to_owned())),
                    Some("**") if last => segments.push(Segment::Tail(field.to_owned())),
                    Some("**") => {
                        return fail(format!("`{{{field}=**}}` must be the last segment"));
                    }
                    Some(other) => {
                        return fail(format!(
                            "unsupported pattern `{other}` in `{{{field}={other}}}`; use `{{{field}}}`, `{{{field}=*}}` or `{{{field}=**}}`"
                        ));
                    }
                }
            } else if *part == "*" {
                segments.push(Segment::Any);
            } else if part.is_empty() || part.contains(['{', '}']) {
                return fail(format!(
                    "segment {} (`{part}`) is not a literal or a `{{field}}`",
                    index + 1
                ));
            } else {
                segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(PathTemplate { segments })
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The field paths the template captures, in order (`["a", "b"]` for `/v1/{a}/x/{b=**}`).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Field(field) | Segment::Tail(field) => Some(field.as_str()),
            Segment::Literal(_) | Segment::Any => None,
        })
    }

    /// Whether the last segment is `{field=**}` (matches any number of trailing segments).
    pub fn has_tail(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Tail(_)))
    }
}

/// Whether `name` is a field path: dot-separated names of ASCII letters, digits and `_`
/// (`a`, `inner.value`), as in path templates and REST query keys.
pub fn is_field_path(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let template = PathTemplate::parse("/v1/{a}/x/{b.c=**}").unwrap();
        assert_eq!(template.variables().collect::<Vec<_>>(), ["a", "b.c"]);
        assert!(template.has_tail());
        assert_eq!(
            PathTemplate::parse("/v1/*/x").unwrap().segments(),
            [
                Segment::Literal("v1".into()),
                Segment::Any,
                Segment::Literal("x".into())
            ]
        );
        for bad in [
            "v1",
            "/v1//x",
            "/v1/{a",
            "/v1/{a=**}/x",
            "/v1/{a=x*}",
            "/v1/{a-b}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bindings_parse() {
        let binding = HttpBinding::parse("get /v1/sum/{a}/{b}").unwrap();
        assert_eq!(binding, HttpBinding::new("GET", "/v1/sum/{a}/{b}", None));
        assert_eq!(
            HttpBinding::parse("post /v1/x").unwrap().body.as_deref(),
            Some("*")
        );
        assert!(HttpBinding::parse("GET v1").is_err());
        assert!(HttpBinding::parse("FETCH /v1").is_err());
        assert!(HttpBinding::parse("GET /v1/{a").is_err());
    }
}
