//! One partition's log: record batches in offset order, each stored as the
//! producer sent it with the base offset and partition leader epoch the
//! mock assigned written in (neither is covered by the CRC, which starts at
//! `attributes`; protocol guide, "Record Batch").
//!
//! Every replica is in sync at once (there is no replication to wait for),
//! so the high watermark is the log end offset and, without transactions,
//! so is the last stable offset.
//!
//! Leader epochs (KIP-101, KIP-279): a broker keeps a leader epoch cache
//! per partition, `(epoch, start offset)` entries with increasing epochs and
//! start offsets (`LeaderEpochFileCache`). An entry is added when a batch
//! with a newer epoch is appended, and when a broker becomes leader, at its
//! log end offset (`Partition.makeLeader` calls
//! `maybeAssignEpochStartOffset`); an entry replaces the ones whose start
//! offset is not below its own, so leader epochs that wrote nothing leave no
//! entry. The mock derives the same cache from the epochs written into the
//! batches plus the partition's current leader epoch
//! ([`PartitionLog::epoch_entries`]).

use bytes::{Bytes, BytesMut};
use skotch_protocol::record::RecordBatch;

/// A stored batch.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The partition leader epoch written into the batch.
    pub leader_epoch: i32,
    pub max_timestamp: i64,
    pub data: Bytes,
}

/// The batches of one partition and its offsets.
#[derive(Debug, Default)]
pub(crate) struct PartitionLog {
    batches: Vec<StoredBatch>,
    log_start_offset: i64,
    next_offset: i64,
}

impl PartitionLog {
    /// The first offset still in the log (0: no retention in the mock).
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The high watermark: the log end offset, every replica being in sync.
    pub fn high_watermark(&self) -> i64 {
        self.next_offset
    }

