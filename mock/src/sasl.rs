//! SASL on the mock's listeners (KIP-43, KIP-84, KIP-152): SaslHandshake,
//! SaslAuthenticate with PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802,
//! RFC 7677), server side, as Kafka's `SaslServerAuthenticator`,
//! `PlainSaslServer` and `ScramSaslServer` run them.
//!
//! With users configured the listeners are SASL_PLAINTEXT. A connection
//! goes through the authenticator's states (`SaslServerAuthenticator.
//! SaslState`):
//!
//! ```text
//! Start       ApiVersions (once) or SaslHandshake    HANDSHAKE_OR_VERSIONS_REQUEST
//! Handshake   SaslHandshake                          HANDSHAKE_REQUEST
//! Authenticate / ScramFinal   SaslAuthenticate       AUTHENTICATE
//! Complete    anything (served as on PLAINTEXT)      COMPLETE
//! ```
//!
//! Any other request before `Complete` closes the connection, as the
//! broker's authenticator does (`IllegalSaslStateException`); so does a
//! refused mechanism (after the UNSUPPORTED_SASL_MECHANISM answer) and a
//! failed authentication (after the SASL_AUTHENTICATION_FAILED answer).
//!
//! Without users the listeners are PLAINTEXT: SaslHandshake and
//! SaslAuthenticate reach `KafkaApis`, which answers ILLEGAL_SASL_STATE and
//! keeps the connection (`KafkaApis.handleSaslHandshakeRequest`,
//! `handleSaslAuthenticateRequest`); the same answers come after a
//! successful authentication. Sessions never expire: `session_lifetime_ms`
//! is 0 (`connections.max.reauth.ms` unset), so there is no KIP-368
//! re-authentication, and a SaslHandshake on an authenticated connection is
//! ILLEGAL_SASL_STATE (`KafkaChannel.maybeBeginServerReauthentication`
//! returns false without a session expiration).
//!
//! Failures are reported as Kafka does, with SASL_AUTHENTICATION_FAILED
//! and an error message (for SCRAM the generic "Authentication failed
//! during authentication due to invalid credentials with SASL mechanism
//! ..." of `SaslServerAuthenticator.handleSaslToken`, which does not tell
//! an unknown user from a wrong password), never with an RFC 5802 `e=`
//! server-final message; the RFC 5802 server-error-value (`unknown-user`,
//! `invalid-proof`, `channel-bindings-dont-match`, ...) is in the log line
//! of the close.
//!
//! This is a test mock, not a security boundary: the SCRAM server nonce
//! comes from a process-wide counter (not a CSPRNG) and the salts are
//! derived from the usernames, so that runs are reproducible.
//!
//! Differences from the broker, all on paths a well-behaved client never
//! takes:
//! - A request other than SaslAuthenticate during the exchange closes the
//!   connection without an answer; the broker first sends that request's
//!   error response with ILLEGAL_SASL_STATE.
//! - SaslHandshake v0 (raw SASL tokens without Kafka headers after it,
//!   before KIP-152) is not implemented: it is answered UNSUPPORTED_VERSION,
//!   then the connection is closed. The generated codec (Kafka 4.1.1
//!   definitions) still lists v0, deprecated.
//! - A token above [`MAX_TOKEN_SIZE`] is answered SASL_AUTHENTICATION_FAILED
//!   before the close; the broker refuses the frame itself and closes
//!   without an answer.
//! - An ApiVersions answered INVALID_REQUEST (KIP-511) still counts as the
//!   one ApiVersions allowed before the handshake.
//! - SCRAM: the client-first `m=` extension fails the authentication, as
//!   RFC 5802 section 5.1 requires (Kafka's pattern lets it through);
//!   usernames may be any UTF-8 (Kafka's pattern takes 7-bit ASCII only);
//!   the AuthMessage uses the client-final message as received, extensions
//!   included (RFC 5802 section 3; Kafka rebuilds it without them); and the
//!   `c=` channel binding must be the base64 of the client's GS2 header
//!   (`biws` for `n,,`; Kafka does not check it).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use hmac::digest::Digest;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use skotch_protocol::sasl::{Mechanism, Password};

use crate::api_versions;
use crate::broker::Broker;

/// PBKDF2 iterations of every SCRAM credential: Kafka's minimum for both
/// SCRAM mechanisms (`ScramMechanism`) and `kafka-configs.sh`'s default
/// (`ConfigCommand.DefaultScramIterations`).
pub(crate) const SCRAM_ITERATIONS: u32 = 4096;

/// The largest SASL token accepted: the broker's
/// `sasl.server.max.receive.size` default
/// (`BrokerSecurityConfigs.DEFAULT_SASL_SERVER_MAX_RECEIVE_SIZE`). Every
/// parser below works within this many bytes.
pub(crate) const MAX_TOKEN_SIZE: usize = 524_288;

/// A user the cluster accepts, with one mechanism (as Kafka stores SCRAM
/// credentials per mechanism, and PLAIN users in the JAAS configuration).
#[derive(Clone)]
pub(crate) struct User {
    mechanism: Mechanism,
    username: String,
    secret: Secret,
}

