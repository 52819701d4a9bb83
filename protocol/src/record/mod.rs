//! Record batches, message format v2 (magic 2), as in the protocol guide's
//! "Record Batch" section (<https://kafka.apache.org/documentation/#recordbatch>)
//! and KIP-98.
//!
//! - [`decode_batches`] walks the record data of a fetch response batch by
//!   batch (zero-copy, CRC-32C checked), stopping quietly at a partial
//!   trailing batch, which brokers send when a size limit cuts one.
//! - [`RecordBatchBuilder`] encodes the producer's batches.
//!
//! Only uncompressed batches are handled here; a compressed batch is an
//! error naming its codec.

mod batch;
mod builder;

use bytes::Bytes;

pub use batch::{decode_batches, BatchIter, RecordBatch, RecordIter};
pub use builder::RecordBatchBuilder;

/// A record header: a string key and a value that may be null. Headers are
/// an ordered list; the same key may appear more than once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value; `None` for a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// One record. Decoded records carry absolute offsets and timestamps; the
/// builder ignores `offset` (offsets are assigned by position in the batch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key; `None` for a null key.
    pub key: Option<Bytes>,
    /// Value; `None` for a null value.
    pub value: Option<Bytes>,
    /// Headers in order, duplicates kept.
    pub headers: Vec<Header>,
}

/// The compression codec of a batch (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (1).
    Gzip,
    /// snappy (2).
    Snappy,
    /// lz4 (3).
    Lz4,
    /// zstd (4).
    Zstd,
}

impl Compression {
    /// The codec named by attribute bits, `None` for unassigned values.
    pub fn from_attributes(attributes: i16) -> Option<Self> {
        match attributes & 0x07 {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The name Kafka uses (`compression.type`).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// Who set the records' timestamps (attributes bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer (`CreateTime`).
    #[default]
    CreateTime,
    /// The broker, on append (`LogAppendTime`); every record of the batch
    /// has the batch's max timestamp.
    LogAppendTime,
}

/// The kind of a control record (KIP-98): the key of a record in a control
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlType {
    /// A transaction was aborted (0).
    Abort,
    /// A transaction was committed (1).
    Commit,
    /// Any other type.
    Other(i16),
}

/// A decoded control record key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// Control record key version.
    pub version: i16,
    /// What it marks.
    pub kind: ControlType,
}

impl ControlRecord {
    /// Parse a control record's key: version (int16) then type (int16).
    pub fn parse(key: &[u8]) -> Option<Self> {
        let (v, t) = match key {
            [a, b, c, d, ..] => (i16::from_be_bytes([*a, *b]), i16::from_be_bytes([*c, *d])),
            _ => return None,
        };
        Some(Self {
            version: v,
            kind: match t {
                0 => ControlType::Abort,
                1 => ControlType::Commit,
                o => ControlType::Other(o),
            },
        })
    }
}

#[cfg(test)]
mod tests;
