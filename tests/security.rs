//! TLS and SASL against the real broker's secured listeners (scripts/kafka):
//! every listener × mechanism produces and consumes; each kind of failure
//! (wrong password, unknown user, mechanism not enabled, wrong CA, wrong
//! host name, expired or self-signed certificate, missing client
//! certificate) is its own clear error, quickly; sessions re-authenticate
//! (KIP-368) without failing requests in flight; no secret reaches errors or
//! logs.

mod common;

use common::certs;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch::client::security::tls::TlsConfig;
use skotch::client::{
    AuthFailure, Client, ClientConfig, ConnKind, Consumer, ConsumerConfig, Error, Offset, Producer,
    ProducerConfig, ProducerRecord, SaslConfig, SaslMechanism, SecurityProtocol, TlsFailure,
    TopicPartition,
};

const SASL_PLAINTEXT: u16 = 9094;
const SASL_SSL: u16 = 9095;
const SSL: u16 = 9096;
const EXPIRED: u16 = 9097;
const SELF_SIGNED: u16 = 9098;
const WRONG_HOST: u16 = 9099;
const PLAIN_ONLY: u16 = 9100;
const PASSWORD: &str = "alice-secret";

fn tls() -> TlsConfig {
    TlsConfig::new().ca_file(certs().join("ca.pem"))
}

fn config(port: u16, protocol: SecurityProtocol) -> ClientConfig {
    common::init_logging();
    let c = ClientConfig::new(&format!("127.0.0.1:{port}"))
        .unwrap()
        .security_protocol(protocol)
        .connect_timeout(Duration::from_secs(20));
    if protocol.uses_tls() {
        c.tls(tls())
    } else {
        c
    }
}

fn sasl(mechanism: SaslMechanism, user: &str, password: &str) -> SaslConfig {
    SaslConfig::new(mechanism, user, password)
}

/// Connect, expecting failure; also checks it came fast (no retry loop)
/// and that the password is nowhere in the error.
async fn connect_err(config: ClientConfig) -> Error {
    let started = Instant::now();
    let err = Client::connect(config).await.expect_err("must fail");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: {err}",
        started.elapsed()
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(PASSWORD), "secret in error: {text}");
        assert!(!text.contains("wrong-pass"), "secret in error: {text}");
    }
    err
}

