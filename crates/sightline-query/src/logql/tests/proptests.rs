//! Property tests: the parser never panics, whatever the input; what it accepts prints back
//! to a query that parses to the same thing; and evaluation of anything it accepts never
//! panics either.

use proptest::prelude::*;

use super::{SEC, rec_md, source, tenant};
use crate::logql::{Evaluator, MemorySource, QueryParams, parse};

/// Valid queries covering every construct, to be mutated.
const CORPUS: &[&str] = &[
    r#"{app="api", env!="dev", pod=~"p-.*", ns!~`kube.*`}"#,
    r#"{app="api"} |= "error" != "debug" |~ "(?i)time(out)?" !~ "\\d+" |= "a" or "b""#,
    r#"{app="api"} | json | level="error" and status >= 500 or took > 250ms, size <= 1KB"#,
    r#"{app="api"} | json first="a.b[0]", ua="req[\"UA\"]" | logfmt --strict --keep-empty x, y="z""#,
    r#"{app="api"} | regexp "(?P<m>\\w+)" | pattern "<ip> <_> <path>" | unpack | decolorize"#,
    r#"{app="api"} | line_format "{{ .a | ToUpper }} {{__line__}}" | label_format b=a, c="{{.d}}""#,
    r#"{app="api"} | drop a, b="x" | keep c, d=~"y.*" | __error__="""#,
    r#"sum by (app) (rate({app="api"} |= "x" [5m] offset 1m)) / ignoring (level) group_left (team) sum(count_over_time({app="web"}[5m]))"#,
    r#"quantile_over_time(0.99, {app="api"} | logfmt | unwrap duration(took) | __error__="" [1m]) by (host)"#,
    r#"topk(3, sum_over_time({a="b"} | json | unwrap bytes(size) [1h])) > bool 2 or vector(0)"#,
    r#"-1 + 2 * 3 ^ 2 % 4 - avg without (x) (bytes_rate({a="b"}[1m])) and on (y) absent_over_time({a="c"}[1m])"#,
    r#"sort_desc(stddev(avg_over_time({a="b"} | unwrap n [1m]))) unless bottomk(1, bytes_over_time({a="b"}[1m]))"#,
];

/// Fragments that keep mutated queries close to the grammar.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[5m]",
    "[",
    "]",
    ",",
    "|",
    "|=",
    "|~",
    "!=",
    "!~",
    "=",
    "=~",
    "==",
    ">",
    ">=",
    "<",
    "<=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    " and ",
    " or ",
    " unless ",
    " bool ",
    " by (a)",
    " without (b)",
    " on (c)",
    " ignoring (d)",
    " group_left ",
    " offset 1h",
    "\"x\"",
    "`y`",
    "\"",
    "`",
    "\\",
    "1",
    "0.5",
    "-3",
    "10ms",
    "20KB",
    "1e3",
    "json",
    "logfmt",
    "unwrap",
    "unwrap n",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "{{.a}}",
    "{{",
    "}}",
    "count_over_time(",
    "rate(",
    "sum(",
    "topk(2,",
    "vector(1)",
    "__error__",
    "#",
    "\n",
    "é",
    "🙂",
    "\u{0}",
];

fn mutated_query() -> impl Strategy<Value = String> {
    let edit = (
        0usize..4,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0usize..FRAGMENTS.len(),
    );
    (0usize..CORPUS.len(), prop::collection::vec(edit, 1..4)).prop_map(|(base, edits)| {
        let mut chars: Vec<char> = CORPUS[base].chars().collect();
        for (kind, at, len, fragment) in edits {
            let at = at.index(chars.len() + 1);
            match kind {
                0 => {
                    let end = (at + len.index(8)).min(chars.len());
                    chars.drain(at..end);
                }
                1 | 2 => {
                    for (i, c) in FRAGMENTS[fragment].chars().enumerate() {
                        chars.insert(at + i, c);
                    }
                }
                _ => {
                    let end = (at + len.index(16)).min(chars.len());
                    let copy: Vec<char> = chars[at..end].to_vec();
                    for (i, c) in copy.into_iter().enumerate() {
                        chars.insert(at + i, c);
                    }
                }
            }
        }
        chars.into_iter().collect()
    })
}

fn fragment_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(0usize..FRAGMENTS.len(), 0..24).prop_map(|picks| {
        picks
            .into_iter()
            .map(|i| FRAGMENTS[i])
            .collect::<Vec<_>>()
            .join("")
    })
}

const STAGES: &[&str] = &[
    r#"|= "GET""#,
    r#"!= "debug""#,
    r#"|~ "err.*" or "warn""#,
    "| json",
    r#"| json n="a.n", m="l[0]""#,
    "| logfmt",
    "| logfmt --strict n",
    r#"| regexp "(?P<w>\\w+)""#,
    r#"| pattern "<w> <_>""#,
    r#"| n > 1 and m != "x" or (k=~"v.*", took < 1s)"#,
    "| size >= 1KB",
    r#"| line_format "{{.n}} {{ __line__ | ToLower }}""#,
    r#"| label_format k=n, j="{{.m}}""#,
    "| drop j",
    "| keep n, m, app",
    r#"| __error__="""#,
    "| decolorize",
];

