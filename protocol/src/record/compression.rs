//! Compression codecs of record batches (attributes bits 0-2) and the
//! decompression step that sits between parsing a batch header and parsing
//! its records.
//!
//! Only `none` is implemented in this build: a batch written with another
//! codec decodes to [`DecodeErrorKind::UnsupportedCompression`] naming the
//! codec, never to garbage. Codecs plug in by giving [`decompress`] an arm
//! (and the builder a matching compress step); everything around it already
//! treats the record bytes as "whatever `decompress` returned".

use bytes::Bytes;

use crate::codec::{DecodeError, DecodeErrorKind};

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
    /// snappy (2), raw blocks or xerial framing.
    Snappy,
    /// lz4 (3), LZ4 frame format.
    Lz4,
    /// zstd (4), since Kafka 2.1 (KIP-110).
    Zstd,
}

/// Mask of the codec bits in a batch's attributes.
pub(crate) const COMPRESSION_MASK: i16 = 0x07;

impl Compression {
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
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
/// plain record bytes. Uncompressed data is returned as it is (zero-copy).
///
/// Codecs added later must bound the decompressed size (a small compressed
/// batch can expand enormously) before the record count is checked against
/// the result.
pub(crate) fn decompress(compression: Compression, data: Bytes) -> Result<Bytes, DecodeError> {
    match compression {
        Compression::None => Ok(data),
        other => Err(DecodeError::new(
            "record_batch.attributes.compression",
            DecodeErrorKind::UnsupportedCompression(other.name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        for id in 0..5 {
            let c = Compression::from_id(id).unwrap();
            assert_eq!(c.id(), id);
        }
        assert_eq!(Compression::from_id(5), None);
        assert_eq!(Compression::from_attributes(0x7f3), Some(Compression::Lz4));
        assert_eq!(Compression::Zstd.to_string(), "zstd");
    }

    #[test]
    fn only_none_decompresses() {
        let data = Bytes::from_static(b"abc");
        assert_eq!(decompress(Compression::None, data.clone()).unwrap(), data);
        let e = decompress(Compression::Snappy, data).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnsupportedCompression("snappy"));
        let e = compression_of(6).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidValue(6));
    }
}
