//! The `skotch` CLI over SASL_SSL with a credentials file, hop's way:
//! `skotch auth add` stores alice's SCRAM-SHA-512 credential with the test
//! CA, then publish, subscribe and list-topics pick it by the URL's
//! `username@` (or as the only credential), and written messages carry
//! `_sender: alice`.

mod common;

use std::path::Path;
use std::process::Output;

use common::TempDir;
use serde_json::Value;

const SASL_SSL: &str = "127.0.0.1:9095";

fn skotch(auth_file: &Path, args: &[&str], stdin: &str) -> Output {
    let o = common::skotch_with_auth_file(auth_file, args, stdin);
    for text in [&o.stdout, &o.stderr] {
        assert!(!String::from_utf8_lossy(text).contains("alice-secret"));
    }
    o
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_over_sasl_ssl_with_a_credentials_file() {
    let admin = common::client().await;
    let topic = common::create_topic(&admin, "cli-sasl", 1).await;
    let dir = TempDir::new("skotch-cli-sasl");
    let auth = dir.0.join("auth.toml");
    let ca = common::certs().join("ca.pem");

    ok(skotch(
        &auth,
        &[
            "auth",
            "add",
            "--username",
            "alice",
            "--password-stdin",
            "--mechanism",
            "SCRAM-SHA-512",
            "--protocol",
            "SASL_SSL",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        "alice-secret\n",
    ));

    let url = format!("kafka://alice@{SASL_SSL}/{topic}");
    ok(skotch(&auth, &["publish", &url], "hello over TLS\n"));
    let out = ok(skotch(
        &auth,
        &["subscribe", &url, "-s", "earliest", "-e", "--json"],
        "",
    ));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["content"], "hello over TLS");
    let sender = lines[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "_sender")
        .map(|h| h[1].clone());
    assert_eq!(sender, Some(Value::from("alice")));

    // No username in the URL: the only credential is used.
    let out = ok(skotch(
        &auth,
        &["list-topics", &format!("kafka://{SASL_SSL}/")],
        "",
    ));
    assert!(out.contains(&topic), "{out}");

    // A user with no credential is a clear error, before any connection.
    let o = skotch(
        &auth,
        &["list-topics", &format!("kafka://bob@{SASL_SSL}/")],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("bob"), "{e}");

    // Groups tooling shares the credentials.
    ok(skotch(
        &auth,
        &["groups", "list", &format!("kafka://alice@{SASL_SSL}")],
        "",
    ));
}
