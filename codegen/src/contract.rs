//! The wire contract of a set of services: the [`ServiceModel`]s plus what a compatibility
//! check or another language's generator needs and the code back ends do not: every message
//! and enum with its fields and numbers, each trait argument with its type, and where each
//! one is written (`file:line:column`).
//!
//! Built from the same front ends as the model: `.proto` files (protox), descriptor sets and
//! `#[msgpack_service]` traits (syn, with the plain structs and enums of the same files).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::Span;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use quote::ToTokens;

use crate::Error;
use crate::model::{Format, MethodModel, ServiceModel};
use crate::protos::ProtoSet;
use crate::traits::doc_lines;
use tonic_msgpack_core::KeyCase;

/// Where an element is written. Lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    /// The file, as found under the loaded directory.
    pub file: String,
    /// Line, from 1 (0 when unknown).
    pub line: usize,
    /// Column, from 1 (0 when unknown).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A scalar as MessagePack carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scalar {
    /// `bool`.
    Bool,
    /// An integer of `bits` bits, signed or not (written in its smallest MessagePack form).
    Int {
        /// Whether negative values are allowed.
        signed: bool,
        /// 8, 16, 32 or 64.
        bits: u8,
    },
    /// float32 (`bits` 32) or float64 (`bits` 64).
    Float {
        /// 32 or 64.
        bits: u8,
    },
    /// A UTF-8 string (MessagePack str).
    String,
    /// Bytes (MessagePack bin).
    Bytes,
}

/// The type of a field, argument or return value, by wire meaning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TypeRef {
    /// Nothing: `nil` (`()`, `google.protobuf.Empty`).
    Unit,
    /// A scalar.
    Scalar(Scalar),
    /// An enum by name (a key of [`Contract::enums`]).
    Enum(String),
    /// A message or struct by name (a key of [`Contract::messages`]).
    Message(String),
    /// An array of elements (`repeated`, `Vec<T>`).
    List(Box<TypeRef>),
    /// A map (`map<K, V>`, `HashMap<K, V>`).
    Map(Box<TypeRef>, Box<TypeRef>),
    /// The value or `nil` (`Option<T>`, wrapper types).
    Optional(Box<TypeRef>),
    /// A fixed-length array of differently typed elements (a Rust tuple).
    Tuple(Vec<TypeRef>),
    /// `google.protobuf.Timestamp`: the MessagePack timestamp extension (−1).
    Timestamp,
    /// `google.protobuf.Duration`: `[seconds, nanos]`.
    Duration,
    /// A type this model does not look into, as written (`Uuid`, `google.protobuf.Struct`).
    Other(String),
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeRef::Unit => f.write_str("nil"),
            TypeRef::Scalar(Scalar::Bool) => f.write_str("bool"),
            TypeRef::Scalar(Scalar::Int { signed, bits }) => {
                write!(f, "{}{bits}", if *signed { "int" } else { "uint" })
            }
            TypeRef::Scalar(Scalar::Float { bits }) => write!(f, "float{bits}"),
            TypeRef::Scalar(Scalar::String) => f.write_str("string"),
            TypeRef::Scalar(Scalar::Bytes) => f.write_str("bytes"),
            TypeRef::Enum(name) => write!(f, "enum {}", short_name(name)),
            TypeRef::Message(name) => write!(f, "message {}", short_name(name)),
            TypeRef::List(element) => write!(f, "repeated {element}"),
            TypeRef::Map(key, value) => write!(f, "map<{key}, {value}>"),
            TypeRef::Optional(inner) => write!(f, "optional {inner}"),
            TypeRef::Tuple(elements) => {
                f.write_str("(")?;
                for (i, element) in elements.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{element}")?;
                }
                f.write_str(")")
            }
            TypeRef::Timestamp => f.write_str("Timestamp"),
            TypeRef::Duration => f.write_str("Duration"),
            TypeRef::Other(text) => f.write_str(text),
        }
    }
}

/// `.demo.v1.HelloRequest` → `demo.v1.HelloRequest`.
fn short_name(name: &str) -> &str {
    name.trim_start_matches('.')
}

/// One field of a message, or one member of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name as written in the schema (the proto field name; for a struct, the serde name).
    pub name: String,
    /// The field number: element `number - 1` of the compact array.
    pub number: u32,
    /// The type.
    pub ty: TypeRef,
    /// Proto3 `optional`: an unset value is written as `nil`.
    pub optional: bool,
    /// The oneof this field belongs to, if any.
    pub oneof: Option<String>,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Where it is written.
    pub location: Location,
}

/// A message (proto) or a struct (trait files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Full name: `.demo.v1.HelloRequest` for protos, the Rust identifier for structs.
    pub name: String,
    /// Its own layout when it fixes one (`#[msgpack(named)]`); `None`: the service's.
    pub format: Option<Format>,
    /// Key spelling of the named layout.
    pub key_case: KeyCase,
    /// The fields, by number.
    pub fields: Vec<Field>,
    /// Reserved field numbers (proto `reserved`), inclusive ranges.
    pub reserved: Vec<(u32, u32)>,
    /// Reserved field names.
    pub reserved_names: Vec<String>,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Where it is written.
    pub location: Location,
}

