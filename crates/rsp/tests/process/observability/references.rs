//! What the dashboard and the rule file name, and what a server's `/metrics` exports: a small scanner
//! for PromQL selectors and the Prometheus exposition format (they share the `{name="value"}` syntax).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::monitoring_dir;

/// Metric names (with the label names their selectors use) found in PromQL or in prose.
pub type Names = BTreeMap<String, BTreeSet<String>>;

/// Every metric the text names: identifiers starting `rsp_` or `process_` (recording rules are named
/// `rsp:…`, so they are not taken for metrics), and the label names of a `{…}` selector right after one.
pub fn named_metrics(text: &str, names: &mut Names) -> Result<(), String> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        let starts = (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') && (i == 0 || !ident(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && ident(bytes[i]) {
            i += 1;
        }
        let word = &text[start..i];
        if !(word.starts_with("rsp_") || word.starts_with("process_")) || word.contains(':') {
            continue;
        }
        let labels = names.entry(word.to_owned()).or_default();
        if bytes.get(i) == Some(&b'{') {
            let (matchers, end) = selector(text, i).map_err(|e| format!("{word}: {e}"))?;
            labels.extend(matchers.into_keys());
            i = end;
        }
    }
    Ok(())
}

/// Parses `{name op "value", …}` starting at the `{` at `open`; returns the label names and values and
/// the index after the `}`. Serves PromQL selectors and the exposition format alike.
fn selector(text: &str, open: usize) -> Result<(BTreeMap<String, String>, usize), String> {
    let bytes = text.as_bytes();
    let mut labels = BTreeMap::new();
    let mut i = open + 1;
    let skip_spaces = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_spaces(&mut i);
        match bytes.get(i) {
            Some(b'}') => return Ok((labels, i + 1)),
            Some(b',') => {
                i += 1;
                continue;
            }
            None => return Err("unterminated selector".into()),
            _ => {}
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let name = text[start..i].to_owned();
        skip_spaces(&mut i);
        while i < bytes.len() && matches!(bytes[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        skip_spaces(&mut i);
        if name.is_empty() || bytes.get(i) != Some(&b'"') {
            return Err(format!("cannot read the selector at {:?}", &text[open..(i + 1).min(text.len())]));
        }
        i += 1;
        let mut value = String::new();
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' {
                i += 1;
            }
            if let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) {
                value.push(c);
                i += c.len_utf8();
            }
        }
        i += 1;
        labels.insert(name, value);
    }
}

/// The PromQL of every dashboard panel (including panels inside rows).
fn dashboard_queries(dashboard: &Value, out: &mut Vec<String>) {
    match dashboard {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| dashboard_queries(item, out)),
        _ => {}
    }
}

/// What the dashboard and the rule file name, with where each name comes from.
pub fn referenced() -> (Names, BTreeMap<String, BTreeSet<&'static str>>) {
    let dir = monitoring_dir();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rsp-dashboard.json")).unwrap()).unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() > 10, "the dashboard has only {} queries", queries.len());
    let rules = std::fs::read_to_string(dir.join("rsp.rules.yml")).unwrap();

    let mut names = Names::new();
    let mut sources: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (source, text) in queries.iter().map(|q| ("dashboard", q.as_str())).chain([("rules", rules.as_str())]) {
        let mut found = Names::new();
        named_metrics(text, &mut found).unwrap_or_else(|e| panic!("{source}: {e}"));
        for (name, labels) in found {
            sources.entry(name.clone()).or_default().insert(source);
            names.entry(name).or_default().extend(labels);
        }
    }
    (names, sources)
}

/// Sample names on `/metrics` and the label names seen on each.
pub fn exported(metrics: &str) -> Names {
    let mut out = Names::new();
    for line in metrics.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_owned()).or_default();
        if line[end..].starts_with('{') {
            let (matchers, _) = selector(line, end).unwrap_or_else(|e| panic!("/metrics line {line:?}: {e}"));
            labels.extend(matchers.into_keys());
        }
    }
    out
}

#[test]
fn the_reference_scanner_finds_metrics_and_selector_labels_only() {
    let mut names = Names::new();
    let text = r#"sum by (route) (rate(rsp_http_requests_total{job="rsp", route="/t/{tenant}/x", status=~"5.."}[5m]))
        / rsp:http_requests:rate5m + process_resident_memory_bytes and my_rsp_other and up{job="rsp"}"#;
    named_metrics(text, &mut names).unwrap();
    let expected: Names = [
        ("process_resident_memory_bytes".to_owned(), BTreeSet::new()),
        ("rsp_http_requests_total".to_owned(), ["job", "route", "status"].map(String::from).into()),
    ]
    .into();
    assert_eq!(names, expected);
    assert!(named_metrics("rsp_x{job=rsp}", &mut names).is_err(), "an unquoted value is an error");

    let scraped = exported("# TYPE a counter\nrsp_a_total{route=\"/t/{tenant}/a\",status=\"200\"} 1\nrsp_b 2\n");
    assert_eq!(scraped["rsp_a_total"], ["route", "status"].map(String::from).into());
    assert!(scraped["rsp_b"].is_empty());
}
