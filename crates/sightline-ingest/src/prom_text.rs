//! The Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text: one parser for
//! `POST /api/v1/import/prometheus`, `sightline import prometheus FILE` and the scraper.
//!
//! **Accepted.** `# HELP`, `# TYPE` and `# UNIT` lines become the families' metadata (the
//! family name as the `TYPE` line writes it, as Prometheus keeps it); every other comment is
//! ignored. Sample lines are `name{label="value",...} value [timestamp] [# exemplar]`, with
//! blanks (spaces or tabs) between tokens, an optional trailing comma in label sets, label
//! values escaped with `\\`, `\"` and `\n` (any other backslash kept as written), values as
//! Go reads floats (`NaN`, `+Inf`, `-Inf` included). Timestamps are integer milliseconds in
//! Prometheus text and float seconds in OpenMetrics (exact for plain decimals); a line
//! without one gets the caller's `default_timestamp_ms`. Exemplars (`# {trace_id="..."} 0.67
//! 1.6e9`, timestamp in seconds and optional, defaulting to the sample's) are read in both
//! formats; exemplars over 128 characters of labels are dropped, as Prometheus drops them.
//! Histograms and summaries are their `_bucket`/`_sum`/`_count` and quantile series; in a
//! histogram family `le`, and in a summary family `quantile`, are normalised as Prometheus 3
//! normalises them (`le="1"` → `le="1.0"`, see
//! [`format_openmetrics_float`](crate::metrics_common::format_openmetrics_float)).
//!
//! **Dropped.** `<family>_created` samples of counter, histogram and summary families, as
//! Prometheus drops them by default (client_python's 0.0.4 output types its `_created` lines
//! as gauges of their own: those are kept, as Prometheus keeps them). Labels with an empty
//! value.
//!
//! **Rejected: the whole body fails**, naming the line and column: a syntax error, an
//! invalid UTF-8 byte, an unknown `# TYPE`, a label name twice on one line, more labels or
//! longer ones than the limits of [`crate::metrics_common`], quoted (UTF-8) metric or label
//! names, and in OpenMetrics a body that does not end with `# EOF` or has lines after it.
//! For example `prometheus text line 3: expected '=' after label name "code", found ":\"200\"}"
//! at column 27`. Not checked: that a family's samples are contiguous, that `# UNIT` is a
//! suffix of the family name, that counters are not negative, that buckets are cumulative.
//!
//! **Which format.** `application/openmetrics-text` is OpenMetrics, `text/plain` is
//! Prometheus text; protobuf exposition is refused; with no (or another) content type a body
//! whose last line is `# EOF` is OpenMetrics, else Prometheus text.
//!
//! **Speed and streaming.** A hand-written byte scanner (`scanner`), one UTF-8 check per
//! chunk, label values borrowed unless escaped, one label vector reused for every line, and
//! consecutive lines of the same series (an import of many timestamps) appended to one
//! [`SeriesSamples`]: the only per-sample allocations are those of a new series' labels.
//! [`Parser`] takes the body in chunks cut at line ends (see [`complete_lines_len`]), so a
//! multi-gigabyte import never needs to be in memory at once.

mod scanner;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;

use sightline_model::{
    Exemplar, Labels, METRIC_NAME_LABEL, MetricMetadata, MetricType, Sample, SeriesSamples,
};

use crate::error::{IngestError, RecordError, excerpt};
use crate::metrics_common::{
    BUCKET_LABEL, DecodedMetrics, EXEMPLAR_LABEL_CHARS_MAX, QUANTILE_LABEL, SERIES_LABELS_MAX,
    check_label, normalize_float_label,
};
use scanner::{Cursor, LabelPairs, parse_seconds_as_ms, parse_timestamp_ms, parse_value, unescape};

/// Which of the two text formats a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// Prometheus text exposition 0.0.4 (`text/plain; version=0.0.4`): ms timestamps.
    Prometheus,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`): second timestamps, `# EOF`.
    OpenMetrics,
}

impl TextFormat {
    /// The format of a body by its content type, else by whether it ends with `# EOF`.
    pub fn detect(content_type: Option<&str>, body: &[u8]) -> Result<Self, IngestError> {
        let media_type = content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        let is = |name: &str| media_type.eq_ignore_ascii_case(name);
        if is("application/openmetrics-text") {
            return Ok(Self::OpenMetrics);
        }
        if is("text/plain") {
            return Ok(Self::Prometheus);
        }
        if is("application/vnd.google.protobuf") {
            return Err(IngestError::Malformed {
                op: "parse metrics text",
                reason: format!(
                    "content-type {:?} is protobuf exposition, which is not supported; \
                     send text/plain or application/openmetrics-text",
                    excerpt(content_type.unwrap_or_default(), 100)
                ),
            });
        }
        let last_line = body
            .trim_ascii_end()
            .rsplit(|b| *b == b'\n')
            .next()
            .unwrap_or_default();
        Ok(if last_line.trim_ascii() == b"# EOF" {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        })
    }

