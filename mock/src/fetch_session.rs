//! Fetch sessions (KIP-227), kept per broker as the broker's
//! `FetchSessionCache` does (kafka/server/FetchSession.scala).
//!
//! A fetch names a session id and epoch:
//! - epoch 0 (INITIAL_EPOCH): a full fetch that asks for a new session;
//!   a session named by a non-zero id is closed first;
//! - epoch -1 (FINAL_EPOCH): a full fetch without a session; a session
//!   named by a non-zero id is closed;
//! - any other epoch: an incremental fetch in session `id`. An unknown id
//!   is FETCH_SESSION_ID_NOT_FOUND, an epoch other than the session's
//!   INVALID_FETCH_SESSION_EPOCH, a session opened with topic ids (v13+)
//!   used without them or the other way round FETCH_SESSION_TOPIC_ID_ERROR
//!   (`FetchManager.newContext`). These are answered at once with no
//!   partition and session id 0 (`SessionErrorContext`).
//!
//! A new session has epoch 1 and caches every partition of the full fetch
//! with the answer's high watermark and log start offset. An incremental
//! fetch adds or updates the partitions it names, drops the forgotten
//! ones, fetches every cached partition, and answers only those with
//! records, a changed high watermark or log start offset, or an error
//! (`CachedPartition.maybeUpdateResponseData`); a partition that returned
//! records moves to the end of the session's order, so the others go first
//! next time. A session left with no partition is closed and the fetch
//! answered without one (session id 0).
//!
//! The cache holds at most [`CACHE_SLOTS`] sessions
//! (`max.incremental.fetch.session.cache.slots`). When it is full a new
//! session evicts the least recently used one if that was unused for
//! [`EVICTION`] (`min.incremental.fetch.session.eviction.ms`), else the
//! smallest session older than that if the new one has more partitions
//! (`FetchSessionCacheShard.tryEvict`); failing both, the full fetch is
//! answered with session id 0 (INVALID_SESSION_ID): no session.
//!
//! Differences: session ids come from a counter (the broker draws them at
//! random) so that runs repeat; every fetch is a consumer's (the mock has
//! no followers, whose sessions a broker privileges).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::fetch_response::PartitionData;
use skotch_protocol::Uuid;
use tokio::time::Instant;

/// `max.incremental.fetch.session.cache.slots` (broker default 1000).
pub(crate) const CACHE_SLOTS: usize = 1000;

/// `min.incremental.fetch.session.eviction.ms` (broker default 120 000).
pub(crate) const EVICTION: Duration = Duration::from_millis(120_000);

/// FetchMetadata.INITIAL_EPOCH: a full fetch that opens a session.
const INITIAL_EPOCH: i32 = 0;
/// FetchMetadata.FINAL_EPOCH: a full fetch without a session.
const FINAL_EPOCH: i32 = -1;

/// The epoch after `epoch`: 1, 2, ... `i32::MAX`, 1 again; -1 stays -1
/// (`FetchMetadata.nextEpoch`).
pub(crate) fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// A partition as a fetch names it: by topic id (v13+, `topic` empty) or
/// by name (`topic_id` zero), as `CachedPartition.equals` compares them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PartitionKey {
    pub topic_id: Uuid,
    /// Shared by the partitions of one topic entry of a request.
    pub topic: Arc<str>,
    pub partition: i32,
}

/// What a fetch asks of one partition; a session caches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchParams {
    pub fetch_offset: i64,
    pub current_leader_epoch: i32,
    pub max_bytes: i32,
}

/// A partition of a session: the request's parameters and what the last
/// answer told the client.
#[derive(Debug, Clone)]
struct CachedPartition {
    params: FetchParams,
    /// -1 until answered, and after an error, so that the next answer
    /// includes the partition.
    high_watermark: i64,
    log_start_offset: i64,
    /// Position in the session's fetch order.
    order: u64,
}

impl CachedPartition {
    fn new(params: FetchParams, order: u64) -> CachedPartition {
        CachedPartition {
            params,
            high_watermark: -1,
            log_start_offset: -1,
            order,
        }
    }

