//! Property tests of the metrics decoders: no input panics one, errors are only `BadData` or
//! `TooLarge`, whatever decodes keeps the series invariants of `metrics_common`, and
//! generated well-formed payloads decode to what was generated.

use proptest::prelude::*;
use prost::Message;
#[path = "support/mutate.rs"]
mod mutate;
use mutate::{mutate, mutations};
use sightline_ingest::metrics_common::{
    DecodedMetrics, EXEMPLAR_LABEL_CHARS_MAX, LABEL_NAME_BYTES_MAX, LABEL_VALUE_BYTES_MAX,
    SERIES_LABELS_MAX, is_valid_metric_name,
};
use sightline_ingest::prom_text::{Parser, TextFormat, complete_lines_len};
use sightline_ingest::{ErrorKind, IngestError, otlp, prom_text, remote_write};
use sightline_model::labels::is_valid_label_name;
use sightline_model::{Labels, Sample, SeriesSamples};

const NOW_MS: i64 = 1_705_314_660_000;

const PROM_FIXTURE: &[u8] = include_bytes!("data/prom_text/python_client.prom");
const OM_FIXTURE: &[u8] = include_bytes!("data/prom_text/python_client.om.txt");
const HANDWRITTEN_FIXTURE: &[u8] = include_bytes!("data/prom_text/handwritten.prom");
const REMOTE_WRITE_FIXTURE: &[u8] = include_bytes!("data/remote_write/write_request.pb.snappy");
const OTLP_PB_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_metrics.pb");
const OTLP_JSON_FIXTURE: &[u8] = include_bytes!("data/otlp/python_sdk_metrics.protojson.json");

const CONTENT_TYPES: [Option<&str>; 3] = [
    None,
    Some("text/plain; version=0.0.4"),
    Some("application/openmetrics-text"),
];

/// Checks what every decoded batch promises the store.
fn check_metrics(decoded: &DecodedMetrics) {
    for s in &decoded.series {
        assert!(!s.samples.is_empty() || !s.exemplars.is_empty());
        assert!(s.labels.len() <= SERIES_LABELS_MAX);
        let name = s.labels.get("__name__").expect("series has a name");
        assert!(is_valid_metric_name(name), "metric name {name:?}");
        for (name, value) in s.labels.iter() {
            assert!(is_valid_label_name(name), "label name {name:?}");
            assert!(name.len() <= LABEL_NAME_BYTES_MAX);
            assert!(!value.is_empty() && value.len() <= LABEL_VALUE_BYTES_MAX);
        }
        for e in &s.exemplars {
            let chars: usize = e
                .labels
                .iter()
                .map(|(n, v)| n.chars().count() + v.chars().count())
                .sum();
            assert!(chars <= EXEMPLAR_LABEL_CHARS_MAX, "exemplar {}", e.labels);
            assert!(e.labels.iter().all(|(n, _)| is_valid_label_name(n)));
        }
    }
}

fn check_error(e: &IngestError) {
    assert!(matches!(e.kind(), ErrorKind::BadData | ErrorKind::TooLarge));
    let text = e.to_string();
    assert!(!text.is_empty() && !text.ends_with('.'), "message {text:?}");
}

fn check_outcome(result: Result<DecodedMetrics, IngestError>) {
    match result {
        Ok(decoded) => check_metrics(&decoded),
        Err(e) => check_error(&e),
    }
}

fn decode_all(bytes: &[u8]) {
    for content_type in CONTENT_TYPES {
        check_outcome(prom_text::parse(bytes, content_type, NOW_MS));
    }
    for snappy in [true, false] {
        check_outcome(
            remote_write::decode(bytes, snappy, NOW_MS, 600_000, &Default::default())
                .map(|d| d.metrics),
        );
    }
    check_outcome(otlp::metrics::decode_protobuf(bytes).map(|d| d.metrics));
    check_outcome(otlp::metrics::decode_json(bytes).map(|d| d.metrics));
}

fn snappy_block(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("compress")
}

