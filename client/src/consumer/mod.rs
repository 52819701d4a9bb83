//! A consumer without a group: partitions are assigned by the caller, start
//! at the earliest or latest offset, a given offset or a timestamp, and are
//! fetched from their leaders with `fetch.max.wait.ms` long polls.
//!
//! Fetching runs in the background (Java's `Fetcher`, franz-go's sources):
//! one task per leader broker (`fetcher.rs`) keeps a Fetch in flight for
//! the partitions it leads, over an incremental fetch session (KIP-227,
//! `fetch_session.rs`), and buffers what arrives (`fetch_buffer.rs`), so a
//! slow broker holds back only its own partitions. [`Consumer::poll`] hands
//! out buffered records (at most `max.poll.records`), and reports a
//! partition's end once its position reaches the high watermark (the last
//! stable offset under read_committed), like librdkafka's partition EOF.
//!
//! Fetchers read ahead: a partition with data waiting for `poll` is
//! fetched on from the end of that data, so every fetch names every
//! fetchable partition and new records never wait behind a long poll that
//! left their partition out. A broker's fetcher sends nothing while more
//! than `fetch.max.bytes` of its data waits, which bounds the buffer to
//! about twice that per broker.

mod fetch_buffer;
pub mod fetch_session;
mod fetcher;
mod group;
mod leader_epoch;
mod offsets;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch_protocol::record::{Header, TimestampType};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::{Error, Result};
use fetch_buffer::CompletedFetch;

pub use group::{GroupConfig, GroupConsumer, GroupProtocol};
pub use offsets::{Offset, OffsetAndTimestamp};

/// A topic and a partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record as handed to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic it was read from.
    pub topic: Arc<str>,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Whether the producer (CreateTime) or the broker (LogAppendTime) set
    /// the timestamp.
    pub timestamp_type: TimestampType,
    /// Key; `None` for a null key.
    pub key: Option<Bytes>,
    /// Value; `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in the order written, duplicates kept.
    pub headers: Vec<Header>,
}

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open or aborted transactions
    /// (`read_uncommitted`, the default).
    #[default]
    ReadUncommitted,
    /// Only committed transactional records, up to the last stable offset
    /// (`read_committed`).
    ReadCommitted,
}

