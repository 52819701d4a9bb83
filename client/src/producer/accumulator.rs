//! Where records wait for their batch to be sent (the Java client's
//! `RecordAccumulator`, laid out as franz-go's per-partition buffers).
//!
//! - A lock-free table (`arc-swap`) maps topic names to their
//!   [`TopicQueues`]: `send` finds its topic with one hash lookup and no
//!   lock, and never clones metadata.
//! - Each partition has its own short-held lock ([`PartitionSlot`]): `send`
//!   appends the record into the partition's open batch buffer under it,
//!   and the sender task takes closed batches out under it. No lock spans
//!   partitions, and no record is handed to another task on its own: the
//!   sender is woken once per batch (opened, or full).
//! - Closed batches wait in a [`PartitionQueue`], which owns the order,
//!   sequences and retries of the partition (see `idempotence.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use skotch_protocol::record::{Compression, Record, RecordBatchBuilder};
use skotch_protocol::Uuid;
use tokio::sync::Notify;

use super::delivery::BatchDelivery;
use super::idempotence::{PartitionQueue, ProducerIdAndEpoch};
use super::memory::Reservation;
use super::partitioner::StickyPartitioner;
use crate::metadata::TopicInfo;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A batch's bytes, from records being appended to what was sent.
#[derive(Debug)]
pub(crate) enum Payload {
    /// Records encoded so far; compressed and finished at its first send.
    Builder(RecordBatchBuilder),
    /// The finished batch, with the producer fields it was encoded with
    /// (kept for retries, which resend the same bytes).
    Encoded {
        bytes: Bytes,
        producer: ProducerIdAndEpoch,
        base_sequence: i32,
    },
    /// In a request right now.
    Sending,
}

/// A closed batch: its bytes, the fate its records share, and the
/// `buffer.memory` it holds.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub(crate) payload: Payload,
    pub(crate) delivery: Arc<BatchDelivery>,
    pub(crate) reservation: Option<Reservation>,
    pub(crate) records: i32,
}

/// The batch records are being appended to.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    builder: RecordBatchBuilder,
    delivery: Arc<BatchDelivery>,
    id: u64,
    created: Instant,
    reservation: Reservation,
}

impl OpenBatch {
    /// When `linger.ms` runs out for it.
    pub(crate) fn created(&self) -> Instant {
        self.created
    }

    /// Bytes so far, header included.
    pub(crate) fn size(&self) -> usize {
        self.builder.estimated_size()
    }
}

/// One partition's open batch and queue.
#[derive(Debug, Default)]
pub(crate) struct Partition {
    pub(crate) open: Option<OpenBatch>,
    pub(crate) queue: PartitionQueue<ProducerBatch>,
}

impl Partition {
    /// Move the open batch, if any, behind the queued ones.
    pub(crate) fn close_open(&mut self) {
        if let Some(o) = self.open.take() {
            let records = o.builder.record_count();
            self.queue.push(
                ProducerBatch {
                    payload: Payload::Builder(o.builder),
                    delivery: o.delivery,
                    reservation: Some(o.reservation),
                    records,
                },
                o.id,
                records,
                o.created,
            );
        }
    }

    /// True when nothing is open, queued or in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.open.is_none() && self.queue.is_empty()
    }
}

/// A partition's lock.
#[derive(Debug)]
pub(crate) struct PartitionSlot {
    pub(crate) partition: i32,
    inner: Mutex<Partition>,
}

impl PartitionSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Partition> {
        lock(&self.inner)
    }
}

/// One topic's partitions, as the producer knows them.
#[derive(Debug)]
pub(crate) struct TopicQueues {
    pub(crate) name: Arc<str>,
    /// Topic id (KIP-516) for Produce v13; zero when unknown.
    pub(crate) id: Uuid,
    pub(crate) partitions: Vec<Arc<PartitionSlot>>,
    /// Partitions with a leader, for the sticky partitioner.
    pub(crate) available: Vec<i32>,
    pub(crate) sticky: Arc<Mutex<StickyPartitioner>>,
}

impl TopicQueues {
    /// The sticky partitioner's choice for a keyless record of `size` bytes.
    pub(crate) fn sticky_partition(&self, size: usize, batch_size: usize) -> i32 {
        let count = i32::try_from(self.partitions.len()).unwrap_or(i32::MAX);
        lock(&self.sticky).partition(count, &self.available, size, batch_size, rand::random)
    }
}

/// What [`Accumulator::append`] did.
pub(crate) enum Appended {
    /// The record is in batch `delivery` at `index`.
    Done {
        delivery: Arc<BatchDelivery>,
        index: i32,
        /// The sender should look (a batch opened or filled up).
        wake: bool,
    },
    /// No open batch has room: reserve `bytes` of `buffer.memory` and call
    /// again with the reservation.
    NeedsBatch { record: Record, bytes: usize },
    /// The record cannot be encoded at all (a field beyond the format's
    /// int32 lengths).
    TooLarge,
}

