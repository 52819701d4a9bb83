//! The `skotch` binary against the real broker: publish then subscribe
//! round trip, list-topics, one-line errors for a bad URL, an
//! unreachable broker, an unknown topic and invalid JSON, and Ctrl-C
//! (SIGINT) during `subscribe` and `publish` (with and without
//! `--journal`; a second one aborts with 130).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn skotch(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(common::skotch_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skotch");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure is exactly one line on stderr, exit code 1, no panic.
fn assert_one_line_error(o: &Output, contains: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.starts_with("skotch: error: "), "{e}");
    assert!(e.contains(contains), "wanted {contains:?} in {e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_subscribe_round_trip() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "cli", 3).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());

    let input = "{\"n\":1}\n{\"n\":2,\"s\":\"two\"}\n[3]\n";
    let o = skotch(
        &[
            "publish", &url, "--format", "json", "-H", "k=a", "-H", "k=b", "--test",
        ],
        input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Compressed batches read back like any others.
    let o = skotch(
        &[
            "publish",
            &url,
            "--compression",
            "zstd",
            "--compression-level",
            "-5",
        ],
        "plain text line\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let codecs = common::batch_codecs(&client, &topic).await;
    assert!(
        codecs.contains(&skotch::client::Compression::Zstd),
        "{codecs:?}"
    );
    let o = skotch(
        &[
            "publish",
            &url,
            "--compression",
            "gzip",
            "--compression-level",
            "12",
        ],
        "x\n",
    );
    assert_one_line_error(&o, "compression.gzip.level must be between 1 and 9, not 12");

    // The three JSON messages were published as tests: readers skip them
    // unless asked (hop's ignoretest), in any spelling of hop's flags.
    let o = skotch(&["subscribe", &url, "-s", "EARLIEST", "-e", "-j"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let skipped: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(skipped.len(), 1, "only the non-test message: {skipped:?}");
    assert_eq!(skipped[0]["content"], "plain text line");

    let o = skotch(
        &[
            "subscribe",
            &url,
            "--start-at",
            "earliest",
            "--until-eos",
            "--json",
            "--test",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let mut contents: Vec<String> = lines.iter().map(|l| l["content"].to_string()).collect();
    contents.sort();
    assert_eq!(
        contents,
        vec![
            "\"plain text line\"",
            "[3]",
            "{\"n\":1}",
            "{\"n\":2,\"s\":\"two\"}"
        ]
    );
    let json_one = lines
        .iter()
        .find(|l| l["content"] == serde_json::json!({"n":1}))
        .unwrap();
    let keys: Vec<&str> = json_one["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k", "k", "_id", "_test", "_format"]);
    assert_eq!(json_one["headers"][4][1], "json");
    assert_eq!(json_one["topic"], topic.as_str());
    for field in ["partition", "offset", "timestamp", "key"] {
        assert!(json_one.get(field).is_some(), "{field}");
    }

    // Plain output: the content, one per line.
    let o = skotch(&["subscribe", &url, "-s", "earliest", "-e", "-t"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 4);

    let o = skotch(
        &["list-topics", &format!("kafka://{}/", common::bootstrap())],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8(o.stdout).unwrap().contains(&topic));
}

#[test]
fn errors_are_one_clear_line() {
    let b = common::bootstrap();
    assert_one_line_error(&skotch(&["subscribe", "http://h/t"], ""), "kafka");
    assert_one_line_error(
        &skotch(
            &["subscribe", "kafka://127.0.0.1:1/t", "--timeout", "1500"],
            "",
        ),
        "127.0.0.1:1",
    );
    assert_one_line_error(
        &skotch(
            &[
                "subscribe",
                &format!("kafka://{b}/skotch-no-such-topic"),
                "-e",
            ],
            "",
        ),
        "unknown topic",
    );
    assert_one_line_error(
        &skotch(
            &["publish", &format!("kafka://{b}/skotch-no-such-topic")],
            "x\n",
        ),
        "unknown topic",
    );
    assert_one_line_error(
        &skotch(
            &["publish", &format!("kafka://{b}/t"), "--format", "json"],
            "{\"a\":\n",
        ),
        "invalid JSON",
    );
    assert_one_line_error(
        &skotch(
            &["publish", &format!("kafka://{b}/t"), "-H", "_id=x"],
            "x\n",
        ),
        "reserved",
    );
}

#[test]
fn version() {
    for args in [&["--version"][..], &["version"][..]] {
        let o = skotch(args, "");
        assert!(o.status.success());
        assert!(String::from_utf8(o.stdout).unwrap().starts_with("skotch "));
    }
}

/// `topics create|describe|list|delete`: partitions, a config, the
/// `--if-not-exists` / `--if-exists` forms, and clear errors.
#[test]
fn topics_create_describe_delete() {
    let b = common::bootstrap();
    let topic = common::unique_topic("cli-topics");
    let url = format!("kafka://{b}/{topic}");

    let o = skotch(
        &[
            "topics",
            "create",
            &url,
            "-p",
            "4",
            "-r",
            "1",
            "-c",
            "retention.ms=3600000",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_one_line_error(
        &skotch(&["topics", "create", &url, "-p", "4"], ""),
        "already exists",
    );
    let o = skotch(&["topics", "create", &url, "--if-not-exists"], "");
    assert!(o.status.success(), "{}", stderr(&o));

    let o = skotch(&["topics", "describe", &url], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("Partitions: 4"), "{text}");
    assert!(text.contains("retention.ms"), "{text}");
    assert!(text.contains("3600000"), "{text}");
    assert!(text.contains("DYNAMIC_TOPIC_CONFIG"), "{text}");
    assert!(
        !text.contains("segment.bytes"),
        "defaults only with --all-configs: {text}"
    );

    let o = skotch(&["topics", "describe", &url, "--json", "--all-configs"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["name"], topic.as_str());
    assert_eq!(v["partitions"].as_array().unwrap().len(), 4);
    for p in v["partitions"].as_array().unwrap() {
        assert!(p["leader"].as_i64().unwrap() >= 0, "{p}");
        assert_eq!(p["isr"], p["replicas"]);
    }
    let configs = v["configs"].as_array().unwrap();
    let retention = configs
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap();
    assert_eq!(retention["value"], "3600000");
    assert!(
        configs
            .iter()
            .any(|c| c["name"] == "segment.bytes" && c["source"] != "DYNAMIC_TOPIC_CONFIG"),
        "every config with its source"
    );

    let o = skotch(&["topics", "list", &url, "--json"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["topics"],
        serde_json::json!([{"name": topic, "partitions": 4, "internal": false}])
    );

    let o = skotch(&["topics", "delete", &url], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = skotch(&["topics", "delete", &url, "--if-exists"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    // Brokers learn of a deletion a moment after the controller.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let gone = loop {
        let o = skotch(&["topics", "describe", &url], "");
        if !o.status.success() || std::time::Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_one_line_error(&gone, &format!("unknown topic \"{topic}\""));
    assert_one_line_error(
        &skotch(&["topics", "create", &format!("kafka://{b}/")], ""),
        "names no topic",
    );
    assert_one_line_error(
        &skotch(&["topics", "create", &url, "-c", "novalue"], ""),
        "expected KEY=VALUE",
    );
}

/// Ctrl-C (SIGINT) during `subscribe --group`: the CLI stops reading,
/// commits what it printed, leaves the group and exits 0; the next member
/// starts after what was printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_commits_and_leaves_on_sigint() {
    use std::io::BufRead;
    let client = common::client().await;
    let topic = common::create_topic(&client, "cli-sigint", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("cli-sigint");
    let o = skotch(&["publish", &url], "m0\nm1\nm2\nm3\nm4\n");
    assert!(o.status.success(), "{}", stderr(&o));

    let mut child = Command::new(common::skotch_bin())
        .args(["subscribe", &url, "-g", &group, "-s", "earliest"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skotch");
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    let printed = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let got: Vec<String> = lines.by_ref().take(5).map(Result::unwrap).collect();
        // SIGINT once everything was printed; the process keeps waiting
        // for more records otherwise (no --until-eos).
        sigint(pid);
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        (got, rest)
    });
    let (got, rest) = tokio::time::timeout(std::time::Duration::from_secs(60), printed)
        .await
        .expect("5 lines and an exit within 60 s")
        .unwrap();
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    assert!(rest.is_empty(), "{rest:?}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(err.contains("stopping"), "{err}");

    let committed = skotch::client::Admin::new(client)
        .list_group_offsets(&group)
        .await
        .unwrap();
    assert_eq!(
        committed.get(&skotch::client::TopicPartition::new(topic.as_str(), 0)),
        Some(&5),
        "what was printed is committed"
    );
    let o = skotch(
        &[
            "groups",
            "describe",
            &format!("kafka://{}/", common::bootstrap()),
            &group,
            "--json",
        ],
        "",
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "Empty", "the member left: {v}");
    assert_eq!(v["members"], serde_json::json!([]), "{v}");
}

/// Waits at most `secs` for the child's exit and output; kills it (and
/// fails) when it takes longer.
async fn wait_output(child: std::process::Child, secs: u64) -> Output {
    let pid = child.id();
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    match tokio::time::timeout(std::time::Duration::from_secs(secs), waited).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("skotch did not exit within {secs} s");
        }
    }
}

fn sigint(pid: u32) {
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
}

/// The sum of the high watermarks of `topic`'s partitions `0..partitions`.
async fn high_watermark(client: &skotch::client::Client, topic: &str, partitions: i32) -> i64 {
    let tps: Vec<skotch::client::TopicPartition> = (0..partitions)
        .map(|p| skotch::client::TopicPartition::new(topic, p))
        .collect();
    skotch::client::Admin::new(client.clone())
        .end_offsets(&tps)
        .await
        .unwrap()
        .values()
        .sum()
}

/// Polls until the topic holds at least `n` records (60 s at most).
async fn wait_for_records(client: &skotch::client::Client, topic: &str, partitions: i32, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let hw = high_watermark(client, topic, partitions).await;
        if hw >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the topic reached only {hw} records in 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The number in "published N" of the CLI's stderr.
fn published_count(stderr: &str) -> i64 {
    let at = stderr
        .find("published ")
        .unwrap_or_else(|| panic!("no count in {stderr}"));
    stderr[at + "published ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"))
}

/// Ctrl-C (SIGINT) while `publish` queues (100 MB of input, three times
/// `buffer.memory`, so queueing waits for the broker): it queues nothing
/// more, delivers what it queued, says how many it published and exits 0;
/// the topic holds exactly that many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_sigint_delivers_what_it_queued() {
    const LINES: usize = 1600;
    let client = common::client().await;
    let topic = common::create_topic(&client, "cli-sigint-publish", 3).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let mut child = Command::new(common::skotch_bin())
        .args(["publish", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skotch");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let line = format!("{}\n", "x".repeat(64 * 1024 - 1));
        for _ in 0..LINES {
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    // The first records are in: the writer is open, the input read, the
    // signal handler installed; most of the input is still to be queued.
    wait_for_records(&client, &topic, 3, 1).await;
    sigint(child.id());
    let out = wait_output(child, 120).await;
    feeder.join().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(err.contains("stopping"), "{err}");
    assert!(err.contains(&format!(" of {LINES} messages")), "{err}");
    let published = published_count(&err);
    eprintln!("{}", err.trim_end());
    assert!(published > 0 && published < LINES as i64, "{err}");
    assert_eq!(
        high_watermark(&client, &topic, 3).await,
        published,
        "the topic holds exactly what was published"
    );
    let _ = skotch::client::Admin::new(client)
        .delete_topics(&[topic])
        .await;
}

/// `publish --journal` reads stdin as it comes: Ctrl-C while lines keep
/// coming stops reading, delivers what was queued, says how many were
/// published and exits 0; the topic holds exactly that many, and the
/// journal is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_journal_sigint_delivers_what_it_queued() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let client = common::client().await;
    let topic = common::create_topic(&client, "cli-sigint-journal", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let dir = common::TempDir::new("skotch-cli-journal");
    let journal = dir.0.join("publisher.journal");
    let mut child = Command::new(common::skotch_bin())
        .args(["publish", "--journal", journal.to_str().unwrap(), &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skotch");
    let mut stdin = child.stdin.take().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        // A slow stdin that never ends by itself: 20 lines every 10 ms.
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) && n < 200_000 {
                let chunk: String = (n..n + 20).map(|i| format!("line {i}\n")).collect();
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
                n += 20;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    wait_for_records(&client, &topic, 1, 100).await;
    sigint(child.id());
    let out = wait_output(child, 60).await;
    stop.store(true, Ordering::Release);
    feeder.join().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(err.contains("stopping"), "{err}");
    assert!(err.contains("interrupted: published "), "{err}");
    let published = published_count(&err);
    eprintln!("{}", err.trim_end());
    assert!(published >= 100, "{err}");
    assert_eq!(
        high_watermark(&client, &topic, 1).await,
        published,
        "the topic holds exactly what was published"
    );
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        skotch::stream::journal::FILE_HEADER_LEN,
        "nothing left in the journal"
    );
}

/// A second Ctrl-C aborts with exit code 130; with `--journal`, what was
/// not acknowledged stays in the journal, and the next run re-sends it
/// (here: a journal left by an earlier run, and a broker that cannot be
/// reached, so the first signal finds the publisher still connecting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_journal_second_sigint_aborts_and_keeps_the_journal() {
    use skotch::stream::{Journal, JournalMessage};
    use std::io::BufRead;
    let client = common::client().await;
    let topic = common::create_topic(&client, "cli-sigint-abort", 1).await;
    let dir = common::TempDir::new("skotch-cli-journal");
    let journal = dir.0.join("publisher.journal");
    {
        let (mut j, _) = Journal::open(&journal).unwrap();
        for i in 0..5 {
            j.append(&JournalMessage {
                topic: topic.clone(),
                value: Some(bytes::Bytes::from(format!("kept {i}"))),
                headers: vec![
                    (
                        "_id".into(),
                        Some(bytes::Bytes::copy_from_slice(
                            uuid::Uuid::new_v4().as_bytes(),
                        )),
                    ),
                    ("_format".into(), Some(bytes::Bytes::from_static(b"blob"))),
                ],
                ..Default::default()
            })
            .unwrap();
        }
    }
    let journal_arg = journal.to_str().unwrap().to_string();
    let mut child = Command::new(common::skotch_bin())
        .args([
            "publish",
            "--journal",
            &journal_arg,
            &format!("kafka://127.0.0.1:1/{topic}"),
            "--timeout",
            "60000",
        ])
        .env("SKOTCH_LOG", "skotch_client=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skotch");
    let stderr_pipe = child.stderr.take().unwrap();
    let pid = child.id();
    let signalled = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr_pipe).lines();
        let mut seen = Vec::new();
        let mut signals = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            // Connecting: the journal is open and the handler installed.
            if signals == 0 && line.contains("connecting") {
                sigint(pid);
                signals = 1;
            } else if signals == 1 && line.contains("stopping") {
                sigint(pid);
                signals = 2;
            }
            seen.push(line);
        }
        seen.join("\n")
    });
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), signalled)
        .await
        .expect("two signals and an exit within 60 s")
        .unwrap();
    let status = wait_output(child, 10).await.status;
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("aborted"), "{seen}");
    let data = std::fs::read(&journal).unwrap();
    let pending = Journal::recover_from_bytes(&data).unwrap().pending;
    assert_eq!(
        pending.len(),
        5,
        "the journal kept what was not acknowledged"
    );

    // The next run (no new input) re-sends them.
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let o = skotch(&["publish", "--journal", &journal_arg, &url], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("re-sending 5 message(s)"),
        "{}",
        stderr(&o)
    );
    let o = skotch(&["subscribe", &url, "-s", "earliest", "-e"], "");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "kept 0\nkept 1\nkept 2\nkept 3\nkept 4\n"
    );
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        skotch::stream::journal::FILE_HEADER_LEN
    );
}
