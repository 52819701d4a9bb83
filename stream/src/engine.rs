//! A stream engine: several handlers in one process, each reading its own
//! `kafka://` URL as its own consumer group, writing outputs through one
//! shared producer (kstreams' `StreamEngine`, slipstream's `handle` with
//! sinks, codecs and `Conf`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use serde::{Deserialize, Serialize};
//! use skotch_stream::{
//!     CrashPolicy, DeadLetterOptions, Engine, EngineOptions, JsonCodec, Message, Output,
//!     StartPosition,
//! };
//!
//! #[derive(Serialize, Deserialize)]
//! struct Alert { id: u64, magnitude: f64 }
//!
//! let mut options = EngineOptions::default();
//! options.stream.start_at = StartPosition::Earliest;
//! let mut engine = Engine::new(options);
//!
//! // Per record, JSON in, JSON out: bright alerts go to the sink topic.
//! let mut o = engine.handler_options("bright");
//! o.concurrency = 4;
//! o.crash_policy = CrashPolicy::DeadLetter(DeadLetterOptions::new("alerts-dlq"));
//! engine
//!     .handler("bright", "kafka://127.0.0.1:9092/alerts")
//!     .options(o)
//!     .codec(JsonCodec::<Alert>::new())
//!     .sink("kafka://127.0.0.1:9092/bright-alerts", JsonCodec::<Alert>::new())
//!     .each(|record| async move {
//!         let alert = record.value;
//!         let out = (alert.magnitude > 5.0).then(|| Output::new(alert));
//!         Ok::<_, std::convert::Infallible>(out)
//!     });
//!
//! // Over the whole stream, hop messages (the default codec).
//! engine
//!     .handler("audit", "kafka://127.0.0.1:9092/notices")
//!     .stream(|mut records| async move {
//!         while let Some(r) = records.next().await {
//!             let r = r?;
//!             if let Message::Json(v) = &r.value {
//!                 println!("{v}");
//!             }
//!             records.done(&r.metadata, None::<Output<Message>>).await?;
//!         }
//!         Ok::<_, skotch_stream::EngineError>(())
//!     });
//!
//! // Until Ctrl-C / SIGTERM: finish in-flight records, commit, leave the
//! // groups, flush the producer (at most `shutdown_timeout`).
//! engine.run_until(skotch_stream::engine::signal()).await?;
//! # Ok(()) }
//! ```
//!
//! # Handlers
//!
//! [`Engine::handler`] names a handler and its URL; the
//! [`HandlerBuilder`] sets its [`HandlerOptions`], codec, sink and
//! rebalance listeners, and registers it with one of:
//!
//! - [`each`](HandlerBuilder::each): an async function per record (a
//!   [`Record`]), returning zero or more [`Output`]s (slipstream's `yield`),
//!   up to [`HandlerOptions::concurrency`] records at a time. Records may
//!   finish out of order; the group's commits never pass an unfinished one
//!   (water-healer's rule, the tracker behind
//!   [`process_concurrently`](crate::process_concurrently)). A record is done
//!   once its handler returned `Ok` and every output was acknowledged.
//! - [`stream`](HandlerBuilder::stream): an async function over the whole
//!   stream ([`Records`], kstreams' `async for cr in stream`), which marks
//!   each record done with [`Records::done`] (with its outputs, done once
//!   they are acknowledged); [`Records::next`] returns `None` at shutdown.
//!
//! Each handler reads as its own consumer group ([`HandlerOptions::group`],
//! `group_id` the handler's name by default) with manual commits: done
//! records are committed every `commit_interval`, before partitions are
//! revoked (kstreams' `ManualCommitRebalanceListener`) and at shutdown.
//! [`GroupOptions::initial_offsets`] and [`StreamOptions::start_at`] say
//! where it starts (kstreams' `initial_offsets`, `auto_offset_reset`);
//! [`HandlerBuilder::listener`] adds rebalance listeners.
//!
//! # Settings (slipstream's `Conf`)
//!
//! [`EngineOptions`] holds the defaults of every handler (codec aside, the
//! engine's type parameter); [`Engine::handler_options`] copies them for
//! one handler to change, as slipstream's `Topic` copies `Conf` when it is
//! created. The engine's producer uses [`EngineOptions::stream`]
//! (credentials, `compression`, `produce_timeout`).
//!
//! # Failures
//!
//! [`CrashPolicy`] per handler: stop the engine, restart the handler with
//! backoff, or retry and dead-letter (see [`crate::crash_policy`]).
//!
//! # Shutdown
//!
//! [`Engine::run_until`] (or [`ShutdownHandle::shutdown`], from any task):
//! every handler stops reading, lets its in-flight records finish, commits
//! what is done and leaves its group; then the producer is flushed and
//! closed. All within [`EngineOptions::shutdown_timeout`] from the request
//! (default 30 000 ms, Java's `KafkaConsumer.close()` default): records
//! still running then are aborted and stay uncommitted, so the next reader
//! gets them again. Committing and leaving get at least
//! [`CLOSE_GRACE`] even when the deadline has passed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use skotch_client::{DeliveryFuture, GroupHandle, RebalanceListener, TopicPartition};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::codec::{Codec, CodecError, HopCodec};
use crate::crash_policy::{dead_letter_headers, CrashPolicy, Decision};
use crate::metadata::Metadata;
use crate::options::{GroupOptions, StreamOptions};
use crate::sink::{Output, SharedSink};
use crate::stream::{Stream, StreamError, StreamReader};
use crate::url::KafkaUrl;

/// The least time committing and leaving a group get at shutdown, even
/// past [`EngineOptions::shutdown_timeout`]: 2 000 ms.
pub const CLOSE_GRACE: Duration = Duration::from_millis(2_000);

