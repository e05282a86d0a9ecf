//! The `build.rs` API of tonic-msgpack: `.proto` files (and `#[msgpack_service]` trait files)
//! → MessagePack tonic services, messages and the gateway's route stubs. No `protoc`: protox
//! parses the protos.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     tonic_msgpack_build::compile_protos("proto/demo/v1/greeter.proto")?;
//!     Ok(())
//! }
//! ```
//!
//! and in the crate: `pub mod proto { tonic_msgpack::include_proto!("demo.v1"); }`.
//!
//! [`configure`] has the options; with [`Builder::gateway_routes`] and [`Builder::traits`] one
//! call also writes the route stubs of every proto and trait service:
//!
//! ```no_run
//! tonic_msgpack_build::configure()
//!     .gateway_routes(true)
//!     .gateway_routes_module("crate::proto")
//!     .traits(["src/calculator.rs"])
//!     .compile_protos(&["proto/demo/v1/greeter.proto"], &["proto/demo/v1"])
//!     .unwrap();
//! ```
//!
//! Tools that need the services but not the code (the `tonic-msgpack` CLI) use [`load`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tonic_msgpack_codegen as codegen;

use codegen::model::ServiceModel;
use codegen::protos::{ProtoSet, check_sparse, enum_values, type_names};
use codegen::routes::RoutesOptions;
use codegen::tonic_gen::TonicOptions;

pub use codegen::Error;
pub use tonic_msgpack_core::{Format, KeyCase};

/// Gateway route stubs: `pub fn table() -> RouteTable` for a set of services.
pub mod routes {
    pub use tonic_msgpack_codegen::routes::{RoutesOptions, generate_file, listing, write};
}

/// The service model the front ends produce, for tools that inspect services.
pub mod model {
    pub use tonic_msgpack_codegen::model::{
        MethodModel, ServiceModel, proto_rust_path, tonic_snake_case, wire_method_name,
    };
    pub use tonic_msgpack_core::{CallKind, Format, HttpBinding, KeyCase};

    /// The wire contract: services with their messages, enums, trait arguments and source
    /// locations (for `tonic-msgpack check-compat` and the other-language generators).
    pub use tonic_msgpack_codegen::contract;
}

/// Loading services and descriptors without generating code (for the CLI and other tools).
pub mod load {
    use std::path::Path;

    use super::{Error, ProtoSet, ServiceModel};

