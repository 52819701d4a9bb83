//! Settings shared by everything built on a [`crate::Client`]: where the
//! cluster is, timeouts, retries. Defaults are the Java client's.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::security::tls::TlsConfig;
use crate::security::{SaslConfig, SecurityProtocol};

/// Connection-level settings. Build with [`ClientConfig::new`] and the
/// setters; every setter names the Java property it mirrors.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) bootstrap_servers: Vec<(String, u16)>,
    pub(crate) client_id: String,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) metadata_max_age: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
    pub(crate) max_response_size: usize,
    pub(crate) security_protocol: SecurityProtocol,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) sasl: Option<SaslConfig>,
}

/// Default port of a Kafka broker, used when a bootstrap server has none.
pub const DEFAULT_PORT: u16 = 9092;

impl ClientConfig {
    /// Settings for the cluster reachable at `bootstrap_servers`, a comma
    /// separated `host[:port]` list (`bootstrap.servers`); the port defaults
    /// to 9092. IPv6 addresses go in brackets: `[::1]:9092`.
    ///
    /// Errors: [`Error::Config`] for an empty list, an empty host or a port
    /// that is not a number in 1..=65535.
    pub fn new(bootstrap_servers: &str) -> Result<Self> {
        let mut servers = Vec::new();
        for part in bootstrap_servers.split(',') {
            servers.push(parse_host_port(part.trim())?);
        }
        Ok(Self {
            bootstrap_servers: servers,
            client_id: "skotch".to_string(),
            request_timeout: Duration::from_millis(30_000),
            connect_timeout: Duration::from_millis(10_000),
            metadata_max_age: Duration::from_millis(300_000),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
            max_response_size: 100 * 1024 * 1024,
            security_protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        })
    }

    /// `client.id`: sent in every request header and shown in broker logs
    /// and quotas. Default `"skotch"`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// `request.timeout.ms`: how long to wait for a response before the
    /// request fails and its connection is closed. Default 30 000 ms.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// `socket.connection.setup.timeout.ms`: how long a TCP connect plus
    /// the ApiVersions handshake may take. Default 10 000 ms.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// `metadata.max.age.ms`: metadata older than this is refreshed even
    /// without a reason. Default 300 000 ms.
    pub fn metadata_max_age(mut self, t: Duration) -> Self {
        self.metadata_max_age = t;
        self
    }

    /// `retry.backoff.ms`: first wait before retrying a failed request; it
    /// doubles on every attempt, with ±20 % jitter (KIP-580). Default 100 ms.
    pub fn retry_backoff(mut self, t: Duration) -> Self {
        self.retry_backoff = t;
        self
    }

    /// `retry.backoff.max.ms`: ceiling of the retry backoff. Default 1 000 ms.
    pub fn retry_backoff_max(mut self, t: Duration) -> Self {
        self.retry_backoff_max = t;
        self
    }

    /// Largest response frame accepted, in bytes; a bigger size prefix is
    /// treated as a protocol error instead of being allocated. Default
    /// 104 857 600 bytes (100 MiB, the broker's `socket.request.max.bytes`).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// `security.protocol`: PLAINTEXT (default), SSL, SASL_PLAINTEXT or
    /// SASL_SSL. SASL protocols need [`ClientConfig::sasl`]; TLS protocols
    /// use [`ClientConfig::tls`], or when it is not set the default
    /// [`TlsConfig`] (trusted roots as documented there, host name checked).
    /// [`crate::Client::connect`] refuses inconsistent combinations with
    /// [`Error::Config`].
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.security_protocol = protocol;
        self
    }

    /// TLS settings for SSL and SASL_SSL (`ssl.*` properties). Default: none,
    /// meaning [`TlsConfig::new`] when the protocol needs TLS.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// SASL credentials for SASL_PLAINTEXT and SASL_SSL (`sasl.mechanism`
    /// and the username/password of `sasl.jaas.config`). Default: none.
    pub fn sasl(mut self, sasl: SaslConfig) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// The configured `security.protocol`.
    pub fn protocol(&self) -> SecurityProtocol {
        self.security_protocol
    }

    /// The configured SASL credentials, if any.
    pub fn sasl_config(&self) -> Option<&SaslConfig> {
        self.sasl.as_ref()
    }

    /// The bootstrap servers as `(host, port)` pairs.
    pub fn bootstrap_servers(&self) -> &[(String, u16)] {
        &self.bootstrap_servers
    }
}

/// Parse `host[:port]` or `[v6addr][:port]`.
pub fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let bad = |why: &str| Error::Config(format!("bootstrap server {s:?}: {why}"));
    if s.is_empty() {
        return Err(bad("empty host"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after IPv6 address"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("port must be a number in 1..=65535")),
            Ok(p) => p,
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(parse_host_port("a").unwrap(), ("a".into(), 9092));
        assert_eq!(parse_host_port("a:1").unwrap(), ("a".into(), 1));
        assert_eq!(parse_host_port("[::1]:5").unwrap(), ("::1".into(), 5));
        assert_eq!(parse_host_port("[::1]").unwrap(), ("::1".into(), 9092));
        assert!(parse_host_port("a:0").is_err());
        assert!(parse_host_port("a:x").is_err());
        assert!(parse_host_port(":9092").is_err());
        assert!(parse_host_port("").is_err());
        assert!(ClientConfig::new("a:1,,b").is_err());
    }
}
