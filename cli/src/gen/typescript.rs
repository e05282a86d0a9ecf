//! TypeScript from a contract: an interface and a `MessageType` codec per message over
//! `@msgpack/msgpack` writing exactly the compact or named layout, a const object per enum, and
//! per service a browser client (gRPC-Web over `fetch`, through the gateway: unary and server
//! streaming) and a Node client (`@grpc/grpc-js`: the four call kinds). The output compiles with
//! `tsc --strict`.
//!
//! Numbers: 64-bit integers are `bigint` (exact beyond 2^53), narrower ones and floats
//! `number`; bytes `Uint8Array`; maps `Map`; proto message fields, `optional` fields, oneof
//! members and `Option`s `T | null`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use heck::{ToLowerCamelCase, ToUpperCamelCase};
use tonic_msgpack_build::model::contract::{
    Contract, Field, Message, Method, Request, Scalar, Service, TypeRef,
};
use tonic_msgpack_build::model::{CallKind, Format, KeyCase};

/// Which clients `gen typescript` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ClientKind {
    /// gRPC-Web over `fetch` (browsers, Deno, Node 18+): unary and server streaming.
    Web,
    /// `@grpc/grpc-js` (Node): all four call kinds.
    Node,
}

/// Options of `gen typescript`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypescriptOptions {
    /// The layout of proto messages (a proto build's `key_case`): `None` compact.
    pub(crate) proto_key_case: Option<KeyCase>,
    /// The clients to write (none: messages and method codecs only).
    pub(crate) clients: BTreeSet<ClientKind>,
}

/// The TypeScript module for `contract`.
pub(crate) fn generate(contract: &Contract, options: &TypescriptOptions) -> anyhow::Result<String> {
    let mut generator = Gen {
        contract,
        options,
        names: BTreeMap::new(),
        layouts: BTreeMap::new(),
        messages: BTreeSet::new(),
        enums: BTreeSet::new(),
    };
    generator.collect()?;
    Ok(generator.file())
}

const CORE: &str = include_str!("typescript/core.ts");
const WEB: &str = include_str!("typescript/web.ts");
const NODE: &str = include_str!("typescript/node.ts");

/// Names the runtime part of the module declares or uses (its own and the globals it refers
/// to): a message or enum that would take one gets a `_` suffix (`Status` → `Status_`).
const RESERVED_TYPES: &[&str] = &[
    "AbortSignal",
    "Array",
    "AsyncGenerator",
    "AsyncIterable",
    "BigInt",
    "Boolean",
    "Boxed",
    "Buffer",
    "DataView",
    "Date",
    "DecodedTimestamp",
    "Decoder",
    "Duration",
    "Encoder",
    "Error",
    "ExtData",
    "ExtensionCodec",
    "GrpcWebError",
    "Headers",
    "Iterable",
    "JSON",
    "Map",
    "Math",
    "MessageType",
    "MethodCodec",
    "NodeCallOptions",
    "Number",
    "Object",
    "Partial",
    "Promise",
    "RangeError",
    "Record",
    "RequestInit",
    "Response",
    "Status",
    "String",
    "TextDecoder",
    "TextEncoder",
    "Timestamp",
    "TypeError",
    "Uint8Array",
    "WebCallOptions",
    "WebClientOptions",
    "WebTransport",
    "Writer",
];

/// Reserved words and the parameter names the clients use.
const KEYWORDS: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "let",
    "static",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
    "await",
    "arguments",
    "eval",
    "options",
    "request",
    "requests",
    "transport",
    "client",
    "grpc",
];

/// A parameter name: lowerCamelCase, `_` after reserved words.
fn param(name: &str) -> String {
    let name = name.to_lower_camel_case();
    if KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// A property name: lowerCamelCase (reserved words are valid property names).
fn property(name: &str) -> String {
    name.to_lower_camel_case()
}

struct Gen<'a> {
    contract: &'a Contract,
    options: &'a TypescriptOptions,
    /// Full name → TypeScript type name.
    names: BTreeMap<String, String>,
    layouts: BTreeMap<String, (Format, KeyCase)>,
    messages: BTreeSet<String>,
    enums: BTreeSet<String>,
}

