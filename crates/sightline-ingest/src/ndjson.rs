//! NDJSON logs (`POST /api/v1/logs`): one JSON object a line, as structured loggers print.
//!
//! Each non-blank line is one record, normalised by
//! [`record_from_json_object`]. Lines end in
//! `\n` or `\r\n`; blank lines and a leading UTF-8 byte-order mark are skipped. The first bad
//! line fails the whole body with its 1-based number, e.g.
//! `ndjson line 3: expected value at column 1`, so a client can fix and resend it.
//!
//! This is the hottest decoder: lines are found with `memchr` and parsed into a borrowed
//! [`JsonValue`] tree, so a flat line costs one parse and the allocations of its record.

use memchr::memchr_iter;
use sightline_model::LogRecord;

use crate::error::{IngestError, RecordError};
use crate::logs_common::{JsonValue, json_error_text, record_from_json_object};

#[cfg(test)]
mod tests;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes an NDJSON body. `now_ns` is the timestamp of lines that carry none.
pub fn decode(body: &[u8], now_ns: i64) -> Result<Vec<LogRecord>, IngestError> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let mut records = Vec::with_capacity(estimate_lines(body));
    for_each_line(body, |line_number, line| {
        let record = decode_line(line, now_ns)
            .map_err(|reason| IngestError::record(format!("ndjson line {line_number}"), reason))?;
        records.push(record);
        Ok(())
    })?;
    Ok(records)
}

/// Calls `f` with the 1-based number and the trimmed bytes of every non-blank line.
pub(crate) fn for_each_line<F>(body: &[u8], mut f: F) -> Result<(), IngestError>
where
    F: FnMut(usize, &[u8]) -> Result<(), IngestError>,
{
    let mut start = 0;
    let mut line_number = 0;
    let ends = memchr_iter(b'\n', body).chain((body.last() != Some(&b'\n')).then_some(body.len()));
    for end in ends {
        line_number += 1;
        let line = body[start..end].trim_ascii();
        start = end + 1;
        if !line.is_empty() {
            f(line_number, line)?;
        }
    }
    Ok(())
}

/// A cheap guess at the number of lines, to size the output once: about one per 200 bytes.
fn estimate_lines(body: &[u8]) -> usize {
    (body.len() / 200).clamp(1, 1 << 16)
}

/// Decodes one trimmed, non-blank line.
fn decode_line(line: &[u8], now_ns: i64) -> Result<LogRecord, RecordError> {
    let text = std::str::from_utf8(line).map_err(|e| RecordError::Utf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let value = JsonValue::parse(text).map_err(|e| RecordError::Json(json_error_text(&e, true)))?;
    record_from_json_object(text, &value, &[], now_ns)
}
