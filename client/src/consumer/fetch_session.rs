//! The client side of a fetch session (KIP-227), sans-IO.
//!
//! A full fetch names every partition and asks the broker to open a
//! session (id 0, epoch 0). Once the broker answers with a session id,
//! later fetches are incremental: they carry only the partitions whose
//! fetch parameters changed since the last fetch (new ones included), and
//! name the ones to drop as "forgotten"; the broker keeps fetching the
//! others from the parameters it cached. Each incremental fetch carries the
//! next epoch (1, 2, ... wrapping to 1), so that the broker can tell a
//! fetch it has already answered from a new one.
//!
//! Any error, FETCH_SESSION_ID_NOT_FOUND and INVALID_FETCH_SESSION_EPOCH
//! included, or a lost connection, ends the session: the next fetch is full
//! again (Java's `FetchSessionHandler`). The state changes only when an
//! answer arrives, and one fetch per broker is in flight at a time.
//!
//! Public for conformance testing and fuzzing; the consumer drives it.

use std::collections::BTreeMap;

use skotch_protocol::error::ErrorCode;

use super::TopicPartition;

/// What the fetch of one partition asks for; a change means the partition
/// must be sent in the next incremental fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionFetch {
    /// The next offset wanted.
    pub fetch_offset: i64,
    /// The leader epoch from our metadata (KIP-320), or -1.
    pub current_leader_epoch: i32,
    /// `max.partition.fetch.bytes`.
    pub max_bytes: i32,
}

/// The session id and epoch of a full fetch that opens a session.
const NEW_SESSION: (i32, i32) = (0, 0);

/// One fetch, as the session says it must be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan {
    /// `session_id` of the request.
    pub session_id: i32,
    /// `session_epoch` of the request.
    pub session_epoch: i32,
    /// Partitions to name in the request, with what to fetch.
    pub to_send: Vec<(TopicPartition, PartitionFetch)>,
    /// Partitions to drop from the session (`forgotten_topics_data`).
    pub forgotten: Vec<TopicPartition>,
    /// Whether this is a full fetch (every wanted partition is named).
    pub full: bool,
}

/// A session with one broker.
#[derive(Debug, Default)]
pub struct FetchSession {
    /// 0 when there is no session.
    id: i32,
    /// The epoch the next incremental fetch carries.
    epoch: i32,
    /// What the broker holds for each partition of the session.
    partitions: BTreeMap<TopicPartition, PartitionFetch>,
    /// The partitions of the fetch in flight, applied when it succeeds.
    pending: Option<BTreeMap<TopicPartition, PartitionFetch>>,
}

impl FetchSession {
    /// The session id (0: none).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The request that fetches exactly `wanted` (every partition to be
    /// fetched from this broker now).
    pub fn plan(&mut self, wanted: BTreeMap<TopicPartition, PartitionFetch>) -> FetchPlan {
        let plan = if self.id == 0 {
            FetchPlan {
                session_id: NEW_SESSION.0,
                session_epoch: NEW_SESSION.1,
                to_send: wanted.iter().map(|(tp, f)| (tp.clone(), *f)).collect(),
                forgotten: Vec::new(),
                full: true,
            }
        } else {
            FetchPlan {
                session_id: self.id,
                session_epoch: self.epoch,
                to_send: wanted
                    .iter()
                    .filter(|(tp, f)| self.partitions.get(*tp) != Some(*f))
                    .map(|(tp, f)| (tp.clone(), *f))
                    .collect(),
                forgotten: self
                    .partitions
                    .keys()
                    .filter(|tp| !wanted.contains_key(*tp))
                    .cloned()
                    .collect(),
                full: false,
            }
        };
        self.pending = Some(wanted);
        plan
    }

    /// The broker answered the planned fetch with top-level `error` and
    /// `session_id`. Returns true when the answer's partitions can be used
    /// (no top-level error).
    pub fn on_response(&mut self, error: ErrorCode, session_id: i32) -> bool {
        let pending = self.pending.take();
        if !error.is_ok() {
            // FETCH_SESSION_ID_NOT_FOUND (the broker evicted the session),
            // INVALID_FETCH_SESSION_EPOCH (it saw another epoch), or any
            // other error: start over with a full fetch.
            self.reset();
            return false;
        }
        let Some(pending) = pending else {
            self.reset();
            return true;
        };
        if self.id == 0 {
            // Our full fetch asked for a session; 0 means the broker keeps
            // none (its cache is full, or it is too old): stay sessionless.
            if session_id != 0 {
                self.id = session_id;
                self.epoch = 1;
                self.partitions = pending;
            }
        } else if session_id != self.id {
            // Not the session we named: trust nothing cached.
            self.reset();
        } else {
            self.epoch = next_epoch(self.epoch);
            self.partitions = pending;
        }
        true
    }

