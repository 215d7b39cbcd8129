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

/// How long a lane waits for a job before it runs its `when_quiet` (and then again every as long).
const QUIET_AFTER: Duration = Duration::from_secs(5);

/// The share of one core that hashing takes while the request threads are busy: after a hash that took
/// `t` during which they were, the hashing thread rests `t·(1−share)/share`. Measured with
/// `bench/login-storm.sh` (BENCHMARKS.md): however low its priority, a hash running beside token
/// requests slows them (likely the 19 MiB it streams through the core's caches), so a storm's cost to them
/// is bounded by bounding its share. On a server with nothing else to do, hashes run back to back.
const SHARE_OF_A_BUSY_CORE: f64 = 0.5;

/// Request threads busy more than this share of their time, on average over about [`AVERAGED_OVER`], count
/// as busy. Serving nothing but logins as fast as one hashing thread allows keeps each of two workers 3–4%
/// busy (the login page, the form post, the session, and the runtime's own search for work between such
/// sparse requests); 2,000 tokens/s keep them about 11% busy (CPU ticks of `/proc/PID/task`, both measured
/// on this 2-core box).
const BUSY: f64 = 0.06;

/// The time constant of the average busy share. Measured over each hash alone (~13 ms), the share swung
/// widely from one hash to the next: with a threshold of 2% the hasher rested after most hashes of a pure
/// login load, and `rsp loadtest --scenario login` made 42–49 logins/s where hashing alone allows ~70.
const AVERAGED_OVER: Duration = Duration::from_millis(500);

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

    /// The workers' busy time so far, summed, and how many workers there are.
    fn busy(&self) -> Option<(Duration, usize)> {
        let metrics = self.runtime.as_ref()?.metrics();
        let workers = metrics.num_workers();
        Some(((0..workers).map(|worker| metrics.worker_total_busy_duration(worker)).sum(), workers))
    }
}

/// One hashing thread's running average of the request threads' busy share.
#[derive(Debug)]
struct BusyShare {
    load: RequestLoad,
    /// When the average was last updated, and the workers' busy time then.
    last: Option<(Instant, Duration)>,
    average: f64,
}

impl BusyShare {
    fn new(load: RequestLoad) -> Self {
        let last = load.busy().map(|(busy, _)| (Instant::now(), busy));
        Self { load, last, average: 0.0 }
    }