fn remote_write_raw() -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(REMOTE_WRITE_FIXTURE)
        .expect("fixture is a snappy block")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
        check_outcome(remote_write::decode(&snappy_block(&bytes), true, NOW_MS, 0, &Default::default()).map(|d| d.metrics));
    }

    #[test]
    fn arbitrary_exposition_text_never_panics(text in "[a-z_:{}=\",\\\\# \t\n0-9.eE+\\-]{0,400}") {
        decode_all(text.as_bytes());
    }

    #[test]
    fn mutated_text_never_panics(edits in mutations()) {
        for fixture in [PROM_FIXTURE, OM_FIXTURE, HANDWRITTEN_FIXTURE] {
            for content_type in CONTENT_TYPES {
                check_outcome(prom_text::parse(&mutate(fixture, &edits), content_type, NOW_MS));
            }
        }
    }

    #[test]
    fn mutated_remote_write_never_panics(edits in mutations()) {
        let decode = |body: &[u8]| remote_write::decode(body, true, NOW_MS, 600_000, &Default::default()).map(|d| d.metrics);
        check_outcome(decode(&mutate(REMOTE_WRITE_FIXTURE, &edits)));
        // Mutating inside the compression reaches the protobuf decoder and the validation.
        check_outcome(decode(&snappy_block(&mutate(&remote_write_raw(), &edits))));
    }

    #[test]
    fn mutated_otlp_metrics_never_panic(edits in mutations()) {
        check_outcome(otlp::metrics::decode_protobuf(&mutate(OTLP_PB_FIXTURE, &edits)).map(|d| d.metrics));
        check_outcome(otlp::metrics::decode_json(&mutate(OTLP_JSON_FIXTURE, &edits)).map(|d| d.metrics));
    }

    /// Any cut into two chunks at a line end parses as the whole body does.
    #[test]
    fn chunked_text_parses_like_whole(cut in 0usize..2000) {
        for (fixture, format) in [(HANDWRITTEN_FIXTURE, TextFormat::Prometheus), (OM_FIXTURE, TextFormat::OpenMetrics)] {
            let whole = prom_text::parse(fixture, None, NOW_MS).expect("valid fixture");
            let first = complete_lines_len(&fixture[..cut.min(fixture.len())]);
            let mut parser = Parser::new(format, NOW_MS);
            let mut out = DecodedMetrics::default();
            parser.parse_chunk(&fixture[..first], &mut out).expect("first chunk");
            parser.parse_chunk(&fixture[first..], &mut out).expect("second chunk");
            parser.finish(&mut out).expect("finish");
            prop_assert_eq!(&out.metadata, &whole.metadata);
            prop_assert_eq!(out.series.len(), whole.series.len());
            for (a, b) in out.series.iter().zip(&whole.series) {
                prop_assert_eq!(&a.labels, &b.labels);
                prop_assert_eq!(format!("{:?}", a.samples), format!("{:?}", b.samples));
                prop_assert_eq!(&a.exemplars, &b.exemplars);
            }
        }
    }
}

/// Generated series: a name, up to 4 labels with any values, samples with any value.
fn series() -> impl Strategy<Value = SeriesSamples> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,8}", "[^\u{0}]{1,12}", 0..4),
        prop::collection::vec((any::<i64>(), any::<f64>()), 1..4),
    )
        .prop_map(|(name, labels, samples)| SeriesSamples {
            labels: Labels::from_pairs(labels.into_iter().chain([("__name__".to_string(), name)])),
            samples: samples
                .into_iter()
                .map(|(timestamp_ms, value)| Sample {
                    timestamp_ms,
                    value,
                })
                .collect(),
            exemplars: vec![],
        })
}

/// Series as Prometheus text, one line per sample, values escaped.
fn render_text(series: &[SeriesSamples]) -> String {
    let mut text = String::new();
    for s in series {
        let name = s.labels.get("__name__").unwrap_or_default();
        let labels: Vec<String> = s
            .labels
            .iter()
            .filter(|(n, _)| *n != "__name__")
            .map(|(n, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{n}=\"{v}\"")
            })
            .collect();
        for sample in &s.samples {
            let value = match sample.value {
                v if v.is_nan() => "NaN".to_string(),
                v if v.is_infinite() => if v > 0.0 { "+Inf" } else { "-Inf" }.to_string(),
                v => format!("{v:?}"),
            };
            text.push_str(&format!(
                "{name}{{{}}} {value} {}\n",
                labels.join(","),
                sample.timestamp_ms
            ));
        }
    }
    text
}

