//! A writer that survives crashes: every message goes to an on-disk
//! [journal](crate::journal) before it is sent and is marked sent once the
//! broker acknowledged it, so a writer reopened on the same journal after a
//! crash, a `kill -9` or a power loss sends again what was never
//! acknowledged. hop-client's `hop.robust_publisher.RobustProducer`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), skotch_stream::RobustError> {
//! use skotch_stream::{JournalOptions, Message, RobustWriter, Stream};
//! let stream = Stream::new();
//! // Re-sends, in order, what a previous run left unacknowledged, before
//! // anything written here.
//! let mut w = RobustWriter::open(
//!     &stream,
//!     "kafka://127.0.0.1:9092/alerts",
//!     "alerts.journal",
//!     JournalOptions::default(),
//! )
//! .await?;
//! println!("re-sending {} message(s) from the last run", w.resent());
//! w.write(Message::Json(serde_json::json!({"hello": "world"}))).await?;
//! let stats = w.close().await?; // delivered, marked, journal emptied
//! println!("{} delivered", stats.delivered);
//! # Ok(()) }
//! ```
//!
//! # What is guaranteed
//!
//! **At least once**, for every message that reached the journal: a
//! message is journaled before the producer sees it, and leaves the
//! journal only once the broker acknowledged it (`acks=all`), or refused
//! it for good (see "Failures"). Reopening the journal re-sends the rest,
//! in their original order and before any new message, byte for byte: the
//! journal holds the whole Kafka record (topic, key, value, every header
//! including hop's `_id`, `_sender`, `_test`, `_format`, and the original
//! timestamp), so a re-sent message is the same message and readers can
//! drop duplicates by `_id`.
//!
//! **Duplicates** happen only for messages in flight at a crash: sent, but
//! whose acknowledgement (or its sent mark in the journal) had not arrived
//! when the process died. They are at most the messages pending in the
//! journal at the crash, which is what the next open re-sends
//! ([`RobustWriter::resent`]). Within one process the producer is
//! idempotent (enforced: [`RobustWriter::open`] refuses a producer without
//! idempotence), so its own retries never duplicate nor reorder.
//!
//! **When a message is the journal's**: [`write`](RobustWriter::write)
//! returns once the message is *queued* (at most [`QUEUE_CAPACITY`]
//! messages wait), not journaled: a dedicated thread journals queued
//! messages in batches, one `fsync` per batch (group commit), which is
//! what makes the journal cheap (see the figures below). Messages queued
//! but not yet journaled when the process dies are lost with it, like the
//! unread end of a pipe. [`journaled`](RobustWriter::journaled) waits until
//! everything written so far is in the journal (durable as the
//! [`FsyncPolicy`] says); [`flush`](RobustWriter::flush) waits until it is
//! delivered and marked, so a crash after it re-sends nothing written
//! before it.
//!
//! # Durability: the [`FsyncPolicy`] trade-off
//!
//! The policy in the [`JournalOptions`] is applied per batch by the
//! journal thread, which owns the [`Journal`] (opened with
//! [`FsyncPolicy::Never`] so that it does not sync record by record):
//!
//! - [`FsyncPolicy::EveryAppend`] (default): a batch of messages is
//!   `fsync`ed before any of them is handed to the producer, and a batch of
//!   sent marks once written. Survives a power loss or an OS crash: every
//!   journaled message is on disk before it can reach the broker. Costs one
//!   `fsync` per batch (per message when messages come one at a time).
//! - [`FsyncPolicy::Interval`]: `fsync` when the interval has passed at a
//!   batch, when the journal thread has been idle that long, on
//!   [`flush`](RobustWriter::flush) and on close. Survives a process crash
//!   (`kill -9`: the data is in the OS page cache); an OS crash or power
//!   loss may lose what was journaled within the last interval, even
//!   messages already delivered or not, or leave a journal that reports
//!   corruption (see [`crate::journal`], "Durability").
//! - [`FsyncPolicy::Never`]: the page cache only; survives a process crash,
//!   not an OS crash. Compactions still `fsync` their new file.
//!
//! Measured (debug build, 2 cores, ext4 on a virtual disk, the local
//! single broker; 10 000 messages of ~20 bytes written in a loop, then
//! `close`; `cargo test -p skotch-stream --test robust_writer --
//! --ignored --nocapture throughput`, three rounds on a quiet machine):
//!
//! | journal | messages/s |
//! | --- | --- |
//! | `EveryAppend` | 39 000 - 73 000 |
//! | `Interval(100 ms)` | 65 000 - 77 000 |
//! | `Never` | 63 000 - 78 000 |
//! | none (plain [`crate::StreamWriter`]) | 93 000 - 114 000 |
//! | the [`Journal`] alone, one synced append and mark per message, no broker | 2 800 |
//!
//! Batching is what makes `EveryAppend` affordable: the naive use of the
//! journal `fsync`s twice per message (~0.18 ms each here); the writer
//! `fsync`s once per batch, so `EveryAppend` costs little more than the
//! other policies. On a loaded machine (other builds running) all three
//! fell to 13 000 - 25 000 messages/s, the plain writer to 31 000 - 44 000.
//!
//! # Journal I/O
//!
//! The journal does blocking file I/O. It lives on its own thread
//! (`skotch-journal`), never on a tokio worker: opening (reading, recovery,
//! compaction), appends, sent marks, `fsync`s and compaction all run
//! there. Appends come in batches of up to [`MAX_BATCH`] messages; the
//! acknowledgements that arrive together are marked together, and one
//! `fsync` covers each round of work.
//!
//! # Compaction
//!
//! The journal compacts itself (see [`crate::journal`], "Compaction"):
//! the file is truncated to its header whenever nothing is pending (after
//! the last acknowledgement of a burst), and rewritten without its dead
//! records when they pass [`JournalOptions::compact_after`] and outnumber
//! the live ones (a writer that is never idle). [`close`](RobustWriter::close)
//! compacts once more after everything was delivered, which leaves an
//! empty journal (the 12-byte header) unless messages failed.
//!
//! # Failures
//!
//! - A delivery that fails because the broker refused the record itself
//!   (`MESSAGE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE`, `INVALID_RECORD`,
//!   `INVALID_TIMESTAMP`, or a record above `max.request.size`) can never
//!   succeed: it is marked sent (dropped from the journal), as hop does
//!   for errors that are not retriable, and counted in
//!   [`RobustStats::dropped`]. The broker refuses whole batches, so each
//!   message of a refused batch is first sent once more in a batch of its
//!   own (as Java splits a batch refused as too large): only the culprit
//!   is dropped.
//! - Any other failure (a `produce_timeout` that ran out, a missing topic,
//!   a fenced producer) leaves the message in the journal for the next
//!   open ([`RobustStats::kept`]). With the default `produce_timeout` of 0
//!   (no limit) the producer retries retriable errors for ever, so these
//!   are rare.
//! - [`flush`](RobustWriter::flush) and [`close`](RobustWriter::close)
//!   report both kinds as [`RobustError::Undelivered`].
//! - A journal failure (a write or `fsync` error) stops the writer: later
//!   calls return [`RobustError::JournalFailed`] with the number of queued
//!   messages that were neither journaled nor sent. What the journal holds
//!   is recovered at the next open.
//! - Opening a corrupt journal fails with [`RobustError::Journal`]
//!   wrapping [`JournalError::Corrupt`], which names the file, the byte
//!   offset and the problem; a journal that its group or others may access
//!   is refused ([`JournalError::Permissions`]); one that another writer
//!   has open is refused ([`JournalError::Locked`]).
//!
//! # Differences from hop's RobustProducer
//!
//! - hop's `write` appends to the journal before it returns (one
//!   unsynchronised append each); here `write` queues and the journal thread
//!   appends in batches: faster, but the last queued messages die with the
//!   process (use [`journaled`](RobustWriter::journaled) for hop's
//!   guarantee).
//! - hop never `fsync`s (`flush()` to the OS only): a power loss can lose
//!   any message. Here the default `fsync`s every batch.
//! - hop re-queues a message whose delivery failed with a retriable error
//!   and sends it again in the same run; here the idempotent producer
//!   retries within `produce_timeout` (no limit by default) without
//!   duplicates, and a message that still fails stays in the journal for
//!   the next open.
//! - hop's producer is librdkafka's default (not idempotent in hop 0.13):
//!   its own retries may duplicate or reorder. Here idempotence is required.
//! - hop re-sends left-over messages in the background, possibly
//!   interleaved with new ones; here they are all handed to the producer
//!   before the first new message.
//! - hop's journal format, permissions and compaction differ (see
//!   [`crate::journal`], "Differences from hop's journal"); the files are
//!   not interchangeable.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{mpsc as std_mpsc, Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use skotch_client::protocol::error::ErrorCode;
use skotch_client::{DeliveryFuture, Header, Producer, ProducerConfig, ProducerRecord};
use tokio::sync::{mpsc, oneshot};