/// What the broker holds to check a user.
#[derive(Clone)]
enum Secret {
    /// PLAIN: the password (`user_<name>="..."` in the JAAS configuration).
    Plain(Password),
    /// SCRAM: the credential, never the password (RFC 5802 section 3,
    /// Kafka's `ScramCredential`).
    Scram(ScramCredential),
}

/// A SCRAM credential: salt, iterations, StoredKey, ServerKey.
#[derive(Clone)]
struct ScramCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl fmt::Debug for User {
    /// The mechanism and username; never the password or the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl User {
    /// A user of `mechanism`. For SCRAM the credential is derived at once
    /// (PBKDF2 with [`SCRAM_ITERATIONS`]) with a salt derived from the
    /// mechanism and username, so it is the same in every run.
    pub fn new(mechanism: Mechanism, username: &str, password: &str) -> User {
        let secret = match mechanism {
            Mechanism::Plain => Secret::Plain(Password::new(password)),
            Mechanism::ScramSha256 => {
                Secret::Scram(credential::<Sha256>(mechanism, username, password))
            }
            Mechanism::ScramSha512 => {
                Secret::Scram(credential::<Sha512>(mechanism, username, password))
            }
        };
        User {
            mechanism,
            username: username.to_string(),
            secret,
        }
    }
}

/// Kafka's `ScramFormatter.generateCredential`: SaltedPassword :=
/// Hi(password, salt, i), StoredKey := H(HMAC(SaltedPassword, "Client
/// Key")), ServerKey := HMAC(SaltedPassword, "Server Key") (RFC 5802
/// section 3; the password as its UTF-8 bytes, no SASLprep, as
/// `ScramFormatter.normalize`). Kafka's salt is random; this one is a hash
/// of the mechanism and username.
fn credential<D: EagerHash>(
    mechanism: Mechanism,
    username: &str,
    password: &str,
) -> ScramCredential {
    let mut h = Sha256::new();
    h.update(b"skotch-mock SCRAM salt\0");
    h.update(mechanism.as_str().as_bytes());
    h.update(b"\0");
    h.update(username.as_bytes());
    let salt = h.finalize()[..16].to_vec();
    let mut salted = vec![0u8; <D as Digest>::output_size()];
    pbkdf2::pbkdf2_hmac::<D>(password.as_bytes(), &salt, SCRAM_ITERATIONS, &mut salted);
    let client_key = hmac::<D>(&salted, &[b"Client Key"]);
    ScramCredential {
        salt,
        iterations: SCRAM_ITERATIONS,
        stored_key: D::digest(&client_key).to_vec(),
        server_key: hmac::<D>(&salted, &[b"Server Key"]),
    }
}

