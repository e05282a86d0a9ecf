//! The one-line build (hello.proto), plus the options on the rest.

use tonic_msgpack_build::{KeyCase, configure};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_msgpack_build::compile_protos("proto/hello.proto")?;

    configure()
        .bytes([".demo.v1.Everything.shared"])
        .compile_protos(
            &[
                "proto/demo/everything.proto",
                "proto/demo/admin.proto",
                "proto/evo/v1.proto",
                "proto/evo/v2.proto",
            ],
            &["proto", "proto-common"],
        )?;

    configure()
        .key_case(KeyCase::Camel)
        .compile_protos(&["proto/named.proto"], &["proto"])?;
    Ok(())
}
