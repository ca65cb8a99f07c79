//! Table tests of every action. Cases marked "2.42" were checked against Prometheus 2.42
//! itself (its `/api/v1/targets` after target relabeling).

use super::*;

fn labels(text: &str) -> Labels {
    // `a=1,b=2`; an empty string is the empty set.
    Labels::from_pairs(
        text.split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, ""))),
    )
}

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

/// Applies the rules in `yaml` to `input`; `want` is the result or `None` for dropped.
fn check(yaml: &str, input: &str, want: Option<&str>) {
    let got = relabel(labels(input), &rules(yaml));
    assert_eq!(got, want.map(labels), "rules:\n{yaml}\ninput: {input}");
}

#[test]
fn replace() {
    let rule = "[{source_labels: [a], regex: 'f(o+)', target_label: b, replacement: 'x$1'}]";
    check(rule, "a=foo", Some("a=foo,b=xoo"));
    check(rule, "a=bar,b=keep", Some("a=bar,b=keep")); // no match: no change
    check(rule, "a=foox", Some("a=foox")); // anchored
    // Defaults: regex (.*), replacement $1, so this copies a to b.
    check(
        "[{source_labels: [a], target_label: b}]",
        "a=1",
        Some("a=1,b=1"),
    );
    // A missing source label reads as "" and (.*) matches it: b is deleted.
    check(
        "[{source_labels: [missing], target_label: b}]",
        "b=1,c=2",
        Some("c=2"),
    );
    // No source labels and a literal replacement: set a constant (2.42: empty_src).
    check(
        "[{target_label: env, replacement: prod}]",
        "a=1",
        Some("a=1,env=prod"),
    );
    // Several sources joined by the separator.
    check(
        "[{source_labels: [a, b], separator: '-', target_label: c}]",
        "a=1,b=2",
        Some("a=1,b=2,c=1-2"),
    );
    check(
        "[{source_labels: [a, missing, b], target_label: c}]",
        "a=1,b=2",
        Some("a=1,b=2,c=1;;2"),
    );
    // An empty replacement deletes the target (2.42: env).
    check(
        "[{source_labels: [env], regex: prod, target_label: env, replacement: ''}]",
        "env=prod,x=1",
        Some("x=1"),
    );
    // A templated target label.
    check(
        "[{source_labels: [a], regex: '(.*)', target_label: 't_$1', replacement: '${1}_$1x_$$'}]",
        "a=foo",
        Some("a=foo,t_foo=foo_$"), // 2.42
    );
    // A group the regex does not have expands to nothing (2.42: ee).
    check(
        "[{source_labels: [d], regex: x, target_label: ee, replacement: 'a${2}b'}]",
        "d=x",
        Some("d=x,ee=ab"),
    );
    // The value may be anything, the target may be a reserved name.
    check(
        "[{source_labels: [__address__], regex: '(.*):.*', target_label: __host__}]",
        "__address__=h:9",
        Some("__address__=h:9,__host__=h"),
    );
    // Named groups.
    check(
        "[{source_labels: [a], regex: '(?P<x>.)(?P<y>.)', target_label: b, replacement: '$y$x'}]",
        "a=12",
        Some("a=12,b=21"),
    );
}

#[test]
fn replace_quirks_of_2_42() {
    // The expanded target is not a valid label name: nothing happens (2.42: b=1x).
    check(
        "[{source_labels: [b], target_label: '$1', replacement: zzz}]",
        "b=1x",
        Some("b=1x"),
    );
    // A templated target whose replacement is empty: the unexpanded name is deleted, so
    // nothing happens (2.42: foo=bar stays).
    check(
        "[{source_labels: [a], target_label: '${1}', replacement: ''}]",
        "a=foo,foo=bar",
        Some("a=foo,foo=bar"),
    );
}

#[test]
fn keep_and_drop() {
    let keep = "[{source_labels: [__name__], regex: 'up|http_.*', action: keep}]";
    check(keep, "__name__=up", Some("__name__=up"));
    check(
        keep,
        "__name__=http_requests_total",
        Some("__name__=http_requests_total"),
    );
    check(keep, "__name__=node_load1", None);
    let drop = "[{source_labels: [__name__], regex: 'go_.*', action: drop}]";
    check(drop, "__name__=go_goroutines", None);
    check(drop, "__name__=up", Some("__name__=up"));
    // keep with the default regex keeps everything, a missing label included.
    check("[{action: keep}]", "a=1", Some("a=1"));
    // drop of an empty source value.
    check(
        "[{source_labels: [a], regex: '', action: drop}]",
        "b=1",
        None,
    );
    // Actions are case-insensitive.
    check(
        "[{source_labels: [a], regex: '1', action: DROP}]",
        "a=1",
        None,
    );
    // A dropped set stops the later rules.
    check(
        "[{source_labels: [a], regex: '1', action: drop}, {target_label: x, replacement: y}]",
        "a=1",
        None,
    );
}

#[test]
fn keepequal_and_dropequal() {
    let keep = "[{source_labels: [a], target_label: b, action: keepequal}]";
    check(keep, "a=1,b=1", Some("a=1,b=1"));
    check(keep, "a=1,b=2", None);
    check(keep, "c=3", Some("c=3")); // both missing: "" == ""
    let drop = "[{source_labels: [a, b], target_label: c, action: dropequal}]";
    check(drop, "a=1,b=2,c=1;2", None);
    check(drop, "a=1,b=2,c=1", Some("a=1,b=2,c=1"));
}

