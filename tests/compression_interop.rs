//! Compression interop, both directions, per codec (none, gzip, snappy,
//! lz4, zstd), with two independent clients: the Java client (kafka-clients
//! from the broker's Maven download, tests/java) and librdkafka (Python's
//! confluent-kafka from PyPI, tests/python).
//!
//! For every peer and codec:
//! - the peer produces with the codec and skotch's Consumer reads every
//!   record byte-identical (key, value, headers in order with duplicates,
//!   timestamp);
//! - skotch's Producer compresses with the codec and the peer's consumer
//!   reads every record byte-identical. The records are binary, with null
//!   and empty keys, values and header values, and values of 200 KB so a
//!   batch holds far more than lz4's 64 KB block (multi-block frames) and
//!   xerial snappy's 32 KB chunks;
//! - in both directions the batches are fetched raw to check that the codec
//!   really was used: the broker keeps the producer's batches as they are
//!   when the topic's `compression.type` is `producer` (the default).
//!
//! Needs the broker (scripts/kafka start), a JDK and python3 with pip and
//! PyPI access (tests/java/build.sh and scripts/python-env prepare the
//! peers on first use).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use skotch::client::{
    Client, Compression, Consumer, ConsumerConfig, Header, Offset, Producer, ProducerConfig,
    ProducerRecord,
};
use skotch::protocol::record::TimestampType;

/// Records the peers produce; 3 partitions.
const FROM_PEER: usize = 2000;
/// Records skotch produces to the peers.
const TO_PEER: usize = 600;
const PARTITIONS: i32 = 3;
/// Values this large make one record span several lz4 blocks (64 KB) and
/// xerial snappy chunks (32 KB).
const LARGE: usize = 200 * 1024;
/// A long key prefix makes the peers' batches big (librdkafka puts a whole
/// partition's records in one batch): well over one lz4 block.
const KEY_PREFIX: &str =
    "key-with-a-long-prefix-so-that-a-partition's-batch-holds-more-than-64-KB-of-records-\
     when-each-of-them-is-a-little-larger-than-128-bytes-";

#[derive(Debug, Clone, Copy)]
enum Peer {
    Java,
    Rdkafka,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Java => "java",
            Peer::Rdkafka => "rdkafka",
        }
    }

    /// Run the peer's producer (same CLI for both, see
    /// tests/java/JavaProducer.java), with batches allowed to grow past
    /// 64 KB: a larger `batch.size` than Java's 16 KB default, and a linger
    /// longer than any send loop (on a loaded machine a short one cuts
    /// batches early). Both producers' final flush sends at once, ignoring
    /// the linger, so it costs no time.
    fn produce(self, args: &[&str]) -> Vec<String> {
        match self {
            Peer::Java => {
                let dir = common::TempDir::new("java-producer-props");
                let props = dir.0.join("producer.properties");
                std::fs::write(&props, "batch.size=262144\nlinger.ms=10000\n").expect("props");
                common::java_with_props("JavaProducer", args, Some(&props))
            }
            Peer::Rdkafka => {
                let mut args = args.to_vec();
                args.extend(["--linger-ms", "10000"]);
                common::rdkafka("rdkafka_producer.py", &args)
            }
        }
    }

    /// Run the peer's consumer (same CLI and output for both, see
    /// tests/java/JavaConsumer.java).
    fn consume(self, args: &[&str]) -> Vec<String> {
        match self {
            Peer::Java => common::java("JavaConsumer", args),
            Peer::Rdkafka => common::rdkafka("rdkafka_consumer.py", args),
        }
    }
}

/// Run a blocking peer program off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("peer task")
}

fn headers_of(v: &Value) -> Vec<(String, Option<Vec<u8>>)> {
    v.as_array()
        .expect("headers array")
        .iter()
        .map(|h| {
            (
                h[0].as_str().expect("header key").to_string(),
                common::b64(&h[1]),
            )
        })
        .collect()
}

fn headers_as_pairs(headers: &[Header]) -> Vec<(String, Option<Vec<u8>>)> {
    headers
        .iter()
        .map(|h| (h.key.to_string(), h.value.as_ref().map(|v| v.to_vec())))
        .collect()
}

/// Every batch of `topic` carries `codec` in its attributes and together
/// they hold `count` records. Returns the largest batch's payload bytes.
async fn assert_codec(client: &Client, topic: &str, codec: Compression, count: usize) -> usize {
    let batches = common::raw_batches(client, topic).await;
    for b in &batches {
        assert_eq!(b.codec, Some(codec), "batch codec in {topic}: {b:?}");
    }
    assert_eq!(batches.iter().map(|b| b.records).sum::<usize>(), count);
    batches.iter().map(|b| b.payload).max().unwrap_or(0)
}

