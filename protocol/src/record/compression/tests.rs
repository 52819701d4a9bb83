//! Codec round trips, what Java's framing looks like on the wire, and
//! hostile input: corrupt data and data that claims or inflates beyond the
//! limit.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Highly compressible input of `n` bytes.
fn text(n: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog "
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

#[test]
fn ids_names_and_parsing() {
    for id in 0..5 {
        let c = Compression::from_id(id).unwrap();
        assert_eq!(c.id(), id);
        assert_eq!(c.name().parse::<Compression>(), Ok(c));
    }
    assert_eq!(Compression::from_id(5), None);
    assert_eq!(Compression::from_attributes(0x7f3), Some(Compression::Lz4));
    assert_eq!(Compression::Zstd.to_string(), "zstd");
    assert_eq!("LZ4".parse::<Compression>(), Ok(Compression::Lz4));
    let e = "brotli".parse::<Compression>().unwrap_err();
    assert!(e.to_string().contains("brotli"), "{e}");
    let e = compression_of(6).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::InvalidValue(6));
}

#[test]
fn levels() {
    use Compression::*;
    for (c, ok, bad) in [
        (Gzip, vec![-1, 1, 9], vec![0, 10]),
        (Lz4, vec![1, 17], vec![0, 18]),
        (Zstd, vec![-131_072, 0, 22], vec![-131_073, 23]),
        (Snappy, vec![], vec![0, 1]),
        (None, vec![], vec![0]),
    ] {
        assert_eq!(c.check_level(Option::None), Ok(()));
        for l in ok {
            assert_eq!(c.check_level(Some(l)), Ok(()), "{c} {l}");
            // Every accepted level compresses, without panicking (ruzstd
            // implements only some levels).
            let data = text(10_000);
            let z = compress(c, Some(l), &data).unwrap();
            assert_eq!(
                &decompress(c, Bytes::from(z), 10_000).unwrap()[..],
                &data[..]
            );
        }
        for l in bad {
            let e = c.check_level(Some(l)).unwrap_err();
            assert!(e.to_string().contains(&l.to_string()), "{e}");
            assert!(compress(c, Some(l), b"x").is_err());
        }
    }
    let e = Gzip.check_level(Some(12)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "compression.gzip.level must be between 1 and 9, not 12"
    );
}

#[test]
fn round_trips_of_every_codec() {
    for c in CODECS {
        for n in [0, 1, 100, 64 * 1024, 64 * 1024 + 1, 300_000] {
            let data = text(n);
            let z = compress(c, None, &data).unwrap();
            if n >= 1000 {
                assert!(z.len() < data.len() / 2, "{c} {n}: {}", z.len());
            }
            let back = decompress(c, Bytes::from(z), n).unwrap();
            assert_eq!(back.len(), n, "{c}");
            assert!(back[..] == data[..], "{c} {n}");
        }
    }
    let none = decompress(Compression::None, Bytes::from_static(b"abc"), 0).unwrap();
    assert_eq!(&none[..], b"abc");
}

#[test]
fn java_framing_on_the_wire() {
    let data = text(200_000);
    // snappy: xerial header, version 1, compatible 1, then 32 KiB chunks.
    let z = compress(Compression::Snappy, None, &data).unwrap();
    assert_eq!(&z[..16], b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01");
    // lz4: frame magic, FLG = version 01 + block independence, no
    // checksums, no content size; BD = 64 KB blocks.
    let z = compress(Compression::Lz4, None, &data).unwrap();
    assert_eq!(&z[..4], &[0x04, 0x22, 0x4d, 0x18]);
    assert_eq!(z[4], 0b0110_0000);
    assert_eq!(z[5], 0x40);
    // gzip magic; zstd frame magic.
    assert_eq!(
        &compress(Compression::Gzip, None, &data).unwrap()[..2],
        &[0x1f, 0x8b]
    );
    assert_eq!(
        &compress(Compression::Zstd, None, &data).unwrap()[..4],
        &[0x28, 0xb5, 0x2f, 0xfd]
    );
}

#[test]
fn raw_snappy_and_concatenated_frames_decode() {
    let data = text(5000);
    let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
    assert_eq!(
        &decompress(Compression::Snappy, Bytes::from(raw), 5000).unwrap()[..],
        &data[..]
    );
    for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        let mut two = compress(c, None, &data[..2000]).unwrap();
        two.extend(compress(c, None, &data[2000..]).unwrap());
        let back = decompress(c, Bytes::from(two), 5000).unwrap();
        assert!(back[..] == data[..], "{c}: {} bytes", back.len());
    }
}

#[test]
fn zstd_skippable_frames_are_passed_over() {
    let data = text(3000);
    let mut z = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
    z.extend(compress(Compression::Zstd, None, &data).unwrap());
    let back = decompress(Compression::Zstd, Bytes::from(z), 3000).unwrap();
    assert_eq!(&back[..], &data[..]);
}

