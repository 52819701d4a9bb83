//! The classic group coordinator: FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, ListGroups, DescribeGroups. Written from
//! Kafka's `GroupMetadataManager.java` (the `classicGroup*` methods),
//! `GroupCoordinatorService.java` (the checks before them) and
//! `KafkaApis.scala` (FindCoordinator, version handling); the group
//! itself is [`classic_group`](crate::classic_group).
//!
//! Like the broker's coordinator (one thread per `__consumer_offsets`
//! partition), every change happens under the cluster's state lock. A
//! JoinGroup or SyncGroup that must wait parks a oneshot sender in its
//! member and awaits the receiver with the lock released; whoever
//! completes the rebalance answers it.
//!
//! Timers (session, rebalance, sync and initial-delay timeouts) are
//! entries in their group with a deadline; each is watched by a tokio
//! task that sleeps until the deadline (tokio time, so a paused clock
//! drives them), re-checks it under the lock and fires it. Rescheduling
//! a heartbeat only moves the deadline.
//!
//! Differences from the broker, on purpose:
//! - Defaults of [`GroupSettings`]: `group.initial.rebalance.delay.ms` 0
//!   and `group.min.session.timeout.ms` 1000, as in Kafka's shipped
//!   `config/server.properties` (delay 0 "for development and testing")
//!   and this project's test brokers (scripts/kafka-server.properties),
//!   so tests need not wait 3 s. The broker defaults are 3000 and 6000.
//! - Member ids are `<client id or instance id>-<counter as a UUID>`,
//!   not random, for determinism; client hosts are `/127.0.0.1`.
//! - A classic JoinGroup for a KIP-848 consumer group is refused with
//!   INCONSISTENT_GROUP_PROTOCOL (the broker's answer for a group of
//!   another type); the online migration of classic members into a
//!   consumer group (KIP-848 upgrade path) is not simulated. SyncGroup,
//!   Heartbeat and LeaveGroup for such a group answer UNKNOWN_MEMBER_ID.
//! - Transactions are out of scope: FindCoordinator for a transactional
//!   id answers COORDINATOR_NOT_AVAILABLE.

use std::sync::{Arc, Weak};
use std::time::Duration;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use skotch_protocol::messages::find_coordinator_response::Coordinator;
use skotch_protocol::messages::leave_group_response::MemberResponse;
use skotch_protocol::messages::list_groups_response::ListedGroup;
use skotch_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use std::collections::BTreeMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::broker::{Broker, Shared};
use crate::classic_group::{
    join_error, sync_error, ClassicGroup, GroupState, Member, Timer, TimerAction, TimerKey,
};
use crate::offsets::Offsets;
use crate::state::State;

/// The broker's `group.*` settings the coordinator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupSettings {
    /// `group.initial.rebalance.delay.ms` (broker default 3000; 0 here,
    /// see the module docs).
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (broker default 6000; 1000 here).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (broker default 1800000).
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (broker default unlimited).
    pub max_size: usize,
    /// How long a new member's JoinGroup may wait before it is dropped
    /// (`CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS`, 5 minutes).
    pub new_member_join_timeout_ms: i64,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 1000,
            max_session_timeout_ms: 1_800_000,
            max_size: usize::MAX,
            new_member_join_timeout_ms: 5 * 60 * 1000,
        }
    }
}

/// A timer task to start once the state lock is released.
#[derive(Debug)]
pub(crate) struct TimerSpawn {
    group: String,
    key: TimerKey,
    token: u64,
    deadline: Instant,
}

/// Counters and timer bookkeeping shared by every group.
#[derive(Debug, Default)]
struct Timers {
    next_token: u64,
    spawns: Vec<TimerSpawn>,
    /// Member ids handed out (feeds the next one).
    members_created: u64,
}

impl Timers {
    /// A fresh member id: `prefix-<UUID-shaped counter>` (the broker's
    /// `generateMemberId` uses a random UUID).
    fn new_member_id(&mut self, prefix: &str) -> String {
        self.members_created += 1;
        let n = self.members_created;
        format!("{prefix}-00000000-0000-4000-8000-{n:012x}")
    }
}

/// Every classic group, by group id, and the committed offsets of every
/// group (classic, simple or KIP-848: the broker keeps them in the same
/// `__consumer_offsets` partitions).
#[derive(Debug, Default)]
pub(crate) struct Groups {
    groups: BTreeMap<String, ClassicGroup>,
    /// Committed offsets ([`offsets`](crate::offsets)).
    pub offsets: Offsets,
    /// The coordinator settings.
    pub settings: GroupSettings,
    timers: Timers,
    /// Brokers that coordinated each group last (to notice a move).
    coordinated_by: BTreeMap<String, i32>,
}

/// What a group operation may touch besides its group.
struct Cx<'a> {
    timers: &'a mut Timers,
    settings: GroupSettings,
    now: Instant,
}

impl Groups {
    /// Split into a group and the context.
    fn split(&mut self, group: &str) -> Option<(&mut ClassicGroup, Cx<'_>)> {
        let settings = self.settings;
        let g = self.groups.get_mut(group)?;
        Some((
            g,
            Cx {
                timers: &mut self.timers,
                settings,
                now: Instant::now(),
            },
        ))
    }

    /// The classic group `id`, if any.
    pub fn get(&self, id: &str) -> Option<&ClassicGroup> {
        self.groups.get(id)
    }

    /// Create the group if absent (a simple group of manual commits, or a
    /// first JoinGroup).
    pub fn get_or_create(&mut self, id: &str) -> &mut ClassicGroup {
        self.groups
            .entry(id.to_string())
            .or_insert_with(|| ClassicGroup::new(id))
    }

    /// The session of a member was kept alive by a request other than a
    /// heartbeat (OffsetCommit in Stable or PreparingRebalance,
    /// `OffsetMetadataManager.commitOffset`).
    pub fn touch_member(&mut self, group: &str, member: &str) {
        if let Some((g, mut cx)) = self.split(group) {
            if let Some(timeout) = g.member(member).map(|m| m.session_timeout_ms) {
                reschedule_heartbeat(g, &mut cx, member, i64::from(timeout));
            }
        }
    }
}

// ----- timers -----

/// Schedule (or move) the timer `key` of `g` to fire `after_ms` from now.
fn schedule(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    key: TimerKey,
    after_ms: i64,
    action: TimerAction,
) {
    // At most 30 days ahead (a session timeout is at most 30 minutes, a
    // rebalance timeout an i32 of milliseconds): no Instant overflow.
    let after = Duration::from_millis(after_ms.clamp(0, 30 * 24 * 3600 * 1000) as u64);
    let deadline = cx.now + after;
    if let Some(t) = g.timers.get_mut(&key) {
        if deadline >= t.deadline {
            // The task watching it wakes at the old deadline and sleeps
            // on to this one.
            t.deadline = deadline;
            t.action = action;
            return;
        }
    }
    cx.timers.next_token += 1;
    let token = cx.timers.next_token;
    g.timers.insert(
        key.clone(),
        Timer {
            deadline,
            token,
            action,
        },
    );
    cx.timers.spawns.push(TimerSpawn {
        group: g.id.clone(),
        key,
        token,
        deadline,
    });
}

fn cancel(g: &mut ClassicGroup, key: &TimerKey) {
    g.timers.remove(key);
}

