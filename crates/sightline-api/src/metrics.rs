//! The server's own metrics at `GET /metrics`, made with `prometheus-client`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedLabels {
    pub signal: &'static str,
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectedLabels {
    pub protocol: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub endpoint: &'static str,
}

fn query_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Clone)]
pub struct ApiMetrics {
    pub received_records: Family<ReceivedLabels, Counter<u64, AtomicU64>>,
    pub received_bytes: Family<ReceivedLabels, Counter<u64, AtomicU64>>,
    pub rejected_requests: Family<RejectedLabels, Counter>,
    pub rejected_records: Family<ReceivedLabels, Counter<u64, AtomicU64>>,
    pub query_seconds: Family<QueryLabels, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            received_records: Family::default(),
            received_bytes: Family::default(),
            rejected_requests: Family::default(),
            rejected_records: Family::default(),
            query_seconds: Family::new_with_constructor(query_histogram),
        }
    }
}

impl ApiMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "sightline_received_records",
            "Records accepted, by signal and protocol",
            self.received_records.clone(),
        );
        r.register_with_unit(
            "sightline_received",
            "Request bytes accepted (as sent, before decompression), by signal and protocol",
            Unit::Bytes,
            self.received_bytes.clone(),
        );
        r.register(
            "sightline_rejected_requests",
            "Requests refused, by protocol and reason",
            self.rejected_requests.clone(),
        );
        r.register(
            "sightline_rejected_records",
            "Records refused one by one in an accepted request (OTLP partial success), by signal and protocol",
            self.rejected_records.clone(),
        );
        r.register_with_unit(
            "sightline_query_duration",
            "Time to answer a query, by endpoint",
            Unit::Seconds,
            self.query_seconds.clone(),
        );
    }

    pub fn received(&self, signal: &'static str, protocol: &'static str, records: u64, bytes: u64) {
        let l = ReceivedLabels { signal, protocol };
        self.received_records.get_or_create(&l).inc_by(records);
        self.received_bytes.get_or_create(&l).inc_by(bytes);
    }

    pub fn rejected_records(&self, signal: &'static str, protocol: &'static str, records: u64) {
        self.rejected_records
            .get_or_create(&ReceivedLabels { signal, protocol })
            .inc_by(records);
    }

    pub fn rejected(&self, protocol: &'static str, reason: &'static str) {
        self.rejected_requests
            .get_or_create(&RejectedLabels { protocol, reason })
            .inc();
    }
}
