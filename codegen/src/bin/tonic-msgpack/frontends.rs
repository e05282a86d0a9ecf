//! The two front ends, reached through two small functions so the CLI does not care where the
//! models come from.
//!
//! - `.proto` directories: `tonic_msgpack_build::protos::load_services` (the protox front end).
//! - Rust files: every trait with a `#[msgpack_service(...)]` attribute, through
//!   `service_from_trait` (the same conversion the macro uses).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use tonic_msgpack_build::{CallKind, Format, MethodModel, ServiceModel};

/// Every service of every `.proto` file under `dir` (`dir` is also the include path).
pub(crate) fn load_proto_dir(dir: &Path) -> anyhow::Result<Vec<ServiceModel>> {
    let mut protos = Vec::new();
    collect_protos(dir, &mut protos)?;
    if protos.is_empty() {
        bail!("{}: no .proto files found", dir.display());
    }
    protos.sort();
    load_protos(&protos, &[dir.to_owned()])
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// The protox front end. Wired to `tonic_msgpack_build::protos::load_services` when the proto
/// pipeline lands in this crate.
fn load_protos(protos: &[PathBuf], _includes: &[PathBuf]) -> anyhow::Result<Vec<ServiceModel>> {
    bail!(
        "{}: reading .proto files needs the proto front end, which this build of tonic-msgpack \
         does not include yet; use --traits",
        protos
            .first()
            .map_or_else(String::new, |p| p.display().to_string())
    )
}

/// Every `#[msgpack_service]` trait in the Rust file `file` (also inside inline modules).
pub(crate) fn load_traits(file: &Path) -> anyhow::Result<Vec<ServiceModel>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let ast = syn::parse_file(&text).map_err(|err| {
        let start = err.span().start();
        anyhow::anyhow!(
            "{}:{}:{}: {err}",
            file.display(),
            start.line,
            start.column + 1
        )
    })?;
    let mut services = Vec::new();
    collect_traits(&ast.items, file, &mut services)?;
    Ok(services)
}

fn collect_traits(
    items: &[syn::Item],
    file: &Path,
    out: &mut Vec<ServiceModel>,
) -> anyhow::Result<()> {
    for item in items {
        match item {
            syn::Item::Trait(item) => {
                let Some(attr) = item.attrs.iter().find(|attr| {
                    attr.path()
                        .segments
                        .last()
                        .is_some_and(|segment| segment.ident == "msgpack_service")
                }) else {
                    continue;
                };
                let args = match &attr.meta {
                    syn::Meta::List(list) => list.tokens.clone(),
                    _ => TokenStream::new(),
                };
                let service = service_from_trait(item, args).map_err(|err| {
                    let start = err.span().start();
                    anyhow::anyhow!(
                        "{}:{}:{}: {err}",
                        file.display(),
                        start.line,
                        start.column + 1
                    )
                })?;
                out.push(service);
            }
            syn::Item::Mod(module) => {
                if let Some((_, items)) = &module.content {
                    collect_traits(items, file, out)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A trait → its service model: the conversion `#[msgpack_service]` performs. Stands in for
/// `tonic_msgpack_build::traits::service_from_trait` until the macro's front end lands in this
/// crate; it reads `package = "..."` and `format = "..."` and the methods' streaming types.
fn service_from_trait(item: &syn::ItemTrait, args: TokenStream) -> syn::Result<ServiceModel> {
    let mut package = String::new();
    let mut format = Format::Compact;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("package") {
            package = meta.value()?.parse::<syn::LitStr>()?.value();
        } else if meta.path.is_ident("format") {
            let lit = meta.value()?.parse::<syn::LitStr>()?;
            format = Format::parse(&lit.value()).ok_or_else(|| {
                syn::Error::new_spanned(&lit, "format is \"compact\" or \"named\"")
            })?;
        } else {
            // Other keys belong to the macro (codec options and the like).
            let _ = meta.value().and_then(|value| value.parse::<syn::Expr>());
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    let mut methods = Vec::new();
    for entry in &item.items {
        let syn::TraitItem::Fn(function) = entry else {
            continue;
        };
        let inputs: Vec<&syn::Type> = function
            .sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                syn::FnArg::Typed(pat) => Some(&*pat.ty),
                syn::FnArg::Receiver(_) => None,
            })
            .collect();
        let client_streaming = inputs.iter().any(|ty| names(ty, "Streaming"));
        let output = match &function.sig.output {
            syn::ReturnType::Default => None,
            syn::ReturnType::Type(_, ty) => Some(&**ty),
        };
        let server_streaming = output.is_some_and(|ty| names(ty, "ServerStream"));
        let input_type = match inputs.as_slice() {
            [] => "()".to_owned(),
            [one] => quote::quote!(#one).to_string(),
            many => {
                let many = many.iter();
                quote::quote!((#(#many),*)).to_string()
            }
        };
        let output_type =
            output.map_or_else(|| "()".to_owned(), |ty| quote::quote!(#ty).to_string());
        let mut method = MethodModel::new(
            function.sig.ident.to_string().to_upper_camel_case(),
            input_type,
            output_type,
            CallKind::from_flags(client_streaming, server_streaming),
        );
        method.rust_name = function.sig.ident.to_string();
        methods.push(method);
    }
    Ok(ServiceModel {
        package,
        name: item.ident.to_string(),
        docs: Vec::new(),
        format,
        methods,
    })
}

/// Whether `ty` mentions a path segment named `name` anywhere (`Result<ServerStream<T>, _>`).
fn names(ty: &syn::Type, name: &str) -> bool {
    quote::quote!(#ty)
        .into_iter()
        .any(|token| contains_ident(token, name))
}

fn contains_ident(token: proc_macro2::TokenTree, name: &str) -> bool {
    match token {
        proc_macro2::TokenTree::Ident(ident) => ident == name,
        proc_macro2::TokenTree::Group(group) => {
            group.stream().into_iter().any(|t| contains_ident(t, name))
        }
        _ => false,
    }
}
