//! The mock cluster (skotch-mock) from outside: `skotch mock-cluster` as a
//! process that skotch's own `publish` and `subscribe` use (no JVM, no
//! broker), and the conformance runs of the two independent clients the
//! project checks against, the Java client (kafka-clients 4.x from the
//! Maven download of scripts/kafka, tests/java/MockConformance.java) and
//! librdkafka (confluent-kafka in the venv of scripts/python-env,
//! tests/python/rdkafka_mock_conformance.py). Each produces with
//! idempotence on and acks=all, reads the records back with a plain
//! consumer, and runs a two-member consumer group (classic protocol, and
//! KIP-848's consumer protocol) that reads every record exactly once and
//! commits. The mock runs in this process (`skotch::mock::MockCluster`) so
//! the tests can check its logs and request log; no real broker is used.
//!
//! Every peer runs with a time bound; on failure its stderr and the tail
//! of each broker's request log are printed.
#![cfg(feature = "mock")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use skotch::client::ClientConfig;
use skotch::mock::{ApiKey, MockCluster};

/// Partitions of each topic.
const PARTITIONS: i32 = 3;
/// Records each producer sends.
const COUNT: usize = 300;
/// The bound of each peer program, start (JVM, Python) included.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);
/// The bound peers are given for their own waits, in ms (below PEER_TIMEOUT).
const PEER_WAIT_MS: &str = "60000";

// ----- skotch mock-cluster, the command -----

