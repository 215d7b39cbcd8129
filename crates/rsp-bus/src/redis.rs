//! [`RedisStreamsBus`]: the event bus on Redis Streams, for deployments that run several instances or need
//! more throughput than the database outbox gives.
//!
//! Each priority is one stream shared by every group (`XADD` with an approximate `MAXLEN`); each group is a
//! Redis consumer group on those streams, created at the oldest retained entry on first use. Retries cannot
//! stay pending where they are (Redis would hand them to the next reclaimer as soon as they look idle), so a
//! failed delivery is acknowledged and, in the same script, put into the group's retry schedule (a sorted set
//! by due time); `receive` moves due retries into the group's own redelivery stream and reads them from it,
//! again in one script. At every instant an event is therefore pending for a consumer, scheduled, handled or
//! dead: a crash between any two calls loses nothing. The key layout is documented in `redis/keys.rs`.
//!
//! Durability is Redis's: with `appendonly yes` and `appendfsync everysec` a crash of Redis itself can lose
//! about a second of published events, which is why the publisher's fallback and the outbox exist.

mod batching;
mod keys;
mod port;
mod reply;
mod scripts;
mod waiting;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};
use rsp_core::bus::{BusError, BusResult, Delivery};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::error::{ConfigError, ConnectError, check_name};
use batching::Batcher;
use keys::{GroupKeys, Keys, Receipt};
use reply::{Unreadable, bus_error, is_missing_group};
use waiting::{ReadError, Waiting};

/// The default [`RedisBusConfig::max_len`]: the length each stream, dead letters included, is capped at.
pub const DEFAULT_MAX_LEN: u64 = 1_000_000;

/// Settings of [`RedisStreamsBus`].
#[derive(Debug, Clone)]
pub struct RedisBusConfig {
    /// First part of every key, so several platforms (or concurrent tests) share one Redis apart.
    pub prefix: String,
    /// Approximate length cap of each event stream. Redis trims the oldest entries past it even when a group
    /// has not read them yet, so it must exceed the longest backlog the platform should survive.
    pub max_len: u64,
    /// How long a call may wait for Redis's answer before it fails as unavailable.
    pub response_timeout: Duration,
    /// How long connecting (and reconnecting) may take.
    pub connection_timeout: Duration,
    /// How long an event stays marked as handled by a group, against duplicates. The port asks for a day;
    /// each mark costs about 100 bytes of Redis memory, so at N events per second a group keeps about
    /// N × 8.6 MB of marks: lower it (knowing duplicates older than that are handled again) for high volumes.
    pub handled_ttl: Duration,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        Self {
            prefix: "rsp".into(),
            max_len: DEFAULT_MAX_LEN,
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(1),
            handled_ttl: Duration::from_secs(86_400),
        }
    }
}

impl RedisBusConfig {
    fn check(&self) -> Result<(), ConfigError> {
        check_name("prefix", &self.prefix)?;
        if self.max_len == 0 {
            return Err(ConfigError::new("max_len", "must be at least 1"));
        }
        if self.response_timeout.is_zero() || self.connection_timeout.is_zero() {
            return Err(ConfigError::new("timeouts", "must be longer than zero"));
        }
        if self.handled_ttl.as_secs() == 0 {
            return Err(ConfigError::new("handled_ttl", "must be at least a second"));
        }
        Ok(())
    }
}

/// The [`EventBus`](rsp_core::bus::EventBus) on Redis Streams. Cheap to share behind an `Arc`; all calls but blocking reads go
/// through one multiplexed connection that reconnects by itself.
pub struct RedisStreamsBus {
    connection: ConnectionManager,
    /// Claims and completions, one pipeline for all those issued at once.
    batcher: Batcher,
    keys: Keys,
    max_len: u64,
    handled_ttl_secs: u64,
    waiting: Waiting,
    /// Groups this instance has created (or found) on every stream, so `receive` does not try each time.
    groups: Mutex<HashSet<String>>,
    /// When each group was last scanned for deliveries to reclaim (see [`Self::reclaim_scan_due`]).
    reclaim_scans: Mutex<HashMap<String, Instant>>,
    /// Deliveries a blocking read returned beyond the caller's `max` (it reads all priorities at once):
    /// already pending for that consumer, so they are handed out by its next `receive`.
    surplus: Mutex<HashMap<(String, String), Vec<Delivery>>>,
    /// Set once the server has been found to be Redis 7 or newer (see [`Self::supported`]).
    supported: OnceCell<()>,
}

