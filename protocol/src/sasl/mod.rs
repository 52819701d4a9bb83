//! SASL authentication exchanges as sans-IO state machines (KIP-43, KIP-84,
//! KIP-152): the client feeds in the broker's `auth_bytes` and gets the next
//! message to send. No sockets, no clocks, no randomness: the caller supplies
//! the SCRAM client nonce.
//!
//! Mechanisms: `PLAIN` (RFC 4616) and `SCRAM-SHA-256` / `SCRAM-SHA-512`
//! (RFC 5802, RFC 7677).

use std::fmt;
use std::str::FromStr;

/// The SASL mechanisms skotch speaks (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password travels as is; use it only over TLS.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677, KIP-84).
    ScramSha256,
    /// `SCRAM-SHA-512` (KIP-84). hop-client's default, so ours too.
    #[default]
    ScramSha512,
}

impl Mechanism {
    /// Every mechanism, in the order error messages list them.
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The name Kafka uses (`sasl.mechanism`, SaslHandshake).
    pub fn as_str(&self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mechanism name skotch does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SASL mechanism {0:?} (expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")]
pub struct UnknownMechanism(pub String);

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    /// Case-insensitive; `_` is accepted for `-` (hop's `SCRAM_SHA_512`).
    fn from_str(s: &str) -> Result<Self, UnknownMechanism> {
        let norm = s.trim().to_ascii_uppercase().replace('_', "-");
        Mechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == norm)
            .ok_or_else(|| UnknownMechanism(s.to_string()))
    }
}

/// A password. It never shows in `Debug` output, has no `Display`, and is
/// only readable through [`Password::expose`], so it cannot leak into logs
/// or error messages by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wrap a password.
    pub fn new(p: impl Into<String>) -> Self {
        Password(p.into())
    }

    /// The password itself, for the SASL exchange (and the credentials file).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names() {
        for m in Mechanism::ALL {
            assert_eq!(m.as_str().parse::<Mechanism>().unwrap(), m);
        }
        assert_eq!(
            "scram_sha_512".parse::<Mechanism>().unwrap(),
            Mechanism::ScramSha512
        );
        assert!("GSSAPI".parse::<Mechanism>().is_err());
    }

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(p.expose(), "hunter2");
    }
}
