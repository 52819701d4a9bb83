//! One background task per broker that fetches for a consumer (franz-go's
//! source, Java's `Fetcher`): it picks the assigned partitions this broker
//! leads (or, KIP-392, the replica the leader pointed at) that have no
//! fetch in flight and no data buffered, sends one Fetch over the broker's
//! fetch session, and buffers the answer for `poll`. Brokers do not wait
//! for each other: a slow or frozen broker holds back only its own
//! partitions.
//!
//! Before fetching a partition whose leader changed since its last record
//! was read, the task checks the position with OffsetForLeaderEpoch
//! (KIP-320, `leader_epoch.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use skotch_protocol::messages::{FetchRequest, FetchResponse, OffsetForLeaderEpochRequest};
use skotch_protocol::record::{self, AbortedTransactionFilter, RecordBatch};
use skotch_protocol::{DecodeError, Uuid};

use super::fetch_buffer::{
    compressed_bytes, decode_all, next_fetch_offset, Batches, CompletedFetch, DECODE_OFF_WORKERS,
};
use super::fetch_session::{FetchPlan, FetchSession, PartitionFetch};
use super::leader_epoch::{self, Validation};
use super::{IsolationLevel, Shared, State, TopicPartition};
use crate::client::ConnKind;
use crate::error::{Error, Result};
use crate::metadata::ClusterMetadata;

/// How long a fetcher with nothing to do sleeps before looking again
/// (metadata may have moved a partition to it without a wake-up).
const IDLE: Duration = Duration::from_secs(1);

/// What a fetcher does next.
enum Work {
    Closed,
    Wait(Duration),
    /// Check these positions: (partition, generation, position, offset
    /// epoch, current leader epoch).
    Validate(Vec<(TopicPartition, u64, i64, i32, i32)>),
    /// Fetch these partitions (with their generations).
    Fetch(BTreeMap<TopicPartition, (PartitionFetch, u64)>),
}

