//! The 3-node cluster of `scripts/cluster` for failover tests: where it
//! is, what leads a partition, and node faults (SIGKILL and restart,
//! SIGSTOP and SIGCONT), one at a time or driven by a [`Chaos`] thread.
//!
//! Every action runs `scripts/cluster`, which only ever touches the three
//! local nodes (127.0.0.1), and is bounded in time: a script that does not
//! finish in time is killed and the action panics. The functions block:
//! call them from a test thread, `spawn_blocking`, or a multi-thread
//! runtime's worker.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use skotch::client::metadata::PartitionInfo;
use skotch::client::{Admin, Client, ClientConfig, NewTopic};

/// Bootstrap address list of the cluster started by `scripts/cluster
/// start` (its three client ports). Like [`super::bootstrap`], it comes
/// from `SKOTCH_CLUSTER_BOOTSTRAP` (set by `scripts/test`) and falls back
/// to the default ports.
pub fn cluster_bootstrap() -> String {
    std::env::var("SKOTCH_CLUSTER_BOOTSTRAP")
        .unwrap_or_else(|_| "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094".into())
}

/// One test of a test binary at a time breaks the cluster (test binaries
/// themselves run one after another).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTER: Mutex<()> = Mutex::new(());
    CLUSTER.lock().unwrap_or_else(|p| p.into_inner())
}

/// A two-worker runtime for a cluster test (the harness functions block).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A client of the cluster, with short timeouts so a dead node is noticed
/// quickly.
pub async fn cluster_client() -> Client {
    super::init_logging();
    let config = ClientConfig::new(&cluster_bootstrap())
        .expect("bootstrap")
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(5));
    Client::connect(config)
        .await
        .expect("the cluster from scripts/cluster must be running (scripts/cluster start)")
}

/// A fresh topic with `partitions` partitions and 3 replicas, once every
/// partition has a leader and a full ISR.
pub async fn create_topic(client: &Client, prefix: &str, partitions: i32) -> String {
    let name = super::unique_topic(prefix);
    Admin::new(client.clone())
        .create_topic(NewTopic::new(&name, partitions, 3), false)
        .await
        .expect("create topic");
    wait_for(
        client,
        &name,
        Duration::from_secs(30),
        "a leader and 3 in-sync replicas everywhere",
        |ps| {
            ps.len() == partitions as usize && ps.iter().all(|p| p.leader >= 0 && p.isr.len() == 3)
        },
    )
    .await;
    name
}

/// Fresh metadata of `topic`'s partitions, None when the request failed
/// (e.g. it went to the node just killed).
pub async fn partitions(client: &Client, topic: &str) -> Option<Vec<PartitionInfo>> {
    let md = client.refresh_metadata(&[topic.to_string()]).await.ok()?;
    Some(md.topics.get(topic)?.partitions.clone())
}

/// Poll fresh metadata until `ok` holds; panics after `timeout`.
pub async fn wait_for(
    client: &Client,
    topic: &str,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&[PartitionInfo]) -> bool,
) -> Vec<PartitionInfo> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(ps) = partitions(client, topic).await {
            if ok(&ps) {
                return ps;
            }
            last = Some(ps);
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: no {what} after {timeout:?}; last metadata: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node ids of the cluster.
pub const NODES: [i32; 3] = [1, 2, 3];

/// Bound for the quick actions (signals, pid).
const QUICK: Duration = Duration::from_secs(20);
/// Bound for a leader query (a JVM plus Admin calls of at most ~11 s).
const QUERY: Duration = Duration::from_secs(40);
/// Bound for starting a node or the cluster (scripts/cluster waits at most
/// `SKOTCH_CLUSTER_START_TIMEOUT`, 120 s by default).
const START: Duration = Duration::from_secs(180);

/// Run `scripts/cluster args...`; its stdout on success, else a message
/// with its stderr. The script is killed when it runs longer than
/// `timeout`.
fn try_script(args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(super::root().join("scripts/cluster"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("scripts/cluster {}: cannot run: {e}", args.join(" ")))?;
    // Drain both pipes on threads so that a chatty script cannot block.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("scripts/cluster {}: {e}", args.join(" "))),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(format!(
            "scripts/cluster {} failed ({s}): {}",
            args.join(" "),
            err.trim()
        )),
        None => Err(format!(
            "scripts/cluster {} did not finish in {timeout:?} (killed): {}",
            args.join(" "),
            err.trim()
        )),
    }
}

fn script(args: &[&str], timeout: Duration) -> String {
    try_script(args, timeout).unwrap_or_else(|e| panic!("{e}"))
}

fn try_leader(topic: &str, partition: i32) -> Result<i32, String> {
    let out = try_script(&["leader", topic, &partition.to_string()], QUERY)?;
    out.trim()
        .parse()
        .map_err(|e| format!("scripts/cluster leader {topic} {partition}: {out:?}: {e}"))
}

