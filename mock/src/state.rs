//! The cluster's in-memory state, shared by every broker: topics,
//! partitions (leader, replicas, ISR, leader epoch, log, producer states)
//! and the producer ids handed out.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use skotch_protocol::error::ErrorCode;
use skotch_protocol::Uuid;

use crate::consumer_group::ConsumerGroups;
use crate::group::Groups;
use crate::idempotence::ProducerStates;
use crate::partition_log::PartitionLog;

/// The most partitions a topic may have in the mock, so that a request
/// cannot make it allocate without bound (a broker has no such limit, but
/// its controller would struggle long before).
pub(crate) const MAX_PARTITIONS: i32 = 100_000;

/// One partition.
#[derive(Debug)]
pub(crate) struct Partition {
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    /// Taken offline by a test: no leader until one is named.
    pub offline: bool,
    pub log: PartitionLog,
    pub producers: ProducerStates,
}

/// One topic.
#[derive(Debug)]
pub(crate) struct Topic {
    pub id: Uuid,
    pub partitions: Vec<Partition>,
    /// `min.insync.replicas` (broker default 1): acks=all produce needs
    /// this many replicas in the ISR (NOT_ENOUGH_REPLICAS otherwise).
    pub min_insync_replicas: usize,
}

/// Everything the brokers share.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub topics: BTreeMap<String, Topic>,
    /// Producer ids handed out by InitProducerId.
    pub producer_ids: HashSet<i64>,
    pub next_producer_id: i64,
    /// Where the next topic's first leader goes (leaders are spread).
    next_leader: usize,
    /// Topics created so far (feeds the topic ids).
    topics_created: u64,
    /// Brokers taken down by [`MockCluster::broker_down`](crate::MockCluster::broker_down).
    pub down: BTreeSet<i32>,
    /// Group coordinators moved by a test, by group id.
    pub coordinator_overrides: BTreeMap<String, i32>,
    /// Classic groups and their committed offsets.
    pub groups: Groups,
    /// KIP-848 consumer groups.
    pub consumer_groups: ConsumerGroups,
}

/// FNV-1a of `bytes` from `seed`.
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A v4-shaped topic id, never the zero UUID. Made from the topic's name
/// and creation serial rather than randomness, so that a test run twice
/// sees the same ids (and the same request log); a recreated topic gets a
/// new id, as on a broker.
fn topic_uuid(name: &str, serial: u64) -> Uuid {
    let a = fnv(0xcbf2_9ce4_8422_2325 ^ serial, name.as_bytes());
    let b = fnv(a ^ 0x9e37_79b9_7f4a_7c15, &serial.to_be_bytes());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid(bytes)
}

/// A legal topic name: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.`
/// or `..` (Kafka's `Topic.validate`).
pub(crate) fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl State {
    /// Create a topic. Leaders go round-robin over `brokers`, each
    /// partition's replicas being the leader and the brokers after it
    /// (a simplified version of the broker's rack-unaware assignment).
    /// `assignments`, when given, are the replicas per partition, leader
    /// first.
    pub fn create_topic(
        &mut self,
        brokers: &[i32],
        name: &str,
        partitions: i32,
        replication: i16,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Uuid, (ErrorCode, String)> {
        if !valid_topic_name(name) {
            return Err((
                ErrorCode::INVALID_TOPIC_EXCEPTION,
                format!("{name:?} is not a valid topic name"),
            ));
        }
        if self.topics.contains_key(name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS,
                format!("Topic '{name}' already exists."),
            ));
        }
        let replicas: Vec<Vec<i32>> = match assignments {
            Some(a) => {
                if a.iter().any(|r| {
                    r.is_empty()
                        || r.iter().any(|b| !brokers.contains(b))
                        || r.iter().collect::<HashSet<_>>().len() != r.len()
                }) {
                    return Err((
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        "replica assignment names unknown or repeated brokers".into(),
                    ));
                }
                a
            }
            None => {
                if partitions <= 0 {
                    return Err((
                        ErrorCode::INVALID_PARTITIONS,
                        "Number of partitions must be larger than 0.".into(),
                    ));
                }
                if partitions > MAX_PARTITIONS {
                    return Err((
                        ErrorCode::INVALID_PARTITIONS,
                        format!("the mock allows at most {MAX_PARTITIONS} partitions per topic"),
                    ));
                }
                if replication <= 0 {
                    return Err((
                        ErrorCode::INVALID_REPLICATION_FACTOR,
                        "Replication factor must be larger than 0.".into(),
                    ));
                }
                let rf = replication as usize;
                if rf > brokers.len() {
                    return Err((
                        ErrorCode::INVALID_REPLICATION_FACTOR,
                        format!(
                            "Unable to replicate the partition {rf} time(s): The target \
                             replication factor of {rf} cannot be reached because only {} \
                             broker(s) are registered.",
                            brokers.len()
                        ),
                    ));
                }
                (0..partitions as usize)
                    .map(|p| {
                        (0..rf)
                            .map(|r| brokers[(self.next_leader + p + r) % brokers.len()])
                            .collect()
                    })
                    .collect()
            }
        };
        if validate_only {
            return Ok(Uuid::ZERO);
        }
        self.next_leader = self.next_leader.wrapping_add(1);
        self.topics_created += 1;
        let id = topic_uuid(name, self.topics_created);
        let partitions = replicas
            .into_iter()
            .map(|replicas| Partition {
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                offline: false,
                log: PartitionLog::default(),
                producers: ProducerStates::default(),
            })
            .collect();
        self.topics.insert(
            name.to_string(),
            Topic {
                id,
                partitions,
                min_insync_replicas: 1,
            },
        );
        Ok(id)
    }

    /// The broker coordinating `group`: the one a test moved it to, else
    /// a stable hash of the group id over the brokers that are up (the
    /// broker hashes the group id onto a `__consumer_offsets` partition
    /// and its leader coordinates; `GroupCoordinator.partitionFor`).
    /// `None` when every broker is down.
    pub fn coordinator(&self, brokers: &[i32], group: &str) -> Option<i32> {
        let up: Vec<i32> = brokers
            .iter()
            .copied()
            .filter(|b| !self.down.contains(b))
            .collect();
        if let Some(b) = self.coordinator_overrides.get(group) {
            if up.contains(b) {
                return Some(*b);
            }
        }
        if up.is_empty() {
            return None;
        }
        // The same broker in every run (determinism).
        let h = fnv(0xcbf2_9ce4_8422_2325, group.as_bytes());
        Some(up[(h % up.len() as u64) as usize])
    }

    /// The name of the topic with this id.
    pub fn topic_name(&self, id: Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.as_str())
    }
}
