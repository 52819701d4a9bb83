//! skotch's range assignor against Java's own (`RangeAssignor` of the
//! kafka-clients jar, through tests/java/AssignorOracle.java) on random
//! groups with racks (KIP-881): members with and without `client.rack`,
//! partitions whose replicas sit on some, all or none of the racks, topics
//! that are co-partitioned or not. Every assignment must be identical.
//! No broker needed, only Java.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use skotch::client::group::assignor::{
    Assignor, MemberSubscription, PartitionRacks, RangeAssignor, Subscription,
};

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Case {
    counts: BTreeMap<String, i32>,
    racks: PartitionRacks,
    members: BTreeMap<String, MemberSubscription>,
}

const RACKS: [&str; 3] = ["a", "b", "c"];

fn random_case(rng: &mut Rng) -> Case {
    let mut counts = BTreeMap::new();
    let mut racks = PartitionRacks::new();
    let topics = 1 + rng.next(3);
    // Co-partitioned topics are likely: the same count and racks often.
    let shared_count = 1 + rng.next(8) as i32;
    for t in 0..topics {
        let name = format!("t{t}");
        let n = if rng.next(2) == 0 {
            shared_count
        } else {
            1 + rng.next(8) as i32
        };
        let per: Vec<BTreeSet<String>> = (0..n)
            .map(|p| {
                let bits = if rng.next(3) == 0 {
                    rng.next(8)
                } else {
                    1 << (p as u64 % 3)
                };
                (0..3)
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| RACKS[i].to_string())
                    .collect()
            })
            .collect();
        counts.insert(name.clone(), n);
        racks.insert(name, per);
    }
    let mut members = BTreeMap::new();
    for m in 0..1 + rng.next(5) {
        let subscribed: Vec<String> = counts
            .keys()
            .filter(|_| rng.next(4) != 0)
            .cloned()
            .collect();
        let mut sub = Subscription::new(subscribed);
        sub.rack_id = match rng.next(4) {
            0 => None,
            r => Some(RACKS[(r - 1) as usize].to_string()),
        };
        members.insert(format!("m{m}"), MemberSubscription::new(sub));
    }
    Case {
        counts,
        racks,
        members,
    }
}

/// The case as one line of AssignorOracle's input.
fn encode(c: &Case) -> String {
    let topics: Vec<String> = c
        .counts
        .keys()
        .map(|t| {
            let per: Vec<String> = c.racks[t]
                .iter()
                .map(|rs| rs.iter().cloned().collect::<Vec<_>>().join("+"))
                .collect();
            format!("{t}:{}", per.join("|"))
        })
        .collect();
    let members: Vec<String> = c
        .members
        .iter()
        .map(|(id, m)| {
            format!(
                "{id}/{}/{}",
                m.subscription.rack_id.as_deref().unwrap_or("-"),
                m.subscription.topics.join("+")
            )
        })
        .collect();
    format!("{};{}", topics.join(","), members.join(","))
}

/// skotch's answer in AssignorOracle's output form; without racks when
/// `racks` is false.
fn ours(c: &Case, racks: bool) -> String {
    let out = if racks {
        RangeAssignor.assign_with_racks(&c.counts, &c.racks, &c.members)
    } else {
        RangeAssignor.assign(&c.counts, &c.members)
    };
    out.iter()
        .map(|(id, a)| {
            let tps: Vec<String> = a
                .partitions
                .iter()
                .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                .collect();
            format!("{id}={}", tps.join(" "))
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[test]
fn range_with_racks_matches_java() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let cases: Vec<Case> = (0..400).map(|_| random_case(&mut rng)).collect();
    let input: String = cases.iter().map(|c| encode(c) + "\n").collect();
    let mut child = Command::new(common::root().join("tests/java/run.sh"))
        .arg("AssignorOracle")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/java/run.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "AssignorOracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let java: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(java.len(), cases.len());
    let mut moved_by_racks = 0;
    for (i, (c, theirs)) in cases.iter().zip(&java).enumerate() {
        let mine = ours(c, true);
        if mine != ours(c, false) {
            moved_by_racks += 1;
        }
        assert_eq!(&mine, theirs, "case {i}: {}", encode(c));
    }
    println!(
        "{} cases identical to Java's RangeAssignor; in {moved_by_racks} of them racks changed the assignment",
        cases.len()
    );
    assert!(
        moved_by_racks > 50,
        "too few cases exercise the racks: {moved_by_racks}"
    );
}
