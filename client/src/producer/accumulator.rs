//! Per-partition batching (the Java client's `RecordAccumulator`): records
//! are appended to the open batch of their partition; a batch is ready when
//! it is full (`batch.size`), when it has waited `linger.ms`, or when a
//! flush asks for everything. At most one batch per partition is in flight,
//! so retries never reorder a partition's records.
//!
//! Pure: time comes in as `now`, and the caller (the sender task) turns
//! ready batches into Produce requests.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch_protocol::record::{Compression, Record, RecordBatchBuilder};

use crate::consumer::TopicPartition;

/// A batch being filled or waiting to be sent, with whatever the caller
/// attached to each record (delivery callbacks).
#[derive(Debug)]
pub struct Batch<T> {
    /// The records so far.
    pub builder: RecordBatchBuilder,
    /// One item per record, in order.
    pub waiters: Vec<T>,
    /// When the first record arrived.
    pub created: Instant,
    /// Times this batch was sent and failed with a retriable error.
    pub attempts: u32,
    /// Not to be sent again before this time (retry backoff).
    pub retry_at: Option<Instant>,
    /// Encoded bytes, once built (kept for retries).
    pub encoded: Option<Bytes>,
}

/// Record batches by partition.
#[derive(Debug)]
pub struct Accumulator<T> {
    batch_size: usize,
    linger: Duration,
    compression: Compression,
    level: Option<i32>,
    queues: BTreeMap<TopicPartition, VecDeque<Batch<T>>>,
    /// Partitions with a batch in flight.
    in_flight: std::collections::BTreeSet<TopicPartition>,
    flushing: bool,
}

impl<T> Accumulator<T> {
    /// Batches of up to `batch_size` bytes that wait up to `linger`.
    pub fn new(batch_size: usize, linger: Duration) -> Self {
        Self {
            batch_size,
            linger,
            compression: Compression::None,
            level: None,
            queues: BTreeMap::new(),
            in_flight: Default::default(),
            flushing: false,
        }
    }

    /// Compress new batches with `codec` at `level` (`compression.type`
    /// and `compression.<codec>.level`); `batch_size` keeps counting
    /// uncompressed bytes.
    pub fn with_compression(mut self, codec: Compression, level: Option<i32>) -> Self {
        self.compression = codec;
        self.level = level;
        self
    }

    /// Append a record to its partition's open batch, opening a new batch
    /// when the current one is full or already closed for sending.
    pub fn append(&mut self, tp: TopicPartition, record: Record, waiter: T, now: Instant) {
        let q = self.queues.entry(tp).or_default();
        let record = match q.back_mut() {
            Some(b) if b.encoded.is_none() && b.attempts == 0 => match b.builder.try_push(record) {
                Ok(()) => {
                    b.waiters.push(waiter);
                    return;
                }
                Err(r) => r,
            },
            _ => record,
        };
        let mut builder =
            RecordBatchBuilder::new(self.batch_size).compression(self.compression, self.level);
        // An empty builder takes any record, even one above batch.size.
        let _ = builder.try_push(record);
        q.push_back(Batch {
            builder,
            waiters: vec![waiter],
            created: now,
            attempts: 0,
            retry_at: None,
            encoded: None,
        });
    }

    /// Ask for everything queued to be sent without waiting for linger.
    pub fn begin_flush(&mut self) {
        self.flushing = true;
    }

