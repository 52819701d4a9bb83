//! What a request handler sees: the shared cluster, and which broker it
//! runs on.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{watch, Notify};

use crate::fault::Faults;
use crate::fetch_session::FetchSessions;
use crate::request_log::RequestLog;
use crate::sasl::User;
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
    /// Injected faults.
    pub faults: Mutex<Faults>,
    /// SASL users; empty: no authentication (a PLAINTEXT listener).
    pub sasl_users: Vec<User>,
}

impl Shared {
    /// The state. A handler that panicked while holding the lock (a bug)
    /// must not take the other brokers down, so poisoning is ignored.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The injected faults (poisoning ignored, as for the state).
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
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
    /// `false` while a test has the broker down; its connections end.
    pub up: watch::Sender<bool>,
    /// This broker's fetch session cache (KIP-227).
    pub fetch_sessions: Mutex<FetchSessions>,
}

impl Broker {
    pub fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fetch session cache (poisoning ignored, as for the state).
    pub fn fetch_sessions(&self) -> MutexGuard<'_, FetchSessions> {
        self.fetch_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}
