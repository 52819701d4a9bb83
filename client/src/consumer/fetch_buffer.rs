//! Fetched partition data waiting for `poll`, and how `poll` turns it into
//! records: batch by batch, at most `max.poll.records` per poll, resuming
//! inside a batch where the previous poll stopped (Java's
//! `CompletedFetch` / `FetchCollector`).
//!
//! Records are decoded here, in `poll`, not in the fetchers: the cost
//! falls on the task that wants the records, and data of a partition that
//! is unassigned or sought before it is polled is never decoded.

use std::sync::Arc;

use skotch_protocol::record::{self, AbortedTransactionFilter, RecordBatchIter, RecordIter};
use skotch_protocol::record::{RecordBatch, TimestampType};
use skotch_protocol::DecodeError;

use super::{Consumer, ConsumerRecord, IsolationLevel, Poll, State, TopicPartition};
use crate::error::Error;

/// One partition's records from one Fetch answer.
#[derive(Debug)]
pub(crate) struct CompletedFetch {
    pub tp: TopicPartition,
    pub topic: Arc<str>,
    /// The broker it came from and the bytes it holds (for that broker's
    /// buffer bound).
    pub broker: i32,
    pub bytes: usize,
    /// The partition's generation when it was fetched.
    pub generation: u64,
    batches: Batches,
    /// The batch being handed out when the previous poll filled up.
    current: Option<CurrentBatch>,
    aborted: AbortedTransactionFilter,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct CurrentBatch {
    records: RecordIter,
    timestamp_type: TimestampType,
    next_offset: i64,
    leader_epoch: i32,
}

impl CompletedFetch {
    /// Data of `tp` as fetched. `aborted` lists the answer's aborted
    /// transactions (read_committed only).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tp: TopicPartition,
        topic: Arc<str>,
        broker: i32,
        generation: u64,
        (bytes, batches): (usize, Batches),
        aborted: AbortedTransactionFilter,
        marks: (i64, i64, i64),
    ) -> Self {
        Self {
            tp,
            topic,
            broker,
            bytes,
            generation,
            batches,
            current: None,
            aborted,
            high_watermark: marks.0,
            last_stable_offset: marks.1,
            log_start_offset: marks.2,
        }
    }
}

/// The batches of a completed fetch: decoded as `poll` goes, or decoded
/// (decompressed, CRC checked) ahead on a blocking thread when the data is
/// mostly compressed and large, so that inflating it never runs on an
/// async worker.
#[derive(Debug)]
pub(crate) enum Batches {
    Lazy(RecordBatchIter),
    Decoded(std::vec::IntoIter<Result<RecordBatch, DecodeError>>),
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Batches::Lazy(it) => it.next(),
            Batches::Decoded(it) => it.next(),
        }
    }
}

/// Fetched data with more compressed bytes than this is decoded on a
/// blocking thread before `poll` sees it (the producer's threshold too).
pub(crate) const DECODE_OFF_WORKERS: usize = 256 * 1024;

/// Bytes of `data` (a partition's record data) in compressed batches,
/// from the batch headers alone; stops at anything that does not look
/// like a batch (the decoder reports it later).
pub(crate) fn compressed_bytes(data: &[u8]) -> usize {
    // base offset (8), batch length (4), leader epoch (4), magic (1),
    // crc (4), attributes (2).
    const ATTRIBUTES: usize = 21;
    let mut pos = 0usize;
    let mut total = 0usize;
    while let (Some(len), Some(attr)) = (
        data.get(pos + 8..pos + 12),
        data.get(pos + ATTRIBUTES..pos + ATTRIBUTES + 2),
    ) {
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let Ok(len) = usize::try_from(len) else { break };
        let size = len.saturating_add(12);
        if i16::from_be_bytes([attr[0], attr[1]]) & 0x7 != 0 {
            total = total.saturating_add(size.min(data.len() - pos));
        }
        pos = pos.saturating_add(size);
    }
    total
}

