//! One classic consumer group as the coordinator keeps it: members, the
//! state machine (Empty, PreparingRebalance, CompletingRebalance, Stable,
//! Dead), protocol selection and leader election. Written from Kafka's
//! `ClassicGroup.java`, `ClassicGroupMember.java` and
//! `ClassicGroupState.java` (group-coordinator module); the request
//! handling that drives it is in [`group`](crate::group).
//!
//! A member's parked JoinGroup or SyncGroup is a oneshot sender kept in
//! the member (Java keeps a `CompletableFuture`): completing it answers the
//! request that is waiting in its connection task.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use skotch_protocol::messages::join_group_response::JoinGroupResponseMember;
use skotch_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The states of a classic group and their names as the broker prints
/// them (`ClassicGroupState.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups show.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A timer of a group: the broker's `classicGroupJoinKey`,
/// `classicGroupSyncKey` and `classicGroupHeartbeatKey`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    Join,
    Sync,
    Heartbeat(String),
}

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// `completeClassicGroupJoin` (the rebalance timeout ran out).
    CompleteJoin,
    /// `tryCompleteInitialRebalanceElseSchedule`.
    InitialRebalance { delay_ms: i64, remaining_ms: i64 },
    /// `expirePendingSync` for this generation.
    ExpireSync { generation: i32 },
    /// `expireClassicGroupMemberHeartbeat` (the session timeout ran out).
    ExpireHeartbeat,
}

/// A scheduled timer. The task sleeping for it checks `token` when it
/// wakes: a timer cancelled or replaced by an earlier one has another
/// token (or none), and one pushed later (a heartbeat) has a later
/// `deadline`, so the task sleeps again.
#[derive(Debug)]
pub(crate) struct Timer {
    pub deadline: Instant,
    pub token: u64,
    pub action: TimerAction,
}

/// One member (`ClassicGroupMember.java`).
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<JoinGroupRequestProtocol>,
    pub assignment: Bytes,
    /// The parked JoinGroup, if any.
    pub join: Option<oneshot::Sender<JoinGroupResponse>>,
    /// The parked SyncGroup, if any.
    pub sync: Option<oneshot::Sender<SyncGroupResponse>>,
    /// Joined in the current rebalance (its session timer is then the
    /// new-member join timeout, and a parked join does not count as a
    /// heartbeat).
    pub is_new: bool,
}

impl Member {
    /// `hasSatisfiedHeartbeat`: members waiting in a rebalance count as
    /// alive, except new ones.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.join.is_some() || self.sync.is_some())
    }

    /// `matches`: the same protocols, metadata and order.
    pub fn matches(&self, protocols: &[JoinGroupRequestProtocol]) -> bool {
        self.protocols == protocols
    }

    /// `vote`: the member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|n| candidates.contains(n))
    }

    /// The member's metadata for `protocol` (empty if it has none).
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.protocols
            .iter()
            .find(|p| Some(p.name.as_str()) == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Answer the parked JoinGroup, if any; whether there was one.
    pub fn complete_join(&mut self, resp: JoinGroupResponse) -> bool {
        match self.join.take() {
            Some(tx) => {
                let _ = tx.send(resp);
                true
            }
            None => false,
        }
    }

    /// Answer the parked SyncGroup, if any; whether there was one.
    pub fn complete_sync(&mut self, resp: SyncGroupResponse) -> bool {
        match self.sync.take() {
            Some(tx) => {
                let _ = tx.send(resp);
                true
            }
            None => false,
        }
    }
}

