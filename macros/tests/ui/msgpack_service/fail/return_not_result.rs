use tonic_msgpack::msgpack_service;

#[msgpack_service]
trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
