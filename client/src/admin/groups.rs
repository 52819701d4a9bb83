//! Admin calls on consumer groups, for tooling (`skotch groups`): list the
//! groups, describe one (state, members, their assignment), read its
//! committed offsets, and compute its lag against the partitions' end
//! offsets.
//!
//! Kafka 4.x has two kinds of consumer group: classic ones (JoinGroup /
//! SyncGroup) and KIP-848 ones (`group.protocol=consumer`,
//! ConsumerGroupHeartbeat). DescribeGroups only describes classic groups:
//! for a KIP-848 group a 4.3 broker answers GROUP_ID_NOT_FOUND ("Group g is
//! not a classic group."), and ConsumerGroupDescribe (KIP-848, API key 69)
//! answers GROUP_ID_NOT_FOUND for classic groups. So, like the Java
//! AdminClient, [`Admin::describe_group`] asks with ConsumerGroupDescribe
//! when the coordinator offers it and falls back to DescribeGroups.
//! Committed offsets (OffsetFetch) and ListGroups work the same for both.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use skotch_protocol::messages::{
    consumer_group_describe_response, describe_groups_response, ApiKey,
    ConsumerGroupDescribeRequest, DescribeGroupsRequest, ListGroupsRequest, ListOffsetsRequest,
    Message, OffsetFetchRequest, Request,
};
use skotch_protocol::{DecodeError, Uuid};

use super::Admin;
use crate::client::ConnKind;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::group::consumer_protocol::{Assignment, Subscription};
use crate::group::offset_fetch::{self, TopicRef};

/// One group, as a broker's ListGroups answer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// `group.id`.
    pub group_id: String,
    /// The protocol type: `"consumer"` for consumer groups (classic and
    /// KIP-848), `"connect"` for Kafka Connect workers, empty for groups
    /// that only store offsets.
    pub protocol_type: String,
    /// The group state (`"Stable"`, `"Empty"`, `"PreparingRebalance"`,
    /// ...); `None` from brokers before ListGroups v4 (Kafka 2.6).
    pub state: Option<String>,
    /// The group type (KIP-848): `"classic"`, `"consumer"`, `"share"` or
    /// `"streams"`; `None` from brokers before ListGroups v5 (Kafka 3.8).
    pub group_type: Option<String>,
    /// Node id of the broker that listed it: its coordinator.
    pub coordinator: i32,
}

/// A group as DescribeGroups (classic) or ConsumerGroupDescribe (KIP-848)
/// describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// `group.id`.
    pub group_id: String,
    /// `"classic"` (described with DescribeGroups) or `"consumer"` (a
    /// KIP-848 group, described with ConsumerGroupDescribe).
    pub group_type: String,
    /// The group state as the broker names it: classic groups `"Empty"`,
    /// `"PreparingRebalance"`, `"CompletingRebalance"`, `"Stable"`,
    /// `"Dead"`; KIP-848 groups `"Empty"`, `"Assigning"`, `"Reconciling"`,
    /// `"Stable"`, `"Dead"`.
    pub state: String,
    /// The protocol type (`"consumer"` for consumer groups; always that for
    /// KIP-848 groups).
    pub protocol_type: String,
    /// The partition assignor: the classic group's chosen protocol (e.g.
    /// `"range"`, `"cooperative-sticky"`), or the KIP-848 group's server-side
    /// assignor (`"uniform"`, `"range"`). Empty while a classic group has
    /// no members.
    pub assignor: String,
    /// Node id of the group coordinator.
    pub coordinator: i32,
    /// The group epoch (KIP-848 groups only).
    pub group_epoch: Option<i32>,
    /// The members, sorted by member id.
    pub members: Vec<GroupMember>,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave (classic) or the member chose
    /// (KIP-848).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// `client.id` of the member's client.
    pub client_id: String,
    /// The host the member connects from, as the broker saw it (e.g.
    /// `"/127.0.0.1"`).
    pub host: String,
    /// The topics the member subscribes to (classic: decoded from its
    /// ConsumerProtocol subscription), sorted.
    pub subscribed_topics: Vec<String>,
    /// The partitions currently assigned to it, sorted. Empty while a
    /// classic group is rebalancing.
    pub assignment: Vec<TopicPartition>,
    /// The member epoch (KIP-848 groups only).
    pub member_epoch: Option<i32>,
}