async fn produce_and_consume(client: &Client, topic: &str, n: usize) {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..n {
        deliveries.push(
            producer
                .send(ProducerRecord::new(topic, Bytes::from(format!("v{i}"))))
                .await
                .unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign(TopicPartition::new(topic, 0), Offset::Earliest);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < n && Instant::now() < deadline {
        for r in consumer.poll().await.unwrap().records {
            got.push(r.value.unwrap());
        }
    }
    let want: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("v{i}"))).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_and_mechanism_produces_and_consumes() {
    let admin = common::client().await;
    for (port, protocol) in [
        (SASL_PLAINTEXT, SecurityProtocol::SaslPlaintext),
        (SASL_SSL, SecurityProtocol::SaslSsl),
    ] {
        for mechanism in SaslMechanism::ALL {
            let topic = common::create_topic(&admin, "sec", 1).await;
            let client =
                Client::connect(config(port, protocol).sasl(sasl(mechanism, "alice", PASSWORD)))
                    .await
                    .unwrap_or_else(|e| panic!("{protocol} {mechanism}: {e}"));
            produce_and_consume(&client, &topic, 50).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate() {
    let admin = common::client().await;
    let topic = common::create_topic(&admin, "mtls", 1).await;
    let with_cert = config(SSL, SecurityProtocol::Ssl)
        .tls(tls().client_cert(certs().join("client.pem"), certs().join("client-key.pem")));
    let client = Client::connect(with_cert).await.unwrap();
    produce_and_consume(&client, &topic, 20).await;

    let err = connect_err(config(SSL, SecurityProtocol::Ssl)).await;
    assert!(
        matches!(
            err,
            Error::Tls {
                kind: TlsFailure::ClientCertificate,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_is_a_distinct_clear_error() {
    let scram = |user: &str, pw: &str| {
        config(SASL_SSL, SecurityProtocol::SaslSsl).sasl(sasl(SaslMechanism::ScramSha512, user, pw))
    };
    let wrong_password = connect_err(scram("alice", "wrong-pass")).await;
    let unknown_user = connect_err(scram("mallory", "wrong-pass")).await;
    let plain_wrong = connect_err(
        config(SASL_PLAINTEXT, SecurityProtocol::SaslPlaintext).sasl(sasl(
            SaslMechanism::Plain,
            "alice",
            "wrong-pass",
        )),
    )
    .await;
    let auth_kind = |e: &Error| match e {
        Error::Authentication { kind, .. } => *kind,
        e => panic!("not an authentication error: {e}"),
    };
    assert_eq!(
        auth_kind(&wrong_password),
        AuthFailure::WrongPassword,
        "{wrong_password}"
    );
    assert_eq!(
        auth_kind(&unknown_user),
        AuthFailure::UnknownUser,
        "{unknown_user}"
    );
    assert_eq!(
        auth_kind(&plain_wrong),
        AuthFailure::InvalidCredentials,
        "{plain_wrong}"
    );
    println!(
        "wrong password: {wrong_password}\nunknown user: {unknown_user}\nPLAIN: {plain_wrong}"
    );

    let not_enabled = connect_err(
        config(PLAIN_ONLY, SecurityProtocol::SaslPlaintext).sasl(sasl(
            SaslMechanism::ScramSha256,
            "alice",
            PASSWORD,
        )),
    )
    .await;
    match &not_enabled {
        Error::SaslMechanismNotEnabled { offered, .. } => assert_eq!(offered, &["PLAIN"]),
        e => panic!("{e}"),
    }
    assert!(not_enabled.to_string().contains("PLAIN"), "{not_enabled}");

    let tls_kind = |e: &Error| match e {
        Error::Tls { kind, .. } => *kind,
        e => panic!("not a TLS error: {e}"),
    };
    let wrong_ca = connect_err(
        config(SASL_SSL, SecurityProtocol::SaslSsl)
            .tls(TlsConfig::new().ca_file(certs().join("other-ca.pem")))
            .sasl(sasl(SaslMechanism::ScramSha512, "alice", PASSWORD)),
    )
    .await;
    assert_eq!(tls_kind(&wrong_ca), TlsFailure::UnknownIssuer, "{wrong_ca}");
    for (port, kind) in [
        (EXPIRED, TlsFailure::Expired),
        (SELF_SIGNED, TlsFailure::SelfSigned),
        (WRONG_HOST, TlsFailure::HostnameMismatch),
    ] {
        let e = connect_err(config(port, SecurityProtocol::Ssl)).await;
        assert_eq!(tls_kind(&e), kind, "{e}");
        println!("{kind:?}: {e}");
    }
    // Plain Kafka spoken to a TLS listener, and TLS to a plain one.
    let needs_tls = connect_err(config(SASL_SSL, SecurityProtocol::Plaintext)).await;
    assert_eq!(tls_kind(&needs_tls), TlsFailure::TlsRequired, "{needs_tls}");

    let not_tls = connect_err(config(SASL_PLAINTEXT, SecurityProtocol::Ssl)).await;
    assert_eq!(tls_kind(&not_tls), TlsFailure::NotTls, "{not_tls}");
}

/// The SASL_PLAINTEXT listener gives sessions a 3 s lifetime. One
/// connection keeps many requests in flight for 10 s; it must re-authenticate
/// several times, stay the same connection, and every request must succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_reauthenticate_without_losing_requests() {
    let client = Client::connect(
        config(SASL_PLAINTEXT, SecurityProtocol::SaslPlaintext).sasl(sasl(
            SaslMechanism::ScramSha256,
            "bob",
            "bob-secret",
        )),
    )
    .await
    .unwrap();
    let broker = *client.metadata().brokers.keys().next().unwrap();
    let conn = client.connection(broker, ConnKind::General).await.unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            while Instant::now() < until {
                let req = skotch::protocol::messages::MetadataRequest::default();
                conn.send(&req)
                    .await
                    .expect("request during re-authentication");
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(!conn.is_closed());
    let again = client.connection(broker, ConnKind::General).await.unwrap();
    assert!(Arc::ptr_eq(&conn, &again), "the connection was replaced");
    assert!(
        conn.reauthentications() >= 2,
        "only {} re-authentications in 10 s",
        conn.reauthentications()
    );
    println!(
        "{total} requests, {} re-authentications",
        conn.reauthentications()
    );
}

/// Logs at TRACE level and every error of a good and a bad login: the
/// password appears nowhere.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_logs_or_errors() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    for mechanism in SaslMechanism::ALL {
        let good =
            config(SASL_SSL, SecurityProtocol::SaslSsl).sasl(sasl(mechanism, "alice", PASSWORD));
        assert!(!format!("{good:?}").contains(PASSWORD));
        let client = Client::connect(good).await.unwrap();
        client.refresh_metadata(&[]).await.unwrap();
        let bad = config(SASL_SSL, SecurityProtocol::SaslSsl).sasl(sasl(
            mechanism,
            "alice",
            "wrong-pass",
        ));
        connect_err(bad).await;
    }
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("SASL authenticated"), "logging did not run");
    assert!(!logs.contains(PASSWORD) && !logs.contains("wrong-pass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistent_settings_are_config_errors() {
    let no_creds = Client::connect(config(SASL_SSL, SecurityProtocol::SaslSsl)).await;
    assert!(matches!(no_creds, Err(Error::Config(_))));
    let creds_without_sasl = Client::connect(config(9092, SecurityProtocol::Plaintext).sasl(sasl(
        SaslMechanism::Plain,
        "a",
        "b",
    )))
    .await;
    assert!(matches!(creds_without_sasl, Err(Error::Config(_))));
    let missing_ca = Client::connect(
        config(SSL, SecurityProtocol::Ssl).tls(TlsConfig::new().ca_file("/nonexistent/ca.pem")),
    )
    .await
    .unwrap_err();
    assert!(
        missing_ca.to_string().contains("/nonexistent/ca.pem"),
        "{missing_ca}"
    );
}

/// The stream layer with explicit credentials (no file): a writer over
/// SASL_SSL stamps `_sender` with the authenticated user; a group reader
/// over SASL_PLAINTEXT (re-authenticating every few seconds) reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_with_explicit_credentials_set_sender() {
    use skotch::stream::{Auth, CredentialSource, GroupOptions, StartPosition, Stream};
    let admin = common::client().await;
    let topic = common::create_topic(&admin, "sec-stream", 2).await;

    let mut writer_opts = Stream::new();
    writer_opts.options.credentials = CredentialSource::None;
    writer_opts.options.auth = Some(
        Auth::new("alice", PASSWORD)
            .with_mechanism(SaslMechanism::ScramSha256)
            .with_protocol(SecurityProtocol::SaslSsl)
            .with_ca_file(certs().join("ca.pem")),
    );
    let mut w = writer_opts
        .open_writer(&format!("kafka://127.0.0.1:{SASL_SSL}/{topic}"))
        .await
        .unwrap();
    for i in 0..10 {
        w.write(Bytes::from(format!("m{i}"))).await.unwrap();
    }
    w.close().await.unwrap();

    let mut reader_opts = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true)
        .group(GroupOptions::new(common::unique_topic("sec-group")));
    reader_opts.options.auth = Some(
        Auth::new("bob", "bob-secret")
            .with_mechanism(SaslMechanism::ScramSha512)
            .with_protocol(SecurityProtocol::SaslPlaintext),
    );
    let mut r = reader_opts
        .open_reader(&format!("kafka://bob@127.0.0.1:{SASL_PLAINTEXT}/{topic}"))
        .await
        .unwrap();
    let mut n = 0;
    while let Some(item) = r.read_with_metadata().await {
        let (_, md) = item.unwrap();
        assert_eq!(md.sender(), Some("alice"));
        n += 1;
    }
    assert_eq!(n, 10);
    r.close().await.unwrap();

    // The URL's user must match explicit credentials.
    let e = reader_opts
        .open_reader(&format!("kafka://alice@127.0.0.1:{SASL_PLAINTEXT}/{topic}"))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("alice"), "{e}");
}

/// Java client properties for the SASL_SSL listener, as a file for
/// tests/java/ClientProps.java.
fn java_sasl_ssl_props(dir: &std::path::Path, mechanism: &str) -> std::path::PathBuf {
    let path = dir.join("client.properties");
    let text = format!(
        "security.protocol=SASL_SSL\n\
         sasl.mechanism={mechanism}\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"bob\" password=\"bob-secret\";\n\
         ssl.truststore.type=PEM\n\
         ssl.truststore.location={}\n",
        certs().join("ca.pem").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Interop over SASL_SSL: the Java producer (SCRAM-SHA-512) writes, skotch
/// (SCRAM-SHA-256) reads; skotch writes, the Java consumer reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_interop_over_sasl_ssl() {
    let admin = common::client().await;
    let dir = common::TempDir::new("skotch-java-sasl");
    let props = java_sasl_ssl_props(&dir.0, "SCRAM-SHA-512");
    let bootstrap = format!("127.0.0.1:{SASL_SSL}");
    let client = Client::connect(config(SASL_SSL, SecurityProtocol::SaslSsl).sasl(sasl(
        SaslMechanism::ScramSha256,
        "alice",
        PASSWORD,
    )))
    .await
    .unwrap();

    let from_java = common::create_topic(&admin, "sec-from-java", 1).await;
    let out = common::java_with_props(
        "JavaProducer",
        &[&bootstrap, &from_java, "200"],
        Some(&props),
    );
    assert_eq!(out.len(), 200);
    let mut consumer = Consumer::new(client.clone(), ConsumerConfig::default());
    consumer.assign(TopicPartition::new(&from_java, 0), Offset::Earliest);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 200 && Instant::now() < deadline {
        for r in consumer.poll().await.unwrap().records {
            got.push(r.value.unwrap());
        }
    }
    let want: Vec<Bytes> = (0..200)
        .map(|i| Bytes::from(format!("value-{i}")))
        .collect();
    assert_eq!(got, want);

    let to_java = common::create_topic(&admin, "sec-to-java", 1).await;
    produce_and_consume(&client, &to_java, 100).await;
    let out = common::java_with_props("JavaConsumer", &[&bootstrap, &to_java, "100"], Some(&props));
    assert_eq!(out.len(), 100);
    assert!(out[0].contains("\"value\":\"djA=\""), "{}", out[0]); // base64("v0")
}