impl IsolationLevel {
    pub(crate) fn wire(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

/// Consumer settings; defaults are the Java consumer's.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch waiting for
    /// `fetch.min.bytes`. Default 500 ms.
    pub fetch_max_wait: Duration,
    /// `fetch.min.bytes`: bytes the broker waits for before answering.
    /// Default 1 byte.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: limit for one fetch response (not absolute: the
    /// first batch is returned even if larger, KIP-74). Default 52 428 800
    /// bytes (50 MiB).
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: limit per partition per fetch. Default
    /// 1 048 576 bytes (1 MiB).
    pub max_partition_fetch_bytes: i32,
    /// `isolation.level`. Default read_uncommitted.
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset`: where to go when the position is out of range
    /// (e.g. deleted by retention). `None` makes it an error. Default
    /// [`Offset::Latest`].
    pub auto_offset_reset: Option<Offset>,
    /// `check.crcs`: verify each record batch's CRC-32C. Default true.
    pub check_crcs: bool,
    /// `max.poll.records`: the most records one poll hands out; the rest
    /// stay buffered for the next. Default 500.
    pub max_poll_records: usize,
    /// `client.rack`: sent with fetches so that a broker configured with a
    /// rack-aware replica selector (KIP-392) can point the consumer at the
    /// closest replica. Default none.
    pub client_rack: Option<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: Some(Offset::Latest),
            check_crcs: true,
            max_poll_records: 500,
            client_rack: None,
        }
    }
}

/// Where one assigned partition stands. Owned by [`State`]; the fetchers
/// and `poll` change it under the state lock.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// Next offset to hand out; `None` until the start offset is resolved.
    pub position: Option<i64>,
    /// Next offset to fetch: past the records already buffered (read
    /// ahead), so a partition with data waiting for `poll` is fetched on
    /// without a gap; equal to `position` when nothing is buffered.
    pub fetch_position: Option<i64>,
    /// Buffered data ended without a whole batch past `fetch_position`:
    /// not fetched again until `poll` has taken that data.
    pub hold: bool,
    /// Where to start (or restart) when `position` is `None`.
    pub start: Offset,
    /// Leader epoch of the batch the last handed-out record came from
    /// (Java's offset epoch): what OffsetForLeaderEpoch checks after the
    /// leader changes. `None` after a seek or a reset.
    pub offset_epoch: Option<i32>,
    /// The leader epoch the partition was last fetched with (-1: none yet).
    pub fetch_epoch: i32,
    /// The leader changed since `offset_epoch`'s record was read: the
    /// position is checked with OffsetForLeaderEpoch before fetching.
    pub needs_validation: bool,
    pub high_watermark: Option<i64>,
    pub last_stable_offset: Option<i64>,
    pub log_start_offset: Option<i64>,
    /// End of partition was reported and no record came since.
    pub eof_reported: bool,
    /// Paused by the application: not fetched, buffered data kept.
    pub paused: bool,
    /// A fetch for it is in flight at this broker.
    pub in_flight: Option<i32>,
    /// Bumped whenever the position is set from outside the fetch path
    /// (assign, seek, reset): fetched data of an older generation is
    /// dropped.
    pub generation: u64,
    /// The partition stopped: a batch that cannot be decoded, a log
    /// truncation without `auto.offset.reset`, a non-retriable error. Every
    /// poll reports it until the application seeks (or unassigns).
    pub failed: Option<Error>,
    /// Not fetched before this (after a retriable error).
    pub retry_at: Option<Instant>,
    /// KIP-392: the replica the leader said to read from, until when.
    pub preferred_replica: Option<(i32, Instant)>,
}

impl PartitionState {
    fn new(start: Offset, generation: u64) -> Self {
        Self {
            position: None,
            fetch_position: None,
            hold: false,
            start,
            offset_epoch: None,
            fetch_epoch: -1,
            needs_validation: false,
            high_watermark: None,
            last_stable_offset: None,
            log_start_offset: None,
            eof_reported: false,
            paused: false,
            in_flight: None,
            generation,
            failed: None,
            retry_at: None,
            preferred_replica: None,
        }
    }

    /// Move to `position` (or to `start` when `None`), dropping whatever
    /// was fetched for the old one.
    pub(crate) fn reposition(&mut self, position: Option<i64>, start: Offset, generation: u64) {
        self.position = position;
        self.fetch_position = position;
        self.hold = false;
        self.start = start;
        self.offset_epoch = None;
        self.needs_validation = false;
        self.eof_reported = false;
        self.in_flight = None;
        self.generation = generation;
        self.failed = None;
        self.retry_at = None;
    }
}

/// What the consumer, its fetchers and `poll` share.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Fetched data waiting for `poll`, in arrival order.
    pub buffer: VecDeque<CompletedFetch>,
    /// Bytes buffered per broker (bounded by `fetch.max.bytes`).
    pub buffered_bytes: HashMap<i32, usize>,
    /// Partitions whose end a fetcher saw, to be reported by `poll`.
    pub eof: Vec<TopicPartition>,
    /// Interned topic names for the records.
    pub topic_names: HashMap<String, Arc<str>>,
    /// When each broker's fetch in flight was sent.
    pub fetch_started: HashMap<i32, Instant>,
    next_generation: u64,
    /// The consumer was closed or dropped: fetchers stop.
    pub closed: bool,
}

impl State {
    pub(crate) fn next_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Drop buffered data of `tp` (unassigned or moved).
    pub(crate) fn drop_buffered(&mut self, tp: &TopicPartition) {
        let bytes = &mut self.buffered_bytes;
        self.buffer.retain(|cf| {
            if cf.tp == *tp {
                if let Some(b) = bytes.get_mut(&cf.broker) {
                    *b = b.saturating_sub(cf.bytes);
                }
                false
            } else {
                true
            }
        });
    }
}

/// State shared by a [`Consumer`] and its fetcher tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub client: Client,
    pub config: ConsumerConfig,
    pub state: Mutex<State>,
    /// Fetched data or an end of partition arrived (poll waits on it).
    pub data: Notify,
    /// Partitions became fetchable, or metadata moved (fetchers wait on it).
    pub work: Notify,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a poll produced.
#[derive(Debug, Default, Clone)]
pub struct Poll {
    /// Records, in offset order within each partition.
    pub records: Vec<ConsumerRecord>,
    /// Partitions whose position reached their end during this poll.
    pub end_of_partition: Vec<TopicPartition>,
    /// Errors that did not stop this poll but must not go unseen: a
    /// failed auto commit, a failed commit before a revocation (group
    /// consumers). Consumption goes on; the next commit retries.
    pub errors: Vec<Error>,
}

/// A consumer of explicitly assigned partitions.
pub struct Consumer {
    shared: Arc<Shared>,
    fetchers: HashMap<i32, JoinHandle<()>>,
    /// A background metadata refresh, at most one at a time.
    refresh: Option<JoinHandle<()>>,
    last_refresh: Option<Instant>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("assignment", &self.assignment())
            .field("fetchers", &self.fetchers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Consumer {
    /// A consumer over `client` with no partitions assigned.
    pub fn new(client: Client, config: ConsumerConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                config,
                state: Mutex::new(State::default()),
                data: Notify::new(),
                work: Notify::new(),
            }),
            fetchers: HashMap::new(),
            refresh: None,
            last_refresh: None,
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The settings it was made with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    /// Assign every partition of `topic`, starting at `start`.
    ///
    /// Errors: [`Error::UnknownTopic`] if the topic does not exist.
    pub async fn assign_topic(
        &mut self,
        topic: &str,
        start: Offset,
    ) -> Result<Vec<TopicPartition>> {
        let client = self.shared.client.clone();
        let info = client
            .retry(client.config().request_timeout, || client.topic(topic))
            .await?;
        let tps: Vec<TopicPartition> = info
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        for tp in &tps {
            self.assign(tp.clone(), start);
        }
        Ok(tps)
    }

    /// Assign one partition, starting at `start` (resolved at the next
    /// poll). Reassigning a partition moves it to `start`.
    pub fn assign(&mut self, tp: TopicPartition, start: Offset) {
        let mut st = self.state();
        st.topic_names
            .entry(tp.topic.clone())
            .or_insert_with(|| Arc::from(tp.topic.as_str()));
        st.drop_buffered(&tp);
        let generation = st.next_generation();
        let position = match start {
            Offset::At(o) if o >= 0 => Some(o),
            _ => None,
        };
        let mut p = PartitionState::new(start, generation);
        p.position = position;
        p.fetch_position = position;
        st.partitions.insert(tp, p);
        drop(st);
        self.shared.work.notify_waiters();
    }

    /// Stop fetching a partition; its buffered records are dropped.
    pub fn unassign(&mut self, tp: &TopicPartition) {
        let mut st = self.state();
        st.partitions.remove(tp);
        st.drop_buffered(tp);
        st.eof.retain(|t| t != tp);
        drop(st);
        self.shared.work.notify_waiters();
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.state().partitions.keys().cloned().collect()
    }

    /// Move a partition to `to` (resolved at the next poll); buffered
    /// records of the partition are dropped, and a stopped partition (see
    /// [`Error::CorruptRecord`]) goes on from there. Errors when the
    /// partition is not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, to: Offset) -> Result<()> {
        let mut st = self.state();
        let generation = st.next_generation();
        let p = st
            .partitions
            .get_mut(tp)
            .ok_or_else(|| Error::Config(format!("seek on unassigned partition {tp}")))?;
        match to {
            Offset::At(o) if o >= 0 => p.reposition(Some(o), to, generation),
            _ => p.reposition(None, to, generation),
        }
        st.drop_buffered(tp);
        drop(st);
        self.shared.work.notify_waiters();
        Ok(())
    }

    /// Stop fetching `partitions` and handing out their records until
    /// [`resume`](Self::resume)d (Java's `pause`); their buffered records
    /// are kept. Partitions not assigned are ignored.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        let mut st = self.state();
        for tp in partitions {
            if let Some(p) = st.partitions.get_mut(tp) {
                p.paused = true;
            }
        }
    }

    /// Fetch and hand out `partitions` again.
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        let mut st = self.state();
        for tp in partitions {
            if let Some(p) = st.partitions.get_mut(tp) {
                p.paused = false;
            }
        }
        drop(st);
        self.shared.work.notify_waiters();
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.state()
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The next offset to be handed out for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.state().partitions.get(tp).and_then(|s| s.position)
    }

    /// The partition's high watermark from the latest fetch.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.state()
            .partitions
            .get(tp)
            .and_then(|s| s.high_watermark)
    }

    /// The partition's log start offset from the latest fetch.
    pub fn log_start_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.state()
            .partitions
            .get(tp)
            .and_then(|s| s.log_start_offset)
    }

    /// The replica the partition's leader told this consumer to fetch
    /// from (KIP-392, with `client.rack` set and a rack-aware replica
    /// selector on the brokers), while that advice holds; `None` when
    /// fetching from the leader.
    pub fn preferred_read_replica(&self, tp: &TopicPartition) -> Option<i32> {
        let st = self.state();
        let (broker, until) = st.partitions.get(tp)?.preferred_replica?;
        (until > Instant::now()).then_some(broker)
    }

    /// True when every assigned partition has reached its end.
    pub fn at_end(&self) -> bool {
        self.state().partitions.values().all(|s| s.eof_reported)
    }

    /// Hand out buffered records; when there are none, wait up to about
    /// `fetch.max.wait.ms` for some.
    ///
    /// Errors: a partition that stopped ([`Error::CorruptRecord`], a log
    /// truncation without `auto.offset.reset`, authorization) is reported
    /// by every poll until it is sought or unassigned, after the records
    /// fetched before the failure were handed out; start offsets that
    /// cannot be resolved.
    pub async fn poll(&mut self) -> Result<Poll> {
        let wait = self.shared.config.fetch_max_wait;
        self.poll_for(wait).await
    }

    /// [`poll`](Self::poll), waiting at most `timeout` for records.
    pub async fn poll_for(&mut self, timeout: Duration) -> Result<Poll> {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.resolve_starts().await?;
        self.maintain();
        loop {
            // Registered before draining, so a fetcher's notification
            // between the drain and the wait is not lost.
            let shared = self.shared.clone();
            let notified = shared.data.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let poll = self.drain();
            if !poll.records.is_empty() || !poll.end_of_partition.is_empty() {
                return Ok(poll);
            }
            if let Some(e) = self.failure() {
                return Err(e);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(poll);
            }
            let more = tokio::select! {
                _ = notified => true,
                _ = tokio::time::sleep_until(deadline) => false,
                // Fetchers and metadata need looking after while waiting.
                _ = tokio::time::sleep(Duration::from_millis(250)) => true,
            };
            if more {
                self.maintain();
            }
        }
    }

    /// The first stopped partition's error.
    fn failure(&self) -> Option<Error> {
        let st = self.state();
        st.partitions
            .iter()
            .filter(|(tp, p)| p.failed.is_some() && !st.buffer.iter().any(|cf| cf.tp == **tp))
            .find_map(|(_, p)| p.failed.clone())
    }

    /// Start fetchers for the brokers that lead assigned partitions, and
    /// refresh metadata in the background when a partition has no known
    /// leader or a broker stopped answering.
    fn maintain(&mut self) {
        let md = self.shared.client.metadata();
        let mut leaders = Vec::new();
        let mut leaderless = Vec::new();
        let mut stalled = Vec::new();
        {
            let st = self.state();
            for (tp, p) in &st.partitions {
                if p.position.is_none() || p.paused || p.failed.is_some() {
                    continue;
                }
                match md.leader(&tp.topic, tp.partition) {
                    Some(l) => leaders.push(l),
                    None => leaderless.push(tp.topic.clone()),
                }
                if let Some((r, _)) = p.preferred_replica {
                    leaders.push(r);
                }
            }
            // A fetch unanswered well past its long-poll wait: the broker
            // may be frozen; look for a new leader elsewhere.
            let limit = self.shared.config.fetch_max_wait + Duration::from_secs(1);
            for (b, t) in &st.fetch_started {
                if t.elapsed() > limit {
                    stalled.push(*b);
                }
            }
        }
        leaders.sort_unstable();
        leaders.dedup();
        for b in leaders {
            let alive = self.fetchers.get(&b).is_some_and(|h| !h.is_finished());
            if !alive {
                let h = tokio::spawn(fetcher::run(self.shared.clone(), b));
                self.fetchers.insert(b, h);
            }
        }
        for b in &stalled {
            self.shared.client.suspect(*b);
        }
        let want_refresh = !leaderless.is_empty() || !stalled.is_empty();
        let busy = self.refresh.as_ref().is_some_and(|h| !h.is_finished());
        let spaced = self
            .last_refresh
            .is_none_or(|t| t.elapsed() >= self.shared.client.config().retry_backoff);
        if want_refresh && !busy && spaced {
            self.last_refresh = Some(Instant::now());
            let shared = self.shared.clone();
            leaderless.sort();
            leaderless.dedup();
            self.refresh = Some(tokio::spawn(async move {
                if let Err(e) = shared.client.refresh_metadata(&leaderless).await {
                    tracing::debug!(error = %e, "consumer metadata refresh failed");
                }
                shared.work.notify_waiters();
            }));
        }
    }

    /// Stop the fetchers. The client and its connections stay open for
    /// whoever else uses them.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.state().closed = true;
        for (_, h) in self.fetchers.drain() {
            h.abort();
        }
        if let Some(h) = self.refresh.take() {
            h.abort();
        }
        self.shared.work.notify_waiters();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop();
    }
}
