//! Every generated message, at every valid version, encodes and decodes
//! back to the same value: with every field the version carries set, with
//! nulls where allowed, and at its defaults.

use bytes::BytesMut;
use skotch_protocol::messages::Message;
use skotch_protocol::Reader;

use crate::samples::{visit_all, Sample, Visit};

/// Encode at `version`, decode, and check the value and that every byte
/// was read. Returns the encoding.
pub fn round_trip<M: Message>(value: &M, version: i16) -> bytes::Bytes {
    let mut buf = BytesMut::new();
    value
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("encoding {} v{version}: {e}", M::NAME));
    let bytes = buf.freeze();
    let mut r = Reader::new(bytes.clone());
    let back = M::decode(&mut r, version)
        .unwrap_or_else(|e| panic!("decoding {} v{version}: {e}", M::NAME));
    assert_eq!(&back, value, "{} v{version}", M::NAME);
    assert!(
        r.is_empty(),
        "{} v{version}: {} bytes left",
        M::NAME,
        r.remaining()
    );
    bytes
}

struct RoundTrip {
    messages: usize,
    cases: usize,
}

impl Visit for RoundTrip {
    fn visit<M: Message + Sample>(&mut self) {
        self.messages += 1;
        let (lo, hi) = M::VERSIONS;
        assert!(lo <= hi, "{}", M::NAME);
        for version in lo..=hi {
            for nulls in [false, true] {
                let value = M::sample(version, nulls);
                round_trip(&value, version);
                self.cases += 1;
            }
            round_trip(&M::default(), version);
            // Decoding a version fills the fields it lacks with defaults, so
            // a full sample must differ from the default in some field.
            let full = M::sample(version, false);
            let mut buf = BytesMut::new();
            full.encode(&mut buf, version).unwrap();
            let mut d = BytesMut::new();
            M::default().encode(&mut d, version).unwrap();
            if !buf.is_empty() && buf != d {
                assert_ne!(full, M::default(), "{} v{version}", M::NAME);
            }
        }
    }
}

#[test]
fn every_message_round_trips_at_every_version() {
    let mut v = RoundTrip {
        messages: 0,
        cases: 0,
    };
    visit_all(&mut v);
    assert_eq!(v.messages, 52);
    assert!(v.cases > 400, "{} cases", v.cases);
}

struct OutOfRange;

impl Visit for OutOfRange {
    fn visit<M: Message + Sample>(&mut self) {
        let (lo, hi) = M::VERSIONS;
        for version in [lo - 1, hi + 1, i16::MIN, i16::MAX] {
            if (lo..=hi).contains(&version) {
                continue;
            }
            let mut buf = BytesMut::from(&b"keep"[..]);
            let e = M::default().encode(&mut buf, version).unwrap_err();
            assert!(
                matches!(e, skotch_protocol::EncodeError::UnsupportedVersion { .. }),
                "{}: {e}",
                M::NAME
            );
            assert_eq!(&buf[..], b"keep");
            let e = M::decode(&mut Reader::new(bytes::Bytes::new()), version).unwrap_err();
            assert_eq!(e.message, Some((M::NAME, version)));
        }
    }
}

#[test]
fn versions_outside_the_range_are_rejected() {
    visit_all(&mut OutOfRange);
}
