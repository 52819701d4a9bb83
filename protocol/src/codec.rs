//! Primitive types of the Kafka protocol: fixed-width integers, varints,
//! (compact) strings, bytes and arrays, UUIDs and tagged-field buffers.
//!
//! Source: the protocol guide, "Protocol Primitive Types"
//! (<https://kafka.apache.org/protocol#protocol_types>) and KIP-482 for the
//! compact/flexible forms.
//!
//! Decoding is bounded: every length read from the wire is checked against the
//! bytes that remain before anything is allocated or sliced, and every error
//! names the field being read. Byte fields are zero-copy slices of the input
//! (`bytes::Bytes`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// What went wrong while decoding, without the location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before the field was complete.
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix is negative (and not the null marker) or larger than
    /// the bytes that remain could justify.
    InvalidLength(i64),
    /// A varint ran past its maximum width.
    VarintOverflow,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A value that must not be null was null.
    UnexpectedNull,
    /// A boolean byte was neither 0 nor 1, or an enum-like value is unknown.
    InvalidValue(i64),
    /// A checksum did not match.
    ChecksumMismatch {
        /// Checksum carried by the input.
        expected: u32,
        /// Checksum computed over the input.
        computed: u32,
    },
    /// A compression codec this build cannot decode.
    UnsupportedCompression(&'static str),
    /// Compressed data the codec rejects (corrupt, truncated, or using a
    /// feature the codec's format reserves).
    Decompression {
        /// The codec (`compression.type` name).
        codec: &'static str,
        /// What the codec said.
        reason: String,
    },
    /// Compressed data that declares, or inflates to, more than the limit
    /// the caller set (the consumer's `fetch.max.bytes`).
    DecompressedTooLarge {
        /// The codec.
        codec: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A message version this code does not know.
    UnsupportedVersion(i16),
    /// Bytes were left over after a complete message.
    TrailingBytes(usize),
    /// Anything else, described in words.
    Other(&'static str),
}

impl std::fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated { needed, remaining } => {
                write!(f, "truncated: needs {needed} bytes, {remaining} remain")
            }
            Self::InvalidLength(n) => write!(f, "invalid length {n}"),
            Self::VarintOverflow => f.write_str("varint longer than its maximum width"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::UnexpectedNull => f.write_str("null where a value is required"),
            Self::InvalidValue(v) => write!(f, "invalid value {v}"),
            Self::ChecksumMismatch { expected, computed } => write!(
                f,
                "CRC mismatch: batch says {expected:#010x}, computed {computed:#010x}"
            ),
            Self::UnsupportedCompression(c) => {
                write!(f, "compression codec {c} is not supported by this build")
            }
            Self::Decompression { codec, reason } => {
                write!(f, "corrupt {codec} data: {reason}")
            }
            Self::DecompressedTooLarge { codec, limit } => write!(
                f,
                "{codec} data inflates to more than the limit of {limit} bytes"
            ),
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Self::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the message"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// A decoding failure: which field, what went wrong, and in which message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The field being read, e.g. `"topics"` or `"record_batch.crc"`.
    pub field: &'static str,
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The message being decoded and its version, when known.
    pub message: Option<(&'static str, i16)>,
}

impl DecodeError {
    /// A new error for `field`.
    pub fn new(field: &'static str, kind: DecodeErrorKind) -> Self {
        Self {
            field,
            kind,
            message: None,
        }
    }

    /// Attach the message name and version (kept if already set, so the
    /// innermost message wins).
    pub fn in_message(mut self, name: &'static str, version: i16) -> Self {
        if self.message.is_none() {
            self.message = Some((name, version));
        }
        self
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((name, version)) = self.message {
            write!(f, "decoding {name} v{version}: ")?;
        }
        write!(f, "field `{}`: {}", self.field, self.kind)
    }
}

impl std::error::Error for DecodeError {}

/// An encoding failure: a value that cannot be represented in the chosen
/// version or format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string, byte array or array is longer than its length prefix allows.
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A field holds a non-default value but the chosen version cannot carry
    /// it (Java's `UnsupportedVersionException`).
    UnsupportedField {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The chosen version.
        version: i16,
    },
    /// A null value where the version does not allow null.
    UnexpectedNull {
        /// The field.
        field: &'static str,
    },
    /// The message does not exist in this version.
    UnsupportedVersion {
        /// The message.
        message: &'static str,
        /// The chosen version.
        version: i16,
    },
    /// Anything else.
    Other(&'static str),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong { field, len } => write!(f, "field `{field}` is too long ({len})"),
            Self::UnsupportedField {
                message,
                field,
                version,
            } => write!(f, "{message} v{version} cannot carry field `{field}`"),
            Self::UnexpectedNull { field } => write!(f, "field `{field}` must not be null"),
            Self::UnsupportedVersion { message, version } => {
                write!(f, "{message} has no version {version}")
            }
            Self::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A 128-bit UUID as Kafka sends it (topic ids, directory ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "no id".
    pub const ZERO: Uuid = Uuid([0; 16]);
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A cursor over received bytes. Every read checks the remaining length
/// first; byte and string fields are zero-copy slices of the input.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

type R<T> = Result<T, DecodeError>;

fn truncated(field: &'static str, needed: usize, remaining: usize) -> DecodeError {
    DecodeError::new(field, DecodeErrorKind::Truncated { needed, remaining })
}

impl Reader {
    /// Read from `buf`.
    pub fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Error unless everything was consumed.
    pub fn finish(&self, field: &'static str) -> R<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(
                field,
                DecodeErrorKind::TrailingBytes(self.buf.len()),
            ))
        }
    }

    fn need(&self, n: usize, field: &'static str) -> R<()> {
        if self.buf.len() < n {
            Err(truncated(field, n, self.buf.len()))
        } else {
            Ok(())
        }
    }

    /// Take the next `n` bytes as a zero-copy slice.
    pub fn take(&mut self, n: usize, field: &'static str) -> R<Bytes> {
        self.need(n, field)?;
        Ok(self.buf.split_to(n))
    }

    /// Take everything that is left.
    pub fn take_rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// Look at what is left without consuming it.
    pub fn peek(&self) -> &[u8] {
        &self.buf
    }

    /// int8
    pub fn i8(&mut self, field: &'static str) -> R<i8> {
        self.need(1, field)?;
        Ok(self.buf.get_i8())
    }
    /// int16, big-endian
    pub fn i16(&mut self, field: &'static str) -> R<i16> {
        self.need(2, field)?;
        Ok(self.buf.get_i16())
    }
    /// int32, big-endian
    pub fn i32(&mut self, field: &'static str) -> R<i32> {
        self.need(4, field)?;
        Ok(self.buf.get_i32())
    }
    /// int64, big-endian
    pub fn i64(&mut self, field: &'static str) -> R<i64> {
        self.need(8, field)?;
        Ok(self.buf.get_i64())
    }
    /// uint16, big-endian
    pub fn u16(&mut self, field: &'static str) -> R<u16> {
        self.need(2, field)?;
        Ok(self.buf.get_u16())
    }
    /// uint32, big-endian
    pub fn u32(&mut self, field: &'static str) -> R<u32> {
        self.need(4, field)?;
        Ok(self.buf.get_u32())
    }
    /// float64, IEEE 754 big-endian
    pub fn f64(&mut self, field: &'static str) -> R<f64> {
        self.need(8, field)?;
        Ok(self.buf.get_f64())
    }
    /// boolean: 0 or 1 (Java accepts any non-zero as true; so do we).
    pub fn bool(&mut self, field: &'static str) -> R<bool> {
        Ok(self.i8(field)? != 0)
    }
    /// uuid: 16 bytes
    pub fn uuid(&mut self, field: &'static str) -> R<Uuid> {
        self.need(16, field)?;
        let mut u = [0u8; 16];
        self.buf.copy_to_slice(&mut u);
        Ok(Uuid(u))
    }

    /// unsigned varint, at most 5 bytes (32 bits).
    pub fn uvarint(&mut self, field: &'static str) -> R<u32> {
        let v = self.uvarlong_max(field, 5)?;
        u32::try_from(v).map_err(|_| DecodeError::new(field, DecodeErrorKind::VarintOverflow))
    }
    /// unsigned varlong, at most 10 bytes (64 bits).
    pub fn uvarlong(&mut self, field: &'static str) -> R<u64> {
        self.uvarlong_max(field, 10)
    }
    fn uvarlong_max(&mut self, field: &'static str, max_bytes: usize) -> R<u64> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            if self.buf.is_empty() {
                return Err(truncated(field, i + 1, i));
            }
            let b = self.buf.get_u8();
            let shift = 7 * i as u32;
            let part = u64::from(b & 0x7f);
            // The last byte of a 64-bit varlong may only carry 1 bit.
            if shift == 63 && part > 1 {
                return Err(DecodeError::new(field, DecodeErrorKind::VarintOverflow));
            }
            value |= part << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(field, DecodeErrorKind::VarintOverflow))
    }
    /// signed zig-zag varint (32 bits).
    pub fn varint(&mut self, field: &'static str) -> R<i32> {
        let u = self.uvarint(field)?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }
    /// signed zig-zag varlong (64 bits).
    pub fn varlong(&mut self, field: &'static str) -> R<i64> {
        let u = self.uvarlong(field)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A length for `count` items of at least `min_item` bytes each, checked
    /// against what remains. `None` for the null marker (-1).
    fn checked_len(&self, len: i64, min_item: usize, field: &'static str) -> R<Option<usize>> {
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::new(field, DecodeErrorKind::InvalidLength(len)));
        }
        let n = len as u64;
        let min_bytes = n.saturating_mul(min_item as u64);
        if min_bytes > self.buf.len() as u64 {
            // A string/bytes length that overruns is a truncation; an array
            // count that could never fit is an invalid length.
            return Err(if min_item == 1 {
                truncated(
                    field,
                    usize::try_from(n).unwrap_or(usize::MAX),
                    self.buf.len(),
                )
            } else {
                DecodeError::new(field, DecodeErrorKind::InvalidLength(len))
            });
        }
        Ok(Some(n as usize))
    }

    /// Raw length-prefixed bytes; `compact` picks an unsigned-varint length+1
    /// prefix, otherwise an int32 (bytes) / int16 (strings) prefix.
    fn raw(&mut self, compact: bool, wide: bool, field: &'static str) -> R<Option<Bytes>> {
        let len: i64 = if compact {
            i64::from(self.uvarint(field)?) - 1
        } else if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        match self.checked_len(len, 1, field)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.buf.split_to(n))),
        }
    }

    fn utf8(b: Bytes, field: &'static str) -> R<String> {
        String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError::new(field, DecodeErrorKind::InvalidUtf8))
    }

    /// string (int16 length) or compact string; null is an error.
    pub fn string(&mut self, compact: bool, field: &'static str) -> R<String> {
        self.nullable_string(compact, field)?
            .ok_or_else(|| DecodeError::new(field, DecodeErrorKind::UnexpectedNull))
    }
    /// nullable string or compact nullable string.
    pub fn nullable_string(&mut self, compact: bool, field: &'static str) -> R<Option<String>> {
        self.raw(compact, false, field)?
            .map(|b| Self::utf8(b, field))
            .transpose()
    }
    /// bytes (int32 length) or compact bytes; null is an error.
    pub fn bytes(&mut self, compact: bool, field: &'static str) -> R<Bytes> {
        self.nullable_bytes(compact, field)?
            .ok_or_else(|| DecodeError::new(field, DecodeErrorKind::UnexpectedNull))
    }
    /// nullable bytes or compact nullable bytes.
    pub fn nullable_bytes(&mut self, compact: bool, field: &'static str) -> R<Option<Bytes>> {
        self.raw(compact, true, field)
    }

    /// An array length (int32, or compact uvarint length+1), checked so that
    /// `n * min_item` bytes remain. `None` for a null array. Callers must
    /// still not pre-allocate more than [`capacity_hint`] elements.
    pub fn array_len(
        &mut self,
        compact: bool,
        min_item: usize,
        field: &'static str,
    ) -> R<Option<usize>> {
        let len: i64 = if compact {
            i64::from(self.uvarint(field)?) - 1
        } else {
            i64::from(self.i32(field)?)
        };
        self.checked_len(len, min_item.max(1), field)
    }

    /// Skip a tagged-field buffer (KIP-482), returning the unknown fields
    /// as (tag, data) pairs.
    pub fn tagged_fields(&mut self, field: &'static str) -> R<Vec<(u32, Bytes)>> {
        let n = self.uvarint(field)? as usize;
        // Each tagged field takes at least 2 bytes (tag + size).
        if n.saturating_mul(2) > self.buf.len() {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::InvalidLength(n as i64),
            ));
        }
        let mut out = Vec::with_capacity(capacity_hint(n));
        for _ in 0..n {
            let tag = self.uvarint(field)?;
            let size = self.uvarint(field)? as usize;
            out.push((tag, self.take(size, field)?));
        }
        Ok(out)
    }
}

