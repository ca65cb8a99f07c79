//! Label sets: the identity of a log stream and of a series.
//!
//! A [`Labels`] is shared, not copied: its pairs sit behind an `Arc`, so a clone is a
//! reference count, and the one set a series has is held once however many batches, heads
//! and segments name it (see [`crate::interner`]). Changing a set (`set`, `remove`) builds
//! a new one. Serialised, it is the plain list of pairs, as before it was shared: WAL
//! records and segments are unchanged.
//!
//! **Layout.** A set's names and values are one string, name 0, value 0, name 1, …, with
//! where each ends: three allocations for the whole set instead of two a pair, so a set
//! is a few hundred bytes, and reading or comparing one touches a few cache lines, not a
//! string scattered somewhere for each name and value. Queries compare and look into
//! thousands of sets; that locality is most of what they cost once samples are decoded.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A label set, sorted by name, each name once.
///
/// Equal sets compare equal whether or not they share their pairs; two handles of one
/// shared set compare by pointer first.
#[derive(Clone, Default)]
pub struct Labels(Arc<Pairs>);

/// Names and values, one after another, and where each ends (two ends a pair).
#[derive(Default)]
struct Pairs {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Pairs {
    fn build<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (n, v) in pairs {
            text.push_str(n);
            ends.push(text.len() as u32);
            text.push_str(v);
            ends.push(text.len() as u32);
        }
        Self {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// These pairs but the `i`-th, copied in two runs (what dropping a metric name from
    /// every selected series costs).
    fn without(&self, i: usize) -> Self {
        let start = if i == 0 {
            0
        } else {
            self.ends[2 * i - 1] as usize
        };
        let end = self.ends[2 * i + 1] as usize;
        let cut = (end - start) as u32;
        let mut text = String::with_capacity(self.text.len() - (end - start));
        text.push_str(&self.text[..start]);
        text.push_str(&self.text[end..]);
        let mut ends = Vec::with_capacity(self.ends.len() - 2);
        ends.extend_from_slice(&self.ends[..2 * i]);
        ends.extend(self.ends[2 * i + 2..].iter().map(|&e| e - cut));
        Self {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The `i`-th string (names at even, values at odd places).
    fn at(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn name(&self, i: usize) -> &str {
        self.at(2 * i)
    }

    fn pair(&self, i: usize) -> (&str, &str) {
        (self.at(2 * i), self.at(2 * i + 1))
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || (self.0.ends == other.0.ends && self.0.text == other.0.text)
    }
}

impl Eq for Labels {}

/// By pairs, as a sorted list of (name, value); two handles of one shared set are equal
/// without a look at the pairs (queries merge the same series from many sources).
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.ptr_eq(other) {
            return std::cmp::Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_pairs(self.len(), self.iter(), state);
    }
}

/// The one way a set is hashed, for [`Labels`] and borrowed pairs alike.
fn hash_pairs<'a, H: Hasher>(n: usize, pairs: impl Iterator<Item = (&'a str, &'a str)>, h: &mut H) {
    h.write_usize(n);
    for (name, value) in pairs {
        name.hash(h);
        value.hash(h);
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Labels")
            .field(&self.iter().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for Labels {
    /// As the list of `(name, value)` pairs.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// From the list of pairs, as written (writers write sorted sets).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(d)?;
        Ok(Self(Arc::new(Pairs::build(
            pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        ))))
    }
}

/// A [`Labels`] that does not keep its set alive: [`WeakLabels::upgrade`] gives the set back
/// while some [`Labels`] still holds it.
#[derive(Clone)]
pub struct WeakLabels(std::sync::Weak<Pairs>);

impl fmt::Debug for WeakLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakLabels")
    }
}

impl WeakLabels {
    pub fn upgrade(&self) -> Option<Labels> {
        self.0.upgrade().map(Labels)
    }

    /// Whether the set is gone.
    pub fn is_dead(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// The hash of a label set by which series are found (heads, the interner): the same for a
/// [`Labels`] ([`Labels::series_hash`]) and for its pairs as borrowed slices
/// ([`pairs_hash`]), so a decoder can find a set it has seen before without building one.
fn series_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x5eed)
}

/// [`Labels::series_hash`] of the set whose sorted pairs are `pairs`.
pub fn pairs_hash(pairs: &[(&str, &str)]) -> u64 {
    let mut h = series_hasher().build_hasher();
    hash_pairs(pairs.len(), pairs.iter().copied(), &mut h);
    h.finish()
}

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
        Self::from_sorted_pairs(v)
    }

    /// Builds a set from pairs already sorted by name, each name once, no empty value (as
    /// read back from a store that wrote a `Labels`); checked in debug builds.
    pub fn from_sorted_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let v: Vec<(String, String)> = pairs.into_iter().collect();
        debug_assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        Self(Arc::new(Pairs::build(
            v.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )))
    }

