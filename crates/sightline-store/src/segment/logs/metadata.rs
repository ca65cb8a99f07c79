//! The metadata column of a logs block: one sub-column per field name, each with the
//! cheapest encoding its values allow.
//!
//! ```text
//! for each name of BlockMeta::keys (sorted):
//!   kind: u8
//!   kind 0 (text): per row  uvarint(len + 1) │ UTF-8 bytes       (0 = absent)
//!   kind 1 (hex):  per row  uvarint(n + 1)   │ n bytes            (0 = absent)
//!   kind 2 (uuid): per row  u8 present       │ 16 bytes if 1
//!   kind 3 (ipv4): per row  u8 present       │ 4 bytes if 1        (segment format 2)
//! ```
//!
//! Kind 1 is used when every present value is lowercase hex of even length (trace and span
//! ids), kind 2 when every present value is a canonical lowercase UUID (request ids): both
//! store the bytes the text spells, half its size, which zstd cannot get back on its own
//! from random hex. Kind 3 is used when every present value is an IPv4 address in canonical
//! dotted-decimal form (no leading zeros, each part at most 255): 4 bytes instead of 7 to
//! 15 characters. Decoding rebuilds the exact text.

use crate::StoreError;
use crate::codec::{self, Reader};

const KIND_TEXT: u8 = 0;
const KIND_HEX: u8 = 1;
const KIND_UUID: u8 = 2;
const KIND_IPV4: u8 = 3;
/// Longest hex value stored as bytes; longer ones stay text.
const HEX_TEXT_BYTES_MAX: usize = 128;

/// Lowercase hex digit → its value; every other byte → `NOT_HEX`.
const HEX_VALUE: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};
const NOT_HEX: u8 = 0xff;

fn is_lower_hex(s: &[u8]) -> bool {
    s.iter().all(|&b| HEX_VALUE[b as usize] != NOT_HEX)
}

/// Where the 16 byte pairs of a canonical UUID (8-4-4-4-12 hex digits) start.
const UUID_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The bytes a canonical lowercase UUID spells; `None` for anything else.
fn uuid_bytes(b: &[u8]) -> Option<[u8; 16]> {
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bad = 0u8;
    for (o, &i) in out.iter_mut().zip(&UUID_PAIRS) {
        let (hi, lo) = (HEX_VALUE[b[i] as usize], HEX_VALUE[b[i + 1] as usize]);
        bad |= hi | lo;
        *o = hi << 4 | lo;
    }
    // Digits are below 16; NOT_HEX sets the high bits.
    (bad < 16).then_some(out)
}

/// The bytes of an IPv4 address written canonically (`10.0.3.12`: four decimal parts of
/// 0 to 255 without leading zeros); `None` for anything else, so decoding gives the text back.
fn ipv4_bytes(b: &[u8]) -> Option<[u8; 4]> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    let mut out = [0u8; 4];
    let mut parts = b.split(|&c| c == b'.');
    for o in &mut out {
        let part = parts.next()?;
        let leading_zero = part.len() > 1 && part[0] == b'0';
        if part.is_empty() || part.len() > 3 || leading_zero {
            return None;
        }
        let n = part.iter().try_fold(0u16, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u16::from(c - b'0'))
        })?;
        *o = u8::try_from(n).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn push_ipv4_text(text: &mut Vec<u8>, b: &[u8]) {
    for (i, part) in b.iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        if *part >= 100 {
            text.push(b'0' + part / 100);
        }
        if *part >= 10 {
            text.push(b'0' + part / 10 % 10);
        }
        text.push(b'0' + part % 10);
    }
}

fn put_hex_bytes(out: &mut Vec<u8>, hex: &[u8]) {
    for pair in hex.chunks_exact(2) {
        out.push(HEX_VALUE[pair[0] as usize] << 4 | HEX_VALUE[pair[1] as usize]);
    }
}

fn push_hex_text(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
}

/// Appends one name's sub-column for `values` (one per row, `None` = absent): UTF-8 text,
/// which only the reader checks.
pub fn encode_values(out: &mut Vec<u8>, values: &[Option<&[u8]>]) {
    let mut col = ColumnBuilder::default();
    for (row, v) in values.iter().enumerate() {
        if let Some(v) = v {
            col.set(row, v);
        }
    }
    col.encode(values.len(), out);
}

/// Kinds a column may still take, as bits: each `set` clears those its value rules out.
const MAY_UUID: u8 = 1;
const MAY_IPV4: u8 = 2;
const MAY_HEX: u8 = 4;