    /// The services of `protos` (looked up in `includes`), with HTTP bindings from
    /// `google.api.http` options.
    ///
    /// # Errors
    ///
    /// A proto that does not parse or check: `file:line:col: reason`.
    pub fn proto_services(
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Vec<ServiceModel>, Error> {
        ProtoSet::compile(protos, includes)?.services()
    }

    /// The descriptor set of `protos` (looked up in `includes`) with all imports, the
    /// well-known types and `google/api` included: every message, enum and service with its
    /// fields, for tools that convert messages by schema (`tonic-msgpack call --proto`).
    ///
    /// # Errors
    ///
    /// A proto that does not parse or check: `file:line:col: reason`.
    pub fn file_descriptor_set(
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<prost_types::FileDescriptorSet, Error> {
        Ok(ProtoSet::compile(protos, includes)?.fds)
    }

    /// Every `#[msgpack_service]` trait in the Rust file `file` (also inside inline modules),
    /// as the attribute macro sees it.
    ///
    /// # Errors
    ///
    /// The file cannot be read or parsed, or a trait is invalid: `file:line:col: reason`.
    pub fn trait_services(file: &Path) -> Result<Vec<ServiceModel>, Error> {
        tonic_msgpack_codegen::traits::services_in_file(file)
    }

    /// The encoded `FileDescriptorSet` of every service in `protos` (looked up in
    /// `includes`) and in the `#[msgpack_service]` traits of `traits`: trait services get
    /// synthesized messages carrying their MessagePack layout in the options of
    /// `tonic_msgpack/options.proto` ([`OPTIONS_PROTO`](super::OPTIONS_PROTO)); with
    /// `format` [`Format::Named`](super::Format::Named) every proto message is marked named
    /// with `key_case`. All imports are included.
    ///
    /// # Errors
    ///
    /// A proto or trait file that does not parse or check (`file:line:col: reason`), or a
    /// trait argument type that has no proto form (the message names the method).
    pub fn descriptor_set(
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
        traits: &[impl AsRef<Path>],
        format: super::Format,
        key_case: super::KeyCase,
    ) -> Result<Vec<u8>, Error> {
        tonic_msgpack_codegen::descriptors::descriptor_set(
            &tonic_msgpack_codegen::descriptors::SchemaInputs {
                protos: protos.iter().map(|p| p.as_ref().to_owned()).collect(),
                includes: includes.iter().map(|p| p.as_ref().to_owned()).collect(),
                traits: traits.iter().map(|p| p.as_ref().to_owned()).collect(),
                format,
                key_case,
            },
        )
    }

    /// The `.proto` text synthesized for the `#[msgpack_service]` traits of `file`: one
    /// `(import name, source)` per package.
    ///
    /// # Errors
    ///
    /// As [`descriptor_set`].
    pub fn trait_protos(file: &Path) -> Result<Vec<(String, String)>, Error> {
        Ok(tonic_msgpack_codegen::descriptors::trait_protos(file)?
            .into_iter()
            .map(|proto| (proto.name, proto.source))
            .collect())
    }

    /// The wire contract of everything under `dir`: `.proto` files (with `dir` as include
    /// root), descriptor sets and `#[msgpack_service]` trait files, searched recursively.
    ///
    /// # Errors
    ///
    /// A file that does not read, parse or check (`file:line:col: reason`), or nothing found.
    pub fn contract(dir: &Path) -> Result<super::model::contract::Contract, Error> {
        tonic_msgpack_codegen::contract::Contract::load_dir(dir)
    }
}

/// The file [`Builder::descriptor_set`] writes into the output directory; embed it with
/// `include_bytes!(concat!(env!("OUT_DIR"), "/services.binpb"))`.
pub const DESCRIPTOR_SET_FILE: &str = "services.binpb";

/// The text of `tonic_msgpack/options.proto`, which defines the `layout` and `key_case`
/// message options of the descriptors this crate writes.
pub const OPTIONS_PROTO: &str = tonic_msgpack_codegen::descriptors::OPTIONS_PROTO;

/// Compiles `.proto` files with the default configuration: compact layout, server and client,
/// output in `OUT_DIR`. The directory of `proto` is the include path.
///
/// See [`configure`] for the options. Unwrapping the result in `build.rs` is fine: the error
/// names the file, line and column.
pub fn compile_protos(proto: impl AsRef<Path>) -> Result<(), Error> {
    let proto = proto.as_ref();
    let include = proto
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    configure().compile_protos(&[proto], &[include])
}

/// A [`Builder`] with the defaults; finish with [`Builder::compile_protos`].
pub fn configure() -> Builder {
    Builder::default()
}

/// Options of a `.proto` build. Every setter states its default.
#[derive(Debug, Clone)]
pub struct Builder {
    format: Format,
    key_case: KeyCase,
    out_dir: Option<PathBuf>,
    build_server: bool,
    build_client: bool,
    build_transport: bool,
    emit_rerun_if_changed: bool,
    bytes: Vec<String>,
    gateway_routes: bool,
    gateway_module: Option<String>,
    gateway_package_modules: Vec<(String, String)>,
    trait_files: Vec<PathBuf>,
    trait_modules: Vec<(String, String)>,
    descriptor_set: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            format: Format::Compact,
            key_case: KeyCase::AsWritten,
            out_dir: None,
            build_server: true,
            build_client: true,
            build_transport: true,
            emit_rerun_if_changed: true,
            bytes: Vec::new(),
            gateway_routes: false,
            gateway_module: None,
            gateway_package_modules: Vec::new(),
            trait_files: Vec::new(),
            trait_modules: Vec::new(),
            descriptor_set: false,
        }
    }
}

impl Builder {
    /// Message layout: [`Format::Compact`] (arrays by field number, the default) or
    /// [`Format::Named`] (maps by field name).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Key spelling of the named layout; also selects [`Format::Named`]. Default: as written.
    pub fn key_case(mut self, case: KeyCase) -> Self {
        self.key_case = case;
        self.format = Format::Named;
        self
    }

