use tonic::Status;
use tonic_msgpack::msgpack_service;

#[msgpack_service]
trait Calculator {
    #[rpc(http = "GET /v1/add/{a}/{c}")]
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
}

fn main() {}
