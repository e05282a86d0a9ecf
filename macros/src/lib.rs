//! Procedural macros of tonic-msgpack. Use them through the `tonic_msgpack` crate.

mod message;

use proc_macro::TokenStream;

/// Generates a tonic server and client from a trait. See `tonic_msgpack::msgpack_service`.
#[proc_macro_attribute]
pub fn msgpack_service(args: TokenStream, item: TokenStream) -> TokenStream {
    tonic_msgpack_codegen::trait_gen::expand(args.into(), item.into()).into()
}

/// `#[derive(Message)]`: MessagePack by field number. See `tonic_msgpack::Message`.
#[proc_macro_derive(Message, attributes(msgpack, prost))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message::expand(input.into()).into()
}
