//! The typed JSON transcoders in the generated route stubs: REST bodies of the trait service
//! are JSON objects keyed by argument name and become exactly the wire message of rule 6; the
//! proto service's messages use their proto field names.

use example_app::calculator::__calculator_msgpack::{
    __AddJson, __AddResponse, __CountdownJson, __PingJson, __PingResponse,
};
use tonic_msgpack_gateway::Transcoder;

fn transcoder(path: &str) -> Transcoder {
    let table = example_app::routes::table();
    let route = table.get(path).unwrap_or_else(|| panic!("no route {path}"));
    route
        .transcoder
        .clone()
        .unwrap_or_else(|| panic!("{path} has no transcoder"))
}

#[test]
fn add_json_encodes_as_the_argument_array() {
    let add = Transcoder::typed::<__AddJson, __AddResponse>();
    assert_eq!(
        add.request_to_msgpack(br#"{"a":1,"b":2}"#).expect("encode"),
        [0x92, 0x01, 0x02]
    );
    // Named layout: rule 6 arrays are the same.
    let named = Transcoder::typed_named::<__AddJson, __AddResponse>();
    assert_eq!(
        named
            .request_to_msgpack(br#"{"b":2,"a":1}"#)
            .expect("encode"),
        [0x92, 0x01, 0x02]
    );
    // Proto JSON: a 64-bit integer is a string.
    assert_eq!(add.response_to_json(&[0x03]).expect("decode"), br#""3""#);
    let err = add
        .request_to_msgpack(br#"{"a":1}"#)
        .expect_err("missing argument");
    assert!(err.message().contains("missing field `b`"), "{err}");
}

#[test]
fn one_argument_is_the_bare_value_and_none_is_nil() {
    let countdown = Transcoder::typed::<__CountdownJson, u32>();
    assert_eq!(
        countdown
            .request_to_msgpack(br#"{"from":3}"#)
            .expect("encode"),
        [0x03]
    );
    let ping = Transcoder::typed::<__PingJson, __PingResponse>();
    assert_eq!(ping.request_to_msgpack(b"{}").expect("encode"), [0xc0]);
    assert_eq!(ping.response_to_json(&[0xc0]).expect("decode"), b"null");
}

#[test]
fn generated_routes_carry_the_transcoders() {
    let add = transcoder("/demo.v1.Calculator/Add");
    assert_eq!(
        add.request_to_msgpack(br#"{"a":40,"b":2}"#)
            .expect("encode"),
        [0x92, 40, 2]
    );
    let hello = transcoder("/demo.v1.Greeter/SayHello");
    let bytes = hello
        .request_to_msgpack(br#"{"name":"Ann","count":2}"#)
        .expect("encode");
    // Compact layout: [name, count].
    assert_eq!(bytes, [0x92, 0xa3, b'A', b'n', b'n', 0x02]);
    let sum = transcoder("/demo.v1.Calculator/Sum");
    assert_eq!(sum.request_to_msgpack(b"5").expect("encode"), [0x05]);
}