/// The peer produces with `codec`; skotch's Consumer reads it all.
async fn peer_to_skotch(client: Client, peer: Peer, codec: Compression) {
    let topic = common::create_topic(
        &client,
        &format!("{}-{}-to-skotch", peer.name(), codec.name()),
        PARTITIONS,
    )
    .await;
    let args: Vec<String> = vec![
        common::bootstrap(),
        topic.clone(),
        FROM_PEER.to_string(),
        "--key-prefix".into(),
        KEY_PREFIX.into(),
        "--null-every".into(),
        "7".into(),
        "--headers".into(),
        "--compression".into(),
        codec.name().into(),
    ];
    let produced = common::json_lines(
        &blocking(move || peer.produce(&args.iter().map(String::as_str).collect::<Vec<_>>())).await,
    );
    assert_eq!(produced.len(), FROM_PEER);

    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(&topic, Offset::Earliest)
        .await
        .expect("assign");
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(consumer.at_end() && got.len() >= FROM_PEER) {
        assert!(Instant::now() < deadline, "timed out with {}", got.len());
        for r in consumer.poll().await.expect("poll").records {
            assert!(got.insert((r.partition, r.offset), r).is_none());
        }
    }
    assert_eq!(got.len(), FROM_PEER);
    for p in &produced {
        let i = p["i"].as_u64().expect("i");
        let at = (
            p["partition"].as_i64().expect("partition") as i32,
            p["offset"].as_i64().expect("offset"),
        );
        let r = got
            .get(&at)
            .unwrap_or_else(|| panic!("record {i} at {at:?} missing"));
        let what = format!("{} {} record {i}", peer.name(), codec.name());
        assert_eq!(
            r.key.as_deref(),
            p["key"].as_str().map(str::as_bytes),
            "{what}"
        );
        assert_eq!(
            r.value.as_deref(),
            p["value"].as_str().map(str::as_bytes),
            "{what}"
        );
        assert_eq!(r.timestamp, p["timestamp"].as_i64().expect("ts"), "{what}");
        assert_eq!(r.timestamp_type, TimestampType::CreateTime, "{what}");
        assert_eq!(
            r.headers,
            vec![
                Header::new("h", "a"),
                Header::new("h", "b"),
                Header::new("n", i.to_string())
            ],
            "{what}"
        );
    }
    let largest = assert_codec(&client, &topic, codec, FROM_PEER).await;
    assert!(
        largest > 64 * 1024,
        "some batch must span more than one lz4 block: {largest}"
    );
    eprintln!(
        "{} -> skotch, {}: {FROM_PEER} records, largest batch {largest} payload bytes",
        peer.name(),
        codec.name()
    );
}

/// Bytes that compress (words from a small vocabulary).
fn text(rng: &mut StdRng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "kafka ",
        "record ",
        "batch ",
        "skotch ",
        "offset ",
        "lz4 ",
        "zstd ",
        "gzip ",
        "snappy ",
        "header ",
        "\u{e9}t\u{e9} ",
        "\0\x01\x02 ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
    }
    out.truncate(len);
    out
}

/// Bytes that do not compress (lz4 stores such blocks uncompressed).
fn noise(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out[..]);
    out
}

/// skotch's records for the peer: deterministic per codec, binary, with
/// every kind of null and empty field, duplicate and null headers, and some
/// 200 KB values; a few carry explicit timestamps older than the batch's
/// first record (negative timestamp deltas).
fn skotch_records(topic: &str, codec: Compression) -> Vec<ProducerRecord> {
    let mut rng = StdRng::seed_from_u64(0x5c07c4 + codec.id() as u64);
    (0..TO_PEER)
        .map(|i| {
            let key = match i % 11 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some(text(&mut rng, 30)),
                _ => {
                    let len = rng.random_range(1..40);
                    Some(noise(&mut rng, len))
                }
            };
            let value = match i % 13 {
                0 => None,
                1 => Some(Vec::new()),
                _ if i % 150 == 20 => Some(text(&mut rng, LARGE)),
                _ if i % 300 == 77 => Some(noise(&mut rng, LARGE)),
                _ if i % 2 == 0 => {
                    let len = rng.random_range(1..3000);
                    Some(text(&mut rng, len))
                }
                _ => {
                    let len = rng.random_range(1..500);
                    Some(noise(&mut rng, len))
                }
            };
            let mut headers = Vec::new();
            if i % 6 != 0 {
                let a = noise(&mut rng, 4);
                headers.push(Header::new("h", a));
                headers.push(Header::new("h", text(&mut rng, 10)));
                headers.push(Header::new("n", i.to_string()));
                if i % 4 == 1 {
                    headers.push(Header::null("null"));
                }
                if i % 5 == 2 {
                    headers.push(Header::new("", Bytes::new()));
                    headers.push(Header::new("kl\u{fc}\u{10d} \u{2603}", "utf-8 key"));
                }
            }
            ProducerRecord {
                topic: topic.to_string(),
                key: key.map(Bytes::from),
                value: value.map(Bytes::from),
                headers,
                timestamp: (i % 17 == 3).then_some(1_600_000_000_000 + i as i64),
                ..Default::default()
            }
        })
        .collect()
}

