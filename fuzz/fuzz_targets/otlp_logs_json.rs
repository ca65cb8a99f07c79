//! OTLP/HTTP JSON log bodies, including the repair path for non-spec JSON.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check(sightline_ingest::otlp::logs::decode_json(
        data,
        common::NOW_NS,
    ));
});
