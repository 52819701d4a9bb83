//! The mock's answers to hand-written requests (skotch-protocol only):
//! ApiVersions, Metadata, Produce's batch and sequence checks, Fetch's
//! long poll, ListOffsets, and hostile input.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, RawConn};
use skotch_mock::MockCluster;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use skotch_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use skotch_protocol::messages::metadata_request::MetadataRequestTopic;
use skotch_protocol::messages::produce_response::PartitionProduceResponse;
use skotch_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, Message, MetadataRequest, ProduceRequest, RequestHeader,
};
use skotch_protocol::Reader;
use tokio::io::AsyncWriteExt;

use common::produce_request as produce;

async fn send_produce(conn: &mut RawConn, req: &ProduceRequest) -> PartitionProduceResponse {
    let resp = conn.call(req, 11).await;
    resp.responses[0].partition_responses[0].clone()
}

/// A cluster with topic `t` (one partition) and a connection to its leader.
async fn one_partition(brokers: usize) -> (MockCluster, RawConn) {
    let cluster = MockCluster::start(brokers).await.unwrap();
    cluster.create_topic("t", 1, brokers as i16).unwrap();
    let leader = cluster.leader("t", 0).unwrap();
    let conn = RawConn::connect(&cluster.broker_addr(leader).unwrap()).await;
    (cluster, conn)
}

async fn producer_id(conn: &mut RawConn) -> (i64, i16) {
    let resp = conn
        .call(
            &InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: i32::MAX,
                ..Default::default()
            },
            4,
        )
        .await;
    assert_eq!(resp.error_code, 0);
    (resp.producer_id, resp.producer_epoch)
}

#[tokio::test]
async fn api_versions_lists_only_implemented_apis() {
    let (cluster, mut conn) = one_partition(1).await;
    let resp = conn.call(&common::api_versions(), 4).await;
    assert_eq!(resp.error_code, 0);
    let keys: Vec<ApiKey> = resp
        .api_keys
        .iter()
        .map(|k| ApiKey::from_i16(k.api_key).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::Metadata,
            ApiKey::OffsetCommit,
            ApiKey::OffsetFetch,
            ApiKey::FindCoordinator,
            ApiKey::JoinGroup,
            ApiKey::Heartbeat,
            ApiKey::LeaveGroup,
            ApiKey::SyncGroup,
            ApiKey::DescribeGroups,
            ApiKey::ListGroups,
            ApiKey::SaslHandshake,
            ApiKey::ApiVersions,
            ApiKey::CreateTopics,
            ApiKey::DeleteTopics,
            ApiKey::InitProducerId,
            ApiKey::OffsetForLeaderEpoch,
            ApiKey::SaslAuthenticate,
            ApiKey::CreatePartitions,
            ApiKey::ConsumerGroupHeartbeat,
            ApiKey::ConsumerGroupDescribe,
        ]
    );
    // InitProducerId's last version is unstable: not advertised.
    let ipid = resp.api_keys.iter().find(|k| k.api_key == 22).unwrap();
    assert_eq!(ipid.max_version, InitProducerIdRequest::VERSIONS.1 - 1);

    // KIP-511: a malformed client software name is INVALID_REQUEST.
    let bad = conn
        .call(
            &ApiVersionsRequest {
                client_software_name: "-bad name".into(),
                client_software_version: "1".into(),
            },
            3,
        )
        .await;
    assert_eq!(bad.error_code, ErrorCode::INVALID_REQUEST.code());
    assert!(bad.api_keys.is_empty());

    // A newer ApiVersions than the mock knows: UNSUPPORTED_VERSION in a v0
    // body that lists ApiVersions' range (KIP-511).
    let mut raw = bytes::BytesMut::new();
    let frame = skotch_protocol::frame::begin_frame(&mut raw);
    RequestHeader {
        request_api_key: 18,
        request_api_version: 99,
        correlation_id: 7,
        client_id: Some("future".into()),
    }
    .encode(&mut raw, 2)
    .unwrap();
    raw.extend_from_slice(&[0, 0, 0]); // whatever a v99 body holds
    frame.finish(&mut raw).unwrap();
    conn.stream.write_all(&raw).await.unwrap();
    let mut r = Reader::new(conn.read_frame().await.unwrap());
    assert_eq!(r.i32("correlation_id").unwrap(), 7);
    let v0 = ApiVersionsResponse::decode(&mut r, 0).unwrap();
    assert_eq!(v0.error_code, ErrorCode::UNSUPPORTED_VERSION.code());
    assert_eq!(v0.api_keys.len(), 1);
    assert_eq!(
        (v0.api_keys[0].min_version, v0.api_keys[0].max_version),
        (0, 4)
    );

    let log = cluster.request_log(cluster.leader("t", 0).unwrap());
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[2].api_key, log[2].api_version, log[2].correlation_id),
        (18, 99, 7)
    );
    assert_eq!(log[2].client_id.as_deref(), Some("future"));
}

