//! The typed model of a `#[derive(Message)]` input, and the checks that span fields.

use std::collections::BTreeMap;

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::Span;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use super::attr::{self, Errors, KeyCase};

/// Above this many slots a compact array must not be more than 4× sparse (rule 3).
const SPARSE_MIN_SLOTS: u32 = 16;

pub(crate) struct Container<'a> {
    pub(crate) ident: &'a Ident,
    /// For errors: the proto full name, or the Rust type name.
    pub(crate) name: String,
    /// `Some` for the named layout (rule 4).
    pub(crate) named: Option<KeyCase>,
    pub(crate) body: Body<'a>,
}

pub(crate) enum Body<'a> {
    Struct(Vec<Field<'a>>),
    /// A prost `Oneof` enum: every variant is one member with its own field number.
    Oneof(Vec<Variant<'a>>),
    /// A unit-only enum (prost `Enumeration`): an integer on the wire.
    Enum(Vec<EnumValue<'a>>),
}

pub(crate) struct EnumValue<'a> {
    pub(crate) ident: &'a Ident,
    /// The proto name (`COLOR_RED`), or the Rust name for hand-written enums.
    pub(crate) name: String,
}

pub(crate) struct Field<'a> {
    pub(crate) member: &'a Ident,
    pub(crate) ty: &'a Type,
    /// Proto field name as written (the Rust name without `r#`).
    pub(crate) name: String,
    pub(crate) kind: FieldKind<'a>,
}

pub(crate) enum FieldKind<'a> {
    /// Plain serde, one slot.
    Plain { tag: u32 },
    /// A prost enum field (`i32`, `Option<i32>`, `Vec<i32>`): ints, names in JSON.
    Enum { tag: u32, path: syn::Path },
    /// `bytes`: bin, one slot.
    Bin { tag: u32 },
    /// A oneof (`Option<TheOneofEnum>`): one slot per member.
    Oneof { inner: &'a Type, tags: Vec<u32> },
    /// `#[msgpack(skip)]`: not on the wire, default when decoding.
    Skip,
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    /// The member's value type.
    pub(crate) ty: &'a Type,
    pub(crate) tag: u32,
    pub(crate) bin: bool,
    /// The member name as written in the proto (`snake_case`).
    pub(crate) name: String,
}

impl<'a> Container<'a> {
    pub(crate) fn from_ast(input: &'a DeriveInput) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let attrs = attr::container(&input.attrs, &mut errors);
        if !input.generics.params.is_empty() {
            errors.spanned(
                &input.generics,
                "#[derive(Message)] does not support generic types: use a concrete type",
            );
        }
        let body = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => {
                    let fields = fields
                        .named
                        .iter()
                        .filter_map(|field| Field::from_ast(field, &mut errors))
                        .collect();
                    Body::Struct(fields)
                }
                _ => {
                    errors.spanned(
                        &input.ident,
                        "#[derive(Message)] needs a struct with named fields (each with #[msgpack(key = N)])",
                    );
                    Body::Struct(Vec::new())
                }
            },
            Data::Enum(data) if data.variants.iter().all(|v| v.fields.is_empty()) => {
                for variant in &data.variants {
                    attr::field(&variant.attrs, &mut errors, "enum variant");
                }
                let names = attrs
                    .proto_values
                    .as_ref()
                    .filter(|names| names.len() == data.variants.len());
                Body::Enum(
                    data.variants
                        .iter()
                        .enumerate()
                        .map(|(i, v)| EnumValue {
                            ident: &v.ident,
                            name: names.map_or_else(|| v.ident.to_string(), |n| n[i].clone()),
                        })
                        .collect(),
                )
            }
            Data::Enum(data) => {
                let is_member = |v: &syn::Variant| matches!(&v.fields, Fields::Unnamed(f) if f.unnamed.len() == 1);
                if let Some(bad) = data.variants.iter().find(|v| !is_member(v)) {
                    errors.spanned(
                        &bad.ident,
                        "#[derive(Message)] on an enum needs unit variants (an enumeration) or \
                         one-field tuple variants (a oneof), not a mix",
                    );
                    Body::Oneof(Vec::new())
                } else {
                    Body::Oneof(
                        data.variants
                            .iter()
                            .filter_map(|variant| Variant::from_ast(variant, &mut errors))
                            .collect(),
                    )
                }
            }
            Data::Union(_) => {
                errors.spanned(&input.ident, "#[derive(Message)] does not support unions");
                Body::Struct(Vec::new())
            }
        };
        let container = Container {
            ident: &input.ident,
            name: attrs.proto_name.unwrap_or_else(|| input.ident.to_string()),
            named: attrs.named,
            body,
        };
        container.check(&mut errors);
        errors.finish()?;
        Ok(container)
    }

    /// Field numbers are unique; a compact array is not too sparse.
    fn check(&self, errors: &mut Errors) {
        let mut seen = BTreeMap::new();
        let mut check_tag = |tag: u32, name: &str, span: Span, errors: &mut Errors| {
            if let Some(first) = seen.insert(tag, name.to_owned()) {
                errors.push(syn::Error::new(
                    span,
                    format_args!(
                        "field number {tag} (key = {}) of `{name}` is already used by `{first}`",
                        tag - 1
                    ),
                ));
            }
        };
        match &self.body {
            Body::Struct(fields) => {
                for field in fields {
                    for tag in field.tags() {
                        check_tag(tag, &field.name, field.member.span(), errors);
                    }
                }
            }
            Body::Oneof(variants) => {
                for variant in variants {
                    check_tag(variant.tag, &variant.name, variant.ident.span(), errors);
                }
            }
            Body::Enum(_) => {}
        }
        if let (Body::Struct(_), None) = (&self.body, self.named) {
            let count = seen.len() as u32;
            let max = self.max_tag();
            if max > SPARSE_MIN_SLOTS && max > count.saturating_mul(4) {
                errors.spanned(
                    self.ident,
                    format_args!(
                        "`{}` would be a {max}-element array for {count} fields (over 4x sparse): \
                         use #[msgpack(named)] or smaller keys",
                        self.name
                    ),
                );
            }
        }
    }

    /// The highest field number: the length of the compact array.
    pub(crate) fn max_tag(&self) -> u32 {
        match &self.body {
            Body::Struct(fields) => fields.iter().flat_map(Field::tags).max().unwrap_or(0),
            Body::Oneof(variants) => variants.iter().map(|v| v.tag).max().unwrap_or(0),
            Body::Enum(_) => 0,
        }
    }
}

