//! A protobuf wire-format reader that borrows: strings and nested messages come back as
//! slices of the request buffer, so a decoder can look at a message's fields without
//! building owned strings for each of them.
//!
//! Why by hand: `prost` decodes into owned types (a `String` per label name and value),
//! and that allocation, and freeing it again, was the largest cost of remote-write ingest.
//! This reader is only the wire format of the protobuf encoding guide (varints, the four
//! wire types still in use, length-delimited fields); the schema, field numbers included,
//! stays with each decoder, which `prost` types check in tests.
//!
//! Rules kept, as `prost` keeps them: a field's wire type must be the one its schema says
//! ([`Reader::expect`]); unknown fields are skipped whatever their wire type, groups
//! included; a length or varint that runs past the end is an error, never a panic; strings
//! must be UTF-8. Errors say what was wrong and at which byte of the buffer.

use std::fmt;

/// A protobuf wire type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl WireType {
    fn of(bits: u64) -> Option<Self> {
        Some(match bits {
            0 => Self::Varint,
            1 => Self::Fixed64,
            2 => Self::Len,
            3 => Self::StartGroup,
            4 => Self::EndGroup,
            5 => Self::Fixed32,
            _ => return None,
        })
    }
}

/// What was wrong, and at which byte of the buffer the reader started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub what: String,
    pub at: usize,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for WireError {}

/// How deep groups may nest inside an unknown field (prost's recursion limit).
const GROUP_DEPTH_MAX: u32 = 100;

