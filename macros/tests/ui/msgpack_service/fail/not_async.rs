use tonic::Status;
use tonic_msgpack::msgpack_service;

#[msgpack_service]
trait Calculator {
    fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
}

fn main() {}
