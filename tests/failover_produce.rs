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
//! - `frozen_leader_java_for_comparison`: the same freeze with the Java
//!   producer (tests/java/PacedProducer.java) on a fresh topic, to show
//!   that the few seconds the other brokers' partitions wait are the
//!   broker's (acks=all waits for the frozen follower until it is fenced),
//!   not skotch's; prints its longest gap next to skotch's.
//! - `long_run_many_kills` (ignored; `scripts/failover-long`): the
//!   idempotent producer alone, 1 000 000 records while 60 leaders are
//!   killed (SKOTCH_FAILOVER_RECORDS, SKOTCH_FAILOVER_KILLS), 10+ minutes;
//!   the same checks, and figures: failures grouped, kills, rate, the
//!   longest time a partition went unacknowledged, failed attempts.
//!
//! Every delivery error the producers report is printed and accounted for.
//! The tests take turns on the one cluster and stop by themselves.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{self, cluster_client, create_topic, exclusive, runtime, Chaos};
use futures::stream::{FuturesUnordered, StreamExt};
use skotch::client::{
    Client, ClientConfig, Consumer, ConsumerConfig, DeliveryCallback, DeliveryFuture, Offset,
    Producer, ProducerConfig, ProducerRecord,
};

const PARTITIONS: i32 = 6;
const KEYS: u64 = 64;

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

/// [`produce_paced`] of the keyed records of [`key_value`] to `topic`.
async fn produce_keyed(producer: Arc<Producer>, topic: String, count: u64, rate: u64) -> Sent {
    produce_paced(count, rate, |i| {
        let (k, v) = key_value(i);
        let p = producer.clone();
        let t = topic.clone();
        async move { p.send(ProducerRecord::new(t, v).key(k)).await }
    })
    .await
}

/// Every record of `topic`, as (key, seq, i) in offset order per
/// partition.
async fn read_all(client: &Client, topic: &str) -> BTreeMap<i32, Vec<(u64, u64)>> {
    read_all_within(client, topic, Duration::from_secs(90)).await
}

