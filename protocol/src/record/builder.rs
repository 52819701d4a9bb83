//! Building the producer's record batches, the sans-IO part of the Java
//! client's `MemoryRecordsBuilder`: records are encoded as they are pushed,
//! so the batch size is known exactly at every step and `build` only adds
//! the header and the CRC (and compresses, when a codec is set).
//! Timestamps come from the caller (ms since the Unix epoch); nothing here
//! reads a clock.

use bytes::{Bytes, BytesMut};

use super::batch::{finish_batch, write_header, BatchHeader, ATTRIBUTE_TRANSACTIONAL};
use super::batch::{BASE_SEQUENCE_OFFSET, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET};
use super::batch::{LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};
use super::compression::{compress, Compression, COMPRESSION_MASK};
use super::records::{encode_record, record_size};
use super::Record;
use crate::codec::EncodeError;

/// Default `batch.size` of the Java producer: 16384 bytes.
pub const DEFAULT_BATCH_SIZE: usize = 16384;

/// Builds one v2 record batch for a produce request, uncompressed unless
/// [`compression`](Self::compression) sets a codec.
///
/// The batch has base offset 0 (the broker assigns offsets), partition
/// leader epoch -1, `CreateTime` timestamps and, unless
/// [`producer`](Self::producer) says otherwise, producer id, epoch and base
/// sequence -1 (no idempotence). Like Java, the base timestamp is the first
/// record's timestamp.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    max_batch_size: usize,
    /// [`RECORD_BATCH_OVERHEAD`] bytes kept free for the header, then the
    /// encoded records: an uncompressed batch is finished in place.
    records: BytesMut,
    count: i32,
    header: BatchHeader,
    level: Option<i32>,
}

impl RecordBatchBuilder {
    /// A builder for batches of up to `max_batch_size` bytes (the Java
    /// producer's `batch.size`, default [`DEFAULT_BATCH_SIZE`]), header
    /// included. A single record larger than that is still accepted into
    /// an empty builder, as the Java client does; the producer checks
    /// `max.request.size` separately.
    pub fn new(max_batch_size: usize) -> Self {
        Self::with_capacity(max_batch_size, 0)
    }

    /// Like [`new`](Self::new), with room for `capacity` bytes of batch
    /// (header included) allocated up front, so that pushing records up to
    /// that size never reallocates. The producer passes `batch.size`, which
    /// is what `buffer.memory` counts.
    pub fn with_capacity(max_batch_size: usize, capacity: usize) -> Self {
        let mut records = BytesMut::with_capacity(capacity.max(RECORD_BATCH_OVERHEAD));
        records.resize(RECORD_BATCH_OVERHEAD, 0);
        Self {
            max_batch_size,
            records,
            count: 0,
            header: BatchHeader::default(),
            level: None,
        }
    }

    /// Compress the records with `codec` at `level` (the codec's default
    /// when `None`; see [`Compression::check_level`]); the attributes
    /// carry the codec. The size limit still counts uncompressed bytes, so
    /// a compressed batch is always smaller than `batch.size` (Java
    /// instead estimates the compression ratio and may fill batches
    /// fuller). A level the codec refuses makes [`build`](Self::build)
    /// fail.
    pub fn compression(mut self, codec: Compression, level: Option<i32>) -> Self {
        self.header.attributes = (self.header.attributes & !COMPRESSION_MASK) | codec.id();
        self.level = level;
        self
    }