    /// How errors name a line: `prometheus text line 3`, `openmetrics line 3`.
    fn line_prefix(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus text",
            Self::OpenMetrics => "openmetrics",
        }
    }
}

/// Parses a whole exposition body; lines without a timestamp get `default_timestamp_ms`.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    default_timestamp_ms: i64,
) -> Result<DecodedMetrics, IngestError> {
    let format = TextFormat::detect(content_type, body)?;
    let mut parser = Parser::new(format, default_timestamp_ms);
    let mut out = DecodedMetrics::default();
    parser.parse_chunk(body, &mut out)?;
    parser.finish(&mut out)?;
    Ok(out)
}

/// The length of the complete lines at the start of `buf` (up to and including its last
/// `\n`): where to cut a buffer of a large import before [`Parser::parse_chunk`].
pub fn complete_lines_len(buf: &[u8]) -> usize {
    memchr::memrchr(b'\n', buf).map_or(0, |i| i + 1)
}

/// A parser fed chunk by chunk, for bodies too large to hold at once. Line numbers and the
/// current metric family carry over from chunk to chunk; metadata is added by
/// [`Parser::finish`].
#[derive(Debug)]
pub struct Parser {
    format: TextFormat,
    default_timestamp_ms: i64,
    /// Lines consumed by earlier chunks.
    lines_done: usize,
    /// The line of `# EOF`, once seen (OpenMetrics).
    eof_line: Option<usize>,
    /// The family of the last `# TYPE` line: its name and type.
    family: Option<(String, MetricType)>,
    metadata: Vec<MetricMetadata>,
    metadata_index: HashMap<String, usize>,
}

impl Parser {
    pub fn new(format: TextFormat, default_timestamp_ms: i64) -> Self {
        Self {
            format,
            default_timestamp_ms,
            lines_done: 0,
            eof_line: None,
            family: None,
            metadata: Vec::new(),
            metadata_index: HashMap::new(),
        }
    }

    /// Parses complete lines (a final line without `\n` counts as complete), appending their
    /// series to `out`.
    pub fn parse_chunk(
        &mut self,
        chunk: &[u8],
        out: &mut DecodedMetrics,
    ) -> Result<(), IngestError> {
        let text = std::str::from_utf8(chunk).map_err(|e| self.utf8_error(chunk, &e))?;
        let mut labels: LabelPairs<'_> = Vec::with_capacity(16);
        let mut exemplar_labels: LabelPairs<'_> = Vec::new();
        let mut line_number = self.lines_done;
        for raw in text.split_terminator('\n') {
            line_number += 1;
            let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
            if line.is_empty() {
                continue;
            }
            if let Some(eof) = self.eof_line {
                let reason =
                    RecordError::Invalid(format!("unexpected line after # EOF (line {eof})"));
                return Err(self.error(line_number, reason));
            }
            let result = if line.starts_with('#') {
                self.comment(line, line_number)
            } else {
                self.sample(line, &mut labels, &mut exemplar_labels, out)
            };
            result.map_err(|reason| self.error(line_number, reason))?;
        }
        self.lines_done = line_number;
        Ok(())
    }

    /// Ends the body: checks OpenMetrics' `# EOF` and adds the metadata to `out`.
    pub fn finish(self, out: &mut DecodedMetrics) -> Result<(), IngestError> {
        if self.format == TextFormat::OpenMetrics && self.eof_line.is_none() {
            let reason = RecordError::Invalid("body does not end with # EOF".into());
            return Err(self.error(self.lines_done.max(1), reason));
        }
        out.metadata.extend(self.metadata);
        Ok(())
    }

    fn error(&self, line_number: usize, reason: RecordError) -> IngestError {
        IngestError::record(
            format!("{} line {line_number}", self.format.line_prefix()),
            reason,
        )
    }

    fn utf8_error(&self, chunk: &[u8], e: &std::str::Utf8Error) -> IngestError {
        let valid = &chunk[..e.valid_up_to()];
        let line = self.lines_done + memchr::memchr_iter(b'\n', valid).count() + 1;
        let line_start = memchr::memrchr(b'\n', valid).map_or(0, |i| i + 1);
        let reason = RecordError::Utf8 {
            valid_up_to: e.valid_up_to() - line_start,
        };
        self.error(line, reason)
    }

