//! Record batch encode and decode throughput (uncompressed), in bytes per
//! second of encoded batch. Run with `cargo bench --bench record_batch`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use skotch::protocol::record::{decode_batches, Header, Record, RecordBatchBuilder};

fn records(n: usize, value_len: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: 0,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'x'; value_len])),
            headers: vec![Header::new("h", "a"), Header::new("h", "b")],
        })
        .collect()
}

fn build(recs: &[Record]) -> Bytes {
    let mut b = RecordBatchBuilder::new(usize::MAX);
    for r in recs {
        let _ = b.try_push(r.clone());
    }
    b.build().expect("batch encodes")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_batch");
    for value_len in [100usize, 1000] {
        let recs = records(1000, value_len);
        let encoded = build(&recs);
        g.throughput(Throughput::Bytes(encoded.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", value_len), &recs, |b, recs| {
            b.iter(|| build(recs))
        });
        g.bench_with_input(
            BenchmarkId::new("decode", value_len),
            &encoded,
            |b, data| {
                b.iter(|| {
                    let mut n = 0;
                    for batch in decode_batches(data.clone(), true) {
                        for r in batch.unwrap().records() {
                            n += r.unwrap().value.map_or(0, |v| v.len());
                        }
                    }
                    n
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
