//! Regular expressions as Prometheus' relabeling uses them: Go's RE2 syntax, fully anchored,
//! and Go's `$1` / `${1}` / `$name` template expansion.
//!
//! Rust's `regex` crate speaks nearly the same syntax as Go's `regexp`. The differences that
//! change what a relabel rule matches are translated before compiling:
//! - `\d`, `\w`, `\s`, `\b` (and their negations) are ASCII-only in Go and Unicode-aware in
//!   Rust, so they become explicit ASCII classes (`\w` → `[0-9A-Za-z_]`);
//! - inside a character class Go reads `[`, `&` and `~` literally, where Rust would start a
//!   nested class or a set operation, so they are escaped.
//!
//! Go-only syntax that Rust lacks (`\Q…\E`, octal escapes, `\C`) fails to compile, and the
//! configuration is refused with the compiler's message rather than silently meaning
//! something else.
//!
//! Expansion is written here rather than taken from `regex::Captures::expand` because the
//! two disagree at the edges: Go takes the longest run of letters, digits and `_` (Unicode
//! included) as the name after `$`, reads a number with a leading zero as a name, and keeps a
//! `$` that starts no valid reference as a literal `$`.

use std::fmt;

use regex::{Captures, Regex};

/// An anchored relabel regex: `^(?:<source>)$`, compiled with Go's semantics.
#[derive(Clone)]
pub struct RelabelRegex {
    /// The expression as configured, without the anchors.
    source: String,
    regex: Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored at both ends, as Prometheus does.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let translated = translate_go_syntax(source);
        let regex = Regex::new(&format!("^(?:{translated})$"))?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    /// The expression as configured (without the anchors Prometheus adds).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The captures of a whole-text match, if `text` matches.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Captures<'t>> {
        self.regex.captures(text)
    }

    /// Expands `template` with the groups of `captures`, as Go's `Regexp.ExpandString` does.
    pub fn expand(&self, template: &str, captures: &Captures<'_>) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some((reference, after)) = parse_reference(rest) else {
                out.push('$');
                continue;
            };
            rest = after;
            let group = match reference {
                Reference::Number(n) => captures.get(n),
                Reference::Name(name) => self.named_group(name).and_then(|i| captures.get(i)),
            };
            if let Some(m) = group {
                out.push_str(m.as_str());
            }
        }
        out.push_str(rest);
        out
    }

    /// The index of the group called `name`.
    fn named_group(&self, name: &str) -> Option<usize> {
        self.regex
            .capture_names()
            .position(|candidate| candidate == Some(name))
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelabelRegex({:?})", self.source)
    }
}

/// A group reference in a template: `$1`, `${1}`, `$name`, `${name}`.
enum Reference<'a> {
    Number(usize),
    Name(&'a str),
}

/// Most digits read as a group number; Go reads a longer digit run as a name.
const GROUP_NUMBER_DIGITS_MAX: usize = 9;

/// Parses the reference right after a `$`, returning it and the text after it; `None` when
/// the `$` starts no valid reference (Go then keeps the `$` as text).
fn parse_reference(text: &str) -> Option<(Reference<'_>, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(inner) => (true, inner),
        None => (false, text),
    };
    let name_len: usize = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &body[..name_len];
    let mut rest = &body[name_len..];
    if braced {
        rest = rest.strip_prefix('}')?;
    }
    let is_number = name.bytes().all(|b| b.is_ascii_digit())
        && !(name.len() > 1 && name.starts_with('0'))
        && name.len() <= GROUP_NUMBER_DIGITS_MAX;
    let reference = match name.parse::<usize>() {
        Ok(n) if is_number => Reference::Number(n),
        _ => Reference::Name(name),
    };
    Some((reference, rest))
}

