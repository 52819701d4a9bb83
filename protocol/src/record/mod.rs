//! Record batches, message format v2 (magic 2), as in the protocol guide's
//! "Record Batch" section (<https://kafka.apache.org/documentation/#recordbatch>)
//! and KIP-98.
//!
//! - [`decode_batches`] walks the record data of a fetch response batch by
//!   batch: zero-copy (keys, values and header values are slices of the
//!   input), CRC-32C checked unless told otherwise, bounded (a record count
//!   must be justified by the bytes present before anything is decoded),
//!   stopping quietly at a partial trailing batch, which brokers send when a
//!   size limit cuts one.
//! - [`RecordBatch::records`] decodes a batch's records one at a time, with
//!   absolute offsets and timestamps.
//! - [`RecordBatchBuilder`] encodes the producer's batches against
//!   `batch.size`; [`encode_batch`] encodes any batch from a header and
//!   records.
//! - Control batches (transaction markers) are recognised:
//!   [`RecordBatch::is_control`], [`ControlRecord`].
//!
//! Every codec Kafka has (gzip, snappy, lz4, zstd) is read and written, in
//! pure Rust, with bounded decompression (see [`Compression`] and the
//! `compression/` module). Message formats v0/v1 are an
//! `UnsupportedVersion` error on `record_batch.magic`.
//!
//! Files: `records.rs` (one record), `batch.rs` (one batch), `iter.rs`
//! (a sequence of batches), `builder.rs` (producer batches),
//! `compression/` (codecs, one file each), `control.rs` (control
//! records), `aborted.rs` (read_committed filtering).

mod aborted;
mod batch;
mod builder;
mod compression;
mod control;
mod iter;
mod records;

pub use aborted::AbortedTransactionFilter;
pub use batch::{
    encode_batch, BatchHeader, RecordBatch, RecordIter, TimestampType, ATTRIBUTE_CONTROL,
    ATTRIBUTE_DELETE_HORIZON, ATTRIBUTE_LOG_APPEND_TIME, ATTRIBUTE_TRANSACTIONAL, MAGIC_V2,
    RECORD_BATCH_OVERHEAD,
};
pub use builder::{with_producer_fields, RecordBatchBuilder, DEFAULT_BATCH_SIZE};
pub use compression::{
    compress, decompress, Compression, InvalidLevel, UnknownCompression,
    DEFAULT_MAX_DECOMPRESSED_SIZE,
};
pub use control::{ControlRecord, ControlRecordType};
pub use iter::{decode_batches, RecordBatchIter};
pub use records::{ByteString, Header, Record};

#[cfg(test)]
mod tests;
