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
    /// A `.proto` file does not parse or check.
    #[error("{location}: {reason}")]
    Proto {
        /// `file:line:col` (or just the file when the position is unknown).
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A compact message would be an array over 4× sparse (wire format rule 3).
    #[error(
        "message {message}: field numbers go up to {max_field} for {fields} fields, over 4x sparse for the compact layout; \
         use `.format(Format::Named)` in build.rs or renumber the fields"
    )]
    Sparse {
        /// Full proto name of the message.
        message: String,
        /// Its highest field number.
        max_field: i32,
        /// How many fields it has.
        fields: usize,
    },
    /// A build option is missing or inconsistent.
    #[error("{0}")]
    Config(String),
    /// A Rust source file with `#[msgpack_service]` traits did not parse or check.
    #[error("{location}: {reason}")]
    Trait {
        /// `file:line:col`.
        location: String,
        /// What is wrong.
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
