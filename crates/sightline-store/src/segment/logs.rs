//! The logs segment format: columnar, zstd-compressed blocks with a bloom filter each.
//!
//! ```text
//! ┌──────────────────┬─────────┬─────┬─────────┬────────────────────────┬─────────────────┐
//! │ magic "SLLOGS01" │ block 0 │ ... │ block n │ footer: zstd(postcard) │ trailer (24 B)  │
//! └──────────────────┴─────────┴─────┴─────────┴────────────────────────┴─────────────────┘
//! trailer = footer_offset: u64 LE │ footer_len: u32 LE │ footer_crc: u32 LE │ "SLLOGEND"
//! block   = ts column │ line column │ metadata column, each a zstd frame; crc in BlockMeta
//! ```
//!
//! Rows are sorted by stream (streams by label set), then by time, so a block holds runs of
//! few streams and a stream selector skips whole blocks. Columns:
//! - ts: zig-zag varint deltas from the previous row of the block (the first from 0);
//! - line: varint length + UTF-8 bytes per row;
//! - metadata: for each name of the block's key dictionary (`BlockMeta::keys`), per row a
//!   varint `len + 1` (0 = absent) and the value bytes: values of one name sit together, which
//!   is what makes ids and IPs compress.
//!
//! Each block's bloom filter holds the line's tokens (`bloom::tokens`) and every
//! `name=value` metadata pair, so a needle (`|= "…"` or `| request_id="…"`) skips blocks
//! without decompressing them. The footer's CRC-32 covers the footer bytes; each block's CRC
//! covers the block bytes. Counts and lengths are checked against limits on read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use sightline_model::{LabelMatcher, Labels, TenantId};

mod metadata;
mod row;

pub use row::{KeyDict, Row, Rows};

use super::bloom::{self, Bloom};
use crate::StoreError;
use crate::codec::{self, Reader};

pub const SEGMENT_MAGIC: &[u8; 8] = b"SLLOGS01";
pub const TRAILER_MAGIC: &[u8; 8] = b"SLLOGEND";
pub use super::TRAILER_BYTES;
const WHAT: &str = "logs segment";
/// The format written. Version 2 added metadata kind 3 (IPv4 addresses as 4 bytes); the
/// footer and every other part are as in version 1, which is still read.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format read.
const FORMAT_VERSION_MIN: u32 = 1;
/// A block is closed once it has this many rows…
const BLOCK_ROWS_MAX: usize = 16_384;
/// …or this many raw bytes of lines and metadata.
const BLOCK_RAW_BYTES_MAX: usize = 4 << 20;
/// Largest decompressed column accepted on read.
const COLUMN_BYTES_MAX: usize = 64 << 20;
/// Largest decompressed footer accepted on read.
const FOOTER_BYTES_MAX: usize = 256 << 20;
/// zstd level: 3 is zstd's default, the knee of ratio against speed.
const ZSTD_LEVEL: i32 = 3;

/// A stream's rows, sorted by time (metadata names in a `KeyDict` kept beside them).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRows {
    pub labels: Labels,
    pub rows: Rows,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockMeta {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
    pub rows: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Runs of rows of one stream, in row order.
    pub runs: Vec<Run>,
    pub ts_len: u32,
    pub line_len: u32,
    pub meta_len: u32,
    pub line_bytes: u64,
    pub keys: Vec<String>,
    pub bloom: Bloom,
}

/// Consecutive rows of one stream within a block.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Run {
    /// Index in `SegmentFooter::streams`.
    pub stream: u32,
    pub rows: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Bytes of the run's lines.
    pub line_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SegmentFooter {
    pub version: u32,
    pub tenant: String,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: u64,
    pub streams: Vec<Labels>,
    pub blocks: Vec<BlockMeta>,
}

/// A stream's rows by reference, sorted by time: what a flush or compaction encodes, so
/// rows are not copied out of the head.
pub struct StreamRef<'a> {
    pub labels: &'a Labels,
    pub rows: Vec<Row<'a>>,
    pub keys: &'a KeyDict,
}

impl StreamRows {
    pub fn as_ref<'a>(&'a self, keys: &'a KeyDict) -> StreamRef<'a> {
        StreamRef {
            labels: &self.labels,
            rows: self.rows.iter().collect(),
            keys,
        }
    }
}

