//! Internals of tonic-msgpack's code generation, shared by `tonic-msgpack-macros` (the
//! `#[msgpack_service]` attribute) and `tonic-msgpack-build` (`build.rs`, the CLI). Like
//! `serde_derive_internals`: no semver promise; use those crates instead.
//!
//! One [`ServiceModel`], two front ends and several back ends:
//!
//! - front ends: `protos` (`.proto` files through protox, feature `protos`) and
//!   [`traits`] (`#[msgpack_service]` traits through syn);
//! - back ends: [`tonic_gen`] (the tonic server and client through tonic-build),
//!   [`trait_gen`] (the attribute's expansion) and [`routes`] (gateway route stubs, listings).

#[cfg(feature = "protos")]
pub mod contract;
#[cfg(feature = "protos")]
pub mod descriptors;
mod error;
pub mod model;
#[cfg(feature = "protos")]
pub mod protos;
pub mod routes;
pub mod tonic_gen;
pub mod trait_gen;
pub mod traits;

pub use error::Error;
pub use model::{MethodModel, ServiceModel};
pub use tonic_msgpack_core::{CallKind, Format, HttpBinding, KeyCase};

/// Formats generated tokens as a readable Rust file with prettyplease.
pub fn pretty(tokens: proc_macro2::TokenStream, what: &str) -> Result<String, Error> {
    let file = syn::parse2::<syn::File>(tokens).map_err(|err| Error::Generated {
        what: what.to_owned(),
        reason: err.to_string(),
    })?;
    Ok(prettyplease::unparse(&file))
}