impl Message {
    /// Whether `number` is reserved.
    pub fn is_reserved(&self, number: u32) -> bool {
        self.reserved
            .iter()
            .any(|(start, end)| (*start..=*end).contains(&number))
    }
}

/// One value of an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    /// The name as written.
    pub name: String,
    /// The number (for Rust enums written by name: the position).
    pub number: i32,
    /// Where it is written.
    pub location: Location,
}

/// An enum: proto enums travel as integers, plain Rust (serde) enums by variant name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// Full name (`.demo.v1.Mood`) or the Rust identifier.
    pub name: String,
    /// Whether the wire carries the value's name (rmp-serde's unit variants) instead of its number.
    pub by_name: bool,
    /// The values, in declaration order.
    pub values: Vec<EnumValue>,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Where it is written.
    pub location: Location,
}

/// One argument of a trait method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The Rust name (the REST JSON key).
    pub name: String,
    /// The type.
    pub ty: TypeRef,
    /// Where it is written.
    pub location: Location,
}

/// What one request message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A proto message (or `google.protobuf.Empty` as [`TypeRef::Unit`]).
    Message(TypeRef),
    /// Trait arguments (wire format rule 6): none → `nil`, one → the value, more → an array
    /// in order. For client streaming, the one element type of the stream.
    Args(Vec<Arg>),
}

/// One method with its wire types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// The method as the back ends see it (name, kind, HTTP binding, docs).
    pub model: MethodModel,
    /// One request message.
    pub request: Request,
    /// One response message (for server streaming: one element).
    pub response: TypeRef,
    /// Where it is written.
    pub location: Location,
}

/// Which front end a service came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `.proto` file or a descriptor set.
    Proto,
    /// A `#[msgpack_service]` trait.
    Trait,
}

/// One service with its wire types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service as the back ends see it.
    pub model: ServiceModel,
    /// Which front end read it.
    pub origin: Origin,
    /// The methods, in the order of `model.methods`.
    pub methods: Vec<Method>,
    /// Where it is written.
    pub location: Location,
}

/// Every service, message and enum found under a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contract {
    /// The services, protos first, each group in file order.
    pub services: Vec<Service>,
    /// Messages and structs by name.
    pub messages: BTreeMap<String, Message>,
    /// Enums by name.
    pub enums: BTreeMap<String, Enum>,
}

