//! [`MetadataPairs`]: a record's structured metadata in two allocations.
//!
//! Why not `Vec<(String, String)>`: a JSON log line carries ten or more fields, so that shape
//! costs twenty-odd allocations a record, made on a request thread and freed after the WAL
//! write; on the ingest path that was a fifth of the server's CPU. Here every name and value
//! is appended to one `String`, and one `Vec` holds where each pair ends.
//!
//! Invariant: `ends` is non-decreasing and every offset is within `text` and on a char
//! boundary (only [`MetadataPairs::push`] adds to them, with whole `&str`s), so slicing can
//! not fail.
//!
//! Serialised as a sequence of `(name, value)` string pairs, byte for byte what
//! `Vec<(String, String)>` gave, so WAL files written before this type still replay.

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name/value pairs in the order they were pushed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetadataPairs {
    text: String,
    /// Per pair: where its name ends and where its value ends, in `text`.
    ends: Vec<(u32, u32)>,
}

impl MetadataPairs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `pairs` pairs of `bytes` bytes of names and values in all.
    pub fn with_capacity(pairs: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(pairs),
        }
    }

    /// Appends a pair (a name already present is not replaced: see [`Self::set`]).
    ///
    /// # Panics
    /// When the pairs would pass 4 GiB of text, far beyond any record limit.
    pub fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let name_end = self.offset();
        self.text.push_str(value);
        let value_end = self.offset();
        self.ends.push((name_end, value_end));
    }

    fn offset(&self) -> u32 {
        u32::try_from(self.text.len()).expect("metadata text under 4 GiB")
    }

    /// Sets `name` to `value`: replaces the value where the name is present (keeping its
    /// place), appends the pair where it is not.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.position(name) {
            Some(i) => self.rebuild(|j, n, v, out| out.push(n, if j == i { value } else { v })),
            None => self.push(name, value),
        }
    }

    /// Removes `name`; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.position(name) {
            Some(i) => {
                self.rebuild(|j, n, v, out| {
                    if j != i {
                        out.push(n, v)
                    }
                });
                true
            }
            None => false,
        }
    }

    fn rebuild(&mut self, mut f: impl FnMut(usize, &str, &str, &mut MetadataPairs)) {
        let mut out = MetadataPairs::with_capacity(self.ends.len(), self.text.len());
        for (j, (n, v)) in self.iter().enumerate() {
            f(j, n, v, &mut out);
        }
        *self = out;
    }

    /// Where `name` is, the first time.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.iter().position(|(n, _)| n == name)
    }

    /// The value of `name` (the first one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of names and values.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (n, v) = (name_end as usize, value_end as usize);
            let pair = (&self.text[start..n], &self.text[n..v]);
            start = v;
            pair
        })
    }

    /// The pairs as owned strings, for the few places that keep them apart.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}

impl fmt::Debug for MetadataPairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for MetadataPairs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut out = Self::new();
        for (k, v) in iter {
            out.push(k.as_ref(), v.as_ref());
        }
        out
    }
}

impl From<Vec<(String, String)>> for MetadataPairs {
    fn from(pairs: Vec<(String, String)>) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> PartialEq<[(K, V)]> for MetadataPairs {
    fn eq(&self, other: &[(K, V)]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((n, v), (k, w))| n == k.as_ref() && v == w.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> PartialEq<[(K, V); N]> for MetadataPairs {
    fn eq(&self, other: &[(K, V); N]) -> bool {
        *self == other[..]
    }
}

impl<K: AsRef<str>, V: AsRef<str>> PartialEq<Vec<(K, V)>> for MetadataPairs {
    fn eq(&self, other: &Vec<(K, V)>) -> bool {
        *self == other[..]
    }
}

impl Serialize for MetadataPairs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for pair in self.iter() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for MetadataPairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(PairsVisitor)
    }
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = MetadataPairs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of (name, value) string pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = MetadataPairs::with_capacity(seq.size_hint().unwrap_or(0).min(256), 0);
        while seq.next_element_seed(PairSeed(&mut out))?.is_some() {}
        Ok(out)
    }
}

/// Deserialises one `(name, value)` pair straight into the text buffer.
struct PairSeed<'p>(&'p mut MetadataPairs);

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a (name, value) pair of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let missing = || serde::de::Error::invalid_length(1, &"a (name, value) pair");
        let out = self.0;
        seq.next_element_seed(StrSeed(&mut out.text))?
            .ok_or_else(|| serde::de::Error::invalid_length(0, &"a (name, value) pair"))?;
        let name_end = out.offset();
        seq.next_element_seed(StrSeed(&mut out.text))?
            .ok_or_else(missing)?;
        let value_end = out.offset();
        out.ends.push((name_end, value_end));
        Ok(())
    }
}

/// Appends one string to a buffer, borrowed or not.
struct StrSeed<'t>(&'t mut String);

impl<'de> DeserializeSeed<'de> for StrSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for StrSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if self.0.len() + v.len() > u32::MAX as usize {
            return Err(E::custom("metadata over 4 GiB"));
        }
        self.0.push_str(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_sets_and_removes() {
        let mut m = MetadataPairs::new();
        m.push("request_id", "r-1");
        m.push("ip", "");
        m.push("user", "ünï");
        assert_eq!(m.get("ip"), Some(""));
        assert_eq!(m.get("nope"), None);
        m.set("request_id", "r-2");
        m.set("new", "x");
        assert!(m.remove("ip"));
        assert!(!m.remove("ip"));
        let got: Vec<(&str, &str)> = m.iter().collect();
        assert_eq!(
            got,
            vec![("request_id", "r-2"), ("user", "ünï"), ("new", "x")]
        );
        assert_eq!(
            format!("{m:?}"),
            r#"[("request_id", "r-2"), ("user", "ünï"), ("new", "x")]"#
        );
    }

    #[test]
    fn serialises_as_a_vec_of_string_pairs_did() {
        let pairs = vec![
            ("a".to_string(), "1".to_string()),
            ("trace_id".to_string(), "ab".repeat(16)),
            ("empty".to_string(), String::new()),
        ];
        let m: MetadataPairs = pairs.iter().map(|(k, v)| (k, v)).collect();
        let ours = postcard::to_stdvec(&m).expect("encode");
        assert_eq!(ours, postcard::to_stdvec(&pairs).expect("encode"));
        let back: MetadataPairs = postcard::from_bytes(&ours).expect("decode");
        assert_eq!(back, m);
        let json = serde_json::to_string(&m).expect("json");
        assert_eq!(json, serde_json::to_string(&pairs).expect("json"));
        let back: MetadataPairs = serde_json::from_str(&json).expect("json back");
        assert_eq!(back, m);
        assert!(serde_json::from_str::<MetadataPairs>(r#"[["only-a-name"]]"#).is_err());
    }
}
