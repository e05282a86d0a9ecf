//! The protobuf bridge: stock gRPC clients (protobuf messages) call MessagePack services.
//!
//! A call on the bridge listener (`[protobuf_bridge] listen`), or an `application/grpc+proto`
//! call on the main port, is looked up in the descriptor set by its path. Its request
//! messages are transcoded protobuf → MessagePack one by one as they arrive, the call is
//! forwarded like any passthrough call (same gate, limits, upstream pool and metrics), and the
//! reply messages are transcoded MessagePack → protobuf one by one. Headers, trailers,
//! statuses and metadata pass untouched. Server reflection (`grpc.reflection.v1` and
//! `v1alpha`) answers from the same descriptors.

pub mod layout;

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use tonic::Status;
use tower::ServiceExt as _;

use super::GatewayState;
use super::body::{BoxError, GatewayBody};
use super::proxy::RequestBody;
use super::tls::ClientCert;
use super::wire::{ClientAddr, FrameError, FrameReader};
use tonic_msgpack_core::wire::FRAME_HEADER_LEN;

/// Paths of the reflection services.
const REFLECTION_V1: &str = "/grpc.reflection.v1.ServerReflection/";
const REFLECTION_V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/";

/// What a client hears when it sends something the bridge cannot transcode.
const COMPRESSED: &str =
    "the protobuf bridge transcodes uncompressed messages only; send them without grpc-encoding";

/// A descriptor set that cannot serve the bridge or reflection.
#[derive(Debug, thiserror::Error)]
#[error("descriptor set {source_name}: {message}")]
pub struct DescriptorError {
    /// The file or source of the set.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

type ReflectionService = tower::util::BoxCloneSyncService<
    Request<tonic::body::Body>,
    Response<tonic::body::Body>,
    Infallible,
>;

/// One method's messages.
#[derive(Debug)]
struct Method {
    input: MessageDescriptor,
    output: MessageDescriptor,
}

/// The descriptors of the bridge and reflection, shared by every connection.
pub(crate) struct Bridge {
    /// Every file of the descriptor sets.
    pub(crate) pool: DescriptorPool,
    methods: HashMap<String, Method>,
    /// v1 and v1alpha, when reflection is on.
    reflection: Option<(ReflectionService, ReflectionService)>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("methods", &self.methods.len())
            .field("reflection", &self.reflection.is_some())
            .finish()
    }
}

impl Bridge {
    /// The bridge over `sets` (encoded `FileDescriptorSet`s, by name for errors), with
    /// reflection when `reflection`.
    pub(crate) fn new(
        sets: &[(String, Vec<u8>)],
        reflection: bool,
    ) -> Result<Bridge, DescriptorError> {
        let mut pool = DescriptorPool::new();
        for (name, bytes) in sets {
            pool.decode_file_descriptor_set(bytes.as_slice())
                .map_err(|err| DescriptorError {
                    source_name: name.clone(),
                    message: err.to_string(),
                })?;
        }
        let mut methods = HashMap::new();
        for service in pool.services() {
            for method in service.methods() {
                methods.insert(
                    format!("/{}/{}", service.full_name(), method.name()),
                    Method {
                        input: method.input(),
                        output: method.output(),
                    },
                );
            }
        }
        let reflection = if reflection {
            let encoded = pool.encode_to_vec();
            let failed = |err: tonic_reflection::server::Error| DescriptorError {
                source_name: "(reflection)".into(),
                message: err.to_string(),
            };
            let v1 = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(&encoded)
                .build_v1()
                .map_err(failed)?;
            let v1alpha = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(&encoded)
                .build_v1alpha()
                .map_err(failed)?;
            Some((ReflectionService::new(v1), ReflectionService::new(v1alpha)))
        } else {
            None
        };
        Ok(Bridge {
            pool,
            methods,
            reflection,
        })
    }

    /// Whether `path` is a reflection call this bridge answers.
    pub(crate) fn reflects(&self, path: &str) -> bool {
        self.reflection.is_some()
            && (path.starts_with(REFLECTION_V1) || path.starts_with(REFLECTION_V1ALPHA))
    }
}

/// Whether a main-port request asks for the bridge (`application/grpc+proto`) or reflection.
pub(crate) fn wants<B>(state: &GatewayState, req: &Request<B>) -> bool {
    let Some(bridge) = &state.bridge else {
        return false;
    };
    bridge.reflects(req.uri().path())
        || req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc+proto"))
}

