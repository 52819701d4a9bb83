//! Kafka protocol messages, generated from Apache Kafka's own JSON message
//! definitions (`clients/src/main/resources/common/message/*.json`, shipped
//! in the kafka-clients jar) by the `skotch-codegen` tool in this
//! repository.
//!
//! One module per message (`fetch_request`, `fetch_response`, ...), each
//! with a struct for the message body and one for every nested structure;
//! the body types are re-exported here. [`ApiKey`] lists every API in the
//! definitions, and [`request_header_version`] / [`response_header_version`]
//! pick the header format for a request or response.
//!
//! # Versions and defaults
//!
//! A struct holds the union of its fields over all versions. Each field's
//! doc comment says which versions carry it, and whether it is nullable,
//! tagged (KIP-482) or ignorable. Fields a version does not carry are left
//! at their default when decoding; `Default` uses the defaults from the
//! definitions (often `-1`), not zero. Encoding a non-default value in a
//! version that cannot carry it is an [`EncodeError::UnsupportedField`],
//! unless the field is marked ignorable, in which case it is dropped (as
//! Kafka's Java client does).
//!
//! # Decoding
//!
//! Decoding is bounded (see [`crate::codec`]): an array count is checked
//! against the smallest possible encoding of one element before anything is
//! allocated, no decoder panics on any input, and byte and record fields are
//! zero-copy slices of the input. Unknown tagged fields are skipped.
//!
//! # Version negotiation
//!
//! [`Message::VERSIONS`] is what the definitions describe, which may include
//! a last version Kafka marks unstable ([`Request::LATEST_VERSION_UNSTABLE`],
//! e.g. InitProducerId v6 in 4.1: a 4.3 broker advertises only up to v5).
//! Pick the highest version both this range (minus an unstable last
//! version) and the broker's ApiVersions response allow.
//!
//! # Data structures
//!
//! `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment` are not
//! sent on their own: they travel in the byte fields of JoinGroup
//! (protocol metadata) and SyncGroup (assignment), each preceded by an
//! int16 version that the caller writes and reads around `encode`/`decode`.
//!
//! Regenerate with `scripts/codegen`; do not edit these files by hand.

use bytes::{BufMut, BytesMut};

use crate::codec::{capacity_hint, DecodeError, DecodeErrorKind, EncodeError, Reader, Writer};

/// A message body that can be encoded and decoded at any of its versions:
/// a request, a response, a header, or a data structure such as
/// `ConsumerProtocolSubscription`.
pub trait Message: Sized + Default + Clone + std::fmt::Debug + PartialEq {
    /// The message name from its definition, e.g. `"FetchRequest"`.
    const NAME: &'static str;
    /// The versions this code can encode and decode, `(min, max)`: Kafka's
    /// `validVersions`.
    const VERSIONS: (i16, i16);
    /// The first flexible version (KIP-482: compact lengths and tagged
    /// fields), or `None` when no version is flexible.
    const FLEXIBLE_MIN: Option<i16>;

    /// Append the message at `version` to `buf`. On error `buf` is left as
    /// it was.
    ///
    /// # Errors
    ///
    /// - [`EncodeError::UnsupportedVersion`] when `version` is outside
    ///   [`Self::VERSIONS`];
    /// - [`EncodeError::UnsupportedField`] when a field that `version`
    ///   cannot carry holds a non-default value and is not ignorable;
    /// - [`EncodeError::UnexpectedNull`] for `None` in a version in which
    ///   the field is not nullable;
    /// - [`EncodeError::TooLong`] for a string, byte array or array longer
    ///   than its length prefix allows.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;

    /// Read one message at `version` from `r`.
    ///
    /// This does not require `r` to be empty afterwards: a newer peer may
    /// send more than this version defines, and a caller that frames
    /// messages knows where each one ends. Call [`Reader::finish`] to insist
    /// on an exact fit.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the field, with
    /// [`DecodeError::in_message`] set to `(NAME, version)`;
    /// [`DecodeErrorKind::UnsupportedVersion`] when `version` is outside
    /// [`Self::VERSIONS`].
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError>;

    /// The `ThrottleTimeMs` of a response that has one (0 in versions
    /// without it): how long the broker asks the client to hold back
    /// (KIP-219). `None` for messages without the field.
    fn throttle_time_ms(&self) -> Option<i32> {
        None
    }
}

