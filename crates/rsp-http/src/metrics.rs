//! Request metrics: a counter and a latency histogram per route template, method and status. Route
//! templates (not raw paths) keep label cardinality bounded whatever clients send.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub const REQUESTS_TOTAL: &str = "rsp_http_requests_total";
pub const REQUEST_DURATION: &str = "rsp_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "rsp_tokens_issued_total";
pub const DECISIONS: &str = "rsp_decisions_total";
pub const DECISION_CACHE_HITS: &str = "rsp_decision_cache_hits_total";
pub const DECISION_CACHE_MISSES: &str = "rsp_decision_cache_misses_total";

pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}
