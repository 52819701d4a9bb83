//! Writes the committed seed inputs in `fuzz/seeds/<target>/`:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! libFuzzer rarely invents a valid zstd or LZ4 frame, or a whole record
//! batch, from nothing; starting from valid inputs, its mutations explore
//! the decoders past their headers. Each seed is a small input in the
//! format its target reads (a limit prefix, then the data), made with our
//! encoders, the codec crates' other settings (stored blocks, checksums,
//! linked blocks, content sizes, bigger blocks), and, when they are
//! installed, the reference `gzip`, `lz4` and `zstd` command-line tools
//! (libzstd at high levels writes what ruzstd's encoder never does:
//! compressed literals tables, repeat offsets, checksums).
//!
//! Deterministic: running it again rewrites the same files (for the same
//! tool versions). It writes only the files it names; seeds that other
//! means put in `seeds/` stay.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use skotch_protocol::messages::{
    fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData},
    FetchResponse, Message,
};
use skotch_protocol::record::{
    compress, encode_batch, BatchHeader, Compression, ControlRecord, ControlRecordType, Header,
    Record, RecordBatchBuilder, ATTRIBUTE_CONTROL, ATTRIBUTE_LOG_APPEND_TIME,
    ATTRIBUTE_TRANSACTIONAL,
};

/// Seeds stay below libFuzzer's default `-max_len` (4096 bytes), so they do
/// not raise it for the whole run.
const MAX_SEED: usize = 4096;

/// A limit prefix of 1 MiB for the decompressor targets
/// (`limit_from_bytes`).
const LIMIT_1MIB: [u8; 3] = [0x10, 0x00, 0x00];

/// The limit byte for the record batch targets: 1 MiB
/// (`limit_from_byte(255)`); odd, so `record_batch_crc` repairs CRCs.
const BATCH_LIMIT_1MIB: u8 = 255;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

fn write(target: &str, name: &str, data: &[u8]) {
    assert!(
        data.len() <= MAX_SEED,
        "{target}/{name}: {} bytes",
        data.len()
    );
    let dir = seeds_dir().join(target);
    std::fs::create_dir_all(&dir).expect("create the seeds directory");
    std::fs::write(dir.join(name), data).expect("write a seed");
}

/// Text that compresses well: record-like JSON lines.
fn text(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u32;
    while out.len() < n {
        writeln!(
            out,
            "{{\"id\": {i}, \"event\": \"alert\", \"ra\": {}.{}, \"note\": \"the quick brown fox\"}}",
            i * 7 % 360,
            i * 13 % 1000
        )
        .expect("writing to a Vec");
        i += 1;
    }
    out.truncate(n);
    out
}

/// Bytes that do not compress (a fixed LCG, so the seeds are stable).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// `data` compressed by a command-line tool, or `None` when it is not
/// installed or fails.
fn tool(program: &str, args: &[&str], data: &[u8]) -> Option<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().ok()?;
    feeder.join().ok()?.ok()?;
    out.status.success().then_some(out.stdout)
}

fn ours(codec: Compression, data: &[u8]) -> Vec<u8> {
    compress(codec, None, data).expect("compress")
}

fn with_limit(limit: [u8; 3], data: &[u8]) -> Vec<u8> {
    let mut out = limit.to_vec();
    out.extend_from_slice(data);
    out
}

/// The limit prefix that is exactly `n` bytes.
fn exact(n: usize) -> [u8; 3] {
    let b = u32::try_from(n).expect("small").to_be_bytes();
    [b[1], b[2], b[3]]
}

