//! The traces segment format (`SLTRAC01`): spans sorted by trace id, in columnar blocks.
//!
//! ```text
//! │ magic "SLTRAC01" │ block 0 │ … │ block n │ footer: zstd(postcard TraceFooter) │ trailer │
//! ```
//!
//! Spans are sorted by (trace id, start, span id) across the whole segment and a trace is
//! never split between blocks, so the blocks' trace id ranges are disjoint and ordered: a
//! trace is in at most one block of a segment, found by binary search over the footer's
//! `last_trace`, and a per-block bloom filter of its trace ids saves the read when the
//! segment does not have it. The footer also keeps per block what a search prunes by (start
//! range, longest duration, services and operations, whether a span failed) and the calls
//! between services its parent/child spans make, for `/api/dependencies`.
//!
//! A block is a sequence of columns, each `uvarint len │ zstd bytes`, in this order:
//!
//! | column | per | content |
//! |---|---|---|
//! | dict | block | `uvarint count`, then strings `uvarint len │ bytes`: every string below is an index here |
//! | resources | block | `uvarint count`, then attribute lists (below): the distinct resources |
//! | traces | trace | 16-byte trace id, `uvarint` span count |
//! | span_id | span | 8 bytes |
//! | parent | span | `uvarint`: 0 root, 1 a parent outside the block (next in `parent_ext`), `k + 2` the trace's `k`-th span |
//! | parent_ext | | 8 bytes each |
//! | start | span | `ivarint`: the first span of a trace from the block's `min_start_ns`, then from the previous span |
//! | duration | span | `uvarint` ns |
//! | names | span | `uvarint` service, name, status message, trace state, scope name, scope version (dict); `uvarint` resource |
//! | flags | span | one byte: kind (bits 0–2), status code (bits 3–4) |
//! | attrs | span | attribute list |
//! | events_links | span | `uvarint` events, each `ivarint` time from the span's start, name, attribute list; `uvarint` links, each 16 + 8 bytes of ids, trace state, attribute list |
//!
//! An attribute list is `uvarint` count, then per attribute the key (dict) and a value: a
//! tag byte, 0 empty, 1 string (dict), 2 false, 3 true, 4 int (`ivarint`), 5 double (8 bytes
//! LE), 6 bytes (`uvarint` len, bytes), 7 array (`uvarint` count, values), 8 kvlist (an
//! attribute list).

use std::collections::BTreeMap;
use std::ops::Range;

use foldhash::HashMap;
use serde::{Deserialize, Serialize};

use sightline_model::{
    AttrValue, Span, SpanEvent, SpanKind, SpanLink, SpanStatus, StatusCode, TraceId,
};

use super::bloom::{Bloom, hash_key};
use crate::StoreError;
use crate::codec::{self, Reader, put_bytes, put_ivarint, put_uvarint};

pub const SEGMENT_MAGIC: &[u8; 8] = b"SLTRAC01";
pub const TRAILER_MAGIC: &[u8; 8] = b"SLTRAEND";
const WHAT: &str = "traces segment";
/// A block is closed once it holds this many spans (a trace is never split).
pub const BLOCK_SPANS: usize = 4096;
const ZSTD_LEVEL: i32 = 3;
/// Largest decompressed column or footer accepted.
const DECODE_LIMIT: usize = 1 << 30;

/// What a segment's footer says of the segment and each block.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TraceFooter {
    pub tenant: String,
    pub spans: u64,
    pub min_start_ns: i64,
    pub max_start_ns: i64,
    /// Distinct services, sorted; blocks refer to them by index.
    pub services: Vec<String>,
    /// Distinct (service, span name, kind), sorted; blocks refer to them by index.
    pub operations: Vec<(u32, String, u8)>,
    pub blocks: Vec<BlockMeta>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BlockMeta {
    pub offset: u64,
    pub len: u32,
    pub spans: u32,
    pub traces: u32,
    pub first_trace: TraceId,
    pub last_trace: TraceId,
    pub min_start_ns: i64,
    pub max_start_ns: i64,
    pub max_duration_ns: i64,
    pub has_error: bool,
    /// Indexes into the footer's `services` and `operations`, sorted.
    pub services: Vec<u32>,
    pub operations: Vec<u32>,
    /// (parent service, child service, calls) of spans whose parent is in the block.
    pub edges: Vec<(u32, u32, u64)>,
    pub trace_bloom: Bloom,
}

