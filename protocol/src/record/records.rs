//! One record inside a v2 batch: its fields and their varint encoding.
//!
//! ```text
//! length: varint            bytes that follow, up to the end of the record
//! attributes: int8          unused (0)
//! timestampDelta: varlong   timestamp - batch baseTimestamp
//! offsetDelta: varint       offset - batch baseOffset
//! keyLength: varint, key    -1 = null key
//! valueLen: varint, value   -1 = null value
//! headerCount: varint, then per header:
//!   headerKeyLength: varint, headerKey (UTF-8)
//!   headerValueLength: varint, value   -1 = null value
//! ```
//! Source: the protocol guide, "Record" and "Record Header"
//! (<https://kafka.apache.org/documentation/#record>), KIP-82 for headers.

use bytes::{BufMut, Bytes, BytesMut};
pub use bytestring::ByteString;

use crate::codec::{capacity_hint, DecodeError, DecodeErrorKind, EncodeError, Reader, Writer};

/// The smallest possible record: length, attributes, timestamp delta,
/// offset delta, key length, value length and header count, one byte each.
/// A record count is checked against this before anything is allocated.
pub(crate) const MIN_RECORD_SIZE: usize = 7;
/// The smallest possible header: key length and value length.
const MIN_HEADER_SIZE: usize = 2;

/// A record header (KIP-82): a string key and a value that may be null.
/// A record's headers are an ordered list; a key may appear more than once
/// and every occurrence is kept.
///
/// Decoded keys share the fetched bytes (a [`ByteString`] is a checked
/// UTF-8 view of `Bytes`), so reading a record allocates no string per
/// header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header key (UTF-8; Kafka forbids a null key). Derefs to `&str`.
    pub key: ByteString,
    /// Header value; `None` for a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<ByteString>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A header whose value is null.
    pub fn null(key: impl Into<ByteString>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }
}

/// One record.
///
/// Decoded records carry absolute values: `offset` is the batch's base
/// offset plus the record's offset delta, and `timestamp` is the base
/// timestamp plus the record's delta, or the batch's max timestamp when the
/// batch's timestamp type is `LogAppendTime` (the broker's append time, as
/// the Java client reports it). Key, value and header values are zero-copy
/// slices of the fetched bytes.
///
/// [`RecordBatchBuilder`](super::RecordBatchBuilder) ignores `offset`: it
/// numbers records in the order they are pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key; `None` for a null key.
    pub key: Option<Bytes>,
    /// Value; `None` for a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in the order written, duplicates kept.
    pub headers: Vec<Header>,
}

/// Bytes a zig-zag varint takes.
pub(crate) fn varint_size(v: i32) -> usize {
    uvarlong_size(u64::from(((v << 1) ^ (v >> 31)) as u32))
}

/// Bytes a zig-zag varlong takes.
pub(crate) fn varlong_size(v: i64) -> usize {
    uvarlong_size(((v << 1) ^ (v >> 63)) as u64)
}

fn uvarlong_size(v: u64) -> usize {
    // 7 payload bits per byte; zero still takes one byte.
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Size of a varint-length-prefixed byte field, `None` if the length does
/// not fit an int32.
fn field_size(v: Option<&[u8]>) -> Option<usize> {
    match v {
        None => Some(varint_size(-1)),
        Some(b) => {
            let len = i32::try_from(b.len()).ok()?;
            Some(varint_size(len) + b.len())
        }
    }
}

/// The size of a record's body (everything after its length prefix), or
/// `None` when some length does not fit the int32 the format allows.
pub(crate) fn record_body_size(
    offset_delta: i32,
    timestamp_delta: i64,
    record: &Record,
) -> Option<usize> {
    let mut size = 1 + varlong_size(timestamp_delta) + varint_size(offset_delta);
    size += field_size(record.key.as_deref())?;
    size += field_size(record.value.as_deref())?;
    size += varint_size(i32::try_from(record.headers.len()).ok()?);
    for h in &record.headers {
        size += field_size(Some(h.key.as_bytes()))?;
        size += field_size(h.value.as_deref())?;
    }
    // The body length is itself written as an int32 varint.
    i32::try_from(size).ok()?;
    Some(size)
}

/// The full encoded size of a record (length prefix included).
pub(crate) fn record_size(
    offset_delta: i32,
    timestamp_delta: i64,
    record: &Record,
) -> Option<usize> {
    let body = record_body_size(offset_delta, timestamp_delta, record)?;
    Some(varint_size(i32::try_from(body).ok()?) + body)
}

fn put_field(out: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => out.put_varint(-1),
        Some(b) => {
            // Callers checked every length with `record_body_size` first.
            out.put_varint(i32::try_from(b.len()).unwrap_or(i32::MAX));
            out.put_slice(b);
        }
    }
}

/// Append one record to `out`.
pub(crate) fn encode_record(
    out: &mut BytesMut,
    offset_delta: i32,
    timestamp_delta: i64,
    record: &Record,
) -> Result<(), EncodeError> {
    let body = record_body_size(offset_delta, timestamp_delta, record).ok_or(
        EncodeError::Other("a record field is longer than the 2 GiB an int32 length allows"),
    )?;
    out.reserve(5 + body);
    out.put_varint(i32::try_from(body).unwrap_or(i32::MAX));
    out.put_i8(0); // record attributes: unused by every format version
    out.put_varlong(timestamp_delta);
    out.put_varint(offset_delta);
    put_field(out, record.key.as_deref());
    put_field(out, record.value.as_deref());
    out.put_varint(i32::try_from(record.headers.len()).unwrap_or(i32::MAX));
    for h in &record.headers {
        put_field(out, Some(h.key.as_bytes()));
        put_field(out, h.value.as_deref());
    }
    Ok(())
}

