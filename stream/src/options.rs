//! Stream defaults, as hop-client's `Stream(auth=, start_at=, until_eos=)`
//! and `Stream.open(..., produce_timeout=)` take them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use skotch_client::{GroupProtocol, TopicPartition};

/// Where a reading stream starts in each partition (hop's
/// `io.StartPosition`, extended with an offset and a time).
///
/// hop-client passes `start_at` to Kafka as `auto.offset.reset`, so in a
/// consumer group it applies only where the group has no committed offset;
/// without a group every partition starts here.
///
/// Text form ([`FromStr`]/[`Display`](fmt::Display)), for command lines:
/// `earliest`, `latest`, `offset:N`, `timestamp:MS` (case-insensitive names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StartPosition {
    /// The oldest record still kept (`auto.offset.reset=earliest`).
    Earliest,
    /// Only records written after the stream opens
    /// (`auto.offset.reset=latest`). hop-client's default.
    #[default]
    Latest,
    /// This offset in every partition (must be ≥ 0).
    Offset(i64),
    /// The first record whose timestamp is at or after this time, in ms
    /// since the Unix epoch (resolved with ListOffsets, KIP-79).
    Timestamp(i64),
}

impl fmt::Display for StartPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartPosition::Earliest => f.write_str("earliest"),
            StartPosition::Latest => f.write_str("latest"),
            StartPosition::Offset(o) => write!(f, "offset:{o}"),
            StartPosition::Timestamp(t) => write!(f, "timestamp:{t}"),
        }
    }
}

/// A start position that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// Not one of the start position forms.
    #[error("invalid start position {0:?}: expected earliest, latest, offset:N (N >= 0) or timestamp:MS (ms since the Unix epoch, >= 0)")]
    StartPosition(String),
}

impl FromStr for StartPosition {
    type Err = OptionError;

    fn from_str(s: &str) -> Result<Self, OptionError> {
        let bad = || OptionError::StartPosition(s.to_string());
        if s.eq_ignore_ascii_case("earliest") {
            return Ok(StartPosition::Earliest);
        }
        if s.eq_ignore_ascii_case("latest") {
            return Ok(StartPosition::Latest);
        }
        let (kind, number) = s.split_once(':').ok_or_else(bad)?;
        // Digits only: no sign, so no negative offsets or times.
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        if kind.eq_ignore_ascii_case("offset") {
            Ok(StartPosition::Offset(n))
        } else if kind.eq_ignore_ascii_case("timestamp") {
            Ok(StartPosition::Timestamp(n))
        } else {
            Err(bad())
        }
    }
}

/// SASL mechanisms (`sasl.mechanism`): the client's, re-exported.
/// Text form: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` (case-insensitive,
/// `_` accepted for `-` as hop writes them). Default SCRAM-SHA-512.
pub use skotch_client::SaslMechanism;

/// Record batch compression codecs (`compression.type`), re-exported from
/// the client. Text form: `none`, `gzip`, `snappy`, `lz4`, `zstd`.
pub use skotch_client::Compression;

/// Credentials for SASL authentication (hop's `auth.Auth`): a
/// [`Credential`](crate::credentials::Credential), as stored in the
/// credentials file or built with `Auth::new(username, password)`.
/// The username also becomes the `_sender` header of written messages;
/// the password never appears in `Debug` output.
pub type Auth = crate::credentials::Credential;

