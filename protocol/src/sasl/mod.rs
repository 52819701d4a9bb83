//! SASL authentication exchanges as sans-IO state machines (KIP-43, KIP-84,
//! KIP-152): the client feeds in the broker's `auth_bytes` and gets the next
//! message to send. No sockets, no clocks, no randomness: the caller supplies
//! the SCRAM client nonce.
//!
//! Mechanisms: `PLAIN` (RFC 4616) and `SCRAM-SHA-256` / `SCRAM-SHA-512`
//! (RFC 5802, RFC 7677).

use std::fmt;
use std::str::FromStr;

pub mod plain;
pub mod scram;
#[cfg(test)]
mod test_server;

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

/// What the client does next in a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Send these bytes as the next SaslAuthenticate `auth_bytes`.
    Send(Vec<u8>),
    /// Authentication succeeded (for SCRAM: the broker's server signature
    /// checked out). Nothing more to send.
    Done,
}

/// Why a SASL exchange failed. No variant ever carries the password or
/// anything derived from it (salted password, keys, proof).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The username cannot be sent (empty, or a NUL character).
    #[error("invalid SASL username: it {0}")]
    InvalidUsername(&'static str),
    /// The password cannot be sent (PLAIN: a NUL character).
    #[error("invalid SASL password: it {0}")]
    InvalidPassword(&'static str),
    /// The caller-supplied SCRAM client nonce is empty or not printable
    /// ASCII without `,` (RFC 5802 `c-nonce`).
    #[error("invalid SCRAM client nonce: it {0}")]
    InvalidClientNonce(&'static str),
    /// `initial`/`step` called in the wrong order (a bug in the caller). The
    /// exchange is failed afterwards.
    #[error("SASL exchange used out of order: {call} called {state}")]
    OutOfOrder {
        /// The method called, such as `step()`.
        call: &'static str,
        /// Where the exchange stood, such as `after authentication completed`.
        state: &'static str,
    },
    /// A SCRAM server message that does not follow RFC 5802's grammar, is
    /// not UTF-8, is empty, or is longer than
    /// [`scram::MAX_SERVER_MESSAGE_LEN`].
    #[error("malformed SCRAM {message} message from the broker: {reason}")]
    Malformed {
        /// `server-first` or `server-final`.
        message: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The server nonce does not start with (and strictly extend) the client
    /// nonce: a replayed or forged server-first message.
    #[error("the broker's SCRAM nonce does not extend the client nonce (replayed or forged server-first message)")]
    NonceMismatch,
    /// The server-first message asks for a PBKDF2 iteration count outside
    /// [`scram::MIN_ITERATIONS`]`..=`[`scram::MAX_ITERATIONS`].
    #[error("the broker asked for {count} SCRAM iterations; skotch accepts {min} to {max}")]
    IterationCount {
        /// The count the broker sent (saturated at `u64::MAX`).
        count: u64,
        /// [`scram::MIN_ITERATIONS`].
        min: u32,
        /// [`scram::MAX_ITERATIONS`].
        max: u32,
    },
    /// A SCRAM message with the reserved mandatory extension `m=`, which
    /// RFC 5802 says must fail the authentication.
    #[error(
        "the broker's SCRAM message has a mandatory extension (m=), which skotch does not support"
    )]
    MandatoryExtension,
    /// The broker's server-final message is `e=<error>`, such as
    /// `invalid-proof` or `unknown-user` (RFC 5802 `server-error-value`).
    /// Kafka's own broker reports failures as a SaslAuthenticate error code
    /// instead; other implementations may send this.
    #[error("the broker rejected the SCRAM authentication: {0:?}")]
    ServerError(String),
    /// The server signature (`v=`) is wrong: the peer does not hold this
    /// user's SCRAM credential, so it is not the broker it claims to be.
    #[error("the broker's SCRAM server signature is wrong: it does not hold this user's credential (possible impostor)")]
    ServerSignatureMismatch,
    /// The broker answered a PLAIN authentication with bytes; Kafka sends
    /// none.
    #[error(
        "the broker answered PLAIN authentication with {len} unexpected bytes (expected none)"
    )]
    UnexpectedServerData {
        /// How many bytes came.
        len: usize,
    },
}