    /// Whether an incremental answer must include this partition, updating
    /// what the client was told (`CachedPartition.maybeUpdateResponseData`).
    fn must_respond(&mut self, data: &PartitionData) -> bool {
        let mut must = data.records.as_ref().is_some_and(|r| !r.is_empty());
        if self.high_watermark != data.high_watermark {
            must = true;
            self.high_watermark = data.high_watermark;
        }
        if self.log_start_offset != data.log_start_offset {
            must = true;
            self.log_start_offset = data.log_start_offset;
        }
        if data.error_code != 0 {
            // Re-sent once the error is gone.
            self.high_watermark = -1;
            must = true;
        }
        must
    }
}

/// One session.
#[derive(Debug)]
struct Session {
    /// The epoch the next incremental fetch must carry.
    epoch: i32,
    uses_topic_ids: bool,
    partitions: HashMap<PartitionKey, CachedPartition>,
    next_order: u64,
    created: Instant,
    last_used: Instant,
}

impl Session {
    /// The partitions in fetch order.
    fn ordered(&self) -> Vec<(PartitionKey, FetchParams)> {
        let mut all: Vec<(&PartitionKey, &CachedPartition)> = self.partitions.iter().collect();
        all.sort_by_key(|(_, c)| c.order);
        all.into_iter()
            .map(|(k, c)| (k.clone(), c.params))
            .collect()
    }
}

/// How a fetch is served (`FetchContext` and its kinds).
#[derive(Debug)]
pub(crate) enum Context {
    /// A session error: answered at once, no partition, session id 0.
    Error(ErrorCode),
    /// The request's partitions, no session.
    Sessionless,
    /// The request's partitions; a session is opened with the answer.
    Full,
    /// The session's partitions (updated by this request).
    Incremental {
        id: i32,
        /// The session's epoch once this fetch is answered.
        epoch: i32,
        partitions: Vec<(PartitionKey, FetchParams)>,
    },
}

/// One broker's sessions.
#[derive(Debug, Default)]
pub(crate) struct FetchSessions {
    sessions: HashMap<i32, Session>,
    /// The last session id handed out.
    last_id: i32,
}

impl FetchSessions {
    /// Decide how to serve a fetch naming `id` and `epoch`, with the
    /// request's partitions and forgotten partitions
    /// (`FetchManager.newContext`). An incremental fetch updates its
    /// session here, before any data is read, as the broker does.
    pub fn context(
        &mut self,
        id: i32,
        epoch: i32,
        uses_topic_ids: bool,
        requested: &[(PartitionKey, FetchParams)],
        forgotten: &[PartitionKey],
        now: Instant,
    ) -> Context {
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // Any session a full fetch names is closed.
            if id != 0 {
                self.sessions.remove(&id);
            }
            return if epoch == FINAL_EPOCH {
                Context::Sessionless
            } else {
                Context::Full
            };
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return Context::Error(ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
        };
        if session.epoch != epoch {
            return Context::Error(ErrorCode::INVALID_FETCH_SESSION_EPOCH);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Context::Error(ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR);
        }
        // FetchSession.update: add or update, then forget.
        for (key, params) in requested {
            match session.partitions.get_mut(key) {
                Some(cached) => cached.params = *params,
                None => {
                    let order = session.next_order;
                    session.next_order += 1;
                    session
                        .partitions
                        .insert(key.clone(), CachedPartition::new(*params, order));
                }
            }
        }
        for key in forgotten {
            session.partitions.remove(key);
        }
        if session.partitions.is_empty() {
            // Nothing left: the session closes, the fetch goes on without.
            self.sessions.remove(&id);
            return Context::Sessionless;
        }
        session.last_used = now;
        session.epoch = next_epoch(session.epoch);
        Context::Incremental {
            id,
            epoch: session.epoch,
            partitions: session.ordered(),
        }
    }

