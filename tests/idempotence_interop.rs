//! The idempotent producer (KIP-98) against the real broker, checked by
//! three independent witnesses: the Java consumer reads back exactly the
//! records skotch wrote, in each partition's order; the broker's producer
//! state (DescribeProducers, KIP-664, through the Java AdminClient) holds
//! skotch's producer id with the last sequence matching what was written;
//! and the stored record batches carry one producer id and epoch with
//! contiguous sequences from 0. Plus the other side: a non-idempotent
//! producer writes no producer id, and asking for idempotence with
//! `acks=1` is a configuration error.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::Value;
use skotch::client::{
    Acks, Error, Header, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

const PARTITIONS: i32 = 3;
const COUNT: usize = 4000;

/// Record `i`: a key from a small set (so every partition gets many), a
/// value with non-UTF-8 bytes of varying length (null for every 17th), and
/// a header with a binary value.
fn record(topic: &str, i: usize) -> ProducerRecord {
    let value = (i % 17 != 5).then(|| {
        let mut v = format!("value-{i}-").into_bytes();
        v.extend((0..i % 61).map(|j| (i * 31 + j * 7) as u8));
        Bytes::from(v)
    });
    ProducerRecord {
        topic: topic.to_string(),
        key: Some(Bytes::from(format!("key-{}", i % 101))),
        value,
        headers: vec![Header::new("i", (i as u32).to_be_bytes().to_vec())],
        ..Default::default()
    }
}

/// The JSON lines of tests/java/DescribeProducers for `topic`.
fn describe_producers(topic: &str) -> Vec<Value> {
    let out = common::java("DescribeProducers", &[&common::bootstrap(), topic]);
    for line in &out {
        eprintln!("DescribeProducers: {line}");
    }
    common::json_lines(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_seen_by_java_consumer_broker_state_and_log() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "idem-interop", PARTITIONS).await;
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            max_in_flight: 5,
            batch_size: 2048,
            ..Default::default()
        },
    )
    .expect("producer");
    assert!(producer.is_idempotent(), "idempotence is on by default");

    // Send everything before awaiting anything, so batches pile up and
    // up to 5 per partition are in flight at once.
    let mut deliveries = Vec::with_capacity(COUNT);
    let mut sent = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let rec = record(&topic, i);
        sent.push(rec.clone());
        deliveries.push(producer.send(rec).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    let mut metas: Vec<RecordMetadata> = Vec::with_capacity(COUNT);
    for d in deliveries {
        metas.push(d.await.expect("delivered"));
    }

    // What each partition should hold, in send order; with idempotence the
    // offsets follow send order and have no gaps (nothing duplicated,
    // nothing reordered by pipelining or retries).
    let mut expected: BTreeMap<i32, Vec<(&ProducerRecord, &RecordMetadata)>> = BTreeMap::new();
    for (rec, meta) in sent.iter().zip(&metas) {
        expected
            .entry(meta.partition)
            .or_default()
            .push((rec, meta));
    }
    assert_eq!(expected.len(), PARTITIONS as usize, "every partition used");
    for (p, recs) in &expected {
        for (n, (_, meta)) in recs.iter().enumerate() {
            assert_eq!(
                meta.offset, n as i64,
                "partition {p}: offsets in send order"
            );
        }
    }

    // 1. The Java consumer reads exactly those records, byte for byte, in
    // each partition's order.
    let out = common::java(
        "JavaConsumer",
        &[
            &common::bootstrap(),
            &topic,
            &COUNT.to_string(),
            "--timeout-ms",
            "60000",
        ],
    );
    let read = common::json_lines(&out);
    assert_eq!(read.len(), COUNT, "the Java consumer read exactly {COUNT}");
    let mut by_partition: BTreeMap<i32, Vec<&Value>> = BTreeMap::new();
    for r in &read {
        assert_eq!(r["topic"].as_str(), Some(topic.as_str()));
        let p = r["partition"].as_i64().unwrap() as i32;
        by_partition.entry(p).or_default().push(r);
    }
    assert_eq!(
        by_partition.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (p, want) in &expected {
        let got = &by_partition[p];
        assert_eq!(got.len(), want.len(), "partition {p}: record count");
        for (r, (rec, meta)) in got.iter().zip(want) {
            let at = format!("partition {p} offset {}", meta.offset);
            assert_eq!(r["offset"].as_i64(), Some(meta.offset), "{at}");
            assert_eq!(r["timestamp"].as_i64(), Some(meta.timestamp), "{at}");
            assert_eq!(r["timestampType"].as_str(), Some("CreateTime"), "{at}");
            assert_eq!(
                common::b64(&r["key"]).as_deref(),
                rec.key.as_deref(),
                "{at}: key"
            );
            assert_eq!(
                common::b64(&r["value"]).as_deref(),
                rec.value.as_deref(),
                "{at}: value"
            );
            let headers: Vec<Header> = r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| Header {
                    key: h[0].as_str().unwrap().to_string().into(),
                    value: common::b64(&h[1]).map(Bytes::from),
                })
                .collect();
            assert_eq!(headers, rec.headers, "{at}: headers");
        }
    }

    // 3. The log: one producer id and epoch on every batch; per partition
    // the base sequences start at 0 and each batch continues the last.
    let batches = common::raw_batches(&client, &topic).await;
    let producer_id = batches[0].producer_id;
    let producer_epoch = batches[0].producer_epoch;
    assert!(producer_id >= 0, "idempotent batches carry a producer id");
    assert!(producer_epoch >= 0, "and an epoch");
    let mut per_partition: BTreeMap<i32, Vec<&common::BatchInfo>> = BTreeMap::new();
    for b in &batches {
        assert_eq!(b.producer_id, producer_id, "one producer id: {b:?}");
        assert_eq!(b.producer_epoch, producer_epoch, "one epoch: {b:?}");
        assert_eq!(b.records, b.record_count as usize, "{b:?}");
        per_partition.entry(b.partition).or_default().push(b);
    }
    for (p, list) in &per_partition {
        let (mut next_seq, mut next_offset) = (0i32, 0i64);
        for b in list {
            assert_eq!(
                b.base_sequence, next_seq,
                "partition {p}: contiguous sequences"
            );
            assert_eq!(
                b.base_offset, next_offset,
                "partition {p}: contiguous offsets"
            );
            next_seq += b.record_count;
            next_offset += i64::from(b.record_count);
        }
        assert_eq!(
            next_seq as usize,
            expected[p].len(),
            "partition {p}: the sequences count every record once"
        );
        assert!(
            list.len() >= 10,
            "partition {p}: many batches with batch.size 2048 ({})",
            list.len()
        );
        eprintln!(
            "partition {p}: {} records in {} batches, producer id {producer_id}, epoch {producer_epoch}",
            expected[p].len(),
            list.len()
        );
    }

    // 2. The broker's producer state: skotch's producer, alone on each
    // partition, its last sequence that of the last record written there.
    let states = describe_producers(&topic);
    let mut seen = BTreeMap::new();
    for s in &states {
        let p = s["partition"].as_i64().unwrap() as i32;
        assert!(
            seen.insert(p, s).is_none(),
            "exactly one producer on partition {p}: {states:?}"
        );
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "one producer state per partition: {states:?}"
    );
    for (p, s) in &seen {
        let pid = s["producerId"].as_i64().unwrap();
        assert!(pid >= 0, "{s}");
        assert_eq!(pid, producer_id, "partition {p}: the batches' producer id");
        assert_eq!(
            s["producerEpoch"].as_i64(),
            Some(i64::from(producer_epoch)),
            "partition {p}: {s}"
        );
        assert_eq!(
            s["lastSequence"].as_i64(),
            Some(expected[p].len() as i64 - 1),
            "partition {p}: last sequence = records written - 1: {s}"
        );
        let last = per_partition[p].last().unwrap();
        assert_eq!(
            s["lastTimestamp"].as_i64(),
            Some(last.max_timestamp),
            "partition {p}: the last batch's max timestamp: {s}"
        );
        assert!(
            s["currentTransactionStartOffset"].is_null(),
            "not transactional: {s}"
        );
    }
    producer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_idempotent_producer_writes_no_producer_id() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "idem-off", PARTITIONS).await;
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            enable_idempotence: Some(false),
            batch_size: 2048,
            ..Default::default()
        },
    )
    .expect("producer");
    assert!(!producer.is_idempotent());
    let count = 600;
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        deliveries.push(producer.send(record(&topic, i)).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for d in deliveries {
        d.await.expect("delivered");
    }
    let batches = common::raw_batches(&client, &topic).await;
    assert!(batches.len() > PARTITIONS as usize, "{}", batches.len());
    assert_eq!(
        batches.iter().map(|b| b.records).sum::<usize>(),
        count,
        "every record stored once"
    );
    for b in &batches {
        assert_eq!(b.producer_id, -1, "no producer id: {b:?}");
        assert_eq!(b.producer_epoch, -1, "no producer epoch: {b:?}");
        assert_eq!(b.base_sequence, -1, "no sequence: {b:?}");
    }
    // The broker keeps no producer state for batches without a producer id.
    let states = describe_producers(&topic);
    assert!(states.is_empty(), "no active producers: {states:?}");
    producer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotence_with_acks_leader_is_a_config_error() {
    let client = common::client().await;
    let err = Producer::new(
        client.clone(),
        ProducerConfig {
            enable_idempotence: Some(true),
            acks: Acks::Leader,
            ..Default::default()
        },
    )
    .expect_err("enable.idempotence=true with acks=1 must be refused");
    match &err {
        Error::Config(msg) => {
            assert!(msg.contains("enable.idempotence"), "{msg}");
            assert!(msg.contains("acks"), "{msg}");
        }
        other => panic!("expected Error::Config, got {other:?}"),
    }
    // Left to the default, the same acks turns idempotence off instead.
    let producer = Producer::new(
        client,
        ProducerConfig {
            acks: Acks::Leader,
            ..Default::default()
        },
    )
    .expect("acks=1 without asking for idempotence");
    assert!(!producer.is_idempotent());
    producer.close().await.expect("close");
}
