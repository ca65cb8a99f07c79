//! OTLP names to Prometheus names, as the OpenTelemetry–Prometheus compatibility spec and
//! the OpenTelemetry collector's and Prometheus' translators do it.
//!
//! Metric names: the name is cut into words at every character outside `[a-zA-Z0-9:]`; the
//! unit, converted from UCUM (`s` → `seconds`, `By` → `bytes`, `m/s` →
//! `meters_per_second`, annotations such as `{request}` dropped), is appended unless a word
//! of the name already is it; monotonic sums get `_total` (once, at the end), gauges of unit
//! `1` get `_ratio`; the words are joined with `_`, and a leading digit gets a `_`.
//!
//! Attribute keys: every character outside `[a-zA-Z0-9_]` becomes `_`; a leading digit gets
//! `key_` and a leading `__` (reserved for Prometheus' own labels) gets `key`. Keys that
//! become the same label have their values joined with `;`, in the order of the original
//! keys, as the spec says.

use crate::otlp::logs::any_value_text;
use opentelemetry_proto::tonic::common::v1::KeyValue;

/// UCUM units and their Prometheus words.
const UNIT_WORDS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tebibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("B", "bytes"),
    ("KB", "kilobytes"),
    ("MB", "megabytes"),
    ("GB", "gigabytes"),
    ("TB", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
    ("$", "dollars"),
];

/// UCUM units after a `/` and their Prometheus words (singular: `per_second`).
const PER_UNIT_WORDS: &[(&str, &str)] = &[
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

/// What a metric becomes, for its name's type suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// A monotonic sum: `_total`.
    Counter,
    /// A gauge: `_ratio` for unit `1`.
    Gauge,
    /// Anything else: no type suffix here.
    Other,
}

/// A metric's Prometheus name and the unit its name carries (`seconds`, `bytes_per_second`,
/// `ratio`; empty for none). `None` when nothing of the name is left.
pub(crate) fn metric_name(name: &str, unit: &str, kind: NameKind) -> Option<(String, String)> {
    let words: Vec<&str> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return None;
    }
    let mut unit_words: Vec<String> = Vec::new();
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main.trim(), Some(per.trim())),
        None => (unit.trim(), None),
    };
    let main_word = unit_word(main, UNIT_WORDS);
    if let Some(word) = &main_word {
        unit_words.push(word.clone());
    }
    let per_word = per.and_then(|p| unit_word(p, PER_UNIT_WORDS));
    if let Some(word) = &per_word {
        unit_words.push("per".into());
        unit_words.push(word.clone());
    }
    let mut owned: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if let Some(word) = main_word
        && !words.contains(&word.as_str())
    {
        owned.push(word);
    }
    if let Some(word) = per_word
        && !words.contains(&word.as_str())
    {
        owned.push("per".into());
        owned.push(word);
    }
    let mut unit_text = unit_words.join("_");
    match kind {
        NameKind::Counter => {
            owned.retain(|w| w != "total");
            owned.push("total".into());
        }
        NameKind::Gauge if unit.trim() == "1" => {
            owned.retain(|w| w != "ratio");
            owned.push("ratio".into());
            unit_text = "ratio".into();
        }
        NameKind::Gauge | NameKind::Other => {}
    }
    let mut joined = owned.join("_");
    if joined.is_empty() {
        return None;
    }
    if joined.as_bytes()[0].is_ascii_digit() {
        joined.insert(0, '_');
    }
    Some((joined, unit_text))
}

/// The Prometheus word of one UCUM unit: from `table`, else the unit's alphanumeric runs
/// joined with `_`; `None` for no unit or an annotation (`{packet}`).
fn unit_word(unit: &str, table: &[(&str, &str)]) -> Option<String> {
    if unit.is_empty() || unit.contains(['{', '}']) {
        return None;
    }
    let mapped = table
        .iter()
        .find(|(ucum, _)| *ucum == unit)
        .map_or(unit, |(_, word)| *word);
    let cleaned = mapped
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    (!cleaned.is_empty()).then_some(cleaned)
}

/// A label name for an attribute key; `None` for an empty key.
pub(crate) fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.as_bytes()[0].is_ascii_digit() {
        name.insert_str(0, "key_");
    } else if name.starts_with("__") {
        name.insert_str(0, "key");
    }
    Some(name)
}