fn log_expr() -> impl Strategy<Value = String> {
    let matchers = prop::sample::subsequence(
        vec![r#", env!="dev""#, r#", pod=~"p.+""#, r#", ns!~"kube.*""#],
        0..=3,
    );
    let stages = prop::collection::vec(prop::sample::select(STAGES), 0..4);
    (matchers, stages)
        .prop_map(|(m, st)| format!(r#"{{app="api"{}}} {}"#, m.concat(), st.join(" ")))
}

fn range_aggregation() -> impl Strategy<Value = String> {
    let plain = prop::sample::select(vec![
        "count_over_time",
        "rate",
        "bytes_over_time",
        "bytes_rate",
        "absent_over_time",
    ]);
    let unwrapped = prop::sample::select(vec![
        "sum_over_time",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "first_over_time",
        "last_over_time",
        "rate",
        "quantile_over_time",
    ]);
    let range = prop::sample::select(vec!["[1s]", "[30s]", "[1m] offset 1s", "[2s]"]);
    let unwrap = prop::sample::select(vec![
        "| unwrap n",
        "| unwrap duration(took)",
        r#"| unwrap bytes(size) | __error__="""#,
    ]);
    let grouping = prop::sample::select(vec!["", " by (app)", " without (n)", " by ()"]);
    prop_oneof![
        (plain, log_expr(), range.clone()).prop_map(|(op, log, r)| format!("{op}({log} {r})")),
        (unwrapped, log_expr(), unwrap, range, grouping).prop_map(|(op, log, u, r, g)| {
            let param = if op == "quantile_over_time" {
                "0.9, "
            } else {
                ""
            };
            format!("{op}({param}{log} {u} {r}){g}")
        }),
    ]
}

/// Valid metric queries built from the grammar, each expected to parse.
fn metric_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => range_aggregation(),
        1 => prop::sample::select(vec!["vector(1)", "vector(0)"]).prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        let agg = prop::sample::select(vec![
            "sum",
            "avg",
            "min",
            "max",
            "count",
            "stddev",
            "stdvar",
            "topk",
            "bottomk",
            "sort",
            "sort_desc",
        ]);
        let grouping = prop::sample::select(vec!["", "by (app)", "without (pod)"]);
        let op = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "^", "==", "!=", ">", ">=", "<", "<=", "and", "or", "unless",
        ]);
        let modifier = prop::sample::select(vec![
            "",
            "on (app)",
            "ignoring (pod)",
            "on (app) group_left ()",
            "ignoring (pod) group_right (env)",
        ]);
        prop_oneof![
            (agg, grouping.clone(), any::<bool>(), inner.clone()).prop_map(|(a, g, prefix, e)| {
                let g = if a.starts_with("sort") { "" } else { g };
                let param = if a.ends_with('k') { "2, " } else { "" };
                if prefix {
                    format!("{a} {g} ({param}{e})")
                } else {
                    format!("{a}({param}{e}) {g}")
                }
            }),
            (inner.clone(), op, modifier, inner.clone(), any::<bool>()).prop_map(
                |(l, op, m, r, boolean)| {
                    let set = matches!(op, "and" | "or" | "unless");
                    let cmp = matches!(op, "==" | "!=" | ">" | ">=" | "<" | "<=");
                    let m = if set && m.contains("group") { "" } else { m };
                    let b = if cmp && boolean { "bool" } else { "" };
                    format!("({l}) {op} {b} {m} ({r})")
                }
            ),
            (
                inner.clone(),
                prop::sample::select(vec!["+", "*", ">", "^"]),
                -5i32..5
            )
                .prop_map(|(e, op, n)| format!("({e}) {op} {n}")),
            inner.clone().prop_map(|e| format!("-({e})")),
        ]
    })
}

fn small_source() -> MemorySource {
    source(vec![
        rec_md(
            1_000,
            &[("a", "b"), ("app", "api")],
            r#"{"a":{"b":[1]},"n":"2","took":"1s"}"#,
            &[("x", "1")],
        ),
        rec_md(
            2_000,
            &[("a", "b"), ("app", "api")],
            "n=3 took=2s size=1KB",
            &[],
        ),
        rec_md(
            3_000,
            &[("a", "c"), ("app", "web")],
            "plain line",
            &[("y", "2")],
        ),
    ])
}

/// Parses; when accepted, checks the print round-trip and that evaluation does not panic.
fn exercise(query: &str, src: &MemorySource) -> Result<(), TestCaseError> {
    let Ok(expr) = parse(query) else {
        return Ok(());
    };
    let printed = expr.to_string();
    let again = parse(&printed)
        .map_err(|e| TestCaseError::fail(format!("{query:?} printed as {printed:?}: {e}")))?;
    prop_assert_eq!(again.to_string(), printed.clone(), "query {:?}", query);
    let evaluator = Evaluator::new(src);
    let _ = evaluator.evaluate(&expr, &QueryParams::range(tenant(), 0, 5 * SEC, SEC));
    let _ = evaluator.evaluate(&expr, &QueryParams::instant(tenant(), 3 * SEC));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(query in any::<String>()) {
        let _ = parse(&query);
    }

    #[test]
    fn fragment_soup_never_panics(query in fragment_soup()) {
        exercise(&query, &small_source())?;
    }

    #[test]
    fn mutated_queries_never_panic(query in mutated_query()) {
        exercise(&query, &small_source())?;
    }

    #[test]
    fn grammar_queries_parse_and_round_trip(query in metric_expr()) {
        prop_assert!(parse(&query).is_ok(), "{}: {:?}", query, parse(&query).err());
        exercise(&query, &small_source())?;
    }

    #[test]
    fn grammar_log_queries_parse_and_round_trip(query in log_expr()) {
        prop_assert!(parse(&query).is_ok(), "{}: {:?}", query, parse(&query).err());
        exercise(&query, &small_source())?;
    }
}

#[test]
fn corpus_parses_and_round_trips() {
    let src = small_source();
    for query in CORPUS {
        assert!(parse(query).is_ok(), "{query}: {:?}", parse(query).err());
        if let Err(e) = exercise(query, &src) {
            panic!("{query}: {e}");
        }
    }
}
