//! Opening a `kafka://` URL for reading or writing, as hop-client's
//! `Stream.open(url, "r" | "w")`.
//!
//! Reading either assigns every partition of every topic in the URL, or,
//! with a consumer group, reads the partitions the group assigns; it yields
//! messages in order per partition; with `until_eos` it ends once each
//! (assigned) partition reached its end. Writing sends each message
//! with the standard headers and reports delivery failures on `flush` and
//! `close`, so nothing is lost silently.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use skotch_client::group::assignor;
use skotch_client::security::tls::TlsConfig;
use skotch_client::{
    Client, ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, DeliveryFuture, GroupConfig,
    GroupConsumer, GroupHandle, GroupProtocol, Header, ManualCommitListener, Offset, Producer,
    ProducerConfig, ProducerRecord, RebalanceListener, TopicPartition,
};

use crate::credentials::{CredentialError, CredentialStore};
use crate::headers::{with_standard_headers, Headers};
use crate::metadata::Metadata;
use crate::models::Message;
use crate::options::{Auth, CredentialSource, GroupOptions, StartPosition, StreamOptions};
use crate::url::{KafkaUrl, UrlError};

/// Errors of the streaming layer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// Kafka said no, or could not be reached.
    #[error(transparent)]
    Client(#[from] skotch_client::Error),
    /// A read stream needs at least one topic in its URL.
    #[error("the URL names no topic to read from")]
    NoTopic,
    /// A write must name its topic when the URL names none or several.
    #[error("the URL names {0} topics; write() must say which one to use")]
    TopicRequired(usize),
    /// A header name is reserved.
    #[error(transparent)]
    ReservedHeader(#[from] crate::headers::HeaderError),
    /// The credentials file could not be read, or no entry fits the URL.
    #[error(transparent)]
    Credentials(Arc<CredentialError>),
    /// The URL's `username@` differs from the explicit credentials.
    #[error("the URL names user {url:?} but the stream's credentials are for {auth:?}")]
    UserMismatch {
        /// The URL's username.
        url: String,
        /// The username of [`StreamOptions::auth`](crate::StreamOptions::auth).
        auth: String,
    },
    /// `flush`/`close` found messages that were not delivered.
    #[error("{failed} message(s) were not delivered; first error: {first}")]
    Undelivered {
        /// How many failed.
        failed: usize,
        /// The first failure.
        first: Box<skotch_client::Error>,
    },
}

/// Result alias for the streaming layer.
pub type Result<T, E = StreamError> = std::result::Result<T, E>;

/// Opens streams with shared defaults (hop-client's `Stream`).
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// The defaults every opened stream uses.
    pub options: StreamOptions,
}

impl Stream {
    /// A stream opener with hop-client's defaults (start at latest, wait
    /// for new messages forever, no authentication).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set where reading starts.
    pub fn start_at(mut self, at: StartPosition) -> Self {
        self.options.start_at = at;
        self
    }

    /// Stop reading at the end of every partition.
    pub fn until_eos(mut self, yes: bool) -> Self {
        self.options.until_eos = yes;
        self
    }

    /// Read as a member of a consumer group.
    pub fn group(mut self, group: GroupOptions) -> Self {
        self.options.group = Some(group);
        self
    }

    /// The credential to use for `url`: the explicit one, else the
    /// credentials file's entry for the URL's user and broker, if any.
    pub fn credential_for(&self, url: &KafkaUrl) -> Result<Option<Auth>> {
        if let Some(auth) = &self.options.auth {
            if let Some(user) = url.username.as_deref().filter(|u| *u != auth.username) {
                return Err(StreamError::UserMismatch {
                    url: user.to_string(),
                    auth: auth.username.clone(),
                });
            }
            return Ok(Some(auth.clone()));
        }
        let store = match &self.options.credentials {
            CredentialSource::None => return Ok(None),
            CredentialSource::DefaultFile => CredentialStore::load_default(),
            CredentialSource::File(path) => CredentialStore::load(path.clone()),
        }
        .map_err(|e| StreamError::Credentials(Arc::new(e)))?;
        Ok(store
            .select_for_url(url)
            .map_err(|e| StreamError::Credentials(Arc::new(e)))?
            .cloned())
    }

    /// A [`Client`] for `url`'s brokers, authenticated as the stream would
    /// be (for admin tools that share the stream's credentials).
    pub async fn client(&self, url: &KafkaUrl) -> Result<Client> {
        Ok(self.connect(url).await?.0)
    }

