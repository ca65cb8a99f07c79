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

/// Parses a Go-style duration (plus `d`, `w`, `y`) into nanoseconds.
pub fn parse_duration_ns(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > NUMBER_TEXT_BYTES_MAX {
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