/// SIGKILL node `node` (1..=3) and wait until it is gone.
pub fn kill(node: i32) {
    script(&["kill", &node.to_string()], QUICK);
}

/// Start node `node` again (after [`kill`]) and wait until it serves
/// clients; resumes it when paused, does nothing when it runs.
pub fn restart(node: i32) {
    script(&["restart", &node.to_string()], START);
}

/// SIGSTOP node `node`: its sockets stay open, it answers nothing.
pub fn pause(node: i32) {
    script(&["pause", &node.to_string()], QUICK);
}

/// SIGCONT node `node`.
pub fn resume(node: i32) {
    script(&["resume", &node.to_string()], QUICK);
}

/// Node `node`'s pid.
pub fn pid(node: i32) -> u32 {
    let out = script(&["pid", &node.to_string()], QUICK);
    out.trim().parse().expect("pid")
}

/// The node leading `topic`-`partition`, as the cluster's metadata says
/// (the Java Admin client; -1 when the partition has no leader). Works
/// with a node dead or paused. Right after a leader dies this still names
/// it, until its session times out (`broker.session.timeout.ms`, 3 s).
pub fn leader(topic: &str, partition: i32) -> i32 {
    try_leader(topic, partition).unwrap_or_else(|e| panic!("{e}"))
}

/// An unclean leader election for `topic`-`partition` (Java Admin
/// `electLeaders(UNCLEAN)`): a live replica outside the ISR becomes the
/// leader; records only the old leader had are gone.
pub fn elect_unclean(topic: &str, partition: i32) {
    script(&["elect-unclean", topic, &partition.to_string()], QUERY);
}

/// [`elect_unclean`] that returns the failure (e.g. no live replica is
/// unfenced yet) instead of panicking.
pub fn try_elect_unclean(topic: &str, partition: i32) -> Result<(), String> {
    try_script(&["elect-unclean", topic, &partition.to_string()], QUERY).map(drop)
}

/// True when all three nodes run, none paused, and each accepts
/// connections (`scripts/cluster status`).
pub fn all_running() -> bool {
    try_script(&["status"], QUICK).is_ok()
}

/// Make sure all three nodes run and none is paused (`scripts/cluster
/// start`: resumes paused nodes, starts stopped ones and waits for them).
pub fn ensure_all_running() {
    script(&["start"], START);
}

/// Background fault injection against the cluster; see
/// [`Chaos::kill_leaders`] and [`Chaos::pause_leader`].
///
/// However it ends ([`Chaos::stop`], the deadline, drop, a panic in the
/// test), the nodes are left running and resumed: stopping (or dropping)
/// stops the thread, then resumes what it paused and restarts what it
/// killed.
pub struct Chaos {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    start: Instant,
    events: Mutex<Vec<String>>,
    /// Nodes this driver killed and has not restarted yet.
    killed: Mutex<BTreeSet<i32>>,
    /// Nodes this driver paused and has not resumed yet.
    paused: Mutex<BTreeSet<i32>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn new() -> Self {
        Shared {
            stop: AtomicBool::new(false),
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
            killed: Mutex::new(BTreeSet::new()),
            paused: Mutex::new(BTreeSet::new()),
        }
    }

