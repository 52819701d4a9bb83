//! What several fuzz targets share: the record batch checks (run with the
//! CRC check off by `record_batch` and on by `record_batch_crc`), the
//! decompressor checks (one `decompress_<codec>` target per codec), and
//! how a limit is read from an input byte.
//!
//! The fuzz targets themselves are in `fuzz_targets/`; the seed inputs in
//! `seeds/` are written by `examples/seeds.rs`.
#![forbid(unsafe_code)]

use bytes::{Bytes, BytesMut};
use skotch_protocol::record::{
    compress, decode_batches, decompress, encode_batch, Compression, Record, RecordBatch,
};
use skotch_protocol::DecodeErrorKind;

/// The largest decompression limit a target asks for: 1 MiB, so that the
/// limit, not libFuzzer's malloc limit, is what stops a decompression bomb.
pub const MAX_LIMIT: usize = 1 << 20;

/// A decompression limit from one byte: 0-127 give 0-1016 bytes in steps of
/// 8 (small limits, so `DecompressedTooLarge` is reached often), 128-255
/// give 8 KiB-1 MiB in steps of 8 KiB.
pub fn limit_from_byte(b: u8) -> usize {
    match b {
        0..=127 => usize::from(b) * 8,
        _ => usize::from(b - 127) * 8192,
    }
}

/// A decompression limit of at most [`MAX_LIMIT`] from three bytes (big
/// endian), for the decompressor targets.
pub fn limit_from_bytes(b: [u8; 3]) -> usize {
    let v = usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
    v % (MAX_LIMIT + 1)
}

/// Offsets in a v2 batch (protocol guide, "Record Batch").
const LENGTH_OFFSET: usize = 8;
const LOG_OVERHEAD: usize = 12;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// Write the right CRC-32C into every batch framed in `data` (by each
/// batch's length field, as a reader frames them), so that a decode with
/// the CRC check on gets past it. Stops at the first length that does not
/// frame a batch of at least a header's size.
pub fn repair_crcs(data: &mut [u8]) {
    let mut at = 0;
    while let Some(len) = data.get(at + LENGTH_OFFSET..at + LOG_OVERHEAD) {
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| (at + LOG_OVERHEAD).checked_add(l))
        else {
            return;
        };
        let Some(batch) = data.get_mut(at..end) else {
            return;
        };
        if batch.len() < ATTRIBUTES_OFFSET {
            return;
        }
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// Decode the batches in `input` with `check_crc` and a decompression
/// limit of `limit` bytes. Never a panic; and every batch whose records
/// all decode:
///
/// - decodes the same on its own (`RecordBatch::decode_bounded`);
/// - re-encodes as itself (`RecordBatch::encode`). Uncompressed: the
///   input's bytes exactly (bar the CRC field when it was not checked).
///   Compressed: the records are compressed again by our encoder, which
///   need not reproduce a foreign encoder's bytes, so the re-encoded batch
///   is decoded (CRC checked, limit exactly its record bytes) and compared
///   as values: header, record count, record bytes and records; and our
///   encoder is deterministic (encoding that again gives the same bytes);
/// - re-encodes from its header and records (`encode_batch`) to a batch
///   that decodes to the same header and records (bytes may differ:
///   non-minimal varints in the input).
pub fn check_record_batches(input: &[u8], check_crc: bool, limit: usize) {
    let input = Bytes::copy_from_slice(input);
    let mut iter = decode_batches(input.clone(), check_crc).max_decompressed_size(limit);
    let mut offset = 0;
    while let Some(batch) = iter.next() {
        let end = input.len() - iter.remaining();
        let original = input.slice(offset..end);
        offset = end;
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                if let DecodeErrorKind::DecompressedTooLarge { limit: l, .. } = e.kind {
                    assert_eq!(l, limit);
                }
                break;
            }
        };
        let alone = RecordBatch::decode_bounded(original.clone(), check_crc, limit)
            .expect("a batch that decodes in a sequence decodes alone");
        assert_eq!(alone, batch);
        let _ = batch.control_record();
        let compression = batch.compression().expect("decoded batches have a codec");
        if compression != Compression::None {
            assert!(batch.record_bytes().len() <= limit);
        }
        let Ok(records) = batch.records().collect::<Result<Vec<Record>, _>>() else {
            continue;
        };
        assert_eq!(records.len(), batch.record_count as usize);

        let mut again = BytesMut::new();
        batch
            .encode(&mut again)
            .expect("a decoded batch re-encodes");
        if compression == Compression::None {
            if check_crc {
                assert_eq!(&again[..], &original[..]);
            } else {
                assert_eq!(&again[..CRC_OFFSET], &original[..CRC_OFFSET]);
                assert_eq!(&again[ATTRIBUTES_OFFSET..], &original[ATTRIBUTES_OFFSET..]);
            }
        } else {
            let again = again.freeze();
            let decoded =
                RecordBatch::decode_bounded(again.clone(), true, batch.record_bytes().len())
                    .expect("our re-compressed batch decodes within its record size");
            assert_eq!(decoded.header(), batch.header());
            assert_eq!(decoded.record_count, batch.record_count);
            assert_eq!(decoded.record_bytes(), batch.record_bytes());
            let decoded_records: Vec<Record> = decoded
                .records()
                .collect::<Result<_, _>>()
                .expect("the same record bytes decode again");
            assert_eq!(decoded_records, records);
            let mut third = BytesMut::new();
            decoded.encode(&mut third).expect("re-encodes");
            assert_eq!(&third[..], &again[..], "our encoder is deterministic");
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
}

/// Decompress `data` with `codec` at most `limit` bytes. Never a panic;
/// an error is a `Decompression` or `DecompressedTooLarge` error (the
/// latter naming `limit`); and what decodes:
///
/// - is at most `limit` bytes;
/// - decodes the same with the limit set to exactly its length, and is
///   `DecompressedTooLarge` with one byte less (the limit is exact);
/// - goes through our encoder and back to the same bytes.
pub fn check_decompress(codec: Compression, data: &[u8], limit: usize) {
    let data = Bytes::copy_from_slice(data);
    let out = match decompress(codec, data.clone(), limit) {
        Ok(out) => out,
        Err(e) => {
            match e.kind {
                DecodeErrorKind::Decompression { codec: c, .. } => assert_eq!(c, codec.name()),
                DecodeErrorKind::DecompressedTooLarge { codec: c, limit: l } => {
                    assert_eq!(c, codec.name());
                    assert_eq!(l, limit);
                }
                other => panic!("unexpected error kind {other:?}"),
            }
            return;
        }
    };
    assert!(
        out.len() <= limit,
        "{} bytes above the limit {limit}",
        out.len()
    );
    let exact = decompress(codec, data.clone(), out.len()).expect("decodes at its exact size");
    assert_eq!(exact, out);
    if let Some(below) = out.len().checked_sub(1) {
        let e = decompress(codec, data, below).expect_err("one byte below its size");
        assert!(
            matches!(e.kind, DecodeErrorKind::DecompressedTooLarge { .. }),
            "{e}"
        );
    }
    let z = compress(codec, None, &out).expect("our encoder takes any bytes");
    let back = decompress(codec, Bytes::from(z), out.len()).expect("our own output decodes");
    assert_eq!(back, out);
}