/// `rescheduleClassicGroupMemberHeartbeat`.
fn reschedule_heartbeat(g: &mut ClassicGroup, cx: &mut Cx<'_>, member: &str, timeout_ms: i64) {
    schedule(
        g,
        cx,
        TimerKey::Heartbeat(member.to_string()),
        timeout_ms,
        TimerAction::ExpireHeartbeat,
    );
}

/// Start the tasks for timers scheduled while the lock was held.
pub(crate) fn spawn_timers(shared: &Arc<Shared>, spawns: Vec<TimerSpawn>) {
    for s in spawns {
        let weak = Arc::downgrade(shared);
        tokio::spawn(timer_task(weak, s));
    }
}

/// Take the timers scheduled under the lock, to spawn after it.
pub(crate) fn take_spawns(state: &mut State) -> Vec<TimerSpawn> {
    std::mem::take(&mut state.groups.timers.spawns)
}

/// Watch one timer until it fires, is cancelled or the cluster is gone.
async fn timer_task(shared: Weak<Shared>, spawn: TimerSpawn) {
    let mut deadline = spawn.deadline;
    loop {
        tokio::time::sleep_until(deadline).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let spawns = {
            let mut state = shared.state();
            let groups = &mut state.groups;
            let Some((g, mut cx)) = groups.split(&spawn.group) else {
                return;
            };
            let action = match g.timers.get(&spawn.key) {
                Some(t) if t.token == spawn.token => {
                    if t.deadline > cx.now {
                        deadline = t.deadline;
                        None
                    } else {
                        Some(t.action)
                    }
                }
                _ => return,
            };
            let Some(action) = action else {
                continue;
            };
            g.timers.remove(&spawn.key);
            fire(g, &mut cx, &spawn.key, action);
            take_spawns(&mut state)
        };
        spawn_timers(&shared, spawns);
        return;
    }
}

/// A timer ran out.
fn fire(g: &mut ClassicGroup, cx: &mut Cx<'_>, key: &TimerKey, action: TimerAction) {
    match action {
        TimerAction::CompleteJoin => complete_join(g, cx),
        TimerAction::InitialRebalance {
            delay_ms,
            remaining_ms,
        } => try_complete_initial_rebalance(g, cx, delay_ms, remaining_ms),
        TimerAction::ExpireSync { generation } => expire_pending_sync(g, cx, generation),
        TimerAction::ExpireHeartbeat => {
            if let TimerKey::Heartbeat(member) = key {
                expire_heartbeat(g, cx, member);
            }
        }
    }
}

// ----- the state machine (GroupMetadataManager.java) -----

/// `tryCompleteInitialRebalanceElseSchedule`: while members keep
/// arriving, extend the initial delay up to the rebalance timeout.
fn try_complete_initial_rebalance(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    delay_ms: i64,
    remaining_ms: i64,
) {
    if g.new_member_added && remaining_ms != 0 {
        g.new_member_added = false;
        let new_delay = cx.settings.initial_rebalance_delay_ms.min(remaining_ms);
        let new_remaining = (remaining_ms - delay_ms).max(0);
        schedule(
            g,
            cx,
            TimerKey::Join,
            new_delay,
            TimerAction::InitialRebalance {
                delay_ms: new_delay,
                remaining_ms: new_remaining,
            },
        );
    } else {
        complete_join(g, cx);
    }
}

/// `expireClassicGroupMemberHeartbeat`.
fn expire_heartbeat(g: &mut ClassicGroup, cx: &mut Cx<'_>, member: &str) {
    if g.state == GroupState::Dead {
        return;
    }
    if g.pending_join.contains(member) {
        // A member id handed out with MEMBER_ID_REQUIRED that never came
        // back (`removePendingMemberAndUpdateClassicGroup`).
        g.remove(member);
        if g.state == GroupState::PreparingRebalance && g.all_joined() {
            complete_join(g, cx);
        }
        return;
    }
    let Some(m) = g.member(member) else {
        return;
    };
    if !m.has_satisfied_heartbeat() {
        remove_member_and_update(g, cx, member);
    }
}

/// `removeMemberAndUpdateClassicGroup`: a member whose session expired.
fn remove_member_and_update(g: &mut ClassicGroup, cx: &mut Cx<'_>, member: &str) {
    if let Some(m) = g.member_mut(member) {
        m.complete_join(join_error(ErrorCode::UNKNOWN_MEMBER_ID, ""));
    }
    g.remove(member);
    match g.state {
        GroupState::Stable | GroupState::CompletingRebalance => {
            maybe_prepare_rebalance_or_complete_join(g, cx)
        }
        GroupState::PreparingRebalance if g.all_joined() => complete_join(g, cx),
        _ => {}
    }
}

/// `maybePrepareRebalanceOrCompleteJoin`.
fn maybe_prepare_rebalance_or_complete_join(g: &mut ClassicGroup, cx: &mut Cx<'_>) {
    if g.can_rebalance() {
        prepare_rebalance(g, cx);
    } else {
        maybe_complete_join_phase(g, cx);
    }
}

/// `prepareRebalance`.
fn prepare_rebalance(g: &mut ClassicGroup, cx: &mut Cx<'_>) {
    if g.state == GroupState::CompletingRebalance {
        reset_and_propagate_assignment_with_error(g, cx, ErrorCode::REBALANCE_IN_PROGRESS);
    }
    // removeSyncExpiration
    g.pending_sync.clear();
    cancel(g, &TimerKey::Sync);
    let initial = g.state == GroupState::Empty;
    if initial {
        // A new group: give more members time to join
        // (group.initial.rebalance.delay.ms).
        let delay = cx.settings.initial_rebalance_delay_ms;
        let remaining = (g.rebalance_timeout_ms() - delay).max(0);
        schedule(
            g,
            cx,
            TimerKey::Join,
            delay,
            TimerAction::InitialRebalance {
                delay_ms: delay,
                remaining_ms: remaining,
            },
        );
    }
    g.transition(GroupState::PreparingRebalance);
    if !initial {
        // maybeCompleteJoinElseSchedule
        if g.all_joined() {
            complete_join(g, cx);
        } else {
            let timeout = g.rebalance_timeout_ms();
            schedule(g, cx, TimerKey::Join, timeout, TimerAction::CompleteJoin);
        }
    }
}

/// `maybeCompleteJoinPhase`: not during the initial delay.
fn maybe_complete_join_phase(g: &mut ClassicGroup, cx: &mut Cx<'_>) {
    if g.state == GroupState::PreparingRebalance
        && g.previous_state != GroupState::Empty
        && g.all_joined()
    {
        complete_join(g, cx);
    }
}

