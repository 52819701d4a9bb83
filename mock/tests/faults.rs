//! Faults and cluster actions, seen through hand-written requests: error
//! codes once / N times / until cleared, narrowed to a partition or a
//! broker; latency; connections dropped before and after the request is
//! applied; silence; throttling; brokers down and up; leader moves,
//! offline partitions and a shrunk ISR.

mod common;

use std::time::{Duration, Instant};

use common::{batch, RawConn};
use skotch_mock::{ApiKey, ErrorCode, Fault, MockCluster, MockError};
use skotch_protocol::messages::metadata_request::MetadataRequestTopic;
use skotch_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use skotch_protocol::messages::{MetadataRequest, MetadataResponse, ProduceRequest};

/// Produce v11 (by topic name), acks as given, one batch of `n` records to
/// each listed partition.
fn produce(topic: &str, partitions: &[i32], n: usize, acks: i16) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: partitions
                .iter()
                .map(|p| PartitionProduceData {
                    index: *p,
                    records: Some(batch(n, 1_000, -1, -1, -1)),
                })
                .collect(),
            ..Default::default()
        }],
    }
}

/// The error code per partition of a produce answer, in request order.
async fn produce_errors(conn: &mut RawConn, req: &ProduceRequest) -> Vec<i16> {
    let resp = conn.call(req, 11).await;
    resp.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect()
}

async fn metadata(conn: &mut RawConn, topic: &str) -> MetadataResponse {
    conn.call(
        &MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..Default::default()
            }]),
            ..Default::default()
        },
        12,
    )
    .await
}

const NOT_LEADER: i16 = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();

/// One broker, topic `t` with `partitions` partitions, a connection.
async fn single(partitions: i32) -> (MockCluster, RawConn) {
    let cluster = MockCluster::start(1).await.unwrap();
    cluster.create_topic("t", partitions, 1).unwrap();
    let conn = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    (cluster, conn)
}

#[tokio::test]
async fn error_once_n_times_and_until_cleared() {
    let (cluster, mut conn) = single(1).await;
    let req = produce("t", &[0], 1, -1);

    cluster
        .inject(Fault::error(
            ApiKey::Produce,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ))
        .unwrap();
    assert_eq!(produce_errors(&mut conn, &req).await, [NOT_LEADER]);
    assert_eq!(produce_errors(&mut conn, &req).await, [0]);
    // The errored request was not applied.
    assert_eq!(cluster.high_watermark("t", 0), Some(1));

    cluster
        .inject(Fault::error(ApiKey::Produce, ErrorCode::NOT_ENOUGH_REPLICAS).times(2))
        .unwrap();
    let code = ErrorCode::NOT_ENOUGH_REPLICAS.code();
    assert_eq!(produce_errors(&mut conn, &req).await, [code]);
    assert_eq!(produce_errors(&mut conn, &req).await, [code]);
    assert_eq!(produce_errors(&mut conn, &req).await, [0]);

    let id = cluster
        .inject(Fault::error(ApiKey::Produce, ErrorCode::REQUEST_TIMED_OUT).always())
        .unwrap();
    let code = ErrorCode::REQUEST_TIMED_OUT.code();
    for _ in 0..5 {
        assert_eq!(produce_errors(&mut conn, &req).await, [code]);
    }
    assert!(cluster.clear_fault(id));
    assert!(!cluster.clear_fault(id));
    assert_eq!(produce_errors(&mut conn, &req).await, [0]);
    assert_eq!(cluster.high_watermark("t", 0), Some(3));

    // A fault for another API does not touch Produce.
    cluster
        .inject(Fault::error(ApiKey::Fetch, ErrorCode::NOT_LEADER_OR_FOLLOWER).always())
        .unwrap();
    assert_eq!(produce_errors(&mut conn, &req).await, [0]);
    cluster.clear_faults();
}

#[tokio::test]
async fn a_partition_fault_errors_only_that_partition_and_counts_requests() {
    let (cluster, mut conn) = single(3).await;
    cluster
        .inject(Fault::error(ApiKey::Produce, ErrorCode::KAFKA_STORAGE_ERROR).on_partition("t", 1))
        .unwrap();
    let req = produce("t", &[0, 1, 2], 2, -1);
    let code = ErrorCode::KAFKA_STORAGE_ERROR.code();
    assert_eq!(produce_errors(&mut conn, &req).await, [0, code, 0]);
    assert_eq!(cluster.high_watermark("t", 0), Some(2));
    assert_eq!(cluster.high_watermark("t", 1), Some(0));
    assert_eq!(cluster.high_watermark("t", 2), Some(2));

    // "Once" is once per request, however many partitions match.
    cluster
        .inject(Fault::error(ApiKey::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER).once())
        .unwrap();
    assert_eq!(
        produce_errors(&mut conn, &req).await,
        [NOT_LEADER, NOT_LEADER, NOT_LEADER]
    );
    assert_eq!(produce_errors(&mut conn, &req).await, [0, 0, 0]);

    // Latency, drops and silence cannot be narrowed to a partition.
    let refused = cluster.inject(Fault::drop_after(ApiKey::Produce).on_partition("t", 0));
    assert!(matches!(refused, Err(MockError::Invalid(_))));
}

