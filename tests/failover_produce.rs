//! The producer while brokers fail, on the 3-node cluster of
//! `scripts/cluster` (SKOTCH_CLUSTER_BOOTSTRAP):
//!
//! - `leaders_killed_while_producing`: 300 000 keyed records (64 keys, each
//!   value carries its key's own sequence number) go to a 6-partition topic
//!   with 3 replicas while a driver SIGKILLs the leader of a partition every
//!   10 s and restarts it 5 s later. The same run goes through the
//!   idempotent producer (the default), the stream layer's writer, and a
//!   producer with idempotence off, at once. Afterwards each topic is read
//!   back: with idempotence, every acknowledged record is there exactly
//!   once and every key's sequence numbers are in order; without it, the
//!   duplicates and reorderings are reported, not asserted.
//! - `frozen_leader_while_producing`: the leader of one partition is
//!   SIGSTOPped for 40 s. Partitions led by the other brokers keep being
//!   acknowledged; the frozen leader's partitions resume once the
//!   controller moves them or the broker wakes; nothing is lost,
//!   duplicated or reordered.
//!
//! Every delivery error the producers report is printed and accounted for.
//! The tests take turns on the one cluster and stop by themselves.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{self, cluster_client, create_topic, Chaos};
use futures::stream::{FuturesUnordered, StreamExt};
use skotch::client::{
    Client, ClientConfig, Consumer, ConsumerConfig, DeliveryCallback, DeliveryFuture, Offset,
    Producer, ProducerConfig, ProducerRecord,
};

const PARTITIONS: i32 = 6;
const KEYS: u64 = 64;

/// One test at a time breaks the cluster.
fn exclusive() -> MutexGuard<'static, ()> {
    static CLUSTER: Mutex<()> = Mutex::new(());
    CLUSTER.lock().unwrap_or_else(|p| p.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A producer client with the Java client's defaults.
async fn producer_client() -> Client {
    Client::connect(ClientConfig::new(&cluster::cluster_bootstrap()).unwrap())
        .await
        .expect("cluster client")
}

/// Record `i` of a run: key `i % 64`, value "key:seq:i" where seq counts
/// the key's own records.
fn key_value(i: u64) -> (Bytes, Bytes) {
    let key = i % KEYS;
    let seq = i / KEYS;
    (
        Bytes::from(format!("k{key}")),
        Bytes::from(format!("{key}:{seq}:{i}")),
    )
}

fn parse(value: &[u8]) -> (u64, u64) {
    let s = std::str::from_utf8(value).expect("utf-8 value");
    let mut it = s.split(':');
    let key = it.next().unwrap().parse().unwrap();
    let seq = it.next().unwrap().parse().unwrap();
    (key, seq)
}

/// What a producer run saw: records acknowledged, and the errors of those
/// that failed.
#[derive(Default)]
struct Sent {
    acked: Vec<u64>,
    failed: Vec<(u64, String)>,
}

/// Send `count` records at about `rate` per second through `send` (never
/// waiting for an answer, so a stuck partition does not hold back the
/// others), and collect their fates.
async fn produce_paced<F, Fut>(count: u64, rate: u64, mut send: F) -> Sent
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = skotch::client::Result<DeliveryFuture>>,
{
    let start = Instant::now();
    let mut sent = Sent::default();
    let mut pending = FuturesUnordered::new();
    let settle = |sent: &mut Sent, (i, r): (u64, skotch::client::Result<_>)| match r {
        Ok(_) => sent.acked.push(i),
        Err(e) => sent.failed.push((i, format!("{e}"))),
    };
    for i in 0..count {
        if i % 500 == 0 {
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        match send(i).await {
            Ok(f) => pending.push(async move { (i, f.await) }),
            Err(e) => sent.failed.push((i, format!("send: {e}"))),
        }
        while let Some(Some(done)) = futures::FutureExt::now_or_never(pending.next()) {
            settle(&mut sent, done);
        }
    }
    while let Some(done) = pending.next().await {
        settle(&mut sent, done);
    }
    sent
}

/// Every record of `topic`, as (key, seq, i) in offset order per
/// partition.
async fn read_all(client: &Client, topic: &str) -> BTreeMap<i32, Vec<(u64, u64)>> {
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(topic, Offset::Earliest)
        .await
        .expect("assign");
    let mut out: BTreeMap<i32, Vec<(u64, u64)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let poll = consumer.poll().await.expect("poll");
        for r in poll.records {
            let v = r.value.as_deref().expect("value");
            out.entry(r.partition).or_default().push(parse(v));
        }
        if consumer.at_end() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: reading back took over 90 s"
        );
    }
}

