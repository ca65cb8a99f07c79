//! JSON for `| json` and `| unpack`: a small strict parser that borrows from the line.
//!
//! Written here rather than with `serde_json::Value` because Loki reports numbers exactly as
//! the line spells them (`1.50` stays `1.50`) and a path to an object yields its raw text;
//! both need the source spans, which `Value` throws away.
//!
//! Invariants: parsing never panics and never recurses deeper than [`JSON_DEPTH_MAX`]; a
//! string without escapes is borrowed, not copied.

use std::borrow::Cow;
use std::fmt;

use sightline_model::labels::sanitize_label_name;

/// Deepest nesting of objects and arrays accepted; deeper lines are a parse error.
pub const JSON_DEPTH_MAX: usize = 128;

/// A parsed value and the text it was parsed from.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    pub value: Value<'a>,
    pub raw: &'a str,
}

#[derive(Debug)]
pub(crate) enum Value<'a> {
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    Array(Vec<Node<'a>>),
    String(Cow<'a, str>),
    Number(&'a str),
    Bool(bool),
    Null,
}

impl<'a> Node<'a> {
    /// The value as a label value: strings unescaped, numbers as written, objects and arrays
    /// as their raw JSON, `null` as empty.
    pub fn label_value(&self) -> Cow<'a, str> {
        match &self.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => Cow::Borrowed(n),
            Value::Bool(true) => Cow::Borrowed("true"),
            Value::Bool(false) => Cow::Borrowed("false"),
            Value::Null => Cow::Borrowed(""),
            Value::Object(_) | Value::Array(_) => Cow::Borrowed(self.raw),
        }
    }
}

/// Why a line is not JSON; becomes `__error_details__`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a whole line, which must hold exactly one JSON object.
pub(crate) fn parse_object(line: &str) -> Result<Node<'_>, JsonError> {
    let mut parser = Parser { src: line, pos: 0 };
    parser.skip_space();
    if parser.peek() != Some(b'{') {
        return Err(parser.error("expected a JSON object"));
    }
    let node = parser.value(0)?;
    parser.skip_space();
    if parser.pos != line.len() {
        return Err(parser.error("trailing characters after JSON object"));
    }
    Ok(node)
}

/// Calls `emit(key, value)` for every scalar of the object, nested keys joined with `_` and
/// sanitized into label names (`{"a":{"b.c":1}}` gives `a_b_c`); arrays are skipped, as in
/// Loki.
pub(crate) fn flatten<'a>(node: &Node<'a>, emit: &mut dyn FnMut(String, Cow<'a, str>)) {
    fn walk<'a>(prefix: &str, node: &Node<'a>, emit: &mut dyn FnMut(String, Cow<'a, str>)) {
        let Value::Object(fields) = &node.value else {
            return;
        };
        for (key, child) in fields {
            if key.is_empty() {
                continue;
            }
            let name = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}_{key}")
            };
            match &child.value {
                Value::Object(_) => walk(&name, child, emit),
                Value::Array(_) => {}
                _ => emit(sanitize_label_name(&name), child.label_value()),
            }
        }
    }
    walk("", node, emit);
}

/// One step of a `| json name="path"` expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// A path such as `request.headers["User-Agent"]` or `servers[0].host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathSegment>);

