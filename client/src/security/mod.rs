//! How a connection is secured: the security protocol (`security.protocol`),
//! TLS settings ([`tls`]) and SASL credentials ([`SaslConfig`]).

use std::fmt;
use std::str::FromStr;

pub use skotch_protocol::sasl::{Mechanism as SaslMechanism, Password};

use crate::error::Error;

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