    /// The hash series are found by; equal to [`pairs_hash`] of the same pairs.
    pub fn series_hash(&self) -> u64 {
        series_hasher().hash_one(self)
    }

    /// Whether the set's pairs are exactly `pairs`, in order.
    pub fn eq_pairs(&self, pairs: &[(&str, &str)]) -> bool {
        self.len() == pairs.len() && self.iter().zip(pairs).all(|(a, b)| a == *b)
    }

    /// Whether `self` and `other` share their pairs (one set, not just equal ones).
    pub fn ptr_eq(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// How many handles share these pairs.
    pub fn share_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// The address of the shared pairs: the same for every handle of one set, and not
    /// reused by another set while a handle of this one is alive.
    pub fn addr(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// A handle that does not keep the set alive.
    pub fn downgrade(&self) -> WeakLabels {
        WeakLabels(Arc::downgrade(&self.0))
    }

    /// Where `name` is, or would be.
    fn position(&self, name: &str) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.0.name(mid).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The value of label `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| self.0.pair(i).1)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + ExactSizeIterator {
        let pairs = &*self.0;
        (0..pairs.len()).map(move |i| pairs.pair(i))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pairs as owned strings.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.to_pairs()
    }

    /// Sets `name` to `value` (an empty value removes the label).
    pub fn set(&mut self, name: &str, value: &str) {
        let at = self.position(name);
        let pairs = match at {
            Ok(i) if self.0.pair(i).1 == value => return,
            Err(_) if value.is_empty() => return,
            Ok(i) => {
                let mut p: Vec<(&str, &str)> = self.iter().collect();
                if value.is_empty() {
                    p.remove(i);
                } else {
                    p[i].1 = value;
                }
                Pairs::build(p.into_iter())
            }
            Err(i) => {
                let mut p: Vec<(&str, &str)> = self.iter().collect();
                p.insert(i, (name, value));
                Pairs::build(p.into_iter())
            }
        };
        self.0 = Arc::new(pairs);
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.position(name).ok()?;
        let value = self.0.pair(i).1.to_string();
        self.0 = Arc::new(self.0.without(i));
        Some(value)
    }

    /// The set without label `name`: the same set (sharing its storage) when it has none.
    pub fn without(&self, name: &str) -> Labels {
        match self.position(name) {
            Ok(i) => Labels(Arc::new(self.0.without(i))),
            Err(_) => self.clone(),
        }
    }
}

impl fmt::Display for Labels {
    /// Prometheus/Loki notation: `{a="1", b="2"}`, values escaped as Go strings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
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
            l.to_pairs(),
            [("a".to_string(), "1".to_string()), ("b".into(), "3".into())]
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
    fn without_drops_one_pair_wherever_it_is() {
        let l = Labels::from_pairs([("__name__", "up"), ("a", "1"), ("bb", "22"), ("c", "")]);
        for (name, want) in [
            ("__name__", r#"{a="1", bb="22"}"#),
            ("a", r#"{__name__="up", bb="22"}"#),
            ("bb", r#"{__name__="up", a="1"}"#),
            ("zz", r#"{__name__="up", a="1", bb="22"}"#),
        ] {
            let w = l.without(name);
            assert_eq!(w.to_string(), want, "without {name}");
            assert_eq!(w.get(name), None);
            assert_eq!(
                w,
                Labels::from_pairs(w.to_pairs()),
                "the same set built anew"
            );
        }
        let one = Labels::from_pairs([("x", "1")]);
        assert!(one.without("x").is_empty());
    }

    #[test]
    fn clones_share_and_writes_copy() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let mut b = a.clone();
        assert!(a.ptr_eq(&b));
        assert_eq!(a.share_count(), 2);
        b.set("a", "1");
        assert!(a.ptr_eq(&b), "setting the same value copies nothing");
        b.set("c", "3");
        assert!(!a.ptr_eq(&b));
        assert_eq!(a.to_string(), r#"{a="1", b="2"}"#);
        assert_eq!(b.clone().into_pairs().len(), 3);
        assert_eq!(b.remove("c"), Some("3".into()));
        assert_eq!(a, b, "equal sets compare equal though not shared");
    }

    #[test]
    fn series_hash_of_a_set_and_of_its_borrowed_pairs_agree() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a:1")]);
        let pairs: Vec<(&str, &str)> = l.iter().collect();
        assert_eq!(l.series_hash(), pairs_hash(&pairs));
        assert!(l.eq_pairs(&pairs));
        assert!(!l.eq_pairs(&pairs[..2]));
        assert_ne!(pairs_hash(&pairs[..2]), l.series_hash());
    }

    #[test]
    fn serialises_as_the_plain_pairs() {
        let l = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let plain: Vec<(String, String)> = l.clone().into_pairs();
        let bytes = postcard::to_allocvec(&l).expect("encode");
        assert_eq!(bytes, postcard::to_allocvec(&plain).expect("encode"));
        let back: Labels = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, l);
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