/// The producer's batches, shared by `send` and the sender task.
#[derive(Debug)]
pub(crate) struct Accumulator {
    topics: ArcSwap<HashMap<Arc<str>, Arc<TopicQueues>>>,
    /// Serialises table updates (readers never take it).
    update: Mutex<()>,
    batch_size: usize,
    compression: Compression,
    level: Option<i32>,
    next_batch_id: AtomicU64,
    /// Ids of batches not yet settled, for `flush`.
    unsettled: Mutex<BTreeSet<u64>>,
    settled: Notify,
    /// Wakes the sender task.
    pub(crate) wake: Notify,
}

impl Accumulator {
    pub(crate) fn new(batch_size: usize, compression: Compression, level: Option<i32>) -> Self {
        Self {
            topics: ArcSwap::from_pointee(HashMap::new()),
            update: Mutex::new(()),
            batch_size,
            compression,
            level,
            next_batch_id: AtomicU64::new(0),
            unsettled: Mutex::new(BTreeSet::new()),
            settled: Notify::new(),
            wake: Notify::new(),
        }
    }

    /// The topic's queues, if the producer has seen it (lock-free).
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<TopicQueues>> {
        self.topics.load().get(name).cloned()
    }

    /// Every topic's queues.
    pub(crate) fn topics(&self) -> Arc<HashMap<Arc<str>, Arc<TopicQueues>>> {
        self.topics.load_full()
    }

    /// Add or update a topic from its metadata (see
    /// [`upsert_topic`](Self::upsert_topic)).
    pub(crate) fn upsert_topic_info(&self, info: &TopicInfo) -> Arc<TopicQueues> {
        let available = info
            .partitions
            .iter()
            .filter(|p| p.leader >= 0)
            .map(|p| p.partition)
            .collect();
        self.upsert_topic(&info.name, info.id, info.partitions.len(), available)
    }

