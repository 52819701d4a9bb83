//! Cross-cutting tests of the record module: a hand-built fixture, round
//! trips, hostile and truncated input, and kafka-protocol 0.18 as a
//! differential oracle (its encoder and decoder against ours).

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
    b.build().unwrap()
}

fn decode_all(data: Bytes) -> Vec<Record> {
    decode_batches(data, true)
        .flat_map(|b| b.unwrap().records().collect::<Vec<_>>())
        .map(|r| r.unwrap())
        .collect()
}

/// Overwrite the attributes of a single batch and fix its CRC, so the
/// check under test is not masked by a checksum mismatch.
fn with_attributes(data: &Bytes, attributes: i16) -> Bytes {
    let mut b = BytesMut::from(&data[..]);
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    recrc(b)
}

fn recrc(mut b: BytesMut) -> Bytes {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// One batch written out field by field from the protocol guide: base
/// offset 5, one record at offset 6 (delta 1), timestamp 1000 + 2, key
/// null, value "hi", one header ("a", null).
const FIXTURE: &[u8] = &[
    0, 0, 0, 0, 0, 0, 0, 5, // baseOffset 5
    0, 0, 0, 61, // batchLength: 61 - 12 + 12 record bytes
    0, 0, 0, 9, // partitionLeaderEpoch 9
    2, // magic
    0xb4, 0xa3, 0x7f, 0xee, // crc: CRC-32C of the 52 bytes from attributes on
    0, 0, // attributes: none, CreateTime
    0, 0, 0, 1, // lastOffsetDelta 1
    0, 0, 0, 0, 0, 0, 0x03, 0xe8, // baseTimestamp 1000
    0, 0, 0, 0, 0, 0, 0x03, 0xea, // maxTimestamp 1002
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId -1
    0xff, 0xff, // producerEpoch -1
    0xff, 0xff, 0xff, 0xff, // baseSequence -1
    0, 0, 0, 1,    // recordsCount 1
    0x16, // record length 11 (zig-zag)
    0,    // record attributes
    0x04, // timestampDelta 2
    0x02, // offsetDelta 1
    0x01, // key length -1: null
    0x04, b'h', b'i', // value length 2, "hi"
    0x02, // one header
    0x02, b'a', // header key "a"
    0x01, // header value null
];

fn fixture_header() -> BatchHeader {
    BatchHeader {
        base_offset: 5,
        partition_leader_epoch: 9,
        last_offset_delta: 1,
        base_timestamp: 1000,
        max_timestamp: 1002,
        ..BatchHeader::default()
    }
}

fn fixture_record() -> Record {
    Record {
        offset: 6,
        timestamp: 1002,
        key: None,
        value: Some(Bytes::from_static(b"hi")),
        headers: vec![Header::null("a")],
    }
}

#[test]
fn fixture_decodes_and_encodes_byte_for_byte() {
    assert_eq!(crc32c::crc32c(&FIXTURE[21..]), 0xb4a3_7fee);
    let data = Bytes::from_static(FIXTURE);
    let batch = RecordBatch::decode(data.clone(), true).unwrap();
    assert_eq!(batch.header(), fixture_header());
    assert_eq!(batch.crc, 0xb4a3_7fee);
    assert_eq!(batch.record_count, 1);
    assert_eq!(batch.next_offset(), 7);
    let recs: Vec<_> = batch.records().map(Result::unwrap).collect();
    assert_eq!(recs, vec![fixture_record()]);
    // Zero-copy: the value points into the input buffer.
    let v = recs[0].value.as_ref().unwrap();
    assert_eq!(v.as_ptr(), data[FIXTURE.len() - 6..].as_ptr());

    let mut out = BytesMut::new();
    encode_batch(&fixture_header(), &[fixture_record()], &mut out).unwrap();
    assert_eq!(&out[..], FIXTURE);
    let mut again = BytesMut::new();
    batch.encode(&mut again).unwrap();
    assert_eq!(&again[..], FIXTURE);

    // And kafka-protocol reads the fixture the same way.
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut data.clone()).unwrap();
    assert_eq!(set.records.len(), 1);
    assert_eq!(set.records[0].offset, 6);
    assert_eq!(set.records[0].timestamp, 1002);
    assert_eq!(set.records[0].partition_leader_epoch, 9);
    assert_eq!(set.records[0].value.as_deref(), Some(&b"hi"[..]));
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
    assert_eq!(e.field, "record_batch.crc");
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
    let mut it = decode_batches(two.freeze(), true);
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().is_none());
    assert!(it.is_partial());
    assert_eq!(it.remaining(), one.len() - 3);
    // A clean end is not partial.
    let mut it = decode_batches(one, true);
    assert_eq!(it.by_ref().count(), 1);
    assert!(!it.is_partial());
}

