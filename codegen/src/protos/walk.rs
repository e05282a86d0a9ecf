//! The one walk over every message and enum of a file (nested ones too), and what is built on
//! it: the per-type attributes of the build and the sparse-array check of wire format rule 3.

use std::collections::BTreeSet;

use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};

use crate::Error;

/// A type met by [`visit_types`], with its full proto name without the leading dot
/// (`demo.v1.Outer.Inner`).
#[derive(Debug, Clone, Copy)]
pub enum TypeVisit<'a> {
    /// A message (map entries are skipped: they are not types of their own).
    Message(&'a str, &'a DescriptorProto),
    /// An enum.
    Enum(&'a str, &'a EnumDescriptorProto),
}

/// Calls `visit` for every message and enum of `file`, depth first (nested types before their
/// parent), stopping at the first error.
pub fn visit_types<E>(
    file: &FileDescriptorProto,
    visit: &mut impl FnMut(TypeVisit<'_>) -> Result<(), E>,
) -> Result<(), E> {
    fn message<E>(
        prefix: &str,
        descriptor: &DescriptorProto,
        visit: &mut impl FnMut(TypeVisit<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let name = join(prefix, descriptor.name());
        for nested in &descriptor.nested_type {
            if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                message(&name, nested, visit)?;
            }
        }
        for e in &descriptor.enum_type {
            visit(TypeVisit::Enum(&join(&name, e.name()), e))?;
        }
        visit(TypeVisit::Message(&name, descriptor))
    }
    let package = file.package();
    for descriptor in &file.message_type {
        message(package, descriptor, visit)?;
    }
    for e in &file.enum_type {
        visit(TypeVisit::Enum(&join(package, e.name()), e))?;
    }
    Ok(())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Full names of every message and enum of `file`.
pub fn type_names(file: &FileDescriptorProto) -> Vec<String> {
    let mut out = Vec::new();
    let _ = visit_types::<()>(file, &mut |visit| {
        out.push(match visit {
            TypeVisit::Message(name, _) | TypeVisit::Enum(name, _) => name.to_owned(),
        });
        Ok(())
    });
    out
}

/// Every enum of `file` with its value names in the order prost-build emits the variants
/// (aliases of an earlier number are skipped, as prost-build does).
pub fn enum_values(file: &FileDescriptorProto) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let _ = visit_types::<()>(file, &mut |visit| {
        if let TypeVisit::Enum(name, descriptor) = visit {
            let mut seen = BTreeSet::new();
            let values = descriptor
                .value
                .iter()
                .filter(|v| seen.insert(v.number()))
                .map(|v| v.name().to_owned())
                .collect();
            out.push((name.to_owned(), values));
        }
        Ok(())
    });
    out
}

/// Rule 3: a compact array over 4× sparse must use the named layout.
///
/// # Errors
///
/// [`Error::Sparse`] for the first message whose highest field number is over
/// [`SPARSE_MIN_SLOTS`](tonic_msgpack_core::wire::SPARSE_MIN_SLOTS) and four times its field count.
pub fn check_sparse(files: &[&FileDescriptorProto]) -> Result<(), Error> {
    for file in files {
        visit_types(file, &mut |visit| {
            let TypeVisit::Message(name, descriptor) = visit else {
                return Ok(());
            };
            let numbers: BTreeSet<i32> = descriptor.field.iter().map(|f| f.number()).collect();
            let max = numbers.last().copied().unwrap_or(0);
            let slots = usize::try_from(max).unwrap_or(0);
            if slots > tonic_msgpack_core::wire::SPARSE_MIN_SLOTS && slots > 4 * numbers.len() {
                return Err(Error::Sparse {
                    message: name.to_owned(),
                    max_field: max,
                    fields: numbers.len(),
                });
            }
            Ok(())
        })?;
    }
    Ok(())
}
