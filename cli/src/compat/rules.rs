//! The comparison: two contracts → every change, classified by what it does on the wire.
//!
//! One function per level (services, methods, arguments, messages, enums, types); each finding
//! names its rule (the ids of the table in `docs/compat.md`) and says what breaks for whom.

use std::collections::{BTreeMap, BTreeSet};

use tonic_msgpack_build::model::contract::{
    Arg, Contract, Enum, Location, Message, Method, Request, Scalar, Service, TypeRef,
};
use tonic_msgpack_build::model::{CallKind, Format, HttpBinding, KeyCase};

/// How bad a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Safe in both directions.
    Ok,
    /// Breaks source, names or the range of values, not the MessagePack bytes of existing calls.
    Warning,
    /// Breaks existing peers on the wire.
    Error,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    /// The rule's id (`field-number-reused`), as in the docs' table.
    pub(crate) rule: &'static str,
    /// Where: the new definition, or the old one for a removal.
    pub(crate) location: Location,
    /// One sentence: what changed, what breaks and for whom.
    pub(crate) message: String,
}

/// Every change from `old` to `new`.
pub(crate) fn compare(old: &Contract, new: &Contract) -> Vec<Finding> {
    let mut check = Check {
        old,
        new,
        findings: Vec::new(),
        compared: BTreeSet::new(),
        old_formats: formats(old).0,
        new_formats: formats(new).0,
        reachable_enums: formats(old).1.into_iter().chain(formats(new).1).collect(),
    };
    check.services();
    check.messages();
    check.enums();
    check.findings
}

struct Check<'a> {
    old: &'a Contract,
    new: &'a Contract,
    findings: Vec<Finding>,
    /// Message pairs already compared field by field (recursion and repeated references).
    compared: BTreeSet<(String, String)>,
    old_formats: BTreeMap<String, Format>,
    new_formats: BTreeMap<String, Format>,
    /// Enums some method reaches (Rust enums elsewhere in the files are not contract).
    reachable_enums: BTreeSet<String>,
}

/// The layout each message a method reaches travels in (its own, or that of the first service
/// reaching it), and the enums methods reach.
fn formats(contract: &Contract) -> (BTreeMap<String, Format>, BTreeSet<String>) {
    let mut out = BTreeMap::new();
    let mut enums = BTreeSet::new();
    for service in &contract.services {
        let mut pending: Vec<&TypeRef> = Vec::new();
        for method in &service.methods {
            match &method.request {
                Request::Message(ty) => pending.push(ty),
                Request::Args(args) => pending.extend(args.iter().map(|a| &a.ty)),
            }
            pending.push(&method.response);
        }
        while let Some(ty) = pending.pop() {
            match ty {
                TypeRef::Message(name) => {
                    if out.contains_key(name) {
                        continue;
                    }
                    let message = contract.messages.get(name);
                    let format = message
                        .and_then(|m| m.format)
                        .unwrap_or(service.model.format);
                    out.insert(name.clone(), format);
                    if let Some(message) = message {
                        pending.extend(message.fields.iter().map(|f| &f.ty));
                    }
                }
                TypeRef::List(inner) | TypeRef::Optional(inner) => pending.push(inner),
                TypeRef::Map(key, value) => {
                    pending.push(key);
                    pending.push(value);
                }
                TypeRef::Tuple(elements) => pending.extend(elements),
                TypeRef::Enum(name) => {
                    enums.insert(name.clone());
                }
                _ => {}
            }
        }
    }
    (out, enums)
}

fn kind_name(kind: CallKind) -> &'static str {
    match kind {
        CallKind::Unary => "unary",
        CallKind::ServerStreaming => "server streaming",
        CallKind::ClientStreaming => "client streaming",
        CallKind::Bidirectional => "bidirectional streaming",
    }
}

fn binding_text(binding: &HttpBinding) -> String {
    match &binding.body {
        Some(body) => format!("{} {} (body {body})", binding.method, binding.path),
        None => format!("{} {}", binding.method, binding.path),
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Compact => "compact (arrays by field number)",
        Format::Named => "named (maps by key)",
    }
}

fn key_case_name(case: KeyCase) -> &'static str {
    match case {
        KeyCase::AsWritten => "as written",
        KeyCase::Camel => "camelCase",
        KeyCase::Pascal => "PascalCase",
    }
}

