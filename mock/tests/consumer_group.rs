//! KIP-848 consumer groups on the mock: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe by hand (joins, epochs, revocation before
//! reassignment, fencing, leaving, static members), and
//! skotch's own `group.protocol=consumer` members.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::RawConn;
use skotch_mock::{ApiKey, ErrorCode, Fault, MockCluster};
use skotch_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use skotch_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use skotch_protocol::Uuid;

const V: i16 = 1;

/// A connection to the group's coordinator.
async fn coordinator(cluster: &MockCluster, group: &str) -> RawConn {
    let node = cluster.coordinator(group).expect("a coordinator");
    RawConn::connect(&cluster.broker_addr(node).expect("address")).await
}

fn join(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        topic_partitions: Some(vec![]),
        ..Default::default()
    }
}

/// A heartbeat at `epoch` reporting `owned` (of topic `id`).
fn beat(
    group: &str,
    member: &str,
    epoch: i32,
    id: Uuid,
    owned: &[i32],
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: epoch,
        topic_partitions: Some(vec![TopicPartitions {
            topic_id: id,
            partitions: owned.to_vec(),
        }]),
        ..Default::default()
    }
}

fn leave(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: -1,
        ..Default::default()
    }
}

/// The partitions of the answer's assignment (`None`: no assignment sent).
fn parts(r: &ConsumerGroupHeartbeatResponse) -> Option<BTreeSet<i32>> {
    r.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect()
    })
}

fn ok(r: &ConsumerGroupHeartbeatResponse) {
    assert_eq!(
        r.error_code,
        0,
        "{:?}: {:?}",
        ErrorCode(r.error_code).name(),
        r.error_message
    );
}

async fn describe(conn: &mut RawConn, group: &str) -> ConsumerGroupDescribeResponse {
    conn.call(
        &ConsumerGroupDescribeRequest {
            group_ids: vec![group.into()],
            include_authorized_operations: false,
        },
        1,
    )
    .await
}

/// Two members share six partitions: the second gets nothing the first
/// still owns until the first reports it revoked; then both are stable
/// at the new epoch and ConsumerGroupDescribe agrees.
#[tokio::test]
async fn revocation_comes_before_reassignment() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 6, 1).unwrap();
    let g = "g-revoke";
    let mut c = coordinator(&cluster, g).await;

    let a = c.call(&join(g, "a", &["t"]), V).await;
    ok(&a);
    assert_eq!(a.member_id.as_deref(), Some("a"));
    assert_eq!(a.member_epoch, 1);
    assert!(a.heartbeat_interval_ms > 0);
    assert_eq!(parts(&a), Some((0..6).collect()));
    let id = a.assignment.as_ref().unwrap().topic_partitions[0].topic_id;
    let a = c.call(&beat(g, "a", 1, id, &[0, 1, 2, 3, 4, 5]), V).await;
    ok(&a);
    assert_eq!(parts(&a), None, "nothing changed");

    // b joins: epoch 2, but everything is still a's.
    let b = c.call(&join(g, "b", &["t"]), V).await;
    ok(&b);
    assert_eq!(b.member_epoch, 2);
    assert_eq!(parts(&b), Some(BTreeSet::new()));
    let d = describe(&mut c, g).await;
    assert_eq!(d.groups[0].group_state, "Reconciling");
    assert_eq!(
        (d.groups[0].group_epoch, d.groups[0].assignment_epoch),
        (2, 2)
    );

    // a is told to keep three: it stays at epoch 1 until it revokes.
    let a = c.call(&beat(g, "a", 1, id, &[0, 1, 2, 3, 4, 5]), V).await;
    ok(&a);
    assert_eq!(a.member_epoch, 1);
    let kept = parts(&a).expect("a smaller assignment");
    assert_eq!(kept.len(), 3);
    let given: BTreeSet<i32> = (0..6).filter(|p| !kept.contains(p)).collect();
    // Still reporting the revoked ones: nothing moves.
    let a = c.call(&beat(g, "a", 1, id, &[0, 1, 2, 3, 4, 5]), V).await;
    ok(&a);
    assert_eq!(a.member_epoch, 1);
    let b = c.call(&beat(g, "b", 2, id, &[]), V).await;
    ok(&b);
    assert_eq!(parts(&b), None, "b must not get what a still owns");

    // a revokes: epoch 2; then b gets the three.
    let kept_v: Vec<i32> = kept.iter().copied().collect();
    let a = c.call(&beat(g, "a", 1, id, &kept_v), V).await;
    ok(&a);
    assert_eq!(a.member_epoch, 2);
    let b = c.call(&beat(g, "b", 2, id, &[]), V).await;
    ok(&b);
    assert_eq!(parts(&b), Some(given.clone()));
    let given_v: Vec<i32> = given.iter().copied().collect();
    ok(&c.call(&beat(g, "b", 2, id, &given_v), V).await);

    let d = describe(&mut c, g).await;
    let grp = &d.groups[0];
    assert_eq!(grp.error_code, 0);
    assert_eq!(grp.group_state, "Stable");
    assert_eq!(grp.assignor_name, "uniform");
    assert_eq!(grp.members.len(), 2);
    let mut seen = BTreeSet::new();
    for m in &grp.members {
        assert_eq!(m.member_epoch, 2);
        assert_eq!(m.member_type, 1);
        assert_eq!(m.client_id, "raw-test");
        assert_eq!(m.subscribed_topic_names, vec!["t".to_string()]);
        assert_eq!(m.assignment, m.target_assignment);
        assert_eq!(m.assignment.topic_partitions[0].topic_name, "t");
        for p in &m.assignment.topic_partitions[0].partitions {
            assert!(seen.insert(*p), "partition {p} owned twice");
        }
    }
    assert_eq!(seen, (0..6).collect());
    assert_eq!(grp.authorized_operations, i32::MIN, "not asked for");
    let d: ConsumerGroupDescribeResponse = c
        .call(
            &ConsumerGroupDescribeRequest {
                group_ids: vec![g.into()],
                include_authorized_operations: true,
            },
            1,
        )
        .await;
    // READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    assert_eq!(d.groups[0].authorized_operations, 3400);

    // a leaves: b gets everything at the next epoch.
    let l = c.call(&leave(g, "a"), V).await;
    ok(&l);
    assert_eq!(l.member_epoch, -1);
    let b = c.call(&beat(g, "b", 2, id, &given_v), V).await;
    ok(&b);
    assert_eq!(b.member_epoch, 3);
    assert_eq!(parts(&b), Some((0..6).collect()));
}