#[tokio::test]
async fn metadata_has_leader_epochs_and_no_auto_creation() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("m", 6, 2).unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(2).unwrap()).await;
    let resp = conn
        .call(
            &MetadataRequest {
                topics: Some(vec![
                    MetadataRequestTopic {
                        name: Some("m".into()),
                        ..Default::default()
                    },
                    MetadataRequestTopic {
                        name: Some("missing".into()),
                        ..Default::default()
                    },
                ]),
                allow_auto_topic_creation: true,
                ..Default::default()
            },
            12,
        )
        .await;
    assert_eq!(resp.brokers.len(), 3);
    assert_eq!(resp.topics[0].error_code, 0);
    let leaders: std::collections::BTreeSet<i32> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id)
        .collect();
    assert_eq!(leaders.len(), 3, "leaders spread over the brokers");
    for p in &resp.topics[0].partitions {
        assert_eq!(p.leader_epoch, 0);
        assert_eq!(p.replica_nodes.len(), 2);
        assert_eq!(p.replica_nodes[0], p.leader_id);
        assert_eq!(p.isr_nodes, p.replica_nodes);
    }
    assert_eq!(
        resp.topics[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
    );
    assert!(cluster.leader("missing", 0).is_none(), "not auto-created");
}

#[tokio::test]
async fn duplicate_idempotent_batch_is_acknowledged_not_appended() {
    let (cluster, mut conn) = one_partition(1).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    let first = produce("t", 0, batch(5, 1_000, pid, epoch, 0));
    let a = send_produce(&mut conn, &first).await;
    assert_eq!((a.error_code, a.base_offset), (0, 0));
    let second = produce("t", 0, batch(3, 1_000, pid, epoch, 5));
    let b = send_produce(&mut conn, &second).await;
    assert_eq!((b.error_code, b.base_offset), (0, 5));
    // Both again, as a producer retrying after lost answers does.
    let a2 = send_produce(&mut conn, &first).await;
    assert_eq!((a2.error_code, a2.base_offset), (0, 0));
    let b2 = send_produce(&mut conn, &second).await;
    assert_eq!((b2.error_code, b2.base_offset), (0, 5));
    assert_eq!(
        cluster.high_watermark("t", 0),
        Some(8),
        "nothing appended twice"
    );
}

#[tokio::test]
async fn sequence_and_epoch_errors() {
    let (cluster, mut conn) = one_partition(1).await;
    let (pid, epoch) = producer_id(&mut conn).await;
    let ok = send_produce(&mut conn, &produce("t", 0, batch(2, 0, pid, epoch, 0))).await;
    assert_eq!(ok.error_code, 0);
    // Sequence 3 after 0..=1: a gap.
    let gap = send_produce(&mut conn, &produce("t", 0, batch(1, 0, pid, epoch, 3))).await;
    assert_eq!(
        gap.error_code,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.code()
    );
    assert_eq!(gap.base_offset, -1);
    // An older epoch.
    let bump = send_produce(&mut conn, &produce("t", 0, batch(1, 0, pid, epoch + 1, 0))).await;
    assert_eq!(bump.error_code, 0);
    let zombie = send_produce(&mut conn, &produce("t", 0, batch(1, 0, pid, epoch, 2))).await;
    assert_eq!(zombie.error_code, ErrorCode::INVALID_PRODUCER_EPOCH.code());
    // A producer id the cluster never handed out.
    let unknown = send_produce(&mut conn, &produce("t", 0, batch(1, 0, 987_654, 0, 0))).await;
    assert_eq!(unknown.error_code, ErrorCode::UNKNOWN_PRODUCER_ID.code());
    assert_eq!(cluster.high_watermark("t", 0), Some(3));
}

