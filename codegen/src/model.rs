//! The service model shared by every front end (`.proto` files, `#[msgpack_service]` traits)
//! and every back end (tonic server and client, gateway route stubs, manifests).

use heck::{ToSnakeCase, ToUpperCamelCase};
pub use tonic_msgpack_core::{CallKind, Format, HttpBinding};

/// The well-known proto types with a Rust type of the runtime's own (`google.protobuf.Empty` is
/// `()`), by full proto name: the one table the generated code, the route stubs and
/// prost-build's `extern_path`s all read.
pub const WELL_KNOWN_TYPES: [(&str, &str); 4] = [
    (".google.protobuf.Empty", "()"),
    (
        ".google.protobuf.Timestamp",
        "::tonic_msgpack::wkt::Timestamp",
    ),
    (
        ".google.protobuf.Duration",
        "::tonic_msgpack::wkt::Duration",
    ),
    (".google.protobuf.Any", "::tonic_msgpack::wkt::Any"),
];

/// The Rust type of a well-known proto type (see [`WELL_KNOWN_TYPES`]).
pub fn well_known_rust_path(full_name: &str) -> Option<&'static str> {
    WELL_KNOWN_TYPES
        .iter()
        .find(|(proto, _)| *proto == full_name)
        .map(|(_, rust)| *rust)
}

/// The codec type tonic-build should use (`codec_path`) for a format.
pub fn codec_path(format: Format) -> &'static str {
    match format {
        Format::Compact => "::tonic_msgpack::MsgPackCodec",
        Format::Named => "::tonic_msgpack::NamedMsgPackCodec",
    }
}

/// One service: a proto `service` or a `#[msgpack_service]` trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceModel {
    /// Proto package (`demo.v1`), empty for none.
    pub package: String,
    /// Service name as on the wire (`Greeter`).
    pub name: String,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Message layout of this service's codec.
    pub format: Format,
    /// The methods, in declaration order.
    pub methods: Vec<MethodModel>,
    /// The Rust trait of a `#[msgpack_service]` service (`Calculator`); `None` for protos.
    /// Its expansion puts the message types in [`ServiceModel::trait_support_module`].
    pub rust_trait: Option<String>,
}

impl ServiceModel {
    /// `demo.v1.Greeter`, or `Greeter` without a package.
    pub fn full_name(&self) -> String {
        if self.package.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.package, self.name)
        }
    }

    /// The gRPC path of a method: `/demo.v1.Greeter/SayHello` (wire format rule 1).
    pub fn method_path(&self, method: &MethodModel) -> String {
        format!("/{}/{}", self.full_name(), method.name)
    }

    /// The hidden module the `#[msgpack_service]` expansion of the trait emits next to it
    /// (`__calculator_msgpack` for `trait Calculator`), with the trait's visibility. It holds,
    /// per method, the aliases [`MethodModel::request_alias`] and [`MethodModel::response_alias`]
    /// and, unless the method is client streaming, the REST type [`MethodModel::json_request`].
    /// `None` for proto services.
    pub fn trait_support_module(&self) -> Option<String> {
        self.rust_trait
            .as_ref()
            .map(|name| format!("__{}_msgpack", name.to_snake_case()))
    }

    /// The Rust module tonic-build generates the server into (`greeter_server`).
    pub fn server_module(&self) -> String {
        format!("{}_server", tonic_snake_case(&self.name))
    }

    /// The Rust module tonic-build generates the client into (`greeter_client`).
    pub fn client_module(&self) -> String {
        format!("{}_client", tonic_snake_case(&self.name))
    }
}

/// One RPC method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodModel {
    /// Method name as on the wire (`SayHello`).
    pub name: String,
    /// Rust method name (`say_hello`).
    pub rust_name: String,
    /// Rust type of one request message, as tokens (`super::HelloRequest`, `(i64, i64)`).
    pub input_type: String,
    /// Rust type of one response message, as tokens.
    pub output_type: String,
    /// Proto full name of the request message (`.demo.v1.HelloRequest`), when from a proto.
    pub input_proto: Option<String>,
    /// Proto full name of the response message, when from a proto.
    pub output_proto: Option<String>,
    /// Client streaming / server streaming.
    pub kind: CallKind,
    /// HTTP binding for REST transcoding, when declared.
    pub http: Option<HttpBinding>,
    /// Doc comment lines.
    pub docs: Vec<String>,
}

