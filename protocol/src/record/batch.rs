//! One record batch, message format v2 (magic 2): its header, the CRC-32C
//! check, the decompression step and lazy record decoding; and encoding a
//! batch from a header and records.
//!
//! ```text
//! baseOffset: int64             offset of the first record
//! batchLength: int32            bytes after this field
//! partitionLeaderEpoch: int32
//! magic: int8                   2
//! crc: uint32                   CRC-32C (Castagnoli) of attributes..end
//! attributes: int16             bits 0-2 compression, 3 timestamp type,
//!                               4 transactional, 5 control, 6 delete horizon
//! lastOffsetDelta: int32
//! baseTimestamp: int64
//! maxTimestamp: int64
//! producerId: int64
//! producerEpoch: int16
//! baseSequence: int32
//! recordsCount: int32
//! records                       compressed as a whole when a codec is set
//! ```
//! Source: the protocol guide, "Record Batch"
//! (<https://kafka.apache.org/documentation/#recordbatch>), KIP-98.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{
    compress, compression_of, decompress, Compression, DEFAULT_MAX_DECOMPRESSED_SIZE,
};
use super::control::ControlRecord;
use super::records::{decode_record, encode_record, RecordBase, MIN_RECORD_SIZE};
use super::Record;
use crate::codec::{DecodeError, DecodeErrorKind, EncodeError, Reader};

/// baseOffset (8) + batchLength (4): the bytes before `batchLength`'s span.
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Offset of `batchLength` in a batch.
pub(crate) const LENGTH_OFFSET: usize = 8;
/// Offset of `magic` (the same in every message format version).
pub(crate) const MAGIC_OFFSET: usize = 16;
/// Offset of `crc`.
pub(crate) const CRC_OFFSET: usize = 17;
/// Offsets of the idempotent producer fields.
pub(crate) const PRODUCER_ID_OFFSET: usize = 43;
pub(crate) const PRODUCER_EPOCH_OFFSET: usize = 51;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = 53;
/// Offset of `attributes`, where the CRC's span starts.
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
/// Size of a v2 batch header, `recordsCount` included: the size of a batch
/// without records.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// The smallest `batchLength` any message format allows (a v0 message with
/// empty key and value); below it the framing itself is corrupt, as Java's
/// `ByteBufferLogInputStream` checks before looking at the magic.
pub(crate) const MIN_FRAME_LENGTH: usize = 14;

/// The message format this module reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Attributes bit 3: timestamps are the broker's `LogAppendTime`.
pub const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;
/// Attributes bit 4: the batch belongs to a transaction.
pub const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
/// Attributes bit 5: a control batch (transaction markers).
pub const ATTRIBUTE_CONTROL: i16 = 0x20;
/// Attributes bit 6: `baseTimestamp` is the compaction delete horizon
/// (KIP-534).
pub const ATTRIBUTE_DELETE_HORIZON: i16 = 0x40;

/// Who set the records' timestamps (attributes bit 3; the topic's
/// `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer (`CreateTime`).
    #[default]
    CreateTime,
    /// The broker, on append (`LogAppendTime`); every record of the batch
    /// then has the batch's max timestamp.
    LogAppendTime,
}

impl TimestampType {
    /// From a batch's attributes.
    pub fn from_attributes(attributes: i16) -> Self {
        if attributes & ATTRIBUTE_LOG_APPEND_TIME != 0 {
            Self::LogAppendTime
        } else {
            Self::CreateTime
        }
    }
}

/// The fields of a batch header that are not derived from its records
/// (length, CRC, record count): what [`encode_batch`] needs besides the
/// records. `Default` gives what a producer without idempotence sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (0 in produce requests: the broker
    /// assigns offsets).
    pub base_offset: i64,
    /// Leader epoch when appended (-1 from producers; set by the broker).
    pub partition_leader_epoch: i32,
    /// Attribute bits (see the `ATTRIBUTE_*` constants and
    /// [`Compression::id`]).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp the records' deltas are relative to (ms).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (ms), -1 when it has none.
    pub max_timestamp: i64,
    /// Producer id, -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, -1 without idempotence.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 without idempotence.
    pub base_sequence: i32,
}

impl Default for BatchHeader {
    fn default() -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// A decoded record batch: the header fields, and the (decompressed)
/// records, decoded one by one by [`RecordBatch::records`].
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
    /// Attribute bits; see the accessors.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`. Compaction may
    /// have removed records, so this, not the record count, says where the
    /// next batch starts.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (ms), or the delete horizon when
    /// [`has_delete_horizon`](Self::has_delete_horizon).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (ms); the append time for
    /// `LogAppendTime` batches.
    pub max_timestamp: i64,
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// Sequence number of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Number of records the header announces (checked against the bytes
    /// present).
    pub record_count: i32,
    records: Bytes,
}

