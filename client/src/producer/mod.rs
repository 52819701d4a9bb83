//! The producer: records are partitioned like the Java client does, batched
//! per partition (`linger.ms`, `batch.size`), sent to partition leaders with
//! the configured `acks`, retried on retriable errors until
//! `delivery.timeout.ms`, and each record's fate is reported through its own
//! [`DeliveryFuture`].
//!
//! One background task (the sender) owns the [`accumulator::Accumulator`];
//! [`Producer::send`] partitions on the caller's task, so an unknown topic
//! is reported straight away, then hands the record over.
//!
//! Batches are compressed with `compression.type` when it is set (gzip,
//! snappy, lz4, zstd; all pure Rust), once, in the sender task, when the
//! batch is first sent; retries resend the same bytes.
//!
//! Not yet: idempotence (KIP-98 producer ids and sequences); a retried
//! batch may therefore be written twice if its first attempt did reach the
//! broker ("maybe produced").

pub mod accumulator;
pub mod partitioner;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use skotch_protocol::messages::ProduceRequest;
use skotch_protocol::record::{Compression, Header, Record};
use skotch_protocol::Uuid;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::client::{Client, ConnKind};
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use accumulator::{Accumulator, Batch};
use partitioner::{partition_for_key, StickyPartitioner};

/// `acks`: how many replicas must have the record before the broker
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it. The default.
    #[default]
    All,
}

impl Acks {
    fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings; defaults are the Java producer's (Kafka 4.x).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`. Default all.
    pub acks: Acks,
    /// `linger.ms`: how long a batch waits for more records. Default 5 ms
    /// (Kafka 4.0's default, KIP-1030).
    pub linger: Duration,
    /// `batch.size`: target size of a record batch, in bytes. Default 16 384.
    pub batch_size: usize,
    /// `delivery.timeout.ms`: limit from `send` to success or failure,
    /// retries included. Default 120 000 ms.
    pub delivery_timeout: Duration,
    /// `buffer.memory`: bytes of records waiting to be sent; `send` waits
    /// for room when full. Default 33 554 432 bytes (32 MiB).
    pub buffer_memory: usize,
    /// `max.request.size`: the largest record accepted, in bytes. Default
    /// 1 048 576.
    pub max_request_size: usize,
    /// `compression.type`: the codec of every batch (none, gzip, snappy,
    /// lz4, zstd). Default none. `batch.size` counts uncompressed bytes.
    pub compression: Compression,
    /// `compression.gzip.level` (1-9, default 6), `compression.lz4.level`
    /// (1-17, default 9) or `compression.zstd.level` (-131072-22, default
    /// 3), KIP-390, for the codec chosen; `None` for its default. lz4 and
    /// zstd accept every level Kafka does but compress at one fixed level
    /// each (lz4_flex's only one; ruzstd's `Fastest`, near C zstd level -1),
    /// see [`Compression::check_level`]. A level out of range, or any level
    /// for none or snappy, makes [`Producer::send`] fail with
    /// [`Error::Config`].
    pub compression_level: Option<i32>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            delivery_timeout: Duration::from_millis(120_000),
            buffer_memory: 33_554_432,
            max_request_size: 1_048_576,
            compression: Compression::None,
            compression_level: None,
        }
    }
}

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
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset; -1 with `acks=0`.
    pub offset: i64,
    /// The record's timestamp (the broker's, for LogAppendTime topics).
    pub timestamp: i64,
}

/// Resolves to the record's [`RecordMetadata`] once the broker has it, or
/// to the error that made it fail.
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl std::future::Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// What the caller attaches to each queued record.
struct Waiter {
    reply: oneshot::Sender<Result<RecordMetadata>>,
    timestamp: i64,
    _permit: OwnedSemaphorePermit,
}

enum Command {
    Append(TopicPartition, Record, Waiter),
    Flush(oneshot::Sender<()>),
}

