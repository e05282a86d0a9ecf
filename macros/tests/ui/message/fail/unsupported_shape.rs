use tonic_msgpack::Message;

#[derive(Message)]
struct Pair(i32, i32);

#[derive(Message)]
struct Wrapper<T> {
    #[msgpack(key = 0)]
    value: T,
}

#[derive(Message)]
enum Mixed {
    A,
    B(i32),
}

fn main() {}
