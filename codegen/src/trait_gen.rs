//! Back end of `#[msgpack_service]`: a Rust trait → tonic server and client speaking
//! MessagePack. The proc-macro only calls [`expand`]; keeping the expansion here lets it be
//! snapshot-tested as ordinary code.
//!
//! The expansion, for `trait Calculator`:
//! - the trait itself, with each `async fn` desugared to `fn … -> impl Future<…> + Send`
//!   (tonic's server needs `Send` futures);
//! - a hidden module holding one type alias per request/response message and the server and
//!   client modules that tonic-build generates from the shared model;
//! - a blanket impl of tonic's server trait for every `T: Calculator`, which unpacks the
//!   wire message into the trait method's arguments;
//! - `CalculatorServer<T>` (tonic's) and a typed `CalculatorClient<T>` whose methods take
//!   the trait's arguments and return its values.

use crate::model::{MethodModel, ServiceModel};
use crate::tonic_gen::{self, TonicOptions};
use crate::traits::{self, TraitMethod, TraitService};
use heck::ToSnakeCase;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

/// Expands `#[msgpack_service(args)]` on `item`. Never fails: errors become `compile_error!`s
/// next to the trait, so the user sees the real problem and nothing else.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut trait_item = match syn::parse2::<syn::ItemTrait>(item.clone()) {
        Ok(trait_item) => trait_item,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "#[msgpack_service] goes on a trait: `#[msgpack_service] trait Calculator { async fn add(&self, a: i64, b: i64) -> Result<i64, Status>; }`",
            );
            let error = error.into_compile_error();
            return quote!(#error #item);
        }
    };
    let result =
        traits::parse_trait(&trait_item, args).and_then(|service| generate(&trait_item, &service));
    match result {
        Ok(generated) => {
            desugar_trait(&mut trait_item);
            quote!(#trait_item #generated)
        }
        Err(error) => {
            // Keep the trait so its users see only the real errors, not a flood of
            // "cannot find trait" ones.
            strip_rpc_attributes(&mut trait_item);
            let error = error.into_compile_error();
            quote!(#error #trait_item)
        }
    }
}

fn strip_rpc_attributes(trait_item: &mut syn::ItemTrait) {
    for item in &mut trait_item.items {
        if let syn::TraitItem::Fn(function) = item {
            function.attrs.retain(|attr| !attr.path().is_ident("rpc"));
        }
    }
}

/// `async fn f(&self, …) -> R` → `fn f(&self, …) -> impl Future<Output = R> + Send`.
fn desugar_trait(trait_item: &mut syn::ItemTrait) {
    strip_rpc_attributes(trait_item);
    trait_item
        .supertraits
        .push(syn::parse_quote!(::core::marker::Send));
    trait_item
        .supertraits
        .push(syn::parse_quote!(::core::marker::Sync));
    trait_item.supertraits.push(syn::parse_quote!('static));
    for item in &mut trait_item.items {
        let syn::TraitItem::Fn(function) = item else {
            continue;
        };
        function.sig.asyncness = None;
        let output = match &function.sig.output {
            syn::ReturnType::Type(_, ty) => quote!(#ty),
            syn::ReturnType::Default => quote!(()),
        };
        function.sig.output = syn::parse_quote! {
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
        if let Some(body) = &mut function.default {
            let stmts = &body.stmts;
            *body = syn::parse_quote!({ async move { #(#stmts)* } });
        }
    }
}

fn generate(trait_item: &syn::ItemTrait, service: &TraitService) -> syn::Result<TokenStream> {
    let model = &service.model;
    let vis = &trait_item.vis;
    let trait_ident = &trait_item.ident;
    let hidden = match model.trait_support_module() {
        Some(module) => format_ident!("{module}"),
        None => format_ident!("__{}_msgpack", trait_ident.to_string().to_snake_case()),
    };
    let server_mod = format_ident!("{}", model.server_module());
    let client_mod = format_ident!("{}", model.client_module());
    let service_ident = format_ident!("{}", model.name);
    let server_ident = format_ident!("{}Server", model.name);
    let client_ident = format_ident!("{}Client", model.name);

    let aliases = service
        .methods
        .iter()
        .zip(&model.methods)
        .map(|(method, model)| {
            let (request, response) = alias_idents(model);
            let request_type = method.request_type();
            let response_type = &method.response;
            let json = json_request(method, model);
            quote! {
                pub type #request = #request_type;
                pub type #response = #response_type;
                #json
            }
        });

    // tonic-build sees the aliases, which resolve in the hidden module's scope.
    let mut tonic_model = ServiceModel {
        methods: model.methods.clone(),
        ..model.clone()
    };
    for method in &mut tonic_model.methods {
        let (request, response) = alias_idents(method);
        method.input_type = format!("super::{request}");
        method.output_type = format!("super::{response}");
    }
    let tonic_code = tonic_gen::generate(&tonic_model, &TonicOptions::default())
        .map_err(|error| syn::Error::new(Span::call_site(), error))?;

    let adapter_methods = service
        .methods
        .iter()
        .zip(&model.methods)
        .map(|(method, model)| adapter_method(trait_ident, method, model));
    let client_methods = service
        .methods
        .iter()
        .zip(&model.methods)
        .map(|(method, model)| client_method(method, model));
    let client_doc = format!(
        "Typed client of `{}` (MessagePack over gRPC). Use [`{client_ident}::raw`] to send request metadata.",
        model.full_name()
    );
    let service_name = model.full_name();

    Ok(quote! {
        #[doc(hidden)]
        #[allow(
            // tonic-build output; the aliases name one wire message each.
            missing_docs,
            missing_debug_implementations,
            unreachable_pub,
            clippy::type_complexity,
            clippy::unused_unit,
        )]
        #vis mod #hidden {
            use super::*;
            #(#aliases)*
            #tonic_code

            #[::tonic::codegen::async_trait]
            impl<T: super::#trait_ident> #server_mod::#service_ident for T {
                #(#adapter_methods)*
            }
        }

        #vis use #hidden::#server_mod;
        #vis use #hidden::#server_mod::#server_ident;

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client_ident<T = ::tonic::transport::Channel> {
            inner: #hidden::#client_mod::#client_ident<T>,
        }

        impl #client_ident<::tonic::transport::Channel> {
            /// Connects to `dst` (e.g. `"http://127.0.0.1:50051"`).
            pub async fn connect<D>(dst: D) -> ::core::result::Result<Self, ::tonic::transport::Error>
            where
                D: ::core::convert::TryInto<::tonic::transport::Endpoint>,
                D::Error: ::core::convert::Into<::tonic::codegen::StdError>,
            {
                #hidden::#client_mod::#client_ident::connect(dst).await.map(Self::from_raw)
            }
        }

        impl<T> #client_ident<T>
        where
            T: ::tonic::client::GrpcService<::tonic::body::Body>,
            T::Error: ::core::convert::Into<::tonic::codegen::StdError>,
            T::ResponseBody: ::tonic::codegen::Body<Data = ::tonic::codegen::Bytes> + ::core::marker::Send + 'static,
            <T::ResponseBody as ::tonic::codegen::Body>::Error: ::core::convert::Into<::tonic::codegen::StdError> + ::core::marker::Send,
        {
            /// The name of the service on the wire.
            pub const SERVICE_NAME: &'static str = #service_name;

            /// A client over any gRPC transport (a `Channel`, an intercepted service…).
            pub fn new(inner: T) -> Self {
                Self::from_raw(#hidden::#client_mod::#client_ident::new(inner))
            }

            /// Wraps the tonic-generated client.
            pub fn from_raw(inner: #hidden::#client_mod::#client_ident<T>) -> Self {
                Self { inner }
            }

            /// The tonic-generated client, whose methods take a `tonic::Request` (metadata,
            /// timeouts, extensions) and return a `tonic::Response`.
            pub fn raw(&mut self) -> &mut #hidden::#client_mod::#client_ident<T> {
                &mut self.inner
            }

            /// Compresses requests with `encoding`.
            #[must_use]
            pub fn send_compressed(self, encoding: ::tonic::codec::CompressionEncoding) -> Self {
                Self::from_raw(self.inner.send_compressed(encoding))
            }

            /// Accepts responses compressed with `encoding`.
            #[must_use]
            pub fn accept_compressed(self, encoding: ::tonic::codec::CompressionEncoding) -> Self {
                Self::from_raw(self.inner.accept_compressed(encoding))
            }

            /// Limits the size of a decoded response message (default 4 MiB).
            #[must_use]
            pub fn max_decoding_message_size(self, limit: usize) -> Self {
                Self::from_raw(self.inner.max_decoding_message_size(limit))
            }

            /// Limits the size of an encoded request message (default `usize::MAX`).
            #[must_use]
            pub fn max_encoding_message_size(self, limit: usize) -> Self {
                Self::from_raw(self.inner.max_encoding_message_size(limit))
            }

            #(#client_methods)*
        }
    })
}

/// `Add` → (`AddRequest`, `AddResponse`), named as [`MethodModel`] names them for route stubs.
fn alias_idents(model: &MethodModel) -> (syn::Ident, syn::Ident) {
    (
        format_ident!("{}", model.request_alias()),
        format_ident!("{}", model.response_alias()),
    )
}

/// The REST request type of a method (`AddJson`), for the gateway's typed transcoders: it
/// deserializes from a JSON object keyed by argument name (`{"a": 1, "b": 2}`; `{}` for no
/// arguments) and serializes as the wire message of rule 6 (nil, the bare value, or an array
/// of the arguments in order), the same in the compact and named layouts. Client-streaming
/// methods have none.
fn json_request(method: &TraitMethod, model: &MethodModel) -> TokenStream {
    let Some(name) = model.json_request() else {
        return TokenStream::new();
    };
    if method.request_stream.is_some() {
        return TokenStream::new();
    }
    let ident = format_ident!("{name}");
    let serde = quote!(::tonic_msgpack::codegen::serde);
    let doc = format!(
        " REST request of `{}`: a JSON object keyed by argument name; on the wire, the call's message.",
        model.name
    );
    let fields = method.args.iter().map(|(name, ty)| quote!(pub #name: #ty,));
    let names: Vec<_> = method.args.iter().map(|(name, _)| name).collect();
    let body = match names.as_slice() {
        [] => quote!(serializer.serialize_unit()),
        [single] => quote!(#serde::Serialize::serialize(&self.#single, serializer)),
        several => {
            let len = proc_macro2::Literal::usize_unsuffixed(several.len());
            quote! {
                use #serde::ser::SerializeTuple as _;
                let mut tuple = serializer.serialize_tuple(#len)?;
                #(tuple.serialize_element(&self.#several)?;)*
                tuple.end()
            }
        }
    };
    quote! {
        #[doc = #doc]
        #[derive(#serde::Deserialize)]
        #[serde(crate = "::tonic_msgpack::codegen::serde")]
        pub struct #ident {
            #(#fields)*
        }

        impl #serde::Serialize for #ident {
            fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
            where
                S: #serde::Serializer,
            {
                #body
            }
        }
    }
}

/// One method of tonic's server trait, calling the user's trait method.
fn adapter_method(
    trait_ident: &syn::Ident,
    method: &TraitMethod,
    model: &MethodModel,
) -> TokenStream {
    let ident = &method.ident;
    let (request_alias, response_alias) = alias_idents(model);
    let stream_ident = format_ident!("{}Stream", model.name);
    let arg_idents: Vec<_> = method.args.iter().map(|(ident, _)| ident).collect();

    // The call's arguments in declared order, with the metadata where the trait wants it.
    let mut call_args: Vec<TokenStream> = if method.request_stream.is_some() {
        vec![quote!(::tonic_msgpack::Streaming::new(__message))]
    } else {
        arg_idents.iter().map(|ident| quote!(#ident)).collect()
    };
    let metadata_binding = match method.metadata_position {
        Some(position) => {
            call_args.insert(position.min(call_args.len()), quote!(&__metadata));
            quote!(__metadata)
        }
        None => quote!(_),
    };
    let unpack = if method.request_stream.is_some() {
        quote!()
    } else {
        match arg_idents.as_slice() {
            [] => quote!(let () = __message;),
            [single] => quote!(let #single = __message;),
            several => quote!(let (#(#several,)*) = __message;),
        }
    };
    let request_type = if method.request_stream.is_some() {
        quote!(::tonic::Streaming<#request_alias>)
    } else {
        quote!(#request_alias)
    };
    let call = quote! {
        let (#metadata_binding, _, __message) = request.into_parts();
        #unpack
        <T as super::#trait_ident>::#ident(self, #(#call_args),*)
            .await
            .map(::tonic::Response::new)
    };
    if method.response_stream {
        quote! {
            type #stream_ident = ::tonic_msgpack::ServerStream<#response_alias>;

            async fn #ident(
                &self,
                request: ::tonic::Request<#request_type>,
            ) -> ::core::result::Result<::tonic::Response<Self::#stream_ident>, ::tonic::Status> {
                #call
            }
        }
    } else {
        quote! {
            async fn #ident(
                &self,
                request: ::tonic::Request<#request_type>,
            ) -> ::core::result::Result<::tonic::Response<#response_alias>, ::tonic::Status> {
                #call
            }
        }
    }
}

/// One typed method of the client wrapper.
fn client_method(method: &TraitMethod, model: &MethodModel) -> TokenStream {
    let ident = &method.ident;
    let response = &method.response;
    let path = format!("`{}`", model.name);
    let mut doc = model.docs.clone();
    if doc.is_empty() {
        doc.push(format!(" Calls {path}."));
    }
    let (params, message) = match (&method.request_stream, method.args.as_slice()) {
        (Some(element), [(name, _)]) => (
            quote!(#name: impl ::tonic_msgpack::codegen::Stream<Item = #element> + ::core::marker::Send + 'static),
            quote!(#name),
        ),
        (Some(element), _) => (
            quote!(messages: impl ::tonic_msgpack::codegen::Stream<Item = #element> + ::core::marker::Send + 'static),
            quote!(messages),
        ),
        (None, args) => {
            let params = args.iter().map(|(name, ty)| quote!(#name: #ty));
            let names: Vec<_> = args.iter().map(|(name, _)| name).collect();
            let message = match names.as_slice() {
                [single] => quote!(#single),
                several => quote!((#(#several,)*)),
            };
            (quote!(#(#params),*), message)
        }
    };
    let (output, convert) = if method.response_stream {
        (
            quote!(::tonic_msgpack::Streaming<#response>),
            quote!(::tonic_msgpack::Streaming::new(response.into_inner())),
        )
    } else {
        (quote!(#response), quote!(response.into_inner()))
    };
    quote! {
        #(#[doc = #doc])*
        pub async fn #ident(&mut self, #params) -> ::core::result::Result<#output, ::tonic::Status> {
            let response = self.inner.#ident(#message).await?;
            ::core::result::Result::Ok(#convert)
        }
    }
}
