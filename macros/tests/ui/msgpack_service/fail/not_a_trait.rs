use tonic_msgpack::msgpack_service;

#[msgpack_service]
struct Calculator;

fn main() {}
