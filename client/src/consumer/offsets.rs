//! Turning a start position (earliest, latest, an offset, a timestamp) into
//! an offset with ListOffsets: one request per leader broker for all the
//! partitions it leads, the brokers asked at once, and Java's
//! `offsetsForTimes` built on the same lookup.

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use skotch_protocol::messages::ListOffsetsRequest;

use super::{Consumer, IsolationLevel, TopicPartition};
use crate::client::{Client, ConnKind};
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

/// The answer of [`Consumer::offsets_for_times`] for one partition (Java's
/// `OffsetAndTimestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset of the first record at or after the time asked.
    pub offset: i64,
    /// That record's timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// The leader epoch of that record, when the broker says (-1 if not).
    pub leader_epoch: i32,
}

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// One partition's answer: (offset, timestamp, leader epoch).
type Listed = (i64, i64, i32);

impl Consumer {
    /// Resolve every partition that has no position yet.
    pub(super) async fn resolve_starts(&mut self) -> Result<()> {
        let todo: Vec<(TopicPartition, Offset, u64)> = self
            .state()
            .partitions
            .iter()
            .filter(|(_, s)| s.position.is_none() && s.failed.is_none())
            .map(|(tp, s)| (tp.clone(), s.start, s.generation))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let mut queries = Vec::new();
        for (tp, start, _) in &todo {
            match start {
                Offset::At(o) if *o >= 0 => {}
                Offset::At(_) => {
                    queries.push((tp.clone(), LATEST));
                    queries.push((tp.clone(), EARLIEST));
                }
                Offset::Earliest => queries.push((tp.clone(), EARLIEST)),
                Offset::Latest => queries.push((tp.clone(), LATEST)),
                Offset::Timestamp(ts) => {
                    queries.push((tp.clone(), *ts));
                    // Past the last record's time: start at the end.
                    queries.push((tp.clone(), LATEST));
                }
            }
        }
        // A partition asked twice (LATEST and EARLIEST) goes in two rounds:
        // a request names each partition once.
        let (first, second): (Vec<_>, Vec<_>) = {
            let mut seen = std::collections::HashSet::new();
            queries
                .into_iter()
                .partition(|(tp, _)| seen.insert(tp.clone()))
        };
        let isolation = self.shared.config.isolation_level;
        let client = self.shared.client.clone();
        let mut answers: HashMap<(TopicPartition, i64), Listed> = HashMap::new();
        for round in [first, second] {
            if round.is_empty() {
                continue;
            }
            let got = list_offsets(&client, isolation, &round).await?;
            for (q, a) in round.into_iter().zip(got) {
                answers.insert(q, a);
            }
        }
        let mut st = self.state();
        for (tp, start, generation) in todo {
            let get = |ts: i64| answers.get(&(tp.clone(), ts)).map(|a| a.0);
            let off = match start {
                Offset::At(o) if o >= 0 => Some(o),
                Offset::At(back) => match (get(LATEST), get(EARLIEST)) {
                    (Some(end), Some(begin)) => Some((end + back).max(begin)),
                    _ => None,
                },
                Offset::Earliest => get(EARLIEST),
                Offset::Latest => get(LATEST),
                Offset::Timestamp(ts) => match get(ts) {
                    Some(o) if o >= 0 => Some(o),
                    _ => get(LATEST),
                },
            };
            if let Some(p) = st.partitions.get_mut(&tp) {
                // Sought again while we asked: the newer start wins.
                if p.generation == generation && p.position.is_none() {
                    p.position = off;
                    p.fetch_position = off;
                }
            }
        }
        drop(st);
        self.shared.work.notify_waiters();
        Ok(())
    }

