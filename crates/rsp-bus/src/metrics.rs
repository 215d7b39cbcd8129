//! Every metric this crate emits, named in one place (dashboards reference these names). They go to
//! whatever `metrics` recorder the binary installed; without one they cost next to nothing.
//!
//! | name | kind | labels | where |
//! |---|---|---|---|
//! | `rsp_bus_published_total` | counter | `priority` | events accepted by the [`crate::Publisher`] (primary or fallback) |
//! | `rsp_bus_publish_fallback_total` | counter | | events the publisher sent to its fallback bus |
//! | `rsp_bus_refused_total` | counter | | events a direct publisher's handler refused for good (dropped) |
//! | `rsp_bus_handled_total` | counter | `group`, `outcome` = ok, retry, dead, duplicate | the consumer runner |
//! | `rsp_bus_publish_to_handle_seconds` | histogram | `group` | from `occurred_at_ms` to a successful handle |
//! | `rsp_bus_depth` | gauge | `group`, `priority` | refreshed from `EventBus::stats` by each consumer |
//! | `rsp_bus_pending` | gauge | `group` | idem |
//! | `rsp_bus_dead_letters` | gauge | `group` | idem |
//! | `rsp_bus_oldest_unacked_seconds` | gauge | `group` | idem |
//!
//! `rsp_bus_published_total` counts an event once, where it enters the platform: the publisher here, and
//! [`record_published`] for any other front door (the outbox written inside a use case's transaction).
//! Buses themselves do not count, so an event relayed from the outbox to Redis is not counted twice.

use metrics::{Counter, Histogram};
use rsp_core::bus::BusStats;
use rsp_core::{Event, Priority};

/// Counts `events` as published, by priority.
pub fn record_published(events: &[Event]) {
    for priority in Priority::ALL {
        let n = events.iter().filter(|e| e.priority == priority).count();
        if n > 0 {
            metrics::counter!("rsp_bus_published_total", "priority" => priority.as_str()).increment(n as u64);
        }
    }
}

pub(crate) fn fallback(events: usize) {
    metrics::counter!("rsp_bus_publish_fallback_total").increment(events as u64);
}

pub(crate) fn refused(events: usize) {
    metrics::counter!("rsp_bus_refused_total").increment(events as u64);
}

/// The runner's per-group handles, registered once so the hot loop does not look them up per event.
#[derive(Debug, Clone)]
pub(crate) struct HandledMetrics {
    pub ok: Counter,
    pub retry: Counter,
    pub dead: Counter,
    pub duplicate: Counter,
    pub latency: Histogram,
}

impl HandledMetrics {
    pub fn new(group: &str) -> Self {
        let counter = |outcome: &'static str| metrics::counter!("rsp_bus_handled_total", "group" => group.to_owned(), "outcome" => outcome);
        Self {
            ok: counter("ok"),
            retry: counter("retry"),
            dead: counter("dead"),
            duplicate: counter("duplicate"),
            latency: metrics::histogram!("rsp_bus_publish_to_handle_seconds", "group" => group.to_owned()),
        }
    }

    /// Time from the fact to its successful handling, by the wall clock both sides share.
    pub fn handled(&self, event: &Event) {
        self.ok.increment(1);
        let millis = rsp_core::event::now_millis().saturating_sub(event.occurred_at_ms).max(0);
        self.latency.record(millis as f64 / 1000.0);
    }
}

/// Sets the gauges of `group` from a fresh [`BusStats`].
pub(crate) fn record_stats(group: &str, stats: &BusStats) {
    for (priority, depth) in Priority::ALL.into_iter().zip(stats.depth) {
        metrics::gauge!("rsp_bus_depth", "group" => group.to_owned(), "priority" => priority.as_str())
            .set(depth as f64);
    }
    metrics::gauge!("rsp_bus_pending", "group" => group.to_owned()).set(stats.pending as f64);
    metrics::gauge!("rsp_bus_dead_letters", "group" => group.to_owned()).set(stats.dead_letters as f64);
    metrics::gauge!("rsp_bus_oldest_unacked_seconds", "group" => group.to_owned())
        .set(stats.oldest_unacked_ms as f64 / 1000.0);
}