#[tokio::test]
async fn fenced_unknown_and_invalid() {
    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("t", 2, 1).unwrap();
    let g = "g-errors";
    let mut c = coordinator(&cluster, g).await;
    let a = c.call(&join(g, "a", &["t"]), V).await;
    ok(&a);
    let id = a.assignment.as_ref().unwrap().topic_partitions[0].topic_id;

    let r = c.call(&beat(g, "a", 7, id, &[0, 1]), V).await;
    assert_eq!(ErrorCode(r.error_code), ErrorCode::FENCED_MEMBER_EPOCH);
    let r = c.call(&beat(g, "nobody", 1, id, &[]), V).await;
    assert_eq!(ErrorCode(r.error_code), ErrorCode::UNKNOWN_MEMBER_ID);
    let mut other = coordinator(&cluster, "no-such-group").await;
    let r = other.call(&beat("no-such-group", "a", 1, id, &[]), V).await;
    assert_eq!(ErrorCode(r.error_code), ErrorCode::GROUP_ID_NOT_FOUND);
    // A fenced member rejoins at epoch 0 under its own id (KAFKA-19233).
    let r = c.call(&join(g, "a", &["t"]), V).await;
    ok(&r);
    assert_eq!(parts(&r), Some([0, 1].into_iter().collect()));

    let mut no_timeout = join(g, "b", &["t"]);
    no_timeout.rebalance_timeout_ms = -1;
    let mut no_topics = join(g, "b", &["t"]);
    no_topics.subscribed_topic_names = None;
    let mut owned = join(g, "b", &["t"]);
    owned.topic_partitions = None;
    let mut regex = join(g, "b", &["t"]);
    regex.subscribed_topic_regex = Some("t.*".into());
    for req in [no_timeout, no_topics, owned, regex, join(g, "", &["t"])] {
        let r = c.call(&req, V).await;
        assert_eq!(
            ErrorCode(r.error_code),
            ErrorCode::INVALID_REQUEST,
            "{req:?}"
        );
        assert!(r.error_message.is_some());
    }
    let mut range = join(g, "b", &["t"]);
    range.server_assignor = Some("range".into());
    let r = c.call(&range, V).await;
    assert_eq!(ErrorCode(r.error_code), ErrorCode::UNSUPPORTED_ASSIGNOR);

    // v0: the coordinator names the member.
    let r = c.call(&join(g, "", &["t"]), 0).await;
    ok(&r);
    assert!(r.member_id.as_deref().is_some_and(|m| !m.is_empty()));

    // Other brokers are not the coordinator.
    let here = cluster.coordinator(g).unwrap();
    for node in cluster.broker_ids().into_iter().filter(|n| *n != here) {
        let mut o = RawConn::connect(&cluster.broker_addr(node).unwrap()).await;
        let r = o.call(&join(g, "x", &["t"]), V).await;
        assert_eq!(ErrorCode(r.error_code), ErrorCode::NOT_COORDINATOR);
        let d = describe(&mut o, g).await;
        assert_eq!(
            ErrorCode(d.groups[0].error_code),
            ErrorCode::NOT_COORDINATOR
        );
    }
    let d = describe(&mut other, "no-such-group").await;
    assert_eq!(
        ErrorCode(d.groups[0].error_code),
        ErrorCode::GROUP_ID_NOT_FOUND
    );

    // Faults answer before anything is applied.
    cluster
        .inject(Fault::error(
            ApiKey::ConsumerGroupHeartbeat,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        ))
        .unwrap();
    let r = c.call(&join(g, "c", &["t"]), V).await;
    assert_eq!(
        ErrorCode(r.error_code),
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    );
    let d = describe(&mut c, g).await;
    assert!(d.groups[0].members.iter().all(|m| m.member_id != "c"));
}