    fn log(&self, what: String) {
        let line = format!("{:8.3}s {what}", self.start.elapsed().as_secs_f64());
        eprintln!("chaos: {line}");
        lock(&self.events).push(line);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleep until `until` or a stop request, whichever comes first.
    /// False when stopped.
    fn sleep_until(&self, until: Instant) -> bool {
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(25)));
        }
    }

    fn kill(&self, node: i32, why: &str) -> bool {
        // Recorded first: should the kill half-fail, the restore still
        // looks at this node.
        lock(&self.killed).insert(node);
        match try_script(&["kill", &node.to_string()], QUICK) {
            Ok(_) => {
                self.log(format!("kill node {node} ({why})"));
                true
            }
            Err(e) => {
                self.log(format!("error: kill node {node}: {e}"));
                false
            }
        }
    }

    fn restart(&self, node: i32) -> bool {
        let t0 = Instant::now();
        match try_script(&["restart", &node.to_string()], START) {
            Ok(_) => {
                lock(&self.killed).remove(&node);
                self.log(format!(
                    "restart node {node} (serving after {:.1}s)",
                    t0.elapsed().as_secs_f64()
                ));
                true
            }
            Err(e) => {
                self.log(format!("error: restart node {node}: {e}"));
                false
            }
        }
    }

    fn pause(&self, node: i32, why: &str) -> bool {
        lock(&self.paused).insert(node);
        match try_script(&["pause", &node.to_string()], QUICK) {
            Ok(_) => {
                self.log(format!("pause node {node} ({why})"));
                true
            }
            Err(e) => {
                self.log(format!("error: pause node {node}: {e}"));
                false
            }
        }
    }

    fn resume(&self, node: i32) -> bool {
        match try_script(&["resume", &node.to_string()], QUICK) {
            Ok(_) => {
                lock(&self.paused).remove(&node);
                self.log(format!("resume node {node}"));
                true
            }
            Err(e) => {
                self.log(format!("error: resume node {node}: {e}"));
                false
            }
        }
    }

    /// The leader of `topic`-`partition`, or None (logged) when there is
    /// none or the query failed.
    fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        match try_leader(topic, partition) {
            Ok(l) if l >= 0 => Some(l),
            Ok(_) => {
                self.log(format!("{topic}-{partition} has no leader"));
                None
            }
            Err(e) => {
                self.log(format!("error: leader of {topic}-{partition}: {e}"));
                None
            }
        }
    }

    /// Resume what this driver paused, restart what it killed, then make
    /// sure every node runs (`scripts/cluster start`). Errors are logged
    /// and returned.
    fn restore(&self) -> Result<(), String> {
        let paused: Vec<i32> = lock(&self.paused).iter().copied().collect();
        for node in paused {
            self.resume(node);
        }
        let killed: Vec<i32> = lock(&self.killed).iter().copied().collect();
        for node in killed {
            self.restart(node);
        }
        match try_script(&["start"], START) {
            Ok(_) => {
                lock(&self.paused).clear();
                lock(&self.killed).clear();
                self.log("all nodes running".into());
                Ok(())
            }
            Err(e) => {
                self.log(format!("error: scripts/cluster start: {e}"));
                Err(e)
            }
        }
    }
}

impl Chaos {
    /// Start a thread that, every `every`, takes the next partition of
    /// `topic` (round-robin over `0..partitions`), SIGKILLs its leader,
    /// waits `down_for`, restarts the node (waiting until it serves
    /// clients) and sleeps until the next period. It ends at [`Chaos::stop`]
    /// or after `deadline` (no new kill starts after it), leaving every
    /// node running.
    pub fn kill_leaders(
        topic: &str,
        partitions: i32,
        every: Duration,
        down_for: Duration,
        deadline: Duration,
    ) -> Chaos {
        assert!(partitions > 0, "partitions must be positive");
        let shared = Arc::new(Shared::new());
        let s = shared.clone();
        let topic = topic.to_string();
        let handle = std::thread::Builder::new()
            .name("chaos-kill-leaders".into())
            .spawn(move || {
                let end = s.start + deadline;
                let mut next = s.start;
                let mut i = 0;
                while !s.stopped() && Instant::now() < end {
                    let period = Instant::now();
                    let partition = i % partitions;
                    i += 1;
                    if let Some(node) = s.leader(&topic, partition) {
                        if s.kill(node, &format!("leader of {topic}-{partition}")) {
                            // Interrupted or not: the node comes back now.
                            s.sleep_until(Instant::now() + down_for);
                            s.restart(node);
                        }
                    }
                    next = next.max(period) + every;
                    if !s.sleep_until(next.min(end)) {
                        break;
                    }
                }
                s.log("kill_leaders done".into());
            })
            .expect("spawn the chaos thread");
        Chaos {
            shared,
            handle: Some(handle),
        }
    }

    /// Start a thread that waits `after`, SIGSTOPs the leader of
    /// `topic`-`partition` and SIGCONTs it after `paused_for` (or at once
    /// on [`Chaos::stop`] / drop).
    pub fn pause_leader(
        topic: &str,
        partition: i32,
        after: Duration,
        paused_for: Duration,
    ) -> Chaos {
        let shared = Arc::new(Shared::new());
        let s = shared.clone();
        let topic = topic.to_string();
        let handle = std::thread::Builder::new()
            .name("chaos-pause-leader".into())
            .spawn(move || {
                if !s.sleep_until(s.start + after) {
                    return;
                }
                if let Some(node) = s.leader(&topic, partition) {
                    if s.pause(node, &format!("leader of {topic}-{partition}")) {
                        s.sleep_until(Instant::now() + paused_for);
                        s.resume(node);
                    }
                }
                s.log("pause_leader done".into());
            })
            .expect("spawn the chaos thread");
        Chaos {
            shared,
            handle: Some(handle),
        }
    }

