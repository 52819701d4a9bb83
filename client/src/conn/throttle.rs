//! Client-side quota throttling (KIP-219). A broker over a client's quota
//! answers at once with `throttle_time_ms` and mutes the connection for
//! that long; from the versions below it expects the client to hold back
//! too, sending nothing more to it until the time has passed (older
//! versions: the broker delays the answer itself, and the client must not
//! wait again). The Java client does this in `NetworkClient.maybeThrottle`
//! with each response's `shouldClientThrottle(version)`.
//!
//! skotch holds back per connection (Java per broker; skotch may have a
//! few connections to one broker, each throttled on its own answers).

use std::sync::Mutex;
use std::time::Duration;

use skotch_protocol::messages::ApiKey;
use tokio::time::Instant;

/// Whether a client must hold back after a throttled `api` answer at
/// `version`: the version from which the response definitions say "on
/// quota violation, brokers send out responses before throttling"
/// (Produce and OffsetForLeaderEpoch, whose definitions do not say it:
/// `ProduceResponse.shouldClientThrottle` and
/// `OffsetsForLeaderEpochResponse.shouldClientThrottle`).
pub fn client_throttles(api: ApiKey, version: i16) -> bool {
    let from = match api {
        ApiKey::Produce => 6,
        ApiKey::Fetch => 8,
        ApiKey::ListOffsets | ApiKey::CreateTopics | ApiKey::JoinGroup => 3,
        ApiKey::OffsetForLeaderEpoch => 3,
        ApiKey::Metadata => 6,
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 4,
        ApiKey::FindCoordinator
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::ApiVersions
        | ApiKey::DeleteTopics
        | ApiKey::DescribeConfigs => 2,
        ApiKey::InitProducerId | ApiKey::CreatePartitions => 1,
        ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe => 0,
        _ => return false,
    };
    version >= from
}

/// The longest throttle honoured (a hostile or buggy answer must not stall
/// a connection for days; brokers cap quota delays at
/// `quota.window.size.seconds` × samples, seconds at most).
const MAX_THROTTLE: Duration = Duration::from_secs(60);

/// When a connection may send again.
#[derive(Debug, Default)]
pub struct Throttle {
    until: Mutex<Option<Instant>>,
}

impl Throttle {
    /// An `api` answer at `version` said `throttle_time_ms`.
    pub fn on_response(&self, api: ApiKey, version: i16, throttle_time_ms: i32) {
        if throttle_time_ms <= 0 || !client_throttles(api, version) {
            return;
        }
        let wait = Duration::from_millis(throttle_time_ms as u64).min(MAX_THROTTLE);
        let until = Instant::now() + wait;
        let mut cur = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if cur.is_none_or(|c| c < until) {
            *cur = Some(until);
        }
    }

    /// Wait until the connection may send (at once when not throttled).
    pub async fn wait(&self) {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            if until > Instant::now() {
                tracing::debug!(
                    wait_ms = (until - Instant::now()).as_millis() as u64,
                    "throttled by the broker (KIP-219)"
                );
                tokio::time::sleep_until(until).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_which_the_client_holds_back() {
        assert!(!client_throttles(ApiKey::Produce, 5));
        assert!(client_throttles(ApiKey::Produce, 6));
        assert!(!client_throttles(ApiKey::Fetch, 7));
        assert!(client_throttles(ApiKey::Fetch, 8));
        assert!(client_throttles(ApiKey::ConsumerGroupHeartbeat, 0));
        assert!(!client_throttles(ApiKey::SaslAuthenticate, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_longest_throttle_then_not_again() {
        let t = Throttle::default();
        let start = Instant::now();
        t.on_response(ApiKey::Produce, 11, 300);
        t.on_response(ApiKey::Produce, 11, 100); // shorter: ignored
        t.on_response(ApiKey::Produce, 5, 10_000); // broker-side version: ignored
        t.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        t.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        t.on_response(ApiKey::Fetch, 16, i32::MAX);
        t.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(300) + MAX_THROTTLE);
    }
}
