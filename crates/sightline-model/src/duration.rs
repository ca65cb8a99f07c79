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

/// Parses a duration into nanoseconds.
pub fn parse_duration_ns(input: &str) -> Result<i64, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns: f64 = match &rest[..unit_len] {
            "y" => 365.0 * 86_400e9,
            "w" => 7.0 * 86_400e9,
            "d" => 86_400e9,
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return Err(err("unknown unit")),
        };
        rest = &rest[unit_len..];
        total += value * unit_ns;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return Err(err("too large"));
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
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
