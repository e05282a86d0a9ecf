//! The serde impls of `#[derive(Message)]`.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::ast::{self, Body, Container, Field, FieldKind, Variant};
use super::attr::KeyCase;

pub(crate) fn expand(container: &Container<'_>) -> TokenStream {
    let body = match &container.body {
        Body::Struct(fields) => {
            let serde = expand_struct(container, fields);
            let direct = super::direct::expand_struct(container, fields);
            quote!(#serde #direct)
        }
        Body::Oneof(variants) => {
            let serde = expand_oneof(container, variants);
            let direct = super::direct::expand_oneof(container, variants);
            quote!(#serde #direct)
        }
        Body::Enum(variants) => {
            let serde = expand_enum(container, variants);
            let direct = super::direct::expand_enum(container, variants);
            quote!(#serde #direct)
        }
    };
    dummy(body)
}

/// Stub impls next to a compile error, so only the real error shows.
pub(crate) fn fallback(input: &syn::DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    dummy(quote! {
        #[automatically_derived]
        impl #impl_generics _p::serde::Serialize for #ident #ty_generics #where_clause {
            fn serialize<S: _p::serde::Serializer>(&self, _: S) -> ::core::result::Result<S::Ok, S::Error> {
                ::core::result::Result::Err(<S::Error as _p::serde::ser::Error>::custom("invalid #[derive(Message)]"))
            }
        }

        #[automatically_derived]
        impl<'de> _p::serde::Deserialize<'de> for #ident #ty_generics #where_clause {
            fn deserialize<D: _p::serde::Deserializer<'de>>(_: D) -> ::core::result::Result<Self, D::Error> {
                ::core::result::Result::Err(<D::Error as _p::serde::de::Error>::custom("invalid #[derive(Message)]"))
            }
        }

        #[automatically_derived]
        impl #impl_generics _p::direct::MsgPackEncode for #ident #ty_generics #where_clause {
            fn encode_msgpack<B: _p::direct::BufMut>(&self, buf: &mut B) -> ::core::result::Result<(), _p::direct::EncodeError> {
                _p::direct::put_serde(buf, self)
            }
        }

        #[automatically_derived]
        impl #impl_generics _p::direct::MsgPackDecode for #ident #ty_generics #where_clause {
            fn decode_msgpack(_: &mut _p::direct::Reader<'_>) -> ::core::result::Result<Self, _p::direct::Declined> {
                ::core::result::Result::Err(_p::direct::Declined)
            }
        }
    })
}

/// `const _: () = { ... };` with a private alias for the support module (serde's `dummy.rs`).
fn dummy(body: TokenStream) -> TokenStream {
    quote! {
        #[allow(non_upper_case_globals, unused_mut, unused_labels, unused_qualifications, clippy::all)]
        const _: () = {
            use ::tonic_msgpack::codegen as _p;
            #body
        };
    }
}

fn key_case_tokens(case: KeyCase) -> TokenStream {
    match case {
        KeyCase::AsWritten => quote!(_p::KeyCase::AsWritten),
        KeyCase::Camel => quote!(_p::KeyCase::Camel),
        KeyCase::Pascal => quote!(_p::KeyCase::Pascal),
    }
}

pub(crate) fn var(field: &Field<'_>) -> syn::Ident {
    format_ident!("__field_{}", field.name)
}

