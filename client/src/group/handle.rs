//! [`GroupHandle`]: a cheap, cloneable handle on a group consumer for marking
//! records done and committing from other tasks (concurrent workers,
//! rebalance listeners) while the consumer keeps polling.

use std::sync::Arc;

use super::coordinator::{Member, Shared};
use super::tracker::MarkDone;
use crate::consumer::TopicPartition;
use crate::error::Result;

/// A handle on a [`GroupConsumer`](crate::GroupConsumer)'s commits.
#[derive(Debug, Clone)]
pub struct GroupHandle {
    pub(crate) shared: Arc<Shared>,
}

impl GroupHandle {
    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.shared.group_id
    }

    /// The member id ("" before the first join under the classic protocol).
    pub fn member_id(&self) -> String {
        match &self.shared.state().member {
            Member::Classic(m) => m.member_id().to_string(),
            Member::Consumer(m) => m.member_id().to_string(),
        }
    }

    /// The classic generation or the KIP-848 member epoch.
    pub fn generation(&self) -> i32 {
        match &self.shared.state().member {
            Member::Classic(m) => m.generation(),
            Member::Consumer(m) => m.epoch(),
        }
    }

    /// Processing of the record at `offset` in `tp` finished. The offset
    /// becomes committable once every record handed out before it is done
    /// too (water-healer's rule), so a crash never skips unfinished work.
    /// A partition no longer assigned is ignored with a log line.
    pub fn mark_done(&self, tp: &TopicPartition, offset: i64) -> MarkDone {
        let r = self.shared.tracker().mark_done(tp, offset);
        match r {
            MarkDone::NotOwned => tracing::info!(
                group = %self.shared.group_id, partition = %tp, offset,
                "mark_done for a partition no longer assigned; ignored"
            ),
            MarkDone::NotPending => tracing::debug!(
                group = %self.shared.group_id, partition = %tp, offset,
                "mark_done for an offset not handed out (or already done); ignored"
            ),
            MarkDone::Done => {}
        }
        r
    }

    /// Commit the done prefix of every assigned partition (only those that
    /// moved since the last commit).
    ///
    /// Errors: the coordinator refused (e.g. ILLEGAL_GENERATION during a
    /// rebalance) or could not be reached within `request.timeout.ms`. The
    /// offsets stay pending and are committed by a later call.
    pub async fn commit_done(&self) -> Result<()> {
        let offsets = self.shared.tracker().to_commit();
        self.shared.commit(offsets).await
    }

    /// [`GroupHandle::commit_done`] for some partitions only.
    pub async fn commit_done_for(&self, partitions: &[TopicPartition]) -> Result<()> {
        let offsets = self
            .shared
            .tracker()
            .to_commit()
            .into_iter()
            .filter(|(tp, _)| partitions.contains(tp))
            .collect();
        self.shared.commit(offsets).await
    }

    /// The offsets the group has committed for `partitions` (Java's
    /// `committed(Set)`): the next offset to read, absent where nothing is
    /// committed. Any partition may be asked, assigned or not.
    ///
    /// Errors: the coordinator could not be reached within
    /// `request.timeout.ms`, or refused.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<std::collections::BTreeMap<TopicPartition, i64>> {
        let set = partitions.iter().cloned().collect();
        Ok(self
            .shared
            .committed(&set)
            .await?
            .into_iter()
            .map(|(tp, (o, _))| (tp, o))
            .collect())
    }

    /// Commit exactly these offsets (the next offset to read, as Java's
    /// `commitSync(Map)`), bypassing the tracker. Partitions not assigned
    /// are dropped with a log line.
    pub async fn commit(&self, offsets: Vec<(TopicPartition, i64)>) -> Result<()> {
        self.shared.commit(offsets).await
    }
}
