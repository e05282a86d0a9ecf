//! `tonic-msgpack openapi`: the OpenAPI 3.1 document of every REST binding of the proto and
//! trait services, the same document the gateway serves at its `openapi_path`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use prost_reflect::DescriptorPool;
use tonic_msgpack_build::{Format, KeyCase};

/// The arguments of `tonic-msgpack openapi`.
#[derive(Args)]
pub(crate) struct OpenapiArgs {
    /// A directory of .proto files (searched recursively; also the include path). Repeatable.
    #[arg(long = "proto", value_name = "DIR")]
    protos: Vec<PathBuf>,
    /// A Rust file with `#[msgpack_service]` traits. Repeatable.
    #[arg(long = "traits", value_name = "FILE")]
    traits: Vec<PathBuf>,
    /// The JSON file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The document's title.
    #[arg(long, default_value = "tonic-msgpack services")]
    title: String,
}

/// Writes the OpenAPI document of the inputs.
pub(crate) fn run(args: OpenapiArgs) -> anyhow::Result<()> {
    if args.protos.is_empty() && args.traits.is_empty() {
        bail!("nothing to read: give at least one --proto DIR or --traits FILE");
    }
    let mut protos = Vec::new();
    for dir in &args.protos {
        crate::frontends::collect_protos(dir, &mut protos)?;
    }
    protos.sort();
    let encoded = tonic_msgpack_build::load::descriptor_set(
        &protos,
        &args.protos,
        &args.traits,
        Format::Compact,
        KeyCase::AsWritten,
    )?;
    let pool = DescriptorPool::decode(encoded.as_slice())
        .context("the descriptor set of the inputs does not decode")?;
    let document = tonic_msgpack_gateway::openapi_document(&pool, &args.title);
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(&args.out, text + "\n")
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
