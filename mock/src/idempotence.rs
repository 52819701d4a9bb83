//! The broker's side of the idempotent producer: per partition, per
//! producer id, the epoch and the last five batches appended, and the
//! sequence checks a batch must pass before it is appended.
//!
//! Sources: KIP-98 ("Idempotent Producer": sequence numbers per producer
//! id and partition, exactly-once per partition), KIP-360 (an unknown
//! producer state no longer fails a write: "accept writes with any
//! sequence number" when the broker has no epoch for the producer), and
//! the broker's `ProducerStateManager.NUM_BATCHES_TO_RETAIN` = 5
//! (duplicates are detected among the last five batches, which is why a
//! producer keeps at most five in flight).

use std::collections::{HashMap, VecDeque};

use skotch_protocol::error::ErrorCode;

/// Batches remembered per producer and partition for duplicate detection
/// (Kafka's `ProducerStateManager.NUM_BATCHES_TO_RETAIN`).
pub(crate) const BATCHES_TO_RETAIN: usize = 5;

/// A batch as the sequence checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSeq {
    /// Producer epoch.
    pub epoch: i16,
    /// First sequence.
    pub first_seq: i32,
    /// Last sequence (`first_seq + count - 1`, wrapping past `i32::MAX`).
    pub last_seq: i32,
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Append it, then call [`ProducerStates::record`].
    Append,
    /// A duplicate of a batch appended at this base offset: acknowledge it
    /// with that offset and append nothing (KIP-98).
    Duplicate(i64),
    /// Refuse it with this error.
    Reject(ErrorCode),
}

#[derive(Debug, Clone, Copy)]
struct Appended {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct Entry {
    epoch: i16,
    batches: VecDeque<Appended>,
}

/// The producer states of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, Entry>,
}

/// The next sequence after `seq`: sequences wrap to 0 after `i32::MAX`
/// (Kafka's `DefaultRecordBatch.incrementSequence`).
pub(crate) fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (last_seq == i32::MAX && next_seq == 0)
}

/// The last sequence of a batch of `count` records starting at `first`.
pub(crate) fn last_sequence(first: i32, count: i32) -> i32 {
    // Wraps as incrementSequence: past i32::MAX it restarts from 0.
    let last = i64::from(first) + i64::from(count) - 1;
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

impl ProducerStates {
    /// Check a batch of producer `pid` against its state.
    pub fn check(&self, pid: i64, batch: BatchSeq) -> Verdict {
        let Some(entry) = self.producers.get(&pid) else {
            // No state for this producer on this partition: KIP-360 accepts
            // any sequence (the state may have been removed by retention).
            return Verdict::Append;
        };
        // A lower epoch is a zombie: INVALID_PRODUCER_EPOCH (Kafka 2.7+
        // returns it instead of PRODUCER_FENCED for produce, KIP-588).
        if batch.epoch < entry.epoch {
            return Verdict::Reject(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if batch.epoch > entry.epoch {
            // A new epoch starts at sequence 0 (KIP-98; KIP-360 bumps).
            return if batch.first_seq == 0 {
                Verdict::Append
            } else {
                Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        // Same epoch: a batch equal to one of the last five is a duplicate
        // (KIP-98, ProducerStateEntry.findDuplicateBatch).
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq)
        {
            return Verdict::Duplicate(dup.base_offset);
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, batch.first_seq) => {
                Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            }
            _ => Verdict::Append,
        }
    }

    /// Remember a batch that was appended at `base_offset`.
    pub fn record(&mut self, pid: i64, batch: BatchSeq, base_offset: i64) {
        let entry = self.producers.entry(pid).or_default();
        if batch.epoch != entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(Appended {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            base_offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(epoch: i16, first: i32, count: i32) -> BatchSeq {
        BatchSeq {
            epoch,
            first_seq: first,
            last_seq: last_sequence(first, count),
        }
    }

    fn append(s: &mut ProducerStates, pid: i64, batch: BatchSeq, offset: i64) {
        assert_eq!(s.check(pid, batch), Verdict::Append);
        s.record(pid, batch, offset);
    }

    #[test]
    fn in_order_batches_append_and_gaps_are_refused() {
        let mut s = ProducerStates::default();
        append(&mut s, 1, b(0, 0, 10), 0);
        append(&mut s, 1, b(0, 10, 5), 10);
        assert_eq!(
            s.check(1, b(0, 16, 1)),
            Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        // Another producer is independent.
        append(&mut s, 2, b(0, 7, 1), 15);
    }

    #[test]
    fn duplicates_among_the_last_five_batches() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            append(&mut s, 1, b(0, i * 2, 2), i64::from(i) * 2);
        }
        // Batches 1..=5 are remembered, batch 0 has been forgotten.
        for i in 1..6 {
            assert_eq!(
                s.check(1, b(0, i * 2, 2)),
                Verdict::Duplicate(i64::from(i) * 2)
            );
        }
        assert_eq!(
            s.check(1, b(0, 0, 2)),
            Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn epochs() {
        let mut s = ProducerStates::default();
        append(&mut s, 1, b(3, 0, 1), 0);
        append(&mut s, 1, b(3, 1, 1), 1);
        assert_eq!(
            s.check(1, b(2, 2, 1)),
            Verdict::Reject(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(
            s.check(1, b(4, 2, 1)),
            Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        append(&mut s, 1, b(4, 0, 1), 2);
        // The old epoch's batches are forgotten.
        assert_eq!(
            s.check(1, b(3, 1, 1)),
            Verdict::Reject(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(last_sequence(i32::MAX, 1), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 3), 1);
        assert!(in_sequence(i32::MAX, 0));
        let mut s = ProducerStates::default();
        append(&mut s, 1, b(0, i32::MAX - 1, 2), 0);
        append(&mut s, 1, b(0, 0, 1), 2);
    }
}
