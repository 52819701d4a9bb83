//! Fetch: whole batches from the leader's log, with the long poll
//! (`max_wait_ms`, `min_bytes`), the size limits (`max_bytes`,
//! `partition_max_bytes`, KIP-74) of the protocol guide, fetch sessions
//! (KIP-227, see [`fetch_session`](crate::fetch_session)) and the KIP-320
//! leader epoch checks.
//!
//! Per partition, in the broker's order (`Partition.getLocalLog` via
//! `ReplicaManager.readFromLocalLog`): an unknown topic id (v13+) is
//! UNKNOWN_TOPIC_ID, an unknown name or partition
//! UNKNOWN_TOPIC_OR_PARTITION; a `current_leader_epoch` below the
//! partition's is FENCED_LEADER_EPOCH, above it UNKNOWN_LEADER_EPOCH; then
//! a broker that does not lead the partition answers NOT_LEADER_OR_FOLLOWER;
//! an offset outside the log is OFFSET_OUT_OF_RANGE. A failed partition has
//! no records and -1 for its offsets (`FetchResponse.partitionResponse`);
//! from v16 NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH carry the
//! current leader and its endpoint (KIP-951, `KafkaApis.handleFetchRequest`).
//!
//! Isolation level: every replica being in sync at once, the high
//! watermark is the log end offset, and the mock has no transactions, so
//! the last stable offset is the high watermark and read_committed (1)
//! reads what read_uncommitted (0) reads, with an empty list of aborted
//! transactions (null for read_uncommitted, as the broker sends).
//!
//! Not simulated: the diverging epoch of `last_fetched_epoch` (only
//! followers send it), preferred read replicas (KIP-392), throttling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::fetch_response::{
    FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use skotch_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use skotch_protocol::Uuid;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::fetch_session::{Context, FetchParams, PartitionKey};

/// One pass over the partitions: each one's answer, the record bytes,
/// whether any partition failed (the broker answers at once then), and
/// the leaders to list as node endpoints (v16+).
struct Pass {
    partitions: Vec<(PartitionKey, PartitionData)>,
    bytes: usize,
    failed: bool,
    leaders: Vec<i32>,
}

