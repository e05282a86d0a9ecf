//! Streams of messages: what a streaming method receives and returns.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tonic::Status;

/// A server-streaming response: what a `#[msgpack_service]` method returns for a stream of `R`.
pub type ServerStream<R> = Pin<Box<dyn Stream<Item = Result<R, Status>> + Send + 'static>>;

/// An incoming stream of messages (the client stream on a server, the server stream on a
/// client).
///
/// Unlike `tonic::Streaming`, it ends after the first error: a frame that failed to decode
/// is reported once as `Err` and nothing after it is read, so a stream is never consumed past
/// a message it could not understand.
pub struct Streaming<T> {
    inner: Option<tonic::Streaming<T>>,
}

impl<T> Streaming<T> {
    /// Wraps a tonic stream.
    pub fn new(inner: tonic::Streaming<T>) -> Self {
        Streaming { inner: Some(inner) }
    }

    /// The next message: `Ok(Some(_))`, `Ok(None)` at the end, `Err` once on failure.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    /// The trailers the peer sent after the last message, once the stream has ended.
    pub async fn trailers(&mut self) -> Result<Option<tonic::metadata::MetadataMap>, Status> {
        match &mut self.inner {
            Some(inner) => inner.trailers().await,
            None => Ok(None),
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("ended", &self.inner.is_none())
            .finish()
    }
}

impl<T> Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let item = std::task::ready!(Pin::new(inner).poll_next(cx));
        if !matches!(item, Some(Ok(_))) {
            self.inner = None;
        }
        Poll::Ready(item)
    }
}
