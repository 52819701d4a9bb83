//! The round-robin assignor, Java's `RoundRobinAssignor` (`"roundrobin"`).
//!
//! All partitions of every topic any member subscribes to, sorted by topic
//! then partition, are dealt one at a time to the members in `MemberInfo`
//! order (static members first by `group.instance.id`, then by member id),
//! cycling; a member not subscribed to a partition's topic is skipped. The
//! cycle carries on across topics rather than restarting at each one, as in
//! Java. When all members subscribe to the same topics, partition counts
//! differ by at most one.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    into_assignments, member_order, partition_count, topics_of, Assignment, Assignor,
    MemberSubscription, RebalanceProtocol,
};
use crate::consumer::TopicPartition;

/// Java's `RoundRobinAssignor`: partitions dealt over members in turn. Eager.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Assignment> {
        let order: Vec<(&str, BTreeSet<&str>)> = member_order(members)
            .into_iter()
            .filter_map(|id| members.get(id).map(|m| (id, topics_of(m))))
            .collect();
        // Java's TreeSet<String> of topics; topic names are ASCII, so byte
        // order is String.compareTo order.
        let topics: BTreeSet<&str> = order
            .iter()
            .flat_map(|(_, topics)| topics.iter().copied())
            .collect();

        let mut lists: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        let mut next = 0usize;
        for topic in topics {
            let Some(count) = partition_count(partitions_per_topic, topic) else {
                continue;
            };
            for partition in 0..count {
                // Some member subscribes to `topic` (that is how it got
                // here), so one full turn of the circle finds it.
                let Some(offset) = (0..order.len()).find(|k| {
                    order
                        .get((next + k) % order.len())
                        .is_some_and(|(_, t)| t.contains(topic))
                }) else {
                    break;
                };
                let at = (next + offset) % order.len();
                if let Some((id, _)) = order.get(at) {
                    lists
                        .entry(id.to_string())
                        .or_default()
                        .push(TopicPartition::new(topic, partition));
                }
                next = (at + 1) % order.len();
            }
        }
        into_assignments(members, lists)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::Subscription;
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[(&str, i32)]) -> Vec<(String, i32)> {
        v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn java_doc_example_same_subscriptions() {
        // Java's doc: t0, t1 with 3 partitions each, C0 and C1:
        // C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2].
        let parts = topics(&[("t0", 3), ("t1", 3)]);
        let m = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let f = flat(&RoundRobinAssignor.assign(&parts, &m));
        assert_eq!(f["C0"], s(&[("t0", 0), ("t0", 2), ("t1", 1)]));
        assert_eq!(f["C1"], s(&[("t0", 1), ("t1", 0), ("t1", 2)]));
    }

    #[test]
    fn java_doc_example_different_subscriptions() {
        // Java's doc: t0 (1 partition), t1 (2), t2 (3); C0 on t0, C1 on
        // t0 and t1, C2 on t0, t1, t2:
        // C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
        let parts = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let m = members(&[
            ("C0", &["t0"]),
            ("C1", &["t0", "t1"]),
            ("C2", &["t0", "t1", "t2"]),
        ]);
        let f = flat(&RoundRobinAssignor.assign(&parts, &m));
        assert_eq!(f["C0"], s(&[("t0", 0)]));
        assert_eq!(f["C1"], s(&[("t1", 0)]));
        assert_eq!(f["C2"], s(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]));
    }

    #[test]
    fn static_members_first_and_cycle_continues_across_topics() {
        let parts = topics(&[("a", 1), ("b", 2)]);
        let mut m = members(&[
            ("m1", &["a", "b"]),
            ("m2", &["a", "b"]),
            ("m3", &["a", "b"]),
        ]);
        m.get_mut("m3").unwrap().group_instance_id = Some("i".into());
        let f = flat(&RoundRobinAssignor.assign(&parts, &m));
        assert_eq!(f["m3"], s(&[("a", 0)]));
        assert_eq!(f["m1"], s(&[("b", 0)]));
        assert_eq!(f["m2"], s(&[("b", 1)]));
    }

    #[test]
    fn no_members_subscribed_to_known_topics() {
        let parts = topics(&[("t", 4)]);
        let m = members(&[("a", &["x"]), ("b", &[])]);
        let out = RoundRobinAssignor.assign(&parts, &m);
        assert_eq!(check_valid(&parts, &m, &out), 0);
        assert!(RoundRobinAssignor
            .assign(&parts, &BTreeMap::new())
            .is_empty());
    }

    fn case(
        same: bool,
    ) -> impl Strategy<Value = (BTreeMap<String, i32>, BTreeMap<String, MemberSubscription>)> {
        let names = ["a", "b", "c", "d"];
        (
            proptest::collection::vec(0..20i32, 4),
            proptest::collection::vec(proptest::collection::vec(any::<bool>(), 4), 1..8),
        )
            .prop_map(move |(counts, subs)| {
                let parts = names.iter().map(|t| t.to_string()).zip(counts).collect();
                let first = subs[0].clone();
                let members = subs
                    .into_iter()
                    .enumerate()
                    .map(|(i, which)| {
                        let which = if same { first.clone() } else { which };
                        let topics: Vec<&str> = names
                            .iter()
                            .zip(which)
                            .filter(|(_, on)| *on)
                            .map(|(t, _)| *t)
                            .collect();
                        (
                            format!("m{i}"),
                            MemberSubscription::new(Subscription::new(topics)),
                        )
                    })
                    .collect();
                (parts, members)
            })
    }

    proptest! {
        #[test]
        fn complete_and_valid((parts, m) in case(false)) {
            let out = RoundRobinAssignor.assign(&parts, &m);
            prop_assert_eq!(check_valid(&parts, &m, &out), all_subscribed(&parts, &m).len());
            prop_assert_eq!(&out, &RoundRobinAssignor.assign(&parts, &m));
        }

        #[test]
        fn balanced_with_equal_subscriptions((parts, m) in case(true)) {
            let out = RoundRobinAssignor.assign(&parts, &m);
            prop_assert_eq!(check_valid(&parts, &m, &out), all_subscribed(&parts, &m).len());
            prop_assert!(spread(&out) <= 1);
        }
    }
}
