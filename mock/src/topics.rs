//! CreateTopics, DeleteTopics and CreatePartitions. Controllers are not
//! simulated: any broker applies them at once.
//!
//! A fault injected for one of these APIs answers every topic of the
//! request with its error code, applying nothing.

use std::collections::{BTreeSet, HashSet};

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use skotch_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use skotch_protocol::messages::create_topics_request::CreatableTopic;
use skotch_protocol::messages::create_topics_response::CreatableTopicResult;
use skotch_protocol::messages::delete_topics_response::DeletableTopicResult;
use skotch_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use skotch_protocol::Uuid;

use crate::broker::Broker;
use crate::fetch::{bounded_list, short};
use crate::idempotence::ProducerStates;
use crate::partition_log::PartitionLog;
use crate::state::{valid_topic_name, Partition, State, Topic, MAX_PARTITIONS};

/// The broker's `num.partitions` and `default.replication.factor`
/// defaults, used for -1 (KIP-464).
const DEFAULT_PARTITIONS: i32 = 1;
const DEFAULT_REPLICATION: i16 = 1;

/// The names that appear more than once in a request.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    names.filter(|n| !seen.insert(*n)).collect()
}

/// The replica lists of a CreateTopics topic with a manual assignment,
/// in partition order, checked as the controller's
/// `ReplicationControlManager.createTopic` does. An empty `assignments`
/// list is no manual assignment there (the defaults apply), so this is
/// only called for a non-empty one.
fn manual_assignment(
    t: &CreatableTopic,
    brokers: &[i32],
    down: &BTreeSet<i32>,
) -> Result<Vec<Vec<i32>>, (ErrorCode, String)> {
    if t.replication_factor != -1 {
        return Err((
            ErrorCode::INVALID_REQUEST,
            "A manual partition assignment was specified, but replication factor was not set \
             to -1."
                .into(),
        ));
    }
    if t.num_partitions != -1 {
        return Err((
            ErrorCode::INVALID_REQUEST,
            "A manual partition assignment was specified, but numPartitions was not set to -1."
                .into(),
        ));
    }
    let mut by_index: std::collections::BTreeMap<i32, Vec<i32>> = Default::default();
    let mut rf = None;
    for a in &t.assignments {
        if by_index.contains_key(&a.partition_index) {
            return Err((
                ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Found multiple manual partition assignments for partition {}",
                    a.partition_index
                ),
            ));
        }
        check_manual_assignment(&a.broker_ids, brokers, rf)?;
        rf = Some(a.broker_ids.len());
        if a.broker_ids.iter().all(|b| down.contains(b)) {
            return Err((
                ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "All brokers specified in the manual partition assignment for partition {} \
                     are fenced or in controlled shutdown.",
                    a.partition_index
                ),
            ));
        }
        by_index.insert(a.partition_index, a.broker_ids.clone());
    }
    // Keys 0..n exactly.
    if by_index.keys().zip(0..).any(|(k, i)| *k != i) {
        return Err((
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    Ok(by_index.into_values().collect())
}

/// Answer a CreateTopics request. Names given twice are INVALID_REQUEST
/// (`ControllerApis.createTopics`); the rest as the controller's
/// `ReplicationControlManager.createTopic`: a manual assignment needs
/// `num_partitions` and `replication_factor` -1 (INVALID_REQUEST) and
/// valid replica lists ([`manual_assignment`]); without one, -1 means the
/// broker default and other values below 1 are INVALID_PARTITIONS or
/// INVALID_REPLICATION_FACTOR.
pub(crate) fn create(
    broker: &Broker,
    req: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let brokers = broker.shared.broker_ids();
    let injected = crate::fault::injected_error(broker, ApiKey::CreateTopics, None);
    let mut state = broker.shared.state();
    let dupes = duplicates(req.topics.iter().map(|t| t.name.as_str()));
    let mut answered = HashSet::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        if !answered.insert(t.name.as_str()) {
            continue;
        }
        let mut entry = CreatableTopicResult {
            name: t.name.clone(),
            ..Default::default()
        };
        let result = if let Some(code) = injected {
            Err((code, None))
        } else if dupes.contains(t.name.as_str()) {
            Err((
                ErrorCode::INVALID_REQUEST,
                Some("Duplicate topic name.".to_string()),
            ))
        } else {
            create_one(&mut state, &brokers, t, req.validate_only).map_err(|(c, m)| (c, Some(m)))
        };
        match result {
            Ok((id, n, rf)) => {
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
                entry.error_message = message;
            }
        }
        topics.push(entry);
    }
    CreateTopicsResponse {
        throttle_time_ms: 0,
        topics,
    }
}

/// Create one topic: its id, partition count and replication factor.
fn create_one(
    state: &mut State,
    brokers: &[i32],
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<(Uuid, i32, i16), (ErrorCode, String)> {
    // Name and existence first (the controller's order); `create_topic`
    // answers those.
    let named_ok = valid_topic_name(&t.name) && !state.topics.contains_key(&t.name);
    let assignments = if named_ok && !t.assignments.is_empty() {
        Some(manual_assignment(t, brokers, &state.down)?)
    } else {
        if named_ok && (t.replication_factor < -1 || t.replication_factor == 0) {
            return Err((
                ErrorCode::INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
        if named_ok && (t.num_partitions < -1 || t.num_partitions == 0) {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        None
    };
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
        Some(a) => (
            i32::try_from(a.len()).unwrap_or(i32::MAX),
            a.first()
                .map_or(0, |r| i16::try_from(r.len()).unwrap_or(i16::MAX)),
        ),
        None => (partitions, replication),
    };
    let id = state.create_topic(
        brokers,
        &t.name,
        partitions,
        replication,
        assignments,
        validate_only,
    )?;
    Ok((id, n, rf))
}

/// Answer a DeleteTopics request (v6+ by name or id, older by name).
pub(crate) fn delete(
    broker: &Broker,
    req: &DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let injected = crate::fault::injected_error(broker, ApiKey::DeleteTopics, None);
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
        if let Some(code) = injected {
            entry.error_code = code.code();
            if version >= 6 {
                entry.topic_id = id;
            }
            responses.push(entry);
            continue;
        }
        match found.and_then(|n| state.topics.remove(&n).map(|t| (n, t))) {
            Some((name, topic)) => {
                // The broker drops a deleted topic's committed offsets.
                state.groups.offsets.topic_deleted(&name);
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

/// Summary for the request log: `name p=N rf=R` per topic (`assigned`
/// for a manual assignment).
pub(crate) fn create_summary(req: &CreateTopicsRequest) -> String {
    let t = req.topics.iter().map(|t| {
        let mut s = format!(
            "{} p={} rf={}",
            short(&t.name),
            t.num_partitions,
            t.replication_factor
        );
        if !t.assignments.is_empty() {
            s.push_str(&format!(" assigned={}", t.assignments.len()));
        }
        s
    });
    format!(
        "[{}] validate_only={}",
        bounded_list(req.topics.len(), t),
        req.validate_only
    )
}

/// Summary for the request log: the names (or ids).
pub(crate) fn delete_summary(req: &DeleteTopicsRequest) -> String {
    let names = req.topic_names.iter().map(|n| short(n).to_string());
    let by_state = req.topics.iter().map(|t| match &t.name {
        Some(n) => short(n).to_string(),
        None => t.topic_id.to_string(),
    });
    let total = req.topic_names.len() + req.topics.len();
    format!("[{}]", bounded_list(total, names.chain(by_state)))
}

/// Answer a CreatePartitions request (KIP-195): grow topics to `count`
/// partitions, each topic on its own, as the controller's
/// `ReplicationControlManager.createPartitions` (after `ControllerApis`
/// refused duplicate names with INVALID_REQUEST):
/// - an unknown topic: UNKNOWN_TOPIC_OR_PARTITION;
/// - `count` not above the current count: INVALID_PARTITIONS (and above
///   the mock's [`MAX_PARTITIONS`]);
/// - `assignments`, when given, must name one replica list per new
///   partition, each non-empty, of registered brokers, none twice, as many
///   as the topic's replication factor, with at least one broker up
///   (INVALID_REPLICA_ASSIGNMENT otherwise); the leader is the first one
///   up (`buildPartitionRegistration`);
/// - without, the new partitions get the replication factor of the first
///   partition, leaders spread over the brokers that are up
///   (INVALID_REPLICATION_FACTOR when there are too few brokers).
///
/// New partitions start at leader epoch 0 with an empty log.
/// `validate_only` checks without applying. Any broker applies the request
/// (controllers are not simulated).
pub(crate) fn create_partitions(
    broker: &Broker,
    req: &CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let brokers = broker.shared.broker_ids();
    let injected = crate::fault::injected_error(broker, ApiKey::CreatePartitions, None);
    let mut state = broker.shared.state();
    let mut results = Vec::with_capacity(req.topics.len());
    let mut seen = HashSet::new();
    let duplicates: HashSet<&str> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.as_str()))
        .map(|t| t.name.as_str())
        .collect();
    let mut answered = HashSet::new();
    for t in &req.topics {
        if !answered.insert(t.name.as_str()) {
            continue;
        }
        let outcome = if let Some(code) = injected {
            Err((code, None))
        } else if duplicates.contains(t.name.as_str()) {
            Err((
                ErrorCode::INVALID_REQUEST,
                Some("Duplicate topic name.".into()),
            ))
        } else {
            grow(&mut state, &brokers, t, req.validate_only)
        };
        let (error_code, error_message) = match outcome {
            Ok(()) => (0, None),
            Err((code, message)) => (code.code(), message),
        };
        results.push(CreatePartitionsTopicResult {
            name: t.name.clone(),
            error_code,
            error_message,
        });
    }
    CreatePartitionsResponse {
        throttle_time_ms: 0,
        results,
    }
}

/// Check and (unless `validate_only`) apply one topic of a CreatePartitions
/// request; the messages are the controller's.
fn grow(
    state: &mut State,
    brokers: &[i32],
    t: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ErrorCode, Option<String>)> {
    let down = state.down.clone();
    // `UnknownTopicOrPartitionException()`: no message.
    let topic = state
        .topics
        .get_mut(&t.name)
        .ok_or((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None))?;
    grow_topic(topic, brokers, &down, t, validate_only).map_err(|(c, m)| (c, Some(m)))
}

/// [`grow`] once the topic is found.
fn grow_topic(
    topic: &mut Topic,
    brokers: &[i32],
    down: &BTreeSet<i32>,
    t: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    let current = topic.partitions.len();
    let count = usize::try_from(t.count).unwrap_or(0);
    if count == current {
        return Err((
            ErrorCode::INVALID_PARTITIONS,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if count < current {
        return Err((
            ErrorCode::INVALID_PARTITIONS,
            format!(
                "The topic {} currently has {current} partition(s); {} would not be an increase.",
                t.name, t.count
            ),
        ));
    }
    if t.count > MAX_PARTITIONS {
        return Err((
            ErrorCode::INVALID_PARTITIONS,
            format!("the mock allows at most {MAX_PARTITIONS} partitions per topic"),
        ));
    }
    let additional = count - current;
    let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let placed: Vec<(Vec<i32>, Vec<i32>)> = match &t.assignments {
        Some(a) => {
            if a.len() != additional {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} \
                         assignment(s) were specified.",
                        a.len()
                    ),
                ));
            }
            let mut placed = Vec::with_capacity(a.len());
            for (i, replicas) in a.iter().enumerate() {
                check_manual_assignment(&replicas.broker_ids, brokers, Some(rf))?;
                let isr: Vec<i32> = replicas
                    .broker_ids
                    .iter()
                    .copied()
                    .filter(|b| !down.contains(b))
                    .collect();
                if isr.is_empty() {
                    return Err((
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        format!(
                            "All brokers specified in the manual partition assignment for \
                             partition {} are fenced or in controlled shutdown.",
                            current + i
                        ),
                    ));
                }
                placed.push((replicas.broker_ids.clone(), isr));
            }
            placed
        }
        None => {
            let up: Vec<i32> = brokers
                .iter()
                .copied()
                .filter(|b| !down.contains(b))
                .collect();
            if up.is_empty() {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    "All brokers are currently fenced.".into(),
                ));
            }
            if rf > brokers.len() {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    format!(
                        "The target replication factor of {rf} cannot be reached because only \
                         {} broker(s) are registered.",
                        brokers.len()
                    ),
                ));
            }
            // Leaders round-robin over the brokers that are up, followers
            // the brokers after the leader (a simplified striped placer).
            (current..count)
                .map(|p| {
                    let leader = up[p % up.len()];
                    let at = brokers.iter().position(|b| *b == leader).unwrap_or(0);
                    let replicas: Vec<i32> =
                        (0..rf).map(|r| brokers[(at + r) % brokers.len()]).collect();
                    let isr = replicas
                        .iter()
                        .copied()
                        .filter(|b| !down.contains(b))
                        .collect();
                    (replicas, isr)
                })
                .collect()
        }
    };
    if validate_only {
        return Ok(());
    }
    for (replicas, isr) in placed {
        topic.partitions.push(Partition {
            leader: isr[0],
            replicas,
            isr,
            leader_epoch: 0,
            offline: false,
            log: PartitionLog::default(),
            producers: ProducerStates::default(),
        });
    }
    Ok(())
}

/// A manual replica list, as the controller's
/// `validateManualPartitionAssignment`: not empty, registered brokers,
/// none twice, and `rf` long when the partitions before it say so.
fn check_manual_assignment(
    replicas: &[i32],
    brokers: &[i32],
    rf: Option<usize>,
) -> Result<(), (ErrorCode, String)> {
    let invalid = |m: String| Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, m));
    if replicas.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (i, b) in sorted.iter().enumerate() {
        if !brokers.contains(b) {
            return invalid(format!(
                "The manual partition assignment includes broker {b}, but no such broker is \
                 registered."
            ));
        }
        if i > 0 && sorted[i - 1] == *b {
            return invalid(format!(
                "The manual partition assignment includes the broker {b} more than once."
            ));
        }
    }
    if let Some(rf) = rf.filter(|rf| *rf != sorted.len()) {
        return invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this \
             is not consistent with previous partitions, which have {rf} replica(s).",
            sorted.len()
        ));
    }
    Ok(())
}

/// Summary for the request log: `name count=N` per topic (`assigned`
/// with a manual assignment).
pub(crate) fn create_partitions_summary(req: &CreatePartitionsRequest) -> String {
    let t = req.topics.iter().map(|t| match &t.assignments {
        Some(a) => format!("{} count={} assigned={}", short(&t.name), t.count, a.len()),
        None => format!("{} count={}", short(&t.name), t.count),
    });
    format!(
        "[{}] validate_only={}",
        bounded_list(req.topics.len(), t),
        req.validate_only
    )
}
