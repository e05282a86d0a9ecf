//! Front end: `.proto` files → messages (prost-build + `#[derive(tonic_msgpack::Message)]`) and
//! services ([`ServiceModel`] → tonic-build), parsed by protox: no `protoc` needed.
//!
//! In `build.rs`:
//!
//! ```no_run
//! tonic_msgpack_build::compile_protos("proto/hello.proto").unwrap();
//! ```
//!
//! and in the crate: `pub mod hello { tonic_msgpack::include_proto!("demo.v1"); }`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::Error;
use crate::model::{CallKind, Format, HttpBinding, MethodModel, ServiceModel, sanitize};
use crate::routes::RoutesOptions;
use crate::tonic_gen::{self, TonicOptions};

const GOOGLE_API_HTTP: &str = include_str!("../proto/google/api/http.proto");
const GOOGLE_API_ANNOTATIONS: &str = include_str!("../proto/google/api/annotations.proto");

/// Field-number arrays longer than this must not be more than 4× sparse (wire format rule 3).
const SPARSE_MIN_SLOTS: i32 = 16;

/// How keys of the named layout are spelled (wire format rule 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyCase {
    /// As written in the `.proto` (as the Rust field name: `snake_case`). The default.
    #[default]
    AsWritten,
    /// `lowerCamelCase`, the proto JSON name.
    Camel,
    /// `PascalCase`, MessagePack-CSharp's `keyAsPropertyName`.
    Pascal,
}

