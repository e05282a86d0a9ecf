//! Front end: a Rust trait marked `#[msgpack_service]` → [`ServiceModel`].
//!
//! Used by the proc-macro (which also needs the per-method details in [`TraitService`]) and by
//! the CLI, which finds such traits in source files to generate gateway routes.
//!
//! By concern: `options` parses `#[msgpack_service(...)]` and `#[rpc(...)]`, `methods`
//! checks each method's signature, and this module finds the traits and assembles the model.

mod methods;
mod options;

use proc_macro2::TokenStream;

pub use methods::TraitMethod;

use crate::model::ServiceModel;

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
    let (services, _) = trait_services_in_source(text, file)?;
    Ok(services.into_iter().map(|service| service.model).collect())
}

/// Every `#[msgpack_service]` trait in Rust source `text` with its per-method details, and the
/// parsed file (whose other items, such as argument structs, tools may look up); `file` names
/// it in errors.
///
/// # Errors
///
/// The text does not parse, or a trait is invalid: `file:line:col: reason`.
pub fn trait_services_in_source(
    text: &str,
    file: &str,
) -> Result<(Vec<TraitService>, syn::File), crate::Error> {
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
                    services.push(parse_trait(item, args).map_err(located)?);
                }
                syn::Item::Mod(syn::ItemMod {
                    content: Some((_, items)),
                    ..
                }) => pending.push(items),
                _ => {}
            }
        }
    }
    Ok((services, ast))
}

/// Parses and checks a `#[msgpack_service]` trait, reporting every problem at once.
pub fn parse_trait(item: &syn::ItemTrait, args: TokenStream) -> syn::Result<TraitService> {
    let mut errors = Errors::default();
    let options = errors
        .take(options::parse_service_options(args))
        .unwrap_or_default();
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
                if let Some((method_model, method)) = errors.take(methods::parse_method(function)) {
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

/// The text of every `///` doc comment in `attrs`, one entry per line.
pub(crate) fn doc_lines(attrs: &[syn::Attribute]) -> Vec<String> {
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
    use crate::model::{CallKind, HttpBinding};

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
