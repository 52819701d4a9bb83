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
//! Java's rack-aware variant (KIP-881, used only when members set
//! `client.rack` and replicas are unevenly spread over racks) is not
//! implemented: skotch always assigns as Java does without rack data.

use std::collections::BTreeMap;

use super::{
    into_assignments, member_order, partition_count, topics_of, Assignment, Assignor,
    MemberSubscription, RebalanceProtocol,
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
        let order: Vec<_> = member_order(members)
            .into_iter()
            .filter_map(|id| members.get(id).map(|m| (id, topics_of(m))))
            .collect();
        let mut lists: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for topic in partitions_per_topic.keys() {
            let Some(count) = partition_count(partitions_per_topic, topic) else {
                continue;
            };
            let consumers: Vec<&str> = order
                .iter()
                .filter(|(_, subscribed)| subscribed.contains(topic.as_str()))
                .map(|(id, _)| *id)
                .collect();
            // Both are positive here; i64 keeps the arithmetic exact for
            // any member count.
            let n = consumers.len() as i64;
            if n == 0 {
                continue;
            }
            let per_consumer = i64::from(count) / n;
            let with_extra = i64::from(count) % n;
            for (i, id) in (0i64..).zip(consumers) {
                let start = per_consumer * i + i.min(with_extra);
                let len = per_consumer + i64::from(i < with_extra);
                let list = lists.entry(id.to_string()).or_default();
                // start + len <= count, so both fit in i32.
                list.extend(
                    (start..start + len)
                        .filter_map(|p| i32::try_from(p).ok())
                        .map(|p| TopicPartition::new(topic.clone(), p)),
                );
            }
        }
        into_assignments(members, lists)
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
