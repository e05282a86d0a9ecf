//! `#[derive(Message)]`: MessagePack by field number (wire format v1, rules 3, 4, 5 and 7).
//!
//! `ast.rs` reads the input (prost's `#[prost(...)]` and our `#[msgpack(...)]` attributes)
//! into a typed model and checks it; `expand.rs` writes the serde impls and `direct.rs` the
//! direct MessagePack ones (`tonic_msgpack::direct`).

mod ast;
mod attr;
mod direct;
mod expand;

use proc_macro2::TokenStream;

/// Expands `#[derive(Message)]`. On error: the errors plus stub impls, so the user sees the
/// real mistake instead of follow-on "trait not implemented" errors.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(err) => return err.into_compile_error(),
    };
    match ast::Container::from_ast(&input) {
        Ok(container) => expand::expand(&container),
        Err(err) => {
            let mut out = err.into_compile_error();
            out.extend(expand::fallback(&input));
            out
        }
    }
}