/// One classic group (`ClassicGroup.java`).
#[derive(Debug)]
pub(crate) struct ClassicGroup {
    pub id: String,
    pub state: GroupState,
    pub previous_state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// In joining order (the broker's is a hash map; the order only
    /// decides who becomes leader when the leader leaves, here the
    /// longest-standing member, for determinism).
    pub members: Vec<Member>,
    /// Group instance id to member id (KIP-345).
    pub static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED that have not joined
    /// yet (KIP-394).
    pub pending_join: BTreeSet<String>,
    /// Members that must still send SyncGroup in this generation.
    pub pending_sync: BTreeSet<String>,
    /// A member joined during the initial rebalance delay.
    pub new_member_added: bool,
    pub timers: BTreeMap<TimerKey, Timer>,
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> ClassicGroup {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            static_members: BTreeMap::new(),
            pending_join: BTreeSet::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            timers: BTreeMap::new(),
        }
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn has_member(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    pub fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    /// `transitionTo`. The broker asserts the transition is legal; the
    /// callers here only make legal ones.
    pub fn transition(&mut self, to: GroupState) {
        self.previous_state = self.state;
        self.state = to;
    }

    /// `canRebalance`: PreparingRebalance may follow this state.
    pub fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    /// `add`: a new member (its protocol type becomes the group's when it
    /// is the first; the first member leads).
    pub fn add(&mut self, member: Member) {
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.pending_join.remove(&member.id);
        self.members.push(member);
    }

    /// `remove`: the member goes; a departing leader is replaced by the
    /// first remaining member. Any parked request of the member is
    /// dropped (its waiter answers UNKNOWN_MEMBER_ID).
    pub fn remove(&mut self, id: &str) -> Option<Member> {
        let removed = self
            .members
            .iter()
            .position(|m| m.id == id)
            .map(|i| self.members.remove(i));
        if let Some(m) = &removed {
            if let Some(instance) = &m.instance_id {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.pending_join.remove(id);
        self.pending_sync.remove(id);
        self.timers.remove(&TimerKey::Heartbeat(id.to_string()));
        removed
    }

    /// `hasAllMembersJoined`.
    pub fn all_joined(&self) -> bool {
        self.members.iter().all(|m| m.join.is_some()) && self.pending_join.is_empty()
    }

    pub fn awaiting_join(&self) -> usize {
        self.members.iter().filter(|m| m.join.is_some()).count()
    }

    /// `rebalanceTimeoutMs`: the largest of the members'.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0)
    }

    /// `validateMember`: a static member must be the instance's current
    /// member id (FENCED_INSTANCE_ID otherwise, KIP-345); the member must
    /// exist (UNKNOWN_MEMBER_ID).
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(ErrorCode::UNKNOWN_MEMBER_ID),
                Some(existing) if existing != member_id => {
                    return Err(ErrorCode::FENCED_INSTANCE_ID)
                }
                Some(_) => {}
            }
        }
        if !self.has_member(member_id) {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        Ok(())
    }

    /// The protocols every member supports.
    fn candidate_protocols(&self) -> BTreeSet<&str> {
        let Some(first) = self.members.first() else {
            return BTreeSet::new();
        };
        first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|p| p.name == *name))
            })
            .collect()
    }

    /// `supportsProtocols`: an empty group takes any non-empty protocol
    /// type with at least one protocol; otherwise the type must be the
    /// group's and one of the protocols supported by every member.
    pub fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[JoinGroupRequestProtocol],
    ) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols
            .iter()
            .any(|p| candidates.contains(p.name.as_str()))
    }

    /// `selectProtocol`: every member votes for its most preferred
    /// protocol among those all support; the most votes wins. The broker
    /// breaks ties by hash-map order; here the tie goes to the protocol
    /// the leader prefers (deterministic).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &self.members {
            if let Some(v) = m.vote(&candidates) {
                *votes.entry(v).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        let leader = self
            .leader
            .as_deref()
            .and_then(|l| self.member(l))
            .or(self.members.first())?;
        leader
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|n| votes.get(n) == Some(&most))
            .or_else(|| votes.iter().find(|(_, v)| **v == most).map(|(n, _)| *n))
            .map(str::to_string)
    }

    /// `maybeElectNewJoinedLeader`: a leader that did not rejoin is
    /// replaced by the first member that did; `false` when none did.
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self.member(&leader).is_some_and(|m| m.join.is_some()) {
            return true;
        }
        match self.members.iter().find(|m| m.join.is_some()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// `initNextGeneration`.
    pub fn init_next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition(GroupState::CompletingRebalance);
        }
        self.pending_sync.clear();
    }

    /// `currentClassicGroupMembers`: what the leader gets in its
    /// JoinGroup answer.
    pub fn current_members(&self) -> Vec<JoinGroupResponseMember> {
        self.members
            .iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(self.protocol_name.as_deref()),
            })
            .collect()
    }

    /// A successful JoinGroup answer for `member_id` in the current
    /// generation (the member list only for the leader).
    pub fn join_answer(&self, member_id: &str, with_members: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if with_members {
                self.current_members()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }
}

/// A JoinGroup answer carrying only an error (and the member id).
pub(crate) fn join_error(code: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

/// A SyncGroup answer carrying only an error.
pub(crate) fn sync_error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
