//! Durations in Prometheus' configuration format (`model.Duration`): whole numbers with the
//! units `y`, `w`, `d`, `h`, `m`, `s`, `ms`, each at most once and in that order (`1m30s`,
//! `1h`, `500ms`), or a bare `0`.
//!
//! This is stricter than [`sightline_model::duration::parse_duration`], which also takes
//! fractions (`1.5s`) and `us`/`ns` as Go's `time.ParseDuration` does: Prometheus refuses
//! those in a configuration, and a file valid here should load in Prometheus too.
//!
//! [`format_duration`] writes a duration back as Prometheus does for the
//! `__scrape_interval__` and `__scrape_timeout__` labels (`1m`, `1m30s`, `90d`).

use std::time::Duration;

/// The units in the order Prometheus requires them, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Longest duration text considered.
const DURATION_TEXT_BYTES_MAX: usize = 64;

/// Why a duration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("duration out of range: {0:?}")]
    OutOfRange(String),
}

/// Parses a duration as Prometheus' configuration does.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = || DurationError::Invalid(text.to_string());
    if text.len() > DURATION_TEXT_BYTES_MAX {
        return Err(invalid());
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::OutOfRange(text.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let position = UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        let (_, unit_ms) = UNITS[next_unit + position];
        next_unit += position + 1;
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .filter(|ms| *ms <= i64::MAX as u64 / 1_000_000)
            .ok_or_else(|| DurationError::OutOfRange(text.to_string()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration as Prometheus does: the largest units first, years and weeks only
/// when they divide it exactly, `0s` for zero.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, unit_ms) in UNITS {
        let exact_only = unit == "y" || unit == "w";
        if exact_only && ms % unit_ms != 0 {
            continue;
        }
        let count = ms / unit_ms;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(unit);
            ms -= count * unit_ms;
        }
    }
    out
}

/// `serde` glue: an optional duration field.
pub(crate) fn deserialize_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let text = <Option<String> as serde::Deserialize>::deserialize(d)?;
    text.map(|t| parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_prometheus() {
        let check = |text: &str, want: Result<u64, DurationError>| {
            let got = parse_duration(text).map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{text}");
        };
        check("15s", Ok(15_000));
        check("1m30s", Ok(90_000));
        check("1h", Ok(3_600_000));
        check("500ms", Ok(500));
        check("1d2h", Ok(26 * 3_600_000));
        check("2w", Ok(14 * 24 * 3_600_000));
        check("1y", Ok(365 * 24 * 3_600_000));
        check("0", Ok(0));
        check("0s", Ok(0));
        check("1m1ms", Ok(60_001));
        check("", Err(DurationError::Empty));
        check("1.5s", Err(DurationError::Invalid("1.5s".into())));
        check("10us", Err(DurationError::Invalid("10us".into())));
        check("30s1m", Err(DurationError::Invalid("30s1m".into())));
        check("1m1m", Err(DurationError::Invalid("1m1m".into())));
        check("5", Err(DurationError::Invalid("5".into())));
        check("s", Err(DurationError::Invalid("s".into())));
        check("-1s", Err(DurationError::Invalid("-1s".into())));
        check(
            "99999999999y",
            Err(DurationError::OutOfRange("99999999999y".into())),
        );
    }

    #[test]
    fn formats_as_prometheus() {
        let check = |ms: u64, want: &str| {
            assert_eq!(format_duration(Duration::from_millis(ms)), want, "{ms}");
        };
        check(0, "0s");
        check(15_000, "15s");
        check(60_000, "1m");
        check(90_000, "1m30s");
        check(3_600_000, "1h");
        check(90 * 24 * 3_600_000, "90d"); // not 12w6d
        check(14 * 24 * 3_600_000, "2w");
        check(365 * 24 * 3_600_000, "1y");
        check(1_500, "1s500ms");
        check(100, "100ms");
    }
}
