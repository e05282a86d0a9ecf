//! Python from a contract: a `@dataclass` per message with `to_msgpack`/`from_msgpack` (the
//! `msgpack` package) writing exactly the compact or named layout, an `IntEnum` per enum, and a
//! typed client per service over a `grpc.Channel` (grpcio) with the four call kinds. The output
//! passes `mypy --strict` (with `types-grpcio` and `msgpack-types`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use heck::{ToSnakeCase, ToUpperCamelCase};
use tonic_msgpack_build::model::contract::{
    Contract, Field, Message, Method, Request, Scalar, Service, TypeRef,
};
use tonic_msgpack_build::model::{CallKind, Format, KeyCase};

/// Options of `gen python`.
#[derive(Debug, Clone, Default)]
pub(crate) struct PythonOptions {
    /// The layout of proto messages (a proto build's `key_case`): `None` compact.
    pub(crate) proto_key_case: Option<KeyCase>,
}

/// The Python file for `contract`.
pub(crate) fn generate(contract: &Contract, options: &PythonOptions) -> anyhow::Result<String> {
    let mut generator = Gen {
        contract,
        names: BTreeMap::new(),
        layouts: BTreeMap::new(),
        messages: BTreeSet::new(),
        enums: BTreeSet::new(),
    };
    generator.collect(options)?;
    Ok(generator.file())
}

struct Gen<'a> {
    contract: &'a Contract,
    /// Full name → Python class name.
    names: BTreeMap<String, String>,
    layouts: BTreeMap<String, (Format, KeyCase)>,
    messages: BTreeSet<String>,
    enums: BTreeSet<String>,
}

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "self", "cls", "timeout", "metadata", "requests", "request",
];

