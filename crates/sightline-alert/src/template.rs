//! Prometheus-style templates for alerting rule `labels` and `annotations`.
//!
//! This is a small hand-written implementation of the subset of Go's
//! `text/template` that Prometheus alerting rules use. No maintained Rust crate
//! implements Go template syntax together with Prometheus' functions, and the
//! subset needed here is small, so a purpose-built parser is simpler than an
//! adapter over a general template engine.
//!
//! Supported:
//! - literal text, and actions `{{ ... }}` with the trim markers `{{- ` and
//!   ` -}}` (which drop adjacent spaces, tabs and newlines, as in Go);
//! - pipelines `a | f | g arg`, where the previous value becomes the *last*
//!   argument of the next function (Go semantics);
//! - terms `$labels.NAME`, `$externalLabels.NAME`, `$value`, `.Labels.NAME`,
//!   `.ExternalLabels.NAME`, `.Value`, `"strings"` (escapes `\" \\ \n \t \r`),
//!   `` `raw strings` `` and number literals; a missing label expands to `""`
//!   (Prometheus uses `missingkey=zero`);
//! - functions `humanize`, `humanize1024`, `humanizePercentage`,
//!   `humanizeDuration` (numbers or numeric strings), `printf` (verbs `%s %d
//!   %f %g %v %%` with an optional `.N` precision), `toUpper`, `toLower`,
//!   `title`.
//!
//! Everything else (`if`, `range`, `with`, `define`, comments, other
//! functions, other variables) is rejected by [`Template::parse`].

use std::fmt;

/// A parsed template; parse once at rule load, expand at every evaluation.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Vec<Node>,
    literal: bool,
}

/// A parse or expansion error, with a human-readable message.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// What a template can read.
pub struct Context<'a> {
    /// The alert's labels (`$labels` / `.Labels`).
    pub labels: &'a [(String, String)],
    /// The server's external labels (`$externalLabels` / `.ExternalLabels`).
    pub external_labels: &'a [(String, String)],
    /// The alert's sample value (`$value` / `.Value`).
    pub value: f64,
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Action(Vec<Command>),
}

#[derive(Clone, Debug)]
enum Command {
    Term(Term),
    Call(&'static str, Vec<Term>),
}

#[derive(Clone, Debug)]
enum Term {
    Label(String),
    ExternalLabel(String),
    Value,
    Lit(Value),
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Float(f64),
    Int(i64),
}

enum Tok {
    Term(Term),
    Func(&'static str),
    Pipe,
}

const FUNCS: &str =
    "humanize humanize1024 humanizePercentage humanizeDuration printf toUpper toLower title";
const ACTIONS: &str = "if else end range with define template block break continue";
const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl Template {
    /// Parses `text`, rejecting anything outside the supported subset.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut nodes = Vec::new();
        let (mut rest, mut trim_next) = (text, false);
        loop {
            let (chunk, after) = match rest.find("{{") {
                Some(i) => (&rest[..i], Some(&rest[i + 2..])),
                None => (rest, None),
            };
            let mut chunk = chunk.trim_start_matches(|c| trim_next && is_space(c));
            let body = match after.and_then(|a| a.strip_prefix('-')) {
                Some(b) if b.starts_with(is_space) => {
                    chunk = chunk.trim_end_matches(is_space);
                    b
                }
                _ => after.unwrap_or_default(),
            };
            if !chunk.is_empty() {
                nodes.push(Node::Text(chunk.to_string()));
            }
            if after.is_none() {
                break;
            }
            let (toks, right_trim, remaining) = lex_action(body)?;
            nodes.push(Node::Action(parse_pipeline(&toks)?));
            (rest, trim_next) = (remaining, right_trim);
        }
        let literal = !text.contains("{{");
        Ok(Template { nodes, literal })
    }

    /// Expands the template against `ctx`.
    pub fn expand(&self, ctx: &Context<'_>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(cmds) => out.push_str(&display(&eval(cmds, ctx)?)),
            }
        }
        Ok(out)
    }

    /// True when the text has no `{{`: expansion returns it unchanged.
    pub fn is_literal(&self) -> bool {
        self.literal
    }
}

