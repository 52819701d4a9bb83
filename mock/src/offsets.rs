//! Committed offsets: OffsetCommit and OffsetFetch. Written from Kafka's
//! `OffsetMetadataManager.java` (commit validation, fetch),
//! `ClassicGroup.validateOffsetCommit`, `GroupCoordinatorService.java`
//! and `KafkaApis.scala` (unknown topics, version handling).
//!
//! Offsets are kept per group, topic and partition with their leader
//! epoch and metadata, for classic, simple (manual commits with
//! generation -1) and KIP-848 groups alike, and never expire
//! (`offsets.retention.minutes` is not simulated). Transactions are out
//! of scope: `require_stable` is accepted and changes nothing, as there
//! are never pending transactional offsets.

use std::collections::BTreeMap;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use skotch_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use skotch_protocol::messages::{
    ApiKey, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use skotch_protocol::Uuid;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::classic_group::GroupState;
use crate::state::State;

/// `offset.metadata.max.bytes` (broker default 4096).
pub(crate) const OFFSET_METADATA_MAX_SIZE: usize = 4096;

/// One committed offset (`OffsetAndMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub offset: i64,
    /// -1: none given.
    pub leader_epoch: i32,
    pub metadata: String,
    /// When it was committed (tokio time).
    pub at: Instant,
}

/// Committed offsets by group, topic and partition.
#[derive(Debug, Default)]
pub(crate) struct Offsets {
    by_group: BTreeMap<String, BTreeMap<String, BTreeMap<i32, Committed>>>,
}

impl Offsets {
    /// The committed offset of a partition, if any.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&Committed> {
        self.by_group.get(group)?.get(topic)?.get(&partition)
    }

    fn put(&mut self, group: &str, topic: &str, partition: i32, c: Committed) {
        self.by_group
            .entry(group.to_string())
            .or_default()
            .entry(topic.to_string())
            .or_default()
            .insert(partition, c);
    }

    /// Forget a deleted topic's offsets, in every group (the coordinator
    /// does so when the topic's partitions are deleted,
    /// `GroupCoordinatorService.onPartitionsDeleted`).
    pub fn topic_deleted(&mut self, topic: &str) {
        for topics in self.by_group.values_mut() {
            topics.remove(topic);
        }
    }
}

/// Whether `topic` has partition `partition`.
fn partition_exists(state: &State, topic: &str, partition: i32) -> bool {
    state
        .topics
        .get(topic)
        .is_some_and(|t| usize::try_from(partition).is_ok_and(|p| p < t.partitions.len()))
}