/// The number of elements worth pre-allocating for a wire count that has
/// already been checked against the remaining bytes. Growth beyond this
/// happens only as elements are actually decoded.
pub fn capacity_hint(n: usize) -> usize {
    n.min(1024)
}

/// Writing primitives onto a `BytesMut`.
pub trait Writer {
    /// unsigned varint
    fn put_uvarint(&mut self, v: u32);
    /// unsigned varlong
    fn put_uvarlong(&mut self, v: u64);
    /// zig-zag varint
    fn put_varint(&mut self, v: i32);
    /// zig-zag varlong
    fn put_varlong(&mut self, v: i64);
    /// uuid
    fn put_uuid(&mut self, v: &Uuid);
    /// (compact) nullable string
    fn put_nullable_string(
        &mut self,
        v: Option<&str>,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError>;
    /// (compact) string
    fn put_string(
        &mut self,
        v: &str,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError>;
    /// (compact) nullable bytes
    fn put_nullable_byte_array(
        &mut self,
        v: Option<&[u8]>,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError>;
    /// (compact) bytes
    fn put_byte_array(
        &mut self,
        v: &[u8],
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError>;
    /// (compact) array length; `None` writes the null marker.
    fn put_array_len(
        &mut self,
        n: Option<usize>,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError>;
}

impl Writer for BytesMut {
    fn put_uvarint(&mut self, v: u32) {
        self.put_uvarlong(u64::from(v));
    }
    fn put_uvarlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.put_u8(v as u8);
    }
    fn put_varint(&mut self, v: i32) {
        self.put_uvarint(((v << 1) ^ (v >> 31)) as u32);
    }
    fn put_varlong(&mut self, v: i64) {
        self.put_uvarlong(((v << 1) ^ (v >> 63)) as u64);
    }
    fn put_uuid(&mut self, v: &Uuid) {
        self.put_slice(&v.0);
    }
    fn put_nullable_string(
        &mut self,
        v: Option<&str>,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        match v {
            None if compact => self.put_uvarint(0),
            None => self.put_i16(-1),
            Some(s) => self.put_string(s, compact, field)?,
        }
        Ok(())
    }
    fn put_string(
        &mut self,
        v: &str,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let len = v.len();
        if compact {
            let l = u32::try_from(len + 1).map_err(|_| EncodeError::TooLong { field, len })?;
            self.put_uvarint(l);
        } else {
            let l = i16::try_from(len).map_err(|_| EncodeError::TooLong { field, len })?;
            self.put_i16(l);
        }
        self.put_slice(v.as_bytes());
        Ok(())
    }
    fn put_nullable_byte_array(
        &mut self,
        v: Option<&[u8]>,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        match v {
            None if compact => self.put_uvarint(0),
            None => self.put_i32(-1),
            Some(b) => self.put_byte_array(b, compact, field)?,
        }
        Ok(())
    }
    fn put_byte_array(
        &mut self,
        v: &[u8],
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        self.put_array_len(Some(v.len()), compact, field)?;
        self.put_slice(v);
        Ok(())
    }
    fn put_array_len(
        &mut self,
        n: Option<usize>,
        compact: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        match (n, compact) {
            (None, true) => self.put_uvarint(0),
            (None, false) => self.put_i32(-1),
            (Some(len), true) => {
                let l = u32::try_from(len + 1).map_err(|_| EncodeError::TooLong { field, len })?;
                self.put_uvarint(l);
            }
            (Some(len), false) => {
                let l = i32::try_from(len).map_err(|_| EncodeError::TooLong { field, len })?;
                self.put_i32(l);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reader(b: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(b))
    }

    #[test]
    fn varint_examples_from_protocol_guide() {
        let mut w = BytesMut::new();
        w.put_varint(-1);
        w.put_varint(300);
        assert_eq!(&w[..], &[0x01, 0xd8, 0x04]);
        let mut r = reader(&w);
        assert_eq!(r.varint("a").unwrap(), -1);
        assert_eq!(r.varint("b").unwrap(), 300);
    }

    #[test]
    fn varint_overflow_is_an_error() {
        let mut r = reader(&[0xff; 11]);
        assert_eq!(
            r.varlong("x").unwrap_err().kind,
            DecodeErrorKind::VarintOverflow
        );
        let mut r = reader(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(
            r.uvarint("x").unwrap_err().kind,
            DecodeErrorKind::VarintOverflow
        );
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        // int32::MAX array of 8-byte items in a 10-byte buffer.
        let mut r = reader(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]);
        let e = r.array_len(false, 8, "topics").unwrap_err();
        assert_eq!(e.field, "topics");
        let mut r = reader(&[0x7f, 0xff, 0xff, 0xff, 1]);
        let e = r.bytes(false, "records").unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
    }

    #[test]
    fn negative_lengths() {
        let mut r = reader(&[0xff, 0xfe]);
        assert_eq!(
            r.nullable_string(false, "s").unwrap_err().kind,
            DecodeErrorKind::InvalidLength(-2)
        );
        let mut r = reader(&[0xff, 0xff]);
        assert_eq!(r.nullable_string(false, "s").unwrap(), None);
        let mut r = reader(&[0xff, 0xff]);
        assert_eq!(
            r.string(false, "s").unwrap_err().kind,
            DecodeErrorKind::UnexpectedNull
        );
    }

    proptest! {
        #[test]
        fn varlong_round_trip(v: i64) {
            let mut w = BytesMut::new();
            w.put_varlong(v);
            prop_assert_eq!(reader(&w).varlong("v").unwrap(), v);
        }
        #[test]
        fn uvarint_round_trip(v: u32) {
            let mut w = BytesMut::new();
            w.put_uvarint(v);
            prop_assert_eq!(reader(&w).uvarint("v").unwrap(), v);
        }
        #[test]
        fn strings_round_trip(s: Option<String>, compact: bool) {
            let mut w = BytesMut::new();
            w.put_nullable_string(s.as_deref(), compact, "s").unwrap();
            let mut r = reader(&w);
            prop_assert_eq!(r.nullable_string(compact, "s").unwrap(), s);
            prop_assert!(r.is_empty());
        }
        #[test]
        fn bytes_round_trip(b: Option<Vec<u8>>, compact: bool) {
            let mut w = BytesMut::new();
            w.put_nullable_byte_array(b.as_deref(), compact, "b").unwrap();
            let mut r = reader(&w);
            prop_assert_eq!(r.nullable_bytes(compact, "b").unwrap().map(|b| b.to_vec()), b);
        }
        #[test]
        fn any_bytes_never_panic(b: Vec<u8>) {
            let mut r = reader(&b);
            let _ = r.nullable_string(true, "s");
            let _ = r.array_len(true, 4, "a");
            let _ = r.tagged_fields("t");
            let _ = r.varlong("v");
        }
    }
}
