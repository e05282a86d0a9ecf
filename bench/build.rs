//! The example app's `greeter.proto` twice: tonic + prost (`tonic-prost-build`, descriptors from
//! protox, so no protoc) and tonic-msgpack (`tonic-msgpack-build`), each in its own directory.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../example-app/proto/demo/v1/greeter.proto";
    let include = "../example-app/proto/demo/v1";
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let prost_out = out.join("prost");
    std::fs::create_dir_all(&prost_out)?;
    let descriptors = protox::compile([proto], [include])?;
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&prost_out)
        .compile_fds(descriptors)?;

    let msgpack_out = out.join("msgpack");
    std::fs::create_dir_all(&msgpack_out)?;
    tonic_msgpack_build::configure()
        .build_client(false)
        .out_dir(&msgpack_out)
        .compile_protos(&[proto], &[include])?;
    println!("cargo:rerun-if-changed={proto}");
    Ok(())
}
