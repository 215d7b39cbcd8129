//! Request metrics ([`crate::edge`] records each request): a counter and a latency histogram per route
//! template, method and status. Route templates (not raw paths) keep label cardinality bounded whatever
//! clients send, and so does the method label: a method outside RFC 9110's own is counted as `OTHER`.
//!
//! The handles of each series are looked up once per thread and kept: building a `metrics` key on every
//! request (three owned label values, a label vector per macro call, hashing, the recorder's registry
//! lookup) took about twenty of the ~120 allocations an introspection request made (BENCHMARKS.md).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use axum::http::Method;
use metrics::{Counter, Histogram};

pub const REQUESTS_TOTAL: &str = "rsp_http_requests_total";
pub const REQUEST_DURATION: &str = "rsp_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "rsp_tokens_issued_total";
pub const DECISIONS: &str = "rsp_decisions_total";
pub const DECISION_CACHE_HITS: &str = "rsp_decision_cache_hits_total";
pub const DECISION_CACHE_MISSES: &str = "rsp_decision_cache_misses_total";

/// The route label of a request no route matched.
pub(crate) const UNMATCHED: &str = "unmatched";

/// The method as a label value: one of RFC 9110's methods (and PATCH), or `OTHER`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// One series' handles, found once.
struct Series {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// A counter with one label, all three names fixed in the code.
type LabelledCounter = (&'static str, &'static str, &'static str);

thread_local! {
    /// This thread's handles by route template; a route's few method and status pairs are scanned.
    static SERIES: RefCell<HashMap<Box<str>, Vec<Series>>> = RefCell::new(HashMap::new());
    /// This thread's handles of the per-request counters with one label (tokens by grant, decisions by
    /// outcome).
    static COUNTERS: RefCell<HashMap<LabelledCounter, Counter>> = RefCell::new(HashMap::new());
}

/// Adds `by` to counter `name` with `label` = `value`, through this thread's kept handle.
pub(crate) fn count(name: &'static str, label: &'static str, value: &'static str, by: u64) {
    COUNTERS.with_borrow_mut(|counters| {
        counters.entry((name, label, value)).or_insert_with(|| metrics::counter!(name, label => value)).increment(by);
    });
}

/// Counts a request that `started` then and was answered with `status`.
pub(crate) fn record(route: &str, method: &'static str, status: u16, started: Instant) {
    SERIES.with_borrow_mut(|series| {
        let of_route = match series.get_mut(route) {
            Some(of_route) => of_route,
            None => series.entry(route.into()).or_default(),
        };
        let index = match of_route.iter().position(|s| s.method == method && s.status == status) {
            Some(index) => index,
            None => {
                let labels =
                    [("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
                let requests = metrics::counter!(REQUESTS_TOTAL, &labels);
                let duration = metrics::histogram!(REQUEST_DURATION, &labels);
                of_route.push(Series { method, status, requests, duration });
                of_route.len() - 1
            }
        };
        if let Some(found) = of_route.get(index) {
            found.requests.increment(1);
            found.duration.record(started.elapsed().as_secs_f64());
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn each_series_is_counted_under_its_own_labels_and_methods_stay_bounded() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                record("/t/{tenant}/oauth2/token", "POST", 200, Instant::now());
            }
            record("/t/{tenant}/oauth2/token", "POST", 401, Instant::now());
            record("/t/{tenant}/oauth2/token", "GET", 405, Instant::now());
            record(UNMATCHED, method_label(&Method::from_bytes(b"BREW").unwrap()), 404, Instant::now());
            count(TOKENS_ISSUED, "grant_type", "client_credentials", 1);
            count(TOKENS_ISSUED, "grant_type", "client_credentials", 2);
            count(DECISIONS, "outcome", "deny", 5);
        });
        let text = handle.render();
        let value = |series: &str| -> u64 {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        };
        let token = r#"route="/t/{tenant}/oauth2/token""#;
        assert_eq!(value(&format!(r#"rsp_http_requests_total{{{token},method="POST",status="200"}}"#)), 3);
        assert_eq!(value(&format!(r#"rsp_http_requests_total{{{token},method="POST",status="401"}}"#)), 1);
        assert_eq!(value(&format!(r#"rsp_http_requests_total{{{token},method="GET",status="405"}}"#)), 1);
        assert_eq!(value(r#"rsp_http_requests_total{route="unmatched",method="OTHER",status="404"}"#), 1);
        assert_eq!(
            value(&format!(r#"rsp_http_request_duration_seconds_count{{{token},method="POST",status="200"}}"#)),
            3
        );
        assert_eq!(value(r#"rsp_tokens_issued_total{grant_type="client_credentials"}"#), 3);
        assert_eq!(value(r#"rsp_decisions_total{outcome="deny"}"#), 5);
    }
}
