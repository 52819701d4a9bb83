//! What a request handler sees: the shared cluster, and which broker it
//! runs on.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::request_log::RequestLog;
use crate::state::State;

/// A broker's advertised address.
#[derive(Debug, Clone)]
pub(crate) struct BrokerAddr {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// Shared by every broker of a cluster.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Woken on every append: fetch long polls wait on it.
    pub appended: Notify,
    pub brokers: Vec<BrokerAddr>,
    pub cluster_id: String,
}

impl Shared {
    /// The state. A handler that panicked while holding the lock (a bug)
    /// must not take the other brokers down, so poisoning is ignored.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.iter().map(|b| b.node_id).collect()
    }
}

/// One broker.
#[derive(Debug)]
pub(crate) struct Broker {
    pub node_id: i32,
    pub shared: Arc<Shared>,
    pub log: Mutex<RequestLog>,
}

impl Broker {
    pub fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}
