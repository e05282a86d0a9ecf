//! Compiles `proto/demo/v1/greeter.proto` into MessagePack tonic services (no protoc needed) and
//! writes the gateway's route stubs for both services (the proto one and the trait one in
//! `src/calculator.rs`), with typed JSON transcoders so the gateway answers REST for them.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_msgpack_build::configure()
        .gateway_routes(true)
        // `crate::proto` includes the `demo.v1` package (src/lib.rs); the `Calculator` trait's
        // module comes from its file (`crate::calculator`).
        .gateway_routes_module("crate::proto")
        .traits(["src/calculator.rs"])
        // `services.binpb`: both services' descriptors, for the protobuf bridge and reflection.
        .descriptor_set(true)
        .compile_protos(&["proto/demo/v1/greeter.proto"], &["proto/demo/v1"])?;
    Ok(())
}
