//! State shared by a group consumer, its heartbeat task and its handles:
//! the member state machine, the coordinator's node id, the offset tracker,
//! and the requests every part may send to the coordinator (OffsetCommit,
//! OffsetFetch).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use skotch_protocol::messages::{OffsetCommitRequest, OffsetFetchRequest};
use tokio::sync::Notify;

use super::classic::ClassicMember;
use super::commit_metadata;
use super::kip848::ConsumerMember;
use super::offset_fetch::{self, TopicRef};
use super::tracker::OffsetTracker;
use crate::client::{Client, ConnKind};
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// OffsetCommit v10 and OffsetFetch v10 name topics by id only; v9 carries
/// both names and the KIP-848 member epoch, which is all we need.
const MAX_OFFSET_API_VERSION: i16 = 9;

/// The member, under one of the two protocols.
#[derive(Debug)]
pub(crate) enum Member {
    Classic(ClassicMember),
    Consumer(ConsumerMember),
}

impl Member {
    /// (generation or member epoch, member id, group instance id) for
    /// OffsetCommit.
    fn commit_identity(&self) -> (i32, String, Option<String>) {
        match self {
            Member::Classic(m) => {
                let (g, id) = m.commit_identity();
                (g, id, m.group_instance_id().map(String::from))
            }
            Member::Consumer(m) => {
                let (e, id) = m.commit_identity();
                (e, id, m.group_instance_id().map(String::from))
            }
        }
    }
}

/// Mutable group state behind one lock (never held across an await).
#[derive(Debug)]
pub(crate) struct State {
    pub member: Member,
    /// The coordinator's node id, once found.
    pub coordinator: Option<i32>,
    /// When the application last called poll (for `max.poll.interval.ms`).
    pub last_poll: Instant,
    /// `max.poll.interval.ms` passed and the member left; cleared by poll.
    pub poll_expired: bool,
    /// A fatal error met by the heartbeat task, reported by the next poll.
    pub fatal: Option<Error>,
    /// The consumer is closing: the heartbeat task stops.
    pub closing: bool,
    /// Errors that did not stop anything but must reach the application
    /// (a failed commit before a revocation, in a listener): the next
    /// poll returns them in [`Poll::errors`](crate::consumer::Poll::errors).
    pub reported: Vec<Error>,
}

