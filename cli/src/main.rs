//! `tonic-msgpack`: gateway route stubs and service listings from `.proto` files and
//! `#[msgpack_service]` traits, and `call`, a grpcurl for MessagePack services.
//!
//! ```text
//! tonic-msgpack routes --proto proto/ --traits src/calc.rs --out src/gateway_routes.rs
//! tonic-msgpack routes --proto proto/ --traits src/calc.rs --out src/gateway_routes.rs --check
//! tonic-msgpack list --proto proto/ --traits src/calc.rs
//! tonic-msgpack call 127.0.0.1:50051 /demo.v1.Greeter/SayHello --proto proto/greeter.proto --json '{"name":"Ann"}'
//! tonic-msgpack call 127.0.0.1:50051 /demo.v1.Calculator/Add --json '[1, 2]'
//! tonic-msgpack call https://gateway.example:443 /demo.v1.Calculator/Add --json '[1, 2]' -H 'authorization: Bearer TOKEN'
//! tonic-msgpack call localhost:8443 /demo.v1.Calculator/Add --json '[1, 2]' --ca ca.pem --cert me.pem --key me.key
//! tonic-msgpack new billing-service
//! tonic-msgpack schema --proto proto/ --traits src/calc.rs --out services.binpb
//! ```

mod call;
mod compat;
mod convert;
mod frontends;
mod r#gen;
mod new;
mod openapi;
mod schema;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tonic_msgpack_build::model::ServiceModel;
use tonic_msgpack_build::routes::{self, RoutesOptions};