    /// Set the idempotent / transactional producer fields (KIP-98): the
    /// producer id and epoch from InitProducerId, and the sequence number
    /// of the batch's first record.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.header.producer_id = producer_id;
        self.header.producer_epoch = producer_epoch;
        self.header.base_sequence = base_sequence;
        self
    }

    /// Mark the batch as part of a transaction (attributes bit 4).
    pub fn transactional(mut self, transactional: bool) -> Self {
        if transactional {
            self.header.attributes |= ATTRIBUTE_TRANSACTIONAL;
        } else {
            self.header.attributes &= !ATTRIBUTE_TRANSACTIONAL;
        }
        self
    }

    /// The size limit given to [`new`](Self::new), in bytes.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Add a record, or give it back when it does not fit: the batch would
    /// exceed its size limit (never for the first record), or a field is
    /// too long for the format's int32 lengths (then even an empty builder
    /// refuses it). Offsets are assigned in push order; `record.offset` is
    /// ignored.
    pub fn try_push(&mut self, record: Record) -> Result<(), Record> {
        if self.count == i32::MAX {
            return Err(record);
        }
        let offset_delta = self.count;
        let base_timestamp = if self.count == 0 {
            record.timestamp
        } else {
            self.header.base_timestamp
        };
        let timestamp_delta = record.timestamp.wrapping_sub(base_timestamp);
        let Some(size) = record_size(offset_delta, timestamp_delta, &record) else {
            return Err(record);
        };
        let new_size = self.estimated_size().saturating_add(size);
        if self.count > 0 && new_size > self.max_batch_size {
            return Err(record);
        }
        // The whole batch must still fit its int32 length field.
        if i32::try_from(new_size - LOG_OVERHEAD).is_err() {
            return Err(record);
        }
        if encode_record(&mut self.records, offset_delta, timestamp_delta, &record).is_err() {
            return Err(record);
        }
        if self.count == 0 {
            self.header.base_timestamp = record.timestamp;
            self.header.max_timestamp = record.timestamp;
        }
        self.header.max_timestamp = self.header.max_timestamp.max(record.timestamp);
        self.header.last_offset_delta = offset_delta;
        self.count += 1;
        Ok(())
    }

    /// Encoded size of the batch so far, header included, in bytes: exact
    /// for uncompressed batches, an upper bound (bar a few bytes of codec
    /// framing on incompressible data) for compressed ones.
    pub fn estimated_size(&self) -> usize {
        self.records.len()
    }

    /// Bytes allocated for the batch so far (at least its size).
    pub fn capacity(&self) -> usize {
        self.records.capacity()
    }

    /// Number of records pushed.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded batch. Lengths, `last_offset_delta`, `max_timestamp`
    /// and the CRC are computed here. The builder is left as it was, so a
    /// batch can be built again (e.g. with a new producer epoch later).
    /// An empty builder gives a valid batch with no records, which
    /// producers should not send.
    ///
    /// Errors: a compression level the codec refuses, or a compressed
    /// batch longer than its int32 length field.
    pub fn build(&self) -> Result<Bytes, EncodeError> {
        self.clone().finish()
    }

    /// The encoded batch, like [`build`](Self::build) but consuming the
    /// builder: an uncompressed batch gets its header written into the
    /// space kept for it, so the record bytes are not copied again.
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        let codec = Compression::from_attributes(self.header.attributes);
        match codec {
            Some(Compression::None) | None => {
                let mut out = self.records;
                let mut head = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD);
                write_header(&mut head, &self.header, self.count);
                out[..RECORD_BATCH_OVERHEAD].copy_from_slice(&head);
                finish_batch(&mut out, 0)?;
                Ok(out.freeze())
            }
            Some(codec) => {
                let body = self
                    .records
                    .get(RECORD_BATCH_OVERHEAD..)
                    .unwrap_or_default();
                let compressed = compress(codec, self.level, body)?;
                let mut out = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + compressed.len());
                let start = write_header(&mut out, &self.header, self.count);
                out.extend_from_slice(&compressed);
                finish_batch(&mut out, start)?;
                Ok(out.freeze())
            }
        }
    }

    /// The codec the batch will be compressed with.
    pub fn codec(&self) -> Compression {
        Compression::from_attributes(self.header.attributes).unwrap_or(Compression::None)
    }
}