impl JsonPath {
    /// Parses Loki's json expression syntax.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut first = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("[\"") {
                let (key, tail) = quoted_key(after)?;
                segments.push(PathSegment::Key(key));
                rest = tail
                    .strip_prefix(']')
                    .ok_or("expected ] after quoted key in json path")?;
            } else if let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or("unclosed [ in json path")?;
                let inner = after[..close].trim();
                let index = inner
                    .parse()
                    .map_err(|_| format!("invalid index {inner:?} in json path"))?;
                segments.push(PathSegment::Index(index));
                rest = &after[close + 1..];
            } else {
                let body = if first {
                    rest
                } else {
                    rest.strip_prefix('.')
                        .ok_or("expected . or [ in json path")?
                };
                let end = body.find(['.', '[']).unwrap_or(body.len());
                let key = &body[..end];
                if key.is_empty() {
                    return Err("empty field name in json path".to_string());
                }
                segments.push(PathSegment::Key(key.to_string()));
                rest = &body[end..];
            }
            first = false;
        }
        if segments.is_empty() {
            return Err("empty json path".to_string());
        }
        Ok(Self(segments))
    }

    /// The node the path leads to, if any.
    pub(crate) fn lookup<'n, 'a>(&self, root: &'n Node<'a>) -> Option<&'n Node<'a>> {
        let mut node = root;
        for segment in &self.0 {
            node = match (segment, &node.value) {
                (PathSegment::Key(k), Value::Object(fields)) => {
                    // The last duplicate wins, as in most JSON decoders.
                    &fields.iter().rev().find(|(name, _)| name == k)?.1
                }
                (PathSegment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(k)
                    if !k.is_empty()
                        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathSegment::Key(k) => {
                    f.write_str("[\"")?;
                    for c in k.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"]")?;
                }
                PathSegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A key after `["`, with `\"` and `\\` escapes, up to its closing quote; returns the key
/// and what follows the quote.
fn quoted_key(text: &str) -> Result<(String, &str), String> {
    let mut key = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((key, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e)) => key.push(e),
                None => break,
            },
            c => key.push(c),
        }
    }
    Err("unterminated quoted key in json path".to_string())
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn error(&self, what: &str) -> JsonError {
        JsonError(format!("{what} at offset {}", self.pos))
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", byte as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        self.skip_space();
        let start = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.object(depth + 1)?,
            Some(b'[') => self.array(depth + 1)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            Some(_) => return Err(self.error("unexpected character")),
            None => return Err(self.error("unexpected end of input")),
        };
        Ok(Node {
            value,
            raw: &self.src[start..self.pos],
        })
    }

    fn literal(&mut self, word: &str, value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > JSON_DEPTH_MAX {
            return Err(self.error("JSON nested too deeply"));
        }
        self.pos += 1;
        let mut fields = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(fields));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected object key"));
            }
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value(depth)?;
            fields.push((key, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(fields));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > JSON_DEPTH_MAX {
            return Err(self.error("JSON nested too deeply"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digits = |pos: &mut usize| {
            let begin = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos > begin
        };
        let mut pos = self.pos;
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        if !digits(&mut pos) {
            return Err(self.error("invalid number"));
        }
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            if !digits(&mut pos) {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            if matches!(bytes.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if !digits(&mut pos) {
                return Err(self.error("invalid number"));
            }
        }
        self.pos = pos;
        Ok(&self.src[start..pos])
    }

    /// A string at `pos` (which holds `"`).
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.src.as_bytes();
        // Fast path: no escapes.
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    let s = &self.src[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return Err(self.error("control character in string")),
                _ => self.pos += 1,
            }
        }
        let mut out = String::from(&self.src[start..self.pos]);
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    let escaped = bytes.get(self.pos).copied();
                    self.pos += 1;
                    match escaped {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{08}'),
                        Some(b'f') => out.push('\u{0C}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape in string")),
                    }
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => {
                    // Copy one whole UTF-8 character.
                    let len = self.src[self.pos..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                    out.push_str(&self.src[self.pos..self.pos + len]);
                    self.pos += len;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let text = self.src.get(self.pos..self.pos + 4).unwrap_or("");
        if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid \\u escape"));
        }
        self.pos += 4;
        u32::from_str_radix(text, 16).map_err(|_| self.error("invalid \\u escape"))
    }

    /// After `\u`: one code point, joining a surrogate pair; a lone surrogate becomes U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) && self.src[self.pos..].starts_with("\\u") {
            let save = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(high).unwrap_or('\u{FFFD}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(line: &str) -> Vec<(String, String)> {
        let node = parse_object(line).expect("valid JSON");
        let mut out = Vec::new();
        flatten(&node, &mut |k, v| out.push((k, v.into_owned())));
        out
    }

    #[test]
    fn flattens_nested_objects_like_loki() {
        let got = flat(
            r#"{"level":"error","exception":{"type":"IOError","code":1.50},"tags":["a"],"ok":true,"n":null,"a.b":"x","1st":"y"}"#,
        );
        let want: Vec<(String, String)> = [
            ("level", "error"),
            ("exception_type", "IOError"),
            ("exception_code", "1.50"),
            ("ok", "true"),
            ("n", ""),
            ("a_b", "x"),
            ("_1st", "y"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn unescapes_strings() {
        assert_eq!(
            flat(r#"{"m":"a\"b\\c\nd\u00e9\ud83d\ude00"}"#),
            vec![("m".to_string(), "a\"b\\c\ndé😀".to_string())]
        );
    }

    #[test]
    fn rejects_invalid_json() {
        for line in [
            "",
            "plain text",
            "[1,2]",
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":01.}"#,
            r#"{a:1}"#,
        ] {
            assert!(parse_object(line).is_err(), "{line:?}");
        }
        let deep = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
        assert!(parse_object(&deep).is_err());
    }

    #[test]
    fn paths_select_values_and_raw_subtrees() {
        let node = parse_object(
            r#"{"request":{"headers":{"User-Agent":"curl"},"ids":[7,{"x":"y"}]},"a.b":"dot"}"#,
        )
        .expect("valid JSON");
        let check = |path: &str, want: Option<&str>| {
            let path = JsonPath::parse(path).expect("valid path");
            let got = path.lookup(&node).map(|n| n.label_value().into_owned());
            assert_eq!(got.as_deref(), want, "{path}");
        };
        check(r#"request.headers["User-Agent"]"#, Some("curl"));
        check("request.ids[0]", Some("7"));
        check("request.ids[1]", Some(r#"{"x":"y"}"#));
        check("request.ids[1].x", Some("y"));
        check(r#"["a.b"]"#, Some("dot"));
        check("request.missing", None);
        check("request.ids[5]", None);
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("a[x]").is_err());
        assert!(JsonPath::parse("").is_err());
        for text in [r#"a.b[0]["c d"]"#, r#"["a]\"b"][1]"#] {
            let path = JsonPath::parse(text).expect("valid path");
            assert_eq!(path.to_string(), text);
            assert_eq!(JsonPath::parse(&path.to_string()), Ok(path));
        }
    }
}
