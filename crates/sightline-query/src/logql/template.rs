//! The Go `text/template` subset that `line_format` and `label_format` accept.
//!
//! Supported: text; actions `{{ pipeline }}` with `{{-`/`-}}` whitespace trimming and
//! `{{/* comments */}}`; operands `.name` (a label, stream, metadata or extracted),
//! `__line__`, string and number literals; commands chained with `|`, where the previous
//! value becomes the last argument, as in Go; the functions listed in [`Func`].
//!
//! Everything else (`if`, `range`, `with`, variables, parentheses, unknown functions) is
//! refused when the query is parsed, never at evaluation, so a compiled template cannot fail.
//! As in Go with a `map[string]string`, printing a missing label yields `<no value>`; a
//! missing label passed to a function is the empty string.

/// What a template reads while rendering.
pub(crate) trait TemplateData {
    /// The value of a label, if set.
    fn field(&self, name: &str) -> Option<&str>;
    /// The current log line.
    fn line(&self) -> &str;
}

#[derive(Clone, Debug)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Action(Vec<Command>),
}

#[derive(Clone, Debug)]
enum Command {
    Arg(Arg),
    Call(Func, Vec<Arg>),
}

#[derive(Clone, Debug)]
enum Arg {
    Field(String),
    Line,
    Text(String),
}

/// Template functions: Loki's Go names and their sprig aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    ToUpper,
    ToLower,
    TrimSpace,
    Title,
    /// sprig `default DEFAULT VALUE`
    Default,
    /// sprig `trunc N VALUE`
    Trunc,
    /// sprig `replace OLD NEW VALUE`
    Replace,
    /// Go `Replace VALUE OLD NEW N`
    GoReplace,
    /// sprig `trimPrefix PREFIX VALUE`
    TrimPrefix,
    /// sprig `trimSuffix SUFFIX VALUE`
    TrimSuffix,
    /// Go `TrimPrefix VALUE PREFIX`
    GoTrimPrefix,
    /// Go `TrimSuffix VALUE SUFFIX`
    GoTrimSuffix,
    /// sprig `repeat N VALUE`
    Repeat,
    /// sprig `substr START END VALUE`
    Substr,
}

impl Func {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ToUpper" | "upper" => Func::ToUpper,
            "ToLower" | "lower" => Func::ToLower,
            "TrimSpace" | "trim" => Func::TrimSpace,
            "Title" | "title" => Func::Title,
            "default" => Func::Default,
            "trunc" => Func::Trunc,
            "replace" => Func::Replace,
            "Replace" => Func::GoReplace,
            "trimPrefix" => Func::TrimPrefix,
            "trimSuffix" => Func::TrimSuffix,
            "TrimPrefix" => Func::GoTrimPrefix,
            "TrimSuffix" => Func::GoTrimSuffix,
            "repeat" => Func::Repeat,
            "substr" => Func::Substr,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Func::ToUpper | Func::ToLower | Func::TrimSpace | Func::Title => 1,
            Func::Default
            | Func::Trunc
            | Func::TrimPrefix
            | Func::TrimSuffix
            | Func::GoTrimPrefix
            | Func::GoTrimSuffix
            | Func::Repeat => 2,
            Func::Replace | Func::Substr => 3,
            Func::GoReplace => 4,
        }
    }

    fn apply(self, args: &[String]) -> String {
        let int = |s: &str| s.trim().parse::<i64>().unwrap_or(0);
        let a = |i: usize| args.get(i).map_or("", String::as_str);
        match self {
            Func::ToUpper => a(0).to_uppercase(),
            Func::ToLower => a(0).to_lowercase(),
            Func::TrimSpace => a(0).trim().to_string(),
            Func::Title => title_case(a(0)),
            Func::Default => {
                if a(1).is_empty() {
                    a(0).to_string()
                } else {
                    a(1).to_string()
                }
            }
            Func::Trunc => {
                let n = int(a(0));
                let chars: Vec<char> = a(1).chars().collect();
                let len = chars.len() as i64;
                let (from, to) = if n >= 0 {
                    (0, n.min(len))
                } else {
                    ((len + n).max(0), len)
                };
                chars[from as usize..to as usize].iter().collect()
            }
            Func::Replace => a(2).replace(a(0), a(1)),
            Func::GoReplace => {
                let n = int(a(3));
                if n < 0 {
                    a(0).replace(a(1), a(2))
                } else {
                    a(0).replacen(a(1), a(2), n as usize)
                }
            }
            Func::TrimPrefix => a(1).strip_prefix(a(0)).unwrap_or(a(1)).to_string(),
            Func::TrimSuffix => a(1).strip_suffix(a(0)).unwrap_or(a(1)).to_string(),
            Func::GoTrimPrefix => a(0).strip_prefix(a(1)).unwrap_or(a(0)).to_string(),
            Func::GoTrimSuffix => a(0).strip_suffix(a(1)).unwrap_or(a(0)).to_string(),
            Func::Repeat => {
                let n = usize::try_from(int(a(0))).unwrap_or(0);
                // Bound the output so a template cannot blow up memory.
                let n = n.min(TEMPLATE_OUTPUT_BYTES_MAX / a(1).len().max(1));
                a(1).repeat(n)
            }
            Func::Substr => {
                let chars: Vec<char> = a(2).chars().collect();
                let len = chars.len() as i64;
                let start = int(a(0)).clamp(0, len);
                let end = int(a(1));
                let end = if end < 0 { len } else { end.clamp(start, len) };
                chars[start as usize..end as usize].iter().collect()
            }
        }
    }
}

