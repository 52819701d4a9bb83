//! The `skotch` binary against the real broker: publish then subscribe
//! round trip, list-topics, and one-line errors for a bad URL, an
//! unreachable broker, an unknown topic and invalid JSON.

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

    let o = skotch(
        &[
            "subscribe",
            &url,
            "--start-at",
            "earliest",
            "--until-eos",
            "--json",
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
    let o = skotch(&["subscribe", &url, "-s", "earliest", "-e"], "");
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
    let o = skotch(&["--version"], "");
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("skotch "));
}