impl Contract {
    /// Everything under `dir`, searched recursively: `.proto` files (with `dir` as their
    /// include root), descriptor sets (`.binpb`, `.desc`, `.pb`) and `.rs` files with
    /// `#[msgpack_service]` traits (plus the structs and enums of every `.rs` file, for the
    /// types the traits name). `target/`, `node_modules/` and hidden directories are skipped.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, a proto or trait that does not check (`file:line:col:
    /// reason`), a descriptor set that does not decode, or nothing found.
    pub fn load_dir(dir: &Path) -> Result<Contract, Error> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let by_ext = |ext: &[&str]| -> Vec<PathBuf> {
            files
                .iter()
                .filter(|path| {
                    path.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| ext.contains(&e))
                })
                .cloned()
                .collect()
        };
        let protos = by_ext(&["proto"]);
        let descriptor_sets = by_ext(&["binpb", "desc", "pb"]);
        let rust = by_ext(&["rs"]);
        let mut contract = Contract::default();
        if !protos.is_empty() {
            let set = ProtoSet::compile(&protos, &[dir])?;
            contract.add_proto_set(&set, &|name| dir.join(name).display().to_string())?;
        }
        let mut sources = Vec::new();
        for path in &rust {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            sources.push((path.display().to_string(), text));
        }
        contract.add_rust_sources(&sources)?;
        for path in &descriptor_sets {
            let bytes = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let set = proto_set_from_bytes(&bytes).map_err(|reason| Error::Proto {
                location: path.display().to_string(),
                reason: format!("not a FileDescriptorSet: {reason}"),
            })?;
            let shown = path.display().to_string();
            // A descriptor set often repeats what the protos or traits beside it define
            // (`services.binpb` from the build): the sources win, the set adds the rest.
            let mut from_set = Contract::default();
            from_set.add_proto_set(&set, &|name| format!("{shown}!{name}"))?;
            contract.merge(from_set);
        }
        if contract.services.is_empty() && contract.messages.is_empty() {
            return Err(Error::Config(format!(
                "{}: no .proto files, descriptor sets or #[msgpack_service] traits found",
                dir.display()
            )));
        }
        Ok(contract)
    }

    /// Adds the services, messages and enums of the user's files of `set`; `file_name` turns a
    /// descriptor's file name into the path shown in locations.
    ///
    /// # Errors
    ///
    /// Two definitions of one service.
    pub fn add_proto_set(
        &mut self,
        set: &ProtoSet,
        file_name: &dyn Fn(&str) -> String,
    ) -> Result<(), Error> {
        let models = set.services()?;
        let mut models = models.into_iter();
        let layouts = Layouts::new(set);
        for file in set.user_files() {
            if file.name() == LAYOUT_OPTIONS_FILE {
                continue;
            }
            let index = SourceIndex::new(file, file_name(file.name()));
            let package = file.package();
            let prefix = if package.is_empty() {
                String::new()
            } else {
                format!(".{package}")
            };
            let before: BTreeSet<String> = self.messages.keys().cloned().collect();
            for (i, message) in file.message_type.iter().enumerate() {
                self.add_proto_message(message, &prefix, &index, vec![4, i as i32]);
            }
            for (i, enumeration) in file.enum_type.iter().enumerate() {
                self.add_proto_enum(enumeration, &prefix, &index, vec![5, i as i32]);
            }
            // Layout options (synthesized trait descriptors, named proto builds).
            let added: Vec<String> = self
                .messages
                .keys()
                .filter(|name| !before.contains(*name))
                .cloned()
                .collect();
            for name in &added {
                if let (LAYOUT_NAMED, key_case) = layouts.of(name)
                    && let Some(message) = self.messages.get_mut(name)
                {
                    message.format = Some(Format::Named);
                    message.key_case = key_case;
                }
            }
            for (s, service) in file.service.iter().enumerate() {
                let Some(mut model) = models.next() else {
                    break;
                };
                let mut methods = Vec::new();
                for (m, (method, method_model)) in
                    service.method.iter().zip(&model.methods).enumerate()
                {
                    let location = index.at(&[6, s as i32, 2, m as i32]);
                    let input = method.input_type();
                    let output = method.output_type();
                    let request = match (layouts.of(input).0, self.messages.get(input)) {
                        // A trait method's arguments, one field each, in order.
                        (LAYOUT_ARGUMENTS, Some(message)) => Request::Args(
                            message
                                .fields
                                .iter()
                                .map(|field| Arg {
                                    name: field.name.clone(),
                                    ty: field.ty.clone(),
                                    location: field.location.clone(),
                                })
                                .collect(),
                        ),
                        _ => Request::Message(proto_message_type(input)),
                    };
                    let response = match (layouts.of(output).0, self.messages.get(output)) {
                        // A trait method's result: field 1's value itself.
                        (LAYOUT_VALUE, Some(message)) => message
                            .fields
                            .iter()
                            .find(|field| field.number == 1)
                            .map_or(TypeRef::Unit, |field| field.ty.clone()),
                        _ => proto_message_type(output),
                    };
                    methods.push(Method {
                        model: method_model.clone(),
                        request,
                        response,
                        location,
                    });
                }
                // The argument and result wrappers are not messages of their own on the wire.
                for method in service.method.iter() {
                    for name in [method.input_type(), method.output_type()] {
                        if matches!(layouts.of(name).0, LAYOUT_ARGUMENTS | LAYOUT_VALUE) {
                            self.messages.remove(name);
                        }
                    }
                }
                // A synthesized trait service is named when the messages it carries are.
                let named = methods.iter().any(|method| {
                    let mut types: Vec<&TypeRef> = vec![&method.response];
                    match &method.request {
                        Request::Args(args) => types.extend(args.iter().map(|a| &a.ty)),
                        Request::Message(ty) => types.push(ty),
                    }
                    types.into_iter().any(|ty| {
                        matches!(ty, TypeRef::Message(name)
                            if self.messages.get(name).is_some_and(|m| m.format == Some(Format::Named)))
                    })
                });
                if named {
                    model.format = Format::Named;
                }
                self.push_service(Service {
                    model,
                    origin: Origin::Proto,
                    methods,
                    location: index.at(&[6, s as i32]),
                })?;
            }
        }
        Ok(())
    }

    fn push_service(&mut self, service: Service) -> Result<(), Error> {
        if let Some(previous) = self
            .services
            .iter()
            .find(|s| s.model.full_name() == service.model.full_name())
        {
            return Err(Error::Config(format!(
                "{}: service `{}` is already defined at {}",
                service.location,
                service.model.full_name(),
                previous.location
            )));
        }
        self.services.push(service);
        Ok(())
    }

    fn add_proto_message(
        &mut self,
        message: &DescriptorProto,
        parent: &str,
        index: &SourceIndex,
        path: Vec<i32>,
    ) {
        let name = format!("{parent}.{}", message.name());
        if message
            .options
            .as_ref()
            .is_some_and(|options| options.map_entry())
        {
            return;
        }
        let fields = message
            .field
            .iter()
            .enumerate()
            .map(|(k, field)| {
                let mut field_path = path.clone();
                field_path.extend([2, k as i32]);
                let element = proto_field_type(field, message);
                let repeated = field.label() == Label::Repeated;
                let ty = match element {
                    map @ TypeRef::Map(..) => map,
                    element if repeated => TypeRef::List(Box::new(element)),
                    element => element,
                };
                let synthetic = field.proto3_optional();
                Field {
                    name: field.name().to_owned(),
                    number: u32::try_from(field.number()).unwrap_or(0),
                    ty,
                    optional: synthetic,
                    oneof: field
                        .oneof_index
                        .filter(|_| !synthetic)
                        .and_then(|i| message.oneof_decl.get(i as usize))
                        .map(|oneof| oneof.name().to_owned()),
                    docs: index.docs(&field_path),
                    location: index.at(&field_path),
                }
            })
            .collect();
        let reserved = message
            .reserved_range
            .iter()
            .map(|range| {
                let start = u32::try_from(range.start()).unwrap_or(0);
                let end = u32::try_from(range.end()).unwrap_or(1).saturating_sub(1);
                (start, end)
            })
            .collect();
        self.messages.insert(
            name.clone(),
            Message {
                name: name.clone(),
                format: None,
                key_case: KeyCase::AsWritten,
                fields,
                reserved,
                reserved_names: message.reserved_name.clone(),
                docs: index.docs(&path),
                location: index.at(&path),
            },
        );
        for (j, nested) in message.nested_type.iter().enumerate() {
            let mut nested_path = path.clone();
            nested_path.extend([3, j as i32]);
            self.add_proto_message(nested, &name, index, nested_path);
        }
        for (j, enumeration) in message.enum_type.iter().enumerate() {
            let mut enum_path = path.clone();
            enum_path.extend([4, j as i32]);
            self.add_proto_enum(enumeration, &name, index, enum_path);
        }
    }

    fn add_proto_enum(
        &mut self,
        enumeration: &EnumDescriptorProto,
        parent: &str,
        index: &SourceIndex,
        path: Vec<i32>,
    ) {
        let name = format!("{parent}.{}", enumeration.name());
        let values = enumeration
            .value
            .iter()
            .enumerate()
            .map(|(k, value)| {
                let mut value_path = path.clone();
                value_path.extend([2, k as i32]);
                EnumValue {
                    name: value.name().to_owned(),
                    number: value.number(),
                    location: index.at(&value_path),
                }
            })
            .collect();
        self.enums.insert(
            name.clone(),
            Enum {
                name,
                by_name: false,
                values,
                docs: index.docs(&path),
                location: index.at(&path),
            },
        );
    }

    /// Adds the `#[msgpack_service]` traits of Rust `sources` (`(shown path, text)`), and the
    /// named-field structs and unit enums of all of them for the types the traits name. A file
    /// without a trait that does not parse is skipped; one with a trait must check.
    ///
    /// # Errors
    ///
    /// A trait file that does not parse, or a trait that does not check: `file:line:col: reason`.
    pub fn add_rust_sources(&mut self, sources: &[(String, String)]) -> Result<(), Error> {
        let mut parsed = Vec::new();
        for (file, text) in sources {
            match syn::parse_file(text) {
                Ok(ast) => parsed.push((file.as_str(), ast)),
                Err(error) if text.contains("msgpack_service") => {
                    return Err(trait_error(file, &error));
                }
                Err(_) => {}
            }
        }
        // The names of all structs and enums first, so a type can name one defined later.
        let mut known = RustTypes::default();
        for (_, ast) in &parsed {
            visit_items(&ast.items, &mut |item| match item {
                syn::Item::Struct(item) if matches!(item.fields, syn::Fields::Named(_)) => {
                    known.structs.insert(item.ident.to_string());
                }
                syn::Item::Enum(item)
                    if item
                        .variants
                        .iter()
                        .all(|v| matches!(v.fields, syn::Fields::Unit)) =>
                {
                    known.enums.insert(item.ident.to_string());
                }
                _ => {}
            });
        }
        for (file, ast) in &parsed {
            let mut result = Ok(());
            visit_items(&ast.items, &mut |item| {
                if result.is_err() {
                    return;
                }
                match item {
                    syn::Item::Struct(item) => self.add_rust_struct(item, file, &known),
                    syn::Item::Enum(item) => self.add_rust_enum(item, file, &known),
                    syn::Item::Trait(item) => {
                        result = self.add_rust_trait(item, file, &known);
                    }
                    _ => {}
                }
            });
            result?;
        }
        Ok(())
    }

    fn add_rust_trait(
        &mut self,
        item: &syn::ItemTrait,
        file: &str,
        known: &RustTypes,
    ) -> Result<(), Error> {
        let Some(attr) = item.attrs.iter().find(|attr| {
            attr.path()
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "msgpack_service")
        }) else {
            return Ok(());
        };
        let args = match &attr.meta {
            syn::Meta::List(list) => list.tokens.clone(),
            _ => proc_macro2::TokenStream::new(),
        };
        let parsed = crate::traits::parse_trait(item, args).map_err(|e| trait_error(file, &e))?;
        let methods = parsed
            .methods
            .iter()
            .zip(&parsed.model.methods)
            .map(|(method, model)| {
                let args = match &method.request_stream {
                    Some(element) => method
                        .args
                        .iter()
                        .take(1)
                        .map(|(name, _)| Arg {
                            name: name.to_string(),
                            ty: known.type_ref(element),
                            location: location(file, name.span()),
                        })
                        .collect(),
                    None => method
                        .args
                        .iter()
                        .map(|(name, ty)| Arg {
                            name: name.to_string(),
                            ty: known.type_ref(ty),
                            location: location(file, name.span()),
                        })
                        .collect(),
                };
                Method {
                    model: model.clone(),
                    request: Request::Args(args),
                    response: known.type_ref(&method.response),
                    location: location(file, method.ident.span()),
                }
            })
            .collect();
        self.push_service(Service {
            model: parsed.model,
            origin: Origin::Trait,
            methods,
            location: location(file, item.ident.span()),
        })
    }

    fn add_rust_struct(&mut self, item: &syn::ItemStruct, file: &str, known: &RustTypes) {
        let syn::Fields::Named(named) = &item.fields else {
            return;
        };
        let name = item.ident.to_string();
        if self.messages.contains_key(&name) {
            return;
        }
        let options = MsgpackAttrs::of(&item.attrs);
        let serde = SerdeAttrs::of(&item.attrs);
        let key_case = options
            .key_case
            .or(serde.key_case)
            .unwrap_or(KeyCase::AsWritten);
        let format = (options.named || options.key_case.is_some() || serde.key_case.is_some())
            .then_some(Format::Named);
        let mut fields = Vec::new();
        let mut position = 0u32;
        for field in &named.named {
            let Some(ident) = &field.ident else { continue };
            let field_options = MsgpackAttrs::of(&field.attrs);
            let field_serde = SerdeAttrs::of(&field.attrs);
            if field_options.skip || field_serde.skip {
                continue;
            }
            position += 1;
            let ty = if field_serde.bytes {
                TypeRef::Scalar(Scalar::Bytes)
            } else {
                known.type_ref(&field.ty)
            };
            let ident_text = ident.to_string();
            fields.push(Field {
                name: field_serde
                    .rename
                    .unwrap_or_else(|| ident_text.trim_start_matches("r#").to_owned()),
                number: field_options.key.map_or(position, |key| key + 1),
                ty,
                optional: false,
                oneof: None,
                docs: doc_lines(&field.attrs),
                location: location(file, ident.span()),
            });
        }
        fields.sort_by_key(|field| field.number);
        self.messages.insert(
            name.clone(),
            Message {
                name,
                format,
                key_case,
                fields,
                reserved: Vec::new(),
                reserved_names: Vec::new(),
                docs: doc_lines(&item.attrs),
                location: location(file, item.ident.span()),
            },
        );
    }

    fn add_rust_enum(&mut self, item: &syn::ItemEnum, file: &str, known: &RustTypes) {
        let name = item.ident.to_string();
        if !known.enums.contains(&name) || self.enums.contains_key(&name) {
            return;
        }
        let values = item
            .variants
            .iter()
            .enumerate()
            .map(|(i, variant)| EnumValue {
                name: SerdeAttrs::of(&variant.attrs)
                    .rename
                    .unwrap_or_else(|| variant.ident.to_string()),
                number: i32::try_from(i).unwrap_or(i32::MAX),
                location: location(file, variant.ident.span()),
            })
            .collect();
        self.enums.insert(
            name.clone(),
            Enum {
                name,
                by_name: true,
                values,
                docs: doc_lines(&item.attrs),
                location: location(file, item.ident.span()),
            },
        );
    }

    /// Adds what `other` defines and `self` does not.
    fn merge(&mut self, other: Contract) {
        for service in other.services {
            if self.service(&service.model.full_name()).is_none() {
                self.services.push(service);
            }
        }
        for (name, message) in other.messages {
            self.messages.entry(name).or_insert(message);
        }
        for (name, enumeration) in other.enums {
            self.enums.entry(name).or_insert(enumeration);
        }
    }

    /// The service named `full_name` (`demo.v1.Greeter`).
    pub fn service(&self, full_name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|service| service.model.full_name() == full_name)
    }
}

