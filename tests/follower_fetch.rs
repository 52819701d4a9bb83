//! KIP-392 on the 3-node cluster (scripts/cluster gives node N
//! `broker.rack=rN` and the rack-aware replica selector): a consumer with
//! `client.rack` set to a follower's rack is pointed at that follower by
//! the leader, reads every record from it, and goes back to the leader
//! when the follower dies.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{self, cluster_client, create_topic, exclusive, runtime};
use skotch::client::{
    Consumer, ConsumerConfig, Offset, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

#[test]
fn consumer_reads_from_the_replica_in_its_rack() {
    let _g = exclusive();
    cluster::ensure_all_running();
    runtime().block_on(async {
        let client = cluster_client().await;
        let topic = create_topic(&client, "follower-fetch", 1).await;
        let leader = cluster::leader(&topic, 0);
        let follower = (1..=3).find(|n| *n != leader).unwrap();
        let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
        let mut acks = Vec::new();
        for i in 0..1000 {
            acks.push(
                producer
                    .send(ProducerRecord::new(&topic, format!("v{i}")))
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }

        let mut consumer = Consumer::new(
            client.clone(),
            ConsumerConfig {
                client_rack: Some(format!("r{follower}")),
                ..Default::default()
            },
        );
        let tp = TopicPartition::new(&topic, 0);
        consumer.assign(tp.clone(), Offset::Earliest);
        let mut offsets = Vec::new();
        let mut seen_replica = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while offsets.len() < 1000 {
            assert!(Instant::now() < deadline, "read {} of 1000", offsets.len());
            let p = consumer.poll().await.unwrap();
            offsets.extend(p.records.iter().map(|r| r.offset));
            seen_replica = seen_replica.or(consumer.preferred_read_replica(&tp));
        }
        assert_eq!(offsets, (0..1000).collect::<Vec<_>>());
        assert_eq!(
            seen_replica,
            Some(follower),
            "the leader (node {leader}) should point a consumer in rack r{follower} at node {follower}"
        );

        // The follower dies: the consumer reads new records from the
        // leader again.
        cluster::kill(follower);
        for i in 1000..1100 {
            producer
                .send(ProducerRecord::new(&topic, format!("v{i}")))
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while offsets.len() < 1100 {
            assert!(
                Instant::now() < deadline,
                "after the follower died, read {} of 1100",
                offsets.len()
            );
            let p = consumer.poll().await.unwrap();
            offsets.extend(p.records.iter().map(|r| r.offset));
        }
        assert_eq!(offsets, (0..1100).collect::<Vec<_>>());
        cluster::restart(follower);
        producer.close().await.unwrap();
    });
    cluster::ensure_all_running();
}