/// Most bytes `repeat` may produce.
const TEMPLATE_OUTPUT_BYTES_MAX: usize = 64 * 1024;

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if at_word_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !c.is_alphanumeric();
    }
    out
}

impl Template {
    /// Parses a template; the error says what is unsupported or malformed.
    pub fn new(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut trim_next_text = false;
        while !rest.is_empty() {
            let open = rest.find("{{").unwrap_or(rest.len());
            let mut text = &rest[..open];
            if trim_next_text {
                text = text.trim_start();
            }
            rest = &rest[open..];
            let Some(after_open) = rest.strip_prefix("{{") else {
                push_text(&mut parts, text);
                break;
            };
            let close = after_open
                .find("}}")
                .ok_or_else(|| "unclosed action {{ in template".to_string())?;
            let mut inner = &after_open[..close];
            rest = &after_open[close + 2..];
            if inner.starts_with("- ") || inner.starts_with("-\t") || inner.starts_with("-\n") {
                text = text.trim_end();
                inner = &inner[1..];
            }
            trim_next_text = false;
            if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
                trim_next_text = true;
                inner = &inner[..inner.len() - 1];
            }
            push_text(&mut parts, text);
            let inner = inner.trim();
            if inner.starts_with("/*") && inner.ends_with("*/") {
                continue;
            }
            parts.push(Part::Action(parse_pipeline(inner)?));
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether rendering reads `__line__`.
    pub fn uses_line(&self) -> bool {
        self.args().any(|a| matches!(a, Arg::Line))
    }

    /// Whether rendering reads any label.
    pub fn uses_fields(&self) -> bool {
        self.args().any(|a| matches!(a, Arg::Field(_)))
    }

    fn args(&self) -> impl Iterator<Item = &Arg> {
        self.parts
            .iter()
            .flat_map(|p| match p {
                Part::Text(_) => [].iter(),
                Part::Action(cmds) => cmds.iter(),
            })
            .flat_map(|c| match c {
                Command::Arg(a) => std::slice::from_ref(a).iter(),
                Command::Call(_, args) => args.iter(),
            })
    }

    /// Renders into `out` (cleared first).
    pub(crate) fn render(&self, data: &dyn TemplateData, out: &mut String) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(cmds) => {
                    let mut value: Option<String> = None;
                    for (i, cmd) in cmds.iter().enumerate() {
                        value = match cmd {
                            Command::Arg(arg) if i == 0 => arg_value(arg, data).map(str::to_string),
                            Command::Arg(_) => value,
                            Command::Call(func, args) => {
                                let mut vals: Vec<String> = args
                                    .iter()
                                    .map(|a| arg_value(a, data).unwrap_or("").to_string())
                                    .collect();
                                if i > 0 {
                                    vals.push(value.unwrap_or_default());
                                }
                                Some(func.apply(&vals))
                            }
                        };
                    }
                    out.push_str(value.as_deref().unwrap_or("<no value>"));
                }
            }
        }
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.to_string()));
    }
}