/// What the log holds compared with what was acknowledged.
#[derive(Debug, Default)]
struct Check {
    records: usize,
    /// Acknowledged records not in the log.
    lost: usize,
    /// Records in the log more than once (extra copies).
    duplicates: usize,
    /// Times a key's sequence went backwards (not counting duplicates).
    reordered: usize,
    /// Failed records that are in the log anyway.
    failed_but_written: usize,
}

fn check(log: &BTreeMap<i32, Vec<(u64, u64)>>, sent: &Sent) -> Check {
    let mut c = Check::default();
    let mut seen: HashMap<(u64, u64), usize> = HashMap::new();
    let mut last: HashMap<u64, u64> = HashMap::new();
    for recs in log.values() {
        for &(key, seq) in recs {
            c.records += 1;
            *seen.entry((key, seq)).or_default() += 1;
            if let Some(prev) = last.get(&key) {
                if seq <= *prev && seen[&(key, seq)] == 1 {
                    c.reordered += 1;
                }
            }
            let e = last.entry(key).or_insert(seq);
            *e = (*e).max(seq);
        }
    }
    c.duplicates = seen.values().map(|n| n - 1).sum();
    for &i in &sent.acked {
        if !seen.contains_key(&(i % KEYS, i / KEYS)) {
            c.lost += 1;
        }
    }
    for (i, _) in &sent.failed {
        if seen.contains_key(&(i % KEYS, i / KEYS)) {
            c.failed_but_written += 1;
        }
    }
    c
}

/// Print the errors, grouped, so each one is accounted for.
fn report(name: &str, sent: &Sent, c: &Check) {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, e) in &sent.failed {
        // Group by the message without topic names.
        let kind: String = e
            .split(" to ")
            .next()
            .unwrap_or(e)
            .chars()
            .take(120)
            .collect();
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!(
        "{name}: {} acknowledged, {} failed, {} in the log; lost {}, duplicates {}, \
         reordered {}, failed but written {}",
        sent.acked.len(),
        sent.failed.len(),
        c.records,
        c.lost,
        c.duplicates,
        c.reordered,
        c.failed_but_written
    );
    for (k, n) in kinds {
        eprintln!("{name}:   {n} x {k}");
    }
}

fn assert_exactly_once_in_order(name: &str, sent: &Sent, c: &Check) {
    assert_eq!(c.lost, 0, "{name}: acknowledged records missing");
    assert_eq!(c.duplicates, 0, "{name}: records written twice");
    assert_eq!(c.reordered, 0, "{name}: a key's records out of order");
    assert_eq!(
        c.records,
        sent.acked.len() + c.failed_but_written,
        "{name}: the log holds records nobody sent"
    );
}