/// `completeClassicGroupJoin`: dynamic members that did not rejoin are
/// removed, the next generation starts and every parked JoinGroup is
/// answered (the leader gets the members).
fn complete_join(g: &mut ClassicGroup, cx: &mut Cx<'_>) {
    cancel(g, &TimerKey::Join);
    let gone: Vec<String> = g
        .members
        .iter()
        .filter(|m| m.join.is_none() && m.instance_id.is_none())
        .map(|m| m.id.clone())
        .collect();
    for id in gone {
        g.remove(&id);
    }
    if g.state == GroupState::Dead {
        return;
    }
    if !g.maybe_elect_new_joined_leader() && !g.members.is_empty() {
        // Nobody rejoined: wait another rebalance timeout, until session
        // timeouts remove the silent members.
        let timeout = g.rebalance_timeout_ms();
        schedule(g, cx, TimerKey::Join, timeout, TimerAction::CompleteJoin);
        return;
    }
    g.init_next_generation();
    if g.state == GroupState::Empty {
        return;
    }
    let ids: Vec<String> = g.members.iter().map(|m| m.id.clone()).collect();
    for id in ids {
        let answer = g.join_answer(&id, g.is_leader(&id));
        let mut timeout = 0;
        if let Some(m) = g.member_mut(&id) {
            m.complete_join(answer);
            m.is_new = false;
            timeout = m.session_timeout_ms;
        }
        reschedule_heartbeat(g, cx, &id, i64::from(timeout));
        g.pending_sync.insert(id);
    }
    // schedulePendingSync
    let (timeout, generation) = (g.rebalance_timeout_ms(), g.generation);
    schedule(
        g,
        cx,
        TimerKey::Sync,
        timeout,
        TimerAction::ExpireSync { generation },
    );
}

/// `expirePendingSync`: members that did not send SyncGroup within the
/// rebalance timeout are removed and the group rebalances.
fn expire_pending_sync(g: &mut ClassicGroup, cx: &mut Cx<'_>, generation: i32) {
    if generation != g.generation
        || !matches!(
            g.state,
            GroupState::CompletingRebalance | GroupState::Stable
        )
        || g.pending_sync.is_empty()
    {
        return;
    }
    let late: Vec<String> = g.pending_sync.iter().cloned().collect();
    for id in late {
        g.remove(&id);
    }
    prepare_rebalance(g, cx);
}

/// `resetAndPropagateAssignmentWithError`.
fn reset_and_propagate_assignment_with_error(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    code: ErrorCode,
) {
    for m in &mut g.members {
        m.assignment = Default::default();
    }
    propagate_assignment(g, cx, code);
}

/// `propagateAssignment`: answer every parked SyncGroup.
fn propagate_assignment(g: &mut ClassicGroup, cx: &mut Cx<'_>, code: ErrorCode) {
    let ok = code == ErrorCode::NONE;
    let (ptype, pname) = if ok {
        (g.protocol_type.clone(), g.protocol_name.clone())
    } else {
        (None, None)
    };
    let mut answered = Vec::new();
    for m in &mut g.members {
        let resp = SyncGroupResponse {
            error_code: code.code(),
            protocol_type: ptype.clone(),
            protocol_name: pname.clone(),
            assignment: m.assignment.clone(),
            ..Default::default()
        };
        if m.complete_sync(resp) {
            answered.push((m.id.clone(), m.session_timeout_ms));
        }
    }
    // The session restarts once the assignment is out.
    for (id, timeout) in answered {
        reschedule_heartbeat(g, cx, &id, i64::from(timeout));
    }
}

/// `removePendingSyncMember`.
fn remove_pending_sync_member(g: &mut ClassicGroup, member: &str) {
    g.pending_sync.remove(member);
    let done = match g.state {
        GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => true,
        GroupState::CompletingRebalance | GroupState::Stable => g.pending_sync.is_empty(),
    };
    if done {
        cancel(g, &TimerKey::Sync);
    }
}

// ----- JoinGroup -----

/// What a JoinGroup handler needs from the request beyond its body.
struct JoinCtx<'a> {
    req: &'a JoinGroupRequest,
    version: i16,
    client_id: &'a str,
    /// `rebalance_timeout_ms`, or the session timeout for v0.
    rebalance_timeout_ms: i32,
}

/// `classicGroupJoinToClassicGroup`; the answer goes to `tx` (now or
/// when the rebalance completes).
fn join_classic(groups: &mut Groups, j: &JoinCtx<'_>, tx: oneshot::Sender<JoinGroupResponse>) {
    let req = j.req;
    let unknown = req.member_id.is_empty();
    if !unknown && groups.get(&req.group_id).is_none() {
        // The group is only created by a member without id.
        let _ = tx.send(join_error(ErrorCode::UNKNOWN_MEMBER_ID, &req.member_id));
        return;
    }
    groups.get_or_create(&req.group_id);
    let Some((g, mut cx)) = groups.split(&req.group_id) else {
        return;
    };
    let cx = &mut cx;
    if !accept_joining_member(g, cx, &req.member_id) {
        g.remove(&req.member_id);
        let _ = tx.send(join_error(ErrorCode::GROUP_MAX_SIZE_REACHED, ""));
        return;
    }
    if unknown {
        join_new_member(g, cx, j, tx);
    } else {
        join_existing_member(g, cx, j, tx);
    }
}

/// `acceptJoiningMember`: `group.max.size`.
fn accept_joining_member(g: &ClassicGroup, cx: &Cx<'_>, member: &str) -> bool {
    let max = cx.settings.max_size;
    match g.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            g.member(member).is_some_and(|m| m.join.is_some()) || g.awaiting_join() < max
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            g.has_member(member) || g.members.len() < max
        }
    }
}

/// `classicGroupJoinNewMember`.
fn join_new_member(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    j: &JoinCtx<'_>,
    tx: oneshot::Sender<JoinGroupResponse>,
) {
    let req = j.req;
    if g.state == GroupState::Dead {
        let _ = tx.send(join_error(ErrorCode::COORDINATOR_NOT_AVAILABLE, ""));
        return;
    }
    if !g.supports_protocols(&req.protocol_type, &req.protocols) {
        let _ = tx.send(join_error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL, ""));
        return;
    }
    let prefix = req.group_instance_id.as_deref().unwrap_or(j.client_id);
    let new_id = cx.timers.new_member_id(prefix);
    if let Some(instance) = &req.group_instance_id {
        // classicGroupJoinNewStaticMember (KIP-345): a known instance
        // replaces its old member id.
        match g.static_members.get(instance).cloned() {
            Some(old) => update_static_member(g, cx, j, &old, new_id, tx),
            None => add_member_then_rebalance(g, cx, j, new_id, tx),
        }
    } else if j.version >= 4 {
        // KIP-394 (JoinGroupRequest.requiresKnownMemberId): hand out the
        // id and wait for the member to come back with it within its
        // session timeout.
        g.pending_join.insert(new_id.clone());
        reschedule_heartbeat(g, cx, &new_id, i64::from(req.session_timeout_ms));
        let _ = tx.send(join_error(ErrorCode::MEMBER_ID_REQUIRED, &new_id));
    } else {
        add_member_then_rebalance(g, cx, j, new_id, tx);
    }
}

