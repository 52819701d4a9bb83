//! KIP-848 consumer groups (`group.protocol=consumer`): the group
//! coordinator's side of ConsumerGroupHeartbeat and ConsumerGroupDescribe,
//! and the member checks OffsetCommit makes for these groups.
//!
//! Written from KIP-848 and Kafka's group coordinator
//! (`GroupCoordinatorService`, `GroupMetadataManager.consumerGroupHeartbeat`,
//! `modern/consumer/ConsumerGroup`, `ConsumerGroupMember`,
//! `CurrentAssignmentBuilder`):
//!
//! - The **group epoch** bumps when a member joins, leaves or is fenced, or
//!   when the subscriptions or the subscribed topics' partition counts
//!   change. When it is ahead of the **assignment epoch**, the next
//!   heartbeat recomputes the **target assignment** with the uniform
//!   assignor ([`uniform_assignor`](crate::uniform_assignor)).
//! - Each member then **reconciles** towards its target, one heartbeat at a
//!   time: partitions to give up are revoked first (the member stays at its
//!   epoch, state `UNREVOKED_PARTITIONS`, until a heartbeat's owned
//!   partitions no longer list them); partitions still owned by another
//!   member are withheld (`UNRELEASED_PARTITIONS`) until that member lets
//!   go; the member epoch moves to the assignment epoch as it advances. The
//!   heartbeat answer carries the partitions the member may own now, never
//!   one another member still holds.
//! - Sessions: a member silent for `group.consumer.session.timeout.ms` is
//!   removed; one that does not finish a revocation within its rebalance
//!   timeout is fenced. Checked lazily, at the group's next heartbeat or
//!   describe (and treated as gone by the read-only checks), with tokio's
//!   clock, so a paused clock makes it deterministic.
//!
//! Differences from a broker, on purpose:
//! - `heartbeat_interval_ms` is 500 ms (a broker says
//!   `group.consumer.heartbeat.interval.ms`, 5000 ms) so that rebalances in
//!   tests take a second rather than ten.
//! - A v0 member without a member id gets `mock-member-N` from a counter
//!   (a broker: a random UUID); v1+ members bring their own (KIP-1082).
//! - Only the `uniform` assignor (Kafka also offers `range`): another name
//!   is UNSUPPORTED_ASSIGNOR. Its balance is simpler than Kafka's (see its
//!   module).
//! - `subscribed_topic_regex` (v1) is refused with INVALID_REQUEST, Kafka
//!   3.7-3.9's answer ("SubscribedTopicRegex is not supported yet."); a
//!   Kafka 4 broker resolves the regex.
//! - Subscription metadata (partition counts) is compared at every
//!   heartbeat, where a broker refreshes it periodically and on metadata
//!   changes: a new partition is seen at once.
//! - A classic group with the same id is not converted (Kafka 4's online
//!   upgrade): the join is GROUP_ID_NOT_FOUND, "is not a consumer group".
//! - A member rejoining with epoch 0 under an id the group still has is
//!   accepted and keeps its assignment, as since KAFKA-19233
//!   (apache/kafka#21305); brokers without that fix answer
//!   FENCED_MEMBER_EPOCH until the session expires.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
    TopicPartitions as DescribedTopicPartitions,
};
use skotch_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedPartitions;
use skotch_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as ResponseAssignment, TopicPartitions as ResponseTopicPartitions,
};
use skotch_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use skotch_protocol::Uuid;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::state::{State, Topic};
use crate::uniform_assignor::{self, Assignment, TopicMetadata};

/// Member epoch asking to join (`ConsumerGroupHeartbeatRequest.JOIN_GROUP_MEMBER_EPOCH`).
const JOIN_EPOCH: i32 = 0;
/// Member epoch of a member leaving (`LEAVE_GROUP_MEMBER_EPOCH`).
const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member leaving for now
/// (`LEAVE_GROUP_STATIC_MEMBER_EPOCH`, KIP-848 static membership).
const STATIC_LEAVE_EPOCH: i32 = -2;
/// From this version the consumer generates its member id (KIP-1082,
/// `CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION`).
const CONSUMER_GENERATED_MEMBER_ID_VERSION: i16 = 1;
/// The only server-side assignor the mock has.
const ASSIGNOR: &str = "uniform";
/// The mock's heartbeat interval (see the module docs).
const DEFAULT_HEARTBEAT_INTERVAL_MS: i32 = 500;
/// `group.consumer.session.timeout.ms` (`GroupCoordinatorConfig`).
const DEFAULT_SESSION_TIMEOUT_MS: i32 = 45_000;
/// The operations on a group an authorizer could allow: READ (3), DELETE
/// (6), DESCRIBE (8), DESCRIBE_CONFIGS (10), ALTER_CONFIGS (11) as a bit
/// field (`AclEntry.supportedOperations(GROUP)`); without an authorizer a
/// broker reports them all (`AuthHelper.authorizedOperations`).
const GROUP_OPERATIONS: i32 = 1 << 3 | 1 << 6 | 1 << 8 | 1 << 10 | 1 << 11;
/// Kafka's `ConsumerGroupMember` client host: the peer address as
/// `InetAddress.toString()` prints it. Every mock client is local.
const CLIENT_HOST: &str = "/127.0.0.1";

