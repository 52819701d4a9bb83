//! A consumer without a group: partitions are assigned by the caller, start
//! at the earliest or latest offset, a given offset or a timestamp, and are
//! fetched from their leaders with `fetch.max.wait.ms` long polls.
//!
//! Each [`Consumer::poll`] sends one Fetch per leader broker (concurrently),
//! hands out the records past each partition's position, and reports a
//! partition's end once its position reaches the high watermark (the last
//! stable offset under read_committed), like librdkafka's partition EOF.

mod group;
mod offsets;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use skotch_protocol::messages::{FetchRequest, FetchResponse};
use skotch_protocol::record::{self, AbortedTransactionFilter, Header, TimestampType};
use skotch_protocol::Uuid;

use crate::client::{Client, ConnKind};
use crate::error::{Error, Result};

pub use group::{GroupConfig, GroupConsumer, GroupProtocol};
pub use offsets::Offset;

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
    fn wire(self) -> i8 {
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
        }
    }
}

/// Where one assigned partition stands.
#[derive(Debug, Clone)]
struct PartitionState {
    /// Next offset to hand out; `None` until the start offset is resolved.
    position: Option<i64>,
    /// Where to start (or restart) when `position` is `None`.
    start: Offset,
    high_watermark: Option<i64>,
    last_stable_offset: Option<i64>,
    log_start_offset: Option<i64>,
    /// End of partition was reported and no record came since.
    eof_reported: bool,
}

/// What a poll produced.
#[derive(Debug, Default, Clone)]
pub struct Poll {
    /// Records, in offset order within each partition.
    pub records: Vec<ConsumerRecord>,
    /// Partitions whose position reached their end during this poll.
    pub end_of_partition: Vec<TopicPartition>,
}

/// A consumer of explicitly assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    topic_names: HashMap<String, Arc<str>>,
}

impl Consumer {
    /// A consumer over `client` with no partitions assigned.
    pub fn new(client: Client, config: ConsumerConfig) -> Self {
        Self {
            client,
            config,
            partitions: BTreeMap::new(),
            topic_names: HashMap::new(),
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Assign every partition of `topic`, starting at `start`.
    ///
    /// Errors: [`Error::UnknownTopic`] if the topic does not exist.
    pub async fn assign_topic(
        &mut self,
        topic: &str,
        start: Offset,
    ) -> Result<Vec<TopicPartition>> {
        let info = self
            .client
            .retry(self.client.config().request_timeout, || {
                self.client.topic(topic)
            })
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
        self.topic_names
            .entry(tp.topic.clone())
            .or_insert_with(|| Arc::from(tp.topic.as_str()));
        self.partitions.insert(
            tp,
            PartitionState {
                position: None,
                start,
                high_watermark: None,
                last_stable_offset: None,
                log_start_offset: None,
                eof_reported: false,
            },
        );
    }

    /// Stop fetching a partition.
    pub fn unassign(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// Move a partition to `to` (resolved at the next poll). Errors when
    /// the partition is not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, to: Offset) -> Result<()> {
        let st = self
            .partitions
            .get_mut(tp)
            .ok_or_else(|| Error::Config(format!("seek on unassigned partition {tp}")))?;
        match to {
            Offset::At(o) if o >= 0 => st.position = Some(o),
            _ => {
                st.position = None;
                st.start = to;
            }
        }
        st.eof_reported = false;
        Ok(())
    }

    /// The next offset to be handed out for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|s| s.position)
    }

    /// The partition's high watermark from the latest fetch.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|s| s.high_watermark)
    }

