//! `RobustWriter` against the broker of `scripts/kafka`
//! (`SKOTCH_KAFKA_BOOTSTRAP`, default 127.0.0.1:9092): re-sends in order
//! before new messages, the same `_id` on a re-send, an empty journal once
//! everything is sent, a refused message dropped; and, with no broker, bad
//! journals refused before connecting. The throughput figures per fsync
//! policy: `cargo test -p skotch-stream --test robust_writer -- --ignored
//! --nocapture throughput`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch_client::{Admin, Client, ClientConfig, NewTopic};
use skotch_stream::journal::FILE_HEADER_LEN;
use skotch_stream::{
    FsyncPolicy, Journal, JournalError, JournalMessage, JournalOptions, Message, RobustError,
    RobustWriter, StartPosition, Stream, WriteOptions,
};

fn bootstrap() -> String {
    std::env::var("SKOTCH_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

async fn topic(partitions: i32, configs: &[(&str, &str)]) -> String {
    let name = format!("robust-{}", uuid::Uuid::new_v4().simple());
    let config = ClientConfig::new(&bootstrap())
        .unwrap()
        .connect_timeout(Duration::from_secs(20));
    let client = Client::connect(config)
        .await
        .expect("the broker from scripts/kafka must be running (scripts/kafka start)");
    let mut t = NewTopic::new(&name, partitions, 1);
    for (k, v) in configs {
        t = t.config(*k, *v);
    }
    Admin::new(client).create_topic(t, false).await.unwrap();
    name
}

fn url(topic: &str) -> String {
    format!("kafka://{}/{topic}", bootstrap())
}

/// A record as (value, headers).
type Rec = (Bytes, Vec<(String, Option<Bytes>)>);

/// Every record of the topic in offset order (one partition).
async fn read_all(topic: &str) -> Vec<Rec> {
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true);
    let mut r = stream.open_reader(&url(topic)).await.unwrap();
    let mut out = Vec::new();
    let read = async {
        while let Some(m) = r.read_with_metadata().await {
            let (m, md) = m.unwrap();
            let value = match m {
                Message::Blob(b) => b,
                other => other.serialize(),
            };
            let headers = md
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            out.push((value, headers));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("read the topic within 60 s");
    out
}

fn header<'a>(headers: &'a [(String, Option<Bytes>)], key: &str) -> Option<&'a Bytes> {
    headers
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_ref())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn pending_in(path: &Path) -> Vec<JournalMessage> {
    let data = std::fs::read(path).unwrap();
    Journal::recover_from_bytes(&data)
        .unwrap()
        .pending
        .into_iter()
        .map(|p| p.message)
        .collect()
}

/// A journal left by a "previous run" is re-sent at open, in order,
/// byte for byte (its `_id`s), before the new writer's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_journal_in_order_before_new_messages() {
    let topic = topic(1, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("publisher.journal");
    let mut ids = Vec::new();
    {
        let (mut j, pending) = Journal::open(&path).unwrap();
        assert!(pending.is_empty());
        for i in 0..50 {
            let id = uuid::Uuid::new_v4();
            ids.push(Bytes::copy_from_slice(id.as_bytes()));
            j.append(&JournalMessage {
                topic: topic.clone(),
                key: None,
                value: Some(Bytes::from(format!("old-{i}"))),
                headers: vec![
                    ("_id".into(), Some(ids[i].clone())),
                    ("_format".into(), Some(Bytes::from_static(b"blob"))),
                ],
                timestamp: Some(1_700_000_000_000 + i as i64),
            })
            .unwrap();
        }
    }
    let mut w = RobustWriter::open(&Stream::new(), &url(&topic), &path, Default::default())
        .await
        .unwrap();
    assert_eq!(w.resent(), 50);
    for i in 0..10 {
        w.write(Message::Blob(Bytes::from(format!("new-{i}"))))
            .await
            .unwrap();
    }
    let stats = w.close().await.unwrap();
    assert_eq!(
        (stats.resent, stats.written, stats.delivered),
        (50, 10, 60),
        "{stats:?}"
    );
    assert_eq!(file_len(&path), FILE_HEADER_LEN, "empty once all is sent");

    let records = read_all(&topic).await;
    let values: Vec<String> = records
        .iter()
        .map(|(v, _)| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..50)
        .map(|i| format!("old-{i}"))
        .chain((0..10).map(|i| format!("new-{i}")))
        .collect();
    assert_eq!(values, want, "re-sent first, in order");
    for (i, (_, headers)) in records.iter().take(50).enumerate() {
        assert_eq!(header(headers, "_id"), Some(&ids[i]), "same _id");
    }
    for (_, headers) in records.iter().skip(50) {
        assert_eq!(header(headers, "_id").map(Bytes::len), Some(16));
        assert_eq!(
            header(headers, "_format").map(|b| &b[..]),
            Some(&b"blob"[..])
        );
    }
}

/// A writer stopped as by a crash (abort: nothing more is marked) leaves
/// its unacknowledged messages in the journal; the next open re-sends them
/// with their `_id`, so every copy in the topic of one `_id` is the same
/// message, and duplicates are at most what was re-sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_keeps_the_same_id_after_abort() {
    let topic = topic(1, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let stream = Stream::new();
    let mut w = RobustWriter::open(&stream, &url(&topic), &path, Default::default())
        .await
        .unwrap();
    let mut headers = skotch_stream::Headers::new();
    headers.push("user", Bytes::from_static(b"kept"));
    for i in 0..200 {
        let opts = WriteOptions {
            headers: headers.clone(),
            key: Some(Bytes::from(format!("k{i}"))),
            ..Default::default()
        };
        w.write_with(Message::Blob(Bytes::from(format!("m{i}"))), opts)
            .await
            .unwrap();
    }
    w.journaled().await.unwrap();
    let stats = w.abort().await;
    assert_eq!(stats.journaled, 200, "{stats:?}");
    let left = pending_in(&path);
    eprintln!(
        "aborted: {} delivered, {} left in the journal",
        stats.delivered,
        left.len()
    );
    assert!(!left.is_empty(), "the abort came before every ack");
    assert_eq!(left.len() as u64 + stats.delivered, 200);

    let w = RobustWriter::open(&stream, &url(&topic), &path, Default::default())
        .await
        .unwrap();
    assert_eq!(w.resent(), left.len());
    let stats = w.close().await.unwrap();
    assert_eq!(stats.delivered, left.len() as u64);
    assert_eq!(file_len(&path), FILE_HEADER_LEN);

    let records = read_all(&topic).await;
    let mut by_id: BTreeMap<Bytes, Vec<&Rec>> = BTreeMap::new();
    for r in &records {
        by_id
            .entry(header(&r.1, "_id").unwrap().clone())
            .or_default()
            .push(r);
    }
    assert_eq!(by_id.len(), 200, "every message, each with its own _id");
    for copies in by_id.values() {
        for c in copies {
            assert_eq!(c, &copies[0], "every copy of one _id is the same message");
        }
    }
    for m in &left {
        let id = m.headers.iter().find(|(k, _)| k == "_id").unwrap();
        assert!(
            by_id.contains_key(id.1.as_ref().unwrap()),
            "the re-sent message kept its _id"
        );
    }
    let duplicates = records.len() - 200;
    eprintln!("duplicates: {duplicates} (bound: {} re-sent)", left.len());
    assert!(duplicates <= left.len());
    let mut values: Vec<String> = by_id
        .values()
        .map(|c| String::from_utf8(c[0].0.to_vec()).unwrap())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(values, want);
}

/// The journal is compacted as acknowledgements come (truncated to its
/// header whenever nothing is pending, rewritten when dead records
/// dominate), so it never holds the whole run; empty after flush and
/// close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_is_emptied_once_everything_is_sent() {
    let topic = topic(3, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let options = JournalOptions {
        compact_after: 64 << 10,
        ..Default::default()
    };
    let mut w = RobustWriter::open(&Stream::new(), &url(&topic), &path, options)
        .await
        .unwrap();
    let value = Bytes::from(vec![b'x'; 100]);
    let mut largest = 0;
    for i in 0..20_000 {
        w.write(Message::Blob(value.clone())).await.unwrap();
        if i % 500 == 0 {
            largest = largest.max(file_len(&path));
        }
    }
    w.flush().await.unwrap();
    assert_eq!(file_len(&path), FILE_HEADER_LEN, "empty after flush");
    let stats = w.close().await.unwrap();
    assert_eq!(stats.delivered, 20_000);
    assert_eq!(file_len(&path), FILE_HEADER_LEN, "empty after close");
    // 20 000 records of ~190 bytes would be 3.8 MB.
    eprintln!("largest journal seen while writing: {largest} bytes");
    assert!(
        largest < 2 << 20,
        "the journal never held the whole run: {largest}"
    );
}

/// A message the broker refuses for good (too large for the topic) is
/// reported and dropped from the journal, as hop does with errors that are
/// not retriable; the others are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_message_is_reported_and_dropped() {
    let topic = topic(1, &[("max.message.bytes", "1000")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut w = RobustWriter::open(&Stream::new(), &url(&topic), &path, Default::default())
        .await
        .unwrap();
    w.write(Message::Blob(Bytes::from_static(b"small")))
        .await
        .unwrap();
    w.write(Message::Blob(Bytes::from(vec![b'x'; 5000])))
        .await
        .unwrap();
    let err = w.flush().await.unwrap_err();
    match &err {
        RobustError::Undelivered {
            failed: 1,
            kept: 0,
            dropped: 1,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("MESSAGE_TOO_LARGE"), "{err}");
    w.write(Message::Blob(Bytes::from_static(b"after")))
        .await
        .unwrap();
    let stats = w.close().await.unwrap();
    assert_eq!((stats.delivered, stats.dropped), (2, 1), "{stats:?}");
    assert_eq!(file_len(&path), FILE_HEADER_LEN);
    let values: Vec<Bytes> = read_all(&topic).await.into_iter().map(|r| r.0).collect();
    assert_eq!(values, [&b"small"[..], &b"after"[..]]);
}

/// A corrupt journal (the error names the byte offset), one that others
/// may read, and one another writer holds are refused before any broker
/// is contacted (the URL's port 1 has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_journals_are_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let url = "kafka://127.0.0.1:1/t";
    let stream = Stream::new();

    // Corrupt: the first of two records damaged.
    let path = dir.path().join("corrupt");
    {
        let (mut j, _) = Journal::open(&path).unwrap();
        for v in ["one", "two"] {
            j.append(&JournalMessage {
                topic: "t".into(),
                value: Some(Bytes::from(v)),
                ..Default::default()
            })
            .unwrap();
        }
    }
    let mut data = std::fs::read(&path).unwrap();
    let at = FILE_HEADER_LEN as usize + 20;
    data[at] ^= 0xff;
    std::fs::write(&path, &data).unwrap();
    let err = RobustWriter::open(&stream, url, &path, Default::default())
        .await
        .unwrap_err();
    match &err {
        RobustError::Journal(e) => match &**e {
            JournalError::Corrupt { offset, .. } => assert_eq!(*offset, FILE_HEADER_LEN),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("corrupt at byte offset 12"),
        "{err}"
    );

    // Readable by others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join("open");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = RobustWriter::open(&stream, url, &path, Default::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RobustError::Journal(e) if matches!(**e, JournalError::Permissions { .. })),
            "{err:?}"
        );
    }

    // Held by another writer.
    let path = dir.path().join("held");
    let (_held, _) = Journal::open(&path).unwrap();
    let err = RobustWriter::open(&stream, url, &path, Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RobustError::Journal(e) if matches!(**e, JournalError::Locked { .. })),
        "{err:?}"
    );

    // A good journal and no broker: the connection error, and the journal
    // is released (it can be opened again at once).
    let path = dir.path().join("fine");
    let mut quick = Stream::new();
    quick.options.connect_timeout = Duration::from_millis(300);
    let err = RobustWriter::open(&quick, url, &path, Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RobustError::Stream(_)), "{err:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Journal::open(&path) {
            Ok(_) => break,
            Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Throughput of 10 000 small messages through the robust writer per
/// fsync policy, and the plain stream writer for comparison (printed; no
/// assertion on speed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn throughput() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let stream = Stream::new();
    // The journal alone, used naively: one append and one mark per
    // message, each fsynced (what batching saves).
    {
        let (mut j, _) = Journal::open(dir.path().join("naive")).unwrap();
        let t = Instant::now();
        for i in 0..N {
            let id = j
                .append(&JournalMessage {
                    topic: "t".into(),
                    value: Some(Bytes::from(format!("message {i:05}"))),
                    ..Default::default()
                })
                .unwrap();
            j.mark_sent(id).unwrap();
        }
        let took = t.elapsed();
        eprintln!(
            "journal alone, fsync per append and per mark (no broker): {N} messages in {:.1} ms = {:.0} msg/s",
            took.as_secs_f64() * 1e3,
            N as f64 / took.as_secs_f64()
        );
    }
    for round in 0..3 {
        for (name, policy) in [
            ("EveryAppend", Some(FsyncPolicy::EveryAppend)),
            (
                "Interval(100ms)",
                Some(FsyncPolicy::Interval(Duration::from_millis(100))),
            ),
            ("Never", Some(FsyncPolicy::Never)),
            ("no journal (StreamWriter)", None),
        ] {
            let topic = topic(3, &[]).await;
            let start = Instant::now();
            match policy {
                Some(fsync) => {
                    let path = dir.path().join(format!("j-{round}-{name}"));
                    let options = JournalOptions {
                        fsync,
                        ..Default::default()
                    };
                    let mut w = RobustWriter::open(&stream, &url(&topic), &path, options)
                        .await
                        .unwrap();
                    let opened = start.elapsed();
                    let t = Instant::now();
                    for i in 0..N {
                        w.write(Message::Blob(Bytes::from(format!("message {i:05}"))))
                            .await
                            .unwrap();
                    }
                    let stats = w.close().await.unwrap();
                    assert_eq!(stats.delivered, N as u64);
                    let took = t.elapsed();
                    eprintln!(
                        "round {round} {name:>26}: {N} messages in {:>6.1} ms = {:>7.0} msg/s (open {:.1} ms)",
                        took.as_secs_f64() * 1e3,
                        N as f64 / took.as_secs_f64(),
                        opened.as_secs_f64() * 1e3
                    );
                }
                None => {
                    let mut w = stream.open_writer(&url(&topic)).await.unwrap();
                    let t = Instant::now();
                    for i in 0..N {
                        w.write(Message::Blob(Bytes::from(format!("message {i:05}"))))
                            .await
                            .unwrap();
                    }
                    w.close().await.unwrap();
                    let took = t.elapsed();
                    eprintln!(
                        "round {round} {name:>26}: {N} messages in {:>6.1} ms = {:>7.0} msg/s",
                        took.as_secs_f64() * 1e3,
                        N as f64 / took.as_secs_f64()
                    );
                }
            }
        }
    }
}