/// Every KIP-848 consumer group, by group id, with the coordinator's
/// settings.
#[derive(Debug)]
pub(crate) struct ConsumerGroups {
    groups: BTreeMap<String, ConsumerGroup>,
    /// Feeds the member ids of v0 joins.
    next_member: u64,
    /// Answered in every heartbeat.
    pub heartbeat_interval_ms: i32,
    /// How long a member may stay silent.
    pub session_timeout_ms: i32,
}

impl Default for ConsumerGroups {
    fn default() -> Self {
        ConsumerGroups {
            groups: BTreeMap::new(),
            next_member: 0,
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
        }
    }
}

/// Where a member is in its reconciliation (`modern/MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    /// Owns its whole target (or waits for nothing).
    Stable,
    /// Must give partitions up before it may move on.
    UnrevokedPartitions,
    /// Waits for partitions another member still owns.
    UnreleasedPartitions,
}

/// One member (`ConsumerGroupMember`).
#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    rebalance_timeout_ms: i32,
    topics: BTreeSet<String>,
    server_assignor: Option<String>,
    epoch: i32,
    previous_epoch: i32,
    state: MemberState,
    /// The partitions it may own now.
    assigned: Assignment,
    /// The partitions it must give up.
    pending_revocation: Assignment,
    /// Removed when a heartbeat has not come by then.
    session_deadline: Instant,
    /// Fenced when still at this epoch by then (a revocation not done
    /// within the rebalance timeout).
    rebalance_deadline: Option<(i32, Instant)>,
}

impl Member {
    fn new(id: String, now: Instant) -> Member {
        Member {
            id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            rebalance_timeout_ms: -1,
            topics: BTreeSet::new(),
            server_assignor: None,
            epoch: JOIN_EPOCH,
            previous_epoch: JOIN_EPOCH,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline: now,
            rebalance_deadline: None,
        }
    }

    /// `ModernGroupMember.isReconciledTo`.
    fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.epoch == epoch
    }

    /// The reconciliation fields, to tell whether they changed.
    fn reconciliation(&self) -> (i32, i32, MemberState, &Assignment, &Assignment) {
        (
            self.epoch,
            self.previous_epoch,
            self.state,
            &self.assigned,
            &self.pending_revocation,
        )
    }

    fn expired(&self, now: Instant) -> bool {
        self.session_deadline <= now
            || self
                .rebalance_deadline
                .is_some_and(|(epoch, at)| epoch == self.epoch && at <= now)
    }
}

/// One group (`ConsumerGroup`).
#[derive(Debug, Default)]
struct ConsumerGroup {
    epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    /// The target assignment, by member id.
    target: BTreeMap<String, Assignment>,
    /// The subscribed topics' ids and partition counts at the last epoch
    /// bump.
    subscription_metadata: BTreeMap<String, TopicMetadata>,
}

impl ConsumerGroup {
    /// `ConsumerGroup.maybeUpdateGroupState`, as ConsumerGroupDescribe and
    /// ListGroups name it.
    fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The state as it will be once the expired members are removed
    /// (for read-only callers).
    fn state_at(&self, now: Instant) -> &'static str {
        let live = self.members.values().filter(|m| !m.expired(now)).count();
        if live == self.members.len() {
            self.state()
        } else if live == 0 {
            "Empty"
        } else {
            "Assigning" // the removal bumps the group epoch
        }
    }

    /// Remove a member and bump the group epoch
    /// (`GroupMetadataManager.consumerGroupFenceMember`): its partitions
    /// are free at once, the others get a new target at their next
    /// heartbeat.
    fn fence(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.epoch = self.epoch.saturating_add(1);
        }
    }

    /// Fence every member whose session or rebalance timeout passed
    /// (`scheduleConsumerGroupSessionTimeout`,
    /// `scheduleConsumerGroupRebalanceTimeout`).
    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(member = %id, "KIP-848 member fenced: session or rebalance timeout");
            self.fence(&id);
        }
    }

    fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Whether any member owns (or still has to revoke) this partition
    /// (`ConsumerGroup.currentPartitionEpoch` != -1).
    fn owned_partitions(&self) -> BTreeSet<(Uuid, i32)> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            for a in [&m.assigned, &m.pending_revocation] {
                for (id, parts) in a {
                    out.extend(parts.iter().map(|p| (*id, *p)));
                }
            }
        }
        out
    }
}

/// A refusal: error code and message.
type Refusal = (ErrorCode, String);

fn invalid(message: &str) -> Refusal {
    (ErrorCode::INVALID_REQUEST, message.to_string())
}

