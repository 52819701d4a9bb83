//! Compression codecs of record batches (attributes bits 0-2): the
//! decompression step between parsing a batch header and parsing its
//! records, and the compression step of building one.
//!
//! Every codec is pure Rust, so the default build compiles no C:
//!
//! | codec | crate | wire format |
//! | --- | --- | --- |
//! | gzip (1) | flate2 on zlib-rs | RFC 1952, members concatenated |
//! | snappy (2) | snap | xerial framing (Java) or one raw block |
//! | lz4 (3) | lz4_flex | LZ4 frame, independent 64 KB blocks |
//! | zstd (4) | ruzstd | zstd frames (RFC 8878) |
//!
//! Decompression is bounded: the caller gives a limit (the consumer's
//! `fetch.max.bytes`), and a batch whose codec declares or produces more is
//! a [`DecodeErrorKind::DecompressedTooLarge`] error, found before or while
//! inflating, never after an allocation of the claimed size.
//!
//! Each codec has its own file; this one holds the codec enum, levels and
//! the shared plumbing.

mod gzip;
mod lz4;
mod snappy;
mod zstd;

use std::io::Read;
use std::ops::RangeInclusive;

use bytes::Bytes;

use crate::codec::{DecodeError, DecodeErrorKind, EncodeError};

/// The largest decompressed size of one batch's records accepted by
/// default: 52 428 800 bytes (50 MiB), the Java consumer's default
/// `fetch.max.bytes`.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 52_428_800;

/// The field named by decompression errors.
const FIELD: &str = "record_batch.records";

/// The compression codec of a batch (attributes bits 0-2; the Java
/// producer's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression (0).
    #[default]
    None,
    /// gzip (1).
    Gzip,
    /// snappy (2), xerial framing or a raw block.
    Snappy,
    /// lz4 (3), LZ4 frame format.
    Lz4,
    /// zstd (4), since Kafka 2.1 (KIP-110).
    Zstd,
}

/// Mask of the codec bits in a batch's attributes.
pub(crate) const COMPRESSION_MASK: i16 = 0x07;

