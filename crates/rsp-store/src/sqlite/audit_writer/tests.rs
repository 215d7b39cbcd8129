use super::*;

/// `SCHED_OTHER` and `SCHED_IDLE` as Linux numbers them.
const SCHED_OTHER: i64 = 0;
const SCHED_IDLE: i64 = 5;

/// The scheduling policy and nice value of each of this process's threads named `name`, from
/// `/proc/self/task/*/stat` (fields 41 and 19; field 3 follows the name's closing parenthesis).
fn scheduling_of(name: &str) -> Vec<(i64, i64)> {
    threads_named(name)
        .unwrap()
        .into_iter()
        .map(|(_, dir)| {
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            let (_, after_name) = stat.rsplit_once(')').unwrap();
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            (fields[41 - 3].parse().unwrap(), fields[19 - 3].parse().unwrap())
        })
        .collect()
}

fn file_options(dir: &tempfile::TempDir) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(dir.path().join("a.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
}

#[tokio::test]
async fn short_batches_go_to_a_thread_under_sched_idle_and_long_ones_to_one_at_nice_19() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open_steady_for(file_options(&dir), Duration::ZERO).await.unwrap();
    writer.execute(sqlx::query("CREATE TABLE t (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL)"), 1).await.unwrap();
    // A temporary table belongs to the connection that made it: a statement using it shows which one ran.
    writer.execute(sqlx::query("CREATE TEMP TABLE idle_only (x)"), 1).await.unwrap();

    let rows = [1, FALLING_BEHIND_ROWS + 72, 3, FALLING_BEHIND_ROWS, FALLING_BEHIND_ROWS - 1, 256];
    for (n, rows) in rows.into_iter().enumerate() {
        let insert = sqlx::query("INSERT INTO t (n) VALUES (?1)").bind(i64::try_from(n).unwrap());
        writer.execute(insert, rows).await.unwrap();
        let on_idle = writer.execute(sqlx::query("INSERT INTO idle_only VALUES (1)"), rows).await.is_ok();
        assert_eq!(on_idle, rows < FALLING_BEHIND_ROWS, "a batch of {rows}");
    }

    let idle = scheduling_of(IDLE_THREAD);
    let steady = scheduling_of(STEADY_THREAD);
    // Other tests of this binary may hold writers of their own; each is set the same way.
    assert!(!idle.is_empty() && !steady.is_empty());
    assert!(idle.iter().all(|&(policy, _)| policy == SCHED_IDLE), "{idle:?}");
    assert!(steady.iter().all(|&scheduling| scheduling == (SCHED_OTHER, i64::from(NICE))), "{steady:?}");

    // Both connections wrote into one file, in the order of the calls.
    let mut reader = SqliteConnection::connect_with(&file_options(&dir)).await.unwrap();
    let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY seq").fetch_all(&mut reader).await.unwrap();
    assert_eq!(stored, (0..6).collect::<Vec<_>>());
    writer.close().await;
}

#[tokio::test]
async fn one_long_batch_keeps_the_steady_writer_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(file_options(&dir)).await.unwrap();
    writer.execute(sqlx::query("CREATE TEMP TABLE idle_only (x)"), 1).await.unwrap();
    writer.execute(sqlx::query("SELECT 1"), FALLING_BEHIND_ROWS).await.unwrap();
    // A state change's single event right after a long batch says nothing about the queue.
    assert!(writer.execute(sqlx::query("INSERT INTO idle_only VALUES (1)"), 1).await.is_err());
    writer.close().await;
    let after_close = writer.execute(sqlx::query("SELECT 1"), 1).await;
    assert!(matches!(after_close, Err(sqlx::Error::PoolClosed)), "{after_close:?}");
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new().filename(dir.path().join("missing/a.db"));
    assert!(AuditWriter::open(options).await.is_err());
}
