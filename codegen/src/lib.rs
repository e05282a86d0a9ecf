//! Code generation for tonic-msgpack.
//!
//! One [`ServiceModel`](model::ServiceModel), two front ends (`.proto` files through protox,
//! `#[msgpack_service]` traits through syn) and several back ends (the tonic server and client
//! through tonic-build, gateway route stubs, manifests).

mod error;
pub mod model;
#[cfg(feature = "protos")]
mod protos;
pub mod routes;
pub mod tonic_gen;
pub mod trait_gen;
pub mod traits;

#[cfg(feature = "protos")]
pub use protos::{Builder, KeyCase, compile_protos, configure, descriptor_pool, load_services};

pub use error::Error;
pub use model::{CallKind, Format, HttpBinding, MethodModel, ServiceModel};

/// Formats generated tokens as a readable Rust file with prettyplease.
pub fn pretty(tokens: proc_macro2::TokenStream, what: &str) -> Result<String, Error> {
    let file = syn::parse2::<syn::File>(tokens).map_err(|err| Error::Generated {
        what: what.to_owned(),
        reason: err.to_string(),
    })?;
    Ok(prettyplease::unparse(&file))
}
