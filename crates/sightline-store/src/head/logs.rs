//! The logs head: per tenant, per stream, rows in arrival order.
//!
//! Invariants: a stream's label set appears once per tenant; `raw_bytes` is the sum of
//! [`Row::raw_bytes`] of every row held, and is what triggers a flush. Rows are not sorted
//! until they are flushed, so appends are O(1).

use std::collections::BTreeMap;

use foldhash::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use sightline_model::log::{LogEntryRef, LogSelection};
use sightline_model::matcher::matches_all;
use sightline_model::{LabelMatcher, Labels, LogRecord, TenantId};

use crate::segment::logs::{KeyDict, Row, Rows, StreamRef, StreamRows};
use crate::segment::partition_of;

#[derive(Default)]
pub struct LogHead {
    tenants: HashMap<TenantId, TenantHead>,
    pub raw_bytes: usize,
    pub rows: u64,
}

#[derive(Default)]
struct TenantHead {
    index: HashMap<Labels, usize>,
    streams: Vec<StreamRows>,
    keys: KeyDict,
}

impl LogHead {
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn append(&mut self, tenant: &TenantId, records: &[LogRecord]) {
        let head = match self.tenants.get_mut(tenant) {
            Some(h) => h,
            None => self.tenants.entry(tenant.clone()).or_default(),
        };
        // Records of one stream share their labels' allocation: the stream of a set seen
        // before in this batch is found by address, without hashing the labels again.
        let mut by_address: HashMap<*const Labels, usize> = HashMap::default();
        for r in records {
            let address = Arc::as_ptr(&r.labels);
            let idx = match by_address.get(&address) {
                Some(&i) => i,
                None => {
                    let i = match head.index.get(r.labels.as_ref()) {
                        Some(&i) => i,
                        None => {
                            head.streams.push(StreamRows {
                                labels: (*r.labels).clone(),
                                rows: Rows::default(),
                            });
                            head.index
                                .insert((*r.labels).clone(), head.streams.len() - 1);
                            head.streams.len() - 1
                        }
                    };
                    by_address.insert(address, i);
                    i
                }
            };
            self.raw_bytes += head.streams[idx].rows.push(
                r.timestamp_ns,
                &r.line,
                r.metadata.iter(),
                &mut head.keys,
            );
            self.rows += 1;
        }
    }

    /// Visits the rows of matching streams in the selection's time range.
    pub fn scan(
        &self,
        sel: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let Some(head) = self.tenants.get(&sel.tenant) else {
            return ControlFlow::Continue(());
        };
        let mut metadata = Vec::new();
        for stream in &head.streams {
            if !matches_all(&sel.matchers, &stream.labels) {
                continue;
            }
            for row in stream.rows.iter() {
                if row.ts_ns < sel.start_ns || row.ts_ns >= sel.end_ns {
                    continue;
                }
                if sel.need_metadata {
                    row.metadata_into(&head.keys, &|k| sel.wants_metadata_field(k), &mut metadata);
                }
                let entry = LogEntryRef {
                    timestamp_ns: row.ts_ns,
                    line: if sel.need_line { row.line() } else { "" },
                    metadata: &metadata,
                };
                visit(&stream.labels, &entry)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Adds the label sets of matching streams with a row in `[start_ns, end_ns)` to `out`.
    pub fn streams_into(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
        out: &mut Vec<Labels>,
    ) {
        let Some(head) = self.tenants.get(tenant) else {
            return;
        };
        for s in &head.streams {
            if matches_all(matchers, &s.labels)
                && s.rows
                    .iter()
                    .any(|r| r.ts_ns >= start_ns && r.ts_ns < end_ns)
            {
                out.push(s.labels.clone());
            }
        }
    }

    /// Adds the rows and line bytes of matching streams in `[start_ns, end_ns)` to `out`,
    /// and their label sets to `streams`.
    pub fn stats_into(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
        streams: &mut std::collections::HashSet<Labels>,
        out: &mut crate::logs::IndexStats,
    ) {
        let Some(head) = self.tenants.get(tenant) else {
            return;
        };
        for s in head
            .streams
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
        {
            let mut any = false;
            for row in s
                .rows
                .iter()
                .filter(|r| r.ts_ns >= start_ns && r.ts_ns < end_ns)
            {
                any = true;
                out.entries += 1;
                out.bytes += row.line().len() as u64;
            }
            if any {
                streams.insert(s.labels.clone());
            }
        }
    }

    /// Splits the head into what each segment of a flush holds: per tenant and day
    /// partition, streams sorted by labels, rows by time; borrowed, not copied.
    pub fn partitions(&self) -> BTreeMap<(TenantId, i64), Vec<StreamRef<'_>>> {
        type Streams<'a> = BTreeMap<&'a Labels, Vec<Row<'a>>>;
        let mut out: BTreeMap<(TenantId, i64), (&KeyDict, Streams<'_>)> = BTreeMap::new();
        for (tenant, head) in &self.tenants {
            let mut days: BTreeMap<i64, Streams<'_>> = BTreeMap::new();
            for s in &head.streams {
                let mut by_day: BTreeMap<i64, Vec<Row<'_>>> = BTreeMap::new();
                for row in s.rows.iter() {
                    by_day.entry(partition_of(row.ts_ns)).or_default().push(row);
                }
                for (day, rows) in by_day {
                    days.entry(day).or_default().insert(&s.labels, rows);
                }
            }
            for (day, streams) in days {
                out.insert((tenant.clone(), day), (&head.keys, streams));
            }
        }
        out.into_iter()
            .map(|(key, (keys, streams))| {
                let streams = streams
                    .into_iter()
                    .map(|(labels, mut rows)| {
                        rows.sort_by_key(|r| r.ts_ns);
                        StreamRef { labels, rows, keys }
                    })
                    .collect();
                (key, streams)
            })
            .collect()
    }
}

impl crate::signal::Head for LogHead {
    fn is_empty(&self) -> bool {
        LogHead::is_empty(self)
    }

    fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }
}