#[tokio::test]
async fn a_broker_fault_acts_on_that_broker_only() {
    let cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 1, 2).unwrap();
    let other = 1 - cluster.leader("t", 0).unwrap();
    cluster
        .inject(
            Fault::error(ApiKey::Metadata, ErrorCode::LEADER_NOT_AVAILABLE)
                .on_broker(other)
                .always(),
        )
        .unwrap();
    let mut to_other = RawConn::connect(&cluster.broker_addr(other).unwrap()).await;
    let mut to_leader = RawConn::connect(&cluster.broker_addr(1 - other).unwrap()).await;
    let code = ErrorCode::LEADER_NOT_AVAILABLE.code();
    assert_eq!(
        metadata(&mut to_other, "t").await.topics[0].error_code,
        code
    );
    assert_eq!(metadata(&mut to_leader, "t").await.topics[0].error_code, 0);
    assert!(matches!(
        cluster.inject(Fault::silence(ApiKey::Metadata).on_broker(7)),
        Err(MockError::Invalid(_))
    ));
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let (cluster, mut conn) = single(1).await;
    cluster
        .inject(Fault::latency(ApiKey::Metadata, Duration::from_millis(300)))
        .unwrap();
    let start = Instant::now();
    metadata(&mut conn, "t").await;
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn drop_before_loses_the_request_and_drop_after_applies_it() {
    let (cluster, mut conn) = single(1).await;
    let addr = cluster.broker_addr(0).unwrap();
    cluster.inject(Fault::drop_before(ApiKey::Produce)).unwrap();
    conn.send(&produce("t", &[0], 3, -1), 11).await;
    assert!(conn.closed().await);
    assert_eq!(cluster.high_watermark("t", 0), Some(0));

    let mut conn = RawConn::connect(&addr).await;
    cluster.inject(Fault::drop_after(ApiKey::Produce)).unwrap();
    conn.send(&produce("t", &[0], 3, -1), 11).await;
    assert!(conn.closed().await);
    // "Did it land?": it did.
    assert_eq!(cluster.high_watermark("t", 0), Some(3));

    // The fault was spent: a new connection works.
    let mut conn = RawConn::connect(&addr).await;
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [0]
    );
}

#[tokio::test]
async fn silence_never_answers_but_keeps_the_connection() {
    let (cluster, mut conn) = single(1).await;
    cluster.inject(Fault::silence(ApiKey::Metadata)).unwrap();
    let req = MetadataRequest::default();
    conn.send(&req, 12).await;
    let answer = tokio::time::timeout(Duration::from_millis(300), conn.read_frame()).await;
    assert!(answer.is_err(), "a silent broker answered");
    // Later requests on the same connection go unanswered too.
    conn.send(&req, 12).await;
    let answer = tokio::time::timeout(Duration::from_millis(300), conn.read_frame()).await;
    assert!(answer.is_err());
    // Other connections are served.
    let mut other = RawConn::connect(&cluster.broker_addr(0).unwrap()).await;
    assert_eq!(metadata(&mut other, "t").await.topics.len(), 1);
}

#[tokio::test]
async fn throttle_is_reported_and_mutes_the_connection() {
    let (cluster, mut conn) = single(1).await;
    cluster
        .inject(Fault::throttle(ApiKey::Produce, Duration::from_millis(400)))
        .unwrap();
    let resp = conn.call(&produce("t", &[0], 1, -1), 11).await;
    assert_eq!(resp.throttle_time_ms, 400);
    let start = Instant::now();
    let resp = conn.call(&produce("t", &[0], 1, -1), 11).await;
    assert_eq!(resp.throttle_time_ms, 0);
    assert!(start.elapsed() >= Duration::from_millis(350));
}

