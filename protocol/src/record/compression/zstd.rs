//! zstd (codec 4, KIP-110): RFC 8878 frames through ruzstd.
//!
//! Decoding reads every frame in the data (Java's zstd-jni and librdkafka
//! write one; the format allows several, and skippable frames, which are
//! passed over). A frame's window is what the decoder allocates, so it is
//! capped at 128 MiB (libzstd's default `windowLogMax` of 27 and ruzstd's
//! default): a frame asking more is refused before any allocation. A frame
//! whose declared content size exceeds the limit is refused up front too.
//!
//! Encoding: ruzstd implements only its `Uncompressed` and `Fastest`
//! strategies (its `Default`, `Better` and `Best` panic as unimplemented),
//! so every requested level compresses with `Fastest`, about zstd level 1.

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::StreamingDecoder;
use ruzstd::encoding::{compress_to_vec, CompressionLevel};

use super::{corrupt, read_bounded, too_large, Compression};
use crate::codec::DecodeError;

/// The largest window a frame may ask for: 2^27 bytes.
const MAX_WINDOW: u64 = 128 * 1024 * 1024;

/// Decode every frame in `data`, at most `limit` bytes in all.
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if data.is_empty() {
        return Err(corrupt(Compression::Zstd, "no zstd frame"));
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let decoder = match StreamingDecoder::new_with_max_window_size(&mut rest, MAX_WINDOW) {
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
        read_bounded(Compression::Zstd, decoder, limit, &mut out)?;
    }
    Ok(out)
}

/// One frame, compressed with ruzstd's `Fastest` whatever the level.
pub(super) fn compress(data: &[u8]) -> Vec<u8> {
    compress_to_vec(data, CompressionLevel::Fastest)
}
