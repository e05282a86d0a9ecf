//! C# from a contract: `[MessagePackObject]` classes (integer keys for the compact layout,
//! string keys for the named one), enums, a `Marshaller<T>` factory and a typed client per
//! service over `CallInvoker` (Grpc.Core.Api), as `docs/csharp.md` describes by hand.
//!
//! Output is deterministic: types sorted by full name, one `namespace` block per package.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::bail;
use heck::{ToLowerCamelCase, ToUpperCamelCase};
use tonic_msgpack_build::model::contract::{
    Contract, Enum, Field, Message, Method, Origin, Request, Scalar, Service, TypeRef,
};
use tonic_msgpack_build::model::{CallKind, Format, KeyCase};

/// Options of `gen csharp`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CsharpOptions {
    /// The namespace of types and services without a package (default `TonicMsgPack.Generated`).
    pub(crate) namespace: Option<String>,
    /// The layout of proto messages (a proto build's `key_case`): `None` compact.
    pub(crate) proto_key_case: Option<KeyCase>,
}

/// The namespace of the shared helpers (`MsgPack`, `Duration`).
const HELPERS: &str = "TonicMsgPack";

/// One type to emit: where it lives and under which C# name.
struct Placed {
    namespace: String,
    class: String,
}

struct Gen<'a> {
    contract: &'a Contract,
    options: &'a CsharpOptions,
    /// Full name → its C# namespace and class name.
    names: BTreeMap<String, Placed>,
    /// Messages and enums to emit (proto: all; Rust: those the services reach).
    messages: BTreeSet<String>,
    enums: BTreeSet<String>,
    /// The layout and key case each message travels in.
    layouts: BTreeMap<String, (Format, KeyCase)>,
}

/// The C# file for `contract`.
pub(crate) fn generate(contract: &Contract, options: &CsharpOptions) -> anyhow::Result<String> {
    let mut generator = Gen {
        contract,
        options,
        names: BTreeMap::new(),
        messages: BTreeSet::new(),
        enums: BTreeSet::new(),
        layouts: BTreeMap::new(),
    };
    generator.collect()?;
    Ok(generator.file())
}

/// `demo.v1` → `Demo.V1`.
fn namespace_of(package: &str) -> String {
    package
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_upper_camel_case())
        .collect::<Vec<_>>()
        .join(".")
}

