//! The producer's public API against the real broker: `flush` waits only
//! for records sent before it, `close` and drop deliver what is queued,
//! `buffer.memory` with `try_send` (`BufferFull`) and `max.block.ms`
//! (`Timeout`), topic auto-creation (on by default, off in the stream
//! layer), the per-batch delivery callback, and settings `Producer::new`
//! refuses.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch::client::{
    Acks, Client, Consumer, ConsumerConfig, DeliveryCallback, DeliveryFuture, Error, Offset,
    Producer, ProducerConfig, ProducerRecord,
};
use skotch::stream::{StreamError, WriteOptions};

/// Every test is bounded by this.
const TEST_LIMIT: Duration = Duration::from_secs(90);

fn to_partition(topic: &str, partition: i32, value: impl Into<Bytes>) -> ProducerRecord {
    ProducerRecord {
        partition: Some(partition),
        ..ProducerRecord::new(topic, value)
    }
}

/// Wait until every partition of `topic` has a leader in `client`'s
/// metadata, so a short `max.block.ms` is spent on nothing but memory.
async fn wait_for_leaders(client: &Client, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = client.refresh_metadata(&[topic.to_string()]).await {
            if let Some(t) = md.topics.get(topic) {
                if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "{topic} has no leaders");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every value in `topic`, read from the earliest offset until `expected`
/// records arrived and the consumer is at the end (or 60 s passed).
async fn read_values(client: &Client, topic: &str, expected: usize) -> Vec<String> {
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(topic, Offset::Earliest)
        .await
        .expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(consumer.at_end() && values.len() >= expected) {
        assert!(
            Instant::now() < deadline,
            "read {} of {expected} records from {topic}",
            values.len()
        );
        for r in consumer.poll().await.expect("poll").records {
            values.push(String::from_utf8(r.value.expect("value").to_vec()).unwrap());
        }
    }
    values
}

/// Whether the broker knows `topic` (a Metadata request for all topics,
/// which never creates one).
async fn topic_exists(client: &Client, topic: &str) -> bool {
    let md = client.fetch_all_topics().await.expect("metadata");
    md.topics.contains_key(topic)
}

/// Whether `topic` exists, or comes to exist within `within` (the broker
/// creates auto-created topics asynchronously: its metadata shows them a
/// little after the request that triggered the creation).
async fn appears_within(client: &Client, topic: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if topic_exists(client, topic).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Assert that a future resolved successfully already (without waiting).
fn assert_delivered(f: &DeliveryFuture, what: &str) -> skotch::client::RecordMetadata {
    match f.try_result() {
        Some(Ok(md)) => md,
        Some(Err(e)) => panic!("{what}: failed: {e}"),
        None => panic!("{what}: not settled yet"),
    }
}

/// 1. `flush` waits for every record sent before it (by this task or any
/// other) and returns while another task keeps sending: it never waits for
/// records sent after it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_only_for_records_sent_before_it() {
    tokio::time::timeout(TEST_LIMIT, async {
        let client = common::client().await;
        let topic = common::create_topic(&client, "papi-flush", 3).await;
        wait_for_leaders(&client, &topic).await;
        let producer = Arc::new(
            Producer::new(
                client.clone(),
                ProducerConfig {
                    linger: Duration::from_secs(2),
                    batch_size: 512 * 1024,
                    ..Default::default()
                },
            )
            .unwrap(),
        );

        // The background sender: partitions 0 and 1, as fast as it can,
        // until told to stop.
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let bg_futures: Arc<Mutex<Vec<DeliveryFuture>>> = Arc::default();
        let bg = {
            let (producer, stop, sent, futs, topic) = (
                producer.clone(),
                stop.clone(),
                sent.clone(),
                bg_futures.clone(),
                topic.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Acquire) {
                    let r =
                        to_partition(&topic, (i % 2) as i32, format!("bg-{i}-{}", "x".repeat(80)));
                    let f = producer.send(r).await.expect("background send");
                    futs.lock().unwrap().push(f);
                    sent.fetch_add(1, Ordering::Release);
                    i += 1;
                    if i.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        // Let it get going.
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.load(Ordering::Acquire) < 2_000 {
            assert!(Instant::now() < deadline, "background sender stuck");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // This task's own records, then flush.
        const N: usize = 200;
        let mut mine = Vec::with_capacity(N);
        for i in 0..N {
            mine.push(
                producer
                    .send(to_partition(&topic, (i % 2) as i32, format!("mine-{i}")))
                    .await
                    .unwrap(),
            );
        }
        let bg_before = sent.load(Ordering::Acquire);
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), producer.flush())
            .await
            .expect("flush returns while another task keeps sending")
            .expect("flush");
        let flush_took = started.elapsed();
        // Checked at once, before anything else can settle them.
        for (i, f) in mine.iter().enumerate() {
            assert_delivered(f, &format!("own record {i} after flush"));
        }
        {
            let futs = bg_futures.lock().unwrap();
            for (i, f) in futs[..bg_before].iter().enumerate() {
                assert_delivered(f, &format!("background record {i} sent before flush"));
            }
        }
        assert!(
            !bg.is_finished(),
            "the background sender is still running when flush returns"
        );
        let bg_during = sent.load(Ordering::Acquire) - bg_before;
        eprintln!(
            "flush took {flush_took:?}; {bg_before} background records before it, \
             {bg_during} during it"
        );

        // A record sent after flush returned, to a partition nobody else
        // writes, waits for its linger (2 s): flush is over.
        let late = producer
            .send(to_partition(&topic, 2, "late"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            late.try_result().is_none(),
            "a record sent after flush returned was sent before its linger.ms"
        );

        stop.store(true, Ordering::Release);
        bg.await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), producer.close())
            .await
            .expect("close in time")
            .unwrap();
        assert_delivered(&late, "late record after close");
        let futs = std::mem::take(&mut *bg_futures.lock().unwrap());
        let total = futs.len();
        for (i, f) in futs.iter().enumerate() {
            assert_delivered(f, &format!("background record {i} after close"));
        }
        eprintln!("background sender sent {total} records");
    })
    .await
    .expect("test took too long");
}

/// 2. `close` refuses later sends with `Error::Closed` and delivers
/// everything sent before it; dropping the producer without `close` still
/// delivers what was queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_drop_deliver_queued_records() {
    tokio::time::timeout(TEST_LIMIT, async {
        let client = common::client().await;
        const M: usize = 500;

        // close
        let topic = common::create_topic(&client, "papi-close", 2).await;
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                // Long enough that close, not the linger, sends them.
                linger: Duration::from_secs(5),
                ..Default::default()
            },
        )
        .unwrap();
        let mut futs = Vec::new();
        for i in 0..M {
            futs.push(
                producer
                    .send(ProducerRecord::new(&topic, format!("c{i}")))
                    .await
                    .unwrap(),
            );
        }
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(30), producer.close())
            .await
            .expect("close in time")
            .expect("close");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "close waited for linger.ms: {:?}",
            started.elapsed()
        );
        for (i, f) in futs.iter().enumerate() {
            assert_delivered(f, &format!("record {i} after close"));
        }
        assert!(matches!(
            producer.send(ProducerRecord::new(&topic, "after")).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            producer
                .try_send(ProducerRecord::new(&topic, "after"))
                .await,
            Err(Error::Closed)
        ));
        // A second close (and a flush) have nothing to do.
        tokio::time::timeout(Duration::from_secs(10), producer.close())
            .await
            .expect("second close in time")
            .expect("second close");
        tokio::time::timeout(Duration::from_secs(10), producer.flush())
            .await
            .expect("flush after close in time")
            .expect("flush after close");
        let mut got = read_values(&client, &topic, M).await;
        got.sort();
        let mut want: Vec<String> = (0..M).map(|i| format!("c{i}")).collect();
        want.sort();
        assert_eq!(got, want, "every record sent before close, once");
        drop(producer);

        // drop without close
        let topic = common::create_topic(&client, "papi-drop", 2).await;
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                linger: Duration::from_millis(500),
                ..Default::default()
            },
        )
        .unwrap();
        let mut futs = Vec::new();
        for i in 0..M {
            futs.push(
                producer
                    .send(ProducerRecord::new(&topic, format!("d{i}")))
                    .await
                    .unwrap(),
            );
        }
        drop(producer);
        for (i, f) in futs.into_iter().enumerate() {
            tokio::time::timeout(Duration::from_secs(30), f)
                .await
                .unwrap_or_else(|_| panic!("record {i} not settled after drop"))
                .unwrap_or_else(|e| panic!("record {i} failed after drop: {e}"));
        }
        let mut got = read_values(&client, &topic, M).await;
        got.sort();
        let mut want: Vec<String> = (0..M).map(|i| format!("d{i}")).collect();
        want.sort();
        assert_eq!(got, want, "every record sent before the drop, once");
    })
    .await
    .expect("test took too long");
}

