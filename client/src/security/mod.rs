//! How a connection is secured: the security protocol (`security.protocol`),
//! TLS settings ([`tls`]) and SASL credentials ([`SaslConfig`]).

use std::fmt;
use std::str::FromStr;

pub use skotch_protocol::sasl::{Mechanism as SaslMechanism, Password};

use crate::error::Error;

pub mod tls;

pub use tls::{TlsConfig, TlsConnector, TlsProvider};

/// `security.protocol`: whether connections use TLS and/or SASL.
/// Default `PLAINTEXT`, as in Java.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication.
    #[default]
    Plaintext,
    /// TLS, authenticated by certificates only.
    Ssl,
    /// SASL over plain TCP (credentials in the clear with PLAIN).
    SaslPlaintext,
    /// SASL over TLS: what production clusters (and Hopskotch) use.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// True for SSL and SASL_SSL.
    pub fn uses_tls(&self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for SASL_PLAINTEXT and SASL_SSL.
    pub fn uses_sasl(&self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityProtocol {
    type Err = Error;

    /// Case-insensitive; `-` is accepted for `_`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.as_str() == norm)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown security.protocol {s:?} (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
                ))
            })
    }
}

/// SASL credentials: `sasl.mechanism` plus the username and password Java
/// puts in `sasl.jaas.config` (librdkafka's `sasl.username` /
/// `sasl.password`). The password never appears in `Debug` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism. Default SCRAM-SHA-512.
    pub mechanism: SaslMechanism,
    /// The username (the Kafka principal is `User:<username>`).
    pub username: String,
    /// The password.
    pub password: Password,
}

impl SaslConfig {
    /// Credentials for `mechanism`.
    pub fn new(
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<Password>,
    ) -> Self {
        Self {
            mechanism,
            username: username.into(),
            password: password.into(),
        }
    }
}

/// What a connection needs to secure itself, built once per
/// [`crate::Client`] from its [`crate::ClientConfig`].
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// The protocol.
    pub protocol: SecurityProtocol,
    /// Set for SSL and SASL_SSL.
    pub tls: Option<tls::TlsConnector>,
    /// Set for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<SaslConfig>,
}

impl Security {
    /// Check the settings agree with `security.protocol` and build TLS.
    ///
    /// Errors: [`Error::Config`] when a SASL protocol has no credentials,
    /// credentials or TLS settings are given for a protocol that would not
    /// use them (rather than silently connecting without them), or the TLS
    /// files cannot be read; [`Error::Tls`] when no crypto provider can run.
    pub fn from_config(config: &crate::ClientConfig) -> Result<Self, Error> {
        let protocol = config.protocol();
        let sasl = match (protocol.uses_sasl(), config.sasl_config()) {
            (true, Some(s)) => Some(s.clone()),
            (true, None) => {
                return Err(Error::Config(format!(
                    "security.protocol {protocol} needs SASL credentials (ClientConfig::sasl)"
                )))
            }
            (false, Some(_)) => {
                return Err(Error::Config(format!(
                    "SASL credentials are set but security.protocol is {protocol}; use SASL_PLAINTEXT or SASL_SSL"
                )))
            }
            (false, None) => None,
        };
        let tls = match (protocol.uses_tls(), &config.tls) {
            (true, Some(t)) => Some(t.connector()?),
            (true, None) => Some(tls::TlsConfig::new().connector()?),
            (false, Some(_)) => {
                return Err(Error::Config(format!(
                    "TLS settings are set but security.protocol is {protocol}; use SSL or SASL_SSL"
                )))
            }
            (false, None) => None,
        };
        Ok(Self {
            protocol,
            tls,
            sasl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse() {
        for p in SecurityProtocol::ALL {
            assert_eq!(p.as_str().parse::<SecurityProtocol>().unwrap(), p);
        }
        assert_eq!(
            "sasl-ssl".parse::<SecurityProtocol>().unwrap(),
            SecurityProtocol::SaslSsl
        );
        assert!("TLS".parse::<SecurityProtocol>().is_err());
    }

    #[test]
    fn sasl_config_debug_hides_password() {
        let c = SaslConfig::new(SaslMechanism::Plain, "alice", "s3cret-pw");
        let d = format!("{c:?}");
        assert!(d.contains("alice") && !d.contains("s3cret-pw"), "{d}");
    }
}