/// [`read_all`], failing when reading back takes longer than `limit`.
async fn read_all_within(
    client: &Client,
    topic: &str,
    limit: Duration,
) -> BTreeMap<i32, Vec<(u64, u64)>> {
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(topic, Offset::Earliest)
        .await
        .expect("assign");
    let mut out: BTreeMap<i32, Vec<(u64, u64)>> = BTreeMap::new();
    let deadline = Instant::now() + limit;
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
            "{topic}: reading back took over {} s",
            limit.as_secs()
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

/// An error message's group: the message without topic names (what
/// follows " to "), at most 120 characters.
fn error_kind(e: &str) -> String {
    e.split(" to ")
        .next()
        .unwrap_or(e)
        .chars()
        .take(120)
        .collect()
}

/// Print the errors, grouped, so each one is accounted for.
fn report(name: &str, sent: &Sent, c: &Check) {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, e) in &sent.failed {
        *kinds.entry(error_kind(e)).or_default() += 1;
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

        let idem_run = tokio::spawn(produce_keyed(idem.clone(), idem_topic.clone(), COUNT, RATE));
        let plain_run = tokio::spawn(produce_keyed(
            plain.clone(),
            plain_topic.clone(),
            COUNT,
            RATE,
        ));
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
        let kills = events.iter().filter(|e| e.contains(" kill node")).count();
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
        let sent = produce_keyed(producer.clone(), topic.clone(), COUNT, RATE).await;
        let events = chaos.stop();
        eprintln!("chaos events:\n{}", events.join("\n"));

        // The longest wait between acknowledgements of a partition led by
        // another broker while the node was frozen (from the chaos log:
        // finding the leader takes a moment after `pause_at`).
        let (paused_at, _) = cluster::pause_event(&events).expect("the node was paused");
        let window = (start + paused_at, start + paused_at + paused_for);
        let acks = acks.lock().unwrap().clone();
        let mut worst = Duration::ZERO;
        for p in &others {
            let times = acks.get(p).map(Vec::as_slice).unwrap_or_default();
            let (gap, inside) = cluster::longest_gap(
                times.iter().map(|t| t.duration_since(start)),
                (paused_at, paused_at + paused_for),
            );
            assert!(inside > 0, "partition {p} had no acks while node {frozen} was frozen");
            eprintln!("partition {p} (leader {}): longest gap {gap:?}", leaders[p]);
            worst = worst.max(gap);
        }
        compare_frozen_gaps("skotch", worst);
        // The frozen leader's partitions: when they resumed.
        let mut frozen_resumed = Duration::MAX;
        for (p, l) in &leaders {
            if *l == frozen {
                let resumed = acks
                    .get(p)
                    .and_then(|v| v.iter().find(|t| **t > window.0 + Duration::from_millis(500)))
                    .map(|t| t.duration_since(window.0));
                eprintln!("partition {p} (frozen leader {l}): acknowledged again {resumed:?} after the freeze");
                frozen_resumed = frozen_resumed.min(resumed.unwrap_or(Duration::MAX));
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
        // When the frozen node is also the active controller, fencing
        // waits for a new controller first (election and quorum fetch
        // timeouts, 1 + 2 s): seen in CI, every partition stalled 6.2 s
        // and the frozen leader's resumed at 7.2 s. Either way the same
        // controller step shrinks the ISRs and elects the new leaders, so
        // other partitions must resume before the frozen leader's do: a
        // client holding them behind the frozen broker would not.
        assert!(
            worst < Duration::from_secs(5) || worst < frozen_resumed,
            "partitions led by other brokers stalled for {worst:?}, \
             the frozen leader's resumed after {frozen_resumed:?}"
        );
    });
}

/// The longest gap each frozen-leader test saw on partitions led by the
/// other brokers; the test that finishes second prints both side by side
/// (they take turns on the cluster in either order).
fn compare_frozen_gaps(client: &'static str, gap: Duration) {
    static GAPS: Mutex<BTreeMap<&str, Duration>> = Mutex::new(BTreeMap::new());
    let mut gaps = GAPS.lock().unwrap_or_else(|p| p.into_inner());
    gaps.insert(client, gap);
    if gaps.len() > 1 {
        let line: Vec<String> = gaps
            .iter()
            .map(|(c, g)| format!("{c} {:.2} s", g.as_secs_f64()))
            .collect();
        eprintln!(
            "frozen leader, longest wait of another broker's partition while the leader \
             was frozen: {}",
            line.join(", ")
        );
    }
}

/// A child process killed (if still running) when dropped, so that a
/// failing test does not leave it producing.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The freeze of `frozen_leader_while_producing` with the Java producer
/// (tests/java/PacedProducer.java: the same records, rate and count,
/// acks=all, idempotence on) instead of skotch's, to show that the stall
/// of the other brokers' partitions while the leader is frozen is the
/// broker's: acks=all waits for the frozen follower until the controller
/// fences it (broker.session.timeout.ms, 3 s here), whoever the client.
/// Prints the Java client's longest gap next to skotch's (when both ran);
/// asserts only that the Java run completed and that its gap is at least
/// 2 s. Its records are not read back.
#[test]
fn frozen_leader_java_for_comparison() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    const COUNT: u64 = 300_000;
    const RATE: u64 = 5_000;
    let pause_at = Duration::from_secs(8);
    let paused_for = Duration::from_secs(40);
    let name = "java frozen leader";

    let _g = exclusive();
    cluster::ensure_all_running();
    let (topic, leaders) = runtime().block_on(async {
        let client = cluster_client().await;
        let topic = create_topic(&client, "frozen-java", PARTITIONS).await;
        let leaders: BTreeMap<i32, i32> = cluster::partitions(&client, &topic)
            .await
            .expect("metadata")
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect();
        (topic, leaders)
    });
    eprintln!("{name}: leaders {leaders:?}");

    let bootstrap = cluster::cluster_bootstrap();
    let (count, rate) = (COUNT.to_string(), RATE.to_string());
    let mut child = KillOnDrop(
        Command::new(common::root().join("tests/java/run.sh"))
            .args(["PacedProducer", &bootstrap, &topic, &count, &rate])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tests/java/run.sh"),
    );
    let (tx, lines) = mpsc::channel();
    let stdout = child.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.0.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // The Java program's clock starts when it prints "started"; the
    // chaos driver's when the line arrives here, a few ms later.
    let first = lines
        .recv_timeout(Duration::from_secs(120))
        .expect("PacedProducer did not start within 120 s");
    assert_eq!(first, r#"{"started":true}"#, "PacedProducer's first line");
    let start = Instant::now();
    let chaos = Chaos::pause_leader(&topic, 0, pause_at, paused_for);

    // 60 s of producing; then the frozen partitions' backlog and a flush.
    let deadline = start + Duration::from_secs(240);
    let mut out = Vec::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => out.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("PacedProducer did not finish within 240 s; output so far: {out:?}")
            }
        }
    }
    let status = child.0.wait().expect("wait for PacedProducer");
    let took = start.elapsed();
    let events = chaos.stop();
    eprintln!("chaos events:\n{}", events.join("\n"));
    let stderr = stderr.join().unwrap_or_default();
    let warnings: Vec<&str> = stderr.lines().collect();
    eprintln!("{name}: the Java client logged {} lines", warnings.len());
    for l in warnings.iter().take(40) {
        eprintln!("{name}: java: {l}");
    }
    assert!(
        status.success(),
        "PacedProducer failed ({status}):\n{stderr}"
    );

    let json = common::json_lines(&out);
    let done = json
        .iter()
        .find(|j| j["done"] == true)
        .unwrap_or_else(|| panic!("PacedProducer printed no summary: {out:?}"));
    let acked = done["acked"].as_u64().expect("acked");
    let failed = done["failed"].as_u64().expect("failed");
    eprintln!(
        "{name}: {acked} acknowledged, {failed} failed; producing and flushing took \
         {:.1} s; the program ended {:.1} s after its start line arrived",
        done["elapsed_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        took.as_secs_f64()
    );
    if let Some(errors) = done["errors"].as_object() {
        for (e, n) in errors {
            eprintln!("{name}:   {n} x {}", error_kind(e));
        }
    }
    assert_eq!(acked + failed, COUNT, "PacedProducer lost track of records");

    let acks: BTreeMap<i32, Vec<Duration>> = json
        .iter()
        .filter_map(|j| {
            let p = j["partition"].as_i64()? as i32;
            let times = j["ack_ms"]
                .as_array()?
                .iter()
                .filter_map(|t| Some(Duration::from_millis(t.as_u64()?)))
                .collect();
            Some((p, times))
        })
        .collect();
    let (paused_at, frozen) = cluster::pause_event(&events).expect("the node was paused");
    let window = (paused_at, paused_at + paused_for);
    let mut worst = Duration::ZERO;
    let mut watched = 0;
    for (p, l) in &leaders {
        let times = acks.get(p).map(Vec::as_slice).unwrap_or_default();
        if *l == frozen {
            let resumed = times
                .iter()
                .find(|t| **t > window.0 + Duration::from_millis(500))
                .map(|t| t.saturating_sub(window.0));
            eprintln!(
                "{name}: partition {p} (frozen leader {l}): acknowledged again {resumed:?} \
                 after the freeze"
            );
            continue;
        }
        let (gap, inside) = cluster::longest_gap(times.iter().copied(), window);
        eprintln!(
            "{name}: partition {p} (leader {l}): longest gap {gap:?} \
             ({inside} thinned acks in the window)"
        );
        worst = worst.max(gap);
        watched += 1;
    }
    assert!(
        watched > 0,
        "all partitions led by node {frozen}: {leaders:?}"
    );
    eprintln!(
        "{name}: longest gap of a partition led by another broker while node {frozen} \
         was frozen: {worst:?}"
    );
    compare_frozen_gaps("Java", worst);
    assert!(
        worst >= Duration::from_secs(2),
        "the Java producer's other partitions waited at most {worst:?}: the stall is not \
         the broker's alone"
    );
}

