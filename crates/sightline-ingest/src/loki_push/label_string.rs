//! Prometheus-style label strings, as Loki's protobuf push carries a stream's labels:
//! `{app="api", env="prod"}`.
//!
//! The grammar is that of a PromQL series selector with only `=` matchers: optional spaces
//! anywhere between tokens, a trailing comma allowed, names `[a-zA-Z_][a-zA-Z0-9_]*`, values
//! in double quotes or single quotes with Go's escapes (`\n`, `\t`, `\\`, `\"`, `\'`, `\xHH`,
//! octal `\NNN`, `\uHHHH`, `\UHHHHHHHH`, `\a \b \f \r \v`) or in backquotes taken raw. The
//! escapes must spell valid UTF-8. A name given twice is an error, as in Prometheus.
//!
//! Errors say what was expected and the byte offset, e.g.
//! `expected a quoted value at offset 3`.

/// Parses a label string into name/value pairs in the order written.
pub fn parse_label_string(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = Parser { text, pos: 0 };
    p.skip_spaces();
    p.expect(b'{', "'{'")?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    loop {
        p.skip_spaces();
        if p.eat(b'}') {
            break;
        }
        let name_at = p.pos;
        let name = p.name()?;
        p.skip_spaces();
        p.expect(b'=', "'='")?;
        p.skip_spaces();
        let value = p.quoted()?;
        if pairs.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label name {name:?} at offset {name_at}"));
        }
        pairs.push((name.to_string(), value));
        p.skip_spaces();
        if p.eat(b',') {
            continue;
        }
        p.expect(b'}', "',' or '}'")?;
        break;
    }
    p.skip_spaces();
    if p.pos != text.len() {
        return Err(format!("unexpected text after '}}' at offset {}", p.pos));
    }
    Ok(pairs)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expected(&self, what: &str) -> String {
        match self.peek() {
            None => format!("expected {what} at end of input"),
            Some(_) => format!("expected {what} at offset {}", self.pos),
        }
    }

    /// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn name(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        if !self
            .peek()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        {
            return Err(self.expected("a label name"));
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        Ok(&self.text[start..self.pos])
    }

    /// A value in `"…"`, `'…'` (Go escapes) or `` `…` `` (raw).
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.expected("a quoted value")),
        };
        self.pos += 1;
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let rest = &self.text.as_bytes()[self.pos..];
            // Copy the run of plain bytes up to the next quote or backslash at once.
            let run = rest
                .iter()
                .position(|&b| b == quote || (b == b'\\' && quote != b'`'))
                .ok_or_else(|| format!("unterminated quoted value starting at offset {start}"))?;
            bytes.extend_from_slice(&rest[..run]);
            self.pos += run;
            if self.eat(quote) {
                break;
            }
            self.pos += 1; // the backslash
            self.escape(&mut bytes)?;
        }
        String::from_utf8(bytes)
            .map_err(|_| format!("quoted value starting at offset {start} is not valid utf-8"))
    }

    /// One escape after its backslash, appended to `out` as bytes.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let at = self.pos - 1;
        let bad = || format!("invalid escape at offset {at}");
        let c = self.peek().ok_or_else(bad)?;
        self.pos += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        match c {
            b'x' => {
                let n = self.digits(2, 16).ok_or_else(bad)?;
                out.push(u8::try_from(n).map_err(|_| bad())?);
            }
            b'0'..=b'7' => {
                self.pos -= 1;
                let n = self.digits(3, 8).ok_or_else(bad)?;
                out.push(u8::try_from(n).map_err(|_| bad())?);
            }
            b'u' | b'U' => {
                let n = self
                    .digits(if c == b'u' { 4 } else { 8 }, 16)
                    .ok_or_else(bad)?;
                let ch = char::from_u32(n).ok_or_else(bad)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    /// Exactly `count` digits in `radix`.
    fn digits(&mut self, count: usize, radix: u32) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + count)?;
        let n = digits
            .chars()
            .try_fold(0u32, |acc, c| Some(acc * radix + c.to_digit(radix)?))?;
        self.pos += count;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: &[(&str, &str)]) {
        let got = parse_label_string(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want, "{text:?}");
    }

    fn check_err(text: &str, want: &str) {
        assert_eq!(parse_label_string(text), Err(want.to_string()), "{text:?}");
    }

    #[test]
    fn parses_label_strings() {
        check(
            r#"{app="api", env="prod"}"#,
            &[("app", "api"), ("env", "prod")],
        );
        check(r#"  { app = "api" , }  "#, &[("app", "api")]);
        check("{}", &[]);
        check(r#"{a="x\"y\\z\n\tq"}"#, &[("a", "x\"y\\z\n\tq")]);
        check(
            r#"{a='it\'s', b=`raw\n`}"#,
            &[("a", "it's"), ("b", "raw\\n")],
        );
        check(
            r#"{a="\u00e9\U0001F600\x41\101\303\251"}"#,
            &[("a", "é😀AAé")],
        );
        check(r#"{a="ünïcödé"}"#, &[("a", "ünïcödé")]);
        check(r#"{_a1="", b=""}"#, &[("_a1", ""), ("b", "")]);
    }

    #[test]
    fn reports_what_and_where() {
        check_err("{a=}", "expected a quoted value at offset 3");
        check_err("a=\"b\"", "expected '{' at offset 0");
        check_err("{a=\"b\"", "expected ',' or '}' at end of input");
        check_err("{a=\"b", "unterminated quoted value starting at offset 3");
        check_err("{1a=\"b\"}", "expected a label name at offset 1");
        check_err("{a.b=\"c\"}", "expected '=' at offset 2");
        check_err("{a=\"b\"} x", "unexpected text after '}' at offset 8");
        check_err("{a=\"\\q\"}", "invalid escape at offset 4");
        check_err("{a=\"\\xZZ\"}", "invalid escape at offset 4");
        check_err("{a=\"\\777\"}", "invalid escape at offset 4");
        check_err("{a=\"\\uD800\"}", "invalid escape at offset 4");
        check_err(
            "{a=\"\\xff\"}",
            "quoted value starting at offset 3 is not valid utf-8",
        );
        check_err(
            "{a=\"1\", a=\"2\"}",
            "duplicate label name \"a\" at offset 8",
        );
        check_err("", "expected '{' at end of input");
    }

    #[test]
    fn round_trips_model_display() {
        let labels = sightline_model::Labels::from_pairs([
            ("b", "q\"uo\\te\nnl"),
            ("a", "plain"),
            ("c", "ünï"),
        ]);
        let parsed = parse_label_string(&labels.to_string()).expect("display output parses");
        assert_eq!(sightline_model::Labels::from_pairs(parsed), labels);
    }
}
