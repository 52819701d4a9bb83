//! [`Client`]: one handle to a cluster. It bootstraps from the configured
//! servers, keeps the metadata cache, owns the connections (one per broker
//! and purpose, so a long-polling fetch never delays a produce) and retries
//! with jittered backoff. Producer, consumer and admin calls are built on it.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::metadata_request::MetadataRequestTopic;
use skotch_protocol::messages::{FindCoordinatorRequest, MetadataRequest, Request};

use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::conn::{ConnectOptions, Connection};
use crate::error::{Error, Result};
use crate::metadata::{ClusterMetadata, TopicInfo};
use crate::security::Security;

/// What a connection is used for. Each broker gets at most one connection
/// per purpose (franz-go's layout): produce, fetch and group traffic never
/// queue behind each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnKind {
    /// Metadata, admin and other short requests.
    General,
    /// Produce requests.
    Produce,
    /// Fetch requests (which may wait up to `fetch.max.wait.ms`).
    Fetch,
    /// Offset commits and fetches of consumer groups.
    Group,
    /// JoinGroup and SyncGroup, which the coordinator holds until the
    /// other members rejoin (up to the rebalance timeout): on a connection
    /// of their own, so that a commit never waits behind them (a broker
    /// answers a connection's requests in order) and a commit that times
    /// out (closing its connection) never fails a join. franz-go does the
    /// same.
    Rebalance,
    /// Heartbeats (classic and KIP-848) and LeaveGroup: membership is kept
    /// alive even while a commit or a join is slow.
    Heartbeat,
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

struct Inner {
    config: ClientConfig,
    conns: Mutex<HashMap<(i32, ConnKind), Slot>>,
    metadata: RwLock<(Arc<ClusterMetadata>, Instant)>,
    /// Serialises metadata refreshes so that a burst of errors causes one.
    refresh: tokio::sync::Mutex<()>,
    /// Topics the client has been asked about; refreshed together.
    interest: Mutex<BTreeSet<String>>,
    stale: AtomicBool,
    backoff: Backoff,
    /// TLS built once from the config (CA files read, provider chosen).
    security: Security,
    /// Brokers that recently left a request unanswered for long (see
    /// [`Client::suspect`]), and when.
    suspects: Mutex<HashMap<i32, Instant>>,
}

/// How long a broker stays last in line for metadata requests after
/// [`Client::suspect`].
const SUSPECT_FOR: Duration = Duration::from_secs(10);

/// A Metadata request unanswered this long is sent to another broker too
/// (brokers answer it in milliseconds).
const METADATA_HEDGE: Duration = Duration::from_secs(1);

/// A handle to a Kafka cluster; cheap to clone, safe to share.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish()
    }
}

