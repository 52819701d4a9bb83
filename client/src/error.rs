//! The client's error type: one enum of kinds, with predicates callers use
//! to decide what to do (retry, refresh metadata, give up).

use std::sync::Arc;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::ApiKey;
use skotch_protocol::{DecodeError, EncodeError};

/// Result alias for the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Kafka.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port` that was tried.
        addr: String,
        /// What the operating system said, or "timed out after N ms".
        reason: String,
    },

    /// None of the bootstrap servers answered.
    #[error("no bootstrap server reachable ({0})")]
    NoBootstrap(String),

    /// An established connection failed (reset, EOF, write error). Requests
    /// in flight on it may or may not have been processed by the broker.
    #[error("connection to {addr} lost: {reason}")]
    Io {
        /// `host:port` of the broker.
        addr: String,
        /// What happened.
        reason: String,
        /// The underlying I/O error, when there was one.
        #[source]
        source: Option<Arc<std::io::Error>>,
    },

    /// An operation did not finish in time.
    #[error("{what} timed out after {after_ms} ms")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit that expired, in milliseconds.
        after_ms: u64,
    },

    /// The broker answered with an error code.
    #[error("{context}: broker error {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The Kafka error code.
        code: ErrorCode,
        /// The broker's error message, when it sent one.
        message: Option<String>,
        /// What was asked (e.g. "produce to orders-3").
        context: String,
    },

    /// The broker does not support any version of an API we can speak.
    #[error("broker {addr} does not support {api} in a version skotch speaks (broker {broker_min}..={broker_max}, skotch {ours_min}..={ours_max})")]
    UnsupportedVersion {
        /// The broker.
        addr: String,
        /// The API.
        api: ApiKey,
        /// Lowest version the broker accepts (-1 if it does not offer the API).
        broker_min: i16,
        /// Highest version the broker accepts (-1 if it does not offer the API).
        broker_max: i16,
        /// Lowest version we implement.
        ours_min: i16,
        /// Highest version we implement.
        ours_max: i16,
    },

    /// A response (or record batch) could not be decoded.
    #[error("malformed data from {addr}: {source}")]
    Decode {
        /// The broker it came from.
        addr: String,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },

    /// A record batch of a partition could not be decoded (corrupt,
    /// truncated, or inflating past the decompression limit). The records
    /// before it were handed out; the partition's position stays at
    /// `offset` and every poll reports this until the application seeks
    /// past it (Java's "seek past the record to continue consumption").
    #[error("cannot decode the record batch of {topic}-{partition} at offset {offset}: {source}; seek past it to go on")]
    CorruptRecord {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset the partition stopped at.
        offset: i64,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },

    /// The log of a partition was truncated below the consumer's position
    /// after an unclean leader change (KIP-320), and `auto.offset.reset`
    /// is none (Java's `LogTruncationException`). Seek to go on; with a
    /// reset policy the consumer moves to `diverging_offset` by itself.
    #[error("log of {topic}-{partition} truncated below position {position}: records from offset {diverging_offset} on differ; seek to go on")]
    LogTruncation {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The consumer's position.
        position: i64,
        /// The first offset known to differ (the new leader's end offset
        /// for the epoch of the last record read).
        diverging_offset: i64,
    },

    /// A request could not be encoded.
    #[error("cannot encode request: {0}")]
    Encode(#[from] EncodeError),

    /// `buffer.memory` has no room for the record now
    /// (`Producer::try_send`, which does not wait).
    #[error("buffer.memory is full: {needed} bytes needed, {available} free")]
    BufferFull {
        /// Bytes the record's batch needs.
        needed: usize,
        /// Bytes free.
        available: usize,
    },

    /// A topic does not exist (after metadata was refreshed).
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),

    /// A partition does not exist in a topic.
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },

    /// The TLS handshake with a broker failed: the certificate was not
    /// trusted, did not match the host name, had expired, and so on.
    #[error("TLS handshake with {addr} failed: {kind}: {detail}")]
    Tls {
        /// `host:port` of the broker.
        addr: String,
        /// What was wrong, in a form callers can match on.
        kind: TlsFailure,
        /// The TLS library's description.
        detail: String,
    },

    /// SASL authentication failed: wrong password, unknown user, or the
    /// broker's answer did not prove it knows the password (SCRAM).
    #[error(
        "SASL {mechanism} authentication as {username:?} with {addr} failed: {kind}: {reason}"
    )]
    Authentication {
        /// `host:port` of the broker.
        addr: String,
        /// What was wrong, in a form callers can match on.
        kind: AuthFailure,
        /// The mechanism used.
        mechanism: String,
        /// The username (never the password).
        username: String,
        /// What the broker (or our check of its answer) said.
        reason: String,
    },

    /// The broker does not enable the SASL mechanism we asked for.
    #[error("broker {addr} does not enable SASL mechanism {wanted}; it offers: {}", if offered.is_empty() { "none".to_string() } else { offered.join(", ") })]
    SaslMechanismNotEnabled {
        /// `host:port` of the broker.
        addr: String,
        /// The mechanism we asked for.
        wanted: String,
        /// The mechanisms the broker listed (`sasl.enabled.mechanisms`).
        offered: Vec<String>,
    },

    /// The client (or the producer/consumer) was closed.
    #[error("client is closed")]
    Closed,

    /// A task of the client itself failed (it panicked): a bug in skotch,
    /// never caused by the broker or the input. Please report it.
    #[error("internal error (a bug in skotch): {0}")]
    Internal(String),
}