/// `classicGroupJoinExistingMember`.
fn join_existing_member(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    j: &JoinCtx<'_>,
    tx: oneshot::Sender<JoinGroupResponse>,
) {
    let req = j.req;
    let id = req.member_id.clone();
    if g.state == GroupState::Dead {
        let _ = tx.send(join_error(ErrorCode::COORDINATOR_NOT_AVAILABLE, &id));
        return;
    }
    if !g.supports_protocols(&req.protocol_type, &req.protocols) {
        let _ = tx.send(join_error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL, &id));
        return;
    }
    if g.pending_join.contains(&id) {
        if req.group_instance_id.is_some() {
            // The broker throws IllegalStateException: a pending member
            // is never static.
            let _ = tx.send(join_error(ErrorCode::UNKNOWN_SERVER_ERROR, &id));
            return;
        }
        add_member_then_rebalance(g, cx, j, id, tx);
        return;
    }
    if let Err(code) = g.validate_member(&id, req.group_instance_id.as_deref()) {
        let mut resp = join_error(code, &id);
        resp.protocol_name = None;
        let _ = tx.send(resp);
        return;
    }
    let matches = g.member(&id).is_some_and(|m| m.matches(&req.protocols));
    match g.state {
        GroupState::PreparingRebalance => update_member_then_rebalance(g, cx, j, &id, tx),
        GroupState::CompletingRebalance => {
            if matches {
                // The member lost the first answer: send it again.
                let _ = tx.send(g.join_answer(&id, g.is_leader(&id)));
            } else {
                update_member_then_rebalance(g, cx, j, &id, tx);
            }
        }
        GroupState::Stable => {
            if g.is_leader(&id) || !matches {
                // A leader's JoinGroup forces a rebalance (so it can
                // react to metadata changes); so does changed metadata.
                update_member_then_rebalance(g, cx, j, &id, tx);
            } else {
                let _ = tx.send(g.join_answer(&id, false));
            }
        }
        GroupState::Empty | GroupState::Dead => {
            let _ = tx.send(join_error(ErrorCode::UNKNOWN_MEMBER_ID, &id));
        }
    }
}

/// `updateMember` + `maybePrepareRebalanceOrCompleteJoin`.
fn update_member_then_rebalance(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    j: &JoinCtx<'_>,
    id: &str,
    tx: oneshot::Sender<JoinGroupResponse>,
) {
    if let Some(m) = g.member_mut(id) {
        m.protocols = j.req.protocols.clone();
        m.rebalance_timeout_ms = j.rebalance_timeout_ms;
        m.session_timeout_ms = j.req.session_timeout_ms;
        // A JoinGroup already parked for this member is replaced (its
        // waiter answers UNKNOWN_MEMBER_ID).
        m.join = Some(tx);
    }
    maybe_prepare_rebalance_or_complete_join(g, cx);
}

/// `addMemberThenRebalanceOrCompleteJoin`.
fn add_member_then_rebalance(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    j: &JoinCtx<'_>,
    id: String,
    tx: oneshot::Sender<JoinGroupResponse>,
) {
    let req = j.req;
    if g.state == GroupState::PreparingRebalance && g.previous_state == GroupState::Empty {
        // The initial rebalance delay may be extended.
        g.new_member_added = true;
    }
    g.add(Member {
        id: id.clone(),
        instance_id: req.group_instance_id.clone(),
        client_id: j.client_id.to_string(),
        client_host: CLIENT_HOST.to_string(),
        rebalance_timeout_ms: j.rebalance_timeout_ms,
        session_timeout_ms: req.session_timeout_ms,
        protocol_type: req.protocol_type.clone(),
        protocols: req.protocols.clone(),
        assignment: Default::default(),
        join: Some(tx),
        sync: None,
        is_new: true,
    });
    // A new member cannot heartbeat while its JoinGroup is parked; its
    // JoinGroup times out after the new-member join timeout instead.
    let timeout = cx.settings.new_member_join_timeout_ms;
    reschedule_heartbeat(g, cx, &id, timeout);
    maybe_prepare_rebalance_or_complete_join(g, cx);
}

/// `updateStaticMemberThenRebalanceOrCompleteJoin` (KIP-345): the
/// instance's new member id takes the old one's place; the old id is
/// fenced (FENCED_INSTANCE_ID to its parked requests and from now on).
fn update_static_member(
    g: &mut ClassicGroup,
    cx: &mut Cx<'_>,
    j: &JoinCtx<'_>,
    old_id: &str,
    new_id: String,
    tx: oneshot::Sender<JoinGroupResponse>,
) {
    let req = j.req;
    let current_leader = g.leader.clone();
    // replaceStaticMember
    let Some(m) = g.member_mut(old_id) else {
        let _ = tx.send(join_error(ErrorCode::UNKNOWN_SERVER_ERROR, ""));
        return;
    };
    m.complete_join(JoinGroupResponse {
        error_code: ErrorCode::FENCED_INSTANCE_ID.code(),
        member_id: old_id.to_string(),
        protocol_name: None,
        ..Default::default()
    });
    m.complete_sync(sync_error(ErrorCode::FENCED_INSTANCE_ID));
    m.id = new_id.clone();
    m.is_new = false;
    if let Some(instance) = &req.group_instance_id {
        g.static_members.insert(instance.clone(), new_id.clone());
    }
    if g.is_leader(old_id) {
        g.leader = Some(new_id.clone());
    }
    g.timers.remove(&TimerKey::Heartbeat(old_id.to_string()));
    g.pending_sync.remove(old_id);
    let session = g.member(&new_id).map_or(0, |m| m.session_timeout_ms);
    reschedule_heartbeat(g, cx, &new_id, i64::from(session));
    // updateMember
    if let Some(m) = g.member_mut(&new_id) {
        m.protocols = req.protocols.clone();
        m.rebalance_timeout_ms = j.rebalance_timeout_ms;
        m.session_timeout_ms = req.session_timeout_ms;
        m.join = Some(tx);
    }
    match g.state {
        GroupState::Stable => {
            if g.protocol_name == g.select_protocol() {
                // The selected protocol stays: no rebalance, the new
                // member id takes over the old assignment.
                let answer = if j.version >= 9 {
                    // KIP-814: the leader skips the assignment.
                    let leader = g.is_leader(&new_id);
                    let mut a = g.join_answer(&new_id, leader);
                    a.skip_assignment = leader;
                    a
                } else {
                    let mut a = g.join_answer(&new_id, false);
                    a.leader = current_leader.unwrap_or_default();
                    a
                };
                if let Some(m) = g.member_mut(&new_id) {
                    m.complete_join(answer);
                }
            } else {
                maybe_prepare_rebalance_or_complete_join(g, cx);
            }
        }
        // The leader may already have the old member id to assign to.
        GroupState::CompletingRebalance => prepare_rebalance(g, cx),
        GroupState::PreparingRebalance => maybe_complete_join_phase(g, cx),
        GroupState::Empty | GroupState::Dead => {
            if let Some(m) = g.member_mut(&new_id) {
                m.complete_join(join_error(ErrorCode::UNKNOWN_SERVER_ERROR, ""));
            }
        }
    }
}

/// Every member's client host (the mock serves 127.0.0.1 and in-memory
/// streams; the broker prints the peer address as `/ip`).
const CLIENT_HOST: &str = "/127.0.0.1";

// ----- handlers -----

/// The coordinator of `group` is this broker; NOT_COORDINATOR otherwise.
/// A group whose coordinator changed is reloaded first (see
/// [`reload_if_moved`]).
pub(crate) fn check_coordinator(
    broker: &Broker,
    state: &mut State,
    group: &str,
) -> Result<(), ErrorCode> {
    let brokers = broker.shared.broker_ids();
    match state.coordinator(&brokers, group) {
        Some(c) if c == broker.node_id => {
            reload_if_moved(state, group, c);
            Ok(())
        }
        _ => Err(ErrorCode::NOT_COORDINATOR),
    }
}