    /// Append one validated v2 batch of `count` offsets; returns its base
    /// offset. `batch` must be at least a batch header long (61 bytes).
    pub fn append(
        &mut self,
        batch: &[u8],
        count: i64,
        max_timestamp: i64,
        leader_epoch: i32,
    ) -> i64 {
        let base = self.next_offset;
        let mut data = BytesMut::from(batch);
        // baseOffset at 0..8, partitionLeaderEpoch at 12..16.
        data[0..8].copy_from_slice(&base.to_be_bytes());
        data[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        self.batches.push(StoredBatch {
            base_offset: base,
            last_offset: base + count - 1,
            leader_epoch,
            max_timestamp,
            data: data.freeze(),
        });
        self.next_offset = base + count;
        base
    }

    /// Whether `offset` can be fetched: between the log start and the log
    /// end, both included (fetching at the end waits for data).
    pub fn in_range(&self, offset: i64) -> bool {
        offset >= self.log_start_offset && offset <= self.next_offset
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes`; the
    /// first batch is returned even when larger when `first_whole` is set
    /// (KIP-74: the first batch of the first partition with data always
    /// goes, so a consumer can make progress whatever its limits).
    pub fn read(&self, offset: i64, max_bytes: usize, first_whole: bool) -> Bytes {
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        for b in &self.batches[start..] {
            if out.len() + b.data.len() > max_bytes && !(out.is_empty() && first_whole) {
                break;
            }
            out.extend_from_slice(&b.data);
        }
        out.freeze()
    }

    /// The leader epoch cache of this partition whose leader is at
    /// `current_epoch`: `(epoch, start offset)` with increasing epochs and
    /// start offsets. From the batches, the first batch of each newer epoch
    /// (`LeaderEpochFileCache.assign` on append); then the current epoch
    /// at its first batch or, having written none yet, at the log end
    /// offset (where the leader put it when elected,
    /// `maybeAssignEpochStartOffset`), replacing entries that start there.
    pub fn epoch_entries(&self, current_epoch: i32) -> Vec<(i32, i64)> {
        let mut entries: Vec<(i32, i64)> = Vec::new();
        for b in &self.batches {
            if entries.last().is_none_or(|&(e, _)| b.leader_epoch > e) && b.leader_epoch >= 0 {
                entries.push((b.leader_epoch, b.base_offset));
            }
        }
        // Every batch since the election carries the current epoch, so
        // without one the election was at the log end. Epochs in between
        // that wrote nothing have no entry: on a broker the next entry at
        // the same start offset replaces theirs
        // (`maybeTruncateNonMonotonicEntries`).
        if current_epoch >= 0 && entries.last().is_none_or(|&(e, _)| current_epoch > e) {
            entries.push((current_epoch, self.next_offset));
        }
        entries
    }

    /// OffsetForLeaderEpoch (KIP-101, KIP-279): the largest epoch at or
    /// below `requested` and the offset where the next epoch starts, as
    /// `LeaderEpochFileCache.endOffsetFor`:
    /// - the current (latest) epoch ends at the log end offset;
    /// - an epoch between two entries: the entry at or below it and the
    ///   start of the next one (an epoch with no batches of its own thus
    ///   answers the largest epoch below it);
    /// - an epoch below every entry: itself and the first entry's start;
    /// - -1 (undefined), or an epoch above every entry: `None`, which the
    ///   broker answers as UNDEFINED_EPOCH (-1) and UNDEFINED_EPOCH_OFFSET
    ///   (-1) without an error (`UnifiedLog.endOffsetForEpoch`).
    pub fn end_offset_for_epoch(&self, requested: i32, current_epoch: i32) -> Option<(i32, i64)> {
        if requested == -1 {
            return None;
        }
        let entries = self.epoch_entries(current_epoch);
        if entries.last().is_some_and(|&(e, _)| e == requested) {
            return Some((requested, self.next_offset));
        }
        let higher = entries.iter().find(|&&(e, _)| e > requested)?;
        match entries.iter().rev().find(|&&(e, _)| e <= requested) {
            Some(&(floor, _)) => Some((floor, higher.1)),
            None => Some((requested, higher.1)),
        }
    }

    /// The epoch of the earliest cache entry, when it covers the log start
    /// offset (ListOffsets EARLIEST, `UnifiedLog.fetchOffsetByTimestamp`).
    pub fn earliest_epoch(&self, current_epoch: i32) -> Option<i32> {
        self.epoch_entries(current_epoch)
            .first()
            .filter(|&&(_, start)| start <= self.log_start_offset)
            .map(|&(e, _)| e)
    }

    /// The first record with a timestamp at or after `ts`: its offset,
    /// timestamp and its batch's leader epoch (ListOffsets by timestamp,
    /// KIP-79; the epoch, KIP-320, is the batch's, as the broker's
    /// `TimestampAndOffset`).
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64, i32)> {
        for b in self.batches.iter().filter(|b| b.max_timestamp >= ts) {
            let Ok(batch) = RecordBatch::decode(b.data.clone(), false) else {
                continue;
            };
            for r in batch.records().flatten() {
                if r.timestamp >= ts {
                    return Some((r.offset, r.timestamp, b.leader_epoch));
                }
            }
        }
        None
    }

    /// The record with the largest timestamp (the earliest such): its
    /// offset, timestamp and batch leader epoch (ListOffsets
    /// MAX_TIMESTAMP, KIP-734).
    pub fn max_timestamp(&self) -> Option<(i64, i64, i32)> {
        let mut best: Option<(i64, i64, i32)> = None;
        for b in &self.batches {
            if best.is_some_and(|(_, t, _)| b.max_timestamp <= t) {
                continue;
            }
            let Ok(batch) = RecordBatch::decode(b.data.clone(), false) else {
                continue;
            };
            for r in batch.records().flatten() {
                if best.is_none_or(|(_, t, _)| r.timestamp > t) {
                    best = Some((r.offset, r.timestamp, b.leader_epoch));
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::record::{encode_batch, BatchHeader, Record};

    fn batch(n: usize, ts: i64) -> BytesMut {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                offset: i as i64,
                timestamp: ts + i as i64,
                value: Some(Bytes::from(vec![b'x'; 10])),
                ..Default::default()
            })
            .collect();
        let header = BatchHeader {
            base_offset: 0,
            last_offset_delta: n as i32 - 1,
            base_timestamp: ts,
            max_timestamp: ts + n as i64 - 1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_batch(&header, &records, &mut out).unwrap();
        out
    }

    #[test]
    fn offsets_are_assigned_and_written_into_the_batch() {
        let mut log = PartitionLog::default();
        assert_eq!(log.append(&batch(3, 100), 3, 102, 7), 0);
        assert_eq!(log.append(&batch(2, 200), 2, 201, 7), 3);
        assert_eq!(log.high_watermark(), 5);
        let data = log.read(3, usize::MAX, true);
        let b = RecordBatch::decode(data, true).expect("CRC still holds");
        assert_eq!(b.base_offset, 3);
        assert_eq!(b.partition_leader_epoch, 7);
        let offsets: Vec<i64> = b.records().map(|r| r.unwrap().offset).collect();
        assert_eq!(offsets, [3, 4]);
    }

    #[test]
    fn reads_whole_batches_within_limits() {
        let mut log = PartitionLog::default();
        let one = batch(3, 0);
        for _ in 0..3 {
            log.append(&one, 3, 2, 0);
        }
        // From the middle of the second batch: that batch and the third.
        assert_eq!(log.read(4, usize::MAX, true).len(), 2 * one.len());
        // A limit below one batch: the first still goes when allowed.
        assert_eq!(log.read(0, 10, true).len(), one.len());
        assert_eq!(log.read(0, 10, false).len(), 0);
        assert_eq!(log.read(0, 2 * one.len() + 1, false).len(), 2 * one.len());
        assert_eq!(log.read(9, usize::MAX, true).len(), 0);
        assert!(log.in_range(9) && !log.in_range(10) && !log.in_range(-1));
    }

    #[test]
    fn offsets_by_timestamp() {
        let mut log = PartitionLog::default();
        log.append(&batch(3, 100), 3, 102, 0); // 0..2 at 100..102
        log.append(&batch(3, 200), 3, 202, 0); // 3..5 at 200..202
        assert_eq!(log.offset_for_timestamp(0), Some((0, 100, 0)));
        assert_eq!(log.offset_for_timestamp(101), Some((1, 101, 0)));
        assert_eq!(log.offset_for_timestamp(150), Some((3, 200, 0)));
        assert_eq!(log.offset_for_timestamp(203), None);
        assert_eq!(log.max_timestamp(), Some((5, 202, 0)));
    }

    #[test]
    fn leader_epoch_end_offsets() {
        let mut log = PartitionLog::default();
        // A new partition at epoch 0: the current epoch ends at the log end.
        assert_eq!(log.epoch_entries(0), [(0, 0)]);
        assert_eq!(log.end_offset_for_epoch(0, 0), Some((0, 0)));
        assert_eq!(log.earliest_epoch(0), Some(0));
        // Epoch 0 writes 0..3, 2 writes 3..5 (1 wrote nothing), the leader
        // is now at epoch 4 without writing.
        log.append(&batch(3, 0), 3, 2, 0);
        log.append(&batch(1, 0), 1, 0, 2);
        log.append(&batch(1, 0), 1, 0, 2);
        assert_eq!(log.epoch_entries(4), [(0, 0), (2, 3), (4, 5)]);
        assert_eq!(log.end_offset_for_epoch(0, 4), Some((0, 3)));
        assert_eq!(log.end_offset_for_epoch(1, 4), Some((0, 3)));
        assert_eq!(log.end_offset_for_epoch(2, 4), Some((2, 5)));
        assert_eq!(log.end_offset_for_epoch(3, 4), Some((2, 5)));
        assert_eq!(log.end_offset_for_epoch(4, 4), Some((4, 5)));
        assert_eq!(log.end_offset_for_epoch(5, 4), None);
        assert_eq!(log.end_offset_for_epoch(-1, 4), None);
        // The leader writes at epoch 4: still the current epoch.
        log.append(&batch(2, 0), 2, 0, 4);
        assert_eq!(log.end_offset_for_epoch(4, 4), Some((4, 7)));
        assert_eq!(log.end_offset_for_epoch(3, 4), Some((2, 5)));
        assert_eq!(log.earliest_epoch(4), Some(0));

        // A log whose first batch has epoch 3: epochs below answer
        // themselves and the first entry's start.
        let mut log = PartitionLog::default();
        log.append(&batch(2, 0), 2, 0, 3);
        assert_eq!(log.end_offset_for_epoch(1, 3), Some((1, 0)));
        assert_eq!(log.end_offset_for_epoch(3, 3), Some((3, 2)));
    }
}
