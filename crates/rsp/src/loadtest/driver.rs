//! The workers: one connection each (see `connection`; reqwest for logins and `https`), sending back to
//! back (closed loop) or on a fixed schedule (open loop), recording latency into a per-worker histogram
//! merged at the end.
//!
//! In the open loop each request has an intended send time, `start + n / rate`, and its latency counts
//! from that time rather than from when it was actually sent. A server that stalls therefore shows the
//! stall in every request that queued behind it, not in one slow sample (coordinated omission, as wrk2
//! corrects it). The next due request goes to whichever connection is free, as a client's pool would
//! send it; when all are busy it waits, and the wait counts.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::connection::PlainConnection;
use super::target::Workload;

/// How long requests still in flight at the end may take before they count as errors.
const GRACE: Duration = Duration::from_secs(5);
/// Requests sent from one source address when the workload asks for many (fewer than any per-IP
/// allowance of the login throttle).
const ATTEMPTS_PER_SOURCE: u64 = 20;
/// The largest latency recorded exactly, in microseconds; longer ones saturate.
const MAX_MICROS: u64 = 60_000_000;

/// How the load is applied.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    pub connections: u32,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests per second in total (open loop), or none (closed loop).
    pub rate: Option<u64>,
    pub http2: bool,
}

/// The run's milestones.
#[derive(Debug, Clone, Copy)]
struct Times {
    start: Instant,
    /// Requests intended from here on are recorded.
    measure_from: Instant,
    /// No request is started (or intended) from here on.
    end: Instant,
    /// Requests still unanswered here are abandoned.
    hard_stop: Instant,
}

/// What the measured window produced.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Latency of successful requests, in microseconds.
    pub histogram: Histogram<u64>,
    /// Requests answered (or failed) in the window.
    pub requests: u64,
    /// Non-2xx answers, transport failures and requests abandoned at the end.
    pub errors: u64,
}

impl Outcome {
    fn new() -> anyhow::Result<Self> {
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3).map_err(|e| anyhow!("histogram: {e:?}"))?;
        Ok(Self { histogram, requests: 0, errors: 0 })
    }

    fn record(&mut self, ok: bool, latency: Duration) {
        self.requests += 1;
        if ok {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
            self.histogram.saturating_record(micros.max(1));
        } else {
            self.errors += 1;
        }
    }

    fn merge(&mut self, other: &Self) -> anyhow::Result<()> {
        self.histogram.add(&other.histogram).map_err(|e| anyhow!("histogram: {e:?}"))?;
        self.requests += other.requests;
        self.errors += other.errors;
        Ok(())
    }
}

/// Counters for the live progress line, warm-up included.
#[derive(Debug, Default)]
struct Live {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Runs the plan to its end and returns the merged measurements.
pub(super) async fn drive(workload: Arc<Workload>, plan: Plan) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let times = Times { start, measure_from, end, hard_stop: end + GRACE };
    let live = Arc::new(Live::default());
    let schedule = plan.rate.map(|rate| Schedule::start(times, rate.max(1))).transpose()?;
    let mut workers = JoinSet::new();
    for index in 0..plan.connections {
        let client = client(plan.http2, workload.tls(), None)?;
        workers.spawn(worker(index, client, workload.clone(), plan, times, live.clone(), schedule.clone()));
    }
    let progress = tokio::spawn(progress(live, times));
    let mut outcome = Outcome::new()?;
    while let Some(joined) = workers.join_next().await {
        outcome.merge(&joined.context("a load-test worker failed")??)?;
    }
    progress.abort();
    Ok(outcome)
}

/// One connection's client: HTTP/1.1 keep-alive, or HTTP/2 by prior knowledge, from `source` when given.
/// Proxies from the environment are ignored so that requests go only to the target, and redirects are
/// not followed: a 303 is an answer the login scenario reads. A client for a plain-HTTP target carries
/// no trusted roots: loading the platform's store parses every certificate on the machine (`perf` of a
/// login storm: two thirds of the generator's CPU, in bursts of milliseconds that delayed the token
/// requests measured beside it), and such a client never verifies a certificate.
fn client(http2: bool, tls: bool, source: Option<IpAddr>) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source);
    let builder = if http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
    let builder = if tls { builder } else { builder.tls_certs_only(std::iter::empty()) };
    Ok(builder.build()?)
}