/// When a group's coordinator changes the old one unloads it (answering
/// parked requests NOT_COORDINATOR, `GroupMetadataManager.onUnloaded`)
/// and the new one loads it from `__consumer_offsets`, where it was last
/// written Stable (after the leader's SyncGroup) or Empty: a rebalance in
/// progress is lost and the members rejoin. Done lazily on the new
/// coordinator's first request for the group.
fn reload_if_moved(state: &mut State, group: &str, coordinator: i32) {
    let groups = &mut state.groups;
    if groups.get(group).is_none() {
        // Nothing to reload (and nothing remembered for names that are
        // only asked about).
        return;
    }
    let previous = groups.coordinated_by.insert(group.to_string(), coordinator);
    if previous.is_none() || previous == Some(coordinator) {
        return;
    }
    let Some((g, mut cx)) = groups.split(group) else {
        return;
    };
    answer_not_coordinator(g);
    g.pending_join.clear();
    g.pending_sync.clear();
    g.timers.clear();
    g.new_member_added = false;
    // onLoaded: every member's session restarts.
    let sessions: Vec<(String, i32)> = g
        .members
        .iter()
        .map(|m| (m.id.clone(), m.session_timeout_ms))
        .collect();
    for (id, timeout) in sessions {
        reschedule_heartbeat(g, &mut cx, &id, i64::from(timeout));
    }
    // The broker reloads the group as last written (Stable at the last
    // synced generation); the mock keeps a rebalance in progress going
    // instead, with every member to rejoin (their parked requests were
    // answered NOT_COORDINATOR), so that no member is left with an
    // assignment of a generation that never completed.
    match g.state {
        GroupState::PreparingRebalance if g.previous_state == GroupState::Empty => {
            let delay = cx.settings.initial_rebalance_delay_ms;
            let remaining = (g.rebalance_timeout_ms() - delay).max(0);
            schedule(
                g,
                &mut cx,
                TimerKey::Join,
                delay,
                TimerAction::InitialRebalance {
                    delay_ms: delay,
                    remaining_ms: remaining,
                },
            );
        }
        GroupState::PreparingRebalance => {
            let timeout = g.rebalance_timeout_ms();
            schedule(
                g,
                &mut cx,
                TimerKey::Join,
                timeout,
                TimerAction::CompleteJoin,
            );
        }
        GroupState::CompletingRebalance => prepare_rebalance(g, &mut cx),
        _ => {}
    }
}

/// Answer every parked JoinGroup and SyncGroup of `g` NOT_COORDINATOR.
fn answer_not_coordinator(g: &mut ClassicGroup) {
    for m in &mut g.members {
        let id = m.id.clone();
        m.complete_join(join_error(ErrorCode::NOT_COORDINATOR, &id));
        m.complete_sync(sync_error(ErrorCode::NOT_COORDINATOR));
    }
}

/// Answer a coordinator's parked requests NOT_COORDINATOR when its group
/// moves (for [`MockCluster::move_coordinator`](crate::MockCluster::move_coordinator)
/// and a coordinator going down; `onUnloaded`). The new coordinator
/// reloads the group on its first request.
pub(crate) fn unload(state: &mut State, group: &str) {
    if let Some((g, _)) = state.groups.split(group) {
        answer_not_coordinator(g);
    }
}

/// For the KIP-848 coordinator: whether `group` is taken by a classic
/// group with members (a consumer group cannot have that id: the broker
/// answers GROUP_ID_NOT_FOUND, "Group .. is not a consumer group"). An
/// empty classic group gives way: it is deleted so that the consumer
/// group can take the id (`maybeDeleteEmptyClassicGroup`); its committed
/// offsets stay.
pub(crate) fn taken_by_classic_group(state: &mut State, group: &str) -> bool {
    let groups = &mut state.groups;
    match groups.groups.get(group) {
        None => false,
        Some(g) if g.state == GroupState::Empty => {
            groups.groups.remove(group);
            groups.coordinated_by.remove(group);
            false
        }
        Some(_) => true,
    }
}

/// FindCoordinator: the broker coordinating each key (KIP-699 batches
/// keys from v4; `KafkaApis.getCoordinator`).
pub(crate) fn find_coordinator(
    broker: &Broker,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let injected = crate::fault::injected_error(broker, ApiKey::FindCoordinator, None);
    let keys: Vec<String> = if version < 4 {
        vec![req.key.clone()]
    } else {
        req.coordinator_keys.clone()
    };
    let brokers = broker.shared.broker_ids();
    let state = broker.shared.state();
    let results: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let found = match (injected, req.key_type) {
                (Some(code), _) => Err(code),
                // A group: `partitionFor(group)`'s leader. The broker does
                // not refuse an empty group id here.
                (None, 0) => state
                    .coordinator(&brokers, &key)
                    .and_then(|id| broker.shared.brokers.iter().find(|b| b.node_id == id))
                    .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE),
                // Transactions are out of scope for the mock.
                (None, 1) => Err(ErrorCode::COORDINATOR_NOT_AVAILABLE),
                // Share groups (KIP-932) are not simulated: as a broker
                // without a share coordinator (or before v6).
                (None, _) => Err(ErrorCode::INVALID_REQUEST),
            };
            match found {
                Ok(b) => Coordinator {
                    key,
                    node_id: b.node_id,
                    host: b.host.clone(),
                    port: i32::from(b.port),
                    error_code: 0,
                    error_message: None,
                },
                // Node.noNode(); the message only in the pre-KIP-699
                // answer (`FindCoordinatorResponse.prepareOldResponse`).
                Err(code) => Coordinator {
                    key,
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                    error_code: code.code(),
                    error_message: (version < 4).then(|| code.description().to_string()),
                },
            }
        })
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse {
            coordinators: results,
            ..Default::default()
        };
    }
    let c = results.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse {
        error_code: c.error_code,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..Default::default()
    }
}

/// The answer of a JoinGroup as the version can carry it
/// (`JoinGroupResponse`'s constructor: no null protocol name before v7,
/// no empty one from v7).
fn join_for_version(mut resp: JoinGroupResponse, version: i16) -> JoinGroupResponse {
    if version < 7 && resp.protocol_name.is_none() {
        resp.protocol_name = Some(String::new());
    }
    if version >= 7 && resp.protocol_name.as_deref() == Some("") {
        resp.protocol_name = None;
    }
    resp
}

/// JoinGroup: may wait for the rebalance to complete.
pub(crate) async fn join(
    broker: &Broker,
    req: &JoinGroupRequest,
    version: i16,
    client_id: Option<&str>,
) -> JoinGroupResponse {
    join_for_version(join_inner(broker, req, version, client_id).await, version)
}

