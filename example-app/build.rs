//! Compiles `proto/demo/v1/greeter.proto` into MessagePack tonic services (no protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_msgpack_build::compile_protos("proto/demo/v1/greeter.proto")?;
    Ok(())
}
