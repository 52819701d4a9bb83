//! Fetch sessions (KIP-227), OffsetForLeaderEpoch (KIP-101/279/320),
//! isolation levels, CreatePartitions (KIP-195) and CreateTopics' manual
//! assignments on the mock: by hand with raw requests, and through
//! skotch's consumer and admin client.

mod common;

use std::time::Duration;

use common::{batch, RawConn};
use skotch_client::{Admin, Client, ClientConfig, Consumer, ConsumerConfig, Offset};
use skotch_mock::{ApiKey, Fault, MockCluster};
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use skotch_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic,
};
use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use skotch_protocol::messages::fetch_response::PartitionData;
use skotch_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use skotch_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use skotch_protocol::messages::offset_for_leader_epoch_response::EpochEndOffset;
use skotch_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, FetchResponse,
    ListOffsetsRequest, MetadataRequest, OffsetForLeaderEpochRequest,
};
use skotch_protocol::record::RecordBatch;
use skotch_protocol::Uuid;

/// Produce `n` records to `topic-partition` through `conn` (v11, acks=all).
async fn produce(conn: &mut RawConn, topic: &str, partition: i32, n: usize) -> i64 {
    let req = common::produce_request(topic, partition, batch(n, 1_000, -1, -1, -1));
    let resp = conn.call(&req, 11).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "produce to {topic}-{partition}");
    p.base_offset
}

/// A fetch (v12, by name) of `partitions` (index, offset), in session
/// `id`/`epoch`, forgetting `forget`.
fn fetch(id: i32, epoch: i32, partitions: &[(i32, i64)], forget: &[i32]) -> FetchRequest {
    FetchRequest {
        max_wait_ms: 50,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_id: id,
        session_epoch: epoch,
        topics: if partitions.is_empty() {
            Vec::new()
        } else {
            vec![FetchTopic {
                topic: "t".into(),
                partitions: partitions
                    .iter()
                    .map(|&(p, offset)| FetchPartition {
                        partition: p,
                        fetch_offset: offset,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }]
        },
        forgotten_topics_data: if forget.is_empty() {
            Vec::new()
        } else {
            vec![ForgottenTopic {
                topic: "t".into(),
                partitions: forget.to_vec(),
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

/// The answered partitions: (index, error, high watermark, records bytes).
fn answered(resp: &FetchResponse) -> Vec<(i32, i16, i64, usize)> {
    resp.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p: &PartitionData| {
            (
                p.partition_index,
                p.error_code,
                p.high_watermark,
                p.records.as_ref().map_or(0, |r| r.len()),
            )
        })
        .collect()
}

fn indexes(resp: &FetchResponse) -> Vec<i32> {
    answered(resp).into_iter().map(|p| p.0).collect()
}

/// One broker, topic `t` with three partitions, and a connection.
async fn three_partitions() -> (MockCluster, RawConn) {
    let cluster = MockCluster::start(1).await.unwrap();
    cluster.create_topic("t", 3, 1).unwrap();
    let conn = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    (cluster, conn)
}

#[tokio::test]
async fn sessions_answer_only_what_changed() {
    let (_cluster, mut conn) = three_partitions().await;
    produce(&mut conn, "t", 0, 2).await;

    // A full fetch with epoch 0 opens a session and answers everything.
    let resp = conn
        .call(&fetch(0, 0, &[(0, 0), (1, 0), (2, 0)], &[]), 12)
        .await;
    assert_eq!(resp.error_code, 0);
    let id = resp.session_id;
    assert_ne!(id, 0, "a session was opened");
    let got = answered(&resp);
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].0, got[0].2), (0, 2));
    assert!(got[0].3 > 0, "partition 0 has records");

    // Epoch 1, partition 0 moved on; new data on partition 1 only: the
    // answer carries partition 1 alone (0 and 2 did not change).
    produce(&mut conn, "t", 1, 3).await;
    let resp = conn.call(&fetch(id, 1, &[(0, 2)], &[]), 12).await;
    assert_eq!((resp.error_code, resp.session_id), (0, id));
    let got = answered(&resp);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].2), (1, 3));
    assert!(got[0].3 > 0);

    // Epoch 2: nothing changed (partition 1 moved past its data): an empty
    // answer after the long poll.
    let resp = conn.call(&fetch(id, 2, &[(1, 3)], &[]), 12).await;
    assert_eq!((resp.error_code, resp.session_id), (0, id));
    assert!(resp.responses.is_empty(), "{:?}", answered(&resp));

    // Epoch 3 forgets partition 2; data on 1 and 2: only 1 is answered.
    produce(&mut conn, "t", 1, 1).await;
    produce(&mut conn, "t", 2, 1).await;
    let resp = conn.call(&fetch(id, 3, &[], &[2]), 12).await;
    assert_eq!(indexes(&resp), [1]);

    // Epoch 4 adds partition 2 back: new partitions are always answered.
    let resp = conn.call(&fetch(id, 4, &[(1, 4), (2, 0)], &[]), 12).await;
    assert_eq!(indexes(&resp), [2]);

    // A repeated epoch is INVALID_FETCH_SESSION_EPOCH, answered at once
    // with no partition and no session; the session survives it.
    let resp = conn.call(&fetch(id, 4, &[], &[]), 12).await;
    assert_eq!(
        (resp.error_code, resp.session_id),
        (ErrorCode::INVALID_FETCH_SESSION_EPOCH.code(), 0)
    );
    assert!(resp.responses.is_empty());
    let resp = conn.call(&fetch(id, 5, &[(2, 1)], &[]), 12).await;
    assert_eq!((resp.error_code, resp.session_id), (0, id));

    // An unknown session id.
    let resp = conn.call(&fetch(id + 1000, 1, &[], &[]), 12).await;
    assert_eq!(
        (resp.error_code, resp.session_id),
        (ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code(), 0)
    );

    // Epoch -1 closes the session and fetches without one.
    let resp = conn.call(&fetch(id, -1, &[(0, 0)], &[]), 12).await;
    assert_eq!((resp.error_code, resp.session_id), (0, 0));
    assert_eq!(indexes(&resp), [0]);
    let resp = conn.call(&fetch(id, 6, &[], &[]), 12).await;
    assert_eq!(
        resp.error_code,
        ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code()
    );
}