async fn join_inner(
    broker: &Broker,
    req: &JoinGroupRequest,
    version: i16,
    client_id: Option<&str>,
) -> JoinGroupResponse {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::JoinGroup, None) {
        return join_error(code, &req.member_id);
    }
    // GroupCoordinatorService.joinGroup
    if req.group_id.is_empty() {
        return join_error(ErrorCode::INVALID_GROUP_ID, &req.member_id);
    }
    let (rx, spawns) = {
        let mut state = broker.shared.state();
        let settings = state.groups.settings;
        if req.session_timeout_ms < settings.min_session_timeout_ms
            || req.session_timeout_ms > settings.max_session_timeout_ms
        {
            return join_error(ErrorCode::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        if let Err(code) = check_coordinator(broker, &mut state, &req.group_id) {
            return join_error(code, &req.member_id);
        }
        if crate::consumer_group::exists(&state, &req.group_id) {
            // See the module docs.
            let spawns = take_spawns(&mut state);
            drop(state);
            spawn_timers(&broker.shared, spawns);
            return join_error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL, "");
        }
        let j = JoinCtx {
            req,
            version,
            client_id: client_id.unwrap_or(""),
            // JoinGroupRequest: v0 has no rebalance timeout; the session
            // timeout stands in.
            rebalance_timeout_ms: if version == 0 {
                req.session_timeout_ms
            } else {
                req.rebalance_timeout_ms
            },
        };
        let (tx, rx) = oneshot::channel();
        join_classic(&mut state.groups, &j, tx);
        (rx, take_spawns(&mut state))
    };
    spawn_timers(&broker.shared, spawns);
    // A dropped sender: the member was removed or sent another JoinGroup.
    rx.await
        .unwrap_or_else(|_| join_error(ErrorCode::UNKNOWN_MEMBER_ID, ""))
}

/// SyncGroup: a follower waits for the leader's assignment.
pub(crate) async fn sync(
    broker: &Broker,
    req: &SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::SyncGroup, None) {
        return sync_error(code);
    }
    if req.group_id.is_empty() {
        return sync_error(ErrorCode::INVALID_GROUP_ID);
    }
    // SyncGroupRequest.areMandatoryProtocolTypeAndNamePresent (v5+).
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return sync_error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    }
    let (rx, spawns) = {
        let mut state = broker.shared.state();
        if let Err(code) = check_coordinator(broker, &mut state, &req.group_id) {
            return sync_error(code);
        }
        let (tx, rx) = oneshot::channel();
        sync_classic(&mut state.groups, req, tx);
        (rx, take_spawns(&mut state))
    };
    spawn_timers(&broker.shared, spawns);
    rx.await
        .unwrap_or_else(|_| sync_error(ErrorCode::UNKNOWN_MEMBER_ID))
}

/// `isProtocolInconsistent`: both given and different.
fn inconsistent(asked: Option<&str>, group: Option<&str>) -> bool {
    matches!((asked, group), (Some(a), Some(g)) if a != g)
}

/// `classicGroupSync` / `classicGroupSyncToClassicGroup`.
fn sync_classic(
    groups: &mut Groups,
    req: &SyncGroupRequest,
    tx: oneshot::Sender<SyncGroupResponse>,
) {
    let Some((g, mut cx)) = groups.split(&req.group_id) else {
        let _ = tx.send(sync_error(ErrorCode::UNKNOWN_MEMBER_ID));
        return;
    };
    let cx = &mut cx;
    if g.state == GroupState::Empty {
        let _ = tx.send(sync_error(ErrorCode::UNKNOWN_MEMBER_ID));
        return;
    }
    // validateSyncGroup
    let invalid = if g.state == GroupState::Dead {
        Some(ErrorCode::COORDINATOR_NOT_AVAILABLE)
    } else if let Err(code) = g.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
        Some(code)
    } else if req.generation_id != g.generation {
        Some(ErrorCode::ILLEGAL_GENERATION)
    } else if inconsistent(req.protocol_type.as_deref(), g.protocol_type.as_deref())
        || inconsistent(req.protocol_name.as_deref(), g.protocol_name.as_deref())
    {
        Some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
    } else {
        None
    };
    if let Some(code) = invalid {
        let _ = tx.send(sync_error(code));
        return;
    }
    match g.state {
        GroupState::PreparingRebalance => {
            let _ = tx.send(sync_error(ErrorCode::REBALANCE_IN_PROGRESS));
        }
        GroupState::CompletingRebalance => {
            if let Some(m) = g.member_mut(&req.member_id) {
                m.sync = Some(tx);
            }
            remove_pending_sync_member(g, &req.member_id);
            if g.is_leader(&req.member_id) {
                // The leader's assignment; members it left out get an
                // empty one.
                let mut assigned: BTreeMap<&str, bytes::Bytes> = BTreeMap::new();
                for a in &req.assignments {
                    assigned.insert(a.member_id.as_str(), a.assignment.clone());
                }
                for m in &mut g.members {
                    m.assignment = assigned.get(m.id.as_str()).cloned().unwrap_or_default();
                }
                // setAndPropagateAssignment, once the group record is
                // written (at once here).
                propagate_assignment(g, cx, ErrorCode::NONE);
                g.transition(GroupState::Stable);
            }
        }
        GroupState::Stable => {
            remove_pending_sync_member(g, &req.member_id);
            let assignment = g
                .member(&req.member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default();
            let _ = tx.send(SyncGroupResponse {
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol_name.clone(),
                assignment,
                ..Default::default()
            });
        }
        GroupState::Empty | GroupState::Dead => {
            let _ = tx.send(sync_error(ErrorCode::UNKNOWN_MEMBER_ID));
        }
    }
}

/// Heartbeat (`classicGroupHeartbeatToClassicGroup`).
pub(crate) fn heartbeat(
    broker: &Broker,
    req: &HeartbeatRequest,
    _version: i16,
) -> HeartbeatResponse {
    let code = heartbeat_code(broker, req);
    HeartbeatResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

fn heartbeat_code(broker: &Broker, req: &HeartbeatRequest) -> ErrorCode {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::Heartbeat, None) {
        return code;
    }
    if req.group_id.is_empty() {
        return ErrorCode::INVALID_GROUP_ID;
    }
    let (code, spawns) = {
        let mut state = broker.shared.state();
        if let Err(code) = check_coordinator(broker, &mut state, &req.group_id) {
            return code;
        }
        let code = match state.groups.split(&req.group_id) {
            None => ErrorCode::UNKNOWN_MEMBER_ID,
            Some((g, mut cx)) => {
                if g.state == GroupState::Dead {
                    ErrorCode::COORDINATOR_NOT_AVAILABLE
                } else if let Err(code) =
                    g.validate_member(&req.member_id, req.group_instance_id.as_deref())
                {
                    code
                } else if req.generation_id != g.generation {
                    ErrorCode::ILLEGAL_GENERATION
                } else {
                    let timeout = g
                        .member(&req.member_id)
                        .map_or(0, |m| i64::from(m.session_timeout_ms));
                    match g.state {
                        GroupState::Empty | GroupState::Dead => ErrorCode::UNKNOWN_MEMBER_ID,
                        GroupState::PreparingRebalance => {
                            reschedule_heartbeat(g, &mut cx, &req.member_id, timeout);
                            ErrorCode::REBALANCE_IN_PROGRESS
                        }
                        // Heartbeats may start right after the JoinGroup
                        // answer.
                        GroupState::CompletingRebalance | GroupState::Stable => {
                            reschedule_heartbeat(g, &mut cx, &req.member_id, timeout);
                            ErrorCode::NONE
                        }
                    }
                }
            }
        };
        (code, take_spawns(&mut state))
    };
    spawn_timers(&broker.shared, spawns);
    code
}

