//! Label matchers (`=`, `!=`, `=~`, `!~`), shared by LogQL and the store's stream index.
//!
//! Regexes are anchored at both ends, as in Prometheus and Loki.

use regex::Regex;

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
    regex: Option<Regex>,
}

impl LabelMatcher {
    /// Builds a matcher; a regex operator compiles `value` anchored as `^(?:value)$`.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, regex::Error> {
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(Regex::new(&format!("^(?:{value})$"))?),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// An `=` matcher (which cannot fail to build).
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            op: MatchOp::Eq,
            value: value.to_string(),
            regex: None,
        }
    }

    /// Whether a label value (empty when the label is absent) satisfies the matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::Neq, _) => value != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(value),
            (MatchOp::Nre, Some(re)) => !re.is_match(value),
            (_, None) => false,
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
}
