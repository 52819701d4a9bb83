//! Record batch decoding on arbitrary bytes with the CRC check off, so the
//! fuzzer's mutations reach the header fields, the codecs and the records
//! behind the CRC (`record_batch_crc` runs the same checks with it on).
//! Byte 0 sets the decompression limit (small ones reach
//! `DecompressedTooLarge`); the rest is a sequence of batches. Never a
//! panic, and what decodes re-encodes (see
//! `skotch_fuzz::check_record_batches`): byte for byte when uncompressed,
//! as equal values when compressed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_fuzz::{check_record_batches, limit_from_byte};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, input)) = data.split_first() else {
        return;
    };
    check_record_batches(input, false, limit_from_byte(limit));
});