#[test]
fn every_truncation_is_handled() {
    let one = build(&sample());
    let mut two = BytesMut::from(&one[..]);
    two.extend_from_slice(&one);
    let two = two.freeze();
    for cut in 0..two.len() {
        // A cut batch is "partial": no error, no panic, and every whole
        // batch before it still comes out.
        let mut it = decode_batches(two.slice(..cut), true);
        let mut whole = 0;
        for b in it.by_ref() {
            b.unwrap();
            whole += 1;
        }
        assert_eq!(whole, cut / one.len(), "cut {cut}");
        assert_eq!(it.is_partial(), cut % one.len() != 0, "cut {cut}");
    }
    for cut in 0..one.len() {
        let e = RecordBatch::decode(one.slice(..cut), true).unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::Truncated { .. }),
            "cut {cut}: {e}"
        );
    }
}

#[test]
fn hostile_record_count_is_rejected_before_allocating() {
    let one = build(&sample());
    // One more record than the bytes after the count could hold at 7
    // bytes each.
    let just_over = ((one.len() - 61) / 7 + 1) as i32;
    for count in [i32::MAX, just_over, -1, i32::MIN] {
        let mut data = BytesMut::from(&one[..]);
        data[57..61].copy_from_slice(&count.to_be_bytes());
        let e = decode_batches(recrc(data), true)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.field, "record_batch.records_count", "{count}");
        assert_eq!(e.kind, DecodeErrorKind::InvalidLength(i64::from(count)));
    }
}

#[test]
fn fewer_records_than_bytes_is_reported() {
    let mut data = BytesMut::from(&build(&sample())[..]);
    data[57..61].copy_from_slice(&1i32.to_be_bytes());
    let batch = RecordBatch::decode(recrc(data), true).unwrap();
    let items: Vec<_> = batch.records().collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    let e = items[1].clone().unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::TrailingBytes(_)), "{e}");
}

#[test]
fn compressed_batches_round_trip_and_name_their_codec() {
    let recs = sample();
    for codec in Compression::ALL {
        let mut b = RecordBatchBuilder::new(usize::MAX).compression(codec, None);
        for r in &recs {
            b.try_push(r.clone()).unwrap();
        }
        let data = b.build().unwrap();
        let batch = RecordBatch::decode(data.clone(), true).unwrap();
        assert_eq!(batch.compression(), Some(codec));
        let got: Vec<_> = batch.records().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].headers, recs[0].headers);
        assert_eq!((got[1].key.clone(), got[1].value.clone()), (None, None));
        // The same encoder at the same level gives the same bytes again.
        let mut again = BytesMut::new();
        batch.encode(&mut again).unwrap();
        assert_eq!(&again[..], &data[..], "{codec}");
        if codec == Compression::None {
            continue;
        }
        // Plain record bytes labelled with a codec: the codec's error,
        // naming it (raw snappy may read garbage as a block; then the
        // records fail instead).
        let plain = build(&recs);
        let e = decode_batches(with_attributes(&plain, codec.id()), true)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            e.to_string().contains(codec.name()) || codec == Compression::Snappy,
            "{e}"
        );
        // Above the limit.
        let e = RecordBatch::decode_bounded(data.clone(), true, 10).unwrap_err();
        assert!(
            matches!(
                e.kind,
                DecodeErrorKind::DecompressedTooLarge { limit: 10, .. }
            ),
            "{e}"
        );
        let e = decode_batches(data, true)
            .max_decompressed_size(10)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::DecompressedTooLarge { .. }),
            "{e}"
        );
    }
    for bits in 5..8i16 {
        let data = build(&recs);
        let e = RecordBatch::decode(with_attributes(&data, bits), true).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidValue(i64::from(bits)));
        assert_eq!(e.field, "record_batch.attributes.compression");
    }
    let h = BatchHeader {
        attributes: 5,
        ..BatchHeader::default()
    };
    assert!(encode_batch(&h, &[], &mut BytesMut::new()).is_err());
    // A level the codec refuses fails the build, not a panic.
    let mut b = RecordBatchBuilder::new(100).compression(Compression::Gzip, Some(42));
    b.try_push(recs[0].clone()).unwrap();
    assert!(b.build().is_err());
}

