//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup) as a sans-IO member state machine: it builds requests and
//! digests responses; the driver in `consumer/group.rs` sends them and runs
//! the rebalance callbacks it asks for. No clocks, no sockets: the tests
//! below step it through joining, syncing, stable, revoking and lost.
//!
//! Error handling follows the Java client's `AbstractCoordinator` /
//! `ConsumerCoordinator`:
//! - MEMBER_ID_REQUIRED (KIP-394): take the member id from the response and
//!   join again at once;
//! - UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID on a
//!   heartbeat or sync: the generation is gone, so the partitions are lost
//!   (not revoked: another member may already own them) and the member
//!   rejoins (FENCED_INSTANCE_ID is fatal: another process took our
//!   `group.instance.id`);
//! - REBALANCE_IN_PROGRESS: rejoin, keeping the partitions until the
//!   protocol says otherwise;
//! - NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE: find the coordinator again.
//!
//! Eager assignors (range, roundrobin) revoke every partition before
//! joining; cooperative ones (KIP-429) keep them, report them as owned in the
//! subscription, and revoke only what the new assignment takes away, then
//! join once more so those partitions can move.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use skotch_protocol::messages::leave_group_request::MemberIdentity;
use skotch_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use skotch_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest,
    SyncGroupResponse,
};

use super::assignor::{Assignor, MemberSubscription, PartitionRacks, RebalanceProtocol};
use super::consumer_protocol::{Assignment, Subscription};
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// `protocol_type` of consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";
/// The generation of a member that has none.
pub const NO_GENERATION: i32 = -1;

/// Where the member stands (Java's `MemberState` plus the rejoin flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    /// Not in the group: JoinGroup comes next.
    Unjoined,
    /// JoinGroup sent, waiting for every member to join.
    Joining,
    /// Joined; SyncGroup sent, waiting for the leader's assignment.
    Syncing,
    /// Assignment received; heartbeats keep the membership alive.
    Stable,
}

/// What the driver must do before sending JoinGroup.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PrepareJoin {
    /// Partitions to revoke (callbacks, commit first): all owned ones for an
    /// eager assignor, none for a cooperative one.
    pub revoke: Vec<TopicPartition>,
    /// Partitions lost with the generation (callbacks, no commit).
    pub lost: Vec<TopicPartition>,
}

/// What a JoinGroup response means.
#[derive(Debug)]
pub enum JoinOutcome {
    /// Joined as a follower: send this SyncGroup.
    Follower(SyncGroupRequest),
    /// Joined as the leader: compute the assignment for these members
    /// (metadata for every topic they subscribe to is needed), then call
    /// [`ClassicMember::leader_sync`].
    Leader {
        /// The members and what they subscribe to.
        members: BTreeMap<String, MemberSubscription>,
        /// The union of their topics.
        topics: BTreeSet<String>,
    },
    /// Send JoinGroup again now (MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS,
    /// UNKNOWN_MEMBER_ID).
    Rejoin,
    /// The coordinator moved or is unavailable: look it up again, then join.
    FindCoordinator,
    /// Retriable (COORDINATOR_LOAD_IN_PROGRESS, ...): back off and join again.
    Backoff(Error),
}

/// What a SyncGroup response means.
#[derive(Debug)]
pub enum SyncOutcome {
    /// The member is stable with this change of assignment.
    Assigned {
        /// Newly assigned partitions (fetch their committed offsets, then
        /// call on-assigned).
        added: Vec<TopicPartition>,
        /// Partitions the new assignment takes away (cooperative only):
        /// commit, call on-revoked; a rejoin follows.
        revoked: Vec<TopicPartition>,
    },
    /// Join again now.
    Rejoin,
    /// The coordinator moved: look it up again, then join.
    FindCoordinator,
    /// Back off, then join again.
    Backoff(Error),
}

/// What a heartbeat response means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// All well (or a stale answer, ignored).
    Ok,
    /// A rebalance started: the next poll rejoins.
    Rejoin,
    /// The generation is gone: the next poll reports the partitions lost and
    /// rejoins.
    Lost,
    /// Look the coordinator up again.
    FindCoordinator,
}

/// Settings the classic protocol needs.
#[derive(Debug, Clone)]
pub struct ClassicSettings {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id` (KIP-345 static membership).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms`, sent as the rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// `client.rack`, carried in the subscription (v3).
    pub rack_id: Option<String>,
}