/// `name` from the environment as a positive number (`1_000_000` is
/// fine), else `default`.
fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("{name}={v:?} is not a positive number")),
        Err(_) => default,
    }
}

/// The number of nodes a [`Chaos`] driver killed, from its events
/// (`"<seconds>s kill node N (...)"`; failed kills are `error: ...`).
fn kills_done(events: &[String]) -> usize {
    events
        .iter()
        .filter(|e| {
            e.trim_start()
                .split_once("s ")
                .is_some_and(|(_, what)| what.starts_with("kill node "))
        })
        .count()
}

/// What the delivery callback saw: one report per settled batch.
struct Settled {
    start: Instant,
    inner: Mutex<SettledInner>,
}

#[derive(Default)]
struct SettledInner {
    batches_acked: u64,
    records_acked: u64,
    batches_failed: u64,
    records_failed: u64,
    /// Per partition: the last acknowledgement, the longest time without
    /// one (counted from `start`) and when that wait ended.
    gaps: BTreeMap<i32, Gap>,
}

struct Gap {
    last: Instant,
    longest: Duration,
    ended: Instant,
}

impl Settled {
    fn new() -> Arc<Self> {
        Arc::new(Settled {
            start: Instant::now(),
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SettledInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn callback(self: &Arc<Self>) -> DeliveryCallback {
        let s = self.clone();
        DeliveryCallback::new(move |r| {
            let now = Instant::now();
            let mut g = s.lock();
            if r.result.is_err() {
                g.batches_failed += 1;
                g.records_failed += r.record_count as u64;
                return;
            }
            g.batches_acked += 1;
            g.records_acked += r.record_count as u64;
            let gap = g.gaps.entry(r.partition).or_insert(Gap {
                last: s.start,
                longest: Duration::ZERO,
                ended: s.start,
            });
            let waited = now.duration_since(gap.last);
            if waited > gap.longest {
                gap.longest = waited;
                gap.ended = now;
            }
            gap.last = now;
        })
    }
}

/// The producer's failed produce attempts, as its sender logs them (the
/// `produce attempt failed` debug event of
/// `skotch_client::producer::sender`): a batch that failed and is retried
/// shows up once per failed attempt, which the delivery callback (one
/// report per settled batch) cannot tell.
#[derive(Default)]
struct FailedAttempts {
    total: AtomicU64,
    /// Those the sender marked `can_retry` (sent again unless the
    /// idempotence state says otherwise).
    retriable: AtomicU64,
    kinds: Mutex<BTreeMap<String, u64>>,
}

struct CountFailedAttempts(Arc<FailedAttempts>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountFailedAttempts {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            attempt_failed: bool,
            error: String,
            can_retry: bool,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                match f.name() {
                    "message" => self.attempt_failed = format!("{v:?}") == "produce attempt failed",
                    "error" => self.error = format!("{v:?}"),
                    _ => {}
                }
            }
            fn record_bool(&mut self, f: &tracing::field::Field, v: bool) {
                if f.name() == "can_retry" {
                    self.can_retry = v;
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !fields.attempt_failed {
            return;
        }
        self.0.total.fetch_add(1, Ordering::Relaxed);
        if fields.can_retry {
            self.0.retriable.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .0
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(error_kind(&fields.error))
            .or_default() += 1;
    }
}

/// Install a global tracing subscriber that counts failed produce attempts
/// (and logs as `SKOTCH_LOG` says, which `common::init_logging` cannot do
/// once this one is installed). None when another subscriber came first.
fn count_failed_attempts() -> Option<Arc<FailedAttempts>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let counts = Arc::new(FailedAttempts::default());
    let counter = CountFailedAttempts(counts.clone()).with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("skotch_client::producer::sender", tracing::Level::DEBUG),
    );
    let log = tracing_subscriber::EnvFilter::try_from_env("SKOTCH_LOG")
        .ok()
        .map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter)
        });
    tracing_subscriber::registry()
        .with(counter)
        .with(log)
        .try_init()
        .ok()
        .map(|()| counts)
}