/// Defaults for every handler of an engine (slipstream's `Conf`).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Connection, credentials, `start_at`, `ignore_test`, `until_eos`
    /// (a handler whose every partition reached its end finishes), and for
    /// the engine's producer `compression` and `produce_timeout`. Default
    /// [`StreamOptions::default`] (start at latest, no limit on delivery).
    /// Its `group` is not used: see `group`.
    pub stream: StreamOptions,
    /// Group settings of every handler; `group_id` is replaced by the
    /// handler's name, `auto_commit` is always off (the engine marks
    /// records done). Default [`GroupOptions::new`]'s (commits every
    /// 5 000 ms).
    pub group: GroupOptions,
    /// Records a per-record handler runs at once (at least 1). Default 1.
    pub concurrency: usize,
    /// What a failing handler does. Default [`CrashPolicy::Stop`].
    pub crash_policy: CrashPolicy,
    /// The longest a shutdown waits for in-flight records and the
    /// producer, from the request. Default 30 000 ms.
    pub shutdown_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            stream: StreamOptions::default(),
            group: GroupOptions::new(""),
            concurrency: 1,
            crash_policy: CrashPolicy::Stop,
            shutdown_timeout: Duration::from_millis(30_000),
        }
    }
}

/// One handler's settings, copied from the engine's by
/// [`Engine::handler_options`].
#[derive(Debug, Clone)]
pub struct HandlerOptions {
    /// As [`EngineOptions::stream`].
    pub stream: StreamOptions,
    /// The handler's consumer group; `group_id` defaults to the handler's
    /// name. `auto_commit` is ignored (always off).
    pub group: GroupOptions,
    /// As [`EngineOptions::concurrency`] (per-record handlers).
    pub concurrency: usize,
    /// As [`EngineOptions::crash_policy`].
    pub crash_policy: CrashPolicy,
}

/// Why the engine stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A handler's settings cannot work (e.g. two handlers with one name,
    /// a dead-letter policy on a whole-stream handler, sink URLs on
    /// different brokers).
    #[error("handler {handler:?}: {message}")]
    Config {
        /// The handler.
        handler: String,
        /// What is wrong.
        message: String,
    },
    /// Opening or reading a handler's stream failed (under
    /// [`CrashPolicy::Restart`] it is restarted instead).
    #[error("handler {handler:?}: {error}")]
    Stream {
        /// The handler.
        handler: String,
        /// The stream's error.
        error: Box<StreamError>,
    },
    /// A per-record handler failed on a record and its policy stops the
    /// engine. The record and everything after it in its partition are
    /// uncommitted.
    #[error("handler {handler:?} failed on {topic}-{partition} offset {offset} (attempt {attempts}): {error}")]
    Handler {
        /// The handler.
        handler: String,
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error (the handler's, the codec's or the
        /// producer's), as text.
        error: String,
    },
    /// A whole-stream handler returned an error and its policy stops the
    /// engine.
    #[error("handler {handler:?} failed: {error}")]
    StreamHandler {
        /// The handler.
        handler: String,
        /// Its error, as text.
        error: String,
    },
    /// A record could not be dead-lettered; it stays uncommitted.
    #[error(
        "handler {handler:?}: dead-lettering {topic}-{partition} offset {offset} failed: {error}"
    )]
    DeadLetter {
        /// The handler.
        handler: String,
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// The producer's error.
        error: String,
    },
    /// The engine's producer could not be opened.
    #[error("the engine's producer: {0}")]
    Sink(Box<StreamError>),
    /// A record's task panicked.
    #[error("handler {handler:?}: a task panicked: {message}")]
    Panicked {
        /// The handler.
        handler: String,
        /// The panic.
        message: String,
    },
    /// [`Records::done`] could not send an output.
    #[error("output: {0}")]
    Output(String),
    /// [`Records::next`] got a value its codec could not decode; the
    /// record is not done until [`Records::done`] says so.
    #[error("{}-{} offset {}: {error}", metadata.topic, metadata.partition, metadata.offset)]
    Decode {
        /// The record.
        metadata: Arc<Metadata>,
        /// The codec's error.
        error: CodecError,
    },
}

/// A record for a handler: the decoded value and the record's metadata.
#[derive(Debug, Clone)]
pub struct Record<T> {
    /// The value, as the handler's codec decoded it.
    pub value: T,
    /// Topic, partition, offset, timestamp, key and headers.
    pub metadata: Arc<Metadata>,
    /// Which attempt this is for the record (1 = the first; retries under
    /// [`CrashPolicy::DeadLetter`] count up). A restarted handler starts
    /// again from 1.
    pub attempt: u32,
}

/// Asks the engine to shut down, from any task (cloneable).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<Option<Instant>>>,
}

impl ShutdownHandle {
    fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(None).0),
        }
    }

    /// Start a graceful shutdown (idempotent: the first call's time
    /// starts the deadline).
    pub fn shutdown(&self) {
        self.tx.send_if_modified(|at| {
            if at.is_none() {
                *at = Some(Instant::now());
                true
            } else {
                false
            }
        });
    }

    /// True once a shutdown was asked for.
    pub fn is_shutdown(&self) -> bool {
        self.tx.borrow().is_some()
    }

    /// Resolves once a shutdown was asked for.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`: this cannot fail.
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// When the shutdown was asked for.
    fn requested_at(&self) -> Option<Instant> {
        *self.tx.borrow()
    }
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM, for
/// [`Engine::run_until`]. Where the handlers cannot be installed it never
/// resolves.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What every handler run shares.
struct Ctx {
    sink: Arc<SharedSink>,
    shutdown: ShutdownHandle,
    shutdown_timeout: Duration,
}

impl Ctx {
    /// The deadline for finishing in-flight work: the shutdown request's
    /// time (or now, when a handler ends on its own) plus the timeout.
    fn deadline(&self) -> Instant {
        self.shutdown.requested_at().unwrap_or_else(Instant::now) + self.shutdown_timeout
    }
}

