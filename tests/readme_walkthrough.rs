//! README.md's CLI walkthrough (the first `sh` block of "Using the CLI"),
//! run as written against the test broker, so the README cannot drift from
//! what the CLI does. Only the build lines are replaced (the test uses the
//! binary cargo built for it) and the broker address when the test broker
//! is not on 127.0.0.1:9092. The walkthrough's topics are deleted first, so
//! it starts as a new user's would: on a broker without them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use skotch::client::Admin;

/// The first ```sh block after the "## Using the CLI" heading.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README.md");
    let section = readme
        .split_once("## Using the CLI")
        .expect("README has a \"## Using the CLI\" section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("a sh block in \"Using the CLI\"")
        .1;
    block
        .split_once("```")
        .expect("the sh block ends")
        .0
        .to_string()
}

/// Topic names of the walkthrough's `topics create` lines.
fn created_topics(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|l| l.contains(" topics create "))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("kafka://")))
        .filter_map(|url| url.rsplit_once('/').map(|(_, t)| t.to_string()))
        .flat_map(|ts| ts.split(',').map(String::from).collect::<Vec<_>>())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_cli_walkthrough_runs_as_written() {
    let script = walkthrough();
    let topics = created_topics(&script);
    assert!(
        !topics.is_empty(),
        "the walkthrough creates its topics first:\n{script}"
    );

    // A broker without the walkthrough's topics, as a new user has.
    let client = common::client().await;
    let admin = Admin::new(client.clone());
    let _ = admin.delete_topics(&topics).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = admin.list_topics().await.expect("list topics");
        if !listed.iter().any(|t| topics.contains(&t.name)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{topics:?} still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let bootstrap = common::bootstrap();
    let lines: Vec<String> = script
        .lines()
        .filter(|l| !l.starts_with("cargo build"))
        .map(|l| {
            if l.starts_with("B=") {
                format!("B={:?}", common::skotch_bin().display().to_string())
            } else {
                l.replace("127.0.0.1:9092", &bootstrap)
            }
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("skotch-walkthrough-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = lines.join("\n");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args([
                "120", "bash", "-e", "-u", "-o", "pipefail", "-x", "-c", &run,
            ])
            .current_dir(&dir)
            .env("SKOTCH_AUTH_FILE", dir.join("no-such-auth.toml"))
            .output()
            .expect("run bash")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- stdout\n{stdout}\n--- stderr (bash -x)\n{stderr}");
    assert!(out.status.success(), "the walkthrough failed: {stderr}");

    // What the walkthrough published came back, the test message did not.
    assert!(stdout.contains("\"hello\""), "{stdout}");
    assert!(stdout.contains("second notice"), "{stdout}");
    assert!(
        !stdout.contains("a drill"),
        "test messages are skipped by default: {stdout}"
    );
    assert!(stdout.contains("mygroup"), "groups list shows the group");
}