/// Lexes one action body up to its closing `}}`; returns the tokens, whether
/// the close was ` -}}`, and the text after it.
fn lex_action(s: &str) -> Result<(Vec<Tok>, bool, &str), TemplateError> {
    let (mut toks, mut i) = (Vec::new(), 0);
    loop {
        let start = i;
        i += s[i..].len() - s[i..].trim_start_matches(is_space).len();
        let rest = &s[i..];
        if let Some(after) = rest.strip_prefix("}}") {
            return Ok((toks, false, after));
        }
        if let Some(after) = rest.strip_prefix("-}}").filter(|_| i > start || i == 0) {
            return Ok((toks, true, after));
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            return err("unclosed action: missing \"}}\"");
        };
        let next_digit = chars.next().is_some_and(|n| n.is_ascii_digit());
        let word = |from: usize, extra: &[char]| {
            let end =
                rest[from..].find(|c: char| !(c.is_ascii_alphanumeric() || extra.contains(&c)));
            end.map_or(rest.len(), |n| n + from)
        };
        let (tok, len) = match c {
            '|' => (Tok::Pipe, 1),
            '"' => {
                let (v, n) = lex_quoted(rest)?;
                (Tok::Term(Term::Lit(Value::Str(v))), n)
            }
            '`' => match rest[1..].find('`') {
                Some(end) => (
                    Tok::Term(Term::Lit(Value::Str(rest[1..=end].into()))),
                    end + 2,
                ),
                None => return err("unterminated raw string"),
            },
            c if c.is_ascii_digit() || (matches!(c, '-' | '+' | '.') && next_digit) => {
                let mut n = word(1, &['.', '_']);
                while rest[..n].ends_with(['e', 'E']) && rest[n..].starts_with(['+', '-']) {
                    n = word(n + 1, &['.', '_']);
                }
                (Tok::Term(Term::Lit(parse_number(&rest[..n])?)), n)
            }
            '$' | '.' => {
                let n = word(1, &['.', '_']);
                (Tok::Term(resolve(&rest[..n])?), n)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let (n, name) = (word(0, &['_']), &rest[..word(0, &['_'])]);
                match FUNCS.split(' ').find(|f| *f == name) {
                    Some(f) => (Tok::Func(f), n),
                    None if ACTIONS.split(' ').any(|a| a == name) => {
                        return err(format!("unsupported template action {name:?}"));
                    }
                    None => return err(format!("unknown function {name:?}")),
                }
            }
            '/' if rest.starts_with("/*") => return err("template comments are not supported"),
            _ => return err(format!("unexpected {c:?} in action")),
        };
        toks.push(tok);
        i += len;
    }
}

/// Lexes a double-quoted string at the start of `s`; returns it and its length.
fn lex_quoted(s: &str) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(e @ ('"' | '\\')) => out.push(e),
                Some(e) => return err(format!("unsupported escape \\{e} in string")),
                None => break,
            },
            c => out.push(c),
        }
    }
    err("unterminated quoted string")
}

fn parse_number(s: &str) -> Result<Value, TemplateError> {
    match (s.parse::<i64>(), s.parse::<f64>()) {
        (Ok(i), _) => Ok(Value::Int(i)),
        (_, Ok(v)) if v.is_finite() => Ok(Value::Float(v)),
        _ => err(format!("bad number syntax: {s:?}")),
    }
}

/// Resolves `$var.field` / `.Field.key` to a term.
fn resolve(path: &str) -> Result<Term, TemplateError> {
    let var = path.starts_with('$');
    let mut parts = path[1..].split('.');
    let head = parts.next().unwrap_or_default();
    let fields: Vec<&str> = parts.collect();
    let map = |make: fn(String) -> Term| match fields.as_slice() {
        [name] if !name.is_empty() => Ok(make(name.to_string())),
        _ => err(format!(
            "{path:?} needs exactly one label name, e.g. \"{path}.instance\""
        )),
    };
    match (var, head) {
        (true, "labels") | (false, "Labels") => map(Term::Label),
        (true, "externalLabels") | (false, "ExternalLabels") => map(Term::ExternalLabel),
        (true, "value") | (false, "Value") if fields.is_empty() => Ok(Term::Value),
        (true, "value") | (false, "Value") => err(format!("{path:?}: the value has no fields")),
        (true, _) => err(format!("undefined variable \"${head}\"")),
        (false, _) => err(format!("unsupported field {path:?}")),
    }
}

