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
    }
}
