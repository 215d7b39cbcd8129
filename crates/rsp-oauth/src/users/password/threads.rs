//! The threads Argon2 runs on: a few of its own, at a lower scheduling priority than the request threads.
//!
//! A hash holds a core for tens of milliseconds. On the shared blocking pool at normal priority a login
//! storm made token requests wait their turn for the CPU (token p99 nearly doubled under one). On threads
//! of their own with a higher nice value the kernel runs a woken request thread ahead of a hash, so hashes
//! take the cycles requests leave. The priority cannot be set back without privileges, which is why these
//! threads do nothing else and the blocking pool is left alone.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// The nice value of hashing threads (request threads run at the process's own, normally 0): the lowest
/// priority there is, which the kernel weighs at about 1/70 of a request thread when both want a core. On
/// an idle machine a hash runs at full speed all the same; on a busy one logins wait, tokens do not.
const HASHING_NICE: i32 = 19;

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
        for index in 0..size.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("rsp-argon2-{index}")).spawn(move || {
                lower_priority();
                loop {
                    // The lock is held to take a job, not to run it (a `while let` would hold it for the
                    // body). A poisoned lock means a job panicked on another thread: the queue is intact.
                    let next = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                    let Ok(job) = next else { break };
                    // A job that panics loses its answer (its caller sees the channel closed), not the
                    // thread: the pool keeps its size.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
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
}
