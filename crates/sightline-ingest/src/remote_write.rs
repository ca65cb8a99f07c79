//! Prometheus remote write 1.0 (`POST /api/v1/write`): a `prometheus.WriteRequest`
//! ([`proto`]) in protobuf, compressed as one snappy block.
//!
//! **Accepted.** Float samples and exemplars of every series, and the metadata of each metric
//! family (`TYPE`, `HELP`, `UNIT`). Label sets need not arrive sorted; labels with an empty
//! value are dropped, as Prometheus drops them. The body decompresses to at most
//! [`REMOTE_WRITE_DECOMPRESSED_BYTES_MAX`].
//!
//! **Skipped, and counted.** Native histogram samples (`TimeSeries.histograms`) are decoded,
//! so a request that mixes them with float samples is valid and its float samples land, but
//! they are not stored: the count comes back as
//! [`RemoteWriteDecoded::native_histogram_samples_skipped`] for the caller to report.
//! Exemplars whose labels are longer than
//! [`EXEMPLAR_LABEL_CHARS_MAX`](crate::metrics_common::EXEMPLAR_LABEL_CHARS_MAX) are dropped,
//! as Prometheus drops them, and counted in [`RemoteWriteDecoded::exemplars_dropped`].
//! Metadata without a valid family name is ignored.
//!
//! **Rejected: the whole request fails** (a 400, which a remote-write sender does not retry)
//! when a series has an invalid label name (`[a-zA-Z_][a-zA-Z0-9_]*`), the same label name
//! twice, no `__name__` or one that is not a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`),
//! more labels or longer names or values than the limits of [`crate::metrics_common`], or a
//! sample more than `future_ms_max` after the caller's `now_ms`
//! ([`FUTURE_MS_MAX_DEFAULT`]: 10 minutes). Prometheus instead stores the rest of such a
//! request before answering 400; we store nothing, so a sender that fixes its clock or its
//! labels and resends loses nothing either. Messages say which series:
//! `decode remote-write request: series {__name__="up", 1a="x"}: label name "1a" is not valid`.

pub mod proto;
#[cfg(test)]
mod tests;

use prost::Message;
use sightline_model::{Exemplar, Labels, MetricMetadata, MetricType, Sample, SeriesSamples};

use crate::compression::decompress_snappy_block;
use crate::error::{IngestError, RecordError, excerpt};
use crate::metrics_common::{
    DecodedMetrics, exemplar_labels, is_valid_metric_name, pairs_text, series_labels,
};
use proto::WriteRequest;

/// Largest decompressed (or uncompressed) request.
pub const REMOTE_WRITE_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How far after the receiver's clock a sample may be, by default: 10 minutes.
pub const FUTURE_MS_MAX_DEFAULT: i64 = 10 * 60 * 1000;

const OP: &str = "decode remote-write request";

/// A decoded request: what to store, and what was skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteWriteDecoded {
    pub metrics: DecodedMetrics,
    /// Native histogram samples in the request, none of them stored.
    pub native_histogram_samples_skipped: u64,
    /// Exemplars dropped because their labels were too long.
    pub exemplars_dropped: u64,
}

/// Decodes a remote write body: a snappy block when `snappy` (the body's `Content-Encoding`
/// is `snappy`, as remote write 1.0 requires), else the protobuf as it is. Samples later than
/// `now_ms + future_ms_max` fail the request.
pub fn decode(
    body: &[u8],
    snappy: bool,
    now_ms: i64,
    future_ms_max: i64,
) -> Result<RemoteWriteDecoded, IngestError> {
    let decompressed;
    let raw = if snappy {
        decompressed = decompress_snappy_block(body, REMOTE_WRITE_DECOMPRESSED_BYTES_MAX, OP)?;
        decompressed.as_slice()
    } else if body.len() > REMOTE_WRITE_DECOMPRESSED_BYTES_MAX {
        return Err(IngestError::BodyTooLarge {
            op: OP,
            bytes: body.len(),
            limit_bytes: REMOTE_WRITE_DECOMPRESSED_BYTES_MAX,
        });
    } else {
        body
    };
    let request = WriteRequest::decode(raw).map_err(|e| IngestError::Malformed {
        op: "decode remote-write request: protobuf",
        reason: e.to_string(),
    })?;
    from_request(request, now_ms, future_ms_max)
}