fn decompressor_seeds() {
    let short = text(300);
    let long = text(3000);
    let rand = noise(600);

    // Every codec: our encoder on empty, short, long and incompressible
    // data; the long one also with an exact and a too-small limit.
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let target = format!("decompress_{codec}");
        write(
            &target,
            "ours-empty",
            &with_limit(LIMIT_1MIB, &ours(codec, b"")),
        );
        write(
            &target,
            "ours-short",
            &with_limit(LIMIT_1MIB, &ours(codec, &short)),
        );
        write(
            &target,
            "ours-long",
            &with_limit(LIMIT_1MIB, &ours(codec, &long)),
        );
        write(
            &target,
            "ours-noise",
            &with_limit(LIMIT_1MIB, &ours(codec, &rand)),
        );
        write(
            &target,
            "ours-long-exact-limit",
            &with_limit(exact(long.len()), &ours(codec, &long)),
        );
        write(
            &target,
            "ours-long-small-limit",
            &with_limit(exact(100), &ours(codec, &long)),
        );
        let mut two = ours(codec, &short);
        two.extend(ours(codec, &long[..1000]));
        write(&target, "ours-two", &with_limit(LIMIT_1MIB, &two));
    }

    // gzip: stored blocks, level 9, a header with name, comment and extra
    // field, and the reference tool.
    for (name, level) in [("flate2-stored", 0), ("flate2-best", 9)] {
        let mut enc = flate2::GzBuilder::new()
            .filename("records")
            .comment("seed")
            .extra(&b"xx"[..])
            .write(Vec::new(), flate2::Compression::new(level));
        enc.write_all(&long).expect("gzip");
        let z = enc.finish().expect("gzip");
        if z.len() + 3 <= MAX_SEED {
            write("decompress_gzip", name, &with_limit(LIMIT_1MIB, &z));
        } else {
            let mut enc = flate2::GzBuilder::new()
                .filename("records")
                .write(Vec::new(), flate2::Compression::new(level));
            enc.write_all(&short).expect("gzip");
            write(
                "decompress_gzip",
                name,
                &with_limit(LIMIT_1MIB, &enc.finish().expect("gzip")),
            );
        }
    }
    if let Some(z) = tool("gzip", &["-9", "-c", "-n"], &long) {
        write("decompress_gzip", "gzip-cli-9", &with_limit(LIMIT_1MIB, &z));
    }

    // snappy: one raw block (what older producers send), xerial with
    // several chunks, raw noise (all literals).
    let mut raw = snap::raw::Encoder::new();
    write(
        "decompress_snappy",
        "raw-block",
        &with_limit(LIMIT_1MIB, &raw.compress_vec(&long).expect("snappy")),
    );
    write(
        "decompress_snappy",
        "raw-noise",
        &with_limit(LIMIT_1MIB, &raw.compress_vec(&rand).expect("snappy")),
    );
    let mut xerial = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for chunk in long.chunks(1000) {
        let block = raw.compress_vec(chunk).expect("snappy");
        xerial.extend(u32::try_from(block.len()).expect("small").to_be_bytes());
        xerial.extend(block);
    }
    write(
        "decompress_snappy",
        "xerial-chunks",
        &with_limit(LIMIT_1MIB, &xerial),
    );

    // lz4: the frame options Java never writes but librdkafka and the
    // reference tool may.
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let lz4 = |info: FrameInfo, data: &[u8]| {
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).expect("lz4");
        enc.finish().expect("lz4")
    };
    // Several 64 KB blocks in little space: a short pattern, repeated.
    let blocks: Vec<u8> = b"0123456789abcdef"
        .iter()
        .copied()
        .cycle()
        .take(150_000)
        .collect();
    type Variant = (&'static str, fn(u64) -> FrameInfo);
    let variants: [Variant; 4] = [
        ("linked", |_| FrameInfo::new().block_mode(BlockMode::Linked)),
        ("checksums", |_| {
            FrameInfo::new()
                .block_checksums(true)
                .content_checksum(true)
        }),
        ("content-size", |n| FrameInfo::new().content_size(Some(n))),
        ("block-256k", |_| {
            FrameInfo::new().block_size(BlockSize::Max256KB)
        }),
    ];
    for (name, info) in variants {
        for (suffix, data) in [("", &long), ("-blocks", &blocks)] {
            let z = lz4(info(data.len() as u64), data);
            write(
                "decompress_lz4",
                &format!("{name}{suffix}"),
                &with_limit(LIMIT_1MIB, &z),
            );
        }
    }
    if let Some(z) = tool("lz4", &["-9", "-BD", "-BX", "--content-size", "-c"], &long) {
        write(
            "decompress_lz4",
            "lz4-cli-9-linked-checksums",
            &with_limit(LIMIT_1MIB, &z),
        );
    }
    if let Some(z) = tool("lz4", &["-9", "-B4", "-BD", "-BX", "-c"], &blocks) {
        write(
            "decompress_lz4",
            "lz4-cli-9-linked-blocks",
            &with_limit(LIMIT_1MIB, &z),
        );
    }
    if let Some(z) = tool("lz4", &["-1", "-c"], &long) {
        write("decompress_lz4", "lz4-cli-1", &with_limit(LIMIT_1MIB, &z));
    }

    // zstd: raw blocks, a skippable frame first, and libzstd's own frames
    // at several levels, with and without a checksum.
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};
    write(
        "decompress_zstd",
        "ruzstd-uncompressed",
        &with_limit(
            LIMIT_1MIB,
            &compress_to_vec(&short[..], CompressionLevel::Uncompressed),
        ),
    );
    let mut skip = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    skip.extend(ours(Compression::Zstd, &short));
    write(
        "decompress_zstd",
        "skippable-then-frame",
        &with_limit(LIMIT_1MIB, &skip),
    );
    for (name, args) in [
        ("zstd-cli-1", &["-1", "-c", "--no-check"][..]),
        ("zstd-cli-3-check", &["-3", "-c", "--check"][..]),
        ("zstd-cli-19-check", &["-19", "-c", "--check"][..]),
        ("zstd-cli-22-ultra", &["--ultra", "-22", "-c"][..]),
    ] {
        if let Some(z) = tool("zstd", args, &long) {
            write("decompress_zstd", name, &with_limit(LIMIT_1MIB, &z));
        }
    }
    if let Some(z) = tool("zstd", &["-19", "-c", "--check"], &rand) {
        write(
            "decompress_zstd",
            "zstd-cli-19-noise",
            &with_limit(LIMIT_1MIB, &z),
        );
    }
}

