//! The producer: records are partitioned like the Java client does, batched
//! per partition (`linger.ms`, `batch.size`), sent to partition leaders with
//! the configured `acks`, retried on retriable errors until
//! `delivery.timeout.ms`, and each record's fate is reported through its
//! [`DeliveryFuture`] (or a per-batch [`DeliveryCallback`]).
//!
//! Idempotent by default (KIP-98, as the Java client since 3.0): every
//! batch carries the producer id, epoch and the partition's sequence
//! number, so the broker drops a retried batch it already wrote and
//! refuses one that would land out of order. Records of a partition are
//! then written exactly once and in order, whatever brokers fail, with up
//! to 5 batches per partition in flight. See `idempotence.rs` and DESIGN.md
//! for the rules.
//!
//! The path from `send` to the socket:
//! - `send` finds the topic in a lock-free table, picks the partition
//!   (murmur2 of the key, or sticky for keyless records), and appends the
//!   record into the partition's open batch buffer under that partition's
//!   short lock (`accumulator.rs`). The buffer was allocated, and counted
//!   against `buffer.memory`, when the batch opened (`memory.rs`).
//! - The sender task (`sender.rs`), woken once per batch, drains ready
//!   batches into one Produce request per leader; each request is its own
//!   future, so a slow broker holds back only its partitions. Compression
//!   runs on tokio's blocking threads.
//! - Answers settle whole batches (`delivery.rs`).

pub mod accumulator;
pub mod config;
pub mod delivery;
pub mod idempotence;
pub(crate) mod memory;
pub mod partitioner;
pub(crate) mod produce_request;
pub(crate) mod sender;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use skotch_protocol::record::{Header, Record};

use crate::client::Client;
use crate::error::{Error, Result};
use accumulator::{Accumulator, Appended, TopicQueues};
pub use config::{Acks, ProducerConfig};
pub use delivery::{BatchAck, DeliveryCallback, DeliveryFuture, DeliveryReport, RecordMetadata};
use memory::{BufferPool, Reservation};
use partitioner::partition_for_key;
use sender::{Sender, Shared};

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic to write to.
    pub topic: String,
    /// Partition; `None` lets the partitioner choose (by key hash, or
    /// sticky for null keys).
    pub partition: Option<i32>,
    /// Key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, or `None` for a null value.
    pub value: Option<Bytes>,
    /// Headers, in order; duplicate keys allowed.
    pub headers: Vec<Header>,
    /// Timestamp in ms since the Unix epoch; `None` = now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Set the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Add a header.
    pub fn header(
        mut self,
        key: impl Into<skotch_protocol::record::ByteString>,
        value: impl Into<Bytes>,
    ) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }
}

/// Sends records to Kafka. Share it behind an `Arc`; dropping it (or
/// calling [`Producer::close`]) delivers what is queued first.
pub struct Producer {
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set by `close`: sends are refused from then on.
    closed: AtomicBool,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.shared.config)
            .field("idempotent", &self.shared.idempotent)
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How `send` waits for `buffer.memory`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Up to `max.block.ms`.
    Block,
    /// Not at all: [`Error::BufferFull`].
    Never,
}

impl Producer {
    /// A producer writing through `client`; it starts its sender task on
    /// the current tokio runtime.
    ///
    /// Errors: [`Error::Config`] for settings that contradict each other
    /// (see [`ProducerConfig::enable_idempotence`]) or a compression level
    /// the codec refuses.
    pub fn new(client: Client, config: ProducerConfig) -> Result<Self> {
        let (idempotent, why_not) = config.resolve_idempotence()?;
        if let Some(why) = why_not {
            tracing::info!("{why}");
        }
        let shared = Arc::new(Shared {
            acc: Accumulator::new(
                config.batch_size,
                config.compression,
                config.compression_level,
            ),
            pool: BufferPool::new(config.buffer_memory),
            client,
            config,
            idempotent,
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            fatal: OnceLock::new(),
        });
        let task = tokio::spawn(Sender::new(shared.clone()).run());
        Ok(Self {
            shared,
            task: Mutex::new(Some(task)),
            closed: AtomicBool::new(false),
        })
    }

    /// True when idempotence is on (see
    /// [`ProducerConfig::enable_idempotence`]).
    pub fn is_idempotent(&self) -> bool {
        self.shared.idempotent
    }