#[tokio::test]
async fn full_fetch_replaces_a_session_and_forgetting_all_closes_it() {
    let (_cluster, mut conn) = three_partitions().await;
    let first = conn.call(&fetch(0, 0, &[(0, 0)], &[]), 12).await.session_id;
    assert_ne!(first, 0);
    // Epoch 0 naming the session: the old one closes, a new one opens.
    let second = conn.call(&fetch(first, 0, &[(1, 0)], &[]), 12).await;
    assert_ne!(second.session_id, 0);
    assert_ne!(second.session_id, first);
    let resp = conn.call(&fetch(first, 1, &[], &[]), 12).await;
    assert_eq!(
        resp.error_code,
        ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code()
    );
    // Forgetting every partition closes the session: answered without one.
    let id = second.session_id;
    let resp = conn.call(&fetch(id, 1, &[], &[1]), 12).await;
    assert_eq!((resp.error_code, resp.session_id), (0, 0));
    let resp = conn.call(&fetch(id, 2, &[], &[]), 12).await;
    assert_eq!(
        resp.error_code,
        ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code()
    );
}

#[tokio::test]
async fn sessions_by_topic_id_and_isolation_level() {
    let (_cluster, mut conn) = three_partitions().await;
    produce(&mut conn, "t", 0, 2).await;
    let md = conn
        .call(
            &MetadataRequest {
                topics: None,
                ..Default::default()
            },
            12,
        )
        .await;
    let id = md.topics[0].topic_id;
    assert_ne!(id, Uuid::ZERO);
    let by_id = |session: i32, epoch: i32, isolation: i8| FetchRequest {
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        isolation_level: isolation,
        session_id: session,
        session_epoch: epoch,
        topics: vec![FetchTopic {
            topic_id: id,
            partitions: vec![FetchPartition {
                partition: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    // v16, read_committed: the last stable offset is the high watermark
    // and no transaction was aborted (the mock has none).
    let resp = conn.call(&by_id(0, 0, 1), 16).await;
    let session = resp.session_id;
    assert_ne!(session, 0);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(resp.responses[0].topic_id, id);
    assert_eq!((p.high_watermark, p.last_stable_offset), (2, 2));
    assert_eq!(p.aborted_transactions, Some(Vec::new()));
    // read_uncommitted: null aborted transactions, as a broker sends.
    let resp = conn.call(&by_id(0, -1, 0), 16).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (p.last_stable_offset, p.aborted_transactions.clone()),
        (2, None)
    );
    // A session opened with topic ids cannot go on without them (v12).
    let resp = conn.call(&fetch(session, 1, &[], &[]), 12).await;
    assert_eq!(
        resp.error_code,
        ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR.code()
    );
    // An unknown topic id.
    let mut req = by_id(0, -1, 0);
    req.topics[0].topic_id = Uuid([7; 16]);
    let resp = conn.call(&req, 16).await;
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_ID.code()
    );
}

#[tokio::test]
async fn fetch_partition_fault_and_not_leader_endpoint() {
    let cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 3, 2).unwrap();
    cluster.move_leader("t", 0, 0).unwrap();
    cluster.move_leader("t", 1, 0).unwrap();
    cluster.move_leader("t", 2, 1).unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    cluster
        .inject(Fault::error(ApiKey::Fetch, ErrorCode::KAFKA_STORAGE_ERROR).on_partition("t", 1))
        .unwrap();
    let md = conn
        .call(
            &MetadataRequest {
                topics: None,
                ..Default::default()
            },
            12,
        )
        .await;
    let mut req = fetch(0, -1, &[(0, 0), (1, 0), (2, 0)], &[]);
    req.max_wait_ms = 0;
    req.topics[0].topic_id = md.topics[0].topic_id;
    let resp = conn.call(&req, 16).await;
    let got = answered(&resp);
    assert_eq!(got[0].1, 0);
    assert_eq!(got[1].1, ErrorCode::KAFKA_STORAGE_ERROR.code());
    assert_eq!(got[2].1, ErrorCode::NOT_LEADER_OR_FOLLOWER.code());
    // v16: the current leader and its endpoint (KIP-951).
    let p2 = &resp.responses[0].partitions[2];
    assert_eq!(p2.current_leader.leader_id, 1);
    assert_eq!(resp.node_endpoints.len(), 1);
    assert_eq!(resp.node_endpoints[0].node_id, 1);
    // The fault was once: the next fetch is clean.
    let resp = conn.call(&req, 16).await;
    assert_eq!(answered(&resp)[1].1, 0);
}

/// skotch's consumer keeps a fetch session: after the first full fetch,
/// its fetches are incremental (a session id and an epoch above 0) and
/// all three partitions' records arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_consumer_fetches_incrementally() {
    let (cluster, mut conn) = three_partitions().await;
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
        .await
        .expect("connect");
    let mut consumer = Consumer::new(client, ConsumerConfig::default());
    consumer
        .assign_topic("t", Offset::Earliest)
        .await
        .expect("assign");
    let mut received = [0usize; 3];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for round in 0..5 {
        for p in 0..3 {
            produce(&mut conn, "t", p, 2).await;
        }
        let want = 2 * (round + 1);
        while received.iter().any(|n| *n < want) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out at round {round}: {received:?}"
            );
            for r in consumer.poll().await.expect("poll").records {
                received[r.partition as usize] += 1;
            }
        }
    }
    assert_eq!(received, [10, 10, 10]);
    consumer.close();

    let fetches: Vec<String> = cluster
        .request_log(0)
        .into_iter()
        .filter(|r| r.api() == Some(ApiKey::Fetch))
        .map(|r| r.summary)
        .collect();
    assert!(fetches[0].contains("session=0/0"), "{}", fetches[0]);
    // "session=ID/EPOCH" in each summary.
    let session = |s: &str| -> (i32, i32) {
        let rest = s.split("session=").nth(1).expect("a session field");
        let field = rest.split(' ').next().unwrap();
        let (id, epoch) = field.split_once('/').unwrap();
        (id.parse().unwrap(), epoch.parse().unwrap())
    };
    let incremental = fetches
        .iter()
        .filter(|s| {
            let (id, epoch) = session(s);
            id != 0 && epoch > 0
        })
        .count();
    assert!(
        incremental >= 4,
        "incremental fetches in a session: {fetches:#?}"
    );
    cluster.shutdown().await;
}

