//! The summary of a run, as text or as one JSON object.

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A load test's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's name, e.g. `authorize`.
    pub scenario: &'static str,
    /// The endpoint measured.
    pub target: String,
    /// `closed-loop` or `open-loop`.
    pub mode: &'static str,
    pub connections: u32,
    /// The open loop's target rate in requests per second.
    pub rate: Option<u64>,
    pub http2: bool,
    pub warmup_secs: f64,
    /// The measured window; requests intended before it (the warm-up) are not counted.
    pub duration_secs: f64,
    /// Requests completed in the window, errors included.
    pub requests: u64,
    /// Non-2xx answers and transport failures.
    pub errors: u64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Decisions per request (authorize-batch only).
    pub batch_size: Option<u64>,
    /// Decisions per second in successful batches (authorize-batch only).
    pub decisions_per_sec: Option<f64>,
    /// Latency of successful requests.
    pub latency_ms: Latency,
}

/// Latency percentiles in milliseconds, at microsecond resolution.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Latency {
    /// Reads percentiles from a histogram of microseconds.
    pub(super) fn from_micros(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |quantile: f64| ms(histogram.value_at_quantile(quantile));
        Self { p50: at(0.5), p90: at(0.9), p99: at(0.99), p99_9: at(0.999), max: ms(histogram.max()) }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = if self.http2 { "HTTP/2" } else { "HTTP/1.1" };
        let rate = self.rate.map(|rate| format!(" at {rate} req/s")).unwrap_or_default();
        writeln!(
            f,
            "scenario     {} ({}{rate}, {} connections, {protocol})",
            self.scenario, self.mode, self.connections
        )?;
        writeln!(f, "target       {}", self.target)?;
        writeln!(f, "duration     {:.1} s after {:.1} s warm-up", self.duration_secs, self.warmup_secs)?;
        writeln!(f, "requests     {} ({} errors)", self.requests, self.errors)?;
        write!(f, "throughput   {:.1} req/s", self.requests_per_sec)?;
        if let (Some(size), Some(decisions)) = (self.batch_size, self.decisions_per_sec) {
            write!(f, ", {decisions:.1} decisions/s ({size} per request)")?;
        }
        writeln!(f)?;
        let l = &self.latency_ms;
        write!(
            f,
            "latency ms   p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        )
    }
}
