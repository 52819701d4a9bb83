//! Record batch decoding on arbitrary bytes, with the CRC check on and off
//! (first input byte). Never a panic; and every batch that decodes with all
//! its records re-encodes:
//! - as itself (`RecordBatch::encode`): byte-identical to the input batch,
//!   except the CRC field when the check was off;
//! - from its header and records (`encode_batch`): decodes back to the same
//!   header and records. Bytes may differ (non-minimal varints in the input),
//!   so this is compared as values.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use skotch_protocol::record::{decode_batches, encode_batch, Record, RecordBatch};

fuzz_target!(|data: &[u8]| {
    let Some((&params, input)) = data.split_first() else {
        return;
    };
    let check_crc = params & 1 == 1;
    let input = Bytes::copy_from_slice(input);
    let mut iter = decode_batches(input.clone(), check_crc);
    let mut offset = 0;
    while let Some(batch) = iter.next() {
        let end = input.len() - iter.remaining();
        let original = &input[offset..end];
        offset = end;
        let Ok(batch) = batch else {
            break;
        };
        let _ = batch.control_record();
        let Ok(records) = batch.records().collect::<Result<Vec<Record>, _>>() else {
            continue;
        };

        let mut again = BytesMut::new();
        batch
            .encode(&mut again)
            .expect("a decoded batch re-encodes");
        if check_crc {
            assert_eq!(&again[..], original);
        } else {
            assert_eq!(&again[..17], &original[..17]);
            assert_eq!(&again[21..], &original[21..]);
        }

        let mut rebuilt = BytesMut::new();
        encode_batch(&batch.header(), &records, &mut rebuilt).expect("decoded records re-encode");
        let decoded = RecordBatch::decode(rebuilt.freeze(), true).expect("our own batch decodes");
        assert_eq!(decoded.header(), batch.header());
        assert_eq!(decoded.record_count, batch.record_count);
        let again: Vec<Record> = decoded
            .records()
            .collect::<Result<_, _>>()
            .expect("our own records decode");
        assert_eq!(again, records);
    }
});
