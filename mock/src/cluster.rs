//! [`MockCluster`]: N brokers on 127.0.0.1 ephemeral ports, served by
//! tokio tasks of the calling runtime, sharing one in-memory state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::ApiKey;
use skotch_protocol::sasl::Mechanism;
use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::broker::{Broker, BrokerAddr, Shared};
use crate::connection;
use crate::fault::{Fault, FaultAction, FaultId, Faults};
use crate::request_log::{LoggedRequest, RequestLog};
use crate::sasl::User;
use crate::state::{Partition, State};

/// Why a cluster operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum MockError {
    /// A listener could not be bound.
    Io(std::io::Error),
    /// The cluster refused, with the error code a broker would answer.
    Kafka {
        /// The Kafka error code.
        code: ErrorCode,
        /// What was wrong.
        message: String,
    },
    /// A cluster needs at least one broker.
    NoBrokers,
    /// A test asked for something the cluster cannot do (an unknown
    /// broker or partition, a leader that is not a replica, ...).
    Invalid(String),
}

impl std::fmt::Display for MockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MockError::Io(e) => write!(f, "mock cluster I/O error: {e}"),
            MockError::Kafka { code, message } => write!(f, "{}: {message}", code.name()),
            MockError::NoBrokers => f.write_str("a mock cluster needs at least one broker"),
            MockError::Invalid(why) => write!(f, "mock cluster: {why}"),
        }
    }
}

impl std::error::Error for MockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MockError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for MockError {
    fn from(e: std::io::Error) -> Self {
        MockError::Io(e)
    }
}

/// How to start a [`MockCluster`]: `MockCluster::builder()`.
#[derive(Debug, Clone)]
pub struct MockClusterBuilder {
    brokers: usize,
    port: Option<u16>,
    users: Vec<User>,
    in_memory: bool,
    group_timing: GroupTiming,
}

/// Group coordinator settings a test may set (`None`: the mock's default).
#[derive(Debug, Clone, Default)]
struct GroupTiming {
    initial_rebalance_delay: Option<Duration>,
    min_session_timeout: Option<Duration>,
    heartbeat_interval: Option<Duration>,
    consumer_session_timeout: Option<Duration>,
}

