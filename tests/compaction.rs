//! A compacted topic against the real broker: after the log cleaner has
//! removed superseded records, offsets have gaps inside batches and between
//! them, and skotch's consumer still reads to the high watermark, moving
//! its position by each batch's `last_offset_delta` rather than by counting
//! records. Compressed (lz4) batches are compacted too: the cleaner
//! recompresses what survives.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch::client::{
    Admin, Compression, Consumer, ConsumerConfig, NewTopic, Offset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

const KEYS: usize = 20;

/// Write every key, or only the even ones.
async fn write_round(producer: &Producer, topic: &str, round: usize, step: usize) {
    let mut ds = Vec::new();
    for k in (0..KEYS).step_by(step) {
        let rec = ProducerRecord {
            topic: topic.to_string(),
            partition: Some(0),
            key: Some(Bytes::from(format!("k{k}"))),
            value: Some(Bytes::from(format!("r{round}-k{k}"))),
            ..Default::default()
        };
        ds.push(producer.send(rec).await.unwrap());
    }
    producer.flush().await.unwrap();
    for d in ds {
        d.await.unwrap();
    }
}

/// (offset, value) of every record, and the position reached.
async fn read_all(client: &skotch::client::Client, topic: &str) -> (Vec<(i64, String)>, i64) {
    let mut c = Consumer::new(client.clone(), ConsumerConfig::default());
    // Small fetches, so positions come from batch headers many times over.
    c.assign(TopicPartition::new(topic.to_string(), 0), Offset::Earliest);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.at_end() {
        assert!(Instant::now() < deadline, "timed out");
        for r in c.poll().await.unwrap().records {
            got.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    let tp = TopicPartition::new(topic.to_string(), 0);
    (got, c.position(&tp).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_offsets_with_gaps_are_read_to_the_end() {
    let client = common::client().await;
    let topic = common::unique_topic("compacted");
    let mut nt = NewTopic::new(&topic, 1, 1);
    // Roll segments after 500 ms and clean as soon as anything is dirty.
    // The cleaner looks every log.cleaner.backoff.ms (15 s by default).
    nt.configs = [
        ("cleanup.policy", "compact"),
        ("segment.ms", "500"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("min.compaction.lag.ms", "0"),
        ("delete.retention.ms", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Admin::new(client.clone())
        .create_topic(nt, false)
        .await
        .unwrap();

    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            compression: Compression::Lz4,
            ..Default::default()
        },
    )
    .unwrap();
    // Rounds in separate segments; round 3 has only the even keys. The
    // cleaner neither cleans nor learns keys from the active segment, so a
    // last record of another key rolls round 3 out of it. Then rounds 0
    // and 1 go, and round 2 keeps its odd keys: a batch with holes.
    for round in 0..3 {
        write_round(&producer, &topic, round, 1).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    write_round(&producer, &topic, 3, 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let last = ProducerRecord {
        topic: topic.clone(),
        partition: Some(0),
        key: Some(Bytes::from_static(b"z")),
        value: Some(Bytes::from_static(b"r4-z")),
        ..Default::default()
    };
    producer.send(last).await.unwrap().await.unwrap();
    let total = 3 * KEYS as i64 + KEYS as i64 / 2 + 1;

    // Wait for the cleaner to have cleaned everything but the active
    // segment: one record per key. (It may take two passes, 15 s apart.)
    let deadline = Instant::now() + Duration::from_secs(90);
    let (records, position) = loop {
        let (records, position) = read_all(&client, &topic).await;
        assert_eq!(position, total, "position ends at the high watermark");
        if records.len() == KEYS + 1 {
            break (records, position);
        }
        assert!(Instant::now() < deadline, "the log cleaner never ran");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(position, total);
    // Offsets go up with gaps; each key's last value is its latest.
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(records[0].0 > 0, "the first rounds were removed");
    assert!(records.windows(2).any(|w| w[1].0 > w[0].0 + 1), "no gap");
    let mut last: HashMap<String, String> = HashMap::new();
    for (_, v) in &records {
        let key = v.split('-').nth(1).unwrap().to_string();
        last.insert(key, v.clone());
    }
    assert_eq!(last.len(), KEYS + 1);
    for (k, v) in last.iter().filter(|(k, _)| *k != "z") {
        let n: usize = k[1..].parse().unwrap();
        let want = if n.is_multiple_of(2) { "r3-" } else { "r2-" };
        assert!(v.starts_with(want), "{k}: {v}");
    }

    // A consumer starting inside a removed range moves on to the next
    // record that survives.
    let first_gap = records
        .windows(2)
        .find(|w| w[1].0 > w[0].0 + 1)
        .map(|w| (w[0].0 + 1, w[1].0))
        .unwrap();
    let mut c = Consumer::new(client.clone(), ConsumerConfig::default());
    c.assign(
        TopicPartition::new(topic.clone(), 0),
        Offset::At(first_gap.0),
    );
    let mut first = None;
    while first.is_none() {
        first = c.poll().await.unwrap().records.first().map(|r| r.offset);
    }
    assert_eq!(first, Some(first_gap.1));
}