impl BlockMeta {
    /// Whether trace `id` may be in this block.
    pub fn may_hold(&self, id: &TraceId) -> bool {
        *id >= self.first_trace
            && *id <= self.last_trace
            && self.trace_bloom.may_contain(hash_key(id))
    }
}

/// Writes a segment from traces given in trace id order.
pub struct SegmentWriter {
    out: Vec<u8>,
    footer: TraceFooter,
    services: BTreeMap<String, u32>,
    operations: BTreeMap<(u32, String, u8), u32>,
    /// The open block's spans, whole traces only.
    pending: Vec<Span>,
}

impl SegmentWriter {
    pub fn new(tenant: &str) -> Self {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(SEGMENT_MAGIC);
        Self {
            out,
            footer: TraceFooter {
                tenant: tenant.to_owned(),
                min_start_ns: i64::MAX,
                max_start_ns: i64::MIN,
                ..TraceFooter::default()
            },
            services: BTreeMap::new(),
            operations: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Adds the spans of one trace; ids must come in increasing order.
    pub fn push_trace(&mut self, spans: impl IntoIterator<Item = Span>) -> Result<(), StoreError> {
        if self.pending.len() >= BLOCK_SPANS {
            self.close_block()?;
        }
        let from = self.pending.len();
        self.pending.extend(spans);
        self.pending[from..].sort_by_key(|s| (s.start_ns, s.span_id));
        Ok(())
    }

    fn service_index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.services.get(name) {
            return i;
        }
        let i = self.services.len() as u32;
        self.services.insert(name.to_owned(), i);
        i
    }

    fn close_block(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let spans = std::mem::take(&mut self.pending);
        let (bytes, mut meta) = encode_block(&spans)?;
        // Footer-level indexes (services are renumbered by name at `finish`).
        let mut services = Vec::new();
        let mut operations = Vec::new();
        for s in &spans {
            let svc = self.service_index(&s.service);
            services.push(svc);
            let key = (svc, s.name.clone(), s.kind as u8);
            let next = self.operations.len() as u32;
            operations.push(*self.operations.entry(key).or_insert(next));
        }
        services.sort_unstable();
        services.dedup();
        operations.sort_unstable();
        operations.dedup();
        meta.services = services;
        meta.operations = operations;
        meta.edges = block_edges(&spans)
            .into_iter()
            .map(|((p, c), n)| (self.service_index(&p), self.service_index(&c), n))
            .collect();
        meta.offset = self.out.len() as u64;
        meta.len = u32::try_from(bytes.len())
            .map_err(|_| StoreError::Corrupt(format!("{WHAT}: block over 4 GiB")))?;
        self.out.extend_from_slice(&bytes);
        self.footer.spans += u64::from(meta.spans);
        self.footer.min_start_ns = self.footer.min_start_ns.min(meta.min_start_ns);
        self.footer.max_start_ns = self.footer.max_start_ns.max(meta.max_start_ns);
        self.footer.blocks.push(meta);
        Ok(())
    }

    /// Closes the last block and writes the footer; `None` when no span was pushed.
    pub fn finish(mut self) -> Result<Option<Vec<u8>>, StoreError> {
        self.close_block()?;
        if self.footer.blocks.is_empty() {
            return Ok(None);
        }
        // Renumber services and operations in sorted order, so footers read alike.
        let mut names: Vec<(String, u32)> =
            std::mem::take(&mut self.services).into_iter().collect();
        names.sort();
        let mut svc_map = vec![0u32; names.len()];
        for (new, (_, old)) in names.iter().enumerate() {
            svc_map[*old as usize] = new as u32;
        }
        let mut ops: Vec<((u32, String, u8), u32)> = std::mem::take(&mut self.operations)
            .into_iter()
            .map(|((s, n, k), old)| ((svc_map[s as usize], n, k), old))
            .collect();
        ops.sort();
        let mut op_map = vec![0u32; ops.len()];
        for (new, (_, old)) in ops.iter().enumerate() {
            op_map[*old as usize] = new as u32;
        }
        for b in &mut self.footer.blocks {
            remap(&mut b.services, &svc_map);
            remap(&mut b.operations, &op_map);
            for e in &mut b.edges {
                e.0 = svc_map[e.0 as usize];
                e.1 = svc_map[e.1 as usize];
            }
        }
        self.footer.services = names.into_iter().map(|(n, _)| n).collect();
        self.footer.operations = ops.into_iter().map(|(k, _)| k).collect();
        let raw = postcard::to_stdvec(&self.footer)
            .map_err(|e| StoreError::io("encode traces footer", e))?;
        super::write_footer(&mut self.out, &raw, TRAILER_MAGIC)?;
        Ok(Some(self.out))
    }
}

fn remap(ids: &mut [u32], map: &[u32]) {
    for id in ids.iter_mut() {
        *id = map[*id as usize];
    }
    ids.sort_unstable();
}

/// Calls between services within a block's spans: (parent service, child service) → count.
fn block_edges(spans: &[Span]) -> BTreeMap<(String, String), u64> {
    let mut by_id: HashMap<(TraceId, [u8; 8]), &str> = HashMap::default();
    for s in spans {
        by_id.insert((s.trace_id, s.span_id), &s.service);
    }
    let mut out = BTreeMap::new();
    for s in spans {
        let Some(parent) = s.parent_span_id else {
            continue;
        };
        if let Some(&ps) = by_id.get(&(s.trace_id, parent))
            && ps != s.service
        {
            *out.entry((ps.to_owned(), s.service.clone())).or_default() += 1;
        }
    }
    out
}

/// A block's string dictionary while it is written.
#[derive(Default)]
struct Dict {
    index: HashMap<String, u32>,
    out: Vec<u8>,
}

impl Dict {
    fn id(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return u64::from(i);
        }
        let i = self.index.len() as u32;
        self.index.insert(s.to_owned(), i);
        put_bytes(&mut self.out, s.as_bytes());
        u64::from(i)
    }
}

