//! A consumer keeps fetching a partition after another partition of the
//! same leader was unassigned while its fetched records were still
//! buffered (on the 3-node cluster of `scripts/cluster`, no faults).
//!
//! A regression test: found by `tests/failover_consume.rs`
//! (`frozen_group_coordinator`) in a version of the fetcher that, after an
//! answer with records, waited until `poll` had taken some of that broker's
//! data before fetching again; `unassign` dropped all of it instead, so the
//! wait never ended and the broker's other partitions stopped for good.
//!
//! `unassign_of_buffered_partition_keeps_the_leader_fetching`: partitions
//! `a` and `b` with the same leader, both empty, assigned and polled; then
//! records are written to `b` and left to the background fetcher for 2 s
//! (no poll), `b` is unassigned (its buffered records dropped), and records
//! are written to `a`, which must be delivered within 20 s.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{cluster_client, create_topic, runtime};
use skotch::client::{
    Consumer, ConsumerConfig, Offset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

#[test]
fn unassign_of_buffered_partition_keeps_the_leader_fetching() {
    runtime().block_on(async {
        let client = cluster_client().await;
        let topic = create_topic(&client, "fetch-drain", 6).await;
        let md = client
            .refresh_metadata(std::slice::from_ref(&topic))
            .await
            .expect("metadata");
        let parts = &md.topics[&topic].partitions;
        // Two partitions led by the same broker.
        let (a, b) = parts
            .iter()
            .flat_map(|x| parts.iter().map(move |y| (x, y)))
            .find(|(x, y)| x.partition < y.partition && x.leader == y.leader)
            .map(|(x, y)| (x.partition, y.partition))
            .expect("two partitions with one leader");
        eprintln!(
            "partitions {a} and {b}, both led by broker {}",
            parts[a as usize].leader
        );

        let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
        let send = |partition: i32, n: usize| {
            let producer = &producer;
            let topic = topic.clone();
            async move {
                let mut acks = Vec::new();
                for i in 0..n {
                    let mut r = ProducerRecord::new(topic.clone(), Bytes::from(format!("v{i}")));
                    r.partition = Some(partition);
                    acks.push(producer.send(r).await.expect("send"));
                }
                for f in acks {
                    f.await.expect("delivered");
                }
            }
        };
        let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
        let (ta, tb) = (
            TopicPartition::new(&topic, a),
            TopicPartition::new(&topic, b),
        );
        consumer.assign(ta.clone(), Offset::Earliest);
        consumer.assign(tb.clone(), Offset::Earliest);
        // Both empty: the leader's fetcher long-polls.
        for _ in 0..4 {
            let p = consumer.poll().await.expect("poll");
            assert!(p.records.is_empty());
        }
        // Records for b only; the background fetcher buffers them (no poll).
        send(b, 1000).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Unassigned before any poll took them: dropped.
        consumer.unassign(&tb);
        send(a, 10).await;

        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = 0;
        while got < 10 && Instant::now() < deadline {
            let p = consumer.poll().await.expect("poll");
            got += p.records.iter().filter(|r| r.partition == a).count();
        }
        eprintln!(
            "partition {a}: {got} of 10 records delivered; position {:?}",
            consumer.position(&ta)
        );
        assert_eq!(
            got, 10,
            "partition {a} was not fetched again after partition {b} (same leader) was \
             unassigned with its fetched records still buffered"
        );
    });
}
