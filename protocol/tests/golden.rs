//! Golden fixtures: record batches written by other Kafka clients, decoded
//! without a broker.
//!
//! protocol/tests/fixtures/<client>-<codec>.bin are log segments holding
//! the batches the Java client (kafka-clients) and librdkafka produced for
//! the same 50 records with each codec, captured by scripts/capture-fixtures;
//! <client>-<codec>.json lists those records as the producer sent them
//! (offset, timestamp, key, value, headers; bytes as base64, long ones as
//! length and SHA-256) and the client's version. Each fixture must decode,
//! CRCs checked, to exactly those records, and its batches must carry the
//! codec its name says.
//!
//! What the fixtures exercise, per client (see the capture script's notes):
//! gzip members from both; xerial-framed snappy with 32 KB chunks (Java) and
//! a raw snappy block (librdkafka); LZ4 frames of independent 64 KB blocks
//! without content size or checksums, several blocks per frame (both); zstd
//! frames without a content size (both); null and empty keys and values,
//! null header values, duplicate header keys and a negative timestamp delta.

use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use skotch_protocol::record::{decode_batches, Compression, Record};

const CLIENTS: [&str; 2] = ["java", "librdkafka"];
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Bytes as the fixture JSON gives them: null, a base64 string, or
/// `{"len": n, "sha256": hex}` for long ones.
fn check_bytes(what: &str, want: &Value, got: Option<&[u8]>) {
    match want {
        Value::Null => assert_eq!(got, None, "{what}"),
        Value::String(s) => {
            let want = base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("fixture base64");
            assert_eq!(got, Some(want.as_slice()), "{what}");
        }
        Value::Object(o) => {
            let got = got.unwrap_or_else(|| panic!("{what}: null, expected bytes"));
            assert_eq!(Some(got.len() as u64), o["len"].as_u64(), "{what} length");
            let hex: String = Sha256::digest(got)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(Some(hex.as_str()), o["sha256"].as_str(), "{what} sha256");
        }
        other => panic!("{what}: bad fixture value {other}"),
    }
}

fn check_record(what: &str, want: &Value, got: &Record) {
    assert_eq!(Some(got.offset), want["offset"].as_i64(), "{what} offset");
    assert_eq!(
        Some(got.timestamp),
        want["timestamp"].as_i64(),
        "{what} timestamp"
    );
    check_bytes(&format!("{what} key"), &want["key"], got.key.as_deref());
    check_bytes(
        &format!("{what} value"),
        &want["value"],
        got.value.as_deref(),
    );
    let headers = want["headers"].as_array().expect("fixture headers");
    assert_eq!(got.headers.len(), headers.len(), "{what} header count");
    for (j, (h, w)) in got.headers.iter().zip(headers).enumerate() {
        assert_eq!(Some(&*h.key), w[0].as_str(), "{what} header {j} key");
        check_bytes(
            &format!("{what} header {j} value"),
            &w[1],
            h.value.as_deref(),
        );
    }
}

fn check_fixture(client: &str, codec: Compression) {
    let name = format!("{client}-{}", codec.name());
    let dir = fixtures();
    let data = std::fs::read(dir.join(format!("{name}.bin")))
        .unwrap_or_else(|e| panic!("{name}.bin (scripts/capture-fixtures writes it): {e}"));
    let json: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("{name}.json"))).expect("fixture JSON"),
    )
    .expect("fixture JSON parses");
    assert_eq!(json["client"], client);
    assert_eq!(json["codec"], codec.name());
    let want = json["records"].as_array().expect("fixture records");

    let mut batches = decode_batches(Bytes::from(data), true);
    let mut got = Vec::new();
    let mut count = 0;
    for batch in batches.by_ref() {
        let batch = batch.unwrap_or_else(|e| panic!("{name}: batch {count}: {e}"));
        assert_eq!(
            batch.compression(),
            Some(codec),
            "{name}: batch {count} codec"
        );
        assert!(!batch.is_control() && !batch.is_transactional(), "{name}");
        for r in batch.records() {
            got.push(r.unwrap_or_else(|e| panic!("{name}: record {}: {e}", got.len())));
        }
        count += 1;
    }
    assert!(
        !batches.is_partial() && batches.remaining() == 0,
        "{name}: trailing bytes"
    );
    assert!(count > 0, "{name}: no batches");
    assert_eq!(got.len(), want.len(), "{name}: record count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        check_record(&format!("{name} record {i}"), w, g);
    }
}

macro_rules! golden {
    ($($test:ident: $client:expr, $codec:expr;)*) => {
        $(
            #[test]
            fn $test() {
                check_fixture($client, $codec);
            }
        )*
    };
}

golden! {
    java_none: "java", Compression::None;
    java_gzip: "java", Compression::Gzip;
    java_snappy: "java", Compression::Snappy;
    java_lz4: "java", Compression::Lz4;
    java_zstd: "java", Compression::Zstd;
    librdkafka_none: "librdkafka", Compression::None;
    librdkafka_gzip: "librdkafka", Compression::Gzip;
    librdkafka_snappy: "librdkafka", Compression::Snappy;
    librdkafka_lz4: "librdkafka", Compression::Lz4;
    librdkafka_zstd: "librdkafka", Compression::Zstd;
}

/// Every fixture on disk is one of the tests above (a new client or codec
/// needs its test).
#[test]
fn no_untested_fixtures() {
    let mut known: Vec<String> = CLIENTS
        .iter()
        .flat_map(|c| CODECS.iter().map(move |k| format!("{c}-{}", k.name())))
        .collect();
    known.sort();
    let mut found: Vec<String> = std::fs::read_dir(fixtures())
        .expect("protocol/tests/fixtures")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "bin").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    found.sort();
    assert_eq!(found, known);
}
