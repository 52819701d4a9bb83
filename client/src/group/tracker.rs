//! The offset tracker behind manual commits: per assigned partition, which
//! records were handed to the user and which of them are done, and from
//! that the offset that is safe to commit.
//!
//! The rule (water-healer's, and the issue's): a group's committed offset is
//! where a restarted consumer resumes, so it may only move past a record
//! once that record *and every record handed out before it* is done. With
//! several workers finishing records out of order (1, 2, 3 handed out; 3
//! and 2 done, 1 still running), the commit point stays at 1 until 1 is
//! done, then jumps to 4.
//!
//! Offsets are not contiguous (compaction, transaction markers), so "every
//! record before it" means every record *handed out* before it: the commit
//! point is the lowest handed-out offset not yet done, or, when none is
//! pending, one past the highest handed-out offset. That needs only the set
//! of pending offsets and the highest offset per partition: memory is
//! O(pending records) plus O(1) per partition, whatever the offset range.
//!
//! A record may be handed out again after a seek backwards; it is then
//! pending again until marked done (once: an offset is pending or not, it
//! is not counted), and the commit point drops back to it, so nothing
//! committed afterwards skips it. Commits never move backwards:
//! [`OffsetTracker::to_commit`] only offers commit points beyond the last
//! successful commit.
//!
//! Pure bookkeeping: no IO, no clocks, no panics on any sequence of calls.
//! The group driver calls [`assign`](OffsetTracker::assign) and
//! [`revoke`](OffsetTracker::revoke) from the rebalance callbacks,
//! [`handed_out`](OffsetTracker::handed_out) as records are returned to the
//! user, [`mark_done`](OffsetTracker::mark_done) from the user's
//! `mark_done`, and [`to_commit`](OffsetTracker::to_commit) /
//! [`committed`](OffsetTracker::committed) around each OffsetCommit.

use std::collections::{BTreeMap, BTreeSet};

use crate::consumer::TopicPartition;

/// What [`OffsetTracker::mark_done`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkDone {
    /// The record was pending and is now done.
    Done,
    /// The partition is not tracked (not assigned, or revoked since the
    /// record was handed out): nothing changes, and nothing will be
    /// committed for it by this member.
    NotOwned,
    /// The offset was not handed out since the partition was assigned, or
    /// it is already done.
    NotPending,
}

/// One tracked partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PartitionTrack {
    /// Handed out and not yet done.
    pending: BTreeSet<i64>,
    /// The highest offset handed out since the partition was assigned.
    highest: Option<i64>,
    /// The offset of the last successful commit since assignment.
    committed: Option<i64>,
    /// A record above the commit point was marked done since the last
    /// commit: the commit point is the same, but the done ranges sent with
    /// it (see [`OffsetTracker::done_above`]) grew.
    done_since_commit: bool,
}

impl PartitionTrack {
    fn commit_point(&self) -> Option<i64> {
        match self.pending.first() {
            Some(&lowest) => Some(lowest),
            // `handed_out` refuses i64::MAX, so this cannot overflow.
            None => self.highest.map(|h| h.saturating_add(1)),
        }
    }

    /// The commit point, when it is beyond the last commit.
    fn uncommitted(&self) -> Option<i64> {
        let point = self.commit_point()?;
        match self.committed {
            Some(c) if c > point => None,
            // Same point: send it again only to carry done ranges that grew.
            Some(c) if c == point && (!self.done_since_commit || self.pending.is_empty()) => None,
            _ => Some(point),
        }
    }
}

