//! Spans as the store keeps them, after ingest has normalised them.
//!
//! The model is OpenTelemetry's: a span has a 16-byte trace id and an 8-byte span id, an
//! optional parent, a kind, a start and an end in ns since the Unix epoch, a status, the
//! resource and instrumentation scope that produced it, attributes of every OTLP type, events
//! (exceptions recorded with `record_exception` are events named `exception` whose
//! `exception.type`, `exception.message` and `exception.stacktrace` attributes are kept as
//! sent) and links to other spans. Zipkin spans are mapped onto the same model by ingest.
//!
//! Invariants ingest keeps, so the store re-checks none of them:
//! - `trace_id` is not all zero, `span_id` is not all zero;
//! - `parent_span_id` is `None` for a root, never `Some([0; 8])`;
//! - `start_ns <= end_ns`;
//! - `service` is the resource's `service.name`, or [`SERVICE_UNKNOWN`] without one, and the
//!   same attribute is also in `resource`.
//!
//! Everything derives `Serialize`/`Deserialize` with no serde attribute that a
//! non-self-describing format (postcard, the WAL encoding) cannot read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TenantId;

/// The service of a span whose resource has no `service.name`, as OpenTelemetry's SDKs
/// default it.
pub const SERVICE_UNKNOWN: &str = "unknown_service";

/// A trace id: 16 bytes, not all zero.
pub type TraceId = [u8; 16];

/// A span id: 8 bytes, not all zero.
pub type SpanId = [u8; 8];

/// One span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C `tracestate`, as sent; usually empty.
    pub trace_state: String,
    /// The operation name.
    pub name: String,
    pub kind: SpanKind,
    /// Nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// Nanoseconds since the Unix epoch; never before `start_ns`.
    pub end_ns: i64,
    pub status: SpanStatus,
    /// The resource's `service.name`, [`SERVICE_UNKNOWN`] without one.
    pub service: String,
    /// Every resource attribute, `service.name` included, in the order sent.
    pub resource: Vec<(String, AttrValue)>,
    /// The instrumentation scope's name and version, empty when not sent.
    pub scope_name: String,
    pub scope_version: String,
    /// The span's attributes, in the order sent.
    pub attributes: Vec<(String, AttrValue)>,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
}

impl Span {
    /// `end_ns - start_ns`, saturating (ingest keeps it non-negative).
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Whether the span's status is [`StatusCode::Error`].
    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }

    /// Whether the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex_lower(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        hex_lower(&self.span_id)
    }

    /// The parent span id as 16 lowercase hex digits, `None` for a root.
    pub fn parent_span_id_hex(&self) -> Option<String> {
        self.parent_span_id.as_ref().map(|id| hex_lower(id))
    }

    /// The value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&AttrValue> {
        find_attribute(&self.attributes, key)
    }

    /// The value of resource attribute `key`.
    pub fn resource_attribute(&self, key: &str) -> Option<&AttrValue> {
        find_attribute(&self.resource, key)
    }
}

/// The value of `key` among `attributes`, the first one if it is there twice.
pub fn find_attribute<'a>(
    attributes: &'a [(String, AttrValue)],
    key: &str,
) -> Option<&'a AttrValue> {
    attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// What a span represents, as OpenTelemetry's `SpanKind`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The kind of OTLP's enum number; an unknown number is `Unspecified`.
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Lowercase name, as Jaeger's `span.kind` tag spells it (`server`, `client`, …);
    /// `unspecified` for none.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// A span's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanStatus {
    pub code: StatusCode,
    /// A description, usually only with [`StatusCode::Error`]; empty when not sent.
    pub message: String,
}

/// OpenTelemetry's status code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// The code of OTLP's enum number; an unknown number is `Unset`.
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    /// `unset`, `ok` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// Something that happened at a moment of a span: an exception, a log, a Zipkin annotation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    pub name: String,
    pub attributes: Vec<(String, AttrValue)>,
}

/// A link to a span of this or another trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<(String, AttrValue)>,
}

/// An attribute value: every type OTLP's `AnyValue` can hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    /// An `AnyValue` with no value set (legal in OTLP, e.g. inside an array).
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    KvList(Vec<(String, AttrValue)>),
}