/// Whole milliseconds, saturating.
fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl MockClusterBuilder {
    /// How many brokers (node ids `0..n`); default 1.
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n;
        self
    }

    /// Listen on `port`, `port + 1`, ... instead of ephemeral ports.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// No TCP listeners: connections are made only with
    /// [`MockCluster::connect`] (in-memory streams). Brokers advertise
    /// nominal addresses 127.0.0.1:9092, :9093, ... that nothing listens
    /// on, the same in every run, so that under tokio's paused clock a test
    /// gets the same answers byte for byte each time.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// The classic coordinator's `group.initial.rebalance.delay.ms`: how
    /// long the first rebalance of an empty group waits for more members
    /// (broker default 3 000 ms; the mock's default 0, as Kafka's shipped
    /// `server.properties`).
    pub fn group_initial_rebalance_delay(mut self, delay: Duration) -> Self {
        self.group_timing.initial_rebalance_delay = Some(delay);
        self
    }

    /// `group.min.session.timeout.ms`: shorter session timeouts in
    /// JoinGroup are INVALID_SESSION_TIMEOUT (broker default 6 000 ms; the
    /// mock's 1 000 ms).
    pub fn group_min_session_timeout(mut self, timeout: Duration) -> Self {
        self.group_timing.min_session_timeout = Some(timeout);
        self
    }

    /// `group.consumer.heartbeat.interval.ms` of KIP-848 groups (broker
    /// default 5 000 ms; the mock's 500 ms so tests rebalance fast).
    pub fn consumer_group_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.group_timing.heartbeat_interval = Some(interval);
        self
    }

    /// `group.consumer.session.timeout.ms` of KIP-848 groups (default
    /// 45 000 ms, as the broker).
    pub fn consumer_group_session_timeout(mut self, timeout: Duration) -> Self {
        self.group_timing.consumer_session_timeout = Some(timeout);
        self
    }

    /// Require SASL (a SASL_PLAINTEXT listener) and accept this user with
    /// this mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512). Without
    /// any user the listeners are PLAINTEXT.
    pub fn sasl_user(mut self, mechanism: Mechanism, username: &str, password: &str) -> Self {
        self.users.push(User::new(mechanism, username, password));
        self
    }

    fn initial_state(&self) -> State {
        let mut state = State::default();
        let t = &self.group_timing;
        let settings = &mut state.groups.settings;
        if let Some(d) = t.initial_rebalance_delay {
            settings.initial_rebalance_delay_ms = i64::from(ms(d));
        }
        if let Some(d) = t.min_session_timeout {
            settings.min_session_timeout_ms = ms(d);
        }
        if let Some(d) = t.heartbeat_interval {
            state.consumer_groups.heartbeat_interval_ms = ms(d).max(1);
        }
        if let Some(d) = t.consumer_session_timeout {
            state.consumer_groups.session_timeout_ms = ms(d).max(1);
        }
        state
    }

    /// Start the brokers. Must be called inside a tokio runtime, whose
    /// tasks serve them.
    pub async fn start(self) -> Result<MockCluster, MockError> {
        if self.brokers == 0 {
            return Err(MockError::NoBrokers);
        }
        let mut listeners = Vec::with_capacity(self.brokers);
        let mut addrs = Vec::with_capacity(self.brokers);
        for id in 0..self.brokers {
            if self.in_memory {
                addrs.push(BrokerAddr {
                    node_id: id as i32,
                    host: "127.0.0.1".into(),
                    port: 9092_u16.saturating_add(id as u16),
                });
                continue;
            }
            let port = match self.port {
                Some(p) => p
                    .checked_add(id as u16)
                    .ok_or_else(|| MockError::Invalid(format!("port {p} + {id} is above 65535")))?,
                None => 0,
            };
            let listener = bind(port)?;
            addrs.push(BrokerAddr {
                node_id: id as i32,
                host: "127.0.0.1".into(),
                port: listener.local_addr()?.port(),
            });
            listeners.push(listener);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(self.initial_state()),
            appended: Notify::new(),
            brokers: addrs,
            cluster_id: "skotch-mock-cluster".into(),
            faults: Mutex::new(Faults::default()),
            sasl_users: self.users,
        });
        let (stop, stopped) = watch::channel(());
        let mut cluster = MockCluster {
            shared: shared.clone(),
            brokers: Vec::with_capacity(self.brokers),
            accept_tasks: Vec::with_capacity(self.brokers),
            stop: Some(stop),
            stopped,
            in_memory: self.in_memory,
        };
        let mut listeners = listeners.into_iter();
        for id in 0..self.brokers {
            let (up, _) = watch::channel(true);
            let broker = Arc::new(Broker {
                node_id: id as i32,
                shared: shared.clone(),
                log: Mutex::new(RequestLog::default()),
                up,
                fetch_sessions: Mutex::new(Default::default()),
            });
            cluster.brokers.push(broker.clone());
            let task = listeners
                .next()
                .map(|l| tokio::spawn(accept(broker, l, cluster.stopped.clone())));
            cluster.accept_tasks.push(task);
        }
        Ok(cluster)
    }
}

/// Bind 127.0.0.1:`port` (0: ephemeral) with SO_REUSEADDR, so that a
/// broker brought back up gets its port again at once.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

/// An in-process Kafka cluster. Brokers have node ids `0..brokers`.
///
/// Dropping it (or [`shutdown`](Self::shutdown)) stops every broker and
/// closes every connection.
#[derive(Debug)]
pub struct MockCluster {
    shared: Arc<Shared>,
    brokers: Vec<Arc<Broker>>,
    /// Per broker; `None` while it is down.
    accept_tasks: Vec<Option<JoinHandle<()>>>,
    /// Dropped to stop every connection task.
    stop: Option<watch::Sender<()>>,
    stopped: watch::Receiver<()>,
    /// Started with [`MockClusterBuilder::in_memory`].
    in_memory: bool,
}

