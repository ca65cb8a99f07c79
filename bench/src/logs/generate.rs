//! A deterministic generator of service logs in our reference service's JSON shape.
//!
//! Line `i` depends only on the seed, `i` and the time plan, never on what was generated
//! before, so client threads can generate their own batches in any order and the harness can
//! re-create any line later (the needle of the request-id query) without keeping it.
//!
//! The shape, one JSON object a line, fields in this order:
//! `timestamp` (RFC 3339, microseconds, `Z`), `level` (`INFO` 70 %, `DEBUG` 15 %, `WARNING`
//! 10 %, `ERROR` 4 %, `CRITICAL` 1 %), `service` (10 services, skewed towards the gateway),
//! `message` (one of ~50 templates with variable parts), `module`, `function`, `line` (fixed
//! per template, as in real code), `user_id`, `ip_address` and `session_id` (fixed per user),
//! `request_id` (a UUID v4 from the PRNG), `duration_ms`, and on `ERROR` and
//! `CRITICAL` lines an `exception` object with `type`, `message` and a multi-line Python
//! `traceback`.
//!
//! Requests: consecutive runs of `lines_per_request` lines (1 by default) are one request:
//! they share `request_id`, `service` and the user (`user_id`, `ip_address`, `session_id`).
//! With 1, every `request_id` is unique, so a needle query finds exactly one line.
//!
//! Timestamps: line `i` is at `start + i * step + jitter` with `0 <= jitter < step`, whole
//! microseconds, so they strictly increase and all lines fall in `[start, start + span)`.

mod templates;

use crate::clock::civil_from_days;
use crate::rng::{Rng, mix64};
use templates::{
    ERROR_TEMPLATES, GENERIC_TEMPLATES, SERVICE_TEMPLATES, Template, WARNING_TEMPLATES,
};

/// The services, with their share of lines in percent (adds up to 100).
pub const SERVICES: [(&str, u64); 10] = [
    ("gateway", 18),
    ("api-service", 16),
    ("orders", 12),
    ("search", 11),
    ("auth", 9),
    ("cart", 9),
    ("payments", 8),
    ("inventory", 7),
    ("shipping", 5),
    ("notifications", 5),
];

/// A word that appears only in `payments` lines (one of its templates), for the term query.
pub const PAYMENTS_TERM: &str = "refund";

/// How many distinct users the lines are spread over.
const USERS: u64 = 50_000;

