//! Client-side partition assignors of the classic group protocol: the group
//! leader decodes every member's [`Subscription`], runs the assignor the
//! group agreed on (JoinGroup's `protocol_name`) and sends each member its
//! [`Assignment`] in SyncGroup.
//!
//! Three assignors, named and behaving like Java's (the default
//! `partition.assignment.strategy` of Java 3.x/4.x is
//! `[range, cooperative-sticky]`, see [`default_assignors`]):
//!
//! - [`RangeAssignor`] (`"range"`): per topic, contiguous ranges of
//!   partitions over the members subscribed to it.
//! - [`RoundRobinAssignor`] (`"roundrobin"`): all partitions of all
//!   subscribed topics dealt one by one over the members.
//! - [`CooperativeStickyAssignor`] (`"cooperative-sticky"`, KIP-429): a
//!   balanced assignment that keeps each member's owned partitions where it
//!   can and, under the cooperative protocol, never hands a partition to a
//!   new owner in the same rebalance in which another member still owns it.
//!
//! Assignors are pure functions of their input: no IO, no clock, and the
//! same input always gives the same output.
//!
//! Range and cooperative-sticky are rack-aware (KIP-881) when members set
//! `client.rack` and the partitions' replica racks are given
//! ([`Assignor::assign_with_racks`]), under the same conditions as Java's
//! (some partitions have no replica in some of the members' racks): range
//! like Java's `RangeAssignor`, with identical results; cooperative-sticky
//! after Java's `AbstractStickyAssignor` priorities (balance first, then
//! partitions in their member's rack, then stickiness) but not with its
//! greedy passes: results differ from Java's, never less balanced, and
//! when as balanced never with more partitions outside their member's rack.
//! Roundrobin ignores racks, as Java's `RoundRobinAssignor` does.

mod cooperative_sticky;
mod range;
mod roundrobin;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use skotch_protocol::codec::DecodeError;

pub use cooperative_sticky::CooperativeStickyAssignor;
pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;

pub use super::consumer_protocol::{Assignment, Subscription};
use crate::consumer::TopicPartition;

/// How members give up partitions during a rebalance (Java's
/// `ConsumerPartitionAssignor.RebalanceProtocol`, KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining.
    Eager,
    /// Members keep their partitions while rejoining and revoke only those
    /// the new assignment takes away; a moving partition reaches its new
    /// owner in a follow-up rebalance.
    Cooperative,
}

/// One member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSubscription {
    /// The member's `group.instance.id` (static membership, KIP-345).
    /// Range and roundrobin order static members first, by this id, so that
    /// their assignment survives restarts.
    pub group_instance_id: Option<String>,
    /// The member's decoded subscription.
    pub subscription: Subscription,
}

impl MemberSubscription {
    /// A dynamic member (no `group.instance.id`).
    pub fn new(subscription: Subscription) -> Self {
        Self {
            group_instance_id: None,
            subscription,
        }
    }

    /// A member from a JoinGroup response entry: its `group_instance_id`
    /// and its `metadata` (ConsumerProtocol subscription bytes).
    ///
    /// # Errors
    ///
    /// The [`DecodeError`] of [`Subscription::decode`].
    pub fn from_metadata(
        group_instance_id: Option<String>,
        metadata: Bytes,
    ) -> Result<Self, DecodeError> {
        Ok(Self {
            group_instance_id,
            subscription: Subscription::decode(metadata)?,
        })
    }
}

/// The racks of each partition's replicas (KIP-881): topic → one set per
/// partition index, from the brokers' `broker.rack` in metadata.
pub type PartitionRacks = BTreeMap<String, Vec<BTreeSet<String>>>;