impl MethodModel {
    /// A method named the proto way (`SayHello`) with its Rust name derived by `heck`.
    pub fn new(
        name: impl Into<String>,
        input_type: impl Into<String>,
        output_type: impl Into<String>,
        kind: CallKind,
    ) -> Self {
        let name = name.into();
        MethodModel {
            rust_name: name.to_snake_case(),
            name,
            input_type: input_type.into(),
            output_type: output_type.into(),
            input_proto: None,
            output_proto: None,
            kind,
            http: None,
            docs: Vec::new(),
        }
    }
}

impl MethodModel {
    /// Name of the alias of one request message in a trait's support module (`__AddRequest`).
    /// The prefix keeps it apart from user types such as `AddRequest`, which the support
    /// module glob-imports: an alias of the same name would refer to itself.
    pub fn request_alias(&self) -> String {
        format!("__{}Request", self.name)
    }

    /// Name of the alias of one response message (for server streaming: one element) in a
    /// trait's support module (`__AddResponse`).
    pub fn response_alias(&self) -> String {
        format!("__{}Response", self.name)
    }

    /// Name of the REST request type in a trait's support module: a JSON object
    /// keyed by argument name that serializes as the wire message (rule 6), `__AddJson`. `None` for client
    /// streaming methods, which have no REST form.
    pub fn json_request(&self) -> Option<String> {
        (!self.kind.client_streaming()).then(|| format!("__{}Json", self.name))
    }
}

/// The wire name of a Rust method: `say_hello` → `SayHello`.
pub fn wire_method_name(rust_name: &str) -> String {
    rust_name.to_upper_camel_case()
}

/// tonic-build's own module naming (`HTTPService` → `h_t_t_p_service`), which differs from
/// heck's on runs of capitals; generated code must name the modules exactly as tonic does.
pub fn tonic_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c.to_ascii_lowercase());
        if chars.peek().is_some_and(|next| next.is_uppercase()) {
            out.push('_');
        }
    }
    out
}

/// prost-build's identifier rules: raw identifiers for keywords, a trailing `_` for the
/// names that cannot be raw.
pub(crate) fn sanitize(ident: &str) -> String {
    match ident {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        _ => ident.to_owned(),
    }
}

/// The Rust path of proto message `full_name` (`.demo.v1.Outer.Inner`) in the module tree
/// prost-build generates, given where each package's module is (`package → module path`, the
/// longest matching package wins; `""` matches every package): the rest of the package
/// becomes nested modules, enclosing messages become snake_case modules
/// (`crate::proto::outer::Inner` for `demo.v1 → crate::proto`). Well-known types map to
/// what tonic-msgpack uses for them. `None` when no package matches.
pub fn proto_rust_path(full_name: &str, modules: &[(String, String)]) -> Option<String> {
    if let Some(path) = well_known_rust_path(full_name) {
        return Some(path.to_owned());
    }
    let name = full_name.trim_start_matches('.');
    let (module, rest) = modules
        .iter()
        .filter_map(|(package, module)| {
            let package = package.trim_matches('.');
            if package.is_empty() {
                Some((package.len(), module, name))
            } else {
                name.strip_prefix(package)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .map(|rest| (package.len(), module, rest))
            }
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, module, rest)| (module, rest))?;
    // Sub-package segments and enclosing messages both become snake_case modules.
    let parts: Vec<&str> = rest.split('.').collect();
    let (last, parents) = parts.split_last()?;
    let mut path = vec![module.trim_end_matches("::").to_owned()];
    path.extend(parents.iter().map(|part| sanitize(&part.to_snake_case())));
    path.push(sanitize(&last.to_upper_camel_case()));
    Some(path.join("::"))
}
