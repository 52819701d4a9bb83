//! Fetch: whole batches from the leader's log, with the long poll
//! (`max_wait_ms`, `min_bytes`) and the size limits (`max_bytes`,
//! `partition_max_bytes`, KIP-74) of the protocol guide.
//!
//! Fetch sessions (KIP-227) are not kept yet: every answer has session id
//! 0, which KIP-227 defines as "the broker did not create a session", so
//! clients send full fetches every time. A request naming a session id is
//! answered FETCH_SESSION_ID_NOT_FOUND, which makes a client start over
//! with a full fetch.
//!
//! Every replica being in sync at once, the high watermark is the log end
//! offset, and without transactions the last stable offset is too.

use std::time::Duration;

use bytes::Bytes;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::fetch_response::{
    FetchableTopicResponse, LeaderIdAndEpoch, PartitionData,
};
use skotch_protocol::messages::{FetchRequest, FetchResponse};
use skotch_protocol::Uuid;
use tokio::time::Instant;

use crate::broker::Broker;

/// One pass over the partitions: the answer, its record bytes, and
/// whether any partition failed (the broker answers at once then).
fn read(broker: &Broker, req: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    let state = broker.shared.state();
    let max_bytes = if version >= 3 {
        usize::try_from(req.max_bytes).unwrap_or(0)
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut failed = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = if version >= 13 {
            state.topic_name(t.topic_id).map(str::to_string)
        } else {
            Some(t.topic.clone())
        };
        let topic = name.as_deref().and_then(|n| state.topics.get(n));
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut out = PartitionData {
                partition_index: p.partition,
                ..Default::default()
            };
            let part = topic.and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?));
            let error = match (topic, part) {
                (None, _) if version >= 13 => Some(ErrorCode::UNKNOWN_TOPIC_ID),
                (None, _) | (_, None) => Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                (Some(_), Some(part)) => {
                    if part.leader != broker.node_id {
                        if version >= 12 {
                            out.current_leader = LeaderIdAndEpoch {
                                leader_id: part.leader,
                                leader_epoch: part.leader_epoch,
                            };
                        }
                        Some(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                    } else if p.current_leader_epoch >= 0
                        && p.current_leader_epoch < part.leader_epoch
                    {
                        // KIP-320: the client's epoch is older than ours.
                        Some(ErrorCode::FENCED_LEADER_EPOCH)
                    } else if p.current_leader_epoch > part.leader_epoch {
                        // KIP-320: the client knows a newer epoch than ours.
                        Some(ErrorCode::UNKNOWN_LEADER_EPOCH)
                    } else {
                        let log = &part.log;
                        out.high_watermark = log.high_watermark();
                        out.last_stable_offset = log.high_watermark();
                        out.log_start_offset = log.log_start_offset();
                        if req.isolation_level == 1 {
                            out.aborted_transactions = Some(Vec::new());
                        }
                        if log.in_range(p.fetch_offset) {
                            let limit = usize::try_from(p.partition_max_bytes)
                                .unwrap_or(0)
                                .min(max_bytes.saturating_sub(total));
                            let data = log.read(p.fetch_offset, limit, total == 0);
                            total += data.len();
                            out.records = Some(data);
                            None
                        } else {
                            Some(ErrorCode::OFFSET_OUT_OF_RANGE)
                        }
                    }
                }
            };
            if let Some(code) = error {
                failed = true;
                out.error_code = code.code();
                out.records = Some(Bytes::new());
            }
            partitions.push(out);
        }
        responses.push(FetchableTopicResponse {
            topic: if version >= 13 {
                String::new()
            } else {
                t.topic.clone()
            },
            topic_id: if version >= 13 {
                t.topic_id
            } else {
                Uuid::ZERO
            },
            partitions,
        });
    }
    let resp = FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        responses,
        node_endpoints: Vec::new(),
    };
    (resp, total, failed)
}

/// Answer a Fetch request: at once when `min_bytes` of records are there,
/// a partition failed, or the request names no partition; else when data
/// arrives or `max_wait_ms` has passed (protocol guide, FetchRequest).
pub(crate) async fn handle(broker: &Broker, req: &FetchRequest, version: i16) -> FetchResponse {
    if version >= 7 && req.session_id != 0 {
        return FetchResponse {
            error_code: ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code(),
            session_id: 0,
            ..Default::default()
        };
    }
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    loop {
        // Registered before reading, so an append in between still wakes us.
        let notified = broker.shared.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (resp, bytes, failed) = read(broker, req, version);
        if bytes >= min_bytes || failed || req.topics.is_empty() || Instant::now() >= deadline {
            return resp;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Summary for the request log.
pub(crate) fn summary(req: &FetchRequest) -> String {
    let mut parts = Vec::new();
    for t in &req.topics {
        let topic = if t.topic.is_empty() {
            t.topic_id.to_string()
        } else {
            t.topic.clone()
        };
        for p in &t.partitions {
            parts.push(format!("{topic}-{}@{}", p.partition, p.fetch_offset));
        }
    }
    format!(
        "max_wait={} min_bytes={} max_bytes={} session={}/{} [{}]",
        req.max_wait_ms,
        req.min_bytes,
        req.max_bytes,
        req.session_id,
        req.session_epoch,
        parts.join(", ")
    )
}