/// Read every partition of `items` once.
fn read(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
    items: &[(PartitionKey, FetchParams)],
) -> Pass {
    let state = broker.shared.state();
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut pass = Pass {
        partitions: Vec::with_capacity(items.len()),
        bytes: 0,
        failed: false,
        leaders: Vec::new(),
    };
    for (key, params) in items {
        let mut out = PartitionData {
            partition_index: key.partition,
            ..Default::default()
        };
        let name: Option<&str> = if version >= 13 {
            state.topic_name(key.topic_id)
        } else {
            Some(&key.topic)
        };
        let topic = name.and_then(|n| state.topics.get(n));
        let part = topic.and_then(|t| t.partitions.get(usize::try_from(key.partition).ok()?));
        let injected = name.and_then(|n| {
            crate::fault::injected_error_where(
                broker,
                ApiKey::Fetch,
                Some((n, key.partition)),
                |c| !is_session_error(c),
            )
        });
        let error = match (topic, part) {
            _ if injected.is_some() => injected,
            (None, _) if version >= 13 => Some(ErrorCode::UNKNOWN_TOPIC_ID),
            (None, _) | (_, None) => Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            (Some(_), Some(part)) => {
                let epoch = params.current_leader_epoch;
                let code = if epoch >= 0 && epoch < part.leader_epoch {
                    // KIP-320: the client's epoch is older than ours.
                    Some(ErrorCode::FENCED_LEADER_EPOCH)
                } else if epoch > part.leader_epoch {
                    // KIP-320: the client knows a newer epoch than ours.
                    Some(ErrorCode::UNKNOWN_LEADER_EPOCH)
                } else if part.leader != broker.node_id {
                    Some(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                } else if !part.log.in_range(params.fetch_offset) {
                    Some(ErrorCode::OFFSET_OUT_OF_RANGE)
                } else {
                    let log = &part.log;
                    out.high_watermark = log.high_watermark();
                    out.last_stable_offset = log.high_watermark();
                    out.log_start_offset = log.log_start_offset();
                    // No transactions: nothing aborted (see module docs).
                    out.aborted_transactions = (req.isolation_level == 1).then(Vec::new);
                    let limit = usize::try_from(params.max_bytes)
                        .unwrap_or(0)
                        .min(max_bytes.saturating_sub(pass.bytes));
                    let data = log.read(params.fetch_offset, limit, pass.bytes == 0);
                    pass.bytes += data.len();
                    out.records = Some(data);
                    None
                };
                if version >= 16
                    && matches!(
                        code,
                        Some(ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::FENCED_LEADER_EPOCH)
                    )
                {
                    out.current_leader = LeaderIdAndEpoch {
                        leader_id: part.leader,
                        leader_epoch: part.leader_epoch,
                    };
                    if part.leader >= 0 && !pass.leaders.contains(&part.leader) {
                        pass.leaders.push(part.leader);
                    }
                }
                code
            }
        };
        if let Some(code) = error {
            pass.failed = true;
            out.error_code = code.code();
            out.high_watermark = -1;
            out.last_stable_offset = -1;
            out.log_start_offset = -1;
            out.aborted_transactions = None;
            out.records = Some(Bytes::new());
        }
        pass.partitions.push((key.clone(), out));
    }
    pass
}

/// The partitions a fetch names, as session keys, and the forgotten ones
/// (v7+). A topic's name is shared by its partitions' keys (one `Arc` per
/// topic entry of the request), so a long name is never copied per
/// partition.
fn requested(
    req: &FetchRequest,
    version: i16,
) -> (Vec<(PartitionKey, FetchParams)>, Vec<PartitionKey>) {
    let no_name: Arc<str> = Arc::from("");
    let name = |topic: &str| -> Arc<str> {
        if version >= 13 {
            no_name.clone()
        } else {
            Arc::from(topic)
        }
    };
    let id = |id: Uuid| if version >= 13 { id } else { Uuid::ZERO };
    let mut parts = Vec::new();
    for t in &req.topics {
        let topic = name(&t.topic);
        parts.extend(t.partitions.iter().map(|p| {
            (
                PartitionKey {
                    topic_id: id(t.topic_id),
                    topic: topic.clone(),
                    partition: p.partition,
                },
                FetchParams {
                    fetch_offset: p.fetch_offset,
                    current_leader_epoch: p.current_leader_epoch,
                    max_bytes: p.partition_max_bytes,
                },
            )
        }));
    }
    let mut forgotten = Vec::new();
    for t in &req.forgotten_topics_data {
        let topic = name(&t.topic);
        forgotten.extend(t.partitions.iter().map(|p| PartitionKey {
            topic_id: id(t.topic_id),
            topic: topic.clone(),
            partition: *p,
        }));
    }
    (parts, forgotten)
}

/// The answer's topics: consecutive partitions of one topic grouped, as
/// `FetchResponse.of` does.
fn topics(partitions: Vec<(PartitionKey, PartitionData)>) -> Vec<FetchableTopicResponse> {
    let mut out: Vec<FetchableTopicResponse> = Vec::new();
    for (key, data) in partitions {
        match out.last_mut() {
            Some(t) if *t.topic == *key.topic && t.topic_id == key.topic_id => {
                t.partitions.push(data)
            }
            _ => out.push(FetchableTopicResponse {
                topic: key.topic.to_string(),
                topic_id: key.topic_id,
                partitions: vec![data],
            }),
        }
    }
    out
}

/// The fetch-session errors, which a broker answers for the whole request
/// (KIP-227), never per partition.
fn is_session_error(c: ErrorCode) -> bool {
    c == ErrorCode::FETCH_SESSION_ID_NOT_FOUND
        || c == ErrorCode::INVALID_FETCH_SESSION_EPOCH
        || c == ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR
}

/// Answer a Fetch request: at once when `min_bytes` of records are there,
/// a partition failed, or the request names no partition; else when data
/// arrives or `max_wait_ms` has passed (protocol guide, FetchRequest).
pub(crate) async fn handle(broker: &Broker, req: &FetchRequest, version: i16) -> FetchResponse {
    let (parts, forgotten) = requested(req, version);
    // Before v7 there are no sessions (FetchMetadata.LEGACY: 0, -1).
    let (session_id, session_epoch) = if version >= 7 {
        (req.session_id, req.session_epoch)
    } else {
        (0, -1)
    };
    let uses_ids = version >= 13;
    // An injected fetch-session error answers the whole request (the
    // other injected errors are per partition, below). NOT_FOUND also
    // evicts the session, as the broker's cache would have.
    if let Some(code) =
        crate::fault::injected_request_error(broker, ApiKey::Fetch, is_session_error)
    {
        if code == ErrorCode::FETCH_SESSION_ID_NOT_FOUND {
            broker.fetch_sessions().remove(session_id);
        }
        return FetchResponse {
            error_code: code.code(),
            session_id: 0,
            throttle_time_ms: crate::fault::throttle_ms(),
            ..Default::default()
        };
    }
    let context = broker.fetch_sessions().context(
        session_id,
        session_epoch,
        uses_ids,
        &parts,
        &forgotten,
        Instant::now(),
    );
    let items = match &context {
        Context::Error(code) => {
            return FetchResponse {
                error_code: code.code(),
                session_id: 0,
                throttle_time_ms: crate::fault::throttle_ms(),
                ..Default::default()
            };
        }
        Context::Sessionless | Context::Full => &parts,
        Context::Incremental { partitions, .. } => partitions,
    };
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let pass = loop {
        // Registered before reading, so an append in between still wakes us.
        let notified = broker.shared.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let pass = read(broker, req, version, items);
        if pass.bytes >= min_bytes || pass.failed || items.is_empty() || Instant::now() >= deadline
        {
            break pass;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let node_endpoints = pass
        .leaders
        .iter()
        .filter_map(|id| broker.shared.brokers.iter().find(|b| b.node_id == *id))
        .map(|b| NodeEndpoint {
            node_id: b.node_id,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: None,
        })
        .collect();
    let mut partitions = pass.partitions;
    let mut resp = FetchResponse {
        throttle_time_ms: crate::fault::throttle_ms(),
        node_endpoints,
        ..Default::default()
    };
    match context {
        Context::Error(_) | Context::Sessionless => {}
        Context::Full => {
            resp.session_id =
                broker
                    .fetch_sessions()
                    .create(uses_ids, &parts, &partitions, Instant::now());
        }
        Context::Incremental { id, epoch, .. } => {
            resp.session_id = id;
            let finished = broker
                .fetch_sessions()
                .finish_incremental(id, epoch, &mut partitions);
            if let Err(code) = finished {
                resp.error_code = code.code();
                partitions.clear();
                resp.node_endpoints.clear();
            }
        }
    }
    resp.responses = topics(partitions);
    resp
}

/// About how many bytes of a list go into a request log summary; the rest
/// is counted, so a huge or hostile request never makes a huge log entry.
const SUMMARY_LIST_BYTES: usize = 1024;

/// A topic name cut to 64 characters for a summary (real names have at
/// most 249).
pub(crate) fn short(name: &str) -> &str {
    match name.char_indices().nth(64) {
        Some((at, _)) => &name[..at],
        None => name,
    }
}

/// `items` (of which there are `total`) joined with ", ", up to about
/// [`SUMMARY_LIST_BYTES`], then `+N more`. Items past the limit are not
/// formatted.
pub(crate) fn bounded_list(total: usize, items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for item in items {
        if out.len() >= SUMMARY_LIST_BYTES {
            break;
        }
        if shown > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
        shown += 1;
    }
    if shown < total {
        out.push_str(&format!(" +{} more", total - shown));
    }
    out
}

/// A topic as a summary names it: its name, else its id (v13+).
fn topic_label(name: &str, id: Uuid) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        short(name).to_string()
    }
}

/// Summary for the request log: the session, and `topic-partition@offset`
/// per partition (`forgotten=[...]` when any).
pub(crate) fn summary(req: &FetchRequest) -> String {
    let total: usize = req.topics.iter().map(|t| t.partitions.len()).sum();
    let parts = req.topics.iter().flat_map(|t| {
        let topic = topic_label(&t.topic, t.topic_id);
        t.partitions
            .iter()
            .map(move |p| format!("{topic}-{}@{}", p.partition, p.fetch_offset))
    });
    let mut s = format!(
        "max_wait={} min_bytes={} max_bytes={} isolation={} session={}/{} [{}]",
        req.max_wait_ms,
        req.min_bytes,
        req.max_bytes,
        req.isolation_level,
        req.session_id,
        req.session_epoch,
        bounded_list(total, parts)
    );
    let forgotten: usize = req
        .forgotten_topics_data
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    if forgotten > 0 {
        let list = req.forgotten_topics_data.iter().flat_map(|t| {
            let topic = topic_label(&t.topic, t.topic_id);
            t.partitions.iter().map(move |p| format!("{topic}-{p}"))
        });
        s.push_str(&format!(" forgotten=[{}]", bounded_list(forgotten, list)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    #[test]
    fn summaries_stay_short() {
        let req = FetchRequest {
            session_id: 3,
            session_epoch: 7,
            topics: vec![FetchTopic {
                topic: "x".repeat(30_000),
                partitions: (0..100_000)
                    .map(|p| FetchPartition {
                        partition: p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = summary(&req);
        assert!(s.len() < 2 * SUMMARY_LIST_BYTES, "{}", s.len());
        assert!(s.contains("session=3/7"));
        assert!(s.ends_with("more]"), "{s}");
        assert_eq!(bounded_list(2, ["a".into(), "b".into()]), "a, b");
        assert_eq!(short("é".repeat(100).as_str()).chars().count(), 64);
    }
}