/// Not part of CI (`scripts/failover-long` runs it): SKOTCH_FAILOVER_RECORDS
/// keyed records (default 1 000 000) through the idempotent producer,
/// paced so that producing lasts for SKOTCH_FAILOVER_KILLS leader kills
/// (default 60; one every 10 s, the node down 5 s: 10+ minutes), then read
/// back: every acknowledged record exactly once, every key in order.
/// Prints what was acknowledged and failed, the kills, the producing time
/// and rate, the longest time a partition went without an
/// acknowledgement, and the failed produce attempts (retries).
#[test]
#[ignore = "long (10+ minutes by default): scripts/failover-long"]
fn long_run_many_kills() {
    let attempts = count_failed_attempts();
    let _g = exclusive();
    cluster::ensure_all_running();
    let count = env_count("SKOTCH_FAILOVER_RECORDS", 1_000_000);
    let kills = env_count("SKOTCH_FAILOVER_KILLS", 60);
    let every = Duration::from_secs(10);
    let down_for = Duration::from_secs(5);
    // Kill i starts about i * 10 s in (the first at once, after a leader
    // query); no kill starts after `last_kill_by`, and producing goes on
    // for 10 s after the last period so its node is back and caught up
    // while records still flow.
    let last_kill_by = every * (kills as u32) - down_for;
    let producing_for = every * (kills as u32 + 1);
    let rate = count.div_ceil(producing_for.as_secs()).max(1);
    let name = "long run";
    eprintln!(
        "{name}: {count} records at {rate}/s ({producing_for:?}), {kills} kills \
         (every {every:?}, down {down_for:?}), {PARTITIONS} partitions, {KEYS} keys"
    );
    runtime().block_on(async {
        let admin_client = cluster_client().await;
        let topic = create_topic(&admin_client, "failover-long", PARTITIONS).await;
        let settled = Settled::new();
        let config = ProducerConfig {
            on_delivery: Some(settled.callback()),
            ..Default::default()
        };
        let producer = Arc::new(Producer::new(producer_client().await, config).unwrap());
        assert!(producer.is_idempotent());

        let chaos = Chaos::kill_leaders(&topic, PARTITIONS, every, down_for, last_kill_by);
        let start = Instant::now();
        let mut run = tokio::spawn(produce_keyed(producer.clone(), topic.clone(), count, rate));
        // A progress line every 30 s.
        let period = Duration::from_secs(30);
        let mut tick = tokio::time::interval_at((start + period).into(), period);
        let sent = loop {
            tokio::select! {
                sent = &mut run => break sent.unwrap(),
                _ = tick.tick() => {
                    let s = settled.lock();
                    eprintln!(
                        "{name}: {:.0}s: {} records acknowledged, {} failed, {} kills",
                        start.elapsed().as_secs_f64(),
                        s.records_acked,
                        s.records_failed,
                        kills_done(&chaos.events())
                    );
                }
            }
        };
        let producing = start.elapsed();
        let events = chaos.stop();
        let done = kills_done(&events);

        let log = read_all_within(
            &cluster_client().await,
            &topic,
            Duration::from_secs(90 + count / 10_000),
        )
        .await;
        let c = check(&log, &sent);

        eprintln!("{name}: ---- figures ----");
        report(name, &sent, &c);
        eprintln!("{name}: kills done: {done} of {kills} asked");
        eprintln!(
            "{name}: producing took {:.1} s: {:.0} acknowledged records/s (paced at {rate}/s)",
            producing.as_secs_f64(),
            sent.acked.len() as f64 / producing.as_secs_f64()
        );
        {
            let s = settled.lock();
            eprintln!(
                "{name}: delivery callback: {} batches acknowledged ({} records), {} failed ({} records)",
                s.batches_acked, s.records_acked, s.batches_failed, s.records_failed
            );
            for (p, g) in &s.gaps {
                eprintln!(
                    "{name}: partition {p}: longest without an acknowledgement {:.2} s (ended {:.1} s in)",
                    g.longest.as_secs_f64(),
                    g.ended.duration_since(start).as_secs_f64()
                );
            }
            if let Some((p, g)) = s.gaps.iter().max_by_key(|(_, g)| g.longest) {
                eprintln!(
                    "{name}: longest time any partition went without an acknowledgement: \
                     {:.2} s (partition {p})",
                    g.longest.as_secs_f64()
                );
            }
            assert_eq!(
                s.gaps.len(),
                PARTITIONS as usize,
                "a partition never acknowledged a batch"
            );
        }
        match &attempts {
            Some(a) => {
                eprintln!(
                    "{name}: failed produce attempts: {} ({} retriable)",
                    a.total.load(Ordering::Relaxed),
                    a.retriable.load(Ordering::Relaxed)
                );
                for (k, n) in a.kinds.lock().unwrap().iter() {
                    eprintln!("{name}:   {n} x {k}");
                }
            }
            None => eprintln!(
                "{name}: failed produce attempts: not counted (a tracing subscriber was \
                 installed before this test's)"
            ),
        }

        assert!(done > 0, "no leader was killed: {events:?}");
        assert_exactly_once_in_order(name, &sent, &c);
        assert!(
            sent.failed.is_empty(),
            "the idempotent producer failed records under kills"
        );
    });
}