/// A running `skotch mock-cluster`, killed if a test fails before it
/// stopped it.
struct MockProcess {
    child: Child,
    bootstrap: String,
    /// Its stderr, read as it comes (a full pipe would block it).
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl MockProcess {
    /// Start `skotch mock-cluster ARGS` and read the bootstrap line.
    fn start(args: &[&str]) -> MockProcess {
        let mut child = Command::new(common::skotch_bin())
            .arg("mock-cluster")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run skotch mock-cluster");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        }));
        // Read the one line on a thread, so a mock that never prints fails
        // the test in bounded time.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("skotch mock-cluster printed no bootstrap line in 30 s");
            }
        };
        let mut mock = MockProcess {
            child,
            bootstrap: line.trim().to_string(),
            stderr,
        };
        if mock.bootstrap.is_empty() {
            let _ = mock.child.kill();
            panic!(
                "skotch mock-cluster printed no bootstrap line: {}",
                mock.take_stderr()
            );
        }
        mock
    }

    /// Its stderr, once it exited.
    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }

    /// SIGTERM, then its exit status (bounded).
    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "skotch mock-cluster still running 20 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.take_stderr())
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `skotch ARGS` with `stdin`, bounded by 60 s.
fn skotch(args: &[&str], stdin: &str) -> Peer {
    let mut cmd = Command::new(common::skotch_bin());
    cmd.args(args);
    run_bounded(cmd, stdin, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_mock_cluster_serves_publish_and_subscribe() {
    let mock = MockProcess::start(&["--brokers", "3", "--topic", "events:3"]);
    let addrs: Vec<&str> = mock.bootstrap.split(',').collect();
    assert_eq!(addrs.len(), 3, "one address per broker: {}", mock.bootstrap);
    for a in &addrs {
        assert!(a.starts_with("127.0.0.1:"), "{a}");
    }
    let url = format!("kafka://{}/events", mock.bootstrap);
    let published = skotch(&["publish", &url], "hello mock\nsecond line\n");
    published.assert_success("skotch publish");
    let read = skotch(
        &["subscribe", &url, "--start-at", "earliest", "--until-eos"],
        "",
    );
    read.assert_success("skotch subscribe");
    // Two messages, spread over partitions: each comes back once (order
    // across partitions is not defined).
    let mut lines = read.lines();
    lines.sort();
    assert_eq!(lines, ["hello mock", "second line"], "subscribe's output");
    // The topic as skotch's client sees it: 3 partitions, 3 replicas each
    // (min(3, brokers)).
    let config = ClientConfig::new(&mock.bootstrap).expect("bootstrap");
    let client = skotch::client::Client::connect(config)
        .await
        .expect("connect to the mock");
    let info = client.topic("events").await.expect("topic metadata");
    assert_eq!(info.partitions.len(), 3);
    for p in &info.partitions {
        assert_eq!(p.replicas.len(), 3, "partition {}", p.partition);
    }
    drop(client);

    let (status, err) = mock.terminate();
    assert_eq!(status.code(), Some(0), "exit 0 on SIGTERM; stderr: {err}");
}

/// `--sasl-user`: the listeners want SASL; skotch's CLI authenticates with
/// the credentials file (SCRAM-SHA-512 over SASL_PLAINTEXT) and is refused
/// with a wrong password.
#[test]
fn cli_mock_cluster_with_sasl_user() {
    use std::os::unix::fs::PermissionsExt;
    let mock = MockProcess::start(&[
        "--topic",
        "secured:1",
        "--sasl-user",
        "SCRAM-SHA-512:alice:pass:word",
    ]);
    let dir = common::TempDir::new("mock-cluster-sasl");
    let write_auth = |password: &str| {
        let path = dir.0.join(format!("auth-{}.toml", password.len()));
        std::fs::write(
            &path,
            format!(
                "[[auth]]\nusername = \"alice\"\npassword = \"{password}\"\n\
                 mechanism = \"SCRAM-SHA-512\"\nprotocol = \"SASL_PLAINTEXT\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let good = write_auth("pass:word");
    let bad = write_auth("wrong");
    let url = format!("kafka://alice@{}/secured", mock.bootstrap);
    let with_auth = |auth: &std::path::Path, args: &[&str], stdin: &str| {
        let mut cmd = Command::new(common::skotch_bin());
        cmd.args(args)
            .args(["--auth-file", auth.to_str().unwrap(), "--timeout", "5000"]);
        run_bounded(cmd, stdin, Duration::from_secs(60))
    };
    with_auth(&good, &["publish", &url], "over sasl\n").assert_success("publish");
    let read = with_auth(
        &good,
        &["subscribe", &url, "--start-at", "earliest", "--until-eos"],
        "",
    );
    read.assert_success("subscribe");
    assert_eq!(read.stdout, "over sasl\n");
    let refused = with_auth(&bad, &["publish", &url], "no\n");
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
    let (status, err) = mock.terminate();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(err.contains("SASL_PLAINTEXT"), "{err}");
}

/// README.md's `mock-cluster` lines, run as written but for the port
/// (9092 is the test broker's in CI): the first starts the cluster, the
/// others run in `sh` with the tested `skotch` first on PATH.
#[test]
fn readme_mock_cluster_lines_run_as_written() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README.md");
    let block = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split_once("```").map(|(b, _)| b))
        .find(|b| b.trim_start().starts_with("skotch mock-cluster"))
        .expect("README.md has a sh block starting with `skotch mock-cluster`");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let lines: Vec<String> = block
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim().replace("9092", &port))
        .filter(|l| !l.is_empty())
        .collect();
    let args: Vec<&str> = lines[0].split_whitespace().skip(2).collect();
    let mock = MockProcess::start(&args);
    assert_eq!(mock.bootstrap, format!("127.0.0.1:{port}"));
    let bin_dir = common::skotch_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut output = String::new();
    for line in &lines[1..] {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", line]).env("PATH", &path);
        let o = run_bounded(cmd, "", Duration::from_secs(60));
        o.assert_success(line);
        output.push_str(&o.stdout);
    }
    assert_eq!(output, "hello\n", "what the README's subscribe prints");
    let (status, err) = mock.terminate();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
}

#[test]
fn cli_mock_cluster_rejects_bad_arguments() {
    // Usage errors: exit 2 before listening on anything.
    for (args, says) in [
        (&["--brokers", "0"][..], "at least one broker"),
        (&["--topic", "events"][..], "NAME:PARTITIONS"),
        (&["--topic", "events:0"][..], "NAME:PARTITIONS"),
        (&["--topic", ":3"][..], "NAME:PARTITIONS"),
        (&["--sasl-user", "MD5:u:p"][..], "SCRAM-SHA-512"),
        (&["--port", "0"][..], "--port"),
    ] {
        let mut full = vec!["mock-cluster"];
        full.extend_from_slice(args);
        let o = skotch(&full, "");
        assert_eq!(o.code(), Some(2), "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}: no address printed");
    }
    // A port in use: one line on stderr, exit 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = skotch(&["mock-cluster", "--port", &port], "");
    assert_eq!(o.code(), Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("port {port} is in use")),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.trim_end().lines().count(), 1, "{}", o.stderr);
    // Ports past 65535.
    let o = skotch(&["mock-cluster", "--port", "65535", "--brokers", "2"], "");
    assert_eq!(o.code(), Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("65535"), "{}", o.stderr);
}

// ----- running the peers -----

/// What a peer program did.
struct Peer {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Peer {
    /// The exit code; `None` when killed.
    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_string).collect()
    }

    fn assert_success(&self, what: &str) {
        assert!(
            self.status.is_some_and(|s| s.success()),
            "{what} ({}) {}; stderr:\n{}",
            self.what,
            match self.status {
                Some(s) => format!("failed: {s}"),
                None => "timed out and was killed".into(),
            },
            self.stderr
        );
    }
}