/// Consumer-group reading (hop-client's `group_id`, kstreams' stream
/// options): the group divides the topics' partitions among the readers
/// sharing `group_id`, and commits how far each got.
///
/// Commits follow hop-client: with `auto_commit` (the default) a message
/// counts as read once [`StreamReader::read`](crate::StreamReader::read)
/// hands it out; without it, only once
/// [`StreamReader::mark_done`](crate::StreamReader::mark_done) says so, and
/// only the end of the run of done offsets is committed, so records
/// finished out of order never let an unfinished one be skipped. Done
/// offsets are committed every `commit_interval`, before partitions are
/// revoked, and on close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOptions {
    /// `group.id`.
    pub group_id: String,
    /// Messages count as done once handed out. Default true (hop-client's
    /// `autocommit`).
    pub auto_commit: bool,
    /// `group.protocol`: classic (default) or KIP-848's consumer protocol.
    pub protocol: GroupProtocol,
    /// `group.instance.id` (KIP-345 static membership). Default none.
    pub instance_id: Option<String>,
    /// The classic protocol's assignor: "range", "roundrobin" or
    /// "cooperative-sticky"; `None` offers Java's default list (range, then
    /// cooperative-sticky). Under KIP-848 it names the broker-side assignor
    /// (`group.remote.assignor`: "uniform", "range").
    pub assignor: Option<String>,
    /// Start these partitions at these offsets instead of their committed
    /// ones (kstreams' `initial_offsets`); partitions this reader is not
    /// assigned are ignored with a warning.
    pub initial_offsets: Vec<(TopicPartition, i64)>,
    /// How often done offsets are committed (`auto.commit.interval.ms`).
    /// Default 5 000 ms.
    pub commit_interval: Duration,
    /// `session.timeout.ms` (classic protocol). Default 45 000 ms.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (classic protocol). Default 3 000 ms.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest gap between reads before the
    /// reader is considered stuck and leaves the group. Default 300 000 ms.
    pub max_poll_interval: Duration,
}

impl GroupOptions {
    /// Java's and hop-client's defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            auto_commit: true,
            protocol: GroupProtocol::Classic,
            instance_id: None,
            assignor: None,
            initial_offsets: Vec::new(),
            commit_interval: Duration::from_millis(5_000),
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
        }
    }
}

/// Where a stream looks for credentials when [`StreamOptions::auth`] is not
/// set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CredentialSource {
    /// The credentials file at its default path
    /// ([`default_path`](crate::credentials::default_path):
    /// `$SKOTCH_AUTH_FILE`, else `$XDG_CONFIG_HOME/skotch/auth.toml`, else
    /// `~/.config/skotch/auth.toml`). A missing file means no credentials.
    #[default]
    DefaultFile,
    /// The credentials file at this path.
    File(std::path::PathBuf),
    /// None: connect without authentication (hop's `--no-auth`).
    None,
}

