//! Typed JSON ⇄ MessagePack transcoding: the seam REST/JSON support plugs into.
//!
//! The gateway never decodes gRPC messages; only REST requests go through a transcoder,
//! which `build.rs`-generated route stubs provide because they live in the crate that has
//! the message types.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Compact, Format, Named};

/// Why a message could not be transcoded. The message names the type and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TranscodeError(String);

impl TranscodeError {
    /// The public message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Converts one method's request JSON into MessagePack and its response MessagePack into JSON.
pub trait Transcode: Send + Sync + 'static {
    /// A JSON request body → one MessagePack request message.
    fn request_to_msgpack(&self, json: &[u8]) -> Result<Vec<u8>, TranscodeError>;
    /// One MessagePack response message → JSON.
    fn response_to_json(&self, msgpack: &[u8]) -> Result<Vec<u8>, TranscodeError>;
}

/// A shared, type-erased [`Transcode`] stored in a [`Route`](super::Route).
#[derive(Clone)]
pub struct Transcoder(Arc<dyn Transcode>);

impl fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transcoder")
    }
}

impl Transcoder {
    /// Wraps any [`Transcode`] implementation.
    pub fn new(transcode: impl Transcode) -> Self {
        Transcoder(Arc::new(transcode))
    }

    /// Transcodes through the serde types `Req` and `Resp`, compact layout (structs as arrays).
    pub fn typed<Req, Resp>() -> Self
    where
        Req: DeserializeOwned + Serialize + 'static,
        Resp: DeserializeOwned + Serialize + 'static,
    {
        Transcoder::new(Typed::<Compact, Req, Resp>(PhantomData))
    }

    /// Transcodes through the serde types `Req` and `Resp`, named layout (structs as maps).
    pub fn typed_named<Req, Resp>() -> Self
    where
        Req: DeserializeOwned + Serialize + 'static,
        Resp: DeserializeOwned + Serialize + 'static,
    {
        Transcoder::new(Typed::<Named, Req, Resp>(PhantomData))
    }

    /// A JSON request body → one MessagePack request message.
    pub fn request_to_msgpack(&self, json: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        self.0.request_to_msgpack(json)
    }

    /// One MessagePack response message → JSON.
    pub fn response_to_json(&self, msgpack: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        self.0.response_to_json(msgpack)
    }
}

/// A marker owning no data, so `Send + Sync` whatever the types.
type Marker<F, Req, Resp> = fn() -> (F, Req, Resp);

struct Typed<F, Req, Resp>(PhantomData<Marker<F, Req, Resp>>);

impl<F, Req, Resp> Transcode for Typed<F, Req, Resp>
where
    F: Format,
    Req: DeserializeOwned + Serialize + 'static,
    Resp: DeserializeOwned + Serialize + 'static,
{
    fn request_to_msgpack(&self, json: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let value: Req = serde_json::from_slice(json).map_err(|err| {
            TranscodeError(format!(
                "invalid JSON for {}: {err}",
                std::any::type_name::<Req>()
            ))
        })?;
        let mut out = Vec::new();
        F::encode(&mut out, &value).map_err(|err| {
            TranscodeError(format!(
                "cannot encode {} as MessagePack: {err}",
                std::any::type_name::<Req>()
            ))
        })?;
        Ok(out)
    }

    fn response_to_json(&self, msgpack: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let value: Resp = crate::codec::decode_frame(msgpack)
            .map_err(|status| TranscodeError(status.message().to_owned()))?;
        serde_json::to_vec(&value).map_err(|err| {
            TranscodeError(format!(
                "cannot encode {} as JSON: {err}",
                std::any::type_name::<Resp>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Hello {
        name: String,
        count: u32,
    }

    #[test]
    fn typed_round_trip() {
        let transcoder = Transcoder::typed::<Hello, Hello>();
        let bytes = transcoder
            .request_to_msgpack(br#"{"name":"ann","count":2}"#)
            .expect("encode");
        assert_eq!(bytes, crate::to_vec(&("ann", 2u32)).expect("encode tuple"));
        let json = transcoder.response_to_json(&bytes).expect("decode");
        assert_eq!(json, br#"{"name":"ann","count":2}"#);
        let err = transcoder
            .request_to_msgpack(br#"{"name":1}"#)
            .expect_err("bad json");
        assert!(err.message().contains("invalid JSON"), "{err}");
    }
}