/// `GroupCoordinatorService.throwIfConsumerGroupHeartbeatRequestIsInvalid`
/// (Kafka 4.x, with KIP-1082's member id rule).
fn validate(req: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<(), Refusal> {
    if (version >= CONSUMER_GENERATED_MEMBER_ID_VERSION
        || req.member_epoch > 0
        || req.member_epoch == LEAVE_EPOCH)
        && req.member_id.is_empty()
    {
        return Err(invalid("MemberId can't be empty."));
    }
    if req.group_id.is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if req.instance_id.as_deref() == Some("") {
        return Err(invalid("InstanceId can't be empty."));
    }
    if req.rack_id.as_deref() == Some("") {
        return Err(invalid("RackId can't be empty."));
    }
    if req.member_epoch == JOIN_EPOCH {
        if req.rebalance_timeout_ms == -1 {
            return Err(invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
            return Err(invalid("TopicPartitions must be empty when (re-)joining."));
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            ));
        }
    } else if req.member_epoch == STATIC_LEAVE_EPOCH {
        if req.instance_id.is_none() {
            return Err(invalid("InstanceId can't be null."));
        }
    } else if req.member_epoch < STATIC_LEAVE_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if let Some(a) = &req.server_assignor {
        if a != ASSIGNOR {
            return Err((
                ErrorCode::UNSUPPORTED_ASSIGNOR,
                format!("ServerAssignor {a} is not supported. Supported assignors: {ASSIGNOR}."),
            ));
        }
    }
    // The mock does not resolve regular expressions (module docs).
    // An empty regex is no regex (librdkafka sends one; Kafka 4's
    // ConsumerGroupMember.Builder treats only a non-empty one as a regex).
    if req
        .subscribed_topic_regex
        .as_deref()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(invalid("SubscribedTopicRegex is not supported yet."));
    }
    Ok(())
}

fn error_response(code: ErrorCode, message: Option<String>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: message,
        ..Default::default()
    }
}

/// ConsumerGroupHeartbeat: join (epoch 0), heartbeat (the current epoch),
/// leave (-1), static leave (-2). `client_id` is the request header's.
pub(crate) async fn heartbeat(
    broker: &Broker,
    req: &ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: Option<&str>,
) -> ConsumerGroupHeartbeatResponse {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::ConsumerGroupHeartbeat, None) {
        return error_response(code, None);
    }
    // The service validates before routing to the group's coordinator.
    if let Err((code, message)) = validate(req, version) {
        return error_response(code, Some(message));
    }
    let brokers = broker.shared.broker_ids();
    let mut state = broker.shared.state();
    if state.coordinator(&brokers, &req.group_id) != Some(broker.node_id) {
        return error_response(ErrorCode::NOT_COORDINATOR, None);
    }
    // A classic group with members keeps its id
    // (`GroupMetadataManager.getOrMaybeCreateConsumerGroup`: an empty one
    // gives way; one with members would be converted by Kafka 4's online
    // upgrade, which the mock does not do).
    if crate::group::taken_by_classic_group(&mut state, &req.group_id) {
        return error_response(
            ErrorCode::GROUP_ID_NOT_FOUND,
            Some(format!("Group {} is not a consumer group", req.group_id)),
        );
    }
    let now = Instant::now();
    let state = &mut *state;
    let result = if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
        leave(&mut state.consumer_groups, req, now)
    } else {
        join_or_heartbeat(
            &mut state.consumer_groups,
            &state.topics,
            req,
            client_id.unwrap_or_default(),
            now,
        )
    };
    result.unwrap_or_else(|(code, message)| error_response(code, Some(message)))
}

/// The leave paths of `GroupMetadataManager.consumerGroupLeave`.
fn leave(
    groups: &mut ConsumerGroups,
    req: &ConsumerGroupHeartbeatRequest,
    now: Instant,
) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
    let Some(group) = groups.groups.get_mut(&req.group_id) else {
        return Err((
            ErrorCode::GROUP_ID_NOT_FOUND,
            format!("Consumer group {} not found.", req.group_id),
        ));
    };
    group.expire(now);
    let answer = |member_id: &str, epoch: i32| ConsumerGroupHeartbeatResponse {
        member_id: Some(member_id.to_string()),
        member_epoch: epoch,
        ..Default::default()
    };
    let Some(instance_id) = &req.instance_id else {
        if !group.members.contains_key(&req.member_id) {
            return Err(unknown_member(&req.member_id, &req.group_id));
        }
        group.fence(&req.member_id);
        return Ok(answer(&req.member_id, req.member_epoch));
    };
    let Some(member) = group.static_member(instance_id) else {
        return Err(unknown_instance(instance_id));
    };
    if member.id != req.member_id {
        return Err(fenced_instance(&req.member_id, instance_id, &member.id));
    }
    let id = member.id.clone();
    if req.member_epoch == STATIC_LEAVE_EPOCH {
        // The static member stays, epoch -2, keeping its partitions until
        // it rejoins or its session expires
        // (`consumerGroupStaticMemberGroupLeave`).
        if let Some(m) = group.members.get_mut(&id) {
            m.epoch = STATIC_LEAVE_EPOCH;
            m.pending_revocation.clear();
        }
        Ok(answer(&id, STATIC_LEAVE_EPOCH))
    } else {
        group.fence(&id);
        Ok(answer(&id, req.member_epoch))
    }
}

fn unknown_member(member_id: &str, group_id: &str) -> Refusal {
    (
        ErrorCode::UNKNOWN_MEMBER_ID,
        format!("Member {member_id} is not a member of group {group_id}."),
    )
}

