//! A selection's series, read from segments and heads straight into one vector each.
//!
//! A series' samples are spread over every segment flushed since the last compaction, and
//! the heads. Reading each source into vectors of its own and then joining them copied every
//! sample once more and faulted in twice the memory: about a tenth of the CPU of range
//! queries over four segments. Here the sources' label lists are merged first (a k-way
//! merge of sorted lists, which compares no text while the next set of every source is one
//! interned set), each output series gets one vector with room for all its samples, and each
//! source appends to it.
//!
//! Invariants: sources append oldest first (segments in WAL order, then the heads), so of
//! two samples with one timestamp the later write comes last; a vector that was given a run
//! starting at or before its last timestamp is sorted and deduplicated, the later write
//! winning, before it is returned. Segment reads decode on all cores, each thread owning the
//! output vectors of the blocks it decodes.

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use object_store::ObjectStoreExt;

use sightline_model::{Labels, Sample, SeriesSelection, any_stale};

use super::{Block, LoadedSegment, SelectedSeries, Tsdb, self_select};
use crate::StoreError;
use crate::head::metrics::sort_dedup;
use crate::segment::metrics as seg;

/// One block a segment read decodes, with the range of the selection's series in it.
struct Read<'s> {
    meta: &'s seg::BlockRef,
    series: Range<usize>,
    block: Block,
}

/// What a selection learns of an output series while reading its sources.
#[derive(Clone, Copy, Default)]
struct Marks {
    /// A source's run did not start after what the vector held: sort and deduplicate.
    unsorted: bool,
    /// A source held a staleness marker.
    stale: bool,
}

/// A run of reads and the output vectors they alone write: `out[i]` is slot `base + i`.
struct Task<'r, 's, 'o> {
    reads: &'r [Read<'s>],
    base: usize,
    out: Mutex<&'o mut [Vec<Sample>]>,
}

impl Tsdb {
    /// The series matching the selection, with their samples in `[start_ms, end_ms]`, sorted
    /// by label set. Series without a sample in the range are left out.
    pub async fn select(&self, sel: &SeriesSelection) -> Result<Vec<SelectedSeries>, StoreError> {
        let mut segments: Vec<Arc<LoadedSegment>> = {
            let st = self.read();
            st.segments
                .iter()
                .filter(|s| s.overlaps(&sel.tenant, sel.start_ms, sel.end_ms))
                .cloned()
                .collect()
        };
        segments.sort_by_key(|s| s.id.seq_lo);
        let picks: Vec<Vec<u32>> = segments
            .iter()
            .map(|s| {
                let ids = self_select(s, sel);
                if ids.is_empty() {
                    self.metrics
                        .skipped_blocks
                        .inc_by(s.footer.blocks.len() as u64);
                }
                ids
            })
            .collect();
        let mut heads: Vec<Vec<(Labels, Vec<Sample>)>> = Vec::new();
        {
            let st = self.read();
            for head in st.heads() {
                let Some(t) = head.tenant(&sel.tenant) else {
                    continue;
                };
                let mut part = Vec::new();
                for hs in t.select(&sel.matchers) {
                    let smp = hs.samples_between(sel.start_ms, sel.end_ms)?;
                    if !smp.is_empty() {
                        part.push((hs.labels.clone(), smp));
                    }
                }
                heads.push(part);
            }
        }

        let (labels, slots) = {
            let mut lists: Vec<Vec<&Labels>> = Vec::new();
            let mut sorted = Vec::new();
            for (s, ids) in segments.iter().zip(&picks) {
                lists.push(ids.iter().map(|&i| &s.labels[i as usize]).collect());
                sorted.push(s.sorted);
            }
            for part in &heads {
                // A head selects its series sorted (`TenantSeries::select`).
                let list: Vec<&Labels> = part.iter().map(|(l, _)| l).collect();
                debug_assert!(list.is_sorted_by(|a, b| a < b));
                sorted.push(true);
                lists.push(list);
            }
            merge_label_lists(&lists, &sorted)
        };

        // Room for every sample a segment holds of the series (a read decodes them all
        // before dropping those out of range), and for the heads' once a segment has some.
        let mut room = vec![0usize; labels.len()];
        for ((s, ids), slots) in segments.iter().zip(&picks).zip(&slots) {
            for (&id, &slot) in ids.iter().zip(slots) {
                room[slot as usize] += s.footer.series[id as usize].samples as usize;
            }
        }
        for (part, slots) in heads.iter().zip(&slots[segments.len()..]) {
            for ((_, smp), &slot) in part.iter().zip(slots) {
                if room[slot as usize] > 0 {
                    room[slot as usize] += smp.len();
                }
            }
        }
        let mut out: Vec<Vec<Sample>> = room.iter().map(|&n| Vec::with_capacity(n)).collect();
        let mut marks = vec![Marks::default(); labels.len()];
        for ((s, ids), slots) in segments.iter().zip(&picks).zip(&slots) {
            self.read_segment_into(s, sel, ids, slots, &mut out, &mut marks)
                .await?;
        }
        for (part, slots) in heads.into_iter().zip(&slots[segments.len()..]) {
            for ((_, smp), &slot) in part.into_iter().zip(slots) {
                marks[slot as usize].stale |= any_stale(&smp);
                let v = &mut out[slot as usize];
                if v.is_empty() {
                    *v = smp;
                    continue;
                }
                if let (Some(last), Some(first)) = (v.last(), smp.first())
                    && first.timestamp_ms <= last.timestamp_ms
                {
                    marks[slot as usize].unsorted = true;
                }
                v.extend_from_slice(&smp);
            }
        }
        Ok(labels
            .into_iter()
            .zip(out)
            .zip(marks)
            .filter_map(|((labels, mut samples), marks)| {
                if marks.unsorted {
                    samples = sort_dedup(samples);
                } else if samples.capacity() > 2 * samples.len() + 64 {
                    // A range over a small part of a segment's span.
                    samples.shrink_to_fit();
                }
                (!samples.is_empty()).then_some(SelectedSeries {
                    labels,
                    samples,
                    may_hold_stale: marks.stale,
                })
            })
            .collect())
    }