    /// For each partition, the first offset whose record's timestamp is at
    /// or after the time given (ms since the Unix epoch), or `None` when
    /// no record is that recent (Java's `offsetsForTimes`). One ListOffsets
    /// per leader broker, all brokers at once; retried within
    /// `request.timeout.ms`.
    ///
    /// Errors: unknown topics or partitions, brokers unreachable for
    /// longer than the request timeout.
    pub async fn offsets_for_times(
        &self,
        times: &[(TopicPartition, i64)],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        if let Some((tp, ts)) = times.iter().find(|(_, ts)| *ts < 0) {
            return Err(Error::Config(format!(
                "offsets_for_times: negative timestamp {ts} for {tp}"
            )));
        }
        let got = list_offsets(
            &self.shared.client,
            self.shared.config.isolation_level,
            times,
        )
        .await?;
        Ok(times
            .iter()
            .zip(got)
            .map(|((tp, _), (offset, timestamp, leader_epoch))| {
                let found = (offset >= 0).then_some(OffsetAndTimestamp {
                    offset,
                    timestamp,
                    leader_epoch,
                });
                (tp.clone(), found)
            })
            .collect())
    }
}

/// ListOffsets for `queries` (each partition at most once), answers in the
/// same order. Partitions are grouped by leader, the leaders asked at
/// once; partitions that fail retriably are asked again (after a metadata
/// refresh when the error says so) until `request.timeout.ms`.
pub(crate) async fn list_offsets(
    client: &Client,
    isolation: IsolationLevel,
    queries: &[(TopicPartition, i64)],
) -> Result<Vec<Listed>> {
    let timeout = client.config().request_timeout;
    let deadline = std::time::Instant::now() + timeout;
    let mut answers: Vec<Option<Listed>> = vec![None; queries.len()];
    let mut attempt = 0u32;
    loop {
        let pending: Vec<usize> = (0..queries.len())
            .filter(|i| answers[*i].is_none())
            .collect();
        if pending.is_empty() {
            return Ok(answers
                .into_iter()
                .map(|a| a.unwrap_or((-1, -1, -1)))
                .collect());
        }
        let mut by_leader: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        let mut last_err = None;
        for i in pending {
            let (tp, _) = &queries[i];
            match client.leader(&tp.topic, tp.partition).await {
                Ok(l) => by_leader.entry(l).or_default().push(i),
                Err(e) if e.is_retriable() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        let asks = by_leader
            .iter()
            .map(|(leader, idx)| ask(client, isolation, *leader, queries, idx));
        for (idx, result) in by_leader.values().zip(join_all(asks).await) {
            match result {
                Ok(found) => {
                    for (i, r) in idx.iter().zip(found) {
                        match r {
                            Ok(a) => answers[*i] = Some(a),
                            Err(e) if e.is_retriable() => last_err = Some(e),
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.is_retriable() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = last_err {
            let wait = client.backoff().delay_random(attempt);
            if std::time::Instant::now() + wait >= deadline {
                return Err(e);
            }
            if e.needs_metadata_refresh() {
                client.invalidate_metadata();
            }
            tracing::debug!(error = %e, attempt, "ListOffsets: retrying some partitions");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// One ListOffsets to `leader` for `queries[idx]`: an answer or an error
/// per partition.
async fn ask(
    client: &Client,
    isolation: IsolationLevel,
    leader: i32,
    queries: &[(TopicPartition, i64)],
    idx: &[usize],
) -> Result<Vec<Result<Listed>>> {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for &i in idx {
        let (tp, ts) = &queries[i];
        let p = ListOffsetsPartition {
            partition_index: tp.partition,
            timestamp: *ts,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(ListOffsetsTopic {
                name: tp.topic.clone(),
                partitions: vec![p],
            }),
        }
    }
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: isolation.wire(),
        topics,
        timeout_ms: i32::try_from(client.config().request_timeout.as_millis()).unwrap_or(i32::MAX),
    };
    let resp = client.send(leader, ConnKind::General, &req).await?;
    Ok(idx
        .iter()
        .map(|&i| {
            let (tp, _) = &queries[i];
            let p = resp
                .topics
                .iter()
                .filter(|t| t.name == tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == tp.partition)
                .ok_or_else(|| Error::Broker {
                    code: ErrorCode::UNKNOWN_SERVER_ERROR,
                    message: Some("partition missing from the answer".into()),
                    context: format!("list offsets of {tp}"),
                })?;
            Error::check(p.error_code, None, || format!("list offsets of {tp}"))?;
            Ok((p.offset, p.timestamp, p.leader_epoch))
        })
        .collect())
}
