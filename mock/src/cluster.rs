//! [`MockCluster`]: N brokers on 127.0.0.1 ephemeral ports, served by
//! tokio tasks of the calling runtime, sharing one in-memory state.

use std::sync::{Arc, Mutex};

use skotch_protocol::error::ErrorCode;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::broker::{Broker, BrokerAddr, Shared};
use crate::connection;
use crate::request_log::{LoggedRequest, RequestLog};
use crate::state::State;

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
}

impl std::fmt::Display for MockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MockError::Io(e) => write!(f, "mock cluster I/O error: {e}"),
            MockError::Kafka { code, message } => write!(f, "{}: {message}", code.name()),
            MockError::NoBrokers => f.write_str("a mock cluster needs at least one broker"),
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

/// An in-process Kafka cluster. Brokers have node ids `0..brokers`.
///
/// Dropping it (or [`shutdown`](Self::shutdown)) stops every broker and
/// closes every connection.
#[derive(Debug)]
pub struct MockCluster {
    shared: Arc<Shared>,
    brokers: Vec<Arc<Broker>>,
    accept_tasks: Vec<JoinHandle<()>>,
    /// Dropped to stop every connection task.
    stop: Option<watch::Sender<()>>,
}

impl MockCluster {
    /// Start `brokers` brokers listening on 127.0.0.1 ephemeral ports.
    /// Must be called inside a tokio runtime, whose tasks serve them.
    pub async fn start(brokers: usize) -> Result<MockCluster, MockError> {
        if brokers == 0 {
            return Err(MockError::NoBrokers);
        }
        let mut listeners = Vec::with_capacity(brokers);
        let mut addrs = Vec::with_capacity(brokers);
        for id in 0..brokers {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            addrs.push(BrokerAddr {
                node_id: id as i32,
                host: "127.0.0.1".into(),
                port: listener.local_addr()?.port(),
            });
            listeners.push(listener);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            appended: Notify::new(),
            brokers: addrs,
            cluster_id: "skotch-mock-cluster".into(),
        });
        let (stop, stopped) = watch::channel(());
        let mut all = Vec::with_capacity(brokers);
        let mut accept_tasks = Vec::with_capacity(brokers);
        for (id, listener) in listeners.into_iter().enumerate() {
            let broker = Arc::new(Broker {
                node_id: id as i32,
                shared: shared.clone(),
                log: Mutex::new(RequestLog::default()),
            });
            all.push(broker.clone());
            let stopped = stopped.clone();
            accept_tasks.push(tokio::spawn(accept(broker, listener, stopped)));
        }
        Ok(MockCluster {
            shared,
            brokers: all,
            accept_tasks,
            stop: Some(stop),
        })
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

    /// Stop every broker and close every connection. Dropping the cluster
    /// does the same.
    pub async fn shutdown(mut self) {
        self.stop_all();
        for t in self.accept_tasks.drain(..) {
            let _ = t.await;
        }
    }

    fn stop_all(&mut self) {
        self.stop.take();
        for t in &self.accept_tasks {
            t.abort();
        }
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Accept connections until the cluster stops; each is served by its own
/// task, which ends when the cluster stops.
async fn accept(broker: Arc<Broker>, listener: TcpListener, stopped: watch::Receiver<()>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let mut stopped = stopped.clone();
        let broker = broker.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection::serve(broker, stream) => {}
                _ = stopped.changed() => {}
            }
        });
    }
}
