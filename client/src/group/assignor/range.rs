//! The range assignor, Java's `RangeAssignor` (`"range"`).
//!
//! Topic by topic, the members subscribed to the topic are put in
//! `MemberInfo` order (static members first by `group.instance.id`, then
//! dynamic members by member id) and each gets a contiguous range of
//! `partitions / members` partitions, the first `partitions % members` of
//! them one more. With 3 members and 7 partitions: 3, 2 and 2. Members that
//! subscribe to the same topics therefore get the same partition numbers of
//! every topic (co-partitioning), at the cost of balance over many topics.
//!
//! Rack-aware assignment (KIP-881, Java's `assignWithRackMatching`) is used
//! when members set `client.rack` and some partitions have no replica in
//! some of the racks the partitions use: first each member takes, within
//! its per-topic quota, partitions with a replica in its rack (for topics
//! with the same partition count and subscribers, partition p of all of
//! them together, keeping co-partitioning); then the rest is assigned in
//! ranges as without racks. Balance comes before rack alignment.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    into_assignments, member_order, partition_count, topics_of, Assignment, Assignor,
    MemberSubscription, PartitionRacks, RebalanceProtocol,
};
use crate::consumer::TopicPartition;

/// Java's `RangeAssignor`: contiguous partition ranges per topic. Eager.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Assignment> {
        self.assign_with_racks(partitions_per_topic, &PartitionRacks::new(), members)
    }

    fn assign_with_racks(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        partition_racks: &PartitionRacks,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Assignment> {
        let order: Vec<(&str, BTreeSet<&str>, Option<&str>)> = member_order(members)
            .into_iter()
            .filter_map(|id| {
                let m = members.get(id)?;
                let rack = m.subscription.rack_id.as_deref().filter(|r| !r.is_empty());
                Some((id, topics_of(m), rack))
            })
            .collect();
        let mut states: Vec<TopicState> = partitions_per_topic
            .keys()
            .filter_map(|topic| {
                let count = partition_count(partitions_per_topic, topic)?;
                let consumers: Vec<(&str, Option<&str>)> = order
                    .iter()
                    .filter(|(_, subscribed, _)| subscribed.contains(topic.as_str()))
                    .map(|(id, _, rack)| (*id, *rack))
                    .collect();
                Some(TopicState::new(
                    topic,
                    count,
                    consumers,
                    partition_racks.get(topic),
                ))
            })
            .collect();
        let mut lists: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        if states.iter().any(|t| t.needs_rack_aware) {
            assign_with_rack_matching(&mut states, &mut lists);
        }
        for t in &mut states {
            t.assign_ranges(|_, _, _| true, &mut lists);
        }
        into_assignments(members, lists)
    }
}

/// One topic during the assignment (Java's `TopicAssignmentState`).
struct TopicState<'a> {
    topic: &'a str,
    /// Subscribed members in `MemberInfo` order, with their racks.
    consumers: Vec<(&'a str, Option<&'a str>)>,
    /// Racks of each partition's replicas; empty when no member has a rack.
    racks: Vec<BTreeSet<String>>,
    needs_rack_aware: bool,
    unassigned: BTreeSet<i32>,
    assigned: BTreeMap<&'a str, usize>,
    per_consumer: usize,
    extra_left: usize,
}

impl<'a> TopicState<'a> {
    fn new(
        topic: &'a str,
        count: i32,
        consumers: Vec<(&'a str, Option<&'a str>)>,
        racks: Option<&Vec<BTreeSet<String>>>,
    ) -> Self {
        let n = usize::try_from(count).unwrap_or(0);
        let consumer_racks: BTreeSet<&str> = consumers.iter().filter_map(|(_, r)| *r).collect();
        let racks: Vec<BTreeSet<String>> = if consumer_racks.is_empty() {
            Vec::new()
        } else {
            (0..n)
                .map(|p| racks.and_then(|r| r.get(p)).cloned().unwrap_or_default())
                .collect()
        };
        let all: BTreeSet<&str> = racks.iter().flatten().map(String::as_str).collect();
        // Java's `useRackAwareAssignment`: members have racks that the
        // partitions use, and not every partition is on all those racks.
        let needs_rack_aware = !consumer_racks.is_empty()
            && !consumer_racks.is_disjoint(&all)
            && !racks
                .iter()
                .all(|r| r.iter().map(String::as_str).eq(all.iter().copied()));
        let members = consumers.len();
        Self {
            topic,
            assigned: consumers.iter().map(|(c, _)| (*c, 0)).collect(),
            consumers,
            racks,
            needs_rack_aware,
            unassigned: (0..count).collect(),
            per_consumer: n.checked_div(members).unwrap_or(0),
            extra_left: n.checked_rem(members).unwrap_or(0),
        }
    }

