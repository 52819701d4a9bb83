//! The classic group coordinator and committed offsets: skotch's classic
//! group consumer on a 3-broker mock (every partition assigned once,
//! commits kept, a rebalance when a member leaves), and hand-written
//! requests over in-memory connections under tokio's paused clock for
//! the state machine's answers (KIP-394 member ids, generations,
//! coordinators, rebalances, session timeouts, KIP-345 static members)
//! and for OffsetCommit / OffsetFetch, ListGroups and DescribeGroups.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::RawConn;
use skotch_client::{
    Client, ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, GroupProtocol, Offset,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use skotch_mock::{Fault, MockCluster};
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use skotch_protocol::messages::leave_group_request::MemberIdentity;
use skotch_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use skotch_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use skotch_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use skotch_protocol::messages::{
    ApiKey, DescribeGroupsRequest, FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use tokio::io::DuplexStream;

/// An in-memory connection (deterministic under a paused clock).
type Mem = RawConn<DuplexStream>;

fn err(code: i16) -> ErrorCode {
    ErrorCode(code)
}

fn protocols(names: &[&str]) -> Vec<JoinGroupRequestProtocol> {
    names
        .iter()
        .map(|n| JoinGroupRequestProtocol {
            name: n.to_string(),
            metadata: Bytes::from(format!("meta-{n}")),
        })
        .collect()
}

fn join_req(group: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
        member_id: member.into(),
        group_instance_id: instance.map(str::to_string),
        protocol_type: "consumer".into(),
        protocols: protocols(&["range", "roundrobin"]),
        reason: None,
    }
}

fn sync_req(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &str)],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupRequestAssignment {
                member_id: m.to_string(),
                assignment: Bytes::from(a.to_string()),
            })
            .collect(),
    }
}

fn heartbeat_req(group: &str, member: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
    }
}

/// A cluster of 3 brokers and a connection to `group`'s coordinator.
async fn coordinator_conn(group: &str) -> (MockCluster, Mem, i32) {
    let cluster = MockCluster::start(3).await.unwrap();
    let coordinator = cluster.coordinator(group).unwrap();
    let conn = Mem::new(&cluster, coordinator);
    (cluster, conn, coordinator)
}

/// A group id coordinated by the same broker as `group`.
fn colocated(cluster: &MockCluster, group: &str, prefix: &str) -> String {
    let want = cluster.coordinator(group);
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|g| cluster.coordinator(g) == want)
        .unwrap_or_default()
}

/// A dynamic member joins (KIP-394's two steps) and waits for the answer.
async fn join_dynamic(conn: &mut Mem, group: &str) -> JoinGroupResponse {
    let first = conn.call(&join_req(group, "", None), 9).await;
    assert_eq!(err(first.error_code), ErrorCode::MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty());
    conn.call(&join_req(group, &first.member_id, None), 9).await
}

// ----- raw protocol, paused clock -----