impl std::fmt::Debug for RedisStreamsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsBus").field("prefix", &self.keys.prefix()).field("max_len", &self.max_len).finish()
    }
}

impl RedisStreamsBus {
    /// Connects to `url` (`redis://host:port/db`). When Redis does not answer yet, the bus is returned all
    /// the same and each call fails as unavailable until it does (the publisher falls back to the database,
    /// consumers retry), so a replica starts during a Redis outage instead of failing its start in a loop.
    /// Fails on a bad URL or configuration, and on a server that answers but is older than Redis 7.
    pub async fn connect(url: &str, config: RedisBusConfig) -> Result<Self, ConnectError> {
        config.check()?;
        let client = redis::Client::open(url).map_err(|e| ConnectError::Redis(e.to_string()))?;
        // Few, quick reconnection attempts: a caller with a fallback (the publisher) should learn soon that
        // Redis is gone; the next call starts reconnecting again.
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection =
            client.get_connection_manager_lazy(manager_config).map_err(|e| ConnectError::Redis(e.to_string()))?;
        let bus = Self {
            batcher: Batcher::new(connection.clone()),
            connection,
            keys: Keys::new(&config.prefix),
            max_len: config.max_len,
            handled_ttl_secs: config.handled_ttl.as_secs(),
            waiting: Waiting::new(client, config.response_timeout, config.connection_timeout),
            groups: Mutex::new(HashSet::new()),
            reclaim_scans: Mutex::new(HashMap::new()),
            surplus: Mutex::new(HashMap::new()),
            supported: OnceCell::new(),
        };
        match check_version(&mut bus.connection.clone()).await {
            Ok(()) => {
                let _ = bus.supported.set(());
            }
            Err(ConnectError::Redis(reason)) => {
                tracing::warn!(%reason, "redis unavailable: the bus starts without it and connects when it answers");
            }
            Err(refused) => return Err(refused),
        }
        Ok(bus)
    }

    /// Whether the server is one this bus works with: known from `connect` when Redis answered then, else
    /// asked by the first call that reaches it. Every call of the port goes through here first.
    async fn supported(&self) -> BusResult<()> {
        let check = || async { check_version(&mut self.connection.clone()).await };
        self.supported.get_or_try_init(check).await.map(drop).map_err(|e| BusError::Unavailable(e.to_string()))
    }