fn arg_value<'d>(arg: &'d Arg, data: &'d dyn TemplateData) -> Option<&'d str> {
    match arg {
        Arg::Field(name) => data.field(name),
        Arg::Line => Some(data.line()),
        Arg::Text(t) => Some(t),
    }
}

const UNSUPPORTED_KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// `cmd | cmd | …` inside one action.
fn parse_pipeline(inner: &str) -> Result<Vec<Command>, String> {
    if inner.is_empty() {
        return Err("empty action {{}} in template".to_string());
    }
    let words = split_words(inner)?;
    let mut commands = Vec::new();
    for (i, group) in words.split(|w| w == "|").enumerate() {
        let Some((head, tail)) = group.split_first() else {
            return Err("empty command in template pipeline".to_string());
        };
        if let Some(arg) = parse_arg(head)? {
            if !tail.is_empty() || i > 0 {
                return Err(format!(
                    "cannot call {head:?} in template: it is not a function"
                ));
            }
            commands.push(Command::Arg(arg));
            continue;
        }
        if UNSUPPORTED_KEYWORDS.contains(&head.as_str()) {
            return Err(format!("unsupported template action {{{{{head}}}}}"));
        }
        let func = Func::from_name(head)
            .ok_or_else(|| format!("function {head:?} not defined in template"))?;
        let args = tail
            .iter()
            .map(|w| parse_arg(w)?.ok_or_else(|| format!("unexpected {w:?} in template")))
            .collect::<Result<Vec<_>, _>>()?;
        let given = args.len() + usize::from(i > 0);
        if given != func.arity() {
            return Err(format!(
                "wrong number of args for {head} in template: want {} got {given}",
                func.arity()
            ));
        }
        commands.push(Command::Call(func, args));
    }
    Ok(commands)
}

/// An operand, or `None` when the word is a function name.
fn parse_arg(word: &str) -> Result<Option<Arg>, String> {
    if let Some(name) = word.strip_prefix('.') {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("unsupported field {word:?} in template"));
        }
        return Ok(Some(Arg::Field(name.to_string())));
    }
    if word == "__line__" {
        return Ok(Some(Arg::Line));
    }
    if word.starts_with("__") && word.ends_with("__") {
        return Err(format!("unsupported template function {word}"));
    }
    if let Some(body) = word.strip_prefix('`') {
        return Ok(Some(Arg::Text(body.trim_end_matches('`').to_string())));
    }
    if let Some(body) = word.strip_prefix('"') {
        return unquote(body).map(|s| Some(Arg::Text(s)));
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        return match word.parse::<f64>() {
            Ok(_) => Ok(Some(Arg::Text(word.to_string()))),
            Err(_) => Err(format!("invalid number {word:?} in template")),
        };
    }
    if word.starts_with('$') || word.starts_with('(') || word == "." {
        return Err(format!("unsupported {word:?} in template"));
    }
    Ok(None)
}

/// The body of a `"…"` word after its opening quote, closing quote included.
fn unquote(body: &str) -> Result<String, String> {
    let body = body
        .strip_suffix('"')
        .ok_or_else(|| "unterminated string in template".to_string())?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('\\') => '\\',
            Some('"') => '"',
            _ => return Err("invalid escape in template string".to_string()),
        });
    }
    Ok(out)
}