/// The offset after the last whole batch of `data` (a partition's record
/// data), from the batch headers alone: where fetching goes on while this
/// data waits for `poll`. `None` when no whole batch is there.
pub(crate) fn next_fetch_offset(data: &[u8]) -> Option<i64> {
    // base offset (8), batch length (4), leader epoch (4), magic (1),
    // crc (4), attributes (2), last offset delta (4).
    const LAST_OFFSET_DELTA: usize = 23;
    let mut pos = 0usize;
    let mut next = None;
    while let (Some(base), Some(len), Some(delta)) = (
        data.get(pos..pos + 8),
        data.get(pos + 8..pos + 12),
        data.get(pos + LAST_OFFSET_DELTA..pos + LAST_OFFSET_DELTA + 4),
    ) {
        let base = i64::from_be_bytes(base.try_into().ok()?);
        let len = i32::from_be_bytes(len.try_into().ok()?);
        let delta = i32::from_be_bytes(delta.try_into().ok()?);
        let Ok(len) = usize::try_from(len) else { break };
        let end = pos.saturating_add(12).saturating_add(len);
        if end > data.len() || delta < 0 {
            break; // a partial trailing batch, or garbage
        }
        next = Some(base.saturating_add(i64::from(delta)).saturating_add(1));
        pos = end;
    }
    next
}

/// Decode every batch of `data` (for [`Batches::Decoded`]); call on a
/// blocking thread.
pub(crate) fn decode_all(
    data: bytes::Bytes,
    check_crcs: bool,
    max_decompressed: usize,
) -> Vec<Result<RecordBatch, DecodeError>> {
    record::decode_batches(data, check_crcs)
        .max_decompressed_size(max_decompressed)
        .collect()
}

/// What happened to one completed fetch during a drain.
enum Drained {
    /// Every record of it was handed out.
    Done,
    /// The poll is full; the rest waits for the next poll.
    Full,
    /// A batch or record could not be decoded at this offset.
    Failed(i64, DecodeError),
}

impl Consumer {
    /// Hand out buffered records, at most `max.poll.records`, and the ends
    /// of partitions reached.
    pub(super) fn drain(&mut self) -> Poll {
        let max = self.shared.config.max_poll_records.max(1);
        let read_committed = self.shared.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut poll = Poll::default();
        // Taking data frees room in the brokers' buffers: wake the fetchers.
        let mut woke_fetchers = false;
        let mut guard = self.shared.state();
        let st: &mut State = &mut guard;
        let mut i = 0;
        while i < st.buffer.len() && poll.records.len() < max {
            let tp = st.buffer[i].tp.clone();
            let Some(p) = st.partitions.get_mut(&tp) else {
                drop_at(st, i);
                continue;
            };
            if p.generation != st.buffer[i].generation || p.failed.is_some() {
                drop_at(st, i);
                continue;
            }
            if p.paused {
                i += 1;
                continue;
            }
            let cf = &mut st.buffer[i];
            let before = poll.records.len();
            let Some(mut position) = p.position else {
                drop_at(st, i);
                continue;
            };
            woke_fetchers = true;
            let outcome = drain_one(cf, &mut position, &mut p.offset_epoch, max, &mut poll);
            p.position = Some(position);
            p.high_watermark = Some(cf.high_watermark);
            if cf.last_stable_offset >= 0 {
                p.last_stable_offset = Some(cf.last_stable_offset);
            }
            if cf.log_start_offset >= 0 {
                p.log_start_offset = Some(cf.log_start_offset);
            }
            if poll.records.len() > before {
                p.eof_reported = false;
            }
            match outcome {
                Drained::Full => break,
                Drained::Done => {}
                Drained::Failed(offset, source) => {
                    // Records before the bad batch were handed out; the
                    // position stays at it until the application seeks.
                    tracing::warn!(partition = %tp, offset, error = %source,
                        "record batch cannot be decoded; the partition stops here");
                    p.failed = Some(Error::CorruptRecord {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset,
                        source,
                    });
                }
            }
            let end = if read_committed && cf.last_stable_offset >= 0 {
                cf.last_stable_offset
            } else {
                cf.high_watermark
            };
            let failed = p.failed.is_some();
            if position >= end && !p.eof_reported && !failed {
                p.eof_reported = true;
                poll.end_of_partition.push(tp.clone());
            }
            drop_at(st, i);
            if failed {
                // Data read ahead past the bad batch goes too.
                st.drop_buffered(&tp);
            }
        }
        for tp in std::mem::take(&mut st.eof) {
            if let Some(p) = st.partitions.get_mut(&tp) {
                if !p.eof_reported && p.failed.is_none() {
                    p.eof_reported = true;
                    poll.end_of_partition.push(tp);
                }
            }
        }
        drop(guard);
        if woke_fetchers {
            self.shared.work.notify_waiters();
        }
        poll
    }
}

