//! Real Redis for the tests: the shared server (`RSP_TEST_REDIS_URL`), and a TCP proxy that cuts one replica
//! off while Redis stays up. A private `redis-server` a test stops and starts comes from `rsp-test-services`.

use std::net::SocketAddr;
use std::time::Duration;

use redis::AsyncCommands;
use rsp_cache::{CacheConfig, TwoLevelCache};
use rsp_core::cache::{Invalidation, InvalidationNotice, Origin};
use rsp_test_services::{ping_redis, redis_url, unavailable};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// The shared Redis, or `None` (after [`unavailable`]) when it does not answer.
pub async fn shared_redis() -> Option<String> {
    let url = redis_url();
    match ping_redis(&url).await {
        Ok(()) => Some(url),
        Err(reason) => {
            unavailable(&format!("redis at {url}"), reason);
            None
        }
    }
}

/// A configuration isolated under a random prefix, with timings short enough for tests.
pub fn test_config() -> CacheConfig {
    let mut config =
        CacheConfig { prefix: format!("rsp-test-{}", uuid::Uuid::new_v4().simple()), ..Default::default() };
    config.redis.op_timeout = Duration::from_millis(250);
    config.redis.connect_timeout = Duration::from_millis(500);
    config.redis.retry_after = Duration::from_millis(200);
    config.redis.maintenance_interval = Duration::from_millis(100);
    config.redis.tombstone_ttl = Duration::from_secs(2);
    config
}

/// Two replicas on one Redis, sharing a prefix.
pub async fn replicas(url: &str, config: &CacheConfig) -> (TwoLevelCache, TwoLevelCache) {
    let a = TwoLevelCache::connect(url, config.clone()).await.unwrap();
    let b = TwoLevelCache::connect(url, config.clone()).await.unwrap();
    assert!(a.is_listening() && b.is_listening(), "both replicas subscribed at start");
    (a, b)
}

/// Deletes every key under the prefix (all of them expire anyway; this keeps the shared server tidy).
pub async fn clean(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else { return };
    let keys: Vec<String> = connection.keys(format!("{prefix}:*")).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = connection.del(keys).await;
    }
}

/// A raw connection, to look at or tamper with what the cache stored.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Waits for the next notice matching `wanted`, skipping others; panics after `within`.
pub async fn heard(
    notices: &mut broadcast::Receiver<InvalidationNotice>,
    within: Duration,
    wanted: impl Fn(&Invalidation, Origin) -> bool,
) {
    let wait = async {
        loop {
            let notice = notices.recv().await.unwrap();
            if wanted(&notice.invalidation, notice.origin) {
                return;
            }
        }
    };
    tokio::time::timeout(within, wait).await.expect("the invalidation was not heard in time")
}

/// Polls `condition` every 20 ms; panics after `within`.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of Redis that can cut every connection and refuse new ones: one replica loses Redis
/// while Redis, and the other replicas, carry on.
pub struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(redis_url: &str) -> Self {
        let info = redis::Client::open(redis_url).unwrap().get_connection_info().clone();
        let redis::ConnectionAddr::Tcp(host, port) = info.addr() else { panic!("the proxy test needs redis over tcp") };
        let target = format!("{host}:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local: SocketAddr = listener.local_addr().unwrap();
        let (cut, watch_cut) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if *watch_cut.borrow() {
                    continue; // dropped at once: the client sees the connection closed
                }
                let target = target.clone();
                let mut cut = watch_cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { port: local.port(), cut, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
