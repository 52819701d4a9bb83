//! The cooperative sticky assignor (`"cooperative-sticky"`, KIP-429 on top
//! of KIP-54/KIP-341's sticky assignment), interoperable with Java's
//! `CooperativeStickyAssignor`. Written from the KIPs' rules, not from Java's
//! code:
//!
//! 1. **Valid ownership.** Each member's `owned_partitions` are claims. A
//!    claim counts only for a partition that exists and whose topic the
//!    member still subscribes to. When several members claim one partition,
//!    the claim from the highest generation wins (KIP-341); a tie at the
//!    highest generation invalidates the partition for all of them. A
//!    member's generation is `Subscription::generation_id` (version 2+), or
//!    else the int32 Java's assignor puts in the user data, or else -1.
//! 2. **Sticky.** Every member starts with its valid owned partitions.
//! 3. **Fill.** Partitions nobody validly owns go, one at a time, to the
//!    least loaded member subscribed to the topic (topics with the fewest
//!    subscribers first, ties by member id).
//! 4. **Balance.** While some member holds at least two partitions more
//!    than a member it can pass work to, partitions are moved along the
//!    shortest chain of members (each hop moves one partition of a topic the
//!    next member subscribes to). With equal subscriptions every chain is a
//!    single hop and counts end at most one apart; with different
//!    subscriptions the result is as balanced as the subscriptions allow (no
//!    chain can lower the maximum any more). Moves prefer partitions going
//!    back to their valid owner, then partitions the giver does not own,
//!    then the giver's highest partition numbers, so few owned partitions
//!    move.
//! 5. **Cooperative.** A partition assigned to a member that does not
//!    validly own it, while another member still claims it, is left out of
//!    this round's assignment: the claimant sees it missing, revokes it and
//!    rejoins, and the follow-up rebalance hands it to its new owner. So no
//!    partition is ever assigned to one member while another still owns it,
//!    and a partition a member owns and keeps is never revoked.
//!
//! # Racks (KIP-881)
//!
//! [`Assignor::assign_with_racks`] is rack-aware when Java's
//! `AbstractStickyAssignor` would be (its `RackInfo`, with
//! `AbstractPartitionAssignor.useRackAwareAssignment`): some member sets
//! `client.rack`, some partition has a replica in one of those racks, and
//! not every partition has replicas in exactly the same racks. Otherwise
//! racks change nothing and the steps above are all there is.
//!
//! A partition placed on a member with a rack is *mismatched* when none of
//! its replicas is in that rack (a partition without rack information is
//! mismatched on every member with a rack; a member without a rack never
//! is), as Java's `RackInfo.racksMismatch`. Rack-aware, every placement has
//! a cost with three parts, compared in this order:
//!
//! 1. a mismatch. KIP-881 and Java put rack alignment before stickiness
//!    (though after balance): Java's `ConstrainedAssignmentBuilder` and
//!    `GeneralAssignmentBuilder` let go of owned partitions in the wrong
//!    rack, and give partitions to members in a matching rack first;
//! 2. a partition taken from its valid owner (stickiness);
//! 3. a rack-matching partition taken from its valid owner: between
//!    otherwise equal choices, the owned partitions Java's builders retain
//!    first (those in a matching rack) are the last to go.
//!
//! Steps 3 and 4 break their ties by this cost (fill: least loaded, then
//! cheapest, then member id; balance: cheapest move first, then as above).
//! Then step 4b runs: while some cycle of moves between members, or some
//! chain from a member holding `n` partitions to one holding `n - 1`,
//! lowers the total cost, it is applied. These moves never change the
//! multiset of loads, so balance is exactly what it is without racks (the
//! max-min rule when subscriptions are equal, the most even spread the
//! subscriptions allow otherwise), and when no such cycle is left the
//! assignment is the cheapest of all equally balanced ones (the optimality
//! condition of a minimum-cost flow): no assignment as balanced has fewer
//! mismatches, and none with as few mismatches moves fewer owned
//! partitions. Java gets there greedily
//! (`ConstrainedAssignmentBuilder.assignRackAwareRoundRobin`,
//! `GeneralAssignmentBuilder.balance`): ours is never worse by these
//! priorities, but it may move an owned partition that is in a matching
//! rack when that lets another partition into its rack, which Java does
//! not do. Step 5 applies unchanged: a partition that moves to a member in
//! its rack is first revoked by its owner.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{
    into_assignments, partition_count, topics_of, Assignment, Assignor, MemberSubscription,
    PartitionRacks, RebalanceProtocol, Subscription,
};
use crate::consumer::TopicPartition;

/// The generation of a member without one (Java's `DEFAULT_GENERATION`).
const NO_GENERATION: i32 = super::super::consumer_protocol::NO_GENERATION;

