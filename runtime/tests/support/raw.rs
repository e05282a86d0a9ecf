//! A raw HTTP/2 gRPC client: sends frames exactly as given, to test what servers do with bad input.

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One HTTP/2 connection to a gRPC server.
pub struct RawClient {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

/// What came back from one call.
#[derive(Debug)]
pub struct RawResponse {
    /// `grpc-status` from the trailers (or the headers of a trailers-only response).
    pub grpc_status: Option<i32>,
    /// `grpc-message`, percent-decoded.
    pub grpc_message: String,
    /// The payloads of the response frames.
    pub messages: Vec<Bytes>,
}

/// A gRPC frame: uncompressed flag, big-endian length, payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

impl RawClient {
    /// Opens an h2c connection to `addr` (`http://host:port`).
    pub async fn connect(addr: &str) -> RawClient {
        let authority = addr.trim_start_matches("http://").to_owned();
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        RawClient { sender, authority }
    }

    /// Sends `body` (already framed) to `path` and reads the whole response.
    pub async fn call(
        &mut self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> RawResponse {
        let mut request = http::Request::post(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.sender.send_request(request),
        )
        .await
        .expect("response within 10 s")
        .expect("response");
        let (parts, body) = response.into_parts();
        let collected = tokio::time::timeout(std::time::Duration::from_secs(10), body.collect())
            .await
            .expect("body within 10 s")
            .expect("body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let mut data = collected.to_bytes();
        let status_source = if trailers.contains_key("grpc-status") {
            &trailers
        } else {
            &parts.headers
        };
        let grpc_status = status_source
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let grpc_message = status_source
            .get("grpc-message")
            .and_then(|value| value.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default();
        let mut messages = Vec::new();
        while data.remaining() >= 5 {
            let _compressed = data.get_u8();
            let len = data.get_u32() as usize;
            messages.push(data.split_to(len.min(data.len())));
        }
        RawResponse {
            grpc_status,
            grpc_message,
            messages,
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(value) = escaped {
            out.push(value);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
