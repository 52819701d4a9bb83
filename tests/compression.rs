//! skotch's producer and consumer with every `compression.type` against
//! the real broker: records come back byte-identical, the broker keeps the
//! codec (topic `compression.type=producer`, the default), a bad level is
//! a clear error, and a batch inflating past the consumer's fetch limit is
//! an error, not an allocation. Interop with other clients per codec is in
//! `compression_interop.rs`.

mod common;

use bytes::Bytes;
use skotch::client::{
    Compression, Consumer, ConsumerConfig, Error, Header, Offset, Producer, ProducerConfig,
    ProducerRecord,
};

const COUNT: usize = 2_000;

fn record(topic: &str, i: usize) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_string(),
        partition: None,
        key: (!i.is_multiple_of(11)).then(|| Bytes::from(format!("key-{}", i % 100))),
        // Compressible text, some nulls, and now and then 100 KB, so lz4
        // frames span several 64 KB blocks and snappy several chunks.
        value: match i % 13 {
            0 => None,
            5 => Some(Bytes::from(format!("{i}-").repeat(25_000))),
            _ => Some(Bytes::from(format!("value-{i}-{}", "abc".repeat(i % 40)))),
        },
        headers: vec![
            Header::new("h", "a"),
            Header::new("h", "b"),
            Header::new("n", i.to_string()),
        ],
        timestamp: None,
    }
}

async fn produce(client: &skotch::client::Client, topic: &str, config: ProducerConfig) {
    let producer = Producer::new(client.clone(), config).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..COUNT {
        deliveries.push(producer.send(record(topic, i)).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for d in deliveries {
        d.await.expect("delivered");
    }
}

/// Every record of `topic`, ordered by the "n" header.
async fn consume(
    client: &skotch::client::Client,
    topic: &str,
) -> Vec<skotch::client::ConsumerRecord> {
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(topic, Offset::Earliest)
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(consumer.at_end() && got.len() >= COUNT) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out with {}",
            got.len()
        );
        got.extend(consumer.poll().await.unwrap().records);
    }
    got.sort_by_key(n_of);
    got
}

fn n_of(r: &skotch::client::ConsumerRecord) -> usize {
    std::str::from_utf8(r.headers[2].value.as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips() {
    common::init_logging();
    let client = common::client().await;
    for (codec, level) in [
        (Compression::None, None),
        (Compression::Gzip, None),
        (Compression::Gzip, Some(1)),
        (Compression::Snappy, None),
        (Compression::Lz4, Some(17)),
        (Compression::Zstd, None),
        (Compression::Zstd, Some(22)),
    ] {
        let topic = common::create_topic(&client, &format!("codec-{codec}"), 3).await;
        let config = ProducerConfig {
            compression: codec,
            compression_level: level,
            ..Default::default()
        };
        produce(&client, &topic, config).await;
        let got = consume(&client, &topic).await;
        assert_eq!(got.len(), COUNT, "{codec}");
        for (i, r) in got.iter().enumerate() {
            let want = record(&topic, i);
            assert_eq!(n_of(r), i, "{codec}");
            assert_eq!(r.key, want.key, "{codec} {i}");
            assert_eq!(r.value, want.value, "{codec} {i}");
            assert_eq!(r.headers, want.headers, "{codec} {i}");
        }
        let seen = common::batch_codecs(&client, &topic).await;
        assert_eq!(seen, vec![codec], "codec of the stored batches");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_levels_are_config_errors() {
    let client = common::client().await;
    // Refused when the producer is built, before any topic is involved.
    for (codec, level) in [
        (Compression::Gzip, 10),
        (Compression::Lz4, 0),
        (Compression::Zstd, 23),
        (Compression::Snappy, 1),
    ] {
        let Err(e) = Producer::new(
            client.clone(),
            ProducerConfig {
                compression: codec,
                compression_level: Some(level),
                ..Default::default()
            },
        ) else {
            panic!("{codec} level {level} accepted");
        };
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains(&level.to_string()), "{e}");
    }
}

/// A gzip batch of 2 MB of zeros is a few KB on the wire; a consumer whose
/// fetch.max.bytes is 1 MB refuses to inflate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflating_past_the_fetch_limit_is_an_error() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "codec-bomb", 1).await;
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            compression: Compression::Gzip,
            batch_size: 4 << 20,
            max_request_size: 4 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let d = producer
        .send(ProducerRecord::new(topic.clone(), vec![0u8; 2 << 20]))
        .await
        .unwrap();
    producer.flush().await.unwrap();
    d.await.unwrap();

    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            fetch_max_bytes: 1 << 20,
            max_partition_fetch_bytes: 1 << 20,
            ..Default::default()
        },
    );
    consumer
        .assign_topic(&topic, Offset::Earliest)
        .await
        .unwrap();
    let e = loop {
        match consumer.poll().await {
            Ok(p) => assert!(p.records.is_empty()),
            Err(e) => break e,
        }
    };
    assert!(
        e.to_string()
            .contains("more than the limit of 1048576 bytes"),
        "{e}"
    );
    // With the default limit (50 MiB) it reads.
    let got = {
        let mut c = Consumer::new(client.clone(), ConsumerConfig::default());
        c.assign_topic(&topic, Offset::Earliest).await.unwrap();
        let mut got = Vec::new();
        while got.is_empty() {
            got.extend(c.poll().await.unwrap().records);
        }
        got
    };
    assert_eq!(got[0].value.as_ref().map(|v| v.len()), Some(2 << 20));
}

/// Fetches of mostly large compressed batches (here ~1 MiB of
/// incompressible lz4 and zstd data per fetch) are decoded on a blocking
/// thread before `poll` sees them; the records come back whole and in
/// order on a single-threaded runtime too (where a blocking decode on the
/// one worker would show as a stall, not an error).
#[tokio::test]
async fn large_compressed_fetches_round_trip() {
    fn value(i: u64) -> Bytes {
        // xorshift: incompressible bytes that the reader can regenerate.
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v = Vec::with_capacity(400);
        while v.len() < 400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        Bytes::from(v)
    }
    let client = common::client().await;
    for compression in [Compression::Lz4, Compression::Zstd] {
        let topic = common::create_topic(&client, "bigcompressed", 1).await;
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                compression,
                batch_size: 256 * 1024,
                ..Default::default()
            },
        )
        .unwrap();
        let n = 15_000u64;
        let mut acks = Vec::new();
        for i in 0..n {
            let mut r = ProducerRecord::new(&topic, value(i));
            r.partition = Some(0);
            acks.push(producer.send(r).await.unwrap());
        }
        for a in acks {
            a.await.unwrap();
        }
        producer.close().await.unwrap();
        let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
        consumer
            .assign_topic(&topic, Offset::Earliest)
            .await
            .unwrap();
        let mut next = 0u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while next < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{compression:?}: read {next}"
            );
            for r in consumer.poll().await.unwrap().records {
                assert_eq!(r.offset as u64, next);
                assert_eq!(
                    r.value.as_ref(),
                    Some(&value(next)),
                    "{compression:?} offset {next}"
                );
                next += 1;
            }
        }
    }
}
