//! Prometheus remote write 1.0 messages (`prometheus.WriteRequest`), hand-written from
//! Prometheus' `prompb/remote.proto` and `prompb/types.proto` so we need no protoc: field
//! numbers and types are the wire contract and must not change.
//!
//! ```text
//! WriteRequest   { repeated TimeSeries timeseries = 1; reserved 2;
//!                  repeated MetricMetadata metadata = 3; }
//! TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2;
//!                  repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//! Label          { string name = 1; string value = 2; }
//! Sample         { double value = 1; int64 timestamp = 2; }
//! Exemplar       { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }
//! MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
//!                  string unit = 5; }
//! Histogram      { oneof count { uint64 count_int = 1; double count_float = 2; }
//!                  double sum = 3; sint32 schema = 4; double zero_threshold = 5;
//!                  oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
//!                  repeated BucketSpan negative_spans = 8; repeated sint64 negative_deltas = 9;
//!                  repeated double negative_counts = 10; repeated BucketSpan positive_spans = 11;
//!                  repeated sint64 positive_deltas = 12; repeated double positive_counts = 13;
//!                  ResetHint reset_hint = 14; int64 timestamp = 15;
//!                  repeated double custom_values = 16; }
//! BucketSpan     { sint32 offset = 1; uint32 length = 2; }
//! ```
//!
//! Native histograms are decoded (so a request carrying them is valid protobuf) but not
//! stored; see [`crate::remote_write`].

/// A remote write request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series and its samples, exemplars and native histogram samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// One label.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One float sample; `timestamp` in milliseconds since the epoch.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One exemplar; `timestamp` in milliseconds since the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Metadata of one metric family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// A [`MetricType`] number; unknown numbers read as unknown.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

/// A native histogram sample: decoded so the request is valid, then skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "HistogramCount", tags = "1, 2")]
    pub count: Option<HistogramCount>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "HistogramZeroCount", tags = "6, 7")]
    pub zero_count: Option<HistogramZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// `Histogram.count`.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum HistogramCount {
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// `Histogram.zero_count`.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum HistogramZeroCount {
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// A run of native histogram buckets.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Bytes written by hand from the wire format, so the field numbers are checked against
    /// the spec rather than against our own encoder.
    #[test]
    fn decodes_hand_written_bytes() {
        #[rustfmt::skip]
        let bytes: &[u8] = &[
            0x0a, 0x30,                                   // timeseries (1), 48 bytes
              0x0a, 0x0e,                                 // labels (1), 14 bytes
                0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_',
                0x12, 0x02, b'u', b'p',
              0x12, 0x0b,                                 // samples (2), 11 bytes
                0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,       // value (1): 1.0
                0x10, 0x05,                               // timestamp (2): 5
              0x1a, 0x0b,                                 // exemplars (3), 11 bytes
                0x11, 0, 0, 0, 0, 0, 0, 0x00, 0x40,       // value (2): 2.0
                0x18, 0x07,                               // timestamp (3): 7
              0x22, 0x04,                                 // histograms (4), 4 bytes
                0x08, 0x00,                               // count_int (1): 0
                0x20, 0x03,                               // schema (4): sint32 -2
            0x1a, 0x08,                                   // metadata (3), 8 bytes
              0x08, 0x01,                                 // type (1): counter
              0x12, 0x01, b'c',                           // metric_family_name (2)
              0x22, 0x01, b'h',                           // help (4)
        ];
        let request = WriteRequest::decode(bytes).expect("valid protobuf");
        let series = &request.timeseries[0];
        assert_eq!(series.labels[0].name, "__name__");
        assert_eq!(series.labels[0].value, "up");
        assert_eq!(
            series.samples,
            [Sample {
                value: 1.0,
                timestamp: 5
            }]
        );
        assert_eq!(series.exemplars[0].value, 2.0);
        assert_eq!(series.exemplars[0].timestamp, 7);
        assert_eq!(series.histograms[0].schema, -2);
        assert_eq!(
            series.histograms[0].count,
            Some(HistogramCount::CountInt(0))
        );
        let metadata = &request.metadata[0];
        assert_eq!(metadata.r#type, MetricType::Counter as i32);
        assert_eq!(metadata.metric_family_name, "c");
        assert_eq!(metadata.help, "h");
        assert_eq!(request.encode_to_vec(), bytes);
    }
}
