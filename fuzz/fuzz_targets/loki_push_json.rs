//! Loki JSON push bodies.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check(sightline_ingest::loki_push::decode_json(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sightline_ingest::loki_push::label_string::parse_label_string(text);
    }
});