use crate::journal::{
    EntryId, FsyncPolicy, Journal, JournalError, JournalMessage, JournalOptions, Pending,
    MAX_PAYLOAD_LEN,
};
use crate::models::Message;
use crate::stream::{prepare_write, Stream, StreamError, WriteOptions};
use crate::url::KafkaUrl;

/// Messages [`RobustWriter::write`] may queue ahead of the journal thread
/// before it waits: 4 096.
pub const QUEUE_CAPACITY: usize = 4096;

/// The most messages the journal thread appends under one `fsync`: 1 024
/// (also bounded by [`MAX_BATCH_BYTES`]).
pub const MAX_BATCH: usize = 1024;

/// The most message bytes (journal record payloads) appended under one
/// `fsync`: 8 MiB (a batch always takes at least one message).
pub const MAX_BATCH_BYTES: u64 = 8 << 20;

/// Commands the journal thread takes in one round before it syncs and
/// answers.
const MAX_ROUND: usize = 4096;

/// What "no limit" (a `produce_timeout` of 0) becomes: as the stream
/// writer's.
const NO_PRODUCE_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Errors of a [`RobustWriter`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RobustError {
    /// Opening the stream failed (URL, brokers, credentials, unknown
    /// topic), or a write's arguments are wrong (topic, reserved header).
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The journal could not be opened (corrupt: the error names the file
    /// and byte offset; readable by others; locked by another writer; I/O),
    /// or a message is too large for it.
    #[error(transparent)]
    Journal(Arc<JournalError>),
    /// The journal failed while the writer ran (a write or `fsync` error):
    /// the writer stopped. What the journal holds is re-sent at the next
    /// open; `lost` queued messages were neither journaled nor sent.
    #[error("the journal failed, so the writer stopped ({lost} queued message(s) were neither journaled nor sent): {error}")]
    JournalFailed {
        /// The journal's error.
        error: Arc<JournalError>,
        /// Messages queued but never journaled.
        lost: usize,
    },
    /// Messages were not delivered (since the last `flush`).
    #[error(
        "{failed} message(s) were not delivered ({kept} stay in the journal for the next open, \
         {dropped} were refused by the broker for good and dropped); first error: {first}"
    )]
    Undelivered {
        /// `kept + dropped`.
        failed: u64,
        /// Left in the journal (re-sent by the next open).
        kept: u64,
        /// Refused for good and marked sent (see the module docs).
        dropped: u64,
        /// The first failure.
        first: Box<skotch_client::Error>,
    },
    /// The producer does not have idempotence, which the writer needs.
    #[error("the robust writer needs an idempotent producer: {0}")]
    NotIdempotent(String),
}