#[tokio::test]
async fn a_broker_down_and_up_again() {
    let mut cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 3, 3).unwrap();
    let victim = cluster.leader("t", 0).unwrap();
    let addr = cluster.broker_addr(victim).unwrap();
    let survivor = (victim + 1) % 3;
    let mut conn = RawConn::connect(&addr).await;
    let mut to_survivor = RawConn::connect(&cluster.broker_addr(survivor).unwrap()).await;
    let before = metadata(&mut to_survivor, "t").await.topics[0].partitions[0].clone();

    cluster.broker_down(victim).unwrap();
    assert!(!cluster.is_up(victim));
    assert!(conn.closed().await, "connections reset");
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "refused"
    );
    let md = metadata(&mut to_survivor, "t").await;
    assert_eq!(md.brokers.len(), 2);
    assert!(md.brokers.iter().all(|b| b.node_id != victim));
    let p0 = &md.topics[0].partitions[0];
    assert_ne!(p0.leader_id, victim);
    assert_eq!(p0.leader_epoch, before.leader_epoch + 1);
    assert!(!p0.isr_nodes.contains(&victim));
    assert_eq!(p0.offline_replicas, [victim]);
    assert_eq!(cluster.leader("t", 0), Some(p0.leader_id));

    cluster.broker_up(victim).await.unwrap();
    let mut conn = RawConn::connect(&addr).await;
    let md = metadata(&mut conn, "t").await;
    assert_eq!(md.brokers.len(), 3);
    let p0 = &md.topics[0].partitions[0];
    assert!(p0.isr_nodes.contains(&victim));
    assert!(p0.offline_replicas.is_empty());
    // Leadership does not move back by itself.
    assert_ne!(p0.leader_id, victim);
}

#[tokio::test]
async fn the_last_replica_down_takes_the_partition_offline() {
    let mut cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 1, 1).unwrap();
    let only = cluster.leader("t", 0).unwrap();
    let mut other = RawConn::connect(&cluster.broker_addr(1 - only).unwrap()).await;
    cluster.broker_down(only).unwrap();
    let md = metadata(&mut other, "t").await;
    let p0 = &md.topics[0].partitions[0];
    assert_eq!(p0.error_code, ErrorCode::LEADER_NOT_AVAILABLE.code());
    assert_eq!(p0.leader_id, -1);
    // Back up, the only replica leads again.
    cluster.broker_up(only).await.unwrap();
    assert_eq!(cluster.leader("t", 0), Some(only));
}

#[tokio::test]
async fn moving_a_leader_bumps_the_epoch_and_names_the_new_leader() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 1, 3).unwrap();
    let old = cluster.leader("t", 0).unwrap();
    let new = (old + 1) % 3;
    let mut conn = RawConn::connect(&cluster.broker_addr(old).unwrap()).await;
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [0]
    );
    cluster.move_leader("t", 0, new).unwrap();
    let resp = conn.call(&produce("t", &[0], 1, -1), 11).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, NOT_LEADER);
    assert_eq!(p.current_leader.leader_id, new);
    assert_eq!(p.current_leader.leader_epoch, 1);
    assert_eq!(resp.node_endpoints[0].node_id, new);
    let mut conn = RawConn::connect(&cluster.broker_addr(new).unwrap()).await;
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [0]
    );
    assert_eq!(cluster.high_watermark("t", 0), Some(2));
    assert!(matches!(
        cluster.move_leader("t", 0, 9),
        Err(MockError::Invalid(_))
    ));
    assert!(matches!(
        cluster.move_leader("nope", 0, 0),
        Err(MockError::Invalid(_))
    ));
}

#[tokio::test]
async fn an_offline_partition_refuses_produce_until_a_leader_is_named() {
    let (cluster, mut conn) = single(1).await;
    cluster.take_partition_offline("t", 0).unwrap();
    assert_eq!(
        metadata(&mut conn, "t").await.topics[0].partitions[0].error_code,
        ErrorCode::LEADER_NOT_AVAILABLE.code()
    );
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [NOT_LEADER]
    );
    cluster.move_leader("t", 0, 0).unwrap();
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [0]
    );
}

#[tokio::test]
async fn a_shrunk_isr_below_min_insync_replicas_refuses_acks_all() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 1, 3).unwrap();
    let leader = cluster.leader("t", 0).unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(leader).unwrap()).await;
    cluster.set_min_insync_replicas("t", 2).unwrap();
    cluster.set_isr("t", 0, &[leader]).unwrap();
    let code = ErrorCode::NOT_ENOUGH_REPLICAS.code();
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [code]
    );
    // acks=1 does not wait for the ISR.
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, 1)).await,
        [0]
    );
    cluster
        .set_isr("t", 0, &[leader, (leader + 1) % 3])
        .unwrap();
    assert_eq!(
        produce_errors(&mut conn, &produce("t", &[0], 1, -1)).await,
        [0]
    );
    assert_eq!(cluster.high_watermark("t", 0), Some(2));
    // The ISR must hold the leader.
    assert!(cluster.set_isr("t", 0, &[(leader + 1) % 3]).is_err());
}

#[tokio::test]
async fn moving_a_coordinator() {
    let cluster = MockCluster::start(3).await.unwrap();
    let first = cluster.coordinator("g").unwrap();
    // Stable: the same broker every time.
    assert_eq!(cluster.coordinator("g"), Some(first));
    let to = (first + 1) % 3;
    cluster.move_coordinator("g", to).unwrap();
    assert_eq!(cluster.coordinator("g"), Some(to));
    assert!(cluster.move_coordinator("g", 5).is_err());
}
