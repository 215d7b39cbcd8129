//! Every metric this crate emits, named in one place. They go to whatever `metrics` recorder the
//! embedding service installed; without one they cost next to nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `rsp_client_calls_total` | counter | `decided_by` = server, cache, fallback, error |
//! | `rsp_client_cache_hits_total`, `rsp_client_cache_misses_total` | counter | |
//! | `rsp_client_batches_total` | counter | |
//! | `rsp_client_batch_size` | histogram | |
//! | `rsp_client_failures_total` | counter | `kind` (see `ClientError::kind`) |
//! | `rsp_client_fallbacks_total` | counter | `effect` = allow, deny |
//! | `rsp_client_breaker_state` | gauge | 0 closed, 1 open, 2 half-open |
//! | `rsp_client_breaker_transitions_total` | counter | `to` |
//! | `rsp_client_token_refreshes_total` | counter | |
//! | `rsp_client_jwks_fetches_total` | counter | `outcome` = ok, error |
//! | `rsp_client_token_validations_total` | counter | `outcome` = valid, invalid |

pub(crate) fn call(decided_by: &'static str) {
    metrics::counter!("rsp_client_calls_total", "decided_by" => decided_by).increment(1);
}

pub(crate) fn cache(hit: bool) {
    if hit {
        metrics::counter!("rsp_client_cache_hits_total").increment(1);
    } else {
        metrics::counter!("rsp_client_cache_misses_total").increment(1);
    }
}

pub(crate) fn batch(size: usize) {
    metrics::counter!("rsp_client_batches_total").increment(1);
    metrics::histogram!("rsp_client_batch_size").record(size as f64);
}

pub(crate) fn failure(kind: &'static str) {
    metrics::counter!("rsp_client_failures_total", "kind" => kind).increment(1);
}

pub(crate) fn fallback(effect: &'static str) {
    metrics::counter!("rsp_client_fallbacks_total", "effect" => effect).increment(1);
}

pub(crate) fn breaker_state(state: u8) {
    metrics::gauge!("rsp_client_breaker_state").set(f64::from(state));
}

pub(crate) fn breaker_transition(to: &'static str) {
    metrics::counter!("rsp_client_breaker_transitions_total", "to" => to).increment(1);
}

pub(crate) fn token_refresh() {
    metrics::counter!("rsp_client_token_refreshes_total").increment(1);
}

pub(crate) fn jwks_fetch(ok: bool) {
    metrics::counter!("rsp_client_jwks_fetches_total", "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

pub(crate) fn validation(valid: bool) {
    metrics::counter!("rsp_client_token_validations_total", "outcome" => if valid { "valid" } else { "invalid" })
        .increment(1);
}