    fn rack_of(&self, consumer: &str) -> Option<&'a str> {
        self.consumers
            .iter()
            .find(|(c, _)| *c == consumer)
            .and_then(|(_, r)| *r)
    }

    /// A member without a rack matches every partition.
    fn racks_match(&self, consumer: &str, partition: i32) -> bool {
        match self.rack_of(consumer) {
            None => true,
            Some(rack) => usize::try_from(partition)
                .ok()
                .and_then(|p| self.racks.get(p))
                .is_some_and(|r| r.contains(rack)),
        }
    }

    fn max_assignable(&self, consumer: &str) -> usize {
        let cap = self.per_consumer + usize::from(self.extra_left > 0);
        cap.saturating_sub(self.assigned.get(consumer).copied().unwrap_or(0))
    }

    fn on_assigned(
        &mut self,
        consumer: &'a str,
        partitions: &[i32],
        lists: &mut BTreeMap<String, Vec<TopicPartition>>,
    ) {
        let n = self.assigned.entry(consumer).or_default();
        *n += partitions.len();
        if *n > self.per_consumer {
            self.extra_left = self.extra_left.saturating_sub(1);
        }
        let list = lists.entry(consumer.to_string()).or_default();
        for p in partitions {
            self.unassigned.remove(p);
            list.push(TopicPartition::new(self.topic, *p));
        }
    }

    /// Each member in order takes unassigned partitions that `may_assign`
    /// allows, up to its quota.
    fn assign_ranges(
        &mut self,
        may_assign: impl Fn(&Self, &str, i32) -> bool,
        lists: &mut BTreeMap<String, Vec<TopicPartition>>,
    ) {
        let consumers: Vec<&'a str> = self.consumers.iter().map(|(c, _)| *c).collect();
        for c in consumers {
            if self.unassigned.is_empty() {
                break;
            }
            let take: Vec<i32> = self
                .unassigned
                .iter()
                .copied()
                .filter(|p| may_assign(self, c, *p))
                .take(self.max_assignable(c))
                .collect();
            if !take.is_empty() {
                self.on_assigned(c, &take, lists);
            }
        }
    }
}