/// Whether a commit by this member at this generation may commit for
/// `group`; creates a simple group for a generation -1 commit to an
/// unknown group (`OffsetMetadataManager.validateOffsetCommit`,
/// `ClassicGroup.validateOffsetCommit`).
fn validate_commit(
    state: &mut State,
    req: &OffsetCommitRequest,
    version: i16,
) -> Result<(), ErrorCode> {
    let group = req.group_id.as_str();
    let generation = req.generation_id_or_member_epoch;
    if let Some(verdict) =
        crate::consumer_group::validate_commit(state, group, &req.member_id, generation)
    {
        return verdict;
    }
    let groups = &mut state.groups;
    if groups.get(group).is_none() {
        if generation < 0 {
            // A simple group: a consumer without group management, or
            // the admin client.
            groups.get_or_create(group);
        } else if version >= 9 {
            return Err(ErrorCode::GROUP_ID_NOT_FOUND);
        } else {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
    }
    let Some(g) = groups.get(group) else {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    };
    if g.state == GroupState::Dead {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if generation < 0 && g.state == GroupState::Empty {
        return Ok(());
    }
    let instance = req.group_instance_id.as_deref();
    if generation >= 0 || !req.member_id.is_empty() || instance.is_some() {
        g.validate_member(&req.member_id, instance)?;
        if generation != g.generation {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
    } else if g.state != GroupState::Empty {
        // No member id and no generation: only for an empty group.
        return Err(ErrorCode::UNKNOWN_MEMBER_ID);
    }
    if g.state == GroupState::CompletingRebalance {
        // The member has its new generation from JoinGroup but has not
        // synced yet.
        return Err(ErrorCode::REBALANCE_IN_PROGRESS);
    }
    // The commit keeps the session alive in Stable and
    // PreparingRebalance (classic groups only).
    if matches!(g.state, GroupState::Stable | GroupState::PreparingRebalance) {
        let member = req.member_id.clone();
        groups.touch_member(group, &member);
    }
    Ok(())
}

/// OffsetCommit: per partition UNKNOWN_TOPIC_OR_PARTITION for partitions
/// that do not exist (checked first, `KafkaApis`), then the group's
/// verdict for the others, OFFSET_METADATA_TOO_LARGE for metadata above
/// `offset.metadata.max.bytes`.
pub(crate) fn commit(
    broker: &Broker,
    req: &OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let request_error = crate::fault::injected_error(broker, ApiKey::OffsetCommit, None);
    let mut state = broker.shared.state();
    // v10 names topics by id.
    let names: Vec<Option<String>> = req
        .topics
        .iter()
        .map(|t| {
            if version >= 10 {
                state.topic_name(t.topic_id).map(str::to_string)
            } else {
                Some(t.name.clone())
            }
        })
        .collect();
    let any_valid = req.topics.iter().zip(&names).any(|(t, name)| {
        name.as_deref().is_some_and(|n| {
            t.partitions
                .iter()
                .any(|p| partition_exists(&state, n, p.partition_index))
        })
    });
    // The group-level verdict, for the partitions that exist.
    let group_verdict: Result<(), ErrorCode> = if let Some(code) = request_error {
        Err(code)
    } else if !any_valid {
        Ok(())
    } else {
        crate::group::check_coordinator(broker, &mut state, &req.group_id)
            .and_then(|()| validate_commit(&mut state, req, version))
    };
    let now = Instant::now();
    let mut topics = Vec::with_capacity(req.topics.len());
    for (t, name) in req.topics.iter().zip(&names) {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let code = match name.as_deref() {
                _ if request_error.is_some() => request_error.unwrap_or(ErrorCode::NONE),
                Some(n) if partition_exists(&state, n, p.partition_index) => {
                    if let Some(code) = crate::fault::injected_error(
                        broker,
                        ApiKey::OffsetCommit,
                        Some((n, p.partition_index)),
                    ) {
                        code
                    } else if let Err(code) = group_verdict {
                        code
                    } else if p
                        .committed_metadata
                        .as_ref()
                        // Java's String.length(): UTF-16 code units.
                        .is_some_and(|m| m.encode_utf16().count() > OFFSET_METADATA_MAX_SIZE)
                    {
                        ErrorCode::OFFSET_METADATA_TOO_LARGE
                    } else {
                        state.groups.offsets.put(
                            &req.group_id,
                            n,
                            p.partition_index,
                            Committed {
                                offset: p.committed_offset,
                                leader_epoch: if version >= 6 {
                                    p.committed_leader_epoch
                                } else {
                                    -1
                                },
                                metadata: p.committed_metadata.clone().unwrap_or_default(),
                                at: now,
                            },
                        );
                        ErrorCode::NONE
                    }
                }
                _ => {
                    if version >= 10 && name.is_none() {
                        ErrorCode::UNKNOWN_TOPIC_ID
                    } else {
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                    }
                }
            };
            partitions.push(OffsetCommitResponsePartition {
                partition_index: p.partition_index,
                error_code: code.code(),
            });
        }
        topics.push(OffsetCommitResponseTopic {
            name: t.name.clone(),
            topic_id: t.topic_id,
            partitions,
        });
    }
    // Timers the commit scheduled (a member's session).
    let spawns = crate::group::take_spawns(&mut state);
    drop(state);
    crate::group::spawn_timers(&broker.shared, spawns);
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}

/// One group's partitions as OffsetFetch answers them: (topic, topic id,
/// [(partition, committed, error)]).
type FetchedTopics = Vec<(String, Uuid, Vec<(i32, Option<Committed>, ErrorCode)>)>;

/// One group of an OffsetFetch: `Err` is the group-level error.
fn fetch_group(
    broker: &Broker,
    state: &mut State,
    group: &str,
    topics: Option<Vec<(String, Uuid, Vec<i32>)>>,
    request_error: Option<ErrorCode>,
) -> Result<FetchedTopics, ErrorCode> {
    if let Some(code) = request_error {
        return Err(code);
    }
    crate::group::check_coordinator(broker, state, group)?;
    // A Dead group has no offsets to show (`validateOffsetFetch`).
    let dead = state
        .groups
        .get(group)
        .is_some_and(|g| g.state == GroupState::Dead);
    let offsets = &state.groups.offsets;
    let topics = match topics {
        Some(t) => t,
        None => {
            // Every partition with a committed offset.
            if dead {
                return Ok(Vec::new());
            }
            offsets
                .by_group
                .get(group)
                .map(|topics| {
                    topics
                        .iter()
                        .map(|(name, parts)| {
                            let id = state.topics.get(name).map_or(Uuid::ZERO, |t| t.id);
                            (name.clone(), id, parts.keys().copied().collect())
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    Ok(topics
        .into_iter()
        .map(|(name, id, partitions)| {
            let parts = partitions
                .into_iter()
                .map(|p| {
                    let injected =
                        crate::fault::injected_error(broker, ApiKey::OffsetFetch, Some((&name, p)));
                    match injected {
                        Some(code) => (p, None, code),
                        None if dead => (p, None, ErrorCode::NONE),
                        None => (p, offsets.get(group, &name, p).cloned(), ErrorCode::NONE),
                    }
                })
                .collect();
            (name, id, parts)
        })
        .collect())
}

/// OffsetFetch: the committed offsets of the partitions asked (all of
/// the group's when `topics` is null), -1 for none; v8+ asks for several
/// groups at once (KIP-709).
pub(crate) fn fetch(
    broker: &Broker,
    req: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let request_error = crate::fault::injected_error(broker, ApiKey::OffsetFetch, None);
    let mut state = broker.shared.state();
    if version < 8 {
        let asked = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), Uuid::ZERO, t.partition_indexes.clone()))
                .collect::<Vec<_>>()
        });
        let result = fetch_group(broker, &mut state, &req.group_id, asked, request_error);
        let (top, topics) = match result {
            Ok(t) => (ErrorCode::NONE, t),
            // Before v2 there is no top-level error: the partitions asked
            // carry it (`OffsetFetchResponse`).
            Err(code) if version < 2 => (
                ErrorCode::NONE,
                req.topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        let parts = t
                            .partition_indexes
                            .iter()
                            .map(|p| (*p, None, code))
                            .collect();
                        (t.name.clone(), Uuid::ZERO, parts)
                    })
                    .collect(),
            ),
            Err(code) => (code, Vec::new()),
        };
        let spawns = crate::group::take_spawns(&mut state);
        drop(state);
        crate::group::spawn_timers(&broker.shared, spawns);
        return OffsetFetchResponse {
            error_code: top.code(),
            topics: topics
                .into_iter()
                .map(|(name, _, parts)| OffsetFetchResponseTopic {
                    name,
                    partitions: parts
                        .into_iter()
                        .map(|(p, c, code)| OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: c.as_ref().map_or(-1, |c| c.offset),
                            committed_leader_epoch: c.as_ref().map_or(-1, |c| c.leader_epoch),
                            metadata: Some(c.map(|c| c.metadata).unwrap_or_default()),
                            error_code: code.code(),
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        };
    }
    let groups = req
        .groups
        .iter()
        .map(|g| {
            let asked = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| {
                        // v10 names topics by id.
                        let name = if version >= 10 {
                            state.topic_name(t.topic_id).unwrap_or_default().to_string()
                        } else {
                            t.name.clone()
                        };
                        (name, t.topic_id, t.partition_indexes.clone())
                    })
                    .collect::<Vec<_>>()
            });
            // v9+: a KIP-848 member names itself and its epoch.
            let member_check = if version >= 9 {
                crate::consumer_group::validate_fetch(
                    &state,
                    &g.group_id,
                    g.member_id.as_deref(),
                    g.member_epoch,
                )
                .and_then(Result::err)
            } else {
                None
            };
            let result = match member_check {
                Some(code) => Err(code),
                None => fetch_group(broker, &mut state, &g.group_id, asked, request_error),
            };
            match result {
                Err(code) => OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: code.code(),
                    ..Default::default()
                },
                Ok(topics) => OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: 0,
                    topics: topics
                        .into_iter()
                        .map(|(name, topic_id, parts)| OffsetFetchResponseTopics {
                            name,
                            topic_id,
                            partitions: parts
                                .into_iter()
                                .map(|(p, c, code)| OffsetFetchResponsePartitions {
                                    partition_index: p,
                                    committed_offset: c.as_ref().map_or(-1, |c| c.offset),
                                    committed_leader_epoch: c
                                        .as_ref()
                                        .map_or(-1, |c| c.leader_epoch),
                                    metadata: Some(c.map(|c| c.metadata).unwrap_or_default()),
                                    error_code: code.code(),
                                })
                                .collect(),
                        })
                        .collect(),
                },
            }
        })
        .collect();
    // Timers of a group reloaded after a coordinator move.
    let spawns = crate::group::take_spawns(&mut state);
    drop(state);
    crate::group::spawn_timers(&broker.shared, spawns);
    OffsetFetchResponse {
        groups,
        ..Default::default()
    }
}

/// Request-log summaries of OffsetCommit and OffsetFetch.
pub(crate) trait Summary {
    fn summary(&self) -> String;
}

impl Summary for OffsetCommitRequest {
    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    format!("{}-{}@{}", t.name, p.partition_index, p.committed_offset)
                })
            })
            .collect();
        format!(
            "group={} member={} gen={} {}",
            self.group_id,
            self.member_id,
            self.generation_id_or_member_epoch,
            parts.join(",")
        )
    }
}

impl Summary for OffsetFetchRequest {
    fn summary(&self) -> String {
        if self.groups.is_empty() {
            let topics = match &self.topics {
                None => "all".to_string(),
                Some(t) => t
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            };
            format!("group={} topics={topics}", self.group_id)
        } else {
            let groups: Vec<&str> = self.groups.iter().map(|g| g.group_id.as_str()).collect();
            format!("groups={}", groups.join(","))
        }
    }
}

/// The request-log summary of an OffsetCommit or OffsetFetch.
pub(crate) fn summary<T: Summary>(req: &T) -> String {
    req.summary()
}