impl KeyCase {
    fn as_attr(self) -> &'static str {
        match self {
            KeyCase::AsWritten => "as_written",
            KeyCase::Camel => "camelCase",
            KeyCase::Pascal => "PascalCase",
        }
    }
}

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
        options
    }

    /// Compiles `protos` (looked up in `includes`) into `{package}.rs` files: messages with
    /// `#[derive(tonic_msgpack::Message)]`, and a tonic server and client per service (and
    /// `gateway_routes.rs` with [`Builder::gateway_routes`]).
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
        let compiled = Compiled::new(protos, includes)?;
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
            crate::routes::write(
                &models,
                &self.routes_options(&models),
                &out_dir.join("gateway_routes.rs"),
            )?;
        }

        let failure = Rc::new(RefCell::new(None));
        let mut config = prost_build::Config::new();
        config
            .out_dir(&out_dir)
            .type_attribute(".", "#[derive(::tonic_msgpack::Message)]")
            .extern_path(
                ".google.protobuf.Timestamp",
                "::tonic_msgpack::wkt::Timestamp",
            )
            .extern_path(
                ".google.protobuf.Duration",
                "::tonic_msgpack::wkt::Duration",
            )
            .extern_path(".google.protobuf.Any", "::tonic_msgpack::wkt::Any")
            .service_generator(Box::new(Generator {
                models,
                options: TonicOptions {
                    build_server: self.build_server,
                    build_client: self.build_client,
                    build_transport: self.build_transport,
                },
                failure: Rc::clone(&failure),
            }));
        config.bytes(&self.bytes);
        if self.format == Format::Named {
            let attr = format!("#[msgpack(key_case = \"{}\")]", self.key_case.as_attr());
            config.type_attribute(".", attr);
        }
        for file in compiled.user_files() {
            for name in message_and_enum_names(file) {
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

/// Loads the services of `protos` (looked up in `includes`) as [`ServiceModel`]s, with HTTP
/// bindings from `google.api.http` options. For tools (route generators, the CLI) that need
/// the services but not the generated code.
///
/// # Errors
///
/// A proto that does not parse or check: `file:line:col: reason`.
pub fn load_services(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<Vec<ServiceModel>, Error> {
    Compiled::new(protos, includes)?.services()
}

/// The descriptor pool of `protos` (looked up in `includes`, with the well-known types and
/// `google/api` built in): every message, enum and service with its fields, for tools that
/// convert messages by schema (`tonic-msgpack call --proto`).
///
/// # Errors
///
/// A proto that does not parse or check: `file:line:col: reason`.
pub fn descriptor_pool(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<prost_reflect::DescriptorPool, Error> {
    Ok(Compiled::new(protos, includes)?.pool)
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
        let result = tonic_gen::generate(&model, &self.options)
            .and_then(|tokens| crate::pretty(tokens, &model.full_name()));
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

/// The result of protox: the descriptor set and the pool (which keeps option extensions).
struct Compiled {
    fds: FileDescriptorSet,
    pool: prost_reflect::DescriptorPool,
    /// Files read from disk (for `rerun-if-changed`).
    inputs: Vec<PathBuf>,
}

impl Compiled {
    fn new(protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> Result<Self, Error> {
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
        Ok(Compiled {
            fds: compiler.file_descriptor_set(),
            pool: compiler.descriptor_pool(),
            inputs,
        })
    }

    /// The user's files and their imports, without the built-in google ones.
    fn user_files(&self) -> Vec<&FileDescriptorProto> {
        self.fds
            .file
            .iter()
            .filter(|file| !is_builtin(file.name()))
            .collect()
    }

    /// Packages whose every file is a built-in google one (no generated code wanted).
    fn builtin_only_packages(&self) -> BTreeSet<String> {
        let user: BTreeSet<&str> = self.user_files().iter().map(|f| f.package()).collect();
        self.fds
            .file
            .iter()
            .filter(|file| is_builtin(file.name()) && !user.contains(file.package()))
            .map(|file| file.package().to_owned())
            .collect()
    }

    fn services(&self) -> Result<Vec<ServiceModel>, Error> {
        let http = self.pool.get_extension_by_name("google.api.http");
        let mut out = Vec::new();
        for file in self.user_files() {
            let package = file.package().to_owned();
            for (s, service) in file.service.iter().enumerate() {
                let mut model = ServiceModel {
                    package: package.clone(),
                    name: service.name().to_owned(),
                    docs: comments(file, &[6, s as i32]),
                    format: Format::Compact,
                    methods: Vec::new(),
                    rust_trait: None,
                };
                let reflected = self.pool.get_service_by_name(&model.full_name());
                for (m, method) in service.method.iter().enumerate() {
                    let mut method_model = MethodModel::new(
                        method.name(),
                        rust_path(&package, method.input_type()),
                        rust_path(&package, method.output_type()),
                        CallKind::from_flags(method.client_streaming(), method.server_streaming()),
                    );
                    method_model.input_proto = Some(method.input_type().to_owned());
                    method_model.output_proto = Some(method.output_type().to_owned());
                    method_model.docs = comments(file, &[6, s as i32, 2, m as i32]);
                    if let (Some(ext), Some(svc)) = (&http, &reflected)
                        && let Some(desc) = svc.methods().find(|d| d.name() == method.name())
                    {
                        method_model.http = http_binding(&desc.options(), ext);
                    }
                    model.methods.push(method_model);
                }
                out.push(model);
            }
        }
        Ok(out)
    }
}

fn is_builtin(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        || name == "google/api/http.proto"
        || name == "google/api/annotations.proto"
}

/// `google/api/{annotations,http}.proto` when the include path has none.
struct BuiltinResolver;

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
fn proto_error(err: &protox::Error, input: &Path) -> Error {
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

/// The Rust path of message `proto_type` (`.demo.v1.HelloRequest`) as seen from the server or
/// client module inside the module of `package` (tonic-prost's convention: `super::HelloRequest`).
fn rust_path(package: &str, proto_type: &str) -> String {
    match proto_type {
        ".google.protobuf.Empty" => return "()".into(),
        ".google.protobuf.Timestamp" => return "::tonic_msgpack::wkt::Timestamp".into(),
        ".google.protobuf.Duration" => return "::tonic_msgpack::wkt::Duration".into(),
        ".google.protobuf.Any" => return "::tonic_msgpack::wkt::Any".into(),
        _ => {}
    }
    let name = proto_type.trim_start_matches('.');
    let from: Vec<&str> = package.split('.').filter(|s| !s.is_empty()).collect();
    // Package segments are lowercase by convention, message names start upper-case.
    let parts: Vec<&str> = name.split('.').collect();
    let split = parts
        .iter()
        .position(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or(parts.len().saturating_sub(1));
    let (target_pkg, types) = parts.split_at(split);
    let common = from
        .iter()
        .zip(target_pkg)
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = vec!["super".to_owned(); 1 + from.len() - common];
    path.extend(
        target_pkg[common..]
            .iter()
            .map(|p| sanitize(&p.to_snake_case())),
    );
    if let Some((last, parents)) = types.split_last() {
        path.extend(parents.iter().map(|p| sanitize(&p.to_snake_case())));
        path.push(sanitize(&last.to_upper_camel_case()));
    }
    path.join("::")
}

/// The leading comment of the element at `path` in the file's source info.
fn comments(file: &FileDescriptorProto, path: &[i32]) -> Vec<String> {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|loc| loc.path == path))
        .and_then(|loc| loc.leading_comments.as_deref())
        .map(|text| {
            text.trim_end()
                .lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line).to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `google.api.http` option of a method, if any.
fn http_binding(
    options: &prost_reflect::DynamicMessage,
    ext: &prost_reflect::ExtensionDescriptor,
) -> Option<HttpBinding> {
    if !options.has_extension(ext) {
        return None;
    }
    let value = options.get_extension(ext);
    let rule = value.as_message()?;
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
    };
    let (method, path) = ["get", "put", "post", "delete", "patch"]
        .iter()
        .find_map(|verb| text(verb).map(|path| (verb.to_uppercase(), path)))
        .or_else(|| {
            let custom = rule.get_field_by_name("custom")?;
            let custom = custom.as_message()?;
            let kind = custom.get_field_by_name("kind")?.as_str()?.to_uppercase();
            let path = custom.get_field_by_name("path")?.as_str()?.to_owned();
            Some((kind, path))
        })?;
    Some(HttpBinding {
        method,
        path,
        body: text("body"),
    })
}

/// Full names of every message and enum of a file (nested ones too), without the dot.
fn message_and_enum_names(file: &FileDescriptorProto) -> Vec<String> {
    fn walk(prefix: &str, message: &prost_types::DescriptorProto, out: &mut Vec<String>) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                walk(&name, nested, out);
            }
        }
        for e in &message.enum_type {
            out.push(
                format!("{name}.{}", e.name())
                    .trim_start_matches('.')
                    .to_owned(),
            );
        }
        out.push(name.trim_start_matches('.').to_owned());
    }
    let prefix = if file.package().is_empty() {
        String::new()
    } else {
        format!(".{}", file.package())
    };
    let mut out = Vec::new();
    for message in &file.message_type {
        walk(&prefix, message, &mut out);
    }
    for e in &file.enum_type {
        out.push(
            format!("{prefix}.{}", e.name())
                .trim_start_matches('.')
                .to_owned(),
        );
    }
    out
}

/// Every enum of a file (nested ones too) with its value names in the order prost-build
/// emits the variants (aliases of an earlier number are skipped, as prost-build does).
fn enum_values(file: &FileDescriptorProto) -> Vec<(String, Vec<String>)> {
    fn values(prefix: &str, e: &prost_types::EnumDescriptorProto) -> (String, Vec<String>) {
        let mut seen = BTreeSet::new();
        let names = e
            .value
            .iter()
            .filter(|v| seen.insert(v.number()))
            .map(|v| v.name().to_owned())
            .collect();
        (
            format!("{prefix}.{}", e.name())
                .trim_start_matches('.')
                .to_owned(),
            names,
        )
    }
    fn walk(
        prefix: &str,
        message: &prost_types::DescriptorProto,
        out: &mut Vec<(String, Vec<String>)>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        out.extend(message.enum_type.iter().map(|e| values(&name, e)));
        for nested in &message.nested_type {
            walk(&name, nested, out);
        }
    }
    let prefix = if file.package().is_empty() {
        String::new()
    } else {
        format!(".{}", file.package())
    };
    let mut out: Vec<_> = file.enum_type.iter().map(|e| values(&prefix, e)).collect();
    for message in &file.message_type {
        walk(&prefix, message, &mut out);
    }
    out
}

/// Rule 3: a compact array over 4× sparse must use the named layout.
fn check_sparse(files: &[&FileDescriptorProto]) -> Result<(), Error> {
    fn walk(prefix: &str, message: &prost_types::DescriptorProto) -> Result<(), Error> {
        let name = format!("{prefix}.{}", message.name());
        let numbers: BTreeSet<i32> = message.field.iter().map(|f| f.number()).collect();
        let max = numbers.last().copied().unwrap_or(0);
        if max > SPARSE_MIN_SLOTS && max > 4 * numbers.len() as i32 {
            return Err(Error::Sparse {
                message: name.trim_start_matches('.').to_owned(),
                max_field: max,
                fields: numbers.len(),
            });
        }
        for nested in &message.nested_type {
            if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
                walk(&name, nested)?;
            }
        }
        Ok(())
    }
    for file in files {
        let prefix = if file.package().is_empty() {
            String::new()
        } else {
            format!(".{}", file.package())
        };
        for message in &file.message_type {
            walk(&prefix, message)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_paths_are_relative_to_the_generated_modules() {
        assert_eq!(
            rust_path("demo.v1", ".demo.v1.HelloRequest"),
            "super::HelloRequest"
        );
        assert_eq!(
            rust_path("demo.v1", ".other.v1.Msg"),
            "super::super::super::other::v1::Msg"
        );
        assert_eq!(
            rust_path("demo.v1", ".demo.v1.Outer.Inner"),
            "super::outer::Inner"
        );
        assert_eq!(rust_path("demo", ".demo.v1.Msg"), "super::v1::Msg");
        assert_eq!(rust_path("", ".Msg"), "super::Msg");
        assert_eq!(rust_path("demo.v1", ".google.protobuf.Empty"), "()");
    }
}