fn short(name: &str) -> &str {
    name.trim_start_matches('.')
}

/// The result of comparing two types.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TypeChange {
    Same,
    /// Every old value still decodes; said why.
    Widened(String),
    /// Some values or nil no longer decode; said which.
    Narrowed(String),
    /// The bytes of one side do not decode as the other; said why.
    Incompatible(String),
}

impl<'a> Check<'a> {
    fn push(
        &mut self,
        severity: Severity,
        rule: &'static str,
        location: &Location,
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            rule,
            location: location.clone(),
            message,
        });
    }

    fn services(&mut self) {
        let old_names: BTreeSet<String> = self
            .old
            .services
            .iter()
            .map(|s| s.model.full_name())
            .collect();
        let new_names: BTreeSet<String> = self
            .new
            .services
            .iter()
            .map(|s| s.model.full_name())
            .collect();
        let mut renamed_to = BTreeSet::new();
        for old in &self.old.services {
            let name = old.model.full_name();
            if let Some(new) = self.new.service(&name) {
                self.service(old, new);
                continue;
            }
            // A service that is gone while one with the same methods appeared: renamed.
            let methods = |s: &Service| -> Vec<String> {
                s.model.methods.iter().map(|m| m.name.clone()).collect()
            };
            let candidate = self.new.services.iter().find(|s| {
                !old_names.contains(&s.model.full_name())
                    && !renamed_to.contains(&s.model.full_name())
                    && methods(s) == methods(old)
            });
            if let Some(new) = candidate {
                renamed_to.insert(new.model.full_name());
                self.push(
                    Severity::Error,
                    "service-renamed",
                    &new.location,
                    format!(
                        "service `{name}` was renamed to `{}`: the gRPC paths change, so old clients get UNIMPLEMENTED from the new server and new clients get UNIMPLEMENTED from old servers",
                        new.model.full_name()
                    ),
                );
                self.service(old, new);
            } else {
                self.push(
                    Severity::Error,
                    "service-removed",
                    &old.location,
                    format!(
                        "service `{name}` was removed: old clients calling any of its methods get UNIMPLEMENTED from the new server"
                    ),
                );
            }
        }
        for new in &self.new.services {
            let name = new.model.full_name();
            if !old_names.contains(&name) && !renamed_to.contains(&name) {
                self.push(
                    Severity::Ok,
                    "service-added",
                    &new.location,
                    format!(
                        "service `{name}` was added: nothing existing changes (new clients calling it on an old server get UNIMPLEMENTED)"
                    ),
                );
            }
        }
        debug_assert!(new_names.len() == self.new.services.len());
    }

    fn service(&mut self, old: &Service, new: &Service) {
        let name = new.model.full_name();
        if old.model.format != new.model.format {
            self.push(
                Severity::Error,
                "format-changed",
                &new.location,
                format!(
                    "service `{name}` changed its layout from {} to {}: old clients cannot decode the new server's replies and the new server rejects old clients' requests",
                    format_name(old.model.format),
                    format_name(new.model.format)
                ),
            );
        }
        let mut renamed_to = BTreeSet::new();
        for old_method in &old.methods {
            if let Some(new_method) = new
                .methods
                .iter()
                .find(|m| m.model.name == old_method.model.name)
            {
                self.method(&name, old_method, new_method);
                continue;
            }
            let candidate = new.methods.iter().find(|m| {
                !old.methods.iter().any(|o| o.model.name == m.model.name)
                    && !renamed_to.contains(&m.model.name)
                    && m.model.kind == old_method.model.kind
                    && same_request(&m.request, &old_method.request)
                    && m.response == old_method.response
            });
            if let Some(new_method) = candidate {
                renamed_to.insert(new_method.model.name.clone());
                self.push(
                    Severity::Error,
                    "method-renamed",
                    &new_method.location,
                    format!(
                        "method `{name}/{}` was renamed to `{}`: its gRPC path changes, so old clients get UNIMPLEMENTED from the new server and new clients get UNIMPLEMENTED from old servers",
                        old_method.model.name, new_method.model.name
                    ),
                );
            } else {
                self.push(
                    Severity::Error,
                    "method-removed",
                    &old_method.location,
                    format!(
                        "method `{name}/{}` was removed: old clients calling it get UNIMPLEMENTED from the new server",
                        old_method.model.name
                    ),
                );
            }
        }
        for new_method in &new.methods {
            if !old
                .methods
                .iter()
                .any(|o| o.model.name == new_method.model.name)
                && !renamed_to.contains(&new_method.model.name)
            {
                self.push(
                    Severity::Ok,
                    "method-added",
                    &new_method.location,
                    format!(
                        "method `{name}/{}` was added: old clients are not affected (new clients calling it on an old server get UNIMPLEMENTED)",
                        new_method.model.name
                    ),
                );
            }
        }
    }

    fn method(&mut self, service: &str, old: &Method, new: &Method) {
        let path = format!("{service}/{}", new.model.name);
        if old.model.kind != new.model.kind {
            self.push(
                Severity::Error,
                "call-kind-changed",
                &new.location,
                format!(
                    "method `{path}` changed from {} to {}: old clients and the new server disagree on how many messages each side sends, so calls fail both ways",
                    kind_name(old.model.kind),
                    kind_name(new.model.kind)
                ),
            );
        }
        self.http(&path, old, new);
        match (&old.request, &new.request) {
            (Request::Args(old_args), Request::Args(new_args)) => {
                self.arguments(&path, new, old_args, new_args);
            }
            (Request::Message(old_ty), Request::Message(new_ty)) => {
                self.payload(&path, "request", &new.location, old_ty, new_ty);
            }
            (old_request, new_request) => {
                let old_ty = request_type(old_request);
                let new_ty = request_type(new_request);
                self.payload(&path, "request", &new.location, &old_ty, &new_ty);
            }
        }
        self.payload(
            &path,
            "response",
            &new.location,
            &old.response,
            &new.response,
        );
    }

    fn http(&mut self, path: &str, old: &Method, new: &Method) {
        match (&old.model.http, &new.model.http) {
            (Some(before), None) => self.push(
                Severity::Error,
                "http-removed",
                &new.location,
                format!(
                    "REST binding `{}` of `{path}` was removed: REST clients of the old contract get 404 from a gateway with the new routes",
                    binding_text(before)
                ),
            ),
            (Some(before), Some(after)) if before != after => self.push(
                Severity::Error,
                "http-changed",
                &new.location,
                format!(
                    "REST binding of `{path}` changed from `{}` to `{}`: REST clients of the old contract get 404 or lose fields at a gateway with the new routes",
                    binding_text(before),
                    binding_text(after)
                ),
            ),
            (None, Some(after)) => self.push(
                Severity::Ok,
                "http-added",
                &new.location,
                format!(
                    "REST binding `{}` was added to `{path}`: existing callers are not affected",
                    binding_text(after)
                ),
            ),
            _ => {}
        }
    }

    /// A method's request or response type (not trait arguments).
    fn payload(
        &mut self,
        path: &str,
        what: &str,
        location: &Location,
        old: &TypeRef,
        new: &TypeRef,
    ) {
        let (rule, narrowed) = if what == "response" {
            ("return-type-changed", "return-type-narrowed")
        } else {
            ("request-type-changed", "request-type-narrowed")
        };
        match self.types(old, new) {
            TypeChange::Same => {}
            TypeChange::Widened(why) => self.push(
                Severity::Ok,
                narrowed,
                location,
                format!("{what} of `{path}` changed from {old} to {new}: {why}"),
            ),
            TypeChange::Narrowed(why) => self.push(
                Severity::Warning,
                narrowed,
                location,
                format!("{what} of `{path}` changed from {old} to {new}: {why}"),
            ),
            TypeChange::Incompatible(why) => self.push(
                Severity::Error,
                rule,
                location,
                format!(
                    "{what} of `{path}` changed from {old} to {new} ({why}): {}",
                    if what == "response" {
                        "old clients cannot decode the new server's replies, and new clients cannot decode old servers' replies"
                    } else {
                        "the new server rejects old clients' requests, and old servers reject new clients' requests"
                    }
                ),
            ),
        }
    }

    /// Trait arguments: positional (wire format rule 6).
    fn arguments(&mut self, path: &str, method: &Method, old: &[Arg], new: &[Arg]) {
        let old_names: Vec<&str> = old.iter().map(|a| a.name.as_str()).collect();
        let new_names: Vec<&str> = new.iter().map(|a| a.name.as_str()).collect();
        let mut removed: BTreeSet<&str> = old_names
            .iter()
            .copied()
            .filter(|n| !new_names.contains(n))
            .collect();
        let mut added: BTreeSet<&str> = new_names
            .iter()
            .copied()
            .filter(|n| !old_names.contains(n))
            .collect();
        // The arguments both have, in each one's order.
        let common_old: Vec<&str> = old_names
            .iter()
            .copied()
            .filter(|n| new_names.contains(n))
            .collect();
        let common_new: Vec<&str> = new_names
            .iter()
            .copied()
            .filter(|n| old_names.contains(n))
            .collect();
        if common_old != common_new {
            self.push(
                Severity::Error,
                "argument-reordered",
                &method.location,
                format!(
                    "arguments of `{path}` were reordered from ({}) to ({}): arguments travel by position, so old clients' values reach the wrong arguments of the new server (silently when the types match, rejected when they do not)",
                    old_names.join(", "),
                    new_names.join(", ")
                ),
            );
        }
        // Renamed in place: as many arguments, the old name gone and a new one at its position.
        let mut pairs: Vec<(&Arg, &Arg)> = Vec::new();
        if old.len() == new.len() {
            for (before, after) in old.iter().zip(new) {
                if removed.contains(before.name.as_str()) && added.contains(after.name.as_str()) {
                    removed.remove(before.name.as_str());
                    added.remove(after.name.as_str());
                    self.push(
                        Severity::Warning,
                        "argument-renamed",
                        &after.location,
                        format!(
                            "argument `{}` of `{path}` was renamed to `{}`: the MessagePack bytes are unchanged (arguments travel by position), but REST/JSON callers that send `{{\"{}\": …}}` and HTTP templates naming it break",
                            before.name, after.name, before.name
                        ),
                    );
                    pairs.push((before, after));
                }
            }
        }
        for arg in old.iter().filter(|a| removed.contains(a.name.as_str())) {
            self.push(
                Severity::Error,
                "argument-removed",
                &method.location,
                format!(
                    "argument `{}` of `{path}` was removed: the request goes from {} to {}, so the new server rejects old clients' requests and old servers reject new clients' requests",
                    arg.name,
                    shape(old.len()),
                    shape(new.len())
                ),
            );
        }
        for (position, arg) in new.iter().enumerate() {
            if !added.contains(arg.name.as_str()) {
                continue;
            }
            match new[position + 1..]
                .iter()
                .find(|later| !added.contains(later.name.as_str()))
            {
                Some(next) => self.push(
                    Severity::Error,
                    "argument-inserted",
                    &arg.location,
                    format!(
                        "argument `{}` was inserted before `{}` in `{path}`: every later argument moves one position, so old clients' values reach the wrong arguments and the new server rejects their shorter requests",
                        arg.name, next.name
                    ),
                ),
                None => self.push(
                    Severity::Error,
                    "argument-appended",
                    &arg.location,
                    format!(
                        "argument `{}` was appended to `{path}`: the request goes from {} to {} and the trait decoder requires every argument (an `Option` one too), so the new server rejects old clients' requests and old servers reject new clients' requests",
                        arg.name,
                        shape(old.len()),
                        shape(new.len())
                    ),
                ),
            }
        }
        for before in old {
            if let Some(after) = new.iter().find(|a| a.name == before.name) {
                pairs.push((before, after));
            }
        }
        for (before, after) in pairs {
            match self.types(&before.ty, &after.ty) {
                TypeChange::Same => {}
                TypeChange::Widened(why) => self.push(
                    Severity::Ok,
                    "argument-narrowed",
                    &after.location,
                    format!(
                        "argument `{}` of `{path}` changed from {} to {}: {why}",
                        after.name, before.ty, after.ty
                    ),
                ),
                TypeChange::Narrowed(why) => self.push(
                    Severity::Warning,
                    "argument-narrowed",
                    &after.location,
                    format!(
                        "argument `{}` of `{path}` changed from {} to {}: {why}",
                        after.name, before.ty, after.ty
                    ),
                ),
                TypeChange::Incompatible(why) => self.push(
                    Severity::Error,
                    "argument-retyped",
                    &after.location,
                    format!(
                        "argument `{}` of `{path}` changed from {} to {} ({why}): the new server rejects old clients' requests and old servers reject new clients' requests",
                        after.name, before.ty, after.ty
                    ),
                ),
            }
        }
    }

    /// Compares two types by wire meaning; messages of different names field by field.
    fn types(&mut self, old: &TypeRef, new: &TypeRef) -> TypeChange {
        use TypeRef as T;
        match (old, new) {
            _ if old == new => TypeChange::Same,
            (T::Scalar(a), T::Scalar(b)) => scalars(*a, *b),
            (T::Enum(_), T::Scalar(Scalar::Int { .. }))
            | (T::Scalar(Scalar::Int { .. }), T::Enum(_)) => {
                if self.enum_by_name(old) || self.enum_by_name(new) {
                    TypeChange::Incompatible("an enum written by name ↔ an integer".into())
                } else {
                    TypeChange::Narrowed(
                        "enums travel as integers, so the bytes are the same, but values outside the enum are no longer named".into(),
                    )
                }
            }
            (T::Enum(a), T::Enum(b)) => self.enum_pair(a, b),
            (T::List(a), T::List(b)) => self.types(a, b),
            (T::Optional(a), T::Optional(b)) => self.types(a, b),
            (T::Map(ka, va), T::Map(kb, vb)) => match self.types(ka, kb) {
                TypeChange::Same => self.types(va, vb),
                other => other,
            },
            (T::Optional(a), b) | (b, T::Optional(a)) if **a == *b => {
                let dropped = matches!(old, T::Optional(_));
                TypeChange::Narrowed(if dropped {
                    "nil is no longer accepted: a peer of the old contract that sends nil (an unset value) is rejected".into()
                } else {
                    "nil is now possible: a peer of the old contract fails to decode nil where it expects a value".into()
                })
            }
            (T::Tuple(a), T::Tuple(b)) if a.len() == b.len() => {
                let mut worst = TypeChange::Same;
                for (x, y) in a.iter().zip(b) {
                    worst = worse(worst, self.types(x, y));
                }
                worst
            }
            (T::Message(a), T::Message(b)) => self.message_pair(a, b),
            (T::List(_), _) | (_, T::List(_)) => TypeChange::Incompatible(
                "scalar ↔ repeated: an array where a single value was, or the reverse".into(),
            ),
            (T::Message(_), _) | (_, T::Message(_)) => TypeChange::Incompatible(
                "message ↔ scalar: a nested array or map where a plain value was, or the reverse"
                    .into(),
            ),
            _ => {
                TypeChange::Incompatible(format!("{old} and {new} are different MessagePack types"))
            }
        }
    }

    fn enum_by_name(&self, ty: &TypeRef) -> bool {
        let TypeRef::Enum(name) = ty else {
            return false;
        };
        self.old
            .enums
            .get(name)
            .or_else(|| self.new.enums.get(name))
            .is_some_and(|e| e.by_name)
    }

    /// Two enums of different names: the same values by number (or by name)?
    fn enum_pair(&mut self, old: &str, new: &str) -> TypeChange {
        let (Some(a), Some(b)) = (self.old.enums.get(old), self.new.enums.get(new)) else {
            return TypeChange::Incompatible(format!("enum {old} ↔ enum {new}, not both known"));
        };
        if a.by_name != b.by_name {
            return TypeChange::Incompatible("an enum by name ↔ an enum by number".into());
        }
        let key = |e: &Enum| -> BTreeSet<(String, i32)> {
            e.values
                .iter()
                .map(|v| {
                    (
                        if e.by_name {
                            v.name.clone()
                        } else {
                            String::new()
                        },
                        v.number,
                    )
                })
                .collect()
        };
        if key(a) == key(b) {
            TypeChange::Same
        } else {
            TypeChange::Narrowed(format!(
                "enum {} and enum {} do not have the same values, so some values are read as unknown",
                short(old),
                short(new)
            ))
        }
    }

    /// Two messages of different names (a method's request now another type): field by field,
    /// without the per-field findings (those belong to messages of the same name).
    fn message_pair(&mut self, old: &str, new: &str) -> TypeChange {
        let (Some(a), Some(b)) = (self.old.messages.get(old), self.new.messages.get(new)) else {
            return TypeChange::Incompatible(format!(
                "message {} ↔ message {}, one of them unknown",
                short(old),
                short(new)
            ));
        };
        if !self
            .compared
            .insert((format!("pair:{old}"), new.to_owned()))
        {
            return TypeChange::Same;
        }
        let format_a = self.old_formats.get(old).copied().unwrap_or_default();
        let format_b = self.new_formats.get(new).copied().unwrap_or_default();
        if format_a != format_b {
            return TypeChange::Incompatible("compact ↔ named layout".into());
        }
        let mut worst = TypeChange::Same;
        for field in &a.fields {
            let other = match format_a {
                Format::Compact => b.fields.iter().find(|f| f.number == field.number),
                Format::Named => b.fields.iter().find(|f| f.name == field.name),
            };
            if let Some(other) = other {
                let change = match self.types(&field.ty, &other.ty) {
                    TypeChange::Incompatible(why) => {
                        TypeChange::Incompatible(format!("field `{}`: {why}", field.name))
                    }
                    other => other,
                };
                worst = worse(worst, change);
            }
        }
        // The same type seen from a descriptor (`.pkg.Point`) and from Rust (`Point`).
        let last = |name: &str| name.rsplit('.').next().unwrap_or(name).to_owned();
        match worst {
            TypeChange::Same if last(old) == last(new) => TypeChange::Same,
            TypeChange::Same => TypeChange::Widened(format!(
                "{} and {} have the same layout, so the bytes are unchanged",
                short(old),
                short(new)
            )),
            other => other,
        }
    }

    /// Every message defined in both contracts under the same name, field by field.
    fn messages(&mut self) {
        let names: Vec<String> = self
            .old
            .messages
            .keys()
            .filter(|name| self.new.messages.contains_key(*name))
            // Proto messages are contract by definition; a Rust struct only when a method
            // reaches it (the same files hold structs that never travel).
            .filter(|name| {
                name.starts_with('.')
                    || self.old_formats.contains_key(*name)
                    || self.new_formats.contains_key(*name)
            })
            .cloned()
            .collect();
        for name in names {
            let (Some(old), Some(new)) =
                (self.old.messages.get(&name), self.new.messages.get(&name))
            else {
                continue;
            };
            self.message(old, new);
        }
    }

    fn message(&mut self, old: &Message, new: &Message) {
        let name = short(&new.name).to_owned();
        let old_format = self
            .old_formats
            .get(&old.name)
            .copied()
            .or(old.format)
            .unwrap_or_default();
        let new_format = self
            .new_formats
            .get(&new.name)
            .copied()
            .or(new.format)
            .unwrap_or_default();
        if old_format != new_format {
            self.push(
                Severity::Error,
                "format-changed",
                &new.location,
                format!(
                    "message `{name}` changed its layout from {} to {}: old clients cannot decode it from the new server and the new server rejects it from old clients",
                    format_name(old_format),
                    format_name(new_format)
                ),
            );
            return;
        }
        if new_format == Format::Named && old.key_case != new.key_case {
            self.push(
                Severity::Error,
                "key-case-changed",
                &new.location,
                format!(
                    "message `{name}` changed its key case from {} to {}: every key is spelled differently, so old clients' fields are ignored by the new server and the new server's fields by old clients (values silently become defaults)",
                    key_case_name(old.key_case),
                    key_case_name(new.key_case)
                ),
            );
        }
        for field in &old.fields {
            let by_number = new.fields.iter().find(|f| f.number == field.number);
            let by_name = new.fields.iter().find(|f| f.name == field.name);
            let Some(other) = by_number else {
                if new_format == Format::Named
                    && let Some(moved) = by_name
                {
                    // Named layout: the key is what matters, the number is not on the wire.
                    self.field_types(&name, field, moved);
                    continue;
                }
                if new.is_reserved(field.number) {
                    self.push(
                        Severity::Ok,
                        "field-removed",
                        &new.location,
                        format!(
                            "field `{}` ({}) of `{name}` was removed and its number reserved: old clients' values are ignored and they read the default",
                            field.name, field.number
                        ),
                    );
                } else {
                    self.push(
                        Severity::Warning,
                        "field-removed",
                        &field.location,
                        format!(
                            "field `{}` ({}) of `{name}` was removed without reserving its number: old clients' values are ignored and they read the default, but a later field could reuse number {} with another type (add `reserved {};`)",
                            field.name, field.number, field.number, field.number
                        ),
                    );
                }
                continue;
            };
            if other.name != field.name {
                let change = self.types(&field.ty, &other.ty);
                if matches!(change, TypeChange::Incompatible(_)) {
                    self.push(
                        Severity::Error,
                        "field-number-reused",
                        &other.location,
                        format!(
                            "field number {} of `{name}` was `{} {}` and is now `{} {}`: old clients' values land in the new field with another type, so the new server rejects old clients' messages and old clients reject the new server's",
                            field.number, field.ty, field.name, other.ty, other.name
                        ),
                    );
                    continue;
                }
                if new_format == Format::Named {
                    self.push(
                        Severity::Error,
                        "named-key-renamed",
                        &other.location,
                        format!(
                            "key `{}` of `{name}` (named layout) was renamed to `{}`: old clients' `{}` is ignored by the new server and the new server's `{}` by old clients, so the value silently becomes its default both ways",
                            field.name, other.name, field.name, other.name
                        ),
                    );
                } else {
                    self.push(
                        Severity::Warning,
                        "field-renamed",
                        &other.location,
                        format!(
                            "field {} of `{name}` was renamed from `{}` to `{}`: the MessagePack bytes are unchanged (compact is by number), but generated code and REST/JSON callers that use the old name break",
                            field.number, field.name, other.name
                        ),
                    );
                }
            }
            self.field_types(&name, field, other);
        }
        for field in &new.fields {
            let known = match new_format {
                Format::Compact => old.fields.iter().any(|f| f.number == field.number),
                Format::Named => old
                    .fields
                    .iter()
                    .any(|f| f.name == field.name || f.number == field.number),
            };
            if !known {
                self.push(
                    Severity::Ok,
                    "field-added",
                    &field.location,
                    format!(
                        "field `{}` ({}) was added to `{name}`: old clients ignore it, and the new server reads its default from old clients",
                        field.name, field.number
                    ),
                );
            }
        }
    }

    fn field_types(
        &mut self,
        message: &str,
        old: &tonic_msgpack_build::model::contract::Field,
        new: &tonic_msgpack_build::model::contract::Field,
    ) {
        let what = format!("field `{}` ({}) of `{message}`", new.name, new.number);
        match self.types(&old.ty, &new.ty) {
            TypeChange::Same => {}
            TypeChange::Widened(why) => self.push(
                Severity::Ok,
                "field-type-narrowed",
                &new.location,
                format!("{what} changed from {} to {}: {why}", old.ty, new.ty),
            ),
            TypeChange::Narrowed(why) => self.push(
                Severity::Warning,
                "field-type-narrowed",
                &new.location,
                format!("{what} changed from {} to {}: {why}", old.ty, new.ty),
            ),
            TypeChange::Incompatible(why) => self.push(
                Severity::Error,
                "field-type-changed",
                &new.location,
                format!(
                    "{what} changed from {} to {} ({why}): the new server rejects old clients' values and old clients reject the new server's",
                    old.ty, new.ty
                ),
            ),
        }
    }

    /// Every enum defined in both contracts under the same name, value by value.
    fn enums(&mut self) {
        for (name, old) in &self.old.enums {
            let Some(new) = self.new.enums.get(name) else {
                continue;
            };
            if !name.starts_with('.') && !self.reachable_enums.contains(name) {
                continue;
            }
            let name = short(name);
            for value in &old.values {
                let same_name = new.values.iter().find(|v| v.name == value.name);
                let same_number = new.values.iter().find(|v| v.number == value.number);
                match (same_name, same_number) {
                    (Some(now), _) if now.number != value.number && !new.by_name => self.push(
                        Severity::Error,
                        "enum-value-renumbered",
                        &now.location,
                        format!(
                            "enum value `{}` of `{name}` changed from {} to {}: enums travel as numbers, so old and new peers read each other's `{}` as another value",
                            value.name, value.number, now.number, value.name
                        ),
                    ),
                    (Some(_), _) => {}
                    (None, Some(now)) if !new.by_name => self.push(
                        Severity::Warning,
                        "enum-value-renamed",
                        &now.location,
                        format!(
                            "enum value {} of `{name}` was renamed from `{}` to `{}`: the bytes are unchanged (enums travel as numbers), but source code and REST/JSON callers that use the old name break",
                            value.number, value.name, now.name
                        ),
                    ),
                    (None, _) if new.by_name => self.push(
                        Severity::Error,
                        "enum-value-removed",
                        &old.location,
                        format!(
                            "variant `{}` of `{name}` was removed or renamed: this enum travels by variant name, so the new server rejects old clients that send `{}`",
                            value.name, value.name
                        ),
                    ),
                    (None, _) => self.push(
                        Severity::Warning,
                        "enum-value-removed",
                        &value.location,
                        format!(
                            "enum value `{}` ({}) of `{name}` was removed: old clients may still send {}, which the new server no longer names; reserve the number so it is not reused",
                            value.name, value.number, value.number
                        ),
                    ),
                }
            }
            for value in &new.values {
                let known = old
                    .values
                    .iter()
                    .any(|v| v.name == value.name || (!new.by_name && v.number == value.number));
                if known {
                    continue;
                }
                if new.by_name {
                    self.push(
                        Severity::Warning,
                        "enum-value-added",
                        &value.location,
                        format!(
                            "variant `{}` was added to `{name}`: this enum travels by variant name, so old clients fail to decode a reply that carries it",
                            value.name
                        ),
                    );
                } else {
                    self.push(
                        Severity::Ok,
                        "enum-value-added",
                        &value.location,
                        format!(
                            "enum value `{}` ({}) was added to `{name}`: old clients read it as an unknown number",
                            value.name, value.number
                        ),
                    );
                }
            }
        }
    }
}

