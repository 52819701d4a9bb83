//! The sender task (Java's `Sender`, franz-go's sinks): it closes batches
//! whose `linger.ms` ran out, drains every partition's sendable batches
//! into one Produce request per leader, and settles the answers.
//!
//! The loop itself never awaits the network: each request (connecting,
//! compressing on a blocking thread, writing, waiting for the answer) is
//! its own future, InitProducerId and metadata refreshes too, and the loop
//! reads leaders from the client's metadata snapshot. So a broker that
//! hangs (a long GC pause, a hung disk) holds back only the partitions it
//! leads; each broker's requests are bounded by
//! `max.in.flight.requests.per.connection`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::{InitProducerIdRequest, ProduceRequest};
use skotch_protocol::record::{with_producer_fields, Compression};
use skotch_protocol::Uuid;
use tokio::sync::oneshot;

use super::accumulator::{Accumulator, PartitionSlot, Payload, ProducerBatch, TopicQueues};
use super::config::{Acks, ProducerConfig};
use super::delivery::{BatchAck, DeliveryReport};
use super::idempotence::{
    classify, BatchState, Failure, ProducerIdAndEpoch, ProducerState, Verdict,
};
use super::memory::BufferPool;
use super::produce_request::{self, TopicBatches};
use crate::client::{Client, ConnKind};
use crate::error::{Error, Result};
use crate::metadata::ClusterMetadata;

/// What `send` and the sender task share.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: ProducerConfig,
    pub(crate) acc: Accumulator,
    pub(crate) pool: BufferPool,
    pub(crate) idempotent: bool,
    /// Flushes in progress: while above 0 every open batch is sent at once.
    pub(crate) flushing: AtomicUsize,
    /// Closing: send what is queued, then stop.
    pub(crate) closing: AtomicBool,
    /// A fatal error (fenced, not authorized): every send fails with it.
    pub(crate) fatal: OnceLock<Error>,
}

/// Batches above this many bytes in one request are finished (CRC,
/// compression) on a blocking thread rather than on the sender's worker:
/// CRC-32C runs at about 18 GB/s, so below this it costs a few µs.
const INLINE_ENCODE_BYTES: usize = 256 * 1024;

/// A request unanswered this long makes the sender look at fresh metadata
/// (from other brokers first): if its broker was fenced meanwhile, its
/// connection is closed so the batches go to the new leaders now rather
/// than after `request.timeout.ms`. Normal acks=all answers take
/// milliseconds.
const STALL: std::time::Duration = std::time::Duration::from_secs(1);

/// How much earlier than `linger.ms` a batch may be sent: the timer's tick
/// (see `Sender::pass`).
const LINGER_SLACK: std::time::Duration = std::time::Duration::from_millis(1);

/// The requests in flight to one broker.
#[derive(Default)]
struct Sink {
    /// When each unanswered request was made, oldest first.
    started: std::collections::VecDeque<Instant>,
}

/// A batch taken out of its queue for one request.
struct Sending {
    topic: Arc<TopicQueues>,
    slot: Arc<PartitionSlot>,
    id: u64,
    payload: Payload,
    producer: ProducerIdAndEpoch,
    base_sequence: i32,
}

/// What the broker said about one partition's batch.
struct PartResult {
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
}

/// The partitions' answers, by topic and partition.
type Answers = HashMap<(Arc<str>, i32), PartResult>;

/// A request's answers, or why it has none.
type RequestResult = std::result::Result<Answers, (Error, Failure)>;

struct RequestOutcome {
    broker: i32,
    batches: Vec<(Sending, Option<Bytes>)>,
    result: RequestResult,
}

