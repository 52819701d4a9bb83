//! zstd (codec 4, KIP-110): RFC 8878 frames through ruzstd.
//!
//! Decoding reads every frame in the data (Java's zstd-jni and librdkafka
//! write one; the format allows several, and skippable frames, which are
//! passed over). A frame's window is what the decoder allocates, so it is
//! capped at 128 MiB (libzstd's default `windowLogMax` of 27 and ruzstd's
//! default): a frame asking more is refused before any allocation. A frame
//! whose declared content size exceeds the limit is refused up front too.
//!
//! ruzstd leaves three checks of RFC 8878 to its caller, and libzstd (so
//! Java's zstd-jni and librdkafka) makes them, so they are made here: the
//! frame header descriptor's reserved bit must be zero; a declared
//! `Frame_Content_Size` must be exactly what the blocks produce; and a
//! frame with a `Content_Checksum` must match it (the low 32 bits of the
//! XXH64 of the content). Without them a frame whose blocks were damaged
//! consistently, or cut at a block boundary, would decode as other data
//! (fuzzing found the content-size case).
//!
//! Encoding: ruzstd implements only its `Uncompressed` and `Fastest`
//! strategies (its `Default`, `Better` and `Best` panic as unimplemented),
//! so every requested level compresses with `Fastest` (meant as zstd level 1;
//! measured, its ratio is near C zstd level -1).

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::StreamingDecoder;
use ruzstd::encoding::{compress_to_vec, CompressionLevel};

use super::{corrupt, read_bounded, too_large, Compression};
use crate::codec::DecodeError;

/// The largest window a frame may ask for: 2^27 bytes.
const MAX_WINDOW: u64 = 128 * 1024 * 1024;

/// The magic number of a zstd frame (RFC 8878 3.1.1), little-endian.
const FRAME_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What the frame header descriptor (RFC 8878 3.1.1.1.1), the byte after
/// the magic, says about the checks made after decoding.
#[derive(Debug, Clone, Copy)]
struct Descriptor(u8);

impl Descriptor {
    /// The descriptor of the frame at the start of `data`, when `data`
    /// starts with a zstd frame's magic and descriptor.
    fn of(data: &[u8]) -> Option<Self> {
        match data {
            [m0, m1, m2, m3, fhd, ..] if [*m0, *m1, *m2, *m3] == FRAME_MAGIC => Some(Self(*fhd)),
            _ => None,
        }
    }

    /// Bit 3, reserved: a compliant decoder must check it is zero.
    fn reserved(self) -> bool {
        self.0 & 0x08 != 0
    }

    /// Whether `Frame_Content_Size` is present: a non-zero
    /// `Frame_Content_Size_flag` (bits 6-7) or `Single_Segment_flag`
    /// (bit 5).
    fn has_content_size(self) -> bool {
        self.0 >> 6 != 0 || self.0 & 0x20 != 0
    }

    /// Bit 2: a 4-byte `Content_Checksum` follows the last block.
    fn has_checksum(self) -> bool {
        self.0 & 0x04 != 0
    }
}

/// Decode every frame in `data`, at most `limit` bytes in all.
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if data.is_empty() {
        return Err(corrupt(Compression::Zstd, "no zstd frame"));
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let descriptor = Descriptor::of(rest);
        if descriptor.is_some_and(Descriptor::reserved) {
            return Err(corrupt(
                Compression::Zstd,
                "reserved bit set in the frame header descriptor",
            ));
        }
        let mut decoder = match StreamingDecoder::new_with_max_window_size(&mut rest, MAX_WINDOW) {
            Ok(d) => d,
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                // The header reader consumed the magic and length.
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                rest = rest.get(length..).ok_or_else(|| {
                    corrupt(Compression::Zstd, "skippable frame longer than the data")
                })?;
                continue;
            }
            Err(e) => return Err(corrupt(Compression::Zstd, e)),
        };
        let declared = decoder.decoder.content_size();
        if usize::try_from(declared).map_or(true, |d| d > limit.saturating_sub(out.len())) {
            return Err(too_large(Compression::Zstd, limit));
        }
        let start = out.len();
        read_bounded(Compression::Zstd, &mut decoder, limit, &mut out)?;
        let produced = out.len() - start;
        // Skippable frames were handled above, so a frame that decoded has
        // a descriptor.
        let descriptor = descriptor.unwrap_or(Descriptor(0));
        if descriptor.has_content_size() && u64::try_from(produced).ok() != Some(declared) {
            return Err(corrupt(
                Compression::Zstd,
                format!("frame declares {declared} bytes of content, its blocks hold {produced}"),
            ));
        }
        if descriptor.has_checksum() {
            let carried = decoder.decoder.get_checksum_from_data();
            let computed = decoder.decoder.get_calculated_checksum();
            if carried.is_none() || carried != computed {
                return Err(corrupt(
                    Compression::Zstd,
                    format!(
                        "content checksum {:#010x} does not match the content's {:#010x}",
                        carried.unwrap_or(0),
                        computed.unwrap_or(0)
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// One frame, compressed with ruzstd's `Fastest` whatever the level.
pub(super) fn compress(data: &[u8]) -> Vec<u8> {
    compress_to_vec(data, CompressionLevel::Fastest)
}