/// 2b. Dropping the producer without awaiting anything: the records still
/// arrive (nobody holds a future, so only the broker can tell).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_without_futures_still_delivers() {
    tokio::time::timeout(TEST_LIMIT, async {
        let client = common::client().await;
        let topic = common::create_topic(&client, "papi-drop2", 1).await;
        const M: usize = 300;
        {
            let producer = Producer::new(
                client.clone(),
                ProducerConfig {
                    linger: Duration::from_millis(500),
                    ..Default::default()
                },
            )
            .unwrap();
            for i in 0..M {
                // The future is dropped at once: that does not cancel.
                drop(
                    producer
                        .send(ProducerRecord::new(&topic, format!("e{i}")))
                        .await
                        .unwrap(),
                );
            }
        }
        let got = read_values(&client, &topic, M).await;
        let want: Vec<String> = (0..M).map(|i| format!("e{i}")).collect();
        assert_eq!(got, want, "one partition: all records, in order");
    })
    .await
    .expect("test took too long");
}

/// 3. `buffer.memory`: each open batch holds `batch.size` bytes of it.
/// With room for 4 batches and 4 partitions holding an open batch (a long
/// linger keeps them open), a record for a 5th partition needs a 5th
/// batch: `try_send` is `BufferFull` at once, `send` is `Timeout` after
/// `max.block.ms`; records for partitions with an open batch still fit;
/// `flush` gives the memory back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_memory_and_max_block() {
    tokio::time::timeout(TEST_LIMIT, async {
        let client = common::client().await;
        let topic = common::create_topic(&client, "papi-buffer", 5).await;
        wait_for_leaders(&client, &topic).await;
        const BATCH: usize = 16 * 1024;
        let config = |max_block| ProducerConfig {
            batch_size: BATCH,
            buffer_memory: 4 * BATCH,
            linger: Duration::from_secs(60),
            max_block,
            ..Default::default()
        };
        let producer = Producer::new(client.clone(), config(Duration::from_millis(300))).unwrap();
        let mut futs = Vec::new();
        for p in 0..4 {
            futs.push(
                producer
                    .try_send(to_partition(&topic, p, format!("first-{p}")))
                    .await
                    .unwrap_or_else(|e| panic!("partition {p}'s first record: {e}")),
            );
        }
        // The open batches have room: no memory needed.
        for p in 0..4 {
            futs.push(
                producer
                    .try_send(to_partition(&topic, p, format!("second-{p}")))
                    .await
                    .unwrap_or_else(|e| panic!("partition {p}'s second record: {e}")),
            );
        }
        match producer.try_send(to_partition(&topic, 4, "fifth")).await {
            Err(Error::BufferFull { needed, available }) => {
                assert_eq!(needed, BATCH);
                assert!(available < needed, "{available} of {needed}");
            }
            other => panic!("expected BufferFull, got {other:?}"),
        }
        let started = Instant::now();
        match producer.send(to_partition(&topic, 4, "fifth")).await {
            Err(e @ Error::Timeout { .. }) => {
                let took = started.elapsed();
                eprintln!("send gave up after {took:?}: {e}");
                assert!(
                    took >= Duration::from_millis(250) && took < Duration::from_secs(5),
                    "max.block.ms is 300 ms, send waited {took:?}"
                );
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
        // Nothing was sent meanwhile (the linger is 60 s).
        for (i, f) in futs.iter().enumerate() {
            assert!(
                f.try_result().is_none(),
                "record {i} sent before its linger"
            );
        }
        tokio::time::timeout(Duration::from_secs(30), producer.flush())
            .await
            .expect("flush in time")
            .unwrap();
        for (i, f) in futs.iter().enumerate() {
            assert_delivered(f, &format!("record {i} after flush"));
        }
        let fifth = producer
            .try_send(to_partition(&topic, 4, "fifth"))
            .await
            .expect("flush gave the memory back");
        // All of it, and no more: 3 more batches fit, a 4th does not.
        let mut refill = Vec::new();
        for p in 0..3 {
            refill.push(
                producer
                    .try_send(to_partition(&topic, p, format!("refill-{p}")))
                    .await
                    .unwrap_or_else(|e| panic!("refill of partition {p}: {e}")),
            );
        }
        assert!(
            matches!(
                producer.try_send(to_partition(&topic, 3, "refill-3")).await,
                Err(Error::BufferFull { .. })
            ),
            "buffer.memory counts 4 batches after a flush"
        );
        tokio::time::timeout(Duration::from_secs(30), producer.close())
            .await
            .expect("close in time")
            .unwrap();
        assert_eq!(assert_delivered(&fifth, "fifth").partition, 4);
        for (p, f) in refill.iter().enumerate() {
            assert_eq!(assert_delivered(f, "refill").partition, p as i32);
        }

        // A send waiting for memory gets it when a flush frees some.
        let producer =
            Arc::new(Producer::new(client.clone(), config(Duration::from_secs(20))).unwrap());
        for p in 0..4 {
            producer
                .send(to_partition(&topic, p, format!("again-{p}")))
                .await
                .unwrap();
        }
        let waiting = {
            let (producer, topic) = (producer.clone(), topic.clone());
            tokio::spawn(async move { producer.send(to_partition(&topic, 4, "waited")).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "send did not wait for buffer.memory"
        );
        tokio::time::timeout(Duration::from_secs(30), producer.flush())
            .await
            .expect("flush in time")
            .unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the waiting send got memory after flush")
            .unwrap()
            .expect("the waiting send");
        tokio::time::timeout(Duration::from_secs(30), producer.close())
            .await
            .expect("close in time")
            .unwrap();
        assert_eq!(assert_delivered(&waited, "waited").partition, 4);

        let mut got = read_values(&client, &topic, 17).await;
        got.sort();
        let mut want: Vec<String> = (0..4)
            .flat_map(|p| {
                [
                    format!("first-{p}"),
                    format!("second-{p}"),
                    format!("again-{p}"),
                ]
            })
            .chain((0..3).map(|p| format!("refill-{p}")))
            .chain(["fifth".to_string(), "waited".to_string()])
            .collect();
        want.sort();
        assert_eq!(got, want);
    })
    .await
    .expect("test took too long");
}

/// 4a. A producer with the defaults creates a
/// missing topic (the broker's `auto.create.topics.enable` is true) and
/// delivers the record, waiting up to `max.block.ms` for the new topic's
/// metadata as the Java producer does. A KRaft broker (Kafka 4.x) answers
/// the Metadata request that triggers the creation with
/// UNKNOWN_TOPIC_OR_PARTITION (not LEADER_NOT_AVAILABLE as ZooKeeper
/// brokers did); the topic appears in the next answer, milliseconds later,
/// so the producer retries "unknown topic" while creation is allowed
/// (once, `send` failed at once here with `Error::UnknownTopic`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_topic_creation_with_defaults() {
    tokio::time::timeout(TEST_LIMIT, async {
        let admin_client = common::client().await;
        let created = common::unique_topic("papi-autocreate");
        assert!(!topic_exists(&admin_client, &created).await);
        let client = common::client().await;
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                max_block: Duration::from_secs(20),
                ..Default::default()
            },
        )
        .unwrap();
        let started = Instant::now();
        let sent = tokio::time::timeout(
            Duration::from_secs(30),
            producer.send(ProducerRecord::new(&created, "hello")),
        )
        .await
        .expect("send in time");
        let took = started.elapsed();
        let f = match sent {
            Ok(f) => f,
            Err(e) => {
                let exists = appears_within(&admin_client, &created, Duration::from_secs(3)).await;
                panic!(
                    "send to a topic the broker auto-creates failed after {took:?}: {e} \
                     (the topic exists now: {exists})"
                );
            }
        };
        let md = tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("delivered in time")
            .expect("delivered");
        assert_eq!(md.offset, 0);
        producer.close().await.unwrap();
        assert!(topic_exists(&admin_client, &created).await);
        assert_eq!(read_values(&admin_client, &created, 1).await, ["hello"]);
    })
    .await
    .expect("test took too long");
}

