//! The consumer runner: the one loop that turns the port's primitives into "each event handled once,
//! retried with backoff, dead-lettered after N failures". It is written over `Arc<dyn EventBus>`, so the
//! Redis bus and the SQL bus share it, and so do the audit consumer and the outbox relay.
//!
//! One pass: `receive` a batch; claim every event of it at once (one round trip for the batch, not one per
//! event); skip copies already handled or being handled; hand the claimed events to the handler as one
//! batch when it takes batches (then complete them all at once); otherwise, or when the batch failed, run
//! the handler on each in order, and either complete the event or release it and schedule a retry (or a
//! dead letter after `max_attempts`); finally acknowledge the batch. Completions are sent while the next handler runs, and the batch is acknowledged
//! only after they are stored, so a crash repeats at most the handlers whose completion was in flight.

pub(crate) mod backoff;
mod batch;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::Event;
use rsp_core::bus::EventBus;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{ConfigError, check_name};
use crate::metrics::{self, HandledMetrics};

/// What a consumer does with each event. Handlers must tolerate seeing an event again after a crash (the
/// bus delivers at least once; the claim makes duplicates rare, not impossible).
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;

    /// Handles a whole claimed batch at once, for handlers that can do that more cheaply (one transaction
    /// for all); `None`, the default, means one by one. After `Some(Err(_))` the consumer handles each
    /// event alone, so one bad event is retried or dead-lettered without holding back the others:
    /// a batch must therefore be all-or-nothing, or safe to repeat.
    async fn handle_batch(&self, _events: &[Event]) -> Option<Result<(), HandlerError>> {
        None
    }
}

/// Why a handler failed, which decides what happens to the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// May succeed later (a dependency is down): retried with backoff until `max_attempts`.
    #[error("{0}")]
    Transient(String),
    /// Can never succeed (the event makes no sense to this handler): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

/// How a [`Consumer`] runs.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The consumer group: every group sees every event.
    pub group: String,
    /// This consumer's name within the group, unique per running instance (host and process, say).
    pub consumer: String,
    /// Deliveries received and claimed at once.
    pub batch_size: usize,
    /// Handler runs before an event is dead-lettered (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled per attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest delay between retries.
    pub backoff_max: Duration,
    /// How long a delivery may stay unacknowledged before another consumer takes it over.
    pub reclaim_after: Duration,
    /// How long a claim keeps other copies away. It must cover handling a whole batch: a claim that lapses
    /// mid-batch lets a duplicate copy run concurrently.
    pub claim_lease: Duration,
    /// How long `receive` waits for events when there are none (also the longest a stop waits for it).
    pub wait: Duration,
    /// How often the group's gauges are refreshed from `stats`.
    pub stats_interval: Duration,
}

impl ConsumerConfig {
    pub fn new(group: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            consumer: consumer.into(),
            batch_size: 256,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            reclaim_after: Duration::from_secs(60),
            claim_lease: Duration::from_secs(60),
            wait: Duration::from_secs(1),
            stats_interval: Duration::from_secs(10),
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        check_name("group", &self.group)?;
        check_name("consumer", &self.consumer)?;
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(ConfigError::new("batch_size", "must be between 1 and 10000"));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::new("max_attempts", "must be at least 1"));
        }
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            return Err(ConfigError::new("backoff", "base must be positive and not above max"));
        }
        let positive = [
            ("reclaim_after", self.reclaim_after),
            ("claim_lease", self.claim_lease),
            ("wait", self.wait),
            ("stats_interval", self.stats_interval),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::new(field, "must be longer than zero"));
        }
        Ok(())
    }
}

/// A consumer of one group: see the module doc for what a pass does.
pub struct Consumer {
    bus: Arc<dyn EventBus>,
    handler: Arc<dyn EventHandler>,
    config: ConsumerConfig,
    metrics: HandledMetrics,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Consumer {
    pub fn new(
        bus: Arc<dyn EventBus>,
        handler: Arc<dyn EventHandler>,
        config: ConsumerConfig,
    ) -> Result<Self, ConfigError> {
        config.check()?;
        let metrics = HandledMetrics::new(&config.group);
        Ok(Self { bus, handler, config, metrics })
    }

    /// Runs on a task of its own until [`RunningConsumer::stop`].
    pub fn spawn(self) -> RunningConsumer {
        let (stop, stopped) = watch::channel(false);
        RunningConsumer { stop, task: tokio::spawn(self.run(stopped)) }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped). A stop lets the delivery being handled
    /// finish; the rest of its batch is released for other consumers at once.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let gauges = tokio::spawn(refresh_gauges(
            Arc::clone(&self.bus),
            self.config.group.clone(),
            self.config.stats_interval,
            shutdown.clone(),
        ));
        let config = &self.config;
        let mut failures = 0u32;
        while !stopping(&shutdown) {
            let received =
                self.bus.receive(&config.group, &config.consumer, config.batch_size, config.wait, config.reclaim_after);
            match received.await {
                Ok(deliveries) => {
                    failures = 0;
                    self.process(deliveries, &shutdown).await;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff::delay(Duration::from_millis(100), Duration::from_secs(5), failures);
                    tracing::warn!(group = %config.group, %error, ?pause, "event bus receive failed");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        gauges.abort();
    }
}

/// A consumer running on its own task.
#[derive(Debug)]
pub struct RunningConsumer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningConsumer {
    /// Asks the consumer to stop and waits until it has (at most about `wait` plus one handler run).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "event consumer task failed");
        }
    }
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

async fn refresh_gauges(bus: Arc<dyn EventBus>, group: String, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match bus.stats(&group).await {
            Ok(stats) => metrics::record_stats(&group, &stats),
            Err(error) => tracing::debug!(%group, %error, "event bus stats unavailable"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
        }
    }
}
