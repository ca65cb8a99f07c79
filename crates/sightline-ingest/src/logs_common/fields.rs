//! Building a record's parts within their limits: structured metadata, stream labels, line.
//!
//! [`Metadata`] is the only way decoders add metadata, so every format gets the same names
//! (sanitised, ids canonical), the same dedup rule (a later name replaces an earlier one)
//! and the same limits. [`build_labels`] validates label names and sizes before a
//! [`Labels`] set is made.

use std::cell::RefCell;

use sightline_model::Labels;
use sightline_model::labels::{is_valid_label_name, sanitize_label_name};
use sightline_model::log::MetadataPairs;
use sightline_model::log::{LOG_LINE_BYTES_MAX, LOG_METADATA_PAIRS_MAX, LOG_STREAM_LABELS_MAX};

use super::{LABEL_NAME_BYTES_MAX, LABEL_VALUE_BYTES_MAX};
use crate::error::{RecordError, excerpt};

/// The metadata names of ids the debugging view looks up, whatever a logger called them.
pub const METADATA_TRACE_ID: &str = "trace_id";
pub const METADATA_SPAN_ID: &str = "span_id";
pub const METADATA_REQUEST_ID: &str = "request_id";

/// Structured metadata of one record, in the order fields arrived, each name once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    pairs: MetadataPairs,
    /// A bit per name present (see [`name_bit`]): most names are new, and this tells so
    /// without comparing them with every name so far.
    name_bits: u64,
    /// Fields given to [`Self::push_field`] so far: the position of the next one.
    fields: usize,
}

/// The bit of a name in [`Metadata::name_bits`]: from its length and first and last bytes,
/// as `ip_address`, `request_id` and `session_id` share a length.
fn name_bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    let mix =
        b.len() ^ (usize::from(first.unwrap_or(0)) * 7) ^ (usize::from(last.unwrap_or(0)) * 13);
    1 << (mix % 64)
}

/// A raw field name and the metadata name it becomes.
struct ResolvedName {
    raw: String,
    /// The canonical id name, when it is one.
    id: Option<&'static str>,
    /// The name to store otherwise: the raw one, or sanitised.
    name: String,
}

impl ResolvedName {
    fn new(raw: &str) -> Self {
        let id = canonical_id_name(raw);
        let name = match id {
            Some(_) => String::new(),
            None if is_valid_label_name(raw) => raw.to_string(),
            None => sanitize_label_name(raw),
        };
        Self {
            raw: raw.to_string(),
            id,
            name,
        }
    }
}

/// Positions of [`RECENT_NAMES`] kept.
const RECENT_NAMES_MAX: usize = 256;

thread_local! {
    /// The last record's field names by position, resolved: a logger writes the same fields
    /// in the same order line after line, so resolving a name is one comparison.
    static RECENT_NAMES: RefCell<Vec<ResolvedName>> = const { RefCell::new(Vec::new()) };
}

impl Metadata {
    /// Room for `n` fields of about `bytes` bytes in all.
    pub fn with_capacity(n: usize, bytes: usize) -> Self {
        Self {
            pairs: MetadataPairs::with_capacity(n.min(LOG_METADATA_PAIRS_MAX), bytes),
            name_bits: 0,
            fields: 0,
        }
    }

    /// Adds a field by its original name (any text, a dotted path for nested fields): the
    /// name is made canonical ([`canonical_id_name`]) or sanitised, and trace and span ids
    /// are lowercased.
    pub fn push_field(&mut self, raw_name: &str, value: &str) -> Result<(), RecordError> {
        let at = self.fields;
        self.fields += 1;
        RECENT_NAMES.with_borrow_mut(|recent| {
            if recent.get(at).is_none_or(|n| n.raw != raw_name) {
                let resolved = ResolvedName::new(raw_name);
                match at.cmp(&recent.len()) {
                    std::cmp::Ordering::Less => recent[at] = resolved,
                    std::cmp::Ordering::Equal if at < RECENT_NAMES_MAX => recent.push(resolved),
                    _ => return self.push_resolved(&resolved, value),
                }
            }
            self.push_resolved(&recent[at], value)
        })
    }

    fn push_resolved(&mut self, n: &ResolvedName, value: &str) -> Result<(), RecordError> {
        match n.id {
            Some(id) => self.push_id(id, value),
            None => self.push_named(&n.name, value),
        }
    }