impl Gen<'_> {
    /// The messages and enums to write (the same selection and names as `gen python`).
    fn collect(&mut self) -> anyhow::Result<()> {
        let selection = super::types::select(self.contract, self.options.proto_key_case);
        self.messages = selection.messages;
        self.enums = selection.enums;
        self.layouts = selection.layouts;
        // Type names: the proto name without its package (`Outer_Inner` for nested ones).
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for name in self.messages.iter().chain(&self.enums) {
            let type_name = super::types::type_name(name);
            let type_name = if RESERVED_TYPES.contains(&type_name.as_str()) {
                format!("{type_name}_")
            } else {
                type_name
            };
            if let Some(previous) = seen.insert(type_name.clone(), name.clone()) {
                anyhow::bail!(
                    "`{previous}` and `{name}` would both be the TypeScript type `{type_name}`; generate them into separate modules"
                );
            }
            self.names.insert(name.clone(), type_name);
        }
        for name in &self.messages {
            let Some(message) = self.contract.messages.get(name) else {
                continue;
            };
            let mut properties: BTreeMap<String, &str> = BTreeMap::new();
            for field in &message.fields {
                if let Some(previous) = properties.insert(property(&field.name), &field.name) {
                    anyhow::bail!(
                        "{}: fields `{previous}` and `{}` of `{}` would both be the TypeScript property `{}`",
                        field.location,
                        field.name,
                        name.trim_start_matches('.'),
                        property(&field.name)
                    );
                }
            }
        }
        // Each service's classes and method table; two services of one name (other packages)
        // or a message of such a name would collide.
        let mut services: BTreeMap<String, String> = BTreeMap::new();
        for service in &self.contract.services {
            let base = service.model.name.to_upper_camel_case();
            for generated in [
                format!("{base}WebClient"),
                format!("{base}Client"),
                format!("{base}Methods"),
            ] {
                let full = service.model.full_name();
                if let Some(message) = seen.get(&generated) {
                    anyhow::bail!(
                        "`{message}` and the service `{full}` would both declare `{generated}`; rename one or generate them into separate modules"
                    );
                }
                if let Some(previous) = services.insert(generated.clone(), full.clone()) {
                    anyhow::bail!(
                        "the services `{previous}` and `{full}` would both declare `{generated}`; generate them into separate modules"
                    );
                }
            }
        }
        for service in &self.contract.services {
            let mut methods: BTreeMap<String, &str> = BTreeMap::new();
            for method in &service.methods {
                let name = property(&method.model.name);
                if let Some(previous) = methods.insert(name.clone(), &method.model.name) {
                    anyhow::bail!(
                        "methods `{previous}` and `{}` of `{}` would both be the TypeScript method `{name}`",
                        method.model.name,
                        service.model.full_name()
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether enum `name` travels by variant name (a plain Rust enum).
    fn by_name(&self, name: &str) -> bool {
        self.contract.enums.get(name).is_some_and(|e| e.by_name)
    }

    /// The TypeScript type of `ty`.
    fn ts_type(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Unit => "null".to_owned(),
            TypeRef::Scalar(Scalar::Bool) => "boolean".to_owned(),
            TypeRef::Scalar(Scalar::Int { bits: 64, .. }) => "bigint".to_owned(),
            TypeRef::Scalar(Scalar::Int { .. } | Scalar::Float { .. }) => "number".to_owned(),
            TypeRef::Scalar(Scalar::String) => "string".to_owned(),
            TypeRef::Scalar(Scalar::Bytes) => "Uint8Array".to_owned(),
            // A Rust enum travels by variant name.
            TypeRef::Enum(name) if self.by_name(name) => "string".to_owned(),
            // Enums are open: an unknown number is kept (the const object names the known ones).
            TypeRef::Enum(_) => "number".to_owned(),
            TypeRef::Message(name) => self
                .names
                .get(name)
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned()),
            TypeRef::List(inner) => format!("{}[]", self.element_type(inner)),
            TypeRef::Map(key, value) => {
                format!("Map<{}, {}>", self.ts_type(key), self.ts_type(value))
            }
            TypeRef::Optional(inner) => format!("{} | null", self.ts_type(inner)),
            TypeRef::Tuple(elements) => format!(
                "[{}]",
                elements
                    .iter()
                    .map(|e| self.ts_type(e))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeRef::Timestamp => "Timestamp".to_owned(),
            TypeRef::Duration => "Duration".to_owned(),
            TypeRef::Other(_) => "unknown".to_owned(),
        }
    }

    /// The type of a list element (parenthesized when it is a union).
    fn element_type(&self, ty: &TypeRef) -> String {
        let inner = self.ts_type(ty);
        if matches!(ty, TypeRef::Optional(_)) {
            format!("({inner})")
        } else {
            inner
        }
    }

    /// Whether a field is `null` when unset (it travels as nil then).
    fn nullable(field: &Field, proto: bool) -> bool {
        field.optional
            || field.oneof.is_some()
            || (proto
                && matches!(
                    field.ty,
                    TypeRef::Message(_) | TypeRef::Timestamp | TypeRef::Duration
                ))
    }

    /// The type of a field.
    fn field_type(&self, field: &Field, proto: bool) -> String {
        if Self::nullable(field, proto) && !matches!(field.ty, TypeRef::Optional(_)) {
            format!("{} | null", self.ts_type(&field.ty))
        } else {
            self.ts_type(&field.ty)
        }
    }

    /// Statements writing `value` (an expression of type `ty`) to `w`, at `indent`.
    fn write(&self, ty: &TypeRef, value: &str, indent: &str, depth: usize, out: &mut String) {
        let call = |method: &str| format!("{indent}w.{method}({value});\n");
        let text = match ty {
            TypeRef::Unit => format!("{indent}w.nil();\n"),
            TypeRef::Scalar(Scalar::Bool) => call("bool"),
            TypeRef::Scalar(Scalar::Int { bits: 64, .. }) => call("int64"),
            TypeRef::Scalar(Scalar::Int { .. }) => call("int"),
            TypeRef::Scalar(Scalar::Float { bits: 32 }) => call("float32"),
            TypeRef::Scalar(Scalar::Float { .. }) => call("float64"),
            TypeRef::Scalar(Scalar::String) => call("string"),
            TypeRef::Scalar(Scalar::Bytes) => call("bytes"),
            TypeRef::Enum(name) if self.by_name(name) => call("string"),
            TypeRef::Enum(_) => call("int"),
            TypeRef::Message(name) => match self.names.get(name) {
                Some(type_name) => format!("{indent}{type_name}.write(w, {value});\n"),
                None => call("any"),
            },
            TypeRef::Timestamp => call("timestamp"),
            TypeRef::Duration => format!("{indent}Duration.write(w, {value});\n"),
            TypeRef::Other(_) => call("any"),
            TypeRef::List(inner) => {
                let item = format!("x{depth}");
                let mut text = format!(
                    "{indent}w.array({value}.length);\n{indent}for (const {item} of {value}) {{\n"
                );
                self.write(inner, &item, &format!("{indent}  "), depth + 1, &mut text);
                let _ = writeln!(text, "{indent}}}");
                text
            }
            TypeRef::Map(key, item) => {
                let (k, v) = (format!("k{depth}"), format!("v{depth}"));
                let mut text = format!(
                    "{indent}w.map({value}.size);\n{indent}for (const [{k}, {v}] of {value}) {{\n"
                );
                self.write(key, &k, &format!("{indent}  "), depth + 1, &mut text);
                self.write(item, &v, &format!("{indent}  "), depth + 1, &mut text);
                let _ = writeln!(text, "{indent}}}");
                text
            }
            TypeRef::Optional(inner) => {
                let mut text = format!(
                    "{indent}if ({value} == null) {{\n{indent}  w.nil();\n{indent}}} else {{\n"
                );
                self.write(inner, value, &format!("{indent}  "), depth, &mut text);
                let _ = writeln!(text, "{indent}}}");
                text
            }
            TypeRef::Tuple(elements) => {
                let mut text = format!("{indent}w.array({});\n", elements.len());
                for (i, element) in elements.iter().enumerate() {
                    self.write(element, &format!("{value}[{i}]"), indent, depth, &mut text);
                }
                text
            }
        };
        out.push_str(&text);
    }

    /// An expression reading `value` (a decoded MessagePack value, `unknown`) as `ty`.
    fn read(&self, ty: &TypeRef, value: &str, depth: usize) -> String {
        match ty {
            TypeRef::Unit => "null".to_owned(),
            TypeRef::Scalar(Scalar::Bool) => format!("asBool({value})"),
            TypeRef::Scalar(Scalar::Int { bits: 64, .. }) => format!("asInt64({value})"),
            TypeRef::Enum(name) if self.by_name(name) => format!("asString({value})"),
            TypeRef::Scalar(Scalar::Int { .. }) | TypeRef::Enum(_) => format!("asInt({value})"),
            TypeRef::Scalar(Scalar::Float { .. }) => format!("asFloat({value})"),
            TypeRef::Scalar(Scalar::String) => format!("asString({value})"),
            TypeRef::Scalar(Scalar::Bytes) => format!("asBytes({value})"),
            TypeRef::Message(name) => match self.names.get(name) {
                Some(type_name) => format!("{type_name}.read({value})"),
                None => value.to_owned(),
            },
            TypeRef::List(inner) => {
                let item = format!("x{depth}");
                format!(
                    "asList({value}).map(({item}) => {})",
                    self.read(inner, &item, depth + 1)
                )
            }
            TypeRef::Map(key, item) => {
                let (k, v) = (format!("k{depth}"), format!("v{depth}"));
                format!(
                    "new Map(asEntries({value}).map(([{k}, {v}]): [{}, {}] => [{}, {}]))",
                    self.ts_type(key),
                    self.ts_type(item),
                    self.read_key(key, &k),
                    self.read(item, &v, depth + 1)
                )
            }
            TypeRef::Optional(inner) => format!(
                "(isNil({value}) ? null : {})",
                self.read(inner, value, depth)
            ),
            TypeRef::Tuple(elements) => {
                let item = format!("t{depth}");
                format!(
                    "((({item}: unknown[]): [{}] => [{}])(asList({value})))",
                    elements
                        .iter()
                        .map(|e| self.ts_type(e))
                        .collect::<Vec<_>>()
                        .join(", "),
                    elements
                        .iter()
                        .enumerate()
                        .map(|(i, e)| self.read(e, &format!("{item}[{i}]"), depth + 1))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            TypeRef::Timestamp => format!("asTimestamp({value})"),
            TypeRef::Duration => format!("Duration.read({value})"),
            TypeRef::Other(_) => value.to_owned(),
        }
    }

    /// A map key (the decoder gives its text) as `ty`.
    fn read_key(&self, ty: &TypeRef, key: &str) -> String {
        match ty {
            TypeRef::Scalar(Scalar::Int { bits: 64, .. }) => format!("keyBigInt({key})"),
            TypeRef::Scalar(Scalar::Int { .. }) => format!("keyNumber({key})"),
            TypeRef::Enum(name) if !self.by_name(name) => format!("keyNumber({key})"),
            TypeRef::Scalar(Scalar::Bool) => format!("keyBool({key})"),
            _ => key.to_owned(),
        }
    }

    /// The value of an unset, non-nullable field.
    fn default(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Unit => "null".to_owned(),
            TypeRef::Scalar(Scalar::Bool) => "false".to_owned(),
            TypeRef::Scalar(Scalar::Int { bits: 64, .. }) => "0n".to_owned(),
            TypeRef::Enum(name) if self.by_name(name) => self
                .contract
                .enums
                .get(name)
                .and_then(|e| e.values.first())
                .map_or_else(|| "\"\"".to_owned(), |v| format!("{:?}", v.name)),
            TypeRef::Scalar(Scalar::Int { .. } | Scalar::Float { .. }) | TypeRef::Enum(_) => {
                "0".to_owned()
            }
            TypeRef::Scalar(Scalar::String) => "\"\"".to_owned(),
            TypeRef::Scalar(Scalar::Bytes) => "new Uint8Array(0)".to_owned(),
            TypeRef::List(_) => "[]".to_owned(),
            TypeRef::Map(..) => "new Map()".to_owned(),
            TypeRef::Message(name) => match self.names.get(name) {
                Some(type_name) => format!("{type_name}.create()"),
                None => "null".to_owned(),
            },
            TypeRef::Duration => "Duration.create()".to_owned(),
            TypeRef::Timestamp => "{ seconds: 0, nanos: 0 }".to_owned(),
            TypeRef::Tuple(elements) => format!(
                "[{}]",
                elements
                    .iter()
                    .map(|e| self.default(e))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeRef::Optional(_) | TypeRef::Other(_) => "null".to_owned(),
        }
    }

    fn file(&self) -> String {
        let mut out = self.header();
        out.push_str(CORE);
        if self.options.clients.contains(&ClientKind::Web) {
            out.push_str(WEB);
        }
        if self.options.clients.contains(&ClientKind::Node) {
            out.push_str(NODE);
        }
        for name in &self.enums {
            if let Some(enumeration) = self.contract.enums.get(name) {
                let type_name = &self.names[name];
                out.push('\n');
                if enumeration.by_name {
                    // rmp-serde writes unit variants by name.
                    let _ = writeln!(
                        out,
                        "/** `{}`: travels as its variant name (a string). */\nexport const {type_name} = {{",
                        name.trim_start_matches('.')
                    );
                    for value in &enumeration.values {
                        let _ = writeln!(out, "  {}: {:?},", value.name.to_uppercase(), value.name);
                    }
                } else {
                    let _ = writeln!(
                        out,
                        "/** `{}`: travels as its number; fields keep unknown numbers. */\nexport const {type_name} = {{",
                        name.trim_start_matches('.')
                    );
                    for value in &enumeration.values {
                        let _ = writeln!(out, "  {}: {},", value.name, value.number);
                    }
                }
                out.push_str("} as const;\n");
            }
        }
        for name in &self.messages {
            if let Some(message) = self.contract.messages.get(name) {
                out.push('\n');
                out.push_str(&self.message(message));
            }
        }
        for service in &self.contract.services {
            out.push('\n');
            out.push_str(&self.service(service));
        }
        out
    }

    /// The header comment: what the module holds and how its clients are called.
    fn header(&self) -> String {
        let mut out = String::from(
            "// @generated by `tonic-msgpack gen typescript`. Do not edit: regenerate.\n//\n\
             // Wire format v1: compact messages are arrays by field number (nil for gaps and unset\n\
             // values), named ones maps by key; trait arguments travel as nil, the bare value or an\n\
             // array. 64-bit integers are `bigint`, bytes `Uint8Array`, maps `Map`, unset message\n\
             // fields, `optional` fields, oneof members and `Option`s `null`.\n//\n\
             // Messages: `interface X` plus `const X: MessageType<X>` with `X.create(init?)`,\n\
             // `X.encode(value): Uint8Array` and `X.decode(bytes): X`.\n",
        );
        let web = self.options.clients.contains(&ClientKind::Web);
        let node = self.options.clients.contains(&ClientKind::Node);
        if web {
            out.push_str(
                "//\n// Browser clients (gRPC-Web over fetch, through the gateway; unary and server streaming):\n\
                 //   const client = new <Service>WebClient(\"https://gateway.example\", { headers?, fetch? });\n\
                 //   const reply = await client.<unary>(request, { timeoutMs?, signal?, headers? });\n\
                 //   for await (const item of client.<serverStreaming>(request, options?)) { ... }\n\
                 //   A status other than OK throws `GrpcWebError` (`code`, `grpcMessage`, `metadata`).\n",
            );
        }
        if node {
            out.push_str(
                "//\n// Node clients (@grpc/grpc-js; all four call kinds):\n\
                 //   const client = new <Service>Client(\"127.0.0.1:50051\", credentials?, channelOptions?);\n\
                 //   unary: Promise<Res>; server streaming: AsyncIterable<Res>; client streaming takes an\n\
                 //   (async) iterable and gives Promise<Res>; bidirectional takes one and gives AsyncIterable<Res>.\n\
                 //   Options: { metadata?, deadline?, timeoutMs? }; errors are grpc-js `ServiceError`s.\n",
            );
        }
        if !self.contract.services.is_empty() {
            out.push_str("//\n// Services (every method also takes the call options last):\n");
        }
        for service in &self.contract.services {
            let name = service.model.name.to_upper_camel_case();
            let mut declared = Vec::new();
            if web {
                declared.push(format!("{name}WebClient"));
            }
            if node {
                declared.push(format!("{name}Client"));
            }
            declared.push(format!("{name}Methods"));
            let _ = writeln!(
                out,
                "//   {}: {}",
                service.model.full_name(),
                declared.join(", ")
            );
            for method in &service.methods {
                let (params, _, returns) = self.call_shape(method);
                let on = match (web && !method.model.kind.client_streaming(), node) {
                    (true, true) => " (web, node)",
                    (true, false) => " (web)",
                    (false, true) => " (node)",
                    (false, false) => " (codecs only)",
                };
                let _ = writeln!(
                    out,
                    "//     {}({}): {returns}{on}",
                    property(&method.model.name),
                    params.trim_end_matches(", ")
                );
            }
        }
        out.push_str("/* eslint-disable */\n\n");
        if node {
            out.push_str("import * as grpc from \"@grpc/grpc-js\";\n");
        }
        out
    }

    fn message(&self, message: &Message) -> String {
        let type_name = &self.names[&message.name];
        let proto = message.name.starts_with('.');
        let (format, key_case) = self.layouts[&message.name];
        let mut out = String::new();
        let docs = doc_text(&message.docs);
        let layout = match format {
            Format::Compact => "compact: an array by field number".to_owned(),
            Format::Named => format!("named: a map, keys {}", key_case.as_str()),
        };
        let _ = writeln!(
            out,
            "/** {docs}{}`{}` ({layout}). */\nexport interface {type_name} {{",
            if docs.is_empty() { "" } else { " " },
            message.name.trim_start_matches('.')
        );
        for field in &message.fields {
            let docs = doc_text(&field.docs);
            if !docs.is_empty() {
                let _ = writeln!(out, "  /** {docs} */");
            }
            let _ = writeln!(
                out,
                "  {}: {};",
                property(&field.name),
                self.field_type(field, proto)
            );
        }
        out.push_str("}\n\n");
        let _ = writeln!(
            out,
            "export const {type_name}: MessageType<{type_name}> = {{"
        );
        // create
        let _ = writeln!(
            out,
            "  create(init: Partial<{type_name}> = {{}}): {type_name} {{"
        );
        if message.fields.is_empty() {
            let _ = writeln!(out, "    return {{ ...init }};");
        } else {
            out.push_str("    return {\n");
            for field in &message.fields {
                let default = if Self::nullable(field, proto) {
                    "null".to_owned()
                } else {
                    self.default(&field.ty)
                };
                let _ = writeln!(out, "      {}: {default},", property(&field.name));
            }
            out.push_str("      ...init,\n    };\n");
        }
        out.push_str("  },\n");
        let _ = write!(
            out,
            "  encode(value: {type_name}): Uint8Array {{\n    const w = new Writer();\n    {type_name}.write(w, value);\n    return w.finish();\n  }},\n\
             \x20 decode(data: Uint8Array): {type_name} {{\n    return {type_name}.read(unpack(data));\n  }},\n"
        );
        // write
        let value_name = if message.fields.is_empty() {
            "_value"
        } else {
            "value"
        };
        let _ = writeln!(
            out,
            "  write(w: Writer, {value_name}: {type_name}): void {{"
        );
        match format {
            Format::Compact => {
                let len = message.fields.iter().map(|f| f.number).max().unwrap_or(0);
                let _ = writeln!(out, "    w.array({len});");
                for number in 1..=len {
                    match message.fields.iter().find(|f| f.number == number) {
                        Some(field) => self.write_field(field, proto, &mut out),
                        None => out.push_str("    w.nil();\n"),
                    }
                }
            }
            Format::Named => {
                // Like the Rust side (wire rule 7): the fields, then of each oneof only the
                // member that is set, oneofs in declaration order (as prost's structs hold them).
                let fixed = message.fields.iter().filter(|f| f.oneof.is_none()).count();
                let set_members: String = message
                    .fields
                    .iter()
                    .filter(|f| f.oneof.is_some())
                    .map(|f| format!(" + (value.{} != null ? 1 : 0)", property(&f.name)))
                    .collect();
                let _ = writeln!(out, "    w.map({fixed}{set_members});");
                for field in message.fields.iter().filter(|f| f.oneof.is_none()) {
                    let _ = writeln!(out, "    w.string({:?});", named_key(&field.name, key_case));
                    self.write_field(field, proto, &mut out);
                }
                let mut oneofs: Vec<&str> = Vec::new();
                for name in message.fields.iter().filter_map(|f| f.oneof.as_deref()) {
                    if !oneofs.contains(&name) {
                        oneofs.push(name);
                    }
                }
                for oneof in oneofs {
                    for field in message
                        .fields
                        .iter()
                        .filter(|f| f.oneof.as_deref() == Some(oneof))
                    {
                        let value = format!("value.{}", property(&field.name));
                        let _ = writeln!(
                            out,
                            "    if ({value} != null) {{\n      w.string({:?});",
                            named_key(&field.name, key_case)
                        );
                        self.write(&field.ty, &value, "      ", 0, &mut out);
                        out.push_str("    }\n");
                    }
                }
            }
        }
        out.push_str("  },\n");
        // read
        if message.fields.is_empty() {
            let _ = writeln!(
                out,
                "  read(value: unknown): {type_name} {{\n    fields(value);\n    return {{}};\n  }},"
            );
        } else {
            let _ = writeln!(
                out,
                "  read(value: unknown): {type_name} {{\n    const get = fields(value);\n    return {{"
            );
            for field in &message.fields {
                let raw = format!(
                    "get({}, {:?})",
                    field.number - 1,
                    named_key(&field.name, key_case)
                );
                let expression =
                    if Self::nullable(field, proto) && !matches!(field.ty, TypeRef::Optional(_)) {
                        self.read(&TypeRef::Optional(Box::new(field.ty.clone())), &raw, 0)
                    } else {
                        self.read(&field.ty, &raw, 0)
                    };
                let _ = writeln!(out, "      {}: {expression},", property(&field.name));
            }
            out.push_str("    };\n  },\n");
        }
        out.push_str("};\n");
        out
    }

    fn write_field(&self, field: &Field, proto: bool, out: &mut String) {
        let value = format!("value.{}", property(&field.name));
        if Self::nullable(field, proto) && !matches!(field.ty, TypeRef::Optional(_)) {
            let ty = TypeRef::Optional(Box::new(field.ty.clone()));
            self.write(&ty, &value, "    ", 0, out);
        } else {
            self.write(&field.ty, &value, "    ", 0, out);
        }
    }

    fn request_type(method: &Method) -> TypeRef {
        match &method.request {
            Request::Message(ty) => ty.clone(),
            Request::Args(args) => match args.as_slice() {
                [] => TypeRef::Unit,
                [single] => single.ty.clone(),
                several => TypeRef::Tuple(several.iter().map(|a| a.ty.clone()).collect()),
            },
        }
    }

    fn service(&self, service: &Service) -> String {
        let base = service.model.name.to_upper_camel_case();
        let mut out = String::new();
        // The method table.
        let _ = writeln!(
            out,
            "/** The methods of `{}`: path and codec of each. */\nexport const {base}Methods = {{",
            service.model.full_name()
        );
        for method in &service.methods {
            let request = Self::request_type(method);
            let _ = write!(
                out,
                "  {}: method<{}, {}>(\n    {:?},\n{}{}{}{}  ),\n",
                property(&method.model.name),
                self.ts_type(&request),
                self.ts_type(&method.response),
                service.model.method_path(&method.model),
                self.writer_lambda(&request, "request"),
                self.reader_lambda(&request),
                self.writer_lambda(&method.response, "response"),
                self.reader_lambda(&method.response),
            );
        }
        out.push_str("} as const;\n");
        let docs = doc_text(&service.model.docs);
        if self.options.clients.contains(&ClientKind::Web) {
            let _ = write!(
                out,
                "\n/**\n * {docs}{}`{}` over gRPC-Web (`fetch`), through the gateway: unary and server-streaming\n * methods (client streaming and bidirectional calls are not possible over gRPC-Web).\n */\nexport class {base}WebClient {{\n  private readonly transport: WebTransport;\n\n  /** `baseUrl`: the gateway's origin, e.g. `https://gateway.example` (no trailing path). */\n  constructor(baseUrl: string, options: WebClientOptions = {{}}) {{\n    this.transport = new WebTransport(baseUrl, options);\n  }}\n",
                if docs.is_empty() { "" } else { " " },
                service.model.full_name()
            );
            for method in &service.methods {
                out.push_str(&self.client_method(&base, method, false));
            }
            out.push_str("}\n");
        }
        if self.options.clients.contains(&ClientKind::Node) {
            let _ = write!(
                out,
                "\n/** {docs}{}`{}` over @grpc/grpc-js: every call kind. */\nexport class {base}Client {{\n  private readonly client: grpc.Client;\n\n  /** `address`: `host:port`; insecure credentials unless given. */\n  constructor(\n    address: string,\n    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),\n    options: grpc.ClientOptions = {{}},\n  ) {{\n    this.client = new grpc.Client(address, credentials, options);\n  }}\n\n  /** Closes the channel. */\n  close(): void {{\n    this.client.close();\n  }}\n",
                if docs.is_empty() { "" } else { " " },
                service.model.full_name()
            );
            for method in &service.methods {
                out.push_str(&self.client_method(&base, method, true));
            }
            out.push_str("}\n");
        }
        out
    }

    /// `(w: Writer, name: T): void => { ... },` for a method table.
    fn writer_lambda(&self, ty: &TypeRef, name: &str) -> String {
        let mut body = String::new();
        self.write(ty, name, "      ", 0, &mut body);
        let name = if matches!(ty, TypeRef::Unit) {
            format!("_{name}")
        } else {
            name.to_owned()
        };
        format!(
            "    (w: Writer, {name}: {}): void => {{\n{body}    }},\n",
            self.ts_type(ty)
        )
    }

    /// `(value: unknown): T => ...,` for a method table.
    fn reader_lambda(&self, ty: &TypeRef) -> String {
        let value = if matches!(ty, TypeRef::Unit) {
            "_value"
        } else {
            "value"
        };
        format!(
            "    ({value}: unknown): {} => {},\n",
            self.ts_type(ty),
            self.read(ty, "value", 0)
        )
    }

    /// A client method's parameters (each followed by `, `), the request value they make and
    /// the return type.
    fn call_shape(&self, method: &Method) -> (String, String, String) {
        let kind = method.model.kind;
        let request = self.ts_type(&Self::request_type(method));
        let response = self.ts_type(&method.response);
        let (params, value) = match &method.request {
            Request::Args(args) if !kind.client_streaming() => match args.as_slice() {
                [] => (String::new(), "null".to_owned()),
                [single] => (
                    format!("{}: {}, ", param(&single.name), self.ts_type(&single.ty)),
                    param(&single.name),
                ),
                several => (
                    several
                        .iter()
                        .map(|a| format!("{}: {}, ", param(&a.name), self.ts_type(&a.ty)))
                        .collect(),
                    format!(
                        "[{}]",
                        several
                            .iter()
                            .map(|a| param(&a.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            },
            _ if kind.client_streaming() => (
                format!("requests: Iterable<{request}> | AsyncIterable<{request}>, "),
                "requests".to_owned(),
            ),
            _ => (format!("request: {request}, "), "request".to_owned()),
        };
        let returns = if kind.server_streaming() {
            format!("AsyncIterable<{response}>")
        } else {
            format!("Promise<{response}>")
        };
        (params, value, returns)
    }

    /// A client method; a comment for a web client's streaming-request method.
    fn client_method(&self, base: &str, method: &Method, node: bool) -> String {
        let name = property(&method.model.name);
        let codec = format!("{base}Methods.{name}");
        let options_type = if node {
            "NodeCallOptions"
        } else {
            "WebCallOptions"
        };
        let kind = method.model.kind;
        let mut docs = doc_text(&method.model.docs);
        if !node && kind.client_streaming() {
            return format!(
                "\n  // {name}: {} calls are not possible over gRPC-Web; use {base}Client (Node).\n",
                if matches!(kind, CallKind::Bidirectional) {
                    "bidirectional"
                } else {
                    "client-streaming"
                }
            );
        }
        let (params, value, returns) = self.call_shape(method);
        if docs.is_empty() {
            docs = format!("`{}`.", method.model.name);
        }
        let helper = match (kind, node) {
            (CallKind::Unary, false) => "this.transport.unary",
            (CallKind::ServerStreaming, false) => "this.transport.serverStream",
            (CallKind::Unary, true) => "nodeUnary",
            (CallKind::ServerStreaming, true) => "nodeServerStream",
            (CallKind::ClientStreaming, _) => "nodeClientStream",
            (CallKind::Bidirectional, _) => "nodeBidi",
        };
        let target = if node { "this.client, " } else { "" };
        format!(
            "\n  /** {docs} */\n  {name}({params}options: {options_type} = {{}}): {returns} {{\n    return {helper}({target}{codec}, {value}, options);\n  }}\n"
        )
    }
}

/// Doc comment lines as one line, safe inside `/** */`.
fn doc_text(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .replace("*/", "* /")
}

fn named_key(name: &str, case: KeyCase) -> String {
    match case {
        KeyCase::AsWritten => name.to_owned(),
        KeyCase::Camel => name.to_lower_camel_case(),
        KeyCase::Pascal => name.to_upper_camel_case(),
    }
}
