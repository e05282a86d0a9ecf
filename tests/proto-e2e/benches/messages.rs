//! Encode/decode of proto-generated types: MessagePack (compact, derive(Message)) vs prost,
//! on the same structs, interleaved in one run.
//!
//! `cargo bench -p proto-e2e --bench messages`. The machine may be noisy: compare the two
//! lines of each group (a ratio), not absolute numbers.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proto_e2e::demo::v1::{Color, Everything, Inner, Tree, everything};
use proto_e2e::hello::v1::HelloRequest;
use serde::{Serialize, de::DeserializeOwned};
use tonic_msgpack::wkt::Timestamp;

fn small() -> HelloRequest {
    HelloRequest {
        name: "Ann Example".into(),
        count: 42,
    }
}

fn medium() -> Everything {
    Everything {
        i32: -5,
        i64: 1 << 40,
        u32: 7,
        u64: 123_456_789,
        fl: 1.5,
        db: 2.25,
        flag: true,
        text: "the quick brown fox jumps over the lazy dog".into(),
        data: vec![7; 64],
        color: Color::Green as i32,
        numbers: (0..32).collect(),
        names: vec!["alpha".into(), "beta".into(), "gamma".into()],
        counts: HashMap::from([("a".into(), 1), ("b".into(), 2)]),
        inner: Some(Inner {
            name: "inner".into(),
            value: 9,
        }),
        inners: (0..8)
            .map(|i| Inner {
                name: format!("item-{i}"),
                value: i,
            })
            .collect(),
        choice: Some(everything::Choice::ChoiceText("chosen".into())),
        at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_000_000,
        }),
        wrapped_text: Some("wrapped".into()),
        ..Everything::default()
    }
}

fn large() -> Tree {
    fn tree(depth: u32) -> Tree {
        Tree {
            label: format!("node at depth {depth}"),
            children: if depth == 0 {
                Vec::new()
            } else {
                (0..4).map(|_| tree(depth - 1)).collect()
            },
            parent: None,
        }
    }
    tree(4)
}

fn bench_message<T>(c: &mut Criterion, name: &str, value: &T)
where
    T: prost::Message + Serialize + DeserializeOwned + Default + PartialEq + std::fmt::Debug,
{
    let msgpack = tonic_msgpack::to_vec(value).unwrap();
    let proto = value.encode_to_vec();
    assert_eq!(&tonic_msgpack::decode_frame::<T>(&msgpack).unwrap(), value);
    println!(
        "{name}: msgpack {} bytes, protobuf {} bytes",
        msgpack.len(),
        proto.len()
    );

    let mut group = c.benchmark_group(format!("{name}/encode"));
    group.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(msgpack.len().max(proto.len()) * 2);
    group.bench_function(BenchmarkId::from_parameter("msgpack"), |b| {
        b.iter(|| {
            buf.clear();
            rmp_serde::encode::write(&mut buf, black_box(value)).unwrap();
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
        b.iter(|| tonic_msgpack::decode_frame::<T>(black_box(&msgpack)).unwrap())
    });
    group.bench_function(BenchmarkId::from_parameter("prost"), |b| {
        b.iter(|| T::decode(black_box(&proto[..])).unwrap())
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
