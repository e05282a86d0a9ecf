//! The two front ends, reached through two small functions so the CLI does not care where the
//! models come from.
//!
//! - `.proto` directories: `tonic_msgpack_build::load::proto_services` (the protox front end).
//! - Rust files: every trait with a `#[msgpack_service(...)]` attribute, through
//!   `tonic_msgpack_build::load::trait_services` (the same conversion the macro uses).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tonic_msgpack_build::model::ServiceModel;

/// Every service of every `.proto` file under `dir` (`dir` is also the include path).
pub(crate) fn load_proto_dir(dir: &Path) -> anyhow::Result<Vec<ServiceModel>> {
    let mut protos = Vec::new();
    collect_protos(dir, &mut protos)?;
    if protos.is_empty() {
        bail!("{}: no .proto files found", dir.display());
    }
    protos.sort();
    load_protos(&protos, &[dir.to_owned()])
}

pub(crate) fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// The protox front end.
fn load_protos(protos: &[PathBuf], includes: &[PathBuf]) -> anyhow::Result<Vec<ServiceModel>> {
    Ok(tonic_msgpack_build::load::proto_services(protos, includes)?)
}

/// Every `#[msgpack_service]` trait in the Rust file `file` (also inside inline modules), as
/// the macro sees it.
pub(crate) fn load_traits(file: &Path) -> anyhow::Result<Vec<ServiceModel>> {
    Ok(tonic_msgpack_build::load::trait_services(file)?)
}