/// A static member leaving with epoch -2 keeps its partitions; its
/// instance rejoins under a new member id and gets them back; a second
/// instance id owner is refused while the first is in.
#[tokio::test]
async fn static_member_leaves_and_rejoins() {
    let cluster = MockCluster::start(1).await.unwrap();
    cluster.create_topic("t", 4, 1).unwrap();
    let g = "g-static";
    let mut c = coordinator(&cluster, g).await;
    let mut j = join(g, "s1", &["t"]);
    j.instance_id = Some("i".into());
    let a = c.call(&j, V).await;
    ok(&a);
    let id = a.assignment.as_ref().unwrap().topic_partitions[0].topic_id;
    ok(&c.call(&beat(g, "s1", 1, id, &[0, 1, 2, 3]), V).await);

    let mut j2 = join(g, "s2", &["t"]);
    j2.instance_id = Some("i".into());
    let r = c.call(&j2, V).await;
    assert_eq!(ErrorCode(r.error_code), ErrorCode::UNRELEASED_INSTANCE_ID);

    let l = c
        .call(
            &ConsumerGroupHeartbeatRequest {
                group_id: g.into(),
                member_id: "s1".into(),
                member_epoch: -2,
                instance_id: Some("i".into()),
                ..Default::default()
            },
            V,
        )
        .await;
    ok(&l);
    assert_eq!(l.member_epoch, -2);
    let d = describe(&mut c, g).await;
    assert_eq!(d.groups[0].members.len(), 1, "the static member stays");

    let r = c.call(&j2, V).await;
    ok(&r);
    assert_eq!(r.member_id.as_deref(), Some("s2"));
    assert_eq!(parts(&r), Some((0..4).collect()));
    assert_eq!(r.member_epoch, 1, "no rebalance");
}

