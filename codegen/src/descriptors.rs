//! A descriptor for every service: `.proto` services as protox compiles them, and
//! `#[msgpack_service]` traits as synthesized `.proto` files whose messages carry their
//! MessagePack layout in the options of `tonic_msgpack/options.proto` (shipped here).
//!
//! A trait method `add(&self, a: i64, b: i64) -> Result<i64, Status>` becomes
//! `rpc Add(AddRequest) returns (AddResponse)` with `AddRequest { int64 a = 1; int64 b = 2; }`
//! in `LAYOUT_ARGUMENTS` (wire rule 6: the arguments in order) and `AddResponse { int64 value
//! = 1; }` in `LAYOUT_VALUE` (the value itself); no arguments or a `()` result is
//! `google.protobuf.Empty`. Argument types that are structs with named fields declared in the
//! same file become messages of their own (fields numbered in declaration order, compact or
//! named as the service's format says), so their rmp-serde encoding is that message's layout.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};
use quote::ToTokens;

use crate::Error;
use crate::model::Format;
use crate::traits::{TraitMethod, TraitService};
use tonic_msgpack_core::KeyCase;

/// Where `tonic_msgpack/options.proto` is imported from.
pub const OPTIONS_FILE: &str = "tonic_msgpack/options.proto";

/// The text of `tonic_msgpack/options.proto`: the `layout` and `key_case` message options.
pub const OPTIONS_PROTO: &str = include_str!("../proto/tonic_msgpack/options.proto");

/// What goes into one descriptor set.
#[derive(Debug, Clone, Default)]
pub struct SchemaInputs {
    /// `.proto` files, looked up in [`SchemaInputs::includes`].
    pub protos: Vec<PathBuf>,
    /// Include directories of the protos.
    pub includes: Vec<PathBuf>,
    /// Rust files whose `#[msgpack_service]` traits join the set.
    pub traits: Vec<PathBuf>,
    /// The layout the `.proto` services were built with: with [`Format::Named`], every
    /// message of the user's proto files gets the `layout` and `key_case` options.
    pub format: Format,
    /// The key spelling of [`Format::Named`].
    pub key_case: KeyCase,
}

/// A synthesized `.proto` file: its import name and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthesizedProto {
    /// The name other files import it by, e.g. `demo/v1/calculator.msgpack.proto`.
    pub name: String,
    /// The `.proto` source.
    pub source: String,
}

/// The encoded `FileDescriptorSet` of `inputs`, with every import (the well-known types,
/// `google/api` and `tonic_msgpack/options.proto` included) and the option extensions kept.
///
/// # Errors
///
/// A proto or trait file that does not parse or check (`file:line:col: reason`), or an
/// argument type a trait descriptor cannot describe (the message names the method and type).
pub fn descriptor_set(inputs: &SchemaInputs) -> Result<Vec<u8>, Error> {
    let mut synthesized = Vec::new();
    for file in &inputs.traits {
        synthesized.extend(trait_protos(file)?);
    }
    let named = (inputs.format == Format::Named).then_some(inputs.key_case);
    let mut memory: BTreeMap<String, String> = synthesized
        .iter()
        .map(|proto| (proto.name.clone(), proto.source.clone()))
        .collect();
    memory.insert(OPTIONS_FILE.to_owned(), OPTIONS_PROTO.to_owned());

    let mut resolver = ChainFileResolver::new();
    for include in &inputs.includes {
        resolver.add(IncludeFileResolver::new(include.clone()));
    }
    resolver.add(MemoryResolver(memory));
    resolver.add(GoogleFileResolver::new());
    resolver.add(crate::protos::BuiltinResolver);
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(false);
    for proto in &inputs.protos {
        compiler
            .open_file(proto)
            .map_err(|err| crate::protos::proto_error(&err, proto))?;
    }
    if named.is_some() || !synthesized.is_empty() {
        compiler
            .open_file(OPTIONS_FILE)
            .map_err(|err| crate::protos::proto_error(&err, Path::new(OPTIONS_FILE)))?;
    }
    for proto in &synthesized {
        compiler
            .open_file(&proto.name)
            .map_err(|err| crate::protos::proto_error(&err, Path::new(&proto.name)))?;
    }
    let encoded = compiler.encode_file_descriptor_set();
    match named {
        Some(case) => mark_named(&compiler.descriptor_pool(), &encoded, case),
        None => Ok(encoded),
    }
}

