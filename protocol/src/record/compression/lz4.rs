//! lz4 (codec 3): the LZ4 frame format through lz4_flex.
//!
//! Kafka's Java client (`Lz4BlockOutputStream`) writes one frame of
//! independent 64 KB blocks, with neither block nor content checksums nor
//! a content size, and its reader refuses dependent (linked) blocks and
//! blocks above 4 MB. The encoder writes exactly that: lz4_flex's `Auto`
//! block size could pick 4 MB, so the size is set explicitly. The decoder
//! takes any valid frame (librdkafka adds a content checksum), and frames
//! back to back.
//!
//! lz4_flex ends a frame quietly where the input ends, even without the
//! frame's EndMark, so a frame cut at a block boundary would decode to a
//! prefix of its content (and skip its content size and checksum checks).
//! Java (`KafkaLZ4BlockInputStream`) and librdkafka (`LZ4F_decompress`)
//! refuse such a frame, and so does this decoder: it notes when the frame
//! decoder asks for bytes past the end of the data. Legacy frames (magic
//! `0x184C2102`, no EndMark), which neither reads, are refused by magic.

use std::io::{Read, Write};

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{corrupt, read_bounded, Compression};
use crate::codec::{DecodeError, EncodeError};

/// The magic number of an LZ4 frame, little-endian.
const FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Decode every frame in `data`, at most `limit` bytes in all. Block
/// buffers are sized by the frame's block-size code (at most 8 MB), never
/// by the data; checksums are verified when the frame has them; every
/// frame must end with its EndMark.
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if data.is_empty() {
        return Err(corrupt(Compression::Lz4, "no LZ4 frame"));
    }
    let mut out = Vec::new();
    let mut rest = data;
    // lz4_flex's decoder stops at the end of a frame; the reader advances
    // `rest` past exactly the bytes of the frame.
    while !rest.is_empty() {
        if !rest.starts_with(&FRAME_MAGIC) {
            return Err(corrupt(
                Compression::Lz4,
                "not an LZ4 frame (magic 0x184D2204 expected)",
            ));
        }
        let mut input = Tracked {
            rest: &mut rest,
            exhausted: false,
        };
        read_bounded(
            Compression::Lz4,
            FrameDecoder::new(&mut input),
            limit,
            &mut out,
        )?;
        if input.exhausted {
            return Err(corrupt(
                Compression::Lz4,
                "LZ4 frame cut short (no EndMark)",
            ));
        }
    }
    Ok(out)
}

/// The frame decoder's input: notes whether the decoder asked for bytes
/// after the end of the data, which a whole frame (ending with its EndMark
/// and optional content checksum) never makes it do.
struct Tracked<'a, 'b> {
    rest: &'a mut &'b [u8],
    exhausted: bool,
}

impl Read for Tracked<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.exhausted = true;
        }
        self.rest.read(buf)
    }
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
