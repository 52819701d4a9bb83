//! One partition's log: record batches in offset order, each stored as the
//! producer sent it with the base offset and partition leader epoch the
//! mock assigned written in (neither is covered by the CRC, which starts at
//! `attributes`; protocol guide, "Record Batch").
//!
//! Every replica is in sync at once (there is no replication to wait for),
//! so the high watermark is the log end offset and, without transactions,
//! so is the last stable offset.

use bytes::{Bytes, BytesMut};
use skotch_protocol::record::RecordBatch;

/// A stored batch.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub last_offset: i64,
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
            last_offset: base + count - 1,
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

    /// The first record with a timestamp at or after `ts`: its offset and
    /// timestamp (ListOffsets by timestamp, KIP-79).
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        for b in self.batches.iter().filter(|b| b.max_timestamp >= ts) {
            let Ok(batch) = RecordBatch::decode(b.data.clone(), false) else {
                continue;
            };
            for r in batch.records().flatten() {
                if r.timestamp >= ts {
                    return Some((r.offset, r.timestamp));
                }
            }
        }
        None
    }

    /// The record with the largest timestamp (the earliest such): its
    /// offset and timestamp (ListOffsets MAX_TIMESTAMP, KIP-734).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for b in &self.batches {
            if best.is_some_and(|(_, t)| b.max_timestamp <= t) {
                continue;
            }
            let Ok(batch) = RecordBatch::decode(b.data.clone(), false) else {
                continue;
            };
            for r in batch.records().flatten() {
                if best.is_none_or(|(_, t)| r.timestamp > t) {
                    best = Some((r.offset, r.timestamp));
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
        assert_eq!(log.offset_for_timestamp(0), Some((0, 100)));
        assert_eq!(log.offset_for_timestamp(101), Some((1, 101)));
        assert_eq!(log.offset_for_timestamp(150), Some((3, 200)));
        assert_eq!(log.offset_for_timestamp(203), None);
        assert_eq!(log.max_timestamp(), Some((5, 202)));
    }
}
