//! `tonic-msgpack gen <language> DIR`: typed clients and message types for other languages,
//! from the same contract `check-compat` reads (protos, descriptor sets, trait files).

mod csharp;
mod python;
mod types;
mod typescript;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tonic_msgpack_build::model::KeyCase;

use csharp::{CsharpOptions, generate as generate_csharp};
use python::{PythonOptions, generate as generate_python};
use typescript::{ClientKind, TypescriptOptions, generate as generate_typescript};

/// `tonic-msgpack gen`.
#[derive(Debug, Subcommand)]
pub(crate) enum GenCommand {
    /// C#: `[MessagePackObject]` classes, enums, a `Marshaller<T>` factory and a client per
    /// service over `CallInvoker` (Grpc.Net.Client / Grpc.Core.Api, MessagePack-CSharp).
    Csharp {
        #[command(flatten)]
        common: GenArgs,
        /// The C# namespace of services and types without a proto package.
        #[arg(long, value_name = "NAMESPACE")]
        namespace: Option<String>,
    },
    /// Python: a `@dataclass` per message with `to_msgpack`/`from_msgpack` (msgpack), an
    /// `IntEnum` per enum and a typed grpcio client per service; passes `mypy --strict`.
    Python {
        #[command(flatten)]
        common: GenArgs,
    },
    /// TypeScript: an interface and an encode/decode codec per message (@msgpack/msgpack), a
    /// browser client per service (gRPC-Web over fetch, through the gateway) and a Node client
    /// (@grpc/grpc-js); compiles with `tsc --strict`.
    Typescript {
        #[command(flatten)]
        common: GenArgs,
        /// The clients to write: `web` (gRPC-Web, browsers), `node` (@grpc/grpc-js), both
        /// (default) or `none` (messages and method codecs only). A browser bundle wants
        /// `--clients web`: the Node client imports @grpc/grpc-js.
        #[arg(
            long,
            value_name = "LIST",
            value_delimiter = ',',
            default_value = "web,node"
        )]
        clients: Vec<ClientsArg>,
    },
}

/// A value of `gen typescript --clients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientsArg {
    /// gRPC-Web over fetch.
    Web,
    /// @grpc/grpc-js.
    Node,
    /// No clients.
    None,
}

/// What every generator takes.
#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// The contract: a directory searched for .proto files (its include root), descriptor
    /// sets and #[msgpack_service] trait files.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// With --out: do not write; fail when FILE is not what would be generated (for CI).
    #[arg(long, requires = "out")]
    check: bool,
    /// Proto messages use the named layout with this key case (as the build's
    /// `key_case(...)`): `as_written`, `camelCase` or `PascalCase`. Default: compact.
    #[arg(long, value_name = "CASE", value_parser = parse_key_case)]
    key_case: Option<KeyCase>,
}

fn parse_key_case(text: &str) -> Result<KeyCase, String> {
    text.parse::<KeyCase>().map_err(|err| err.to_string())
}

pub(crate) fn run(command: GenCommand) -> anyhow::Result<ExitCode> {
    match command {
        GenCommand::Csharp { common, namespace } => {
            let contract = load(&common)?;
            let options = CsharpOptions {
                namespace,
                proto_key_case: common.key_case,
            };
            emit(&common, &generate_csharp(&contract, &options)?)
        }
        GenCommand::Python { common } => {
            let contract = load(&common)?;
            let options = PythonOptions {
                proto_key_case: common.key_case,
            };
            emit(&common, &generate_python(&contract, &options)?)
        }
        GenCommand::Typescript { common, clients } => {
            let contract = load(&common)?;
            let options = TypescriptOptions {
                proto_key_case: common.key_case,
                clients: clients
                    .iter()
                    .filter_map(|kind| match kind {
                        ClientsArg::Web => Some(ClientKind::Web),
                        ClientsArg::Node => Some(ClientKind::Node),
                        ClientsArg::None => None,
                    })
                    .collect(),
            };
            emit(&common, &generate_typescript(&contract, &options)?)
        }
    }
}

fn load(args: &GenArgs) -> anyhow::Result<tonic_msgpack_build::model::contract::Contract> {
    if !args.dir.is_dir() {
        bail!("{}: not a directory", args.dir.display());
    }
    Ok(tonic_msgpack_build::load::contract(&args.dir)?)
}

/// Prints, writes or checks the generated text.
fn emit(args: &GenArgs, text: &str) -> anyhow::Result<ExitCode> {
    let Some(out) = &args.out else {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    };
    if args.check {
        let current = std::fs::read_to_string(out).unwrap_or_default();
        if current == text {
            eprintln!("{} is up to date", out.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} is stale; run the same command without --check to update it",
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
