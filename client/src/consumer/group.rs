//! [`GroupConsumer`]: a consumer that subscribes to topics as a member of a
//! consumer group. The group divides the partitions among its members; the
//! member commits how far it got so that the next owner of a partition
//! continues from there.
//!
//! Rebalances run inside [`GroupConsumer::poll`], where the rebalance
//! listeners are called, as in the Java client; a background task sends the
//! heartbeats. Both group protocols are supported: the classic one
//! (JoinGroup/SyncGroup with client-side assignors, the default) and the
//! KIP-848 one (`group.protocol=consumer`, broker-side assignment).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use skotch_protocol::messages::{JoinGroupResponse, Request, SyncGroupResponse};
use tokio::task::JoinHandle;

use super::{Consumer, ConsumerConfig, Offset, Poll, TopicPartition};
use crate::client::{Client, ConnKind};
use crate::error::{Error, Result};
use crate::group::assignor::{self, Assignor};
use crate::group::classic::{ClassicMember, ClassicSettings, JoinOutcome, SyncOutcome};
use crate::group::commit_metadata;
use crate::group::coordinator::{Member, Shared, State};
use crate::group::handle::GroupHandle;
use crate::group::heartbeat;
use crate::group::kip848::{ConsumerMember, ConsumerSettings, Reconcile};
use crate::group::listener::RebalanceListener;
use crate::group::tracker::{MarkDone, OffsetTracker};

/// `group.protocol`: which rebalance protocol the member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// JoinGroup / SyncGroup / Heartbeat with a client-side assignor (the
    /// default, as in the Java client).
    #[default]
    Classic,
    /// KIP-848's ConsumerGroupHeartbeat with broker-side assignment
    /// (Kafka 4.0+ brokers).
    Consumer,
}

impl std::str::FromStr for GroupProtocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "classic" => Ok(Self::Classic),
            "consumer" => Ok(Self::Consumer),
            _ => Err(Error::Config(format!(
                "group.protocol {s:?}: expected classic or consumer"
            ))),
        }
    }
}

/// Group membership settings; defaults are the Java consumer's.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.id`: the group to join. Required, not empty.
    pub group_id: String,
    /// `group.instance.id`: makes the member static (KIP-345): it keeps its
    /// partitions across restarts shorter than the session timeout and does
    /// not leave the group on close. Default none.
    pub group_instance_id: Option<String>,
    /// `group.protocol`. Default [`GroupProtocol::Classic`].
    pub group_protocol: GroupProtocol,
    /// `session.timeout.ms` (classic): how long the coordinator waits for a
    /// heartbeat before removing the member. Default 45 000 ms. Under the
    /// KIP-848 protocol the broker's `group.consumer.session.timeout.ms`
    /// applies instead.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (classic): time between heartbeats. Default
    /// 3 000 ms. Under KIP-848 the broker sets the interval.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest time between polls before the
    /// member leaves the group; also the rebalance timeout. Default
    /// 300 000 ms.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy` (classic): the assignors offered,
    /// in order of preference; the group picks one all members support.
    /// Default `[range, cooperative-sticky]`, as Java's.
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// `group.remote.assignor` (KIP-848): the broker-side assignor
    /// ("uniform", "range"); default none, the broker's choice.
    pub remote_assignor: Option<String>,
    /// `enable.auto.commit`: records count as done once `poll` returns
    /// them, and their offsets are committed every `auto.commit.interval.ms`,
    /// before partitions are revoked, and on close. With `false` nothing is
    /// committed unless asked: mark records done with
    /// [`GroupConsumer::mark_done`] and commit with
    /// [`GroupHandle::commit_done`] (or add a
    /// [`ManualCommitListener`](crate::group::listener::ManualCommitListener)).
    /// Default true.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`. Default 5 000 ms.
    pub auto_commit_interval: Duration,
    /// `client.rack`. Default none.
    pub client_rack: Option<String>,
}

