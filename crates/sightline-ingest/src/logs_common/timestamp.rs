//! Timestamps of JSON logs to nanoseconds since the Unix epoch.
//!
//! Accepted, in the order tried:
//! - numbers, or strings holding one, of epoch time; the unit is chosen by magnitude:
//!   below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds
//!   (so any date from 1973 to 2286 reads right in any unit); decimal text is exact, floats
//!   keep microseconds;
//! - RFC 3339: `2024-01-15T10:30:00Z`, `2024-01-15T10:30:00.123456+02:00`, `t`/`z`/space;
//! - an offset without a colon, as Java loggers write it: `2024-01-15T10:30:00.123+0000`;
//! - no zone at all, read as UTC, as Python's logging writes it: `2024-01-15 10:30:00,123`,
//!   `2024-01-15T10:30:00.123456`.
//!
//! Anything else, or a time outside what `i64` nanoseconds hold (years 1677 to 2262), is a
//! [`RecordError::BadTimestamp`] that quotes the value.

use chrono::{DateTime, NaiveDateTime};

mod rfc3339;

use super::json_value::JsonValue;
use crate::error::{RecordError, excerpt};

/// The longest timestamp text quoted in an error.
const QUOTED_CHARS_MAX: usize = 64;

const EPOCH_SECONDS_BELOW: f64 = 1e11;
const EPOCH_MILLIS_BELOW: f64 = 1e14;
const EPOCH_MICROS_BELOW: f64 = 1e17;

/// Nanoseconds of a JSON timestamp field: a string or a number.
pub fn timestamp_from_json(value: &JsonValue<'_>) -> Result<i64, RecordError> {
    let ns = match value {
        JsonValue::Str(s) => return timestamp_from_str(s),
        JsonValue::I64(n) => epoch_int_to_ns(i128::from(*n)),
        JsonValue::U64(n) => epoch_int_to_ns(i128::from(*n)),
        JsonValue::F64(n) => epoch_float_to_ns(*n),
        other => return Err(bad(&other.to_json_text(), "expected a string or a number")),
    };
    ns.ok_or_else(|| bad(&value.to_json_text(), "out of range"))
}

/// Nanoseconds of a timestamp string: an epoch number or a date-time (see the module doc).
pub fn timestamp_from_str(text: &str) -> Result<i64, RecordError> {
    let t = text.trim();
    if let Some(ns) = rfc3339::parse(t) {
        return ns.ok_or_else(|| bad(text, "out of range"));
    }
    let first = t.as_bytes().first().copied().unwrap_or(b' ');
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        let ns = epoch_decimal_to_ns(t).or_else(|| {
            let n = t.parse::<f64>().ok().filter(|n| n.is_finite())?;
            Some(epoch_float_to_ns(n))
        });
        // A date-time starts with a digit too, and is neither form: try it below.
        if let Some(ns) = ns {
            return ns.ok_or_else(|| bad(text, "out of range"));
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return dt
            .timestamp_nanos_opt()
            .ok_or_else(|| bad(text, "out of range"));
    }
    parse_lenient_date_time(t)
        .ok_or_else(|| bad(text, "expected RFC 3339 or epoch number"))?
        .ok_or_else(|| bad(text, "out of range"))
}

/// The forms RFC 3339 does not cover: `+hhmm` offsets and no zone (UTC), with `,` or `.`
/// before the fraction and `T` or a space before the time. `Some(None)` is a valid date-time
/// out of the `i64` range.
fn parse_lenient_date_time(t: &str) -> Option<Option<i64>> {
    // 2024-01-15 is 10 bytes; anything shorter than a date and a time is not one.
    if t.len() < 19 || t.len() > 64 {
        return None;
    }
    let mut buf = String::with_capacity(t.len());
    for (i, c) in t.char_indices() {
        buf.push(match c {
            ' ' | 't' if i == 10 => 'T',
            ',' => '.',
            'z' => 'Z',
            c => c,
        });
    }
    if let Ok(dt) = DateTime::parse_from_str(&buf, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.timestamp_nanos_opt());
    }
    let naive = buf.strip_suffix('Z').unwrap_or(&buf);
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|dt| dt.and_utc().timestamp_nanos_opt())
}

/// The power of ten of nanoseconds per unit an epoch number of this magnitude is in:
/// seconds (9), milliseconds (6), microseconds (3) or nanoseconds (0).
fn unit_exponent(magnitude: f64) -> u32 {
    if magnitude < EPOCH_SECONDS_BELOW {
        9
    } else if magnitude < EPOCH_MILLIS_BELOW {
        6
    } else if magnitude < EPOCH_MICROS_BELOW {
        3
    } else {
        0
    }
}

/// Nanoseconds of an integer epoch time in the unit its magnitude suggests; `None` when out
/// of the `i64` range.
fn epoch_int_to_ns(n: i128) -> Option<i64> {
    let exponent = unit_exponent(n.unsigned_abs() as f64);
    i64::try_from(n.checked_mul(10i128.pow(exponent))?).ok()
}

/// Nanoseconds of a decimal epoch number such as `-1705314600.123456`, computed exactly
/// (digits past a nanosecond are dropped): `None` if `t` is not of that form, `Some(None)`
/// if it is out of the `i64` range.
fn epoch_decimal_to_ns(t: &str) -> Option<Option<i64>> {
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    // i128::MAX has 39 digits; longer integer parts are out of range in any unit.
    if int_part.trim_start_matches('0').len() > 38 {
        return Some(None);
    }
    let int: i128 = int_part
        .bytes()
        .fold(0, |acc, b| acc * 10 + i128::from(b - b'0'));
    let exponent = unit_exponent(int as f64);
    let frac: i128 = frac_part
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(exponent as usize)
        .fold(0, |acc, b| acc * 10 + i128::from(b - b'0'));
    let ns = int
        .checked_mul(10i128.pow(exponent))
        .and_then(|n| n.checked_add(frac))
        .map(|n| if negative { -n } else { n });
    Some(ns.and_then(|n| i64::try_from(n).ok()))
}

