//! Immutable segment files, one format per signal, written once through object storage.
//!
//! A segment holds the records of one tenant for one day partition, flushed from the head or
//! merged by compaction. Its name says what it covers (see [`SegmentId`]) so the catalog is
//! rebuilt by listing, with no manifest to keep in step.

pub mod bloom;
pub mod logs;

use object_store::path::Path as ObjectPath;

use sightline_model::{NANOS_PER_SECOND, TenantId};

/// Seconds in a day partition.
pub const PARTITION_SECONDS: i64 = 86_400;

/// The day partition (days since the epoch) a timestamp falls in.
pub fn partition_of(ts_ns: i64) -> i64 {
    ts_ns.div_euclid(PARTITION_SECONDS * NANOS_PER_SECOND)
}

/// What a segment's object path says: `{signal}/{tenant}/{day}/{seq_lo:020}-{seq_hi:020}.seg`.
///
/// `seq_lo..=seq_hi` are the WAL sequences whose records it holds: a flush of WAL file `n`
/// writes `n-n`; compaction of `a-b` and `c-d` writes `min-max`. A segment whose range lies
/// inside another's is left over from a compaction that crashed before deleting its inputs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId {
    pub signal: &'static str,
    pub tenant: TenantId,
    pub day: i64,
    pub seq_lo: u64,
    pub seq_hi: u64,
}

impl SegmentId {
    pub fn path(&self) -> ObjectPath {
        ObjectPath::from(format!(
            "{}/{}/{}/{:020}-{:020}.seg",
            self.signal, self.tenant, self.day, self.seq_lo, self.seq_hi
        ))
    }

    /// Parses a path this module wrote; anything else is `None` (and left alone).
    pub fn parse(signal: &'static str, path: &ObjectPath) -> Option<Self> {
        let mut parts = path.parts();
        if parts.next()?.as_ref() != signal {
            return None;
        }
        let tenant = TenantId::new(parts.next()?.as_ref()).ok()?;
        let day = parts.next()?.as_ref().parse().ok()?;
        let file = parts.next()?;
        let (lo, hi) = file.as_ref().strip_suffix(".seg")?.split_once('-')?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            signal,
            tenant,
            day,
            seq_lo: lo.parse().ok()?,
            seq_hi: hi.parse().ok()?,
        })
    }

    /// Whether this segment's WAL range lies within `other`'s (and they differ).
    pub fn is_covered_by(&self, other: &SegmentId) -> bool {
        self != other
            && self.tenant == other.tenant
            && self.day == other.day
            && other.seq_lo <= self.seq_lo
            && self.seq_hi <= other.seq_hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_ids_round_trip_through_paths() {
        let id = SegmentId {
            signal: "logs",
            tenant: TenantId::new("team-a").expect("tenant"),
            day: 20_000,
            seq_lo: 3,
            seq_hi: 9,
        };
        assert_eq!(
            id.path().as_ref(),
            "logs/team-a/20000/00000000000000000003-00000000000000000009.seg"
        );
        assert_eq!(SegmentId::parse("logs", &id.path()), Some(id.clone()));
        assert_eq!(SegmentId::parse("traces", &id.path()), None);
        let inner = SegmentId {
            seq_lo: 4,
            seq_hi: 4,
            ..id.clone()
        };
        assert!(inner.is_covered_by(&id));
        assert!(!id.is_covered_by(&id));
        assert_eq!(partition_of(-1), -1);
    }
}