/// Splits an action into words: quoted strings stay whole, `|` is its own word.
fn split_words(inner: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = inner.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '|' {
            chars.next();
            words.push("|".to_string());
            continue;
        }
        if c == '(' || c == ')' {
            return Err("parentheses are not supported in templates".to_string());
        }
        let mut end = inner.len();
        if c == '"' || c == '`' {
            chars.next();
            let mut escaped = false;
            let mut closed = false;
            for (i, d) in chars.by_ref() {
                if c == '"' && d == '\\' && !escaped {
                    escaped = true;
                    continue;
                }
                if d == c && !escaped {
                    end = i + d.len_utf8();
                    closed = true;
                    break;
                }
                escaped = false;
            }
            if !closed {
                return Err("unterminated string in template".to_string());
            }
        } else {
            while let Some(&(i, d)) = chars.peek() {
                if d.is_whitespace() || d == '|' || d == '(' || d == ')' {
                    end = i;
                    break;
                }
                chars.next();
            }
        }
        words.push(inner[start..end].to_string());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Data;

    impl TemplateData for Data {
        fn field(&self, name: &str) -> Option<&str> {
            match name {
                "level" => Some("error"),
                "msg" => Some("  disk full  "),
                "path" => Some("/api/v1/users"),
                "empty" => Some(""),
                _ => None,
            }
        }
        fn line(&self) -> &str {
            "the line"
        }
    }

    fn check(source: &str, want: &str) {
        let t = Template::new(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let mut out = String::new();
        t.render(&Data, &mut out);
        assert_eq!(out, want, "{source}");
    }

    #[test]
    fn renders_fields_functions_and_pipes() {
        check("{{.level}}: {{ .msg }}", "error:   disk full  ");
        check("{{ .level | ToUpper }}", "ERROR");
        check("{{ ToUpper .level }}!", "ERROR!");
        check("{{ .msg | TrimSpace | upper }}", "DISK FULL");
        check("[{{__line__}}]", "[the line]");
        check("{{ .missing }}", "<no value>");
        check(r#"{{ .empty | default "n/a" }}"#, "n/a");
        check(r#"{{ .path | trimPrefix "/api" }}"#, "/v1/users");
        check(r#"{{ TrimPrefix .path "/api" }}"#, "/v1/users");
        check(r#"{{ .path | replace "/" "." }}"#, ".api.v1.users");
        check("{{ .level | trunc 3 }}", "err");
        check("{{ .level | trunc -2 }}", "or");
        check("{{ .level | substr 1 3 }}", "rr");
        check("{{ .level | title }}", "Error");
        check("a {{- .level -}} b", "aerrorb");
        check("x{{/* note */}}y", "xy");
        check("no actions", "no actions");
    }

    #[test]
    fn refuses_unsupported_templates_at_parse_time() {
        for (source, want) in [
            ("{{if .a}}x{{end}}", "unsupported template action {{if}}"),
            (
                "{{ .a | Frobnicate }}",
                "function \"Frobnicate\" not defined in template",
            ),
            ("{{ .a", "unclosed action {{ in template"),
            ("{{}}", "empty action {{}} in template"),
            (
                "{{ .a | default }}",
                "wrong number of args for default in template: want 2 got 1",
            ),
            (
                "{{ ToUpper }}",
                "wrong number of args for ToUpper in template: want 1 got 0",
            ),
            ("{{ $x := 1 }}", "unsupported \"$x\" in template"),
            ("{{ (.a) }}", "parentheses are not supported in templates"),
            ("{{ .a.b }}", "unsupported field \".a.b\" in template"),
        ] {
            assert_eq!(
                Template::new(source).map(|_| ()),
                Err(want.to_string()),
                "{source}"
            );
        }
    }

    #[test]
    fn reports_what_it_reads() {
        let t = Template::new("{{__line__}}").expect("valid");
        assert!(t.uses_line() && !t.uses_fields());
        let t = Template::new("{{ .a | upper }}").expect("valid");
        assert!(!t.uses_line() && t.uses_fields());
    }
}
