//! Shared test helpers: a log capture writer and a subscriber using it.
#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sightline_sdk::JsonLayer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Collects everything the layer writes.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(Arc::clone(&self.0))
    }
}

impl Capture {
    /// The raw lines written so far.
    pub fn raw(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("lock").clone();
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.is_empty() || text.ends_with('\n'), "unterminated line");
        text.lines().map(str::to_owned).collect()
    }

    /// The lines written so far, parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.raw()
            .iter()
            .map(|l| serde_json::from_str(l).expect("valid JSON line"))
            .collect()
    }

    /// The first line whose message is `message`.
    pub fn find(&self, message: &str) -> Value {
        self.lines()
            .into_iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no line {message:?} in {:?}", self.raw()))
    }
}

/// A subscriber logging JSON for `service` into a fresh capture.
pub fn subscriber(service: &str) -> (impl tracing::Subscriber + Send + Sync, Capture) {
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(JsonLayer::new(service).with_writer(capture.clone()));
    (subscriber, capture)
}

/// Installs a capturing subscriber as this thread's default until the guard drops.
pub fn install(service: &str) -> (tracing::subscriber::DefaultGuard, Capture) {
    let (subscriber, capture) = subscriber(service);
    (tracing::subscriber::set_default(subscriber), capture)
}
