//! The fast path for the one timestamp shape nearly every JSON logger prints:
//! `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, uppercase `T` and `Z`.
//!
//! Why by hand: a line's timestamp went through the epoch-number parsers (it starts with a
//! digit) and then chrono's general RFC 3339 parser, 3% of the ingest CPU. This reads fixed
//! positions and digits only. It answers only when sure: anything it does not take (a leap
//! second, lowercase `t`, ten fraction digits, a space) is `None`, and the caller goes on to
//! the general parsers, so it can never answer differently from them; a property test holds
//! it to chrono.

/// Nanoseconds since the epoch of `t`: `Some(Some(ns))`, `Some(None)` when the date-time
/// is valid but outside what `i64` nanoseconds hold, `None` when not this shape.
pub(super) fn parse(t: &str) -> Option<Option<i64>> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(&frac[..n])? * 10i64.pow(9 - n as u32);
        rest = &frac[n..];
    }
    let offset_s = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if *sign == b'+' { s } else { -s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(
        seconds
            .checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(nanos)),
    )
}

/// The value of ASCII digits; `None` if any byte is not one.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use proptest::prelude::*;

    fn chrono_ns(t: &str) -> Option<Option<i64>> {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_nanos_opt())
    }

    #[test]
    fn reads_what_loggers_print() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(Some(0)));
        assert_eq!(
            parse("2026-11-25T08:56:08.845484Z"),
            chrono_ns("2026-11-25T08:56:08.845484Z")
        );
        assert_eq!(
            parse("2024-02-29T23:59:59.5-01:30"),
            chrono_ns("2024-02-29T23:59:59.5-01:30")
        );
        assert_eq!(
            parse("2300-01-01T00:00:00Z"),
            Some(None),
            "past i64 nanoseconds"
        );
        for other in [
            "2023-02-29T00:00:00Z",
            "2024-01-15T10:30:60Z",
            "2024-01-15t10:30:00Z",
            "2024-01-15 10:30:00Z",
            "2024-01-15T10:30:00.1234567891Z",
            "2024-01-15T10:30:00",
            "2024-01-15T10:30:00+0200",
            "2024-01-15T10:30:00.Z",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn never_disagrees_with_chrono(
            year in 1600i64..2400, month in 0i64..14, day in 0i64..33,
            hour in 0i64..25, minute in 0i64..61, second in 0i64..61,
            frac in proptest::option::of("[0-9]{0,10}"),
            zone in prop_oneof![
                Just("Z".to_string()),
                Just("z".to_string()),
                (any::<bool>(), 0i64..25, 0i64..61)
                    .prop_map(|(p, h, m)| format!("{}{h:02}:{m:02}", if p { '+' } else { '-' })),
            ],
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let t = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{zone}");
            match parse(&t) {
                Some(ours) => prop_assert_eq!(Some(ours), chrono_ns(&t), "{}", t),
                None => {
                    // Declined: only shapes the fast path leaves to the general parsers.
                    let frac_ok = frac.is_empty() || (2..=10).contains(&frac.len());
                    let sure = zone != "z" && second < 60 && frac_ok;
                    prop_assert!(!sure || chrono_ns(&t).is_none(), "declined {}", t);
                }
            }
        }
    }
}
