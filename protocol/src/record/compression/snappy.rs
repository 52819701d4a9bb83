//! snappy (codec 2). The Java client writes snappy-java's "xerial"
//! framing, which the snap crate does not know, so it is done here:
//!
//! ```text
//! magic      0x82 "SNAPPY" 0x00   8 bytes
//! version    int32 BE             1
//! compatible int32 BE             1
//! chunks     int32 BE length, then one raw snappy block, repeated
//! ```
//!
//! Older producers (and some non-Java clients) write a single raw snappy
//! block instead; a batch without the magic is read as one. librdkafka
//! reads and writes both forms. The encoder writes xerial framing with
//! 32 KiB blocks, as snappy-java's `SnappyOutputStream` does, since that
//! is what every Kafka client reads.
//!
//! Source: snappy-java's `SnappyCodec`/`SnappyInputStream`; Kafka's
//! `SnappyFactory`.

use super::{corrupt, too_large, Compression};
use crate::codec::{DecodeError, EncodeError};

/// The xerial stream header's magic.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Magic plus version and compatible-version fields.
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per chunk the encoder writes (snappy-java's
/// default block size).
const XERIAL_BLOCK: usize = 32 * 1024;

/// Decompress xerial-framed or raw snappy, at most `limit` bytes.
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    match data.strip_prefix(XERIAL_MAGIC) {
        Some(_) => {
            let mut chunks = data.get(XERIAL_HEADER_LEN..).ok_or_else(|| {
                corrupt(Compression::Snappy, "xerial header shorter than 16 bytes")
            })?;
            while !chunks.is_empty() {
                let (len, rest) = chunks
                    .split_first_chunk::<4>()
                    .ok_or_else(|| corrupt(Compression::Snappy, "truncated xerial chunk length"))?;
                let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
                if len > rest.len() {
                    return Err(corrupt(
                        Compression::Snappy,
                        format!("xerial chunk of {len} bytes, {} remain", rest.len()),
                    ));
                }
                let (block, rest) = rest.split_at(len);
                raw_block(block, limit, &mut out)?;
                chunks = rest;
            }
        }
        None => raw_block(data, limit, &mut out)?,
    }
    Ok(out)
}

/// Append one raw snappy block to `out`, checking the length it declares
/// against `limit` before making room for it.
fn raw_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(Compression::Snappy, e))?;
    let start = out.len();
    if len > limit.saturating_sub(start) {
        return Err(too_large(Compression::Snappy, limit));
    }
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(Compression::Snappy, e))?;
    out.truncate(start + n);
    Ok(())
}

/// xerial framing, 32 KiB per chunk.
pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let failed = |_| EncodeError::Other("snappy compression failed");
    let mut out = Vec::with_capacity(
        XERIAL_HEADER_LEN
            + snap::raw::max_compress_len(data.len())
            + data.len() / XERIAL_BLOCK * 4
            + 4,
    );
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut enc = snap::raw::Encoder::new();
    let mut block = vec![0; snap::raw::max_compress_len(XERIAL_BLOCK.min(data.len()))];
    for chunk in data.chunks(XERIAL_BLOCK) {
        let n = enc.compress(chunk, &mut block).map_err(failed)?;
        let len = u32::try_from(n).map_err(|_| EncodeError::Other("snappy block too long"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&block[..n]);
    }
    Ok(out)
}