    /// Connect with the credential for `url`, if any; returns the client
    /// and the authenticated username (the `_sender` of written messages).
    async fn connect(&self, url: &KafkaUrl) -> Result<(Client, Option<String>)> {
        let mut config = ClientConfig::new(&url.bootstrap_servers())?
            .client_id("skotch-stream")
            .connect_timeout(self.options.connect_timeout);
        let credential = self.credential_for(url)?;
        if let Some(c) = &credential {
            config = config.security_protocol(c.protocol).sasl(c.sasl_config());
            if c.protocol.uses_tls() {
                let mut tls = TlsConfig::new();
                if let Some(ca) = c.ca_file() {
                    tls = tls.ca_file(ca);
                }
                config = config.tls(tls);
            }
        }
        let client = Client::connect(config).await?;
        Ok((client, credential.map(|c| c.username)))
    }

    /// Open `url` for reading (hop's `open(url, "r")`), as a member of
    /// the consumer group in [`StreamOptions::group`] when one is set.
    ///
    /// Errors: a bad URL, no topic in it, unreachable brokers, an unknown
    /// topic, invalid group settings.
    pub async fn open_reader(&self, url: &str) -> Result<StreamReader> {
        let url: KafkaUrl = url.parse()?;
        if url.topics.is_empty() {
            return Err(StreamError::NoTopic);
        }
        let (client, _) = self.connect(&url).await?;
        let start = match self.options.start_at {
            StartPosition::Earliest => Offset::Earliest,
            StartPosition::Latest => Offset::Latest,
            StartPosition::Offset(o) => Offset::At(o),
            StartPosition::Timestamp(t) => Offset::Timestamp(t),
        };
        let source = match &self.options.group {
            None => {
                let mut consumer = Consumer::new(client, ConsumerConfig::default());
                for t in &url.topics {
                    consumer.assign_topic(t, start).await?;
                }
                Source::Assigned(consumer)
            }
            Some(g) => {
                for t in &url.topics {
                    // A clear error now rather than an empty group later.
                    client.topic(t).await?;
                }
                let consumer_config = ConsumerConfig {
                    auto_offset_reset: Some(start),
                    ..Default::default()
                };
                let mut group = GroupConsumer::subscribe(
                    client,
                    consumer_config,
                    group_config(g)?,
                    &url.topics,
                )
                .await?;
                group.set_initial_offsets(g.initial_offsets.iter().cloned());
                // Commit what is done before a partition moves away
                // (kstreams' ManualCommitRebalanceListener).
                group.add_listener(ManualCommitListener);
                Source::Group {
                    consumer: Box::new(group),
                    auto_commit: g.auto_commit,
                    commit_interval: g.commit_interval,
                    last_commit: Instant::now(),
                }
            }
        };
        Ok(StreamReader {
            source,
            buffered: VecDeque::new(),
            until_eos: self.options.until_eos,
            ignore_test: self.options.ignore_test,
            done: false,
            last_partition: None,
        })
    }

    /// Open `url` for writing (hop's `open(url, "w")`).
    pub async fn open_writer(&self, url: &str) -> Result<StreamWriter> {
        let url: KafkaUrl = url.parse()?;
        // A bad level fails the open, before connecting.
        self.options
            .compression
            .check_level(self.options.compression_level)
            .map_err(|e| skotch_client::Error::Config(e.to_string()))?;
        let (client, sender) = self.connect(&url).await?;
        for t in &url.topics {
            // Fail at open, not at the first write, when a topic is missing.
            client.topic(t).await?;
        }
        let config = ProducerConfig {
            delivery_timeout: delivery_timeout(self.options.produce_timeout),
            compression: self.options.compression,
            compression_level: self.options.compression_level,
            // hop-client's behaviour: writing to a topic that does not
            // exist is an error, never a new topic.
            allow_auto_create_topics: false,
            ..Default::default()
        };
        Ok(StreamWriter {
            producer: Producer::new(client, config)?,
            topics: url.topics,
            sender,
            pending: FuturesUnordered::new(),
            failed: Vec::new(),
        })
    }
}