pub(crate) struct Sender {
    shared: Arc<Shared>,
    state: ProducerState,
    /// Requests in flight per broker.
    sinks: HashMap<i32, Sink>,
    requests: FuturesUnordered<BoxFuture<'static, RequestOutcome>>,
    /// Per broker, fires when the last request made for it is in its
    /// connection's write queue: requests are built (and compressed) in
    /// parallel but queued in the order they were made, so a partition's
    /// batches reach the broker in sequence order.
    tickets: HashMap<i32, oneshot::Receiver<()>>,
    init: Option<BoxFuture<'static, Result<ProducerIdAndEpoch>>>,
    init_attempts: u32,
    init_retry_at: Option<Instant>,
    refresh: Option<BoxFuture<'static, Result<()>>>,
    refresh_wanted: bool,
    refresh_attempts: u32,
    refresh_retry_at: Option<Instant>,
    last_refresh: Instant,
    seen_metadata: Option<Arc<ClusterMetadata>>,
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let idempotent = shared.idempotent;
        Self {
            shared,
            state: ProducerState::new(idempotent),
            sinks: HashMap::new(),
            requests: FuturesUnordered::new(),
            tickets: HashMap::new(),
            init: None,
            init_attempts: 0,
            init_retry_at: None,
            refresh: None,
            refresh_wanted: false,
            refresh_attempts: 0,
            refresh_retry_at: None,
            last_refresh: Instant::now(),
            seen_metadata: None,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let now = Instant::now();
            let (next, dispatched, idle) = self.pass(now);
            if idle && self.requests.is_empty() && self.shared.closing.load(Ordering::Acquire) {
                return;
            }
            if dispatched {
                // A broker may take more requests: look again before waiting.
                tokio::task::yield_now().await;
                continue;
            }
            let wake = self.shared.acc.wake.notified();
            tokio::select! {
                _ = wake => {}
                Some(o) = self.requests.next(), if !self.requests.is_empty() => {
                    self.complete(o);
                    // Settle whatever else finished before the next pass.
                    while let Some(Some(o)) = self.requests.next().now_or_never() {
                        self.complete(o);
                    }
                }
                r = poll_opt(&mut self.init) => {
                    self.init = None;
                    self.init_done(r);
                }
                r = poll_opt(&mut self.refresh) => {
                    self.refresh = None;
                    match r {
                        Ok(()) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "producer metadata refresh failed");
                            self.refresh_wanted = true;
                        }
                    }
                }
                _ = sleep_until(next) => {}
            }
        }
    }

    /// One look at every partition. Returns when to look again, whether a
    /// request went out, and whether nothing at all is queued.
    fn pass(&mut self, now: Instant) -> (Option<Instant>, bool, bool) {
        let sh = self.shared.clone();
        let cfg = &sh.config;
        let md = sh.client.metadata();
        if !self
            .seen_metadata
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, &md))
        {
            self.apply_metadata(&md);
            self.seen_metadata = Some(md.clone());
        }
        if self.state.bump_if_requested() {
            tracing::info!(
                producer_id = self.state.current().producer_id,
                epoch = self.state.current().epoch,
                "bumped the idempotent producer's epoch (KIP-360)"
            );
        }
        // tokio's timer fires on the first whole-millisecond tick at or
        // after a deadline, so sleeping until `created + linger` held
        // batches 0.5 ms longer than linger.ms on average (seen as +0.55 ms
        // median end-to-end latency against Java and librdkafka in
        // scripts/bench). Due up to 1 ms early (half the linger when that
        // is shorter), a batch is sent within linger.ms of its first
        // record, as Java's millisecond clock sends it.
        let linger_due = cfg.linger - (cfg.linger / 2).min(LINGER_SLACK);
        let mut next: Option<Instant> = None;
        let earliest = |t: Instant, next: &mut Option<Instant>| {
            *next = Some(next.map_or(t, |n| n.min(t)));
        };
        if self.state.needs_producer_id() && self.init.is_none() {
            match self.init_retry_at {
                Some(t) if now < t => earliest(t, &mut next),
                _ => self.start_init(),
            }
        }
        let fatal = self.state.fatal();
        let flush_all =
            sh.flushing.load(Ordering::Acquire) > 0 || sh.closing.load(Ordering::Acquire);
        let mut requests: HashMap<i32, (Vec<Sending>, usize)> = HashMap::new();
        let mut settle: Vec<(u64, ProducerBatch, Result<BatchAck>)> = Vec::new();
        let mut need_refresh = false;
        let mut idle = true;
        for topic in sh.acc.topics().values() {
            for slot in &topic.partitions {
                let mut p = slot.lock();
                if p.is_idle() {
                    continue;
                }
                idle = false;
                if let Some(o) = &p.open {
                    let deadline = o.created() + linger_due;
                    if flush_all || fatal.is_some() || now >= deadline || o.size() >= cfg.batch_size
                    {
                        p.close_open();
                    } else {
                        earliest(deadline, &mut next);
                    }
                }
                if let Some(code) = fatal {
                    let e = Error::Broker {
                        code,
                        message: None,
                        context: "the idempotent producer can no longer send".into(),
                    };
                    for b in p.queue.drain_all() {
                        settle.push((b.id, b.batch, Err(e.clone())));
                    }
                    continue;
                }
                for b in p.queue.expire(now, cfg.delivery_timeout) {
                    let e = Error::Timeout {
                        what: format!(
                            "delivery of {} records to {}-{}",
                            b.records, topic.name, slot.partition
                        ),
                        after_ms: cfg.delivery_timeout.as_millis() as u64,
                    };
                    settle.push((b.id, b.batch, Err(e)));
                }
                p.queue.maybe_resolve(&mut self.state);
                for b in p.queue.maybe_rewrite(&self.state) {
                    let e = Error::Broker {
                        code: ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                        message: Some(
                            "an earlier attempt may have been written; the batch is not resent \
                             under the new producer epoch, which could write it twice"
                                .into(),
                        ),
                        context: format!("produce to {}-{}", topic.name, slot.partition),
                    };
                    settle.push((b.id, b.batch, Err(e)));
                }
                if let Some(b) = p.queue.iter().find(|b| b.state != BatchState::InFlight) {
                    earliest(b.created + cfg.delivery_timeout, &mut next);
                }
                if p.queue.is_empty() {
                    continue;
                }
                let Some(leader) = md.leader(&topic.name, slot.partition) else {
                    need_refresh = true;
                    continue;
                };
                let busy = self.sinks.get(&leader).map_or(0, |s| s.started.len());
                let (req, size) = requests.entry(leader).or_default();
                if busy >= cfg.max_in_flight || (!req.is_empty() && *size >= cfg.max_request_size) {
                    continue;
                }
                if let Some(b) = p.queue.next_to_send(&self.state, now, cfg.max_in_flight) {
                    let payload = std::mem::replace(&mut b.batch.payload, Payload::Sending);
                    *size += match &payload {
                        Payload::Builder(x) => x.estimated_size(),
                        Payload::Encoded { bytes, .. } => bytes.len(),
                        Payload::Sending => 0,
                    };
                    req.push(Sending {
                        topic: topic.clone(),
                        slot: slot.clone(),
                        id: b.id,
                        payload,
                        producer: b.producer,
                        base_sequence: b.base_sequence,
                    });
                }
                // A retry whose backoff is over but that must wait for an
                // answer (an older batch in flight) is woken by that
                // answer, not by a timer that would spin.
                if let Some(t) = p.queue.next_retry().filter(|t| *t > now) {
                    earliest(t, &mut next);
                }
            }
        }
        let mut dispatched = false;
        for (leader, (batches, size)) in requests {
            if batches.is_empty() {
                continue;
            }
            dispatched = true;
            self.sinks.entry(leader).or_default().started.push_back(now);
            let client = sh.client.clone();
            let acks = cfg.acks;
            let heavy = cfg.compression != Compression::None || size > INLINE_ENCODE_BYTES;
            let (queued, ticket) = oneshot::channel();
            let order = Order {
                after: self.tickets.insert(leader, ticket),
                queued,
            };
            self.requests
                .push(produce(client, leader, acks, heavy, batches, order).boxed());
        }
        for (id, b, r) in settle {
            self.settle(id, b, r);
        }
        for (broker, sink) in &self.sinks {
            if let Some(t) = sink.started.front() {
                if now.duration_since(*t) >= STALL {
                    sh.client.suspect(*broker);
                    if now.duration_since(self.last_refresh) >= STALL {
                        need_refresh = true;
                    } else {
                        earliest(self.last_refresh + STALL, &mut next);
                    }
                } else {
                    earliest(*t + STALL, &mut next);
                }
            }
        }
        if need_refresh
            || now.duration_since(self.last_refresh) >= sh.client.config().metadata_max_age
        {
            self.refresh_wanted = true;
        }
        if !self.refresh_wanted && self.refresh.is_none() {
            self.refresh_attempts = 0;
        }
        if self.refresh_wanted && self.refresh.is_none() {
            match self.refresh_retry_at {
                Some(t) if now < t => earliest(t, &mut next),
                _ => self.start_refresh(),
            }
        }
        (next, dispatched, idle)
    }

    /// New metadata: topics learn partition counts, ids and which
    /// partitions have leaders (for the sticky partitioner).
    fn apply_metadata(&mut self, md: &ClusterMetadata) {
        // A broker the cluster fenced (it left the metadata) will not
        // answer what it has: fail those requests now, so their batches
        // are retried at the new leaders. Idempotence makes the resend
        // safe even if the broker did write them.
        for (broker, sink) in &self.sinks {
            if !sink.started.is_empty()
                && !md.brokers.is_empty()
                && !md.brokers.contains_key(broker)
            {
                tracing::warn!(
                    broker,
                    requests = sink.started.len(),
                    "broker left the cluster metadata with produce requests unanswered; \
                     closing its connection"
                );
                self.shared
                    .client
                    .close_connection(*broker, ConnKind::Produce);
            }
        }
        for name in self.shared.acc.topics().keys() {
            if let Some(info) = md.topics.get(&**name) {
                // Unchanged topics are left as they are.
                self.shared.acc.upsert_topic_info(info);
            }
        }
    }

    /// Start a metadata refresh. Refreshes that follow each other because
    /// the last one did not help (no leader yet, errors) back off
    /// exponentially (`retry.backoff.ms` .. `retry.backoff.max.ms`).
    fn start_refresh(&mut self) {
        let now = Instant::now();
        self.refresh_wanted = false;
        self.refresh_retry_at = Some(
            now + self
                .shared
                .client
                .backoff()
                .delay_random(self.refresh_attempts),
        );
        self.refresh_attempts = self.refresh_attempts.saturating_add(1);
        self.last_refresh = now;
        let client = self.shared.client.clone();
        let topics: Vec<String> = self
            .shared
            .acc
            .topics()
            .keys()
            .map(|t| t.to_string())
            .collect();
        let allow = self.shared.config.allow_auto_create_topics;
        self.refresh = Some(
            async move {
                client.invalidate_metadata();
                client
                    .refresh_metadata_allowing(&topics, allow)
                    .await
                    .map(|_| ())
            }
            .boxed(),
        );
    }

    fn start_init(&mut self) {
        let client = self.shared.client.clone();
        self.init = Some(init_producer_id(client).boxed());
    }

    fn init_done(&mut self, r: Result<ProducerIdAndEpoch>) {
        match r {
            Ok(id) => {
                tracing::debug!(
                    producer_id = id.producer_id,
                    epoch = id.epoch,
                    "idempotent producer id"
                );
                self.init_attempts = 0;
                self.init_retry_at = None;
                self.state.set_producer_id(id);
            }
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "InitProducerId failed, retrying");
                let wait = self
                    .shared
                    .client
                    .backoff()
                    .delay_random(self.init_attempts);
                self.init_attempts = self.init_attempts.saturating_add(1);
                self.init_retry_at = Some(Instant::now() + wait);
            }
            Err(e) => {
                tracing::error!(error = %e, "InitProducerId failed; the producer cannot send");
                let code = e.code().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR);
                let _ = self.shared.fatal.set(e);
                self.state.set_fatal(code);
            }
        }
    }

    /// Settle one request's batches.
    fn complete(&mut self, o: RequestOutcome) {
        if let Some(sink) = self.sinks.get_mut(&o.broker) {
            // A connection answers in order, so the oldest is done.
            sink.started.pop_front();
        }
        let now = Instant::now();
        let cfg = &self.shared.config;
        let mut settle: Vec<(u64, ProducerBatch, Result<BatchAck>)> = Vec::new();
        for (s, encoded) in o.batches {
            let tp = || format!("{}-{}", s.topic.name, s.slot.partition);
            let answer = match &o.result {
                Ok(parts) => match parts.get(&(s.topic.name.clone(), s.slot.partition)) {
                    Some(r) => match classify(r.error, r.log_start_offset) {
                        None => Ok(BatchAck {
                            base_offset: r.base_offset,
                            log_append_time: r.log_append_time,
                        }),
                        Some(failure) => Err((
                            Error::Broker {
                                code: r.error,
                                message: r.message.clone(),
                                context: format!("produce to {}", tp()),
                            },
                            failure,
                        )),
                    },
                    None => Err((
                        Error::Broker {
                            code: ErrorCode::UNKNOWN_SERVER_ERROR,
                            message: Some("no answer for this partition".into()),
                            context: format!("produce to {}", tp()),
                        },
                        // The broker answered without it: as if it never
                        // arrived, which a retry tells.
                        Failure::Unknown,
                    )),
                },
                Err((e, f)) => Err((e.clone(), *f)),
            };
            let mut p = s.slot.lock();
            match answer {
                Ok(ack) => {
                    tracing::trace!(tp = %tp(), base_sequence = s.base_sequence, offset = ack.base_offset, "produced");
                    if let Some(b) = p.queue.on_success(s.id) {
                        settle.push((b.id, b.batch, Ok(ack)));
                    }
                }
                Err((error, failure)) => {
                    if error.needs_metadata_refresh() || failure != Failure::NotSent {
                        self.refresh_wanted = true;
                    }
                    let last_acked = p.queue.last_acked_sequence();
                    let Some(b) = p.queue.get_mut(s.id) else {
                        continue;
                    };
                    b.batch.payload = match (encoded, s.payload) {
                        (Some(bytes), _) => Payload::Encoded {
                            bytes,
                            producer: s.producer,
                            base_sequence: s.base_sequence,
                        },
                        (None, payload) => payload,
                    };
                    let wait = self.shared.client.backoff().delay_random(b.attempts);
                    let can_retry =
                        b.attempts < cfg.retries && now + wait < b.created + cfg.delivery_timeout;
                    tracing::debug!(
                        tp = %tp(),
                        %error,
                        attempt = b.attempts + 1,
                        base_sequence = s.base_sequence,
                        epoch = s.producer.epoch,
                        records = b.records,
                        last_acked,
                        can_retry,
                        "produce attempt failed"
                    );
                    match p
                        .queue
                        .on_failure(s.id, failure, now + wait, can_retry, &mut self.state)
                    {
                        None | Some(Verdict::Retry) => {}
                        Some(Verdict::Failed(b)) | Some(Verdict::Fatal(b)) => {
                            settle.push((b.id, b.batch, Err(error)));
                        }
                    }
                }
            }
        }
        if let Some(code) = self.state.fatal() {
            let _ = self.shared.fatal.set(Error::Broker {
                code,
                message: None,
                context: "the idempotent producer was fenced".into(),
            });
        }
        for (id, b, r) in settle {
            self.settle(id, b, r);
        }
    }

    /// A batch's records learn their fate; its memory goes back.
    fn settle(&self, id: u64, b: ProducerBatch, r: Result<BatchAck>) {
        if let Some(cb) = &self.shared.config.on_delivery {
            (cb.0)(&DeliveryReport {
                topic: b.delivery.topic(),
                partition: b.delivery.partition(),
                record_count: b.records,
                result: r.as_ref().copied(),
            });
        }
        b.delivery.settle(r);
        if let Some(res) = b.reservation {
            self.shared.pool.release(res);
        }
        self.shared.acc.settled(id);
    }
}