    /// The partition's log start offset from the latest fetch.
    pub fn log_start_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|s| s.log_start_offset)
    }

    /// True when every assigned partition has reached its end.
    pub fn at_end(&self) -> bool {
        self.partitions.values().all(|s| s.eof_reported)
    }

    /// Fetch once from every leader and return what arrived; waits at
    /// most about `fetch.max.wait.ms` when nothing is new.
    pub async fn poll(&mut self) -> Result<Poll> {
        self.resolve_starts().await?;
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut no_leader = false;
        for (tp, st) in &self.partitions {
            if st.position.is_none() {
                continue;
            }
            match self.client.leader(&tp.topic, tp.partition).await {
                Ok(l) => by_leader.entry(l).or_default().push(tp.clone()),
                Err(e) if e.is_retriable() => no_leader = true,
                Err(e) => return Err(e),
            }
        }
        if by_leader.is_empty() {
            // Nothing fetchable right now (no partitions, e.g. a group
            // member waiting for its assignment, or no leader): wait like an
            // empty long poll would. Returning at once would let a caller
            // that loops on poll spin without ever yielding, starving the
            // runtime's other tasks (heartbeats included).
            if no_leader {
                self.client.invalidate_metadata();
            }
            tokio::time::sleep(self.client.backoff().delay_random(0)).await;
            return Ok(Poll::default());
        }
        let fetches = by_leader
            .into_iter()
            .map(|(leader, tps)| self.fetch_from(leader, tps));
        let results = join_all(fetches).await;
        let mut poll = Poll::default();
        let mut first_err = None;
        for r in results {
            match r {
                Ok((tps_by_id, resp)) => {
                    if let Err(e) = self.apply_fetch(&tps_by_id, resp, &mut poll) {
                        first_err.get_or_insert(e);
                    }
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "fetch failed, will retry");
                    self.client.invalidate_metadata();
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if poll.records.is_empty() => Err(e),
            _ => Ok(poll),
        }
    }

    /// Build and send one Fetch to `leader`.
    async fn fetch_from(
        &self,
        leader: i32,
        tps: Vec<TopicPartition>,
    ) -> Result<(Vec<(String, Uuid, Vec<i32>)>, FetchResponse)> {
        let conn = self.client.connection(leader, ConnKind::Fetch).await?;
        let md = self.client.metadata();
        let mut version = conn.version::<FetchRequest>()?;
        // v13+ names topics by id; without ids (old broker metadata) stay
        // at v12.
        let mut topics: Vec<(String, Uuid, Vec<i32>)> = Vec::new();
        for tp in &tps {
            match topics.last_mut() {
                Some((t, _, ps)) if *t == tp.topic => ps.push(tp.partition),
                _ => {
                    let id = md.topics.get(&tp.topic).map(|t| t.id).unwrap_or_default();
                    topics.push((tp.topic.clone(), id, vec![tp.partition]));
                }
            }
        }
        if topics.iter().any(|(_, id, _)| *id == Uuid::ZERO) {
            version = version.min(12);
        }
        let req = FetchRequest {
            max_wait_ms: i32::try_from(self.config.fetch_max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: self.config.fetch_min_bytes,
            max_bytes: self.config.fetch_max_bytes,
            isolation_level: self.config.isolation_level.wire(),
            // No fetch session (KIP-227): every fetch is a full fetch.
            session_id: 0,
            session_epoch: -1,
            topics: topics
                .iter()
                .map(|(name, id, parts)| FetchTopic {
                    topic: name.clone(),
                    topic_id: *id,
                    partitions: parts
                        .iter()
                        .map(|&p| FetchPartition {
                            partition: p,
                            fetch_offset: self
                                .partitions
                                .get(&TopicPartition::new(name.clone(), p))
                                .and_then(|s| s.position)
                                .unwrap_or(0),
                            partition_max_bytes: self.config.max_partition_fetch_bytes,
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        };
        let timeout = self.client.config().request_timeout + self.config.fetch_max_wait;
        let resp = conn.send_version(&req, version, timeout).await?;
        Error::check(resp.error_code, None, || {
            format!("fetch from broker {leader}")
        })?;
        Ok((topics, resp))
    }

    /// Hand out the records of one fetch response and update positions.
    fn apply_fetch(
        &mut self,
        requested: &[(String, Uuid, Vec<i32>)],
        resp: FetchResponse,
        poll: &mut Poll,
    ) -> Result<()> {
        let mut result = Ok(());
        for t in resp.responses {
            // v13+ answers by id, older versions by name.
            let name = requested
                .iter()
                .find(|(n, id, _)| {
                    (t.topic_id != Uuid::ZERO && *id == t.topic_id) || (*n == t.topic)
                })
                .map(|(n, _, _)| n.clone());
            let Some(name) = name else {
                continue;
            };
            let topic_arc = self
                .topic_names
                .get(&name)
                .cloned()
                .unwrap_or_else(|| Arc::from(name.as_str()));
            for p in t.partitions {
                let tp = TopicPartition::new(name.clone(), p.partition_index);
                if let Err(e) = self.apply_partition(&tp, &topic_arc, p, poll) {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        result
    }

    fn apply_partition(
        &mut self,
        tp: &TopicPartition,
        topic: &Arc<str>,
        p: skotch_protocol::messages::fetch_response::PartitionData,
        poll: &mut Poll,
    ) -> Result<()> {
        let reset = self.config.auto_offset_reset;
        let check_crcs = self.config.check_crcs;
        // A compressed batch may inflate to at most a whole fetch's worth.
        let max_decompressed = usize::try_from(self.config.fetch_max_bytes)
            .unwrap_or(0)
            .max(usize::try_from(self.config.max_partition_fetch_bytes).unwrap_or(0));
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let Some(st) = self.partitions.get_mut(tp) else {
            return Ok(()); // unassigned while the fetch was in flight
        };
        let Some(mut position) = st.position else {
            return Ok(()); // sought while the fetch was in flight
        };
        let code = ErrorCode(p.error_code);
        if code == ErrorCode::OFFSET_OUT_OF_RANGE {
            return match reset {
                Some(to) => {
                    tracing::warn!(%tp, position, reset = ?to, "offset out of range, resetting");
                    st.position = None;
                    st.start = to;
                    Ok(())
                }
                None => Err(Error::Broker {
                    code,
                    message: None,
                    context: format!("fetch {tp} at offset {position} (auto.offset.reset=none)"),
                }),
            };
        }
        if !code.is_ok() {
            let e = Error::Broker {
                code,
                message: None,
                context: format!("fetch {tp}"),
            };
            if e.is_retriable() || e.needs_metadata_refresh() {
                tracing::debug!(%tp, error = %e, "partition fetch error, refreshing metadata");
                self.client.invalidate_metadata();
                return Ok(());
            }
            return Err(e);
        }
        st.high_watermark = Some(p.high_watermark);
        if p.last_stable_offset >= 0 {
            st.last_stable_offset = Some(p.last_stable_offset);
        }
        if p.log_start_offset >= 0 {
            st.log_start_offset = Some(p.log_start_offset);
        }
        let before = poll.records.len();
        if let Some(data) = p.records {
            let decode_err = |source| Error::Decode {
                addr: format!("fetch {tp}"),
                source,
            };
            // read_committed: the broker lists the aborted transactions in
            // the range it returned (it sends none at read_uncommitted).
            let mut aborted = AbortedTransactionFilter::new(
                p.aborted_transactions
                    .iter()
                    .flatten()
                    .filter(|_| read_committed)
                    .map(|a| (a.producer_id, a.first_offset)),
            );
            let batches =
                record::decode_batches(data, check_crcs).max_decompressed_size(max_decompressed);
            for batch in batches {
                let batch = batch.map_err(decode_err)?;
                // Called for every batch in offset order, control batches
                // included: their ABORT markers end aborted transactions.
                let skip = aborted.is_aborted(&batch);
                let next = batch.next_offset();
                if next <= position {
                    continue;
                }
                if !batch.is_control() && !skip {
                    for r in batch.records() {
                        let r = r.map_err(decode_err)?;
                        if r.offset < position {
                            continue;
                        }
                        poll.records.push(ConsumerRecord {
                            topic: topic.clone(),
                            partition: tp.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            timestamp_type: batch.timestamp_type(),
                            key: r.key,
                            value: r.value,
                            headers: r.headers,
                        });
                    }
                }
                // Offsets may have gaps (compaction, control records): the
                // batch header says where the next one starts.
                position = next;
            }
        }
        st.position = Some(position);
        if poll.records.len() > before {
            st.eof_reported = false;
        }
        let end = if read_committed {
            st.last_stable_offset.unwrap_or(p.high_watermark)
        } else {
            p.high_watermark
        };
        if position >= end && !st.eof_reported {
            st.eof_reported = true;
            poll.end_of_partition.push(tp.clone());
        }
        Ok(())
    }
}
