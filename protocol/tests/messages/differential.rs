//! Differential tests against the kafka-protocol crate (an independent
//! implementation generated from the same JSON definitions), for the core
//! request/response pairs at every version both support.
//!
//! For each message and version:
//! 1. our sample value (every field the version carries set to a distinct
//!    value, or nulls) is encoded by us and decoded by kafka-protocol, and
//!    the two values are compared field by field (via their `Debug` trees,
//!    see [`crate::debug_tree`]);
//! 2. kafka-protocol re-encodes its value: the bytes must be identical;
//! 3. we decode those bytes and must get our value back;
//! 4. the same for kafka-protocol's default value, encoded by it and
//!    decoded by us.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable, Encodable, Message as TheirMessage};
use skotch_protocol::messages::{self as ours, Message};
use skotch_protocol::Reader;

use crate::debug_tree::{compare, parse, Diff};
use crate::samples::Sample;

fn their_encode<T: Encodable>(t: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    t.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("kafka-protocol encode v{version}: {e}"));
    buf.freeze()
}

fn our_decode<O: Message>(bytes: &Bytes, version: i16) -> O {
    let mut r = Reader::new(bytes.clone());
    let o = O::decode(&mut r, version).unwrap_or_else(|e| panic!("our decode: {e}"));
    assert!(
        r.is_empty(),
        "{} v{version}: {} bytes left",
        O::NAME,
        r.remaining()
    );
    o
}

fn fields_equal<O: Message, T: std::fmt::Debug>(
    o: &O,
    t: &T,
    version: i16,
    what: &str,
    only: &mut BTreeSet<String>,
) -> usize {
    let mut d = Diff::default();
    compare(
        &parse(&format!("{o:?}")),
        &parse(&format!("{t:?}")),
        O::NAME,
        &mut d,
    );
    assert!(
        d.mismatches.is_empty(),
        "{} v{version} ({what}): fields differ:\n{}",
        O::NAME,
        d.mismatches.join("\n")
    );
    only.extend(d.only_ours.iter().map(|p| format!("ours {p}")));
    only.extend(d.only_theirs.iter().map(|p| format!("theirs {p}")));
    d.equal
}

/// Run the checks for one message type; returns the versions tested.
fn check<O, T>(only: &mut BTreeSet<String>) -> usize
where
    O: Message + Sample,
    T: TheirMessage + Encodable + Decodable + Default + std::fmt::Debug + PartialEq,
{
    let lo = O::VERSIONS.0.max(T::VERSIONS.min);
    let hi = O::VERSIONS.1.min(T::VERSIONS.max);
    assert!(lo <= hi, "{}: no common version", O::NAME);
    let mut compared = 0;
    for version in lo..=hi {
        for nulls in [false, true] {
            let what = if nulls { "nulls" } else { "sample" };
            let value = O::sample(version, nulls);
            let mut buf = BytesMut::new();
            value.encode(&mut buf, version).unwrap();
            let bytes = buf.freeze();
            // Ours -> theirs.
            let mut b = bytes.clone();
            let theirs = T::decode(&mut b, version)
                .unwrap_or_else(|e| panic!("{} v{version}: kafka-protocol decode: {e}", O::NAME));
            assert!(
                b.is_empty(),
                "{} v{version}: kafka-protocol left bytes",
                O::NAME
            );
            compared += fields_equal(&value, &theirs, version, what, only);
            // Theirs -> ours, byte for byte.
            let again = their_encode(&theirs, version);
            assert_eq!(
                again,
                bytes,
                "{} v{version} ({what}): encodings differ",
                O::NAME
            );
            assert_eq!(our_decode::<O>(&again, version), value);
        }
        // Their defaults, encoded by them, decoded by us.
        let t = T::default();
        let bytes = their_encode(&t, version);
        let o: O = our_decode(&bytes, version);
        fields_equal(&o, &t, version, "their default", only);
        let mut mine = BytesMut::new();
        O::default().encode(&mut mine, version).unwrap();
        assert_eq!(
            mine.freeze(),
            bytes,
            "{} v{version}: default encodings differ",
            O::NAME
        );
    }
    assert!(compared > 0, "{}: no fields compared", O::NAME);
    usize::try_from(hi - lo + 1).unwrap()
}