/// Answers one protobuf call (or reflection call) through the bridge.
pub(crate) async fn call(
    state: Arc<GatewayState>,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let Some(bridge) = state.bridge.as_ref() else {
        return Status::unimplemented("the protobuf bridge is not configured").into_http();
    };
    let path = req.uri().path().to_owned();
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let grpc = content_type.as_ref().is_some_and(|value| {
        let value = value.as_bytes();
        value == b"application/grpc" || value.starts_with(b"application/grpc+proto")
    });
    if !grpc {
        let mut response = Status::unimplemented(
            "the protobuf bridge answers gRPC with protobuf messages (application/grpc+proto) only",
        )
        .into_http::<GatewayBody>();
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    if bridge.reflects(&path) {
        return reflect(&state, bridge, req).await;
    }
    let Some(method) = bridge.methods.get(&path) else {
        return Status::unimplemented(format!(
            "no descriptor for {path}: the protobuf bridge transcodes the methods of its descriptor sets only"
        ))
        .into_http();
    };
    let max = state
        .target(&path)
        .and_then(|target| target.upstream)
        .and_then(|index| state.upstreams.get(index))
        .map_or(4 * 1024 * 1024, |upstream| upstream.max_message_size);
    let fault: Arc<OnceLock<Status>> = Arc::default();
    let (mut parts, body) = req.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    // The upstream must answer uncompressed: the bridge decodes every reply.
    parts
        .headers
        .remove(HeaderName::from_static("grpc-accept-encoding"));
    let body = Transcoded {
        inner: Inner::Request(body),
        reader: FrameReader::default(),
        message: method.input.clone(),
        direction: Direction::ToMsgpack,
        fault: fault.clone(),
        max,
        done: false,
    };
    let req = Request::from_parts(parts, RequestBody::Boxed(tonic::body::Body::new(body)));
    let response = super::proxy::forward(state.clone(), req).await;
    if let Some(status) = fault.get() {
        return status.clone().into_http();
    }
    let (mut parts, body) = response.into_parts();
    if let Some(content_type) = content_type {
        parts.headers.insert(header::CONTENT_TYPE, content_type);
    }
    if parts.headers.contains_key("grpc-status") {
        // Trailers-only (an error before any message): nothing to transcode, and the body
        // must stay empty so the answer remains one HEADERS frame.
        return Response::from_parts(parts, body);
    }
    let body = Transcoded {
        inner: Inner::Response(body),
        reader: FrameReader::default(),
        message: method.output.clone(),
        direction: Direction::ToProtobuf,
        fault,
        max,
        done: false,
    };
    Response::from_parts(parts, GatewayBody::Http(axum::body::Body::new(body)))
}

/// Serves a reflection call in-process, after the same gate as any call.
async fn reflect(
    state: &GatewayState,
    bridge: &Bridge,
    mut req: Request<Incoming>,
) -> Response<GatewayBody> {
    let client = req.extensions().get::<ClientAddr>().copied();
    let certificate = req.extensions().get::<ClientCert>().cloned();
    let path = req.uri().path().to_owned();
    if let Err(refused) = state.gate.check(
        &path,
        req.headers_mut(),
        client.map(|ClientAddr(addr)| addr.ip()),
        certificate
            .as_ref()
            .map(|ClientCert(subject)| subject.as_str()),
    ) {
        return refused.status().into_http();
    }
    let Some((v1, v1alpha)) = &bridge.reflection else {
        return Status::unimplemented("server reflection is off").into_http();
    };
    let service = if path.starts_with(REFLECTION_V1) {
        v1.clone()
    } else {
        v1alpha.clone()
    };
    match service.oneshot(req.map(tonic::body::Body::new)).await {
        Ok(response) => response.map(|body| GatewayBody::Http(axum::body::Body::new(body))),
        Err(never) => match never {},
    }
}

enum Direction {
    ToMsgpack,
    ToProtobuf,
}

// One of the two per call, never moved after it is built: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Request(Incoming),
    Response(GatewayBody),
}

