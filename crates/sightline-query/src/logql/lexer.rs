//! Turns query text into tokens, each with the byte span it came from.
//!
//! Invariants: every token's `start..end` is a char-boundary span of the input; the last token
//! is always [`Tok::Eof`] at the input's length; lexing never panics, and a malformed literal
//! is a [`ParseError`] naming its offset.
//!
//! As in Loki's lexer, a number immediately followed by letters is one token: a duration when
//! it parses as one (`5m`, `1h30m`, `250ms`), else a byte size (`20KB`, `1.5MiB`), else an
//! error. `#` starts a comment running to the end of the line.

use super::parser::ParseError;
use super::units::{parse_bytes, parse_duration_ns};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Duration(i64),
    Bytes(u64),
    /// `--strict`, `--keep-empty`: the name without the dashes.
    Flag(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|`
    Pipe,
    /// `==`
    EqEq,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Lexes the whole query.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.tok == Tok::Eof;
        out.push(token);
        if done {
            return Ok(out);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                Some('#') => {
                    self.pos = self
                        .rest()
                        .find('\n')
                        .map_or(self.src.len(), |i| self.pos + i);
                }
                _ => return,
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_space_and_comments();
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let two = |a: char, b: char| c == a && self.peek2() == Some(b);
        let (tok, len) = if two('|', '=') {
            (Tok::PipeExact, 2)
        } else if two('|', '~') {
            (Tok::PipeMatch, 2)
        } else if two('!', '=') {
            (Tok::Neq, 2)
        } else if two('!', '~') {
            (Tok::Nre, 2)
        } else if two('=', '~') {
            (Tok::Re, 2)
        } else if two('=', '=') {
            (Tok::EqEq, 2)
        } else if two('>', '=') {
            (Tok::Ge, 2)
        } else if two('<', '=') {
            (Tok::Le, 2)
        } else if two('-', '-') && self.rest()[2..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Ok(self.lex_flag(start));
        } else {
            match c {
                '{' => (Tok::LBrace, 1),
                '}' => (Tok::RBrace, 1),
                '(' => (Tok::LParen, 1),
                ')' => (Tok::RParen, 1),
                '[' => (Tok::LBracket, 1),
                ']' => (Tok::RBracket, 1),
                ',' => (Tok::Comma, 1),
                '=' => (Tok::Eq, 1),
                '|' => (Tok::Pipe, 1),
                '>' => (Tok::Gt, 1),
                '<' => (Tok::Lt, 1),
                '+' => (Tok::Add, 1),
                '-' => (Tok::Sub, 1),
                '*' => (Tok::Mul, 1),
                '/' => (Tok::Div, 1),
                '%' => (Tok::Mod, 1),
                '^' => (Tok::Pow, 1),
                '"' => return self.lex_string(start),
                '`' => return self.lex_raw_string(start),
                c if c.is_ascii_digit()
                    || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) =>
                {
                    return self.lex_number(start);
                }
                c if c.is_ascii_alphabetic() || c == '_' => return Ok(self.lex_ident(start)),
                c => {
                    return Err(ParseError::new(
                        self.src,
                        start,
                        format!("unexpected character {c:?}"),
                    ));
                }
            }
        };
        self.pos += len;
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let begin = self.pos;
        while let Some(c) = self.peek() {
            if !keep(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.src[begin..self.pos]
    }

    fn lex_ident(&mut self, start: usize) -> Token {
        let text = self
            .take_while(|c| c.is_ascii_alphanumeric() || c == '_')
            .to_string();
        Token {
            tok: Tok::Ident(text),
            start,
            end: self.pos,
        }
    }

    fn lex_flag(&mut self, start: usize) -> Token {
        self.pos += 2;
        let name = self
            .take_while(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            .to_string();
        Token {
            tok: Tok::Flag(name),
            start,
            end: self.pos,
        }
    }

    fn lex_number(&mut self, start: usize) -> Result<Token, ParseError> {
        self.take_while(|c| c.is_ascii_digit() || c == '.');
        // An exponent: `1e3`, `2.5E-4`.
        let rest = self.rest().as_bytes();
        if matches!(rest.first(), Some(b'e' | b'E')) {
            let digit_at = if matches!(rest.get(1), Some(b'+' | b'-')) {
                2
            } else {
                1
            };
            if rest.get(digit_at).is_some_and(u8::is_ascii_digit) {
                self.pos += digit_at;
                self.take_while(|c| c.is_ascii_digit());
            }
        }
        let suffix = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | 'µ' | 'μ'));
        let text = &self.src[start..self.pos];
        let tok = if suffix.is_empty() {
            match text.parse::<f64>() {
                Ok(v) => Tok::Num(v),
                Err(_) => {
                    return Err(ParseError::new(
                        self.src,
                        start,
                        format!("invalid number {text:?}"),
                    ));
                }
            }
        } else if let Some(ns) = parse_duration_ns(text) {
            Tok::Duration(ns)
        } else if let Some(bytes) = parse_bytes(text) {
            Tok::Bytes(bytes)
        } else {
            return Err(ParseError::new(
                self.src,
                start,
                format!("invalid number, duration or byte size {text:?}"),
            ));
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn lex_raw_string(&mut self, start: usize) -> Result<Token, ParseError> {
        let body = &self.src[start + 1..];
        match body.find('`') {
            Some(i) => {
                self.pos = start + 1 + i + 1;
                Ok(Token {
                    tok: Tok::Str(body[..i].to_string()),
                    start,
                    end: self.pos,
                })
            }
            None => Err(ParseError::new(self.src, start, "unterminated raw string")),
        }
    }

    /// A Go interpreted string literal: `\n \t \" \\ \xHH \uHHHH \UHHHHHHHH \ooo` and friends.
    fn lex_string(&mut self, start: usize) -> Result<Token, ParseError> {
        self.pos = start + 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(ParseError::new(self.src, start, "unterminated string"));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => break,
                '\n' => {
                    return Err(ParseError::new(self.src, start, "newline in string"));
                }
                '\\' => value.push(self.lex_escape(at)?),
                c => value.push(c),
            }
        }
        Ok(Token {
            tok: Tok::Str(value),
            start,
            end: self.pos,
        })
    }

    fn lex_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let bad = |lexer: &Self, what: &str| ParseError::new(lexer.src, at, what.to_string());
        let Some(c) = self.peek() else {
            return Err(bad(self, "unterminated string"));
        };
        self.pos += c.len_utf8();
        let hex = |lexer: &mut Self, digits: usize| -> Result<char, ParseError> {
            let text = lexer.rest().get(..digits).unwrap_or("");
            let code = (text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(text, 16).ok())
                .flatten()
                .and_then(char::from_u32)
                .ok_or_else(|| bad(lexer, "invalid escape sequence in string"))?;
            lexer.pos += digits;
            Ok(code)
        };
        Ok(match c {
            'a' => '\u{07}',
            'b' => '\u{08}',
            'f' => '\u{0C}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{0B}',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            '0'..='7' => {
                let text = self.src.get(self.pos - 1..self.pos + 2).unwrap_or("");
                let code = (text.len() == 3 && text.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                    .then(|| u32::from_str_radix(text, 8).ok())
                    .flatten()
                    .filter(|&v| v <= 255)
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(self, "invalid octal escape in string"))?;
                self.pos += 2;
                code
            }
            other => {
                return Err(bad(
                    self,
                    &format!("invalid escape sequence \\{other} in string"),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src)
            .expect("lexes")
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn lexes_selectors_filters_and_operators() {
        assert_eq!(
            toks(r#"{a="x",b!~`y\d`} |= "q" != "r" |~ "s" !~ "t" | n >= 20KB"#),
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Eq,
                Tok::Str("x".into()),
                Tok::Comma,
                Tok::Ident("b".into()),
                Tok::Nre,
                Tok::Str(r"y\d".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("q".into()),
                Tok::Neq,
                Tok::Str("r".into()),
                Tok::PipeMatch,
                Tok::Str("s".into()),
                Tok::Nre,
                Tok::Str("t".into()),
                Tok::Pipe,
                Tok::Ident("n".into()),
                Tok::Ge,
                Tok::Bytes(20_000),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn lexes_numbers_durations_flags_and_comments() {
        assert_eq!(
            toks("[5m] 1.5 1e3 .5 1h30m --strict # ignored\n == ^"),
            vec![
                Tok::LBracket,
                Tok::Duration(300_000_000_000),
                Tok::RBracket,
                Tok::Num(1.5),
                Tok::Num(1000.0),
                Tok::Num(0.5),
                Tok::Duration(5_400_000_000_000),
                Tok::Flag("strict".into()),
                Tok::EqEq,
                Tok::Pow,
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn unescapes_go_strings() {
        assert_eq!(
            toks(r#""a\"b\\c\n\u00e9\x41\101""#),
            vec![Tok::Str("a\"b\\c\né\u{41}A".into()), Tok::Eof]
        );
    }

    #[test]
    fn reports_malformed_literals_with_offsets() {
        let check = |src: &str, want: &str| {
            let err = tokenize(src).expect_err(src);
            assert_eq!(err.to_string(), want, "{src}");
        };
        check(
            r#"{a="x"#,
            "parse error at line 1, col 4: unterminated string",
        );
        check(
            r#"{a="\d"}"#,
            r"parse error at line 1, col 5: invalid escape sequence \d in string",
        );
        check(
            "{a=`x",
            "parse error at line 1, col 4: unterminated raw string",
        );
        check(
            "\n  @",
            "parse error at line 2, col 3: unexpected character '@'",
        );
        check(
            "5zz",
            r#"parse error at line 1, col 1: invalid number, duration or byte size "5zz""#,
        );
        check(
            r#""\u12""#,
            "parse error at line 1, col 2: invalid escape sequence in string",
        );
    }
}