/// Why SASL authentication failed ([`Error::Authentication`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// SCRAM: the broker refused our first message, which carries only the
    /// username: it has no SCRAM credential for this user and mechanism.
    UnknownUser,
    /// SCRAM: the broker accepted the username but refused our proof: the
    /// password is wrong.
    WrongPassword,
    /// PLAIN: the broker refused the username and password; PLAIN does not
    /// say which of the two was wrong.
    InvalidCredentials,
    /// SCRAM: the broker's answer did not prove that it knows the user's
    /// credential (wrong server signature, or a nonce that does not extend
    /// ours): possibly not the broker it claims to be.
    BrokerNotVerified,
    /// The broker's messages did not follow the mechanism (malformed, an
    /// unsupported iteration count or extension, too many rounds).
    Protocol,
    /// The username or password cannot be sent with this mechanism (for
    /// example empty, or with a NUL character).
    InvalidInput,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailure::UnknownUser => "unknown user (the broker refused the username)",
            AuthFailure::WrongPassword => "wrong password (the broker refused the proof)",
            AuthFailure::InvalidCredentials => "invalid username or password",
            AuthFailure::BrokerNotVerified => "the broker could not prove it knows the credential",
            AuthFailure::Protocol => "the broker broke the SASL exchange",
            AuthFailure::InvalidInput => "the credentials cannot be sent",
        })
    }
}

/// Why a TLS handshake failed ([`Error::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's certificate chain does not lead to a trusted CA (wrong
    /// CA file, or a certificate from another authority).
    UnknownIssuer,
    /// The broker's certificate signs itself and is not trusted.
    SelfSigned,
    /// The broker's certificate (or one in its chain) has expired.
    Expired,
    /// The broker's certificate is not valid yet.
    NotYetValid,
    /// The broker's certificate does not name the host we connected to.
    HostnameMismatch,
    /// The broker asked for a client certificate and we have none, or it
    /// rejected ours (mTLS).
    ClientCertificate,
    /// The broker does not speak TLS on this port (e.g. a PLAINTEXT
    /// listener).
    NotTls,
    /// The broker speaks TLS on this port but the client was configured
    /// without it (`security.protocol` PLAINTEXT or SASL_PLAINTEXT).
    TlsRequired,
    /// The CPU lacks instructions the default crypto provider (graviola)
    /// needs; build with the `ring` or `aws-lc-rs` feature instead.
    UnsupportedCpu,
    /// Anything else.
    Other,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => "the broker's certificate is not signed by a trusted CA",
            TlsFailure::SelfSigned => "the broker's certificate is self-signed and not trusted",
            TlsFailure::Expired => "the broker's certificate has expired",
            TlsFailure::NotYetValid => "the broker's certificate is not valid yet",
            TlsFailure::HostnameMismatch => "the broker's certificate does not match the host name",
            TlsFailure::ClientCertificate => "the client certificate was missing or rejected",
            TlsFailure::NotTls => "the broker did not answer with TLS",
            TlsFailure::TlsRequired => "the broker expects TLS on this port",
            TlsFailure::UnsupportedCpu => {
                "this CPU cannot run the default crypto provider (graviola)"
            }
            TlsFailure::Other => "handshake error",
        })
    }
}

impl Error {
    /// The Kafka error code, for broker errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when trying again (after a backoff, perhaps a metadata refresh or
    /// a new connection) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Io { .. } | Error::Timeout { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// True when the error means our view of the cluster is stale and
    /// metadata should be refreshed before retrying.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Io { .. } => true,
            Error::Broker { code, .. } => matches!(
                *code,
                ErrorCode::NOT_LEADER_OR_FOLLOWER
                    | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    | ErrorCode::LEADER_NOT_AVAILABLE
                    | ErrorCode::FENCED_LEADER_EPOCH
                    | ErrorCode::UNKNOWN_LEADER_EPOCH
                    | ErrorCode::NOT_COORDINATOR
                    | ErrorCode::COORDINATOR_NOT_AVAILABLE
                    | ErrorCode::UNKNOWN_TOPIC_ID
                    | ErrorCode::INCONSISTENT_TOPIC_ID
                    | ErrorCode::BROKER_NOT_AVAILABLE
                    | ErrorCode::REPLICA_NOT_AVAILABLE
                    | ErrorCode::KAFKA_STORAGE_ERROR
            ),
            _ => false,
        }
    }

    /// True for timeouts.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. }) || self.code() == Some(ErrorCode::REQUEST_TIMED_OUT)
    }

    /// True for failures of trust or credentials ([`Error::Tls`],
    /// [`Error::Authentication`], [`Error::SaslMechanismNotEnabled`]):
    /// retrying cannot help, so they are reported at once.
    pub fn is_security(&self) -> bool {
        matches!(
            self,
            Error::Tls { .. }
                | Error::Authentication { .. }
                | Error::SaslMechanismNotEnabled { .. }
        )
    }

    /// True when the connection failed or could not be opened.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Io { .. } | Error::NoBootstrap(_)
        )
    }

    /// Build a broker error from a code (None when the code is 0).
    pub fn from_code(
        code: i16,
        message: Option<String>,
        context: impl FnOnce() -> String,
    ) -> Option<Self> {
        let code = ErrorCode(code);
        if code.is_ok() {
            None
        } else {
            Some(Error::Broker {
                code,
                message,
                context: context(),
            })
        }
    }

    /// `Ok(())` for code 0, else the broker error (what callers that only
    /// need success or failure use).
    pub fn check(
        code: i16,
        message: Option<String>,
        context: impl FnOnce() -> String,
    ) -> Result<()> {
        match Self::from_code(code, message, context) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) fn io(
        addr: &str,
        reason: impl Into<String>,
        source: Option<std::io::Error>,
    ) -> Self {
        Error::Io {
            addr: addr.to_string(),
            reason: reason.into(),
            source: source.map(Arc::new),
        }
    }
}