/// `throwIfStaticMemberIsUnknown`.
fn unknown_instance(instance_id: &str) -> Refusal {
    (
        ErrorCode::UNKNOWN_MEMBER_ID,
        format!("Instance id {instance_id} is unknown."),
    )
}

/// `throwIfInstanceIdIsFenced`.
fn fenced_instance(member_id: &str, instance_id: &str, owner: &str) -> Refusal {
    (
        ErrorCode::FENCED_INSTANCE_ID,
        format!("Static member {member_id} with instance id {instance_id} was fenced by member {owner}."),
    )
}

/// `throwIfConsumerGroupMemberEpochIsInvalid`, with KAFKA-19233's rejoin at
/// epoch 0.
fn check_epoch(
    member: &Member,
    received: i32,
    owned: Option<&[OwnedPartitions]>,
) -> Result<(), Refusal> {
    if received == JOIN_EPOCH {
        return Ok(());
    }
    let fenced = |which: &str| {
        (
            ErrorCode::FENCED_MEMBER_EPOCH,
            format!(
                "The consumer group member has a {which} member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.epoch
            ),
        )
    };
    if received > member.epoch {
        return Err(fenced("greater"));
    }
    // The previous epoch is accepted when the owned partitions are a
    // subset of the assignment: the answer that bumped it may be lost.
    if received < member.epoch
        && (received != member.previous_epoch || !is_subset(owned, &member.assigned))
    {
        return Err(fenced("smaller"));
    }
    Ok(())
}

/// `GroupMetadataManager.isSubset`: every owned partition is assigned
/// (false when the member did not say).
fn is_subset(owned: Option<&[OwnedPartitions]>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned.iter().all(|t| {
        assigned
            .get(&t.topic_id)
            .is_some_and(|a| t.partitions.iter().all(|p| a.contains(p)))
    })
}

/// The regular heartbeat: `GroupMetadataManager.consumerGroupHeartbeat`.
fn join_or_heartbeat(
    groups: &mut ConsumerGroups,
    topics: &BTreeMap<String, Topic>,
    req: &ConsumerGroupHeartbeatRequest,
    client_id: &str,
    now: Instant,
) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
    let joining = req.member_epoch == JOIN_EPOCH;
    let existed = groups.groups.contains_key(&req.group_id);
    if !existed && !joining {
        return Err((
            ErrorCode::GROUP_ID_NOT_FOUND,
            format!("Consumer group {} not found.", req.group_id),
        ));
    }
    let member_id = if req.member_id.is_empty() {
        // v0 only (validate refuses an empty id from v1 on).
        groups.next_member += 1;
        format!("mock-member-{}", groups.next_member)
    } else {
        req.member_id.clone()
    };
    let interval = groups.heartbeat_interval_ms;
    let session = Duration::from_millis(u64::try_from(groups.session_timeout_ms).unwrap_or(0));
    let group = groups.groups.entry(req.group_id.clone()).or_default();
    group.expire(now);
    let result = member_heartbeat(group, topics, req, &member_id, client_id, now, session);
    match result {
        Ok(resp) => Ok(ConsumerGroupHeartbeatResponse {
            heartbeat_interval_ms: interval,
            ..resp
        }),
        Err(e) => {
            // A refused join leaves no group behind (the broker writes no
            // records for it).
            if !existed {
                groups.groups.remove(&req.group_id);
            }
            Err(e)
        }
    }
}