/// One member of a classic consumer group.
#[derive(Debug)]
pub struct ClassicMember {
    settings: ClassicSettings,
    assignors: Vec<Arc<dyn Assignor>>,
    topics: BTreeSet<String>,
    member_id: String,
    generation: i32,
    /// The assignor the group chose at the last join.
    protocol_name: Option<String>,
    state: ClassicState,
    /// Partitions currently owned (after callbacks ran).
    owned: BTreeSet<TopicPartition>,
    /// The owned partitions no longer belong to us (generation reset);
    /// reported as lost at the next join.
    owned_lost: bool,
    rejoin_needed: bool,
}

impl ClassicMember {
    /// A member that has not joined yet. `assignors` must not be empty;
    /// their order is the preference sent in JoinGroup.
    pub fn new(
        settings: ClassicSettings,
        assignors: Vec<Arc<dyn Assignor>>,
        topics: BTreeSet<String>,
    ) -> Result<Self> {
        if assignors.is_empty() {
            return Err(Error::Config(
                "partition.assignment.strategy: at least one assignor is needed".into(),
            ));
        }
        Ok(Self {
            settings,
            assignors,
            topics,
            member_id: String::new(),
            generation: NO_GENERATION,
            protocol_name: None,
            state: ClassicState::Unjoined,
            owned: BTreeSet::new(),
            owned_lost: false,
            rejoin_needed: true,
        })
    }

    /// The state.
    pub fn state(&self) -> ClassicState {
        self.state
    }