fn put_attrs(out: &mut Vec<u8>, dict: &mut Dict, attrs: &[(String, AttrValue)]) {
    put_uvarint(out, attrs.len() as u64);
    for (k, v) in attrs {
        put_uvarint(out, dict.id(k));
        put_value(out, dict, v);
    }
}

fn put_value(out: &mut Vec<u8>, dict: &mut Dict, v: &AttrValue) {
    match v {
        AttrValue::Empty => out.push(0),
        AttrValue::String(s) => {
            out.push(1);
            put_uvarint(out, dict.id(s));
        }
        AttrValue::Bool(b) => out.push(2 + u8::from(*b)),
        AttrValue::Int(n) => {
            out.push(4);
            put_ivarint(out, *n);
        }
        AttrValue::Double(f) => {
            out.push(5);
            out.extend_from_slice(&f.to_le_bytes());
        }
        AttrValue::Bytes(b) => {
            out.push(6);
            put_bytes(out, b);
        }
        AttrValue::Array(items) => {
            out.push(7);
            put_uvarint(out, items.len() as u64);
            for item in items {
                put_value(out, dict, item);
            }
        }
        AttrValue::KvList(kv) => {
            out.push(8);
            put_attrs(out, dict, kv);
        }
    }
}

/// The columns of a block, in file order.
#[derive(Default)]
struct Columns {
    resources: Vec<u8>,
    traces: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    parent_ext: Vec<u8>,
    start: Vec<u8>,
    duration: Vec<u8>,
    names: Vec<u8>,
    flags: Vec<u8>,
    attrs: Vec<u8>,
    events_links: Vec<u8>,
}

