//! The pruning hints of a [`LogSelection`](super::source::LogSelection), derived from a query.
//!
//! A hint may only let a source skip work whose result the evaluator would discard anyway,
//! so every rule here is conservative:
//! - `line_contains`: single-value `|= "text"` filters before the first stage that parses or
//!   rewrites the line (parsers, `line_format`, `decolorize`);
//! - `metadata_eq`: top-level `name="value"` conjuncts of label filters before the first stage
//!   that can add or remove labels (parsers, `label_format`, `drop`, `keep`);
//! - `need_line`: false only when no stage reads the original line and the aggregation does
//!   not measure it;
//! - `need_metadata`: log queries return metadata, so always true there; metric queries need
//!   it when any stage other than a line filter runs, or a grouping promotes a field.

use super::ast::{
    LabelFilter, LabelFormatOp, LineFilterOp, LineFilterValue, LogExpr, RangeAggregation, RangeOp,
    Stage,
};
use sightline_model::MatchOp;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hints {
    pub line_contains: Vec<String>,
    pub metadata_eq: Vec<(String, String)>,
    pub need_line: bool,
    pub need_metadata: bool,
    /// The only metadata fields read, when they are known.
    pub metadata_fields: Option<Vec<String>>,
}

/// Hints for a log query, which returns lines and metadata.
pub(crate) fn log_query_hints(expr: &LogExpr) -> Hints {
    let (line_contains, metadata_eq) = filter_hints(&expr.stages);
    Hints {
        line_contains,
        metadata_eq,
        need_line: true,
        need_metadata: true,
        metadata_fields: None,
    }
}

/// Hints for the scan of one range aggregation; `promote` lists metadata fields a grouping
/// turns into series labels.
pub(crate) fn range_hints(agg: &RangeAggregation, promote: &[String]) -> Hints {
    let (line_contains, metadata_eq) = filter_hints(&agg.log.stages);
    let measures_line = matches!(agg.op, RangeOp::BytesOverTime | RangeOp::BytesRate);
    let only_line_filters = agg
        .log
        .stages
        .iter()
        .all(|s| matches!(s, Stage::LineFilter(_)));
    let need_metadata = !promote.is_empty() || agg.unwrap.is_some() || !only_line_filters;
    // With nothing but line filters, the fields read are exactly those a grouping promotes
    // and the one unwrapped.
    let unwrap_filters = agg
        .unwrap
        .as_ref()
        .is_some_and(|u| !u.post_filters.is_empty());
    let metadata_fields = (only_line_filters && !unwrap_filters).then(|| {
        let mut fields = promote.to_vec();
        if let Some(u) = &agg.unwrap {
            fields.push(u.label.clone());
        }
        fields
    });
    Hints {
        line_contains,
        metadata_eq,
        need_line: measures_line || reads_original_line(&agg.log.stages),
        need_metadata,
        metadata_fields,
    }
}

fn filter_hints(stages: &[Stage]) -> (Vec<String>, Vec<(String, String)>) {
    let mut line_contains = Vec::new();
    let mut metadata_eq = Vec::new();
    let (mut line_intact, mut labels_intact) = (true, true);
    for stage in stages {
        match stage {
            Stage::LineFilter(f) if line_intact && f.op == LineFilterOp::Contains => {
                if let [LineFilterValue::Text(t)] = f.values.as_slice()
                    && !t.is_empty()
                {
                    line_contains.push(t.clone());
                }
            }
            Stage::LabelFilter(f) if labels_intact => collect_equalities(f, &mut metadata_eq),
            Stage::Json(_)
            | Stage::Logfmt { .. }
            | Stage::Regexp(_)
            | Stage::Pattern(_)
            | Stage::Unpack => {
                line_intact = false;
                labels_intact = false;
            }
            Stage::LineFormat(_) | Stage::Decolorize => line_intact = false,
            Stage::LabelFormat(_) | Stage::Drop(_) | Stage::Keep(_) => labels_intact = false,
            Stage::LineFilter(_) | Stage::LabelFilter(_) => {}
        }
    }
    (line_contains, metadata_eq)
}

/// The `name="value"` filters every kept entry satisfies (conjuncts only, never under `or`).
fn collect_equalities(filter: &LabelFilter, out: &mut Vec<(String, String)>) {
    match filter {
        LabelFilter::And(a, b) => {
            collect_equalities(a, out);
            collect_equalities(b, out);
        }
        LabelFilter::Text(m)
            if m.op == MatchOp::Eq && !m.value.is_empty() && !m.name.starts_with("__") =>
        {
            out.push((m.name.clone(), m.value.clone()));
        }
        _ => {}
    }
}

/// Whether a stage reads the line as the source delivered it.
fn reads_original_line(stages: &[Stage]) -> bool {
    for stage in stages {
        match stage {
            Stage::LineFilter(_)
            | Stage::Json(_)
            | Stage::Logfmt { .. }
            | Stage::Regexp(_)
            | Stage::Pattern(_)
            | Stage::Unpack
            | Stage::Decolorize => return true,
            Stage::LabelFormat(ops) => {
                let uses_line = ops.iter().any(|op| match op {
                    LabelFormatOp::Template { template, .. } => template.uses_line(),
                    LabelFormatOp::Rename { .. } => false,
                });
                if uses_line {
                    return true;
                }
            }
            // After line_format, later stages read the formatted line, not the original.
            Stage::LineFormat(t) => return t.uses_line(),
            Stage::LabelFilter(_) | Stage::Drop(_) | Stage::Keep(_) => {}
        }
    }
    false
}
