//! Gateway route stubs: a `table()` function returning a `tonic_msgpack_gateway::RouteTable`
//! with one route per method (path, call kind, upstream, HTTP binding, format and, optionally,
//! a typed JSON transcoder).
//!
//! Used by `build.rs` (through the builder's `gateway_routes(true)`) and by the
//! `tonic-msgpack routes` command, which writes the same file for committing and checking.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::proto_rust_path;
use crate::{CallKind, Error, Format, MethodModel, ServiceModel};

/// Options of the route generator.
///
/// With typed transcoders, the route file names each method's message types by absolute
/// paths, so it compiles wherever it is included:
///
/// - proto services: `.demo.v1.HelloRequest` → `{module}::HelloRequest`, where `module` is
///   the one given for the longest matching package by [`RoutesOptions::proto_module`];
///   sub-packages and enclosing messages become snake_case modules as prost-build lays them
///   out (`.demo.v1.admin.User` → `{module}::admin::User`, `.demo.v1.Outer.Inner` →
///   `{module}::outer::Inner`). A mapping for `""` covers every package
///   (`("", "crate")` gives prost-build's include-file layout, `crate::demo::v1::HelloRequest`).
/// - `#[msgpack_service]` traits: `{module}::__{trait}_msgpack::AddJson` (request, a JSON
///   object keyed by argument name) and `…::AddResponse`, where `module` is where the trait
///   is declared, given by [`RoutesOptions::trait_module`]. The hidden module has the trait's
///   visibility, so the trait must be visible where the route file is included
///   (`pub` or `pub(crate)`). Client-streaming methods, which have no JSON request type, use
///   the stream element (`…::SumRequest`).
/// - other (hand-built) models: their `input_type` / `output_type` as written.
///
/// ```
/// use tonic_msgpack_codegen::routes::RoutesOptions;
/// let options = RoutesOptions::typed()
///     .proto_module("demo.v1", "crate::proto")
///     .trait_module("Calculator", "crate::calculator");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RoutesOptions {
    /// Attach `Transcoder::typed::<Input, Output>()` to every route (REST/JSON). Default: `false`.
    pub typed_transcoders: bool,
    /// `(proto package, Rust module)` pairs: where the message types of a package are
    /// (see above). Default: none.
    pub proto_modules: Vec<(String, String)>,
    /// `(trait name or full service name, Rust module)` pairs: where a `#[msgpack_service]`
    /// trait is declared (see above). Default: none.
    pub trait_modules: Vec<(String, String)>,
}

impl RoutesOptions {
    /// Options with typed transcoders on (add the module mappings next).
    pub fn typed() -> Self {
        RoutesOptions {
            typed_transcoders: true,
            ..RoutesOptions::default()
        }
    }

    /// The message types of proto `package` (`"demo.v1"`, `""` for every package) are in Rust
    /// module `module` (`"crate::proto"`, where `include_proto!("demo.v1")` put them).
    #[must_use]
    pub fn proto_module(mut self, package: impl Into<String>, module: impl Into<String>) -> Self {
        self.proto_modules.push((package.into(), module.into()));
        self
    }

    /// The `#[msgpack_service]` trait `name` (its Rust name `"Calculator"`, or the full
    /// service name `"demo.v1.Calculator"`) is declared in Rust module `module`
    /// (`"crate::calculator"`).
    #[must_use]
    pub fn trait_module(mut self, name: impl Into<String>, module: impl Into<String>) -> Self {
        self.trait_modules.push((name.into(), module.into()));
        self
    }

    /// The module a trait service is declared in, if mapped.
    fn module_of_trait(&self, service: &ServiceModel) -> Option<&str> {
        let full_name = service.full_name();
        self.trait_modules
            .iter()
            .find(|(name, _)| {
                service.rust_trait.as_deref() == Some(name.as_str()) || *name == full_name
            })
            .map(|(_, module)| module.trim_end_matches("::"))
    }

