//! The LogQL syntax tree, as [`super::parse`] builds it.
//!
//! Invariants the parser guarantees, so evaluation does not re-check them:
//! - a selector has at least one matcher that does not match the empty string;
//! - every regex, template and pattern is already compiled (errors surface at parse time);
//! - `unwrap` appears only in range aggregations whose operation takes values
//!   ([`RangeOp::needs_unwrap`]), and those always have one; `by`/`without` on a range
//!   aggregation only with such operations;
//! - `quantile_over_time` has a parameter, `topk`/`bottomk` a positive integer one;
//! - a vector aggregation's and a binary operation's operands are metric expressions, and a
//!   comparison between two scalars carries `bool`.
//!
//! `Display` prints a canonical query that parses back to an equal tree.

use std::fmt;

use sightline_model::{LabelMatcher, MatchOp};

use super::json::JsonPath;
use super::pattern::Pattern;
use super::template::Template;
use super::units::format_duration_ns;

/// A whole query: a log query returns lines, a metric query returns numbers.
#[derive(Clone, Debug)]
pub enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// A stream selector and the pipeline its entries go through.
#[derive(Clone, Debug)]
pub struct LogExpr {
    pub matchers: Vec<LabelMatcher>,
    pub stages: Vec<Stage>,
}

/// One pipeline stage.
#[derive(Clone, Debug)]
pub enum Stage {
    LineFilter(LineFilter),
    /// `| json` (all fields, flattened) or `| json name="path", …`.
    Json(Vec<(String, JsonPath)>),
    /// `| logfmt [--strict] [--keep-empty] [name="key", …]`.
    Logfmt {
        strict: bool,
        keep_empty: bool,
        params: Vec<(String, String)>,
    },
    /// `| regexp "…"` with named capture groups.
    Regexp(regex::Regex),
    Pattern(Pattern),
    Unpack,
    Decolorize,
    LabelFilter(LabelFilter),
    LineFormat(Template),
    LabelFormat(Vec<LabelFormatOp>),
    Drop(Vec<LabelSelector>),
    Keep(Vec<LabelSelector>),
}

