//! Record batch encode and decode throughput, uncompressed and with each
//! codec, in MB/s (10^6 bytes per second) of *record bytes* (the
//! uncompressed records; see `support/payload.rs`), for producer batch
//! sizes of 16 KiB and 1 MiB.
//!
//! - `encode/<codec>/<batch size>`: push the payload's records into
//!   builders as a producer does and build the batches, compression
//!   included.
//! - `decode/<codec>/<batch size>`: walk the concatenated batches (as a
//!   fetch response carries them) with CRC checks on, decompress, and
//!   decode every record.
//! - `compress/<codec>`, `decompress/<codec>`: the codec alone on the
//!   payload's record bytes in one piece (the 1 MiB batch's), to compare
//!   with the C tools' own benchmarks (`zstd -b`, `lz4 -b`) on the same bytes.
//!
//! Before measuring it prints the payload and each codec's compression
//! ratio. `cargo bench --bench memcpy` gives the ceiling for the same
//! number of bytes. Run with `cargo bench --bench record_batch`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use skotch::protocol::record::{
    compress, decode_batches, decompress, Compression, Record, DEFAULT_MAX_DECOMPRESSED_SIZE,
};

#[path = "support/config.rs"]
mod config;
#[path = "support/payload.rs"]
mod payload;

/// Decode every record of `data` and return something that depends on
/// all of them, so none of the work can be skipped.
fn decode_all(data: &Bytes) -> usize {
    let mut n = 0;
    for batch in decode_batches(data.clone(), true) {
        for record in batch.expect("batch decodes").records() {
            let record = record.expect("record decodes");
            n += record.value.map_or(0, |v| v.len()) + record.headers.len();
        }
    }
    n
}

/// Print what is measured: the payload and, per batch size, each codec's
/// compression ratio (uncompressed batch bytes / compressed batch bytes,
/// headers included: what the broker stores and sends).
fn print_payload(records: &[Record]) {
    println!("payload: {} records", records.len());
    for (batch_size, name) in payload::BATCH_SIZES {
        let plain = payload::encode(records.iter().cloned(), batch_size, Compression::None);
        let plain_len: usize = plain.iter().map(Bytes::len).sum();
        println!(
            "batch.size {name}: {} batches, {} record bytes, {plain_len} batch bytes uncompressed",
            plain.len(),
            payload::record_bytes(&plain),
        );
        for codec in Compression::ALL {
            let len: usize = payload::encode(records.iter().cloned(), batch_size, codec)
                .iter()
                .map(Bytes::len)
                .sum();
            println!(
                "  {:<6} {len:>7} bytes  ratio {:.2}",
                codec.name(),
                plain_len as f64 / len as f64
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let records = payload::records();
    print_payload(&records);

    for (batch_size, size_name) in payload::BATCH_SIZES {
        let plain = payload::encode(records.iter().cloned(), batch_size, Compression::None);
        let throughput = Throughput::BytesDecimal(payload::record_bytes(&plain));

        let mut encode = c.benchmark_group("encode");
        encode.throughput(throughput.clone());
        for codec in Compression::ALL {
            encode.bench_function(BenchmarkId::new(codec.name(), size_name), |b| {
                // The producer owns its records; cloning them is not the
                // encoder's work, so it happens outside the timing.
                b.iter_batched(
                    || records.clone(),
                    |recs| payload::encode(recs, batch_size, codec),
                    BatchSize::LargeInput,
                )
            });
        }
        encode.finish();

        let mut decode = c.benchmark_group("decode");
        decode.throughput(throughput);
        for codec in Compression::ALL {
            let batches = payload::encode(records.iter().cloned(), batch_size, codec);
            let data = Bytes::from(batches.concat());
            decode.bench_function(BenchmarkId::new(codec.name(), size_name), |b| {
                b.iter(|| decode_all(black_box(&data)))
            });
        }
        decode.finish();
    }
    bench_codecs(c, &records);
}

/// The codecs alone, on the record bytes of the one 1 MiB batch.
fn bench_codecs(c: &mut Criterion, records: &[Record]) {
    let (batch_size, _) = payload::BATCH_SIZES[1];
    let plain = payload::encode(records.iter().cloned(), batch_size, Compression::None);
    let plain = decode_batches(plain.concat().into(), true)
        .next()
        .expect("one batch")
        .expect("batch decodes")
        .record_bytes()
        .clone();
    let codecs = || {
        Compression::ALL
            .into_iter()
            .filter(|&c| c != Compression::None)
    };

    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::BytesDecimal(plain.len() as u64));
    for codec in codecs() {
        g.bench_function(codec.name(), |b| {
            b.iter(|| compress(codec, None, black_box(&plain)).expect("compresses"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("decompress");
    g.throughput(Throughput::BytesDecimal(plain.len() as u64));
    for codec in codecs() {
        let packed = Bytes::from(compress(codec, None, &plain).expect("compresses"));
        g.bench_function(codec.name(), |b| {
            b.iter(|| {
                decompress(
                    codec,
                    black_box(packed.clone()),
                    DEFAULT_MAX_DECOMPRESSED_SIZE,
                )
                .expect("decompresses")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config::config();
    targets = bench
}
criterion_main!(benches);