/// Encodes whole traces, sorted by trace id and then start, as one block; the meta's
/// footer-level fields (offset, services, operations, edges) are the caller's to fill.
fn encode_block(spans: &[Span]) -> Result<(Vec<u8>, BlockMeta), StoreError> {
    let mut dict = Dict::default();
    let mut c = Columns::default();
    let mut resources: HashMap<Vec<u8>, u64> = HashMap::default();
    let mut resource_count = 0u64;
    let mut meta = BlockMeta {
        spans: spans.len() as u32,
        first_trace: spans[0].trace_id,
        last_trace: spans[spans.len() - 1].trace_id,
        min_start_ns: spans.iter().map(|s| s.start_ns).min().unwrap_or(0),
        max_start_ns: spans.iter().map(|s| s.start_ns).max().unwrap_or(0),
        ..BlockMeta::default()
    };
    let mut trace_hashes = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let trace = &spans[i..];
        let n = trace
            .iter()
            .take_while(|s| s.trace_id == spans[i].trace_id)
            .count();
        let trace = &trace[..n];
        c.traces.extend_from_slice(&spans[i].trace_id);
        put_uvarint(&mut c.traces, n as u64);
        trace_hashes.push(hash_key(&spans[i].trace_id));
        let local: HashMap<[u8; 8], usize> = trace
            .iter()
            .enumerate()
            .map(|(k, s)| (s.span_id, k))
            .collect();
        let mut prev_start = meta.min_start_ns;
        for s in trace {
            c.span_id.extend_from_slice(&s.span_id);
            match s.parent_span_id {
                None => put_uvarint(&mut c.parent, 0),
                Some(p) => match local.get(&p) {
                    Some(&k) => put_uvarint(&mut c.parent, k as u64 + 2),
                    None => {
                        put_uvarint(&mut c.parent, 1);
                        c.parent_ext.extend_from_slice(&p);
                    }
                },
            }
            put_ivarint(&mut c.start, s.start_ns.wrapping_sub(prev_start));
            prev_start = s.start_ns;
            put_uvarint(&mut c.duration, s.duration_ns() as u64);
            for text in [
                &s.service,
                &s.name,
                &s.status.message,
                &s.trace_state,
                &s.scope_name,
                &s.scope_version,
            ] {
                put_uvarint(&mut c.names, dict.id(text));
            }
            let mut encoded = Vec::new();
            put_attrs(&mut encoded, &mut dict, &s.resource);
            let next = resource_count;
            let r = *resources.entry(encoded.clone()).or_insert_with(|| {
                c.resources.extend_from_slice(&encoded);
                resource_count += 1;
                next
            });
            put_uvarint(&mut c.names, r);
            c.flags.push(s.kind as u8 | (s.status.code as u8) << 3);
            put_attrs(&mut c.attrs, &mut dict, &s.attributes);
            put_uvarint(&mut c.events_links, s.events.len() as u64);
            for e in &s.events {
                put_ivarint(&mut c.events_links, e.time_ns.wrapping_sub(s.start_ns));
                put_uvarint(&mut c.events_links, dict.id(&e.name));
                put_attrs(&mut c.events_links, &mut dict, &e.attributes);
            }
            put_uvarint(&mut c.events_links, s.links.len() as u64);
            for l in &s.links {
                c.events_links.extend_from_slice(&l.trace_id);
                c.events_links.extend_from_slice(&l.span_id);
                put_uvarint(&mut c.events_links, dict.id(&l.trace_state));
                put_attrs(&mut c.events_links, &mut dict, &l.attributes);
            }
            meta.max_duration_ns = meta.max_duration_ns.max(s.duration_ns());
            meta.has_error |= s.is_error();
        }
        meta.traces += 1;
        i += n;
    }
    meta.trace_bloom = Bloom::from_hashes(&trace_hashes);
    let mut dict_col = Vec::with_capacity(dict.out.len() + 8);
    put_uvarint(&mut dict_col, dict.index.len() as u64);
    dict_col.extend_from_slice(&dict.out);
    let mut resources_col = Vec::with_capacity(c.resources.len() + 8);
    put_uvarint(&mut resources_col, resource_count);
    resources_col.extend_from_slice(&c.resources);
    let mut out = Vec::new();
    for col in [
        &dict_col,
        &resources_col,
        &c.traces,
        &c.span_id,
        &c.parent,
        &c.parent_ext,
        &c.start,
        &c.duration,
        &c.names,
        &c.flags,
        &c.attrs,
        &c.events_links,
    ] {
        let z = codec::zstd_compress(col, ZSTD_LEVEL)?;
        put_bytes(&mut out, &z);
    }
    Ok((out, meta))
}

