//! The byte scanner under [`crate::prom_text`]: one line at a time, no regex, no allocation
//! unless a label value or help text holds an escape.
//!
//! A [`Cursor`] walks one line (already split, trimmed of its line end and known to be
//! UTF-8). Every token it returns borrows from the line. It stops only at ASCII bytes, so
//! every slice it takes is on a character boundary. Errors carry the 1-based column (in
//! characters) where the unexpected text starts.

use std::borrow::Cow;

use memchr::memchr2;

use crate::error::{RecordError, excerpt};

/// Label pairs of one line, borrowed from it; reused from line to line.
pub(crate) type LabelPairs<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// A position in one line.
pub(crate) struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a str) -> Self {
        Self { line, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// Skips spaces and tabs; whether there were any.
    pub(crate) fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `byte` if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The rest of the line.
    pub(crate) fn rest(&self) -> &'a str {
        &self.line[self.pos.min(self.line.len())..]
    }

    /// A syntax error at the cursor.
    pub(crate) fn error(&self, reason: impl Into<String>) -> RecordError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, pos: usize, reason: impl Into<String>) -> RecordError {
        let pos = pos.min(self.line.len());
        RecordError::Syntax {
            reason: reason.into(),
            column: self.line[..pos].chars().count() + 1,
        }
    }

    /// What is at the cursor, quoted for an error message.
    pub(crate) fn found(&self) -> String {
        match self.rest() {
            "" => "end of line".to_string(),
            rest => format!("{:?}", excerpt(rest, 16)),
        }
    }

    /// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub(crate) fn metric_name(&mut self) -> Result<&'a str, RecordError> {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        match bytes.get(self.pos) {
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' || *b == b':' => self.pos += 1,
            _ => {
                return Err(self.error(format!("expected a metric name, found {}", self.found())));
            }
        }
        while bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
        {
            self.pos += 1;
        }
        Ok(&self.line[start..self.pos])
    }

    /// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Result<&'a str, RecordError> {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        match bytes.get(self.pos) {
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => self.pos += 1,
            _ => {
                return Err(self.error(format!("expected a label name, found {}", self.found())));
            }
        }
        while bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += 1;
        }
        Ok(&self.line[start..self.pos])
    }

    /// A run of non-blank characters (a value or a timestamp); empty at the end of the line.
    pub(crate) fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b' ' && b != b'\t') {
            self.pos += 1;
        }
        &self.line[start..self.pos]
    }

    /// The label pairs of `{a="b",c="d"}`, the cursor just after the `{`; appended to `out`.
    /// Blanks around tokens and a trailing comma are allowed.
    pub(crate) fn labels(&mut self, out: &mut LabelPairs<'a>) -> Result<(), RecordError> {
        loop {
            self.skip_blanks();
            if self.eat(b'}') {
                return Ok(());
            }
            if self.peek() == Some(b'"') {
                return Err(self.error("quoted label names are not supported"));
            }
            let name = self.label_name()?;
            self.skip_blanks();
            if !self.eat(b'=') {
                return Err(self.error(format!(
                    "expected '=' after label name {name:?}, found {}",
                    self.found()
                )));
            }
            self.skip_blanks();
            if !self.eat(b'"') {
                return Err(self.error(format!(
                    "expected a quoted value for label {name:?}, found {}",
                    self.found()
                )));
            }
            let value = self.quoted_rest(name)?;
            out.push((name, value));
            self.skip_blanks();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(());
            }
            return Err(self.error(format!(
                "expected ',' or '}}' after the value of label {name:?}, found {}",
                self.found()
            )));
        }
    }

    /// A quoted label value, the cursor just after the opening quote; unescaped.
    fn quoted_rest(&mut self, name: &str) -> Result<Cow<'a, str>, RecordError> {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        let mut escaped = false;
        let mut at = start;
        loop {
            let Some(offset) = memchr2(b'"', b'\\', &bytes[at..]) else {
                return Err(
                    self.error_at(start - 1, format!("unterminated value of label {name:?}"))
                );
            };
            at += offset;
            if bytes[at] == b'"' {
                break;
            }
            escaped = true;
            at += 2; // the backslash and the escaped byte
            if at > bytes.len() {
                return Err(
                    self.error_at(start - 1, format!("unterminated value of label {name:?}"))
                );
            }
        }
        self.pos = at + 1;
        let raw = &self.line[start..at];
        Ok(if escaped {
            unescape(raw)
        } else {
            Cow::Borrowed(raw)
        })
    }
}

/// Undoes the escapes of label values and help text: `\\`, `\"` and `\n`. Any other
/// backslash is kept as it is, as Prometheus keeps it.
pub(crate) fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// A sample value: a float as Go's `ParseFloat` reads it (`1`, `-1.5e3`, `NaN`, `+Inf`,
/// `-Inf`, any case), without hex floats.
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    // `f64::from_str` accepts `inf`, `infinity` and `nan` in any case, with a sign.
    text.parse::<f64>().ok()
}

