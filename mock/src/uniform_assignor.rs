//! The server-side "uniform" assignor of KIP-848 consumer groups (the
//! broker's default `group.consumer.assignors` entry; Kafka's
//! `UniformAssignor`, with `UniformHomogeneousAssignmentBuilder` and
//! `UniformHeterogeneousAssignmentBuilder`).
//!
//! What it guarantees, as Kafka's does: every partition of a topic that at
//! least one member subscribes to goes to exactly one member subscribed to
//! that topic; the counts are balanced (with identical subscriptions no two
//! members differ by more than one partition); and it is sticky: a member
//! keeps the partitions of its previous target assignment unless they must
//! move to restore balance.
//!
//! A deliberate simplification: Kafka builds the homogeneous case with
//! per-member quotas and the heterogeneous case with an iterative balancer
//! that weighs topics by how many members subscribe to them. Here one
//! procedure serves both: keep what each member had (if still subscribed
//! and still existing), hand every free partition to the least loaded
//! subscribed member, then move partitions one at a time from a member to a
//! subscribed member with at least two fewer, until no such move exists.
//! Balance and stickiness hold as above; which partitions move, and the
//! exact balance of unusual heterogeneous subscriptions, can differ from
//! Kafka's. Ties go to the smaller member id and the higher partitions
//! move first, so the result is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use skotch_protocol::Uuid;

/// Partitions by topic id, as KIP-848 assignments are kept.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A topic the group subscribes to: its id and partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopicMetadata {
    pub id: Uuid,
    pub partitions: i32,
}

/// The new target assignment of every member in `subscriptions` (member id
/// to subscribed topic names), over `topics` (the subscribed topics that
/// exist), sticky to `previous` (the last target assignment).
pub(crate) fn assign(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    topics: &BTreeMap<String, TopicMetadata>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let name_of: BTreeMap<Uuid, &str> = topics
        .iter()
        .map(|(name, t)| (t.id, name.as_str()))
        .collect();
    // Who may own each topic's partitions.
    let mut subscribers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (member, subscribed) in subscriptions {
        for topic in subscribed {
            if let Some((name, _)) = topics.get_key_value(topic) {
                subscribers
                    .entry(name.as_str())
                    .or_default()
                    .push(member.as_str());
            }
        }
    }
    let mut owned: BTreeMap<&str, BTreeSet<(&str, i32)>> = subscriptions
        .keys()
        .map(|m| (m.as_str(), BTreeSet::new()))
        .collect();
    let mut taken: BTreeSet<(&str, i32)> = BTreeSet::new();

    // 1. Stickiness: keep the previous target where it is still valid.
    for (member, subscribed) in subscriptions {
        let Some(prev) = previous.get(member) else {
            continue;
        };
        for (id, parts) in prev {
            let Some(&name) = name_of.get(id) else {
                continue; // the topic is gone (or was recreated)
            };
            if !subscribed.contains(name) {
                continue;
            }
            let count = topics.get(name).map_or(0, |t| t.partitions);
            for &p in parts {
                if (0..count).contains(&p) && taken.insert((name, p)) {
                    if let Some(o) = owned.get_mut(member.as_str()) {
                        o.insert((name, p));
                    }
                }
            }
        }
    }

    // 2. Every free partition to the least loaded subscribed member.
    for (&name, members) in &subscribers {
        let count = topics.get(name).map_or(0, |t| t.partitions);
        for p in 0..count {
            if taken.contains(&(name, p)) {
                continue;
            }
            if let Some(m) = least_loaded(members, &owned) {
                taken.insert((name, p));
                if let Some(o) = owned.get_mut(m) {
                    o.insert((name, p));
                }
            }
        }
    }

    // 3. Balance: move one partition from a member to a subscribed member
    // holding at least two fewer, most loaded members first. Each move
    // lowers the sum of squared counts, so the loop ends.
    loop {
        let mut order: Vec<(&str, usize)> = owned.iter().map(|(m, o)| (*m, o.len())).collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let least = order.last().map_or(0, |o| o.1);
        let mut chosen = None;
        'search: for &(from, from_count) in &order {
            if from_count <= least + 1 {
                break; // no member can take one (the rest hold fewer)
            }
            let Some(parts) = owned.get(from) else {
                continue;
            };
            for &(name, p) in parts.iter().rev() {
                let Some(members) = subscribers.get(name) else {
                    continue;
                };
                if let Some(to) = least_loaded(members, &owned) {
                    let to_count = owned.get(to).map_or(0, BTreeSet::len);
                    if to_count + 1 < from_count {
                        chosen = Some((from, to, name, p));
                        break 'search;
                    }
                }
            }
        }
        let Some((from, to, name, p)) = chosen else {
            break;
        };
        if let Some(o) = owned.get_mut(from) {
            o.remove(&(name, p));
        }
        if let Some(o) = owned.get_mut(to) {
            o.insert((name, p));
        }
    }

    owned
        .into_iter()
        .map(|(member, parts)| {
            let mut a = Assignment::new();
            for (name, p) in parts {
                if let Some(t) = topics.get(name) {
                    a.entry(t.id).or_default().insert(p);
                }
            }
            (member.to_string(), a)
        })
        .collect()
}

