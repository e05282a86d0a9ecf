//! `#[msgpack_service(...)]` and `#[rpc(...)]` options: parsing and value checks.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;

use super::sym;
use crate::model::{Format, HttpBinding};

/// The options of `#[msgpack_service(...)]`; `None` where not written.
#[derive(Default)]
pub(super) struct ServiceOptions {
    pub(super) package: Option<String>,
    pub(super) name: Option<String>,
    pub(super) format: Option<Format>,
}

/// Parses the tokens inside `#[msgpack_service(...)]`.
pub(super) fn parse_service_options(args: TokenStream) -> syn::Result<ServiceOptions> {
    let mut options = ServiceOptions::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(sym::PACKAGE) {
            let value = string_value(&meta)?;
            check_package(&value)?;
            set_once(&mut options.package, value.value(), &meta)
        } else if meta.path.is_ident(sym::NAME) {
            let value = string_value(&meta)?;
            check_identifier(&value, "service name")?;
            set_once(&mut options.name, value.value(), &meta)
        } else if meta.path.is_ident(sym::FORMAT) {
            let value = string_value(&meta)?;
            let format = value.value().parse::<Format>().map_err(|_| {
                syn::Error::new_spanned(
                    &value,
                    "unknown format: expected `format = \"compact\"` (structs as arrays) or `format = \"named\"` (structs as maps)",
                )
            })?;
            set_once(&mut options.format, format, &meta)
        } else {
            Err(meta.error(
                "unknown #[msgpack_service] option: expected `package = \"...\"`, `name = \"...\"` or `format = \"compact\" | \"named\"`",
            ))
        }
    });
    parser.parse2(args)?;
    Ok(options)
}

/// The options of every `#[rpc(...)]` on one method, merged.
#[derive(Default)]
pub(super) struct RpcOptions {
    pub(super) name: Option<String>,
    pub(super) http: Option<HttpBinding>,
    /// Where the `http` value is written, for errors found later against the arguments.
    pub(super) http_span: Option<Span>,
}

/// Parses the `#[rpc(...)]` attributes among a method's `attrs`; other attributes are ignored.
pub(super) fn parse_rpc_options(attrs: &[syn::Attribute]) -> syn::Result<RpcOptions> {
    let mut options = RpcOptions::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(sym::RPC)) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(sym::NAME) {
                let value = string_value(&meta)?;
                check_identifier(&value, "method name")?;
                set_once(&mut options.name, value.value(), &meta)
            } else if meta.path.is_ident(sym::HTTP) {
                let value = string_value(&meta)?;
                let binding = HttpBinding::parse(&value.value())
                    .map_err(|reason| syn::Error::new_spanned(&value, reason))?;
                options.http_span = Some(value.span());
                set_once(&mut options.http, binding, &meta)
            } else {
                Err(meta.error(
                    "unknown #[rpc] option: expected `name = \"...\"` or `http = \"GET /path/{arg}\"`",
                ))
            }
        })?;
    }
    Ok(options)
}

fn string_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::LitStr> {
    meta.value()?.parse::<syn::LitStr>()
}

fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    meta: &syn::meta::ParseNestedMeta<'_>,
) -> syn::Result<()> {
    if slot.replace(value).is_some() {
        let name = meta.path.to_token_stream().to_string();
        return Err(meta.error(format!("duplicate option `{name}`")));
    }
    Ok(())
}

fn check_package(value: &syn::LitStr) -> syn::Result<()> {
    let package = value.value();
    if package.is_empty() || package.split('.').all(is_identifier) {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            value,
            format!(
                "invalid package `{package}`: expected dot-separated identifiers such as `demo.v1`"
            ),
        ))
    }
}

fn check_identifier(value: &syn::LitStr, what: &str) -> syn::Result<()> {
    if is_identifier(&value.value()) {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            value,
            format!("invalid {what} `{}`: expected an identifier", value.value()),
        ))
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_service_options() {
        let options = parse_service_options(quote::quote!(
            package = "demo.v1",
            name = "Calc",
            format = "named"
        ))
        .expect("valid options");
        assert_eq!(options.package.as_deref(), Some("demo.v1"));
        assert_eq!(options.name.as_deref(), Some("Calc"));
        assert_eq!(options.format, Some(Format::Named));
    }

    #[test]
    fn rejects_bad_service_options() {
        let error = |tokens| {
            parse_service_options(tokens)
                .err()
                .map(|error| error.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            error(quote::quote!(name = "A", name = "B")),
            "duplicate option `name`"
        );
        assert!(
            error(quote::quote!(package = "demo..v1")).starts_with("invalid package `demo..v1`")
        );
        assert!(error(quote::quote!(name = "1st")).starts_with("invalid service name `1st`"));
        assert!(error(quote::quote!(version = 2)).starts_with("unknown #[msgpack_service] option"));
    }

    #[test]
    fn merges_rpc_attributes_and_ignores_others() {
        let function: syn::TraitItemFn = syn::parse_quote! {
            /// Adds.
            #[rpc(name = "Plus")]
            #[rpc(http = "GET /v1/add/{a}")]
            async fn add(&self, a: i64) -> Result<i64, Status>;
        };
        let options = parse_rpc_options(&function.attrs).expect("valid options");
        assert_eq!(options.name.as_deref(), Some("Plus"));
        assert_eq!(
            options.http.map(|binding| binding.path),
            Some("/v1/add/{a}".to_owned())
        );
        assert!(options.http_span.is_some());

        let twice: syn::TraitItemFn = syn::parse_quote! {
            #[rpc(name = "A")]
            #[rpc(name = "B")]
            async fn add(&self) -> Result<(), Status>;
        };
        let error = parse_rpc_options(&twice.attrs).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("duplicate option `name`"));
    }
}
