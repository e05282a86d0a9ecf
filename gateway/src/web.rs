//! gRPC-Web (tonic-web) in front of the passthrough, and CORS (tower-http) for browsers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tonic::Status;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::GatewayState;
use super::body::{BoxError, GatewayBody};
use super::config::{ConfigError, CorsConfig};
use super::proxy::{RequestBody, forward};
use super::wire::FrameScanner;

/// Request headers a gRPC-Web or REST client sends besides CORS-safelisted ones.
const ALLOWED_HEADERS: [&str; 5] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
];

/// Response headers a browser may read: the gRPC status.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The content types tonic-web translates (exactly these; it passes anything else through).
const GRPC_WEB_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];

/// Whether a request asks for gRPC-Web (`application/grpc-web…`); [`call`] answers the content
/// types it cannot translate.
pub(crate) fn is_grpc_web<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(tonic_msgpack_core::wire::is_grpc_web_content_type)
}

/// Translates a gRPC-Web call to gRPC, forwards it and translates the answer back.
///
/// The client's body is checked on its way through (see [`ClientFrames`]): bad base64 or
/// malformed framing answers `INVALID_ARGUMENT`, a client whose body broke off `CANCELLED`,
/// never the `UNAVAILABLE` of the upstream stream the gateway had to reset.
pub(crate) async fn call(
    state: Arc<GatewayState>,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let supported = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| GRPC_WEB_TYPES.contains(&value));
    if !supported {
        let mut response = Status::invalid_argument(format!(
            "unsupported gRPC-Web content type; use one of {}",
            GRPC_WEB_TYPES.join(", ")
        ))
        .into_http::<GatewayBody>();
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let faults = Arc::new(Faults::default());
    let req = req.map(|body| ClientBody {
        inner: body,
        faults: faults.clone(),
    });
    let inner = tower::service_fn(move |req: Request<tonic::body::Body>| {
        let state = state.clone();
        let faults = faults.clone();
        async move {
            let mut req = req.map(|body| {
                RequestBody::Boxed(tonic::body::Body::new(ClientFrames::new(
                    body,
                    faults.clone(),
                )))
            });
            req.extensions_mut()
                .insert(crate::access_log::Protocol::GrpcWeb);
            let response = forward(state, req).await;
            Ok::<_, Infallible>(faults.answer(response))
        }
    });
    match tonic_web::GrpcWebLayer::new()
        .layer(inner)
        .oneshot(req)
        .await
    {
        Ok(response) => response.map(|body| GatewayBody::Http(axum::body::Body::new(body))),
        Err(never) => match never {},
    }
}

/// What went wrong with one client's request body, if anything.
#[derive(Debug, Default)]
struct Faults {
    /// The client's connection failed while sending the body.
    transport: AtomicBool,
    /// The body is not valid gRPC-Web: the status the call ends with.
    client: OnceLock<Status>,
}

impl Faults {
    /// The status the call ends with because of the client, if any.
    fn status(&self) -> Option<Status> {
        if let Some(status) = self.client.get() {
            return Some(status.clone());
        }
        self.transport
            .load(Relaxed)
            .then(|| Status::cancelled("the client's request body broke off"))
    }

    /// The upstream's answer, or the client's fault when there is one: now, or in the
    /// trailers when the answer started before the fault.
    fn answer(self: Arc<Self>, response: Response<GatewayBody>) -> Response<FaultAware> {
        match self.status() {
            Some(status) => status.into_http::<GatewayBody>().map(|inner| FaultAware {
                inner,
                faults: self,
            }),
            None => response.map(|inner| FaultAware {
                inner,
                faults: self,
            }),
        }
    }
}

/// The raw client body, noting transport failures (as opposed to bad content).
struct ClientBody {
    inner: Incoming,
    faults: Arc<Faults>,
}

impl HttpBody for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.faults.transport.store(true, Relaxed);
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