/// What "no limit" (a `produce_timeout` of 0, hop's default) becomes: a
/// delivery timeout nobody waits out (and that tokio's timer, which caps
/// sleeps at about two years, still takes as given).
const NO_PRODUCE_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The producer's `delivery.timeout.ms` for a stream's `produce_timeout`.
fn delivery_timeout(produce_timeout: Duration) -> Duration {
    if produce_timeout.is_zero() {
        NO_PRODUCE_LIMIT
    } else {
        produce_timeout
    }
}

/// Open `url` for reading with the default options.
pub async fn open_reader(url: &str) -> Result<StreamReader> {
    Stream::new().open_reader(url).await
}

/// Open `url` for writing with the default options.
pub async fn open_writer(url: &str) -> Result<StreamWriter> {
    Stream::new().open_writer(url).await
}

/// A stream opened for reading.
#[derive(Debug)]
pub struct StreamReader {
    source: Source,
    buffered: VecDeque<ConsumerRecord>,
    until_eos: bool,
    /// Skip test messages ([`StreamOptions::ignore_test`]).
    ignore_test: bool,
    done: bool,
    /// The partition of the last record handed out (for mark_done).
    last_partition: Option<TopicPartition>,
}

/// Where a reader's records come from.
#[derive(Debug)]
enum Source {
    /// Every partition of the URL's topics, no group.
    Assigned(Consumer),
    /// The partitions a consumer group assigns to this reader.
    Group {
        consumer: Box<GroupConsumer>,
        auto_commit: bool,
        commit_interval: Duration,
        last_commit: Instant,
    },
}

fn group_config(g: &GroupOptions) -> Result<GroupConfig> {
    let mut c = GroupConfig::new(g.group_id.clone());
    c.group_protocol = g.protocol;
    c.group_instance_id = g.instance_id.clone();
    c.session_timeout = g.session_timeout;
    c.heartbeat_interval = g.heartbeat_interval;
    c.max_poll_interval = g.max_poll_interval;
    c.auto_commit_interval = g.commit_interval;
    // The stream marks records done itself (at hand-out, or by mark_done)
    // and commits on its own schedule.
    c.enable_auto_commit = false;
    match (&g.assignor, g.protocol) {
        (None, _) => {}
        (Some(name), GroupProtocol::Consumer) => c.remote_assignor = Some(name.clone()),
        (Some(name), GroupProtocol::Classic) => {
            let a = assignor::by_name(name).ok_or_else(|| {
                StreamError::Client(skotch_client::Error::Config(format!(
                    "unknown assignor {name:?}: expected range, roundrobin or cooperative-sticky"
                )))
            })?;
            c.assignors = vec![Arc::from(a)];
        }
    }
    Ok(c)
}

/// The metadata of `r`, taking its headers: the topic is shared, and the
/// header list is turned into pairs in place (same layout), so nothing is
/// allocated per record.
fn to_metadata(r: &mut ConsumerRecord) -> Metadata {
    Metadata {
        topic: r.topic.clone(),
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        key: r.key.clone(),
        headers: std::mem::take(&mut r.headers)
            .into_iter()
            .map(|h| (h.key, h.value))
            .collect(),
    }
}

impl StreamReader {
    /// The next message with its metadata; `None` at the end of the
    /// stream (only with `until_eos`).
    pub async fn read_with_metadata(&mut self) -> Option<Result<(Message, Metadata)>> {
        let (value, metadata) = match self.read_raw().await? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let format = crate::headers::format(&metadata.headers);
        let msg = Message::deserialize(format, value.as_ref());
        Some(Ok((msg, metadata)))
    }

