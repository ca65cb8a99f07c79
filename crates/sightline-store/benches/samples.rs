//! Decode speed of the metrics sample encoding (`segment/metrics/samples.rs`), on series
//! shaped like the devops benchmark's: regular 10 s scrapes, a random-walk gauge with two
//! decimals, a counter, and values that need the XOR form.
//!
//! `cargo bench -p sightline-store --bench samples` prints nanoseconds per sample and the
//! encoded bytes per sample for each shape. It is a harness, not a test: nothing is
//! asserted about time.

use std::hint::black_box;
use std::time::Instant;

use sightline_model::Sample;
use sightline_store::codec::Reader;
use sightline_store::segment::metrics::samples;

/// Samples per series (two hours at 10 s) and series per run.
const PER_SERIES: usize = 720;
const SERIES: usize = 2_000;

/// A small deterministic PRNG (xorshift64*), so every run decodes the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn series(shape: &str, rng: &mut Rng) -> Vec<Sample> {
    let mut v = 50.0f64;
    let mut c = 0.0f64;
    (0..PER_SERIES)
        .map(|i| {
            let value = match shape {
                "gauge, 2 decimals" => {
                    v = (v + (rng.unit() - 0.5) * 4.0).clamp(0.0, 100.0);
                    (v * 100.0).round() / 100.0
                }
                "counter" => {
                    c += (rng.next() % 500) as f64;
                    c
                }
                _ => rng.unit() * 1e3,
            };
            Sample {
                timestamp_ms: 1_700_000_000_000 + 10_000 * i as i64,
                value,
            }
        })
        .collect()
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for shape in ["gauge, 2 decimals", "counter", "random floats (XOR)"] {
        let encoded: Vec<Vec<u8>> = (0..SERIES)
            .map(|_| {
                let mut buf = Vec::new();
                samples::encode(&series(shape, &mut rng), &mut buf);
                buf
            })
            .collect();
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(PER_SERIES);
        let mut best = f64::INFINITY;
        for _ in 0..15 {
            let started = Instant::now();
            for buf in &encoded {
                out.clear();
                let mut r = Reader::new(buf, "bench");
                samples::decode(&mut r, PER_SERIES, &mut out).expect("decode");
                black_box(&out);
            }
            best = best.min(started.elapsed().as_secs_f64());
        }
        let n = (SERIES * PER_SERIES) as f64;
        println!(
            "{shape:22} {:6.2} ns/sample ({:5.0} M samples/s), {:.2} bytes/sample encoded",
            best * 1e9 / n,
            n / best / 1e6,
            bytes as f64 / n
        );
    }
}