#[tokio::test]
async fn corrupt_and_misdirected_batches_are_refused() {
    let (cluster, mut conn) = one_partition(1).await;
    let good = batch(3, 0, -1, -1, -1);
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let resp = send_produce(&mut conn, &produce("t", 0, Bytes::from(bad))).await;
    assert_eq!(resp.error_code, ErrorCode::CORRUPT_MESSAGE.code());
    // Truncated: the length says more than was sent.
    let resp = send_produce(&mut conn, &produce("t", 0, good.slice(..good.len() - 1))).await;
    assert_eq!(resp.error_code, ErrorCode::CORRUPT_MESSAGE.code());
    // Larger than max.message.bytes.
    let mut big = bytes::BytesMut::new();
    skotch_protocol::record::encode_batch(
        &skotch_protocol::record::BatchHeader::default(),
        &[skotch_protocol::record::Record {
            value: Some(Bytes::from(vec![7u8; 1 << 20])),
            ..Default::default()
        }],
        &mut big,
    )
    .unwrap();
    let resp = send_produce(&mut conn, &produce("t", 0, big.freeze())).await;
    assert_eq!(resp.error_code, ErrorCode::MESSAGE_TOO_LARGE.code());
    // Two batches in one partition's records.
    let two = Bytes::from([good.to_vec(), good.to_vec()].concat());
    let resp = send_produce(&mut conn, &produce("t", 0, two)).await;
    assert_eq!(resp.error_code, ErrorCode::INVALID_RECORD.code());
    assert_eq!(cluster.high_watermark("t", 0), Some(0));

    // Sent to a broker that does not lead the partition.
    let cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 1, 2).unwrap();
    let other = 1 - cluster.leader("t", 0).unwrap();
    let mut conn = RawConn::connect(&cluster.broker_addr(other).unwrap()).await;
    let resp = send_produce(&mut conn, &produce("t", 0, good)).await;
    assert_eq!(resp.error_code, ErrorCode::NOT_LEADER_OR_FOLLOWER.code());
    assert_eq!(resp.current_leader.leader_id, 1 - other);
}

fn fetch(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn fetch_long_poll_waits_and_wakes() {
    let (cluster, mut conn) = one_partition(1).await;
    // No data: the answer comes after max_wait.
    let start = Instant::now();
    let resp = conn.call(&fetch("t", 0, 300), 12).await;
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert_eq!(p.records.as_ref().map_or(0, |r| r.len()), 0);

    // Data arriving during the wait ends it early.
    let start = Instant::now();
    let cid = conn.send(&fetch("t", 0, 10_000), 12).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let leader = cluster
        .broker_addr(cluster.leader("t", 0).unwrap())
        .unwrap();
    let mut producer = RawConn::connect(&leader).await;
    let ack = send_produce(&mut producer, &produce("t", 0, batch(4, 0, -1, -1, -1))).await;
    assert_eq!(ack.error_code, 0);
    let resp = conn.receive::<FetchRequest>(cid, 12).await;
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.last_stable_offset),
        (0, 4, 4)
    );
    let batch = skotch_protocol::record::RecordBatch::decode(p.records.clone().unwrap(), true)
        .expect("the stored batch, CRC intact");
    assert_eq!((batch.base_offset, batch.record_count), (0, 4));

    // Past the end: OFFSET_OUT_OF_RANGE, at once.
    let resp = conn.call(&fetch("t", 5, 10_000), 12).await;
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        ErrorCode::OFFSET_OUT_OF_RANGE.code()
    );
    assert_eq!(resp.session_id, 0, "sessionless");
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_time() {
    let (_cluster, mut conn) = one_partition(1).await;
    for (i, ts) in [(0, 1_000), (1, 2_000)] {
        let resp = send_produce(&mut conn, &produce("t", 0, batch(5, ts, -1, -1, -1))).await;
        assert_eq!(resp.base_offset, i * 5);
    }
    let ask = |timestamp: i64| ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: 0,
                timestamp,
            }],
        }],
        ..Default::default()
    };
    let mut got = Vec::new();
    for ts in [-2, -1, 1_002, 1_500, 2_004, 9_999] {
        let resp = conn.call(&ask(ts), 7).await;
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        got.push((p.offset, p.timestamp, p.leader_epoch));
    }
    assert_eq!(
        got,
        [
            (0, -1, 0),
            (10, -1, 0),
            (2, 1_002, 0),
            (5, 2_000, 0),
            (9, 2_004, 0),
            (-1, -1, -1),
        ]
    );
}