async fn poll_opt<T>(f: &mut Option<BoxFuture<'static, T>>) -> T {
    match f.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// InitProducerId without a transactional id (any broker answers it).
/// Java sends `transaction.timeout.ms` = `Integer.MAX_VALUE` here.
async fn init_producer_id(client: Client) -> Result<ProducerIdAndEpoch> {
    let conn = client.any_connection().await?;
    let req = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: i32::MAX,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    let version = conn.version::<InitProducerIdRequest>()?;
    let resp = conn
        .send_version(&req, version, client.config().request_timeout)
        .await?;
    Error::check(resp.error_code, None, || "InitProducerId".to_string())?;
    if resp.producer_id < 0 || resp.producer_epoch < 0 {
        // A broken broker: asking again at once would loop, so it is fatal.
        return Err(Error::Broker {
            code: ErrorCode::UNKNOWN_SERVER_ERROR,
            message: Some(format!(
                "InitProducerId answered producer id {} epoch {}",
                resp.producer_id, resp.producer_epoch
            )),
            context: "InitProducerId".into(),
        });
    }
    Ok(ProducerIdAndEpoch {
        producer_id: resp.producer_id,
        epoch: resp.producer_epoch,
    })
}

/// What one batch needs to be encoded for an attempt.
type ToEncode = (Payload, ProducerIdAndEpoch, i32);

/// Finish each batch's bytes for this attempt: compress and add the header
/// on the first send; on later sends reuse the bytes, or rewrite the
/// producer fields if an epoch bump renumbered the batch.
fn encode(batches: Vec<ToEncode>) -> Result<Vec<Bytes>> {
    let mut out = Vec::with_capacity(batches.len());
    for (payload, producer, base_sequence) in batches {
        let bytes = match payload {
            Payload::Builder(b) => b
                .producer(producer.producer_id, producer.epoch, base_sequence)
                .finish()?,
            Payload::Encoded {
                bytes,
                producer: p,
                base_sequence: s,
            } if p == producer && s == base_sequence => bytes,
            Payload::Encoded { bytes, .. } => {
                with_producer_fields(&bytes, producer.producer_id, producer.epoch, base_sequence)?
            }
            Payload::Sending => {
                return Err(Error::Config("internal: batch sent twice at once".into()))
            }
        };
        out.push(bytes);
    }
    Ok(out)
}

/// Where a request stands among its broker's requests.
struct Order {
    /// Fires (or is dropped) once the previous request is queued.
    after: Option<oneshot::Receiver<()>>,
    /// To fire once this one is.
    queued: oneshot::Sender<()>,
}

/// One Produce request to `broker` with one batch per partition.
async fn produce(
    client: Client,
    broker: i32,
    acks: Acks,
    heavy: bool,
    mut batches: Vec<Sending>,
    order: Order,
) -> RequestOutcome {
    let payloads: Vec<ToEncode> = batches
        .iter_mut()
        .map(|s| {
            (
                std::mem::replace(&mut s.payload, Payload::Sending),
                s.producer,
                s.base_sequence,
            )
        })
        .collect();
    let encoded = if heavy {
        tokio::task::spawn_blocking(move || encode(payloads))
            .await
            .unwrap_or_else(|e| Err(Error::Config(format!("encoding a batch failed: {e}"))))
    } else {
        encode(payloads)
    };
    let encoded = match encoded {
        Ok(e) => e,
        Err(e) => {
            // Only a broken batch gets here (send checks the codec level);
            // the builder is gone, so the batches fail.
            let failure = Failure::Broker {
                code: ErrorCode::UNKNOWN_SERVER_ERROR,
                log_start_offset: -1,
            };
            return RequestOutcome {
                broker,
                batches: batches.into_iter().map(|s| (s, None)).collect(),
                result: Err((e, failure)),
            };
        }
    };
    if let Some(previous) = order.after {
        // Err: the previous request failed before it was queued; either
        // way it no longer holds its place.
        let _ = previous.await;
    }
    let result = send_produce(&client, broker, acks, &batches, &encoded, order.queued).await;
    RequestOutcome {
        broker,
        batches: batches
            .into_iter()
            .zip(encoded.into_iter().map(Some))
            .collect(),
        result,
    }
}

async fn send_produce(
    client: &Client,
    broker: i32,
    acks: Acks,
    batches: &[Sending],
    encoded: &[Bytes],
    queued: oneshot::Sender<()>,
) -> RequestResult {
    let timeout = client.config().request_timeout;
    let conn = client
        .connection(broker, ConnKind::Produce)
        .await
        .map_err(|e| (e, Failure::NotSent))?;
    let mut topics: Vec<TopicBatches<'_>> = Vec::new();
    let mut ids_known = true;
    for (s, bytes) in batches.iter().zip(encoded) {
        match topics.last_mut() {
            Some(t) if *t.name == *s.topic.name => t.partitions.push((s.slot.partition, bytes)),
            _ => {
                ids_known &= s.topic.id != Uuid::ZERO;
                topics.push(TopicBatches {
                    name: &s.topic.name,
                    id: s.topic.id,
                    partitions: vec![(s.slot.partition, bytes)],
                });
            }
        }
    }
    let mut version = conn
        .version::<ProduceRequest>()
        .map_err(|e| (e, Failure::NotSent))?;
    if !ids_known {
        // v13 names topics by id only.
        version = version.min(12);
    }
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let body = produce_request::encode(version, acks.wire(), timeout_ms, &topics)
        .map_err(|e| (Error::Encode(e), Failure::NotSent))?;
    let expects_response = acks != Acks::None;
    let resp = conn
        .send_encoded_queued::<ProduceRequest>(body, version, expects_response, timeout, || {
            let _ = queued.send(());
        })
        .await
        .map_err(|e| {
            let f = if matches!(e, Error::Encode(_) | Error::UnsupportedVersion { .. }) {
                Failure::NotSent
            } else {
                Failure::Unknown
            };
            (e, f)
        })?;
    let Some(resp) = resp else {
        // acks=0: written is all we learn.
        return Ok(batches
            .iter()
            .map(|s| {
                (
                    (s.topic.name.clone(), s.slot.partition),
                    PartResult {
                        error: ErrorCode::NONE,
                        message: None,
                        base_offset: -1,
                        log_append_time: -1,
                        log_start_offset: -1,
                    },
                )
            })
            .collect());
    };
    let mut out = HashMap::with_capacity(batches.len());
    for t in resp.responses {
        // v13 answers by topic id; match it to the names we sent.
        let name: Option<Arc<str>> = batches
            .iter()
            .find(|s| {
                if t.topic_id != Uuid::ZERO {
                    s.topic.id == t.topic_id
                } else {
                    *s.topic.name == *t.name
                }
            })
            .map(|s| s.topic.name.clone());
        let Some(name) = name else { continue };
        for p in t.partition_responses {
            out.insert(
                (name.clone(), p.index),
                PartResult {
                    error: ErrorCode(p.error_code),
                    message: p.error_message,
                    base_offset: p.base_offset,
                    log_append_time: p.log_append_time_ms,
                    log_start_offset: p.log_start_offset,
                },
            );
        }
    }
    Ok(out)
}