/// HMAC-`D` of `parts` under `key` (HMAC takes keys of any length, RFC 2104
/// section 2).
fn hmac<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<D> as KeyInit>::new_from_slice(key) else {
        // Unreachable: HMAC accepts any key length. An empty MAC never
        // matches anything, so this fails closed.
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Equal contents, in time independent of where they differ (Kafka:
/// `MessageDigest.isEqual`).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One connection's SASL progress.
#[derive(Debug, Default)]
pub(crate) struct ConnSasl {
    stage: Stage,
}

/// Where a connection stands (`SaslServerAuthenticator.SaslState`).
#[derive(Debug, Default)]
enum Stage {
    /// HANDSHAKE_OR_VERSIONS_REQUEST: ApiVersions or SaslHandshake.
    #[default]
    Start,
    /// HANDSHAKE_REQUEST: ApiVersions was answered; SaslHandshake only.
    Handshake,
    /// AUTHENTICATE: the mechanism is chosen; the first token is awaited.
    Authenticate(Mechanism),
    /// AUTHENTICATE, SCRAM: server-first went out; client-final awaited.
    ScramFinal(ScramPending),
    /// COMPLETE: authenticated as this user; requests are served.
    Complete { principal: String },
    /// FAILED: the connection is being closed.
    Failed,
}

/// What the SCRAM server keeps between server-first and client-final.
struct ScramPending {
    mechanism: Mechanism,
    credential: ScramCredential,
    username: String,
    /// The GS2 header the client sent (`n,,` or `n,a=<authzid>,`): `c=`
    /// must be its base64.
    gs2_header: String,
    /// client-first-message-bare, as received.
    client_first_bare: String,
    /// server-first-message, as sent.
    server_first: String,
    /// The combined nonce (client's + server's).
    nonce: String,
}

impl fmt::Debug for ScramPending {
    /// No keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramPending")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// Whether the cluster requires SASL (a SASL_PLAINTEXT listener).
fn sasl_enabled(broker: &Broker) -> bool {
    !broker.shared.sasl_users.is_empty()
}

/// `sasl.enabled.mechanisms`: the distinct mechanisms of the configured
/// users, in the order they were first configured (Java keeps the
/// configured list's order).
fn enabled_mechanisms(broker: &Broker) -> Vec<Mechanism> {
    let mut out: Vec<Mechanism> = Vec::new();
    for u in &broker.shared.sasl_users {
        if !out.contains(&u.mechanism) {
            out.push(u.mechanism);
        }
    }
    out
}

/// `Err(reason)` when `api` (at `version`) may not be served on this
/// connection yet: the connection is then closed without an answer, as
/// `SaslServerAuthenticator.handleKafkaRequest` does with an
/// `IllegalSaslStateException`.
pub(crate) fn gate(
    broker: &Broker,
    conn: &mut ConnSasl,
    api: ApiKey,
    version: i16,
) -> Result<(), String> {
    if !sasl_enabled(broker) {
        return Ok(());
    }
    match (&conn.stage, api) {
        (Stage::Complete { .. }, _) => Ok(()),
        (Stage::Start, ApiKey::ApiVersions) => {
            // handleApiVersionsRequest: an answer at a supported version
            // moves to HANDSHAKE_REQUEST; UNSUPPORTED_VERSION lets the
            // client retry (KIP-511).
            let supported = api_versions::supported(api)
                .is_some_and(|(min, max)| (min..=max).contains(&version));
            if supported {
                conn.stage = Stage::Handshake;
            }
            Ok(())
        }
        (Stage::Start | Stage::Handshake, ApiKey::SaslHandshake) => Ok(()),
        (Stage::Handshake, ApiKey::ApiVersions) => {
            conn.stage = Stage::Failed;
            Err("Unexpected ApiVersions request received during SASL authentication state HANDSHAKE_REQUEST".into())
        }
        (Stage::Start | Stage::Handshake, other) => {
            conn.stage = Stage::Failed;
            Err(format!(
                "Unexpected Kafka request of type {other} during SASL handshake."
            ))
        }
        (Stage::Authenticate(_) | Stage::ScramFinal(_), ApiKey::SaslAuthenticate) => Ok(()),
        (Stage::Authenticate(_) | Stage::ScramFinal(_), other) => {
            conn.stage = Stage::Failed;
            Err(format!(
                "Unexpected Kafka request of type {other} during SASL authentication."
            ))
        }
        (Stage::Failed, _) => Err("SASL authentication failed".into()),
    }
}

/// Whether the connection is still authenticating (errors then close it,
/// as every error of `SaslServerAuthenticator` does).
fn authenticating(broker: &Broker, conn: &ConnSasl) -> bool {
    sasl_enabled(broker) && !matches!(conn.stage, Stage::Complete { .. })
}

/// SaslHandshake. The answer, and `Err` when the connection must be closed
/// after it is sent (a refused mechanism).
pub(crate) fn handshake(
    broker: &Broker,
    conn: &mut ConnSasl,
    req: &SaslHandshakeRequest,
    version: i16,
) -> (SaslHandshakeResponse, Result<(), String>) {
    let enabled: Vec<String> = enabled_mechanisms(broker)
        .iter()
        .map(|m| m.as_str().to_string())
        .collect();
    let answer = |code: ErrorCode, mechanisms: Vec<String>| SaslHandshakeResponse {
        error_code: code.code(),
        mechanisms,
    };
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::SaslHandshake, None) {
        // Nothing applied; during authentication an error ends the
        // connection, as the broker's would.
        let verdict = if authenticating(broker, conn) {
            conn.stage = Stage::Failed;
            Err(format!("injected {} on SaslHandshake", code.name()))
        } else {
            Ok(())
        };
        return (answer(code, enabled), verdict);
    }
    if !authenticating(broker, conn) {
        // KafkaApis.handleSaslHandshakeRequest: a PLAINTEXT listener, or an
        // authenticated connection without re-authentication.
        return (answer(ErrorCode::ILLEGAL_SASL_STATE, Vec::new()), Ok(()));
    }
    if !matches!(conn.stage, Stage::Start | Stage::Handshake) {
        // The gate lets SaslHandshake through in these two stages only.
        conn.stage = Stage::Failed;
        return (
            answer(ErrorCode::ILLEGAL_SASL_STATE, enabled),
            Err("SaslHandshake during SASL authentication".into()),
        );
    }
    if version < 1 {
        conn.stage = Stage::Failed;
        return (
            answer(ErrorCode::UNSUPPORTED_VERSION, enabled),
            Err(
                "SaslHandshake v0 (raw SASL tokens, before KIP-152) is not implemented by the mock"
                    .into(),
            ),
        );
    }
    // handleHandshakeRequest: exact, case-sensitive names.
    match enabled_mechanisms(broker)
        .into_iter()
        .find(|m| m.as_str() == req.mechanism)
    {
        Some(m) => {
            conn.stage = Stage::Authenticate(m);
            (answer(ErrorCode::NONE, enabled), Ok(()))
        }
        None => {
            conn.stage = Stage::Failed;
            (
                answer(ErrorCode::UNSUPPORTED_SASL_MECHANISM, enabled),
                Err(format!(
                    "Unsupported SASL mechanism {}",
                    printable(&req.mechanism)
                )),
            )
        }
    }
}

/// Why an exchange failed: what the client is told (`error_message`), and
/// what the log says (with RFC 5802's server-error-value for SCRAM).
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    message: String,
    reason: String,
}

impl Refusal {
    /// A `SaslAuthenticationException`: its message goes to the client.
    fn told(message: &str) -> Refusal {
        Refusal {
            message: message.to_string(),
            reason: message.to_string(),
        }
    }

    /// A `SaslException`: the client gets the authenticator's generic
    /// message (`handleSaslToken`, so that nothing tells whether the user
    /// exists); `reason` is for the log only.
    fn generic(mechanism: Mechanism, reason: impl Into<String>) -> Refusal {
        Refusal {
            message: format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
            ),
            reason: reason.into(),
        }
    }
}

