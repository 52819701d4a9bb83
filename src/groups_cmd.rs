//! `skotch groups list URL` and `skotch groups describe URL GROUP_ID`:
//! consumer group tooling in the spirit of Kafka's `kafka-consumer-groups`
//! (members, assignment, committed offsets and lag), as aligned text
//! tables or, with `--json`, one JSON object.

use std::collections::{BTreeMap, BTreeSet};

use clap::Subcommand;
use serde_json::{json, Value};
use skotch::client::{Admin, GroupDescription, TopicPartition};
use skotch::stream::Stream;

use crate::cli_support::{admin, emit, or_dash, parse_url, table};

/// `skotch groups ...`.
#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List the groups of the cluster (every type: classic and KIP-848
    /// consumer groups, share and streams groups).
    List {
        /// kafka://[user@]broker[:port][,...]/
        url: String,
        /// Print one JSON object: {"groups": [{"group_id", "type", "state",
        /// "protocol_type", "coordinator"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Describe a group: state, members and their assignment, committed
    /// offsets and lag per partition.
    Describe {
        /// kafka://[user@]broker[:port][,...]/[topic,...]; topics in the URL
        /// limit the offsets shown to those topics.
        url: String,
        /// The group id.
        group_id: String,
        /// Print one JSON object (group, members, offsets).
        #[arg(long)]
        json: bool,
    },
}

/// Run a `groups` subcommand; `timeout_ms` bounds connecting and each
/// admin call.
pub async fn run(cmd: GroupsCommand, stream: &Stream, timeout_ms: u64) -> Result<(), String> {
    match cmd {
        GroupsCommand::List { url, json } => list(&url, json, stream, timeout_ms).await,
        GroupsCommand::Describe {
            url,
            group_id,
            json,
        } => describe(&url, &group_id, json, stream, timeout_ms).await,
    }
}

async fn list(url: &str, as_json: bool, stream: &Stream, timeout_ms: u64) -> Result<(), String> {
    let url = parse_url(url)?;
    let groups = admin(&url, stream, timeout_ms)
        .await?
        .list_groups()
        .await
        .map_err(|e| e.to_string())?;
    if as_json {
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({
                    "group_id": g.group_id,
                    "type": g.group_type,
                    "state": g.state,
                    "protocol_type": g.protocol_type,
                    "coordinator": g.coordinator,
                })
            })
            .collect();
        return emit(&format!("{}\n", json!({ "groups": groups })));
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.clone(),
                or_dash(g.group_type.as_deref()),
                or_dash(g.state.as_deref()),
                or_dash((!g.protocol_type.is_empty()).then_some(&g.protocol_type)),
                g.coordinator.to_string(),
            ]
        })
        .collect();
    emit(&table(
        &["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE", "COORDINATOR"],
        &rows,
    ))
}

/// One row of the offsets table: a partition the group has a committed
/// offset for or a member is assigned.
struct OffsetRow {
    tp: TopicPartition,
    committed: Option<i64>,
    log_end_offset: Option<i64>,
    member: Option<String>,
}

impl OffsetRow {
    fn lag(&self) -> Option<i64> {
        Some(self.log_end_offset?.saturating_sub(self.committed?).max(0))
    }
}

async fn describe(
    url: &str,
    group: &str,
    as_json: bool,
    stream: &Stream,
    timeout_ms: u64,
) -> Result<(), String> {
    let url = parse_url(url)?;
    let admin = admin(&url, stream, timeout_ms).await?;
    let desc = admin
        .describe_group(group)
        .await
        .map_err(|e| e.to_string())?;
    let committed = admin
        .list_group_offsets(group)
        .await
        .map_err(|e| e.to_string())?;
    let rows = offset_rows(&admin, &desc, &committed, &url.topics).await?;
    let text = if as_json {
        format!("{}\n", describe_json(&desc, &rows))
    } else {
        describe_text(&desc, &rows)
    };
    emit(&text)
}

