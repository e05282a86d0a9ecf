//! JSON ⇄ MessagePack for `tonic-msgpack call` (wire format v1).
//!
//! - [`value`]: the MessagePack value tree ([`Mp`]) with its encoder and strict decoder.
//! - [`schemaless`]: any JSON ⇄ any MessagePack, for calls without a `.proto`.
//! - [`descriptor`]: messages by their proto descriptor, through the gateway's REST transcoder
//!   by descriptor (one implementation for `call --proto` and the gateway's REST/JSON).
//! - [`common`]: the schema-less JSON forms (floats, bytes, timestamps through
//!   `tonic_msgpack::wkt`).

mod common;
mod descriptor;
mod schemaless;
mod value;

pub(crate) use descriptor::{message_from_json, message_to_json};
pub(crate) use schemaless::{json_to_mp, mp_to_json};
pub(crate) use value::Mp;