/// The file of the `layout`/`key_case` message options (`tonic-msgpack schema`'s descriptors).
const LAYOUT_OPTIONS_FILE: &str = "tonic_msgpack/options.proto";
/// `tonic_msgpack.Layout` values.
const LAYOUT_NAMED: i32 = 1;
const LAYOUT_ARGUMENTS: i32 = 2;
const LAYOUT_VALUE: i32 = 3;

/// The `tonic_msgpack.layout` and `tonic_msgpack.key_case` options of a set's messages.
struct Layouts<'a> {
    pool: &'a prost_reflect::DescriptorPool,
    layout: Option<prost_reflect::ExtensionDescriptor>,
    key_case: Option<prost_reflect::ExtensionDescriptor>,
}

impl<'a> Layouts<'a> {
    fn new(set: &'a ProtoSet) -> Self {
        Layouts {
            pool: &set.pool,
            layout: set.pool.get_extension_by_name("tonic_msgpack.layout"),
            key_case: set.pool.get_extension_by_name("tonic_msgpack.key_case"),
        }
    }

    /// The layout number (0 compact when absent) and key case of message `full_name`.
    fn of(&self, full_name: &str) -> (i32, KeyCase) {
        let Some(message) = self
            .pool
            .get_message_by_name(full_name.trim_start_matches('.'))
        else {
            return (0, KeyCase::AsWritten);
        };
        let options = message.options();
        let number = |ext: &Option<prost_reflect::ExtensionDescriptor>| {
            // An absent extension reads as its default, 0 (compact, as written).
            ext.as_ref()
                .and_then(|ext| options.get_extension(ext).as_enum_number())
                .unwrap_or(0)
        };
        let key_case = match number(&self.key_case) {
            1 => KeyCase::Camel,
            2 => KeyCase::Pascal,
            _ => KeyCase::AsWritten,
        };
        (number(&self.layout), key_case)
    }
}

