use tonic::Status;
use tonic_msgpack::{Streaming, msgpack_service};

#[msgpack_service]
trait Calculator {
    async fn sum(&self, scale: i64, values: Streaming<i64>) -> Result<i64, Status>;
}

fn main() {}