/// LeaveGroup (`classicGroupLeaveToClassicGroup`): v3+ removes a batch
/// of members, by member id or, for static members, by instance id
/// (KIP-345).
pub(crate) fn leave(broker: &Broker, req: &LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    // LeaveGroupRequest.normalizedData
    let identities: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(req.member_id.clone(), None)]
    };
    let (top, members) = leave_inner(broker, req, &identities);
    // LeaveGroupResponse(data, version): before v3 the one member's error
    // is the top-level error.
    if version >= 3 {
        LeaveGroupResponse {
            error_code: top.code(),
            members,
            ..Default::default()
        }
    } else {
        let code = if top != ErrorCode::NONE {
            top.code()
        } else {
            members.first().map_or(0, |m| m.error_code)
        };
        LeaveGroupResponse {
            error_code: code,
            ..Default::default()
        }
    }
}

fn leave_inner(
    broker: &Broker,
    req: &LeaveGroupRequest,
    identities: &[(String, Option<String>)],
) -> (ErrorCode, Vec<MemberResponse>) {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::LeaveGroup, None) {
        return (code, Vec::new());
    }
    if req.group_id.is_empty() {
        return (ErrorCode::INVALID_GROUP_ID, Vec::new());
    }
    let response = |(id, instance): &(String, Option<String>), code: ErrorCode| MemberResponse {
        member_id: id.clone(),
        group_instance_id: instance.clone(),
        error_code: code.code(),
    };
    let (result, spawns) = {
        let mut state = broker.shared.state();
        if let Err(code) = check_coordinator(broker, &mut state, &req.group_id) {
            return (code, Vec::new());
        }
        let result = match state.groups.split(&req.group_id) {
            // Group not found: UNKNOWN_MEMBER_ID for each member.
            None => (
                ErrorCode::NONE,
                identities
                    .iter()
                    .map(|i| response(i, ErrorCode::UNKNOWN_MEMBER_ID))
                    .collect(),
            ),
            Some((g, _)) if g.state == GroupState::Dead => {
                (ErrorCode::COORDINATOR_NOT_AVAILABLE, Vec::new())
            }
            Some((g, mut cx)) => {
                let mut out = Vec::with_capacity(identities.len());
                let mut any = false;
                for ident in identities {
                    let (id, instance) = ident;
                    let code = if id.is_empty() {
                        // Removal by instance id (admin).
                        match instance
                            .as_ref()
                            .and_then(|i| g.static_members.get(i))
                            .cloned()
                        {
                            Some(static_id) => {
                                remove_current_member(g, &static_id);
                                ErrorCode::NONE
                            }
                            None => ErrorCode::UNKNOWN_MEMBER_ID,
                        }
                    } else if g.pending_join.contains(id) {
                        g.remove(id);
                        ErrorCode::NONE
                    } else {
                        match g.validate_member(id, instance.as_deref()) {
                            Ok(()) => {
                                remove_current_member(g, id);
                                ErrorCode::NONE
                            }
                            Err(code) => code,
                        }
                    };
                    any |= code == ErrorCode::NONE;
                    out.push(response(ident, code));
                }
                if any {
                    match g.state {
                        GroupState::Stable | GroupState::CompletingRebalance => {
                            maybe_prepare_rebalance_or_complete_join(g, &mut cx)
                        }
                        GroupState::PreparingRebalance => maybe_complete_join_phase(g, &mut cx),
                        _ => {}
                    }
                }
                (ErrorCode::NONE, out)
            }
        };
        (result, take_spawns(&mut state))
    };
    spawn_timers(&broker.shared, spawns);
    result
}

/// `removeCurrentMemberFromClassicGroup`.
fn remove_current_member(g: &mut ClassicGroup, id: &str) {
    if let Some(m) = g.member_mut(id) {
        m.complete_join(join_error(ErrorCode::UNKNOWN_MEMBER_ID, ""));
    }
    g.remove(id);
}

