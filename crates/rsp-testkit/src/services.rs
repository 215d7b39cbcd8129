//! The real PostgreSQL and Redis for tests of a scaled-out deployment.
//!
//! Each test gets a schema and a key prefix no other test uses, so tests run concurrently on one server;
//! [`Shared::cleanup`] drops both. The servers come from `RSP_TEST_DATABASE_URL` and `RSP_TEST_REDIS_URL`
//! (defaults: the local ones). When one cannot be reached the test is skipped with a printed reason,
//! except under `CI=true`, where that is a failure.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rsp::Config;

pub fn database_url() -> String {
    std::env::var("RSP_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("RSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Says why a test is skipped; under `CI=true` a missing service fails the test instead.
pub fn unavailable(what: &str, reason: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        #[expect(clippy::panic, reason = "test support: under CI a missing service fails the test")]
        {
            panic!("{what} is required under CI=true: {reason}");
        }
    }
    eprintln!("skipping: {what} unavailable: {reason}");
}

/// A name no other test or run uses: letters and digits only, so it is a valid schema name and prefix.
pub fn unique_name(stem: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{stem}_{}_{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Where a test deployment keeps its shared state.
#[derive(Debug, Clone)]
pub struct Shared {
    pub database_url: String,
    pub schema: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
}

impl Shared {
    /// A fresh schema on the test PostgreSQL and a fresh prefix on the test Redis, or `None` (after saying
    /// why) when either cannot be reached.
    pub async fn fresh() -> Option<Self> {
        let shared = Self::fresh_database().await?;
        let redis = redis_url();
        if let Err(error) = ping_redis(&redis).await {
            unavailable("redis", error);
            return None;
        }
        Some(Self { redis_url: Some(redis), ..shared })
    }

    /// A fresh schema on the test PostgreSQL, without Redis.
    pub async fn fresh_database() -> Option<Self> {
        let url = database_url();
        match sqlx::PgPool::connect(&url).await {
            Ok(pool) => pool.close().await,
            Err(error) => {
                unavailable("postgresql", error);
                return None;
            }
        }
        Some(Self {
            database_url: url,
            schema: unique_name("rsp_test"),
            redis_url: None,
            redis_prefix: unique_name("rsp-test"),
        })
    }

    /// The same deployment on another Redis (a private one a test stops and starts).
    pub fn with_redis(mut self, url: String) -> Self {
        self.redis_url = Some(url);
        self
    }

    pub fn apply(&self, config: &mut Config) {
        config.database_url = Some(self.database_url.clone());
        config.database_schema = Some(self.schema.clone());
        config.redis_url = self.redis_url.clone();
        config.redis_prefix = self.redis_prefix.clone();
    }

    /// Drops the schema and deletes the keys under the prefix.
    pub async fn cleanup(&self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.database_url).await {
            let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&pool).await;
            pool.close().await;
        }
        if let Some(url) = &self.redis_url
            && let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(mut connection) = client.get_multiplexed_async_connection().await
        {
            let pattern = format!("{}*", self.redis_prefix);
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(&pattern).query_async(&mut connection).await.unwrap_or_default();
            for key in keys {
                let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut connection).await;
            }
        }
    }
}

async fn ping_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    redis::cmd("PING").query_async::<String>(&mut connection).await.map(|_| ()).map_err(|e| e.to_string())
}

/// A `redis-server` of the test's own on a free port, with an append-only file fsynced on every write (as
/// a production Redis that must not lose the bus is configured), so a stop and a start keep its data.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts one, or returns `None` (after saying why) when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => {
                unavailable("a temporary directory", error);
                return None;
            }
        };
        let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(address) => address.port(),
            Err(error) => {
                unavailable("a free port", error);
                return None;
            }
        };
        let mut redis = Self { child: None, port, dir: dir.path().to_path_buf(), _dir: dir };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(error) => {
                unavailable("redis-server", error);
                None
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it as an operator does (SIGTERM: it flushes its append-only file first).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
