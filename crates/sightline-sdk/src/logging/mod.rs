//! Structured JSON logs: one flat JSON object per `tracing` event.
//!
//! # Why a layer of our own
//! `tracing-subscriber`'s JSON formatter nests event fields under `fields`, span fields under
//! `spans`, and has no function name. Log pipelines built for the seed service expect a flat
//! object with fixed keys, so [`JsonLayer`] writes exactly:
//!
//! | key | value |
//! |-----|-------|
//! | `timestamp` | RFC 3339, UTC, microseconds (`2026-11-25T07:17:12.123456Z`) |
//! | `level` | `DEBUG` (tracing's TRACE and DEBUG), `INFO`, `WARNING`, `ERROR`, `CRITICAL` |
//! | `service` | the service name given to [`JsonLayer::new`] |
//! | `message` | the event's message (`""` when it has none) |
//! | `module` | the event's module path, or its target when there is none |
//! | `function` | the innermost span's name (with `#[tracing::instrument]`: the function), or `null` |
//! | `line` | the source line, or `null` |
//! | `request_id`, `user_id`, `trace_id`, `span_id` | the request context, when a span in scope recorded it |
//! | every other field | flat and typed: numbers stay numbers, booleans booleans, the rest strings |
//! | `exception` | `{type, message, backtrace}` when the event carries a `dyn Error` |
//!
//! # Conventions
//! - **CRITICAL**: an event with the field `critical = true`, or with the target
//!   [`CRITICAL_TARGET`] (`tracing::error!(target: "critical", ...)`), is logged as `CRITICAL`.
//!   The `critical` field itself is not written.
//! - **Errors**: the first field recorded as a `dyn Error` (`error = &e as &dyn Error`) becomes
//!   `exception`: `message` is its `Display`, `backtrace` the message followed by its
//!   `source()` chain, one `Caused by:` line per cause, `type` the event's `error.type` field
//!   if given (Rust erases the concrete type behind `dyn Error`) or else `"Error"`.
//! - **Request context**: any span recording `request_id`, `user_id`, `trace_id` or `span_id`
//!   (at creation or later with `Span::record`) stores the encoded values in its extensions;
//!   every event inside that span, however deep, gets the innermost value of each key. It
//!   follows the span, so it survives `.await`s and reaches tasks spawned with
//!   `.instrument(Span::current())`. A field of the same name on the event wins.
//! - The span named [`REQUEST_SPAN_NAME`] (the one [`crate::http::HttpLayer`] opens) carries
//!   context only and is never reported as `function`.
//! - An event field named like one of the fixed keys is written as `fields.<name>`, so no
//!   key ever appears twice.
//!
//! # Invariants
//! Each event becomes exactly one line, written with a single `write_all`, so lines from
//! concurrent threads never interleave. The line is assembled in thread-local buffers that
//! are reused, so the steady state allocates nothing except for events that carry an error.

mod time;
mod visit;

use std::cell::RefCell;
use std::io::{self, Write};
use std::time::SystemTime;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

pub use visit::CONTEXT_FIELDS;
use visit::{EventVisitor, SpanContext, write_str};

/// Name of the request span: it carries the request context and is never the `function`.
pub const REQUEST_SPAN_NAME: &str = "http_request";

/// Events with this target are logged as `CRITICAL` whatever their level.
pub const CRITICAL_TARGET: &str = "critical";

/// Buffers larger than this are released after use instead of being kept for the next event.
const MAX_RETAINED: usize = 64 * 1024;

/// A [`Layer`] writing one flat JSON object per event; see the [module docs](self).
///
/// `W` makes the writer: standard output by default, anything implementing
/// [`MakeWriter`] (a file, a test buffer) through [`JsonLayer::with_writer`].
#[derive(Debug)]
pub struct JsonLayer<W = fn() -> io::Stdout> {
    /// The service name, already encoded as a JSON string.
    service: Box<[u8]>,
    make_writer: W,
}

impl JsonLayer {
    /// A layer logging to standard output for the service `service`.
    pub fn new(service: &str) -> Self {
        let mut encoded = Vec::with_capacity(service.len() + 2);
        write_str(&mut encoded, service);
        JsonLayer {
            service: encoded.into_boxed_slice(),
            make_writer: io::stdout,
        }
    }
}

impl<W> JsonLayer<W> {
    /// The same layer writing to `make_writer` instead.
    pub fn with_writer<W2>(self, make_writer: W2) -> JsonLayer<W2>
    where
        W2: for<'a> MakeWriter<'a> + 'static,
    {
        JsonLayer {
            service: self.service,
            make_writer,
        }
    }
}

/// Reused per-thread buffers: the line, the encoded message and the extra fields.
#[derive(Default)]
struct Buffers {
    line: Vec<u8>,
    message: Vec<u8>,
    fields: Vec<u8>,
}