    /// [`read_with_metadata`](Self::read_with_metadata) without the model:
    /// the record's value as fetched (the engine's codecs decode it).
    pub(crate) async fn read_raw(&mut self) -> Option<Result<(Option<Bytes>, Metadata)>> {
        loop {
            if let Some(mut r) = self.buffered.pop_front() {
                // hop's ignoretest. A skipped test message is done at once,
                // under manual commits too: nobody will mark it, and the
                // group's commits must not stop in front of it.
                let skip = self.ignore_test
                    && r.headers
                        .iter()
                        .any(|h| &*h.key == crate::headers::standard::TEST);
                if let Source::Group {
                    consumer,
                    auto_commit,
                    ..
                } = &self.source
                {
                    // hop-client: under auto commits a message counts as
                    // read once handed out; under manual ones the
                    // application marks it. Records come in runs of one
                    // partition: one TopicPartition per run, not per record.
                    if *auto_commit || skip {
                        let same = self
                            .last_partition
                            .as_ref()
                            .is_some_and(|tp| tp.partition == r.partition && *tp.topic == *r.topic);
                        if !same {
                            self.last_partition =
                                Some(TopicPartition::new(r.topic.as_ref(), r.partition));
                        }
                        if let Some(tp) = &self.last_partition {
                            consumer.mark_done(tp, r.offset);
                        }
                    }
                }
                if skip {
                    continue;
                }
                let metadata = to_metadata(&mut r);
                return Some(Ok((r.value, metadata)));
            }
            if self.done {
                return None;
            }
            let polled = match &mut self.source {
                Source::Assigned(c) => c.poll().await.map(|p| (p, c.at_end())),
                Source::Group {
                    consumer,
                    commit_interval,
                    last_commit,
                    ..
                } => {
                    if last_commit.elapsed() >= *commit_interval {
                        *last_commit = Instant::now();
                        if let Err(e) = consumer.commit_done().await {
                            tracing::warn!(error = %e, "periodic commit failed; will retry");
                        }
                    }
                    consumer.poll().await.map(|p| (p, consumer.at_end()))
                }
            };
            match polled {
                Err(e) => return Some(Err(e.into())),
                Ok((p, at_end)) => {
                    self.buffered.extend(p.records);
                    if self.until_eos && at_end {
                        self.done = true;
                    }
                }
            }
        }
    }

    /// The next message; `None` at the end of the stream.
    pub async fn read(&mut self) -> Option<Result<Message>> {
        self.read_with_metadata().await.map(|r| r.map(|(m, _)| m))
    }

    /// The messages as an async stream of `(Message, Metadata)`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<(Message, Metadata)>> {
        futures::stream::unfold(self, |mut r| async move {
            r.read_with_metadata().await.map(|item| (item, r))
        })
    }

    /// Processing of the message described by `metadata` finished
    /// (hop-client's `mark_done`). With `auto_commit` off, only done
    /// messages are committed, and only up to the first one not done yet.
    /// A no-op without a group or with `auto_commit`; a partition no longer
    /// assigned to this reader is ignored with a log line.
    pub fn mark_done(&self, metadata: &Metadata) {
        if self.auto_commit() != Some(false) {
            return; // auto commit already counted it at hand-out
        }
        if let Some(h) = self.group_handle() {
            h.mark_done(
                &TopicPartition::new(metadata.topic.as_ref(), metadata.partition),
                metadata.offset,
            );
        }
    }

    /// A cloneable handle for marking messages done from other tasks
    /// (concurrent workers); `None` without a group.
    pub fn group_handle(&self) -> Option<GroupHandle> {
        match &self.source {
            Source::Group { consumer, .. } => Some(consumer.handle()),
            Source::Assigned(_) => None,
        }
    }

    /// Whether messages count as done once handed out (`None` without a
    /// group).
    pub fn auto_commit(&self) -> Option<bool> {
        match &self.source {
            Source::Group { auto_commit, .. } => Some(*auto_commit),
            Source::Assigned(_) => None,
        }
    }

    /// Add a rebalance listener (group readers only; the group is joined
    /// at the first read, so listeners added before it see every change).
    /// Listeners run after the built-in one that commits done offsets
    /// before a revocation.
    pub fn add_listener(&mut self, listener: impl RebalanceListener + 'static) {
        match &mut self.source {
            Source::Group { consumer, .. } => consumer.add_listener(listener),
            Source::Assigned(_) => {
                tracing::warn!("rebalance listener ignored: the stream is not in a consumer group")
            }
        }
    }

    /// The partitions this reader reads now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        match &self.source {
            Source::Assigned(c) => c.assignment(),
            Source::Group { consumer, .. } => consumer.assignment(),
        }
    }

    /// Commit the done offsets now (group readers; a no-op otherwise).
    pub async fn commit(&self) -> Result<()> {
        if let Source::Group { consumer, .. } = &self.source {
            consumer.commit_done().await?;
        }
        Ok(())
    }

    /// Stop reading. A group reader commits its done offsets (through the
    /// revocation of its partitions) and leaves the group. The reader's
    /// connections close once nothing else holds its client.
    ///
    /// Errors: a group reader's final commit or LeaveGroup failed.
    pub async fn close(self) -> Result<()> {
        match self.source {
            Source::Assigned(c) => {
                c.close();
                Ok(())
            }
            Source::Group { consumer, .. } => Ok(consumer.close().await?),
        }
    }
}