    /// Appends the samples in range of the segment's series `ids` to `out[slots[i]]`, and
    /// marks in `marks` the slots whose run did not start after what they held and those
    /// whose chunk holds a staleness marker.
    async fn read_segment_into(
        &self,
        s: &Arc<LoadedSegment>,
        sel: &SeriesSelection,
        ids: &[u32],
        slots: &[u32],
        out: &mut [Vec<Sample>],
        marks: &mut [Marks],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = s.id.path();
        let cache_path: Arc<str> = path.as_ref().into();
        // Read the blocks the selected series live in (or take them decompressed from the
        // cache), then decode them on all cores: a range query over thousands of series
        // spends most of its read in decompressing and decoding.
        let mut reads = Vec::new();
        let mut i = 0;
        while i < ids.len() {
            let block_idx = s.footer.series[ids[i] as usize].block;
            let mut j = i;
            while j < ids.len() && s.footer.series[ids[j] as usize].block == block_idx {
                j += 1;
            }
            let meta = &s.footer.blocks[block_idx as usize];
            let key = (cache_path.clone(), block_idx, meta.crc);
            self.metrics.scanned_blocks.inc();
            let block = match self.blocks.get(&key) {
                Some(raw) => Block::Cached(raw),
                None => {
                    let bytes = self
                        .objects
                        .get_range(&path, meta.offset..meta.offset + u64::from(meta.len))
                        .await
                        .map_err(|e| StoreError::io(&format!("read block of {path}"), e))?;
                    self.metrics.segment_bytes_read.inc_by(bytes.len() as u64);
                    Block::Read(key, bytes)
                }
            };
            reads.push(Read {
                meta,
                series: i..j,
                block,
            });
            i = j;
        }
        // Threads only when there is enough to do: a small selection (a few series from
        // cached blocks) is done before a thread would have started.
        let work: usize = reads
            .iter()
            .map(|r| {
                let samples: usize = ids[r.series.clone()]
                    .iter()
                    .map(|&id| s.footer.series[id as usize].samples as usize)
                    .sum();
                let decompress = match r.block {
                    Block::Cached(_) => 0,
                    // zstd gives about a byte a nanosecond; a sample decodes in a few.
                    Block::Read(..) => r.meta.raw_len as usize / 4,
                };
                samples + decompress
            })
            .sum();
        // A segment lists its series sorted, as the output is, so reads in id order write
        // increasing slots and each read's slots are a run of `out` no other read touches.
        // A segment out of order (never written so) is read by one task.
        let mut tasks = Vec::new();
        if slots.is_sorted_by(|a, b| a < b) {
            let mut rest: &mut [Vec<Sample>] = out;
            let mut base = 0;
            for read in &reads {
                let first = slots[read.series.start] as usize;
                let last = slots[read.series.end - 1] as usize;
                let (_, tail) = std::mem::take(&mut rest).split_at_mut(first - base);
                let (mine, tail) = tail.split_at_mut(last + 1 - first);
                rest = tail;
                base = last + 1;
                tasks.push(Task {
                    reads: std::slice::from_ref(read),
                    base: first,
                    out: Mutex::new(mine),
                });
            }
        } else {
            tasks.push(Task {
                reads: &reads,
                base: 0,
                out: Mutex::new(out),
            });
        }
        let marked = sightline_model::parallel::map_work(&tasks, work, |task| {
            let mut out = task.out.lock().unwrap_or_else(PoisonError::into_inner);
            // The slots this task marks, with what it learnt of them.
            let mut marked: Vec<(usize, Marks)> = Vec::new();
            for read in task.reads {
                let block = match &read.block {
                    Block::Cached(raw) => raw.clone(),
                    Block::Read(key, bytes) => {
                        let raw = Arc::new(seg::decode_block(read.meta, bytes)?);
                        self.blocks.insert(key.clone(), raw.clone());
                        raw
                    }
                };
                for i in read.series.clone() {
                    let slot = slots[i] as usize;
                    let v = &mut out[slot - task.base];
                    let last = v.last().map(|x| x.timestamp_ms);
                    let from = v.len();
                    let stale = seg::decode_series(
                        &s.footer.series[ids[i] as usize],
                        &block,
                        sel.start_ms,
                        sel.end_ms,
                        v,
                    )?;
                    let unsorted = matches!(
                        (last, v.get(from)),
                        (Some(last), Some(first)) if first.timestamp_ms <= last
                    );
                    if stale || unsorted {
                        marked.push((slot, Marks { unsorted, stale }));
                    }
                }
            }
            Ok::<_, StoreError>(marked)
        });
        for m in marked {
            for (slot, learnt) in m? {
                marks[slot].unsorted |= learnt.unsorted;
                marks[slot].stale |= learnt.stale;
            }
        }
        Ok(())
    }
}

