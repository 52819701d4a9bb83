//! The consumer bugs of issue 12, each against the real broker
//! (scripts/kafka), each failing before its fix:
//!
//! - `undecodable_batch_stops_the_partition_once`: a fetch whose later
//!   batch cannot be decoded (a gzip batch inflating past the consumer's
//!   limit) used to hand out the earlier batches' records on every poll
//!   forever and never report the error. Now they go out once, the position
//!   stops at the bad batch, the error names topic, partition and offset,
//!   and a seek past it goes on.
//! - `closing_a_group_consumer_keeps_the_shared_client_open`: closing a
//!   group consumer closed every connection of the client it was given,
//!   failing the requests of a producer sharing it.
//! - `commits_do_not_wait_behind_a_join`: JoinGroup, which the coordinator
//!   holds until the other members rejoin, shared its connection with
//!   OffsetCommit/OffsetFetch, so a commit waited behind it (and its
//!   timeout closed the connection, failing the join).
//! - `close_reports_a_failed_final_commit`: `GroupConsumer::close` always
//!   returned Ok, and the commit before revocation (auto commit, or a
//!   `ManualCommitListener`) failed silently.
//! - `max_poll_records_and_pause`: `max.poll.records` bounds each poll,
//!   paused partitions are neither fetched nor handed out, and
//!   `offsets_for_times` answers in one round.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch::client::{
    Compression, ConnKind, Consumer, ConsumerConfig, Error, GroupConfig, GroupConsumer,
    ManualCommitListener, Offset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

async fn produce(
    client: &skotch::client::Client,
    topic: &str,
    compression: Compression,
    values: Vec<Bytes>,
) {
    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            compression,
            ..Default::default()
        },
    )
    .unwrap();
    let mut acks = Vec::new();
    for v in values {
        let mut r = ProducerRecord::new(topic, v);
        r.partition = Some(0);
        acks.push(producer.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();
}

#[tokio::test]
async fn undecodable_batch_stops_the_partition_once() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "corrupt", 1).await;
    // Offsets 0-4: small uncompressed records. Offset 5: 512 KiB of zeros,
    // gzip-compressed to about 1 KiB. Offsets 6-8: small records again.
    let small = |i: usize| Bytes::from(format!("small-{i}"));
    produce(
        &client,
        &topic,
        Compression::None,
        (0..5).map(small).collect(),
    )
    .await;
    produce(
        &client,
        &topic,
        Compression::Gzip,
        vec![Bytes::from(vec![0u8; 512 * 1024])],
    )
    .await;
    produce(
        &client,
        &topic,
        Compression::None,
        (6..9).map(small).collect(),
    )
    .await;

    // A consumer that may inflate at most 64 KiB per batch.
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            fetch_max_bytes: 64 * 1024,
            max_partition_fetch_bytes: 64 * 1024,
            ..Default::default()
        },
    );
    let tp = TopicPartition::new(&topic, 0);
    consumer.assign(tp.clone(), Offset::Earliest);
    let mut offsets = Vec::new();
    let mut error = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll().await {
            Ok(p) => offsets.extend(p.records.iter().map(|r| r.offset)),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(offsets, vec![0, 1, 2, 3, 4], "the good records, once each");
    match error {
        Some(Error::CorruptRecord {
            topic: t,
            partition: 0,
            offset: 5,
            ..
        }) if t == topic => {}
        other => panic!("expected CorruptRecord at offset 5, got {other:?}"),
    }
    assert_eq!(consumer.position(&tp), Some(5));
    // Every poll says so until the application moves on.
    assert!(matches!(
        consumer.poll().await,
        Err(Error::CorruptRecord { offset: 5, .. })
    ));
    consumer.seek(&tp, Offset::At(6)).unwrap();
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rest.len() < 3 && Instant::now() < deadline {
        rest.extend(
            consumer
                .poll()
                .await
                .unwrap()
                .records
                .iter()
                .map(|r| r.offset),
        );
    }
    assert_eq!(rest, vec![6, 7, 8]);
}

#[tokio::test]
async fn closing_a_group_consumer_keeps_the_shared_client_open() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sharedclose", 1).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    producer
        .send(ProducerRecord::new(&topic, "before"))
        .await
        .unwrap()
        .await
        .unwrap();
    let leader = client.leader(&topic, 0).await.unwrap();
    let produce_conn = client.connection(leader, ConnKind::Produce).await.unwrap();

    let mut group = GroupConsumer::subscribe(
        client.clone(),
        ConsumerConfig {
            auto_offset_reset: Some(Offset::Earliest),
            ..Default::default()
        },
        GroupConfig::new(common::unique_topic("sharedclose-group")),
        std::slice::from_ref(&topic),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got == 0 && Instant::now() < deadline {
        got += group.poll().await.unwrap().records.len();
    }
    assert_eq!(got, 1);
    group.close().await.unwrap();

    assert!(
        !produce_conn.is_closed(),
        "closing the consumer closed the producer's connection"
    );
    producer
        .send(ProducerRecord::new(&topic, "after"))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close().await.unwrap();
}

