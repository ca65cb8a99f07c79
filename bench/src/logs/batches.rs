//! The generated lines cut into request bodies: NDJSON or OTLP/HTTP protobuf, optionally
//! gzipped. Batch `k` holds lines `k * batch_lines ..`.

use std::io::Write;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::ValueEnum;
use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;

use super::generate::{Counts, Generator, write_ndjson};
use super::otlp;
use crate::ingest::{self, Payload, Tally};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /api/v1/logs`, one JSON object a line.
    Ndjson,
    /// `POST /v1/logs`, OTLP/HTTP protobuf.
    Otlp,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Ndjson => "ndjson",
            Via::Otlp => "otlp",
        }
    }

    /// The request the bodies go in.
    pub fn request(self, gzip: bool) -> ingest::Request {
        let (path, content_type) = match self {
            Via::Ndjson => ("/api/v1/logs", "application/x-ndjson"),
            Via::Otlp => ("/v1/logs", "application/x-protobuf"),
        };
        let mut headers = vec![("Content-Type", content_type)];
        if gzip {
            headers.push(("Content-Encoding", "gzip"));
        }
        ingest::Request { path, headers }
    }
}

impl Tally for Counts {
    fn merge(&mut self, other: &Self) {
        Counts::merge(self, other);
    }
}

/// How to cut the lines into request bodies.
#[derive(Clone, Debug)]
pub struct Batches {
    pub generator: Generator,
    pub via: Via,
    pub lines: u64,
    pub batch_lines: u64,
    pub gzip: bool,
}

impl ingest::Batches<Counts> for Batches {
    fn count(&self) -> u64 {
        self.lines.div_ceil(self.batch_lines)
    }

    fn build(&self, k: u64) -> Result<Payload<Counts>> {
        let first = k * self.batch_lines;
        let end = (first + self.batch_lines).min(self.lines);
        let mut counts = Counts::default();
        let mut ndjson = Vec::with_capacity(((end - first) * 400) as usize);
        let body = match self.via {
            Via::Ndjson => {
                for i in first..end {
                    let r = self.generator.record(i);
                    let before = ndjson.len();
                    write_ndjson(&r, &mut ndjson);
                    counts.add(&r, ndjson.len() - before);
                }
                ndjson
            }
            Via::Otlp => {
                let mut records = Vec::with_capacity((end - first) as usize);
                for i in first..end {
                    let r = self.generator.record(i);
                    ndjson.clear();
                    write_ndjson(&r, &mut ndjson);
                    counts.add(&r, ndjson.len());
                    records.push(r);
                }
                otlp::export_request(&records).encode_to_vec()
            }
        };
        let body = if self.gzip {
            let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            enc.write_all(&body).context("gzip a body")?;
            enc.finish().context("gzip a body")?
        } else {
            body
        };
        Ok(Payload {
            body: Bytes::from(body),
            tally: counts,
        })
    }
}
