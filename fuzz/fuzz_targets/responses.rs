//! Every response decoder the client uses, chosen by the first bytes:
//! byte 0 picks the message (the response header, or the body of one of
//! the APIs the client sends), byte 1 the version (within its valid range,
//! so every version is reached), the rest is the body. Decoding must never
//! panic; whatever decodes must re-encode and decode back to the same
//! value.
//!
//! Fetch responses go on as the consumer goes: each partition's records
//! are walked batch by batch (CRC check off, so mutations get past it;
//! decompression limited to 64 KiB), through the read_committed filter
//! built from the partition's aborted transactions, record by record.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use skotch_protocol::messages::*;
use skotch_protocol::record::{decode_batches, AbortedTransactionFilter};
use skotch_protocol::Reader;

fn check<M: Message>(version_byte: u8, body: &[u8]) -> Option<M> {
    let (lo, hi) = M::VERSIONS;
    let span = u16::try_from(hi - lo + 1).unwrap_or(1);
    let version = lo + (u16::from(version_byte) % span) as i16;
    let value = M::decode(&mut Reader::new(Bytes::copy_from_slice(body)), version).ok()?;
    let mut out = BytesMut::new();
    if value.encode(&mut out, version).is_ok() {
        let again = M::decode(&mut Reader::new(out.freeze()), version).expect("re-decode");
        assert_eq!(again, value);
    }
    // Otherwise: values a version cannot carry (e.g. over-long strings)
    // may fail to encode; that is an error, not a crash.
    Some(value)
}

/// The consumer's walk over a Fetch response's record data.
fn walk_records(response: &FetchResponse) {
    for partition in response.responses.iter().flat_map(|t| &t.partitions) {
        let Some(data) = &partition.records else {
            continue;
        };
        let mut aborted = AbortedTransactionFilter::new(
            partition
                .aborted_transactions
                .iter()
                .flatten()
                .map(|a| (a.producer_id, a.first_offset)),
        );
        for batch in decode_batches(data.clone(), false).max_decompressed_size(64 * 1024) {
            let Ok(batch) = batch else {
                break;
            };
            let skip = aborted.is_aborted(&batch);
            let _ = batch.next_offset();
            if !batch.is_control() && !skip {
                for record in batch.records() {
                    if record.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

fn fetch(version: u8, body: &[u8]) {
    if let Some(response) = check::<FetchResponse>(version, body) {
        walk_records(&response);
    }
}

fn run<M: Message>(version: u8, body: &[u8]) {
    check::<M>(version, body);
}

/// What byte 0 picks from.
const DECODERS: &[fn(u8, &[u8])] = &[
    run::<ResponseHeader>,
    run::<ApiVersionsResponse>,
    run::<MetadataResponse>,
    run::<ProduceResponse>,
    fetch,
    run::<ListOffsetsResponse>,
    run::<CreateTopicsResponse>,
    run::<DeleteTopicsResponse>,
    run::<FindCoordinatorResponse>,
    run::<JoinGroupResponse>,
    run::<SyncGroupResponse>,
    run::<HeartbeatResponse>,
    run::<LeaveGroupResponse>,
    run::<OffsetCommitResponse>,
    run::<OffsetFetchResponse>,
    run::<DescribeGroupsResponse>,
    run::<ListGroupsResponse>,
    run::<ConsumerGroupHeartbeatResponse>,
    run::<ConsumerGroupDescribeResponse>,
    run::<SaslHandshakeResponse>,
    run::<SaslAuthenticateResponse>,
    run::<InitProducerIdResponse>,
    run::<OffsetForLeaderEpochResponse>,
];

fuzz_target!(|data: &[u8]| {
    let [which, version, body @ ..] = data else {
        return;
    };
    if let Some(decode) = DECODERS.get(usize::from(*which) % DECODERS.len()) {
        decode(*version, body);
    }
});
