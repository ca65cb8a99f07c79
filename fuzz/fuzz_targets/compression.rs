//! Request body decompression: every encoding, a small limit so bombs are found quickly.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

/// Small, so a fuzzer-made bomb hits it at once.
const LIMIT_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    for encoding in [
        None,
        Some("gzip"),
        Some("deflate"),
        Some("snappy"),
        Some("zstd"),
    ] {
        match sightline_ingest::compression::decode_body(encoding, data, LIMIT_BYTES) {
            Ok(body) => assert!(body.len() <= LIMIT_BYTES),
            Err(e) => common::check_error(&e),
        }
    }
});
