//! The stream engine against the real broker: two handlers in one engine
//! with a sink, each crash policy (stop, restart, dead-letter) with the
//! group's committed offsets checked so nothing passes an unhandled
//! record, and a graceful shutdown with records in flight.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use skotch::client::Admin;
use skotch::stream::crash_policy::dead_letter_headers as dlq;
use skotch::stream::{
    CrashPolicy, DeadLetterOptions, Engine, EngineError, EngineOptions, GroupHandle, JsonCodec,
    Message, Output, RebalanceListener, RestartOptions, StartPosition, Stream, TopicPartition,
};

use common::stream::{committed, group_options, number, write_numbers};

/// Every wait in this file is bounded by this.
const LIMIT: Duration = Duration::from_secs(40);

/// Engine defaults for fast tests: from the earliest record, short group
/// timeouts, frequent commits.
fn engine_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.stream.start_at = StartPosition::Earliest;
    o.stream.credentials = skotch::stream::CredentialSource::None;
    o.group = group_options("");
    o.shutdown_timeout = Duration::from_secs(10);
    o
}

/// Every record of `topic` (read without a group), with its metadata.
async fn read_all(url: &str) -> Vec<(Message, skotch::stream::Metadata)> {
    let stream = Stream::new()
        .start_at(StartPosition::Earliest)
        .until_eos(true);
    let mut r = stream.open_reader(url).await.expect("reader");
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(m) = r.read_with_metadata().await {
            out.push(m.expect("read"));
        }
    })
    .await
    .expect("read in time");
    r.close().await.expect("close");
    out
}

/// Records the partitions assigned to a handler.
struct Assigned(Arc<Mutex<Vec<TopicPartition>>>);

#[async_trait::async_trait]
impl RebalanceListener for Assigned {
    async fn on_assigned(&mut self, _group: &GroupHandle, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().extend_from_slice(partitions);
    }
}

