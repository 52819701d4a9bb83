//! read_committed filtering (KIP-98): which batches of a fetched partition
//! belong to aborted transactions.
//!
//! A Fetch response at `isolation_level` read_committed carries, per
//! partition, the transactions that were aborted in the returned range:
//! `(producer_id, first_offset)` pairs. The records stay in the log; the
//! consumer drops them. Walking batches in offset order:
//!
//! 1. every aborted transaction whose `first_offset` is at or before the
//!    batch's last offset becomes active for its producer;
//! 2. a control batch holding an ABORT marker of an active producer ends
//!    that producer's aborted transaction;
//! 3. a transactional data batch of an active producer is skipped.
//!
//! Control batches themselves are never handed to users, whatever the
//! isolation level; the consumer skips them separately.
//!
//! Source: KIP-98, and the Java consumer's `CompletedFetch`
//! (`consumeAbortedTransactionsUpTo`, `containsAbortMarker`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use super::{ControlRecordType, RecordBatch};

/// Decides, batch by batch in offset order, which batches of one
/// partition's fetched data belong to aborted transactions.
#[derive(Debug, Clone, Default)]
pub struct AbortedTransactionFilter {
    /// Aborted transactions not yet reached: (first_offset, producer_id),
    /// smallest first offset on top.
    pending: BinaryHeap<Reverse<(i64, i64)>>,
    /// Producers whose aborted transaction is in progress.
    active: HashSet<i64>,
}

impl AbortedTransactionFilter {
    /// A filter for the aborted transactions of a Fetch response partition
    /// (`aborted_transactions`, as `(producer_id, first_offset)` pairs; any
    /// order). An empty list filters nothing.
    pub fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        Self {
            pending: aborted
                .into_iter()
                .map(|(producer_id, first_offset)| Reverse((first_offset, producer_id)))
                .collect(),
            active: HashSet::new(),
        }
    }

    /// Whether `batch`'s records belong to an aborted transaction and must
    /// not reach the user. Call once for every batch, in offset order,
    /// control batches included (their ABORT markers end transactions).
    /// Returns false for control batches (they carry no user records; the
    /// caller skips them anyway) and for non-transactional batches.
    pub fn is_aborted(&mut self, batch: &RecordBatch) -> bool {
        if batch.producer_id < 0 {
            return false;
        }
        let last = batch.last_offset();
        while let Some(Reverse((first_offset, producer_id))) = self.pending.peek().copied() {
            if first_offset > last {
                break;
            }
            self.pending.pop();
            self.active.insert(producer_id);
        }
        if batch.is_control() {
            let abort = matches!(
                batch.control_record(),
                Some(Ok(c)) if c.kind == ControlRecordType::Abort
            );
            if abort {
                self.active.remove(&batch.producer_id);
            }
            return false;
        }
        batch.is_transactional() && self.active.contains(&batch.producer_id)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::record::{
        encode_batch, BatchHeader, ControlRecord, Record, ATTRIBUTE_CONTROL,
        ATTRIBUTE_TRANSACTIONAL,
    };

    /// A batch of `n` records at `base` by `pid`; transactional unless
    /// `pid` is -1.
    fn data(base: i64, n: i32, pid: i64) -> RecordBatch {
        let records: Vec<Record> = (0..i64::from(n))
            .map(|i| Record {
                offset: base + i,
                value: Some(bytes::Bytes::from_static(b"v")),
                ..Record::default()
            })
            .collect();
        let h = BatchHeader {
            base_offset: base,
            attributes: if pid >= 0 { ATTRIBUTE_TRANSACTIONAL } else { 0 },
            last_offset_delta: n - 1,
            producer_id: pid,
            producer_epoch: if pid >= 0 { 0 } else { -1 },
            ..BatchHeader::default()
        };
        let mut out = BytesMut::new();
        encode_batch(&h, &records, &mut out).unwrap();
        RecordBatch::decode(out.freeze(), true).unwrap()
    }

    fn marker(offset: i64, pid: i64, kind: ControlRecordType) -> RecordBatch {
        let key = ControlRecord { version: 0, kind }.encode_key();
        let rec = Record {
            offset,
            key: Some(key),
            value: Some(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            ..Record::default()
        };
        let h = BatchHeader {
            base_offset: offset,
            attributes: ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL,
            producer_id: pid,
            producer_epoch: 0,
            ..BatchHeader::default()
        };
        let mut out = BytesMut::new();
        encode_batch(&h, &[rec], &mut out).unwrap();
        RecordBatch::decode(out.freeze(), true).unwrap()
    }

    #[test]
    fn interleaved_committed_and_aborted_transactions() {
        // Producer 1 aborts offsets 0-2 (marker at 6); producer 2 commits
        // 3-4 (marker at 7); a plain batch at 5; producer 1 then commits
        // 8 (marker at 9).
        let log = [
            data(0, 2, 1),
            data(2, 1, 1),
            data(3, 2, 2),
            data(5, 1, -1),
            marker(6, 1, ControlRecordType::Abort),
            marker(7, 2, ControlRecordType::Commit),
            data(8, 1, 1),
            marker(9, 1, ControlRecordType::Commit),
        ];
        let mut f = AbortedTransactionFilter::new([(1, 0)]);
        let got: Vec<bool> = log.iter().map(|b| f.is_aborted(b)).collect();
        assert_eq!(got, [true, true, false, false, false, false, false, false]);
        // Without the list (read_uncommitted) nothing is aborted.
        let mut none = AbortedTransactionFilter::new([]);
        assert!(log.iter().all(|b| !none.is_aborted(b)));
    }

    #[test]
    fn an_abort_reached_midway_and_two_aborts_by_one_producer() {
        // Producer 7 commits 0, then aborts 2-3, then aborts 5.
        let mut f = AbortedTransactionFilter::new([(7, 5), (7, 2)]);
        assert!(!f.is_aborted(&data(0, 1, 7)));
        assert!(!f.is_aborted(&marker(1, 7, ControlRecordType::Commit)));
        assert!(f.is_aborted(&data(2, 2, 7)));
        assert!(!f.is_aborted(&marker(4, 7, ControlRecordType::Abort)));
        assert!(f.is_aborted(&data(5, 1, 7)));
        assert!(!f.is_aborted(&marker(6, 7, ControlRecordType::Abort)));
        assert!(!f.is_aborted(&data(7, 1, 7)));
    }

    #[test]
    fn idempotent_but_not_transactional_batches_are_kept() {
        // A producer id without the transactional bit (idempotence only)
        // is never filtered, even if listed.
        let mut b = data(0, 1, 3);
        let mut f = AbortedTransactionFilter::new([(3, 0)]);
        b.attributes &= !ATTRIBUTE_TRANSACTIONAL;
        assert!(!f.is_aborted(&b));
    }
}
