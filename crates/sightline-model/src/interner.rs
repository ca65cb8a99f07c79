//! One shared copy of every series' label set.
//!
//! A remote-write sender repeats each series' labels in every request: for a host's CPU
//! gauge, some 200 bytes of names and values per sample. Decoding them into new strings,
//! checking them, hashing them again in the head and freeing them was most of the cost of
//! ingest. The interner lets a decoder find a set it has seen before from the borrowed
//! pairs of the request ([`LabelInterner::get`]) and hand out the shared [`Labels`]: no
//! allocation, no copy, and the same pairs serve the head, the WAL batch and the segments.
//!
//! Invariants:
//! - the interner holds at most one set per distinct label set, found by
//!   [`Labels::series_hash`];
//! - only valid series label sets go in (the rules of `sightline_ingest::metrics_common`:
//!   a metric name, valid label names, each once, non-empty values, within the limits), so
//!   a set found here needs no checking again;
//! - a set stays while anyone else holds it; [`LabelInterner::prune`], run after every
//!   metrics flush, drops those only the interner still holds.
//!
//! It is sharded by hash so that decoders on every core look sets up without waiting on
//! one lock; lookups take a shard's read lock, and only a new set takes its write lock.
//!
//! **Encoded label sets.** A sender encodes a series' labels the same way every time, so a
//! decoder can also look a set up by the exact bytes that carried it
//! ([`LabelInterner::get_encoded`]) and skip parsing, UTF-8 checks and hashing the pairs.
//! Those bytes must decode to the set, and to nothing else, in the format the decoder
//! reads (the caller's promise). They hold their set weakly: once pruned from the sets, an
//! encoding finds nothing and is dropped at the next prune. There are at most
//! [`ENCODED_PER_SET`] times as many encodings as sets (plus [`ENCODED_SLACK`]), so a
//! sender that shuffles its labels cannot grow them without bound; past that, decoders
//! take the slower path by pairs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use foldhash::HashMap;

use crate::labels::pairs_hash;
use crate::{Labels, WeakLabels};

const SHARDS: usize = 16;

/// Encodings kept per set, on average, at most.
pub const ENCODED_PER_SET: usize = 2;
/// Encodings kept beyond [`ENCODED_PER_SET`] per set.
pub const ENCODED_SLACK: usize = 1024;

type Shard<V> = RwLock<HashMap<u64, Vec<V>>>;

/// Shared label sets, by [`Labels::series_hash`] (see the module docs).
pub struct LabelInterner {
    /// Hash → the sets with that hash (almost always one).
    shards: [Shard<Labels>; SHARDS],
    /// Hash of the encoded bytes → the bytes and the set they carry.
    encoded: [Shard<(Box<[u8]>, WeakLabels)>; SHARDS],
    sets: AtomicUsize,
    encodings: AtomicUsize,
}

impl Default for LabelInterner {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::default()),
            encoded: std::array::from_fn(|_| RwLock::default()),
            sets: AtomicUsize::new(0),
            encodings: AtomicUsize::new(0),
        }
    }
}

/// The hash [`LabelInterner::get_encoded`] takes.
pub fn encoded_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0xe4c0).hash_one(bytes)
}

fn shard_of(hash: u64) -> usize {
    // The top bits: the map inside the shard uses the low ones.
    (hash >> 60) as usize % SHARDS
}

impl LabelInterner {
    fn shard(&self, hash: u64) -> &Shard<Labels> {
        &self.shards[shard_of(hash)]
    }