/// A level as the service prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The text in the `level` field.
    pub fn text(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// The `level` stream label Sightline normalises it to.
    pub fn label(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warn",
            Level::Error => "error",
            Level::Critical => "fatal",
        }
    }

    /// The OTLP severity number (the first of its range).
    pub fn severity_number(self) -> i32 {
        match self {
            Level::Debug => 5,
            Level::Info => 9,
            Level::Warning => 13,
            Level::Error => 17,
            Level::Critical => 21,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The exception of an error line.
#[derive(Clone, Debug)]
pub struct Exception {
    pub type_name: &'static str,
    pub message: String,
    pub traceback: String,
}

/// One generated log line, before serialisation.
#[derive(Clone, Debug)]
pub struct Record {
    pub timestamp_ns: i64,
    pub level: Level,
    pub service: &'static str,
    pub message: String,
    pub module: &'static str,
    pub function: &'static str,
    pub line: u32,
    pub user_id: u64,
    pub ip_address: String,
    pub session_id: String,
    pub request_id: String,
    pub duration_us: u64,
    pub exception: Option<Exception>,
}

/// What was generated, for the report and for checking query answers.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub lines: u64,
    /// Bytes of the NDJSON form, newlines included, whatever the protocol sent.
    pub ndjson_bytes: u64,
    /// Lines by [`Level`], in the order of [`Level::ALL`].
    pub by_level: [u64; 5],
    /// `orders` lines whose level label is `error`.
    pub orders_error: u64,
    /// `payments` lines whose message contains [`PAYMENTS_TERM`].
    pub payments_term: u64,
}

impl Counts {
    pub fn add(&mut self, record: &Record, ndjson_len: usize) {
        self.lines += 1;
        self.ndjson_bytes += ndjson_len as u64;
        self.by_level[record.level.index()] += 1;
        if record.service == "orders" && record.level == Level::Error {
            self.orders_error += 1;
        }
        if record.service == "payments" && record.message.contains(PAYMENTS_TERM) {
            self.payments_term += 1;
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        self.lines += other.lines;
        self.ndjson_bytes += other.ndjson_bytes;
        for (a, b) in self.by_level.iter_mut().zip(other.by_level) {
            *a += b;
        }
        self.orders_error += other.orders_error;
        self.payments_term += other.payments_term;
    }

    /// Lines whose `level` label is `label`.
    pub fn with_label(&self, label: &str) -> u64 {
        Level::ALL
            .iter()
            .filter(|l| l.label() == label)
            .map(|l| self.by_level[l.index()])
            .sum()
    }
}

/// The generator: a seed and a time plan.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    start_ns: i64,
    step_ns: i64,
    lines_per_request: u64,
}

impl Generator {
    /// `lines` lines spread over `[start_ns, start_ns + span_ns)`, in requests of
    /// `lines_per_request` lines (at least 1).
    pub fn new(seed: u64, lines: u64, start_ns: i64, span_ns: i64, lines_per_request: u64) -> Self {
        let per_line_ns = span_ns / i64::try_from(lines.max(1)).unwrap_or(i64::MAX);
        // Whole microseconds, at least one, so timestamps print exactly and strictly increase.
        let step_ns = (per_line_ns / 1_000).max(1) * 1_000;
        Self {
            seed,
            start_ns,
            step_ns,
            lines_per_request: lines_per_request.max(1),
        }
    }

    pub fn start_ns(&self) -> i64 {
        self.start_ns
    }

    /// The timestamp just after line `lines - 1`: every line is before it.
    #[cfg(test)]
    pub fn end_ns(&self, lines: u64) -> i64 {
        self.start_ns + self.step_ns * i64::try_from(lines).unwrap_or(i64::MAX)
    }

    pub fn lines_per_request(&self) -> u64 {
        self.lines_per_request
    }

    /// Line `index`.
    pub fn record(&self, index: u64) -> Record {
        let mut rng = Rng::new(mix64(self.seed ^ mix64(index)));
        // What the lines of one request share comes from the request's own PRNG.
        let request = index / self.lines_per_request;
        let mut request_rng = Rng::new(mix64(
            self.seed.rotate_left(31) ^ mix64(request ^ 0x5eed_0f4e_9e57),
        ));
        let jitter_us = rng.below((self.step_ns / 1_000) as u64) as i64;
        let timestamp_ns = self.start_ns + self.step_ns * index as i64 + jitter_us * 1_000;

        let level = match rng.below(100) {
            0..70 => Level::Info,
            70..85 => Level::Debug,
            85..95 => Level::Warning,
            95..99 => Level::Error,
            _ => Level::Critical,
        };
        let (service_index, service) = pick_service(request_rng.below(100));
        let mut error_template = None;
        let template: &Template = match level {
            Level::Info | Level::Debug => {
                if rng.below(2) == 0 {
                    &SERVICE_TEMPLATES[service_index]
                        [rng.below(SERVICE_TEMPLATES[service_index].len() as u64) as usize]
                } else {
                    &GENERIC_TEMPLATES[rng.below(GENERIC_TEMPLATES.len() as u64) as usize]
                }
            }
            Level::Warning => {
                &WARNING_TEMPLATES[rng.below(WARNING_TEMPLATES.len() as u64) as usize]
            }
            Level::Error | Level::Critical => {
                let t = &ERROR_TEMPLATES[rng.below(ERROR_TEMPLATES.len() as u64) as usize];
                error_template = Some(t);
                &t.template
            }
        };
        // Busy users log more: a skew towards low ids.
        let user_id = 1 + request_rng.skewed(USERS);
        let user_hash = mix64(user_id ^ self.seed.rotate_left(17));
        let ip_address = format!(
            "{}.{}.{}.{}",
            1 + (user_hash & 0xff) % 223,
            (user_hash >> 8) & 0xff,
            (user_hash >> 16) & 0xff,
            1 + ((user_hash >> 24) & 0xff) % 254
        );
        let session_id = format!("sess-{:012x}", (user_hash >> 16) & 0xffff_ffff_ffff);
        let request_id = request_rng.uuid_v4();
        let message = templates::fill(template.text, &mut rng, user_id, &ip_address);
        // Mostly fast, with a long tail: 1 ms .. ~5 s.
        let duration_us = 200 + rng.below(1_000) * (1 + rng.skewed(5_000));
        let exception = error_template.map(|t| {
            let message = templates::fill(t.exception_message, &mut rng, user_id, &ip_address);
            let traceback = templates::traceback(t, service, &message);
            Exception {
                type_name: t.exception_type,
                message,
                traceback,
            }
        });
        Record {
            timestamp_ns,
            level,
            service,
            message,
            module: template.module,
            function: template.function,
            line: template.line,
            user_id,
            ip_address,
            session_id,
            request_id,
            duration_us,
            exception,
        }
    }
}

fn pick_service(percent: u64) -> (usize, &'static str) {
    let mut acc = 0;
    for (i, (name, share)) in SERVICES.iter().enumerate() {
        acc += share;
        if percent < acc {
            return (i, name);
        }
    }
    (SERVICES.len() - 1, SERVICES[SERVICES.len() - 1].0)
}

/// Appends `record` as one NDJSON line (with its `\n`).
pub fn write_ndjson(record: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\": \"");
    write_rfc3339_micros(record.timestamp_ns, out);
    out.extend_from_slice(b"\", \"level\": \"");
    out.extend_from_slice(record.level.text().as_bytes());
    out.extend_from_slice(b"\", \"service\": ");
    write_json_string(record.service, out);
    out.extend_from_slice(b", \"message\": ");
    write_json_string(&record.message, out);
    out.extend_from_slice(b", \"module\": ");
    write_json_string(record.module, out);
    out.extend_from_slice(b", \"function\": ");
    write_json_string(record.function, out);
    out.extend_from_slice(
        format!(
            ", \"line\": {}, \"user_id\": {}, \"ip_address\": ",
            record.line, record.user_id
        )
        .as_bytes(),
    );
    write_json_string(&record.ip_address, out);
    out.extend_from_slice(b", \"session_id\": ");
    write_json_string(&record.session_id, out);
    out.extend_from_slice(b", \"request_id\": ");
    write_json_string(&record.request_id, out);
    out.extend_from_slice(
        format!(
            ", \"duration_ms\": {}",
            duration_ms_text(record.duration_us)
        )
        .as_bytes(),
    );
    if let Some(e) = &record.exception {
        out.extend_from_slice(b", \"exception\": {\"type\": ");
        write_json_string(e.type_name, out);
        out.extend_from_slice(b", \"message\": ");
        write_json_string(&e.message, out);
        out.extend_from_slice(b", \"traceback\": ");
        write_json_string(&e.traceback, out);
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// `duration_us` as milliseconds with three decimals, e.g. `12.345`.
pub fn duration_ms_text(duration_us: u64) -> String {
    format!("{}.{:03}", duration_us / 1_000, duration_us % 1_000)
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// `2024-01-15T10:30:00.123456Z`.
pub fn write_rfc3339_micros(ns: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    out.extend_from_slice(
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_deterministic_valid_json_and_increasing() {
        let g = Generator::new(7, 1_000, 1_700_000_000_000_000_000, 7_200_000_000_000, 1);
        let mut prev = i64::MIN;
        let mut counts = Counts::default();
        for i in 0..1_000 {
            let r = g.record(i);
            assert!(r.timestamp_ns > prev && r.timestamp_ns < g.end_ns(1_000));
            prev = r.timestamp_ns;
            let mut a = Vec::new();
            write_ndjson(&r, &mut a);
            let mut b = Vec::new();
            write_ndjson(&g.record(i), &mut b);
            assert_eq!(a, b);
            let v: serde_json::Value = serde_json::from_slice(&a).expect("valid json");
            assert_eq!(v["request_id"].as_str(), Some(r.request_id.as_str()));
            assert_eq!(
                v["exception"].is_object(),
                matches!(r.level, Level::Error | Level::Critical)
            );
            counts.add(&r, a.len());
        }
        assert_eq!(counts.by_level.iter().sum::<u64>(), 1_000);
    }

    #[test]
    fn lines_of_a_request_share_its_fields() {
        let g = Generator::new(7, 1_000, 1_700_000_000_000_000_000, 7_200_000_000_000, 4);
        let (a, b, c) = (g.record(8), g.record(11), g.record(12));
        assert_eq!(
            (&a.request_id, a.service, a.user_id),
            (&b.request_id, b.service, b.user_id)
        );
        assert_ne!(a.request_id, c.request_id);
    }

    #[test]
    fn timestamps_print_as_rfc3339() {
        let mut out = Vec::new();
        write_rfc3339_micros(1_705_314_600_123_456_000, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "2024-01-15T10:30:00.123456Z");
    }
}
