//! Shared helpers for the integration tests: where the real broker is,
//! unique topic names, topic creation, and running the Java interop
//! programs in tests/java and the librdkafka ones in tests/python.
#![allow(dead_code)]

pub mod cluster;
pub mod stream;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use skotch::client::{Admin, Client, ClientConfig, NewTopic};

/// Bootstrap address of the broker started by `scripts/kafka start`.
pub fn bootstrap() -> String {
    std::env::var("SKOTCH_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A topic name no other test run uses.
pub fn unique_topic(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Log to stderr as `SKOTCH_LOG` says (e.g. `SKOTCH_LOG=skotch_client=debug
/// cargo test ... -- --nocapture`); silent when unset.
pub fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SKOTCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .try_init();
    }
}

/// A client for the test broker.
pub async fn client() -> Client {
    init_logging();
    let config = ClientConfig::new(&bootstrap())
        .expect("bootstrap")
        .connect_timeout(Duration::from_secs(20));
    Client::connect(config)
        .await
        .expect("the broker from scripts/kafka must be running (scripts/kafka start)")
}

/// Create a fresh topic with `partitions` partitions and return its name.
pub async fn create_topic(client: &Client, prefix: &str, partitions: i32) -> String {
    let name = unique_topic(prefix);
    Admin::new(client.clone())
        .create_topic(NewTopic::new(&name, partitions, 1), false)
        .await
        .expect("create topic");
    name
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a Java interop program (tests/java/run.sh) and return its stdout
/// lines; panics with its stderr when it fails.
pub fn java(class: &str, args: &[&str]) -> Vec<String> {
    java_with_props(class, args, None)
}

/// [`java`] with extra client properties (a properties file, passed as
/// `SKOTCH_JAVA_CLIENT_PROPS`; see tests/java/ClientProps.java).
pub fn java_with_props(class: &str, args: &[&str], props: Option<&std::path::Path>) -> Vec<String> {
    let mut cmd = Command::new(root().join("tests/java/run.sh"));
    if let Some(p) = props {
        cmd.env("SKOTCH_JAVA_CLIENT_PROPS", p);
    }
    let out = cmd
        .arg(class)
        .args(args)
        .output()
        .expect("run tests/java/run.sh");
    assert!(
        out.status.success(),
        "{class} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Run a librdkafka interop program (tests/python/run.sh: Python's
/// confluent-kafka, in the venv scripts/python-env creates) and return its
/// stdout lines; panics with its stderr when it fails.
pub fn rdkafka(script: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(root().join("tests/python/run.sh"))
        .arg(script)
        .args(args)
        .output()
        .expect("run tests/python/run.sh");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Path of the built `skotch` binary.
pub fn skotch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_skotch"))
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test PKI written by scripts/certs for the broker (`ca.pem`, ...).
pub fn certs() -> PathBuf {
    std::env::var_os("SKOTCH_KAFKA_CERTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".kafka/certs"))
}

/// Run the `skotch` binary with `SKOTCH_AUTH_FILE=auth_file` and `stdin`
/// piped in.
pub fn skotch_with_auth_file(
    auth_file: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(skotch_bin())
        .args(args)
        .env("SKOTCH_AUTH_FILE", auth_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skotch");
    // The command may exit before reading stdin: ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// One JSON object per line of a peer program's output.
pub fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line {l:?}: {e}")))
        .collect()
}

/// The bytes of a base64 string (standard alphabet, padded) in a peer's
/// JSON output; `None` for JSON null.
pub fn b64(v: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine;
    v.as_str().map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("base64 from the peer's consumer")
    })
}

/// What one raw record batch held, from a fetch that bypasses the
/// Consumer (which hides batches).
#[derive(Debug)]
pub struct BatchInfo {
    /// The codec in the batch's attributes.
    pub codec: Option<skotch::client::Compression>,
    /// Records in the batch.
    pub records: usize,
    /// Bytes of keys, values and header keys and values: a lower bound of
    /// the batch's uncompressed size.
    pub payload: usize,
    /// The partition the batch was fetched from.
    pub partition: i32,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// The producer id in the batch header; -1 without idempotence.
    pub producer_id: i64,
    /// The producer epoch in the batch header; -1 without idempotence.
    pub producer_epoch: i16,
    /// The sequence number of the batch's first record; -1 without
    /// idempotence.
    pub base_sequence: i32,
    /// The record count in the batch header (`records` is what decoding
    /// found).
    pub record_count: i32,
    /// The largest record timestamp in the batch header.
    pub max_timestamp: i64,
}

/// Every batch stored in `topic`'s partitions, fetched raw (one
/// FetchRequest per step, from offset 0 to the high watermark) and decoded
/// with the protocol crate, CRCs checked. Shows what the broker kept.
pub async fn raw_batches(client: &Client, topic: &str) -> Vec<BatchInfo> {
    use skotch::client::ConnKind;
    use skotch::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use skotch::protocol::messages::FetchRequest;
    let info = client.topic(topic).await.expect("topic metadata");
    let mut out = Vec::new();
    for p in &info.partitions {
        let partition = p.partition;
        let leader = client.leader(topic, partition).await.expect("leader");
        let conn = client
            .connection(leader, ConnKind::General)
            .await
            .expect("connection");
        let mut offset = 0;
        loop {
            let req = FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 64 << 20,
                topics: vec![FetchTopic {
                    topic: topic.to_string(),
                    topic_id: info.id,
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset: offset,
                        partition_max_bytes: 16 << 20,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            };
            let resp = conn.send(&req).await.expect("raw fetch");
            let data = &resp.responses[0].partitions[0];
            assert_eq!(data.error_code, 0, "raw fetch of {topic}-{partition}");
            let records = data.records.clone().unwrap_or_default();
            let mut progressed = false;
            for batch in skotch::protocol::record::decode_batches(records, true) {
                let batch = batch.expect("a whole, valid batch");
                let mut info = BatchInfo {
                    codec: batch.compression(),
                    records: 0,
                    payload: 0,
                    partition,
                    base_offset: batch.base_offset,
                    producer_id: batch.producer_id,
                    producer_epoch: batch.producer_epoch,
                    base_sequence: batch.base_sequence,
                    record_count: batch.record_count,
                    max_timestamp: batch.max_timestamp,
                };
                for r in batch.records() {
                    let r = r.expect("record");
                    info.records += 1;
                    info.payload += r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len());
                    for h in &r.headers {
                        info.payload += h.key.len() + h.value.as_ref().map_or(0, |v| v.len());
                    }
                }
                offset = batch.next_offset();
                progressed = true;
                out.push(info);
            }
            if offset >= data.high_watermark {
                break;
            }
            assert!(
                progressed,
                "raw fetch of {topic}-{partition} stuck at {offset}"
            );
        }
    }
    out
}

/// The codecs of every batch stored in `topic`, deduplicated in order of
/// appearance.
pub async fn batch_codecs(client: &Client, topic: &str) -> Vec<skotch::client::Compression> {
    let mut codecs = Vec::new();
    for b in raw_batches(client, topic).await {
        let c = b.codec.expect("known codec");
        if !codecs.contains(&c) {
            codecs.push(c);
        }
    }
    codecs
}