impl AttrValue {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    /// Strings as they are; numbers and booleans as JSON writes them (NaN and infinities as
    /// `NaN`, `inf`, `-inf`); bytes as lowercase hex; arrays and kvlists in a JSON-like
    /// notation with strings quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => Ok(()),
            Self::String(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Double(n) => write!(f, "{n}"),
            Self::Bytes(b) => f.write_str(&hex_lower(b)),
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_nested(f, item)?;
                }
                f.write_str("]")
            }
            Self::KvList(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k:?}:")?;
                    write_nested(f, v)?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_nested(f: &mut fmt::Formatter<'_>, value: &AttrValue) -> fmt::Result {
    match value {
        AttrValue::String(s) => write!(f, "{s:?}"),
        AttrValue::Empty => f.write_str("null"),
        other => write!(f, "{other}"),
    }
}

/// Spans of one tenant, as one request delivered them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanBatch {
    pub tenant: TenantId,
    pub spans: Vec<Span>,
}

/// A trace search, as Jaeger's `/api/traces` asks it: traces with at least one span that
/// matches every condition given.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceQuery {
    pub tenant: TenantId,
    /// The span's service.
    pub service: Option<String>,
    /// The span's name.
    pub operation: Option<String>,
    /// `key=value` pairs a span must all carry, among its attributes or its resource's,
    /// compared as text ([`AttrValue`]'s `Display`). Jaeger's synthetic tags are understood
    /// too: `error=true`, `span.kind=server`, `otel.status_code=ERROR`.
    pub tags: Vec<(String, String)>,
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// The span's status.
    pub status: Option<StatusCode>,
    /// The span starts in `[start_ns, end_ns)`.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Most traces returned: the ones with the latest matching spans.
    pub limit: usize,
}

impl TraceQuery {
    /// A query of every span of `tenant` in `[start_ns, end_ns)`, at most `limit` traces.
    pub fn new(tenant: TenantId, start_ns: i64, end_ns: i64, limit: usize) -> Self {
        Self {
            tenant,
            service: None,
            operation: None,
            tags: Vec::new(),
            min_duration_ns: None,
            max_duration_ns: None,
            status: None,
            start_ns,
            end_ns,
            limit,
        }
    }

    /// Whether `span` matches every condition.
    pub fn matches(&self, span: &Span) -> bool {
        self.matches_summary(
            &span.service,
            &span.name,
            span.start_ns,
            span.duration_ns(),
            span.status.code,
        ) && self.tags.iter().all(|(k, v)| span_has_tag(span, k, v))
    }

    /// Whether a span with these fields may match: every condition but the tags.
    pub fn matches_summary(
        &self,
        service: &str,
        name: &str,
        start_ns: i64,
        duration_ns: i64,
        status: StatusCode,
    ) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.operation.as_deref().is_none_or(|o| o == name)
            && start_ns >= self.start_ns
            && start_ns < self.end_ns
            && self.min_duration_ns.is_none_or(|d| duration_ns >= d)
            && self.max_duration_ns.is_none_or(|d| duration_ns <= d)
            && self.status.is_none_or(|s| s == status)
    }
}

/// Whether `span` carries tag `key` with text `value`: an attribute, a resource attribute,
/// or one of Jaeger's synthetic tags (`error`, `span.kind`, `otel.status_code`,
/// `otel.status_description`).
pub fn span_has_tag(span: &Span, key: &str, value: &str) -> bool {
    let attr = |attrs: &[(String, AttrValue)]| {
        attrs
            .iter()
            .any(|(k, v)| k == key && attr_text_eq(v, value))
    };
    if attr(&span.attributes) || attr(&span.resource) {
        return true;
    }
    match key {
        "error" => (value == "true") == span.is_error(),
        "span.kind" => span.kind.as_str() == value,
        "otel.status_code" => span.status.code.as_str().eq_ignore_ascii_case(value),
        "otel.status_description" => span.status.message == value,
        _ => false,
    }
}

/// Whether `v` reads as `text`, without allocating for the common string case.
fn attr_text_eq(v: &AttrValue, text: &str) -> bool {
    match v {
        AttrValue::String(s) => s == text,
        other => other.to_string() == text,
    }
}

