//! Little building blocks of the on-disk formats: LEB128 varints, zig-zag, length-prefixed
//! byte strings, and a bounds-checked reader that turns every short or malformed input into
//! an error instead of a panic.

use crate::StoreError;

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zig-zag encoded as a varint, so small negative numbers stay small.
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a varint length and the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The unsigned LEB128 varint at `buf[pos..]` and where it ends. One and two bytes, most
/// varints here (lengths, ids, deltas of a few hundred), take a load and a compare each.
#[inline(always)]
fn varint_at(buf: &[u8], pos: usize) -> Result<(u64, usize), &'static str> {
    if let Some(&b) = buf.get(pos)
        && b < 0x80
    {
        return Ok((u64::from(b), pos + 1));
    }
    if let Some(&[b0, b1]) = buf.get(pos..pos + 2)
        && b1 < 0x80
    {
        return Ok((u64::from(b0 & 0x7f) | u64::from(b1) << 7, pos + 2));
    }
    let mut v = 0u64;
    let mut pos = pos;
    for shift in (0..64).step_by(7) {
        let &b = buf.get(pos).ok_or("truncated varint")?;
        pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok((v, pos));
        }
    }
    Err("varint longer than 10 bytes")
}

/// A cursor over a byte slice whose every read is checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure being read, for error messages.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn corrupt(&self, why: &str) -> StoreError {
        StoreError::Corrupt(format!("{}: {why} at byte {}", self.what, self.pos))
    }

    pub fn uvarint(&mut self) -> Result<u64, StoreError> {
        let (v, next) = varint_at(self.buf, self.pos).map_err(|why| self.corrupt(why))?;
        self.pos = next;
        Ok(v)
    }

    pub fn ivarint(&mut self) -> Result<i64, StoreError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads `n` varints in a row, handing each to `f` in order: the loop over a column
    /// of them, on a local position.
    #[inline]
    pub fn uvarints(&mut self, n: usize, mut f: impl FnMut(u64)) -> Result<(), StoreError> {
        let buf = self.buf;
        let mut pos = self.pos;
        for _ in 0..n {
            let (u, next) = varint_at(buf, pos).map_err(|why| {
                self.pos = pos;
                self.corrupt(why)
            })?;
            pos = next;
            f(u);
        }
        self.pos = pos;
        Ok(())
    }

    /// [`Reader::uvarints`] of zig-zag varints.
    #[inline]
    pub fn ivarints(&mut self, n: usize, mut f: impl FnMut(i64)) -> Result<(), StoreError> {
        self.uvarints(n, |u| f(((u >> 1) as i64) ^ -((u & 1) as i64)))
    }

    /// A varint length that must fit in what is left of the buffer.
    pub fn len(&mut self) -> Result<usize, StoreError> {
        let n = self.uvarint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(self.corrupt("length past the end"));
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.corrupt("read past the end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// A varint-length-prefixed UTF-8 string's byte span in the buffer.
    pub fn str_span(&mut self) -> Result<(usize, usize), StoreError> {
        let n = self.len()?;
        let start = self.pos;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| self.corrupt("invalid utf-8"))?;
        Ok((start, start + n))
    }

    /// A varint-length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, StoreError> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| self.corrupt("invalid utf-8"))
    }
}

thread_local! {
    /// zstd contexts are costly to create (tables allocated and cleared each time): each
    /// thread keeps one of each and reuses it.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses with zstd at `level`.
pub fn zstd_compress(raw: &[u8], level: i32) -> Result<Vec<u8>, StoreError> {
    let err = |e: std::io::Error| StoreError::Io(format!("zstd compress: {e}"));
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?));
        }
        match slot.as_mut() {
            Some((_, c)) => c.compress(raw).map_err(err),
            None => Err(StoreError::Io("zstd compress: no context".into())),
        }
    })
}

/// Decompresses a zstd frame, refusing output over `limit` bytes.
pub fn zstd_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, StoreError> {
    let corrupt = |e: std::io::Error| StoreError::Corrupt(format!("zstd decompress: {e}"));
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
        }
        match slot.as_mut() {
            Some(d) => d.decompress(data, limit).map_err(corrupt),
            None => Err(StoreError::Corrupt("zstd decompress: no context".into())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>(), s in ".*") {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            put_ivarint(&mut out, i);
            put_bytes(&mut out, s.as_bytes());
            let mut r = Reader::new(&out, "test");
            prop_assert_eq!(r.uvarint().unwrap(), u);
            prop_assert_eq!(r.ivarint().unwrap(), i);
            prop_assert_eq!(r.str().unwrap(), s.as_str());
            prop_assert!(r.is_empty());
        }

        #[test]
        fn runs_of_varints_read_back_whatever_their_sizes(
            values in proptest::collection::vec(any::<u64>().prop_flat_map(|v| (0u32..64).prop_map(move |b| v >> b)), 0..40)
        ) {
            // Mixed sizes put one-byte varints, read by their shortcut, next to longer ones
            // and at the very end of the buffer.
            let mut out = Vec::new();
            for &v in &values {
                put_uvarint(&mut out, v);
            }
            let mut r = Reader::new(&out, "test");
            for &v in &values {
                prop_assert_eq!(r.uvarint().unwrap(), v);
            }
            prop_assert!(r.is_empty());
        }

        #[test]
        fn varint_reads_agree_with_a_byte_at_a_time_reader(buf in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Any bytes, overlong and unterminated varints included.
            let mut r = Reader::new(&buf, "fuzz");
            let mut pos = 0;
            loop {
                let mut want: Option<u64> = None;
                let mut v = 0u64;
                for (i, &b) in buf[pos..].iter().enumerate().take(10) {
                    v |= u64::from(b & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
                    if b & 0x80 == 0 {
                        want = Some(v);
                        pos += i + 1;
                        break;
                    }
                }
                prop_assert_eq!(r.uvarint().ok(), want);
                if want.is_none() {
                    break;
                }
            }
        }

        #[test]
        fn reader_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&buf, "fuzz");
            while !r.is_empty() {
                if r.str().is_err() { break; }
                if r.ivarint().is_err() { break; }
            }
        }
    }
}
