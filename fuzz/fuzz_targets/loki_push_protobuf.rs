//! Loki protobuf push bodies: the input as sent (snappy block), and the input compressed, so
//! the fuzzer's bytes also reach the protobuf decoder and the label-string parser directly.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check(sightline_ingest::loki_push::decode_protobuf(data));
    if let Ok(block) = snap::raw::Encoder::new().compress_vec(data) {
        common::check(sightline_ingest::loki_push::decode_protobuf(&block));
    }
});
