use tonic_msgpack::Message;

#[derive(Message)]
struct Point {
    #[msgpack(key = -1)]
    x: i32,
    #[msgpack(key = "1")]
    y: i32,
}

fn main() {}