/// 4b. With `allow_auto_create_topics` false a missing topic is
/// `UnknownTopic`, and nothing is created. The stream layer never creates
/// topics: `open_writer` checks the URL's, and a write naming another
/// missing topic fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auto_topic_creation_when_disallowed_and_in_stream_layer() {
    tokio::time::timeout(TEST_LIMIT, async {
        let admin_client = common::client().await;

        let missing = common::unique_topic("papi-nocreate");
        {
            let client = common::client().await;
            let producer = Producer::new(
                client.clone(),
                ProducerConfig {
                    allow_auto_create_topics: false,
                    max_block: Duration::from_secs(5),
                    ..Default::default()
                },
            )
            .unwrap();
            let started = Instant::now();
            match producer.send(ProducerRecord::new(&missing, "x")).await {
                Err(Error::UnknownTopic(t)) => assert_eq!(t, missing),
                other => panic!("expected UnknownTopic, got {other:?}"),
            }
            eprintln!("UnknownTopic after {:?}", started.elapsed());
            assert!(started.elapsed() < Duration::from_secs(10));
            // Refused again (nothing was cached as existing).
            assert!(matches!(
                producer.try_send(ProducerRecord::new(&missing, "x")).await,
                Err(Error::UnknownTopic(_))
            ));
            producer.close().await.unwrap();
        }

        // The stream layer: open_writer checks the URL's topics at open.
        let missing_open = common::unique_topic("papi-stream-open");
        let url = format!("kafka://{}/{missing_open}", common::bootstrap());
        match skotch::stream::open_writer(&url).await {
            Err(StreamError::Client(Error::UnknownTopic(t))) => assert_eq!(t, missing_open),
            Err(other) => panic!("expected UnknownTopic, got {other:?}"),
            Ok(_) => panic!("open_writer accepted a missing topic"),
        }
        // ...and a write naming another topic does not create it.
        let existing = common::create_topic(&admin_client, "papi-stream", 1).await;
        let missing_write = common::unique_topic("papi-stream-write");
        let url = format!("kafka://{}/{existing}", common::bootstrap());
        let mut w = skotch::stream::open_writer(&url).await.unwrap();
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(70),
            w.write_with(
                Bytes::from_static(b"nope"),
                WriteOptions {
                    topic: Some(missing_write.clone()),
                    ..Default::default()
                },
            ),
        )
        .await
        .expect("write_with returns");
        match r {
            Err(StreamError::Client(Error::UnknownTopic(t))) => assert_eq!(t, missing_write),
            other => panic!("expected UnknownTopic, got {other:?}"),
        }
        eprintln!("stream write: UnknownTopic after {:?}", started.elapsed());
        // The writer still works for its own topic.
        w.write(Bytes::from_static(b"fine")).await.unwrap();
        w.close().await.unwrap();
        assert_eq!(read_values(&admin_client, &existing, 1).await, ["fine"]);

        // None of the refused topics exists, now or a moment later.
        for t in [&missing, &missing_open, &missing_write] {
            assert!(
                !appears_within(&admin_client, t, Duration::from_secs(2)).await,
                "{t} was created"
            );
        }
    })
    .await
    .expect("test took too long");
}

