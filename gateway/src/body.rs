//! The response body type of the gateway: a proxied gRPC response, an HTTP router response, or
//! nothing (trailers-only gRPC responses).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::proxy::ProxyBody;

/// Errors a response body can end with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the gateway answers with.
// The proxy variant is the hot path: boxing it would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
#[derive(Default)]
pub(crate) enum GatewayBody {
    /// An upstream's gRPC response.
    Proxy(ProxyBody),
    /// A response of the HTTP router (admin, REST).
    Http(axum::body::Body),
    /// No body.
    #[default]
    Empty,
}

impl HttpBody for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            GatewayBody::Proxy(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            GatewayBody::Http(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            GatewayBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Proxy(body) => body.is_end_stream(),
            GatewayBody::Http(body) => body.is_end_stream(),
            GatewayBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Proxy(body) => body.size_hint(),
            GatewayBody::Http(body) => body.size_hint(),
            GatewayBody::Empty => SizeHint::with_exact(0),
        }
    }
}