/// Samples compared bit for bit (NaN equals NaN).
fn sample_bits(decoded: &[SeriesSamples]) -> Vec<(String, i64, u64)> {
    decoded
        .iter()
        .flat_map(|s| {
            s.samples.iter().map(move |x| {
                // NaN equals NaN; -0.0 equals 0.0 (protobuf does not send either zero).
                let bits = if x.value.is_nan() {
                    1
                } else {
                    (x.value + 0.0).to_bits()
                };
                (s.labels.to_string(), x.timestamp_ms, bits)
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Series printed as Prometheus text parse back to themselves.
    #[test]
    fn text_round_trips(series in prop::collection::vec(series(), 0..5)) {
        let text = render_text(&series);
        let decoded = prom_text::parse(text.as_bytes(), Some("text/plain"), NOW_MS).expect("valid text");
        check_metrics(&decoded);
        prop_assert_eq!(sample_bits(&decoded.series), sample_bits(&series));
    }

    /// Series sent by remote write decode to themselves.
    #[test]
    fn remote_write_round_trips(series in prop::collection::vec(series(), 0..5)) {
        let body = remote_write::encode(&remote_write::request_from_series(&series)).expect("encode");
        let decoded = remote_write::decode(&body, true, NOW_MS, i64::MAX, &Default::default()).expect("valid request");
        check_metrics(&decoded.metrics);
        prop_assert_eq!(sample_bits(&decoded.metrics.series), sample_bits(&series));
    }
}

mod otlp_round_trip {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        prop::collection::vec(
            (
                prop_oneof![Just("service.name".to_string()), "[a-z.]{1,10}"],
                "[a-z0-9]{0,8}",
            ),
            0..4,
        )
        .prop_map(|kvs| {
            kvs.into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(value)),
                    }),
                    key_strindex: 0,
                })
                .collect()
        })
    }

    fn number_point() -> impl Strategy<Value = NumberDataPoint> {
        (
            attributes(),
            0..2_000_000_000_000_000_000u64,
            any::<i32>(),
            0..2u32,
        )
            .prop_map(
                |(attributes, time_unix_nano, value, flags)| NumberDataPoint {
                    attributes,
                    time_unix_nano,
                    // Short decimals, which serde_json reads back exactly.
                    value: Some(NumberValue::AsDouble(f64::from(value) / 1000.0)),
                    flags,
                    ..Default::default()
                },
            )
    }

    fn histogram_point() -> impl Strategy<Value = HistogramDataPoint> {
        (
            attributes(),
            1..2_000_000_000_000_000_000u64,
            prop::collection::vec(0..1000u64, 0..5),
        )
            .prop_map(|(attributes, time_unix_nano, counts)| HistogramDataPoint {
                attributes,
                time_unix_nano,
                count: counts.iter().sum(),
                explicit_bounds: (1..counts.len()).map(|i| i as f64 * 0.25).collect(),
                bucket_counts: counts,
                ..Default::default()
            })
    }

    fn metric() -> impl Strategy<Value = Metric> {
        let data = prop_oneof![
            prop::collection::vec(number_point(), 0..3)
                .prop_map(|data_points| Data::Gauge(Gauge { data_points })),
            (
                prop::collection::vec(number_point(), 0..3),
                0..3i32,
                any::<bool>()
            )
                .prop_map(|(data_points, aggregation_temporality, is_monotonic)| {
                    Data::Sum(Sum {
                        data_points,
                        aggregation_temporality,
                        is_monotonic,
                    })
                }),
            (prop::collection::vec(histogram_point(), 0..3), 0..3i32).prop_map(
                |(data_points, aggregation_temporality)| Data::Histogram(Histogram {
                    data_points,
                    aggregation_temporality,
                })
            ),
        ];
        (
            "[a-z.]{0,12}",
            prop_oneof![Just(""), Just("s"), Just("1"), Just("By/s")],
            data,
        )
            .prop_map(|(name, unit, data)| Metric {
                name,
                unit: unit.to_string(),
                data: Some(data),
                ..Default::default()
            })
    }

    fn request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
        prop::collection::vec((attributes(), prop::collection::vec(metric(), 0..4)), 0..3).prop_map(
            |resources| ExportMetricsServiceRequest {
                resource_metrics: resources
                    .into_iter()
                    .map(|(attributes, metrics)| ResourceMetrics {
                        resource: Some(Resource {
                            attributes,
                            ..Default::default()
                        }),
                        scope_metrics: vec![ScopeMetrics {
                            metrics,
                            ..Default::default()
                        }],
                        schema_url: String::new(),
                    })
                    .collect(),
            },
        )
    }

    fn point_count(request: &ExportMetricsServiceRequest) -> i64 {
        request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                _ => 0,
            } as i64)
            .sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Protobuf, OTLP/JSON (as opentelemetry-proto writes it) and the gRPC path agree,
        /// and every point is either converted or counted as rejected.
        #[test]
        fn protobuf_json_and_grpc_agree(req in request()) {
            let direct = otlp::metrics::from_request(req.clone());
            check_metrics(&direct.metrics);
            let protobuf = otlp::metrics::decode_protobuf(&req.encode_to_vec()).expect("valid protobuf");
            let json_text = serde_json::to_string(&req).expect("serialise request");
            let json = otlp::metrics::decode_json(json_text.as_bytes()).expect("valid json");
            // Debug text, as stale markers are NaN, which is not equal to itself.
            let text = |d: &otlp::metrics::OtlpMetricsDecoded| format!("{d:?}");
            prop_assert_eq!(text(&direct), text(&protobuf));
            prop_assert_eq!(text(&direct), text(&json), "json: {}", json_text);
            prop_assert!(direct.rejected_data_points <= point_count(&req));
            prop_assert_eq!(direct.rejected_data_points > 0, !direct.error_message.is_empty());
        }
    }
}