/// A partition assignor of the classic group protocol (Java's
/// `ConsumerPartitionAssignor`).
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name sent in JoinGroup: `"range"`, `"roundrobin"`,
    /// `"cooperative-sticky"`.
    fn name(&self) -> &'static str;

    /// The preferred rebalance protocol: [`RebalanceProtocol::Cooperative`]
    /// only for cooperative-sticky.
    fn protocol(&self) -> RebalanceProtocol;

    /// Every protocol the assignor supports, preferred first. A consumer
    /// configured with several assignors rebalances with the best protocol
    /// all of them support (Java's `ConsumerCoordinator` rule).
    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![self.protocol()]
    }

    /// User data for this member's [`Subscription`]: `topics` it
    /// subscribes to, the partitions it `owned` and the generation
    /// (`generation_id`, -1 when none) they were assigned in. `None` for
    /// range and roundrobin; cooperative-sticky writes the generation as an
    /// int32, as Java does, for leaders that read only version 0/1
    /// subscriptions.
    fn subscription_user_data(
        &self,
        topics: &[String],
        owned: &[TopicPartition],
        generation_id: i32,
    ) -> Option<Bytes> {
        let _ = (topics, owned, generation_id);
        None
    }

    /// The assignment of every member (each member of `members` appears in
    /// the result, possibly with no partitions).
    ///
    /// `partitions_per_topic` maps each subscribed topic that exists in the
    /// metadata to its partition count (topics missing from the metadata
    /// are absent; counts <= 0 are treated as absent). `members` maps member
    /// ids to their subscriptions. Topics a member subscribes to that are
    /// not in `partitions_per_topic` are ignored.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Assignment>;

    /// [`assign`](Self::assign) knowing where each partition's replicas
    /// are (KIP-881), so that members can be given partitions with a
    /// replica in their `client.rack`. The default ignores the racks.
    fn assign_with_racks(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        partition_racks: &PartitionRacks,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Assignment> {
        let _ = partition_racks;
        self.assign(partitions_per_topic, members)
    }
}

/// The assignor named `name` (as in JoinGroup's `protocol_name` and Java's
/// `partition.assignment.strategy` short names), or `None` for an unknown
/// name. Java's class names (`org.apache.kafka.clients.consumer.RangeAssignor`
/// etc.) are accepted too.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    let short = name.strip_prefix("org.apache.kafka.clients.consumer.");
    match short.unwrap_or(name) {
        "range" | "RangeAssignor" => Some(Box::new(RangeAssignor)),
        "roundrobin" | "RoundRobinAssignor" => Some(Box::new(RoundRobinAssignor)),
        "cooperative-sticky" | "CooperativeStickyAssignor" => {
            Some(Box::new(CooperativeStickyAssignor))
        }
        _ => None,
    }
}

/// Java's default `partition.assignment.strategy`: range first, then
/// cooperative-sticky (so that a group can later move to cooperative-sticky
/// by a rolling restart).
pub fn default_assignors() -> Vec<Box<dyn Assignor>> {
    vec![Box::new(RangeAssignor), Box::new(CooperativeStickyAssignor)]
}

