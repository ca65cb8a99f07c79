//! LogQL, Grafana Loki's query language: parser, pipeline and evaluator.
//!
//! - [`parse`] turns query text into an [`ast::Expr`], with errors that name line and column;
//! - [`Pipeline`] runs a log pipeline on one entry ([`compile_log_query`] builds one for live
//!   tail);
//! - [`Evaluator`] answers log and metric queries against any [`LogSource`], within
//!   [`QueryLimits`];
//! - [`MemorySource`] is the reference `LogSource`, over a `Vec`.
//!
//! Semantics follow Loki 3: label precedence (an extracted label that collides with a stream
//! label or metadata field is renamed `<name>_extracted`), `__error__`/`__error_details__`,
//! left-open range windows `(t - range, t]`, PromQL operator precedence and vector matching,
//! and a metric query fails when an entry still carries `__error__`. Two deliberate
//! differences:
//! - structured metadata is returned per entry, never merged into stream labels (the HTTP
//!   layer may merge it for clients that do not ask for categorized labels);
//! - in metric queries a metadata field becomes a series label only when a `by (…)` or
//!   `on (…)` clause names it, so high-cardinality fields such as `trace_id` never split
//!   series by accident (and scans of plain `count_over_time` need no metadata).
//!
//! Known gaps: `ip()` filters, `|>` pattern line filters, `label_replace`, `count_values`,
//! vector `quantile`, `rate_counter`, subqueries, `__timestamp__` and control flow in
//! templates, and the parenthesized log-range form `count_over_time(({…} | …)[5m])` are
//! refused with a parse error naming them or the unexpected token. Plain `| logfmt` is
//! lenient like Loki's (malformed pairs are skipped); `--strict` reports `LogfmtParserErr`.
//!
//! Layout: `lexer` → `parser` (+ `parser/stages`) → `ast`; `pipeline` with its helpers
//! `json`, `logfmt`, `pattern`, `template`, `units`; `hints` derives scan hints; `eval`
//! (+ `eval/range`, `eval/vector`, `eval/binary`) produces `value`s or an `error`.

pub mod ast;
mod error;
mod eval;
mod hints;
mod json;
mod lexer;
mod logfmt;
pub mod memory;
mod parser;
mod pattern;
mod pipeline;
pub mod source;
mod template;
mod units;
mod value;

#[cfg(test)]
mod tests;

use sightline_model::LabelMatcher;

pub use error::QueryError;
pub use eval::{
    DEFAULT_LIMIT, Direction, Evaluator, QueryLimits, QueryParams, QueryTime, evaluate,
};
pub use json::{JsonPath, PathSegment};
pub use memory::MemorySource;
pub use parser::{NESTING_DEPTH_MAX, ParseError, QUERY_BYTES_MAX, parse};
pub use pattern::Pattern;
pub use pipeline::{
    ERROR_DETAILS_LABEL, ERROR_LABEL, JSON_PARSER_ERR, LABEL_FILTER_ERR, LOGFMT_PARSER_ERR,
    Pipeline, ProcessedEntry, SAMPLE_EXTRACTION_ERR,
};
pub use source::{LogEntryRef, LogSelection, LogSource, SourceError};
pub use template::Template;
pub use units::{parse_bytes, parse_duration_ns};
pub use value::{
    Point, QueryResult, QueryStats, QueryValue, Sample, Series, StreamEntry, StreamResult,
};

/// Parses a log query into its selector and a pipeline, for live tail: the caller selects
/// streams with the matchers and runs [`Pipeline::process`] on each new entry.
pub fn compile_log_query(query: &str) -> Result<(Vec<LabelMatcher>, Pipeline), ParseError> {
    match parse(query)? {
        ast::Expr::Log(log) => Ok((log.matchers, Pipeline::new(log.stages))),
        ast::Expr::Metric(_) => Err(ParseError::new(
            query,
            0,
            "expected a log query such as {app=\"api\"} |= \"error\", found a metric query",
        )),
    }
}
