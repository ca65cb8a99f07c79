//! Durations and byte sizes as LogQL writes them, in queries and in label values.
//!
//! - Durations follow Go's `time.ParseDuration` (`1h30m`, `1.5s`, `250ms`, `-2us`, `0`) and add
//!   Prometheus' `d`, `w` and `y` (365 days), so `[5m]`, `offset 1d` and a label value such as
//!   `"250ms"` all go through [`parse_duration_ns`].
//! - Byte sizes follow go-humanize's `ParseBytes` (`20KB` = 20 000, `1.5KiB` = 1 536, `10b`),
//!   units case-insensitive, as Loki's `| size > 20KB` does.
//!
//! Both return `None` on malformed input or overflow and never panic.

/// Longest number text either parser considers; longer input is refused, not truncated.
const NUMBER_TEXT_BYTES_MAX: usize = 64;

/// Parses a Go-style duration (plus `d`, `w`, `y`) into nanoseconds: the model's parser,
/// which every part of Sightline shares.
pub fn parse_duration_ns(text: &str) -> Option<i64> {
    sightline_model::duration::parse_duration_ns(text).ok()
}

/// Parses a human byte size (`20KB`, `1.5 MiB`, `300`, `10b`) into bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > NUMBER_TEXT_BYTES_MAX {
        return None;
    }
    let num_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(text.len());
    let number: String = text[..num_end].chars().filter(|&c| c != ',').collect();
    let value: f64 = number.parse().ok()?;
    let unit = text[num_end..].trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

pub use sightline_model::duration::format_duration_ns;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_and_prometheus_durations() {
        let check = |text: &str, want: Option<i64>| {
            assert_eq!(parse_duration_ns(text), want, "{text}");
        };
        check("5m", Some(300_000_000_000));
        check("1h30m", Some(5_400_000_000_000));
        check("1.5s", Some(1_500_000_000));
        check("250ms", Some(250_000_000));
        check(".5s", Some(500_000_000));
        check("2µs", Some(2_000));
        check("-1s", Some(-1_000_000_000));
        check("0", Some(0));
        check("1d", Some(86_400_000_000_000));
        check("1w", Some(604_800_000_000_000));
        check("", None);
        check("5", None);
        check("5x", None);
        check("s", None);
        check(".s", None);
        check("9999999999999999999999h", None);
    }

    #[test]
    fn parses_humanized_bytes() {
        let check = |text: &str, want: Option<u64>| {
            assert_eq!(parse_bytes(text), want, "{text}");
        };
        check("20KB", Some(20_000));
        check("20kb", Some(20_000));
        check("1.5KiB", Some(1_536));
        check("1 MiB", Some(1_048_576));
        check("300", Some(300));
        check("10b", Some(10));
        check("1,000B", Some(1_000));
        check("5XB", None);
        check("", None);
        check("KB", None);
    }

    #[test]
    fn formats_durations_that_parse_back() {
        for ns in [
            1,
            1_000,
            250_000_000,
            300_000_000_000,
            5_400_000_000_000,
            -60_000_000_000,
        ] {
            assert_eq!(parse_duration_ns(&format_duration_ns(ns)), Some(ns), "{ns}");
        }
        assert_eq!(format_duration_ns(5_400_000_000_000), "1h30m");
    }
}
