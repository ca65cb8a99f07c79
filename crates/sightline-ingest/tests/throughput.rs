//! Decode throughput printouts, ignored by default; run in release:
//! `cargo test -p sightline-ingest --release --test throughput -- --ignored --nocapture`.
//!
//! The target: the whole server ingests at least 250k lines/s/core, so NDJSON decoding alone
//! should do well over 500k lines/s on ~250-byte lines.

use std::time::Instant;

const NOW_NS: i64 = 1_700_000_000_000_000_000;

/// ~250-byte lines from a Python service's JSON logger, varied a little per line.
fn python_lines(n: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(n * 300);
    for i in 0..n {
        let line = format!(
            r#"{{"timestamp": "2024-01-15T10:30:{:02}.{:06}Z", "level": "{}", "service": "api-service", "message": "User login successful", "module": "auth", "function": "login", "line": 42, "user_id": {}, "ip_address": "192.168.1.{}", "request_id": "6f1c2a4e-{:04x}"}}"#,
            i % 60,
            i % 1_000_000,
            ["INFO", "WARNING", "ERROR", "DEBUG"][i % 4],
            10_000 + i,
            i % 255,
            i % 65536,
        );
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
    }
    body
}

/// Lines per request body: ~500 KB, a typical agent batch.
const BATCH_LINES: usize = 2_000;

fn report(name: &str, lines: usize, bytes: usize, mut run: impl FnMut()) {
    run(); // warm up
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        run();
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(rounds);
    println!(
        "{name}: {:.0} lines/s, {:.1} MB/s ({lines} lines, {:.0} bytes/line)",
        lines as f64 / secs,
        bytes as f64 / secs / 1e6,
        bytes as f64 / lines as f64
    );
}

#[test]
#[ignore = "throughput printout; run in release"]
fn ndjson_throughput() {
    let n = BATCH_LINES;
    let body = python_lines(n);
    report("ndjson", n, body.len(), || {
        let records = sightline_ingest::ndjson::decode(&body, NOW_NS).expect("valid body");
        assert_eq!(records.len(), n);
    });
}

#[test]
#[ignore = "throughput printout; run in release"]
fn es_bulk_throughput() {
    let n = BATCH_LINES;
    let mut body = Vec::new();
    for line in python_lines(n)
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        body.extend_from_slice(b"{\"create\":{\"_index\":\"logs-app\"}}\n");
        body.extend_from_slice(line);
        body.push(b'\n');
    }
    report("es bulk", n, body.len(), || {
        let decoded = sightline_ingest::es_bulk::decode(&body, None, NOW_NS).expect("valid body");
        assert_eq!(decoded.records.len(), n);
    });
}
