//! The threads Argon2 runs on: a few of its own under `SCHED_IDLE`, resting after each hash while the
//! request threads are busy, and one at nice 10 that takes over a hash the idle threads are starved of.
//!
//! A hash holds a core for tens of milliseconds. On the shared blocking pool at normal priority a login
//! storm made token requests wait their turn for the CPU (token p99 nearly doubled under one). At nice 19
//! the kernel weighs a hash at 1/70 of a request, yet a storm still multiplied token p99 by 3.7–5.1
//! (`bench/login-storm.sh`): a woken request thread is placed on a core by whether the core is idle, and a
//! core running a nice-19 hash is not, so the request queued behind another request on the other core
//! (`perf sched`: 58 request-thread waits over 0.5 ms in 3 s). A core running only `SCHED_IDLE` work
//! counts as idle for that placement and is taken from it at once: the same storm cost 1.6–2.4x, with a
//! quarter as many such waits. The policy cannot be set back without privileges, which is why these
//! threads do nothing else and the blocking pool is left alone.
//!
//! `SCHED_IDLE` has a cost: a thread under it gets almost nothing while normal threads keep every core
//! busy (the login load test starved beside the parallel test suite when hashing used it alone). So a
//! hash that has not answered within [`STARVED_AFTER`], twenty times what one takes, is also given to the
//! fallback thread at nice 10, which keeps logins moving on a saturated machine; whichever finishes first
//! answers, and a queued copy whose answer is already given is skipped. The rest after each hash bounds a
//! storm's share either way. (At nice 19 the fallback got 1/70 of a contended core: with every core busy
//! a 50 ms hash took seconds, and the login load test made no login in 2 s beside two compilers.)

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The nice value of the idle threads where `SCHED_IDLE` is refused (request threads run at the process's
/// own, normally 0): the lowest priority there is under the normal policy, which the kernel weighs at
/// about 1/70 of a request thread when both want a core.
const HASHING_NICE: i32 = 19;

/// The nice value of the fallback thread, which only hashes what has waited [`STARVED_AFTER`] already:
/// weighed at about a tenth of a request thread, so an overdue login still finishes in a fraction of a
/// second on a saturated machine.
const FALLBACK_NICE: i32 = 10;

/// How long a hash may go unanswered on the idle threads before the fallback thread computes it too: a
/// hash takes 25–80 ms here, so this only passes when the machine's other work is starving them.
const STARVED_AFTER: Duration = Duration::from_secs(1);

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

/// The answer to one hash, given once, by whichever thread computes it first.
struct Answer<T>(Mutex<Option<oneshot::Sender<T>>>);

impl<T> Answer<T> {
    /// Whether the hash is still wanted: not answered yet, and its caller still waiting.
    fn wanted(&self) -> bool {
        lock(&self.0).as_ref().is_some_and(|sender| !sender.is_closed())
    }

    fn give(&self, value: T) {
        if let Some(sender) = lock(&self.0).take() {
            let _ = sender.send(value);
        }
    }
}

/// A poisoned lock means a job panicked while holding it; what it guards is intact.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A job computing `work` for `answer`, skipped when the answer is no longer wanted.
fn job<T, W>(work: &Arc<W>, answer: Arc<Answer<T>>) -> Job
where
    T: Send + 'static,
    W: Fn() -> T + Send + Sync + 'static,
{
    let work = work.clone();
    Box::new(move || {
        if answer.wanted() {
            answer.give(work());
        }
    })
}

/// `size` threads at one priority taking jobs from one queue; they end when this is dropped.
#[derive(Debug)]
struct Lane {
    jobs: mpsc::Sender<Job>,
}

impl Lane {
    fn start(name: &str, size: usize, set_priority: fn()) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let load = RequestLoad::current();
        for index in 0..size.max(1) {
            let queue = queue.clone();
            let load = load.clone();
            std::thread::Builder::new().name(format!("{name}-{index}")).spawn(move || {
                set_priority();
                loop {
                    // The lock is held to take a job, not to run it (a `while let` would hold it for the body).
                    let next = lock(&queue).recv();
                    let Ok(job) = next else { break };
                    let started = Instant::now();
                    let busy_before = load.busy();
                    // A job that panics loses its answer (its caller sees the channel closed), not the
                    // thread: the lane keeps its size.
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

    fn send(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

/// The hashing threads: `size` under `SCHED_IDLE` and the nice-10 fallback; see the module documentation.
#[derive(Debug)]
pub(super) struct HashThreads {
    idle: Lane,
    fallback: Lane,
    starved_after: Duration,
}

impl HashThreads {
    pub(super) fn start(size: usize) -> std::io::Result<Self> {
        Self::start_with(size, STARVED_AFTER)
    }

    fn start_with(size: usize, starved_after: Duration) -> std::io::Result<Self> {
        Ok(Self {
            idle: Lane::start("rsp-argon2", size, idle_priority)?,
            fallback: Lane::start("rsp-argon2-fallback", 1, fallback_priority)?,
            starved_after,
        })
    }

    /// Computes `work` on an idle hashing thread, or on the fallback thread as well when the idle ones are
    /// starved; `None` when no thread answered (they have ended, or the work panicked).
    pub(super) async fn run<T, W>(&self, work: W) -> Option<T>
    where
        T: Send + 'static,
        W: Fn() -> T + Send + Sync + 'static,
    {
        let (sender, mut answered) = oneshot::channel();
        let answer = Arc::new(Answer(Mutex::new(Some(sender))));
        // Only the jobs hold the answer, so that one dropped unanswered (a panic) closes the channel.
        let pending = Arc::downgrade(&answer);
        let work = Arc::new(work);
        if !self.idle.send(job(&work, answer)) {
            return None;
        }
        if let Ok(result) = tokio::time::timeout(self.starved_after, &mut answered).await {
            return result.ok();
        }
        if let Some(answer) = pending.upgrade() {
            tracing::debug!("a hash starved on the idle hashing threads goes to the fallback thread too");
            self.fallback.send(job(&work, answer));
        }
        answered.await.ok()
    }
}

/// How long to rest after a hash that took `took` beside busy request threads: long enough that hashing
/// takes [`SHARE_OF_A_BUSY_CORE`] of the core.
fn rest_after(took: Duration) -> Duration {
    took.mul_f64((1.0 - SHARE_OF_A_BUSY_CORE) / SHARE_OF_A_BUSY_CORE)
}

/// Puts this thread under `SCHED_IDLE`. Best effort: where the kernel refuses, it takes nice 19 instead.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        // The call also resets the nice value, which fails in a process started nicer; the policy is
        // what matters, so it is read back rather than taken from the result.
        let _ = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            idle,
        );
        if thread_priority::thread_schedule_policy().ok() != Some(idle) {
            tracing::debug!("hashing threads run at nice {HASHING_NICE}: SCHED_IDLE was refused");
            set_nice(HASHING_NICE);
        }
    }
}

fn fallback_priority() {
    set_nice(FALLBACK_NICE);
}

/// Sets this thread's nice value. Best effort: where the kernel refuses, hashing runs at normal priority.
fn set_nice(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value belongs to the thread: PRIO_PROCESS with a thread id sets that thread only.
        let me = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(me), nice) {
            tracing::debug!(%error, "hashing threads run at normal priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The nice value of the calling thread, for tests.
#[cfg(all(test, target_os = "linux"))]
pub(super) fn current_nice() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy};

    /// Where a job ran: its thread's name, scheduling policy and nice value.
    fn whereabouts() -> (String, Option<ThreadSchedulePolicy>, i32) {
        let name = std::thread::current().name().unwrap_or_default().to_owned();
        (name, thread_schedule_policy().ok(), current_nice())
    }

    const IDLE: ThreadSchedulePolicy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);

    #[test]
    fn hashes_run_under_sched_idle_on_threads_of_their_own() {
        let before = (thread_schedule_policy().ok(), current_nice());
        let threads = HashThreads::start(2).unwrap();
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            for _ in 0..4 {
                let (name, policy, _) = threads.run(whereabouts).await.unwrap();
                assert!(name.starts_with("rsp-argon2-") && !name.contains("fallback"), "{name}");
                assert_eq!(policy, Some(IDLE), "{name}");
            }
        });
        assert_eq!((thread_schedule_policy().ok(), current_nice()), before, "the caller keeps its priority");
    }

    #[test]
    fn a_hash_the_idle_threads_are_starved_of_is_answered_by_the_fallback_thread() {
        let threads = HashThreads::start_with(1, Duration::from_millis(50)).unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let first_call = Arc::new(AtomicBool::new(true));
        let (release_wait, first) = (release.clone(), first_call.clone());
        // The first computation holds the only idle thread until released, as starvation would.
        let stuck = move || {
            if first.swap(false, Ordering::SeqCst) {
                while !release_wait.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            whereabouts()
        };
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let queued = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            whereabouts()
        };
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let (name, policy, nice) = threads.run(stuck).await.unwrap();
            assert_eq!(name, "rsp-argon2-fallback-0");
            assert_ne!(policy, Some(IDLE));
            assert_eq!(nice, FALLBACK_NICE);
            // Queued behind the stuck one, it is answered by the fallback thread too.
            let (name, ..) = threads.run(queued).await.unwrap();
            assert_eq!(name, "rsp-argon2-fallback-0");

            release.store(true, Ordering::SeqCst);
            // The idle thread takes its queue in order: by the time it answers this, it has passed the
            // copy of `queued` the fallback answered, and skipped it.
            let (name, ..) = threads.run(whereabouts).await.unwrap();
            assert_eq!(name, "rsp-argon2-0");
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1, "an answered hash is not computed again");
    }

    #[test]
    fn a_hash_that_panics_answers_none_and_the_threads_go_on() {
        let threads = HashThreads::start_with(1, Duration::from_millis(20)).unwrap();
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            assert_eq!(threads.run(|| -> u8 { panic!("a bug in a hash") }).await, None);
            assert_eq!(threads.run(|| 7).await, Some(7));
        });
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
