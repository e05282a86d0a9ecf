use tonic_msgpack::Message;

#[derive(Message)]
#[msgpack(named, named)]
struct Point {
    #[msgpack(key = 0, key = 1)]
    x: i32,
}

fn main() {}
