//! A split-free bloom filter over 64-bit hashes, sized per block.
//!
//! Bits are stored little-endian in `u64` words; `k` probes come from double hashing the
//! two 32-bit halves of one xxh3 hash, so a key is hashed once whatever `k` is. With 10 bits
//! per distinct key and k = 7 the false-positive rate is about 1%.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Bits per distinct key.
const BITS_PER_KEY: usize = 10;
/// Probes per key.
const PROBES: u32 = 7;
/// Largest filter, in bits (1 MiB); more keys than this holds only raise the false-positive rate.
const BITS_MAX: usize = 8 << 20;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bloom {
    words: Vec<u64>,
}

/// The hash a bloom filter is built from.
pub fn hash_key(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// The hash of a structured-metadata or label pair `name=value`: xxh3-64 of the value,
/// seeded with xxh3-64 of the name (no buffer to join them).
pub fn hash_pair(name: &str, value: &str) -> u64 {
    hash_pair_seeded(pair_seed(name), value)
}

/// The seed of [`hash_pair`] for a name, to hash many values of one name.
pub fn pair_seed(name: &str) -> u64 {
    xxh3_64(name.as_bytes())
}

/// [`hash_pair`] with the name's seed already computed.
pub fn hash_pair_seeded(seed: u64, value: impl AsRef<[u8]>) -> u64 {
    xxh3_64_with_seed(value.as_ref(), seed)
}

impl Bloom {
    /// A filter holding exactly `hashes` (which should be distinct).
    pub fn from_hashes(hashes: &[u64]) -> Self {
        Self::sized_for(hashes, hashes.len())
    }

    /// A filter holding `hashes`, repeats and all, sized for `distinct` keys (see
    /// [`distinct_estimate`]): repeats set the same bits again.
    pub fn sized_for(hashes: &[u64], distinct: usize) -> Self {
        let bits = (distinct * BITS_PER_KEY)
            .clamp(64, BITS_MAX)
            .next_power_of_two();
        let mut words = vec![0u64; bits / 64];
        for &h in hashes {
            for bit in probes(h, bits) {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        Self { words }
    }

    /// Whether the hash may have been added (false: certainly not).
    pub fn may_contain(&self, h: u64) -> bool {
        let bits = self.words.len() * 64;
        if bits == 0 {
            return true;
        }
        probes(h, bits).all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }

    pub fn size_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// Bits of the map [`distinct_estimate`] counts with (128 KiB).
const ESTIMATE_BITS: usize = 1 << 20;

/// How many distinct values `hashes` holds, by linear counting: each hash sets one bit of a
/// 2^20-bit map, and `m · ln(m / zero bits)` estimates the count. Within about 1% while
/// the count stays below a few million, which is all a block holds; far cheaper than sorting
/// to count exactly. A saturated map (no zero bit) gives `hashes.len()`, an upper bound.
pub fn distinct_estimate(hashes: &[u64]) -> usize {
    let mut map = vec![0u64; ESTIMATE_BITS / 64];
    for &h in hashes {
        // The high bits: `probes` uses the low ones, and xxh3 mixes all of them.
        let bit = (h >> 44) as usize;
        map[bit / 64] |= 1 << (bit % 64);
    }
    let zeros: u32 = map.iter().map(|w| w.count_zeros()).sum();
    if zeros == 0 {
        return hashes.len();
    }
    let m = ESTIMATE_BITS as f64;
    let estimate = (m * (m / f64::from(zeros)).ln()).round() as usize;
    estimate.min(hashes.len())
}

fn probes(h: u64, bits: usize) -> impl Iterator<Item = usize> {
    let h1 = h as u32;
    let h2 = (h >> 32) as u32 | 1;
    let mask = bits - 1; // bits is a power of two
    (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) as usize) & mask)
}

/// Splits a line into the tokens the bloom filter indexes: maximal runs of ASCII
/// alphanumerics or non-ASCII bytes, at least 2 bytes long.
pub fn tokens(line: &(impl AsRef<[u8]> + ?Sized)) -> impl Iterator<Item = &[u8]> {
    line.as_ref()
        .split(|b| b.is_ascii() && !b.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 2)
}

/// The tokens of a substring needle that are certainly whole tokens of any line containing
/// it: those bounded by separators inside the needle on both sides. The first and last run
/// may be parts of longer tokens in the line, so they are left out.
pub fn needle_tokens(needle: &str) -> Vec<&[u8]> {
    let runs: Vec<&[u8]> = needle
        .as_bytes()
        .split(|b| b.is_ascii() && !b.is_ascii_alphanumeric())
        .collect();
    if runs.len() < 3 {
        return Vec::new();
    }
    runs[1..runs.len() - 1]
        .iter()
        .copied()
        .filter(|t| t.len() >= 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_added_and_rejects_most_else() {
        let keys: Vec<u64> = (0..1000u32).map(|i| hash_key(&i.to_le_bytes())).collect();
        let b = Bloom::from_hashes(&keys);
        assert!(keys.iter().all(|&h| b.may_contain(h)));
        let false_pos = (1000..11000u32)
            .filter(|i| b.may_contain(hash_key(&i.to_le_bytes())))
            .count();
        assert!(false_pos < 300, "false positives {false_pos} of 10000");
    }

    #[test]
    fn distinct_estimate_is_close_and_ignores_repeats() {
        for n in [0u32, 1, 100, 10_000, 200_000, 1_000_000] {
            let keys: Vec<u64> = (0..n).map(|i| hash_key(&i.to_le_bytes())).collect();
            let repeated: Vec<u64> = keys.iter().chain(&keys).chain(&keys).copied().collect();
            let est = distinct_estimate(&repeated);
            let err = (est as f64 - f64::from(n)).abs() / f64::from(n.max(1));
            assert!(err < 0.02, "{n} distinct keys estimated as {est}");
        }
    }

    #[test]
    fn needle_tokens_are_only_interior_runs() {
        assert_eq!(
            needle_tokens("User login successful"),
            vec![b"login".as_slice()]
        );
        assert!(needle_tokens("timeout").is_empty());
        assert_eq!(
            needle_tokens(" a1b2 "),
            vec![b"a1b2".as_slice()],
            "leading and trailing separators make the run whole"
        );
        let t: Vec<&[u8]> = tokens("GET /api/users/42 200 ok").collect();
        assert_eq!(
            t,
            vec![b"GET".as_slice(), b"api", b"users", b"42", b"200", b"ok"]
        );
    }
}