/// A registered handler, its types erased.
trait Runner: Send {
    fn name(&self) -> &str;
    fn check(&self) -> Result<(), EngineError>;
    fn sink_url(&self) -> Option<&str>;
    fn url(&self) -> &str;
    fn run(self: Box<Self>, ctx: Arc<Ctx>) -> BoxFuture<Result<(), EngineError>>;
}

/// A handler with its types: what a runner kind supplies; [`Runner`]
/// follows from its [`Spec`].
trait TypedRunner: Send + Sync + Sized + 'static {
    type In: Codec;
    type Out: Codec;

    fn spec(&self) -> &Spec<Self::In, Self::Out>;

    /// Checks of this kind of handler, before the spec's own.
    fn check_kind(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// One run (see [`Spec::supervise`]): read and handle until shutdown,
    /// the end, or a failure; then finish, commit and leave. `sink_topic`
    /// is the spec's.
    fn once(
        self: Arc<Self>,
        ctx: Arc<Ctx>,
        sink_topic: Option<Arc<str>>,
    ) -> impl Future<Output = RunEnd> + Send;
}

impl<R: TypedRunner> Runner for R {
    fn name(&self) -> &str {
        &self.spec().name
    }

    fn check(&self) -> Result<(), EngineError> {
        self.check_kind()?;
        self.spec().check()
    }

    fn sink_url(&self) -> Option<&str> {
        self.spec().sink.as_deref()
    }

    fn url(&self) -> &str {
        &self.spec().url
    }

    fn run(self: Box<Self>, ctx: Arc<Ctx>) -> BoxFuture<Result<(), EngineError>> {
        Box::pin(async move {
            let this = Arc::new(*self);
            let sink_topic: Option<Arc<str>> = this.spec().sink_topic().map(Arc::from);
            this.spec()
                .supervise(&ctx, || {
                    Box::pin(this.clone().once(ctx.clone(), sink_topic.clone()))
                })
                .await
        })
    }
}

/// Runs several handlers with one producer (kstreams' `StreamEngine`).
///
/// `C` is the default codec of every handler's input and output (hop's
/// [`Message`](crate::Message) model unless [`Engine::with_codec`] says
/// otherwise); [`HandlerBuilder::codec`] and [`HandlerBuilder::sink`]
/// override it per handler.
pub struct Engine<C = HopCodec> {
    options: EngineOptions,
    codec: C,
    runners: Vec<Box<dyn Runner>>,
    shutdown: ShutdownHandle,
}

