//! What the metrics decoders ([`crate::remote_write`], [`crate::prom_text`],
//! [`crate::otlp::metrics`]) share: their output, their limits, and the checks that make a
//! label set a valid series.
//!
//! Every series a decoder returns keeps these invariants, so the store re-checks none:
//! - it has a `__name__` matching `[a-zA-Z_:][a-zA-Z0-9_:]*`;
//! - every label name matches `[a-zA-Z_][a-zA-Z0-9_]*`, at most [`LABEL_NAME_BYTES_MAX`]
//!   bytes, each name once; values are non-empty and at most [`LABEL_VALUE_BYTES_MAX`] bytes;
//! - it has at most [`SERIES_LABELS_MAX`] labels;
//! - every exemplar has valid label names whose names and values together are at most
//!   [`EXEMPLAR_LABEL_CHARS_MAX`] characters (OpenMetrics' limit); a longer exemplar is
//!   dropped, as Prometheus drops it, rather than failing its sample.
//!
//! `le` and `quantile` values that the decoders produce or normalise are written by
//! [`format_openmetrics_float`], as Prometheus 3 writes them (`1.0`, `0.25`, `1e+06`,
//! `+Inf`), so `histogram_quantile` finds the same buckets whichever way a histogram came in.

use sightline_model::labels::is_valid_label_name;
use sightline_model::{
    Labels, METRIC_NAME_LABEL, MetricBatch, MetricMetadata, SeriesSamples, TenantId,
};

use crate::error::{RecordError, excerpt};

/// Most labels on one series, `__name__` included.
pub const SERIES_LABELS_MAX: usize = 128;

/// Longest label name, in bytes.
pub const LABEL_NAME_BYTES_MAX: usize = 1024;

/// Longest label value, in bytes.
pub const LABEL_VALUE_BYTES_MAX: usize = 16 * 1024;

/// Most characters in an exemplar's label names and values together (OpenMetrics 1.0).
pub const EXEMPLAR_LABEL_CHARS_MAX: usize = 128;

/// The bucket label of classic histograms.
pub const BUCKET_LABEL: &str = "le";

/// The quantile label of summaries.
pub const QUANTILE_LABEL: &str = "quantile";

/// Series and metadata a metrics decoder produced; the caller adds the tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodedMetrics {
    pub series: Vec<SeriesSamples>,
    pub metadata: Vec<MetricMetadata>,
}

impl DecodedMetrics {
    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// Number of exemplars over all series.
    pub fn exemplar_count(&self) -> usize {
        self.series.iter().map(|s| s.exemplars.len()).sum()
    }

    /// The batch of `tenant`.
    pub fn into_batch(self, tenant: TenantId) -> MetricBatch {
        MetricBatch {
            tenant,
            series: self.series,
            metadata: self.metadata,
        }
    }
}

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// A float as OpenMetrics and Prometheus 3 write `le` and `quantile` values: Go's shortest
/// `%g` (scientific below 1e-4 and from 1e6 on), with `.0` added to a whole number, and
/// `NaN`, `+Inf`, `-Inf`.
pub fn format_openmetrics_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0.0".into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `-1.2345e-7`.
    let sci = format!("{v:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(24);
    out.push_str(sign);
    if !(-4..6).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        out.push_str(&magnitude.to_string());
        return out;
    }
    if exponent < 0 {
        out.push_str("0.");
        for _ in 0..(-exponent - 1) {
            out.push('0');
        }
        out.push_str(&digits);
        return out;
    }
    let point = exponent as usize + 1;
    if digits.len() > point {
        out.push_str(&digits[..point]);
        out.push('.');
        out.push_str(&digits[point..]);
    } else {
        out.push_str(&digits);
        for _ in digits.len()..point {
            out.push('0');
        }
        out.push_str(".0");
    }
    out
}