impl RecordBatch {
    /// Decode exactly one batch from `data` (a truncated batch or bytes
    /// after it are errors). `check_crc` verifies the CRC-32C, as the Java
    /// consumer's `check.crcs` (default true) does; turn it off only for
    /// fuzzing or forensics. A compressed batch may inflate to at most
    /// [`DEFAULT_MAX_DECOMPRESSED_SIZE`] bytes; see
    /// [`decode_bounded`](Self::decode_bounded).
    pub fn decode(data: Bytes, check_crc: bool) -> Result<Self, DecodeError> {
        Self::decode_bounded(data, check_crc, DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// [`decode`](Self::decode) with a limit on the decompressed size of
    /// the records, in bytes: a batch whose codec claims or produces more
    /// is a `DecompressedTooLarge` error.
    pub fn decode_bounded(
        data: Bytes,
        check_crc: bool,
        max_decompressed: usize,
    ) -> Result<Self, DecodeError> {
        let len = match frame(&data)? {
            Frame::Whole(len) => len,
            Frame::Partial => {
                return Err(DecodeError::new(
                    "record_batch",
                    DecodeErrorKind::Truncated {
                        needed: needed_len(&data),
                        remaining: data.len(),
                    },
                ))
            }
        };
        if data.len() > len {
            return Err(DecodeError::new(
                "record_batch",
                DecodeErrorKind::TrailingBytes(data.len() - len),
            ));
        }
        decode_whole(data, check_crc, max_decompressed)
    }

    /// The compression codec; `None` for ids no codec uses (decoding
    /// rejects those, so only hand-built values have them).
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_attributes(self.attributes)
    }

    /// Who set the timestamps.
    pub fn timestamp_type(&self) -> TimestampType {
        TimestampType::from_attributes(self.attributes)
    }

    /// Part of a transaction (KIP-98).
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    /// A control batch (transaction markers): never handed to users.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }

    /// `base_timestamp` holds the compaction delete horizon (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & ATTRIBUTE_DELETE_HORIZON != 0
    }

    /// Offset of the last record, from the header.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset that follows this batch: where a consumer's position
    /// moves once the batch is consumed (offsets may have gaps).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The header fields needed to encode a batch like this one.
    pub fn header(&self) -> BatchHeader {
        BatchHeader {
            base_offset: self.base_offset,
            partition_leader_epoch: self.partition_leader_epoch,
            attributes: self.attributes,
            last_offset_delta: self.last_offset_delta,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
        }
    }

    /// The records, decoded one at a time (each bounded by its own length
    /// prefix). After an error the iterator ends. If bytes remain after the
    /// announced number of records, a final `TrailingBytes` error says so
    /// (Java: "Incorrect declared batch size").
    pub fn records(&self) -> RecordIter {
        RecordIter {
            reader: Reader::new(self.records.clone()),
            left: usize::try_from(self.record_count).unwrap_or(0),
            base: RecordBase {
                base_offset: self.base_offset,
                base_timestamp: self.base_timestamp,
                log_append_time: (self.timestamp_type() == TimestampType::LogAppendTime)
                    .then_some(self.max_timestamp),
            },
            done: false,
        }
    }

    /// For a control batch, its control record (the first record's key);
    /// `None` for other batches or an empty one.
    pub fn control_record(&self) -> Option<Result<ControlRecord, DecodeError>> {
        if !self.is_control() {
            return None;
        }
        let first = self.records().next()?;
        Some(first.and_then(|r| ControlRecord::from_record(&r)))
    }

    /// The plain (decompressed) bytes of the records, as the batch
    /// carries them after its header.
    pub fn record_bytes(&self) -> &Bytes {
        &self.records
    }

    /// Encode this batch again from its header fields and record bytes,
    /// recomputing length and CRC. An uncompressed batch that decoded with
    /// its CRC checked gives back the original bytes; a compressed one is
    /// compressed again with its codec's default level, which need not
    /// reproduce the original compressed bytes (other encoders, levels and
    /// framings give other bytes for the same records).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = write_header(out, &self.header(), self.record_count);
        let written = write_records(out, self.attributes, &self.records)
            .and_then(|()| finish_batch(out, start));
        written.inspect_err(|_| out.truncate(start))
    }
}

/// Iterator over a batch's records; see [`RecordBatch::records`].
#[derive(Debug, Clone)]
pub struct RecordIter {
    reader: Reader,
    left: usize,
    base: RecordBase,
    done: bool,
}

impl Iterator for RecordIter {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            if self.reader.is_empty() {
                return None;
            }
            return Some(Err(DecodeError::new(
                "record_batch.records_count",
                DecodeErrorKind::TrailingBytes(self.reader.remaining()),
            )));
        }
        self.left -= 1;
        let r = decode_record(&mut self.reader, self.base);
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(self.left.saturating_add(1)))
        }
    }
}

