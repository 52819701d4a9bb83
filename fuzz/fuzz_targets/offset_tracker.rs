//! The offset tracker behind manual commits under arbitrary sequences of
//! assign / revoke / handed_out / mark_done / commit calls on a few
//! partitions with small offsets (and the edge offsets): never a panic, and
//! after every call the tracker agrees with a naive model (commit point,
//! pending count, what to commit, done ranges) and its commit point never
//! passes an offset that was handed out and is not yet done.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use skotch_client::group::{MarkDone, OffsetTracker};
use skotch_client::TopicPartition;

const PARTITIONS: i32 = 3;

/// One partition of the model: every handed-out offset with its done
/// flag, the last commit, and whether a record was done since it.
#[derive(Default)]
struct Part {
    offsets: BTreeMap<i64, bool>,
    last: Option<i64>,
    done_since_commit: bool,
}

impl Part {
    fn commit_point(&self) -> Option<i64> {
        let max = *self.offsets.keys().next_back()?;
        Some(
            self.offsets
                .iter()
                .find(|(_, d)| !**d)
                .map_or(max + 1, |(o, _)| *o),
        )
    }

    fn pending(&self) -> usize {
        self.offsets.values().filter(|d| !**d).count()
    }

    /// The commit point when it is beyond the last commit, or equal to it
    /// while records above it were done since.
    fn to_commit(&self) -> Option<i64> {
        let point = self.commit_point()?;
        match self.last {
            Some(c) if c > point => None,
            Some(c) if c == point && !(self.done_since_commit && self.pending() > 0) => None,
            _ => Some(point),
        }
    }

    /// Runs of offsets in `(from, highest]` that are not pending.
    fn done_above(&self, from: i64, limit: usize) -> Vec<(i64, i64)> {
        let Some(&highest) = self.offsets.keys().next_back() else {
            return Vec::new();
        };
        let mut out: Vec<(i64, i64)> = Vec::new();
        let mut o = from.saturating_add(1);
        while o <= highest && out.len() <= limit {
            if self.offsets.get(&o) != Some(&false) {
                match out.last_mut() {
                    Some(last) if last.1 == o => last.1 = o + 1,
                    _ => out.push((o, o + 1)),
                }
            }
            o += 1;
        }
        out.truncate(limit);
        out
    }
}

/// Small offsets mostly, plus the edges the tracker must refuse or handle.
fn offset(b: u8) -> i64 {
    match b {
        250 => -1,
        251 => i64::MIN,
        252 => i64::MAX,
        253 => i64::MAX - 1,
        b => i64::from(b % 48),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut t = OffsetTracker::default();
    let mut m: BTreeMap<i32, Part> = BTreeMap::new();
    let tp = |p: i32| TopicPartition::new("t", p);
    for op in data.chunks_exact(2) {
        let (code, arg) = (op[0], op[1]);
        let p = i32::from(code >> 3) % PARTITIONS;
        let o = offset(arg);
        match code & 7 {
            0 => {
                t.assign(tp(p));
                m.insert(p, Part::default());
            }
            1 => {
                let want = m.get(&p).and_then(Part::to_commit);
                assert_eq!(t.revoke(&tp(p)), want);
                m.remove(&p);
            }
            2..=4 => {
                let ok = t.handed_out(&tp(p), o);
                let valid = (0..i64::MAX).contains(&o);
                assert_eq!(ok, m.contains_key(&p) && valid);
                if let (true, Some(part)) = (ok, m.get_mut(&p)) {
                    part.offsets.insert(o, false);
                }
            }
            5 | 6 => {
                let want = match m.get_mut(&p) {
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
                assert_eq!(t.mark_done(&tp(p), o), want);
            }
            _ => {
                let commits = if arg & 1 == 0 {
                    t.to_commit()
                } else {
                    vec![(tp(p), o)]
                };
                for (part, c) in commits {
                    t.committed(&part, c);
                    if let Some(x) = m.get_mut(&part.partition) {
                        x.last = Some(c);
                        x.done_since_commit = false;
                    }
                }
            }
        }
        for p in 0..PARTITIONS {
            let part = m.get(&p);
            let point = t.commit_point(&tp(p));
            assert_eq!(point, part.and_then(Part::commit_point));
            assert_eq!(t.pending(&tp(p)), part.map_or(0, Part::pending));
            if let (Some(point), Some(part)) = (point, part) {
                // The invariant: nothing unfinished below the commit point.
                assert!(part.offsets.iter().all(|(o, done)| *done || *o >= point));
                // The model walks offsets one by one: only small ones.
                if part.offsets.keys().next_back().is_some_and(|&h| h < 64) {
                    assert_eq!(t.done_above(&tp(p), point, 3), part.done_above(point, 3));
                    assert_eq!(t.done_above(&tp(p), -1, 2), part.done_above(-1, 2));
                }
            }
        }
        let want: Vec<(TopicPartition, i64)> = m
            .iter()
            .filter_map(|(p, part)| part.to_commit().map(|o| (tp(*p), o)))
            .collect();
        assert_eq!(t.to_commit(), want);
    }
});
