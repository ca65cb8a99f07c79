//! Log rows packed into large chunks of bytes, for the head and for segment building.
//!
//! A decoded `LogRecord` spends an allocation per string (line, every metadata name and
//! value) plus the vectors around them: about three times its payload. A head of those
//! would need ~1 GiB of RAM for ~300 MB of logs. A row here is its timestamp and one byte
//! string:
//!
//! ```text
//! uvarint line_len │ line │ (uvarint key_id │ uvarint value_len │ value)*
//! ```
//!
//! and a stream's rows ([`Rows`]) sit one after another in chunks of [`CHUNK_BYTES`], not in
//! an allocation each: a flush reads a stream's rows in order, and rows of one stream
//! allocated one by one lie scattered between those of every other stream, so each was a
//! cache miss the flush waited for. Chunks also spare the allocator's per-row overhead.
//!
//! Metadata names are interned in a [`KeyDict`] (one per tenant head, or per compaction), so
//! `request_id` is stored once, not once per row. Rows only ever hold what [`Rows::push`]
//! wrote, so decoding cannot fail; it is still bounds-checked and returns empty values
//! rather than panic if that invariant were ever broken.

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

/// Bytes of a chunk of [`Rows`]; a row larger than this gets a chunk of its own.
pub const CHUNK_BYTES: usize = 64 << 10;

/// Where a row's bytes are in its [`Rows`].
#[derive(Clone, Copy, Debug)]
struct RowAt {
    ts_ns: i64,
    chunk: u32,
    start: u32,
    len: u32,
}

/// One stream's rows, in the order they were pushed, their bytes packed in chunks.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Every chunk but the last is full (or as full as the rows that fit allowed); a chunk
    /// never grows past its capacity, so it is never moved.
    chunks: Vec<Vec<u8>>,
    at: Vec<RowAt>,
    bytes: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Bytes of the rows' payload, for head accounting.
    pub fn raw_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends a row; returns its bytes of payload.
    pub fn push<'m>(
        &mut self,
        ts_ns: i64,
        line: &str,
        metadata: impl Iterator<Item = (&'m str, &'m str)> + Clone,
        keys: &mut KeyDict,
    ) -> usize {
        // Each varint is at most 10 bytes: an upper bound, so the row never outgrows the
        // room checked for it.
        let most: usize =
            10 + line.len() + metadata.clone().map(|(_, v)| v.len() + 20).sum::<usize>();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= most);
        if !fits {
            self.chunks.push(Vec::with_capacity(most.max(CHUNK_BYTES)));
        }
        let chunk_idx = self.chunks.len() - 1;
        let data = &mut self.chunks[chunk_idx];
        let start = data.len();
        codec::put_bytes(data, line.as_bytes());
        for (at, (k, v)) in metadata.enumerate() {
            codec::put_uvarint(data, u64::from(keys.intern_at(at, k)));
            codec::put_bytes(data, v.as_bytes());
        }
        let len = data.len() - start;
        // Rows are bounded by the request body limit and a chunk holds one such row at
        // most, far below 4 GiB.
        self.at.push(RowAt {
            ts_ns,
            chunk: chunk_idx as u32,
            start: start as u32,
            len: len as u32,
        });
        self.bytes += len;
        len
    }

    /// Appends a row of another [`Rows`] that used the same [`KeyDict`].
    pub fn push_row(&mut self, row: Row<'_>) {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= row.data.len());
        if !fits {
            self.chunks
                .push(Vec::with_capacity(row.data.len().max(CHUNK_BYTES)));
        }
        let chunk_idx = self.chunks.len() - 1;
        let data = &mut self.chunks[chunk_idx];
        let start = data.len();
        data.extend_from_slice(row.data);
        self.at.push(RowAt {
            ts_ns: row.ts_ns,
            chunk: chunk_idx as u32,
            start: start as u32,
            len: row.data.len() as u32,
        });
        self.bytes += row.data.len();
    }

    /// The rows, in the order they were pushed.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        self.at.iter().map(|at| Row {
            ts_ns: at.ts_ns,
            data: self
                .chunks
                .get(at.chunk as usize)
                .and_then(|c| c.get(at.start as usize..(at.start + at.len) as usize))
                .unwrap_or_default(),
        })
    }
}