    /// The key prefix, for tools and tests that look at or clean up this bus's keys.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    async fn ensure_group(&self, group: &str, keys: &GroupKeys) -> BusResult<()> {
        if self.groups.lock().unwrap_or_else(PoisonError::into_inner).contains(group) {
            return Ok(());
        }
        let mut invocation = scripts::ENSURE_GROUP.prepare_invoke();
        invocation.key(keys.streams()).arg(group);
        invocation.invoke_async::<i64>(&mut self.connection.clone()).await.map_err(bus_error)?;
        self.groups.lock().unwrap_or_else(PoisonError::into_inner).insert(group.to_owned());
        Ok(())
    }

    /// Runs a group script, creating the group first; when Redis reports the group missing (its keys were
    /// deleted behind this instance's back) it is created again and the script retried once.
    async fn group_script<T: redis::FromRedisValue>(
        &self,
        group: &str,
        keys: &GroupKeys,
        script: &Script,
        args: &[String],
    ) -> BusResult<T> {
        self.ensure_group(group, keys).await?;
        match self.invoke(script, keys, args).await {
            Err(e) if is_missing_group(&e) => {
                self.forget_group(group);
                self.ensure_group(group, keys).await?;
                self.invoke(script, keys, args).await.map_err(bus_error)
            }
            other => other.map_err(bus_error),
        }
    }

    async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &GroupKeys,
        args: &[String],
    ) -> RedisResult<T> {
        let mut invocation = script.prepare_invoke();
        invocation.key(keys.all()).arg(args);
        invocation.invoke_async(&mut self.connection.clone()).await
    }

    fn forget_group(&self, group: &str) {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner).remove(group);
    }

    /// Whether this `receive` should look for deliveries to reclaim: at most every quarter of `reclaim_after`
    /// (and at least every second) per group, so an abandoned delivery waits at most 1.25 × `reclaim_after`
    /// while a busy consumer does not pay for a scan on every call.
    fn reclaim_scan_due(&self, group: &str, reclaim_after: Duration) -> bool {
        let now = Instant::now();
        let every = (reclaim_after / 4).min(Duration::from_secs(1));
        let mut scans = self.reclaim_scans.lock().unwrap_or_else(PoisonError::into_inner);
        match scans.get_mut(group) {
            Some(last) if now.duration_since(*last) < every => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                scans.insert(group.to_owned(), now);
                true
            }
        }
    }

    fn take_surplus(&self, group: &str, consumer: &str, max: usize) -> Vec<Delivery> {
        let mut surplus = self.surplus.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (group.to_owned(), consumer.to_owned());
        let Some(waiting) = surplus.get_mut(&key) else { return Vec::new() };
        let taken: Vec<Delivery> = waiting.drain(..max.min(waiting.len())).collect();
        if waiting.is_empty() {
            surplus.remove(&key);
        }
        taken
    }

    fn keep_surplus(&self, group: &str, consumer: &str, extra: Vec<Delivery>) {
        if !extra.is_empty() {
            let mut surplus = self.surplus.lock().unwrap_or_else(PoisonError::into_inner);
            surplus.entry((group.to_owned(), consumer.to_owned())).or_default().extend(extra);
        }
    }

    /// Bodies that are not events cannot reach a handler: they go to the dead letters at once, kept whole.
    async fn bury(&self, group: &str, keys: &GroupKeys, unreadable: Vec<Unreadable>) -> BusResult<()> {
        for entry in unreadable {
            tracing::warn!(group, receipt = %entry.receipt.encode(), reason = %entry.reason, "dead-lettering unreadable bus entry");
            self.move_to_dead(group, keys, &entry.receipt, entry.body, &entry.reason, 0).await?;
        }
        Ok(())
    }

    async fn move_to_dead(
        &self,
        group: &str,
        keys: &GroupKeys,
        receipt: &Receipt,
        body: String,
        error: &str,
        attempts: u32,
    ) -> BusResult<()> {
        let args = [
            group.to_owned(),
            receipt.slot.to_string(),
            receipt.id.clone(),
            body,
            error.to_owned(),
            attempts.to_string(),
            self.max_len.to_string(),
        ];
        self.group_script::<i64>(group, keys, &scripts::DEAD_LETTER, &args).await.map(drop)
    }

    /// Waits for new events once the receive script found none, at most until the next retry falls due.
    async fn wait_for_new(
        &self,
        group: &str,
        consumer: &str,
        keys: &GroupKeys,
        max: usize,
        block: Duration,
    ) -> BusResult<Vec<Delivery>> {
        let reply = match self.waiting.read(keys, group, consumer, max, block).await {
            Ok(reply) => reply,
            Err(ReadError::MissingGroup) => {
                self.forget_group(group);
                self.ensure_group(group, keys).await?;
                return Ok(Vec::new());
            }
            Err(ReadError::Bus(e)) => return Err(e),
        };
        let mut deliveries = Vec::new();
        let mut unreadable = Vec::new();
        for stream in &reply.keys {
            let Some(slot) = keys.event_slot(&stream.key) else { continue };
            for entry in &stream.ids {
                match reply::first_delivery(slot, entry) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err(bad) => unreadable.push(bad),
                }
            }
        }
        self.bury(group, keys, unreadable).await?;
        // Several streams may have answered at once: highest priority first, the rest kept for next time.
        deliveries.sort_by_key(|d| d.event.priority);
        let extra = deliveries.split_off(max.min(deliveries.len()));
        self.keep_surplus(group, consumer, extra);
        Ok(deliveries)
    }
}

/// Claims use `SET ... NX GET`, which Redis accepts from 7.0 on.
async fn check_version(connection: &mut ConnectionManager) -> Result<(), ConnectError> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(connection)
        .await
        .map_err(|e| ConnectError::Redis(e.to_string()))?;
    let version = info.lines().find_map(|line| line.strip_prefix("redis_version:")).unwrap_or("").trim();
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 7 {
        return Err(ConnectError::Unsupported(format!("version 7.0 or newer is required, found {version:?}")));
    }
    Ok(())
}

fn check_names(group: &str, consumer: Option<&str>) -> BusResult<()> {
    let checked = check_name("group", group).and_then(|()| consumer.map_or(Ok(()), |c| check_name("consumer", c)));
    checked.map_err(|e| BusError::Malformed { id: group.to_owned(), reason: e.to_string() })
}

fn millis(duration: Duration) -> String {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).to_string()
}