#[derive(Parser)]
#[command(
    name = "tonic-msgpack",
    version,
    about = "gRPC with MessagePack: code generation tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate gateway route stubs (`pub fn table() -> RouteTable`).
    Routes {
        #[command(flatten)]
        inputs: Inputs,
        /// The Rust file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Do not write: fail with a diff when FILE is not what would be generated (for CI).
        #[arg(long)]
        check: bool,
        /// Attach typed JSON transcoders (REST). Message types are named by absolute paths:
        /// say where they are with --proto-module and --trait-module.
        #[arg(long)]
        typed_transcoders: bool,
        /// With --typed-transcoders: the Rust module of a proto package's types,
        /// `demo.v1=crate::proto` (repeatable; an empty package covers all).
        #[arg(long, value_name = "PACKAGE=MODULE", value_parser = module_mapping)]
        proto_module: Vec<(String, String)>,
        /// With --typed-transcoders: the Rust module a `#[msgpack_service]` trait is declared
        /// in, `Calculator=crate::calculator` (trait or full service name; repeatable).
        #[arg(long, value_name = "TRAIT=MODULE", value_parser = module_mapping)]
        trait_module: Vec<(String, String)>,
    },
    /// Call a method: JSON in, JSON out (a grpcurl for MessagePack services). Server
    /// streaming prints one JSON line per message; client streaming reads NDJSON from stdin.
    Call(call::CallArgs),
    /// Print services and methods with their paths and call kinds.
    List {
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Write one descriptor set (`FileDescriptorSet`) for every proto and trait service,
    /// trait messages synthesized with their MessagePack layout (for the gateway's protobuf
    /// bridge and reflection).
    Schema(schema::SchemaArgs),
    /// Write the OpenAPI 3.1 document of every REST binding (the one the gateway serves).
    Openapi(openapi::OpenapiArgs),
    /// Compare two versions of a contract by wire meaning: every change as error, warning or
    /// ok, with file:line:column and what breaks for whom. Exits with 1 on any error.
    CheckCompat(compat::CheckCompatArgs),
    /// Generate typed clients and message types for another language from a contract.
    #[command(subcommand)]
    Gen(r#gen::GenCommand),
    /// Scaffold a service crate: proto, build.rs, server, gateway main and config, tests.
    New {
        /// The crate name, e.g. `billing-service` (service `BillingService`, package
        /// `billing_service.v1`).
        name: String,
        /// Where to create it (default: `./NAME`); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// Depend on tonic-msgpack from crates.io even when this tool's source checkout is
        /// available (by default the new crate uses path dependencies on that checkout).
        #[arg(long)]
        crates_io: bool,
    },
}

#[derive(Args)]
struct Inputs {
    /// A directory of .proto files (searched recursively; also the include path). Repeatable.
    #[arg(long = "proto", value_name = "DIR")]
    protos: Vec<PathBuf>,
    /// A Rust file with `#[msgpack_service]` traits. Repeatable.
    #[arg(long = "traits", value_name = "FILE")]
    traits: Vec<PathBuf>,
}

impl Inputs {
    fn load(&self) -> anyhow::Result<Vec<ServiceModel>> {
        if self.protos.is_empty() && self.traits.is_empty() {
            bail!("nothing to read: give at least one --proto DIR or --traits FILE");
        }
        let mut services = Vec::new();
        for dir in &self.protos {
            services.extend(frontends::load_proto_dir(dir)?);
        }
        for file in &self.traits {
            services.extend(frontends::load_traits(file)?);
        }
        let mut seen = std::collections::HashSet::new();
        for service in &services {
            if !seen.insert(service.full_name()) {
                bail!(
                    "service `{}` is defined twice in the inputs",
                    service.full_name()
                );
            }
        }
        Ok(services)
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Routes {
            inputs,
            out,
            check,
            typed_transcoders,
            proto_module,
            trait_module,
        } => {
            let services = inputs.load()?;
            let options = RoutesOptions {
                typed_transcoders,
                proto_modules: proto_module,
                trait_modules: trait_module,
            };
            let text = routes::generate_file(&services, &options)?;
            if check {
                check_file(&out, &text)
            } else {
                std::fs::write(&out, text)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                let count: usize = services.iter().map(|s| s.methods.len()).sum();
                eprintln!("wrote {} ({count} routes)", out.display());
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::List { inputs } => {
            print!("{}", routes::listing(&inputs.load()?));
            Ok(ExitCode::SUCCESS)
        }
        Command::New {
            name,
            path,
            crates_io,
        } => {
            let dir = path.unwrap_or_else(|| PathBuf::from(&name));
            let dependencies = if crates_io {
                new::Dependencies::Registry
            } else {
                new::Dependencies::detect()
            };
            let written = new::scaffold(&name, &dir, &dependencies)?;
            for file in &written {
                println!("created {}", file.display());
            }
            println!(
                "\nnext: cd {} && cargo test && cargo run -- gateway.toml",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Call(args) => call::run(args),
        Command::CheckCompat(args) => compat::run(args),
        Command::Gen(command) => r#gen::run(command),
        Command::Openapi(args) => {
            openapi::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema(args) => {
            schema::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `demo.v1=crate::proto` → (`demo.v1`, `crate::proto`).
fn module_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, module)) if !module.trim().is_empty() => {
            Ok((name.trim().to_owned(), module.trim().to_owned()))
        }
        _ => Err(format!(
            "invalid mapping `{text}`: expected NAME=MODULE, e.g. demo.v1=crate::proto"
        )),
    }
}

/// Compares `path` with the freshly generated `text`; prints a diff and fails when they differ.
fn check_file(path: &Path, text: &str) -> anyhow::Result<ExitCode> {
    let current = match std::fs::read_to_string(path) {
        Ok(current) => current,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "{} does not exist; run `tonic-msgpack routes` without --check to create it",
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    if current == text {
        eprintln!("{} is up to date", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let diff = similar::TextDiff::from_lines(current.as_str(), text);
    let shown = path.display().to_string();
    eprint!(
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&shown, &format!("{shown} (generated)"))
    );
    eprintln!(
        "{} is stale; run `tonic-msgpack routes` without --check to update it",
        path.display()
    );
    Ok(ExitCode::FAILURE)
}