    /// A `#` line: HELP, TYPE, UNIT, EOF, or a comment to ignore.
    fn comment(&mut self, line: &str, line_number: usize) -> Result<(), RecordError> {
        let mut cursor = Cursor::new(line);
        cursor.eat(b'#');
        cursor.skip_blanks();
        let keyword = cursor.token();
        let kind = match keyword {
            "HELP" | "TYPE" | "UNIT" => keyword,
            "EOF" if self.format == TextFormat::OpenMetrics => {
                if !cursor.rest().trim().is_empty() {
                    return Err(cursor.error("unexpected text after # EOF"));
                }
                self.eof_line = Some(line_number);
                return Ok(());
            }
            _ => return Ok(()),
        };
        if !cursor.skip_blanks() {
            return Err(cursor.error(format!("expected a metric name after # {kind}")));
        }
        let family = cursor.metric_name()?;
        let had_blank = cursor.skip_blanks();
        if !had_blank && !cursor.at_end() {
            return Err(cursor.error(format!(
                "expected a blank after the metric name, found {}",
                cursor.found()
            )));
        }
        let text = cursor.rest();
        match kind {
            "HELP" => self.metadata_of(family).help = unescape(text).into_owned(),
            "UNIT" => self.metadata_of(family).unit = text.to_string(),
            _ => {
                let Some(metric_type) = metric_type(text) else {
                    return Err(
                        cursor.error(format!("unknown metric type {:?}", excerpt(text, 32)))
                    );
                };
                self.metadata_of(family).metric_type = metric_type;
                self.family = Some((family.to_string(), metric_type));
            }
        }
        Ok(())
    }

    /// The metadata entry of `family`, made on first use.
    fn metadata_of(&mut self, family: &str) -> &mut MetricMetadata {
        let index = match self.metadata_index.get(family) {
            Some(i) => *i,
            None => {
                self.metadata.push(MetricMetadata {
                    metric_family: family.to_string(),
                    ..Default::default()
                });
                self.metadata_index
                    .insert(family.to_string(), self.metadata.len() - 1);
                self.metadata.len() - 1
            }
        };
        &mut self.metadata[index]
    }

    /// The type of the family a sample named `name` belongs to: the last `# TYPE`'s, when
    /// `name` is that family's name plus one of its suffixes; and whether it is a `_created`
    /// sample to drop.
    fn sample_type(&self, name: &str) -> (MetricType, bool) {
        let Some((family, metric_type)) = &self.family else {
            return (MetricType::Unknown, false);
        };
        match name.strip_prefix(family.as_str()) {
            Some("_created") => (
                *metric_type,
                matches!(
                    metric_type,
                    MetricType::Counter | MetricType::Histogram | MetricType::Summary
                ),
            ),
            Some("" | "_total" | "_bucket" | "_count" | "_sum" | "_gcount" | "_gsum" | "_info") => {
                (*metric_type, false)
            }
            _ => (MetricType::Unknown, false),
        }
    }

    /// A sample line, appended to `out`.
    fn sample<'a>(
        &self,
        line: &'a str,
        labels: &mut LabelPairs<'a>,
        exemplar_labels: &mut LabelPairs<'a>,
        out: &mut DecodedMetrics,
    ) -> Result<(), RecordError> {
        let mut cursor = Cursor::new(line);
        if cursor.peek() == Some(b'{') {
            return Err(cursor.error("quoted metric names are not supported"));
        }
        let name = cursor.metric_name()?;
        let (metric_type, is_created) = self.sample_type(name);
        labels.clear();
        labels.push((METRIC_NAME_LABEL, Cow::Borrowed(name)));
        let mut blank = cursor.skip_blanks();
        if cursor.eat(b'{') {
            cursor.labels(labels)?;
            blank = cursor.skip_blanks();
        }
        if !blank {
            return Err(cursor.error(format!(
                "expected a blank before the value, found {}",
                cursor.found()
            )));
        }
        let value_text = cursor.token();
        let Some(value) = parse_value(value_text) else {
            return Err(cursor.error(format!(
                "expected a value, found {:?}",
                excerpt(value_text, 32)
            )));
        };
        cursor.skip_blanks();
        let mut timestamp_ms = self.default_timestamp_ms;
        if !cursor.at_end() && cursor.peek() != Some(b'#') {
            let text = cursor.token();
            timestamp_ms = match self.format {
                TextFormat::Prometheus => parse_timestamp_ms(text),
                TextFormat::OpenMetrics => parse_seconds_as_ms(text),
            }
            .ok_or_else(|| {
                cursor.error(format!(
                    "expected a timestamp, found {:?}",
                    excerpt(text, 32)
                ))
            })?;
            cursor.skip_blanks();
        }
        let exemplar = if cursor.eat(b'#') {
            parse_exemplar(&mut cursor, exemplar_labels, timestamp_ms)?
        } else if !cursor.at_end() {
            return Err(cursor.error(format!("unexpected {} after the sample", cursor.found())));
        } else {
            None
        };
        if is_created {
            return Ok(());
        }
        let series_labels = finish_labels(labels, metric_type)?;
        let sample = Sample {
            timestamp_ms,
            value,
        };
        if let Some(last) = out.series.last_mut()
            && same_labels(&last.labels, series_labels)
        {
            last.samples.push(sample);
            last.exemplars.extend(exemplar);
            return Ok(());
        }
        out.series.push(SeriesSamples {
            labels: Labels::from_pairs(series_labels.drain(..)),
            samples: vec![sample],
            exemplars: exemplar.into_iter().collect(),
        });
        Ok(())
    }
}

