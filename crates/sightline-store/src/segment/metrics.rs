//! The metrics segment format: series sorted by label set, their samples packed into
//! zstd-compressed blocks, and a footer with the label sets, where each series lives, the
//! family metadata and the exemplars.
//!
//! ```text
//! ┌──────────────────┬─────────┬─────┬─────────┬────────────────────────┬────────────────┐
//! │ magic "SLMETR01" │ block 0 │ ... │ block n │ footer: zstd(postcard) │ trailer (24 B) │
//! └──────────────────┴─────────┴─────┴─────────┴────────────────────────┴────────────────┘
//! trailer = footer_offset: u64 LE │ footer_len: u32 LE │ footer_crc: u32 LE │ "SLMETEND"
//! block   = zstd(series chunk │ series chunk │ …); its CRC-32 (over the stored bytes) in
//!           BlockRef
//! chunk   = the samples of one series, see `samples` (timestamps delta-of-delta, values
//!           decimal or XOR)
//! ```
//!
//! Series are sorted by label set, so one metric's series (same `__name__`) sit in
//! consecutive blocks and a selector reads few of them. A block closes after
//! [`BLOCK_RAW_BYTES_MAX`] bytes of chunks, or at the series that would pass it. The footer
//! interns label strings in a symbol table; a series is `(name, value)` symbol-id pairs plus
//! its block, offset and length within the decompressed block, sample count and time range.
//! Every id, offset and count is checked against the footer and block bounds on read.

use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use sightline_model::{Exemplar, Labels, MetricMetadata, Sample};

pub mod samples;

use crate::StoreError;
use crate::codec::{self, Reader};

