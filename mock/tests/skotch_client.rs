//! skotch's own producer (idempotent, acks=all) and consumer against a
//! 3-broker mock: 10,000 records to a 3-partition topic come back in
//! order, where the deliveries said, byte-identical; the request logs show
//! the APIs and versions the client used.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch_client::{
    Acks, Client, ClientConfig, Consumer, ConsumerConfig, Header, Offset, Producer, ProducerConfig,
    ProducerRecord,
};
use skotch_mock::MockCluster;
use skotch_protocol::messages::ApiKey;

const COUNT: usize = 10_000;
const BASE_TS: i64 = 1_700_000_000_000;

fn record(i: usize) -> ProducerRecord {
    ProducerRecord {
        topic: "roundtrip".into(),
        partition: None,
        key: Some(Bytes::from(format!("key-{}", i % 100))),
        value: (!i.is_multiple_of(7)).then(|| Bytes::from(format!("value-{i}"))),
        headers: vec![
            Header::new("h", "a"),
            Header::new("h", "b"),
            Header::new("n", i.to_string()),
            Header {
                key: "nil".into(),
                value: None,
            },
        ],
        timestamp: Some(BASE_TS + i as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("roundtrip", 3, 3).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
        .await
        .expect("connect");

    let producer = Producer::new(
        client.clone(),
        ProducerConfig {
            acks: Acks::All,
            enable_idempotence: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let mut deliveries = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        deliveries.push(producer.send(record(i)).await.expect("send"));
    }
    producer.flush().await.expect("flush");
    let mut placed = Vec::with_capacity(COUNT);
    for d in deliveries {
        let md = d.await.expect("delivered");
        placed.push((md.partition, md.offset));
    }
    let mut per_partition: HashMap<i32, i64> = HashMap::new();
    for &(p, _) in &placed {
        *per_partition.entry(p).or_default() += 1;
    }
    for (p, n) in &per_partition {
        assert_eq!(cluster.high_watermark("roundtrip", *p), Some(*n));
    }

    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic("roundtrip", Offset::Earliest)
        .await
        .expect("assign");
    let mut got: Vec<Option<skotch_client::ConsumerRecord>> = vec![None; COUNT];
    let mut received = 0;
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(consumer.at_end() && received == COUNT) {
        assert!(
            Instant::now() < deadline,
            "timed out with {received} records"
        );
        for r in consumer.poll().await.expect("poll").records {
            let prev = last_offset.insert(r.partition, r.offset);
            assert_eq!(prev.map_or(0, |p| p + 1), r.offset, "offsets are dense");
            let n: usize = std::str::from_utf8(r.headers[2].value.as_ref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert!(got[n].is_none(), "record {n} delivered twice");
            got[n] = Some(r);
            received += 1;
        }
    }
    for (i, r) in got.into_iter().enumerate() {
        let r = r.unwrap();
        let want = record(i);
        assert_eq!((r.partition, r.offset), placed[i], "record {i}");
        assert_eq!(r.key, want.key);
        assert_eq!(r.value, want.value);
        assert_eq!(r.headers, want.headers);
        assert_eq!(r.timestamp, want.timestamp.unwrap());
    }
    // Records per key kept their order: each key's records went to one
    // partition, in send order.
    let mut key_partition: HashMap<usize, i32> = HashMap::new();
    for (i, (p, _)) in placed.iter().enumerate() {
        assert_eq!(*key_partition.entry(i % 100).or_insert(*p), *p);
    }

    // What the client asked, as the brokers logged it.
    let mut apis = HashMap::new();
    for b in cluster.broker_ids() {
        for r in cluster.request_log(b) {
            assert_eq!(r.client_id.as_deref(), Some("skotch"));
            *apis.entry(r.api().unwrap()).or_insert(0) += 1;
        }
    }
    for api in [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::InitProducerId,
        ApiKey::Produce,
        ApiKey::ListOffsets,
        ApiKey::Fetch,
    ] {
        assert!(apis.contains_key(&api), "{api} not used: {apis:?}");
    }
    producer.close().await.expect("close");
    consumer.close();
    cluster.shutdown().await;
}

/// skotch's Admin creates, lists and deletes topics on the mock, and the
/// mock's errors reach it (TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR,
/// UNKNOWN_TOPIC_OR_PARTITION).
#[tokio::test]
async fn admin_creates_lists_and_deletes_topics() {
    use skotch_client::{Admin, NewTopic};
    let cluster = MockCluster::start(2).await.unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
        .await
        .expect("connect");
    let admin = Admin::new(client);
    let results = admin
        .create_topics(&[
            NewTopic::new("a", 4, 2),
            NewTopic::new("b", 1, 3),
            NewTopic::new("c", -1, -1),
        ])
        .await
        .expect("create");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("INVALID_REPLICATION_FACTOR") || err.contains("replicat"),
        "{err}"
    );
    let again = admin
        .create_topics(&[NewTopic::new("a", 1, 1)])
        .await
        .unwrap();
    assert!(again[0].is_err());

    let topics = admin.list_topics().await.expect("list");
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(topics[0].partitions.len(), 4);
    assert_eq!(topics[1].partitions.len(), 1, "num.partitions default");
    assert!(topics.iter().all(|t| t.id != skotch_protocol::Uuid::ZERO));

    let deleted = admin
        .delete_topics(&["a".to_string(), "zzz".to_string()])
        .await
        .expect("delete");
    assert!(deleted[0].is_ok());
    assert!(deleted[1].is_err());
    assert_eq!(cluster.leader("a", 0), None);
}
