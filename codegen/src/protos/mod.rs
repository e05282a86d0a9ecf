//! The `.proto` front end: files → descriptors (protox, no `protoc`) → [`ServiceModel`]s.
//!
//! - [`ProtoSet::compile`]: parse and check, with the well-known types and `google/api` built in.
//! - [`ProtoSet::services`] (`services.rs`): one [`ServiceModel`] per proto `service`.
//! - `walk.rs`: the one walk over every message and enum, for the build's per-type attributes
//!   and the sparse-array check.
//!
//! [`ServiceModel`]: crate::model::ServiceModel

mod services;
mod walk;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use prost_types::{FileDescriptorProto, FileDescriptorSet};
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::Error;

pub use walk::{TypeVisit, check_sparse, enum_values, type_names, visit_types};

const GOOGLE_API_HTTP: &str = include_str!("../../proto/google/api/http.proto");
const GOOGLE_API_ANNOTATIONS: &str = include_str!("../../proto/google/api/annotations.proto");

/// `.proto` files compiled by protox: the descriptor set, the pool (which keeps option
/// extensions such as `google.api.http`) and the files read.
#[derive(Debug)]
pub struct ProtoSet {
    /// Every file: the inputs, their imports and the built-ins they use.
    pub fds: FileDescriptorSet,
    /// The same files, indexed (options keep their extensions).
    pub pool: prost_reflect::DescriptorPool,
    /// Files read from disk (for `rerun-if-changed`).
    pub inputs: Vec<PathBuf>,
}

impl ProtoSet {
    /// Compiles `protos`, looked up in `includes` (then the well-known types and `google/api`).
    ///
    /// # Errors
    ///
    /// A proto that does not parse or check: `file:line:col: reason`.
    pub fn compile(
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Self, Error> {
        let mut resolver = ChainFileResolver::new();
        for include in includes {
            resolver.add(IncludeFileResolver::new(include.as_ref().to_owned()));
        }
        resolver.add(GoogleFileResolver::new());
        resolver.add(BuiltinResolver);
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true).include_source_info(true);
        for proto in protos {
            compiler
                .open_file(proto.as_ref())
                .map_err(|err| proto_error(&err, proto.as_ref()))?;
        }
        let inputs = compiler
            .files()
            .filter_map(|file| file.path().map(Path::to_owned))
            .collect();
        Ok(ProtoSet {
            fds: compiler.file_descriptor_set(),
            pool: compiler.descriptor_pool(),
            inputs,
        })
    }

    /// The user's files and their imports, without the built-in google ones.
    pub fn user_files(&self) -> Vec<&FileDescriptorProto> {
        self.fds
            .file
            .iter()
            .filter(|file| !is_builtin(file.name()))
            .collect()
    }

    /// Packages whose every file is a built-in google one (no generated code wanted).
    pub fn builtin_only_packages(&self) -> BTreeSet<String> {
        let user: BTreeSet<&str> = self.user_files().iter().map(|f| f.package()).collect();
        self.fds
            .file
            .iter()
            .filter(|file| is_builtin(file.name()) && !user.contains(file.package()))
            .map(|file| file.package().to_owned())
            .collect()
    }
}

/// Whether `name` is a file protox or this crate provides (well-known types, `google/api`).
pub fn is_builtin(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        || name == "google/api/http.proto"
        || name == "google/api/annotations.proto"
}

/// `google/api/{annotations,http}.proto` when the include path has none.
pub(crate) struct BuiltinResolver;

impl FileResolver for BuiltinResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match name {
            "google/api/http.proto" => File::from_source(name, GOOGLE_API_HTTP),
            "google/api/annotations.proto" => File::from_source(name, GOOGLE_API_ANNOTATIONS),
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// `file:line:col: reason` from a protox error.
pub(crate) fn proto_error(err: &protox::Error, input: &Path) -> Error {
    use miette::Diagnostic;
    let reason = err.to_string();
    let mut location = err
        .file()
        .map(str::to_owned)
        .unwrap_or_else(|| input.display().to_string());
    let label = err.labels().and_then(|mut labels| labels.next());
    if let (Some(label), Some(source)) = (label, err.source_code())
        && let Ok(span) = source.read_span(label.inner(), 0, 0)
    {
        if let Some(name) = span.name() {
            location = name.to_owned();
        }
        location = format!("{location}:{}:{}", span.line() + 1, span.column() + 1);
    }
    Error::Proto { location, reason }
}
