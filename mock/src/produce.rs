//! Produce: batch validation, the leader check, idempotent producers'
//! sequence checks, and the append with offsets assigned by the mock.
//!
//! Every partition's batch is checked as the broker does before it is
//! appended (protocol guide, "Record Batch"; the broker's
//! `ProduceRequest.validateRecords` and `LogValidator`):
//! - v3+ carries exactly one record batch per partition, magic 2
//!   (else INVALID_RECORD);
//! - the batch's length fits the bytes sent, and its CRC-32C over
//!   `attributes` to the end matches (else CORRUPT_MESSAGE);
//! - `lastOffsetDelta` is `recordsCount - 1` and the count is positive
//!   (else INVALID_RECORD);
//! - the batch is at most [`MAX_MESSAGE_BYTES`], the default of the
//!   topic config `max.message.bytes` (else MESSAGE_TOO_LARGE, which the
//!   broker's `RecordTooLargeException` maps to).
//!
//! Leaders: a partition this broker does not lead is NOT_LEADER_OR_FOLLOWER,
//! with the current leader in the answer (v10+, KIP-951).
//! Acks: 0 (no answer at all), 1 and -1 (the same here, since every
//! replica is in sync at once); anything else is INVALID_REQUIRED_ACKS.

use std::collections::BTreeSet;

use skotch_protocol::error::ErrorCode;
use skotch_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use skotch_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use skotch_protocol::record::{ATTRIBUTE_TRANSACTIONAL, MAGIC_V2, RECORD_BATCH_OVERHEAD};
use skotch_protocol::Uuid;

use crate::broker::Broker;
use crate::fault;
use crate::idempotence::{last_sequence, BatchSeq, Verdict};
use crate::state::State;

/// The largest batch accepted: the default `max.message.bytes`
/// (1 MiB + the 12-byte log overhead), as the broker's `LogConfig`.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1_048_588;

/// What the checks read from a batch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    pub count: i32,
    pub max_timestamp: i64,
    pub attributes: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(x)
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// Validate the records of one partition: exactly one whole v2 batch with
/// a good CRC (see the module docs for the rules and their sources).
pub(crate) fn validate_batch(data: &[u8]) -> Result<BatchInfo, (ErrorCode, &'static str)> {
    // The 12 bytes before batchLength's span, then at least the header.
    if data.len() < RECORD_BATCH_OVERHEAD {
        return Err((
            ErrorCode::CORRUPT_MESSAGE,
            "record batch shorter than its header",
        ));
    }
    let length = be_i32(data, 8);
    let total = usize::try_from(length).ok().and_then(|l| l.checked_add(12));
    match total {
        Some(t) if t >= RECORD_BATCH_OVERHEAD && t <= data.len() => {
            if t < data.len() {
                return Err((
                    ErrorCode::INVALID_RECORD,
                    "produce requests carry exactly one record batch per partition",
                ));
            }
        }
        _ => {
            return Err((
                ErrorCode::CORRUPT_MESSAGE,
                "record batch length out of range",
            ))
        }
    }
    if data.len() > MAX_MESSAGE_BYTES {
        return Err((
            ErrorCode::MESSAGE_TOO_LARGE,
            "record batch larger than max.message.bytes",
        ));
    }
    if data[16] as i8 != MAGIC_V2 {
        return Err((ErrorCode::INVALID_RECORD, "record batch magic is not 2"));
    }
    let crc = u32::from_be_bytes([data[17], data[18], data[19], data[20]]);
    if crc32c::crc32c(&data[21..]) != crc {
        return Err((ErrorCode::CORRUPT_MESSAGE, "record batch CRC-32C mismatch"));
    }
    let last_offset_delta = be_i32(data, 23);
    let count = be_i32(data, 57);
    if count <= 0 || last_offset_delta != count - 1 {
        return Err((
            ErrorCode::INVALID_RECORD,
            "lastOffsetDelta is not recordsCount - 1",
        ));
    }
    Ok(BatchInfo {
        count,
        max_timestamp: be_i64(data, 35),
        attributes: be_i16(data, 21),
        producer_id: be_i64(data, 43),
        producer_epoch: be_i16(data, 51),
        base_sequence: be_i32(data, 53),
    })
}