pub const SEGMENT_MAGIC: &[u8; 8] = b"SLMETR01";
pub const TRAILER_MAGIC: &[u8; 8] = b"SLMETEND";
pub const FORMAT_VERSION: u32 = 1;
const WHAT: &str = "metrics segment";
/// A block closes once its series' chunks reach this many bytes before compression.
pub const BLOCK_RAW_BYTES_MAX: usize = 256 << 10;
/// Largest decompressed block accepted on read.
const BLOCK_BYTES_MAX: usize = 64 << 20;
/// Largest decompressed footer accepted on read.
const FOOTER_BYTES_MAX: usize = 1 << 30;
/// Samples: zstd level 3 already removes the redundancy the sample encoding leaves.
const ZSTD_LEVEL: i32 = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockRef {
    pub offset: u64,
    pub len: u32,
    pub raw_len: u32,
    pub crc: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesEntry {
    /// `(name, value)` symbol ids, sorted by name.
    pub labels: Vec<(u32, u32)>,
    pub block: u32,
    /// Offset and length of the chunk in the decompressed block.
    pub offset: u32,
    pub len: u32,
    pub samples: u32,
    pub min_ts: i64,
    pub max_ts: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentFooter {
    pub version: u32,
    pub tenant: String,
    pub min_ts: i64,
    pub max_ts: i64,
    pub samples: u64,
    pub symbols: Vec<String>,
    pub series: Vec<SeriesEntry>,
    pub blocks: Vec<BlockRef>,
    pub metadata: Vec<MetricMetadata>,
    /// Exemplars with the index of their series.
    pub exemplars: Vec<(u32, Exemplar)>,
}

impl SegmentFooter {
    /// The label set of series `i` (ids were checked by [`decode_footer`]).
    pub fn labels(&self, i: usize) -> Labels {
        let sym = |id: u32| self.symbols[id as usize].as_str();
        Labels::from_sorted_pairs(
            self.series[i]
                .labels
                .iter()
                .map(|&(k, v)| (sym(k).to_string(), sym(v).to_string())),
        )
    }
}

/// Where a series' samples come from when a segment is written: read one series at a
/// time, so a flush holds one series' decoded samples, not the whole head's.
pub trait SamplesSource {
    /// Sorted by time, unique timestamps.
    fn samples(&self) -> Result<Cow<'_, [Sample]>, StoreError>;
}

impl SamplesSource for &[Sample] {
    fn samples(&self) -> Result<Cow<'_, [Sample]>, StoreError> {
        Ok(Cow::Borrowed(self))
    }
}

/// What one segment holds: series sorted by labels, each with samples sorted by time.
pub struct SegmentInput<'a, S: SamplesSource = &'a [Sample]> {
    pub tenant: &'a str,
    pub series: Vec<(&'a Labels, S)>,
    pub metadata: Vec<&'a MetricMetadata>,
    pub exemplars: Vec<(&'a Labels, &'a Exemplar)>,
}

/// Encodes a segment. `series` must be sorted by labels, each label set once, samples
/// sorted with unique timestamps; empty series are skipped.
pub fn encode_segment<S: SamplesSource>(
    input: &SegmentInput<'_, S>,
) -> Result<Vec<u8>, StoreError> {
    let mut symbols: Vec<String> = Vec::new();
    let mut sym_ids: foldhash::HashMap<&str, u32> = foldhash::HashMap::default();
    let mut out = Vec::with_capacity(1 << 16);
    out.extend_from_slice(SEGMENT_MAGIC);
    let mut footer = SegmentFooter {
        version: FORMAT_VERSION,
        tenant: input.tenant.to_string(),
        min_ts: i64::MAX,
        max_ts: i64::MIN,
        samples: 0,
        symbols: Vec::new(),
        series: Vec::with_capacity(input.series.len()),
        blocks: Vec::new(),
        metadata: input.metadata.iter().map(|m| (*m).clone()).collect(),
        exemplars: Vec::new(),
    };
    let mut index_of: foldhash::HashMap<&Labels, u32> = foldhash::HashMap::default();
    let mut raw = Vec::with_capacity(BLOCK_RAW_BYTES_MAX + (64 << 10));
    for (labels, source) in &input.series {
        let smp = source.samples()?;
        if smp.is_empty() {
            continue;
        }
        let offset = raw.len();
        samples::encode(&smp, &mut raw);
        let mut pairs = Vec::with_capacity(labels.len());
        for (k, v) in labels.iter() {
            let k = intern(k, &mut sym_ids, &mut symbols);
            let v = intern(v, &mut sym_ids, &mut symbols);
            pairs.push((k, v));
        }
        index_of.insert(labels, footer.series.len() as u32);
        let (min_ts, max_ts) = (smp[0].timestamp_ms, smp[smp.len() - 1].timestamp_ms);
        footer.min_ts = footer.min_ts.min(min_ts);
        footer.max_ts = footer.max_ts.max(max_ts);
        footer.samples += smp.len() as u64;
        footer.series.push(SeriesEntry {
            labels: pairs,
            block: footer.blocks.len() as u32,
            offset: offset as u32,
            len: (raw.len() - offset) as u32,
            samples: smp.len() as u32,
            min_ts,
            max_ts,
        });
        if raw.len() >= BLOCK_RAW_BYTES_MAX {
            footer.blocks.push(write_block(&mut out, &raw)?);
            raw.clear();
        }
    }
    if !raw.is_empty() {
        footer.blocks.push(write_block(&mut out, &raw)?);
    }
    for (labels, e) in &input.exemplars {
        if let Some(&i) = index_of.get(labels) {
            footer.exemplars.push((i, (*e).clone()));
        }
    }
    footer.symbols = symbols;
    let raw = postcard::to_stdvec(&footer).map_err(|e| StoreError::io("encode footer", e))?;
    super::write_footer(&mut out, &raw, TRAILER_MAGIC)?;
    Ok(out)
}

fn intern<'a>(
    s: &'a str,
    ids: &mut foldhash::HashMap<&'a str, u32>,
    symbols: &mut Vec<String>,
) -> u32 {
    *ids.entry(s).or_insert_with(|| {
        symbols.push(s.to_string());
        symbols.len() as u32 - 1
    })
}

fn write_block(out: &mut Vec<u8>, raw: &[u8]) -> Result<BlockRef, StoreError> {
    let z = codec::zstd_compress(raw, ZSTD_LEVEL)?;
    let r = BlockRef {
        offset: out.len() as u64,
        len: z.len() as u32,
        raw_len: raw.len() as u32,
        crc: crc32fast::hash(&z),
    };
    out.extend_from_slice(&z);
    Ok(r)
}

pub fn decode_trailer(tail: &[u8], file_len: u64) -> Result<(u64, u32, u32), StoreError> {
    super::decode_trailer(tail, file_len, TRAILER_MAGIC, WHAT)
}

/// Decodes and checks a footer: every symbol id, block index and chunk range in bounds.
pub fn decode_footer(bytes: &[u8], crc: u32) -> Result<SegmentFooter, StoreError> {
    let raw = super::decode_footer_bytes(bytes, crc, FOOTER_BYTES_MAX, WHAT)?;
    let footer: SegmentFooter = postcard::from_bytes(&raw)
        .map_err(|e| StoreError::Corrupt(format!("{WHAT} footer: {e}")))?;
    if footer.version != FORMAT_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{WHAT}: format version {} is not {FORMAT_VERSION}",
            footer.version
        )));
    }
    let nsym = footer.symbols.len() as u32;
    let ok = footer.series.iter().all(|s| {
        s.labels.iter().all(|&(k, v)| k < nsym && v < nsym)
            && footer
                .blocks
                .get(s.block as usize)
                .is_some_and(|b| u64::from(s.offset) + u64::from(s.len) <= u64::from(b.raw_len))
    }) && footer
        .exemplars
        .iter()
        .all(|(i, _)| (*i as usize) < footer.series.len())
        && footer
            .blocks
            .iter()
            .all(|b| (b.raw_len as usize) <= BLOCK_BYTES_MAX);
    if !ok {
        return Err(StoreError::Corrupt(format!(
            "{WHAT}: footer refers outside its symbols or blocks"
        )));
    }
    Ok(footer)
}