    fn read(&self, hash: u64) -> RwLockReadGuard<'_, HashMap<u64, Vec<Labels>>> {
        self.shard(hash).read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, hash: u64) -> RwLockWriteGuard<'_, HashMap<u64, Vec<Labels>>> {
        self.shard(hash).write().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared set whose sorted pairs are exactly `pairs`, if there is one; `hash` is
    /// [`pairs_hash`] of `pairs`.
    pub fn get(&self, hash: u64, pairs: &[(&str, &str)]) -> Option<Labels> {
        debug_assert_eq!(hash, pairs_hash(pairs));
        self.read(hash)
            .get(&hash)?
            .iter()
            .find(|l| l.eq_pairs(pairs))
            .cloned()
    }

    /// The shared set equal to `labels`: the one held already, or `labels` itself, which
    /// is held from now on. `labels` must be a valid series label set.
    pub fn intern(&self, labels: Labels) -> Labels {
        let hash = labels.series_hash();
        if let Some(found) = self
            .read(hash)
            .get(&hash)
            .and_then(|sets| sets.iter().find(|l| **l == labels))
        {
            return found.clone();
        }
        let mut shard = self.write(hash);
        let sets = shard.entry(hash).or_default();
        // Another thread may have put it in between the two locks.
        if let Some(found) = sets.iter().find(|l| **l == labels) {
            return found.clone();
        }
        sets.push(labels.clone());
        self.sets.fetch_add(1, Ordering::Relaxed);
        labels
    }

    /// The set that `bytes` carried when [`LabelInterner::remember_encoded`] was told so;
    /// `hash` is [`encoded_hash`] of `bytes`.
    pub fn get_encoded(&self, hash: u64, bytes: &[u8]) -> Option<Labels> {
        let shard = self.encoded[shard_of(hash)]
            .read()
            .unwrap_or_else(|p| p.into_inner());
        shard
            .get(&hash)?
            .iter()
            .find(|(b, _)| **b == *bytes)?
            .1
            .upgrade()
    }

    /// Remembers that `bytes` (hashed to `hash` by [`encoded_hash`]) carry `labels`, a set
    /// this interner holds, unless the interner holds as many encodings as it keeps.
    pub fn remember_encoded(&self, hash: u64, bytes: &[u8], labels: &Labels) {
        let limit = self.sets.load(Ordering::Relaxed) * ENCODED_PER_SET + ENCODED_SLACK;
        if self.encodings.load(Ordering::Relaxed) >= limit {
            return;
        }
        let mut shard = self.encoded[shard_of(hash)]
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let entries = shard.entry(hash).or_default();
        if let Some(e) = entries.iter_mut().find(|(b, _)| **b == *bytes) {
            e.1 = labels.downgrade();
            return;
        }
        entries.push((bytes.into(), labels.downgrade()));
        self.encodings.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops the sets nobody but the interner holds, and the encodings of sets that are
    /// gone; returns how many sets are left.
    pub fn prune(&self) -> usize {
        let mut left = 0;
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, sets| {
                sets.retain(|l| l.share_count() > 1);
                left += sets.len();
                !sets.is_empty()
            });
        }
        self.sets.store(left, Ordering::Relaxed);
        let mut encodings = 0;
        for shard in &self.encoded {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, entries| {
                entries.retain(|(_, l)| !l.is_dead());
                encodings += entries.len();
                !entries.is_empty()
            });
        }
        self.encodings.store(encodings, Ordering::Relaxed);
        left
    }

    /// How many sets it holds (exact unless a set is interned while a prune runs; it only
    /// sizes the bound on encodings).
    pub fn len(&self) -> usize {
        self.sets.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many encodings it holds.
    pub fn encodings(&self) -> usize {
        self.encodings.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shared_set_per_label_set_until_pruned() {
        let interner = LabelInterner::default();
        let a = interner.intern(Labels::from_pairs([("__name__", "up"), ("job", "a")]));
        let again = interner.intern(Labels::from_pairs([("job", "a"), ("__name__", "up")]));
        assert!(a.ptr_eq(&again));
        let owned = a.clone().into_pairs();
        let pairs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let found = interner.get(pairs_hash(&pairs), &pairs).expect("found");
        assert!(found.ptr_eq(&a));
        let other = [("__name__", "up"), ("job", "b")];
        assert!(interner.get(pairs_hash(&other), &other).is_none());
        let b = interner.intern(Labels::from_pairs(other));
        assert_eq!(interner.len(), 2);
        drop((again, found));
        assert_eq!(interner.prune(), 2, "both are still held");
        drop(a);
        assert_eq!(interner.prune(), 1);
        assert!(interner.get(pairs_hash(&pairs), &pairs).is_none());
        assert!(interner.get(pairs_hash(&other), &other).is_some());
        drop(b);
        assert_eq!(interner.prune(), 0);
        assert!(interner.is_empty());
    }

    #[test]
    fn encodings_find_their_set_until_it_is_pruned_and_are_bounded() {
        let interner = LabelInterner::default();
        let a = interner.intern(Labels::from_pairs([("__name__", "up")]));
        let bytes = b"encoded a";
        let h = encoded_hash(bytes);
        assert!(interner.get_encoded(h, bytes).is_none());
        interner.remember_encoded(h, bytes, &a);
        assert!(interner.get_encoded(h, bytes).expect("found").ptr_eq(&a));
        assert!(interner.get_encoded(h, b"encoded b").is_none());
        assert_eq!(interner.encodings(), 1);
        drop(a);
        assert_eq!(interner.prune(), 0);
        assert!(interner.get_encoded(h, bytes).is_none());
        assert_eq!(interner.encodings(), 0);
        // One set, and many encodings of it: only so many are kept.
        let b = interner.intern(Labels::from_pairs([("__name__", "b")]));
        for i in 0..5000u32 {
            let bytes = i.to_le_bytes();
            interner.remember_encoded(encoded_hash(&bytes), &bytes, &b);
        }
        assert_eq!(interner.encodings(), ENCODED_PER_SET + ENCODED_SLACK);
        let first = 0u32.to_le_bytes();
        assert!(interner.get_encoded(encoded_hash(&first), &first).is_some());
    }

    #[test]
    fn many_sets_each_found_by_its_pairs() {
        let interner = LabelInterner::default();
        let sets: Vec<Labels> = (0..1000)
            .map(|i| {
                interner.intern(Labels::from_pairs([
                    ("__name__", "m"),
                    ("i", &*i.to_string()),
                ]))
            })
            .collect();
        assert_eq!(interner.len(), 1000);
        for (i, l) in sets.iter().enumerate() {
            let v = i.to_string();
            let pairs = [("__name__", "m"), ("i", v.as_str())];
            assert!(
                interner
                    .get(pairs_hash(&pairs), &pairs)
                    .expect("found")
                    .ptr_eq(l)
            );
        }
    }
}
