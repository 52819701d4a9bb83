//! The embedded "consumer" protocol: the subscription a member puts in
//! JoinGroup (`protocols[].metadata`) and the assignment the leader puts in
//! SyncGroup (`assignments[].assignment`), byte for byte as Java's
//! `org.apache.kafka.clients.consumer.internals.ConsumerProtocol` writes them,
//! so that skotch and Java consumers can share one group.
//!
//! Both are an int16 version followed by the `ConsumerProtocolSubscription`
//! or `ConsumerProtocolAssignment` structure at that version (never
//! flexible). skotch writes version 3, as Java 3.x/4.x does: the
//! subscription then carries the owned partitions (KIP-429), the generation
//! they come from (KIP-792) and the rack id (KIP-881).
//!
//! Decoding follows Java's rules: a negative version is an error, a version
//! above 3 is read as version 3 (newer versions may only append fields), and
//! bytes left after the structure are ignored. An empty rack id reads as
//! none.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use skotch_protocol::codec::{DecodeError, DecodeErrorKind, EncodeError, Reader};
use skotch_protocol::messages::consumer_protocol_assignment as assignment_msg;
use skotch_protocol::messages::consumer_protocol_subscription as subscription_msg;
use skotch_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, Message,
};

use crate::consumer::TopicPartition;

/// The JoinGroup `protocol_type` of consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The highest ConsumerProtocol version skotch knows, and the one it writes:
/// 3 (Java's `ConsumerProtocolSubscription.HIGHEST_SUPPORTED_VERSION`).
pub const LATEST_VERSION: i16 = 3;

/// The generation of a member that has none (Java's `DEFAULT_GENERATION`).
pub const NO_GENERATION: i32 = -1;

/// A member's subscription, as sent in JoinGroup's protocol metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member wants to consume. Written sorted, as Java does.
    pub topics: Vec<String>,
    /// Assignor-specific data (for cooperative-sticky, the generation as an
    /// int32; see
    /// [`Assignor::subscription_user_data`](super::assignor::Assignor::subscription_user_data)).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (version 1+, KIP-429): what it
    /// keeps consuming during a cooperative rebalance.
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation `owned_partitions` were assigned in (version 2+),
    /// [`NO_GENERATION`] (-1) when unknown.
    pub generation_id: i32,
    /// The member's rack, Java's `client.rack` (version 3+, KIP-881).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: NO_GENERATION,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics` owning nothing, with no generation.
    pub fn new(topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The version-prefixed bytes at [`LATEST_VERSION`].
    ///
    /// # Errors
    ///
    /// [`EncodeError::TooLong`] for a topic name or rack id over 32767 bytes.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        self.encode_version(LATEST_VERSION)
    }

    /// The version-prefixed bytes at `version`; a version above
    /// [`LATEST_VERSION`] is written as [`LATEST_VERSION`] (Java's
    /// `serializeSubscription(subscription, version)`). Fields `version`
    /// cannot carry are dropped.
    ///
    /// # Errors
    ///
    /// [`EncodeError::UnsupportedVersion`] for a negative version;
    /// [`EncodeError::TooLong`] as for [`Subscription::encode`].
    pub fn encode_version(&self, version: i16) -> Result<Bytes, EncodeError> {
        let version = encode_version::<ConsumerProtocolSubscription>(version)?;
        let mut topics = self.topics.clone();
        topics.sort();
        let data = ConsumerProtocolSubscription {
            topics,
            user_data: self.user_data.clone(),
            owned_partitions: group_by_topic(&self.owned_partitions)
                .into_iter()
                .map(|(topic, partitions)| subscription_msg::TopicPartition { topic, partitions })
                .collect(),
            generation_id: self.generation_id,
            rack_id: self.rack_id.clone(),
        };
        version_prefixed(&data, version)
    }

    /// Read version-prefixed subscription bytes of any version >= 0.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] for truncated or malformed input, or
    /// [`DecodeErrorKind::UnsupportedVersion`] for a negative version.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = decode_version::<ConsumerProtocolSubscription>(&mut r)?;
        let data = ConsumerProtocolSubscription::decode(&mut r, version)?;
        Ok(Self {
            topics: data.topics,
            user_data: data.user_data,
            owned_partitions: flatten(
                data.owned_partitions
                    .into_iter()
                    .map(|t| (t.topic, t.partitions)),
            ),
            generation_id: data.generation_id,
            rack_id: data.rack_id.filter(|r| !r.is_empty()),
        })
    }
}