/// Sends records to Kafka. Cheap to share behind an `Arc`; dropping it
/// (or calling [`Producer::close`]) delivers what is queued first.
pub struct Producer {
    client: Client,
    config: ProducerConfig,
    tx: mpsc::UnboundedSender<Command>,
    memory: Arc<Semaphore>,
    sticky: Mutex<StickyPartitioner>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.config)
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Producer {
    /// A producer writing through `client`.
    pub fn new(client: Client, config: ProducerConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = Sender {
            client: client.clone(),
            config: config.clone(),
            acc: Accumulator::new(config.batch_size, config.linger)
                .with_compression(config.compression, config.compression_level),
            in_flight: FuturesUnordered::new(),
            flush_waiters: Vec::new(),
        };
        let task = tokio::spawn(sender.run(rx));
        Self {
            memory: Arc::new(Semaphore::new(
                config.buffer_memory.min(Semaphore::MAX_PERMITS),
            )),
            client,
            config,
            tx,
            sticky: Mutex::new(StickyPartitioner::default()),
            task: Mutex::new(Some(task)),
        }
    }

    /// Queue a record. Returns once the record is accepted (after waiting
    /// for `buffer.memory` room if needed); the returned future resolves
    /// when the broker has it.
    ///
    /// Errors now: [`Error::UnknownTopic`], [`Error::UnknownPartition`], a
    /// record larger than `max.request.size` or a compression level the
    /// codec refuses ([`Error::Config`]), [`Error::Closed`]. Errors
    /// later, through the future: broker errors that are not retriable, and
    /// [`Error::Timeout`] after `delivery.timeout.ms`.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.config
            .compression
            .check_level(self.config.compression_level)
            .map_err(|e| Error::Config(e.to_string()))?;
        let size = record_size(&record);
        // Record fields are length-prefixed with i32 varints: whatever
        // max.request.size says, nothing near 2 GiB can be encoded.
        if size > self.config.max_request_size.min(i32::MAX as usize / 2) {
            return Err(Error::Config(format!(
                "record of {size} bytes is larger than max.request.size ({} bytes)",
                self.config.max_request_size
            )));
        }
        let topic = self
            .client
            .retry(
                self.config
                    .delivery_timeout
                    .min(self.client.config().request_timeout),
                || self.client.topic(&record.topic),
            )
            .await?;
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if count == 0 {
            return Err(Error::UnknownTopic(record.topic));
        }
        let partition = match (record.partition, &record.key) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                return Err(Error::UnknownPartition {
                    topic: record.topic,
                    partition: p,
                })
            }
            (None, Some(k)) => partition_for_key(k, count),
            (None, None) => {
                let available: Vec<i32> = topic
                    .partitions
                    .iter()
                    .filter(|p| p.leader >= 0)
                    .map(|p| p.partition)
                    .collect();
                self.sticky
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .partition(
                        &record.topic,
                        count,
                        &available,
                        size,
                        self.config.batch_size,
                        rand::random(),
                    )
            }
        };
        let permits = u32::try_from(size.clamp(1, self.config.buffer_memory)).unwrap_or(u32::MAX);
        let permit = self
            .memory
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| Error::Closed)?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let (reply, rx) = oneshot::channel();
        let rec = Record {
            timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
            ..Default::default()
        };
        self.tx
            .send(Command::Append(
                TopicPartition::new(record.topic, partition),
                rec,
                Waiter {
                    reply,
                    timestamp,
                    _permit: permit,
                },
            ))
            .map_err(|_| Error::Closed)?;
        Ok(DeliveryFuture { rx })
    }

    /// Send every queued record now and wait until each has succeeded or
    /// failed.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(tx))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Flush, then stop the sender task.
    pub async fn close(&self) -> Result<()> {
        let r = self.flush().await;
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            t.abort();
        }
        r
    }
}

/// An upper bound of a record's encoded size, for `buffer.memory`,
/// `max.request.size` and sticky partitioning.
fn record_size(r: &ProducerRecord) -> usize {
    let h: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 10)
        .sum();
    21 + r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()) + h
}

