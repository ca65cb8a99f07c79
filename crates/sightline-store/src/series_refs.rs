//! Metrics WAL records that name series by reference (record type 4).
//!
//! A remote-write sender repeats every series' labels with every sample, and a WAL record
//! that repeated them too was about 230 bytes a sample: writing them, and the kernel
//! copying them, was a fifth of ingest. As Prometheus' WAL does, a record now names a
//! series by a small number, and defines the number, with the series' labels, only in the
//! first record of a WAL file that uses it.
//!
//! The numbers belong to one WAL file: the writer thread, which alone knows which file a
//! record lands in, encodes these records ([`SeriesRefs`], passed to the encoder) and
//! forgets every number when it starts a file (rotation, or a write error). A file is so
//! readable on its own, which replay needs once older files are checkpointed away.
//!
//! Payload (postcard):
//!
//! ```text
//! { tenant: string,
//!   defs: [(ref: u32, labels: [(string, string)])],   refs first used by this record
//!   series: [{ ref: u32, samples: [Sample], exemplars: [Exemplar] }],
//!   metadata: [MetricMetadata] }
//! ```
//!
//! Invariants: a ref is defined in its file before, or in, the first record that uses it;
//! a definition holds until the same number is defined again (after the writer forgot its
//! numbers mid-file), so replay, reading records in order, resolves each ref to the set
//! the writer meant. A record whose encoding defined numbers but was then not written
//! makes the writer forget every number, so no written record uses an unwritten definition.

use std::borrow::Cow;

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use sightline_model::{
    Exemplar, LabelInterner, Labels, MetricBatch, MetricMetadata, Sample, SeriesSamples, TenantId,
};

use crate::StoreError;

/// The writer thread's numbering of series in the current WAL file.
#[derive(Default)]
pub struct SeriesRefs {
    /// By the address of a shared set (the interner's): no hashing.
    by_addr: HashMap<usize, u32>,
    /// By [`Labels::series_hash`], for sets that are equal but not shared.
    by_hash: HashMap<u64, Vec<u32>>,
    /// Each ref's set, held so that no address in `by_addr` is reused within the file.
    held: Vec<Labels>,
}

impl SeriesRefs {
    /// Forgets every number (a new file starts, or a record was not written).
    pub fn clear(&mut self) {
        self.by_addr.clear();
        self.by_hash.clear();
        self.held.clear();
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The number of `labels` in this file, and whether it is new (must be defined).
    fn resolve(&mut self, labels: &Labels) -> (u32, bool) {
        if let Some(&r) = self.by_addr.get(&labels.addr()) {
            return (r, false);
        }
        let hash = labels.series_hash();
        if let Some(r) = self.by_hash.get(&hash).and_then(|refs| {
            refs.iter()
                .copied()
                .find(|&r| self.held[r as usize] == *labels)
        }) {
            return (r, false);
        }
        let r = self.held.len() as u32;
        self.by_addr.insert(labels.addr(), r);
        self.by_hash.entry(hash).or_default().push(r);
        self.held.push(labels.clone());
        (r, true)
    }
}

#[derive(Serialize)]
struct RefBatchOut<'a> {
    tenant: &'a str,
    defs: Vec<(u32, &'a Labels)>,
    series: Vec<RefSeriesOut<'a>>,
    metadata: &'a [MetricMetadata],
}

#[derive(Serialize)]
struct RefSeriesOut<'a> {
    series_ref: u32,
    samples: &'a [Sample],
    exemplars: &'a [Exemplar],
}

#[derive(Deserialize)]
struct RefBatchIn<'a> {
    #[serde(borrow)]
    tenant: Cow<'a, str>,
    defs: Vec<(u32, Labels)>,
    series: Vec<RefSeriesIn>,
    metadata: Vec<MetricMetadata>,
}

#[derive(Deserialize)]
struct RefSeriesIn {
    series_ref: u32,
    samples: Vec<Sample>,
    exemplars: Vec<Exemplar>,
}

/// Encodes `batch` as a type-4 payload, numbering its series in `refs`.
pub fn encode(batch: &MetricBatch, refs: &mut SeriesRefs) -> Result<Vec<u8>, StoreError> {
    let mut defs = Vec::new();
    let series = batch
        .series
        .iter()
        .map(|s| {
            let (series_ref, new) = refs.resolve(&s.labels);
            if new {
                defs.push((series_ref, &s.labels));
            }
            RefSeriesOut {
                series_ref,
                samples: &s.samples,
                exemplars: &s.exemplars,
            }
        })
        .collect();
    let value = RefBatchOut {
        tenant: batch.tenant.as_str(),
        defs,
        series,
        metadata: &batch.metadata,
    };
    let estimate = batch.sample_count() * 16 + batch.series.len() * 4 + 64;
    postcard::to_extend(&value, Vec::with_capacity(estimate))
        .map_err(|e| StoreError::io("encode wal metrics record", e))
}