/// Merges label lists into one ascending list of distinct sets. `sorted[k]` says whether
/// list `k` is ascending already (otherwise it is sorted here). Returns the sets and, per
/// list, the output index of each of its entries.
fn merge_label_lists(lists: &[Vec<&Labels>], sorted: &[bool]) -> (Vec<Labels>, Vec<Vec<u32>>) {
    let orders: Vec<Vec<u32>> = lists
        .iter()
        .zip(sorted)
        .map(|(list, &sorted)| {
            let mut order: Vec<u32> = (0..list.len() as u32).collect();
            if !sorted {
                order.sort_by(|&a, &b| list[a as usize].cmp(list[b as usize]));
            }
            order
        })
        .collect();
    let mut at = vec![0usize; lists.len()];
    let mut slots: Vec<Vec<u32>> = lists.iter().map(|l| vec![0; l.len()]).collect();
    let mut out: Vec<Labels> = Vec::new();
    loop {
        let mut least: Option<&Labels> = None;
        for ((list, order), &at) in lists.iter().zip(&orders).zip(&at) {
            // Sources mostly hold the same series, each one set shared through the store's
            // interner: a set that is the least one already costs no comparison.
            if let Some(&i) = order.get(at) {
                let l = list[i as usize];
                if least.is_none_or(|m| !l.ptr_eq(m) && l < m) {
                    least = Some(l);
                }
            }
        }
        let Some(least) = least else {
            return (out, slots);
        };
        let slot = out.len() as u32;
        for (k, (list, order)) in lists.iter().zip(&orders).enumerate() {
            while let Some(&i) = order.get(at[k]) {
                let l = list[i as usize];
                if !(l.ptr_eq(least) || l == least) {
                    break;
                }
                slots[k][i as usize] = slot;
                at[k] += 1;
            }
        }
        out.push(least.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(n: u8) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", &n.to_string())])
    }

    proptest! {
        #[test]
        fn merged_lists_hold_each_set_once_in_order_and_map_every_entry(
            lists in proptest::collection::vec(
                (proptest::collection::btree_set(0u8..40, 0..20), any::<bool>()),
                0..5,
            )
        ) {
            // Sets shared between lists (as the interner shares them) and equal copies both.
            let shared: Vec<Labels> = (0..40).map(set).collect();
            let owned: Vec<Vec<Labels>> = lists
                .iter()
                .enumerate()
                .map(|(k, (ns, reverse))| {
                    let mut v: Vec<Labels> = ns
                        .iter()
                        .map(|&n| if k % 2 == 0 { shared[n as usize].clone() } else { set(n) })
                        .collect();
                    if *reverse {
                        v.reverse();
                    }
                    v
                })
                .collect();
            let refs: Vec<Vec<&Labels>> = owned.iter().map(|v| v.iter().collect()).collect();
            let sorted: Vec<bool> = refs.iter().map(|v| v.is_sorted_by(|a, b| a < b)).collect();
            let (out, slots) = merge_label_lists(&refs, &sorted);
            let want: std::collections::BTreeSet<Labels> =
                owned.iter().flatten().cloned().collect();
            prop_assert_eq!(out.clone(), want.into_iter().collect::<Vec<_>>());
            for (list, slots) in refs.iter().zip(&slots) {
                for (l, &slot) in list.iter().zip(slots) {
                    prop_assert_eq!(*l, &out[slot as usize]);
                }
            }
        }
    }
}