/// Records with keys, values, headers and nulls of every kind.
fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            offset: i as i64,
            timestamp: 1_700_000_000_000 + i as i64 * 17,
            key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
            value: (i % 5 != 4).then(|| Bytes::from(text(40 + i * 10))),
            headers: match i % 3 {
                0 => vec![],
                1 => vec![Header::new("_format", "json"), Header::null("trace")],
                _ => vec![Header::new("k", "1"), Header::new("k", "2")],
            },
        })
        .collect()
}

fn built(codec: Compression, recs: &[Record]) -> Bytes {
    let mut b = RecordBatchBuilder::new(usize::MAX).compression(codec, None);
    for r in recs {
        b.try_push(r.clone()).expect("fits");
    }
    b.build().expect("build")
}

fn batch(header: BatchHeader, recs: &[Record]) -> Bytes {
    let mut out = BytesMut::new();
    encode_batch(&header, recs, &mut out).expect("encode");
    out.freeze()
}

/// A transaction: a transactional batch then its ABORT marker.
fn aborted_transaction(base: i64, pid: i64) -> Vec<u8> {
    let data = BatchHeader {
        base_offset: base,
        attributes: ATTRIBUTE_TRANSACTIONAL | Compression::Lz4.id(),
        last_offset_delta: 1,
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: 0,
        ..BatchHeader::default()
    };
    let recs: Vec<Record> = records(2)
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: base + i as i64,
            ..r
        })
        .collect();
    let marker = Record {
        offset: base + 2,
        key: Some(
            ControlRecord {
                version: 0,
                kind: ControlRecordType::Abort,
            }
            .encode_key(),
        ),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        ..Record::default()
    };
    let control = BatchHeader {
        base_offset: base + 2,
        attributes: ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL,
        producer_id: pid,
        producer_epoch: 0,
        ..BatchHeader::default()
    };
    let mut out = batch(data, &recs).to_vec();
    out.extend_from_slice(&batch(control, &[marker]));
    out
}

fn record_batch_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for codec in Compression::ALL {
        seeds.push((format!("{codec}-6"), built(codec, &records(6)).to_vec()));
    }
    let log_append = BatchHeader {
        base_offset: 100,
        attributes: ATTRIBUTE_LOG_APPEND_TIME | Compression::Zstd.id(),
        last_offset_delta: 3,
        base_timestamp: 1_700_000_000_000,
        max_timestamp: 1_700_000_000_999,
        ..BatchHeader::default()
    };
    let recs: Vec<Record> = records(4)
        .into_iter()
        .map(|r| Record {
            offset: r.offset + 100,
            timestamp: 1_700_000_000_999,
            ..r
        })
        .collect();
    seeds.push((
        "log-append-time-zstd".into(),
        batch(log_append, &recs).to_vec(),
    ));
    seeds.push(("aborted-transaction".into(), aborted_transaction(0, 7)));
    let mut several = Vec::new();
    for codec in Compression::ALL {
        several.extend_from_slice(&built(codec, &records(2)));
    }
    seeds.push(("one-of-each-codec".into(), several));
    seeds
}

