//! What every signal's store shares: one lock over its active head, the heads frozen by WAL
//! rotations and waiting to be written, and its loaded segments.
//!
//! Invariants: a frozen head holds exactly the records of the WAL files up to its `seq`;
//! a frozen head leaves `frozen` in the same write-locked step as its segments join
//! `segments` ([`SignalState::swap_flushed`]), so a reader holding the lock sees every
//! record once.

use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;

use sightline_model::TenantId;

use crate::StoreError;
use crate::segment::SegmentId;

/// What the shared machinery needs of a signal's in-memory head.
pub trait Head: Default {
    fn is_empty(&self) -> bool;
    /// The bytes that count towards flushing and the heads' memory bound.
    fn raw_bytes(&self) -> usize;
}

/// A head frozen by a WAL rotation, waiting to be written as segments.
pub struct Frozen<H> {
    /// The WAL sequence sealed when it froze: its segments are named `seq-seq`.
    pub seq: u64,
    pub head: H,
}

pub struct SignalState<H, S> {
    pub active: H,
    pub frozen: Vec<Arc<Frozen<H>>>,
    pub segments: Vec<Arc<S>>,
}

impl<H: Default, S> Default for SignalState<H, S> {
    fn default() -> Self {
        Self {
            active: H::default(),
            frozen: Vec::new(),
            segments: Vec::new(),
        }
    }
}

impl<H: Head, S> SignalState<H, S> {
    /// Freezes the active head as of WAL sequence `seq` (called at a rotation).
    pub fn freeze(&mut self, seq: u64) {
        if !self.active.is_empty() {
            let head = std::mem::take(&mut self.active);
            self.frozen.push(Arc::new(Frozen { seq, head }));
        }
    }

    /// The frozen heads, oldest first, then the active one.
    pub fn heads(&self) -> impl Iterator<Item = &H> {
        self.frozen
            .iter()
            .map(|f| &f.head)
            .chain(std::iter::once(&self.active))
    }

    pub fn head_bytes(&self) -> usize {
        self.heads().map(Head::raw_bytes).sum()
    }

    pub fn has_unflushed(&self) -> bool {
        !self.active.is_empty() || !self.frozen.is_empty()
    }

    /// Swaps a written frozen head for its segments.
    pub fn swap_flushed(&mut self, flushed: &Arc<Frozen<H>>, segments: Vec<Arc<S>>) {
        self.frozen.retain(|x| !Arc::ptr_eq(x, flushed));
        self.segments.extend(segments);
    }
}

/// Write access to a state, whether or not a panic poisoned the lock (the state is
/// consistent at every await point, so a poisoned lock's data is still good).
pub fn write<T>(state: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    state.write().unwrap_or_else(|p| p.into_inner())
}

/// Read access, as [`write`].
pub fn read<T>(state: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    state.read().unwrap_or_else(|p| p.into_inner())
}

/// The id of the segment a flush of WAL file `seq` writes for one tenant and day.
pub fn flushed_id(signal: &'static str, tenant: TenantId, day: i64, seq: u64) -> SegmentId {
    SegmentId {
        signal,
        tenant,
        day,
        seq_lo: seq,
        seq_hi: seq,
    }
}

/// A WAL payload (postcard) and its tenant, with errors naming the record (`what`).
pub fn decode_wal_payload<T: DeserializeOwned>(
    payload: &[u8],
    what: &str,
    tenant_of: impl FnOnce(&T) -> &str,
) -> Result<(TenantId, T), StoreError> {
    let value: T = postcard::from_bytes(payload)
        .map_err(|e| StoreError::Corrupt(format!("wal {what} record: {e}")))?;
    let tenant = TenantId::new(tenant_of(&value))
        .map_err(|e| StoreError::Corrupt(format!("wal {what} record: {e}")))?;
    Ok((tenant, value))
}