/// The request body as tonic-web decoded it, checked before it goes upstream: a decoding
/// error (bad base64), a frame whose flags are neither 0 nor 1 (uncompressed, compressed) or a
/// body that ends inside a frame is the client's fault, recorded in [`Faults`]; the body then
/// fails, so the upstream stream is reset rather than given a truncated call.
struct ClientFrames {
    inner: tonic::body::Body,
    scanner: FrameScanner,
    faults: Arc<Faults>,
    /// Ended, or failed.
    done: bool,
}

impl ClientFrames {
    fn new(inner: tonic::body::Body, faults: Arc<Faults>) -> Self {
        ClientFrames {
            inner,
            scanner: FrameScanner::default(),
            faults,
            done: false,
        }
    }

    fn fail(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.done = true;
        let status = if self.faults.transport.load(Relaxed) {
            Status::cancelled("the client's request body broke off")
        } else {
            let status = Status::invalid_argument(format!("malformed gRPC-Web request: {message}"));
            let _ = self.faults.client.set(status.clone());
            status
        };
        Poll::Ready(Some(Err(status)))
    }
}

impl HttpBody for ClientFrames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let mut bad_flags = 0;
                    let checked = this.scanner.scan_headers(data, |flags, _| {
                        bad_flags = flags;
                        flags <= 1
                    });
                    if checked.is_err() {
                        return this.fail(format!(
                            "a message frame has flags {bad_flags:#04x} (0 or 1 expected)"
                        ));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(status)) => {
                let message = status.message().to_owned();
                this.fail(message)
            }
            None if !this.scanner.at_boundary() => {
                this.fail("the body ends inside a message frame".into())
            }
            None => {
                this.done = true;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not the inner body's word: tonic-web's `-text` decoding says it has ended while
        // undecoded bytes (an error still to report) remain.
        self.done
    }
}

/// The answer to a gRPC-Web call, whose trailers say the client's fault when the body turned
/// out bad after the upstream had started answering.
struct FaultAware {
    inner: GatewayBody,
    faults: Arc<Faults>,
}

impl HttpBody for FaultAware {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match frame {
            Some(Ok(frame)) if frame.is_trailers() => match this.faults.status() {
                Some(status) => {
                    let mut trailers = HeaderMap::new();
                    // Our own statuses always encode.
                    let _ = status.add_header(&mut trailers);
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                None => Poll::Ready(Some(Ok(frame))),
            },
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The CORS layer of a [`CorsConfig`]; the config is checked first (a builder-made config
/// skips the TOML checks).
pub(crate) fn cors_layer(config: &CorsConfig) -> Result<CorsLayer, ConfigError> {
    config
        .check()
        .map_err(|(key, message)| ConfigError::Invalid {
            path: None,
            key,
            message,
        })?;
    let origin = if config.allowed_origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    let names = |defaults: &[&str], extra: &[String]| -> Vec<HeaderName> {
        defaults
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect()
    };
    Ok(CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(names(&ALLOWED_HEADERS, &config.allowed_headers))
        .expose_headers(names(&EXPOSED_HEADERS, &config.exposed_headers))
        .max_age(config.max_age)
        .allow_credentials(config.allow_credentials))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use http_body_util::{BodyExt, StreamBody};
    use proptest::prelude::*;

    use super::*;

    /// Runs a body, cut into `chunks`, through tonic-web and [`ClientFrames`] as `call` does:
    /// the bytes that would go upstream, and the client's fault.
    fn decode(content_type: &str, chunks: Vec<Vec<u8>>) -> (Vec<u8>, Option<Status>) {
        let faults = Arc::new(Faults::default());
        let upstream = Arc::new(Mutex::new(Vec::new()));
        let (seen, sent) = (faults.clone(), upstream.clone());
        let inner = tower::service_fn(move |req: Request<tonic::body::Body>| {
            let (faults, sent) = (seen.clone(), sent.clone());
            async move {
                let mut body = ClientFrames::new(req.into_body(), faults);
                while let Some(Ok(frame)) = body.frame().await {
                    if let (Ok(data), Ok(mut sent)) = (frame.into_data(), sent.lock()) {
                        sent.extend_from_slice(&data);
                    }
                }
                Ok::<_, Infallible>(Response::new(GatewayBody::Empty))
            }
        });
        let body = StreamBody::new(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|chunk| Ok::<_, Infallible>(Frame::data(Bytes::from(chunk)))),
        ));
        let req = Request::builder()
            .method(Method::POST)
            .uri("/a.B/C")
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .expect("request");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(tonic_web::GrpcWebLayer::new().layer(inner).oneshot(req))
            .unwrap_or_else(|never| match never {});
        let sent = upstream.lock().map(|sent| sent.clone()).unwrap_or_default();
        (sent, faults.status())
    }

    /// The frames in `data`, when it is whole frames with flags 0 or 1.
    fn whole_frames(mut data: &[u8]) -> Option<usize> {
        let mut count = 0;
        while !data.is_empty() {
            let header = data.get(..5)?;
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if header[0] > 1 || data.len() < 5 + len {
                return None;
            }
            data = &data[5 + len..];
            count += 1;
        }
        Some(count)
    }

    fn frames() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4).prop_map(
            |messages| {
                let mut out = Vec::new();
                for message in messages {
                    out.push(0);
                    out.extend((message.len() as u32).to_be_bytes());
                    out.extend(message);
                }
                out
            },
        )
    }