fn parse_pipeline(toks: &[Tok]) -> Result<Vec<Command>, TemplateError> {
    let mut cmds = Vec::new();
    for (idx, stage) in toks.split(|t| matches!(t, Tok::Pipe)).enumerate() {
        cmds.push(match stage {
            [] if toks.is_empty() => return err("empty action"),
            [Tok::Term(_), ..] if idx > 0 => {
                return err(format!(
                    "only functions may follow \"|\" (stage {})",
                    idx + 1
                ));
            }
            [Tok::Term(t)] => Command::Term(t.clone()),
            [Tok::Term(_), ..] => return err("unexpected argument after a value"),
            [Tok::Func(name), rest @ ..] => {
                let mut args = Vec::new();
                for t in rest {
                    match t {
                        Tok::Term(t) => args.push(t.clone()),
                        _ => return err(format!("{name}: use a pipeline to pass a function")),
                    }
                }
                match args.len() + usize::from(idx > 0) {
                    0 if *name == "printf" => return err("printf needs a format string"),
                    n if n != 1 && *name != "printf" => {
                        return err(format!("{name} expects 1 argument, got {n}"));
                    }
                    _ => Command::Call(name, args),
                }
            }
            _ => return err("missing command in pipeline"),
        });
    }
    Ok(cmds)
}

fn eval(cmds: &[Command], ctx: &Context<'_>) -> Result<Value, TemplateError> {
    let get = |map: &[(String, String)], name: &str| {
        let v = map.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Value::Str(v.unwrap_or_default())
    };
    let term = |t: &Term| match t {
        Term::Label(n) => get(ctx.labels, n),
        Term::ExternalLabel(n) => get(ctx.external_labels, n),
        Term::Value => Value::Float(ctx.value),
        Term::Lit(v) => v.clone(),
    };
    let mut prev: Option<Value> = None;
    for cmd in cmds {
        prev = Some(match cmd {
            Command::Term(t) => term(t),
            Command::Call(name, args) => {
                let mut vals: Vec<Value> = args.iter().map(term).collect();
                vals.extend(prev.take());
                call(name, &vals)?
            }
        });
    }
    Ok(prev.unwrap_or(Value::Str(String::new())))
}

fn call(name: &str, args: &[Value]) -> Result<Value, TemplateError> {
    let arg = args.first().cloned().unwrap_or(Value::Str(String::new()));
    let num = || match &arg {
        Value::Float(v) => Ok(*v),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => s
            .parse()
            .or(err(format!("{name}: cannot convert {s:?} to a number"))),
    };
    let text = || match &arg {
        Value::Str(s) => Ok(s.as_str()),
        v => err(format!("{name}: expected a string, got {}", type_name(v))),
    };
    Ok(Value::Str(match name {
        "humanize" => humanize(num()?, 1000.0, ["k", "M", "G", "T", "P", "E", "Z", "Y"]),
        "humanize1024" => humanize(
            num()?,
            1024.0,
            ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
        ),
        "humanizePercentage" => format!("{}%", fmt_g(num()? * 100.0, Some(4))),
        "humanizeDuration" => humanize_duration(num()?),
        "printf" => printf(text()?, &args[1..])?,
        "toUpper" => text()?.to_uppercase(),
        "toLower" => text()?.to_lowercase(),
        "title" => title(text()?),
        _ => return err(format!("unknown function {name:?}")),
    }))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "string",
        Value::Float(_) => "float64",
        Value::Int(_) => "int",
    }
}

/// Formats like Go's `fmt` `%v`.
fn display(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Float(f) => fmt_g(*f, None),
        Value::Int(i) => i.to_string(),
    }
}

