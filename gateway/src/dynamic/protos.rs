//! `protos = ["proto/"]`: `.proto` files compiled when the gateway starts (protox, no
//! `protoc`), for a gateway configured from sources instead of a descriptor set file.
//!
//! Every `.proto` under a directory is compiled with that directory as the include path; the
//! well-known types, `google/api/annotations.proto` (for `google.api.http`) and
//! `tonic_msgpack/options.proto` (the MessagePack layout options) are built in, and a file of
//! the same name in the directory takes precedence.

use std::path::{Path, PathBuf};

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::DescriptorError;

/// The imports the gateway carries: the same files as tonic-msgpack-build's.
const BUILT_IN: [(&str, &str); 3] = [
    (
        "google/api/annotations.proto",
        include_str!("../../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../../proto/google/api/http.proto"),
    ),
    (
        "tonic_msgpack/options.proto",
        include_str!("../../proto/tonic_msgpack/options.proto"),
    ),
];

struct BuiltIn;

impl FileResolver for BuiltIn {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match BUILT_IN.iter().find(|(known, _)| *known == name) {
            Some((_, source)) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Every `.proto` under `dir`, relative to it, sorted (at most 32 directory levels deep).
fn proto_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files = Vec::new();
    let mut pending = vec![(PathBuf::new(), 0usize)];
    while let Some((relative, depth)) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() && depth < 32 {
                pending.push((path, depth + 1));
            } else if kind.is_file() && path.extension().is_some_and(|ext| ext == "proto") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The encoded descriptor set of every `.proto` under `dir`, imports included.
///
/// # Errors
///
/// The directory cannot be read, holds no `.proto` file, or a file does not compile (the
/// message names the file and the reason).
pub(crate) fn compile(dir: &Path) -> Result<Vec<u8>, DescriptorError> {
    let failed = |message: String| DescriptorError {
        source_name: format!("protos: {}", dir.display()),
        message,
    };
    let files = proto_files(dir).map_err(|err| failed(err.to_string()))?;
    if files.is_empty() {
        return Err(failed("no .proto file in the directory".into()));
    }
    let mut resolver = ChainFileResolver::new();
    resolver.add(IncludeFileResolver::new(dir.to_owned()));
    resolver.add(BuiltIn);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for file in &files {
        compiler.open_file(file).map_err(|err| {
            let name = err
                .file()
                .map_or_else(|| file.display().to_string(), str::to_owned);
            failed(format!("{name}: {err}"))
        })?;
    }
    Ok(compiler.encode_file_descriptor_set())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_protos_compiles_with_the_built_in_imports() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("demo/v1")).expect("mkdir");
        std::fs::write(
            dir.path().join("demo/v1/calc.proto"),
            r#"syntax = "proto3";
package demo.v1;
import "google/api/annotations.proto";
import "tonic_msgpack/options.proto";
import "google/protobuf/empty.proto";
service Calc {
  rpc Add(AddRequest) returns (AddResponse) { option (google.api.http) = { get: "/v1/add/{a}/{b}" }; }
  rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);
}
message AddRequest { option (tonic_msgpack.layout) = LAYOUT_ARGUMENTS; int64 a = 1; int64 b = 2; }
message AddResponse { option (tonic_msgpack.layout) = LAYOUT_VALUE; int64 value = 1; }
"#,
        )
        .expect("write");
        let set = compile(dir.path()).expect("compiles");
        let pool = prost_reflect::DescriptorPool::decode(set.as_slice()).expect("decodes");
        let routes = super::super::routes(&pool);
        let add = routes
            .iter()
            .find(|route| route.path == "/demo.v1.Calc/Add")
            .expect("Add");
        assert_eq!(
            add.http
                .as_ref()
                .map(|http| (http.method.as_str(), http.path.as_str())),
            Some(("GET", "/v1/add/{a}/{b}"))
        );
        let bytes = add
            .transcoder
            .as_ref()
            .expect("a transcoder")
            .request_value_to_msgpack(
                &serde_json::json!({"a": "40", "b": 2}),
                crate::UnknownFields::Reject,
            )
            .expect("transcodes");
        assert_eq!(bytes, [0x92, 40, 2]);

        std::fs::write(
            dir.path().join("bad.proto"),
            "syntax = \"proto3\";\nmessage {",
        )
        .expect("write");
        let error = compile(dir.path()).expect_err("a syntax error");
        assert!(
            error
                .to_string()
                .contains("bad.proto: expected an identifier"),
            "{error}"
        );
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(
            compile(empty.path())
                .expect_err("nothing")
                .to_string()
                .contains("no .proto file")
        );
    }

    #[test]
    fn the_built_in_imports_are_tonic_msgpack_builds() {
        for (name, source) in BUILT_IN {
            let original = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../codegen/proto")
                .join(name);
            if let Ok(original) = std::fs::read_to_string(&original) {
                assert_eq!(source, original, "{name} differs from codegen's copy");
            }
        }
    }
}
