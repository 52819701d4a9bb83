//! Recovery of a publisher journal (`skotch_stream::journal`) from
//! arbitrary bytes, as `Journal::open` finds a file after a crash, bit rot
//! or a stray write: `Journal::recover_from_bytes`, the pure function open
//! runs on the file's contents, so no file system is involved.
//!
//! Input: byte 0 picks the layout. Even: the rest is the whole file. Odd:
//! the rest builds a file with a right header and records with right CRCs,
//! so that the fuzzer gets past the CRCs to the record decoding, which raw
//! bytes almost never do: `[type u8][len u8][len bytes of payload]`
//! repeated, and whatever is left when a record no longer fits goes at the
//! end as it is (a tail, torn or not).
//!
//! Never a panic, memory bounded by the input (no allocation by a length
//! read from it), and on success:
//! - the intact prefix (`valid_len`) is at most the input, and the torn
//!   tail, if any, runs from there to the end (else there is none);
//! - pending ids strictly increase (append order) and are below `next_id`;
//! - recovering the intact prefix alone gives the same messages and no
//!   torn tail: cutting the tail off, as open does, loses nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_stream::journal::{file_header, frame_record, Journal};

/// The odd layout of the module docs.
fn framed(mut rest: &[u8]) -> Vec<u8> {
    let mut file = file_header().to_vec();
    while let [kind, len, tail @ ..] = rest {
        let Some((payload, after)) = tail.split_at_checked(usize::from(*len)) else {
            break;
        };
        frame_record(&mut file, *kind, payload);
        rest = after;
    }
    file.extend_from_slice(rest);
    file
}

fuzz_target!(|data: &[u8]| {
    let Some((&layout, rest)) = data.split_first() else {
        return;
    };
    let file = if layout & 1 == 0 {
        rest.to_vec()
    } else {
        framed(rest)
    };
    let Ok(r) = Journal::recover_from_bytes(&file) else {
        return;
    };
    let len = file.len() as u64;
    assert!(r.valid_len <= len);
    match &r.torn_tail {
        Some(t) => assert_eq!((t.offset, t.offset + t.len), (r.valid_len, len)),
        None => assert_eq!(r.valid_len, len),
    }
    for w in r.pending.windows(2) {
        assert!(w[0].id < w[1].id, "{:?} then {:?}", w[0].id, w[1].id);
    }
    if let Some(last) = r.pending.last() {
        assert!(last.id < r.next_id || r.next_id.get() == u64::MAX);
    }
    let prefix = &file[..r.valid_len as usize];
    let again = Journal::recover_from_bytes(prefix).expect("the intact prefix recovers");
    assert_eq!(again.torn_tail, None);
    assert_eq!(again.valid_len, r.valid_len);
    assert_eq!(again.pending, r.pending);
    assert_eq!(again.next_id, r.next_id);
});