/// A Prometheus text timestamp: integer milliseconds.
pub(crate) fn parse_timestamp_ms(text: &str) -> Option<i64> {
    text.parse::<i64>().ok()
}

/// An OpenMetrics timestamp: seconds, as a float, to milliseconds (truncated toward zero,
/// as Prometheus truncates). Plain decimals are converted exactly, so `1520879607.789`
/// is `1520879607789` whatever the binary float of it would round to.
pub(crate) fn parse_seconds_as_ms(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if plain {
        let mut ms = whole.parse::<i64>().ok()?.checked_mul(1000)?;
        let mut scale = 100;
        for b in fraction.bytes().take(3) {
            ms = ms.checked_add(i64::from(b - b'0') * scale)?;
            scale /= 10;
        }
        return Some(if negative { -ms } else { ms });
    }
    let seconds = parse_value(text)?;
    let ms = (seconds * 1000.0).trunc();
    // `as` saturates; refuse what does not fit rather than clamp it.
    (ms.is_finite() && ms.abs() < 9.2e18).then_some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(text: &str) -> Result<Vec<(String, String)>, RecordError> {
        let mut cursor = Cursor::new(text);
        assert!(cursor.eat(b'{'));
        let mut out = Vec::new();
        cursor.labels(&mut out)?;
        assert!(cursor.at_end(), "left {:?}", cursor.rest());
        Ok(out
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect())
    }

    #[test]
    fn scans_labels() {
        let check = |text: &str, want: &[(&str, &str)]| {
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(labels_of(text), Ok(want), "{text}");
        };
        check("{}", &[]);
        check(r#"{a="1"}"#, &[("a", "1")]);
        check(r#"{ a = "1" , b="2", }"#, &[("a", "1"), ("b", "2")]);
        check(r#"{a="q\"\\\n\t"}"#, &[("a", "q\"\\\n\\t")]);
        check(r#"{a="é, }"}"#, &[("a", "é, }")]);
        check(r#"{a="\\"}"#, &[("a", "\\")]);
        check(r#"{_a="", b_2="x"}"#, &[("_a", ""), ("b_2", "x")]);
    }

    #[test]
    fn label_errors_name_the_column() {
        let check = |text: &str, want: &str| {
            let e = labels_of(text).expect_err("invalid");
            assert_eq!(e.to_string(), want, "{text}");
        };
        check(
            r#"{1a="x"}"#,
            r#"expected a label name, found "1a=\"x\"}" at column 2"#,
        );
        check(
            r#"{a:"x"}"#,
            r#"expected '=' after label name "a", found ":\"x\"}" at column 3"#,
        );
        check(
            r#"{a=x}"#,
            r#"expected a quoted value for label "a", found "x}" at column 4"#,
        );
        check(
            r#"{a="x" b="y"}"#,
            r#"expected ',' or '}' after the value of label "a", found "b=\"y\"}" at column 8"#,
        );
        check(r#"{a="x"#, r#"unterminated value of label "a" at column 4"#);
        check(
            r#"{a="x\"#,
            r#"unterminated value of label "a" at column 4"#,
        );
        check(
            r#"{a="x","#,
            "expected a label name, found end of line at column 8",
        );
        check(
            r#"{"a.b"="x"}"#,
            "quoted label names are not supported at column 2",
        );
        check(
            r#"{é="x"}"#,
            r#"expected a label name, found "é=\"x\"}" at column 2"#,
        );
    }

    #[test]
    fn values_and_timestamps() {
        assert_eq!(parse_value("1"), Some(1.0));
        assert_eq!(parse_value("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert!(parse_value("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("1,5"), None);
        assert_eq!(parse_value("0x10"), None);

        assert_eq!(parse_timestamp_ms("1395066363000"), Some(1_395_066_363_000));
        assert_eq!(parse_timestamp_ms("-5"), Some(-5));
        assert_eq!(parse_timestamp_ms("1.5"), None);

        let check = |text: &str, want: Option<i64>| {
            assert_eq!(parse_seconds_as_ms(text), want, "{text}");
        };
        check("1520879607.789", Some(1_520_879_607_789));
        check("1520879607.7899", Some(1_520_879_607_789));
        check("1520879607", Some(1_520_879_607_000));
        check("1520879607.", Some(1_520_879_607_000));
        check("-1.5", Some(-1500));
        check("1.6e9", Some(1_600_000_000_000));
        check("1e300", None);
        check("NaN", None);
        check("x", None);
        check("", None);
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("plain"), Cow::Borrowed("plain"));
        assert_eq!(unescape(r#"a\nb\\c\"d\x"#), "a\nb\\c\"d\\x");
        assert_eq!(unescape("end\\"), "end\\");
    }
}