#[test]
fn zstd_frames_are_checked_as_libzstd_checks_them() {
    let data = text(3000);
    let good = compress(Compression::Zstd, None, &data).unwrap();
    // ruzstd's encoder writes a content checksum (descriptor bit 2).
    assert_ne!(good[4] & 0x04, 0, "descriptor {:#04x}", good[4]);
    let reason = |z: Vec<u8>| match decompress(Compression::Zstd, Bytes::from(z), 1 << 20) {
        Err(DecodeError {
            kind: DecodeErrorKind::Decompression { reason, .. },
            ..
        }) => reason,
        other => panic!("expected a zstd error, got {other:?}"),
    };

    // A content checksum that does not match the content.
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 0xff;
    assert!(reason(bad).contains("checksum"));

    // The reserved bit of the frame header descriptor.
    let mut bad = good.clone();
    bad[4] |= 0x08;
    assert!(reason(bad).contains("reserved"));

    // Found by fuzzing: a frame declaring 256 bytes of content (2-byte
    // Frame_Content_Size 0 = 256) whose three raw blocks are empty.
    let frame = vec![
        0x28, 0xb5, 0x2f, 0xfd, // magic
        0x40, // descriptor: 2-byte content size, window descriptor follows
        0x00, // window: 1 KiB
        0x00, 0x00, // content size 0 + 256
        0x00, 0x00, 0x00, // raw block, 0 bytes
        0x00, 0x00, 0x00, // raw block, 0 bytes
        0x01, 0x00, 0x00, // last block: raw, 0 bytes
    ];
    assert!(reason(frame.clone()).contains("declares 256 bytes"));
    // The same frame declaring 0 bytes (1-byte content size in a
    // single-segment frame) is a valid empty frame.
    let mut empty = frame[..5].to_vec();
    empty[4] = 0x20;
    empty.push(0x00);
    empty.extend_from_slice(&frame[8..]);
    assert_eq!(
        decompress(Compression::Zstd, Bytes::from(empty), 0).unwrap(),
        Bytes::new()
    );
}

#[test]
fn lz4_frames_cut_short_or_legacy_are_errors() {
    // Several 64 KB blocks, so there are block boundaries to cut at.
    let data: Vec<u8> = b"0123456789abcdef"
        .iter()
        .copied()
        .cycle()
        .take(200_000)
        .collect();
    let good = compress(Compression::Lz4, None, &data).unwrap();
    // Every strict prefix is an error: after the magic, after the frame
    // descriptor, at each block boundary, before the EndMark's last byte.
    for cut in 1..good.len() {
        let e = decompress(
            Compression::Lz4,
            Bytes::copy_from_slice(&good[..cut]),
            1 << 20,
        )
        .unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::Decompression { .. }),
            "cut at {cut}: {e}"
        );
    }
    // A legacy frame (magic 0x184C2102) is not read.
    let mut legacy = vec![0x02, 0x21, 0x4c, 0x18];
    legacy.extend(&good[4..]);
    let e = decompress(Compression::Lz4, Bytes::from(legacy), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
}

#[test]
fn output_above_the_limit_is_an_error() {
    let data = text(100_000);
    for c in CODECS {
        let z = Bytes::from(compress(c, None, &data).unwrap());
        assert!(decompress(c, z.clone(), 100_000).is_ok());
        let e = decompress(c, z, 99_999).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::DecompressedTooLarge {
                codec: c.name(),
                limit: 99_999
            },
            "{c}"
        );
    }
}

#[test]
fn claims_above_the_limit_are_refused_before_inflating() {
    // A raw snappy block whose varint header claims 4 GiB.
    let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    let e = decompress(Compression::Snappy, Bytes::copy_from_slice(&claim), 1 << 20).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::DecompressedTooLarge { .. }),
        "{e}"
    );
    // A zstd frame with a 1 KiB window declaring 1 GB of content.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x00];
    frame.extend(1_000_000_000u64.to_le_bytes());
    let e = decompress(Compression::Zstd, Bytes::from(frame), 1 << 20).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::DecompressedTooLarge { .. }),
        "{e}"
    );
    // A zstd frame asking for a 2 GiB window (window descriptor 0x88:
    // exponent 17 + 10 = 2^31) is refused, not allocated.
    let frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0, 0, 0];
    let e = decompress(Compression::Zstd, Bytes::from(frame), 1 << 20).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::Decompression { .. }),
        "{e}"
    );
    // An xerial chunk claiming more bytes than follow.
    let mut x = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    x.extend(u32::MAX.to_be_bytes());
    let e = decompress(Compression::Snappy, Bytes::from(x), 1 << 20).unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::Decompression { .. }),
        "{e}"
    );
}

#[test]
fn corrupt_data_is_an_error_naming_the_codec() {
    let data = text(10_000);
    for c in CODECS {
        let good = compress(c, None, &data).unwrap();
        for bad in [
            Vec::new(),
            b"garbage garbage garbage".to_vec(),
            good[..good.len() / 2].to_vec(),
        ] {
            if let Err(e) = decompress(c, Bytes::from(bad), 1 << 20) {
                assert!(e.to_string().contains(c.name()), "{e}");
            } else {
                // Raw snappy may accept a short, valid-looking block; it
                // must then at least not have produced the original.
                assert_eq!(c, Compression::Snappy);
            }
        }
    }
}

proptest! {
    #[test]
    fn any_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..20_000), c in 0usize..4) {
        let c = CODECS[c];
        let z = compress(c, None, &data).unwrap();
        let back = decompress(c, Bytes::from(z), data.len()).unwrap();
        prop_assert_eq!(&back[..], &data[..]);
    }

    #[test]
    fn hostile_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), c in 0usize..4) {
        let _ = decompress(CODECS[c], Bytes::from(data), 1 << 16);
    }
}
