//! Encode/decode of proto-generated types, as tonic's codecs do them with tonic's buffers
//! (encode into a reused `BytesMut`, decode from a `Bytes` frame): `MessageCodec` (direct
//! MessagePack, what `.proto` services use), `MsgPackCodec` (rmp-serde over the serde impls)
//! and prost, on the same structs, interleaved in one run.
//!
//! `cargo bench -p proto-e2e --bench messages`. The machine may be noisy: compare the lines of
//! each group (a ratio), not absolute numbers; `bench/codec-instructions.sh` counts
//! instructions instead.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proto_e2e::samples::{large, medium, small};
use serde::{Serialize, de::DeserializeOwned};
use tonic_msgpack::direct::{MsgPackDecode, MsgPackEncode, decode_bytes};
use tonic_msgpack::{Compact, Layout};

fn bench_message<T>(c: &mut Criterion, name: &str, value: &T)
where
    T: prost::Message
        + Serialize
        + DeserializeOwned
        + MsgPackEncode
        + MsgPackDecode
        + Default
        + PartialEq
        + std::fmt::Debug,
{
    let msgpack = Bytes::from(tonic_msgpack::to_vec(value).unwrap());
    let proto = Bytes::from(value.encode_to_vec());
    assert_eq!(&decode_bytes::<T>(&msgpack).unwrap(), value);
    println!(
        "{name}: msgpack {} bytes, protobuf {} bytes",
        msgpack.len(),
        proto.len()
    );

    let mut group = c.benchmark_group(format!("{name}/encode"));
    group.throughput(Throughput::Elements(1));
    let mut buf = BytesMut::with_capacity(msgpack.len().max(proto.len()) * 2);
    group.bench_function(BenchmarkId::from_parameter("msgpack"), |b| {
        b.iter(|| {
            buf.clear();
            black_box(value).encode_msgpack(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    group.bench_function(BenchmarkId::from_parameter("serde"), |b| {
        b.iter(|| {
            buf.clear();
            Compact::encode_buf(&mut buf, black_box(value)).unwrap();
            black_box(buf.len())
        })
    });
    group.bench_function(BenchmarkId::from_parameter("prost"), |b| {
        b.iter(|| {
            buf.clear();
            black_box(value).encode(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("{name}/decode"));
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("msgpack"), |b| {
        b.iter(|| decode_bytes::<T>(black_box(&msgpack)).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("serde"), |b| {
        b.iter(|| tonic_msgpack::decode_frame::<T>(black_box(&msgpack)).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("prost"), |b| {
        b.iter(|| T::decode(black_box(proto.clone())).unwrap())
    });
    group.finish();
}

fn messages(c: &mut Criterion) {
    bench_message(c, "small", &small());
    bench_message(c, "medium", &medium());
    bench_message(c, "large", &large());
}

criterion_group!(benches, messages);
criterion_main!(benches);