/// `|= "a" or "b"`: the line matches when any value does; `!=`/`!~` negate the whole group.
#[derive(Clone, Debug)]
pub struct LineFilter {
    pub op: LineFilterOp,
    pub values: Vec<LineFilterValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFilterOp {
    Contains,
    NotContains,
    Matches,
    NotMatches,
}

#[derive(Clone, Debug)]
pub enum LineFilterValue {
    Text(String),
    Regex(regex::Regex),
}

/// A label filter expression: `a="x" and (b > 10 or c=~"y.*")`.
#[derive(Clone, Debug)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    Text(LabelMatcher),
    Number {
        name: String,
        op: CmpOp,
        value: f64,
    },
    Duration {
        name: String,
        op: CmpOp,
        value_ns: i64,
    },
    Bytes {
        name: String,
        op: CmpOp,
        value: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn compare<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Neq => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// One `label_format` assignment.
#[derive(Clone, Debug)]
pub enum LabelFormatOp {
    /// `dst=src`: moves the value of `src` to `dst`.
    Rename { dst: String, src: String },
    /// `dst="{{…}}"`.
    Template { dst: String, template: Template },
}

/// A `drop`/`keep` item: a name, optionally only when the value matches.
#[derive(Clone, Debug)]
pub struct LabelSelector {
    pub name: String,
    pub matcher: Option<LabelMatcher>,
}

impl LabelSelector {
    pub fn selects(&self, name: &str, value: &str) -> bool {
        self.name == name && self.matcher.as_ref().is_none_or(|m| m.matches_value(value))
    }
}

/// An expression that evaluates to numbers.
#[derive(Clone, Debug)]
pub enum MetricExpr {
    Range(Box<RangeAggregation>),
    Vector(Box<VectorAggregation>),
    Binary(Box<BinaryExpr>),
    /// A number literal (a scalar).
    Number(f64),
    /// `vector(n)`: one series without labels.
    VectorOf(f64),
    /// Unary minus applied to a vector expression.
    Negate(Box<MetricExpr>),
}

impl MetricExpr {
    /// Whether the expression yields a scalar rather than a vector.
    pub fn is_scalar(&self) -> bool {
        match self {
            MetricExpr::Number(_) => true,
            MetricExpr::Binary(b) => b.lhs.is_scalar() && b.rhs.is_scalar(),
            MetricExpr::Negate(e) => e.is_scalar(),
            _ => false,
        }
    }
}

/// `count_over_time({…} | … [5m] offset 1h)`, `quantile_over_time(0.9, … | unwrap x [1m]) by (a)`.
#[derive(Clone, Debug)]
pub struct RangeAggregation {
    pub op: RangeOp,
    pub param: Option<f64>,
    pub log: LogExpr,
    pub unwrap: Option<Unwrap>,
    pub range_ns: i64,
    pub offset_ns: i64,
    pub grouping: Option<Grouping>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
    AbsentOverTime,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
}

impl RangeOp {
    pub const ALL: [RangeOp; 14] = [
        RangeOp::CountOverTime,
        RangeOp::Rate,
        RangeOp::BytesOverTime,
        RangeOp::BytesRate,
        RangeOp::AbsentOverTime,
        RangeOp::SumOverTime,
        RangeOp::AvgOverTime,
        RangeOp::MinOverTime,
        RangeOp::MaxOverTime,
        RangeOp::StddevOverTime,
        RangeOp::StdvarOverTime,
        RangeOp::QuantileOverTime,
        RangeOp::FirstOverTime,
        RangeOp::LastOverTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AbsentOverTime => "absent_over_time",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether the operation aggregates unwrapped values (and so requires `| unwrap`).
    /// `rate` works both ways.
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }
}

/// `| unwrap latency`, `| unwrap duration(took)`, `| unwrap bytes(size)`, and the label
/// filters that follow it.
#[derive(Clone, Debug)]
pub struct Unwrap {
    pub label: String,
    pub conversion: UnwrapConversion,
    pub post_filters: Vec<LabelFilter>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwrapConversion {
    Number,
    Duration,
    Bytes,
}

/// `by (a, b)` or `without (c)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// `sum by (a) (…)`, `topk(5, …)`.
#[derive(Clone, Debug)]
pub struct VectorAggregation {
    pub op: VectorOp,
    pub param: Option<f64>,
    pub expr: MetricExpr,
    pub grouping: Option<Grouping>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VectorOp {
    pub const ALL: [VectorOp; 11] = [
        VectorOp::Sum,
        VectorOp::Avg,
        VectorOp::Min,
        VectorOp::Max,
        VectorOp::Count,
        VectorOp::Stddev,
        VectorOp::Stdvar,
        VectorOp::Topk,
        VectorOp::Bottomk,
        VectorOp::Sort,
        VectorOp::SortDesc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Min => "min",
            VectorOp::Max => "max",
            VectorOp::Count => "count",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Topk => "topk",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// `lhs op [bool] [on|ignoring (…) [group_left|group_right (…)]] rhs`.
#[derive(Clone, Debug)]
pub struct BinaryExpr {
    pub op: BinOp,
    pub lhs: MetricExpr,
    pub rhs: MetricExpr,
    pub return_bool: bool,
    pub matching: Option<VectorMatching>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    /// PromQL precedence, higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Neq => "!=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

/// Which labels two vectors are matched on, and which side may match many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    pub labels: Vec<String>,
    pub group: Option<GroupModifier>,
}

/// `group_left (…)` / `group_right (…)`: the other side is the "one" side, whose listed labels
/// are copied into the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupModifier {
    pub left: bool,
    pub include: Vec<String>,
}

// ---- Display: the canonical query text ----

/// Writes `s` as a Go string literal, which is what the lexer reads back.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[String]) -> fmt::Result {
    f.write_str("(")?;
    f.write_str(&items.join(", "))?;
    f.write_str(")")
}

fn match_op_symbol(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Eq => "=",
        MatchOp::Neq => "!=",
        MatchOp::Re => "=~",
        MatchOp::Nre => "!~",
    }
}

fn write_matcher(f: &mut fmt::Formatter<'_>, m: &LabelMatcher) -> fmt::Result {
    write!(f, "{}{}", m.name, match_op_symbol(m.op))?;
    write_quoted(f, &m.value)
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
            Expr::Metric(m) => m.fmt(f),
        }
    }
}

impl fmt::Display for LogExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_matcher(f, m)?;
        }
        f.write_str("}")?;
        for stage in &self.stages {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(lf) => {
                f.write_str(match lf.op {
                    LineFilterOp::Contains => "|=",
                    LineFilterOp::NotContains => "!=",
                    LineFilterOp::Matches => "|~",
                    LineFilterOp::NotMatches => "!~",
                })?;
                for (i, v) in lf.values.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { " or " })?;
                    match v {
                        LineFilterValue::Text(t) => write_quoted(f, t)?,
                        LineFilterValue::Regex(r) => write_quoted(f, r.as_str())?,
                    }
                }
                Ok(())
            }
            Stage::Json(params) => {
                f.write_str("| json")?;
                for (i, (name, path)) in params.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    write!(f, "{name}=")?;
                    write_quoted(f, &path.to_string())?;
                }
                Ok(())
            }
            Stage::Logfmt {
                strict,
                keep_empty,
                params,
            } => {
                f.write_str("| logfmt")?;
                if *strict {
                    f.write_str(" --strict")?;
                }
                if *keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                for (i, (name, key)) in params.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    write!(f, "{name}=")?;
                    write_quoted(f, key)?;
                }
                Ok(())
            }
            Stage::Regexp(re) => {
                f.write_str("| regexp ")?;
                write_quoted(f, re.as_str())
            }
            Stage::Pattern(p) => {
                f.write_str("| pattern ")?;
                write_quoted(f, p.source())
            }
            Stage::Unpack => f.write_str("| unpack"),
            Stage::Decolorize => f.write_str("| decolorize"),
            Stage::LabelFilter(lf) => write!(f, "| {lf}"),
            Stage::LineFormat(t) => {
                f.write_str("| line_format ")?;
                write_quoted(f, t.source())
            }
            Stage::LabelFormat(ops) => {
                f.write_str("| label_format ")?;
                for (i, op) in ops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match op {
                        LabelFormatOp::Rename { dst, src } => write!(f, "{dst}={src}")?,
                        LabelFormatOp::Template { dst, template } => {
                            write!(f, "{dst}=")?;
                            write_quoted(f, template.source())?;
                        }
                    }
                }
                Ok(())
            }
            Stage::Drop(items) | Stage::Keep(items) => {
                f.write_str(if matches!(self, Stage::Drop(_)) {
                    "| drop "
                } else {
                    "| keep "
                })?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match &item.matcher {
                        Some(m) => write_matcher(f, m)?,
                        None => f.write_str(&item.name)?,
                    }
                }
                Ok(())
            }
        }
    }
}

