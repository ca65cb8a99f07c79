//! Recursive-descent LogQL parser: query text to [`Expr`].
//!
//! This file owns errors, expressions and operator precedence (PromQL's: `or` < `and`,
//! `unless` < comparisons < `+ -` < `* / %` < `^`, with `^` right-associative and unary minus
//! binding looser than `^`); `parser/stages.rs` owns selectors and pipeline stages.
//!
//! Invariants: parsing never panics on any input; nesting is bounded by [`NESTING_DEPTH_MAX`]
//! and query size by [`QUERY_BYTES_MAX`], so no input can exhaust the stack; every error names
//! the line and column of the offending token and says what was expected there.

mod stages;

use super::ast::{
    BinOp, BinaryExpr, Expr, GroupModifier, Grouping, MetricExpr, RangeAggregation, RangeOp,
    VectorAggregation, VectorMatching, VectorOp,
};
use super::lexer::{Tok, Token, tokenize};

/// Longest query accepted, in bytes.
pub const QUERY_BYTES_MAX: usize = 64 * 1024;

/// Deepest nesting of parentheses, aggregations and unary operators accepted.
pub const NESTING_DEPTH_MAX: usize = 128;

/// Why a query does not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {message}")]
pub struct ParseError {
    /// Byte offset of the offending token.
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: u32,
    /// 1-based column of `offset`, in characters.
    pub col: u32,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(src: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(src.len());
        let before = src.get(..offset).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Self {
            offset,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            message: message.into(),
        }
    }
}

/// Parses a LogQL query.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    if query.len() > QUERY_BYTES_MAX {
        return Err(ParseError::new(
            query,
            0,
            format!("query is longer than {QUERY_BYTES_MAX} bytes"),
        ));
    }
    let tokens = tokenize(query)?;
    let mut parser = Parser {
        src: query,
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.expr(0)?;
    if parser.peek() != &Tok::Eof {
        let expected = match expr {
            Expr::Log(_) => "pipeline stage or end of query",
            Expr::Metric(_) => "operator or end of query",
        };
        return Err(parser.unexpected(expected));
    }
    Ok(expr)
}

