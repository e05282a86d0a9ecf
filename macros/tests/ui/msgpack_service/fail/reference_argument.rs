use tonic::Status;
use tonic_msgpack::msgpack_service;

#[msgpack_service]
trait Greeter {
    async fn greet(&self, name: &str) -> Result<String, Status>;
}

fn main() {}
