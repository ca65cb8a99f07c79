//! One log row packed into a single allocation, for the head and for segment building.
//!
//! A decoded `LogRecord` spends an allocation per string (line, every metadata name and
//! value) plus the vectors around them: about three times its payload. A head of those
//! would need ~1 GiB of RAM for ~300 MB of logs. A [`Row`] is the timestamp and one boxed
//! byte string:
//!
//! ```text
//! uvarint line_len │ line │ (uvarint key_id │ uvarint value_len │ value)*
//! ```
//!
//! Metadata names are interned in a [`KeyDict`] (one per tenant head, or per compaction), so
//! `request_id` is stored once, not once per row. Rows only ever hold what `Row::new` wrote,
//! so decoding cannot fail; it is still bounds-checked and returns empty values rather than
//! panic if that invariant were ever broken.

use foldhash::HashMap;

use crate::codec::{self, Reader};

/// Metadata key names and their ids (foldhash: this map is hit for every field of every
/// record on the WAL thread, where SipHash showed up in profiles).
#[derive(Default, Debug, Clone)]
pub struct KeyDict {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// The ids of the last row's names by position: a logger writes its fields in the same
    /// order line after line, so a name is usually checked against one string, not hashed.
    recent: Vec<u32>,
}

impl KeyDict {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// [`Self::intern`] for the name at position `at` of a row.
    pub fn intern_at(&mut self, at: usize, name: &str) -> u32 {
        if let Some(&id) = self.recent.get(at)
            && self.names[id as usize] == name
        {
            return id;
        }
        let id = self.intern(name);
        if at < self.recent.len() {
            self.recent[at] = id;
        } else if at == self.recent.len() {
            self.recent.push(id);
        }
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub ts_ns: i64,
    data: Box<[u8]>,
}

impl Row {
    pub fn new<'m>(
        ts_ns: i64,
        line: &str,
        metadata: impl Iterator<Item = (&'m str, &'m str)> + Clone,
        keys: &mut KeyDict,
    ) -> Self {
        let meta_len: usize = metadata.clone().map(|(_, v)| v.len() + 4).sum();
        let mut data = Vec::with_capacity(line.len() + meta_len + 4);
        codec::put_bytes(&mut data, line.as_bytes());
        for (at, (k, v)) in metadata.enumerate() {
            codec::put_uvarint(&mut data, u64::from(keys.intern_at(at, k)));
            codec::put_bytes(&mut data, v.as_bytes());
        }
        Self {
            ts_ns,
            data: data.into_boxed_slice(),
        }
    }

    /// Bytes of payload, for head accounting.
    pub fn raw_bytes(&self) -> usize {
        self.data.len()
    }

    fn reader(&self) -> (Reader<'_>, &str) {
        let mut r = Reader::new(&self.data, "row");
        let line = r.str().unwrap_or("");
        (r, line)
    }

    pub fn line(&self) -> &str {
        self.reader().1
    }

    /// The line and the metadata as key ids and value bytes, without UTF-8 checks: what a
    /// segment block needs, which only copies, hashes and measures them.
    pub fn raw_parts(&self) -> (&[u8], impl Iterator<Item = (u32, &[u8])> + '_) {
        let mut r = Reader::new(&self.data, "row");
        let line = r.len().and_then(|n| r.bytes(n)).unwrap_or_default();
        let fields = std::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            let id = r.uvarint().ok()?;
            let value = r.len().and_then(|n| r.bytes(n)).ok()?;
            Some((u32::try_from(id).unwrap_or(u32::MAX), value))
        });
        (line, fields)
    }

    /// The metadata pairs, in the order they were given.
    pub fn metadata<'a>(
        &'a self,
        keys: &'a KeyDict,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (mut r, _) = self.reader();
        std::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            let id = r.uvarint().ok()?;
            let value = r.str().ok()?;
            Some((keys.name(u32::try_from(id).unwrap_or(u32::MAX)), value))
        })
    }

    /// Fills `out` with the metadata fields `wanted` accepts, reusing its strings'
    /// allocations.
    pub fn metadata_into(
        &self,
        keys: &KeyDict,
        wanted: &dyn Fn(&str) -> bool,
        out: &mut Vec<(String, String)>,
    ) {
        let mut n = 0;
        for (k, v) in self.metadata(keys).filter(|(k, _)| wanted(k)) {
            if n < out.len() {
                let slot = &mut out[n];
                slot.0.clear();
                slot.0.push_str(k);
                slot.1.clear();
                slot.1.push_str(v);
            } else {
                out.push((k.to_string(), v.to_string()));
            }
            n += 1;
        }
        out.truncate(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_line_and_metadata_in_order() {
        let mut keys = KeyDict::default();
        let meta = [("request_id", "r-1"), ("ip", "")];
        let pairs = |n: usize| meta[..n].iter().copied();
        let row = Row::new(7, "hello", pairs(2), &mut keys);
        let again = Row::new(8, "", pairs(1), &mut keys);
        assert_eq!(row.line(), "hello");
        assert_eq!(again.line(), "");
        let got: Vec<(&str, &str)> = row.metadata(&keys).collect();
        assert_eq!(got, vec![("request_id", "r-1"), ("ip", "")]);
        let mut out = vec![("x".to_string(), "y".to_string()); 5];
        again.metadata_into(&keys, &|_| true, &mut out);
        assert_eq!(out, vec![("request_id".to_string(), "r-1".to_string())]);
        assert_eq!(keys.names.len(), 2, "names are interned once");
        let swapped = Row::new(
            9,
            "x",
            [("ip", "1"), ("request_id", "r")].into_iter(),
            &mut keys,
        );
        let got: Vec<(&str, &str)> = swapped.metadata(&keys).collect();
        assert_eq!(
            got,
            vec![("ip", "1"), ("request_id", "r")],
            "order changes keep names"
        );
        assert_eq!(keys.names.len(), 2);
        let (line, fields) = row.raw_parts();
        let fields: Vec<(&str, &[u8])> = fields.map(|(id, v)| (keys.name(id), v)).collect();
        assert_eq!(line, b"hello");
        assert_eq!(fields, vec![("request_id", b"r-1".as_slice()), ("ip", b"")]);
    }
}