impl Gen<'_> {
    fn default_namespace(&self) -> String {
        self.options
            .namespace
            .clone()
            .unwrap_or_else(|| "TonicMsgPack.Generated".to_owned())
    }

    fn service_namespace(&self, service: &Service) -> String {
        if service.model.package.is_empty() {
            self.default_namespace()
        } else {
            namespace_of(&service.model.package)
        }
    }

    /// Which types to emit, their names and layouts.
    fn collect(&mut self) -> anyhow::Result<()> {
        // Proto types: every one, in the namespace of its package.
        let packages = self.proto_packages();
        for name in self
            .contract
            .messages
            .keys()
            .chain(self.contract.enums.keys())
        {
            if !name.starts_with('.') {
                continue;
            }
            let package = packages
                .iter()
                .filter(|p| {
                    p.is_empty() || name[1..].starts_with(&format!("{p}.")) && name.len() > p.len()
                })
                .max_by_key(|p| p.len())
                .cloned()
                .unwrap_or_default();
            let rest = if package.is_empty() {
                &name[1..]
            } else {
                &name[package.len() + 2..]
            };
            let namespace = if package.is_empty() {
                self.default_namespace()
            } else {
                namespace_of(&package)
            };
            let class = rest
                .split('.')
                .map(|part| part.to_upper_camel_case())
                .collect::<Vec<_>>()
                .join("_");
            if self.contract.messages.contains_key(name) {
                self.messages.insert(name.clone());
                let layout = match self.options.proto_key_case {
                    Some(case) => (Format::Named, case),
                    None => (Format::Compact, KeyCase::AsWritten),
                };
                self.layouts.insert(name.clone(), layout);
            } else {
                self.enums.insert(name.clone());
            }
            self.names.insert(name.clone(), Placed { namespace, class });
        }
        // Rust types: those the trait services reach, in the first such service's namespace.
        for service in &self.contract.services {
            if service.origin != Origin::Trait {
                continue;
            }
            let namespace = self.service_namespace(service);
            let mut pending: Vec<TypeRef> = Vec::new();
            for method in &service.methods {
                if let Request::Args(args) = &method.request {
                    pending.extend(args.iter().map(|a| a.ty.clone()));
                }
                pending.push(method.response.clone());
            }
            while let Some(ty) = pending.pop() {
                match ty {
                    TypeRef::Message(name) if !self.names.contains_key(&name) => {
                        let Some(message) = self.contract.messages.get(&name) else {
                            continue;
                        };
                        let format = message.format.unwrap_or(service.model.format);
                        self.layouts
                            .insert(name.clone(), (format, message.key_case));
                        pending.extend(message.fields.iter().map(|f| f.ty.clone()));
                        self.messages.insert(name.clone());
                        self.names.insert(
                            name.clone(),
                            Placed {
                                namespace: namespace.clone(),
                                class: name.to_upper_camel_case(),
                            },
                        );
                    }
                    TypeRef::Enum(name) if !self.names.contains_key(&name) => {
                        self.enums.insert(name.clone());
                        self.names.insert(
                            name.clone(),
                            Placed {
                                namespace: namespace.clone(),
                                class: name.to_upper_camel_case(),
                            },
                        );
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
        let mut seen = BTreeMap::new();
        for (full, placed) in &self.names {
            let key = format!("{}.{}", placed.namespace, placed.class);
            if let Some(previous) = seen.insert(key.clone(), full.clone()) {
                bail!(
                    "`{previous}` and `{full}` would both be the C# type `{key}`; rename one or give --namespace"
                );
            }
        }
        Ok(())
    }

    /// The packages of the proto services and types (from the services' packages and the
    /// message names).
    fn proto_packages(&self) -> BTreeSet<String> {
        let mut packages: BTreeSet<String> = self
            .contract
            .services
            .iter()
            .filter(|s| s.origin == Origin::Proto)
            .map(|s| s.model.package.clone())
            .collect();
        // A message's package: its leading lower-case segments (protobuf style).
        for name in self
            .contract
            .messages
            .keys()
            .chain(self.contract.enums.keys())
        {
            if let Some(rest) = name.strip_prefix('.') {
                let segments: Vec<&str> = rest.split('.').collect();
                let split = segments
                    .iter()
                    .position(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
                    .unwrap_or(segments.len().saturating_sub(1));
                packages.insert(segments[..split].join("."));
            }
        }
        packages
    }

    /// The C# type of a reference, qualified when it lives in another namespace than `here`.
    fn type_name(&self, ty: &TypeRef, here: &str) -> String {
        match ty {
            TypeRef::Unit => "global::MessagePack.Nil".to_owned(),
            TypeRef::Scalar(scalar) => scalar_type(*scalar).to_owned(),
            // A Rust enum travels by variant name: a string (its constants name the values).
            TypeRef::Enum(name) if self.contract.enums.get(name).is_some_and(|e| e.by_name) => {
                "string".to_owned()
            }
            TypeRef::Enum(name) | TypeRef::Message(name) => match self.names.get(name) {
                Some(placed) if placed.namespace == here => placed.class.clone(),
                Some(placed) => format!("global::{}.{}", placed.namespace, placed.class),
                None => "object".to_owned(),
            },
            TypeRef::List(inner) => format!(
                "global::System.Collections.Generic.List<{}>",
                self.type_name(inner, here)
            ),
            TypeRef::Map(key, value) => format!(
                "global::System.Collections.Generic.Dictionary<{}, {}>",
                self.type_name(key, here),
                self.type_name(value, here)
            ),
            TypeRef::Optional(inner) => {
                let inner = self.type_name(inner, here);
                if inner.ends_with('?') {
                    inner
                } else {
                    format!("{inner}?")
                }
            }
            TypeRef::Tuple(elements) => format!(
                "({})",
                elements
                    .iter()
                    .map(|e| self.type_name(e, here))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeRef::Timestamp => "global::System.DateTime".to_owned(),
            TypeRef::Duration => format!("global::{HELPERS}.Duration"),
            TypeRef::Other(_) => "object".to_owned(),
        }
    }

    fn file(&self) -> String {
        let mut out = String::new();
        out.push_str("// <auto-generated>\n//   Generated by `tonic-msgpack gen csharp`. Do not edit: regenerate.\n//   Wire format v1: compact messages are arrays by field number ([Key(n - 1)]), named ones\n//   maps by key; trait arguments travel as MagicOnion sends them.\n// </auto-generated>\n");
        out.push_str("#nullable enable\n#pragma warning disable CS1591 // members are documented by the contract's comments only\n");
        // Group by namespace, deterministic.
        let mut namespaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for name in self.enums.iter().chain(&self.messages) {
            if let Some(placed) = self.names.get(name) {
                namespaces
                    .entry(placed.namespace.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        let mut services: BTreeMap<String, Vec<&Service>> = BTreeMap::new();
        for service in &self.contract.services {
            services
                .entry(self.service_namespace(service))
                .or_default()
                .push(service);
        }
        for namespace in services.keys() {
            namespaces.entry(namespace.clone()).or_default();
        }
        out.push('\n');
        out.push_str(&helpers());
        for (namespace, types) in &namespaces {
            let _ = write!(out, "\nnamespace {namespace}\n{{\n");
            let mut first = true;
            let mut sorted = types.clone();
            sorted.sort_by_key(|name| self.names.get(name).map(|p| p.class.clone()));
            for name in &sorted {
                if !first {
                    out.push('\n');
                }
                first = false;
                if let Some(enumeration) = self.contract.enums.get(name) {
                    out.push_str(&self.enumeration(enumeration));
                } else if let Some(message) = self.contract.messages.get(name) {
                    out.push_str(&self.message(message, namespace));
                }
            }
            for service in services.get(namespace).into_iter().flatten() {
                if !first {
                    out.push('\n');
                }
                first = false;
                out.push_str(&self.service(service, namespace));
            }
            out.push_str("}\n");
        }
        out
    }

    fn enumeration(&self, enumeration: &Enum) -> String {
        let class = &self.names[&enumeration.name].class;
        let mut out = String::new();
        docs(&mut out, &enumeration.docs, "    ");
        if enumeration.by_name {
            // rmp-serde writes unit variants by name: a C# enum would be written as an int.
            let _ = writeln!(
                out,
                "    /// <remarks>Travels as its variant name (a MessagePack string), not a number: use these constants.</remarks>"
            );
            let _ = writeln!(out, "    public static class {class}\n    {{");
            for value in &enumeration.values {
                let _ = writeln!(
                    out,
                    "        public const string {} = \"{}\";",
                    value.name.to_upper_camel_case(),
                    value.name
                );
            }
            out.push_str("    }\n");
            return out;
        }
        // Proto style `COLOR_RED` in enum `Color` → `Red`.
        let prefix = format!(
            "{}_",
            enumeration
                .name
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_uppercase()
        );
        let _ = writeln!(out, "    public enum {class}\n    {{");
        for value in &enumeration.values {
            let bare = value.name.strip_prefix(&prefix).unwrap_or(&value.name);
            let _ = writeln!(
                out,
                "        {} = {},",
                bare.to_lowercase().to_upper_camel_case(),
                value.number
            );
        }
        out.push_str("    }\n");
        out
    }

    fn message(&self, message: &Message, namespace: &str) -> String {
        let class = &self.names[&message.name].class;
        let (format, key_case) = self
            .layouts
            .get(&message.name)
            .copied()
            .unwrap_or((Format::Compact, KeyCase::AsWritten));
        let mut out = String::new();
        docs(&mut out, &message.docs, "    ");
        let _ = writeln!(
            out,
            "    [global::MessagePack.MessagePackObject]\n    public sealed class {class}\n    {{"
        );
        for field in &message.fields {
            docs(&mut out, &field.docs, "        ");
            let key = match format {
                Format::Compact => (field.number.saturating_sub(1)).to_string(),
                Format::Named => format!("\"{}\"", named_key(&field.name, key_case)),
            };
            let (ty, init) = self.member(field, namespace);
            let mut property = field.name.to_upper_camel_case();
            if &property == class {
                property.push_str("Value");
            }
            let _ = writeln!(
                out,
                "        [global::MessagePack.Key({key})] public {ty} {property} {{ get; set; }}{init}"
            );
        }
        out.push_str("    }\n");
        out
    }

    /// A member's C# type and initializer: messages, oneof members, proto3 `optional`,
    /// wrappers and Timestamps may be `nil` on the wire, so they are nullable.
    fn member(&self, field: &Field, here: &str) -> (String, &'static str) {
        let nullable = field.optional || field.oneof.is_some();
        let ty = &field.ty;
        let base = self.type_name(ty, here);
        match ty {
            _ if nullable => {
                if base.ends_with('?') {
                    (base, "")
                } else {
                    (format!("{base}?"), "")
                }
            }
            TypeRef::Scalar(Scalar::String) => (base, " = \"\";"),
            TypeRef::Enum(_) if base == "string" => (base, " = \"\";"),
            TypeRef::Scalar(Scalar::Bytes) => (base, " = global::System.Array.Empty<byte>();"),
            TypeRef::List(_) | TypeRef::Map(..) => (base, " = new();"),
            TypeRef::Message(name) if name.starts_with('.') => (format!("{base}?"), ""),
            TypeRef::Timestamp if field.location.file.ends_with(".proto") => {
                (format!("{base}?"), "")
            }
            TypeRef::Duration if field.location.file.ends_with(".proto") => {
                (format!("{base}?"), "")
            }
            TypeRef::Message(_) | TypeRef::Duration => (base, " = new();"),
            TypeRef::Other(_) => (format!("{base}?"), ""),
            _ => (base, ""),
        }
    }

    fn service(&self, service: &Service, namespace: &str) -> String {
        let name = &service.model.name;
        let client = format!("{}Client", name.to_upper_camel_case());
        let mut out = String::new();
        // Argument classes of trait methods with two or more arguments (MagicOnion's
        // DynamicArgumentTuple layout: an array of the arguments in order).
        for method in &service.methods {
            if let Request::Args(args) = &method.request
                && args.len() >= 2
                && !method.model.kind.client_streaming()
            {
                let _ = writeln!(
                    out,
                    "    /// <summary>The arguments of <c>{}/{}</c>, as MagicOnion's <c>DynamicArgumentTuple</c> writes them: an array in declared order.</summary>",
                    service.model.full_name(),
                    method.model.name
                );
                let _ = writeln!(
                    out,
                    "    [global::MessagePack.MessagePackObject]\n    public sealed class {}\n    {{",
                    args_class(service, method)
                );
                for (i, arg) in args.iter().enumerate() {
                    let ty = self.type_name(&arg.ty, namespace);
                    let init = match &arg.ty {
                        TypeRef::Scalar(Scalar::String) => " = \"\";",
                        TypeRef::Enum(_) if ty == "string" => " = \"\";",
                        TypeRef::Scalar(Scalar::Bytes) => " = global::System.Array.Empty<byte>();",
                        TypeRef::List(_) | TypeRef::Map(..) | TypeRef::Message(_) => " = new();",
                        _ => "",
                    };
                    let _ = writeln!(
                        out,
                        "        [global::MessagePack.Key({i})] public {ty} {} {{ get; set; }}{init}",
                        arg.name.to_upper_camel_case()
                    );
                }
                out.push_str("    }\n\n");
            }
        }
        let mut summary = service.model.docs.clone();
        summary.push(format!(
            "Client of <c>{}</c> over any <see cref=\"global::Grpc.Core.CallInvoker\"/> (Grpc.Net.Client's <c>channel.CreateCallInvoker()</c>).",
            service.model.full_name()
        ));
        docs(&mut out, &summary, "    ");
        let _ = writeln!(out, "    public sealed class {client}\n    {{");
        let _ = writeln!(
            out,
            "        public const string ServiceName = \"{}\";\n",
            service.model.full_name()
        );
        for method in &service.methods {
            let (request, response) = self.method_types(service, method, namespace);
            let kind = match method.model.kind {
                CallKind::Unary => "Unary",
                CallKind::ServerStreaming => "ServerStreaming",
                CallKind::ClientStreaming => "ClientStreaming",
                CallKind::Bidirectional => "DuplexStreaming",
            };
            let _ = writeln!(
                out,
                "        /// <summary><c>{}</c></summary>\n        public static readonly global::Grpc.Core.Method<{request}, {response}> {}Method = new(\n            global::Grpc.Core.MethodType.{kind}, ServiceName, \"{}\",\n            global::{HELPERS}.MsgPack.Marshaller<{request}>(), global::{HELPERS}.MsgPack.Marshaller<{response}>());\n",
                service.model.method_path(&method.model),
                method.model.name,
                method.model.name
            );
        }
        let _ = writeln!(
            out,
            "        private readonly global::Grpc.Core.CallInvoker invoker;\n\n        public {client}(global::Grpc.Core.CallInvoker invoker) => this.invoker = invoker;"
        );
        for method in &service.methods {
            out.push('\n');
            out.push_str(&self.client_method(service, method, namespace));
        }
        out.push_str("    }\n");
        out
    }

    /// The C# request and response types of one method.
    fn method_types(&self, service: &Service, method: &Method, here: &str) -> (String, String) {
        let request = match &method.request {
            Request::Message(ty) => self.type_name(ty, here),
            Request::Args(args) => match args.as_slice() {
                [] => "global::MessagePack.Nil".to_owned(),
                [single] => self.type_name(&single.ty, here),
                _ => args_class(service, method),
            },
        };
        (request, self.type_name(&method.response, here))
    }

    fn client_method(&self, service: &Service, method: &Method, here: &str) -> String {
        let (request, response) = self.method_types(service, method, here);
        let name = &method.model.name;
        let field = format!("{name}Method");
        let mut out = String::new();
        docs(&mut out, &method.model.docs, "        ");
        // Trait methods take their arguments; proto methods the request message.
        let (params, value) = match &method.request {
            Request::Args(args) if !method.model.kind.client_streaming() => match args.as_slice() {
                [] => (String::new(), "global::MessagePack.Nil.Default".to_owned()),
                [single] => (
                    format!(
                        "{} {}, ",
                        self.type_name(&single.ty, here),
                        param(&single.name)
                    ),
                    param(&single.name),
                ),
                several => (
                    several
                        .iter()
                        .map(|a| format!("{} {}, ", self.type_name(&a.ty, here), param(&a.name)))
                        .collect(),
                    format!(
                        "new {} {{ {} }}",
                        request,
                        several
                            .iter()
                            .map(|a| format!(
                                "{} = {}",
                                a.name.to_upper_camel_case(),
                                param(&a.name)
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            },
            _ => (format!("{request} request, "), "request".to_owned()),
        };
        let options = "global::Grpc.Core.CallOptions options = default";
        match method.model.kind {
            CallKind::Unary => {
                let _ = writeln!(
                    out,
                    "        public global::Grpc.Core.AsyncUnaryCall<{response}> {name}Async({params}{options}) =>\n            invoker.AsyncUnaryCall({field}, null, options, {value});"
                );
            }
            CallKind::ServerStreaming => {
                let _ = writeln!(
                    out,
                    "        public global::Grpc.Core.AsyncServerStreamingCall<{response}> {name}({params}{options}) =>\n            invoker.AsyncServerStreamingCall({field}, null, options, {value});"
                );
            }
            CallKind::ClientStreaming => {
                let _ = writeln!(
                    out,
                    "        public global::Grpc.Core.AsyncClientStreamingCall<{request}, {response}> {name}({options}) =>\n            invoker.AsyncClientStreamingCall({field}, null, options);"
                );
            }
            CallKind::Bidirectional => {
                let _ = writeln!(
                    out,
                    "        public global::Grpc.Core.AsyncDuplexStreamingCall<{request}, {response}> {name}({options}) =>\n            invoker.AsyncDuplexStreamingCall({field}, null, options);"
                );
            }
        }
        out
    }
}

/// `Calculator` + `Add` → `CalculatorAddArgs`.
fn args_class(service: &Service, method: &Method) -> String {
    format!(
        "{}{}Args",
        service.model.name.to_upper_camel_case(),
        method.model.name
    )
}

/// A C# parameter name (`@` before keywords).
fn param(name: &str) -> String {
    let name = name.to_lower_camel_case();
    const KEYWORDS: &[&str] = &[
        "base",
        "bool",
        "byte",
        "char",
        "checked",
        "class",
        "decimal",
        "default",
        "delegate",
        "double",
        "event",
        "explicit",
        "fixed",
        "float",
        "foreach",
        "goto",
        "implicit",
        "int",
        "interface",
        "internal",
        "is",
        "lock",
        "long",
        "namespace",
        "new",
        "null",
        "object",
        "operator",
        "out",
        "params",
        "private",
        "protected",
        "public",
        "readonly",
        "sbyte",
        "sealed",
        "short",
        "sizeof",
        "stackalloc",
        "string",
        "switch",
        "this",
        "throw",
        "try",
        "typeof",
        "uint",
        "ulong",
        "unchecked",
        "ushort",
        "using",
        "virtual",
        "void",
        "volatile",
        "options",
        "request",
    ];
    if KEYWORDS.contains(&name.as_str()) {
        format!("@{name}")
    } else {
        name
    }
}

fn scalar_type(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::Bool => "bool",
        Scalar::Int {
            signed: true,
            bits: 8,
        } => "sbyte",
        Scalar::Int {
            signed: true,
            bits: 16,
        } => "short",
        Scalar::Int {
            signed: true,
            bits: 32,
        } => "int",
        Scalar::Int { signed: true, .. } => "long",
        Scalar::Int {
            signed: false,
            bits: 8,
        } => "byte",
        Scalar::Int {
            signed: false,
            bits: 16,
        } => "ushort",
        Scalar::Int {
            signed: false,
            bits: 32,
        } => "uint",
        Scalar::Int { signed: false, .. } => "ulong",
        Scalar::Float { bits: 32 } => "float",
        Scalar::Float { .. } => "double",
        Scalar::String => "string",
        Scalar::Bytes => "byte[]",
    }
}

/// The key of a field in the named layout.
fn named_key(name: &str, case: KeyCase) -> String {
    match case {
        KeyCase::AsWritten => name.to_owned(),
        KeyCase::Camel => name.to_lower_camel_case(),
        KeyCase::Pascal => name.to_upper_camel_case(),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A `<summary>` of contract comments (escaped); lines that start with `<` are our own markup.
fn docs(out: &mut String, lines: &[String], indent: &str) {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}/// <summary>");
    for line in lines {
        let text = if line.starts_with('<') || line.starts_with("Client of <c>") {
            line.to_owned()
        } else {
            xml_escape(line)
        };
        let _ = writeln!(out, "{indent}/// {text}");
    }
    let _ = writeln!(out, "{indent}/// </summary>");
}

/// The marshaller factory and the Duration class every generated file shares.
fn helpers() -> String {
    format!(
        r#"namespace {HELPERS}
{{
    /// <summary>Marshallers for tonic-msgpack services: exactly one MessagePack value per message, standard resolver, untrusted-data security, no LZ4.</summary>
    public static class MsgPack
    {{
        public static readonly global::MessagePack.MessagePackSerializerOptions Options =
            global::MessagePack.MessagePackSerializerOptions.Standard
                .WithSecurity(global::MessagePack.MessagePackSecurity.UntrustedData);

        public static global::Grpc.Core.Marshaller<T> Marshaller<T>() =>
            global::Grpc.Core.Marshallers.Create(
                serializer: (T value) => global::MessagePack.MessagePackSerializer.Serialize(value, Options),
                deserializer: (byte[] bytes) => global::MessagePack.MessagePackSerializer.Deserialize<T>(bytes, Options));
    }}

    /// <summary><c>google.protobuf.Duration</c> on the wire: <c>[seconds, nanos]</c>. Not <see cref="global::System.TimeSpan"/>, which MessagePack-CSharp writes as an int64 of ticks; convert with <see cref="ToTimeSpan"/> and <see cref="FromTimeSpan"/>.</summary>
    [global::MessagePack.MessagePackObject]
    public sealed class Duration
    {{
        [global::MessagePack.Key(0)] public long Seconds {{ get; set; }}
        [global::MessagePack.Key(1)] public int Nanos {{ get; set; }}

        public global::System.TimeSpan ToTimeSpan() =>
            global::System.TimeSpan.FromTicks(Seconds * global::System.TimeSpan.TicksPerSecond + Nanos / 100);

        public static Duration FromTimeSpan(global::System.TimeSpan value) => new()
        {{
            Seconds = value.Ticks / global::System.TimeSpan.TicksPerSecond,
            Nanos = (int)(value.Ticks % global::System.TimeSpan.TicksPerSecond) * 100,
        }};
    }}
}}
"#
    )
}
