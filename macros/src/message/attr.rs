//! Attribute parsing: `#[msgpack(...)]` (ours) and `#[prost(...)]` (prost-build's output).

use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitInt, LitStr};

/// Attribute and key names, in one place.
pub(crate) mod sym {
    pub(crate) const MSGPACK: &str = "msgpack";
    pub(crate) const PROST: &str = "prost";
    pub(crate) const KEY: &str = "key";
    pub(crate) const SKIP: &str = "skip";
    pub(crate) const BYTES: &str = "bytes";
    pub(crate) const NAMED: &str = "named";
    pub(crate) const KEY_CASE: &str = "key_case";
    pub(crate) const PROTO_NAME: &str = "proto_name";
    pub(crate) const TAG: &str = "tag";
    pub(crate) const TAGS: &str = "tags";
    pub(crate) const ONEOF: &str = "oneof";
    pub(crate) const MAP: &str = "map";
    pub(crate) const BTREE_MAP: &str = "btree_map";
    pub(crate) const ENUMERATION: &str = "enumeration";
    pub(crate) const PROTO_VALUES: &str = "proto_values";
}

/// Collects every error instead of stopping at the first (serde's `Ctxt`).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub(crate) fn spanned(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

/// One attribute value that may be given once; the second occurrence is an error.
pub(crate) struct Once<T> {
    name: &'static str,
    value: Option<T>,
}

impl<T> Once<T> {
    pub(crate) fn new(name: &'static str) -> Self {
        Once { name, value: None }
    }