impl<C> std::fmt::Debug for Engine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .field(
                "handlers",
                &self.runners.iter().map(|r| r.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Engine<HopCodec> {
    /// An engine whose handlers read and write hop messages by default.
    pub fn new(options: EngineOptions) -> Self {
        Self::with_codec(options, HopCodec)
    }
}

impl<C: Codec + Clone> Engine<C> {
    /// An engine whose handlers use `codec` by default.
    pub fn with_codec(options: EngineOptions, codec: C) -> Self {
        Self {
            options,
            codec,
            runners: Vec::new(),
            shutdown: ShutdownHandle::new(),
        }
    }

    /// The engine's defaults for a handler named `name` (its group id is
    /// `name`), to change and pass to [`HandlerBuilder::options`].
    pub fn handler_options(&self, name: &str) -> HandlerOptions {
        let mut group = self.options.group.clone();
        group.group_id = name.to_string();
        HandlerOptions {
            stream: self.options.stream.clone(),
            group,
            concurrency: self.options.concurrency,
            crash_policy: self.options.crash_policy.clone(),
        }
    }

    /// Start registering a handler named `name` (unique in the engine; it
    /// appears in logs, errors and dead-letter headers) reading `url`.
    /// The URL is checked when the engine runs.
    pub fn handler(&mut self, name: &str, url: &str) -> HandlerBuilder<'_, C, C, C> {
        let options = self.handler_options(name);
        let codec = self.codec.clone();
        let sink_codec = self.codec.clone();
        HandlerBuilder {
            engine: self,
            name: name.to_string(),
            url: url.to_string(),
            options,
            codec,
            sink_codec,
            sink: None,
            listeners: Vec::new(),
        }
    }

    /// A handle to shut the engine down from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Run until [`ShutdownHandle::shutdown`] is called, every handler
    /// finished (`until_eos`), or a handler's crash policy stops the engine.
    ///
    /// Errors: the first [`EngineError`] (bad settings before anything
    /// starts; a handler failure after the others were shut down
    /// gracefully).
    pub async fn run(self) -> Result<(), EngineError> {
        self.run_until(std::future::pending::<()>()).await
    }

    /// [`run`](Self::run), shutting down gracefully when `stop` resolves
    /// (e.g. [`signal()`]).
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<(), EngineError> {
        let Engine {
            options,
            runners,
            shutdown,
            ..
        } = self;
        let mut names = std::collections::HashSet::new();
        for r in &runners {
            if !names.insert(r.name().to_string()) {
                return Err(EngineError::Config {
                    handler: r.name().into(),
                    message: "two handlers have this name".into(),
                });
            }
            r.check()?;
        }
        // The producer's brokers: the sinks' (all the same), else the
        // first handler's.
        let mut producer_url: Option<(String, KafkaUrl)> = None;
        for r in &runners {
            let Some(s) = r.sink_url() else { continue };
            let parsed: KafkaUrl = s.parse().map_err(|e| EngineError::Config {
                handler: r.name().into(),
                message: format!("sink URL: {e}"),
            })?;
            match &producer_url {
                None => producer_url = Some((s.to_string(), parsed)),
                Some((_, first)) if first.brokers != parsed.brokers => {
                    return Err(EngineError::Config {
                        handler: r.name().into(),
                        message: "the sink URL names other brokers than the first sink's (the engine has one producer)".into(),
                    })
                }
                Some(_) => {}
            }
        }
        let url = match producer_url {
            Some((_, u)) => u,
            None => match runners.first() {
                None => return Ok(()),
                Some(r) => r.url().parse().map_err(|e| EngineError::Config {
                    handler: r.name().into(),
                    message: format!("URL: {e}"),
                })?,
            },
        };
        // Only the brokers (and user): topics are checked per write.
        let mut bare = url.clone();
        bare.topics.clear();
        let writer = Stream {
            options: options.stream.clone(),
        }
        .open_writer(&bare.to_string())
        .await
        .map_err(|e| EngineError::Sink(Box::new(e)))?;
        let (producer, sender) = writer.into_parts();
        let sink = Arc::new(SharedSink { producer, sender });
        let ctx = Arc::new(Ctx {
            sink: sink.clone(),
            shutdown: shutdown.clone(),
            shutdown_timeout: options.shutdown_timeout,
        });
        let mut tasks = JoinSet::new();
        for r in runners {
            let name = r.name().to_string();
            let fut = r.run(ctx.clone());
            tasks.spawn(async move { (name, fut.await) });
        }
        let mut first_error = None;
        let mut stop = std::pin::pin!(stop);
        let mut stopped = false;
        loop {
            tokio::select! {
                () = &mut stop, if !stopped => {
                    stopped = true;
                    tracing::info!("engine: shutdown requested");
                    shutdown.shutdown();
                }
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok((_, Ok(())))) => {}
                    Some(Ok((name, Err(e)))) => {
                        tracing::error!(handler = %name, error = %e, "engine: stopping after a handler failure");
                        first_error.get_or_insert(e);
                        shutdown.shutdown();
                    }
                    Some(Err(e)) => {
                        first_error.get_or_insert(EngineError::Panicked {
                            handler: "?".into(),
                            message: e.to_string(),
                        });
                        shutdown.shutdown();
                    }
                }
            }
        }
        // Every handler ended: deliver what is queued (their records were
        // only marked done once acknowledged, so anything still queued
        // belongs to aborted records).
        let left = ctx
            .deadline()
            .saturating_duration_since(Instant::now())
            .max(CLOSE_GRACE);
        drop(ctx);
        if tokio::time::timeout(left, sink.producer.close())
            .await
            .is_err()
        {
            tracing::warn!("engine: the producer did not flush before the shutdown deadline");
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Registers one handler: its options, codecs, sink and listeners.
pub struct HandlerBuilder<'e, C, In, Out> {
    engine: &'e mut Engine<C>,
    name: String,
    url: String,
    options: HandlerOptions,
    codec: In,
    sink_codec: Out,
    sink: Option<String>,
    listeners: Vec<SharedListener>,
}

impl<'e, C, In, Out> HandlerBuilder<'e, C, In, Out>
where
    C: Codec + Clone,
    In: Codec,
    Out: Codec,
{
    /// Use these settings (from [`Engine::handler_options`]).
    pub fn options(mut self, options: HandlerOptions) -> Self {
        self.options = options;
        self
    }

    /// Decode records with `codec` instead of the engine's.
    pub fn codec<In2: Codec>(self, codec: In2) -> HandlerBuilder<'e, C, In2, Out> {
        HandlerBuilder {
            engine: self.engine,
            name: self.name,
            url: self.url,
            options: self.options,
            codec,
            sink_codec: self.sink_codec,
            sink: self.sink,
            listeners: self.listeners,
        }
    }

    /// Write outputs with `codec`; an output without a topic goes to the
    /// topic of `url` (a `kafka://` URL naming at most one topic; none
    /// means every output names its topic). Every sink of an engine must
    /// name the same brokers: the engine has one producer.
    pub fn sink<Out2: Codec>(self, url: &str, codec: Out2) -> HandlerBuilder<'e, C, In, Out2> {
        HandlerBuilder {
            engine: self.engine,
            name: self.name,
            url: self.url,
            options: self.options,
            codec: self.codec,
            sink_codec: codec,
            sink: Some(url.to_string()),
            listeners: self.listeners,
        }
    }

    /// Add a rebalance listener (run after the engine's own, which commits
    /// done records before a revocation). A restarted handler keeps it.
    pub fn listener(mut self, listener: impl RebalanceListener + 'static) -> Self {
        self.listeners
            .push(SharedListener(Arc::new(tokio::sync::Mutex::new(Box::new(
                listener,
            )))));
        self
    }

    /// Register the runner `runner` makes of this handler's spec.
    fn register<R: Runner + 'static>(
        self,
        runner: impl FnOnce(Spec<In, Out>) -> R,
    ) -> &'e mut Engine<C> {
        let spec = Spec {
            name: self.name,
            url: self.url,
            options: self.options,
            codec: Arc::new(self.codec),
            sink_codec: Arc::new(self.sink_codec),
            sink: self.sink,
            listeners: self.listeners,
        };
        self.engine.runners.push(Box::new(runner(spec)));
        self.engine
    }

    /// Register an async function per record. It returns the outputs for
    /// the record (any `IntoIterator` of [`Output`]: `None`, `Some(o)`, a
    /// `Vec`...) or an error, which the crash policy handles.
    pub fn each<F, Fut, O, E>(self, handler: F) -> &'e mut Engine<C>
    where
        F: Fn(Record<In::Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoIterator<Item = Output<Out::Value>> + Send + 'static,
        O::IntoIter: Send,
        E: std::fmt::Display + Send + 'static,
    {
        self.register(|spec| EachRunner {
            spec,
            handler: Arc::new(handler),
            _marker: std::marker::PhantomData,
        })
    }

    /// Register an async function over the whole stream (kstreams'
    /// `async def stream(stream)`): it reads [`Records`] until `next`
    /// returns `None` (shutdown, or the end with `until_eos`) and marks
    /// records done with [`Records::done`]. Returning early ends the
    /// handler; returning an error goes to the crash policy
    /// ([`CrashPolicy::DeadLetter`] is refused: no single record failed).
    pub fn stream<F, Fut, E>(self, handler: F) -> &'e mut Engine<C>
    where
        F: Fn(Records<In, Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.register(|spec| StreamRunner {
            spec,
            handler: Arc::new(handler),
            _marker: std::marker::PhantomData,
        })
    }
}