/// Two skotch consumers with `group.protocol=consumer` on a 3-broker mock
/// share a 6-partition topic: once stable each partition has exactly one
/// owner; when one closes, the other gets all six; together they read
/// every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_consumers_share_and_take_over() {
    use skotch_client::{
        Admin, Client, ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, GroupProtocol,
        Offset, Producer, ProducerConfig, ProducerRecord,
    };

    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("events", 6, 3).unwrap();
    // 60 records over the six partitions.
    let producer = Producer::new(
        Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
            .await
            .expect("connect"),
        ProducerConfig::default(),
    )
    .unwrap();
    for i in 0..60 {
        producer
            .send(ProducerRecord {
                topic: "events".into(),
                partition: Some(i % 6),
                key: None,
                value: Some(bytes::Bytes::from(i.to_string())),
                headers: vec![],
                timestamp: None,
            })
            .await
            .expect("send");
    }
    producer.flush().await.expect("flush");
    let group = "skotch-kip848";
    let new_member = || async {
        let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
            .await
            .expect("connect");
        let mut cfg = GroupConfig::new(group);
        cfg.group_protocol = GroupProtocol::Consumer;
        // OffsetCommit belongs to another module; this test does not need it.
        cfg.enable_auto_commit = false;
        GroupConsumer::subscribe(
            client,
            ConsumerConfig {
                auto_offset_reset: Some(Offset::Earliest),
                fetch_max_wait: Duration::from_millis(50),
                ..Default::default()
            },
            cfg,
            &["events".to_string()],
        )
        .await
        .expect("subscribe")
    };
    let mut a = new_member().await;
    let mut b = new_member().await;
    let mut seen: BTreeSet<String> = BTreeSet::new();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        note(
            &mut seen,
            a.poll_for(Duration::from_millis(50))
                .await
                .expect("a polls"),
        );
        note(
            &mut seen,
            b.poll_for(Duration::from_millis(50))
                .await
                .expect("b polls"),
        );
        let (pa, pb) = (a.assignment(), b.assignment());
        if a.is_stable()
            && b.is_stable()
            && pa.len() + pb.len() == 6
            && !pa.is_empty()
            && !pb.is_empty()
        {
            let mut owners: BTreeMap<i32, usize> = BTreeMap::new();
            for tp in pa.iter().chain(pb.iter()) {
                *owners.entry(tp.partition).or_default() += 1;
            }
            assert_eq!(owners.len(), 6, "{pa:?} {pb:?}");
            assert!(owners.values().all(|n| *n == 1), "{pa:?} {pb:?}");
            assert_eq!(pa.len(), 3);
            // The admin client's view: ConsumerGroupDescribe and ListGroups.
            let admin = Admin::new(
                Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
                    .await
                    .expect("connect"),
            );
            let d = admin.describe_group(group).await.expect("describe");
            assert_eq!(d.group_type, "consumer");
            assert_eq!(d.assignor, "uniform");
            assert_eq!(d.coordinator, cluster.coordinator(group).unwrap());
            assert_eq!(d.members.len(), 2);
            assert!(d.members.iter().all(|m| m.assignment.len() == 3));
            let listed = admin.list_groups().await.expect("list");
            assert!(listed.iter().any(|l| l.group_id == group), "{listed:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not stable: a {pa:?} b {pb:?}"
        );
    }

    a.close().await.expect("a leaves");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        note(
            &mut seen,
            b.poll_for(Duration::from_millis(50))
                .await
                .expect("b polls"),
        );
        if b.is_stable() && b.assignment().len() == 6 && seen.len() == 60 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "b did not take over: {:?}, {} records seen",
            b.assignment(),
            seen.len()
        );
    }
    b.close().await.expect("b leaves");
}

/// Remember the values of a poll's records.
fn note(seen: &mut BTreeSet<String>, p: skotch_client::Poll) {
    for r in p.records {
        seen.insert(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into());
    }
}

/// A classic group with members keeps its id: a KIP-848 join is
/// GROUP_ID_NOT_FOUND (the mock does not convert groups online).
#[tokio::test]
async fn a_classic_group_is_not_taken_over() {
    use skotch_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use skotch_protocol::messages::JoinGroupRequest;

    let cluster = MockCluster::start(1).await.unwrap();
    cluster.create_topic("t", 2, 1).unwrap();
    let g = "g-classic";
    let mut c = coordinator(&cluster, g).await;
    let j = c
        .call(
            &JoinGroupRequest {
                group_id: g.into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                member_id: String::new(),
                group_instance_id: None,
                protocol_type: "consumer".into(),
                protocols: vec![JoinGroupRequestProtocol {
                    name: "range".into(),
                    metadata: bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0]),
                }],
                reason: None,
            },
            3,
        )
        .await;
    assert_eq!(
        j.error_code,
        0,
        "classic join: {:?}",
        ErrorCode(j.error_code)
    );
    let r = c.call(&join(g, "a", &["t"]), V).await;
    assert_eq!(ErrorCode(r.error_code), ErrorCode::GROUP_ID_NOT_FOUND);
    let d = describe(&mut c, g).await;
    assert_eq!(
        ErrorCode(d.groups[0].error_code),
        ErrorCode::GROUP_ID_NOT_FOUND
    );
}