    /// Add or update a topic from metadata: `partitions` partitions, the
    /// ones in `available` with a leader. Existing partitions keep their
    /// queues; a topic never shrinks (Kafka cannot remove partitions).
    pub(crate) fn upsert_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: usize,
        available: Vec<i32>,
    ) -> Arc<TopicQueues> {
        let _g = lock(&self.update);
        let table = self.topics.load_full();
        let old = table.get(name);
        if let Some(t) = old {
            if t.id == id && t.partitions.len() >= partitions && t.available == available {
                return t.clone();
            }
        }
        let mut slots: Vec<Arc<PartitionSlot>> =
            old.map(|t| t.partitions.clone()).unwrap_or_default();
        for p in slots.len()..partitions {
            slots.push(Arc::new(PartitionSlot {
                partition: i32::try_from(p).unwrap_or(i32::MAX),
                inner: Mutex::new(Partition::default()),
            }));
        }
        let t = Arc::new(TopicQueues {
            name: old
                .map(|t| t.name.clone())
                .unwrap_or_else(|| Arc::from(name)),
            id,
            partitions: slots,
            available,
            sticky: old.map(|t| t.sticky.clone()).unwrap_or_default(),
        });
        let mut next = (*table).clone();
        next.insert(t.name.clone(), t.clone());
        self.topics.store(Arc::new(next));
        t
    }

    /// Append `record` to the open batch of `slot`, opening one with
    /// `reservation` if needed (see [`Appended`]). A reservation that was
    /// not needed is handed back through `spare`.
    pub(crate) fn append(
        &self,
        topic: &TopicQueues,
        slot: &PartitionSlot,
        record: Record,
        size: usize,
        reservation: Option<Reservation>,
        spare: &mut Option<Reservation>,
    ) -> Appended {
        let mut p = slot.lock();
        let mut record = record;
        if let Some(open) = p.open.as_mut() {
            match open.builder.try_push(record) {
                Ok(()) => {
                    let index = open.builder.record_count() - 1;
                    let delivery = open.delivery.clone();
                    let wake = open.builder.estimated_size() >= self.batch_size;
                    if wake {
                        p.close_open();
                    }
                    *spare = reservation;
                    return Appended::Done {
                        delivery,
                        index,
                        wake,
                    };
                }
                Err(r) => {
                    // Full: it goes to the queue (the caller wakes the
                    // sender), the record to a new batch.
                    record = r;
                    p.close_open();
                }
            }
        }
        let Some(reservation) = reservation else {
            return Appended::NeedsBatch {
                record,
                bytes: self.batch_bytes(size),
            };
        };
        let mut builder =
            RecordBatchBuilder::with_capacity(self.batch_size, self.batch_bytes(size))
                .compression(self.compression, self.level);
        if builder.try_push(record).is_err() {
            *spare = Some(reservation);
            return Appended::TooLarge;
        }
        let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.unsettled).insert(id);
        let delivery = BatchDelivery::new(topic.name.clone(), slot.partition);
        p.open = Some(OpenBatch {
            builder,
            delivery: delivery.clone(),
            id,
            created: Instant::now(),
            reservation,
        });
        if p.open.as_ref().is_some_and(|o| o.size() >= self.batch_size) {
            p.close_open();
        }
        Appended::Done {
            delivery,
            index: 0,
            // The sender learns of the new batch's linger deadline.
            wake: true,
        }
    }

    /// Bytes a new batch for a record of `size` bytes holds.
    pub(crate) fn batch_bytes(&self, size: usize) -> usize {
        self.batch_size
            .max(size.saturating_add(skotch_protocol::record::RECORD_BATCH_OVERHEAD))
    }

    /// Batch `id` is settled.
    pub(crate) fn settled(&self, id: u64) {
        lock(&self.unsettled).remove(&id);
        self.settled.notify_waiters();
    }

    /// The id the next batch will get: every batch opened before a flush
    /// has a smaller one.
    pub(crate) fn next_batch_id(&self) -> u64 {
        self.next_batch_id.load(Ordering::Relaxed)
    }

    /// Wait until every batch with an id below `before` is settled.
    pub(crate) async fn wait_settled(&self, before: u64) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.unsettled)
                .first()
                .is_none_or(|first| *first >= before)
            {
                return;
            }
            notified.await;
        }
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
    fn append_fills_batches_and_asks_for_memory() {
        let acc = Accumulator::new(200, Compression::None, None);
        let t = acc.upsert_topic("t", Uuid::ZERO, 2, vec![0, 1]);
        let slot = t.partitions[1].clone();
        let mut spare = None;
        // No batch yet: memory first.
        let Appended::NeedsBatch { record, bytes } =
            acc.append(&t, &slot, rec(50), 70, None, &mut spare)
        else {
            panic!("expected NeedsBatch")
        };
        assert_eq!(bytes, 200);
        let pool = super::super::memory::BufferPool::new(1000);
        let r = pool.try_reserve(bytes).unwrap();
        let Appended::Done { index, wake, .. } =
            acc.append(&t, &slot, record, 70, Some(r), &mut spare)
        else {
            panic!("expected Done")
        };
        assert_eq!((index, wake), (0, true));
        // Fits: no wake.
        let Appended::Done { index, wake, .. } =
            acc.append(&t, &slot, rec(50), 70, None, &mut spare)
        else {
            panic!("expected Done")
        };
        assert_eq!((index, wake), (1, false));
        // Third one does not fit 200 bytes: the batch closes.
        assert!(matches!(
            acc.append(&t, &slot, rec(50), 70, None, &mut spare),
            Appended::NeedsBatch { .. }
        ));
        let p = slot.lock();
        assert!(p.open.is_none());
        assert_eq!(p.queue.len(), 1);
        assert_eq!(p.queue.iter().next().unwrap().records, 2);
        assert!(spare.is_none());
    }

    #[test]
    fn upsert_keeps_queues_and_grows() {
        let acc = Accumulator::new(100, Compression::None, None);
        let a = acc.upsert_topic("t", Uuid::ZERO, 2, vec![0, 1]);
        let b = acc.upsert_topic("t", Uuid::ZERO, 2, vec![0, 1]);
        assert!(Arc::ptr_eq(&a, &b));
        let c = acc.upsert_topic("t", Uuid::ZERO, 3, vec![0, 1, 2]);
        assert_eq!(c.partitions.len(), 3);
        assert!(Arc::ptr_eq(&a.partitions[0], &c.partitions[0]));
        assert!(Arc::ptr_eq(&acc.topic("t").unwrap(), &c));
        assert!(acc.topic("u").is_none());
    }

    #[tokio::test]
    async fn flush_waits_for_earlier_batches_only() {
        let acc = Arc::new(Accumulator::new(100, Compression::None, None));
        acc.unsettled.lock().unwrap().extend([0, 1, 5]);
        let a = acc.clone();
        let w = tokio::spawn(async move { a.wait_settled(2).await });
        tokio::task::yield_now().await;
        acc.settled(0);
        tokio::task::yield_now().await;
        assert!(!w.is_finished());
        acc.settled(1);
        tokio::time::timeout(std::time::Duration::from_secs(5), w)
            .await
            .unwrap()
            .unwrap();
    }
}
