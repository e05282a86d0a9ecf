use tonic_msgpack::Message;

#[derive(Message)]
#[msgpack(key_case = "kebab-case")]
struct Point {
    #[msgpack(key = 0)]
    x: i32,
}

fn main() {}