#[tokio::test]
async fn commits_do_not_wait_behind_a_join() {
    let client_a = common::client().await;
    let client_b = common::client().await;
    let topic = common::create_topic(&client_a, "joinconn", 2).await;
    let group_id = common::unique_topic("joinconn-group");
    let consumer_config = || ConsumerConfig {
        auto_offset_reset: Some(Offset::Earliest),
        ..Default::default()
    };
    // Member A joins and then stops polling: when B joins, the coordinator
    // holds B's JoinGroup until A rejoins (it never does) or A's rebalance
    // timeout (max.poll.interval.ms, 8 s) passes.
    let mut config_a = GroupConfig::new(&group_id);
    config_a.max_poll_interval = Duration::from_secs(8);
    config_a.session_timeout = Duration::from_secs(10);
    let mut a = GroupConsumer::subscribe(
        client_a,
        consumer_config(),
        config_a,
        std::slice::from_ref(&topic),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(a.is_stable() && a.assignment().len() == 2) && Instant::now() < deadline {
        a.poll().await.unwrap();
    }
    assert_eq!(a.assignment().len(), 2, "A owns both partitions");

    let mut b = GroupConsumer::subscribe(
        client_b,
        consumer_config(),
        GroupConfig::new(&group_id),
        std::slice::from_ref(&topic),
    )
    .await
    .unwrap();
    let handle_b = b.handle();
    let joining = tokio::spawn(async move {
        let started = Instant::now();
        let mut r = Ok(());
        while !b.is_stable() && started.elapsed() < Duration::from_secs(30) {
            if let Err(e) = b.poll().await {
                r = Err(e);
                break;
            }
        }
        (r, started.elapsed(), b)
    });
    // B's JoinGroup is now waiting at the coordinator.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !joining.is_finished(),
        "B's join should be held by the coordinator"
    );
    let asked = Instant::now();
    let committed = handle_b
        .committed(&[TopicPartition::new(&topic, 0)])
        .await
        .unwrap();
    let took = asked.elapsed();
    assert!(committed.is_empty());
    assert!(
        took < Duration::from_secs(2),
        "OffsetFetch waited {took:?} behind the JoinGroup"
    );
    let (r, join_took, b) = joining.await.unwrap();
    r.expect("B's join succeeds");
    assert!(b.is_stable(), "B joined");
    println!("OffsetFetch during B's join took {took:?}; the join took {join_took:?}");
    drop(a);
    b.close().await.unwrap();
}

#[tokio::test]
async fn close_reports_a_failed_final_commit() {
    for manual in [false, true] {
        let client = common::client().await;
        let topic = common::create_topic(&client, "closeerr", 1).await;
        produce(
            &client,
            &topic,
            Compression::None,
            (0..10).map(|i| Bytes::from(format!("v{i}"))).collect(),
        )
        .await;
        let mut config = GroupConfig::new(common::unique_topic("closeerr-group"));
        config.enable_auto_commit = !manual;
        config.auto_commit_interval = Duration::from_secs(3600);
        // The member will be removed for not polling.
        config.max_poll_interval = Duration::from_secs(3);
        config.session_timeout = Duration::from_secs(6);
        config.heartbeat_interval = Duration::from_secs(1);
        let mut group = GroupConsumer::subscribe(
            client.clone(),
            ConsumerConfig {
                auto_offset_reset: Some(Offset::Earliest),
                ..Default::default()
            },
            config,
            std::slice::from_ref(&topic),
        )
        .await
        .unwrap();
        if manual {
            group.add_listener(ManualCommitListener);
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 10 && Instant::now() < deadline {
            got.extend(group.poll().await.unwrap().records);
        }
        assert_eq!(got.len(), 10);
        if manual {
            for r in &got {
                group.mark_done(&TopicPartition::new(&topic, 0), r.offset);
            }
        }
        // Stop polling past max.poll.interval.ms: the member leaves the
        // group, so the commit before revocation is refused.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let r = group.close().await;
        assert!(
            r.is_err(),
            "close must report the refused final commit (manual={manual})"
        );
        println!("manual={manual}: close said {}", r.unwrap_err());
    }
}

#[tokio::test]
async fn max_poll_records_and_pause() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "maxpoll", 2).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let base = 1_700_000_000_000i64;
    let mut acks = Vec::new();
    for i in 0..2000i64 {
        let mut r = ProducerRecord::new(&topic, format!("v{i}"));
        r.partition = Some((i % 2) as i32);
        r.timestamp = Some(base + i);
        acks.push(producer.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();

    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            max_poll_records: 100,
            ..Default::default()
        },
    );
    let p0 = TopicPartition::new(&topic, 0);
    let p1 = TopicPartition::new(&topic, 1);
    consumer.assign(p0.clone(), Offset::Earliest);
    consumer.assign(p1.clone(), Offset::Earliest);
    consumer.pause(std::slice::from_ref(&p1));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 1000 && Instant::now() < deadline {
        let p = consumer.poll().await.unwrap();
        assert!(p.records.len() <= 100, "max.poll.records exceeded");
        for r in &p.records {
            assert_eq!(r.partition, 0, "a paused partition was handed out");
            seen.push(r.offset);
        }
    }
    assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    assert_eq!(consumer.paused(), vec![p1.clone()]);
    consumer.resume(std::slice::from_ref(&p1));
    let mut from_p1 = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while from_p1 < 1000 && Instant::now() < deadline {
        from_p1 += consumer.poll().await.unwrap().records.len();
    }
    assert_eq!(from_p1, 1000);

    // Record i has timestamp base + i; partition 0 holds the even i.
    let found = consumer
        .offsets_for_times(&[(p0.clone(), base + 101), (p1.clone(), base + 4000)])
        .await
        .unwrap();
    let at = found[&p0].expect("a record at or after the time");
    assert_eq!((at.offset, at.timestamp), (51, base + 102));
    assert_eq!(found[&p1], None, "nothing that recent");
}