/// What a record's deltas are relative to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordBase {
    pub(crate) base_offset: i64,
    pub(crate) base_timestamp: i64,
    /// `Some(max_timestamp)` for `LogAppendTime` batches.
    pub(crate) log_append_time: Option<i64>,
}

/// Decode one record from `r`.
pub(crate) fn decode_record(r: &mut Reader, base: RecordBase) -> Result<Record, DecodeError> {
    let len = r.varint("record.length")?;
    let len = usize::try_from(len).map_err(|_| {
        DecodeError::new(
            "record.length",
            DecodeErrorKind::InvalidLength(i64::from(len)),
        )
    })?;
    // The record is read from exactly `length` bytes, and must use them all
    // (Java: "Invalid record size").
    let mut r = Reader::new(r.take(len, "record.length")?);
    let _attributes = r.i8("record.attributes")?;
    let timestamp_delta = r.varlong("record.timestamp_delta")?;
    let offset_delta = r.varint("record.offset_delta")?;
    let key = varint_bytes(&mut r, "record.key")?;
    let value = varint_bytes(&mut r, "record.value")?;
    let n = r.varint("record.headers_count")?;
    let n = usize::try_from(n)
        .ok()
        .filter(|n| n.saturating_mul(MIN_HEADER_SIZE) <= r.remaining())
        .ok_or_else(|| {
            DecodeError::new(
                "record.headers_count",
                DecodeErrorKind::InvalidLength(i64::from(n)),
            )
        })?;
    let mut headers = Vec::with_capacity(capacity_hint(n));
    for _ in 0..n {
        let key = varint_bytes(&mut r, "record.header.key")?.ok_or_else(|| {
            DecodeError::new("record.header.key", DecodeErrorKind::UnexpectedNull)
        })?;
        // Strict UTF-8: Java's producer can only write valid keys; anything
        // else is corruption or another client's bug, and is reported.
        let key = ByteString::try_from(key)
            .map_err(|_| DecodeError::new("record.header.key", DecodeErrorKind::InvalidUtf8))?;
        let value = varint_bytes(&mut r, "record.header.value")?;
        headers.push(Header { key, value });
    }
    r.finish("record.length")?;
    Ok(Record {
        // Wrapping, not panicking, on hostile values; encoding subtracts
        // with wrapping too, so the delta survives a round trip.
        offset: base.base_offset.wrapping_add(i64::from(offset_delta)),
        timestamp: base
            .log_append_time
            .unwrap_or_else(|| base.base_timestamp.wrapping_add(timestamp_delta)),
        key,
        value,
        headers,
    })
}

/// A varint length (-1 = null) then that many bytes, zero-copy.
fn varint_bytes(r: &mut Reader, field: &'static str) -> Result<Option<Bytes>, DecodeError> {
    let len = r.varint(field)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::new(field, DecodeErrorKind::InvalidLength(i64::from(len))))?;
    r.take(len, field).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn base() -> RecordBase {
        RecordBase {
            base_offset: 100,
            base_timestamp: 1_000,
            log_append_time: None,
        }
    }

    #[test]
    fn known_bytes() {
        // offset delta 1, timestamp delta 2, key "k", null value, one
        // header ("h", null): built by hand from the spec.
        let rec = Record {
            offset: 101,
            timestamp: 1_002,
            key: Some(Bytes::from_static(b"k")),
            value: None,
            headers: vec![Header::null("h")],
        };
        let mut out = BytesMut::new();
        encode_record(&mut out, 1, 2, &rec).unwrap();
        let want: &[u8] = &[
            0x14, // length 10 (zig-zag)
            0x00, // attributes
            0x04, // timestamp delta 2
            0x02, // offset delta 1
            0x02, b'k', // key length 1, "k"
            0x01, // value length -1 (null)
            0x02, // one header
            0x02, b'h', // header key "h"
            0x01, // header value null
        ];
        assert_eq!(&out[..], want);
        assert_eq!(record_size(1, 2, &rec), Some(want.len()));
        let got = decode_record(&mut Reader::new(out.freeze()), base()).unwrap();
        assert_eq!(got, rec);
    }

    #[test]
    fn length_must_match_the_fields() {
        let rec = Record::default();
        let mut out = BytesMut::new();
        encode_record(&mut out, 0, 0, &rec).unwrap();
        // Claim one more byte than the fields use, and supply it.
        out[0] += 2;
        out.put_u8(0);
        let e = decode_record(&mut Reader::new(out.freeze()), base()).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TrailingBytes(1));
    }

    #[test]
    fn hostile_header_count() {
        let data: &[u8] = &[0x14, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f];
        let e = decode_record(&mut Reader::new(Bytes::from_static(data)), base()).unwrap_err();
        assert_eq!(e.field, "record.headers_count");
        assert!(matches!(e.kind, DecodeErrorKind::InvalidLength(_)));
    }

    #[test]
    fn null_header_key_is_an_error() {
        let data: &[u8] = &[0x10, 0, 0, 0, 1, 1, 0x02, 0x01, 0x01];
        let e = decode_record(&mut Reader::new(Bytes::from_static(data)), base()).unwrap_err();
        assert_eq!(e.field, "record.header.key");
        assert_eq!(e.kind, DecodeErrorKind::UnexpectedNull);
    }

    proptest! {
        #[test]
        fn sizes_match_the_writer(v32: i32, v64: i64) {
            let mut b = BytesMut::new();
            b.put_varint(v32);
            prop_assert_eq!(b.len(), varint_size(v32));
            let mut b = BytesMut::new();
            b.put_varlong(v64);
            prop_assert_eq!(b.len(), varlong_size(v64));
        }
    }
}
