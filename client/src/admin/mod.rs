//! Admin calls: create, delete and list topics, add partitions. KRaft brokers forward
//! CreateTopics/DeleteTopics to the active controller themselves, so any
//! broker will do; NOT_CONTROLLER is retried like other retriable errors.
//! Consumer group calls (list, describe, committed offsets, lag) are in
//! `groups.rs`.

use std::time::Duration;

use skotch_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use skotch_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use skotch_protocol::messages::delete_topics_request::DeleteTopicState;
use skotch_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::metadata::TopicInfo;

mod configs;
mod groups;

pub use configs::{ConfigEntry, ConfigSource};
pub use groups::{
    decode_consumer_assignment, decode_consumer_subscription, GroupDescription, GroupListing,
    GroupMember, PartitionLag,
};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions; -1 uses the broker's `num.partitions`.
    pub partitions: i32,
    /// Replication factor; -1 uses the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs, e.g. `("cleanup.policy", "compact")`.
    pub configs: Vec<(String, String)>,
    /// Explicit replica placement: for partition `i`, the node ids of its
    /// replicas, preferred leader first. When set, `partitions` and
    /// `replication_factor` are sent as -1, as CreateTopics requires
    /// (Java's `NewTopic(String, Map<Integer, List<Integer>>)`).
    pub replica_assignment: Option<Vec<Vec<i32>>>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
            replica_assignment: None,
        }
    }

    /// A topic whose partition `i` has the replicas `assignment[i]` (node
    /// ids, preferred leader first); the partition count and replication
    /// factor follow from it.
    pub fn with_replica_assignment(name: impl Into<String>, assignment: Vec<Vec<i32>>) -> Self {
        Self {
            name: name.into(),
            partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
            replica_assignment: Some(assignment),
        }
    }

    /// Add a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// Admin operations on a cluster.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
    timeout: Duration,
}

impl Admin {
    /// Admin calls over `client`, each allowed `default.api.timeout.ms`
    /// (60 000 ms) including retries.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            timeout: Duration::from_millis(60_000),
        }
    }

    /// `default.api.timeout.ms`: the limit for each admin call, retries
    /// included. Default 60 000 ms.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Create topics and wait until the broker has created them. Each topic
    /// gets its own result, in order (TOPIC_ALREADY_EXISTS is an error for
    /// that topic).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<Vec<Result<()>>> {
        let req = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.name.clone(),
                    num_partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.clone(),
                            value: Some(v.clone()),
                        })
                        .collect(),
                    assignments: t
                        .replica_assignment
                        .iter()
                        .flatten()
                        .zip(0..)
                        .map(|(brokers, partition)| CreatableReplicaAssignment {
                            partition_index: partition,
                            broker_ids: brokers.clone(),
                        })
                        .collect(),
                })
                .collect(),
            timeout_ms: i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX),
            ..Default::default()
        };
        let resp = self
            .client
            .retry(self.timeout, || self.client.send_any(&req))
            .await?;
        let results = topics
            .iter()
            .map(|t| match resp.topics.iter().find(|r| r.name == t.name) {
                None => Err(Error::Config(format!(
                    "broker did not answer for topic {:?}",
                    t.name
                ))),
                Some(r) => Error::check(r.error_code, r.error_message.clone(), || {
                    format!("create topic {:?}", t.name)
                }),
            })
            .collect::<Vec<Result<()>>>();
        self.client.invalidate_metadata();
        let created: Vec<String> = topics
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(t, _)| t.name.clone())
            .collect();
        self.wait_until_visible(&created).await?;
        Ok(results)
    }

    /// The broker answers CreateTopics once the controller has the topic,
    /// but brokers learn of it a moment later; until then Metadata says
    /// UNKNOWN_TOPIC_OR_PARTITION. Wait (within the admin timeout) until
    /// every new topic is described with a leader for each partition, so
    /// that "create, then produce" just works.
    async fn wait_until_visible(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + self.timeout;
        let mut attempt = 0;
        loop {
            let md = self.client.refresh_metadata(names).await?;
            let ready = names.iter().all(|n| {
                md.topics.get(n).is_some_and(|t| {
                    !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0)
                })
            });
            if ready {
                return Ok(());
            }
            let wait = self.client.backoff().delay_random(attempt);
            if std::time::Instant::now() + wait >= deadline {
                return Err(Error::Timeout {
                    what: format!("topics {names:?} to appear in metadata"),
                    after_ms: self.timeout.as_millis() as u64,
                });
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Create one topic; Ok also when it already exists if `if_not_exists`.
    pub async fn create_topic(&self, topic: NewTopic, if_not_exists: bool) -> Result<()> {
        let mut r = self.create_topics(std::slice::from_ref(&topic)).await?;
        match r.pop() {
            Some(Err(e))
                if if_not_exists
                    && e.code()
                        == Some(skotch_protocol::error::ErrorCode::TOPIC_ALREADY_EXISTS) =>
            {
                Ok(())
            }
            Some(r) => r,
            None => Ok(()),
        }
    }

    /// Grow `topic` to `count` partitions (Java's `createPartitions`;
    /// CreatePartitions, replicas placed by the controller). Partitions
    /// can only be added.
    ///
    /// Errors: INVALID_PARTITIONS when `count` is not above the current
    /// count, UNKNOWN_TOPIC_OR_PARTITION, and the broker's other refusals.
    pub async fn create_partitions(&self, topic: &str, count: i32) -> Result<()> {
        let req = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.to_string(),
                count,
                assignments: None,
            }],
            timeout_ms: i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX),
            validate_only: false,
        };
        let resp = self
            .client
            .retry(self.timeout, || self.client.send_any(&req))
            .await?;
        self.client.invalidate_metadata();
        match resp.results.iter().find(|r| r.name == topic) {
            None => Err(Error::Config(format!(
                "broker did not answer for topic {topic:?}"
            ))),
            Some(r) => Error::check(r.error_code, r.error_message.clone(), || {
                format!("add partitions to topic {topic:?}")
            }),
        }
    }

    /// Delete topics by name; one result per topic, in order.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<Result<()>>> {
        let req = DeleteTopicsRequest {
            // v6+ carries names in `topics`; older versions in `topic_names`.
            // The encoder writes whichever the chosen version has.
            topics: names
                .iter()
                .map(|n| DeleteTopicState {
                    name: Some(n.clone()),
                    ..Default::default()
                })
                .collect(),
            topic_names: names.to_vec(),
            timeout_ms: i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX),
        };
        let resp = self
            .client
            .retry(self.timeout, || self.client.send_any(&req))
            .await?;
        let results = names
            .iter()
            .map(|n| {
                match resp
                    .responses
                    .iter()
                    .find(|r| r.name.as_deref() == Some(n.as_str()))
                {
                    None => Err(Error::Config(format!(
                        "broker did not answer for topic {n:?}"
                    ))),
                    Some(r) => Error::check(r.error_code, r.error_message.clone(), || {
                        format!("delete topic {n:?}")
                    }),
                }
            })
            .collect();
        self.client.invalidate_metadata();
        Ok(results)
    }

    /// Every topic in the cluster, sorted by name (internal topics
    /// included; check [`TopicInfo::is_internal`]).
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let md = self
            .client
            .retry(self.timeout, || self.client.fetch_all_topics())
            .await?;
        Ok(md.topics.values().cloned().collect())
    }
}
