//! Running a log pipeline over one entry: line filters, parsers, label filters, formatters.
//!
//! An entry's labels come in three kinds, as in Loki: stream labels, structured metadata and
//! labels extracted by parsers or set by `label_format`. Stages see all three through one
//! lookup ([`EntryState::get`]: extracted, then metadata, then stream). An extracted name
//! that collides with a stream label or metadata field gets the suffix `_extracted`, so a
//! parser never overwrites a stream's identity.
//!
//! Failures never drop an entry by themselves: a json/logfmt/label-filter failure sets the
//! `__error__` label (and `__error_details__`), which `| __error__=""` can filter on.
//!
//! Invariant: the state borrows the stream labels, metadata and line from the source and
//! copies only what stages change; an entry no stage touches costs no allocation.

use std::borrow::Cow;

use sightline_model::Labels;
use sightline_model::labels::sanitize_label_name;

use super::ast::{
    LabelFilter, LabelFormatOp, LabelSelector, LineFilter, LineFilterOp, LineFilterValue, Stage,
};
use super::source::LogEntryRef;
use super::template::TemplateData;
use super::units::{parse_bytes, parse_duration_ns};
use super::{json, logfmt};

/// The label a failed stage sets.
pub const ERROR_LABEL: &str = "__error__";
/// The label holding why the stage failed.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// `__error__` values, as Loki names them.
pub const JSON_PARSER_ERR: &str = "JSONParserErr";
pub const LOGFMT_PARSER_ERR: &str = "LogfmtParserErr";
pub const LABEL_FILTER_ERR: &str = "LabelFilterErr";
pub const SAMPLE_EXTRACTION_ERR: &str = "SampleExtractionErr";

/// Suffix of an extracted label whose name a stream label or metadata field already has.
const DUPLICATE_SUFFIX: &str = "_extracted";

/// A compiled log pipeline, usable on its own (live tail) or by the evaluator.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    stages: Vec<Stage>,
}

/// An entry after the pipeline: its labels (stream plus extracted, with `__error__` if a
/// stage failed), its line (after `line_format`) and its structured metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedEntry {
    pub labels: Labels,
    pub line: String,
    pub metadata: Vec<(String, String)>,
    /// The labels the pipeline added, also in `labels`.
    pub parsed: Vec<(String, String)>,
}

impl Pipeline {
    pub fn new(stages: Vec<Stage>) -> Self {
        Self { stages }
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Runs the pipeline; `None` when a filter drops the entry.
    pub fn process(&self, labels: &Labels, entry: &LogEntryRef<'_>) -> Option<ProcessedEntry> {
        let mut state = EntryState::new(labels, entry.metadata, entry.line);
        if !self.run(&mut state) {
            return None;
        }
        Some(ProcessedEntry {
            labels: state.output_labels(&[]),
            metadata: state.output_metadata(),
            parsed: state.output_parsed(),
            line: state.line.into_owned(),
        })
    }

    /// Runs every stage on `state`; false when the entry is dropped.
    pub(crate) fn run(&self, state: &mut EntryState<'_>) -> bool {
        Self::run_stages(&self.stages, state)
    }

    /// Runs `stages` on `state` without building a `Pipeline`.
    pub(crate) fn run_stages(stages: &[Stage], state: &mut EntryState<'_>) -> bool {
        stages.iter().all(|stage| run_stage(stage, state))
    }
}

/// One entry as the pipeline transforms it.
pub(crate) struct EntryState<'a> {
    stream: &'a Labels,
    metadata: &'a [(String, String)],
    pub line: Cow<'a, str>,
    /// Extracted and `label_format` labels, each name once.
    parsed: Vec<(String, String)>,
    /// Stream labels and metadata fields removed by `drop`, `keep` or a rename.
    removed: Vec<String>,
    error: Option<String>,
    error_details: Option<String>,
}

impl<'a> EntryState<'a> {
    pub fn new(stream: &'a Labels, metadata: &'a [(String, String)], line: &'a str) -> Self {
        Self {
            stream,
            metadata,
            line: Cow::Borrowed(line),
            parsed: Vec::new(),
            removed: Vec::new(),
            error: None,
            error_details: None,
        }
    }