    /// The Rust types (request, response) of `method`'s transcoder, as strings.
    fn transcoder_types(
        &self,
        service: &ServiceModel,
        method: &MethodModel,
    ) -> Result<(String, String), Error> {
        if let Some(support) = service.trait_support_module() {
            let trait_name = service.rust_trait.as_deref().unwrap_or_default();
            let module = self.module_of_trait(service).ok_or_else(|| {
                Error::Config(format!(
                    "{}/{}: typed transcoders need the Rust module of trait `{trait_name}`: add \
                     `RoutesOptions::trait_module(\"{trait_name}\", \"crate::path::to::module\")` \
                     (CLI: `--trait-module {trait_name}=crate::path::to::module`)",
                    service.full_name(),
                    method.name
                ))
            })?;
            let request = method
                .json_request()
                .unwrap_or_else(|| method.request_alias());
            return Ok((
                format!("{module}::{support}::{request}"),
                format!("{module}::{support}::{}", method.response_alias()),
            ));
        }
        let resolve = |proto: &Option<String>, fallback: &str| {
            match proto {
            None => Ok(fallback.to_owned()),
            Some(proto) => proto_rust_path(proto, &self.proto_modules).ok_or_else(|| {
                let package = &service.package;
                Error::Config(format!(
                    "{}/{}: typed transcoders need the Rust module of proto package `{package}` \
                     (for `{proto}`): add `RoutesOptions::proto_module(\"{package}\", \"crate::path::to::module\")` \
                     (CLI: `--proto-module {package}=crate::path::to::module`)",
                    service.full_name(),
                    method.name
                ))
            }),
        }
        };
        Ok((
            resolve(&method.input_proto, &method.input_type)?,
            resolve(&method.output_proto, &method.output_type)?,
        ))
    }
}