#[tokio::test]
async fn hostile_input_closes_the_connection() {
    let cluster = MockCluster::start(1).await.unwrap();
    let addr = cluster.broker_addr(0).unwrap();

    // An API the mock does not implement (DescribeConfigs): closed, and
    // logged.
    let mut conn = RawConn::connect(&addr).await;
    conn.send(
        &skotch_protocol::messages::DescribeConfigsRequest::default(),
        4,
    )
    .await;
    assert!(conn.closed().await);
    assert_eq!(cluster.request_log(0)[0].summary, "not implemented");

    // A frame announcing 2 GiB.
    let mut conn = RawConn::connect(&addr).await;
    conn.stream
        .write_all(&i32::MAX.to_be_bytes())
        .await
        .unwrap();
    assert!(conn.closed().await);

    // A negative size.
    let mut conn = RawConn::connect(&addr).await;
    conn.stream.write_all(&(-5i32).to_be_bytes()).await.unwrap();
    assert!(conn.closed().await);

    // A Metadata request whose body is garbage.
    let mut conn = RawConn::connect(&addr).await;
    let mut raw = bytes::BytesMut::new();
    let frame = skotch_protocol::frame::begin_frame(&mut raw);
    RequestHeader {
        request_api_key: 3,
        request_api_version: 12,
        correlation_id: 1,
        client_id: None,
    }
    .encode(&mut raw, 2)
    .unwrap();
    raw.extend_from_slice(&[0xff; 7]);
    frame.finish(&mut raw).unwrap();
    conn.stream.write_all(&raw).await.unwrap();
    assert!(conn.closed().await);

    // A frame too short for a header.
    let mut conn = RawConn::connect(&addr).await;
    conn.stream.write_all(&[0, 0, 0, 1, 0]).await.unwrap();
    assert!(conn.closed().await);

    // The broker still serves.
    let mut conn = RawConn::connect(&addr).await;
    let resp = conn.call(&common::api_versions(), 3).await;
    assert_eq!(resp.error_code, 0);
}

#[tokio::test]
async fn shutdown_closes_connections_and_listeners() {
    let cluster = MockCluster::start(2).await.unwrap();
    cluster.create_topic("t", 1, 1).unwrap();
    let addr = cluster.broker_addr(0).unwrap();
    let mut idle = RawConn::connect(&addr).await;
    // A connection inside a long poll is closed too.
    let leader = cluster
        .broker_addr(cluster.leader("t", 0).unwrap())
        .unwrap();
    let mut polling = RawConn::connect(&leader).await;
    polling.send(&fetch("t", 0, 30_000), 12).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    cluster.shutdown().await;
    assert!(idle.closed().await);
    assert!(polling.closed().await);
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}

#[tokio::test]
async fn acks_zero_gets_no_answer() {
    let (cluster, mut conn) = one_partition(1).await;
    let mut req = produce("t", 0, batch(2, 0, -1, -1, -1));
    req.acks = 0;
    conn.send(&req, 11).await;
    // The next answer on the connection is the ApiVersions one.
    let resp = conn.call(&common::api_versions(), 3).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(cluster.high_watermark("t", 0), Some(2));
    // Any other acks value is refused.
    req.acks = 2;
    let resp = send_produce(&mut conn, &req).await;
    assert_eq!(resp.error_code, ErrorCode::INVALID_REQUIRED_ACKS.code());
}

#[tokio::test]
async fn fetch_size_limits_and_min_bytes() {
    let (_cluster, mut conn) = one_partition(1).await;
    let one = batch(10, 0, -1, -1, -1);
    for _ in 0..3 {
        send_produce(&mut conn, &produce("t", 0, one.clone())).await;
    }
    // A partition limit below one batch still returns the first (KIP-74).
    let mut req = fetch("t", 0, 0);
    req.topics[0].partitions[0].partition_max_bytes = 10;
    let resp = conn.call(&req, 12).await;
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        one.len()
    );
    // Two and a half batches' worth: two whole batches.
    req.topics[0].partitions[0].partition_max_bytes = (one.len() * 5 / 2) as i32;
    let resp = conn.call(&req, 12).await;
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        2 * one.len()
    );
    // The request's max_bytes bounds it too.
    req.topics[0].partitions[0].partition_max_bytes = 1 << 20;
    req.max_bytes = (one.len() + 1) as i32;
    let resp = conn.call(&req, 12).await;
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        one.len()
    );
    // min_bytes above what there is: the whole max_wait.
    let mut req = fetch("t", 0, 200);
    req.min_bytes = (one.len() * 10) as i32;
    let start = Instant::now();
    let resp = conn.call(&req, 12).await;
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .len(),
        3 * one.len()
    );
    // A named fetch session does not exist: the client must start over.
    let mut req = fetch("t", 0, 0);
    req.session_id = 42;
    req.session_epoch = 1;
    let resp = conn.call(&req, 12).await;
    assert_eq!(
        resp.error_code,
        ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code()
    );
}