/// Steps 0-3 of `consumerGroupHeartbeat` on an existing (or new) group.
fn member_heartbeat(
    group: &mut ConsumerGroup,
    topics: &BTreeMap<String, Topic>,
    req: &ConsumerGroupHeartbeatRequest,
    member_id: &str,
    client_id: &str,
    now: Instant,
    session: Duration,
) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
    let joining = req.member_epoch == JOIN_EPOCH;
    let owned = req.topic_partitions.as_deref();

    // 0. The member as it is (or a new one), every check before any change.
    let mut replaced: Option<String> = None;
    let member: Member = match &req.instance_id {
        None => match group.members.get(member_id) {
            Some(m) => {
                check_epoch(m, req.member_epoch, owned)?;
                m.clone()
            }
            None if joining => Member::new(member_id.to_string(), now),
            None => return Err(unknown_member(member_id, &req.group_id)),
        },
        Some(instance_id) => match group.static_member(instance_id) {
            // `getOrMaybeSubscribeStaticConsumerGroupMember`.
            None if joining => group
                .members
                .get(member_id)
                .cloned()
                .unwrap_or_else(|| Member::new(member_id.to_string(), now)),
            None => return Err(unknown_instance(instance_id)),
            Some(existing) if joining => {
                // A static member (re)joins only after its instance left
                // with epoch -2 (`throwIfInstanceIdIsUnreleased`), then
                // takes its place, assignment included (`replaceMember`).
                if existing.epoch != STATIC_LEAVE_EPOCH {
                    return Err((
                        ErrorCode::UNRELEASED_INSTANCE_ID,
                        format!(
                            "Static member {member_id} with instance id {instance_id} cannot join the group because the instance id is owned by {} member.",
                            existing.id
                        ),
                    ));
                }
                if existing.id != member_id {
                    replaced = Some(existing.id.clone());
                }
                Member {
                    id: member_id.to_string(),
                    epoch: JOIN_EPOCH,
                    previous_epoch: JOIN_EPOCH,
                    ..existing.clone()
                }
            }
            Some(existing) => {
                if existing.id != member_id {
                    return Err(fenced_instance(member_id, instance_id, &existing.id));
                }
                check_epoch(existing, req.member_epoch, owned)?;
                existing.clone()
            }
        },
    };

    // 1. Update the member; bump the group epoch on a subscription change.
    let mut updated = member.clone();
    if let Some(i) = &req.instance_id {
        updated.instance_id = Some(i.clone());
    }
    if let Some(r) = &req.rack_id {
        updated.rack_id = Some(r.clone());
    }
    if req.rebalance_timeout_ms != -1 {
        updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if let Some(a) = &req.server_assignor {
        updated.server_assignor = Some(a.clone());
    }
    if let Some(names) = &req.subscribed_topic_names {
        updated.topics = names.iter().cloned().collect();
    }
    updated.client_id = client_id.to_string();
    // A new group moves off epoch 0 at once.
    let mut bump = group.epoch == 0 || updated.topics != member.topics;
    if let Some(old) = &replaced {
        if let Some(target) = group.target.remove(old) {
            group.target.insert(member_id.to_string(), target);
        }
        group.members.remove(old);
    }
    group.members.insert(member_id.to_string(), updated);
    let metadata = subscription_metadata(group, topics);
    if metadata != group.subscription_metadata {
        group.subscription_metadata = metadata;
        bump = true;
    }
    if bump {
        group.epoch = group.epoch.saturating_add(1);
    }

    // 2. A new target assignment when the group epoch moved past it.
    if group.epoch > group.assignment_epoch {
        let subscriptions: BTreeMap<String, BTreeSet<String>> = group
            .members
            .values()
            .map(|m| (m.id.clone(), m.topics.clone()))
            .collect();
        group.target =
            uniform_assignor::assign(&subscriptions, &group.subscription_metadata, &group.target);
        group.assignment_epoch = group.epoch;
    }

    // 3. Reconcile the member towards its target.
    let target = group.target.get(member_id).cloned().unwrap_or_default();
    let taken = group.owned_partitions();
    let assignment_epoch = group.assignment_epoch;
    let Some(m) = group.members.get_mut(member_id) else {
        return Err((ErrorCode::UNKNOWN_SERVER_ERROR, "member vanished".into()));
    };
    let before = m.clone();
    reconcile(m, assignment_epoch, &target, &taken, owned);
    if m.reconciliation() != before.reconciliation() {
        m.rebalance_deadline = (m.state == MemberState::UnrevokedPartitions).then(|| {
            let timeout = u64::try_from(m.rebalance_timeout_ms).unwrap_or(0);
            (m.epoch, now + Duration::from_millis(timeout))
        });
    }
    m.session_deadline = now + session;

    // The assignment goes out on a full request (a join, or every field
    // set after an error) or when it changed.
    let full = joining
        || (req.rebalance_timeout_ms != -1
            && req.subscribed_topic_names.is_some()
            && req.topic_partitions.is_some());
    let assignment = (full || m.assigned != member.assigned).then(|| ResponseAssignment {
        topic_partitions: m
            .assigned
            .iter()
            .map(|(id, parts)| ResponseTopicPartitions {
                topic_id: *id,
                partitions: parts.iter().copied().collect(),
            })
            .collect(),
    });
    Ok(ConsumerGroupHeartbeatResponse {
        member_id: Some(m.id.clone()),
        member_epoch: m.epoch,
        assignment,
        ..Default::default()
    })
}

/// The ids and partition counts of the topics the members subscribe to
/// that exist (`ConsumerGroup.computeSubscriptionMetadata`).
fn subscription_metadata(
    group: &ConsumerGroup,
    topics: &BTreeMap<String, Topic>,
) -> BTreeMap<String, TopicMetadata> {
    group
        .members
        .values()
        .flat_map(|m| m.topics.iter())
        .filter_map(|name| {
            topics.get(name).map(|t| {
                (
                    name.clone(),
                    TopicMetadata {
                        id: t.id,
                        partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                    },
                )
            })
        })
        .collect()
}

/// `CurrentAssignmentBuilder.build`: move the member one step towards
/// `target` at `target_epoch`. `taken`: partitions some member owns or
/// must still revoke; `owned`: what the heartbeat says the member owns.
fn reconcile(
    m: &mut Member,
    target_epoch: i32,
    target: &Assignment,
    taken: &BTreeSet<(Uuid, i32)>,
    owned: Option<&[OwnedPartitions]>,
) {
    if m.is_reconciled_to(target_epoch) {
        return;
    }
    match m.state {
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            next_assignment(m, m.epoch, target_epoch, target, taken, owned)
        }
        MemberState::UnrevokedPartitions => {
            // Not before the heartbeat's owned partitions leave out every
            // partition to revoke.
            if owns_any(owned, &m.pending_revocation) {
                return;
            }
            next_assignment(
                m,
                m.epoch.saturating_add(1),
                target_epoch,
                target,
                taken,
                owned,
            )
        }
    }
}

