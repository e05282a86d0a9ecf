//! Per-method signature checks of a `#[msgpack_service]` trait → [`MethodModel`] + [`TraitMethod`].

use heck::ToUpperCamelCase;
use quote::ToTokens;
use syn::spanned::Spanned;

use super::options::parse_rpc_options;
use super::{Errors, doc_lines, sym};
use crate::model::{CallKind, MethodModel};

/// One method of a `#[msgpack_service]` trait.
#[derive(Debug, Clone)]
pub struct TraitMethod {
    /// The Rust method name.
    pub ident: syn::Ident,
    /// Position of a `&MetadataMap` argument among the arguments after `self`, if any.
    pub metadata_position: Option<usize>,
    /// The arguments after `self` except the metadata; for client streaming, the one
    /// `Streaming<T>` argument.
    pub args: Vec<(syn::Ident, syn::Type)>,
    /// For client streaming: the element type of the `Streaming<T>` argument.
    pub request_stream: Option<syn::Type>,
    /// The success type (`T` of `Result<T, Status>`), or for server streaming the element
    /// type of `ServerStream<R>`.
    pub response: syn::Type,
    /// Whether the method returns `ServerStream<R>`.
    pub response_stream: bool,
}

impl TraitMethod {
    /// The Rust type of one request message: the bare argument, `()` for none, a tuple for
    /// several (wire format rule 6), or the stream element type.
    pub fn request_type(&self) -> syn::Type {
        if let Some(element) = &self.request_stream {
            return element.clone();
        }
        match self.args.as_slice() {
            [(_, ty)] => ty.clone(),
            args => {
                let types = args.iter().map(|(_, ty)| ty);
                syn::parse_quote!((#(#types,)*))
            }
        }
    }
}

/// Checks one trait method and builds its model; every problem of the method is reported.
pub(super) fn parse_method(function: &syn::TraitItemFn) -> syn::Result<(MethodModel, TraitMethod)> {
    let mut errors = Errors::default();
    let sig = &function.sig;
    let rpc = errors
        .take(parse_rpc_options(&function.attrs))
        .unwrap_or_default();

    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "#[msgpack_service] methods must be `async fn`: write `async fn {}(&self, ...)`",
                sig.ident
            ),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "`{}` cannot be generic: every RPC has one concrete request and response type",
                sig.ident
            ),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "variadic arguments are not supported",
        ));
    }
    match sig.inputs.first() {
        Some(syn::FnArg::Receiver(receiver))
            if receiver.reference.is_some()
                && receiver.mutability.is_none()
                && receiver.colon_token.is_none() => {}
        Some(syn::FnArg::Receiver(receiver)) => errors.push(syn::Error::new_spanned(
            receiver,
            format!(
                "`{}` must take `&self`: a service is shared between concurrent calls",
                sig.ident
            ),
        )),
        _ => errors.push(syn::Error::new_spanned(
            &sig.ident,
            format!("`{}` must take `&self` as its first argument", sig.ident),
        )),
    }

    let mut metadata_position = None;
    let mut args = Vec::new();
    let mut request_stream = None;
    let typed_args = sig.inputs.iter().filter_map(|arg| match arg {
        syn::FnArg::Typed(typed) => Some(typed),
        syn::FnArg::Receiver(_) => None,
    });
    for (position, arg) in typed_args.enumerate() {
        let ident = match &*arg.pat {
            syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                pat.ident.clone()
            }
            other => {
                errors.push(syn::Error::new_spanned(
                    other,
                    "arguments of #[msgpack_service] methods must be plain names (`value: T`): the generated client uses them",
                ));
                continue;
            }
        };
        if let syn::Type::Reference(reference) = &*arg.ty {
            if last_segment_is(&reference.elem, sym::METADATA_MAP) && reference.mutability.is_none()
            {
                if metadata_position.replace(position).is_some() {
                    errors.push(syn::Error::new_spanned(
                        &arg.ty,
                        "only one `&MetadataMap` argument is allowed",
                    ));
                }
            } else {
                errors.push(syn::Error::new_spanned(
                    &arg.ty,
                    format!(
                        "argument `{ident}` is a reference: RPC arguments are decoded per call and must be owned types (write `{}`); only `&MetadataMap` may be borrowed",
                        owned_suggestion(&reference.elem)
                    ),
                ));
            }
            continue;
        }
        if contains_impl_trait(&arg.ty) {
            errors.push(syn::Error::new_spanned(
                &arg.ty,
                format!(
                    "argument `{ident}` cannot be `impl Trait`: RPC arguments need a concrete type"
                ),
            ));
            continue;
        }
        if let Some(element) = single_generic_arg(&arg.ty, sym::STREAMING)
            && request_stream.replace(element.clone()).is_some()
        {
            errors.push(syn::Error::new_spanned(
                &arg.ty,
                "only one `Streaming<T>` argument is allowed",
            ));
        }
        args.push((ident, (*arg.ty).clone(), arg.ty.span()));
    }
    if request_stream.is_some() && args.len() > 1 {
        let span = args
            .iter()
            .find(|(_, ty, _)| single_generic_arg(ty, sym::STREAMING).is_none());
        if let Some((ident, _, span)) = span {
            errors.push(syn::Error::new(
                *span,
                format!(
                    "argument `{ident}` cannot be combined with a `Streaming<T>` argument: a client-streaming RPC carries only the stream (send the value as part of each message)"
                ),
            ));
        }
    }

    let response = match &sig.output {
        syn::ReturnType::Type(_, ty) => result_ok_type(ty),
        syn::ReturnType::Default => None,
    };
    let Some(response) = response else {
        let spanned: &dyn ToTokens = match &sig.output {
            syn::ReturnType::Type(_, ty) => ty,
            syn::ReturnType::Default => &sig.ident,
        };
        return Err(errors.and(syn::Error::new_spanned(
            spanned,
            format!(
                "`{}` must return `Result<T, Status>` (use `Result<(), Status>` for no value, `Result<ServerStream<T>, Status>` for a stream)",
                sig.ident
            ),
        )));
    };
    let (response, response_stream) = match single_generic_arg(&response, sym::SERVER_STREAM) {
        Some(element) => (element.clone(), true),
        None => (response, false),
    };

    let name = rpc
        .name
        .clone()
        .unwrap_or_else(|| sig.ident.to_string().to_upper_camel_case());
    if let (Some(binding), Some(span)) = (&rpc.http, rpc.http_span) {
        if request_stream.is_some() {
            errors.push(syn::Error::new(
                span,
                "client-streaming methods cannot have an HTTP binding: REST requests carry one message",
            ));
        }
        let template = tonic_msgpack_core::PathTemplate::parse(&binding.path);
        for variable in template.iter().flat_map(|template| template.variables()) {
            if !args.iter().any(|(ident, _, _)| ident == variable) {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "the HTTP path names `{{{variable}}}`, but `{}` has no argument `{variable}`",
                        sig.ident
                    ),
                ));
            }
        }
    }
    errors.finish()?;

    let method = TraitMethod {
        ident: sig.ident.clone(),
        metadata_position,
        args: args.into_iter().map(|(ident, ty, _)| (ident, ty)).collect(),
        request_stream,
        response,
        response_stream,
    };
    let kind = CallKind::from_flags(method.request_stream.is_some(), method.response_stream);
    let mut model = MethodModel::new(
        name,
        method.request_type().to_token_stream().to_string(),
        method.response.to_token_stream().to_string(),
        kind,
    );
    model.rust_name = sig.ident.to_string();
    model.http = rpc.http;
    model.docs = doc_lines(&function.attrs);
    Ok((model, method))
}