/// How much of a batch the bytes at hand hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole batch of this many bytes (log overhead included).
    Whole(usize),
    /// Only part of one: the rest did not fit the response.
    Partial,
}

/// Frame the batch at the start of `data`, from its length field alone.
pub(crate) fn frame(data: &[u8]) -> Result<Frame, DecodeError> {
    let Some(len) = data.get(LENGTH_OFFSET..LOG_OVERHEAD) else {
        return Ok(Frame::Partial);
    };
    let length = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let length = usize::try_from(length)
        .ok()
        .filter(|l| *l >= MIN_FRAME_LENGTH)
        .ok_or_else(|| {
            DecodeError::new(
                "record_batch.batch_length",
                DecodeErrorKind::InvalidLength(i64::from(length)),
            )
        })?;
    let total = LOG_OVERHEAD + length;
    Ok(if data.len() < total {
        Frame::Partial
    } else {
        Frame::Whole(total)
    })
}

/// Bytes a partial batch needs to be whole.
fn needed_len(data: &[u8]) -> usize {
    match data.get(LENGTH_OFFSET..LOG_OVERHEAD) {
        Some(l) => usize::try_from(i32::from_be_bytes([l[0], l[1], l[2], l[3]]))
            .map_or(LOG_OVERHEAD, |n| n.saturating_add(LOG_OVERHEAD)),
        None => LOG_OVERHEAD,
    }
}

/// Decode a batch that `frame` found whole: `whole` is exactly the batch.
pub(crate) fn decode_whole(
    whole: Bytes,
    check_crc: bool,
    max_decompressed: usize,
) -> Result<RecordBatch, DecodeError> {
    // Message formats v0/v1 (Kafka before 0.11) put their magic at the
    // same offset: say which one it is rather than misreading it.
    if let Some(&magic) = whole.get(MAGIC_OFFSET) {
        let magic = magic as i8;
        if magic != MAGIC_V2 {
            return Err(DecodeError::new(
                "record_batch.magic",
                DecodeErrorKind::UnsupportedVersion(i16::from(magic)),
            ));
        }
    }
    if whole.len() < RECORD_BATCH_OVERHEAD {
        return Err(DecodeError::new(
            "record_batch.batch_length",
            DecodeErrorKind::InvalidLength((whole.len() - LOG_OVERHEAD) as i64),
        ));
    }
    let mut r = Reader::new(whole);
    let base_offset = r.i64("record_batch.base_offset")?;
    let _length = r.i32("record_batch.batch_length")?;
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
    // The decompression step: the record count is checked against what it
    // returns, so a codec's output is bounded the same way.
    let records = decompress(compression_of(attributes)?, r.take_rest(), max_decompressed)?;
    let count_fits = usize::try_from(record_count)
        .ok()
        .is_some_and(|n| n.saturating_mul(MIN_RECORD_SIZE) <= records.len());
    if !count_fits {
        return Err(DecodeError::new(
            "record_batch.records_count",
            DecodeErrorKind::InvalidLength(i64::from(record_count)),
        ));
    }
    Ok(RecordBatch {
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
        records,
    })
}

/// Write a v2 header with placeholder length and CRC; returns where the
/// batch starts, for [`finish_batch`].
pub(crate) fn write_header(out: &mut BytesMut, h: &BatchHeader, record_count: i32) -> usize {
    let start = out.len();
    out.reserve(RECORD_BATCH_OVERHEAD);
    out.put_i64(h.base_offset);
    out.put_i32(0); // batch length, patched by finish_batch
    out.put_i32(h.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0); // crc, patched by finish_batch
    out.put_i16(h.attributes);
    out.put_i32(h.last_offset_delta);
    out.put_i64(h.base_timestamp);
    out.put_i64(h.max_timestamp);
    out.put_i64(h.producer_id);
    out.put_i16(h.producer_epoch);
    out.put_i32(h.base_sequence);
    out.put_i32(record_count);
    start
}

/// Append a batch's plain record bytes to `out`, compressed with the codec
/// of `attributes` at its default level.
fn write_records(out: &mut BytesMut, attributes: i16, records: &[u8]) -> Result<(), EncodeError> {
    match Compression::from_attributes(attributes) {
        Some(Compression::None) => out.extend_from_slice(records),
        Some(codec) => out.extend_from_slice(&compress(codec, None, records)?),
        None => {
            return Err(EncodeError::Other(
                "unknown compression codec in attributes",
            ))
        }
    }
    Ok(())
}

