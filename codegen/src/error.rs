use std::path::PathBuf;

/// Everything that can go wrong while generating code. Each message names the file,
/// service, method or field involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request or response type is not valid Rust.
    #[error("{service}/{method}: `{ty}` is not a Rust type: {reason}")]
    InvalidType {
        /// Full service name.
        service: String,
        /// Method name.
        method: String,
        /// The type as written.
        ty: String,
        /// Why it did not parse.
        reason: String,
    },
    /// Generated code did not parse as a Rust file (a bug in tonic-msgpack).
    #[error("generated code for {what} is not valid Rust: {reason}")]
    Generated {
        /// What was being generated.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