/// A body whose gRPC messages are transcoded one by one as they pass; trailers pass as they
/// are, unless the client's side failed (its status then ends the call).
struct Transcoded {
    inner: Inner,
    reader: FrameReader,
    message: MessageDescriptor,
    direction: Direction,
    fault: Arc<OnceLock<Status>>,
    max: usize,
    done: bool,
}

impl Transcoded {
    /// Every complete message buffered so far, transcoded and framed.
    fn drain(&mut self) -> Result<Bytes, Status> {
        let mut out = BytesMut::new();
        loop {
            let message = match self.reader.next(self.max) {
                Ok(Some(message)) => message,
                Ok(None) => return Ok(out.freeze()),
                Err(FrameError::Compressed) => return Err(Status::unimplemented(COMPRESSED)),
                Err(err @ FrameError::TooLarge { .. }) => {
                    return Err(Status::resource_exhausted(err.to_string()));
                }
            };
            let start = out.len();
            out.put_bytes(0, FRAME_HEADER_LEN);
            let mut payload = Vec::with_capacity(message.len() + 16);
            let result = match self.direction {
                Direction::ToMsgpack => {
                    layout::protobuf_to_msgpack(&self.message, &message, &mut payload)
                }
                Direction::ToProtobuf => {
                    layout::msgpack_to_protobuf(&self.message, &message, &mut payload)
                }
            };
            if let Err(err) = result {
                return Err(match self.direction {
                    Direction::ToMsgpack => Status::invalid_argument(err.to_string()),
                    Direction::ToProtobuf => {
                        tracing::warn!(
                            "protobuf bridge: a reply does not fit its descriptor: {err}"
                        );
                        Status::internal(format!(
                            "the service's reply does not fit {}",
                            self.message.full_name()
                        ))
                    }
                });
            }
            let len = u32::try_from(payload.len())
                .map_err(|_| Status::resource_exhausted("transcoded message too large"))?;
            out[start + 1..start + FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&payload);
        }
    }

    fn trailers(status: &Status) -> HeaderMap {
        let mut trailers = HeaderMap::new();
        let _ = status.add_header(&mut trailers);
        trailers
    }

    /// Ends the body because of `status`: the request side fails (the proxy resets the
    /// upstream call and the bridge answers `status`); the response side ends with it.
    fn fail(&mut self, status: Status) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        match self.direction {
            Direction::ToMsgpack => {
                let _ = self.fault.set(status.clone());
                Poll::Ready(Some(Err(Box::new(status))))
            }
            Direction::ToProtobuf => {
                self.inner = Inner::Response(GatewayBody::Empty);
                Poll::Ready(Some(Ok(Frame::trailers(Self::trailers(&status)))))
            }
        }
    }
}

impl HttpBody for Transcoded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match &mut this.inner {
                Inner::Request(body) => {
                    ready!(Pin::new(body).poll_frame(cx)).map(|r| r.map_err(BoxError::from))
                }
                Inner::Response(body) => ready!(Pin::new(body).poll_frame(cx)),
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.reader.buf.extend_from_slice(&data);
                        match this.drain() {
                            Ok(out) if out.is_empty() => continue,
                            Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                            Err(status) => return this.fail(status),
                        }
                    }
                    Err(frame) => {
                        if let (Direction::ToProtobuf, Some(status)) =
                            (&this.direction, this.fault.get())
                        {
                            let status = status.clone();
                            return this.fail(status);
                        }
                        if !this.reader.buf.is_empty() {
                            return this.fail(Status::internal("a message broke off"));
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                },
                Some(Err(err)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(err)));
                }
                None => {
                    if let (Direction::ToProtobuf, Some(status)) =
                        (&this.direction, this.fault.get())
                    {
                        let status = status.clone();
                        return this.fail(status);
                    }
                    if !this.reader.buf.is_empty() {
                        let status = match this.direction {
                            Direction::ToMsgpack => {
                                Status::invalid_argument("the request ended inside a message")
                            }
                            Direction::ToProtobuf => Status::internal("a reply broke off"),
                        };
                        return this.fail(status);
                    }
                    this.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || (self.reader.buf.is_empty()
                && match &self.inner {
                    Inner::Request(body) => body.is_end_stream(),
                    Inner::Response(body) => body.is_end_stream(),
                })
    }

    fn size_hint(&self) -> SizeHint {
        // Transcoding changes every message's size.
        SizeHint::default()
    }
}