/// The normalised form of an `le` or `quantile` value: [`format_openmetrics_float`] of it
/// when it is a number, else `None` (keep it as written).
pub fn normalize_float_label(value: &str) -> Option<String> {
    let parsed = match value {
        "+Inf" | "Inf" | "+inf" | "inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        _ => value.parse::<f64>().ok()?,
    };
    let formatted = format_openmetrics_float(parsed);
    (formatted != value).then_some(formatted)
}

/// Checks one label: a valid name within its length limit, a value within its limit.
pub(crate) fn check_label(name: &str, value: &str) -> Result<(), RecordError> {
    if name.len() > LABEL_NAME_BYTES_MAX {
        return Err(RecordError::NameTooLong {
            name: excerpt(name, 64),
            bytes: name.len(),
            limit_bytes: LABEL_NAME_BYTES_MAX,
        });
    }
    if !is_valid_label_name(name) {
        return Err(RecordError::BadLabelName(excerpt(name, 64)));
    }
    if value.len() > LABEL_VALUE_BYTES_MAX {
        return Err(RecordError::LabelValueTooLong {
            name: name.to_string(),
            bytes: value.len(),
            limit_bytes: LABEL_VALUE_BYTES_MAX,
        });
    }
    Ok(())
}

/// A series' label set from pairs in any order, checked against every invariant of the
/// module doc: label count, names, lengths, no name twice, a valid `__name__`. Pairs with an
/// empty value are dropped after the checks, as Prometheus drops them.
///
/// On success the pairs are taken (left empty); on error they are left, sorted by name, for
/// the caller to say which series was wrong.
pub(crate) fn series_labels(pairs: &mut Vec<(String, String)>) -> Result<Labels, RecordError> {
    if pairs.len() > SERIES_LABELS_MAX {
        return Err(RecordError::TooManySeriesLabels {
            count: pairs.len(),
            limit: SERIES_LABELS_MAX,
        });
    }
    for (name, value) in pairs.iter() {
        check_label(name, value)?;
    }
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(RecordError::DuplicateLabelName(w[0].0.clone()));
    }
    match pairs.binary_search_by(|(n, _)| n.as_str().cmp(METRIC_NAME_LABEL)) {
        Ok(i) if !pairs[i].1.is_empty() => {
            if !is_valid_metric_name(&pairs[i].1) {
                return Err(RecordError::BadMetricName(excerpt(&pairs[i].1, 128)));
            }
        }
        _ => return Err(RecordError::NoMetricName),
    }
    // Sorted and free of duplicates already; drop empty values as `from_pairs` would,
    // without its quadratic duplicate search.
    let mut pairs = std::mem::take(pairs);
    pairs.retain(|(_, v)| !v.is_empty());
    Ok(Labels::from_sorted_pairs(pairs))
}

/// An exemplar's label set, or `None` when its names and values are longer than
/// [`EXEMPLAR_LABEL_CHARS_MAX`] together (the caller drops it). Names must be valid.
pub(crate) fn exemplar_labels(pairs: Vec<(String, String)>) -> Result<Option<Labels>, RecordError> {
    let mut chars = 0;
    for (name, value) in &pairs {
        if !is_valid_label_name(name) {
            return Err(RecordError::BadLabelName(excerpt(name, 64)));
        }
        chars += name.chars().count() + value.chars().count();
    }
    if chars > EXEMPLAR_LABEL_CHARS_MAX {
        return Ok(None);
    }
    Ok(Some(Labels::from_pairs(pairs)))
}

