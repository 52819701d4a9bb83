//! The client's view of the cluster: brokers, topics, partitions and their
//! leaders, built from Metadata responses. Pure: applying a response is a
//! function of the old view and the response, tested without a broker.

use std::collections::BTreeMap;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::MetadataResponse;
use skotch_protocol::Uuid;

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `node.id` of the broker.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Broker id of the leader, or -1 when there is none.
    pub leader: i32,
    /// Leader epoch (-1 when the broker does not send it).
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Partition-level error (e.g. LEADER_NOT_AVAILABLE), usually NONE.
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516); zero when the broker does not send it.
    pub id: Uuid,
    /// True for internal topics such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The partition with index `p`.
    pub fn partition(&self, p: i32) -> Option<&PartitionInfo> {
        self.partitions
            .binary_search_by_key(&p, |x| x.partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// A snapshot of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Cluster id, when the broker sends it.
    pub cluster_id: Option<String>,
    /// Broker id of the controller (-1 if unknown).
    pub controller_id: i32,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name that the broker described without a topic-level error.
    pub topics: BTreeMap<String, TopicInfo>,
    /// Topics the broker said do not exist (UNKNOWN_TOPIC_OR_PARTITION) or
    /// described with another topic-level error, with that error.
    pub topic_errors: BTreeMap<String, ErrorCode>,
}

impl ClusterMetadata {
    /// The view after `resp`. When `all_topics` is true the response
    /// describes every topic and replaces the topic list; otherwise it
    /// updates just the topics it names.
    pub fn apply(&self, resp: &MetadataResponse, all_topics: bool) -> ClusterMetadata {
        let mut next = ClusterMetadata {
            cluster_id: resp.cluster_id.clone(),
            controller_id: resp.controller_id,
            brokers: BTreeMap::new(),
            topics: if all_topics {
                BTreeMap::new()
            } else {
                self.topics.clone()
            },
            topic_errors: if all_topics {
                BTreeMap::new()
            } else {
                self.topic_errors.clone()
            },
        };
        for b in &resp.brokers {
            // A port outside u16 can only come from a broken broker; skip it
            // rather than connect somewhere random.
            let Ok(port) = u16::try_from(b.port) else {
                continue;
            };
            next.brokers.insert(
                b.node_id,
                BrokerInfo {
                    node_id: b.node_id,
                    host: b.host.clone(),
                    port,
                    rack: b.rack.clone(),
                },
            );
        }
        for t in &resp.topics {
            // Names are null only in v12+ answers to by-id lookups, which we
            // do not make.
            let Some(name) = t.name.clone() else {
                continue;
            };
            let err = ErrorCode(t.error_code);
            if !err.is_ok() {
                next.topics.remove(&name);
                next.topic_errors.insert(name, err);
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    error: ErrorCode(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            partitions.dedup_by_key(|p| p.partition);
            // KIP-320: an answer from a broker that has not caught up may
            // describe a partition with an older leader epoch than we
            // already know; keep what we know (Java's
            // `Metadata.updateLatestMetadata`). A recreated topic (new id)
            // starts over.
            if let Some(old) = self.topics.get(&name).filter(|o| o.id == t.topic_id) {
                for p in &mut partitions {
                    if let Some(known) = old.partition(p.partition) {
                        if p.leader_epoch >= 0 && known.leader_epoch > p.leader_epoch {
                            *p = known.clone();
                        }
                    }
                }
            }
            next.topic_errors.remove(&name);
            next.topics.insert(
                name.clone(),
                TopicInfo {
                    name,
                    id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                },
            );
        }
        next
    }

    /// The leader's broker id for a partition, if it has a live leader
    /// that we know the address of.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let p = self.topics.get(topic)?.partition(partition)?;
        (p.leader >= 0 && self.brokers.contains_key(&p.leader)).then_some(p.leader)
    }

    /// The name of the topic with id `id`.
    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topics
            .values()
            .find(|t| &t.id == id)
            .map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn resp(topics: Vec<MetadataResponseTopic>) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                ..Default::default()
            }],
            topics,
            ..Default::default()
        }
    }

    fn topic(name: &str, err: i16, parts: &[(i32, i32)]) -> MetadataResponseTopic {
        MetadataResponseTopic {
            name: Some(name.into()),
            error_code: err,
            partitions: parts
                .iter()
                .map(|&(p, l)| MetadataResponsePartition {
                    partition_index: p,
                    leader_id: l,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn older_leader_epochs_are_ignored() {
        let with_epoch = |leader: i32, epoch: i32| {
            let mut t = topic("a", 0, &[(0, leader), (1, leader)]);
            for p in &mut t.partitions {
                p.leader_epoch = epoch;
            }
            t.partitions[1].leader_epoch = 1;
            t
        };
        let mut r = resp(vec![with_epoch(1, 7)]);
        r.brokers.push(MetadataResponseBroker {
            node_id: 2,
            host: "127.0.0.1".into(),
            port: 9093,
            ..Default::default()
        });
        let m = ClusterMetadata::default().apply(&r, false);
        assert_eq!(m.leader("a", 0), Some(1));
        // A lagging broker says broker 2 leads at epoch 5: stale, ignored;
        // partition 1's epoch 1 is not older, so it is applied.
        let mut stale = r.clone();
        stale.topics = vec![with_epoch(2, 5)];
        let m2 = m.apply(&stale, false);
        assert_eq!(m2.topics["a"].partitions[0].leader, 1);
        assert_eq!(m2.topics["a"].partitions[0].leader_epoch, 7);
        assert_eq!(m2.topics["a"].partitions[1].leader, 2);
        // A newer epoch wins.
        let mut newer = r;
        newer.topics = vec![with_epoch(2, 8)];
        assert_eq!(m2.apply(&newer, false).leader("a", 0), Some(2));
    }

    #[test]
    fn apply_merges_and_records_errors() {
        let m = ClusterMetadata::default().apply(
            &resp(vec![
                topic("a", 0, &[(1, 1), (0, 1)]),
                topic("b", 0, &[(0, 2)]),
            ]),
            false,
        );
        assert_eq!(m.leader("a", 0), Some(1));
        assert_eq!(m.topics["a"].partitions[0].partition, 0);
        // broker 2 unknown: no usable leader
        assert_eq!(m.leader("b", 0), None);
        let m2 = m.apply(&resp(vec![topic("b", 3, &[])]), false);
        assert!(m2.topics.contains_key("a"));
        assert!(!m2.topics.contains_key("b"));
        assert_eq!(m2.topic_errors["b"], ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        let m3 = m2.apply(&resp(vec![topic("c", 0, &[(0, 1)])]), true);
        assert_eq!(m3.topics.keys().collect::<Vec<_>>(), vec!["c"]);
        assert!(m3.topic_errors.is_empty());
    }
}