pub(super) struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// A one-line condensation of a regex error (the regex crate's are multi-line diagrams).
pub(crate) fn regex_error_message(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(text.lines().next().unwrap_or("invalid regex"))
        .to_string()
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + n).min(last)].tok
    }

    fn offset(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].start
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == word)
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.src, offset, message)
    }

    /// `unexpected <current token>, expected <what>`.
    fn unexpected(&self, expected: &str) -> ParseError {
        let token = &self.tokens[self.pos.min(self.tokens.len() - 1)];
        let found = if token.tok == Tok::Eof {
            "end of query".to_string()
        } else {
            let text = &self.src[token.start..token.end];
            let mut shown: String = text.chars().take(32).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        };
        self.error_at(
            token.start,
            format!("unexpected {found}, expected {expected}"),
        )
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<Token, ParseError> {
        if self.peek() == tok {
            Ok(self.next())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn ident(&mut self, expected: &str) -> Result<(String, usize), ParseError> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let at = self.next().start;
                Ok((name, at))
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    fn string(&mut self, expected: &str) -> Result<(String, usize), ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                let at = self.next().start;
                Ok((s, at))
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    /// A number literal, optionally negative.
    fn number(&mut self, expected: &str) -> Result<f64, ParseError> {
        let negative = if self.peek() == &Tok::Sub {
            self.next();
            true
        } else {
            false
        };
        match *self.peek() {
            Tok::Num(v) => {
                self.next();
                Ok(if negative { -v } else { v })
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > NESTING_DEPTH_MAX {
            return Err(self.error_at(
                self.offset(),
                format!("query nested deeper than {NESTING_DEPTH_MAX} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn peek_binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Add => BinOp::Add,
            Tok::Sub => BinOp::Sub,
            Tok::Mul => BinOp::Mul,
            Tok::Div => BinOp::Div,
            Tok::Mod => BinOp::Mod,
            Tok::Pow => BinOp::Pow,
            Tok::EqEq => BinOp::Eq,
            Tok::Neq => BinOp::Neq,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Ident(w) if w == "and" => BinOp::And,
            Tok::Ident(w) if w == "or" => BinOp::Or,
            Tok::Ident(w) if w == "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    /// Precedence climbing over binary operators.
    fn expr(&mut self, min_precedence: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.peek_binop() {
            if op.precedence() < min_precedence {
                break;
            }
            let op_at = self.next().start;
            let return_bool = if self.peek_ident("bool") {
                self.next();
                true
            } else {
                false
            };
            let matching = self.vector_matching()?;
            let next_min = if op == BinOp::Pow {
                op.precedence()
            } else {
                op.precedence() + 1
            };
            let rhs = self.expr(next_min)?;
            lhs = Expr::Metric(self.binary(op, op_at, lhs, rhs, return_bool, matching)?);
        }
        Ok(lhs)
    }

    fn binary(
        &self,
        op: BinOp,
        op_at: usize,
        lhs: Expr,
        rhs: Expr,
        return_bool: bool,
        matching: Option<VectorMatching>,
    ) -> Result<MetricExpr, ParseError> {
        let (Expr::Metric(lhs), Expr::Metric(rhs)) = (lhs, rhs) else {
            return Err(self.error_at(
                op_at,
                format!(
                    "operator {:?} needs metric expressions on both sides, not log queries",
                    op.symbol()
                ),
            ));
        };
        let both_scalar = lhs.is_scalar() && rhs.is_scalar();
        let any_scalar = lhs.is_scalar() || rhs.is_scalar();
        let fail = |message: String| Err(self.error_at(op_at, message));
        if return_bool && !op.is_comparison() {
            return fail("bool modifier can only be used on comparison operators".to_string());
        }
        if op.is_comparison() && both_scalar && !return_bool {
            return fail("comparisons between scalars must use bool modifier".to_string());
        }
        if op.is_set() && any_scalar {
            return fail(format!(
                "set operator {:?} not allowed with scalars",
                op.symbol()
            ));
        }
        if let Some(m) = &matching {
            if any_scalar {
                return fail("vector matching only allowed between vectors".to_string());
            }
            if op.is_set() && m.group.is_some() {
                return fail(format!(
                    "no grouping allowed for {:?} operation",
                    op.symbol()
                ));
            }
        }
        Ok(MetricExpr::Binary(Box::new(BinaryExpr {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        })))
    }

    /// `on (…)` / `ignoring (…)`, then `group_left (…)` / `group_right (…)`.
    fn vector_matching(&mut self) -> Result<Option<VectorMatching>, ParseError> {
        let on = if self.peek_ident("on") {
            true
        } else if self.peek_ident("ignoring") {
            false
        } else {
            return Ok(None);
        };
        self.next();
        let labels = self.label_list()?;
        let group = if self.peek_ident("group_left") || self.peek_ident("group_right") {
            let left = self.peek_ident("group_left");
            self.next();
            let include = if self.peek() == &Tok::LParen {
                self.label_list()?
            } else {
                Vec::new()
            };
            Some(GroupModifier { left, include })
        } else {
            None
        };
        Ok(Some(VectorMatching { on, labels, group }))
    }

    /// `(a, b, c)`, possibly empty.
    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(&Tok::LParen, "\"(\"")?;
        let mut labels = Vec::new();
        while self.peek() != &Tok::RParen {
            labels.push(self.ident("label name")?.0);
            if self.peek() == &Tok::Comma {
                self.next();
            } else if self.peek() != &Tok::RParen {
                return Err(self.unexpected("\",\" or \")\""));
            }
        }
        self.next();
        Ok(labels)
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.peek_ident("by") {
            false
        } else if self.peek_ident("without") {
            true
        } else {
            return Ok(None);
        };
        self.next();
        let labels = self.label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let result = match self.peek() {
            Tok::Sub | Tok::Add => {
                let negate = self.peek() == &Tok::Sub;
                let at = self.next().start;
                match self.expr(BinOp::Pow.precedence())? {
                    Expr::Metric(MetricExpr::Number(v)) if negate => {
                        Ok(Expr::Metric(MetricExpr::Number(-v)))
                    }
                    Expr::Metric(e) if negate => Ok(Expr::Metric(MetricExpr::Negate(Box::new(e)))),
                    Expr::Metric(e) => Ok(Expr::Metric(e)),
                    Expr::Log(_) => {
                        Err(self.error_at(at, "unary operators need a metric expression"))
                    }
                }
            }
            _ => self.primary(),
        };
        self.leave();
        result
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            Tok::Num(v) => {
                self.next();
                Ok(Expr::Metric(MetricExpr::Number(v)))
            }
            Tok::LBrace => Ok(Expr::Log(self.log_expr()?)),
            Tok::LParen => {
                self.next();
                let inner = self.expr(0)?;
                self.expect(&Tok::RParen, "\")\"")?;
                Ok(inner)
            }
            Tok::Ident(name) => {
                let opens = matches!(self.peek_at(1), Tok::LParen);
                if let Some(op) = RangeOp::from_name(&name).filter(|_| opens) {
                    return Ok(Expr::Metric(self.range_aggregation(op)?));
                }
                let grouped =
                    matches!(self.peek_at(1), Tok::Ident(w) if w == "by" || w == "without");
                if let Some(op) = VectorOp::from_name(&name).filter(|_| opens || grouped) {
                    return Ok(Expr::Metric(self.vector_aggregation(op)?));
                }
                if name == "vector" && opens {
                    self.next();
                    self.next();
                    let v = self.number("number")?;
                    self.expect(&Tok::RParen, "\")\"")?;
                    return Ok(Expr::Metric(MetricExpr::VectorOf(v)));
                }
                if opens {
                    return Err(self.error_at(self.offset(), format!("unknown function {name:?}")));
                }
                Err(self.unexpected("expression"))
            }
            _ => Err(self.unexpected("expression")),
        }
    }

    fn range_aggregation(&mut self, op: RangeOp) -> Result<MetricExpr, ParseError> {
        let op_at = self.next().start;
        self.next(); // (
        let param = if op == RangeOp::QuantileOverTime {
            let q = self.number("quantile parameter")?;
            self.expect(&Tok::Comma, "\",\"")?;
            Some(q)
        } else {
            None
        };
        if self.peek() != &Tok::LBrace {
            return Err(self.unexpected("log selector"));
        }
        let matchers = self.selector()?;
        let mut range = self.maybe_range()?;
        let (stages, unwrap) = self.stages(true)?;
        if range.is_none() {
            range = self.maybe_range()?;
        }
        let Some((range_ns, offset_ns)) = range else {
            return Err(self.unexpected("range such as [5m]"));
        };
        self.expect(&Tok::RParen, "\")\"")?;
        let grouping = self.grouping()?;
        let fail = |message: String| Err(self.error_at(op_at, message));
        match (&unwrap, op.needs_unwrap()) {
            (None, true) => {
                return fail(format!(
                    "{} requires an unwrap expression, as in | unwrap latency",
                    op.name()
                ));
            }
            (Some(_), false) if op != RangeOp::Rate => {
                return fail(format!("{} does not take an unwrap expression", op.name()));
            }
            _ => {}
        }
        if grouping.is_some() && unwrap.is_none() {
            return fail(format!(
                "grouping not allowed for {} aggregation",
                op.name()
            ));
        }
        Ok(MetricExpr::Range(Box::new(RangeAggregation {
            op,
            param,
            log: super::ast::LogExpr { matchers, stages },
            unwrap,
            range_ns,
            offset_ns,
            grouping,
        })))
    }

    /// `[5m]` and an optional `offset 1h` after it.
    fn maybe_range(&mut self) -> Result<Option<(i64, i64)>, ParseError> {
        if self.peek() != &Tok::LBracket {
            return Ok(None);
        }
        self.next();
        let range_ns = match *self.peek() {
            Tok::Duration(ns) if ns > 0 => ns,
            Tok::Duration(_) => return Err(self.error_at(self.offset(), "range must be positive")),
            _ => return Err(self.unexpected("duration such as 5m")),
        };
        self.next();
        self.expect(&Tok::RBracket, "\"]\"")?;
        let mut offset_ns = 0;
        if self.peek_ident("offset") {
            self.next();
            let negative = self.peek() == &Tok::Sub;
            if negative {
                self.next();
            }
            match *self.peek() {
                Tok::Duration(ns) => offset_ns = if negative { -ns } else { ns },
                _ => return Err(self.unexpected("duration such as 1h")),
            }
            self.next();
        }
        Ok(Some((range_ns, offset_ns)))
    }

    fn vector_aggregation(&mut self, op: VectorOp) -> Result<MetricExpr, ParseError> {
        let op_at = self.next().start;
        let mut grouping = self.grouping()?;
        self.expect(&Tok::LParen, "\"(\"")?;
        let param = if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
            let at = self.offset();
            let k = self.number("integer parameter")?;
            if !(k >= 1.0 && k.fract() == 0.0 && k <= f64::from(u32::MAX)) {
                return Err(self.error_at(
                    at,
                    format!("{} parameter must be a positive integer", op.name()),
                ));
            }
            self.expect(&Tok::Comma, "\",\"")?;
            Some(k)
        } else {
            None
        };
        let inner_at = self.offset();
        let inner = self.expr(0)?;
        self.expect(&Tok::RParen, "\")\"")?;
        let expr = match inner {
            Expr::Metric(m) if !m.is_scalar() => m,
            Expr::Metric(_) => {
                return Err(self.error_at(
                    inner_at,
                    format!("{} needs a vector, not a scalar", op.name()),
                ));
            }
            Expr::Log(_) => {
                return Err(self.error_at(
                    inner_at,
                    format!(
                        "{} needs a metric expression, such as count_over_time(…[5m])",
                        op.name()
                    ),
                ));
            }
        };
        if self.peek_ident("by") || self.peek_ident("without") {
            if grouping.is_some() {
                return Err(self.unexpected("end of aggregation (grouping given twice)"));
            }
            grouping = self.grouping()?;
        }
        if grouping.is_some() && matches!(op, VectorOp::Sort | VectorOp::SortDesc) {
            return Err(self.error_at(op_at, format!("grouping not allowed for {}", op.name())));
        }
        Ok(MetricExpr::Vector(Box::new(VectorAggregation {
            op,
            param,
            expr,
            grouping,
        })))
    }
}
