//! The audit trail's writer: connections of its own, on threads that yield the CPU to requests.
//!
//! Every token issued is an audit row, written in batches beside the requests. On SQLite that write runs
//! on the connection's own thread, in bursts of a few hundred microseconds (a batch's rows into the table
//! and its five indexes, then the WAL), and on a small box such a burst holds a core that the next request
//! was about to get. Measured with `rsp loadtest --scenario client-credentials --rate 5000` on two cores,
//! the token p99 was 0.4–0.7 ms with the rows not written and 0.9–1.2 ms with them (BENCHMARKS.md).
//!
//! So the rows are written by a connection whose thread runs under `SCHED_IDLE`: it gets a core only when
//! no request wants one, and a request that wakes takes the core from it at once. A thread at nice 19
//! instead keeps its slice once it runs (the kernel lets a running thread reach its fair share before a
//! waking one preempts it), and the token p99 was 1.1–2.0 ms with it against 0.7–0.9 under `SCHED_IDLE`.
//! But at full load no core is ever idle: a `SCHED_IDLE` writer falls behind, the publisher's bounded queue
//! fills and requests stall until it catches up (p99.9 11–12 ms, 20% fewer tokens/s). So batches that
//! show it falling behind go to a second connection, whose thread runs at nice 19 and takes its fair
//! share. Neither can lose a row: a writer behind fills the queue, and requests then wait for room.
//!
//! Two connections rather than one switched between policies: an unprivileged thread may enter
//! `SCHED_IDLE` but not leave it (Linux asks for `CAP_SYS_NICE`, which containers rarely have), and the
//! policy is set without `unsafe`: the idle connection is opened from a thread already under `SCHED_IDLE`,
//! whose policy the connection's thread inherits. Connections of their own also keep their page caches
//! warm and never wait behind requests for a pooled connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteQueryResult};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;

/// The writers' thread names (Linux keeps 15 bytes of a thread's name).
const IDLE_THREAD: &str = "rsp-audit-idle";
const STEADY_THREAD: &str = "rsp-audit-write";

/// The nice value of both writers' threads: the lowest priority a thread can ask for without privileges
/// (and the idle writer's where `SCHED_IDLE` is refused).
const NICE: i32 = 19;

/// A batch this long means events waited for more than the publisher's linger: half its largest batch
/// (256), five times what 5,000 tokens/s gather in its 5 ms.
const FALLING_BEHIND_ROWS: usize = 128;

/// How long after a batch that long the steady writer keeps the rows: a full load sends one every few
/// milliseconds, and the state changes' single events written between them say nothing about the queue.
const STEADY_FOR: Duration = Duration::from_secs(1);

/// One statement of the audit trail's writes.
pub(super) type Statement<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Where the audit rows are written. Clones share the connections.
#[derive(Debug, Clone)]
pub(super) struct AuditWriter(Arc<Writers>);

#[derive(Debug)]
enum Writers {
    /// An in-memory database has one connection, shared with everything else.
    Shared(SqlitePool),
    Own {
        options: Box<SqliteConnectOptions>,
        steady_for: Duration,
        state: Mutex<Own>,
    },
}

/// The two connections, opened when first needed (again after one failed), and which one writes.
#[derive(Debug, Default)]
struct Own {
    idle: Option<SqliteConnection>,
    steady: Option<SqliteConnection>,
    steady_until: Option<Instant>,
    /// Set by [`AuditWriter::close`]: nothing is written, or opened, after it.
    closed: bool,
}

impl AuditWriter {
    /// The writers of a database file; `options` as the store's own connections. Opens the idle writer
    /// now, so that a file that cannot be written fails the start.
    pub(super) async fn open(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        Self::open_steady_for(options, STEADY_FOR).await
    }

    async fn open_steady_for(options: SqliteConnectOptions, steady_for: Duration) -> Result<Self, sqlx::Error> {
        let own = Own { idle: Some(open_idle(options.clone()).await?), ..Own::default() };
        Ok(Self(Arc::new(Writers::Own { options: Box::new(options), steady_for, state: Mutex::new(own) })))
    }

    /// Writes through the one connection of an in-memory database.
    pub(super) fn shared(pool: SqlitePool) -> Self {
        Self(Arc::new(Writers::Shared(pool)))
    }

