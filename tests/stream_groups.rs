//! Group reading in the streaming layer and the CLI against the real
//! broker: hop-style auto commit continues where the last reader stopped,
//! manual commits with `mark_done`, water-healer-style concurrent
//! processing that resumes at the first failed record, kstreams' initial
//! offsets, and `skotch subscribe --group`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use skotch::stream::{
    process_concurrently, GroupOptions, Message, ProcessError, StartPosition, Stream,
    TopicPartition,
};

use common::stream::{committed, group_options, number, write_numbers};

/// Read until the end of every assigned partition; the numbers read.
async fn read_group(url: &str, g: GroupOptions) -> Vec<i64> {
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true)
        .group(g);
    let mut r = stream.open_reader(url).await.expect("reader");
    let mut out = Vec::new();
    while let Some(m) = r.read().await {
        out.push(number(&m.expect("read")));
    }
    r.close().await.expect("close");
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_continues_where_the_last_reader_stopped() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sg-auto", 3).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("sg-auto");
    write_numbers(&url, 0..30).await;
    assert_eq!(
        read_group(&url, group_options(&group)).await,
        (0..30).collect::<Vec<_>>()
    );
    write_numbers(&url, 30..40).await;
    assert_eq!(
        read_group(&url, group_options(&group)).await,
        (30..40).collect::<Vec<_>>()
    );
    // KIP-848 reads the same committed offsets.
    write_numbers(&url, 40..45).await;
    let mut g = group_options(&group);
    g.protocol = skotch::stream::GroupProtocol::Consumer;
    assert_eq!(read_group(&url, g).await, (40..45).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_commit_commits_only_what_was_marked_done() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sg-manual", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("sg-manual");
    write_numbers(&url, 0..20).await;

    let mut g = group_options(&group);
    g.auto_commit = false;
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true)
        .group(g.clone());
    let mut r = stream.open_reader(&url).await.expect("reader");
    while let Some(m) = r.read_with_metadata().await {
        let (m, md) = m.expect("read");
        // Done with everything below 12 only.
        if number(&m) < 12 {
            r.mark_done(&md);
        }
    }
    r.close().await.expect("close");
    assert_eq!(read_group(&url, g).await, (12..20).collect::<Vec<_>>());
}

/// hop's ignoretest under manual commits: test messages are skipped and
/// count as done, so marking every message handed out commits past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_test_messages_do_not_hold_manual_commits() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sg-ignoretest", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("sg-ignoretest");
    let mut w = Stream::new().open_writer(&url).await.expect("writer");
    for i in 0..10i64 {
        let options = skotch::stream::WriteOptions {
            test: i % 3 == 0,
            ..Default::default()
        };
        w.write_with(Message::Json(json!({ "n": i })), options)
            .await
            .expect("write");
    }
    w.close().await.expect("close");

    let mut g = group_options(&group);
    g.auto_commit = false;
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true)
        .group(g);
    let mut r = stream.open_reader(&url).await.expect("reader");
    let mut got = Vec::new();
    while let Some(m) = r.read_with_metadata().await {
        let (m, md) = m.expect("read");
        got.push(number(&m));
        r.mark_done(&md);
    }
    r.close().await.expect("close");
    assert_eq!(
        got,
        vec![1, 2, 4, 5, 7, 8],
        "test messages 0, 3, 6, 9 skipped"
    );
    assert_eq!(
        committed(&client, &group, &topic).await,
        Some(10),
        "the commit passed the skipped test messages, the last one included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processing_resumes_at_the_first_failure() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sg-heal", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("sg-heal");
    write_numbers(&url, 0..40).await;

    let mut g = group_options(&group);
    g.auto_commit = false;
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true)
        .group(g.clone());
    let mut r = stream.open_reader(&url).await.expect("reader");
    // Four workers; later records finish first; record 7 fails.
    let result = process_concurrently(&mut r, 4, |m, _md| async move {
        let n = number(&m);
        tokio::time::sleep(Duration::from_millis(((40 - n) % 7) as u64 * 5)).await;
        if n == 7 {
            Err(format!("cannot process {n}"))
        } else {
            Ok(())
        }
    })
    .await;
    match result {
        Err(ProcessError::Task { metadata, error }) => {
            assert_eq!(metadata.offset, 7);
            assert_eq!(error, "cannot process 7");
        }
        other => panic!("expected the task failure, got {other:?}"),
    }
    r.close().await.expect("close");

    // The next reader starts at the failed record, and skips records
    // after it that were already processed.
    let again = read_group(&url, g.clone()).await;
    assert_eq!(again.first(), Some(&7), "{again:?}");
    assert!(again.len() < 40 - 7, "done records came back: {again:?}");

    // A reader without auto_commit off is refused.
    let stream = Stream::new().group(group_options(&group));
    let mut auto = stream.open_reader(&url).await.expect("reader");
    let r = process_concurrently(&mut auto, 2, |_m, _md| async { Ok::<(), String>(()) }).await;
    assert!(matches!(r, Err(ProcessError::NotManual)), "{r:?}");
    auto.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_offsets_override_committed_ones() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sg-initial", 2).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("sg-initial");
    let mut w = Stream::new().open_writer(&url).await.expect("writer");
    for i in 0..10 {
        w.write_with(
            Message::Json(json!({ "n": i })),
            skotch::stream::WriteOptions {
                key: Some(bytes::Bytes::from_static(b"same-key")),
                ..Default::default()
            },
        )
        .await
        .expect("write");
    }
    w.close().await.expect("close");
    // Every record went to one partition; find it by reading.
    let all = read_group(&url, group_options(&common::unique_topic("probe"))).await;
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    let mut g = group_options(&group);
    g.initial_offsets = vec![
        (TopicPartition::new(topic.clone(), 0), 6),
        (TopicPartition::new(topic.clone(), 1), 6),
        // Not assigned (no such partition): ignored with a warning.
        (TopicPartition::new(topic.clone(), 9), 0),
    ];
    assert_eq!(read_group(&url, g).await, (6..10).collect::<Vec<_>>());
}

fn skotch(args: &[&str]) -> std::process::Output {
    Command::new(common::skotch_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run skotch")
}

fn printed_numbers(o: &std::process::Output) -> Vec<i64> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<i64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v["content"]["n"].as_i64().expect("n")
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_subscribe_with_a_group_continues_where_it_stopped() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "sg-cli", 2).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("sg-cli");
    write_numbers(&url, 0..10).await;
    for (extra, range) in [(vec![], 0..10), (vec!["--manual-commit"], 10..15)] {
        if range.start == 10 {
            write_numbers(&url, 10..15).await;
        }
        let mut args = vec![
            "subscribe",
            &url,
            "--group",
            &group,
            "--start-at",
            "earliest",
            "--until-eos",
            "--json",
        ];
        args.extend(extra.iter().copied());
        assert_eq!(printed_numbers(&skotch(&args)), range.collect::<Vec<_>>());
    }
    // Both protocols, same group offsets: nothing new to read.
    let o = skotch(&[
        "subscribe",
        &url,
        "--group",
        &group,
        "--group-protocol",
        "consumer",
        "--until-eos",
        "--json",
    ]);
    assert_eq!(printed_numbers(&o), Vec::<i64>::new());
}
