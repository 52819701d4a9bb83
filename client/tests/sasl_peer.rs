//! SASL authentication against a scripted broker on 127.0.0.1: a real SCRAM
//! server (computed here from a known password, salt and iteration count),
//! and brokers that forge the nonce, sign wrongly, ask for too few
//! iterations, send garbage, refuse the mechanism, refuse the credentials or
//! go silent. Each must end in the exact error kind, quickly, without a
//! panic, and without the password in any error text.
//!
//! The fake broker answers ApiVersions, SaslHandshake, SaslAuthenticate and
//! Metadata; what it says to each SaslAuthenticate is a closure per test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use hmac::digest::Digest;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use skotch_client::conn::{ConnectOptions, Connection};
use skotch_client::security::Security;
use skotch_client::{AuthFailure, Error, SaslConfig, SaslMechanism, SecurityProtocol};
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::api_versions_response::ApiVersion;
use skotch_protocol::messages::{
    request_header_version, response_header_version, ApiKey, ApiVersionsRequest,
    ApiVersionsResponse, Message, MetadataRequest, MetadataResponse, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use skotch_protocol::{Reader, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const USER: &str = "alice";
/// Distinctive, so a leak into any error text is easy to spot.
const PASSWORD: &str = "pencil-Zq7-s3cret";
const SALT: &[u8] = b"kafka-salt-0123456789";
/// Kafka's minimum (and the client's).
const ITERATIONS: u32 = 4096;
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

/// Every failing connect must end well within this.
const QUICK: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// The scripted broker
// ---------------------------------------------------------------------------

/// How the fake answers SaslHandshake.
#[derive(Clone)]
enum Handshake {
    /// Error 0: the mechanism is enabled.
    Accept,
    /// UNSUPPORTED_SASL_MECHANISM, listing these mechanisms.
    Refuse(Vec<String>),
}

/// What the fake does with one SaslAuthenticate request.
enum Answer {
    Reply(SaslAuthenticateResponse),
    /// Read the request and never answer it.
    Silent,
}

/// Success with `auth_bytes`.
fn ok(auth_bytes: impl Into<Vec<u8>>) -> Answer {
    Answer::Reply(SaslAuthenticateResponse {
        auth_bytes: Bytes::from(auth_bytes.into()),
        ..Default::default()
    })
}

/// SASL_AUTHENTICATION_FAILED (58) with `message`, as Kafka sends it.
fn refused(message: &str) -> Answer {
    Answer::Reply(SaslAuthenticateResponse {
        error_code: ErrorCode::SASL_AUTHENTICATION_FAILED.0,
        error_message: Some(message.to_string()),
        ..Default::default()
    })
}

/// One request the fake read: its API key, when, and for SaslHandshake the
/// mechanism asked for.
#[derive(Debug, Clone)]
struct Seen {
    key: ApiKey,
    at: Instant,
    mechanism: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

struct Fake {
    port: u16,
    log: Log,
    /// Ends when the client hangs up; `Err` if the fake met something it
    /// could not parse.
    task: JoinHandle<Result<(), String>>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, key: ApiKey) -> usize {
        self.seen().iter().filter(|s| s.key == key).count()
    }

    /// The client must hang up after a failed connect: the fake then sees
    /// end of stream and finishes without error.
    async fn expect_hang_up(self) {
        match tokio::time::timeout(QUICK, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("fake broker failed: {e}"),
            Ok(Err(e)) => panic!("fake broker panicked: {e}"),
            Err(_) => panic!("the client kept the connection open after a failed connect"),
        }
    }
}

/// Start a fake broker for one connection. `on_auth(round, auth_bytes)` is
/// called for each SaslAuthenticate; `round` counts from 0 and restarts at
/// every SaslHandshake (so a re-authentication starts again at 0).
async fn fake<F>(handshake: Handshake, on_auth: F) -> Fake
where
    F: FnMut(usize, &[u8]) -> Answer + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Log::default();
    let task = tokio::spawn(serve(listener, handshake, on_auth, log.clone()));
    Fake { port, log, task }
}

async fn serve<F>(
    listener: TcpListener,
    handshake: Handshake,
    mut on_auth: F,
    log: Log,
) -> Result<(), String>
where
    F: FnMut(usize, &[u8]) -> Answer,
{
    let (mut s, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let mut round = 0;
    while let Some((key, version, correlation_id, mut body)) = read_request(&mut s).await? {
        let mut seen = Seen {
            key,
            at: Instant::now(),
            mechanism: None,
        };
        let d = |e: skotch_protocol::DecodeError| format!("{key:?} v{version}: {e}");
        let mut out = BytesMut::new();
        match key {
            ApiKey::ApiVersions => {
                ApiVersionsRequest::decode(&mut body, version).map_err(d)?;
                api_versions()
                    .encode(&mut out, version)
                    .map_err(|e| e.to_string())?;
            }
            ApiKey::SaslHandshake => {
                let req = SaslHandshakeRequest::decode(&mut body, version).map_err(d)?;
                seen.mechanism = Some(req.mechanism);
                round = 0;
                let resp = match &handshake {
                    Handshake::Accept => SaslHandshakeResponse {
                        error_code: 0,
                        mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
                    },
                    Handshake::Refuse(offered) => SaslHandshakeResponse {
                        error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM.0,
                        mechanisms: offered.clone(),
                    },
                };
                resp.encode(&mut out, version).map_err(|e| e.to_string())?;
            }
            ApiKey::SaslAuthenticate => {
                let req = SaslAuthenticateRequest::decode(&mut body, version).map_err(d)?;
                let answer = on_auth(round, &req.auth_bytes);
                round += 1;
                match answer {
                    Answer::Reply(resp) => {
                        resp.encode(&mut out, version).map_err(|e| e.to_string())?
                    }
                    Answer::Silent => {
                        log.lock().unwrap().push(seen);
                        continue;
                    }
                }
            }
            ApiKey::Metadata => {
                MetadataRequest::decode(&mut body, version).map_err(d)?;
                MetadataResponse::default()
                    .encode(&mut out, version)
                    .map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unexpected request {other:?}")),
        }
        log.lock().unwrap().push(seen);
        write_response(&mut s, key, version, correlation_id, &out).await?;
    }
    Ok(())
}

/// What the fake advertises in ApiVersions.
fn api_versions() -> ApiVersionsResponse {
    let range = |key: ApiKey, max_version| ApiVersion {
        api_key: key as i16,
        min_version: 0,
        max_version,
    };
    ApiVersionsResponse {
        api_keys: vec![
            range(ApiKey::Metadata, 12),
            range(ApiKey::SaslHandshake, 1),
            range(ApiKey::ApiVersions, 4),
            range(ApiKey::SaslAuthenticate, 2),
        ],
        ..Default::default()
    }
}

/// Read one request frame and its header; `None` at end of stream. Returns
/// the body positioned after the header.
async fn read_request(s: &mut TcpStream) -> Result<Option<(ApiKey, i16, i32, Reader)>, String> {
    let size = match s.read_i32().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        // The client aborting its tasks may reset the socket.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let size = usize::try_from(size)
        .ok()
        .filter(|n| *n <= 1 << 20)
        .ok_or(format!("bad request size {size}"))?;
    let mut frame = vec![0u8; size];
    s.read_exact(&mut frame).await.map_err(|e| e.to_string())?;
    let mut r = Reader::new(Bytes::from(frame));
    let header = |e: skotch_protocol::DecodeError| format!("request header: {e}");
    let key = r.i16("api_key").map_err(header)?;
    let key = ApiKey::from_i16(key).ok_or(format!("unknown api key {key}"))?;
    let version = r.i16("api_version").map_err(header)?;
    let correlation_id = r.i32("correlation_id").map_err(header)?;
    // client_id is a non-compact string even in header v2.
    r.nullable_string(false, "client_id").map_err(header)?;
    if request_header_version(key, version) >= 2 {
        r.tagged_fields("tagged_fields").map_err(header)?;
    }
    Ok(Some((key, version, correlation_id, r)))
}

async fn write_response(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &[u8],
) -> Result<(), String> {
    let mut header = BytesMut::new();
    header.put_i32(correlation_id);
    if response_header_version(key, version) >= 1 {
        header.put_uvarint(0); // no tagged fields
    }
    let mut frame = BytesMut::new();
    frame.put_i32((header.len() + body.len()) as i32);
    frame.extend_from_slice(&header);
    frame.extend_from_slice(body);
    s.write_all(&frame).await.map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// SCRAM, server side (RFC 5802 section 3), for SCRAM-SHA-256
// ---------------------------------------------------------------------------

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac_d::<sha2::Sha256>(key, data)
}

fn hmac_d<D: EagerHash>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// A SCRAM-SHA-256 server holding `PASSWORD`'s credential, for one
/// conversation at a time.
#[derive(Default)]
struct Scram {
    /// client-first-message-bare and server-first-message, once sent.
    first: Option<(String, String)>,
}

/// The client nonce from client-first `n,,n=<user>,r=<nonce>`.
fn client_nonce(client_first: &[u8]) -> String {
    let text = std::str::from_utf8(client_first).unwrap();
    let bare = text.strip_prefix("n,,").expect("gs2 header n,,");
    assert_eq!(bare.split(',').next(), Some(&*format!("n={USER}")));
    bare.rsplit_once(",r=").expect("r=").1.to_string()
}

impl Scram {
    /// The honest server-first.
    fn server_first(&mut self, client_first: &[u8]) -> String {
        let nonce = format!("{}{SERVER_NONCE}", client_nonce(client_first));
        self.server_first_with(client_first, &nonce, ITERATIONS)
    }

    /// A server-first with any nonce and iteration count.
    fn server_first_with(&mut self, client_first: &[u8], nonce: &str, iterations: u32) -> String {
        let bare = std::str::from_utf8(client_first).unwrap()[3..].to_string();
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(SALT));
        self.first = Some((bare, server_first.clone()));
        server_first
    }

    /// Checks the client's proof (so the happy path also proves the client
    /// computes it right) and returns the ServerSignature, or `Err` naming
    /// what was wrong.
    fn server_signature(&mut self, client_final: &[u8]) -> Result<Vec<u8>, String> {
        let (bare, server_first) = self.first.take().ok_or("no client-first yet")?;
        let text = std::str::from_utf8(client_final).map_err(|e| e.to_string())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("no p=")?;
        let nonce = server_first.split(',').next().ok_or("no nonce")?;
        if without_proof != format!("c=biws,{nonce}") {
            return Err(format!("unexpected client-final {without_proof}"));
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(PASSWORD.as_bytes(), SALT, ITERATIONS, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = sha2::Sha256::digest(&client_key).to_vec();
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof = BASE64.decode(proof).map_err(|e| e.to_string())?;
        let recovered: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if proof.len() != client_key.len() || recovered != client_key {
            return Err("the client's proof is wrong".into());
        }
        let server_key = hmac(&salted, b"Server Key");
        Ok(hmac(&server_key, auth_message.as_bytes()))
    }

    /// The honest server-final `v=<ServerSignature>`.
    fn server_final(&mut self, client_final: &[u8]) -> String {
        let signature = self.server_signature(client_final).unwrap();
        format!("v={}", BASE64.encode(signature))
    }
}

// ---------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------

fn opts(mechanism: SaslMechanism) -> ConnectOptions {
    ConnectOptions {
        client_id: "sasl-test".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_response_size: 1024 * 1024,
        security: Security {
            protocol: SecurityProtocol::SaslPlaintext,
            tls: None,
            sasl: Some(SaslConfig::new(mechanism, USER, PASSWORD)),
        },
    }
}

/// The password must not show in an error, however it is printed.
fn assert_no_password(e: &Error) {
    let shown = format!("{e}");
    let debug = format!("{e:?}");
    assert!(!shown.contains(PASSWORD), "password in Display: {shown}");
    assert!(!debug.contains(PASSWORD), "password in Debug: {debug}");
}

/// Connect to `fake`, expecting failure within `within`.
async fn connect_err(fake: &Fake, opts: ConnectOptions, within: Duration) -> Error {
    let started = Instant::now();
    let result = tokio::time::timeout(
        within + Duration::from_secs(2),
        Connection::connect("127.0.0.1", fake.port, opts),
    )
    .await
    .expect("connect hung");
    let elapsed = started.elapsed();
    let e = result.expect_err("connect should fail");
    assert!(elapsed < within, "connect took {elapsed:?}: {e}");
    assert_no_password(&e);
    e
}

/// The [`AuthFailure`] of an [`Error::Authentication`].
fn auth_kind(e: &Error) -> AuthFailure {
    match e {
        Error::Authentication {
            kind,
            username,
            mechanism,
            ..
        } => {
            assert_eq!(username, USER, "{e}");
            assert!(!mechanism.is_empty(), "{e}");
            assert!(e.is_security() && !e.is_retriable(), "{e}");
            *kind
        }
        other => panic!("expected Error::Authentication, got {other:?}"),
    }
}

/// An honest SCRAM-SHA-256 broker, with `session_lifetime_ms` in its final
/// SaslAuthenticate response.
fn honest(session_lifetime_ms: i64) -> impl FnMut(usize, &[u8]) -> Answer + Send + 'static {
    let mut scram = Scram::default();
    move |round, bytes| match round {
        0 => ok(scram.server_first(bytes)),
        1 => Answer::Reply(SaslAuthenticateResponse {
            auth_bytes: Bytes::from(scram.server_final(bytes)),
            session_lifetime_ms,
            ..Default::default()
        }),
        _ => refused("too many rounds"),
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

#[tokio::test]
async fn scram_sha_256_happy_path() {
    let fake = fake(Handshake::Accept, honest(0)).await;
    let conn = tokio::time::timeout(
        QUICK,
        Connection::connect("127.0.0.1", fake.port, opts(SaslMechanism::ScramSha256)),
    )
    .await
    .expect("connect hung")
    .unwrap();
    conn.send(&MetadataRequest::default()).await.unwrap();
    let seen = fake.seen();
    let keys: Vec<ApiKey> = seen.iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        [
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate,
            ApiKey::Metadata
        ]
    );
    assert_eq!(seen[1].mechanism.as_deref(), Some("SCRAM-SHA-256"));
    assert_eq!(conn.reauthentications(), 0);
    assert!(!format!("{conn:?}").contains(PASSWORD));
}

/// KIP-368: with a session lifetime of 1500 ms the client authenticates
/// again at 85-95 % of it, while Metadata requests from several tasks keep
/// succeeding (some of them wait for the re-authentication to finish).
#[tokio::test]
async fn scram_reauthenticates_before_the_session_expires() {
    let fake = fake(Handshake::Accept, honest(1500)).await;
    let conn = tokio::time::timeout(
        QUICK,
        Connection::connect("127.0.0.1", fake.port, opts(SaslMechanism::ScramSha256)),
    )
    .await
    .expect("connect hung")
    .unwrap();
    let conn = Arc::new(conn);

    // Each task sends Metadata requests until it has seen ten succeed after
    // the first re-authentication; returns how many it sent.
    let deadline = Instant::now() + Duration::from_secs(3);
    let senders: Vec<JoinHandle<usize>> = (0..3)
        .map(|task| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let (mut sent, mut after_reauth) = (0, 0);
                while after_reauth < 10 {
                    assert!(Instant::now() < deadline, "no re-authentication within 3 s");
                    conn.send(&MetadataRequest::default())
                        .await
                        .unwrap_or_else(|e| panic!("task {task}: Metadata {sent} failed: {e}"));
                    sent += 1;
                    if conn.reauthentications() >= 1 {
                        after_reauth += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                sent
            })
        })
        .collect();
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    assert!(!conn.is_closed());
    assert!(conn.reauthentications() >= 1);

    let seen = fake.seen();
    let handshakes: Vec<usize> = (0..seen.len())
        .filter(|i| seen[*i].key == ApiKey::SaslHandshake)
        .collect();
    assert!(handshakes.len() >= 2, "{seen:?}");
    assert!(handshakes
        .iter()
        .all(|i| seen[*i].mechanism.as_deref() == Some("SCRAM-SHA-256")));
    let first_auth = seen
        .iter()
        .find(|s| s.key == ApiKey::SaslAuthenticate)
        .unwrap();
    let second = handshakes[1];
    let gap = seen[second].at - first_auth.at;
    assert!(
        gap >= Duration::from_millis(1000) && gap <= Duration::from_millis(2000),
        "re-authentication {gap:?} after the first SaslAuthenticate"
    );
    // The re-authentication is a whole SCRAM exchange, with no request of
    // ours between its SaslHandshake and its last SaslAuthenticate...
    let keys: Vec<ApiKey> = seen[second..second + 3].iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        [
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::SaslAuthenticate
        ]
    );
    // ...and requests went on both sides of it.
    assert_eq!(seen[second - 1].key, ApiKey::Metadata);
    assert_eq!(seen[second + 3].key, ApiKey::Metadata);
    assert_eq!(fake.count(ApiKey::Metadata), sent);
}

#[tokio::test]
async fn wrong_server_signature_is_not_verified() {
    let mut scram = Scram::default();
    let fake = fake(Handshake::Accept, move |round, bytes| match round {
        0 => ok(scram.server_first(bytes)),
        _ => {
            let mut signature = scram.server_signature(bytes).unwrap();
            signature[0] ^= 0x01;
            ok(format!("v={}", BASE64.encode(signature)))
        }
    })
    .await;
    let e = connect_err(&fake, opts(SaslMechanism::ScramSha256), QUICK).await;
    assert_eq!(auth_kind(&e), AuthFailure::BrokerNotVerified, "{e}");
    fake.expect_hang_up().await;
}

#[tokio::test]
async fn nonce_that_does_not_extend_the_clients_is_not_verified() {
    // A forged nonce, and one that is the client's own without extension.
    for forge in [
        (|_: &str| "forged-nonce-0123456789".to_string()) as fn(&str) -> String,
        |client: &str| client.to_string(),
        |client: &str| format!("x{client}{SERVER_NONCE}"),
    ] {
        let mut scram = Scram::default();
        let fake = fake(Handshake::Accept, move |_, bytes| {
            let nonce = forge(&client_nonce(bytes));
            ok(scram.server_first_with(bytes, &nonce, ITERATIONS))
        })
        .await;
        let e = connect_err(&fake, opts(SaslMechanism::ScramSha256), QUICK).await;
        assert_eq!(auth_kind(&e), AuthFailure::BrokerNotVerified, "{e}");
        assert_eq!(fake.count(ApiKey::SaslAuthenticate), 1);
        fake.expect_hang_up().await;
    }
}

#[tokio::test]
async fn too_few_iterations_is_a_protocol_error() {
    let mut scram = Scram::default();
    let fake = fake(Handshake::Accept, move |_, bytes| {
        let nonce = format!("{}{SERVER_NONCE}", client_nonce(bytes));
        ok(scram.server_first_with(bytes, &nonce, 100))
    })
    .await;
    let e = connect_err(&fake, opts(SaslMechanism::ScramSha256), QUICK).await;
    assert_eq!(auth_kind(&e), AuthFailure::Protocol, "{e}");
    assert!(e.to_string().contains("100"), "{e}");
    assert_eq!(fake.count(ApiKey::SaslAuthenticate), 1);
    fake.expect_hang_up().await;
}

#[tokio::test]
async fn garbage_server_first_is_a_protocol_error() {
    for garbage in [
        &[0xff, 0xfe, 0x00, 0x80, 0xc3][..],
        b"",
        b"r=,s=,i=",
        b"hello broker",
    ] {
        let fake = fake(Handshake::Accept, move |_, _| ok(garbage)).await;
        let e = connect_err(&fake, opts(SaslMechanism::ScramSha256), QUICK).await;
        assert_eq!(auth_kind(&e), AuthFailure::Protocol, "{garbage:?}: {e}");
        fake.expect_hang_up().await;
    }
}

#[tokio::test]
async fn mechanism_not_enabled_lists_what_the_broker_offers() {
    let offered = vec!["GSSAPI".to_string(), "OAUTHBEARER".to_string()];
    let fake = fake(Handshake::Refuse(offered.clone()), |_, _| {
        refused("SaslAuthenticate after a refused handshake")
    })
    .await;
    let e = connect_err(&fake, opts(SaslMechanism::ScramSha256), QUICK).await;
    match &e {
        Error::SaslMechanismNotEnabled {
            offered: got,
            wanted,
            ..
        } => {
            assert_eq!(got, &offered);
            assert_eq!(wanted, "SCRAM-SHA-256");
        }
        other => panic!("expected SaslMechanismNotEnabled, got {other:?}"),
    }
    assert!(e.is_security());
    let shown = e.to_string();
    assert!(shown.contains("GSSAPI, OAUTHBEARER"), "{shown}");
    assert!(shown.contains("SCRAM-SHA-256"), "{shown}");
    assert_eq!(fake.count(ApiKey::SaslAuthenticate), 0);
    fake.expect_hang_up().await;
}

/// Kafka answers an unknown user and a wrong password alike (error 58); the
/// round it refuses tells them apart.
#[tokio::test]
async fn refused_credentials_are_named_by_round() {
    const MESSAGE: &str = "Authentication failed during authentication due to invalid \
                           credentials with SASL mechanism SCRAM-SHA-256";

    // First round: the broker has no credential for the username.
    let fake1 = fake(Handshake::Accept, |_, _| refused(MESSAGE)).await;
    let e = connect_err(&fake1, opts(SaslMechanism::ScramSha256), QUICK).await;
    assert_eq!(auth_kind(&e), AuthFailure::UnknownUser, "{e}");
    assert!(e.to_string().contains(MESSAGE), "{e}");
    fake1.expect_hang_up().await;

    // Second round: the proof of the password is wrong.
    let mut scram = Scram::default();
    let fake2 = fake(Handshake::Accept, move |round, bytes| match round {
        0 => ok(scram.server_first(bytes)),
        _ => refused(MESSAGE),
    })
    .await;
    let e = connect_err(&fake2, opts(SaslMechanism::ScramSha256), QUICK).await;
    assert_eq!(auth_kind(&e), AuthFailure::WrongPassword, "{e}");
    assert!(e.to_string().contains(MESSAGE), "{e}");
    fake2.expect_hang_up().await;

    // PLAIN has one round, so it cannot tell.
    let fake3 = fake(Handshake::Accept, |_, bytes| {
        // PLAIN's message carries the password: the broker gets it, the
        // error must not.
        assert_eq!(bytes, format!("\0{USER}\0{PASSWORD}").as_bytes());
        refused("Authentication failed: Invalid username or password")
    })
    .await;
    let e = connect_err(&fake3, opts(SaslMechanism::Plain), QUICK).await;
    assert_eq!(auth_kind(&e), AuthFailure::InvalidCredentials, "{e}");
    assert_eq!(fake3.seen()[1].mechanism.as_deref(), Some("PLAIN"));
    fake3.expect_hang_up().await;

    // Without a message the error code's description stands in.
    let fake4 = fake(Handshake::Accept, |_, _| {
        Answer::Reply(SaslAuthenticateResponse {
            error_code: ErrorCode::SASL_AUTHENTICATION_FAILED.0,
            error_message: None,
            ..Default::default()
        })
    })
    .await;
    let e = connect_err(&fake4, opts(SaslMechanism::ScramSha256), QUICK).await;
    assert_eq!(auth_kind(&e), AuthFailure::UnknownUser, "{e}");
    fake4.expect_hang_up().await;
}

#[tokio::test]
async fn plain_happy_path() {
    let fake = fake(Handshake::Accept, |_, _| ok(Vec::new())).await;
    let conn = tokio::time::timeout(
        QUICK,
        Connection::connect("127.0.0.1", fake.port, opts(SaslMechanism::Plain)),
    )
    .await
    .expect("connect hung")
    .unwrap();
    conn.send(&MetadataRequest::default()).await.unwrap();
    assert_eq!(fake.count(ApiKey::SaslAuthenticate), 1);
}

#[tokio::test]
async fn silent_broker_fails_within_the_connect_timeout() {
    // connect_timeout (1 s) is what runs out: request_timeout is longer.
    let fake1 = fake(Handshake::Accept, |_, _| Answer::Silent).await;
    let mut o = opts(SaslMechanism::ScramSha256);
    o.connect_timeout = Duration::from_secs(1);
    let e = connect_err(&fake1, o, Duration::from_millis(1900)).await;
    match &e {
        Error::Connect { reason, .. } => assert!(reason.contains("timed out"), "{e}"),
        other => panic!("expected Error::Connect, got {other:?}"),
    }
    assert!(e.is_retriable(), "{e}");
    fake1.expect_hang_up().await;

    // Silent after server-first.
    let mut scram = Scram::default();
    let fake2 = fake(Handshake::Accept, move |round, bytes| match round {
        0 => ok(scram.server_first(bytes)),
        _ => Answer::Silent,
    })
    .await;
    let mut o = opts(SaslMechanism::ScramSha256);
    o.connect_timeout = Duration::from_secs(1);
    let e = connect_err(&fake2, o, Duration::from_millis(1900)).await;
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    fake2.expect_hang_up().await;

    // With a request timeout shorter than the connect timeout, the request
    // times out first.
    let fake3 = fake(Handshake::Accept, |_, _| Answer::Silent).await;
    let mut o = opts(SaslMechanism::ScramSha256);
    o.connect_timeout = Duration::from_secs(1);
    o.request_timeout = Duration::from_millis(300);
    let e = connect_err(&fake3, o, Duration::from_millis(900)).await;
    assert!(e.is_timeout(), "{e}");
    fake3.expect_hang_up().await;
}

/// RFC 5802 `e=` server-final values (Kafka itself uses error codes, other
/// implementations may send these).
#[tokio::test]
async fn server_final_errors() {
    for (value, kind) in [
        ("unknown-user", AuthFailure::UnknownUser),
        ("invalid-proof", AuthFailure::WrongPassword),
        ("other-error", AuthFailure::Protocol),
    ] {
        let mut scram = Scram::default();
        let fake = fake(Handshake::Accept, move |round, bytes| match round {
            0 => ok(scram.server_first(bytes)),
            _ => ok(format!("e={value}")),
        })
        .await;
        let e = connect_err(&fake, opts(SaslMechanism::ScramSha256), QUICK).await;
        assert_eq!(auth_kind(&e), kind, "e={value}: {e}");
        assert!(e.to_string().contains(value), "{e}");
        fake.expect_hang_up().await;
    }
}