    fn cut(data: Vec<u8>, cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
        let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(data.len() + 1)).collect();
        at.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for end in at.into_iter().chain([data.len()]) {
            out.push(data[start..end].to_vec());
            start = end;
        }
        out
    }

    #[test]
    fn client_faults_are_recorded() {
        let good = vec![0, 0, 0, 0, 2, 7, 7];
        let text = BASE64.encode(&good).into_bytes();
        for (content_type, body) in [
            ("application/grpc-web", good.clone()),
            ("application/grpc-web-text", text.clone()),
        ] {
            let (upstream, fault) = decode(content_type, vec![body]);
            assert_eq!((upstream, fault.is_none()), (good.clone(), true));
        }
        for (content_type, body) in [
            ("application/grpc-web-text", b"!!!!".to_vec()),
            ("application/grpc-web-text", [text, b"A".to_vec()].concat()),
            ("application/grpc-web", good[..6].to_vec()),
            ("application/grpc-web", vec![0x80, 0, 0, 0, 0]),
        ] {
            let (_, fault) = decode(content_type, vec![body.clone()]);
            let fault = fault.expect("a fault");
            assert_eq!(fault.code(), tonic::Code::InvalidArgument, "{body:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever the client sends, in whatever pieces: no panic, never more bytes upstream
        /// than the client sent, and either whole frames with valid flags or a client fault.
        #[test]
        fn decoding_never_panics_and_stays_bounded(
            content_type in prop::sample::select(&GRPC_WEB_TYPES[..]),
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                frames(),
                "[A-Za-z0-9+/=!]{0,64}".prop_map(String::into_bytes),
            ],
            encode in any::<bool>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let text = content_type.contains("text");
            let sent_body = if text && encode { BASE64.encode(&body).into_bytes() } else { body.clone() };
            let (upstream, fault) = decode(content_type, cut(sent_body.clone(), &cuts));
            prop_assert!(upstream.len() <= sent_body.len());
            match fault {
                None => prop_assert!(whole_frames(&upstream).is_some(), "{upstream:?}"),
                Some(status) => prop_assert_eq!(status.code(), tonic::Code::InvalidArgument),
            }
            // Valid frames, encoded as the content type says, pass unchanged.
            if whole_frames(&body).is_some() && (encode || !text) {
                prop_assert_eq!(upstream, body);
            }
        }
    }
}
