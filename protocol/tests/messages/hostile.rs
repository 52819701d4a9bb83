//! Hostile input: truncations, garbage and absurd lengths must give errors,
//! never panics or allocations sized by the wire.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use skotch_protocol::messages::{
    FetchResponse, Message, MetadataRequest, MetadataResponse, ProduceRequest,
};
use skotch_protocol::{DecodeErrorKind, Reader, Writer};

use crate::samples::{visit_all, Sample, Visit};

fn encode<M: Message>(m: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).unwrap();
    buf.freeze()
}

struct Truncations {
    checked: usize,
}

impl Visit for Truncations {
    fn visit<M: Message + Sample>(&mut self) {
        for version in M::VERSIONS.0..=M::VERSIONS.1 {
            for nulls in [false, true] {
                let full = encode(&M::sample(version, nulls), version);
                for len in 0..full.len() {
                    let mut r = Reader::new(full.slice(..len));
                    let e = M::decode(&mut r, version).expect_err("a prefix must not decode");
                    assert_eq!(e.message, Some((M::NAME, version)));
                    self.checked += 1;
                }
            }
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let mut t = Truncations { checked: 0 };
    visit_all(&mut t);
    assert!(t.checked > 10_000, "{}", t.checked);
}

/// Decode `bytes` as every message at every version; only errors or values
/// may come back.
struct Garbage<'a>(&'a [u8]);

impl Visit for Garbage<'_> {
    fn visit<M: Message + Sample>(&mut self) {
        for version in M::VERSIONS.0..=M::VERSIONS.1 {
            let _ = M::decode(&mut Reader::new(Bytes::copy_from_slice(self.0)), version);
        }
    }
}

/// Flip bytes of valid encodings and decode again.
struct Mutations<'a> {
    edits: &'a [(usize, u8)],
}

impl Visit for Mutations<'_> {
    fn visit<M: Message + Sample>(&mut self) {
        for version in M::VERSIONS.0..=M::VERSIONS.1 {
            let mut bytes = encode(&M::sample(version, false), version).to_vec();
            if bytes.is_empty() {
                continue;
            }
            for &(at, value) in self.edits {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            let _ = M::decode(&mut Reader::new(Bytes::from(bytes)), version);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        visit_all(&mut Garbage(&bytes));
    }

    #[test]
    fn mutated_encodings_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)
    ) {
        visit_all(&mut Mutations { edits: &edits });
    }
}

#[test]
fn huge_array_count_fails_before_allocating() {
    // MetadataRequest v1: topics is a nullable int32-counted array of
    // structs whose smallest element is a 2-byte string.
    let mut buf = BytesMut::new();
    buf.put_i32(i32::MAX);
    buf.put_slice(&[0; 16]);
    let e = MetadataRequest::decode(&mut Reader::new(buf.freeze()), 1).unwrap_err();
    assert_eq!(e.field, "topics");
    assert_eq!(e.kind, DecodeErrorKind::InvalidLength(i64::from(i32::MAX)));
    assert_eq!(e.message, Some(("MetadataRequest", 1)));

    // The same in a flexible version: a compact count of u32::MAX - 1.
    let mut buf = BytesMut::new();
    buf.put_uvarint(u32::MAX);
    buf.put_slice(&[0; 16]);
    let e = MetadataRequest::decode(&mut Reader::new(buf.freeze()), 12).unwrap_err();
    assert_eq!(e.field, "topics");
    assert!(matches!(e.kind, DecodeErrorKind::InvalidLength(_)));
}

#[test]
fn element_minimum_is_enforced() {
    // FetchResponse v4: throttle_time_ms, then `responses` with a count of
    // 3 topics but only 10 bytes left: each topic needs at least 6 bytes
    // (string length + partition count).
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i32(3);
    buf.put_slice(&[0; 10]);
    let e = FetchResponse::decode(&mut Reader::new(buf.freeze()), 4).unwrap_err();
    assert_eq!(e.field, "responses");
    assert_eq!(e.kind, DecodeErrorKind::InvalidLength(3));
}

#[test]
fn huge_byte_lengths_are_truncation_errors() {
    // ProduceRequest v3: transactional_id (null), acks, timeout, one topic
    // "t" with one partition whose records claim i32::MAX bytes.
    let mut buf = BytesMut::new();
    buf.put_i16(-1);
    buf.put_i16(1);
    buf.put_i32(1000);
    buf.put_i32(1);
    buf.put_string("t", false, "name").unwrap();
    buf.put_i32(1);
    buf.put_i32(0);
    buf.put_i32(i32::MAX);
    buf.put_slice(b"short");
    let e = ProduceRequest::decode(&mut Reader::new(buf.freeze()), 3).unwrap_err();
    assert_eq!(e.field, "records");
    assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
}

#[test]
fn trailing_bytes_are_left_for_the_caller() {
    let value = MetadataResponse::sample(12, false);
    let mut buf = BytesMut::new();
    value.encode(&mut buf, 12).unwrap();
    buf.put_slice(b"extra");
    let mut r = Reader::new(buf.freeze());
    assert_eq!(MetadataResponse::decode(&mut r, 12).unwrap(), value);
    assert_eq!(r.peek(), b"extra");
    assert!(r.finish("end").is_err());
}