/// Per-partition bookkeeping of handed-out and done records, for manual
/// commits that never skip an unfinished record (see the module docs).
///
/// Invariant: for every tracked partition, [`commit_point`] is at most
/// every offset that was handed out and is not yet done.
///
/// [`commit_point`]: OffsetTracker::commit_point
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetTracker {
    partitions: BTreeMap<TopicPartition, PartitionTrack>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start tracking `tp` (it was assigned to this member). Assigning a
    /// partition that is already tracked starts it afresh: what was handed
    /// out or committed under the previous assignment is forgotten.
    pub fn assign(&mut self, tp: TopicPartition) {
        self.partitions.insert(tp, PartitionTrack::default());
    }

    /// Stop tracking `tp` (revoked or lost). Returns its commit point when
    /// it is beyond the last successful commit, for a final commit before
    /// the partition goes (on revoke; after a loss, drop it: the partition
    /// may already belong to another member). `None` when `tp` was not
    /// tracked or there is nothing new to commit.
    pub fn revoke(&mut self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.remove(tp)?.uncommitted()
    }

    /// Stop tracking every partition, returning the final commits as
    /// [`revoke`](Self::revoke) would for each (on close).
    pub fn revoke_all(&mut self) -> Vec<(TopicPartition, i64)> {
        std::mem::take(&mut self.partitions)
            .into_iter()
            .filter_map(|(tp, t)| t.uncommitted().map(|o| (tp, o)))
            .collect()
    }

    /// Record that the record at `offset` of `tp` was given to the user; it
    /// is pending until [`mark_done`](Self::mark_done). Handing out an
    /// offset below the highest one so far (after a seek backwards) makes it
    /// pending again.
    ///
    /// Returns false, changing nothing, when `tp` is not tracked or `offset`
    /// is not a record offset (negative, or `i64::MAX`, which would leave no
    /// offset to commit after it).
    pub fn handed_out(&mut self, tp: &TopicPartition, offset: i64) -> bool {
        if !(0..i64::MAX).contains(&offset) {
            return false;
        }
        let Some(t) = self.partitions.get_mut(tp) else {
            return false;
        };
        t.pending.insert(offset);
        t.highest = Some(t.highest.map_or(offset, |h| h.max(offset)));
        true
    }

    /// Record that the user finished the record at `offset` of `tp`.
    pub fn mark_done(&mut self, tp: &TopicPartition, offset: i64) -> MarkDone {
        match self.partitions.get_mut(tp) {
            None => MarkDone::NotOwned,
            Some(t) => {
                if t.pending.remove(&offset) {
                    t.done_since_commit = true;
                    MarkDone::Done
                } else {
                    MarkDone::NotPending
                }
            }
        }
    }

    /// The offset to commit for `tp`: the lowest handed-out offset not yet
    /// done, or, when none is pending, one past the highest handed-out
    /// offset (Kafka commits the offset of the next record to read). `None`
    /// when `tp` is not tracked or nothing was handed out since it was
    /// assigned.
    pub fn commit_point(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp)?.commit_point()
    }

    /// The partitions whose commit point is beyond their last successful
    /// commit (or that were never committed since assignment), with that
    /// commit point, sorted by partition. Empty when there is nothing to
    /// send.
    pub fn to_commit(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(tp, t)| t.uncommitted().map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Record that committing `offset` for `tp` succeeded. Ignored when
    /// `tp` is not tracked (a commit that completes after the partition was
    /// revoked).
    pub fn committed(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(t) = self.partitions.get_mut(tp) {
            t.committed = Some(offset);
            t.done_since_commit = false;
        }
    }

    /// The done offsets of `tp` above `from`, as sorted half-open ranges
    /// `[start, end)`: every offset in `(from, highest handed out]` that is
    /// not pending. Sent with a commit (in its metadata) so that after a
    /// crash the next owner skips records finished out of order beyond the
    /// commit point instead of processing them again. Gaps in the log
    /// (compaction, markers) fall inside ranges harmlessly. At most `limit`
    /// ranges, the lowest ones.
    pub fn done_above(&self, tp: &TopicPartition, from: i64, limit: usize) -> Vec<(i64, i64)> {
        let Some(t) = self.partitions.get(tp) else {
            return Vec::new();
        };
        let Some(highest) = t.highest else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut next = from.saturating_add(1);
        for &p in t.pending.range(next..) {
            if out.len() >= limit {
                return out;
            }
            if p > next {
                out.push((next, p));
            }
            next = p.saturating_add(1);
        }
        if next <= highest && out.len() < limit {
            out.push((next, highest.saturating_add(1)));
        }
        out
    }

    /// The offset of the last successful commit for `tp` since it was
    /// assigned.
    pub fn last_committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp)?.committed
    }

    /// How many records of `tp` are handed out and not done (0 when `tp` is
    /// not tracked).
    pub fn pending(&self, tp: &TopicPartition) -> usize {
        self.partitions.get(tp).map_or(0, |t| t.pending.len())
    }

    /// True when `tp` is tracked (assigned and not revoked).
    pub fn is_tracked(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    /// The tracked partitions, sorted.
    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use proptest::prelude::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn water_healer_out_of_order() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        for o in [1, 2, 3] {
            assert!(t.handed_out(&tp(0), o));
        }
        assert_eq!(t.commit_point(&tp(0)), Some(1));
        assert_eq!(t.mark_done(&tp(0), 3), MarkDone::Done);
        assert_eq!(t.commit_point(&tp(0)), Some(1));
        assert_eq!(t.mark_done(&tp(0), 2), MarkDone::Done);
        assert_eq!(t.commit_point(&tp(0)), Some(1));
        assert_eq!(t.pending(&tp(0)), 1);
        assert_eq!(t.mark_done(&tp(0), 1), MarkDone::Done);
        assert_eq!(t.commit_point(&tp(0)), Some(4));
        assert_eq!(t.pending(&tp(0)), 0);
        assert_eq!(t.mark_done(&tp(0), 1), MarkDone::NotPending);
    }

    #[test]
    fn nothing_handed_out_means_nothing_to_commit() {
        let mut t = OffsetTracker::new();
        assert_eq!(t.commit_point(&tp(0)), None);
        t.assign(tp(0));
        assert_eq!(t.commit_point(&tp(0)), None);
        assert!(t.to_commit().is_empty());
        assert_eq!(t.mark_done(&tp(0), 0), MarkDone::NotPending);
        assert_eq!(t.mark_done(&tp(1), 0), MarkDone::NotOwned);
        assert!(!t.handed_out(&tp(1), 0));
        assert_eq!(t.revoke(&tp(0)), None);
    }

    #[test]
    fn gaps_between_offsets_do_not_block() {
        // Offsets 10, 11, 15, 40: compaction or transaction markers left
        // holes, which are never handed out and never block the commit.
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        for o in [10, 11, 15, 40] {
            t.handed_out(&tp(0), o);
        }
        t.mark_done(&tp(0), 10);
        assert_eq!(t.commit_point(&tp(0)), Some(11));
        t.mark_done(&tp(0), 11);
        assert_eq!(t.commit_point(&tp(0)), Some(15));
        t.mark_done(&tp(0), 40);
        assert_eq!(t.commit_point(&tp(0)), Some(15));
        t.mark_done(&tp(0), 15);
        assert_eq!(t.commit_point(&tp(0)), Some(41));
    }

    #[test]
    fn to_commit_and_committed() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        t.assign(tp(1));
        t.handed_out(&tp(0), 5);
        t.handed_out(&tp(1), 7);
        t.mark_done(&tp(0), 5);
        assert_eq!(t.to_commit(), vec![(tp(0), 6), (tp(1), 7)]);
        t.committed(&tp(0), 6);
        t.committed(&tp(1), 7);
        assert!(t.to_commit().is_empty());
        assert_eq!(t.last_committed(&tp(0)), Some(6));
        t.mark_done(&tp(1), 7);
        assert_eq!(t.to_commit(), vec![(tp(1), 8)]);
        // A commit completing after the revoke is ignored.
        assert_eq!(t.revoke(&tp(1)), Some(8));
        t.committed(&tp(1), 8);
        assert!(!t.is_tracked(&tp(1)));
        assert_eq!(t.partitions().collect::<Vec<_>>(), vec![&tp(0)]);
    }

    #[test]
    fn revoke_returns_only_new_commit_points() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        t.handed_out(&tp(0), 0);
        t.handed_out(&tp(0), 1);
        t.mark_done(&tp(0), 0);
        t.committed(&tp(0), 1);
        // Commit point 1 was already committed.
        assert_eq!(t.revoke(&tp(0)), None);
        assert_eq!(t.mark_done(&tp(0), 1), MarkDone::NotOwned);
    }

    #[test]
    fn reassign_starts_afresh() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        t.handed_out(&tp(0), 3);
        t.committed(&tp(0), 3);
        t.assign(tp(0));
        assert_eq!(t.pending(&tp(0)), 0);
        assert_eq!(t.commit_point(&tp(0)), None);
        assert_eq!(t.last_committed(&tp(0)), None);
        assert_eq!(t.mark_done(&tp(0), 3), MarkDone::NotPending);
        // Revoked and assigned again: records handed out before do not count.
        t.handed_out(&tp(0), 8);
        t.revoke(&tp(0));
        t.assign(tp(0));
        assert_eq!(t.mark_done(&tp(0), 8), MarkDone::NotPending);
        assert_eq!(t.revoke_all(), vec![]);
    }

    #[test]
    fn redelivery_after_seek_back() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        for o in 0..5 {
            t.handed_out(&tp(0), o);
            t.mark_done(&tp(0), o);
        }
        assert_eq!(t.commit_point(&tp(0)), Some(5));
        t.committed(&tp(0), 5);
        // Seek back to 2: 2 and 3 come again.
        t.handed_out(&tp(0), 2);
        t.handed_out(&tp(0), 3);
        assert_eq!(t.commit_point(&tp(0)), Some(2));
        // Never commit backwards.
        assert!(t.to_commit().is_empty());
        t.handed_out(&tp(0), 5);
        t.mark_done(&tp(0), 5);
        t.mark_done(&tp(0), 3);
        assert_eq!(t.commit_point(&tp(0)), Some(2));
        assert!(t.to_commit().is_empty());
        t.mark_done(&tp(0), 2);
        assert_eq!(t.commit_point(&tp(0)), Some(6));
        assert_eq!(t.to_commit(), vec![(tp(0), 6)]);
    }

    #[test]
    fn redelivered_while_pending_needs_one_done() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        t.handed_out(&tp(0), 4);
        t.handed_out(&tp(0), 4);
        assert_eq!(t.pending(&tp(0)), 1);
        assert_eq!(t.mark_done(&tp(0), 4), MarkDone::Done);
        assert_eq!(t.mark_done(&tp(0), 4), MarkDone::NotPending);
        assert_eq!(t.commit_point(&tp(0)), Some(5));
    }

    #[test]
    fn invalid_offsets_are_refused() {
        let mut t = OffsetTracker::new();
        t.assign(tp(0));
        assert!(!t.handed_out(&tp(0), -1));
        assert!(!t.handed_out(&tp(0), i64::MIN));
        assert!(!t.handed_out(&tp(0), i64::MAX));
        assert_eq!(t.commit_point(&tp(0)), None);
        assert!(t.handed_out(&tp(0), i64::MAX - 1));
        t.mark_done(&tp(0), i64::MAX - 1);
        assert_eq!(t.commit_point(&tp(0)), Some(i64::MAX));
        assert_eq!(t.mark_done(&tp(0), i64::MIN), MarkDone::NotPending);
    }

    /// One call on the tracker, over 3 partitions and offsets 0..20.
    #[derive(Debug, Clone)]
    enum Op {
        Assign(i32),
        Revoke(i32),
        HandedOut(i32, i64),
        MarkDone(i32, i64),
        CommitAll,
        Committed(i32, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let p = 0..3i32;
        let o = -1..20i64;
        prop_oneof![
            1 => p.clone().prop_map(Op::Assign),
            1 => p.clone().prop_map(Op::Revoke),
            6 => (p.clone(), o.clone()).prop_map(|(p, o)| Op::HandedOut(p, o)),
            6 => (p.clone(), o.clone()).prop_map(|(p, o)| Op::MarkDone(p, o)),
            1 => Just(Op::CommitAll),
            1 => (p, o).prop_map(|(p, o)| Op::Committed(p, o)),
        ]
    }

    /// The naive model: per partition, every handed-out offset with a done
    /// flag, the last commit, and whether a record was done since it.
    #[derive(Default)]
    struct ModelPart {
        offsets: BTreeMap<i64, bool>,
        last: Option<i64>,
        done_since_commit: bool,
    }

    #[derive(Default)]
    struct Model {
        parts: HashMap<i32, ModelPart>,
    }

    impl Model {
        fn commit_point(&self, p: i32) -> Option<i64> {
            let part = self.parts.get(&p)?;
            let max = *part.offsets.keys().next_back()?;
            Some(
                part.offsets
                    .iter()
                    .find(|(_, done)| !**done)
                    .map_or(max + 1, |(o, _)| *o),
            )
        }

        fn pending(&self, p: i32) -> usize {
            self.parts
                .get(&p)
                .map_or(0, |x| x.offsets.values().filter(|d| !**d).count())
        }

        /// What `to_commit` / `revoke` should offer: the commit point when
        /// it is beyond the last commit, or equal to it while records above
        /// it were done since (the done ranges sent with it grew).
        fn to_commit(&self, p: i32) -> Option<i64> {
            let point = self.commit_point(p)?;
            let part = self.parts.get(&p)?;
            match part.last {
                Some(c) if c > point => None,
                Some(c) if c == point && !(part.done_since_commit && self.pending(p) > 0) => None,
                _ => Some(point),
            }
        }

        /// Runs of offsets in `(from, highest]` that are not pending, the
        /// first `limit` of them.
        fn done_above(&self, p: i32, from: i64, limit: usize) -> Vec<(i64, i64)> {
            let Some(part) = self.parts.get(&p) else {
                return Vec::new();
            };
            let Some(&highest) = part.offsets.keys().next_back() else {
                return Vec::new();
            };
            let pending = |o: i64| part.offsets.get(&o) == Some(&false);
            let mut out: Vec<(i64, i64)> = Vec::new();
            for o in (from + 1)..=highest {
                if pending(o) {
                    continue;
                }
                match out.last_mut() {
                    Some(last) if last.1 == o => last.1 = o + 1,
                    _ => out.push((o, o + 1)),
                }
            }
            out.truncate(limit);
            out
        }

        fn committed(&mut self, p: i32, o: i64) {
            if let Some(x) = self.parts.get_mut(&p) {
                x.last = Some(o);
                x.done_since_commit = false;
            }
        }
    }

    proptest! {
        #[test]
        fn never_passes_an_unfinished_offset(ops in proptest::collection::vec(op(), 0..200)) {
            let mut t = OffsetTracker::new();
            let mut m = Model::default();
            for op in ops {
                match op {
                    Op::Assign(p) => {
                        t.assign(tp(p));
                        m.parts.insert(p, ModelPart::default());
                    }
                    Op::Revoke(p) => {
                        prop_assert_eq!(t.revoke(&tp(p)), m.to_commit(p));
                        m.parts.remove(&p);
                    }
                    Op::HandedOut(p, o) => {
                        let ok = t.handed_out(&tp(p), o);
                        prop_assert_eq!(ok, m.parts.contains_key(&p) && o >= 0);
                        if let (true, Some(part)) = (ok, m.parts.get_mut(&p)) {
                            part.offsets.insert(o, false);
                        }
                    }
                    Op::MarkDone(p, o) => {
                        let got = t.mark_done(&tp(p), o);
                        let want = match m.parts.get_mut(&p) {
                            None => MarkDone::NotOwned,
                            Some(part) => match part.offsets.get_mut(&o) {
                                Some(done) if !*done => {
                                    *done = true;
                                    part.done_since_commit = true;
                                    MarkDone::Done
                                }
                                _ => MarkDone::NotPending,
                            },
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::CommitAll => {
                        for (tpart, o) in t.to_commit() {
                            t.committed(&tpart, o);
                            m.committed(tpart.partition, o);
                        }
                    }
                    Op::Committed(p, o) => {
                        t.committed(&tp(p), o);
                        m.committed(p, o);
                    }
                }
                for p in 0..3 {
                    let point = t.commit_point(&tp(p));
                    prop_assert_eq!(point, m.commit_point(p));
                    if let (Some(point), Some(part)) = (point, m.parts.get(&p)) {
                        // The invariant: nothing unfinished below the point.
                        for (o, done) in &part.offsets {
                            prop_assert!(*done || *o >= point, "{o} pending below {point}");
                        }
                    }
                    prop_assert_eq!(t.pending(&tp(p)), m.pending(p));
                    for from in [-1, 0, 5, point.unwrap_or(0)] {
                        for limit in [0, 1, 2, 100] {
                            prop_assert_eq!(
                                t.done_above(&tp(p), from, limit),
                                m.done_above(p, from, limit),
                                "done_above({}, {})", from, limit
                            );
                        }
                    }
                }
                let want: Vec<(TopicPartition, i64)> = (0..3)
                    .filter_map(|p| m.to_commit(p).map(|o| (tp(p), o)))
                    .collect();
                prop_assert_eq!(t.to_commit(), want);
            }
        }
    }
}
