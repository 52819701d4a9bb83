//! Faults a test asks for: per API key, optionally narrowed to one broker
//! or one topic-partition, answer with an error code, add latency, drop
//! the connection before or after applying the request, or stay silent;
//! once, N times or until cleared.
//!
//! Where they act:
//! - Latency, drops and silence act on whole requests in
//!   [`connection`](crate::connection), before or after the handler.
//! - Error codes are answered by the handlers, which ask
//!   [`injected_error`] at the point where a broker would have found that
//!   error: once per request for request-level errors, per partition for
//!   partition-level ones (Produce, Fetch, ListOffsets,
//!   OffsetForLeaderEpoch, OffsetCommit, OffsetFetch, Metadata's topics).
//!   A request answered with an injected error is not applied (for a
//!   partition-level error, that partition is not).
//!
//! "Once" and "N times" count requests: a Produce naming three partitions
//! that all match uses one of the fault's N.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::ApiKey;

use crate::broker::Broker;

/// What a fault does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this error code, without applying the request (or, for
    /// a partition-level fault, that partition).
    Error(ErrorCode),
    /// Wait this long before handling the request (tokio time, so a paused
    /// clock skips it).
    Latency(Duration),
    /// Close the connection without applying or answering the request.
    DropBefore,
    /// Apply the request, then close the connection without answering:
    /// the client cannot know whether it landed.
    DropAfter,
    /// Never answer the request, nor any later one on its connection (the
    /// connection stays open until the client closes it).
    Silence,
    /// Answer with this `throttle_time_ms` (Produce and Fetch; other APIs
    /// answer 0) and read nothing more from the connection for that long,
    /// as a broker over its quota does (KIP-219: respond at once, then
    /// mute the channel).
    Throttle(Duration),
}

/// A fault to inject with [`MockCluster::inject`](crate::MockCluster::inject).
///
/// ```
/// use skotch_mock::{Fault, ApiKey, ErrorCode};
/// let f = Fault::error(ApiKey::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER)
///     .on_partition("events", 0)
///     .times(2);
/// # let _ = f;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) api: ApiKey,
    pub(crate) action: FaultAction,
    pub(crate) broker: Option<i32>,
    pub(crate) partition: Option<(String, i32)>,
    /// Matches left; `None` until cleared.
    pub(crate) remaining: Option<u64>,
}

impl Fault {
    fn new(api: ApiKey, action: FaultAction) -> Fault {
        Fault {
            api,
            action,
            broker: None,
            partition: None,
            remaining: Some(1),
        }
    }

    /// Answer `api` requests with `code` (once unless told otherwise).
    pub fn error(api: ApiKey, code: ErrorCode) -> Fault {
        Fault::new(api, FaultAction::Error(code))
    }

    /// Delay `api` requests by `latency` before handling them.
    pub fn latency(api: ApiKey, latency: Duration) -> Fault {
        Fault::new(api, FaultAction::Latency(latency))
    }

    /// Close the connection on an `api` request, before applying it.
    pub fn drop_before(api: ApiKey) -> Fault {
        Fault::new(api, FaultAction::DropBefore)
    }

    /// Apply an `api` request, then close the connection unanswered.
    pub fn drop_after(api: ApiKey) -> Fault {
        Fault::new(api, FaultAction::DropAfter)
    }

    /// Never answer an `api` request (nor anything after it on that
    /// connection).
    pub fn silence(api: ApiKey) -> Fault {
        Fault::new(api, FaultAction::Silence)
    }

    /// Answer `api` requests with `throttle_time_ms` = `throttle`, then
    /// mute the connection for as long (KIP-219).
    pub fn throttle(api: ApiKey, throttle: Duration) -> Fault {
        Fault::new(api, FaultAction::Throttle(throttle))
    }

    /// Only on this broker.
    pub fn on_broker(mut self, broker: i32) -> Fault {
        self.broker = Some(broker);
        self
    }

    /// Only for this topic-partition. Error faults only: latency, drops
    /// and silence act on whole requests
    /// ([`inject`](crate::MockCluster::inject) refuses the combination).
    pub fn on_partition(mut self, topic: &str, partition: i32) -> Fault {
        self.partition = Some((topic.to_string(), partition));
        self
    }

    /// Act on the first matching request only (the default).
    pub fn once(self) -> Fault {
        self.times(1)
    }

    /// Act on the first `n` matching requests.
    pub fn times(mut self, n: u64) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Act on every matching request until the fault is cleared.
    pub fn always(mut self) -> Fault {
        self.remaining = None;
        self
    }

    /// The action.
    pub fn action(&self) -> FaultAction {
        self.action
    }
}

/// Names an injected fault, to clear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(pub(crate) u64);

#[derive(Debug)]
struct Active {
    id: u64,
    fault: Fault,
    /// The last request that used one of `remaining`: further matches by
    /// the same request (other partitions) are free.
    last_request: Option<u64>,
}

