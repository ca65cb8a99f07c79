//! Level normalisation: any logger's level name or number to one of [`LEVELS`](super::LEVELS).
//!
//! Names are matched case-insensitively against the spellings of the common loggers
//! (Python, Java util/log4j/logback, Go zap/zerolog/slog, Rust tracing, syslog, Serilog,
//! .NET, Node pino/bunyan/winston). Numbers are read on pino/bunyan's scale (10 trace, 20
//! debug, 30 info, 40 warn, 50 error, 60 fatal), the only common logger that writes its level
//! as a number in the `level` field; OTLP severity numbers have their own function.

use std::borrow::Cow;

use super::json_value::JsonValue;

/// Every recognised spelling (compared ignoring ASCII case) and its canonical level.
const LEVEL_ALIASES: &[(&str, &str)] = &[
    ("info", "info"),
    ("error", "error"),
    ("warn", "warn"),
    ("warning", "warn"),
    ("debug", "debug"),
    ("trace", "trace"),
    ("fatal", "fatal"),
    ("critical", "fatal"),
    ("information", "info"),
    ("informational", "info"),
    ("notice", "info"),
    ("inf", "info"),
    ("i", "info"),
    ("err", "error"),
    ("eror", "error"),
    ("severe", "error"),
    ("e", "error"),
    ("wrn", "warn"),
    ("w", "warn"),
    ("dbg", "debug"),
    ("d", "debug"),
    ("fine", "debug"),
    ("config", "debug"),
    ("trc", "trace"),
    ("finer", "trace"),
    ("finest", "trace"),
    ("verbose", "trace"),
    ("vrb", "trace"),
    ("t", "trace"),
    ("crit", "fatal"),
    ("panic", "fatal"),
    ("dpanic", "fatal"),
    ("alert", "fatal"),
    ("emerg", "fatal"),
    ("emergency", "fatal"),
    ("ftl", "fatal"),
    ("f", "fatal"),
];

/// The canonical level of a level name, ignoring ASCII case and surrounding spaces;
/// `None` when the name is not recognised.
pub fn level_from_text(text: &str) -> Option<&'static str> {
    let text = text.trim();
    LEVEL_ALIASES
        .iter()
        .find(|(alias, _)| alias.len() == text.len() && alias.eq_ignore_ascii_case(text))
        .map(|(_, level)| *level)
        .or_else(|| text.parse::<i64>().ok().and_then(level_from_pino_number))
}

/// The canonical level of a pino/bunyan level number (10 trace … 60 fatal); `None` below 1.
fn level_from_pino_number(n: i64) -> Option<&'static str> {
    match n {
        i64::MIN..=0 => None,
        1..=10 => Some("trace"),
        11..=20 => Some("debug"),
        21..=30 => Some("info"),
        31..=40 => Some("warn"),
        41..=50 => Some("error"),
        _ => Some("fatal"),
    }
}

/// The canonical level of an OTLP `severity_number`: 1-4 trace, 5-8 debug, 9-12 info,
/// 13-16 warn, 17-20 error, 21-24 fatal; `None` for 0 (unspecified) and anything else.
pub fn level_from_severity_number(n: i32) -> Option<&'static str> {
    match n {
        1..=4 => Some("trace"),
        5..=8 => Some("debug"),
        9..=12 => Some("info"),
        13..=16 => Some("warn"),
        17..=20 => Some("error"),
        21..=24 => Some("fatal"),
        _ => None,
    }
}

/// The canonical level of a JSON level field, and the original text when it is not
/// recognised (to be kept as metadata). Strings go through [`level_from_text`], integers
/// through the pino scale; other values are not levels.
pub fn normalize_level<'v>(
    value: &'v JsonValue<'_>,
) -> (Option<&'static str>, Option<Cow<'v, str>>) {
    let level = match value {
        JsonValue::Str(s) => level_from_text(s),
        JsonValue::I64(n) => level_from_pino_number(*n),
        JsonValue::U64(n) => level_from_pino_number(i64::try_from(*n).unwrap_or(i64::MAX)),
        _ => None,
    };
    match level {
        Some(level) => (Some(level), None),
        None => (None, value.scalar_text().filter(|t| !t.is_empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_canonical_levels() {
        let check =
            |text: &str, want: Option<&str>| assert_eq!(level_from_text(text), want, "{text:?}");
        check("INFO", Some("info"));
        check("Information", Some("info"));
        check("NOTICE", Some("info"));
        check("WARNING", Some("warn"));
        check("warning", Some("warn"));
        check("WARN", Some("warn"));
        check("CRITICAL", Some("fatal"));
        check("FATAL", Some("fatal"));
        check("PANIC", Some("fatal"));
        check("ALERT", Some("fatal"));
        check("EMERGENCY", Some("fatal"));
        check("ERR", Some("error"));
        check("SEVERE", Some("error"));
        check("DBG", Some("debug"));
        check("TRACE", Some("trace"));
        check(" debug ", Some("debug"));
        check("30", Some("info"));
        check("loud", None);
        check("", None);
    }

    #[test]
    fn severity_numbers_follow_otlp_ranges() {
        let got: Vec<Option<&str>> = [0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, -1]
            .into_iter()
            .map(level_from_severity_number)
            .collect();
        assert_eq!(
            got,
            [
                None,
                Some("trace"),
                Some("trace"),
                Some("debug"),
                Some("debug"),
                Some("info"),
                Some("info"),
                Some("warn"),
                Some("warn"),
                Some("error"),
                Some("error"),
                Some("fatal"),
                Some("fatal"),
                None,
                None
            ]
        );
    }

    #[test]
    fn json_levels_keep_unrecognised_text() {
        assert_eq!(normalize_level(&JsonValue::I64(50)), (Some("error"), None));
        assert_eq!(normalize_level(&JsonValue::U64(60)), (Some("fatal"), None));
        let loud = JsonValue::Str("LOUD".into());
        assert_eq!(normalize_level(&loud), (None, Some(Cow::Borrowed("LOUD"))));
        assert_eq!(
            normalize_level(&JsonValue::Bool(true)),
            (None, Some(Cow::Borrowed("true")))
        );
    }
}