fn write_number(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_finite() {
        write!(f, "{v}")
    } else {
        // Only reachable through overflowing literals such as `1e999`; keep it parseable.
        write!(f, "{}", if v > 0.0 { "1e999" } else { "-1e999" })
    }
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::And(a, b) => write!(f, "({a} and {b})"),
            LabelFilter::Or(a, b) => write!(f, "({a} or {b})"),
            LabelFilter::Text(m) => write_matcher(f, m),
            LabelFilter::Number { name, op, value } => {
                write!(f, "{name} {} ", op.symbol())?;
                write_number(f, *value)
            }
            LabelFilter::Duration { name, op, value_ns } => {
                write!(
                    f,
                    "{name} {} {}",
                    op.symbol(),
                    format_duration_ns(*value_ns)
                )
            }
            LabelFilter::Bytes { name, op, value } => {
                write!(f, "{name} {} {value}B", op.symbol())
            }
        }
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.without { "without " } else { "by " })?;
        write_list(f, &self.labels)
    }
}

impl fmt::Display for MetricExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Range(r) => r.fmt(f),
            MetricExpr::Vector(v) => {
                write!(f, "{}", v.op.name())?;
                if let Some(g) = &v.grouping {
                    write!(f, " {g} ")?;
                }
                f.write_str("(")?;
                if let Some(p) = v.param {
                    write_number(f, p)?;
                    f.write_str(", ")?;
                }
                write!(f, "{})", v.expr)
            }
            MetricExpr::Binary(b) => {
                write!(f, "({} {}", b.lhs, b.op.symbol())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(m) = &b.matching {
                    f.write_str(if m.on { " on " } else { " ignoring " })?;
                    write_list(f, &m.labels)?;
                    if let Some(g) = &m.group {
                        f.write_str(if g.left {
                            " group_left "
                        } else {
                            " group_right "
                        })?;
                        write_list(f, &g.include)?;
                    }
                }
                write!(f, " {})", b.rhs)
            }
            MetricExpr::Number(v) => {
                if *v < 0.0 {
                    f.write_str("(")?;
                    write_number(f, *v)?;
                    f.write_str(")")
                } else {
                    write_number(f, *v)
                }
            }
            MetricExpr::VectorOf(v) => {
                f.write_str("vector(")?;
                write_number(f, *v)?;
                f.write_str(")")
            }
            MetricExpr::Negate(e) => write!(f, "(-({e}))"),
        }
    }
}

impl fmt::Display for RangeAggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.name())?;
        if let Some(p) = self.param {
            write_number(f, p)?;
            f.write_str(", ")?;
        }
        self.log.fmt(f)?;
        if let Some(u) = &self.unwrap {
            f.write_str(" | unwrap ")?;
            match u.conversion {
                UnwrapConversion::Number => f.write_str(&u.label)?,
                UnwrapConversion::Duration => write!(f, "duration({})", u.label)?,
                UnwrapConversion::Bytes => write!(f, "bytes({})", u.label)?,
            }
            for pf in &u.post_filters {
                write!(f, " | {pf}")?;
            }
        }
        write!(f, " [{}]", format_duration_ns(self.range_ns))?;
        if self.offset_ns != 0 {
            write!(f, " offset {}", format_duration_ns(self.offset_ns))?;
        }
        f.write_str(")")?;
        if let Some(g) = &self.grouping {
            write!(f, " {g}")?;
        }
        Ok(())
    }
}
