//! The store as a LogQL [`LogSource`] and a PromQL [`SeriesSource`]: the query engines are
//! synchronous (they are CPU work and run on a blocking thread), the store's segment reads
//! are async, so each read blocks on the runtime handle captured when the adapter was made.

use std::ops::ControlFlow;
use std::sync::Arc;

use sightline_model::SeriesSelection;
use sightline_model::log::{LogEntryRef, LogSelection};
use sightline_model::{LabelMatcher, Labels, TenantId};
use sightline_query::logql::source::{LogSource, SourceError};
use sightline_query::promql::{SeriesData, SeriesSource};
use sightline_store::Store;

pub struct StoreLogs {
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
}

impl StoreLogs {
    /// Must be called on the runtime; the adapter is then used from a blocking thread.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl LogSource for StoreLogs {
    fn scan_logs(
        &self,
        selection: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        self.runtime
            .block_on(self.store.logs().scan(selection, visit))
            .map_err(|e| SourceError(e.to_string()))
    }

    fn streams(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, SourceError> {
        Ok(self
            .store
            .logs()
            .streams(tenant, matchers, start_ns, end_ns))
    }
}

pub struct StoreSeries {
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
}

impl StoreSeries {
    /// Must be called on the runtime; the adapter is then used from a blocking thread.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl SeriesSource for StoreSeries {
    fn select(&self, sel: &SeriesSelection) -> Result<Vec<SeriesData>, SourceError> {
        let selected = self
            .runtime
            .block_on(self.store.tsdb().select(sel))
            .map_err(|e| SourceError(e.to_string()))?;
        Ok(selected
            .into_iter()
            .map(|s| SeriesData {
                labels: s.labels,
                samples: s.samples,
                stale_free: !s.may_hold_stale,
            })
            .collect())
    }
}
