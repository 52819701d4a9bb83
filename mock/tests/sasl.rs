//! SASL on the mock (SASL_PLAINTEXT listeners): skotch's client
//! authenticates with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 and then
//! produces and reads; wrong credentials end in the client's
//! authentication errors, quickly; raw requests check the broker's
//! authenticator states (SaslServerAuthenticator) and the PLAINTEXT
//! answers (KafkaApis).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{api_versions, RawConn};
use skotch_client::{
    AuthFailure, Client, ClientConfig, Consumer, ConsumerConfig, Error, Offset, Producer,
    ProducerConfig, ProducerRecord, SaslConfig, SaslMechanism, SecurityProtocol,
};
use skotch_mock::{ApiKey, ErrorCode, Fault, MockCluster};
use skotch_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest};

/// Everything a test does finishes well within this.
const BOUND: Duration = Duration::from_secs(20);

async fn cluster(brokers: usize) -> MockCluster {
    MockCluster::builder()
        .brokers(brokers)
        .sasl_user(SaslMechanism::ScramSha256, "alice", "secret")
        .sasl_user(SaslMechanism::ScramSha512, "bob", "hunter2")
        .sasl_user(SaslMechanism::Plain, "carol", "plain-pw")
        .start()
        .await
        .expect("start")
}

fn config(cluster: &MockCluster, mechanism: SaslMechanism, user: &str, pw: &str) -> ClientConfig {
    ClientConfig::new(&cluster.bootstrap_servers())
        .unwrap()
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl(SaslConfig::new(mechanism, user, pw))
}