#[test]
fn old_magic_is_a_clear_error() {
    for magic in [0u8, 1, 3] {
        let mut data = BytesMut::from(&build(&sample())[..]);
        data[16] = magic;
        let e = decode_batches(data.freeze(), false)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.field, "record_batch.magic");
        assert_eq!(
            e.kind,
            DecodeErrorKind::UnsupportedVersion(i16::from(magic))
        );
    }
}

#[test]
fn log_append_time_uses_the_max_timestamp() {
    let data = with_attributes(&build(&sample()), ATTRIBUTE_LOG_APPEND_TIME);
    let batch = RecordBatch::decode(data, true).unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    for r in batch.records() {
        assert_eq!(r.unwrap().timestamp, batch.max_timestamp);
    }
}

#[test]
fn control_records_are_recognised() {
    let marker = ControlRecord {
        version: 0,
        kind: ControlRecordType::Commit,
    };
    let h = BatchHeader {
        base_offset: 10,
        attributes: ATTRIBUTE_CONTROL | ATTRIBUTE_TRANSACTIONAL,
        producer_id: 4,
        producer_epoch: 0,
        ..BatchHeader::default()
    };
    let rec = Record {
        offset: 10,
        key: Some(marker.encode_key()),
        // EndTransactionMarker value: version 0, coordinator epoch 3.
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 3])),
        ..Record::default()
    };
    let mut data = BytesMut::new();
    encode_batch(&h, &[rec], &mut data).unwrap();
    let batch = decode_batches(data.freeze(), true).next().unwrap().unwrap();
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(batch.control_record(), Some(Ok(marker)));
    assert_eq!(batch.next_offset(), 11);
}

/// Our decoder reads what kafka-protocol encodes, duplicate headers aside
/// (its encoder keeps one value per key).
#[test]
fn differential_kafka_protocol_encoder() {
    let recs: Vec<Record> = (0..5)
        .map(|i| Record {
            offset: i,
            timestamp: 1000 + i,
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: vec![header("h", Some("x")), header("n", None)],
        })
        .collect();
    let got = decode_all(their_encode(&recs));
    assert_eq!(got, recs);
}

/// kafka-protocol decodes what we encode.
#[test]
fn differential_kafka_protocol_decoder() {
    let recs = sample();
    let theirs = their_decode(build(&recs));
    assert_eq!(theirs.len(), 2);
    assert_eq!(theirs[0].key, recs[0].key);
    assert_eq!(theirs[1].value, None);
    assert_eq!(theirs[1].timestamp, recs[1].timestamp);
    // Its map keeps the last value of the duplicate key "h".
    let h: Vec<_> = theirs[0]
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(
        h,
        vec![
            ("h".to_string(), Some(Bytes::from_static(b"b"))),
            ("n".to_string(), None)
        ]
    );
}