/// Patch the length and CRC of the batch that starts at `start` and runs
/// to the end of `out`.
pub(crate) fn finish_batch(out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
    let batch = out
        .get_mut(start..)
        .filter(|b| b.len() >= RECORD_BATCH_OVERHEAD)
        .ok_or(EncodeError::Other("record batch header missing"))?;
    let length = i32::try_from(batch.len() - LOG_OVERHEAD).map_err(|_| EncodeError::TooLong {
        field: "record_batch.batch_length",
        len: batch.len(),
    })?;
    let (head, tail) = batch.split_at_mut(ATTRIBUTES_OFFSET);
    let crc = crc32c::crc32c(tail);
    head[LENGTH_OFFSET..LOG_OVERHEAD].copy_from_slice(&length.to_be_bytes());
    head[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Encode one batch of `records` with the header fields of `header`
/// (taken as given: `last_offset_delta` and `max_timestamp` are not
/// recomputed, since compaction legitimately leaves them pointing past the
/// records that remain), compressed with the codec in `header.attributes`
/// at its default level. Each record's offset and timestamp become deltas
/// from `header.base_offset` and `header.base_timestamp`.
///
/// Errors: a codec id no codec uses (5-7), a record offset more than 2^31
/// away from the base offset, or a field too long for its int32 length.
pub fn encode_batch(
    header: &BatchHeader,
    records: &[Record],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let count = i32::try_from(records.len()).map_err(|_| EncodeError::TooLong {
        field: "record_batch.records_count",
        len: records.len(),
    })?;
    let start = write_header(out, header, count);
    // Records are written in place when uncompressed, else into a scratch
    // buffer that is then compressed.
    let compressed = Compression::from_attributes(header.attributes) != Some(Compression::None);
    let mut plain = BytesMut::new();
    let target = if compressed { &mut plain } else { &mut *out };
    let written = records
        .iter()
        .try_for_each(|r| {
            let offset_delta =
                i32::try_from(r.offset.wrapping_sub(header.base_offset)).map_err(|_| {
                    EncodeError::Other(
                        "record offset is more than 2^31 from the batch's base offset",
                    )
                })?;
            let timestamp_delta = r.timestamp.wrapping_sub(header.base_timestamp);
            encode_record(target, offset_delta, timestamp_delta, r)
        })
        .and_then(|()| match compressed {
            true => write_records(out, header.attributes, &plain),
            false => Ok(()),
        })
        .and_then(|()| finish_batch(out, start));
    // On error, leave `out` as it was.
    written.inspect_err(|_| out.truncate(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_offsets() {
        let mut out = BytesMut::new();
        let h = BatchHeader {
            base_offset: 0x0102_0304_0506_0708,
            attributes: 0x0030,
            last_offset_delta: 0x0a0b_0c0d,
            ..BatchHeader::default()
        };
        encode_batch(&h, &[], &mut out).unwrap();
        assert_eq!(out.len(), RECORD_BATCH_OVERHEAD);
        assert_eq!(out[MAGIC_OFFSET], 2);
        assert_eq!(&out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2], &[0, 0x30]);
        assert_eq!(&out[23..27], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(&out[57..], &[0, 0, 0, 0]); // recordsCount
        assert_eq!(&out[LENGTH_OFFSET..LOG_OVERHEAD], &[0, 0, 0, 49]);
        let b = RecordBatch::decode(out.freeze(), true).unwrap();
        assert_eq!(b.header(), h);
        assert!(b.is_control() && b.is_transactional());
        assert_eq!(b.control_record(), None);
    }

    #[test]
    fn framing_errors() {
        let mut out = BytesMut::new();
        encode_batch(&BatchHeader::default(), &[], &mut out).unwrap();
        let whole = out.freeze();
        // Too short a length for any format.
        let mut bad = BytesMut::from(&whole[..]);
        bad[LENGTH_OFFSET..LOG_OVERHEAD].copy_from_slice(&13i32.to_be_bytes());
        let e = RecordBatch::decode(bad.freeze(), false).unwrap_err();
        assert_eq!(e.field, "record_batch.batch_length");
        // Long enough for v0 but not for a v2 header.
        let mut bad = BytesMut::from(&whole[..30]);
        bad[LENGTH_OFFSET..LOG_OVERHEAD].copy_from_slice(&18i32.to_be_bytes());
        let e = RecordBatch::decode(bad.freeze(), false).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidLength(18));
        // Trailing and missing bytes.
        let mut more = BytesMut::from(&whole[..]);
        more.put_u8(0);
        let e = RecordBatch::decode(more.freeze(), true).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TrailingBytes(1));
        let e = RecordBatch::decode(whole.slice(..60), true).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 61,
                remaining: 60
            }
        );
    }

    #[test]
    fn offsets_too_far_apart_are_an_encode_error() {
        let rec = Record {
            offset: i64::from(i32::MAX) + 1,
            ..Record::default()
        };
        let mut out = BytesMut::from(&b"keep"[..]);
        assert!(encode_batch(&BatchHeader::default(), &[rec], &mut out).is_err());
        assert_eq!(&out[..], b"keep");
    }
}
