//! The shared vocabulary of tonic-msgpack.
//!
//! Every other crate of the project (code generator, macros, runtime, gateway, CLI) names these
//! types instead of defining its own, so a call kind or a key case means the same thing from
//! the `.proto` file to the gateway's route table. No dependencies: this crate must stay cheap
//! to build, because the proc-macro and the runtime both link it.

mod binding;
mod kinds;

pub use binding::{HttpBinding, PathTemplate, Segment, TemplateError, is_field_path};
pub use kinds::{CallKind, Format, KeyCase, UnknownName};

/// Wire-format constants (wire format v1) shared by every side of a call.
pub mod wire {
    /// The gRPC content type. A request is gRPC when its content type is exactly this or
    /// starts with it followed by `+` or `;` (the gRPC over HTTP/2 spec).
    pub const GRPC_CONTENT_TYPE: &str = "application/grpc";
    /// The gRPC-Web content type (binary); `-text` adds base64.
    pub const GRPC_WEB_CONTENT_TYPE: &str = "application/grpc-web";
    /// The gRPC-Web text content type (base64-encoded frames).
    pub const GRPC_WEB_TEXT_CONTENT_TYPE: &str = "application/grpc-web-text";
    /// The MessagePack extension type of `google.protobuf.Timestamp` (the MessagePack timestamp).
    pub const TIMESTAMP_EXT: i8 = -1;
    /// Length of a gRPC frame header: one flag byte and a big-endian `u32` length.
    pub const FRAME_HEADER_LEN: usize = 5;
    /// Compact arrays longer than this must not be more than 4× sparse (rule 3).
    pub const SPARSE_MIN_SLOTS: usize = 16;

    /// Whether `content_type` names gRPC (`application/grpc`, `application/grpc+msgpack`,
    /// `application/grpc;charset=…`), and not `application/grpc-web` or `application/grpcX`.
    pub fn is_grpc_content_type(content_type: &str) -> bool {
        match content_type.strip_prefix(GRPC_CONTENT_TYPE) {
            Some(rest) => rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'),
            None => false,
        }
    }

    /// Whether `content_type` names gRPC-Web, binary or text.
    pub fn is_grpc_web_content_type(content_type: &str) -> bool {
        let rest = match content_type.strip_prefix(GRPC_WEB_TEXT_CONTENT_TYPE) {
            Some(rest) => rest,
            None => match content_type.strip_prefix(GRPC_WEB_CONTENT_TYPE) {
                Some(rest) => rest,
                None => return false,
            },
        };
        rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn content_types_match_exactly() {
            assert!(is_grpc_content_type("application/grpc"));
            assert!(is_grpc_content_type("application/grpc+msgpack"));
            assert!(is_grpc_content_type("application/grpc;charset=utf-8"));
            assert!(!is_grpc_content_type("application/grpcX"));
            assert!(!is_grpc_content_type("application/grpc-web"));
            assert!(!is_grpc_content_type("text/plain"));
            assert!(is_grpc_web_content_type("application/grpc-web"));
            assert!(is_grpc_web_content_type("application/grpc-web+proto"));
            assert!(is_grpc_web_content_type("application/grpc-web-text"));
            assert!(is_grpc_web_content_type("application/grpc-web-text+proto"));
            assert!(!is_grpc_web_content_type("application/grpc-webby"));
            assert!(!is_grpc_web_content_type("application/grpc"));
        }
    }
}