/// SaslAuthenticate. The answer, and `Err` when the connection must be
/// closed after it is sent (a failed authentication).
pub(crate) fn authenticate(
    broker: &Broker,
    conn: &mut ConnSasl,
    req: &SaslAuthenticateRequest,
    _version: i16,
) -> (SaslAuthenticateResponse, Result<(), String>) {
    let failed = |code: ErrorCode, message: String| SaslAuthenticateResponse {
        error_code: code.code(),
        error_message: Some(message),
        ..Default::default()
    };
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::SaslAuthenticate, None) {
        let verdict = if authenticating(broker, conn) {
            conn.stage = Stage::Failed;
            Err(format!("injected {} on SaslAuthenticate", code.name()))
        } else {
            Ok(())
        };
        return (failed(code, code.description().to_string()), verdict);
    }
    if !authenticating(broker, conn) {
        // KafkaApis.handleSaslAuthenticateRequest.
        return (
            failed(
                ErrorCode::ILLEGAL_SASL_STATE,
                "SaslAuthenticate request received after successful authentication".into(),
            ),
            Ok(()),
        );
    }
    let token: &[u8] = &req.auth_bytes;
    let outcome = match std::mem::take(&mut conn.stage) {
        _ if token.len() > MAX_TOKEN_SIZE => Err(Refusal::told(
            "Failing SASL authentication due to invalid receive size",
        )),
        Stage::Authenticate(Mechanism::Plain) => {
            plain(&broker.shared.sasl_users, token).map(|principal| {
                conn.stage = Stage::Complete { principal };
                Vec::new()
            })
        }
        Stage::Authenticate(m) => {
            scram_first(&broker.shared.sasl_users, m, token, next_server_nonce()).map(|pending| {
                let server_first = pending.server_first.clone().into_bytes();
                conn.stage = Stage::ScramFinal(pending);
                server_first
            })
        }
        Stage::ScramFinal(pending) => {
            let server_final = scram_final(&pending, token);
            if server_final.is_ok() {
                conn.stage = Stage::Complete {
                    principal: pending.username,
                };
            }
            server_final
        }
        // The gate lets SaslAuthenticate through in the stages above only.
        _ => Err(Refusal::told("Unexpected SaslAuthenticate request")),
    };
    match outcome {
        Ok(auth_bytes) => {
            if let Stage::Complete { principal } = &conn.stage {
                tracing::debug!(broker = broker.node_id, principal, "SASL authenticated");
            }
            (
                SaslAuthenticateResponse {
                    error_code: 0,
                    error_message: None,
                    auth_bytes: Bytes::from(auth_bytes),
                    // No connections.max.reauth.ms, no expiring token: the
                    // session never expires (no KIP-368 re-authentication).
                    session_lifetime_ms: 0,
                },
                Ok(()),
            )
        }
        Err(refusal) => {
            conn.stage = Stage::Failed;
            (
                failed(ErrorCode::SASL_AUTHENTICATION_FAILED, refusal.message),
                Err(format!("SASL authentication failed: {}", refusal.reason)),
            )
        }
    }
}

/// RFC 4616 `message = [authzid] UTF8NUL authcid UTF8NUL passwd`, checked
/// as `PlainSaslServer.evaluateResponse` does (its messages, its order):
/// three NUL-separated tokens, non-empty username and password, the
/// credentials, then an authorization id that is empty or the username.
/// Bytes that are not UTF-8 become U+FFFD (Java's `new String(bytes,
/// UTF_8)`), so they simply do not match. The authenticated username.
fn plain(users: &[User], token: &[u8]) -> Result<String, Refusal> {
    let text = String::from_utf8_lossy(token);
    // extractTokens: at most four pieces are looked at; three are needed.
    let tokens: Vec<&str> = text.splitn(4, '\0').collect();
    let [authzid, username, password] = tokens[..] else {
        return Err(Refusal::told(&format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            tokens.len()
        )));
    };
    if username.is_empty() {
        return Err(Refusal::told(
            "Authentication failed: username not specified",
        ));
    }
    if password.is_empty() {
        return Err(Refusal::told(
            "Authentication failed: password not specified",
        ));
    }
    // PlainServerCallbackHandler: MessageDigest.isEqual on the password.
    let ok = users.iter().any(|u| match &u.secret {
        Secret::Plain(p) if u.username == username => {
            constant_time_eq(p.expose().as_bytes(), password.as_bytes())
        }
        _ => false,
    });
    if !ok {
        return Err(Refusal::told(
            "Authentication failed: Invalid username or password",
        ));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(Refusal::told(
            "Authentication failed: Client requested an authorization id that is different from username",
        ));
    }
    Ok(username.to_string())
}

