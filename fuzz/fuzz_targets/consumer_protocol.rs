//! The Java ConsumerProtocol subscription and assignment bytes other group
//! members send (a classic group leader decodes every member's
//! subscription; every member decodes its assignment): never a panic, and
//! what decodes re-encodes to bytes that decode to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use skotch_client::group::consumer_protocol::{Assignment, Subscription};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(s) = Subscription::decode(bytes.clone()) {
        if let Ok(enc) = s.encode() {
            let again = Subscription::decode(enc).expect("re-encoded subscription decodes");
            assert_eq!(again.topics.len(), s.topics.len());
            assert_eq!(again.generation_id, s.generation_id);
        }
    }
    if let Ok(a) = Assignment::decode(bytes) {
        if let Ok(enc) = a.encode() {
            let again = Assignment::decode(enc).expect("re-encoded assignment decodes");
            let mut x = again.partitions.clone();
            let mut y = a.partitions.clone();
            x.sort();
            y.sort();
            assert_eq!(x, y);
        }
    }
});
