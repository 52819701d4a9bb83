//! A skotch consumer and a Java consumer in one classic group: they split
//! the partitions with no overlap and no gap, under range and
//! cooperative-sticky, which shows the subscription and assignment bytes
//! match the Java client's ConsumerProtocol both ways (either may lead).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skotch::client::group::assignor;
use skotch::client::{ConsumerConfig, GroupConfig, GroupConsumer, Offset, TopicPartition};

/// The Java member's partitions, as its rebalance listener reports them.
struct JavaMember {
    child: Child,
    owned: Arc<Mutex<BTreeSet<String>>>,
    closed: Arc<Mutex<bool>>,
}

impl JavaMember {
    fn start(topic: &str, group: &str, assignor_class: &str) -> Self {
        let mut child = Command::new(common::root().join("tests/java/run.sh"))
            .args([
                "JavaGroupMember",
                &common::bootstrap(),
                topic,
                group,
                assignor_class,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start JavaGroupMember");
        let stdout = child.stdout.take().expect("stdout");
        let owned = Arc::new(Mutex::new(BTreeSet::new()));
        let closed = Arc::new(Mutex::new(false));
        let (o, c) = (owned.clone(), closed.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (what, list) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                let parts = list.split(',').filter(|s| !s.is_empty()).map(String::from);
                let mut owned = o.lock().unwrap();
                match what {
                    "assigned" => owned.extend(parts),
                    "revoked" | "lost" => {
                        for p in parts {
                            owned.remove(&p);
                        }
                    }
                    "closed" => *c.lock().unwrap() = true,
                    _ => {}
                }
            }
        });
        Self {
            child,
            owned,
            closed,
        }
    }

    fn owned(&self) -> BTreeSet<String> {
        self.owned.lock().unwrap().clone()
    }

    /// Close stdin: the member leaves the group and exits.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !*self.closed.lock().unwrap() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.wait();
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn names(tps: &[TopicPartition]) -> BTreeSet<String> {
    tps.iter().map(|tp| tp.to_string()).collect()
}

async fn share_a_group(assignor_name: &str, java_class: &str) {
    let client = common::client().await;
    let topic = common::create_topic(&client, "group-java", 6).await;
    let group = common::unique_topic("java-group");
    let all: BTreeSet<String> = (0..6).map(|p| format!("{topic}-{p}")).collect();

    let java = JavaMember::start(&topic, &group, java_class);
    let deadline = Instant::now() + Duration::from_secs(60);
    while java.owned() != all {
        assert!(
            Instant::now() < deadline,
            "the Java member never got the topic"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut config = GroupConfig::new(&group);
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(500);
    config.assignors = vec![Arc::from(
        assignor::by_name(assignor_name).expect("assignor"),
    )];
    let consumer_config = ConsumerConfig {
        auto_offset_reset: Some(Offset::Earliest),
        fetch_max_wait: Duration::from_millis(100),
        ..Default::default()
    };
    let mut skotch = GroupConsumer::subscribe(
        common::client().await,
        consumer_config,
        config,
        std::slice::from_ref(&topic),
    )
    .await
    .expect("subscribe");

    // Both hold some partitions, together all of them, none twice; and it
    // stays so for a while (the rebalance is over).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settled_since: Option<Instant> = None;
    loop {
        skotch.poll().await.expect("poll");
        let mine = names(&skotch.assignment());
        let theirs = java.owned();
        let split = !mine.is_empty()
            && !theirs.is_empty()
            && mine.is_disjoint(&theirs)
            && mine.union(&theirs).cloned().collect::<BTreeSet<_>>() == all
            && skotch.is_stable();
        match (split, settled_since) {
            (true, None) => settled_since = Some(Instant::now()),
            (true, Some(t)) if t.elapsed() > Duration::from_secs(2) => {
                assert_eq!(
                    mine.len(),
                    3,
                    "6 partitions, 2 members: {mine:?} / {theirs:?}"
                );
                break;
            }
            (true, Some(_)) => {}
            (false, _) => settled_since = None,
        }
        assert!(
            Instant::now() < deadline,
            "no clean split: skotch {mine:?}, java {theirs:?}"
        );
    }

    // The Java member leaves: skotch takes everything.
    let java_stop = tokio::task::spawn_blocking(move || java.stop());
    let deadline = Instant::now() + Duration::from_secs(60);
    while names(&skotch.assignment()) != all || !skotch.is_stable() {
        assert!(
            Instant::now() < deadline,
            "skotch never took over: {:?}",
            skotch.assignment()
        );
        skotch.poll().await.expect("poll");
    }
    java_stop.await.expect("java stop");
    skotch.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_and_java_share_a_group_range() {
    share_a_group("range", "org.apache.kafka.clients.consumer.RangeAssignor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skotch_and_java_share_a_group_cooperative_sticky() {
    share_a_group(
        "cooperative-sticky",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    )
    .await;
}