/// `T` of `Result<T, Status>` (also `tonic::Status`, `std::result::Result`).
fn result_ok_type(ty: &syn::Type) -> Option<syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    if segment.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generics) = &segment.arguments else {
        return None;
    };
    let mut types = generics.args.iter().filter_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let (Some(ok), Some(err), None) = (types.next(), types.next(), types.next()) else {
        return None;
    };
    last_segment_is(err, "Status").then(|| ok.clone())
}

fn last_segment_is(ty: &syn::Type, name: &str) -> bool {
    matches!(ty, syn::Type::Path(path) if path.qself.is_none()
        && path.path.segments.last().is_some_and(|segment| segment.ident == name))
}

/// `T` of `Name<T>` when `ty` is a path ending in `Name` with one type argument.
fn single_generic_arg<'a>(ty: &'a syn::Type, name: &str) -> Option<&'a syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generics) = &segment.arguments else {
        return None;
    };
    match generics.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(element)] => Some(element),
        _ => None,
    }
}

/// The owned type to suggest for a borrowed one: `str` → `String`, `[T]` → `Vec<T>`.
fn owned_suggestion(borrowed: &syn::Type) -> String {
    match borrowed {
        syn::Type::Path(path) if path.path.is_ident("str") => "String".to_owned(),
        syn::Type::Slice(slice) => format!("Vec<{}>", slice.elem.to_token_stream()),
        other => other.to_token_stream().to_string(),
    }
}

fn contains_impl_trait(ty: &syn::Type) -> bool {
    ty.to_token_stream()
        .into_iter()
        .any(|token| matches!(token, proc_macro2::TokenTree::Ident(ident) if ident == "impl"))
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;

    use super::super::parse_trait;

    #[test]
    fn http_path_variables_must_name_arguments() {
        let error = parse_trait(
            &syn::parse_quote! {
                trait Calc {
                    #[rpc(http = "GET /v1/add/{a}/{c}")]
                    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
                }
            },
            TokenStream::new(),
        )
        .expect_err("an error");
        assert!(error.to_string().contains("has no argument `c`"), "{error}");
    }
}
