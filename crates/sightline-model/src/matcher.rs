//! Label matchers (`=`, `!=`, `=~`, `!~`), shared by LogQL and the store's stream index.
//!
//! Regexes are anchored at both ends, as in Prometheus and Loki. A regex whose language is
//! a small finite set of strings (`api|web`, `host_(1|2|3)`) also keeps that set, so an
//! index can look its values up instead of testing the regex on every value it has, as
//! Prometheus does for such "set matchers".

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};

use crate::Labels;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Neq,
    Re,
    Nre,
}

/// One matcher of a selector such as `{service=~"api|web"}`.
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// For `=~` and `!~` whose language is not a small set.
    regex: Option<Regex>,
    /// For `=~` and `!~`, every value the regex matches, sorted, when that is at most
    /// [`SET_MAX`] strings: then no regex is compiled (building its automata was a twentieth
    /// of a small query's time) and values are looked up in the set.
    set: Option<Vec<String>>,
}

/// Most strings a regex's language may have to be kept as a set.
pub const SET_MAX: usize = 256;

impl LabelMatcher {
    /// Builds a matcher; a regex operator matches `value` anchored as `^(?:value)$`, by a set
    /// lookup when its language is small and finite, else by the compiled regex.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, regex::Error> {
        let set = match op {
            MatchOp::Re | MatchOp::Nre => regex_syntax::parse(value)
                .ok()
                .and_then(|hir| finite_language(&hir))
                .map(|mut set| {
                    set.sort_unstable();
                    set.dedup();
                    set
                }),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        // A regex that parsed into a finite language is valid; any other is compiled, which
        // also reports a bad one.
        let regex = match op {
            MatchOp::Re | MatchOp::Nre if set.is_none() => {
                Some(Regex::new(&format!("^(?:{value})$"))?)
            }
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
            set,
        })
    }

    /// For `=~` with a small finite language: exactly the values it matches.
    pub fn literal_values(&self) -> Option<&[String]> {
        match self.op {
            MatchOp::Re => self.set.as_deref(),
            _ => None,
        }
    }

    /// An `=` matcher (which cannot fail to build).
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            op: MatchOp::Eq,
            value: value.to_string(),
            regex: None,
            set: None,
        }
    }

    /// Whether a label value (empty when the label is absent) satisfies the matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        let in_language = || match (&self.set, &self.regex) {
            (Some(set), _) => set.binary_search_by(|s| s.as_str().cmp(value)).is_ok(),
            (None, Some(re)) => re.is_match(value),
            (None, None) => false,
        };
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Neq => value != self.value,
            MatchOp::Re => in_language(),
            MatchOp::Nre => !in_language(),
        }
    }

    /// Whether a label set satisfies the matcher; an absent label counts as empty.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether the matcher accepts the empty value (so it cannot select streams on its own).
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Every string `hir` matches when that is a set of at most [`SET_MAX`]: literals,
/// small character classes, concatenations and alternations of them. Anything with a
/// repetition, a look-around or a class of more than 16 characters has no set.
fn finite_language(hir: &Hir) -> Option<Vec<String>> {
    let out = match hir.kind() {
        HirKind::Empty => vec![String::new()],
        HirKind::Literal(lit) => vec![String::from_utf8(lit.0.to_vec()).ok()?],
        HirKind::Class(Class::Unicode(class)) => {
            let mut chars = Vec::new();
            for r in class.ranges() {
                for c in r.start()..=r.end() {
                    if chars.len() == 16 {
                        return None;
                    }
                    chars.push(c.to_string());
                }
            }
            chars
        }
        HirKind::Capture(capture) => finite_language(&capture.sub)?,
        HirKind::Concat(parts) => {
            let mut acc = vec![String::new()];
            for part in parts {
                let next = finite_language(part)?;
                if acc.len() * next.len() > SET_MAX {
                    return None;
                }
                acc = acc
                    .iter()
                    .flat_map(|a| next.iter().map(move |b| format!("{a}{b}")))
                    .collect();
            }
            acc
        }
        HirKind::Alternation(branches) => {
            let mut acc = Vec::new();
            for branch in branches {
                acc.extend(finite_language(branch)?);
                if acc.len() > SET_MAX {
                    return None;
                }
            }
            acc
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Look(_) | HirKind::Repetition(_) => {
            return None;
        }
    };
    let mut out = out;
    out.sort_unstable();
    out.dedup();
    (out.len() <= SET_MAX).then_some(out)
}

/// Whether `labels` satisfy every matcher.
pub fn matches_all(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let l = Labels::from_pairs([("service", "api"), ("level", "error")]);
        let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).expect("valid regex");
        assert!(m("service", MatchOp::Eq, "api").matches(&l));
        assert!(!m("service", MatchOp::Neq, "api").matches(&l));
        assert!(m("service", MatchOp::Re, "ap.|web").matches(&l));
        assert!(
            !m("service", MatchOp::Re, "ap").matches(&l),
            "regex is anchored"
        );
        assert!(m("service", MatchOp::Nre, "web").matches(&l));
        assert!(m("missing", MatchOp::Eq, "").matches(&l));
        assert!(m("missing", MatchOp::Nre, ".+").matches_empty());
    }

    #[test]
    fn set_matchers_keep_exactly_the_regex_language() {
        let set = |v: &str| {
            LabelMatcher::new("x", MatchOp::Re, v)
                .expect("valid regex")
                .literal_values()
                .map(<[String]>::to_vec)
        };
        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(set("api|web"), strings(&["api", "web"]));
        assert_eq!(
            set("host_(1|2|3)"),
            strings(&["host_1", "host_2", "host_3"])
        );
        assert_eq!(set("a|ab|a"), strings(&["a", "ab"]));
        // Unicode case folding: `k` is also the Kelvin sign.
        assert_eq!(
            set("(?i)ok"),
            strings(&["OK", "Ok", "O\u{212a}", "oK", "ok", "o\u{212a}"])
        );
        assert_eq!(set("x[0-2]"), strings(&["x0", "x1", "x2"]));
        assert_eq!(set(""), strings(&[""]));
        for open in ["a.*", "a+", "b?", "[a-z]", "x{2}", "^a", "(a|b){1,3}"] {
            assert_eq!(set(open), None, "{open}");
        }
        assert_eq!(
            LabelMatcher::new("x", MatchOp::Nre, "a|b")
                .expect("ok")
                .literal_values(),
            None
        );
        // Looked up in the set, a matcher answers as the compiled regex does, over values in
        // and around each set, for `=~` and `!~`.
        for pattern in [
            "api|web",
            "host_(1|2|3)",
            "a|ab",
            "(?i)ok",
            "x[0-2]y?z",
            "",
            "é|e",
        ] {
            let re = Regex::new(&format!("^(?:{pattern})$")).expect("valid regex");
            let m = LabelMatcher::new("x", MatchOp::Re, pattern).expect("valid regex");
            let nm = LabelMatcher::new("x", MatchOp::Nre, pattern).expect("valid regex");
            assert_eq!(
                m.literal_values().is_none(),
                pattern == "x[0-2]y?z",
                "only the repetition has no set: {pattern}"
            );
            let values = m.literal_values().unwrap_or_default().to_vec();
            let others = [
                "", "a", "ab", "abc", "api", "apiweb", "host_1", "host_12", "OK", "oK", "x1",
                "x1z", "x1yz", "web ", "e", "é", "E",
            ];
            for v in values.iter().map(String::as_str).chain(others) {
                assert_eq!(m.matches_value(v), re.is_match(v), "{pattern} =~ {v:?}");
                assert_eq!(nm.matches_value(v), !re.is_match(v), "{pattern} !~ {v:?}");
            }
        }
    }
}