/// Checks a line's labels, sorts them, normalises `le`/`quantile` and drops empty values.
fn finish_labels<'l, 'a>(
    labels: &'l mut LabelPairs<'a>,
    metric_type: MetricType,
) -> Result<&'l mut LabelPairs<'a>, RecordError> {
    if labels.len() > SERIES_LABELS_MAX {
        return Err(RecordError::TooManySeriesLabels {
            count: labels.len(),
            limit: SERIES_LABELS_MAX,
        });
    }
    for (name, value) in labels.iter() {
        check_label(name, value)?;
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(RecordError::DuplicateLabelName(w[0].0.to_string()));
    }
    let float_label = match metric_type {
        MetricType::Histogram | MetricType::GaugeHistogram => Some(BUCKET_LABEL),
        MetricType::Summary => Some(QUANTILE_LABEL),
        _ => None,
    };
    if let Some(float_label) = float_label
        && let Ok(i) = labels.binary_search_by(|(n, _)| (*n).cmp(float_label))
        && let Some(normalized) = normalize_float_label(&labels[i].1)
    {
        labels[i].1 = Cow::Owned(normalized);
    }
    labels.retain(|(_, value)| !value.is_empty());
    Ok(labels)
}

/// Whether a series' labels are the line's sorted, non-empty label pairs.
fn same_labels(labels: &Labels, pairs: &LabelPairs<'_>) -> bool {
    labels.len() == pairs.len()
        && labels
            .iter()
            .zip(pairs.iter())
            .all(|((n1, v1), (n2, v2))| n1 == *n2 && v1 == v2.as_ref())
}

/// An exemplar, the cursor after its `#`: `{labels} value [timestamp in seconds]`. `None`
/// when its labels are over [`EXEMPLAR_LABEL_CHARS_MAX`] (dropped).
fn parse_exemplar<'a>(
    cursor: &mut Cursor<'a>,
    labels: &mut LabelPairs<'a>,
    sample_timestamp_ms: i64,
) -> Result<Option<Exemplar>, RecordError> {
    cursor.skip_blanks();
    if !cursor.eat(b'{') {
        return Err(cursor.error(format!(
            "expected an exemplar's labels, found {}",
            cursor.found()
        )));
    }
    labels.clear();
    cursor.labels(labels)?;
    if !cursor.skip_blanks() {
        return Err(cursor.error(format!(
            "expected a blank before the exemplar value, found {}",
            cursor.found()
        )));
    }
    let value_text = cursor.token();
    let Some(value) = parse_value(value_text) else {
        return Err(cursor.error(format!(
            "expected an exemplar value, found {:?}",
            excerpt(value_text, 32)
        )));
    };
    cursor.skip_blanks();
    let mut timestamp_ms = sample_timestamp_ms;
    if !cursor.at_end() {
        let text = cursor.token();
        timestamp_ms = parse_seconds_as_ms(text).ok_or_else(|| {
            cursor.error(format!(
                "expected an exemplar timestamp, found {:?}",
                excerpt(text, 32)
            ))
        })?;
        cursor.skip_blanks();
        if !cursor.at_end() {
            return Err(cursor.error(format!("unexpected {} after the exemplar", cursor.found())));
        }
    }
    let chars: usize = labels
        .iter()
        .map(|(n, v)| n.len() + v.chars().count())
        .sum();
    if chars > EXEMPLAR_LABEL_CHARS_MAX {
        return Ok(None);
    }
    Ok(Some(Exemplar {
        labels: Labels::from_pairs(labels.drain(..)),
        value,
        timestamp_ms,
    }))
}

/// A `# TYPE` word, in either format.
fn metric_type(word: &str) -> Option<MetricType> {
    Some(match word {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "gaugehistogram" => MetricType::GaugeHistogram,
        "summary" => MetricType::Summary,
        "info" => MetricType::Info,
        "stateset" => MetricType::StateSet,
        "untyped" | "unknown" => MetricType::Unknown,
        _ => return None,
    })
}