    /// Queue a record. Returns once the record is in its batch (after
    /// waiting up to `max.block.ms` for `buffer.memory` room, or for the
    /// metadata of a topic this producer has not written to yet); the
    /// returned future resolves when the broker has it. Dropping the
    /// future does not cancel the send.
    ///
    /// Errors now: [`Error::UnknownTopic`], [`Error::UnknownPartition`], a
    /// record larger than `max.request.size` ([`Error::Config`]),
    /// [`Error::Timeout`] after `max.block.ms`, [`Error::Closed`], or the
    /// producer's fatal error (fenced). Errors later, through the future:
    /// broker errors that are not retriable, and [`Error::Timeout`] after
    /// `delivery.timeout.ms`.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.send_inner(record, Wait::Block).await
    }

    /// [`send`](Self::send) without waiting for `buffer.memory`: a full
    /// buffer is [`Error::BufferFull`] at once. It may still wait for the
    /// metadata of a topic the producer has not seen yet.
    pub async fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.send_inner(record, Wait::Never).await
    }

    async fn send_inner(&self, record: ProducerRecord, wait: Wait) -> Result<DeliveryFuture> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(e) = self.shared.fatal.get() {
            return Err(e.clone());
        }
        let cfg = &self.shared.config;
        let size = record_size(&record);
        // Record fields are length-prefixed with i32 varints: whatever
        // max.request.size says, nothing near 2 GiB can be encoded.
        if size > cfg.max_request_size.min(i32::MAX as usize / 2) {
            return Err(Error::Config(format!(
                "record of {size} bytes is larger than max.request.size ({} bytes)",
                cfg.max_request_size
            )));
        }
        let topic = match self.shared.acc.topic(&record.topic) {
            Some(t) => t,
            None => self.learn_topic(&record.topic).await?,
        };
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let partition = match (record.partition, &record.key) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                return Err(Error::UnknownPartition {
                    topic: record.topic,
                    partition: p,
                })
            }
            (None, Some(k)) => partition_for_key(k, count),
            (None, None) => topic.sticky_partition(size, cfg.batch_size),
        };
        let slot = usize::try_from(partition)
            .ok()
            .and_then(|p| topic.partitions.get(p))
            .ok_or_else(|| Error::UnknownPartition {
                topic: record.topic.clone(),
                partition,
            })?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut rec = Record {
            timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
            ..Default::default()
        };
        let mut reservation: Option<Reservation> = None;
        loop {
            let mut spare = None;
            let appended =
                self.shared
                    .acc
                    .append(&topic, slot, rec, size, reservation.take(), &mut spare);
            if let Some(r) = spare {
                self.shared.pool.release(r);
            }
            match appended {
                Appended::Done {
                    delivery,
                    index,
                    wake,
                } => {
                    if wake {
                        self.shared.acc.wake.notify_one();
                    }
                    return Ok(DeliveryFuture::new(delivery, index, timestamp));
                }
                Appended::TooLarge => {
                    return Err(Error::Config(format!(
                        "record of {size} bytes cannot be encoded in a record batch"
                    )))
                }
                Appended::NeedsBatch { record, bytes } => {
                    // A batch closed on the way is worth sending while we
                    // wait for memory.
                    self.shared.acc.wake.notify_one();
                    rec = record;
                    reservation = Some(match wait {
                        Wait::Block => self.shared.pool.reserve(bytes, cfg.max_block).await?,
                        Wait::Never => self.shared.pool.try_reserve(bytes).ok_or_else(|| {
                            Error::BufferFull {
                                needed: bytes,
                                available: self.shared.pool.available(),
                            }
                        })?,
                    });
                    if self.closed.load(Ordering::Acquire) {
                        if let Some(r) = reservation.take() {
                            self.shared.pool.release(r);
                        }
                        return Err(Error::Closed);
                    }
                }
            }
        }
    }

    /// First send to a topic: wait (up to `max.block.ms`) for its metadata,
    /// creating it if `allow_auto_create_topics` and the broker allow.
    /// While a topic is being created Kafka 4.x says it does not exist, so
    /// with creation allowed "unknown topic" is retried until
    /// `max.block.ms`, as the Java producer waits for a topic's metadata.
    async fn learn_topic(&self, name: &str) -> Result<Arc<TopicQueues>> {
        let client = &self.shared.client;
        let allow = self.shared.config.allow_auto_create_topics;
        let deadline = std::time::Instant::now() + self.shared.config.max_block;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let r = client
                .retry(left, || client.topic_allowing(name, allow))
                .await;
            match r {
                Ok(info) if !info.partitions.is_empty() => {
                    return Ok(self.shared.acc.upsert_topic_info(&info))
                }
                Ok(_) => {}
                Err(Error::UnknownTopic(_)) if allow => {}
                Err(e) => return Err(e),
            }
            let wait = client.backoff().delay_random(attempt);
            attempt += 1;
            if std::time::Instant::now() + wait >= deadline {
                return Err(Error::UnknownTopic(name.to_string()));
            }
            client.invalidate_metadata();
            tokio::time::sleep(wait).await;
        }
    }

    /// Send every queued record now (ignoring `linger.ms`) and wait until
    /// each record sent before this call has succeeded or failed. Records
    /// sent meanwhile by other tasks do not hold it up.
    pub async fn flush(&self) -> Result<()> {
        let before = self.shared.acc.next_batch_id();
        self.shared.flushing.fetch_add(1, Ordering::AcqRel);
        self.shared.acc.wake.notify_one();
        self.shared.acc.wait_settled(before).await;
        self.shared.flushing.fetch_sub(1, Ordering::AcqRel);
        Ok(())
    }

    /// Stop taking records ([`Error::Closed`] from then on), deliver
    /// everything queued (each record still bounded by
    /// `delivery.timeout.ms`), and stop the sender task. Requests in flight
    /// are answered, never aborted.
    pub async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.flush().await?;
        self.shared.closing.store(true, Ordering::Release);
        self.shared.acc.wake.notify_one();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        self.shared.pool.close();
        Ok(())
    }
}

impl Drop for Producer {
    /// The sender task delivers what is queued, then stops.
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.acc.wake.notify_one();
    }
}

/// An upper bound of a record's encoded size, for `max.request.size`,
/// batch sizing and sticky partitioning.
fn record_size(r: &ProducerRecord) -> usize {
    let h: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 10)
        .sum();
    21 + r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()) + h
}