/// The loopback source address of a worker's `attempt`-th request when the workload asks for many
/// sources: each worker moves to an address of its own every [`ATTEMPTS_PER_SOURCE`] requests, from
/// 127.1.0.0 onwards, so that no address is shared with another worker or a real local client.
fn source_address(worker: u32, workers: u32, attempt: u64) -> IpAddr {
    let group = (attempt / ATTEMPTS_PER_SOURCE) * u64::from(workers.max(1)) + u64::from(worker);
    let group = group % ((1 << 24) - (1 << 16)) + (1 << 16);
    let [_, a, b, c] = u32::try_from(group).unwrap_or_default().to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

async fn worker(
    index: u32,
    mut client: reqwest::Client,
    workload: Arc<Workload>,
    plan: Plan,
    times: Times,
    live: Arc<Live>,
    schedule: Option<Arc<Schedule>>,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::new()?;
    let connections = u64::from(plan.connections);
    let mut connection = PlainConnection::new(plan.http2);
    let mut source = None;
    for round in 0u64.. {
        let (n, intended) = match &schedule {
            Some(schedule) => match schedule.next().await {
                Some(n) => (n, schedule.intended(n)),
                None => break,
            },
            // Closed loop: the n-th request overall; worker i takes i, i + N, i + 2N, …, sent at once.
            None => (u64::from(index) + round * connections, Instant::now()),
        };
        if intended >= times.end {
            break;
        }
        if workload.many_sources {
            let wanted = Some(source_address(index, plan.connections, round));
            if source != wanted {
                source = wanted;
                client = self::client(plan.http2, workload.tls(), source)?;
            }
        }
        let seq = usize::try_from(n).unwrap_or_default();
        let ok = timeout_at(times.hard_stop, workload.send(&client, &mut connection, seq)).await.unwrap_or(false);
        let done = Instant::now();
        live.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            live.errors.fetch_add(1, Ordering::Relaxed);
        }
        if intended >= times.measure_from {
            outcome.record(ok, done.saturating_duration_since(intended));
        }
        if done >= times.hard_stop {
            break;
        }
    }
    Ok(outcome)
}

/// The open loop's clock: a thread that hands out request numbers at their intended send times
/// (`start + n / rate`), each taken by whichever worker is free.
///
/// Why a thread and not a tokio timer per request: tokio's timer wheel rounds every deadline up to its
/// next millisecond tick, so each request would leave up to a millisecond late, and since latency counts
/// from the intended time, every figure would carry that lateness (the first open-loop figures here had a
/// p50 of 1.3 ms that was mostly this). A thread sleeping with the OS's own timer is late by tens of
/// microseconds, and when it falls behind it releases what is due at once.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    rate: u64,
    due: Mutex<mpsc::UnboundedReceiver<u64>>,
}

impl Schedule {
    fn start(times: Times, rate: u64) -> anyhow::Result<Arc<Self>> {
        let (release, due) = mpsc::unbounded_channel();
        let schedule = Arc::new(Self { start: times.start, rate, due: Mutex::new(due) });
        let clock = schedule.clone();
        let end = times.end.into_std();
        std::thread::Builder::new().name("loadtest-pacer".into()).spawn(move || {
            for n in 0u64.. {
                let intended = clock.intended(n).into_std();
                if intended >= end {
                    break;
                }
                let wait = intended.saturating_duration_since(std::time::Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                if release.send(n).is_err() {
                    break; // the workers are gone
                }
            }
        })?;
        Ok(schedule)
    }

    fn intended(&self, n: u64) -> Instant {
        self.start + Duration::from_secs_f64(n as f64 / self.rate as f64)
    }

    /// The next request number due, once it is due; none after the last.
    async fn next(&self) -> Option<u64> {
        self.due.lock().await.recv().await
    }
}

/// Prints one line a second to stderr until the run ends.
async fn progress(live: Arc<Live>, times: Times) {
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(times.start + second, second);
    let mut last = 0;
    loop {
        let now = tick.tick().await;
        if now > times.hard_stop {
            break;
        }
        let requests = live.requests.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let phase = if now <= times.measure_from { "warm-up" } else { "measuring" };
        let elapsed = now.duration_since(times.start).as_secs();
        eprintln!("{elapsed:>4}s {phase:<9} requests {requests:>10}  rate {:>8}/s  errors {errors}", requests - last);
        last = requests;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn each_source_address_makes_its_allowance_of_attempts_for_one_worker_only() {
        let workers = 3;
        let mut used: HashMap<IpAddr, (u32, u64)> = HashMap::new();
        for worker in 0..workers {
            for attempt in 0..ATTEMPTS_PER_SOURCE * 4 {
                let address = source_address(worker, workers, attempt);
                let IpAddr::V4(v4) = address else { panic!("{address}") };
                assert_eq!(v4.octets()[..2], [127, 1], "{address}");
                let (owner, count) = used.entry(address).or_insert((worker, 0));
                assert_eq!(*owner, worker, "{address} is shared");
                *count += 1;
            }
        }
        assert_eq!(used.len(), workers as usize * 4);
        assert!(used.values().all(|(_, count)| *count == ATTEMPTS_PER_SOURCE), "{used:?}");
    }
}