/// The route stubs for `models` as tokens: `pub fn table() -> ::tonic_msgpack_gateway::RouteTable`.
///
/// # Errors
///
/// With `typed_transcoders` on: [`Error::Config`] when a service's module is not mapped (the
/// message says which option to add), [`Error::InvalidType`] when a type is not valid Rust.
pub fn generate(models: &[ServiceModel], options: &RoutesOptions) -> Result<TokenStream, Error> {
    let mut routes = Vec::new();
    for service in models {
        let full_name = service.full_name();
        for method in &service.methods {
            let name = &method.name;
            let kind = match method.kind {
                CallKind::Unary => quote!(CallKind::Unary),
                CallKind::ServerStreaming => quote!(CallKind::ServerStreaming),
                CallKind::ClientStreaming => quote!(CallKind::ClientStreaming),
                CallKind::Bidirectional => quote!(CallKind::Bidirectional),
            };
            let mut route = quote!(Route::new(#full_name, #name, #kind));
            if service.format == Format::Named {
                route = quote!(#route.format(Format::Named));
            }
            if let Some(http) = &method.http {
                let verb = &http.method;
                let path = &http.path;
                let body = match &http.body {
                    Some(body) => quote!(Some(#body)),
                    None => quote!(None),
                };
                route = quote!(#route.http(HttpBinding::new(#verb, #path, #body)));
            }
            if options.typed_transcoders {
                let parse = |ty: &str| {
                    syn::parse_str::<syn::Type>(ty).map_err(|err| Error::InvalidType {
                        service: full_name.clone(),
                        method: name.clone(),
                        ty: ty.to_owned(),
                        reason: err.to_string(),
                    })
                };
                let (input, output) = options.transcoder_types(service, method)?;
                let input = parse(&input)?;
                let output = parse(&output)?;
                let typed = match service.format {
                    Format::Compact => quote!(typed),
                    Format::Named => quote!(typed_named),
                };
                route = quote!(#route.transcoder(Transcoder::#typed::<#input, #output>()));
            }
            routes.push(route);
        }
    }
    let services: Vec<String> = models.iter().map(ServiceModel::full_name).collect();
    let doc = if services.is_empty() {
        " Gateway routes (no services).".to_owned()
    } else {
        format!(" Gateway routes of {}.", services.join(", "))
    };
    let transcoder_import = options.typed_transcoders.then(|| quote!(Transcoder,));
    let body = if routes.is_empty() {
        quote!(::tonic_msgpack_gateway::RouteTable::new())
    } else {
        quote! {
            #[allow(unused_imports)]
            use ::tonic_msgpack_gateway::{
                CallKind, Format, HttpBinding, Route, RouteTable, #transcoder_import
            };
            RouteTable::from_routes([#(#routes),*])
        }
    };
    Ok(quote! {
        #[doc = #doc]
        pub fn table() -> ::tonic_msgpack_gateway::RouteTable {
            #body
        }
    })
}

/// The header of every generated route file.
pub const HEADER: &str = "// @generated by tonic-msgpack-build (gateway route stubs). Do not edit:\n// regenerate with `tonic-msgpack routes` or from build.rs.\n\n";

/// The route stubs for `models` as a formatted Rust file with an `@generated` header.
///
/// # Errors
///
/// See [`generate`].
pub fn generate_file(models: &[ServiceModel], options: &RoutesOptions) -> Result<String, Error> {
    let tokens = generate(models, options)?;
    Ok(format!(
        "{HEADER}{}",
        crate::pretty(tokens, "gateway routes")?
    ))
}

/// Writes the route file for `models` to `path` (for `build.rs`: `$OUT_DIR/gateway_routes.rs`,
/// then `include!` it next to the message types).
///
/// # Errors
///
/// See [`generate`]; [`Error::Io`] when the file cannot be written.
pub fn write(models: &[ServiceModel], options: &RoutesOptions, path: &Path) -> Result<(), Error> {
    let text = generate_file(models, options)?;
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A human-readable listing of services and methods with paths and call kinds.
pub fn listing(models: &[ServiceModel]) -> String {
    let mut out = String::new();
    for service in models {
        out.push_str(&format!(
            "{} ({}, {} method{})\n",
            service.full_name(),
            service.format.as_str(),
            service.methods.len(),
            if service.methods.len() == 1 { "" } else { "s" }
        ));
        for method in &service.methods {
            out.push_str(&format!(
                "  {:<48} {:<16}",
                service.method_path(method),
                method.kind.as_str()
            ));
            if let Some(http) = &method.http {
                out.push_str(&format!(" {} {}", http.method, http.path));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HttpBinding, MethodModel};

    fn models() -> Vec<ServiceModel> {
        let mut hello = MethodModel::new(
            "SayHello",
            "super::HelloRequest",
            "super::HelloReply",
            CallKind::Unary,
        );
        hello.http = Some(HttpBinding {
            method: "GET".into(),
            path: "/v1/hello/{name}".into(),
            body: None,
        });
        vec![
            ServiceModel {
                package: "demo.v1".into(),
                name: "Greeter".into(),
                docs: vec![],
                format: Format::Compact,
                rust_trait: None,
                methods: vec![
                    hello,
                    MethodModel::new(
                        "Chat",
                        "super::Line",
                        "super::Line",
                        CallKind::Bidirectional,
                    ),
                ],
            },
            ServiceModel {
                package: String::new(),
                name: "Calc".into(),
                docs: vec![],
                format: Format::Named,
                rust_trait: None,
                methods: vec![MethodModel::new(
                    "Sum",
                    "(i64, i64)",
                    "i64",
                    CallKind::ClientStreaming,
                )],
            },
        ]
    }

    #[test]
    fn generates_one_route_per_method() {
        let file = generate_file(&models(), &RoutesOptions::default()).expect("generate");
        assert!(file.starts_with("// @generated"), "{file}");
        assert!(
            file.contains("Route::new(\"demo.v1.Greeter\", \"SayHello\", CallKind::Unary)"),
            "{file}"
        );
        assert!(
            file.contains(".http(HttpBinding::new(\"GET\", \"/v1/hello/{name}\", None))"),
            "{file}"
        );
        assert!(
            file.contains("Route::new(\"demo.v1.Greeter\", \"Chat\", CallKind::Bidirectional)"),
            "{file}"
        );
        assert!(
            file.contains("Route::new(\"Calc\", \"Sum\", CallKind::ClientStreaming)"),
            "{file}"
        );
        assert!(file.contains(".format(Format::Named)"), "{file}");
        assert!(!file.contains("Transcoder"), "{file}");
    }

    #[test]
    fn typed_transcoders_name_the_types() {
        let options = RoutesOptions::typed();
        let file = generate_file(&models(), &options).expect("generate");
        assert!(
            file.contains("Transcoder::typed::<super::HelloRequest, super::HelloReply>()"),
            "{file}"
        );
        assert!(
            file.contains("Transcoder::typed_named::<(i64, i64), i64>()"),
            "{file}"
        );
        let mut bad = models();
        bad[0].methods[0].input_type = "not a type!".into();
        let err = generate(&bad, &options).expect_err("invalid type");
        assert!(
            err.to_string().contains("demo.v1.Greeter/SayHello"),
            "{err}"
        );
    }

    /// `file` without whitespace (prettyplease breaks long lines).
    fn flat(file: &str) -> String {
        file.split_whitespace().collect()
    }

    #[test]
    fn typed_transcoders_use_absolute_paths() {
        let mut models = models();
        for method in &mut models[0].methods {
            method.input_proto = Some(".demo.v1.HelloRequest".into());
            method.output_proto = Some(".demo.v1.admin.Outer.Reply".into());
        }
        models[1].rust_trait = Some("Calc".into());
        models[1].methods.push(MethodModel::new(
            "Add",
            "(i64 , i64 ,)",
            "i64",
            CallKind::Unary,
        ));

        let err = generate(&models, &RoutesOptions::typed()).expect_err("unmapped package");
        let message = err.to_string();
        assert!(
            message.contains("demo.v1.Greeter/SayHello") && message.contains("proto_module"),
            "{message}"
        );
        let err = generate(&models, &RoutesOptions::typed().proto_module("", "crate"))
            .expect_err("unmapped trait");
        assert!(err.to_string().contains("trait_module(\"Calc\""), "{err}");

        let options = RoutesOptions::typed()
            .proto_module("", "crate")
            .proto_module("demo.v1", "crate::proto::")
            .trait_module("Calc", "crate::calc");
        let file = flat(&generate_file(&models, &options).expect("generate"));
        assert!(
            file.contains(
                "Transcoder::typed::<crate::proto::HelloRequest,crate::proto::admin::outer::Reply,>()"
            ),
            "{file}"
        );
        // Client streaming: the element type; unary: the JSON request type.
        assert!(
            file.contains(
                "Transcoder::typed_named::<crate::calc::__calc_msgpack::__SumRequest,crate::calc::__calc_msgpack::__SumResponse,>()"
            ),
            "{file}"
        );
        assert!(
            file.contains(
                "Transcoder::typed_named::<crate::calc::__calc_msgpack::__AddJson,crate::calc::__calc_msgpack::__AddResponse,>()"
            ),
            "{file}"
        );
        let by_service_name = RoutesOptions::typed()
            .proto_module("demo", "crate::demo")
            .trait_module("Calc", "crate::calc");
        let file = generate_file(&models, &by_service_name).expect("generate");
        assert!(file.contains("crate::demo::v1::HelloRequest"), "{file}");
    }

    #[test]
    fn proto_paths_follow_prost_layout() {
        let modules = vec![
            ("".to_owned(), "crate".to_owned()),
            ("demo.v1".to_owned(), "crate::proto".to_owned()),
        ];
        let path = |name: &str| proto_rust_path(name, &modules).expect("mapped");
        assert_eq!(path(".demo.v1.HelloRequest"), "crate::proto::HelloRequest");
        assert_eq!(path(".demo.v1.admin.User"), "crate::proto::admin::User");
        assert_eq!(path(".demo.v1.Outer.Inner"), "crate::proto::outer::Inner");
        assert_eq!(path(".other.v2.Msg"), "crate::other::v2::Msg");
        assert_eq!(path(".demo.v10.Msg"), "crate::demo::v10::Msg");
        assert_eq!(path(".demo.v1.Type"), "crate::proto::Type");
        assert_eq!(path(".google.protobuf.Empty"), "()");
        assert_eq!(proto_rust_path(".a.B", &[]), None);
    }

    #[test]
    fn empty_and_listing() {
        let file = generate_file(&[], &RoutesOptions::default()).expect("generate");
        assert!(file.contains("RouteTable::new()"), "{file}");
        let listing = listing(&models());
        assert!(listing.contains("/demo.v1.Greeter/Chat"), "{listing}");
        assert!(listing.contains("bidi_streaming"), "{listing}");
        assert!(listing.contains("GET /v1/hello/{name}"), "{listing}");
    }
}
