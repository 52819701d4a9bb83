//! skotch's producer and consumer on their error paths, made
//! deterministic by the mock's faults (a real broker gives these errors
//! only by chance): every broker error of the idempotent producer's table,
//! a connection dropped after a produce was applied, leaders moving while
//! batches are in flight, and a throttled broker.
//!
//! The table (Java's `Sender.completeBatch` and `TransactionManager` for a
//! producer without `transactional.id`, which the client follows):
//! retriable errors are retried and every record lands once, in order;
//! UNKNOWN_PRODUCER_ID and OUT_OF_ORDER_SEQUENCE_NUMBER bump the epoch
//! (KIP-360) and resend; DUPLICATE_SEQUENCE_NUMBER is a success;
//! INVALID_PRODUCER_EPOCH is fatal; other errors fail that batch only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch_client::{
    Client, Consumer, ConsumerConfig, Offset, Producer, ProducerRecord, TopicPartition,
};
mod common;

use skotch_mock::{ApiKey, ErrorCode, Fault, MockCluster};

const TOPIC: &str = "t";

async fn setup(brokers: usize, partitions: i32) -> (MockCluster, Client, Producer) {
    common::clients::setup(brokers, TOPIC, partitions).await
}

fn record(partition: i32, i: usize) -> ProducerRecord {
    ProducerRecord {
        topic: TOPIC.into(),
        partition: Some(partition),
        key: None,
        value: Some(Bytes::from(i.to_string())),
        headers: Vec::new(),
        timestamp: None,
    }
}

/// Send `range` to `partition`; the delivery result of each.
async fn send_all(
    producer: &Producer,
    partition: i32,
    range: std::ops::Range<usize>,
) -> Vec<Result<i64, String>> {
    let mut futures = Vec::new();
    for i in range {
        match producer.send(record(partition, i)).await {
            Ok(f) => futures.push(Ok(f)),
            Err(e) => futures.push(Err(e.to_string())),
        }
    }
    let _ = producer.flush().await;
    let mut out = Vec::new();
    for f in futures {
        out.push(match f {
            Ok(f) => f.await.map(|md| md.offset).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        });
    }
    out
}

/// Every value of a partition, in offset order.
async fn read_partition(client: &Client, partition: i32, expected: usize) -> Vec<usize> {
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign(
        TopicPartition {
            topic: TOPIC.into(),
            partition,
        },
        Offset::Earliest,
    );
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while values.len() < expected && Instant::now() < deadline {
        let p = tokio::time::timeout(Duration::from_secs(5), consumer.poll())
            .await
            .expect("poll in time")
            .expect("poll");
        for r in p.records {
            let v = r.value.expect("value");
            values.push(std::str::from_utf8(&v).unwrap().parse().unwrap());
        }
    }
    values
}

/// Retriable errors (and those KIP-360 resolves by bumping the epoch):
/// injected three times, the records still land exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_errors_deliver_every_record_once_in_order() {
    let retriable = [
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ErrorCode::LEADER_NOT_AVAILABLE,
        ErrorCode::NOT_ENOUGH_REPLICAS,
        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode::REQUEST_TIMED_OUT,
        ErrorCode::KAFKA_STORAGE_ERROR,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::CORRUPT_MESSAGE,
        ErrorCode::UNKNOWN_PRODUCER_ID,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        ErrorCode::DUPLICATE_SEQUENCE_NUMBER,
    ];
    let (cluster, client, producer) = setup(1, retriable.len() as i32).await;
    for (p, code) in retriable.iter().enumerate() {
        let p = p as i32;
        // A first batch lands, so that the errors hit a partition with
        // producer state (the bumps apply to it).
        let first = send_all(&producer, p, 0..10).await;
        assert!(first.iter().all(Result::is_ok), "{code:?}: {first:?}");
        let times = if *code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
            1
        } else {
            3
        };
        let fault = cluster
            .inject(
                Fault::error(ApiKey::Produce, *code)
                    .on_partition(TOPIC, p)
                    .times(times),
            )
            .unwrap();
        let results = send_all(&producer, p, 10..200).await;
        assert_eq!(cluster.fault_hits(fault), times, "{}", code.name());
        let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
        if *code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
            // Taken as "already written": the batch that got it is counted
            // delivered although the mock did not append it (a broker says
            // this only for a batch it has). Later batches land.
            assert!(failed.is_empty(), "{code:?}: {failed:?}");
            continue;
        }
        assert!(failed.is_empty(), "{}: {failed:?}", code.name());
        let values = read_partition(&client, p, 200).await;
        assert_eq!(
            values,
            (0..200).collect::<Vec<_>>(),
            "{}: lost, duplicated or reordered",
            code.name()
        );
    }
    producer.close().await.unwrap();
}