/// The encoded set with the `layout = LAYOUT_NAMED` and `key_case` options on every message of
/// the user's files (not the built-in google ones, not the synthesized trait messages, which
/// say their own layout).
fn mark_named(
    pool: &prost_reflect::DescriptorPool,
    encoded: &[u8],
    case: KeyCase,
) -> Result<Vec<u8>, Error> {
    use prost_reflect::prost::Message as _;
    use prost_reflect::{DynamicMessage, Value};

    let failed = |reason: String| Error::Config(format!("named layout options: {reason}"));
    let set_type = pool
        .get_message_by_name("google.protobuf.FileDescriptorSet")
        .ok_or_else(|| failed("google/protobuf/descriptor.proto is missing".into()))?;
    let layout = pool
        .get_extension_by_name("tonic_msgpack.layout")
        .ok_or_else(|| failed("tonic_msgpack.layout is missing".into()))?;
    let key_case = pool
        .get_extension_by_name("tonic_msgpack.key_case")
        .ok_or_else(|| failed("tonic_msgpack.key_case is missing".into()))?;
    let case_number = match case {
        KeyCase::AsWritten => 0,
        KeyCase::Camel => 1,
        KeyCase::Pascal => 2,
    };
    let mut set = DynamicMessage::decode(set_type, encoded).map_err(|e| failed(e.to_string()))?;

    fn mark(
        message: &mut DynamicMessage,
        layout: &prost_reflect::ExtensionDescriptor,
        key_case: &prost_reflect::ExtensionDescriptor,
        case_number: i32,
    ) {
        if let Some(Value::Message(options)) = message.get_field_by_name_mut("options")
            && !options.has_extension(layout)
        {
            options.set_extension(layout, Value::EnumNumber(1));
            options.set_extension(key_case, Value::EnumNumber(case_number));
        }
        if let Some(Value::List(nested)) = message.get_field_by_name_mut("nested_type") {
            for nested in nested {
                if let Value::Message(nested) = nested {
                    mark(nested, layout, key_case, case_number);
                }
            }
        }
    }

    if let Some(Value::List(files)) = set.get_field_by_name_mut("file") {
        for file in files {
            let Value::Message(file) = file else { continue };
            let name = file
                .get_field_by_name("name")
                .and_then(|name| name.as_str().map(str::to_owned))
                .unwrap_or_default();
            if crate::protos::is_builtin(&name)
                || name == OPTIONS_FILE
                || name.ends_with(SYNTHESIZED_SUFFIX)
            {
                continue;
            }
            if let Some(Value::List(messages)) = file.get_field_by_name_mut("message_type") {
                for message in messages {
                    if let Value::Message(message) = message {
                        mark(message, &layout, &key_case, case_number);
                    }
                }
            }
        }
    }
    Ok(set.encode_to_vec())
}

/// The file name ending of synthesized trait protos.
const SYNTHESIZED_SUFFIX: &str = ".msgpack.proto";

/// Resolves the synthesized files and `tonic_msgpack/options.proto` by name.
struct MemoryResolver(BTreeMap<String, String>);

impl FileResolver for MemoryResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The synthesized `.proto` files of the `#[msgpack_service]` traits in the Rust file `file`:
/// one per package (`demo/v1/calculator.msgpack.proto` for `src/calculator.rs`).
///
/// # Errors
///
/// The file cannot be read or parsed, a trait is invalid, or an argument or result type has
/// no proto form (the message names the file, the method and the type).
pub fn trait_protos(file: &Path) -> Result<Vec<SynthesizedProto>, Error> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.to_owned(),
        source,
    })?;
    let label = file.display().to_string();
    let stem = file
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("services");
    trait_protos_in_source(&text, &label, stem)
}

