//! Checks every fuzz target applies to a decoder's outcome: errors are of a known kind, and
//! records keep the invariants the store relies on. Each target uses only some of them.
#![allow(dead_code)]

use sightline_ingest::{ErrorKind, IngestError};
use sightline_model::LogRecord;
use sightline_model::labels::is_valid_label_name;
use sightline_model::log::{LOG_LINE_BYTES_MAX, LOG_METADATA_PAIRS_MAX, LOG_STREAM_LABELS_MAX};

pub const NOW_NS: i64 = 1_700_000_000_000_000_000;

pub fn check_error(e: &IngestError) {
    assert!(matches!(e.kind(), ErrorKind::BadData | ErrorKind::TooLarge));
    assert!(!e.to_string().is_empty());
}

pub fn check_records(records: &[LogRecord]) {
    for r in records {
        assert!(r.labels.len() <= LOG_STREAM_LABELS_MAX);
        assert!(r.labels.iter().all(|(name, _)| is_valid_label_name(name)));
        assert!(r.line.len() <= LOG_LINE_BYTES_MAX);
        assert!(r.metadata.len() <= LOG_METADATA_PAIRS_MAX);
        for (i, (name, _)) in r.metadata.iter().enumerate() {
            assert!(is_valid_label_name(name));
            assert!(
                r.metadata[..i].iter().all(|(n, _)| n != name),
                "duplicate {name}"
            );
        }
    }
}

pub fn check(result: Result<Vec<LogRecord>, IngestError>) {
    match result {
        Ok(records) => check_records(&records),
        Err(e) => check_error(&e),
    }
}
