//! gzip (codec 1): RFC 1952 through flate2 on its pure-Rust zlib-rs
//! backend. Java writes one member with `GZIPOutputStream` and reads with
//! `GZIPInputStream`, which also accepts several members back to back;
//! so does this decoder.

use std::io::Write;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{corrupt, read_bounded, Compression};
use crate::codec::{DecodeError, EncodeError};

/// Inflate every member of `data`, at most `limit` bytes in all. (The
/// trailer's ISIZE is the size modulo 2^32 and comes last, so it cannot
/// bound anything up front; the output is bounded as it grows.)
pub(super) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if data.is_empty() {
        return Err(corrupt(Compression::Gzip, "no gzip member"));
    }
    let mut out = Vec::new();
    read_bounded(
        Compression::Gzip,
        MultiGzDecoder::new(data),
        limit,
        &mut out,
    )?;
    Ok(out)
}

/// One gzip member at `level` (1-9; -1 is zlib's default, 6).
pub(super) fn compress(data: &[u8], level: i32) -> Result<Vec<u8>, EncodeError> {
    let level = u32::try_from(level).map_or(6, |l| l.clamp(1, 9));
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(data)
        .and_then(|()| enc.finish())
        .map_err(|_| EncodeError::Other("gzip compression failed"))
}
