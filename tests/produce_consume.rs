//! skotch's producer and consumer against the real broker: 100,000 keyed
//! records with duplicate-key headers and some null values go to a
//! 6-partition topic and all come back, in order per partition,
//! byte-identical.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use skotch::client::{
    Consumer, ConsumerConfig, Header, Offset, Producer, ProducerConfig, ProducerRecord,
};

const COUNT: usize = 100_000;

/// Now, in ms. Test records carry recent timestamps: the broker deletes
/// segments whose newest record is older than `retention.ms` (7 days),
/// and a retention check during a test would delete its records.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn record(topic: &str, base_ts: i64, i: usize) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_string(),
        partition: None,
        key: Some(Bytes::from(format!("key-{}", i % 1000))),
        value: (!i.is_multiple_of(7))
            .then(|| Bytes::from(format!("value-{i}-{}", "x".repeat(i % 50)))),
        headers: vec![
            Header::new("h", "a"),
            Header::new("h", "b"),
            Header::new("n", i.to_string()),
            Header {
                key: "nil".into(),
                value: None,
            },
        ],
        timestamp: Some(base_ts + i as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_records_round_trip() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "roundtrip", 6).await;

    let base_ts = now_ms();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        deliveries.push(
            producer
                .send(record(&topic, base_ts, i))
                .await
                .expect("send"),
        );
    }
    producer.flush().await.expect("flush");
    let mut placed: Vec<(i32, i64)> = Vec::with_capacity(COUNT);
    for d in deliveries {
        let md = d.await.expect("delivered");
        placed.push((md.partition, md.offset));
    }
    // Same key, same partition.
    let mut key_partition: HashMap<usize, i32> = HashMap::new();
    for (i, (p, _)) in placed.iter().enumerate() {
        assert_eq!(
            *key_partition.entry(i % 1000).or_insert(*p),
            *p,
            "key-{}",
            i % 1000
        );
    }

    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(&topic, Offset::Earliest)
        .await
        .expect("assign");
    let mut got: Vec<Option<skotch::client::ConsumerRecord>> = vec![None; COUNT];
    let mut received = 0;
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !(consumer.at_end() && received == COUNT) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out with {received} records"
        );
        let poll = consumer.poll().await.expect("poll");
        for r in poll.records {
            let prev = last_offset.insert(r.partition, r.offset);
            assert!(
                prev.is_none_or(|p| p < r.offset),
                "offsets go up per partition"
            );
            let n: usize = std::str::from_utf8(r.headers[2].value.as_ref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert!(got[n].is_none(), "record {n} delivered twice");
            got[n] = Some(r);
            received += 1;
        }
    }
    assert_eq!(received, COUNT);
    for (i, r) in got.into_iter().enumerate() {
        let r = r.unwrap();
        let want = record(&topic, base_ts, i);
        assert_eq!(
            (r.partition, r.offset),
            placed[i],
            "record {i} where delivery said"
        );
        assert_eq!(r.key, want.key);
        assert_eq!(r.value, want.value);
        assert_eq!(r.headers, want.headers);
        assert_eq!(r.timestamp, want.timestamp.unwrap());
    }
}

/// acks=0 and acks=1 deliver too (offsets are unknown with acks=0), and a
/// consumer can start at an offset, at a timestamp, or at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_and_start_positions() {
    use skotch::client::{Acks, TopicPartition};
    let client = common::client().await;
    let topic = common::create_topic(&client, "acks", 1).await;
    let base_ts = now_ms();
    for (acks, base) in [(Acks::Leader, 0), (Acks::None, 10)] {
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                acks,
                ..Default::default()
            },
        )
        .unwrap();
        let mut ds = Vec::new();
        for i in base..base + 10 {
            let mut r = ProducerRecord::new(&topic, format!("v{i}"));
            r.timestamp = Some(base_ts + i);
            ds.push(producer.send(r).await.unwrap());
        }
        producer.flush().await.unwrap();
        for (n, d) in ds.into_iter().enumerate() {
            let md = d.await.unwrap();
            let want = if acks == Acks::None {
                -1
            } else {
                base + n as i64
            };
            assert_eq!(md.offset, want);
        }
    }
    let tp = TopicPartition::new(&topic, 0);
    let read_from = |start: Offset| {
        let client = client.clone();
        let tp = tp.clone();
        async move {
            let mut c = Consumer::new(client, ConsumerConfig::default());
            c.assign(tp.clone(), start);
            let mut values = Vec::new();
            while !c.at_end() {
                for r in c.poll().await.unwrap().records {
                    values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                }
            }
            values
        }
    };
    // acks=0 returns once the request is written, before the broker has
    // appended it: wait until all 20 records are visible.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read_from_earliest_count(&client, &tp).await < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "acks=0 records never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(read_from(Offset::At(17)).await, ["v17", "v18", "v19"]);
    assert_eq!(read_from(Offset::At(-2)).await, ["v18", "v19"]);
    assert_eq!(read_from(Offset::Timestamp(base_ts + 15)).await.len(), 5);
    assert!(read_from(Offset::Latest).await.is_empty());
    assert_eq!(read_from(Offset::Earliest).await.len(), 20);
}

/// How many records a partition holds right now (its high watermark).
async fn read_from_earliest_count(
    client: &skotch::client::Client,
    tp: &skotch::client::TopicPartition,
) -> i64 {
    let mut c = Consumer::new(client.clone(), ConsumerConfig::default());
    c.assign(tp.clone(), Offset::Earliest);
    while !c.at_end() {
        c.poll().await.unwrap();
    }
    c.high_watermark(tp).unwrap_or(0)
}