    /// True when no record is queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty() && self.queues.values().all(|q| q.is_empty())
    }

    fn is_ready(&self, tp: &TopicPartition, b: &Batch<T>, q_len: usize, now: Instant) -> bool {
        if self.in_flight.contains(tp) {
            return false;
        }
        if let Some(t) = b.retry_at {
            return now >= t;
        }
        self.flushing
            || q_len > 1
            || b.builder.estimated_size() >= self.batch_size
            || now >= b.created + self.linger
    }

    /// Take the batches that are ready to go, at most one per partition,
    /// marking those partitions in flight.
    pub fn drain_ready(&mut self, now: Instant) -> Vec<(TopicPartition, Batch<T>)> {
        let mut out = Vec::new();
        let ready: Vec<TopicPartition> = self
            .queues
            .iter()
            .filter(|(tp, q)| {
                q.front()
                    .is_some_and(|b| self.is_ready(tp, b, q.len(), now))
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in ready {
            if let Some(b) = self.queues.get_mut(&tp).and_then(|q| q.pop_front()) {
                self.in_flight.insert(tp.clone());
                out.push((tp, b));
            }
        }
        if self.flushing && self.queues.values().all(|q| q.is_empty()) {
            self.flushing = false;
        }
        out
    }

    /// A batch came back from the broker with a retriable error: it goes
    /// back to the front of its partition's queue, to be resent after
    /// `backoff`.
    pub fn requeue(
        &mut self,
        tp: TopicPartition,
        mut batch: Batch<T>,
        now: Instant,
        backoff: Duration,
    ) {
        self.in_flight.remove(&tp);
        batch.attempts += 1;
        batch.retry_at = Some(now + backoff);
        self.queues.entry(tp).or_default().push_front(batch);
    }

    /// The partition's in-flight batch is done (delivered or failed).
    pub fn complete(&mut self, tp: &TopicPartition) {
        self.in_flight.remove(tp);
        if self.queues.get(tp).is_some_and(|q| q.is_empty()) {
            self.queues.remove(tp);
        }
    }

    /// Remove queued batches older than `deadline` (delivery.timeout.ms).
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<(TopicPartition, Batch<T>)> {
        let mut out = Vec::new();
        for (tp, q) in self.queues.iter_mut() {
            while q.front().is_some_and(|b| now >= b.created + timeout) {
                if let Some(b) = q.pop_front() {
                    out.push((tp.clone(), b));
                }
            }
        }
        out
    }

    /// When the sender should next look at the accumulator (the earliest
    /// linger or retry deadline), if any batch is waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter(|(tp, _)| !self.in_flight.contains(*tp))
            .filter_map(|(_, q)| q.front())
            .map(|b| b.retry_at.unwrap_or(b.created + self.linger))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> Record {
        Record {
            value: Some(Bytes::from(vec![b'x'; n])),
            ..Default::default()
        }
    }

    #[test]
    fn linger_full_and_flush() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let mut a: Accumulator<u32> = Accumulator::new(200, Duration::from_millis(5));
        a.append(tp.clone(), rec(10), 1, t0);
        assert!(a.drain_ready(t0).is_empty());
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_millis(5)));
        let ready = a.drain_ready(t0 + Duration::from_millis(5));
        assert_eq!(ready.len(), 1);
        // in flight: a new batch for the same partition waits
        a.append(tp.clone(), rec(10), 2, t0);
        a.begin_flush();
        assert!(a.drain_ready(t0).is_empty());
        a.complete(&tp);
        let ready = a.drain_ready(t0);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].1.waiters, vec![2]);
        a.complete(&tp);
        assert!(a.is_empty());
    }

    #[test]
    fn full_batches_split_and_are_ready() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let mut a: Accumulator<u32> = Accumulator::new(200, Duration::from_secs(60));
        for i in 0..10 {
            a.append(tp.clone(), rec(50), i, t0);
        }
        let ready = a.drain_ready(t0);
        assert_eq!(ready.len(), 1);
        let first = &ready[0].1;
        assert!(first.waiters.len() < 10 && !first.waiters.is_empty());
    }

    #[test]
    fn requeue_keeps_order_and_waits_backoff() {
        let t0 = Instant::now();
        let tp = TopicPartition::new("t", 0);
        let mut a: Accumulator<u32> = Accumulator::new(100, Duration::ZERO);
        a.append(tp.clone(), rec(10), 1, t0);
        let (tp1, b) = a.drain_ready(t0).pop().unwrap();
        a.append(tp.clone(), rec(10), 2, t0);
        a.requeue(tp1, b, t0, Duration::from_millis(100));
        assert!(a.drain_ready(t0).is_empty());
        let again = a.drain_ready(t0 + Duration::from_millis(100));
        assert_eq!(again[0].1.waiters, vec![1]);
    }
}
