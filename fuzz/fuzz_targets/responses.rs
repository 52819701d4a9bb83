//! Every response decoder the client uses, chosen by the first bytes:
//! byte 0 picks the message, byte 1 the version (within its valid range),
//! the rest is the body. Decoding must never panic; whatever decodes must
//! re-encode and decode back to the same value.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use skotch_protocol::messages::*;
use skotch_protocol::Reader;

fn check<M: Message>(version_byte: u8, body: &[u8]) {
    let (lo, hi) = M::VERSIONS;
    let span = u16::try_from(hi - lo + 1).unwrap_or(1);
    let version = lo + (u16::from(version_byte) % span) as i16;
    let Ok(value) = M::decode(&mut Reader::new(Bytes::copy_from_slice(body)), version) else {
        return;
    };
    let mut out = BytesMut::new();
    if value.encode(&mut out, version).is_err() {
        // Values a version cannot carry (e.g. over-long strings) may fail
        // to encode; that is an error, not a crash.
        return;
    }
    let again = M::decode(&mut Reader::new(out.freeze()), version).expect("re-decode");
    assert_eq!(again, value);
}

fuzz_target!(|data: &[u8]| {
    let [which, version, body @ ..] = data else {
        return;
    };
    match which % 10 {
        0 => check::<ApiVersionsResponse>(*version, body),
        1 => check::<MetadataResponse>(*version, body),
        2 => check::<ProduceResponse>(*version, body),
        3 => check::<FetchResponse>(*version, body),
        4 => check::<ListOffsetsResponse>(*version, body),
        5 => check::<CreateTopicsResponse>(*version, body),
        6 => check::<DeleteTopicsResponse>(*version, body),
        7 => check::<FindCoordinatorResponse>(*version, body),
        8 => check::<JoinGroupResponse>(*version, body),
        _ => check::<OffsetFetchResponse>(*version, body),
    }
});