    /// Start a thread that, every `every`, asks `pick` (given the round
    /// number, from 0) which node to SIGKILL and why, kills it, waits
    /// `down_for`, restarts it (waiting until it serves clients) and
    /// sleeps until the next period; a round where `pick` names no node
    /// is logged and skipped. `pick` runs on the chaos thread and may block
    /// (e.g. `Handle::block_on` a coordinator lookup). It ends at
    /// [`Chaos::stop`] or after `deadline` (no new kill starts after it),
    /// leaving every node running.
    pub fn kill_nodes<F>(every: Duration, down_for: Duration, deadline: Duration, pick: F) -> Chaos
    where
        F: FnMut(usize) -> Option<(i32, String)> + Send + 'static,
    {
        let shared = Arc::new(Shared::new());
        let s = shared.clone();
        let mut pick = pick;
        let handle = std::thread::Builder::new()
            .name("chaos-kill-nodes".into())
            .spawn(move || {
                let end = s.start + deadline;
                let mut next = s.start;
                let mut round = 0;
                while !s.stopped() && Instant::now() < end {
                    let period = Instant::now();
                    match pick(round) {
                        Some((node, why)) if NODES.contains(&node) => {
                            if s.kill(node, &why) {
                                s.sleep_until(Instant::now() + down_for);
                                s.restart(node);
                            }
                        }
                        Some((node, why)) => {
                            s.log(format!("round {round}: no node {node} ({why})"))
                        }
                        None => s.log(format!("round {round}: no node to kill")),
                    }
                    round += 1;
                    next = next.max(period) + every;
                    if !s.sleep_until(next.min(end)) {
                        break;
                    }
                }
                s.log("kill_nodes done".into());
            })
            .expect("spawn the chaos thread");
        Chaos {
            shared,
            handle: Some(handle),
        }
    }

    /// Start a thread that waits `after`, SIGSTOPs the node `pick` names
    /// (and why; none: nothing happens, logged) and SIGCONTs it after
    /// `paused_for` (or at once on [`Chaos::stop`] / drop). `pick` runs on
    /// the chaos thread and may block.
    pub fn pause_node<F>(after: Duration, paused_for: Duration, pick: F) -> Chaos
    where
        F: FnOnce() -> Option<(i32, String)> + Send + 'static,
    {
        let shared = Arc::new(Shared::new());
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name("chaos-pause-node".into())
            .spawn(move || {
                if !s.sleep_until(s.start + after) {
                    return;
                }
                match pick() {
                    Some((node, why)) if NODES.contains(&node) => {
                        if s.pause(node, &why) {
                            s.sleep_until(Instant::now() + paused_for);
                            s.resume(node);
                        }
                    }
                    Some((node, why)) => s.log(format!("no node {node} to pause ({why})")),
                    None => s.log("no node to pause".into()),
                }
                s.log("pause_node done".into());
            })
            .expect("spawn the chaos thread");
        Chaos {
            shared,
            handle: Some(handle),
        }
    }

    /// True once the thread has finished (deadline passed or all done).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// The events so far: `"<seconds since start> <what>"` lines.
    pub fn events(&self) -> Vec<String> {
        lock(&self.shared.events).clone()
    }

    /// Stop the thread (waiting for its current action), bring every node
    /// back (running, resumed) and return the event log. Panics when a
    /// node cannot be brought back.
    pub fn stop(mut self) -> Vec<String> {
        let restored = self.finish();
        let events = self.events();
        if let Err(e) = restored {
            panic!(
                "chaos: could not bring the cluster back: {e}\nevents:\n{}",
                events.join("\n")
            );
        }
        events
    }

    fn finish(&mut self) -> Result<(), String> {
        let Some(handle) = self.handle.take() else {
            return Ok(());
        };
        self.shared.stop.store(true, Ordering::Relaxed);
        if handle.join().is_err() {
            self.shared.log("error: the chaos thread panicked".into());
        }
        self.shared.restore()
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            // No second panic while unwinding; the log says what failed.
            eprintln!("chaos: could not bring the cluster back: {e}");
        }
    }
}

/// When a [`Chaos`] driver paused a node (time since the driver started)
/// and which, from its event `"<seconds>s pause node N (...)"`.
pub fn pause_event(events: &[String]) -> Option<(Duration, i32)> {
    events.iter().find_map(|e| {
        let (secs, what) = e.trim_start().split_once("s ")?;
        let node = what.strip_prefix("pause node ")?.split(' ').next()?;
        Some((
            Duration::from_secs_f64(secs.parse().ok()?),
            node.parse().ok()?,
        ))
    })
}

/// The longest wait between events (deliveries, acknowledgements) within
/// `window`, counting from its start to the first one and from the last
/// one to its end (the whole window when there was none), and how many
/// fell inside. `times` and `window` count from the same origin.
pub fn longest_gap(
    times: impl IntoIterator<Item = Duration>,
    window: (Duration, Duration),
) -> (Duration, usize) {
    let mut inside = 0;
    let mut prev = window.0;
    let mut gap = Duration::ZERO;
    for t in times {
        if t >= window.0 && t <= window.1 {
            inside += 1;
            gap = gap.max(t.saturating_sub(prev));
            prev = prev.max(t);
        }
    }
    (gap.max(window.1.saturating_sub(prev)), inside)
}