/// A decoded block's columns, read span by span.
struct BlockColumns {
    dict: Vec<String>,
    resources: Vec<Vec<(String, AttrValue)>>,
    cols: Vec<Vec<u8>>,
}

const COL_TRACES: usize = 0;
const COL_SPAN_ID: usize = 1;
const COL_PARENT: usize = 2;
const COL_PARENT_EXT: usize = 3;
const COL_START: usize = 4;
const COL_DURATION: usize = 5;
const COL_NAMES: usize = 6;
const COL_FLAGS: usize = 7;
const COL_ATTRS: usize = 8;
const COL_EVENTS_LINKS: usize = 9;
const DATA_COLUMNS: usize = 10;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{WHAT}: {what}"))
}

fn decode_columns(bytes: &[u8]) -> Result<BlockColumns, StoreError> {
    let mut r = Reader::new(bytes, WHAT);
    let mut raw = Vec::with_capacity(DATA_COLUMNS + 2);
    for _ in 0..DATA_COLUMNS + 2 {
        let n = r.len()?;
        raw.push(codec::zstd_decompress(r.bytes(n)?, DECODE_LIMIT)?);
    }
    let mut it = raw.into_iter();
    let dict_col = it.next().unwrap_or_default();
    let resources_col = it.next().unwrap_or_default();
    let mut d = Reader::new(&dict_col, WHAT);
    let count = d.len()?;
    let mut dict = Vec::with_capacity(count);
    for _ in 0..count {
        dict.push(d.str()?.to_owned());
    }
    let mut rr = Reader::new(&resources_col, WHAT);
    let count = rr.len()?;
    let mut resources = Vec::with_capacity(count);
    for _ in 0..count {
        resources.push(read_attrs(&mut rr, &dict)?);
    }
    Ok(BlockColumns {
        dict,
        resources,
        cols: it.collect(),
    })
}

fn dict_str<'a>(dict: &'a [String], r: &mut Reader<'_>) -> Result<&'a str, StoreError> {
    let i = r.uvarint()? as usize;
    dict.get(i)
        .map(String::as_str)
        .ok_or_else(|| corrupt("string index out of range"))
}

fn read_attrs(r: &mut Reader<'_>, dict: &[String]) -> Result<Vec<(String, AttrValue)>, StoreError> {
    let n = r.len()?;
    let mut out = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        let k = dict_str(dict, r)?.to_owned();
        out.push((k, read_value(r, dict, 0)?));
    }
    Ok(out)
}

