//! Typed JSON ⇄ MessagePack transcoding: the seam REST/JSON support plugs into.
//!
//! The gateway never decodes gRPC messages; only REST requests go through a transcoder,
//! which `build.rs`-generated route stubs provide because they live in the crate that has
//! the message types; the stand-alone gateway uses [`dynamic`](crate::dynamic)'s transcoder
//! by descriptor instead. Both follow proto JSON for 64-bit integers: strings out, strings or
//! numbers in.

mod proto_json;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use tonic_msgpack::{Compact, Layout, Named};

/// Why a message could not be transcoded. The message names the type, the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TranscodeError {
    message: String,
    field: Option<String>,
}

impl TranscodeError {
    /// An error with a public `message`.
    pub fn new(message: impl Into<String>) -> Self {
        TranscodeError {
            message: message.into(),
            field: None,
        }
    }

    /// Names the field (a dotted path, `inner.name`, `items[2]`) the error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

/// What a REST request may do with JSON fields its message type does not have
/// (`rest.unknown_fields` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// Skip them, as proto JSON parsers do by default. The default.
    #[default]
    Ignore,
    /// Answer 400 naming the first unknown field.
    Reject,
}

/// Converts one method's request JSON into MessagePack and its response MessagePack into JSON.
pub trait Transcode: Send + Sync + 'static {
    /// A JSON request body → one MessagePack request message.
    fn request_to_msgpack(&self, json: &[u8]) -> Result<Vec<u8>, TranscodeError>;
    /// One MessagePack response message → JSON.
    fn response_to_json(&self, msgpack: &[u8]) -> Result<Vec<u8>, TranscodeError>;

    /// A JSON value (the REST body merged with path and query variables) → one MessagePack
    /// request message. Errors about one field should name it ([`TranscodeError::with_field`]).
    ///
    /// The default serializes `json` and calls [`request_to_msgpack`](Self::request_to_msgpack),
    /// so it neither names fields nor rejects unknown ones.
    fn request_value_to_msgpack(
        &self,
        json: &serde_json::Value,
        unknown: UnknownFields,
    ) -> Result<Vec<u8>, TranscodeError> {
        let _ = unknown;
        let bytes = serde_json::to_vec(json)
            .map_err(|err| TranscodeError::new(format!("cannot write JSON: {err}")))?;
        self.request_to_msgpack(&bytes)
    }
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

    /// A JSON value → one MessagePack request message; see
    /// [`Transcode::request_value_to_msgpack`].
    pub fn request_value_to_msgpack(
        &self,
        json: &serde_json::Value,
        unknown: UnknownFields,
    ) -> Result<Vec<u8>, TranscodeError> {
        self.0.request_value_to_msgpack(json, unknown)
    }
}

/// A marker owning no data, so `Send + Sync` whatever the types.
type Marker<F, Req, Resp> = fn() -> (F, Req, Resp);

struct Typed<F, Req, Resp>(PhantomData<Marker<F, Req, Resp>>);

impl<F, Req, Resp> Transcode for Typed<F, Req, Resp>
where
    F: Layout,
    Req: DeserializeOwned + Serialize + 'static,
    Resp: DeserializeOwned + Serialize + 'static,
{
    fn request_to_msgpack(&self, json: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|err| {
            TranscodeError::new(format!(
                "invalid JSON for {}: {err}",
                std::any::type_name::<Req>()
            ))
        })?;
        self.request_value_to_msgpack(&value, UnknownFields::Ignore)
    }

    fn request_value_to_msgpack(
        &self,
        json: &serde_json::Value,
        unknown: UnknownFields,
    ) -> Result<Vec<u8>, TranscodeError> {
        let type_name = std::any::type_name::<Req>();
        let mut ignored: Option<String> = None;
        let result: Result<Req, _> = {
            let mut record = |path: serde_ignored::Path<'_>| {
                if ignored.is_none() {
                    ignored = Some(path.to_string());
                }
            };
            let deserializer =
                serde_ignored::Deserializer::new(proto_json::Lenient(json), &mut record);
            serde_path_to_error::deserialize(deserializer)
        };
        let value = result.map_err(|err| {
            let field = err.path().to_string();
            let inner = err.into_inner();
            if field == "." || field.is_empty() {
                TranscodeError::new(format!("invalid JSON for {type_name}: {inner}"))
            } else {
                TranscodeError::new(format!(
                    "invalid JSON for {type_name}: field \"{field}\": {inner}"
                ))
                .with_field(field)
            }
        })?;
        if unknown == UnknownFields::Reject
            && let Some(field) = ignored
        {
            return Err(TranscodeError::new(format!(
                "invalid JSON for {type_name}: unknown field \"{field}\""
            ))
            .with_field(field));
        }
        let mut out = Vec::new();
        F::encode(&mut out, &value).map_err(|err| {
            TranscodeError::new(format!("cannot encode {type_name} as MessagePack: {err}"))
        })?;
        Ok(out)
    }

    fn response_to_json(&self, msgpack: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let value: Resp = tonic_msgpack::decode_frame(msgpack)
            .map_err(|status| TranscodeError::new(status.message()))?;
        proto_json::to_vec(&value).map_err(|err| {
            TranscodeError::new(format!(
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
        assert_eq!(
            bytes,
            tonic_msgpack::to_vec(&("ann", 2u32)).expect("encode tuple")
        );
        let json = transcoder.response_to_json(&bytes).expect("decode");
        assert_eq!(json, br#"{"name":"ann","count":2}"#);
        let err = transcoder
            .request_to_msgpack(br#"{"name":1}"#)
            .expect_err("bad json");
        assert!(err.message().contains("invalid JSON"), "{err}");
        assert_eq!(err.field(), Some("name"), "{err}");

        let value = serde_json::json!({"name": "ann", "count": 2, "nmae": "x"});
        transcoder
            .request_value_to_msgpack(&value, UnknownFields::Ignore)
            .expect("unknown ignored");
        let err = transcoder
            .request_value_to_msgpack(&value, UnknownFields::Reject)
            .expect_err("unknown rejected");
        assert_eq!(err.field(), Some("nmae"), "{err}");
        assert!(err.message().contains("unknown field \"nmae\""), "{err}");
        let err = transcoder
            .request_value_to_msgpack(
                &serde_json::json!({"name": "a", "count": "x"}),
                UnknownFields::Ignore,
            )
            .expect_err("wrong type");
        assert_eq!(err.field(), Some("count"), "{err}");
    }
}
