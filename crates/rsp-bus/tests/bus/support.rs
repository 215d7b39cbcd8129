//! Test plumbing: buses on the shared Redis under random prefixes (deleted afterwards); the services
//! themselves, and private `redis-server` processes for tests that stop Redis, come from
//! `rsp-test-services`.

use std::sync::Arc;

use rsp_bus::{RedisBusConfig, RedisStreamsBus};
use rsp_core::{Event, EventKind, Priority, TenantId};
use rsp_test_services::{ping_redis, redis_url, unavailable};

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
        if let Err(reason) = ping_redis(url).await {
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

pub fn event(priority: Priority, subject: &str) -> Event {
    Event::new(TenantId::parse("acme").unwrap(), EventKind::TOKEN_ISSUED, priority).subject(subject)
}