/// Checks and decompresses a block's stored bytes.
pub fn decode_block(b: &BlockRef, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    if bytes.len() != b.len as usize || crc32fast::hash(bytes) != b.crc {
        return Err(StoreError::Corrupt(format!(
            "{WHAT}: block checksum mismatch"
        )));
    }
    let raw = codec::zstd_decompress(bytes, BLOCK_BYTES_MAX)?;
    if raw.len() != b.raw_len as usize {
        return Err(StoreError::Corrupt(format!(
            "{WHAT}: block length mismatch"
        )));
    }
    Ok(raw)
}

/// Decodes series `s`'s samples from its decompressed block, keeping those in
/// `[start_ms, end_ms]`. Returns whether the chunk holds a staleness marker (in range or
/// not).
pub fn decode_series(
    s: &SeriesEntry,
    block: &[u8],
    start_ms: i64,
    end_ms: i64,
    out: &mut Vec<Sample>,
) -> Result<bool, StoreError> {
    let chunk = &block[s.offset as usize..(s.offset + s.len) as usize];
    let mut r = Reader::new(chunk, "metrics chunk");
    let from = out.len();
    let stale = samples::decode(&mut r, s.samples as usize, out)?;
    if start_ms > s.min_ts || end_ms < s.max_ts {
        // A chunk's samples ascend: the range is one run of them, found by search.
        let got = &out[from..];
        let lo = got.partition_point(|x| x.timestamp_ms < start_ms);
        let hi = got.partition_point(|x| x.timestamp_ms <= end_ms).max(lo);
        out.truncate(from + hi);
        out.drain(from..from + lo);
    }
    Ok(stale)
}

/// The footer of a whole file in memory.
pub fn footer_of(file: &[u8]) -> Result<SegmentFooter, StoreError> {
    let (bytes, crc) = super::footer_of_file(file, SEGMENT_MAGIC, TRAILER_MAGIC, WHAT)?;
    decode_footer(bytes, crc)
}

/// A series' label set and samples.
pub type SeriesOwned = (Labels, Vec<Sample>);

/// Every series of a whole segment file with all its samples (for compaction and tests).
pub fn decode_all(file: &[u8]) -> Result<(SegmentFooter, Vec<SeriesOwned>), StoreError> {
    let footer = footer_of(file)?;
    let mut out = Vec::with_capacity(footer.series.len());
    let mut current: Option<(u32, Vec<u8>)> = None;
    for (i, s) in footer.series.iter().enumerate() {
        if current.as_ref().is_none_or(|(b, _)| *b != s.block) {
            let b = &footer.blocks[s.block as usize];
            let bytes = file
                .get(b.offset as usize..b.offset as usize + b.len as usize)
                .ok_or_else(|| StoreError::Corrupt(format!("{WHAT}: block past the end")))?;
            current = Some((s.block, decode_block(b, bytes)?));
        }
        let Some((_, block)) = &current else {
            continue;
        };
        let mut smp = Vec::new();
        let _stale = decode_series(s, block, i64::MIN, i64::MAX, &mut smp)?;
        out.push((footer.labels(i), smp));
    }
    Ok((footer, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_round_trips_series_metadata_and_exemplars() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        let sa: Vec<Sample> = (0..500)
            .map(|i| Sample {
                timestamp_ms: 1_000 + i * 15_000,
                value: 1.0,
            })
            .collect();
        let sb: Vec<Sample> = (0..3)
            .map(|i| Sample {
                timestamp_ms: 2_000 + i * 10_000,
                value: i as f64 * 0.1,
            })
            .collect();
        let meta = MetricMetadata {
            metric_family: "up".into(),
            metric_type: sightline_model::MetricType::Gauge,
            help: "is it up".into(),
            unit: String::new(),
        };
        let ex = Exemplar {
            labels: Labels::from_pairs([("trace_id", "abc")]),
            value: 1.0,
            timestamp_ms: 1_000,
        };
        let input = SegmentInput {
            tenant: "default",
            series: vec![(&a, sa.as_slice()), (&b, sb.as_slice())],
            metadata: vec![&meta],
            exemplars: vec![(&b, &ex)],
        };
        let file = encode_segment(&input).expect("encode");
        let (footer, series) = decode_all(&file).expect("decode");
        assert_eq!(
            series,
            vec![(a.clone(), sa.clone()), (b.clone(), sb.clone())]
        );
        assert_eq!(footer.metadata, vec![meta]);
        assert_eq!(footer.exemplars, vec![(1, ex)]);
        assert_eq!(
            (footer.min_ts, footer.max_ts),
            (1_000, 1_000 + 499 * 15_000)
        );
        assert_eq!(footer.samples, 503);
        // Regular samples of a constant cost well under a byte each.
        assert!(file.len() < 600, "{}", file.len());
        for cut in [0, 8, file.len() / 2, file.len() - 1] {
            assert!(decode_all(&file[..cut]).is_err());
        }
        let mut flipped = file.clone();
        flipped[12] ^= 0xff;
        assert!(decode_all(&flipped).is_err());
    }
}
