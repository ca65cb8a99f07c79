//! The label postings index of a set of series: for each label name and value, the ids of
//! the series that carry it, ascending. The metrics head and every loaded metrics segment
//! keep one, so a selector touches only the series it names.
//!
//! Invariant: ids are added in ascending order, so every postings list is sorted and
//! intersections are linear merges.

use foldhash::HashMap;

use sightline_model::matcher::matches_all;
use sightline_model::{LabelMatcher, Labels};

#[derive(Default)]
pub struct Postings {
    names: HashMap<String, HashMap<String, Vec<u32>>>,
    len: u32,
}

impl Postings {
    /// Adds series `id` (greater than every id added before) with its labels.
    pub fn add(&mut self, id: u32, labels: &Labels) {
        debug_assert!(id >= self.len);
        for (k, v) in labels.iter() {
            let values = match self.names.get_mut(k) {
                Some(m) => m,
                None => self.names.entry(k.to_string()).or_default(),
            };
            match values.get_mut(v) {
                Some(ids) => ids.push(id),
                None => {
                    values.insert(v.to_string(), vec![id]);
                }
            }
        }
        self.len = id + 1;
    }

    /// Candidate ids for the matchers: every matcher that rejects the empty value narrows
    /// the set through postings; the caller still checks each candidate's labels against
    /// all matchers (a matcher that accepts the empty value cannot use postings alone).
    pub fn candidates(&self, matchers: &[LabelMatcher]) -> Vec<u32> {
        let mut acc: Option<Vec<u32>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let mut ids: Vec<u32> = match self.names.get(&m.name) {
                None => Vec::new(),
                Some(values) => match m.op {
                    sightline_model::MatchOp::Eq => {
                        values.get(&m.value).cloned().unwrap_or_default()
                    }
                    _ => {
                        let mut lists: Vec<&Vec<u32>> = match m.literal_values() {
                            // A set matcher: look its values up.
                            Some(set) => set.iter().filter_map(|v| values.get(v)).collect(),
                            None => values
                                .iter()
                                .filter(|(v, _)| m.matches_value(v))
                                .map(|(_, ids)| ids)
                                .collect(),
                        };
                        if lists.len() == 1 {
                            lists.pop().cloned().unwrap_or_default()
                        } else {
                            let mut all: Vec<u32> = lists.into_iter().flatten().copied().collect();
                            all.sort_unstable();
                            all.dedup();
                            all
                        }
                    }
                },
            };
            if let Some(prev) = acc {
                ids = intersect(&prev, &ids);
            }
            if ids.is_empty() {
                return ids;
            }
            acc = Some(ids);
        }
        acc.unwrap_or_else(|| (0..self.len).collect())
    }

    /// The ids whose labels satisfy every matcher, given a way to read an id's labels.
    ///
    /// A matcher that rejects the empty value was answered exactly by the postings (they
    /// list the series whose value of that name it accepts), so only the others are
    /// checked against each candidate's labels.
    pub fn select<'a>(
        &self,
        matchers: &[LabelMatcher],
        labels_of: impl Fn(u32) -> &'a Labels,
    ) -> Vec<u32> {
        let mut ids = self.candidates(matchers);
        let rest: Vec<LabelMatcher> = matchers
            .iter()
            .filter(|m| m.matches_empty())
            .cloned()
            .collect();
        if !rest.is_empty() {
            ids.retain(|&id| matches_all(&rest, labels_of(id)));
        }
        ids
    }

    /// Every label name, in any order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Every value of `name` with its ids.
    pub fn values(&self, name: &str) -> impl Iterator<Item = (&str, &[u32])> {
        self.names
            .get(name)
            .into_iter()
            .flat_map(|m| m.iter().map(|(v, ids)| (v.as_str(), ids.as_slice())))
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::MatchOp;

    #[test]
    fn selects_through_postings_and_checks_every_matcher() {
        let series = [
            Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            Labels::from_pairs([("__name__", "up"), ("job", "b"), ("env", "prod")]),
            Labels::from_pairs([("__name__", "down"), ("job", "a")]),
        ];
        let mut p = Postings::default();
        for (i, l) in series.iter().enumerate() {
            p.add(i as u32, l);
        }
        let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).expect("matcher");
        let check = |ms: Vec<LabelMatcher>, want: &[u32]| {
            assert_eq!(p.select(&ms, |i| &series[i as usize]), want);
        };
        check(vec![m("__name__", MatchOp::Eq, "up")], &[0, 1]);
        check(
            vec![
                m("__name__", MatchOp::Eq, "up"),
                m("job", MatchOp::Re, "a|b"),
            ],
            &[0, 1],
        );
        check(
            vec![m("job", MatchOp::Eq, "a"), m("env", MatchOp::Eq, "")],
            &[0, 2],
        );
        check(vec![m("env", MatchOp::Neq, "prod")], &[0, 2]);
        check(
            vec![
                m("__name__", MatchOp::Nre, "u.*"),
                m("job", MatchOp::Neq, ""),
            ],
            &[2],
        );
        check(vec![m("nope", MatchOp::Eq, "x")], &[]);
    }

    proptest::proptest! {
        /// Postings answer exactly what checking every series against every matcher does.
        #[test]
        fn select_equals_checking_every_series(
            sets in proptest::collection::vec(
                proptest::collection::vec((0usize..3, 0usize..4), 0..4), 0..20),
            ms in proptest::collection::vec((0usize..3, 0usize..4, 0usize..6), 1..4),
        ) {
            const NAMES: [&str; 3] = ["a", "b", "c"];
            const VALUES: [&str; 4] = ["x", "y", "xy", ""];
            const PATTERNS: [&str; 6] = ["x", "", "x|y", "x.*", ".*", "y+"];
            let series: Vec<Labels> = sets
                .iter()
                .map(|pairs| Labels::from_pairs(pairs.iter().map(|&(n, v)| (NAMES[n], VALUES[v]))))
                .collect();
            let mut p = Postings::default();
            for (i, l) in series.iter().enumerate() {
                p.add(i as u32, l);
            }
            let ops = [MatchOp::Eq, MatchOp::Neq, MatchOp::Re, MatchOp::Nre];
            let matchers: Vec<LabelMatcher> = ms
                .iter()
                .map(|&(n, op, v)| LabelMatcher::new(NAMES[n], ops[op], PATTERNS[v]).expect("matcher"))
                .collect();
            let want: Vec<u32> = (0..series.len() as u32)
                .filter(|&i| matches_all(&matchers, &series[i as usize]))
                .collect();
            proptest::prop_assert_eq!(p.select(&matchers, |i| &series[i as usize]), want);
        }
    }
}
