//! Immutable segment files, one format per signal, written once through object storage.
//!
//! A segment holds the records of one tenant for one day partition, flushed from the head or
//! merged by compaction. Its name says what it covers (see [`SegmentId`]) so the catalog is
//! rebuilt by listing, with no manifest to keep in step.

pub mod bloom;
pub mod logs;
pub mod metrics;
pub mod traces;

use object_store::path::Path as ObjectPath;

use sightline_model::{NANOS_PER_SECOND, TenantId};

use crate::StoreError;
use crate::codec;

/// The segments of `signal` found in the object store, sorted, after deleting leftovers:
/// those above the checkpoint (a flush that crashed before the checkpoint moved; the WAL
/// still holds their records) and those covered by a compacted one (a compaction that
/// crashed before deleting its inputs).
pub async fn list_live(
    objects: &crate::object::Objects,
    signal: &'static str,
    checkpoint: u64,
) -> Result<Vec<(SegmentId, u64)>, StoreError> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let metas: Vec<_> = objects
        .list(Some(&ObjectPath::from(signal)))
        .try_collect()
        .await
        .map_err(|e| StoreError::io("list segments", e))?;
    let mut ids: Vec<(SegmentId, u64)> = metas
        .iter()
        .filter_map(|m| SegmentId::parse(signal, &m.location).map(|id| (id, m.size)))
        .collect();
    ids.sort();
    let all: Vec<SegmentId> = ids.iter().map(|(id, _)| id.clone()).collect();
    let mut live = Vec::new();
    for (id, size) in ids {
        let orphan = id.seq_hi > checkpoint;
        let covered = all
            .iter()
            .any(|o| id.is_covered_by(o) && o.seq_hi <= checkpoint);
        if orphan || covered {
            tracing::warn!(segment = %id.path(), orphan, covered, "deleting leftover segment");
            objects
                .delete(&id.path())
                .await
                .map_err(|e| StoreError::io("delete leftover segment", e))?;
            continue;
        }
        live.push((id, size));
    }
    Ok(live)
}

/// What compaction and retention need of a loaded segment, whatever its signal.
pub trait Catalogued {
    fn id(&self) -> &SegmentId;
    fn size(&self) -> u64;
}

/// The merges compaction should run: per tenant and day, the segments under
/// `small_bytes`, oldest first, as many as fit in `input_bytes_max`; only groups of two or
/// more.
pub fn compaction_groups<T: Catalogued>(
    segments: &[std::sync::Arc<T>],
    small_bytes: u64,
    input_bytes_max: u64,
) -> Vec<Vec<std::sync::Arc<T>>> {
    let mut groups: std::collections::BTreeMap<(TenantId, i64), Vec<std::sync::Arc<T>>> =
        std::collections::BTreeMap::new();
    for s in segments.iter().filter(|s| s.size() < small_bytes) {
        groups
            .entry((s.id().tenant.clone(), s.id().day))
            .or_default()
            .push(s.clone());
    }
    groups
        .into_values()
        .filter_map(|mut group| {
            group.sort_by_key(|s| s.id().seq_lo);
            let mut total = 0u64;
            group.retain(|s| {
                total += s.size();
                total <= input_bytes_max
            });
            (group.len() >= 2).then_some(group)
        })
        .collect()
}

/// The id of the segment that replaces `inputs` (one tenant and day): the union of their
/// WAL ranges, so a crash before the inputs are deleted leaves them recognisably covered.
pub fn merged_id<T: Catalogued>(inputs: &[std::sync::Arc<T>]) -> Option<SegmentId> {
    let first = inputs.first()?.id();
    Some(SegmentId {
        seq_lo: inputs.iter().map(|s| s.id().seq_lo).min()?,
        seq_hi: inputs.iter().map(|s| s.id().seq_hi).max()?,
        ..first.clone()
    })
}

/// Swaps compaction `inputs` for their merged segment in a catalog, in one step under the
/// caller's lock, so a query sees either the inputs or the output, never both.
pub fn replace_compacted<T>(
    segments: &mut Vec<std::sync::Arc<T>>,
    inputs: &[std::sync::Arc<T>],
    out: std::sync::Arc<T>,
) {
    segments.retain(|s| !inputs.iter().any(|i| std::sync::Arc::ptr_eq(i, s)));
    segments.push(out);
}

/// Takes the segments `expired` says are past retention out of a catalog.
pub fn take_expired<T>(
    segments: &mut Vec<std::sync::Arc<T>>,
    expired: impl Fn(&T) -> bool,
) -> Vec<std::sync::Arc<T>> {
    let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(segments)
        .into_iter()
        .partition(|s| expired(s));
    *segments = keep;
    gone
}

/// Reads whole segment files (for compaction).
pub async fn read_all<T: Catalogued>(
    objects: &crate::object::Objects,
    segments: &[std::sync::Arc<T>],
) -> Result<Vec<bytes::Bytes>, StoreError> {
    use object_store::ObjectStoreExt;
    let mut files = Vec::with_capacity(segments.len());
    for s in segments {
        let bytes = objects
            .get(&s.id().path())
            .await
            .map_err(|e| StoreError::io("read segment to compact", e))?
            .bytes()
            .await
            .map_err(|e| StoreError::io("read segment to compact", e))?;
        files.push(bytes);
    }
    Ok(files)
}

