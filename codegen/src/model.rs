//! The service model shared by every front end (`.proto` files, `#[msgpack_service]` traits)
//! and every back end (tonic server and client, gateway route stubs, manifests).

use heck::{ToSnakeCase, ToUpperCamelCase};

/// How messages of a service are laid out in MessagePack (wire format v1, rules 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Structs as arrays (MessagePack-CSharp's `[Key(n)]` layout). The default.
    #[default]
    Compact,
    /// Structs as maps keyed by field name.
    Named,
}

impl Format {
    /// The codec type tonic-build should use (`codec_path`).
    pub fn codec_path(self) -> &'static str {
        match self {
            Format::Compact => "::tonic_msgpack::MsgPackCodec",
            Format::Named => "::tonic_msgpack::NamedMsgPackCodec",
        }
    }

    /// The lowercase name used in attributes, configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Compact => "compact",
            Format::Named => "named",
        }
    }

    /// Parses `"compact"` or `"named"`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "compact" => Some(Format::Compact),
            "named" => Some(Format::Named),
            _ => None,
        }
    }
}

/// The four gRPC call kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    Bidirectional,
}

impl CallKind {
    /// The kind for a pair of streaming flags.
    pub fn from_flags(client_streaming: bool, server_streaming: bool) -> Self {
        match (client_streaming, server_streaming) {
            (false, false) => CallKind::Unary,
            (false, true) => CallKind::ServerStreaming,
            (true, false) => CallKind::ClientStreaming,
            (true, true) => CallKind::Bidirectional,
        }
    }

    /// Whether the client sends a stream.
    pub fn client_streaming(self) -> bool {
        matches!(self, CallKind::ClientStreaming | CallKind::Bidirectional)
    }

    /// Whether the server answers with a stream.
    pub fn server_streaming(self) -> bool {
        matches!(self, CallKind::ServerStreaming | CallKind::Bidirectional)
    }

    /// The snake_case name used in manifests and route tables.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Unary => "unary",
            CallKind::ServerStreaming => "server_streaming",
            CallKind::ClientStreaming => "client_streaming",
            CallKind::Bidirectional => "bidi_streaming",
        }
    }
}

/// An HTTP binding of a method (from `google.api.http` or `#[rpc(http = "...")]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpBinding {
    /// Upper-case HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// Path template, e.g. `/v1/sum/{a}/{b}`.
    pub path: String,
    /// Which request field the body maps to: `Some("*")` for the whole message, `None` for no body.
    pub body: Option<String>,
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