/// The wire shape of `count` trait arguments.
fn shape(count: usize) -> String {
    match count {
        0 => "nil".to_owned(),
        1 => "a bare value".to_owned(),
        n => format!("an array of {n}"),
    }
}

/// The same request types and argument names (locations aside).
fn same_request(a: &Request, b: &Request) -> bool {
    let names = |r: &Request| -> Vec<String> {
        match r {
            Request::Message(_) => Vec::new(),
            Request::Args(args) => args.iter().map(|a| a.name.clone()).collect(),
        }
    };
    request_type(a) == request_type(b) && names(a) == names(b)
}

/// One request message as a type: a trait's arguments as nil, the value or a tuple.
fn request_type(request: &Request) -> TypeRef {
    match request {
        Request::Message(ty) => ty.clone(),
        Request::Args(args) => match args.as_slice() {
            [] => TypeRef::Unit,
            [single] => single.ty.clone(),
            several => TypeRef::Tuple(several.iter().map(|a| a.ty.clone()).collect()),
        },
    }
}

fn worse(a: TypeChange, b: TypeChange) -> TypeChange {
    let rank = |c: &TypeChange| match c {
        TypeChange::Same => 0,
        TypeChange::Widened(_) => 1,
        TypeChange::Narrowed(_) => 2,
        TypeChange::Incompatible(_) => 3,
    };
    if rank(&b) > rank(&a) { b } else { a }
}