/// Deletes segment files; `why` names the step in errors (`compacted`, `expired`).
pub async fn delete_all<T: Catalogued>(
    objects: &crate::object::Objects,
    segments: &[std::sync::Arc<T>],
    why: &str,
) -> Result<(), StoreError> {
    use object_store::ObjectStoreExt;
    for s in segments {
        objects
            .delete(&s.id().path())
            .await
            .map_err(|e| StoreError::io(&format!("delete {why} segment"), e))?;
    }
    Ok(())
}

/// Reads a segment's footer bytes (still compressed) and their CRC through its trailer,
/// with two ranged reads.
pub async fn read_footer_bytes(
    objects: &crate::object::Objects,
    id: &SegmentId,
    size: u64,
    trailer_magic: &[u8; 8],
) -> Result<(bytes::Bytes, u32), StoreError> {
    use object_store::ObjectStoreExt;
    let path = id.path();
    let ctx = |what: &str| format!("{what} {path}");
    if size < (8 + TRAILER_BYTES) as u64 {
        return Err(StoreError::Corrupt(ctx("segment too short:")));
    }
    let tail = objects
        .get_range(&path, size - TRAILER_BYTES as u64..size)
        .await
        .map_err(|e| StoreError::io(&ctx("read trailer of"), e))?;
    let (offset, len, crc) = decode_trailer(&tail, size, trailer_magic, &ctx("segment"))?;
    let bytes = objects
        .get_range(&path, offset..offset + u64::from(len))
        .await
        .map_err(|e| StoreError::io(&ctx("read footer of"), e))?;
    Ok((bytes, crc))
}

/// Bytes of the trailer every segment format ends with:
/// `footer_offset: u64 LE │ footer_len: u32 LE │ footer_crc: u32 LE │ trailer magic (8 B)`.
pub const TRAILER_BYTES: usize = 24;
/// zstd level of footers.
const FOOTER_ZSTD_LEVEL: i32 = 3;

/// Appends the footer (zstd of `raw`) and the trailer that locates it.
pub fn write_footer(
    out: &mut Vec<u8>,
    raw: &[u8],
    trailer_magic: &[u8; 8],
) -> Result<(), StoreError> {
    let footer_bytes = codec::zstd_compress(raw, FOOTER_ZSTD_LEVEL)?;
    let footer_offset = out.len() as u64;
    out.extend_from_slice(&footer_bytes);
    out.extend_from_slice(&footer_offset.to_le_bytes());
    out.extend_from_slice(&(footer_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&footer_bytes).to_le_bytes());
    out.extend_from_slice(trailer_magic);
    Ok(())
}

/// Reads the trailer at the end of `tail` (the file's last bytes): the footer's offset,
/// length and CRC, checked against the file length.
pub fn decode_trailer(
    tail: &[u8],
    file_len: u64,
    trailer_magic: &[u8; 8],
    what: &str,
) -> Result<(u64, u32, u32), StoreError> {
    if tail.len() < TRAILER_BYTES || &tail[tail.len() - 8..] != trailer_magic {
        return Err(StoreError::Corrupt(format!("{what}: bad trailer magic")));
    }
    let t = &tail[tail.len() - TRAILER_BYTES..];
    let le64 = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let (offset, len, crc) = (le64(&t[0..8]), le32(&t[8..12]), le32(&t[12..16]));
    if offset.checked_add(u64::from(len) + TRAILER_BYTES as u64) != Some(file_len) {
        return Err(StoreError::Corrupt(format!(
            "{what}: footer bounds do not match the file"
        )));
    }
    Ok((offset, len, crc))
}

/// Checks a footer's CRC and decompresses it.
pub fn decode_footer_bytes(
    bytes: &[u8],
    crc: u32,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, StoreError> {
    if crc32fast::hash(bytes) != crc {
        return Err(StoreError::Corrupt(format!(
            "{what}: footer checksum mismatch"
        )));
    }
    codec::zstd_decompress(bytes, limit)
}

/// The footer of a whole segment file held in memory.
pub fn footer_of_file<'a>(
    file: &'a [u8],
    magic: &[u8; 8],
    trailer_magic: &[u8; 8],
    what: &str,
) -> Result<(&'a [u8], u32), StoreError> {
    if !file.starts_with(magic) {
        return Err(StoreError::Corrupt(format!("{what}: bad magic")));
    }
    let tail_start = file.len().saturating_sub(TRAILER_BYTES);
    let (offset, len, crc) =
        decode_trailer(&file[tail_start..], file.len() as u64, trailer_magic, what)?;
    let start = usize::try_from(offset)
        .map_err(|_| StoreError::Corrupt(format!("{what}: footer offset")))?;
    Ok((&file[start..start + len as usize], crc))
}

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