/// Defaults for every stream opened from one [`crate::Stream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Where reading starts in each partition. Default
    /// [`StartPosition::Latest`] (hop-client's `start_at` default).
    pub start_at: StartPosition,
    /// `true`: a reading stream ends once every partition reached its end
    /// (EOS, the high watermark at that moment); `false`: it waits for new
    /// records forever. Default `false` (hop-client's `until_eos`).
    pub until_eos: bool,
    /// Explicit credentials. When set they are used as is (with the
    /// protocol and CA file they name) and `credentials` is not read.
    /// Default `None`.
    pub auth: Option<Auth>,
    /// Where credentials come from when `auth` is not set: by default the
    /// credentials file, as hop-client's `auth=True`
    /// ([`CredentialStore`](crate::CredentialStore) explains the file and
    /// how the URL's `username@` selects an entry).
    pub credentials: CredentialSource,
    /// How long connecting to the bootstrap brokers may take before opening
    /// fails (Java `socket.connection.setup.timeout.ms`). Default 10 000 ms.
    pub connect_timeout: Duration,
    /// hop-client's `produce_timeout`: the longest a written message may
    /// take from `write` to acknowledged delivery before it counts as failed
    /// (the writer's producer gets it as `delivery.timeout.ms`, librdkafka's
    /// `message.timeout.ms`). Default 0, hop's default: **no limit** — a
    /// message is retried until it is delivered, however long the cluster
    /// is away, and `close` waits for it (internally the limit is a year).
    ///
    /// This differs from the client layer: a plain
    /// [`Producer`](skotch_client::Producer) uses
    /// [`ProducerConfig::delivery_timeout`](skotch_client::ProducerConfig::delivery_timeout),
    /// Java's `delivery.timeout.ms`, 120 000 ms by default. Set this to get
    /// failures instead of waiting (`skotch publish --produce-timeout`).
    pub produce_timeout: Duration,
    /// hop-client's `ignoretest`: readers skip test messages (those with a
    /// `_test` header, whatever its value) without handing them out. A
    /// skipped message still counts as done, so commits (automatic or
    /// manual) move past it. Default `true`, as in hop; the CLI's
    /// `subscribe -t/--test` sets it to `false`.
    pub ignore_test: bool,
    /// Read as a member of a consumer group. Default none: every partition
    /// is read from `start_at`, nothing is committed.
    pub group: Option<GroupOptions>,
    /// The codec writers compress record batches with (Java
    /// `compression.type`: none, gzip, snappy, lz4, zstd). Default none, as
    /// in Java and hop-client. Readers decode every codec whatever this
    /// says.
    pub compression: Compression,
    /// The level for `compression` (Java `compression.<codec>.level`,
    /// KIP-390); `None` for the codec's default. See
    /// [`ProducerConfig::compression_level`](skotch_client::ProducerConfig::compression_level)
    /// for the ranges; `open_writer` refuses a level out of range.
    pub compression_level: Option<i32>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            start_at: StartPosition::Latest,
            until_eos: false,
            auth: None,
            credentials: CredentialSource::default(),
            connect_timeout: Duration::from_millis(10_000),
            produce_timeout: Duration::ZERO,
            ignore_test: true,
            group: None,
            compression: Compression::None,
            compression_level: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_hop() {
        let o = StreamOptions::default();
        assert_eq!(o.start_at, StartPosition::Latest);
        assert!(!o.until_eos);
        assert!(o.auth.is_none());
        assert_eq!(o.connect_timeout, Duration::from_secs(10));
        assert_eq!(o.produce_timeout, Duration::ZERO, "hop: no limit");
        assert!(o.ignore_test, "hop's ignoretest");
        assert_eq!(o.compression, Compression::None);
        assert_eq!(o.compression_level, None);
        assert_eq!(Auth::new("u", "p").mechanism, SaslMechanism::ScramSha512);
    }

    #[test]
    fn password_is_redacted() {
        let a = Auth::new("alice", "hunter2").with_mechanism(SaslMechanism::Plain);
        assert_eq!(a.password().expose(), "hunter2");
        let s = format!(
            "{a:?} {:?} {:#?}",
            StreamOptions {
                auth: Some(a.clone()),
                ..Default::default()
            },
            a
        );
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("alice"));
        assert!(s.contains("Plain"));
    }

    #[test]
    fn start_position_text() {
        for (text, want) in [
            ("earliest", StartPosition::Earliest),
            ("LATEST", StartPosition::Latest),
            ("offset:42", StartPosition::Offset(42)),
            (
                "Timestamp:1700000000000",
                StartPosition::Timestamp(1_700_000_000_000),
            ),
        ] {
            assert_eq!(text.parse::<StartPosition>(), Ok(want), "{text}");
            assert_eq!(want.to_string().parse::<StartPosition>(), Ok(want));
        }
        for bad in [
            "",
            "first",
            "offset:",
            "offset:-1",
            "offset:+1",
            "offset:x",
            "offset:99999999999999999999",
            "when:5",
            "42",
        ] {
            let e = bad.parse::<StartPosition>().unwrap_err();
            assert_eq!(e, OptionError::StartPosition(bad.to_string()));
            assert!(e.to_string().contains("earliest"), "{e}");
        }
    }

    #[test]
    fn mechanism_text() {
        assert_eq!("scram_sha_512".parse(), Ok(SaslMechanism::ScramSha512));
        assert_eq!("SCRAM-SHA-256".parse(), Ok(SaslMechanism::ScramSha256));
        assert_eq!("plain".parse(), Ok(SaslMechanism::Plain));
        assert_eq!(SaslMechanism::ScramSha256.to_string(), "SCRAM-SHA-256");
        assert!("GSSAPI"
            .parse::<SaslMechanism>()
            .unwrap_err()
            .to_string()
            .contains("GSSAPI"));
    }
}
