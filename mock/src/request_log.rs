//! The requests each broker received, in order, for tests to assert on.

use std::collections::VecDeque;

use skotch_protocol::messages::ApiKey;

/// At most this many requests are kept per broker; older ones are dropped.
pub const REQUEST_LOG_CAPACITY: usize = 100_000;

/// One request a broker received (logged once its header and body were
/// decoded, before it is answered; a request whose API the mock does not
/// implement is logged with an empty summary before the connection is
/// closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The API key as sent.
    pub api_key: i16,
    /// The API version as sent.
    pub api_version: i16,
    /// The client id from the request header.
    pub client_id: Option<String>,
    /// The correlation id from the request header.
    pub correlation_id: i32,
    /// A short description of the body, e.g. `acks=-1 t[0:1 batch 5 records]`.
    pub summary: String,
}

impl LoggedRequest {
    /// The API, when the key is one Kafka defines.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::from_i16(self.api_key)
    }
}

/// A broker's log, bounded by [`REQUEST_LOG_CAPACITY`].
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    pub fn push(&mut self, entry: LoggedRequest) {
        if self.entries.len() == REQUEST_LOG_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        self.entries.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
