//! `skotch topics list|create|delete|describe URL`: topic administration
//! through the Admin client, in the spirit of Kafka's `kafka-topics`. The
//! topics are the ones the URL names (`kafka://broker/t1,t2`); skotch, like
//! hop, never creates a topic by publishing to it, so this is how a new
//! user makes one.

use clap::Subcommand;
use serde_json::{json, Value};
use skotch::client::metadata::TopicInfo;
use skotch::client::{ConfigEntry, Error, NewTopic};
use skotch::stream::{KafkaUrl, Stream};

use crate::cli_support::{admin, emit, parse_url, table};

/// `skotch topics ...`.
#[derive(Subcommand)]
pub enum TopicsCommand {
    /// List the topics of the cluster (those the URL names, if any).
    List {
        /// kafka://[user@]broker[:port][,...]/[topic,...]
        url: String,
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        all: bool,
        /// Print one JSON object: {"topics": [{"name", "partitions",
        /// "internal"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Create the topics the URL names.
    Create {
        /// kafka://[user@]broker[:port][,...]/topic[,topic2...]
        url: String,
        /// Partitions of each topic [default: the broker's num.partitions].
        #[arg(long, short, value_name = "N")]
        partitions: Option<i32>,
        /// Replicas of each partition [default: the broker's
        /// default.replication.factor].
        #[arg(long, short, value_name = "N")]
        replication_factor: Option<i16>,
        /// A topic config, e.g. retention.ms=86400000; repeat for more.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed when a topic exists already (its settings unchanged).
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Delete the topics the URL names, with every record in them.
    Delete {
        /// kafka://[user@]broker[:port][,...]/topic[,topic2...]
        url: String,
        /// Succeed when a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Describe the topics the URL names: partitions with their leader,
    /// replicas and in-sync replicas, and the configs set on the topic.
    Describe {
        /// kafka://[user@]broker[:port][,...]/topic[,topic2...]
        url: String,
        /// Show every config, with where its value comes from, not only
        /// those set on the topic.
        #[arg(long)]
        all_configs: bool,
        /// Print one JSON object per topic (name, id, partitions, configs
        /// with their source).
        #[arg(long)]
        json: bool,
    },
}

/// Run a `topics` subcommand; `timeout_ms` bounds connecting and each
/// admin call.
pub async fn run(cmd: TopicsCommand, stream: &Stream, timeout_ms: u64) -> Result<(), String> {
    match cmd {
        TopicsCommand::List { url, all, json } => list(&url, all, json, stream, timeout_ms).await,
        TopicsCommand::Create {
            url,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let url = parse_url(&url)?;
            let configs = configs
                .iter()
                .map(|c| parse_config(c))
                .collect::<Result<Vec<_>, _>>()?;
            let admin = admin(&url, stream, timeout_ms).await?;
            for name in named_topics(&url)? {
                let mut topic = NewTopic::new(
                    name,
                    partitions.unwrap_or(-1),
                    replication_factor.unwrap_or(-1),
                );
                for (k, v) in &configs {
                    topic = topic.config(k, v);
                }
                admin
                    .create_topic(topic, if_not_exists)
                    .await
                    .map_err(|e| format!("creating topic {name:?}: {e}"))?;
                eprintln!("topic {name:?} is there");
            }
            Ok(())
        }
        TopicsCommand::Delete { url, if_exists } => {
            let url = parse_url(&url)?;
            let names = named_topics(&url)?.to_vec();
            let admin = admin(&url, stream, timeout_ms).await?;
            let results = admin
                .delete_topics(&names)
                .await
                .map_err(|e| e.to_string())?;
            for (name, r) in names.iter().zip(results) {
                match r {
                    Ok(()) => eprintln!("deleted topic {name:?}"),
                    Err(e) if if_exists && is_unknown_topic(&e) => {
                        eprintln!("topic {name:?} does not exist")
                    }
                    Err(e) => return Err(format!("deleting topic {name:?}: {e}")),
                }
            }
            Ok(())
        }
        TopicsCommand::Describe {
            url,
            all_configs,
            json,
        } => describe(&url, all_configs, json, stream, timeout_ms).await,
    }
}

/// The topics a URL names; an error for a URL naming none.
fn named_topics(url: &KafkaUrl) -> Result<&[String], String> {
    if url.topics.is_empty() {
        return Err("the URL names no topic: kafka://broker[:port]/topic[,topic2...]".into());
    }
    Ok(&url.topics)
}

/// `KEY=VALUE` of `--config`.
fn parse_config(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("--config {raw:?}: expected KEY=VALUE")),
    }
}

fn is_unknown_topic(e: &Error) -> bool {
    matches!(e, Error::UnknownTopic(_))
        || matches!(e, Error::Broker { code, .. }
            if *code == skotch::protocol::error::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
}

/// `topics list` (also the older `list-topics`).
pub(crate) async fn list(
    url: &str,
    all: bool,
    as_json: bool,
    stream: &Stream,
    timeout_ms: u64,
) -> Result<(), String> {
    let url = parse_url(url)?;
    let topics = admin(&url, stream, timeout_ms)
        .await?
        .list_topics()
        .await
        .map_err(|e| e.to_string())?;
    let shown: Vec<&TopicInfo> = topics
        .iter()
        .filter(|t| all || !t.is_internal)
        .filter(|t| url.topics.is_empty() || url.topics.contains(&t.name))
        .collect();
    if as_json {
        let topics: Vec<Value> = shown
            .iter()
            .map(|t| json!({"name": t.name, "partitions": t.partitions.len(), "internal": t.is_internal}))
            .collect();
        return emit(&format!("{}\n", json!({ "topics": topics })));
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|t| vec![t.name.clone(), t.partitions.len().to_string()])
        .collect();
    emit(&table(&["TOPIC", "PARTITIONS"], &rows))
}

async fn describe(
    url: &str,
    all_configs: bool,
    as_json: bool,
    stream: &Stream,
    timeout_ms: u64,
) -> Result<(), String> {
    let url = parse_url(url)?;
    let names = named_topics(&url)?;
    let admin = admin(&url, stream, timeout_ms).await?;
    let client = stream.client(&url).await.map_err(|e| e.to_string())?;
    client
        .refresh_metadata(names)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    for name in names {
        let info = client.topic(name).await.map_err(|e| match e {
            Error::UnknownTopic(_) => format!("unknown topic {name:?}"),
            e => format!("describing topic {name:?}: {e}"),
        })?;
        let configs = admin
            .describe_topic_configs(name)
            .await
            .map_err(|e| format!("describing the configs of topic {name:?}: {e}"))?;
        if as_json {
            out.push_str(&format!("{}\n", describe_json(&info, &configs)));
        } else {
            out.push_str(&describe_text(&info, &configs, all_configs));
        }
    }
    emit(&out)
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn describe_text(info: &TopicInfo, configs: &[ConfigEntry], all_configs: bool) -> String {
    let replication = info.partitions.first().map_or(0, |p| p.replicas.len());
    let mut out = format!(
        "Topic: {}  Id: {}  Partitions: {}  Replication factor: {}\n",
        info.name,
        info.id,
        info.partitions.len(),
        replication
    );
    let rows: Vec<Vec<String>> = info
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                if p.leader < 0 {
                    "none".to_string()
                } else {
                    p.leader.to_string()
                },
                p.leader_epoch.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
            ]
        })
        .collect();
    out.push_str(&table(
        &["PARTITION", "LEADER", "LEADER EPOCH", "REPLICAS", "ISR"],
        &rows,
    ));
    let shown: Vec<&ConfigEntry> = configs
        .iter()
        .filter(|c| all_configs || c.is_topic_override())
        .collect();
    if shown.is_empty() {
        out.push_str("Configs: none set on the topic (--all-configs shows the defaults)\n");
    } else {
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    config_value(c),
                    c.source.as_str().to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&["CONFIG", "VALUE", "SOURCE"], &rows));
    }
    out.push('\n');
    out
}

fn config_value(c: &ConfigEntry) -> String {
    match (&c.value, c.sensitive) {
        (_, true) => "(sensitive)".to_string(),
        (Some(v), false) => v.clone(),
        (None, false) => "-".to_string(),
    }
}

fn describe_json(info: &TopicInfo, configs: &[ConfigEntry]) -> Value {
    json!({
        "name": info.name,
        "id": info.id.to_string(),
        "partitions": info.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "leader": p.leader,
            "leader_epoch": p.leader_epoch,
            "replicas": p.replicas,
            "isr": p.isr,
        })).collect::<Vec<_>>(),
        "configs": configs.iter().map(|c| json!({
            "name": c.name,
            "value": if c.sensitive { None } else { c.value.clone() },
            "source": c.source.as_str(),
            "read_only": c.read_only,
            "sensitive": c.sensitive,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse() {
        assert_eq!(
            parse_config("retention.ms=1000").unwrap(),
            ("retention.ms".to_string(), "1000".to_string())
        );
        assert_eq!(
            parse_config("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert!(parse_config("novalue").is_err());
        assert!(parse_config("=x").is_err());
    }
}