/// Bootstrap connections have no broker id yet; they get negative ids.
fn bootstrap_id(index: usize) -> i32 {
    -1 - i32::try_from(index).unwrap_or(i32::MAX - 1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Connect to the cluster: the bootstrap servers are tried in turn,
    /// with backoff between rounds, until one answers a Metadata request or
    /// `connect_timeout` has passed.
    ///
    /// Errors: [`Error::NoBootstrap`] listing what each server said;
    /// [`Error::Config`] for inconsistent security settings (checked before
    /// connecting); and, at once rather than after retries, the first
    /// [`Error::Tls`], [`Error::Authentication`] or
    /// [`Error::SaslMechanismNotEnabled`] a server gave, since trying again
    /// cannot fix a certificate or a password.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::Config("no bootstrap servers".into()));
        }
        let security = Security::from_config(&config)?;
        let backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
        let client = Client {
            inner: Arc::new(Inner {
                config,
                conns: Mutex::new(HashMap::new()),
                metadata: RwLock::new((Arc::new(ClusterMetadata::default()), Instant::now())),
                refresh: tokio::sync::Mutex::new(()),
                interest: Mutex::new(BTreeSet::new()),
                stale: AtomicBool::new(true),
                backoff,
                security,
                suspects: Mutex::new(HashMap::new()),
            }),
        };
        let deadline = Instant::now() + client.inner.config.connect_timeout;
        let mut attempt = 0;
        loop {
            match client.bootstrap_once().await {
                Ok(()) => return Ok(client),
                Err(errors) => {
                    if let Some(fatal) = errors.iter().find(|e| e.is_security()) {
                        return Err(fatal.clone());
                    }
                    let reasons = errors
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let wait = client.inner.backoff.delay_random(attempt);
                    if Instant::now() + wait >= deadline {
                        return Err(Error::NoBootstrap(format!(
                            "{}; gave up after {} ms",
                            reasons,
                            client.inner.config.connect_timeout.as_millis()
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One pass over the bootstrap servers; why each failed.
    async fn bootstrap_once(&self) -> std::result::Result<(), Vec<Error>> {
        let mut reasons = Vec::new();
        for i in 0..self.inner.config.bootstrap_servers.len() {
            let res = async {
                let conn = self.connection(bootstrap_id(i), ConnKind::General).await?;
                self.refresh_with(&conn, false, None).await
            }
            .await;
            match res {
                Ok(_) => return Ok(()),
                Err(e) => reasons.push(e),
            }
        }
        Err(reasons)
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    fn connect_options(&self) -> ConnectOptions {
        let c = &self.inner.config;
        ConnectOptions {
            client_id: c.client_id.clone(),
            connect_timeout: c.connect_timeout,
            request_timeout: c.request_timeout,
            max_response_size: c.max_response_size,
            security: self.inner.security.clone(),
        }
    }

    /// The connection to broker `broker` (a node id, or a negative
    /// bootstrap index) for `kind`, opening it if needed.
    pub async fn connection(&self, broker: i32, kind: ConnKind) -> Result<Arc<Connection>> {
        let slot = lock(&self.inner.conns)
            .entry((broker, kind))
            .or_default()
            .clone();
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let (host, port) = if broker < 0 {
            let idx = usize::try_from(-1 - i64::from(broker)).unwrap_or(usize::MAX);
            self.inner
                .config
                .bootstrap_servers
                .get(idx)
                .cloned()
                .ok_or_else(|| Error::Config(format!("no bootstrap server #{idx}")))?
        } else {
            let md = self.metadata();
            let b = md.brokers.get(&broker).ok_or_else(|| Error::Connect {
                addr: format!("broker {broker}"),
                reason: "not in the cluster metadata".into(),
            })?;
            (b.host.clone(), b.port)
        };
        tracing::debug!(broker, ?kind, %host, port, "connecting");
        let conn = Arc::new(Connection::connect(&host, port, self.connect_options()).await?);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// A connection to some live broker: a known one if possible, else a
    /// bootstrap server.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        Ok(self.any_connection_except(None).await?.1)
    }

    /// [`any_connection`](Self::any_connection) with the broker's id (a
    /// negative one for a bootstrap server), avoiding `skip`.
    async fn any_connection_except(&self, skip: Option<i32>) -> Result<(i32, Arc<Connection>)> {
        let md = self.metadata();
        let mut last = None;
        // Prefer brokers we are already connected to.
        let mut ids: Vec<i32> = md
            .brokers
            .keys()
            .copied()
            .filter(|id| Some(*id) != skip)
            .collect();
        {
            let conns = lock(&self.inner.conns);
            let live = |id: &i32| {
                conns
                    .get(&(*id, ConnKind::General))
                    .and_then(|s| s.try_lock().ok()?.as_ref().map(|c| !c.is_closed()))
                    .unwrap_or(false)
            };
            // A broker that leaves requests unanswered (frozen) goes last.
            let suspects = lock(&self.inner.suspects);
            let suspect = |id: &i32| suspects.get(id).is_some_and(|t| t.elapsed() < SUSPECT_FOR);
            ids.sort_by_key(|id| (suspect(id), !live(id)));
        }
        for id in ids {
            match self.connection(id, ConnKind::General).await {
                Ok(c) => return Ok((id, c)),
                Err(e) => last = Some(e),
            }
        }
        for i in 0..self.inner.config.bootstrap_servers.len() {
            let id = bootstrap_id(i);
            if Some(id) == skip {
                continue;
            }
            match self.connection(id, ConnKind::General).await {
                Ok(c) => return Ok((id, c)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NoBootstrap("no broker known".into())))
    }

    /// One Metadata request (see [`refresh_with`](Self::refresh_with)),
    /// hedged: a broker that has not answered within [`METADATA_HEDGE`]
    /// (frozen, or stalled in a GC pause) is suspected and another broker
    /// is asked too; the first answer wins. Without this a refresh sent to
    /// a frozen broker held every refresh of the client (they are
    /// serialised) for `request.timeout.ms`.
    async fn refresh_hedged(
        &self,
        all: bool,
        create: Option<&[String]>,
    ) -> Result<Arc<ClusterMetadata>> {
        let (id, conn) = self.any_connection_except(None).await?;
        let first = self.refresh_with(&conn, all, create);
        tokio::pin!(first);
        tokio::select! {
            r = &mut first => return r,
            _ = tokio::time::sleep(METADATA_HEDGE) => {}
        }
        self.suspect(id);
        let Ok((other, conn2)) = self.any_connection_except(Some(id)).await else {
            return first.await;
        };
        tracing::debug!(
            broker = id,
            other,
            "metadata request unanswered; asking another broker too"
        );
        let second = self.refresh_with(&conn2, all, create);
        tokio::pin!(second);
        tokio::select! {
            r = &mut first => match r {
                Ok(v) => Ok(v),
                Err(_) => second.await,
            },
            r = &mut second => match r {
                Ok(v) => Ok(v),
                Err(_) => first.await,
            },
        }
    }

    /// Send `req` to broker `broker` over its `kind` connection.
    pub async fn send<R: Request>(
        &self,
        broker: i32,
        kind: ConnKind,
        req: &R,
    ) -> Result<R::Response> {
        self.connection(broker, kind).await?.send(req).await
    }

    /// Send `req` to any live broker.
    pub async fn send_any<R: Request>(&self, req: &R) -> Result<R::Response> {
        self.any_connection().await?.send(req).await
    }

    /// The current metadata snapshot (may be stale).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Mark the metadata stale: the next lookup refreshes it. Called on
    /// NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, lost connections.
    pub fn invalidate_metadata(&self) {
        self.inner.stale.store(true, Ordering::Relaxed);
    }

    /// True when metadata was marked stale or is older than
    /// `metadata.max.age.ms`: the next lookup refreshes it.
    pub fn metadata_is_stale(&self) -> bool {
        self.is_stale()
    }

    fn is_stale(&self) -> bool {
        self.inner.stale.load(Ordering::Relaxed)
            || self
                .inner
                .metadata
                .read()
                .map(|g| g.1.elapsed() > self.inner.config.metadata_max_age)
                .unwrap_or(true)
    }

    /// Refresh metadata for `topics` (added to the topics this client
    /// tracks) and return the new snapshot.
    pub async fn refresh_metadata(&self, topics: &[String]) -> Result<Arc<ClusterMetadata>> {
        self.refresh_metadata_allowing(topics, false).await
    }

    /// [`refresh_metadata`](Self::refresh_metadata), letting the broker
    /// create `topics` when it does not know them and `allow_auto_create`
    /// is true (its `auto.create.topics.enable` decides), as the Java
    /// producer's requests do; then only `topics` are asked about. Kafka
    /// 4.x answers the request that starts a creation with
    /// UNKNOWN_TOPIC_OR_PARTITION; the topic appears in a later answer.
    pub async fn refresh_metadata_allowing(
        &self,
        topics: &[String],
        allow_auto_create: bool,
    ) -> Result<Arc<ClusterMetadata>> {
        lock(&self.inner.interest).extend(topics.iter().cloned());
        let started = Instant::now();
        let _g = self.inner.refresh.lock().await;
        // Someone else refreshed while we waited: theirs is fresh enough
        // unless it lacks one of our topics.
        {
            let g = self
                .inner
                .metadata
                .read()
                .unwrap_or_else(|p| p.into_inner());
            if g.1 > started
                && topics
                    .iter()
                    .all(|t| g.0.topics.contains_key(t) || g.0.topic_errors.contains_key(t))
            {
                return Ok(g.0.clone());
            }
        }
        // Creation is asked for the caller's topics only: the other topics
        // this client tracks (someone's typo among them) must not be
        // created because a producer looked up its own.
        let only = allow_auto_create.then_some(topics);
        self.refresh_hedged(false, only).await
    }

    /// Metadata describing every topic in the cluster.
    pub async fn fetch_all_topics(&self) -> Result<Arc<ClusterMetadata>> {
        let _g = self.inner.refresh.lock().await;
        self.refresh_hedged(true, None).await
    }

    /// One Metadata request: every topic (`all`), the topics this client
    /// tracks, or (`create`) just those topics, letting the broker create
    /// them.
    async fn refresh_with(
        &self,
        conn: &Connection,
        all: bool,
        create: Option<&[String]>,
    ) -> Result<Arc<ClusterMetadata>> {
        let allow_auto_create = create.is_some();
        let topics: Vec<String> = match create {
            Some(t) => t.to_vec(),
            None => lock(&self.inner.interest).iter().cloned().collect(),
        };
        let req = MetadataRequest {
            // v1+: null = all topics; an empty list = brokers only.
            topics: if all {
                None
            } else {
                Some(
                    topics
                        .iter()
                        .map(|t| MetadataRequestTopic {
                            name: Some(t.clone()),
                            ..Default::default()
                        })
                        .collect(),
                )
            },
            // Unless the producer asks (Java's producer does): asking about
            // a topic never creates it, so a typo is an "unknown topic"
            // error, not a new topic.
            allow_auto_topic_creation: allow_auto_create,
            ..Default::default()
        };
        // Version 0 treats an empty list as "all topics"; we need v1+.
        let v = conn.version::<MetadataRequest>()?.max(1);
        let resp = conn
            .send_version(&req, v, self.inner.config.request_timeout)
            .await?;
        let mut g = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let next = Arc::new(g.0.apply(&resp, all));
        *g = (next.clone(), Instant::now());
        self.inner.stale.store(false, Ordering::Relaxed);
        Ok(next)
    }

    /// Metadata for `topic`, refreshed if unknown or stale.
    ///
    /// Errors: [`Error::UnknownTopic`] when the broker says it does not
    /// exist; other topic-level errors as [`Error::Broker`].
    pub async fn topic(&self, topic: &str) -> Result<TopicInfo> {
        self.topic_allowing(topic, false).await
    }

    /// [`topic`](Self::topic), letting the broker create the topic when
    /// `allow_auto_create` is true (see
    /// [`refresh_metadata_allowing`](Self::refresh_metadata_allowing)): a
    /// topic being created is [`Error::UnknownTopic`] (Kafka 4.x) or a
    /// retriable LEADER_NOT_AVAILABLE until it is there.
    pub async fn topic_allowing(&self, topic: &str, allow_auto_create: bool) -> Result<TopicInfo> {
        let md = self.metadata();
        if !self.is_stale() {
            if let Some(t) = md.topics.get(topic) {
                return Ok(t.clone());
            }
        }
        let md = self
            .refresh_metadata_allowing(&[topic.to_string()], allow_auto_create)
            .await?;
        if let Some(t) = md.topics.get(topic) {
            return Ok(t.clone());
        }
        match md.topic_errors.get(topic) {
            Some(code)
                if *code == skotch_protocol::error::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION =>
            {
                Err(Error::UnknownTopic(topic.to_string()))
            }
            Some(code) => Err(Error::Broker {
                code: *code,
                message: None,
                context: format!("metadata for topic {topic:?}"),
            }),
            None => Err(Error::UnknownTopic(topic.to_string())),
        }
    }

    /// The leader broker id of a partition, refreshing metadata once if it
    /// is not known.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        if !self.is_stale() {
            if let Some(l) = self.metadata().leader(topic, partition) {
                return Ok(l);
            }
        }
        let md = self.refresh_metadata(&[topic.to_string()]).await?;
        if let Some(l) = md.leader(topic, partition) {
            return Ok(l);
        }
        let t = self.topic(topic).await?;
        match t.partition(partition) {
            None => Err(Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
            }),
            Some(p) => Err(Error::Broker {
                code: if p.error.is_ok() {
                    skotch_protocol::error::ErrorCode::LEADER_NOT_AVAILABLE
                } else {
                    p.error
                },
                message: None,
                context: format!("leader of {topic}-{partition}"),
            }),
        }
    }

    /// Run `op` until it succeeds, fails with an error that is not
    /// retriable, or `timeout` would pass. Between attempts it waits with
    /// jittered exponential backoff and marks metadata stale when the error
    /// says it is.
    pub async fn retry<T, F, Fut>(&self, timeout: Duration, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + timeout;
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if !e.is_retriable() {
                        return Err(e);
                    }
                    let wait = self.inner.backoff.delay_random(attempt);
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    if e.needs_metadata_refresh() {
                        self.invalidate_metadata();
                    }
                    tracing::debug!(error = %e, attempt, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// The broker coordinating consumer group `group` (FindCoordinator with
    /// key type 0), retried with backoff while the coordinator is loading or
    /// not yet elected (COORDINATOR_NOT_AVAILABLE,
    /// COORDINATOR_LOAD_IN_PROGRESS), for at most `request.timeout.ms`.
    ///
    /// Versions 0–3 carry one key, 4+ a batch (KIP-699); both are handled.
    /// The coordinator's address is not cached here: the group code keeps
    /// its own and asks again after NOT_COORDINATOR.
    pub async fn find_coordinator(&self, group: &str) -> Result<i32> {
        self.retry(self.inner.config.request_timeout, || async {
            let conn = self.any_connection().await?;
            let version = conn.version::<FindCoordinatorRequest>()?;
            // v4+ carry the batch and no longer `key` (encoding a non-empty
            // `key` at v4+ is an error), older versions only `key`.
            let req = if version >= 4 {
                FindCoordinatorRequest {
                    key: String::new(),
                    key_type: 0,
                    coordinator_keys: vec![group.to_string()],
                }
            } else {
                FindCoordinatorRequest {
                    key: group.to_string(),
                    key_type: 0,
                    coordinator_keys: Vec::new(),
                }
            };
            let resp = conn
                .send_version(&req, version, self.inner.config.request_timeout)
                .await?;
            let context = || format!("find the coordinator of group {group:?}");
            let node = if version >= 4 {
                let c = resp
                    .coordinators
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Broker {
                        code: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                        message: Some("empty coordinator list".into()),
                        context: context(),
                    })?;
                Error::check(c.error_code, c.error_message, context)?;
                c.node_id
            } else {
                Error::check(resp.error_code, resp.error_message, context)?;
                resp.node_id
            };
            if !self.metadata().brokers.contains_key(&node) {
                // A broker we have not seen yet: learn its address.
                self.refresh_metadata(&[]).await?;
            }
            Ok(node)
        })
        .await
    }

    /// The backoff schedule (`retry.backoff.ms` .. `retry.backoff.max.ms`).
    pub fn backoff(&self) -> Backoff {
        self.inner.backoff
    }

    /// Note that `broker` has left a request unanswered for unusually
    /// long (a GC pause, a hung disk, a frozen process): for a while,
    /// metadata requests go to other brokers first, so that finding out
    /// what moved does not wait behind it.
    pub fn suspect(&self, broker: i32) {
        lock(&self.inner.suspects).insert(broker, Instant::now());
    }

    /// Close the `kind` connection to `broker`, if open: its requests in
    /// flight fail at once (as connection errors) instead of waiting for
    /// their timeout. Used when metadata says the broker left the cluster
    /// (fenced) while requests to it are unanswered.
    pub fn close_connection(&self, broker: i32, kind: ConnKind) {
        let slot = lock(&self.inner.conns).get(&(broker, kind)).cloned();
        if let Some(slot) = slot {
            if let Ok(g) = slot.try_lock() {
                if let Some(c) = g.as_ref() {
                    c.close();
                }
            }
        }
    }

    /// Close every connection. Requests in flight fail.
    pub fn close(&self) {
        for slot in lock(&self.inner.conns).values() {
            if let Ok(g) = slot.try_lock() {
                if let Some(c) = g.as_ref() {
                    c.close();
                }
            }
        }
    }
}
