//! OTLP/HTTP protobuf log bodies.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check(sightline_ingest::otlp::logs::decode_protobuf(
        data,
        common::NOW_NS,
    ));
});