fn fetch_seeds() {
    // Fetch at every version, with compressed batches and an aborted
    // transaction in its records. Byte 0 = 4 picks Fetch in `responses`.
    let mut records = aborted_transaction(0, 7);
    records.extend_from_slice(&built(Compression::Snappy, &self::records(2)));
    let response = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "alerts".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                high_watermark: 5,
                last_stable_offset: 5,
                aborted_transactions: Some(vec![AbortedTransaction {
                    producer_id: 7,
                    first_offset: 0,
                }]),
                records: Some(Bytes::from(records)),
                ..PartitionData::default()
            }],
            ..FetchableTopicResponse::default()
        }],
        ..FetchResponse::default()
    };
    let (lo, hi) = FetchResponse::VERSIONS;
    for v in lo..=hi {
        let mut body = BytesMut::new();
        response.encode(&mut body, v).expect("encode FetchResponse");
        let mut seed = vec![4, u8::try_from(v - lo).expect("small")];
        seed.extend_from_slice(&body);
        write("responses", &format!("fetch-v{v}"), &seed);
    }
}

fn stream_header_seeds() {
    // See fuzz_targets/stream_headers.rs for the layout.
    fn case(
        flags: u8,
        headers: &[(&str, Option<&[u8]>)],
        sender: Option<&str>,
        value: &[u8],
    ) -> Vec<u8> {
        let mut out = vec![flags];
        out.extend((1..=16u8).map(|b| b * 11));
        out.push(u8::try_from(headers.len()).expect("few"));
        for (k, v) in headers {
            out.push(u8::try_from(k.len()).expect("short"));
            out.extend_from_slice(k.as_bytes());
            match v {
                Some(v) => {
                    out.push(u8::try_from(v.len()).expect("short"));
                    out.extend_from_slice(v);
                }
                None => out.push(255),
            }
        }
        if let Some(s) = sender {
            out.push(u8::try_from(s.len()).expect("short"));
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(value);
        out
    }
    let id: &[u8] = &[0x5a; 16];
    let text_id = b"67e55044-10b1-426f-9247-bb680e5fe0c8";
    write(
        "stream_headers",
        "hop-json",
        &case(
            3,
            &[
                ("_id", Some(id)),
                ("_sender", Some(b"alice")),
                ("_test", Some(b"true")),
                ("_format", Some(b"json")),
            ],
            Some("alice"),
            br#"{"event": "alert", "ra": 1.5e-05, "tags": ["a", "\u00e9"], "n": null}"#,
        ),
    );
    write(
        "stream_headers",
        "hop-blob",
        &case(
            0,
            &[
                ("user", Some(b"1")),
                ("_id", Some(text_id)),
                ("_format", Some(b"blob")),
            ],
            None,
            b"\x00\x01raw",
        ),
    );
    write(
        "stream_headers",
        "legacy-envelope",
        &case(
            0,
            &[],
            None,
            br#"{"format": "blob", "content": {"a": [1, 2.0, 1e+16]}}"#,
        ),
    );
    write(
        "stream_headers",
        "null-format-voevent",
        &case(
            4,
            &[
                ("_format", None),
                ("_format", Some(b"VOEVENT")),
                ("_test", None),
            ],
            None,
            b"",
        ),
    );
    write(
        "stream_headers",
        "json-label-not-json",
        &case(
            2,
            &[("k", Some(b"v")), ("k", None), ("_format", Some(b"JSON"))],
            Some("bob"),
            b"{oops",
        ),
    );
}

fn main() {
    decompressor_seeds();
    for (name, data) in record_batch_seeds() {
        for target in ["record_batch", "record_batch_crc"] {
            let mut seed = vec![BATCH_LIMIT_1MIB];
            seed.extend_from_slice(&data);
            write(target, &name, &seed);
        }
    }
    fetch_seeds();
    stream_header_seeds();
    println!("seeds written to {}", seeds_dir().display());
}