/// Remove the completed fetch at `i`; its partition may be fetched again.
fn drop_at(st: &mut State, i: usize) {
    if let Some(cf) = st.buffer.remove(i) {
        if let Some(b) = st.buffered_bytes.get_mut(&cf.broker) {
            *b = b.saturating_sub(cf.bytes);
        }
        if let Some(p) = st.partitions.get_mut(&cf.tp) {
            if p.generation == cf.generation {
                p.hold = false;
            }
        }
    }
}

/// Hand out the records of `cf` from `position` on until `poll` holds
/// `max`; `position` ends after the last record handed out (or the last
/// batch passed).
fn drain_one(
    cf: &mut CompletedFetch,
    position: &mut i64,
    offset_epoch: &mut Option<i32>,
    max: usize,
    poll: &mut Poll,
) -> Drained {
    loop {
        if let Some(cur) = &mut cf.current {
            for r in cur.records.by_ref() {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        cf.current = None;
                        return Drained::Failed(*position, e);
                    }
                };
                if r.offset < *position {
                    continue;
                }
                *position = r.offset + 1;
                *offset_epoch = Some(cur.leader_epoch);
                poll.records.push(ConsumerRecord {
                    topic: cf.topic.clone(),
                    partition: cf.tp.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type: cur.timestamp_type,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
                if poll.records.len() >= max {
                    // The batch may have more: keep it for the next poll
                    // unless this was its last record.
                    return Drained::Full;
                }
            }
            // Offsets may have gaps (compaction, control records): the
            // batch header says where the next one starts.
            *position = (*position).max(cur.next_offset);
            cf.current = None;
        }
        let batch = match cf.batches.next() {
            None => return Drained::Done,
            Some(Err(e)) => return Drained::Failed(*position, e),
            Some(Ok(b)) => b,
        };
        // Called for every batch in offset order, control batches
        // included: their ABORT markers end aborted transactions.
        let skip = cf.aborted.is_aborted(&batch);
        let next = batch.next_offset();
        if next <= *position {
            continue;
        }
        if batch.is_control() || skip {
            *position = next;
            continue;
        }
        cf.current = Some(CurrentBatch {
            records: batch.records(),
            timestamp_type: batch.timestamp_type(),
            next_offset: next,
            leader_epoch: batch.partition_leader_epoch,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use skotch_protocol::record::{Compression, Record, RecordBatchBuilder};

    fn batch(base: i64, n: usize, compression: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(usize::MAX).compression(compression, None);
        for i in 0..n {
            let r = Record {
                offset: 0,
                timestamp: 1000 + i as i64,
                key: None,
                value: Some(Bytes::from(vec![b'x'; 100])),
                headers: Vec::new(),
            };
            b.try_push(r).unwrap();
        }
        // The base offset is outside the CRC: set it after building.
        let mut out = BytesMut::from(&b.finish().unwrap()[..]);
        out[..8].copy_from_slice(&base.to_be_bytes());
        out.freeze()
    }

    fn fetch(data: Bytes, max_decompressed: usize) -> CompletedFetch {
        let batches = Batches::Lazy(
            record::decode_batches(data.clone(), true).max_decompressed_size(max_decompressed),
        );
        CompletedFetch::new(
            TopicPartition::new("t", 0),
            Arc::from("t"),
            1,
            1,
            (data.len(), batches),
            AbortedTransactionFilter::default(),
            (100, -1, 0),
        )
    }

    #[test]
    fn the_next_fetch_offset_comes_from_whole_batches() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch(0, 5, Compression::None));
        data.extend_from_slice(&batch(5, 10, Compression::Gzip));
        assert_eq!(next_fetch_offset(&data), Some(15));
        // A partial trailing batch does not count.
        assert_eq!(next_fetch_offset(&data[..data.len() - 1]), Some(5));
        assert_eq!(next_fetch_offset(&data[..20]), None);
        assert_eq!(next_fetch_offset(&[0xff; 64]), None);
    }

    #[test]
    fn compressed_bytes_are_counted_from_headers() {
        let plain = batch(0, 10, Compression::None);
        let gz = batch(10, 10, Compression::Gzip);
        let mut both = BytesMut::new();
        both.extend_from_slice(&plain);
        both.extend_from_slice(&gz);
        assert_eq!(compressed_bytes(&plain), 0);
        assert_eq!(compressed_bytes(&both), gz.len());
        // A truncated tail or garbage never panics.
        assert_eq!(compressed_bytes(&both[..both.len() - 3]), gz.len() - 3);
        assert_eq!(compressed_bytes(&[0xff; 40]), 0);
        // Decoded ahead, the batches read the same.
        let decoded = decode_all(both.clone().freeze(), true, usize::MAX);
        assert_eq!(decoded.len(), 2);
        assert!(decoded.iter().all(|b| b.is_ok()));
    }

    #[test]
    fn a_poll_stops_at_max_and_the_next_resumes_inside_the_batch() {
        let mut cf = fetch(batch(0, 10, Compression::None), usize::MAX);
        let (mut pos, mut epoch) = (0, None);
        let mut poll = Poll::default();
        assert!(matches!(
            drain_one(&mut cf, &mut pos, &mut epoch, 4, &mut poll),
            Drained::Full
        ));
        assert_eq!(pos, 4);
        let mut poll2 = Poll::default();
        assert!(matches!(
            drain_one(&mut cf, &mut pos, &mut epoch, 100, &mut poll2),
            Drained::Done
        ));
        let offsets: Vec<i64> = poll
            .records
            .iter()
            .chain(&poll2.records)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..10).collect::<Vec<_>>());
        assert_eq!(pos, 10);
    }

    /// The bug of issue 12: a later batch that cannot be decoded (here a
    /// compressed batch inflating past the limit) used to leave the
    /// position where it was after handing out the earlier batches, so
    /// every poll handed them out again. Now the earlier records go out
    /// once, the position stops at the bad batch, and the failure names it.
    #[test]
    fn a_bad_batch_stops_the_position_after_the_good_ones() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch(0, 5, Compression::None));
        data.extend_from_slice(&batch(5, 200, Compression::Gzip));
        // The uncompressed batch is ~1 KiB; the gzip one inflates to ~20 KiB.
        let mut cf = fetch(data.freeze(), 8 * 1024);
        let (mut pos, mut epoch) = (0, None);
        let mut poll = Poll::default();
        match drain_one(&mut cf, &mut pos, &mut epoch, 1000, &mut poll) {
            Drained::Failed(at, _) => assert_eq!(at, 5),
            _ => panic!("the oversized batch must fail"),
        }
        assert_eq!(poll.records.len(), 5);
        assert_eq!(pos, 5);
    }

    #[test]
    fn records_before_the_position_are_skipped() {
        let mut cf = fetch(batch(0, 10, Compression::None), usize::MAX);
        let (mut pos, mut epoch) = (7, None);
        let mut poll = Poll::default();
        drain_one(&mut cf, &mut pos, &mut epoch, 100, &mut poll);
        assert_eq!(poll.records.first().map(|r| r.offset), Some(7));
        assert!(epoch.is_some());
    }
}
