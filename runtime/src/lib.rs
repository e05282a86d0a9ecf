//! gRPC for Rust with MessagePack instead of protobuf.
//!
//! - [`MsgPackCodec`] / [`NamedMsgPackCodec`]: the tonic codec (one MessagePack value per message).
//! - [`msgpack_service`]: tonic servers and clients from a plain Rust trait.
//! - [`Streaming`] / [`ServerStream`]: the stream types of streaming methods.
#![doc = include_str!("docs/wire-format.md")]

mod codec;
#[cfg(feature = "gateway")]
pub mod gateway;
mod stream;

pub use codec::{
    Compact, Format, FormatCodec, MsgPackCodec, MsgPackDecoder, MsgPackEncoder, Named,
    NamedMsgPackCodec, decode_frame, to_vec, to_vec_named,
};
pub use stream::{ServerStream, Streaming};
pub use tonic_msgpack_macros::msgpack_service;

/// Re-exports used by generated code. Not a public API.
#[doc(hidden)]
pub mod codegen {
    pub use futures_core::Stream;
    pub use tonic;
}
