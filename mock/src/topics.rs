//! CreateTopics and DeleteTopics. Controllers are not simulated: any
//! broker applies them at once.

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::create_topics_response::CreatableTopicResult;
use skotch_protocol::messages::delete_topics_response::DeletableTopicResult;
use skotch_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use skotch_protocol::Uuid;

use crate::broker::Broker;

/// The broker's `num.partitions` and `default.replication.factor`
/// defaults, used for -1 (KIP-464).
const DEFAULT_PARTITIONS: i32 = 1;
const DEFAULT_REPLICATION: i16 = 1;

/// Answer a CreateTopics request.
pub(crate) fn create(
    broker: &Broker,
    req: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let brokers = broker.shared.broker_ids();
    let mut state = broker.shared.state();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let assignments = (!t.assignments.is_empty()).then(|| {
            let mut a: Vec<_> = t.assignments.iter().collect();
            a.sort_by_key(|a| a.partition_index);
            a.into_iter()
                .map(|a| a.broker_ids.clone())
                .collect::<Vec<_>>()
        });
        let partitions = if t.num_partitions == -1 {
            DEFAULT_PARTITIONS
        } else {
            t.num_partitions
        };
        let replication = if t.replication_factor == -1 {
            DEFAULT_REPLICATION
        } else {
            t.replication_factor
        };
        let (n, rf) = match &assignments {
            Some(a) => (a.len() as i32, a.first().map_or(0, |r| r.len() as i16)),
            None => (partitions, replication),
        };
        let result = state.create_topic(
            &brokers,
            &t.name,
            partitions,
            replication,
            assignments,
            req.validate_only,
        );
        let mut entry = CreatableTopicResult {
            name: t.name.clone(),
            ..Default::default()
        };
        match result {
            Ok(id) => {
                if version >= 7 {
                    entry.topic_id = id;
                }
                if version >= 5 {
                    entry.num_partitions = n;
                    entry.replication_factor = rf;
                    entry.configs = Some(Vec::new());
                }
            }
            Err((code, message)) => {
                entry.error_code = code.code();
                entry.error_message = Some(message);
            }
        }
        topics.push(entry);
    }
    CreateTopicsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Answer a DeleteTopics request (v6+ by name or id, older by name).
pub(crate) fn delete(
    broker: &Broker,
    req: &DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut state = broker.shared.state();
    let asked: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::ZERO))
            .collect()
    };
    let mut responses = Vec::with_capacity(asked.len());
    for (name, id) in asked {
        let by_id = name.is_none();
        let found = match &name {
            Some(n) => state.topics.contains_key(n).then(|| n.clone()),
            None => state.topic_name(id).map(str::to_string),
        };
        let mut entry = DeletableTopicResult {
            name: name.clone().or_else(|| found.clone()),
            ..Default::default()
        };
        match found.and_then(|n| state.topics.remove(&n)) {
            Some(topic) => {
                if version >= 6 {
                    entry.topic_id = topic.id;
                }
            }
            None => {
                entry.error_code = if by_id {
                    ErrorCode::UNKNOWN_TOPIC_ID.code()
                } else {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
                };
                if version >= 6 {
                    entry.topic_id = id;
                }
            }
        }
        responses.push(entry);
    }
    DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses,
    }
}

/// Summary for the request log.
pub(crate) fn create_summary(req: &CreateTopicsRequest) -> String {
    let t: Vec<String> = req
        .topics
        .iter()
        .map(|t| {
            format!(
                "{} p={} rf={}",
                t.name, t.num_partitions, t.replication_factor
            )
        })
        .collect();
    format!("[{}] validate_only={}", t.join(", "), req.validate_only)
}

/// Summary for the request log.
pub(crate) fn delete_summary(req: &DeleteTopicsRequest) -> String {
    let mut t: Vec<String> = req.topic_names.clone();
    t.extend(
        req.topics
            .iter()
            .map(|t| t.name.clone().unwrap_or_else(|| t.topic_id.to_string())),
    );
    format!("[{}]", t.join(", "))
}