    /// Folds the time since the last update into the average (weighted by its length, so an idle minute
    /// counts for more than a busy millisecond) and returns it; 0 outside a runtime.
    fn update(&mut self) -> f64 {
        let (Some((then, busy_then)), Some((busy_now, workers))) = (self.last, self.load.busy()) else {
            return 0.0;
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(then).as_secs_f64();
        let capacity = elapsed * workers as f64;
        if capacity > 0.0 {
            let share = busy_now.saturating_sub(busy_then).as_secs_f64() / capacity;
            let weight = 1.0 - (-elapsed / AVERAGED_OVER.as_secs_f64()).exp();
            self.average += weight * (share - self.average);
            self.last = Some((now, busy_now));
        }
        self.average
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// What a lane's thread does when no job has come for [`QUIET_AFTER`]: hand back memory kept for hashes.
pub(super) type WhenQuiet = Arc<dyn Fn() + Send + Sync>;

/// A lane's [`WhenQuiet`], and how long without a job counts as quiet.
#[derive(Clone)]
struct Quiet {
    after: Duration,
    then: WhenQuiet,
}

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

/// `size` threads at one priority taking jobs from one queue, and running its [`Quiet`] work while none comes;
/// they end when this is dropped.
#[derive(Debug)]
struct Lane {
    jobs: mpsc::Sender<Job>,
}

impl Lane {
    fn start(name: &str, size: usize, set_priority: fn(), quiet: &Quiet) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let load = RequestLoad::current();
        for index in 0..size.max(1) {
            let queue = queue.clone();
            let mut request_threads = BusyShare::new(load.clone());
            let quiet = quiet.clone();
            std::thread::Builder::new().name(format!("{name}-{index}")).spawn(move || {
                set_priority();
                loop {
                    // The lock is held to take a job, not to run it (a `while let` would hold it for the body).
                    let next = lock(&queue).recv_timeout(quiet.after);
                    let job = match next {
                        Ok(job) => job,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            (quiet.then)();
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    let started = Instant::now();
                    // A job that panics loses its answer (its caller sees the channel closed), not the
                    // thread: the lane keeps its size.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    let took = started.elapsed();
                    if request_threads.update() > BUSY {
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
    /// `size` idle threads and the fallback; each lane runs `when_quiet` whenever no job has come to it for
    /// [`QUIET_AFTER`].
    pub(super) fn start(size: usize, when_quiet: WhenQuiet) -> std::io::Result<Self> {
        Self::start_with(size, STARVED_AFTER, Quiet { after: QUIET_AFTER, then: when_quiet })
    }

    fn start_with(size: usize, starved_after: Duration, quiet: Quiet) -> std::io::Result<Self> {
        Ok(Self {
            idle: Lane::start("rsp-argon2", size, idle_priority, &quiet)?,
            fallback: Lane::start("rsp-argon2-fallback", 1, fallback_priority, &quiet)?,
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

    fn never_quiet() -> Quiet {
        Quiet { after: Duration::from_secs(3600), then: Arc::new(|| ()) }
    }

    #[test]
    fn each_lane_runs_its_quiet_work_while_no_job_comes_and_not_while_jobs_do() {
        let quiet_on = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = quiet_on.clone();
        let then: WhenQuiet = Arc::new(move || lock(&record).push(whereabouts().0));
        let threads =
            HashThreads::start_with(1, Duration::from_secs(3600), Quiet { after: Duration::from_millis(500), then })
                .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // A job every 20 ms keeps the idle lane from falling quiet; the fallback lane, given none, does.
        runtime.block_on(async {
            let started = Instant::now();
            while started.elapsed() < Duration::from_millis(1200) {
                threads.run(|| ()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        assert!(!lock(&quiet_on).iter().any(|name| name == "rsp-argon2-0"), "{:?}", lock(&quiet_on));
        assert!(lock(&quiet_on).iter().any(|name| name == "rsp-argon2-fallback-0"), "{:?}", lock(&quiet_on));
        let waited = Instant::now();
        while !lock(&quiet_on).iter().any(|name| name == "rsp-argon2-0") && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(lock(&quiet_on).iter().any(|name| name == "rsp-argon2-0"), "without jobs the idle lane falls quiet");
    }

    #[test]
    fn hashes_run_under_sched_idle_on_threads_of_their_own() {
        let before = (thread_schedule_policy().ok(), current_nice());
        let threads = HashThreads::start(2, Arc::new(|| ())).unwrap();
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
        let threads = HashThreads::start_with(1, Duration::from_millis(50), never_quiet()).unwrap();
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
        let threads = HashThreads::start_with(1, Duration::from_millis(20), never_quiet()).unwrap();
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
        let mut share = BusyShare::new(runtime.block_on(async { RequestLoad::current() }));

        std::thread::sleep(Duration::from_millis(100));
        assert!(share.update() < BUSY, "an idle runtime is not busy");

        let started = Instant::now();
        // Both workers spin for 300 ms, as request threads under load would.
        runtime.block_on(async {
            let spin = || {
                tokio::spawn(async move {
                    while started.elapsed() < Duration::from_millis(300) {
                        std::hint::spin_loop();
                    }
                })
            };
            let (a, b) = (spin(), spin());
            let _ = (a.await, b.await);
        });
        // A worker publishes its busy time when it parks or every few dozen tasks, a moment after the work.
        let published = Instant::now();
        while share.update() <= BUSY && published.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(share.update() > BUSY, "a working runtime is busy");

        // Busy time published late counts then, so quiet takes a few time constants to show.
        let quiet_since = Instant::now();
        while share.update() >= BUSY && quiet_since.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(AVERAGED_OVER);
        }
        let quiet_again = share.update();
        assert!(quiet_again < BUSY, "a runtime quiet again is soon not busy: {quiet_again}");
        assert_eq!(BusyShare::new(RequestLoad { runtime: None }).update(), 0.0, "outside a runtime, never busy");
    }
}