/// Rewrites the parts of Go's syntax that Rust's `regex` reads differently (see the module
/// documentation).
fn translate_go_syntax(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut chars = source.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (escaped, in_class) {
                    ('d', false) => out.push_str("[0-9]"),
                    ('D', false) => out.push_str("[^0-9]"),
                    ('w', false) => out.push_str("[0-9A-Za-z_]"),
                    ('W', false) => out.push_str("[^0-9A-Za-z_]"),
                    ('s', false) => out.push_str(r"[\t\n\x0C\r ]"),
                    ('S', false) => out.push_str(r"[^\t\n\x0C\r ]"),
                    ('b', false) => out.push_str(r"(?-u:\b)"),
                    ('B', false) => out.push_str(r"(?-u:\B)"),
                    ('d', true) => out.push_str("0-9"),
                    ('w', true) => out.push_str("0-9A-Za-z_"),
                    ('s', true) => out.push_str(r"\t\n\x0C\r "),
                    ('D', true) => out.push_str("[^0-9]"),
                    ('W', true) => out.push_str("[^0-9A-Za-z_]"),
                    ('S', true) => out.push_str(r"[^\t\n\x0C\r ]"),
                    (other, _) => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A `]` first in a class is a literal in Go.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            '[' => {
                if chars.peek() == Some(&':') {
                    // A POSIX class such as `[:alpha:]`, which both engines read alike.
                    out.push('[');
                    for posix in chars.by_ref() {
                        out.push(posix);
                        if posix == ']' {
                            break;
                        }
                    }
                } else {
                    out.push_str(r"\[");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_with_go_semantics() {
        let check = |regex: &str, text: &str, want: bool| {
            let re = RelabelRegex::new(regex).unwrap();
            assert_eq!(re.is_match(text), want, "{regex} on {text:?}");
        };
        check("foo", "foo", true);
        check("foo", "foobar", false); // anchored at the end
        check("foo", "xfoo", false); // and at the start
        check("a|b", "b", true); // the alternation is grouped inside the anchors
        check(r"\d+", "123", true);
        check(r"\d+", "١٢٣", false); // Arabic-Indic digits: not \d in Go
        check(r"\w+", "café", false);
        check(r"\W", "é", true);
        check(r"[\w.]+", "a.b_1", true);
        check(r"[\w]+", "é", false);
        check(r"[^\d]+", "abc", true);
        check(r"[\D]", "7", false);
        check(r"\s", "\u{a0}", false); // no-break space: not \s in Go
        check(r"a\sb", "a\tb", true);
        check(r"[a[]+", "a[a", true); // `[` is literal in a Go class
        check(r"[]a]+", "]a", true);
        check(r"[^]a]", "b", true);
        check(r"[a&&b]+", "a&b", true); // no set intersection in Go
        check(r"[[:digit:]x]+", "1x2", true);
        check(r"\bfoo\b", "foo", true);
        check(r"(?i)FOO", "foo", true);
        check("", "", true);
        check("", "x", false);
    }

    #[test]
    fn refuses_what_go_would_not_compile_either() {
        assert!(RelabelRegex::new("((").is_err());
        assert!(RelabelRegex::new("a{2,1}").is_err());
    }

    #[test]
    fn expands_as_go_does() {
        let check = |regex: &str, text: &str, template: &str, want: &str| {
            let re = RelabelRegex::new(regex).unwrap();
            let caps = re.captures(text).unwrap();
            assert_eq!(re.expand(template, &caps), want, "{template:?}");
        };
        check("(a)(b)", "ab", "$1", "a");
        check("(a)(b)", "ab", "${2}x", "bx");
        check("(a)(b)", "ab", "$2x", ""); // `$2x` names the group "2x", which is absent
        check("(a)(b)", "ab", "$1_$2", "b"); // `$1_` is a name too
        check("(a)(b)", "ab", "${1}_${2}", "a_b");
        check("(a)(b)", "ab", "$$1", "$1");
        check("(a)(b)", "ab", "$", "$");
        check("(a)(b)", "ab", "x$-y", "x$-y");
        check("(a)(b)", "ab", "${1", "${1"); // unterminated brace: literal
        check("(a)(b)", "ab", "$3", ""); // no such group
        check("(a)(b)", "ab", "$01", ""); // a leading zero makes a name
        check("(a)(b)", "ab", "$0", "ab");
        check("(?P<first>a)(b)", "ab", "$first-${first}", "a-a");
        check("(a)|(b)", "b", "[$1][$2]", "[][b]"); // a group that did not take part
        check("(.*)", "x", "$1é", ""); // Unicode letters continue a name in Go
        check("(.*)", "x", "${1}é", "xé");
    }
}
