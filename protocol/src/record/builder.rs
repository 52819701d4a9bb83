//! Encoding record batches for the producer. Records are encoded as they
//! are pushed, so the size is known exactly and `build` only writes the
//! header and the CRC.

use bytes::{BufMut, Bytes, BytesMut};

use super::Record;
use crate::codec::Writer;

/// Size of a v2 batch header, record count included.
const BATCH_HEADER: usize = 61;
/// Offset of the CRC field and of the attributes that follow it.
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// Builds one uncompressed v2 record batch.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    max_size: usize,
    records: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

impl RecordBatchBuilder {
    /// A builder for batches of up to `max_size` bytes (`batch.size`). A
    /// single record larger than that is still accepted into an empty
    /// builder, as the Java client does.
    pub fn new(max_size: usize) -> Self {
        Self {
            max_size,
            records: BytesMut::new(),
            count: 0,
            base_timestamp: 0,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }

    /// Set the idempotent producer fields (KIP-98).
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Add a record; gives it back when the batch is full. Offsets are
    /// assigned in push order; `record.offset` is ignored.
    pub fn try_push(&mut self, record: Record) -> Result<(), Record> {
        if self.count == i32::MAX {
            return Err(record);
        }
        if self.count == 0 {
            self.base_timestamp = record.timestamp;
        }
        let mut body = BytesMut::with_capacity(32);
        body.put_i8(0); // record attributes: unused
        body.put_varlong(record.timestamp.wrapping_sub(self.base_timestamp));
        body.put_varint(self.count);
        put_varint_bytes(&mut body, record.key.as_deref());
        put_varint_bytes(&mut body, record.value.as_deref());
        body.put_varint(i32::try_from(record.headers.len()).unwrap_or(i32::MAX));
        for h in &record.headers {
            put_varint_bytes(&mut body, Some(h.key.as_bytes()));
            put_varint_bytes(&mut body, h.value.as_deref());
        }
        let Ok(body_len) = i32::try_from(body.len()) else {
            return Err(record);
        };
        let added = body.len() + 5;
        if self.count > 0 && self.estimated_size() + added > self.max_size {
            return Err(record);
        }
        self.records.put_varint(body_len);
        self.records.extend_from_slice(&body);
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        self.count += 1;
        Ok(())
    }

    /// Encoded size of the batch so far, in bytes.
    pub fn estimated_size(&self) -> usize {
        BATCH_HEADER + self.records.len()
    }

    /// Number of records pushed.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded batch: base offset 0, CreateTime, no compression.
    pub fn build(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.estimated_size());
        let batch_length = self.estimated_size() - 12;
        out.put_i64(0); // base offset: the broker assigns offsets
        out.put_i32(i32::try_from(batch_length).unwrap_or(i32::MAX));
        out.put_i32(-1); // partition leader epoch: set by the broker
        out.put_i8(2); // magic
        out.put_u32(0); // crc, patched below
        out.put_i16(0); // attributes
        out.put_i32((self.count - 1).max(0)); // last offset delta
        out.put_i64(self.base_timestamp);
        out.put_i64(if self.count == 0 {
            self.base_timestamp
        } else {
            self.max_timestamp
        });
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.count);
        out.extend_from_slice(&self.records);
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        out.freeze()
    }
}

fn put_varint_bytes(buf: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => buf.put_varint(-1),
        Some(b) => {
            buf.put_varint(i32::try_from(b.len()).unwrap_or(i32::MAX));
            buf.extend_from_slice(b);
        }
    }
}