/// 4c. (A bug this test found, now fixed.) A `Client` shared by a producer that
/// may create topics and by code that must not (an
/// `allow_auto_create_topics: false` producer, or `Client::topic`, which
/// documents that asking never creates). A topic the latter asked about
/// and found missing stays in the client's metadata interest set; the
/// former's creating Metadata requests must name only its own topics, or
/// the broker creates the missing one too (it did, before the fix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_client_does_not_create_topics_others_asked_about() {
    tokio::time::timeout(TEST_LIMIT, async {
        let admin_client = common::client().await;
        let client = common::client().await;
        let typo = common::unique_topic("papi-typo");
        let refused = common::unique_topic("papi-refused");
        // Asked about without creation: unknown.
        assert!(matches!(
            client.topic(&typo).await,
            Err(Error::UnknownTopic(_))
        ));
        let strict = Producer::new(
            client.clone(),
            ProducerConfig {
                allow_auto_create_topics: false,
                max_block: Duration::from_secs(5),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(
            strict.send(ProducerRecord::new(&refused, "x")).await,
            Err(Error::UnknownTopic(_))
        ));
        // A default producer on the same client writes to its own topic (an
        // existing one, created through another client: this test does not
        // depend on auto-creation working, see 4a).
        let wanted = common::create_topic(&admin_client, "papi-wanted", 1).await;
        let lax = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
        let f = lax
            .send(ProducerRecord::new(&wanted, "w"))
            .await
            .expect("send to an existing topic");
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("in time")
            .expect("delivered");
        lax.close().await.unwrap();
        strict.close().await.unwrap();
        let created: Vec<&String> = {
            let mut v = Vec::new();
            for t in [&typo, &refused] {
                if appears_within(&admin_client, t, Duration::from_secs(3)).await {
                    v.push(t);
                }
            }
            v
        };
        assert!(
            created.is_empty(),
            "topics asked about without auto-creation were created by another \
             producer's metadata request on the same Client: {created:?}"
        );
    })
    .await
    .expect("test took too long");
}

