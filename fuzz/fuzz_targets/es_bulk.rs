//! Elasticsearch `_bulk` bodies, with and without an index in the URL path.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use sightline_ingest::es_bulk;

fuzz_target!(|data: &[u8]| {
    for default_index in [None, Some("logs")] {
        match es_bulk::decode(data, default_index, common::NOW_NS) {
            Ok(decoded) => {
                common::check_records(&decoded.records);
                let made = decoded.items.iter().filter(|i| i.record.is_some()).count();
                assert_eq!(made, decoded.records.len());
                let _ = es_bulk::bulk_response(&decoded.items, 0);
            }
            Err(e) => common::check_error(&e),
        }
    }
});
