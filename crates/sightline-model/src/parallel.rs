//! CPU-bound work spread over the machine's cores: how many there are, and an ordered
//! parallel map on scoped threads.
//!
//! Why here: the store (decoding blocks) and the query engines (rollups) both split work
//! by core, and both need the count cheaply. `std::thread::available_parallelism` reads
//! cgroup files on every call (an open and read per query showed as 7 % of a small query's
//! time), so it is read once.

use std::sync::OnceLock;

/// The cores this process may use (at least 1, at most 8), read once.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Work, in samples decoded or windows computed (a few nanoseconds each), below which
/// spreading it over threads costs more than it saves: starting a thread takes tens of
/// microseconds, as long as some 20,000 such steps.
pub const PARALLEL_MIN_WORK: usize = 20_000;

/// [`map`] when `work` (see [`PARALLEL_MIN_WORK`]) is worth the threads; on the calling
/// thread otherwise.
pub fn map_work<T: Sync, R: Send>(items: &[T], work: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if work < PARALLEL_MIN_WORK {
        return items.iter().map(f).collect();
    }
    map(items, f)
}

/// `f` over `items` on all cores, in contiguous runs of items per thread, with the results
/// in the items' order. A single item, or a single core, runs on the calling thread. A
/// panic in `f` is resumed on the caller.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores();
    if threads < 2 || items.len() < 2 {
        return items.iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|run| scope.spawn(move || run.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_keeps_the_order() {
        let items: Vec<u32> = (0..1000).collect();
        let out = super::map(&items, |x| x * 2);
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert!(super::cores() >= 1);
        for work in [0, super::PARALLEL_MIN_WORK] {
            let small = super::map_work(&items, work, |x| x + 1);
            assert_eq!(small, items.iter().map(|x| x + 1).collect::<Vec<_>>());
        }
    }
}
