//! Decoding record batches: the batch header first (checked, CRC verified),
//! records lazily, each one bounded by its own length prefix.

use bytes::Bytes;

use super::{Compression, ControlRecord, Header, Record, TimestampType};
use crate::codec::{capacity_hint, DecodeError, DecodeErrorKind, Reader};

/// Bytes before `batchLength`'s payload: baseOffset (8) + batchLength (4).
const LOG_OVERHEAD: usize = 12;
/// Header bytes after `batchLength`, up to and including the record count.
const HEADER_AFTER_LENGTH: usize = 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/// Offset of `magic` from the start of the batch.
const MAGIC_OFFSET: usize = 16;
/// The smallest possible record: length, attributes, timestamp delta,
/// offset delta, key length, value length, header count (1 byte each).
const MIN_RECORD: usize = 7;

/// A decoded batch header with its (still encoded) records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch of the partition when the batch was appended.
    pub partition_leader_epoch: i32,
    /// Message format version (always 2 here).
    pub magic: i8,
    /// CRC-32C carried by the batch.
    pub crc: u32,
    /// Attribute bits: compression, timestamp type, transactional, control.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (ms).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (ms).
    pub max_timestamp: i64,
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// Sequence number of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Number of records the header announces.
    pub record_count: i32,
    records: Bytes,
}

impl RecordBatch {
    /// Compression codec; `None` for attribute values no codec uses.
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_attributes(self.attributes)
    }

    /// Who set the timestamps.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & 0x08 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// A control batch (transaction markers): never handed to users.
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Offset of the last record (records may have been compacted away, so
    /// this comes from the header, not from counting).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset that follows this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The records, decoded one by one.
    pub fn records(&self) -> RecordIter {
        RecordIter {
            reader: Reader::new(self.records.clone()),
            left: usize::try_from(self.record_count).unwrap_or(0),
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
            log_append_time: (self.timestamp_type() == TimestampType::LogAppendTime)
                .then_some(self.max_timestamp),
        }
    }

    /// For a control batch, its control record (the first record's key).
    pub fn control_record(&self) -> Option<ControlRecord> {
        if !self.is_control() {
            return None;
        }
        let r = self.records().next()?.ok()?;
        ControlRecord::parse(r.key.as_deref()?)
    }
}

/// Iterator over the batches of a fetch response's record data.
#[derive(Debug, Clone)]
pub struct BatchIter {
    reader: Reader,
    check_crc: bool,
    failed: bool,
}

