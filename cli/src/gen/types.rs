//! What a generated module holds and what its types are called: the same for every language,
//! so the Python, TypeScript and C# names of one contract line up.

use std::collections::{BTreeMap, BTreeSet};

use heck::ToUpperCamelCase;
use tonic_msgpack_build::model::contract::{Contract, Origin, Request, TypeRef};
use tonic_msgpack_build::model::{Format, KeyCase};

/// The messages and enums of a module, with each message's layout.
#[derive(Debug, Default)]
pub(super) struct Selection {
    pub(super) messages: BTreeSet<String>,
    pub(super) enums: BTreeSet<String>,
    pub(super) layouts: BTreeMap<String, (Format, KeyCase)>,
}

/// Every proto message and enum (compact, or named with `proto_key_case`), and the Rust types
/// the trait services reach (in their own layout, else their service's).
pub(super) fn select(contract: &Contract, proto_key_case: Option<KeyCase>) -> Selection {
    let mut selection = Selection::default();
    let proto_layout = match proto_key_case {
        Some(case) => (Format::Named, case),
        None => (Format::Compact, KeyCase::AsWritten),
    };
    for name in contract
        .messages
        .keys()
        .filter(|name| name.starts_with('.'))
    {
        selection.messages.insert(name.clone());
        selection.layouts.insert(name.clone(), proto_layout);
    }
    for name in contract.enums.keys().filter(|name| name.starts_with('.')) {
        selection.enums.insert(name.clone());
    }
    for service in &contract.services {
        if service.origin != Origin::Trait {
            continue;
        }
        let mut pending: Vec<TypeRef> = Vec::new();
        for method in &service.methods {
            if let Request::Args(args) = &method.request {
                pending.extend(args.iter().map(|a| a.ty.clone()));
            }
            pending.push(method.response.clone());
        }
        while let Some(ty) = pending.pop() {
            match ty {
                TypeRef::Message(name) if !selection.messages.contains(&name) => {
                    let Some(message) = contract.messages.get(&name) else {
                        continue;
                    };
                    let format = message.format.unwrap_or(service.model.format);
                    selection
                        .layouts
                        .insert(name.clone(), (format, message.key_case));
                    pending.extend(message.fields.iter().map(|f| f.ty.clone()));
                    selection.messages.insert(name);
                }
                TypeRef::Enum(name) => {
                    selection.enums.insert(name);
                }
                TypeRef::List(inner) | TypeRef::Optional(inner) => pending.push(*inner),
                TypeRef::Map(key, value) => {
                    pending.push(*key);
                    pending.push(*value);
                }
                TypeRef::Tuple(elements) => pending.extend(elements),
                _ => {}
            }
        }
    }
    selection
}

/// A type's name: the proto name without its package (`Outer_Inner` for nested ones), or the
/// Rust type's name.
pub(super) fn type_name(full_name: &str) -> String {
    match full_name.strip_prefix('.') {
        Some(rest) => {
            let segments: Vec<&str> = rest.split('.').collect();
            let split = segments
                .iter()
                .position(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
                .unwrap_or(segments.len().saturating_sub(1));
            segments[split..]
                .iter()
                .map(|s| s.to_upper_camel_case())
                .collect::<Vec<_>>()
                .join("_")
        }
        None => full_name.to_upper_camel_case(),
    }
}
