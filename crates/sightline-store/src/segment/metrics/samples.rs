//! The encoding of one series' samples inside a metrics block (before the block's zstd).
//!
//! ```text
//! timestamps: ivarint t0 │ ivarint (t1 - t0) │ ivarint delta-of-delta … (n - 2 of them)
//! values:     kind: u8 │ …
//!   kind 0, decimal: ivarint exp │ ivarint m0 │ ivarint (m_i - m_{i-1}) …   v_i = m_i / 10^exp
//!   kind 1, xor:     uvarint bits(v0) │ uvarint (bits(v_i) XOR bits(v_{i-1})) …
//! ```
//!
//! Regular scrapes make every delta-of-delta zero, one byte each before zstd and almost
//! nothing after. Values are written as decimals when every value of the series is exactly
//! `m / 10^exp` for an integer `|m| ≤ 2^53` and `exp ≤ 15` (counters, and gauges that carry a
//! few decimal digits): then consecutive mantissas differ by small integers. Otherwise (NaN,
//! infinities, staleness markers, `-0.0`, values of full binary precision) the XOR of
//! consecutive bit patterns is written, which keeps the sign and exponent bits of a slowly
//! changing value as leading zeros. Both decode to the exact bits that were encoded: the
//! decimal form is chosen only after every value is checked to round-trip through the same
//! division the decoder does.
//!
//! The number of samples is not stored here; the segment footer holds it.

use sightline_model::{STALE_NAN_BITS, Sample};

use crate::StoreError;
use crate::codec::{Reader, put_ivarint, put_uvarint};

const KIND_DECIMAL: u8 = 0;
const KIND_XOR: u8 = 1;
const EXP_MAX: usize = 15;
const MANTISSA_MAX: f64 = 9_007_199_254_740_992.0; // 2^53