/// A listener shared by the successive readers of a restarted handler.
#[derive(Clone)]
struct SharedListener(Arc<tokio::sync::Mutex<Box<dyn RebalanceListener>>>);

#[async_trait::async_trait]
impl RebalanceListener for SharedListener {
    async fn on_assigned(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        self.0.lock().await.on_assigned(group, partitions).await
    }

    async fn on_revoked(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        self.0.lock().await.on_revoked(group, partitions).await
    }

    async fn on_lost(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        self.0.lock().await.on_lost(group, partitions).await
    }
}

/// What a handler is, whatever its function.
struct Spec<In, Out> {
    name: String,
    url: String,
    options: HandlerOptions,
    codec: Arc<In>,
    sink_codec: Arc<Out>,
    sink: Option<String>,
    listeners: Vec<SharedListener>,
}

/// Why one run of a handler ended.
enum RunEnd {
    /// Shutdown, the end of the stream, or a whole-stream handler that
    /// returned `Ok`.
    Finished,
    /// A failure the crash policy decides about.
    Failed(EngineError),
}

impl<In: Codec, Out: Codec> Spec<In, Out> {
    fn check(&self) -> Result<(), EngineError> {
        let url: KafkaUrl = self.url.parse().map_err(|e| EngineError::Config {
            handler: self.name.clone(),
            message: format!("URL: {e}"),
        })?;
        if url.topics.is_empty() {
            return Err(EngineError::Config {
                handler: self.name.clone(),
                message: "the URL names no topic to read".into(),
            });
        }
        if let Some(s) = &self.sink {
            let sink: KafkaUrl = s.parse().map_err(|e| EngineError::Config {
                handler: self.name.clone(),
                message: format!("sink URL: {e}"),
            })?;
            if sink.topics.len() > 1 {
                return Err(EngineError::Config {
                    handler: self.name.clone(),
                    message: "the sink URL names more than one topic".into(),
                });
            }
        }
        Ok(())
    }

    /// The sink URL's topic: where outputs without a topic go.
    fn sink_topic(&self) -> Option<String> {
        let url: KafkaUrl = self.sink.as_deref()?.parse().ok()?;
        url.topics.into_iter().next()
    }

    /// Open the handler's reader: its group, manual commits, listeners.
    async fn open(&self) -> Result<StreamReader, EngineError> {
        let mut group = self.options.group.clone();
        group.auto_commit = false;
        let mut options = self.options.stream.clone();
        options.group = Some(group);
        let mut reader = Stream { options }
            .open_reader(&self.url)
            .await
            .map_err(|error| EngineError::Stream {
                handler: self.name.clone(),
                error: Box::new(error),
            })?;
        for l in &self.listeners {
            reader.add_listener(l.clone());
        }
        Ok(reader)
    }

    /// Open the reader for one run, unless shutdown comes first; with its
    /// group's handle.
    async fn start(&self, ctx: &Ctx) -> Result<(StreamReader, GroupHandle), RunEnd> {
        let reader = tokio::select! {
            r = self.open() => r.map_err(RunEnd::Failed)?,
            () = ctx.shutdown.wait() => return Err(RunEnd::Finished),
        };
        let Some(handle) = reader.group_handle() else {
            return Err(RunEnd::Failed(EngineError::Config {
                handler: self.name.clone(),
                message: "the reader is not in a group".into(),
            }));
        };
        Ok((reader, handle))
    }

    /// Run `once` until it finishes, restarting it as the crash policy
    /// says.
    async fn supervise<F>(&self, ctx: &Ctx, mut once: F) -> Result<(), EngineError>
    where
        F: FnMut() -> BoxFuture<RunEnd>,
    {
        let mut previous: Option<u32> = None;
        loop {
            let started = Instant::now();
            let error = match once().await {
                RunEnd::Finished => return Ok(()),
                RunEnd::Failed(e) => e,
            };
            let CrashPolicy::Restart(r) = &self.options.crash_policy else {
                return Err(error);
            };
            if ctx.shutdown.is_shutdown() {
                // Failed while shutting down: nothing to restart; the
                // record stays uncommitted.
                tracing::warn!(handler = %self.name, %error, "handler failed during shutdown");
                return Ok(());
            }
            let index = r.restart_index(previous, started.elapsed());
            previous = Some(index);
            let Some(delay) = r.delay(index, unit_random()) else {
                tracing::error!(handler = %self.name, %error, "handler failed; no restarts left");
                return Err(error);
            };
            tracing::warn!(handler = %self.name, %error, delay_ms = delay.as_millis() as u64, "handler failed; restarting");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = ctx.shutdown.wait() => return Ok(()),
            }
        }
    }

    /// Wait for `tasks` until `deadline`, then abort what is left;
    /// returns the first failure reported meanwhile.
    async fn drain(
        &self,
        tasks: &mut JoinSet<()>,
        deadline: Instant,
        failures: &mut mpsc::UnboundedReceiver<EngineError>,
    ) -> Option<EngineError> {
        let mut first = None;
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok(())) => {}
                    Some(Err(e)) if e.is_panic() => {
                        first.get_or_insert(EngineError::Panicked {
                            handler: self.name.clone(),
                            message: e.to_string(),
                        });
                    }
                    Some(Err(_)) => {}
                },
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(handler = %self.name, left = tasks.len(), "shutdown deadline: aborting in-flight records (they stay uncommitted)");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        while let Ok(e) = failures.try_recv() {
            first.get_or_insert(e);
        }
        first
    }

    /// Commit what is done and leave the group, within the deadline (at
    /// least [`CLOSE_GRACE`]).
    async fn close(&self, reader: StreamReader, deadline: Instant) {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(CLOSE_GRACE);
        match tokio::time::timeout(left, async {
            if let Err(e) = reader.commit().await {
                tracing::warn!(handler = %self.name, error = %e, "commit at close failed");
            }
            reader.close().await
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(handler = %self.name, error = %e, "leaving the group failed")
            }
            Err(_) => tracing::warn!(handler = %self.name, "closing the reader timed out"),
        }
    }
}