/// 5. `on_delivery` is called once per batch: the record counts add up to
/// the records sent, partitions and offsets match the futures' (base
/// offset + index in the batch) and the batches the broker stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_callback_once_per_batch() {
    tokio::time::timeout(TEST_LIMIT, async {
        let client = common::client().await;
        let topic = common::create_topic(&client, "papi-callback", 3).await;
        #[derive(Debug, Clone)]
        struct Report {
            topic: String,
            partition: i32,
            count: i32,
            base_offset: std::result::Result<i64, String>,
        }
        let shared_reports: Arc<Mutex<Vec<Report>>> = Arc::default();
        let cb = {
            let reports = shared_reports.clone();
            DeliveryCallback::new(move |r| {
                reports.lock().unwrap().push(Report {
                    topic: r.topic.to_string(),
                    partition: r.partition,
                    count: r.record_count,
                    base_offset: r.result.map(|a| a.base_offset).map_err(|e| e.to_string()),
                })
            })
        };
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                // Small batches: many per partition.
                batch_size: 1024,
                linger: Duration::from_millis(20),
                on_delivery: Some(cb),
                ..Default::default()
            },
        )
        .unwrap();
        const COUNT: usize = 600;
        let mut futs = Vec::with_capacity(COUNT);
        for i in 0..COUNT {
            let r = ProducerRecord::new(&topic, format!("value-{i:04}-{}", "y".repeat(i % 40)))
                .key(format!("k{}", i % 17));
            futs.push(producer.send(r).await.unwrap());
            if i % 100 == 99 {
                // Let some batches go by linger, not only by size.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
        producer.flush().await.unwrap();
        // Every callback ran before flush returned.
        let reports = shared_reports.lock().unwrap().clone();
        let total: i64 = reports.iter().map(|r| i64::from(r.count)).sum();
        assert_eq!(total, COUNT as i64, "record counts add up: {reports:?}");
        assert!(reports.len() > 3, "several batches: {}", reports.len());
        // (partition, offset) from the reports: each exactly once.
        let mut from_reports: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        for r in &reports {
            assert_eq!(r.topic, topic);
            assert!((0..3).contains(&r.partition), "{r:?}");
            assert!(r.count > 0, "{r:?}");
            let base = r.base_offset.clone().expect("batch delivered");
            assert!(base >= 0, "{r:?}");
            for o in base..base + i64::from(r.count) {
                *from_reports.entry((r.partition, o)).or_default() += 1;
            }
        }
        assert!(
            from_reports.values().all(|&n| n == 1),
            "a record reported twice"
        );
        let mut from_futures = BTreeSet::new();
        for (i, f) in futs.iter().enumerate() {
            let md = assert_delivered(f, &format!("record {i}"));
            assert_eq!(md.topic, topic);
            assert!(from_futures.insert((md.partition, md.offset)));
        }
        let reported: BTreeSet<(i32, i64)> = from_reports.keys().copied().collect();
        assert_eq!(reported, from_futures, "reports and futures agree");
        // Each report is one batch the broker stored.
        let stored: BTreeSet<(i32, i64, i32)> = common::raw_batches(&client, &topic)
            .await
            .iter()
            .map(|b| (b.partition, b.base_offset, b.record_count))
            .collect();
        let reported_batches: BTreeSet<(i32, i64, i32)> = reports
            .iter()
            .map(|r| (r.partition, r.base_offset.clone().unwrap(), r.count))
            .collect();
        assert_eq!(reported_batches.len(), reports.len());
        assert_eq!(reported_batches, stored, "one report per stored batch");
        // Records of one key keep their order (same partition, rising offsets).
        let mut last: BTreeMap<usize, (i32, i64)> = BTreeMap::new();
        for (i, f) in futs.iter().enumerate() {
            let md = assert_delivered(f, "again");
            if let Some((p, o)) = last.insert(i % 17, (md.partition, md.offset)) {
                assert_eq!(p, md.partition);
                assert!(o < md.offset);
            }
        }
        producer.close().await.unwrap();
        assert_eq!(
            shared_reports.lock().unwrap().len(),
            reports.len(),
            "no more callbacks after close for a flushed producer"
        );
    })
    .await
    .expect("test took too long");
}

