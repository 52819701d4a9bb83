//! Helpers for the streaming-layer tests (tests/stream_groups.rs,
//! tests/stream_engine.rs): numbered JSON messages, group settings with
//! short timeouts, and a group's committed offset.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;
use skotch::client::{Admin, Client};
use skotch::stream::{GroupOptions, Message, Stream, TopicPartition};

/// Write `{"n": i}` for every `i` of `range` to `url`.
pub async fn write_numbers(url: &str, range: std::ops::Range<i64>) {
    let mut w = Stream::new().open_writer(url).await.expect("writer");
    for i in range {
        w.write(Message::Json(json!({ "n": i })))
            .await
            .expect("write");
    }
    w.close().await.expect("close");
}

/// The `n` of a message [`write_numbers`] wrote.
pub fn number(m: &Message) -> i64 {
    match m {
        Message::Json(v) => v["n"].as_i64().expect("n"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Group settings for fast tests: short session and heartbeat, frequent
/// commits.
pub fn group_options(group: &str) -> GroupOptions {
    let mut g = GroupOptions::new(group);
    g.session_timeout = Duration::from_secs(6);
    g.heartbeat_interval = Duration::from_millis(500);
    g.commit_interval = Duration::from_millis(200);
    g
}

/// The group's committed offset for partition 0 of `topic`.
pub async fn committed(client: &Client, group: &str, topic: &str) -> Option<i64> {
    Admin::new(client.clone())
        .list_group_offsets(group)
        .await
        .expect("offsets")
        .get(&TopicPartition::new(topic, 0))
        .copied()
}