/// A uniform number in `[0, 1)` for backoff jitter (from a v4 UUID's
/// random bits: no extra dependency).
fn unit_random() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64; // 53 bits
    bits as f64 / (1u64 << 53) as f64
}

/// A per-record handler.
struct EachRunner<In, Out, F, Fut, O, E> {
    spec: Spec<In, Out>,
    handler: Arc<F>,
    _marker: Marker<(Fut, O, E)>,
}

/// Ties a runner to its function's types without owning them.
type Marker<T> = std::marker::PhantomData<fn() -> T>;

impl<In, Out, F, Fut, O, E> TypedRunner for EachRunner<In, Out, F, Fut, O, E>
where
    In: Codec,
    Out: Codec,
    F: Fn(Record<In::Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    O: IntoIterator<Item = Output<Out::Value>> + Send + 'static,
    O::IntoIter: Send,
    E: std::fmt::Display + Send + 'static,
{
    type In = In;
    type Out = Out;

    fn spec(&self) -> &Spec<In, Out> {
        &self.spec
    }

    async fn once(self: Arc<Self>, ctx: Arc<Ctx>, sink_topic: Option<Arc<str>>) -> RunEnd {
        let spec = &self.spec;
        let (mut reader, handle) = match spec.start(&ctx).await {
            Ok(started) => started,
            Err(end) => return end,
        };
        let permits = Arc::new(Semaphore::new(spec.options.concurrency.max(1)));
        let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<EngineError>();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut end = RunEnd::Finished;
        loop {
            while let Some(r) = tasks.try_join_next() {
                if let Err(e) = r {
                    if e.is_panic() {
                        let _ = fail_tx.send(EngineError::Panicked {
                            handler: spec.name.clone(),
                            message: e.to_string(),
                        });
                    }
                }
            }
            let permit = tokio::select! {
                biased;
                () = ctx.shutdown.wait() => break,
                Some(e) = fail_rx.recv() => { end = RunEnd::Failed(e); break }
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let item = tokio::select! {
                biased;
                () = ctx.shutdown.wait() => break,
                Some(e) = fail_rx.recv() => { end = RunEnd::Failed(e); break }
                item = reader.read_raw() => item,
            };
            let (payload, metadata) = match item {
                None => break,
                Some(Err(error)) => {
                    end = RunEnd::Failed(EngineError::Stream {
                        handler: spec.name.clone(),
                        error: Box::new(error),
                    });
                    break;
                }
                Some(Ok(raw)) => raw,
            };
            let job = Job {
                runner: self.clone(),
                ctx: ctx.clone(),
                sink_topic: sink_topic.clone(),
                handle: handle.clone(),
                fail: fail_tx.clone(),
            };
            tasks.spawn(async move {
                job.process(payload, metadata).await;
                drop(permit);
            });
        }
        let deadline = ctx.deadline();
        if let Some(e) = spec.drain(&mut tasks, deadline, &mut fail_rx).await {
            if matches!(end, RunEnd::Finished) {
                end = RunEnd::Failed(e);
            }
        }
        spec.close(reader, deadline).await;
        end
    }
}

/// One record's processing.
struct Job<R> {
    runner: Arc<R>,
    ctx: Arc<Ctx>,
    sink_topic: Option<Arc<str>>,
    handle: GroupHandle,
    fail: mpsc::UnboundedSender<EngineError>,
}

impl<In, Out, F, Fut, O, E> Job<EachRunner<In, Out, F, Fut, O, E>>
where
    In: Codec,
    Out: Codec,
    F: Fn(Record<In::Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    O: IntoIterator<Item = Output<Out::Value>> + Send + 'static,
    O::IntoIter: Send,
    E: std::fmt::Display + Send + 'static,
{
    /// Attempt once: decode, handle, send the outputs, wait for their
    /// acknowledgements.
    async fn attempt(
        &self,
        payload: Option<&Bytes>,
        metadata: &Arc<Metadata>,
        attempt: u32,
    ) -> Result<(), String> {
        let spec = &self.runner.spec;
        let value = spec
            .codec
            .decode(payload, metadata)
            .map_err(|e| e.to_string())?;
        let outputs = (self.runner.handler)(Record {
            value,
            metadata: metadata.clone(),
            attempt,
        })
        .await
        .map_err(|e| e.to_string())?;
        // No allocation for records without outputs.
        let mut acks: Vec<DeliveryFuture> = Vec::new();
        for o in outputs {
            let ack = self
                .ctx
                .sink
                .send(spec.sink_codec.as_ref(), self.sink_topic.as_deref(), o)
                .await
                .map_err(|e| format!("output: {e}"))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| format!("output not delivered: {e}"))?;
        }
        Ok(())
    }

    async fn process(self, payload: Option<Bytes>, metadata: Metadata) {
        let spec = &self.runner.spec;
        let metadata = Arc::new(metadata);
        let tp = TopicPartition::new(metadata.topic.as_ref(), metadata.partition);
        let mut attempt = 1u32;
        loop {
            let error = match self.attempt(payload.as_ref(), &metadata, attempt).await {
                Ok(()) => {
                    self.handle.mark_done(&tp, metadata.offset);
                    return;
                }
                Err(e) => e,
            };
            match spec.options.crash_policy.decide(attempt, unit_random()) {
                Decision::Retry(delay) => {
                    tracing::info!(handler = %spec.name, topic = %metadata.topic, partition = metadata.partition, offset = metadata.offset, attempt, %error, "retrying record");
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
                Decision::DeadLetter => {
                    let CrashPolicy::DeadLetter(d) = &spec.options.crash_policy else {
                        return;
                    };
                    tracing::warn!(handler = %spec.name, topic = %metadata.topic, partition = metadata.partition, offset = metadata.offset, attempt, %error, dlq = %d.topic, "dead-lettering record");
                    let why = dead_letter_headers(&spec.name, &metadata, attempt, &error);
                    let sent = match self
                        .ctx
                        .sink
                        .dead_letter(&d.topic, &metadata, payload.clone(), why)
                        .await
                    {
                        Ok(ack) => ack.await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match sent {
                        Ok(_) => {
                            self.handle.mark_done(&tp, metadata.offset);
                        }
                        Err(error) => {
                            let _ = self.fail.send(EngineError::DeadLetter {
                                handler: spec.name.clone(),
                                topic: metadata.topic.to_string(),
                                partition: metadata.partition,
                                offset: metadata.offset,
                                error,
                            });
                        }
                    }
                    return;
                }
                Decision::Stop | Decision::Restart => {
                    let _ = self.fail.send(EngineError::Handler {
                        handler: spec.name.clone(),
                        topic: metadata.topic.to_string(),
                        partition: metadata.partition,
                        offset: metadata.offset,
                        attempts: attempt,
                        error,
                    });
                    return;
                }
            }
        }
    }
}

/// The records of a whole-stream handler ([`HandlerBuilder::stream`]).
pub struct Records<In: Codec, Out: Codec> {
    rx: mpsc::Receiver<(Option<Bytes>, Metadata)>,
    codec: Arc<In>,
    sink_codec: Arc<Out>,
    sink_topic: Option<Arc<str>>,
    sink: Arc<SharedSink>,
    acks: mpsc::UnboundedSender<(TopicPartition, i64, Vec<DeliveryFuture>)>,
}

impl<In: Codec, Out: Codec> std::fmt::Debug for Records<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

impl<In: Codec, Out: Codec> Records<In, Out> {
    /// The next record, decoded; `None` once the engine shuts down (or
    /// the stream ended, with `until_eos`).
    ///
    /// Errors: [`EngineError::Decode`] for a value the codec cannot read
    /// (mark it done with [`Records::done`] to skip it).
    pub async fn next(&mut self) -> Option<Result<Record<In::Value>, EngineError>> {
        let (payload, metadata) = self.rx.recv().await?;
        let metadata = Arc::new(metadata);
        Some(match self.codec.decode(payload.as_ref(), &metadata) {
            Ok(value) => Ok(Record {
                value,
                metadata,
                attempt: 1,
            }),
            Err(error) => Err(EngineError::Decode { metadata, error }),
        })
    }

    /// The record `metadata` describes is handled: send `outputs` and mark
    /// it done once they are acknowledged (at once without outputs).
    ///
    /// Errors: [`EngineError::Output`] when an output cannot be encoded or
    /// queued; the record is then not done.
    pub async fn done(
        &self,
        metadata: &Metadata,
        outputs: impl IntoIterator<Item = Output<Out::Value>>,
    ) -> Result<(), EngineError> {
        let mut acks = Vec::new();
        for o in outputs {
            acks.push(
                self.sink
                    .send(self.sink_codec.as_ref(), self.sink_topic.as_deref(), o)
                    .await
                    .map_err(|e| EngineError::Output(e.to_string()))?,
            );
        }
        let tp = TopicPartition::new(metadata.topic.as_ref(), metadata.partition);
        let _ = self.acks.send((tp, metadata.offset, acks));
        Ok(())
    }
}

/// A whole-stream handler.
struct StreamRunner<In, Out, F, Fut, E> {
    spec: Spec<In, Out>,
    handler: Arc<F>,
    _marker: Marker<(Fut, E)>,
}

type AckFuture = BoxFuture<Option<(TopicPartition, i64)>>;

impl<In, Out, F, Fut, E> TypedRunner for StreamRunner<In, Out, F, Fut, E>
where
    In: Codec,
    Out: Codec,
    F: Fn(Records<In, Out>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    type In = In;
    type Out = Out;

    fn spec(&self) -> &Spec<In, Out> {
        &self.spec
    }

    fn check_kind(&self) -> Result<(), EngineError> {
        if matches!(self.spec.options.crash_policy, CrashPolicy::DeadLetter(_)) {
            return Err(EngineError::Config {
                handler: self.spec.name.clone(),
                message: "a whole-stream handler cannot dead-letter (no single record failed): use Stop or Restart".into(),
            });
        }
        Ok(())
    }

    async fn once(self: Arc<Self>, ctx: Arc<Ctx>, sink_topic: Option<Arc<str>>) -> RunEnd {
        let spec = &self.spec;
        let (mut reader, handle) = match spec.start(&ctx).await {
            Ok(started) => started,
            Err(end) => return end,
        };
        let (tx, rx) = mpsc::channel(spec.options.concurrency.max(1));
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let records = Records {
            rx,
            codec: spec.codec.clone(),
            sink_codec: spec.sink_codec.clone(),
            sink_topic,
            sink: ctx.sink.clone(),
            acks: ack_tx,
        };
        // Marks records done as their outputs are acknowledged, on its own
        // task, so reads are never cancelled for it (a cancelled poll may
        // drop work such as starting newly assigned partitions).
        let mut acker = tokio::spawn(acknowledge(ack_rx, handle));
        let mut task = tokio::spawn((self.handler)(records));
        let mut handler_result = None;
        let mut end = RunEnd::Finished;
        // Read into the handler until shutdown, the end, or the handler
        // returns.
        loop {
            let permit = tokio::select! {
                biased;
                () = ctx.shutdown.wait() => break,
                r = &mut task => { handler_result = Some(r); break }
                permit = tx.reserve() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let item = tokio::select! {
                biased;
                () = ctx.shutdown.wait() => break,
                r = &mut task => { handler_result = Some(r); break }
                item = reader.read_raw() => item,
            };
            match item {
                None => break,
                Some(Err(error)) => {
                    end = RunEnd::Failed(EngineError::Stream {
                        handler: spec.name.clone(),
                        error: Box::new(error),
                    });
                    break;
                }
                Some(Ok(raw)) => permit.send(raw),
            }
        }
        // No more records: `next` returns None once the buffered ones are
        // taken. Wait for the handler, then for its acknowledgements (the
        // acker ends once the handler's `Records` is gone and every
        // acknowledgement settled).
        drop(tx);
        let deadline = ctx.deadline();
        if handler_result.is_none() {
            tokio::select! {
                r = &mut task => handler_result = Some(r),
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(handler = %spec.name, "shutdown deadline: aborting the stream handler");
                    task.abort();
                }
            }
        }
        tokio::select! {
            _ = &mut acker => {}
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(handler = %spec.name, "shutdown deadline: outputs still unacknowledged (their records stay uncommitted)");
                acker.abort();
            }
        }
        match handler_result {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(e))) => {
                if matches!(end, RunEnd::Finished) {
                    end = RunEnd::Failed(EngineError::StreamHandler {
                        handler: spec.name.clone(),
                        error: e.to_string(),
                    });
                }
            }
            Some(Err(e)) => {
                if matches!(end, RunEnd::Finished) && e.is_panic() {
                    end = RunEnd::Failed(EngineError::Panicked {
                        handler: spec.name.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        spec.close(reader, deadline).await;
        end
    }
}

/// Marks each record [`Records::done`] sent done once its outputs are
/// acknowledged; ends when every sender is gone and nothing is pending.
async fn acknowledge(
    mut rx: mpsc::UnboundedReceiver<(TopicPartition, i64, Vec<DeliveryFuture>)>,
    handle: GroupHandle,
) {
    let mut pending: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some((tp, offset, futs)) => pending.push(ack_all(tp, offset, futs)),
                None => open = false,
            },
            Some(done) = pending.next(), if !pending.is_empty() => {
                if let Some((tp, offset)) = done {
                    handle.mark_done(&tp, offset);
                }
            }
        }
    }
}

/// Resolves to the record once every output is acknowledged; `None` if
/// one failed (the record stays not done).
fn ack_all(tp: TopicPartition, offset: i64, futs: Vec<DeliveryFuture>) -> AckFuture {
    Box::pin(async move {
        for f in futs {
            if let Err(e) = f.await {
                tracing::warn!(partition = %tp, offset, error = %e, "output not delivered; the record stays uncommitted");
                return None;
            }
        }
        Some((tp, offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_options_copy_the_engine_defaults() {
        let mut o = EngineOptions::default();
        assert_eq!(o.concurrency, 1);
        assert_eq!(o.crash_policy, CrashPolicy::Stop);
        assert_eq!(o.shutdown_timeout, Duration::from_secs(30));
        o.concurrency = 7;
        o.group.session_timeout = Duration::from_secs(9);
        let e = Engine::new(o);
        let h = e.handler_options("enrich");
        assert_eq!(h.group.group_id, "enrich");
        assert_eq!(h.concurrency, 7);
        assert_eq!(h.group.session_timeout, Duration::from_secs(9));
    }

    #[tokio::test]
    async fn shutdown_handle_is_idempotent_and_wakes_waiters() {
        let h = ShutdownHandle::new();
        assert!(!h.is_shutdown());
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.wait().await }
        });
        h.shutdown();
        let first = h.requested_at();
        h.clone().shutdown();
        assert_eq!(
            h.requested_at(),
            first,
            "the first request starts the deadline"
        );
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(h.is_shutdown());
    }

    #[test]
    fn unit_random_is_in_range() {
        for _ in 0..1000 {
            let u = unit_random();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[tokio::test]
    async fn bad_settings_fail_before_connecting() {
        let run = |e: Engine| async move { e.run().await.unwrap_err().to_string() };
        let mut e = Engine::new(EngineOptions::default());
        e.handler("a", "kafka://127.0.0.1:1/t")
            .each(|_r| async { Ok::<_, String>(None::<Output<crate::Message>>) });
        e.handler("a", "kafka://127.0.0.1:1/u")
            .each(|_r| async { Ok::<_, String>(None::<Output<crate::Message>>) });
        assert!(run(e).await.contains("two handlers"));

        let mut e = Engine::new(EngineOptions::default());
        e.handler("a", "kafka://127.0.0.1:1/")
            .each(|_r| async { Ok::<_, String>(None::<Output<crate::Message>>) });
        assert!(run(e).await.contains("no topic"));

        let mut e = Engine::new(EngineOptions::default());
        let mut o = e.handler_options("s");
        o.crash_policy =
            CrashPolicy::DeadLetter(crate::crash_policy::DeadLetterOptions::new("dlq"));
        e.handler("s", "kafka://127.0.0.1:1/t")
            .options(o)
            .stream(|_r| async { Ok::<_, String>(()) });
        assert!(run(e).await.contains("cannot dead-letter"));

        let mut e = Engine::new(EngineOptions::default());
        e.handler("a", "kafka://127.0.0.1:1/t")
            .sink("kafka://127.0.0.1:1/x", HopCodec)
            .each(|_r| async { Ok::<_, String>(None::<Output<crate::Message>>) });
        e.handler("b", "kafka://127.0.0.1:1/t")
            .sink("kafka://127.0.0.2:1/y", HopCodec)
            .each(|_r| async { Ok::<_, String>(None::<Output<crate::Message>>) });
        assert!(run(e).await.contains("other brokers"));

        let mut e = Engine::new(EngineOptions::default());
        e.handler("a", "kafka://127.0.0.1:1/t")
            .sink("kafka://127.0.0.1:1/x,y", HopCodec)
            .each(|_r| async { Ok::<_, String>(None::<Output<crate::Message>>) });
        assert!(run(e).await.contains("more than one topic"));
    }
}