/// A Python identifier: snake_case, `_` after keywords and the names the stubs use.
fn ident(name: &str) -> String {
    let name = name.to_snake_case();
    if KEYWORDS.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

impl Gen<'_> {
    fn collect(&mut self, options: &PythonOptions) -> anyhow::Result<()> {
        let selection = super::types::select(self.contract, options.proto_key_case);
        self.messages = selection.messages;
        self.enums = selection.enums;
        self.layouts = selection.layouts;
        // Class names: the proto name without its package (`Outer_Inner` for nested ones).
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for name in self.messages.iter().chain(&self.enums) {
            let class = super::types::type_name(name);
            if let Some(previous) = seen.insert(class.clone(), name.clone()) {
                anyhow::bail!(
                    "`{previous}` and `{name}` would both be the Python class `{class}`; generate them into separate modules"
                );
            }
            self.names.insert(name.clone(), class);
        }
        Ok(())
    }

    /// Whether enum `name` travels by variant name (a plain Rust enum).
    fn by_name(&self, name: &str) -> bool {
        self.contract.enums.get(name).is_some_and(|e| e.by_name)
    }

    /// The annotation of a type.
    fn annotation(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Unit => "Nil".to_owned(),
            TypeRef::Scalar(Scalar::Bool) => "bool".to_owned(),
            TypeRef::Scalar(Scalar::Int { .. }) => "int".to_owned(),
            TypeRef::Scalar(Scalar::Float { .. }) => "float".to_owned(),
            TypeRef::Scalar(Scalar::String) => "str".to_owned(),
            TypeRef::Scalar(Scalar::Bytes) => "bytes".to_owned(),
            // A Rust enum travels by variant name.
            TypeRef::Enum(name) if self.by_name(name) => "str".to_owned(),
            // Enums are open: an unknown number is kept (the IntEnum names the known ones).
            TypeRef::Enum(_) => "int".to_owned(),
            TypeRef::Message(name) => self
                .names
                .get(name)
                .cloned()
                .unwrap_or_else(|| "Any".to_owned()),
            TypeRef::List(inner) => format!("List[{}]", self.annotation(inner)),
            TypeRef::Map(key, value) => {
                format!("Dict[{}, {}]", self.annotation(key), self.annotation(value))
            }
            TypeRef::Optional(inner) => format!("Optional[{}]", self.annotation(inner)),
            TypeRef::Tuple(elements) => format!(
                "Tuple[{}]",
                elements
                    .iter()
                    .map(|e| self.annotation(e))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeRef::Timestamp => "msgpack.Timestamp".to_owned(),
            TypeRef::Duration => "Duration".to_owned(),
            TypeRef::Other(_) => "Any".to_owned(),
        }
    }

    /// Whether a field is `None` when unset (it travels as nil then).
    fn nullable(&self, field: &Field, proto: bool) -> bool {
        field.optional
            || field.oneof.is_some()
            || matches!(field.ty, TypeRef::Optional(_))
            || (proto
                && matches!(
                    field.ty,
                    TypeRef::Message(_) | TypeRef::Timestamp | TypeRef::Duration
                ))
    }

    /// Statements writing `value` (an expression of type `ty`) to `w`, at `indent`.
    fn write(&self, ty: &TypeRef, value: &str, indent: &str, depth: usize, out: &mut String) {
        let _ = match ty {
            TypeRef::Unit => writeln!(out, "{indent}w.value(None)"),
            TypeRef::Scalar(Scalar::Float { bits: 32 }) => writeln!(out, "{indent}w.f32({value})"),
            TypeRef::Scalar(Scalar::Float { .. }) => {
                writeln!(out, "{indent}w.value(float({value}))")
            }
            TypeRef::Scalar(_) | TypeRef::Timestamp | TypeRef::Other(_) => {
                writeln!(out, "{indent}w.value({value})")
            }
            TypeRef::Enum(name) if self.by_name(name) => writeln!(out, "{indent}w.value({value})"),
            TypeRef::Enum(_) => writeln!(out, "{indent}w.value(int({value}))"),
            TypeRef::Message(name) if self.names.contains_key(name) => {
                writeln!(out, "{indent}{value}._write(w)")
            }
            TypeRef::Message(_) => writeln!(out, "{indent}w.value({value})"),
            TypeRef::Duration => writeln!(out, "{indent}{value}._write(w)"),
            TypeRef::List(inner) => {
                let item = format!("{}_x{depth}", loop_tag(value));
                let _ = writeln!(out, "{indent}w.array(len({value}))");
                let _ = writeln!(out, "{indent}for {item} in {value}:");
                self.write(inner, &item, &format!("{indent}    "), depth + 1, out);
                Ok(())
            }
            TypeRef::Map(key, item) => {
                let tag = loop_tag(value);
                let (k, v) = (format!("{tag}_k{depth}"), format!("{tag}_v{depth}"));
                let _ = writeln!(out, "{indent}w.map(len({value}))");
                let _ = writeln!(out, "{indent}for {k}, {v} in {value}.items():");
                self.write(key, &k, &format!("{indent}    "), depth + 1, out);
                self.write(item, &v, &format!("{indent}    "), depth + 1, out);
                Ok(())
            }
            TypeRef::Optional(inner) => {
                let _ = writeln!(out, "{indent}if {value} is None:");
                let _ = writeln!(out, "{indent}    w.value(None)");
                let _ = writeln!(out, "{indent}else:");
                self.write(inner, value, &format!("{indent}    "), depth, out);
                Ok(())
            }
            TypeRef::Tuple(elements) => {
                let _ = writeln!(out, "{indent}w.array({})", elements.len());
                for (i, element) in elements.iter().enumerate() {
                    self.write(element, &format!("{value}[{i}]"), indent, depth, out);
                }
                Ok(())
            }
        };
    }

    /// An expression reading `value` (decoded MessagePack, `Any`) as `ty`.
    fn read(&self, ty: &TypeRef, value: &str, depth: usize) -> String {
        match ty {
            TypeRef::Unit => "NIL".to_owned(),
            TypeRef::Scalar(Scalar::Bool) => format!("_bool({value})"),
            TypeRef::Enum(name) if self.by_name(name) => format!("_str({value})"),
            TypeRef::Scalar(Scalar::Int { .. }) | TypeRef::Enum(_) => format!("_int({value})"),
            TypeRef::Scalar(Scalar::Float { .. }) => format!("_float({value})"),
            TypeRef::Scalar(Scalar::String) => format!("_str({value})"),
            TypeRef::Scalar(Scalar::Bytes) => format!("_bytes({value})"),
            TypeRef::Message(name) => match self.names.get(name) {
                Some(class) => format!("{class}._read({value})"),
                None => value.to_owned(),
            },
            TypeRef::List(inner) => {
                let item = format!("x{depth}");
                format!(
                    "[{} for {item} in _list({value})]",
                    self.read(inner, &item, depth + 1)
                )
            }
            TypeRef::Map(key, item) => {
                let (k, v) = (format!("k{depth}"), format!("v{depth}"));
                format!(
                    "{{{}: {} for {k}, {v} in _dict({value}).items()}}",
                    self.read(key, &k, depth + 1),
                    self.read(item, &v, depth + 1)
                )
            }
            TypeRef::Optional(inner) => format!(
                "(None if {value} is None else {})",
                self.read(inner, value, depth)
            ),
            TypeRef::Tuple(elements) => format!(
                "({},)",
                elements
                    .iter()
                    .enumerate()
                    .map(|(i, e)| self.read(e, &format!("_list({value})[{i}]"), depth))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypeRef::Timestamp => format!("_timestamp({value})"),
            TypeRef::Duration => format!("Duration._read({value})"),
            TypeRef::Other(_) => value.to_owned(),
        }
    }

    /// The default of a non-nullable field, as a dataclass default.
    fn default(&self, ty: &TypeRef) -> String {
        match ty {
            TypeRef::Unit => "NIL".to_owned(),
            TypeRef::Scalar(Scalar::Bool) => "False".to_owned(),
            TypeRef::Enum(name) if self.by_name(name) => self
                .contract
                .enums
                .get(name)
                .and_then(|e| e.values.first())
                .map_or_else(|| "\"\"".to_owned(), |v| format!("{:?}", v.name)),
            TypeRef::Scalar(Scalar::Int { .. }) | TypeRef::Enum(_) => "0".to_owned(),
            TypeRef::Scalar(Scalar::Float { .. }) => "0.0".to_owned(),
            TypeRef::Scalar(Scalar::String) => "\"\"".to_owned(),
            TypeRef::Scalar(Scalar::Bytes) => "b\"\"".to_owned(),
            TypeRef::List(_) => "dataclasses.field(default_factory=list)".to_owned(),
            TypeRef::Map(..) => "dataclasses.field(default_factory=dict)".to_owned(),
            TypeRef::Message(name) => match self.names.get(name) {
                Some(class) => format!("dataclasses.field(default_factory=lambda: {class}())"),
                None => "None".to_owned(),
            },
            TypeRef::Duration => "dataclasses.field(default_factory=Duration)".to_owned(),
            TypeRef::Timestamp => {
                "dataclasses.field(default_factory=lambda: msgpack.Timestamp(0))".to_owned()
            }
            _ => "None".to_owned(),
        }
    }

    fn file(&self) -> String {
        let mut out = String::from(PRELUDE);
        for name in &self.enums {
            if let Some(enumeration) = self.contract.enums.get(name) {
                let class = &self.names[name];
                out.push_str("\n\n");
                if enumeration.by_name {
                    // rmp-serde writes unit variants by name.
                    let _ = writeln!(out, "class {class}:");
                    let _ = writeln!(
                        out,
                        "    \"\"\"Travels as its variant name (a string).\"\"\"\n"
                    );
                    for value in &enumeration.values {
                        let _ = writeln!(
                            out,
                            "    {}: Final = {:?}",
                            value.name.to_uppercase(),
                            value.name
                        );
                    }
                } else {
                    let _ = writeln!(out, "class {class}(enum.IntEnum):");
                    for value in &enumeration.values {
                        let _ = writeln!(out, "    {} = {}", value.name, value.number);
                    }
                }
            }
        }
        for name in &self.messages {
            if let Some(message) = self.contract.messages.get(name) {
                out.push_str("\n\n");
                out.push_str(&self.message(message));
            }
        }
        for service in &self.contract.services {
            out.push_str("\n\n");
            out.push_str(self.service(service).trim_start_matches('\n'));
        }
        out
    }

    fn message(&self, message: &Message) -> String {
        let class = &self.names[&message.name];
        let proto = message.name.starts_with('.');
        let (format, key_case) = self.layouts[&message.name];
        let mut out = String::new();
        let _ = writeln!(out, "@dataclasses.dataclass\nclass {class}:");
        let docs: Vec<&str> = message
            .docs
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        let layout = match format {
            Format::Compact => "compact: an array by field number".to_owned(),
            Format::Named => format!("named: a map, keys {}", key_case.as_str()),
        };
        let _ = writeln!(
            out,
            "    \"\"\"{}{}`{}` ({layout}).\"\"\"\n",
            docs.join(" ")
                .replace('\\', "\\\\")
                .replace("\"\"\"", "'''"),
            if docs.is_empty() { "" } else { " " },
            message.name.trim_start_matches('.')
        );
        for field in &message.fields {
            let annotation = self.annotation(&field.ty);
            if self.nullable(field, proto) && !matches!(field.ty, TypeRef::Optional(_)) {
                let _ = writeln!(
                    out,
                    "    {}: Optional[{annotation}] = None",
                    ident(&field.name)
                );
            } else {
                let _ = writeln!(
                    out,
                    "    {}: {annotation} = {}",
                    ident(&field.name),
                    self.default(&field.ty)
                );
            }
        }
        if message.fields.is_empty() {
            out.push_str("    pass\n");
        }
        // Writing.
        out.push_str("\n    def _write(self, w: _Writer) -> None:\n");
        match format {
            Format::Compact => {
                let len = message.fields.iter().map(|f| f.number).max().unwrap_or(0);
                let _ = writeln!(out, "        w.array({len})");
                for number in 1..=len {
                    match message.fields.iter().find(|f| f.number == number) {
                        Some(field) => self.write_field(field, proto, &mut out),
                        None => out.push_str("        w.value(None)\n"),
                    }
                }
            }
            Format::Named => {
                // Like the Rust side (wire rule 7): of a oneof, only the member that is set.
                let fixed = message.fields.iter().filter(|f| f.oneof.is_none()).count();
                let set_members: String = message
                    .fields
                    .iter()
                    .filter(|f| f.oneof.is_some())
                    .map(|f| format!(" + (self.{} is not None)", ident(&f.name)))
                    .collect();
                let _ = writeln!(out, "        w.map({fixed}{set_members})");
                for field in message.fields.iter().filter(|f| f.oneof.is_none()) {
                    let key = named_key(&field.name, key_case);
                    let _ = writeln!(out, "        w.value({key:?})");
                    self.write_field(field, proto, &mut out);
                }
                // After the other fields, oneof by oneof in declaration order, as prost's
                // structs (and so the Rust side's maps) hold them.
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
                        let key = named_key(&field.name, key_case);
                        let value = format!("self.{}", ident(&field.name));
                        let _ = writeln!(
                            out,
                            "        if {value} is not None:\n            w.value({key:?})"
                        );
                        self.write(&field.ty, &value, "            ", 0, &mut out);
                    }
                }
            }
        }
        // Reading.
        let _ = writeln!(
            out,
            "\n    @classmethod\n    def _read(cls, value: Any) -> \"{class}\":"
        );
        if message.fields.is_empty() {
            out.push_str("        return cls()\n");
        } else {
            out.push_str("        get = _fields(value)\n        return cls(\n");
            for field in &message.fields {
                let raw = format!(
                    "get({}, {:?})",
                    field.number - 1,
                    named_key(&field.name, key_case)
                );
                let expression =
                    if self.nullable(field, proto) && !matches!(field.ty, TypeRef::Optional(_)) {
                        format!("_opt({raw}, lambda v: {})", self.read(&field.ty, "v", 0))
                    } else {
                        self.read(&field.ty, &raw, 0)
                    };
                let _ = writeln!(out, "            {}={expression},", ident(&field.name));
            }
            out.push_str("        )\n");
        }
        let _ = write!(
            out,
            "\n    def to_msgpack(self) -> bytes:\n        w = _Writer()\n        self._write(w)\n        return w.bytes()\n\n    @classmethod\n    def from_msgpack(cls, data: bytes) -> \"{class}\":\n        return cls._read(_unpack(data))\n"
        );
        out
    }

    fn write_field(&self, field: &Field, proto: bool, out: &mut String) {
        let value = format!("self.{}", ident(&field.name));
        if self.nullable(field, proto) && !matches!(field.ty, TypeRef::Optional(_)) {
            let _ = writeln!(
                out,
                "        if {value} is None:\n            w.value(None)\n        else:"
            );
            self.write(&field.ty, &value, "            ", 0, out);
        } else {
            self.write(&field.ty, &value, "        ", 0, out);
        }
    }

    fn service(&self, service: &Service) -> String {
        let class = format!("{}Client", service.model.name.to_upper_camel_case());
        let mut out = String::new();
        let mut functions = String::new();
        let _ = writeln!(out, "class {class}:");
        let docs: Vec<&str> = service
            .model
            .docs
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        let _ = writeln!(
            out,
            "    \"\"\"{}{}Client of `{}` over a grpcio channel.\"\"\"\n",
            docs.join(" ").replace("\"\"\"", "'''"),
            if docs.is_empty() { "" } else { " " },
            service.model.full_name()
        );
        let _ = writeln!(
            out,
            "    def __init__(self, channel: grpc.Channel) -> None:"
        );
        for method in &service.methods {
            let stub = format!("_{}", ident(&method.model.name));
            let kind = match method.model.kind {
                CallKind::Unary => "unary_unary",
                CallKind::ServerStreaming => "unary_stream",
                CallKind::ClientStreaming => "stream_unary",
                CallKind::Bidirectional => "stream_stream",
            };
            let prefix = format!(
                "_{}_{}",
                service.model.name.to_snake_case(),
                method.model.name.to_snake_case()
            );
            let _ = writeln!(
                out,
                "        self.{stub} = channel.{kind}(\n            {:?},\n            request_serializer={prefix}_request,\n            response_deserializer={prefix}_response,\n        )",
                service.model.method_path(&method.model)
            );
            functions.push_str(&self.codec_functions(&prefix, method));
        }
        for method in &service.methods {
            out.push('\n');
            out.push_str(&self.client_method(method));
        }
        format!("{functions}\n\n{out}")
    }

    /// The request type a method's serializer takes.
    fn request_annotation(&self, method: &Method) -> String {
        match &method.request {
            Request::Message(ty) => self.annotation(ty),
            Request::Args(args) => match args.as_slice() {
                [] => "Nil".to_owned(),
                [single] => self.annotation(&single.ty),
                several => format!(
                    "Tuple[{}]",
                    several
                        .iter()
                        .map(|a| self.annotation(&a.ty))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
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

    /// `_{service}_{method}_request` / `_response`: one message to bytes and back.
    fn codec_functions(&self, prefix: &str, method: &Method) -> String {
        let request = self.request_annotation(method);
        let response = self.annotation(&method.response);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n\ndef {prefix}_request(message: {request}) -> bytes:\n    w = _Writer()"
        );
        self.write(&Self::request_type(method), "message", "    ", 0, &mut out);
        out.push_str("    return w.bytes()\n");
        let _ = writeln!(
            out,
            "\n\ndef {prefix}_response(data: bytes) -> {response}:\n    value = _unpack(data)\n    return {}",
            self.read(&method.response, "value", 0)
        );
        out
    }

    fn client_method(&self, method: &Method) -> String {
        let name = ident(&method.model.name);
        let stub = format!("self._{name}");
        let request = self.request_annotation(method);
        let response = self.annotation(&method.response);
        let options = "timeout: Optional[float] = None, metadata: Optional[Metadata] = None";
        let call_options = "timeout=timeout, metadata=metadata";
        let (params, value) = match &method.request {
            Request::Args(args) if !method.model.kind.client_streaming() => match args.as_slice() {
                [] => (String::new(), "NIL".to_owned()),
                [single] => (
                    format!("{}: {}, ", ident(&single.name), self.annotation(&single.ty)),
                    ident(&single.name),
                ),
                several => (
                    several
                        .iter()
                        .map(|a| format!("{}: {}, ", ident(&a.name), self.annotation(&a.ty)))
                        .collect(),
                    format!(
                        "({},)",
                        several
                            .iter()
                            .map(|a| ident(&a.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            },
            _ => (format!("request: {request}, "), "request".to_owned()),
        };
        let docs: Vec<&str> = method
            .model
            .docs
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        let doc = if docs.is_empty() {
            String::new()
        } else {
            format!(
                "        \"\"\"{}\"\"\"\n",
                docs.join(" ")
                    .replace('\\', "\\\\")
                    .replace("\"\"\"", "'''")
            )
        };
        match method.model.kind {
            CallKind::Unary => format!(
                "    def {name}(self, {params}{options}) -> {response}:\n{doc}        return {stub}({value}, {call_options})\n"
            ),
            CallKind::ServerStreaming => format!(
                "    def {name}(self, {params}{options}) -> Iterator[{response}]:\n{doc}        return {stub}({value}, {call_options})\n"
            ),
            CallKind::ClientStreaming => format!(
                "    def {name}(self, requests: Iterable[{request}], {options}) -> {response}:\n{doc}        return {stub}(iter(requests), {call_options})\n"
            ),
            CallKind::Bidirectional => format!(
                "    def {name}(self, requests: Iterable[{request}], {options}) -> Iterator[{response}]:\n{doc}        return {stub}(iter(requests), {call_options})\n"
            ),
        }
    }
}

/// A loop variable prefix unique to the value written (mypy types each name once per function).
fn loop_tag(value: &str) -> String {
    value
        .rsplit('.')
        .next()
        .unwrap_or(value)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn named_key(name: &str, case: KeyCase) -> String {
    use heck::ToLowerCamelCase;
    match case {
        KeyCase::AsWritten => name.to_owned(),
        KeyCase::Camel => name.to_lower_camel_case(),
        KeyCase::Pascal => name.to_upper_camel_case(),
    }
}

/// Helpers every generated module shares.
const PRELUDE: &str = r#"# @generated by `tonic-msgpack gen python`. Do not edit: regenerate.
#
# Wire format v1: compact messages are arrays by field number (nil for gaps and unset
# values), named ones maps by key; trait arguments travel as nil, the bare value or an array.
# Checked with `mypy --strict` (types-grpcio, msgpack-types).
"""Messages and grpcio clients generated from a tonic-msgpack contract."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, Dict, Final, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

import grpc
import msgpack

Metadata = Tuple[Tuple[str, Union[str, bytes]], ...]
_T = TypeVar("_T")


class Nil:
    """The MessagePack nil of an empty request or response (grpcio treats None as no message)."""

    def __repr__(self) -> str:
        return "NIL"


NIL: Final = Nil()


class _Writer:
    """Writes one MessagePack value piece by piece: float32 where the schema says float."""

    def __init__(self) -> None:
        self._chunks: List[bytes] = []
        self._double = msgpack.Packer(use_bin_type=True)
        self._single = msgpack.Packer(use_bin_type=True, use_single_float=True)

    def array(self, length: int) -> None:
        self._chunks.append(self._double.pack_array_header(length))

    def map(self, length: int) -> None:
        self._chunks.append(self._double.pack_map_header(length))

    def value(self, value: Any) -> None:
        self._chunks.append(self._double.pack(value))

    def f32(self, value: float) -> None:
        self._chunks.append(self._single.pack(float(value)))

    def bytes(self) -> bytes:
        return b"".join(self._chunks)


def _unpack(data: bytes) -> Any:
    """Exactly one MessagePack value (wire format rule 2)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=0)


def _fields(value: Any) -> Callable[[int, str], Any]:
    """Field access by number (array) or key (map); nil or a missing field is None."""
    if isinstance(value, (list, tuple)):
        items = value
        return lambda index, key: items[index] if index < len(items) else None
    if isinstance(value, dict):
        entries = value
        return lambda index, key: entries.get(key)
    if value is None:
        return lambda index, key: None
    raise ValueError(f"expected a message (array, map or nil), got {type(value).__name__}")


def _opt(value: Any, read: Callable[[Any], _T]) -> Optional[_T]:
    return None if value is None else read(value)


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _float(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a float, got {value!r}")
    return float(value)


def _bool(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"expected a bool, got {value!r}")
    return value


def _str(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, bytes):
        raise ValueError(f"expected bytes (bin), got {value!r}")
    return value


def _list(value: Any) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected an array, got {value!r}")
    return list(value)


def _dict(value: Any) -> Dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a map, got {value!r}")
    return value


def _timestamp(value: Any) -> msgpack.Timestamp:
    if value is None:
        return msgpack.Timestamp(0)
    if not isinstance(value, msgpack.Timestamp):
        raise ValueError(f"expected a timestamp (ext -1), got {value!r}")
    return value


@dataclasses.dataclass
class Duration:
    """`google.protobuf.Duration`: `[seconds, nanos]`."""

    seconds: int = 0
    nanos: int = 0

    def _write(self, w: _Writer) -> None:
        w.array(2)
        w.value(self.seconds)
        w.value(self.nanos)

    @classmethod
    def _read(cls, value: Any) -> "Duration":
        get = _fields(value)
        return cls(seconds=_int(get(0, "seconds")), nanos=_int(get(1, "nanos")))
"#;