/// One SASL authentication exchange, client side, as a sans-IO state
/// machine. The caller sends [`Exchange::initial`] as the first
/// SaslAuthenticate `auth_bytes`, then feeds each response's `auth_bytes` to
/// [`Exchange::step`] until it returns [`Step::Done`]. Any error ends the
/// exchange: later calls return [`SaslError::OutOfOrder`].
///
/// `Debug` shows the mechanism, username and state, never the password or
/// anything derived from it.
///
/// ```
/// use skotch_protocol::sasl::{Exchange, Mechanism, Password, Step};
///
/// let password = Password::new("alice-secret");
/// let mut exchange = Exchange::new(Mechanism::Plain, "alice", &password, "")?;
/// assert_eq!(exchange.initial()?, b"\0alice\0alice-secret");
/// assert_eq!(exchange.step(b"")?, Step::Done);
/// # Ok::<(), skotch_protocol::sasl::SaslError>(())
/// ```
#[derive(Debug)]
pub struct Exchange {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Plain(plain::Plain),
    ScramSha256(scram::Scram<sha2::Sha256>),
    ScramSha512(scram::Scram<sha2::Sha512>),
}

impl Exchange {
    /// Starts an exchange for `username` (`sasl.jaas.config`'s `username`).
    ///
    /// `client_nonce` is only used by SCRAM: printable ASCII without `,`
    /// (RFC 5802 `c-nonce`), at least 24 characters from a CSPRNG is the
    /// expectation (Kafka's Java client uses 32 random bytes, base64-ish);
    /// the caller generates it so this crate needs no randomness. PLAIN
    /// ignores it.
    ///
    /// # Errors
    /// [`SaslError::InvalidUsername`] (empty, NUL),
    /// [`SaslError::InvalidPassword`] (PLAIN: NUL),
    /// [`SaslError::InvalidClientNonce`] (SCRAM: empty or not printable).
    pub fn new(
        mechanism: Mechanism,
        username: &str,
        password: &Password,
        client_nonce: &str,
    ) -> Result<Self, SaslError> {
        let inner = match mechanism {
            Mechanism::Plain => Inner::Plain(plain::Plain::new(username, password)?),
            Mechanism::ScramSha256 => {
                Inner::ScramSha256(scram::Scram::new(username, password, client_nonce)?)
            }
            Mechanism::ScramSha512 => {
                Inner::ScramSha512(scram::Scram::new(username, password, client_nonce)?)
            }
        };
        Ok(Exchange { inner })
    }

    /// The mechanism this exchange runs.
    pub fn mechanism(&self) -> Mechanism {
        match self.inner {
            Inner::Plain(_) => Mechanism::Plain,
            Inner::ScramSha256(_) => Mechanism::ScramSha256,
            Inner::ScramSha512(_) => Mechanism::ScramSha512,
        }
    }

