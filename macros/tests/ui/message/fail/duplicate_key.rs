use tonic_msgpack::Message;

#[derive(Message)]
struct Point {
    #[msgpack(key = 0)]
    x: i32,
    #[msgpack(key = 0)]
    y: i32,
}

fn main() {}
