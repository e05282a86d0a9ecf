//! Compiles `proto/demo/v1/greeter.proto` into MessagePack tonic services (no protoc needed) and
//! writes the gateway's route stubs for both services (the proto one and the trait one), with
//! typed JSON transcoders so the gateway answers REST for them.

use std::path::PathBuf;

use tonic_msgpack_build::routes::{self, RoutesOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/demo/v1/greeter.proto";
    tonic_msgpack_build::compile_protos(proto)?;

    let mut services = tonic_msgpack_build::load_services(&[proto], &["proto/demo/v1"])?;
    println!("cargo:rerun-if-changed=src/calculator.rs");
    services.extend(tonic_msgpack_build::traits::services_in_file(
        "src/calculator.rs".as_ref(),
    )?);
    // Where the message types live: `crate::proto` includes the `demo.v1` package (src/lib.rs),
    // and the `Calculator` trait is declared in `crate::calculator`.
    let options = RoutesOptions::typed()
        .proto_module("demo.v1", "crate::proto")
        .trait_module("Calculator", "crate::calculator");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    routes::write(&services, &options, &out_dir.join("gateway_routes.rs"))?;
    Ok(())
}
