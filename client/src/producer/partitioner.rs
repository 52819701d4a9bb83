//! Choosing a partition for a record, the way the Java client does, so that
//! records with the same key land on the same partition whichever client
//! wrote them.
//!
//! - Keyed records: `toPositive(murmur2(key)) % partitions` (Java's
//!   `BuiltInPartitioner.partitionForKey`, `Utils.murmur2`).
//! - Records without a key: sticky partitioning (KIP-480, KIP-794): stay on
//!   one partition until `batch.size` bytes went to it, then move to another
//!   one at random, preferring partitions that have a leader.
//!
//! Pure: randomness is passed in.

/// Java's `Utils.murmur2`: MurmurHash2, 32-bit, seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if let Some(&b) = tail.get(2) {
            h ^= u32::from(b) << 16;
        }
        if let Some(&b) = tail.get(1) {
            h ^= u32::from(b) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client picks for `key` among `partitions`
/// (must be > 0).
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Sticky partition choice for one topic's records without a key
/// (KIP-794's uniform sticky partitioner): one partition receives records
/// until `batch_size` bytes have gone to it, then another is chosen.
#[derive(Debug, Clone, Default)]
pub struct StickyPartitioner {
    /// Current partition and bytes produced to it since the switch.
    current: Option<(i32, usize)>,
}

impl StickyPartitioner {
    /// The partition for an unkeyed record of `size` bytes to a topic of
    /// `partitions` partitions. `available` lists partitions with a known
    /// leader (may be empty: then any of `0..partitions`); `random` gives
    /// a random number, asked for only when switching.
    pub fn partition(
        &mut self,
        partitions: i32,
        available: &[i32],
        size: usize,
        batch_size: usize,
        random: impl FnOnce() -> u32,
    ) -> i32 {
        let (p, produced) = match self.current {
            Some((p, produced)) if produced < batch_size && p < partitions => (p, produced),
            prev => (
                Self::choose(partitions, available, prev.map(|(p, _)| p), random()),
                0,
            ),
        };
        self.current = Some((p, produced.saturating_add(size)));
        p
    }

    fn choose(partitions: i32, available: &[i32], previous: Option<i32>, random: u32) -> i32 {
        let pick = |n: usize| -> usize { (random as usize) % n.max(1) };
        if available.len() > 1 {
            // Move away from the previous partition when there is a choice,
            // without building a list: pick among the others by index.
            let skip = previous.and_then(|p| available.iter().position(|&a| a == p));
            let n = available.len() - usize::from(skip.is_some());
            let mut i = pick(n);
            if skip.is_some_and(|s| i >= s) {
                i += 1;
            }
            available.get(i).copied().unwrap_or(available[0])
        } else if let Some(&p) = available.first() {
            p
        } else {
            let n = partitions.max(1);
            let mut p = (random % n as u32) as i32;
            if Some(p) == previous && n > 1 {
                p = (p + 1) % n;
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_java() {
        let cases: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (s, want) in cases {
            assert_eq!(murmur2(s.as_bytes()), *want, "{s}");
        }
    }

    #[test]
    fn sticky_switches_after_batch_size() {
        let avail = [0, 1, 2];
        for seed in 0..12 {
            let mut s = StickyPartitioner::default();
            let p = s.partition(3, &avail, 10, 25, || seed);
            assert_eq!(s.partition(3, &avail, 10, 25, || 8), p);
            assert_eq!(s.partition(3, &avail, 10, 25, || 9), p);
            // 30 bytes >= 25: next record moves elsewhere.
            let q = s.partition(3, &avail, 10, 25, || seed + 1);
            assert_ne!(q, p);
            assert!(avail.contains(&q));
        }
    }

    #[test]
    fn sticky_with_no_leaders_known() {
        let mut s = StickyPartitioner::default();
        let p = s.partition(4, &[], 1, 1, || 6);
        assert!((0..4).contains(&p));
    }
}