/// ListGroups: the groups this broker coordinates, classic and KIP-848,
/// filtered by state (v4+, KIP-518, case-insensitive) and type (v5+,
/// KIP-848) (`GroupMetadataManager.listGroups`).
pub(crate) fn list(broker: &Broker, req: &ListGroupsRequest, version: i16) -> ListGroupsResponse {
    if let Some(code) = crate::fault::injected_error(broker, ApiKey::ListGroups, None) {
        return ListGroupsResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let states: Vec<String> = if version >= 4 {
        req.states_filter
            .iter()
            .map(|s| s.trim().to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    let types: Vec<String> = if version >= 5 {
        req.types_filter.iter().map(|s| s.to_lowercase()).collect()
    } else {
        Vec::new()
    };
    let keep = |state: &str, kind: &str| {
        (states.is_empty() || states.contains(&state.to_lowercase()))
            && (types.is_empty() || types.iter().any(|t| t == kind))
    };
    let brokers = broker.shared.broker_ids();
    let state = broker.shared.state();
    let mine = |group: &str| state.coordinator(&brokers, group) == Some(broker.node_id);
    let mut groups: Vec<ListedGroup> = state
        .groups
        .groups
        .values()
        // An empty classic group whose id a consumer group took is gone
        // on the broker (`maybeDeleteEmptyClassicGroup`).
        .filter(|g| !crate::consumer_group::exists(&state, &g.id))
        .filter(|g| mine(&g.id) && keep(g.state.name(), "classic"))
        .map(|g| ListedGroup {
            group_id: g.id.clone(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            group_state: g.state.name().to_string(),
            group_type: "classic".into(),
        })
        .collect();
    for g in crate::consumer_group::list_entries(&state) {
        if mine(&g.group_id) && keep(&g.state, "consumer") {
            groups.push(ListedGroup {
                group_id: g.group_id,
                // ConsumerGroup.asListedGroup: the consumer protocol type.
                protocol_type: "consumer".into(),
                group_state: g.state,
                group_type: "consumer".into(),
            });
        }
    }
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}

/// DescribeGroups: members with metadata and assignment when Stable
/// (without metadata otherwise); an unknown group (or a KIP-848 one) is
/// "Dead", with no error before v6 and GROUP_ID_NOT_FOUND from v6
/// (KIP-1043) (`GroupMetadataManager.describeGroups`).
pub(crate) fn describe(
    broker: &Broker,
    req: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let injected = crate::fault::injected_error(broker, ApiKey::DescribeGroups, None);
    let mut state = broker.shared.state();
    let groups = req
        .groups
        .iter()
        .map(|id| {
            let error = |code: ErrorCode| DescribedGroup {
                group_id: id.clone(),
                error_code: code.code(),
                ..Default::default()
            };
            if let Some(code) = injected {
                return error(code);
            }
            if let Err(code) = check_coordinator(broker, &mut state, id) {
                return error(code);
            }
            let classic = state
                .groups
                .get(id)
                .filter(|_| !crate::consumer_group::exists(&state, id));
            let Some(g) = classic else {
                // KIP-1043: from v6 a group that is not there (or not a
                // classic group) is GROUP_ID_NOT_FOUND; before, just Dead.
                let (code, message) = if version < 6 {
                    (0, None)
                } else if crate::consumer_group::exists(&state, id) {
                    (
                        ErrorCode::GROUP_ID_NOT_FOUND.code(),
                        Some(format!("Group {id} is not a classic group.")),
                    )
                } else {
                    (
                        ErrorCode::GROUP_ID_NOT_FOUND.code(),
                        Some(format!("Group {id} not found.")),
                    )
                };
                return DescribedGroup {
                    group_id: id.clone(),
                    group_state: GroupState::Dead.name().into(),
                    error_code: code,
                    error_message: message,
                    ..Default::default()
                };
            };
            let stable = g.state == GroupState::Stable;
            DescribedGroup {
                group_id: id.clone(),
                group_state: g.state.name().into(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocol_data: if stable {
                    g.protocol_name.clone().unwrap_or_default()
                } else {
                    String::new()
                },
                members: g
                    .members
                    .iter()
                    .map(|m| DescribedGroupMember {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        member_metadata: if stable {
                            m.metadata(g.protocol_name.as_deref())
                        } else {
                            Default::default()
                        },
                        member_assignment: m.assignment.clone(),
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    // Timers of a group reloaded after a coordinator move.
    let spawns = take_spawns(&mut state);
    drop(state);
    spawn_timers(&broker.shared, spawns);
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}

/// Request-log summaries of the group APIs.
pub(crate) trait Summary {
    fn summary(&self) -> String;
}

impl Summary for FindCoordinatorRequest {
    fn summary(&self) -> String {
        let keys = if self.coordinator_keys.is_empty() {
            self.key.clone()
        } else {
            self.coordinator_keys.join(",")
        };
        format!("type={} key={keys}", self.key_type)
    }
}

impl Summary for JoinGroupRequest {
    fn summary(&self) -> String {
        let protocols: Vec<&str> = self.protocols.iter().map(|p| p.name.as_str()).collect();
        format!(
            "group={} member={}{} protocols={}",
            self.group_id,
            self.member_id,
            self.group_instance_id
                .as_ref()
                .map(|i| format!(" instance={i}"))
                .unwrap_or_default(),
            protocols.join(",")
        )
    }
}

impl Summary for SyncGroupRequest {
    fn summary(&self) -> String {
        format!(
            "group={} member={} gen={} assignments={}",
            self.group_id,
            self.member_id,
            self.generation_id,
            self.assignments.len()
        )
    }
}

impl Summary for HeartbeatRequest {
    fn summary(&self) -> String {
        format!(
            "group={} member={} gen={}",
            self.group_id, self.member_id, self.generation_id
        )
    }
}

impl Summary for LeaveGroupRequest {
    fn summary(&self) -> String {
        let ids: Vec<&str> = if self.members.is_empty() {
            vec![self.member_id.as_str()]
        } else {
            self.members.iter().map(|m| m.member_id.as_str()).collect()
        };
        format!("group={} members={}", self.group_id, ids.join(","))
    }
}

impl Summary for ListGroupsRequest {
    fn summary(&self) -> String {
        format!(
            "states={} types={}",
            self.states_filter.join(","),
            self.types_filter.join(",")
        )
    }
}

impl Summary for DescribeGroupsRequest {
    fn summary(&self) -> String {
        format!("groups={}", self.groups.join(","))
    }
}

/// The request-log summary of a group request, e.g.
/// `group=g member=m gen=3`.
pub(crate) fn summary<T: Summary>(req: &T) -> String {
    req.summary()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use skotch_protocol::messages::join_group_request::JoinGroupRequestProtocol;

    fn join_req(member: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            member_id: member.into(),
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::new(),
            }],
            ..Default::default()
        }
    }

    fn join(groups: &mut Groups, req: &JoinGroupRequest) -> oneshot::Receiver<JoinGroupResponse> {
        let (tx, rx) = oneshot::channel();
        let j = JoinCtx {
            req,
            version: 3,
            client_id: "c",
            rebalance_timeout_ms: req.rebalance_timeout_ms,
        };
        join_classic(groups, &j, tx);
        rx
    }

    /// Fire the group's join timer now; its action.
    fn fire_join(groups: &mut Groups) -> TimerAction {
        let (g, mut cx) = groups.split("g").unwrap();
        let t = g.timers.remove(&TimerKey::Join).unwrap();
        fire(g, &mut cx, &TimerKey::Join, t.action);
        t.action
    }

    /// group.initial.rebalance.delay.ms: a new group waits for more
    /// members, and waits again while they keep coming, up to the
    /// rebalance timeout (`tryCompleteInitialRebalanceElseSchedule`).
    #[test]
    fn initial_rebalance_delay_is_extended_while_members_join() {
        let mut groups = Groups::default();
        groups.settings.initial_rebalance_delay_ms = 3000;
        let mut a = join(&mut groups, &join_req(""));
        assert!(a.try_recv().is_err(), "parked");
        assert_eq!(
            groups.get("g").unwrap().state,
            GroupState::PreparingRebalance
        );
        let mut b = join(&mut groups, &join_req(""));
        assert_eq!(
            fire_join(&mut groups),
            TimerAction::InitialRebalance {
                delay_ms: 3000,
                remaining_ms: 7000
            }
        );
        // b came during the delay: another one.
        assert!(a.try_recv().is_err());
        assert_eq!(
            groups.get("g").unwrap().timers[&TimerKey::Join].action,
            TimerAction::InitialRebalance {
                delay_ms: 3000,
                remaining_ms: 4000
            }
        );
        fire_join(&mut groups);
        let (ja, jb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
        assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
        assert_eq!(ja.members.len(), 2, "a joined first and leads");
        assert!(jb.members.is_empty());
        let g = groups.get("g").unwrap();
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert_eq!(g.protocol_name.as_deref(), Some("range"));
    }

    /// group.max.size (`acceptJoiningMember`).
    #[test]
    fn group_max_size() {
        let mut groups = Groups::default();
        groups.settings.max_size = 1;
        let _a = join(&mut groups, &join_req(""));
        let mut b = join(&mut groups, &join_req(""));
        assert_eq!(
            ErrorCode(b.try_recv().unwrap().error_code),
            ErrorCode::GROUP_MAX_SIZE_REACHED
        );
        assert_eq!(groups.get("g").unwrap().members.len(), 1);
    }

    /// The protocol most members prefer among those all support.
    #[test]
    fn protocol_vote() {
        let mut groups = Groups::default();
        let mut parked = Vec::new();
        let proto = |names: &[&str]| -> Vec<JoinGroupRequestProtocol> {
            names
                .iter()
                .map(|n| JoinGroupRequestProtocol {
                    name: n.to_string(),
                    metadata: Bytes::new(),
                })
                .collect()
        };
        for names in [
            &["range", "rr", "x"][..],
            &["rr", "range"],
            &["rr", "range"],
        ] {
            let mut r = join_req("");
            r.protocols = proto(names);
            parked.push(join(&mut groups, &r));
        }
        let g = groups.get("g").unwrap();
        assert_eq!(g.select_protocol().as_deref(), Some("rr"));
        // A member with none of the common protocols is refused.
        let mut r = join_req("");
        r.protocols = proto(&["x"]);
        let mut rx = join(&mut groups, &r);
        assert_eq!(
            ErrorCode(rx.try_recv().unwrap().error_code),
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL
        );
    }

    #[test]
    fn member_ids_are_deterministic() {
        let mut g = Timers::default();
        assert_eq!(
            g.new_member_id("c"),
            "c-00000000-0000-4000-8000-000000000001"
        );
        assert_eq!(
            g.new_member_id("c"),
            "c-00000000-0000-4000-8000-000000000002"
        );
    }
}