fn epoch_request(topic: &str, current: i32, epoch: i32) -> OffsetForLeaderEpochRequest {
    OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: topic.into(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                current_leader_epoch: current,
                leader_epoch: epoch,
            }],
        }],
    }
}

async fn end_offset(conn: &mut RawConn, current: i32, epoch: i32) -> EpochEndOffset {
    let resp = conn.call(&epoch_request("t", current, epoch), 4).await;
    resp.topics[0].partitions[0].clone()
}

#[tokio::test]
async fn offset_for_leader_epoch_after_leader_moves() {
    let cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 1, 2).unwrap();
    cluster.move_leader("t", 0, 0).unwrap(); // epoch 1
    let mut b0 = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    let mut b1 = RawConn::connect(&cluster.broker_addr(1).unwrap()).await;
    produce(&mut b0, "t", 0, 3).await; // 0..3 at epoch 1
    cluster.move_leader("t", 0, 1).unwrap(); // epoch 2
    produce(&mut b1, "t", 0, 2).await; // 3..5 at epoch 2
    cluster.move_leader("t", 0, 0).unwrap(); // epoch 3, no data
    cluster.move_leader("t", 0, 1).unwrap(); // epoch 4, no data

    // The batches carry the epoch they were written in.
    let mut req = fetch(0, -1, &[(0, 3)], &[]);
    req.max_wait_ms = 0;
    let resp = b1.call(&req, 12).await;
    let data = resp.responses[0].partitions[0].records.clone().unwrap();
    let b = RecordBatch::decode(data, true).unwrap();
    assert_eq!((b.base_offset, b.partition_leader_epoch), (3, 2));

    let e = |r: &EpochEndOffset| (r.error_code, r.leader_epoch, r.end_offset);
    // Epoch 0 wrote nothing and precedes the first cached epoch: itself
    // and where epoch 1 starts (LeaderEpochFileCache.endOffsetFor).
    assert_eq!(e(&end_offset(&mut b1, -1, 0).await), (0, 0, 0));
    assert_eq!(e(&end_offset(&mut b1, -1, 1).await), (0, 1, 3));
    assert_eq!(e(&end_offset(&mut b1, -1, 2).await), (0, 2, 5));
    // Epoch 3 wrote nothing: the largest epoch below it with data.
    assert_eq!(e(&end_offset(&mut b1, 4, 3).await), (0, 2, 5));
    // The current epoch ends at the log end.
    assert_eq!(e(&end_offset(&mut b1, 4, 4).await), (0, 4, 5));
    // Beyond every epoch, or -1: undefined, without an error.
    assert_eq!(e(&end_offset(&mut b1, -1, 9).await), (0, -1, -1));
    assert_eq!(e(&end_offset(&mut b1, -1, -1).await), (0, -1, -1));
    // KIP-320 checks of the caller's current epoch, then leadership.
    assert_eq!(
        end_offset(&mut b1, 3, 2).await.error_code,
        ErrorCode::FENCED_LEADER_EPOCH.code()
    );
    assert_eq!(
        end_offset(&mut b1, 5, 2).await.error_code,
        ErrorCode::UNKNOWN_LEADER_EPOCH.code()
    );
    assert_eq!(
        end_offset(&mut b0, 4, 2).await.error_code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER.code()
    );
    let resp = b1.call(&epoch_request("nope", -1, 0), 4).await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
    );
    // Fault hook per partition.
    cluster
        .inject(Fault::error(
            ApiKey::OffsetForLeaderEpoch,
            ErrorCode::KAFKA_STORAGE_ERROR,
        ))
        .unwrap();
    assert_eq!(
        end_offset(&mut b1, -1, 2).await.error_code,
        ErrorCode::KAFKA_STORAGE_ERROR.code()
    );

    // ListOffsets: latest has the current epoch, earliest the first one,
    // a timestamp its batch's.
    let list = |ts: i64| ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp: ts,
            }],
        }],
        ..Default::default()
    };
    for (ts, want) in [(-1, (5, 4)), (-2, (0, 1)), (1_000, (0, 1))] {
        let resp = b1.call(&list(ts), 7).await;
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset, p.leader_epoch),
            (0, want.0, want.1),
            "{ts}"
        );
    }
    cluster
        .inject(
            Fault::error(ApiKey::ListOffsets, ErrorCode::KAFKA_STORAGE_ERROR).on_partition("t", 0),
        )
        .unwrap();
    let resp = b1.call(&list(-1), 7).await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ErrorCode::KAFKA_STORAGE_ERROR.code()
    );
}

