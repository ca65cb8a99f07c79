//! Label sets: the identity of a log stream (and later of a series).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A label set, sorted by name, each name once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a set from pairs in any order; a later duplicate name replaces an earlier one,
    /// and pairs with an empty value are dropped (as Prometheus and Loki do).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = Vec::new();
        for (k, val) in pairs {
            let (k, val) = (k.into(), val.into());
            if let Some(slot) = v.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = val;
            } else {
                v.push((k, val));
            }
        }
        v.retain(|(_, val)| !val.is_empty());
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Self(v)
    }

    /// Builds a set from pairs already sorted by name, each name once, no empty value (as
    /// read back from a store that wrote a `Labels`); checked in debug builds.
    pub fn from_sorted_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let v: Vec<(String, String)> = pairs.into_iter().collect();
        debug_assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        Self(v)
    }

    /// The value of label `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// Sets `name` to `value` (an empty value removes the label).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0.remove(i).1)
    }
}

impl fmt::Display for Labels {
    /// Prometheus/Loki notation: `{a="1", b="2"}`, values escaped as Go strings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Turns any attribute key into a valid label name the way Loki and the OpenTelemetry
/// collector do: every character outside `[a-zA-Z0-9_]` becomes `_`, and a leading digit
/// gets a `_` prefix. `service.name` becomes `service_name`.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
        out.push('_');
    }
    for c in name.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(
            l.as_pairs(),
            &[("a".into(), "1".into()), ("b".into(), "3".into())]
        );
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.to_string(), r#"{a="1", b="3"}"#);
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::from_pairs([("b", "2")]);
        l.set("a", "1");
        l.set("c", "3");
        l.set("b", "");
        assert_eq!(l.to_string(), r#"{a="1", c="3"}"#);
        assert_eq!(l.remove("a"), Some("1".into()));
    }

    #[test]
    fn sanitizes_label_names() {
        assert_eq!(sanitize_label_name("service.name"), "service_name");
        assert_eq!(sanitize_label_name("1abc"), "_1abc");
        assert_eq!(sanitize_label_name("k8s-pod"), "k8s_pod");
        assert!(is_valid_label_name("service_name"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name(""));
    }
}