/// `CurrentAssignmentBuilder.ownsRevokedPartitions`: true when `owned` is
/// unknown or lists one of `revoking`.
fn owns_any(owned: Option<&[OwnedPartitions]>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    owned.iter().any(|t| {
        revoking
            .get(&t.topic_id)
            .is_some_and(|r| t.partitions.iter().any(|p| r.contains(p)))
    })
}

/// `CurrentAssignmentBuilder.computeNextAssignment`.
fn next_assignment(
    m: &mut Member,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    taken: &BTreeSet<(Uuid, i32)>,
    owned: Option<&[OwnedPartitions]>,
) {
    let mut unreleased = false;
    let mut assigned = Assignment::new();
    let mut revoking = Assignment::new();
    let mut adding = Assignment::new();
    let ids: BTreeSet<Uuid> = target.keys().chain(m.assigned.keys()).copied().collect();
    let empty = BTreeSet::new();
    for id in ids {
        let want = target.get(&id).unwrap_or(&empty);
        let have = m.assigned.get(&id).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let revoke: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let mut add = BTreeSet::new();
        for p in want.difference(&keep) {
            if taken.contains(&(id, *p)) {
                unreleased = true;
            } else {
                add.insert(*p);
            }
        }
        if !keep.is_empty() {
            assigned.insert(id, keep);
        }
        if !revoke.is_empty() {
            revoking.insert(id, revoke);
        }
        if !add.is_empty() {
            adding.insert(id, add);
        }
    }
    let update_epoch = |m: &mut Member, epoch: i32| {
        m.previous_epoch = m.epoch;
        m.epoch = epoch;
    };
    if !revoking.is_empty() && owns_any(owned, &revoking) {
        // Revocation first: same epoch, the kept partitions only.
        m.state = MemberState::UnrevokedPartitions;
        update_epoch(m, member_epoch);
        m.assigned = assigned;
        m.pending_revocation = revoking;
        return;
    }
    for (id, parts) in adding {
        assigned.entry(id).or_default().extend(parts);
    }
    m.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    update_epoch(m, target_epoch);
    m.assigned = assigned;
    m.pending_revocation.clear();
}

