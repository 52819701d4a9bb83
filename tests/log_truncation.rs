//! KIP-320 against a real unclean leader election on the 3-node cluster:
//! a consumer that read records which only the old leader had notices,
//! through OffsetForLeaderEpoch at the new leader, that the log was
//! truncated below its position, and goes back to the first offset that
//! differs (with `auto.offset.reset` set, as Java does), so the new
//! leader's records at those offsets are not skipped. Without the check
//! the consumer fetched past the new log end, got OFFSET_OUT_OF_RANGE and
//! skipped to the end by `auto.offset.reset=latest`, losing them. With
//! `auto.offset.reset` none it stops with `Error::LogTruncation`.
//!
//! The run: one partition on all three nodes, `min.insync.replicas=1`;
//! 100 records on every replica; both followers killed, 100 more on the
//! leader alone; the consumers read all 200; the leader killed, one old
//! follower restarted and made leader by an unclean election (its log
//! ends at 100); 50 new records written there. Bounded, leaves every node
//! running.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{self, cluster_client, exclusive, runtime, wait_for};
use skotch::client::{
    Admin, Client, Consumer, ConsumerConfig, Error, NewTopic, Offset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

async fn write(client: &Client, topic: &str, values: impl Iterator<Item = String>) {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut acks = Vec::new();
    for v in values {
        acks.push(producer.send(ProducerRecord::new(topic, v)).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// Poll until `want` records came (or an error); the offsets and values.
async fn read(consumer: &mut Consumer, want: usize) -> Result<Vec<(i64, String)>, Error> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "read {} of {want}: {got:?}",
            got.len()
        );
        for r in consumer.poll().await?.records {
            let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
            got.push((r.offset, v));
        }
    }
    Ok(got)
}

#[test]
fn consumer_detects_truncation_after_an_unclean_election() {
    let _g = exclusive();
    cluster::ensure_all_running();
    let result = std::panic::catch_unwind(|| {
        runtime().block_on(async {
            let client = cluster_client().await;
            let topic = common::unique_topic("truncation");
            Admin::new(client.clone())
                .create_topic(
                    NewTopic::new(&topic, 1, 3).config("min.insync.replicas", "1"),
                    false,
                )
                .await
                .unwrap();
            wait_for(
                &client,
                &topic,
                Duration::from_secs(30),
                "3 in sync",
                |ps| ps.len() == 1 && ps[0].leader >= 0 && ps[0].isr.len() == 3,
            )
            .await;
            write(&client, &topic, (0..100).map(|i| format!("old-{i}"))).await;

            let leader = cluster::leader(&topic, 0);
            let followers: Vec<i32> = (1..=3).filter(|n| *n != leader).collect();
            for f in &followers {
                cluster::kill(*f);
            }
            let client = cluster_client().await;
            wait_for(
                &client,
                &topic,
                Duration::from_secs(30),
                "ISR = leader",
                |ps| ps[0].isr == vec![leader],
            )
            .await;
            write(&client, &topic, (100..200).map(|i| format!("lost-{i}"))).await;

            let tp = TopicPartition::new(&topic, 0);
            let consumer = |reset| {
                let mut c = Consumer::new(
                    client.clone(),
                    ConsumerConfig {
                        auto_offset_reset: reset,
                        ..Default::default()
                    },
                );
                c.assign(tp.clone(), Offset::Earliest);
                c
            };
            let mut resetting = consumer(Some(Offset::Latest));
            let mut strict = consumer(None);
            assert_eq!(read(&mut resetting, 200).await.unwrap().len(), 200);
            assert_eq!(read(&mut strict, 200).await.unwrap().len(), 200);

            // The leader dies; a follower that lacks offsets 100-199 is
            // elected although it is not in the ISR.
            cluster::kill(leader);
            cluster::restart(followers[0]);
            cluster::elect_unclean(&topic, 0);
            let client2 = cluster_client().await;
            wait_for(
                &client2,
                &topic,
                Duration::from_secs(30),
                "the new leader",
                |ps| ps[0].leader == followers[0],
            )
            .await;
            write(&client2, &topic, (0..50).map(|i| format!("new-{i}"))).await;

            let after = read(&mut resetting, 50).await.unwrap();
            println!(
                "after the unclean election the consumer read {:?}..",
                &after[..3]
            );
            assert_eq!(
                after[0],
                (100, "new-0".to_string()),
                "went back to the diverging offset"
            );
            assert_eq!(
                after.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
                (100..150).collect::<Vec<_>>()
            );
            match read(&mut strict, 1).await {
                Err(Error::LogTruncation {
                    position: 200,
                    diverging_offset: 100,
                    ..
                }) => {}
                other => panic!("expected LogTruncation at 100, got {other:?}"),
            }
        })
    });
    cluster::ensure_all_running();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
