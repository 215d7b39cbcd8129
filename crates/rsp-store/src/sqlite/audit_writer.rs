//! The audit trail's writer: a connection of its own, on a thread that yields the CPU to requests.
//!
//! Every token issued is an audit row, written in batches beside the requests. On SQLite that write runs
//! on the connection's own thread, in bursts of a few hundred microseconds (a batch's rows into the table
//! and its five indexes, then the WAL), and on a small box such a burst holds a core that the next request
//! was about to get. Measured with `rsp loadtest --scenario client-credentials --rate 5000` on two cores,
//! the token p99 was 0.4–0.7 ms with the rows not written and 0.9–1.2 ms with them; with the writer's thread
//! at the lowest priority (nice 19), 0.74–0.89 ms, while at full load the writer still keeps up: when it falls
//! behind, the publisher's bounded queue fills and slows the requests down, so a lower priority can never
//! lose a row (BENCHMARKS.md). RocksDB lowers its compaction threads the same way.
//!
//! A connection of its own also keeps its page cache warm (SQLite drops a connection's cache whenever
//! another connection has committed), and the writer never waits for a pool connection behind requests.

use std::time::Duration;

use rsp_core::ports::StoreResult;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::unavailable;

/// The writer thread's name (Linux keeps 15 bytes of a thread's name).
const THREAD_NAME: &str = "rsp-audit-write";

/// The writer thread's nice value: the lowest priority a thread can ask for without privileges.
const NICE: i32 = 19;

/// Opens the writer's connection, kept for the life of the process, and lowers its thread's priority
/// (again after any reconnection).
pub(super) async fn open(options: SqliteConnectOptions) -> StoreResult<SqlitePool> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None::<Duration>)
        .max_lifetime(None::<Duration>)
        .after_connect(|_connection, _meta| {
            Box::pin(async {
                match lower_priority() {
                    Ok(0) => {
                        tracing::warn!("the audit writer's thread was not found: it runs at the requests' priority")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "the audit writer runs at the requests' priority"),
                }
                Ok(())
            })
        })
        .connect_with(options.thread_name(|_| THREAD_NAME.to_owned()))
        .await
        .map_err(unavailable)
}

/// Sets the nice value of this process's threads named [`THREAD_NAME`]; returns how many there were.
#[cfg(target_os = "linux")]
fn lower_priority() -> std::io::Result<usize> {
    let mut lowered = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim_end() != THREAD_NAME {
            continue;
        }
        let thread = task.file_name().to_str().and_then(|id| id.parse().ok()).and_then(rustix::process::Pid::from_raw);
        if let Some(thread) = thread {
            // On Linux the nice value belongs to each thread; a thread id here sets that thread's alone.
            rustix::process::setpriority_process(Some(thread), NICE)?;
            lowered += 1;
        }
    }
    Ok(lowered)
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() -> std::io::Result<usize> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_writer_runs_on_a_thread_of_its_own_at_the_lowest_priority() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new().filename(dir.path().join("a.db")).create_if_missing(true);
        let pool = open(options).await.unwrap();
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
        let mut writers = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap();
            if std::fs::read_to_string(task.path().join("comm")).unwrap().trim_end() == THREAD_NAME {
                let id: i32 = task.file_name().to_str().unwrap().parse().unwrap();
                writers.push(rustix::process::getpriority_process(rustix::process::Pid::from_raw(id)).unwrap());
            }
        }
        // Other tests of this binary may hold writers of their own; each is lowered.
        assert!(!writers.is_empty());
        assert!(writers.iter().all(|&nice| nice == NICE), "{writers:?}");
        pool.close().await;
    }
}