impl PartialEq for Rows {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// One row of a [`Rows`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    pub ts_ns: i64,
    data: &'a [u8],
}

impl<'a> Row<'a> {
    /// Bytes of payload, for head accounting.
    pub fn raw_bytes(&self) -> usize {
        self.data.len()
    }

    fn reader(&self) -> (Reader<'a>, &'a str) {
        let mut r = Reader::new(self.data, "row");
        let line = r.str().unwrap_or("");
        (r, line)
    }

    pub fn line(&self) -> &'a str {
        self.reader().1
    }

    /// The line and the metadata as key ids and value bytes, without UTF-8 checks: what a
    /// segment block needs, which only copies, hashes and measures them.
    pub fn raw_parts(&self) -> (&'a [u8], impl Iterator<Item = (u32, &'a [u8])> + 'a) {
        let mut r = Reader::new(self.data, "row");
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
    pub fn metadata<'k>(
        &self,
        keys: &'k KeyDict,
    ) -> impl Iterator<Item = (&'k str, &'a str)> + use<'k, 'a> {
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
        let mut rows = Rows::default();
        let n = rows.push(7, "hello", pairs(2), &mut keys);
        rows.push(8, "", pairs(1), &mut keys);
        rows.push(
            9,
            "x",
            [("ip", "1"), ("request_id", "r")].into_iter(),
            &mut keys,
        );
        let got: Vec<Row<'_>> = rows.iter().collect();
        let (row, again, swapped) = (got[0], got[1], got[2]);
        assert_eq!(n, row.raw_bytes());
        assert_eq!(
            rows.raw_bytes(),
            got.iter().map(Row::raw_bytes).sum::<usize>()
        );
        assert_eq!((row.ts_ns, row.line()), (7, "hello"));
        assert_eq!((again.ts_ns, again.line()), (8, ""));
        let got: Vec<(&str, &str)> = row.metadata(&keys).collect();
        assert_eq!(got, vec![("request_id", "r-1"), ("ip", "")]);
        let mut out = vec![("x".to_string(), "y".to_string()); 5];
        again.metadata_into(&keys, &|_| true, &mut out);
        assert_eq!(out, vec![("request_id".to_string(), "r-1".to_string())]);
        let got: Vec<(&str, &str)> = swapped.metadata(&keys).collect();
        assert_eq!(
            got,
            vec![("ip", "1"), ("request_id", "r")],
            "order changes keep names"
        );
        assert_eq!(keys.names.len(), 2, "names are interned once");
        let (line, fields) = row.raw_parts();
        let fields: Vec<(&str, &[u8])> = fields.map(|(id, v)| (keys.name(id), v)).collect();
        assert_eq!(line, b"hello");
        assert_eq!(fields, vec![("request_id", b"r-1".as_slice()), ("ip", b"")]);
    }

    #[test]
    fn rows_fill_chunks_and_large_rows_get_their_own() {
        let mut keys = KeyDict::default();
        let mut rows = Rows::default();
        let big = "x".repeat(CHUNK_BYTES * 2);
        let small = "y".repeat(1000);
        let mut want = Vec::new();
        for i in 0..300i64 {
            let line = if i % 100 == 7 { &big } else { &small };
            let value = i.to_string();
            rows.push(i, line, [("n", value.as_str())].into_iter(), &mut keys);
            want.push((i, line.clone(), value));
        }
        let mut copy = Rows::default();
        for r in rows.iter() {
            copy.push_row(r);
        }
        assert_eq!(copy, rows);
        for rows in [&rows, &copy] {
            let got: Vec<(i64, String, String)> = rows
                .iter()
                .map(|r| {
                    let v = r.metadata(&keys).next().map(|(_, v)| v.to_string());
                    (r.ts_ns, r.line().to_string(), v.unwrap_or_default())
                })
                .collect();
            assert_eq!(got, want);
            assert!(
                rows.chunks.iter().all(|c| c.len() <= c.capacity()),
                "no chunk outgrew its room"
            );
            assert!(rows.chunks.len() < 20, "{} chunks", rows.chunks.len());
        }
    }
}
