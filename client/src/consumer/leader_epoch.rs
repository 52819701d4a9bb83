//! KIP-320: checking a position after the partition's leader changed.
//!
//! Each record batch carries the leader epoch it was written under. When
//! metadata shows a new leader epoch for a partition the consumer has read
//! from, the consumer asks the new leader (OffsetForLeaderEpoch) where the
//! epoch of its last record ends in the new leader's log. An end below the
//! position means the log was truncated (an unclean leader election threw
//! away records the consumer already read): with `auto.offset.reset` set
//! the consumer goes back to that end offset, the first offset that may
//! differ, as Java's `SubscriptionState.maybeCompleteValidation` does;
//! without it the partition stops with [`Error::LogTruncation`]. Fetches
//! carry the epoch from metadata (`current_leader_epoch`), so a broker with
//! another epoch refuses them (FENCED_LEADER_EPOCH: our metadata is old;
//! UNKNOWN_LEADER_EPOCH: the broker's is).

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use skotch_protocol::messages::offset_for_leader_epoch_response::EpochEndOffset;
use skotch_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::TopicPartition;
use crate::error::Error;

/// What the answer for one partition means.
#[derive(Debug, Clone)]
pub(crate) enum Validation {
    /// The log holds the position: fetch on.
    Valid,
    /// The log diverges from `to` on, below the position.
    Truncated { to: i64 },
    /// The leader does not know the epoch at all (it has no records of it
    /// or older): the position cannot be checked; reset as for an offset
    /// out of range.
    Undefined,
    /// Try again later; `refresh` when our metadata is behind.
    Retry { refresh: bool },
    /// The partition stops.
    Fatal(Error),
}

/// Judge the answer `r` for `tp` at `position`.
pub(crate) fn judge(tp: &TopicPartition, position: i64, r: &EpochEndOffset) -> Validation {
    let code = ErrorCode(r.error_code);
    if code.is_ok() {
        if r.end_offset < 0 || r.leader_epoch < 0 {
            return Validation::Undefined;
        }
        return if r.end_offset < position {
            Validation::Truncated { to: r.end_offset }
        } else {
            Validation::Valid
        };
    }
    match code {
        ErrorCode::UNKNOWN_LEADER_EPOCH => Validation::Retry { refresh: false },
        ErrorCode::FENCED_LEADER_EPOCH
        | ErrorCode::NOT_LEADER_OR_FOLLOWER
        | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::LEADER_NOT_AVAILABLE
        | ErrorCode::KAFKA_STORAGE_ERROR
        | ErrorCode::REPLICA_NOT_AVAILABLE => Validation::Retry { refresh: true },
        c if c.is_retriable() => Validation::Retry { refresh: true },
        _ => Validation::Fatal(Error::Broker {
            code,
            message: None,
            context: format!("check the position of {tp} (OffsetForLeaderEpoch)"),
        }),
    }
}

/// The request asking where each `(tp, offset epoch, current leader
/// epoch)` ends.
pub(crate) fn request(parts: &[(TopicPartition, i32, i32)]) -> OffsetForLeaderEpochRequest {
    let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
    for (tp, epoch, current) in parts {
        let p = OffsetForLeaderPartition {
            partition: tp.partition,
            current_leader_epoch: *current,
            leader_epoch: *epoch,
        };
        match topics.last_mut() {
            Some(t) if t.topic == tp.topic => t.partitions.push(p),
            _ => topics.push(OffsetForLeaderTopic {
                topic: tp.topic.clone(),
                partitions: vec![p],
            }),
        }
    }
    OffsetForLeaderEpochRequest {
        // A consumer, not a replica (v3+).
        replica_id: -1,
        topics,
    }
}

/// The answer for `tp`, if the response has one.
pub(crate) fn find<'a>(
    resp: &'a OffsetForLeaderEpochResponse,
    tp: &TopicPartition,
) -> Option<&'a EpochEndOffset> {
    resp.topics
        .iter()
        .filter(|t| t.topic == tp.topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition == tp.partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: ErrorCode, epoch: i32, end: i64) -> EpochEndOffset {
        EpochEndOffset {
            error_code: code.0,
            partition: 0,
            leader_epoch: epoch,
            end_offset: end,
        }
    }

    #[test]
    fn truncation_below_the_position_is_detected() {
        let tp = TopicPartition::new("t", 0);
        assert!(matches!(
            judge(&tp, 100, &answer(ErrorCode::NONE, 3, 80)),
            Validation::Truncated { to: 80 }
        ));
        assert!(matches!(
            judge(&tp, 100, &answer(ErrorCode::NONE, 3, 100)),
            Validation::Valid
        ));
        assert!(matches!(
            judge(&tp, 100, &answer(ErrorCode::NONE, 5, 250)),
            Validation::Valid
        ));
        assert!(matches!(
            judge(&tp, 100, &answer(ErrorCode::NONE, -1, -1)),
            Validation::Undefined
        ));
    }

    #[test]
    fn epoch_errors_retry_and_others_stop() {
        let tp = TopicPartition::new("t", 0);
        assert!(matches!(
            judge(&tp, 1, &answer(ErrorCode::FENCED_LEADER_EPOCH, -1, -1)),
            Validation::Retry { refresh: true }
        ));
        assert!(matches!(
            judge(&tp, 1, &answer(ErrorCode::UNKNOWN_LEADER_EPOCH, -1, -1)),
            Validation::Retry { refresh: false }
        ));
        assert!(matches!(
            judge(
                &tp,
                1,
                &answer(ErrorCode::TOPIC_AUTHORIZATION_FAILED, -1, -1)
            ),
            Validation::Fatal(_)
        ));
    }

    #[test]
    fn the_request_groups_partitions_by_topic() {
        let r = request(&[
            (TopicPartition::new("a", 0), 1, 2),
            (TopicPartition::new("a", 1), 1, 2),
            (TopicPartition::new("b", 0), 4, 4),
        ]);
        assert_eq!(r.replica_id, -1);
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[1].partitions[0].leader_epoch, 4);
    }
}