/// Committed offset, end offset and lag of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// The group's committed offset (the next record it will read).
    pub committed: i64,
    /// The partition's log end offset as a `read_uncommitted` consumer sees
    /// it (the high watermark: ListOffsets with timestamp -1, what the Java
    /// `kafka-consumer-groups` tool shows as LOG-END-OFFSET); `None` when
    /// the partition no longer exists.
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed`, never negative; `None` when the end
    /// offset is unknown.
    pub lag: Option<i64>,
}

/// Decode a classic member's assignment bytes as the Java client's
/// `ConsumerProtocol` writes them: an int16 version, then a
/// ConsumerProtocolAssignment at that version (versions above 3, the
/// newest we know, are read as 3: later versions only append fields).
/// Empty bytes (a member without an assignment yet) are no partitions.
///
/// Errors: a negative version, or bytes that do not decode.
pub fn decode_consumer_assignment(
    bytes: &Bytes,
) -> std::result::Result<Vec<TopicPartition>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Assignment::decode(bytes.clone())?.partitions;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The topics of a classic member's ConsumerProtocol subscription bytes
/// (int16 version, then ConsumerProtocolSubscription), sorted. Empty bytes
/// are no topics.
pub fn decode_consumer_subscription(
    bytes: &Bytes,
) -> std::result::Result<Vec<String>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut topics = Subscription::decode(bytes.clone())?.topics;
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// The highest version to send: the negotiated one, minus a last version
/// Kafka marks unstable in our definitions (its layout may still change).
fn stable_version<R: Request>(negotiated: i16) -> i16 {
    if R::LATEST_VERSION_UNSTABLE && negotiated == R::VERSIONS.1 {
        negotiated - 1
    } else {
        negotiated
    }
}

impl Admin {
    fn request_timeout(&self) -> Duration {
        self.client.config().request_timeout
    }

    /// Every group in the cluster (all types: classic, KIP-848 consumer,
    /// share and streams groups), sorted by group id: ListGroups to every
    /// broker, since each lists only the groups it coordinates.
    ///
    /// Errors: the first broker that cannot be asked (after retries within
    /// the admin timeout) fails the call, since the list would be
    /// incomplete.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let deadline = Instant::now() + self.timeout;
        let md = self
            .client
            .retry(self.timeout, || self.client.refresh_metadata(&[]))
            .await?;
        let mut groups = BTreeMap::new();
        for &broker in md.brokers.keys() {
            let left = deadline.saturating_duration_since(Instant::now());
            let listed = self
                .client
                .retry(left, || self.list_groups_on(broker))
                .await?;
            for g in listed {
                groups.entry(g.group_id.clone()).or_insert(g);
            }
        }
        Ok(groups.into_values().collect())
    }

    async fn list_groups_on(&self, broker: i32) -> Result<Vec<GroupListing>> {
        let conn = self.client.connection(broker, ConnKind::General).await?;
        let version = conn.version::<ListGroupsRequest>()?;
        let resp = conn
            .send_version(
                &ListGroupsRequest::default(),
                version,
                self.request_timeout(),
            )
            .await?;
        Error::check(resp.error_code, None, || {
            format!("list groups on broker {broker}")
        })?;
        Ok(resp
            .groups
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: (version >= 4).then_some(g.group_state),
                group_type: (version >= 5).then_some(g.group_type),
                coordinator: broker,
            })
            .collect())
    }

    /// Describe group `group_id`: state, assignor and members with their
    /// assignment. Classic groups are described with DescribeGroups (member
    /// assignments decoded as the Java client's ConsumerProtocol), KIP-848
    /// groups with ConsumerGroupDescribe (see the module docs).
    ///
    /// Errors: GROUP_ID_NOT_FOUND ([`Error::Broker`]) when no such group
    /// exists; [`Error::Decode`] when a classic consumer group member's
    /// assignment or subscription bytes are malformed. Coordinator moves and
    /// loading are retried within the admin timeout.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        self.client
            .retry(self.timeout, || self.describe_group_once(group_id))
            .await
    }

    async fn describe_group_once(&self, group: &str) -> Result<GroupDescription> {
        let coordinator = self.client.find_coordinator(group).await?;
        let conn = self
            .client
            .connection(coordinator, ConnKind::General)
            .await?;
        if let Ok(version) = conn.version::<ConsumerGroupDescribeRequest>() {
            let req = ConsumerGroupDescribeRequest {
                group_ids: vec![group.to_string()],
                include_authorized_operations: false,
            };
            let resp = conn
                .send_version(&req, version, self.request_timeout())
                .await?;
            let g = resp
                .groups
                .into_iter()
                .find(|g| g.group_id == group)
                .ok_or_else(|| missing_group(group, "ConsumerGroupDescribe"))?;
            // GROUP_ID_NOT_FOUND: not a KIP-848 group (perhaps a classic
            // one); DescribeGroups will tell.
            if g.error_code != ErrorCode::GROUP_ID_NOT_FOUND.0 {
                Error::check(g.error_code, g.error_message.clone(), || {
                    format!("describe group {group:?}")
                })?;
                return self.consumer_group(coordinator, g).await;
            }
        }
        let version = conn.version::<DescribeGroupsRequest>()?;
        let req = DescribeGroupsRequest {
            groups: vec![group.to_string()],
            include_authorized_operations: false,
        };
        let resp = conn
            .send_version(&req, version, self.request_timeout())
            .await?;
        let g = resp
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| missing_group(group, "DescribeGroups"))?;
        Error::check(g.error_code, g.error_message.clone(), || {
            format!("describe group {group:?}")
        })?;
        // Before DescribeGroups v6 (KIP-1043) an unknown group is answered
        // as a "Dead" group without error.
        if g.group_state == "Dead" && g.members.is_empty() {
            return Err(Error::Broker {
                code: ErrorCode::GROUP_ID_NOT_FOUND,
                message: Some("the group does not exist".into()),
                context: format!("describe group {group:?}"),
            });
        }
        classic_group(coordinator, g, conn.addr())
    }

    /// A KIP-848 group from its ConsumerGroupDescribe answer; topic ids the
    /// broker did not name are looked up in the cluster metadata.
    async fn consumer_group(
        &self,
        coordinator: i32,
        g: consumer_group_describe_response::DescribedGroup,
    ) -> Result<GroupDescription> {
        let mut names: BTreeMap<Uuid, String> = BTreeMap::new();
        let unnamed: BTreeSet<Uuid> = g
            .members
            .iter()
            .flat_map(|m| m.assignment.topic_partitions.iter())
            .filter(|t| t.topic_name.is_empty())
            .map(|t| t.topic_id)
            .collect();
        if !unnamed.is_empty() {
            names = self.topic_names(&unnamed).await?;
        }
        let mut members: Vec<GroupMember> = g
            .members
            .into_iter()
            .map(|m| {
                let mut assignment: Vec<TopicPartition> = m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| {
                        let topic = if t.topic_name.is_empty() {
                            names
                                .get(&t.topic_id)
                                .cloned()
                                .unwrap_or_else(|| t.topic_id.to_string())
                        } else {
                            t.topic_name.clone()
                        };
                        t.partitions
                            .iter()
                            .map(move |&p| TopicPartition::new(topic.clone(), p))
                    })
                    .collect();
                assignment.sort();
                assignment.dedup();
                let mut subscribed_topics = m.subscribed_topic_names;
                subscribed_topics.sort();
                subscribed_topics.dedup();
                GroupMember {
                    member_id: m.member_id,
                    group_instance_id: m.instance_id,
                    client_id: m.client_id,
                    host: m.client_host,
                    subscribed_topics,
                    assignment,
                    member_epoch: Some(m.member_epoch),
                }
            })
            .collect();
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        Ok(GroupDescription {
            group_id: g.group_id,
            group_type: "consumer".into(),
            state: g.group_state,
            protocol_type: "consumer".into(),
            assignor: g.assignor_name,
            coordinator,
            group_epoch: Some(g.group_epoch),
            members,
        })
    }

    /// Names of topic ids, from the cached metadata or, when one is
    /// missing, a fresh description of every topic. Ids no topic has (a
    /// deleted topic) are left out.
    async fn topic_names(&self, ids: &BTreeSet<Uuid>) -> Result<BTreeMap<Uuid, String>> {
        let lookup = |md: &crate::metadata::ClusterMetadata| -> BTreeMap<Uuid, String> {
            ids.iter()
                .filter_map(|id| md.topic_name(id).map(|n| (*id, n.to_string())))
                .collect()
        };
        let cached = lookup(&self.client.metadata());
        if cached.len() == ids.len() {
            return Ok(cached);
        }
        let md = self
            .client
            .retry(self.timeout, || self.client.fetch_all_topics())
            .await?;
        Ok(lookup(&md))
    }

    /// The committed offsets of group `group_id`, for every partition it
    /// has one for (OffsetFetch for all topics). Works for classic and
    /// KIP-848 groups alike; a group with no commits gives an empty map,
    /// and so does a group that does not exist (OffsetFetch does not tell
    /// them apart).
    ///
    /// Handles both answer shapes: one group per request (v1-7) and the
    /// batched one (v8+, KIP-709), including v10, which names topics by id
    /// (mapped to names with the cluster metadata; ids of deleted topics
    /// are left out).
    ///
    /// Errors: a group-level or partition-level error code (after retries
    /// within the admin timeout for coordinator moves and loading).
    pub async fn list_group_offsets(
        &self,
        group_id: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.client
            .retry(self.timeout, || self.group_offsets_once(group_id, false))
            .await
    }

    /// [`Admin::list_group_offsets`] with `require_stable` set (KIP-447,
    /// Java's `ListConsumerGroupOffsetsOptions.requireStable(true)`): the
    /// coordinator answers only once every commit it has written is
    /// replicated, so the answer is what a member resuming from the
    /// group's commits would get (members always ask this way).
    ///
    /// The plain read can show a committed offset *older* than one shown
    /// before: right after a coordinator move, the new leader of the
    /// `__consumer_offsets` partition serves reads at its high watermark,
    /// which can lag the old leader's (and, with KIP-966, cannot advance
    /// while the ISR is below `min.insync.replicas`). Needs OffsetFetch v7+
    /// (Kafka 2.5); older brokers get the plain read.
    pub async fn list_group_offsets_stable(
        &self,
        group_id: &str,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.client
            .retry(self.timeout, || self.group_offsets_once(group_id, true))
            .await
    }

    async fn group_offsets_once(
        &self,
        group: &str,
        require_stable: bool,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let coordinator = self.client.find_coordinator(group).await?;
        let conn = self
            .client
            .connection(coordinator, ConnKind::General)
            .await?;
        let version = stable_version::<OffsetFetchRequest>(conn.version::<OffsetFetchRequest>()?);
        if version < 2 {
            // v1 cannot ask for "all topics" (null).
            return Err(Error::UnsupportedVersion {
                addr: conn.addr().to_string(),
                api: ApiKey::OffsetFetch,
                broker_min: version,
                broker_max: version,
                ours_min: 2,
                ours_max: OffsetFetchRequest::VERSIONS.1,
            });
        }
        let req = offset_fetch::request(group, version, None, require_stable);
        let resp = conn
            .send_version(&req, version, self.request_timeout())
            .await?;
        let context = || format!("fetch the committed offsets of group {group:?}");
        let entries = offset_fetch::entries(resp, version, group)?;
        tracing::debug!(group, coordinator, "fetched the group's committed offsets");
        let ids: BTreeSet<Uuid> = entries
            .iter()
            .filter_map(|e| match &e.topic {
                TopicRef::Id(id) => Some(*id),
                TopicRef::Name(_) => None,
            })
            .collect();
        let names = if ids.is_empty() {
            BTreeMap::new()
        } else {
            self.topic_names(&ids).await?
        };
        let mut out = BTreeMap::new();
        for e in entries {
            let topic = match e.topic {
                TopicRef::Name(n) => n,
                TopicRef::Id(id) => match names.get(&id) {
                    Some(n) => n.clone(),
                    None => {
                        tracing::debug!(%id, group, "committed offset for an unknown topic id");
                        continue;
                    }
                },
            };
            let code = ErrorCode(e.error_code);
            if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION || code == ErrorCode::UNKNOWN_TOPIC_ID
            {
                continue;
            }
            Error::check(e.error_code, None, || {
                format!("{} ({topic}-{})", context(), e.partition)
            })?;
            if e.offset >= 0 {
                out.insert(TopicPartition::new(topic, e.partition), e.offset);
            }
        }
        Ok(out)
    }

    /// The log end offsets (high watermarks: ListOffsets with timestamp -1,
    /// `read_uncommitted`) of `partitions`, one request per partition
    /// leader. Partitions of topics that no longer exist, or indexes a topic
    /// does not have, are left out.
    ///
    /// Errors: other partition errors, after retries within the admin
    /// timeout (leader moves refresh the metadata first).
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.client
            .retry(self.timeout, || self.end_offsets_once(partitions))
            .await
    }

    async fn end_offsets_once(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for tp in partitions {
            match self.client.leader(&tp.topic, tp.partition).await {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(tp.topic.clone())
                    .or_default()
                    .push(tp.partition),
                Err(Error::UnknownTopic(_) | Error::UnknownPartition { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        let timeout_ms = i32::try_from(self.request_timeout().as_millis()).unwrap_or(i32::MAX);
        let mut out = BTreeMap::new();
        for (leader, topics) in by_leader {
            let req = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: 0,
                topics: topics
                    .into_iter()
                    .map(|(name, parts)| ListOffsetsTopic {
                        name,
                        partitions: parts
                            .into_iter()
                            .map(|p| ListOffsetsPartition {
                                partition_index: p,
                                timestamp: -1,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                timeout_ms,
            };
            let resp = self.client.send(leader, ConnKind::General, &req).await?;
            for t in resp.topics {
                for p in t.partitions {
                    let code = ErrorCode(p.error_code);
                    if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
                        // Deleted since the metadata was read: retry once
                        // the metadata says so, then it is left out.
                        self.client.invalidate_metadata();
                    }
                    Error::check(p.error_code, None, || {
                        format!("list the end offset of {}-{}", t.name, p.partition_index)
                    })?;
                    out.insert(
                        TopicPartition::new(t.name.clone(), p.partition_index),
                        p.offset,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Committed offset, log end offset and lag of each partition in
    /// `committed` (from [`list_group_offsets`](Self::list_group_offsets)).
    ///
    /// Errors: as [`end_offsets`](Self::end_offsets).
    pub async fn group_lag(
        &self,
        committed: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, PartitionLag>> {
        let tps: Vec<TopicPartition> = committed.keys().cloned().collect();
        let ends = self.end_offsets(&tps).await?;
        Ok(committed
            .iter()
            .map(|(tp, &c)| {
                let end = ends.get(tp).copied();
                (
                    tp.clone(),
                    PartitionLag {
                        committed: c,
                        log_end_offset: end,
                        lag: end.map(|e| e.saturating_sub(c).max(0)),
                    },
                )
            })
            .collect())
    }
}

fn missing_group(group: &str, api: &str) -> Error {
    Error::Broker {
        code: ErrorCode::GROUP_ID_NOT_FOUND,
        message: Some(format!("the {api} answer does not mention the group")),
        context: format!("describe group {group:?}"),
    }
}

/// A classic group from its DescribeGroups answer. Member bytes are
/// decoded only for consumer groups; other protocol types (Connect, ...)
/// have their own formats.
fn classic_group(
    coordinator: i32,
    g: describe_groups_response::DescribedGroup,
    addr: &str,
) -> Result<GroupDescription> {
    let is_consumer = g.protocol_type == "consumer";
    let decode_err = |source: DecodeError| Error::Decode {
        addr: addr.to_string(),
        source,
    };
    let mut members = Vec::with_capacity(g.members.len());
    for m in g.members {
        let (subscribed_topics, assignment) = if is_consumer {
            (
                decode_consumer_subscription(&m.member_metadata).map_err(decode_err)?,
                decode_consumer_assignment(&m.member_assignment).map_err(decode_err)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        members.push(GroupMember {
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            host: m.client_host,
            subscribed_topics,
            assignment,
            member_epoch: None,
        });
    }
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupDescription {
        group_id: g.group_id,
        group_type: "classic".into(),
        state: g.group_state,
        protocol_type: g.protocol_type,
        assignor: g.protocol_data,
        coordinator,
        group_epoch: None,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use skotch_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };

    /// What a Java 4.3 consumer (range assignor) sent for one member
    /// subscribed to topic "explore-a7e8…", captured from a real group's
    /// DescribeGroups answer: ConsumerProtocol v3.
    const JAVA_SUBSCRIPTION: &[u8] = b"\0\x03\0\0\0\x01\0(explore-a7e8a072a1584fe981b0bbf6f7384523\xff\xff\xff\xff\0\0\0\0\xff\xff\xff\xff\xff\xff";
    const JAVA_ASSIGNMENT: &[u8] = b"\0\x03\0\0\0\x01\0(explore-a7e8a072a1584fe981b0bbf6f7384523\0\0\0\x03\0\0\0\0\0\0\0\x01\0\0\0\x02\xff\xff\xff\xff";
    const TOPIC: &str = "explore-a7e8a072a1584fe981b0bbf6f7384523";

    #[test]
    fn decodes_java_consumer_protocol_bytes() {
        let a = decode_consumer_assignment(&Bytes::from_static(JAVA_ASSIGNMENT)).unwrap();
        assert_eq!(
            a,
            (0..3)
                .map(|p| TopicPartition::new(TOPIC, p))
                .collect::<Vec<_>>()
        );
        let s = decode_consumer_subscription(&Bytes::from_static(JAVA_SUBSCRIPTION)).unwrap();
        assert_eq!(s, vec![TOPIC.to_string()]);
        assert!(decode_consumer_assignment(&Bytes::new())
            .unwrap()
            .is_empty());
        assert!(decode_consumer_subscription(&Bytes::new())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn newer_versions_read_as_the_newest_known() {
        let mut b = JAVA_ASSIGNMENT.to_vec();
        b[1] = 9;
        let a = decode_consumer_assignment(&Bytes::from(b)).unwrap();
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn bad_consumer_protocol_bytes_are_errors() {
        let mut b = JAVA_ASSIGNMENT.to_vec();
        b[0] = 0xff; // version -253
        assert!(decode_consumer_assignment(&Bytes::from(b)).is_err());
        for cut in 1..JAVA_ASSIGNMENT.len() {
            let b = Bytes::copy_from_slice(&JAVA_ASSIGNMENT[..cut]);
            assert!(decode_consumer_assignment(&b).is_err(), "cut at {cut}");
        }
        // A hostile partition count (after version 2 bytes, topic count 4,
        // topic name 2 + 40) fails before allocating.
        let mut b = JAVA_ASSIGNMENT[..48].to_vec();
        b.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(decode_consumer_assignment(&Bytes::from(b)).is_err());
    }

    fn member(
        id: &str,
        metadata: &'static [u8],
        assignment: &'static [u8],
    ) -> DescribedGroupMember {
        DescribedGroupMember {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            member_metadata: Bytes::from_static(metadata),
            member_assignment: Bytes::from_static(assignment),
        }
    }

    #[test]
    fn classic_groups_decode_only_consumer_members() {
        let g = DescribedGroup {
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_data: "range".into(),
            members: vec![
                member("b", JAVA_SUBSCRIPTION, JAVA_ASSIGNMENT),
                member("a", b"", b""),
            ],
            ..Default::default()
        };
        let d = classic_group(1, g.clone(), "broker").unwrap();
        assert_eq!(d.group_type, "classic");
        assert_eq!(d.assignor, "range");
        assert_eq!(d.members[0].member_id, "a");
        assert!(d.members[0].assignment.is_empty());
        assert_eq!(d.members[1].assignment.len(), 3);
        assert_eq!(d.members[1].subscribed_topics, vec![TOPIC.to_string()]);

        let connect = DescribedGroup {
            protocol_type: "connect".into(),
            members: vec![member("w", b"\x01\x02", b"\x03")],
            ..g.clone()
        };
        let d = classic_group(1, connect, "broker").unwrap();
        assert!(d.members[0].assignment.is_empty());

        let broken = DescribedGroup {
            members: vec![member("x", b"", b"\0\x03\0\0")],
            ..g
        };
        let e = classic_group(1, broken, "broker").unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
    }

    #[test]
    fn unstable_last_versions_are_not_used() {
        // OffsetFetch v10 is unstable in the 4.1 definitions.
        let (_, hi) = OffsetFetchRequest::VERSIONS;
        let unstable = i16::from(OffsetFetchRequest::LATEST_VERSION_UNSTABLE);
        assert_eq!(stable_version::<OffsetFetchRequest>(hi), hi - unstable);
        assert_eq!(stable_version::<OffsetFetchRequest>(hi - 2), hi - 2);
        let (_, hi) = ListGroupsRequest::VERSIONS;
        assert_eq!(stable_version::<ListGroupsRequest>(hi), hi);
    }
}
