//! Walking the record data of a fetch response (or any concatenation of
//! batches) batch by batch.
//!
//! Brokers fill a fetch response up to its size limits by copying log
//! segment bytes, so the last batch can be cut short. Like the Java
//! consumer, the iterator treats a trailing partial batch as "stop here",
//! not as an error: [`RecordBatchIter::is_partial`] tells the two endings
//! apart. (Since KIP-74, Fetch v3+, the first batch is always returned
//! whole even when it exceeds the limits, so a response holding only a
//! partial batch means a broker much older than 2.8.)
//!
//! Batches in message format v0/v1 (magic 0 or 1, Kafka before 0.11) are
//! reported as `UnsupportedVersion(magic)` on `record_batch.magic` and end
//! the iteration: brokers 2.8+ only serve them for topics still holding
//! pre-0.11 data, which skotch does not read.

use bytes::Bytes;

use super::batch::{decode_whole, frame, Frame, RecordBatch};
use super::compression::DEFAULT_MAX_DECOMPRESSED_SIZE;
use crate::codec::DecodeError;

/// Iterator over the batches in a byte buffer; see [`decode_batches`].
#[derive(Debug, Clone)]
pub struct RecordBatchIter {
    data: Bytes,
    check_crc: bool,
    max_decompressed: usize,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Stopped at a partial trailing batch.
    Partial,
    /// Stopped after an error.
    Failed,
    /// Everything consumed.
    Done,
}

/// Walk the batches in `data`, zero-copy. `check_crc` verifies each
/// batch's CRC-32C, as the Java consumer's `check.crcs` (default true)
/// does; turn it off only for fuzzing.
///
/// A compressed batch may inflate to at most
/// [`DEFAULT_MAX_DECOMPRESSED_SIZE`] bytes unless
/// [`RecordBatchIter::max_decompressed_size`] says otherwise.
///
/// Yields `Ok(batch)` for each whole batch. A framing error (a batch length
/// below what any format allows) or an error inside a batch is yielded once
/// and ends the iteration. A trailing partial batch ends it quietly.
pub fn decode_batches(data: Bytes, check_crc: bool) -> RecordBatchIter {
    RecordBatchIter::new(data, check_crc)
}

impl RecordBatchIter {
    /// Same as [`decode_batches`].
    pub fn new(data: Bytes, check_crc: bool) -> Self {
        Self {
            data,
            check_crc,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED_SIZE,
            state: State::Running,
        }
    }

    /// Limit the decompressed size of each batch's records, in bytes (the
    /// consumer passes its `fetch.max.bytes`): a batch whose codec claims
    /// or produces more is a `DecompressedTooLarge` error, which ends the
    /// iteration like any other.
    pub fn max_decompressed_size(mut self, bytes: usize) -> Self {
        self.max_decompressed = bytes;
        self
    }

    /// True when iteration stopped at a partial trailing batch.
    pub fn is_partial(&self) -> bool {
        self.state == State::Partial
    }

    /// Bytes not yet consumed: the partial batch once stopped there.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }
}

impl Iterator for RecordBatchIter {
    type Item = Result<RecordBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state != State::Running {
            return None;
        }
        if self.data.is_empty() {
            self.state = State::Done;
            return None;
        }
        let len = match frame(&self.data) {
            Ok(Frame::Whole(len)) => len,
            Ok(Frame::Partial) => {
                self.state = State::Partial;
                return None;
            }
            Err(e) => {
                self.state = State::Failed;
                return Some(Err(e));
            }
        };
        let whole = self.data.split_to(len);
        let batch = decode_whole(whole, self.check_crc, self.max_decompressed);
        if batch.is_err() {
            self.state = State::Failed;
        }
        Some(batch)
    }
}

impl std::iter::FusedIterator for RecordBatchIter {}
