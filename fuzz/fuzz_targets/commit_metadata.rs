//! The done ranges skotch reads back from a commit's metadata string (which
//! any client may have written): never a panic, and ranges that decode
//! encode back to the same ranges (or a prefix of them, when they no longer
//! fit the length limit: leaving ranges out is safe).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_client::group::commit_metadata;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let committed = i64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8]));
    let Ok(text) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    for candidate in [text.to_string(), format!("skotch-done:1:{text}")] {
        let ranges = commit_metadata::decode(committed, &candidate);
        for w in ranges.windows(2) {
            assert!(w[0].1 < w[1].0, "ranges sorted and apart");
        }
        if !ranges.is_empty() {
            let again =
                commit_metadata::decode(committed, &commit_metadata::encode(committed, &ranges));
            assert!(!again.is_empty());
            assert_eq!(again[..], ranges[..again.len()]);
        }
    }
});