/// The SCRAM server nonce: a process-wide counter, not randomness (RFC
/// 5802 wants it unpredictable; the mock wants reproducible runs).
fn next_server_nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("skotchmock{:020}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The message as text: bounded, UTF-8, no NUL (RFC 5802 `value-char`
/// excludes it).
fn scram_text(token: &[u8]) -> Option<&str> {
    if token.is_empty() || token.len() > MAX_TOKEN_SIZE {
        return None;
    }
    std::str::from_utf8(token)
        .ok()
        .filter(|t| !t.contains('\0'))
}

/// RFC 5802 `printable`: `%x21-2B / %x2D-7E` (visible ASCII but `,`),
/// at least one.
fn is_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// One `attr=value` with a non-empty value; Kafka's extensions
/// (`ScramExtensions`, KIP-48's `tokenauth`) have names of several letters.
fn split_attr(attr: &str) -> Option<(&str, &str)> {
    let (name, value) = attr.split_once('=')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic()) && !value.is_empty())
        .then_some((name, value))
}

/// RFC 5802 `saslname` to a username: `=2C` is `,`, `=3D` is `=`, any
/// other `=` (and an empty name) is invalid (Kafka: `ScramFormatter.
/// username`).
fn unescape_saslname(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        out.push(match rest.get(pos + 1..pos + 3)? {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The client-first message, parsed: `gs2-header client-first-bare`.
#[derive(Debug, PartialEq, Eq)]
struct ClientFirst<'a> {
    /// `n,` + `a=<authzid>` or nothing + `,`.
    gs2_header: &'a str,
    /// The authorization identity (unescaped), empty when not given.
    authzid: String,
    /// The username (unescaped).
    username: String,
    /// The client nonce.
    nonce: &'a str,
    /// `n=...,r=...[,ext]`, as received (part of the AuthMessage).
    bare: &'a str,
    /// Kafka's `tokenauth=true` extension (KIP-48 delegation tokens).
    token_auth: bool,
}

/// Parses `n,[a=<saslname>],n=<saslname>,r=<nonce>[,<ext>=<value>]*`
/// (RFC 5802 section 7; Kafka's `ClientFirstMessage`). `Err` names the
/// RFC 5802 server-error-value.
fn parse_client_first(token: &[u8]) -> Result<ClientFirst<'_>, &'static str> {
    let text = scram_text(token).ok_or("invalid-encoding")?;
    // gs2-cbind-flag: Kafka supports no channel binding and accepts "n"
    // only (a "y" or "p=" client is refused by its pattern).
    let rest = text
        .strip_prefix("n,")
        .ok_or("channel-binding-not-supported")?;
    let (authzid, bare) = rest.split_once(',').ok_or("other-error")?;
    let gs2_header = &text[..2 + authzid.len() + 1];
    let authzid = match authzid {
        "" => String::new(),
        a => unescape_saslname(a.strip_prefix("a=").ok_or("other-error")?)
            .ok_or("invalid-username-encoding")?,
    };
    let mut attrs = bare.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        // RFC 5802 section 5.1: a mandatory extension this server does not
        // know fails the authentication.
        return Err("extensions-not-supported");
    }
    let username = first.strip_prefix("n=").ok_or("other-error")?;
    let username = unescape_saslname(username).ok_or("invalid-username-encoding")?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| is_nonce(n))
        .ok_or("other-error")?;
    let mut token_auth = false;
    for attr in attrs {
        let (name, value) = split_attr(attr).ok_or("other-error")?;
        if name == "tokenauth" {
            token_auth = value.eq_ignore_ascii_case("true");
        }
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        username,
        nonce,
        bare,
        token_auth,
    })
}

