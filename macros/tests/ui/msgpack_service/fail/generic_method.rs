use tonic::Status;
use tonic_msgpack::msgpack_service;

#[msgpack_service]
trait Calculator {
    async fn add<T: Into<i64>>(&self, a: T, b: T) -> Result<i64, Status>;
}

fn main() {}
