//! A noise-free measure for shared machines: run one codec operation in a loop under
//! callgrind and compare instruction counts.
//!
//! ```text
//! cargo build --release -p proto-e2e --example instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions msgpack decode large 1000
//! ```
//!
//! Arguments: `msgpack|serde|prost`, `encode|decode`, `small|medium|large`, iterations.
//! Subtract a run with 0 iterations to remove the setup cost, then divide by the iterations.
//! `bench/codec-instructions.sh` does that for every case.
//!
//! Each codec does what its tonic codec does with tonic's buffers: encode appends to a
//! reused `BytesMut` (tonic's `EncodeBuf`), decode reads a frame taken as `Bytes` (what
//! `DecodeBuf::copy_to_bytes` gives) and drops the value.
//!
//! - `msgpack`: `tonic_msgpack::MessageCodec`, what `.proto` services use (direct MessagePack);
//! - `serde`: `tonic_msgpack::MsgPackCodec` (rmp-serde over the derived serde impls);
//! - `prost`: `tonic-prost`'s `ProstCodec` (`Message::encode` / `Message::decode`).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use prost::Message;
use proto_e2e::samples;
use serde::{Serialize, de::DeserializeOwned};
use tonic_msgpack::direct::{MsgPackDecode, MsgPackEncode};
use tonic_msgpack::{Compact, Layout};

fn run<T>(value: T, codec: &str, op: &str, iterations: u64) -> Result<(), String>
where
    T: Message + Serialize + DeserializeOwned + MsgPackEncode + MsgPackDecode + Default,
{
    let msgpack = Bytes::from(tonic_msgpack::to_vec(&value).map_err(|e| e.to_string())?);
    let proto = Bytes::from(value.encode_to_vec());
    let mut buf = BytesMut::with_capacity(msgpack.len().max(proto.len()) * 2);
    for _ in 0..iterations {
        match (codec, op) {
            ("msgpack", "encode") => {
                buf.clear();
                black_box(&value)
                    .encode_msgpack(&mut buf)
                    .map_err(|e| e.to_string())?;
            }
            ("serde", "encode") => {
                buf.clear();
                Compact::encode_buf(&mut buf, black_box(&value)).map_err(|e| e.to_string())?;
            }
            ("prost", "encode") => {
                buf.clear();
                black_box(&value)
                    .encode(&mut buf)
                    .map_err(|e| e.to_string())?;
            }
            ("msgpack", "decode") => {
                black_box(
                    tonic_msgpack::direct::decode_bytes::<T>(black_box(&msgpack))
                        .map_err(|e| e.to_string())?,
                );
            }
            ("serde", "decode") => {
                black_box(
                    tonic_msgpack::decode_frame::<T>(black_box(&msgpack))
                        .map_err(|e| e.to_string())?,
                );
            }
            ("prost", "decode") => {
                black_box(T::decode(black_box(proto.clone())).map_err(|e| e.to_string())?);
            }
            _ => return Err(format!("unknown codec/op {codec} {op}")),
        }
        black_box(&buf);
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [codec, op, message, iterations] = args.as_slice() else {
        return Err(
            "usage: instructions msgpack|serde|prost encode|decode small|medium|large N".into(),
        );
    };
    let iterations: u64 = iterations
        .parse()
        .map_err(|_| "N must be a number".to_owned())?;
    match message.as_str() {
        "small" => run(samples::small(), codec, op, iterations),
        "medium" => run(samples::medium(), codec, op, iterations),
        "large" => run(samples::large(), codec, op, iterations),
        other => Err(format!("unknown message {other}")),
    }
}
