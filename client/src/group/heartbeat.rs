//! The background task that keeps a member alive: classic Heartbeat
//! requests every `heartbeat.interval.ms` while stable, or the KIP-848
//! ConsumerGroupHeartbeat (which also joins and carries assignments) at the
//! interval the broker asks for, at once when the member needs it.
//!
//! It also enforces `max.poll.interval.ms` like the Java client's heartbeat
//! thread: when the application has not polled for that long, the member
//! leaves the group so the partitions move to members that make progress;
//! the next poll reports them lost and rejoins.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skotch_protocol::messages::{
    ConsumerGroupHeartbeatRequest, HeartbeatRequest, LeaveGroupRequest,
};
use tokio::task::JoinHandle;

use super::classic::HeartbeatOutcome;
use super::coordinator::{Member, Shared};
use super::kip848::Outcome;
use crate::client::ConnKind;
use crate::error::Result;

enum Action {
    Wait(Duration),
    Classic(i32, HeartbeatRequest),
    Consumer(i32, ConsumerGroupHeartbeatRequest),
    LeaveClassic(LeaveGroupRequest),
    LeaveConsumer(ConsumerGroupHeartbeatRequest),
}

/// Start the heartbeat task of `shared`'s member.
pub(crate) fn spawn(shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(run(shared))
}

/// How long to sleep when there is nothing to do but wait for a wake-up.
const IDLE: Duration = Duration::from_secs(1);