type Outcome = (
    i32,
    Vec<(TopicPartition, Batch<Waiter>)>,
    Result<Vec<(TopicPartition, PartResult)>>,
);

/// What the broker said about one partition's batch.
struct PartResult {
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    log_append_time: i64,
}

struct Sender {
    client: Client,
    config: ProducerConfig,
    acc: Accumulator<Waiter>,
    in_flight: FuturesUnordered<futures::future::BoxFuture<'static, Outcome>>,
    flush_waiters: Vec<oneshot::Sender<()>>,
}

impl Sender {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut open = true;
        loop {
            let now = Instant::now();
            self.expire(now);
            self.dispatch(now).await;
            if self.acc.is_empty() {
                for w in self.flush_waiters.drain(..) {
                    let _ = w.send(());
                }
                if !open {
                    return;
                }
            }
            let deadline = self.acc.next_deadline();
            tokio::select! {
                cmd = rx.recv(), if open => match cmd {
                    Some(Command::Append(tp, rec, w)) => self.acc.append(tp, rec, w, Instant::now()),
                    Some(Command::Flush(w)) => {
                        self.acc.begin_flush();
                        self.flush_waiters.push(w);
                    }
                    None => {
                        open = false;
                        self.acc.begin_flush();
                    }
                },
                Some(outcome) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.handle(outcome);
                }
                _ = sleep_until(deadline) => {}
            }
        }
    }

    /// Fail batches that waited longer than `delivery.timeout.ms`.
    fn expire(&mut self, now: Instant) {
        for (tp, b) in self.acc.expire(now, self.config.delivery_timeout) {
            let e = Error::Timeout {
                what: format!("delivery of {} records to {tp}", b.waiters.len()),
                after_ms: self.config.delivery_timeout.as_millis() as u64,
            };
            fail(b, &e);
        }
    }

    /// Turn ready batches into one Produce request per leader.
    async fn dispatch(&mut self, now: Instant) {
        let ready = self.acc.drain_ready(now);
        if ready.is_empty() {
            return;
        }
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, Batch<Waiter>)>> = BTreeMap::new();
        for (tp, mut b) in ready {
            if b.encoded.is_none() {
                match b.builder.build() {
                    Ok(bytes) => b.encoded = Some(bytes),
                    Err(e) => {
                        // Only a level the codec refuses gets here, and
                        // send checks that first.
                        self.acc.complete(&tp);
                        fail(b, &Error::Config(format!("encoding a record batch: {e}")));
                        continue;
                    }
                }
            }
            match self.client.leader(&tp.topic, tp.partition).await {
                Ok(l) => by_leader.entry(l).or_default().push((tp, b)),
                Err(e) if e.is_retriable() => {
                    self.client.invalidate_metadata();
                    let wait = self.client.backoff().delay_random(b.attempts);
                    self.acc.requeue(tp, b, now, wait);
                }
                Err(e) => {
                    self.acc.complete(&tp);
                    fail(b, &e);
                }
            }
        }
        for (leader, batches) in by_leader {
            let client = self.client.clone();
            let acks = self.config.acks;
            let timeout = self.client.config().request_timeout;
            self.in_flight.push(Box::pin(async move {
                let r = produce(&client, leader, acks, timeout, &batches).await;
                (leader, batches, r)
            }));
        }
    }

    /// Settle the batches of one finished Produce request.
    fn handle(&mut self, (leader, batches, result): Outcome) {
        let now = Instant::now();
        match result {
            Err(e) => {
                for (tp, b) in batches {
                    self.retry_or_fail(tp, b, e.clone(), now);
                }
                tracing::debug!(leader, "produce request failed");
            }
            Ok(parts) => {
                let mut parts: BTreeMap<TopicPartition, PartResult> = parts.into_iter().collect();
                for (tp, b) in batches {
                    match parts.remove(&tp) {
                        None => {
                            let e = Error::Broker {
                                code: ErrorCode::UNKNOWN_SERVER_ERROR,
                                message: Some("no answer for this partition".into()),
                                context: format!("produce to {tp}"),
                            };
                            self.retry_or_fail(tp, b, e, now);
                        }
                        Some(r) if r.error.is_ok() => {
                            self.acc.complete(&tp);
                            succeed(&tp, b, &r);
                        }
                        Some(r) => {
                            let e = Error::Broker {
                                code: r.error,
                                message: r.message,
                                context: format!("produce to {tp}"),
                            };
                            self.retry_or_fail(tp, b, e, now);
                        }
                    }
                }
            }
        }
    }

    fn retry_or_fail(&mut self, tp: TopicPartition, b: Batch<Waiter>, e: Error, now: Instant) {
        if e.needs_metadata_refresh() {
            self.client.invalidate_metadata();
        }
        let wait = self.client.backoff().delay_random(b.attempts);
        if e.is_retriable() && now + wait < b.created + self.config.delivery_timeout {
            tracing::debug!(%tp, error = %e, attempt = b.attempts + 1, "retrying batch");
            self.acc.requeue(tp, b, now, wait);
        } else {
            self.acc.complete(&tp);
            fail(b, &e);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn fail(b: Batch<Waiter>, e: &Error) {
    for w in b.waiters {
        let _ = w.reply.send(Err(e.clone()));
    }
}

fn succeed(tp: &TopicPartition, b: Batch<Waiter>, r: &PartResult) {
    for (i, w) in b.waiters.into_iter().enumerate() {
        let offset = if r.base_offset < 0 {
            -1
        } else {
            r.base_offset + i as i64
        };
        let _ = w.reply.send(Ok(RecordMetadata {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset,
            timestamp: if r.log_append_time >= 0 {
                r.log_append_time
            } else {
                w.timestamp
            },
        }));
    }
}

/// Send one Produce request with one batch per partition.
async fn produce(
    client: &Client,
    leader: i32,
    acks: Acks,
    timeout: Duration,
    batches: &[(TopicPartition, Batch<Waiter>)],
) -> Result<Vec<(TopicPartition, PartResult)>> {
    let conn = client.connection(leader, ConnKind::Produce).await?;
    let md = client.metadata();
    let mut topics: Vec<TopicProduceData> = Vec::new();
    let mut ids_known = true;
    for (tp, b) in batches {
        let data = PartitionProduceData {
            index: tp.partition,
            records: b.encoded.clone(),
        };
        match topics.last_mut() {
            Some(t) if t.name == tp.topic => t.partition_data.push(data),
            _ => {
                let id = md.topics.get(&tp.topic).map(|t| t.id).unwrap_or_default();
                ids_known &= id != Uuid::ZERO;
                topics.push(TopicProduceData {
                    name: tp.topic.clone(),
                    topic_id: id,
                    partition_data: vec![data],
                });
            }
        }
    }
    let mut version = conn.version::<ProduceRequest>()?;
    if !ids_known {
        // v13 names topics by id only.
        version = version.min(12);
    }
    let req = ProduceRequest {
        transactional_id: None,
        acks: acks.wire(),
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        topic_data: topics,
    };
    if acks == Acks::None {
        conn.send_no_response(&req, version).await?;
        return Ok(batches
            .iter()
            .map(|(tp, _)| {
                (
                    tp.clone(),
                    PartResult {
                        error: ErrorCode::NONE,
                        message: None,
                        base_offset: -1,
                        log_append_time: -1,
                    },
                )
            })
            .collect());
    }
    let resp = conn.send_version(&req, version, timeout).await?;
    let mut out = Vec::new();
    for t in resp.responses {
        let name = if t.topic_id != Uuid::ZERO {
            md.topic_name(&t.topic_id)
                .map(str::to_string)
                .unwrap_or(t.name)
        } else {
            t.name
        };
        for p in t.partition_responses {
            out.push((
                TopicPartition::new(name.clone(), p.index),
                PartResult {
                    error: ErrorCode(p.error_code),
                    message: p.error_message,
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                },
            ));
        }
    }
    Ok(out)
}