async fn offset_rows(
    admin: &Admin,
    desc: &GroupDescription,
    committed: &BTreeMap<TopicPartition, i64>,
    only_topics: &[String],
) -> Result<Vec<OffsetRow>, String> {
    let owner: BTreeMap<&TopicPartition, &str> = desc
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().map(|tp| (tp, m.member_id.as_str())))
        .collect();
    let partitions: BTreeSet<TopicPartition> = committed
        .keys()
        .chain(owner.keys().copied())
        .filter(|tp| only_topics.is_empty() || only_topics.contains(&tp.topic))
        .cloned()
        .collect();
    let list: Vec<TopicPartition> = partitions.iter().cloned().collect();
    let ends = admin.end_offsets(&list).await.map_err(|e| e.to_string())?;
    Ok(partitions
        .into_iter()
        .map(|tp| OffsetRow {
            committed: committed.get(&tp).copied(),
            log_end_offset: ends.get(&tp).copied(),
            member: owner.get(&tp).map(|m| m.to_string()),
            tp,
        })
        .collect())
}

fn partitions_text(tps: &[TopicPartition]) -> String {
    if tps.is_empty() {
        return "-".into();
    }
    // topic: 0,1,2; other: 3
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for tp in tps {
        by_topic
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition.to_string());
    }
    by_topic
        .into_iter()
        .map(|(t, ps)| format!("{t}:{}", ps.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe_text(desc: &GroupDescription, rows: &[OffsetRow]) -> String {
    let mut out = String::new();
    let mut fields = vec![
        ("GROUP", desc.group_id.clone()),
        ("TYPE", desc.group_type.clone()),
        ("STATE", desc.state.clone()),
        (
            "PROTOCOL-TYPE",
            or_dash((!desc.protocol_type.is_empty()).then_some(&desc.protocol_type)),
        ),
        (
            "ASSIGNOR",
            or_dash((!desc.assignor.is_empty()).then_some(&desc.assignor)),
        ),
        ("COORDINATOR", desc.coordinator.to_string()),
    ];
    if let Some(e) = desc.group_epoch {
        fields.push(("GROUP-EPOCH", e.to_string()));
    }
    fields.push(("MEMBERS", desc.members.len().to_string()));
    for (k, v) in fields {
        out.push_str(&format!("{k:<15}{v}\n"));
    }
    if !desc.members.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = desc
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    or_dash(m.group_instance_id.as_deref()),
                    m.client_id.clone(),
                    m.host.clone(),
                    partitions_text(&m.assignment),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "ASSIGNMENT",
            ],
            &rows,
        ));
    }
    if !rows.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.tp.topic.clone(),
                    r.tp.partition.to_string(),
                    or_dash(r.committed),
                    or_dash(r.log_end_offset),
                    or_dash(r.lag()),
                    or_dash(r.member.as_deref()),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END-OFFSET",
                "LAG",
                "MEMBER-ID",
            ],
            &rows,
        ));
    }
    out
}

fn describe_json(desc: &GroupDescription, rows: &[OffsetRow]) -> Value {
    let tp_json = |tp: &TopicPartition| json!({"topic": tp.topic, "partition": tp.partition});
    let members: Vec<Value> = desc
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.host,
                "member_epoch": m.member_epoch,
                "subscribed_topics": m.subscribed_topics,
                "assignment": m.assignment.iter().map(tp_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let offsets: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "topic": r.tp.topic,
                "partition": r.tp.partition,
                "committed": r.committed,
                "log_end_offset": r.log_end_offset,
                "lag": r.lag(),
                "member_id": r.member,
            })
        })
        .collect();
    json!({
        "group_id": desc.group_id,
        "type": desc.group_type,
        "state": desc.state,
        "protocol_type": desc.protocol_type,
        "assignor": desc.assignor,
        "coordinator": desc.coordinator,
        "group_epoch": desc.group_epoch,
        "members": members,
        "offsets": offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq\n");
    }

    #[test]
    fn partitions_grouped_by_topic() {
        let tps = vec![
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 2),
            TopicPartition::new("b", 1),
        ];
        assert_eq!(partitions_text(&tps), "a:0,2 b:1");
        assert_eq!(partitions_text(&[]), "-");
    }
}
