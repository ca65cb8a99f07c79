//! The traces head: per tenant, spans in arrival order and an index from trace id to them.
//!
//! Invariants: every span of `spans` is in `by_trace` under its trace id, in arrival order;
//! `operations` holds the (service, name, kind) of every span held; `raw_bytes` is the sum
//! of [`span_raw_bytes`] of every span held, and is what triggers a flush.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use sightline_model::{Span, SpanKind, TenantId, TraceId, TraceQuery};

use crate::segment::partition_of;

/// An operation: a span name of a service, with the kind its spans had.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
}

#[derive(Default)]
pub struct TraceHead {
    tenants: HashMap<TenantId, TenantSpans>,
    pub raw_bytes: usize,
    pub spans: u64,
}

#[derive(Default)]
struct TenantSpans {
    spans: Vec<Span>,
    by_trace: HashMap<TraceId, Vec<u32>>,
    /// Service → span name → the kinds seen, as bits of [`kind_bit`].
    operations: HashMap<String, HashMap<String, u8>>,
}

/// The bit of a kind in an operation's kind set.
pub fn kind_bit(kind: SpanKind) -> u8 {
    1 << kind as u8
}

/// The kinds of a kind set.
pub fn kinds_of(bits: u8) -> impl Iterator<Item = SpanKind> {
    [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ]
    .into_iter()
    .filter(move |k| bits & kind_bit(*k) != 0)
}

/// Adds a span's operation to a service → name → kinds map, allocating only for a new one.
fn note_operation(ops: &mut HashMap<String, HashMap<String, u8>>, s: &Span) {
    let names = match ops.get_mut(&s.service) {
        Some(n) => n,
        None => ops.entry(s.service.clone()).or_default(),
    };
    match names.get_mut(&s.name) {
        Some(bits) => *bits |= kind_bit(s.kind),
        None => {
            names.insert(s.name.clone(), kind_bit(s.kind));
        }
    }
}

/// What a span costs the head, roughly: its strings and a fixed part for the rest.
pub fn span_raw_bytes(s: &Span) -> usize {
    fn attrs(a: &[(String, sightline_model::AttrValue)]) -> usize {
        a.iter().map(|(k, v)| k.len() + 16 + value_bytes(v)).sum()
    }
    fn value_bytes(v: &sightline_model::AttrValue) -> usize {
        use sightline_model::AttrValue as V;
        match v {
            V::String(s) => s.len(),
            V::Bytes(b) => b.len(),
            V::Array(items) => items.iter().map(value_bytes).sum(),
            V::KvList(kv) => attrs(kv),
            _ => 8,
        }
    }
    128 + s.name.len()
        + s.service.len()
        + s.trace_state.len()
        + s.status.message.len()
        + attrs(&s.attributes)
        // The resource is shared by the spans of a request in the segments, so counts little.
        + 16 * s.resource.len()
        + s.events
            .iter()
            .map(|e| 24 + e.name.len() + attrs(&e.attributes))
            .sum::<usize>()
        + s.links.iter().map(|l| 48 + attrs(&l.attributes)).sum::<usize>()
}

impl TraceHead {
    pub fn is_empty(&self) -> bool {
        self.spans == 0
    }

    pub fn append(&mut self, tenant: &TenantId, spans: &[Span]) {
        let head = match self.tenants.get_mut(tenant) {
            Some(h) => h,
            None => self.tenants.entry(tenant.clone()).or_default(),
        };
        for s in spans {
            let idx = head.spans.len() as u32;
            head.by_trace.entry(s.trace_id).or_default().push(idx);
            note_operation(&mut head.operations, s);
            self.raw_bytes += span_raw_bytes(s);
            self.spans += 1;
            head.spans.push(s.clone());
        }
    }

    /// Appends the spans of trace `id` to `out`.
    pub fn trace_into(&self, tenant: &TenantId, id: &TraceId, out: &mut Vec<Span>) {
        let Some(head) = self.tenants.get(tenant) else {
            return;
        };
        if let Some(idx) = head.by_trace.get(id) {
            out.extend(idx.iter().map(|&i| head.spans[i as usize].clone()));
        }
    }

    /// Records, for each trace with a span matching `q`, the latest start of its matching
    /// spans.
    pub fn search_into(&self, q: &TraceQuery, out: &mut HashMap<TraceId, i64>) {
        let Some(head) = self.tenants.get(&q.tenant) else {
            return;
        };
        for s in head.spans.iter().filter(|s| q.matches(s)) {
            let latest = out.entry(s.trace_id).or_insert(s.start_ns);
            *latest = (*latest).max(s.start_ns);
        }
    }

    pub fn operations_into(&self, tenant: &TenantId, out: &mut BTreeSet<Operation>) {
        if let Some(head) = self.tenants.get(tenant) {
            for (service, names) in &head.operations {
                for (name, bits) in names {
                    out.extend(kinds_of(*bits).map(|kind| Operation {
                        service: service.clone(),
                        name: name.clone(),
                        kind,
                    }));
                }
            }
        }
    }

    /// Counts the calls between services: spans whose parent (held here too) is of
    /// another service, started in `[start_ns, end_ns)`.
    pub fn dependencies_into(
        &self,
        tenant: &TenantId,
        start_ns: i64,
        end_ns: i64,
        out: &mut BTreeMap<(String, String), u64>,
    ) {
        let Some(head) = self.tenants.get(tenant) else {
            return;
        };
        for s in &head.spans {
            let Some(parent_id) = s.parent_span_id else {
                continue;
            };
            if s.start_ns < start_ns || s.start_ns >= end_ns {
                continue;
            }
            let parent = head.by_trace[&s.trace_id]
                .iter()
                .map(|&i| &head.spans[i as usize])
                .find(|p| p.span_id == parent_id);
            if let Some(p) = parent.filter(|p| p.service != s.service) {
                *out.entry((p.service.clone(), s.service.clone()))
                    .or_default() += 1;
            }
        }
    }

    /// The spans of each tenant and day (of their start), sorted by trace id and then
    /// start, ready to be written as segments.
    pub fn partitions(&self) -> Vec<((TenantId, i64), Vec<&Span>)> {
        let mut parts: BTreeMap<(TenantId, i64), Vec<&Span>> = BTreeMap::new();
        for (tenant, head) in &self.tenants {
            for s in &head.spans {
                parts
                    .entry((tenant.clone(), partition_of(s.start_ns)))
                    .or_default()
                    .push(s);
            }
        }
        let mut out: Vec<_> = parts.into_iter().collect();
        for (_, spans) in &mut out {
            spans.sort_by(|a, b| {
                (a.trace_id, a.start_ns, a.span_id).cmp(&(b.trace_id, b.start_ns, b.span_id))
            });
        }
        out
    }
}

impl crate::signal::Head for TraceHead {
    fn is_empty(&self) -> bool {
        TraceHead::is_empty(self)
    }

    fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }
}