const POW10: [f64; EXP_MAX + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The mantissa of `v` at `exp`, if `v` is exactly `m / 10^exp`.
fn mantissa_at(v: f64, exp: usize) -> Option<i64> {
    let m = (v * POW10[exp]).round();
    if m.is_nan() || m.abs() > MANTISSA_MAX {
        return None;
    }
    // Checked through the integer, exactly as the decoder computes it (so `-0.0`, whose
    // mantissa is `0`, fails and goes to the XOR form).
    let m = m as i64;
    ((m as f64 / POW10[exp]).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest exponent at which every value is an exact decimal, if there is one.
fn decimal_exponent(samples: &[Sample]) -> Option<usize> {
    let mut exp = 0;
    for s in samples {
        if mantissa_at(s.value, exp).is_none() {
            exp = (exp + 1..=EXP_MAX).find(|&e| mantissa_at(s.value, e).is_some())?;
        }
    }
    // A raised exponent must still fit the earlier values.
    samples
        .iter()
        .all(|s| mantissa_at(s.value, exp).is_some())
        .then_some(exp)
}

/// Appends the encoding of `samples` (sorted by time, unique timestamps) to `out`.
pub fn encode(samples: &[Sample], out: &mut Vec<u8>) {
    if samples.is_empty() {
        return;
    }
    let (mut prev_t, mut prev_d) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        match i {
            0 => put_ivarint(out, s.timestamp_ms),
            1 => {
                prev_d = s.timestamp_ms.wrapping_sub(prev_t);
                put_ivarint(out, prev_d);
            }
            _ => {
                let d = s.timestamp_ms.wrapping_sub(prev_t);
                put_ivarint(out, d.wrapping_sub(prev_d));
                prev_d = d;
            }
        }
        prev_t = s.timestamp_ms;
    }
    match decimal_exponent(samples) {
        Some(exp) => {
            out.push(KIND_DECIMAL);
            put_ivarint(out, exp as i64);
            let mut prev = 0i64;
            for s in samples {
                let m = mantissa_at(s.value, exp).unwrap_or(0);
                put_ivarint(out, m.wrapping_sub(prev));
                prev = m;
            }
        }
        None => {
            out.push(KIND_XOR);
            let mut prev = 0u64;
            for s in samples {
                let bits = s.value.to_bits();
                put_uvarint(out, bits ^ prev);
                prev = bits;
            }
        }
    }
}

/// Decodes `n` samples written by [`encode`], appending them to `out`. Returns whether one
/// of them is a staleness marker (only the XOR form can hold a NaN), told while the values
/// are in cache so that a query need not read them all again to find out.
pub fn decode(r: &mut Reader<'_>, n: usize, out: &mut Vec<Sample>) -> Result<bool, StoreError> {
    if n == 0 {
        return Ok(false);
    }
    let start = out.len();
    out.reserve(n);
    let mut t = r.ivarint()?;
    out.push(Sample {
        timestamp_ms: t,
        value: 0.0,
    });
    if n > 1 {
        let mut d = r.ivarint()?;
        t = t.wrapping_add(d);
        out.push(Sample {
            timestamp_ms: t,
            value: 0.0,
        });
        r.ivarints(n - 2, |dod| {
            d = d.wrapping_add(dod);
            t = t.wrapping_add(d);
            out.push(Sample {
                timestamp_ms: t,
                value: 0.0,
            });
        })?;
    }
    let mut slots = out[start..].iter_mut();
    match r.bytes(1)?[0] {
        KIND_DECIMAL => {
            let exp = usize::try_from(r.ivarint()?)
                .ok()
                .filter(|&e| e <= EXP_MAX)
                .ok_or_else(|| StoreError::Corrupt("metrics samples: bad exponent".into()))?;
            let scale = POW10[exp];
            let mut m = 0i64;
            r.ivarints(n, |x| {
                m = m.wrapping_add(x);
                if let Some(s) = slots.next() {
                    s.value = m as f64 / scale;
                }
            })?;
        }
        KIND_XOR => {
            let mut bits = 0u64;
            let mut stale = false;
            r.uvarints(n, |x| {
                bits ^= x;
                stale |= bits == STALE_NAN_BITS;
                if let Some(s) = slots.next() {
                    s.value = f64::from_bits(bits);
                }
            })?;
            return Ok(stale);
        }
        k => {
            return Err(StoreError::Corrupt(format!(
                "metrics samples: unknown value kind {k}"
            )));
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[Sample]) -> (Vec<Sample>, usize) {
        let mut buf = Vec::new();
        encode(samples, &mut buf);
        let mut r = Reader::new(&buf, "test");
        let mut out = Vec::new();
        decode(&mut r, samples.len(), &mut out).expect("decode");
        assert!(r.is_empty());
        (out, buf.len())
    }

    fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
        s.iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect()
    }

    fn check(values: &[f64], want_kind: u8) {
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                timestamp_ms: 1_700_000_000_000 + 15_000 * i as i64,
                value: v,
            })
            .collect();
        let (out, _) = round_trip(&samples);
        assert_eq!(bits(&out), bits(&samples), "{values:?}");
        let mut buf = Vec::new();
        encode(&samples, &mut buf);
        let mut r = Reader::new(&buf, "t");
        for _ in 0..samples.len() {
            r.ivarint().expect("ts");
        }
        assert_eq!(r.bytes(1).expect("kind")[0], want_kind, "{values:?}");
    }

    #[test]
    fn picks_decimal_when_exact_and_xor_otherwise() {
        check(&[1.0, 2.0, 3.0, 1e15], KIND_DECIMAL);
        check(&[0.1, 0.25, 12.375, -3.5], KIND_DECIMAL);
        check(&[57.38291, 57.40012], KIND_DECIMAL);
        check(&[1.0 / 3.0, 1.0], KIND_XOR);
        check(&[std::f64::consts::PI], KIND_DECIMAL);
        check(&[1.0, f64::NAN], KIND_XOR);
        check(&[1.0, sightline_model::stale_nan()], KIND_XOR);
        check(&[f64::INFINITY, 0.0], KIND_XOR);
        check(&[-0.0], KIND_XOR);
        check(&[1e300], KIND_XOR);
    }

    #[test]
    fn regular_scrapes_cost_about_two_bytes_a_sample_before_zstd() {
        let samples: Vec<Sample> = (0..1000)
            .map(|i| Sample {
                timestamp_ms: 1_700_000_000_000 + 15_000 * i,
                value: (i * 3) as f64,
            })
            .collect();
        let (_, len) = round_trip(&samples);
        assert!(len < 2 * samples.len() + 16, "{len}");
    }

    #[test]
    fn decoding_tells_whether_a_staleness_marker_is_among_the_samples() {
        let at = |i: i64, value: f64| Sample {
            timestamp_ms: 1_700_000_000_000 + 10_000 * i,
            value,
        };
        let decode_of = |samples: &[Sample]| {
            let mut buf = Vec::new();
            encode(samples, &mut buf);
            let mut out = Vec::new();
            let stale =
                decode(&mut Reader::new(&buf, "test"), samples.len(), &mut out).expect("decode");
            assert_eq!(bits(&out), bits(samples));
            stale
        };
        let stale = sightline_model::stale_nan();
        assert!(decode_of(&[at(0, 1.5), at(1, stale), at(2, 2.0)]));
        assert!(decode_of(&[at(0, stale)]));
        // Another NaN is not a marker, nor are decimal values.
        assert!(!decode_of(&[at(0, 1.0), at(1, f64::NAN), at(2, 0.1)]));
        assert!(!decode_of(&[at(0, 1.25), at(1, 2.5)]));
        assert!(!decode_of(&[]));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let samples = [
            Sample {
                timestamp_ms: 5,
                value: 1.5,
            },
            Sample {
                timestamp_ms: 9,
                value: 2.5,
            },
        ];
        let mut buf = Vec::new();
        encode(&samples, &mut buf);
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut], "t");
            assert!(decode(&mut r, 2, &mut Vec::new()).is_err(), "cut {cut}");
        }
    }

    proptest! {
        #[test]
        fn any_samples_round_trip_bit_exact(
            raw in proptest::collection::vec((any::<i64>(), any::<u64>()), 0..64),
            decimals in proptest::collection::vec((-1_000_000i64..1_000_000, 0usize..6), 0..64),
        ) {
            let mut samples: Vec<Sample> = raw
                .iter()
                .map(|&(t, b)| Sample { timestamp_ms: t, value: f64::from_bits(b) })
                .collect();
            samples.sort_by_key(|s| s.timestamp_ms);
            let (out, _) = round_trip(&samples);
            prop_assert_eq!(bits(&out), bits(&samples));
            let dec: Vec<Sample> = decimals
                .iter()
                .enumerate()
                .map(|(i, &(m, e))| Sample { timestamp_ms: i as i64 * 1000, value: m as f64 / POW10[e] })
                .collect();
            let (out, _) = round_trip(&dec);
            prop_assert_eq!(bits(&out), bits(&dec));
        }
    }
}
