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
//! `instructions wall [ROUNDS]`: wall time instead, for every case: the three codecs take turns
//! (ROUNDS rounds of about 5 ms each), and each codec's fastest round counts, which is what a
//! shared machine lets through.
//!
//! Each codec does what its tonic codec does with tonic's buffers: encode appends to a
//! reused `BytesMut` (tonic's `EncodeBuf`), decode reads a frame taken as `Bytes` (what
//! `DecodeBuf::copy_to_bytes` gives) and drops the value.
//!
//! - `msgpack`: `tonic_msgpack::MessageCodec`, what `.proto` services use (direct MessagePack);
//! - `serde`: `tonic_msgpack::MsgPackCodec` (rmp-serde over the derived serde impls);
//! - `prost`: `tonic-prost`'s `ProstCodec` (`Message::encode` / `Message::decode`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use prost::Message;
use proto_e2e::samples;
use serde::{Serialize, de::DeserializeOwned};
use tonic_msgpack::direct::{MsgPackDecode, MsgPackEncode};
use tonic_msgpack::{Compact, Layout};

/// Runs one codec operation `iterations` times; the time of the loop alone. The codec is
/// chosen before the loop, so each loop holds only its own codec's work.
fn run<T>(value: &T, codec: &str, op: &str, iterations: u64) -> Result<Duration, String>
where
    T: Message + Serialize + DeserializeOwned + MsgPackEncode + MsgPackDecode + Default,
{
    let msgpack = Bytes::from(tonic_msgpack::to_vec(value).map_err(|e| e.to_string())?);
    let proto = Bytes::from(value.encode_to_vec());
    let mut buf = BytesMut::with_capacity(msgpack.len().max(proto.len()) * 2);
    let err = |e: &dyn std::fmt::Display| e.to_string();
    match (codec, op) {
        ("msgpack", "encode") => repeat(iterations, || {
            buf.clear();
            black_box(value)
                .encode_msgpack(&mut buf)
                .map_err(|e| err(&e))?;
            black_box(&buf);
            Ok(())
        }),
        ("serde", "encode") => repeat(iterations, || {
            buf.clear();
            Compact::encode_buf(&mut buf, black_box(value)).map_err(|e| err(&e))?;
            black_box(&buf);
            Ok(())
        }),
        ("prost", "encode") => repeat(iterations, || {
            buf.clear();
            black_box(value).encode(&mut buf).map_err(|e| err(&e))?;
            black_box(&buf);
            Ok(())
        }),
        ("msgpack", "decode") => repeat(iterations, || {
            let frame = black_box(&msgpack);
            black_box(tonic_msgpack::direct::decode_bytes::<T>(frame).map_err(|e| err(&e))?);
            Ok(())
        }),
        ("serde", "decode") => repeat(iterations, || {
            let frame = black_box(&msgpack);
            black_box(tonic_msgpack::decode_frame::<T>(frame).map_err(|e| err(&e))?);
            Ok(())
        }),
        ("prost", "decode") => repeat(iterations, || {
            let frame = black_box(&proto).clone();
            black_box(T::decode(frame).map_err(|e| err(&e))?);
            Ok(())
        }),
        _ => Err(format!("unknown codec/op {codec} {op}")),
    }
}

fn repeat(
    iterations: u64,
    mut step: impl FnMut() -> Result<(), String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..iterations {
        step()?;
    }
    Ok(start.elapsed())
}

/// Nanoseconds per operation of the fastest of `rounds` rounds, each codec in turn.
fn wall<T>(value: &T, op: &str, rounds: u32) -> Result<[f64; 3], String>
where
    T: Message + Serialize + DeserializeOwned + MsgPackEncode + MsgPackDecode + Default,
{
    const CODECS: [&str; 3] = ["msgpack", "serde", "prost"];
    // Iterations per round: about 5 ms of the slowest codec.
    let mut probe = 16u64;
    while run(value, "serde", op, probe)? < Duration::from_millis(5) {
        probe *= 2;
    }
    let mut best = [f64::INFINITY; 3];
    for _ in 0..rounds {
        for (i, codec) in CODECS.iter().enumerate() {
            let took = run(value, codec, op, probe)?;
            best[i] = best[i].min(took.as_nanos() as f64 / probe as f64);
        }
    }
    Ok(best)
}

fn wall_table(rounds: u32) -> Result<(), String> {
    println!("case           msgpack_ns  serde_ns  prost_ns  prost/msgpack  prost/serde");
    for message in ["small", "medium", "large"] {
        for op in ["encode", "decode"] {
            let [m, s, p] = match message {
                "small" => wall(&samples::small(), op, rounds)?,
                "medium" => wall(&samples::medium(), op, rounds)?,
                _ => wall(&samples::large(), op, rounds)?,
            };
            println!(
                "{:<14} {m:>10.1} {s:>9.1} {p:>9.1} {:>14.2} {:>12.2}",
                format!("{message} {op}"),
                p / m,
                p / s
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("wall") {
        let rounds = match args.get(1) {
            Some(n) => n
                .parse()
                .map_err(|_| "ROUNDS must be a number".to_owned())?,
            None => 200,
        };
        return wall_table(rounds);
    }
    let [codec, op, message, iterations] = args.as_slice() else {
        return Err(
            "usage: instructions msgpack|serde|prost encode|decode small|medium|large N \
             | instructions wall [ROUNDS]"
                .into(),
        );
    };
    let iterations: u64 = iterations
        .parse()
        .map_err(|_| "N must be a number".to_owned())?;
    match message.as_str() {
        "small" => run(&samples::small(), codec, op, iterations),
        "medium" => run(&samples::medium(), codec, op, iterations),
        "large" => run(&samples::large(), codec, op, iterations),
        other => Err(format!("unknown message {other}")),
    }
    .map(drop)
}