impl Buffers {
    fn clear(&mut self) {
        for buf in [&mut self.line, &mut self.message, &mut self.fields] {
            buf.clear();
            if buf.capacity() > MAX_RETAINED {
                buf.shrink_to(MAX_RETAINED / 4);
            }
        }
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Maps a `tracing` level onto the seed's level names.
fn level_name(level: Level, critical: bool) -> &'static [u8] {
    if critical {
        return b"CRITICAL";
    }
    match level {
        Level::TRACE | Level::DEBUG => b"DEBUG",
        Level::INFO => b"INFO",
        Level::WARN => b"WARNING",
        Level::ERROR => b"ERROR",
    }
}

impl<W> JsonLayer<W> {
    /// Assembles the line for `event` in `bufs.line`.
    fn format<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, bufs: &mut Buffers)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Buffers {
            line,
            message,
            fields,
        } = bufs;
        let meta = event.metadata();
        let mut visitor = EventVisitor::new(message, fields);
        event.record(&mut visitor);
        let critical = visitor.critical || meta.target() == CRITICAL_TARGET;

        line.extend_from_slice(b"{\"timestamp\":\"");
        time::write_rfc3339(line, SystemTime::now());
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(level_name(*meta.level(), critical));
        line.extend_from_slice(b"\",\"service\":");
        line.extend_from_slice(&self.service);
        line.extend_from_slice(b",\"message\":");
        if visitor.message.is_empty() {
            line.extend_from_slice(b"\"\"");
        } else {
            line.extend_from_slice(visitor.message);
        }
        line.extend_from_slice(b",\"module\":");
        write_str(line, meta.module_path().unwrap_or_else(|| meta.target()));
        line.extend_from_slice(b",\"function\":");
        let function = ctx
            .event_scope(event)
            .and_then(|mut scope| scope.find(|span| span.name() != REQUEST_SPAN_NAME))
            .map(|span| span.name());
        match function {
            Some(name) => write_str(line, name),
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(b",\"line\":");
        match meta.line() {
            Some(n) => {
                let _ = write!(line, "{n}");
            }
            None => line.extend_from_slice(b"null"),
        }

        // Request context: the innermost value of each key, unless the event gives it.
        let mut written = visitor.overridden;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if written == 0b1111 {
                    break;
                }
                let extensions = span.extensions();
                let Some(context) = extensions.get::<SpanContext>() else {
                    continue;
                };
                for (i, value) in context.values.iter().enumerate() {
                    if let Some(value) = value
                        && written & (1 << i) == 0
                    {
                        written |= 1 << i;
                        line.push(b',');
                        write_str(line, CONTEXT_FIELDS[i]);
                        line.push(b':');
                        line.extend_from_slice(value);
                    }
                }
            }
        }

        line.extend_from_slice(visitor.fields);
        match (visitor.exception.take(), visitor.error_type.take()) {
            (Some(exception), error_type) => {
                line.extend_from_slice(b",\"exception\":{\"type\":");
                write_str(line, error_type.as_deref().unwrap_or("Error"));
                line.extend_from_slice(b",\"message\":");
                write_str(line, &exception.message);
                line.extend_from_slice(b",\"backtrace\":");
                write_str(line, &exception.backtrace);
                line.push(b'}');
            }
            (None, Some(error_type)) => {
                line.extend_from_slice(b",\"error.type\":");
                write_str(line, &error_type);
            }
            (None, None) => {}
        }
        line.extend_from_slice(b"}\n");
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut context = SpanContext::default();
        attrs.record(&mut context);
        if context.is_empty() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(context);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut recorded = SpanContext::default();
        values.record(&mut recorded);
        if recorded.is_empty() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<SpanContext>() {
                Some(context) => context.merge(recorded),
                None => extensions.insert(recorded),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |bufs: &mut Buffers| {
            bufs.clear();
            self.format(event, &ctx, bufs);
            let mut writer = self.make_writer.make_writer_for(event.metadata());
            // A logger has nowhere to report its own write errors.
            let _ = writer.write_all(&bufs.line);
        };
        // Fall back to fresh buffers if the thread-local is busy (an event logged from
        // inside the writer) or already destroyed (an event during thread exit).
        let reused = BUFFERS.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut bufs) => {
                write(&mut bufs);
                true
            }
            Err(_) => false,
        });
        if reused != Ok(true) {
            write(&mut Buffers::default());
        }
    }
}

/// Installs [`JsonLayer`] for `service` on standard output as the global subscriber, filtered
/// by `RUST_LOG` (default `info`).
///
/// # Errors
/// Fails when a global subscriber is already set.
pub fn init(service: &str) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(JsonLayer::new(service))
        .try_init()
}