/// Reads fields from a buffer; a nested message is read with a reader of its own
/// ([`Reader::message`]), which keeps byte offsets relative to the outermost buffer.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the outermost buffer, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    fn err(&self, what: impl Into<String>) -> WireError {
        WireError {
            what: what.into(),
            at: self.base + self.pos,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Where the reader is, as an offset into its message's bytes.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The message's bytes between two offsets [`Reader::offset`] gave (empty for any
    /// other pair).
    pub fn span(&self, start: usize, end: usize) -> &'a [u8] {
        self.buf.get(start..end).unwrap_or(&[])
    }

    /// The next field's number and wire type, or `None` at the end of the buffer.
    #[inline]
    pub fn field(&mut self) -> Result<Option<(u32, WireType)>, WireError> {
        if self.is_empty() {
            return Ok(None);
        }
        let start = self.pos;
        let key = self.varint()?;
        let wire = WireType::of(key & 7).ok_or_else(|| WireError {
            what: format!("invalid wire type {}", key & 7),
            at: self.base + start,
        })?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(WireError {
                what: format!("invalid field number {number}"),
                at: self.base + start,
            });
        }
        Ok(Some((number as u32, wire)))
    }

    /// Fails unless a field of the schema came with the wire type the schema gives it.
    pub fn expect(&self, field: u32, got: WireType, want: WireType) -> Result<(), WireError> {
        if got == want {
            Ok(())
        } else {
            Err(self.err(format!(
                "field {field} has wire type {got:?}, expected {want:?}"
            )))
        }
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        // The common one-byte case without the loop.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint longer than 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    pub fn fixed64(&mut self) -> Result<u64, WireError> {
        let bytes = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(b))
    }

    pub fn double(&mut self) -> Result<f64, WireError> {
        self.fixed64().map(f64::from_bits)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        // `pos` never passes the end, so `left` cannot underflow.
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(self.err(format!(
                "field of {n} bytes runs past the end ({left} left)"
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A length-delimited field's bytes.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
        self.take(n)
    }

    /// A string field, checked to be UTF-8.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, WireError> {
        let start = self.pos;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|e| WireError {
            what: format!("string is not UTF-8: {e}"),
            at: self.base + start,
        })
    }

    /// A nested message, as a reader over its bytes.
    #[inline]
    pub fn message(&mut self) -> Result<Reader<'a>, WireError> {
        let bytes = self.bytes()?;
        Ok(Reader {
            buf: bytes,
            pos: 0,
            base: self.base + self.pos - bytes.len(),
        })
    }

    /// Skips a field of any wire type (an unknown field).
    pub fn skip(&mut self, field: u32, wire: WireType) -> Result<(), WireError> {
        self.skip_nested(field, wire, 0)
    }

    fn skip_nested(&mut self, field: u32, wire: WireType, depth: u32) -> Result<(), WireError> {
        match wire {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::StartGroup => {
                if depth >= GROUP_DEPTH_MAX {
                    return Err(self.err("groups nested too deep"));
                }
                loop {
                    match self.field()? {
                        None => return Err(self.err(format!("group {field} is not closed"))),
                        Some((f, WireType::EndGroup)) if f == field => return Ok(()),
                        Some((_, WireType::EndGroup)) => {
                            return Err(self.err("end of a group that was not started"));
                        }
                        Some((f, w)) => self.skip_nested(f, w, depth + 1)?,
                    }
                }
            }
            WireType::EndGroup => Err(self.err("end of a group that was not started")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    #[test]
    fn reads_fields_strings_and_nested_messages() {
        // { 1: "ab", 2: { 3: 150 }, 4: fixed64 1.5 }
        let mut buf = vec![0x0a, 2, b'a', b'b', 0x12, 3, 0x18, 0x96, 0x01, 0x21];
        buf.extend_from_slice(&1.5f64.to_le_bytes());
        let mut r = Reader::new(&buf);
        assert_eq!(r.field().expect("key"), Some((1, WireType::Len)));
        assert_eq!(r.str().expect("str"), "ab");
        assert_eq!(r.field().expect("key"), Some((2, WireType::Len)));
        let mut inner = r.message().expect("message");
        assert_eq!(inner.field().expect("key"), Some((3, WireType::Varint)));
        assert_eq!(inner.varint().expect("varint"), 150);
        assert_eq!(inner.field().expect("end"), None);
        assert_eq!(r.field().expect("key"), Some((4, WireType::Fixed64)));
        assert_eq!(r.double().expect("double"), 1.5);
        assert_eq!(r.field().expect("end"), None);
    }

    #[test]
    fn errors_name_the_byte() {
        let mut r = Reader::new(&[0x0a, 5, b'a']);
        r.field().expect("key");
        assert_eq!(
            r.str().expect_err("short").to_string(),
            "field of 5 bytes runs past the end (1 left) at byte 2"
        );
        // Inside a nested message, offsets count from the outer buffer.
        let mut r = Reader::new(&[0x0a, 2, 0x08, 0x80]);
        r.field().expect("key");
        let mut inner = r.message().expect("message");
        inner.field().expect("key");
        assert_eq!(
            inner.varint().expect_err("truncated").to_string(),
            "truncated varint at byte 4"
        );
        let mut r = Reader::new(&[0x0f]);
        assert_eq!(
            r.field().expect_err("wire type 7").to_string(),
            "invalid wire type 7 at byte 0"
        );
        let mut r = Reader::new(&[0x0a, 1, 0xff]);
        r.field().expect("key");
        assert!(r.str().expect_err("utf-8").to_string().contains("UTF-8"));
        let r = Reader::new(&[]);
        assert!(
            r.expect(1, WireType::Varint, WireType::Len)
                .expect_err("wrong type")
                .to_string()
                .starts_with("field 1 has wire type Varint, expected Len")
        );
    }

    #[test]
    fn skips_unknown_fields_groups_included() {
        // { 9: group { 1: 5 } , 2: fixed32, 1: "x" }
        let buf = [0x4b, 0x08, 5, 0x4c, 0x15, 1, 2, 3, 4, 0x0a, 1, b'x'];
        let mut r = Reader::new(&buf);
        let (f, w) = r.field().expect("key").expect("field");
        r.skip(f, w).expect("group");
        let (f, w) = r.field().expect("key").expect("field");
        r.skip(f, w).expect("fixed32");
        assert_eq!(r.field().expect("key"), Some((1, WireType::Len)));
        assert_eq!(r.str().expect("str"), "x");
        let mut unclosed = Reader::new(&[0x4b, 0x08, 5]);
        let (f, w) = unclosed.field().expect("key").expect("field");
        assert!(unclosed.skip(f, w).is_err());
    }

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<u64>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.varint().expect("varint"), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            while let Ok(Some((f, w))) = r.field() {
                if r.skip(f, w).is_err() {
                    break;
                }
            }
        }
    }
}
