//! Stream defaults, as hop-client's `Stream(...)` takes them.

use std::time::Duration;

/// Where a reading stream starts in each partition (hop's `StartPosition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartPosition {
    /// The oldest record still kept.
    Earliest,
    /// Only records written after the stream opens (hop's default).
    #[default]
    Latest,
    /// This offset in every partition.
    Offset(i64),
    /// The first record at or after this time, ms since the Unix epoch.
    Timestamp(i64),
}

/// Credentials for SASL (used from the security issue on; today a stream
/// with credentials refuses to open rather than connect unauthenticated).
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// SASL username; also the `_sender` header of written messages.
    pub username: String,
    /// SASL password. Never printed.
    pub password: String,
    /// SASL mechanism, e.g. `SCRAM-SHA-512`.
    pub mechanism: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// Defaults for streams opened from one [`crate::Stream`].
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Where reading starts. Default [`StartPosition::Latest`].
    pub start_at: StartPosition,
    /// Stop reading once every partition reached its end (EOS) instead of
    /// waiting for new messages. Default false.
    pub until_eos: bool,
    /// Credentials; `None` connects without authentication. Default none.
    pub auth: Option<Auth>,
    /// How long connecting to the brokers may take before the open fails
    /// (Java `socket.connection.setup.timeout.ms`). Default 10 000 ms.
    pub connect_timeout: Duration,
    /// hop's `produce_timeout` (librdkafka `message.timeout.ms`, Java
    /// `delivery.timeout.ms`): how long a written message may take to be
    /// delivered. Default 120 000 ms (Java's default; hop's 0 means the
    /// same "no extra limit").
    pub produce_timeout: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            start_at: StartPosition::Latest,
            until_eos: false,
            auth: None,
            connect_timeout: Duration::from_millis(10_000),
            produce_timeout: Duration::from_millis(120_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        let a = Auth {
            username: "alice".into(),
            password: "hunter2".into(),
            mechanism: "PLAIN".into(),
        };
        let s = format!(
            "{a:?} {:?}",
            StreamOptions {
                auth: Some(a.clone()),
                ..Default::default()
            }
        );
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("alice"));
    }
}