/// One name's values of a block, copied out of the rows while a block is built.
///
/// A flush walks the head's rows in stream order, which is not the order they sit in
/// memory: reading every row again for each column, once to choose its kind and once to
/// encode it, missed the cache on every value (a tenth of ingest CPU in a profile). Here
/// each value is copied once, while its row is in cache, and its kind checked then; the
/// encoding reads the copies in order.
#[derive(Debug)]
pub struct ColumnBuilder {
    text: Vec<u8>,
    /// Per row up to the last one set: the value's span in `text`, or `None`.
    spans: Vec<Option<(u32, u32)>>,
    /// `MAY_*` bits of the kinds every value so far fits.
    kinds: u8,
}

impl Default for ColumnBuilder {
    fn default() -> Self {
        Self {
            text: Vec::new(),
            spans: Vec::new(),
            kinds: MAY_UUID | MAY_IPV4 | MAY_HEX,
        }
    }
}

impl ColumnBuilder {
    /// Sets row `row`'s value. Rows come in increasing order; rows skipped are absent, and
    /// a second value for one row replaces the first (the last one wins, as everywhere in
    /// ingest; the replaced value may still rule kinds out, which only costs bytes).
    pub fn set(&mut self, row: usize, v: &[u8]) {
        self.spans.resize(row, None);
        let start = self.text.len();
        self.text.extend_from_slice(v);
        // A block's text is bounded by BLOCK_RAW_BYTES_MAX plus one row, far below 4 GiB.
        self.spans
            .push(Some((start as u32, self.text.len() as u32)));
        if self.kinds & MAY_UUID != 0 && uuid_bytes(v).is_none() {
            self.kinds &= !MAY_UUID;
        }
        if self.kinds & MAY_IPV4 != 0 && ipv4_bytes(v).is_none() {
            self.kinds &= !MAY_IPV4;
        }
        if self.kinds & MAY_HEX != 0
            && !(v.len().is_multiple_of(2) && v.len() <= HEX_TEXT_BYTES_MAX && is_lower_hex(v))
        {
            self.kinds &= !MAY_HEX;
        }
    }

    /// Appends the sub-column of `rows` rows (rows after the last one set are absent), in
    /// the cheapest kind all its values fit.
    pub fn encode(&mut self, rows: usize, out: &mut Vec<u8>) {
        self.spans.resize(rows, None);
        let kind = if self.spans.iter().all(Option::is_none) {
            KIND_TEXT
        } else if self.kinds & MAY_UUID != 0 {
            KIND_UUID
        } else if self.kinds & MAY_IPV4 != 0 {
            KIND_IPV4
        } else if self.kinds & MAY_HEX != 0 {
            KIND_HEX
        } else {
            KIND_TEXT
        };
        out.push(kind);
        for span in &self.spans {
            let v = span.map(|(a, b)| &self.text[a as usize..b as usize]);
            match (kind, v) {
                (KIND_UUID | KIND_IPV4, None) => out.push(0),
                (KIND_IPV4, Some(v)) => {
                    out.push(1);
                    // Checked in `set`: every present value is an address.
                    out.extend_from_slice(&ipv4_bytes(v).unwrap_or_default());
                }
                (KIND_UUID, Some(v)) => {
                    out.push(1);
                    // Checked in `set`: every present value is a UUID.
                    out.extend_from_slice(&uuid_bytes(v).unwrap_or_default());
                }
                (_, None) => codec::put_uvarint(out, 0),
                (KIND_HEX, Some(v)) => {
                    codec::put_uvarint(out, v.len() as u64 / 2 + 1);
                    put_hex_bytes(out, v);
                }
                (_, Some(v)) => {
                    codec::put_uvarint(out, v.len() as u64 + 1);
                    out.extend_from_slice(v);
                }
            }
        }
    }
}