/// Append one partition's records, or say why not: `Ok(base_offset)`.
fn append(
    state: &mut State,
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<&[u8]>,
    acks: i16,
) -> Result<i64, (ErrorCode, String)> {
    let node_id = broker.node_id;
    let (partitions, min_isr) = state
        .topics
        .get_mut(topic)
        .map(|t| (&mut t.partitions, t.min_insync_replicas))
        .ok_or((
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            "This server does not host this topic-partition.".to_string(),
        ))?;
    let partition = usize::try_from(index)
        .ok()
        .and_then(|i| partitions.get_mut(i))
        .ok_or((
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            "This server does not host this topic-partition.".to_string(),
        ))?;
    if let Some(code) = fault::injected_error(broker, ApiKey::Produce, Some((topic, index))) {
        return Err((code, "injected by a test".to_string()));
    }
    if partition.leader != node_id {
        return Err((
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            format!("broker {node_id} is not the leader"),
        ));
    }
    // acks=all needs min.insync.replicas in the ISR before the append
    // (Partition.appendRecordsToLeader).
    if acks == -1 && partition.isr.len() < min_isr {
        return Err((
            ErrorCode::NOT_ENOUGH_REPLICAS,
            format!(
                "The size of the current ISR {:?} is insufficient to satisfy the min.isr \
                 requirement of {min_isr} for partition {topic}-{index}",
                partition.isr
            ),
        ));
    }
    let data = records.ok_or((ErrorCode::INVALID_RECORD, "null records".to_string()))?;
    let info = validate_batch(data).map_err(|(c, m)| (c, m.to_string()))?;
    if info.attributes & ATTRIBUTE_TRANSACTIONAL != 0 {
        return Err((
            ErrorCode::INVALID_RECORD,
            "transactions are not simulated by the mock".to_string(),
        ));
    }
    let mut seq = None;
    if info.producer_id >= 0 {
        // The mock knows every producer id it handed out; a batch from any
        // other id is UNKNOWN_PRODUCER_ID (a real broker, since KIP-360,
        // accepts an unknown producer's batch at any sequence; the mock
        // is stricter so a test can see that error on demand).
        if !state.producer_ids.contains(&info.producer_id) {
            return Err((
                ErrorCode::UNKNOWN_PRODUCER_ID,
                format!("producer id {} was not issued", info.producer_id),
            ));
        }
        let s = BatchSeq {
            epoch: info.producer_epoch,
            first_seq: info.base_sequence,
            last_seq: last_sequence(info.base_sequence, info.count),
        };
        match partition.producers.check(info.producer_id, s) {
            Verdict::Append => seq = Some(s),
            Verdict::Duplicate(base) => return Ok(base),
            Verdict::Reject(code) => {
                return Err((
                    code,
                    format!(
                        "producer {} epoch {} sequence {} rejected",
                        info.producer_id, info.producer_epoch, info.base_sequence
                    ),
                ))
            }
        }
    }
    let base = partition.log.append(
        data,
        i64::from(info.count),
        info.max_timestamp,
        partition.leader_epoch,
    );
    if let Some(s) = seq {
        partition.producers.record(info.producer_id, s, base);
    }
    Ok(base)
}

/// Answer a Produce request; `None` for acks=0 (no answer is sent).
pub(crate) fn handle(
    broker: &Broker,
    req: &ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks_ok = matches!(req.acks, -1..=1);
    let mut appended = false;
    let mut leaders = BTreeSet::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    {
        let mut state = broker.shared.state();
        for t in &req.topic_data {
            let name = if version >= 13 {
                state.topic_name(t.topic_id).map(str::to_string)
            } else {
                Some(t.name.clone())
            };
            let mut partition_responses = Vec::with_capacity(t.partition_data.len());
            for p in &t.partition_data {
                let result = if !acks_ok {
                    Err((ErrorCode::INVALID_REQUIRED_ACKS, String::new()))
                } else {
                    match &name {
                        Some(n) => append(
                            &mut state,
                            broker,
                            n,
                            p.index,
                            p.records.as_deref(),
                            req.acks,
                        ),
                        None => Err((ErrorCode::UNKNOWN_TOPIC_ID, String::new())),
                    }
                };
                let part = name.as_deref().and_then(|n| {
                    state
                        .topics
                        .get(n)
                        .and_then(|t| t.partitions.get(usize::try_from(p.index).ok()?))
                });
                let mut resp = PartitionProduceResponse {
                    index: p.index,
                    log_start_offset: part.map_or(-1, |p| p.log.log_start_offset()),
                    ..Default::default()
                };
                match result {
                    Ok(base) => {
                        appended = true;
                        resp.base_offset = base;
                    }
                    Err((code, message)) => {
                        resp.error_code = code.code();
                        resp.base_offset = -1;
                        resp.error_message = (!message.is_empty()).then_some(message);
                        if code == ErrorCode::NOT_LEADER_OR_FOLLOWER && version >= 10 {
                            if let Some(part) = part {
                                resp.current_leader = LeaderIdAndEpoch {
                                    leader_id: part.leader,
                                    leader_epoch: part.leader_epoch,
                                };
                                leaders.insert(part.leader);
                            }
                        }
                    }
                }
                partition_responses.push(resp);
            }
            responses.push(TopicProduceResponse {
                name: if version >= 13 {
                    String::new()
                } else {
                    t.name.clone()
                },
                topic_id: if version >= 13 {
                    t.topic_id
                } else {
                    Uuid::ZERO
                },
                partition_responses,
            });
        }
    }
    if appended {
        broker.shared.appended.notify_waiters();
    }
    if req.acks == 0 {
        return None;
    }
    let node_endpoints = broker
        .shared
        .brokers
        .iter()
        .filter(|b| leaders.contains(&b.node_id))
        .map(|b| NodeEndpoint {
            node_id: b.node_id,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: None,
        })
        .collect();
    Some(ProduceResponse {
        responses,
        throttle_time_ms: fault::throttle_ms(),
        node_endpoints,
    })
}

/// Summary for the request log: acks, then per partition the batch's
/// record count, producer id and sequence.
pub(crate) fn summary(req: &ProduceRequest) -> String {
    let mut parts = Vec::new();
    for t in &req.topic_data {
        let topic = if t.name.is_empty() {
            t.topic_id.to_string()
        } else {
            t.name.clone()
        };
        for p in &t.partition_data {
            let what = match p.records.as_deref().map(validate_batch) {
                Some(Ok(i)) if i.producer_id >= 0 => format!(
                    "{} records pid {} epoch {} seq {}",
                    i.count, i.producer_id, i.producer_epoch, i.base_sequence
                ),
                Some(Ok(i)) => format!("{} records", i.count),
                Some(Err((c, _))) => format!("invalid ({})", c.name()),
                None => "null".into(),
            };
            parts.push(format!("{topic}-{}: {what}", p.index));
        }
    }
    format!("acks={} [{}]", req.acks, parts.join(", "))
}
