use tonic_msgpack::Message;

#[derive(Message)]
#[msgpack(rename_all = "camelCase")]
struct Point {
    #[msgpack(key = 0, rename = "X")]
    x: i32,
}

fn main() {}
