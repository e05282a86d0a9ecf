//! Front end: a Rust trait marked `#[msgpack_service]` → [`ServiceModel`].
//!
//! Used by the proc-macro (which also needs the per-method details in [`TraitService`]) and by
//! the CLI, which finds such traits in source files to generate gateway routes.

use heck::ToUpperCamelCase;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::spanned::Spanned;

use crate::model::{CallKind, Format, HttpBinding, MethodModel, ServiceModel};

/// Attribute and option names, in one place.
mod sym {
    pub(super) const PACKAGE: &str = "package";
    pub(super) const NAME: &str = "name";
    pub(super) const FORMAT: &str = "format";
    pub(super) const HTTP: &str = "http";
    /// The per-method attribute.
    pub(super) const RPC: &str = "rpc";
    /// The client-streaming argument type.
    pub(super) const STREAMING: &str = "Streaming";
    /// The server-streaming return type.
    pub(super) const SERVER_STREAM: &str = "ServerStream";
    /// The type of the optional request-metadata argument.
    pub(super) const METADATA_MAP: &str = "MetadataMap";
}

/// A parsed `#[msgpack_service]` trait: the shared model plus what the macro needs to
/// generate the adapter and the typed client.
#[derive(Debug, Clone)]
pub struct TraitService {
    /// The service as every back end sees it. Method types are the Rust types of one wire
    /// message (`(i64, i64)` for two arguments, `()` for none).
    pub model: ServiceModel,
    /// Per-method details, in the order of `model.methods`.
    pub methods: Vec<TraitMethod>,
}

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

/// Builds the model of a `#[msgpack_service]` trait (for the CLI and route generators).
///
/// `args` are the tokens inside `#[msgpack_service(...)]`.
pub fn service_from_trait(item: &syn::ItemTrait, args: TokenStream) -> syn::Result<ServiceModel> {
    parse_trait(item, args).map(|service| service.model)
}

/// Every `#[msgpack_service]` trait in the Rust file `path`, inline modules included (for the
/// CLI and `build.rs` route generation).
///
/// # Errors
///
/// The file cannot be read, does not parse, or a trait is invalid: `file:line:col: reason`.
pub fn services_in_file(path: &std::path::Path) -> Result<Vec<ServiceModel>, crate::Error> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        path: path.to_owned(),
        source,
    })?;
    services_in_source(&text, &path.display().to_string())
}

/// Every `#[msgpack_service]` trait in Rust source `text`; `file` names it in errors.
///
/// # Errors
///
/// The text does not parse, or a trait is invalid: `file:line:col: reason`.
pub fn services_in_source(text: &str, file: &str) -> Result<Vec<ServiceModel>, crate::Error> {
    let located = |error: syn::Error| {
        let start = error.span().start();
        crate::Error::Trait {
            location: format!("{file}:{}:{}", start.line, start.column + 1),
            reason: error.to_string(),
        }
    };
    let ast = syn::parse_file(text).map_err(located)?;
    let mut services = Vec::new();
    let mut pending = vec![ast.items.as_slice()];
    while let Some(items) = pending.pop() {
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
                    services.push(service_from_trait(item, args).map_err(located)?);
                }
                syn::Item::Mod(syn::ItemMod {
                    content: Some((_, items)),
                    ..
                }) => pending.push(items),
                _ => {}
            }
        }
    }
    Ok(services)
}

/// Parses and checks a `#[msgpack_service]` trait, reporting every problem at once.
pub fn parse_trait(item: &syn::ItemTrait, args: TokenStream) -> syn::Result<TraitService> {
    let mut errors = Errors::default();
    let options = errors.take(parse_service_options(args)).unwrap_or_default();
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a #[msgpack_service] trait cannot be generic: tonic services have concrete message types",
        ));
    }
    let mut model = ServiceModel {
        package: options.package.unwrap_or_default(),
        name: options.name.unwrap_or_else(|| item.ident.to_string()),
        docs: doc_lines(&item.attrs),
        format: options.format.unwrap_or_default(),
        methods: Vec::new(),
        rust_trait: Some(item.ident.to_string()),
    };
    let mut methods = Vec::new();
    for trait_item in &item.items {
        match trait_item {
            syn::TraitItem::Fn(function) => {
                if let Some((method_model, method)) = errors.take(parse_method(function)) {
                    if let Some(previous) =
                        model.methods.iter().find(|m| m.name == method_model.name)
                    {
                        errors.push(syn::Error::new_spanned(
                            &function.sig.ident,
                            format!(
                                "two methods of `{}` are named `{}` on the wire (`{}` and `{}`); give one a different #[rpc(name = \"...\")]",
                                item.ident, method_model.name, previous.rust_name, method_model.rust_name
                            ),
                        ));
                    }
                    model.methods.push(method_model);
                    methods.push(method);
                }
            }
            other => errors.push(syn::Error::new_spanned(
                other,
                "a #[msgpack_service] trait may only contain `async fn` methods",
            )),
        }
    }
    errors.finish()?;
    Ok(TraitService { model, methods })
}