#[test]
fn hashmod() {
    // 2.42: md5("foo;1x") modulo 1000 is 679.
    check(
        "[{source_labels: [a, b], target_label: hm, modulus: 1000, action: hashmod}]",
        "a=foo,b=1x",
        Some("a=foo,b=1x,hm=679"),
    );
    assert_eq!(super::hashmod("foo;1x", 1000), 679);
    assert!(super::hashmod("anything", 7) < 7);
}

#[test]
fn labelmap() {
    check(
        "[{action: labelmap, regex: '__meta_(.*)'}]",
        "__meta_env=prod,__meta_zone=a,x=1",
        Some("__meta_env=prod,__meta_zone=a,env=prod,x=1,zone=a"),
    );
    check(
        "[{action: labelmap, regex: '__meta_(.*)', replacement: 'm_$1'}]",
        "__meta_filepath=t.json",
        Some("__meta_filepath=t.json,m_filepath=t.json"),
    );
    // A mapped label overwrites an existing one.
    check(
        "[{action: labelmap, regex: 'tmp_(.*)'}]",
        "tmp_a=new,a=old",
        Some("a=new,tmp_a=new"),
    );
}

#[test]
fn labeldrop_and_labelkeep() {
    check(
        "[{action: labeldrop, regex: 'tmp_.*'}]",
        "tmp_a=1,tmp_b=2,c=3",
        Some("c=3"),
    );
    check(
        "[{action: labelkeep, regex: '__name__|job|instance'}]",
        "__name__=up,job=j,instance=i,pod=p",
        Some("__name__=up,instance=i,job=j"),
    );
    // Matching is anchored: `a` does not match `ab`.
    check("[{action: labeldrop, regex: a}]", "a=1,ab=2", Some("ab=2"));
}

#[test]
fn lowercase_and_uppercase() {
    // 2.42: low=hello, up=HELLO.
    check(
        "[{source_labels: [c], target_label: low, action: lowercase}, \
          {source_labels: [c], target_label: up, action: uppercase}]",
        "c=Hello",
        Some("c=Hello,low=hello,up=HELLO"),
    );
    // An empty value removes the target.
    check(
        "[{source_labels: [missing], target_label: c, action: lowercase}]",
        "c=x",
        Some(""),
    );
}

#[test]
fn rules_apply_in_order() {
    check(
        "[{source_labels: [a], target_label: b}, \
          {source_labels: [b], regex: '1', action: drop}]",
        "a=1",
        None,
    );
    check(
        "[{source_labels: [a], target_label: b, replacement: '${1}0'}, \
          {source_labels: [b], target_label: c, replacement: '${1}0'}]",
        "a=1",
        Some("a=1,b=10,c=100"),
    );
}

#[test]
fn validation() {
    let check = |yaml: &str, want: &str| {
        let got = serde_yaml::from_str::<Vec<RelabelConfig>>(yaml)
            .map(|_| "ok".to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(got.contains(want), "{yaml}: got {got:?}, want {want:?}");
    };
    // Every message below is Prometheus 2.42's (`promtool check config`).
    check("[{source_labels: [a], target_label: '${1}x'}]", "ok");
    check("[{action: labelmap, regex: '__meta_(.*)'}]", "ok");
    check("[{action: keep}]", "ok");
    check(
        "[{action: labelkeep, replacement: '$1', separator: ';'}]",
        "ok",
    );
    check(
        "[{source_labels: [a], action: foo, target_label: x}]",
        "unknown relabel action \"foo\"",
    );
    check(
        "[{source_labels: [a], action: '', target_label: x}]",
        "unknown relabel action \"\"",
    );
    check(
        "[{source_labels: [a], regex: '((', target_label: x}]",
        "invalid relabel regex \"((\"",
    );
    check(
        "[{source_labels: [a], target_label: '1x'}]",
        "\"1x\" is invalid 'target_label' for replace action",
    );
    check(
        "[{source_labels: [a], target_label: '$1-x'}]",
        "\"$1-x\" is invalid 'target_label' for replace action",
    );
    check(
        "[{source_labels: [a]}]",
        "relabel configuration for replace action requires 'target_label' value",
    );
    check(
        "[{source_labels: [a], target_label: x, action: lowercase, replacement: foo}]",
        "'replacement' can not be set for lowercase action",
    );
    check(
        "[{source_labels: [a], target_label: x, action: keepequal, regex: foo}]",
        "keepequal action requires only 'source_labels' and 'target_label'",
    );
    check(
        "[{source_labels: [a], target_label: x, action: dropequal, regex: '(.*)'}]",
        "dropequal action requires only 'source_labels' and 'target_label'",
    );
    check(
        "[{source_labels: [a], action: keepequal}]",
        "relabel configuration for keepequal action requires 'target_label' value",
    );
    check(
        "[{source_labels: [a], target_label: x, action: hashmod}]",
        "relabel configuration for hashmod requires non-zero modulus",
    );
    check(
        "[{action: labelmap, regex: '(.*)', replacement: '1-$1'}]",
        "\"1-$1\" is invalid 'replacement' for labelmap action",
    );
    check(
        "[{source_labels: [a], action: labeldrop}]",
        "labeldrop action requires only 'regex', and no other fields",
    );
    check(
        "[{action: labelkeep, separator: ','}]",
        "labelkeep action requires only 'regex', and no other fields",
    );
    check(
        "[{source_labels: ['1a'], target_label: x}]",
        "\"1a\" is not a valid label name",
    );
    check(
        "[{source_labels: [a], target_label: x, foo: 1}]",
        "unknown field `foo`",
    );
    check("[null]", "empty or null relabeling rule");
}
