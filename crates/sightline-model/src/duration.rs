//! Durations as Prometheus, Loki and Go write them: `30d`, `1h30m`, `250ms`, `1.5s`.
//!
//! Units: `y` (365d), `w`, `d`, `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`. A number may have a
//! fraction (`1.5s`, as Go allows); a bare `0` is zero. The result is in nanoseconds.

/// Why a duration did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: {why}")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// Longest duration text considered; longer input is refused, not truncated.
const DURATION_TEXT_BYTES_MAX: usize = 64;

/// Parses a duration into nanoseconds, exactly (integer arithmetic, no float rounding).
pub fn parse_duration_ns(input: &str) -> Result<i64, DurationError> {
    parse_exact(input.trim()).ok_or_else(|| DurationError {
        input: input.to_string(),
        why: "expected a number and a unit (ns, us, ms, s, m, h, d, w, y), as in 1h30m",
    })
}

/// Nanoseconds in one unit of a duration suffix.
fn duration_unit_ns(unit: &str) -> Option<i128> {
    const S: i128 = 1_000_000_000;
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => S,
        "m" => 60 * S,
        "h" => 3_600 * S,
        "d" => 86_400 * S,
        "w" => 7 * 86_400 * S,
        "y" => 365 * 86_400 * S,
        _ => return None,
    })
}

fn parse_exact(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > DURATION_TEXT_BYTES_MAX {
        return None;
    }
    let (negative, mut rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = &rest[..int_end];
        rest = &rest[int_end..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            frac_part = &after_dot[..frac_end];
            rest = &after_dot[frac_end..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = duration_unit_ns(&rest[..unit_end])?;
        rest = &rest[unit_end..];
        let int_value: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut frac: i128 = 0;
        let mut scale: i128 = 1;
        for digit in frac_part.bytes().take(18) {
            frac = frac * 10 + i128::from(digit - b'0');
            scale *= 10;
        }
        total = total
            .checked_add(int_value.checked_mul(unit_ns)?)?
            .checked_add(frac * unit_ns / scale)?;
        if total > i128::from(i64::MAX) {
            return None;
        }
    }
    let total = i64::try_from(total).ok()?;
    Some(if negative { -total } else { total })
}

/// Formats nanoseconds the way Prometheus prints a range (`5m`, `1h30m`, `250ms`), for
/// `Display` of the syntax tree; the output parses back to the same value.
pub fn format_duration_ns(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = i128::from(ns);
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    for unit in ["y", "w", "d", "h", "m", "s", "ms", "us", "ns"] {
        let Some(size) = duration_unit_ns(unit) else {
            continue;
        };
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Parses a duration into a `std::time::Duration` (negative durations are refused).
pub fn parse_duration(input: &str) -> Result<std::time::Duration, DurationError> {
    let ns = parse_duration_ns(input)?;
    u64::try_from(ns)
        .map(std::time::Duration::from_nanos)
        .map_err(|_| DurationError {
            input: input.to_string(),
            why: "negative",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_and_go_durations() {
        let check = |s: &str, want: i64| assert_eq!(parse_duration_ns(s), Ok(want), "{s}");
        check("30d", 30 * 86_400_000_000_000);
        check("1h30m", 5_400_000_000_000);
        check("250ms", 250_000_000);
        check("1.5s", 1_500_000_000);
        check("0", 0);
        check("-5m", -300_000_000_000);
        check("10us", 10_000);
        assert!(parse_duration_ns("5").is_err());
        assert!(parse_duration_ns("5x").is_err());
        assert!(parse_duration_ns("").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
