//! `skotch publish --journal` survives `kill -9` (hop's RobustProducer
//! semantics): at least once, duplicates only for what was unacknowledged
//! in the journal at the kill.
//!
//! The model of the input: a line is the publisher's responsibility once it
//! is journaled (hop's `write` returned). Lines the killed process had not
//! journaled yet (read from the pipe but still queued, or never read) are
//! the feeder's to give again, so the restart is fed "the remaining
//! input": every line after the journaled prefix. The test finds that
//! prefix from the evidence left behind (the topic plus the journal's
//! pending messages) and checks it is a prefix (0..k, no hole): the journal
//! never skips a line it was given.
//!
//! Single broker (`SKOTCH_KAFKA_BOOTSTRAP`, 127.0.0.1:9092); every wait is
//! bounded; the temp dir is removed at the end.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skotch::client::{Admin, TopicPartition};
use skotch::stream::{Journal, Message, StartPosition, Stream};

const N: usize = 10_000;
const PARTITIONS: i32 = 3;

/// Kills the child (if still running) when the test ends, even by panic.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for the child's exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "skotch did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn high_watermark(admin: &Admin, topic: &str) -> i64 {
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    admin.end_offsets(&tps).await.unwrap().values().sum()
}

/// How many times each number is in the topic.
async fn counts(url: &str) -> BTreeMap<usize, usize> {
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true);
    let mut reader = stream.open_reader(url).await.unwrap();
    let mut counts = BTreeMap::new();
    let read = async {
        while let Some(m) = reader.read().await {
            let Message::Blob(b) = m.unwrap() else {
                panic!("a blob")
            };
            let n: usize = std::str::from_utf8(&b).unwrap().parse().unwrap();
            *counts.entry(n).or_insert(0) += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("read the topic within 60 s");
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_journal_survives_kill_9() {
    let started = Instant::now();
    let client = common::client().await;
    let admin = Admin::new(client.clone());
    let topic = common::create_topic(&client, "journal-crash", PARTITIONS).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let dir = common::TempDir::new("skotch-journal-crash");
    let journal = dir.0.join("publisher.journal");
    let journal_arg = journal.to_str().unwrap().to_string();

    // Run 1: lines 0.. fed at about 100 000/s, faster than the publisher
    // goes (so messages are in flight at any moment); the feeder stops at
    // 8 000 (so the run cannot finish) and holds the pipe open until the
    // kill.
    let mut child = Command::new(common::skotch_bin())
        .args(["publish", "--journal", &journal_arg, &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run skotch");
    let mut stdin = child.stdin.take().unwrap();
    let mut reaper = Reaper(Some(child));
    let killed = Arc::new(AtomicBool::new(false));
    let feeder = {
        let killed = killed.clone();
        std::thread::spawn(move || {
            let mut fed = 0;
            while fed < 8_000 && !killed.load(Ordering::Acquire) {
                let chunk: String = (fed..fed + 500).map(|n| format!("{n}\n")).collect();
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                fed += 500;
                std::thread::sleep(Duration::from_millis(5));
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while !killed.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            fed
        })
    };
    // Kill -9 once the topic has some (3 000) but not all messages.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hw_at_kill = loop {
        let hw = high_watermark(&admin, &topic).await;
        if hw >= 3_000 {
            reaper.0.as_mut().unwrap().kill().unwrap(); // SIGKILL
            break hw;
        }
        assert!(
            Instant::now() < deadline,
            "the topic reached only {hw} messages in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let status = wait_exit(reaper.0.as_mut().unwrap(), Duration::from_secs(10));
    killed.store(true, Ordering::Release);
    let fed = feeder.join().unwrap();
    assert!(!status.success(), "killed: {status:?}");
    reaper.0 = None;

    // What the kill left: the topic, and the journal's pending messages
    // (read from the bytes, without opening, which would compact it).
    let data = std::fs::read(&journal).unwrap();
    let pending: Vec<usize> = Journal::recover_from_bytes(&data)
        .expect("a killed writer leaves a recoverable journal")
        .pending
        .into_iter()
        .map(|p| {
            let v = p.message.value.unwrap();
            std::str::from_utf8(&v).unwrap().parse().unwrap()
        })
        .collect();
    let delivered = counts(&url).await;
    let delivered_total: usize = delivered.values().sum();
    assert!(
        delivered.values().all(|&c| c == 1),
        "one idempotent producer wrote no duplicates"
    );
    let mut journaled: Vec<usize> = delivered
        .keys()
        .copied()
        .chain(pending.iter().copied())
        .collect();
    journaled.sort_unstable();
    journaled.dedup();
    let k = journaled.len();
    assert_eq!(
        journaled,
        (0..k).collect::<Vec<_>>(),
        "the journaled lines are a prefix of the input"
    );
    assert!(
        k < N && k <= fed,
        "killed mid-run: {k} journaled, {fed} fed"
    );
    let in_both = pending.iter().filter(|n| delivered.contains_key(n)).count();
    eprintln!(
        "kill -9 at high watermark {hw_at_kill}: {fed} lines fed, {k} journaled, \
         {delivered_total} in the topic, {} unacknowledged in the journal \
         ({in_both} of them already in the topic)",
        pending.len()
    );

    // Run 2: the same command and journal, fed the remaining input.
    let stderr_path = dir.0.join("run2.stderr");
    let mut child = Command::new(common::skotch_bin())
        .args(["publish", "--journal", &journal_arg, &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run skotch");
    let mut stdin = child.stdin.take().unwrap();
    let mut reaper = Reaper(Some(child));
    let rest: String = (k..N).map(|n| format!("{n}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(rest.as_bytes()));
    let status = wait_exit(reaper.0.as_mut().unwrap(), Duration::from_secs(60));
    writer.join().unwrap().unwrap();
    reaper.0 = None;
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    if !pending.is_empty() {
        assert!(
            stderr.contains(&format!("re-sending {} message(s)", pending.len())),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        skotch::stream::journal::FILE_HEADER_LEN,
        "the journal is empty once everything is sent"
    );

    // The whole topic: every number at least once; duplicates only among
    // what was unacknowledged at the kill.
    let all = counts(&url).await;
    let missing: Vec<usize> = (0..N).filter(|n| !all.contains_key(n)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(all.len(), N, "nothing else in the topic");
    let duplicates: usize = all.values().map(|c| c - 1).sum();
    eprintln!(
        "duplicates after the restart: {duplicates} (bound: {} unacknowledged at the kill); {:.1} s",
        pending.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(duplicates <= pending.len());
    for (n, c) in &all {
        if *c > 1 {
            assert!(pending.contains(n), "{n} duplicated but was not pending");
        }
    }
}