    /// Open a session for a full fetch whose answer is `answered`
    /// (`FetchSessionCacheShard.maybeCreateSession`): its id, or 0 when
    /// the cache is full and nothing can be evicted.
    pub fn create(
        &mut self,
        uses_topic_ids: bool,
        requested: &[(PartitionKey, FetchParams)],
        answered: &[(PartitionKey, PartitionData)],
        now: Instant,
    ) -> i32 {
        if self.sessions.len() >= CACHE_SLOTS && !self.try_evict(requested.len(), now) {
            return 0;
        }
        let mut partitions = HashMap::with_capacity(requested.len());
        for (order, ((key, params), (_, data))) in requested.iter().zip(answered).enumerate() {
            let mut cached = CachedPartition::new(*params, order as u64);
            cached.high_watermark = data.high_watermark;
            cached.log_start_offset = data.log_start_offset;
            partitions.insert(key.clone(), cached);
        }
        let id = self.new_id();
        self.sessions.insert(
            id,
            Session {
                epoch: next_epoch(INITIAL_EPOCH),
                uses_topic_ids,
                next_order: partitions.len() as u64,
                partitions,
                created: now,
                last_used: now,
            },
        );
        id
    }

    /// Keep from `answered` only what an incremental answer must carry,
    /// updating the session; `Err` when the session's epoch moved on since
    /// this fetch began (another fetch with the same epoch, answered
    /// INVALID_FETCH_SESSION_EPOCH; `IncrementalFetchContext`). A session
    /// evicted meanwhile keeps everything.
    pub fn finish_incremental(
        &mut self,
        id: i32,
        epoch: i32,
        answered: &mut Vec<(PartitionKey, PartitionData)>,
    ) -> Result<(), ErrorCode> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Ok(());
        };
        if session.epoch != epoch {
            return Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH);
        }
        let mut next_order = session.next_order;
        answered.retain(|(key, data)| {
            let Some(cached) = session.partitions.get_mut(key) else {
                return true;
            };
            let must = cached.must_respond(data);
            if must && data.records.as_ref().is_some_and(|r| !r.is_empty()) {
                // Partitions that returned data go last next time.
                cached.order = next_order;
                next_order += 1;
            }
            must
        });
        session.next_order = next_order;
        Ok(())
    }

    /// Forget every session (the broker restarted): for the cluster's
    /// broker down/up.
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    /// Forget one session (an injected FETCH_SESSION_ID_NOT_FOUND, as if
    /// the cache had evicted it).
    pub fn remove(&mut self, id: i32) {
        self.sessions.remove(&id);
    }

    /// How many sessions are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// A positive id not in use (the broker draws one at random).
    fn new_id(&mut self) -> i32 {
        loop {
            self.last_id = if self.last_id == i32::MAX {
                1
            } else {
                self.last_id + 1
            };
            if !self.sessions.contains_key(&self.last_id) {
                return self.last_id;
            }
        }
    }

    /// Make room for a session of `size` partitions
    /// (`FetchSessionCacheShard.tryEvict`, for unprivileged sessions).
    fn try_evict(&mut self, size: usize, now: Instant) -> bool {
        let stale = self
            .sessions
            .iter()
            .min_by_key(|(id, s)| (s.last_used, **id))
            .filter(|(_, s)| now.duration_since(s.last_used) > EVICTION)
            .map(|(id, _)| *id);
        if let Some(id) = stale {
            self.sessions.remove(&id);
            return true;
        }
        // Sessions older than the eviction time may give way to a bigger
        // one: the smallest goes if the newcomer is larger.
        let smallest = self
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.created) > EVICTION)
            .min_by_key(|(id, s)| (s.partitions.len(), **id))
            .map(|(id, s)| (*id, s.partitions.len()));
        match smallest {
            Some((id, n)) if size > n => {
                self.sessions.remove(&id);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        PartitionKey {
            topic_id: Uuid::ZERO,
            topic: "t".into(),
            partition: p,
        }
    }

    fn params(offset: i64) -> FetchParams {
        FetchParams {
            fetch_offset: offset,
            current_leader_epoch: -1,
            max_bytes: 1024,
        }
    }

    fn data(hw: i64) -> PartitionData {
        PartitionData {
            high_watermark: hw,
            log_start_offset: 0,
            records: Some(bytes::Bytes::new()),
            ..Default::default()
        }
    }

    fn open(s: &mut FetchSessions, n: i32, now: Instant) -> i32 {
        let req: Vec<_> = (0..n).map(|p| (key(p), params(0))).collect();
        let ans: Vec<_> = (0..n).map(|p| (key(p), data(0))).collect();
        assert!(matches!(
            s.context(0, 0, false, &req, &[], now),
            Context::Full
        ));
        s.create(false, &req, &ans, now)
    }

    #[test]
    fn epochs_ids_and_closing() {
        let now = Instant::now();
        let mut s = FetchSessions::default();
        let id = open(&mut s, 2, now);
        assert_eq!(id, 1);
        assert!(matches!(
            s.context(id, 2, false, &[], &[], now),
            Context::Error(ErrorCode::INVALID_FETCH_SESSION_EPOCH)
        ));
        assert!(matches!(
            s.context(99, 1, false, &[], &[], now),
            Context::Error(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)
        ));
        assert!(matches!(
            s.context(id, 1, true, &[], &[], now),
            Context::Error(ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR)
        ));
        let Context::Incremental {
            epoch, partitions, ..
        } = s.context(id, 1, false, &[], &[], now)
        else {
            panic!("incremental")
        };
        assert_eq!((epoch, partitions.len()), (2, 2));
        // Forgetting everything closes the session.
        assert!(matches!(
            s.context(id, 2, false, &[], &[key(0), key(1)], now),
            Context::Sessionless
        ));
        assert_eq!(s.len(), 0);
        // Epoch -1 closes, epoch 0 closes and reopens.
        let id = open(&mut s, 1, now);
        assert!(matches!(
            s.context(id, -1, false, &[], &[], now),
            Context::Sessionless
        ));
        assert_eq!(s.len(), 0);
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
    }

    #[test]
    fn incremental_answers_only_changes() {
        let now = Instant::now();
        let mut s = FetchSessions::default();
        let id = open(&mut s, 3, now);
        let Context::Incremental { epoch, .. } = s.context(id, 1, false, &[], &[], now) else {
            panic!("incremental")
        };
        let mut with_records = data(5);
        with_records.records = Some(bytes::Bytes::from_static(b"x"));
        let mut errored = data(-1);
        errored.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();
        let mut answered = vec![(key(0), with_records), (key(1), data(0)), (key(2), errored)];
        s.finish_incremental(id, epoch, &mut answered).unwrap();
        let kept: Vec<i32> = answered.iter().map(|(k, _)| k.partition).collect();
        assert_eq!(kept, [0, 2]);
        // Partition 0 returned data: it goes last.
        let Context::Incremental {
            partitions, epoch, ..
        } = s.context(id, 2, false, &[], &[], now)
        else {
            panic!("incremental")
        };
        let order: Vec<i32> = partitions.iter().map(|(k, _)| k.partition).collect();
        assert_eq!(order, [1, 2, 0]);
        // A stale epoch when answering: another fetch moved it on.
        assert_eq!(
            s.finish_incremental(id, epoch + 1, &mut Vec::new()),
            Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH)
        );
    }

    #[test]
    fn a_full_cache_answers_no_session_until_one_is_stale() {
        let now = Instant::now();
        let mut s = FetchSessions::default();
        for _ in 0..CACHE_SLOTS {
            assert_ne!(open(&mut s, 1, now), 0);
        }
        assert_eq!(open(&mut s, 1, now), 0, "full: no session");
        // Past the eviction time the least recently used one goes.
        let later = now + EVICTION + Duration::from_millis(1);
        assert_ne!(open(&mut s, 1, later), 0);
        assert_eq!(s.len(), CACHE_SLOTS);
    }
}
