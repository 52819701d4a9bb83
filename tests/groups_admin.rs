//! Group tooling against the real broker: a Java consumer (tests/java/
//! JavaGroupConsumer) forms a group, with the classic protocol and with
//! KIP-848's, commits, and stays; then `Admin::list_groups`,
//! `describe_group`, `list_group_offsets` and `group_lag` and the
//! `skotch groups` commands must report its members, assignment,
//! committed offsets and lag.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use skotch::client::{
    Admin, Client, GroupDescription, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use skotch::protocol::error::ErrorCode;

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 10;

/// A Java group member; killed when dropped so a failing test leaves no
/// process behind.
struct JavaMember {
    child: Child,
    /// What it printed after committing: partition -> committed offset.
    committed: BTreeMap<TopicPartition, i64>,
}

/// Compile the Java programs once per test binary: tests/java/build.sh
/// starts by deleting the classes, so two tests building at the same time
/// could run a half-built directory.
fn build_java() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(common::root().join("tests/java/build.sh"))
            .status()
            .expect("run tests/java/build.sh");
        assert!(status.success(), "tests/java/build.sh failed");
    });
}

impl JavaMember {
    /// Start a member of `group` on `topic`, wait until it read `count`
    /// records and committed.
    fn start(topic: &str, group: &str, count: i64, protocol: &str, extra: &[&str]) -> Self {
        build_java();
        let count = count.to_string();
        let bootstrap = common::bootstrap();
        let mut args = vec![
            "JavaGroupConsumer",
            &bootstrap,
            topic,
            group,
            &count,
            "--protocol",
            protocol,
            "--until-eof",
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(common::root().join("tests/java/run.sh"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run tests/java/run.sh");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let read = BufReader::new(stdout).read_line(&mut line);
        let mut member = JavaMember {
            child,
            committed: BTreeMap::new(),
        };
        assert!(
            read.is_ok() && !line.is_empty(),
            "JavaGroupConsumer printed nothing (see its stderr above)"
        );
        let v: Value = serde_json::from_str(&line).expect("JSON from JavaGroupConsumer");
        for (tp, off) in v["committed"].as_object().expect("committed") {
            let (t, p) = tp.rsplit_once('-').expect("topic-partition");
            member.committed.insert(
                TopicPartition::new(t, p.parse().expect("partition")),
                off.as_i64().expect("offset"),
            );
        }
        member
    }

    /// Close its stdin (it leaves the group and exits) and wait.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "JavaGroupConsumer exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("JavaGroupConsumer did not exit after its stdin closed");
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `per_partition` records into each partition of `topic`.
async fn produce(client: &Client, topic: &str, per_partition: i64, only: Option<i32>) {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for p in 0..PARTITIONS {
        if only.is_some_and(|o| o != p) {
            continue;
        }
        for i in 0..per_partition {
            let rec = ProducerRecord {
                topic: topic.to_string(),
                partition: Some(p),
                value: Some(Bytes::from(format!("p{p}-{i}"))),
                ..Default::default()
            };
            deliveries.push(producer.send(rec).await.expect("send"));
        }
    }
    producer.flush().await.expect("flush");
    for d in deliveries {
        d.await.expect("delivered");
    }
}

fn skotch(args: &[&str]) -> Output {
    Command::new(common::skotch_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run skotch")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "skotch failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Describe until the group is Stable with one member that has all
/// partitions (a KIP-848 member reconciles in steps).
async fn describe_stable(admin: &Admin, group: &str) -> GroupDescription {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = admin.describe_group(group).await.expect("describe_group");
        let assigned: usize = d.members.iter().map(|m| m.assignment.len()).sum();
        if d.state == "Stable" && assigned == PARTITIONS as usize {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "group never became stable: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Form a group with one Java member (static, with `group.instance.id`, or
/// dynamic) and check what the admin calls and the CLI report.
async fn group_round_trip(protocol: &str, static_member: bool) {
    let client = common::client().await;
    let admin = Admin::new(client.clone());
    let topic = common::create_topic(&client, &format!("groups-{protocol}"), PARTITIONS).await;
    let group = common::unique_topic(&format!("group-{protocol}"));
    produce(&client, &topic, PER_PARTITION, None).await;

    let client_id = format!("java-{protocol}");
    let mut extra = vec!["--client-id", client_id.as_str()];
    if static_member {
        extra.extend(["--instance-id", "static-1"]);
    }
    let member = JavaMember::start(
        &topic,
        &group,
        PER_PARTITION * i64::from(PARTITIONS),
        protocol,
        &extra,
    );
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    let expected: BTreeMap<TopicPartition, i64> =
        all.iter().map(|tp| (tp.clone(), PER_PARTITION)).collect();
    assert_eq!(member.committed, expected, "what Java committed");

    // ListGroups: the group, its type and state.
    let listed = admin.list_groups().await.expect("list_groups");
    let g = listed
        .iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("{group} not in {listed:#?}"));
    assert_eq!(g.protocol_type, "consumer");
    let group_type = if protocol == "classic" {
        "classic"
    } else {
        "consumer"
    };
    assert_eq!(g.group_type.as_deref(), Some(group_type));
    assert!(g.state.is_some());

    // Describe: one static member with every partition.
    let d = describe_stable(&admin, &group).await;
    assert_eq!(d.group_id, group);
    assert_eq!(d.group_type, group_type);
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.members.len(), 1, "{d:#?}");
    let m = &d.members[0];
    assert_eq!(m.client_id, client_id);
    assert_eq!(
        m.group_instance_id.as_deref(),
        static_member.then_some("static-1")
    );
    assert!(m.host.contains("127.0.0.1"), "{}", m.host);
    assert_eq!(m.assignment, all);
    assert_eq!(m.subscribed_topics, vec![topic.clone()]);
    if protocol == "classic" {
        // The Java consumer's default assignors: range, cooperative-sticky.
        assert_eq!(d.assignor, "range");
        assert_eq!(d.group_epoch, None);
        assert_eq!(m.member_epoch, None);
    } else {
        // The broker's default server-side assignor.
        assert_eq!(d.assignor, "uniform");
        assert!(d.group_epoch.is_some_and(|e| e > 0));
        assert!(m.member_epoch.is_some_and(|e| e > 0));
    }

    // Committed offsets and lag: 4 more records in partition 1.
    let committed = admin.list_group_offsets(&group).await.expect("offsets");
    assert_eq!(committed, expected);
    produce(&client, &topic, 4, Some(1)).await;
    let lag = admin.group_lag(&committed).await.expect("lag");
    for (tp, l) in &lag {
        let extra = if tp.partition == 1 { 4 } else { 0 };
        assert_eq!(l.committed, PER_PARTITION, "{tp}");
        assert_eq!(l.log_end_offset, Some(PER_PARTITION + extra), "{tp}");
        assert_eq!(l.lag, Some(extra), "{tp}");
    }
    assert_eq!(lag.len(), all.len());

    // The CLI: text and JSON.
    let url = format!("kafka://{}/", common::bootstrap());
    let text = stdout(&skotch(&["groups", "list", &url]));
    let line = text
        .lines()
        .find(|l| l.starts_with(&group))
        .unwrap_or_else(|| panic!("{group} not listed:\n{text}"));
    assert!(line.contains(group_type), "{line}");
    let v: Value =
        serde_json::from_str(&stdout(&skotch(&["groups", "list", &url, "--json"]))).unwrap();
    assert!(v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group_id"] == group.as_str() && g["type"] == group_type));

    let text = stdout(&skotch(&["groups", "describe", &url, &group]));
    assert!(text.contains(&format!("GROUP          {group}")), "{text}");
    assert!(text.contains("Stable"), "{text}");
    assert!(text.contains(&m.member_id), "{text}");
    assert!(
        text.contains(&format!("{topic}:0,1,2")),
        "assignment: {text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with(&topic) && l.split_whitespace().nth(1) == Some("1"))
        .unwrap_or_else(|| panic!("no offsets row for partition 1:\n{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..5], ["1", "10", "14", "4"], "{row}");

    let v: Value = serde_json::from_str(&stdout(&skotch(&[
        "groups", "describe", &url, &group, "--json",
    ])))
    .unwrap();
    assert_eq!(v["group_id"], group.as_str());
    assert_eq!(v["type"], group_type);
    assert_eq!(v["state"], "Stable");
    assert_eq!(v["members"][0]["client_id"], client_id.as_str());
    assert_eq!(v["members"][0]["assignment"].as_array().unwrap().len(), 3);
    let offsets = v["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 3);
    for o in offsets {
        let p = o["partition"].as_i64().unwrap();
        assert_eq!(o["committed"], 10);
        assert_eq!(o["lag"], if p == 1 { 4 } else { 0 });
        assert_eq!(o["member_id"], m.member_id.as_str());
    }

    // The URL's topics limit the offsets shown.
    let other_url = format!("kafka://{}/some-other-topic", common::bootstrap());
    let v: Value = serde_json::from_str(&stdout(&skotch(&[
        "groups", "describe", &other_url, &group, "--json",
    ])))
    .unwrap();
    assert_eq!(v["offsets"].as_array().unwrap().len(), 0);

    member.stop();
    if static_member {
        // A static member does not leave on close (KIP-345): it stays
        // until session.timeout.ms, so a restart keeps its partitions.
        let d = admin.describe_group(&group).await.expect("describe");
        assert_eq!(d.members.len(), 1);
        return;
    }
    // The member left: no members, the offsets stay.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = admin.describe_group(&group).await.expect("describe");
        if d.members.is_empty() {
            assert_eq!(d.state, "Empty");
            break;
        }
        assert!(Instant::now() < deadline, "member never left: {d:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        admin.list_group_offsets(&group).await.expect("offsets"),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_group_described() {
    group_round_trip("classic", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_group_described() {
    group_round_trip("consumer", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_group() {
    let client = common::client().await;
    let admin = Admin::new(client).timeout(Duration::from_secs(10));
    let group = common::unique_topic("no-such-group");
    let e = admin.describe_group(&group).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GROUP_ID_NOT_FOUND), "{e}");
    assert!(admin
        .list_group_offsets(&group)
        .await
        .expect("offsets")
        .is_empty());
    assert!(admin.group_lag(&BTreeMap::new()).await.unwrap().is_empty());

    let url = format!("kafka://{}/", common::bootstrap());
    let o = skotch(&["groups", "describe", &url, &group]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("GROUP_ID_NOT_FOUND"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_of_a_deleted_topic_is_unknown() {
    let client = common::client().await;
    let admin = Admin::new(client.clone());
    let topic = common::create_topic(&client, "groups-gone", 1).await;
    produce(&client, &topic, 2, Some(0)).await;
    let gone = TopicPartition::new(common::unique_topic("never-created"), 0);
    let here = TopicPartition::new(&topic, 0);
    let committed = BTreeMap::from([(here.clone(), 1), (gone.clone(), 5)]);
    let lag = admin.group_lag(&committed).await.expect("lag");
    assert_eq!(lag[&here].log_end_offset, Some(2));
    assert_eq!(lag[&here].lag, Some(1));
    assert_eq!(lag[&gone].log_end_offset, None);
    assert_eq!(lag[&gone].lag, None);
}