/// KIP-429's cooperative sticky assignor: balanced, sticky, and cooperative
/// (partitions move between members in two rebalances: revoke, then
/// assign). Prefers [`RebalanceProtocol::Cooperative`] and also works under
/// [`RebalanceProtocol::Eager`], like Java's. Rack-aware (KIP-881) through
/// [`Assignor::assign_with_racks`], see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl CooperativeStickyAssignor {
    /// The user data Java's `CooperativeStickyAssignor` puts in
    /// subscriptions (`CooperativeStickyAssignorUserData` v0): the
    /// generation as one big-endian int32.
    pub fn encode_user_data(generation_id: i32) -> Bytes {
        Bytes::copy_from_slice(&generation_id.to_be_bytes())
    }

    /// The generation a member's owned partitions come from, as Java reads
    /// it: the subscription's `generation_id` when it is set (version 2+),
    /// else the int32 at the start of the user data, else -1 (also for user
    /// data too short to hold one).
    pub fn member_generation(subscription: &Subscription) -> i32 {
        if subscription.generation_id >= 0 {
            return subscription.generation_id;
        }
        subscription
            .user_data
            .as_ref()
            .and_then(|d| d.get(..4))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(NO_GENERATION, i32::from_be_bytes)
    }

    /// The assignment this rebalance aims at: [`assign_with_racks`]
    /// before its cooperative step (5) leaves out the partitions another
    /// member still owns. Every partition of a subscribed topic appears
    /// exactly once. This is what Java's
    /// `AbstractStickyAssignor.assignPartitions` returns before
    /// `CooperativeStickyAssignor.adjustAssignment`, for comparing the two
    /// and for diagnostics; members must be sent [`assign_with_racks`]'s
    /// result.
    ///
    /// [`assign_with_racks`]: Assignor::assign_with_racks
    pub fn planned_assignment(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        partition_racks: &PartitionRacks,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Assignment> {
        let state = State::plan(partitions_per_topic, partition_racks, members);
        let lists = state
            .member_ids
            .iter()
            .zip(&state.held)
            .map(|(id, held)| {
                let list = held.iter().map(|&part| state.topic_partition(part));
                (id.to_string(), list.collect())
            })
            .collect();
        into_assignments(members, lists)
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    fn subscription_user_data(
        &self,
        _topics: &[String],
        _owned: &[TopicPartition],
        generation_id: i32,
    ) -> Option<Bytes> {
        Some(Self::encode_user_data(generation_id))
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
        let state = State::plan(partitions_per_topic, partition_racks, members);
        into_assignments(members, state.finish())
    }
}

/// A partition: (topic index, partition number).
type Part = (usize, i32);

/// What a placement costs, compared lexicographically (see the module
/// documentation): rack mismatches, partitions taken from their valid
/// owner, rack-matching partitions taken from their valid owner. Sums and
/// differences are taken per component.
type Cost = [i64; 3];

/// The largest group whose rack alignment (step 4b) searches for cheaper
/// cycles of moves; see `State::align_racks`.
const MAX_ALIGNED_MEMBERS: usize = 512;

const NO_COST: Cost = [0; 3];

fn cost_add(a: Cost, b: Cost) -> Cost {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn cost_sub(a: Cost, b: Cost) -> Cost {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The racks of members and replicas (KIP-881), kept only when the
/// assignment is rack-aware (Java's `AbstractStickyAssignor.RackInfo`).
/// Racks are numbered in name order.
struct Racks {
    /// Each member's rack, `None` without `client.rack` (or with an empty
    /// one, which Java ignores too).
    member: Vec<Option<usize>>,
    /// Per topic, per partition: the racks of its replicas, ascending.
    replicas: Vec<Vec<Vec<usize>>>,
}

impl Racks {
    /// The racks, or `None` when Java's `useRackAwareAssignment` says no:
    /// no member has a rack, no partition has a replica in a member's rack,
    /// or every partition has replicas in exactly the same racks (nothing
    /// to gain).
    fn new(
        members: &BTreeMap<String, MemberSubscription>,
        topic_names: &[&str],
        topic_counts: &[i32],
        partition_racks: &PartitionRacks,
    ) -> Option<Self> {
        let member_racks: Vec<Option<&str>> = members
            .values()
            .map(|m| m.subscription.rack_id.as_deref().filter(|r| !r.is_empty()))
            .collect();
        let consumer_racks: BTreeSet<&str> = member_racks.iter().flatten().copied().collect();
        if consumer_racks.is_empty() {
            return None;
        }
        let per_topic: Vec<Vec<BTreeSet<&str>>> = topic_names
            .iter()
            .zip(topic_counts)
            .map(|(topic, &count)| {
                let known = partition_racks.get(*topic);
                (0..usize::try_from(count).unwrap_or(0))
                    .map(|p| {
                        known
                            .and_then(|r| r.get(p))
                            .map(|set| set.iter().map(String::as_str).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .collect();
        let all: BTreeSet<&str> = per_topic.iter().flatten().flatten().copied().collect();
        if consumer_racks.is_disjoint(&all) || per_topic.iter().flatten().all(|r| *r == all) {
            return None;
        }
        let names: Vec<&str> = consumer_racks.union(&all).copied().collect();
        let index = |rack: &str| names.binary_search(&rack).ok();
        Some(Self {
            member: member_racks.iter().map(|r| r.and_then(&index)).collect(),
            replicas: per_topic
                .iter()
                .map(|parts| {
                    parts
                        .iter()
                        .map(|racks| racks.iter().filter_map(|r| index(r)).collect())
                        .collect()
                })
                .collect(),
        })
    }

    /// Java's `RackInfo.racksMismatch`: `m` has a rack and no replica of
    /// `part` is in it.
    fn mismatch(&self, m: usize, (t, p): Part) -> bool {
        let Some(Some(rack)) = self.member.get(m) else {
            return false;
        };
        let replicas = usize::try_from(p)
            .ok()
            .and_then(|p| self.replicas.get(t)?.get(p));
        replicas.is_none_or(|r| r.binary_search(rack).is_err())
    }
}

/// The assignment being built. Members and topics are numbered in
/// ascending name order, which fixes every tie-break.
struct State<'a> {
    member_ids: Vec<&'a str>,
    topic_names: Vec<&'a str>,
    /// Partition count per topic (only topics that exist and have a
    /// subscriber).
    topic_counts: Vec<i32>,
    /// Members subscribed to each topic, ascending.
    subscribers: Vec<Vec<usize>>,
    /// Valid owned partitions per member (step 1).
    kept: Vec<BTreeSet<Part>>,
    /// The valid owner of each validly owned partition (step 1).
    owner: BTreeMap<Part, usize>,
    /// Every member claiming each partition, valid or not (step 5).
    claimants: BTreeMap<Part, Vec<usize>>,
    /// Current assignment per member.
    held: Vec<BTreeSet<Part>>,
    /// How many partitions of each topic each member holds.
    held_per_topic: Vec<BTreeMap<usize, usize>>,
    /// Racks, when the assignment is rack-aware.
    racks: Option<Racks>,
}

impl<'a> State<'a> {
    /// Steps 1 to 4b: the planned assignment, before step 5.
    fn plan(
        partitions_per_topic: &'a BTreeMap<String, i32>,
        partition_racks: &PartitionRacks,
        members: &'a BTreeMap<String, MemberSubscription>,
    ) -> Self {
        let mut state = Self::new(partitions_per_topic, partition_racks, members);
        state.fill();
        state.balance();
        state.align_racks();
        state
    }

    fn new(
        partitions_per_topic: &'a BTreeMap<String, i32>,
        partition_racks: &PartitionRacks,
        members: &'a BTreeMap<String, MemberSubscription>,
    ) -> Self {
        let member_ids: Vec<&str> = members.keys().map(String::as_str).collect();
        let subscriptions: Vec<BTreeSet<&str>> = members.values().map(topics_of).collect();

        let mut topic_names = Vec::new();
        let mut topic_counts = Vec::new();
        let mut subscribers = Vec::new();
        for topic in partitions_per_topic.keys() {
            let Some(count) = partition_count(partitions_per_topic, topic) else {
                continue;
            };
            let subs: Vec<usize> = (0..member_ids.len())
                .filter(|&m| {
                    subscriptions
                        .get(m)
                        .is_some_and(|s| s.contains(topic.as_str()))
                })
                .collect();
            if !subs.is_empty() {
                topic_names.push(topic.as_str());
                topic_counts.push(count);
                subscribers.push(subs);
            }
        }

        let racks = Racks::new(members, &topic_names, &topic_counts, partition_racks);
        let mut state = Self {
            kept: vec![BTreeSet::new(); member_ids.len()],
            owner: BTreeMap::new(),
            held: vec![BTreeSet::new(); member_ids.len()],
            held_per_topic: vec![BTreeMap::new(); member_ids.len()],
            claimants: BTreeMap::new(),
            member_ids,
            topic_names,
            topic_counts,
            subscribers,
            racks,
        };

        // Step 1: claims, and the winner of each claimed partition.
        let mut valid_claims: BTreeMap<Part, Vec<(usize, i32)>> = BTreeMap::new();
        for (m, member) in members.values().enumerate() {
            let generation = CooperativeStickyAssignor::member_generation(&member.subscription);
            let mut seen = BTreeSet::new();
            for tp in &member.subscription.owned_partitions {
                let Some(part) = state.part(tp) else {
                    continue;
                };
                if !seen.insert(part) {
                    continue;
                }
                state.claimants.entry(part).or_default().push(m);
                if state
                    .subscribers
                    .get(part.0)
                    .is_some_and(|s| s.contains(&m))
                {
                    valid_claims.entry(part).or_default().push((m, generation));
                }
            }
        }
        for (part, claims) in valid_claims {
            let Some(best) = claims.iter().map(|&(_, g)| g).max() else {
                continue;
            };
            let mut top = claims.iter().filter(|&&(_, g)| g == best);
            match (top.next(), top.next()) {
                (Some(&(m, _)), None) => {
                    if let Some(k) = state.kept.get_mut(m) {
                        k.insert(part);
                    }
                    state.owner.insert(part, m);
                    state.add(m, part);
                }
                _ => tracing::warn!(
                    partition = %state.topic_partition(part),
                    generation = best,
                    "several members claim the same partition in one generation; \
                     it is invalidated and reassigned"
                ),
            }
        }
        state
    }

    /// The index form of `tp`, if its topic is in the assignment and the
    /// partition exists.
    fn part(&self, tp: &TopicPartition) -> Option<Part> {
        let t = self.topic_names.binary_search(&tp.topic.as_str()).ok()?;
        let count = *self.topic_counts.get(t)?;
        (0..count)
            .contains(&tp.partition)
            .then_some((t, tp.partition))
    }

    fn topic_partition(&self, (t, p): Part) -> TopicPartition {
        TopicPartition::new(self.topic_names.get(t).copied().unwrap_or_default(), p)
    }

    fn load(&self, m: usize) -> usize {
        self.held.get(m).map_or(0, BTreeSet::len)
    }

    fn add(&mut self, m: usize, part: Part) {
        if let (Some(held), Some(per_topic)) =
            (self.held.get_mut(m), self.held_per_topic.get_mut(m))
        {
            if held.insert(part) {
                *per_topic.entry(part.0).or_default() += 1;
            }
        }
    }

    fn remove(&mut self, m: usize, part: Part) {
        if let (Some(held), Some(per_topic)) =
            (self.held.get_mut(m), self.held_per_topic.get_mut(m))
        {
            if held.remove(&part) {
                if let Some(n) = per_topic.get_mut(&part.0) {
                    *n -= 1;
                    if *n == 0 {
                        per_topic.remove(&part.0);
                    }
                }
            }
        }
    }

    /// What placing `part` on member `m` costs. Without racks only the
    /// stickiness components can be non-zero, and then both are equal.
    fn cost(&self, m: usize, part: Part) -> Cost {
        let mismatch = |member| {
            self.racks
                .as_ref()
                .is_some_and(|r| r.mismatch(member, part))
        };
        let taken = self.owner.get(&part).filter(|&&o| o != m);
        [
            i64::from(mismatch(m)),
            i64::from(taken.is_some()),
            i64::from(taken.is_some_and(|&o| !mismatch(o))),
        ]
    }

    /// What moving `part` from `from` to `to` changes in the total cost.
    fn move_cost(&self, part: Part, from: usize, to: usize) -> Cost {
        cost_sub(self.cost(to, part), self.cost(from, part))
    }

    /// Step 3: partitions without a valid owner go to the least loaded
    /// subscriber, the most constrained topics first; among equally loaded
    /// subscribers, to one in a rack with a replica (always a tie without
    /// racks).
    fn fill(&mut self) {
        let mut unassigned: Vec<Part> = Vec::new();
        for (t, &count) in self.topic_counts.iter().enumerate() {
            unassigned.extend((0..count).map(|p| (t, p)));
        }
        let owned: BTreeSet<Part> = self.kept.iter().flatten().copied().collect();
        unassigned.retain(|part| !owned.contains(part));
        unassigned.sort_by_key(|&(t, p)| (self.subscribers.get(t).map_or(0, Vec::len), t, p));
        for part in unassigned {
            let target = self.subscribers.get(part.0).and_then(|subs| {
                subs.iter()
                    .copied()
                    .min_by_key(|&m| (self.load(m), self.cost(m, part), m))
            });
            if let Some(m) = target {
                self.add(m, part);
            }
        }
    }

    /// Step 4: move partitions along chains until no member can pass work
    /// to one holding two or more fewer partitions. Each move lowers the sum
    /// of squared loads by at least 2, so this ends.
    fn balance(&mut self) {
        loop {
            let min_load = (0..self.member_ids.len())
                .map(|m| self.load(m))
                .min()
                .unwrap_or(0);
            let mut sources: Vec<usize> = (0..self.member_ids.len()).collect();
            sources.sort_by_key(|&m| (std::cmp::Reverse(self.load(m)), m));
            // A member that cannot reach a lighter one makes everything it
            // reaches unable to as well (for sources no heavier than it).
            let mut dead = vec![false; self.member_ids.len()];
            let mut moved = false;
            for a in sources {
                if self.load(a) < min_load + 2 {
                    break;
                }
                if dead.get(a).copied().unwrap_or(true) {
                    continue;
                }
                match self.find_chain(a) {
                    Ok(chain) => {
                        self.shift(a, &chain);
                        moved = true;
                        break;
                    }
                    Err(reached) => {
                        for m in reached {
                            if let Some(d) = dead.get_mut(m) {
                                *d = true;
                            }
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Breadth-first search from `a` for the nearest members holding at
    /// least two partitions fewer than `a`, through "holds a partition of a
    /// topic the next one subscribes to" edges. Returns the hops
    /// `(topic, next member)` to the least loaded of the nearest ones, or
    /// every member reached when there is none.
    fn find_chain(&self, a: usize) -> Result<Vec<(usize, usize)>, Vec<usize>> {
        let goal = self.load(a).saturating_sub(2);
        let mut parent: BTreeMap<usize, (usize, usize)> = BTreeMap::new(); // member -> (from, topic)
        let mut topic_done = vec![false; self.topic_names.len()];
        let mut reached = vec![a];
        let mut level = vec![a];
        while !level.is_empty() {
            let mut next_level = Vec::new();
            for &x in &level {
                let Some(topics) = self.held_per_topic.get(x) else {
                    continue;
                };
                for &t in topics.keys() {
                    if topic_done.get(t).copied().unwrap_or(true) {
                        continue;
                    }
                    if let Some(done) = topic_done.get_mut(t) {
                        *done = true;
                    }
                    for &y in self.subscribers.get(t).into_iter().flatten() {
                        if y != a && !parent.contains_key(&y) {
                            parent.insert(y, (x, t));
                            next_level.push(y);
                        }
                    }
                }
            }
            let best = next_level
                .iter()
                .copied()
                .filter(|&y| self.load(y) <= goal)
                .min_by_key(|&y| (self.load(y), y));
            if let Some(z) = best {
                let mut hops = Vec::new();
                let mut at = z;
                while at != a {
                    let Some(&(from, t)) = parent.get(&at) else {
                        break;
                    };
                    hops.push((t, at));
                    at = from;
                }
                hops.reverse();
                return Ok(hops);
            }
            reached.extend(next_level.iter().copied());
            level = next_level;
        }
        Err(reached)
    }

    /// Move one partition along each hop of `chain`, starting at `a`.
    fn shift(&mut self, a: usize, chain: &[(usize, usize)]) {
        let mut from = a;
        for &(t, to) in chain {
            if let Some(part) = self.pick(from, to, t) {
                self.remove(from, part);
                self.add(to, part);
            }
            from = to;
        }
    }

    /// Which partition of topic `t` `from` gives to `to`: the cheapest move
    /// (without racks: one going back to its valid owner, else one `from`
    /// does not own), then the highest partition number (Java likewise
    /// keeps the lowest ones).
    fn pick(&self, from: usize, to: usize, t: usize) -> Option<Part> {
        let held = self.held.get(from)?;
        held.range((t, i32::MIN)..=(t, i32::MAX))
            .copied()
            .max_by_key(|&part| (Reverse(self.move_cost(part, from, to)), part.1))
    }

    /// Step 4b, rack-aware only: apply cost-lowering cycles of moves (see
    /// the module documentation) until there are none. Cheap ones first (a
    /// move to a member holding one partition fewer, or a swap between two
    /// members), then any cycle. Each one lowers the total cost, so this
    /// ends; the cap only bounds the time on pathological input, and every
    /// intermediate assignment is valid and as balanced as the final one.
    fn align_racks(&mut self) {
        if self.racks.is_none() {
            return;
        }
        let n = self.member_ids.len();
        // The move table is members × members: past this size (about 10 MB
        // of table) the fill and balance steps' rack-aware tie-breaking is
        // all the alignment a group gets.
        if n > MAX_ALIGNED_MEMBERS {
            return;
        }
        let mut moves = vec![None; n * n];
        for a in 0..n {
            self.cheapest_moves(a, &mut moves);
        }
        let partitions: usize = self.held.iter().map(BTreeSet::len).sum();
        let mut budget = 4 * (partitions + n) + 16;
        loop {
            let mut improved = false;
            for a in 0..n {
                for b in (0..n).filter(|&b| b != a) {
                    if budget == 0 {
                        return;
                    }
                    let Some(&Some((ab, x))) = moves.get(a * n + b) else {
                        continue;
                    };
                    let found = if self.load(a) == self.load(b) + 1 && ab < NO_COST {
                        vec![(a, b, x)]
                    } else if let Some(&Some((ba, y))) = moves.get(b * n + a) {
                        if cost_add(ab, ba) >= NO_COST {
                            continue;
                        }
                        vec![(a, b, x), (b, a, y)]
                    } else {
                        continue;
                    };
                    self.apply(&found, &mut moves);
                    budget -= 1;
                    improved = true;
                }
            }
            if improved {
                continue;
            }
            match self.cheaper_cycle(&moves) {
                Some(found) if budget > 0 => {
                    self.apply(&found, &mut moves);
                    budget -= 1;
                }
                _ => return,
            }
        }
    }

    /// Make the `(from, to, partition)` moves and refresh the cheapest
    /// moves of the members involved.
    fn apply(&mut self, found: &[(usize, usize, Part)], moves: &mut [Option<(Cost, Part)>]) {
        for &(from, to, part) in found {
            self.remove(from, part);
            self.add(to, part);
        }
        let touched: BTreeSet<usize> = found.iter().flat_map(|&(a, b, _)| [a, b]).collect();
        for a in touched {
            self.cheapest_moves(a, moves);
        }
    }

    /// Row `a` of `moves` (members × members): for each other member `b`,
    /// the cheapest partition `a` could hand to `b` (a partition of a topic
    /// `b` subscribes to) and what that move costs.
    fn cheapest_moves(&self, a: usize, moves: &mut [Option<(Cost, Part)>]) {
        let n = self.member_ids.len();
        let Some(row) = moves.get_mut(a * n..(a + 1) * n) else {
            return;
        };
        row.fill(None);
        let Some(per_topic) = self.held_per_topic.get(a) else {
            return;
        };
        for &t in per_topic.keys() {
            for &b in self.subscribers.get(t).into_iter().flatten() {
                if b == a {
                    continue;
                }
                let Some(part) = self.pick(a, b, t) else {
                    continue;
                };
                let cost = self.move_cost(part, a, b);
                if let Some(slot) = row.get_mut(b) {
                    if slot.is_none_or(|(c, _)| cost < c) {
                        *slot = Some((cost, part));
                    }
                }
            }
        }
    }

    /// A cycle of moves that lowers the total cost without changing the
    /// multiset of loads, as `(from, to, partition)` moves, if there is
    /// one.
    ///
    /// The graph: an arc from member `a` to member `b` weighted by the
    /// cheapest move (`moves`); and, for each load `n` held by some member
    /// while another holds `n - 1`, a node that members holding `n - 1`
    /// lead to and that leads to members holding `n`, at no cost. A cycle
    /// through members only keeps every load; through such a node it swaps
    /// the loads of a member holding `n` and one holding `n - 1`. With no
    /// negative cycle left the assignment is the cheapest of all those as
    /// balanced (the optimality condition of a minimum-cost flow). Negative
    /// cycles are found with Bellman-Ford (the costs are a
    /// lexicographically ordered group, which is all it needs), looking
    /// for a cycle among the parent links after every round.
    fn cheaper_cycle(&self, moves: &[Option<(Cost, Part)>]) -> Option<Vec<(usize, usize, Part)>> {
        struct Arc {
            from: usize,
            to: usize,
            cost: Cost,
            part: Option<Part>,
        }
        let n = self.member_ids.len();
        let loads: Vec<usize> = (0..n).map(|m| self.load(m)).collect();
        let present: BTreeSet<usize> = loads.iter().copied().collect();
        let levels: Vec<usize> = present
            .iter()
            .copied()
            .filter(|&l| l > 0 && present.contains(&(l - 1)))
            .collect();

        let mut arcs = Vec::new();
        for (i, slot) in moves.iter().enumerate() {
            if let Some((cost, part)) = *slot {
                arcs.push(Arc {
                    from: i / n.max(1),
                    to: i % n.max(1),
                    cost,
                    part: Some(part),
                });
            }
        }
        for (k, &level) in levels.iter().enumerate() {
            let node = n + k;
            for (m, &load) in loads.iter().enumerate() {
                if load + 1 == level {
                    arcs.push(Arc {
                        from: m,
                        to: node,
                        cost: NO_COST,
                        part: None,
                    });
                } else if load == level {
                    arcs.push(Arc {
                        from: node,
                        to: m,
                        cost: NO_COST,
                        part: None,
                    });
                }
            }
        }

        // Bellman-Ford from a virtual source at distance zero to every
        // node.
        let nodes = n + levels.len();
        let mut dist = vec![NO_COST; nodes];
        let mut parent: Vec<Option<usize>> = vec![None; nodes];
        for _ in 0..nodes {
            let mut relaxed = false;
            for (i, arc) in arcs.iter().enumerate() {
                let (Some(&d_from), Some(&d_to)) = (dist.get(arc.from), dist.get(arc.to)) else {
                    continue;
                };
                let d = cost_add(d_from, arc.cost);
                if d < d_to {
                    dist[arc.to] = d;
                    parent[arc.to] = Some(i);
                    relaxed = true;
                }
            }
            if !relaxed {
                return None;
            }
            let Some(start) = parent_cycle(&parent, |i| arcs.get(i).map(|a| a.from)) else {
                continue;
            };
            let mut cycle = Vec::new();
            let mut at = start;
            loop {
                let arc = arcs.get((*parent.get(at)?)?)?;
                cycle.push(arc);
                at = arc.from;
                if at == start || cycle.len() > nodes {
                    break;
                }
            }
            let total = cycle
                .iter()
                .fold(NO_COST, |sum, arc| cost_add(sum, arc.cost));
            if at != start || total >= NO_COST {
                return None;
            }
            return Some(
                cycle
                    .iter()
                    .filter_map(|arc| arc.part.map(|part| (arc.from, arc.to, part)))
                    .collect(),
            );
        }
        None
    }

    /// Step 5: drop partitions still claimed by another member from
    /// members that do not validly own them, and name everything.
    fn finish(self) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out = BTreeMap::new();
        for (m, held) in self.held.iter().enumerate() {
            let Some(id) = self.member_ids.get(m) else {
                continue;
            };
            let kept = self.kept.get(m);
            let list: Vec<TopicPartition> = held
                .iter()
                .filter(|part| {
                    kept.is_some_and(|k| k.contains(part))
                        || !self
                            .claimants
                            .get(part)
                            .is_some_and(|c| c.iter().any(|&n| n != m))
                })
                .map(|&part| self.topic_partition(part))
                .collect();
            out.insert(id.to_string(), list);
        }
        out
    }
}

/// A node on a cycle of the parent links (`parent[v]` is an arc index,
/// `from(arc)` its tail), if they have one.
fn parent_cycle(parent: &[Option<usize>], from: impl Fn(usize) -> Option<usize>) -> Option<usize> {
    // 0: not seen; k + 1: seen on the walk from node k; done otherwise.
    const DONE: usize = usize::MAX;
    let mut mark = vec![0; parent.len()];
    for start in 0..parent.len() {
        let mut at = start;
        loop {
            match mark.get(at).copied() {
                Some(0) => {}
                Some(m) if m == start + 1 => return Some(at),
                _ => break,
            }
            mark[at] = start + 1;
            match parent.get(at).copied().flatten().and_then(&from) {
                Some(next) => at = next,
                None => break,
            }
        }
        let mut at = start;
        while mark.get(at).copied() == Some(start + 1) {
            mark[at] = DONE;
            match parent.get(at).copied().flatten().and_then(&from) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    const A: CooperativeStickyAssignor = CooperativeStickyAssignor;

    fn owning(topics: &[&str], owned: &[TopicPartition], generation_id: i32) -> MemberSubscription {
        MemberSubscription::new(Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned_partitions: owned.to_vec(),
            generation_id,
            ..Subscription::default()
        })
    }

    fn ps(out: &BTreeMap<String, Assignment>, id: &str) -> Vec<i32> {
        out[id].partitions.iter().map(|p| p.partition).collect()
    }

    /// Members take their assignment as owned partitions at `generation`.
    fn apply(
        members: &mut BTreeMap<String, MemberSubscription>,
        out: &BTreeMap<String, Assignment>,
        generation: i32,
    ) {
        for (id, m) in members.iter_mut() {
            m.subscription.owned_partitions = out[id].partitions.clone();
            m.subscription.generation_id = generation;
        }
    }

    /// Partitions a member owned (validly: subscribed, existing) and lost.
    fn revoked(
        members: &BTreeMap<String, MemberSubscription>,
        out: &BTreeMap<String, Assignment>,
    ) -> usize {
        members
            .iter()
            .map(|(id, m)| {
                let now: BTreeSet<_> = out[id].partitions.iter().collect();
                m.subscription
                    .owned_partitions
                    .iter()
                    .filter(|p| !now.contains(p))
                    .count()
            })
            .sum()
    }

    /// Every assigned partition is either owned by its member already or
    /// claimed by nobody else.
    fn check_cooperative(
        members: &BTreeMap<String, MemberSubscription>,
        out: &BTreeMap<String, Assignment>,
    ) {
        for (id, a) in out {
            for p in &a.partitions {
                if members[id].subscription.owned_partitions.contains(p) {
                    continue;
                }
                for (other, m) in members {
                    assert!(
                        other == id || !m.subscription.owned_partitions.contains(p),
                        "{p} given to {id} while {other} still owns it"
                    );
                }
            }
        }
    }

    #[test]
    fn fresh_group_matches_java() {
        // Java: unfilled members sorted by id, partitions dealt round
        // robin, the extra one to the first member.
        let parts = topics(&[("t", 7)]);
        let m = members(&[("c0", &["t"]), ("c1", &["t"]), ("c2", &["t"])]);
        let out = A.assign(&parts, &m);
        assert_eq!(ps(&out, "c0"), [0, 3, 6]);
        assert_eq!(ps(&out, "c1"), [1, 4]);
        assert_eq!(ps(&out, "c2"), [2, 5]);
    }

    #[test]
    fn member_joins_two_rounds() {
        let parts = topics(&[("t", 6)]);
        let t = |p| tp("t", p);
        let mut m = BTreeMap::from([
            ("c0".to_string(), owning(&["t"], &[t(0), t(1), t(2)], 1)),
            ("c1".to_string(), owning(&["t"], &[t(3), t(4), t(5)], 1)),
            ("c2".to_string(), owning(&["t"], &[], -1)),
        ]);
        // Round 1: c0 and c1 each give up their highest partition, which
        // nobody gets yet.
        let out = A.assign(&parts, &m);
        assert_eq!(ps(&out, "c0"), [0, 1]);
        assert_eq!(ps(&out, "c1"), [3, 4]);
        assert_eq!(ps(&out, "c2"), Vec::<i32>::new());
        apply(&mut m, &out, 2);
        m.get_mut("c2").unwrap().subscription.generation_id = -1;
        // Round 2: the revoked partitions reach c2; nothing else moves.
        let out = A.assign(&parts, &m);
        assert_eq!(ps(&out, "c0"), [0, 1]);
        assert_eq!(ps(&out, "c1"), [3, 4]);
        assert_eq!(ps(&out, "c2"), [2, 5]);
        assert_eq!(revoked(&m, &out), 0);
    }

    #[test]
    fn member_leaves_moves_nothing_else() {
        let parts = topics(&[("t", 6)]);
        let t = |p| tp("t", p);
        let m = BTreeMap::from([
            ("c0".to_string(), owning(&["t"], &[t(0), t(1)], 4)),
            ("c2".to_string(), owning(&["t"], &[t(4), t(5)], 4)),
        ]);
        let out = A.assign(&parts, &m);
        check_cooperative(&m, &out);
        assert_eq!(revoked(&m, &out), 0);
        assert_eq!(check_valid(&parts, &m, &out), 6);
        assert_eq!(spread(&out), 0);
    }

    #[test]
    fn highest_generation_wins_a_contested_partition() {
        let parts = topics(&[("t", 2)]);
        let t = |p| tp("t", p);
        let m = BTreeMap::from([
            ("old".to_string(), owning(&["t"], &[t(0), t(1)], 3)),
            ("new".to_string(), owning(&["t"], &[t(0)], 5)),
        ]);
        let out = A.assign(&parts, &m);
        // "new" keeps t-0; t-1 stays with "old" (uncontested).
        assert_eq!(ps(&out, "new"), [0]);
        assert_eq!(ps(&out, "old"), [1]);
    }

    #[test]
    fn same_generation_conflict_is_held_back_from_everyone() {
        let parts = topics(&[("t", 3)]);
        let t = |p| tp("t", p);
        let m = BTreeMap::from([
            ("a".to_string(), owning(&["t"], &[t(0), t(2)], 3)),
            ("b".to_string(), owning(&["t"], &[t(1), t(2)], 3)),
        ]);
        let out = A.assign(&parts, &m);
        assert_eq!(ps(&out, "a"), [0]);
        assert_eq!(ps(&out, "b"), [1]);
        check_cooperative(&m, &out);
    }

    #[test]
    fn generation_from_user_data_when_the_field_is_unset() {
        let parts = topics(&[("t", 1)]);
        let mut stale = owning(&["t"], &[tp("t", 0)], -1);
        stale.subscription.user_data = Some(CooperativeStickyAssignor::encode_user_data(2));
        let mut fresh = owning(&["t"], &[tp("t", 0)], -1);
        fresh.subscription.user_data = Some(CooperativeStickyAssignor::encode_user_data(9));
        let m = BTreeMap::from([("a".to_string(), fresh), ("b".to_string(), stale)]);
        let out = A.assign(&parts, &m);
        assert_eq!(ps(&out, "a"), [0]);
        assert!(out["b"].partitions.is_empty());

        assert_eq!(
            A.subscription_user_data(&[], &[], 7).as_deref(),
            Some(&[0u8, 0, 0, 7][..])
        );
        let mut s = Subscription::new(["t"]);
        assert_eq!(CooperativeStickyAssignor::member_generation(&s), -1);
        s.user_data = Some(Bytes::from_static(&[0, 1]));
        assert_eq!(CooperativeStickyAssignor::member_generation(&s), -1);
        s.user_data = Some(Bytes::from_static(&[0, 0, 1, 0, 9]));
        assert_eq!(CooperativeStickyAssignor::member_generation(&s), 256);
        s.generation_id = 4;
        assert_eq!(CooperativeStickyAssignor::member_generation(&s), 4);
    }

    #[test]
    fn unsubscribed_topic_is_revoked_before_it_moves() {
        // "a" dropped topic u but still owns two of its partitions; only
        // "b" can take them, and balance then wants t-1 on "a".
        let parts = topics(&[("t", 2), ("u", 2)]);
        let mut m = BTreeMap::from([
            (
                "a".to_string(),
                owning(&["t"], &[tp("t", 0), tp("u", 0), tp("u", 1)], 1),
            ),
            ("b".to_string(), owning(&["t", "u"], &[tp("t", 1)], 1)),
        ]);
        let out = A.assign(&parts, &m);
        check_cooperative(&m, &out);
        assert_eq!(out["a"].partitions, [tp("t", 0)]);
        assert!(out["b"].partitions.is_empty());
        apply(&mut m, &out, 2);
        let out = A.assign(&parts, &m);
        assert_eq!(out["a"].partitions, [tp("t", 0), tp("t", 1)]);
        assert_eq!(out["b"].partitions, [tp("u", 0), tp("u", 1)]);
    }

    #[test]
    fn unequal_subscriptions_balance_through_a_chain() {
        // a: t only, b: t and u, c: u only. a starts with everything of t,
        // b with everything of u; c can only be fed through b.
        let parts = topics(&[("t", 4), ("u", 4)]);
        let m = members(&[("a", &["t"]), ("b", &["t", "u"]), ("c", &["u"])]);
        let out = A.assign(&parts, &m);
        assert_eq!(check_valid(&parts, &m, &out), 8);
        let counts: Vec<usize> = out.values().map(|a| a.partitions.len()).collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }

    #[test]
    fn empty_inputs() {
        assert!(A.assign(&BTreeMap::new(), &BTreeMap::new()).is_empty());
        let m = members(&[("a", &["missing"])]);
        let out = A.assign(&topics(&[("t", 3)]), &m);
        assert!(out["a"].partitions.is_empty());
    }

    #[test]
    fn large_group_is_quick() {
        let names: Vec<String> = (0..20).map(|i| format!("topic{i:02}")).collect();
        let parts: BTreeMap<String, i32> = names.iter().map(|t| (t.clone(), 50)).collect();
        let topic_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut m: BTreeMap<String, MemberSubscription> = (0..100)
            .map(|i| (format!("member-{i:03}"), owning(&topic_refs, &[], -1)))
            .collect();
        let out = A.assign(&parts, &m);
        assert_eq!(check_valid(&parts, &m, &out), 1000);
        assert_eq!(spread(&out), 0);
        apply(&mut m, &out, 1);
        m.insert("member-new".into(), owning(&topic_refs, &[], -1));
        let out = A.assign(&parts, &m);
        check_cooperative(&m, &out);
        // 1000 partitions over 101 members: 91 keep 10 and 9 drop to 9,
        // for the newcomer to get 9 in the next round.
        assert_eq!(revoked(&m, &out), 9);
        apply(&mut m, &out, 2);
        let out = A.assign(&parts, &m);
        assert_eq!(revoked(&m, &out), 0);
        assert_eq!(out["member-new"].partitions.len(), 9);
        assert_eq!(spread(&out), 1);
    }

    /// Up to 4 topics, 1..8 members with random subscriptions, owned
    /// partitions and generations.
    fn case(
        same: bool,
    ) -> impl Strategy<Value = (BTreeMap<String, i32>, BTreeMap<String, MemberSubscription>)> {
        let names = ["a", "b", "c", "d"];
        (
            proptest::collection::vec(0..12i32, 4),
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<bool>(), 4),
                    proptest::collection::vec((0..4usize, 0..14i32), 0..8),
                    -1..3i32,
                ),
                1..8,
            ),
        )
            .prop_map(move |(counts, subs)| {
                let parts = names.iter().map(|t| t.to_string()).zip(counts).collect();
                let first = subs[0].0.clone();
                let members = subs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (which, owned, generation))| {
                        let which = if same { first.clone() } else { which };
                        let topics: Vec<&str> = names
                            .iter()
                            .zip(which)
                            .filter(|(_, on)| *on)
                            .map(|(t, _)| *t)
                            .collect();
                        let owned: Vec<TopicPartition> =
                            owned.into_iter().map(|(t, p)| tp(names[t], p)).collect();
                        (format!("m{i}"), owning(&topics, &owned, generation))
                    })
                    .collect();
                (parts, members)
            })
    }

    /// A consistent previous state: the output of an earlier assignment,
    /// owned at one generation (what a real group sends).
    fn settled(
        parts: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, MemberSubscription> {
        let mut m = members.clone();
        for _ in 0..4 {
            let out = A.assign(parts, &m);
            apply(&mut m, &out, 1);
        }
        m
    }

    /// The fewest owned partitions any balanced assignment must take away,
    /// with equal subscriptions and consistent ownership: the `extra`
    /// members owning most keep up to `quota + 1`, the others `quota`.
    fn minimum_revocations(total: usize, owned: &[usize]) -> usize {
        if owned.is_empty() {
            return 0;
        }
        let quota = total / owned.len();
        let extra = total % owned.len();
        let mut sorted = owned.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted
            .iter()
            .enumerate()
            .map(|(i, &o)| o.saturating_sub(quota + usize::from(i < extra)))
            .sum()
    }

    proptest! {
        #[test]
        fn valid_cooperative_and_deterministic((parts, m) in case(false)) {
            let out = A.assign(&parts, &m);
            check_valid(&parts, &m, &out);
            check_cooperative(&m, &out);
            prop_assert_eq!(&out, &A.assign(&parts, &m));
        }

        #[test]
        fn converges_to_complete_and_locally_balanced((parts, m) in case(false)) {
            let mut m = m;
            let mut out = A.assign(&parts, &m);
            let all = all_subscribed(&parts, &m).len();
            // Each round the members revoke what they lost and adopt the
            // rest. From arbitrary (even conflicting) claims, a fixed point
            // with everything assigned comes by the third rebalance (random
            // runs need 2, rarely 3).
            let mut rounds = 1;
            while revoked(&m, &out) > 0 || check_valid(&parts, &m, &out) < all {
                prop_assert!(rounds < 3, "no fixed point after {} rounds", rounds);
                check_cooperative(&m, &out);
                apply(&mut m, &out, 10 + rounds);
                out = A.assign(&parts, &m);
                rounds += 1;
            }
            // No member could give a partition to a subscriber of its topic
            // that holds two fewer.
            for (x, ax) in &out {
                for (y, ay) in &out {
                    let ty = topics_of(&m[y]);
                    if ax.partitions.iter().any(|p| ty.contains(p.topic.as_str())) {
                        prop_assert!(ax.partitions.len() <= ay.partitions.len() + 1, "{} -> {}", x, y);
                    }
                }
            }
        }

        #[test]
        fn equal_subscriptions_two_rounds((parts, m) in case(true)) {
            let mut m = m;
            let all = all_subscribed(&parts, &m).len();
            let out = A.assign(&parts, &m);
            check_cooperative(&m, &out);
            apply(&mut m, &out, 7);
            let out = A.assign(&parts, &m);
            prop_assert_eq!(check_valid(&parts, &m, &out), all);
            prop_assert!(spread(&out) <= 1);
            prop_assert_eq!(revoked(&m, &out), 0);
        }

        #[test]
        fn join_and_leave_move_the_minimum(
            (parts, m) in case(true),
            join in any::<bool>(),
            victim in any::<prop::sample::Index>(),
        ) {
            let mut m = settled(&parts, &m);
            if join {
                let topics = m.values().next().map(|s| s.subscription.topics.clone()).unwrap_or_default();
                let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                m.insert("zz-new".into(), owning(&refs, &[], -1));
            } else if m.len() > 1 {
                let id = victim.get(&m.keys().cloned().collect::<Vec<_>>()).clone();
                m.remove(&id);
            }
            let out = A.assign(&parts, &m);
            check_cooperative(&m, &out);
            let owned: Vec<usize> = m.values().map(|s| s.subscription.owned_partitions.len()).collect();
            let all = all_subscribed(&parts, &m).len();
            prop_assert_eq!(revoked(&m, &out), minimum_revocations(all, &owned));
            // and the follow-up round completes it without further moves
            apply(&mut m, &out, 2);
            let out = A.assign(&parts, &m);
            prop_assert_eq!(check_valid(&parts, &m, &out), all);
            prop_assert!(spread(&out) <= 1);
            prop_assert_eq!(revoked(&m, &out), 0);
        }
    }

    // Rack awareness (KIP-881).

    /// `member` of `owning` in `rack` (`None`: no `client.rack`).
    fn racked(
        topics: &[&str],
        owned: &[TopicPartition],
        generation_id: i32,
        rack: Option<&str>,
    ) -> MemberSubscription {
        let mut m = owning(topics, owned, generation_id);
        m.subscription.rack_id = rack.map(str::to_string);
        m
    }

    /// Replica racks: per topic, per partition, rack names.
    fn replica_racks(spec: &[(&str, &[&[&str]])]) -> PartitionRacks {
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

    /// Partitions on a member with a rack that none of their replicas is in.
    fn mismatches(
        members: &BTreeMap<String, MemberSubscription>,
        racks: &PartitionRacks,
        out: &BTreeMap<String, Assignment>,
    ) -> usize {
        out.iter()
            .filter_map(|(id, a)| Some((members[id].subscription.rack_id.as_deref()?, a)))
            .map(|(rack, a)| {
                a.partitions
                    .iter()
                    .filter(|p| {
                        !racks
                            .get(&p.topic)
                            .and_then(|r| r.get(p.partition as usize))
                            .is_some_and(|r| r.contains(rack))
                    })
                    .count()
            })
            .sum()
    }

    fn sorted_loads(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        let mut loads: Vec<usize> = out.values().map(|a| a.partitions.len()).collect();
        loads.sort_unstable();
        loads
    }

    #[test]
    fn fresh_group_gets_partitions_in_its_racks() {
        // Partition p has its only replica on rack p % 3; members are
        // listed against the rack order so that plain filling misses.
        let parts = topics(&[("t", 6)]);
        let spec: &[&[&str]] = &[&["a"], &["b"], &["c"], &["a"], &["b"], &["c"]];
        let r = replica_racks(&[("t", spec)]);
        let m = BTreeMap::from([
            ("m0".to_string(), racked(&["t"], &[], -1, Some("c"))),
            ("m1".to_string(), racked(&["t"], &[], -1, Some("b"))),
            ("m2".to_string(), racked(&["t"], &[], -1, Some("a"))),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(ps(&out, "m0"), [2, 5]);
        assert_eq!(ps(&out, "m1"), [1, 4]);
        assert_eq!(ps(&out, "m2"), [0, 3]);
        assert_eq!(mismatches(&m, &r, &out), 0);
        // Without racks: dealt in order, as before.
        let plain = A.assign(&parts, &m);
        assert_eq!(ps(&plain, "m0"), [0, 3]);
        assert_eq!(mismatches(&m, &r, &plain), 4);
    }

    #[test]
    fn members_without_a_rack_take_what_matches_no_one() {
        let parts = topics(&[("t", 4)]);
        let r = replica_racks(&[("t", &[&["a"], &["b"], &["b"], &["a"]])]);
        let m = BTreeMap::from([
            ("m0".to_string(), racked(&["t"], &[], -1, None)),
            ("m1".to_string(), racked(&["t"], &[], -1, Some("a"))),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(ps(&out, "m0"), [1, 2]);
        assert_eq!(ps(&out, "m1"), [0, 3]);
    }

    #[test]
    fn partitions_without_rack_information_match_no_rack() {
        // p1 and p3 have no rack information: mismatched anywhere with a
        // rack, so each member gets its rack's partition and one of them.
        let parts = topics(&[("t", 4)]);
        let r = replica_racks(&[("t", &[&["a"], &[], &["b"], &[]])]);
        let m = BTreeMap::from([
            ("m0".to_string(), racked(&["t"], &[], -1, Some("b"))),
            ("m1".to_string(), racked(&["t"], &[], -1, Some("a"))),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert!(out["m0"].partitions.contains(&tp("t", 2)));
        assert!(out["m1"].partitions.contains(&tp("t", 0)));
        assert_eq!(spread(&out), 0);
        assert_eq!(mismatches(&m, &r, &out), 2);
        // With a member without a rack, that one takes them.
        let mut m = m;
        m.insert("m2".into(), racked(&["t"], &[], -1, None));
        let parts = topics(&[("t", 4), ("u", 2)]);
        let r = replica_racks(&[("t", &[&["a"], &[], &["b"], &[]]), ("u", &[&["a"], &["b"]])]);
        for s in m.values_mut() {
            s.subscription.topics = vec!["t".into(), "u".into()];
        }
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(mismatches(&m, &r, &out), 0);
        assert_eq!(out["m2"].partitions, [tp("t", 1), tp("t", 3)]);
    }

    #[test]
    fn without_usable_racks_nothing_changes() {
        let parts = topics(&[("t", 5), ("u", 3)]);
        let t = |p| tp("t", p);
        let m = BTreeMap::from([
            ("m0".to_string(), racked(&["t", "u"], &[t(4)], 2, Some("a"))),
            (
                "m1".to_string(),
                racked(&["t"], &[t(0), t(1)], 2, Some("b")),
            ),
            ("m2".to_string(), racked(&["t", "u"], &[], -1, None)),
        ]);
        let plain = A.assign(&parts, &m);
        let both: &[&str] = &["a", "b"];
        let x: &[&str] = &["x"];
        let none: &[&str] = &[];
        let everywhere: &[&[&str]] = &[both; 5];
        let elsewhere: &[&[&str]] = &[x; 5];
        let unknown: &[&[&str]] = &[none; 5];
        for r in [
            PartitionRacks::new(),
            replica_racks(&[("t", everywhere), ("u", &everywhere[..3])]),
            replica_racks(&[("t", elsewhere), ("u", &elsewhere[..3])]),
            replica_racks(&[("t", unknown), ("u", &unknown[..3])]),
        ] {
            assert_eq!(A.assign_with_racks(&parts, &r, &m), plain, "{r:?}");
        }
        // Members without racks: racks of partitions change nothing.
        let mut no_racks = m.clone();
        for s in no_racks.values_mut() {
            s.subscription.rack_id = None;
        }
        let r = replica_racks(&[("t", &[&["a"], &["b"], &["a"], &["b"], &["a"]])]);
        assert_eq!(
            A.assign_with_racks(&parts, &r, &no_racks),
            A.assign(&parts, &no_racks)
        );
    }

    #[test]
    fn owned_partition_in_the_wrong_rack_moves_to_a_member_with_room() {
        // m0 (rack a) owns p0 (a) and p1 (b); m1 (rack b) owns p2 (b) and
        // has room for one more: p1 moves to m1, revoked first.
        let parts = topics(&[("t", 3)]);
        let t = |p| tp("t", p);
        let r = replica_racks(&[("t", &[&["a"], &["b"], &["b"]])]);
        let mut m = BTreeMap::from([
            (
                "m0".to_string(),
                racked(&["t"], &[t(0), t(1)], 4, Some("a")),
            ),
            ("m1".to_string(), racked(&["t"], &[t(2)], 4, Some("b"))),
        ]);
        let planned = A.planned_assignment(&parts, &r, &m);
        assert_eq!(ps(&planned, "m0"), [0]);
        assert_eq!(ps(&planned, "m1"), [1, 2]);
        let out = A.assign_with_racks(&parts, &r, &m);
        check_cooperative(&m, &out);
        assert_eq!(ps(&out, "m0"), [0]);
        assert_eq!(ps(&out, "m1"), [2]);
        apply(&mut m, &out, 5);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(ps(&out, "m1"), [1, 2]);
        assert_eq!(mismatches(&m, &r, &out), 0);
        // Without racks nothing moves.
        assert_eq!(revoked(&m, &A.assign(&parts, &m)), 0);
    }

    #[test]
    fn owned_partition_in_the_wrong_rack_stays_without_room() {
        // m1 is full of partitions in its own rack: taking p1 would mean
        // giving m0 one of them, in the wrong rack for m0.
        let parts = topics(&[("t", 4)]);
        let t = |p| tp("t", p);
        let r = replica_racks(&[("t", &[&["a"], &["b"], &["b"], &["b"]])]);
        let m = BTreeMap::from([
            (
                "m0".to_string(),
                racked(&["t"], &[t(0), t(1)], 4, Some("a")),
            ),
            (
                "m1".to_string(),
                racked(&["t"], &[t(2), t(3)], 4, Some("b")),
            ),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(ps(&out, "m0"), [0, 1]);
        assert_eq!(ps(&out, "m1"), [2, 3]);
    }

    #[test]
    fn swaps_when_both_owners_are_in_the_wrong_rack() {
        // m0 (a) owns p0 (b), m1 (b) owns p1 (a): swapped in the plan, so
        // both are revoked first and handed over in the next round.
        let parts = topics(&[("t", 2)]);
        let t = |p| tp("t", p);
        let r = replica_racks(&[("t", &[&["b"], &["a"]])]);
        let mut m = BTreeMap::from([
            ("m0".to_string(), racked(&["t"], &[t(0)], 1, Some("a"))),
            ("m1".to_string(), racked(&["t"], &[t(1)], 1, Some("b"))),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert!(out.values().all(|a| a.partitions.is_empty()));
        apply(&mut m, &out, 2);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(ps(&out, "m0"), [1]);
        assert_eq!(ps(&out, "m1"), [0]);
    }

    #[test]
    fn owned_partitions_in_a_matching_rack_stay() {
        // Everything each member owns has a replica in its rack: nothing
        // moves, though a fresh assignment would differ.
        let parts = topics(&[("t", 4)]);
        let t = |p| tp("t", p);
        let r = replica_racks(&[("t", &[&["a", "b"], &["a", "b"], &["a"], &["b"]])]);
        let m = BTreeMap::from([
            (
                "m0".to_string(),
                racked(&["t"], &[t(1), t(2)], 3, Some("a")),
            ),
            (
                "m1".to_string(),
                racked(&["t"], &[t(0), t(3)], 3, Some("b")),
            ),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(revoked(&m, &out), 0);
        assert_eq!(ps(&out, "m0"), [1, 2]);
        assert_eq!(ps(&out, "m1"), [0, 3]);
    }

    #[test]
    fn balance_comes_before_racks() {
        // Every replica on rack a: m1 (rack b) still gets its share.
        let parts = topics(&[("t", 5), ("u", 1)]);
        let a: &[&str] = &["a"];
        let r = replica_racks(&[("t", &[a; 5]), ("u", &[&["b"]])]);
        let m = BTreeMap::from([
            ("m0".to_string(), racked(&["t", "u"], &[], -1, Some("a"))),
            ("m1".to_string(), racked(&["t", "u"], &[], -1, Some("b"))),
        ]);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(spread(&out), 0);
        assert_eq!(out["m1"].partitions.len(), 3);
        assert!(out["m1"].partitions.contains(&tp("u", 0)));
        assert_eq!(mismatches(&m, &r, &out), 2);
    }

    #[test]
    fn large_group_with_racks_is_quick() {
        // 1000 partitions with replicas on two of three racks, 100 members
        // in three racks, owning a rack-unaware assignment: racks just
        // turned on.
        let names: Vec<String> = (0..20).map(|i| format!("topic{i:02}")).collect();
        let parts: BTreeMap<String, i32> = names.iter().map(|t| (t.clone(), 50)).collect();
        let rack_names = ["a", "b", "c"];
        let r: PartitionRacks = names
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let per = (0..50)
                    .map(|p| {
                        let first = (i + p) % 3;
                        [rack_names[first], rack_names[(first + 1) % 3]]
                            .iter()
                            .map(|s| s.to_string())
                            .collect()
                    })
                    .collect();
                (t.clone(), per)
            })
            .collect();
        let topic_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut m: BTreeMap<String, MemberSubscription> = (0..100)
            .map(|i| {
                let member = racked(&topic_refs, &[], -1, Some(rack_names[i % 3]));
                (format!("member-{i:03}"), member)
            })
            .collect();
        let out = A.assign(&parts, &m);
        apply(&mut m, &out, 1);
        let before = mismatches(&m, &r, &out);
        let start = std::time::Instant::now();
        let planned = A.planned_assignment(&parts, &r, &m);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(check_valid(&parts, &m, &planned), 1000);
        assert_eq!(spread(&planned), 0);
        assert_eq!(mismatches(&m, &r, &planned), 0, "was {before}");
        check_cooperative(&m, &out);
        // Only mismatched partitions move.
        assert_eq!(revoked(&m, &out), before);
        apply(&mut m, &out, 2);
        let out = A.assign_with_racks(&parts, &r, &m);
        assert_eq!(check_valid(&parts, &m, &out), 1000);
        assert_eq!(mismatches(&m, &r, &out), 0);
        assert_eq!(revoked(&m, &out), 0);
    }

    /// [`case`] with replicas on random racks (none to all three) and
    /// members in random racks or none.
    fn rack_case(
        same: bool,
    ) -> impl Strategy<
        Value = (
            BTreeMap<String, i32>,
            PartitionRacks,
            BTreeMap<String, MemberSubscription>,
        ),
    > {
        (
            case(same),
            proptest::collection::vec(0u8..8, 48),
            proptest::collection::vec(proptest::option::of(0u8..3), 8),
        )
            .prop_map(|((parts, mut m), bits, member_racks)| {
                let names = ["r0", "r1", "r2"];
                let mut bits = bits.into_iter().cycle();
                let r: PartitionRacks = parts
                    .iter()
                    .map(|(t, n)| {
                        let per = (0..*n)
                            .map(|_| {
                                let b = bits.next().unwrap_or(0);
                                (0..3)
                                    .filter(|i| b & (1 << i) != 0)
                                    .map(|i| names[i].to_string())
                                    .collect()
                            })
                            .collect();
                        (t.clone(), per)
                    })
                    .collect();
                for (s, rack) in m.values_mut().zip(member_racks) {
                    s.subscription.rack_id = rack.map(|i| names[usize::from(i)].to_string());
                }
                (parts, r, m)
            })
    }

    proptest! {
        /// Racks never cost balance: the planned assignment is complete
        /// with exactly the loads it has without racks, and has no more
        /// mismatches; the assignment is valid, cooperative, deterministic.
        #[test]
        fn racks_keep_balance_and_validity((parts, r, m) in rack_case(false)) {
            let out = A.assign_with_racks(&parts, &r, &m);
            check_valid(&parts, &m, &out);
            check_cooperative(&m, &out);
            prop_assert_eq!(&out, &A.assign_with_racks(&parts, &r, &m));
            let planned = A.planned_assignment(&parts, &r, &m);
            let plain = A.planned_assignment(&parts, &PartitionRacks::new(), &m);
            prop_assert_eq!(check_valid(&parts, &m, &planned), all_subscribed(&parts, &m).len());
            prop_assert_eq!(sorted_loads(&planned), sorted_loads(&plain));
            prop_assert!(mismatches(&m, &r, &planned) <= mismatches(&m, &r, &plain));
            for (id, a) in &out {
                prop_assert!(a.partitions.iter().all(|p| planned[id].partitions.contains(p)));
            }
        }

        /// From arbitrary claims a rack-aware group settles like a
        /// rack-unaware one, and then stays put.
        #[test]
        fn racks_converge((parts, r, m) in rack_case(false)) {
            let mut m = m;
            let mut out = A.assign_with_racks(&parts, &r, &m);
            let all = all_subscribed(&parts, &m).len();
            let mut rounds = 1;
            while revoked(&m, &out) > 0 || check_valid(&parts, &m, &out) < all {
                prop_assert!(rounds < 3, "no fixed point after {} rounds", rounds);
                check_cooperative(&m, &out);
                apply(&mut m, &out, 10 + rounds);
                out = A.assign_with_racks(&parts, &r, &m);
                rounds += 1;
            }
            apply(&mut m, &out, 20);
            prop_assert_eq!(&A.assign_with_racks(&parts, &r, &m), &out);
        }

        /// Equal subscriptions: counts at most one apart once settled,
        /// with racks as without.
        #[test]
        fn racks_with_equal_subscriptions((parts, r, m) in rack_case(true)) {
            let mut m = m;
            let all = all_subscribed(&parts, &m).len();
            let out = A.assign_with_racks(&parts, &r, &m);
            check_cooperative(&m, &out);
            apply(&mut m, &out, 7);
            let out = A.assign_with_racks(&parts, &r, &m);
            prop_assert_eq!(check_valid(&parts, &m, &out), all);
            prop_assert!(spread(&out) <= 1);
            prop_assert_eq!(revoked(&m, &out), 0);
        }
    }
}