/// Errors that fail the batch: its records report the error, the
/// producer goes on and later records land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_errors_fail_that_batch_only() {
    let failing = [
        ErrorCode::MESSAGE_TOO_LARGE,
        ErrorCode::INVALID_RECORD,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        ErrorCode::RECORD_LIST_TOO_LARGE,
        ErrorCode::INVALID_REQUIRED_ACKS,
    ];
    let (cluster, client, producer) = setup(1, failing.len() as i32).await;
    for (p, code) in failing.iter().enumerate() {
        let p = p as i32;
        let fault = cluster
            .inject(Fault::error(ApiKey::Produce, *code).on_partition(TOPIC, p))
            .unwrap();
        let results = send_all(&producer, p, 0..1).await;
        assert_eq!(cluster.fault_hits(fault), 1);
        let err = results[0].as_ref().expect_err("the batch fails");
        assert!(
            err.contains(code.name()),
            "{}: the error names the code: {err}",
            code.name()
        );
        let later = send_all(&producer, p, 1..50).await;
        assert!(
            later.iter().all(Result::is_ok),
            "{}: {later:?}",
            code.name()
        );
        let values = read_partition(&client, p, 49).await;
        assert_eq!(values, (1..50).collect::<Vec<_>>(), "{}", code.name());
    }
    producer.close().await.unwrap();
}

/// INVALID_PRODUCER_EPOCH on produce: fenced, fatal; every later send
/// fails too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_producer_epoch_is_fatal() {
    let (cluster, _client, producer) = setup(1, 1).await;
    assert!(send_all(&producer, 0, 0..5).await.iter().all(Result::is_ok));
    cluster
        .inject(Fault::error(
            ApiKey::Produce,
            ErrorCode::INVALID_PRODUCER_EPOCH,
        ))
        .unwrap();
    let results = send_all(&producer, 0, 5..6).await;
    assert!(results[0].is_err(), "{results:?}");
    let later = send_all(&producer, 0, 6..7).await;
    assert!(
        later[0].is_err(),
        "a fenced producer keeps failing: {later:?}"
    );
    assert_eq!(cluster.high_watermark(TOPIC, 0), Some(5));
}

/// The connection drops after the broker applied the produce ("did it
/// land?"): the producer resends, the broker's duplicate check answers
/// with the first offsets, and the log holds each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_an_applied_produce_makes_no_duplicate() {
    let (cluster, client, producer) = setup(1, 1).await;
    assert!(send_all(&producer, 0, 0..10)
        .await
        .iter()
        .all(Result::is_ok));
    let fault = cluster
        .inject(Fault::drop_after(ApiKey::Produce).times(2))
        .unwrap();
    let results = send_all(&producer, 0, 10..500).await;
    assert_eq!(cluster.fault_hits(fault), 2);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(cluster.high_watermark(TOPIC, 0), Some(500));
    let values = read_partition(&client, 0, 500).await;
    assert_eq!(values, (0..500).collect::<Vec<_>>());
    // The offsets the deliveries reported are where the records are.
    for (i, r) in results.iter().enumerate() {
        assert_eq!(*r.as_ref().unwrap(), 10 + i as i64);
    }
}

/// Leaders move (with epoch bumps) while batches are in flight: every
/// record lands once, in order, on each partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_moving_mid_batch_lose_and_duplicate_nothing() {
    let (cluster, client, producer) = setup(3, 3).await;
    let cluster = std::sync::Arc::new(cluster);
    let mover = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                tokio::time::sleep(Duration::from_millis(25)).await;
                let p = i % 3;
                let to = (cluster.leader(TOPIC, p).unwrap() + 1) % 3;
                cluster.move_leader(TOPIC, p, to).unwrap();
            }
        })
    };
    const N: usize = 3_000;
    let mut futures = Vec::new();
    for i in 0..N {
        let p = (i % 3) as i32;
        futures.push((p, producer.send(record(p, i)).await.expect("send")));
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    producer.flush().await.unwrap();
    for (_, f) in futures {
        f.await.expect("delivered");
    }
    mover.await.unwrap();
    let mut expected: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for i in 0..N {
        expected.entry((i % 3) as i32).or_default().push(i);
    }
    for (p, want) in expected {
        assert_eq!(read_partition(&client, p, want.len()).await, want);
    }
}

/// A throttled produce answer (KIP-219): the records are delivered; the
/// broker mutes the connection for the throttle time and the client holds
/// its next request back as long (client/tests/scripted_peer.rs shows the
/// client's side alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_produce_is_delivered() {
    let (cluster, client, producer) = setup(1, 1).await;
    let fault = cluster
        .inject(Fault::throttle(ApiKey::Produce, Duration::from_millis(300)).times(3))
        .unwrap();
    let start = Instant::now();
    let mut results = Vec::new();
    for wave in 0..4 {
        results.extend(send_all(&producer, 0, wave * 25..(wave + 1) * 25).await);
    }
    assert_eq!(cluster.fault_hits(fault), 3);
    // Each throttled answer muted the connection for 300 ms.
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        read_partition(&client, 0, 100).await,
        (0..100).collect::<Vec<_>>()
    );
}