/// A request body, tied to its API key and its response type.
pub trait Request: Message {
    /// The API key sent in the request header.
    const API_KEY: ApiKey;
    /// The body of the matching response (same version as the request).
    type Response: Message;
    /// True when Kafka marks the highest version unstable
    /// (`latestVersionUnstable`): brokers do not advertise it unless
    /// configured to, so a client should not choose it.
    const LATEST_VERSION_UNSTABLE: bool = false;
}

/// What the generated modules use, so that each needs a single import.
mod prelude {
    pub(super) use super::{
        decode_message, encode_message, read_array, read_nullable_array, tagged_field, unsupported,
        write_array, write_nullable_array, write_tagged_fields, ApiKey, Message, Request,
    };
    pub(super) use crate::codec::{DecodeError, EncodeError, Reader, Uuid, Writer};
    pub(super) use bytes::{BufMut, Bytes, BytesMut};
}

/// Check the version, encode, and leave `buf` untouched on failure.
fn encode_message<M: Message>(
    buf: &mut BytesMut,
    version: i16,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    if version < M::VERSIONS.0 || version > M::VERSIONS.1 {
        return Err(EncodeError::UnsupportedVersion {
            message: M::NAME,
            version,
        });
    }
    let start = buf.len();
    let result = body(buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Check the version, decode, and name the message in any error.
fn decode_message<M: Message>(
    r: &mut Reader,
    version: i16,
    body: impl FnOnce(&mut Reader) -> Result<M, DecodeError>,
) -> Result<M, DecodeError> {
    if version < M::VERSIONS.0 || version > M::VERSIONS.1 {
        return Err(
            DecodeError::new("version", DecodeErrorKind::UnsupportedVersion(version))
                .in_message(M::NAME, version),
        );
    }
    body(r).map_err(|e| e.in_message(M::NAME, version))
}

/// The error for a non-default, non-ignorable field that `version` lacks.
fn unsupported(message: &'static str, field: &'static str, version: i16) -> EncodeError {
    EncodeError::UnsupportedField {
        message,
        field,
        version,
    }
}

/// Write an array: its length, then each element.
fn write_array<T>(
    buf: &mut BytesMut,
    items: &[T],
    compact: bool,
    field: &'static str,
    mut item: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    buf.put_array_len(Some(items.len()), compact, field)?;
    for i in items {
        item(buf, i)?;
    }
    Ok(())
}

/// Write a nullable array: the null marker, or its length and elements.
fn write_nullable_array<T>(
    buf: &mut BytesMut,
    items: Option<&[T]>,
    compact: bool,
    field: &'static str,
    item: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    match items {
        None => buf.put_array_len(None, compact, field),
        Some(items) => write_array(buf, items, compact, field, item),
    }
}

/// Encode one tagged field into its own buffer (its size goes first on the
/// wire) and queue it.
fn tagged_field(
    tagged: &mut Vec<(u32, BytesMut)>,
    tag: u32,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut buf = BytesMut::new();
    body(&mut buf)?;
    tagged.push((tag, buf));
    Ok(())
}

/// Write the tagged-field section: count, then tag, size and data of each
/// field, in ascending tag order (the order they were queued in).
fn write_tagged_fields(buf: &mut BytesMut, tagged: &[(u32, BytesMut)]) -> Result<(), EncodeError> {
    let count = u32::try_from(tagged.len()).map_err(|_| EncodeError::TooLong {
        field: "tagged_fields",
        len: tagged.len(),
    })?;
    buf.put_uvarint(count);
    for (tag, data) in tagged {
        let len = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong {
            field: "tagged_fields",
            len: data.len(),
        })?;
        buf.put_uvarint(*tag);
        buf.put_uvarint(len);
        buf.put_slice(data);
    }
    Ok(())
}

/// Read an array that must not be null. `min_item` is the smallest
/// encoding of one element, so that a count the remaining bytes cannot hold
/// fails before anything is allocated.
fn read_array<T>(
    r: &mut Reader,
    compact: bool,
    min_item: usize,
    field: &'static str,
    item: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    read_nullable_array(r, compact, min_item, field, item)?
        .ok_or_else(|| DecodeError::new(field, DecodeErrorKind::UnexpectedNull))
}

/// Read a nullable array (see [`read_array`]).
fn read_nullable_array<T>(
    r: &mut Reader,
    compact: bool,
    min_item: usize,
    field: &'static str,
    mut item: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(n) = r.array_len(compact, min_item, field)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(capacity_hint(n));
    for _ in 0..n {
        out.push(item(r)?);
    }
    Ok(Some(out))
}