impl GroupConfig {
    /// Java's defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            group_instance_id: None,
            group_protocol: GroupProtocol::Classic,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            assignors: default_assignors(),
            remote_assignor: None,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            client_rack: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.group_id.is_empty() {
            return bad("group.id must not be empty".into());
        }
        if self.heartbeat_interval >= self.session_timeout {
            return bad(format!(
                "heartbeat.interval.ms ({} ms) must be lower than session.timeout.ms ({} ms)",
                self.heartbeat_interval.as_millis(),
                self.session_timeout.as_millis()
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return bad("heartbeat.interval.ms must be positive".into());
        }
        if self.group_instance_id.as_deref() == Some("") {
            return bad("group.instance.id must not be empty when set".into());
        }
        if self.group_protocol == GroupProtocol::Classic && self.assignors.is_empty() {
            return bad("partition.assignment.strategy: at least one assignor is needed".into());
        }
        Ok(())
    }
}

fn default_assignors() -> Vec<Arc<dyn Assignor>> {
    assignor::default_assignors()
        .into_iter()
        .map(Arc::from)
        .collect()
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// A member of a consumer group reading the partitions assigned to it.
pub struct GroupConsumer {
    consumer: Consumer,
    shared: Arc<Shared>,
    handle: GroupHandle,
    listeners: Vec<Box<dyn RebalanceListener>>,
    heartbeat: JoinHandle<()>,
    config: GroupConfig,
    auto_offset_reset: Option<Offset>,
    last_auto_commit: Instant,
    /// Initial offsets (kstreams): applied when the partition is assigned.
    initial_offsets: BTreeMap<TopicPartition, i64>,
    warned_initial: bool,
    /// Partitions assigned but not yet started (their committed offsets
    /// could not be fetched); retried at the next poll.
    unstarted: BTreeSet<TopicPartition>,
    /// Assigned partitions with no committed offset under
    /// `auto.offset.reset=none`: not fetched until the application seeks
    /// them; every poll reports them.
    needs_seek: BTreeSet<TopicPartition>,
    /// Offsets beyond the committed one that the previous owner already
    /// finished (from the commit metadata): skipped, not handed out.
    already_done: BTreeMap<TopicPartition, Vec<(i64, i64)>>,
    /// The classic JoinGroup or SyncGroup in flight, across polls.
    rebalance: Option<Rebalance>,
    /// When the current rebalance started (for its time limit).
    rebalance_started: Option<Instant>,
    /// No JoinGroup before this (backing off after an error).
    rejoin_at: Option<Instant>,
    join_attempt: u32,
    /// As the classic leader: the subscribed topics and their partition
    /// counts when the last assignment was made.
    leader_counts: Option<(Vec<String>, BTreeMap<String, i32>)>,
    count_refresh: Option<JoinHandle<()>>,
}

/// A classic rebalance request in flight.
enum Rebalance {
    Join(JoinHandle<Result<JoinGroupResponse>>),
    Sync(JoinHandle<Result<SyncGroupResponse>>),
}

/// Send a JoinGroup or SyncGroup to the coordinator, on the connection
/// kept for them (see [`ConnKind::Rebalance`]).
async fn rebalance_request<R: Request>(
    shared: Arc<Shared>,
    req: R,
    timeout: Duration,
) -> Result<R::Response> {
    let node = shared.coordinator().await?;
    let conn = shared.client.connection(node, ConnKind::Rebalance).await?;
    let version = conn.version::<R>()?;
    conn.send_version(&req, version, timeout).await
}

/// A JoinGroup/SyncGroup task that did not finish: aborted (the runtime is
/// shutting down) or panicked (a bug).
fn task_failed(e: &tokio::task::JoinError) -> Error {
    if e.is_cancelled() {
        Error::Closed
    } else {
        Error::Internal(format!("the rebalance request task failed: {e}"))
    }
}

/// The racks of the replicas of every partition of `topics` (KIP-881);
/// brokers without `broker.rack` add none.
fn partition_racks(
    md: &crate::metadata::ClusterMetadata,
    topics: &[String],
) -> crate::group::assignor::PartitionRacks {
    topics
        .iter()
        .filter_map(|t| {
            let info = md.topics.get(t)?;
            let mut per = vec![BTreeSet::new(); info.partitions.len()];
            for p in &info.partitions {
                let Some(slot) = usize::try_from(p.partition)
                    .ok()
                    .and_then(|i| per.get_mut(i))
                else {
                    continue;
                };
                for r in &p.replicas {
                    if let Some(rack) = md.brokers.get(r).and_then(|b| b.rack.clone()) {
                        slot.insert(rack);
                    }
                }
            }
            Some((t.clone(), per))
        })
        .collect()
}

/// Partition counts of `topics` in `md` (topics it lacks left out).
fn partition_counts(
    md: &crate::metadata::ClusterMetadata,
    topics: &[String],
) -> BTreeMap<String, i32> {
    topics
        .iter()
        .filter_map(|t| {
            let info = md.topics.get(t)?;
            Some((t.clone(), i32::try_from(info.partitions.len()).ok()?))
        })
        .collect()
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group_id", &self.config.group_id)
            .field("protocol", &self.config.group_protocol)
            .field("assignment", &self.consumer.assignment())
            .finish()
    }
}

impl GroupConsumer {
    /// Join group `config.group_id` subscribed to `topics`. Joining
    /// happens in the background and in [`GroupConsumer::poll`]; this
    /// returns at once.
    ///
    /// Errors: invalid configuration ([`Error::Config`]).
    pub async fn subscribe(
        client: Client,
        consumer_config: ConsumerConfig,
        config: GroupConfig,
        topics: &[String],
    ) -> Result<Self> {
        config.validate()?;
        if topics.is_empty() {
            return Err(Error::Config("subscribe to at least one topic".into()));
        }
        let topic_set: BTreeSet<String> = topics.iter().cloned().collect();
        let member = match config.group_protocol {
            GroupProtocol::Classic => Member::Classic(ClassicMember::new(
                ClassicSettings {
                    group_id: config.group_id.clone(),
                    group_instance_id: config.group_instance_id.clone(),
                    session_timeout_ms: ms(config.session_timeout),
                    rebalance_timeout_ms: ms(config.max_poll_interval),
                    rack_id: config.client_rack.clone(),
                },
                config.assignors.clone(),
                topic_set,
            )?),
            GroupProtocol::Consumer => Member::Consumer(ConsumerMember::new(
                ConsumerSettings {
                    group_id: config.group_id.clone(),
                    group_instance_id: config.group_instance_id.clone(),
                    rebalance_timeout_ms: ms(config.max_poll_interval),
                    rack_id: config.client_rack.clone(),
                    server_assignor: config.remote_assignor.clone(),
                },
                topic_set,
                new_member_id(),
            )),
        };
        let shared = Arc::new(Shared {
            client: client.clone(),
            group_id: config.group_id.clone(),
            state: std::sync::Mutex::new(State {
                member,
                coordinator: None,
                last_poll: Instant::now(),
                poll_expired: false,
                fatal: None,
                closing: false,
                reported: Vec::new(),
            }),
            tracker: std::sync::Mutex::new(OffsetTracker::default()),
            wake: tokio::sync::Notify::new(),
            heartbeat_interval: config.heartbeat_interval,
            session_timeout: config.session_timeout,
            max_poll_interval: config.max_poll_interval,
        });
        let auto_offset_reset = consumer_config.auto_offset_reset;
        // One `client.rack` for the member: KIP-881 assignment and KIP-392
        // fetching from the closest replica.
        let mut consumer_config = consumer_config;
        if consumer_config.client_rack.is_none() {
            consumer_config.client_rack = config.client_rack.clone();
        }
        let heartbeat = heartbeat::spawn(shared.clone());
        Ok(Self {
            consumer: Consumer::new(client, consumer_config),
            handle: GroupHandle {
                shared: shared.clone(),
            },
            shared,
            listeners: Vec::new(),
            heartbeat,
            config,
            auto_offset_reset,
            last_auto_commit: Instant::now(),
            initial_offsets: BTreeMap::new(),
            warned_initial: false,
            unstarted: BTreeSet::new(),
            needs_seek: BTreeSet::new(),
            already_done: BTreeMap::new(),
            rebalance: None,
            rebalance_started: None,
            rejoin_at: None,
            join_attempt: 0,
            leader_counts: None,
            count_refresh: None,
        })
    }