/// Produce one record and read it back, all over authenticated
/// connections.
async fn produce_and_read(cluster: &MockCluster, mechanism: SaslMechanism, user: &str, pw: &str) {
    let topic = format!("sasl-{}", mechanism.as_str().to_ascii_lowercase());
    cluster.create_topic(&topic, 1, 2).unwrap();
    let client = Client::connect(config(cluster, mechanism, user, pw))
        .await
        .expect("connect");
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let delivery = producer
        .send(ProducerRecord::new(topic.clone(), Bytes::from_static(b"hello")).key("k"))
        .await
        .expect("send");
    producer.flush().await.expect("flush");
    let md = delivery.await.expect("delivered");
    assert_eq!((md.partition, md.offset), (0, 0));
    assert_eq!(cluster.high_watermark(&topic, 0), Some(1));

    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer
        .assign_topic(&topic, Offset::Earliest)
        .await
        .expect("assign");
    let deadline = Instant::now() + BOUND;
    let record = loop {
        assert!(Instant::now() < deadline, "no record");
        if let Some(r) = consumer
            .poll()
            .await
            .expect("poll")
            .records
            .into_iter()
            .next()
        {
            break r;
        }
    };
    assert_eq!(record.value.as_deref(), Some(&b"hello"[..]));
    assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
    producer.close().await.expect("close");
    consumer.close();

    // Every connection authenticated first, with this mechanism.
    for b in cluster.broker_ids() {
        let log = cluster.request_log(b);
        let handshakes: Vec<_> = log
            .iter()
            .filter(|r| r.api() == Some(ApiKey::SaslHandshake))
            .collect();
        assert!(handshakes
            .iter()
            .all(|r| r.summary == format!("mechanism={mechanism}")));
        // The log never holds the auth bytes (PLAIN's carry the password).
        assert!(log.iter().all(|r| !r.summary.contains(pw)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_produces_and_reads() {
    let c = cluster(2).await;
    tokio::time::timeout(
        BOUND,
        produce_and_read(&c, SaslMechanism::Plain, "carol", "plain-pw"),
    )
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha256_produces_and_reads() {
    let c = cluster(2).await;
    tokio::time::timeout(
        BOUND,
        produce_and_read(&c, SaslMechanism::ScramSha256, "alice", "secret"),
    )
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha512_produces_and_reads() {
    let c = cluster(2).await;
    tokio::time::timeout(
        BOUND,
        produce_and_read(&c, SaslMechanism::ScramSha512, "bob", "hunter2"),
    )
    .await
    .expect("in time");
}

/// The client's error for a configuration that must fail, within a few
/// seconds, without the password in it.
async fn connect_err(config: ClientConfig, pw: &str) -> Error {
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, Client::connect(config))
        .await
        .expect("no hang")
        .expect_err("must fail");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(pw), "secret in error: {text}");
    }
    err
}

fn auth_failure(e: &Error) -> (AuthFailure, &str) {
    match e {
        Error::Authentication { kind, reason, .. } => (*kind, reason),
        e => panic!("not an authentication error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_the_clients_authentication_errors() {
    let c = cluster(1).await;
    let generic256 = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256";

    // SCRAM: a wrong password is refused at the proof (second round).
    let e = connect_err(
        config(&c, SaslMechanism::ScramSha256, "alice", "wrong-pw"),
        "wrong-pw",
    )
    .await;
    assert_eq!(
        auth_failure(&e),
        (AuthFailure::WrongPassword, generic256),
        "{e}"
    );

    // An unknown user at the first message; so is a user of another
    // mechanism (bob has a SCRAM-SHA-512 credential only).
    for user in ["mallory", "bob"] {
        let e = connect_err(
            config(&c, SaslMechanism::ScramSha256, user, "hunter2"),
            "hunter2",
        )
        .await;
        assert_eq!(
            auth_failure(&e),
            (AuthFailure::UnknownUser, generic256),
            "{e}"
        );
    }
    let e = connect_err(
        config(&c, SaslMechanism::ScramSha512, "bob", "wrong-pw"),
        "wrong-pw",
    )
    .await;
    assert_eq!(auth_failure(&e).0, AuthFailure::WrongPassword, "{e}");

    // PLAIN says which, in PlainSaslServer's words.
    for (user, pw) in [("carol", "wrong-pw"), ("mallory", "plain-pw")] {
        let e = connect_err(config(&c, SaslMechanism::Plain, user, pw), pw).await;
        assert_eq!(
            auth_failure(&e),
            (
                AuthFailure::InvalidCredentials,
                "Authentication failed: Invalid username or password"
            ),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mechanism_not_enabled_is_refused_with_the_enabled_list() {
    let c = MockCluster::builder()
        .sasl_user(SaslMechanism::ScramSha512, "bob", "hunter2")
        .sasl_user(SaslMechanism::Plain, "carol", "plain-pw")
        .start()
        .await
        .unwrap();
    let e = connect_err(
        config(&c, SaslMechanism::ScramSha256, "bob", "hunter2"),
        "hunter2",
    )
    .await;
    match &e {
        Error::SaslMechanismNotEnabled { offered, .. } => {
            assert_eq!(offered, &["SCRAM-SHA-512", "PLAIN"])
        }
        e => panic!("{e}"),
    }
}

#[tokio::test]
async fn requests_before_authentication_close_the_connection() {
    let c = cluster(1).await;
    let addr = c.broker_addr(0).unwrap();

    // Straight away.
    let mut conn = RawConn::connect(&addr).await;
    conn.send(&MetadataRequest::default(), 12).await;
    assert!(conn.closed().await, "Metadata before the handshake");

    // After ApiVersions (answered: KIP-35 before SASL).
    let mut conn = RawConn::connect(&addr).await;
    let versions = conn.call(&api_versions(), 3).await;
    assert_eq!(versions.error_code, 0);
    conn.send(&MetadataRequest::default(), 12).await;
    assert!(conn.closed().await, "Metadata after ApiVersions");

    // A second ApiVersions before the handshake.
    let mut conn = RawConn::connect(&addr).await;
    conn.call(&api_versions(), 3).await;
    conn.send(&api_versions(), 3).await;
    assert!(conn.closed().await, "second ApiVersions");

    // SaslAuthenticate without a handshake.
    let mut conn = RawConn::connect(&addr).await;
    conn.send(
        &SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(b"\0carol\0plain-pw"),
        },
        2,
    )
    .await;
    assert!(conn.closed().await, "SaslAuthenticate before the handshake");

    // During the exchange, anything but SaslAuthenticate.
    let mut conn = RawConn::connect(&addr).await;
    let hs = conn.call(&handshake("PLAIN"), 1).await;
    assert_eq!(hs.error_code, 0);
    assert_eq!(hs.mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]);
    conn.send(&MetadataRequest::default(), 12).await;
    assert!(conn.closed().await, "Metadata during the exchange");

    // Nothing of it reached the Metadata handler.
    assert!(c
        .request_log(0)
        .iter()
        .all(|r| r.api() != Some(ApiKey::Metadata)));
}

fn handshake(mechanism: &str) -> SaslHandshakeRequest {
    SaslHandshakeRequest {
        mechanism: mechanism.into(),
    }
}

fn authenticate(bytes: &'static [u8]) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest {
        auth_bytes: Bytes::from_static(bytes),
    }
}

#[tokio::test]
async fn raw_plain_exchange_then_served_as_plaintext() {
    let c = cluster(1).await;
    let addr = c.broker_addr(0).unwrap();
    let mut conn = RawConn::connect(&addr).await;
    conn.call(&api_versions(), 3).await;
    assert_eq!(conn.call(&handshake("PLAIN"), 1).await.error_code, 0);
    let ok = conn.call(&authenticate(b"carol\0carol\0plain-pw"), 2).await;
    assert_eq!(
        (ok.error_code, ok.error_message, &ok.auth_bytes[..]),
        (0, None, &b""[..])
    );
    assert_eq!(ok.session_lifetime_ms, 0, "no re-authentication");
    // Authenticated: requests are served; SASL requests are
    // ILLEGAL_SASL_STATE and the connection stays (KafkaApis).
    let md = conn.call(&MetadataRequest::default(), 12).await;
    assert_eq!(md.brokers.len(), 1);
    let hs = conn.call(&handshake("PLAIN"), 1).await;
    assert_eq!(hs.error_code, ErrorCode::ILLEGAL_SASL_STATE.code());
    let again = conn.call(&authenticate(b"\0carol\0plain-pw"), 2).await;
    assert_eq!(again.error_code, ErrorCode::ILLEGAL_SASL_STATE.code());
    assert_eq!(
        again.error_message.as_deref(),
        Some("SaslAuthenticate request received after successful authentication")
    );
    assert_eq!(
        conn.call(&MetadataRequest::default(), 12)
            .await
            .brokers
            .len(),
        1
    );
}

#[tokio::test]
async fn refusals_are_answered_then_the_connection_closes() {
    let c = cluster(1).await;
    let addr = c.broker_addr(0).unwrap();

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the list.
    let mut conn = RawConn::connect(&addr).await;
    let hs = conn.call(&handshake("GSSAPI"), 1).await;
    assert_eq!(hs.error_code, ErrorCode::UNSUPPORTED_SASL_MECHANISM.code());
    assert_eq!(hs.mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]);
    assert!(conn.closed().await);
    // Names are exact.
    let mut conn = RawConn::connect(&addr).await;
    let hs = conn.call(&handshake("plain"), 1).await;
    assert_eq!(hs.error_code, ErrorCode::UNSUPPORTED_SASL_MECHANISM.code());
    assert!(conn.closed().await);

    // A failed PLAIN: SASL_AUTHENTICATION_FAILED with Java's message.
    for (token, message) in [
        (&b"\0carol\0nope"[..], "Authentication failed: Invalid username or password"),
        (b"\0carol", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
        (b"dave\0carol\0plain-pw", "Authentication failed: Client requested an authorization id that is different from username"),
    ] {
        let mut conn = RawConn::connect(&addr).await;
        conn.call(&handshake("PLAIN"), 1).await;
        let r = conn
            .call(&SaslAuthenticateRequest { auth_bytes: Bytes::copy_from_slice(token) }, 1)
            .await;
        assert_eq!(r.error_code, ErrorCode::SASL_AUTHENTICATION_FAILED.code());
        assert_eq!(r.error_message.as_deref(), Some(message));
        assert!(conn.closed().await);
    }

    // A hostile SCRAM first message: the generic message, then closed.
    let mut conn = RawConn::connect(&addr).await;
    conn.call(&handshake("SCRAM-SHA-256"), 1).await;
    let r = conn.call(&authenticate(b"n,,n=al=ice,r=\xff"), 0).await;
    assert_eq!(r.error_code, ErrorCode::SASL_AUTHENTICATION_FAILED.code());
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
    );
    assert!(conn.closed().await);

    // SaslHandshake v0 (raw tokens after it) is not implemented.
    let mut conn = RawConn::connect(&addr).await;
    let hs = conn.call(&handshake("PLAIN"), 0).await;
    assert_eq!(hs.error_code, ErrorCode::UNSUPPORTED_VERSION.code());
    assert!(conn.closed().await);
}

#[tokio::test]
async fn raw_scram_first_message_gets_a_counter_nonce() {
    let c = cluster(1).await;
    let addr = c.broker_addr(0).unwrap();
    let mut conn = RawConn::connect(&addr).await;
    conn.call(&handshake("SCRAM-SHA-256"), 1).await;
    let r = conn
        .call(&authenticate(b"n,,n=alice,r=clientNonce"), 2)
        .await;
    assert_eq!(r.error_code, 0);
    let server_first = std::str::from_utf8(&r.auth_bytes).unwrap();
    assert!(
        server_first.starts_with("r=clientNonceskotchmock"),
        "{server_first}"
    );
    assert!(server_first.ends_with(",i=4096"), "{server_first}");
    assert_eq!(r.session_lifetime_ms, 0);
}

#[tokio::test]
async fn plaintext_listener_answers_sasl_with_illegal_state() {
    let c = MockCluster::start(1).await.unwrap();
    let mut conn = RawConn::connect(&c.broker_addr(0).unwrap()).await;
    let md = conn.call(&MetadataRequest::default(), 12).await;
    assert_eq!(md.brokers.len(), 1);
    let hs = conn.call(&handshake("PLAIN"), 1).await;
    assert_eq!(
        (hs.error_code, hs.mechanisms.len()),
        (ErrorCode::ILLEGAL_SASL_STATE.code(), 0)
    );
    let a = conn.call(&authenticate(b"\0carol\0plain-pw"), 2).await;
    assert_eq!(a.error_code, ErrorCode::ILLEGAL_SASL_STATE.code());
    // Still open.
    assert_eq!(
        conn.call(&MetadataRequest::default(), 12)
            .await
            .brokers
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_sasl_authentication_failure() {
    let c = cluster(1).await;
    c.inject(Fault::error(
        ApiKey::SaslAuthenticate,
        ErrorCode::SASL_AUTHENTICATION_FAILED,
    ))
    .unwrap();
    let e = connect_err(
        config(&c, SaslMechanism::ScramSha512, "bob", "hunter2"),
        "hunter2",
    )
    .await;
    assert_eq!(auth_failure(&e).0, AuthFailure::UnknownUser, "{e}");
    // Once: the next connection authenticates.
    let client = Client::connect(config(&c, SaslMechanism::ScramSha512, "bob", "hunter2"))
        .await
        .expect("connect");
    drop(client);
}