/// The faults in force, in injection order (the first match acts).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Vec<Active>,
    next_id: u64,
    /// Requests each fault acted on, by id (kept once it is spent).
    hits: std::collections::HashMap<u64, u64>,
}

/// Sequence numbers of requests, for "once per request" counting.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// The request a connection task is handling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestCtx {
    /// Its sequence number ([`new_request`]).
    pub seq: u64,
    /// The throttle a fault asks its answer to carry, in ms.
    pub throttle_ms: i32,
}

tokio::task_local! {
    static REQUEST: RequestCtx;
}

/// Run `f` as the handling of request `ctx`.
pub(crate) async fn scope<F: std::future::Future>(ctx: RequestCtx, f: F) -> F::Output {
    REQUEST.scope(ctx, f).await
}

/// The `throttle_time_ms` this request's answer carries (0 unless a
/// throttle fault acts on it).
pub(crate) fn throttle_ms() -> i32 {
    REQUEST.try_with(|r| r.throttle_ms).unwrap_or(0)
}

/// A fresh request sequence number.
pub(crate) fn new_request() -> u64 {
    NEXT_REQUEST.fetch_add(1, Ordering::Relaxed)
}

impl Faults {
    pub fn inject(&mut self, fault: Fault) -> FaultId {
        self.next_id += 1;
        let id = self.next_id;
        self.active.push(Active {
            id,
            fault,
            last_request: None,
        });
        FaultId(id)
    }

    pub fn clear(&mut self, id: FaultId) -> bool {
        let before = self.active.len();
        self.active.retain(|a| a.id != id.0);
        self.active.len() != before
    }

    pub fn hits(&self, id: FaultId) -> u64 {
        self.hits.get(&id.0).copied().unwrap_or(0)
    }

    pub fn clear_all(&mut self) {
        self.active.clear();
    }

    /// The first fault matching, consuming one of its uses (once per
    /// request); exhausted faults are removed.
    fn take(
        &mut self,
        api: ApiKey,
        broker: i32,
        partition: Option<(&str, i32)>,
        request: u64,
        wanted: impl Fn(&FaultAction) -> bool,
    ) -> Option<FaultAction> {
        let i = self.active.iter().position(|a| {
            let f = &a.fault;
            f.api == api
                && f.broker.is_none_or(|b| b == broker)
                && (f.remaining != Some(0) || a.last_request == Some(request))
                && wanted(&f.action)
                && match (&f.partition, partition) {
                    (None, _) => true,
                    (Some((t, p)), Some((t2, p2))) => t == t2 && *p == p2,
                    (Some(_), None) => false,
                }
        })?;
        let a = &mut self.active[i];
        let action = a.fault.action;
        if a.last_request != Some(request) {
            a.last_request = Some(request);
            *self.hits.entry(a.id).or_default() += 1;
            if let Some(n) = a.fault.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        // A spent fault stays for the rest of this request's partitions;
        // `sweep` removes it when a later request comes.
        Some(action)
    }

    /// Drop faults whose uses are spent by earlier requests.
    fn sweep(&mut self, request: u64) {
        self.active
            .retain(|a| a.fault.remaining != Some(0) || a.last_request == Some(request));
    }
}

/// The error a fault injects into this request (request-level when
/// `partition` is `None`), if any.
pub(crate) fn injected_error(
    broker: &Broker,
    api: ApiKey,
    partition: Option<(&str, i32)>,
) -> Option<ErrorCode> {
    injected_error_where(broker, api, partition, |_| true)
}

/// As [`injected_error`], for faults whose code `accept` takes (Fetch's
/// partitions never take the fetch-session codes, which are top-level
/// only).
pub(crate) fn injected_error_where(
    broker: &Broker,
    api: ApiKey,
    partition: Option<(&str, i32)>,
    accept: impl Fn(ErrorCode) -> bool,
) -> Option<ErrorCode> {
    let request = REQUEST.try_with(|r| r.seq).unwrap_or(0);
    let mut faults = broker.shared.faults();
    faults.sweep(request);
    let wanted = |a: &FaultAction| matches!(a, FaultAction::Error(code) if accept(*code));
    match faults.take(api, broker.node_id, partition, request, wanted)? {
        FaultAction::Error(code) => Some(code),
        _ => None,
    }
}

/// A request-level error for an API whose errors are otherwise per
/// partition (Fetch's fetch-session errors): only a fault not narrowed to
/// a partition whose code `top_level` accepts.
pub(crate) fn injected_request_error(
    broker: &Broker,
    api: ApiKey,
    top_level: impl Fn(ErrorCode) -> bool,
) -> Option<ErrorCode> {
    injected_error_where(broker, api, None, top_level)
}

/// The connection-level action (latency, drop, silence) for this request.
pub(crate) fn connection_action(broker: &Broker, api: ApiKey, request: u64) -> Option<FaultAction> {
    let mut faults = broker.shared.faults();
    faults.sweep(request);
    let not_error = |a: &FaultAction| !matches!(a, FaultAction::Error(_));
    faults.take(api, broker.node_id, None, request, not_error)
}