fn their_encode(recs: &[Record]) -> Bytes {
    use kafka_protocol::records::{
        Compression as KCompression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTimestampType,
    };
    let theirs: Vec<KRecord> = recs
        .iter()
        .map(|r| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTimestampType::Creation,
            offset: r.offset,
            sequence: -1,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| {
                    (
                        kafka_protocol::protocol::StrBytes::from_string(h.key.to_string()),
                        h.value.clone(),
                    )
                })
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &theirs,
        &RecordEncodeOptions {
            version: 2,
            compression: KCompression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn their_decode(mut data: Bytes) -> Vec<kafka_protocol::records::Record> {
    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut data)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

/// What a map keyed by header name keeps of a header list: the last value
/// of each key, at the position of its first occurrence.
fn dedup_headers(headers: &[Header]) -> Vec<(String, Option<Bytes>)> {
    let mut out: Vec<(String, Option<Bytes>)> = Vec::new();
    for h in headers {
        match out.iter_mut().find(|(k, _)| **k == *h.key) {
            Some(slot) => slot.1 = h.value.clone(),
            None => out.push((h.key.to_string(), h.value.clone())),
        }
    }
    out
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn arb_headers() -> impl Strategy<Value = Vec<Header>> {
    // Few distinct keys, so duplicates are common; empty key included.
    proptest::collection::vec(
        ("[a-c_é]{0,3}", arb_bytes(10)).prop_map(|(key, value)| Header {
            key: key.into(),
            value,
        }),
        0..5,
    )
}

fn arb_record() -> impl Strategy<Value = Record> {
    (any::<i64>(), arb_bytes(40), arb_bytes(200), arb_headers()).prop_map(
        |(timestamp, key, value, headers)| Record {
            offset: 0,
            timestamp,
            key,
            value,
            headers,
        },
    )
}

/// Records with increasing offsets (gaps included, as after compaction)
/// and timestamps near a base.
fn arb_batch() -> impl Strategy<Value = (BatchHeader, Vec<Record>)> {
    (
        any::<i64>(),
        any::<i32>(),
        (
            prop_oneof![
                Just(0i16),
                Just(ATTRIBUTE_TRANSACTIONAL),
                Just(ATTRIBUTE_CONTROL),
            ],
            0..5i16,
        )
            .prop_map(|(bits, codec)| bits | codec),
        any::<i64>(),
        (any::<i64>(), any::<i16>(), any::<i32>()),
        proptest::collection::vec((0..1000i32, -100_000..100_000i64, arb_record()), 0..20),
    )
        .prop_map(
            |(base_offset, epoch, attributes, base_timestamp, producer, recs)| {
                let mut delta = 0i32;
                let records: Vec<Record> = recs
                    .into_iter()
                    .map(|(gap, ts, mut r)| {
                        delta += gap;
                        r.offset = base_offset.wrapping_add(i64::from(delta));
                        r.timestamp = base_timestamp.wrapping_add(ts);
                        r
                    })
                    .collect();
                let header = BatchHeader {
                    base_offset,
                    partition_leader_epoch: epoch,
                    attributes,
                    last_offset_delta: delta,
                    base_timestamp,
                    max_timestamp: records.iter().map(|r| r.timestamp).max().unwrap_or(-1),
                    producer_id: producer.0,
                    producer_epoch: producer.1,
                    base_sequence: producer.2,
                };
                (header, records)
            },
        )
}

proptest! {
    #[test]
    fn prop_builder_round_trip(recs in proptest::collection::vec(arb_record(), 1..30), codec in 0..5i16) {
        let codec = Compression::from_id(codec).unwrap();
        let mut b = RecordBatchBuilder::new(usize::MAX).compression(codec, None);
        for r in &recs {
            b.try_push(r.clone()).unwrap();
        }
        let data = b.build().unwrap();
        let batch = RecordBatch::decode(data, true).unwrap();
        prop_assert_eq!(batch.compression(), Some(codec));
        prop_assert_eq!(batch.record_count as usize, recs.len());
        prop_assert_eq!(batch.last_offset_delta as usize, recs.len() - 1);
        prop_assert_eq!(batch.base_timestamp, recs[0].timestamp);
        prop_assert_eq!(batch.max_timestamp, recs.iter().map(|r| r.timestamp).max().unwrap());
        let got: Vec<Record> = batch.records().map(Result::unwrap).collect();
        let want: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| Record { offset: i as i64, ..r.clone() })
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn prop_encode_batch_round_trip((header, recs) in arb_batch()) {
        let mut data = BytesMut::new();
        encode_batch(&header, &recs, &mut data).unwrap();
        let data = data.freeze();
        let batch = RecordBatch::decode(data.clone(), true).unwrap();
        prop_assert_eq!(batch.header(), header);
        let got: Vec<Record> = batch.records().map(Result::unwrap).collect();
        prop_assert_eq!(&got, &recs);
        // Re-encoding a decoded batch gives the same bytes, both ways
        // (compressed ones too: the same encoder at the same level).
        let mut again = BytesMut::new();
        batch.encode(&mut again).unwrap();
        prop_assert_eq!(&again[..], &data[..]);
        let mut again = BytesMut::new();
        encode_batch(&batch.header(), &got, &mut again).unwrap();
        prop_assert_eq!(&again[..], &data[..]);
    }

    #[test]
    fn prop_kafka_protocol_reads_ours((header, recs) in arb_batch()) {
        // Plain data batches only: kafka-protocol is built without its (C)
        // codecs here.
        prop_assume!(!recs.is_empty());
        let header = BatchHeader { attributes: 0, ..header };
        let mut data = BytesMut::new();
        encode_batch(&header, &recs, &mut data).unwrap();
        let theirs = their_decode(data.freeze());
        prop_assert_eq!(theirs.len(), recs.len());
        for (t, r) in theirs.iter().zip(&recs) {
            prop_assert_eq!(t.offset, r.offset);
            prop_assert_eq!(t.timestamp, r.timestamp);
            prop_assert_eq!(&t.key, &r.key);
            prop_assert_eq!(&t.value, &r.value);
            let th: Vec<_> = t.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            prop_assert_eq!(th, dedup_headers(&r.headers));
        }
    }

    #[test]
    fn prop_we_read_kafka_protocol(recs in proptest::collection::vec(arb_record(), 1..20)) {
        // Its encoder takes offsets and timestamps as given; keep offsets
        // increasing from 0 and timestamps in a sane range, and headers
        // without duplicates (its map could not carry them).
        let recs: Vec<Record> = recs
            .into_iter()
            .enumerate()
            .map(|(i, r)| Record {
                offset: i as i64,
                timestamp: r.timestamp.rem_euclid(1 << 42),
                headers: dedup_headers(&r.headers)
                    .into_iter()
                    .map(|(key, value)| Header { key: key.into(), value })
                    .collect(),
                ..r
            })
            .collect();
        prop_assert_eq!(decode_all(their_encode(&recs)), recs);
    }

    #[test]
    fn prop_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), crc: bool) {
        for b in decode_batches(Bytes::from(data), crc) {
            match b {
                Ok(b) => { for r in b.records() { let _ = r; } let _ = b.control_record(); }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn prop_mutated_batches_never_panic(
        (header, recs) in arb_batch(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut data = BytesMut::new();
        encode_batch(&header, &recs, &mut data).unwrap();
        if data.is_empty() { return Ok(()); }
        for (i, x) in flips {
            let i = i.index(data.len());
            data[i] ^= x;
        }
        let data = data.freeze();
        for b in decode_batches(data.clone(), false).flatten() {
            let _ = b.records().count();
        }
        let _ = RecordBatch::decode(data, false).map(|b| b.records().count());
    }

    /// Corruption inside the compressed payload that the CRC does not
    /// catch (the CRC is recomputed after the damage, as a buggy producer
    /// or broker would write it): bit flips, and a payload cut short with
    /// the batch length patched. Decoding with the CRC checked, at the
    /// default limit and at a small one, never panics: it is an error, or
    /// a batch whose records decode or fail one by one. Whatever decodes
    /// whole re-encodes to the same records.
    #[test]
    fn prop_corrupt_compressed_payload_never_panics(
        (header, recs) in arb_batch(),
        codec in 1..5i16,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate: bool,
        small_limit in 0usize..2048,
    ) {
        let header = BatchHeader {
            attributes: (header.attributes & !0x07) | codec,
            ..header
        };
        let mut data = BytesMut::new();
        encode_batch(&header, &recs, &mut data).unwrap();
        let payload = data.len() - RECORD_BATCH_OVERHEAD;
        prop_assume!(payload > 0);
        for (i, x) in flips {
            data[RECORD_BATCH_OVERHEAD + i.index(payload)] ^= x;
        }
        if truncate {
            data.truncate(RECORD_BATCH_OVERHEAD + cut.index(payload));
        }
        super::batch::finish_batch(&mut data, 0).unwrap();
        let data = data.freeze();
        for limit in [DEFAULT_MAX_DECOMPRESSED_SIZE, small_limit] {
            let Ok(batch) = RecordBatch::decode_bounded(data.clone(), true, limit) else {
                continue;
            };
            prop_assert_eq!(batch.compression(), Compression::from_id(codec));
            prop_assert!(batch.record_bytes().len() <= limit);
            let Ok(got) = batch.records().collect::<Result<Vec<Record>, _>>() else {
                continue;
            };
            let mut again = BytesMut::new();
            encode_batch(&batch.header(), &got, &mut again).unwrap();
            let again = RecordBatch::decode(again.freeze(), true).unwrap();
            prop_assert_eq!(again.records().collect::<Result<Vec<Record>, _>>().unwrap(), got);
        }
    }
}
