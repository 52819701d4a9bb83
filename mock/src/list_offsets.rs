//! ListOffsets: earliest (-2, and -4 earliest local, KIP-405, the same
//! here), latest (-1), max timestamp (-3, KIP-734) and by timestamp
//! (KIP-79: the first record at or after it), at the leader, with the
//! leader epoch (KIP-320).
//!
//! The leader epoch answered is the broker's (`UnifiedLog.fetchOffsetByTimestamp`):
//! the latest epoch of the cache for latest, the earliest entry's for
//! earliest, the batch's for a timestamp. With `isolation_level`
//! read_committed (1) latest is the last stable offset, the high watermark
//! here (the mock has no transactions).

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use skotch_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::fetch::{bounded_list, short};

/// Special timestamps (the protocol guide's ListOffsets request).
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Answer a ListOffsets request.
pub(crate) fn handle(
    broker: &Broker,
    req: &ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let state = broker.shared.state();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = state.topics.get(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse {
                        partition_index: p.partition_index,
                        timestamp: -1,
                        offset: -1,
                        ..Default::default()
                    };
                    if let Some(code) = crate::fault::injected_error(
                        broker,
                        ApiKey::ListOffsets,
                        Some((&t.name, p.partition_index)),
                    ) {
                        out.error_code = code.code();
                        return out;
                    }
                    let part = topic
                        .and_then(|t| t.partitions.get(usize::try_from(p.partition_index).ok()?));
                    let Some(part) = part else {
                        out.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
                        return out;
                    };
                    // The epoch check comes before the leader check
                    // (Partition.getLocalLog).
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < part.leader_epoch {
                        out.error_code = ErrorCode::FENCED_LEADER_EPOCH.code();
                        return out;
                    }
                    if p.current_leader_epoch > part.leader_epoch {
                        out.error_code = ErrorCode::UNKNOWN_LEADER_EPOCH.code();
                        return out;
                    }
                    if part.leader != broker.node_id {
                        out.error_code = ErrorCode::NOT_LEADER_OR_FOLLOWER.code();
                        return out;
                    }
                    let log = &part.log;
                    let epoch = part.leader_epoch;
                    let found = match p.timestamp {
                        LATEST => Some((log.high_watermark(), -1, epoch)),
                        EARLIEST | EARLIEST_LOCAL => Some((
                            log.log_start_offset(),
                            -1,
                            log.earliest_epoch(epoch).unwrap_or(-1),
                        )),
                        MAX_TIMESTAMP => log.max_timestamp(),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => {
                            out.error_code = ErrorCode::INVALID_REQUEST.code();
                            return out;
                        }
                    };
                    if let Some((offset, ts, leader_epoch)) = found {
                        out.offset = offset;
                        out.timestamp = ts;
                        if version >= 4 {
                            out.leader_epoch = leader_epoch;
                        }
                    }
                    out
                })
                .collect();
            ListOffsetsTopicResponse {
                name: t.name.clone(),
                partitions,
            }
        })
        .collect();
    ListOffsetsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Summary for the request log: `topic-partition@timestamp`.
pub(crate) fn summary(req: &ListOffsetsRequest) -> String {
    let total = req.topics.iter().map(|t| t.partitions.len()).sum();
    let parts = req.topics.iter().flat_map(|t| {
        let topic = short(&t.name);
        t.partitions
            .iter()
            .map(move |p| format!("{topic}-{}@{}", p.partition_index, p.timestamp))
    });
    format!(
        "isolation={} [{}]",
        req.isolation_level,
        bounded_list(total, parts)
    )
}