/// Attributes as label pairs, sorted by name: keys sanitised, values as text, keys that
/// become one name joined with `;` in the order of their original keys. Attributes without
/// a text value are left out.
pub(crate) fn attribute_labels<'a, I>(attributes: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = &'a KeyValue>,
{
    let mut named: Vec<(String, &str, String)> = attributes
        .into_iter()
        .filter_map(|kv| {
            let name = label_name(&kv.key)?;
            let value = any_value_text(kv.value.clone()?)?;
            Some((name, kv.key.as_str(), value))
        })
        .collect();
    named.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut out: Vec<(String, String)> = Vec::with_capacity(named.len());
    for (name, _, value) in named {
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(';');
                joined.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

/// Sets `name` to `value` in `pairs`, replacing an earlier value.
pub(crate) fn set_label(pairs: &mut Vec<(String, String)>, name: &str, value: String) {
    match pairs.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => pairs.push((name.to_string(), value)),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    #[test]
    fn metric_names() {
        let check = |name: &str, unit: &str, kind: NameKind, want: Option<(&str, &str)>| {
            let got = metric_name(name, unit, kind);
            let want = want.map(|(n, u)| (n.to_string(), u.to_string()));
            assert_eq!(got, want, "{name} {unit} {kind:?}");
        };
        use NameKind::{Counter, Gauge, Other};
        check(
            "http.server.request.duration",
            "s",
            Other,
            Some(("http_server_request_duration_seconds", "seconds")),
        );
        check(
            "system.filesystem.usage",
            "By",
            Gauge,
            Some(("system_filesystem_usage_bytes", "bytes")),
        );
        check(
            "system.network.dropped",
            "{packets}",
            Counter,
            Some(("system_network_dropped_total", "")),
        );
        check(
            "system.network.dropped",
            "packets",
            Gauge,
            Some(("system_network_dropped_packets", "packets")),
        );
        check(
            "system.memory.utilization",
            "1",
            Gauge,
            Some(("system_memory_utilization_ratio", "ratio")),
        );
        check("requests", "1", Counter, Some(("requests_total", "")));
        check(
            "storage.filesystem.utilization",
            "%",
            Gauge,
            Some(("storage_filesystem_utilization_percent", "percent")),
        );
        check(
            "astro.light.speed",
            "m/s",
            Gauge,
            Some(("astro_light_speed_meters_per_second", "meters_per_second")),
        );
        check(
            "crypto.dogecoin.value",
            "$",
            Gauge,
            Some(("crypto_dogecoin_value_dollars", "dollars")),
        );
        check(
            "system.processes.created",
            "",
            Counter,
            Some(("system_processes_created_total", "")),
        );
        check("requests_total", "", Counter, Some(("requests_total", "")));
        check("total.requests", "", Counter, Some(("requests_total", "")));
        check(
            "process.cpu.time.seconds",
            "s",
            Counter,
            Some(("process_cpu_time_seconds_total", "seconds")),
        );
        check(
            "(lambda).function.executions(#)",
            "",
            Other,
            Some(("lambda_function_executions", "")),
        );
        check("2xx.responses", "", Gauge, Some(("_2xx_responses", "")));
        check(
            "rpc:latency",
            "ms",
            Other,
            Some(("rpc:latency_milliseconds", "milliseconds")),
        );
        check("...", "s", Gauge, None);
        check("", "", Counter, None);
    }

    #[test]
    fn label_names() {
        let check = |key: &str, want: Option<&str>| {
            assert_eq!(label_name(key).as_deref(), want, "{key}");
        };
        check("name", Some("name"));
        check("host.name", Some("host_name"));
        check("name (of the host)", Some("name__of_the_host_"));
        check("2 cents", Some("key_2_cents"));
        check("__name__", Some("key__name__"));
        check("_name", Some("_name"));
        check("ünicode", Some("_nicode"));
        check("", None);
    }

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        }
    }

    #[test]
    fn attributes_collide_into_one_label() {
        let attributes = [
            kv("http.method", Value::StringValue("GET".into())),
            kv("http_method", Value::StringValue("POST".into())),
            kv("ok", Value::BoolValue(true)),
            kv("count", Value::IntValue(3)),
            kv("", Value::StringValue("dropped".into())),
        ];
        let got = attribute_labels(&attributes);
        let want: Vec<(String, String)> =
            [("count", "3"), ("http_method", "GET;POST"), ("ok", "true")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(got, want);
    }
}
