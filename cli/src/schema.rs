//! `tonic-msgpack schema`: one `FileDescriptorSet` for every service, proto or trait, with each
//! message's MessagePack layout in the options of `tonic_msgpack/options.proto` (for the
//! gateway's protobuf bridge and server reflection, and for any descriptor-driven tool).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use tonic_msgpack_build::{Format, KeyCase};

/// The arguments of `tonic-msgpack schema`.
#[derive(Args)]
pub(crate) struct SchemaArgs {
    /// A directory of .proto files (searched recursively; also the include path). Repeatable.
    #[arg(long = "proto", value_name = "DIR")]
    protos: Vec<PathBuf>,
    /// A Rust file with `#[msgpack_service]` traits. Repeatable.
    #[arg(long = "traits", value_name = "FILE")]
    traits: Vec<PathBuf>,
    /// The file to write (an encoded `FileDescriptorSet`, e.g. `services.binpb`).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The protos were built with the named layout and this key case (`as_written`,
    /// `camel`, `pascal`): their messages are marked so. Default: compact.
    #[arg(long, value_name = "CASE", value_parser = key_case)]
    named: Option<KeyCase>,
    /// Also print the `.proto` text synthesized for the traits.
    #[arg(long)]
    print_protos: bool,
}

fn key_case(text: &str) -> Result<KeyCase, String> {
    match text {
        "as_written" | "as-written" => Ok(KeyCase::AsWritten),
        "camel" => Ok(KeyCase::Camel),
        "pascal" => Ok(KeyCase::Pascal),
        other => Err(format!(
            "unknown key case `{other}`: expected as_written, camel or pascal"
        )),
    }
}

/// Writes the descriptor set of the inputs.
pub(crate) fn run(args: SchemaArgs) -> anyhow::Result<()> {
    if args.protos.is_empty() && args.traits.is_empty() {
        bail!("nothing to read: give at least one --proto DIR or --traits FILE");
    }
    let mut protos = Vec::new();
    for dir in &args.protos {
        let before = protos.len();
        crate::frontends::collect_protos(dir, &mut protos)?;
        if protos.len() == before {
            bail!("{}: no .proto files found", dir.display());
        }
    }
    protos.sort();
    if args.print_protos {
        for file in &args.traits {
            for (name, source) in tonic_msgpack_build::load::trait_protos(file)? {
                println!("// ---- {name}\n{source}");
            }
        }
    }
    let (format, case) = match args.named {
        Some(case) => (Format::Named, case),
        None => (Format::Compact, KeyCase::AsWritten),
    };
    let encoded = tonic_msgpack_build::load::descriptor_set(
        &protos,
        &args.protos,
        &args.traits,
        format,
        case,
    )?;
    std::fs::write(&args.out, &encoded)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {} ({} bytes)", args.out.display(), encoded.len());
    Ok(())
}
