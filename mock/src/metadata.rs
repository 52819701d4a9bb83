//! Metadata: brokers, topics, partitions with leader, leader epoch
//! (KIP-320), replicas and ISR. Topics are never created by Metadata
//! (as with `auto.create.topics.enable=false`): an unknown topic is
//! UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked by id, KIP-516).

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use skotch_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use skotch_protocol::Uuid;

use std::collections::BTreeSet;

use crate::broker::Broker;
use crate::fault;
use crate::state::Topic;

fn topic_entry(
    broker: &Broker,
    down: &BTreeSet<i32>,
    name: &str,
    topic: &Topic,
    version: i16,
) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: 0,
        name: Some(name.to_string()),
        topic_id: if version >= 10 { topic.id } else { Uuid::ZERO },
        is_internal: false,
        partitions: topic
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // A partition without a leader is LEADER_NOT_AVAILABLE,
                // with its replicas that are down listed as offline
                // (MetadataCache / KRaftMetadataCache.partitionMetadata).
                let injected =
                    fault::injected_error(broker, ApiKey::Metadata, Some((name, i as i32)));
                let error = match injected {
                    Some(code) => code.code(),
                    None if p.leader < 0 => ErrorCode::LEADER_NOT_AVAILABLE.code(),
                    None => 0,
                };
                MetadataResponsePartition {
                    error_code: error,
                    partition_index: i as i32,
                    leader_id: p.leader,
                    leader_epoch: p.leader_epoch,
                    replica_nodes: p.replicas.clone(),
                    isr_nodes: p.isr.clone(),
                    offline_replicas: p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| down.contains(r))
                        .collect(),
                }
            })
            .collect(),
        ..Default::default()
    }
}

/// Answer a Metadata request.
pub(crate) fn handle(broker: &Broker, req: &MetadataRequest, version: i16) -> MetadataResponse {
    let shared = &broker.shared;
    let request_error = fault::injected_error(broker, ApiKey::Metadata, None);
    let state = shared.state();
    let down = &state.down;
    let entry = |n: &str, t: &Topic, version: i16| {
        let mut entry = topic_entry(broker, down, n, t, version);
        if let Some(code) = request_error {
            entry.error_code = code.code();
            entry.partitions.clear();
        }
        entry
    };
    // v0: an empty list means all topics; v1+: null does.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let topics = if all {
        state
            .topics
            .iter()
            .map(|(n, t)| entry(n, t, version))
            .collect()
    } else {
        req.topics
            .iter()
            .flatten()
            .map(|asked| {
                let name = match &asked.name {
                    Some(n) => Some(n.clone()),
                    None => state.topic_name(asked.topic_id).map(str::to_string),
                };
                match name
                    .as_deref()
                    .and_then(|n| state.topics.get(n).map(|t| (n, t)))
                {
                    Some((n, t)) => entry(n, t, version),
                    None => MetadataResponseTopic {
                        error_code: if asked.name.is_none() {
                            ErrorCode::UNKNOWN_TOPIC_ID.code()
                        } else {
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
                        },
                        name: match (&asked.name, version >= 12) {
                            (Some(n), _) => Some(n.clone()),
                            (None, true) => None,
                            (None, false) => Some(String::new()),
                        },
                        topic_id: if version >= 10 {
                            asked.topic_id
                        } else {
                            Uuid::ZERO
                        },
                        ..Default::default()
                    },
                }
            })
            .collect()
    };
    MetadataResponse {
        throttle_time_ms: 0,
        // Brokers that are down are not listed (KRaft fences them).
        brokers: shared
            .brokers
            .iter()
            .filter(|b| !down.contains(&b.node_id))
            .map(|b| MetadataResponseBroker {
                node_id: b.node_id,
                host: b.host.clone(),
                port: i32::from(b.port),
                rack: None,
            })
            .collect(),
        cluster_id: Some(shared.cluster_id.clone()),
        // Controllers are not simulated; clients send admin requests to
        // the controller id they read here, which is broker 0.
        controller_id: shared
            .brokers
            .iter()
            .find(|b| !down.contains(&b.node_id))
            .map_or(-1, |b| b.node_id),
        topics,
        ..Default::default()
    }
}

/// Summary for the request log.
pub(crate) fn summary(req: &MetadataRequest) -> String {
    match &req.topics {
        None => "all topics".into(),
        Some(t) => {
            let names: Vec<String> = t
                .iter()
                .map(|t| t.name.clone().unwrap_or_else(|| t.topic_id.to_string()))
                .collect();
            format!(
                "topics [{}] auto_create={}",
                names.join(", "),
                req.allow_auto_topic_creation
            )
        }
    }
}