    /// Runs `statement`, which writes `rows` audit rows, on the writer that suits a batch of that size.
    /// One statement at a time: `seq` order stays commit order.
    pub(super) async fn execute(
        &self,
        statement: Statement<'_>,
        rows: usize,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        let (options, steady_for, state) = match &*self.0 {
            Writers::Shared(pool) => return statement.execute(pool).await,
            Writers::Own { options, steady_for, state } => (options, *steady_for, state),
        };
        let mut own = state.lock().await;
        if own.closed {
            return Err(sqlx::Error::PoolClosed);
        }
        let now = Instant::now();
        if rows >= FALLING_BEHIND_ROWS {
            own.steady_until = Some(now + steady_for);
        }
        let steady = own.steady_until.is_some_and(|until| now <= until);
        let slot = if steady { &mut own.steady } else { &mut own.idle };
        let connection = match slot {
            Some(connection) => connection,
            None => {
                let opened = if steady {
                    open_steady((**options).clone()).await?
                } else {
                    open_idle((**options).clone()).await?
                };
                slot.insert(opened)
            }
        };
        let done = statement.execute(&mut *connection).await;
        if let Err(error) = &done
            && !matches!(error, sqlx::Error::Database(_))
        {
            // The connection itself failed (its thread gone, say): the next batch opens a new one.
            *slot = None;
        }
        done
    }

    pub(super) async fn close(&self) {
        match &*self.0 {
            Writers::Shared(pool) => pool.close().await,
            Writers::Own { state, .. } => {
                let mut own = state.lock().await;
                own.closed = true;
                for connection in [own.idle.take(), own.steady.take()].into_iter().flatten() {
                    let _ = connection.close().await;
                }
            }
        }
    }
}

/// The steady writer's connection: opened like any other, then its thread lowered to nice 19.
async fn open_steady(options: SqliteConnectOptions) -> Result<SqliteConnection, sqlx::Error> {
    let connection = SqliteConnection::connect_with(&options.thread_name(|_| STEADY_THREAD.to_owned())).await?;
    lower(STEADY_THREAD);
    Ok(connection)
}

/// The idle writer's connection, opened from a thread of its own under `SCHED_IDLE`: the connection's
/// thread is spawned there and inherits the policy (a Linux thread starts with its creator's).
async fn open_idle(options: SqliteConnectOptions) -> Result<SqliteConnection, sqlx::Error> {
    let options = options.thread_name(|_| IDLE_THREAD.to_owned());
    let (opened, connection) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("rsp-audit-open".to_owned()).spawn(move || {
        enter_sched_idle();
        let connected = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(sqlx::Error::Io)
            .and_then(|runtime| runtime.block_on(SqliteConnection::connect_with(&options)));
        let _ = opened.send(connected);
    })?;
    let connection = connection.await.map_err(|_| sqlx::Error::WorkerCrashed)??;
    // Where SCHED_IDLE was refused, nice 19 at least; under it the nice value has no effect.
    lower(IDLE_THREAD);
    Ok(connection)
}

/// Puts the calling thread under `SCHED_IDLE`; where the kernel refuses, it stays as it was.
fn enter_sched_idle() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(error) = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            idle,
        ) {
            tracing::warn!(?error, "SCHED_IDLE refused: the audit writer runs at nice {NICE} instead");
        }
    }
}

/// Lowers this process's threads named `name` to nice 19, warning where none is found.
fn lower(name: &str) {
    match lower_priority(name) {
        Ok(0) => tracing::warn!("the audit writer's thread was not found: it runs at the requests' priority"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "the audit writer runs at the requests' priority"),
    }
}

/// Sets the nice value of this process's threads named `name`; returns how many there were.
#[cfg(target_os = "linux")]
fn lower_priority(name: &str) -> std::io::Result<usize> {
    let mut lowered = 0;
    for (thread, _) in threads_named(name)? {
        // On Linux the nice value belongs to each thread; a thread id here sets that thread's alone.
        rustix::process::setpriority_process(Some(thread), NICE)?;
        lowered += 1;
    }
    Ok(lowered)
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_name: &str) -> std::io::Result<usize> {
    Ok(0)
}

/// This process's threads named `name`, with their `/proc` directories.
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> std::io::Result<Vec<(rustix::process::Pid, std::path::PathBuf)>> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let thread = task.file_name().to_str().and_then(|id| id.parse().ok()).and_then(rustix::process::Pid::from_raw);
        if let Some(thread) = thread {
            found.push((thread, task.path()));
        }
    }
    Ok(found)
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests;