async fn run(shared: Arc<Shared>) {
    let mut last_sent: Option<Instant> = None;
    let mut last_ok = Instant::now();
    let mut failures = 0u32;
    loop {
        let action = next_action(&shared, last_sent);
        let Some(action) = action else { return };
        let result = match action {
            Action::Wait(d) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(d) => {}
                }
                continue;
            }
            Action::Classic(generation, req) => {
                last_sent = Some(Instant::now());
                watch_coordinator(&shared, classic_heartbeat(&shared, generation, req)).await
            }
            Action::Consumer(epoch, req) => {
                last_sent = Some(Instant::now());
                watch_coordinator(&shared, consumer_heartbeat(&shared, epoch, req)).await
            }
            Action::LeaveClassic(req) => {
                tracing::warn!(group = %shared.group_id,
                    "max.poll.interval.ms passed without a poll: leaving the group");
                leave_classic(&shared, req).await
            }
            Action::LeaveConsumer(req) => {
                tracing::warn!(group = %shared.group_id,
                    "max.poll.interval.ms passed without a poll: leaving the group");
                send_consumer_leave(&shared, req).await
            }
        };
        match result {
            Ok(()) => {
                last_ok = Instant::now();
                failures = 0;
            }
            Err(e) => {
                shared.note_error(&e);
                if let Member::Consumer(m) = &mut shared.state().member {
                    m.heartbeat_failed();
                }
                if !e.is_retriable() && !e.is_connection() {
                    tracing::error!(group = %shared.group_id, error = %e, "group membership failed");
                    shared.state().fatal = Some(e);
                    return;
                }
                tracing::debug!(group = %shared.group_id, error = %e, "heartbeat failed, will retry");
                if last_ok.elapsed() > shared.session_timeout {
                    // Java marks the coordinator unknown when no heartbeat
                    // got through for a whole session.
                    shared.coordinator_lost();
                }
                let wait = shared.client.backoff().delay_random(failures);
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// A heartbeat unanswered this long makes the task ask other brokers where
/// the coordinator is (heartbeats are answered in milliseconds).
const STALL: Duration = Duration::from_secs(2);

/// Run `heartbeat`; while it is unanswered, every [`STALL`] ask other
/// brokers for the group's coordinator. When the group moved (the
/// coordinator's broker froze or died and another broker took over the
/// group's `__consumer_offsets` partition), switch to the new coordinator
/// and close the connections to the old one: its unanswered heartbeat and
/// commits fail at once and are retried there, well within the session
/// timeout, instead of waiting `request.timeout.ms` (30 s) while the new
/// coordinator expires the member. (Java 4.3's classic members give up on
/// a coordinator after a session timeout without an answer; its KIP-848
/// members wait out the request timeout and lose their partitions; see
/// tests/failover_consume.rs.)
async fn watch_coordinator(
    shared: &Shared,
    heartbeat: impl Future<Output = Result<()>>,
) -> Result<()> {
    tokio::pin!(heartbeat);
    loop {
        tokio::select! {
            r = &mut heartbeat => return r,
            _ = tokio::time::sleep(STALL) => probe_coordinator(shared).await,
        }
    }
}

async fn probe_coordinator(shared: &Shared) {
    let Some(node) = shared.state().coordinator else {
        return;
    };
    // FindCoordinator goes to other brokers first.
    shared.client.suspect(node);
    match shared.client.find_coordinator(&shared.group_id).await {
        Ok(found) if found != node => {
            tracing::warn!(group = %shared.group_id, old = node, new = found,
                "the coordinator left a heartbeat unanswered and the group moved; switching");
            {
                let mut st = shared.state();
                if st.coordinator == Some(node) {
                    st.coordinator = Some(found);
                }
            }
            for kind in [ConnKind::Heartbeat, ConnKind::Group, ConnKind::Rebalance] {
                shared.client.close_connection(node, kind);
            }
        }
        Ok(_) => {
            tracing::debug!(group = %shared.group_id, node, "heartbeat slow; the coordinator has not moved");
        }
        Err(e) => {
            tracing::debug!(group = %shared.group_id, error = %e, "looking for the coordinator failed");
        }
    }
}

/// Decide under the lock; `None` stops the task.
fn next_action(shared: &Shared, last_sent: Option<Instant>) -> Option<Action> {
    let mut st = shared.state();
    if st.closing || st.fatal.is_some() {
        return None;
    }
    let now = Instant::now();
    if !st.poll_expired && now.duration_since(st.last_poll) > shared.max_poll_interval {
        st.poll_expired = true;
        return Some(match &mut st.member {
            Member::Classic(m) => match m.poll_timeout() {
                Some(req) => Action::LeaveClassic(req),
                None => Action::Wait(IDLE),
            },
            Member::Consumer(m) => match m.poll_timeout() {
                Some(req) => Action::LeaveConsumer(req),
                None => Action::Wait(IDLE),
            },
        });
    }
    if st.poll_expired {
        return Some(Action::Wait(IDLE));
    }
    let since = last_sent.map(|t| now.duration_since(t));
    Some(match &mut st.member {
        Member::Classic(m) => match m.heartbeat_request() {
            None => Action::Wait(IDLE),
            Some((generation, req)) => match since {
                Some(s) if s < shared.heartbeat_interval => {
                    Action::Wait(shared.heartbeat_interval - s)
                }
                _ => Action::Classic(generation, req),
            },
        },
        Member::Consumer(m) => {
            let interval = match m.heartbeat_interval_ms() {
                ms if ms > 0 => Duration::from_millis(ms as u64),
                _ => shared.heartbeat_interval,
            };
            match since {
                Some(s) if s < interval && !m.urgent() => Action::Wait(interval - s),
                _ => {
                    let (epoch, req) = m.heartbeat_request();
                    Action::Consumer(epoch, req)
                }
            }
        }
    })
}

async fn classic_heartbeat(shared: &Shared, generation: i32, req: HeartbeatRequest) -> Result<()> {
    let node = shared.coordinator().await?;
    let resp = shared.client.send(node, ConnKind::Heartbeat, &req).await?;
    let mut st = shared.state();
    let Member::Classic(m) = &mut st.member else {
        return Ok(());
    };
    match m.on_heartbeat_response(generation, resp.error_code)? {
        HeartbeatOutcome::Ok => {}
        HeartbeatOutcome::Rejoin => {
            tracing::debug!(group = %shared.group_id, "rebalance in progress; the next poll rejoins")
        }
        HeartbeatOutcome::Lost => {
            tracing::info!(group = %shared.group_id, "generation fenced; the next poll reports the partitions lost and rejoins")
        }
        HeartbeatOutcome::FindCoordinator => st.coordinator = None,
    }
    Ok(())
}

async fn consumer_heartbeat(
    shared: &Shared,
    epoch: i32,
    req: ConsumerGroupHeartbeatRequest,
) -> Result<()> {
    let node = shared.coordinator().await?;
    let resp = shared.client.send(node, ConnKind::Heartbeat, &req).await?;
    let mut st = shared.state();
    let Member::Consumer(m) = &mut st.member else {
        return Ok(());
    };
    match m.on_heartbeat_response(epoch, resp)? {
        Outcome::Ok | Outcome::Lost => {}
        Outcome::FindCoordinator => st.coordinator = None,
        Outcome::Backoff(e) => return Err(e),
    }
    Ok(())
}

async fn leave_classic(shared: &Shared, mut req: LeaveGroupRequest) -> Result<()> {
    let node = shared.coordinator().await?;
    let conn = shared.client.connection(node, ConnKind::Heartbeat).await?;
    let version = conn.version::<LeaveGroupRequest>()?;
    // v3+ (KIP-345) name the leaving members in a list; older versions
    // carry one member id and cannot encode the list.
    if version >= 3 {
        req.member_id.clear();
    } else {
        req.members.clear();
    }
    let resp = conn
        .send_version(&req, version, shared.client.config().request_timeout)
        .await?;
    if resp.error_code != 0 {
        tracing::debug!(group = %shared.group_id, code = resp.error_code, "LeaveGroup refused");
    }
    Ok(())
}

/// Send a KIP-848 leave heartbeat (epoch -1 or -2); errors only logged: the
/// session timeout removes the member anyway.
pub(crate) async fn send_consumer_leave(
    shared: &Shared,
    req: ConsumerGroupHeartbeatRequest,
) -> Result<()> {
    let node = shared.coordinator().await?;
    let resp = shared.client.send(node, ConnKind::Heartbeat, &req).await?;
    if resp.error_code != 0 {
        tracing::debug!(group = %shared.group_id, code = resp.error_code, "leave heartbeat refused");
    }
    Ok(())
}

/// Send a classic LeaveGroup (used by close too).
pub(crate) async fn send_classic_leave(shared: &Shared, req: LeaveGroupRequest) -> Result<()> {
    leave_classic(shared, req).await
}