/// A struct: compact array, named map, or (human-readable) a map by JSON name.
fn expand_struct(container: &Container<'_>, fields: &[Field<'_>]) -> TokenStream {
    let ident = container.ident;
    let message = &container.name;
    let wire = container.fields_on_wire(fields);

    let ser_json = ser_map(fields, KeyCase::Camel);
    let ser_wire = match container.named {
        Some(case) => ser_map(fields, case),
        None => ser_compact(container, fields),
    };

    let vars: Vec<_> = fields.iter().map(var).collect();
    let members: Vec<_> = fields.iter().map(|f| f.member).collect();
    let types: Vec<_> = fields.iter().map(|f| f.ty).collect();
    let declare = quote! {
        #( let mut #vars: #types = ::core::default::Default::default(); )*
    };
    let build = quote! { #ident { #( #members: #vars, )* } };

    // visit_seq: one statement per slot, stopping at a shorter array.
    let max = container.max_tag();
    let mut slots = Vec::new();
    for tag in 1..=max {
        let slot = wire.iter().find(|(t, _)| *t == tag);
        slots.push(match slot {
            None => quote! {
                if _p::serde::de::SeqAccess::next_element::<_p::serde::de::IgnoredAny>(&mut seq)?.is_none() {
                    break 'read;
                }
            },
            Some((tag, field)) => {
                let v = var(field);
                let name = &field.name;
                match &field.kind {
                    FieldKind::Oneof { inner, .. } => quote! {
                        match _p::serde::de::SeqAccess::next_element_seed(&mut seq, _p::OneofSeed::<#inner>::new(#tag))
                            .map_err(|e| _p::in_field(#message, #name, e))?
                        {
                            ::core::option::Option::Some(::core::option::Option::Some(value)) => #v = ::core::option::Option::Some(value),
                            ::core::option::Option::Some(::core::option::Option::None) => {}
                            ::core::option::Option::None => break 'read,
                        }
                    },
                    _ => {
                        let seed = seed(field);
                        quote! {
                            match _p::serde::de::SeqAccess::next_element_seed(&mut seq, #seed)
                                .map_err(|e| _p::in_field(#message, #name, e))?
                            {
                                ::core::option::Option::Some(value) => #v = value,
                                ::core::option::Option::None => break 'read,
                            }
                        }
                    }
                }
            }
        });
    }

    // visit_map: by field number, name in any spelling, or number.
    let mut arms = Vec::new();
    for field in fields {
        let v = var(field);
        let name = &field.name;
        match &field.kind {
            FieldKind::Plain { tag } | FieldKind::Bin { tag } | FieldKind::Enum { tag, .. } => {
                let seed = seed(field);
                arms.push(quote! {
                    ::core::option::Option::Some(#tag) => {
                        #v = _p::serde::de::MapAccess::next_value_seed(&mut map, #seed)
                            .map_err(|e| _p::in_field(#message, #name, e))?;
                    }
                });
            }
            FieldKind::Oneof { inner, tags } => arms.push(quote! {
                ::core::option::Option::Some(tag @ (#( #tags )|*)) => {
                    if let ::core::option::Option::Some(value) =
                        _p::serde::de::MapAccess::next_value_seed(&mut map, _p::OneofSeed::<#inner>::new(tag))
                            .map_err(|e| _p::in_field(#message, #name, e))?
                    {
                        #v = ::core::option::Option::Some(value);
                    }
                }
            }),
            FieldKind::Skip => {}
        }
    }

    let mut seen = BTreeSet::new();
    let mut name_arms = Vec::new();
    for field in fields {
        let tag = match &field.kind {
            FieldKind::Plain { tag } | FieldKind::Bin { tag } | FieldKind::Enum { tag, .. } => *tag,
            _ => continue,
        };
        let mut names = ast::spellings(&field.name);
        if let Some(case) = container.named {
            names.push(ast::cased(&field.name, case));
        }
        names.retain(|n| seen.insert(n.clone()));
        if !names.is_empty() {
            name_arms.push(quote! { #( #names )|* => ::core::option::Option::Some(#tag), });
        }
    }
    let oneof_lookups = fields.iter().filter_map(|field| match &field.kind {
        FieldKind::Oneof { inner, .. } => Some(quote! {
            if let ::core::option::Option::Some(tag) = <#inner as _p::Oneof>::tag_of(key) {
                return ::core::option::Option::Some(tag);
            }
        }),
        _ => None,
    });

    quote! {
        #[automatically_derived]
        impl _p::serde::Serialize for #ident {
            fn serialize<S: _p::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                if _p::serde::Serializer::is_human_readable(&serializer) {
                    #ser_json
                } else {
                    #ser_wire
                }
            }
        }

        #[automatically_derived]
        impl<'de> _p::serde::Deserialize<'de> for #ident {
            fn deserialize<D: _p::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                struct __Visitor;

                fn __tag_of(key: &str) -> ::core::option::Option<u32> {
                    match key {
                        #( #name_arms )*
                        _ => {
                            #( #oneof_lookups )*
                            ::core::option::Option::None
                        }
                    }
                }

                impl<'de> _p::serde::de::Visitor<'de> for __Visitor {
                    type Value = #ident;

                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        _p::expecting(f, #message)
                    }

                    fn visit_unit<E: _p::serde::de::Error>(self) -> ::core::result::Result<#ident, E> {
                        #declare
                        ::core::result::Result::Ok(#build)
                    }

                    fn visit_none<E: _p::serde::de::Error>(self) -> ::core::result::Result<#ident, E> {
                        self.visit_unit()
                    }

                    fn visit_seq<A: _p::serde::de::SeqAccess<'de>>(self, mut seq: A) -> ::core::result::Result<#ident, A::Error> {
                        #declare
                        'read: {
                            #( #slots )*
                            _p::drain_seq(&mut seq)?;
                        }
                        ::core::result::Result::Ok(#build)
                    }

                    fn visit_map<A: _p::serde::de::MapAccess<'de>>(self, mut map: A) -> ::core::result::Result<#ident, A::Error> {
                        #declare
                        while let ::core::option::Option::Some(key) =
                            _p::serde::de::MapAccess::next_key_seed(&mut map, _p::KeySeed(__tag_of))?
                        {
                            match key {
                                #( #arms )*
                                _ => {
                                    _p::serde::de::MapAccess::next_value::<_p::serde::de::IgnoredAny>(&mut map)?;
                                }
                            }
                        }
                        ::core::result::Result::Ok(#build)
                    }
                }

                _p::serde::Deserializer::deserialize_any(deserializer, __Visitor)
            }
        }
    }
}

/// The seed that decodes one field, `nil` → default.
fn seed(field: &Field<'_>) -> TokenStream {
    let ty = field.ty;
    match &field.kind {
        FieldKind::Bin { .. } => quote!(_p::Binary::<#ty>::new()),
        FieldKind::Enum { path, .. } => quote!(_p::EnumSeed::<#ty, #path>::new()),
        _ => quote!(_p::Plain::<#ty>::new()),
    }
}

/// The value expression that serializes a field.
fn ser_value(field: &Field<'_>) -> TokenStream {
    let member = field.member;
    match &field.kind {
        FieldKind::Bin { .. } => quote!(&_p::Bin(&self.#member)),
        FieldKind::Enum { path, .. } => quote!(&_p::EnumField::<_, #path>::new(&self.#member)),
        _ => quote!(&self.#member),
    }
}

/// Rule 3: an array where element i is field number i+1, `nil` in gaps.
fn ser_compact(container: &Container<'_>, fields: &[Field<'_>]) -> TokenStream {
    let wire = container.fields_on_wire(fields);
    let max = container.max_tag() as usize;
    let elements = (1..=container.max_tag()).map(|tag| match wire.iter().find(|(t, _)| *t == tag) {
        None => quote!(_p::serde::ser::SerializeSeq::serialize_element(&mut seq, &())?;),
        Some((tag, field)) => match &field.kind {
            FieldKind::Oneof { .. } => {
                let member = field.member;
                quote! {
                    match &self.#member {
                        ::core::option::Option::Some(value) if _p::Oneof::tag(value) == #tag => {
                            _p::serde::ser::SerializeSeq::serialize_element(&mut seq, &_p::OneofValue(value))?;
                        }
                        _ => _p::serde::ser::SerializeSeq::serialize_element(&mut seq, &())?,
                    }
                }
            }
            _ => {
                let value = ser_value(field);
                quote!(_p::serde::ser::SerializeSeq::serialize_element(&mut seq, #value)?;)
            }
        },
    });
    quote! {
        // A sequence of known length, not a tuple: rmp-serde's `BytesMode::ForceAll` would
        // turn a tuple of small integers into bin.
        let mut seq = _p::serde::Serializer::serialize_seq(serializer, ::core::option::Option::Some(#max))?;
        #( #elements )*
        _p::serde::ser::SerializeSeq::end(seq)
    }
}

/// Rule 4 / rule 7: a map keyed by name (oneofs: only the member that is set).
fn ser_map(fields: &[Field<'_>], case: KeyCase) -> TokenStream {
    let case_tokens = key_case_tokens(case);
    let mut fixed = 0usize;
    let mut entries = Vec::new();
    let mut oneof_counts = Vec::new();
    for field in fields {
        let member = field.member;
        match &field.kind {
            FieldKind::Skip => {}
            FieldKind::Oneof { .. } => {
                oneof_counts.push(quote!(+ usize::from(self.#member.is_some())));
                entries.push(quote! {
                    if let ::core::option::Option::Some(value) = &self.#member {
                        _p::serde::ser::SerializeMap::serialize_entry(
                            &mut map,
                            _p::Oneof::key(value, #case_tokens),
                            &_p::OneofValue(value),
                        )?;
                    }
                });
            }
            _ => {
                fixed += 1;
                let key = ast::cased(&field.name, case);
                let value = ser_value(field);
                entries.push(quote! {
                    _p::serde::ser::SerializeMap::serialize_entry(&mut map, #key, #value)?;
                });
            }
        }
    }
    quote! {
        let len = #fixed #( #oneof_counts )*;
        let mut map = _p::serde::Serializer::serialize_map(serializer, ::core::option::Option::Some(len))?;
        #( #entries )*
        _p::serde::ser::SerializeMap::end(map)
    }
}

/// A oneof enum: the struct that holds it serializes each member in its own slot.
fn expand_oneof(container: &Container<'_>, variants: &[Variant<'_>]) -> TokenStream {
    let ident = container.ident;
    let idents: Vec<_> = variants.iter().map(|v| v.ident).collect();
    let tags: Vec<_> = variants.iter().map(|v| v.tag).collect();
    let as_written: Vec<_> = variants
        .iter()
        .map(|v| ast::cased(&v.name, KeyCase::AsWritten))
        .collect();
    let camel: Vec<_> = variants
        .iter()
        .map(|v| ast::cased(&v.name, KeyCase::Camel))
        .collect();
    let pascal: Vec<_> = variants
        .iter()
        .map(|v| ast::cased(&v.name, KeyCase::Pascal))
        .collect();
    let mut seen = BTreeSet::new();
    let name_arms = variants.iter().filter_map(|v| {
        let mut names = ast::spellings(&v.name);
        names.retain(|n| seen.insert(n.clone()));
        let tag = v.tag;
        (!names.is_empty()).then(|| quote! { #( #names )|* => ::core::option::Option::Some(#tag), })
    });
    let ser_arms = variants.iter().map(|v| {
        let variant = v.ident;
        if v.bin {
            quote!(#ident::#variant(value) => _p::BinField::ser(value, serializer),)
        } else {
            quote!(#ident::#variant(value) => _p::serde::Serialize::serialize(value, serializer),)
        }
    });
    let de_arms = variants.iter().map(|v| {
        let variant = v.ident;
        let tag = v.tag;
        if v.bin {
            quote!(#tag => ::core::result::Result::Ok(::core::option::Option::Some(#ident::#variant(_p::BinField::de(deserializer)?))),)
        } else {
            quote!(#tag => ::core::result::Result::Ok(::core::option::Option::Some(#ident::#variant(_p::serde::Deserialize::deserialize(deserializer)?))),)
        }
    });
    quote! {
        #[automatically_derived]
        impl _p::Oneof for #ident {
            fn tag(&self) -> u32 {
                match self {
                    #( #ident::#idents(_) => #tags, )*
                }
            }

            fn key(&self, case: _p::KeyCase) -> &'static str {
                match (self, case) {
                    #(
                        (#ident::#idents(_), _p::KeyCase::AsWritten) => #as_written,
                        (#ident::#idents(_), _p::KeyCase::Camel) => #camel,
                        (#ident::#idents(_), _p::KeyCase::Pascal) => #pascal,
                    )*
                }
            }

            fn tag_of(key: &str) -> ::core::option::Option<u32> {
                match key {
                    #( #name_arms )*
                    _ => ::core::option::Option::None,
                }
            }

            fn serialize_value<S: _p::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                match self {
                    #( #ser_arms )*
                }
            }

            fn deserialize_value<'de, D: _p::serde::Deserializer<'de>>(
                tag: u32,
                deserializer: D,
            ) -> ::core::result::Result<::core::option::Option<Self>, D::Error> {
                match tag {
                    #( #de_arms )*
                    _ => {
                        <_p::serde::de::IgnoredAny as _p::serde::Deserialize>::deserialize(deserializer)?;
                        ::core::result::Result::Ok(::core::option::Option::None)
                    }
                }
            }
        }
    }
}

/// A unit-only enum: its integer value (JSON: its name).
fn expand_enum(container: &Container<'_>, values: &[ast::EnumValue<'_>]) -> TokenStream {
    let ident = container.ident;
    let message = &container.name;
    let variants: Vec<_> = values.iter().map(|v| v.ident).collect();
    let names: Vec<_> = values.iter().map(|v| &v.name).collect();
    let spellings: Vec<_> = values
        .iter()
        .map(|v| {
            let names = ast::enum_spellings(v);
            quote!(#( #names )|*)
        })
        .collect();
    quote! {
        #[automatically_derived]
        impl _p::serde::Serialize for #ident {
            fn serialize<S: _p::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                if _p::serde::Serializer::is_human_readable(&serializer) {
                    let name = match self {
                        #( #ident::#variants => #names, )*
                    };
                    _p::serde::Serializer::serialize_str(serializer, name)
                } else {
                    let value = match self {
                        #( #ident::#variants => #ident::#variants as i64, )*
                    };
                    _p::serde::Serializer::serialize_i64(serializer, value)
                }
            }
        }

        #[automatically_derived]
        impl _p::ProtoEnum for #ident {
            fn name_of(value: i32) -> ::core::option::Option<&'static str> {
                #(
                    if i64::from(value) == #ident::#variants as i64 {
                        return ::core::option::Option::Some(#names);
                    }
                )*
                ::core::option::Option::None
            }

            fn value_of(name: &str) -> ::core::option::Option<i32> {
                match name {
                    #( #spellings => ::core::option::Option::Some(#ident::#variants as i32), )*
                    _ => ::core::option::Option::None,
                }
            }
        }

        #[automatically_derived]
        impl<'de> _p::serde::Deserialize<'de> for #ident {
            fn deserialize<D: _p::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                fn from_i64(value: i64) -> ::core::option::Option<#ident> {
                    #(
                        if value == #ident::#variants as i64 {
                            return ::core::option::Option::Some(#ident::#variants);
                        }
                    )*
                    ::core::option::Option::None
                }
                fn from_name(name: &str) -> ::core::option::Option<#ident> {
                    match name {
                        #( #spellings => ::core::option::Option::Some(#ident::#variants), )*
                        _ => ::core::option::Option::None,
                    }
                }
                _p::serde::Deserializer::deserialize_any(
                    deserializer,
                    _p::EnumVisitor { name: #message, from_i64, from_name },
                )
            }
        }
    }
}

impl Container<'_> {
    /// (field number, field) for every slot that holds a field.
    pub(crate) fn fields_on_wire<'f, 'a>(
        &self,
        fields: &'f [Field<'a>],
    ) -> Vec<(u32, &'f Field<'a>)> {
        fields
            .iter()
            .flat_map(|field| field.tags().into_iter().map(move |tag| (tag, field)))
            .collect()
    }
}