    /// The first message to send (the first SaslAuthenticate `auth_bytes`):
    /// PLAIN's `NUL username NUL password`, or SCRAM's client-first message
    /// `n,,n=<escaped username>,r=<client nonce>`.
    ///
    /// # Errors
    /// [`SaslError::OutOfOrder`] if called twice.
    pub fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        match &mut self.inner {
            Inner::Plain(p) => p.initial(),
            Inner::ScramSha256(s) => s.initial(),
            Inner::ScramSha512(s) => s.initial(),
        }
    }

    /// Feeds the broker's `auth_bytes` (from a successful SaslAuthenticate
    /// response) and says what to do next.
    ///
    /// PLAIN: empty bytes mean [`Step::Done`]. SCRAM: the server-first
    /// message yields [`Step::Send`] with the client-final message (this call
    /// runs PBKDF2: between 4096 and [`scram::MAX_ITERATIONS`] HMAC
    /// rounds, typically a few milliseconds); the server-final message yields
    /// [`Step::Done`] once its signature is verified.
    ///
    /// # Errors
    /// Every [`SaslError`] about the broker's messages, and
    /// [`SaslError::OutOfOrder`] before `initial`, after `Done` or after an
    /// error.
    pub fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match &mut self.inner {
            Inner::Plain(p) => p.step(server),
            Inner::ScramSha256(s) => s.step(server),
            Inner::ScramSha512(s) => s.step(server),
        }
    }

    /// Whether authentication has succeeded.
    pub fn is_done(&self) -> bool {
        match &self.inner {
            Inner::Plain(p) => p.is_done(),
            Inner::ScramSha256(s) => s.is_done(),
            Inner::ScramSha512(s) => s.is_done(),
        }
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

    /// A password no message, error or `Debug` output may show.
    const SECRET: &str = "Zebra-Quartz-7781";

    /// Checks every rendering of `what` for the password and for the
    /// secrets derived from it (salted password, client proof), in the
    /// encodings they could leak in.
    fn assert_no_secret(what: &str, forbidden: &[String]) {
        for f in forbidden {
            assert!(!what.contains(f.as_str()), "{f:?} leaked into {what:?}");
        }
    }

    fn forbidden(salted: &[u8], proof: &str) -> Vec<String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let hex: String = salted.iter().map(|b| format!("{b:02x}")).collect();
        vec![
            SECRET.to_string(),
            format!("{:?}", SECRET.as_bytes()),
            b64.encode(salted),
            hex,
            format!("{salted:?}"),
            proof.to_string(),
        ]
    }

    #[test]
    fn exchange_reports_its_mechanism() {
        for m in Mechanism::ALL {
            let x = Exchange::new(m, "u", &Password::new("p"), "nonce").unwrap();
            assert_eq!(x.mechanism(), m);
            assert!(!x.is_done());
        }
    }

    #[test]
    fn secrets_never_show_in_errors_or_debug() {
        use test_server::TestServer;
        let salt = b"leak-test-salt";
        let mut renderings = Vec::new();
        let mut forbid = Vec::new();

        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            // A successful exchange, rendering the state at every point.
            let nonce = "leakTestClientNonce-0123456789";
            let mut x = Exchange::new(m, "leaky", &Password::new(SECRET), nonce).unwrap();
            renderings.push(format!("{x:?}"));
            let first = x.initial().unwrap();
            renderings.push(format!("{x:?}"));
            let (server_first, server_final, salted, proof);
            if m == Mechanism::ScramSha256 {
                let mut server = TestServer::<sha2::Sha256>::new("leaky", SECRET, salt, 4096, "S");
                server_first = server.first(&first).unwrap();
                let Step::Send(client_final) = x.step(&server_first).unwrap() else {
                    panic!()
                };
                server_final = server.last(&client_final).unwrap();
                proof = String::from_utf8(client_final).unwrap();
                salted = test_server::hi::<sha2::Sha256>(SECRET.as_bytes(), salt, 4096);
            } else {
                let mut server = TestServer::<sha2::Sha512>::new("leaky", SECRET, salt, 4096, "S");
                server_first = server.first(&first).unwrap();
                let Step::Send(client_final) = x.step(&server_first).unwrap() else {
                    panic!()
                };
                server_final = server.last(&client_final).unwrap();
                proof = String::from_utf8(client_final).unwrap();
                salted = test_server::hi::<sha2::Sha512>(SECRET.as_bytes(), salt, 4096);
            }
            let proof = proof.rsplit_once(",p=").unwrap().1.to_string();
            forbid.extend(forbidden(&salted, &proof));
            renderings.push(format!("{x:?}"));

            // Every failure after the keys exist.
            let mut bad_final = server_final.clone();
            bad_final[3] ^= 1;
            for answer in [&bad_final[..], b"e=invalid-proof", b"v=!!", b"m=1", b""] {
                let mut y = Exchange::new(m, "leaky", &Password::new(SECRET), nonce).unwrap();
                let _ = y.initial().unwrap();
                let _ = y.step(&server_first).unwrap();
                renderings.push(format!("{y:?}"));
                let err = y.step(answer).unwrap_err();
                renderings.push(format!("{err} {err:?} {y:?}"));
                let err = y.step(&server_final).unwrap_err();
                renderings.push(format!("{err} {err:?}"));
            }
            assert_eq!(x.step(&server_final).unwrap(), Step::Done);
            renderings.push(format!("{x:?}"));
            let err = x.step(&server_final).unwrap_err();
            renderings.push(format!("{err} {err:?}"));

            // Failures before the keys exist.
            for answer in [
                &b"r=someoneElse,s=AAAA,i=4096"[..],
                b"r=leakTestClientNonce-0123456789X,s=AAAA,i=1",
                b"garbage",
            ] {
                let mut y = Exchange::new(m, "leaky", &Password::new(SECRET), nonce).unwrap();
                let _ = y.initial().unwrap();
                let err = y.step(answer).unwrap_err();
                renderings.push(format!("{err} {err:?} {y:?}"));
            }
            for bad_nonce in ["", "a,b"] {
                let err = Exchange::new(m, "leaky", &Password::new(SECRET), bad_nonce).unwrap_err();
                renderings.push(format!("{err} {err:?}"));
            }
        }

        // PLAIN: the message carries the password by design; nothing else may.
        let mut p = Exchange::new(Mechanism::Plain, "leaky", &Password::new(SECRET), "").unwrap();
        renderings.push(format!("{p:?}"));
        let _ = p.initial().unwrap();
        renderings.push(format!("{p:?}"));
        let err = p.step(b"nope").unwrap_err();
        renderings.push(format!("{err} {err:?} {p:?}"));
        let with_nul = format!("{SECRET}\0tail");
        let err =
            Exchange::new(Mechanism::Plain, "leaky", &Password::new(with_nul), "").unwrap_err();
        renderings.push(format!("{err} {err:?}"));

        for r in &renderings {
            assert_no_secret(r, &forbid);
        }
        assert!(renderings.len() > 40);
    }

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert_eq!(p.expose(), "hunter2");
    }
}
