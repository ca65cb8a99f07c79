//! Field visitors: turn `tracing` fields into JSON fragments without intermediate values.
//!
//! Every value is serialised straight into a reused byte buffer with `serde_json`, so numbers
//! stay numbers, booleans stay booleans, and `Debug`/`Display` values are escaped while they
//! are formatted (`collect_str`), with no `String` built on the way.

use std::error::Error;
use std::fmt;

use serde::Serializer as _;
use tracing::field::{Field, Visit};

/// The request-context keys copied from the span stack onto every log line.
pub const CONTEXT_FIELDS: [&str; 4] = ["request_id", "user_id", "trace_id", "span_id"];

/// Keys the layer writes itself; an event field with one of these names is written as
/// `fields.<name>` so that no key is ever duplicated.
const RESERVED: [&str; 8] = [
    "timestamp",
    "level",
    "service",
    "message",
    "module",
    "function",
    "line",
    "exception",
];

/// Writes `s` as a JSON string.
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// Writes a `Display` value as a JSON string, escaping while it is formatted.
pub(crate) fn write_display(buf: &mut Vec<u8>, value: &dyn fmt::Display) {
    let mut ser = serde_json::Serializer::new(&mut *buf);
    let _ = (&mut ser).collect_str(value);
}

/// Adapts a `Debug` value to `Display` so that it can go through [`write_display`].
struct DebugAsDisplay<'a>(&'a dyn fmt::Debug);

impl fmt::Display for DebugAsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// Writes a `Debug` value as a JSON string.
pub(crate) fn write_debug(buf: &mut Vec<u8>, value: &dyn fmt::Debug) {
    write_display(buf, &DebugAsDisplay(value));
}

/// Writes any serialisable scalar (numbers, booleans) as JSON. Non-finite floats become `null`.
fn write_scalar<T: serde::Serialize>(buf: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *buf, value);
}

/// Request context recorded on a span, kept in the span's extensions.
///
/// Each slot holds the already-encoded JSON value of the matching [`CONTEXT_FIELDS`] key.
#[derive(Debug, Default)]
pub(crate) struct SpanContext {
    pub(crate) values: [Option<Vec<u8>>; 4],
}

impl SpanContext {
    /// True when no context field was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// Overwrites the slots that `other` sets.
    pub(crate) fn merge(&mut self, other: SpanContext) {
        for (slot, value) in self.values.iter_mut().zip(other.values) {
            if value.is_some() {
                *slot = value;
            }
        }
    }

    fn slot(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        let index = CONTEXT_FIELDS.iter().position(|k| *k == field.name())?;
        let slot = self.values[index].get_or_insert_with(Vec::new);
        slot.clear();
        Some(slot)
    }
}

impl Visit for SpanContext {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(buf) = self.slot(field) {
            write_scalar(buf, &value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(buf) = self.slot(field) {
            write_scalar(buf, &value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(buf) = self.slot(field) {
            write_scalar(buf, &value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(buf) = self.slot(field) {
            write_scalar(buf, &value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(buf) = self.slot(field) {
            write_str(buf, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if let Some(buf) = self.slot(field) {
            write_display(buf, &value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(buf) = self.slot(field) {
            write_debug(buf, value);
        }
    }
}

/// The error an event carries, rendered once.
#[derive(Debug)]
pub(crate) struct Exception {
    pub(crate) message: String,
    pub(crate) backtrace: String,
}

impl Exception {
    fn new(error: &(dyn Error + 'static)) -> Self {
        let message = error.to_string();
        let mut backtrace = message.clone();
        let mut source = error.source();
        while let Some(cause) = source {
            backtrace.push_str("\nCaused by: ");
            backtrace.push_str(&cause.to_string());
            source = cause.source();
        }
        Exception { message, backtrace }
    }
}

/// Collects an event's fields: the message, the extra fields as `,"key":value` pairs, and
/// the special fields `critical`, `error.type` and the first `dyn Error` value.
pub(crate) struct EventVisitor<'a> {
    pub(crate) message: &'a mut Vec<u8>,
    pub(crate) fields: &'a mut Vec<u8>,
    /// Bit `i` is set when the event itself gives `CONTEXT_FIELDS[i]`.
    pub(crate) overridden: u8,
    pub(crate) critical: bool,
    pub(crate) exception: Option<Exception>,
    pub(crate) error_type: Option<String>,
}

impl<'a> EventVisitor<'a> {
    pub(crate) fn new(message: &'a mut Vec<u8>, fields: &'a mut Vec<u8>) -> Self {
        EventVisitor {
            message,
            fields,
            overridden: 0,
            critical: false,
            exception: None,
            error_type: None,
        }
    }

    /// Starts an extra field: writes `,"name":` and returns the buffer for the value.
    fn key(&mut self, field: &Field) -> &mut Vec<u8> {
        let name = field.name();
        if let Some(i) = CONTEXT_FIELDS.iter().position(|k| *k == name) {
            self.overridden |= 1 << i;
        }
        self.fields.push(b',');
        if RESERVED.contains(&name) {
            write_display(self.fields, &format_args!("fields.{name}"));
        } else {
            write_str(self.fields, name);
        }
        self.fields.push(b':');
        self.fields
    }
}

impl Visit for EventVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        write_scalar(self.key(field), &value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        write_scalar(self.key(field), &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        write_scalar(self.key(field), &value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        write_scalar(self.key(field), &value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        write_scalar(self.key(field), &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "critical" {
            self.critical = value;
            return;
        }
        write_scalar(self.key(field), &value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => write_str(self.message, value),
            "error.type" => self.error_type = Some(value.to_owned()),
            _ => write_str(self.key(field), value),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.exception.is_none() {
            self.exception = Some(Exception::new(value));
        } else {
            write_display(self.key(field), &value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => write_debug(self.message, value),
            "error.type" => self.error_type = Some(DebugAsDisplay(value).to_string()),
            _ => write_debug(self.key(field), value),
        }
    }
}