    /// Whether no stage changed the labels, so they are exactly the stream's.
    pub fn labels_untouched(&self) -> bool {
        self.parsed.is_empty() && self.removed.is_empty() && self.error.is_none()
    }

    pub fn error(&self) -> Option<(&str, Option<&str>)> {
        self.error
            .as_deref()
            .map(|e| (e, self.error_details.as_deref()))
    }

    /// The value of a label of any kind.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            ERROR_LABEL => return self.error.as_deref(),
            ERROR_DETAILS_LABEL => return self.error_details.as_deref(),
            _ => {}
        }
        if let Some((_, v)) = self.parsed.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        if self.removed.iter().any(|r| r == name) {
            return None;
        }
        if let Some((_, v)) = self.metadata.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.stream.get(name)
    }

    /// The value of a structured-metadata field that nothing removed or overrode.
    pub(crate) fn metadata_value(&self, name: &str) -> Option<&str> {
        if self.removed.iter().any(|r| r == name) || self.parsed.iter().any(|(k, _)| k == name) {
            return None;
        }
        self.metadata
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_base(&self, name: &str) -> bool {
        self.stream.get(name).is_some() || self.metadata.iter().any(|(k, _)| k == name)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match name {
            ERROR_LABEL => self.error = (!value.is_empty()).then(|| value.to_string()),
            ERROR_DETAILS_LABEL => {
                self.error_details = (!value.is_empty()).then(|| value.to_string());
            }
            _ => match self.parsed.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => value.clone_into(&mut slot.1),
                None => self.parsed.push((name.to_string(), value.to_string())),
            },
        }
    }

    /// Sets a label a parser extracted, renaming it on a collision with the stream or metadata.
    fn set_extracted(&mut self, name: String, value: &str) {
        if self.has_base(&name) {
            let renamed = name + DUPLICATE_SUFFIX;
            self.set(&renamed, value);
        } else {
            self.set(&name, value);
        }
    }

    pub fn delete(&mut self, name: &str) {
        match name {
            ERROR_LABEL => self.error = None,
            ERROR_DETAILS_LABEL => self.error_details = None,
            _ => {
                self.parsed.retain(|(k, _)| k != name);
                if self.has_base(name) && !self.removed.iter().any(|r| r == name) {
                    self.removed.push(name.to_string());
                }
            }
        }
    }

    /// Sets `__error__` (and details) unless an earlier stage already failed.
    pub fn set_error(&mut self, error: &str, details: String) {
        if self.error.is_none() {
            self.error = Some(error.to_string());
            self.error_details = Some(details);
        }
    }

    /// Every label name currently visible, error labels excluded.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .stream
            .iter()
            .map(|(k, _)| k.to_string())
            .chain(self.metadata.iter().map(|(k, _)| k.clone()))
            .filter(|k| !self.removed.contains(k))
            .chain(self.parsed.iter().map(|(k, _)| k.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Stream labels, extracted labels, error labels, and the metadata fields named in
    /// `promote`: the labels of a log stream in a result, or of a series in a metric query.
    pub fn output_labels(&self, promote: &[String]) -> Labels {
        if self.labels_untouched() && promote.is_empty() {
            return self.stream.clone();
        }
        let mut pairs: Vec<(&str, &str)> = self
            .stream
            .iter()
            .filter(|(k, _)| !self.removed.iter().any(|r| r == k))
            .collect();
        for name in promote {
            if let Some(v) = self.metadata_value(name) {
                pairs.push((name, v));
            }
        }
        pairs.extend(self.parsed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(e) = &self.error {
            pairs.push((ERROR_LABEL, e));
        }
        if let Some(d) = &self.error_details {
            pairs.push((ERROR_DETAILS_LABEL, d));
        }
        Labels::from_pairs(pairs)
    }

    /// The labels the pipeline added: extracted or formatted ones and the error labels.
    pub fn output_parsed(&self) -> Vec<(String, String)> {
        let mut out = self.parsed.clone();
        if let Some(e) = &self.error {
            out.push((ERROR_LABEL.to_string(), e.clone()));
        }
        if let Some(d) = &self.error_details {
            out.push((ERROR_DETAILS_LABEL.to_string(), d.clone()));
        }
        out
    }

    /// Structured metadata minus what was dropped or overridden.
    pub fn output_metadata(&self) -> Vec<(String, String)> {
        self.metadata
            .iter()
            .filter(|(k, _)| self.metadata_value(k).is_some())
            .cloned()
            .collect()
    }
}

impl TemplateData for EntryState<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    fn line(&self) -> &str {
        &self.line
    }
}

fn run_stage(stage: &Stage, state: &mut EntryState<'_>) -> bool {
    match stage {
        Stage::LineFilter(f) => line_matches(f, &state.line),
        Stage::LabelFilter(f) => label_filter_matches(f, state),
        Stage::Json(params) => {
            run_json(params, state);
            true
        }
        Stage::Logfmt {
            strict,
            keep_empty,
            params,
        } => {
            run_logfmt(*strict, *keep_empty, params, state);
            true
        }
        Stage::Regexp(re) => {
            let line = std::mem::take(&mut state.line);
            if let Some(caps) = re.captures(&line) {
                for name in re.capture_names().flatten() {
                    if let Some(m) = caps.name(name) {
                        state.set_extracted(name.to_string(), m.as_str());
                    }
                }
            }
            state.line = line;
            true
        }
        Stage::Pattern(p) => {
            let line = std::mem::take(&mut state.line);
            p.extract(&line, &mut |name, value| {
                state.set_extracted(name.to_string(), value)
            });
            state.line = line;
            true
        }
        Stage::Unpack => {
            run_unpack(state);
            true
        }
        Stage::Decolorize => {
            if state.line.contains('\u{1b}') {
                state.line = Cow::Owned(strip_ansi(&state.line));
            }
            true
        }
        Stage::LineFormat(t) => {
            let mut out = String::new();
            t.render(state, &mut out);
            state.line = Cow::Owned(out);
            true
        }
        Stage::LabelFormat(ops) => {
            let mut out = String::new();
            for op in ops {
                match op {
                    LabelFormatOp::Rename { dst, src } => {
                        if dst == src {
                            continue;
                        }
                        if let Some(v) = state.get(src).map(str::to_string) {
                            state.delete(src);
                            state.set(dst, &v);
                        }
                    }
                    LabelFormatOp::Template { dst, template } => {
                        template.render(state, &mut out);
                        state.set(dst, &out);
                    }
                }
            }
            true
        }
        Stage::Drop(items) => {
            for item in items {
                let value = state.get(&item.name).unwrap_or("");
                if item.selects(&item.name, value) {
                    state.delete(&item.name);
                }
            }
            true
        }
        Stage::Keep(items) => {
            run_keep(items, state);
            true
        }
    }
}

pub(crate) fn line_matches(filter: &LineFilter, line: &str) -> bool {
    let any = filter.values.iter().any(|v| match v {
        LineFilterValue::Text(t) => memchr::memmem::find(line.as_bytes(), t.as_bytes()).is_some(),
        LineFilterValue::Regex(re) => re.is_match(line),
    });
    match filter.op {
        LineFilterOp::Contains | LineFilterOp::Matches => any,
        LineFilterOp::NotContains | LineFilterOp::NotMatches => !any,
    }
}

/// Loki's label filter semantics: a numeric, duration or byte filter on a value that does not
/// convert keeps the entry and sets `LabelFilterErr`; after any error only string matchers
/// can drop the entry; a numeric filter on a missing label drops it.
pub(crate) fn label_filter_matches(filter: &LabelFilter, state: &mut EntryState<'_>) -> bool {
    match filter {
        LabelFilter::And(a, b) => label_filter_matches(a, state) && label_filter_matches(b, state),
        LabelFilter::Or(a, b) => label_filter_matches(a, state) || label_filter_matches(b, state),
        LabelFilter::Text(m) => m.matches_value(state.get(&m.name).unwrap_or("")),
        LabelFilter::Number { name, op, value } => compare_converted(state, name, |v| {
            v.parse::<f64>()
                .map(|x| op.compare(x, *value))
                .map_err(|_| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax"))
        }),
        LabelFilter::Duration { name, op, value_ns } => compare_converted(state, name, |v| {
            parse_duration_ns(v)
                .map(|x| op.compare(x, *value_ns))
                .ok_or_else(|| format!("time: invalid duration {v:?}"))
        }),
        LabelFilter::Bytes { name, op, value } => compare_converted(state, name, |v| {
            parse_bytes(v)
                .map(|x| op.compare(x, *value))
                .ok_or_else(|| format!("invalid byte size {v:?}"))
        }),
    }
}

fn compare_converted(
    state: &mut EntryState<'_>,
    name: &str,
    compare: impl Fn(&str) -> Result<bool, String>,
) -> bool {
    if state.error.is_some() {
        return true;
    }
    let Some(value) = state.get(name) else {
        return false;
    };
    match compare(value) {
        Ok(keep) => keep,
        Err(details) => {
            state.set_error(LABEL_FILTER_ERR, details);
            true
        }
    }
}

fn run_json(params: &[(String, json::JsonPath)], state: &mut EntryState<'_>) {
    let line = std::mem::take(&mut state.line);
    match json::parse_object(&line) {
        Ok(root) if params.is_empty() => {
            json::flatten(&root, &mut |name, value| state.set_extracted(name, &value));
        }
        Ok(root) => {
            for (name, path) in params {
                if let Some(node) = path.lookup(&root) {
                    state.set_extracted(name.clone(), &node.label_value());
                }
            }
        }
        Err(e) => state.set_error(JSON_PARSER_ERR, e.to_string()),
    }
    state.line = line;
}

fn run_unpack(state: &mut EntryState<'_>) {
    let line = std::mem::take(&mut state.line);
    let mut entry: Option<String> = None;
    match json::parse_object(&line) {
        Ok(root) => {
            if let json::Value::Object(fields) = &root.value {
                for (key, node) in fields {
                    let json::Value::String(value) = &node.value else {
                        continue;
                    };
                    if key == "_entry" {
                        entry = Some(value.to_string());
                    } else if !key.is_empty() {
                        state.set_extracted(sanitize_label_name(key), value);
                    }
                }
            }
        }
        Err(e) => state.set_error(JSON_PARSER_ERR, e.to_string()),
    }
    state.line = match entry {
        Some(e) => Cow::Owned(e),
        None => line,
    };
}

fn run_logfmt(
    strict: bool,
    keep_empty: bool,
    params: &[(String, String)],
    state: &mut EntryState<'_>,
) {
    let line = std::mem::take(&mut state.line);
    let result = logfmt::parse(&line, strict, &mut |key, value| {
        if value.is_empty() && !keep_empty {
            return;
        }
        if params.is_empty() {
            state.set_extracted(sanitize_label_name(key), &value);
        } else {
            for (name, wanted) in params {
                if wanted == key {
                    state.set_extracted(name.clone(), &value);
                }
            }
        }
    });
    if let Err(details) = result {
        state.set_error(LOGFMT_PARSER_ERR, details);
    }
    state.line = line;
}

fn run_keep(items: &[LabelSelector], state: &mut EntryState<'_>) {
    for name in state.names() {
        let value = state.get(&name).unwrap_or("");
        if !items.iter().any(|item| item.selects(&name, value)) {
            state.delete(&name);
        }
    }
}

/// Removes ANSI escape sequences (`ESC [ … final-byte`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ansi_colours() {
        assert_eq!(strip_ansi("\u{1b}[31merror\u{1b}[0m: x"), "error: x");
    }

    #[test]
    fn extracted_names_never_overwrite_stream_or_metadata() {
        let stream = Labels::from_pairs([("level", "info")]);
        let metadata = vec![("trace_id".to_string(), "t1".to_string())];
        let mut state = EntryState::new(&stream, &metadata, "");
        state.set_extracted("level".to_string(), "error");
        state.set_extracted("trace_id".to_string(), "t2");
        state.set_extracted("user".to_string(), "u");
        assert_eq!(state.get("level"), Some("info"));
        assert_eq!(state.get("level_extracted"), Some("error"));
        assert_eq!(state.get("trace_id"), Some("t1"));
        assert_eq!(state.get("trace_id_extracted"), Some("t2"));
        assert_eq!(
            state.output_labels(&[]).to_string(),
            r#"{level="info", level_extracted="error", trace_id_extracted="t2", user="u"}"#
        );
        assert_eq!(state.output_metadata(), metadata);
        state.delete("trace_id");
        assert_eq!(state.get("trace_id"), None);
        assert!(state.output_metadata().is_empty());
    }
}
