//! MessagePack (compact and named) vs prost on the same structs, encode and decode.
//!
//! Encoding appends to a reused `BytesMut` exactly as the tonic codecs do with their frame
//! buffer; decoding reads one whole frame. Criterion groups put the contenders side by side;
//! `cargo bench -p tonic-msgpack --bench codec -- --ratio` instead interleaves them in one loop
//! and prints min-time ratios, which hold up better on a noisy machine.

#![allow(missing_docs)]

mod data;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, criterion_group};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic_msgpack::{Compact, Layout, Named, decode_frame};

struct Case<T> {
    name: &'static str,
    value: T,
}

fn encode_msgpack<F: Layout, T: Serialize>(buf: &mut BytesMut, value: &T) {
    buf.clear();
    F::encode_buf(buf, value).expect("encode");
}

fn encode_prost<T: Message>(buf: &mut BytesMut, value: &T) {
    buf.clear();
    value.encode(buf).expect("encode");
}

fn bench_case<T>(c: &mut Criterion, case: &Case<T>)
where
    T: Message + Default + Serialize + DeserializeOwned,
{
    let compact = tonic_msgpack::to_vec(&case.value).expect("encode");
    let named = tonic_msgpack::to_vec_named(&case.value).expect("encode");
    let proto = case.value.encode_to_vec();

    let mut group = c.benchmark_group(format!("encode/{}", case.name));
    let mut buf = BytesMut::with_capacity(128 * 1024);
    group.bench_function("prost", |b| {
        b.iter(|| encode_prost(&mut buf, black_box(&case.value)))
    });
    group.bench_function("msgpack_compact", |b| {
        b.iter(|| encode_msgpack::<Compact, _>(&mut buf, black_box(&case.value)))
    });
    group.bench_function("msgpack_named", |b| {
        b.iter(|| encode_msgpack::<Named, _>(&mut buf, black_box(&case.value)))
    });
    group.finish();

    let mut group = c.benchmark_group(format!("decode/{}", case.name));
    group.bench_function("prost", |b| {
        b.iter(|| T::decode(black_box(&proto[..])).expect("decode"))
    });
    group.bench_function("msgpack_compact", |b| {
        b.iter(|| decode_frame::<T>(black_box(&compact)).expect("decode"))
    });
    group.bench_function("msgpack_named", |b| {
        b.iter(|| decode_frame::<T>(black_box(&named)).expect("decode"))
    });
    group.finish();
}

fn criterion_benches(c: &mut Criterion) {
    bench_case(
        c,
        &Case {
            name: "small",
            value: data::small(),
        },
    );
    bench_case(
        c,
        &Case {
            name: "order10",
            value: data::order(),
        },
    );
    bench_case(
        c,
        &Case {
            name: "bytes64k",
            value: data::blob(),
        },
    );
}

criterion_group!(benches, criterion_benches);

/// The fastest of `rounds` timings of `iters` calls.
fn min_time(iters: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn ratio_row<T>(case: &Case<T>)
where
    T: Message + Default + Serialize + DeserializeOwned,
{
    let compact = tonic_msgpack::to_vec(&case.value).expect("encode");
    let named = tonic_msgpack::to_vec_named(&case.value).expect("encode");
    let proto = case.value.encode_to_vec();
    let iters = if proto.len() > 10_000 { 200 } else { 20_000 };
    let mut buf = BytesMut::with_capacity(128 * 1024);
    let mut best = [Duration::MAX; 6];
    // Interleave the contenders so that machine noise hits all of them alike.
    for _ in 0..30 {
        let timings = [
            min_time(iters, || encode_prost(&mut buf, black_box(&case.value))),
            min_time(iters, || {
                encode_msgpack::<Compact, _>(&mut buf, black_box(&case.value))
            }),
            min_time(iters, || {
                encode_msgpack::<Named, _>(&mut buf, black_box(&case.value))
            }),
            min_time(iters, || {
                drop(black_box(T::decode(black_box(&proto[..])).expect("decode")))
            }),
            min_time(iters, || {
                drop(black_box(
                    decode_frame::<T>(black_box(&compact)).expect("decode"),
                ))
            }),
            min_time(iters, || {
                drop(black_box(
                    decode_frame::<T>(black_box(&named)).expect("decode"),
                ))
            }),
        ];
        for (best, timing) in best.iter_mut().zip(timings) {
            *best = (*best).min(timing);
        }
    }
    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    println!(
        "| {:<9} | {:>6} B | {:>6} B ({:.2}x) | {:>6} B | {:>8.0} ns | {:>8.0} ns ({:.2}x) | {:>8.0} ns | {:>8.0} ns | {:>8.0} ns ({:.2}x) | {:>8.0} ns |",
        case.name,
        proto.len(),
        compact.len(),
        compact.len() as f64 / proto.len() as f64,
        named.len(),
        ns(best[0]),
        ns(best[1]),
        ns(best[1]) / ns(best[0]),
        ns(best[2]),
        ns(best[3]),
        ns(best[4]),
        ns(best[4]) / ns(best[3]),
        ns(best[5]),
    );
}

/// Runs one contender `ITERS` times, for `valgrind --tool=callgrind` (instruction counts do not
/// depend on machine noise): `codec --one order10 compact-decode`.
fn run_one<T>(case: &Case<T>, contender: &str)
where
    T: Message + Default + Serialize + DeserializeOwned,
{
    const ITERS: u32 = 10_000;
    let compact = tonic_msgpack::to_vec(&case.value).expect("encode");
    let named = tonic_msgpack::to_vec_named(&case.value).expect("encode");
    let proto = case.value.encode_to_vec();
    let mut buf = BytesMut::with_capacity(128 * 1024);
    for _ in 0..ITERS {
        match contender {
            "prost-encode" => encode_prost(&mut buf, black_box(&case.value)),
            "compact-encode" => encode_msgpack::<Compact, _>(&mut buf, black_box(&case.value)),
            "named-encode" => encode_msgpack::<Named, _>(&mut buf, black_box(&case.value)),
            "prost-decode" => drop(black_box(T::decode(black_box(&proto[..])).expect("decode"))),
            "compact-decode" => drop(black_box(
                decode_frame::<T>(black_box(&compact)).expect("decode"),
            )),
            "named-decode" => drop(black_box(
                decode_frame::<T>(black_box(&named)).expect("decode"),
            )),
            "none" => {}
            other => panic!("unknown contender {other}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--one") {
        let (case, contender) = (&args[position + 1], &args[position + 2]);
        match case.as_str() {
            "small" => run_one(
                &Case {
                    name: "small",
                    value: data::small(),
                },
                contender,
            ),
            "order10" => run_one(
                &Case {
                    name: "order10",
                    value: data::order(),
                },
                contender,
            ),
            "bytes64k" => run_one(
                &Case {
                    name: "bytes64k",
                    value: data::blob(),
                },
                contender,
            ),
            other => panic!("unknown case {other}"),
        }
        return;
    }
    if args.iter().any(|arg| arg == "--ratio") {
        println!(
            "| message   | prost size | compact size (vs prost) | named size | prost encode | compact encode (vs prost) | named encode | prost decode | compact decode (vs prost) | named decode |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        ratio_row(&Case {
            name: "small",
            value: data::small(),
        });
        ratio_row(&Case {
            name: "order10",
            value: data::order(),
        });
        ratio_row(&Case {
            name: "bytes64k",
            value: data::blob(),
        });
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