/// Nanoseconds of a finite float epoch time in the unit its magnitude suggests; `None` when
/// out of the `i64` range. A float holds about 16 significant digits, so fractions of
/// seconds and milliseconds are rounded to the microsecond (what `time.time()` and
/// `Date.now()` carry), the rest to the nanosecond.
fn epoch_float_to_ns(n: f64) -> Option<i64> {
    let exponent = unit_exponent(n.abs());
    let whole = n.trunc();
    let step = if exponent >= 6 { 1000.0 } else { 1.0 };
    let frac_ns = ((n - whole) * 10f64.powi(exponent as i32) / step).round() * step;
    // `as` saturates (NaN to 0), so a huge float lands out of the i64 range below.
    let ns = (whole as i128)
        .checked_mul(10i128.pow(exponent))?
        .checked_add(frac_ns as i128)?;
    i64::try_from(ns).ok()
}

fn bad(value: &str, reason: &'static str) -> RecordError {
    RecordError::BadTimestamp {
        value: excerpt(value, QUOTED_CHARS_MAX),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-15T10:30:00Z.
    const T0_S: i64 = 1_705_314_600;
    const T0_NS: i64 = T0_S * 1_000_000_000;

    fn check(text: &str, want: i64) {
        assert_eq!(timestamp_from_str(text), Ok(want), "{text:?}");
    }

    #[test]
    fn parses_rfc3339_and_python_forms() {
        check("2024-01-15T10:30:00Z", T0_NS);
        check("2024-01-15T10:30:00.123456Z", T0_NS + 123_456_000);
        check("2024-01-15T10:30:00.123456789Z", T0_NS + 123_456_789);
        check("2024-01-15T12:30:00+02:00", T0_NS);
        check("2024-01-15t10:30:00z", T0_NS);
        check("2024-01-15 10:30:00Z", T0_NS);
        check("2024-01-15T10:30:00.123+0000", T0_NS + 123_000_000);
        check("2024-01-15T11:30:00+0100", T0_NS);
        check("2024-01-15 10:30:00,123", T0_NS + 123_000_000);
        check("2024-01-15T10:30:00.123456", T0_NS + 123_456_000);
        check("2024-01-15 10:30:00", T0_NS);
        check(" 2024-01-15T10:30:00Z ", T0_NS);
    }

    #[test]
    fn epoch_numbers_pick_the_unit_by_magnitude() {
        check("1705314600", T0_NS);
        check("1705314600.5", T0_NS + 500_000_000);
        check("1705314600123", T0_NS + 123_000_000);
        check("1705314600123456", T0_NS + 123_456_000);
        check("1705314600123456789", T0_NS + 123_456_789);
        check("0", 0);
        check("1705314600.123", T0_NS + 123_000_000);
        check("1705314600.1234567891", T0_NS + 123_456_789);
        check("1705314600123.456", T0_NS + 123_456_000);
        check("+1705314600", T0_NS);
        check("-1.5", -1_500_000_000);
        check("1.7053146e9", T0_NS);
        check("1.7053146e+9", T0_NS);
        check("17053146000e-1", T0_NS);
        check("-1", -1_000_000_000);
        let json = |s: &str| timestamp_from_json(&JsonValue::parse(s).expect("valid json"));
        assert_eq!(json("1705314600"), Ok(T0_NS));
        assert_eq!(json("1705314600.25"), Ok(T0_NS + 250_000_000));
        assert_eq!(json("1705314600.123456"), Ok(T0_NS + 123_456_000));
        assert_eq!(json("1705314600123.456"), Ok(T0_NS + 123_456_000));
        assert_eq!(json("-1.5"), Ok(-1_500_000_000));
        assert_eq!(json("1705314600123"), Ok(T0_NS + 123_000_000));
        assert_eq!(json("1705314600123456789"), Ok(T0_NS + 123_456_789));
        assert_eq!(json(r#""2024-01-15T10:30:00Z""#), Ok(T0_NS));
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        let reason = |text: &str| match timestamp_from_str(text) {
            Err(RecordError::BadTimestamp { reason, .. }) => reason,
            other => panic!("{text:?} gave {other:?}"),
        };
        assert_eq!(reason("yesterday"), "expected RFC 3339 or epoch number");
        assert_eq!(
            reason("2024-13-45T10:30:00Z"),
            "expected RFC 3339 or epoch number"
        );
        assert_eq!(reason("12abc"), "expected RFC 3339 or epoch number");
        assert_eq!(reason(""), "expected RFC 3339 or epoch number");
        assert_eq!(reason("99999999999999999999"), "out of range");
        assert_eq!(reason("1e300"), "out of range");
        assert_eq!(reason("NaN"), "expected RFC 3339 or epoch number");
        assert_eq!(reason("-inf"), "expected RFC 3339 or epoch number");
        assert_eq!(reason("9999-01-01T00:00:00Z"), "out of range");
        let e = timestamp_from_json(&JsonValue::Bool(true)).expect_err("not a time");
        assert_eq!(
            e.to_string(),
            r#"timestamp "true": expected a string or a number"#
        );
    }
}