impl From<JournalError> for RobustError {
    fn from(e: JournalError) -> Self {
        RobustError::Journal(Arc::new(e))
    }
}

/// What a [`RobustWriter`] did, from [`RobustWriter::stats`] or
/// [`RobustWriter::close`]. Counts are messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RobustStats {
    /// Left unacknowledged in the journal by a previous run and re-sent
    /// at open.
    pub resent: u64,
    /// Accepted by [`RobustWriter::write`] in this run.
    pub written: u64,
    /// In the journal (re-sent ones included).
    pub journaled: u64,
    /// Acknowledged by the broker and marked sent (re-sent ones included).
    pub delivered: u64,
    /// Failed and left in the journal for the next open.
    pub kept: u64,
    /// Refused by the broker for good and dropped from the journal.
    pub dropped: u64,
}

/// A request from the handle to the driver task.
enum Request {
    Write(JournalMessage),
    /// Answered once every message before it is delivered and marked.
    Flush(oneshot::Sender<Result<(), RobustError>>),
    /// Answered once every message before it is journaled.
    Journaled(oneshot::Sender<Result<(), RobustError>>),
}

/// Journaled messages with their ids.
type Batch = Vec<(EntryId, JournalMessage)>;

/// Answer of an append batch.
type Appended = Result<Batch, Arc<JournalError>>;

/// A command to the journal thread.
enum JCmd {
    Append(Vec<JournalMessage>, oneshot::Sender<Appended>),
    Mark(Vec<EntryId>),
    /// Sync (unless the policy is Never) and answer.
    Sync(oneshot::Sender<Result<(), Arc<JournalError>>>),
    /// Compact if asked, sync, close the file (unlocking it) and stop.
    Close {
        compact: bool,
        reply: oneshot::Sender<Result<(), Arc<JournalError>>>,
    },
}

/// A [`crate::StreamWriter`] with a crash-safe journal (see the module
/// docs). Open with [`RobustWriter::open`]; finish with
/// [`close`](RobustWriter::close).
///
/// Dropping it without `close` lets its task deliver what was queued and
/// close the journal in the background, as long as the runtime runs
/// (errors are then only logged); [`abort`](RobustWriter::abort) stops at
/// once instead.
pub struct RobustWriter {
    tx: mpsc::Sender<Request>,
    abort: Option<oneshot::Sender<()>>,
    driver: Option<tokio::task::JoinHandle<Result<RobustStats, RobustError>>>,
    stats: Arc<Mutex<RobustStats>>,
    /// Set when the driver stopped for good (the journal failed).
    stopped: Arc<OnceLock<RobustError>>,
    topics: Vec<String>,
    sender: Option<String>,
    max_payload_len: u64,
    journal_path: PathBuf,
    resent: usize,
}

