//! Rebalance listeners: async callbacks run inside
//! [`GroupConsumer::poll`](crate::GroupConsumer::poll) when partitions are
//! assigned, revoked or lost (Java's `ConsumerRebalanceListener`, kstreams'
//! `RebalanceListener`).

use async_trait::async_trait;

use super::handle::GroupHandle;
use crate::consumer::TopicPartition;

/// Callbacks for assignment changes. Each runs to completion before the
/// consumer goes on, so work done in `on_revoked` (a commit, saving state)
/// happens before another member can get the partitions.
///
/// Callbacks run only for non-empty sets. Unlike Java's, `on_lost` does not
/// fall back to `on_revoked`: lost partitions already belong to someone
/// else, so committing for them would fail.
#[async_trait]
pub trait RebalanceListener: Send + Sync {
    /// `partitions` were assigned to this member. Their positions come
    /// from an initial offset, the committed offset or
    /// `auto.offset.reset`; with `auto.offset.reset=none` and nothing
    /// committed, poll reports an error until the application seeks them.
    async fn on_assigned(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        let _ = (group, partitions);
    }

    /// `partitions` are being taken away in an orderly rebalance: the
    /// member still owns them until this returns, so commits still work.
    async fn on_revoked(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        let _ = (group, partitions);
    }

    /// `partitions` were lost: the member was fenced (session timeout,
    /// `max.poll.interval.ms`, a new generation without it), so another
    /// member may own them already. Do not commit.
    async fn on_lost(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        let _ = (group, partitions);
    }
}

/// Commits the done offsets of partitions before they are revoked, so the
/// next owner starts right after the last finished record (kstreams'
/// `ManualCommitRebalanceListener`). Use it with manual commits; with
/// `enable.auto.commit` the consumer already does this.
#[derive(Debug, Default, Clone, Copy)]
pub struct ManualCommitListener;

#[async_trait]
impl RebalanceListener for ManualCommitListener {
    async fn on_revoked(&mut self, group: &GroupHandle, partitions: &[TopicPartition]) {
        if let Err(e) = group.commit_done_for(partitions).await {
            tracing::warn!(error = %e, "commit before revocation failed; the next owner may see some records again");
            // Returned by the next poll (Poll::errors), or by close.
            group.shared.report(e);
        }
    }
}
