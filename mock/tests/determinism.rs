//! Under tokio's paused clock, over in-memory connections, the same test
//! run twice gives the same request log and the same answers, byte for
//! byte: topic ids, producer ids, member ids, fetch session ids and
//! coordinators come from counters and hashes, not from randomness or the
//! wall clock, and waits (long polls, latency faults, rebalances) run on
//! tokio's clock.

use std::time::Duration;

use bytes::Bytes;
use skotch_mock::{ApiKey, ErrorCode, Fault, LoggedRequest, MockCluster};
use skotch_protocol::messages::create_topics_request::CreatableTopic;
use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use skotch_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use skotch_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use skotch_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, FetchRequest, FindCoordinatorRequest,
    InitProducerIdRequest, JoinGroupRequest, Message, MetadataRequest, ProduceRequest, Request,
};
use tokio::io::DuplexStream;

mod common;

use common::RawConn;

type Conn = RawConn<DuplexStream>;

/// Send a request and keep its answer as the raw frame.
async fn call<R: Request>(conn: &mut Conn, req: &R, version: i16) -> Bytes {
    conn.send(req, version).await;
    receive(conn).await
}

async fn receive(conn: &mut Conn) -> Bytes {
    conn.read_frame().await.expect("an answer")
}

fn join(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 5_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"\x00\x00"),
        }],
        ..Default::default()
    }
}

/// A scenario touching every waiting path; returns every answer and every
/// broker's request log.
async fn scenario() -> (Vec<Bytes>, Vec<Vec<LoggedRequest>>) {
    let cluster = MockCluster::builder()
        .brokers(3)
        .in_memory()
        .start()
        .await
        .unwrap();
    let mut answers = Vec::new();
    let mut c0 = Conn::new(&cluster, 0);
    answers.push(
        call(
            &mut c0,
            &ApiVersionsRequest {
                client_software_name: "determinism".into(),
                client_software_version: "1".into(),
            },
            3,
        )
        .await,
    );
    answers.push(
        call(
            &mut c0,
            &CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: "t".into(),
                    num_partitions: 3,
                    replication_factor: 2,
                    ..Default::default()
                }],
                timeout_ms: 1_000,
                ..Default::default()
            },
            7,
        )
        .await,
    );
    answers.push(call(&mut c0, &MetadataRequest::default(), 12).await);
    let pid_answer = call(
        &mut c0,
        &InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            ..Default::default()
        },
        4,
    )
    .await;
    answers.push(pid_answer);
    let leader = cluster.leader("t", 0).unwrap();
    let mut cl = Conn::new(&cluster, leader);
    // A long poll that nobody satisfies: it waits its 500 ms of tokio time.
    let fetch = FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                current_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    answers.push(call(&mut cl, &fetch, 12).await);
    // Latency on the next produce, and an injected error on the one after.
    cluster
        .inject(Fault::latency(ApiKey::Produce, Duration::from_millis(250)))
        .unwrap();
    for seq in 0..3 {
        if seq == 2 {
            cluster
                .inject(Fault::error(
                    ApiKey::Produce,
                    ErrorCode::NOT_ENOUGH_REPLICAS,
                ))
                .unwrap();
        }
        let produce = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1_000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(common::batch(5, 1_000, 1_000, 0, seq * 5)),
                }],
                ..Default::default()
            }],
        };
        answers.push(call(&mut cl, &produce, 11).await);
    }
    answers.push(call(&mut cl, &fetch, 12).await);
    // Two members join a group; the second arrives during the first's
    // rebalance and the coordinator holds both JoinGroups.
    answers.push(
        call(
            &mut c0,
            &FindCoordinatorRequest {
                key: "g".into(),
                ..Default::default()
            },
            3,
        )
        .await,
    );
    let coordinator = cluster.coordinator("g").unwrap();
    let mut m1 = Conn::new(&cluster, coordinator);
    let mut m2 = Conn::new(&cluster, coordinator);
    let first = call(&mut m1, &join(""), 5).await;
    answers.push(first.clone());
    let member_id = |frame: &Bytes| {
        let mut r = skotch_protocol::Reader::new(frame.clone());
        r.i32("correlation_id").unwrap();
        skotch_protocol::messages::JoinGroupResponse::decode(&mut r, 5)
            .unwrap()
            .member_id
    };
    let id1 = member_id(&first);
    m1.send(&join(&id1), 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = call(&mut m2, &join(""), 5).await;
    answers.push(second.clone());
    let id2 = member_id(&second);
    m2.send(&join(&id2), 5).await;
    answers.push(receive(&mut m1).await);
    answers.push(receive(&mut m2).await);
    let logs = cluster
        .broker_ids()
        .iter()
        .map(|b| cluster.request_log(*b))
        .collect();
    cluster.shutdown().await;
    (answers, logs)
}

#[tokio::test(start_paused = true)]
async fn the_same_test_twice_gives_the_same_log_and_answers() {
    let start = tokio::time::Instant::now();
    let (answers1, logs1) = scenario().await;
    // The long poll (500 ms), the latency (250 ms) and the rebalance ran
    // on tokio's clock, which the paused runtime advanced at once.
    assert!(start.elapsed() >= Duration::from_millis(850));
    let (answers2, logs2) = scenario().await;
    assert!(logs1.iter().map(Vec::len).sum::<usize>() > 10);
    assert_eq!(logs1, logs2);
    assert_eq!(answers1.len(), answers2.len());
    for (i, (a, b)) in answers1.iter().zip(&answers2).enumerate() {
        assert_eq!(a, b, "answer {i} differs");
    }
}
