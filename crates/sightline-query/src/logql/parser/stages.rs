//! Stream selectors and pipeline stages: `{a="x"} |= "y" | json | n > 5 | line_format "…"`.
//!
//! Invariants: a selector has at least one matcher that rejects the empty value (as Loki
//! demands, so a query cannot scan every stream); regexes, templates and patterns are compiled
//! here so their errors point at their literal; `unwrap` is accepted only when the caller is a
//! range aggregation, and only label filters may follow it.

use sightline_model::{LabelMatcher, MatchOp};

use super::{ParseError, Parser, regex_error_message};
use crate::logql::ast::{
    CmpOp, LabelFilter, LabelFormatOp, LabelSelector, LineFilter, LineFilterOp, LineFilterValue,
    LogExpr, Stage, Unwrap, UnwrapConversion,
};
use crate::logql::json::JsonPath;
use crate::logql::lexer::Tok;
use crate::logql::pattern::Pattern;
use crate::logql::template::Template;

impl Parser<'_> {
    /// A selector and its pipeline, outside a range aggregation.
    pub(super) fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let matchers = self.selector()?;
        let (stages, _) = self.stages(false)?;
        Ok(LogExpr { matchers, stages })
    }

    pub(super) fn selector(&mut self) -> Result<Vec<LabelMatcher>, ParseError> {
        let open_at = self.expect(&Tok::LBrace, "\"{\"")?.start;
        let mut matchers = Vec::new();
        while self.peek() != &Tok::RBrace {
            let (name, _) = self.ident("label matcher")?;
            let op = match self.peek() {
                Tok::Eq => MatchOp::Eq,
                Tok::Neq => MatchOp::Neq,
                Tok::Re => MatchOp::Re,
                Tok::Nre => MatchOp::Nre,
                _ => return Err(self.unexpected("one of =, !=, =~, !~")),
            };
            self.next();
            matchers.push(self.matcher(&name, op)?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RBrace => {}
                _ => return Err(self.unexpected("\",\" or \"}\"")),
            }
        }
        self.next();
        if matchers.iter().all(LabelMatcher::matches_empty) {
            return Err(self.error_at(
                open_at,
                "queries require at least one regexp or equality matcher that does not have an \
                 empty-compatible value; for instance, app=~\".*\" does not meet this \
                 requirement, but app=~\".+\" will",
            ));
        }
        Ok(matchers)
    }

    /// The string after a matcher operator, compiled into a matcher.
    fn matcher(&mut self, name: &str, op: MatchOp) -> Result<LabelMatcher, ParseError> {
        let (value, at) = self.string("string")?;
        LabelMatcher::new(name, op, &value).map_err(|e| {
            self.error_at(
                at,
                format!("invalid regex {value:?}: {}", regex_error_message(&e)),
            )
        })
    }

    /// Stages up to the first token that cannot continue the pipeline.
    pub(super) fn stages(
        &mut self,
        in_range: bool,
    ) -> Result<(Vec<Stage>, Option<Unwrap>), ParseError> {
        let mut stages = Vec::new();
        loop {
            match self.peek() {
                Tok::PipeExact | Tok::Neq | Tok::PipeMatch | Tok::Nre => {
                    stages.push(Stage::LineFilter(self.line_filter()?));
                }
                Tok::Pipe => {
                    self.next();
                    if self.peek_ident("unwrap") && !self.peek_is_label_filter() {
                        if !in_range {
                            return Err(self.error_at(
                                self.offset(),
                                "unwrap is only allowed inside a range aggregation, as in \
                                 sum_over_time({…} | unwrap latency [5m])",
                            ));
                        }
                        let unwrap = self.unwrap()?;
                        return Ok((stages, Some(unwrap)));
                    }
                    stages.push(self.stage()?);
                }
                _ => return Ok((stages, None)),
            }
        }
    }

    /// Whether the identifier at the cursor starts a label filter (`name op value`) rather
    /// than naming a stage, so that a label called `json` can still be filtered on.
    fn peek_is_label_filter(&self) -> bool {
        matches!(
            self.peek_at(1),
            Tok::Eq
                | Tok::Neq
                | Tok::Re
                | Tok::Nre
                | Tok::EqEq
                | Tok::Gt
                | Tok::Ge
                | Tok::Lt
                | Tok::Le
        )
    }

    fn line_filter(&mut self) -> Result<LineFilter, ParseError> {
        let op = match self.next().tok {
            Tok::PipeExact => LineFilterOp::Contains,
            Tok::Neq => LineFilterOp::NotContains,
            Tok::PipeMatch => LineFilterOp::Matches,
            _ => LineFilterOp::NotMatches,
        };
        let regex = matches!(op, LineFilterOp::Matches | LineFilterOp::NotMatches);
        let mut values = Vec::new();
        loop {
            if self.peek_ident("ip") {
                return Err(self.error_at(self.offset(), "ip() line filters are not supported"));
            }
            let (text, at) = self.string("string")?;
            values.push(if regex {
                let re = regex::Regex::new(&text).map_err(|e| {
                    self.error_at(
                        at,
                        format!("invalid regex {text:?}: {}", regex_error_message(&e)),
                    )
                })?;
                LineFilterValue::Regex(re)
            } else {
                LineFilterValue::Text(text)
            });
            if self.peek_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
                self.next();
            } else {
                return Ok(LineFilter { op, values });
            }
        }
    }

    /// The stage after a `|`.
    fn stage(&mut self) -> Result<Stage, ParseError> {
        let keyword = match self.peek() {
            Tok::Ident(w) if !self.peek_is_label_filter() => w.clone(),
            Tok::Ident(_) | Tok::LParen => return Ok(Stage::LabelFilter(self.label_filter()?)),
            _ => return Err(self.unexpected("parser, formatter or label filter")),
        };
        let at = self.offset();
        let stage = match keyword.as_str() {
            "json" => {
                self.next();
                Stage::Json(self.json_params()?)
            }
            "logfmt" => {
                self.next();
                self.logfmt()?
            }
            "regexp" => {
                self.next();
                let (text, at) = self.string("regular expression string")?;
                let re = regex::Regex::new(&text).map_err(|e| {
                    self.error_at(
                        at,
                        format!("invalid regex {text:?}: {}", regex_error_message(&e)),
                    )
                })?;
                if re.capture_names().flatten().next().is_none() {
                    return Err(self.error_at(at, "regexp has no named capture group"));
                }
                Stage::Regexp(re)
            }
            "pattern" => {
                self.next();
                let (text, at) = self.string("pattern string")?;
                let pattern = Pattern::new(&text)
                    .map_err(|e| self.error_at(at, format!("invalid pattern: {e}")))?;
                Stage::Pattern(pattern)
            }
            "unpack" => {
                self.next();
                Stage::Unpack
            }
            "decolorize" => {
                self.next();
                Stage::Decolorize
            }
            "line_format" => {
                self.next();
                Stage::LineFormat(self.template()?)
            }
            "label_format" => {
                self.next();
                self.label_format()?
            }
            "drop" | "keep" => {
                self.next();
                let items = self.label_selectors()?;
                if keyword == "drop" {
                    Stage::Drop(items)
                } else {
                    Stage::Keep(items)
                }
            }
            "ip" => return Err(self.error_at(at, "ip() label filters are not supported")),
            _ => Stage::LabelFilter(self.label_filter()?),
        };
        Ok(stage)
    }

    fn template(&mut self) -> Result<Template, ParseError> {
        let (text, at) = self.string("template string")?;
        Template::new(&text).map_err(|e| self.error_at(at, format!("invalid template: {e}")))
    }

    /// `name="path", name2, …` after `json` (possibly none).
    fn json_params(&mut self) -> Result<Vec<(String, JsonPath)>, ParseError> {
        let mut params = Vec::new();
        while let Tok::Ident(name) = self.peek().clone() {
            self.next();
            let (path_text, at) = if self.peek() == &Tok::Eq {
                self.next();
                self.string("json path string")?
            } else {
                (name.clone(), self.offset())
            };
            let path = JsonPath::parse(&path_text)
                .map_err(|e| self.error_at(at, format!("invalid json path {path_text:?}: {e}")))?;
            params.push((name, path));
            if self.peek() != &Tok::Comma {
                break;
            }
            self.next();
        }
        Ok(params)
    }

    fn logfmt(&mut self) -> Result<Stage, ParseError> {
        let (mut strict, mut keep_empty) = (false, false);
        while let Tok::Flag(flag) = self.peek().clone() {
            match flag.as_str() {
                "strict" => strict = true,
                "keep-empty" => keep_empty = true,
                _ => {
                    return Err(self.error_at(
                        self.offset(),
                        format!("unknown logfmt flag --{flag}, expected --strict or --keep-empty"),
                    ));
                }
            }
            self.next();
        }
        let mut params = Vec::new();
        while let Tok::Ident(name) = self.peek().clone() {
            self.next();
            let key = if self.peek() == &Tok::Eq {
                self.next();
                self.string("logfmt key string")?.0
            } else {
                name.clone()
            };
            params.push((name, key));
            if self.peek() != &Tok::Comma {
                break;
            }
            self.next();
        }
        Ok(Stage::Logfmt {
            strict,
            keep_empty,
            params,
        })
    }

    fn label_format(&mut self) -> Result<Stage, ParseError> {
        let mut ops: Vec<LabelFormatOp> = Vec::new();
        loop {
            let (dst, at) = self.ident("label name")?;
            self.expect(&Tok::Eq, "\"=\"")?;
            let op = match self.peek().clone() {
                Tok::Ident(src) => {
                    self.next();
                    LabelFormatOp::Rename { dst, src }
                }
                Tok::Str(_) => LabelFormatOp::Template {
                    dst,
                    template: self.template()?,
                },
                _ => return Err(self.unexpected("label name or template string")),
            };
            let name = match &op {
                LabelFormatOp::Rename { dst, .. } | LabelFormatOp::Template { dst, .. } => dst,
            };
            let seen = ops.iter().any(|o| match o {
                LabelFormatOp::Rename { dst, .. } | LabelFormatOp::Template { dst, .. } => {
                    dst == name
                }
            });
            if seen {
                return Err(
                    self.error_at(at, format!("multiple label name {name:?} in label_format"))
                );
            }
            ops.push(op);
            if self.peek() != &Tok::Comma {
                return Ok(Stage::LabelFormat(ops));
            }
            self.next();
        }
    }

    /// `a, b="v", c=~"re"` after `drop` or `keep`.
    fn label_selectors(&mut self) -> Result<Vec<LabelSelector>, ParseError> {
        let mut items = Vec::new();
        loop {
            let (name, _) = self.ident("label name")?;
            let op = match self.peek() {
                Tok::Eq => Some(MatchOp::Eq),
                Tok::Neq => Some(MatchOp::Neq),
                Tok::Re => Some(MatchOp::Re),
                Tok::Nre => Some(MatchOp::Nre),
                _ => None,
            };
            let matcher = match op {
                Some(op) => {
                    self.next();
                    Some(self.matcher(&name, op)?)
                }
                None => None,
            };
            items.push(LabelSelector { name, matcher });
            if self.peek() != &Tok::Comma {
                return Ok(items);
            }
            self.next();
        }
    }

    /// `unwrap name`, `unwrap duration(name)`, `unwrap bytes(name)`, then label filters.
    fn unwrap(&mut self) -> Result<Unwrap, ParseError> {
        self.next();
        let conversion = match self.peek() {
            Tok::Ident(w) if matches!(self.peek_at(1), Tok::LParen) => match w.as_str() {
                "duration" | "duration_seconds" => Some(UnwrapConversion::Duration),
                "bytes" => Some(UnwrapConversion::Bytes),
                other => {
                    return Err(self.error_at(
                        self.offset(),
                        format!("unknown unwrap conversion {other:?}, expected duration or bytes"),
                    ));
                }
            },
            _ => None,
        };
        let label = match conversion {
            Some(_) => {
                self.next();
                self.next();
                let (label, _) = self.ident("label name")?;
                self.expect(&Tok::RParen, "\")\"")?;
                label
            }
            None => self.ident("label name")?.0,
        };
        let mut post_filters = Vec::new();
        while self.peek() == &Tok::Pipe {
            self.next();
            if !matches!(self.peek(), Tok::Ident(_) | Tok::LParen) || !self.starts_label_filter() {
                return Err(self.unexpected("label filter (only label filters may follow unwrap)"));
            }
            post_filters.push(self.label_filter()?);
        }
        Ok(Unwrap {
            label,
            conversion: conversion.unwrap_or(UnwrapConversion::Number),
            post_filters,
        })
    }

    fn starts_label_filter(&self) -> bool {
        self.peek() == &Tok::LParen || self.peek_is_label_filter()
    }

    /// `a or b`, where each side is an `and` chain.
    pub(super) fn label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_and()?;
        while self.peek_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    /// Filters joined by `and`, `,` or plain juxtaposition.
    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            if self.peek_ident("and") || self.peek() == &Tok::Comma {
                self.next();
            } else if !(matches!(self.peek(), Tok::Ident(w) if w != "or")
                && self.peek_is_label_filter())
            {
                return Ok(lhs);
            }
            let rhs = self.label_filter_primary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if self.peek() == &Tok::LParen {
            self.enter()?;
            self.next();
            let inner = self.label_filter()?;
            self.expect(&Tok::RParen, "\")\"")?;
            self.leave();
            return Ok(inner);
        }
        let (name, _) = self.ident("label filter")?;
        let op_tok = self.peek().clone();
        let cmp = match op_tok {
            Tok::Eq | Tok::EqEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Re | Tok::Nre => {
                self.next();
                let op = if op_tok == Tok::Re {
                    MatchOp::Re
                } else {
                    MatchOp::Nre
                };
                return Ok(LabelFilter::Text(self.matcher(&name, op)?));
            }
            _ => return Err(self.unexpected("one of =, !=, =~, !~, ==, >, >=, <, <=")),
        };
        self.next();
        if matches!(self.peek(), Tok::Str(_)) && matches!(cmp, CmpOp::Eq | CmpOp::Neq) {
            let op = if cmp == CmpOp::Eq {
                MatchOp::Eq
            } else {
                MatchOp::Neq
            };
            return Ok(LabelFilter::Text(self.matcher(&name, op)?));
        }
        if self.peek_ident("ip") {
            return Err(self.error_at(self.offset(), "ip() label filters are not supported"));
        }
        let negative = self.peek() == &Tok::Sub;
        if negative {
            self.next();
        }
        let sign = if negative { -1.0 } else { 1.0 };
        let filter = match *self.peek() {
            Tok::Num(v) => LabelFilter::Number {
                name,
                op: cmp,
                value: sign * v,
            },
            Tok::Duration(ns) => LabelFilter::Duration {
                name,
                op: cmp,
                value_ns: if negative { -ns } else { ns },
            },
            Tok::Bytes(b) if !negative => LabelFilter::Bytes {
                name,
                op: cmp,
                value: b,
            },
            _ => {
                let expected = if matches!(cmp, CmpOp::Eq | CmpOp::Neq) {
                    "string, number, duration or byte size"
                } else {
                    "number, duration or byte size"
                };
                return Err(self.unexpected(expected));
            }
        };
        self.next();
        Ok(filter)
    }
}