/// A copy of the encoded batch `batch` with other idempotent producer
/// fields (producer id, epoch, base sequence) and its CRC recomputed: how a
/// batch is resent after the producer's epoch was bumped (KIP-360), without
/// compressing it again.
///
/// Errors: `batch` is shorter than a batch header.
pub fn with_producer_fields(
    batch: &[u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<Bytes, EncodeError> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(EncodeError::Other("record batch header missing"));
    }
    let mut out = BytesMut::from(batch);
    out[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer_id.to_be_bytes());
    out[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    out[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
        .copy_from_slice(&base_sequence.to_be_bytes());
    finish_batch(&mut out, 0)?;
    Ok(out.freeze())
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self::new(DEFAULT_BATCH_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Compression, RecordBatch, TimestampType};

    fn rec(ts: i64, value: &'static [u8]) -> Record {
        Record {
            timestamp: ts,
            value: Some(Bytes::from_static(value)),
            ..Record::default()
        }
    }

    #[test]
    fn header_fields_are_computed() {
        let mut b = RecordBatchBuilder::new(DEFAULT_BATCH_SIZE)
            .producer(7, 3, 42)
            .transactional(true);
        for (i, ts) in [1_000, 3_000, 2_000].into_iter().enumerate() {
            let mut r = rec(ts, b"v");
            r.offset = 999; // ignored
            b.try_push(r).unwrap();
            assert_eq!(b.record_count(), i as i32 + 1);
        }
        let data = b.build().unwrap();
        assert_eq!(data.len(), b.estimated_size());
        let batch = RecordBatch::decode(data, true).unwrap();
        assert_eq!(batch.base_offset, 0);
        assert_eq!(batch.partition_leader_epoch, -1);
        assert_eq!(batch.last_offset_delta, 2);
        assert_eq!(batch.base_timestamp, 1_000);
        assert_eq!(batch.max_timestamp, 3_000);
        assert_eq!(
            (batch.producer_id, batch.producer_epoch, batch.base_sequence),
            (7, 3, 42)
        );
        assert!(batch.is_transactional() && !batch.is_control());
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        let got: Vec<_> = batch.records().map(|r| r.unwrap()).collect();
        assert_eq!(
            got.iter()
                .map(|r| (r.offset, r.timestamp))
                .collect::<Vec<_>>(),
            vec![(0, 1_000), (1, 3_000), (2, 2_000)]
        );
    }

    #[test]
    fn batch_size_limit() {
        // Each of these records takes 9 bytes: 61 + 4 * 9 = 97 <= 100.
        let mut b = RecordBatchBuilder::new(100);
        for _ in 0..4 {
            b.try_push(rec(0, b"ab")).unwrap();
        }
        assert_eq!(b.estimated_size(), 97);
        let back = b.try_push(rec(0, b"ab")).unwrap_err();
        assert_eq!(back.value.as_deref(), Some(&b"ab"[..]));
        assert_eq!(b.record_count(), 4);
        // A record above the limit still goes into an empty builder.
        let mut b = RecordBatchBuilder::new(10);
        assert!(b.try_push(rec(0, &[0; 500])).is_ok());
        assert!(b.try_push(rec(0, b"")).is_err());
        assert_eq!(b.estimated_size(), b.build().unwrap().len());
    }

    #[test]
    fn finish_in_place_and_rewrite_producer_fields() {
        for codec in [Compression::None, Compression::Gzip] {
            let mut b = RecordBatchBuilder::with_capacity(1000, 1000)
                .compression(codec, None)
                .producer(5, 1, 10);
            assert!(b.capacity() >= 1000);
            b.try_push(rec(1, b"hello")).unwrap();
            b.try_push(rec(2, b"world")).unwrap();
            let copy = b.build().unwrap();
            let data = b.finish().unwrap();
            assert_eq!(copy, data);
            let batch = RecordBatch::decode(data.clone(), true).unwrap();
            assert_eq!((batch.producer_id, batch.base_sequence), (5, 10));
            let again = with_producer_fields(&data, 6, 2, 0).unwrap();
            let batch = RecordBatch::decode(again, true).unwrap();
            assert_eq!(
                (batch.producer_id, batch.producer_epoch, batch.base_sequence),
                (6, 2, 0)
            );
            let values: Vec<_> = batch.records().map(|r| r.unwrap().value).collect();
            assert_eq!(values.len(), 2);
        }
        assert!(with_producer_fields(&[0; 10], 1, 1, 1).is_err());
    }

    #[test]
    fn empty_builder_builds_an_empty_batch() {
        let b = RecordBatchBuilder::default();
        assert!(b.is_empty());
        assert_eq!(b.max_batch_size(), 16384);
        let batch = RecordBatch::decode(b.build().unwrap(), true).unwrap();
        assert_eq!(batch.record_count, 0);
        assert_eq!(batch.records().count(), 0);
    }
}