/// client-first in, server-first out (`ScramSaslServer`,
/// RECEIVE_CLIENT_FIRST_MESSAGE): the user's credential for this mechanism,
/// then the authorization id, then `r=<client nonce><server nonce>,s=<salt>,
/// i=<iterations>`.
fn scram_first(
    users: &[User],
    mechanism: Mechanism,
    token: &[u8],
    server_nonce: String,
) -> Result<ScramPending, Refusal> {
    let first = parse_client_first(token).map_err(|e| {
        Refusal::generic(mechanism, format!("invalid client-first message (e={e})"))
    })?;
    if first.token_auth {
        // Delegation tokens (KIP-48) are not simulated: no token matches.
        return Err(Refusal::generic(
            mechanism,
            "delegation token authentication is not supported by the mock (e=unknown-user)",
        ));
    }
    let credential = users
        .iter()
        .find_map(|u| match &u.secret {
            Secret::Scram(c) if u.mechanism == mechanism && u.username == first.username => {
                Some(c.clone())
            }
            _ => None,
        })
        .ok_or_else(|| {
            Refusal::generic(
                mechanism,
                format!(
                    "no {mechanism} credential for user {} (e=unknown-user)",
                    printable(&first.username)
                ),
            )
        })?;
    if !first.authzid.is_empty() && first.authzid != first.username {
        return Err(Refusal::told(
            "Authentication failed: Client requested an authorization id that is different from username",
        ));
    }
    let nonce = format!("{}{server_nonce}", first.nonce);
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    Ok(ScramPending {
        mechanism,
        credential,
        username: first.username,
        gs2_header: first.gs2_header.to_string(),
        client_first_bare: first.bare.to_string(),
        server_first,
        nonce,
    })
}

/// The client-final message, parsed.
#[derive(Debug, PartialEq, Eq)]
struct ClientFinal<'a> {
    /// `c=`, base64-decoded.
    channel_binding: Vec<u8>,
    nonce: &'a str,
    /// Everything before `,p=` (part of the AuthMessage).
    without_proof: &'a str,
    /// `p=`, base64-decoded.
    proof: Vec<u8>,
}

/// Parses `c=<base64>,r=<nonce>[,<ext>=<value>]*,p=<base64>` (RFC 5802
/// section 7; Kafka's `ClientFinalMessage`). `Err` names the RFC 5802
/// server-error-value.
fn parse_client_final(token: &[u8]) -> Result<ClientFinal<'_>, &'static str> {
    let text = scram_text(token).ok_or("invalid-encoding")?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or("invalid-proof")?;
    let proof = BASE64.decode(proof).map_err(|_| "invalid-proof")?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or("other-error")?;
    let channel_binding = BASE64
        .decode(channel_binding)
        .map_err(|_| "channel-bindings-dont-match")?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| is_nonce(n))
        .ok_or("other-error")?;
    for attr in attrs {
        let (name, _) = split_attr(attr).ok_or("other-error")?;
        if name == "m" {
            return Err("extensions-not-supported");
        }
    }
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// client-final in, server-final out (`ScramSaslServer`,
/// RECEIVE_CLIENT_FINAL_MESSAGE; RFC 5802 section 3): the channel binding
/// and nonce must be what was agreed, then
/// `H(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey`, and the
/// answer is `v=base64(HMAC(ServerKey, AuthMessage))`.
fn scram_final(pending: &ScramPending, token: &[u8]) -> Result<Vec<u8>, Refusal> {
    match pending.mechanism {
        Mechanism::ScramSha256 => scram_final_with::<Sha256>(pending, token),
        Mechanism::ScramSha512 => scram_final_with::<Sha512>(pending, token),
        Mechanism::Plain => Err(Refusal::told("PLAIN has no client-final message")),
    }
}

fn scram_final_with<D: EagerHash>(
    pending: &ScramPending,
    token: &[u8],
) -> Result<Vec<u8>, Refusal> {
    let m = pending.mechanism;
    let fail = |e: &str| Refusal::generic(m, format!("invalid client-final message (e={e})"));
    let last = parse_client_final(token).map_err(fail)?;
    if last.channel_binding != pending.gs2_header.as_bytes() {
        return Err(fail("channel-bindings-dont-match"));
    }
    if last.nonce != pending.nonce {
        // "Invalid client nonce in the final client message."
        return Err(fail("other-error"));
    }
    let auth_message = format!(
        "{},{},{}",
        pending.client_first_bare, pending.server_first, last.without_proof
    );
    let c = &pending.credential;
    let client_signature = hmac::<D>(&c.stored_key, &[auth_message.as_bytes()]);
    if last.proof.len() != client_signature.len() {
        return Err(fail("invalid-proof"));
    }
    let client_key: Vec<u8> = last
        .proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    if !constant_time_eq(&D::digest(&client_key), &c.stored_key) {
        return Err(Refusal::generic(
            m,
            format!(
                "wrong password for user {} (e=invalid-proof)",
                printable(&pending.username)
            ),
        ));
    }
    let server_signature = hmac::<D>(&c.server_key, &[auth_message.as_bytes()]);
    Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
}

/// A client-supplied string for a log line: at most 64 characters,
/// control characters escaped.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(char::escape_debug).collect();
    if s.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

/// The request log's summary of a SASL request; never the auth bytes (a
/// PLAIN token holds the password).
pub(crate) trait SaslSummary {
    fn summary(&self) -> String;
}

impl SaslSummary for SaslHandshakeRequest {
    fn summary(&self) -> String {
        format!("mechanism={}", printable(&self.mechanism))
    }
}

impl SaslSummary for SaslAuthenticateRequest {
    fn summary(&self) -> String {
        format!("auth_bytes={}B", self.auth_bytes.len())
    }
}