/// Converts a decoded request, taking its strings without copying them.
pub fn from_request(
    request: WriteRequest,
    now_ms: i64,
    future_ms_max: i64,
) -> Result<RemoteWriteDecoded, IngestError> {
    let latest_ms = now_ms.saturating_add(future_ms_max);
    let mut out = RemoteWriteDecoded::default();
    out.metrics.series.reserve(request.timeseries.len());
    for series in request.timeseries {
        out.native_histogram_samples_skipped += series.histograms.len() as u64;
        let mut pairs: Vec<(String, String)> = series
            .labels
            .into_iter()
            .map(|l| (l.name, l.value))
            .collect();
        let labels = series_labels(&mut pairs).map_err(|reason| {
            IngestError::record(format!("{OP}: series {}", pairs_text(&pairs)), reason)
        })?;
        let at = || format!("{OP}: series {}", excerpt(&labels.to_string(), 300));
        let mut samples = Vec::with_capacity(series.samples.len());
        for s in series.samples {
            if s.timestamp > latest_ms {
                let reason = RecordError::SampleTooFarInFuture {
                    timestamp_ms: s.timestamp,
                    now_ms,
                    future_ms_max,
                };
                return Err(IngestError::record(at(), reason));
            }
            samples.push(Sample {
                timestamp_ms: s.timestamp,
                value: s.value,
            });
        }
        let mut exemplars = Vec::with_capacity(series.exemplars.len());
        for (i, e) in series.exemplars.into_iter().enumerate() {
            let pairs = e.labels.into_iter().map(|l| (l.name, l.value)).collect();
            match exemplar_labels(pairs) {
                Ok(Some(labels)) => exemplars.push(Exemplar {
                    labels,
                    value: e.value,
                    timestamp_ms: e.timestamp,
                }),
                Ok(None) => out.exemplars_dropped += 1,
                Err(reason) => {
                    return Err(IngestError::record(
                        format!("{}, exemplar {}", at(), i + 1),
                        reason,
                    ));
                }
            }
        }
        if samples.is_empty() && exemplars.is_empty() {
            continue;
        }
        out.metrics.series.push(SeriesSamples {
            labels,
            samples,
            exemplars,
        });
    }
    out.metrics.metadata = request
        .metadata
        .into_iter()
        .filter(|m| is_valid_metric_name(&m.metric_family_name))
        .map(|m| MetricMetadata {
            metric_type: metric_type(m.r#type),
            metric_family: m.metric_family_name,
            help: m.help,
            unit: m.unit,
        })
        .collect();
    Ok(out)
}

/// Encodes a request as a remote-write body (protobuf in a snappy block), as a sender would;
/// for tests and benchmarks. Fails only for a request too large for one snappy block.
pub fn encode(request: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&request.encode_to_vec())
}

/// A request holding `series`, each a label set and its samples; for tests and benchmarks.
pub fn request_from_series(series: &[SeriesSamples]) -> WriteRequest {
    let label = |labels: &Labels| {
        labels
            .iter()
            .map(|(name, value)| proto::Label {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect()
    };
    WriteRequest {
        timeseries: series
            .iter()
            .map(|s| proto::TimeSeries {
                labels: label(&s.labels),
                samples: s
                    .samples
                    .iter()
                    .map(|s| proto::Sample {
                        value: s.value,
                        timestamp: s.timestamp_ms,
                    })
                    .collect(),
                exemplars: s
                    .exemplars
                    .iter()
                    .map(|e| proto::Exemplar {
                        labels: label(&e.labels),
                        value: e.value,
                        timestamp: e.timestamp_ms,
                    })
                    .collect(),
                histograms: vec![],
            })
            .collect(),
        metadata: vec![],
    }
}

/// The model's metric type of a `MetricMetadata.MetricType` number.
fn metric_type(number: i32) -> MetricType {
    match proto::MetricType::try_from(number) {
        Ok(proto::MetricType::Counter) => MetricType::Counter,
        Ok(proto::MetricType::Gauge) => MetricType::Gauge,
        Ok(proto::MetricType::Histogram) => MetricType::Histogram,
        Ok(proto::MetricType::GaugeHistogram) => MetricType::GaugeHistogram,
        Ok(proto::MetricType::Summary) => MetricType::Summary,
        Ok(proto::MetricType::Info) => MetricType::Info,
        Ok(proto::MetricType::StateSet) => MetricType::StateSet,
        Ok(proto::MetricType::Unknown) | Err(_) => MetricType::Unknown,
    }
}
