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

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use foldhash::HashMap;

use crate::Labels;
use crate::labels::pairs_hash;

const SHARDS: usize = 16;

/// Shared label sets, by [`Labels::series_hash`] (see the module docs).
pub struct LabelInterner {
    /// Hash → the sets with that hash (almost always one).
    shards: [RwLock<HashMap<u64, Vec<Labels>>>; SHARDS],
}

impl Default for LabelInterner {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::default()),
        }
    }
}

impl LabelInterner {
    fn shard(&self, hash: u64) -> &RwLock<HashMap<u64, Vec<Labels>>> {
        // The top bits: the map inside the shard uses the low ones.
        &self.shards[(hash >> 60) as usize % SHARDS]
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
        labels
    }

    /// Drops the sets nobody but the interner holds; returns how many are left.
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
        left
    }

    /// How many sets it holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