#[derive(Default)]
struct ServiceOptions {
    package: Option<String>,
    name: Option<String>,
    format: Option<Format>,
}

fn parse_service_options(args: TokenStream) -> syn::Result<ServiceOptions> {
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

#[derive(Default)]
struct RpcOptions {
    name: Option<String>,
    http: Option<HttpBinding>,
    http_span: Option<Span>,
}

fn parse_rpc_options(attrs: &[syn::Attribute]) -> syn::Result<RpcOptions> {
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

fn parse_method(function: &syn::TraitItemFn) -> syn::Result<(MethodModel, TraitMethod)> {
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

fn doc_lines(attrs: &[syn::Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(doc),
                        ..
                    }),
                ..
            }) => Some(doc.value()),
            _ => None,
        })
        .collect()
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

/// Collects errors so one build reports every problem (serde's `Ctxt`).
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// All errors so far plus `error`.
    fn and(self, error: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut existing) => {
                existing.combine(error);
                existing
            }
            None => error,
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: TokenStream, args: TokenStream) -> syn::Result<TraitService> {
        parse_trait(&syn::parse2(tokens).expect("a trait"), args)
    }

    #[test]
    fn builds_the_model_of_every_call_kind() {
        let service = parse(
            quote::quote! {
                /// Arithmetic.
                trait Calculator {
                    #[rpc(http = "GET /v1/add/{a}/{b}")]
                    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
                    async fn sum(&self, values: Streaming<i64>) -> Result<i64, Status>;
                    async fn countdown(&self, meta: &MetadataMap, from: u32) -> Result<ServerStream<u32>, Status>;
                    async fn running_total(&self, values: Streaming<i64>) -> Result<ServerStream<i64>, tonic::Status>;
                    #[rpc(name = "Ping")]
                    async fn ping(&self) -> Result<(), Status>;
                }
            },
            quote::quote!(package = "demo.v1"),
        )
        .expect("valid trait");
        let model = &service.model;
        assert_eq!(model.full_name(), "demo.v1.Calculator");
        assert_eq!(model.docs, vec![" Arithmetic.".to_owned()]);
        let summary: Vec<_> = model
            .methods
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.input_type.as_str(),
                    m.output_type.as_str(),
                    m.kind,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Add", "(i64 , i64 ,)", "i64", CallKind::Unary),
                ("Sum", "i64", "i64", CallKind::ClientStreaming),
                ("Countdown", "u32", "u32", CallKind::ServerStreaming),
                ("RunningTotal", "i64", "i64", CallKind::Bidirectional),
                ("Ping", "()", "()", CallKind::Unary),
            ]
        );
        assert_eq!(
            model.method_path(&model.methods[0]),
            "/demo.v1.Calculator/Add"
        );
        assert_eq!(
            model.methods[0].http,
            Some(HttpBinding {
                method: "GET".into(),
                path: "/v1/add/{a}/{b}".into(),
                body: None
            })
        );
        assert_eq!(service.methods[2].metadata_position, Some(0));
        assert_eq!(service.methods[2].args.len(), 1);
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let error = parse(
            quote::quote! {
                trait Broken {
                    fn not_async(&self) -> Result<(), Status>;
                    async fn no_self(x: i64) -> Result<(), Status>;
                    async fn borrowed(&self, name: &str) -> Result<(), Status>;
                    async fn generic<T>(&self, x: T) -> Result<(), Status>;
                    async fn plain(&self) -> i64;
                }
            },
            quote::quote!(format = "fancy"),
        )
        .expect_err("errors");
        let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 6, "{messages:#?}");
        assert!(messages[0].contains("unknown format"));
        assert!(messages[1].contains("must be `async fn`"));
        assert!(messages[2].contains("must take `&self`"));
        assert!(messages[3].contains("argument `name` is a reference"));
        assert!(messages[4].contains("cannot be generic"));
        assert!(messages[5].contains("must return `Result<T, Status>`"));
    }

    #[test]
    fn http_path_variables_must_name_arguments() {
        let error = parse(
            quote::quote! {
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

    #[test]
    fn finds_traits_in_source_files() {
        let source = r#"
            use tonic_msgpack::msgpack_service;
            #[msgpack_service(package = "a.v1")]
            pub trait First { async fn one(&self) -> Result<(), Status>; }
            mod inner {
                #[tonic_msgpack::msgpack_service]
                pub trait Second { async fn two(&self, x: u8) -> Result<u8, Status>; }
            }
            pub trait NotAService { fn three(&self); }
        "#;
        let services = services_in_source(source, "lib.rs").expect("valid source");
        let names: Vec<_> = services.iter().map(ServiceModel::full_name).collect();
        assert_eq!(names, ["a.v1.First", "Second"]);

        let error = services_in_source(
            "#[msgpack_service]\ntrait Bad {\n    fn sync(&self) -> Result<(), Status>;\n}",
            "bad.rs",
        )
        .expect_err("not async");
        assert!(error.to_string().starts_with("bad.rs:3:5: "), "{error}");
    }
}
