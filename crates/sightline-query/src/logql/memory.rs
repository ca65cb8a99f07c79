//! [`MemorySource`]: a `LogSource` over records held in a `Vec`.
//!
//! It is the reference implementation of the [`LogSource`] contract, used by the LogQL tests
//! and available to the store team for property tests (store answers must equal this one's).
//! It applies every hint of a [`LogSelection`] as aggressively as the contract allows (skips
//! entries a hint rules out, passes `""` and `&[]` when lines or metadata are not needed), so
//! a wrong hint from the evaluator shows up as a wrong test result. It also records each
//! selection it was asked for, so tests can assert on the hints themselves.

use std::ops::ControlFlow;
use std::sync::Mutex;

use sightline_model::matcher::matches_all;
use sightline_model::{LabelMatcher, Labels, LogRecord, TenantId};

use super::source::{LogEntryRef, LogSelection, LogSource, SourceError};

#[derive(Debug, Default)]
pub struct MemorySource {
    records: Vec<(TenantId, LogRecord)>,
    selections: Mutex<Vec<LogSelection>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// A source holding `records`, all of `tenant`.
    pub fn with_records(tenant: &TenantId, records: impl IntoIterator<Item = LogRecord>) -> Self {
        let mut source = Self::new();
        for r in records {
            source.push(tenant.clone(), r);
        }
        source
    }

    pub fn push(&mut self, tenant: TenantId, record: LogRecord) {
        self.records.push((tenant, record));
    }

    /// Every selection scanned so far, oldest first.
    pub fn selections(&self) -> Vec<LogSelection> {
        self.selections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn selected<'a>(
        &'a self,
        tenant: &'a TenantId,
        matchers: &'a [LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> impl Iterator<Item = &'a LogRecord> + 'a {
        self.records
            .iter()
            .filter(move |(t, r)| {
                t == tenant
                    && r.timestamp_ns >= start_ns
                    && r.timestamp_ns < end_ns
                    && matches_all(matchers, &r.labels)
            })
            .map(|(_, r)| r)
    }
}

/// Whether the hints of `selection` allow skipping `record`.
fn hinted_out(selection: &LogSelection, record: &LogRecord) -> bool {
    let lacks_text = selection
        .line_contains
        .iter()
        .any(|text| !record.line.contains(text.as_str()));
    let lacks_field = selection.metadata_eq.iter().any(|(name, value)| {
        record.labels.get(name) != Some(value.as_str())
            && record.metadata_value(name) != Some(value.as_str())
    });
    lacks_text || lacks_field
}

impl LogSource for MemorySource {
    fn scan_logs(
        &self,
        selection: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        self.selections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(selection.clone());
        let records = self.selected(
            &selection.tenant,
            &selection.matchers,
            selection.start_ns,
            selection.end_ns,
        );
        for record in records {
            if hinted_out(selection, record) {
                continue;
            }
            let metadata = if selection.need_metadata {
                record.metadata.to_vec()
            } else {
                Vec::new()
            };
            let entry = LogEntryRef {
                timestamp_ns: record.timestamp_ns,
                line: if selection.need_line {
                    &record.line
                } else {
                    ""
                },
                metadata: &metadata,
            };
            if visit(&record.labels, &entry).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn streams(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, SourceError> {
        let mut streams: Vec<Labels> = self
            .selected(tenant, matchers, start_ns, end_ns)
            .map(|r| (*r.labels).clone())
            .collect();
        streams.sort();
        streams.dedup();
        Ok(streams)
    }
}
