//! Random edits of real payloads for the property tests, so mutated bytes get past a
//! decoder's first checks and into its deep parts.

use proptest::prelude::*;

/// One edit of a payload.
#[derive(Clone, Debug)]
pub enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ];
    prop::collection::vec(one, 1..8)
}

/// Applies the edits, positions taken modulo the current length.
pub fn mutate(data: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut out = data.to_vec();
    for edit in edits {
        let len = out.len().max(1);
        match *edit {
            Mutation::Flip(i, b) if !out.is_empty() => out[i % len] ^= b,
            Mutation::Insert(i, b) => out.insert(i % (out.len() + 1), b),
            Mutation::Remove(i) if !out.is_empty() => {
                out.remove(i % len);
            }
            Mutation::Truncate(i) => out.truncate(i % (out.len() + 1)),
            Mutation::Duplicate(i, n) if !out.is_empty() => {
                let start = i % len;
                let end = (start + n).min(out.len());
                let copy = out[start..end].to_vec();
                out.splice(start..start, copy);
            }
            _ => {}
        }
    }
    out
}
