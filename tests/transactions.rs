//! Transactional data read at the record-batch level against the real
//! broker: the Java transactional producer interleaves committed and
//! aborted transactions (and plain records) in one partition
//! (tests/java/JavaTxnProducer.java); skotch's consumer at read_committed
//! sees exactly the committed and plain records, at read_uncommitted
//! every data record, and never a control record (transaction marker),
//! whatever the codec and however small the fetches. The Java consumer at
//! read_committed agrees.

mod common;

use std::collections::HashMap;

use serde_json::Value;
use skotch::client::{Consumer, ConsumerConfig, IsolationLevel, Offset};

const ROUNDS: usize = 6;
const PER_TXN: usize = 15;

/// (value, committed) in the producer's order, from JavaTxnProducer.
fn produce(topic: &str, compression: &str) -> Vec<(String, bool)> {
    let out = common::java(
        "JavaTxnProducer",
        &[
            &common::bootstrap(),
            topic,
            &ROUNDS.to_string(),
            &PER_TXN.to_string(),
            "--compression",
            compression,
        ],
    );
    out.iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["value"].as_str().unwrap().to_string(),
                v["committed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Values and offsets skotch reads from partition 0 at `isolation`, with
/// fetches of at most `max_partition_fetch_bytes`.
async fn read(
    client: &skotch::client::Client,
    topic: &str,
    isolation: IsolationLevel,
    max_partition_fetch_bytes: i32,
) -> (Vec<String>, Vec<i64>, i64) {
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            isolation_level: isolation,
            max_partition_fetch_bytes,
            ..Default::default()
        },
    );
    consumer
        .assign_topic(topic, Offset::Earliest)
        .await
        .unwrap();
    let (mut values, mut offsets) = (Vec::new(), Vec::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !consumer.at_end() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        for r in consumer.poll().await.unwrap().records {
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            let txn = &r.headers[0];
            assert_eq!(txn.key, "txn", "a control record reached the user: {v}");
            assert!(v.starts_with(std::str::from_utf8(txn.value.as_deref().unwrap()).unwrap()));
            values.push(v);
            offsets.push(r.offset);
        }
    }
    let tp = skotch::client::TopicPartition::new(topic.to_string(), 0);
    let hw = consumer.high_watermark(&tp).unwrap();
    (values, offsets, hw)
}

/// `values` in the order each producer wrote them.
fn per_producer(values: &[String]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for v in values {
        let who = v.split('-').next().unwrap().to_string();
        m.entry(who).or_default().push(v.clone());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_skips_aborted_transactions_and_markers() {
    let client = common::client().await;
    for compression in ["none", "zstd"] {
        let topic = common::create_topic(&client, &format!("txn-{compression}"), 1).await;
        let written = produce(&topic, compression);
        let committed: Vec<String> = written
            .iter()
            .filter(|(_, c)| *c)
            .map(|(v, _)| v.clone())
            .collect();
        let all: Vec<String> = written.iter().map(|(v, _)| v.clone()).collect();
        // 2 transactions and 1 plain record per round.
        assert_eq!(all.len(), ROUNDS * (3 * PER_TXN + 1));

        for max_bytes in [1_048_576, 1] {
            let (values, offsets, hw) =
                read(&client, &topic, IsolationLevel::ReadCommitted, max_bytes).await;
            assert_eq!(
                per_producer(&values),
                per_producer(&committed),
                "{compression}, fetch size {max_bytes}"
            );
            assert!(offsets.windows(2).all(|w| w[0] < w[1]));
            // Two markers per round sit between the records: offsets have
            // gaps, and the end is the high watermark all the same.
            assert_eq!(hw as usize, all.len() + 2 * ROUNDS, "{compression}");

            let (values, _, _) =
                read(&client, &topic, IsolationLevel::ReadUncommitted, max_bytes).await;
            assert_eq!(per_producer(&values), per_producer(&all), "{compression}");
        }

        // The Java consumer at read_committed sees the same records.
        let java = common::java(
            "JavaConsumer",
            &[
                &common::bootstrap(),
                &topic,
                &committed.len().to_string(),
                "--read-committed",
            ],
        );
        let java_values: Vec<String> = common::json_lines(&java)
            .iter()
            .map(|v| String::from_utf8(common::b64(&v["value"]).unwrap()).unwrap())
            .collect();
        assert_eq!(per_producer(&java_values), per_producer(&committed));
    }
}
