//! Small enums: call kinds, message formats and key cases.

use std::fmt;
use std::str::FromStr;

/// A name that is not one of an enum's spellings (`"bidi"` for a [`CallKind`], say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being parsed (`"call kind"`, `"format"`, `"key case"`).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`: expected ", self.what, self.name)?;
        for (index, name) in self.expected.iter().enumerate() {
            match index {
                0 => {}
                _ if index + 1 == self.expected.len() => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "\"{name}\"")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownName {}

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
    /// Every kind, in the order above.
    pub const ALL: [CallKind; 4] = [
        CallKind::Unary,
        CallKind::ServerStreaming,
        CallKind::ClientStreaming,
        CallKind::Bidirectional,
    ];

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

    /// The snake_case name used in manifests, route tables and `/routes`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Unary => "unary",
            CallKind::ServerStreaming => "server_streaming",
            CallKind::ClientStreaming => "client_streaming",
            CallKind::Bidirectional => "bidi_streaming",
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        CallKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "call kind",
                name: name.to_owned(),
                expected: &[
                    "unary",
                    "server_streaming",
                    "client_streaming",
                    "bidi_streaming",
                ],
            })
    }
}

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
    /// The lowercase name used in attributes, configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Compact => "compact",
            Format::Named => "named",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, UnknownName> {
        match name {
            "compact" => Ok(Format::Compact),
            "named" => Ok(Format::Named),
            _ => Err(UnknownName {
                what: "format",
                name: name.to_owned(),
                expected: &["compact", "named"],
            }),
        }
    }
}

/// How keys of the named layout are spelled (wire format rule 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyCase {
    /// As written in the schema (the `.proto` field name, the Rust field name). The default.
    #[default]
    AsWritten,
    /// `lowerCamelCase`, the proto JSON name.
    Camel,
    /// `PascalCase`, MessagePack-CSharp's `keyAsPropertyName`.
    Pascal,
}

impl KeyCase {
    /// The spelling used in attributes (`#[msgpack(key_case = "camelCase")]`) and configs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyCase::AsWritten => "as_written",
            KeyCase::Camel => "camelCase",
            KeyCase::Pascal => "PascalCase",
        }
    }
}

impl fmt::Display for KeyCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyCase {
    type Err = UnknownName;

    /// Also accepts `snake_case` for [`KeyCase::AsWritten`] (proto field names are snake_case).
    fn from_str(name: &str) -> Result<Self, UnknownName> {
        match name {
            "as_written" | "snake_case" => Ok(KeyCase::AsWritten),
            "camelCase" => Ok(KeyCase::Camel),
            "PascalCase" => Ok(KeyCase::Pascal),
            _ => Err(UnknownName {
                what: "key_case",
                name: name.to_owned(),
                expected: &["as_written", "camelCase", "PascalCase"],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in CallKind::ALL {
            assert_eq!(kind.as_str().parse::<CallKind>(), Ok(kind));
            assert_eq!(
                CallKind::from_flags(kind.client_streaming(), kind.server_streaming()),
                kind
            );
        }
        for format in [Format::Compact, Format::Named] {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        for case in [KeyCase::AsWritten, KeyCase::Camel, KeyCase::Pascal] {
            assert_eq!(case.as_str().parse::<KeyCase>(), Ok(case));
        }
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = "kebab".parse::<KeyCase>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key_case `kebab`: expected \"as_written\", \"camelCase\" or \"PascalCase\""
        );
        let err = "bidi".parse::<CallKind>().unwrap_err();
        assert!(err.to_string().contains("\"bidi_streaming\""), "{err}");
    }
}
