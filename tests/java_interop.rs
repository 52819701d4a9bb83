//! Interop with the Java client (kafka-clients from the same Maven download
//! as the broker), both directions: the Java consumer reads skotch's
//! records, skotch reads the Java producer's, keys, values and headers
//! intact, and keyed records land on the partition the Java partitioner
//! picks.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch::client::{
    Consumer, ConsumerConfig, Header, Offset, Producer, ProducerConfig, ProducerRecord,
};

const COUNT: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_consumer_reads_skotch_records() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "to-java", 6).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..COUNT {
        let rec = ProducerRecord {
            topic: topic.clone(),
            key: Some(Bytes::from(format!("key-{}", i % 500))),
            value: (i % 10 != 3).then(|| Bytes::from(format!("value-{i}"))),
            headers: vec![
                Header::new("h", "a"),
                Header::new("h", "b"),
                Header::new("n", i.to_string()),
            ],
            ..Default::default()
        };
        deliveries.push(producer.send(rec).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    for d in deliveries {
        d.await.expect("delivered");
    }

    let bootstrap = common::bootstrap();
    let out = common::java(
        "JavaConsumer",
        &[
            &bootstrap,
            &topic,
            &COUNT.to_string(),
            "--timeout-ms",
            "60000",
        ],
    );
    let records = common::json_lines(&out);
    assert_eq!(records.len(), COUNT);

    // What the Java partitioner picks for each key.
    let keys: Vec<String> = (0..500).map(|k| format!("key-{k}")).collect();
    let mut args = vec!["6"];
    args.extend(keys.iter().map(String::as_str));
    let java_partition: HashMap<String, i64> =
        common::json_lines(&common::java("JavaPartitioner", &args))
            .into_iter()
            .map(|v| {
                (
                    v["key"].as_str().unwrap().to_string(),
                    v["partition"].as_i64().unwrap(),
                )
            })
            .collect();

    let mut seen = vec![false; COUNT];
    for r in &records {
        let headers = r["headers"].as_array().unwrap();
        let pairs: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    common::b64(&h[1]).unwrap(),
                )
            })
            .collect();
        assert_eq!(pairs[0], ("h".to_string(), b"a".to_vec()));
        assert_eq!(pairs[1], ("h".to_string(), b"b".to_vec()));
        let i: usize = String::from_utf8(pairs[2].1.clone())
            .unwrap()
            .parse()
            .unwrap();
        assert!(!seen[i]);
        seen[i] = true;
        let key = String::from_utf8(common::b64(&r["key"]).unwrap()).unwrap();
        assert_eq!(key, format!("key-{}", i % 500));
        let want_value = (i % 10 != 3).then(|| format!("value-{i}").into_bytes());
        assert_eq!(common::b64(&r["value"]), want_value);
        assert_eq!(
            r["partition"].as_i64().unwrap(),
            java_partition[&key],
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_reads_java_producer_records() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "from-java", 6).await;
    let bootstrap = common::bootstrap();
    let produced = common::json_lines(&common::java(
        "JavaProducer",
        &[
            &bootstrap,
            &topic,
            &COUNT.to_string(),
            "--null-every",
            "9",
            "--headers",
        ],
    ));
    assert_eq!(produced.len(), COUNT);

    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(&topic, Offset::Earliest)
        .await
        .unwrap();
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(consumer.at_end() && got.len() == COUNT) {
        assert!(Instant::now() < deadline, "timed out with {}", got.len());
        for r in consumer.poll().await.unwrap().records {
            got.insert((r.partition, r.offset), r);
        }
    }
    for p in produced {
        let i = p["i"].as_u64().unwrap() as usize;
        let at = (
            p["partition"].as_i64().unwrap() as i32,
            p["offset"].as_i64().unwrap(),
        );
        let r = &got[&at];
        assert_eq!(r.key.as_deref(), p["key"].as_str().map(str::as_bytes));
        assert_eq!(r.value.as_deref(), p["value"].as_str().map(str::as_bytes));
        assert_eq!(r.timestamp, p["timestamp"].as_i64().unwrap());
        assert_eq!(
            r.headers,
            vec![
                Header::new("h", "a"),
                Header::new("h", "b"),
                Header::new("n", i.to_string())
            ]
        );
    }
}