impl MockCluster {
    /// Start `brokers` brokers listening on 127.0.0.1 ephemeral ports,
    /// without authentication. Must be called inside a tokio runtime,
    /// whose tasks serve them. [`builder`](Self::builder) gives more
    /// choices.
    pub async fn start(brokers: usize) -> Result<MockCluster, MockError> {
        MockCluster::builder().brokers(brokers).start().await
    }

    /// A builder: one broker, ephemeral ports, no SASL.
    pub fn builder() -> MockClusterBuilder {
        MockClusterBuilder {
            brokers: 1,
            port: None,
            users: Vec::new(),
            in_memory: false,
            group_timing: GroupTiming::default(),
        }
    }

    /// The brokers' addresses, `host:port` separated by commas.
    pub fn bootstrap_servers(&self) -> String {
        self.shared
            .brokers
            .iter()
            .map(|b| format!("{}:{}", b.host, b.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The APIs the brokers serve and advertise in ApiVersions, with their
    /// version ranges (min, max).
    pub fn api_versions(&self) -> Vec<(ApiKey, i16, i16)> {
        crate::api_versions::implemented().to_vec()
    }

    /// The node ids of the brokers.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.shared.broker_ids()
    }

    /// The `host:port` of a broker.
    pub fn broker_addr(&self, broker: i32) -> Option<String> {
        self.shared
            .brokers
            .iter()
            .find(|b| b.node_id == broker)
            .map(|b| format!("{}:{}", b.host, b.port))
    }

    /// Create a topic; leaders are spread over the brokers and each
    /// partition's replicas (all in sync) follow its leader.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<(), MockError> {
        let brokers = self.shared.broker_ids();
        self.shared
            .state()
            .create_topic(&brokers, name, partitions, replication, None, false)
            .map(|_| ())
            .map_err(|(code, message)| MockError::Kafka { code, message })
    }

    /// The leader of a partition, if the partition exists.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let state = self.shared.state();
        let t = state.topics.get(topic)?;
        Some(t.partitions.get(usize::try_from(partition).ok()?)?.leader)
    }