/// A member's assignment, as sent in SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The partitions assigned to the member. Written grouped by topic,
    /// sorted.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data (none for range, roundrobin and
    /// cooperative-sticky).
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` with no user data.
    pub fn new(partitions: Vec<TopicPartition>) -> Self {
        Self {
            partitions,
            user_data: None,
        }
    }

    /// The version-prefixed bytes at [`LATEST_VERSION`].
    ///
    /// # Errors
    ///
    /// [`EncodeError::TooLong`] for a topic name over 32767 bytes.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        self.encode_version(LATEST_VERSION)
    }

    /// The version-prefixed bytes at `version` (above [`LATEST_VERSION`]
    /// written as [`LATEST_VERSION`]; all versions have the same layout).
    ///
    /// # Errors
    ///
    /// [`EncodeError::UnsupportedVersion`] for a negative version;
    /// [`EncodeError::TooLong`] as for [`Assignment::encode`].
    pub fn encode_version(&self, version: i16) -> Result<Bytes, EncodeError> {
        let version = encode_version::<ConsumerProtocolAssignment>(version)?;
        let data = ConsumerProtocolAssignment {
            assigned_partitions: group_by_topic(&self.partitions)
                .into_iter()
                .map(|(topic, partitions)| assignment_msg::TopicPartition { topic, partitions })
                .collect(),
            user_data: self.user_data.clone(),
        };
        version_prefixed(&data, version)
    }

    /// Read version-prefixed assignment bytes of any version >= 0.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] for truncated or malformed input (including fewer
    /// than 2 bytes, which Java also refuses), or
    /// [`DecodeErrorKind::UnsupportedVersion`] for a negative version.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = decode_version::<ConsumerProtocolAssignment>(&mut r)?;
        let data = ConsumerProtocolAssignment::decode(&mut r, version)?;
        Ok(Self {
            partitions: flatten(
                data.assigned_partitions
                    .into_iter()
                    .map(|t| (t.topic, t.partitions)),
            ),
            user_data: data.user_data,
        })
    }
}

/// Java's `checkSubscriptionVersion`/`checkAssignmentVersion` for writing:
/// refuse negative versions, write newer ones as the newest known.
fn encode_version<M: Message>(version: i16) -> Result<i16, EncodeError> {
    if version < M::VERSIONS.0 {
        return Err(EncodeError::UnsupportedVersion {
            message: M::NAME,
            version,
        });
    }
    Ok(version.min(M::VERSIONS.1))
}

/// Read the int16 prefix and pick the version to decode the body at.
fn decode_version<M: Message>(r: &mut Reader) -> Result<i16, DecodeError> {
    let version = r.i16("consumer_protocol.version")?;
    if version < M::VERSIONS.0 {
        return Err(
            DecodeError::new("version", DecodeErrorKind::UnsupportedVersion(version))
                .in_message(M::NAME, version),
        );
    }
    // A newer version may only append fields (ConsumerProtocol's contract),
    // so it is read as the newest one we know and the rest is ignored.
    Ok(version.min(M::VERSIONS.1))
}

fn version_prefixed<M: Message>(data: &M, version: i16) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(version);
    data.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Partitions grouped by topic, topics and partitions in ascending order
/// (Java sorts owned partitions the same way; for assignments the order
/// carries no meaning).
fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(tp.topic.clone())
            .or_default()
            .push(tp.partition);
    }
    for partitions in by_topic.values_mut() {
        partitions.sort_unstable();
    }
    by_topic
}

fn flatten(topics: impl Iterator<Item = (String, Vec<i32>)>) -> Vec<TopicPartition> {
    let mut out = Vec::new();
    for (topic, partitions) in topics {
        out.extend(
            partitions
                .into_iter()
                .map(|partition| TopicPartition::new(topic.clone(), partition)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    /// Builds expected bytes field by field, as Java's `Struct` writer does.
    #[derive(Default)]
    struct Golden(Vec<u8>);

    impl Golden {
        fn i16(mut self, v: i16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn string(self, s: &str) -> Self {
            let mut g = self.i16(s.len() as i16);
            g.0.extend_from_slice(s.as_bytes());
            g
        }
        fn bytes(self, b: Option<&[u8]>) -> Self {
            match b {
                None => self.i32(-1),
                Some(b) => {
                    let mut g = self.i32(b.len() as i32);
                    g.0.extend_from_slice(b);
                    g
                }
            }
        }
        fn done(self) -> Bytes {
            Bytes::from(self.0)
        }
    }

    fn sample_subscription() -> Subscription {
        Subscription {
            topics: vec!["foo".into(), "bar".into()],
            user_data: Some(Bytes::from_static(&[1, 2])),
            owned_partitions: vec![tp("foo", 1), tp("bar", 0), tp("foo", 0)],
            generation_id: 7,
            rack_id: Some("r1".into()),
        }
    }

    #[test]
    fn subscription_v0_golden() {
        let expected = Golden::default()
            .i16(0)
            .i32(2)
            .string("bar")
            .string("foo")
            .bytes(Some(&[1, 2]))
            .done();
        let bytes = sample_subscription().encode_version(0).unwrap();
        assert_eq!(bytes, expected);
        let back = Subscription::decode(bytes).unwrap();
        assert_eq!(
            back,
            Subscription {
                topics: vec!["bar".into(), "foo".into()],
                user_data: Some(Bytes::from_static(&[1, 2])),
                ..Subscription::default()
            }
        );
    }

    #[test]
    fn subscription_v3_golden() {
        let expected = Golden::default()
            .i16(3)
            .i32(2)
            .string("bar")
            .string("foo")
            .bytes(Some(&[1, 2]))
            // owned partitions, grouped by topic and sorted
            .i32(2)
            .string("bar")
            .i32(1)
            .i32(0)
            .string("foo")
            .i32(2)
            .i32(0)
            .i32(1)
            // generation, rack
            .i32(7)
            .string("r1")
            .done();
        let bytes = sample_subscription().encode().unwrap();
        assert_eq!(bytes, expected);
        let back = Subscription::decode(bytes).unwrap();
        assert_eq!(back.topics, vec!["bar", "foo"]);
        assert_eq!(
            back.owned_partitions,
            vec![tp("bar", 0), tp("foo", 0), tp("foo", 1)]
        );
        assert_eq!(back.generation_id, 7);
        assert_eq!(back.rack_id.as_deref(), Some("r1"));
    }

    #[test]
    fn subscription_v3_nulls() {
        let expected = Golden::default()
            .i16(3)
            .i32(1)
            .string("t")
            .bytes(None)
            .i32(0)
            .i32(-1)
            .i16(-1)
            .done();
        let bytes = Subscription::new(["t"]).encode().unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(
            Subscription::decode(bytes).unwrap(),
            Subscription::new(["t"])
        );
    }

    #[test]
    fn subscription_v1_and_v2_read() {
        let v1 = Golden::default()
            .i16(1)
            .i32(1)
            .string("t")
            .bytes(None)
            .i32(1)
            .string("t")
            .i32(1)
            .i32(4)
            .done();
        let s = Subscription::decode(v1).unwrap();
        assert_eq!(s.owned_partitions, vec![tp("t", 4)]);
        assert_eq!(s.generation_id, NO_GENERATION);
        let v2 = Golden::default()
            .i16(2)
            .i32(0)
            .bytes(None)
            .i32(0)
            .i32(12)
            .done();
        assert_eq!(Subscription::decode(v2).unwrap().generation_id, 12);
    }

    #[test]
    fn newer_versions_read_as_v3_and_trailing_bytes_are_ignored() {
        let mut v9 = Golden::default()
            .i16(9)
            .i32(1)
            .string("t")
            .bytes(None)
            .i32(0)
            .i32(5)
            .string("rack")
            .done()
            .to_vec();
        v9.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
        let s = Subscription::decode(Bytes::from(v9)).unwrap();
        assert_eq!(s.topics, vec!["t"]);
        assert_eq!(s.generation_id, 5);
        assert_eq!(s.rack_id.as_deref(), Some("rack"));

        let mut a = Golden::default()
            .i16(i16::MAX)
            .i32(1)
            .string("t")
            .i32(1)
            .i32(3)
            .bytes(None)
            .done()
            .to_vec();
        a.push(0x42);
        let a = Assignment::decode(Bytes::from(a)).unwrap();
        assert_eq!(a.partitions, vec![tp("t", 3)]);
    }

    #[test]
    fn empty_rack_reads_as_none() {
        let bytes = Golden::default()
            .i16(3)
            .i32(0)
            .bytes(None)
            .i32(0)
            .i32(-1)
            .string("")
            .done();
        assert_eq!(Subscription::decode(bytes).unwrap().rack_id, None);
    }

    #[test]
    fn assignment_golden_v0_and_v3() {
        let a = Assignment {
            partitions: vec![tp("b", 2), tp("a", 1), tp("b", 0)],
            user_data: None,
        };
        for version in [0, 3] {
            let expected = Golden::default()
                .i16(version)
                .i32(2)
                .string("a")
                .i32(1)
                .i32(1)
                .string("b")
                .i32(2)
                .i32(0)
                .i32(2)
                .bytes(None)
                .done();
            let bytes = a.encode_version(version).unwrap();
            assert_eq!(bytes, expected, "v{version}");
            assert_eq!(
                Assignment::decode(bytes).unwrap().partitions,
                vec![tp("a", 1), tp("b", 0), tp("b", 2)]
            );
        }
        let with_data = Assignment {
            partitions: vec![],
            user_data: Some(Bytes::from_static(b"x")),
        };
        let expected = Golden::default().i16(3).i32(0).bytes(Some(b"x")).done();
        assert_eq!(with_data.encode().unwrap(), expected);
        assert_eq!(Assignment::decode(expected).unwrap(), with_data);
    }

    #[test]
    fn versions_above_latest_are_written_as_latest() {
        let s = sample_subscription();
        assert_eq!(s.encode_version(42).unwrap(), s.encode().unwrap());
        assert!(s.encode_version(-1).is_err());
        assert!(Assignment::default().encode_version(-3).is_err());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Subscription::decode(Bytes::new()).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0])).is_err());
        assert!(Assignment::decode(Bytes::new()).is_err());
        assert!(Assignment::decode(Bytes::from_static(&[0, 3])).is_err());
        // negative version
        let neg = Golden::default().i16(-1).i32(0).bytes(None).done();
        let err = Subscription::decode(neg.clone()).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnsupportedVersion(-1));
        assert!(Assignment::decode(neg).is_err());
        // a topic count far beyond the input
        let huge = Golden::default().i16(3).i32(i32::MAX).done();
        assert!(Subscription::decode(huge.clone()).is_err());
        assert!(Assignment::decode(huge).is_err());
        // every truncation of a valid encoding fails
        let full = sample_subscription().encode().unwrap();
        for n in 0..full.len() {
            assert!(Subscription::decode(full.slice(..n)).is_err(), "len {n}");
        }
        let full = Assignment::new(vec![tp("t", 1), tp("u", 2)])
            .encode()
            .unwrap();
        for n in 0..full.len() {
            assert!(Assignment::decode(full.slice(..n)).is_err(), "len {n}");
        }
    }

    fn topic() -> impl Strategy<Value = String> {
        "[a-z._-]{1,8}"
    }

    fn partitions() -> impl Strategy<Value = Vec<TopicPartition>> {
        proptest::collection::vec(
            (topic(), 0..100i32).prop_map(|(t, p)| TopicPartition::new(t, p)),
            0..12,
        )
    }

    fn subscription() -> impl Strategy<Value = Subscription> {
        (
            proptest::collection::vec(topic(), 0..6),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            partitions(),
            -1..1000i32,
            proptest::option::of("[a-z0-9]{0,6}"),
        )
            .prop_map(
                |(topics, user_data, owned, generation_id, rack_id)| Subscription {
                    topics,
                    user_data: user_data.map(Bytes::from),
                    owned_partitions: owned,
                    generation_id,
                    rack_id,
                },
            )
    }

    proptest! {
        #[test]
        fn subscription_round_trip(s in subscription()) {
            let back = Subscription::decode(s.encode().unwrap()).unwrap();
            let mut expected = s.clone();
            expected.topics.sort();
            expected.owned_partitions.sort();
            expected.rack_id = expected.rack_id.filter(|r| !r.is_empty());
            prop_assert_eq!(back, expected);
        }

        #[test]
        fn assignment_round_trip(
            partitions in partitions(),
            user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) {
            let a = Assignment { partitions, user_data: user_data.map(Bytes::from) };
            let back = Assignment::decode(a.encode().unwrap()).unwrap();
            let mut expected = a.clone();
            expected.partitions.sort();
            prop_assert_eq!(back, expected);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Subscription::decode(Bytes::from(bytes.clone()));
            let _ = Assignment::decode(Bytes::from(bytes));
        }
    }
}
