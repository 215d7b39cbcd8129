//! Test plumbing: buses on the shared Redis under random prefixes (deleted afterwards), and private
//! `redis-server` processes for tests that stop Redis.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsp_bus::{RedisBusConfig, RedisStreamsBus};
use rsp_core::{Event, EventKind, Priority, TenantId};

pub fn redis_url() -> String {
    std::env::var("RSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skips (printing why) when a required service is missing, except under `CI=true`, where it fails.
pub fn unavailable(what: &str, reason: impl std::fmt::Display) {
    assert!(!in_ci(), "{what} is required under CI=true: {reason}");
    eprintln!("skipping: {what} unavailable: {reason}");
}

/// A key prefix no other test or run uses.
pub fn random_prefix() -> String {
    format!("rsp-test-{}", uuid::Uuid::now_v7().simple())
}

/// A bus on the shared Redis under a fresh prefix, or `None` when Redis is unreachable outside CI.
pub async fn fresh_bus() -> Option<TestBus> {
    TestBus::connect(&redis_url(), &random_prefix()).await
}

/// A bus whose keys are deleted by [`TestBus::cleanup`].
pub struct TestBus {
    pub bus: Arc<RedisStreamsBus>,
    pub url: String,
}

impl TestBus {
    pub async fn connect(url: &str, prefix: &str) -> Option<Self> {
        // The bus itself starts without Redis (its calls then fail): ask Redis first, to skip when it is absent.
        if let Err(reason) = ping(url).await {
            unavailable("redis", reason);
            return None;
        }
        let config = RedisBusConfig { prefix: prefix.to_owned(), ..RedisBusConfig::default() };
        match RedisStreamsBus::connect(url, config).await {
            Ok(bus) => Some(Self { bus: Arc::new(bus), url: url.to_owned() }),
            Err(e) => {
                unavailable("redis", e);
                None
            }
        }
    }

    /// Another instance on the same keys, as a second process would have.
    pub async fn twin(&self) -> RedisStreamsBus {
        let config = RedisBusConfig { prefix: self.bus.prefix().to_owned(), ..RedisBusConfig::default() };
        RedisStreamsBus::connect(&self.url, config).await.unwrap()
    }

    pub fn dyn_bus(&self) -> Arc<dyn rsp_core::bus::EventBus> {
        self.bus.clone()
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.bus.prefix())
    }

    /// Deletes every key of this bus's prefix.
    pub async fn cleanup(&self) {
        let mut connection = self.connection().await;
        let pattern = format!("{}:*", self.bus.prefix());
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .unwrap();
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).query_async::<()>(&mut connection).await.unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let connecting = client.get_multiplexed_async_connection();
    let mut connection = tokio::time::timeout(Duration::from_secs(2), connecting)
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    redis::cmd("PING").query_async::<String>(&mut connection).await.map(drop).map_err(|e| e.to_string())
}

pub fn event(priority: Priority, subject: &str) -> Event {
    Event::new(TenantId::parse("acme").unwrap(), EventKind::TOKEN_ISSUED, priority).subject(subject)
}

/// A `redis-server` of the test's own on a free port, without persistence, killed on drop.
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
}

impl PrivateRedis {
    /// Starts one, or returns `None` (after saying why) when `redis-server` is not installed outside CI.
    pub fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { child: None, port };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(e) => {
                unavailable("redis-server", e);
                None
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn().unwrap();
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
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
        self.stop();
    }
}