/// Encodes streams (sorted by labels, rows by time) into a segment file.
pub fn encode_segment(tenant: &TenantId, streams: &[StreamRef<'_>]) -> Result<Vec<u8>, StoreError> {
    // Segments compress to roughly a sixth of their raw rows; reserving that up front saves
    // the copies of a doubling buffer.
    let raw: usize = streams
        .iter()
        .flat_map(|s| s.rows.iter())
        .map(|r| r.raw_bytes())
        .sum();
    let mut out = Vec::with_capacity(raw / 6 + (1 << 16));
    out.extend_from_slice(SEGMENT_MAGIC);
    let mut footer = SegmentFooter {
        version: FORMAT_VERSION,
        tenant: tenant.to_string(),
        min_ts: i64::MAX,
        max_ts: i64::MIN,
        rows: 0,
        streams: streams.iter().map(|s| s.labels.clone()).collect(),
        blocks: Vec::new(),
    };
    let mut block = BlockBuilder::default();
    for (stream_idx, stream) in streams.iter().enumerate() {
        for &row in &stream.rows {
            block.push(stream_idx as u32, row, stream.keys);
            if block.rows.len() >= BLOCK_ROWS_MAX || block.raw_bytes >= BLOCK_RAW_BYTES_MAX {
                footer.blocks.push(block.finish(&mut out)?);
                block = BlockBuilder::default();
            }
        }
    }
    if !block.rows.is_empty() {
        footer.blocks.push(block.finish(&mut out)?);
    }
    for b in &footer.blocks {
        footer.rows += u64::from(b.rows);
        footer.min_ts = footer.min_ts.min(b.min_ts);
        footer.max_ts = footer.max_ts.max(b.max_ts);
    }
    let raw = postcard::to_stdvec(&footer).map_err(|e| StoreError::io("encode footer", e))?;
    super::write_footer(&mut out, &raw, TRAILER_MAGIC)?;
    Ok(out)
}

#[derive(Default)]
struct BlockBuilder<'a> {
    rows: Vec<(u32, Row<'a>, &'a KeyDict)>,
    raw_bytes: usize,
}