#[test]
fn leaders_killed_while_producing() {
    let _g = exclusive();
    cluster::ensure_all_running();
    runtime().block_on(async {
        let admin_client = cluster_client().await;
        let idem_topic = create_topic(&admin_client, "failover-idem", PARTITIONS).await;
        let plain_topic = create_topic(&admin_client, "failover-plain", PARTITIONS).await;
        let stream_topic = create_topic(&admin_client, "failover-stream", PARTITIONS).await;
        const COUNT: u64 = 300_000;
        // 60 s of producing, during which 6 leaders are killed.
        const RATE: u64 = 5_000;

        let idem =
            Arc::new(Producer::new(producer_client().await, ProducerConfig::default()).unwrap());
        assert!(idem.is_idempotent());
        let plain = Arc::new(
            Producer::new(
                producer_client().await,
                ProducerConfig {
                    enable_idempotence: Some(false),
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        assert!(!plain.is_idempotent());
        let url = format!("kafka://{}/{stream_topic}", cluster::cluster_bootstrap());
        let mut writer = skotch::stream::open_writer(&url)
            .await
            .expect("stream writer");

        let chaos = Chaos::kill_leaders(
            &idem_topic,
            PARTITIONS,
            Duration::from_secs(10),
            Duration::from_secs(5),
            Duration::from_secs(55),
        );

        let t = idem_topic.clone();
        let p = idem.clone();
        let idem_run = tokio::spawn(async move {
            produce_paced(COUNT, RATE, |i| {
                let (k, v) = key_value(i);
                let p = p.clone();
                let t = t.clone();
                async move { p.send(ProducerRecord::new(t, v).key(k)).await }
            })
            .await
        });
        let t = plain_topic.clone();
        let p = plain.clone();
        let plain_run = tokio::spawn(async move {
            produce_paced(COUNT, RATE, |i| {
                let (k, v) = key_value(i);
                let p = p.clone();
                let t = t.clone();
                async move { p.send(ProducerRecord::new(t, v).key(k)).await }
            })
            .await
        });
        // The stream writer: hop's interface, one write at a time; its
        // errors surface at flush.
        let stream_run = tokio::spawn(async move {
            let start = Instant::now();
            let mut failed = Vec::new();
            for i in 0..COUNT / 3 {
                if i % 500 == 0 {
                    let due = start + Duration::from_micros(i * 3 * 1_000_000 / RATE);
                    tokio::time::sleep_until(due.into()).await;
                }
                let (k, v) = key_value(i);
                let opts = skotch::stream::WriteOptions {
                    key: Some(k),
                    ..Default::default()
                };
                if let Err(e) = writer
                    .write_with(skotch::stream::Message::Blob(v), opts)
                    .await
                {
                    failed.push((i, format!("write: {e}")));
                }
            }
            let flushed = writer.close().await;
            (failed, flushed)
        });

        let idem_sent = idem_run.await.unwrap();
        let plain_sent = plain_run.await.unwrap();
        let (stream_failed, stream_flush) = stream_run.await.unwrap();
        let events = chaos.stop();
        eprintln!("chaos events:\n{}", events.join("\n"));
        let kills = events.iter().filter(|e| e.contains("kill")).count();
        assert!(kills >= 4, "too few kills happened: {events:?}");

        let reader = cluster_client().await;
        let idem_check = check(&read_all(&reader, &idem_topic).await, &idem_sent);
        report("idempotent", &idem_sent, &idem_check);
        let plain_check = check(&read_all(&reader, &plain_topic).await, &plain_sent);
        report("idempotence off", &plain_sent, &plain_check);

        // Stream: the blob values are the same "key:seq:i" strings.
        let stream_log = read_all(&reader, &stream_topic).await;
        let stream_sent = Sent {
            acked: if stream_flush.is_ok() && stream_failed.is_empty() {
                (0..COUNT / 3).collect()
            } else {
                Vec::new()
            },
            failed: stream_failed,
        };
        let stream_check = check(&stream_log, &stream_sent);
        report("stream writer", &stream_sent, &stream_check);

        assert!(
            idem_sent.failed.is_empty(),
            "the idempotent producer failed records under kills"
        );
        assert_exactly_once_in_order("idempotent", &idem_sent, &idem_check);
        stream_flush.expect("stream writer flush");
        assert_exactly_once_in_order("stream writer", &stream_sent, &stream_check);
        assert_eq!(stream_check.records as u64, COUNT / 3);
        // Without idempotence: at least once.
        assert_eq!(
            plain_check.lost, 0,
            "idempotence off: acknowledged records missing"
        );
    });
}

#[test]
fn frozen_leader_while_producing() {
    let _g = exclusive();
    cluster::ensure_all_running();
    runtime().block_on(async {
        let admin_client = cluster_client().await;
        let topic = create_topic(&admin_client, "frozen", PARTITIONS).await;
        let leaders: BTreeMap<i32, i32> = (0..PARTITIONS)
            .map(|p| (p, cluster::leader(&topic, p)))
            .collect();
        let frozen = leaders[&0];
        let others: Vec<i32> = leaders
            .iter()
            .filter(|(_, l)| **l != frozen)
            .map(|(p, _)| *p)
            .collect();
        eprintln!("leaders {leaders:?}; freezing node {frozen}; watching partitions {others:?}");
        assert!(!others.is_empty(), "all partitions led by one node: {leaders:?}");

        // When each partition's batches were acknowledged.
        let acks: Arc<Mutex<BTreeMap<i32, Vec<Instant>>>> = Arc::default();
        let a = acks.clone();
        let config = ProducerConfig {
            on_delivery: Some(DeliveryCallback::new(move |r| {
                if r.result.is_ok() {
                    a.lock()
                        .unwrap()
                        .entry(r.partition)
                        .or_default()
                        .push(Instant::now());
                }
            })),
            ..Default::default()
        };
        let producer = Arc::new(Producer::new(producer_client().await, config).unwrap());

        const COUNT: u64 = 300_000;
        const RATE: u64 = 5_000;
        let pause_at = Duration::from_secs(8);
        let paused_for = Duration::from_secs(40);
        let start = Instant::now();
        let chaos = Chaos::pause_leader(&topic, 0, pause_at, paused_for);
        let t = topic.clone();
        let p = producer.clone();
        let sent = produce_paced(COUNT, RATE, |i| {
            let (k, v) = key_value(i);
            let p = p.clone();
            let t = t.clone();
            async move { p.send(ProducerRecord::new(t, v).key(k)).await }
        })
        .await;
        let events = chaos.stop();
        eprintln!("chaos events:\n{}", events.join("\n"));

        // The longest wait between acknowledgements of a partition led by
        // another broker while the node was frozen (from the chaos log:
        // finding the leader takes a moment after `pause_at`).
        let paused_at = events
            .iter()
            .find(|e| e.contains(" pause node"))
            .and_then(|e| e.trim().split('s').next()?.parse::<f64>().ok())
            .map(Duration::from_secs_f64)
            .expect("the node was paused");
        let window = (start + paused_at, start + paused_at + paused_for);
        let acks = acks.lock().unwrap().clone();
        let mut worst = Duration::ZERO;
        for p in &others {
            let times = acks.get(p).cloned().unwrap_or_default();
            let inside: Vec<Instant> = times
                .iter()
                .copied()
                .filter(|t| *t >= window.0 && *t <= window.1)
                .collect();
            assert!(!inside.is_empty(), "partition {p} had no acks while node {frozen} was frozen");
            let mut prev = window.0;
            let mut gap = Duration::ZERO;
            for t in inside.iter().copied().chain([window.1]) {
                gap = gap.max(t.duration_since(prev));
                prev = t;
            }
            eprintln!("partition {p} (leader {}): longest gap {gap:?}", leaders[p]);
            worst = worst.max(gap);
        }
        // The frozen leader's partitions: when they resumed.
        for (p, l) in &leaders {
            if *l == frozen {
                let resumed = acks
                    .get(p)
                    .and_then(|v| v.iter().find(|t| **t > window.0 + Duration::from_millis(500)))
                    .map(|t| t.duration_since(window.0));
                eprintln!("partition {p} (frozen leader {l}): acknowledged again {resumed:?} after the freeze");
            }
        }

        let log = read_all(&cluster_client().await, &topic).await;
        let c = check(&log, &sent);
        report("frozen leader", &sent, &c);
        assert!(sent.failed.is_empty(), "records failed");
        assert_exactly_once_in_order("frozen leader", &sent, &c);
        // Acks=all waits for the frozen follower until the controller
        // fences it (broker.session.timeout.ms, 3 s here) and drops it
        // from every ISR: that stall is the broker's, the same for any
        // client. Beyond it, other brokers' partitions must not wait.
        assert!(
            worst < Duration::from_secs(5),
            "partitions led by other brokers stalled for {worst:?}"
        );
    });
}