/// A [`ProtoSet`] from the bytes of an encoded `FileDescriptorSet`.
fn proto_set_from_bytes(bytes: &[u8]) -> Result<ProtoSet, String> {
    let pool = prost_reflect::DescriptorPool::decode(bytes).map_err(|err| err.to_string())?;
    let fds = FileDescriptorSet {
        file: pool.file_descriptor_protos().cloned().collect(),
    };
    Ok(ProtoSet {
        fds,
        pool,
        inputs: Vec::new(),
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        // Build output and package caches hold no contracts of this crate, and can be large.
        let skipped = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n == "target" || n == "node_modules");
        if path.is_dir() {
            if !skipped {
                collect_files(&path, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The locations and comments of one proto file's source info, by descriptor path.
struct SourceIndex {
    file: String,
    spans: BTreeMap<Vec<i32>, (Vec<i32>, Vec<String>)>,
}

impl SourceIndex {
    fn new(file: &FileDescriptorProto, shown: String) -> Self {
        let mut spans = BTreeMap::new();
        if let Some(info) = &file.source_code_info {
            for location in &info.location {
                let docs = location
                    .leading_comments
                    .as_deref()
                    .map(|text| {
                        text.trim_end()
                            .lines()
                            .map(|line| line.strip_prefix(' ').unwrap_or(line).to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                spans
                    .entry(location.path.clone())
                    .or_insert((location.span.clone(), docs));
            }
        }
        SourceIndex { file: shown, spans }
    }

    fn at(&self, path: &[i32]) -> Location {
        let (line, column) = self
            .spans
            .get(path)
            .and_then(|(span, _)| Some((*span.first()?, *span.get(1)?)))
            .map_or((0, 0), |(line, column)| {
                (line as usize + 1, column as usize + 1)
            });
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    fn docs(&self, path: &[i32]) -> Vec<String> {
        self.spans
            .get(path)
            .map(|(_, docs)| docs.clone())
            .unwrap_or_default()
    }
}

/// The type of a method's request or response message.
fn proto_message_type(full_name: &str) -> TypeRef {
    well_known(full_name).unwrap_or_else(|| TypeRef::Message(full_name.to_owned()))
}

/// The wire meaning of the well-known types that have one of their own.
fn well_known(full_name: &str) -> Option<TypeRef> {
    let scalar = |s| Some(TypeRef::Optional(Box::new(TypeRef::Scalar(s))));
    match full_name {
        ".google.protobuf.Empty" => Some(TypeRef::Unit),
        ".google.protobuf.Timestamp" => Some(TypeRef::Timestamp),
        ".google.protobuf.Duration" => Some(TypeRef::Duration),
        ".google.protobuf.DoubleValue" => scalar(Scalar::Float { bits: 64 }),
        ".google.protobuf.FloatValue" => scalar(Scalar::Float { bits: 32 }),
        ".google.protobuf.Int64Value" => scalar(Scalar::Int {
            signed: true,
            bits: 64,
        }),
        ".google.protobuf.UInt64Value" => scalar(Scalar::Int {
            signed: false,
            bits: 64,
        }),
        ".google.protobuf.Int32Value" => scalar(Scalar::Int {
            signed: true,
            bits: 32,
        }),
        ".google.protobuf.UInt32Value" => scalar(Scalar::Int {
            signed: false,
            bits: 32,
        }),
        ".google.protobuf.BoolValue" => scalar(Scalar::Bool),
        ".google.protobuf.StringValue" => scalar(Scalar::String),
        ".google.protobuf.BytesValue" => scalar(Scalar::Bytes),
        name if name.starts_with(".google.protobuf.") => {
            Some(TypeRef::Other(short_name(name).to_owned()))
        }
        _ => None,
    }
}

/// The element type of a proto field (before `repeated`), maps resolved from their entry.
fn proto_field_type(
    field: &prost_types::FieldDescriptorProto,
    parent: &DescriptorProto,
) -> TypeRef {
    let int = |signed, bits| TypeRef::Scalar(Scalar::Int { signed, bits });
    match field.r#type() {
        Type::Double => TypeRef::Scalar(Scalar::Float { bits: 64 }),
        Type::Float => TypeRef::Scalar(Scalar::Float { bits: 32 }),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => int(true, 64),
        Type::Uint64 | Type::Fixed64 => int(false, 64),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => int(true, 32),
        Type::Uint32 | Type::Fixed32 => int(false, 32),
        Type::Bool => TypeRef::Scalar(Scalar::Bool),
        Type::String => TypeRef::Scalar(Scalar::String),
        Type::Bytes => TypeRef::Scalar(Scalar::Bytes),
        Type::Enum => TypeRef::Enum(field.type_name().to_owned()),
        Type::Message | Type::Group => {
            let type_name = field.type_name();
            // A map field's type is the nested `…Entry` message with `map_entry` set.
            let entry = type_name
                .rsplit('.')
                .next()
                .and_then(|short| parent.nested_type.iter().find(|n| n.name() == short))
                .filter(|nested| nested.options.as_ref().is_some_and(|o| o.map_entry()));
            if let Some(entry) = entry
                && field.label() == Label::Repeated
            {
                let part = |number| {
                    entry
                        .field
                        .iter()
                        .find(|f| f.number() == number)
                        .map_or(TypeRef::Unit, |f| proto_field_type(f, entry))
                };
                return TypeRef::Map(Box::new(part(1)), Box::new(part(2)));
            }
            proto_message_type(type_name)
        }
    }
}

fn location(file: &str, span: Span) -> Location {
    let start = span.start();
    Location {
        file: file.to_owned(),
        line: start.line,
        column: start.column + 1,
    }
}

fn trait_error(file: &str, error: &syn::Error) -> Error {
    let start = error.span().start();
    Error::Trait {
        location: format!("{file}:{}:{}", start.line, start.column + 1),
        reason: error.to_string(),
    }
}

/// Calls `visit` on every item, inline modules included.
fn visit_items(items: &[syn::Item], visit: &mut dyn FnMut(&syn::Item)) {
    for item in items {
        visit(item);
        if let syn::Item::Mod(syn::ItemMod {
            content: Some((_, inner)),
            ..
        }) = item
        {
            visit_items(inner, visit);
        }
    }
}

/// The struct and enum names of the loaded Rust files.
#[derive(Default)]
struct RustTypes {
    structs: BTreeSet<String>,
    enums: BTreeSet<String>,
}

impl RustTypes {
    /// The wire meaning of a Rust type as rmp-serde writes it.
    fn type_ref(&self, ty: &syn::Type) -> TypeRef {
        let int = |signed, bits| TypeRef::Scalar(Scalar::Int { signed, bits });
        match ty {
            syn::Type::Tuple(tuple) if tuple.elems.is_empty() => TypeRef::Unit,
            syn::Type::Tuple(tuple) => {
                TypeRef::Tuple(tuple.elems.iter().map(|e| self.type_ref(e)).collect())
            }
            syn::Type::Paren(inner) => self.type_ref(&inner.elem),
            syn::Type::Group(inner) => self.type_ref(&inner.elem),
            syn::Type::Reference(reference) => self.type_ref(&reference.elem),
            syn::Type::Array(array) => self.list_of(&array.elem),
            syn::Type::Slice(slice) => self.list_of(&slice.elem),
            syn::Type::Path(path) if path.qself.is_none() => {
                let Some(last) = path.path.segments.last() else {
                    return TypeRef::Other(normalized(ty));
                };
                let generics: Vec<&syn::Type> = match &last.arguments {
                    syn::PathArguments::AngleBracketed(args) => args
                        .args
                        .iter()
                        .filter_map(|arg| match arg {
                            syn::GenericArgument::Type(ty) => Some(ty),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let name = last.ident.to_string();
                match (name.as_str(), generics.as_slice()) {
                    ("bool", []) => TypeRef::Scalar(Scalar::Bool),
                    ("i8", []) => int(true, 8),
                    ("i16", []) => int(true, 16),
                    ("i32", []) => int(true, 32),
                    ("i64" | "isize", []) => int(true, 64),
                    ("u8", []) => int(false, 8),
                    ("u16", []) => int(false, 16),
                    ("u32", []) => int(false, 32),
                    ("u64" | "usize", []) => int(false, 64),
                    ("f32", []) => TypeRef::Scalar(Scalar::Float { bits: 32 }),
                    ("f64", []) => TypeRef::Scalar(Scalar::Float { bits: 64 }),
                    ("String" | "str", []) => TypeRef::Scalar(Scalar::String),
                    ("Bytes" | "ByteBuf", []) => TypeRef::Scalar(Scalar::Bytes),
                    ("Timestamp", []) => TypeRef::Timestamp,
                    ("Duration", []) => TypeRef::Duration,
                    ("Vec" | "VecDeque" | "HashSet" | "BTreeSet", [element]) => {
                        self.list_of(element)
                    }
                    ("HashMap" | "BTreeMap", [key, value]) => {
                        TypeRef::Map(Box::new(self.type_ref(key)), Box::new(self.type_ref(value)))
                    }
                    ("Option", [inner]) => TypeRef::Optional(Box::new(self.type_ref(inner))),
                    ("Box" | "Arc" | "Rc", [inner]) => self.type_ref(inner),
                    (name, []) if self.structs.contains(name) => TypeRef::Message(name.to_owned()),
                    (name, []) if self.enums.contains(name) => TypeRef::Enum(name.to_owned()),
                    _ => TypeRef::Other(normalized(ty)),
                }
            }
            _ => TypeRef::Other(normalized(ty)),
        }
    }

    fn list_of(&self, element: &syn::Type) -> TypeRef {
        TypeRef::List(Box::new(self.type_ref(element)))
    }
}

/// A type's tokens without spacing differences.
fn normalized(ty: &syn::Type) -> String {
    ty.to_token_stream().to_string().replace(' ', "")
}

/// `#[msgpack(...)]` options of a struct or field (the `Message` derive's).
#[derive(Default)]
struct MsgpackAttrs {
    named: bool,
    key_case: Option<KeyCase>,
    key: Option<u32>,
    skip: bool,
}

impl MsgpackAttrs {
    fn of(attrs: &[syn::Attribute]) -> Self {
        let mut out = MsgpackAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("msgpack")) {
            // Unknown options are the derive's to report; this model reads what it knows.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("named") {
                    out.named = true;
                } else if meta.path.is_ident("skip") {
                    out.skip = true;
                } else if meta.path.is_ident("key") {
                    let value: syn::LitInt = meta.value()?.parse()?;
                    out.key = value.base10_parse().ok();
                } else if meta.path.is_ident("key_case") {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    out.key_case = value.value().parse().ok();
                } else if let Ok(value) = meta.value() {
                    let _: syn::Expr = value.parse()?;
                }
                Ok(())
            });
        }
        out
    }
}

/// The serde options this model follows: renames, skips and bytes.
#[derive(Default)]
struct SerdeAttrs {
    rename: Option<String>,
    key_case: Option<KeyCase>,
    skip: bool,
    bytes: bool,
}

impl SerdeAttrs {
    fn of(attrs: &[syn::Attribute]) -> Self {
        let mut out = SerdeAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    out.rename = Some(value.value());
                } else if meta.path.is_ident("rename_all") {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    out.key_case = match value.value().as_str() {
                        "camelCase" => Some(KeyCase::Camel),
                        "PascalCase" => Some(KeyCase::Pascal),
                        _ => None,
                    };
                } else if meta.path.is_ident("skip") {
                    out.skip = true;
                } else if meta.path.is_ident("with") {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    out.bytes = value.value() == "serde_bytes";
                } else if let Ok(value) = meta.value() {
                    let _: syn::Expr = value.parse()?;
                }
                Ok(())
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_output_package_caches_and_hidden_directories_are_not_searched() {
        let root = std::env::temp_dir().join(format!("contract-walk-{}", std::process::id()));
        for dir in ["proto", "target/x", "node_modules/pkg", ".git"] {
            std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        }
        for file in [
            "proto/a.proto",
            "target/x/b.proto",
            "node_modules/pkg/c.proto",
            ".git/d.proto",
        ] {
            std::fs::write(root.join(file), "syntax = \"proto3\";").expect("write");
        }
        let mut files = Vec::new();
        let walked = collect_files(&root, &mut files);
        let _ = std::fs::remove_dir_all(&root);
        walked.expect("walk");
        assert_eq!(files, vec![root.join("proto/a.proto")]);
    }

    #[test]
    fn reads_trait_arguments_structs_and_locations() {
        let source = r#"
/// A user type.
#[derive(Serialize, Deserialize)]
pub struct Point { pub x: i32, #[serde(rename = "why")] pub y: Option<f64>, pub tags: Vec<String> }

#[msgpack_service(package = "geo.v1", format = "named")]
pub trait Geo {
    async fn shift(&self, p: Point, by: i64) -> Result<Point, Status>;
    async fn ping(&self) -> Result<(), Status>;
}
"#;
        let mut contract = Contract::default();
        contract
            .add_rust_sources(&[("geo.rs".to_owned(), source.to_owned())])
            .expect("valid");
        let service = contract.service("geo.v1.Geo").expect("service");
        assert_eq!(service.location.to_string(), "geo.rs:7:11");
        let shift = &service.methods[0];
        assert_eq!(shift.location.to_string(), "geo.rs:8:14");
        let Request::Args(args) = &shift.request else {
            panic!("trait arguments")
        };
        assert_eq!(args[0].ty, TypeRef::Message("Point".into()));
        assert_eq!(args[1].location.to_string(), "geo.rs:8:37");
        assert_eq!(service.methods[1].response, TypeRef::Unit);
        let point = &contract.messages["Point"];
        let fields: Vec<_> = point
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.number, f.ty.to_string()))
            .collect();
        assert_eq!(
            fields,
            [
                ("x", 1, "int32".to_owned()),
                ("why", 2, "optional float64".to_owned()),
                ("tags", 3, "repeated string".to_owned())
            ]
        );
    }
}
