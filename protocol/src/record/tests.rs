use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::codec::DecodeErrorKind;

fn header(k: &str, v: Option<&str>) -> Header {
    Header {
        key: k.into(),
        value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    }
}

fn sample() -> Vec<Record> {
    vec![
        Record {
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                header("h", Some("a")),
                header("h", Some("b")),
                header("n", None),
            ],
            ..Default::default()
        },
        Record {
            timestamp: 1_699_999_999_000,
            key: None,
            value: None,
            ..Default::default()
        },
    ]
}

fn build(records: &[Record]) -> Bytes {
    let mut b = RecordBatchBuilder::new(usize::MAX);
    for r in records {
        b.try_push(r.clone()).unwrap();
    }
    b.build()
}

fn decode_all(data: Bytes) -> Vec<Record> {
    decode_batches(data, true)
        .flat_map(|b| b.unwrap().records().collect::<Vec<_>>())
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn round_trip_keeps_duplicates_and_nulls() {
    let recs = sample();
    let data = build(&recs);
    let batch = decode_batches(data.clone(), true).next().unwrap().unwrap();
    assert_eq!(batch.record_count, 2);
    assert_eq!(batch.last_offset_delta, 1);
    assert_eq!(batch.max_timestamp, 1_700_000_000_000);
    assert_eq!(batch.next_offset(), 2);
    assert!(!batch.is_control());
    let got = decode_all(data);
    for (i, (g, w)) in got.iter().zip(&recs).enumerate() {
        assert_eq!(g.offset, i as i64);
        assert_eq!(g.timestamp, w.timestamp);
        assert_eq!(g.key, w.key);
        assert_eq!(g.value, w.value);
        assert_eq!(g.headers, w.headers);
    }
}

#[test]
fn crc_mismatch_is_an_error() {
    let mut data = BytesMut::from(&build(&sample())[..]);
    let last = data.len() - 1;
    data[last] ^= 0xff;
    let e = decode_batches(data.clone().freeze(), true)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::ChecksumMismatch { .. }),
        "{e}"
    );
    // With the check off the header still decodes.
    assert!(decode_batches(data.freeze(), false).next().unwrap().is_ok());
}

#[test]
fn partial_trailing_batch_is_not_an_error() {
    let one = build(&sample());
    let mut two = BytesMut::from(&one[..]);
    two.extend_from_slice(&one[..one.len() - 3]);
    let batches: Vec<_> = decode_batches(two.freeze(), true).collect();
    assert_eq!(batches.len(), 1);
    assert!(batches[0].is_ok());
}

#[test]
fn every_truncation_is_handled() {
    let data = build(&sample());
    for cut in 0..data.len() {
        // A cut batch is "partial": no batch, no error, no panic.
        assert_eq!(
            decode_batches(data.slice(..cut), true).count(),
            0,
            "cut {cut}"
        );
    }
}

#[test]
fn hostile_record_count_is_rejected() {
    let mut data = BytesMut::from(&build(&sample())[..]);
    data[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let e = decode_batches(data.freeze(), false)
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.field, "record_batch.records_count");
}

#[test]
fn compressed_batches_name_their_codec() {
    for (bits, name) in [(1i16, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")] {
        let mut data = BytesMut::from(&build(&sample())[..]);
        data[21..23].copy_from_slice(&bits.to_be_bytes());
        let e = decode_batches(data.freeze(), false)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnsupportedCompression(name));
        assert!(e.to_string().contains(name));
    }
}

#[test]
fn old_magic_is_a_clear_error() {
    let mut data = BytesMut::from(&build(&sample())[..]);
    data[16] = 1;
    let e = decode_batches(data.freeze(), false)
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.field, "record_batch.magic");
}

#[test]
fn control_records_are_recognised() {
    let mut b = RecordBatchBuilder::new(1000);
    b.try_push(Record {
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        ..Default::default()
    })
    .unwrap();
    let mut data = BytesMut::from(&b.build()[..]);
    data[21..23].copy_from_slice(&0x30i16.to_be_bytes()); // transactional + control
    let batch = decode_batches(data.freeze(), false)
        .next()
        .unwrap()
        .unwrap();
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(
        batch.control_record(),
        Some(ControlRecord {
            version: 0,
            kind: ControlType::Commit
        })
    );
}

#[test]
fn builder_respects_batch_size_but_takes_one_big_record() {
    let mut b = RecordBatchBuilder::new(100);
    let big = Record {
        value: Some(Bytes::from(vec![0u8; 500])),
        ..Default::default()
    };
    assert!(b.try_push(big.clone()).is_ok());
    assert!(b.try_push(big).is_err());
    assert_eq!(b.record_count(), 1);
    assert_eq!(b.estimated_size(), b.build().len());
}

/// Our decoder reads what kafka-protocol encodes, duplicate headers aside
/// (its encoder keeps one value per key).
#[test]
fn differential_kafka_protocol_encoder() {
    use kafka_protocol::records::{
        Compression as KCompression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTimestampType,
    };
    let mut headers = kafka_protocol::indexmap::IndexMap::new();
    headers.insert(
        kafka_protocol::protocol::StrBytes::from_static_str("h"),
        Some(Bytes::from_static(b"x")),
    );
    let records: Vec<KRecord> = (0..5)
        .map(|i| KRecord {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1000 + i,
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: headers.clone(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: KCompression::None,
        },
    )
    .unwrap();
    let got = decode_all(buf.freeze());
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&records) {
        assert_eq!(g.offset, w.offset);
        assert_eq!(g.timestamp, w.timestamp);
        assert_eq!(g.key, w.key);
        assert_eq!(g.value, w.value);
        assert_eq!(g.headers, vec![header("h", Some("x"))]);
    }
}

/// kafka-protocol decodes what we encode.
#[test]
fn differential_kafka_protocol_decoder() {
    use kafka_protocol::records::RecordBatchDecoder;
    let recs = sample();
    let mut data = build(&recs);
    let set = RecordBatchDecoder::decode(&mut data).unwrap();
    assert_eq!(set.records.len(), 2);
    assert_eq!(set.records[0].key, recs[0].key);
    assert_eq!(set.records[1].value, None);
    assert_eq!(set.records[1].timestamp, recs[1].timestamp);
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        any::<i32>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(
            (
                "[a-c_]{0,3}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ),
            0..5,
        ),
    )
        .prop_map(|(ts, k, v, hs)| Record {
            offset: 0,
            timestamp: 1_600_000_000_000 + i64::from(ts),
            key: k.map(Bytes::from),
            value: v.map(Bytes::from),
            headers: hs
                .into_iter()
                .map(|(k, v)| Header {
                    key: k,
                    value: v.map(Bytes::from),
                })
                .collect(),
        })
}

proptest! {
    #[test]
    fn prop_round_trip(recs in proptest::collection::vec(arb_record(), 1..30)) {
        let got = decode_all(build(&recs));
        prop_assert_eq!(got.len(), recs.len());
        for (i, (g, w)) in got.iter().zip(&recs).enumerate() {
            prop_assert_eq!(g.offset, i as i64);
            prop_assert_eq!(g.timestamp, w.timestamp);
            prop_assert_eq!(&g.key, &w.key);
            prop_assert_eq!(&g.value, &w.value);
            prop_assert_eq!(&g.headers, &w.headers);
        }
    }

    #[test]
    fn prop_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), crc: bool) {
        for b in decode_batches(Bytes::from(data), crc) {
            match b {
                Ok(b) => { for r in b.records() { let _ = r; } }
                Err(_) => break,
            }
        }
    }
}
