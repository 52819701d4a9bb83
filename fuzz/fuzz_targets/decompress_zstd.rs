//! The zstd decompressor on arbitrary bytes: zstd frames (RFC 8878),
//! several back to back, skippable frames included.
//! Bytes 0-2 set the limit (at most 1 MiB); the rest is the compressed
//! data. Never a panic; what decodes fits the limit exactly and survives a
//! round trip through our encoder (see `skotch_fuzz::check_decompress`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_fuzz::{check_decompress, limit_from_bytes};
use skotch_protocol::record::Compression;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, compressed @ ..] = data else {
        return;
    };
    check_decompress(
        Compression::Zstd,
        compressed,
        limit_from_bytes([*a, *b, *c]),
    );
});
