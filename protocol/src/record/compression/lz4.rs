//! lz4 (codec 3): the LZ4 frame format through lz4_flex.
//!
//! Kafka's Java client (`Lz4BlockOutputStream`) writes one frame of
//! independent 64 KB blocks, with neither block nor content checksums nor
//! a content size, and its reader refuses dependent (linked) blocks and
//! blocks above 4 MB. The encoder writes exactly that: lz4_flex's `Auto`
//! block size could pick 4 MB, so the size is set explicitly. The decoder
//! takes any valid frame (librdkafka adds a content checksum), and frames
//! back to back.

use std::io::Write;

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{corrupt, read_bounded, Compression};
use crate::codec::{DecodeError, EncodeError};

/// Decode every frame in `data`, at most `limit` bytes in all. Block
/// buffers are sized by the frame's block-size code (at most 8 MB), never
/// by the data; checksums are verified when the frame has them.
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if data.is_empty() {
        return Err(corrupt(Compression::Lz4, "no LZ4 frame"));
    }
    let mut out = Vec::new();
    let mut rest = data;
    // lz4_flex's decoder stops at the end of a frame; the reader advances
    // `rest` past exactly the bytes of the frame.
    while !rest.is_empty() {
        read_bounded(
            Compression::Lz4,
            FrameDecoder::new(&mut rest),
            limit,
            &mut out,
        )?;
    }
    Ok(out)
}

/// One frame of independent 64 KB blocks, no checksums, as Java writes.
pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent)
        .block_checksums(false)
        .content_checksum(false);
    let mut enc = FrameEncoder::with_frame_info(info, Vec::with_capacity(data.len() / 2 + 64));
    enc.write_all(data)
        .map_err(|_| EncodeError::Other("lz4 compression failed"))?;
    enc.finish()
        .map_err(|_| EncodeError::Other("lz4 compression failed"))
}
