use tonic_msgpack::Message;

#[derive(Message)]
struct Sparse {
    #[msgpack(key = 0)]
    a: i32,
    #[msgpack(key = 99)]
    b: i32,
}

fn main() {}