fn scalars(old: Scalar, new: Scalar) -> TypeChange {
    use Scalar as S;
    match (old, new) {
        (S::Int { signed: s1, bits: b1 }, S::Int { signed: s2, bits: b2 }) => {
            let range = |signed: bool, bits: u8| -> (i128, i128) {
                if signed {
                    (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
                } else {
                    (0, (1i128 << bits) - 1)
                }
            };
            let (lo1, hi1) = range(s1, b1);
            let (lo2, hi2) = range(s2, b2);
            if lo2 <= lo1 && hi2 >= hi1 {
                TypeChange::Widened(format!(
                    "every old value still decodes (a new peer's values beyond {} fail in old peers)",
                    TypeRef::Scalar(old)
                ))
            } else {
                TypeChange::Narrowed(format!(
                    "values outside {} that an old peer sends fail to decode",
                    TypeRef::Scalar(new)
                ))
            }
        }
        (S::Float { bits: 32 }, S::Float { bits: 64 }) => TypeChange::Widened(
            "float32 values still decode as float64 (new float64 values lose precision in old peers)".into(),
        ),
        (S::Float { .. }, S::Float { .. }) => TypeChange::Narrowed(
            "float64 values lose precision when read as float32".into(),
        ),
        (S::Int { .. }, S::Float { .. }) | (S::Float { .. }, S::Int { .. }) => {
            TypeChange::Incompatible("int ↔ float: MessagePack ints and floats are different types".into())
        }
        (S::String, S::Bytes) | (S::Bytes, S::String) => {
            TypeChange::Incompatible("string ↔ bytes: MessagePack str and bin are different types".into())
        }
        _ => TypeChange::Incompatible(format!(
            "{} ↔ {}: different MessagePack types",
            TypeRef::Scalar(old),
            TypeRef::Scalar(new)
        )),
    }
}