    pub(crate) fn set(&mut self, errors: &mut Errors, meta: &ParseNestedMeta<'_>, value: T) {
        if self.value.is_some() {
            errors.push(meta.error(format_args!("duplicate `{}` in #[msgpack(...)]", self.name)));
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}

pub(crate) use tonic_msgpack_core::KeyCase;

/// `#[msgpack(...)]` on the struct or enum.
pub(crate) struct ContainerAttrs {
    /// `Some` for the named layout.
    pub(crate) named: Option<KeyCase>,
    /// The proto full name (`demo.v1.HelloRequest`), for errors.
    pub(crate) proto_name: Option<String>,
    /// Proto names of an enum's values, in declaration order (set by the `.proto` build).
    pub(crate) proto_values: Option<Vec<String>>,
}

pub(crate) fn container(attrs: &[Attribute], errors: &mut Errors) -> ContainerAttrs {
    let mut named = Once::new(sym::NAMED);
    let mut key_case = Once::new(sym::KEY_CASE);
    let mut proto_name: Option<String> = None;
    let mut proto_values = Once::new(sym::PROTO_VALUES);
    for attr in attrs.iter().filter(|a| a.path().is_ident(sym::MSGPACK)) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(sym::NAMED) {
                named.set(errors, &meta, ());
            } else if meta.path.is_ident(sym::KEY_CASE) {
                let lit: LitStr = meta.value()?.parse()?;
                match lit.value().parse::<KeyCase>() {
                    Ok(case) => key_case.set(errors, &meta, case),
                    Err(err) => errors.push(syn::Error::new_spanned(&lit, err)),
                }
            } else if meta.path.is_ident(sym::PROTO_NAME) {
                // prost-build's `type_attribute` also matches path prefixes, so a nested type
                // sees its parents' names too: the longest one is its own.
                let lit: LitStr = meta.value()?.parse()?;
                let value = lit.value();
                if proto_name.as_ref().is_none_or(|old| old.len() < value.len()) {
                    proto_name = Some(value);
                }
            } else if meta.path.is_ident(sym::PROTO_VALUES) {
                let lit: LitStr = meta.value()?.parse()?;
                let names = lit.value().split(',').map(|n| n.trim().to_owned()).collect();
                proto_values.set(errors, &meta, names);
            } else {
                errors.push(meta.error(
                    "unknown container attribute: expected `named`, `key_case = \"...\"` or `proto_name = \"...\"`",
                ));
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = result {
            errors.push(err);
        }
    }
    let named = match (named.get(), key_case.get()) {
        (_, Some(case)) => Some(case),
        (Some(()), None) => Some(KeyCase::AsWritten),
        (None, None) => None,
    };
    ContainerAttrs {
        named,
        proto_name,
        proto_values: proto_values.get(),
    }
}

/// What the attributes of one field (or oneof variant) say.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `#[msgpack(key = N)]`: 0-based.
    pub(crate) key: Option<(u32, LitInt)>,
    /// A `key` was written, valid or not (no second "needs a key" error).
    pub(crate) key_seen: bool,
    pub(crate) skip: bool,
    pub(crate) bytes: bool,
    /// `#[prost(tag = "N")]`.
    pub(crate) prost_tag: Option<u32>,
    /// `#[prost(oneof = "...", tags = "3, 4")]`.
    pub(crate) prost_oneof: Option<Vec<u32>>,
    /// `#[prost(enumeration = "Color")]`: the enum type of an `i32` field.
    pub(crate) enumeration: Option<syn::Path>,
}

pub(crate) fn field(attrs: &[Attribute], errors: &mut Errors, what: &str) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    let mut key = Once::new(sym::KEY);
    let mut skip = Once::new(sym::SKIP);
    let mut bytes = Once::new(sym::BYTES);
    for attr in attrs {
        let result = if attr.path().is_ident(sym::MSGPACK) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(sym::KEY) {
                    out.key_seen = true;
                    let lit: LitInt = meta.value()?.parse()?;
                    match lit.base10_parse::<u32>() {
                        Ok(n) if n < u32::MAX >> 3 => key.set(errors, &meta, (n, lit)),
                        _ => errors.spanned(
                            &lit,
                            "`key` must be a small non-negative integer (0-based field index)",
                        ),
                    }
                } else if meta.path.is_ident(sym::ONEOF) {
                    // `oneof = "3, 4"`: the 0-based keys of the members, like `key = N`.
                    let lit: LitStr = meta.value()?.parse()?;
                    let keys = lit
                        .value()
                        .split(',')
                        .map(|t| t.trim().parse::<u32>().map(|key| key + 1))
                        .collect::<Result<Vec<_>, _>>();
                    match keys {
                        Ok(tags) if !tags.is_empty() => {
                            out.key_seen = true;
                            out.prost_oneof = Some(tags);
                        }
                        _ => errors.spanned(&lit, "`oneof` takes the members' keys: oneof = \"3, 4\""),
                    }
                } else if meta.path.is_ident(sym::SKIP) {
                    skip.set(errors, &meta, ());
                } else if meta.path.is_ident(sym::BYTES) {
                    bytes.set(errors, &meta, ());
                } else {
                    errors.push(meta.error(format_args!(
                        "unknown {what} attribute: expected `key = N`, `oneof = \"N, M\"`, `skip` or `bytes`"
                    )));
                    skip_value(&meta)?;
                }
                Ok(())
            })
        } else if attr.path().is_ident(sym::PROST) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(sym::TAG) {
                    let lit: LitStr = meta.value()?.parse()?;
                    out.prost_tag = Some(lit.value().trim().parse().map_err(|_| {
                        syn::Error::new_spanned(&lit, "prost `tag` is not a field number")
                    })?);
                } else if meta.path.is_ident(sym::TAGS) {
                    let lit: LitStr = meta.value()?.parse()?;
                    let tags = lit
                        .value()
                        .split(',')
                        .map(|t| t.trim().parse::<u32>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| {
                            syn::Error::new_spanned(&lit, "prost `tags` are not field numbers")
                        })?;
                    out.prost_oneof = Some(tags);
                } else if meta.path.is_ident(sym::BYTES) {
                    out.bytes = true;
                    skip_value(&meta)?;
                } else if meta.path.is_ident(sym::MAP) || meta.path.is_ident(sym::BTREE_MAP) {
                    // `map = "string, bytes"`: values are bin.
                    if meta.input.peek(syn::Token![=]) {
                        let lit: LitStr = meta.value()?.parse()?;
                        let value = lit.value();
                        if value.split(',').nth(1).is_some_and(|v| v.trim() == "bytes") {
                            out.bytes = true;
                        }
                    }
                } else if meta.path.is_ident(sym::ENUMERATION) {
                    let lit: LitStr = meta.value()?.parse()?;
                    out.enumeration = Some(lit.parse()?);
                } else if meta.path.is_ident(sym::ONEOF) {
                    skip_value(&meta)?;
                    out.prost_oneof.get_or_insert_with(Vec::new);
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            })
        } else {
            Ok(())
        };
        if let Err(err) = result {
            errors.push(err);
        }
    }
    out.key = key.get();
    out.skip = skip.get().is_some();
    out.bytes |= bytes.get().is_some();
    out
}

/// Consumes `= value` or `(...)` after a key we do not interpret.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}