/// skotch produces with `codec`; the peer's consumer reads it all.
async fn skotch_to_peer(client: Client, peer: Peer, codec: Compression) {
    let topic = common::create_topic(
        &client,
        &format!("skotch-{}-to-{}", codec.name(), peer.name()),
        PARTITIONS,
    )
    .await;
    let config = ProducerConfig {
        compression: codec,
        // Batches of many records, several lz4 blocks each, with records
        // straddling the block boundaries.
        batch_size: 256 * 1024,
        linger: Duration::from_millis(20),
        ..Default::default()
    };
    let producer = Producer::new(client.clone(), config).unwrap();
    let records = skotch_records(&topic, codec);
    let mut deliveries = Vec::with_capacity(records.len());
    for r in records.iter().cloned() {
        deliveries.push(producer.send(r).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    let mut sent = HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let md = d.await.expect("delivered");
        sent.insert((md.partition, md.offset), (i, md.timestamp));
    }

    let args: Vec<String> = vec![
        common::bootstrap(),
        topic.clone(),
        TO_PEER.to_string(),
        "--timeout-ms".into(),
        "60000".into(),
    ];
    let read = common::json_lines(
        &blocking(move || peer.consume(&args.iter().map(String::as_str).collect::<Vec<_>>())).await,
    );
    assert_eq!(read.len(), TO_PEER);
    let mut seen = vec![false; TO_PEER];
    for r in &read {
        let at = (
            r["partition"].as_i64().expect("partition") as i32,
            r["offset"].as_i64().expect("offset"),
        );
        let &(i, timestamp) = sent
            .get(&at)
            .unwrap_or_else(|| panic!("{} read an unknown record at {at:?}", peer.name()));
        assert!(!seen[i], "record {i} read twice");
        seen[i] = true;
        let want = &records[i];
        let what = format!("skotch {} -> {} record {i}", codec.name(), peer.name());
        assert_eq!(
            common::b64(&r["key"]),
            want.key.as_ref().map(|k| k.to_vec()),
            "{what}"
        );
        assert_eq!(
            common::b64(&r["value"]),
            want.value.as_ref().map(|v| v.to_vec()),
            "{what}"
        );
        assert_eq!(
            headers_of(&r["headers"]),
            headers_as_pairs(&want.headers),
            "{what}"
        );
        assert_eq!(r["timestamp"].as_i64(), Some(timestamp), "{what}");
        if let Some(ts) = want.timestamp {
            assert_eq!(timestamp, ts, "{what}");
        }
        assert_eq!(r["timestampType"], "CreateTime", "{what}");
    }
    let largest = assert_codec(&client, &topic, codec, TO_PEER).await;
    assert!(
        largest > 64 * 1024,
        "some batch must span more than one lz4 block: {largest}"
    );
    eprintln!(
        "skotch -> {}, {}: {TO_PEER} records, largest batch {largest} payload bytes",
        peer.name(),
        codec.name()
    );
}

/// Both directions at once (the peers' start-up dominates).
async fn interop(peer: Peer, codec: Compression) {
    let client = common::client().await;
    tokio::join!(
        peer_to_skotch(client.clone(), peer, codec),
        skotch_to_peer(client.clone(), peer, codec),
    );
    client.close();
}

macro_rules! interop_tests {
    ($($name:ident: $peer:expr, $codec:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                interop($peer, $codec).await;
            }
        )*
    };
}

interop_tests! {
    java_none: Peer::Java, Compression::None;
    java_gzip: Peer::Java, Compression::Gzip;
    java_snappy: Peer::Java, Compression::Snappy;
    java_lz4: Peer::Java, Compression::Lz4;
    java_zstd: Peer::Java, Compression::Zstd;
    rdkafka_none: Peer::Rdkafka, Compression::None;
    rdkafka_gzip: Peer::Rdkafka, Compression::Gzip;
    rdkafka_snappy: Peer::Rdkafka, Compression::Snappy;
    rdkafka_lz4: Peer::Rdkafka, Compression::Lz4;
    rdkafka_zstd: Peer::Rdkafka, Compression::Zstd;
}