/// [`trait_protos`] over Rust source `text`; `label` names it in errors and in the header,
/// `stem` names the synthesized files.
///
/// # Errors
///
/// As [`trait_protos`].
pub fn trait_protos_in_source(
    text: &str,
    label: &str,
    stem: &str,
) -> Result<Vec<SynthesizedProto>, Error> {
    let (services, ast) = crate::traits::trait_services_in_source(text, label)?;
    let mut by_package: BTreeMap<String, Vec<&TraitService>> = BTreeMap::new();
    for service in &services {
        by_package
            .entry(service.model.package.clone())
            .or_default()
            .push(service);
    }
    let mut files = Vec::new();
    for (package, services) in by_package {
        let mut writer = ProtoWriter {
            ast: &ast,
            label,
            messages: BTreeMap::new(),
            structs_in_progress: BTreeSet::new(),
            imports: BTreeSet::from([OPTIONS_FILE.to_owned()]),
            format: Format::Compact,
        };
        let mut body = String::new();
        for service in services {
            writer.service(service, &mut body)?;
        }
        let mut source = format!(
            "// @generated by tonic-msgpack from {label}: the messages of its #[msgpack_service] traits.\nsyntax = \"proto3\";\n\n"
        );
        if !package.is_empty() {
            let _ = writeln!(source, "package {package};\n");
        }
        for import in &writer.imports {
            let _ = writeln!(source, "import \"{import}\";");
        }
        source.push('\n');
        source.push_str(&body);
        for message in writer.messages.values() {
            source.push('\n');
            source.push_str(message);
        }
        let dir = package.replace('.', "/");
        let name = if dir.is_empty() {
            format!("{stem}{SYNTHESIZED_SUFFIX}")
        } else {
            format!("{dir}/{stem}{SYNTHESIZED_SUFFIX}")
        };
        files.push(SynthesizedProto { name, source });
    }
    Ok(files)
}

/// The proto type of one Rust type.
enum Shape {
    /// `int64`, `string`, `google.protobuf.Timestamp`, a message name...
    Single(String),
    /// `repeated T`.
    Repeated(String),
    /// `optional T`.
    Optional(String),
    /// `map<K, V>`.
    Map(String, String),
}

impl Shape {
    fn field(&self, name: &str, number: usize) -> String {
        match self {
            Shape::Single(ty) => format!("  {ty} {name} = {number};\n"),
            Shape::Repeated(ty) => format!("  repeated {ty} {name} = {number};\n"),
            Shape::Optional(ty) => format!("  optional {ty} {name} = {number};\n"),
            Shape::Map(key, value) => format!("  map<{key}, {value}> {name} = {number};\n"),
        }
    }
}

/// Writes one package's services and collects the messages they need.
struct ProtoWriter<'a> {
    ast: &'a syn::File,
    label: &'a str,
    /// Message name → its text.
    messages: BTreeMap<String, String>,
    /// Structs being described (a struct that contains itself has no finite proto form).
    structs_in_progress: BTreeSet<String>,
    imports: BTreeSet<String>,
    /// The format of the service being written: its structs are arrays (compact) or maps
    /// keyed by field name as written (named), as rmp-serde writes them for its codec.
    format: Format,
}

const EMPTY: &str = "google.protobuf.Empty";

