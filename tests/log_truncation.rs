//! KIP-320 against a real unclean leader election on the 3-node cluster:
//! a consumer that read records which only the old leader had notices,
//! through OffsetForLeaderEpoch at the new leader, that the log was
//! truncated below its position. With `auto.offset.reset` set it goes back
//! to the first offset that differs, as Java does, so the new leader's
//! records at those offsets are not skipped; with `auto.offset.reset` none
//! it stops with `Error::LogTruncation`. Without the check the consumer
//! would fetch from its old position on the new leader and silently skip
//! the records written there below it.
//!
//! How the divergence is made, keeping the controller quorum (every node
//! is also a controller, so two nodes may never be down at once):
//!
//! 1. One partition with replicas on nodes A and B only, and
//!    `min.insync.replicas=1`; 100 records reach both.
//! 2. B is frozen (SIGSTOP); the controller fences it after
//!    `broker.session.timeout.ms` (3 s) and the ISR shrinks to A. 100 more
//!    records reach A alone, and both consumers read all 200.
//! 3. A is killed and B resumed at once (the quorum is short of a node
//!    only for that moment). B cannot catch up from a dead A; once it is
//!    unfenced, an unclean election makes it the leader with a log that
//!    ends at 100. 50 new records are written there, at offsets 100-149.
//!
//! Bounded (about a minute), and leaves every node running.

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

/// Poll until `want` records came, or the first error; offsets and values.
async fn read(consumer: &mut Consumer, want: usize) -> Result<Vec<(i64, String)>, Error> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want {
        assert!(
            Instant::now() < deadline,
            "read {} of {want} in 60 s: {got:?}",
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
    let result = std::panic::catch_unwind(|| runtime().block_on(scenario()));
    // Resumes B if a failed step left it frozen, restarts A.
    cluster::ensure_all_running();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

async fn scenario() {
    const A: i32 = 1;
    const B: i32 = 2;
    let client = cluster_client().await;
    let topic = common::unique_topic("truncation");
    Admin::new(client.clone())
        .create_topic(
            NewTopic::with_replica_assignment(&topic, vec![vec![A, B]])
                .config("min.insync.replicas", "1"),
            false,
        )
        .await
        .unwrap();
    wait_for(
        &client,
        &topic,
        Duration::from_secs(30),
        "leader A with A and B in sync",
        |ps| ps.len() == 1 && ps[0].leader == A && ps[0].isr.len() == 2,
    )
    .await;
    write(&client, &topic, (0..100).map(|i| format!("old-{i}"))).await;

    cluster::pause(B);
    let t0 = Instant::now();
    wait_for(
        &client,
        &topic,
        Duration::from_secs(30),
        "ISR = [A] after B was frozen",
        |ps| ps[0].isr == vec![A],
    )
    .await;
    println!("B frozen; ISR shrank to A after {:?}", t0.elapsed());
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
    let first = read(&mut resetting, 200).await.unwrap();
    assert_eq!(first.last().unwrap(), &(199, "lost-199".to_string()));
    assert_eq!(read(&mut strict, 200).await.unwrap().len(), 200);

    // A dies with offsets 100-199; B, which lacks them, comes back.
    cluster::kill(A);
    cluster::resume(B);
    let t1 = Instant::now();
    // B is elected once the controller has fenced A and unfenced B.
    let client2 = cluster_client().await;
    loop {
        if cluster::try_elect_unclean(&topic, 0).is_ok() && cluster::leader(&topic, 0) == B {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(40),
            "B did not become the leader by an unclean election in 40 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("B elected uncleanly {:?} after A died", t1.elapsed());
    wait_for(
        &client2,
        &topic,
        Duration::from_secs(30),
        "B leading",
        |ps| ps[0].leader == B,
    )
    .await;
    write(&client2, &topic, (0..50).map(|i| format!("new-{i}"))).await;

    let after = read(&mut resetting, 50).await.unwrap();
    println!(
        "after the unclean election the resetting consumer read {:?} .. {:?}",
        after.first(),
        after.last()
    );
    let expected: Vec<(i64, String)> = (0..50).map(|i| (100 + i, format!("new-{i}"))).collect();
    assert_eq!(
        after, expected,
        "the consumer went back to the diverging offset 100 and read the new leader's records"
    );
    match read(&mut strict, 1).await {
        Err(Error::LogTruncation {
            position: 200,
            diverging_offset: 100,
            partition: 0,
            ..
        }) => println!("the strict consumer stopped with LogTruncation at 100"),
        other => panic!("expected LogTruncation (position 200, diverging 100), got {other:?}"),
    }
    resetting.close();
    strict.close();
}
