//! logfmt for `| logfmt`: `key=value key2="quoted \"value\"" flag`.
//!
//! Follows go-logfmt, which Loki uses: a key is a run of bytes above space other than `=` and
//! `"`; a bare value may not contain `=` or `"`; a quoted value takes JSON-style escapes; a
//! key without `=` has an empty value. In non-strict mode (Loki's default) a malformed pair is
//! skipped up to the next space and parsing goes on; in strict mode the first one stops the
//! parse and is reported.
//!
//! Invariant: never panics, borrows values that need no unescaping.

use std::borrow::Cow;

/// Parses `line`, calling `emit(key, value)` per pair in order. Returns the first error in
/// strict mode; in non-strict mode always `Ok`.
pub(crate) fn parse<'a>(
    line: &'a str,
    strict: bool,
    emit: &mut dyn FnMut(&'a str, Cow<'a, str>),
) -> Result<(), String> {
    let bytes = line.as_bytes();
    let mut pos = 0;
    loop {
        while bytes.get(pos).is_some_and(|&b| b <= b' ') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return Ok(());
        }
        match pair(line, pos) {
            Ok((key, value, next)) => {
                emit(key, value);
                pos = next;
            }
            Err((message, at)) => {
                if strict {
                    return Err(message);
                }
                // Skip the rest of the malformed token.
                pos = at + 1;
                while bytes.get(pos).is_some_and(|&b| b > b' ') {
                    pos += 1;
                }
            }
        }
    }
}

type PairResult<'a> = Result<(&'a str, Cow<'a, str>, usize), (String, usize)>;

/// One `key[=value]` starting at `start` (not whitespace); returns where the next begins.
fn pair(line: &str, start: usize) -> PairResult<'_> {
    let bytes = line.as_bytes();
    let unexpected = |at: usize| {
        let c = line[at..].chars().next().unwrap_or('?');
        (
            format!("logfmt syntax error at pos {}: unexpected {c:?}", at + 1),
            at,
        )
    };
    let mut pos = start;
    while bytes
        .get(pos)
        .is_some_and(|&b| b > b' ' && b != b'=' && b != b'"')
    {
        pos += 1;
    }
    let key = &line[start..pos];
    if key.is_empty() {
        return Err(unexpected(pos));
    }
    match bytes.get(pos) {
        Some(b'=') => pos += 1,
        Some(b'"') => return Err(unexpected(pos)),
        _ => return Ok((key, Cow::Borrowed(""), pos)),
    }
    if bytes.get(pos) == Some(&b'"') {
        let (value, next) = quoted(line, pos)?;
        return Ok((key, value, next));
    }
    let value_start = pos;
    while let Some(&b) = bytes.get(pos) {
        if b <= b' ' {
            break;
        }
        if b == b'=' || b == b'"' {
            return Err(unexpected(pos));
        }
        pos += 1;
    }
    Ok((key, Cow::Borrowed(&line[value_start..pos]), pos))
}

/// A quoted value whose opening quote is at `start`.
fn quoted(line: &str, start: usize) -> Result<(Cow<'_, str>, usize), (String, usize)> {
    let bytes = line.as_bytes();
    let mut pos = start + 1;
    let mut owned: Option<String> = None;
    let mut run_start = pos;
    loop {
        let Some(&b) = bytes.get(pos) else {
            return Err((
                "logfmt syntax error: unterminated quoted value".to_string(),
                start,
            ));
        };
        match b {
            b'"' => {
                let value = match owned {
                    Some(mut s) => {
                        s.push_str(&line[run_start..pos]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&line[run_start..pos]),
                };
                return Ok((value, pos + 1));
            }
            b'\\' => {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&line[run_start..pos]);
                let c = match bytes.get(pos + 1) {
                    Some(b'"') => '"',
                    Some(b'\\') => '\\',
                    Some(b'/') => '/',
                    Some(b'b') => '\u{08}',
                    Some(b'f') => '\u{0C}',
                    Some(b'n') => '\n',
                    Some(b'r') => '\r',
                    Some(b't') => '\t',
                    Some(b'u') => {
                        let hex = line.get(pos + 2..pos + 6).unwrap_or("");
                        let code = (hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                            .then(|| u32::from_str_radix(hex, 16).ok())
                            .flatten()
                            .ok_or_else(|| {
                                ("logfmt syntax error: invalid \\u escape".to_string(), pos)
                            })?;
                        s.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        pos += 6;
                        run_start = pos;
                        continue;
                    }
                    _ => {
                        return Err(("logfmt syntax error: invalid escape".to_string(), pos));
                    }
                };
                s.push(c);
                pos += 2;
                run_start = pos;
            }
            _ => pos += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str, strict: bool) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        parse(line, strict, &mut |k, v| {
            out.push((k.to_string(), v.into_owned()))
        })?;
        Ok(out)
    }

    fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_pairs_quotes_and_bare_keys() {
        assert_eq!(
            pairs(
                r#"level=info msg="hello \"world\"\n" took=1.5s flag url=/a?b empty="""#,
                true
            ),
            Ok(owned(&[
                ("level", "info"),
                ("msg", "hello \"world\"\n"),
                ("took", "1.5s"),
                ("flag", ""),
                ("url", "/a?b"),
                ("empty", ""),
            ]))
        );
    }

    #[test]
    fn strict_mode_reports_and_lenient_mode_skips() {
        let line = r#"a=1 =oops b=2 c="open"#;
        assert!(pairs(line, true).is_err());
        assert_eq!(pairs(line, false), Ok(owned(&[("a", "1"), ("b", "2")])));
        assert_eq!(
            pairs("x=a=b y=2", false),
            Ok(owned(&[("y", "2")])),
            "a bare value may not hold '='"
        );
        assert!(pairs(r#"k="\q""#, true).is_err());
    }
}