fn read_value(r: &mut Reader<'_>, dict: &[String], depth: usize) -> Result<AttrValue, StoreError> {
    if depth > 64 {
        return Err(corrupt("attribute nesting too deep"));
    }
    let tag = r.bytes(1)?[0];
    Ok(match tag {
        0 => AttrValue::Empty,
        1 => AttrValue::String(dict_str(dict, r)?.to_owned()),
        2 => AttrValue::Bool(false),
        3 => AttrValue::Bool(true),
        4 => AttrValue::Int(r.ivarint()?),
        5 => {
            let b = r.bytes(8)?;
            AttrValue::Double(f64::from_le_bytes(
                b.try_into().map_err(|_| corrupt("double"))?,
            ))
        }
        6 => {
            let n = r.len()?;
            AttrValue::Bytes(r.bytes(n)?.to_vec())
        }
        7 => {
            let n = r.len()?;
            let mut items = Vec::with_capacity(n.min(256));
            for _ in 0..n {
                items.push(read_value(r, dict, depth + 1)?);
            }
            AttrValue::Array(items)
        }
        8 => {
            let n = r.len()?;
            let mut kv = Vec::with_capacity(n.min(256));
            for _ in 0..n {
                let k = dict_str(dict, r)?.to_owned();
                kv.push((k, read_value(r, dict, depth + 1)?));
            }
            AttrValue::KvList(kv)
        }
        _ => return Err(corrupt("unknown attribute tag")),
    })
}

fn id_bytes<const N: usize>(r: &mut Reader<'_>) -> Result<[u8; N], StoreError> {
    r.bytes(N)?.try_into().map_err(|_| corrupt("id"))
}

/// The summary of one span, for searches that need no attribute.
#[derive(Clone, Copy, Debug)]
pub struct SpanSummary<'a> {
    pub trace_id: TraceId,
    pub service: &'a str,
    pub name: &'a str,
    pub start_ns: i64,
    pub duration_ns: i64,
    pub status: StatusCode,
}

/// Decodes a block's spans. `want` picks the traces to materialise by id (`None`: all);
/// `summary` sees every span of the block, materialised or not.
pub fn decode_block(
    meta: &BlockMeta,
    bytes: &[u8],
    want: Option<&dyn Fn(&TraceId) -> bool>,
    summary: &mut dyn FnMut(&SpanSummary<'_>),
) -> Result<Vec<Span>, StoreError> {
    let b = decode_columns(bytes)?;
    let rd = |i: usize| Reader::new(&b.cols[i], WHAT);
    let (mut traces, mut span_id, mut parent, mut parent_ext) = (
        rd(COL_TRACES),
        rd(COL_SPAN_ID),
        rd(COL_PARENT),
        rd(COL_PARENT_EXT),
    );
    let (mut start, mut duration, mut names, mut flags) = (
        rd(COL_START),
        rd(COL_DURATION),
        rd(COL_NAMES),
        rd(COL_FLAGS),
    );
    let (mut attrs, mut events_links) = (rd(COL_ATTRS), rd(COL_EVENTS_LINKS));
    let mut out = Vec::new();
    for _ in 0..meta.traces {
        let trace_id: TraceId = id_bytes(&mut traces)?;
        let n = traces.uvarint()?;
        if n > u64::from(meta.spans) {
            return Err(corrupt("trace span count past the block's"));
        }
        let n = n as usize;
        let materialise = want.is_none_or(|w| w(&trace_id));
        let mut ids: Vec<[u8; 8]> = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            ids.push(id_bytes(&mut span_id)?);
        }
        let mut prev_start = meta.min_start_ns;
        for &sid in &ids {
            let parent_span_id = match parent.uvarint()? {
                0 => None,
                1 => Some(id_bytes(&mut parent_ext)?),
                k => Some(
                    *ids.get(k as usize - 2)
                        .ok_or_else(|| corrupt("parent index"))?,
                ),
            };
            let start_ns = prev_start.wrapping_add(start.ivarint()?);
            prev_start = start_ns;
            let duration_ns = duration.uvarint()? as i64;
            let service = dict_str(&b.dict, &mut names)?;
            let name = dict_str(&b.dict, &mut names)?;
            let status_message = dict_str(&b.dict, &mut names)?;
            let trace_state = dict_str(&b.dict, &mut names)?;
            let scope_name = dict_str(&b.dict, &mut names)?;
            let scope_version = dict_str(&b.dict, &mut names)?;
            let resource = names.uvarint()? as usize;
            let f = flags.bytes(1)?[0];
            let status = status_of(f >> 3);
            summary(&SpanSummary {
                trace_id,
                service,
                name,
                start_ns,
                duration_ns,
                status,
            });
            let attributes = read_attrs(&mut attrs, &b.dict)?;
            let (events, links) = read_events_links(&mut events_links, &b.dict, start_ns)?;
            if !materialise {
                continue;
            }
            out.push(Span {
                trace_id,
                span_id: sid,
                parent_span_id,
                trace_state: trace_state.to_owned(),
                name: name.to_owned(),
                kind: kind_of(f & 7),
                start_ns,
                end_ns: start_ns.saturating_add(duration_ns),
                status: SpanStatus {
                    code: status,
                    message: status_message.to_owned(),
                },
                service: service.to_owned(),
                resource: b
                    .resources
                    .get(resource)
                    .cloned()
                    .ok_or_else(|| corrupt("resource index"))?,
                scope_name: scope_name.to_owned(),
                scope_version: scope_version.to_owned(),
                attributes,
                events,
                links,
            });
        }
    }
    Ok(out)
}