/// Go's `%g` (`None`: shortest representation, as `%v`) or `%.Ng`.
fn fmt_g(v: f64, prec: Option<usize>) -> String {
    if !v.is_finite() {
        return fmt_f(v, 0);
    }
    let s = match prec {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v),
        None => format!("{v:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = mant.strip_prefix('-').map_or(("", mant), |m| ("-", m));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let digits = format!("{:0<1}", digits.trim_end_matches('0'));
    let (first, frac) = digits.split_at(1);
    let body = if exp < -4 || exp >= prec.map_or(6, |p| p.max(1) as i32) {
        let dot = if frac.is_empty() { "" } else { "." };
        format!(
            "{first}{dot}{frac}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let int_len = (exp + 1) as usize;
        match digits.get(int_len..) {
            Some(frac) if !frac.is_empty() => format!("{}.{frac}", &digits[..int_len]),
            _ => format!("{digits:0<int_len$}"),
        }
    };
    format!("{sign}{body}")
}

/// Go's `%.Nf` (NaN and infinities as Go prints them).
fn fmt_f(v: f64, prec: usize) -> String {
    match v {
        _ if v.is_nan() => "NaN".to_string(),
        _ if v.is_infinite() => (if v > 0.0 { "+Inf" } else { "-Inf" }).to_string(),
        _ => format!("{v:.prec$}"),
    }
}

/// Go's `fmt.Sprintf` for `%s %d %f %g %v %%` (optional `.N` precision),
/// with Go's `%!` markers for wrong types and missing or extra arguments.
/// Other verbs, widths and flags are an error.
fn printf(format: &str, args: &[Value]) -> Result<String, TemplateError> {
    let (mut out, mut args) = (String::new(), args.iter());
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec = None;
        if chars.next_if_eq(&'.').is_some() {
            let mut p = 0usize;
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                p = p
                    .saturating_mul(10)
                    .saturating_add(d as usize - '0' as usize);
            }
            prec = Some(p);
        }
        let verb = match chars.next() {
            Some('%') => {
                out.push('%');
                continue;
            }
            Some(v @ ('s' | 'd' | 'f' | 'g' | 'v')) => v,
            Some(v) => {
                return err(format!(
                    "printf: unsupported directive %{v} (use %s %d %f %g %v)"
                ));
            }
            None => {
                out.push_str("%!(NOVERB)");
                break;
            }
        };
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        out.push_str(&match (verb, arg) {
            ('v', a) => display(a),
            ('s', Value::Str(s)) => prec.map_or(s.clone(), |p| s.chars().take(p).collect()),
            ('d', Value::Int(i)) => i.to_string(),
            ('f', Value::Float(v)) => fmt_f(*v, prec.unwrap_or(6)),
            ('g', Value::Float(v)) => fmt_g(*v, prec),
            (_, a) => format!("%!{verb}({}={})", type_name(a), display(a)),
        });
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", type_name(a), display(a)))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}

/// Multiplies (`small`) or divides `v` by `base` until it is in range,
/// returning the last prefix applied, as Prometheus' humanize loops do.
fn scale(mut v: f64, base: f64, prefixes: [&'static str; 8], small: bool) -> (f64, &'static str) {
    let mut prefix = "";
    for p in prefixes {
        if (small && v.abs() >= 1.0) || (!small && v.abs() < base) {
            break;
        }
        (v, prefix) = (if small { v * base } else { v / base }, p);
    }
    (v, prefix)
}

/// `humanize` (base 1000, SI prefixes both ways) and `humanize1024`.
fn humanize(v: f64, base: f64, big: [&'static str; 8]) -> String {
    let tiny = if base == 1000.0 {
        v == 0.0
    } else {
        v.abs() <= 1.0
    };
    if tiny || !v.is_finite() {
        return fmt_g(v, Some(4));
    }
    let (v, prefix) = match v.abs() >= 1.0 {
        true => scale(v, base, big, false),
        false => scale(v, 1000.0, SMALL, true),
    };
    format!("{}{prefix}", fmt_g(v, Some(4)))
}

fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return fmt_g(v, Some(4));
    }
    if v.abs() < 1.0 {
        let (v, prefix) = if v == 0.0 {
            (v, "")
        } else {
            scale(v, 1000.0, SMALL, true)
        };
        return format!("{}{prefix}s", fmt_g(v, Some(4)));
    }
    let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
    let t = v as i64;
    let (d, h, m, s) = (t / 86400, t / 3600 % 24, t / 60 % 60, t % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sign}{}s", fmt_g(v, Some(4))),
        (0, 0, _) => format!("{sign}{m}m {s}s"),
        (0, _, _) => format!("{sign}{h}h {m}m {s}s"),
        _ => format!("{sign}{d}d {h}h {m}m {s}s"),
    }
}

/// Upper-cases the first letter of each word, like Go's `strings.Title`.
fn title(s: &str) -> String {
    let mut after_sep = true;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match after_sep {
            true => out.extend(c.to_uppercase()),
            false => out.push(c),
        }
        let ascii_sep = !(c.is_ascii_alphanumeric() || c == '_');
        after_sep = if c.is_ascii() {
            ascii_sep
        } else {
            c.is_whitespace()
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, value: f64) -> Result<String, TemplateError> {
        let labels =
            [("instance", "host:9090"), ("job", "node")].map(|(k, v)| (k.into(), v.into()));
        let external = [("cluster".to_string(), "eu-1".to_string())];
        let ctx = Context {
            labels: &labels,
            external_labels: &external,
            value,
        };
        Template::parse(text)?.expand(&ctx)
    }

    /// Checks one case per line: `VALUE TEMPLATE => EXPECTED` (`\n` in
    /// TEMPLATE is a newline; EXPECTED may start with `error: `).
    fn table(cases: &str) {
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (value, rest) = line.split_once(' ').unwrap();
            let (text, want) = rest.rsplit_once(" =>").unwrap();
            let got = run(&text.replace("\\n", "\n"), value.parse().unwrap());
            let got = got.unwrap_or_else(|e| format!("error: {e}"));
            assert_eq!(
                got,
                want.trim_start(),
                "template {text:?} with $value = {value}"
            );
        }
    }

    #[test]
    fn literal_text_is_unchanged() {
        assert!(Template::parse("no } actions {").unwrap().is_literal());
        assert!(!Template::parse("{{ 1 }}").unwrap().is_literal());
        table("1 no } actions { => no } actions {");
    }

    #[test]
    fn variables_and_fields() {
        table(
            r#"
            0.5 {{ $labels.instance }}/{{ .Labels.job }}={{ $value }} => host:9090/node=0.5
            2 {{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }} {{ .Value }} => eu-1 eu-1 2
            "#,
        );
    }

    #[test]
    fn missing_label_is_empty() {
        table("1 [{{ $labels.nope }}][{{ .ExternalLabels.nope }}] => [][]");
    }

    #[test]
    fn value_prints_like_go_v() {
        let values = "0.5 1 1e6 123456 1234567 0.0001 0.00001 -2.5 0 NaN inf -inf";
        let want = "0.5 1 1e+06 123456 1.234567e+06 0.0001 1e-05 -2.5 0 NaN +Inf -Inf";
        for (v, w) in values.split(' ').zip(want.split(' ')) {
            table(&format!("{v} {{{{ $value }}}} => {w}"));
        }
    }

    #[test]
    fn humanize_si_prefixes() {
        table(
            r#"
            1234 {{ $value | humanize }} => 1.234k
            0.0012 {{ $value | humanize }} => 1.2m
            0 {{ $value | humanize }} => 0
            12 {{ $value | humanize }} => 12
            1e9 {{ $value | humanize }} => 1G
            -1234567 {{ $value | humanize }} => -1.235M
            123456 {{ $value | humanize }} => 123.5k
            2.5e-7 {{ $value | humanize }} => 250n
            NaN {{ $value | humanize }} => NaN
            0 {{ humanize 1e30 }} => 1e+06Y
            "#,
        );
    }

    #[test]
    fn humanize_accepts_numeric_strings() {
        table(
            r#"
            0 {{ "2048" | humanize1024 }} => 2ki
            0 {{ $labels.job | humanize }} => error: humanize: cannot convert "node" to a number
            "#,
        );
    }

    #[test]
    fn humanize1024_binary_prefixes() {
        table(
            r#"
            1024 {{ humanize1024 $value }} => 1ki
            1536 {{ humanize1024 $value }} => 1.5ki
            1048576 {{ humanize1024 $value }} => 1Mi
            1 {{ humanize1024 $value }} => 1
            0.5 {{ humanize1024 $value }} => 0.5
            1e12 {{ humanize1024 $value }} => 931.3Gi
            -2048 {{ humanize1024 $value }} => -2ki
            "#,
        );
    }

    #[test]
    fn humanize_percentage() {
        table(
            r#"
            0.1234 {{ $value | humanizePercentage }} => 12.34%
            0.5 {{ $value | humanizePercentage }} => 50%
            0.123456 {{ $value | humanizePercentage }} => 12.35%
            0 {{ $value | humanizePercentage }} => 0%
            "#,
        );
    }

    #[test]
    fn humanize_duration() {
        table(
            r#"
            93784 {{ humanizeDuration $value }} => 1d 2h 3m 4s
            3600 {{ humanizeDuration $value }} => 1h 0m 0s
            61 {{ humanizeDuration $value }} => 1m 1s
            -61 {{ humanizeDuration $value }} => -1m 1s
            1.5 {{ humanizeDuration $value }} => 1.5s
            59.99999 {{ humanizeDuration $value }} => 60s
            0 {{ humanizeDuration $value }} => 0s
            0.0015 {{ humanizeDuration $value }} => 1.5ms
            2e-6 {{ humanizeDuration $value }} => 2us
            inf {{ humanizeDuration $value }} => +Inf
            "#,
        );
    }

    #[test]
    fn printf_verbs() {
        table(
            r#"
            0.5 {{ printf "%.2f" $value }} => 0.50
            7 {{ $value | printf "%f|%g|%.3g|%v" 1.5 2.5 3.14159 }} => 1.500000|2.5|3.14|7
            0 {{ printf "%s=%d%%" $labels.job 5 }} => node=5%
            0 {{ printf "%.2s" "abcdef" }} => ab
            "#,
        );
    }

    #[test]
    fn printf_go_error_markers() {
        table(
            r#"
            2 {{ printf "%d %s" $value }} => %!d(float64=2) %!s(MISSING)
            0 {{ printf "x" 1 }} => x%!(EXTRA int=1)
            0 {{ printf "%x" 1 }} => error: printf: unsupported directive %x (use %s %d %f %g %v)
            0 {{ printf 1 }} => error: printf: expected a string, got int
            "#,
        );
    }

    #[test]
    fn string_functions() {
        table(
            r#"
            0 {{ $labels.job | toUpper }} => NODE
            0 {{ toLower "MiXeD" }} => mixed
            0 {{ "hello wORLD foo_bar it's" | title }} => Hello WORLD Foo_bar It'S
            0 {{ 1.5 | toUpper }} => error: toUpper: expected a string, got float64
            "#,
        );
    }

    #[test]
    fn pipeline_passes_value_last() {
        table(
            r#"
            0 {{ "x" | printf "%s-%s" "y" }} => y-x
            1500 {{ $value | humanize | printf "v=%s" | toUpper }} => V=1.5K
            "#,
        );
    }

    #[test]
    fn trim_markers() {
        table(
            r#"
            1 a \n {{- $value -}} \n b => a1b
            1 a {{- $value }} b => a1 b
            1 a {{ $value -}}\n \n b => a 1b
            0 x {{-3}} => x -3
            "#,
        );
    }

    #[test]
    fn literals() {
        table(
            r#"
            0 {{ "a\"b\\c\td" }} => a"b\c	d
            0 {{ `raw\t }}` }} => raw\t }}
            0 {{ 42 }} {{ 1.5 }} {{ 1e+3 | humanize }} => 42 1.5 1k
            "#,
        );
    }

    #[test]
    fn parse_errors() {
        let cases = r#"
            {{ if $value }}x{{ end }} => unsupported template action "if"
            {{ range $labels }} => unsupported template action "range"
            {{ foo $value }} => unknown function "foo"
            a {{ $value => unclosed action: missing "}}"
            {{ $foo }} => undefined variable "$foo"
            {{ }} => empty action
            {{ $value | }} => missing command in pipeline
            {{ $value | $value }} => only functions may follow "|" (stage 2)
            {{ humanize 1 2 }} => humanize expects 1 argument, got 2
            {{ $labels }} => "$labels" needs exactly one label name, e.g. "$labels.instance"
            {{ .Foo }} => unsupported field ".Foo"
            {{ "abc }} => unterminated quoted string
            {{/* c */}} => template comments are not supported
            {{ printf }} => printf needs a format string
            {{ 1x }} => bad number syntax: "1x"
        "#;
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (text, want) = line.rsplit_once(" => ").unwrap();
            assert_eq!(
                Template::parse(text).unwrap_err().0,
                want,
                "template {text:?}"
            );
        }
    }

    #[test]
    fn error_is_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(TemplateError("boom".into()));
        assert_eq!(e.to_string(), "boom");
    }
}
