//! What LogQL evaluation needs from storage, and nothing more.
//!
//! The evaluator asks a [`LogSource`] for the entries of the streams that match a selector in
//! a time range; the store implements it (see `crate::store_source`), and tests implement it
//! over a `Vec`. The hints in [`LogSelection`] let a source skip blocks (bloom filters,
//! columns it need not decompress); they never change the answer, because the evaluator
//! applies every filter itself.

use std::ops::ControlFlow;

pub use sightline_model::log::{LogEntryRef, LogSelection};
use sightline_model::{LabelMatcher, Labels, TenantId};

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Read access to stored logs.
pub trait LogSource: Send + Sync {
    /// Calls `visit` for every stored entry of a matching stream in `[start_ns, end_ns)`, in
    /// no particular order across streams or within one. `visit` returns
    /// `ControlFlow::Break(())` to stop the scan early.
    fn scan_logs(
        &self,
        selection: &LogSelection,
        visit: &mut dyn FnMut(&Labels, &LogEntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError>;

    /// The label sets of the streams matching `matchers` (all streams when empty) that hold
    /// an entry in `[start_ns, end_ns)`, each once.
    fn streams(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, SourceError>;
}