    /// Where the generated `{package}.rs` files go. Default: `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Generate the `{service}_server` modules. Default: true.
    pub fn build_server(mut self, yes: bool) -> Self {
        self.build_server = yes;
        self
    }

    /// Generate the `{service}_client` modules. Default: true.
    pub fn build_client(mut self, yes: bool) -> Self {
        self.build_client = yes;
        self
    }

    /// Generate the clients' `connect` (needs tonic's `transport` feature). Default: true.
    pub fn build_transport(mut self, yes: bool) -> Self {
        self.build_transport = yes;
        self
    }

    /// Proto paths (prost-build's path syntax, `"."` for all) whose `bytes` fields become
    /// `bytes::Bytes` instead of `Vec<u8>`. Both are bin on the wire. Default: none.
    pub fn bytes(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.bytes.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Print `cargo:rerun-if-changed` for every input file. Default: true.
    pub fn emit_rerun_if_changed(mut self, yes: bool) -> Self {
        self.emit_rerun_if_changed = yes;
        self
    }

    /// Also write `gateway_routes.rs` next to the generated code: the gateway's route stubs
    /// (`pub fn table() -> RouteTable`) for the compiled services, with typed JSON transcoders
    /// for REST. `include!` it anywhere in the crate; the message types are named by absolute
    /// paths, by default `crate::{package}::Message` (prost-build's include-file layout,
    /// `crate::demo::v1::HelloRequest`): say where [`include_proto!`] really puts them with
    /// [`Builder::gateway_routes_module`]. Default: false.
    ///
    /// [`include_proto!`]: https://docs.rs/tonic-msgpack/latest/tonic_msgpack/macro.include_proto.html
    pub fn gateway_routes(mut self, yes: bool) -> Self {
        self.gateway_routes = yes;
        self
    }

    /// The Rust module where the compiled package's types are (`"crate::proto"` for
    /// `pub mod proto { tonic_msgpack::include_proto!("demo.v1"); }` at the crate root), for
    /// [`Builder::gateway_routes`]. Applies to every compiled package; sub-packages and
    /// nested messages are modules below it. Default: `crate::{package}`.
    pub fn gateway_routes_module(mut self, module: impl Into<String>) -> Self {
        self.gateway_module = Some(module.into());
        self
    }

    /// Like [`Builder::gateway_routes_module`] for one `package` of several (the most specific
    /// package wins). Default: none.
    pub fn gateway_routes_package_module(
        mut self,
        package: impl Into<String>,
        module: impl Into<String>,
    ) -> Self {
        self.gateway_package_modules
            .push((package.into(), module.into()));
        self
    }

    /// Rust files whose `#[msgpack_service]` traits join the build: their services get route
    /// stubs next to the proto ones in `gateway_routes.rs` (the traits themselves are expanded
    /// by the attribute macro, not here). Each file is watched with `rerun-if-changed`. The
    /// module of a trait is taken from its file (`src/calculator.rs` → `crate::calculator`,
    /// `src/lib.rs` → `crate`); say otherwise with [`Builder::trait_module`]. Default: none.
    pub fn traits(mut self, files: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        self.trait_files.extend(files.into_iter().map(Into::into));
        self
    }

    /// The Rust module where the trait `name` (or full service name) is declared, for its
    /// route stubs, when its file does not say it (a trait in an inline module). Default: from
    /// the file, see [`Builder::traits`].
    pub fn trait_module(mut self, name: impl Into<String>, module: impl Into<String>) -> Self {
        self.trait_modules.push((name.into(), module.into()));
        self
    }

    /// Also write [`DESCRIPTOR_SET_FILE`] (`services.binpb`) next to the generated code: the
    /// encoded `FileDescriptorSet` of the compiled protos and the [`traits`](Builder::traits),
    /// with the MessagePack layouts in its options (see [`load::descriptor_set`]), for the
    /// gateway's protobuf bridge and server reflection. Embed it with
    /// `include_bytes!(concat!(env!("OUT_DIR"), "/services.binpb"))`, as tonic-build's
    /// `file_descriptor_set_path` output is used. Default: false.
    pub fn descriptor_set(mut self, yes: bool) -> Self {
        self.descriptor_set = yes;
        self
    }

    /// The route options [`Builder::gateway_routes`] uses for `models`.
    fn routes_options(&self, models: &[ServiceModel]) -> RoutesOptions {
        let mut options = RoutesOptions::typed().proto_module("", "crate");
        if let Some(module) = &self.gateway_module {
            let packages: BTreeSet<&str> = models.iter().map(|m| m.package.as_str()).collect();
            for package in packages {
                options = options.proto_module(package, module.clone());
            }
        }
        for (package, module) in &self.gateway_package_modules {
            options = options.proto_module(package.clone(), module.clone());
        }
        for (name, module) in &self.trait_modules {
            options = options.trait_module(name.clone(), module.clone());
        }
        options
    }

    /// Compiles `protos` (looked up in `includes`) into `{package}.rs` files: messages with
    /// `#[derive(tonic_msgpack::Message)]`, and a tonic server and client per service (and
    /// `gateway_routes.rs` with [`Builder::gateway_routes`], also covering the
    /// [`traits`](Builder::traits)). `protos` may be empty for a build of traits only.
    ///
    /// # Errors
    ///
    /// A proto that does not parse or check (`file:line:col: reason`), a compact message that
    /// is over 4× sparse, or a failure to write the output.
    pub fn compile_protos(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        if self.emit_rerun_if_changed {
            for proto in protos {
                println!("cargo:rerun-if-changed={}", proto.as_ref().display());
            }
        }
        let compiled = ProtoSet::compile(protos, includes)?;
        if self.emit_rerun_if_changed {
            for path in &compiled.inputs {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if self.format == Format::Compact {
            check_sparse(&compiled.user_files())?;
        }
        let mut models = compiled.services()?;
        for model in &mut models {
            model.format = self.format;
        }

        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::Config(
                        "OUT_DIR is not set: call this from build.rs or set .out_dir(...)".into(),
                    )
                })?,
        };
        std::fs::create_dir_all(&out_dir).map_err(|source| Error::Io {
            path: out_dir.clone(),
            source,
        })?;
        if self.gateway_routes {
            let mut all = models.clone();
            let mut options = self.routes_options(&models);
            for file in &self.trait_files {
                if self.emit_rerun_if_changed {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
                let services = codegen::traits::services_in_file(file)?;
                if let Some(module) = module_of_file(file) {
                    for service in &services {
                        if !self
                            .trait_modules
                            .iter()
                            .any(|(name, _)| *name == service.name || *name == service.full_name())
                        {
                            options = options.trait_module(service.full_name(), module.clone());
                        }
                    }
                }
                all.extend(services);
            }
            routes::write(&all, &options, &out_dir.join("gateway_routes.rs"))?;
        }
        if self.descriptor_set {
            let encoded = load::descriptor_set(
                protos,
                includes,
                &self.trait_files,
                self.format,
                self.key_case,
            )?;
            let path = out_dir.join(DESCRIPTOR_SET_FILE);
            std::fs::write(&path, encoded).map_err(|source| Error::Io { path, source })?;
        }
        if protos.is_empty() {
            return Ok(());
        }

        let failure = Rc::new(RefCell::new(None));
        let mut config = prost_build::Config::new();
        config
            .out_dir(&out_dir)
            .type_attribute(".", "#[derive(::tonic_msgpack::Message)]")
            .service_generator(Box::new(Generator {
                models,
                options: TonicOptions {
                    build_server: self.build_server,
                    build_client: self.build_client,
                    build_transport: self.build_transport,
                },
                failure: Rc::clone(&failure),
            }));
        // Empty stays prost-build's own `()`.
        for (proto, rust) in codegen::model::WELL_KNOWN_TYPES {
            if rust != "()" {
                config.extern_path(proto, rust);
            }
        }
        config.bytes(&self.bytes);
        if self.format == Format::Named {
            let attr = format!("#[msgpack(key_case = \"{}\")]", self.key_case.as_str());
            config.type_attribute(".", attr);
        }
        for file in compiled.user_files() {
            for name in type_names(file) {
                config.type_attribute(
                    format!(".{name}"),
                    format!("#[msgpack(proto_name = \"{name}\")]"),
                );
            }
            for (name, values) in enum_values(file) {
                config.enum_attribute(
                    format!(".{name}"),
                    format!("#[msgpack(proto_values = \"{}\")]", values.join(", ")),
                );
            }
        }
        // prost-build needs every descriptor (it looks imported messages up), so it also
        // writes files for the built-in google packages: remove those nobody asked for.
        let builtin_only = compiled.builtin_only_packages();
        config
            .compile_fds(compiled.fds.clone())
            .map_err(|source| Error::Io {
                path: out_dir.clone(),
                source,
            })?;
        for package in builtin_only {
            let path = out_dir.join(format!("{package}.rs"));
            if path.exists() {
                std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
            }
        }
        if let Some(err) = failure.borrow_mut().take() {
            return Err(err);
        }
        Ok(())
    }
}

/// Hands each prost-build service to the tonic back end, so services land in the same
/// `{package}.rs` as their messages.
struct Generator {
    models: Vec<ServiceModel>,
    options: TonicOptions,
    failure: Rc<RefCell<Option<Error>>>,
}

impl prost_build::ServiceGenerator for Generator {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        let Some(model) = self
            .models
            .iter()
            .find(|m| m.package == service.package && m.name == service.proto_name)
        else {
            return;
        };
        let mut model = model.clone();
        // prost-build already resolved the Rust paths of the messages (extern paths, nesting,
        // keywords) relative to the package module; the server and client modules are one
        // level deeper.
        for (method, prost_method) in model.methods.iter_mut().zip(&service.methods) {
            method.input_type = from_submodule(&prost_method.input_type);
            method.output_type = from_submodule(&prost_method.output_type);
        }
        let result = codegen::tonic_gen::generate(&model, &self.options)
            .and_then(|tokens| codegen::pretty(tokens, &model.full_name()));
        match result {
            Ok(code) => buf.push_str(&code),
            Err(err) => {
                self.failure.borrow_mut().get_or_insert(err);
            }
        }
    }
}