    /// Add a rebalance listener; listeners run in the order added.
    pub fn add_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listeners.push(Box::new(listener));
    }

    /// Start these partitions at these offsets when they are assigned,
    /// instead of their committed offsets (kstreams' `initial_offsets`).
    /// Each applies once. Partitions that the first assignment does not
    /// include are reported with a warning and otherwise ignored.
    pub fn set_initial_offsets(
        &mut self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) {
        self.initial_offsets.extend(offsets);
        self.warned_initial = false;
    }

    /// A handle for marking records done and committing from other tasks.
    pub fn handle(&self) -> GroupHandle {
        self.handle.clone()
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        self.consumer.client()
    }

    /// The partitions currently assigned to this member.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer.assignment()
    }

    /// The next offset to be handed out for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.consumer.position(tp)
    }

    /// Move an assigned partition to `to`. A partition not assigned is
    /// ignored with a warning (returns false), as kstreams does.
    pub fn seek(&mut self, tp: &TopicPartition, to: Offset) -> bool {
        if self.needs_seek.remove(tp) {
            // Assigned, but its start offset was unknown: this is it.
            self.consumer.assign(tp.clone(), to);
            return true;
        }
        match self.consumer.seek(tp, to) {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!(group = %self.config.group_id, partition = %tp,
                    "seek ignored: partition not assigned to this member");
                false
            }
        }
    }

    /// See [`GroupHandle::mark_done`].
    pub fn mark_done(&self, tp: &TopicPartition, offset: i64) -> MarkDone {
        self.handle.mark_done(tp, offset)
    }

    /// See [`GroupHandle::commit_done`].
    pub async fn commit_done(&self) -> Result<()> {
        self.handle.commit_done().await
    }

    /// True once the member has joined and holds a settled assignment (no
    /// rebalance pending).
    pub fn is_stable(&self) -> bool {
        let st = self.shared.state();
        match &st.member {
            Member::Classic(m) => !m.needs_join(),
            Member::Consumer(m) => {
                let md = self.consumer.client().metadata();
                m.is_settled(|id| md.topic_name(id).map(String::from))
            }
        }
    }

    /// True when the member is stable and every assigned partition has
    /// reached its end (vacuously true with no partitions).
    pub fn at_end(&self) -> bool {
        self.unstarted.is_empty()
            && self.needs_seek.is_empty()
            && self.is_stable()
            && self.consumer.at_end()
    }

    /// Take part in the group (rebalances, listeners, auto commits) and
    /// hand out records of the assigned partitions; waits at most about
    /// `fetch.max.wait.ms` ([`poll_for`](Self::poll_for) with that).
    ///
    /// Errors: fatal group errors (e.g. FENCED_INSTANCE_ID, an
    /// unsupported protocol), a rebalance that could not finish within the
    /// rebalance timeout plus `request.timeout.ms`, fetch errors as
    /// [`Consumer::poll`].
    pub async fn poll(&mut self) -> Result<Poll> {
        let wait = self.consumer.config().fetch_max_wait;
        self.poll_for(wait).await
    }

    /// [`poll`](Self::poll), returning within about `timeout`. A classic
    /// rebalance that takes longer (JoinGroup waits until every member has
    /// rejoined) goes on in the background and is finished by a later
    /// poll, as in Java's `poll(Duration)`: meanwhile records of the
    /// partitions still owned (cooperative rebalancing) are handed out, and
    /// members of one group may even poll in turn from one task.
    pub async fn poll_for(&mut self, timeout: Duration) -> Result<Poll> {
        let deadline = tokio::time::Instant::now() + timeout;
        {
            let mut st = self.shared.state();
            // Sticky: the heartbeat task stopped, so membership is over
            // until the consumer is recreated.
            if let Some(e) = &st.fatal {
                return Err(e.clone());
            }
            st.last_poll = Instant::now();
            st.poll_expired = false;
        }
        match self.config.group_protocol {
            GroupProtocol::Classic => {
                self.classic_rebalance(deadline).await?;
                self.watch_partition_counts();
            }
            GroupProtocol::Consumer => self.reconcile().await?,
        }
        if !self.unstarted.is_empty() {
            let todo: Vec<TopicPartition> =
                std::mem::take(&mut self.unstarted).into_iter().collect();
            self.start_partitions(todo).await?;
        }
        self.no_offset_error()?;
        if self.config.enable_auto_commit
            && self.last_auto_commit.elapsed() >= self.config.auto_commit_interval
        {
            self.last_auto_commit = Instant::now();
            if let Err(e) = self.handle.commit_done().await {
                tracing::warn!(group = %self.config.group_id, error = %e, "auto commit failed; will retry");
                self.shared.report(e);
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut poll = self.consumer.poll_for(left).await?;
        if !poll.records.is_empty() {
            let mut tracker = self.shared.tracker();
            let auto = self.config.enable_auto_commit;
            let already_done = &self.already_done;
            // Records come in runs of one partition: one TopicPartition per
            // run, not per record.
            let mut tp = TopicPartition::new(String::new(), -1);
            poll.records.retain(|r| {
                if tp.partition != r.partition || tp.topic != *r.topic {
                    tp = TopicPartition::new(r.topic.as_ref(), r.partition);
                }
                tracker.handed_out(&tp, r.offset);
                let skip = already_done
                    .get(&tp)
                    .is_some_and(|d| commit_metadata::contains(d, r.offset));
                if auto || skip {
                    tracker.mark_done(&tp, r.offset);
                }
                !skip
            });
        }
        poll.errors.append(&mut self.shared.state().reported);
        Ok(poll)
    }

    /// Drive the classic rebalance until the member is stable or
    /// `deadline` passes; a JoinGroup or SyncGroup still in flight then is
    /// kept for the next poll.
    async fn classic_rebalance(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        loop {
            match self.rebalance.take() {
                None => {
                    let needs_join = match &self.shared.state().member {
                        Member::Classic(m) => m.needs_join(),
                        Member::Consumer(_) => return Ok(()),
                    };
                    if !needs_join {
                        self.rebalance_started = None;
                        return Ok(());
                    }
                    if let Some(at) = self.rejoin_at {
                        let at = tokio::time::Instant::from_std(at);
                        if at > deadline {
                            return Ok(()); // backing off; a later poll joins
                        }
                        tokio::time::sleep_until(at).await;
                        self.rejoin_at = None;
                    }
                    let started = *self.rebalance_started.get_or_insert_with(Instant::now);
                    let limit = self.rebalance_timeout();
                    if started.elapsed() > limit {
                        self.rebalance_started = None;
                        return Err(Error::Timeout {
                            what: format!("joining group {:?}", self.config.group_id),
                            after_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                        });
                    }
                    let prep = match &mut self.shared.state().member {
                        Member::Classic(m) => m.prepare_join(),
                        Member::Consumer(_) => return Ok(()),
                    };
                    self.lose(prep.lost).await;
                    self.revoke(prep.revoke).await;
                    let join = match &mut self.shared.state().member {
                        Member::Classic(m) => m.join_request()?,
                        Member::Consumer(_) => return Ok(()),
                    };
                    tracing::debug!(group = %self.config.group_id, member = %join.member_id, "sending JoinGroup");
                    self.rebalance = Some(Rebalance::Join(tokio::spawn(rebalance_request(
                        self.shared.clone(),
                        join,
                        self.rebalance_timeout(),
                    ))));
                }
                Some(Rebalance::Join(mut h)) => {
                    let Ok(joined) = tokio::time::timeout_at(deadline, &mut h).await else {
                        self.rebalance = Some(Rebalance::Join(h));
                        return Ok(());
                    };
                    let resp = joined.map_err(|e| task_failed(&e)).and_then(|r| r);
                    let outcome = {
                        let mut st = self.shared.state();
                        let Member::Classic(m) = &mut st.member else {
                            return Ok(());
                        };
                        match resp {
                            Ok(r) => m.on_join_response(r)?,
                            Err(e) => {
                                m.join_failed();
                                drop(st);
                                self.rebalance_failed(e)?;
                                continue;
                            }
                        }
                    };
                    let sync = match outcome {
                        JoinOutcome::Rejoin => {
                            self.join_attempt = 0;
                            continue;
                        }
                        JoinOutcome::FindCoordinator => {
                            self.shared.coordinator_lost();
                            self.back_off_rejoin();
                            continue;
                        }
                        JoinOutcome::Backoff(e) => {
                            tracing::debug!(group = %self.config.group_id, error = %e, "join: retriable error");
                            self.back_off_rejoin();
                            continue;
                        }
                        JoinOutcome::Follower(s) => {
                            self.leader_counts = None;
                            s
                        }
                        JoinOutcome::Leader { members, topics } => {
                            let topics: Vec<String> = topics.into_iter().collect();
                            let md = self.client().refresh_metadata(&topics).await?;
                            let counts = partition_counts(&md, &topics);
                            let racks = partition_racks(&md, &topics);
                            let sync = {
                                let st = self.shared.state();
                                let Member::Classic(m) = &st.member else {
                                    return Ok(());
                                };
                                m.leader_sync(&members, &counts, &racks)?
                            };
                            self.leader_counts = Some((topics, counts));
                            sync
                        }
                    };
                    tracing::debug!(group = %self.config.group_id, member = %sync.member_id,
                        generation = sync.generation_id, leader = !sync.assignments.is_empty(), "sending SyncGroup");
                    self.rebalance = Some(Rebalance::Sync(tokio::spawn(rebalance_request(
                        self.shared.clone(),
                        sync,
                        self.rebalance_timeout(),
                    ))));
                }
                Some(Rebalance::Sync(mut h)) => {
                    let Ok(synced) = tokio::time::timeout_at(deadline, &mut h).await else {
                        self.rebalance = Some(Rebalance::Sync(h));
                        return Ok(());
                    };
                    let resp = synced.map_err(|e| task_failed(&e)).and_then(|r| r);
                    let outcome = {
                        let mut st = self.shared.state();
                        let Member::Classic(m) = &mut st.member else {
                            return Ok(());
                        };
                        match resp {
                            Ok(r) => m.on_sync_response(r)?,
                            Err(e) => {
                                m.join_failed();
                                drop(st);
                                self.rebalance_failed(e)?;
                                continue;
                            }
                        }
                    };
                    tracing::debug!(group = %self.config.group_id, ?outcome, "SyncGroup answered");
                    match outcome {
                        SyncOutcome::Assigned { added, revoked } => {
                            self.join_attempt = 0;
                            self.revoke(revoked).await;
                            self.assign(added).await?;
                        }
                        SyncOutcome::Rejoin => {}
                        SyncOutcome::FindCoordinator => {
                            self.shared.coordinator_lost();
                            self.back_off_rejoin();
                        }
                        SyncOutcome::Backoff(e) => {
                            tracing::debug!(group = %self.config.group_id, error = %e, "sync: retriable error");
                            self.back_off_rejoin();
                        }
                    }
                }
            }
        }
    }

    /// JoinGroup and SyncGroup may wait for the other members (to rejoin,
    /// or for the leader's assignment): up to the rebalance timeout plus the
    /// request timeout, as in Java.
    fn abort_rebalance(&mut self) {
        match self.rebalance.take() {
            Some(Rebalance::Join(h)) => h.abort(),
            Some(Rebalance::Sync(h)) => h.abort(),
            None => {}
        }
        if let Some(h) = self.count_refresh.take() {
            h.abort();
        }
    }

    fn rebalance_timeout(&self) -> Duration {
        self.config.max_poll_interval + self.client().config().request_timeout
    }

    /// A JoinGroup or SyncGroup failed: fatal errors end the poll, others
    /// back off before the next round.
    fn rebalance_failed(&mut self, e: Error) -> Result<()> {
        self.shared.note_error(&e);
        if !e.is_retriable() && !e.is_connection() {
            self.rebalance_started = None;
            return Err(e);
        }
        tracing::debug!(group = %self.config.group_id, error = %e, "join failed, retrying");
        self.back_off_rejoin();
        Ok(())
    }

    fn back_off_rejoin(&mut self) {
        let wait = self.client().backoff().delay_random(self.join_attempt);
        self.join_attempt = self.join_attempt.saturating_add(1);
        self.rejoin_at = Some(Instant::now() + wait);
    }

    /// As the classic leader: when a subscribed topic gained partitions
    /// since the last assignment, rebalance so they get owners (Java's
    /// `ConsumerCoordinator` metadata snapshot check). Metadata is
    /// refreshed in the background every `metadata.max.age.ms`.
    fn watch_partition_counts(&mut self) {
        let Some((topics, counts)) = &self.leader_counts else {
            return;
        };
        let client = self.client().clone();
        if client.metadata_is_stale() && self.count_refresh.as_ref().is_none_or(|h| h.is_finished())
        {
            let topics = topics.clone();
            self.count_refresh = Some(tokio::spawn(async move {
                if let Err(e) = client.refresh_metadata(&topics).await {
                    tracing::debug!(error = %e, "metadata refresh for the group leader failed");
                }
            }));
            return;
        }
        let now = partition_counts(&self.client().metadata(), topics);
        let grew = now
            .iter()
            .any(|(t, n)| counts.get(t).is_none_or(|old| n > old));
        if grew {
            tracing::info!(group = %self.config.group_id, before = ?counts, after = ?now,
                "subscribed topics gained partitions; rebalancing");
            self.leader_counts = None;
            if let Member::Classic(m) = &mut self.shared.state().member {
                m.request_rejoin();
            }
        }
    }

    /// KIP-848: report lost partitions, then apply the target assignment
    /// the heartbeat task received, revocations first.
    async fn reconcile(&mut self) -> Result<()> {
        let lost = match &mut self.shared.state().member {
            Member::Consumer(m) => m.take_lost(),
            Member::Classic(_) => return Ok(()),
        };
        self.lose(lost).await;
        let mut refreshed = false;
        // A few steps per poll: revoke, assign, maybe a metadata refresh.
        for _ in 0..4 {
            let md = self.client().metadata();
            let step = match &self.shared.state().member {
                Member::Consumer(m) => m.reconcile(|id| md.topic_name(id).map(String::from)),
                Member::Classic(_) => None,
            };
            match step {
                None => break,
                Some(Reconcile::Revoke(tps)) => {
                    self.revoke(tps.clone()).await;
                    if let Member::Consumer(m) = &mut self.shared.state().member {
                        m.revoked(&tps);
                    }
                    self.shared.wake.notify_one();
                }
                Some(Reconcile::Assign(tps)) => {
                    self.assign(tps.clone()).await?;
                    let md = self.client().metadata();
                    if let Member::Consumer(m) = &mut self.shared.state().member {
                        m.assigned(&tps, |name| md.topics.get(name).map(|t| t.id));
                    }
                    self.shared.wake.notify_one();
                }
                Some(Reconcile::UnknownTopicIds(ids)) => {
                    if refreshed {
                        tracing::debug!(
                            ?ids,
                            "assignment names topics unknown to metadata; retrying later"
                        );
                        break;
                    }
                    refreshed = true;
                    let topics: Vec<String> = match &self.shared.state().member {
                        Member::Consumer(m) => m.topics().iter().cloned().collect(),
                        Member::Classic(_) => Vec::new(),
                    };
                    self.client().refresh_metadata(&topics).await?;
                }
            }
        }
        Ok(())
    }

    /// Partitions were lost: listeners hear it; no commit.
    async fn lose(&mut self, partitions: Vec<TopicPartition>) {
        if partitions.is_empty() {
            return;
        }
        tracing::info!(group = %self.config.group_id, ?partitions, "partitions lost");
        for l in &mut self.listeners {
            l.on_lost(&self.handle, &partitions).await;
        }
        self.drop_partitions(&partitions);
    }

    /// Partitions are revoked: with auto commit, their done offsets are
    /// committed first; then the listeners run; then fetching stops.
    async fn revoke(&mut self, partitions: Vec<TopicPartition>) {
        if partitions.is_empty() {
            return;
        }
        tracing::debug!(group = %self.config.group_id, ?partitions, "revoking partitions");
        if self.config.enable_auto_commit {
            if let Err(e) = self.handle.commit_done_for(&partitions).await {
                tracing::warn!(group = %self.config.group_id, error = %e, "commit before revocation failed");
                self.shared.report(e);
            }
        }
        for l in &mut self.listeners {
            l.on_revoked(&self.handle, &partitions).await;
        }
        self.drop_partitions(&partitions);
    }

    fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        let mut tracker = self.shared.tracker();
        for tp in partitions {
            self.consumer.unassign(tp);
            tracker.revoke(tp);
            self.unstarted.remove(tp);
            self.needs_seek.remove(tp);
            self.already_done.remove(tp);
        }
    }

    /// Partitions were assigned: set their positions, then call listeners.
    async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        tracing::debug!(group = %self.config.group_id, ?partitions, "partitions assigned");
        {
            let mut tracker = self.shared.tracker();
            for tp in &partitions {
                tracker.assign(tp.clone());
            }
        }
        // Listeners hear of the partitions even when their start offsets
        // are not settled yet (the error comes back after them).
        let started = self.start_partitions(partitions.clone()).await;
        if !self.warned_initial && !self.initial_offsets.is_empty() {
            self.warned_initial = true;
            for tp in self.initial_offsets.keys() {
                if !partitions.contains(tp) && !self.consumer.assignment().contains(tp) {
                    tracing::warn!(group = %self.config.group_id, partition = %tp,
                        "initial offset ignored: partition not assigned to this member");
                }
            }
        }
        for l in &mut self.listeners {
            l.on_assigned(&self.handle, &partitions).await;
        }
        started
    }

    /// Fetch the committed offsets of `partitions` and start fetching each
    /// at its initial offset, committed offset, or `auto.offset.reset`.
    async fn start_partitions(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        let set: BTreeSet<TopicPartition> = partitions.iter().cloned().collect();
        let committed = match self.shared.committed(&set).await {
            Ok(c) => c,
            Err(e) => {
                self.unstarted.extend(set);
                return Err(e);
            }
        };
        let mut missing = Vec::new();
        for tp in partitions {
            let start = if let Some(o) = self.initial_offsets.remove(&tp) {
                Offset::At(o)
            } else if let Some((o, metadata)) = committed.get(&tp) {
                let done = commit_metadata::decode(*o, metadata);
                if !done.is_empty() {
                    tracing::debug!(partition = %tp, committed = o, ?done,
                        "skipping records the previous owner already finished");
                    self.already_done.insert(tp.clone(), done);
                }
                Offset::At(*o)
            } else if let Some(reset) = self.auto_offset_reset {
                reset
            } else {
                // Java's NoOffsetForPartitionException: every poll says so
                // until the application seeks the partition.
                missing.push(tp);
                continue;
            };
            self.consumer.assign(tp, start);
        }
        if missing.is_empty() {
            return Ok(());
        }
        self.needs_seek.extend(missing);
        self.no_offset_error()
    }

    /// The error every poll returns while partitions wait for a seek.
    fn no_offset_error(&self) -> Result<()> {
        if self.needs_seek.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self.needs_seek.iter().map(|tp| tp.to_string()).collect();
        Err(Error::Config(format!(
            "no committed offset for {} in group {:?} and auto.offset.reset is none; seek them",
            names.join(", "),
            self.config.group_id
        )))
    }

    /// Leave the group in order: revoke the partitions (auto commit and
    /// listeners run, so a
    /// [`ManualCommitListener`](crate::group::listener::ManualCommitListener)
    /// commits), leave (a dynamic member; a static one stays for the
    /// session timeout), stop heartbeats and fetches. The client and its
    /// connections stay open: a producer or another consumer may share
    /// them.
    ///
    /// Errors: the first failure among the final commit (auto commit or a
    /// listener's), errors reported since the last poll, and the
    /// LeaveGroup; every step runs regardless.
    pub async fn close(mut self) -> Result<()> {
        let owned = self.consumer.assignment();
        self.revoke(owned).await;
        let leave = {
            let mut st = self.shared.state();
            st.closing = true;
            match &mut st.member {
                Member::Classic(m) => m
                    .leave_request("the consumer is closing")
                    .map(LeaveReq::Classic),
                Member::Consumer(m) => m.leave_request().map(LeaveReq::Consumer),
            }
        };
        self.shared.wake.notify_one();
        self.heartbeat.abort();
        self.abort_rebalance();
        let r = match leave {
            Some(LeaveReq::Classic(req)) => heartbeat::send_classic_leave(&self.shared, req).await,
            Some(LeaveReq::Consumer(req)) => {
                heartbeat::send_consumer_leave(&self.shared, req).await
            }
            None => Ok(()),
        };
        if let Err(e) = &r {
            tracing::debug!(group = %self.config.group_id, error = %e, "leaving the group failed; the session timeout will remove the member");
        }
        let reported = std::mem::take(&mut self.shared.state().reported);
        match reported.into_iter().next() {
            Some(e) => Err(e),
            None => r,
        }
    }
}