/// Run `cmd` with `stdin`; kill it past `timeout` (status `None`).
fn run_bounded(mut cmd: Command, stdin: &str, timeout: Duration) -> Peer {
    use std::io::Write;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    // The program may exit before reading: ignore a broken pipe.
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Peer {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        what,
    }
}

/// The two peers, each run through the project's launcher script (which
/// builds the Java programs or creates the venv first if needed).
#[derive(Clone, Copy, Debug)]
enum PeerClient {
    /// tests/java/run.sh MockConformance ...
    Java,
    /// tests/python/run.sh rdkafka_mock_conformance.py ...
    Rdkafka,
}

impl PeerClient {
    fn command(self) -> Command {
        let (script, program) = match self {
            PeerClient::Java => ("tests/java/run.sh", "MockConformance"),
            PeerClient::Rdkafka => ("tests/python/run.sh", "rdkafka_mock_conformance.py"),
        };
        let mut cmd = Command::new(common::root().join(script));
        cmd.arg(program);
        cmd
    }

    /// Run the peer off the runtime's workers (the mock is served by
    /// them), bounded by [`PEER_TIMEOUT`].
    async fn run(self, args: Vec<String>) -> Peer {
        let mut cmd = self.command();
        cmd.args(&args);
        tokio::task::spawn_blocking(move || run_bounded(cmd, "", PEER_TIMEOUT))
            .await
            .expect("peer thread")
    }
}

/// A cluster of 3 brokers with `topics` (3 partitions, 3 replicas each).
async fn cluster(topics: &[&str]) -> MockCluster {
    common::init_logging();
    let cluster = MockCluster::start(3).await.expect("start the mock");
    for t in topics {
        cluster
            .create_topic(t, PARTITIONS, 3)
            .expect("create topic");
    }
    cluster
}

/// Print the peer's stderr and each broker's last requests, then panic,
/// unless the peer succeeded.
fn check_peer(peer: &Peer, cluster: &MockCluster, what: &str) {
    if peer.status.is_some_and(|s| s.success()) {
        return;
    }
    eprintln!("{}", request_logs(cluster, 80));
    peer.assert_success(what);
}

/// The last `n` requests of each broker, one line each.
fn request_logs(cluster: &MockCluster, n: usize) -> String {
    let mut s = String::new();
    for b in cluster.broker_ids() {
        let log = cluster.request_log(b);
        s.push_str(&format!(
            "--- broker {b}: last {} of {} requests\n",
            n.min(log.len()),
            log.len()
        ));
        for r in log.iter().skip(log.len().saturating_sub(n)) {
            s.push_str(&format!(
                "  {} v{} client={} corr={} {}\n",
                r.api().map_or("?", ApiKey::name),
                r.api_version,
                r.client_id.as_deref().unwrap_or("-"),
                r.correlation_id,
                r.summary
            ));
        }
    }
    s
}

/// The requests of `api` all brokers received.
fn requests_of(cluster: &MockCluster, api: ApiKey) -> usize {
    cluster
        .broker_ids()
        .into_iter()
        .flat_map(|b| cluster.request_log(b))
        .filter(|r| r.api() == Some(api))
        .count()
}

/// `(partition, offset, value)` from `<tag> [member] <partition> <offset>
/// <value>` lines; the member (when `with_member`) is returned too.
fn records(lines: &[String], tag: &str, with_member: bool) -> Vec<(String, i32, i64, String)> {
    lines
        .iter()
        .filter(|l| l.split(' ').next() == Some(tag))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (member, rest) = if with_member {
                (f[1].to_string(), &f[2..])
            } else {
                (String::new(), &f[1..])
            };
            assert_eq!(rest.len(), 3, "line {l:?}");
            (
                member,
                rest[0].parse().unwrap_or_else(|_| panic!("line {l:?}")),
                rest[1].parse().unwrap_or_else(|_| panic!("line {l:?}")),
                rest[2].to_string(),
            )
        })
        .collect()
}