impl Compression {
    /// Every codec, in wire id order.
    pub const ALL: [Compression; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    /// The codec with wire id `id` (0-4); `None` for 5-7, which no codec
    /// uses (Java rejects them as unknown compression types).
    pub fn from_id(id: i16) -> Option<Self> {
        match id {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The codec named by the low three bits of a batch's `attributes`.
    pub fn from_attributes(attributes: i16) -> Option<Self> {
        Self::from_id(attributes & COMPRESSION_MASK)
    }

    /// The wire id (0-4).
    pub fn id(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The name Kafka uses for it (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// The levels Kafka accepts for this codec (KIP-390:
    /// `compression.gzip.level` 1-9, `compression.lz4.level` 1-17,
    /// `compression.zstd.level` -131072-22); `None` for codecs without
    /// levels (none, snappy).
    pub fn level_range(self) -> Option<RangeInclusive<i32>> {
        match self {
            Self::Gzip => Some(1..=9),
            Self::Lz4 => Some(1..=17),
            Self::Zstd => Some(-131_072..=22),
            Self::None | Self::Snappy => None,
        }
    }

    /// The level used when none is given, as in Java: gzip 6 (zlib's
    /// default), lz4 9, zstd 3.
    pub fn default_level(self) -> Option<i32> {
        match self {
            Self::Gzip => Some(6),
            Self::Lz4 => Some(9),
            Self::Zstd => Some(3),
            Self::None | Self::Snappy => None,
        }
    }

    /// Check a requested level: `None` is always fine (the default);
    /// a level must be in [`level_range`](Self::level_range), and codecs
    /// without levels take none. Java's `-1` for gzip (zlib's default) is
    /// accepted too.
    ///
    /// What the levels do: gzip uses them as zlib does; lz4_flex has one
    /// (fast) compressor, so every lz4 level gives the same bytes; ruzstd
    /// implements only its `Fastest` strategy (ratio near C zstd level -1), so
    /// every zstd level gives that. Readers never need to know the level.
    pub fn check_level(self, level: Option<i32>) -> Result<(), InvalidLevel> {
        let Some(level) = level else {
            return Ok(());
        };
        let ok = match self.level_range() {
            Some(range) => range.contains(&level) || (self == Self::Gzip && level == -1),
            None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(InvalidLevel { codec: self, level })
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = UnknownCompression;

    /// Parse a `compression.type` value (`none`, `gzip`, `snappy`, `lz4`,
    /// `zstd`; any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCompression(s.to_string()))
    }
}

/// A `compression.type` that names no codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type {0:?} (expected none, gzip, snappy, lz4 or zstd)")]
pub struct UnknownCompression(pub String);

/// A compression level the codec does not accept; see
/// [`Compression::check_level`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidLevel {
    /// The codec.
    pub codec: Compression,
    /// The level asked for.
    pub level: i32,
}

impl std::fmt::Display for InvalidLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.codec.level_range() {
            Some(r) => write!(
                f,
                "compression.{}.level must be between {} and {}, not {}",
                self.codec,
                r.start(),
                r.end(),
                self.level
            ),
            None => write!(
                f,
                "compression type {} has no levels (got level {})",
                self.codec, self.level
            ),
        }
    }
}

/// The codec of a batch's attributes, or an error naming the field for the
/// ids no codec uses.
pub(crate) fn compression_of(attributes: i16) -> Result<Compression, DecodeError> {
    Compression::from_attributes(attributes).ok_or_else(|| {
        DecodeError::new(
            "record_batch.attributes.compression",
            DecodeErrorKind::InvalidValue(i64::from(attributes & COMPRESSION_MASK)),
        )
    })
}

/// Turn a batch's record bytes (everything after the record count) into
/// plain record bytes of at most `limit` bytes. Uncompressed data is
/// returned as it is (zero-copy, and not subject to `limit`: it is already
/// in memory).
///
/// Errors: [`DecodeErrorKind::Decompression`] for data the codec rejects,
/// [`DecodeErrorKind::DecompressedTooLarge`] when the codec's own headers
/// claim, or inflating produces, more than `limit` bytes.
pub fn decompress(
    compression: Compression,
    data: Bytes,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    let out = match compression {
        Compression::None => return Ok(data),
        Compression::Gzip => gzip::decompress(&data, limit),
        Compression::Snappy => snappy::decompress(&data, limit),
        Compression::Lz4 => lz4::decompress(&data, limit),
        Compression::Zstd => zstd::decompress(&data, limit),
    }?;
    Ok(Bytes::from(out))
}

/// Compress plain record bytes with `compression` at `level` (the codec's
/// default when `None`; see [`Compression::check_level`] for what levels
/// do). `Compression::None` copies. The output is what Java's consumer
/// reads: gzip members, xerial-framed snappy in 32 KiB blocks, LZ4 frames
/// of independent 64 KB blocks without checksums, one zstd frame.
///
/// Errors: a level the codec does not accept.
pub fn compress(
    compression: Compression,
    level: Option<i32>,
    data: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    compression
        .check_level(level)
        .map_err(|_| EncodeError::Other("compression level out of range for the codec"))?;
    let level = level.or(compression.default_level());
    match compression {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => gzip::compress(data, level.unwrap_or(6)),
        Compression::Snappy => snappy::compress(data),
        Compression::Lz4 => lz4::compress(data),
        Compression::Zstd => Ok(zstd::compress(data)),
    }
}

/// A decompression error of `codec` saying why.
pub(crate) fn corrupt(codec: Compression, reason: impl std::fmt::Display) -> DecodeError {
    DecodeError::new(
        FIELD,
        DecodeErrorKind::Decompression {
            codec: codec.name(),
            reason: reason.to_string(),
        },
    )
}

/// The error for output (claimed or produced) above `limit`.
pub(crate) fn too_large(codec: Compression, limit: usize) -> DecodeError {
    DecodeError::new(
        FIELD,
        DecodeErrorKind::DecompressedTooLarge {
            codec: codec.name(),
            limit,
        },
    )
}

/// Read a decompressing reader to its end into `out`, stopping with
/// [`too_large`] as soon as more than `limit` bytes in all would be in
/// `out`: the output grows with what the codec really produces, never by
/// what a header claims.
pub(crate) fn read_bounded(
    codec: Compression,
    reader: impl Read,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let room = limit.saturating_sub(out.len());
    let mut bounded = reader.take(u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1));
    bounded.read_to_end(out).map_err(|e| corrupt(codec, e))?;
    if out.len() > limit {
        return Err(too_large(codec, limit));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