impl fmt::Debug for RobustWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustWriter")
            .field("topics", &self.topics)
            .field("journal", &self.journal_path)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RobustWriter {
    /// Opens `url` for writing through `stream` (its credentials,
    /// compression, `produce_timeout`, connect timeout) with the journal at
    /// `journal` (created with mode 0600 when missing), and starts
    /// re-sending what the journal holds from a previous run, in order,
    /// before anything written through the new writer.
    ///
    /// The journal is opened first, on the journal thread, so a bad journal
    /// fails before any broker is contacted. The producer is idempotent
    /// (`enable.idempotence=true`, `acks=all`) and never creates topics.
    ///
    /// Errors: [`RobustError::Journal`] ([`JournalError::Corrupt`] naming
    /// the offset, [`JournalError::Permissions`], [`JournalError::Locked`],
    /// I/O), [`RobustError::Stream`] (URL, brokers, credentials, a topic
    /// of the URL that does not exist, a bad compression level),
    /// [`RobustError::NotIdempotent`].
    pub async fn open(
        stream: &Stream,
        url: &str,
        journal: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<RobustWriter, RobustError> {
        let url: KafkaUrl = url.parse().map_err(StreamError::from)?;
        stream
            .options
            .compression
            .check_level(stream.options.compression_level)
            .map_err(|e| StreamError::from(skotch_client::Error::Config(e.to_string())))?;
        let max_payload_len = options.max_payload_len.min(MAX_PAYLOAD_LEN);
        let (jtx, pending, journal_path) = start_journal(journal.as_ref(), options).await?;

        // From here an error drops `jtx`: the journal thread closes the
        // file (unlocking it) and ends.
        let client = stream.client(&url).await?;
        let sender = stream.credential_for(&url)?.map(|c| c.username);
        for t in &url.topics {
            // Fail at open, not at the first write, when a topic is missing.
            client.topic(t).await.map_err(StreamError::from)?;
        }
        let config = ProducerConfig {
            enable_idempotence: Some(true),
            delivery_timeout: if stream.options.produce_timeout.is_zero() {
                NO_PRODUCE_LIMIT
            } else {
                stream.options.produce_timeout
            },
            compression: stream.options.compression,
            compression_level: stream.options.compression_level,
            allow_auto_create_topics: false,
            ..Default::default()
        };
        let producer = Producer::new(client, config).map_err(|e| match e {
            skotch_client::Error::Config(why) => RobustError::NotIdempotent(why),
            other => StreamError::from(other).into(),
        })?;
        if !producer.is_idempotent() {
            return Err(RobustError::NotIdempotent(
                "the producer turned idempotence off".into(),
            ));
        }

        let resent = pending.len();
        let stats = Arc::new(Mutex::new(RobustStats {
            resent: resent as u64,
            journaled: resent as u64,
            ..Default::default()
        }));
        let stopped = Arc::new(OnceLock::new());
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (abort_tx, abort_rx) = oneshot::channel();
        let driver = Driver {
            producer,
            jtx,
            stats: stats.clone(),
            stopped: stopped.clone(),
            inflight: FuturesUnordered::new(),
            marks: Vec::new(),
            alone: Vec::new(),
            failures: Failures::default(),
        };
        let handle = tokio::spawn(driver.run(rx, abort_rx, pending));
        Ok(RobustWriter {
            tx,
            abort: Some(abort_tx),
            driver: Some(handle),
            stats,
            stopped,
            topics: url.topics,
            sender,
            max_payload_len,
            journal_path,
            resent,
        })
    }

    /// How many messages a previous run left unacknowledged in the
    /// journal; they are re-sent before any new message.
    pub fn resent(&self) -> usize {
        self.resent
    }

    /// The journal file (canonical path).
    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// The counts so far.
    pub fn stats(&self) -> RobustStats {
        *lock(&self.stats)
    }

    /// Write a message to the URL's only topic (see
    /// [`write_with`](Self::write_with)).
    pub async fn write(&mut self, message: impl Into<Message>) -> Result<(), RobustError> {
        self.write_with(message, WriteOptions::default()).await
    }

    /// Queue a message with a topic, headers, test flag or key (hop's
    /// `RobustProducer.write`). The message gets hop's standard headers
    /// (a new `_id`, `_sender`, `_test`, `_format`) and a timestamp now;
    /// the journal keeps them, so a re-send is the same record. Returns
    /// once the message is queued (waiting while [`QUEUE_CAPACITY`]
    /// messages are); it is journaled, then sent, shortly after.
    ///
    /// Errors now: [`RobustError::Stream`] (no topic given and the URL
    /// names none or several, a reserved header name),
    /// [`RobustError::Journal`] with [`JournalError::TooLarge`] (the
    /// message exceeds [`JournalOptions::max_payload_len`]; nothing
    /// queued), [`RobustError::JournalFailed`] (the writer stopped).
    /// Delivery failures surface in [`flush`](Self::flush) and
    /// [`close`](Self::close).
    pub async fn write_with(
        &mut self,
        message: impl Into<Message>,
        opts: WriteOptions,
    ) -> Result<(), RobustError> {
        if let Some(e) = self.stopped.get() {
            return Err(e.clone());
        }
        let message = message.into();
        let prepared = prepare_write(opts, &self.topics, self.sender.as_deref(), &message)?;
        let headers = prepared
            .headers
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        let m = JournalMessage {
            topic: prepared.topic,
            key: prepared.key,
            value: Some(message.serialize()),
            headers,
            timestamp: Some(now_ms()),
        };
        let len = Journal::payload_len(&m);
        if len > self.max_payload_len {
            return Err(JournalError::TooLarge {
                len,
                max: self.max_payload_len,
            }
            .into());
        }
        if self.tx.send(Request::Write(m)).await.is_err() {
            return Err(self.stopped_error());
        }
        lock(&self.stats).written += 1;
        Ok(())
    }

    /// Wait until every message written so far is in the journal (and on
    /// disk, as the [`FsyncPolicy`] says): from then on a crash loses none
    /// of them. hop's `write` gives this for each message.
    ///
    /// Errors: [`RobustError::JournalFailed`].
    pub async fn journaled(&mut self) -> Result<(), RobustError> {
        self.ask(Request::Journaled).await
    }

    /// Wait until every message written so far (and every re-sent one) is
    /// delivered or failed, and the sent marks are written (and synced,
    /// unless the policy is [`FsyncPolicy::Never`]): a crash after this
    /// re-sends none of them.
    ///
    /// Errors: [`RobustError::Undelivered`] for the failures since the
    /// last `flush` (the counts start again after it),
    /// [`RobustError::JournalFailed`].
    pub async fn flush(&mut self) -> Result<(), RobustError> {
        self.ask(Request::Flush).await
    }

    /// Deliver everything queued, close the producer, compact the journal
    /// (empty unless messages failed) and close it.
    ///
    /// Errors: as [`flush`](Self::flush); the journal's own errors at the
    /// final compaction or sync ([`RobustError::JournalFailed`] with
    /// `lost` 0).
    pub async fn close(mut self) -> Result<RobustStats, RobustError> {
        // The driver ends once the handle's sender is gone and the queue
        // is drained.
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        self.join().await
    }

    /// Stop at once, as a crash would, but closing the journal cleanly:
    /// nothing more is journaled, sent or marked. Messages not acknowledged
    /// stay in the journal for the next open; queued ones not yet
    /// journaled are lost. Records already handed to the producer may
    /// still reach the broker (its task delivers what it holds), and will
    /// then be duplicated by the next open's re-send. The journal is closed
    /// (and unlocked) when this returns.
    pub async fn abort(mut self) -> RobustStats {
        if let Some(a) = self.abort.take() {
            let _ = a.send(());
        }
        let _ = self.join().await;
        self.stats()
    }

    async fn join(&mut self) -> Result<RobustStats, RobustError> {
        let Some(driver) = self.driver.take() else {
            return Ok(self.stats());
        };
        match driver.await {
            Ok(r) => r,
            Err(e) => Err(StreamError::from(skotch_client::Error::Internal(format!(
                "robust writer task: {e}"
            )))
            .into()),
        }
    }

    async fn ask(
        &mut self,
        make: impl FnOnce(oneshot::Sender<Result<(), RobustError>>) -> Request,
    ) -> Result<(), RobustError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(make(reply)).await.is_err() {
            return Err(self.stopped_error());
        }
        answer.await.unwrap_or_else(|_| Err(self.stopped_error()))
    }

    fn stopped_error(&self) -> RobustError {
        self.stopped.get().cloned().unwrap_or_else(|| {
            StreamError::from(skotch_client::Error::Internal(
                "the robust writer's task ended".into(),
            ))
            .into()
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The producer record of a journaled message.
fn to_record(m: &JournalMessage) -> ProducerRecord {
    ProducerRecord {
        topic: m.topic.clone(),
        partition: None,
        key: m.key.clone(),
        value: m.value.clone(),
        headers: m
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k.as_str().into(),
                value: v.clone(),
            })
            .collect(),
        timestamp: m.timestamp,
    }
}

/// True when the broker refused the record itself, so that sending it
/// again can never succeed (the message is then dropped from the journal).
fn refused_for_good(e: &skotch_client::Error) -> bool {
    match e {
        // `send` refuses a record above max.request.size this way.
        skotch_client::Error::Config(_) => true,
        skotch_client::Error::Broker { code, .. } => matches!(
            *code,
            ErrorCode::MESSAGE_TOO_LARGE
                | ErrorCode::RECORD_LIST_TOO_LARGE
                | ErrorCode::INVALID_RECORD
                | ErrorCode::INVALID_TIMESTAMP
        ),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// The journal thread.

/// Starts the journal thread, which opens the journal; returns its command
/// channel, the pending messages and the journal's path.
async fn start_journal(
    path: &Path,
    options: JournalOptions,
) -> Result<(std_mpsc::Sender<JCmd>, Vec<Pending>, PathBuf), RobustError> {
    let (jtx, jrx) = std_mpsc::channel();
    let (opened_tx, opened_rx) = oneshot::channel();
    let path = path.to_path_buf();
    thread::Builder::new()
        .name("skotch-journal".into())
        .spawn(move || {
            let policy = options.fsync;
            let options = JournalOptions {
                fsync: FsyncPolicy::Never,
                ..options
            };
            let opened = Journal::open_with(&path, options).and_then(|(mut j, pending)| {
                if policy != FsyncPolicy::Never {
                    // What Journal does itself for the other policies: the
                    // header (or a truncation) and the file's directory
                    // entry reach the disk before anything is sent.
                    j.sync()?;
                    sync_parent_dir(j.path());
                }
                Ok((j, pending))
            });
            match opened {
                Ok((journal, pending)) => {
                    let canonical = journal.path().to_path_buf();
                    if opened_tx.send(Ok((pending, canonical))).is_ok() {
                        journal_thread(journal, jrx, policy);
                    }
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| JournalError::Io {
            path: PathBuf::new(),
            op: "starting the journal thread",
            source: e,
        })?;
    match opened_rx.await {
        Ok(Ok((pending, canonical))) => Ok((jtx, pending, canonical)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(StreamError::from(skotch_client::Error::Internal(
            "the journal thread ended while opening".into(),
        ))
        .into()),
    }
}

fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %dir.display(), error = %e, "journal: cannot sync the directory");
        }
    }
}

/// The journal thread's loop: takes the commands that are waiting (a
/// round), carries them out, syncs once as the policy says, then answers.
fn journal_thread(mut journal: Journal, rx: std_mpsc::Receiver<JCmd>, policy: FsyncPolicy) {
    let mut dirty = false;
    let mut last_sync = Instant::now();
    let mut failed: Option<Arc<JournalError>> = None;
    loop {
        let first = match policy {
            FsyncPolicy::Interval(every) => {
                match rx.recv_timeout(every.max(Duration::from_millis(1))) {
                    Ok(c) => c,
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {
                        // Idle for an interval: sync what is waiting.
                        if dirty && failed.is_none() {
                            match journal.sync() {
                                Ok(()) => {
                                    dirty = false;
                                    last_sync = Instant::now();
                                }
                                Err(e) => failed = Some(Arc::new(e)),
                            }
                        }
                        continue;
                    }
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match rx.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        let mut appended: Vec<(oneshot::Sender<Appended>, Batch)> = Vec::new();
        let mut syncs = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(cmd) = next.take() {
            match cmd {
                JCmd::Append(batch, reply) => {
                    if let Some(e) = &failed {
                        let _ = reply.send(Err(e.clone()));
                    } else {
                        let mut done = Vec::with_capacity(batch.len());
                        let mut error = None;
                        for m in batch {
                            match journal.append(&m) {
                                Ok(id) => done.push((id, m)),
                                Err(e) => {
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                        dirty |= !done.is_empty();
                        match error {
                            None => appended.push((reply, done)),
                            Some(e) => {
                                // Appended ones stay pending: the next open
                                // re-sends them.
                                let e = Arc::new(e);
                                failed = Some(e.clone());
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                }
                JCmd::Mark(ids) => {
                    if failed.is_none() {
                        for id in ids {
                            match journal.mark_sent(id) {
                                Ok(()) => dirty = true,
                                Err(JournalError::UnknownId { id }) => {
                                    tracing::warn!(
                                        id = id.get(),
                                        "journal: marking an id that is not pending"
                                    );
                                }
                                Err(e) => {
                                    failed = Some(Arc::new(e));
                                    break;
                                }
                            }
                        }
                    }
                }
                JCmd::Sync(reply) => syncs.push(reply),
                JCmd::Close { compact, reply } => {
                    close = Some((compact, reply));
                    break;
                }
            }
            taken += 1;
            if taken < MAX_ROUND {
                next = rx.try_recv().ok();
            }
        }
        let due = match policy {
            FsyncPolicy::EveryAppend => dirty,
            FsyncPolicy::Interval(every) => {
                dirty && (last_sync.elapsed() >= every || !syncs.is_empty() || close.is_some())
            }
            FsyncPolicy::Never => false,
        };
        if due && failed.is_none() {
            match journal.sync() {
                Ok(()) => {
                    dirty = false;
                    last_sync = Instant::now();
                }
                Err(e) => failed = Some(Arc::new(e)),
            }
        }
        let result = || failed.clone().map_or(Ok(()), Err);
        for (reply, done) in appended {
            let _ = reply.send(result().map(|()| done));
        }
        for reply in syncs {
            let _ = reply.send(result());
        }
        if let Some((compact, reply)) = close {
            let mut r = result();
            if r.is_ok() && compact {
                r = journal
                    .compact()
                    .and_then(|()| {
                        if policy == FsyncPolicy::Never {
                            Ok(())
                        } else {
                            journal.sync()
                        }
                    })
                    .map_err(Arc::new);
            }
            drop(journal); // unlocks the file before the answer
            let _ = reply.send(r);
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// The driver task: queue → journal thread → producer → acknowledgements →
// journal thread.

/// A message handed to the producer, with its journal id, and the message
/// itself for a retry on its own (see [`Driver::retry_alone`]).
struct Tracked {
    id: EntryId,
    delivery: DeliveryFuture,
    message: Option<JournalMessage>,
}

/// The outcome of a [`Tracked`] message.
type Outcome = (
    EntryId,
    skotch_client::Result<skotch_client::RecordMetadata>,
    Option<JournalMessage>,
);

impl Future for Tracked {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let id = self.id;
        match Pin::new(&mut self.delivery).poll(cx) {
            Poll::Ready(r) => Poll::Ready((id, r, self.message.take())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Delivery failures since the last flush.
#[derive(Default)]
struct Failures {
    kept: u64,
    dropped: u64,
    first: Option<skotch_client::Error>,
}

impl Failures {
    /// The failures as an error, starting the counts again.
    fn take(&mut self) -> Result<(), RobustError> {
        let f = std::mem::take(self);
        match f.first {
            None => Ok(()),
            Some(first) => Err(RobustError::Undelivered {
                failed: f.kept + f.dropped,
                kept: f.kept,
                dropped: f.dropped,
                first: Box::new(first),
            }),
        }
    }
}

struct Driver {
    producer: Producer,
    jtx: std_mpsc::Sender<JCmd>,
    stats: Arc<Mutex<RobustStats>>,
    stopped: Arc<OnceLock<RobustError>>,
    inflight: FuturesUnordered<Tracked>,
    /// Ids acknowledged (or dropped) and not yet sent to the journal thread.
    marks: Vec<EntryId>,
    /// Messages whose batch the broker refused as a whole, to send again
    /// each on its own.
    alone: Vec<(EntryId, JournalMessage)>,
    failures: Failures,
}

/// A waiter for a flush or for the journal.
type Waiter = oneshot::Sender<Result<(), RobustError>>;

impl Driver {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        mut abort: oneshot::Receiver<()>,
        resend: Vec<Pending>,
    ) -> Result<RobustStats, RobustError> {
        // What a previous run left: to the producer first, in order.
        for p in resend {
            self.send(p.id, p.message).await;
        }
        // The append batch at the journal thread, and who waits for it.
        let mut append: Option<oneshot::Receiver<Appended>> = None;
        let mut append_waiters: Vec<Waiter> = Vec::new();
        let mut append_len = 0usize;
        // Flushes waiting for everything before them.
        let mut flushes: Vec<Waiter> = Vec::new();
        let mut input_closed = false;
        let mut aborted = false;
        let mut error: Option<RobustError> = None;
        loop {
            let idle = append.is_none() && self.inflight.is_empty();
            if idle && !flushes.is_empty() {
                let synced = self.sync().await;
                let r = self.failures.take().and(synced);
                for w in flushes.drain(..) {
                    let _ = w.send(r.clone());
                }
            }
            if idle && input_closed {
                break;
            }
            tokio::select! {
                biased;
                _ = &mut abort, if !aborted => {
                    aborted = true;
                    break;
                }
                Some((id, r, m)) = self.inflight.next(), if !self.inflight.is_empty() => {
                    self.settle(id, r, m);
                    // Every acknowledgement that is ready now: one command.
                    while let Some(Some((id, r, m))) = self.inflight.next().now_or_never() {
                        self.settle(id, r, m);
                    }
                    self.send_marks();
                    if !self.alone.is_empty() {
                        self.retry_alone().await;
                        self.send_marks();
                    }
                }
                r = async { append.as_mut().expect("guarded").await }, if append.is_some() => {
                    append = None;
                    let r = r.unwrap_or_else(|_| Err(Arc::new(thread_gone())));
                    match r {
                        Ok(done) => {
                            lock(&self.stats).journaled += done.len() as u64;
                            for w in append_waiters.drain(..) {
                                let _ = w.send(Ok(()));
                            }
                            for (id, m) in done {
                                self.send(id, m).await;
                            }
                        }
                        Err(e) => {
                            let lost = append_len + rx.len();
                            let stop = RobustError::JournalFailed { error: e, lost };
                            error = Some(stop);
                            break;
                        }
                    }
                }
                req = rx.recv(), if append.is_none() && flushes.is_empty() && !input_closed => {
                    let Some(req) = req else {
                        input_closed = true;
                        continue;
                    };
                    let mut batch = Vec::new();
                    let mut bytes = 0u64;
                    let mut next = Some(req);
                    while let Some(req) = next.take() {
                        match req {
                            Request::Write(m) => {
                                bytes += Journal::payload_len(&m);
                                batch.push(m);
                            }
                            Request::Journaled(w) => {
                                if batch.is_empty() {
                                    let _ = w.send(Ok(()));
                                } else {
                                    append_waiters.push(w);
                                }
                            }
                            Request::Flush(w) => {
                                // Nothing after it is taken before it is
                                // answered.
                                flushes.push(w);
                                break;
                            }
                        }
                        if batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                            next = rx.try_recv().ok();
                        }
                    }
                    if !batch.is_empty() {
                        let (reply, answer) = oneshot::channel();
                        append_len = batch.len();
                        if self.jtx.send(JCmd::Append(batch, reply)).is_err() {
                            error = Some(RobustError::JournalFailed {
                                error: Arc::new(thread_gone()),
                                lost: append_len + rx.len(),
                            });
                            break;
                        }
                        append = Some(answer);
                    }
                }
            }
        }

        if let Some(e) = error {
            // The journal is unusable: stop taking messages, tell every
            // waiter, let the producer deliver what it holds (the journal
            // keeps those messages whatever happens, so the next open
            // re-sends them), and end.
            let _ = self.stopped.set(e.clone());
            rx.close();
            while let Ok(req) = rx.try_recv() {
                match req {
                    Request::Flush(w) | Request::Journaled(w) => {
                        let _ = w.send(Err(e.clone()));
                    }
                    Request::Write(_) => {}
                }
            }
            for w in append_waiters.drain(..).chain(flushes.drain(..)) {
                let _ = w.send(Err(e.clone()));
            }
            let _ = self.producer.close().await;
            let _ = self.close_journal(false).await;
            return Err(e);
        }
        if aborted {
            // As a crash: nothing more is marked.
            drop(self.producer);
            let (reply, answer) = oneshot::channel();
            let _ = self.jtx.send(JCmd::Close {
                compact: false,
                reply,
            });
            let _ = answer.await;
            return Ok(*lock(&self.stats));
        }

        // Closed: everything queued was delivered or failed.
        let closed = self.producer.close().await;
        let failures = self.failures.take();
        let journal = self.close_journal(true).await;
        failures?;
        journal?;
        closed.map_err(StreamError::from)?;
        Ok(*lock(&self.stats))
    }

    /// Hands one journaled message to the producer.
    async fn send(&mut self, id: EntryId, m: JournalMessage) {
        match self.producer.send(to_record(&m)).await {
            Ok(delivery) => self.inflight.push(Tracked {
                id,
                delivery,
                message: Some(m),
            }),
            // Refused before it was batched: about this record alone.
            Err(e) => self.settle(id, Err(e), None),
        }
    }

    /// Sends each message of `alone` in a batch of its own (the producer
    /// is flushed before and after it, and only this task sends), so that
    /// a refusal is about that message only.
    async fn retry_alone(&mut self) {
        for (id, m) in std::mem::take(&mut self.alone) {
            let _ = self.producer.flush().await;
            let r = match self.producer.send(to_record(&m)).await {
                Ok(delivery) => {
                    let _ = self.producer.flush().await;
                    delivery.await
                }
                Err(e) => Err(e),
            };
            self.settle(id, r, None);
        }
    }

    /// Records the outcome of one message. A refusal for good of a message
    /// that went in a batch with others (`m` is still here) may be about
    /// another record of the batch: such a message is sent again alone
    /// first (Java's producer splits a batch refused as too large).
    fn settle(
        &mut self,
        id: EntryId,
        r: skotch_client::Result<skotch_client::RecordMetadata>,
        m: Option<JournalMessage>,
    ) {
        match r {
            Ok(_) => {
                lock(&self.stats).delivered += 1;
                self.marks.push(id);
            }
            Err(e) => {
                let drop_it = refused_for_good(&e);
                if drop_it {
                    if let Some(m) = m {
                        self.alone.push((id, m));
                        return;
                    }
                }
                if self.failures.first.is_none() {
                    tracing::warn!(
                        id = id.get(),
                        error = %e,
                        kept = !drop_it,
                        "robust writer: a message was not delivered"
                    );
                }
                if drop_it {
                    lock(&self.stats).dropped += 1;
                    self.failures.dropped += 1;
                    self.marks.push(id);
                } else {
                    lock(&self.stats).kept += 1;
                    self.failures.kept += 1;
                }
                self.failures.first.get_or_insert(e);
            }
        }
    }

    fn send_marks(&mut self) {
        if !self.marks.is_empty() {
            // A journal thread that is gone shows at the next append.
            let _ = self.jtx.send(JCmd::Mark(std::mem::take(&mut self.marks)));
        }
    }

    /// Writes the pending marks and syncs (a flush).
    async fn sync(&mut self) -> Result<(), RobustError> {
        self.send_marks();
        let (reply, answer) = oneshot::channel();
        if self.jtx.send(JCmd::Sync(reply)).is_err() {
            return Err(self.journal_failed(Arc::new(thread_gone())));
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.journal_failed(e)),
            Err(_) => Err(self.journal_failed(Arc::new(thread_gone()))),
        }
    }

    fn journal_failed(&self, error: Arc<JournalError>) -> RobustError {
        let e = RobustError::JournalFailed { error, lost: 0 };
        let _ = self.stopped.set(e.clone());
        e
    }

    /// Writes the pending marks, compacts (if asked), syncs and closes the
    /// journal.
    async fn close_journal(&mut self, compact: bool) -> Result<(), RobustError> {
        self.send_marks();
        let (reply, answer) = oneshot::channel();
        if self.jtx.send(JCmd::Close { compact, reply }).is_err() {
            return Err(self.journal_failed(Arc::new(thread_gone())));
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.journal_failed(e)),
            Err(_) => Err(self.journal_failed(Arc::new(thread_gone()))),
        }
    }
}

/// The journal thread ended without answering (it panicked).
fn thread_gone() -> JournalError {
    JournalError::Io {
        path: PathBuf::new(),
        op: "talking to the journal thread",
        source: std::io::Error::other("the journal thread ended"),
    }
}
