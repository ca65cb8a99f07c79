//! Query parameters as Loki and Prometheus accept them: times as RFC 3339, Unix seconds
//! (with a fraction) or Unix nanoseconds; steps as durations (`15s`) or seconds (`15`, `0.5`).

use crate::ApiError;
use sightline_model::NANOS_PER_SECOND;
use sightline_model::duration::parse_duration_ns;

/// Parses a time parameter into nanoseconds since the epoch.
pub fn parse_time_ns(name: &str, v: &str) -> Result<i64, ApiError> {
    let v = v.trim();
    if let Ok(n) = v.parse::<i64>() {
        // Loki takes integers as nanoseconds, but a 10-digit integer is clearly seconds.
        return Ok(if n.abs() < 100_000_000_000 {
            n.saturating_mul(NANOS_PER_SECOND)
        } else {
            n
        });
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return Ok((f * 1e9).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter {name:?}: cannot parse {v:?} as a timestamp"
            ))
        })
}

/// Parses a duration parameter (`15s`, `1m`, or a number of seconds) into nanoseconds.
pub fn parse_step_ns(name: &str, v: &str) -> Result<i64, ApiError> {
    let v = v.trim();
    let ns = match v.parse::<f64>() {
        Ok(f) if f.is_finite() => (f * 1e9).round() as i64,
        _ => parse_duration_ns(v)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter {name:?}: {e}")))?,
    };
    if ns <= 0 {
        return Err(ApiError::bad_data(format!(
            "invalid parameter {name:?}: zero or negative query resolution step widths are not accepted"
        )));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_steps() {
        assert_eq!(
            parse_time_ns("t", "1700000000").ok(),
            Some(1_700_000_000 * NANOS_PER_SECOND)
        );
        assert_eq!(
            parse_time_ns("t", "1700000000.5").ok(),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_time_ns("t", "1700000000000000000").ok(),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time_ns("t", "2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000 * NANOS_PER_SECOND)
        );
        assert!(parse_time_ns("t", "yesterday").is_err());
        assert_eq!(
            parse_step_ns("step", "15s").ok(),
            Some(15 * NANOS_PER_SECOND)
        );
        assert_eq!(
            parse_step_ns("step", "0.5").ok(),
            Some(NANOS_PER_SECOND / 2)
        );
        assert!(parse_step_ns("step", "0").is_err());
    }
}
