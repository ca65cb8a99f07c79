//! RFC 3339 UTC timestamps written straight into a byte buffer.
//!
//! `chrono`'s formatter builds an intermediate `String` per call; a log line is written on
//! every event, so this converts the Unix time by hand (Howard Hinnant's `civil_from_days`)
//! and writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` with no allocation.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `time` as an RFC 3339 UTC timestamp with microseconds, e.g.
/// `2026-11-25T07:17:12.123456Z`. Times before 1970 are clamped to the epoch.
pub(crate) fn write_rfc3339(buf: &mut Vec<u8>, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Writing into a Vec cannot fail.
    let _ = write!(
        buf,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z"
    );
}

/// Converts days since 1970-01-01 into a (year, month, day) civil date.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(secs: u64, micros: u32) -> String {
        let mut buf = Vec::new();
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros.into());
        write_rfc3339(&mut buf, t);
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn known_instants() {
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (leap day) 12:34:56.789012
        assert_eq!(fmt(951_827_696, 789_012), "2000-02-29T12:34:56.789012Z");
        // 2024-12-31T23:59:59Z
        assert_eq!(fmt(1_735_689_599, 0), "2024-12-31T23:59:59.000000Z");
        // 2100-03-01 (2100 is not a leap year)
        assert_eq!(fmt(4_107_542_400, 1), "2100-03-01T00:00:00.000001Z");
    }
}
