//! OffsetForLeaderEpoch (KIP-101, KIP-279, KIP-320): where a leader epoch
//! ended, so that a consumer after a leader change (or a follower) can
//! tell whether the log it read was truncated.
//!
//! Per partition, as the broker's `ReplicaManager.lastOffsetForLeaderEpoch`
//! and `Partition.lastOffsetForLeaderEpoch`:
//! - a partition the cluster does not have: UNKNOWN_TOPIC_OR_PARTITION;
//! - `current_leader_epoch` (-1: not checked) below the partition's:
//!   FENCED_LEADER_EPOCH, above it: UNKNOWN_LEADER_EPOCH (checked before
//!   leadership, `Partition.getLocalLog`);
//! - a broker that does not lead the partition: NOT_LEADER_OR_FOLLOWER
//!   (the broker always requires the leader here, `fetchOnlyFromLeader`,
//!   whatever `replica_id` says);
//! - else the end offset of `leader_epoch` from the leader epoch cache
//!   ([`PartitionLog::end_offset_for_epoch`](crate::partition_log::PartitionLog::end_offset_for_epoch)):
//!   the current epoch ends at the log end offset, an older epoch where
//!   the next cached epoch starts, with the largest cached epoch at or
//!   below the requested one; an undefined answer is -1/-1 without error.

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use skotch_protocol::messages::{
    ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use crate::broker::Broker;
use crate::fetch::{bounded_list, short};

/// Answer an OffsetForLeaderEpoch request.
pub(crate) fn handle(
    broker: &Broker,
    req: &OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let state = broker.shared.state();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = state.topics.get(&t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = EpochEndOffset {
                        partition: p.partition,
                        ..Default::default()
                    };
                    let part =
                        topic.and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?));
                    let injected = crate::fault::injected_error(
                        broker,
                        ApiKey::OffsetForLeaderEpoch,
                        Some((&t.topic, p.partition)),
                    );
                    let code = match part {
                        _ if injected.is_some() => injected,
                        None => Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                        Some(part) => {
                            let current = p.current_leader_epoch;
                            if current >= 0 && current < part.leader_epoch {
                                Some(ErrorCode::FENCED_LEADER_EPOCH)
                            } else if current > part.leader_epoch {
                                Some(ErrorCode::UNKNOWN_LEADER_EPOCH)
                            } else if part.leader != broker.node_id {
                                Some(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                            } else {
                                if let Some((epoch, offset)) = part
                                    .log
                                    .end_offset_for_epoch(p.leader_epoch, part.leader_epoch)
                                {
                                    out.leader_epoch = epoch;
                                    out.end_offset = offset;
                                }
                                None
                            }
                        }
                    };
                    if let Some(code) = code {
                        out.error_code = code.code();
                    }
                    out
                })
                .collect();
            OffsetForLeaderTopicResult {
                topic: t.topic.clone(),
                partitions,
            }
        })
        .collect();
    OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Summary for the request log: `topic-partition@epoch` (and the current
/// leader epoch when checked).
pub(crate) fn summary(req: &OffsetForLeaderEpochRequest) -> String {
    let total = req.topics.iter().map(|t| t.partitions.len()).sum();
    let parts = req.topics.iter().flat_map(|t| {
        let topic = short(&t.topic);
        t.partitions.iter().map(move |p| {
            let mut s = format!("{topic}-{}@{}", p.partition, p.leader_epoch);
            if p.current_leader_epoch >= 0 {
                s.push_str(&format!(" current={}", p.current_leader_epoch));
            }
            s
        })
    });
    format!(
        "replica={} [{}]",
        req.replica_id,
        bounded_list(total, parts)
    )
}