    /// The member id the coordinator gave us ("" before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation, or [`NO_GENERATION`].
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// `group.instance.id`.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.settings.group_instance_id.as_deref()
    }

    /// The partitions owned now.
    pub fn owned(&self) -> &BTreeSet<TopicPartition> {
        &self.owned
    }

    /// The assignor chosen at the last join.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// True when the next poll must (re)join the group.
    pub fn needs_join(&self) -> bool {
        self.rejoin_needed || self.state != ClassicState::Stable
    }

    /// Rejoin at the next poll (the leader saw new partitions).
    pub fn request_rejoin(&mut self) {
        self.rejoin_needed = true;
    }

    /// Change the subscribed topics; a rejoin follows.
    pub fn subscribe(&mut self, topics: BTreeSet<String>) {
        if topics != self.topics {
            self.topics = topics;
            self.rejoin_needed = true;
        }
    }

    /// The subscribed topics.
    pub fn topics(&self) -> &BTreeSet<String> {
        &self.topics
    }

    /// The rebalance protocol: cooperative only when every configured
    /// assignor supports it (Java's `ConsumerCoordinator` rule), so the
    /// default list (range, cooperative-sticky) rebalances eagerly.
    fn protocol(&self) -> RebalanceProtocol {
        let all_cooperative = self.assignors.iter().all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        });
        if all_cooperative {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }

    /// Before JoinGroup: what to revoke or report lost. The driver runs the
    /// callbacks, then calls [`ClassicMember::join_request`].
    pub fn prepare_join(&mut self) -> PrepareJoin {
        let mut out = PrepareJoin::default();
        if self.owned_lost || self.generation == NO_GENERATION {
            out.lost = std::mem::take(&mut self.owned).into_iter().collect();
            self.owned_lost = false;
        } else if self.protocol() == RebalanceProtocol::Eager {
            out.revoke = std::mem::take(&mut self.owned).into_iter().collect();
        }
        out
    }

    /// The JoinGroup request; the state becomes [`ClassicState::Joining`].
    pub fn join_request(&mut self) -> Result<JoinGroupRequest> {
        let owned: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        let topics: Vec<String> = self.topics.iter().cloned().collect();
        let mut protocols = Vec::with_capacity(self.assignors.len());
        for a in &self.assignors {
            let sub = Subscription {
                topics: topics.clone(),
                user_data: a.subscription_user_data(&topics, &owned, self.generation),
                owned_partitions: owned.clone(),
                generation_id: self.generation,
                rack_id: self.settings.rack_id.clone(),
            };
            protocols.push(JoinGroupRequestProtocol {
                name: a.name().to_string(),
                metadata: sub.encode()?,
            });
        }
        self.state = ClassicState::Joining;
        self.rejoin_needed = false;
        Ok(JoinGroupRequest {
            group_id: self.settings.group_id.clone(),
            session_timeout_ms: self.settings.session_timeout_ms,
            rebalance_timeout_ms: self.settings.rebalance_timeout_ms,
            member_id: self.member_id.clone(),
            group_instance_id: self.settings.group_instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.to_string(),
            protocols,
            reason: None,
        })
    }

    /// Forget the generation (and, when `member_too`, the member id): the
    /// owned partitions are lost.
    fn reset(&mut self, member_too: bool) {
        self.generation = NO_GENERATION;
        if member_too {
            self.member_id.clear();
        }
        if !self.owned.is_empty() {
            self.owned_lost = true;
        }
        self.state = ClassicState::Unjoined;
        self.rejoin_needed = true;
    }

    /// The JoinGroup or SyncGroup request failed (connection lost,
    /// timeout): join again.
    pub fn join_failed(&mut self) {
        if matches!(self.state, ClassicState::Joining | ClassicState::Syncing) {
            self.state = ClassicState::Unjoined;
        }
        self.rejoin_needed = true;
    }

    /// Digest a JoinGroup response.
    pub fn on_join_response(&mut self, resp: JoinGroupResponse) -> Result<JoinOutcome> {
        let code = ErrorCode(resp.error_code);
        if self.state != ClassicState::Joining {
            return Ok(JoinOutcome::Rejoin);
        }
        self.state = ClassicState::Unjoined;
        self.rejoin_needed = true;
        match code {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: the coordinator names us; join again with it.
                self.member_id = resp.member_id;
                return Ok(JoinOutcome::Rejoin);
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.reset(true);
                return Ok(JoinOutcome::Rejoin);
            }
            ErrorCode::ILLEGAL_GENERATION => {
                self.reset(false);
                return Ok(JoinOutcome::Rejoin);
            }
            ErrorCode::REBALANCE_IN_PROGRESS => return Ok(JoinOutcome::Rejoin),
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                return Ok(JoinOutcome::FindCoordinator)
            }
            c => {
                let e = Error::Broker {
                    code: c,
                    message: None,
                    context: format!("join group {:?}", self.settings.group_id),
                };
                return if c.is_retriable() {
                    Ok(JoinOutcome::Backoff(e))
                } else {
                    Err(e)
                };
            }
        }
        self.member_id = resp.member_id;
        self.generation = resp.generation_id;
        self.protocol_name = resp.protocol_name;
        self.state = ClassicState::Syncing;
        self.rejoin_needed = false;
        if resp.leader == self.member_id && !resp.skip_assignment {
            let mut members = BTreeMap::new();
            let mut topics = BTreeSet::new();
            for m in resp.members {
                let sub = Subscription::decode(m.metadata.clone()).map_err(|e| Error::Broker {
                    code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                    message: Some(format!("member {}: bad subscription: {e}", m.member_id)),
                    context: format!("join group {:?}", self.settings.group_id),
                })?;
                topics.extend(sub.topics.iter().cloned());
                members.insert(
                    m.member_id.clone(),
                    MemberSubscription {
                        group_instance_id: m.group_instance_id,
                        subscription: sub,
                    },
                );
            }
            Ok(JoinOutcome::Leader { members, topics })
        } else {
            Ok(JoinOutcome::Follower(self.sync_request(Vec::new())))
        }
    }

    fn sync_request(&self, assignments: Vec<SyncGroupRequestAssignment>) -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: self.settings.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.settings.group_instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.to_string()),
            protocol_name: self.protocol_name.clone(),
            assignments,
        }
    }

    /// As the leader: run the chosen assignor over `members` with
    /// `partitions_per_topic` (topic → partition count; topics missing from
    /// metadata left out) and `partition_racks` (KIP-881; may be empty),
    /// and build the SyncGroup request.
    pub fn leader_sync(
        &self,
        members: &BTreeMap<String, MemberSubscription>,
        partitions_per_topic: &BTreeMap<String, i32>,
        partition_racks: &PartitionRacks,
    ) -> Result<SyncGroupRequest> {
        let name = self.protocol_name.as_deref().unwrap_or_default();
        let assignor = self
            .assignors
            .iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| Error::Broker {
                code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                message: Some(format!("the group chose assignor {name:?}, which we lack")),
                context: format!("join group {:?}", self.settings.group_id),
            })?;
        let result = assignor.assign_with_racks(partitions_per_topic, partition_racks, members);
        let mut assignments = Vec::with_capacity(result.len());
        for (member_id, a) in result {
            assignments.push(SyncGroupRequestAssignment {
                member_id,
                assignment: a.encode()?,
            });
        }
        Ok(self.sync_request(assignments))
    }

    /// Digest a SyncGroup response.
    pub fn on_sync_response(&mut self, resp: SyncGroupResponse) -> Result<SyncOutcome> {
        if self.state != ClassicState::Syncing {
            return Ok(SyncOutcome::Rejoin);
        }
        let code = ErrorCode(resp.error_code);
        match code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.state = ClassicState::Unjoined;
                self.rejoin_needed = true;
                return Ok(SyncOutcome::Rejoin);
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.reset(true);
                return Ok(SyncOutcome::Rejoin);
            }
            ErrorCode::ILLEGAL_GENERATION => {
                self.reset(false);
                return Ok(SyncOutcome::Rejoin);
            }
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.state = ClassicState::Unjoined;
                self.rejoin_needed = true;
                return Ok(SyncOutcome::FindCoordinator);
            }
            c => {
                self.state = ClassicState::Unjoined;
                self.rejoin_needed = true;
                let e = Error::Broker {
                    code: c,
                    message: None,
                    context: format!("sync group {:?}", self.settings.group_id),
                };
                return if c.is_retriable() {
                    Ok(SyncOutcome::Backoff(e))
                } else {
                    Err(e)
                };
            }
        }
        let assignment = if resp.assignment.is_empty() {
            // A member the leader assigned nothing (or a Java leader that
            // sent an empty buffer).
            Assignment::default()
        } else {
            Assignment::decode(resp.assignment.clone()).map_err(|e| Error::Broker {
                code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                message: Some(format!("bad assignment from the leader: {e}")),
                context: format!("sync group {:?}", self.settings.group_id),
            })?
        };
        let new: BTreeSet<TopicPartition> = assignment
            .partitions
            .into_iter()
            .filter(|tp| {
                // The leader may not know yet that we dropped a topic.
                self.topics.contains(&tp.topic)
            })
            .collect();
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        let revoked: Vec<TopicPartition> = self.owned.difference(&new).cloned().collect();
        self.owned = new;
        self.state = ClassicState::Stable;
        // KIP-429: after giving partitions up, join again so the leader can
        // hand them to their new owners.
        if !revoked.is_empty() && self.protocol() == RebalanceProtocol::Cooperative {
            self.rejoin_needed = true;
        }
        Ok(SyncOutcome::Assigned { added, revoked })
    }

    /// A heartbeat to send now, with the generation it speaks for; `None`
    /// unless the member is stable (or waiting for its assignment).
    pub fn heartbeat_request(&self) -> Option<(i32, HeartbeatRequest)> {
        if !matches!(self.state, ClassicState::Stable | ClassicState::Syncing) {
            return None;
        }
        Some((
            self.generation,
            HeartbeatRequest {
                group_id: self.settings.group_id.clone(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: self.settings.group_instance_id.clone(),
            },
        ))
    }

    /// Digest a heartbeat answer for `generation` (answers to an older
    /// generation are ignored). FENCED_INSTANCE_ID is an error: another
    /// process uses our `group.instance.id`.
    pub fn on_heartbeat_response(
        &mut self,
        generation: i32,
        code: i16,
    ) -> Result<HeartbeatOutcome> {
        if generation != self.generation {
            return Ok(HeartbeatOutcome::Ok);
        }
        match ErrorCode(code) {
            ErrorCode::NONE => Ok(HeartbeatOutcome::Ok),
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.rejoin_needed = true;
                Ok(HeartbeatOutcome::Rejoin)
            }
            ErrorCode::ILLEGAL_GENERATION => {
                self.reset(false);
                Ok(HeartbeatOutcome::Lost)
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.reset(true);
                Ok(HeartbeatOutcome::Lost)
            }
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                Ok(HeartbeatOutcome::FindCoordinator)
            }
            c => {
                let e = Error::Broker {
                    code: c,
                    message: None,
                    context: format!("heartbeat to group {:?}", self.settings.group_id),
                };
                if c.is_retriable() {
                    Ok(HeartbeatOutcome::Ok)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// `max.poll.interval.ms` passed without a poll: leave the group (Java
    /// sends LeaveGroup for dynamic members; a static member just drops its
    /// generation and lets the session timeout decide). Returns the request
    /// to send, if any. The partitions count as lost at the next poll.
    pub fn poll_timeout(&mut self) -> Option<LeaveGroupRequest> {
        let leave = self.leave_request("consumer poll timeout has expired");
        self.reset(true);
        leave
    }

    /// LeaveGroup for a closing dynamic member; `None` for a static member
    /// (KIP-345: it keeps its place for `session.timeout.ms` so a restart
    /// gets the same partitions) or one that never joined.
    pub fn leave_request(&self, reason: &str) -> Option<LeaveGroupRequest> {
        if self.settings.group_instance_id.is_some() || self.member_id.is_empty() {
            return None;
        }
        Some(LeaveGroupRequest {
            group_id: self.settings.group_id.clone(),
            member_id: self.member_id.clone(),
            members: vec![MemberIdentity {
                member_id: self.member_id.clone(),
                group_instance_id: None,
                reason: Some(reason.to_string()),
            }],
        })
    }

    /// The commit identity: (generation, member id) for OffsetCommit.
    pub fn commit_identity(&self) -> (i32, String) {
        (self.generation, self.member_id.clone())
    }

    /// OffsetCommit said the generation is gone (ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID): same as a heartbeat saying so.
    pub fn on_commit_fenced(&mut self, generation: i32, code: ErrorCode) {
        if generation == self.generation {
            if code == ErrorCode::REBALANCE_IN_PROGRESS {
                self.rejoin_needed = true;
            } else {
                self.reset(code == ErrorCode::UNKNOWN_MEMBER_ID);
            }
        }
    }

    /// An encoded assignment, for tests.
    #[cfg(test)]
    fn encode_assignment(parts: &[(&str, i32)]) -> bytes::Bytes {
        Assignment {
            partitions: parts
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            user_data: None,
        }
        .encode()
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::assignor;
    use skotch_protocol::messages::join_group_response::JoinGroupResponseMember;

    fn member(assignor: &str, instance: Option<&str>) -> ClassicMember {
        let a: Arc<dyn Assignor> = Arc::from(assignor::by_name(assignor).expect("assignor"));
        ClassicMember::new(
            ClassicSettings {
                group_id: "g".into(),
                group_instance_id: instance.map(String::from),
                session_timeout_ms: 45_000,
                rebalance_timeout_ms: 300_000,
                rack_id: None,
            },
            vec![a],
            ["t".to_string()].into_iter().collect(),
        )
        .expect("member")
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn join_ok(m: &mut ClassicMember, member_id: &str, gen: i32, leader: &str) -> JoinOutcome {
        let req = m.join_request().expect("join");
        let members = if leader == member_id {
            vec![JoinGroupResponseMember {
                member_id: member_id.into(),
                group_instance_id: None,
                metadata: req.protocols[0].metadata.clone(),
            }]
        } else {
            vec![]
        };
        m.on_join_response(JoinGroupResponse {
            generation_id: gen,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(req.protocols[0].name.clone()),
            leader: leader.into(),
            member_id: member_id.into(),
            members,
            ..Default::default()
        })
        .expect("join response")
    }

    fn assert_assigned(
        out: SyncOutcome,
        want_added: Vec<TopicPartition>,
        want_revoked: Vec<TopicPartition>,
    ) {
        match out {
            SyncOutcome::Assigned { added, revoked } => {
                assert_eq!((added, revoked), (want_added, want_revoked));
            }
            o => panic!("unexpected {o:?}"),
        }
    }

    fn sync_ok(m: &mut ClassicMember, parts: &[i32]) -> SyncOutcome {
        let parts: Vec<(&str, i32)> = parts.iter().map(|p| ("t", *p)).collect();
        m.on_sync_response(SyncGroupResponse {
            assignment: ClassicMember::encode_assignment(&parts),
            ..Default::default()
        })
        .expect("sync response")
    }

    #[test]
    fn member_id_required_then_join_then_sync() {
        let mut m = member("range", None);
        assert_eq!(m.state(), ClassicState::Unjoined);
        assert!(m.needs_join());
        assert_eq!(m.prepare_join(), PrepareJoin::default());
        let req = m.join_request().expect("join");
        assert_eq!(req.member_id, "");
        assert_eq!(req.protocol_type, "consumer");
        assert_eq!(req.protocols[0].name, "range");
        assert_eq!(m.state(), ClassicState::Joining);
        let out = m
            .on_join_response(JoinGroupResponse {
                error_code: ErrorCode::MEMBER_ID_REQUIRED.0,
                member_id: "m-1".into(),
                ..Default::default()
            })
            .expect("join response");
        assert!(matches!(out, JoinOutcome::Rejoin));
        assert_eq!(m.member_id(), "m-1");
        match join_ok(&mut m, "m-1", 1, "other") {
            JoinOutcome::Follower(sync) => {
                assert_eq!(sync.generation_id, 1);
                assert_eq!(sync.member_id, "m-1");
                assert!(sync.assignments.is_empty());
            }
            o => panic!("unexpected {o:?}"),
        }
        assert_eq!(m.state(), ClassicState::Syncing);
        assert!(m.heartbeat_request().is_some());
        assert_assigned(sync_ok(&mut m, &[0, 1]), vec![tp(0), tp(1)], vec![]);
        assert_eq!(m.state(), ClassicState::Stable);
        assert!(!m.needs_join());
    }

    #[test]
    fn leader_assigns_everything() {
        let mut m = member("roundrobin", None);
        let JoinOutcome::Leader { members, topics } = join_ok(&mut m, "m-1", 3, "m-1") else {
            panic!("not leader");
        };
        assert_eq!(topics, ["t".to_string()].into_iter().collect());
        let counts = [("t".to_string(), 3)].into_iter().collect();
        let sync = m
            .leader_sync(&members, &counts, &PartitionRacks::new())
            .expect("sync");
        assert_eq!(sync.assignments.len(), 1);
        let a = Assignment::decode(sync.assignments[0].assignment.clone()).expect("decode");
        assert_eq!(a.partitions, vec![tp(0), tp(1), tp(2)]);
    }

    #[test]
    fn eager_revokes_all_before_rejoin() {
        let mut m = member("range", None);
        join_ok(&mut m, "m-1", 1, "x");
        sync_ok(&mut m, &[0, 1]);
        let (gen, _) = m.heartbeat_request().expect("hb");
        assert_eq!(
            m.on_heartbeat_response(gen, ErrorCode::REBALANCE_IN_PROGRESS.0)
                .expect("hb"),
            HeartbeatOutcome::Rejoin
        );
        assert!(m.needs_join());
        let p = m.prepare_join();
        assert_eq!(p.revoke, vec![tp(0), tp(1)]);
        assert!(p.lost.is_empty());
        assert!(m.owned().is_empty());
        let req = m.join_request().expect("join");
        // Eager: nothing owned is claimed in the subscription.
        let sub = Subscription::decode(req.protocols[0].metadata.clone()).expect("sub");
        assert!(sub.owned_partitions.is_empty());
        assert_eq!(sub.generation_id, 1);
    }

    #[test]
    fn cooperative_keeps_partitions_and_revokes_only_moved_ones() {
        let mut m = member("cooperative-sticky", None);
        join_ok(&mut m, "m-1", 1, "x");
        sync_ok(&mut m, &[0, 1, 2]);
        m.on_heartbeat_response(1, ErrorCode::REBALANCE_IN_PROGRESS.0)
            .expect("hb");
        // Revoking state: nothing revoked before the join...
        assert_eq!(m.prepare_join(), PrepareJoin::default());
        let req = m.join_request().expect("join");
        let sub = Subscription::decode(req.protocols[0].metadata.clone()).expect("sub");
        assert_eq!(sub.owned_partitions, vec![tp(0), tp(1), tp(2)]);
        join_ok(&mut m, "m-1", 2, "x");
        // ...only what the new assignment takes away, then a second join.
        assert_assigned(sync_ok(&mut m, &[0, 1]), vec![], vec![tp(2)]);
        assert!(m.needs_join());
        assert_eq!(m.prepare_join(), PrepareJoin::default());
        join_ok(&mut m, "m-1", 3, "x");
        assert_assigned(sync_ok(&mut m, &[0, 1]), vec![], vec![]);
        assert!(!m.needs_join());
    }

    #[test]
    fn fenced_generation_loses_partitions() {
        for code in [ErrorCode::ILLEGAL_GENERATION, ErrorCode::UNKNOWN_MEMBER_ID] {
            let mut m = member("cooperative-sticky", None);
            join_ok(&mut m, "m-1", 4, "x");
            sync_ok(&mut m, &[0]);
            assert_eq!(
                m.on_heartbeat_response(4, code.0).expect("hb"),
                HeartbeatOutcome::Lost
            );
            assert_eq!(m.generation(), NO_GENERATION);
            assert_eq!(
                m.member_id().is_empty(),
                code == ErrorCode::UNKNOWN_MEMBER_ID
            );
            let p = m.prepare_join();
            assert_eq!(p.lost, vec![tp(0)]);
            assert!(p.revoke.is_empty());
            assert!(m.owned().is_empty());
        }
    }

    #[test]
    fn stale_heartbeat_answers_are_ignored() {
        let mut m = member("range", None);
        join_ok(&mut m, "m-1", 5, "x");
        sync_ok(&mut m, &[0]);
        assert_eq!(
            m.on_heartbeat_response(4, ErrorCode::ILLEGAL_GENERATION.0)
                .expect("hb"),
            HeartbeatOutcome::Ok
        );
        assert_eq!(m.generation(), 5);
        assert!(!m.needs_join());
    }

    #[test]
    fn coordinator_moves_and_fatal_errors() {
        let mut m = member("range", None);
        m.join_request().expect("join");
        let out = m
            .on_join_response(JoinGroupResponse {
                error_code: ErrorCode::NOT_COORDINATOR.0,
                ..Default::default()
            })
            .expect("join");
        assert!(matches!(out, JoinOutcome::FindCoordinator));
        m.join_request().expect("join");
        let out = m.on_join_response(JoinGroupResponse {
            error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
            ..Default::default()
        });
        assert!(matches!(out, Ok(JoinOutcome::Backoff(_))));
        m.join_request().expect("join");
        let out = m.on_join_response(JoinGroupResponse {
            error_code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL.0,
            ..Default::default()
        });
        assert!(out.is_err());
        join_ok(&mut m, "m-1", 1, "x");
        sync_ok(&mut m, &[0]);
        assert_eq!(
            m.on_heartbeat_response(1, ErrorCode::COORDINATOR_NOT_AVAILABLE.0)
                .expect("hb"),
            HeartbeatOutcome::FindCoordinator
        );
        assert!(m
            .on_heartbeat_response(1, ErrorCode::FENCED_INSTANCE_ID.0)
            .is_err());
    }

    #[test]
    fn static_members_do_not_leave_and_poll_timeout_resets() {
        let mut m = member("range", Some("instance-1"));
        let req = m.join_request().expect("join");
        assert_eq!(req.group_instance_id.as_deref(), Some("instance-1"));
        join_ok(&mut m, "m-1", 1, "x");
        sync_ok(&mut m, &[0]);
        assert!(m.leave_request("closing").is_none());
        assert!(m.poll_timeout().is_none());
        assert!(m.needs_join());
        assert_eq!(m.prepare_join().lost, vec![tp(0)]);

        let mut d = member("range", None);
        join_ok(&mut d, "m-2", 1, "x");
        sync_ok(&mut d, &[1]);
        let leave = d.poll_timeout().expect("dynamic member leaves");
        assert_eq!(leave.members[0].member_id, "m-2");
        assert_eq!(d.member_id(), "");
        assert_eq!(d.prepare_join().lost, vec![tp(1)]);
    }

    #[test]
    fn sync_errors() {
        let mut m = member("range", None);
        join_ok(&mut m, "m-1", 1, "x");
        let out = m
            .on_sync_response(SyncGroupResponse {
                error_code: ErrorCode::REBALANCE_IN_PROGRESS.0,
                ..Default::default()
            })
            .expect("sync");
        assert!(matches!(out, SyncOutcome::Rejoin));
        assert_eq!(m.state(), ClassicState::Unjoined);
        // A late sync answer after the state moved on is ignored.
        let out = m
            .on_sync_response(SyncGroupResponse::default())
            .expect("sync");
        assert!(matches!(out, SyncOutcome::Rejoin));
        // A garbage assignment is an error, not a panic.
        join_ok(&mut m, "m-1", 2, "x");
        let out = m.on_sync_response(SyncGroupResponse {
            assignment: bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 9]),
            ..Default::default()
        });
        assert!(out.is_err());
    }
}