type EventsLinks = (Vec<SpanEvent>, Vec<SpanLink>);

fn read_events_links(
    r: &mut Reader<'_>,
    dict: &[String],
    start_ns: i64,
) -> Result<EventsLinks, StoreError> {
    let n = r.len()?;
    let mut events = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let time_ns = start_ns.wrapping_add(r.ivarint()?);
        let name = dict_str(dict, r)?.to_owned();
        let attributes = read_attrs(r, dict)?;
        events.push(SpanEvent {
            time_ns,
            name,
            attributes,
        });
    }
    let n = r.len()?;
    let mut links = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let trace_id = id_bytes(r)?;
        let span_id = id_bytes(r)?;
        let trace_state = dict_str(dict, r)?.to_owned();
        let attributes = read_attrs(r, dict)?;
        links.push(SpanLink {
            trace_id,
            span_id,
            trace_state,
            attributes,
        });
    }
    Ok((events, links))
}

fn kind_of(bits: u8) -> SpanKind {
    match bits {
        1 => SpanKind::Internal,
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        4 => SpanKind::Producer,
        5 => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn status_of(bits: u8) -> StatusCode {
    match bits & 3 {
        1 => StatusCode::Ok,
        2 => StatusCode::Error,
        _ => StatusCode::Unset,
    }
}

/// Reads and checks a footer from its bytes and CRC.
pub fn decode_footer(bytes: &[u8], crc: u32) -> Result<TraceFooter, StoreError> {
    let raw = super::decode_footer_bytes(bytes, crc, DECODE_LIMIT, WHAT)?;
    postcard::from_bytes(&raw).map_err(|e| corrupt(&format!("footer: {e}")))
}

/// The footer of a whole segment file held in memory.
pub fn footer_of_file(file: &[u8]) -> Result<TraceFooter, StoreError> {
    let (bytes, crc) = super::footer_of_file(file, SEGMENT_MAGIC, TRAILER_MAGIC, WHAT)?;
    decode_footer(bytes, crc)
}

/// The byte range of block `i` in its file.
pub fn block_range(meta: &BlockMeta) -> Range<u64> {
    meta.offset..meta.offset + u64::from(meta.len)
}

/// The index of the only block of a footer that may hold trace `id`.
pub fn block_for(footer: &TraceFooter, id: &TraceId) -> Option<usize> {
    let i = footer.blocks.partition_point(|b| b.last_trace < *id);
    footer.blocks.get(i).filter(|b| b.may_hold(id)).map(|_| i)
}

#[cfg(test)]
pub(crate) mod tests;