/// `mechanism=SCRAM-SHA-256` or `auth_bytes=42B`.
pub(crate) fn summary<T: SaslSummary>(req: &T) -> String {
    req.summary()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The test users, derived once (PBKDF2 is slow in test builds).
    fn users() -> &'static [User] {
        static USERS: std::sync::OnceLock<Vec<User>> = std::sync::OnceLock::new();
        USERS.get_or_init(|| {
            vec![
                User::new(Mechanism::Plain, "pat", "plain-pw"),
                User::new(Mechanism::ScramSha256, "alice", "secret"),
                User::new(Mechanism::ScramSha512, "a,b=c", "pässwörd"),
            ]
        })
    }

    /// A client exchange from RFC 5802 section 3, written here (not the
    /// skotch client): the client-final message for `password`.
    fn client_final<D: EagerHash>(
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        gs2: &str,
    ) -> String {
        let mut parts = server_first.split(',');
        let nonce = &parts.next().unwrap()[2..];
        let salt = BASE64.decode(&parts.next().unwrap()[2..]).unwrap();
        let iterations: u32 = parts.next().unwrap()[2..].parse().unwrap();
        let mut salted = vec![0u8; <D as Digest>::output_size()];
        pbkdf2::pbkdf2_hmac::<D>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac::<D>(&salted, &[b"Client Key"]);
        let stored_key = D::digest(&client_key).to_vec();
        let without_proof = format!("c={},r={nonce}", BASE64.encode(gs2));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = hmac::<D>(&stored_key, &[auth.as_bytes()]);
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", BASE64.encode(proof))
    }

    #[test]
    fn scram_sha256_round_trip_and_server_signature() {
        let users = users();
        let first = b"n,,n=alice,r=clientnonce";
        let pending = scram_first(users, Mechanism::ScramSha256, first, "SN".into()).unwrap();
        assert!(pending.server_first.starts_with("r=clientnonceSN,s="));
        assert!(pending.server_first.ends_with(",i=4096"));
        let last = client_final::<Sha256>(
            "secret",
            "n=alice,r=clientnonce",
            &pending.server_first,
            "n,,",
        );
        let server_final = scram_final(&pending, last.as_bytes()).unwrap();
        // v= is HMAC(ServerKey, AuthMessage) from the password.
        let c = credential::<Sha256>(Mechanism::ScramSha256, "alice", "secret");
        let auth = format!(
            "n=alice,r=clientnonce,{},{}",
            pending.server_first,
            last.rsplit_once(",p=").unwrap().0
        );
        let expected = format!(
            "v={}",
            BASE64.encode(hmac::<Sha256>(&c.server_key, &[auth.as_bytes()]))
        );
        assert_eq!(String::from_utf8(server_final).unwrap(), expected);
    }

    #[test]
    fn scram_sha512_escaped_username_and_authzid() {
        let users = users();
        let bare = "n=a=2Cb=3Dc,r=xyz";
        let gs2 = "n,a=a=2Cb=3Dc,";
        let first = format!("{gs2}{bare}");
        let pending =
            scram_first(users, Mechanism::ScramSha512, first.as_bytes(), "S".into()).unwrap();
        assert_eq!(pending.username, "a,b=c");
        let last = client_final::<Sha512>("pässwörd", bare, &pending.server_first, gs2);
        assert!(scram_final(&pending, last.as_bytes()).is_ok());
        // The channel binding must be the client's GS2 header.
        let wrong_cb = client_final::<Sha512>("pässwörd", bare, &pending.server_first, "n,,");
        let e = scram_final(&pending, wrong_cb.as_bytes()).unwrap_err();
        assert!(e.reason.contains("channel-bindings-dont-match"), "{e:?}");
    }

    #[test]
    fn scram_refusals() {
        let users = users();
        let generic = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256";
        // Unknown user, or a user of another mechanism.
        for first in [&b"n,,n=bob,r=x"[..], b"n,,n=pat,r=x", b"n,,n=a=2Cb=3Dc,r=x"] {
            let e = scram_first(users, Mechanism::ScramSha256, first, "S".into()).unwrap_err();
            assert_eq!(e.message, generic);
            assert!(e.reason.contains("e=unknown-user"), "{e:?}");
        }
        // Another authorization id.
        let e = scram_first(
            users,
            Mechanism::ScramSha256,
            b"n,a=bob,n=alice,r=x",
            "S".into(),
        )
        .unwrap_err();
        assert_eq!(e.message, "Authentication failed: Client requested an authorization id that is different from username");
        // Grammar.
        for bad in [
            &b""[..],
            b"y,,n=alice,r=x",
            b"p=tls-unique,,n=alice,r=x",
            b"n,,m=ext,n=alice,r=x",
            b"n,,n=alice",
            b"n,,n=alice,r=",
            b"n,,n=al=ice,r=x",
            b"n,,n=alice,r=x,=y",
            b"n,,n=\xff,r=x",
            b"n,,n=alice,r=x\0",
            b"n,x,n=alice,r=x",
            b"n,,r=x,n=alice",
        ] {
            let e = scram_first(users, Mechanism::ScramSha256, bad, "S".into()).unwrap_err();
            assert_eq!(e.message, generic, "{:?}", String::from_utf8_lossy(bad));
        }
        // Wrong password, wrong nonce, mangled proof.
        let pending = scram_first(
            users,
            Mechanism::ScramSha256,
            b"n,,n=alice,r=cn",
            "S".into(),
        )
        .unwrap();
        let wrong = client_final::<Sha256>("nope", "n=alice,r=cn", &pending.server_first, "n,,");
        let e = scram_final(&pending, wrong.as_bytes()).unwrap_err();
        assert_eq!(e.message, generic);
        assert!(e.reason.contains("e=invalid-proof"), "{e:?}");
        let e = scram_final(&pending, b"c=biws,r=cnX,p=AAAA").unwrap_err();
        assert!(e.reason.contains("e=other-error"), "{e:?}");
        let e = scram_final(&pending, b"c=biws,r=cnS,p=AAAA").unwrap_err();
        assert!(e.reason.contains("e=invalid-proof"), "{e:?}");
        let e = scram_final(&pending, b"c=biws,r=cnS,p=!!").unwrap_err();
        assert!(e.reason.contains("e=invalid-proof"), "{e:?}");
    }

    #[test]
    fn plain_as_java() {
        let users = users();
        assert_eq!(plain(users, b"\0pat\0plain-pw"), Ok("pat".into()));
        assert_eq!(plain(users, b"pat\0pat\0plain-pw"), Ok("pat".into()));
        let told = |m: &str| Err(Refusal::told(m));
        assert_eq!(
            plain(users, b"\0pat\0wrong"),
            told("Authentication failed: Invalid username or password")
        );
        assert_eq!(
            plain(users, b"\0nobody\0plain-pw"),
            told("Authentication failed: Invalid username or password")
        );
        // alice is a SCRAM user: not a PLAIN one.
        assert_eq!(
            plain(users, b"\0alice\0secret"),
            told("Authentication failed: Invalid username or password")
        );
        assert_eq!(plain(users, b"bob\0pat\0plain-pw"), told("Authentication failed: Client requested an authorization id that is different from username"));
        assert_eq!(
            plain(users, b"\0\0pw"),
            told("Authentication failed: username not specified")
        );
        assert_eq!(
            plain(users, b"\0pat\0"),
            told("Authentication failed: password not specified")
        );
        assert_eq!(
            plain(users, b"pat"),
            told("Invalid SASL/PLAIN response: expected 3 tokens, got 1")
        );
        assert_eq!(
            plain(users, b""),
            told("Invalid SASL/PLAIN response: expected 3 tokens, got 1")
        );
        assert_eq!(
            plain(users, b"\0pat"),
            told("Invalid SASL/PLAIN response: expected 3 tokens, got 2")
        );
        assert_eq!(
            plain(users, b"\0pat\0pw\0x\0y"),
            told("Invalid SASL/PLAIN response: expected 3 tokens, got 4")
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        for u in users() {
            let d = format!("{u:?}");
            assert!(
                !d.contains("secret") && !d.contains("plain-pw") && !d.contains("pässwörd"),
                "{d}"
            );
        }
        assert_eq!(
            summary(&SaslAuthenticateRequest {
                auth_bytes: Bytes::from_static(b"\0pat\0plain-pw")
            }),
            "auth_bytes=13B"
        );
    }

    #[test]
    fn server_nonces_are_printable_and_distinct() {
        let a = next_server_nonce();
        let b = next_server_nonce();
        assert_ne!(a, b);
        assert!(is_nonce(&a) && is_nonce(&b));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Hostile tokens never panic a parser or a step, and never
        /// authenticate.
        #[test]
        fn hostile_tokens_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let users = users();
            let _ = parse_client_first(&bytes);
            let _ = parse_client_final(&bytes);
            let _ = unescape_saslname(&String::from_utf8_lossy(&bytes));
            prop_assert!(plain(users, &bytes).is_err() || bytes.ends_with(b"plain-pw"));
            let _ = scram_first(users, Mechanism::ScramSha256, &bytes, "S".into());
            let pending = scram_first(users, Mechanism::ScramSha256, b"n,,n=alice,r=c", "S".into()).unwrap();
            prop_assert!(scram_final(&pending, &bytes).is_err());
        }

        /// Attribute-shaped text gets further into the grammar.
        #[test]
        fn attribute_soup_never_panics(s in "(n,|y,|a=|[nrcpm]=|=2C|=3D|=|,|[ -~]{0,6}|é){0,14}") {
            let users = users();
            let _ = parse_client_first(s.as_bytes());
            let _ = parse_client_final(s.as_bytes());
            let _ = unescape_saslname(&s);
            let _ = scram_first(users, Mechanism::ScramSha256, s.as_bytes(), "S".into());
            let pending = scram_first(users, Mechanism::ScramSha256, b"n,,n=alice,r=c", "S".into()).unwrap();
            prop_assert!(scram_final(&pending, s.as_bytes()).is_err());
        }
    }
}
