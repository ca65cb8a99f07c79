//! Unit tests of the NDJSON decoder: line splitting, line numbers in errors, limits.

use super::*;
use crate::ErrorKind;

const NOW_NS: i64 = 1_700_000_000_000_000_000;

fn error_text(body: &str) -> String {
    decode(body.as_bytes(), NOW_NS)
        .expect_err("should fail")
        .to_string()
}

#[test]
fn splits_lines_skips_blanks_and_crlf() {
    let body = "\u{feff}{\"message\":\"a\"}\r\n\r\n  \n{\"message\":\"b\"}\n{\"message\":\"c\"}";
    let records = decode(body.as_bytes(), NOW_NS).expect("valid body");
    let lines: Vec<&str> = records.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(lines, ["a", "b", "c"]);
    assert!(records.iter().all(|r| r.timestamp_ns == NOW_NS));
}

#[test]
fn empty_bodies_decode_to_nothing() {
    for body in ["", "\n", "\r\n\r\n", "   "] {
        assert_eq!(decode(body.as_bytes(), NOW_NS), Ok(vec![]), "{body:?}");
    }
}

#[test]
fn error_messages() {
    assert_eq!(
        error_text("{\"message\":\"a\"}\n\n]\n"),
        "ndjson line 3: expected value at column 1"
    );
    assert_eq!(
        error_text("{\"message\":\"a\"} x"),
        "ndjson line 1: trailing characters at column 17"
    );
    assert_eq!(
        error_text("[1, 2]"),
        "ndjson line 1: expected a json object, found an array"
    );
    assert_eq!(
        error_text("{\"a\": 1"),
        "ndjson line 1: EOF while parsing an object at column 7"
    );
    assert_eq!(
        error_text("{\"message\":\"a\"}\n{\"message\":\"b\", \"time\": \"noon\"}"),
        "ndjson line 2: timestamp \"noon\": expected RFC 3339 or epoch number"
    );
    let e = decode(b"{\"message\":\"\xff\"}", NOW_NS).expect_err("not utf-8");
    assert_eq!(e.to_string(), "ndjson line 1: invalid utf-8 at byte 12");
    assert_eq!(e.kind(), ErrorKind::BadData);
}

#[test]
fn long_lines_are_too_large() {
    let body = format!(
        "{{\"message\":\"{}\"}}",
        "x".repeat(sightline_model::log::LOG_LINE_BYTES_MAX + 1)
    );
    let e = decode(body.as_bytes(), NOW_NS).expect_err("too long");
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(
        e.to_string()
            .starts_with("ndjson line 1: line is 262145 bytes"),
        "{e}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let body = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let e = decode(body.as_bytes(), NOW_NS).expect_err("too deep");
    assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
}
