use std::collections::HashMap;

use tonic_msgpack::Message;

#[derive(Debug, Default, PartialEq, Message)]
enum Kind {
    #[default]
    Plain = 0,
    Fancy = 2,
}

#[derive(Debug, PartialEq, Message)]
enum Choice {
    #[msgpack(key = 4)]
    Text(String),
    #[msgpack(key = 5)]
    Blob(Vec<u8>),
}

#[derive(Debug, Default, PartialEq, Message)]
struct Order {
    #[msgpack(key = 0)]
    id: u64,
    #[msgpack(key = 1)]
    kind: Kind,
    #[msgpack(key = 2)]
    lines: Vec<Line>,
    #[msgpack(key = 3, bytes)]
    note: Vec<u8>,
    #[msgpack(oneof = "4, 5")]
    extra: Option<Choice>,
    #[msgpack(key = 6)]
    attributes: HashMap<String, String>,
    #[msgpack(key = 7)]
    r#type: String,
}

#[derive(Debug, Default, PartialEq, Message)]
#[msgpack(named)]
struct Line {
    #[msgpack(key = 0)]
    sku: String,
    #[msgpack(key = 1)]
    parent: Option<Box<Line>>,
}

fn main() {
    let order = Order {
        id: 1,
        extra: Some(Choice::Blob(vec![1])),
        ..Order::default()
    };
    let bytes = tonic_msgpack::to_vec(&order).unwrap();
    assert_eq!(tonic_msgpack::decode_frame::<Order>(&bytes).unwrap(), order);
}