/// Resolves once `done()` holds (checked every 20 ms).
async fn until(done: impl Fn() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handlers_share_one_engine_and_one_producer() {
    let client = common::client().await;
    let a = common::create_topic(&client, "eng-a", 1).await;
    let b = common::create_topic(&client, "eng-b", 1).await;
    let sink = common::create_topic(&client, "eng-sink", 1).await;
    let base = format!("kafka://{}", common::bootstrap());
    write_numbers(&format!("{base}/{a}"), 0..10).await;
    write_numbers(&format!("{base}/{b}"), 100..110).await;

    let mut engine = Engine::new(engine_options());
    let group_a = common::unique_topic("eng-double");
    let group_b = common::unique_topic("eng-count");
    let handled = Arc::new(AtomicU64::new(0));
    let seen_b = Arc::new(Mutex::new(Vec::new()));

    // Per record: each number doubled into the sink (JSON codec both ways).
    let mut o = engine.handler_options(&group_a);
    o.concurrency = 3;
    let h = handled.clone();
    engine
        .handler(&group_a, &format!("{base}/{a}"))
        .options(o)
        .codec(JsonCodec::<serde_json::Value>::new())
        .sink(
            &format!("{base}/{sink}"),
            JsonCodec::<serde_json::Value>::new(),
        )
        .each(move |r| {
            let h = h.clone();
            async move {
                let n = r.value["n"].as_i64().ok_or("no n")?;
                h.fetch_add(1, Ordering::SeqCst);
                Ok::<_, &str>([Output::new(json!({ "n": n * 2 })).header("from", "double")])
            }
        });
    // Over the whole stream, hop messages: no outputs; starts at offset 3
    // (kstreams' initial_offsets) and has a rebalance listener.
    let seen = seen_b.clone();
    let h = handled.clone();
    let mut o = engine.handler_options(&group_b);
    o.group.initial_offsets = vec![(TopicPartition::new(b.as_str(), 0), 3)];
    let assigned = Arc::new(Mutex::new(Vec::new()));
    engine
        .handler(&group_b, &format!("{base}/{b}"))
        .options(o)
        .listener(Assigned(assigned.clone()))
        .stream(move |mut records| {
            let seen = seen.clone();
            let h = h.clone();
            async move {
                while let Some(r) = records.next().await {
                    let r = r?;
                    seen.lock().unwrap().push(number(&r.value));
                    records.done(&r.metadata, None::<Output<Message>>).await?;
                    h.fetch_add(1, Ordering::SeqCst);
                }
                Ok::<_, EngineError>(())
            }
        });
    let h = handled.clone();
    tokio::time::timeout(
        LIMIT,
        engine.run_until(until(move || h.load(Ordering::SeqCst) >= 17)),
    )
    .await
    .expect("engine in time")
    .expect("engine");

    assert_eq!(*seen_b.lock().unwrap(), (103..110).collect::<Vec<_>>());
    assert_eq!(
        *assigned.lock().unwrap(),
        vec![TopicPartition::new(b.as_str(), 0)],
        "the handler's listener saw its assignment"
    );
    let out = read_all(&format!("{base}/{sink}")).await;
    let mut doubled: Vec<i64> = out.iter().map(|(m, _)| number(m)).collect();
    doubled.sort();
    assert_eq!(doubled, (0..10).map(|n| n * 2).collect::<Vec<_>>());
    for (_, md) in &out {
        assert_eq!(md.format(), Some(&b"json"[..]), "hop's _format header");
        assert!(md.message_id().is_some(), "hop's _id header");
        assert_eq!(md.header("from").map(|v| &v[..]), Some(&b"double"[..]));
    }
    assert_eq!(committed(&client, &group_a, &a).await, Some(10));
    assert_eq!(committed(&client, &group_b, &b).await, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_policy_returns_the_error_and_commits_up_to_the_failed_record() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "eng-stop", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("eng-stop");
    write_numbers(&url, 0..10).await;

    let mut engine = Engine::new(engine_options());
    engine.handler(&group, &url).each(|r| async move {
        let n = number(&r.value);
        if n == 5 {
            return Err(format!("cannot handle {n}"));
        }
        Ok(None::<Output<Message>>)
    });
    let e = tokio::time::timeout(LIMIT, engine.run())
        .await
        .expect("engine in time")
        .expect_err("the handler failed");
    match &e {
        EngineError::Handler {
            handler,
            offset,
            attempts,
            error,
            ..
        } => {
            assert_eq!(handler, &group);
            assert_eq!(*offset, 5);
            assert_eq!(*attempts, 1);
            assert_eq!(error, "cannot handle 5");
        }
        other => panic!("expected the handler failure, got {other:?}"),
    }
    assert_eq!(
        committed(&client, &group, &topic).await,
        Some(5),
        "committed exactly up to the failed record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_restarts_until_the_record_is_handled() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "eng-restart", 1).await;
    let url = format!("kafka://{}/{topic}", common::bootstrap());
    let group = common::unique_topic("eng-restart");
    write_numbers(&url, 0..10).await;

    let mut engine = Engine::new(engine_options());
    let mut o = engine.handler_options(&group);
    o.crash_policy = CrashPolicy::Restart(RestartOptions {
        initial_delay: Duration::from_millis(200),
        max_delay: Duration::from_millis(1_000),
        ..Default::default()
    });
    let failures = Arc::new(AtomicU32::new(0));
    let handled = Arc::new(Mutex::new(BTreeSet::new()));
    // What the group had committed each time record 4 failed.
    let committed_while_failing = Arc::new(Mutex::new(Vec::new()));
    let (f, h, c) = (
        failures.clone(),
        handled.clone(),
        committed_while_failing.clone(),
    );
    let (cl, g, t) = (client.clone(), group.clone(), topic.clone());
    engine.handler(&group, &url).options(o).each(move |r| {
        let (f, h, c) = (f.clone(), h.clone(), c.clone());
        let (cl, g, t) = (cl.clone(), g.clone(), t.clone());
        async move {
            let n = number(&r.value);
            if n == 4 && f.load(Ordering::SeqCst) < 2 {
                f.fetch_add(1, Ordering::SeqCst);
                let now = committed(&cl, &g, &t).await;
                c.lock().unwrap().push(now);
                return Err("not yet");
            }
            h.lock().unwrap().insert(n);
            Ok(None::<Output<Message>>)
        }
    });
    let h = handled.clone();
    let started = std::time::Instant::now();
    tokio::time::timeout(
        LIMIT,
        engine.run_until(until(move || h.lock().unwrap().len() == 10)),
    )
    .await
    .expect("engine in time")
    .expect("engine");
    eprintln!("restart test: {:?}", started.elapsed());

    assert_eq!(failures.load(Ordering::SeqCst), 2);
    assert_eq!(*handled.lock().unwrap(), (0..10).collect::<BTreeSet<_>>());
    let seen = committed_while_failing.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|c| c.is_none_or(|c| c <= 4)),
        "nothing committed past the failing record: {seen:?}"
    );
    assert_eq!(
        seen[1],
        Some(4),
        "the first run committed up to the failing record when it stopped"
    );
    assert_eq!(committed(&client, &group, &topic).await, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_policy_retries_then_dead_letters_and_moves_on() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "eng-dl", 1).await;
    let dlq_topic = common::create_topic(&client, "eng-dlq", 1).await;
    let base = format!("kafka://{}", common::bootstrap());
    let url = format!("{base}/{topic}");
    let group = common::unique_topic("eng-dl");
    write_numbers(&url, 0..10).await;

    let mut engine = Engine::new(engine_options());
    let mut o = engine.handler_options(&group);
    let mut d = DeadLetterOptions::new(dlq_topic.clone());
    d.retry_delay = Duration::from_millis(50);
    o.crash_policy = CrashPolicy::DeadLetter(d);
    let attempts = Arc::new(AtomicU32::new(0));
    let handled = Arc::new(Mutex::new(BTreeSet::new()));
    let committed_while_failing = Arc::new(Mutex::new(Vec::new()));
    let (a, h, c) = (
        attempts.clone(),
        handled.clone(),
        committed_while_failing.clone(),
    );
    let (cl, g, t) = (client.clone(), group.clone(), topic.clone());
    engine.handler(&group, &url).options(o).each(move |r| {
        let (a, h, c) = (a.clone(), h.clone(), c.clone());
        let (cl, g, t) = (cl.clone(), g.clone(), t.clone());
        async move {
            let n = number(&r.value);
            if n == 3 {
                a.fetch_add(1, Ordering::SeqCst);
                assert_eq!(r.attempt, a.load(Ordering::SeqCst));
                let now = committed(&cl, &g, &t).await;
                c.lock().unwrap().push(now);
                return Err(format!("cannot handle {n}"));
            }
            if n > 3 {
                // Handled only after 3 was dead-lettered and acknowledged
                // (one record at a time): commits may pass it now.
                c.lock().unwrap().push(None);
            }
            h.lock().unwrap().insert(n);
            Ok(None::<Output<Message>>)
        }
    });
    let h = handled.clone();
    tokio::time::timeout(
        LIMIT,
        engine.run_until(until(move || h.lock().unwrap().len() == 9)),
    )
    .await
    .expect("engine in time")
    .expect("engine");

    assert_eq!(attempts.load(Ordering::SeqCst), 3, "3 tries");
    let expected: BTreeSet<i64> = (0..10).filter(|n| *n != 3).collect();
    assert_eq!(*handled.lock().unwrap(), expected, "later records handled");
    let seen = committed_while_failing.lock().unwrap().clone();
    assert!(
        seen[..3].iter().all(|c| c.is_none_or(|c| c <= 3)),
        "nothing committed past 3 while it failed: {seen:?}"
    );
    assert_eq!(committed(&client, &group, &topic).await, Some(10));

    let dead = read_all(&format!("{base}/{dlq_topic}")).await;
    assert_eq!(dead.len(), 1, "exactly the failed record");
    let (m, md) = &dead[0];
    assert_eq!(number(m), 3, "the original value, read as hop's model");
    assert_eq!(md.format(), Some(&b"json"[..]), "its own headers kept");
    let header =
        |k: &str| String::from_utf8(md.header(k).expect(k).to_vec()).expect("UTF-8 header");
    assert_eq!(header(dlq::ERROR), "cannot handle 3");
    assert_eq!(header(dlq::TOPIC), topic);
    assert_eq!(header(dlq::PARTITION), "0");
    assert_eq!(header(dlq::OFFSET), "3");
    assert_eq!(header(dlq::ATTEMPTS), "3");
    assert_eq!(header(dlq::HANDLER), group);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_records_and_leaves_the_group() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "eng-shut", 1).await;
    let sink = common::create_topic(&client, "eng-shut-sink", 1).await;
    let base = format!("kafka://{}", common::bootstrap());
    let url = format!("{base}/{topic}");
    let group = common::unique_topic("eng-shut");
    write_numbers(&url, 0..20).await;

    let mut engine = Engine::new(engine_options());
    let mut o = engine.handler_options(&group);
    o.concurrency = 4;
    let started = Arc::new(Mutex::new(BTreeSet::new()));
    let finished = Arc::new(Mutex::new(BTreeSet::new()));
    let (s, f) = (started.clone(), finished.clone());
    engine
        .handler(&group, &url)
        .options(o)
        .sink(&format!("{base}/{sink}"), skotch::stream::HopCodec)
        .each(move |r| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                let n = number(&r.value);
                s.lock().unwrap().insert(n);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                f.lock().unwrap().insert(n);
                Ok::<_, String>(Some(Output::new(Message::Json(json!({ "n": n })))))
            }
        });
    let shutdown = engine.shutdown_handle();
    let s = started.clone();
    let trigger = tokio::spawn(async move {
        until(|| s.lock().unwrap().len() == 4).await;
        shutdown.shutdown();
    });
    let at = std::time::Instant::now();
    tokio::time::timeout(LIMIT, engine.run())
        .await
        .expect("engine in time")
        .expect("engine");
    trigger.await.unwrap();
    eprintln!("shutdown test: {:?}", at.elapsed());

    let in_flight = started.lock().unwrap().clone();
    assert_eq!(in_flight, (0..4).collect::<BTreeSet<_>>(), "4 in flight");
    assert_eq!(*finished.lock().unwrap(), in_flight, "they finished");
    let out: BTreeSet<i64> = read_all(&format!("{base}/{sink}"))
        .await
        .iter()
        .map(|(m, _)| number(m))
        .collect();
    assert_eq!(out, in_flight, "their outputs are in the sink");
    assert_eq!(
        committed(&client, &group, &topic).await,
        Some(4),
        "the commit covers exactly them"
    );
    let g = Admin::new(client.clone())
        .describe_group(&group)
        .await
        .expect("describe");
    assert!(g.members.is_empty(), "the group was left: {g:?}");
    assert_eq!(g.state, "Empty");
}