/// A type path as seen from a module one level below the package module.
fn from_submodule(ty: &str) -> String {
    const PRIMITIVES: &[&str] = &["()", "bool", "i32", "i64", "u32", "u64", "f32", "f64"];
    if ty.starts_with("::") || ty.starts_with("crate::") || PRIMITIVES.contains(&ty) {
        ty.to_owned()
    } else {
        format!("super::{ty}")
    }
}

/// The module a Rust file under `src/` declares: `src/lib.rs` → `crate`,
/// `src/a/mod.rs` and `src/a.rs` → `crate::a`. `None` outside `src/`.
fn module_of_file(file: &Path) -> Option<String> {
    let components: Vec<&str> = file.iter().filter_map(|part| part.to_str()).collect();
    let src = components.iter().rposition(|part| *part == "src")?;
    let mut path = vec!["crate".to_owned()];
    let rest = &components[src + 1..];
    for (index, part) in rest.iter().enumerate() {
        let last = index + 1 == rest.len();
        let part = if last {
            part.strip_suffix(".rs")?
        } else {
            part
        };
        if last && (part == "mod" || (index == 0 && (part == "lib" || part == "main"))) {
            break;
        }
        path.push(part.to_owned());
    }
    Some(path.join("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_follow_files() {
        let module = |path: &str| module_of_file(Path::new(path));
        assert_eq!(module("src/lib.rs").as_deref(), Some("crate"));
        assert_eq!(module("src/main.rs").as_deref(), Some("crate"));
        assert_eq!(
            module("src/calculator.rs").as_deref(),
            Some("crate::calculator")
        );
        assert_eq!(module("./src/a/mod.rs").as_deref(), Some("crate::a"));
        assert_eq!(module("src/a/b.rs").as_deref(), Some("crate::a::b"));
        assert_eq!(module("other/x.rs"), None);
    }
}