#[tokio::test(start_paused = true)]
async fn member_id_required_join_sync_heartbeat() {
    let (cluster, mut conn, _) = coordinator_conn("g1").await;
    let first = conn.call(&join_req("g1", "", None), 9).await;
    assert_eq!(err(first.error_code), ErrorCode::MEMBER_ID_REQUIRED);
    assert!(
        first.member_id.starts_with("raw-test-"),
        "{}",
        first.member_id
    );
    // Before v4 a member id is handed out with the join itself.
    let mut conn0 = Mem::new(&cluster, cluster.coordinator("g0").unwrap());
    let old = conn0.call(&join_req("g0", "", None), 3).await;
    assert_eq!(err(old.error_code), ErrorCode::NONE);
    assert_eq!(old.generation_id, 1);

    let me = first.member_id.clone();
    let joined = conn.call(&join_req("g1", &me, None), 9).await;
    assert_eq!(err(joined.error_code), ErrorCode::NONE);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, me);
    assert_eq!(joined.member_id, me);
    assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, Bytes::from("meta-range"));

    let synced = conn
        .call(&sync_req("g1", &me, 1, &[(&me, "mine")]), 5)
        .await;
    assert_eq!(err(synced.error_code), ErrorCode::NONE);
    assert_eq!(synced.assignment, Bytes::from("mine"));
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));

    let hb = conn.call(&heartbeat_req("g1", &me, 1), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::NONE);
    let hb = conn.call(&heartbeat_req("g1", &me, 0), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::ILLEGAL_GENERATION);
    let hb = conn.call(&heartbeat_req("g1", "nobody", 1), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
    let missing = colocated(&cluster, "g1", "no-such-group");
    let hb = conn.call(&heartbeat_req(&missing, &me, 1), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
    let sync = conn.call(&sync_req("g1", &me, 7, &[]), 5).await;
    assert_eq!(err(sync.error_code), ErrorCode::ILLEGAL_GENERATION);
    // A join naming a member of a group that does not exist.
    let j = conn.call(&join_req(&missing, "someone", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
    // Protocols the group does not support.
    let mut other = join_req("g1", "", None);
    other.protocols = protocols(&["sticky"]);
    let j = conn.call(&other, 9).await;
    assert_eq!(err(j.error_code), ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    // Session timeout bounds.
    let mut short = join_req("g1", "", None);
    short.session_timeout_ms = 10;
    let j = conn.call(&short, 9).await;
    assert_eq!(err(j.error_code), ErrorCode::INVALID_SESSION_TIMEOUT);
    let j = conn.call(&join_req("", "", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::INVALID_GROUP_ID);
}

#[tokio::test(start_paused = true)]
async fn find_coordinator_and_not_coordinator() {
    let cluster = MockCluster::start(3).await.unwrap();
    let group = "orders";
    let coordinator = cluster.coordinator(group).unwrap();
    let other = (coordinator + 1) % 3;
    let mut conn = Mem::new(&cluster, other);

    let v3 = conn
        .call(
            &FindCoordinatorRequest {
                key: group.into(),
                key_type: 0,
                coordinator_keys: vec![],
            },
            3,
        )
        .await;
    assert_eq!(err(v3.error_code), ErrorCode::NONE);
    assert_eq!(v3.node_id, coordinator);
    let addr = cluster.broker_addr(coordinator).unwrap();
    assert_eq!(format!("{}:{}", v3.host, v3.port), addr);

    let v4 = conn
        .call(
            &FindCoordinatorRequest {
                key: String::new(),
                key_type: 0,
                coordinator_keys: vec![group.into(), "another".into()],
            },
            4,
        )
        .await;
    assert_eq!(v4.coordinators.len(), 2);
    assert_eq!(v4.coordinators[0].key, group);
    assert_eq!(v4.coordinators[0].node_id, coordinator);
    assert_eq!(
        v4.coordinators[1].node_id,
        cluster.coordinator("another").unwrap()
    );
    // Transactions are out of scope.
    let txn = conn
        .call(
            &FindCoordinatorRequest {
                key: String::new(),
                key_type: 1,
                coordinator_keys: vec!["tx".into()],
            },
            4,
        )
        .await;
    assert_eq!(
        err(txn.coordinators[0].error_code),
        ErrorCode::COORDINATOR_NOT_AVAILABLE
    );

    // Group requests to a broker that does not coordinate the group.
    let j = conn.call(&join_req(group, "", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::NOT_COORDINATOR);
    let s = conn.call(&sync_req(group, "m", 1, &[]), 5).await;
    assert_eq!(err(s.error_code), ErrorCode::NOT_COORDINATOR);
    let h = conn.call(&heartbeat_req(group, "m", 1), 4).await;
    assert_eq!(err(h.error_code), ErrorCode::NOT_COORDINATOR);
    let c = conn.call(&commit_req(group, -1, "", "t", 0, 5), 9).await;
    // No such topic: the partition is unknown before the group is asked.
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    cluster.create_topic("t", 1, 1).unwrap();
    let c = conn.call(&commit_req(group, -1, "", "t", 0, 5), 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::NOT_COORDINATOR
    );

    // Moving the coordinator: the old one refuses, the new one serves.
    cluster.move_coordinator(group, other).unwrap();
    let j = conn.call(&join_req(group, "", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::MEMBER_ID_REQUIRED);
    let mut old = Mem::new(&cluster, coordinator);
    let j = old.call(&join_req(group, "", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::NOT_COORDINATOR);
}

#[tokio::test(start_paused = true)]
async fn rebalance_in_progress_and_follower_waits_for_leader() {
    let (cluster, mut a, coordinator) = coordinator_conn("g2").await;
    let ja = join_dynamic(&mut a, "g2").await;
    let id_a = ja.member_id.clone();
    assert_eq!(ja.generation_id, 1);
    let sa = a.call(&sync_req("g2", &id_a, 1, &[(&id_a, "a1")]), 5).await;
    assert_eq!(err(sa.error_code), ErrorCode::NONE);

    // b joins: its JoinGroup waits for a to rejoin.
    let mut b = Mem::new(&cluster, coordinator);
    let first = b.call(&join_req("g2", "", None), 9).await;
    let id_b = first.member_id.clone();
    let cid_b = b.send(&join_req("g2", &id_b, None), 9).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hb = a.call(&heartbeat_req("g2", &id_a, 1), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::REBALANCE_IN_PROGRESS);
    let sync = a.call(&sync_req("g2", &id_a, 1, &[]), 5).await;
    assert_eq!(err(sync.error_code), ErrorCode::REBALANCE_IN_PROGRESS);

    let ja = a.call(&join_req("g2", &id_a, None), 9).await;
    let jb = b.receive::<JoinGroupRequest>(cid_b, 9).await;
    assert_eq!(err(ja.error_code), ErrorCode::NONE);
    assert_eq!(err(jb.error_code), ErrorCode::NONE);
    assert_eq!(ja.generation_id, 2);
    assert_eq!(jb.generation_id, 2);
    assert_eq!(ja.leader, id_a);
    assert_eq!(jb.leader, id_a);
    assert_eq!(ja.members.len(), 2, "the leader gets the members");
    assert!(jb.members.is_empty(), "followers do not");

    // The follower's SyncGroup waits for the leader's.
    let cid_sb = b.send(&sync_req("g2", &id_b, 2, &[]), 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sa = a
        .call(
            &sync_req("g2", &id_a, 2, &[(&id_a, "a2"), (&id_b, "b2")]),
            5,
        )
        .await;
    let sb = b.receive::<SyncGroupRequest>(cid_sb, 5).await;
    assert_eq!(sa.assignment, Bytes::from("a2"));
    assert_eq!(sb.assignment, Bytes::from("b2"));
    assert_eq!(err(sb.error_code), ErrorCode::NONE);

    // DescribeGroups shows both, Stable, with metadata and assignments.
    let d = a
        .call(
            &DescribeGroupsRequest {
                groups: vec!["g2".into(), "unknown".into(), "elsewhere".into()],
                include_authorized_operations: false,
            },
            5,
        )
        .await;
    assert_eq!(d.groups[0].group_state, "Stable");
    assert_eq!(d.groups[0].protocol_type, "consumer");
    assert_eq!(d.groups[0].protocol_data, "range");
    let members: BTreeMap<String, (Bytes, Bytes, String)> = d.groups[0]
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                (
                    m.member_metadata.clone(),
                    m.member_assignment.clone(),
                    m.client_id.clone(),
                ),
            )
        })
        .collect();
    assert_eq!(
        members[&id_b],
        (
            Bytes::from("meta-range"),
            Bytes::from("b2"),
            "raw-test".to_string()
        )
    );
    if cluster.coordinator("unknown") == Some(coordinator) {
        assert_eq!(d.groups[1].group_state, "Dead");
        assert_eq!(d.groups[1].error_code, 0);
    } else {
        assert_eq!(err(d.groups[1].error_code), ErrorCode::NOT_COORDINATOR);
    }
    let mut elsewhere = Mem::new(&cluster, cluster.coordinator("elsewhere").unwrap());
    let d2 = elsewhere
        .call(
            &DescribeGroupsRequest {
                groups: vec!["elsewhere".into()],
                include_authorized_operations: false,
            },
            5,
        )
        .await;
    assert_eq!(d2.groups[0].group_state, "Dead");
    assert_eq!(d2.groups[0].error_code, 0);
    // KIP-1043: from v6 an unknown group is an error.
    let d6 = elsewhere
        .call(
            &DescribeGroupsRequest {
                groups: vec!["elsewhere".into()],
                include_authorized_operations: false,
            },
            6,
        )
        .await;
    assert_eq!(err(d6.groups[0].error_code), ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(d6.groups[0].group_state, "Dead");

    // b leaves: a rebalance; a alone in generation 3.
    let left = b
        .call(
            &LeaveGroupRequest {
                group_id: "g2".into(),
                member_id: String::new(),
                members: vec![MemberIdentity {
                    member_id: id_b.clone(),
                    group_instance_id: None,
                    reason: None,
                }],
            },
            5,
        )
        .await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.members[0].error_code, 0);
    let hb = a.call(&heartbeat_req("g2", &id_a, 2), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::REBALANCE_IN_PROGRESS);
    let ja = a.call(&join_req("g2", &id_a, None), 9).await;
    assert_eq!(ja.generation_id, 3);
    assert_eq!(ja.members.len(), 1);
    // Leaving twice: unknown member (v0 puts it at the top level).
    let again = b
        .call(
            &LeaveGroupRequest {
                group_id: "g2".into(),
                member_id: id_b.clone(),
                members: vec![],
            },
            0,
        )
        .await;
    assert_eq!(err(again.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[tokio::test(start_paused = true)]
async fn session_timeout_removes_a_silent_member() {
    let (cluster, mut a, coordinator) = coordinator_conn("g3").await;
    let id_a = join_dynamic(&mut a, "g3").await.member_id;
    a.call(&sync_req("g3", &id_a, 1, &[]), 5).await;
    let mut b = Mem::new(&cluster, coordinator);
    let first = b.call(&join_req("g3", "", None), 9).await;
    let id_b = first.member_id.clone();
    let cid = b.send(&join_req("g3", &id_b, None), 9).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.call(&join_req("g3", &id_a, None), 9).await;
    let jb = b.receive::<JoinGroupRequest>(cid, 9).await;
    assert_eq!(jb.generation_id, 2);
    let cid = b.send(&sync_req("g3", &id_b, 2, &[]), 5).await;
    a.call(&sync_req("g3", &id_a, 2, &[]), 5).await;
    b.receive::<SyncGroupRequest>(cid, 5).await;

    // a heartbeats every 3 s; b is silent. Its 10 s session ends.
    let start = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let hb = a.call(&heartbeat_req("g3", &id_a, 2), 4).await;
        if err(hb.error_code) == ErrorCode::REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(err(hb.error_code), ErrorCode::NONE);
        assert!(start.elapsed() < Duration::from_secs(30));
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(10) && elapsed <= Duration::from_secs(13),
        "{elapsed:?}"
    );
    let ja = a.call(&join_req("g3", &id_a, None), 9).await;
    assert_eq!(ja.generation_id, 3);
    assert_eq!(ja.members.len(), 1);
    let hb = b.call(&heartbeat_req("g3", &id_b, 2), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[tokio::test(start_paused = true)]
async fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let (cluster, mut a, coordinator) = coordinator_conn("g4").await;
    let id_a = join_dynamic(&mut a, "g4").await.member_id;
    a.call(&sync_req("g4", &id_a, 1, &[]), 5).await;
    // b joins; a never rejoins (and never heartbeats): after the
    // rebalance timeout (20 s) b completes the join alone.
    let mut b = Mem::new(&cluster, coordinator);
    let start = tokio::time::Instant::now();
    let jb = join_dynamic(&mut b, "g4").await;
    assert_eq!(err(jb.error_code), ErrorCode::NONE);
    assert_eq!(jb.generation_id, 2);
    assert_eq!(jb.leader, jb.member_id, "b leads once a is gone");
    assert_eq!(jb.members.len(), 1);
    // a's session (10 s) ran out first, which also removed it.
    assert!(
        start.elapsed() <= Duration::from_secs(21),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn static_member_replaced_without_rebalance_and_old_id_fenced() {
    let (cluster, mut a, coordinator) = coordinator_conn("g5").await;
    // Static members join at once, without MEMBER_ID_REQUIRED.
    let ja = a.call(&join_req("g5", "", Some("instance-1")), 9).await;
    assert_eq!(err(ja.error_code), ErrorCode::NONE);
    assert!(ja.member_id.starts_with("instance-1-"));
    let old = ja.member_id.clone();
    a.call(&sync_req("g5", &old, 1, &[(&old, "p0")]), 5).await;

    // The same instance comes back with a new connection and no id.
    let mut a2 = Mem::new(&cluster, coordinator);
    let j2 = a2.call(&join_req("g5", "", Some("instance-1")), 9).await;
    assert_eq!(err(j2.error_code), ErrorCode::NONE);
    assert_ne!(j2.member_id, old);
    assert_eq!(j2.generation_id, 1, "no rebalance");
    assert_eq!(j2.leader, j2.member_id);
    assert!(
        j2.skip_assignment,
        "KIP-814: the leader keeps the assignment"
    );
    let mut hb = heartbeat_req("g5", &j2.member_id, 1);
    hb.group_instance_id = Some("instance-1".into());
    assert_eq!(a2.call(&hb, 4).await.error_code, 0);
    // Its SyncGroup gets the old member's assignment.
    let mut s = sync_req("g5", &j2.member_id, 1, &[]);
    s.group_instance_id = Some("instance-1".into());
    assert_eq!(a2.call(&s, 5).await.assignment, Bytes::from("p0"));

    // The old member id is fenced.
    let mut hb = heartbeat_req("g5", &old, 1);
    hb.group_instance_id = Some("instance-1".into());
    assert_eq!(
        err(a.call(&hb, 4).await.error_code),
        ErrorCode::FENCED_INSTANCE_ID
    );

    // Removing static members by instance id (LeaveGroup v3+ batch).
    let left = a
        .call(
            &LeaveGroupRequest {
                group_id: "g5".into(),
                member_id: String::new(),
                members: ["instance-1", "instance-3"]
                    .iter()
                    .map(|i| MemberIdentity {
                        member_id: String::new(),
                        group_instance_id: Some(i.to_string()),
                        reason: Some("test".into()),
                    })
                    .collect(),
            },
            5,
        )
        .await;
    let codes: Vec<ErrorCode> = left.members.iter().map(|m| err(m.error_code)).collect();
    assert_eq!(codes, [ErrorCode::NONE, ErrorCode::UNKNOWN_MEMBER_ID]);
    let d = a
        .call(
            &DescribeGroupsRequest {
                groups: vec!["g5".into()],
                include_authorized_operations: false,
            },
            5,
        )
        .await;
    // The only member left: the group rebalances to empty.
    assert_eq!(d.groups[0].group_state, "Empty");
    assert!(d.groups[0].members.is_empty());
}

fn commit_req(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        topics: vec![OffsetCommitRequestTopic {
            name: topic.into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: partition,
                committed_offset: offset,
                committed_leader_epoch: 3,
                committed_metadata: Some("meta".into()),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn offsets_round_trip() {
    let (cluster, mut conn, _) = coordinator_conn("simple").await;
    cluster.create_topic("t", 3, 1).unwrap();
    // A simple group: generation -1, no member.
    let c = conn
        .call(&commit_req("simple", -1, "", "t", 1, 42), 9)
        .await;
    assert_eq!(c.topics[0].partitions[0].error_code, 0);
    let c = conn.call(&commit_req("simple", -1, "", "t", 7, 1), 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
    );
    let mut big = commit_req("simple", -1, "", "t", 2, 1);
    big.topics[0].partitions[0].committed_metadata = Some("x".repeat(4097));
    let c = conn.call(&big, 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::OFFSET_METADATA_TOO_LARGE
    );
    // A generation for a group that does not exist.
    let mut conn2 = Mem::new(&cluster, cluster.coordinator("simple-2").unwrap());
    let c = conn2
        .call(&commit_req("simple-2", 5, "m", "t", 0, 1), 9)
        .await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::GROUP_ID_NOT_FOUND
    );
    let c = conn2
        .call(&commit_req("simple-2", 5, "m", "t", 0, 1), 8)
        .await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::ILLEGAL_GENERATION
    );

    // v7: one group, named partitions; -1 for none.
    let f = conn
        .call(
            &OffsetFetchRequest {
                group_id: "simple".into(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "t".into(),
                    partition_indexes: vec![0, 1],
                }]),
                ..Default::default()
            },
            7,
        )
        .await;
    assert_eq!(f.error_code, 0);
    let p = &f.topics[0].partitions;
    assert_eq!(
        (p[0].committed_offset, p[0].committed_leader_epoch),
        (-1, -1)
    );
    assert_eq!(
        (p[1].committed_offset, p[1].committed_leader_epoch),
        (42, 3)
    );
    assert_eq!(p[1].metadata.as_deref(), Some("meta"));

    // v8: several groups, all partitions of one.
    let f = conn
        .call(
            &OffsetFetchRequest {
                groups: vec![
                    OffsetFetchRequestGroup {
                        group_id: "simple".into(),
                        topics: None,
                        ..Default::default()
                    },
                    OffsetFetchRequestGroup {
                        group_id: "nothing".into(),
                        topics: Some(vec![OffsetFetchRequestTopics {
                            name: "t".into(),
                            partition_indexes: vec![2],
                            ..Default::default()
                        }]),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            8,
        )
        .await;
    let simple = &f.groups[0];
    assert_eq!(simple.topics.len(), 1);
    assert_eq!(simple.topics[0].partitions.len(), 1);
    assert_eq!(simple.topics[0].partitions[0].partition_index, 1);
    assert_eq!(simple.topics[0].partitions[0].committed_offset, 42);
    let nothing = &f.groups[1];
    if cluster.coordinator("nothing") == cluster.coordinator("simple") {
        assert_eq!(nothing.topics[0].partitions[0].committed_offset, -1);
    } else {
        assert_eq!(err(nothing.error_code), ErrorCode::NOT_COORDINATOR);
    }

    // A group with members: commits need the member and generation.
    let id = join_dynamic(&mut conn, "simple").await.member_id;
    let c = conn.call(&commit_req("simple", 1, &id, "t", 0, 5), 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::REBALANCE_IN_PROGRESS,
        "joined but not synced"
    );
    conn.call(&sync_req("simple", &id, 1, &[]), 5).await;
    let c = conn.call(&commit_req("simple", 1, &id, "t", 0, 5), 9).await;
    assert_eq!(c.topics[0].partitions[0].error_code, 0);
    let c = conn.call(&commit_req("simple", 0, &id, "t", 0, 5), 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::ILLEGAL_GENERATION
    );
    let c = conn
        .call(&commit_req("simple", 1, "who", "t", 0, 5), 9)
        .await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    let c = conn.call(&commit_req("simple", -1, "", "t", 0, 5), 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::UNKNOWN_MEMBER_ID,
        "simple commits only to an empty group"
    );

    // Faults: per partition, and for the whole request.
    cluster
        .inject(
            Fault::error(
                ApiKey::OffsetCommit,
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            )
            .on_partition("t", 0),
        )
        .unwrap();
    let c = conn.call(&commit_req("simple", 1, &id, "t", 0, 6), 9).await;
    assert_eq!(
        err(c.topics[0].partitions[0].error_code),
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    );
    cluster
        .inject(Fault::error(
            ApiKey::OffsetFetch,
            ErrorCode::NOT_COORDINATOR,
        ))
        .unwrap();
    let f = conn
        .call(
            &OffsetFetchRequest {
                group_id: "simple".into(),
                topics: None,
                ..Default::default()
            },
            7,
        )
        .await;
    assert_eq!(err(f.error_code), ErrorCode::NOT_COORDINATOR);
    let f = conn
        .call(
            &OffsetFetchRequest {
                group_id: "simple".into(),
                topics: None,
                ..Default::default()
            },
            7,
        )
        .await;
    assert_eq!(f.error_code, 0);
    let offsets: BTreeMap<i32, i64> = f.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(offsets, BTreeMap::from([(0, 5), (1, 42)]));
}

#[tokio::test(start_paused = true)]
async fn list_groups_by_coordinator_state_and_type() {
    let cluster = MockCluster::start(3).await.unwrap();
    // Two groups on (possibly) different coordinators.
    for g in ["la", "lb"] {
        let mut conn = Mem::new(&cluster, cluster.coordinator(g).unwrap());
        let id = join_dynamic(&mut conn, g).await.member_id;
        if g == "la" {
            conn.call(&sync_req(g, &id, 1, &[]), 5).await;
        }
    }
    let mut all = BTreeMap::new();
    for b in 0..3 {
        let mut conn = Mem::new(&cluster, b);
        let l = conn.call(&ListGroupsRequest::default(), 5).await;
        assert_eq!(l.error_code, 0);
        for g in l.groups {
            assert_eq!(Some(b), cluster.coordinator(&g.group_id));
            assert_eq!(g.group_type, "classic");
            assert_eq!(g.protocol_type, "consumer");
            all.insert(g.group_id, g.group_state);
        }
        let stable = conn
            .call(
                &ListGroupsRequest {
                    states_filter: vec!["STABLE".into()],
                    types_filter: vec![],
                },
                4,
            )
            .await;
        for g in &stable.groups {
            assert_eq!(g.group_id, "la");
        }
        let consumer = conn
            .call(
                &ListGroupsRequest {
                    states_filter: vec![],
                    types_filter: vec!["consumer".into()],
                },
                5,
            )
            .await;
        assert!(consumer.groups.is_empty());
    }
    assert_eq!(
        all,
        BTreeMap::from([
            ("la".to_string(), "Stable".to_string()),
            ("lb".to_string(), "CompletingRebalance".to_string())
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn injected_join_error_and_request_log() {
    let (cluster, mut conn, coordinator) = coordinator_conn("g6").await;
    cluster
        .inject(Fault::error(
            ApiKey::JoinGroup,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        ))
        .unwrap();
    let j = conn.call(&join_req("g6", "", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    let j = join_dynamic(&mut conn, "g6").await;
    assert_eq!(err(j.error_code), ErrorCode::NONE);
    let log = cluster.request_log(coordinator);
    let joins: Vec<&str> = log
        .iter()
        .filter(|r| r.api() == Some(ApiKey::JoinGroup))
        .map(|r| r.summary.as_str())
        .collect();
    assert_eq!(joins.len(), 3);
    assert!(joins[0].starts_with("group=g6 member= "), "{}", joins[0]);
}

/// The same exchange twice gives the same answers and request log.
#[tokio::test(start_paused = true)]
async fn deterministic_member_ids() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (cluster, mut conn, coordinator) = coordinator_conn("det").await;
        let j = join_dynamic(&mut conn, "det").await;
        let log: Vec<String> = cluster
            .request_log(coordinator)
            .into_iter()
            .map(|r| r.summary)
            .collect();
        runs.push((j.member_id, log));
    }
    assert_eq!(runs[0], runs[1]);
}

// ----- skotch's classic group consumer -----

/// What the members report, by member name.
#[derive(Default)]
struct Seen {
    assignment: BTreeMap<String, Vec<TopicPartition>>,
    stable: BTreeMap<String, bool>,
    records: BTreeSet<(i32, i64)>,
}

struct Running {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_member(bootstrap: &str, group: &str, name: &str, seen: Arc<Mutex<Seen>>) -> Running {
    start_member_as(bootstrap, group, name, None, seen).await
}

async fn start_member_as(
    bootstrap: &str,
    group: &str,
    name: &str,
    instance: Option<&str>,
    seen: Arc<Mutex<Seen>>,
) -> Running {
    let client = Client::connect(ClientConfig::new(bootstrap).unwrap())
        .await
        .expect("connect");
    let mut config = GroupConfig::new(group);
    config.group_protocol = GroupProtocol::Classic;
    config.group_instance_id = instance.map(str::to_string);
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(100);
    config.auto_commit_interval = Duration::from_millis(200);
    config.max_poll_interval = Duration::from_secs(10);
    let consumer_config = ConsumerConfig {
        auto_offset_reset: Some(Offset::Earliest),
        fetch_max_wait: Duration::from_millis(100),
        ..Default::default()
    };
    let mut c = GroupConsumer::subscribe(client, consumer_config, config, &["events".to_string()])
        .await
        .expect("subscribe");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let name = name.to_string();
    let task = tokio::spawn(async move {
        while !stop2.load(Ordering::Relaxed) {
            let p = c
                .poll_for(Duration::from_millis(100))
                .await
                .unwrap_or_else(|e| panic!("{name}: poll failed: {e}"));
            let mut s = seen.lock().unwrap();
            for r in p.records {
                s.records.insert((r.partition, r.offset));
            }
            s.assignment.insert(name.clone(), c.assignment());
            s.stable.insert(name.clone(), c.is_stable());
        }
        c.close().await.expect("close");
        seen.lock().unwrap().assignment.remove(&name);
    });
    Running { stop, task }
}

impl Running {
    async fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("member task");
    }
}

/// Wait until exactly `members` are stable and own the 6 partitions
/// between them, each once.
async fn wait_for_assignment(seen: &Arc<Mutex<Seen>>, members: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        {
            let s = seen.lock().unwrap();
            let owned: Vec<&TopicPartition> = members
                .iter()
                .filter_map(|m| s.assignment.get(*m))
                .flatten()
                .collect();
            let distinct: BTreeSet<(String, i32)> = owned
                .iter()
                .map(|tp| (tp.topic.to_string(), tp.partition))
                .collect();
            let all_stable = members.iter().all(|m| s.stable.get(*m) == Some(&true));
            let others_empty = s
                .assignment
                .iter()
                .filter(|(k, _)| !members.contains(&k.as_str()))
                .all(|(_, v)| v.is_empty());
            let everyone_has = members
                .iter()
                .all(|m| s.assignment.get(*m).is_some_and(|a| !a.is_empty()));
            if all_stable && owned.len() == 6 && distinct.len() == 6 && others_empty && everyone_has
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no complete assignment for {members:?}: {:?}",
                s.assignment
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_classic_group_on_three_brokers() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("events", 6, 3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let client = Client::connect(ClientConfig::new(&bootstrap).unwrap())
        .await
        .unwrap();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..600 {
        deliveries.push(
            producer
                .send(ProducerRecord {
                    topic: "events".into(),
                    partition: Some(i % 6),
                    key: None,
                    value: Some(Bytes::from(i.to_string())),
                    headers: vec![],
                    timestamp: None,
                })
                .await
                .unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap();
    }

    let group = "skotch-classic";
    let seen = Arc::new(Mutex::new(Seen::default()));
    let a = start_member(&bootstrap, group, "a", seen.clone()).await;
    let b = start_member(&bootstrap, group, "b", seen.clone()).await;
    let c = start_member(&bootstrap, group, "c", seen.clone()).await;
    wait_for_assignment(&seen, &["a", "b", "c"]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().records.len() < 600 {
        assert!(Instant::now() < deadline, "records missing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // c leaves (LeaveGroup): a and b share the partitions.
    c.close().await;
    wait_for_assignment(&seen, &["a", "b"]).await;
    a.close().await;
    b.close().await;

    // The commits (auto commit, and on close) are at the end of each
    // partition.
    let coordinator = cluster.coordinator(group).unwrap();
    let mut conn = Mem::new(&cluster, coordinator);
    let f = conn
        .call(
            &OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.into(),
                    topics: None,
                    ..Default::default()
                }],
                ..Default::default()
            },
            8,
        )
        .await;
    let committed: BTreeMap<i32, i64> = f.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(committed, (0..6).map(|p| (p, 100)).collect());

    // A new member resumes at the commits: nothing to read.
    let seen2 = Arc::new(Mutex::new(Seen::default()));
    let d = start_member(&bootstrap, group, "d", seen2.clone()).await;
    wait_for_assignment(&seen2, &["d"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen2.lock().unwrap().records.is_empty());
    d.close().await;

    let d = Mem::new(&cluster, coordinator)
        .call(
            &DescribeGroupsRequest {
                groups: vec![group.into()],
                include_authorized_operations: false,
            },
            5,
        )
        .await;
    assert_eq!(d.groups[0].group_state, "Empty");
}

#[tokio::test(start_paused = true)]
async fn coordinator_move_carries_the_group_and_answers_parked_requests() {
    let (cluster, mut a, old) = coordinator_conn("moving").await;
    cluster.create_topic("t", 1, 1).unwrap();
    let id_a = join_dynamic(&mut a, "moving").await.member_id;
    a.call(&sync_req("moving", &id_a, 1, &[(&id_a, "a1")]), 5)
        .await;
    let c = a.call(&commit_req("moving", 1, &id_a, "t", 0, 9), 9).await;
    assert_eq!(c.topics[0].partitions[0].error_code, 0);

    // b's JoinGroup is parked at the old coordinator when the group moves.
    let mut b = Mem::new(&cluster, old);
    let id_b = b.call(&join_req("moving", "", None), 9).await.member_id;
    let cid = b.send(&join_req("moving", &id_b, None), 9).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let new = (old + 1) % 3;
    cluster.move_coordinator("moving", new).unwrap();
    let hb = a.call(&heartbeat_req("moving", &id_a, 1), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::NOT_COORDINATOR);

    // The new coordinator has the members and the offsets; the
    // rebalance goes on there and b's parked join is told to look again.
    let mut a2 = Mem::new(&cluster, new);
    let hb = a2.call(&heartbeat_req("moving", &id_a, 1), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::REBALANCE_IN_PROGRESS);
    let jb = b.receive::<JoinGroupRequest>(cid, 9).await;
    assert_eq!(err(jb.error_code), ErrorCode::NOT_COORDINATOR);
    let mut b2 = Mem::new(&cluster, new);
    let cid = b2.send(&join_req("moving", &id_b, None), 9).await;
    let ja = a2.call(&join_req("moving", &id_a, None), 9).await;
    let jb = b2.receive::<JoinGroupRequest>(cid, 9).await;
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    let f = a2
        .call(
            &OffsetFetchRequest {
                group_id: "moving".into(),
                topics: None,
                ..Default::default()
            },
            7,
        )
        .await;
    assert_eq!(f.topics[0].partitions[0].committed_offset, 9);
}

#[tokio::test(start_paused = true)]
async fn parked_sync_told_to_rejoin_and_late_sync_expires() {
    let (cluster, mut a, coordinator) = coordinator_conn("g7").await;
    let id_a = join_dynamic(&mut a, "g7").await.member_id;
    a.call(&sync_req("g7", &id_a, 1, &[]), 5).await;

    // b joins with a long session: only the sync timeout can remove it.
    let mut b = Mem::new(&cluster, coordinator);
    let mut jb_req = join_req("g7", "", None);
    jb_req.session_timeout_ms = 60_000;
    let id_b = b.call(&jb_req, 9).await.member_id;
    jb_req.member_id = id_b.clone();
    let cid = b.send(&jb_req, 9).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.call(&join_req("g7", &id_a, None), 9).await;
    assert_eq!(b.receive::<JoinGroupRequest>(cid, 9).await.generation_id, 2);

    // c joins while b's SyncGroup waits for the leader: b is told to
    // rejoin.
    let cid_sync = b.send(&sync_req("g7", &id_b, 2, &[]), 5).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut c = Mem::new(&cluster, coordinator);
    let id_c = c.call(&join_req("g7", "", None), 9).await.member_id;
    let cid_c = c.send(&join_req("g7", &id_c, None), 9).await;
    let sb = b.receive::<SyncGroupRequest>(cid_sync, 5).await;
    assert_eq!(err(sb.error_code), ErrorCode::REBALANCE_IN_PROGRESS);

    // Everyone rejoins; a (leader) and c sync, b never does.
    let cid_b = b.send(&jb_req, 9).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let ja = a.call(&join_req("g7", &id_a, None), 9).await;
    assert_eq!(ja.generation_id, 3);
    assert_eq!(ja.members.len(), 3);
    b.receive::<JoinGroupRequest>(cid_b, 9).await;
    c.receive::<JoinGroupRequest>(cid_c, 9).await;
    a.call(&sync_req("g7", &id_a, 3, &[]), 5).await;
    c.call(&sync_req("g7", &id_c, 3, &[]), 5).await;
    let start = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        c.call(&heartbeat_req("g7", &id_c, 3), 4).await;
        let hb = a.call(&heartbeat_req("g7", &id_a, 3), 4).await;
        if err(hb.error_code) == ErrorCode::REBALANCE_IN_PROGRESS {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(40));
    }
    // The rebalance timeout (20 s) for SyncGroup, not b's 60 s session.
    assert!(
        start.elapsed() <= Duration::from_secs(23),
        "{:?}",
        start.elapsed()
    );
    let hb = b.call(&heartbeat_req("g7", &id_b, 3), 4).await;
    assert_eq!(err(hb.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
}

/// KIP-345 with skotch's consumer: a static member that restarts within
/// its session timeout gets its partitions back without a rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_static_member_restarts_without_rebalance() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("events", 6, 3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let group = "skotch-static";
    let seen = Arc::new(Mutex::new(Seen::default()));
    let a = start_member_as(&bootstrap, group, "a", Some("static-a"), seen.clone()).await;
    let b = start_member_as(&bootstrap, group, "b", Some("static-b"), seen.clone()).await;
    wait_for_assignment(&seen, &["a", "b"]).await;
    let before = seen.lock().unwrap().assignment["b"].clone();
    let coordinator = cluster.coordinator(group).unwrap();
    let joins_of_a = || {
        cluster
            .request_log(coordinator)
            .iter()
            .filter(|r| {
                r.api() == Some(ApiKey::JoinGroup) && r.summary.contains("instance=static-a")
            })
            .count()
    };
    let a_joins = joins_of_a();

    // b stops (a static member sends no LeaveGroup) and comes back.
    b.close().await;
    let b = start_member_as(&bootstrap, group, "b", Some("static-b"), seen.clone()).await;
    wait_for_assignment(&seen, &["a", "b"]).await;
    assert_eq!(seen.lock().unwrap().assignment["b"], before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(joins_of_a(), a_joins, "a did not have to rejoin");
    a.close().await;
    b.close().await;
}

/// A KIP-848 consumer group and the classic APIs: a classic JoinGroup
/// is refused, ListGroups shows it as a consumer group, its members
/// commit with their member epoch, DescribeGroups does not describe it.
#[tokio::test(start_paused = true)]
async fn consumer_group_seen_through_the_classic_apis() {
    use skotch_protocol::messages::ConsumerGroupHeartbeatRequest;
    let (cluster, mut conn, _) = coordinator_conn("kip848").await;
    cluster.create_topic("t", 2, 1).unwrap();
    let hb = conn
        .call(
            &ConsumerGroupHeartbeatRequest {
                group_id: "kip848".into(),
                member_id: "m-848".into(),
                member_epoch: 0,
                rebalance_timeout_ms: 30_000,
                subscribed_topic_names: Some(vec!["t".into()]),
                topic_partitions: Some(vec![]),
                ..Default::default()
            },
            1,
        )
        .await;
    assert_eq!(hb.error_code, 0, "{:?}", hb.error_message);
    let epoch = hb.member_epoch;

    let j = conn.call(&join_req("kip848", "", None), 9).await;
    assert_eq!(err(j.error_code), ErrorCode::INCONSISTENT_GROUP_PROTOCOL);

    let l = conn.call(&ListGroupsRequest::default(), 5).await;
    let g = l.groups.iter().find(|g| g.group_id == "kip848").unwrap();
    assert_eq!(g.group_type, "consumer");
    assert_eq!(g.protocol_type, "consumer");

    let c = conn
        .call(&commit_req("kip848", epoch, "m-848", "t", 0, 3), 9)
        .await;
    assert_eq!(c.topics[0].partitions[0].error_code, 0);
    let c = conn
        .call(&commit_req("kip848", epoch + 5, "m-848", "t", 0, 3), 9)
        .await;
    assert_ne!(c.topics[0].partitions[0].error_code, 0);

    let d = conn
        .call(
            &DescribeGroupsRequest {
                groups: vec!["kip848".into()],
                include_authorized_operations: false,
            },
            6,
        )
        .await;
    assert_eq!(err(d.groups[0].error_code), ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(
        d.groups[0].error_message.as_deref(),
        Some("Group kip848 is not a classic group.")
    );
}

/// The builder's `group.min.session.timeout.ms` reaches the coordinator.
#[tokio::test(start_paused = true)]
async fn min_session_timeout_set_on_the_builder() {
    let cluster = MockCluster::builder()
        .brokers(1)
        .group_min_session_timeout(Duration::from_secs(15))
        .start()
        .await
        .unwrap();
    let mut conn = Mem::new(&cluster, 0);
    // join_req asks for 10 000 ms, below the 15 000 ms minimum.
    let r = conn.call(&join_req("g", "", None), 9).await;
    assert_eq!(err(r.error_code), ErrorCode::INVALID_SESSION_TIMEOUT);
}