/// The member of `members` owning the fewest partitions (the smaller id on
/// a tie).
fn least_loaded<'a>(
    members: &[&'a str],
    owned: &BTreeMap<&str, BTreeSet<(&str, i32)>>,
) -> Option<&'a str> {
    members.iter().copied().min_by(|a, b| {
        let ca = owned.get(a).map_or(0, BTreeSet::len);
        let cb = owned.get(b).map_or(0, BTreeSet::len);
        ca.cmp(&cb).then(a.cmp(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8, partitions: i32) -> TopicMetadata {
        TopicMetadata {
            id: Uuid([n; 16]),
            partitions,
        }
    }

    fn subs(list: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        list.iter()
            .map(|(m, t)| (m.to_string(), t.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn balanced_and_complete() {
        let topics: BTreeMap<String, TopicMetadata> =
            [("t".to_string(), topic(1, 6))].into_iter().collect();
        let s = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"]), ("d", &["t"])]);
        let out = assign(&s, &topics, &BTreeMap::new());
        let counts: Vec<usize> = out.values().map(count).collect();
        assert_eq!(counts.iter().sum::<usize>(), 6);
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
        let all: BTreeSet<i32> = out
            .values()
            .flat_map(|a| a.values().flatten().copied())
            .collect();
        assert_eq!(all, (0..6).collect());
    }

    #[test]
    fn sticky_when_a_member_joins_and_leaves() {
        let topics: BTreeMap<String, TopicMetadata> =
            [("t".to_string(), topic(1, 6))].into_iter().collect();
        let one = assign(&subs(&[("a", &["t"])]), &topics, &BTreeMap::new());
        assert_eq!(count(&one["a"]), 6);
        let two = assign(&subs(&[("a", &["t"]), ("b", &["t"])]), &topics, &one);
        assert_eq!(count(&two["a"]), 3);
        assert_eq!(count(&two["b"]), 3);
        // a kept three of its own; b took the rest.
        assert!(two["a"][&Uuid([1; 16])].is_subset(&one["a"][&Uuid([1; 16])]));
        let back = assign(&subs(&[("b", &["t"])]), &topics, &two);
        assert_eq!(count(&back["b"]), 6);
        assert!(two["b"][&Uuid([1; 16])].is_subset(&back["b"][&Uuid([1; 16])]));
    }

    #[test]
    fn heterogeneous_subscriptions_only_get_their_topics() {
        let topics: BTreeMap<String, TopicMetadata> = [
            ("x".to_string(), topic(1, 4)),
            ("y".to_string(), topic(2, 2)),
        ]
        .into_iter()
        .collect();
        let s = subs(&[("a", &["x"]), ("b", &["x", "y"]), ("c", &["y", "missing"])]);
        let out = assign(&s, &topics, &BTreeMap::new());
        assert!(!out["a"].contains_key(&Uuid([2; 16])));
        assert!(!out["c"].contains_key(&Uuid([1; 16])));
        let total: usize = out.values().map(count).sum();
        assert_eq!(total, 6);
        assert_eq!(count(&out["a"]) + count(&out["b"]) + count(&out["c"]), 6);
        assert!(count(&out["a"]) >= 2 && count(&out["c"]) >= 1);
    }
}