impl ProtoWriter<'_> {
    fn service(&mut self, service: &TraitService, out: &mut String) -> Result<(), Error> {
        let model = &service.model;
        self.format = model.format;
        comments(&model.docs, "", out);
        let _ = writeln!(out, "service {} {{", model.name);
        for (method, details) in model.methods.iter().zip(&service.methods) {
            let context = format!("{}: `{}::{}`", self.label, model.name, details.ident);
            let request = self.request(&method.name, details, &context)?;
            let response = self.response(&method.name, details, &context)?;
            comments(&method.docs, "  ", out);
            let client = if method.kind.client_streaming() {
                "stream "
            } else {
                ""
            };
            let server = if method.kind.server_streaming() {
                "stream "
            } else {
                ""
            };
            let binding = method.http.as_ref().map(|http| {
                self.imports.insert("google/api/annotations.proto".into());
                let verb = http.method.to_ascii_lowercase();
                let pattern = match verb.as_str() {
                    "get" | "put" | "post" | "delete" | "patch" => {
                        format!("{verb}: {:?}", http.path)
                    }
                    _ => format!(
                        "custom: {{ kind: {:?} path: {:?} }}",
                        http.method, http.path
                    ),
                };
                let body = http
                    .body
                    .as_ref()
                    .map(|body| format!(" body: {body:?}"))
                    .unwrap_or_default();
                format!(" {{\n    option (google.api.http) = {{ {pattern}{body} }};\n  }}")
            });
            let _ = writeln!(
                out,
                "  rpc {}({client}{request}) returns ({server}{response}){}",
                method.name,
                binding.unwrap_or_else(|| ";".to_owned())
            );
        }
        out.push_str("}\n");
        Ok(())
    }

    /// The request message: `Empty` without arguments, else `{Method}Request` in the
    /// arguments layout (for client streaming: one element of the stream).
    fn request(
        &mut self,
        method: &str,
        details: &TraitMethod,
        context: &str,
    ) -> Result<String, Error> {
        let args: Vec<(String, syn::Type)> = match &details.request_stream {
            Some(element) => {
                let name = details
                    .args
                    .first()
                    .map_or_else(|| "value".to_owned(), |(ident, _)| ident_name(ident));
                vec![(name, element.clone())]
            }
            None => details
                .args
                .iter()
                .map(|(ident, ty)| (ident_name(ident), ty.clone()))
                .collect(),
        };
        if args.is_empty() {
            self.imports.insert("google/protobuf/empty.proto".into());
            return Ok(EMPTY.to_owned());
        }
        let name = format!("{method}Request");
        let mut text =
            format!("message {name} {{\n  option (tonic_msgpack.layout) = LAYOUT_ARGUMENTS;\n");
        for (number, (arg, ty)) in args.iter().enumerate() {
            let shape = self.shape(ty, &format!("{context}, argument `{arg}`"))?;
            text.push_str(&shape.field(arg, number + 1));
        }
        text.push_str("}\n");
        self.add_message(&name, text, context)?;
        Ok(name)
    }

    /// The response message: `Empty` for `()`, else `{Method}Response` holding the value.
    fn response(
        &mut self,
        method: &str,
        details: &TraitMethod,
        context: &str,
    ) -> Result<String, Error> {
        if is_unit(&details.response) {
            self.imports.insert("google/protobuf/empty.proto".into());
            return Ok(EMPTY.to_owned());
        }
        let name = format!("{method}Response");
        let shape = self.shape(&details.response, &format!("{context}, result"))?;
        let text = format!(
            "message {name} {{\n  option (tonic_msgpack.layout) = LAYOUT_VALUE;\n{}}}\n",
            shape.field("value", 1)
        );
        self.add_message(&name, text, context)?;
        Ok(name)
    }

    fn add_message(&mut self, name: &str, text: String, context: &str) -> Result<(), Error> {
        match self.messages.get(name) {
            Some(existing) if *existing != text => Err(Error::Trait {
                location: context.to_owned(),
                reason: format!(
                    "two different messages would be named `{name}`; rename the struct or the method"
                ),
            }),
            _ => {
                self.messages.insert(name.to_owned(), text);
                Ok(())
            }
        }
    }

    fn unsupported(&self, ty: &syn::Type, context: &str, why: &str) -> Error {
        Error::Trait {
            location: context.to_owned(),
            reason: format!(
                "type `{}` has no descriptor form: {why}",
                ty.to_token_stream().to_string().replace(' ', "")
            ),
        }
    }

    /// The proto form of one field's Rust type.
    fn shape(&mut self, ty: &syn::Type, context: &str) -> Result<Shape, Error> {
        match ty {
            syn::Type::Paren(inner) => return self.shape(&inner.elem, context),
            syn::Type::Group(inner) => return self.shape(&inner.elem, context),
            syn::Type::Path(_) => {}
            _ => {
                return Err(self.unsupported(
                    ty,
                    context,
                    "use a scalar, String, Vec, Option, a map, a wkt type or a struct declared in this file",
                ));
            }
        }
        let Some((name, generics)) = last_segment(ty) else {
            return Err(self.unsupported(ty, context, "not a plain type path"));
        };
        match (name.as_str(), generics.as_slice()) {
            ("Box" | "Arc", [inner]) => self.shape(inner, context),
            ("Vec" | "VecDeque" | "BTreeSet" | "HashSet", [inner]) => {
                match self.shape(inner, context)? {
                    Shape::Single(element) => Ok(Shape::Repeated(element)),
                    _ => Err(self.unsupported(
                        ty,
                        context,
                        "a list's elements must be a scalar or a message (wrap nested lists in a struct)",
                    )),
                }
            }
            ("Option", [inner]) => match self.shape(inner, context)? {
                Shape::Single(value) => Ok(Shape::Optional(value)),
                _ => {
                    Err(self.unsupported(ty, context, "an Option must hold a scalar or a message"))
                }
            },
            ("HashMap" | "BTreeMap", [key, value]) => {
                let key = match self.shape(key, context)? {
                    Shape::Single(key) if is_map_key(&key) => key,
                    _ => {
                        return Err(self.unsupported(
                            ty,
                            context,
                            "map keys must be integers, bool or String",
                        ));
                    }
                };
                match self.shape(value, context)? {
                    Shape::Single(value) => Ok(Shape::Map(key, value)),
                    _ => Err(self.unsupported(
                        ty,
                        context,
                        "map values must be a scalar or a message",
                    )),
                }
            }
            (scalar, []) if scalar_type(scalar).is_some() => Ok(Shape::Single(
                scalar_type(scalar).unwrap_or_default().to_owned(),
            )),
            ("Timestamp" | "SystemTime", []) => {
                self.imports
                    .insert("google/protobuf/timestamp.proto".into());
                Ok(Shape::Single("google.protobuf.Timestamp".into()))
            }
            ("Duration", []) => {
                self.imports.insert("google/protobuf/duration.proto".into());
                Ok(Shape::Single("google.protobuf.Duration".into()))
            }
            (name, []) => self.struct_message(ty, name, context),
            _ => Err(self.unsupported(
                ty,
                context,
                "generic types other than Vec, Option, Box and maps are not described",
            )),
        }
    }

    /// The message of a struct with named fields declared in the trait's file.
    fn struct_message(
        &mut self,
        ty: &syn::Type,
        name: &str,
        context: &str,
    ) -> Result<Shape, Error> {
        if self.messages.contains_key(name) {
            return Ok(Shape::Single(name.to_owned()));
        }
        if !self.structs_in_progress.insert(name.to_owned()) {
            return Err(self.unsupported(ty, context, "a struct that contains itself"));
        }
        let Some(item) = find_struct(&self.ast.items, name) else {
            return Err(self.unsupported(
                ty,
                context,
                "only scalars, String, Vec, Option, maps, Timestamp, Duration and structs with named fields declared in the same file are described",
            ));
        };
        let syn::Fields::Named(fields) = &item.fields else {
            return Err(self.unsupported(
                ty,
                context,
                "only structs with named fields are described",
            ));
        };
        let named = self.format == Format::Named;
        let mut text = String::new();
        comments(&crate::traits::doc_lines(&item.attrs), "", &mut text);
        let _ = writeln!(text, "message {name} {{");
        if named {
            text.push_str("  option (tonic_msgpack.layout) = LAYOUT_NAMED;\n");
        }
        for (number, field) in fields.named.iter().enumerate() {
            let field_name = field.ident.as_ref().map(ident_name).unwrap_or_default();
            let shape = self.shape(
                &field.ty,
                &format!("{context}, field `{name}.{field_name}`"),
            )?;
            text.push_str(&shape.field(&field_name, number + 1));
        }
        text.push_str("}\n");
        self.structs_in_progress.remove(name);
        self.add_message(name, text, context)?;
        Ok(Shape::Single(name.to_owned()))
    }
}