/// Replay's side: the definitions seen so far in the file being read.
#[derive(Default)]
pub struct RefReplay {
    seq: u64,
    sets: HashMap<u32, Labels>,
}

impl RefReplay {
    /// The batch of a type-4 record of WAL file `seq`; records must come in file order.
    /// Label sets are shared through `interner`.
    pub fn decode(
        &mut self,
        seq: u64,
        payload: &[u8],
        interner: &LabelInterner,
    ) -> Result<MetricBatch, StoreError> {
        if seq != self.seq {
            self.seq = seq;
            self.sets.clear();
        }
        let corrupt = |e: String| StoreError::Corrupt(format!("wal metrics record: {e}"));
        let b: RefBatchIn<'_> =
            postcard::from_bytes(payload).map_err(|e| corrupt(e.to_string()))?;
        let tenant = TenantId::new(&b.tenant).map_err(|e| corrupt(e.to_string()))?;
        for (r, labels) in b.defs {
            self.sets.insert(r, interner.intern(labels));
        }
        let series = b
            .series
            .into_iter()
            .map(|s| {
                let labels = self
                    .sets
                    .get(&s.series_ref)
                    .ok_or_else(|| corrupt(format!("series ref {} is not defined", s.series_ref)))?
                    .clone();
                Ok(SeriesSamples {
                    labels,
                    samples: s.samples,
                    exemplars: s.exemplars,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(MetricBatch {
            tenant,
            series,
            metadata: b.metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(hosts: &[&str], t: i64) -> MetricBatch {
        MetricBatch {
            tenant: TenantId::new("acme").expect("tenant"),
            series: hosts
                .iter()
                .map(|h| SeriesSamples {
                    labels: Labels::from_pairs([("__name__", "cpu"), ("host", *h)]),
                    samples: vec![Sample {
                        timestamp_ms: t,
                        value: t as f64 / 3.0,
                    }],
                    exemplars: vec![],
                })
                .collect(),
            metadata: vec![],
        }
    }

    #[test]
    fn series_are_defined_once_a_file_and_replay_resolves_them() {
        let interner = LabelInterner::default();
        let mut refs = SeriesRefs::default();
        let first = batch(&["a", "b"], 1);
        let second = batch(&["b", "c"], 2); // "b" equal, not shared: found by hash
        let p1 = encode(&first, &mut refs).expect("encode");
        let p2 = encode(&second, &mut refs).expect("encode");
        assert_eq!(refs.len(), 3);
        // The second record defines only "c", so it is far smaller than the first.
        assert!(p2.len() < p1.len(), "{} vs {}", p2.len(), p1.len());
        let mut replay = RefReplay::default();
        assert_eq!(replay.decode(1, &p1, &interner).expect("decode"), first);
        assert_eq!(replay.decode(1, &p2, &interner).expect("decode"), second);
        // The same record read as the start of another file has no definition for "b".
        let mut fresh = RefReplay::default();
        let e = fresh.decode(2, &p2, &interner).expect_err("undefined");
        assert!(e.to_string().contains("series ref 1 is not defined"), "{e}");
        // A new file (or a record not written) forgets the numbers: defined again.
        refs.clear();
        let p3 = encode(&second, &mut refs).expect("encode");
        assert_eq!(replay.decode(2, &p3, &interner).expect("decode"), second);
    }

    #[test]
    fn redefinition_mid_file_holds_from_its_record_on() {
        let interner = LabelInterner::default();
        let mut refs = SeriesRefs::default();
        let a = batch(&["a"], 1);
        let b = batch(&["b"], 2);
        let pa = encode(&a, &mut refs).expect("encode");
        refs.clear(); // a record after `pa` was not written
        let pb = encode(&b, &mut refs).expect("encode"); // "b" is ref 0 now
        let pa2 = encode(&a, &mut refs).expect("encode");
        let mut replay = RefReplay::default();
        assert_eq!(replay.decode(1, &pa, &interner).expect("decode"), a);
        assert_eq!(replay.decode(1, &pb, &interner).expect("decode"), b);
        assert_eq!(replay.decode(1, &pa2, &interner).expect("decode"), a);
    }

    #[test]
    fn shared_sets_are_found_by_address() {
        let interner = LabelInterner::default();
        let mut refs = SeriesRefs::default();
        let mut b = batch(&["a"], 1);
        b.series[0].labels = interner.intern(b.series[0].labels.clone());
        let first = encode(&b, &mut refs).expect("encode");
        let again = encode(&b, &mut refs).expect("encode");
        assert_eq!(refs.len(), 1);
        assert!(again.len() < first.len(), "no definition the second time");
        let mut replay = RefReplay::default();
        replay.decode(1, &first, &interner).expect("decode");
        let got = replay.decode(1, &again, &interner).expect("decode");
        assert!(got.series[0].labels.ptr_eq(&b.series[0].labels));
    }
}
