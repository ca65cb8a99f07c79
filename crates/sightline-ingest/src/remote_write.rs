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
use sightline_model::interner::encoded_hash;
use sightline_model::labels::pairs_hash;
use sightline_model::{
    Exemplar, LabelInterner, Labels, MetricMetadata, MetricType, Sample, SeriesSamples,
};

use crate::compression::decompress_snappy_block;
use crate::error::{IngestError, RecordError, excerpt};
use crate::metrics_common::{
    DecodedMetrics, exemplar_labels, is_valid_metric_name, pairs_text, series_labels,
};
use crate::protowire::{Reader, WireError, WireType};
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
/// `now_ms + future_ms_max` fail the request. Label sets are looked up in, and new ones
/// added to, `interner`.
pub fn decode(
    body: &[u8],
    snappy: bool,
    now_ms: i64,
    future_ms_max: i64,
    interner: &LabelInterner,
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
    decode_protobuf(raw, now_ms, future_ms_max, interner)
}

fn malformed(e: WireError) -> IngestError {
    IngestError::Malformed {
        op: "decode remote-write request: protobuf",
        reason: e.to_string(),
    }
}

/// Decodes an uncompressed `WriteRequest` straight from its bytes (see [`crate::protowire`]
/// for why not through `prost`): label pairs are read as slices of `raw`, and a series
/// whose labels the interner holds already costs no allocation but its samples.
pub fn decode_protobuf(
    raw: &[u8],
    now_ms: i64,
    future_ms_max: i64,
    interner: &LabelInterner,
) -> Result<RemoteWriteDecoded, IngestError> {
    let latest_ms = now_ms.saturating_add(future_ms_max);
    let mut out = RemoteWriteDecoded::default();
    let mut series = RawSeries::default();
    let mut sorted = Vec::new();
    let mut r = Reader::new(raw);
    while let Some((field, wire)) = r.field().map_err(malformed)? {
        match field {
            1 => {
                r.expect(field, wire, WireType::Len).map_err(malformed)?;
                series
                    .read(r.message().map_err(malformed)?)
                    .map_err(malformed)?;
                out.native_histogram_samples_skipped += series.histograms;
                let labels = series_labels_of(&mut series, &mut sorted, interner)?;
                let at = || format!("{OP}: series {}", excerpt(&labels.to_string(), 300));
                if let Some(s) = series.samples.iter().find(|s| s.timestamp_ms > latest_ms) {
                    let reason = RecordError::SampleTooFarInFuture {
                        timestamp_ms: s.timestamp_ms,
                        now_ms,
                        future_ms_max,
                    };
                    return Err(IngestError::record(at(), reason));
                }
                let mut exemplars = Vec::with_capacity(series.exemplars.len());
                for (i, e) in series.exemplars.iter().enumerate() {
                    let (pairs, value, timestamp_ms) = read_exemplar(*e).map_err(malformed)?;
                    match exemplar_labels(pairs) {
                        Ok(Some(labels)) => exemplars.push(Exemplar {
                            labels,
                            value,
                            timestamp_ms,
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
                if series.samples.is_empty() && exemplars.is_empty() {
                    continue;
                }
                out.metrics.series.push(SeriesSamples {
                    labels,
                    samples: std::mem::take(&mut series.samples),
                    exemplars,
                });
            }
            3 => {
                r.expect(field, wire, WireType::Len).map_err(malformed)?;
                let m = read_metadata(r.message().map_err(malformed)?).map_err(malformed)?;
                if is_valid_metric_name(&m.metric_family) {
                    out.metrics.metadata.push(m);
                }
            }
            _ => r.skip(field, wire).map_err(malformed)?,
        }
    }
    Ok(out)
}

/// One `TimeSeries` as read off the wire, its strings borrowed; reused from series to
/// series so its buffers are allocated once a request.
#[derive(Default)]
struct RawSeries<'a> {
    /// Each `Label` message, not parsed yet.
    label_fields: Vec<&'a [u8]>,
    /// The label fields' bytes, keys included, when they are one run with no other field
    /// among them (as senders write them): what the interner knows the set by.
    encoded_labels: Option<&'a [u8]>,
    /// The parsed pairs, once [`RawSeries::parse_labels`] ran.
    labels: Vec<(&'a str, &'a str)>,
    samples: Vec<Sample>,
    exemplars: Vec<Reader<'a>>,
    histograms: u64,
}

impl<'a> RawSeries<'a> {
    fn read(&mut self, mut r: Reader<'a>) -> Result<(), WireError> {
        self.label_fields.clear();
        self.labels.clear();
        self.samples.clear();
        self.exemplars.clear();
        self.histograms = 0;
        // The run of label fields: where it starts and ends, and whether another field
        // came between two of them.
        let (mut run, mut broken, mut last_was_label) = (None::<(usize, usize)>, false, false);
        loop {
            let start = r.offset();
            let Some((field, wire)) = r.field()? else {
                break;
            };
            if field == 1 {
                r.expect(field, wire, WireType::Len)?;
                self.label_fields.push(r.bytes()?);
                match &mut run {
                    None => run = Some((start, r.offset())),
                    Some((_, end)) if last_was_label => *end = r.offset(),
                    Some(_) => broken = true,
                }
                last_was_label = true;
                continue;
            }
            last_was_label = false;
            match field {
                2 => {
                    r.expect(field, wire, WireType::Len)?;
                    let mut s = r.message()?;
                    let mut sample = Sample {
                        timestamp_ms: 0,
                        value: 0.0,
                    };
                    while let Some((field, wire)) = s.field()? {
                        match field {
                            1 => {
                                s.expect(field, wire, WireType::Fixed64)?;
                                sample.value = s.double()?;
                            }
                            2 => {
                                s.expect(field, wire, WireType::Varint)?;
                                sample.timestamp_ms = s.varint()? as i64;
                            }
                            _ => s.skip(field, wire)?,
                        }
                    }
                    self.samples.push(sample);
                }
                3 => {
                    r.expect(field, wire, WireType::Len)?;
                    self.exemplars.push(r.message()?);
                }
                4 => {
                    r.expect(field, wire, WireType::Len)?;
                    r.bytes()?;
                    self.histograms += 1;
                }
                _ => r.skip(field, wire)?,
            }
        }
        self.encoded_labels = match run {
            Some((start, end)) if !broken => Some(r.span(start, end)),
            _ => None,
        };
        Ok(())
    }

    /// Parses the label fields into `labels`.
    fn parse_labels(&mut self) -> Result<(), WireError> {
        self.labels.clear();
        for field in &self.label_fields {
            self.labels.push(read_label(Reader::new(field))?);
        }
        Ok(())
    }
}

/// A `Label`: name and value.
fn read_label(mut r: Reader<'_>) -> Result<(&str, &str), WireError> {
    let (mut name, mut value) = ("", "");
    while let Some((field, wire)) = r.field()? {
        match field {
            1 => {
                r.expect(field, wire, WireType::Len)?;
                name = r.str()?;
            }
            2 => {
                r.expect(field, wire, WireType::Len)?;
                value = r.str()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((name, value))
}

/// An `Exemplar`: its label pairs, value and timestamp.
#[allow(clippy::type_complexity)]
fn read_exemplar(mut r: Reader<'_>) -> Result<(Vec<(String, String)>, f64, i64), WireError> {
    let (mut pairs, mut value, mut timestamp) = (Vec::new(), 0.0, 0);
    while let Some((field, wire)) = r.field()? {
        match field {
            1 => {
                r.expect(field, wire, WireType::Len)?;
                let (n, v) = read_label(r.message()?)?;
                pairs.push((n.to_string(), v.to_string()));
            }
            2 => {
                r.expect(field, wire, WireType::Fixed64)?;
                value = r.double()?;
            }
            3 => {
                r.expect(field, wire, WireType::Varint)?;
                timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((pairs, value, timestamp))
}

/// A `MetricMetadata`.
fn read_metadata(mut r: Reader<'_>) -> Result<MetricMetadata, WireError> {
    let mut m = MetricMetadata::default();
    while let Some((field, wire)) = r.field()? {
        match field {
            1 => {
                r.expect(field, wire, WireType::Varint)?;
                m.metric_type = metric_type(r.varint()? as i32);
            }
            2 => {
                r.expect(field, wire, WireType::Len)?;
                m.metric_family = r.str()?.to_string();
            }
            4 => {
                r.expect(field, wire, WireType::Len)?;
                m.help = r.str()?.to_string();
            }
            5 => {
                r.expect(field, wire, WireType::Len)?;
                m.unit = r.str()?.to_string();
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(m)
}

/// The shared label set of a series: found by its encoded labels when the interner knows
/// them (no parsing at all), else by its pairs, and then remembered by its encoding.
fn series_labels_of<'a>(
    series: &mut RawSeries<'a>,
    sorted: &mut Vec<(&'a str, &'a str)>,
    interner: &LabelInterner,
) -> Result<Labels, IngestError> {
    let encoded = series.encoded_labels.map(|b| (encoded_hash(b), b));
    if let Some((hash, bytes)) = encoded
        && let Some(found) = interner.get_encoded(hash, bytes)
    {
        return Ok(found);
    }
    series.parse_labels().map_err(malformed)?;
    let labels = resolve_labels(&series.labels, sorted, interner)?;
    if let Some((hash, bytes)) = encoded {
        interner.remember_encoded(hash, bytes, &labels);
    }
    Ok(labels)
}

/// The shared label set of a series' pairs (in the order the request gave them).
///
/// A set the interner holds is valid already, so when the pairs (sorted, if the sender
/// did not sort them) are exactly such a set, it is the answer with no check and no copy.
/// Anything else (a new series, an empty value to drop, a duplicate or invalid name) goes
/// through the owned checks of [`series_labels`], which name what was wrong.
fn resolve_labels<'a>(
    pairs: &[(&'a str, &'a str)],
    sorted: &mut Vec<(&'a str, &'a str)>,
    interner: &LabelInterner,
) -> Result<Labels, IngestError> {
    let ascending = |p: &[(&str, &str)]| p.windows(2).all(|w| w[0].0 < w[1].0);
    let key: &[(&str, &str)] = if ascending(pairs) {
        pairs
    } else {
        sorted.clear();
        sorted.extend_from_slice(pairs);
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        sorted
    };
    if ascending(key)
        && key.iter().all(|(_, v)| !v.is_empty())
        && let Some(found) = interner.get(pairs_hash(key), key)
    {
        return Ok(found);
    }
    let mut owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let labels = series_labels(&mut owned).map_err(|reason| {
        IngestError::record(format!("{OP}: series {}", pairs_text(&owned)), reason)
    })?;
    Ok(interner.intern(labels))
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