/// Everything a group consumer shares with its heartbeat task and handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub client: Client,
    pub group_id: String,
    pub state: Mutex<State>,
    pub tracker: Mutex<OffsetTracker>,
    /// Wakes the heartbeat task (state changed, heartbeat wanted now).
    pub wake: Notify,
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        lock(&self.tracker)
    }

    /// The coordinator's node id, looked up when unknown.
    pub async fn coordinator(&self) -> Result<i32> {
        if let Some(c) = self.state().coordinator {
            return Ok(c);
        }
        let node = self.client.find_coordinator(&self.group_id).await?;
        tracing::debug!(group = %self.group_id, node, "found the group coordinator");
        self.state().coordinator = Some(node);
        Ok(node)
    }

    /// Keep `e` for the next poll's [`Poll::errors`](crate::consumer::Poll::errors).
    pub fn report(&self, e: Error) {
        self.state().reported.push(e);
    }

    /// Forget the coordinator (it moved, or its connection failed).
    pub fn coordinator_lost(&self) {
        self.state().coordinator = None;
    }

    /// Classify a failed coordinator request: connection trouble and
    /// NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE mean the coordinator must
    /// be looked up again.
    pub fn note_error(&self, e: &Error) {
        let moved = match e {
            Error::Broker { code, .. } => {
                *code == ErrorCode::NOT_COORDINATOR || *code == ErrorCode::COORDINATOR_NOT_AVAILABLE
            }
            // A request the coordinator left unanswered until its timeout:
            // it may be frozen or gone; ask again (Java marks the
            // coordinator unknown on a timeout too).
            e => e.is_connection() || e.is_timeout(),
        };
        if moved {
            self.coordinator_lost();
        }
    }

    /// Commit `offsets` (the next offset to read, per partition) for the
    /// current generation. Partitions this member no longer owns are
    /// dropped with a log line, not sent. Retries coordinator moves and
    /// retriable errors for up to `request.timeout.ms`.
    pub async fn commit(&self, offsets: Vec<(TopicPartition, i64)>) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = {
            let tracker = self.tracker();
            offsets
                .into_iter()
                .filter(|(tp, o)| {
                    let owned = tracker.is_tracked(tp);
                    if !owned {
                        tracing::info!(group = %self.group_id, partition = %tp, offset = o,
                            "not committing: partition no longer assigned to this member");
                    }
                    owned
                })
                .collect()
        };
        if offsets.is_empty() {
            return Ok(());
        }
        // A retry must not commit under a newer classic generation than the
        // one the offsets were owned in: after a rebalance the partitions
        // may belong to another member, and the broker would accept the
        // old offsets from us, moving the group's commit backwards. With
        // the generation pinned, the broker refuses the stale commit
        // (ILLEGAL_GENERATION). A KIP-848 member epoch also moves while
        // partitions stay owned, so that one is read afresh; ownership is
        // checked again before every attempt either way.
        let pinned = {
            let st = self.state();
            match &st.member {
                Member::Classic(_) => Some(st.member.commit_identity()),
                Member::Consumer(_) => None,
            }
        };
        let timeout = self.client.config().request_timeout;
        self.client
            .retry(timeout, || async {
                let owned: Vec<(TopicPartition, i64)> = {
                    let tracker = self.tracker();
                    offsets
                        .iter()
                        .filter(|(tp, _)| tracker.is_tracked(tp))
                        .cloned()
                        .collect()
                };
                if owned.is_empty() {
                    return Ok(());
                }
                let r = self.commit_once(&owned, pinned.clone()).await;
                if let Err(e) = &r {
                    self.note_error(e);
                }
                r
            })
            .await
    }

    async fn commit_once(
        &self,
        offsets: &[(TopicPartition, i64)],
        pinned: Option<(i32, String, Option<String>)>,
    ) -> Result<()> {
        let (generation, member_id, instance) =
            pinned.unwrap_or_else(|| self.state().member.commit_identity());
        if generation < 0 || (generation == 0 && matches!(self.state().member, Member::Consumer(_)))
        {
            // The member left or was fenced (max.poll.interval.ms, a lost
            // session) and has not rejoined: its partitions may belong to
            // another member now. The broker would take a generation -1
            // commit into an empty group, so refuse here (Java's
            // CommitFailedException).
            return Err(Error::Broker {
                code: ErrorCode::UNKNOWN_MEMBER_ID,
                message: Some(
                    "the member is not in the group (it left or was fenced); its partitions may belong to another member now".into(),
                ),
                context: format!("commit offsets for group {:?}", self.group_id),
            });
        }
        let node = self.coordinator().await?;
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, o) in offsets {
            // Records done beyond the commit point, for the next owner to
            // skip (see commit_metadata).
            let done = self
                .tracker()
                .done_above(tp, *o, commit_metadata::MAX_RANGES);
            topics
                .entry(tp.topic.as_str())
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: tp.partition,
                    committed_offset: *o,
                    committed_leader_epoch: -1,
                    committed_metadata: Some(commit_metadata::encode(*o, &done)),
                });
        }
        let req = OffsetCommitRequest {
            group_id: self.group_id.clone(),
            generation_id_or_member_epoch: generation,
            member_id,
            group_instance_id: instance,
            retention_time_ms: -1,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_string(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
        };
        let conn = self.client.connection(node, ConnKind::Group).await?;
        let version = conn
            .version::<OffsetCommitRequest>()?
            .min(MAX_OFFSET_API_VERSION);
        tracing::debug!(group = %self.group_id, node, generation, offsets = ?offsets,
            "committing offsets");
        let resp = conn
            .send_version(&req, version, self.client.config().request_timeout)
            .await
            .inspect_err(|e| {
                tracing::debug!(group = %self.group_id, node, generation, error = %e,
                    "offset commit failed");
            })?;
        let mut first_err = None;
        for t in resp.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.clone(), p.partition_index);
                let code = ErrorCode(p.error_code);
                if code.is_ok() {
                    if let Some((_, o)) = offsets.iter().find(|(x, _)| *x == tp) {
                        self.tracker().committed(&tp, *o);
                    }
                    continue;
                }
                if matches!(
                    code,
                    ErrorCode::ILLEGAL_GENERATION
                        | ErrorCode::UNKNOWN_MEMBER_ID
                        | ErrorCode::REBALANCE_IN_PROGRESS
                ) {
                    if let Member::Classic(m) = &mut self.state().member {
                        m.on_commit_fenced(generation, code);
                    }
                }
                first_err.get_or_insert(Error::Broker {
                    code,
                    message: None,
                    context: format!("commit offset of {tp} for group {:?}", self.group_id),
                });
            }
        }
        match first_err {
            None => {
                tracing::debug!(group = %self.group_id, node, generation, "offsets committed");
                Ok(())
            }
            Some(e) => Err(e),
        }
    }

    /// The committed offsets of `partitions` with their metadata (absent:
    /// none committed). Retries like [`Shared::commit`].
    pub async fn committed(
        &self,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, (i64, String)>> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let timeout = self.client.config().request_timeout;
        self.client
            .retry(timeout, || async {
                let r = self.committed_once(partitions).await;
                if let Err(e) = &r {
                    self.note_error(e);
                }
                r
            })
            .await
    }

    async fn committed_once(
        &self,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, (i64, String)>> {
        let node = self.coordinator().await?;
        let conn = self.client.connection(node, ConnKind::Group).await?;
        let version = conn
            .version::<OffsetFetchRequest>()?
            .min(MAX_OFFSET_API_VERSION);
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        // KIP-447: wait for pending transactional commits.
        let req = offset_fetch::request(&self.group_id, version, Some(&by_topic), true);
        let resp = conn
            .send_version(&req, version, self.client.config().request_timeout)
            .await?;
        let mut out = BTreeMap::new();
        for e in offset_fetch::entries(resp, version, &self.group_id)? {
            // Versions up to 9 name topics; v10 (by id) is not used here.
            let TopicRef::Name(topic) = e.topic else {
                continue;
            };
            Error::check(e.error_code, None, || {
                format!(
                    "fetch the committed offset of {topic}-{} in group {:?}",
                    e.partition, self.group_id
                )
            })?;
            if e.offset >= 0 {
                out.insert(
                    TopicPartition::new(topic, e.partition),
                    (e.offset, e.metadata.unwrap_or_default()),
                );
            }
        }
        Ok(out)
    }
}