/// Label pairs in the `{a="b", c="d"}` notation, cut to a readable length, to say in an
/// error which series was wrong before its labels are known to be valid.
pub(crate) fn pairs_text<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut text = String::from("{");
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&excerpt(name.as_ref(), 64));
        text.push_str("=\"");
        for c in excerpt(value.as_ref(), 64).chars() {
            match c {
                '"' => text.push_str("\\\""),
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                c => text.push(c),
            }
        }
        text.push('"');
        if text.len() > 300 {
            text.push_str(", ...");
            break;
        }
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_floats_as_prometheus_does() {
        let check = |v: f64, want: &str| assert_eq!(format_openmetrics_float(v), want, "{v}");
        check(0.0, "0.0");
        check(-0.0, "0.0");
        check(1.0, "1.0");
        check(-1.0, "-1.0");
        check(0.5, "0.5");
        check(0.005, "0.005");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(2.5e-5, "2.5e-05");
        check(10.0, "10.0");
        check(250_000.0, "250000.0");
        check(999_999.5, "999999.5");
        check(1e6, "1e+06");
        check(1_234_567.0, "1.234567e+06");
        check(1e100, "1e+100");
        check(-1e-128, "-1e-128");
        check(123.456, "123.456");
        check(0.1 + 0.2, "0.30000000000000004");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(f64::NAN, "NaN");
    }

    #[test]
    fn normalizes_float_labels() {
        assert_eq!(normalize_float_label("1").as_deref(), Some("1.0"));
        assert_eq!(normalize_float_label("0.25"), None);
        assert_eq!(normalize_float_label("+Inf"), None);
        assert_eq!(normalize_float_label("Inf").as_deref(), Some("+Inf"));
        assert_eq!(normalize_float_label("1e6"), Some("1e+06".into()));
        assert_eq!(normalize_float_label("abc"), None);
    }

    #[test]
    fn metric_names() {
        for good in ["a", "_a", ":a", "a:b_c9", "http_requests_total"] {
            assert!(is_valid_metric_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn series_label_checks() {
        let check = |list: &[(&str, &str)], want: Result<&str, RecordError>| {
            let got = series_labels(&mut pairs(list)).map(|l| l.to_string());
            assert_eq!(got, want.map(str::to_string), "{list:?}");
        };
        check(
            &[("job", "a"), ("__name__", "up"), ("empty", "")],
            Ok(r#"{__name__="up", job="a"}"#),
        );
        check(&[("job", "a")], Err(RecordError::NoMetricName));
        check(&[("__name__", "")], Err(RecordError::NoMetricName));
        check(
            &[("__name__", "1up")],
            Err(RecordError::BadMetricName("1up".into())),
        );
        check(
            &[("__name__", "up"), ("1a", "x")],
            Err(RecordError::BadLabelName("1a".into())),
        );
        check(
            &[("__name__", "up"), ("a", "x"), ("a", "y")],
            Err(RecordError::DuplicateLabelName("a".into())),
        );
        let mut many: Vec<(String, String)> = (0..=SERIES_LABELS_MAX)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        assert_eq!(
            series_labels(&mut many),
            Err(RecordError::TooManySeriesLabels {
                count: SERIES_LABELS_MAX + 1,
                limit: SERIES_LABELS_MAX
            })
        );
        let long = "v".repeat(LABEL_VALUE_BYTES_MAX + 1);
        assert!(matches!(
            series_labels(&mut pairs(&[("__name__", "up"), ("a", &long)])),
            Err(RecordError::LabelValueTooLong { .. })
        ));
    }

    #[test]
    fn exemplar_label_limit() {
        let fits = pairs(&[("trace_id", &"a".repeat(EXEMPLAR_LABEL_CHARS_MAX - 8))]);
        assert!(matches!(exemplar_labels(fits), Ok(Some(_))));
        let over = pairs(&[("trace_id", &"a".repeat(EXEMPLAR_LABEL_CHARS_MAX - 7))]);
        assert_eq!(exemplar_labels(over), Ok(None));
        assert_eq!(
            exemplar_labels(pairs(&[("a-b", "x")])),
            Err(RecordError::BadLabelName("a-b".into()))
        );
    }

    #[test]
    fn pairs_text_escapes_and_cuts() {
        assert_eq!(
            pairs_text(&[("__name__", "x"), ("a", "q\"\\\n")]),
            r#"{__name__="x", a="q\"\\\n"}"#
        );
        let many: Vec<(String, String)> = (0..50)
            .map(|i| (format!("label{i}"), "value".to_string()))
            .collect();
        let text = pairs_text(&many);
        assert!(text.len() < 400 && text.ends_with(", ...}"), "{text}");
    }
}