/// Options for one write (hop's `write(..., topic=, headers=, test=)`).
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Topic; required when the URL names none or several.
    pub topic: Option<String>,
    /// User headers (no `_` names).
    pub headers: Headers,
    /// Mark the message as a test (`_test` header).
    pub test: bool,
    /// Record key (decides the partition).
    pub key: Option<Bytes>,
}

/// What a write of `message` with `opts` sends, for [`StreamWriter`] and
/// the robust writer: its topic (`opts.topic`, else the only one of
/// `topics`), its headers (the user's, checked, then the standard ones)
/// and its key.
pub(crate) fn prepare_write(
    opts: WriteOptions,
    topics: &[String],
    sender: Option<&str>,
    message: &Message,
) -> Result<PreparedWrite> {
    opts.headers.validate()?;
    let topic = match (opts.topic, topics) {
        (Some(t), _) => t,
        (None, [only]) => only.clone(),
        (None, all) => return Err(StreamError::TopicRequired(all.len())),
    };
    let headers = with_standard_headers(
        &opts.headers,
        uuid::Uuid::new_v4(),
        sender,
        opts.test,
        message.format_name(),
    );
    Ok(PreparedWrite {
        topic,
        headers,
        key: opts.key,
    })
}

/// See [`prepare_write`].
pub(crate) struct PreparedWrite {
    pub(crate) topic: String,
    pub(crate) headers: Vec<(String, Bytes)>,
    pub(crate) key: Option<Bytes>,
}

/// A stream opened for writing.
pub struct StreamWriter {
    producer: Producer,
    topics: Vec<String>,
    sender: Option<String>,
    pending: FuturesUnordered<DeliveryFuture>,
    failed: Vec<skotch_client::Error>,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("topics", &self.topics)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl StreamWriter {
    /// Write a message to the URL's only topic.
    pub async fn write(&mut self, message: impl Into<Message>) -> Result<()> {
        self.write_with(message, WriteOptions::default()).await
    }

    /// Write a message with a topic, headers, test flag or key. Returns
    /// once the message is queued; delivery problems surface in
    /// [`StreamWriter::flush`] / [`StreamWriter::close`].
    pub async fn write_with(
        &mut self,
        message: impl Into<Message>,
        opts: WriteOptions,
    ) -> Result<()> {
        let message = message.into();
        let prepared = prepare_write(opts, &self.topics, self.sender.as_deref(), &message)?;
        let headers = prepared
            .headers
            .into_iter()
            .map(|(key, v)| Header::new(key, v))
            .collect();
        let record = ProducerRecord {
            topic: prepared.topic,
            partition: None,
            key: prepared.key,
            value: Some(message.serialize()),
            headers,
            timestamp: Some(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
            ),
        };
        let fut = self.producer.send(record).await?;
        self.pending.push(fut);
        // Collect deliveries that already finished so the set stays small.
        while let Some(Some(r)) = futures::FutureExt::now_or_never(self.pending.next()) {
            if let Err(e) = r {
                self.failed.push(e);
            }
        }
        Ok(())
    }

    /// Wait until every written message is delivered; the error counts
    /// those that were not.
    pub async fn flush(&mut self) -> Result<()> {
        self.producer.flush().await?;
        while let Some(r) = self.pending.next().await {
            if let Err(e) = r {
                self.failed.push(e);
            }
        }
        let failed = std::mem::take(&mut self.failed);
        let count = failed.len();
        match failed.into_iter().next() {
            None => Ok(()),
            Some(first) => Err(StreamError::Undelivered {
                failed: count,
                first: Box::new(first),
            }),
        }
    }

    /// The writer's producer and the `_sender` of its messages (the
    /// engine shares one producer among its handlers).
    pub(crate) fn into_parts(self) -> (Producer, Option<String>) {
        (self.producer, self.sender)
    }

    /// Flush, then close the producer.
    ///
    /// Errors: messages that were not delivered (as
    /// [`flush`](Self::flush)), else the producer's own close error.
    pub async fn close(mut self) -> Result<()> {
        let r = self.flush().await;
        let closed = self.producer.close().await;
        r?;
        Ok(closed?)
    }
}
