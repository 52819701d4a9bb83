//! The done ranges skotch writes into a commit's metadata string.
//!
//! Kafka stores one offset per partition: where the next reader starts. When
//! records finish out of order, that offset stops at the first unfinished
//! one, and everything done after it would be processed again after a
//! crash. OffsetCommit carries a free metadata string per partition
//! (`committed_metadata`, up to the broker's `offset.metadata.max.bytes`,
//! 4096 by default), so skotch records there which offsets beyond the
//! committed one are already done, and a skotch reader taking the partition
//! over skips them. Other clients ignore the string.
//!
//! Format: `skotch-done:1:` then comma-separated `gap+len` pairs, where each
//! range starts `gap` after the end of the previous one (the first after the
//! committed offset) and holds `len` offsets. Anything unreadable decodes to
//! no ranges: the worst case is processing a record twice, never skipping
//! one that was not done.

/// Prefix (and version) of the metadata string.
const PREFIX: &str = "skotch-done:1:";
/// Stay well under the broker's default `offset.metadata.max.bytes`.
pub const MAX_LEN: usize = 3_500;
/// Most ranges worth encoding (each takes at least 4 bytes).
pub const MAX_RANGES: usize = MAX_LEN / 4;

/// Encode `ranges` (sorted, half-open, all above `committed`); ranges that
/// do not fit in [`MAX_LEN`] are left out (they will just be processed
/// again). Empty when there are none.
pub fn encode(committed: i64, ranges: &[(i64, i64)]) -> String {
    if ranges.is_empty() {
        return String::new();
    }
    let mut out = String::from(PREFIX);
    let mut prev = committed;
    let mut first = true;
    for &(start, end) in ranges {
        if start <= prev || end <= start {
            break; // not sorted above `committed`: stop rather than lie
        }
        let item = format!("{}+{}", start - prev, end - start);
        if out.len() + item.len() + 1 > MAX_LEN {
            break;
        }
        if !first {
            out.push(',');
        }
        out.push_str(&item);
        first = false;
        prev = end;
    }
    if first {
        String::new()
    } else {
        out
    }
}

/// Decode the done ranges of a commit at `committed`; empty for any other
/// metadata (another client's, a newer format, garbage).
pub fn decode(committed: i64, metadata: &str) -> Vec<(i64, i64)> {
    let Some(body) = metadata.strip_prefix(PREFIX) else {
        return Vec::new();
    };
    if body.len() > MAX_LEN || committed < 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut prev = committed;
    for item in body.split(',') {
        let Some((gap, len)) = item.split_once('+') else {
            return Vec::new();
        };
        let (Ok(gap), Ok(len)) = (gap.parse::<i64>(), len.parse::<i64>()) else {
            return Vec::new();
        };
        if gap < 1 || len < 1 {
            return Vec::new();
        }
        let Some(start) = prev.checked_add(gap) else {
            return Vec::new();
        };
        let Some(end) = start.checked_add(len) else {
            return Vec::new();
        };
        out.push((start, end));
        prev = end;
    }
    out
}

/// True when `offset` lies in one of the sorted `ranges`.
pub fn contains(ranges: &[(i64, i64)], offset: i64) -> bool {
    let i = ranges.partition_point(|&(_, end)| end <= offset);
    ranges.get(i).is_some_and(|&(start, _)| start <= offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn example() {
        let s = encode(10, &[(11, 50), (51, 100)]);
        assert_eq!(s, "skotch-done:1:1+39,1+49");
        assert_eq!(decode(10, &s), vec![(11, 50), (51, 100)]);
        assert!(contains(&[(11, 50), (51, 100)], 11));
        assert!(!contains(&[(11, 50), (51, 100)], 50));
        assert!(contains(&[(11, 50), (51, 100)], 99));
        assert!(!contains(&[(11, 50), (51, 100)], 100));
        assert!(!contains(&[(11, 50)], 10));
        assert_eq!(encode(10, &[]), "");
    }

    #[test]
    fn foreign_or_broken_metadata_means_nothing_done() {
        for m in [
            "",
            "hello",
            "skotch-done:1:",
            "skotch-done:1:0+5",
            "skotch-done:1:1+0",
            "skotch-done:1:1+x",
            "skotch-done:1:9223372036854775807+9223372036854775807",
            "skotch-done:2:1+1",
            "skotch-done:1:-1+3",
        ] {
            assert!(decode(5, m).is_empty(), "{m}");
        }
    }

    #[test]
    fn long_lists_are_cut_not_overflowed() {
        let ranges: Vec<(i64, i64)> = (0..5_000).map(|i| (i * 3 + 1, i * 3 + 2)).collect();
        let s = encode(0, &ranges);
        assert!(s.len() <= MAX_LEN);
        let back = decode(0, &s);
        assert!(!back.is_empty());
        assert_eq!(back[..], ranges[..back.len()]);
    }

    proptest! {
        #[test]
        fn round_trip(committed in 0i64..1_000_000, steps in proptest::collection::vec((1i64..1000, 1i64..1000), 0..200)) {
            let mut ranges = Vec::new();
            let mut prev = committed;
            for (gap, len) in steps {
                ranges.push((prev + gap, prev + gap + len));
                prev += gap + len;
            }
            let s = encode(committed, &ranges);
            let back = decode(committed, &s);
            prop_assert_eq!(&back[..], &ranges[..back.len()]);
            prop_assert_eq!(back.len(), ranges.len());
        }

        #[test]
        fn decode_never_panics(committed in any::<i64>(), s in ".*") {
            let _ = decode(committed, &format!("skotch-done:1:{s}"));
        }
    }
}