fn find_struct<'a>(items: &'a [syn::Item], name: &str) -> Option<&'a syn::ItemStruct> {
    items.iter().find_map(|item| match item {
        syn::Item::Struct(item) if item.ident == name => Some(item),
        syn::Item::Mod(syn::ItemMod {
            content: Some((_, items)),
            ..
        }) => find_struct(items, name),
        _ => None,
    })
}

/// The last path segment's name and its type arguments.
fn last_segment(ty: &syn::Type) -> Option<(String, Vec<syn::Type>)> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let segment = path.path.segments.last()?;
    let generics = match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                syn::GenericArgument::Type(ty) => Some(ty.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((segment.ident.to_string(), generics))
}

/// The proto scalar of a Rust scalar. rmp-serde writes every integer in its smallest form,
/// so `u8`/`u16` travel exactly like `uint32`. `Vec<u8>` is not here: without bin mode it is
/// an array of integers (`repeated uint32`); `Bytes` and `ByteBuf` are bin.
fn scalar_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "bool" => "bool",
        "i8" | "i16" | "i32" => "int32",
        "i64" | "isize" => "int64",
        "u8" | "u16" | "u32" => "uint32",
        "u64" | "usize" => "uint64",
        "f32" => "float",
        "f64" => "double",
        "String" | "str" | "char" => "string",
        "Bytes" | "ByteBuf" => "bytes",
        _ => return None,
    })
}

fn is_map_key(ty: &str) -> bool {
    matches!(
        ty,
        "int32" | "int64" | "uint32" | "uint64" | "bool" | "string"
    )
}

fn is_unit(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Tuple(tuple) if tuple.elems.is_empty())
}

fn ident_name(ident: &syn::Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// Doc lines as `//` comments.
fn comments(lines: &[String], indent: &str, out: &mut String) {
    for line in lines {
        let _ = writeln!(out, "{indent}//{}", line.trim_end());
    }
}
