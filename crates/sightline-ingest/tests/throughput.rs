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

/// A scrape-like exposition: `n` series of a few families, ~100 bytes a line.
fn exposition(n: usize) -> Vec<u8> {
    let mut body = String::with_capacity(n * 110);
    body.push_str("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    for i in 0..n {
        body.push_str(&format!(
            "http_requests_total{{method=\"{}\",code=\"{}\",handler=\"/api/v1/items/{}\",instance=\"10.0.0.{}:9100\"}} {}\n",
            ["GET", "POST", "PUT"][i % 3],
            [200, 404, 500][i % 3],
            i / 9,
            i % 255,
            i * 7
        ));
    }
    body.into_bytes()
}

#[test]
#[ignore = "throughput printout; run in release"]
fn prom_text_throughput() {
    let n = 10_000;
    let body = exposition(n);
    report("prometheus text", n, body.len(), || {
        let decoded =
            sightline_ingest::prom_text::parse(&body, Some("text/plain"), NOW_NS / 1_000_000)
                .expect("valid body");
        assert_eq!(decoded.sample_count(), n);
    });
}

#[test]
#[ignore = "throughput printout; run in release"]
fn remote_write_throughput() {
    let n = 10_000;
    let text = exposition(n);
    let now_ms = NOW_NS / 1_000_000;
    let decoded = sightline_ingest::prom_text::parse(&text, None, now_ms).expect("valid body");
    let request = sightline_ingest::remote_write::request_from_series(&decoded.series);
    let body = sightline_ingest::remote_write::encode(&request).expect("encode");
    // Every series new (a fresh interner each time), then the steady state of a sender
    // that repeats its series: the interner knows them all.
    report("remote write, new series", n, body.len(), || {
        let decoded = sightline_ingest::remote_write::decode(
            &body,
            true,
            now_ms,
            600_000,
            &Default::default(),
        )
        .expect("valid body");
        assert_eq!(decoded.metrics.sample_count(), n);
    });
    let interner = sightline_model::LabelInterner::default();
    report("remote write, known series", n, body.len(), || {
        let decoded =
            sightline_ingest::remote_write::decode(&body, true, now_ms, 600_000, &interner)
                .expect("valid body");
        assert_eq!(decoded.metrics.sample_count(), n);
    });
}