#[tokio::test]
async fn admin_adds_partitions() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 2, 2).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
        .await
        .expect("connect");
    let admin = Admin::new(client);
    admin.create_partitions("t", 5).await.expect("grow to 5");
    for p in 2..5 {
        let leader = cluster.leader("t", p).expect("a new partition");
        let mut conn = RawConn::connect(&cluster.broker_addr(leader).unwrap()).await;
        assert_eq!(produce(&mut conn, "t", p, 1).await, 0);
    }
    let topics = admin.list_topics().await.expect("list");
    assert_eq!(topics[0].partitions.len(), 5);
    let err = admin.create_partitions("t", 5).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::INVALID_PARTITIONS), "{err}");
    let err = admin.create_partitions("t", 3).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::INVALID_PARTITIONS), "{err}");
    let err = admin.create_partitions("nope", 3).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
}

fn grow(topic: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic {
        name: topic.into(),
        count,
        assignments: assignments.map(|a| {
            a.into_iter()
                .map(|broker_ids| CreatePartitionsAssignment { broker_ids })
                .collect()
        }),
    }
}

#[tokio::test]
async fn create_partitions_errors() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 1, 2).unwrap();
    cluster.create_topic("u", 1, 1).unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    let call = |topics: Vec<CreatePartitionsTopic>, validate_only: bool| CreatePartitionsRequest {
        topics,
        timeout_ms: 1_000,
        validate_only,
    };
    let codes = |resp: &skotch_protocol::messages::CreatePartitionsResponse| {
        resp.results
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    ErrorCode::from(r.error_code).name().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let resp = conn
        .call(
            &call(
                vec![
                    grow("t", 3, Some(vec![vec![1, 2]])), // one list for two
                    grow("u", 2, Some(vec![vec![0, 1]])), // rf 2, topic has 1
                    grow("nope", 2, None),                // unknown
                    grow("t", 1, None),                   // duplicate name
                ],
                false,
            ),
            3,
        )
        .await;
    let got = codes(&resp);
    assert!(
        got.contains(&("t".into(), "INVALID_REQUEST".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("u".into(), "INVALID_REPLICA_ASSIGNMENT".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("nope".into(), "UNKNOWN_TOPIC_OR_PARTITION".into())),
        "{got:?}"
    );
    assert_eq!(got.len(), 3);

    for (topic, assignment, code) in [
        ("t", vec![vec![1, 2], vec![]], "INVALID_REPLICA_ASSIGNMENT"),
        (
            "t",
            vec![vec![1, 2], vec![7, 1]],
            "INVALID_REPLICA_ASSIGNMENT",
        ),
        (
            "t",
            vec![vec![1, 2], vec![1, 1]],
            "INVALID_REPLICA_ASSIGNMENT",
        ),
    ] {
        let resp = conn
            .call(
                &call(vec![grow(topic, 3, Some(assignment.clone()))], false),
                3,
            )
            .await;
        assert_eq!(
            codes(&resp),
            [(topic.to_string(), code.to_string())],
            "{assignment:?}"
        );
    }
    let resp = conn
        .call(&call(vec![grow("u", 1_000_000, None)], false), 3)
        .await;
    assert_eq!(codes(&resp)[0].1, "INVALID_PARTITIONS");

    // validate_only checks without applying.
    let resp = conn.call(&call(vec![grow("t", 3, None)], true), 3).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(cluster.leader("t", 1), None);

    // A manual assignment: the first replica that is up leads.
    let resp = conn
        .call(
            &call(
                vec![grow("t", 3, Some(vec![vec![2, 0], vec![1, 2]]))],
                false,
            ),
            3,
        )
        .await;
    assert_eq!(resp.results[0].error_code, 0, "{:?}", resp.results[0]);
    assert_eq!(cluster.leader("t", 1), Some(2));
    assert_eq!(cluster.leader("t", 2), Some(1));

    // A request-level fault answers every topic and applies nothing.
    cluster
        .inject(Fault::error(
            ApiKey::CreatePartitions,
            ErrorCode::NOT_CONTROLLER,
        ))
        .unwrap();
    let resp = conn.call(&call(vec![grow("u", 4, None)], false), 3).await;
    assert_eq!(codes(&resp)[0].1, "NOT_CONTROLLER");
    assert_eq!(cluster.leader("u", 1), None);
}

#[tokio::test]
async fn create_topics_manual_assignments() {
    let cluster = MockCluster::start(3).await.unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    let topic = |name: &str, n: i32, rf: i16, a: Vec<(i32, Vec<i32>)>| CreatableTopic {
        name: name.into(),
        num_partitions: n,
        replication_factor: rf,
        assignments: a
            .into_iter()
            .map(|(partition_index, broker_ids)| CreatableReplicaAssignment {
                partition_index,
                broker_ids,
            })
            .collect(),
        ..Default::default()
    };
    let req = CreateTopicsRequest {
        topics: vec![
            topic("a", 2, -1, vec![(0, vec![0, 1])]),
            topic("b", -1, 2, vec![(0, vec![0, 1])]),
            topic("c", -1, -1, vec![(0, vec![])]),
            topic("d", -1, -1, vec![(0, vec![0]), (2, vec![1])]),
            topic("e", -1, -1, vec![(0, vec![0]), (0, vec![1])]),
            topic("f", -1, -1, vec![(0, vec![0]), (1, vec![1, 2])]),
            // An empty list is no manual assignment: the defaults apply.
            topic("g", -1, -1, vec![]),
            topic("h", -1, -1, vec![(1, vec![2, 0]), (0, vec![1, 2])]),
            topic("i", 0, 1, vec![]),
            topic("j", 1, 0, vec![]),
        ],
        timeout_ms: 1_000,
        validate_only: false,
    };
    let resp = conn.call(&req, 7).await;
    let got: Vec<(String, &str)> = resp
        .topics
        .iter()
        .map(|t| (t.name.clone(), ErrorCode::from(t.error_code).name()))
        .collect();
    let want = [
        ("a", "INVALID_REQUEST"),
        ("b", "INVALID_REQUEST"),
        ("c", "INVALID_REPLICA_ASSIGNMENT"),
        ("d", "INVALID_REPLICA_ASSIGNMENT"),
        ("e", "INVALID_REPLICA_ASSIGNMENT"),
        ("f", "INVALID_REPLICA_ASSIGNMENT"),
        ("g", "NONE"),
        ("h", "NONE"),
        ("i", "INVALID_PARTITIONS"),
        ("j", "INVALID_REPLICATION_FACTOR"),
    ];
    let want: Vec<(String, &str)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(got, want);
    assert!(cluster.leader("g", 0).is_some());
    assert_eq!(cluster.leader("g", 1), None, "one partition by default");
    // Assignments in partition order, whatever order they came in.
    assert_eq!(cluster.leader("h", 0), Some(1));
    assert_eq!(cluster.leader("h", 1), Some(2));
    for name in ["a", "b", "c", "d", "e", "f", "i", "j"] {
        assert_eq!(cluster.leader(name, 0), None, "{name} not created");
    }

    // Fault hooks: request-level for CreateTopics and DeleteTopics.
    cluster
        .inject(Fault::error(
            ApiKey::CreateTopics,
            ErrorCode::NOT_CONTROLLER,
        ))
        .unwrap();
    let resp = conn
        .call(
            &CreateTopicsRequest {
                topics: vec![topic("k", 1, 1, vec![])],
                timeout_ms: 1_000,
                validate_only: false,
            },
            7,
        )
        .await;
    assert_eq!(resp.topics[0].error_code, ErrorCode::NOT_CONTROLLER.code());
    assert_eq!(cluster.leader("k", 0), None);
    cluster
        .inject(Fault::error(
            ApiKey::DeleteTopics,
            ErrorCode::NOT_CONTROLLER,
        ))
        .unwrap();
    let delete = DeleteTopicsRequest {
        topic_names: vec!["g".into()],
        timeout_ms: 1_000,
        ..Default::default()
    };
    let resp = conn.call(&delete, 5).await;
    assert_eq!(
        resp.responses[0].error_code,
        ErrorCode::NOT_CONTROLLER.code()
    );
    assert!(cluster.leader("g", 0).is_some(), "not deleted");
    let resp = conn.call(&delete, 5).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(cluster.leader("g", 0), None);
}

/// skotch's consumer follows a leader move: the old leader fences it
/// (NOT_LEADER_OR_FOLLOWER), the new leader confirms its position with
/// OffsetForLeaderEpoch (KIP-320), and consumption goes on without a gap
/// or a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_consumer_validates_its_position_after_a_leader_move() {
    let cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 1, 2).unwrap();
    let first = cluster.leader("t", 0).unwrap();
    let second = 1 - first;
    let mut conn = RawConn::connect(&cluster.broker_addr(first).unwrap()).await;
    produce(&mut conn, "t", 0, 5).await;
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
        .await
        .expect("connect");
    let mut consumer = Consumer::new(client, ConsumerConfig::default());
    consumer
        .assign_topic("t", Offset::Earliest)
        .await
        .expect("assign");
    let mut offsets = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while offsets.len() < 5 {
        assert!(std::time::Instant::now() < deadline, "{offsets:?}");
        offsets.extend(
            consumer
                .poll()
                .await
                .expect("poll")
                .records
                .iter()
                .map(|r| r.offset),
        );
    }
    cluster.move_leader("t", 0, second).unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(second).unwrap()).await;
    produce(&mut conn, "t", 0, 5).await;
    while offsets.len() < 10 {
        assert!(std::time::Instant::now() < deadline, "{offsets:?}");
        offsets.extend(
            consumer
                .poll()
                .await
                .expect("poll")
                .records
                .iter()
                .map(|r| r.offset),
        );
    }
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
    consumer.close();
    let validated = cluster
        .request_log(second)
        .iter()
        .any(|r| r.api() == Some(ApiKey::OffsetForLeaderEpoch));
    assert!(validated, "{:#?}", cluster.request_log(second));
    cluster.shutdown().await;
}