/// The `sent` lines of a producer of `count` records with values
/// `prefix<i>` to partition `i % PARTITIONS`: every record acknowledged
/// once, each partition's offsets 0, 1, ... in send order, and the mock's
/// logs holding exactly these (no duplicate appended by a retry).
fn check_produced(
    lines: &[String],
    cluster: &MockCluster,
    topic: &str,
    prefix: &str,
) -> BTreeSet<(i32, i64, String)> {
    let sent = records(lines, "sent", false);
    assert_eq!(sent.len(), COUNT, "one acknowledgement per record");
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (i, (_, p, o, v)) in sent.iter().enumerate() {
        assert_eq!(v, &format!("{prefix}{i}"), "sent lines in order of i");
        assert_eq!(*p, i as i32 % PARTITIONS, "record {i}: its partition");
        let want = next.entry(*p).or_insert(0);
        assert_eq!(*o, *want, "record {i}: offsets follow send order");
        *want += 1;
    }
    for (p, n) in &next {
        assert_eq!(
            cluster.high_watermark(topic, *p),
            Some(*n),
            "partition {p}: the mock's log holds exactly the records sent"
        );
    }
    sent.into_iter().map(|(_, p, o, v)| (p, o, v)).collect()
}

// ----- conformance: produce with idempotence, consume back -----

async fn produce_and_consume(client: PeerClient) {
    let topic = "conformance";
    let cluster = cluster(&[topic]).await;
    let bootstrap = cluster.bootstrap_servers();
    let produced = client
        .run(vec![
            "produce".into(),
            bootstrap.clone(),
            topic.into(),
            PARTITIONS.to_string(),
            COUNT.to_string(),
        ])
        .await;
    check_peer(&produced, &cluster, &format!("{client:?} producer"));
    let sent = check_produced(&produced.lines(), &cluster, topic, "v-");
    // Idempotence was on: the producer asked for a producer id.
    assert!(
        requests_of(&cluster, ApiKey::InitProducerId) >= 1,
        "an idempotent producer sends InitProducerId\n{}",
        request_logs(&cluster, 40)
    );

    let consumed = client
        .run(vec![
            "consume".into(),
            bootstrap,
            topic.into(),
            COUNT.to_string(),
            PEER_WAIT_MS.into(),
        ])
        .await;
    check_peer(&consumed, &cluster, &format!("{client:?} consumer"));
    let read = records(&consumed.lines(), "rec", false);
    assert_eq!(read.len(), COUNT, "the consumer read every record once");
    let read: BTreeSet<(i32, i64, String)> =
        read.into_iter().map(|(_, p, o, v)| (p, o, v)).collect();
    assert_eq!(read, sent, "the consumer read what was acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_produces_idempotently_and_consumes_on_mock() {
    produce_and_consume(PeerClient::Java).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_produces_idempotently_and_consumes_on_mock() {
    produce_and_consume(PeerClient::Rdkafka).await;
}

// ----- conformance: a consumer group of two members -----

async fn consumer_group(client: PeerClient, protocol: &str) {
    let topic = "conformance-group";
    let group = format!("conformance-{protocol}");
    let cluster = cluster(&[topic]).await;
    let bootstrap = cluster.bootstrap_servers();
    let peer = client
        .run(vec![
            "group".into(),
            bootstrap,
            topic.into(),
            PARTITIONS.to_string(),
            group,
            protocol.into(),
            COUNT.to_string(),
            PEER_WAIT_MS.into(),
        ])
        .await;
    check_peer(&peer, &cluster, &format!("{client:?} group ({protocol})"));
    let lines = peer.lines();
    let sent = check_produced(&lines, &cluster, topic, "g-");

    // Every record read exactly once, by one of the two members.
    let read = records(&lines, "rec", true);
    let mut by_member: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (member, p, o, v) in &read {
        *by_member.entry(member.clone()).or_default() += 1;
        assert!(
            seen.insert((*p, *o, v.clone())),
            "{v} (partition {p} offset {o}) read twice\n{}",
            peer.stdout
        );
    }
    assert_eq!(seen, sent, "the group read every record");
    assert_eq!(
        by_member.len(),
        2,
        "both members read records: {by_member:?}"
    );

    // The commits: each partition's committed offset is its end.
    let committed: BTreeMap<i32, i64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("committed "))
        .map(|l| {
            let (p, o) = l.split_once(' ').expect("committed <p> <offset>");
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    for p in 0..PARTITIONS {
        assert_eq!(
            committed.get(&p).copied(),
            cluster.high_watermark(topic, p),
            "partition {p}: committed at the log end\n{}",
            peer.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_consumer_group_classic_on_mock() {
    consumer_group(PeerClient::Java, "classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_consumer_group_classic_on_mock() {
    consumer_group(PeerClient::Rdkafka, "classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_consumer_group_kip848_on_mock() {
    consumer_group(PeerClient::Java, "consumer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_consumer_group_kip848_on_mock() {
    consumer_group(PeerClient::Rdkafka, "consumer").await;
}