/// 5b. A batch the broker refuses (a record above the topic's
/// `max.message.bytes`, 1 MiB by default, that `max_request_size` lets
/// through) is reported once to the callback with the error, and its
/// future fails with the same error; later records still go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_callback_reports_failed_batch() {
    tokio::time::timeout(TEST_LIMIT, async {
        let client = common::client().await;
        let topic = common::create_topic(&client, "papi-callback-err", 1).await;
        /// (partition, record count, base offset or error) per callback.
        type Reports = Arc<Mutex<Vec<(i32, i32, std::result::Result<i64, String>)>>>;
        let reports: Reports = Arc::default();
        let cb = {
            let reports = reports.clone();
            DeliveryCallback::new(move |r| {
                reports.lock().unwrap().push((
                    r.partition,
                    r.record_count,
                    r.result.map(|a| a.base_offset).map_err(|e| e.to_string()),
                ))
            })
        };
        let producer = Producer::new(
            client.clone(),
            ProducerConfig {
                max_request_size: 8 << 20,
                delivery_timeout: Duration::from_secs(20),
                on_delivery: Some(cb),
                ..Default::default()
            },
        )
        .unwrap();
        let big = producer
            .send(ProducerRecord::new(&topic, vec![b'z'; 2 << 20]))
            .await
            .unwrap();
        producer.flush().await.unwrap();
        let err = match big.try_result() {
            Some(Err(e)) => e,
            other => panic!("expected the broker to refuse a 2 MiB record: {other:?}"),
        };
        eprintln!("2 MiB record: {err}");
        {
            let r = reports.lock().unwrap();
            assert_eq!(r.len(), 1, "{r:?}");
            assert_eq!((r[0].0, r[0].1), (0, 1));
            assert_eq!(r[0].2.as_ref().unwrap_err(), &err.to_string());
        }
        let small = producer
            .send(ProducerRecord::new(&topic, "small"))
            .await
            .unwrap();
        producer.close().await.unwrap();
        let md = assert_delivered(&small, "small record after the failed one");
        assert_eq!(md.offset, 0);
        let r = reports.lock().unwrap();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[1], (0, 1, Ok(0)));
    })
    .await
    .expect("test took too long");
}

/// 6. Settings `Producer::new` refuses with `Error::Config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused() {
    let client = common::client().await;
    let cases = [
        (
            "max_in_flight 0",
            ProducerConfig {
                max_in_flight: 0,
                ..Default::default()
            },
        ),
        (
            "batch_size 0",
            ProducerConfig {
                batch_size: 0,
                ..Default::default()
            },
        ),
        (
            "idempotence with acks=1",
            ProducerConfig {
                enable_idempotence: Some(true),
                acks: Acks::Leader,
                ..Default::default()
            },
        ),
        (
            "gzip level 42",
            ProducerConfig {
                compression: skotch::client::Compression::Gzip,
                compression_level: Some(42),
                ..Default::default()
            },
        ),
    ];
    for (what, config) in cases {
        match Producer::new(client.clone(), config) {
            Err(Error::Config(msg)) => eprintln!("{what}: {msg}"),
            Err(e) => panic!("{what}: expected Error::Config, got {e}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    // Conflicting settings without asking for idempotence: accepted, off.
    let p = Producer::new(
        client.clone(),
        ProducerConfig {
            acks: Acks::Leader,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!p.is_idempotent());
    assert!(Producer::new(client, ProducerConfig::default())
        .unwrap()
        .is_idempotent());
}