/// ConsumerGroupDescribe: each group's state, epochs, assignor and members
/// with their assignment and target (`ConsumerGroup.asDescribedGroup`).
pub(crate) fn describe(
    broker: &Broker,
    req: &ConsumerGroupDescribeRequest,
    _version: i16,
) -> ConsumerGroupDescribeResponse {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::ConsumerGroupDescribe, None) {
        return ConsumerGroupDescribeResponse {
            groups: req
                .group_ids
                .iter()
                .map(|g| DescribedGroup {
                    group_id: g.clone(),
                    error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let brokers = broker.shared.broker_ids();
    let mut state = broker.shared.state();
    let now = Instant::now();
    let mut out = Vec::new();
    for group_id in &req.group_ids {
        let error = |code: ErrorCode, message: Option<String>| DescribedGroup {
            group_id: group_id.clone(),
            error_code: code.code(),
            error_message: message,
            ..Default::default()
        };
        // `GroupCoordinatorService.consumerGroupDescribe`.
        if group_id.is_empty() {
            out.push(error(ErrorCode::INVALID_GROUP_ID, None));
            continue;
        }
        if state.coordinator(&brokers, group_id) != Some(broker.node_id) {
            out.push(error(ErrorCode::NOT_COORDINATOR, None));
            continue;
        }
        let state = &mut *state;
        let Some(group) = state.consumer_groups.groups.get_mut(group_id) else {
            let message = if state.groups.get(group_id).is_some() {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            out.push(error(ErrorCode::GROUP_ID_NOT_FOUND, Some(message)));
            continue;
        };
        group.expire(now);
        let names: BTreeMap<Uuid, &str> = state
            .topics
            .iter()
            .map(|(name, t)| (t.id, name.as_str()))
            .collect();
        // Topics that are gone are left out (`topicPartitionsFromMap`).
        let described = |a: &Assignment| DescribedAssignment {
            topic_partitions: a
                .iter()
                .filter_map(|(id, parts)| {
                    names.get(id).map(|name| DescribedTopicPartitions {
                        topic_id: *id,
                        topic_name: name.to_string(),
                        partitions: parts.iter().copied().collect(),
                    })
                })
                .collect(),
        };
        let empty = Assignment::new();
        out.push(DescribedGroup {
            group_id: group_id.clone(),
            group_state: group.state().to_string(),
            group_epoch: group.epoch,
            assignment_epoch: group.assignment_epoch,
            assignor_name: ASSIGNOR.to_string(),
            // `KafkaApis.handleConsumerGroupDescribe`: only when asked.
            authorized_operations: if req.include_authorized_operations {
                GROUP_OPERATIONS
            } else {
                i32::MIN
            },
            members: group
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: CLIENT_HOST.to_string(),
                    subscribed_topic_names: m.topics.iter().cloned().collect(),
                    subscribed_topic_regex: None,
                    assignment: described(&m.assigned),
                    target_assignment: described(group.target.get(&m.id).unwrap_or(&empty)),
                    // 1: the consumer protocol (0 would be a classic member).
                    member_type: 1,
                })
                .collect(),
            ..Default::default()
        });
    }
    ConsumerGroupDescribeResponse {
        groups: out,
        ..Default::default()
    }
}

/// What the request log shows of a KIP-848 request.
pub(crate) trait Summary {
    /// A short line.
    fn summary(&self) -> String;
}

impl Summary for ConsumerGroupHeartbeatRequest {
    fn summary(&self) -> String {
        let mut s = format!(
            "group={} member={} epoch={}",
            self.group_id, self.member_id, self.member_epoch
        );
        if let Some(i) = &self.instance_id {
            s.push_str(&format!(" instance={i}"));
        }
        if let Some(t) = &self.subscribed_topic_names {
            s.push_str(&format!(" topics={}", t.join(",")));
        }
        if let Some(o) = &self.topic_partitions {
            let n: usize = o.iter().map(|t| t.partitions.len()).sum();
            s.push_str(&format!(" owned={n}"));
        }
        s
    }
}

impl Summary for ConsumerGroupDescribeRequest {
    fn summary(&self) -> String {
        format!("groups={}", self.group_ids.join(","))
    }
}

/// The request log line of a ConsumerGroupHeartbeat or
/// ConsumerGroupDescribe.
pub(crate) fn summary<T: Summary>(req: &T) -> String {
    req.summary()
}

/// Whether an OffsetCommit from `member_id` at `member_epoch` (sent as the
/// generation id) may commit for consumer group `group`; `None` when
/// `group` is not a consumer group.
///
/// `ConsumerGroup.validateOffsetCommit`: a negative epoch (the admin
/// client, or a consumer outside group management) commits only while the
/// group has no members; otherwise the member must exist
/// (UNKNOWN_MEMBER_ID) at exactly this epoch (STALE_MEMBER_EPOCH). Not
/// checked here: a KIP-848 member must use OffsetCommit v9+
/// (UNSUPPORTED_VERSION), which the caller knows.
pub(crate) fn validate_commit(
    state: &State,
    group: &str,
    member_id: &str,
    member_epoch: i32,
) -> Option<Result<(), ErrorCode>> {
    let g = state.consumer_groups.groups.get(group)?;
    let now = Instant::now();
    let live = |m: &&Member| !m.expired(now);
    if member_epoch < 0 && !g.members.values().any(|m| live(&m)) {
        return Some(Ok(()));
    }
    let Some(m) = g.members.get(member_id).filter(live) else {
        return Some(Err(ErrorCode::UNKNOWN_MEMBER_ID));
    };
    if m.epoch != member_epoch {
        return Some(Err(ErrorCode::STALE_MEMBER_EPOCH));
    }
    Some(Ok(()))
}

/// Whether an OffsetFetch (v9+) naming `member_id` at `member_epoch` may
/// read consumer group `group`'s offsets (KIP-848,
/// `ConsumerGroup.validateOffsetFetch`): no member id and a negative
/// epoch is an admin or older client, always allowed; otherwise the
/// member must exist (UNKNOWN_MEMBER_ID) at that epoch
/// (STALE_MEMBER_EPOCH). `None` when `group` is not a KIP-848 group.
pub(crate) fn validate_fetch(
    state: &State,
    group: &str,
    member_id: Option<&str>,
    member_epoch: i32,
) -> Option<Result<(), ErrorCode>> {
    let g = state.consumer_groups.groups.get(group)?;
    let Some(member_id) = member_id else {
        return Some(if member_epoch < 0 {
            Ok(())
        } else {
            Err(ErrorCode::UNKNOWN_MEMBER_ID)
        });
    };
    let now = Instant::now();
    let Some(m) = g.members.get(member_id).filter(|m| !m.expired(now)) else {
        return Some(Err(ErrorCode::UNKNOWN_MEMBER_ID));
    };
    if m.epoch != member_epoch {
        return Some(Err(ErrorCode::STALE_MEMBER_EPOCH));
    }
    Some(Ok(()))
}

/// One KIP-848 group as ListGroups shows it.
#[derive(Debug, Clone)]
pub(crate) struct ListedGroup {
    pub group_id: String,
    /// `Empty`, `Assigning`, `Reconciling`, `Stable`, `Dead`.
    pub state: String,
}

/// The KIP-848 groups, for ListGroups (which the classic coordinator
/// answers for both kinds).
pub(crate) fn list_entries(state: &State) -> Vec<ListedGroup> {
    let now = Instant::now();
    state
        .consumer_groups
        .groups
        .iter()
        .map(|(id, g)| ListedGroup {
            group_id: id.clone(),
            state: g.state_at(now).to_string(),
        })
        .collect()
}

/// Whether `group` is a KIP-848 consumer group (a classic JoinGroup for it
/// is then refused).
pub(crate) fn exists(state: &State, group: &str) -> bool {
    state.consumer_groups.groups.contains_key(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(member: &str) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: JOIN_EPOCH,
            rebalance_timeout_ms: 1_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        }
    }

    fn beat(member: &str, epoch: i32, owned: Option<Vec<i32>>) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: epoch,
            topic_partitions: owned.map(|partitions| {
                vec![OwnedPartitions {
                    topic_id: Uuid([1; 16]),
                    partitions,
                }]
            }),
            ..Default::default()
        }
    }

    fn state() -> State {
        let mut s = State::default();
        s.create_topic(&[0], "t", 4, 1, None, false).unwrap();
        // Heartbeats name the topic by id: use the one the state made.
        s
    }

    fn topic_id(s: &State) -> Uuid {
        s.topics["t"].id
    }

    fn call(
        s: &mut State,
        req: &ConsumerGroupHeartbeatRequest,
        now: Instant,
    ) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
        let id = topic_id(s);
        let mut req = req.clone();
        if let Some(t) = req.topic_partitions.as_mut() {
            for tp in t.iter_mut() {
                tp.topic_id = id;
            }
        }
        join_or_heartbeat(&mut s.consumer_groups, &s.topics, &req, "c", now)
    }

    #[test]
    fn a_silent_member_is_removed_after_the_session_timeout() {
        let mut s = state();
        let t0 = Instant::now();
        let a = call(&mut s, &join("a"), t0).unwrap();
        assert_eq!(a.member_epoch, 1);
        call(&mut s, &beat("a", 1, Some(vec![0, 1, 2, 3])), t0).unwrap();
        let b = call(&mut s, &join("b"), t0).unwrap();
        // b heartbeats every 10 s; a never again.
        let mut now = t0;
        for _ in 0..4 {
            now += Duration::from_secs(10);
            call(&mut s, &beat("b", b.member_epoch, Some(vec![])), now).unwrap();
        }
        assert_eq!(s.consumer_groups.groups["g"].members.len(), 2);
        assert_eq!(list_entries(&s)[0].state, "Reconciling");
        now += Duration::from_secs(10); // 50 s after a's last heartbeat
        let r = call(&mut s, &beat("b", b.member_epoch, Some(vec![])), now).unwrap();
        assert_eq!(r.member_epoch, 3);
        let got: Vec<i32> = r.assignment.unwrap().topic_partitions[0].partitions.clone();
        assert_eq!(got, vec![0, 1, 2, 3]);
        let e = call(&mut s, &beat("a", 1, Some(vec![0, 1, 2, 3])), now).unwrap_err();
        assert_eq!(e.0, ErrorCode::UNKNOWN_MEMBER_ID);
        assert_eq!(
            validate_commit(&s, "g", "a", 1),
            Some(Err(ErrorCode::UNKNOWN_MEMBER_ID))
        );
        assert_eq!(validate_commit(&s, "g", "b", 3), Some(Ok(())));
        assert_eq!(
            validate_commit(&s, "g", "b", 2),
            Some(Err(ErrorCode::STALE_MEMBER_EPOCH))
        );
        assert_eq!(
            validate_commit(&s, "g", "", -1),
            Some(Err(ErrorCode::UNKNOWN_MEMBER_ID))
        );
        assert_eq!(validate_commit(&s, "other", "", -1), None);
    }

    #[test]
    fn a_member_that_does_not_revoke_in_time_is_fenced() {
        let mut s = state();
        let t0 = Instant::now();
        call(&mut s, &join("a"), t0).unwrap();
        call(&mut s, &beat("a", 1, Some(vec![0, 1, 2, 3])), t0).unwrap();
        call(&mut s, &join("b"), t0).unwrap();
        // a learns it must revoke two; its rebalance timeout is 1 s.
        let r = call(&mut s, &beat("a", 1, Some(vec![0, 1, 2, 3])), t0).unwrap();
        assert_eq!(r.member_epoch, 1);
        let later = t0 + Duration::from_secs(2);
        let r = call(&mut s, &beat("b", 2, Some(vec![])), later).unwrap();
        assert_eq!(r.member_epoch, 3);
        assert_eq!(
            r.assignment.unwrap().topic_partitions[0].partitions.len(),
            4
        );
        let e = call(&mut s, &beat("a", 1, Some(vec![0, 1])), later).unwrap_err();
        assert_eq!(e.0, ErrorCode::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn previous_epoch_is_accepted_with_a_subset() {
        let mut s = state();
        let t0 = Instant::now();
        call(&mut s, &join("a"), t0).unwrap();
        call(&mut s, &beat("a", 1, Some(vec![0, 1, 2, 3])), t0).unwrap();
        // A new partition count bumps the epoch: a moves to epoch 2.
        s.topics.get_mut("t").unwrap().partitions.pop();
        let r = call(&mut s, &beat("a", 1, Some(vec![0, 1, 2])), t0).unwrap();
        assert_eq!(r.member_epoch, 2);
        // The answer was lost: epoch 1 again, with a subset, is fine.
        let r = call(&mut s, &beat("a", 1, Some(vec![0, 1, 2])), t0).unwrap();
        assert_eq!(r.member_epoch, 2);
        let e = call(&mut s, &beat("a", 1, Some(vec![3])), t0).unwrap_err();
        assert_eq!(e.0, ErrorCode::FENCED_MEMBER_EPOCH);
    }
}