/// Compare strings like Java's `String.compareTo`: by UTF-16 code unit,
/// which differs from Rust's byte order for characters above U+FFFF. Used
/// wherever the Java assignors sort user-chosen ids.
pub(crate) fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Member ids in Java's `AbstractPartitionAssignor.MemberInfo` order:
/// static members first, by `group.instance.id`, then dynamic members by
/// member id. Ties (two members claiming one instance id, which the broker
/// prevents) fall back to the member id so the order stays total.
pub(crate) fn member_order(members: &BTreeMap<String, MemberSubscription>) -> Vec<&str> {
    let mut ids: Vec<(&str, Option<&str>)> = members
        .iter()
        .map(|(id, m)| (id.as_str(), m.group_instance_id.as_deref()))
        .collect();
    ids.sort_by(|(a_id, a_static), (b_id, b_static)| {
        let by_instance = match (a_static, b_static) {
            (Some(a), Some(b)) => java_cmp(a, b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_instance.then_with(|| java_cmp(a_id, b_id))
    });
    ids.into_iter().map(|(id, _)| id).collect()
}

/// The topics `member` subscribes to, without duplicates.
pub(crate) fn topics_of(member: &MemberSubscription) -> BTreeSet<&str> {
    member
        .subscription
        .topics
        .iter()
        .map(String::as_str)
        .collect()
}

/// The partition count of `topic`, if it is known and positive.
pub(crate) fn partition_count(
    partitions_per_topic: &BTreeMap<String, i32>,
    topic: &str,
) -> Option<i32> {
    partitions_per_topic.get(topic).copied().filter(|&n| n > 0)
}

/// Per-member partition lists turned into assignments, one per member of
/// `members` (empty for members that got nothing), partitions sorted.
pub(crate) fn into_assignments(
    members: &BTreeMap<String, MemberSubscription>,
    mut lists: BTreeMap<String, Vec<TopicPartition>>,
) -> BTreeMap<String, Assignment> {
    members
        .keys()
        .map(|id| {
            let mut partitions = lists.remove(id).unwrap_or_default();
            partitions.sort();
            (id.clone(), Assignment::new(partitions))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders and invariant checks shared by the assignor tests.

    use super::*;

    pub fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    pub fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
        counts.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    /// Members subscribed to the given topics, dynamic, owning nothing.
    pub fn members(subs: &[(&str, &[&str])]) -> BTreeMap<String, MemberSubscription> {
        subs.iter()
            .map(|(id, topics)| {
                (
                    id.to_string(),
                    MemberSubscription::new(Subscription::new(topics.iter().copied())),
                )
            })
            .collect()
    }

    /// `member -> [(topic, partition)]` for compact expectations.
    pub fn flat(
        assignments: &BTreeMap<String, Assignment>,
    ) -> BTreeMap<String, Vec<(String, i32)>> {
        assignments
            .iter()
            .map(|(m, a)| {
                (
                    m.clone(),
                    a.partitions
                        .iter()
                        .map(|tp| (tp.topic.clone(), tp.partition))
                        .collect(),
                )
            })
            .collect()
    }

    /// Every member appears; every partition goes to at most one member
    /// subscribed to its topic; only existing partitions are handed out.
    /// Returns the number of partitions handed out.
    pub fn check_valid(
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
        out: &BTreeMap<String, Assignment>,
    ) -> usize {
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            members.keys().collect::<Vec<_>>(),
            "every member and only members"
        );
        let mut seen = BTreeSet::new();
        for (id, a) in out {
            let subscribed = topics_of(&members[id]);
            for p in &a.partitions {
                assert!(
                    subscribed.contains(p.topic.as_str()),
                    "{id} got {p} without subscribing"
                );
                let n = partition_count(partitions_per_topic, &p.topic).expect("known topic");
                assert!((0..n).contains(&p.partition), "{p} does not exist");
                assert!(seen.insert(p.clone()), "{p} assigned twice");
            }
        }
        seen.len()
    }

    /// All partitions of topics someone subscribes to.
    pub fn all_subscribed(
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeSet<TopicPartition> {
        let mut out = BTreeSet::new();
        for m in members.values() {
            for t in topics_of(m) {
                if let Some(n) = partition_count(partitions_per_topic, t) {
                    out.extend((0..n).map(|p| tp(t, p)));
                }
            }
        }
        out
    }

    /// Max minus min partition count over members.
    pub fn spread(out: &BTreeMap<String, Assignment>) -> usize {
        let counts: Vec<usize> = out.values().map(|a| a.partitions.len()).collect();
        counts.iter().max().copied().unwrap_or(0) - counts.iter().min().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_protocols() {
        for name in ["range", "roundrobin", "cooperative-sticky"] {
            assert_eq!(by_name(name).unwrap().name(), name);
        }
        assert_eq!(
            by_name("org.apache.kafka.clients.consumer.CooperativeStickyAssignor")
                .unwrap()
                .name(),
            "cooperative-sticky"
        );
        assert!(by_name("sticky").is_none());
        assert_eq!(RangeAssignor.protocol(), RebalanceProtocol::Eager);
        assert_eq!(RoundRobinAssignor.protocol(), RebalanceProtocol::Eager);
        assert_eq!(
            CooperativeStickyAssignor.supported_protocols(),
            vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
        );
        let names: Vec<_> = default_assignors().iter().map(|a| a.name()).collect();
        assert_eq!(names, ["range", "cooperative-sticky"]);
        assert_eq!(RangeAssignor.subscription_user_data(&[], &[], 3), None);
    }

    #[test]
    fn member_from_join_group_metadata() {
        let mut s = Subscription::new(["t"]);
        s.generation_id = 3;
        let m = MemberSubscription::from_metadata(Some("i".into()), s.encode().unwrap()).unwrap();
        assert_eq!(m.subscription, s);
        assert_eq!(m.group_instance_id.as_deref(), Some("i"));
        assert!(MemberSubscription::from_metadata(None, Bytes::new()).is_err());
    }

    #[test]
    fn member_order_is_java_member_info_order() {
        let mut m = test_support::members(&[("b", &[]), ("a", &[]), ("z", &[]), ("y", &[])]);
        m.get_mut("z").unwrap().group_instance_id = Some("i1".into());
        m.get_mut("y").unwrap().group_instance_id = Some("i2".into());
        assert_eq!(member_order(&m), ["z", "y", "a", "b"]);
    }

    #[test]
    fn java_string_order_is_utf16() {
        // U+FF61 sorts after U+10000 by code point, before it in UTF-16.
        assert_eq!(java_cmp("\u{FF61}", "\u{10000}"), Ordering::Greater);
        assert_eq!("\u{FF61}".cmp("\u{10000}"), Ordering::Less);
        assert_eq!(java_cmp("a", "b"), Ordering::Less);
    }
}