/// `bytes` as lowercase hex.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Parses 1 to 32 hex digits (either case) as a trace id, left-padded with zeros as Jaeger
/// and Zipkin read 64-bit ids; `None` when not hex, too long, or all zero.
pub fn parse_trace_id_hex(text: &str) -> Option<TraceId> {
    parse_id_hex::<16>(text)
}

/// Parses 1 to 16 hex digits (either case) as a span id, left-padded with zeros; `None` when
/// not hex, too long, or all zero.
pub fn parse_span_id_hex(text: &str) -> Option<SpanId> {
    parse_id_hex::<8>(text)
}

fn parse_id_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.is_empty() || text.len() > N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    // Walk from the last digit, filling bytes from the end.
    for (i, c) in text.bytes().rev().enumerate() {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        out[N - 1 - i / 2] |= if i % 2 == 0 { v } else { v << 4 };
    }
    out.iter().any(|b| *b != 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> Span {
        Span {
            trace_id: [0xab; 16],
            span_id: [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
            parent_span_id: None,
            trace_state: String::new(),
            name: "handle_order".into(),
            kind: SpanKind::Server,
            start_ns: 1_000,
            end_ns: 4_500,
            status: SpanStatus::default(),
            service: "orders".into(),
            resource: vec![("service.name".into(), AttrValue::String("orders".into()))],
            scope_name: String::new(),
            scope_version: String::new(),
            attributes: vec![("http.status_code".into(), AttrValue::Int(200))],
            events: vec![],
            links: vec![],
        }
    }

    #[test]
    fn helpers() {
        let mut s = span();
        assert_eq!(s.duration_ns(), 3_500);
        assert!(!s.is_error());
        assert!(s.is_root());
        assert_eq!(s.trace_id_hex(), "ab".repeat(16));
        assert_eq!(s.span_id_hex(), "0102030405060708");
        assert_eq!(s.parent_span_id_hex(), None);
        assert_eq!(s.attribute("http.status_code"), Some(&AttrValue::Int(200)));
        assert_eq!(
            s.resource_attribute("service.name")
                .and_then(AttrValue::as_str),
            Some("orders")
        );
        s.status.code = StatusCode::Error;
        s.parent_span_id = Some([0xff; 8]);
        assert!(s.is_error());
        assert_eq!(s.parent_span_id_hex().as_deref(), Some("ffffffffffffffff"));
    }

    #[test]
    fn ids_parse() {
        let check = |text: &str, want: Option<&str>| {
            assert_eq!(
                parse_trace_id_hex(text).map(|id| hex_lower(&id)).as_deref(),
                want,
                "{text:?}"
            );
        };
        check(
            "5B8EFFF798038103D269B633813FC60C",
            Some("5b8efff798038103d269b633813fc60c"),
        );
        check("463ac35c9f6413ad", Some("0000000000000000463ac35c9f6413ad"));
        check("abc", Some("00000000000000000000000000000abc"));
        check("", None);
        check("0000", None);
        check("xyz", None);
        check(&"1".repeat(33), None);
        assert_eq!(
            parse_span_id_hex("a2fb4a1d1a96d312").map(|i| i[0]),
            Some(0xa2)
        );
        assert_eq!(parse_span_id_hex(&"1".repeat(17)), None);
    }

    #[test]
    fn enums_from_otlp_numbers() {
        assert_eq!(SpanKind::from_otlp(2), SpanKind::Server);
        assert_eq!(SpanKind::from_otlp(99), SpanKind::Unspecified);
        assert_eq!(StatusCode::from_otlp(2), StatusCode::Error);
        assert_eq!(StatusCode::from_otlp(-1), StatusCode::Unset);
        assert_eq!(SpanKind::Consumer.as_str(), "consumer");
    }

    #[test]
    fn values_display() {
        let v = AttrValue::KvList(vec![
            (
                "a".into(),
                AttrValue::Array(vec![AttrValue::String("x".into()), AttrValue::Int(1)]),
            ),
            ("b".into(), AttrValue::Bytes(vec![0xde, 0xad])),
            ("c".into(), AttrValue::Empty),
        ]);
        assert_eq!(v.to_string(), r#"{"a":["x",1],"b":dead,"c":null}"#);
        assert_eq!(AttrValue::String("plain".into()).to_string(), "plain");
        assert_eq!(AttrValue::Double(1.5).to_string(), "1.5");
    }
}