enum LeaveReq {
    Classic(skotch_protocol::messages::LeaveGroupRequest),
    Consumer(skotch_protocol::messages::ConsumerGroupHeartbeatRequest),
}

impl Drop for GroupConsumer {
    /// Dropping without [`GroupConsumer::close`] stops the heartbeats
    /// without leaving: the coordinator removes the member after the session
    /// timeout, as if the process had died.
    fn drop(&mut self) {
        self.heartbeat.abort();
        self.abort_rebalance();
    }
}

/// A KIP-1082 client-generated member id: 16 random bytes, URL-safe
/// base64 without padding, like Java's `Uuid.randomUuid().toString()`.
fn new_member_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 16] = rand::rng().random();
    let mut out = String::with_capacity(22);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_look_like_java_uuids() {
        let a = new_member_id();
        assert_eq!(a.len(), 22);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, new_member_id());
    }

    #[test]
    fn config_is_checked() {
        let mut c = GroupConfig::new("");
        assert!(c.validate().is_err());
        c.group_id = "g".into();
        assert!(c.validate().is_ok());
        c.heartbeat_interval = c.session_timeout;
        assert!(c.validate().is_err());
        assert!("CONSUMER".parse::<GroupProtocol>().is_ok());
        assert!("other".parse::<GroupProtocol>().is_err());
    }
}