    /// Forget the session (an error, a lost connection, a new assignment):
    /// the next fetch is full.
    pub fn reset(&mut self) {
        self.id = 0;
        self.epoch = 0;
        self.partitions.clear();
        self.pending = None;
    }
}

/// Epochs go 1, 2, ... `i32::MAX`, then 1 again (0 opens a session and -1
/// closes it).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn at(offset: i64) -> PartitionFetch {
        PartitionFetch {
            fetch_offset: offset,
            current_leader_epoch: 3,
            max_bytes: 1024,
        }
    }

    fn wanted(parts: &[(i32, i64)]) -> BTreeMap<TopicPartition, PartitionFetch> {
        parts.iter().map(|&(p, o)| (tp(p), at(o))).collect()
    }

    #[test]
    fn full_then_incremental_carries_only_changes() {
        let mut s = FetchSession::default();
        let p = s.plan(wanted(&[(0, 10), (1, 20), (2, 30)]));
        assert!(p.full);
        assert_eq!((p.session_id, p.session_epoch), (0, 0));
        assert_eq!(p.to_send.len(), 3);
        assert!(s.on_response(ErrorCode::NONE, 77));
        assert_eq!(s.id(), 77);

        // Partition 0 advanced, 1 unchanged, 2 no longer wanted, 3 new.
        let p = s.plan(wanted(&[(0, 15), (1, 20), (3, 0)]));
        assert!(!p.full);
        assert_eq!((p.session_id, p.session_epoch), (77, 1));
        let sent: Vec<i32> = p.to_send.iter().map(|(t, _)| t.partition).collect();
        assert_eq!(sent, vec![0, 3]);
        assert_eq!(p.forgotten, vec![tp(2)]);
        assert!(s.on_response(ErrorCode::NONE, 77));

        // Nothing changed: an empty incremental fetch at the next epoch.
        let p = s.plan(wanted(&[(0, 15), (1, 20), (3, 0)]));
        assert_eq!(p.session_epoch, 2);
        assert!(p.to_send.is_empty() && p.forgotten.is_empty());
    }

    #[test]
    fn session_errors_fall_back_to_a_full_fetch() {
        for code in [
            ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
            ErrorCode::INVALID_FETCH_SESSION_EPOCH,
            ErrorCode::UNKNOWN_SERVER_ERROR,
        ] {
            let mut s = FetchSession::default();
            s.plan(wanted(&[(0, 1)]));
            s.on_response(ErrorCode::NONE, 5);
            s.plan(wanted(&[(0, 2)]));
            assert!(!s.on_response(code, 0));
            let p = s.plan(wanted(&[(0, 2), (1, 0)]));
            assert!(p.full, "{code:?}");
            assert_eq!((p.session_id, p.session_epoch), (0, 0));
            assert_eq!(p.to_send.len(), 2);
        }
    }

    #[test]
    fn a_broker_without_sessions_gets_full_fetches() {
        let mut s = FetchSession::default();
        s.plan(wanted(&[(0, 1)]));
        assert!(s.on_response(ErrorCode::NONE, 0));
        let p = s.plan(wanted(&[(0, 1)]));
        assert!(p.full);
        assert_eq!(p.to_send.len(), 1);
    }

    #[test]
    fn a_reset_or_foreign_session_id_starts_over() {
        let mut s = FetchSession::default();
        s.plan(wanted(&[(0, 1)]));
        s.on_response(ErrorCode::NONE, 5);
        s.plan(wanted(&[(0, 1)]));
        s.on_response(ErrorCode::NONE, 6);
        assert!(s.plan(wanted(&[(0, 1)])).full);
        s.on_response(ErrorCode::NONE, 9);
        s.reset();
        assert!(s.plan(wanted(&[(0, 1)])).full);
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(1), 2);
        assert_eq!(next_epoch(i32::MAX), 1);
    }

    #[test]
    fn a_leader_epoch_change_resends_the_partition() {
        let mut s = FetchSession::default();
        s.plan(wanted(&[(0, 1)]));
        s.on_response(ErrorCode::NONE, 5);
        let mut w = wanted(&[(0, 1)]);
        w.get_mut(&tp(0)).unwrap().current_leader_epoch = 4;
        let p = s.plan(w);
        assert_eq!(p.to_send.len(), 1);
    }
}