/// Walk the batches in `data`. With `check_crc` (the default everywhere but
/// fuzzing), a batch whose CRC-32C does not match is an error.
pub fn decode_batches(data: Bytes, check_crc: bool) -> BatchIter {
    BatchIter {
        reader: Reader::new(data),
        check_crc,
        failed: false,
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = decode_one(&mut self.reader, self.check_crc).transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

/// One batch, `Ok(None)` at the end or at a partial trailing batch.
fn decode_one(reader: &mut Reader, check_crc: bool) -> Result<Option<RecordBatch>, DecodeError> {
    let head = reader.peek();
    if head.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let Ok(length) = usize::try_from(length) else {
        return Err(DecodeError::new(
            "record_batch.batch_length",
            DecodeErrorKind::InvalidLength(i64::from(length)),
        ));
    };
    if head.len() < LOG_OVERHEAD + length {
        // The broker cut the last batch at the fetch size limit.
        return Ok(None);
    }
    if let Some(&magic) = head.get(MAGIC_OFFSET) {
        if magic != 2 {
            return Err(DecodeError::new(
                "record_batch.magic",
                DecodeErrorKind::Other(
                    "message format v0/v1 (magic 0/1) is not supported; Kafka 4 brokers never send it",
                ),
            ));
        }
    }
    if length < HEADER_AFTER_LENGTH {
        return Err(DecodeError::new(
            "record_batch.batch_length",
            DecodeErrorKind::InvalidLength(length as i64),
        ));
    }
    let whole = reader.take(LOG_OVERHEAD + length, "record_batch")?;
    let mut r = Reader::new(whole.clone());
    let base_offset = r.i64("record_batch.base_offset")?;
    let _ = r.i32("record_batch.batch_length")?;
    let partition_leader_epoch = r.i32("record_batch.partition_leader_epoch")?;
    let magic = r.i8("record_batch.magic")?;
    let crc = r.u32("record_batch.crc")?;
    if check_crc {
        let computed = crc32c::crc32c(r.peek());
        if computed != crc {
            return Err(DecodeError::new(
                "record_batch.crc",
                DecodeErrorKind::ChecksumMismatch {
                    expected: crc,
                    computed,
                },
            ));
        }
    }
    let attributes = r.i16("record_batch.attributes")?;
    let last_offset_delta = r.i32("record_batch.last_offset_delta")?;
    let base_timestamp = r.i64("record_batch.base_timestamp")?;
    let max_timestamp = r.i64("record_batch.max_timestamp")?;
    let producer_id = r.i64("record_batch.producer_id")?;
    let producer_epoch = r.i16("record_batch.producer_epoch")?;
    let base_sequence = r.i32("record_batch.base_sequence")?;
    let record_count = r.i32("record_batch.records_count")?;
    match Compression::from_attributes(attributes) {
        Some(Compression::None) => {}
        Some(c) => {
            return Err(DecodeError::new(
                "record_batch.attributes",
                DecodeErrorKind::UnsupportedCompression(c.name()),
            ))
        }
        None => {
            return Err(DecodeError::new(
                "record_batch.attributes",
                DecodeErrorKind::InvalidValue(i64::from(attributes & 0x07)),
            ))
        }
    }
    // Every record takes at least MIN_RECORD bytes: a count the remaining
    // bytes cannot hold is rejected before anything is decoded.
    let count_ok = usize::try_from(record_count)
        .ok()
        .is_some_and(|n| n.saturating_mul(MIN_RECORD) <= r.remaining());
    if !count_ok {
        return Err(DecodeError::new(
            "record_batch.records_count",
            DecodeErrorKind::InvalidLength(i64::from(record_count)),
        ));
    }
    Ok(Some(RecordBatch {
        base_offset,
        partition_leader_epoch,
        magic,
        crc,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        record_count,
        records: r.take_rest(),
    }))
}

/// Iterator over a batch's records.
#[derive(Debug, Clone)]
pub struct RecordIter {
    reader: Reader,
    left: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
}

impl Iterator for RecordIter {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.decode_record();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl RecordIter {
    fn decode_record(&mut self) -> Result<Record, DecodeError> {
        let len = self.reader.varint("record.length")?;
        let len = usize::try_from(len).map_err(|_| {
            DecodeError::new(
                "record.length",
                DecodeErrorKind::InvalidLength(i64::from(len)),
            )
        })?;
        let mut r = Reader::new(self.reader.take(len, "record")?);
        let _attributes = r.i8("record.attributes")?;
        let ts_delta = r.varlong("record.timestamp_delta")?;
        let offset_delta = r.varint("record.offset_delta")?;
        let key = varint_bytes(&mut r, "record.key")?;
        let value = varint_bytes(&mut r, "record.value")?;
        let n = r.varint("record.headers_count")?;
        // Each header takes at least 2 bytes (key length, value length).
        let n = usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(2) <= r.remaining())
            .ok_or_else(|| {
                DecodeError::new(
                    "record.headers_count",
                    DecodeErrorKind::InvalidLength(i64::from(n)),
                )
            })?;
        let mut headers = Vec::with_capacity(capacity_hint(n));
        for _ in 0..n {
            let key = varint_bytes(&mut r, "record.header.key")?.ok_or_else(|| {
                DecodeError::new("record.header.key", DecodeErrorKind::UnexpectedNull)
            })?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| DecodeError::new("record.header.key", DecodeErrorKind::InvalidUtf8))?;
            let value = varint_bytes(&mut r, "record.header.value")?;
            headers.push(Header { key, value });
        }
        // The length prefix must match the fields exactly (as Java checks).
        r.finish("record")?;
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self
                .log_append_time
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(ts_delta)),
            key,
            value,
            headers,
        })
    }
}

/// varint length (-1 = null) then bytes.
fn varint_bytes(r: &mut Reader, field: &'static str) -> Result<Option<Bytes>, DecodeError> {
    let len = r.varint(field)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::new(field, DecodeErrorKind::InvalidLength(i64::from(len))))?;
    r.take(len, field).map(Some)
}
