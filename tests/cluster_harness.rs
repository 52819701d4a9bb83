//! The 3-node cluster harness (tests/common/cluster.rs, scripts/cluster)
//! does what it says: `leader()` agrees with skotch's metadata; after a
//! SIGKILL of a partition leader another replica takes over and the dead
//! node leaves the ISR; a restarted node serves again and rejoins the ISR;
//! the `Chaos` driver kills and pauses leaders and always leaves every
//! node running, also when dropped early.
//!
//! Needs the cluster from `scripts/cluster start` (scripts/test starts it
//! and sets SKOTCH_CLUSTER_BOOTSTRAP). The tests take turns: each of them
//! breaks the one cluster.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{self, cluster_client, create_topic, exclusive, runtime, wait_for, Chaos};

const PARTITIONS: i32 = 6;

#[test]
fn leader_failover_and_rejoin() {
    let _g = exclusive();
    runtime().block_on(async {
        let client = cluster_client().await;
        let topic = create_topic(&client, "cluster-harness", PARTITIONS).await;

        // leader() (Java Admin, via scripts/cluster) and skotch agree.
        let ours = wait_for(&client, &topic, Duration::from_secs(10), "leaders", |ps| {
            ps.iter().all(|p| p.leader >= 0)
        })
        .await;
        for p in &ours {
            assert_eq!(p.replicas.len(), 3, "{topic}-{}: {p:?}", p.partition);
            let theirs = cluster::leader(&topic, p.partition);
            assert_eq!(
                theirs,
                client.leader(&topic, p.partition).await.expect("leader"),
                "{topic}-{}: leader() and skotch's metadata disagree",
                p.partition
            );
        }

        // SIGKILL the leader of partition 0: another replica takes over.
        let victim = cluster::leader(&topic, 0);
        let t0 = Instant::now();
        cluster::kill(victim);
        assert!(
            !cluster::all_running(),
            "node {victim} still runs after kill"
        );
        let new_leader = loop {
            let l = cluster::leader(&topic, 0);
            if l != victim && l >= 0 {
                break l;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{topic}-0 still led by {l} 30 s after node {victim} was killed"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let failover = t0.elapsed();
        eprintln!("{topic}-0: leader {victim} killed, {new_leader} leads after {failover:?}");
        assert!(cluster::NODES.contains(&new_leader));
        // skotch sees the same, and the dead node out of the ISR.
        wait_for(
            &client,
            &topic,
            Duration::from_secs(30),
            "new leader without the victim in the ISR",
            |ps| ps[0].leader == new_leader && !ps[0].isr.contains(&victim),
        )
        .await;

        // Restart: the node serves again and rejoins the ISR everywhere.
        let t1 = Instant::now();
        cluster::restart(victim);
        assert!(cluster::all_running(), "not all nodes run after restart");
        wait_for(
            &client,
            &topic,
            Duration::from_secs(30),
            "full ISR after the restart",
            |ps| {
                ps.iter()
                    .all(|p| p.leader >= 0 && p.isr.contains(&victim) && p.isr.len() == 3)
            },
        )
        .await;
        eprintln!(
            "node {victim} restarted and back in every ISR after {:?}",
            t1.elapsed()
        );
    });
}

/// Wait until the driver's log has a line containing `what`.
fn wait_event(chaos: &Chaos, what: &str, timeout: Duration) {
    let t0 = Instant::now();
    while !chaos.events().iter().any(|e| e.contains(what)) {
        assert!(
            t0.elapsed() < timeout,
            "no {what:?} event after {timeout:?}: {:?}",
            chaos.events()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_clean(events: &[String]) {
    assert!(
        !events.iter().any(|e| e.contains("error")),
        "chaos errors: {events:#?}"
    );
    assert!(cluster::all_running(), "not all nodes run: {events:#?}");
}

#[test]
fn chaos_driver_always_leaves_the_cluster_running() {
    let _g = exclusive();
    let topic = runtime().block_on(async {
        let client = cluster_client().await;
        create_topic(&client, "cluster-chaos", 2).await
    });

    // One kill / restart cycle: the deadline passes during the first one.
    let chaos = Chaos::kill_leaders(
        &topic,
        2,
        Duration::from_secs(10),
        Duration::from_millis(500),
        Duration::from_secs(1),
    );
    let t0 = Instant::now();
    while !chaos.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "kill_leaders never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = chaos.stop();
    eprintln!("kill_leaders: {events:#?}");
    assert_eq!(
        events.iter().filter(|e| e.contains("kill node")).count(),
        1,
        "{events:#?}"
    );
    assert_eq!(
        events.iter().filter(|e| e.contains("restart node")).count(),
        1,
        "{events:#?}"
    );
    assert_clean(&events);

    // Dropped while a node is down: the drop restarts it.
    let chaos = Chaos::kill_leaders(
        &topic,
        2,
        Duration::from_secs(60),
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    wait_event(&chaos, "kill node", Duration::from_secs(60));
    assert!(!cluster::all_running());
    let t1 = Instant::now();
    drop(chaos);
    assert!(cluster::all_running(), "drop left a node down");
    assert!(
        t1.elapsed() < Duration::from_secs(60),
        "drop took {:?}",
        t1.elapsed()
    );

    // SIGSTOP the leader of partition 0 for 2 s.
    let chaos = Chaos::pause_leader(&topic, 0, Duration::ZERO, Duration::from_secs(2));
    wait_event(&chaos, "pause node", Duration::from_secs(60));
    assert!(
        !cluster::all_running(),
        "status does not show the paused node"
    );
    let t2 = Instant::now();
    while !chaos.is_finished() {
        assert!(
            t2.elapsed() < Duration::from_secs(30),
            "pause_leader never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = chaos.stop();
    eprintln!("pause_leader: {events:#?}");
    assert!(
        events.iter().any(|e| e.contains("resume node")),
        "{events:#?}"
    );
    assert_clean(&events);

    // Paused, then dropped at once: resumed by the drop.
    let chaos = Chaos::pause_leader(&topic, 1, Duration::ZERO, Duration::from_secs(60));
    wait_event(&chaos, "pause node", Duration::from_secs(60));
    drop(chaos);
    assert!(cluster::all_running(), "drop left a node paused");
}