    /// Adds an id under its canonical name; trace and span ids are lowercased.
    pub fn push_id(&mut self, name: &'static str, value: &str) -> Result<(), RecordError> {
        let lowercase = name == METADATA_TRACE_ID || name == METADATA_SPAN_ID;
        if lowercase && value.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.push_named(name, &value.to_ascii_lowercase());
        }
        self.push_named(name, value)
    }

    /// Adds a pair whose name is already a valid label name. An empty value removes the
    /// name (an absent field and an empty one mean the same in LogQL).
    pub fn push_named(&mut self, name: &str, value: &str) -> Result<(), RecordError> {
        if name.len() > LABEL_NAME_BYTES_MAX {
            return Err(RecordError::NameTooLong {
                name: excerpt(name, 64),
                bytes: name.len(),
                limit_bytes: LABEL_NAME_BYTES_MAX,
            });
        }
        if value.len() > LOG_LINE_BYTES_MAX {
            return Err(RecordError::MetadataValueTooLong {
                name: name.to_string(),
                bytes: value.len(),
                limit_bytes: LOG_LINE_BYTES_MAX,
            });
        }
        let bit = name_bit(name);
        let seen = self.name_bits & bit != 0;
        if seen && self.pairs.position(name).is_some() {
            // A later field of the same name replaces the earlier one, or removes it.
            if value.is_empty() {
                self.pairs.remove(name);
            } else {
                self.pairs.set(name, value);
            }
            return Ok(());
        }
        if value.is_empty() {
            return Ok(());
        }
        if self.pairs.len() >= LOG_METADATA_PAIRS_MAX {
            return Err(RecordError::TooManyMetadataPairs);
        }
        self.name_bits |= bit;
        self.pairs.push(name, value);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn into_pairs(self) -> MetadataPairs {
        self.pairs
    }
}

/// The canonical metadata name of a trace, span or request id field, however spelled:
/// `traceId`, `trace.id`, `trace-id`, `TraceID` are all `trace_id`; `None` for other names.
pub fn canonical_id_name(raw_name: &str) -> Option<&'static str> {
    // Longest accepted spelling: "request_id" plus a separator or two.
    if raw_name.len() < 6 || raw_name.len() > 12 {
        return None;
    }
    if !matches!(
        raw_name.as_bytes().first(),
        Some(b't' | b'T' | b's' | b'S' | b'r' | b'R')
    ) {
        return None;
    }
    let mut folded = [0u8; 12];
    let mut n = 0;
    for b in raw_name.bytes() {
        if b.is_ascii_alphanumeric() {
            folded[n] = b.to_ascii_lowercase();
            n += 1;
        } else if !matches!(b, b'_' | b'.' | b'-') {
            return None;
        }
    }
    match &folded[..n] {
        b"traceid" => Some(METADATA_TRACE_ID),
        b"spanid" => Some(METADATA_SPAN_ID),
        b"requestid" => Some(METADATA_REQUEST_ID),
        _ => None,
    }
}

/// A label set from name/value pairs after checking names, sizes and count. Empty values are
/// dropped (as [`Labels::from_pairs`] does), and a later duplicate name wins.
pub fn build_labels<I, K, V>(pairs: I) -> Result<Labels, RecordError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String> + AsRef<str>,
    V: Into<String> + AsRef<str>,
{
    let pairs: Vec<(K, V)> = pairs.into_iter().collect();
    for (name, value) in &pairs {
        check_label(name.as_ref(), value.as_ref())?;
    }
    let labels = Labels::from_pairs(pairs);
    if labels.len() > LOG_STREAM_LABELS_MAX {
        return Err(RecordError::TooManyLabels);
    }
    Ok(labels)
}

