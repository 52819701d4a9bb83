//! Turning a start position (earliest, latest, an offset, a timestamp) into
//! an offset with ListOffsets, one request per partition leader.

use skotch_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use skotch_protocol::messages::ListOffsetsRequest;

use super::{Consumer, TopicPartition};
use crate::client::ConnKind;
use crate::error::{Error, Result};

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The log start offset: the oldest record still kept.
    Earliest,
    /// The high watermark: only records written from now on.
    Latest,
    /// This offset; a negative one counts back from the end (-1 = the last
    /// record).
    At(i64),
    /// The first record whose timestamp is at or after this time, in ms
    /// since the Unix epoch; the end when there is none.
    Timestamp(i64),
}

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

impl Consumer {
    /// Resolve every partition that has no position yet.
    pub(super) async fn resolve_starts(&mut self) -> Result<()> {
        let todo: Vec<(TopicPartition, Offset)> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.position.is_none())
            .map(|(tp, s)| (tp.clone(), s.start))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let timeout = self.client.config().request_timeout;
        let mut resolved = Vec::with_capacity(todo.len());
        for (tp, start) in todo {
            let off = match start {
                Offset::At(o) if o >= 0 => o,
                Offset::At(back) => {
                    let end = self
                        .client
                        .retry(timeout, || self.list_offset(&tp, LATEST))
                        .await?;
                    let begin = self
                        .client
                        .retry(timeout, || self.list_offset(&tp, EARLIEST))
                        .await?;
                    (end + back).max(begin)
                }
                Offset::Earliest => {
                    self.client
                        .retry(timeout, || self.list_offset(&tp, EARLIEST))
                        .await?
                }
                Offset::Latest => {
                    self.client
                        .retry(timeout, || self.list_offset(&tp, LATEST))
                        .await?
                }
                Offset::Timestamp(ts) => {
                    let o = self
                        .client
                        .retry(timeout, || self.list_offset(&tp, ts))
                        .await?;
                    if o < 0 {
                        self.client
                            .retry(timeout, || self.list_offset(&tp, LATEST))
                            .await?
                    } else {
                        o
                    }
                }
            };
            resolved.push((tp, off));
        }
        for (tp, off) in resolved {
            if let Some(st) = self.partitions.get_mut(&tp) {
                st.position = Some(off);
            }
        }
        Ok(())
    }

    /// Ask the leader of `tp` for the offset at `timestamp` (or -1/-2).
    async fn list_offset(&self, tp: &TopicPartition, timestamp: i64) -> Result<i64> {
        let leader = self.client.leader(&tp.topic, tp.partition).await?;
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: self.config.isolation_level.wire(),
            topics: vec![ListOffsetsTopic {
                name: tp.topic.clone(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: tp.partition,
                    timestamp,
                    ..Default::default()
                }],
            }],
            timeout_ms: i32::try_from(self.client.config().request_timeout.as_millis())
                .unwrap_or(i32::MAX),
        };
        let resp = self.client.send(leader, ConnKind::General, &req).await?;
        let p = resp
            .topics
            .iter()
            .filter(|t| t.name == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .ok_or_else(|| Error::Config(format!("ListOffsets answer lacks {tp}")))?;
        Error::check(p.error_code, None, || format!("list offsets of {tp}"))?;
        Ok(p.offset)
    }
}