/// An injected FENCED_MEMBER_EPOCH makes a skotch member drop its
/// partitions and rejoin at epoch 0 under its own member id; the group
/// takes it back with its partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_skotch_member_rejoins() {
    use skotch_client::{
        Client, ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, GroupProtocol,
    };

    let cluster = MockCluster::start(3).await.unwrap();
    cluster.create_topic("fence", 3, 1).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap_servers()).unwrap())
        .await
        .expect("connect");
    let mut cfg = GroupConfig::new("g-fence");
    cfg.group_protocol = GroupProtocol::Consumer;
    cfg.enable_auto_commit = false;
    let mut m = GroupConsumer::subscribe(
        client,
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(50),
            ..Default::default()
        },
        cfg,
        &["fence".to_string()],
    )
    .await
    .expect("subscribe");
    let stable = |m: &GroupConsumer| m.is_stable() && m.assignment().len() == 3;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !stable(&m) {
        m.poll_for(Duration::from_millis(50)).await.expect("poll");
        assert!(tokio::time::Instant::now() < deadline, "never stable");
    }
    let fault = cluster
        .inject(Fault::error(
            ApiKey::ConsumerGroupHeartbeat,
            ErrorCode::FENCED_MEMBER_EPOCH,
        ))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.fault_hits(fault) == 0 || !stable(&m) {
        m.poll_for(Duration::from_millis(50)).await.expect("poll");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not back: {:?}, fault hits {}",
            m.assignment(),
            cluster.fault_hits(fault)
        );
    }
    let coordinator = cluster.coordinator("g-fence").unwrap();
    let rejoined = cluster
        .request_log(coordinator)
        .iter()
        .filter(|r| {
            r.api() == Some(ApiKey::ConsumerGroupHeartbeat) && r.summary.contains(" epoch=0")
        })
        .count();
    assert_eq!(rejoined, 2, "a join and a rejoin");
    m.close().await.expect("close");
}

/// The builder's group settings reach the coordinator: the heartbeat
/// interval answered, and the session timeout that removes a silent
/// member.
#[tokio::test]
async fn group_timing_set_on_the_builder() {
    let cluster = MockCluster::builder()
        .brokers(1)
        .consumer_group_heartbeat_interval(Duration::from_millis(2_000))
        .consumer_group_session_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    cluster.create_topic("t", 2, 1).unwrap();
    let mut conn = coordinator(&cluster, "timing").await;
    let r = conn.call(&join("timing", "m1", &["t"]), V).await;
    ok(&r);
    assert_eq!(r.heartbeat_interval_ms, 2_000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Silent past the session timeout: the member is gone.
    let d = describe(&mut conn, "timing").await;
    assert!(d.groups[0].members.is_empty(), "{:?}", d.groups[0].members);
}

/// OffsetFetch v9+ from a KIP-848 member names the member and its epoch:
/// an unknown member or an old epoch is refused, an admin fetch (no
/// member, epoch -1) is not (`ConsumerGroup.validateOffsetFetch`).
#[tokio::test]
async fn offset_fetch_checks_the_member_epoch() {
    use skotch_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    use skotch_protocol::messages::OffsetFetchRequest;
    let cluster = MockCluster::start(1).await.unwrap();
    cluster.create_topic("t", 1, 1).unwrap();
    let mut conn = coordinator(&cluster, "fetching").await;
    let r = conn.call(&join("fetching", "m1", &["t"]), V).await;
    ok(&r);
    let epoch = r.member_epoch;
    let fetch = |member: Option<&str>, member_epoch: i32| OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: "fetching".into(),
            member_id: member.map(str::to_string),
            member_epoch,
            topics: None,
        }],
        ..Default::default()
    };
    let code = |r: &skotch_protocol::messages::OffsetFetchResponse| {
        skotch_protocol::error::ErrorCode(r.groups[0].error_code)
    };
    use skotch_protocol::error::ErrorCode;
    assert_eq!(
        code(&conn.call(&fetch(Some("m1"), epoch), 9).await),
        ErrorCode::NONE
    );
    assert_eq!(
        code(&conn.call(&fetch(Some("m1"), epoch - 1), 9).await),
        ErrorCode::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        code(&conn.call(&fetch(Some("nobody"), 1), 9).await),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(code(&conn.call(&fetch(None, -1), 9).await), ErrorCode::NONE);
}
