//! Procedural macros of tonic-msgpack. Use them through the `tonic_msgpack` crate.

use proc_macro::TokenStream;

/// Generates a tonic server and client from a trait. See `tonic_msgpack::msgpack_service`.
#[proc_macro_attribute]
pub fn msgpack_service(args: TokenStream, item: TokenStream) -> TokenStream {
    tonic_msgpack_build::trait_gen::expand(args.into(), item.into()).into()
}