impl<'a> Field<'a> {
    fn from_ast(field: &'a syn::Field, errors: &mut Errors) -> Option<Self> {
        let member = field.ident.as_ref()?;
        let name = member.to_string().trim_start_matches("r#").to_owned();
        let attrs = attr::field(&field.attrs, errors, "field");
        let kind = if attrs.skip {
            FieldKind::Skip
        } else if let Some(tags) = attrs.prost_oneof {
            match option_inner(&field.ty) {
                Some(inner) => FieldKind::Oneof { inner, tags },
                None => {
                    errors.spanned(&field.ty, "a prost oneof field must be an `Option<...>`");
                    return None;
                }
            }
        } else {
            let tag = match (attrs.key, attrs.prost_tag) {
                (Some((key, _)), _) => key + 1,
                (None, Some(tag)) => tag,
                (None, None) if attrs.key_seen => return None,
                (None, None) => {
                    errors.spanned(
                        member,
                        format_args!(
                            "field `{name}` needs #[msgpack(key = N)] (0-based, like MessagePack-CSharp's [Key(N)]) or #[msgpack(skip)]"
                        ),
                    );
                    return None;
                }
            };
            if tag == 0 {
                errors.spanned(member, "field number 0 is not valid");
                return None;
            }
            if attrs.bytes || is_bytes_type(&field.ty) {
                FieldKind::Bin { tag }
            } else if let Some(path) = attrs.enumeration {
                FieldKind::Enum { tag, path }
            } else {
                FieldKind::Plain { tag }
            }
        };
        Some(Field {
            member,
            ty: &field.ty,
            name,
            kind,
        })
    }

    /// The field numbers this field occupies.
    pub(crate) fn tags(&self) -> Vec<u32> {
        match &self.kind {
            FieldKind::Plain { tag } | FieldKind::Bin { tag } | FieldKind::Enum { tag, .. } => {
                vec![*tag]
            }
            FieldKind::Oneof { tags, .. } => tags.clone(),
            FieldKind::Skip => Vec::new(),
        }
    }
}

impl<'a> Variant<'a> {
    fn from_ast(variant: &'a syn::Variant, errors: &mut Errors) -> Option<Self> {
        let ty = match &variant.fields {
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => &fields.unnamed[0].ty,
            _ => {
                errors.spanned(
                    &variant.ident,
                    "#[derive(Message)] on an enum needs unit variants (an enumeration) or \
                     one-field tuple variants (a oneof), not a mix",
                );
                return None;
            }
        };
        let attrs = attr::field(&variant.attrs, errors, "variant");
        let tag = match (attrs.key, attrs.prost_tag) {
            (Some((key, _)), _) => key + 1,
            (None, Some(tag)) => tag,
            (None, None) if attrs.key_seen => return None,
            (None, None) => {
                errors.spanned(
                    &variant.ident,
                    format_args!(
                        "oneof member `{}` needs #[msgpack(key = N)] or a prost tag",
                        variant.ident
                    ),
                );
                return None;
            }
        };
        Some(Variant {
            ident: &variant.ident,
            ty,
            tag,
            bin: attrs.bytes || is_bytes_type(ty),
            name: variant.ident.to_string().to_snake_case(),
        })
    }
}

/// `T` of `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}

/// `Vec<u8>`, `Bytes`, or an `Option` of them: also prost's `google.protobuf.BytesValue`,
/// whose attribute says `message`, not `bytes`.
fn is_bytes_type(ty: &Type) -> bool {
    if let Some(inner) = option_inner(ty) {
        return is_bytes_type(inner);
    }
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    if last.ident == "Bytes" {
        return true;
    }
    if last.ident != "Vec" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    matches!(args.args.first(), Some(syn::GenericArgument::Type(Type::Path(p))) if p.path.is_ident("u8"))
}

/// The proto JSON name: `foo_bar_2` → `fooBar2` (protobuf's `ToJsonName`).
pub(crate) fn json_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The key of a field in a named layout.
pub(crate) fn cased(name: &str, case: KeyCase) -> String {
    match case {
        KeyCase::AsWritten => name.to_owned(),
        KeyCase::Camel => json_name(name),
        KeyCase::Pascal => name.to_upper_camel_case(),
    }
}

/// Every spelling a decoder accepts for a field name.
pub(crate) fn spellings(name: &str) -> Vec<String> {
    let mut out = vec![name.to_owned(), json_name(name), name.to_upper_camel_case()];
    out.dedup();
    out
}

/// Every spelling a decoder accepts for an enum value name.
pub(crate) fn enum_spellings(value: &EnumValue<'_>) -> Vec<String> {
    let ident = value.ident.to_string();
    let mut out = vec![
        value.name.clone(),
        ident.clone(),
        ident.to_shouty_snake_case(),
    ];
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}
