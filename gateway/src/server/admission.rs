//! Whether a request may go on: its kind (by exact content type), its header size, and what a
//! client gets when it may not, in its own protocol.

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use tonic::Status;
use tonic_msgpack_core::wire::{is_grpc_content_type, is_grpc_web_content_type};

use super::super::body::GatewayBody;
use super::super::wire::{GRPC_MESSAGE, GRPC_STATUS};

/// How a request is served, by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// gRPC: passthrough.
    Grpc,
    /// gRPC-Web: translated, then passthrough.
    GrpcWeb,
    /// Anything else: REST bindings, then the HTTP router.
    Http,
}

impl Kind {
    pub(super) fn of<B>(req: &Request<B>) -> Kind {
        let Some(content_type) = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
        else {
            return Kind::Http;
        };
        if is_grpc_content_type(content_type) {
            Kind::Grpc
        } else if is_grpc_web_content_type(content_type) {
            Kind::GrpcWeb
        } else {
            Kind::Http
        }
    }
}

/// Why a request is answered without being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its header list is over `max_header_list_bytes`.
    HeadersTooLarge {
        /// The limit.
        max: usize,
    },
    /// `max_in_flight` calls are in flight.
    Overloaded,
    /// Its connection is closing (the client cancelled too many calls).
    Closing,
}

/// Per header field in HTTP/2's count of a header list (RFC 9113 §6.5.2).
const FIELD_OVERHEAD: usize = 32;

/// The size of a request's header list as HTTP/2 counts it: names, values and 32 bytes per
/// field. With `pseudo`, also the request line (`:method`, `:scheme`, `:authority`, `:path`),
/// which gRPC and gRPC-Web calls carry upstream as they are; a REST request's path and query
/// become the message instead, and REST limits them itself.
pub(super) fn header_list_size<B>(req: &Request<B>, pseudo: bool) -> usize {
    let fields = header_fields_size(req.headers());
    if !pseudo {
        return fields;
    }
    let uri = req.uri();
    let line = req.method().as_str().len()
        + uri.scheme_str().map_or(4, str::len)
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(1, |path| path.as_str().len());
    fields + line + 4 * FIELD_OVERHEAD
}

fn header_fields_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD)
        .sum()
}

impl Refusal {
    /// The gRPC status a gRPC or gRPC-Web client sees.
    fn status(self) -> Status {
        match self {
            Refusal::HeadersTooLarge { max } => Status::resource_exhausted(format!(
                "request headers larger than the gateway's limit of {max} bytes"
            )),
            Refusal::Overloaded => {
                Status::resource_exhausted("the gateway is at its limit of calls in flight")
            }
            Refusal::Closing => Status::unavailable("the connection is closing; reconnect"),
        }
    }

    /// A gRPC trailers-only answer.
    pub(super) fn grpc(self) -> Response<GatewayBody> {
        self.status().into_http()
    }

    /// A gRPC-Web trailers-only answer: the status in the headers, content type as asked.
    pub(super) fn grpc_web<B>(self, req: &Request<B>) -> Response<GatewayBody> {
        let status = self.status();
        let mut response = Response::new(GatewayBody::Empty);
        let headers = response.headers_mut();
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/grpc-web"));
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(GRPC_STATUS, HeaderValue::from(status.code() as i32));
        // Our messages are plain ASCII.
        if let Ok(message) = HeaderValue::from_str(status.message()) {
            headers.insert(GRPC_MESSAGE, message);
        }
        response
    }

    /// An HTTP answer (REST and the HTTP router): 431, 429 with `retry-after`, or 503, with a
    /// JSON error body like REST's (`{"code": <gRPC code>, "message": "..."}`).
    pub(super) fn http(self) -> Response<GatewayBody> {
        let status = self.status();
        let http_status = match self {
            Refusal::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Refusal::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Closing => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = serde_json::json!({
            "code": status.code() as i32,
            "message": status.message(),
        });
        let mut response =
            Response::new(GatewayBody::Http(axum::body::Body::from(body.to_string())));
        *response.status_mut() = http_status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // (A closing connection says so itself: hyper adds `connection: close` on HTTP/1.1.)
        if self == Refusal::Overloaded {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// The answer for a request of `kind`.
    pub(super) fn answer<B>(self, kind: Kind, req: &Request<B>) -> Response<GatewayBody> {
        match kind {
            Kind::Grpc => self.grpc(),
            Kind::GrpcWeb => self.grpc_web(req),
            Kind::Http => self.http(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn request(content_type: &str) -> Request<()> {
        Request::builder()
            .uri("http://gw.test/a.B/C")
            .header(header::CONTENT_TYPE, content_type)
            .body(())
            .expect("request")
    }

    #[test]
    fn kinds_follow_exact_content_types() {
        assert_eq!(Kind::of(&request("application/grpc")), Kind::Grpc);
        assert_eq!(Kind::of(&request("application/grpc+msgpack")), Kind::Grpc);
        assert_eq!(Kind::of(&request("application/grpcX")), Kind::Http);
        assert_eq!(Kind::of(&request("application/grpc-web")), Kind::GrpcWeb);
        assert_eq!(
            Kind::of(&request("application/grpc-web-text+proto")),
            Kind::GrpcWeb
        );
        assert_eq!(Kind::of(&request("application/grpc-webby")), Kind::Http);
        assert_eq!(Kind::of(&request("application/json")), Kind::Http);
    }

    #[test]
    fn header_lists_count_as_http2_does() {
        let req = Request::builder()
            .uri("http://gw.test/a.B/C")
            .header("x-a", "12345")
            .body(())
            .expect("request");
        assert_eq!(header_list_size(&req, false), 3 + 5 + 32);
        // + "GET" "http" "gw.test" "/a.B/C" and four fields' overhead
        assert_eq!(header_list_size(&req, true), 40 + 3 + 4 + 7 + 6 + 128);
    }

    #[test]
    fn refusals_speak_each_protocol() {
        let overloaded = Refusal::Overloaded;
        let grpc = overloaded.grpc();
        assert_eq!(grpc.headers()[GRPC_STATUS], "8");
        let web = overloaded.grpc_web(&request("application/grpc-web-text"));
        assert_eq!(web.headers()[GRPC_STATUS], "8");
        assert_eq!(
            web.headers()[header::CONTENT_TYPE],
            "application/grpc-web-text"
        );
        let http = overloaded.http();
        assert_eq!(http.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http.headers()[header::RETRY_AFTER], "1");
        let large = Refusal::HeadersTooLarge { max: 10 }.http();
        assert_eq!(large.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
}