macro_rules! pairs {
    ($only:ident, $($name:ident),* $(,)?) => {{
        let mut n = 0;
        $( n += check::<ours::$name, kafka_protocol::messages::$name>(&mut $only); )*
        n
    }};
}

#[test]
fn same_bytes_and_fields_as_kafka_protocol() {
    let mut only = BTreeSet::new();
    let versions = pairs!(
        only,
        ApiVersionsRequest,
        ApiVersionsResponse,
        MetadataRequest,
        MetadataResponse,
        ProduceRequest,
        ProduceResponse,
        FetchRequest,
        FetchResponse,
        ListOffsetsRequest,
        ListOffsetsResponse,
        CreateTopicsRequest,
        CreateTopicsResponse,
        DeleteTopicsRequest,
        DeleteTopicsResponse,
        RequestHeader,
        ResponseHeader,
    );
    assert!(versions > 100, "{versions}");
    // Fields one implementation has and the other lacks (none expected:
    // both follow the same definitions).
    assert!(
        only.is_empty(),
        "fields on one side only:\n{}",
        only.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn group_and_sasl_messages_match_kafka_protocol() {
    let mut only = BTreeSet::new();
    let versions = pairs!(
        only,
        FindCoordinatorRequest,
        FindCoordinatorResponse,
        JoinGroupRequest,
        JoinGroupResponse,
        SyncGroupRequest,
        SyncGroupResponse,
        HeartbeatRequest,
        HeartbeatResponse,
        LeaveGroupRequest,
        LeaveGroupResponse,
        OffsetCommitRequest,
        OffsetCommitResponse,
        OffsetFetchRequest,
        OffsetFetchResponse,
        DescribeGroupsRequest,
        DescribeGroupsResponse,
        ListGroupsRequest,
        ListGroupsResponse,
        ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse,
        ConsumerGroupDescribeRequest,
        ConsumerGroupDescribeResponse,
        SaslHandshakeRequest,
        SaslHandshakeResponse,
        SaslAuthenticateRequest,
        SaslAuthenticateResponse,
        InitProducerIdRequest,
        InitProducerIdResponse,
        ConsumerProtocolSubscription,
        ConsumerProtocolAssignment,
    );
    assert!(versions > 100, "{versions}");
    assert!(
        only.is_empty(),
        "fields on one side only:\n{}",
        only.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn hand_built_kafka_protocol_metadata_response() {
    use kafka_protocol::messages::metadata_response as theirs;
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let t = theirs::MetadataResponse::default()
        .with_throttle_time_ms(5)
        .with_brokers(vec![theirs::MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("broker-1"))
            .with_port(9092)
            .with_rack(Some(StrBytes::from_static_str("r1")))])
        .with_cluster_id(Some(StrBytes::from_static_str("cluster")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![theirs::MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("events"))))
            .with_partitions(vec![theirs::MetadataResponsePartition::default()
                .with_partition_index(3)
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(7)
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])])]);
    for version in [0, 1, 7, 9, 12, 13] {
        let o: ours::MetadataResponse = our_decode(&their_encode(&t, version), version);
        let broker = &o.brokers[0];
        assert_eq!(
            (broker.node_id, broker.host.as_str(), broker.port),
            (1, "broker-1", 9092)
        );
        let topic = &o.topics[0];
        assert_eq!(topic.name.as_deref(), Some("events"));
        let p = &topic.partitions[0];
        assert_eq!((p.partition_index, p.leader_id), (3, 1));
        assert_eq!(p.replica_nodes, [1, 2]);
        assert_eq!(p.isr_nodes, [1]);
        if version >= 1 {
            assert_eq!(broker.rack.as_deref(), Some("r1"));
            assert_eq!(o.controller_id, 1);
        }
        if version >= 2 {
            assert_eq!(o.cluster_id.as_deref(), Some("cluster"));
        }
        if version >= 3 {
            assert_eq!(o.throttle_time_ms, 5);
        }
        if version >= 7 {
            assert_eq!(p.leader_epoch, 7);
        } else {
            assert_eq!(p.leader_epoch, -1);
        }
    }
}