/// Java's `assignWithRackMatching`: topics grouped by subscribers, then by
/// partition count; co-partitioned groups move partition p of all their
/// topics together, other topics take rack-matching partitions.
fn assign_with_rack_matching(
    states: &mut [TopicState],
    lists: &mut BTreeMap<String, Vec<TopicPartition>>,
) {
    // (subscribers with their racks, partition count) -> topic states.
    type Key<'k> = (Vec<(&'k str, Option<&'k str>)>, usize);
    let mut groups: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (i, t) in states.iter().enumerate() {
        let count = t.unassigned.len();
        groups
            .entry((t.consumers.clone(), count))
            .or_default()
            .push(i);
    }
    for ((consumers, count), members) in groups {
        if members.len() > 1 {
            let mut remaining: Vec<&str> = consumers.iter().map(|(c, _)| *c).collect();
            for p in 0..i32::try_from(count).unwrap_or(i32::MAX) {
                let found = remaining.iter().copied().find(|c| {
                    members
                        .iter()
                        .all(|&i| states[i].racks_match(c, p) && states[i].max_assignable(c) > 0)
                });
                let Some(c) = found else { continue };
                for &i in &members {
                    states[i].on_assigned(c, &[p], lists);
                }
                if members.iter().all(|&i| states[i].max_assignable(c) == 0) {
                    remaining.retain(|x| *x != c);
                    if remaining.is_empty() {
                        break;
                    }
                }
            }
        } else if let Some(&i) = members.first() {
            if states[i].needs_rack_aware {
                states[i].assign_ranges(|t, c, p| t.racks_match(c, p), lists);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    fn counts(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        out.values().map(|a| a.partitions.len()).collect()
    }

    #[test]
    fn seven_partitions_three_members() {
        let parts = topics(&[("t", 7)]);
        let m = members(&[("c0", &["t"]), ("c1", &["t"]), ("c2", &["t"])]);
        let out = RangeAssignor.assign(&parts, &m);
        let f = flat(&out);
        let ps = |id: &str| f[id].iter().map(|(_, p)| *p).collect::<Vec<_>>();
        assert_eq!(ps("c0"), [0, 1, 2]);
        assert_eq!(ps("c1"), [3, 4]);
        assert_eq!(ps("c2"), [5, 6]);
    }

    #[test]
    fn java_doc_example_two_topics() {
        // Java's RangeAssignor doc: t0, t1 with 3 partitions each, C0 and
        // C1: C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2].
        let parts = topics(&[("t0", 3), ("t1", 3)]);
        let m = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let f = flat(&RangeAssignor.assign(&parts, &m));
        let s = |v: &[(&str, i32)]| {
            v.iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect::<Vec<_>>()
        };
        assert_eq!(f["C0"], s(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]));
        assert_eq!(f["C1"], s(&[("t0", 2), ("t1", 2)]));
    }

    #[test]
    fn static_members_come_first() {
        let parts = topics(&[("t", 3)]);
        let mut m = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        m.get_mut("c").unwrap().group_instance_id = Some("x".into());
        m.get_mut("b").unwrap().group_instance_id = Some("w".into());
        let f = flat(&RangeAssignor.assign(&parts, &m));
        assert_eq!(f["b"], [("t".to_string(), 0)]);
        assert_eq!(f["c"], [("t".to_string(), 1)]);
        assert_eq!(f["a"], [("t".to_string(), 2)]);
    }

    #[test]
    fn unknown_topics_more_members_than_partitions_and_idle_members() {
        let parts = topics(&[("t", 2), ("empty", 0)]);
        let m = members(&[
            ("a", &["t", "missing", "empty"]),
            ("b", &["t"]),
            ("c", &["t"]),
            ("d", &[]),
        ]);
        let out = RangeAssignor.assign(&parts, &m);
        check_valid(&parts, &m, &out);
        assert_eq!(counts(&out), [1, 1, 0, 0]);
    }

    #[test]
    fn different_subscriptions() {
        let parts = topics(&[("t1", 3), ("t2", 4)]);
        let m = members(&[("a", &["t1"]), ("b", &["t1", "t2"]), ("c", &["t2"])]);
        let f = flat(&RangeAssignor.assign(&parts, &m));
        let s = |v: &[(&str, i32)]| {
            v.iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect::<Vec<_>>()
        };
        assert_eq!(f["a"], s(&[("t1", 0), ("t1", 1)]));
        assert_eq!(f["b"], s(&[("t1", 2), ("t2", 0), ("t2", 1)]));
        assert_eq!(f["c"], s(&[("t2", 2), ("t2", 3)]));
    }

    fn with_racks(subs: &[(&str, &[&str], &str)]) -> BTreeMap<String, MemberSubscription> {
        let mut m = members(&subs.iter().map(|(id, t, _)| (*id, *t)).collect::<Vec<_>>());
        for (id, _, rack) in subs {
            m.get_mut(*id).unwrap().subscription.rack_id = Some(rack.to_string());
        }
        m
    }

    fn racks(spec: &[(&str, &[&[&str]])]) -> PartitionRacks {
        spec.iter()
            .map(|(t, parts)| {
                let per = parts
                    .iter()
                    .map(|rs| rs.iter().map(|r| r.to_string()).collect())
                    .collect();
                (t.to_string(), per)
            })
            .collect()
    }

    #[test]
    fn members_get_partitions_in_their_rack() {
        // One replica per partition, each on another rack; members listed
        // in the opposite rack order.
        let parts = topics(&[("t", 3)]);
        let r = racks(&[("t", &[&["a"], &["b"], &["c"]])]);
        let m = with_racks(&[
            ("c0", &["t"], "c"),
            ("c1", &["t"], "b"),
            ("c2", &["t"], "a"),
        ]);
        let f = flat(&RangeAssignor.assign_with_racks(&parts, &r, &m));
        assert_eq!(f["c0"], [("t".to_string(), 2)]);
        assert_eq!(f["c1"], [("t".to_string(), 1)]);
        assert_eq!(f["c2"], [("t".to_string(), 0)]);
        // Without racks: plain ranges.
        let f = flat(&RangeAssignor.assign(&parts, &m));
        assert_eq!(f["c0"], [("t".to_string(), 0)]);
    }

    #[test]
    fn balance_comes_before_racks() {
        // Three of four partitions only on rack a: a's member still gets
        // just two, the rest goes to b's member.
        let parts = topics(&[("t", 4)]);
        let r = racks(&[("t", &[&["a"], &["a"], &["a"], &["b"]])]);
        let m = with_racks(&[("ma", &["t"], "a"), ("mb", &["t"], "b")]);
        let f = flat(&RangeAssignor.assign_with_racks(&parts, &r, &m));
        let ps = |id: &str| f[id].iter().map(|(_, p)| *p).collect::<Vec<_>>();
        assert_eq!(ps("ma"), [0, 1]);
        assert_eq!(ps("mb"), [2, 3]);
    }

    #[test]
    fn co_partitioned_topics_move_together() {
        // Partition p of both topics is on rack rp: both go to that
        // rack's member, keeping co-partitioning.
        let parts = topics(&[("t1", 3), ("t2", 3)]);
        let spec: &[&[&str]] = &[&["r2"], &["r0"], &["r1"]];
        let r = racks(&[("t1", spec), ("t2", spec)]);
        let m = with_racks(&[
            ("m0", &["t1", "t2"], "r0"),
            ("m1", &["t1", "t2"], "r1"),
            ("m2", &["t1", "t2"], "r2"),
        ]);
        let f = flat(&RangeAssignor.assign_with_racks(&parts, &r, &m));
        let s = |p: i32| vec![("t1".to_string(), p), ("t2".to_string(), p)];
        assert_eq!(f["m0"], s(1));
        assert_eq!(f["m1"], s(2));
        assert_eq!(f["m2"], s(0));
    }

    #[test]
    fn racks_everywhere_change_nothing() {
        // Every partition on every rack: nothing to gain, plain ranges.
        let parts = topics(&[("t", 4)]);
        let r = racks(&[("t", &[&["a", "b"], &["a", "b"], &["a", "b"], &["a", "b"]])]);
        let m = with_racks(&[("x", &["t"], "b"), ("y", &["t"], "a")]);
        assert_eq!(
            RangeAssignor.assign_with_racks(&parts, &r, &m),
            RangeAssignor.assign(&parts, &m)
        );
    }

    fn case() -> impl Strategy<Value = (BTreeMap<String, i32>, BTreeMap<String, MemberSubscription>)>
    {
        let names = ["a", "b", "c", "d"];
        (
            proptest::collection::vec(0..20i32, 4),
            proptest::collection::vec(proptest::collection::vec(any::<bool>(), 4), 1..8),
        )
            .prop_map(move |(counts, subs)| {
                let parts = names.iter().map(|t| t.to_string()).zip(counts).collect();
                let members = subs
                    .into_iter()
                    .enumerate()
                    .map(|(i, which)| {
                        let topics: Vec<&str> = names
                            .iter()
                            .zip(which)
                            .filter(|(_, on)| *on)
                            .map(|(t, _)| *t)
                            .collect();
                        (
                            format!("m{i}"),
                            MemberSubscription::new(super::super::Subscription::new(topics)),
                        )
                    })
                    .collect();
                (parts, members)
            })
    }

    proptest! {
        /// With random replica and member racks, the assignment is as
        /// complete, valid and balanced per topic as without.
        #[test]
        fn racks_keep_it_complete_and_balanced(
            (parts, mut m) in case(),
            rack_bits in proptest::collection::vec(0u8..8, 80),
            member_racks in proptest::collection::vec(proptest::option::of(0u8..3), 8),
        ) {
            let names = ["r0", "r1", "r2"];
            let mut bits = rack_bits.iter().cycle();
            let r: PartitionRacks = parts
                .iter()
                .map(|(t, n)| {
                    let per = (0..*n)
                        .map(|_| {
                            let b = bits.next().copied().unwrap_or(0);
                            (0..3).filter(|i| b & (1 << i) != 0).map(|i| names[i].to_string()).collect()
                        })
                        .collect();
                    (t.clone(), per)
                })
                .collect();
            for (sub, rack) in m.values_mut().zip(member_racks) {
                sub.subscription.rack_id = rack.map(|i| names[usize::from(i)].to_string());
            }
            let out = RangeAssignor.assign_with_racks(&parts, &r, &m);
            let n = check_valid(&parts, &m, &out);
            prop_assert_eq!(n, all_subscribed(&parts, &m).len());
            prop_assert_eq!(&out, &RangeAssignor.assign_with_racks(&parts, &r, &m));
            for (topic, _) in parts.iter() {
                let per: Vec<usize> = m.iter()
                    .filter(|(_, s)| s.subscription.topics.contains(topic))
                    .map(|(id, _)| out[id].partitions.iter().filter(|p| &p.topic == topic).count())
                    .collect();
                if let (Some(max), Some(min)) = (per.iter().max(), per.iter().min()) {
                    prop_assert!(max - min <= 1);
                }
            }
        }

        #[test]
        fn complete_valid_and_balanced_per_topic((parts, m) in case()) {
            let out = RangeAssignor.assign(&parts, &m);
            let n = check_valid(&parts, &m, &out);
            prop_assert_eq!(n, all_subscribed(&parts, &m).len());
            prop_assert_eq!(&out, &RangeAssignor.assign(&parts, &m));
            // per topic, subscribed members' counts differ by at most one
            for (topic, _) in parts.iter() {
                let per: Vec<usize> = m.iter()
                    .filter(|(_, s)| s.subscription.topics.contains(topic))
                    .map(|(id, _)| out[id].partitions.iter().filter(|p| &p.topic == topic).count())
                    .collect();
                if let (Some(max), Some(min)) = (per.iter().max(), per.iter().min()) {
                    prop_assert!(max - min <= 1);
                }
            }
        }
    }
}