impl<'a> BlockBuilder<'a> {
    fn push(&mut self, stream: u32, row: Row<'a>, keys: &'a KeyDict) {
        self.raw_bytes += row.raw_bytes();
        self.rows.push((stream, row, keys));
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<BlockMeta, StoreError> {
        let mut runs: Vec<Run> = Vec::new();
        let mut deltas: Vec<i64> = Vec::with_capacity(self.rows.len());
        let mut line_raw = Vec::with_capacity(self.raw_bytes);
        // Field name → index in `columns`; iterated in name order when encoding.
        let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
        let mut columns: Vec<metadata::ColumnBuilder> = Vec::new();
        // Key id → column, for the dictionary of the rows at hand (a block's rows almost
        // always share one), so a field costs an index rather than a string lookup.
        let mut dict_at: Option<&KeyDict> = None;
        let mut col_of_id: Vec<Option<usize>> = Vec::new();
        // Per column, the bloom seed of its name, hashed once a block rather than once a row.
        let mut seeds: Vec<u64> = Vec::new();
        let n_rows = self.rows.len();
        // Bloom keys, repeats and all: the filter is sized by an estimate of the distinct ones.
        let mut hashes: Vec<u64> = Vec::with_capacity(self.rows.len() * 16);
        let (mut prev, mut min_ts, mut max_ts, mut line_bytes) = (0i64, i64::MAX, i64::MIN, 0u64);
        for (row_idx, &(stream, row, dict)) in self.rows.iter().enumerate() {
            let (line, fields) = row.raw_parts();
            match runs.last_mut() {
                Some(run) if run.stream == stream => {
                    run.rows += 1;
                    run.line_bytes += line.len() as u64;
                    run.min_ts = run.min_ts.min(row.ts_ns);
                    run.max_ts = run.max_ts.max(row.ts_ns);
                }
                _ => runs.push(Run {
                    stream,
                    rows: 1,
                    min_ts: row.ts_ns,
                    max_ts: row.ts_ns,
                    line_bytes: line.len() as u64,
                }),
            }
            deltas.push(row.ts_ns.wrapping_sub(prev));
            prev = row.ts_ns;
            min_ts = min_ts.min(row.ts_ns);
            max_ts = max_ts.max(row.ts_ns);
            codec::put_bytes(&mut line_raw, line);
            line_bytes += line.len() as u64;
            for t in bloom::tokens(line) {
                hashes.push(bloom::hash_key(t));
            }
            if !dict_at.is_some_and(|d| std::ptr::eq(d, dict)) {
                dict_at = Some(dict);
                col_of_id.clear();
            }
            // One pass over each row's metadata fills every field's column.
            for (id, v) in fields {
                let slot = id as usize;
                if col_of_id.len() <= slot {
                    col_of_id.resize(slot + 1, None);
                }
                let col = *col_of_id[slot].get_or_insert_with(|| {
                    let name = dict.name(id);
                    *keys.entry(name).or_insert_with(|| {
                        columns.push(metadata::ColumnBuilder::default());
                        seeds.push(bloom::pair_seed(name));
                        columns.len() - 1
                    })
                });
                columns[col].set(row_idx, v);
                hashes.push(bloom::hash_pair_seeded(seeds[col], v));
            }
        }
        let mut meta_raw = Vec::new();
        for &col in keys.values() {
            columns[col].encode(n_rows, &mut meta_raw);
        }
        let keys: Vec<&str> = keys.into_keys().collect();
        // Timestamps often have µs or ms precision: dividing the deltas by their common
        // factor saves a byte or two a row before zstd sees them.
        let scale = deltas
            .iter()
            .fold(0u64, |g, d| gcd(g, d.unsigned_abs()))
            .max(1);
        let mut ts_raw = Vec::with_capacity(self.rows.len() * 2 + 10);
        codec::put_uvarint(&mut ts_raw, scale);
        for d in &deltas {
            // Exact: every delta is a multiple of scale (scale ≤ 2^63 unless all are i64::MIN).
            codec::put_ivarint(&mut ts_raw, d.wrapping_div(scale as i64));
        }
        let ts_z = codec::zstd_compress(&ts_raw, ZSTD_LEVEL)?;
        let line_z = codec::zstd_compress(&line_raw, ZSTD_LEVEL)?;
        let meta_z = codec::zstd_compress(&meta_raw, ZSTD_LEVEL)?;
        let offset = out.len() as u64;
        let mut crc = crc32fast::Hasher::new();
        for col in [&ts_z, &line_z, &meta_z] {
            crc.update(col);
            out.extend_from_slice(col);
        }
        Ok(BlockMeta {
            offset,
            len: (ts_z.len() + line_z.len() + meta_z.len()) as u32,
            crc: crc.finalize(),
            rows: self.rows.len() as u32,
            min_ts,
            max_ts,
            runs,
            ts_len: ts_z.len() as u32,
            line_len: line_z.len() as u32,
            meta_len: meta_z.len() as u32,
            line_bytes,
            keys: keys.into_iter().map(str::to_string).collect(),
            bloom: Bloom::sized_for(&hashes, bloom::distinct_estimate(&hashes)),
        })
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reads the footer from the last bytes of a segment: `tail` must end where the file ends and
/// hold at least the trailer; returns the footer's offset and length when `tail` is too short.
pub fn decode_trailer(tail: &[u8], file_len: u64) -> Result<(u64, u32, u32), StoreError> {
    super::decode_trailer(tail, file_len, TRAILER_MAGIC, WHAT)
}

pub fn decode_footer(bytes: &[u8], crc: u32) -> Result<SegmentFooter, StoreError> {
    let raw = super::decode_footer_bytes(bytes, crc, FOOTER_BYTES_MAX, WHAT)?;
    let footer: SegmentFooter = postcard::from_bytes(&raw)
        .map_err(|e| StoreError::Corrupt(format!("logs segment footer: {e}")))?;
    if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&footer.version) {
        return Err(StoreError::Corrupt(format!(
            "logs segment: format version {} is not one this build reads \
             ({FORMAT_VERSION_MIN} to {FORMAT_VERSION})",
            footer.version
        )));
    }
    for b in &footer.blocks {
        let runs_ok = b
            .runs
            .iter()
            .all(|r| (r.stream as usize) < footer.streams.len())
            && b.runs.iter().map(|r| u64::from(r.rows)).sum::<u64>() == u64::from(b.rows);
        let lens_ok =
            u64::from(b.ts_len) + u64::from(b.line_len) + u64::from(b.meta_len) == u64::from(b.len);
        if !runs_ok || !lens_ok {
            return Err(StoreError::Corrupt(
                "logs segment: inconsistent block metadata".into(),
            ));
        }
    }
    Ok(footer)
}

/// Which columns a scan needs decoded.
#[derive(Clone, Copy, Debug)]
pub struct Columns {
    pub line: bool,
    pub metadata: bool,
}

/// A decoded block: timestamps always, lines and metadata when asked for.
pub struct DecodedBlock {
    pub ts: Vec<i64>,
    line_buf: Vec<u8>,
    line_spans: Vec<(u32, u32)>,
    /// The metadata values' text, decoded.
    meta_buf: Vec<u8>,
    /// Per key, per row: span of the value in `meta_buf`, or `None`.
    meta_spans: Vec<Vec<Option<(u32, u32)>>>,
    keys: Vec<String>,
}

impl DecodedBlock {
    pub fn line(&self, row: usize) -> &str {
        match self.line_spans.get(row) {
            // Validated as UTF-8 when decoded.
            Some(&(s, e)) => {
                std::str::from_utf8(&self.line_buf[s as usize..e as usize]).unwrap_or("")
            }
            None => "",
        }
    }

    /// Fills `out` with the row's metadata fields that `wanted` accepts, reusing its
    /// strings' allocations.
    pub fn metadata_into(
        &self,
        row: usize,
        wanted: &dyn Fn(&str) -> bool,
        out: &mut Vec<(String, String)>,
    ) {
        let mut n = 0;
        for (key, spans) in self.keys.iter().zip(&self.meta_spans) {
            if !wanted(key) {
                continue;
            }
            let Some(Some((s, e))) = spans.get(row) else {
                continue;
            };
            let value = std::str::from_utf8(&self.meta_buf[*s as usize..*e as usize]).unwrap_or("");
            if n < out.len() {
                let slot = &mut out[n];
                slot.0.clear();
                slot.0.push_str(key);
                slot.1.clear();
                slot.1.push_str(value);
            } else {
                out.push((key.clone(), value.to_string()));
            }
            n += 1;
        }
        out.truncate(n);
    }
}

/// Decodes a block's bytes (as read from `meta.offset`, `meta.len` long).
pub fn decode_block(
    meta: &BlockMeta,
    bytes: &[u8],
    cols: Columns,
) -> Result<DecodedBlock, StoreError> {
    if bytes.len() != meta.len as usize || crc32fast::hash(bytes) != meta.crc {
        return Err(StoreError::Corrupt(
            "logs segment: block checksum mismatch".into(),
        ));
    }
    let rows = meta.rows as usize;
    let (ts_z, rest) = bytes.split_at(meta.ts_len as usize);
    let (line_z, meta_z) = rest.split_at(meta.line_len as usize);
    let ts_raw = codec::zstd_decompress(ts_z, COLUMN_BYTES_MAX)?;
    let mut r = Reader::new(&ts_raw, "ts column");
    let scale = r.uvarint()?;
    if scale == 0 || scale > i64::MAX as u64 + 1 {
        return Err(StoreError::Corrupt("ts column: bad scale".into()));
    }
    let mut ts = Vec::with_capacity(rows);
    let mut prev = 0i64;
    for _ in 0..rows {
        prev = prev.wrapping_add(r.ivarint()?.wrapping_mul(scale as i64));
        ts.push(prev);
    }
    let mut block = DecodedBlock {
        ts,
        line_buf: Vec::new(),
        line_spans: Vec::new(),
        meta_buf: Vec::new(),
        meta_spans: Vec::new(),
        keys: meta.keys.clone(),
    };
    if cols.line {
        block.line_buf = codec::zstd_decompress(line_z, COLUMN_BYTES_MAX)?;
        let mut r = Reader::new(&block.line_buf, "line column");
        block.line_spans.reserve(rows);
        for _ in 0..rows {
            let (start, end) = r.str_span()?;
            block.line_spans.push((start as u32, end as u32));
        }
    }
    if cols.metadata {
        let raw = codec::zstd_decompress(meta_z, COLUMN_BYTES_MAX)?;
        let mut r = Reader::new(&raw, "metadata column");
        for _ in &meta.keys {
            let spans = metadata::decode_values(&mut r, rows, &mut block.meta_buf)?;
            block.meta_spans.push(spans);
        }
    }
    Ok(block)
}

/// Whether a block may hold rows a scan wants, judged from its metadata alone.
pub fn block_may_match(
    meta: &BlockMeta,
    selected: &[bool],
    streams: &[Labels],
    start_ns: i64,
    end_ns: i64,
    line_contains: &[String],
    metadata_eq: &[(String, String)],
) -> bool {
    if meta.max_ts < start_ns || meta.min_ts >= end_ns {
        return false;
    }
    let wanted =
        |r: &&Run| selected[r.stream as usize] && r.max_ts >= start_ns && r.min_ts < end_ns;
    if !meta.runs.iter().any(|r| wanted(&r)) {
        return false;
    }
    for needle in line_contains {
        for t in bloom::needle_tokens(needle) {
            if !meta.bloom.may_contain(bloom::hash_key(t)) {
                return false;
            }
        }
    }
    for (name, value) in metadata_eq {
        // A stream label of that name could satisfy the filter without any metadata.
        let label_possible = meta
            .runs
            .iter()
            .filter(wanted)
            .any(|r| streams[r.stream as usize].get(name).is_some());
        if !label_possible && !meta.bloom.may_contain(bloom::hash_pair(name, value)) {
            return false;
        }
    }
    true
}

/// Which of a segment's streams satisfy the matchers.
pub fn select_streams(streams: &[Labels], matchers: &[LabelMatcher]) -> Vec<bool> {
    streams
        .iter()
        .map(|l| sightline_model::matcher::matches_all(matchers, l))
        .collect()
}

/// Decodes every row of a whole segment file (for compaction and tests), interning metadata
/// names in `keys`.
pub fn decode_all(
    file: &[u8],
    keys: &mut KeyDict,
) -> Result<(SegmentFooter, Vec<StreamRows>), StoreError> {
    let (footer_bytes, crc) = super::footer_of_file(file, SEGMENT_MAGIC, TRAILER_MAGIC, WHAT)?;
    let footer = decode_footer(footer_bytes, crc)?;
    let mut streams: Vec<StreamRows> = footer
        .streams
        .iter()
        .map(|l| StreamRows {
            labels: l.clone(),
            rows: Rows::default(),
        })
        .collect();
    let cols = Columns {
        line: true,
        metadata: true,
    };
    let mut meta_buf = Vec::new();
    for b in &footer.blocks {
        let end = b.offset as usize + b.len as usize;
        let bytes = file
            .get(b.offset as usize..end)
            .ok_or_else(|| StoreError::Corrupt("logs segment: block past the end".into()))?;
        let block = decode_block(b, bytes, cols)?;
        let mut row = 0usize;
        for run in &b.runs {
            for _ in 0..run.rows {
                block.metadata_into(row, &|_| true, &mut meta_buf);
                let pairs = meta_buf.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                streams[run.stream as usize]
                    .rows
                    .push(block.ts[row], block.line(row), pairs, keys);
                row += 1;
            }
        }
    }
    Ok((footer, streams))
}

#[cfg(test)]
mod tests;

/// Where a segment's bytes go: what `sightline inspect segment` prints.
#[derive(Debug, Default)]
pub struct SegmentStats {
    pub file_bytes: u64,
    pub footer_bytes: u64,
    pub rows: u64,
    pub streams: u64,
    pub blocks: u64,
    pub ts_bytes: u64,
    pub line_bytes: u64,
    pub line_raw_bytes: u64,
    pub metadata_bytes: u64,
    pub bloom_bytes: u64,
    /// Per metadata name: (raw bytes, bytes when that name's column is compressed alone).
    pub metadata_by_name: BTreeMap<String, (u64, u64)>,
}

/// Measures a whole segment file; per-name metadata sizes are estimated by compressing each
/// name's values on their own.
pub fn inspect(file: &[u8]) -> Result<SegmentStats, StoreError> {
    let (footer_bytes, crc) = super::footer_of_file(file, SEGMENT_MAGIC, TRAILER_MAGIC, WHAT)?;
    let len = footer_bytes.len() as u32;
    let footer = decode_footer(footer_bytes, crc)?;
    let mut st = SegmentStats {
        file_bytes: file.len() as u64,
        footer_bytes: u64::from(len),
        rows: footer.rows,
        streams: footer.streams.len() as u64,
        blocks: footer.blocks.len() as u64,
        ..SegmentStats::default()
    };
    for b in &footer.blocks {
        st.ts_bytes += u64::from(b.ts_len);
        st.line_bytes += u64::from(b.line_len);
        st.line_raw_bytes += b.line_bytes;
        st.metadata_bytes += u64::from(b.meta_len);
        st.bloom_bytes += b.bloom.size_bytes() as u64;
        let bytes = file
            .get(b.offset as usize..b.offset as usize + b.len as usize)
            .ok_or_else(|| StoreError::Corrupt("logs segment: block past the end".into()))?;
        let block = decode_block(
            b,
            bytes,
            Columns {
                line: false,
                metadata: true,
            },
        )?;
        for (key, spans) in block.keys.iter().zip(&block.meta_spans) {
            let values: Vec<Option<&[u8]>> = spans
                .iter()
                .map(|s| s.map(|(a, b)| &block.meta_buf[a as usize..b as usize]))
                .collect();
            let mut raw = Vec::new();
            metadata::encode_values(&mut raw, &values);
            let z = codec::zstd_compress(&raw, ZSTD_LEVEL)?;
            let slot = st.metadata_by_name.entry(key.clone()).or_default();
            slot.0 += values.iter().flatten().map(|v| v.len() as u64).sum::<u64>();
            slot.1 += z.len() as u64;
        }
    }
    Ok(st)
}
