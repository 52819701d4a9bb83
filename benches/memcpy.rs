//! The ceiling for the record batch figures: copying the payload's record
//! bytes (`copy_from_slice` into a buffer allocated beforehand), reported
//! with the same `Throughput` as `record_batch`, so its MB/s is the speed
//! no encoder or decoder of those bytes can beat on this machine. Run with
//! `cargo bench --bench memcpy`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use skotch::protocol::record::Compression;

#[path = "support/config.rs"]
mod config;
#[path = "support/payload.rs"]
mod payload;

fn bench(c: &mut Criterion) {
    // The larger batch size holds the whole payload in one batch, whose
    // bytes after the header are exactly the record bytes.
    let (batch_size, size_name) = payload::BATCH_SIZES[1];
    let batches = payload::encode(payload::records(), batch_size, Compression::None);
    assert_eq!(batches.len(), 1, "the payload fits one {size_name} batch");
    let n = payload::record_bytes(&batches);
    let batch = &batches[0];
    let src = batch[batch.len() - n as usize..].to_vec();
    let mut dst = vec![0u8; src.len()];

    let mut g = c.benchmark_group("memcpy");
    g.throughput(Throughput::BytesDecimal(n));
    g.bench_function("record_bytes", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config::config();
    targets = bench
}
criterion_main!(benches);
