//! Record batch decoding with the CRC check on, as the consumer runs it
//! (`check.crcs` defaults to true).
//!
//! With the check on, almost every mutation fails at the CRC, so on its own
//! this target would only ever cover the mismatch path (`record_batch`,
//! with the check off, is where coverage comes from). So byte 0's low bit
//! says whether to write the right CRC-32C into every framed batch first:
//! with it, the decode runs the checked path to the end and an
//! uncompressed batch must re-encode byte for byte, CRC included; without
//! it, mismatches are reported as errors, never a panic. The rest of byte
//! 0 sets the decompression limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_fuzz::{check_record_batches, limit_from_byte, repair_crcs};

fuzz_target!(|data: &[u8]| {
    let Some((&params, input)) = data.split_first() else {
        return;
    };
    let mut input = input.to_vec();
    if params & 1 == 1 {
        repair_crcs(&mut input);
    }
    check_record_batches(&input, true, limit_from_byte(params | 1));
});
