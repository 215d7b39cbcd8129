//! The threads Argon2 runs on: a few of its own, at a lower scheduling priority than the request threads,
//! resting after each hash while those are busy.
//!
//! A hash holds a core for tens of milliseconds. On the shared blocking pool at normal priority a login
//! storm made token requests wait their turn for the CPU (token p99 nearly doubled under one). On threads
//! of their own with a higher nice value the kernel runs a woken request thread ahead of a hash, so hashes
//! take the cycles requests leave. The priority cannot be set back without privileges, which is why these
//! threads do nothing else and the blocking pool is left alone.
//!
//! Not `SCHED_IDLE`, although it gave a storm's token p99 less excess than nice 19 (1.76x against 2.07x,
//! BENCHMARKS.md): a `SCHED_IDLE` thread gets almost nothing while normal threads keep every core busy
//! (the login load test starved beside the parallel test suite), while nice 19 keeps logins moving on a
//! saturated machine. The rest after each hash bounds a storm's share either way.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The nice value of hashing threads (request threads run at the process's own, normally 0): the lowest
/// priority there is, which the kernel weighs at about 1/70 of a request thread when both want a core. On
/// an idle machine a hash runs at full speed all the same; on a busy one logins wait, tokens do not.
const HASHING_NICE: i32 = 19;

/// The share of one core that hashing takes while the request threads are busy: after a hash that took
/// `t` during which they were, the hashing thread rests `t·(1−share)/share`. Measured with
/// `bench/login-storm.sh` (BENCHMARKS.md): however low its priority, a hash running beside token
/// requests slows them (likely the 19 MiB it streams through the core's caches), so a storm's cost to them
/// is bounded by bounding its share. On a server with nothing else to do, hashes run back to back.
const SHARE_OF_A_BUSY_CORE: f64 = 0.5;

/// Request threads busy more than this share of their time during a hash count as busy. Serving the
/// logins themselves keeps them well below it (tens of microseconds each against a hash's tens of
/// milliseconds); 2,000 tokens/s on two workers is about 8%.
const BUSY: f64 = 0.02;

/// How busy the request threads (the tokio runtime the hasher was started from) are, from the runtime's
/// own per-worker busy time.
#[derive(Clone, Debug)]
struct RequestLoad {
    runtime: Option<tokio::runtime::Handle>,
}

impl RequestLoad {
    fn current() -> Self {
        Self { runtime: tokio::runtime::Handle::try_current().ok() }
    }

    /// The workers' busy time so far, summed.
    fn busy(&self) -> Option<Duration> {
        let metrics = self.runtime.as_ref()?.metrics();
        Some((0..metrics.num_workers()).map(|worker| metrics.worker_total_busy_duration(worker)).sum())
    }

    /// Whether the workers were busy during the `took` since `before` was read.
    fn was_busy(&self, before: Option<Duration>, took: Duration) -> bool {
        let (Some(before), Some(now), Some(runtime)) = (before, self.busy(), &self.runtime) else {
            return false;
        };
        let capacity = took.as_secs_f64() * runtime.metrics().num_workers() as f64;
        capacity > 0.0 && now.saturating_sub(before).as_secs_f64() / capacity > BUSY
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// `size` threads taking jobs from one queue; they end when this is dropped.
#[derive(Debug)]
pub(super) struct HashThreads {
    jobs: mpsc::Sender<Job>,
}

impl HashThreads {
    pub(super) fn start(size: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let load = RequestLoad::current();
        for index in 0..size.max(1) {
            let queue = queue.clone();
            let load = load.clone();
            std::thread::Builder::new().name(format!("rsp-argon2-{index}")).spawn(move || {
                lower_priority();
                loop {
                    // The lock is held to take a job, not to run it (a `while let` would hold it for the
                    // body). A poisoned lock means a job panicked on another thread: the queue is intact.
                    let next = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                    let Ok(job) = next else { break };
                    let started = Instant::now();
                    let busy_before = load.busy();
                    // A job that panics loses its answer (its caller sees the channel closed), not the
                    // thread: the pool keeps its size.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    let took = started.elapsed();
                    if load.was_busy(busy_before, took) {
                        std::thread::sleep(rest_after(took));
                    }
                }
            })?;
        }
        Ok(Self { jobs })
    }

    /// Queues `job`; false when every thread has ended.
    pub(super) fn run(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.jobs.send(Box::new(job)).is_ok()
    }
}

/// How long to rest after a hash that took `took` beside busy request threads: long enough that hashing
/// takes [`SHARE_OF_A_BUSY_CORE`] of the core.
fn rest_after(took: Duration) -> Duration {
    took.mul_f64((1.0 - SHARE_OF_A_BUSY_CORE) / SHARE_OF_A_BUSY_CORE)
}

/// Raises this thread's nice value. Best effort: where the kernel refuses, hashing runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value belongs to the thread: PRIO_PROCESS with a thread id sets that thread only.
        let me = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(me), HASHING_NICE) {
            tracing::debug!(%error, "hashing threads run at normal priority");
        }
    }
}

/// The nice value of the calling thread, for tests.
#[cfg(all(test, target_os = "linux"))]
pub(super) fn current_nice() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_threads_below_the_request_threads_priority() {
        let before = current_nice();
        let threads = HashThreads::start(2).unwrap();
        let (seen, nice) = mpsc::channel();
        for _ in 0..4 {
            let seen = seen.clone();
            assert!(
                threads.run(move || seen
                    .send((current_nice(), std::thread::current().name().map(str::to_owned)))
                    .unwrap())
            );
        }
        for _ in 0..4 {
            let (value, name) = nice.recv().unwrap();
            // At least the hashing value: a process already started nicer than that stays so.
            assert!(value >= HASHING_NICE.max(before), "hashing thread nice {value}");
            assert!(name.unwrap().starts_with("rsp-argon2-"));
        }
        assert_eq!(current_nice(), before, "the calling thread keeps its priority");
    }

    #[test]
    fn beside_busy_request_threads_hashing_takes_its_share_of_a_core() {
        let took = Duration::from_millis(30);
        let share = took.as_secs_f64() / (took + rest_after(took)).as_secs_f64();
        assert!((share - SHARE_OF_A_BUSY_CORE).abs() < 1e-9, "{share}");
    }

    #[test]
    fn request_threads_count_as_busy_only_while_they_work() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let load = runtime.block_on(async { RequestLoad::current() });
        let quiet = Duration::from_millis(100);

        let before = load.busy();
        std::thread::sleep(quiet);
        assert!(!load.was_busy(before, quiet), "an idle runtime is not busy");

        let before = load.busy();
        let started = Instant::now();
        // Both workers spin for the whole period, as request threads under load would.
        runtime.block_on(async {
            let spin = || {
                tokio::spawn(async move {
                    while started.elapsed() < quiet {
                        std::hint::spin_loop();
                    }
                })
            };
            let (a, b) = (spin(), spin());
            let _ = (a.await, b.await);
        });
        let took = started.elapsed();
        // A worker publishes its busy time when it parks or every few dozen tasks, a moment after the work.
        let published = Instant::now();
        while !load.was_busy(before, took) && published.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(load.was_busy(before, took), "a working runtime is busy");
        assert!(RequestLoad { runtime: None }.busy().is_none(), "outside a runtime nothing is measured");
    }
}