    /// The high watermark (here also the log end offset) of a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let state = self.shared.state();
        let t = state.topics.get(topic)?;
        let p = t.partitions.get(usize::try_from(partition).ok()?)?;
        Some(p.log.high_watermark())
    }

    /// The requests a broker received so far, oldest first (at most
    /// [`REQUEST_LOG_CAPACITY`](crate::REQUEST_LOG_CAPACITY)); empty for
    /// an unknown broker.
    pub fn request_log(&self, broker: i32) -> Vec<LoggedRequest> {
        self.broker(broker)
            .map(|b| b.log().snapshot())
            .unwrap_or_default()
    }

    /// Forget the requests a broker received so far.
    pub fn clear_request_log(&self, broker: i32) {
        if let Some(b) = self.broker(broker) {
            b.log().clear();
        }
    }

    fn broker(&self, id: i32) -> Option<&Arc<Broker>> {
        self.brokers.iter().find(|b| b.node_id == id)
    }

    fn known_broker(&self, id: i32) -> Result<&Arc<Broker>, MockError> {
        self.broker(id)
            .ok_or_else(|| MockError::Invalid(format!("no broker {id}")))
    }

    /// A connection to `broker` over an in-memory stream rather than TCP:
    /// nothing leaves the process, and under tokio's paused clock the
    /// whole exchange is deterministic. Speak the Kafka protocol on it
    /// (size-prefixed frames).
    pub fn connect(&self, broker: i32) -> Result<DuplexStream, MockError> {
        let b = self.known_broker(broker)?.clone();
        if !*b.up.borrow() {
            return Err(MockError::Invalid(format!("broker {broker} is down")));
        }
        let (client, server) = tokio::io::duplex(1024 * 1024);
        spawn_connection(b, server, "in-memory".into(), self.stopped.clone());
        Ok(client)
    }

    // ----- faults -----

    /// Inject a fault; it acts until spent or cleared. A fault narrowed to
    /// a partition must be an error (latency, drops and silence act on
    /// whole requests).
    pub fn inject(&self, fault: Fault) -> Result<FaultId, MockError> {
        if fault.partition.is_some() && !matches!(fault.action, FaultAction::Error(_)) {
            return Err(MockError::Invalid(
                "only error faults can be narrowed to a partition".into(),
            ));
        }
        if let Some(b) = fault.broker {
            self.known_broker(b)?;
        }
        Ok(self.shared.faults().inject(fault))
    }

    /// Clear one fault; `false` if it was already spent or cleared.
    pub fn clear_fault(&self, id: FaultId) -> bool {
        self.shared.faults().clear(id)
    }

    /// How many requests a fault acted on so far (also once it is spent
    /// or cleared).
    pub fn fault_hits(&self, id: FaultId) -> u64 {
        self.shared.faults().hits(id)
    }

    /// Clear every fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear_all()
    }

    // ----- cluster actions -----

    /// Take a broker down, as if its process died: its listener closes,
    /// its connections reset, it leaves every ISR, and each partition it
    /// led gets the next in-sync replica that is up as leader (leader
    /// epoch + 1), or none (offline) if there is none. Metadata stops
    /// listing it.
    pub fn broker_down(&mut self, broker: i32) -> Result<(), MockError> {
        let b = self.known_broker(broker)?.clone();
        {
            let mut state = self.shared.state();
            if !state.down.insert(broker) {
                return Ok(());
            }
            let down = state.down.clone();
            for p in state
                .topics
                .values_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                p.isr.retain(|r| *r != broker);
                if p.leader == broker {
                    let next = p.isr.iter().copied().find(|r| !down.contains(r));
                    elect(p, next.unwrap_or(-1));
                }
            }
        }
        b.up.send_replace(false);
        // A restarted broker has an empty fetch session cache.
        b.fetch_sessions().clear();
        if let Some(t) = self.accept_tasks[broker as usize].take() {
            t.abort();
        }
        self.shared.appended.notify_waiters();
        Ok(())
    }

    /// Bring a broker back on its old port. It rejoins the ISR of every
    /// partition it replicates (the log is shared, so it is caught up at
    /// once) and leads the offline ones it replicates (leader epoch + 1).
    /// Leaders elsewhere stay where they are.
    pub async fn broker_up(&mut self, broker: i32) -> Result<(), MockError> {
        let b = self.known_broker(broker)?.clone();
        if *b.up.borrow() {
            return Ok(());
        }
        let port = self.shared.brokers[broker as usize].port;
        let listener = if self.in_memory {
            None
        } else {
            Some(bind(port)?)
        };
        {
            let mut state = self.shared.state();
            state.down.remove(&broker);
            for p in state
                .topics
                .values_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                if p.replicas.contains(&broker) && !p.isr.contains(&broker) {
                    p.isr.push(broker);
                }
                if p.leader == -1 && !p.offline && p.replicas.contains(&broker) {
                    elect(p, broker);
                }
            }
        }
        b.up.send_replace(true);
        self.accept_tasks[broker as usize] =
            listener.map(|l| tokio::spawn(accept(b, l, self.stopped.clone())));
        Ok(())
    }

    /// Whether a broker is up.
    pub fn is_up(&self, broker: i32) -> bool {
        self.broker(broker).is_some_and(|b| *b.up.borrow())
    }

    /// Make `to` (a replica that is up) the partition's leader, with a new
    /// leader epoch. Also brings back a partition taken offline.
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) -> Result<(), MockError> {
        self.with_partition(topic, partition, |p, down| {
            if !p.replicas.contains(&to) {
                return Err(format!(
                    "broker {to} is not a replica of {topic}-{partition}"
                ));
            }
            if down.contains(&to) {
                return Err(format!("broker {to} is down"));
            }
            if !p.isr.contains(&to) {
                p.isr.push(to);
            }
            p.offline = false;
            elect(p, to);
            Ok(())
        })
    }

    /// Take a partition offline: no leader (LEADER_NOT_AVAILABLE in
    /// Metadata, NOT_LEADER_OR_FOLLOWER for produce and fetch) until
    /// [`move_leader`](Self::move_leader) names one.
    pub fn take_partition_offline(&self, topic: &str, partition: i32) -> Result<(), MockError> {
        self.with_partition(topic, partition, |p, _| {
            p.offline = true;
            elect(p, -1);
            Ok(())
        })
    }

    /// Set a partition's ISR (it must contain the leader and only
    /// replicas). With fewer in-sync replicas than the topic's
    /// `min.insync.replicas`, acks=all produce gets NOT_ENOUGH_REPLICAS.
    pub fn set_isr(&self, topic: &str, partition: i32, isr: &[i32]) -> Result<(), MockError> {
        self.with_partition(topic, partition, |p, _| {
            if isr.iter().any(|b| !p.replicas.contains(b)) {
                return Err(format!("{isr:?} names brokers that are not replicas"));
            }
            if p.leader >= 0 && !isr.contains(&p.leader) {
                return Err(format!("the ISR must contain the leader {}", p.leader));
            }
            p.isr = isr.to_vec();
            Ok(())
        })
    }

    /// Set a topic's `min.insync.replicas` (default 1).
    pub fn set_min_insync_replicas(&self, topic: &str, n: usize) -> Result<(), MockError> {
        let mut state = self.shared.state();
        let t = state
            .topics
            .get_mut(topic)
            .ok_or_else(|| MockError::Invalid(format!("no topic {topic}")))?;
        t.min_insync_replicas = n;
        Ok(())
    }

    /// Make broker `to` the coordinator of `group`; the old one answers
    /// NOT_COORDINATOR from now on. The group's members and offsets carry
    /// over (the new coordinator loads them, as from `__consumer_offsets`).
    pub fn move_coordinator(&self, group: &str, to: i32) -> Result<(), MockError> {
        self.known_broker(to)?;
        let mut state = self.shared.state();
        state.coordinator_overrides.insert(group.to_string(), to);
        // Requests parked at the old coordinator (JoinGroup, SyncGroup)
        // are answered NOT_COORDINATOR now.
        crate::group::unload(&mut state, group);
        Ok(())
    }

    /// The coordinator of `group` now (`None` if every broker is down).
    pub fn coordinator(&self, group: &str) -> Option<i32> {
        let brokers = self.shared.broker_ids();
        self.shared.state().coordinator(&brokers, group)
    }

    fn with_partition(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnOnce(&mut Partition, &std::collections::BTreeSet<i32>) -> Result<(), String>,
    ) -> Result<(), MockError> {
        let mut state = self.shared.state();
        let down = state.down.clone();
        let p = state
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
            .ok_or_else(|| MockError::Invalid(format!("no partition {topic}-{partition}")))?;
        f(p, &down).map_err(MockError::Invalid)?;
        drop(state);
        // Long polls on the old leader must notice.
        self.shared.appended.notify_waiters();
        Ok(())
    }

    /// Stop every broker and close every connection. Dropping the cluster
    /// does the same.
    pub async fn shutdown(mut self) {
        self.stop_all();
        for t in self.accept_tasks.iter_mut().filter_map(Option::take) {
            let _ = t.await;
        }
    }

    fn stop_all(&mut self) {
        self.stop.take();
        for t in self.accept_tasks.iter().flatten() {
            t.abort();
        }
    }
}

/// A new leader (-1: none) with the next leader epoch (KIP-101/320: every
/// leader change bumps the epoch).
fn elect(p: &mut Partition, leader: i32) {
    p.leader = leader;
    p.leader_epoch += 1;
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Accept connections until the broker goes down (the task is aborted)
/// or the cluster stops; each is served by its own task.
async fn accept(broker: Arc<Broker>, listener: TcpListener, stopped: watch::Receiver<()>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors, say: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        spawn_connection(broker.clone(), stream, peer.to_string(), stopped.clone());
    }
}

/// Serve one connection until it ends, the broker goes down or the
/// cluster stops.
fn spawn_connection<S>(
    broker: Arc<Broker>,
    stream: S,
    peer: String,
    mut stopped: watch::Receiver<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut up = broker.up.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            _ = connection::serve(&broker, stream, peer) => {}
            _ = stopped.changed() => {}
            _ = up.wait_for(|up| !*up) => {}
        }
    });
}
