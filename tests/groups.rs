//! Consumer groups against the real broker: members joining, leaving and
//! dying under load with both group protocols, ownership never shared under
//! cooperative rebalancing, and manual commits that resume at the lowest
//! unfinished record after a crash.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use skotch::client::group::assignor;
use skotch::client::{
    Client, ConsumerConfig, GroupConfig, GroupConsumer, GroupHandle, GroupProtocol,
    ManualCommitListener, Offset, Producer, ProducerConfig, ProducerRecord, RebalanceListener,
    TopicPartition,
};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Who owns which partition, from listener events, and every time two
/// members owned one at once.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<LedgerInner>>);

#[derive(Default)]
struct LedgerInner {
    owner: HashMap<TopicPartition, String>,
    violations: Vec<String>,
    events: Vec<String>,
}

impl Ledger {
    fn listener(&self, name: &str) -> Recorder {
        Recorder {
            name: name.to_string(),
            ledger: self.clone(),
        }
    }

    /// A killed member owns nothing any more.
    fn forget(&self, name: &str) {
        let mut l = self.0.lock().unwrap();
        l.owner.retain(|_, o| o != name);
        l.events.push(format!("{name} killed"));
    }

    fn violations(&self) -> Vec<String> {
        self.0.lock().unwrap().violations.clone()
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().events.clone()
    }
}

struct Recorder {
    name: String,
    ledger: Ledger,
}

#[async_trait]
impl RebalanceListener for Recorder {
    async fn on_assigned(&mut self, _g: &GroupHandle, partitions: &[TopicPartition]) {
        let mut l = self.ledger.0.lock().unwrap();
        l.events
            .push(format!("{} assigned {partitions:?}", self.name));
        for tp in partitions {
            if let Some(other) = l.owner.get(tp) {
                if *other != self.name {
                    let v = format!("{tp} assigned to {} while {other} owns it", self.name);
                    l.violations.push(v);
                }
            }
            l.owner.insert(tp.clone(), self.name.clone());
        }
    }

    async fn on_revoked(&mut self, _g: &GroupHandle, partitions: &[TopicPartition]) {
        let mut l = self.ledger.0.lock().unwrap();
        l.events
            .push(format!("{} revoked {partitions:?}", self.name));
        for tp in partitions {
            if l.owner.get(tp) == Some(&self.name) {
                l.owner.remove(tp);
            }
        }
    }

    async fn on_lost(&mut self, _g: &GroupHandle, partitions: &[TopicPartition]) {
        let mut l = self.ledger.0.lock().unwrap();
        l.events.push(format!("{} lost {partitions:?}", self.name));
        for tp in partitions {
            if l.owner.get(tp) == Some(&self.name) {
                l.owner.remove(tp);
            }
        }
    }
}

fn group_config(group: &str, protocol: GroupProtocol, assignor_name: &str) -> GroupConfig {
    let mut c = GroupConfig::new(group);
    c.group_protocol = protocol;
    // Short timeouts so a killed member is noticed within seconds (the
    // broker's minimum session timeout is lowered in scripts/kafka).
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_millis(500);
    c.auto_commit_interval = Duration::from_millis(500);
    if protocol == GroupProtocol::Classic {
        c.assignors = vec![Arc::from(
            assignor::by_name(assignor_name).expect("assignor"),
        )];
    }
    c
}

fn earliest() -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: Some(Offset::Earliest),
        fetch_max_wait: Duration::from_millis(200),
        ..Default::default()
    }
}