/// The fetch loop for `broker`; ends when the consumer closes.
pub(crate) async fn run(shared: Arc<Shared>, broker: i32) {
    let mut session = FetchSession::default();
    let mut failures = 0u32;
    loop {
        // Registered before looking at the state, so a wake-up between the
        // look and the wait is not lost.
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let md = shared.client.metadata();
        let work = take_work(&shared, broker, &md);
        match work {
            Work::Closed => return,
            Work::Wait(d) => {
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(d) => {}
                }
            }
            Work::Validate(parts) => validate(&shared, broker, parts).await,
            Work::Fetch(parts) => {
                let ok = fetch(&shared, broker, &md, &mut session, parts).await;
                if ok {
                    failures = 0;
                } else {
                    let wait = shared.client.backoff().delay_random(failures);
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Pick what to do, marking the chosen partitions as in flight here.
fn take_work(shared: &Shared, broker: i32, md: &ClusterMetadata) -> Work {
    let cfg = &shared.config;
    let mut guard = shared.state();
    let st: &mut State = &mut guard;
    if st.closed {
        return Work::Closed;
    }
    let budget = usize::try_from(cfg.fetch_max_bytes).unwrap_or(usize::MAX);
    if st.buffered_bytes.get(&broker).copied().unwrap_or(0) >= budget {
        // `poll` wakes us when it hands data out.
        return Work::Wait(IDLE);
    }
    let now = Instant::now();
    let mut wait = IDLE;
    let mut validate = Vec::new();
    let mut wanted = BTreeMap::new();
    let mut dropped = Vec::new();
    for (tp, p) in st.partitions.iter_mut() {
        let (Some(position), Some(fetch_position)) = (p.position, p.fetch_position) else {
            continue;
        };
        if p.paused || p.failed.is_some() || p.hold || p.in_flight == Some(broker) {
            continue;
        }
        let Some(info) = md
            .topics
            .get(&tp.topic)
            .and_then(|t| t.partition(tp.partition))
        else {
            continue;
        };
        let leader = md.leader(&tp.topic, tp.partition);
        let target = match p.preferred_replica {
            Some((r, until)) if until > now && md.brokers.contains_key(&r) => Some(r),
            _ => leader,
        };
        if target != Some(broker) {
            continue;
        }
        // In flight at another broker that no longer leads it (it froze
        // or died, and metadata moved the partition here): take it over;
        // the other broker's answer will be ignored.
        if let Some(b) = p.in_flight {
            tracing::debug!(partition = %tp, from = b, to = broker, "fetch moved to the new leader");
        }
        if let Some(at) = p.retry_at {
            if at > now {
                wait = wait.min(at - now);
                continue;
            }
            p.retry_at = None;
        }
        let epoch = info.leader_epoch;
        if p.offset_epoch.is_some() && p.fetch_epoch >= 0 && epoch > p.fetch_epoch {
            p.needs_validation = true;
            // Read-ahead data came from the old leader: drop it (below) and
            // check the position handed out so far instead.
            if fetch_position != position {
                dropped.push(tp.clone());
                continue;
            }
        }
        if p.needs_validation {
            if let Some(offset_epoch) = p.offset_epoch {
                p.in_flight = Some(broker);
                validate.push((tp.clone(), p.generation, position, offset_epoch, epoch));
                continue;
            }
            p.needs_validation = false;
        }
        p.fetch_epoch = epoch;
        wanted.insert(
            tp.clone(),
            (
                PartitionFetch {
                    fetch_offset: fetch_position,
                    current_leader_epoch: epoch,
                    max_bytes: cfg.max_partition_fetch_bytes,
                },
                p.generation,
            ),
        );
    }
    for tp in &dropped {
        let g = st.next_generation();
        if let Some(p) = st.partitions.get_mut(tp) {
            p.fetch_position = p.position;
            p.generation = g;
            p.in_flight = None;
            p.hold = false;
        }
        st.drop_buffered(tp);
    }
    if !validate.is_empty() {
        // Validate first; the other partitions are fetched right after.
        return Work::Validate(validate);
    }
    if !dropped.is_empty() && wanted.is_empty() {
        return Work::Wait(Duration::ZERO);
    }
    if wanted.is_empty() {
        return Work::Wait(wait);
    }
    for tp in wanted.keys() {
        if let Some(p) = st.partitions.get_mut(tp) {
            p.in_flight = Some(broker);
        }
    }
    st.fetch_started.insert(broker, Instant::now());
    Work::Fetch(wanted)
}

/// Send one Fetch and file its answer. False when it failed (back off).
async fn fetch(
    shared: &Shared,
    broker: i32,
    md: &ClusterMetadata,
    session: &mut FetchSession,
    parts: BTreeMap<TopicPartition, (PartitionFetch, u64)>,
) -> bool {
    let cfg = &shared.config;
    let result = async {
        let conn = shared.client.connection(broker, ConnKind::Fetch).await?;
        let mut version = conn.version::<FetchRequest>()?;
        let ids: HashMap<&str, Uuid> = parts
            .keys()
            .map(|tp| {
                let id = md.topics.get(&tp.topic).map(|t| t.id).unwrap_or_default();
                (tp.topic.as_str(), id)
            })
            .collect();
        // v13+ names topics by id; without ids (old broker metadata) stay
        // at v12.
        if ids.values().any(|id| *id == Uuid::ZERO) {
            version = version.min(12);
        }
        let wanted: BTreeMap<TopicPartition, PartitionFetch> =
            parts.iter().map(|(tp, (f, _))| (tp.clone(), *f)).collect();
        let mut plan = session.plan(wanted);
        if version < 7 {
            // No sessions before v7 (KIP-227): full fetches, none opened.
            session.reset();
            plan.session_epoch = -1;
        }
        let req = request(cfg, &plan, &ids);
        let timeout = shared.client.config().request_timeout + cfg.fetch_max_wait;
        let resp = conn.send_version(&req, version, timeout).await?;
        Ok::<_, Error>((resp, ids))
    }
    .await;
    shared.state().fetch_started.remove(&broker);
    let (resp, ids) = match result {
        Ok(r) => r,
        Err(e) => {
            session.reset();
            release(shared, broker, &parts);
            tracing::debug!(broker, error = %e, "fetch failed; refreshing metadata");
            refresh(shared, &parts).await;
            return false;
        }
    };
    let code = ErrorCode(resp.error_code);
    if !session.on_response(code, resp.session_id) {
        release(shared, broker, &parts);
        if code == ErrorCode::FETCH_SESSION_ID_NOT_FOUND
            || code == ErrorCode::INVALID_FETCH_SESSION_EPOCH
        {
            // The next fetch is a full one; no need to wait.
            tracing::debug!(broker, ?code, "fetch session lost; fetching in full");
            return true;
        }
        tracing::debug!(broker, ?code, "fetch refused");
        return false;
    }
    let mut resp = resp;
    let decoded = match decode_heavy(shared, &mut resp).await {
        Ok(d) => d,
        Err(e) => {
            release(shared, broker, &parts);
            tracing::warn!(broker, error = %e, "decoding a fetch answer failed");
            return false;
        }
    };
    let by_id: HashMap<Uuid, &str> = ids.iter().map(|(n, id)| (*id, *n)).collect();
    let need_refresh = file_answer(shared, broker, &parts, resp, &by_id, decoded);
    release(shared, broker, &parts);
    if need_refresh {
        refresh(shared, &parts).await;
    }
    true
}

/// Batches decoded ahead, by (topic index, partition index) in the answer:
/// the data's size and its batches.
type Decoded = HashMap<(usize, usize), (usize, Option<i64>, Vec<Result<RecordBatch, DecodeError>>)>;

/// Decode, on a blocking thread, the partitions of `resp` whose data is
/// mostly large compressed batches (their records are taken out of
/// `resp`): inflating them must not hold up an async worker.
async fn decode_heavy(shared: &Shared, resp: &mut FetchResponse) -> Result<Decoded> {
    let mut jobs = Vec::new();
    for (ti, t) in resp.responses.iter_mut().enumerate() {
        for (pi, p) in t.partitions.iter_mut().enumerate() {
            let heavy = p
                .records
                .as_ref()
                .is_some_and(|d| compressed_bytes(d) >= DECODE_OFF_WORKERS);
            if heavy {
                if let Some(data) = p.records.take() {
                    jobs.push(((ti, pi), data));
                }
            }
        }
    }
    if jobs.is_empty() {
        return Ok(Decoded::new());
    }
    tracing::trace!(
        partitions = jobs.len(),
        "decoding compressed data on a blocking thread"
    );
    let check_crcs = shared.config.check_crcs;
    let max = max_decompressed(&shared.config);
    tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|(k, data)| {
                let next = next_fetch_offset(&data);
                (k, (data.len(), next, decode_all(data, check_crcs, max)))
            })
            .collect()
    })
    .await
    .map_err(|e| Error::Config(format!("decoding record batches failed: {e}")))
}

/// A compressed batch may inflate to at most a whole fetch's worth.
fn max_decompressed(cfg: &super::ConsumerConfig) -> usize {
    usize::try_from(cfg.fetch_max_bytes)
        .unwrap_or(0)
        .max(usize::try_from(cfg.max_partition_fetch_bytes).unwrap_or(0))
}

/// The Fetch request for `plan`.
fn request(
    cfg: &super::ConsumerConfig,
    plan: &FetchPlan,
    ids: &HashMap<&str, Uuid>,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, f) in &plan.to_send {
        let part = FetchPartition {
            partition: tp.partition,
            current_leader_epoch: f.current_leader_epoch,
            fetch_offset: f.fetch_offset,
            partition_max_bytes: f.max_bytes,
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.topic == tp.topic => t.partitions.push(part),
            _ => topics.push(FetchTopic {
                topic: tp.topic.clone(),
                topic_id: ids.get(tp.topic.as_str()).copied().unwrap_or_default(),
                partitions: vec![part],
            }),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for tp in &plan.forgotten {
        match forgotten.last_mut() {
            Some(t) if t.topic == tp.topic => t.partitions.push(tp.partition),
            _ => forgotten.push(ForgottenTopic {
                topic: tp.topic.clone(),
                topic_id: ids.get(tp.topic.as_str()).copied().unwrap_or_default(),
                partitions: vec![tp.partition],
            }),
        }
    }
    FetchRequest {
        max_wait_ms: i32::try_from(cfg.fetch_max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: cfg.fetch_min_bytes,
        max_bytes: cfg.fetch_max_bytes,
        isolation_level: cfg.isolation_level.wire(),
        session_id: plan.session_id,
        session_epoch: plan.session_epoch,
        topics,
        forgotten_topics_data: forgotten,
        rack_id: cfg.client_rack.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// Buffer the records of an answer and apply its partition errors.
/// Returns true when metadata should be refreshed.
fn file_answer(
    shared: &Shared,
    broker: i32,
    parts: &BTreeMap<TopicPartition, (PartitionFetch, u64)>,
    resp: FetchResponse,
    by_id: &HashMap<Uuid, &str>,
    mut decoded: Decoded,
) -> bool {
    let cfg = &shared.config;
    let backoff = shared.client.backoff().delay_random(0);
    let max_age = shared.client.config().metadata_max_age;
    let max_decompressed = max_decompressed(cfg);
    let read_committed = cfg.isolation_level == IsolationLevel::ReadCommitted;
    let mut need_refresh = false;
    let mut arrived = false;
    let mut guard = shared.state();
    let st: &mut State = &mut guard;
    for (ti, t) in resp.responses.into_iter().enumerate() {
        // v13+ answers by id, older versions by name.
        let name = match by_id.get(&t.topic_id) {
            Some(n) if t.topic_id != Uuid::ZERO => (*n).to_string(),
            _ => t.topic,
        };
        let topic = st
            .topic_names
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Arc::from(name.as_str()));
        for (pi, pd) in t.partitions.into_iter().enumerate() {
            let tp = TopicPartition::new(name.clone(), pd.partition_index);
            let Some((_, generation)) = parts.get(&tp) else {
                continue;
            };
            let Some(p) = st.partitions.get_mut(&tp) else {
                continue; // unassigned while the fetch was in flight
            };
            if p.generation != *generation || p.in_flight != Some(broker) {
                continue; // sought, or taken over by another broker
            }
            let Some(position) = p.position else { continue };
            let code = ErrorCode(pd.error_code);
            if !code.is_ok() {
                match partition_error(&tp, position, code, cfg.auto_offset_reset) {
                    PartitionError::Reset(to) => {
                        if p.preferred_replica.take().is_some() {
                            // A follower may lag the leader: ask the leader.
                            continue;
                        }
                        tracing::warn!(partition = %tp, position, reset = ?to,
                            "offset out of range, resetting");
                        let g = st.next_generation();
                        if let Some(p) = st.partitions.get_mut(&tp) {
                            p.reposition(None, to, g);
                        }
                    }
                    PartitionError::Retry { refresh } => {
                        tracing::debug!(partition = %tp, ?code, "partition fetch error; will retry");
                        p.preferred_replica = None;
                        p.retry_at = Some(Instant::now() + backoff);
                        need_refresh |= refresh;
                    }
                    PartitionError::Fatal(e) => {
                        tracing::warn!(partition = %tp, error = %e, "partition fetch failed; it stops");
                        p.failed = Some(e);
                        arrived = true;
                    }
                }
                continue;
            }
            if pd.preferred_read_replica >= 0 && pd.preferred_read_replica != broker {
                // KIP-392: read from the replica the leader chose, for up
                // to metadata.max.age.ms (Java's rule).
                p.preferred_replica = Some((pd.preferred_read_replica, Instant::now() + max_age));
                continue;
            }
            let marks = (
                pd.high_watermark,
                pd.last_stable_offset,
                pd.log_start_offset,
            );
            let batches = match (decoded.remove(&(ti, pi)), pd.records) {
                (Some((bytes, next, batches)), _) => {
                    Some((next, (bytes, Batches::Decoded(batches.into_iter()))))
                }
                (None, Some(data)) if !data.is_empty() => Some((
                    next_fetch_offset(&data),
                    (
                        data.len(),
                        Batches::Lazy(
                            record::decode_batches(data, cfg.check_crcs)
                                .max_decompressed_size(max_decompressed),
                        ),
                    ),
                )),
                _ => None,
            };
            match batches {
                Some((next, batches)) => {
                    // Fetch on from the end of this data while it waits
                    // for poll; without a whole batch in it, wait for poll.
                    match next {
                        Some(n) if p.fetch_position.is_some_and(|f| n > f) => {
                            p.fetch_position = Some(n);
                        }
                        _ => p.hold = true,
                    }
                    let aborted =
                        aborted_filter(&pd_aborted(&pd.aborted_transactions), read_committed);
                    let cf = CompletedFetch::new(
                        tp,
                        topic.clone(),
                        broker,
                        *generation,
                        batches,
                        aborted,
                        marks,
                    );
                    *st.buffered_bytes.entry(broker).or_default() += cf.bytes;
                    st.buffer.push_back(cf);
                    arrived = true;
                }
                None => {
                    p.high_watermark = Some(pd.high_watermark);
                    if pd.last_stable_offset >= 0 {
                        p.last_stable_offset = Some(pd.last_stable_offset);
                    }
                    if pd.log_start_offset >= 0 {
                        p.log_start_offset = Some(pd.log_start_offset);
                    }
                    let end = if read_committed && pd.last_stable_offset >= 0 {
                        pd.last_stable_offset
                    } else {
                        pd.high_watermark
                    };
                    if position >= end && !p.eof_reported {
                        st.eof.push(tp);
                        arrived = true;
                    }
                }
            }
        }
    }
    drop(guard);
    if arrived {
        shared.data.notify_one();
    }
    need_refresh
}

type Aborted = Vec<(i64, i64)>;

fn pd_aborted(
    list: &Option<Vec<skotch_protocol::messages::fetch_response::AbortedTransaction>>,
) -> Aborted {
    list.iter()
        .flatten()
        .map(|a| (a.producer_id, a.first_offset))
        .collect()
}

/// read_committed: the broker lists the aborted transactions in the range
/// it returned (it sends none at read_uncommitted).
fn aborted_filter(aborted: &Aborted, read_committed: bool) -> AbortedTransactionFilter {
    if read_committed {
        AbortedTransactionFilter::new(aborted.iter().copied())
    } else {
        AbortedTransactionFilter::default()
    }
}

/// What a partition-level fetch error means.
#[derive(Debug)]
enum PartitionError {
    /// Move by `auto.offset.reset`.
    Reset(super::Offset),
    /// Fetch again after a backoff; `refresh` metadata first.
    Retry { refresh: bool },
    /// The partition stops until the application seeks.
    Fatal(Error),
}

fn partition_error(
    tp: &TopicPartition,
    position: i64,
    code: ErrorCode,
    reset: Option<super::Offset>,
) -> PartitionError {
    match code {
        ErrorCode::OFFSET_OUT_OF_RANGE => match reset {
            Some(to) => PartitionError::Reset(to),
            None => PartitionError::Fatal(Error::Broker {
                code,
                message: None,
                context: format!("fetch {tp} at offset {position} (auto.offset.reset=none)"),
            }),
        },
        // KIP-320: the broker's leader epoch is older than ours; it will
        // catch up.
        ErrorCode::UNKNOWN_LEADER_EPOCH => PartitionError::Retry { refresh: false },
        // Our metadata is behind (FENCED_LEADER_EPOCH), or the partition
        // moved.
        ErrorCode::FENCED_LEADER_EPOCH
        | ErrorCode::NOT_LEADER_OR_FOLLOWER
        | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::UNKNOWN_TOPIC_ID
        | ErrorCode::INCONSISTENT_TOPIC_ID
        | ErrorCode::LEADER_NOT_AVAILABLE
        | ErrorCode::REPLICA_NOT_AVAILABLE
        | ErrorCode::KAFKA_STORAGE_ERROR
        | ErrorCode::OFFSET_NOT_AVAILABLE => PartitionError::Retry { refresh: true },
        c if c.is_retriable() => PartitionError::Retry { refresh: true },
        _ => PartitionError::Fatal(Error::Broker {
            code,
            message: None,
            context: format!("fetch {tp} at offset {position}"),
        }),
    }
}

/// Partitions of this fetch that got no data are fetchable again.
fn release(shared: &Shared, broker: i32, parts: &BTreeMap<TopicPartition, (PartitionFetch, u64)>) {
    let mut st = shared.state();
    for (tp, (_, generation)) in parts {
        if let Some(p) = st.partitions.get_mut(tp) {
            if p.generation == *generation && p.in_flight == Some(broker) {
                p.in_flight = None;
            }
        }
    }
}

/// Refresh the metadata of `parts`' topics and wake every fetcher, so
/// that partitions that moved are picked up by their new leaders.
async fn refresh(shared: &Shared, parts: &BTreeMap<TopicPartition, (PartitionFetch, u64)>) {
    shared.client.invalidate_metadata();
    let mut topics: Vec<String> = parts.keys().map(|tp| tp.topic.clone()).collect();
    topics.dedup();
    if let Err(e) = shared.client.refresh_metadata(&topics).await {
        tracing::debug!(error = %e, "metadata refresh after a fetch error failed");
    }
    shared.work.notify_waiters();
}

/// Check positions after a leader change (KIP-320).
async fn validate(shared: &Shared, broker: i32, parts: Vec<(TopicPartition, u64, i64, i32, i32)>) {
    let req = leader_epoch::request(
        &parts
            .iter()
            .map(|(tp, _, _, epoch, current)| (tp.clone(), *epoch, *current))
            .collect::<Vec<_>>(),
    );
    let result: Result<Option<_>> = async {
        let conn = shared.client.connection(broker, ConnKind::Fetch).await?;
        let Ok(version) = conn.version::<OffsetForLeaderEpochRequest>() else {
            // A broker too old to answer: nothing can be checked.
            return Ok(None);
        };
        let timeout = shared.client.config().request_timeout;
        Ok(Some(conn.send_version(&req, version, timeout).await?))
    }
    .await;
    let (need_refresh, stopped) = apply_validation(shared, broker, &parts, &result);
    if stopped {
        shared.data.notify_one();
    }
    if need_refresh {
        shared.client.invalidate_metadata();
        let topics: Vec<String> = parts.iter().map(|(tp, ..)| tp.topic.clone()).collect();
        let _ = shared.client.refresh_metadata(&topics).await;
        shared.work.notify_waiters();
    }
}

/// File the answers of a validation; (refresh metadata, a partition stopped).
fn apply_validation(
    shared: &Shared,
    broker: i32,
    parts: &[(TopicPartition, u64, i64, i32, i32)],
    result: &Result<Option<skotch_protocol::messages::OffsetForLeaderEpochResponse>>,
) -> (bool, bool) {
    let reset = shared.config.auto_offset_reset;
    let backoff = shared.client.backoff().delay_random(0);
    let mut need_refresh = false;
    let mut stopped = false;
    let mut guard = shared.state();
    let st: &mut State = &mut guard;
    for (tp, generation, position, _, current) in parts {
        let verdict = match result {
            Ok(None) => Validation::Valid,
            Ok(Some(resp)) => match leader_epoch::find(resp, tp) {
                Some(r) => leader_epoch::judge(tp, *position, r),
                None => Validation::Retry { refresh: true },
            },
            Err(_) => Validation::Retry { refresh: true },
        };
        let next_gen = st.next_generation();
        let Some(p) = st.partitions.get_mut(tp) else {
            continue;
        };
        if p.generation != *generation || p.in_flight != Some(broker) {
            continue;
        }
        p.in_flight = None;
        match verdict {
            Validation::Valid => {
                p.needs_validation = false;
                p.fetch_epoch = *current;
            }
            Validation::Truncated { to } => match reset {
                Some(_) => {
                    tracing::warn!(partition = %tp, position, diverging = to,
                        "log truncation detected; going back to the first offset that may differ");
                    p.reposition(Some(to), super::Offset::At(to), next_gen);
                    p.fetch_epoch = *current;
                }
                None => {
                    p.failed = Some(Error::LogTruncation {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        position: *position,
                        diverging_offset: to,
                    });
                    stopped = true;
                }
            },
            Validation::Undefined => match reset {
                Some(to) => {
                    tracing::warn!(partition = %tp, position, reset = ?to,
                        "the new leader does not know the last record's epoch; resetting");
                    p.reposition(None, to, next_gen);
                }
                None => {
                    p.failed = Some(Error::Broker {
                        code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        message: None,
                        context: format!(
                            "check the position {position} of {tp} after a leader change (auto.offset.reset=none)"
                        ),
                    });
                    stopped = true;
                }
            },
            Validation::Retry { refresh } => {
                p.retry_at = Some(Instant::now() + backoff);
                need_refresh |= refresh;
            }
            Validation::Fatal(e) => {
                p.failed = Some(e);
                stopped = true;
            }
        }
    }
    (need_refresh, stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_errors_are_classified() {
        let tp = TopicPartition::new("t", 0);
        assert!(matches!(
            partition_error(
                &tp,
                5,
                ErrorCode::OFFSET_OUT_OF_RANGE,
                Some(super::super::Offset::Earliest)
            ),
            PartitionError::Reset(_)
        ));
        assert!(matches!(
            partition_error(&tp, 5, ErrorCode::OFFSET_OUT_OF_RANGE, None),
            PartitionError::Fatal(_)
        ));
        assert!(matches!(
            partition_error(&tp, 5, ErrorCode::FENCED_LEADER_EPOCH, None),
            PartitionError::Retry { refresh: true }
        ));
        assert!(matches!(
            partition_error(&tp, 5, ErrorCode::UNKNOWN_LEADER_EPOCH, None),
            PartitionError::Retry { refresh: false }
        ));
        assert!(matches!(
            partition_error(&tp, 5, ErrorCode::TOPIC_AUTHORIZATION_FAILED, None),
            PartitionError::Fatal(_)
        ));
    }
}