/// Checks one stream label: a valid name within [`LABEL_NAME_BYTES_MAX`] and a value within
/// [`LABEL_VALUE_BYTES_MAX`].
pub fn check_label(name: &str, value: &str) -> Result<(), RecordError> {
    if name.len() > LABEL_NAME_BYTES_MAX {
        return Err(RecordError::NameTooLong {
            name: excerpt(name, 64),
            bytes: name.len(),
            limit_bytes: LABEL_NAME_BYTES_MAX,
        });
    }
    if !is_valid_label_name(name) {
        return Err(RecordError::BadLabelName(name.to_string()));
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

/// Checks a line against [`LOG_LINE_BYTES_MAX`].
pub fn check_line(line: &str) -> Result<(), RecordError> {
    if line.len() > LOG_LINE_BYTES_MAX {
        return Err(RecordError::LineTooLong {
            bytes: line.len(),
            limit_bytes: LOG_LINE_BYTES_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_right_whatever_the_last_record_had_at_their_place() {
        let records: [&[(&str, &str)]; 4] = [
            &[("traceId", "AB"), ("user.name", "u"), ("x", "1")],
            &[("user.name", "v"), ("traceId", "CD")],
            &[("traceId", "EF"), ("user.name", "w"), ("x", "2")],
            &[("x", "3"), ("request-id", "R"), ("traceId", "01")],
        ];
        let got: Vec<MetadataPairs> = records
            .iter()
            .map(|fields| {
                let mut m = Metadata::default();
                for (k, v) in *fields {
                    m.push_field(k, v).expect("ok");
                }
                m.into_pairs()
            })
            .collect();
        assert_eq!(got[0], [("trace_id", "ab"), ("user_name", "u"), ("x", "1")]);
        assert_eq!(got[1], [("user_name", "v"), ("trace_id", "cd")]);
        assert_eq!(got[2], [("trace_id", "ef"), ("user_name", "w"), ("x", "2")]);
        assert_eq!(
            got[3],
            [("x", "3"), ("request_id", "R"), ("trace_id", "01")]
        );
    }

    #[test]
    fn metadata_sanitises_dedups_and_canonicalises_ids() {
        let mut m = Metadata::default();
        m.push_field("http.method", "GET").expect("ok");
        m.push_field("traceId", "ABCDEF").expect("ok");
        m.push_field("user_id", "1").expect("ok");
        m.push_field("http_method", "POST").expect("ok");
        m.push_field("request.id", "Req-1").expect("ok");
        m.push_field("empty", "").expect("ok");
        m.push_field("user_id", "").expect("ok");
        assert_eq!(
            m.into_pairs(),
            [
                ("http_method", "POST"),
                ("trace_id", "abcdef"),
                ("request_id", "Req-1"),
            ]
        );
    }

    #[test]
    fn canonical_id_names() {
        let check =
            |raw: &str, want: Option<&str>| assert_eq!(canonical_id_name(raw), want, "{raw:?}");
        check("trace_id", Some("trace_id"));
        check("traceID", Some("trace_id"));
        check("trace.id", Some("trace_id"));
        check("span-id", Some("span_id"));
        check("spanId", Some("span_id"));
        check("requestId", Some("request_id"));
        check("x_request_id", None);
        check("trace", None);
        check("trace id", None);
        check("a_very_long_field_name", None);
    }

    #[test]
    fn metadata_limits() {
        let mut m = Metadata::default();
        for i in 0..LOG_METADATA_PAIRS_MAX {
            m.push_field(&format!("f{i}"), "v").expect("within limit");
        }
        m.push_field("f0", "replaced")
            .expect("replacing is not adding");
        assert_eq!(
            m.push_field("one_more", "v"),
            Err(RecordError::TooManyMetadataPairs)
        );
        let long = "x".repeat(LOG_LINE_BYTES_MAX + 1);
        let e = Metadata::default()
            .push_field("big", &long)
            .expect_err("too long");
        assert_eq!(e.kind(), crate::ErrorKind::TooLarge);
    }

    #[test]
    fn labels_are_checked() {
        let labels =
            build_labels([("service", "api"), ("level", "info"), ("empty", "")]).expect("valid");
        assert_eq!(labels.to_string(), r#"{level="info", service="api"}"#);
        assert_eq!(
            build_labels([("1a", "x")]),
            Err(RecordError::BadLabelName("1a".into()))
        );
        let long = "v".repeat(LABEL_VALUE_BYTES_MAX + 1);
        assert!(matches!(
            build_labels([("a", long.as_str())]),
            Err(RecordError::LabelValueTooLong { .. })
        ));
        let many: Vec<(String, String)> = (0..=LOG_STREAM_LABELS_MAX)
            .map(|i| (format!("l{i}"), "v".into()))
            .collect();
        assert_eq!(build_labels(many), Err(RecordError::TooManyLabels));
        assert_eq!(check_line(&"x".repeat(LOG_LINE_BYTES_MAX)), Ok(()));
    }
}