/// Decodes one name's sub-column of `rows` rows, appending each value's text to `text` and
/// returning its span there.
pub fn decode_values(
    r: &mut Reader<'_>,
    rows: usize,
    text: &mut Vec<u8>,
) -> Result<Vec<Option<(u32, u32)>>, StoreError> {
    let kind = r.bytes(1)?[0];
    let mut spans = Vec::with_capacity(rows);
    for _ in 0..rows {
        let start = text.len();
        let present = match kind {
            KIND_UUID => match r.bytes(1)?[0] {
                0 => false,
                _ => {
                    let b = r.bytes(16)?;
                    for (i, chunk) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
                        .iter()
                        .enumerate()
                    {
                        if i > 0 {
                            text.push(b'-');
                        }
                        push_hex_text(text, chunk);
                    }
                    true
                }
            },
            KIND_IPV4 => match r.bytes(1)?[0] {
                0 => false,
                _ => {
                    push_ipv4_text(text, r.bytes(4)?);
                    true
                }
            },
            KIND_HEX | KIND_TEXT => {
                let tag = r.uvarint()?;
                if tag == 0 {
                    false
                } else {
                    let n = usize::try_from(tag - 1).unwrap_or(usize::MAX);
                    let b = r.bytes(n)?;
                    if kind == KIND_HEX {
                        push_hex_text(text, b);
                    } else {
                        std::str::from_utf8(b).map_err(|_| {
                            StoreError::Corrupt("metadata column: invalid utf-8".into())
                        })?;
                        text.extend_from_slice(b);
                    }
                    true
                }
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "metadata column: unknown kind {other}"
                )));
            }
        };
        let end = u32::try_from(text.len())
            .map_err(|_| StoreError::Corrupt("metadata column: over 4 GiB of text".into()))?;
        spans.push(present.then_some((start as u32, end)));
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[Option<&str>]) -> (u8, Vec<Option<String>>) {
        let mut out = Vec::new();
        let bytes: Vec<Option<&[u8]>> = values.iter().map(|v| v.map(str::as_bytes)).collect();
        encode_values(&mut out, &bytes);
        let mut text = Vec::new();
        let mut r = Reader::new(&out, "test");
        let spans = decode_values(&mut r, values.len(), &mut text).expect("decode");
        assert!(r.is_empty());
        let got = spans
            .iter()
            .map(|s| {
                s.map(|(a, b)| {
                    String::from_utf8(text[a as usize..b as usize].to_vec()).expect("utf8")
                })
            })
            .collect();
        (out[0], got)
    }

    #[test]
    fn picks_the_cheapest_kind_and_restores_the_text() {
        let uuid = "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b";
        let check = |values: &[Option<&str>], kind: u8| {
            let (k, got) = round_trip(values);
            assert_eq!(k, kind, "{values:?}");
            let want: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(got, want);
        };
        check(&[Some(uuid), None, Some(uuid)], KIND_UUID);
        check(
            &[
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                Some("00f067aa0ba902b7"),
                None,
            ],
            KIND_HEX,
        );
        check(&[Some("ABCD")], KIND_TEXT);
        check(&[Some("abc")], KIND_TEXT);
        check(&[Some(uuid), Some("plain")], KIND_TEXT);
        check(&[Some("6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5g")], KIND_TEXT);
        check(
            &[
                Some("10.0.3.12"),
                None,
                Some("255.255.255.255"),
                Some("0.0.0.0"),
            ],
            KIND_IPV4,
        );
        for not_canonical in [
            "10.0.3.012",
            "10.0.3.256",
            "10.0.3",
            "10.0.3.1.2",
            "10..3.1",
        ] {
            check(&[Some("10.0.0.1"), Some(not_canonical)], KIND_TEXT);
        }
        check(&[Some("6F1C2A3B-4D5E-4F60-8A9B-0C1D2E3F4A5B")], KIND_TEXT);
        check(&[Some("6f1c2a3b4d5e-4f60-8a9b-0c1d2e3f4a5b-")], KIND_TEXT);
        check(&[None, None], KIND_TEXT);
        check(&[Some("")], KIND_HEX);
    }

    proptest! {
        #[test]
        fn any_values_round_trip(values in proptest::collection::vec(proptest::option::of("[0-9a-f-]{0,40}|.{0,10}|([0-9]{1,3}\\.){3}[0-9]{1,3}"), 0..20)) {
            let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            let (_, got) = round_trip(&refs);
            prop_assert_eq!(got, values);
        }

        #[test]
        fn address_like_values_round_trip(values in proptest::collection::vec(proptest::option::of("([0-9]{1,3}\\.){3}[0-9]{1,3}"), 0..6)) {
            let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            let (_, got) = round_trip(&refs);
            prop_assert_eq!(got, values);
        }

        #[test]
        fn decoding_garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), rows in 0usize..10) {
            let mut text = Vec::new();
            let _ = decode_values(&mut Reader::new(&bytes, "fuzz"), rows, &mut text);
        }
    }
}