/// A member running in its own task until stopped (closed in order) or
/// aborted (killed: no LeaveGroup, heartbeats just stop).
struct Running {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_member(
    topic: &str,
    config: GroupConfig,
    ledger: &Ledger,
    name: &str,
    seen: Arc<Mutex<BTreeSet<i64>>>,
) -> Running {
    let client = common::client().await;
    let mut c = GroupConsumer::subscribe(client, earliest(), config, &[topic.to_string()])
        .await
        .expect("subscribe");
    c.add_listener(ledger.listener(name));
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let name = name.to_string();
    let task = tokio::spawn(async move {
        while !stop2.load(Ordering::Relaxed) {
            match c.poll().await {
                Ok(p) => {
                    let mut s = seen.lock().unwrap();
                    for r in p.records {
                        let v = r.value.as_deref().unwrap_or_default();
                        let n: i64 = std::str::from_utf8(v).unwrap().parse().unwrap();
                        s.insert(n);
                    }
                }
                Err(e) => panic!("{name}: poll failed: {e}"),
            }
        }
        c.close().await.expect("close");
    });
    Running { stop, task }
}

impl Running {
    async fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("member task");
    }

    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

const RECORDS: i64 = 50_000;

/// Write `RECORDS` records, numbered, spread over a few seconds.
async fn produce_slowly(client: Client, topic: String) {
    let producer = Producer::new(client, ProducerConfig::default()).unwrap();
    let mut pending = Vec::new();
    for i in 0..RECORDS {
        pending.push(
            producer
                .send(ProducerRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: Some(Bytes::from(format!("k{i}"))),
                    value: Some(Bytes::from(i.to_string())),
                    headers: vec![],
                    timestamp: Some(now_ms()),
                })
                .await
                .expect("send"),
        );
        if i % 5_000 == 4_999 {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    for d in pending {
        d.await.expect("delivered");
    }
}

/// Three members share six partitions while a producer writes; one joins
/// late, one is killed without LeaveGroup, one leaves in order, another
/// joins. Every record is processed at least once; `exclusive` also
/// checks that no partition ever had two owners at once.
async fn join_leave_under_load(protocol: GroupProtocol, assignor_name: &str, exclusive: bool) {
    let client = common::client().await;
    let topic = common::create_topic(&client, "group-load", 6).await;
    let group = common::unique_topic("group");
    let ledger = Ledger::default();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let cfg = || group_config(&group, protocol, assignor_name);

    let producer = tokio::spawn(produce_slowly(client.clone(), topic.clone()));
    let a = start_member(&topic, cfg(), &ledger, "a", seen.clone()).await;
    let b = start_member(&topic, cfg(), &ledger, "b", seen.clone()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = start_member(&topic, cfg(), &ledger, "c", seen.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // b dies: no LeaveGroup; the coordinator notices after the session
    // timeout and moves its partitions.
    b.kill().await;
    ledger.forget("b");
    let d = start_member(&topic, cfg(), &ledger, "d", seen.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.close().await;
    producer.await.expect("producer");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = seen.lock().unwrap().len() as i64;
        if n == RECORDS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {RECORDS} records processed; events: {:#?}",
            ledger.events()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.close().await;
    d.close().await;
    let s = seen.lock().unwrap();
    assert_eq!(s.first(), Some(&0));
    assert_eq!(s.last(), Some(&(RECORDS - 1)));
    if exclusive {
        assert!(
            ledger.violations().is_empty(),
            "{:#?}\nevents: {:#?}",
            ledger.violations(),
            ledger.events()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classic_cooperative_sticky_join_leave_under_load() {
    join_leave_under_load(GroupProtocol::Classic, "cooperative-sticky", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn classic_range_join_leave_under_load() {
    join_leave_under_load(GroupProtocol::Classic, "range", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kip848_join_leave_under_load() {
    join_leave_under_load(GroupProtocol::Consumer, "", true).await;
}

/// Records finished out of order, then a crash: the next member resumes at
/// the lowest unfinished offset and gets again only the records not done.
async fn crash_resumes_at_lowest_unfinished(protocol: GroupProtocol) {
    let client = common::client().await;
    let topic = common::create_topic(&client, "group-crash", 1).await;
    let group = common::unique_topic("crash");
    produce_n(&client, &topic, 100).await;
    let tp = TopicPartition::new(topic.clone(), 0);

    let mut cfg = group_config(&group, protocol, "range");
    cfg.enable_auto_commit = false;
    let mut first = GroupConsumer::subscribe(
        common::client().await,
        earliest(),
        cfg.clone(),
        std::slice::from_ref(&topic),
    )
    .await
    .expect("subscribe");
    let mut offsets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while offsets.len() < 100 {
        assert!(Instant::now() < deadline, "read only {}", offsets.len());
        let p = first.poll().await.expect("poll");
        offsets.extend(p.records.iter().map(|r| r.offset));
    }
    // Workers finish in reverse order; 10 and 50 never finish.
    let unfinished = [10, 50];
    for o in offsets.iter().rev() {
        if !unfinished.contains(o) {
            first.mark_done(&tp, *o);
        }
    }
    first.commit_done().await.expect("commit");
    drop(first); // crash: no close, no LeaveGroup

    let mut second = GroupConsumer::subscribe(
        common::client().await,
        earliest(),
        cfg,
        std::slice::from_ref(&topic),
    )
    .await
    .expect("subscribe");
    // Manual commits: this listener commits what is done when the
    // partitions are revoked, which close does.
    second.add_listener(ManualCommitListener);
    let mut again = Vec::new();
    // The crashed member holds the partition until its session times out.
    let deadline = Instant::now() + Duration::from_secs(40);
    while again.len() < unfinished.len() {
        assert!(Instant::now() < deadline, "redelivered only {again:?}");
        let p = second.poll().await.expect("poll");
        again.extend(p.records.iter().map(|r| r.offset));
    }
    // Nothing lost, nothing done delivered again.
    assert_eq!(again, unfinished.to_vec());
    for o in &again {
        second.mark_done(&tp, *o);
    }
    second.close().await.expect("close");

    let committed = committed_offset(&group, &topic).await;
    assert_eq!(committed, Some(100));
}

async fn produce_n(client: &Client, topic: &str, n: i64) {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        pending.push(
            producer
                .send(ProducerRecord {
                    topic: topic.to_string(),
                    partition: None,
                    key: None,
                    value: Some(Bytes::from(i.to_string())),
                    headers: vec![],
                    timestamp: Some(now_ms()),
                })
                .await
                .expect("send"),
        );
    }
    for d in pending {
        d.await.expect("delivered");
    }
}

async fn committed_offset(group: &str, topic: &str) -> Option<i64> {
    let admin = skotch::client::Admin::new(common::client().await);
    let offsets: BTreeMap<TopicPartition, i64> =
        admin.list_group_offsets(group).await.expect("offsets");
    offsets.get(&TopicPartition::new(topic, 0)).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_crash_resumes_at_lowest_unfinished() {
    crash_resumes_at_lowest_unfinished(GroupProtocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_crash_resumes_at_lowest_unfinished() {
    crash_resumes_at_lowest_unfinished(GroupProtocol::Consumer).await;
}

/// What a member looked like after its last poll.
#[derive(Clone, Default)]
struct Snap {
    assignment: Vec<TopicPartition>,
    stable: bool,
}

/// Poll `a` and `b` until `ok` holds for their latest states or `limit`
/// passes; true when `ok` held. Each member polls in its own loop: a
/// classic JoinGroup waits for every member, and poll returns only once the
/// join completes, so polling them in turn (or in lockstep) would wait for
/// itself until the rebalance timeout.
async fn poll_both(
    a: &mut GroupConsumer,
    b: &mut GroupConsumer,
    limit: Duration,
    ok: impl Fn(&Snap, &Snap) -> bool,
) -> bool {
    let snaps = Mutex::new([Snap::default(), Snap::default()]);
    let done = AtomicBool::new(false);
    let deadline = Instant::now() + limit;
    tokio::join!(
        poll_loop(a, 0, &snaps, &done, deadline, &ok),
        poll_loop(b, 1, &snaps, &done, deadline, &ok)
    );
    done.load(Ordering::Relaxed)
}

/// One member's loop in [`poll_both`].
async fn poll_loop(
    c: &mut GroupConsumer,
    i: usize,
    snaps: &Mutex<[Snap; 2]>,
    done: &AtomicBool,
    deadline: Instant,
    ok: &impl Fn(&Snap, &Snap) -> bool,
) {
    while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
        c.poll().await.expect("poll");
        let mut s = snaps.lock().unwrap();
        s[i] = Snap {
            assignment: c.assignment(),
            stable: c.is_stable(),
        };
        if ok(&s[0], &s[1]) {
            done.store(true, Ordering::Relaxed);
        }
    }
}

async fn poll_both_until(
    a: &mut GroupConsumer,
    b: &mut GroupConsumer,
    secs: u64,
    what: &str,
    ok: impl Fn(&Snap, &Snap) -> bool,
) {
    let held = poll_both(a, b, Duration::from_secs(secs), ok).await;
    assert!(
        held,
        "timed out waiting for {what}; assignments {:?} / {:?}",
        a.assignment(),
        b.assignment()
    );
}

/// Poll `c` until `ok(c)` holds, for at most `secs` seconds.
async fn poll_until(
    c: &mut GroupConsumer,
    secs: u64,
    what: &str,
    ok: impl Fn(&GroupConsumer) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok(c) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; assignment {:?}",
            c.assignment()
        );
        c.poll().await.expect("poll");
    }
}

fn static_config(group: &str, instance: &str) -> GroupConfig {
    let mut c = group_config(group, GroupProtocol::Classic, "range");
    c.group_instance_id = Some(instance.to_string());
    c
}

/// KIP-345: a static member that restarts within the session timeout gets
/// its partitions back without a rebalance; the other member keeps its own
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restarts_without_a_rebalance() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "group-static", 4).await;
    let group = common::unique_topic("static");
    let ledger = Ledger::default();
    let subscribe = |instance: &'static str| {
        let topic = topic.clone();
        let group = group.clone();
        async move {
            GroupConsumer::subscribe(
                common::client().await,
                earliest(),
                static_config(&group, instance),
                std::slice::from_ref(&topic),
            )
            .await
            .expect("subscribe")
        }
    };
    let mut a = subscribe("instance-a").await;
    a.add_listener(ledger.listener("a"));
    let mut b = subscribe("instance-b").await;
    b.add_listener(ledger.listener("b"));
    // Both settle with two partitions each.
    poll_both_until(&mut a, &mut b, 60, "a 2/2 split", |a, b| {
        a.assignment.len() == 2 && b.assignment.len() == 2 && a.stable && b.stable
    })
    .await;
    let a_parts = a.assignment();
    let b_generation = b.handle().generation();
    // a closes: a static member does not leave the group...
    a.close().await.expect("close a");
    let events_before = ledger.events().len();
    // ...so when it comes back with the same instance id, it gets the same
    // partitions and b sees no rebalance.
    let mut a = subscribe("instance-a").await;
    a.add_listener(ledger.listener("a"));
    poll_both_until(
        &mut a,
        &mut b,
        30,
        "a to get its partitions back",
        |a, _| a.stable && a.assignment == a_parts,
    )
    .await;
    // Keep both polling a little: b must not be dragged into a rebalance.
    poll_both(&mut a, &mut b, Duration::from_secs(2), |_, _| false).await;
    assert_eq!(
        b.handle().generation(),
        b_generation,
        "b went through a rebalance"
    );
    let events: Vec<String> = ledger.events()[events_before..].to_vec();
    assert!(
        events.iter().all(|e| !e.starts_with("b ")),
        "b saw assignment changes: {events:?}"
    );
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// `max.poll.interval.ms`: a member that stops polling leaves the group,
/// its partitions move to the member that keeps polling, and when it polls
/// again it hears they were lost and rejoins.
async fn stalled_member_is_replaced(protocol: GroupProtocol) {
    let client = common::client().await;
    let topic = common::create_topic(&client, "group-stall", 2).await;
    let group = common::unique_topic("stall");
    let ledger = Ledger::default();
    let mut cfg = group_config(&group, protocol, "range");
    cfg.max_poll_interval = Duration::from_secs(3);
    let mut slow = GroupConsumer::subscribe(
        common::client().await,
        earliest(),
        cfg.clone(),
        std::slice::from_ref(&topic),
    )
    .await
    .expect("subscribe");
    slow.add_listener(ledger.listener("slow"));
    let mut busy = GroupConsumer::subscribe(
        common::client().await,
        earliest(),
        cfg,
        std::slice::from_ref(&topic),
    )
    .await
    .expect("subscribe");
    busy.add_listener(ledger.listener("busy"));
    poll_both_until(&mut slow, &mut busy, 60, "a 1/1 split", |s, b| {
        s.assignment.len() == 1 && b.assignment.len() == 1 && s.stable && b.stable
    })
    .await;
    // `slow` stops polling; `busy` ends up with both partitions.
    poll_until(&mut busy, 60, "busy to take over", |b| {
        b.assignment().len() == 2 && b.is_stable()
    })
    .await;
    // `slow` polls again: its partition is reported lost, it rejoins.
    poll_both_until(&mut slow, &mut busy, 60, "slow to rejoin", |s, b| {
        s.stable && b.stable && s.assignment.len() == 1
    })
    .await;
    let events = ledger.events();
    assert!(
        events.iter().any(|e| e.starts_with("slow lost")),
        "no loss reported: {events:?}"
    );
    slow.close().await.expect("close");
    busy.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_stalled_member_is_replaced() {
    stalled_member_is_replaced(GroupProtocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_stalled_member_is_replaced() {
    stalled_member_is_replaced(GroupProtocol::Consumer).await;
}

/// `auto.offset.reset=none` with nothing committed: poll says so, naming
/// the partition, until the application seeks it; then reading goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_committed_offset_and_reset_none_waits_for_a_seek() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "group-none", 1).await;
    produce_n(&client, &topic, 5).await;
    let group = common::unique_topic("none");
    let consumer_config = ConsumerConfig {
        auto_offset_reset: None,
        ..earliest()
    };
    let mut c = GroupConsumer::subscribe(
        common::client().await,
        consumer_config,
        group_config(&group, GroupProtocol::Classic, "range"),
        std::slice::from_ref(&topic),
    )
    .await
    .expect("subscribe");
    let tp = TopicPartition::new(topic.clone(), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        assert!(Instant::now() < deadline, "no error reported");
        match c.poll().await {
            Err(e) => break e,
            Ok(p) => assert!(p.records.is_empty(), "read without an offset"),
        }
    };
    assert!(
        err.to_string().contains("auto.offset.reset is none"),
        "{err}"
    );
    assert!(err.to_string().contains(&tp.to_string()), "{err}");
    // Still an error at the next poll, without a seek.
    assert!(c.poll().await.is_err());
    assert!(c.seek(&tp, Offset::At(2)));
    let mut offsets = Vec::new();
    while offsets.len() < 3 {
        assert!(Instant::now() < deadline, "read only {offsets:?}");
        offsets.extend(
            c.poll()
                .await
                .expect("poll")
                .records
                .iter()
                .map(|r| r.offset),
        );
    }
    assert_eq!(offsets, vec![2, 3, 4]);
    c.close().await.expect("close");
}

/// Two classic members polled in turn from one task: `poll_for` returns
/// while a JoinGroup waits for the other member, and a later poll finishes
/// the rebalance (Java's `poll(Duration)`). Before issue 12 the first
/// member's poll blocked until the second one joined, which it never could
/// from the same task.
#[tokio::test]
async fn classic_members_can_poll_in_turn_from_one_task() {
    let client = common::client().await;
    let topic = common::create_topic(&client, "inturn", 4).await;
    let group = common::unique_topic("inturn-group");
    let consumer_config = || ConsumerConfig {
        auto_offset_reset: Some(Offset::Earliest),
        ..Default::default()
    };
    let mut a = GroupConsumer::subscribe(
        common::client().await,
        consumer_config(),
        group_config(&group, GroupProtocol::Classic, "range"),
        std::slice::from_ref(&topic),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(a.is_stable() && a.assignment().len() == 4) {
        assert!(Instant::now() < deadline, "A never got the partitions");
        a.poll_for(Duration::from_millis(200)).await.unwrap();
    }
    let mut b = GroupConsumer::subscribe(
        common::client().await,
        consumer_config(),
        group_config(&group, GroupProtocol::Classic, "range"),
        std::slice::from_ref(&topic),
    )
    .await
    .unwrap();
    let mut slowest = Duration::ZERO;
    while !(a.is_stable()
        && b.is_stable()
        && a.assignment().len() == 2
        && b.assignment().len() == 2)
    {
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "no balanced assignment: A {:?}, B {:?}",
            a.assignment(),
            b.assignment()
        );
        for m in [&mut a, &mut b] {
            let t = Instant::now();
            m.poll_for(Duration::from_millis(200)).await.unwrap();
            slowest = slowest.max(t.elapsed());
        }
    }
    println!("slowest poll_for(200 ms) during the rebalance: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "a poll blocked for {slowest:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A classic leader notices that a subscribed topic gained partitions
/// and rebalances so that they get an owner (Java does the same).
#[tokio::test]
async fn classic_leader_assigns_new_partitions() {
    let admin_client = common::client().await;
    let topic = common::create_topic(&admin_client, "grow", 2).await;
    let client = Client::connect(
        skotch::client::ClientConfig::new(&common::bootstrap())
            .unwrap()
            .metadata_max_age(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let mut c = GroupConsumer::subscribe(
        client,
        ConsumerConfig {
            auto_offset_reset: Some(Offset::Earliest),
            ..Default::default()
        },
        group_config(
            &common::unique_topic("grow-group"),
            GroupProtocol::Classic,
            "range",
        ),
        std::slice::from_ref(&topic),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(c.is_stable() && c.assignment().len() == 2) {
        assert!(Instant::now() < deadline, "never stable");
        c.poll().await.unwrap();
    }
    skotch::client::Admin::new(admin_client.clone())
        .create_partitions(&topic, 4)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.assignment().len() != 4 {
        assert!(
            Instant::now() < deadline,
            "the new partitions were never assigned: {:?}",
            c.assignment()
        );
        c.poll().await.unwrap();
    }
    c.close().await.unwrap();
}
